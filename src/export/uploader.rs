//! The upload task: every finished data file of this node, and its day's
//! events file, goes to the bucket once, oldest first.
//!
//! ```text
//!  recorder ─ "file published" (channel) ─┐
//!  start-up scan, rescan every 10 min ────┼─▶ pending (oldest first) ─▶ PUT ─▶ record (fsync)
//!  events/ (size changed) ────────────────┘        │ failure: backoff 1 s .. retry max
//! ```
//!
//! - Oldest first, and a failure stops the round: a node's data files reach
//!   the bucket in time order, which compaction's visibility rule relies on.
//! - A file whose earlier attempt had no known outcome (a restart, a timeout)
//!   is checked with a HEAD first: if the object holds the same bytes, it is
//!   recorded, not sent again.
//! - Retention still wins: the recorder tells of every file it removes
//!   ([`StoreEvent::Removed`]); one not uploaded yet leaves the queue and is
//!   counted as dropped and logged. The backlog is bounded by what the node keeps.
//! - Local collection never waits for this task.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::keys;
use super::record::{self, Entry, Record};
use super::status::ExportMetrics;
use crate::agent::recorder::StoreEvent;
use crate::s3::{self, S3Error};
use crate::store::retention::{self, Reason};
use crate::store::{events, layout};

/// Timing of the upload task.
#[derive(Debug, Clone)]
pub struct UploaderConfig {
    pub data_dir: PathBuf,
    pub node: String,
    /// Key prefix, normalised (see [`keys::normalize_prefix`]).
    pub prefix: String,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Full rescan of the data directory (catches anything a message missed).
    pub rescan_every: Duration,
    /// After stop: how long to wait for the last file and try to upload the rest.
    pub drain: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Data,
    Events {
        day: NaiveDate,
    },
    /// `containers.jsonl` of the day, made from index.json at upload time.
    Containers {
        day: NaiveDate,
    },
}

#[derive(Debug, Clone)]
struct Pending {
    path: PathBuf,
    /// Relative to the data directory: the record's name for it.
    rel: String,
    key: String,
    day: NaiveDate,
    kind: Kind,
    bytes: u64,
    /// An earlier attempt may have landed: HEAD before PUT.
    unsure: bool,
}

/// Order of the queue: time, then data (0), events (1), containers (2), other datasets (3), then name.
type QueueKey = (DateTime<Utc>, u8, String);

/// What became of one pending file.
enum Outcome {
    Uploaded(u64),
    /// The bucket already had these bytes (an attempt before a restart landed).
    AlreadyThere,
    /// An events file that did not change since its last upload.
    Unchanged,
    /// Retention removed it first.
    Vanished,
}

/// The uploader's state.
pub struct Uploader {
    config: UploaderConfig,
    client: Result<s3::Client, String>,
    record: Record,
    pending: BTreeMap<QueueKey, Pending>,
    metrics: ExportMetrics,
    failures: u32,
}

impl Uploader {
    /// Loads the record; `client` is `Err` when the settings or credentials
    /// cannot work (the task then reports it and keeps the backlog counted).
    pub fn new(
        config: UploaderConfig,
        client: Result<s3::Client, S3Error>,
        metrics: ExportMetrics,
    ) -> Self {
        let record = Record::load(&config.data_dir);
        if record.skipped_lines > 0 {
            tracing::warn!(
                lines = record.skipped_lines,
                "unreadable lines in the upload record skipped; their files are checked with a HEAD before any upload"
            );
        }
        if let Some(at) = record.last_upload() {
            metrics.restored_last_upload(at);
        }
        let client = client.map_err(|e| {
            metrics.failed(e.reason(), e.to_string(), Utc::now());
            e.to_string()
        });
        Self {
            config,
            client,
            record,
            pending: BTreeMap::new(),
            metrics,
            failures: 0,
        }
    }

