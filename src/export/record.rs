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
//! The record files are an artefact kind of the agent's retention
//! ([`UploadRecords`]): counted in the budget, kept while the day's data or
//! events are on the node, removed with the rest once they are gone, so the
//! record never outgrows the data directory.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::store::retention::{Artefact, ArtefactKind};
use crate::store::{events, layout};

pub const RECORD_DIR: &str = "export";
/// The artefact kind's name (`kind` label of `fgm_agent_data_dir_bytes`).
pub const ARTEFACT_KIND: &str = "upload_records";
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
    /// `data_dir`, and forgets the days whose record retention removed;
    /// returns the files removed.
    pub fn prune(&mut self, data_dir: &Path) -> Vec<PathBuf> {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let mut kept = std::collections::HashSet::new();
        for entry in listing.flatten() {
            let Some(day) = parse_record_name(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            if !day_on_node(data_dir, day) && std::fs::remove_file(entry.path()).is_ok() {
                removed.push(entry.path());
            } else {
                kept.insert(day);
            }
        }
        // Memory follows the files: a day without a record file is forgotten.
        self.entries.retain(|_, (d, _)| kept.contains(d));
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

/// Whether the data or events of `day` are still in `data_dir`.
fn day_on_node(data_dir: &Path, day: NaiveDate) -> bool {
    data_dir.join(layout::day_dir_name(day)).exists() || events::events_file(data_dir, day).exists()
}

/// The upload record files as an artefact kind of the agent's retention:
/// counted in the budget, protected while the day they describe is on the
/// node (removing one then would make its files look unsent), removable once
/// that day is gone.
#[derive(Debug)]
pub struct UploadRecords;

impl ArtefactKind for UploadRecords {
    fn name(&self) -> &'static str {
        ARTEFACT_KIND
    }

    fn list(
        &self,
        data_dir: &Path,
        _node: &str,
        _now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        let dir = data_dir.join(RECORD_DIR);
        let listing = match std::fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in listing.flatten() {
            let Some(day) = parse_record_name(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let (Some(start), Some(next)) = (day.and_hms_opt(0, 0, 0), day.succ_opt()) else {
                continue;
            };
            let Some(next) = next.and_hms_opt(0, 0, 0) else {
                continue;
            };
            // Vanished meanwhile: nothing to count.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            out.push(Artefact {
                path: entry.path(),
                kind: ARTEFACT_KIND,
                start: start.and_utc(),
                end: next.and_utc() - chrono::Duration::milliseconds(1),
                bytes: meta.len(),
                protected: day_on_node(data_dir, day),
            });
        }
        Ok(out)
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
mod tests;
