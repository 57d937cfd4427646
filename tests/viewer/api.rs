//! The JSON API over data written by the store's writer.

use axum::http::StatusCode;
use chrono::Duration;

use crate::fixture::*;
use fine_grained_monitor::store::layout;

#[tokio::test]
async fn range_spans_rotated_files_across_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 23, 55, 0);
    // 10 minutes across midnight in 90 s files: two day directories.
    let files = write_samples(dir.path(), &[WEB, DB], start, 600, 90, &default_values);
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("dt=2025-12-31"))
    );
    write_index(dir.path(), start, start + Duration::seconds(599));
    let app = app(dir.path());

    let from = t(2025, 12, 30, 23, 58, 30);
    let to = t(2025, 12, 31, 0, 1, 30);
    let uri = format!(
        "/api/timeseries?containers={WEB}&metric=memory_current_bytes&from={}&to=2025-12-31T00:01:30Z",
        ms(from)
    );
    let json = get_json(&app, &uri).await;
    let (ts, vs) = series(&json, WEB);
    assert_eq!(ts.len(), 181, "every second from 23:58:30 to 00:01:30 once");
    assert_eq!(ts.first(), Some(&ms(from)));
    assert_eq!(ts.last(), Some(&ms(to)));
    assert!(
        ts.windows(2).all(|w| w[1] - w[0] == 1000),
        "sorted, no gaps or repeats"
    );
    // 23:58:30 is second 210 of the data.
    assert_eq!(vs[0], Some(((100 << 20) + 210) as f64));
    assert_eq!(json["rate"], false);
    assert_eq!(json["display_unit"], "bytes");
    // Files of 23:58:00 (runs into the range), 23:59:30 and 00:01:00: not all 7.
    assert_eq!(json["files_read"], 3, "{json}");
    assert_eq!(json["skipped_files"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn counters_become_rates_and_resets_are_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 12, 0, 0);
    // WEB restarts at second 150: its CPU counter starts again from zero.
    let values = |id: &str, m: &str, i: i64| {
        if m == "cpu_usage_usec" && id == WEB && i >= 150 {
            Some(500_000 * (i - 150))
        } else {
            default_values(id, m, i)
        }
    };
    write_samples(dir.path(), &[WEB, DB], start, 300, 90, &values);
    write_index(dir.path(), start, start + Duration::seconds(299));
    let app = app(dir.path());
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB},{DB}&metric=cpu_usage_usec&from=2025-12-30T12:00:00Z&to=2025-12-30T12:04:59Z"),
    )
    .await;
    assert_eq!(json["rate"], true);
    assert_eq!(json["display_unit"], "cores");
    let (wt, wv) = series(&json, WEB);
    let (_, dv) = series(&json, DB);
    assert!(
        dv.iter().all(|v| *v == Some(0.25)),
        "DB uses a quarter core"
    );
    // The first sample has no rate; the reset is a gap, not a negative spike.
    assert_eq!(wt.len(), 299);
    let reset = wt
        .iter()
        .position(|&t| t == ms(start + Duration::seconds(150)))
        .unwrap();
    assert_eq!(wv[reset], None);
    assert!(
        wv.iter()
            .enumerate()
            .all(|(i, v)| i == reset || *v == Some(0.5)),
        "{wv:?}"
    );
}

