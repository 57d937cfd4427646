//! The node's processes by cgroup, from the host's `/proc` (`--proc-root`).
//!
//! In its pod the agent has a PID namespace of its own, and from there a v1
//! `cgroup.procs` of another cgroup reads as empty (v2 lists `0` for every
//! pid it cannot name). So when the agent does not see pids as `proc_root`
//! lists them ([`ProcessSource::detect`]), processes are counted from an index
//! of `proc_root` instead:
//!
//! ```text
//!  each cycle: getdents(<proc_root>) ─▶ pids
//!     new pid ─▶ <pid>/stat (start time, comm, ppid) + <pid>/cgroup ─▶ cgroup key
//!     gone pid ─▶ dropped
//!     young pid (first cycles) or its turn in the rolling recheck
//!              ─▶ stat again (a new start time is a new process) + cgroup again (moved)
//! ```
//!
//! A process is (pid, start time): a recycled pid is a new process. Paths in
//! `<pid>/cgroup` are relative to the reader's cgroup namespace (`/../..` when
//! the agent has its own), so they are kept with leading `..` components
//! removed, and a container's processes are found by the longest suffix of
//! its cgroup path that names a key. Every file is world-readable: no
//! capability, no `hostPID`.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::OwnedFd;
use rustix::fs::{Dir, Mode, OFlags};
use rustix::io::Errno;

/// A process is re-read (stat and cgroup) in this many cycles after it was
/// first seen: runtimes move a new process into its container's cgroup just
/// after it starts (`runc exec`, `runc init`).
const YOUNG_CHECKS: u8 = 3;

/// Every process is re-read once every this many cycles (spread by pid): it
/// catches a pid recycled between two listings and a process moved later.
pub const RECHECK_EVERY: u64 = 60;

/// Where the process count of a container comes from on this host.
#[derive(Debug)]
pub enum ProcessSource {
    /// `cgroup.procs` of the container (the agent sees the host's pids).
    CgroupProcs,
    /// The index of `proc_root` (the agent is in another PID namespace).
    Index(Box<ProcessIndex>),
}

impl ProcessSource {
    /// `cgroup.procs` when this process sees pids as `proc_root` names them,
    /// the index when `proc_root` is a procfs of another PID namespace. A
    /// directory that is not a procfs (a recorded fixture) keeps `cgroup.procs`.
    pub fn detect(proc_root: &Path, hierarchy: CgroupLine) -> Self {
        match pid_namespace_of(proc_root) {
            PidView::Same | PidView::NotProcfs => ProcessSource::CgroupProcs,
            PidView::Other => {
                ProcessSource::Index(Box::new(ProcessIndex::new(proc_root, hierarchy)))
            }
        }
    }

    pub fn index(&self) -> Option<&ProcessIndex> {
        match self {
            ProcessSource::Index(index) => Some(index),
            ProcessSource::CgroupProcs => None,
        }
    }
}

/// How this process relates to the PID namespace of a proc mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidView {
    /// `<proc_root>/self` is this process: pids read anywhere are the same.
    Same,
    /// A procfs of another PID namespace (this one's parent, or unrelated).
    Other,
    /// Not a procfs.
    NotProcfs,
}

/// Compares `<proc_root>/self` (this process as that procfs names it) with
/// our own pid; `self` does not resolve when we are not in its namespace at all.
pub fn pid_namespace_of(proc_root: &Path) -> PidView {
    let is_procfs =
        rustix::fs::statfs(proc_root).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
    if !is_procfs {
        return PidView::NotProcfs;
    }
    let ours = std::fs::read_link(proc_root.join("self"))
        .ok()
        .and_then(|p| p.to_str()?.parse::<u32>().ok());
    if ours == Some(std::process::id()) {
        PidView::Same
    } else {
        PidView::Other
    }
}

/// Which line of `/proc/<pid>/cgroup` holds the paths containers are tracked by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLine {
    /// The v1 hierarchy holding this controller.
    V1(String),
    /// The v2 hierarchy (`0::<path>`).
    V2,
}

/// What `<pid>/stat` says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// Clock ticks after boot (field 22): with the pid, a process's identity.
    pub start_ticks: u64,
}

