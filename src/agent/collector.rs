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
use super::slots::Values;

/// A container being sampled.
#[derive(Debug)]
pub struct Tracked {
    pub container: ContainerRef,
    files: ContainerFiles,
    /// `None` until the process check could tell.
    pub sandbox: Option<bool>,
}

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
    buf: Vec<u8>,
    row: Values,
}

impl Collector {
    pub fn new(
        hierarchies: Hierarchies,
        mode: DiscoveryMode,
        proc_root: PathBuf,
        scan_every: u32,
    ) -> Self {
        Self {
            plan: sampler::plan(&hierarchies),
            hierarchies,
            mode,
            proc_root,
            tracked: BTreeMap::new(),
            scan_every: scan_every.max(1),
            cycles_since_scan: u32::MAX,
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
        let found = discovery::discover(&roots, self.mode);
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
                },
            );
        }
        self.check_sandboxes();
    }

    /// The hierarchies walked for containers: the v2 root on a v2 host, else
    /// the v1 controller hierarchies (a hybrid host's unified mount only
    /// supplies pressure).
    fn walk_roots(&self) -> Vec<&std::path::Path> {
        let h = &self.hierarchies;
        if !h.is_v1() {
            return h.v2.as_deref().into_iter().collect();
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

    fn check_sandboxes(&mut self) {
        let unknown: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.sandbox.is_none() && t.container.pod_uid.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        for path in unknown {
            let verdict = self
                .procs_dir(&path)
                .and_then(|dir| discovery::is_sandbox(&dir, &self.proc_root));
            if let Some(t) = self.tracked.get_mut(&path) {
                t.sandbox = verdict;
            }
        }
    }

    /// One cycle at `timestamp`: rescan when due, then read every container.
    pub fn collect(&mut self, timestamp: DateTime<Utc>, errors: &mut ReadErrors) -> Cycle {
        self.cycles_since_scan = self.cycles_since_scan.saturating_add(1);
        if self.cycles_since_scan >= self.scan_every {
            self.cycles_since_scan = 0;
            self.scan(errors);
        }
        let mut containers = Vec::with_capacity(self.tracked.len());
        let mut gone = Vec::new();
        for (path, t) in &self.tracked {
            match t.files.read(&mut self.buf, &mut self.row, errors) {
                Ok(()) => containers.push(ContainerSample {
                    short_id: t.container.short_id.clone(),
                    full_id: t.container.full_id.clone(),
                    cgroup_path: path.clone(),
                    values: self.row.values.clone(),
                }),
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
