//! Retention: files older than max age go first, then the oldest files while
//! the data exceeds max bytes. The newest finished file is always kept (and
//! the file being written is never listed), so retention never removes what
//! the agent is writing or what was written last. Only this node's files
//! are touched; foreign files are left alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::index::Index;
use super::layout;

/// A finished data file as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub start: DateTime<Utc>,
    pub bytes: u64,
}

/// Retention limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_age: Duration,
    pub max_bytes: Option<u64>,
}

/// Why retention removed a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Older than max age.
    Age,
    /// Over max bytes.
    Size,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Age => "age",
            Reason::Size => "size",
        }
    }
}

/// Pure selection: the files to delete, oldest first. `files` may be in any order.
pub fn select(files: &[FileInfo], now: DateTime<Utc>, policy: Policy) -> Vec<(PathBuf, Reason)> {
    let mut sorted: Vec<&FileInfo> = files.iter().collect();
    sorted.sort_by_key(|f| f.start);
    // The newest file is never a candidate.
    let Some((_newest, candidates)) = sorted.split_last() else {
        return Vec::new();
    };
    let cutoff = chrono::Duration::from_std(policy.max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age));
    let mut total: u64 = sorted.iter().map(|f| f.bytes).sum();
    let mut out = Vec::new();
    for file in candidates {
        let too_old = cutoff.is_some_and(|cutoff| file.start < cutoff);
        let too_big = policy.max_bytes.is_some_and(|max| total > max);
        if too_old || too_big {
            total = total.saturating_sub(file.bytes);
            let reason = if too_old { Reason::Age } else { Reason::Size };
            out.push((file.path.clone(), reason));
        } else {
            break;
        }
    }
    out
}

/// Removes containers not seen for longer than `max_age` from the index.
/// Returns how many left.
pub fn prune_index(index: &mut Index, now: DateTime<Utc>, max_age: Duration) -> usize {
    let Some(cutoff) = chrono::Duration::from_std(max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
    else {
        return 0;
    };
    let before = index.containers.len();
    index.containers.retain(|_, c| c.last_seen >= cutoff);
    before - index.containers.len()
}

/// What one retention pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub deleted: Vec<(PathBuf, Reason)>,
    /// Files that could not be removed or inspected, with the reason.
    pub errors: Vec<(PathBuf, std::io::Error)>,
    /// Earliest start of the files kept (for the index's `data_range`).
    pub earliest_kept: Option<DateTime<Utc>>,
}

