//! The HTTP surface: JSON API under `/api/`, the page and its embedded
//! assets. Handlers are thin: they validate parameters (a bad one is a 400
//! naming it), then run the blocking work on the blocking pool. No request
//! value ever becomes a path: data files are found from the clock range, and
//! assets from a fixed table.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::FutureExt;
use serde_json::{Value, json};

use super::page;
use super::params::{BadParam, Params, parse_bool};
use super::state::{Source, Viewer};
use crate::store::schema;

mod queries;
pub use queries::{DEFAULT_POINTS, MAX_EVENTS, MAX_POINTS};
use queries::{events_handler, export_handler, overview_handler, study_handler, timeseries};

/// An error answered as `{"error": message}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl From<BadParam> for AppError {
    fn from(e: BadParam) -> Self {
        AppError::BadRequest(e.0)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

pub(crate) type Shared = Arc<Viewer>;

/// The query string as [`Params`]; a malformed one (a repeated parameter,
/// say) is a 400 with a JSON message like any other bad parameter.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<Params>::from_request_parts(parts, state)
            .await
            .map(|Query(p)| p)
            .map_err(|e| AppError::BadRequest(format!("bad query string: {}", e.body_text())))
    }
}

/// The whole app over one viewer state.
pub fn app(viewer: Shared) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/assets/{name}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/status", get(status))
        .route("/api/containers", get(containers))
        .route("/api/metrics", get(metrics))
        .route("/api/timeseries", get(timeseries))
        .route("/api/events", get(events_handler))
        .route("/api/overview", get(overview_handler))
        .route("/api/study", get(study_handler))
        .route("/api/export", get(export_handler))
        .route("/api/processes", get(super::processes::processes_handler))
        .route("/api/breakdown", get(super::breakdown::breakdown_handler))
        .route("/mcp", get(super::mcp::mcp_get).post(super::mcp::mcp_post))
        .fallback(|| async { AppError::NotFound("no such page".into()) })
        .layer(middleware::from_fn(catch_panic))
        .with_state(viewer)
}

/// Answers 500 when a handler panics, so a bug in one request is that
/// request's error: the connection gets an answer and the viewer goes on.
pub async fn catch_panic(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => AppError::Internal(format!(
            "the request failed unexpectedly: {}",
            super::state::panic_message(panic.as_ref())
        ))
        .into_response(),
    }
}

/// `ready`, `waiting` or `error`, with the explanation shown to users.
fn state_of(viewer: &Viewer) -> (&'static str, String) {
    let snapshot = viewer.snapshot();
    if snapshot.index.is_some() {
        return ("ready", String::new());
    }
    let waited = viewer.started.elapsed();
    let dir = viewer.opts.data_dir.display();
    let why = snapshot
        .index_error
        .as_deref()
        .map(|e| format!(" Last problem: {e}."))
        .unwrap_or_default();
    if waited >= viewer.opts.waiting_timeout {
        (
            "error",
            format!(
                "No metrics data in {dir} after {}s: no index.json and no data files.{why}",
                waited.as_secs()
            ),
        )
    } else {
        (
            "waiting",
            format!("Waiting for metrics data in {dir}...{why}"),
        )
    }
}

