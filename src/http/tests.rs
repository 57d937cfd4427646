use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::Request;
use axum::routing::{get, post};
use tower::ServiceExt;

use super::*;

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(300),
        max_connections: 4,
        max_requests: 1,
        max_request_bytes: 1024,
    }
}

fn router() -> Router {
    Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "slow"
            }),
        )
        .route(
            "/echo",
            post(|body: axum::body::Bytes| async move { format!("{} bytes", body.len()) }),
        )
}

async fn call(app: Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.oneshot(req).await.unwrap_or_else(|e| match e {});
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn declared_oversized_body_is_refused_before_the_handler() {
    let app = guarded(router(), &limits());
    let req = Request::post("/echo")
        .header(header::CONTENT_LENGTH, "4096")
        .body(Body::from(vec![b'x'; 4096]))
        .unwrap_or_default();
    let (status, body) = call(app.clone(), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("1024 bytes"), "{body}");

    let small = Request::post("/echo")
        .body(Body::from(vec![b'x'; 100]))
        .unwrap_or_default();
    assert_eq!(call(app, small).await, (StatusCode::OK, "100 bytes".into()));
}

#[tokio::test]
async fn undeclared_oversized_body_cannot_be_read_whole() {
    let app = guarded(router(), &limits());
    // A streamed body has no Content-Length: the handler's read fails at the cap.
    let chunks = futures::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 512]))),
    );
    let req = Request::post("/echo")
        .body(Body::from_stream(chunks))
        .unwrap_or_default();
    let (status, body) = call(app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn slow_handler_is_answered_503_at_the_request_timeout() {
    let app = guarded(router(), &limits());
    let began = std::time::Instant::now();
    let (status, body) = call(
        app,
        Request::get("/slow")
            .body(Body::empty())
            .unwrap_or_default(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("300ms"), "{body}");
    assert!(began.elapsed() < Duration::from_secs(4), "not cut off");
}

#[tokio::test]
async fn requests_beyond_the_cap_wait_for_a_slot() {
    let mut l = limits();
    l.request_timeout = Duration::from_secs(3);
    let app = guarded(router(), &l);
    // One slot: a slow request holds it, so a fast one waits until the slow one's timeout frees it.
    let slow = tokio::spawn(call(
        app.clone(),
        Request::get("/slow")
            .body(Body::empty())
            .unwrap_or_default(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = std::time::Instant::now();
    let (status, _) = call(
        app,
        Request::get("/fast")
            .body(Body::empty())
            .unwrap_or_default(),
    )
    .await;
    // The slow request times out at 3 s, which frees the slot for the fast one.
    assert_eq!(status, StatusCode::OK);
    assert!(began.elapsed() >= Duration::from_secs(2), "did not wait");
    assert_eq!(
        slow.await.map(|r| r.0).ok(),
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
}

#[test]
fn flags_round_trip_to_limits() {
    let args = HttpArgs::default();
    assert_eq!(Limits::from(&args), Limits::default());
    let zero = HttpArgs {
        http_max_connections: 0,
        http_max_requests: 0,
        ..HttpArgs::default()
    };
    let l = Limits::from(&zero);
    assert_eq!((l.max_connections, l.max_requests), (1, 1));
}