/// Parses `<pid>/stat`: `pid (comm) state ppid ... starttime ...`. The comm may
/// hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|b| *b == b'(')?;
    let close = text.iter().rposition(|b| *b == b')')?;
    let comm = String::from_utf8_lossy(text.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    // After the comm: state(3) ppid(4) ... starttime(22) → indexes 0, 1, ..., 19.
    let mut fields = rest.split_ascii_whitespace();
    let ppid = fields.nth(1)?.parse().ok()?;
    let start_ticks = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        comm,
        ppid,
        start_ticks,
    })
}

/// The path of `line`'s hierarchy in `<pid>/cgroup` text, as a key: no leading
/// `/` and no leading `..` components (the part above the reader's cgroup
/// namespace). `None` when the hierarchy is not listed.
pub fn parse_cgroup<'a>(text: &'a str, line: &CgroupLine) -> Option<&'a str> {
    for l in text.lines() {
        let mut parts = l.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let matches = match line {
            CgroupLine::V2 => id == "0" && controllers.is_empty(),
            CgroupLine::V1(name) => controllers.split(',').any(|c| c == name),
        };
        if matches {
            let mut key = path.trim_start_matches('/');
            while let Some(rest) = key.strip_prefix("..") {
                match rest.strip_prefix('/') {
                    Some(r) => key = r,
                    None if rest.is_empty() => key = rest,
                    None => break,
                }
            }
            return Some(key);
        }
    }
    None
}

/// One process of the node.
#[derive(Debug, Clone)]
pub struct Process {
    pub start_ticks: u64,
    pub ppid: u32,
    /// Up to 15 bytes, as the kernel keeps it.
    pub comm: Box<str>,
    /// Its cgroup key (see [`parse_cgroup`]).
    pub cgroup: Arc<str>,
    /// Cycles in which it is re-read because it is young.
    checks_left: u8,
    /// The listing it was last seen in.
    seen: u64,
}

/// Counts of one refresh, for the self-metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshStats {
    pub listed: usize,
    pub added: usize,
    pub removed: usize,
    pub rechecked: usize,
    /// The kernel refused a descriptor: some new pids were not read.
    pub descriptors_refused: usize,
}

/// Why the index could not be refreshed at all.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot list processes in {path}: {source}")]
    List { path: PathBuf, source: Errno },
}

/// The node's processes by pid and by cgroup (see the module docs).
#[derive(Debug)]
pub struct ProcessIndex {
    proc_root: PathBuf,
    line: CgroupLine,
    dir: Option<Dir>,
    procs: HashMap<u32, Process>,
    by_cgroup: HashMap<Arc<str>, Vec<u32>>,
    /// Keys by their last component (a container's id in Kubernetes layouts).
    by_leaf: HashMap<Box<str>, Vec<Arc<str>>>,
    /// Listings done; also the `seen` stamp of the current one.
    listings: u64,
    /// The last refresh read every pid it listed (else counts are unknown).
    complete: bool,
    pids: Vec<u32>,
    buf: Vec<u8>,
    path: String,
}

