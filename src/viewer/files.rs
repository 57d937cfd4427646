//! The one read loop every data answer goes through (charts, overview,
//! studies, downloads): the files of a range, the open intervals' tails among
//! them, read on a few threads and used in file order, with the files that
//! could not be read reported once and named in the answer.
//!
//! ```text
//!  files_for_range ─▶ [Parquet files..., tail] ─▶ for_each_file(read, use) ─▶ skipped files
//!                                                   │ Parquet: reader (cached per chart)
//!                                                   └ tail: the follower of that file (only what is new)
//! ```
//!
//! A tail may be published and removed between the listing and its read: it
//! is then read from its Parquet file, which is renamed in before the tail
//! goes, so a sample is never missed nor read twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::state::{Viewer, guarded, lock};
use crate::store::layout::{self, DataFile, FileKind};
use crate::store::reader::{self, MetricColumns, ReadError};
use crate::store::schema;
use crate::store::tail::{TailError, TailFollower};

/// A file of the range that could not be read, as every answer names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    /// Relative to the data directory.
    pub path: String,
    pub error: String,
}

/// Followers of the open intervals' tails, by path.
#[derive(Debug, Default)]
pub struct Tails {
    followers: Mutex<HashMap<PathBuf, Arc<Mutex<TailFollower>>>>,
}

impl Tails {
    fn follower(&self, path: &Path) -> Arc<Mutex<TailFollower>> {
        lock(&self.followers)
            .entry(path.to_path_buf())
            .or_default()
            .clone()
    }

    /// Forgets the followers of tails no longer listed (published, removed).
    fn keep_only(&self, listed: &[&Path]) {
        lock(&self.followers).retain(|p, _| listed.contains(&p.as_path()));
    }

    fn forget(&self, path: &Path) {
        lock(&self.followers).remove(path);
    }

    /// Tails followed now (for tests and the status).
    pub fn len(&self) -> usize {
        lock(&self.followers).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Viewer {
    /// The files that may hold samples in `[from, to]`, tails of open
    /// intervals included, sorted by (node, start). A missing data directory
    /// has none.
    pub fn files_for_range(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> std::io::Result<Vec<DataFile>> {
        let files = match layout::files_for_range(&self.opts.data_dir, from, to) {
            Ok(listing) => listing.files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        // Tails outside this range are kept: another request may be reading them.
        if to >= Utc::now() - chrono::Duration::minutes(1) {
            let listed: Vec<&Path> = files
                .iter()
                .filter(|f| f.kind == FileKind::Tail)
                .map(|f| f.path.as_path())
                .collect();
            self.tails.keep_only(&listed);
        }
        Ok(files)
    }

    /// `metrics` of every container of one file: a Parquet file, or a tail
    /// (only the frames appended since the last read are decoded).
    pub fn read_columns(
        &self,
        file: &DataFile,
        metrics: &[&str],
    ) -> Result<MetricColumns, ReadError> {
        match file.kind {
            FileKind::Parquet => guarded(&file.path, || reader::read_metrics(&file.path, metrics)),
            FileKind::Tail => self.read_tail(&file.path, metrics),
        }
    }

    /// The open intervals' span: the oldest tail's first sample and the
    /// newest sample of any (reading only what was appended since the last
    /// look). `None` without a tail.
    pub fn live_span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let today = Utc::now().date_naive();
        let days = (
            today.pred_opt().unwrap_or(today),
            today.succ_opt().unwrap_or(today),
        );
        let listing = layout::list_data_files(&self.opts.data_dir, Some(days)).ok()?;
        let mut span: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
        for tail in &listing.tails {
            let follower = self.tails.follower(&tail.path);
            let mut follower = lock(&follower);
            if follower.refresh(&tail.path).is_err() {
                continue;
            }
            if let Some((first, last)) = follower.rows().span() {
                span = Some(match span {
                    Some((a, b)) => (a.min(first), b.max(last)),
                    None => (first, last),
                });
            }
        }
        span
    }

    fn read_tail(&self, path: &Path, metrics: &[&str]) -> Result<MetricColumns, ReadError> {
        let follower = self.tails.follower(path);
        let mut follower = lock(&follower);
        match follower.refresh(path) {
            Ok(_) => {}
            Err(TailError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                // Published since it was listed: its data file holds the same rows.
                drop(follower);
                self.tails.forget(path);
                let published = path.with_extension(&layout::DATA_SUFFIX[1..]);
                return guarded(&published, || reader::read_metrics(&published, metrics));
            }
            Err(e) => {
                return Err(ReadError::Layout {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        }
        let indexes: Vec<usize> = metrics
            .iter()
            .map(|m| schema::metric_index(m).unwrap_or(usize::MAX))
            .collect();
        let mut columns = follower
            .rows()
            .columns(&indexes)
            .map_err(|e| ReadError::Layout {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        for (present, index) in columns.present.iter_mut().zip(&indexes) {
            *present = *index != usize::MAX;
        }
        Ok(columns)
    }
}

/// What the read loop goes over: a data file, or a group of them named by its first.
pub trait Located {
    fn path(&self) -> &Path;
}

impl Located for DataFile {
    fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every file (or group) with `read` on the viewer's worker threads
/// (at most `window` per worker ahead of `consume`) and hands each result to
/// `consume` in order. A file that cannot be read (or whose reader panics) is
/// reported once to the viewer's list of unreadable files and returned.
pub fn for_each_file<T: Located + Sync, R: Send>(
    viewer: &Viewer,
    files: &[T],
    window: usize,
    read: impl Fn(&T) -> Result<R, ReadError> + Sync,
    mut consume: impl FnMut(&T, R),
) -> Vec<SkippedFile> {
    let mut skipped = Vec::new();
    let workers = super::parallel::workers();
    super::parallel::for_each_ordered(
        files,
        workers,
        workers * window,
        read,
        |f| {
            Err(ReadError::Layout {
                path: f.path().to_path_buf(),
                message: "reader thread panicked".into(),
            })
        },
        |file, result| match result {
            Ok(r) => consume(file, r),
            Err(e) => {
                viewer.report_corrupt(file.path(), &e);
                skipped.push(SkippedFile {
                    path: viewer.relative(file.path()),
                    error: e.to_string(),
                });
            }
        },
    );
    skipped
}
