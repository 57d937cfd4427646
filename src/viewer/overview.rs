//! The overview: every container of a range ranked by CPU, memory,
//! throttling, IO and pressure, with sparklines, restarts and OOM kills.
//!
//! ```text
//!  files of the range ──▶ per-file summaries (cached, oldest give way) ─┐
//!  range edges ─────────▶ summaries of the part inside the range ───────┼▶ join per container ▶ rows, rankings
//!  events/*.jsonl ──────▶ OOM kills, restarts, CrashLoopBackOff ────────┘
//! ```

pub mod blocks;
pub mod rank;
/// The per-container summaries the overview joins (shared with the writer,
/// which stores them in each file's footer).
pub use crate::store::summary;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use self::blocks::Part;
use self::rank::{Category, Stats};
use self::summary::{FileSummary, Joined, Summary, codec, columns, join_into, join_one};
use super::files::{SkippedFile, for_each_file};
use super::state::{Block, Viewer, guarded};
use crate::store::events::{self, EventKind, PodEvent};
use crate::store::hours;
use crate::store::index::ContainerEntry;
use crate::store::layout::{self, DataFile, FileKind};
use crate::store::reader::{self, ReadError};

/// Most rows a ranking may ask for.
pub const MAX_TOP: usize = 100;
pub const DEFAULT_TOP: usize = 10;
/// Most events listed (the newest are kept).
const MAX_EVENTS: usize = 200;

/// One validated overview request.
#[derive(Debug, Clone)]
pub struct OverviewRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub top: usize,
    /// Search terms, as `/api/containers?q=`.
    pub q: String,
    pub include_sandbox: bool,
}

/// A file's summary restricted to `[from, to]`: the cached whole-file one
/// when the file lies inside the range, else one of the part inside.
fn file_summary(
    viewer: &Viewer,
    file: &DataFile,
    from_ms: i64,
    to_ms: i64,
    slot_ms: i64,
    keep: bool,
) -> Result<Arc<FileSummary>, ReadError> {
    let inside = |s: &FileSummary| s.span.is_none_or(|(a, b)| a >= from_ms && b <= to_ms);
    let cached = viewer.cached_summary(&file.path, slot_ms);
    if let Some(whole) = &cached
        && inside(whole)
    {
        return Ok(whole.clone());
    }
    let path: &Path = &file.path;
    // A file inside the range, on wide slots: from its footer, rows unread.
    if cached.is_none()
        && file.kind == FileKind::Parquet
        && slot_ms % codec::SLOT_MS == 0
        && let Some(stored) = guarded(path, || reader::read_footer_summary(path))?
        && let Some(whole) = codec::widen(&stored, slot_ms)
        && inside(&whole)
    {
        let whole = Arc::new(whole);
        if keep {
            viewer.keep_summary(path, slot_ms, file.start.timestamp_millis(), whole.clone());
        }
        return Ok(whole);
    }
    let read = viewer.read_columns(file, &columns())?;
    // The span is always the whole file's (it tells whether the file lies inside).
    let summarise = |clip| summary::of_columns(&read, clip, slot_ms);
    let whole = Arc::new(summarise(None));
    // A tail grows: summarised anew at each request (it holds one interval).
    if keep && cached.is_none() && file.kind == FileKind::Parquet {
        viewer.keep_summary(path, slot_ms, file.start.timestamp_millis(), whole.clone());
    }
    if inside(&whole) {
        return Ok(whole);
    }
    Ok(Arc::new(summarise(Some((from_ms, to_ms)))))
}

fn widest(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    }
}

