//! The viewer's page in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/check-viewer.mjs` (playwright-core), against the real
//! `fgm-viewer` binary on a real port, over 200 containers written with the
//! store's writer. The script checks what a person sees: the overview
//! without a click (rankings, OOM kill, throttling), one click to chart a
//! row, limits and requests, the row's processes (table by CPU, sparklines,
//! stacked memory), the time zone switch, both studies, export
//! (and its cap), comparison, shareable URLs, search, presets and zoom. It
//! saves a screenshot of the overview: into the target directory, and over
//! the README's `docs/viewer.png` when `FGM_UPDATE_SCREENSHOT=1`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `FGM_CHROMIUM`) and
//! `npm ci --prefix tests/browser`; `.ci/run` installs all three. A missing
//! one fails the test with the command that provides it.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

#[path = "viewer/fixture.rs"]
mod fixture;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use fine_grained_monitor::store::datasets::{self, Buffer, DEVICES, PROCESSES, Row};
use fine_grained_monitor::store::events::{self, EventKind, PodEvent};
use fine_grained_monitor::store::index::{Index, Requests};
use fine_grained_monitor::store::layout;

use fixture::*;

const CONTAINERS: usize = 200;
const SECONDS: i64 = 1200;
const NAMESPACES: [&str; 4] = ["shop", "payments", "kube-system", "monitoring"];
const APPS: [&str; 5] = ["checkout", "frontend", "cart", "search", "worker"];

fn id(i: usize) -> String {
    format!("{:012x}", 0xa1b2_0000_0000u64 + i as u64)
}

/// Containers with a story, among 200 quiet ones over 20 minutes.
const CHECKOUT: usize = 0; // OOM-killed at 10:00; memory steps to 900 MiB of 1 GiB at 11:40
const HOT: usize = 7; // 1.8 cores against a 2-core quota, throttled, CPU pressure
const CRON: usize = 3; // a 60 s cycle: busy 20 s of every minute
const DISK: usize = 5; // reads 20 MB/s

/// Values of container `n` at second `i`.
fn value(n: usize, metric: &str, i: i64) -> Option<i64> {
    let k = n as i64;
    let cpu_per_sec = |s: i64| match n {
        HOT => 1_800_000 + (s * 7919 % 100_000),
        CRON if s % 60 < 20 => 1_200_000,
        CRON => 50_000,
        CHECKOUT => 400_000,
        _ => 10_000 + k * 1_000 + (s * (k + 3) % 7) * 500,
    };
    Some(match metric {
        // Counters: totals of the per-second use so far.
        "cpu_usage_usec" => (0..i).map(cpu_per_sec).sum(),
        "cpu_nr_periods" => 10 * i,
        "cpu_nr_throttled" if n == HOT => 4 * i,
        "cpu_throttled_usec" if n == HOT => 20_000 * i,
        "cpu_pressure_some_usec" if n == HOT => 250_000 * i,
        "io_read_bytes" if n == DISK => 20_000_000 * i,
        "io_write_bytes" if n == DISK => 2_000_000 * i,
        "memory_working_set_bytes" | "memory_current_bytes" => match n {
            CHECKOUT if i >= 700 => (900 << 20) + ((i * 7919) % 1009) * 4096,
            CHECKOUT => (200 << 20) + ((i * 7919) % 1009) * 4096,
            _ => (50 << 20) + k * (1 << 20) + ((i * 37 + k * 11) % 200) * (64 << 10),
        },
        "memory_limit_bytes" if n == CHECKOUT => 1 << 30,
        "cpu_quota_usec" if n == HOT => 200_000,
        "cpu_period_usec" => 100_000,
        "pids_current" => 5 + k % 7,
        "memory_limit_bytes" | "cpu_quota_usec" | "memory_high_bytes" | "pids_max" => return None,
        _ => 0,
    })
}