    /// Runs until `stop`, then waits (bounded) for the recorder's last file and
    /// tries to upload what is left.
    pub async fn run(mut self, mut events: UnboundedReceiver<StoreEvent>, stop: CancellationToken) {
        self.full_scan();
        let mut next_attempt = Instant::now();
        let mut next_scan = Instant::now() + self.config.rescan_every;
        loop {
            if !self.pending.is_empty() && Instant::now() >= next_attempt {
                next_attempt = match self.upload_pending(&stop).await {
                    Ok(()) => {
                        self.failures = 0;
                        Instant::now()
                    }
                    Err(()) => {
                        self.failures = self.failures.saturating_add(1);
                        Instant::now() + self.backoff()
                    }
                };
            }
            let wake = if self.pending.is_empty() {
                next_scan
            } else {
                next_scan.min(next_attempt)
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                message = events.recv() => match message {
                    Some(event) => self.on_store_event(event),
                    // The agent is gone (it drops the sender when it stops).
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= next_scan {
                        self.full_scan();
                        next_scan = Instant::now() + self.config.rescan_every;
                    }
                }
            }
        }
        // The agent writes its open interval after stop: take that file too.
        let deadline = Instant::now() + self.config.drain;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
            self.on_store_event(event);
        }
        self.scan_events();
        self.add_containers(Utc::now().date_naive());
        if !self.pending.is_empty() && self.failures == 0 {
            let last_round = CancellationToken::new();
            let _ = tokio::time::timeout_at(
                deadline.max(Instant::now() + Duration::from_secs(1)),
                self.upload_pending(&last_round),
            )
            .await;
        }
        tracing::info!(
            backlog = self.pending.len(),
            "export stopped; what is left is uploaded after the next start"
        );
    }

    fn on_store_event(&mut self, event: StoreEvent) {
        match event {
            StoreEvent::Published(path) => {
                self.add_data_file(&path, false);
                self.scan_events();
                self.add_containers(Utc::now().date_naive());
            }
            StoreEvent::Removed { path, kind, reason } => self.removed(&path, kind, reason),
        }
    }

    /// Retention removed `path`: out of the queue, and counted and logged as
    /// dropped when its content never reached the bucket.
    fn removed(&mut self, path: &Path, kind: &str, reason: Reason) {
        let Some(rel) = self.rel(path) else {
            return;
        };
        let queued: Vec<QueueKey> = self
            .pending
            .iter()
            .filter(|(_, p)| p.rel == rel)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &queued {
            self.pending.remove(key);
        }
        let lost = match kind {
            retention::DATA => self.record.get(&rel).is_none() && self.own_data_file(path),
            // An events file with lines the bucket lacks (it grew since its last upload).
            retention::EVENTS => !queued.is_empty(),
            _ => false,
        };
        if lost {
            self.metrics.dropped();
            tracing::warn!(file = %rel, reason = reason.as_str(), backlog = self.pending.len(), "retention removed a file before it could be uploaded; it is lost for the bucket");
        }
        self.report_backlog();
    }

    /// Backoff after `failures` failed rounds: retry_min doubling up to
    /// retry_max, with up to 20 % jitter so nodes do not retry in step.
    fn backoff(&self) -> Duration {
        backoff(
            self.config.retry_min,
            self.config.retry_max,
            self.failures,
            jitter_fraction(),
        )
    }

    /// Every data file of this node and every events file not yet uploaded as is.
    fn full_scan(&mut self) {
        match layout::list_data_files(&self.config.data_dir, None) {
            Ok(listing) => {
                let node = self.config.node.clone();
                let mut days = std::collections::BTreeSet::new();
                for file in listing.files.into_iter().filter(|f| f.node == node) {
                    // Not attempted by this process: an earlier one may have sent it.
                    self.add_data_file(&file.path, true);
                    days.insert(file.start.date_naive());
                }
                for (_, file) in listing.datasets.into_iter().filter(|(_, f)| f.node == node) {
                    self.add_data_file(&file.path, true);
                }
                for day in days {
                    self.add_containers(day);
                }
            }
            Err(e) => {
                tracing::warn!(dir = %self.config.data_dir.display(), error = %e, "export cannot list the data directory")
            }
        }
        self.scan_events();
        let removed = self.record.prune(&self.config.data_dir);
        if !removed.is_empty() {
            tracing::debug!(
                files = removed.len(),
                "upload record of days gone from the node removed"
            );
        }
        self.report_backlog();
    }

    fn rel(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.config.data_dir)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Whether `path` is in this node's directory of a day.
    fn own_data_file(&self, path: &Path) -> bool {
        path.parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d.to_string_lossy() == layout::node_dir_name(&self.config.node))
    }

    /// Queues a finished data file of this node unless it is uploaded already.
    fn add_data_file(&mut self, path: &Path, unsure: bool) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Metrics files under the day's node prefix; the datasets beside them under
        // a prefix of their own (no glob over metrics files reads them), after the
        // metrics file of the same start.
        let (start, order, dataset) = match layout::parse_data_file_name(&name) {
            Some(start) => (start, 0, None),
            None => match layout::Dataset::parse_file_name(&name) {
                Some((dataset, start)) => (start, 3, Some(dataset)),
                None => return,
            },
        };
        let own = self.own_data_file(path);
        let Some(rel) = self.rel(path).filter(|_| own) else {
            return;
        };
        if self.record.get(&rel).is_some() {
            return;
        }
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let key = match dataset {
            None => keys::data_key(&self.config.prefix, &self.config.node, start),
            Some(d) => keys::dataset_key(&self.config.prefix, d, &self.config.node, start),
        };
        self.pending
            .entry((start, order, rel.clone()))
            .or_insert(Pending {
                path: path.to_path_buf(),
                rel,
                key,
                day: start.date_naive(),
                kind: Kind::Data,
                bytes,
                unsure,
            });
        self.report_backlog();
    }

    /// Queues the day's `containers.jsonl` (uploaded only when its bytes changed).
    fn add_containers(&mut self, day: NaiveDate) {
        let rel = format!("containers/{day}");
        let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let unsure = self.record.get(&rel).is_none();
        self.pending
            .entry((start, 2, rel.clone()))
            .or_insert(Pending {
                path: layout::index_path(&self.config.data_dir),
                key: keys::containers_key(&self.config.prefix, &self.config.node, day),
                rel,
                day,
                kind: Kind::Containers { day },
                bytes: 0,
                unsure,
            });
    }

    /// Queues every events file whose size differs from its last upload.
    fn scan_events(&mut self) {
        let dir = events::events_dir(&self.config.data_dir);
        let Ok(listing) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in listing.flatten() {
            let Some(day) = events::parse_events_file_name(&entry.file_name().to_string_lossy())
            else {
                continue;
            };
            let path = entry.path();
            let Some(rel) = self.rel(&path) else {
                continue;
            };
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if bytes == 0 || self.record.get(&rel).is_some_and(|e| e.bytes == bytes) {
                continue;
            }
            let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            let key = keys::events_key(&self.config.prefix, &self.config.node, day);
            let unsure = self.record.get(&rel).is_none();
            self.pending.insert(
                (start, 1, rel.clone()),
                Pending {
                    path,
                    rel,
                    key,
                    day,
                    kind: Kind::Events { day },
                    bytes,
                    unsure,
                },
            );
        }
        self.report_backlog();
    }

    fn report_backlog(&self) {
        let bytes = self.pending.values().map(|p| p.bytes).sum();
        self.metrics.backlog(self.pending.len() as u64, bytes);
    }

    /// Uploads pending files oldest first; stops at the first failure.
    async fn upload_pending(&mut self, stop: &CancellationToken) -> Result<(), ()> {
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(message) => {
                self.metrics
                    .failed("InvalidConfig", message.clone(), Utc::now());
                return Err(());
            }
        };
        while let Some((queue_key, file)) = self.pending.first_key_value() {
            if stop.is_cancelled() {
                return Ok(());
            }
            let (queue_key, mut file) = (queue_key.clone(), file.clone());
            let began = std::time::Instant::now();
            match upload_one(&client, &file, &self.record).await {
                Ok((outcome, entry)) => {
                    self.pending.remove(&queue_key);
                    self.finish(&file, outcome, entry, began.elapsed()).await;
                }
                Err(e) => {
                    file.unsure = true;
                    self.pending.insert(queue_key, file.clone());
                    self.metrics.failed(e.reason(), e.to_string(), Utc::now());
                    if self.failures == 0 || e.is_denied() {
                        tracing::warn!(reason = e.reason(), error = %e, backlog = self.pending.len(), "upload failed; retrying with backoff (collection goes on)");
                    } else {
                        tracing::debug!(reason = e.reason(), error = %e, "upload failed again");
                    }
                    self.report_backlog();
                    return Err(());
                }
            }
            self.report_backlog();
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        file: &Pending,
        outcome: Outcome,
        entry: Option<Entry>,
        took: Duration,
    ) {
        if let Some(entry) = entry {
            let dir = self.record.dir().to_path_buf();
            let day = file.day;
            let line = entry.clone();
            let written =
                tokio::task::spawn_blocking(move || record::write_line(&dir, day, &line)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, key = %entry.key, "uploaded, but the upload record cannot be written; after a restart the object is checked with a HEAD, not sent again")
                }
                Err(e) => tracing::error!(error = %e, "upload record writer panicked"),
            }
            self.record.insert(day, entry);
        }
        let kind = match file.kind {
            Kind::Data => "data",
            Kind::Events { .. } => "events",
            Kind::Containers { .. } => "containers",
        };
        match outcome {
            Outcome::Uploaded(bytes) => {
                self.metrics
                    .uploaded(kind, bytes, took.as_secs_f64(), Utc::now());
                tracing::debug!(key = %file.key, bytes, ?took, "uploaded");
            }
            Outcome::AlreadyThere => {
                tracing::info!(key = %file.key, "already in the bucket from an earlier attempt; recorded without uploading again");
            }
            Outcome::Unchanged => {}
            // Counted when the recorder tells of the removal (see `removed`).
            Outcome::Vanished => {
                tracing::debug!(file = %file.rel, "gone before its upload");
            }
        }
    }
}