/// Applies `policy` to `node`'s files in `data_dir`, then removes directories
/// it emptied.
pub fn apply(
    data_dir: &Path,
    node: &str,
    now: DateTime<Utc>,
    policy: Policy,
) -> std::io::Result<Outcome> {
    let listing = layout::list_data_files(data_dir, None)?;
    let mut outcome = Outcome::default();
    let mut files = Vec::new();
    for file in listing.files.into_iter().filter(|f| f.node == node) {
        match std::fs::metadata(&file.path) {
            Ok(meta) => files.push(FileInfo {
                path: file.path,
                start: file.start,
                bytes: meta.len(),
            }),
            Err(e) => outcome.errors.push((file.path, e)),
        }
    }
    let doomed = select(&files, now, policy);
    for (path, reason) in &doomed {
        match std::fs::remove_file(path) {
            Ok(()) => {
                outcome.deleted.push((path.clone(), *reason));
                // Empty identifier= and dt= directories go too; a non-empty one stays.
                if let Some(node_dir) = path.parent()
                    && std::fs::remove_dir(node_dir).is_ok()
                    && let Some(day_dir) = node_dir.parent()
                {
                    let _ = std::fs::remove_dir(day_dir);
                }
            }
            Err(e) => outcome.errors.push((path.clone(), e)),
        }
    }
    outcome.earliest_kept = files
        .iter()
        .filter(|f| !outcome.deleted.iter().any(|(p, _)| *p == f.path))
        .map(|f| f.start)
        .min();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 10, min, 0).unwrap()
    }

    fn file(min: u32, bytes: u64) -> FileInfo {
        FileInfo {
            path: PathBuf::from(format!("f{min}")),
            start: at(min),
            bytes,
        }
    }

    fn names(paths: Vec<(PathBuf, Reason)>) -> Vec<String> {
        paths.iter().map(|(p, _)| p.display().to_string()).collect()
    }

    #[test]
    fn age_then_bytes_oldest_first_never_the_newest() {
        let files = vec![file(3, 100), file(0, 100), file(1, 100), file(2, 100)];
        let age = |mins: u64| Policy {
            max_age: Duration::from_secs(mins * 60),
            max_bytes: None,
        };
        // now = 10:05, max age 4 min: files before 10:01 go.
        assert_eq!(names(select(&files, at(5), age(4))), ["f0"]);
        // Everything too old: still the newest stays.
        assert_eq!(names(select(&files, at(59), age(1))), ["f0", "f1", "f2"]);
        let bytes = Policy {
            max_age: Duration::from_secs(86_400),
            max_bytes: Some(250),
        };
        assert_eq!(names(select(&files, at(5), bytes)), ["f0", "f1"]);
        assert!(
            select(&files, at(5), bytes)
                .iter()
                .all(|(_, r)| *r == Reason::Size)
        );
        // Both limits: the too-old file is an age deletion, the next a size one.
        let both = Policy {
            max_age: Duration::from_secs(4 * 60),
            max_bytes: Some(250),
        };
        let reasons: Vec<Reason> = select(&files, at(5), both)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(reasons, [Reason::Age, Reason::Size]);
        let tiny = Policy {
            max_age: Duration::from_secs(86_400),
            max_bytes: Some(0),
        };
        assert_eq!(names(select(&files, at(5), tiny)), ["f0", "f1", "f2"]);
        assert!(select(&[], at(5), tiny).is_empty());
        assert!(select(&files, at(5), age(60)).is_empty());
    }

    #[test]
    fn apply_removes_exactly_the_selected_files_and_leaves_foreign_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (day, hour) in [(1, 10), (2, 9), (2, 10)] {
            let start = Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap();
            let path = layout::data_file_path(dir.path(), "n1", start);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![0u8; 10]).unwrap();
            paths.push(path);
        }
        let other = layout::data_file_path(dir.path(), "n2", at(0));
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, b"x").unwrap();
        let foreign = paths[1].parent().unwrap().join("notes.txt");
        std::fs::write(&foreign, b"keep").unwrap();
        let open = layout::in_progress_path(&layout::data_file_path(dir.path(), "n1", at(30)));
        std::fs::create_dir_all(open.parent().unwrap()).unwrap();
        std::fs::write(&open, b"partial").unwrap();
        let policy = Policy {
            max_age: Duration::from_secs(3600 * 2),
            max_bytes: None,
        };
        // now 2026-01-02 10:30, max age 2 h: only the day-1 file is too old.
        let outcome = apply(dir.path(), "n1", at(30), policy).unwrap();
        assert_eq!(outcome.deleted, vec![(paths[0].clone(), Reason::Age)]);
        assert!(outcome.errors.is_empty());
        assert!(!paths[0].exists() && paths[1].exists() && paths[2].exists());
        assert!(
            !dir.path().join("dt=2026-01-01").exists(),
            "emptied dirs removed"
        );
        assert!(other.exists(), "other nodes' files are not ours");
        assert!(open.exists(), "the file being written is never removed");
        assert_eq!(
            outcome.earliest_kept,
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap())
        );
        assert!(foreign.exists(), "foreign files are left alone");
    }

    #[test]
    fn index_prune_by_last_seen() {
        let mut index = Index::empty(at(0), 90);
        for (id, seen) in [("aaaaaaaaaaaa", 0), ("bbbbbbbbbbbb", 50)] {
            index.containers.insert(
                id.to_string(),
                crate::store::index::ContainerEntry {
                    full_id: id.to_string(),
                    pod_uid: None,
                    qos_class: String::new(),
                    first_seen: at(0),
                    last_seen: at(seen),
                    pod_name: None,
                    namespace: None,
                    labels: None,
                    container_name: None,
                    cgroup_path: None,
                    runtime: None,
                    sandbox: false,
                    requests: None,
                },
            );
        }
        assert_eq!(prune_index(&mut index, at(55), Duration::from_secs(600)), 1);
        assert!(index.containers.contains_key("bbbbbbbbbbbb"));
    }
}
