//! What the agent wrote on the node's hostPath: index.json, completed Parquet files, events.

use std::path::{Path, PathBuf};

use fine_grained_monitor::store::reader::{ContainerSeries, NULL_VALUE, read_metric};
use serde_json::Value;

/// The default host data directory (the README's NodeMonitor uses it).
pub use crate::support::node::DATA_DIR;

/// index.json, or None while it does not exist (or is being replaced).
pub fn index() -> Option<Value> {
    let text = std::fs::read_to_string(Path::new(DATA_DIR).join("index.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The index entry (short id, entry) of `namespace/pod` container `container`.
pub fn indexed(
    index: &Value,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Option<(String, Value)> {
    index["containers"].as_object()?.iter().find_map(|(id, c)| {
        (c["namespace"] == namespace && c["pod_name"] == pod && c["container_name"] == container)
            .then(|| (id.clone(), c.clone()))
    })
}

/// The open intervals' tail files.
pub fn tail_files() -> Vec<PathBuf> {
    fine_grained_monitor::store::layout::list_data_files(Path::new(DATA_DIR), None)
        .map(|l| l.tails.into_iter().map(|t| t.path).collect())
        .unwrap_or_default()
}

/// Completed metrics files (`*.parquet`, never `.inprogress`, no other dataset), oldest first.
pub fn parquet_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(days) = std::fs::read_dir(DATA_DIR) else {
        return files;
    };
    for day in days
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("dt="))
    {
        let Ok(nodes) = std::fs::read_dir(day.path()) else {
            continue;
        };
        for node in nodes.flatten() {
            let Ok(entries) = std::fs::read_dir(node.path()) else {
                continue;
            };
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                    // Metrics files only, not the datasets beside them (network-, devices-, ...).
                    .filter(|p| {
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                        fine_grained_monitor::store::layout::Dataset::parse_file_name(name)
                            .is_none()
                    }),
            );
        }
    }
    files.sort();
    files
}

/// One container's samples of `metric` across every completed file, in time order (nulls
/// dropped).
pub fn series(short_id: &str, metric: &str) -> ContainerSeries {
    let mut all = ContainerSeries::default();
    for file in parquet_files() {
        // A file removed by retention between the listing and the read is skipped.
        let Ok(column) = read_metric(&file, metric) else {
            continue;
        };
        if let Some(s) = column.get(short_id) {
            for (t, v) in s.timestamps.iter().zip(&s.values) {
                if *v != NULL_VALUE {
                    all.timestamps.push(*t);
                    all.values.push(*v);
                }
            }
        }
    }
    all
}

/// Lines of the pod-event files (`events/events-*.jsonl`), parsed.
pub fn events() -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(Path::new(DATA_DIR).join("events")) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

/// Every sample of a container's `metric` on the node's disk, completed files and the open
/// interval's tail: (time, value), in time order.
pub fn samples(short: &str, metric: &str) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = {
        let s = series(short, metric);
        s.timestamps.into_iter().zip(s.values).collect()
    };
    let column = fine_grained_monitor::store::schema::metric_index(metric).expect("column");
    for tail in tail_files() {
        let Ok((rows, _)) = fine_grained_monitor::store::tail::read_tail_file(&tail) else {
            continue;
        };
        let _ = rows.for_each_row_sorted(|id, ts, values| {
            if id == short
                && let Some(v) = values[column]
            {
                out.push((ts, v));
            }
            Ok::<_, fine_grained_monitor::store::buffer::BufferCorrupt>(())
        });
    }
    out.sort();
    out.dedup_by_key(|s| s.0);
    out
}

/// `metric`'s newest recorded value for `short` at or after `since_ms`.
pub fn newest_since(short: &str, metric: &str, since_ms: i64) -> Option<(i64, i64)> {
    samples(short, metric)
        .into_iter()
        .rev()
        .find(|(t, _)| *t >= since_ms)
}