/// The processes of CHECKOUT, as the agent's `--processes` writes them (a
/// processes file beside each metrics file): a JVM (0.35 cores), a sidecar
/// (0.04 cores) and a health check started every minute under one recycled
/// pid (25 ms of CPU each, a start and an exit row). Other containers have none.
const PICK_PROCESSES: [&str; 3] = [
    "java -Xmx768m -jar /app/checkout.jar",
    "node /srv/sidecar.js",
    "curl -s localhost:8080/healthz",
];

fn write_processes(dir: &Path, start: chrono::DateTime<chrono::Utc>) {
    let at = |sec: i64| ms(start) + sec * 1000;
    let row = |sec: i64, cmd: usize, event: &str, pid: i64, started: i64, cpu: i64, rss: i64| {
        let pss = (sec % 50 == 0).then_some(rss * 9 / 10);
        Row {
            timestamp_ms: at(sec),
            container: id(CHECKOUT),
            texts: vec![PICK_PROCESSES[cmd].into(), event.into()],
            ints: vec![
                Some(pid),
                Some(started),
                Some(pid - 4000),
                Some(1),
                Some(cpu),
                Some(rss),
                Some(8),
                pss,
                pss,
                None,
            ],
        }
    };
    let mut rows = Vec::new();
    for sec in (0..SECONDS).step_by(5) {
        let java_rss = (150 << 20) + sec * (1 << 19);
        rows.push(row(
            sec,
            0,
            "",
            4100,
            at(-600),
            350_000 * (sec + 600),
            java_rss,
        ));
        rows.push(row(
            sec,
            1,
            "",
            4200,
            at(-600),
            40_000 * (sec + 600),
            60 << 20,
        ));
    }
    for minute in 0..SECONDS / 60 {
        let sec = minute * 60 + 30;
        rows.push(row(sec, 2, "start", 4300, at(sec) - 200, 20_000, 4 << 20));
        rows.push(row(
            sec + 5,
            2,
            "exit",
            4300,
            at(sec) - 200,
            25_000,
            4 << 20,
        ));
    }
    for file_start in (0..SECONDS).step_by(90) {
        let mut buf = Buffer::new(&PROCESSES);
        for r in rows
            .iter()
            .filter(|r| (at(file_start)..at(file_start + 90)).contains(&r.timestamp_ms))
        {
            buf.push(r.clone());
        }
        datasets::write(dir, NODE, start + Span::seconds(file_start), &mut buf).unwrap();
    }
}

/// CHECKOUT's IO per device, as the agent writes it (a devices file beside each
/// metrics file): `/dev/vda` written at 3 MB/s, `/dev/vdb` read at 1 MB/s.
fn write_devices(dir: &Path, start: chrono::DateTime<chrono::Utc>) {
    for file_start in (0..SECONDS).step_by(90) {
        let mut buf = Buffer::new(&DEVICES);
        for sec in file_start..file_start + 90 {
            for (device, minor, read, write) in [
                ("/dev/vda", 0, 0, 3_000_000),
                ("/dev/vdb", 16, 1_000_000, 0),
            ] {
                buf.push(Row {
                    timestamp_ms: ms(start) + sec * 1000,
                    container: id(CHECKOUT),
                    texts: vec![device.into()],
                    ints: vec![
                        Some(253),
                        Some(minor),
                        Some(read * sec),
                        Some(write * sec),
                        Some(sec),
                        Some(sec),
                    ],
                });
            }
        }
        datasets::write(dir, NODE, start + Span::seconds(file_start), &mut buf).unwrap();
    }
}

