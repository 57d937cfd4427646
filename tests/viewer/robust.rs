//! The viewer never dies (issue #18, point 7): a corrupt data file (a page
//! offset gone negative, which once made the Parquet decoder panic) at
//! start-up, in the poll and in a request, a handler that panics, and
//! out-of-range parameters each end as that file's or that request's error
//! while the real server goes on answering. (A panic inside the refresh
//! itself is unit-tested in `viewer::state`: no real file triggers one now.)

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Duration as Span;
use tokio_util::sync::CancellationToken;

use crate::fixture::*;
use crate::server::http_get;
use fine_grained_monitor::viewer;

/// Three 90 s files of WEB; the middle one corrupt.
fn data_with_a_corrupt_file(dir: &std::path::Path) -> std::path::PathBuf {
    let start = t(2025, 12, 30, 0, 0, 0);
    let files = write_samples(dir, &[WEB], start, 270, 90, &default_values);
    corrupt_page_offset(&files[1]);
    files[1].clone()
}

async fn start(
    dir: &std::path::Path,
) -> (
    std::net::SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut opts = options(dir);
    opts.poll_interval = Duration::from_millis(50);
    let stop = CancellationToken::new();
    let server = tokio::spawn(viewer::serve(listener, opts, stop.clone()));
    (addr, stop, server)
}

