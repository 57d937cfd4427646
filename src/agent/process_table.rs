//! The processes inside each container (opt-in: `--processes`), every
//! interval: the top K by CPU and by memory, plus the processes that started
//! or exited (at most [`ProcessConfig::max_events`] per container and interval,
//! the overflow counted).
//!
//! ```text
//!  container's pids (cgroup.procs, or the host /proc index) ─▶ /proc/<pid>/stat every interval
//!     new (pid, start time) ─▶ status (NSpid) and cmdline, once
//!     top K by CPU ∪ top K by RSS ─▶ smaps_rollup every `memory_every` intervals (PSS, USS, swap)
//!     gone, or the pid's start time changed ─▶ an exit row
//! ```
//!
//! A process is (pid, start time): a recycled pid is a new process, never a
//! continuation of the old one's counters. A `/proc/<pid>` that vanished or
//! does not parse is skipped for that interval. `smaps_rollup` of another
//! user's process needs `CAP_SYS_PTRACE` ([`capabilities`]); without it PSS,
//! USS and swap are null and one warning says so.

pub mod capabilities;
pub mod proc_files;
pub mod select;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proc_files::{Rollup, Stat};
use select::Candidate;

use super::contract::Cycle;

/// What is kept of each container's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Processes kept per container by CPU, and again by memory.
    pub top_k: usize,
    /// PSS, USS and swap are read every this many intervals.
    pub memory_every: u32,
    /// Starts and exits recorded per container and interval beyond the top K.
    pub max_events: usize,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            top_k: 10,
            memory_every: 10,
            max_events: 20,
        }
    }
}

/// Why a row is there besides being in a top K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An ordinary interval.
    None,
    /// First seen this interval (not at the container's first sight).
    Start,
    /// Gone this interval (or its pid now belongs to another process): the
    /// row carries its last values, the timestamp is when it was missed.
    Exit,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::None => "",
            Event::Start => "start",
            Event::Exit => "exit",
        }
    }
}

/// One process in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSample {
    /// Short id of its container.
    pub container: String,
    /// Pid as the host sees it.
    pub pid: u32,
    /// Pid inside the container's PID namespace.
    pub nspid: Option<i64>,
    pub ppid: u32,
    pub command: Arc<str>,
    /// Start time, ms since the epoch.
    pub start_ms: i64,
    /// User plus system CPU time since it started, µs.
    pub cpu_usec: i64,
    pub rss_bytes: i64,
    pub threads: i64,
    pub memory: Rollup,
    pub event: Event,
}

/// The host's clock tick and page size, and when it booted: what turns
/// `stat`'s ticks and pages into µs, ms since the epoch and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostClock {
    pub ticks_per_second: u64,
    pub page_size: i64,
    pub boot_ms: i64,
}

impl HostClock {
    /// From this machine (`sysconf`) and `<proc_root>/stat`.
    pub fn read(proc_root: &Path) -> Option<Self> {
        let stat = std::fs::read_to_string(proc_root.join("stat")).ok()?;
        Some(Self {
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1),
            page_size: rustix::param::page_size() as i64,
            boot_ms: proc_files::parse_boot_ms(&stat)?,
        })
    }

    fn usec(&self, ticks: u64) -> i64 {
        i64::try_from(u128::from(ticks) * 1_000_000 / u128::from(self.ticks_per_second))
            .unwrap_or(i64::MAX)
    }

    fn start_ms(&self, start_ticks: u64) -> i64 {
        self.boot_ms.saturating_add(self.usec(start_ticks) / 1000)
    }
}

/// How many more intervals an empty command line is read again.
const COMMAND_RETRIES: u8 = 3;

/// A process as last seen.
#[derive(Debug, Clone)]
struct Known {
    pid: u32,
    start_ticks: u64,
    nspid: Option<i64>,
    command: Arc<str>,
    /// Intervals left to read the command line again: a process caught in its
    /// exec has no arguments yet (the kernel lets the parent run on before it
    /// sets them), and reads as `[comm]` until then.
    command_retries: u8,
    stat: Stat,
    /// CPU ticks at the previous interval (for the CPU ranking).
    previous_ticks: Option<u64>,
    memory: Rollup,
    seen: u64,
}

