//! `cargo bench --bench viewer`: figures for the viewer (printed, never asserted).
//!
//! - start-up to the first served request with 1,000 and with 30,000 data
//!   files (the real `fgm-viewer` binary, spawned; its peak RSS);
//! - one metric of 10 containers over 1 hour (raw), and over 24 hours
//!   downsampled to 1,000 points, cold (first request of a freshly started
//!   viewer, median of 3) and warm;
//! - the overview (`/api/overview`) of 24 hours of 300 containers, and of
//!   its last 15 minutes, cold and warm: ranked from the files' footer
//!   summaries, and (same data, files rewritten without them, as earlier
//!   versions wrote them) from their rows; of 24 hours and 7 days from the
//!   footers alone and with the agent's hour summaries; the bytes the footer
//!   summary adds per file and an hour summary takes;
//! - the same questions answered by DuckDB from the same files in the same
//!   run, when Python has `duckdb` (`pip install duckdb`).
//!
//! Data is written with the crate's own store writer. Start-up files are hard
//! links of one real file: start-up must not open them anyway.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use fine_grained_monitor::store::layout;
use fine_grained_monitor::store::schema::METRICS;
use fine_grained_monitor::store::writer::{SampleBuffer, write_data_file};

#[path = "support/recorded.rs"]
mod recorded;
use recorded::{ROTATION, ids, index_for, overview_data};

fn buffer(ids: &[String], start: DateTime<Utc>, secs: i64) -> SampleBuffer {
    let mut buf = SampleBuffer::new();
    for s in 0..secs {
        let t = start + Span::seconds(s);
        let abs = t.timestamp();
        for (n, id) in ids.iter().enumerate() {
            let n = n as i64;
            let row: Vec<Option<i64>> = METRICS
                .iter()
                .map(|m| match m.name {
                    "cpu_usage_usec" => Some(abs * (10_000 + n * 5_000) + (abs * 7919 + n) % 3_000),
                    "memory_limit_bytes" => None,
                    name if name.starts_with("memory") => {
                        Some((64 << 20) + n * (1 << 20) + (abs % 300) * 4096)
                    }
                    _ => Some(abs + n),
                })
                .collect();
            buf.push(t.timestamp_millis(), id, &row);
        }
    }
    buf
}

