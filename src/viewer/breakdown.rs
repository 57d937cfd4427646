//! `GET /api/breakdown?dataset=devices|network&container=ID[&from=T][&to=T][&points=N]`:
//! one container's IO per block device, or its pod's network per interface,
//! as per-second rates from the agent's `devices-` and `network-<start>.parquet`
//! files (completed intervals: these datasets have no tail).
//!
//! ```text
//!  dataset files of the range ─▶ rows of the container ─▶ model::rates ─▶ JSON
//!  (as /api/processes picks)      (network: the pod's       per key, per counter,
//!                                  sandboxes, by the index)  buckets ≤ points
//! ```
//!
//! An unreadable file is skipped and named in `skipped_files`, as in every
//! other answer; a container without rows gets an empty `keys` list.

mod model;

use std::collections::BTreeSet;
use std::path::Path;

use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

pub use model::{KeySeries, Sample, rates, step_ms};

use super::api::{AppError, Shared};
use super::files::for_each_file;
use super::params::{Params, parse_containers, parse_count, parse_range};
use super::processes::dataset_files_for_range;
use super::state::{Viewer, guarded};
use crate::store::datasets::{self, Spec};
use crate::store::index::Index;
use crate::store::layout::Dataset;
use crate::store::reader::{self, ReadError};
use crate::store::schema::{self, MetricKind};

/// Buckets of an answer when `points` is not given, and the most allowed.
const DEFAULT_POINTS: usize = 600;
const MAX_POINTS: usize = 4000;

/// The datasets this endpoint breaks a container down by, and their key column.
fn dataset_of(name: Option<&str>) -> Result<(&'static Spec, &'static str), AppError> {
    match name {
        Some("devices") => Ok((&datasets::DEVICES, "device")),
        Some("network") => Ok((&datasets::NETWORK, "interface")),
        other => Err(AppError::BadRequest(format!(
            "dataset={:?}: use devices (IO per block device) or network (a pod's interfaces)",
            other.unwrap_or("")
        ))),
    }
}

/// The counter columns of a dataset, in order (the gauges, such as a device's
/// numbers, are not rates).
fn counters(spec: &Spec) -> Vec<&'static str> {
    spec.ints
        .iter()
        .filter(|(_, kind, _)| *kind == MetricKind::Counter)
        .map(|(name, _, _)| *name)
        .collect()
}

pub(crate) async fn breakdown_handler(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Json<Value>, AppError> {
    let (spec, key_column) = dataset_of(q.dataset.as_deref())?;
    let snapshot = viewer.snapshot();
    let container = parse_containers(q.container.as_deref(), false, 1)?
        .pop()
        .ok_or_else(|| {
            AppError::BadRequest(
                "container is required: a container id (GET /api/containers lists them)".into(),
            )
        })?;
    let latest = snapshot.index.as_ref().and_then(|i| i.data_range.latest);
    let (from, to) = parse_range(&q, latest, Duration::hours(1))?;
    let points = parse_count(
        "points",
        q.points.as_deref(),
        DEFAULT_POINTS,
        2..=MAX_POINTS,
    )?;
    // A pod's network is recorded on its sandbox: any container of the pod answers.
    let sources = match spec.dataset {
        Dataset::Network => sandboxes_of(snapshot.index.as_ref(), &container),
        _ => BTreeSet::from([container.clone()]),
    };
    let worker = viewer.clone();
    let request = Request {
        spec,
        key_column,
        sources,
        from,
        to,
        points,
    };
    let answer = tokio::task::spawn_blocking(move || query(&worker, &container, &request))
        .await
        .map_err(|e| AppError::Internal(format!("breakdown task failed: {e}")))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(answer))
}

/// The sandboxes of `container`'s pod (itself when it is one, or when the
/// index does not know its pod).
pub fn sandboxes_of(index: Option<&Index>, container: &str) -> BTreeSet<String> {
    let Some(index) = index else {
        return BTreeSet::from([container.to_string()]);
    };
    let pod = index
        .containers
        .get(container)
        .and_then(|e| e.pod_uid.as_deref());
    let sandboxes: BTreeSet<String> = match pod {
        Some(uid) => index
            .containers
            .iter()
            .filter(|(_, e)| e.sandbox && e.pod_uid.as_deref() == Some(uid))
            .map(|(id, _)| id.clone())
            .collect(),
        None => BTreeSet::new(),
    };
    if sandboxes.is_empty() {
        BTreeSet::from([container.to_string()])
    } else {
        sandboxes
    }
}

