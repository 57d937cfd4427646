//! `kubectl fgm view`'s cluster view (issue #26) over real viewers: two nodes' viewers serve
//! their data directories on real ports, a third node's `fgm-viewer` process is stopped with
//! SIGSTOP (it accepts connections and never answers), and the cluster view joins them over
//! real HTTP. Here each viewer is reached at its address ([`Reach::Direct`], as the 20-node
//! benchmark's recorded nodes are) instead of through a port-forward: the port-forward path
//! is the real node's (`tests/real_node/plugin.rs`); everything after the connection is the
//! same code.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

#[path = "viewer/fixture.rs"]
mod fixture;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use fine_grained_monitor::plugin::federation::{FedNode, Federation};
use fine_grained_monitor::plugin::forward::Reach;
use fine_grained_monitor::plugin::view;
use fine_grained_monitor::viewer;

use fixture::*;

const SECONDS: i64 = 600;
const TIMEOUT: Duration = Duration::from_secs(1);

/// n2's WEB spins 1.5 cores (n1's 0.5): the hottest container of the cluster.
fn hot_values(id: &str, metric: &str, i: i64) -> Option<i64> {
    match (id, metric) {
        (WEB, "cpu_usage_usec") => Some(1_500_000 * i),
        (DB, "cpu_usage_usec") => Some(100_000 * i),
        _ => default_values(id, metric, i),
    }
}

/// A data directory with WEB and DB over the last ten minutes.
fn data(values: &ValueFn) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let end = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    let start = end - TimeDelta::seconds(SECONDS);
    write_samples(dir.path(), &[WEB, DB], start, SECONDS, 90, values);
    write_index(dir.path(), start, end - TimeDelta::seconds(1));
    dir
}

/// A viewer of `dir` on a real port, in this process.
async fn serve_viewer(dir: &Path, stop: &CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(viewer::serve(listener, options(dir), stop.clone()));
    addr
}