impl ProcessIndex {
    pub fn new(proc_root: &Path, line: CgroupLine) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            line,
            dir: None,
            procs: HashMap::new(),
            by_cgroup: HashMap::new(),
            by_leaf: HashMap::new(),
            listings: 0,
            complete: false,
            pids: Vec::new(),
            buf: vec![0; 4096],
            path: String::with_capacity(32),
        }
    }

    /// Lists `proc_root` and brings the index up to date.
    pub fn refresh(&mut self) -> Result<RefreshStats, IndexError> {
        let mut stats = RefreshStats::default();
        if let Err(source) = self.list() {
            self.complete = false;
            self.dir = None;
            return Err(IndexError::List {
                path: self.proc_root.clone(),
                source,
            });
        }
        self.listings += 1;
        let now = self.listings;
        stats.listed = self.pids.len();
        let pids = std::mem::take(&mut self.pids);
        for &pid in &pids {
            let recheck = match self.procs.get_mut(&pid) {
                Some(p) => {
                    p.seen = now;
                    let due =
                        p.checks_left > 0 || u64::from(pid) % RECHECK_EVERY == now % RECHECK_EVERY;
                    p.checks_left = p.checks_left.saturating_sub(1);
                    due
                }
                None => {
                    match self.read_process(pid) {
                        Ok(Some(p)) => {
                            self.insert(pid, p);
                            stats.added += 1;
                        }
                        Ok(None) => {} // gone since the listing
                        Err(Errno::MFILE | Errno::NFILE) => stats.descriptors_refused += 1,
                        Err(_) => {}
                    }
                    false
                }
            };
            if recheck {
                stats.rechecked += 1;
                match self.read_process(pid) {
                    Ok(Some(fresh)) => self.update(pid, fresh),
                    Ok(None) => {}
                    Err(Errno::MFILE | Errno::NFILE) => stats.descriptors_refused += 1,
                    Err(_) => {}
                }
            }
        }
        self.pids = pids;
        let before = self.procs.len();
        let (by_cgroup, by_leaf) = (&mut self.by_cgroup, &mut self.by_leaf);
        self.procs.retain(|pid, p| {
            let keep = p.seen == now;
            if !keep {
                unlink(by_cgroup, by_leaf, &p.cgroup, *pid);
            }
            keep
        });
        stats.removed = before - self.procs.len();
        self.complete = stats.descriptors_refused == 0;
        Ok(stats)
    }

    /// Fills `self.pids` from a listing of `proc_root`.
    fn list(&mut self) -> Result<(), Errno> {
        if self.dir.is_none() {
            let fd = rustix::fs::open(
                &self.proc_root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            self.dir = Some(Dir::new(fd)?);
        }
        let Some(dir) = self.dir.as_mut() else {
            return Err(Errno::BADF);
        };
        dir.rewind();
        self.pids.clear();
        while let Some(entry) = dir.read() {
            let entry = entry?;
            if let Some(pid) = pid_of(entry.file_name()) {
                self.pids.push(pid);
            }
        }
        Ok(())
    }

    /// Reads a process's stat and cgroup; `Ok(None)` when it is gone.
    fn read_process(&mut self, pid: u32) -> Result<Option<Process>, Errno> {
        let Some(dir) = self.dir.as_ref() else {
            return Ok(None);
        };
        let Some(len) = read_at(dir, &mut self.path, &mut self.buf, pid, "stat")? else {
            return Ok(None);
        };
        let Some(stat) = parse_stat(&self.buf[..len]) else {
            return Ok(None);
        };
        let Some(len) = read_at(dir, &mut self.path, &mut self.buf, pid, "cgroup")? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&self.buf[..len]);
        let key = parse_cgroup(&text, &self.line).unwrap_or("");
        let cgroup = match self.by_cgroup.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        Ok(Some(Process {
            start_ticks: stat.start_ticks,
            ppid: stat.ppid,
            comm: stat.comm.into_boxed_str(),
            cgroup,
            checks_left: YOUNG_CHECKS,
            seen: self.listings,
        }))
    }

    fn insert(&mut self, pid: u32, p: Process) {
        link(&mut self.by_cgroup, &mut self.by_leaf, &p.cgroup, pid);
        self.procs.insert(pid, p);
    }

    /// A re-read process: a new start time is a new process under a recycled
    /// pid (young again); a new cgroup moves it.
    fn update(&mut self, pid: u32, fresh: Process) {
        let Some(known) = self.procs.get_mut(&pid) else {
            return;
        };
        let recycled = known.start_ticks != fresh.start_ticks;
        if recycled || known.cgroup != fresh.cgroup {
            let old = std::mem::replace(&mut known.cgroup, fresh.cgroup.clone());
            unlink(&mut self.by_cgroup, &mut self.by_leaf, &old, pid);
            link(&mut self.by_cgroup, &mut self.by_leaf, &fresh.cgroup, pid);
        }
        if recycled {
            known.start_ticks = fresh.start_ticks;
            known.checks_left = YOUNG_CHECKS;
        }
        // A runtime's init process becomes the container's at exec: its name changes then.
        known.ppid = fresh.ppid;
        if is_runtime_init(&fresh.comm) {
            known.checks_left = known.checks_left.max(1);
        }
        known.comm = fresh.comm;
    }

    /// The pids in the cgroup of `container_path` (relative to the root the
    /// agent walks). Keys and paths may each lack a prefix of the other (a
    /// private cgroup namespace shortens keys, a `--cgroup-root` below the
    /// hierarchy's root shortens paths): the key with the same last component
    /// that shares the longest whole-component suffix with the path wins.
    pub fn pids_in(&self, container_path: &str) -> &[u32] {
        let path = container_path.trim_start_matches('/');
        let leaf = path.rsplit('/').next().unwrap_or(path);
        let Some(keys) = self.by_leaf.get(leaf) else {
            return &[];
        };
        let best = keys
            .iter()
            .filter_map(|key| suffix_match(path, key).map(|n| (n, key)))
            .max_by_key(|(n, _)| *n);
        match best {
            Some((_, key)) => self.by_cgroup.get(&**key).map_or(&[], Vec::as_slice),
            None => &[],
        }
    }

    /// Processes in the container's cgroup; `None` until a refresh read every
    /// listed pid.
    pub fn count(&self, container_path: &str) -> Option<i64> {
        self.complete
            .then(|| self.pids_in(container_path).len() as i64)
    }

    /// Whether the container holds only `pause` processes: `None` when it has
    /// none (yet), one not started yet (a runtime's init before its exec), or
    /// the index is not complete.
    pub fn is_sandbox(&self, container_path: &str) -> Option<bool> {
        if !self.complete {
            return None;
        }
        let pids = self.pids_in(container_path);
        let comms: Vec<&str> = pids
            .iter()
            .filter_map(|pid| self.procs.get(pid))
            .map(|p| &*p.comm)
            .collect();
        if comms.is_empty() || comms.iter().any(|c| is_runtime_init(c)) {
            return None;
        }
        Some(comms.iter().all(|c| *c == "pause"))
    }

    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.procs.get(&pid)
    }

    /// Processes indexed.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }
}

