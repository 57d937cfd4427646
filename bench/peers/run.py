#!/usr/bin/env python3
"""Overhead and storage of fine-grained-monitor side by side with cAdvisor and
Netdata, on the same real cgroups of this machine (issue #9).

As root:  python3 bench/peers/run.py [--n 50,200,500] [--duration 120]

For each N it creates N cgroups named /fgm-peers/cNNNN in every cgroup
hierarchy of the machine (each v1 controller and the v2 mount, so all three
monitors see the same containers), puts a process in each (most `sleep`, a
few duty-cycled busy loops, every other one under a CPU quota, one writing
to disk, one growing its memory), then runs each monitor
ALONE: start, warm-up, a measured window of --duration seconds, clean stop.
It measures the monitor's CPU time (user+sys of it and its children from
/proc/<pid>/stat), peak RSS (VmHWM), and what it left on disk per container
per sample, then removes every process and cgroup, also on failure or Ctrl-C.
Results go to bench/peers/results.json and a markdown table on stdout.

With --pods, half of the N containers are pod sandboxes instead: a `pause`
process in a network namespace of its own, in a Kubernetes-layout cgroup
(/fgm-peers/kubepods/besteffort/pod<uid>/<64 hex>), so a monitor that reads
each pod's network (ours: its /proc/<pid>/net/dev, once per interval) pays
for it as on a node; the other half are the workload above (c0001…).
`fgm-before` runs an earlier build of ours (--fgm-before-bin) in the same run.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GROUP = "fgm-peers"
OURS = "fine-grained-monitor"
TICK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def die_with_parent(sig=signal.SIGKILL):
    """preexec_fn: the child gets `sig` when this script dies, even by SIGKILL."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))


