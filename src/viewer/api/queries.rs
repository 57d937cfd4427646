//! The data queries of the API: time series, events, the overview,
//! studies and exports. Each validates its parameters (a 400 naming the bad
//! one), then runs on the blocking pool.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::{Value, json};

use super::{AppError, Shared};
use crate::store::{events, schema};
use crate::viewer::export;
use crate::viewer::overview::{self, OverviewRequest};
use crate::viewer::params::{
    MAX_CONTAINERS, Params, parse_bool, parse_choice, parse_containers, parse_count, parse_range,
};
use crate::viewer::series::{self, SeriesRequest};
use crate::viewer::state::Snapshot;
use crate::viewer::study;

/// Most points per series a request may ask for.
pub const MAX_POINTS: usize = 10_000;
pub const DEFAULT_POINTS: usize = 1_000;
/// Most events one request returns (the newest are kept).
pub const MAX_EVENTS: usize = 5_000;

pub(super) async fn timeseries(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Json<Value>, AppError> {
    let snapshot = viewer.snapshot();
    let containers = parse_containers(q.containers.as_deref(), true, MAX_CONTAINERS)?;
    let metric = known_metric(&snapshot, q.metric.as_deref())?;
    let points = parse_count(
        "points",
        q.points.as_deref(),
        DEFAULT_POINTS,
        2..=MAX_POINTS,
    )?;
    let latest = snapshot.index.as_ref().and_then(|i| i.data_range.latest);
    let (from, to) = parse_range(&q, latest, Duration::hours(1))?;
    let request = SeriesRequest {
        containers,
        metric,
        from,
        to,
        max_points: points,
    };
    let worker = viewer.clone();
    let result = tokio::task::spawn_blocking(move || series::query(&worker, &request))
        .await
        .map_err(|e| AppError::Internal(format!("query task failed: {e}")))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(result))
}

pub(super) async fn events_handler(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Json<Value>, AppError> {
    let snapshot = viewer.snapshot();
    let containers = parse_containers(q.containers.as_deref(), false, MAX_CONTAINERS)?;
    let latest = snapshot.index.as_ref().and_then(|i| i.data_range.latest);
    let (from, to) = parse_range(&q, latest, Duration::hours(1))?;
    let dir = viewer.opts.data_dir.clone();
    let read = tokio::task::spawn_blocking(move || events::read_range(&dir, from, to))
        .await
        .map_err(|e| AppError::Internal(format!("events task failed: {e}")))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    // An event belongs to a selected container by id, or by pod and
    // container name (a restarted container has a new id).
    let index = snapshot.index.as_ref();
    let mut list: Vec<&events::PodEvent> = read
        .events
        .iter()
        .filter(|e| {
            containers.is_empty()
                || containers.iter().any(|id| {
                    overview::event_concerns(e, id, index.and_then(|i| i.containers.get(id)))
                })
        })
        .collect();
    let truncated = list.len() > MAX_EVENTS;
    if truncated {
        list.drain(..list.len() - MAX_EVENTS);
    }
    Ok(Json(json!({
        "from": from,
        "to": to,
        "events": list,
        "truncated": truncated,
        "skipped_lines": read.skipped_lines,
    })))
}

pub(super) async fn overview_handler(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Json<Value>, AppError> {
    let snapshot = viewer.snapshot();
    let latest = snapshot.index.as_ref().and_then(|i| i.data_range.latest);
    let (from, to) = parse_range(&q, latest, Duration::minutes(15))?;
    let request = OverviewRequest {
        from,
        to,
        top: parse_count(
            "top",
            q.top.as_deref(),
            overview::DEFAULT_TOP,
            1..=overview::MAX_TOP,
        )?,
        q: q.q.clone().unwrap_or_default(),
        include_sandbox: parse_bool("include_sandbox", q.include_sandbox.as_deref())?,
    };
    let worker = viewer.clone();
    let result = tokio::task::spawn_blocking(move || overview::query(&worker, &request))
        .await
        .map_err(|e| AppError::Internal(format!("overview task failed: {e}")))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(result))
}

pub(super) async fn study_handler(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Json<Value>, AppError> {
    let snapshot = viewer.snapshot();
    let kind = parse_choice("kind", q.kind.as_deref(), &study::Kind::NAMES)?;
    let container = parse_containers(q.container.as_deref(), true, 1)?
        .pop()
        .ok_or_else(|| AppError::BadRequest("container is required".into()))?;
    let metric = known_metric(&snapshot, q.metric.as_deref())?;
    let latest = snapshot.index.as_ref().and_then(|i| i.data_range.latest);
    let (from, to) = parse_range(&q, latest, Duration::hours(1))?;
    if to - from > Duration::days(study::MAX_DAYS) {
        return Err(AppError::BadRequest(format!(
            "a study covers at most {} days; the range from {from} to {to} is longer",
            study::MAX_DAYS
        )));
    }
    let request = study::StudyRequest {
        kind: study::Kind::parse(kind).unwrap_or(study::Kind::Periodicity),
        container,
        metric,
        from,
        to,
    };
    let worker = viewer.clone();
    match tokio::task::spawn_blocking(move || study::query(&worker, &request))
        .await
        .map_err(|e| AppError::Internal(format!("study task failed: {e}")))?
    {
        Ok(json) => Ok(Json(json)),
        Err(e @ study::StudyError::TooManySamples) => Err(AppError::BadRequest(e.to_string())),
        Err(e) => Err(AppError::Internal(e.to_string())),
    }
}

/// The metric named by `name`, from the newest file's columns.
fn known_metric(snapshot: &Snapshot, name: Option<&str>) -> Result<schema::ColumnInfo, AppError> {
    let name = name
        .filter(|m| !m.is_empty())
        .ok_or_else(|| AppError::BadRequest("metric is required".into()))?;
    snapshot
        .metrics
        .iter()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown metric {name:?}; GET /api/metrics lists them"
            ))
        })
}

