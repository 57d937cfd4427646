"""DuckDB answering the viewer benchmark's questions from the same files.

Run by `cargo bench --bench viewer` when Python has duckdb (`pip install duckdb`);
not part of CI. Arguments: DATA_DIR IDS(comma) HOUR_FROM_MS DAY_FROM_MS TO_MS
[OVERVIEW_DIR QUARTER_FROM_MS].

Same questions as the viewer: CPU counter -> per-second rate (cores) for 10
containers over 1 hour (every sample), and over 24 hours reduced to min and max
per bucket (500 buckets = 1,000 points). DuckDB is given the same file list the
viewer selects from the file names (so it does not pay for a glob of the tree).
"""
import datetime as dt
import pathlib
import statistics
import sys
import time

import duckdb

MAX_FILE_SPAN = dt.timedelta(days=1)


def files_for(data: pathlib.Path, frm_ms: int, to_ms: int) -> list[str]:
    frm = dt.datetime.fromtimestamp(frm_ms / 1000, dt.timezone.utc)
    to = dt.datetime.fromtimestamp(to_ms / 1000, dt.timezone.utc)
    day, files = (frm - MAX_FILE_SPAN).date(), []
    while day <= to.date():
        for node in sorted((data / f"dt={day:%Y-%m-%d}").glob("identifier=*")):
            for f in node.glob("metrics-*.parquet"):
                start = dt.datetime.strptime(f.name[8:-8], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
                files.append((start, str(f)))
        day += dt.timedelta(days=1)
    files.sort()
    keep = []
    for i, (start, path) in enumerate(files):
        nxt = files[i + 1][0] if i + 1 < len(files) else None
        if start <= to and (nxt is None or nxt > frm):
            keep.append(path)
    return keep


RATES = """
WITH s AS (
  SELECT container_id, epoch_ms(timestamp) AS t, cpu_usage_usec AS v
  FROM read_parquet($files) WHERE container_id IN (SELECT unnest($ids))),
r AS (
  SELECT container_id, t,
         (v - lag(v) OVER w) * 1000.0 / (t - lag(t) OVER w) / 1e6 AS cores
  FROM s WINDOW w AS (PARTITION BY container_id ORDER BY t))
"""

HOUR = RATES + "SELECT container_id, t, cores FROM r WHERE t BETWEEN $frm AND $to AND cores IS NOT NULL ORDER BY container_id, t"

DAY = RATES + """
SELECT container_id, floor((t - $frm) * 500.0 / ($to - $frm + 1)) AS b,
       arg_min(t, cores), min(cores), arg_max(t, cores), max(cores)
FROM r WHERE t BETWEEN $frm AND $to AND cores IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2
"""


# The overview's per-container figures: average rates of the counters over the
# time the container was seen (negative steps, i.e. resets, skipped), the peak
# CPU rate between samples, peak working set and the last limits. The viewer
# also ranks them and draws sparklines; here Python sorts the (few hundred)
# result rows, which costs nothing next to the scan.
OVERVIEW = """
WITH s AS (
  SELECT container_id, epoch_ms(timestamp) AS t,
         cpu_usage_usec AS cpu, cpu_nr_throttled AS thr, cpu_nr_periods AS per,
         cpu_throttled_usec AS thu, io_read_bytes AS rd, io_write_bytes AS wr,
         cpu_pressure_some_usec AS pc, memory_pressure_some_usec AS pm,
         io_pressure_some_usec AS pi, memory_oom_kill_events AS oom,
         memory_working_set_bytes AS ws, memory_limit_bytes AS lim,
         cpu_quota_usec AS q, cpu_period_usec AS p
  FROM read_parquet($files) WHERE epoch_ms(timestamp) BETWEEN $frm AND $to),
d AS (
  SELECT container_id, t, ws, lim, q, p,
         t - lag(t) OVER w AS dt,
         greatest(cpu - lag(cpu) OVER w, 0) AS cpu, greatest(thr - lag(thr) OVER w, 0) AS thr,
         greatest(per - lag(per) OVER w, 0) AS per, greatest(thu - lag(thu) OVER w, 0) AS thu,
         greatest(rd - lag(rd) OVER w, 0) AS rd, greatest(wr - lag(wr) OVER w, 0) AS wr,
         greatest(pc - lag(pc) OVER w, 0) AS pc, greatest(pm - lag(pm) OVER w, 0) AS pm,
         greatest(pi - lag(pi) OVER w, 0) AS pi, greatest(oom - lag(oom) OVER w, 0) AS oom
  FROM s WINDOW w AS (PARTITION BY container_id ORDER BY t))
SELECT container_id,
       sum(cpu) / ((max(t) - min(t)) / 1000.0) / 1e6 AS cores,
       max(cpu * 1000.0 / dt) / 1e6 AS peak_cores,
       max(ws) AS peak_ws, arg_max(lim, t) AS mem_limit, arg_max(q, t) / arg_max(p, t) AS cpu_limit,
       100.0 * sum(thr) / nullif(sum(per), 0) AS throttled_pct, sum(thu) / 1e6 AS throttled_s,
       (sum(rd) + sum(wr)) / ((max(t) - min(t)) / 1000.0) AS io_bps,
       greatest(sum(pc), sum(pm), sum(pi)) / ((max(t) - min(t)) / 1000.0) / 1e4 AS pressure_pct,
       sum(oom) AS oom_kills
FROM d GROUP BY container_id
"""


def overview(data: pathlib.Path, frm: int, to: int, name: str):
    t = time.perf_counter()
    files = files_for(data, frm, to)
    listing = time.perf_counter() - t
    params = {"files": files, "frm": frm, "to": to}
    t = time.perf_counter()
    rows = connect().execute(OVERVIEW, params).fetchall()
    tops = {k: sorted(rows, key=lambda r: -(r[k] or 0))[:10] for k in (1, 3, 6, 8, 9)}
    cold = time.perf_counter() - t
    con = connect()
    con.execute(OVERVIEW, params).fetchall()
    warm = statistics.median(run(con, OVERVIEW, params)[0] for _ in range(5))
    print(f"duckdb   {name:<34} cold {1000 * (cold + listing):>6.1f} ms  warm median {1000 * (warm + listing):>6.1f} ms"
          f"  ({len(rows)} containers, {len(files)} files, top CPU {tops[1][0][1]:.2f} cores)")


def connect():
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def run(con, sql, params):
    t = time.perf_counter()
    rows = con.execute(sql, params).fetchall()
    return time.perf_counter() - t, len(rows)


def main():
    data, ids, hour_from, day_from, to = pathlib.Path(sys.argv[1]), sys.argv[2].split(","), *map(int, sys.argv[3:6])
    for name, sql, frm, warm_runs in [
        ("1 h, 10 containers, raw", HOUR, hour_from, 9),
        ("24 h, 10 containers, 1000 points", DAY, day_from, 5),
    ]:
        t = time.perf_counter()
        files = files_for(data, frm, to)
        listing = time.perf_counter() - t
        if not files:
            # FGM_BENCH_ONLY=overview writes no chart data.
            print(f"duckdb   {name:<34} no data files (this part of the bench was not run)")
            continue
        params = {"files": files, "ids": ids, "frm": frm, "to": to}
        cold, rows = run(connect(), sql, params)
        con = connect()
        run(con, sql, params)
        warm = statistics.median(run(con, sql, params)[0] for _ in range(warm_runs))
        print(f"duckdb   {name:<34} cold {1000 * (cold + listing):>6.1f} ms  warm median {1000 * (warm + listing):>6.1f} ms"
              f"  ({rows} rows, {len(files)} files, duckdb {duckdb.__version__})")


if __name__ == "__main__":
    main()
    if len(sys.argv) > 7:
        day_from, to = int(sys.argv[4]), int(sys.argv[5])
        overview(pathlib.Path(sys.argv[6]), day_from, to, "overview 24 h, 300 containers")
        overview(pathlib.Path(sys.argv[6]), int(sys.argv[7]), to, "overview 15 min, 300 containers")
