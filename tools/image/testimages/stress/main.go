// Command fgm-stress is the test world's workload: --cpu CORES busy threads (fractions spin
// part of each 100 ms), --memory SIZE bytes allocated and touched (held, re-touched every
// second), --memory-step SIZE/s to grow towards --memory gradually; runs until killed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// parseSize reads 1048576, 64Ki, 100Mi, 1Gi, 500M.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			n, err := strconv.ParseInt(strings.TrimSuffix(s, u.suffix), 10, 64)
			return n * u.factor, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func spin(share float64) {
	runtime.LockOSThread()
	const period = 100 * time.Millisecond
	busy := time.Duration(float64(period) * share)
	for {
		start := time.Now()
		for time.Since(start) < busy {
		}
		if rest := period - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
	}
}

func main() {
	cpu := flag.Float64("cpu", 0, "busy cores (1.5 = one full thread and one at 50 %)")
	memory := flag.String("memory", "0", "bytes to allocate and keep touched (64Mi, 1Gi, 1048576)")
	step := flag.String("memory-step", "0", "bytes added per second until --memory is reached (0: all at once)")
	flag.Parse()
	target, err := parseSize(*memory)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fgm-stress: bad --memory %q: %v\n", *memory, err)
		os.Exit(2)
	}
	perSecond, err := parseSize(*step)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fgm-stress: bad --memory-step %q: %v\n", *step, err)
		os.Exit(2)
	}
	for left := *cpu; left > 0; left-- {
		share := left
		if share > 1 {
			share = 1
		}
		go spin(share)
	}
	fmt.Printf("fgm-stress: cpu=%v memory=%d step=%d/s\n", *cpu, target, perSecond)
	var held [][]byte
	var total int64
	grow := func(n int64) {
		chunk := make([]byte, n)
		for i := 0; i < len(chunk); i += 4096 {
			chunk[i] = 1
		}
		held = append(held, chunk)
		total += n
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	tick := time.NewTicker(time.Second)
	for {
		if total < target {
			n := target - total
			if perSecond > 0 && n > perSecond {
				n = perSecond
			}
			grow(n)
			fmt.Printf("fgm-stress: holding %d bytes\n", total)
		}
		select {
		case <-signals:
			return
		case <-tick.C:
			for _, chunk := range held {
				for i := 0; i < len(chunk); i += 4096 {
					chunk[i]++
				}
			}
		}
	}
}
