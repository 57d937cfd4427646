"""Pure helpers of the peers benchmark: /proc parsing, cgroup mount discovery,
metric counting from each monitor's own output, and the results table.

Nothing here touches the machine; run.py feeds it file contents and command
output, which keeps these parts unit-testable (test_measure.py).
"""

import json
import re

# ---------------------------------------------------------------- /proc


def parse_stat(text):
    """Fields of /proc/<pid>/stat that the benchmark uses, in clock ticks.

    The command name (field 2) may hold spaces and parentheses, so the fields
    are split after its *last* closing parenthesis, as proc(5) advises.
    """
    close = text.rfind(")")
    if close < 0:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    rest = text[close + 2 :].split()
    # rest[0] is field 3 (state); field n is rest[n - 3].
    return {
        "comm": text[text.find("(") + 1 : close],
        "ppid": int(rest[1]),
        "utime": int(rest[11]),
        "stime": int(rest[12]),
        "cutime": int(rest[13]),
        "cstime": int(rest[14]),
    }


def cpu_ticks(stat):
    """User + system time of a process and of its reaped children."""
    return stat["utime"] + stat["stime"] + stat["cutime"] + stat["cstime"]


def parse_status_bytes(text, key):
    """A `kB` line of /proc/<pid>/status (VmHWM, VmRSS) in bytes, or 0."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            parts = line.split()
            return int(parts[1]) * 1024
    return 0


def parse_io(text):
    """/proc/<pid>/io as a dict of ints."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


def descendants(ppids, root):
    """Every pid below `root` given a {pid: ppid} map (root excluded)."""
    children = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


# ---------------------------------------------------------------- cgroups


V1_CONTROLLERS = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc",
}


def cgroup_mounts(mountinfo):
    """Cgroup hierarchies from /proc/self/mountinfo.

    Returns a list of dicts {path, version (1|2), controllers}; a v1
    hierarchy's controllers come from its super options (`rw,cpu,cpuacct`,
    `rw,name=systemd`). A controller mounted twice is kept once.
    """
    out, seen = [], set()
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, mountpoint = tail[0], fields[4].replace("\\040", " ")
        if fstype == "cgroup2":
            key = ("v2",)
            entry = {"path": mountpoint, "version": 2, "controllers": []}
        elif fstype == "cgroup":
            ctrls = sorted(o for o in tail[2].split(",") if o in V1_CONTROLLERS or o.startswith("name="))
            key = tuple(ctrls)
            entry = {"path": mountpoint, "version": 1, "controllers": ctrls}
        else:
            continue
        if key in seen:
            continue
        seen.add(key)
        out.append(entry)
    return out


# ---------------------------------------------------------------- metrics


_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
_PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def prom_series(text):
    """(name, {labels}) of every sample line of a Prometheus text exposition."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if m:
            yield m.group(1), dict(_PROM_LABEL.findall(m.group(3) or ""))


def cadvisor_counts(text, container):
    """(containers seen, time series of `container`, metric names of `container`)
    from cAdvisor's /metrics. A container is a distinct `id` label."""
    ids, series, names = set(), 0, set()
    for name, labels in prom_series(text):
        cid = labels.get("id")
        if cid is None or not name.startswith("container_"):
            continue
        ids.add(cid)
        if cid == container:
            series += 1
            names.add(name)
    return len(ids), series, len(names)


def netdata_counts(charts_json, container_suffix):
    """(cgroups seen, dimensions of the cgroup whose name ends with
    `container_suffix`, its charts) from Netdata's /api/v1/charts."""
    charts = json.loads(charts_json).get("charts", {})
    groups, dims, count = set(), 0, 0
    for chart in charts.values():
        ctype = chart.get("type", "")
        if not ctype.startswith("cgroup_"):
            continue
        groups.add(ctype)
        if ctype.endswith(container_suffix):
            dims += len(chart.get("dimensions", {}))
            count += 1
    return len(groups), dims, count


# ---------------------------------------------------------------- table


def human_bytes(n):
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _num(value, fmt):
    return "—" if value is None else format(value, fmt)


def render_table(runs):
    """The markdown results table, one row per (monitor, N) run."""
    head = (
        "| monitor | N | CPU % of one core | CPU µs / container / sample | peak RSS "
        "| disk bytes / container / sample | metrics / container | containers seen | load 1m |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in runs:
        if r.get("error"):
            rows.append(f"| {r['monitor']} | {r['n']} | failed: {r['error']} | | | | | | |")
            continue
        disk = r.get("disk_bytes_per_container_sample")
        disk_cell = "no storage" if disk is None else _num(disk, ".1f")
        rows.append(
            f"| {r['monitor']} | {r['n']} | {_num(r['cpu_pct_core'], '.2f')} "
            f"| {_num(r['cpu_us_per_container_sample'], '.2f')} | {human_bytes(r['peak_rss_bytes'])} "
            f"| {disk_cell} | {_num(r.get('metrics_per_container'), 'd')} "
            f"| {_num(r.get('containers_seen'), 'd')} | {_num(r.get('loadavg_1m'), '.2f')} |"
        )
    return head + "\n".join(rows) + "\n"


def ratios(runs, ours="fine-grained-monitor"):
    """Our figure divided by each peer's, per N: {(n, peer): {cpu, rss, disk}}."""
    by = {(r["monitor"], r["n"]): r for r in runs if not r.get("error")}
    out = {}
    for (monitor, n), peer in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        mine = by.get((ours, n))
        if monitor == ours or mine is None:
            continue

        def div(key):
            a, b = mine.get(key), peer.get(key)
            return None if a is None or not b else a / b

        out[(n, monitor)] = {
            "cpu": div("cpu_pct_core"),
            "rss": div("peak_rss_bytes"),
            "disk": div("disk_bytes_per_container_sample"),
        }
    return out


def render_ratios(ratio_map, ours="fine-grained-monitor"):
    head = (
        f"| N | peer | {ours} CPU / peer | peak RSS / peer | disk / peer |\n"
        "|---:|---|---:|---:|---:|\n"
    )
    rows = []
    for (n, peer), r in ratio_map.items():
        cells = ["—" if r[k] is None else f"{r[k]:.2f}×" for k in ("cpu", "rss", "disk")]
        rows.append(f"| {n} | {peer} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"
