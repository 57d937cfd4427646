//! `/metrics`, `/healthz` and `/readyz` of the operator.
//!
//! `/healthz` answers while the process runs; `/readyz` once the operator
//! reached the API (it runs the controller, or waits on the Lease as standby).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// State shared by the controller and the HTTP endpoints.
#[derive(Default)]
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
}

/// The endpoints as a router (tested without a socket).
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// Serves the endpoints with `limits` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    limits: crate::http::Limits,
    stop: CancellationToken,
) {
    if let Err(e) = crate::http::serve(listener, app(shared), &limits, stop).await {
        tracing::error!(error = %e, "operator HTTP server failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_status(app: Router, path: &str) -> (StatusCode, String) {
        let resp = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn endpoints() {
        let shared = Arc::new(Shared::default());
        assert_eq!(
            get_status(app(shared.clone()), "/healthz").await.0,
            StatusCode::OK
        );
        assert_eq!(
            get_status(app(shared.clone()), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        shared.ready.store(true, Ordering::Release);
        assert_eq!(
            get_status(app(shared.clone()), "/readyz").await.0,
            StatusCode::OK
        );
        let (status, body) = get_status(app(shared), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("fgm_operator_reconciles_total"), "{body}");
    }
}
