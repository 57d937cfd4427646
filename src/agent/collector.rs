//! One collection cycle, synchronously: find new containers, read every
//! tracked container's files, return the [`Cycle`].
//!
//! New containers come from inotify ([`discovery::watch`]): every directory
//! the walk passed through is watched, so a container whose cgroup appeared
//! since the last cycle is opened and sampled in this one. A full walk of the
//! tree runs at start, every [`RECONCILE_EVERY`] cycles as a safety net, and
//! when events were lost; without inotify (or in `local` mode, where a leaf
//! becomes a container when processes join it, which raises no event) it
//! runs every `scan_every` cycles.
//!
//! Descriptors ([`fds`]): a container's files are kept open while the
//! budget allows, otherwise reopened at each read. When the kernel refuses a
//! descriptor (`EMFILE`/`ENFILE`), a quarter of the kept files are closed at
//! the end of the cycle and their containers reopen theirs from then on;
//! each full walk recomputes the budget from the limit in force and keeps
//! files open again where it allows. Collection never stops for descriptors.
//!
//! Containers that vanish (between scan and read, or between cycles) are
//! dropped silently; the others are unaffected. New ones are checked for
//! being a pod sandbox, and files missing at their first open (runtimes
//! create a container's cgroup in one v1 hierarchy after another) are
//! opened again during their first cycles.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::container_files::OpenError;
use super::contract::{ContainerSample, Cycle};
use super::discovery::watch::DirWatch;
use super::discovery::{self, ContainerRef, DiscoveryMode, Scope};
use super::fds;
use super::mountinfo::Hierarchies;
use super::processes::{CgroupLine, ProcessIndex, ProcessSource};
use super::sampler::{self, ContainerFiles, Gone, PlannedFile, ReadErrors, Source};
use super::slots::{self, Values};

/// A container being sampled.
#[derive(Debug)]
pub struct Tracked {
    pub container: ContainerRef,
    /// The pod UID, shared with every sample of the container.
    pod_uid: Option<std::sync::Arc<str>>,
    files: ContainerFiles,
    /// `None` until the process check could tell.
    pub sandbox: Option<bool>,
    /// Scans that could not tell yet; the check stops after a few.
    sandbox_attempts: u8,
    /// Processes in the last sample (`cgroup.procs`): `local` discovery
    /// trusts it instead of re-reading the file at each scan.
    processes: Option<i64>,
    /// Cycles left during which files missing at the first open are retried.
    retry_missing: u8,
}

/// Scans after which an undecided sandbox check is given up (not a sandbox).
const SANDBOX_ATTEMPTS: u8 = 5;

/// With inotify, a full walk of the tree runs every this many cycles anyway:
/// it catches what events cannot show (a directory that could not be watched).
pub const RECONCILE_EVERY: u32 = 60;

/// Cycles during which a new container's missing files are opened again.
const RETRY_MISSING_CYCLES: u8 = 3;

/// Descriptor accounting (see the module docs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FdStatus {
    /// cgroup files held open.
    pub kept_files: usize,
    /// How many may be held open.
    pub budget: usize,
    /// Containers read by reopening (some or all of) their files.
    pub reopened: usize,
    /// Times descriptors ran out (each shed a quarter of the kept files).
    pub shortages: u64,
}

#[derive(Debug, Default)]
struct FdState {
    status: FdStatus,
    /// The kernel refused a descriptor during this cycle.
    pressure: bool,
    /// The kept/reopened counts need recounting.
    stale: bool,
    /// A budget set by [`Collector::fix_fd_budget`], not derived from the limit.
    fixed: Option<usize>,
}

/// Discovery plus sampling state, kept across cycles.
#[derive(Debug)]
pub struct Collector {
    hierarchies: Hierarchies,
    /// The hierarchy roots walked for containers (see [`walk_roots`]).
    roots: Vec<PathBuf>,
    plan: Vec<PlannedFile>,
    mode: DiscoveryMode,
    /// The part of the tree that is this node's (one kubelet's pods).
    scope: Scope,
    proc_root: PathBuf,
    /// Where process counts come from (`cgroup.procs`, or the index of
    /// `proc_root` from another PID namespace).
    processes: ProcessSource,
    /// The index could not list `proc_root` (logged once until it can).
    processes_failing: bool,
    tracked: BTreeMap<String, Tracked>,
    /// New directories as they appear; `None` when inotify is unavailable.
    watch: Option<DirWatch>,
    /// Full walk every this many cycles without inotify or in `local` mode.
    scan_every: u32,
    cycles_since_scan: u32,
    /// Full walks done (the rest of the discovery work is event-driven).
    walks: u64,
    /// Cycles since undecided sandbox checks were last retried.
    cycles_since_sandbox_check: u32,
    fd: FdState,
    /// Re-read limits and peaks every this many cycles (1 = every cycle).
    limits_every: u32,
    cycles_since_limits: u32,
    buf: Vec<u8>,
    row: Values,
    /// Block device names by number, looked up once each.
    device_names: DeviceNames,
}

