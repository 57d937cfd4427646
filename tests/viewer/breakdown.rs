//! `/api/breakdown`: one container's IO per block device and its pod's network
//! per interface, from dataset files written with the store's own dataset
//! writer (what the agent writes): per-second rates per key, totals, the pod's
//! sandbox found from any of its containers, bad requests, a corrupt file
//! skipped and named.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::Value;

use crate::fixture::*;
use fine_grained_monitor::store::datasets::{self, Buffer, DEVICES, NETWORK, Row};

/// Devices files of WEB (vda written at 1 MB/s, vdb read at 200 kB/s) and
/// network files of web-0's sandbox (eth0: 2 MB/s in, 1 MB/s out; lo 1 kB/s),
/// rotated every 90 s over `secs` seconds.
fn write_datasets(
    dir: &std::path::Path,
    start: DateTime<Utc>,
    secs: i64,
) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for file_start in (0..secs).step_by(90) {
        let mut devices = Buffer::new(&DEVICES);
        let mut network = Buffer::new(&NETWORK);
        for i in file_start..(file_start + 90).min(secs) {
            let at = ms(start) + i * 1000;
            let dev = |device: &str, minor: i64, read: i64, write: i64| Row {
                timestamp_ms: at,
                container: WEB.into(),
                texts: vec![Arc::from(device)],
                ints: vec![
                    Some(253),
                    Some(minor),
                    Some(read),
                    Some(write),
                    Some(i),
                    Some(i),
                ],
            };
            devices.push(dev("/dev/vda", 0, 0, 1_000_000 * i));
            devices.push(dev("/dev/vdb", 16, 200_000 * i, 0));
            // DB has IO too: never in WEB's answer.
            devices.push(Row {
                container: DB.into(),
                ..dev("/dev/vda", 0, 7 * i, 7 * i)
            });
            let net = |iface: &str, rx: i64, tx: i64| Row {
                timestamp_ms: at,
                container: PAUSE.into(),
                texts: vec![Arc::from("web-0-uid"), Arc::from(iface)],
                ints: vec![
                    Some(rx),
                    Some(i),
                    Some(0),
                    Some(0),
                    Some(tx),
                    Some(i),
                    Some(0),
                    Some(0),
                ],
            };
            network.push(net("eth0", 2_000_000 * i, 1_000_000 * i));
            network.push(net("lo", 1000 * i, 1000 * i));
        }
        let t = start + Span::seconds(file_start);
        for buf in [&mut devices, &mut network] {
            let (path, _) = datasets::write(dir, NODE, t, buf).unwrap().unwrap();
            paths.push(path);
        }
    }
    paths
}

fn key<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == name)
        .unwrap_or_else(|| panic!("{name} in {answer}"))
}

/// Every bucket's rate of `counter` for `name` (buckets with none left out).
fn rates(answer: &Value, name: &str, counter: &str) -> Vec<f64> {
    key(answer, name)["rates"][counter]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect()
}

#[tokio::test]
async fn io_per_device_and_the_pods_network_per_interface() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 10, 0, 0);
    write_samples(dir.path(), &[WEB, DB], start, 270, 90, &default_values);
    write_index(dir.path(), start, start + Span::seconds(269));
    let files = write_datasets(dir.path(), start, 270);
    let app = app(dir.path());
    let (from, to) = (ms(start), ms(start) + 179_000);

    let devices = get_json(
        &app,
        &format!("/api/breakdown?dataset=devices&container={WEB}&from={from}&to={to}&points=30"),
    )
    .await;
    assert_eq!(
        devices["files_read"], 2,
        "only the files of the range: {devices}"
    );
    assert_eq!(devices["sources"], serde_json::json!([WEB]));
    assert_eq!(devices["step_ms"], 6000, "179 s in at most 30 buckets");
    let names: Vec<&str> = devices["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/dev/vda", "/dev/vdb"], "by total, largest first");
    let vda = rates(&devices, "/dev/vda", "write_bytes");
    assert_eq!(vda.len(), 30);
    assert!(
        vda.iter().all(|r| (r - 1_000_000.0).abs() < 1e-6),
        "{vda:?}"
    );
    assert!(
        rates(&devices, "/dev/vda", "read_bytes")
            .iter()
            .all(|r| *r == 0.0)
    );
    assert_eq!(
        key(&devices, "/dev/vda")["totals"]["write_bytes"],
        179_000_000
    );
    assert_eq!(
        key(&devices, "/dev/vdb")["totals"]["read_bytes"],
        179 * 200_000
    );
    assert_eq!(key(&devices, "/dev/vdb")["totals"]["read_ops"], 179);
    assert_eq!(
        devices["counters"],
        serde_json::json!(["read_bytes", "write_bytes", "read_ops", "write_ops"])
    );

    // The app container's pod network, from its sandbox's rows.
    let network = get_json(
        &app,
        &format!("/api/breakdown?dataset=network&container={WEB}&from={from}&to={to}"),
    )
    .await;
    assert_eq!(network["sources"], serde_json::json!([PAUSE]));
    assert_eq!(network["key_column"], "interface");
    let rx = rates(&network, "eth0", "receive_bytes");
    assert!(
        !rx.is_empty() && rx.iter().all(|r| (r - 2_000_000.0).abs() < 1e-6),
        "{rx:?}"
    );
    let tx = rates(&network, "eth0", "transmit_bytes");
    assert!(tx.iter().all(|r| (r - 1_000_000.0).abs() < 1e-6), "{tx:?}");
    assert_eq!(key(&network, "lo")["totals"]["receive_bytes"], 179_000);
    // A container of another pod has no network rows.
    let db = get_json(
        &app,
        &format!("/api/breakdown?dataset=network&container={DB}&from={from}&to={to}"),
    )
    .await;
    assert_eq!(db["keys"], serde_json::json!([]));

    // A corrupt devices file: skipped and named, the others still answer.
    let devices_files: Vec<&std::path::PathBuf> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("devices-")
        })
        .collect();
    std::fs::write(devices_files[1], b"not parquet").unwrap();
    let app = crate::fixture::app(dir.path());
    let partial = get_json(
        &app,
        &format!("/api/breakdown?dataset=devices&container={WEB}&from={from}&to={to}"),
    )
    .await;
    let skipped = partial["skipped_files"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{partial}");
    assert!(
        skipped[0]["path"].as_str().unwrap().contains("devices-"),
        "{partial}"
    );
    assert_eq!(
        key(&partial, "/dev/vda")["totals"]["write_bytes"],
        89_000_000
    );
}

#[tokio::test]
async fn bad_breakdown_requests_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 10, 0, 0);
    write_samples(dir.path(), &[WEB], start, 90, 90, &default_values);
    write_index(dir.path(), start, start + Span::seconds(89));
    let app = app(dir.path());
    for (uri, needle) in [
        (
            format!("/api/breakdown?dataset=disks&container={WEB}"),
            "disks",
        ),
        (format!("/api/breakdown?container={WEB}"), "use devices"),
        (
            "/api/breakdown?dataset=devices".to_string(),
            "container is required",
        ),
        (
            "/api/breakdown?dataset=devices&container=../../etc".to_string(),
            "not a container id",
        ),
        (
            format!("/api/breakdown?dataset=devices&container={WEB}&points=1"),
            "points",
        ),
    ] {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains(needle), "{uri}: {body}");
    }
    // No dataset files at all: an empty answer, not an error.
    let empty = get_json(
        &app,
        &format!("/api/breakdown?dataset=devices&container={WEB}"),
    )
    .await;
    assert_eq!(empty["keys"], serde_json::json!([]));
    assert_eq!(empty["files_read"], 0);
}