/// The stopped node: a real `fgm-viewer` process, SIGSTOP'd once it answers; continued and
/// killed when the test ends.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.0);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn stopped_viewer(dir: &Path) -> (Stopped, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_fgm-viewer"))
        .arg(dir)
        .args(["--port", &port.to_string(), "--no-browser"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fgm-viewer");
    let stopped = Stopped(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(addr, "/healthz").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "fgm-viewer did not answer on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = rustix::process::Pid::from_child(&stopped.0);
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    (stopped, addr)
}

/// GET over a new TCP connection: (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

async fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, body) = http_get(addr, path).await;
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Two answering nodes, one stopped, and the cluster view over them.
struct World {
    view: SocketAddr,
    stop: CancellationToken,
    _dirs: Vec<tempfile::TempDir>,
    _stopped: Stopped,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn world() -> World {
    let stop = CancellationToken::new();
    let (d1, d2, d3) = (
        data(&default_values),
        data(&hot_values),
        data(&default_values),
    );
    let n1 = serve_viewer(d1.path(), &stop).await;
    let n2 = serve_viewer(d2.path(), &stop).await;
    let (stopped, n3) = stopped_viewer(d3.path()).await;
    let fed = Federation::new(
        [("n1", n1), ("n2", n2), ("n3", n3)]
            .into_iter()
            .map(|(name, addr)| FedNode {
                name: name.into(),
                reach: Reach::Direct(addr),
            })
            .collect(),
        16,
        TIMEOUT,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let view = listener.local_addr().unwrap();
    let limits = fine_grained_monitor::http::Limits::default();
    let app = view::app(fed);
    let s = stop.clone();
    tokio::spawn(async move { fine_grained_monitor::http::serve(listener, app, &limits, s).await });
    World {
        view,
        stop,
        _dirs: vec![d1, d2, d3],
        _stopped: stopped,
    }
}

fn key(node: &str, id: &str) -> String {
    format!("{node}/{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_view_joins_nodes_and_names_the_one_not_answering() {
    let w = world().await;

    let began = Instant::now();
    let (code, status) = get_json(w.view, "/api/status").await;
    let took = began.elapsed();
    assert_eq!(code, 200, "{status:#}");
    assert_eq!(status["state"], "ready", "{status:#}");
    assert_eq!(status["nodes"].as_array().unwrap().len(), 2, "{status:#}");
    assert_eq!(status["containers"], 6, "three per node");
    let silent = &status["not_answering"][0];
    assert_eq!(silent["node"], "n3", "{status:#}");
    assert!(
        silent["reason"]
            .as_str()
            .unwrap()
            .contains("no answer within 1s"),
        "{silent}"
    );
    assert!(
        took < TIMEOUT * 3,
        "the stopped node costs its timeout, not more: {took:?}"
    );

    // Asked again at once: the same joined status (the nodes are asked once a second at most).
    let (_, again) = get_json(w.view, "/api/status").await;
    assert_eq!(
        again["asked_at"], status["asked_at"],
        "reused within a second"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, later) = get_json(w.view, "/api/status").await;
    assert_ne!(
        later["asked_at"], status["asked_at"],
        "asked again after a second"
    );

    let (_, list) = get_json(w.view, "/api/containers").await;
    let ids: Vec<&str> = list["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for k in [key("n1", WEB), key("n1", DB), key("n2", WEB), key("n2", DB)] {
        assert!(ids.contains(&k.as_str()), "{k} in {ids:?}");
    }
    let n2_web = list["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == key("n2", WEB))
        .unwrap();
    assert_eq!(n2_web["node"], "n2");
    assert_eq!(n2_web["pod_name"], "web-0");
    assert_eq!(list["not_answering"][0]["node"], "n3");

    // The overview ranks across nodes: n2's WEB (1.5 cores), n1's WEB (0.5), n1's DB (0.25).
    let (code, overview) = get_json(w.view, "/api/overview?top=3").await;
    assert_eq!(code, 200, "{overview:#}");
    let cpu: Vec<(&str, f64)> = overview["rankings"]["cpu"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["value"].as_f64().unwrap()))
        .collect();
    let order: Vec<&str> = cpu.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        order,
        vec![
            key("n2", WEB).as_str(),
            key("n1", WEB).as_str(),
            key("n1", DB).as_str()
        ],
        "{cpu:?}"
    );
    assert!((cpu[0].1 - 1.5).abs() < 0.05, "{cpu:?}");
    assert!(
        overview["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["node"].is_string()),
        "every row carries its node"
    );
    assert_eq!(overview["not_answering"][0]["node"], "n3");

    // One chart over containers of two nodes, in the order asked.
    let (code, chart) = get_json(
        w.view,
        &format!(
            "/api/timeseries?containers={},{}&metric=cpu_usage_usec&points=100",
            key("n2", WEB),
            key("n1", WEB)
        ),
    )
    .await;
    assert_eq!(code, 200, "{chart:#}");
    let mean = |k: &str| {
        let (_, v) = series(&chart, k);
        let v: Vec<f64> = v.into_iter().flatten().collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!((mean(&key("n2", WEB)) - 1.5).abs() < 0.05);
    assert!((mean(&key("n1", WEB)) - 0.5).abs() < 0.05);
    assert_eq!(chart["series"][0]["container"], key("n2", WEB));

    // A container of the stopped node: the rest of the chart still answers.
    let (code, partial) = get_json(
        w.view,
        &format!(
            "/api/timeseries?containers={},{}&metric=cpu_usage_usec",
            key("n1", DB),
            key("n3", DB)
        ),
    )
    .await;
    assert_eq!(code, 200, "{partial:#}");
    assert_eq!(partial["series"].as_array().unwrap().len(), 1);
    assert_eq!(partial["not_answering"][0]["node"], "n3");

    // One-node requests go to that node only, keyed back.
    let (code, study) = get_json(
        w.view,
        &format!(
            "/api/study?kind=changepoints&container={}&metric=cpu_usage_usec",
            key("n1", WEB)
        ),
    )
    .await;
    assert_eq!(code, 200, "{study:#}");
    assert_eq!(study["container"], key("n1", WEB));
    let (code, body) = http_get(
        w.view,
        &format!(
            "/api/export?containers={}&metrics=cpu_usage_usec&format=csv",
            key("n2", DB)
        ),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.lines().count() > SECONDS as usize / 2,
        "CSV rows: {body:.200}"
    );

    // Bad requests are 400s naming what is wrong; a stopped node's container is a 502 in words.
    let (code, bad) = get_json(
        w.view,
        "/api/timeseries?containers=abc&metric=cpu_usage_usec",
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        bad["error"].as_str().unwrap().contains("names no node"),
        "{bad}"
    );
    let (code, bad) = get_json(
        w.view,
        &format!(
            "/api/timeseries?containers={}&metric=no_such_metric",
            key("n1", WEB)
        ),
    )
    .await;
    assert_eq!(code, 400, "a node's own 400 is the cluster's: {bad}");
    assert!(
        bad["error"].as_str().unwrap().contains("no_such_metric"),
        "{bad}"
    );
    let (code, bad) = get_json(
        w.view,
        &format!(
            "/api/export?containers={},{}&format=csv",
            key("n1", WEB),
            key("n2", WEB)
        ),
    )
    .await;
    assert_eq!(code, 400);
    assert!(bad["error"].as_str().unwrap().contains("one node"), "{bad}");
    let began = Instant::now();
    let (code, bad) = get_json(
        w.view,
        &format!("/api/processes?container={}", key("n3", WEB)),
    )
    .await;
    assert_eq!(code, 502, "{bad} after {:?}", began.elapsed());
    assert!(bad["error"].as_str().unwrap().contains("n3"), "{bad}");
}

fn require(ok: bool, what: &str) {
    assert!(ok, "browser test prerequisite missing: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_cluster_overview_and_a_chart_of_two_nodes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("FGM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    require(
        Path::new(&chromium).exists(),
        &format!(
            "{chromium} (`apt-get install -y chromium`, as .ci/run does; or set FGM_CHROMIUM)"
        ),
    );
    require(
        root.join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "playwright-core (run `npm ci --prefix tests/browser`, as .ci/run does)",
    );
    let w = world().await;
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cluster-view.png");
    let url = format!("http://{}/#r=15m", w.view);
    let mut command = Command::new("node");
    command
        .arg(root.join("tests/browser/check-cluster-view.mjs"))
        .env("FGM_URL", &url)
        .env("FGM_CHROMIUM", &chromium)
        .env("FGM_SCREENSHOT", &screenshot)
        .env("FGM_HOT", key("n2", WEB))
        .env("FGM_OTHER", key("n1", DB))
        .env("FGM_SILENT", "n3");
    // The viewers answer on this runtime while the browser runs.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run node (install it: `apt-get install -y nodejs npm`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser check failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}screenshot: {}", screenshot.display());
}