def read(path):
    with open(path) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def dir_bytes(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except FileNotFoundError:
                pass
    return total


# ---------------------------------------------------------------- workload

BUSY = "import time\nwhile True:\n    t = time.monotonic() + 0.01\n    while time.monotonic() < t: pass\n    time.sleep(0.09)\n"
# Writes and syncs 256 KiB a second: dirty and writeback page cache, IO
# pressure, and block IO where the kernel accounts it per cgroup.
WRITE = (
    "import os, sys, time\npath = sys.argv[1]\nwhile True:\n"
    "    with open(path, 'wb') as f:\n"
    "        f.write(os.urandom(256 << 10)); f.flush(); os.fsync(f.fileno())\n"
    "    time.sleep(1)\n"
)
# CFS quota of the throttled busy cgroups: 5 ms per 100 ms period, half of
# what their 10 % duty loop wants, so every monitor has throttling to count.
QUOTA_US, PERIOD_US = 5000, 100000
GROW = (
    "import time\nblocks = []\nwhile True:\n"
    "    blocks.append(bytearray(4 << 20))\n"
    "    if len(blocks) >= 64: blocks = []\n"
    "    time.sleep(1)\n"
)


class Workload:
    """N cgroups, one process each, in every hierarchy; undone by cleanup().
    With `pods`, N // 2 of them are pod sandboxes (see the module docs)."""

    def __init__(self, n, pods=False):
        self.n = n
        self.mounts = measure.cgroup_mounts(read("/proc/self/mountinfo"))
        if not self.mounts:
            raise SystemExit("no cgroup hierarchy mounted (see /proc/self/mountinfo)")
        self.procs = []
        sandboxes = n // 2 if pods else 0
        self.names = [f"c{i:04d}" for i in range(1, n - sandboxes + 1)]
        self.sandboxes = [
            f"kubepods/besteffort/pod{i:08x}-0000-4000-8000-{i:012x}/{'5a' * 4}{i:056x}"
            for i in range(1, sandboxes + 1)
        ]

    def sampled(self):
        """The containers whose metrics are compared (the memory grower, the
        busy ones, the disk writer, then idle ones): the first 20."""
        return self.names[:20]

    def dirs(self, name=None):
        for m in self.mounts:
            base = os.path.join(m["path"], GROUP)
            yield m, base if name is None else os.path.join(base, name)

    def setup(self):
        self.cleanup()  # leftovers of a killed run
        for m, base in self.dirs():
            os.makedirs(base, exist_ok=True)
            if "cpuset" in m["controllers"]:
                self._cpuset_inherit(base)
        busy = max(2, self.n // 100)
        self.io_dir = tempfile.mkdtemp(prefix="fgm-peers-io-", dir="/var/tmp")
        throttled = 0
        for i, name in enumerate(self.names):
            if i == 0:
                cmd = [sys.executable, "-c", GROW]
            elif i <= busy:
                cmd = [sys.executable, "-c", BUSY]
            elif i == busy + 1:
                cmd = [sys.executable, "-c", WRITE, os.path.join(self.io_dir, "data")]
            else:
                cmd = ["sleep", "infinity"]
            p = subprocess.Popen(cmd, preexec_fn=die_with_parent, stdin=subprocess.DEVNULL)
            self.procs.append(p)
            for m, d in self.dirs(name):
                os.makedirs(d, exist_ok=True)
                if "cpuset" in m["controllers"]:
                    self._cpuset_inherit(d)
                # Every other busy cgroup gets a CPU quota (before the process joins).
                if 1 <= i <= busy and i % 2 == 1:
                    throttled += self._limit_cpu(m, d)
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(p.pid))
        if self.sandboxes:
            self._start_sandboxes()
        return {"busy": busy, "throttled": (busy + 1) // 2 if throttled else 0, "io_writer": 1,
                "memory_grower": 1, "idle": len(self.names) - busy - 2, "sandboxes": len(self.sandboxes)}

    def _start_sandboxes(self):
        """One `pause` (a copy of sleep: its comm is what marks a sandbox) per
        pod, in a network namespace of its own (only `lo`, as a pod before its
        CNI adds eth0)."""
        self.pause_dir = tempfile.mkdtemp(prefix="fgm-peers-pause-", dir="/var/tmp")
        pause = os.path.join(self.pause_dir, "pause")
        shutil.copy(shutil.which("sleep"), pause)
        for path in self.sandboxes:
            p = subprocess.Popen(["unshare", "--net", pause, "infinity"], preexec_fn=die_with_parent,
                                 stdin=subprocess.DEVNULL)
            self.procs.append(p)
            for m, d in self.dirs(path):
                os.makedirs(d, exist_ok=True)
                for parent in self._between(m, d):
                    if "cpuset" in m["controllers"]:
                        self._cpuset_inherit(parent)
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(p.pid))

    @staticmethod
    def _between(m, d):
        """The cgroups from the group below the hierarchy root down to `d`, top first."""
        rel = os.path.relpath(d, os.path.join(m["path"], GROUP))
        parts, out = rel.split(os.sep), []
        for k in range(1, len(parts) + 1):
            out.append(os.path.join(m["path"], GROUP, *parts[:k]))
        return out

    @staticmethod
    def _limit_cpu(m, d):
        """Sets the CFS quota in hierarchy `m` if it has the cpu controller; 1 if set."""
        if m["version"] == 1 and "cpu" in m["controllers"]:
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write(str(PERIOD_US))
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(QUOTA_US))
            return 1
        if m["version"] == 2 and os.path.exists(os.path.join(d, "cpu.max")):
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write(f"{QUOTA_US} {PERIOD_US}")
            return 1
        return 0

    @staticmethod
    def _cpuset_inherit(d):
        parent = os.path.dirname(d)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if not read(os.path.join(d, f)).strip():
                with open(os.path.join(d, f), "w") as out:
                    out.write(read(os.path.join(parent, f)).strip())

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        for attr in ("io_dir", "pause_dir"):
            if getattr(self, attr, None):
                shutil.rmtree(getattr(self, attr), ignore_errors=True)
                setattr(self, attr, None)
        for _, base in self.dirs():
            if not os.path.isdir(base):
                continue
            self._kill_members(base)
            for _ in range(50):
                # Deepest first (pods nest four levels down).
                for d, _, _ in os.walk(base, topdown=False):
                    if d == base:
                        continue
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
                try:
                    os.rmdir(base)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                print(f"warning: could not remove {base}", file=sys.stderr)

    @staticmethod
    def _kill_members(base):
        # Processes of a killed earlier run (or strays) still in our cgroups.
        for d, _, _ in os.walk(base):
            try:
                pids = read(os.path.join(d, "cgroup.procs")).split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass


