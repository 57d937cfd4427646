//! Hour summaries: the footer summaries of a node's files of one closed hour,
//! joined once by the agent into one small file beside them, so the overview
//! of a week joins 168 of them instead of 6,720 footers.
//!
//! ```text
//! <data>/dt=YYYY-MM-DD/identifier=<node>/hour-YYYYMMDDTHH0000Z.summary.json
//! {"format": 1, "node": "…", "hour": "…", "files": ["metrics-….parquet", …],
//!  "summary": "<the joined summaries, encoded as a footer's fgm.summary.v1 value>"}
//! ```
//!
//! Derived data, never the only copy: a reader uses one only when its
//! `files` are exactly the hour's files it lists (a file written late into
//! the hour, or one retention removed, makes it stale and the reader joins the
//! footers as before); one of a newer `format`, or one that does not parse,
//! is passed over the same way. The agent writes them again when stale; they
//! are not exported (the bucket has its own hourly summaries).

use std::path::{Path, PathBuf};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::layout::{self, DataFile, Listing};
use super::reader::{self, ReadError};
use super::summary::{FileSummary, codec, join_into};

/// The layout written; a reader passes over higher ones.
pub const FORMAT: u32 = 1;
/// Largest hour summary read (about 1 KB per container: 10,000 containers).
const MAX_BYTES: u64 = 16 << 20;

/// One hour summary file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourSummary {
    pub format: u32,
    pub node: String,
    pub hour: DateTime<Utc>,
    /// Names of the data files joined, in time order.
    pub files: Vec<String>,
    /// [`codec`]'s encoding of the joined summaries (slots [`codec::SLOT_MS`] wide).
    pub summary: String,
}

impl HourSummary {
    /// Whether this summary covers exactly `files` (the hour's files a reader listed).
    pub fn covers(&self, files: &[DataFile]) -> bool {
        self.files.len() == files.len()
            && self
                .files
                .iter()
                .zip(files)
                .all(|(name, f)| f.path.file_name().is_some_and(|n| n == name.as_str()))
    }
}

/// Why an hour summary could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum HourError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write hour summary {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The start of the hour `t` lies in.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// The hour summary at `path`; `None` when there is none, or it is not one
/// this build reads (damaged, too large, a newer format): the caller joins
/// the footers instead.
pub fn read(path: &Path) -> Option<HourSummary> {
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > MAX_BYTES {
        return None;
    }
    let summary: HourSummary = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
    (summary.format <= FORMAT).then_some(summary)
}

/// Joins the footer summaries of `files` (one node's files of one hour, in
/// time order). `None` when a file has no summary in its footer (written
/// before summaries): such an hour gets no hour summary.
pub fn build(
    node: &str,
    hour: DateTime<Utc>,
    files: &[DataFile],
) -> Result<Option<HourSummary>, ReadError> {
    let mut joined = FileSummary::default();
    let mut names = Vec::with_capacity(files.len());
    for f in files {
        let Some(summary) = reader::read_footer_summary(&f.path)? else {
            return Ok(None);
        };
        join_into(&mut joined.containers, &summary.containers, codec::SLOT_MS);
        joined.span = match (joined.span, summary.span) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        names.push(
            f.path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        );
    }
    Ok(Some(HourSummary {
        format: FORMAT,
        node: node.to_string(),
        hour,
        files: names,
        summary: codec::encode(&joined),
    }))
}

/// Writes `summary` atomically (temporary name, fsync, rename); returns its path.
pub fn write(data_dir: &Path, summary: &HourSummary) -> Result<PathBuf, HourError> {
    let path = layout::hour_summary_path(data_dir, &summary.node, summary.hour);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".inprogress");
    let tmp = PathBuf::from(tmp);
    let fail = |source| HourError::Write {
        path: path.clone(),
        source,
    };
    let result = (|| {
        let bytes = serde_json::to_vec(summary).map_err(std::io::Error::other)?;
        let file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut &file, &bytes)?;
        file.sync_all()?;
        super::durable::rename_synced(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(path)
}

/// `node`'s files in `listing` grouped by hour, in time order.
pub fn files_by_hour<'a>(listing: &'a Listing, node: &str) -> Vec<(DateTime<Utc>, &'a [DataFile])> {
    let mut out: Vec<(DateTime<Utc>, &[DataFile])> = Vec::new();
    let mine = {
        let first = listing.files.partition_point(|f| f.node.as_str() < node);
        let end = listing.files.partition_point(|f| f.node.as_str() <= node);
        &listing.files[first..end]
    };
    let mut i = 0;
    while i < mine.len() {
        let hour = hour_of(mine[i].start);
        let end = i + mine[i..].partition_point(|f| hour_of(f.start) == hour);
        out.push((hour, &mine[i..end]));
        i = end;
    }
    out
}

/// The closed hours of `node` (every hour before its newest file's) whose
/// summary is missing or stale, newest first.
pub fn stale_hours(listing: &Listing, node: &str) -> Vec<DateTime<Utc>> {
    let hours = files_by_hour(listing, node);
    let Some((_open, closed)) = hours.split_last() else {
        return Vec::new();
    };
    let mut out: Vec<DateTime<Utc>> = closed
        .iter()
        .filter(|(hour, files)| {
            let has = listing
                .hours
                .iter()
                .find(|h| h.node == node && h.start == *hour);
            has.and_then(|h| read(&h.path))
                .is_none_or(|summary| !summary.covers(files))
        })
        .map(|(hour, _)| *hour)
        .collect();
    out.reverse();
    out
}

/// Builds and writes the summary of `node`'s hour starting at `hour` from
/// the files listed now; `None` when the hour has no file or a file
/// without a footer summary.
pub fn summarise_hour(
    data_dir: &Path,
    node: &str,
    hour: DateTime<Utc>,
) -> Result<Option<PathBuf>, HourError> {
    let day = hour.date_naive();
    let listing =
        layout::list_data_files(data_dir, Some((day, day))).map_err(|source| HourError::Write {
            path: layout::node_day_dir(data_dir, day, node),
            source,
        })?;
    summarise_listed(data_dir, node, hour, &listing)
}

/// [`summarise_hour`] from a listing already made.
fn summarise_listed(
    data_dir: &Path,
    node: &str,
    hour: DateTime<Utc>,
    listing: &Listing,
) -> Result<Option<PathBuf>, HourError> {
    let Some((_, files)) = files_by_hour(listing, node)
        .into_iter()
        .find(|(h, _)| *h == hour)
    else {
        return Ok(None);
    };
    match build(node, hour, files)? {
        Some(summary) => write(data_dir, &summary).map(Some),
        None => Ok(None),
    }
}

/// Writes every missing or stale summary of `node`'s closed hours (what the
/// agent catches up on a few at a time; benchmarks and tools at once), from
/// one listing of the tree.
pub fn summarise_all(data_dir: &Path, node: &str) -> Result<usize, HourError> {
    let listing = layout::list_data_files(data_dir, None).map_err(|source| HourError::Write {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let mut written = 0;
    for hour in stale_hours(&listing, node) {
        if summarise_listed(data_dir, node, hour, &listing)?.is_some() {
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
#[path = "hours/tests.rs"]
mod tests;