/// A closed hour's files joined (cached while its files stay the same), and
/// the files of it that could not be read (then it is not cached).
fn block_summary(
    viewer: &Viewer,
    hour_ms: i64,
    files: &[DataFile],
    (from_ms, to_ms, slot_ms): (i64, i64, i64),
) -> (Arc<FileSummary>, Vec<SkippedFile>) {
    let node = files.first().map_or("", |f| f.node.as_str());
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let cached = viewer.cached_block(node, hour_ms, slot_ms);
    if let Some(block) = &cached
        && block.files == paths
    {
        return (block.summary.clone(), Vec::new());
    }
    // The newest span grows a file at a time: go on from what was joined.
    let (mut joined, mut span, done): (Joined, Option<(i64, i64)>, usize) = match cached {
        Some(block) if paths.starts_with(&block.files) => (
            block.summary.containers.clone(),
            block.summary.span,
            block.files.len(),
        ),
        _ => (Vec::new(), None, 0),
    };
    let mut skipped = Vec::new();
    let mut k = done;
    while k < files.len() {
        let hour = hours::hour_of(files[k].start);
        let end = k + files[k..].partition_point(|f| hours::hour_of(f.start) == hour);
        let of_hour = &files[k..end];
        k = end;
        // A whole hour the agent summarised: one file instead of its 40 footers.
        if slot_ms % codec::SLOT_MS == 0
            && let Some(dir) = of_hour[0].path.parent()
            && let Some(stored) = hours::read(&dir.join(layout::hour_summary_name(hour)))
            && stored.covers(of_hour)
        {
            let mut at = 0;
            let decoded = codec::decode_each(&stored.summary, slot_ms, |id, s| {
                join_one(&mut joined, &mut at, id, s, slot_ms)
            });
            if let Some(hour_span) = decoded {
                span = widest(span, hour_span);
                continue;
            }
        }
        for file in of_hour {
            // Every file of a block lies inside the range: its footer alone, decoded into the join.
            if slot_ms % codec::SLOT_MS == 0 {
                match guarded(&file.path, || {
                    reader::read_footer_value(&file.path, codec::KEY)
                }) {
                    Ok(Some(value)) => {
                        let mut at = 0;
                        let decoded = codec::decode_each(&value, slot_ms, |id, s| {
                            join_one(&mut joined, &mut at, id, s, slot_ms)
                        });
                        if let Some(file_span) = decoded {
                            span = widest(span, file_span);
                            continue;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        viewer.report_corrupt(&file.path, &e);
                        skipped.push(SkippedFile {
                            path: viewer.relative(&file.path),
                            error: e.to_string(),
                        });
                        continue;
                    }
                }
            }
            match file_summary(viewer, file, from_ms, to_ms, slot_ms, false) {
                Ok(fs) => {
                    join_into(&mut joined, &fs.containers, slot_ms);
                    span = widest(span, fs.span);
                }
                Err(e) => {
                    viewer.report_corrupt(&file.path, &e);
                    skipped.push(SkippedFile {
                        path: viewer.relative(&file.path),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    let summary = Arc::new(FileSummary {
        containers: joined,
        span,
    });
    if skipped.is_empty() {
        let block = Arc::new(Block {
            files: paths,
            summary: summary.clone(),
        });
        viewer.keep_block(node, hour_ms, slot_ms, block);
    }
    (summary, skipped)
}

/// Event counts of one container.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct EventCounts {
    oom_killed: u32,
    restart: u32,
    crash_loop_back_off: u32,
    terminated: u32,
}

impl EventCounts {
    fn add(&mut self, kind: EventKind) {
        match kind {
            EventKind::OomKilled => self.oom_killed += 1,
            EventKind::Restart => self.restart += 1,
            EventKind::CrashLoopBackOff => self.crash_loop_back_off += 1,
            EventKind::Terminated => self.terminated += 1,
        }
    }
    fn any(&self) -> bool {
        self.oom_killed + self.restart + self.crash_loop_back_off + self.terminated > 0
    }
}

/// True when `event` concerns the container `id` described by `entry`: by
/// id, or by namespace, pod and container name (a restart has a new id).
pub fn event_concerns(event: &PodEvent, id: &str, entry: Option<&ContainerEntry>) -> bool {
    if event.container_id.as_deref() == Some(id) {
        return true;
    }
    entry.is_some_and(|c| {
        c.namespace.as_deref() == Some(event.namespace.as_str())
            && c.pod_name.as_deref() == Some(event.pod.as_str())
            && c.container_name.as_deref() == Some(event.container.as_str())
    })
}

/// Runs an overview request (blocking: call from the blocking pool).
pub fn query(viewer: &Viewer, req: &OverviewRequest) -> std::io::Result<Value> {
    let snapshot = viewer.snapshot();
    let (from_ms, to_ms) = (req.from.timestamp_millis(), req.to.timestamp_millis());
    let slot_ms = rank::slot_ms(from_ms, to_ms);
    let dir = &viewer.opts.data_dir;
    let mut files = viewer.files_for_range(req.from, req.to)?;
    files.sort_by_key(|f| f.start);
    // Joined in file order as the summaries arrive: memory holds one summary
    // per container plus the few files being read, whatever the range.
    let mut joined: Joined = Vec::new();
    let mut files_read = 0;
    // Long ranges: closed hours as blocks (footer summaries joined once, cached).
    let parts = if slot_ms % codec::SLOT_MS == 0 {
        blocks::plan(&files, from_ms, to_ms, blocks::span_ms(slot_ms))
    } else {
        files.iter().cloned().map(Part::File).collect()
    };
    let window = (from_ms, to_ms, slot_ms);
    let mut lost_in_blocks = Vec::new();
    let mut skipped = for_each_file(
        viewer,
        &parts,
        8,
        |part| match part {
            Part::Block { hour_ms, files } => Ok(block_summary(viewer, *hour_ms, files, window)),
            Part::File(f) => {
                file_summary(viewer, f, from_ms, to_ms, slot_ms, true).map(|s| (s, Vec::new()))
            }
        },
        |part, (fs, mut lost)| {
            files_read += match part {
                Part::Block { files, .. } => files.len() - lost.len(),
                Part::File(_) => 1,
            };
            lost_in_blocks.append(&mut lost);
            join_into(&mut joined, &fs.containers, slot_ms);
        },
    );
    skipped.append(&mut lost_in_blocks);
    let index = snapshot.index.as_ref();
    let entry_of = |id: &str| index.and_then(|i| i.containers.get(id));
    // Keep the containers the request asks for.
    let matches = |id: &str| match entry_of(id) {
        Some(e) => super::query::container_matches(id, e, &req.q),
        None => req
            .q
            .split_whitespace()
            .all(|t| id.contains(&t.to_lowercase())),
    };
    let is_sandbox = |id: &str| entry_of(id).is_some_and(|e| e.sandbox);
    // Pods rank by network through their sandbox's row, shown or not.
    let pods: BTreeMap<String, Stats> = joined
        .iter()
        .filter(|(id, _)| is_sandbox(id) && matches(id))
        .map(|(id, s)| (id.clone(), rank::stats(s)))
        .filter(|(_, st)| st.network_bytes_per_sec.is_some())
        .collect();
    let pod_summaries: BTreeMap<String, Summary> = joined
        .iter()
        .filter(|(id, _)| pods.contains_key(id))
        .map(|(id, s)| (id.clone(), s.clone()))
        .collect();
    joined.retain(|(id, _)| (req.include_sandbox || !is_sandbox(id)) && matches(id));
    // The containers shown, by id: their joined summary.
    let joined: BTreeMap<String, Summary> = joined.into_iter().collect();
    let stats: BTreeMap<&str, Stats> = joined
        .iter()
        .map(|(id, s)| (id.as_str(), rank::stats(s)))
        .collect();

    let read = events::read_range(dir, req.from, req.to).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "overview without events");
        Default::default()
    });
    let mut counts: HashMap<&str, EventCounts> = HashMap::new();
    let mut listed = Vec::new();
    for event in &read.events {
        let owners: Vec<&str> = stats
            .keys()
            .copied()
            .filter(|id| event_concerns(event, id, entry_of(id)))
            .collect();
        for id in &owners {
            counts.entry(id).or_default().add(event.kind);
        }
        if !owners.is_empty() || req.q.is_empty() {
            listed.push(json!({
                "time": event.time,
                "kind": event.kind,
                "namespace": event.namespace,
                "pod": event.pod,
                "container": event.container,
                "containers": owners,
                "reason": event.reason,
                "exit_code": event.exit_code,
                "message": event.message,
            }));
        }
    }
    let events_truncated = listed.len() > MAX_EVENTS;
    if events_truncated {
        listed.drain(..listed.len() - MAX_EVENTS);
    }

    let mut rows: Vec<Value> = stats
        .iter()
        .map(|(id, s)| {
            let e = entry_of(id);
            let ev = counts.get(id).copied().unwrap_or_default();
            json!({
                "id": id,
                "pod_name": e.and_then(|e| e.pod_name.as_deref()),
                "namespace": e.and_then(|e| e.namespace.as_deref()),
                "container_name": e.and_then(|e| e.container_name.as_deref()),
                "cgroup_path": e.and_then(|e| e.cgroup_path.as_deref()),
                "qos_class": e.map(|e| e.qos_class.as_str()),
                "first": joined[*id].first_t,
                "last": joined[*id].last_t,
                "stats": s,
                "events": ev,
                // The kernel counts kills inside the cgroup; the API counts
                // terminations. Either may miss one, so the higher is shown.
                "oom_kills": s.oom_kills.unwrap_or(0).max(u64::from(ev.oom_killed)),
            })
        })
        .collect();
    let mut rankings = serde_json::Map::new();
    let mut pod_rows = Vec::new();
    for category in Category::ALL {
        let ranked = if category == Category::Network {
            rank::rank(
                pods.iter().map(|(id, s)| (id.as_str(), s)),
                category,
                req.top,
            )
        } else {
            rank::rank(stats.iter().map(|(id, s)| (*id, s)), category, req.top)
        };
        let list: Vec<Value> = ranked
            .into_iter()
            .map(|(id, value)| {
                let summary = joined.get(id).or_else(|| pod_summaries.get(id));
                let (start, line) = summary
                    .map(|s| rank::sparkline(s, category, from_ms, to_ms, slot_ms))
                    .unwrap_or_default();
                if category == Category::Network && !stats.contains_key(id) {
                    pod_rows.push(id.to_string());
                }
                json!({ "id": id, "value": value, "spark_start": start, "spark": line })
            })
            .collect();
        rankings.insert(
            category.as_str().into(),
            json!({ "unit": category.unit(), "rows": list }),
        );
    }
    // Pods of the network ranking whose sandbox row is not shown: a row of their own.
    for id in pod_rows {
        let (Some(e), Some(st), Some(s)) = (entry_of(&id), pods.get(&id), pod_summaries.get(&id))
        else {
            continue;
        };
        rows.push(json!({
            "id": id,
            "pod_name": e.pod_name,
            "namespace": e.namespace,
            "container_name": Value::Null,
            "cgroup_path": e.cgroup_path,
            "qos_class": e.qos_class,
            "sandbox": true,
            "first": s.first_t,
            "last": s.last_t,
            "stats": st,
            "events": EventCounts::default(),
            "oom_kills": 0,
        }));
    }
    // Containers with something to look at: OOM kills, restarts, crash loops.
    let mut troubled: Vec<(&str, u64, u32)> = stats
        .iter()
        .map(|(id, s)| {
            let ev = counts.get(id).copied().unwrap_or_default();
            let oom = s.oom_kills.unwrap_or(0).max(u64::from(ev.oom_killed));
            (
                *id,
                oom,
                ev.restart + ev.crash_loop_back_off + ev.terminated,
            )
        })
        .filter(|(id, oom, other)| {
            *oom > 0 || *other > 0 || counts.get(id).is_some_and(EventCounts::any)
        })
        .collect();
    troubled.sort_by(|a, b| (b.1, b.2).cmp(&(a.1, a.2)).then_with(|| a.0.cmp(b.0)));
    troubled.truncate(req.top);
    Ok(json!({
        "from": req.from,
        "to": req.to,
        "slot_ms": slot_ms,
        "containers": rows.len(),
        "files_read": files_read,
        "skipped_files": skipped,
        "rows": rows,
        "rankings": rankings,
        "troubled": troubled.iter().map(|(id, oom, other)| json!({"id": id, "oom_kills": oom, "other_events": other})).collect::<Vec<_>>(),
        "events": listed,
        "events_truncated": events_truncated,
        "skipped_event_lines": read.skipped_lines,
    }))
}
