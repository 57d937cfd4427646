//! The real server on a real port: start-up, the poll that notices data
//! arriving, and a clean stop.

use std::time::Duration;

use chrono::Duration as Span;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::fixture::*;
use fine_grained_monitor::viewer;

/// A plain HTTP/1.1 GET over TCP: (status code, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
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

#[tokio::test]
async fn serves_on_a_port_and_notices_data_arriving() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut opts = options(dir.path());
    opts.poll_interval = Duration::from_millis(50);
    let stop = CancellationToken::new();
    let server = tokio::spawn(viewer::serve(listener, opts, stop.clone()));

    let (code, body) = http_get(addr, "/").await;
    assert_eq!(code, 200);
    assert!(body.contains("Waiting for metrics data..."));

    // The agent writes its first file and index.
    let start = t(2025, 12, 30, 0, 0, 0);
    write_samples(dir.path(), &[WEB], start, 90, 90, &default_values);
    write_index(dir.path(), start, start + Span::seconds(89));
    let mut ready = false;
    for _ in 0..100 {
        let (_, status) = http_get(addr, "/api/status").await;
        if status.contains("\"state\":\"ready\"") {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the poll picks up the new index");
    let (code, page) = http_get(addr, "/").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("/assets/uPlot.iife.min.js"),
        "the app page once data is there"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops when cancelled")
        .unwrap()
        .unwrap();
}
