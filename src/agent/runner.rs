//! The agent's async shell: a timer on a fixed grid, each cycle's blocking
//! work on the blocking pool, the cycle published on a watch channel, and a
//! clean stop that writes the open interval.
//!
//! Timestamps are the wall-clock time each tick was due, on the interval
//! grid ([`super::clock`]): a late cycle does not shift later ones, missed
//! ticks are skipped rather than bunched, and a wall-clock step is followed
//! (and logged, counted, and the open file closed) instead of leaving the
//! samples on a clock that no longer exists.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::clock::WallClock;
use super::collector::Collector;
use super::contract::{Cycle, CycleReceiver, PodMetadata};
use super::discovery::{DiscoveryMode, Scope};
use super::fds;
use super::mountinfo::{self, Hierarchies, HierarchyError};
use super::network::PodNetwork;
use super::prometheus::SelfMetrics;
use super::recorder::{Recorder, RecorderConfig, RecorderHooks};
use super::sampler::ReadErrors;
use crate::store::layout::{self, BadNodeName};
use crate::store::lock::{self, DataDirLock, Holder, LockError};
use crate::store::retention::Policy;

/// Everything the agent needs, resolved from flags.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    pub node_name: String,
    pub interval: Duration,
    pub rotation: Duration,
    /// `None`: find the hierarchies from /proc/self/mountinfo.
    pub cgroup_root: Option<PathBuf>,
    pub proc_root: PathBuf,
    pub retention_max_age: Duration,
    pub retention_max_bytes: Option<u64>,
    pub discovery: DiscoveryMode,
    /// The part of the cgroup tree recorded (one kubelet's pods when several share the host).
    pub scope: Scope,
    /// Walk the whole cgroup tree every this many cycles when inotify is
    /// unavailable and in `local` mode (otherwise new containers come from
    /// events, and a full walk runs every [`super::collector::RECONCILE_EVERY`]).
    pub scan_every: u32,
    /// Re-read limits and peaks every this many cycles.
    pub limits_every: u32,
    /// How long to wait for another agent to release the data directory
    /// (a rolling update's old pod finishing its last file) before giving up.
    pub lock_wait: Duration,
    /// How often the open interval's tail file is fsynced: what a kernel or
    /// node crash may lose (a crash of the agent alone loses at most the cycle
    /// being written).
    pub tail_sync: Duration,
    /// The kubelet asked for each container's filesystem (`None`: fs_* columns null).
    pub kubelet: Option<super::kubelet::KubeletConfig>,
    /// Each container's processes (`None`: no processes dataset).
    pub processes: Option<super::process_table::ProcessConfig>,
}

/// Why the agent could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Hierarchy(#[from] HierarchyError),
    #[error(transparent)]
    NodeName(#[from] BadNodeName),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    DataDirNotOwned(#[from] super::data_dir::DataDirError),
    #[error(
        "--interval must be at least 10ms, and --rotation at least 1s and at least the interval (got {interval:?}, {rotation:?}); file names have one-second resolution"
    )]
    Timing {
        interval: Duration,
        rotation: Duration,
    },
    #[error("a collection cycle panicked: {0}")]
    Panicked(String),
    #[error(
        "another agent writes this data directory: {source}; gave up after waiting {waited:?} \
         (two monitors must not share a data directory on one node)"
    )]
    Locked { source: LockError, waited: Duration },
    #[error(transparent)]
    Lock(LockError),
}

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    /// The latest cycle (an empty one before the first).
    pub cycles: CycleReceiver,
    /// Self-metrics (the ones passed to [`Agent::start`]).
    pub metrics: SelfMetrics,
    /// Finishes after `stop` once the open interval is written.
    pub task: JoinHandle<Result<(), AgentError>>,
}

/// Entry point for code that runs an agent (modes, tests).
pub struct Agent;

impl Agent {
    /// Checks the configuration, finds the cgroup hierarchies and starts
    /// sampling on the current tokio runtime until `stop` is cancelled. The
    /// task first takes the data directory's lock (waiting up to
    /// `config.lock_wait`); nothing in the directory is touched before.
    pub fn start(
        config: AgentConfig,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        stop: CancellationToken,
    ) -> Result<AgentHandle, AgentError> {
        Self::start_inner(
            config,
            None,
            pod_metadata,
            metrics,
            stop,
            RecorderHooks::default(),
        )
    }