/// One file's samples for the overview data: `ids` from `start` for `secs`
/// seconds. CPU use differs per container, every tenth is throttled against a
/// quota and has a memory limit, every seventh reads from disk and stalls.
/// A copy of `dir` whose data files carry no footer summary (as files of
/// earlier versions): the overview then reads rows.
fn without_summaries(dir: &Path, to: &Path) -> (u64, u64) {
    use fine_grained_monitor::store::{reader, writer};
    let listing = layout::list_data_files(dir, None).expect("list");
    let (mut with, mut without) = (0u64, 0u64);
    for f in &listing.files {
        let batches = reader::read_file(&f.path, None).expect("read");
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            &mut out,
            batches[0].schema(),
            Some(writer::writer_properties("node-1")),
        )
        .expect("writer");
        for b in &batches {
            w.write(b).expect("write");
        }
        w.close().expect("close");
        let target = to.join(f.path.strip_prefix(dir).expect("inside"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("dir");
        std::fs::write(&target, &out).expect("write copy");
        with += std::fs::metadata(&f.path).expect("stat").len();
        without += out.len() as u64;
    }
    std::fs::copy(layout::index_path(dir), layout::index_path(to)).expect("index");
    (with, without)
}

/// `files` data files, 90 s apart, ending at `end`: one written, the rest hard links.
fn many_files(dir: &Path, files: usize, end: DateTime<Utc>) {
    let ids = ids(200);
    let first = end - Span::seconds(ROTATION * files as i64);
    let original = write_data_file(dir, "node-1", first, &buffer(&ids[..1], first, 1))
        .expect("write")
        .expect("file")
        .path;
    for k in 1..files {
        let start = first + Span::seconds(ROTATION * k as i64);
        let path = layout::data_file_path(dir, "node-1", start);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::hard_link(&original, &path).expect("link");
    }
    index_for(&ids, first, end)
        .save(&layout::index_path(dir))
        .expect("index");
}

/// 24 hours of 20 containers, one sample per second, 90 s files.
fn day_of_data(dir: &Path, end: DateTime<Utc>) -> Vec<String> {
    let ids = ids(20);
    let first = end - Span::hours(24);
    let mut t = first;
    while t < end {
        write_data_file(dir, "node-1", t, &buffer(&ids, t, ROTATION)).expect("write");
        t += Span::seconds(ROTATION);
    }
    index_for(&ids, first, end - Span::seconds(1))
        .save(&layout::index_path(dir))
        .expect("index");
    ids
}

struct Viewer {
    child: Child,
    port: u16,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Spawns the viewer and returns it with the time to its first `ready` status.
fn start_viewer(dir: &Path) -> (Viewer, Duration) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_fgm-viewer"))
        .arg(dir)
        .args([
            "--port",
            &port.to_string(),
            "--no-browser",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn fgm-viewer");
    let viewer = Viewer { child, port };
    loop {
        if let Some((200, body)) = http_get(port, "/api/status")
            && body.contains("\"state\":\"ready\"")
        {
            return (viewer, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "viewer did not become ready"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn timed_get(port: u16, path: &str) -> (Duration, usize) {
    let t = Instant::now();
    let (code, body) = http_get(port, path).expect("request");
    let took = t.elapsed();
    assert_eq!(code, 200, "{path}: {body}");
    let points = body.matches(',').count();
    (took, points)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Cold (first request of a fresh viewer, median of 3) and warm (median of
/// 5 repeats) times of `path` on `dir`, printed; then the viewer's peak RSS.
fn measure(dir: &Path, name: &str, path: &str) {
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut values = 0;
    let mut rss = 0.0f64;
    // Median of 5 fresh viewer processes (the "cold").
    for _ in 0..5 {
        let (viewer, _) = start_viewer(dir);
        let (took, n) = timed_get(viewer.port, path);
        cold.push(took);
        values = n;
        warm.extend((0..5).map(|_| timed_get(viewer.port, path).0));
        rss = rss.max(peak_rss_mib(viewer.child.id()));
    }
    println!(
        "viewer   {name:<34} cold {:>9}  warm median {:>9}  (~{values} values, peak RSS {rss:.1} MiB)",
        ms(median(cold)),
        ms(median(warm))
    );
}

/// The first request of fresh viewers right after the page cache is dropped
/// (the files read from the disk): median of 3. Needs root.
fn measure_uncached(dir: &Path, name: &str, path: &str) {
    let mut cold = Vec::new();
    for _ in 0..3 {
        let _ = Command::new("sync").status();
        if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "3") {
            println!("viewer   {name:<34} page cache not dropped ({e}; needs root)");
            return;
        }
        let (viewer, _) = start_viewer(dir);
        cold.push(timed_get(viewer.port, path).0);
    }
    println!(
        "viewer   {name:<34} cold {:>9}  after dropping the page cache (median of 3)",
        ms(median(cold))
    );
}

/// Writes the hour summaries the agent would have written (every closed
/// hour's), prints their cost, and settles them.
fn add_hour_summaries(dir: &Path) {
    use fine_grained_monitor::store::hours;
    let t = Instant::now();
    let written = hours::summarise_all(dir, "node-1").expect("hour summaries");
    let took = t.elapsed();
    let listing = layout::list_data_files(dir, None).expect("list");
    let bytes: u64 = listing
        .hours
        .iter()
        .map(|h| std::fs::metadata(&h.path).map_or(0, |m| m.len()))
        .sum();
    println!(
        "hour summaries: {written} written in {:.1} s ({:.1} ms each), {:.1} KB each (300 containers)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / written.max(1) as f64,
        bytes as f64 / written.max(1) as f64 / 1000.0
    );
    settle();
}

/// Writes the freshly made data back to disk before anything is timed: on a
/// node the files a query reads were written long before, and the kernel's
/// writeback of a few hundred MB would otherwise run during the cold request.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(1));
}

/// The bench's data directory: removed at the end unless kept.
enum KeptOrTemp {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl KeptOrTemp {
    fn path(&self) -> &Path {
        match self {
            KeptOrTemp::Kept(p) => p,
            KeptOrTemp::Temp(t) => t.path(),
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    // FGM_BENCH_KEEP=1 leaves the data for a profiler (its path is printed).
    let root = if std::env::var_os("FGM_BENCH_KEEP").is_some() {
        let kept = root.keep();
        println!("data kept in {}", kept.display());
        KeptOrTemp::Kept(kept)
    } else {
        KeptOrTemp::Temp(root)
    };
    let end = Utc
        .with_ymd_and_hms(2025, 12, 30, 0, 0, 0)
        .single()
        .expect("time");
    println!(
        "fgm-viewer benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // FGM_BENCH_ONLY=startup|charts|overview runs one part (while iterating).
    let only = std::env::var("FGM_BENCH_ONLY").ok();
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    for files in [1_000usize, 30_000]
        .into_iter()
        .filter(|_| wants("startup"))
    {
        let dir = root.path().join(format!("files-{files}"));
        let t = Instant::now();
        many_files(&dir, files, end);
        let made = t.elapsed();
        let mut runs = Vec::new();
        let mut rss = 0.0f64;
        for _ in 0..5 {
            let (viewer, took) = start_viewer(&dir);
            runs.push(took);
            rss = rss.max(peak_rss_mib(viewer.child.id()));
        }
        println!(
            "start-up to first served request, {files:>6} files: median {} (min {}, max {}), peak RSS {rss:.1} MiB  [data made in {:.1} s]",
            ms(median(runs.clone())),
            ms(*runs.iter().min().expect("runs")),
            ms(*runs.iter().max().expect("runs")),
            made.as_secs_f64()
        );
    }

    let dir = root.path().join("day");
    let t = Instant::now();
    let ids = if wants("charts") || only.is_none() {
        day_of_data(&dir, end)
    } else {
        self::ids(20)
    };
    println!(
        "query data: 24 h, 20 containers, 1 s samples, 960 files, written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    settle();
    let ten = ids[..10].join(",");
    let hour_from = (end - Span::hours(1)).timestamp_millis();
    let day_from = (end - Span::hours(24)).timestamp_millis();
    let to = end.timestamp_millis() - 1000;
    let hour = format!(
        "/api/timeseries?containers={ten}&metric=cpu_usage_usec&from={hour_from}&to={to}&points=10000"
    );
    let day = format!(
        "/api/timeseries?containers={ten}&metric=cpu_usage_usec&from={day_from}&to={to}&points=1000"
    );
    for (name, path) in [
        ("1 h, 10 containers, raw", &hour),
        ("24 h, 10 containers, 1000 points", &day),
    ]
    .into_iter()
    .filter(|_| wants("charts"))
    {
        measure(&dir, name, path);
    }
    if wants("charts") {
        measure_uncached(&dir, "24 h, 10 containers, 1000 points", &day);
    }

    if !wants("overview") {
        return;
    }
    let overview_dir = root.path().join("overview");
    let t = Instant::now();
    overview_data(&overview_dir, end, 300, 24);
    println!(
        "overview data: 24 h, 300 containers, 1 s samples, 960 files, written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rows_dir = root.path().join("overview-rows");
    let (with, without) = without_summaries(&overview_dir, &rows_dir);
    println!(
        "footer summary: {:.1} KB per file of 300 containers ({:.1} KB without it: +{:.1} %)",
        with as f64 / 960.0 / 1000.0,
        without as f64 / 960.0 / 1000.0,
        100.0 * (with as f64 - without as f64) / without as f64
    );
    settle();
    let quarter_from = (end - Span::minutes(15)).timestamp_millis();
    let overview_day = format!("/api/overview?from={day_from}&to={to}");
    let overview_quarter = format!("/api/overview?from={quarter_from}&to={to}");
    measure(
        &overview_dir,
        "overview 24 h, 300 ctrs, footers",
        &overview_day,
    );
    add_hour_summaries(&overview_dir);
    measure(
        &overview_dir,
        "overview 24 h, 300 containers",
        &overview_day,
    );
    measure(
        &rows_dir,
        "overview 24 h, 300 ctrs, from rows",
        &overview_day,
    );
    measure(
        &overview_dir,
        "overview 15 min, 300 containers",
        &overview_quarter,
    );
    if std::env::var_os("FGM_BENCH_SKIP_WEEK").is_none() {
        let week_dir = root.path().join("overview-week");
        let t = Instant::now();
        overview_data(&week_dir, end, 300, 24 * 7);
        println!(
            "overview data: 7 d, 300 containers, 6720 files, written in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        settle();
        let week_from = (end - Span::days(7)).timestamp_millis();
        let week = format!("/api/overview?from={week_from}&to={to}");
        measure(&week_dir, "overview 7 d, 300 ctrs, footers", &week);
        add_hour_summaries(&week_dir);
        measure(&week_dir, "overview 7 d, 300 containers", &week);
    }

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/viewer_duckdb.py");
    let has_duckdb = Command::new("python3")
        .args(["-c", "import duckdb"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_duckdb {
        println!("DuckDB: not installed, no comparison (pip install duckdb)");
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .args([
            &ten,
            &hour_from.to_string(),
            &day_from.to_string(),
            &to.to_string(),
        ])
        .arg(&overview_dir)
        .arg(quarter_from.to_string())
        .output()
        .expect("run DuckDB script");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        println!(
            "DuckDB script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