/// `<dir>/<pid>/<name>` into `buf`, returning its length; `Ok(None)` when the
/// process is gone (`ENOENT`, `ESRCH`) or the file cannot be read, `Err` only
/// when the kernel refuses a descriptor.
fn read_at(
    dir: &Dir,
    path: &mut String,
    buf: &mut Vec<u8>,
    pid: u32,
    name: &str,
) -> Result<Option<usize>, Errno> {
    use std::fmt::Write as _;
    path.clear();
    let _ = write!(path, "{pid}/{name}");
    let fd: OwnedFd = match rustix::fs::openat(
        dir.fd()?,
        path.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e @ (Errno::MFILE | Errno::NFILE)) => return Err(e),
        Err(_) => return Ok(None),
    };
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => return Ok(Some(len)),
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(_) => return Ok(None),
        }
    }
}

/// Adds `pid` to `cgroup`'s list (and the key to the leaf map when new).
fn link(
    by_cgroup: &mut HashMap<Arc<str>, Vec<u32>>,
    by_leaf: &mut HashMap<Box<str>, Vec<Arc<str>>>,
    cgroup: &Arc<str>,
    pid: u32,
) {
    let pids = by_cgroup.entry(cgroup.clone()).or_default();
    if pids.is_empty() {
        by_leaf
            .entry(leaf_of(cgroup).into())
            .or_default()
            .push(cgroup.clone());
    }
    pids.push(pid);
}

/// A container runtime's init process (`runc:[2:INIT]`, crun's), waiting
/// to exec the container's program: what the container runs is not known yet.
pub fn is_runtime_init(comm: &str) -> bool {
    comm.starts_with("runc") || comm.starts_with("crun")
}

/// Removes `pid` from `cgroup`'s list (and the key when it empties).
fn unlink(
    by_cgroup: &mut HashMap<Arc<str>, Vec<u32>>,
    by_leaf: &mut HashMap<Box<str>, Vec<Arc<str>>>,
    cgroup: &str,
    pid: u32,
) {
    let Some(pids) = by_cgroup.get_mut(cgroup) else {
        return;
    };
    if let Some(i) = pids.iter().position(|p| *p == pid) {
        pids.swap_remove(i);
    }
    if pids.is_empty() {
        by_cgroup.remove(cgroup);
        let leaf = leaf_of(cgroup);
        if let Some(keys) = by_leaf.get_mut(leaf) {
            keys.retain(|k| &**k != cgroup);
            if keys.is_empty() {
                by_leaf.remove(leaf);
            }
        }
    }
}

fn leaf_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Components `a` and `b` share at their ends when one ends with the other
/// at a component boundary, else `None`.
pub fn suffix_match(a: &str, b: &str) -> Option<usize> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let boundary =
        long.len() == short.len() || long.as_bytes()[long.len() - short.len() - 1] == b'/';
    (long.ends_with(short) && boundary).then(|| short.split('/').count())
}

/// A directory entry's name as a pid (`/proc` also lists `self`, `net`, ...).
fn pid_of(name: &CStr) -> Option<u32> {
    let bytes = name.to_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