#[derive(Debug, Default)]
struct Container {
    processes: HashMap<u32, Known>,
}

/// Counters of what the table could not keep or read (self-metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    /// Starts and exits beyond `max_events` in an interval, not recorded.
    pub events_dropped: u64,
    /// `smaps_rollup` refused (no `CAP_SYS_PTRACE` for another user's process).
    pub memory_refused: u64,
}

/// Every container's processes, sampled each interval.
#[derive(Debug)]
pub struct ProcessTable {
    proc_root: PathBuf,
    clock: HostClock,
    config: ProcessConfig,
    cycles: u64,
    containers: HashMap<String, Container>,
    counts: ProcessCounts,
    warned_refused: bool,
}

impl ProcessTable {
    pub fn new(proc_root: &Path, clock: HostClock, config: ProcessConfig) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            clock,
            config,
            cycles: 0,
            containers: HashMap::new(),
            counts: ProcessCounts::default(),
            warned_refused: false,
        }
    }

    pub fn counts(&self) -> ProcessCounts {
        self.counts
    }

    /// One interval: the kept processes of every (non-sandbox) container of
    /// the cycle; containers gone from the cycle are forgotten.
    pub fn sample(
        &mut self,
        cycle: &Cycle,
        pids_of: &dyn Fn(&str) -> Vec<u32>,
    ) -> Vec<ProcessSample> {
        self.cycles += 1;
        let now = self.cycles;
        let read_memory = self.config.memory_every <= 1
            || (now - 1).is_multiple_of(u64::from(self.config.memory_every));
        let mut out = Vec::new();
        let mut containers = std::mem::take(&mut self.containers);
        let mut kept = HashMap::with_capacity(cycle.containers.len());
        for sample in cycle.containers.iter().filter(|c| !c.sandbox) {
            let mut container = containers.remove(&sample.short_id);
            let first_sight = container.is_none();
            let container = container.get_or_insert_with(Container::default);
            let pids = pids_of(&sample.cgroup_path);
            self.sample_container(
                &sample.short_id,
                container,
                &pids,
                first_sight,
                read_memory,
                now,
                &mut out,
            );
            kept.insert(sample.short_id.clone(), std::mem::take(container));
        }
        self.containers = kept;
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn sample_container(
        &mut self,
        short_id: &str,
        container: &mut Container,
        pids: &[u32],
        first_sight: bool,
        read_memory: bool,
        now: u64,
        out: &mut Vec<ProcessSample>,
    ) {
        let mut started = Vec::new();
        let mut exited: Vec<Known> = Vec::new();
        for &pid in pids {
            let Some(stat) = self.read_stat(pid) else {
                continue; // gone since listed, or unreadable: skipped this interval
            };
            match container.processes.get_mut(&pid) {
                Some(known) if known.start_ticks == stat.start_ticks => {
                    if known.command_retries > 0 {
                        known.command_retries -= 1;
                        if let Some(line) = self
                            .read_file(pid, "cmdline")
                            .and_then(|b| proc_files::parse_cmdline(&b))
                        {
                            known.command = Arc::from(line);
                            known.command_retries = 0;
                        }
                    }
                    known.previous_ticks = Some(known.stat.cpu_ticks);
                    known.stat = stat;
                    known.seen = now;
                }
                other => {
                    // New, or the pid was recycled: the old process exited.
                    if let Some(old) = other {
                        exited.push(old.clone());
                    }
                    let known = self.first_read(pid, stat, now);
                    container.processes.insert(pid, known);
                    if !first_sight {
                        started.push(pid);
                    }
                }
            }
        }
        container.processes.retain(|_, known| {
            if known.seen == now {
                return true;
            }
            exited.push(known.clone());
            false
        });

        let candidates: Vec<Candidate> = container
            .processes
            .iter()
            .map(|(pid, k)| Candidate {
                pid: *pid,
                // A new process's whole CPU time is recent.
                cpu: k.stat.cpu_ticks - k.previous_ticks.unwrap_or(0).min(k.stat.cpu_ticks),
                rss: k.stat.rss_pages,
            })
            .collect();
        let top = select::top_k(&candidates, self.config.top_k);
        let (events_started, events_exited, dropped) =
            select::bounded_events(&top, &started, exited.len(), self.config.max_events);
        self.counts.events_dropped += dropped as u64;

        let mut rows: Vec<(u32, Event)> = top
            .iter()
            .map(|pid| {
                let event = if started.contains(pid) {
                    Event::Start
                } else {
                    Event::None
                };
                (*pid, event)
            })
            .collect();
        rows.extend(events_started.iter().map(|pid| (*pid, Event::Start)));
        rows.sort_unstable_by_key(|(pid, _)| *pid);
        for (pid, event) in rows {
            if read_memory
                && let Some(memory) = self.read_memory(pid)
                && let Some(known) = container.processes.get_mut(&pid)
            {
                known.memory = memory;
            }
            let Some(known) = container.processes.get(&pid) else {
                continue;
            };
            let memory = if read_memory {
                known.memory
            } else {
                Rollup::default()
            };
            out.push(self.row(short_id, pid, known, memory, event));
        }
        exited.sort_unstable_by_key(|k| k.stat.start_ticks);
        for known in exited.iter().take(events_exited) {
            out.push(self.row(short_id, known.pid, known, Rollup::default(), Event::Exit));
        }
    }

    fn row(
        &self,
        short_id: &str,
        pid: u32,
        known: &Known,
        memory: Rollup,
        event: Event,
    ) -> ProcessSample {
        ProcessSample {
            container: short_id.to_string(),
            pid,
            nspid: known.nspid,
            ppid: known.stat.ppid,
            command: known.command.clone(),
            start_ms: self.clock.start_ms(known.start_ticks),
            cpu_usec: self.clock.usec(known.stat.cpu_ticks),
            rss_bytes: known.stat.rss_pages.saturating_mul(self.clock.page_size),
            threads: known.stat.threads,
            memory,
            event,
        }
    }

    /// A new process: its NSpid and command line, read once.
    fn first_read(&mut self, pid: u32, stat: Stat, now: u64) -> Known {
        let nspid = self
            .read_file(pid, "status")
            .and_then(|b| proc_files::parse_nspid(&String::from_utf8_lossy(&b)));
        let line = self
            .read_file(pid, "cmdline")
            .and_then(|b| proc_files::parse_cmdline(&b));
        let command_retries = if line.is_some() { 0 } else { COMMAND_RETRIES };
        let command = line.unwrap_or_else(|| format!("[{}]", stat.comm));
        Known {
            pid,
            start_ticks: stat.start_ticks,
            nspid,
            command: Arc::from(command),
            command_retries,
            stat,
            previous_ticks: None,
            memory: Rollup::default(),
            seen: now,
        }
    }

    fn read_stat(&mut self, pid: u32) -> Option<Stat> {
        let bytes = self.read_file(pid, "stat")?;
        proc_files::parse_stat(std::str::from_utf8(&bytes).ok()?)
    }

    fn read_memory(&mut self, pid: u32) -> Option<Rollup> {
        let path = self.proc_root.join(pid.to_string()).join("smaps_rollup");
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(proc_files::parse_rollup(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                self.counts.memory_refused += 1;
                if !self.warned_refused {
                    self.warned_refused = true;
                    tracing::warn!(path = %path.display(), "cannot read another user's smaps_rollup: PSS, USS and swap stay null (the agent needs CAP_SYS_PTRACE: spec.processes.enabled grants it)");
                }
                None
            }
            Err(_) => None,
        }
    }

    fn read_file(&self, pid: u32, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.proc_root.join(pid.to_string()).join(name)).ok()
    }
}

#[cfg(test)]
mod tests;
