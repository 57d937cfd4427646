//! File descriptors: the agent keeps every container's cgroup files open
//! (about 18 per container), so the open-file limit decides how many
//! containers it can follow the cheap way.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (the common
//! soft default of 1024 would end collection near 55 containers). Of the
//! limit, a reserve is kept for everything else (sockets, the data files
//! being written, the index, inotify, the lock); the rest is the budget for
//! kept cgroup files. Containers beyond the budget, or all of them once the
//! kernel says `EMFILE`/`ENFILE`, are read by opening their files each cycle
//! (one descriptor at a time): slower, never stopped.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The open-file limit before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit found at start.
    pub soft_before: u64,
    /// Soft limit now.
    pub soft: u64,
    /// Hard limit (`u64::MAX` = unlimited).
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard one (capped by
/// `/proc/sys/fs/nr_open` when the hard limit is unlimited). Never fails: on
/// refusal the limit found is kept and reported.
pub fn raise_nofile_limit() -> NofileLimit {
    let before = getrlimit(Resource::Nofile);
    let soft_before = before.current.unwrap_or(u64::MAX);
    let hard = before.maximum.unwrap_or(u64::MAX);
    let target = if hard == u64::MAX {
        nr_open().unwrap_or(soft_before)
    } else {
        hard
    };
    if target > soft_before {
        let raised = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = soft_before, hard, "cannot raise the open-file limit");
        }
    }
    NofileLimit {
        soft_before,
        soft: current_soft_limit(),
        hard,
    }
}

/// The soft open-file limit now (another process may have changed it: prlimit).
pub fn current_soft_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Descriptors this process has open now (`/proc/self/fd`); `None` when
/// that cannot be listed (no /proc, or no descriptor left to list it with).
pub fn open_descriptors() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The listing's own descriptor is one of them.
    Some(entries.count().saturating_sub(1))
}

/// Descriptors left for everything but kept cgroup files: a quarter of the
/// limit, at least 32, at most 1024.
pub fn reserve(limit: u64) -> u64 {
    (limit / 4).clamp(32, 1024)
}

/// How many cgroup files may be kept open: the limit, less the descriptors
/// open for other things, less the reserve.
pub fn kept_files_budget(limit: u64, open_other: usize) -> usize {
    let budget = limit
        .saturating_sub(open_other as u64)
        .saturating_sub(reserve(limit));
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// True for "too many open files" in this process (`EMFILE`) or the system (`ENFILE`).
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(23 /* ENFILE */) | Some(24 /* EMFILE */)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_a_reserve_for_everything_else() {
        assert_eq!(reserve(1024), 256);
        assert_eq!(reserve(64), 32, "at least 32");
        assert_eq!(reserve(1 << 20), 1024, "at most 1024");
        // 1024: 256 reserved, 20 open elsewhere -> 748 kept files (~41 containers at 18).
        assert_eq!(kept_files_budget(1024, 20), 748);
        assert_eq!(
            kept_files_budget(40, 20),
            0,
            "nothing kept: every file reopened"
        );
        assert_eq!(kept_files_budget(1 << 20, 30), (1 << 20) - 30 - 1024);
        assert_eq!(kept_files_budget(u64::MAX, 10), usize::MAX - 10 - 1024);
    }

    #[test]
    fn exhaustion_errors_are_recognised() {
        assert!(is_exhaustion(&std::io::Error::from_raw_os_error(24)));
        assert!(is_exhaustion(&std::io::Error::from_raw_os_error(23)));
        assert!(!is_exhaustion(&std::io::Error::from_raw_os_error(2)));
    }

    #[test]
    fn this_process_can_count_its_descriptors() {
        let before = open_descriptors().unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        // Other test threads open files too: at least ours shows.
        assert!(open_descriptors().unwrap() >= 1);
        drop(file);
        assert!(before >= 3, "stdin, stdout, stderr at least: {before}");
        let limit = raise_nofile_limit();
        assert!(limit.soft >= limit.soft_before);
        assert!(limit.soft <= limit.hard);
    }
}