async fn wait_ready(addr: std::net::SocketAddr) -> serde_json::Value {
    for _ in 0..200 {
        let (code, body) = http_get(addr, "/api/status").await;
        if code == 200 && body.contains("\"state\":\"ready\"") {
            return serde_json::from_str(&body).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the viewer never became ready");
}

fn assert_reported(status: &serde_json::Value, name: &str) {
    let corrupt = status["corrupt_files"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{status}");
    assert!(
        corrupt[0]["path"].as_str().unwrap().ends_with(name),
        "{status}"
    );
    assert!(
        corrupt[0]["error"]
            .as_str()
            .unwrap()
            .contains("is corrupt: column timestamp of row group 0: a negative page offset"),
        "{status}"
    );
}

#[tokio::test]
async fn a_corrupt_file_at_start_up_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let bad = data_with_a_corrupt_file(dir.path());
    let name = bad.file_name().unwrap().to_str().unwrap().to_string();
    // No index.json: start-up rebuilds it from the files, reading every one.
    let (addr, stop, server) = start(dir.path()).await;
    let status = wait_ready(addr).await;
    assert_eq!(status["index_source"], "rebuilt_from_files");
    assert_eq!(status["containers"], 1);
    assert_reported(&status, &name);
    let (code, body) = http_get(
        addr,
        &format!("/api/timeseries?containers={WEB}&metric=memory_current_bytes&from=2025-12-30T00:00:00Z&to=2025-12-30T00:05:00Z"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(series(&json, WEB).0.len(), 180, "the two good files");
    assert_eq!(json["skipped_files"].as_array().unwrap().len(), 1);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A file of a newer build (its footer's format version one higher than this build's) is
/// skipped and reported in words, the others still answer: what a downgraded viewer meets.
#[tokio::test]
async fn a_file_of_a_newer_format_version_is_skipped_and_named() {
    use fine_grained_monitor::store::schema;
    let dir = tempfile::tempdir().unwrap();
    let start_at = t(2025, 12, 30, 0, 0, 0);
    let files = write_samples(dir.path(), &[WEB], start_at, 270, 90, &default_values);
    // The middle file again, stamped with the next version.
    let bytes = std::fs::read(&files[1]).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let next = schema::FORMAT_VERSION.parse::<u32>().unwrap() + 1;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            schema::FORMAT_VERSION_KEY.to_string(),
            next.to_string(),
        )]))
        .build();
    let out = std::fs::File::create(&files[1]).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(out, batches[0].schema(), Some(props)).unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    let name = files[1].file_name().unwrap().to_str().unwrap().to_string();

    let (addr, stop, server) = start(dir.path()).await;
    let status = wait_ready(addr).await;
    let corrupt = status["corrupt_files"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{status}");
    assert!(
        corrupt[0]["path"].as_str().unwrap().ends_with(&name),
        "{status}"
    );
    let error = corrupt[0]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("has format version {next}"))
            && error.contains(&format!("reads versions up to {}", schema::FORMAT_VERSION)),
        "{error}"
    );
    let (code, body) = http_get(
        addr,
        &format!("/api/timeseries?containers={WEB}&metric=memory_current_bytes&from=2025-12-30T00:00:00Z&to=2025-12-30T00:05:00Z"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        series(&json, WEB).0.len(),
        180,
        "the two files of this version"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_corrupt_file_in_the_poll_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, server) = start(dir.path()).await;
    let (_, body) = http_get(addr, "/api/status").await;
    assert!(body.contains("\"state\":\"waiting\""), "{body}");
    // The files arrive while the viewer runs; the poll's rebuild meets the corrupt one.
    let bad = data_with_a_corrupt_file(dir.path());
    let status = wait_ready(addr).await;
    assert_reported(&status, bad.file_name().unwrap().to_str().unwrap());
    // Still polling: an index written later is picked up.
    let start = t(2025, 12, 30, 0, 0, 0);
    write_index(dir.path(), start, start + Span::seconds(269));
    let mut loaded = false;
    for _ in 0..200 {
        let (_, body) = http_get(addr, "/api/status").await;
        if body.contains("\"index_source\":\"index.json\"") {
            loaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(loaded, "the poll goes on after the corrupt file");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_corrupt_file_in_a_request_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    data_with_a_corrupt_file(dir.path());
    let start = t(2025, 12, 30, 0, 0, 0);
    write_index(dir.path(), start, start + Span::seconds(269));
    let app = app(dir.path());
    // One file only (the single-file path reads on the request's own thread).
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&from=2025-12-30T00:01:40Z&to=2025-12-30T00:02:00Z"),
    )
    .await;
    assert_eq!(json["files_read"], 0, "{json}");
    assert_eq!(json["skipped_files"].as_array().unwrap().len(), 1, "{json}");
    let json = get_json(
        &app,
        &format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&from=2025-12-30T00:00:00Z&to=2025-12-30T00:04:29Z"),
    )
    .await;
    assert_eq!(json["files_read"], 2, "{json}");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
    use axum::routing::get;
    async fn boom() -> &'static str {
        panic!("handler bug")
    }
    let app = axum::Router::new()
        .route("/boom", get(boom))
        .route("/fine", get(|| async { "fine" }))
        .layer(axum::middleware::from_fn(viewer::api::catch_panic));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (code, body) = http_get(addr, "/boom").await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR.as_u16());
    assert!(body.contains("handler bug"), "{body}");
    for _ in 0..3 {
        assert_eq!(http_get(addr, "/fine").await, (200, "fine".to_string()));
    }
    server.abort();
}

#[tokio::test]
async fn out_of_range_parameters_are_400_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB], start, 60, 90, &default_values);
    write_index(dir.path(), start, start + Span::seconds(59));
    let app = app(dir.path());
    for (uri, expected) in [
        // The earliest time chrono knows: defaulting `from` an hour before it overflowed.
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&to=-8334601228800000"),
            "out of range",
        ),
        (
            "/api/events?to=-8334601228800000".to_string(),
            "out of range",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&from=253402300800001"),
            "out of range",
        ),
        (
            format!(
                "/api/timeseries?containers={WEB}&metric=cpu_usage_usec&points=18446744073709551616"
            ),
            "points=",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&points=-5"),
            "points=",
        ),
        (
            format!("/api/timeseries?containers={WEB}&metric=cpu_usage_usec&to=1e999"),
            "not a time",
        ),
    ] {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains(expected), "{uri}: {body}");
    }
    // And the app still answers.
    assert_eq!(get_json(&app, "/api/status").await["state"], "ready");
}