# ---------------------------------------------------------------- monitors


class Monitor:
    name = ""
    interval_s = 1.0
    # Counted from what the monitor left on disk rather than asked while running.
    counts_after_stop = False

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.port = free_port()

    def command(self):
        raise NotImplementedError

    def version(self):
        raise NotImplementedError

    def storage_dir(self):
        """Directory whose size after a clean stop is the monitor's storage, or None."""
        return None

    def counts(self, workload):
        """(containers seen, series and distinct metric names recorded for one
        of the workload's containers)."""
        return None, None, None

    def observations(self, workload):
        """`{metric: [values]}` over the sampled containers (measure.varying
        counts the ones that varied), or None when the monitor cannot tell."""
        return None

    def ready(self):
        return True

    def storage_bytes(self, path):
        return dir_bytes(path)

    def measured_pid(self, proc):
        """The process whose tree is measured and signalled (a wrapper's child)."""
        return proc.pid


class Ours(Monitor):
    name = OURS
    counts_after_stop = True  # the open file is complete only after a clean stop

    def __init__(self, args, workdir):
        super().__init__(args, workdir)
        self.data = os.path.join(workdir, "data")
        self.metrics_port = free_port()

    def command(self):
        help_text = subprocess.run([self.args.fgm_bin, "local", "--help"], capture_output=True, text=True).stdout
        cmd = [self.args.fgm_bin, "local", "--data-dir", self.data, "--no-browser", "--port", str(self.port)]
        if "--metrics-addr" in help_text:
            cmd += ["--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
        # The round's one baseline: processes off (on by default in `local`),
        # unless --fgm-processes measures them separately.
        if "--processes" in help_text:
            cmd += ["--processes", "true" if self.args.fgm_processes else "false"]
        return cmd

    def version(self):
        return subprocess.run([self.args.fgm_bin, "--version"], capture_output=True, text=True).stdout.strip()

    def storage_dir(self):
        return self.data

    def counts(self, workload):
        try:
            index = json.loads(read(os.path.join(self.data, "index.json")))
        except (OSError, ValueError):
            return None, None, None
        containers = index.get("containers", {})
        columns = self._metric_columns(workload, containers)
        # One Parquet column per metric: series and names are the same count.
        return len(containers), columns, columns

    def _rows(self, paths):
        """Our Parquet rows (dicts) of the containers at cgroup `paths`, and the
        metric column names; None without pyarrow or files."""
        files = []
        for base, _, names in os.walk(self.data):
            # Metrics files only: the datasets beside them have other columns.
            files += [os.path.join(base, n) for n in names if n.startswith("metrics-") and n.endswith(".parquet")]
        try:
            index = json.loads(read(os.path.join(self.data, "index.json")))
        except (OSError, ValueError):
            return None
        if not files:
            return None
        try:
            import pyarrow.parquet as pq
        except ImportError:
            print("note: `pip install pyarrow` to count our metrics per container", file=sys.stderr)
            return None
        wanted = set(paths)
        ids = {
            k for k, v in index.get("containers", {}).items()
            if str(v.get("cgroup_path") or v.get("full_id") or "").strip("/") in wanted
        }
        rows, cols = [], []
        for path in sorted(files):
            table = pq.read_table(path)
            cols = [c for c in table.column_names if c not in ("timestamp", "container_id")]
            rows += [r for r in table.to_pylist() if r.get("container_id") in ids]
        return rows, cols

    def _metric_columns(self, workload, containers):
        """Metric columns with a value for the workload's busy container c0002."""
        got = self._rows([f"{GROUP}/c0002"])
        if not got or not got[0]:
            return None
        rows, cols = got
        return sum(1 for c in cols if any(r.get(c) is not None for r in rows))

    def observations(self, workload):
        got = self._rows([f"{GROUP}/{name}" for name in workload.sampled()])
        if not got or not got[0]:
            return None
        rows, cols = got
        return measure.column_observations(rows, cols)


class CAdvisor(Monitor):
    name = "cAdvisor"

    def command(self):
        return [self.args.cadvisor_bin, "-listen", f"127.0.0.1:{self.port}", "-logtostderr"]

    def version(self):
        return subprocess.run([self.args.cadvisor_bin, "-version"], capture_output=True, text=True).stdout.strip()

    def ready(self):
        try:
            http_get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
            return True
        except OSError:
            return False

    def counts(self, workload):
        self.scrapes = [http_get(f"http://127.0.0.1:{self.port}/metrics", 60)]
        return measure.cadvisor_counts(self.scrapes[0], f"/{GROUP}/c0002")

    def observations(self, workload):
        # After the window (its CPU is measured already): two more scrapes, a
        # few housekeeping intervals apart, so values can vary over time too.
        for _ in range(2):
            time.sleep(3)
            self.scrapes.append(http_get(f"http://127.0.0.1:{self.port}/metrics", 60))
        ids = [f"/{GROUP}/{name}" for name in workload.sampled()]
        return measure.cadvisor_observations(self.scrapes, ids)


NETDATA_CONF = """\
# Generated by bench/peers/run.py: only the cgroups collector, every second.
[global]
    run as user = root
[db]
    update every = 1
    mode = dbengine
[directories]
    cache = {dir}/cache
    lib = {dir}/lib
    log = {dir}/log
    config = {dir}/etc
[health]
    enabled = no
[ml]
    enabled = no
[registry]
    enabled = no
[web]
    bind to = 127.0.0.1:{port}
[statsd]
    enabled = no
[plugins]
    cgroups = yes
    proc = no
    diskspace = no
    tc = no
    idlejitter = no
    timex = no
    netdata monitoring = no
    enable running new plugins = no
    apps = no
    charts.d = no
    python.d = no
    go.d = no
    ebpf = no
    fping = no
    ioping = no
    perf = no
    cups = no
    nfacct = no
    slabinfo = no
    statsd = no
[plugin:cgroups]
    update every = 1
    # On a hybrid host `auto` picks the v2 mount, which carries no controllers
    # there, and Netdata then charts nothing: read the v1 controllers.
    use unified cgroups = {unified}
    # Discovery only (steady-state sampling is unchanged):
    # cgroup-name.sh only looks up Docker/Kubernetes names, which the bench's
    # cgroups lack; run serially on a loaded host it delays charting hundreds
    # of new cgroups by minutes. Skip it for them, keep the stock list after.
    # Likewise the per-cgroup network interface lookup: they share the host's
    # network namespace, so it finds nothing and only serialises discovery.
    script to get cgroup network interfaces = /bin/true
    run script to rename cgroups matching = !/{group}/* !/  !*.mount  !*.socket  !*.partition  /machine.slice/*.service  !*.service  !*.slice  !*.swap  !*.user  !init.scope  !*.scope/vcpu*  !*.scope/emulator  *.scope  *docker*  *lxc*  *qemu*  */kubepods/pod*/*  */kubepods/*/pod*/*  */*-kubepods-pod*/*  */*-kubepods-*-pod*/*  !*kubepods* !*kubelet*  *.libvirt-qemu  *
"""


def netdata_unified():
    """`yes` on a pure cgroup v2 host, `no` where v1 controllers are mounted."""
    mounts = measure.cgroup_mounts(read("/proc/self/mountinfo"))
    return "no" if any(m["version"] == 1 and m["controllers"] for m in mounts) else "yes"


class Netdata(Monitor):
    name = "Netdata"

    def command(self):
        for d in ("cache", "lib", "log", "etc"):
            os.makedirs(os.path.join(self.workdir, d), exist_ok=True)
        conf = os.path.join(self.workdir, "etc", "netdata.conf")
        with open(conf, "w") as f:
            f.write(NETDATA_CONF.format(dir=self.workdir, port=self.port, unified=netdata_unified(), group=GROUP))
        return [self.args.netdata_bin, "-D", "-c", conf]

    def version(self):
        return subprocess.run([self.args.netdata_bin, "-V"], capture_output=True, text=True).stdout.strip()

    def storage_dir(self):
        # The dbengine tiers hold the samples; the SQLite metadata beside
        # them is recorded separately in results.json (disk_bytes_all).
        return os.path.join(self.workdir, "cache")

    def storage_bytes(self, path):
        return sum(dir_bytes(os.path.join(path, d)) for d in os.listdir(path) if d.startswith("dbengine"))

    def ready(self):
        try:
            http_get(f"http://127.0.0.1:{self.port}/api/v1/info", timeout=2)
            return True
        except OSError:
            return False

    def counts(self, workload):
        self.charts = http_get(f"http://127.0.0.1:{self.port}/api/v1/charts", 60)
        seen, dims, _ = measure.netdata_counts(self.charts, "c0002")
        # Each chart dimension is one metric (a chart only groups them).
        return seen, dims, dims

    def charted(self):
        """How many of the benchmark's cgroups Netdata charts now."""
        try:
            charts = http_get(f"http://127.0.0.1:{self.port}/api/v1/charts", 30)
        except OSError:
            return 0
        return measure.netdata_counts(charts, "c0002")[0]

    def observations(self, workload):
        charts = json.loads(self.charts).get("charts", {})
        suffixes = tuple(f"_{name}" for name in workload.sampled())
        data = {}
        for chart_id, chart in charts.items():
            if chart.get("type", "").endswith(suffixes):
                url = f"http://127.0.0.1:{self.port}/api/v1/data?chart={chart_id}&after=-60&format=json"
                data[chart_id] = json.loads(http_get(url, 30))
        return measure.netdata_observations(data)


# ---------------------------------------------------------------- measuring


def tree_snapshot(root):
    """CPU ticks, summed VmRSS, VmHWM and RssAnon (private memory: heap,
    stacks, written pages; VmRSS adds the mapped pages of the program file)
    of `root` and its live descendants."""
    ppids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppids[int(entry)] = measure.parse_stat(read(f"/proc/{entry}/stat"))["ppid"]
            except (OSError, ValueError, IndexError):
                pass
    ticks = rss = hwm = anon = 0
    for pid in [root] + measure.descendants(ppids, root):
        try:
            ticks += measure.cpu_ticks(measure.parse_stat(read(f"/proc/{pid}/stat")))
            status = read(f"/proc/{pid}/status")
        except (OSError, ValueError, IndexError):
            continue
        rss += measure.parse_status_bytes(status, "VmRSS")
        hwm += measure.parse_status_bytes(status, "VmHWM")
        anon += measure.parse_status_bytes(status, "RssAnon")
    return {"ticks": ticks, "rss": rss, "hwm": hwm, "anon": anon}


def stop(proc, target=None, timeout=60):
    """SIGTERM to `target` (default the process itself; `unshare` ignores it
    while it waits, so its child is signalled), then wait for `proc`."""
    if proc.poll() is None:
        if target is None or target == proc.pid:
            proc.send_signal(signal.SIGTERM)
        else:
            try:
                os.kill(target, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_monitor(mon, workload, args):
    """One monitor alone on the workload: warm-up, measured window, clean stop."""
    log_path = os.path.join(mon.workdir, "monitor.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            mon.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM), cwd=mon.workdir,
        )
    started = time.monotonic()
    try:
        deadline = started + args.warmup
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} during warm-up; log: {tail(log_path)}")
            time.sleep(0.5)
        if not mon.ready():
            raise RuntimeError(f"not ready after {args.warmup}s warm-up; log: {tail(log_path)}")
        settled_after = settle(mon, proc, args)
        load0 = os.getloadavg()
        measured = mon.measured_pid(proc)
        first = tree_snapshot(measured)
        t0 = time.monotonic()
        peak_rss, peak_anon = first["rss"], first["anon"]
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(1.0, max(0.0, args.duration - (time.monotonic() - t0))))
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} while measured; log: {tail(log_path)}")
            snap = tree_snapshot(measured)
            peak_rss, peak_anon = max(peak_rss, snap["rss"]), max(peak_anon, snap["anon"])
        last = tree_snapshot(measured)
        window = time.monotonic() - t0
        load1 = os.getloadavg()
        try:
            io = measure.parse_io(read(f"/proc/{measured}/io"))
        except OSError:
            io = {}
        observations = None
        if not mon.counts_after_stop:
            seen, metrics, names = mon.counts(workload)
            observations = mon.observations(workload)
    finally:
        stop(proc, mon.measured_pid(proc))
    if mon.counts_after_stop:
        seen, metrics, names = mon.counts(workload)
        observations = mon.observations(workload)
    varying = None if observations is None else measure.varying(observations)
    ran = time.monotonic() - started
    cpu_s = (last["ticks"] - first["ticks"]) / TICK
    samples = window / mon.interval_s
    storage = mon.storage_dir()
    disk = mon.storage_bytes(storage) if storage else None
    run_samples = ran / mon.interval_s
    return {
        "monitor": mon.name,
        "n": workload.n,
        "window_s": round(window, 2),
        "ran_s": round(ran, 2),
        "cpu_s": round(cpu_s, 3),
        "cpu_pct_core": 100.0 * cpu_s / window,
        "cpu_us_per_container_sample": cpu_s * 1e6 / (samples * workload.n),
        "peak_rss_bytes": max(last["hwm"], peak_rss),
        "peak_anon_bytes": max(last["anon"], peak_anon),
        "rss_end_bytes": last["rss"],
        "disk_bytes": disk,
        "disk_bytes_all": dir_bytes(storage) if storage else None,
        "disk_bytes_per_container_sample": None if disk is None else disk / (run_samples * workload.n),
        "proc_io_write_bytes": io.get("write_bytes"),
        "containers_seen": seen,
        "metrics_per_container": metrics,
        "metric_names_per_container": names,
        "metrics_varying": None if varying is None else len(varying),
        "metrics_varying_names": varying,
        "warmup_extra_s": settled_after,
        "loadavg_1m": round((load0[0] + load1[0]) / 2, 2),
        "loadavg_start": load0,
        "loadavg_end": load1,
    }


