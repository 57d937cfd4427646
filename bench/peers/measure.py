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


# ------------------------------------------------ varying metrics (fair count)
#
# Raw counts flatter whoever emits placeholders: cAdvisor serves, for every
# container, series its build never fills on this host (load averages and
# task states without its load reader, v2-only pressure and memory events on
# a v1 host) as constant zeros, and we keep columns the kernel answers with a
# constant (a CFS period, a zero OOM count). The fair count, applied to all
# three monitors alike: a metric counts when its values over the sampled
# containers and the samples taken vary, i.e. it carried a measurement.

# cAdvisor labels that name the container rather than the measurement.
IDENTITY_LABELS = {"id", "name", "image", "container", "namespace", "pod"}


def varying(observations):
    """Sorted keys of `{key: [values]}` that took at least two distinct values
    (None, the monitor's "no value", is ignored)."""
    out = []
    for key, values in observations.items():
        if len({v for v in values if v is not None}) >= 2:
            out.append(key)
    return sorted(out)


def cadvisor_observations(texts, container_ids):
    """`{series key: [values]}` from several cAdvisor /metrics scrapes, for the
    containers whose `id` label is in `container_ids`; the key is the metric
    name plus its labels other than the container's identity."""
    obs = {}
    wanted = set(container_ids)
    for text in texts:
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _PROM_LINE.match(line)
            if not m or not m.group(1).startswith("container_"):
                continue
            labels = dict(_PROM_LABEL.findall(m.group(3) or ""))
            if labels.get("id") not in wanted:
                continue
            rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in IDENTITY_LABELS)
            key = m.group(1) + (f"{{{rest}}}" if rest else "")
            value = line[m.end(2) if m.group(2) else m.end(1):].split()[0]
            obs.setdefault(key, []).append(float(value))
    return obs


def netdata_observations(chart_data):
    """`{chart.dimension: [values]}` from Netdata `/api/v1/data` answers keyed
    by chart id (`cgroup_<name>.<chart>`): the chart part without the cgroup,
    so the same chart of different containers shares a key."""
    obs = {}
    for chart_id, answer in chart_data.items():
        chart = chart_id.split(".", 1)[1] if "." in chart_id else chart_id
        labels = answer.get("labels", [])
        for row in answer.get("data", []):
            for label, value in zip(labels[1:], row[1:]):
                obs.setdefault(f"{chart}.{label}", []).append(value)
    return obs


def column_observations(rows, columns):
    """`{column: [values]}` of our Parquet rows (dicts), for the given columns."""
    return {c: [r.get(c) for r in rows] for c in columns}


def median_runs(runs):
    """One row per (monitor, N): the median of each figure over the rounds
    that did not fail (the mean of the middle two for an even count), with
    `rounds` the number of rounds it summarises."""
    groups = {}
    for r in runs:
        if not r.get("error"):
            groups.setdefault((r["monitor"], r["n"]), []).append(r)
    out = []
    for (monitor, n), rs in groups.items():
        row = dict(rs[0])
        for key in (
            "cpu_pct_core", "cpu_us_per_container_sample", "peak_rss_bytes", "peak_anon_bytes",
            "disk_bytes_per_container_sample", "loadavg_1m",
        ):
            values = sorted(r[key] for r in rs if r.get(key) is not None)
            mid = len(values) // 2
            if not values:
                row[key] = None
            elif len(values) % 2:
                row[key] = values[mid]
            else:
                row[key] = (values[mid - 1] + values[mid]) / 2
        row["rounds"] = len(rs)
        out.append(row)
    return out


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
        "| monitor | N | CPU % of one core | CPU µs / container / sample | peak RSS | peak anon RSS "
        "| disk bytes / container / sample | series / container | metric names | varying metrics "
        "| containers seen | load 1m |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in runs:
        if r.get("error"):
            rows.append(f"| {r['monitor']} | {r['n']} | failed: {r['error']} | | | | | | | | | |")
            continue
        disk = r.get("disk_bytes_per_container_sample")
        disk_cell = "no storage" if disk is None else _num(disk, ".1f")
        rows.append(
            f"| {r['monitor']} | {r['n']} | {_num(r['cpu_pct_core'], '.2f')} "
            f"| {_num(r['cpu_us_per_container_sample'], '.2f')} | {human_bytes(r['peak_rss_bytes'])} "
            f"| {human_bytes(r.get('peak_anon_bytes'))} "
            f"| {disk_cell} | {_num(r.get('metrics_per_container'), 'd')} "
            f"| {_num(r.get('metric_names_per_container'), 'd')} "
            f"| {_num(r.get('metrics_varying'), 'd')} "
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
            "anon": div("peak_anon_bytes"),
            "disk": div("disk_bytes_per_container_sample"),
        }
    return out


def render_ratios(ratio_map, ours="fine-grained-monitor"):
    head = (
        f"| N | peer | {ours} CPU / peer | peak RSS / peer | peak anon RSS / peer | disk / peer |\n"
        "|---:|---|---:|---:|---:|---:|\n"
    )
    rows = []
    for (n, peer), r in ratio_map.items():
        cells = ["—" if r.get(k) is None else f"{r[k]:.2f}×" for k in ("cpu", "rss", "anon", "disk")]
        rows.append(f"| {n} | {peer} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"
