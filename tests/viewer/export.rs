//! `/api/export` over data written by the store's writer: CSV and Parquet
//! with the data files' columns and raw values, the row cap, and the checks.

use axum::http::StatusCode;
use chrono::Duration;

use crate::fixture::*;

const RANGE: &str = "from=2025-12-30T00:01:00Z&to=2025-12-30T00:03:59Z";

fn data() -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(
        dir.path(),
        &[WEB, DB, PAUSE],
        start,
        300,
        90,
        &default_values,
    );
    write_index(dir.path(), start, start + Duration::seconds(299));
    let app = app(dir.path());
    (dir, app)
}

async fn get_bytes(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app
        .clone()
        .oneshot(
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

#[tokio::test]
async fn csv_has_the_data_files_columns_and_raw_values() {
    let (_dir, app) = data();
    let (status, headers, body) = get_bytes(
        &app,
        &format!("/api/export?containers={WEB},{DB}&metrics=cpu_usage_usec,memory_limit_bytes&format=csv&{RANGE}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"fgm-20251230T000100Z-20251230T000359Z.csv\""
    );
    assert_eq!(headers["x-fgm-rows"], "360");
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,container_id,cpu_usage_usec,memory_limit_bytes"
    );
    assert_eq!(
        lines.len(),
        1 + 2 * 180,
        "two containers, 3 minutes, no PAUSE"
    );
    // Second 60 of WEB: the raw counter (0.5 cores = 500,000 µs a second), no limit.
    assert!(
        lines.contains(&"2025-12-30T00:01:00.000Z,aaaaaaaaaaaa,30000000,"),
        "{}",
        &text[..300]
    );
    assert!(lines.contains(&"2025-12-30T00:03:59.000Z,bbbbbbbbbbbb,59750000,"));
    assert!(!text.contains(PAUSE));
}

#[tokio::test]
async fn parquet_reads_back_like_a_data_file() {
    let (dir, app) = data();
    let (status, headers, body) = get_bytes(
        &app,
        &format!("/api/export?containers={WEB}&format=parquet&{RANGE}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/vnd.apache.parquet");
    // Every metric when none is named, with the data files' names and metadata.
    let out = dir.path().join("export.parquet");
    std::fs::write(&out, &body).unwrap();
    let schema = fine_grained_monitor::store::reader::read_schema(&out).unwrap();
    let data_schema = fine_grained_monitor::store::schema::arrow_schema();
    assert_eq!(schema.fields().len(), data_schema.fields().len());
    for (a, b) in schema.fields().iter().zip(data_schema.fields()) {
        assert_eq!(
            (a.name(), a.data_type(), a.metadata()),
            (b.name(), b.data_type(), b.metadata())
        );
    }
    let cpu = fine_grained_monitor::store::reader::read_metric(&out, "cpu_usage_usec").unwrap();
    let web = cpu.get(WEB).unwrap();
    assert_eq!(web.timestamps.len(), 180);
    assert_eq!(web.timestamps[0], ms(t(2025, 12, 30, 0, 1, 0)));
    assert_eq!(web.values[0], 500_000 * 60);
    assert_eq!(cpu.series.len(), 1);
}

#[tokio::test]
async fn past_the_row_cap_the_export_is_refused_with_a_message() {
    let (_dir, app) = data();
    let uri = format!("/api/export?containers={WEB},{DB}&metrics=cpu_usage_usec&{RANGE}");
    let (status, body) = get(&app, &format!("{uri}&max_rows=100")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("360 rows, more than the export cap of 100"),
        "{body}"
    );
    let check = get_json(&app, &format!("{uri}&check=true")).await;
    assert_eq!(check["rows"], 360);
    assert_eq!(check["max_rows"], 200_000);
    for (bad, expected) in [
        ("&format=xml", "format="),
        ("&max_rows=0", "max_rows="),
        ("&max_rows=200001", "from 1 to 200000"),
        (
            "&metrics=cpu_usage_usec&metrics=io_read_bytes",
            "duplicate field `metrics`",
        ),
        ("&check=maybe", "check must be"),
    ] {
        let (status, body) = get(&app, &format!("{uri}{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains(expected), "{bad}: {body}");
    }
    let (status, body) = get(
        &app,
        &format!("/api/export?containers={WEB}&metrics=cpu_usage_usec,nope"),
    )
    .await;
    assert!(
        status == StatusCode::BAD_REQUEST && body.contains("unknown metric"),
        "{body}"
    );
    let (status, body) = get(&app, "/api/export?metrics=cpu_usage_usec").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_viewer_s_cap_is_the_default_and_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB, DB], start, 300, 90, &default_values);
    write_index(dir.path(), start, start + Duration::seconds(299));
    let mut opts = options(dir.path());
    opts.export_max_rows = 300;
    let (_, app) = app_with(opts);
    let uri = format!("/api/export?containers={WEB},{DB}&metrics=cpu_usage_usec&{RANGE}");
    let (status, body) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("more than the export cap of 300"), "{body}");
    let (status, _) = get(&app, &format!("{uri}&max_rows=301")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a request cannot raise the cap"
    );
    let ok = get_json(
        &app,
        &format!("/api/export?containers={WEB}&metrics=cpu_usage_usec&{RANGE}&check=true"),
    )
    .await;
    assert_eq!(ok["rows"], 180);
}
