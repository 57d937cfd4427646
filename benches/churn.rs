//! `cargo bench --bench churn`: 20,000 containers created and removed over
//! the run on a fixture cgroup tree (kubelet's systemd layout, every v2 file
//! the agent reads), with the real collector (inotify discovery) and recorder
//! (Parquet, index.json, retention) on simulated time: one cycle = one
//! second, rotation 30 s, retention max age 2 min (so retention reaches its
//! steady state within the run).
//!
//! 200 containers live at any time; every cycle 40 are removed and 40 new
//! ones created (500 cycles). Prints, every 50 cycles: process RSS, open
//! descriptors, inotify watches, data files and bytes, index entries, and at
//! the end whether they stayed flat once retention reached steady state
//! (cycles 200 to the end are compared). Nothing is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use fine_grained_monitor::agent::collector::Collector;
use fine_grained_monitor::agent::mountinfo;
use fine_grained_monitor::agent::recorder::{Recorder, RecorderConfig};
use fine_grained_monitor::agent::sampler::ReadErrors;
use fine_grained_monitor::agent::{DiscoveryMode, SelfMetrics};
use fine_grained_monitor::store::retention::Policy;

const LIVE: usize = 200;
const CHURN_PER_CYCLE: usize = 40;
const TOTAL: usize = 20_000;
const REPORT_EVERY: usize = 50;

/// The files of one fixture container, read once.
fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/cgroup/v2-systemd-containerd/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-a202020202020202020202020202020202020202020202020202020202020202.scope",
    );
    std::fs::read_dir(&dir)
        .expect("fixture container")
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn pod_dir(root: &Path, n: usize) -> PathBuf {
    root.join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{n:08x}_0000_4000_8000_000000000000.slice"
    ))
}

/// Creates container `n` the way cgroupfs shows it: the directory appears
/// with its files (built aside, renamed in).
fn create(root: &Path, files: &[(String, Vec<u8>)], n: usize) {
    let staging = root.join(format!(".new-{n}"));
    std::fs::create_dir(&staging).unwrap();
    for (name, text) in files {
        std::fs::write(staging.join(name), text).unwrap();
    }
    let pod = pod_dir(root, n);
    std::fs::create_dir_all(&pod).unwrap();
    let id = format!("{n:08x}").repeat(8);
    std::fs::rename(&staging, pod.join(format!("cri-containerd-{id}.scope"))).unwrap();
}

fn remove(root: &Path, n: usize) {
    std::fs::remove_dir_all(pod_dir(root, n)).unwrap();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn data_files(dir: &Path) -> (usize, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

#[derive(Debug, Clone, Copy)]
struct Point {
    cycle: usize,
    created: usize,
    rss_kib: u64,
    fds: usize,
    watches: usize,
    files: usize,
    bytes: u64,
    index: usize,
    tracked: usize,
}

fn main() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    std::fs::write(root.join("cgroup.controllers"), "cpu memory io pids\n").unwrap();
    let files = fixture_files();
    for n in 0..LIVE {
        create(root, &files, n);
    }
    let data = tempfile::tempdir().unwrap();
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut collector = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    let t0 = Utc.timestamp_opt(1_767_225_600, 0).unwrap();
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: data.path().to_path_buf(),
            node: "churn".into(),
            rotation: Duration::from_secs(30),
            policy: Policy {
                max_age: Duration::from_secs(120),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        SelfMetrics::new(),
        t0,
    );
    let cycles = (TOTAL - LIVE) / CHURN_PER_CYCLE;
    let (mut oldest, mut next) = (0usize, LIVE);
    let mut points = Vec::new();
    let started = Instant::now();
    let mut agent_time = Duration::ZERO;
    for cycle in 0..=cycles {
        if cycle > 0 {
            for _ in 0..CHURN_PER_CYCLE {
                remove(root, oldest);
                oldest += 1;
                create(root, &files, next);
                next += 1;
            }
        }
        let ts = t0 + chrono::Duration::seconds(cycle as i64);
        let busy = Instant::now();
        let mut errors = ReadErrors::default();
        let mut c = collector.collect(ts, &mut errors);
        recorder.record(&mut c, collector.tracked());
        agent_time += busy.elapsed();
        assert_eq!(
            c.containers.len(),
            LIVE,
            "cycle {cycle}: every live container sampled"
        );
        if cycle % REPORT_EVERY == 0 || cycle == cycles {
            let (files_n, bytes) = data_files(data.path());
            points.push(Point {
                cycle,
                created: next,
                rss_kib: rss_kib(),
                fds: open_fds(),
                watches: collector.watched_dirs(),
                files: files_n,
                bytes,
                index: recorder.index().containers.len(),
                tracked: collector.tracked().len(),
            });
        }
    }
    recorder.finish(t0 + chrono::Duration::seconds(cycles as i64 + 1));
    println!(
        "churn: {} containers created and removed over {cycles} cycles ({LIVE} live, {CHURN_PER_CYCLE} replaced per cycle), wall {:.1} s, agent CPU-side time {:.1} s",
        next,
        started.elapsed().as_secs_f64(),
        agent_time.as_secs_f64()
    );
    println!("cycle  created  rss_MiB  fds  watches  files  data_MiB  index  tracked");
    for p in &points {
        println!(
            "{:5}  {:7}  {:7.1}  {:3}  {:7}  {:5}  {:8.2}  {:5}  {:7}",
            p.cycle,
            p.created,
            p.rss_kib as f64 / 1024.0,
            p.fds,
            p.watches,
            p.files,
            p.bytes as f64 / 1_048_576.0,
            p.index,
            p.tracked
        );
    }
    // Steady state: retention (2 min) has been removing files and index
    // entries for a while by cycle 200.
    let steady: Vec<&Point> = points.iter().filter(|p| p.cycle >= 200).collect();
    if let (Some(first), Some(last)) = (steady.first(), steady.last()) {
        println!(
            "from cycle {} to {}: RSS {:.1} -> {:.1} MiB, fds {} -> {}, watches {} -> {}, index {} -> {}, files {} -> {}",
            first.cycle,
            last.cycle,
            first.rss_kib as f64 / 1024.0,
            last.rss_kib as f64 / 1024.0,
            first.fds,
            last.fds,
            first.watches,
            last.watches,
            first.index,
            last.index,
            first.files,
            last.files
        );
    }
}