fn write_data(dir: &Path) -> chrono::DateTime<chrono::Utc> {
    let start = t(2025, 12, 30, 9, 0, 0);
    let ids: Vec<String> = (0..CONTAINERS).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let values = |cid: &str, metric: &str, i: i64| {
        let n = usize::try_from(i64::from_str_radix(cid, 16).unwrap_or(0) - 0xa1b2_0000_0000)
            .unwrap_or(0);
        value(n, metric, i)
    };
    write_samples(dir, &refs, start, SECONDS, 90, &values);
    write_processes(dir, start);
    write_devices(dir, start);
    let mut index = Index::empty(start + Span::seconds(SECONDS), 90);
    index.extend_range(start, start + Span::seconds(SECONDS - 1));
    for (i, cid) in ids.iter().enumerate() {
        let app = APPS[i % APPS.len()];
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let mut e = entry(
            &format!("{app}-{i}"),
            ns,
            app,
            &[
                ("app", app),
                ("tier", if i % 2 == 0 { "web" } else { "batch" }),
            ],
        );
        e.first_seen = start;
        e.last_seen = start + Span::seconds(SECONDS - 1);
        if i == CHECKOUT {
            e.requests = Some(Requests {
                cpu_millicores: Some(250),
                memory_bytes: Some(512 << 20),
            });
        }
        index.containers.insert(cid.clone(), e);
    }
    index.save(&layout::index_path(dir)).unwrap();
    let event = |secs: i64, kind, reason: &str| PodEvent {
        time: start + Span::seconds(secs),
        kind,
        namespace: NAMESPACES[0].into(),
        pod: "checkout-0".into(),
        pod_uid: None,
        container: "checkout".into(),
        container_id: Some(id(CHECKOUT)),
        restart_count: 1,
        reason: Some(reason.into()),
        exit_code: Some(137),
        message: None,
    };
    events::append(
        dir,
        &[
            event(600, EventKind::OomKilled, "OOMKilled"),
            event(601, EventKind::Restart, "OOMKilled"),
        ],
    )
    .unwrap();
    start
}

/// Kills the viewer when the test ends, however it ends.
struct Viewer(Child);
impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(ok: bool, what: &str) {
    assert!(ok, "browser test prerequisite missing: {what}");
}

#[test]
fn page_charts_search_presets_and_events_in_chromium() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("FGM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    require(
        Path::new(&chromium).exists(),
        &format!(
            "{chromium} (install Debian's chromium: `apt-get install -y chromium`, as .ci/run does; or set FGM_CHROMIUM)"
        ),
    );
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        node_ok,
        "node (install it: `apt-get install -y nodejs npm`)",
    );
    require(
        root.join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "playwright-core (run `npm ci --prefix tests/browser`, as .ci/run does)",
    );

    let dir = tempfile::tempdir().unwrap();
    let start = write_data(dir.path());
    let port = free_port();
    let _viewer = Viewer(
        Command::new(env!("CARGO_BIN_EXE_fgm-viewer"))
            .arg(dir.path())
            .args(["--port", &port.to_string(), "--no-browser"])
            // Small, so the page's message past the cap can be seen with this data.
            .args(["--export-max-rows", "5000"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fgm-viewer"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "fgm-viewer did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The picture of the overview: a test artifact, and the README's when asked.
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("viewer-overview.png");
    let downloads = tempfile::tempdir().unwrap();
    let output = Command::new("node")
        .arg(root.join("tests/browser/check-viewer.mjs"))
        .env("FGM_URL", format!("http://127.0.0.1:{port}/"))
        .env("FGM_CHROMIUM", &chromium)
        .env("FGM_SCREENSHOT", &screenshot)
        .env("FGM_DOWNLOADS", downloads.path())
        .env("FGM_CONTAINERS", CONTAINERS.to_string())
        .env("FGM_PICK", id(CHECKOUT))
        .env("FGM_HOT", id(HOT))
        .env("FGM_CRON", id(CRON))
        .env("FGM_DISK", id(DISK))
        .env("FGM_START", start.timestamp_millis().to_string())
        .env("FGM_PICK_PROCESSES", PICK_PROCESSES.join("\n"))
        .env(
            "FGM_OOM_AT",
            (start + Span::seconds(600)).timestamp_millis().to_string(),
        )
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("browser check passed"),
        "{stdout}\n{stderr}"
    );
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "screenshot written"
    );
    if std::env::var("FGM_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let readme = root.join("docs/viewer.png");
        std::fs::create_dir_all(readme.parent().unwrap()).unwrap();
        std::fs::copy(&screenshot, &readme).unwrap();
        println!("updated {}", readme.display());
    }
}
