//! One collection cycle, synchronously: rescan the tree when due, read every
//! tracked container's files, return the [`Cycle`].
//!
//! Containers that vanish (between scan and read, or between cycles) are
//! dropped silently; the others are unaffected. New ones are opened at the
//! next scan, and checked once for being a pod sandbox.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::contract::{ContainerSample, Cycle};
use super::discovery::{self, ContainerRef, DiscoveryMode};
use super::mountinfo::Hierarchies;
use super::sampler::{self, ContainerFiles, Gone, PlannedFile, ReadErrors};
use super::slots::{self, Values};

/// A container being sampled.
#[derive(Debug)]
pub struct Tracked {
    pub container: ContainerRef,
    files: ContainerFiles,
    /// `None` until the process check could tell.
    pub sandbox: Option<bool>,
    /// Scans that could not tell yet; the check stops after a few.
    sandbox_attempts: u8,
    /// Processes in the last sample (`cgroup.procs`): `local` discovery
    /// trusts it instead of re-reading the file at each scan.
    processes: Option<i64>,
}

/// Scans after which an undecided sandbox check is given up (not a sandbox).
const SANDBOX_ATTEMPTS: u8 = 5;

/// Discovery plus sampling state, kept across cycles.
#[derive(Debug)]
pub struct Collector {
    hierarchies: Hierarchies,
    plan: Vec<PlannedFile>,
    mode: DiscoveryMode,
    proc_root: PathBuf,
    tracked: BTreeMap<String, Tracked>,
    /// Rescan the tree every this many cycles (1 = every cycle).
    scan_every: u32,
    cycles_since_scan: u32,
    /// Re-read limits and peaks every this many cycles (1 = every cycle).
    limits_every: u32,
    cycles_since_limits: u32,
    buf: Vec<u8>,
    row: Values,
}

impl Collector {
    pub fn new(
        hierarchies: Hierarchies,
        mode: DiscoveryMode,
        proc_root: PathBuf,
        scan_every: u32,
        limits_every: u32,
    ) -> Self {
        Self {
            plan: sampler::plan(&hierarchies),
            hierarchies,
            mode,
            proc_root,
            tracked: BTreeMap::new(),
            scan_every: scan_every.max(1),
            cycles_since_scan: u32::MAX,
            limits_every: limits_every.max(1),
            cycles_since_limits: u32::MAX,
            buf: vec![0; 16 * 1024],
            row: Values::new(),
        }
    }

    /// Containers tracked now, by cgroup path.
    pub fn tracked(&self) -> &BTreeMap<String, Tracked> {
        &self.tracked
    }

    /// Walks the tree: opens new containers, forgets vanished ones.
    pub fn scan(&mut self, errors: &mut ReadErrors) {
        let roots = self.walk_roots();
        let populated = |path: &str| {
            self.tracked
                .get(path)
                .is_some_and(|t| t.processes.is_some_and(|n| n > 0))
        };
        let found = discovery::discover(&roots, self.mode, &populated);
        self.tracked.retain(|path, _| found.contains_key(path));
        for (path, container) in found {
            if self.tracked.contains_key(&path) {
                continue;
            }
            let Ok(files) = ContainerFiles::open(&self.plan, &path, errors) else {
                continue; // gone already
            };
            tracing::debug!(cgroup = %path, id = %container.short_id, "container found");
            self.tracked.insert(
                path,
                Tracked {
                    container,
                    files,
                    sandbox: None,
                    sandbox_attempts: 0,
                    processes: None,
                },
            );
        }
        self.check_sandboxes();
    }

    /// The hierarchies walked for containers: the v2 root on a v2 host, else
    /// the v1 controller hierarchies (a hybrid host's unified mount only
    /// supplies pressure). Kubelet creates the same tree in every v1
    /// hierarchy, so Kubernetes discovery walks one (the walk is the costly
    /// part of a scan); `local` walks them all.
    fn walk_roots(&self) -> Vec<&std::path::Path> {
        let h = &self.hierarchies;
        if !h.is_v1() {
            return h.v2.as_deref().into_iter().collect();
        }
        if self.mode == DiscoveryMode::Kubernetes
            && let Some(root) = ["cpuacct", "memory", "pids", "cpu", "blkio"]
                .iter()
                .find_map(|c| h.v1.get(*c))
        {
            return vec![root.as_path()];
        }
        let mut roots: Vec<&std::path::Path> = Vec::new();
        for root in h.v1.values() {
            if !roots.contains(&root.as_path()) {
                roots.push(root);
            }
        }
        roots
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

    fn set_sandbox(&mut self, path: &str, verdict: Option<bool>) {
        if let Some(t) = self.tracked.get_mut(path) {
            t.sandbox = verdict;
            t.sandbox_attempts = t.sandbox_attempts.saturating_add(1);
            if verdict.is_none() && t.sandbox_attempts >= SANDBOX_ATTEMPTS {
                tracing::debug!(cgroup = %path, "cannot tell whether this is a sandbox (no visible process); recorded as a container");
            }
        }
    }

    /// One cycle at `timestamp`: rescan when due, then read every container
    /// (limits and peaks too when due).
    pub fn collect(&mut self, timestamp: DateTime<Utc>, errors: &mut ReadErrors) -> Cycle {
        self.cycles_since_scan = self.cycles_since_scan.saturating_add(1);
        if self.cycles_since_scan >= self.scan_every {
            self.cycles_since_scan = 0;
            self.scan(errors);
        }
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
                    t.processes = self.row.get(slots::PROCESSES);
                    containers.push(ContainerSample {
                        short_id: t.container.short_id.clone(),
                        full_id: t.container.full_id.clone(),
                        cgroup_path: path.clone(),
                        values: self.row.values.clone(),
                    })
                }
                Err(Gone) => gone.push(path.clone()),
            }
        }
        for path in gone {
            tracing::debug!(cgroup = %path, "container gone");
            self.tracked.remove(&path);
        }
        Cycle {
            timestamp: Some(timestamp),
            containers,
        }
    }
}
