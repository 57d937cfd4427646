//! Answering a time-series request: find the files of the range from their
//! names, decode the metric column of each (cached, a few files at a time in
//! parallel), stream each container's samples through rate and downsampling
//! so memory follows the number of points sent, not the samples read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::files::{SkippedFile, for_each_file};
use super::query::{Downsampler, RateState, Steps};
use super::state::Viewer;
use crate::store::index::ContainerEntry;
use crate::store::reader::NULL_VALUE;
use crate::store::schema::{self, ColumnInfo, Group, MetricKind, RequestKind};

/// One validated request.
#[derive(Debug, Clone)]
pub struct SeriesRequest {
    pub containers: Vec<String>,
    pub metric: ColumnInfo,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub max_points: usize,
}

#[derive(Debug, Serialize)]
struct Series {
    container: String,
    t: Vec<i64>,
    v: Vec<Option<f64>>,
    /// Samples in the range before downsampling.
    raw_points: usize,
    downsampled: bool,
    /// The container's limits over the range, in the series' unit, as steps.
    limits: Vec<LimitSeries>,
    /// The pod spec's request, in the series' unit.
    request: Option<f64>,
}

#[derive(Debug, Serialize)]
struct LimitSeries {
    label: &'static str,
    t: Vec<i64>,
    v: Vec<Option<f64>>,
}

#[derive(Debug, Serialize)]
struct Response {
    metric: String,
    kind: &'static str,
    unit: String,
    display_unit: String,
    rate: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_points: usize,
    files_read: usize,
    series: Vec<Series>,
    skipped_files: Vec<SkippedFile>,
}

struct Stream {
    rate: RateState,
    points: Downsampler,
    limits: Vec<Steps>,
}

/// The container's request for `metric`, in the chart's unit.
fn request_in_unit(metric: &str, entry: Option<&ContainerEntry>) -> Option<f64> {
    let requests = entry?.requests?;
    match schema::request_of(metric)? {
        RequestKind::Cpu => requests.cpu_millicores.map(|m| m as f64 / 1000.0),
        RequestKind::Memory => requests.memory_bytes.map(|b| b as f64),
    }
}

/// The short id of the sandbox of `id`'s pod (`id` itself for a sandbox).
pub fn pod_sandbox(index: &crate::store::index::Index, id: &str) -> Option<String> {
    let entry = index.containers.get(id)?;
    if entry.sandbox {
        return Some(id.to_string());
    }
    let uid = entry.pod_uid.as_deref()?;
    index
        .containers
        .iter()
        .filter(|(_, e)| e.sandbox && e.pod_uid.as_deref() == Some(uid))
        .max_by_key(|(_, e)| e.last_seen)
        .map(|(sid, _)| sid.clone())
}

/// Runs a request (blocking: call from the blocking pool).
pub fn query(viewer: &Viewer, req: &SeriesRequest) -> std::io::Result<Value> {
    let snapshot = viewer.snapshot();
    let index = snapshot.index.as_ref();
    let files = viewer.files_for_range(req.from, req.to)?;
    let (display_unit, divisor) = req.metric.display_unit();
    let is_counter = req.metric.kind == MetricKind::Counter;
    let (from_ms, to_ms) = (req.from.timestamp_millis(), req.to.timestamp_millis());
    let limit_lines = schema::limit_lines(&req.metric.name);
    let mut streams: Vec<Stream> = req
        .containers
        .iter()
        .map(|_| Stream {
            rate: RateState::default(),
            points: Downsampler::new(from_ms, to_ms, req.max_points),
            limits: limit_lines.iter().map(|_| Steps::default()).collect(),
        })
        .collect();
    // A pod's network is on its sandbox's rows: a chart of it for any
    // container of the pod reads the sandbox's.
    let sources: Vec<String> = req
        .containers
        .iter()
        .map(|id| match (req.metric.group(), index) {
            (Group::Network, Some(index)) => pod_sandbox(index, id).unwrap_or_else(|| id.clone()),
            _ => id.clone(),
        })
        .collect();
    let mut files_read = 0;
    let skipped = for_each_file(
        viewer,
        &files,
        8,
        |f| viewer.chart_columns(f, &req.metric.name),
        |_, column| {
            files_read += 1;
            if !column.present {
                // Written before the metric existed: nothing to show, not a gap.
                return;
            }
            for (id, stream) in sources.iter().zip(streams.iter_mut()) {
                let Some(s) = column.get(id) else { continue };
                let first = s.timestamps.partition_point(|&t| t < from_ms);
                let end = s.timestamps.partition_point(|&t| t <= to_ms);
                for (line, steps) in stream.limits.iter_mut().enumerate() {
                    for (t, v) in s.limit_steps(line, first, end) {
                        steps.push(t, v);
                    }
                }
                for (&t, &raw) in s.timestamps.iter().zip(s.values) {
                    let value = if is_counter {
                        // The very first sample has no rate yet: no point rather than a gap.
                        if !stream.rate.started() {
                            stream.rate.next(t, raw);
                            continue;
                        }
                        stream.rate.next(t, raw)
                    } else {
                        (raw != NULL_VALUE).then_some(raw as f64)
                    };
                    if t >= from_ms && t <= to_ms {
                        stream.points.push(t, value.map(|v| v / divisor));
                    }
                }
            }
        },
    );
    let series = req
        .containers
        .iter()
        .zip(streams)
        .map(|(id, stream)| {
            let raw_points = stream.points.raw_count();
            let points = stream.points.finish();
            let entry = index.and_then(|i| i.containers.get(id));
            Series {
                container: id.clone(),
                downsampled: points.len() < raw_points,
                raw_points,
                t: points.t,
                v: points.v,
                limits: limit_lines
                    .iter()
                    .zip(stream.limits)
                    .filter_map(|(line, steps)| {
                        let p = steps.finish();
                        p.v.iter().any(Option::is_some).then(|| LimitSeries {
                            label: line.label(),
                            t: p.t,
                            v: p.v,
                        })
                    })
                    .collect(),
                request: request_in_unit(&req.metric.name, entry),
            }
        })
        .collect();
    let response = Response {
        metric: req.metric.name.clone(),
        kind: req.metric.kind.as_str(),
        unit: req.metric.unit.clone(),
        display_unit,
        rate: is_counter,
        from: req.from,
        to: req.to,
        max_points: req.max_points,
        files_read,
        series,
        skipped_files: skipped,
    };
    serde_json::to_value(response).map_err(std::io::Error::other)
}
