//! The artefact kinds the agent itself writes.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Artefact, ArtefactKind, Kinds};
use crate::store::{events, layout, lock};

pub const DATA: &str = "parquet";
pub const TAIL: &str = "tail";
pub const EVENTS: &str = "events";
pub const STATE: &str = "state";
pub const HOURS: &str = "hour_summaries";

/// Parquet, tails, the other datasets, events, state: what every agent registers.
pub fn default_kinds() -> Kinds {
    vec![
        Arc::new(DataFiles),
        Arc::new(TailFiles),
        Arc::new(DatasetFiles(layout::Dataset::Network)),
        Arc::new(DatasetFiles(layout::Dataset::Devices)),
        Arc::new(HourSummaryFiles),
        Arc::new(EventDays),
        Arc::new(StateFiles),
    ]
}

fn bytes_of(path: &Path) -> std::io::Result<u64> {
    std::fs::metadata(path).map(|m| m.len())
}

/// `node`'s `files` as artefacts of `kind`, each covering `span` from its start; a file that
/// vanished meanwhile is not counted.
fn artefacts(
    files: impl IntoIterator<Item = layout::DataFile>,
    node: &str,
    kind: &'static str,
    span: chrono::TimeDelta,
    protected: bool,
) -> Vec<Artefact> {
    files
        .into_iter()
        .filter(|f| f.node == node)
        .filter_map(|f| {
            Some(Artefact {
                bytes: bytes_of(&f.path).ok()?,
                path: f.path,
                kind,
                start: f.start,
                end: f.start + span,
                protected,
            })
        })
        .collect()
}

/// This node's finished data files; the newest is protected (the file being
/// written is never listed: it has no `.parquet` name yet).
#[derive(Debug)]
pub struct DataFiles;

impl ArtefactKind for DataFiles {
    fn name(&self) -> &'static str {
        DATA
    }

    fn list(
        &self,
        data_dir: &Path,
        node: &str,
        now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        let listing = layout::list_data_files(data_dir, None)?;
        let mut out = Vec::new();
        for file in listing.files.into_iter().filter(|f| f.node == node) {
            // Vanished meanwhile: not ours to count any more.
            let Ok(bytes) = bytes_of(&file.path) else {
                continue;
            };
            out.push(Artefact {
                path: file.path,
                kind: DATA,
                start: file.start,
                end: file.start,
                bytes,
                protected: false,
            });
        }
        // The newest one that is not in the future stays, so "the data
        // written last" is never what retention removes.
        if let Some(newest) = out
            .iter_mut()
            .filter(|a| a.start <= now)
            .max_by_key(|a| a.start)
        {
            newest.protected = true;
        }
        Ok(out)
    }
}

/// A per-node dataset's files beside the metrics files (the network
/// interfaces): removed by the same age and size rules; the newest stays.
#[derive(Debug)]
pub struct DatasetFiles(pub layout::Dataset);

impl ArtefactKind for DatasetFiles {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn list(
        &self,
        data_dir: &Path,
        node: &str,
        now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        let listing = layout::list_data_files(data_dir, None)?;
        let mine = listing
            .datasets
            .into_iter()
            .filter(|(d, _)| *d == self.0)
            .map(|(_, f)| f);
        let mut out = artefacts(mine, node, self.0.name(), chrono::TimeDelta::zero(), false);
        if let Some(newest) = out
            .iter_mut()
            .filter(|a| a.start <= now)
            .max_by_key(|a| a.start)
        {
            newest.protected = true;
        }
        Ok(out)
    }
}

/// This node's hour summaries: derived from the data files of their hour
/// and dated by it, so they age out with them (a summary whose files are
/// partly gone is stale and unused until then).
#[derive(Debug)]
pub struct HourSummaryFiles;

impl ArtefactKind for HourSummaryFiles {
    fn name(&self) -> &'static str {
        HOURS
    }

    fn list(
        &self,
        data_dir: &Path,
        node: &str,
        _now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        let listing = layout::list_data_files(data_dir, None)?;
        Ok(artefacts(
            listing.hours,
            node,
            HOURS,
            chrono::TimeDelta::hours(1),
            false,
        ))
    }
}

/// Tails of intervals not written as data files yet (the open one, one the
/// disk refused): counted in the budget, never removed by retention (the
/// recorder removes each once its data file is published).
#[derive(Debug)]
pub struct TailFiles;

impl ArtefactKind for TailFiles {
    fn name(&self) -> &'static str {
        TAIL
    }

    fn list(
        &self,
        data_dir: &Path,
        node: &str,
        _now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        let listing = layout::list_data_files(data_dir, None)?;
        let tails = listing.tails.into_iter().chain(listing.superseded);
        Ok(artefacts(
            tails,
            node,
            TAIL,
            chrono::TimeDelta::zero(),
            true,
        ))
    }
}

/// Pod event day files (`events/events-YYYY-MM-DD.jsonl`); today's is protected.
#[derive(Debug)]
pub struct EventDays;

impl ArtefactKind for EventDays {
    fn name(&self) -> &'static str {
        EVENTS
    }

    fn list(
        &self,
        data_dir: &Path,
        _node: &str,
        now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        let dir = events::events_dir(data_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(day) = events::parse_events_file_name(&name.to_string_lossy()) else {
                continue;
            };
            let (Some(start), Some(next)) = (day.and_hms_opt(0, 0, 0), day.succ_opt()) else {
                continue;
            };
            let Some(next) = next.and_hms_opt(0, 0, 0) else {
                continue;
            };
            let Ok(bytes) = bytes_of(&entry.path()) else {
                continue;
            };
            out.push(Artefact {
                path: entry.path(),
                kind: EVENTS,
                start: start.and_utc(),
                end: next.and_utc() - chrono::Duration::milliseconds(1),
                bytes,
                protected: day == now.date_naive(),
            });
        }
        Ok(out)
    }
}

/// The small files a data directory always has: index, lock, the events
/// de-duplication state, a corrupt index moved aside. Counted, never removed
/// (each is one file, rewritten in place).
#[derive(Debug)]
pub struct StateFiles;

/// Names of the state files, relative to the data directory.
pub const STATE_FILES: [&str; 5] = [
    layout::INDEX_FILE,
    "index.json.tmp",
    "index.json.corrupt",
    lock::LOCK_FILE,
    events::SEEN_FILE,
];

impl ArtefactKind for StateFiles {
    fn name(&self) -> &'static str {
        STATE
    }

    fn list(
        &self,
        data_dir: &Path,
        _node: &str,
        now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>> {
        Ok(STATE_FILES
            .iter()
            .filter_map(|name| {
                let path = data_dir.join(name);
                let bytes = bytes_of(&path).ok()?;
                Some(Artefact {
                    path,
                    kind: STATE,
                    start: now,
                    end: now,
                    bytes,
                    protected: true,
                })
            })
            .collect())
    }
}