    /// [`Agent::start`] with the lock already taken (see [`lock_data_dir`]).
    pub fn start_locked(
        config: AgentConfig,
        lock: DataDirLock,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        stop: CancellationToken,
    ) -> Result<AgentHandle, AgentError> {
        Self::start_hooked(
            config,
            lock,
            pod_metadata,
            metrics,
            stop,
            RecorderHooks::default(),
        )
    }

    /// [`Agent::start_locked`] with other parts hooked into the recorder
    /// (the export uploader: its records under retention, told of every file
    /// published and removed). The event sender is dropped when the agent stops.
    pub fn start_hooked(
        config: AgentConfig,
        lock: DataDirLock,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        stop: CancellationToken,
        hooks: RecorderHooks,
    ) -> Result<AgentHandle, AgentError> {
        Self::start_inner(config, Some(lock), pod_metadata, metrics, stop, hooks)
    }

    fn start_inner(
        config: AgentConfig,
        lock: Option<DataDirLock>,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        stop: CancellationToken,
        hooks: RecorderHooks,
    ) -> Result<AgentHandle, AgentError> {
        if config.interval < Duration::from_millis(10)
            || config.rotation < config.interval
            || config.rotation < Duration::from_secs(1)
        {
            return Err(AgentError::Timing {
                interval: config.interval,
                rotation: config.rotation,
            });
        }
        layout::check_node_name(&config.node_name)?;
        let hierarchies = find_hierarchies(config.cgroup_root.as_deref())?;
        create_data_dir(&config.data_dir)?;
        let (tx, rx) = watch::channel(Arc::new(Cycle::default()));
        let task_metrics = metrics.clone();
        let task = tokio::spawn(async move {
            let lock = match lock {
                Some(lock) => lock,
                None => match lock_data_dir(&config, &stop).await? {
                    Some(lock) => lock,
                    None => return Ok(()), // stopped while waiting
                },
            };
            tracing::info!(
                data_dir = %config.data_dir.display(),
                node = %config.node_name,
                interval = ?config.interval,
                rotation = ?config.rotation,
                v2 = ?hierarchies.v2,
                v1 = ?hierarchies.v1.keys().collect::<Vec<_>>(),
                "agent starting"
            );
            let limit = fds::raise_nofile_limit();
            let mut collector = Collector::new(
                hierarchies,
                config.discovery,
                config.proc_root.clone(),
                config.scan_every,
                config.limits_every,
            );
            collector.set_scope(config.scope.clone());
            let files_per_container = collector.files_per_container().max(1);
            collector.refresh_fd_budget();
            let budget = collector.fd_status().budget;
            tracing::info!(
                soft_limit_before = limit.soft_before,
                soft_limit = limit.soft,
                hard_limit = limit.hard,
                kept_files_budget = budget,
                containers_with_kept_files = budget / files_per_container,
                "open-file limit; containers beyond the budget are read by reopening their files each cycle"
            );
            let recorder_config = RecorderConfig {
                data_dir: config.data_dir.clone(),
                node: config.node_name.clone(),
                rotation: config.rotation,
                policy: Policy {
                    max_age: config.retention_max_age,
                    max_bytes: config.retention_max_bytes,
                },
                tail_sync: config.tail_sync.max(config.interval),
            };
            let recorder_metrics = task_metrics.clone();
            let network_pods = pod_metadata.clone();
            let recorder = tokio::task::spawn_blocking(move || {
                Recorder::with_hooks(
                    recorder_config,
                    pod_metadata,
                    recorder_metrics,
                    Utc::now(),
                    hooks,
                )
            })
            .await
            .map_err(|e| AgentError::Panicked(e.to_string()))?;
            let fs = config
                .kubelet
                .clone()
                .map(|k| super::kubelet::start(k, stop.clone()).0);
            let processes = config.processes.and_then(|p| {
                let clock = super::process_table::HostClock::read(&config.proc_root);
                if clock.is_none() {
                    tracing::warn!(proc_root = %config.proc_root.display(), "cannot read the host's boot time and clock ticks from --proc-root; processes are not recorded");
                }
                clock.map(|c| super::process_table::ProcessTable::new(&config.proc_root, c, p))
            });
            let state = State {
                processes,
                fs,
                fs_columns: super::kubelet::columns(),
                network: PodNetwork::new(&config.proc_root),
                pods: network_pods,
                collector,
                recorder,
            };
            let result = run_loop(config.interval, state, tx, task_metrics, stop).await;
            // Released only after the last file and index are written.
            drop(lock);
            result
        });
        Ok(AgentHandle {
            cycles: rx,
            metrics,
            task,
        })
    }
}