/// `/dev/<DEVNAME>` of block devices by (major, minor), from
/// `/sys/dev/block/<major>:<minor>/uevent` (sysfs lists the host's block
/// devices in a container too), else `major:minor`.
#[derive(Debug, Default)]
struct DeviceNames {
    names: std::collections::HashMap<(u32, u32), std::sync::Arc<str>>,
}

impl DeviceNames {
    fn named(&mut self, devices: &[super::slots::DeviceIo]) -> Vec<super::slots::DeviceIo> {
        devices
            .iter()
            .map(|d| {
                let name = self
                    .names
                    .entry((d.major, d.minor))
                    .or_insert_with(|| device_name(d.major, d.minor).into())
                    .clone();
                super::slots::DeviceIo {
                    name: Some(name),
                    ..d.clone()
                }
            })
            .collect()
    }
}

fn device_name(major: u32, minor: u32) -> String {
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("DEVNAME="))
                .map(|n| format!("/dev/{n}"))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

/// `local` discovery's test for a leaf cgroup beside its own `cgroup.procs` read: processes
/// counted last cycle, or pids the host's process index puts there (in a PID namespace of
/// its own the agent reads every other cgroup's `cgroup.procs` as empty).
fn is_populated(
    tracked: &BTreeMap<String, Tracked>,
    index: Option<&ProcessIndex>,
    path: &str,
) -> bool {
    tracked
        .get(path)
        .is_some_and(|t| t.processes.is_some_and(|n| n > 0))
        || index.is_some_and(|i| !i.pids_in(path).is_empty())
}