/// Uploads one file; returns what happened and the record entry to write.
async fn upload_one(
    client: &s3::Client,
    file: &Pending,
    record: &Record,
) -> Result<(Outcome, Option<Entry>), S3Error> {
    let read = match file.kind {
        Kind::Containers { day } => {
            let path = file.path.clone();
            tokio::task::spawn_blocking(move || match crate::store::index::Index::load(&path) {
                Ok(Some(index)) => Ok(super::containers::day_file(&index, day)),
                Ok(None) => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        }
        _ => tokio::fs::read(&file.path).await,
    };
    let body = match read {
        Ok(body) if matches!(file.kind, Kind::Containers { .. }) && body.is_empty() => {
            return Ok((Outcome::Unchanged, None));
        }
        Ok(body) => Bytes::from(body),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Outcome::Vanished, None)),
        Err(source) => {
            return Err(S3Error::Local {
                path: file.path.clone(),
                source,
            });
        }
    };
    let sha256 = s3::sigv4::sha256_hex(&body);
    if !matches!(file.kind, Kind::Data) && record.get(&file.rel).is_some_and(|e| e.sha256 == sha256)
    {
        return Ok((Outcome::Unchanged, None));
    }
    let entry = Entry {
        file: file.rel.clone(),
        key: file.key.clone(),
        bytes: body.len() as u64,
        sha256: sha256.clone(),
        at: Utc::now(),
    };
    if file.unsure
        && let Some(info) = client.head_object(&file.key).await?
        && info.sha256.as_deref() == Some(sha256.as_str())
        && info.size == body.len() as u64
    {
        return Ok((Outcome::AlreadyThere, Some(entry)));
    }
    let content_type = match file.kind {
        Kind::Data => "application/vnd.apache.parquet",
        Kind::Events { .. } | Kind::Containers { .. } => "application/x-ndjson",
    };
    let bytes = body.len() as u64;
    client.put_object(&file.key, body, content_type).await?;
    Ok((Outcome::Uploaded(bytes), Some(entry)))
}

/// Pure backoff: `min * 2^(failures-1)` capped at `max`, stretched by `jitter`
/// (0.0..=1.0 of a fifth).
pub fn backoff(min: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let base = min.saturating_mul(1u32 << exp).min(max);
    base.mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0)).min(max)
}

/// A cheap 0..1 value from the clock's nanoseconds (jitter only, not randomness).
fn jitter_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(300), 1, 0.0), s(1));
        assert_eq!(backoff(s(1), s(300), 2, 0.0), s(2));
        assert_eq!(backoff(s(1), s(300), 5, 0.0), s(16));
        assert_eq!(backoff(s(1), s(300), 40, 0.0), s(300));
        assert_eq!(
            backoff(s(1), s(300), 40, 1.0),
            s(300),
            "jitter never passes the cap"
        );
        assert_eq!(backoff(s(10), s(300), 1, 1.0), s(12));
    }
}
