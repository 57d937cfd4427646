//! What the viewer knows about its data directory, refreshed by a poll: the
//! index (or one rebuilt from the files when there is none), the metric
//! columns of the newest file, the files found unreadable, and a cache of
//! decoded metric columns. Everything here reads; nothing writes the data
//! directory.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};

use super::Options;
use super::cache::{Cache, Eviction};
use super::chart::{self, ChartColumns};
use super::overview::summary::FileSummary;
use crate::store::index::{ContainerEntry, Index};
use crate::store::layout::{self, DataFile};
use crate::store::reader::{self, ReadError};
use crate::store::schema::{self, ColumnInfo};

/// Where the current index came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing yet: no index and no data files.
    Nothing,
    /// `index.json`, identified by its file identity so a rename is noticed.
    IndexFile { stamp: (SystemTime, u64, u64) },
    /// Rebuilt from data files because there is no usable index.
    Rebuilt { files: usize, newest: PathBuf },
}

/// One consistent view of the data directory.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub source: Source,
    pub index: Option<Index>,
    pub metrics: Vec<ColumnInfo>,
    /// The file the metric list was read from (`None`: built-in schema).
    pub metrics_from: Option<PathBuf>,
    /// Why the index file could not be used, when it could not.
    pub index_error: Option<String>,
}

impl Snapshot {
    fn nothing() -> Self {
        Self {
            source: Source::Nothing,
            index: None,
            metrics: builtin_metrics(),
            metrics_from: None,
            index_error: None,
        }
    }
}

fn builtin_metrics() -> Vec<ColumnInfo> {
    schema::metric_columns(&schema::arrow_schema())
}

/// Shared state behind every request.
pub struct Viewer {
    pub opts: Options,
    pub started: Instant,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Unreadable data files: path relative to the data directory → error.
    corrupt: Mutex<BTreeMap<String, String>>,
    cache: Mutex<Cache<(PathBuf, String), Arc<ChartColumns>>>,
    /// Per-file overview summaries, keyed by file and sparkline slot width.
    summaries: Mutex<Cache<(PathBuf, i64), Arc<FileSummary>>>,
    /// Joined summaries of a node's closed hours, keyed by (node, hour start,
    /// slot width), with the files they were made of.
    blocks: Mutex<Cache<(String, i64, i64), Arc<Block>>>,
    /// The open intervals' tails being followed.
    pub tails: super::files::Tails,
}

