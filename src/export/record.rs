//! The durable record of what is uploaded, so a restart uploads nothing twice:
//!
//! ```text
//! <data>/export/uploaded-YYYY-MM-DD.jsonl   one line per upload of a file of that day
//! ```
//!
//! A line is appended with one `write` and synced before the upload counts as
//! done. A file uploaded again (a day's events file that grew) gets a new
//! line; the last line wins. A torn line (crash mid-write) is skipped and
//! counted: the upload it stood for is checked with a HEAD and not repeated.
//! A day's record goes when the day's data and events are gone from the node
//! (retention), so the record never outgrows the data directory.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{events, layout};

pub const RECORD_DIR: &str = "export";
const RECORD_PREFIX: &str = "uploaded-";
const RECORD_SUFFIX: &str = ".jsonl";

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The local file, relative to the data directory.
    pub file: String,
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
    pub at: DateTime<Utc>,
}

/// What is uploaded, loaded from the record files.
#[derive(Debug, Default)]
pub struct Record {
    dir: PathBuf,
    entries: HashMap<String, (NaiveDate, Entry)>,
    /// Lines that could not be read when loading.
    pub skipped_lines: usize,
}

/// Why the record could not be written, with the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write upload record {path}: {source}")]
pub struct RecordError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn record_file(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!(
        "{RECORD_PREFIX}{}{RECORD_SUFFIX}",
        day.format("%Y-%m-%d")
    ))
}

fn parse_record_name(name: &str) -> Option<NaiveDate> {
    let day = name
        .strip_prefix(RECORD_PREFIX)?
        .strip_suffix(RECORD_SUFFIX)?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

impl Record {
    /// Loads every record file of `data_dir` (none yet: an empty record).
    pub fn load(data_dir: &Path) -> Self {
        let dir = data_dir.join(RECORD_DIR);
        let mut record = Record {
            dir: dir.clone(),
            ..Record::default()
        };
        let Ok(listing) = std::fs::read_dir(&dir) else {
            return record;
        };
        let mut days: Vec<(NaiveDate, PathBuf)> = listing
            .flatten()
            .filter_map(|e| {
                parse_record_name(&e.file_name().to_string_lossy()).map(|d| (d, e.path()))
            })
            .collect();
        days.sort();
        for (day, path) in days {
            let Ok(text) = std::fs::read_to_string(&path) else {
                record.skipped_lines += 1;
                continue;
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Entry>(line) {
                    Ok(entry) => {
                        record.entries.insert(entry.file.clone(), (day, entry));
                    }
                    Err(_) => record.skipped_lines += 1,
                }
            }
        }
        record
    }

    /// The last upload of `file` (relative to the data directory).
    pub fn get(&self, file: &str) -> Option<&Entry> {
        self.entries.get(file).map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Time of the newest upload recorded.
    pub fn last_upload(&self) -> Option<DateTime<Utc>> {
        self.entries.values().map(|(_, e)| e.at).max()
    }

    /// Removes the record of every day whose data and events are gone from
    /// `data_dir`; returns the files removed.
    pub fn prune(&mut self, data_dir: &Path) -> Vec<PathBuf> {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in listing.flatten() {
            let Some(day) = parse_record_name(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let data_left = data_dir.join(layout::day_dir_name(day)).exists();
            let events_left = events::events_file(data_dir, day).exists();
            if !data_left && !events_left && std::fs::remove_file(entry.path()).is_ok() {
                self.entries.retain(|_, (d, _)| *d != day);
                removed.push(entry.path());
            }
        }
        removed
    }

    /// Appends `entry` to the record of `day` and syncs it.
    pub fn append(&mut self, day: NaiveDate, entry: Entry) -> Result<(), RecordError> {
        write_line(&self.dir, day, &entry)?;
        self.insert(day, entry);
        Ok(())
    }

    /// Where the record files are (for [`write_line`] off the async thread).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes `entry` as recorded (after [`write_line`] wrote it, or failed to:
    /// then a restart checks the object with a HEAD instead).
    pub fn insert(&mut self, day: NaiveDate, entry: Entry) {
        self.entries.insert(entry.file.clone(), (day, entry));
    }
}

/// Appends `entry` as one line (one `write`) to the record file of `day` in
/// `dir` and syncs it; a new file's directory entry is synced too.
pub fn write_line(dir: &Path, day: NaiveDate, entry: &Entry) -> Result<(), RecordError> {
    let path = record_file(dir, day);
    let err = |source| RecordError {
        path: path.clone(),
        source,
    };
    let new_file = !path.exists();
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut line = serde_json::to_vec(entry).map_err(|e| err(e.into()))?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(err)?;
    file.write_all(&line).map_err(err)?;
    file.sync_data().map_err(err)?;
    if new_file {
        // The new name must survive a crash too.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(file: &str, bytes: u64) -> Entry {
        Entry {
            file: file.into(),
            key: format!("p/{file}"),
            bytes,
            sha256: "00".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn survives_reload_last_line_wins_torn_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let mut r = Record::load(dir.path());
        assert!(r.is_empty());
        r.append(day, entry("dt=2026-01-02/identifier=n/a.parquet", 10))
            .unwrap();
        r.append(day, entry("events/events-2026-01-02.jsonl", 5))
            .unwrap();
        r.append(day, entry("events/events-2026-01-02.jsonl", 9))
            .unwrap();
        // A crash mid-append leaves a torn last line.
        let path = record_file(&dir.path().join(RECORD_DIR), day);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"file\":\"dt=2026-01-02/ident").unwrap();
        let r = Record::load(dir.path());
        assert_eq!(r.len(), 2);
        assert_eq!(r.skipped_lines, 1);
        assert_eq!(r.get("events/events-2026-01-02.jsonl").unwrap().bytes, 9);
        assert!(r.get("dt=2026-01-02/identifier=n/a.parquet").is_some());
        assert!(r.last_upload().is_some());
    }

    #[test]
    fn a_day_is_forgotten_once_its_data_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let d1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        std::fs::create_dir_all(dir.path().join("dt=2026-01-02")).unwrap();
        let mut r = Record::load(dir.path());
        r.append(d1, entry("dt=2026-01-01/identifier=n/a.parquet", 1))
            .unwrap();
        r.append(d2, entry("dt=2026-01-02/identifier=n/b.parquet", 1))
            .unwrap();
        let removed = r.prune(dir.path());
        assert_eq!(removed.len(), 1);
        assert!(r.get("dt=2026-01-01/identifier=n/a.parquet").is_none());
        assert!(r.get("dt=2026-01-02/identifier=n/b.parquet").is_some());
        assert_eq!(Record::load(dir.path()).len(), 1);
    }
}
