//! `cargo bench --bench export`: figures for export to object storage (issue #19),
//! printed, never asserted. Needs SeaweedFS's `weed` (tools/envtest/build.sh
//! seaweedfs) and DuckDB in target/py (tools/setup.sh).
//!
//! - upload cost on the agent: CPU time of the real uploader per 90-second
//!   file of 100 containers (read, SHA-256, signed PUT, record fsync);
//! - bytes per node per day at 100 containers, raw and after compaction;
//! - compaction throughput (one run over the whole simulated day), and what
//!   its rates and summaries cost (time, bytes per node per day);
//! - DuckDB query times over one simulated day of N nodes x 100 containers
//!   (`FGM_BENCH_NODES`, default 20; `FGM_BENCH_HOURS`, default 24), files made by
//!   the agent's own writer: top p99 CPU from the raw counters before and after
//!   compaction (top_cpu_p99_from_metrics.sql), and from the rates and hourly
//!   summaries (top_cpu_p99.sql), with the bytes a 5-minute question reads and
//!   the p99 of the histograms against the exact p99.

#[path = "../tests/s3_support/mod.rs"]
mod s3_support;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use fine_grained_monitor::export::uploader::{Uploader, UploaderConfig};
use fine_grained_monitor::export::{ExportMetrics, compact, keys};
use fine_grained_monitor::store::schema::METRICS;
use fine_grained_monitor::store::writer::{SampleBuffer, write_data_file};
use s3_support::{ACCESS_KEY, S3Server, SECRET_KEY};

const CONTAINERS: usize = 100;
const ROTATION: i64 = 90;
const BUCKET: &str = "bench";
const PREFIX: &str = "fgm/bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) this process used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the command name); 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

/// One rotation of 100 containers, with the noise real counters and gauges have.
fn interval(node: usize, start: DateTime<Utc>) -> SampleBuffer {
    let mut buf = SampleBuffer::new();
    let mut row = vec![None; METRICS.len()];
    for s in 0..ROTATION {
        let t = start + Span::seconds(s);
        let abs = t.timestamp();
        for c in 0..CONTAINERS {
            let n = c as i64;
            let noise = (abs * 7919 + n * 104_729 + node as i64 * 31) % 997;
            for (m, v) in row.iter_mut().enumerate() {
                let name = METRICS[m].name;
                *v = match name {
                    "cpu_usage_usec" => Some(abs * (10_000 + n * 5_000) + noise * 13),
                    "cpu_user_usec" => Some(abs * (7_000 + n * 3_000) + noise * 7),
                    "cpu_system_usec" => Some(abs * (3_000 + n * 2_000) + noise * 5),
                    "memory_limit_bytes" => Some(512 << 20),
                    _ if name.starts_with("memory") => {
                        Some((64 << 20) + n * (1 << 20) + noise * 4096)
                    }
                    _ if METRICS[m].kind.as_str() == "counter" => Some(abs * (n + 1) + noise),
                    _ => Some(n + noise % 17),
                };
            }
            buf.push(
                t.timestamp_millis(),
                &format!("{:012x}", 0xc0de_0000_0000u64 + c as u64),
                &row,
            );
        }
    }
    buf
}

fn encode(node: usize, start: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::new();
    interval(node, start)
        .encode(&mut out, &format!("node-{node:02}"))
        .expect("encode");
    out
}

fn python() -> std::path::PathBuf {
    std::env::var_os("FGM_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"))
}

/// A query run: run.py's own times (set-up: listing and views; query) and the
/// whole process's wall time.
struct Timed {
    setup: f64,
    query: f64,
    total: f64,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Timed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} s (query {:.2} s, set-up {:.2} s; process {:.2} s)",
            self.setup + self.query,
            self.query,
            self.setup,
            self.total
        )
    }
}