impl Viewer {
    pub fn new(opts: Options) -> Self {
        // Three quarters of the memory for decoded columns (charts), a quarter
        // for overview summaries.
        let cache = Cache::new(opts.cache_bytes / 4 * 3, Eviction::LeastRecentlyUsed);
        let summaries = Cache::new(opts.cache_bytes / 8, Eviction::OldestFirst);
        let blocks = Cache::new(opts.cache_bytes / 8, Eviction::OldestFirst);
        Self {
            opts,
            started: Instant::now(),
            snapshot: RwLock::new(Arc::new(Snapshot::nothing())),
            corrupt: Mutex::new(BTreeMap::new()),
            cache: Mutex::new(cache),
            summaries: Mutex::new(summaries),
            blocks: Mutex::new(blocks),
            tails: Default::default(),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_snapshot(&self, snapshot: Snapshot) {
        let mut guard = match self.snapshot.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(snapshot);
    }

    pub fn corrupt_files(&self) -> BTreeMap<String, String> {
        lock(&self.corrupt).clone()
    }

    /// Remembers (and logs once) a file that could not be read.
    pub fn report_corrupt(&self, path: &Path, error: &ReadError) {
        let rel = self.relative(path);
        if let std::collections::btree_map::Entry::Vacant(slot) = lock(&self.corrupt).entry(rel) {
            tracing::warn!(file = %slot.key(), error = %error, "skipping unreadable data file");
            slot.insert(error.to_string());
        }
    }

    /// A path as shown to users: relative to the data directory.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.opts.data_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Brings the snapshot up to date with the data directory. Cheap when
    /// nothing changed: one `stat` of index.json.
    /// A panic while refreshing (a bug, or a decoder tripping on a file) is
    /// logged and the previous snapshot kept: the viewer goes on serving.
    pub fn refresh(&self) {
        self.refresh_with(|current| self.next_snapshot(current));
    }

    /// [`Viewer::refresh`] with the step that computes the next snapshot
    /// given (so a test can make it panic).
    fn refresh_with(&self, next_snapshot: impl FnOnce(&Snapshot) -> Option<Snapshot>) {
        let current = self.snapshot();
        let next = match std::panic::catch_unwind(AssertUnwindSafe(|| next_snapshot(&current))) {
            Ok(next) => next,
            Err(panic) => {
                tracing::error!(
                    panic = panic_message(panic.as_ref()),
                    "refreshing the data directory panicked; keeping the previous state"
                );
                return;
            }
        };
        if let Some(next) = next {
            if next.source != current.source {
                match &next.source {
                    Source::IndexFile { .. } => tracing::debug!("index.json loaded"),
                    Source::Rebuilt { files, .. } => {
                        tracing::info!(
                            files,
                            "no usable index.json: index rebuilt from the data files"
                        )
                    }
                    Source::Nothing => {}
                }
            }
            self.set_snapshot(next);
        }
    }

    fn next_snapshot(&self, current: &Snapshot) -> Option<Snapshot> {
        let dir = &self.opts.data_dir;
        let index_path = layout::index_path(dir);
        let index_error = match std::fs::metadata(&index_path) {
            Ok(meta) => {
                let stamp = file_stamp(&meta);
                if current.source == (Source::IndexFile { stamp }) {
                    return None;
                }
                match Index::load(&index_path) {
                    Ok(Some(index)) => {
                        let (metrics, metrics_from) = self.metrics(current);
                        return Some(Snapshot {
                            source: Source::IndexFile { stamp },
                            index: Some(index),
                            metrics,
                            metrics_from,
                            index_error: None,
                        });
                    }
                    // Deleted between stat and read: treat as absent.
                    Ok(None) => None,
                    Err(e) => Some(e.to_string()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("cannot read {}: {e}", index_path.display())),
        };
        if let Some(error) = &index_error
            && current.index_error.as_ref() != Some(error)
        {
            tracing::warn!(%error, "index.json unusable; using the data files instead");
        }
        // No usable index: rebuild one from the files, if there are any.
        let listing = match layout::list_data_files(dir, None) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => {
                let mut s = current.clone();
                s.index_error = Some(format!("cannot list {}: {e}", dir.display()));
                return Some(s);
            }
        };
        let Some(newest) = listing.files.iter().max_by_key(|f| f.start) else {
            let mut s = Snapshot::nothing();
            s.index_error = index_error;
            return (s.source != current.source || s.index_error != current.index_error)
                .then_some(s);
        };
        let source = Source::Rebuilt {
            files: listing.files.len(),
            newest: newest.path.clone(),
        };
        if source == current.source && index_error == current.index_error {
            return None;
        }
        let index = self.rebuild_index(&listing.files);
        let (metrics, metrics_from) = self.metrics(current);
        Some(Snapshot {
            source,
            index: Some(index),
            metrics,
            metrics_from,
            index_error,
        })
    }

    /// Metric columns from the newest readable file's schema (footer only);
    /// the built-in schema while there is no file.
    fn metrics(&self, current: &Snapshot) -> (Vec<ColumnInfo>, Option<PathBuf>) {
        let candidates = layout::newest_day_files(&self.opts.data_dir).unwrap_or_default();
        for file in candidates.iter().take(16) {
            if current.metrics_from.as_ref() == Some(&file.path) {
                return (current.metrics.clone(), current.metrics_from.clone());
            }
            match guarded(&file.path, || reader::read_schema(&file.path)) {
                Ok(schema) => {
                    return (schema::metric_columns(&schema), Some(file.path.clone()));
                }
                Err(e) => self.report_corrupt(&file.path, &e),
            }
        }
        (builtin_metrics(), None)
    }

    /// An index made from the files themselves: every container seen, first
    /// and last sample, and the covered range. Held in memory only.
    fn rebuild_index(&self, files: &[DataFile]) -> Index {
        let mut index = Index::empty(Utc::now(), 0);
        for file in files {
            let spans = match guarded(&file.path, || reader::read_container_spans(&file.path)) {
                Ok(s) => s,
                Err(e) => {
                    self.report_corrupt(&file.path, &e);
                    continue;
                }
            };
            for (id, first, last) in spans {
                let (first, last) = (millis(first), millis(last));
                index.extend_range(first, last);
                let entry = index
                    .containers
                    .entry(id.clone())
                    .or_insert_with(|| ContainerEntry::seen(&id, first, last));
                entry.first_seen = entry.first_seen.min(first);
                entry.last_seen = entry.last_seen.max(last);
            }
        }
        index
    }

    /// The columns a chart of `metric` needs from one file (the metric and
    /// its limits, see [`chart::columns`]), from the cache or decoded in one
    /// pass (and cached; a tail, which grows, is read anew).
    pub fn chart_columns(
        &self,
        file: &DataFile,
        metric: &str,
    ) -> Result<Arc<ChartColumns>, ReadError> {
        let columns = chart::columns(metric);
        if file.kind == layout::FileKind::Tail {
            let read = self.read_columns(file, &columns)?;
            return Ok(Arc::new(ChartColumns::new(metric, read)));
        }
        let path = file.path.as_path();
        let key = (path.to_path_buf(), metric.to_string());
        if let Some(hit) = lock(&self.cache).get(&key) {
            return Ok(hit);
        }
        let read = guarded(path, || reader::read_metrics(path, &columns))?;
        let column = Arc::new(ChartColumns::new(metric, read));
        let size = column.heap_bytes() + key.0.as_os_str().len() + 64;
        lock(&self.cache).put(key, column.clone(), size, 0);
        Ok(column)
    }

    /// The cached overview summary of a file, if any.
    pub fn cached_summary(&self, path: &Path, slot_ms: i64) -> Option<Arc<FileSummary>> {
        lock(&self.summaries).get(&(path.to_path_buf(), slot_ms))
    }

    /// Keeps a file's overview summary; the oldest files give way first, so a
    /// range larger than the cache keeps its newest part rather than thrashing.
    pub fn keep_summary(
        &self,
        path: &Path,
        slot_ms: i64,
        start_ms: i64,
        summary: Arc<FileSummary>,
    ) {
        let size = summary.heap_bytes() + path.as_os_str().len() + 64;
        lock(&self.summaries).put((path.to_path_buf(), slot_ms), summary, size, start_ms);
    }
}

/// A closed hour's joined summary and the files it was made of (a later
/// listing with other files makes it stale).
#[derive(Debug)]
pub struct Block {
    pub files: Vec<PathBuf>,
    pub summary: Arc<FileSummary>,
}

impl Viewer {
    pub fn cached_block(&self, node: &str, hour_ms: i64, slot_ms: i64) -> Option<Arc<Block>> {
        lock(&self.blocks).get(&(node.to_string(), hour_ms, slot_ms))
    }

    pub fn keep_block(&self, node: &str, hour_ms: i64, slot_ms: i64, block: Arc<Block>) {
        let size = block.summary.heap_bytes() + block.files.len() * 96 + 64;
        lock(&self.blocks).put((node.to_string(), hour_ms, slot_ms), block, size, hour_ms);
    }
}

/// Locks `mutex`, recovering it if a thread panicked while holding it (the
/// data guarded here stays consistent between statements).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a reader on one file, turning a panic into a read error for that
/// file: the Parquet decoder asserts on some corrupt footers (a negative
/// column offset, for one), and one bad file must not fail the rest.
pub fn guarded<T>(
    path: &Path,
    read: impl FnOnce() -> Result<T, ReadError>,
) -> Result<T, ReadError> {
    std::panic::catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        Err(ReadError::Layout {
            path: path.to_path_buf(),
            message: format!(
                "the Parquet decoder failed on it ({})",
                panic_message(panic.as_ref())
            ),
        })
    })
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn file_stamp(meta: &std::fs::Metadata) -> (SystemTime, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
        meta.ino(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(dir: &Path) -> Viewer {
        Viewer::new(Options::new(dir.to_path_buf()))
    }

    #[test]
    fn a_refresh_that_panics_keeps_the_last_state_and_the_next_one_works() {
        let dir = tempfile::tempdir().unwrap();
        let v = viewer(dir.path());
        let before = v.snapshot();
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        v.refresh_with(|_| panic!("refresh bug"));
        // A panic while a lock is held poisons it; the next users recover it.
        let poisoner = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _held = lock(&v.corrupt);
            panic!("while holding the lock");
        }));
        std::panic::set_hook(quiet);
        assert!(poisoner.is_err());
        assert!(
            Arc::ptr_eq(&before, &v.snapshot()),
            "the previous snapshot stays"
        );
        assert!(
            v.corrupt_files().is_empty(),
            "a poisoned lock still answers"
        );
        // The next refresh sees an index written meanwhile.
        let mut index = Index::empty(Utc::now(), 90);
        index.extend_range(Utc::now(), Utc::now());
        index.save(&layout::index_path(dir.path())).unwrap();
        v.refresh();
        assert!(v.snapshot().index.is_some());
    }

    #[test]
    fn a_reader_that_panics_is_an_error_naming_the_file() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result: Result<(), ReadError> = guarded(Path::new("/data/f.parquet"), || {
            panic!("assertion failed: offset >= 0")
        });
        std::panic::set_hook(quiet);
        let message = result.unwrap_err().to_string();
        assert!(message.contains("/data/f.parquet"), "{message}");
        assert!(
            message.contains("assertion failed: offset >= 0"),
            "{message}"
        );
    }
}
