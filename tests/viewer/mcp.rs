//! `/mcp` with the official MCP client library (Python `mcp`, pinned in
//! examples/mcp/requirements.txt, installed in target/py by tools/setup.sh):
//! it initializes, lists every tool and calls each over real HTTP; the CPU
//! burner comes first from `top_containers` with no arguments; a tool's bad
//! argument is the tool's error in words; another origin is refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Duration as Span;
use fine_grained_monitor::store::events::{self, EventKind, PodEvent};
use fine_grained_monitor::viewer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fixture::*;
use crate::server::http_get;

/// The Python with the `mcp` package (target/py, or FGM_PYTHON).
fn python() -> PathBuf {
    let path = std::env::var_os("FGM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"));
    let ok = Command::new(&path)
        .args(["-c", "import mcp.client.streamable_http"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} lacks the mcp package: run tools/setup.sh (or pip install -r examples/mcp/requirements.txt and set FGM_PYTHON)",
        path.display()
    );
    path
}

/// examples/mcp/call.py against `url`: its JSON answer.
fn call(url: &str, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mcp/call.py");
    let out = Command::new(python())
        .arg(script)
        .arg(url)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "call.py {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_lists_and_calls_every_tool() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 10, 0, 0);
    // 20 minutes: WEB burns 0.5 cores, DB 0.25; DB is OOM-killed at 10:15.
    write_samples(dir.path(), &[WEB, DB], start, 1200, 90, &default_values);
    write_index(dir.path(), start, start + Span::seconds(1199));
    events::append(
        dir.path(),
        &[PodEvent {
            time: start + Span::seconds(900),
            kind: EventKind::OomKilled,
            namespace: "shop".into(),
            pod: "db-0".into(),
            pod_uid: None,
            container: "postgres".into(),
            container_id: None,
            restart_count: 1,
            reason: Some("OOMKilled".into()),
            exit_code: Some(137),
            message: None,
        }],
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(viewer::serve(listener, options(dir.path()), stop.clone()));
    let mut ready = false;
    for _ in 0..200 {
        if http_get(addr, "/api/status")
            .await
            .1
            .contains("\"state\":\"ready\"")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "viewer ready");
    let url = format!("http://{addr}/mcp");

    let run = |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            call(&url, &refs)
        })
    };
    let listed = run(vec![]).await.unwrap();
    assert_eq!(listed["server"], "fine-grained-monitor");
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "top_containers",
            "container_summary",
            "container_events",
            "study",
            "list_containers",
            "list_metrics"
        ]
    );

    // No arguments: the last 15 minutes, by CPU, WEB first at 0.5 cores.
    let top = run(vec!["top_containers".into()]).await.unwrap();
    assert_eq!(top["is_error"], false, "{top}");
    let rows = top["result"]["containers"].as_array().unwrap();
    assert_eq!(rows[0]["container_id"], WEB, "{top}");
    assert_eq!(rows[0]["pod"], "web-0");
    assert!(
        (rows[0]["value"].as_f64().unwrap() - 0.5).abs() < 1e-6,
        "{top}"
    );
    assert_eq!(rows[1]["container_id"], DB);
    assert_eq!(top["result"]["to"], "2025-12-30T10:19:59Z");

    let by_memory = run(vec![
        "top_containers".into(),
        json!({"by": "memory", "top": 1, "since": "1h"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(
        by_memory["result"]["containers"].as_array().unwrap().len(),
        1,
        "{by_memory}"
    );

    // A pod's name is enough to name its container.
    let summary = run(vec![
        "container_summary".into(),
        json!({"container": "db-0", "since": "20m"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(summary["is_error"], false, "{summary}");
    let s = &summary["result"];
    assert_eq!(s["container_id"], DB);
    assert!(
        (s["cpu_cores"]["p50"].as_f64().unwrap() - 0.25).abs() < 1e-6,
        "{s}"
    );
    assert!(
        (s["cpu_cores"]["p99"].as_f64().unwrap() - 0.25).abs() < 1e-6,
        "{s}"
    );
    // The fixture's gauges are the second's index: the last second is the highest.
    assert_eq!(s["memory_working_set_bytes"]["max"], 1199.0, "{s}");
    assert_eq!(s["events"]["oom_killed"], 1, "{s}");

    let events = run(vec![
        "container_events".into(),
        json!({"container": DB, "since": "20m"}).to_string(),
    ])
    .await
    .unwrap();
    let list = events["result"]["events"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{events}");
    assert_eq!(list[0]["kind"], "oom_killed");

    let study = run(vec![
        "study".into(),
        json!({"container": WEB, "kind": "changepoints"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(study["is_error"], false, "{study}");
    assert_eq!(study["result"]["kind"], "changepoints");
    assert!(study["result"]["study"]["result"].is_object(), "{study}");

    let containers = run(vec![
        "list_containers".into(),
        json!({"q": "app=frontend"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(
        containers["result"]["containers"],
        json!([{"container_id": WEB, "namespace": "shop", "pod": "web-0", "container": "nginx"}])
    );
    let metrics = run(vec!["list_metrics".into()]).await.unwrap();
    assert!(
        metrics["result"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "cpu_usage_usec")
    );

    // Bad arguments: the tool's error, in words, for the model to read.
    let bad = run(vec![
        "container_summary".into(),
        json!({"container": "no-such-pod"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(bad["is_error"], true);
    assert!(
        bad["result"]
            .as_str()
            .unwrap()
            .contains("no container matches \"no-such-pod\""),
        "{bad}"
    );
    let bad = run(vec![
        "top_containers".into(),
        json!({"by": "colour"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(bad["is_error"], true);
    assert!(
        bad["result"].as_str().unwrap().contains("by=\"colour\""),
        "{bad}"
    );
    let bad = run(vec![
        "study".into(),
        json!({"container": WEB, "metric": "nope"}).to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(bad["is_error"], true, "{bad}");

    // Another origin (a web page the user visits, DNS rebinding): refused.
    let refused = reqwest_like_post(addr, "http://evil.example").await;
    assert_eq!(refused, 403);
    assert_eq!(reqwest_like_post(addr, "http://localhost:8050").await, 200);
    stop.cancel();
    let _ = server.await;
}

/// POSTs a `ping` to /mcp with `origin`: the status code.
async fn reqwest_like_post(addr: std::net::SocketAddr, origin: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
