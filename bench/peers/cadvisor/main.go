// Command cadvisor-bench is a standalone cAdvisor built from the pinned
// cadvisor library module (github.com/google/cadvisor/lib): the container
// manager with only the raw cgroup handler, an in-memory stats cache and the
// Prometheus endpoint, the parts of upstream's cmd/cadvisor that a bare host
// without a container engine exercises. It exists so bench/peers/run.py can
// measure cAdvisor's overhead on the same cgroups as fine-grained-monitor.
//
// Upstream's `cmd` module is not published on the Go module proxy, hence
// this small main instead of `go install github.com/google/cadvisor/cmd`.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/google/cadvisor/lib/cache/memory"
	"github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/manager"
	"github.com/google/cadvisor/lib/metrics"
	info "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// upstreamDisabled mirrors the default of upstream cAdvisor's
// --disable_metrics, so the benchmark measures what a default cAdvisor
// collects (perf_event needs a build tag upstream and is off too).
var upstreamDisabled = container.MetricSet{
	container.MemoryNumaMetrics:              struct{}{},
	container.NetworkTcpUsageMetrics:         struct{}{},
	container.NetworkUdpUsageMetrics:         struct{}{},
	container.NetworkAdvancedTcpUsageMetrics: struct{}{},
	container.ProcessSchedulerMetrics:        struct{}{},
	container.ProcessMetrics:                 struct{}{},
	container.HugetlbUsageMetrics:            struct{}{},
	container.ReferencedMemoryMetrics:        struct{}{},
	container.CPUTopologyMetrics:             struct{}{},
	container.ResctrlMetrics:                 struct{}{},
	container.CPUSetMetrics:                  struct{}{},
	container.PerfMetrics:                    struct{}{},
}

func libVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/google/cadvisor/lib" {
			return d.Version
		}
	}
	return "unknown"
}

func main() {
	klog.InitFlags(nil)
	addr := flag.String("listen", "127.0.0.1:8080", "address of the HTTP server (/metrics, /healthz)")
	storageDuration := flag.Duration("storage_duration", 2*time.Minute, "how long stats are kept in memory (upstream default)")
	showVersion := flag.Bool("version", false, "print the cadvisor library version and exit")
	rawPrefixes := flag.String("raw_cgroup_prefix_whitelist", "", "comma-separated cgroup path prefixes the raw handler accepts (upstream flag; empty = all)")
	// Benchmark defaults: sample every second like fine-grained-monitor,
	// dynamic housekeeping off. Both stay overridable on the command line.
	_ = flag.Set("housekeeping_interval", "1s")
	_ = flag.Set("allow_dynamic_housekeeping", "false")
	flag.Parse()

	if *showVersion {
		fmt.Printf("cadvisor lib %s\n", libVersion())
		return
	}

	included := container.AllMetrics.Difference(upstreamDisabled)
	cache := memory.New(*storageDuration, nil)
	mgr, err := manager.New(cache, sysfs.NewRealSysFs(), manager.HousekeepingConfigFlags,
		included, strings.Split(*rawPrefixes, ","), nil, "", 0)
	if err != nil {
		klog.Fatalf("creating the cAdvisor manager: %v", err)
	}
	if err := mgr.Start(); err != nil {
		klog.Fatalf("starting the cAdvisor manager: %v", err)
	}

	// Same registration as upstream's /metrics handler: every container,
	// the latest sample each, default labels.
	reg := prometheus.NewRegistry()
	opts := info.RequestOptions{IdType: "name", Count: 1, Recursive: true}
	reg.MustRegister(
		metrics.NewPrometheusCollector(mgr, metrics.DefaultContainerLabels, included, clock.RealClock{}, opts),
		metrics.NewPrometheusMachineCollector(mgr, included),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			klog.Fatalf("serving %s: %v", *addr, err)
		}
	}()
	klog.Infof("cadvisor lib %s serving on %s, metrics %s", libVersion(), *addr,
		strings.ReplaceAll(included.String(), " ", ""))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = srv.Close()
	if err := mgr.Stop(); err != nil {
		klog.Errorf("stopping the manager: %v", err)
	}
}
