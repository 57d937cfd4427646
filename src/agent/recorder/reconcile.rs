//! Start-up: make index.json match the files on disk, whatever a crash, a
//! clock step or a hand left behind. Reads file names and the newest file's
//! timestamps only, so its cost does not grow with days of history.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::index::Index;
use crate::store::{layout, reader, schema};

/// How many of the newest files are tried for the last sample when the
/// newest ones are unreadable.
const NEWEST_TRIED: usize = 3;

/// What reconciling changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub files: usize,
    /// The index's range was corrected.
    pub changed: bool,
    /// Files dated after now + tolerance (left for retention to remove).
    pub future: usize,
    /// Unreadable newest files skipped, with why.
    pub unreadable: Vec<String>,
}

/// Sets `index.data_range` from `node`'s files: earliest = oldest file's
/// start, latest = the newest readable file's last sample. Future-dated
/// files (after `now + tolerance`) are left out of both.
pub fn reconcile(
    index: &mut Index,
    data_dir: &Path,
    node: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Reconciled {
    let mut out = Reconciled::default();
    let horizon = now + chrono::Duration::from_std(tolerance).unwrap_or_default();
    let Ok(listing) = layout::list_data_files(data_dir, None) else {
        return out;
    };
    let mut starts: Vec<(DateTime<Utc>, std::path::PathBuf)> = Vec::new();
    for f in listing.files.into_iter().filter(|f| f.node == node) {
        if f.start > horizon {
            out.future += 1;
        } else {
            starts.push((f.start, f.path));
        }
    }
    starts.sort();
    out.files = starts.len();
    let earliest = starts.first().map(|(t, _)| *t);
    let mut latest = None;
    for (start, path) in starts.iter().rev().take(NEWEST_TRIED) {
        match last_sample(path) {
            Ok(Some(last)) => {
                latest = Some(last.max(*start));
                break;
            }
            Ok(None) => {}
            Err(e) => out.unreadable.push(e),
        }
    }
    let range = &mut index.data_range;
    if range.earliest != earliest || range.latest != latest {
        out.changed = true;
        range.earliest = earliest;
        range.latest = latest;
    }
    out
}

/// The newest timestamp in a data file.
fn last_sample(path: &Path) -> Result<Option<DateTime<Utc>>, String> {
    use arrow_array::{Array, TimestampMillisecondArray};
    let batches = reader::read_file(path, Some(&[schema::TIMESTAMP])).map_err(|e| e.to_string())?;
    let mut last: Option<i64> = None;
    for batch in batches {
        let Some(ts) = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
        else {
            return Err(format!(
                "{}: timestamp column of an unexpected type",
                path.display()
            ));
        };
        for i in 0..ts.len() {
            if !ts.is_null(i) {
                last = Some(last.map_or(ts.value(i), |l| l.max(ts.value(i))));
            }
        }
    }
    Ok(last.and_then(DateTime::from_timestamp_millis))
}

/// Logs what in the data directory is not ours; it is left alone.
pub fn report_foreign(data_dir: &Path) {
    if let Ok(listing) = layout::list_data_files(data_dir, None) {
        for entry in listing.foreign {
            tracing::warn!(path = %entry.path.display(), reason = entry.reason, "foreign entry in the data directory; left alone");
        }
    }
}

/// Removes `.parquet.inprogress` files of this node: a crash leaves at most
/// one, and it can never be completed. Only ever called with the data
/// directory's lock held, so no other agent is writing it.
pub fn remove_stale_in_progress(data_dir: &Path, node: &str) {
    let Ok(days) = std::fs::read_dir(data_dir) else {
        return;
    };
    for day in days.flatten() {
        let node_dir = day.path().join(layout::node_dir_name(node));
        let Ok(files) = std::fs::read_dir(&node_dir) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(layout::IN_PROGRESS_SUFFIX)
                || name.ends_with(layout::HOUR_IN_PROGRESS_SUFFIX)
            {
                tracing::info!(path = %file.path().display(), "removing a partial file left by a crash");
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
}
