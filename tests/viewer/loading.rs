//! Loading the data directory: indexes of both versions, none (waiting,
//! rebuilt from files), a corrupt one, corrupt data files, open files, events.

use axum::http::StatusCode;
use chrono::Duration;

use crate::fixture::*;
use fine_grained_monitor::store::events::{self, EventKind, PodEvent};
use fine_grained_monitor::store::layout;

#[tokio::test]
async fn corrupt_files_are_skipped_and_reported_and_open_files_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    let files = write_samples(dir.path(), &[WEB], start, 270, 90, &default_values);
    // The middle file is damaged on disk.
    std::fs::write(&files[1], b"PAR1 this is not parquet PAR1").unwrap();
    // An open file (still being written) with rows that must not be shown.
    let open = layout::in_progress_path(&layout::data_file_path(
        dir.path(),
        NODE,
        start + Duration::seconds(270),
    ));
    std::fs::write(&open, b"partial").unwrap();
    write_index(dir.path(), start, start + Duration::seconds(400));
    let app = app(dir.path());
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB}&metric=memory_current_bytes&from=2025-12-30T00:00:00Z&to=2025-12-30T00:06:00Z"),
    )
    .await;
    let (ts, _) = series(&json, WEB);
    assert_eq!(ts.len(), 180, "the two good files are shown");
    let skipped = json["skipped_files"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{json}");
    assert_eq!(
        skipped[0]["path"],
        "dt=2025-12-30/identifier=node-a/metrics-20251230T000130Z.parquet"
    );
    assert!(
        skipped[0]["error"]
            .as_str()
            .unwrap()
            .contains("not readable Parquet")
    );
    let status = get_json(&app, "/api/status").await;
    let corrupt = status["corrupt_files"].as_array().unwrap();
    assert_eq!(
        corrupt.len(),
        1,
        "the open file is not read, so not reported: {status}"
    );
    assert_eq!(corrupt[0]["path"], skipped[0]["path"]);
}

#[tokio::test]
async fn events_of_the_selected_containers() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB, DB], start, 120, 90, &default_values);
    write_index(dir.path(), start, start + Duration::seconds(119));
    let event =
        |secs: i64, kind: EventKind, pod: &str, container: &str, id: Option<&str>| PodEvent {
            time: start + Duration::seconds(secs),
            kind,
            namespace: "shop".into(),
            pod: pod.into(),
            pod_uid: None,
            container: container.into(),
            container_id: id.map(str::to_string),
            restart_count: 1,
            reason: Some("OOMKilled".into()),
            exit_code: Some(137),
            message: None,
        };
    events::append(
        dir.path(),
        &[
            event(30, EventKind::OomKilled, "web-0", "nginx", Some(WEB)),
            // The restart is recorded against the new container id: matched by pod and name.
            event(
                31,
                EventKind::Restart,
                "web-0",
                "nginx",
                Some("dddddddddddd"),
            ),
            event(
                40,
                EventKind::CrashLoopBackOff,
                "db-0",
                "postgres",
                Some(DB),
            ),
            event(7200, EventKind::Restart, "web-0", "nginx", Some(WEB)),
        ],
    )
    .unwrap();
    let app = app(dir.path());
    let json = get_json(
        &app,
        &format!("/api/events?containers={WEB}&from=2025-12-30T00:00:00Z&to=2025-12-30T00:10:00Z"),
    )
    .await;
    let kinds: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["oom_killed", "restart"]);
    assert_eq!(json["events"][0]["exit_code"], 137);
    let all = get_json(
        &app,
        "/api/events?from=2025-12-30T00:00:00Z&to=2025-12-30T03:00:00Z",
    )
    .await;
    assert_eq!(all["events"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn version_1_index_loads() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(
        dir.path(),
        &["abc123def456"],
        start,
        30,
        90,
        &default_values,
    );
    std::fs::write(
        dir.path().join("index.json"),
        r#"{"schema_version": 1, "updated_at": "2025-12-30T00:00:29Z",
            "containers": {"abc123def456": {"full_id": "abc123def456789", "pod_name": "coredns-1",
              "namespace": "kube-system", "qos_class": "Burstable",
              "first_seen": "2025-12-30T00:00:00Z", "last_seen": "2025-12-30T00:00:29Z"}},
            "data_range": {"earliest": "2025-12-30T00:00:00Z", "latest": "2025-12-30T00:00:29Z", "rotation_interval_sec": 90}}"#,
    )
    .unwrap();
    let app = app(dir.path());
    let list = get_json(&app, "/api/containers?q=coredns").await;
    assert_eq!(list["containers"][0]["id"], "abc123def456");
    assert_eq!(list["containers"][0]["labels"], serde_json::Value::Null);
    // Default range: the hour before the latest data.
    let json = get_json(
        &app,
        "/api/timeseries?containers=abc123def456&metric=pids_current",
    )
    .await;
    let (ts, _) = series(&json, "abc123def456");
    assert_eq!(ts.len(), 30);
}

#[tokio::test]
async fn without_an_index_the_files_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 23, 59, 0);
    write_samples(dir.path(), &[WEB, DB], start, 120, 90, &default_values);
    let app = app(dir.path());
    let status = get_json(&app, "/api/status").await;
    assert_eq!(status["state"], "ready");
    assert_eq!(status["index_source"], "rebuilt_from_files");
    assert_eq!(status["data_range"]["earliest"], "2025-12-30T23:59:00Z");
    assert_eq!(status["data_range"]["latest"], "2025-12-31T00:00:59Z");
    let list = get_json(&app, "/api/containers").await;
    assert_eq!(list["containers"].as_array().unwrap().len(), 2);
    assert_eq!(list["containers"][1]["last_seen"], "2025-12-31T00:00:59Z");
    assert!(
        !dir.path().join("index.json").exists(),
        "the viewer never writes the data directory"
    );
}

#[tokio::test]
async fn no_data_means_waiting_then_an_explanation() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let status = get_json(&app, "/api/status").await;
    assert_eq!(status["state"], "waiting");
    let (code, page) = get(&app, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("Waiting for metrics data..."), "{page}");
    assert!(page.contains("http-equiv=\"refresh\" content=\"5\""));

    let mut opts = options(dir.path());
    opts.waiting_timeout = std::time::Duration::ZERO;
    let (_, app) = app_with(opts);
    let status = get_json(&app, "/api/status").await;
    assert_eq!(status["state"], "error");
    let (code, page) = get(&app, "/").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.contains("Troubleshooting") && page.contains(&dir.path().display().to_string()));
}

#[tokio::test]
async fn a_corrupt_index_falls_back_to_the_files_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB], start, 60, 90, &default_values);
    std::fs::write(
        dir.path().join("index.json"),
        "{\"schema_version\": 2, \"contai",
    )
    .unwrap();
    let app = app(dir.path());
    let status = get_json(&app, "/api/status").await;
    assert_eq!(status["state"], "ready");
    assert_eq!(status["index_source"], "rebuilt_from_files");
    let error = status["index_error"].as_str().unwrap();
    assert!(
        error.contains("index.json") && error.contains("line 1"),
        "{error}"
    );
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB}&metric=pids_current"),
    )
    .await;
    assert_eq!(series(&json, WEB).0.len(), 60);
}
