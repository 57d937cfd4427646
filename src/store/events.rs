//! Pod failure events (OOM kills, other terminations, CrashLoopBackOff,
//! restarts), one JSON object per line, one file per UTC day:
//!
//! ```text
//! <data>/events/events-YYYY-MM-DD.jsonl
//! ```
//!
//! Lines are appended whole with a single `write` on an `O_APPEND` file, so a
//! reader sees complete lines; a torn or foreign line (crash, disk full) is
//! skipped and counted, never fatal. Retention removes whole day files.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub const EVENTS_DIR: &str = "events";

/// Which pod failure signals were recorded, for the pods alive (see
/// `agent::enrich::events::Dedup`), relative to the data directory.
pub const SEEN_FILE: &str = "events/seen.json";

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Terminated with reason `OOMKilled`.
    OomKilled,
    /// Terminated for another reason (`Error`, `ContainerCannotRun`, ...).
    Terminated,
    /// Waiting with reason `CrashLoopBackOff`.
    CrashLoopBackOff,
    /// The restart count went up.
    Restart,
}

/// One pod failure signal, recorded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodEvent {
    pub time: DateTime<Utc>,
    pub kind: EventKind,
    pub namespace: String,
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    pub container: String,
    /// 12-hex short id of the container the event concerns, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub restart_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why events could not be written or read, with the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot write events file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read events file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn events_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(EVENTS_DIR)
}

/// The file holding events of `day`.
pub fn events_file(data_dir: &Path, day: NaiveDate) -> PathBuf {
    events_dir(data_dir).join(format!("events-{}.jsonl", day.format("%Y-%m-%d")))
}

/// Day of an `events-YYYY-MM-DD.jsonl` file name.
pub fn parse_events_file_name(name: &str) -> Option<NaiveDate> {
    let day = name.strip_prefix("events-")?.strip_suffix(".jsonl")?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Appends events to their day files, one whole line per `write`.
pub fn append(data_dir: &Path, events: &[PodEvent]) -> Result<(), EventsError> {
    for event in events {
        let path = events_file(data_dir, event.time.date_naive());
        let err = |source| EventsError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            super::durable::create_dir_all_synced(dir, data_dir).map_err(err)?;
        }
        let new_file = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(err)?;
        // After a torn last line (crash), start on a fresh line so only the torn one is lost.
        let mut line = if ends_mid_line(&file).map_err(err)? {
            vec![b'\n']
        } else {
            Vec::new()
        };
        serde_json::to_writer(&mut line, event).map_err(|e| err(e.into()))?;
        line.push(b'\n');
        file.write_all(&line).map_err(err)?;
        // Events are rare and each is recorded once: make it stick.
        file.sync_data().map_err(err)?;
        if new_file && let Some(dir) = path.parent() {
            super::durable::sync_dir(dir).map_err(err)?;
        }
    }
    Ok(())
}

fn ends_mid_line(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Writes the de-duplication state ([`SEEN_FILE`]) atomically: temporary
/// file, fsync, rename, directory fsync.
pub fn write_seen<T: Serialize>(data_dir: &Path, seen: &T) -> Result<(), EventsError> {
    let path = data_dir.join(SEEN_FILE);
    let err = |source| EventsError::Write {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        super::durable::create_dir_all_synced(dir, data_dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(seen).map_err(|e| err(e.into()))?;
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(&text).map_err(err)?;
    file.sync_all().map_err(err)?;
    super::durable::rename_synced(&tmp, &path).map_err(err)
}

/// Reads the de-duplication state; `Ok(None)` when there is none yet.
pub fn read_seen<T: serde::de::DeserializeOwned>(
    data_dir: &Path,
) -> Result<Option<T>, EventsError> {
    let path = data_dir.join(SEEN_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EventsError::Read { path, source }),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| EventsError::Read {
            path,
            source: e.into(),
        })
}

/// Events read from files, and how many lines could not be parsed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EventsRead {
    pub events: Vec<PodEvent>,
    pub skipped_lines: usize,
}

/// Reads the events with `from <= time <= to`, opening only the day files of
/// that range. Missing files are empty days; unparsable lines are skipped.
pub fn read_range(
    data_dir: &Path,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<EventsRead, EventsError> {
    let mut out = EventsRead::default();
    let mut day = from.date_naive();
    while day <= to.date_naive() {
        let path = events_file(data_dir, day);
        match std::fs::File::open(&path) {
            Ok(file) => {
                let mut reader = std::io::BufReader::new(file);
                let mut buf = Vec::new();
                loop {
                    // A corrupt file may hold one endless line: never hold more than a line's limit.
                    let read = super::bounds::read_line_at_most(
                        &mut reader,
                        super::bounds::MAX_EVENT_LINE_BYTES,
                        &mut buf,
                    )
                    .map_err(|source| EventsError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    match read {
                        super::bounds::Line::End => break,
                        super::bounds::Line::TooLong => {
                            out.skipped_lines += 1;
                            continue;
                        }
                        super::bounds::Line::Read => {}
                    }
                    let Ok(line) = std::str::from_utf8(&buf) else {
                        out.skipped_lines += 1;
                        continue;
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<PodEvent>(line) {
                        Ok(e) if e.time >= from && e.time <= to => out.events.push(e),
                        Ok(_) => {}
                        Err(_) => out.skipped_lines += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(EventsError::Read { path, source }),
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out.events.sort_by_key(|e| e.time);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(time: DateTime<Utc>, kind: EventKind) -> PodEvent {
        PodEvent {
            time,
            kind,
            namespace: "default".into(),
            pod: "web-0".into(),
            pod_uid: Some("uid-1".into()),
            container: "app".into(),
            container_id: Some("abc123def456".into()),
            restart_count: 1,
            reason: Some("OOMKilled".into()),
            exit_code: Some(137),
            message: None,
        }
    }

    #[test]
    fn append_and_read_across_days_skipping_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let late = Utc.with_ymd_and_hms(2025, 12, 30, 23, 59, 59).unwrap();
        let early = Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 1).unwrap();
        append(
            dir.path(),
            &[
                event(late, EventKind::OomKilled),
                event(early, EventKind::Restart),
            ],
        )
        .unwrap();
        // A crash mid-line leaves a torn line behind.
        let torn = events_file(dir.path(), early.date_naive());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&torn)
            .unwrap();
        f.write_all(b"{\"time\": \"2025-12-31T00:00:02Z\", \"ki")
            .unwrap();
        let after = Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 3).unwrap();
        append(dir.path(), &[event(after, EventKind::CrashLoopBackOff)]).unwrap();
        let read = read_range(dir.path(), late, after).unwrap();
        assert_eq!(read.events.len(), 3, "the line after a torn one survives");
        assert_eq!(read.events[0].kind, EventKind::OomKilled);
        assert_eq!(read.skipped_lines, 1);
        let only_first = read_range(dir.path(), late, late).unwrap();
        assert_eq!(only_first.events.len(), 1);
        assert_eq!(
            parse_events_file_name("events-2025-12-31.jsonl"),
            Some(early.date_naive())
        );
    }
}