/// Runs `query` (a shipped .sql name or a path) with run.py over `from..to`.
fn duckdb(
    server: &S3Server,
    query: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    extra: &[&str],
) -> Timed {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/queries");
    let file = if Path::new(query).is_absolute() {
        query.into()
    } else {
        root.join("duckdb").join(query)
    };
    let began = Instant::now();
    let out = Command::new(python())
        .arg(root.join("run.py"))
        .arg(file)
        .args(["--bucket", BUCKET, "--prefix", PREFIX, "--path-style"])
        .args(["--timing", "--endpoint", &server.endpoint])
        .args(["--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .expect("run.py");
    let total = began.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        panic!("{query}: {stderr}");
    }
    // "set-up: 0.291s (listing, views)" and "query top_cpu_p99.sql: 0.073s, 10 rows".
    let seconds = |prefix: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|v| v.split('s').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Timed {
        setup: seconds("set-up"),
        query: seconds("query "),
        total,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

/// The one JSON row `sql` returns over `from..to`.
fn duckdb_row(
    server: &S3Server,
    sql: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("q.sql");
    std::fs::write(&file, sql).expect("write the query");
    let out = duckdb(server, file.to_str().unwrap_or_default(), from, to, &[]);
    serde_json::from_str(out.stdout.lines().next().unwrap_or("null")).expect("a JSON row")
}

/// Exact p99 (from every rate) against the histograms' p99, per container.
const P99_ERROR: &str = "
WITH exact AS (
    SELECT node, container_id, quantile_cont(cpu_cores, 0.99) AS p99 FROM fgm_rates
    WHERE hour BETWEEN date_trunc('hour', getvariable('fgm_from')) AND getvariable('fgm_to')
      AND timestamp BETWEEN getvariable('fgm_from') AND getvariable('fgm_to')
      AND cpu_cores IS NOT NULL
    GROUP BY ALL
), hist AS (
    SELECT node, container_id, value AS p99
    FROM fgm_percentiles('cpu_cores', getvariable('fgm_from'), fgm_hours_end(getvariable('fgm_to')), 0.99)
)
SELECT count(*) AS containers, max(abs(h.p99 - e.p99) / e.p99) AS max_err,
       avg(abs(h.p99 - e.p99) / e.p99) AS mean_err
FROM exact e JOIN hist h USING (node, container_id) WHERE e.p99 > 0";

/// Rows of the hourly summaries a whole-day question reads.
const SUMMARY_ROWS: &str = "
SELECT count(*) FILTER (WHERE bucket IS NULL) AS stats_rows,
       count(*) FILTER (WHERE bucket IS NOT NULL) AS bucket_rows
FROM fgm_summary_rows
WHERE metric = 'cpu_cores' AND hour >= getvariable('fgm_from')
  AND hour < fgm_hours_end(getvariable('fgm_to'))";

fn main() {
    let nodes = env_usize("FGM_BENCH_NODES", 20);
    let hours = env_usize("FGM_BENCH_HOURS", 24);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = S3Server::start("bench", None);
    let client = rt.block_on(server.bucket(BUCKET));

    // 1. Upload cost on the agent: the real uploader over 40 files (one hour).
    let data = tempfile::tempdir().expect("tempdir");
    let day_start = (Utc::now() - Span::days(2))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("t")
        .and_utc();
    let files = 40;
    let mut file_bytes = 0u64;
    for f in 0..files {
        let start = day_start + Span::seconds(f * ROTATION);
        let written = write_data_file(data.path(), "node-00", start, &interval(0, start))
            .expect("write")
            .expect("file");
        file_bytes += written.bytes;
    }
    let metrics =
        ExportMetrics::register(&mut Default::default(), format!("s3://{BUCKET}/{PREFIX}"));
    let uploader = Uploader::new(
        UploaderConfig {
            data_dir: data.path().to_path_buf(),
            node: "node-00".into(),
            prefix: PREFIX.into(),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
            rescan_every: Duration::from_secs(3600),
            drain: Duration::from_secs(1),
        },
        Ok(server.admin_client(BUCKET)),
        metrics.clone(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let cpu0 = cpu_seconds();
    let began = Instant::now();
    let task = rt.spawn(uploader.run(rx, stop.clone()));
    while metrics.status().uploaded_files < files as u64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = began.elapsed();
    let cpu = cpu_seconds() - cpu0;
    stop.cancel();
    let _ = rt.block_on(task);
    let per_file = file_bytes as f64 / files as f64;
    println!(
        "upload: {files} files of {CONTAINERS} containers x {ROTATION} s, {:.0} KB each",
        per_file / 1e3
    );
    println!(
        "upload: CPU {:.2} ms per file (user+system of the uploader's process), wall {:.1} ms per file",
        cpu * 1e3 / files as f64,
        wall.as_secs_f64() * 1e3 / files as f64
    );
    println!(
        "upload: raw bytes per node per day at {CONTAINERS} containers: {:.1} MB ({} files)",
        per_file * (86_400 / ROTATION) as f64 / 1e6,
        86_400 / ROTATION
    );

    // 2. One simulated day of N nodes (the node of step 1 is replaced).
    let day = day_start + Span::days(1);
    let per_node = (hours as i64 * 3600 / ROTATION) as usize;
    let began = Instant::now();
    let mut raw_bytes = 0u64;
    for node in 0..nodes {
        let bodies: Vec<(String, Vec<u8>)> = (0..per_node)
            .map(|f| {
                let start = day + Span::seconds(f as i64 * ROTATION);
                (
                    keys::data_key(PREFIX, &format!("node-{node:02}"), start),
                    encode(node, start),
                )
            })
            .collect();
        rt.block_on(async {
            use futures::StreamExt;
            futures::stream::iter(bodies)
                .map(|(key, body)| {
                    let client = client.clone();
                    async move {
                        let n = body.len() as u64;
                        client
                            .put_object(&key, body.into(), "application/vnd.apache.parquet")
                            .await
                            .expect("put");
                        n
                    }
                })
                .buffer_unordered(4)
                .for_each(|n| {
                    raw_bytes += n;
                    async {}
                })
                .await;
        });
    }
    println!(
        "day: {nodes} nodes x {per_node} files x {CONTAINERS} containers = {:.1} M rows, {:.0} MB raw, made and uploaded in {:.0} s",
        (nodes * per_node * CONTAINERS * ROTATION as usize) as f64 / 1e6,
        raw_bytes as f64 / 1e6,
        began.elapsed().as_secs_f64()
    );
    let hour = (
        day + Span::hours(hours as i64 / 2),
        day + Span::hours(hours as i64 / 2) + Span::minutes(59) + Span::seconds(59),
    );
    let five = (hour.0, hour.0 + Span::minutes(5));
    let whole = (day, day + Span::hours(hours as i64) - Span::seconds(1));
    let ranges = [
        ("5 min", five, 1.0),
        ("1 h", hour, 2.0),
        ("whole day", whole, 3.0),
    ];
    let mut raw_times = Vec::new();
    for (range, (from, to), _) in ranges {
        let t = duckdb(&server, "top_cpu_p99_from_metrics.sql", from, to, &[]);
        println!("duckdb raw files: top p99 CPU from the counters over {range}: {t}");
        raw_times.push(t);
    }
    let throttled_raw = duckdb(&server, "throttled_pods.sql", hour.0, hour.1, &[]);
    println!("duckdb raw files: throttled pods over 1 h: {throttled_raw}");

    // 3. Compaction of the whole day (merged files, rates, summaries; the raw ones removed by
    // a later run).
    let args = s3_support::data::compact_args(&server, BUCKET, PREFIX);
    let cpu0 = cpu_seconds();
    let began = Instant::now();
    let report = rt
        .block_on(compact::run_with(&client, &args, Utc::now()))
        .expect("compaction");
    let wall = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "compaction: {} files -> {} merged, {:.0} MB -> {:.0} MB ({:.0} %), {:.1} M rows in {wall:.0} s: {:.1} MB/s, {:.2} M rows/s, CPU {cpu:.0} s",
        report.input_files,
        report.merged_files,
        report.input_bytes as f64 / 1e6,
        report.output_bytes as f64 / 1e6,
        report.output_bytes as f64 * 100.0 / report.input_bytes.max(1) as f64,
        report.rows as f64 / 1e6,
        report.input_bytes as f64 / 1e6 / wall,
        report.rows as f64 / 1e6 / wall,
    );
    let per_node_day = |bytes: u64| bytes as f64 / nodes as f64 / 1e6 * 24.0 / hours as f64;
    println!(
        "compaction: bytes per node per day: merged {:.1} MB, rates {:.1} MB, summaries {:.2} MB ({} summary rows in all) (at {CONTAINERS} containers, {hours} h simulated)",
        per_node_day(report.output_bytes),
        per_node_day(report.rates_bytes),
        per_node_day(report.summaries_bytes),
        report.summary_rows
    );
    println!(
        "compaction: rates and summaries cost {:.0} s of the {:.0} s merging (derive in the blocking task and their PUTs: {:.0} %), {} of {} spans seeded by the data before them",
        report.derive_seconds,
        report.merge_seconds,
        report.derive_seconds * 100.0 / report.merge_seconds.max(1e-9),
        report.seeded,
        report.merged_files
    );
    let later = rt
        .block_on(compact::run_with(
            &client,
            &args,
            Utc::now() + Span::hours(1),
        ))
        .expect("second run");
    println!(
        "compaction: second run removed {} replaced files",
        later.deleted
    );

    // 4. The same questions after compaction: from the counters of the merged files (as
    // before this issue), and from the rates and summaries.
    let mut compacted_times = Vec::new();
    for (range, (from, to), _) in ranges {
        let t = duckdb(&server, "top_cpu_p99_from_metrics.sql", from, to, &[]);
        println!("duckdb merged files: top p99 CPU from the counters over {range}: {t}");
        compacted_times.push(t);
    }
    let throttled = duckdb(&server, "throttled_pods.sql", hour.0, hour.1, &[]);
    println!("duckdb merged files: throttled pods over 1 h: {throttled}");
    let mut new_times = Vec::new();
    for (range, (from, to), target) in ranges {
        let t = duckdb(&server, "top_cpu_p99.sql", from, to, &[]);
        println!("duckdb rates and summaries: top p99 CPU over {range}: {t} (target < {target} s)");
        new_times.push(t);
    }
    // What a 5-minute question reads, by the server's count and by EXPLAIN ANALYZE.
    let listing = rt
        .block_on(client.list(&format!("{PREFIX}/"), None))
        .expect("list");
    let bytes_under = |part: &str| -> u64 {
        listing
            .objects
            .iter()
            .filter(|o| o.key.contains(part))
            .map(|o| o.size)
            .sum()
    };
    let (rates_total, day_total) = (bytes_under("/rates/"), bytes_under(".parquet"));
    let sent = server.sent_bytes(BUCKET);
    let profiled = duckdb(&server, "top_cpu_p99.sql", five.0, five.1, &["--profile"]);
    let read = server.sent_bytes(BUCKET) - sent;
    let explain: Vec<&str> = profiled
        .stderr
        .lines()
        .filter(|l| l.contains("in:") || l.contains("#GET") || l.contains("Files Read"))
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .collect();
    println!(
        "duckdb rates: a 5-minute question read {:.2} MB of the day's {:.0} MB (rates objects {:.0} MB): {:.3} % (two runs: EXPLAIN ANALYZE and the query); EXPLAIN ANALYZE: {}",
        read as f64 / 1e6,
        day_total as f64 / 1e6,
        rates_total as f64 / 1e6,
        read as f64 * 100.0 / day_total.max(1) as f64,
        explain.join(", ")
    );
    let rows = duckdb_row(&server, SUMMARY_ROWS, whole.0, whole.1);
    println!(
        "duckdb summaries: the whole day's cpu_cores is {} count/sum/min/max rows and {} bucket rows ({:.0} M samples)",
        rows["stats_rows"],
        rows["bucket_rows"],
        report.rows as f64 / 1e6
    );
    let err = duckdb_row(&server, P99_ERROR, whole.0, whole.1);
    println!(
        "duckdb summaries: p99 from the histograms against the exact p99 of the rates, whole day, {} containers: max error {:.3} %, mean {:.3} % (target within 1 %)",
        err["containers"],
        err["max_err"].as_f64().unwrap_or(f64::NAN) * 100.0,
        err["mean_err"].as_f64().unwrap_or(f64::NAN) * 100.0
    );
    println!(
        "\ntop p99 CPU, {nodes} nodes x {CONTAINERS} containers (listing and set-up included):"
    );
    println!("| range | raw files | merged files | rates / summaries | target |");
    println!("|---|---|---|---|---|");
    for (i, (range, _, target)) in ranges.iter().enumerate() {
        let t = |t: &Timed| t.setup + t.query;
        println!(
            "| {range} | {:.1} s | {:.1} s | {:.2} s | < {target} s |",
            t(&raw_times[i]),
            t(&compacted_times[i]),
            t(&new_times[i])
        );
    }
}