def settle(mon, proc, args):
    """Extra warm-up for a monitor that charts new cgroups gradually (Netdata
    discovers them every 10 s): wait until the count stops growing for 20 s,
    at most --settle-max seconds. Returns the seconds waited."""
    if not hasattr(mon, "charted"):
        return 0.0
    start = last_change = time.monotonic()
    last = mon.charted()
    while time.monotonic() - last_change < 20 and time.monotonic() - start < args.settle_max:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} while settling")
        time.sleep(5)
        now = mon.charted()
        if now != last:
            last, last_change = now, time.monotonic()
    return round(time.monotonic() - start, 1)


def tail(path, lines=5):
    try:
        return " | ".join(read(path).strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- main

class OursInPod(Ours):
    """Ours as its DaemonSet runs it: a PID namespace of its own (its /proc shows
    only itself) with the host's /proc passed as --proc-root, so processes are
    counted from the host's /proc (issue #29). Measured without the `unshare`
    wrapper."""

    name = OURS + " (own PID namespace)"

    def command(self):
        host_proc = os.path.join(self.workdir, "host-proc")
        os.makedirs(host_proc, exist_ok=True)
        inner = 'mount --rbind /proc "$0" && mount -t proc proc /proc && exec "$@"'
        return [
            "unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", inner, host_proc,
        ] + super().command() + ["--proc-root", host_proc]

    def measured_pid(self, proc):
        try:
            children = read(f"/proc/{proc.pid}/task/{proc.pid}/children").split()
        except OSError:
            return proc.pid
        return int(children[0]) if children else proc.pid


class OursBefore(Ours):
    """An earlier build of ours (--fgm-before-bin), same flags where it has them:
    today's figure in the same run, for "at most X % over today's"."""

    name = OURS + " (before)"

    def __init__(self, args, workdir):
        super().__init__(args, workdir)
        self.args = argparse.Namespace(**{**vars(args), "fgm_bin": args.fgm_before_bin})


MONITORS = {"fgm": Ours, "fgm-pidns": OursInPod, "fgm-before": OursBefore, "cadvisor": CAdvisor, "netdata": Netdata}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", default="50,200,500", help="container counts, comma separated (default 50,200,500)")
    p.add_argument("--duration", type=float, default=120, help="measured seconds per monitor (default 120)")
    p.add_argument("--warmup", type=float, default=30, help="seconds before measuring (default 30; Netdata looks for new cgroups every 10 s)")
    p.add_argument("--monitors", default="fgm,cadvisor,netdata", help="which monitors, comma separated (also fgm-pidns: ours in a PID namespace of its own, as in its pod)")
    p.add_argument("--fgm-bin", default=os.path.join(ROOT, "target/release/fine-grained-monitor"))
    p.add_argument("--fgm-processes", action="store_true",
                   help="run ours with --processes true (the baseline is processes off)")
    p.add_argument("--fgm-before-bin", default=os.path.join(ROOT, "target/peers/bin/fgm-before"),
                   help="an earlier build of ours for the fgm-before monitor")
    p.add_argument("--pods", action="store_true",
                   help="half of N are pod sandboxes in network namespaces of their own (see above)")
    p.add_argument("--cadvisor-bin", default=os.path.join(ROOT, "target/peers/bin/cadvisor"))
    p.add_argument("--netdata-bin", default=shutil.which("netdata") or "/usr/sbin/netdata")
    p.add_argument("--no-build", action="store_true", help="do not run `cargo build --release` and build-cadvisor.sh")
    p.add_argument("--out", default=os.path.join(HERE, "results.json"))
    p.add_argument("--settle", type=float, default=5, help="seconds between monitors")
    p.add_argument("--settle-max", type=float, default=180, help="longest extra warm-up while Netdata is still charting new cgroups (default 180)")
    p.add_argument("--rounds", type=int, default=1, help="measure each monitor this many times per N, interleaved; the table shows medians (default 1)")
    args = p.parse_args(argv)
    args.n = [int(x) for x in args.n.split(",") if x]
    # Monitors run with their scratch directory as working directory.
    args.fgm_bin, args.cadvisor_bin = os.path.abspath(args.fgm_bin), os.path.abspath(args.cadvisor_bin)
    args.fgm_before_bin = os.path.abspath(args.fgm_before_bin)
    args.monitors = [m.strip() for m in args.monitors.split(",") if m.strip()]
    for m in args.monitors:
        if m not in MONITORS:
            p.error(f"unknown monitor {m!r} (known: {', '.join(MONITORS)})")
    return args


def prerequisites(args):
    if os.geteuid() != 0:
        raise SystemExit("run.py needs root: it creates cgroups and moves processes into them")
    if {"fgm", "fgm-pidns"} & set(args.monitors) and not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "fine-grained-monitor"], cwd=ROOT, check=True)
    if "cadvisor" in args.monitors and not args.no_build:
        subprocess.run([os.path.join(HERE, "build-cadvisor.sh")], check=True)
    missing = {
        "fgm": (args.fgm_bin, "cargo build --release"),
        "fgm-pidns": (args.fgm_bin, "cargo build --release"),
        "fgm-before": (args.fgm_before_bin, "a release build of an earlier commit (see docs/performance.md)"),
        "cadvisor": (args.cadvisor_bin, "bench/peers/build-cadvisor.sh"),
        "netdata": (args.netdata_bin, "apt-get install netdata (then keep the service stopped)"),
    }
    for m in args.monitors:
        path, how = missing[m]
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{m}: {path} not found; provide it with: {how}")


