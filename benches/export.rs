//! `cargo bench --bench export`: figures for export to object storage (issue #19),
//! printed, never asserted. Needs SeaweedFS's `weed` (tools/envtest/build.sh
//! seaweedfs) and DuckDB in target/py (tools/setup.sh).
//!
//! - upload cost on the agent: CPU time of the real uploader per 90-second
//!   file of 100 containers (read, SHA-256, signed PUT, record fsync);
//! - bytes per node per day at 100 containers, raw and after compaction;
//! - compaction throughput (one run over the whole simulated day);
//! - DuckDB query times over one simulated day of N nodes x 100 containers
//!   (`FGM_BENCH_NODES`, default 20; `FGM_BENCH_HOURS`, default 24), files made by
//!   the agent's own writer, before and after compaction.

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

/// Runs a shipped query and returns its wall time as run.py measured it (query only).
fn duckdb(server: &S3Server, query: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/queries");
    let began = Instant::now();
    let out = Command::new(python())
        .arg(root.join("run.py"))
        .arg(root.join("duckdb").join(query))
        .args([
            "--bucket",
            BUCKET,
            "--prefix",
            PREFIX,
            "--path-style",
            "--timing",
        ])
        .args(["--endpoint", &server.endpoint])
        .args(["--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .expect("run.py");
    let total = began.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return format!("FAILED: {err}");
    }
    let timing = err
        .lines()
        .find(|l| l.starts_with("query "))
        .unwrap_or("")
        .to_string();
    format!(
        "{timing}; with listing and set-up {:.2}s",
        total.as_secs_f64()
    )
}

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
        day + Span::hours(hours as i64 / 2) + Span::minutes(59),
    );
    let five = (hour.0, hour.0 + Span::minutes(5));
    let whole = (day, day + Span::hours(hours as i64) - Span::seconds(1));
    let queries = [
        ("top_cpu_p99.sql", "5 min", five),
        ("top_cpu_p99.sql", "1 h", hour),
        ("top_cpu_p99.sql", "whole day", whole),
        ("throttled_pods.sql", "1 h", hour),
    ];
    for (q, range, (from, to)) in queries {
        println!(
            "duckdb before compaction: {q} over {range}: {}",
            duckdb(&server, q, from, to)
        );
    }

    // 3. Compaction of the whole day (merged files; the raw ones removed by a later run).
    let args = s3_support::data::compact_args(&server, BUCKET, PREFIX);
    let cpu0 = cpu_seconds();
    let began = Instant::now();
    let report = rt
        .block_on(compact::run_with(&client, &args, Utc::now()))
        .expect("compaction");
    let wall = began.elapsed().as_secs_f64();
    println!(
        "compaction: {} files -> {} merged, {:.0} MB -> {:.0} MB ({:.0} %), {:.1} M rows in {wall:.0} s: {:.1} MB/s, {:.2} M rows/s, CPU {:.0} s",
        report.input_files,
        report.merged_files,
        report.input_bytes as f64 / 1e6,
        report.output_bytes as f64 / 1e6,
        report.output_bytes as f64 * 100.0 / report.input_bytes.max(1) as f64,
        report.rows as f64 / 1e6,
        report.input_bytes as f64 / 1e6 / wall,
        report.rows as f64 / 1e6 / wall,
        cpu_seconds() - cpu0
    );
    println!(
        "compaction: bytes per node per day after compaction: {:.1} MB (at {CONTAINERS} containers, {} h simulated)",
        report.output_bytes as f64 / nodes as f64 / 1e6 * 24.0 / hours as f64,
        hours
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
    for (q, range, (from, to)) in queries {
        println!(
            "duckdb after compaction: {q} over {range}: {}",
            duckdb(&server, q, from, to)
        );
    }
}
