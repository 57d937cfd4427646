//! Retention: everything the agent keeps in the data directory falls under
//! one budget of age and bytes.
//!
//! Each kind of artefact ([`ArtefactKind`]: Parquet data files, pod event
//! day files, the small state files, and whatever a later feature registers)
//! lists its files with their time span and size. Then, oldest first:
//!
//! 1. an artefact dated after `now` + a tolerance (a wall-clock step back
//!    left it in the future) is removed: it would otherwise pin "latest" and
//!    never age out;
//! 2. an artefact whose newest content is older than `max_age` is removed;
//! 3. while all artefacts together exceed `max_bytes`, the oldest removable
//!    one is removed.
//!
//! Protected artefacts count towards the bytes but are never removed: the
//! newest data file, today's events file, the index, the lock. The file
//! being written is never listed. Only this node's data files are touched;
//! foreign files are left alone.

mod kinds;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use kinds::{
    DATA, DataFiles, EVENTS, EventDays, HOURS, HourSummaryFiles, STATE, StateFiles, TAIL,
    TailFiles, default_kinds,
};

use super::index::Index;

/// One file under the retention budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub path: PathBuf,
    /// [`ArtefactKind::name`] of its kind.
    pub kind: &'static str,
    /// Earliest time its content may hold.
    pub start: DateTime<Utc>,
    /// Latest time its content may hold (its age is measured from here).
    pub end: DateTime<Utc>,
    pub bytes: u64,
    /// Counted, never removed.
    pub protected: bool,
}

/// A kind of file the agent keeps in the data directory. Registering one
/// with the recorder puts its files under the budget.
pub trait ArtefactKind: Send + Sync + std::fmt::Debug {
    /// Short stable name (the `kind` label of `fgm_agent_data_dir_bytes`).
    fn name(&self) -> &'static str;
    /// This kind's files in `data_dir` (this `node`'s where it matters).
    fn list(
        &self,
        data_dir: &Path,
        node: &str,
        now: DateTime<Utc>,
    ) -> std::io::Result<Vec<Artefact>>;
}

/// The registered kinds.
pub type Kinds = Vec<Arc<dyn ArtefactKind>>;

/// Retention limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_age: Duration,
    pub max_bytes: Option<u64>,
}

/// How far in the future an artefact may start before it counts as
/// future-dated: twice the rotation, at least five minutes (small clock
/// corrections leave files a little ahead; they become current by themselves).
pub fn future_tolerance(rotation: Duration) -> Duration {
    (rotation * 2).max(Duration::from_secs(300))
}

/// Why retention removed a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Older than max age.
    Age,
    /// Over max bytes.
    Size,
    /// Dated in the future beyond the tolerance (the wall clock stepped back).
    Future,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Age => "age",
            Reason::Size => "size",
            Reason::Future => "future",
        }
    }
}

/// Pure selection: the artefacts to remove, with why, oldest first.
/// `artefacts` may be in any order.
pub fn select(
    artefacts: &[Artefact],
    now: DateTime<Utc>,
    policy: Policy,
    tolerance: Duration,
) -> Vec<(PathBuf, Reason)> {
    let cutoff = chrono::Duration::from_std(policy.max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age));
    let horizon = chrono::Duration::from_std(tolerance)
        .ok()
        .and_then(|t| now.checked_add_signed(t));
    let mut removable: Vec<&Artefact> = artefacts.iter().filter(|a| !a.protected).collect();
    removable.sort_by(|a, b| (a.start, &a.path).cmp(&(b.start, &b.path)));
    let mut total: u64 = artefacts.iter().map(|a| a.bytes).sum();
    let mut out = Vec::new();
    // Future-dated first: they are the "newest" and would pin everything else.
    for a in &removable {
        if horizon.is_some_and(|h| a.start > h) {
            total = total.saturating_sub(a.bytes);
            out.push((a.path.clone(), Reason::Future));
        }
    }
    for a in &removable {
        if horizon.is_some_and(|h| a.start > h) {
            continue;
        }
        let too_old = cutoff.is_some_and(|c| a.end < c);
        let too_big = policy.max_bytes.is_some_and(|max| total > max);
        if too_old || too_big {
            total = total.saturating_sub(a.bytes);
            let reason = if too_old { Reason::Age } else { Reason::Size };
            out.push((a.path.clone(), reason));
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

/// What one retention pass found and decided.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every artefact listed.
    pub artefacts: Vec<Artefact>,
    /// The ones to remove, with why.
    pub doomed: Vec<(PathBuf, Reason)>,
    /// Kinds or files that could not be listed or inspected.
    pub errors: Vec<(PathBuf, std::io::Error)>,
}

impl Plan {
    /// Earliest start and latest start of the data files kept.
    pub fn data_kept(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let kept = self
            .artefacts
            .iter()
            .filter(|a| a.kind == kinds::DATA && !self.doomed.iter().any(|(p, _)| *p == a.path));
        let (mut first, mut last) = (None, None);
        for a in kept {
            first = Some(first.map_or(a.start, |f: DateTime<Utc>| f.min(a.start)));
            last = Some(last.map_or(a.start, |l: DateTime<Utc>| l.max(a.start)));
        }
        (first, last)
    }

    /// Bytes per kind after the removals.
    pub fn bytes_kept(&self, kinds: &[Arc<dyn ArtefactKind>]) -> Vec<(&'static str, u64)> {
        kinds
            .iter()
            .map(|k| {
                let bytes = self
                    .artefacts
                    .iter()
                    .filter(|a| {
                        a.kind == k.name() && !self.doomed.iter().any(|(p, _)| *p == a.path)
                    })
                    .map(|a| a.bytes)
                    .sum();
                (k.name(), bytes)
            })
            .collect()
    }
}

/// Lists every registered kind and selects what to remove (nothing is removed yet).
pub fn plan(
    data_dir: &Path,
    node: &str,
    now: DateTime<Utc>,
    policy: Policy,
    tolerance: Duration,
    kinds: &[Arc<dyn ArtefactKind>],
) -> Plan {
    let mut out = Plan::default();
    for kind in kinds {
        match kind.list(data_dir, node, now) {
            Ok(found) => out.artefacts.extend(found),
            Err(e) => out.errors.push((data_dir.join(kind.name()), e)),
        }
    }
    out.doomed = select(&out.artefacts, now, policy, tolerance);
    out
}

/// Files removed with why, and the ones that could not be.
pub type Removed = (Vec<(PathBuf, Reason)>, Vec<(PathBuf, std::io::Error)>);

/// Removes the files a [`plan`] doomed, then the day and node directories
/// that emptied. Returns the removed ones and the failures.
pub fn remove(plan: &Plan) -> Removed {
    let (mut removed, mut errors) = (Vec::new(), Vec::new());
    for (path, reason) in &plan.doomed {
        match std::fs::remove_file(path) {
            Ok(()) => {
                removed.push((path.clone(), *reason));
                // Empty identifier= and dt= directories go too; a non-empty one stays.
                if let Some(node_dir) = path.parent()
                    && node_dir
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("identifier="))
                    && std::fs::remove_dir(node_dir).is_ok()
                    && let Some(day_dir) = node_dir.parent()
                {
                    let _ = std::fs::remove_dir(day_dir);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push((path.clone(), e)),
        }
    }
    (removed, errors)
}

#[cfg(test)]
mod tests;