impl Collector {
    pub fn new(
        hierarchies: Hierarchies,
        mode: DiscoveryMode,
        proc_root: PathBuf,
        scan_every: u32,
        limits_every: u32,
    ) -> Self {
        let roots = walk_roots(&hierarchies, mode);
        let processes = ProcessSource::detect(&proc_root, cgroup_line(&hierarchies, &roots));
        let by_index = matches!(processes, ProcessSource::Index(_));
        let watch = match DirWatch::new(roots.len()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, every = scan_every, "no inotify instance: new containers are found by a full walk every few cycles");
                None
            }
        };
        let mut collector = Self {
            plan: sampler::plan(&hierarchies),
            roots,
            hierarchies,
            mode,
            scope: Scope::All,
            proc_root,
            processes,
            processes_failing: false,
            tracked: BTreeMap::new(),
            watch,
            scan_every: scan_every.max(1),
            cycles_since_scan: u32::MAX,
            walks: 0,
            cycles_since_sandbox_check: 0,
            fd: FdState::default(),
            limits_every: limits_every.max(1),
            cycles_since_limits: u32::MAX,
            buf: vec![0; 16 * 1024],
            row: Values::new(),
            device_names: DeviceNames::default(),
        };
        if by_index {
            tracing::info!(proc_root = %collector.proc_root.display(), "the agent is in a PID namespace of its own: processes are counted from the host's /proc");
            collector.count_processes_from_index();
        }
        collector
    }

    /// Counts processes (and recognises sandboxes) from the index of
    /// `proc_root` instead of `cgroup.procs`, which hides the pids of another
    /// PID namespace. Chosen at start when needed; tests and benchmarks force it.
    pub fn count_processes_from_index(&mut self) {
        let line = cgroup_line(&self.hierarchies, &self.roots);
        self.processes = ProcessSource::Index(Box::new(ProcessIndex::new(&self.proc_root, line)));
        self.plan.retain(|f| f.source != Source::Procs);
    }

    /// Records only the containers of `scope` (set before the first cycle).
    pub fn set_scope(&mut self, scope: Scope) {
        self.scope = scope;
    }

    /// The part of the tree recorded: [`Scope::OwnPod`] turns into [`Scope::Under`] at the
    /// first walk that finds the agent's own pod.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Containers tracked now, by cgroup path.
    pub fn tracked(&self) -> &BTreeMap<String, Tracked> {
        &self.tracked
    }

    /// Walks the tree: opens new containers, forgets vanished ones, watches
    /// every directory passed through.
    pub fn scan(&mut self, errors: &mut ReadErrors) {
        let roots: Vec<&std::path::Path> = self.roots.iter().map(PathBuf::as_path).collect();
        let (tracked, index) = (&self.tracked, self.processes.index());
        let populated = |path: &str| is_populated(tracked, index, path);
        let watch = &mut self.watch;
        let mut visit = |root: usize, rel: &str| {
            if let (Some(w), Some(dir)) = (watch.as_mut(), roots.get(root)) {
                w.watch(root, dir, rel);
            }
        };
        let found =
            discovery::discover_visiting(&roots, self.mode, &self.scope, &populated, &mut visit);
        self.walks += 1;
        if let Some(uid) = self.scope.pending_pod() {
            let root = found
                .values()
                .find(|c| c.pod_uid.as_deref() == Some(uid))
                .and_then(|c| discovery::scope::kubelet_root_of(&c.cgroup_path));
            if let Some(root) = root {
                tracing::info!(kubelet_cgroup_root = %format!("/{root}"), "recording the containers of this agent's kubelet only");
                self.scope = Scope::Under(root);
                // Walk again within it, watching only its directories.
                self.watch = DirWatch::new(self.roots.len()).ok();
                return self.scan(errors);
            }
            if self.walks == 1 {
                tracing::warn!(pod_uid = %uid, "this agent's own pod is not in the cgroup tree: recording every kubelet's containers");
            }
        }
        self.tracked.retain(|path, _| found.contains_key(path));
        self.recount_fds();
        self.refresh_fd_budget();
        self.keep_reopened(errors);
        self.track(found, errors);
        self.recount_fds();
        self.check_sandboxes();
        self.cycles_since_sandbox_check = 0;
    }

    /// Forgets the containers below removed directories and discovers below
    /// the directories created since the last cycle. Returns false when
    /// events were lost (the caller walks the whole tree).
    fn scan_changes(&mut self, errors: &mut ReadErrors) -> bool {
        let Some(watch) = self.watch.as_mut() else {
            return true;
        };
        let changes = watch.drain();
        if changes.overflow {
            tracing::warn!("cgroup directory events were lost; walking the whole tree");
            return false;
        }
        for (_, rel) in &changes.removed {
            self.fd.stale = true;
            self.tracked.retain(|path, _| {
                let below = path.len() > rel.len()
                    && path.starts_with(rel.as_str())
                    && path.as_bytes()[rel.len()] == b'/';
                path != rel && !below
            });
        }
        if changes.created.is_empty() {
            return true;
        }
        let mut found = BTreeMap::new();
        let (tracked, index) = (&self.tracked, self.processes.index());
        let populated = |path: &str| is_populated(tracked, index, path);
        let (roots, scope) = (&self.roots, &self.scope);
        for (root_index, rel) in changes.created {
            let Some(root) = roots.get(root_index) else {
                continue;
            };
            let mut visit = |r: usize, dir: &str| {
                if let Some(root) = roots.get(r) {
                    watch.watch(r, root, dir);
                }
            };
            discovery::discover_new(
                root_index, root, &rel, self.mode, scope, &populated, &mut visit, &mut found,
            );
        }
        let before = self.tracked.len();
        self.track(found, errors);
        if self.tracked.len() > before {
            self.check_sandboxes();
        }
        true
    }

    /// Opens and tracks the containers of `found` not tracked yet.
    fn track(&mut self, found: BTreeMap<String, ContainerRef>, errors: &mut ReadErrors) {
        for (path, container) in found {
            if self.tracked.contains_key(&path) {
                continue;
            }
            let fd = &mut self.fd;
            let keep = fd.status.kept_files + self.plan.len() <= fd.status.budget;
            let files = match ContainerFiles::open_with(&self.plan, &path, keep, errors) {
                Ok(files) => files,
                Err(OpenError::Gone) => continue,
                Err(OpenError::Exhausted) => {
                    fd.pressure = true;
                    match ContainerFiles::open_with(&self.plan, &path, false, errors) {
                        Ok(files) => files,
                        Err(_) => continue,
                    }
                }
            };
            fd.status.kept_files += files.kept();
            if files.reopened() > 0 {
                fd.status.reopened += 1;
            }
            tracing::debug!(cgroup = %path, id = %container.short_id, "container found");
            let retry_missing = if files.missing() > 0 {
                RETRY_MISSING_CYCLES
            } else {
                0
            };
            self.tracked.insert(
                path,
                Tracked {
                    pod_uid: container.pod_uid.as_deref().map(std::sync::Arc::from),
                    container,
                    files,
                    sandbox: None,
                    sandbox_attempts: 0,
                    processes: None,
                    retry_missing,
                },
            );
        }
    }

    /// Pins the kept-files budget instead of deriving it from the open-file
    /// limit (benchmarks of the reopen path, tests).
    pub fn fix_fd_budget(&mut self, budget: usize) {
        self.fd.fixed = Some(budget);
        self.fd.status.budget = budget;
    }

    /// Files read per container on this host (the plan).
    pub fn files_per_container(&self) -> usize {
        self.plan.len()
    }

    /// Descriptor accounting, for the self-metrics.
    pub fn fd_status(&self) -> FdStatus {
        self.fd.status
    }

    /// Recomputes the kept-files budget from the open-file limit in force
    /// and the descriptors open for other things.
    pub fn refresh_fd_budget(&mut self) {
        let kept = self.fd.status.kept_files;
        let budget = match self.fd.fixed {
            Some(budget) => budget,
            None => {
                let limit = fds::current_soft_limit();
                let Some(open) = fds::open_descriptors() else {
                    // Cannot tell (no descriptor even to list them): shed.
                    self.fd.pressure = true;
                    return;
                };
                let budget = fds::kept_files_budget(limit, open.saturating_sub(kept));
                if budget < kept {
                    tracing::warn!(
                        limit,
                        open,
                        kept,
                        budget,
                        "the open-file limit went down; closing kept cgroup files"
                    );
                }
                budget
            }
        };
        if budget < kept {
            self.shed_to(budget);
        }
        self.fd.status.budget = budget;
    }

    /// Keeps the files of reopened containers open again while the budget allows.
    fn keep_reopened(&mut self, errors: &mut ReadErrors) {
        let fd = &mut self.fd;
        if fd.status.reopened == 0 || fd.pressure {
            return;
        }
        let mut kept_again = 0;
        for t in self.tracked.values_mut() {
            let closed = t.files.reopened();
            if closed == 0 {
                continue;
            }
            if fd.status.kept_files + closed > fd.status.budget {
                break;
            }
            match t.files.keep(errors) {
                Ok(n) => {
                    fd.status.kept_files += n;
                    kept_again += 1;
                }
                Err(_) => {
                    fd.pressure = true;
                    break;
                }
            }
        }
        if kept_again > 0 {
            fd.stale = true;
            tracing::info!(
                containers = kept_again,
                budget = fd.status.budget,
                "descriptors available again: cgroup files kept open"
            );
        }
    }

    /// Closes kept files until at most `budget` are kept.
    fn shed_to(&mut self, budget: usize) {
        let mut released = 0;
        for (path, t) in self.tracked.iter_mut().rev() {
            if self.fd.status.kept_files <= budget {
                break;
            }
            if t.files.kept() == 0 {
                continue;
            }
            let freed = t.files.release(&self.plan, path);
            self.fd.status.kept_files = self.fd.status.kept_files.saturating_sub(freed);
            released += 1;
        }
        self.fd.status.budget = budget;
        self.fd.stale = true;
        if released > 0 {
            tracing::warn!(
                containers = released,
                kept_files = self.fd.status.kept_files,
                budget,
                "out of file descriptors: these containers' cgroup files are now opened at each read (slower, nothing lost)"
            );
        }
    }

    /// After the kernel refused a descriptor: shed a quarter of the kept
    /// files (which frees the descriptors needed to look further), then down
    /// to the budget the limit in force allows.
    fn relieve_fd_pressure(&mut self) {
        self.fd.pressure = false;
        self.fd.status.shortages += 1;
        let kept = self.fd.status.kept_files;
        let target = kept.saturating_sub((kept / 4).max(self.plan.len()));
        self.shed_to(target);
        self.refresh_fd_budget();
    }

    /// Another part of the agent (the store) was refused a descriptor.
    pub fn descriptors_short(&mut self) {
        self.fd.pressure = true;
    }

    fn recount_fds(&mut self) {
        let (mut kept, mut reopened) = (0, 0);
        for t in self.tracked.values() {
            kept += t.files.kept();
            if t.files.reopened() > 0 {
                reopened += 1;
            }
        }
        self.fd.status.kept_files = kept;
        self.fd.status.reopened = reopened;
        self.fd.stale = false;
    }

    /// The processes of a container: from the process index when the agent
    /// has a PID namespace of its own, else its `cgroup.procs`.
    pub fn pids_of(&self, cgroup_path: &str) -> Vec<u32> {
        if let Some(index) = self.processes.index() {
            return index.pids_in(cgroup_path).to_vec();
        }
        self.procs_dir(cgroup_path)
            .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .map(|text| {
                text.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .filter(|p| *p != 0)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Full walks of the cgroup tree so far.
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Directories watched for new containers (0 without inotify).
    pub fn watched_dirs(&self) -> usize {
        self.watch.as_ref().map_or(0, DirWatch::len)
    }

    /// A directory holding the container's `cgroup.procs`.
    fn procs_dir(&self, cgroup_path: &str) -> Option<PathBuf> {
        let h = &self.hierarchies;
        let root = if h.is_v1() {
            h.v1.get("pids")
                .or_else(|| h.v1.get("cpuacct"))
                .or_else(|| h.v1.values().next())?
        } else {
            h.v2.as_ref()?
        };
        Some(root.join(cgroup_path))
    }

    /// Decides, for pod containers not decided yet, whether they are the
    /// pod's sandbox: from `cgroup.procs`, else (pids of another pid
    /// namespace) from `<proc_root>/*/cgroup`, read once for all of them.
    fn check_sandboxes(&mut self) {
        let unknown: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| {
                t.sandbox.is_none()
                    && t.sandbox_attempts < SANDBOX_ATTEMPTS
                    && t.container.pod_uid.is_some()
            })
            .map(|(p, _)| p.clone())
            .collect();
        if let Some(index) = self.processes.index() {
            let verdicts: Vec<(String, Option<bool>)> = unknown
                .into_iter()
                .map(|path| {
                    let verdict = index.is_sandbox(&path);
                    (path, verdict)
                })
                .collect();
            for (path, verdict) in verdicts {
                self.set_sandbox(&path, verdict);
            }
            return;
        }
        let mut undecided = Vec::new();
        for path in unknown {
            let verdict = self
                .procs_dir(&path)
                .and_then(|dir| discovery::is_sandbox(&dir, &self.proc_root));
            match verdict {
                Some(v) => self.set_sandbox(&path, Some(v)),
                None => undecided.push(path),
            }
        }
        if undecided.is_empty() {
            return;
        }
        let leaves: Vec<&str> = undecided
            .iter()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .collect();
        let pids = discovery::pids_by_leaf(&self.proc_root, &leaves);
        for path in &undecided {
            let leaf = path.rsplit('/').next().unwrap_or(path);
            let verdict = pids.get(leaf).and_then(|pids| {
                let pids: Vec<&str> = pids.iter().map(String::as_str).collect();
                discovery::sandbox_from_pids(&pids, &self.proc_root)
            });
            self.set_sandbox(path, verdict);
        }
    }

    /// Opens files that were missing when young containers were found.
    fn retry_missing_files(&mut self, errors: &mut ReadErrors) {
        for (path, t) in &mut self.tracked {
            if t.retry_missing == 0 {
                continue;
            }
            self.fd.stale = true;
            t.retry_missing -= 1;
            t.files.open_missing(&self.plan, path, errors);
            if t.files.missing() == 0 {
                t.retry_missing = 0;
            }
        }
    }

    fn set_sandbox(&mut self, path: &str, verdict: Option<bool>) {
        if let Some(t) = self.tracked.get_mut(path) {
            t.sandbox = verdict;
            t.sandbox_attempts = t.sandbox_attempts.saturating_add(1);
            if verdict.is_none() && t.sandbox_attempts >= SANDBOX_ATTEMPTS {
                tracing::debug!(cgroup = %path, "cannot tell whether this is a sandbox (no visible process); recorded as a container");
            }
        }
    }

    /// Brings the process index up to date (when processes are counted from it).
    fn refresh_processes(&mut self, errors: &mut ReadErrors) {
        let ProcessSource::Index(index) = &mut self.processes else {
            return;
        };
        match index.refresh() {
            Ok(stats) => {
                if self.processes_failing {
                    self.processes_failing = false;
                    tracing::info!("processes are listed again: process counts resume");
                }
                if stats.descriptors_refused > 0 {
                    errors.descriptors += stats.descriptors_refused as u64;
                }
            }
            Err(e) => {
                if !self.processes_failing {
                    self.processes_failing = true;
                    tracing::warn!(error = %e, "process counts are unknown (null) until the host's /proc can be listed");
                }
            }
        }
    }

    /// One cycle at `timestamp`: find new containers (a full walk when due),
    /// then read every container (limits and peaks too when due).
    pub fn collect(&mut self, timestamp: DateTime<Utc>, errors: &mut ReadErrors) -> Cycle {
        let refused_before = errors.descriptors;
        self.cycles_since_scan = self.cycles_since_scan.saturating_add(1);
        let watching = self.watch.as_ref().is_some_and(|w| !w.incomplete());
        let full_every = if watching && self.mode == DiscoveryMode::Kubernetes {
            RECONCILE_EVERY.max(self.scan_every)
        } else {
            self.scan_every
        };
        // The index first: discovery checks new containers for sandboxes with it.
        self.refresh_processes(errors);
        let mut walked = false;
        if self.cycles_since_scan >= full_every || !self.scan_changes(errors) {
            self.cycles_since_scan = 0;
            self.scan(errors);
            walked = true;
        }
        self.cycles_since_sandbox_check = self.cycles_since_sandbox_check.saturating_add(1);
        if !walked && self.cycles_since_sandbox_check >= self.scan_every {
            self.cycles_since_sandbox_check = 0;
            self.check_sandboxes();
        }
        self.retry_missing_files(errors);
        self.cycles_since_limits = self.cycles_since_limits.saturating_add(1);
        let refresh_limits = self.cycles_since_limits >= self.limits_every;
        if refresh_limits {
            self.cycles_since_limits = 0;
        }
        let mut containers = Vec::with_capacity(self.tracked.len());
        let mut gone = Vec::new();
        for (path, t) in &mut self.tracked {
            match t
                .files
                .read(&mut self.buf, &mut self.row, errors, refresh_limits)
            {
                Ok(()) => {
                    if let Some(index) = self.processes.index() {
                        let count = index.count(path);
                        // Threads but no process known: the index cannot tell yet (a
                        // process started since the listing), so null, never 0.
                        let threads = self.row.get(slots::PIDS);
                        let count = count.filter(|n| *n > 0 || threads.is_none_or(|t| t == 0));
                        self.row.set(slots::PROCESSES, count);
                    }
                    t.processes = self.row.get(slots::PROCESSES);
                    containers.push(ContainerSample {
                        short_id: t.container.short_id.clone(),
                        full_id: t.container.full_id.clone(),
                        cgroup_path: path.clone(),
                        values: self.row.values.clone(),
                        pod_uid: t.pod_uid.clone(),
                        sandbox: t.sandbox == Some(true),
                        devices: self.device_names.named(&self.row.devices),
                    })
                }
                Err(Gone) => gone.push(path.clone()),
            }
        }
        for path in gone {
            tracing::debug!(cgroup = %path, "container gone");
            self.tracked.remove(&path);
            self.fd.stale = true;
        }
        if errors.descriptors > refused_before {
            self.fd.pressure = true;
        }
        if self.fd.pressure {
            self.relieve_fd_pressure();
        }
        if self.fd.stale {
            self.recount_fds();
        }
        Cycle {
            timestamp: Some(timestamp),
            containers,
            network: Vec::new(),
            processes: Vec::new(),
        }
    }
}

/// The line of `/proc/<pid>/cgroup` naming the hierarchy containers are
/// tracked in (the first walk root).
fn cgroup_line(h: &Hierarchies, roots: &[PathBuf]) -> CgroupLine {
    let first = roots.first();
    if h.is_v1()
        && let Some((controller, _)) = h.v1.iter().find(|(_, path)| Some(*path) == first)
    {
        return CgroupLine::V1(controller.clone());
    }
    CgroupLine::V2
}

/// The hierarchies walked for containers: the v2 root on a v2 host, else
/// the v1 controller hierarchies (a hybrid host's unified mount only
/// supplies pressure). Kubelet creates the same tree in every v1
/// hierarchy, so Kubernetes discovery walks one (the walk is the costly
/// part of a scan); `local` walks them all.
fn walk_roots(h: &Hierarchies, mode: DiscoveryMode) -> Vec<PathBuf> {
    if !h.is_v1() {
        return h.v2.iter().cloned().collect();
    }
    if mode == DiscoveryMode::Kubernetes
        && let Some(root) = ["cpuacct", "memory", "pids", "cpu", "blkio"]
            .iter()
            .find_map(|c| h.v1.get(*c))
    {
        return vec![root.clone()];
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for root in h.v1.values() {
        if !roots.contains(root) {
            roots.push(root.clone());
        }
    }
    roots
}

#[cfg(test)]
#[path = "collector_tests.rs"]
mod tests;