def host_info():
    uname = os.uname()
    return {
        "kernel": f"{uname.sysname} {uname.release}",
        "cpus": os.cpu_count(),
        "mem_total_bytes": measure.parse_status_bytes(read("/proc/meminfo"), "MemTotal"),
        "cgroup_hierarchies": [m["path"] for m in measure.cgroup_mounts(read("/proc/self/mountinfo"))],
    }


def exclusive_lock():
    """One run at a time: a second one would remove the first one's cgroups."""
    import fcntl

    lock = open("/run/fgm-peers.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another bench/peers/run.py is running (lock /run/fgm-peers.lock)")
    return lock


def main(argv=None):
    args = parse_args(argv)
    prerequisites(args)
    _lock = exclusive_lock()  # noqa: F841 (held until exit)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    scratch = tempfile.mkdtemp(prefix="fgm-peers-")
    versions, runs = {}, []
    for key in args.monitors:
        mon = MONITORS[key](args, scratch)
        versions[mon.name] = mon.version()
    print("versions measured:")
    for name, v in versions.items():
        print(f"  {name}: {v}")
    try:
        for n in args.n:
            workload = Workload(n, pods=args.pods)
            try:
                mix = workload.setup()
                print(
                    f"\nN={n}: {mix['idle']} idle, {mix['busy']} busy (10% duty; {mix['throttled']} with a CPU quota), "
                    f"1 writing to disk, 1 growing memory, {mix['sandboxes']} pod sandboxes, "
                    f"in {len(workload.mounts)} hierarchies"
                )
                for rnd in range(1, args.rounds + 1):
                    for key in args.monitors:
                        workdir = tempfile.mkdtemp(prefix=f"{key}-{n}-{rnd}-", dir=scratch)
                        mon = MONITORS[key](args, workdir)
                        label = f" (round {rnd}/{args.rounds})" if args.rounds > 1 else ""
                        print(f"  {mon.name}{label}: warm-up {args.warmup:.0f}s, measuring {args.duration:.0f}s ...", flush=True)
                        try:
                            result = run_monitor(mon, workload, args)
                        except (RuntimeError, OSError, ValueError) as e:
                            result = {"monitor": mon.name, "n": n, "error": str(e)}
                            print(f"    failed: {e}", file=sys.stderr)
                        result["version"] = versions[mon.name]
                        result["round"] = rnd
                        runs.append(result)
                        if "error" not in result:
                            print(
                                f"    CPU {result['cpu_pct_core']:.2f}% of a core, peak RSS {measure.human_bytes(result['peak_rss_bytes'])}, "
                                f"metrics {result['metrics_per_container']} series / "
                                f"{result['metric_names_per_container']} names / {result['metrics_varying']} varying"
                            )
                        time.sleep(args.settle)
            finally:
                workload.cleanup()
    except KeyboardInterrupt:
        print("\ninterrupted: processes and cgroups cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary = measure.median_runs(runs)
    report = {
        "command": "python3 bench/peers/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "interval_s": 1.0,
        "host": host_info(),
        "repo_commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "fgm_bin": args.fgm_bin,
        "versions": versions,
        "runs": runs,
        "summary": summary,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print()
    print(measure.render_table(summary))
    print(measure.render_ratios(measure.ratios(summary, OURS), OURS))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