/// What to answer.
pub struct Request {
    pub spec: &'static Spec,
    pub key_column: &'static str,
    /// The containers whose rows are read.
    pub sources: BTreeSet<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub points: usize,
}

/// Runs a request (blocking: call from the blocking pool).
pub fn query(viewer: &Viewer, container: &str, req: &Request) -> std::io::Result<Value> {
    let files = dataset_files_for_range(&viewer.opts.data_dir, req.spec.dataset, req.from, req.to)?;
    let counters = counters(req.spec);
    let mut samples = Vec::new();
    let mut files_read = 0;
    let skipped = for_each_file(
        viewer,
        &files,
        4,
        |f| guarded(&f.path, || read_samples(&f.path, req, &counters)),
        |_, mut rows| {
            files_read += 1;
            samples.append(&mut rows);
        },
    );
    let (from_ms, to_ms) = (req.from.timestamp_millis(), req.to.timestamp_millis());
    let step = step_ms(from_ms, to_ms, req.points);
    let keys = rates(samples, counters.len(), from_ms, to_ms, step);
    let units: Vec<&str> = req
        .spec
        .ints
        .iter()
        .filter(|(_, kind, _)| *kind == MetricKind::Counter)
        .map(|(_, _, unit)| if *unit == "bytes" { "bytes/s" } else { "1/s" })
        .collect();
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            let series: serde_json::Map<String, Value> = counters
                .iter()
                .zip(&k.rates)
                .map(|(name, rates)| ((*name).to_string(), json!(rates)))
                .collect();
            let totals: serde_json::Map<String, Value> = counters
                .iter()
                .zip(&k.totals)
                .map(|(name, total)| ((*name).to_string(), json!(total)))
                .collect();
            json!({ "key": k.key, "rates": series, "totals": totals })
        })
        .collect();
    Ok(json!({
        "dataset": req.spec.dataset.name(),
        "container": container,
        "sources": req.sources,
        "key_column": req.key_column,
        "from": req.from,
        "to": req.to,
        "step_ms": step,
        "start_ms": from_ms,
        "counters": counters,
        "units": units,
        "keys": keys,
        "files_read": files_read,
        "skipped_files": skipped,
    }))
}

/// The rows of the request's containers in one dataset file.
fn read_samples(path: &Path, req: &Request, counters: &[&str]) -> Result<Vec<Sample>, ReadError> {
    let mut columns = vec![schema::TIMESTAMP, schema::CONTAINER_ID, req.key_column];
    columns.extend_from_slice(counters);
    let batches = reader::read_file(path, Some(&columns))?;
    let layout = |message: String| ReadError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let mut out = Vec::new();
    for batch in &batches {
        let time = batch
            .column_by_name(schema::TIMESTAMP)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
            .ok_or_else(|| layout("no millisecond timestamp column".into()))?;
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| layout(format!("no text column {name:?}")))
        };
        let (ids, keys) = (text(schema::CONTAINER_ID)?, text(req.key_column)?);
        // A counter a file lacks (an older version) is null there.
        let values: Vec<Option<&Int64Array>> = counters
            .iter()
            .map(|c| {
                batch
                    .column_by_name(c)
                    .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
            })
            .collect();
        for i in 0..batch.num_rows() {
            if ids.is_null(i) || !req.sources.contains(ids.value(i)) || keys.is_null(i) {
                continue;
            }
            out.push(Sample {
                t_ms: time.value(i),
                container: ids.value(i).to_string(),
                key: keys.value(i).to_string(),
                values: values
                    .iter()
                    .map(|a| a.and_then(|a| (!a.is_null(i)).then(|| a.value(i))))
                    .collect(),
            });
        }
    }
    Ok(out)
}
