#![allow(dead_code)] // shared with tests/viewer_browser.rs, which uses a part of it
//! Data directories written with `store::writer`, `store::index` and
//! `store::events`, and a way to call the app without a socket.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use fine_grained_monitor::store::index::{ContainerEntry, Index};
use fine_grained_monitor::store::layout;
use fine_grained_monitor::store::schema::METRICS;
use fine_grained_monitor::store::writer::{SampleBuffer, write_data_file};
use fine_grained_monitor::viewer::{self, Options, Viewer};

pub const NODE: &str = "node-a";
pub const WEB: &str = "aaaaaaaaaaaa";
pub const DB: &str = "bbbbbbbbbbbb";
pub const PAUSE: &str = "cccccccccccc";

pub fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The value each container reports for `metric` at second `i` of the data.
pub type ValueFn = dyn Fn(&str, &str, i64) -> Option<i64>;

/// Default signal: CPU counters climb 500 ms per second for WEB and 250 ms
/// for DB (0.5 and 0.25 cores); memory is 100 MiB + i bytes.
pub fn default_values(id: &str, metric: &str, i: i64) -> Option<i64> {
    let per_sec = if id == WEB { 500_000 } else { 250_000 };
    match metric {
        "cpu_usage_usec" => Some(per_sec * i),
        "memory_current_bytes" => Some((100 << 20) + i),
        "memory_limit_bytes" => None,
        _ => Some(i),
    }
}

/// Writes one sample per second for `containers` from `start` for `secs`
/// seconds, rotated every `rotation` seconds. Returns the files' paths.
pub fn write_samples(
    dir: &Path,
    containers: &[&str],
    start: DateTime<Utc>,
    secs: i64,
    rotation: i64,
    values: &ValueFn,
) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    let mut file_start = 0;
    while file_start < secs {
        let mut buf = SampleBuffer::new();
        for i in file_start..(file_start + rotation).min(secs) {
            let ts = start + Duration::seconds(i);
            for id in containers {
                let row: Vec<Option<i64>> = METRICS.iter().map(|m| values(id, m.name, i)).collect();
                buf.push(ts.timestamp_millis(), id, &row);
            }
        }
        let file_t = start + Duration::seconds(file_start);
        let written = write_data_file(dir, NODE, file_t, &buf).unwrap().unwrap();
        paths.push(written.path);
        file_start += rotation;
    }
    paths
}

pub fn entry(pod: &str, ns: &str, name: &str, labels: &[(&str, &str)]) -> ContainerEntry {
    ContainerEntry {
        full_id: format!("{pod}-full-id"),
        pod_uid: Some(format!("{pod}-uid")),
        qos_class: "Burstable".into(),
        first_seen: t(2025, 12, 30, 0, 0, 0),
        last_seen: t(2025, 12, 31, 0, 0, 0),
        pod_name: Some(pod.into()),
        namespace: Some(ns.into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ),
        container_name: Some(name.into()),
        cgroup_path: None,
        runtime: Some("containerd".into()),
        sandbox: false,
        requests: None,
    }
}

/// An index naming WEB, DB and a sandbox, covering `[earliest, latest]`.
pub fn write_index(dir: &Path, earliest: DateTime<Utc>, latest: DateTime<Utc>) {
    let mut index = Index::empty(latest, 90);
    index.extend_range(earliest, latest);
    index.containers.insert(
        WEB.into(),
        entry("web-0", "shop", "nginx", &[("app", "frontend")]),
    );
    index.containers.insert(
        DB.into(),
        entry("db-0", "shop", "postgres", &[("app", "database")]),
    );
    let mut pause = entry("web-0", "shop", "POD", &[]);
    pause.sandbox = true;
    index.containers.insert(PAUSE.into(), pause);
    index.save(&layout::index_path(dir)).unwrap();
}

pub fn options(dir: &Path) -> Options {
    Options::new(dir.to_path_buf())
}

/// A loaded viewer over `dir` and its app.
pub fn app_with(opts: Options) -> (Arc<Viewer>, axum::Router) {
    let v = Arc::new(Viewer::new(opts));
    v.refresh();
    (v.clone(), viewer::app(v))
}

pub fn app(dir: &Path) -> axum::Router {
    app_with(options(dir)).1
}

/// GET `uri`: status, body text.
pub async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// GET `uri` expecting 200 JSON.
pub async fn get_json(app: &axum::Router, uri: &str) -> Value {
    let (status, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The one series of a time-series answer: (times, values).
pub fn series(json: &Value, container: &str) -> (Vec<i64>, Vec<Option<f64>>) {
    let s = json["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["container"] == container)
        .unwrap_or_else(|| panic!("no series for {container} in {json}"));
    let t = s["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let v = s["v"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64())
        .collect();
    (t, v)
}

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Corrupts `path` in place the way a bit flip would: one column chunk's
/// page offset in the footer becomes negative. Parquet 60's decoder used to
/// panic on this (an assertion); the store's bounds checks now refuse the
/// file first. Candidates are tried until reading the file fails.
pub fn corrupt_page_offset(path: &Path) {
    use fine_grained_monitor::store::reader;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let original = std::fs::read(path).unwrap();
    let meta = SerializedFileReader::new(std::fs::File::open(path).unwrap())
        .unwrap()
        .metadata()
        .clone();
    let footer_len = u32::from_le_bytes(
        original[original.len() - 8..original.len() - 4]
            .try_into()
            .unwrap(),
    ) as usize;
    let footer_start = original.len() - 8 - footer_len;
    let mut offsets = Vec::new();
    for rg in meta.row_groups() {
        for col in rg.columns().iter().take(2) {
            offsets.push(col.data_page_offset());
            offsets.extend(col.dictionary_page_offset());
        }
    }
    for offset in offsets {
        // Thrift compact i64: zigzag, then LEB128.
        let mut v = (offset << 1) as u64;
        let mut bytes = Vec::new();
        while v >= 0x80 {
            bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        bytes.push(v as u8);
        for at in footer_start..original.len() - 8 - bytes.len() {
            if original[at..at + bytes.len()] != bytes[..] || original[at - 1] & 0x0f != 6 {
                continue;
            }
            let mut poisoned = original.clone();
            poisoned[at] |= 1; // odd zigzag: a negative offset
            std::fs::write(path, &poisoned).unwrap();
            if reader::read_container_spans(path).is_err()
                && reader::read_metrics(path, &["cpu_usage_usec"]).is_err()
            {
                return;
            }
        }
    }
    std::fs::write(path, &original).unwrap();
    panic!("no page offset of {} could be corrupted", path.display());
}
