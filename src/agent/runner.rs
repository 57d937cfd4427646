//! The agent's async shell: a timer on a fixed grid, each cycle's blocking
//! work on the blocking pool, the cycle published on a watch channel, and a
//! clean stop that writes the open interval.
//!
//! Timestamps are the tick's place on the grid (`start + n * interval`), not
//! the time the read happened, so a late cycle does not shift later ones;
//! missed ticks are skipped rather than bunched.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::collector::Collector;
use super::contract::{Cycle, CycleReceiver, PodMetadata};
use super::discovery::DiscoveryMode;
use super::mountinfo::{self, Hierarchies, HierarchyError};
use super::prometheus::SelfMetrics;
use super::recorder::{Recorder, RecorderConfig};
use super::sampler::ReadErrors;
use crate::store::layout::{self, BadNodeName};
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
    /// Walk the whole cgroup tree every this many cycles when inotify is
    /// unavailable and in `local` mode (otherwise new containers come from
    /// events, and a full walk runs every [`super::collector::RECONCILE_EVERY`]).
    pub scan_every: u32,
    /// Re-read limits and peaks every this many cycles.
    pub limits_every: u32,
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
    #[error(
        "--interval must be at least 10ms, and --rotation at least 1s and at least the interval (got {interval:?}, {rotation:?}); file names have one-second resolution"
    )]
    Timing {
        interval: Duration,
        rotation: Duration,
    },
    #[error("a collection cycle panicked: {0}")]
    Panicked(String),
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
    /// sampling on the current tokio runtime until `stop` is cancelled.
    pub fn start(
        config: AgentConfig,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        stop: CancellationToken,
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
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AgentError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            node = %config.node_name,
            interval = ?config.interval,
            rotation = ?config.rotation,
            v2 = ?hierarchies.v2,
            v1 = ?hierarchies.v1.keys().collect::<Vec<_>>(),
            "agent starting"
        );
        let (tx, rx) = watch::channel(Arc::new(Cycle::default()));
        let collector = Collector::new(
            hierarchies,
            config.discovery,
            config.proc_root.clone(),
            config.scan_every,
            config.limits_every,
        );
        let recorder = Recorder::new(
            RecorderConfig {
                data_dir: config.data_dir.clone(),
                node: config.node_name.clone(),
                rotation: config.rotation,
                policy: Policy {
                    max_age: config.retention_max_age,
                    max_bytes: config.retention_max_bytes,
                },
            },
            pod_metadata,
            metrics.clone(),
            Utc::now(),
        );
        let task = tokio::spawn(run_loop(
            config.interval,
            State {
                collector,
                recorder,
            },
            tx,
            metrics.clone(),
            stop,
        ));
        Ok(AgentHandle {
            cycles: rx,
            metrics,
            task,
        })
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
}

impl State {
    /// One cycle's blocking work.
    fn step(&mut self, timestamp: DateTime<Utc>, late: bool, metrics: &SelfMetrics) -> Arc<Cycle> {
        let started = std::time::Instant::now();
        let mut errors = ReadErrors::default();
        let mut cycle = self.collector.collect(timestamp, &mut errors);
        self.recorder.filter(&mut cycle);
        self.recorder.record(&mut cycle, self.collector.tracked());
        for _ in 0..errors.permission {
            metrics.read_error("permission");
        }
        for _ in 0..errors.io {
            metrics.read_error("io");
        }
        metrics.cycle_done(started.elapsed(), late, cycle.containers.len());
        Arc::new(cycle)
    }
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
    let (base_wall, delay) = first_tick(Utc::now(), interval);
    let base = Instant::now() + delay;
    let mut ticker = tokio::time::interval_at(base, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let tick = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            tick = ticker.tick() => tick,
        };
        let late = tick.elapsed() > interval / 2;
        let offset = chrono::Duration::from_std(tick.duration_since(base)).unwrap_or_default();
        // Millisecond grid: the column's resolution.
        let timestamp = base_wall + offset;
        let m = metrics.clone();
        let (back, cycle) = tokio::task::spawn_blocking(move || {
            let cycle = state.step(timestamp, late, &m);
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