/// Sends export chunks into the response body; `false` once the client left.
struct BodySink(tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>);

impl export::Sink for BodySink {
    fn send(&mut self, bytes: Vec<u8>) -> bool {
        self.0.blocking_send(Ok(bytes.into())).is_ok()
    }
}

pub(super) async fn export_handler(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Response, AppError> {
    let snapshot = viewer.snapshot();
    let containers = parse_containers(q.containers.as_deref(), true, MAX_CONTAINERS)?;
    let metrics = match q.metrics.as_deref().map(str::trim) {
        None | Some("") => snapshot.metrics.clone(),
        Some(list) => list
            .split(',')
            .map(|name| known_metric(&snapshot, Some(name.trim())))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let format = parse_choice("format", q.format.as_deref(), &export::Format::NAMES)?;
    // The viewer's cap (--export-max-rows); a request may only lower it.
    let cap = viewer.opts.export_max_rows;
    let max_rows = parse_count("max_rows", q.max_rows.as_deref(), cap, 1..=cap)?;
    let check = parse_bool("check", q.check.as_deref())?;
    let latest = snapshot.index.as_ref().and_then(|i| i.data_range.latest);
    let (from, to) = parse_range(&q, latest, Duration::hours(1))?;
    let request = export::ExportRequest {
        containers,
        metrics,
        from,
        to,
        format: export::Format::parse(format).unwrap_or(export::Format::Csv),
        max_rows,
    };
    let (worker, req) = (viewer.clone(), request.clone());
    let plan = tokio::task::spawn_blocking(move || export::plan(&worker, &req))
        .await
        .map_err(|e| AppError::Internal(format!("export task failed: {e}")))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    if plan.rows > max_rows {
        return Err(AppError::BadRequest(format!(
            "the selection holds {} rows, more than the export cap of {max_rows}: narrow the \
             range, the containers or the metrics (this viewer allows up to {cap}, see \
             --export-max-rows)",
            plan.rows
        )));
    }
    if check {
        return Ok(Json(json!({
            "rows": plan.rows,
            "max_rows": max_rows,
            "files": plan.files.len(),
            "file_name": request.file_name(),
            "skipped_files": plan.skipped,
        }))
        .into_response());
    }
    let (send, receive) = tokio::sync::mpsc::channel(4);
    let file_name = request.file_name();
    let content_type = request.format.content_type();
    let rows = plan.rows;
    tokio::task::spawn_blocking(move || {
        export::write(&viewer, &request, &plan, &mut BodySink(send));
    });
    let stream = futures::stream::unfold(receive, |mut receive| async move {
        receive.recv().await.map(|chunk| (chunk, receive))
    });
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (
                header::HeaderName::from_static("x-fgm-rows"),
                rows.to_string(),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
