//! The viewer's page in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/check-viewer.mjs` (playwright-core), against the real
//! `fgm-viewer` binary on a real port, over 200 containers written with the
//! store's writer. The script picks a container and metrics, reads back what
//! the charts drew, searches, uses a preset and a zoom, checks the OOM
//! marker, and saves `docs/viewer.png`.
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
use fine_grained_monitor::store::events::{self, EventKind, PodEvent};
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::layout;

use fixture::*;

const CONTAINERS: usize = 200;
const SECONDS: i64 = 1200;
const NAMESPACES: [&str; 4] = ["shop", "payments", "kube-system", "monitoring"];
const APPS: [&str; 5] = ["checkout", "frontend", "cart", "search", "worker"];

fn id(i: usize) -> String {
    format!("{:012x}", 0xa1b2_0000_0000u64 + i as u64)
}

/// 200 containers over 20 minutes; container 0 (`checkout-0`) uses 0.5 cores
/// and is OOM-killed 10 minutes in.
fn write_data(dir: &Path) -> chrono::DateTime<chrono::Utc> {
    let start = t(2025, 12, 30, 9, 0, 0);
    let ids: Vec<String> = (0..CONTAINERS).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let values = |cid: &str, metric: &str, i: i64| {
        let n = i64::from_str_radix(cid, 16).unwrap_or(0) - 0xa1b2_0000_0000;
        match metric {
            "cpu_usage_usec" if n == 0 => Some(500_000 * i),
            "cpu_usage_usec" => Some((10_000 + n * 1_000) * i + (i * i * n) % 7_000),
            "memory_working_set_bytes" | "memory_current_bytes" => {
                Some((50 << 20) + n * (1 << 20) + ((i * 37 + n * 11) % 200) * (64 << 10))
            }
            _ => default_values(cid, metric, i),
        }
    };
    write_samples(dir, &refs, start, SECONDS, 90, &values);
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
        index.containers.insert(cid.clone(), e);
    }
    index.save(&layout::index_path(dir)).unwrap();
    events::append(
        dir,
        &[PodEvent {
            time: start + Span::seconds(600),
            kind: EventKind::OomKilled,
            namespace: NAMESPACES[0].into(),
            pod: "checkout-0".into(),
            pod_uid: None,
            container: "checkout".into(),
            container_id: Some(id(0)),
            restart_count: 1,
            reason: Some("OOMKilled".into()),
            exit_code: Some(137),
            message: None,
        }],
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

    let screenshot = root.join("docs/viewer.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let output = Command::new("node")
        .arg(root.join("tests/browser/check-viewer.mjs"))
        .env("FGM_URL", format!("http://127.0.0.1:{port}/"))
        .env("FGM_CHROMIUM", &chromium)
        .env("FGM_SCREENSHOT", &screenshot)
        .env("FGM_CONTAINERS", CONTAINERS.to_string())
        .env("FGM_PICK", id(0))
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
}
