//! `fgm-viewer s3://bucket/prefix`: without `--node`, the cluster view over every node of
//! the prefix; with `--node NAME`, a gone node's history served
//! from the real S3 server (SeaweedFS). The node's objects (merged and raw,
//! mid-compaction) are copied into a cache laid out as a data directory, with
//! container names from containers.jsonl, and the viewer's API answers with
//! every sample exactly once.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use fine_grained_monitor::export::keys;
use fine_grained_monitor::store::schema::{METRICS, metric_index};
use s3_support::{ACCESS_KEY, S3Server, SECRET_KEY, data, http_get};

const PREFIX: &str = "fgm/prod";
const ID: &str = "0123456789ab";

#[test]
fn the_viewer_opens_a_gone_nodes_history_from_the_bucket() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = S3Server::start("viewer", None);
    let client = rt.block_on(server.bucket("history"));
    let start = (Utc::now() - chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .unwrap()
        .and_utc();
    // Two hours of one container on the node that is gone, one on another node.
    let values = |_: usize, since: i64| {
        let mut v = vec![Some(1i64); METRICS.len()];
        v[metric_index("memory_current_bytes").unwrap()] = Some((100 << 20) + since);
        v
    };
    for node in ["gone-node", "other-node"] {
        let files = data::files_with(node, start, 80, 90, &[ID], values);
        rt.block_on(data::upload(&client, PREFIX, node, files));
    }
    let names = format!(
        "{}\n",
        serde_json::json!({"container_id": ID, "namespace": "shop", "pod_name": "cart-7d9f",
            "container_name": "cart", "qos_class": "Burstable", "first_seen": start})
    );
    rt.block_on(client.put_object(
        &keys::containers_key(PREFIX, "gone-node", start.date_naive()),
        names.into(),
        "application/x-ndjson",
    ))
    .unwrap();
    // Mid-compaction: merged files written, the raw ones not yet removed.
    let args = data::compact_args(&server, "history", PREFIX);
    let report = rt
        .block_on(fine_grained_monitor::export::compact::run_with(
            &client,
            &args,
            Utc::now(),
        ))
        .unwrap();
    assert!(report.merged_files >= 2, "{report:?}");

    let cache = tempfile::tempdir().unwrap();
    let port = support::process::free_port().unwrap();
    let url = format!("s3://history/{PREFIX}");
    let run = |node: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fgm-viewer"));
        cmd.arg(&url)
            .args(["--port", &port.to_string(), "--no-browser"])
            .arg(format!("--export-endpoint={}", server.endpoint))
            .arg("--export-path-style=true")
            .arg("--cache-dir")
            .arg(cache.path())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null());
        if let Some(n) = node {
            cmd.args(["--node", n]);
        }
        cmd
    };
    // Two nodes there and none chosen: the cluster view over both, containers keyed by node.
    let mut cluster = run(None).stderr(Stdio::null()).spawn().unwrap();
    let began = Instant::now();
    let status = loop {
        if let Some(body) = http_get(port, "/api/status") {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert!(cluster.try_wait().unwrap().is_none(), "fgm-viewer exited");
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "cluster view not serving"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let listed = http_get(port, "/api/containers").unwrap();
    // One chart over both nodes' container (other-node has no containers.jsonl: data, no name).
    let window = format!(
        "from={}&to={}",
        start.to_rfc3339(),
        (start + chrono::Duration::seconds(7199)).to_rfc3339()
    )
    .replace('+', "%2B");
    let both = http_get(
        port,
        &format!("/api/timeseries?containers=gone-node/{ID},other-node/{ID}&metric=memory_current_bytes&{window}&points=100"),
    )
    .unwrap();
    let _ = cluster.kill();
    let _ = cluster.wait();
    let both: serde_json::Value = serde_json::from_str(&both).unwrap();
    for (k, node) in ["gone-node", "other-node"].iter().enumerate() {
        assert_eq!(
            both["series"][k]["container"],
            format!("{node}/{ID}"),
            "{both}"
        );
        assert_eq!(
            both["series"][k]["raw_points"], 7200,
            "every second of {node}'s two hours exactly once: {both}"
        );
    }
    assert_eq!(status["state"], "ready", "{status}");
    let nodes: Vec<&str> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert_eq!(nodes, vec!["gone-node", "other-node"], "{status}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let gone = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == format!("gone-node/{ID}"))
        .unwrap_or_else(|| panic!("gone-node/{ID} in {listed}"));
    assert_eq!(gone["node"], "gone-node");
    assert_eq!(gone["pod_name"], "cart-7d9f");
    // Each node's history in a directory of its own below --cache-dir.
    for node in ["gone-node", "other-node"] {
        let local =
            fine_grained_monitor::store::layout::list_data_files(&cache.path().join(node), None)
                .unwrap();
        assert!(!local.files.is_empty() && local.files.iter().all(|f| f.node == node));
    }

    let mut viewer = run(Some("gone-node"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let containers = loop {
        if let Some(body) = http_get(port, "/api/containers") {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert!(viewer.try_wait().unwrap().is_none(), "fgm-viewer exited");
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "viewer not serving"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        containers["containers"][0]["pod_name"], "cart-7d9f",
        "{containers}"
    );
    let (from, to) = (
        start.to_rfc3339(),
        (start + chrono::Duration::seconds(7199)).to_rfc3339(),
    );
    let ts = http_get(
        port,
        &format!("/api/timeseries?containers={ID}&metric=memory_current_bytes&from={from}&to={to}&points=100")
            .replace('+', "%2B"),
    )
    .unwrap();
    let ts: serde_json::Value = serde_json::from_str(&ts).unwrap();
    assert_eq!(
        ts["series"][0]["raw_points"], 7200,
        "every second of the two hours exactly once: {ts}"
    );
    let _ = viewer.kill();
    let _ = viewer.wait();
    // Only the node's merged files and what no merged file replaces are in the cache.
    let local = fine_grained_monitor::store::layout::list_data_files(cache.path(), None).unwrap();
    assert!(local.files.iter().all(|f| f.node == "gone-node"));
    assert_eq!(
        local.files.len(),
        report.merged_files / 2 + (80 - report.input_files / 2)
    );
}