#[tokio::test]
async fn downsampling_keeps_a_one_second_spike() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    let spike_at = 4321;
    let values = move |id: &str, m: &str, i: i64| match m {
        "memory_current_bytes" if i == spike_at => Some(8 << 30),
        "memory_current_bytes" => Some((100 << 20) + (i % 10) * 1024),
        _ => default_values(id, m, i),
    };
    write_samples(dir.path(), &[WEB], start, 7200, 90, &values);
    write_index(dir.path(), start, start + Duration::seconds(7199));
    let app = app(dir.path());
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB}&metric=memory_current_bytes&from=2025-12-30T00:00:00Z&to=2025-12-30T01:59:59Z&points=100"),
    )
    .await;
    let (ts, vs) = series(&json, WEB);
    assert!(ts.len() <= 100 && ts.len() >= 50, "{}", ts.len());
    let s = &json["series"][0];
    assert_eq!(s["raw_points"], 7200);
    assert_eq!(s["downsampled"], true);
    let peak = vs.iter().flatten().copied().fold(0.0, f64::max);
    assert_eq!(peak, (8u64 << 30) as f64, "the one-second spike survives");
    let at = vs.iter().position(|v| *v == Some(peak)).unwrap();
    assert_eq!(ts[at], ms(start + Duration::seconds(spike_at)));
    let low = vs.iter().flatten().copied().fold(f64::MAX, f64::min);
    assert_eq!(low, (100 << 20) as f64, "and so does the floor");
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB], start, 60, 90, &default_values);
    write_index(dir.path(), start, start + Duration::seconds(59));
    let app = app(dir.path());
    let too_many: Vec<String> = (0..51).map(|i| format!("{i:012x}")).collect();
    let cases = [
        (
            "/api/timeseries?metric=cpu_usage_usec".to_string(),
            "containers is required",
        ),
        (
            format!("/api/timeseries?containers={WEB}"),
            "metric is required",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=nope"),
            "unknown metric",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&from=yesterday"),
            "from=\"yesterday\"",
        ),
        (
            format!(
                "/api/timeseries?containers={WEB}&metric=cpu_usage_usec&from=2025-12-30T02:00:00Z&to=2025-12-30T01:00:00Z"
            ),
            "is after",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&points=0"),
            "points=\"0\"",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&points=99999"),
            "points=",
        ),
        (
            format!(
                "/api/timeseries?containers={WEB}&metric=cpu_usage_usec&from=2000-01-01T00:00:00Z"
            ),
            "longer than",
        ),
        (
            format!(
                "/api/timeseries?containers={}&metric=cpu_usage_usec",
                too_many.join(",")
            ),
            "at most 50",
        ),
        (
            "/api/timeseries?containers=..%2F..%2Fetc%2Fpasswd&metric=cpu_usage_usec".to_string(),
            "not a container id",
        ),
        (
            "/api/containers?include_sandbox=maybe".to_string(),
            "include_sandbox",
        ),
        ("/api/events?from=soon".to_string(), "from=\"soon\""),
    ];
    for (uri, expected) in cases {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = json["error"].as_str().unwrap();
        assert!(message.contains(expected), "{uri}: {message}");
    }
}

#[tokio::test]
async fn paths_outside_the_data_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB], start, 60, 90, &default_values);
    write_index(dir.path(), start, start + Duration::seconds(59));
    // A file the viewer must never serve, right next to the data.
    std::fs::write(dir.path().join("secret.txt"), "s3cret").unwrap();
    let app = app(dir.path());
    for uri in [
        "/assets/..%2Fsecret.txt",
        "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/assets/%2Fetc%2Fpasswd",
        "/../secret.txt",
        "/secret.txt",
        "/index.json",
        "/dt=2025-12-30/identifier=node-a/metrics-20251230T000000Z.parquet",
        "/assets/../../Cargo.toml",
    ] {
        let (status, body) = get(&app, uri).await;
        assert!(status.is_client_error(), "{uri}: {status} {body}");
        assert!(
            !body.contains("s3cret") && !body.contains("root:"),
            "{uri}: {body}"
        );
    }
    let (status, body) = get(&app, "/assets/uPlot.iife.min.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("uPlot"));
}

