//! `GET /api/processes?container=ID[&from=T][&to=T]`: the processes of one
//! container over a range, from the agent's `processes-<start>.parquet`
//! files (written with `--processes`; completed intervals only, no tail).
//!
//! ```text
//!  processes files of the range ─▶ rows of the container ─▶ model::Builder ─▶ JSON
//!  (named by start, ending where      (projected columns,     (pid, start) → CPU s,
//!   the next file of the node starts)  filtered after read)   memory, samples ≤ 600
//! ```
//!
//! An unreadable file is skipped and named in `skipped_files`, as in every
//! other answer; an unknown container has no rows, so an empty list.

mod model;

use std::path::Path;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

pub use model::{
    Answer, Builder, Event, MAX_PROCESSES, MAX_SAMPLES, Process, ProcessRow, Sample, select_files,
};

use super::api::{AppError, Shared};
use super::files::for_each_file;
use super::params::{Params, parse_containers, parse_range};
use super::state::{Viewer, guarded};
use crate::store::layout::{self, DataFile, Dataset};
use crate::store::reader::{self, ReadError};
use crate::store::schema;

/// The columns read from a processes file (threads, USS and swap are not shown).
const COLUMNS: [&str; 11] = [
    schema::TIMESTAMP,
    schema::CONTAINER_ID,
    "command",
    "event",
    "pid",
    "start_time_ms",
    "nspid",
    "ppid",
    "cpu_usec",
    "rss_bytes",
    "pss_bytes",
];

pub(crate) async fn processes_handler(
    State(viewer): State<Shared>,
    q: Params,
) -> Result<Json<Value>, AppError> {
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
    let worker = viewer.clone();
    let answer = tokio::task::spawn_blocking(move || query(&worker, &container, from, to))
        .await
        .map_err(|e| AppError::Internal(format!("processes task failed: {e}")))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(answer))
}

/// The files of `dataset` (processes, devices, network) that may hold rows of
/// `[from, to]`, in time order ([`select_files`]). A missing data directory has none.
pub fn dataset_files_for_range(
    data_dir: &Path,
    dataset: Dataset,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> std::io::Result<Vec<DataFile>> {
    if to < from {
        return Ok(Vec::new());
    }
    let first_day =
        (from - Duration::from_std(layout::MAX_FILE_SPAN).unwrap_or_default()).date_naive();
    let listing = match layout::list_data_files(data_dir, Some((first_day, to.date_naive()))) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let files = listing
        .datasets
        .into_iter()
        .filter(|(d, _)| *d == dataset)
        .map(|(_, f)| f)
        .collect();
    let others: Vec<DataFile> = listing.files.into_iter().chain(listing.tails).collect();
    Ok(select_files(files, &others, from, to))
}

/// Runs a request (blocking: call from the blocking pool).
pub fn query(
    viewer: &Viewer,
    container: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> std::io::Result<Value> {
    let files = dataset_files_for_range(&viewer.opts.data_dir, Dataset::Processes, from, to)?;
    let mut builder = Builder::new(from.timestamp_millis(), to.timestamp_millis(), MAX_SAMPLES);
    let mut files_read = 0;
    let skipped = for_each_file(
        viewer,
        &files,
        4,
        |f| guarded(&f.path, || read_rows(&f.path, container)),
        |_, rows| {
            files_read += 1;
            builder.add_file(rows);
        },
    );
    let answer = builder.finish(MAX_PROCESSES);
    Ok(json!({
        "container": container,
        "from": from,
        "to": to,
        "processes": answer.processes,
        "total_processes": answer.total,
        "truncated": answer.truncated,
        "max_processes": MAX_PROCESSES,
        "max_samples": MAX_SAMPLES,
        "files_read": files_read,
        "skipped_files": skipped,
    }))
}

/// The rows of `container` in one processes file.
pub fn read_rows(path: &Path, container: &str) -> Result<Vec<ProcessRow>, ReadError> {
    let batches = reader::read_file(path, Some(&COLUMNS))?;
    let mut rows = Vec::new();
    for batch in &batches {
        let cols = Columns::of(batch, path)?;
        for i in 0..batch.num_rows() {
            if cols.container.is_null(i) || cols.container.value(i) != container {
                continue;
            }
            let (Some(pid), Some(start_ms)) = (int(cols.pid, i), int(cols.start, i)) else {
                continue;
            };
            rows.push(ProcessRow {
                t: cols.time.value(i),
                event: Event::parse(text(cols.event, i)),
                pid,
                start_ms,
                nspid: int(cols.nspid, i),
                ppid: int(cols.ppid, i),
                command: text(cols.command, i).to_string(),
                cpu_usec: int(cols.cpu, i),
                rss_bytes: int(cols.rss, i),
                pss_bytes: int(cols.pss, i),
            });
        }
    }
    Ok(rows)
}

struct Columns<'a> {
    time: &'a TimestampMillisecondArray,
    container: &'a StringArray,
    command: &'a StringArray,
    event: &'a StringArray,
    pid: &'a Int64Array,
    start: &'a Int64Array,
    nspid: &'a Int64Array,
    ppid: &'a Int64Array,
    cpu: &'a Int64Array,
    rss: &'a Int64Array,
    pss: &'a Int64Array,
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch, path: &Path) -> Result<Self, ReadError> {
        Ok(Self {
            time: column(batch, schema::TIMESTAMP, path)?,
            container: column(batch, schema::CONTAINER_ID, path)?,
            command: column(batch, "command", path)?,
            event: column(batch, "event", path)?,
            pid: column(batch, "pid", path)?,
            start: column(batch, "start_time_ms", path)?,
            nspid: column(batch, "nspid", path)?,
            ppid: column(batch, "ppid", path)?,
            cpu: column(batch, "cpu_usec", path)?,
            rss: column(batch, "rss_bytes", path)?,
            pss: column(batch, "pss_bytes", path)?,
        })
    }
}

/// Column `name` of `batch` as `T`; a missing or differently typed one makes
/// the file unreadable (skipped and reported).
fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a T, ReadError> {
    let layout = |message: String| ReadError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| layout(format!("no column {name:?} (not a processes file?)")))?;
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| layout(format!("column {name:?} has type {}", array.data_type())))
}

fn int(array: &Int64Array, i: usize) -> Option<i64> {
    (!array.is_null(i)).then(|| array.value(i))
}

fn text(array: &StringArray, i: usize) -> &str {
    if array.is_null(i) { "" } else { array.value(i) }
}
