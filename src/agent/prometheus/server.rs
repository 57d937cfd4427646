//! The agent's HTTP endpoint (`--metrics-addr`, default `0.0.0.0:9810`):
//!
//! - `GET /metrics`: the latest cycle as cAdvisor-named families, then the
//!   agent's self-metrics; Prometheus text 0.0.4 or OpenMetrics 1.0.0 by
//!   `Accept`. `?container=<id>` (12–64 hex) keeps one container only
//!   (400 for a value that is not an id, 404 when no container matches).
//! - `GET /healthz`: JSON health, 503 when collection has stalled.
//! - `GET /`: an index, HTML or plain text by `Accept`.
//!
//! Handlers only read the watch channel's latest `Arc<Cycle>` (no lock held
//! while rendering), so scrapes never slow the collection loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::agent::contract::{ContainerSample, CycleReceiver, PodMetadata};

use super::cadvisor::{ContainerFilter, render_containers};
use super::format::{Format, openmetrics_to_text};
use super::health::{HealthInput, evaluate};
use super::self_metrics::SelfMetrics;

/// Everything the endpoint reads; cheap to clone.
#[derive(Clone)]
pub struct MetricsState {
    pub cycles: CycleReceiver,
    pub pods: Option<Arc<dyn PodMetadata>>,
    pub self_metrics: SelfMetrics,
    /// `/healthz` fails after this long without a cycle.
    pub stale_after: Duration,
    pub started: DateTime<Utc>,
}

/// The endpoint's routes.
pub fn app(state: MetricsState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

/// Serves [`app`] on `listener` with `limits` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: MetricsState,
    limits: crate::http::Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    serve_router(listener, app(state), limits, stop).await
}

/// Serves `router` ([`app`] plus routes of other parts, e.g. the export
/// status `/export`) through the shared hardened server, with `limits`.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: crate::http::Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    crate::http::serve(listener, router, &limits, stop).await
}

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

async fn metrics(
    State(state): State<MetricsState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let filter = match query.get("container").map(|v| ContainerFilter::parse(v)) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            return text_response(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                format!("{e}\n"),
            );
        }
    };
    let format = Format::negotiate(accept(&headers));
    // Rendering every container is the heavy part of a scrape: it runs on the
    // blocking pool so the async workers keep answering other requests.
    let render = tokio::task::spawn_blocking(move || render(&state, filter, format, started));
    match render.await {
        Ok(response) => response,
        Err(e) => text_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("rendering the metrics failed: {e}\n"),
        ),
    }
}

/// The `/metrics` answer for the latest cycle (pure CPU work).
fn render(
    state: &MetricsState,
    filter: Option<ContainerFilter>,
    format: Format,
    started: Instant,
) -> Response {
    // Clone the Arc and release the channel at once: the sampler never waits on a scrape.
    let cycle = state.cycles.borrow().clone();
    let lookup = |c: &ContainerSample| {
        state
            .pods
            .as_ref()
            .and_then(|p| crate::agent::contract::identity_of(p.as_ref(), c))
    };
    let mut body = String::with_capacity(64 * 1024);
    let rendered = render_containers(&cycle, &lookup, filter.as_ref(), format, &mut body);
    if let Some(f) = &filter {
        if rendered == 0 {
            return text_response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                format!("no container matching {} in the latest cycle\n", f.as_str()),
            );
        }
    } else {
        state.self_metrics.scrape_done(started.elapsed());
        match format {
            Format::OpenMetrics => state.self_metrics.encode_openmetrics(&mut body),
            Format::Text => {
                let mut om = String::with_capacity(8 * 1024);
                state.self_metrics.encode_openmetrics(&mut om);
                openmetrics_to_text(&om, &mut body);
            }
        }
    }
    if format == Format::OpenMetrics {
        body.push_str("# EOF\n");
    }
    text_response(StatusCode::OK, format.content_type(), body)
}

async fn healthz(State(state): State<MetricsState>) -> Response {
    let cycle = state.cycles.borrow().clone();
    let (cycles, late_cycles) = state.self_metrics.cycle_counts();
    let health = evaluate(HealthInput {
        now: Utc::now(),
        started: state.started,
        last_cycle: cycle.timestamp,
        stale_after: state.stale_after,
        containers: cycle.containers.len(),
        cycles,
        late_cycles,
        enrichment: state.self_metrics.enrichment(),
    });
    let status = if health.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health)).into_response()
}

const PATHS: [(&str, &str); 3] = [
    (
        "/metrics",
        "container metrics (cAdvisor names) and agent self-metrics; ?container=<id> for one container",
    ),
    ("/healthz", "health of the collection loop (JSON)"),
    ("/", "this page"),
];

async fn index(headers: HeaderMap) -> Response {
    let wants_html = accept(&headers).is_some_and(|a| a.contains("text/html"));
    let version = env!("CARGO_PKG_VERSION");
    if wants_html {
        let items: String = PATHS
            .iter()
            .map(|(p, d)| format!("<li><a href=\"{p}\">{p}</a>: {d}</li>\n"))
            .collect();
        let body = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>fine-grained-monitor agent</title></head>\n\
             <body><h1>fine-grained-monitor agent {version}</h1>\n<ul>\n{items}</ul></body></html>\n"
        );
        text_response(StatusCode::OK, "text/html; charset=utf-8", body)
    } else {
        let items: String = PATHS.iter().map(|(p, d)| format!("{p}  {d}\n")).collect();
        let body = format!("fine-grained-monitor agent {version}\n\n{items}");
        text_response(StatusCode::OK, "text/plain; charset=utf-8", body)
    }
}

async fn not_found() -> Response {
    text_response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "not found: try /metrics, /healthz or /\n".to_string(),
    )
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
