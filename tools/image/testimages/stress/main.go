// Command fgm-stress is the test world's workload: --cpu CORES busy threads (fractions spin
// part of each 100 ms), --memory SIZE bytes allocated and touched (held, re-touched every
// second), --memory-step SIZE/s to grow towards --memory gradually; --net-listen PORT counts
// and discards what TCP clients send; --net-send ADDR:PORT --net-bytes SIZE sends exactly that
// many payload bytes once, then idles; --write-file PATH --write-bytes SIZE writes (and fsyncs)
// a file once; --children N --child-memory SIZE starts N copies of itself holding that much
// memory each. Runs until killed.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listen accepts TCP clients on port and discards what they send, logging the totals.
func listen(port int) {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fgm-stress: listen %d: %v\n", port, err)
		os.Exit(2)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			fmt.Printf("fgm-stress: received %d bytes\n", n)
		}(conn)
	}
}

// send connects to addr (retrying until it answers) and sends exactly total payload bytes.
func send(addr string, total int64) {
	var conn net.Conn
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			conn = c
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	var sent int64
	for sent < total {
		n := int64(len(buf))
		if total-sent < n {
			n = total - sent
		}
		w, err := conn.Write(buf[:n])
		sent += int64(w)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fgm-stress: send: %v\n", err)
			break
		}
	}
	conn.Close()
	fmt.Printf("fgm-stress: sent %d bytes\n", sent)
}

// writeFile writes size bytes to path and fsyncs it.
func writeFile(path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fgm-stress: create %s: %v\n", path, err)
		os.Exit(2)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := f.Write(buf[:n]); err != nil {
			fmt.Fprintf(os.Stderr, "fgm-stress: write %s: %v\n", path, err)
			os.Exit(2)
		}
		left -= n
	}
	f.Sync()
	f.Close()
	fmt.Printf("fgm-stress: wrote %d bytes to %s\n", size, path)
}

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
	listenPort := flag.Int("net-listen", 0, "TCP port to accept clients on, counting and discarding what they send")
	sendTo := flag.String("net-send", "", "ADDR:PORT to send --net-bytes to, once")
	sendBytes := flag.String("net-bytes", "0", "payload bytes to send to --net-send")
	writePath := flag.String("write-file", "", "file to write --write-bytes to, once (fsync'd)")
	writeBytes := flag.String("write-bytes", "0", "bytes to write to --write-file")
	children := flag.Int("children", 0, "copies of this program to start, each holding --child-memory")
	childMemory := flag.String("child-memory", "0", "memory each child holds")
	flag.Parse()
	for i := 0; i < *children; i++ {
		child := exec.Command(os.Args[0], "--memory", *childMemory)
		child.Stdout, child.Stderr = os.Stdout, os.Stderr
		if err := child.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "fgm-stress: child %d: %v\n", i, err)
			os.Exit(2)
		}
		// Reaped when it exits (killed by a test), so it leaves no zombie behind.
		go func(c *exec.Cmd) { _ = c.Wait() }(child)
	}
	if *listenPort > 0 {
		go listen(*listenPort)
	}
	if *sendTo != "" {
		n, err := parseSize(*sendBytes)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fgm-stress: bad --net-bytes %q: %v\n", *sendBytes, err)
			os.Exit(2)
		}
		go send(*sendTo, n)
	}
	if *writePath != "" {
		n, err := parseSize(*writeBytes)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fgm-stress: bad --write-bytes %q: %v\n", *writeBytes, err)
			os.Exit(2)
		}
		writeFile(*writePath, n)
	}
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