#[tokio::test]
async fn status_containers_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB, DB], start, 100, 90, &default_values);
    write_index(dir.path(), start, start + Duration::seconds(99));
    let app = app(dir.path());

    let status = get_json(&app, "/api/status").await;
    assert_eq!(status["state"], "ready");
    assert_eq!(status["index_source"], "index.json");
    assert_eq!(status["containers"], 3);
    assert_eq!(status["data_range"]["latest"], "2025-12-30T00:01:39Z");

    let all = get_json(&app, "/api/containers").await;
    let ids: Vec<&str> = all["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![WEB, DB], "the sandbox is hidden by default");
    assert_eq!(all["hidden_sandboxes"], 1);
    let web = &all["containers"][0];
    assert_eq!(web["pod_name"], "web-0");
    assert_eq!(web["namespace"], "shop");
    assert_eq!(web["container_name"], "nginx");
    assert_eq!(web["labels"]["app"], "frontend");
    assert_eq!(web["first_seen"], "2025-12-30T00:00:00Z");
    let with_pause = get_json(&app, "/api/containers?include_sandbox=true").await;
    assert_eq!(with_pause["containers"].as_array().unwrap().len(), 3);
    for (q, expected) in [
        ("postgres", vec![DB]),
        ("app=frontend", vec![WEB]),
        ("SHOP", vec![WEB, DB]),
        ("kube-system", vec![]),
    ] {
        let found = get_json(&app, &format!("/api/containers?q={q}")).await;
        let ids: Vec<&str> = found["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "q={q}");
    }

    let metrics = get_json(&app, "/api/metrics").await;
    let list = metrics["metrics"].as_array().unwrap();
    assert_eq!(
        list.len(),
        fine_grained_monitor::store::schema::METRICS.len()
    );
    let cpu = list.iter().find(|m| m["name"] == "cpu_usage_usec").unwrap();
    assert_eq!(cpu["kind"], "counter");
    assert_eq!(cpu["display_unit"], "cores");
    assert_eq!(
        metrics["from_file"],
        "dt=2025-12-30/identifier=node-a/metrics-20251230T000130Z.parquet"
    );
}

#[tokio::test]
async fn metric_names_come_from_the_newest_file() {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB], start, 90, 90, &default_values);
    // A newer file from a newer agent with a column this build does not know.
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("container_id", DataType::Utf8, false),
        Field::new("gpu_memory_bytes", DataType::Int64, true).with_metadata(
            std::collections::HashMap::from([
                ("fgm.kind".to_string(), "gauge".to_string()),
                ("fgm.unit".to_string(), "bytes".to_string()),
            ]),
        ),
    ]));
    let newer = start + Duration::seconds(90);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(vec![ms(newer)]).with_timezone("UTC")),
        Arc::new(StringArray::from(vec![WEB])),
        Arc::new(Int64Array::from(vec![Some(42)])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let path = layout::data_file_path(dir.path(), NODE, newer);
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    write_index(dir.path(), start, newer);
    let app = app(dir.path());
    let metrics = get_json(&app, "/api/metrics").await;
    let names: Vec<&str> = metrics["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["gpu_memory_bytes"]);
    let json = get_json(&app, &format!("/api/timeseries?containers={WEB}&metric=gpu_memory_bytes&from=2025-12-30T00:00:00Z&to=2025-12-30T00:05:00Z")).await;
    let (_, vs) = series(&json, WEB);
    assert_eq!(
        vs,
        vec![Some(42.0)],
        "older files lack the column and add nothing"
    );
}

#[tokio::test]
async fn limits_and_requests_come_with_the_series() {
    use fine_grained_monitor::store::index::{Index, Requests};
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    // WEB's memory limit is raised from 1 to 2 GiB at second 100; its CPU
    // quota is 2 cores throughout. DB has no limits.
    let values = |id: &str, m: &str, i: i64| match m {
        "memory_limit_bytes" if id == WEB => Some(if i < 100 { 1 << 30 } else { 2 << 30 }),
        "cpu_quota_usec" if id == WEB => Some(200_000),
        "cpu_quota_usec" => None,
        "cpu_period_usec" => Some(100_000),
        "memory_high_bytes" => None,
        _ => default_values(id, m, i),
    };
    write_samples(dir.path(), &[WEB, DB], start, 180, 90, &values);
    write_index(dir.path(), start, start + Duration::seconds(179));
    let path = layout::index_path(dir.path());
    let mut index = Index::load(&path).unwrap().unwrap();
    index.containers.get_mut(WEB).unwrap().requests = Some(Requests {
        cpu_millicores: Some(250),
        memory_bytes: Some(512 << 20),
    });
    index.save(&path).unwrap();
    let app = app(dir.path());
    let range = "from=2025-12-30T00:00:00Z&to=2025-12-30T00:02:59Z";
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB},{DB}&metric=memory_current_bytes&{range}"),
    )
    .await;
    let web = &json["series"][0];
    assert_eq!(web["container"], WEB);
    assert_eq!(web["request"], (512u64 << 20) as f64);
    let limits = web["limits"].as_array().unwrap();
    assert_eq!(
        limits.len(),
        1,
        "memory.high is never set: no line ({limits:?})"
    );
    assert_eq!(limits[0]["label"], "memory limit");
    // Steps: 1 GiB from second 0 to 99, then 2 GiB from 100 to 179.
    let at = |s: i64| ms(start + Duration::seconds(s));
    assert_eq!(
        limits[0]["t"],
        serde_json::json!([at(0), at(99), at(100), at(179)])
    );
    let gib = (1u64 << 30) as f64;
    assert_eq!(
        limits[0]["v"],
        serde_json::json!([gib, gib, 2.0 * gib, 2.0 * gib])
    );
    let db = &json["series"][1];
    assert!(db["limits"].as_array().unwrap().is_empty());
    assert!(db["request"].is_null());

    let cpu = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&{range}"),
    )
    .await;
    let web = &cpu["series"][0];
    assert_eq!(web["request"], 0.25, "250m, in cores like the chart");
    assert_eq!(web["limits"][0]["label"], "CPU limit");
    assert_eq!(web["limits"][0]["v"][0], 2.0, "quota / period, in cores");
}