fn create_data_dir(dir: &std::path::Path) -> Result<(), AgentError> {
    std::fs::create_dir_all(dir).map_err(|source| AgentError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    // Never write where a link or another user put the directory.
    super::data_dir::check_owned(dir)?;
    Ok(())
}

/// How often a waiting agent tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(250);

/// Takes the data directory's lock, waiting up to `config.lock_wait` while
/// another agent holds it (logged once, naming the holder). `Ok(None)` when
/// `stop` is cancelled meanwhile.
pub async fn lock_data_dir(
    config: &AgentConfig,
    stop: &CancellationToken,
) -> Result<Option<DataDirLock>, AgentError> {
    create_data_dir(&config.data_dir)?;
    let holder = Holder::this_process(&config.node_name);
    let started = std::time::Instant::now();
    let mut logged = false;
    loop {
        match lock::try_lock(&config.data_dir, &holder) {
            Ok(lock) => {
                if logged {
                    tracing::info!(path = %lock.path().display(), waited = ?started.elapsed(), "data directory released by the other agent; taking over");
                }
                return Ok(Some(lock));
            }
            Err(source @ LockError::Held { .. }) => {
                let waited = started.elapsed();
                if waited >= config.lock_wait {
                    return Err(AgentError::Locked { source, waited });
                }
                if !logged {
                    tracing::warn!(error = %source, wait = ?config.lock_wait, "data directory in use by another agent; waiting for it to stop (rolling update)");
                    logged = true;
                }
            }
            Err(e) => return Err(AgentError::Lock(e)),
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(LOCK_RETRY) => {}
        }
    }
}

/// The hierarchies of `--cgroup-root`, or of this process's mounts.
pub fn find_hierarchies(
    cgroup_root: Option<&std::path::Path>,
) -> Result<Hierarchies, HierarchyError> {
    match cgroup_root {
        Some(root) => mountinfo::from_root_dir(root),
        None => mountinfo::from_mountinfo_file(std::path::Path::new("/proc/self/mountinfo")),
    }
}

struct State {
    collector: Collector,
    recorder: Recorder,
    network: PodNetwork,
    /// Pod metadata, for which pods use the host's network.
    pods: Option<Arc<dyn PodMetadata>>,
    /// The kubelet's newest filesystem figures.
    fs: Option<super::kubelet::FsReceiver>,
    fs_columns: [Option<usize>; 3],
    /// Each container's processes (`--processes`).
    processes: Option<super::process_table::ProcessTable>,
}

impl State {
    /// One cycle's blocking work; `stepped_back` after a wall-clock step back.
    fn step(
        &mut self,
        timestamp: DateTime<Utc>,
        late: bool,
        stepped_back: bool,
        metrics: &SelfMetrics,
    ) -> Arc<Cycle> {
        let started = std::time::Instant::now();
        if stepped_back {
            // The open interval carries the old clock's times: written now,
            // so no file mixes two clocks.
            self.recorder.rotate(timestamp);
        }
        let mut errors = ReadErrors::default();
        let mut cycle = self.collector.collect(timestamp, &mut errors);
        let collector = &self.collector;
        let pods = &self.pods;
        self.network
            .sample(&mut cycle, &|path| collector.pids_of(path), &|uid| {
                pods.as_ref()?.lookup_pod(uid).map(|p| p.host_network)
            });
        self.apply_filesystems(&mut cycle);
        self.recorder.filter(&mut cycle);
        if let Some(table) = &mut self.processes {
            cycle.processes = table.sample(&cycle, &|path| collector.pids_of(path));
            metrics.set_process_counts(table.counts());
        }
        self.recorder.record(&mut cycle, self.collector.tracked());
        if self.recorder.take_descriptor_shortage() {
            self.collector.descriptors_short();
        }
        for _ in 0..errors.permission {
            metrics.read_error("permission");
        }
        for _ in 0..errors.io {
            metrics.read_error("io");
        }
        for _ in 0..errors.descriptors {
            metrics.read_error("descriptors");
        }
        metrics.set_fds(self.collector.fd_status());
        metrics.cycle_done(started.elapsed(), late, cycle.containers.len());
        Arc::new(cycle)
    }
}

impl State {
    /// Sets each app container's fs_* columns from the kubelet's newest answer.
    fn apply_filesystems(&self, cycle: &mut Cycle) {
        let (Some(fs), Some(pods)) = (&self.fs, &self.pods) else {
            return;
        };
        let fs = fs.borrow().clone();
        if fs.is_empty() {
            return;
        }
        for sample in cycle.containers.iter_mut().filter(|c| !c.sandbox) {
            if let Some(info) = pods.lookup(&sample.full_id)
                && let Some(stats) =
                    super::kubelet::lookup(&fs, &info.pod_uid, &info.container_name)
            {
                super::kubelet::apply(stats, &self.fs_columns, &mut sample.values);
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A ticker whose first tick is `delay` from now (a wall-grid point).
fn grid_ticker(delay: Duration, interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(Instant::now() + delay, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticker
}

/// First tick: the next multiple of `interval` in wall-clock time, so
/// samples of different agents line up.
fn first_tick(now: DateTime<Utc>, interval: Duration) -> (DateTime<Utc>, Duration) {
    let step = interval.as_millis().max(1) as i64;
    let now_ms = now.timestamp_millis();
    let next_ms = (now_ms / step + 1) * step;
    let wall = Utc.timestamp_millis_opt(next_ms).single().unwrap_or(now);
    (wall, Duration::from_millis((next_ms - now_ms) as u64))
}

async fn run_loop(
    interval: Duration,
    mut state: State,
    tx: watch::Sender<Arc<Cycle>>,
    metrics: SelfMetrics,
    stop: CancellationToken,
) -> Result<(), AgentError> {
    let origin = Instant::now();
    let mut clock = WallClock::new(interval);
    let (_, delay) = first_tick(Utc::now(), interval);
    let mut ticker = grid_ticker(delay, interval);
    loop {
        let tick = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            tick = ticker.tick() => tick,
        };
        let (wall_now, mono_now) = (Utc::now(), Instant::now());
        let late_by = mono_now.saturating_duration_since(tick);
        let late = late_by > interval / 2;
        let wall_due_ms = wall_now.timestamp_millis() - millis(late_by);
        let t = clock.tick(wall_due_ms, millis(tick.duration_since(origin)));
        if let Some(step_ms) = t.step_ms {
            let direction = if step_ms > 0 { "forward" } else { "backward" };
            tracing::warn!(
                step_ms,
                direction,
                "the wall clock was stepped; samples follow it (see README: Reliability)"
            );
            metrics.reliability().clock_step(direction);
        }
        if let Some(delay) = t.realign {
            ticker = grid_ticker(delay, interval);
        }
        let timestamp = DateTime::from_timestamp_millis(t.timestamp_ms).unwrap_or(wall_now);
        let stepped_back = t.step_ms.is_some_and(|s| s < 0);
        let m = metrics.clone();
        let (back, cycle) = tokio::task::spawn_blocking(move || {
            let cycle = state.step(timestamp, late, stepped_back, &m);
            (state, cycle)
        })
        .await
        .map_err(|e| AgentError::Panicked(e.to_string()))?;
        state = back;
        tx.send_replace(cycle);
    }
    let now = Utc::now();
    tokio::task::spawn_blocking(move || {
        state.recorder.finish(now);
        tracing::info!("agent stopped; open interval written");
    })
    .await
    .map_err(|e| AgentError::Panicked(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_tick_is_on_the_interval_grid() {
        let now = Utc.timestamp_millis_opt(1_700_000_000_250).unwrap();
        let (wall, delay) = first_tick(now, Duration::from_secs(1));
        assert_eq!(wall.timestamp_millis(), 1_700_000_001_000);
        assert_eq!(delay, Duration::from_millis(750));
        let (wall, _) = first_tick(now, Duration::from_millis(500));
        assert_eq!(wall.timestamp_millis(), 1_700_000_000_500);
    }
}