fn status_json(viewer: &Viewer) -> Value {
    let snapshot = viewer.snapshot();
    let (state, message) = state_of(viewer);
    let index = snapshot.index.as_ref();
    // The files' range grows at each rotation; the open interval's tail is newer.
    let mut data_range = index.map(|i| i.data_range.clone());
    if let (Some(range), Some((first, last))) = (data_range.as_mut(), viewer.live_span()) {
        range.earliest = Some(range.earliest.map_or(first, |e| e.min(first)));
        range.latest = Some(range.latest.map_or(last, |l| l.max(last)));
    }
    let corrupt: Vec<Value> = viewer
        .corrupt_files()
        .into_iter()
        .map(|(path, error)| json!({ "path": path, "error": error }))
        .collect();
    json!({
        "state": state,
        "message": message,
        "version": env!("CARGO_PKG_VERSION"),
        "index_loaded": index.is_some(),
        "index_source": match &snapshot.source {
            Source::Nothing => Value::Null,
            Source::IndexFile { .. } => json!("index.json"),
            Source::Rebuilt { .. } => json!("rebuilt_from_files"),
        },
        "index_error": snapshot.index_error,
        "updated_at": index.map(|i| i.updated_at),
        "data_range": data_range,
        "containers": index.map_or(0, |i| i.containers.len()),
        "waiting_seconds": if index.is_some() { 0 } else { viewer.started.elapsed().as_secs() },
        "waiting_timeout_seconds": viewer.opts.waiting_timeout.as_secs(),
        "poll_interval_seconds": viewer.opts.poll_interval.as_secs_f64(),
        "corrupt_files": corrupt,
    })
}

async fn status(State(viewer): State<Shared>) -> Json<Value> {
    Json(status_json(&viewer))
}

async fn index_page(State(viewer): State<Shared>) -> Response {
    let (state, message) = state_of(&viewer);
    match state {
        "ready" => Html(page::INDEX_HTML).into_response(),
        "waiting" => Html(page::waiting_page(&message, &viewer.opts)).into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(page::error_page(&message, &viewer.opts)),
        )
            .into_response(),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    match page::asset(&name) {
        Some((mime, body)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
            .into_response(),
        None => AppError::NotFound(format!("no asset {name:?}")).into_response(),
    }
}

async fn containers(State(viewer): State<Shared>, query: Params) -> Result<Json<Value>, AppError> {
    let include_sandbox = parse_bool("include_sandbox", query.include_sandbox.as_deref())?;
    let q = query.q.unwrap_or_default();
    let snapshot = viewer.snapshot();
    let mut list = Vec::new();
    let mut hidden_sandboxes = 0;
    if let Some(index) = &snapshot.index {
        for (id, c) in &index.containers {
            if c.sandbox && !include_sandbox {
                hidden_sandboxes += 1;
                continue;
            }
            if !super::query::container_matches(id, c, &q) {
                continue;
            }
            list.push(json!({
                "id": id,
                "full_id": c.full_id,
                "pod_name": c.pod_name,
                "namespace": c.namespace,
                "container_name": c.container_name,
                "labels": c.labels,
                "pod_uid": c.pod_uid,
                "qos_class": c.qos_class,
                "first_seen": c.first_seen,
                "last_seen": c.last_seen,
                "cgroup_path": c.cgroup_path,
                "runtime": c.runtime,
                "sandbox": c.sandbox,
            }));
        }
    }
    Ok(Json(
        json!({ "containers": list, "hidden_sandboxes": hidden_sandboxes }),
    ))
}

async fn metrics(State(viewer): State<Shared>) -> Json<Value> {
    let snapshot = viewer.snapshot();
    let list: Vec<Value> = snapshot
        .metrics
        .iter()
        .map(|m| {
            let (display_unit, _) = m.display_unit();
            let group = m.group();
            json!({
                "name": m.name,
                "title": m.title(),
                "group": group.as_str(),
                "group_title": group.title(),
                "kind": m.kind.as_str(),
                "unit": m.unit,
                "display_unit": display_unit,
                "help": m.def().map(|d| d.help),
                "limits": schema::limit_lines(&m.name).iter().map(|l| l.label()).collect::<Vec<_>>(),
                "request": schema::request_of(&m.name).map(|r| match r {
                    schema::RequestKind::Cpu => "cpu",
                    schema::RequestKind::Memory => "memory",
                }),
            })
        })
        .collect();
    Json(json!({
        "metrics": list,
        "from_file": snapshot.metrics_from.as_deref().map(|p| viewer.relative(p)),
    }))
}
