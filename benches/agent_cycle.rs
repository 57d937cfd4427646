//! `cargo bench --bench agent_cycle` (as root): the whole agent cycle against
//! the floor of only reading the same cgroup files, on 200 REAL cgroups.
//!
//! It creates 100 pods of two containers in kubelet's cgroupfs layout
//! (`kubepods/burstable/pod<uid>/<64-hex id>`) in every hierarchy of this
//! machine (v1 controllers under this process's own cgroup, plus the v2
//! mount): each pod's sandbox runs `pause` in a network namespace of its own,
//! its app a small shell. Then it measures on one thread:
//!
//! - floor: `pread` of every cgroup file the agent reads and of each pod's
//!   `/proc/<pid>/net/dev` (network on, the round's baseline), nothing else
//!   (also printed: the cgroup files alone);
//! - cycle: discovery, read, parse, each pod's network (one read of its
//!   sandbox's `/proc/<pid>/net/dev`), publish the Cycle, buffer, and every 90
//!   samples encode + write a Parquet file and index.json (rotation 90 s,
//!   simulated time so a rotation costs no waiting);
//!
//! and prints CPU µs per container per sample for both (thread CPU time from
//! /proc/thread-self/schedstat), bytes per sample on disk (one metric of one
//! container for one second), the bytes written per day at 300 containers to
//! Parquet files and to the open interval's tail file (appended every cycle,
//! included in the cycle's cost), and the process's peak RSS. Targets (issues #2, #24):
//! cycle ≤ 1.1 × floor (#24; 1.5 in #2), ≤ 1 byte/sample, RSS ≤ 32 MiB. Nothing is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fine_grained_monitor::agent::collector::Collector;
use fine_grained_monitor::agent::mountinfo::{self, Hierarchies};
use fine_grained_monitor::agent::network::PodNetwork;
use fine_grained_monitor::agent::process_table::{HostClock, ProcessConfig, ProcessTable};
use fine_grained_monitor::agent::recorder::{Recorder, RecorderConfig};
use fine_grained_monitor::agent::sampler::{self, ContainerFiles, ReadErrors};
use fine_grained_monitor::agent::{Cycle, DiscoveryMode, SelfMetrics};
use fine_grained_monitor::store::retention::Policy;
use fine_grained_monitor::store::schema::METRICS;

const CONTAINERS: usize = 200;
const SAMPLES: usize = 450; // five 90 s files
const ROUNDS: usize = 3;
/// The agent's default (`AgentArgs::to_config`).
const LIMITS_EVERY: u32 = 30;

struct Setup {
    bases: Vec<PathBuf>,
    children: Vec<Child>,
    leaves: Vec<String>,
    /// Holds the `pause` binary the sandboxes run.
    _bin: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for base in &self.bases {
            for leaf in &self.leaves {
                if let Ok(procs) = std::fs::read_to_string(base.join(leaf).join("cgroup.procs")) {
                    for pid in procs.split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
            }
        }
        for base in &self.bases {
            let mut dirs: Vec<PathBuf> = Vec::new();
            for leaf in &self.leaves {
                let mut p = PathBuf::from(leaf);
                while !p.as_os_str().is_empty() {
                    dirs.push(base.join(&p));
                    p = p.parent().map(Path::to_path_buf).unwrap_or_default();
                }
            }
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            dirs.dedup();
            dirs.push(base.clone());
            for dir in dirs {
                for _ in 0..100 {
                    if !dir.exists() || std::fs::remove_dir(&dir).is_ok() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn own_cgroup(v1_controller: Option<&str>) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let matches = match v1_controller {
            Some(c) => controllers.split(',').any(|x| x == c),
            None => controllers.is_empty(),
        };
        if matches {
            return path.trim_start_matches('/').to_string();
        }
    }
    String::new()
}

fn setup(h: &Hierarchies, links: &Path) -> Setup {
    let name = format!("fgm-bench-{}", std::process::id());
    // Pods of two containers: the sandbox (even), the app (odd).
    let leaves: Vec<String> = (0..CONTAINERS)
        .map(|i| {
            let pod = i / 2;
            format!(
                "kubepods/burstable/pod{pod:08x}-0000-4000-8000-{pod:012x}/{:064x}",
                0xc0ffee_u64 * 1000 + i as u64
            )
        })
        .collect();
    let bin = tempfile::tempdir().unwrap();
    let pause = bin.path().join("pause");
    std::fs::copy("/bin/sleep", &pause).expect("copy /bin/sleep as pause");
    let mut s = Setup {
        bases: Vec::new(),
        children: Vec::new(),
        leaves: leaves.clone(),
        _bin: bin,
    };
    let mut seen = Vec::new();
    for (controller, mount) in &h.v1 {
        if seen.contains(mount) {
            continue;
        }
        seen.push(mount.clone());
        let base = mount.join(own_cgroup(Some(controller))).join(&name);
        std::fs::create_dir(&base).expect("create cgroup (run as root)");
        s.bases.push(base.clone());
        std::os::unix::fs::symlink(&base, links.join(mount.file_name().unwrap())).unwrap();
    }
    if let Some(v2) = &h.v2 {
        let base = v2.join(&name);
        std::fs::create_dir(&base).expect("create v2 cgroup (run as root)");
        s.bases.push(base.clone());
        if h.is_v1() {
            std::os::unix::fs::symlink(&base, links.join("unified")).unwrap();
        } else {
            std::fs::remove_dir(links).ok();
            std::os::unix::fs::symlink(&base, links).unwrap();
            for c in ["+cpu", "+memory", "+pids", "+io"] {
                let _ = std::fs::write(base.join("cgroup.subtree_control"), c);
            }
        }
    }
    for base in s.bases.clone() {
        for leaf in &leaves {
            let dir = base.join(leaf);
            std::fs::create_dir_all(&dir).unwrap();
            if !h.is_v1() {
                // Pure v2: enable controllers down the pod path.
                let mut p = dir.parent();
                while let Some(parent) = p.filter(|p| p.starts_with(&base) && *p != base) {
                    for c in ["+cpu", "+memory", "+pids", "+io"] {
                        let _ = std::fs::write(parent.join("cgroup.subtree_control"), c);
                    }
                    p = parent.parent();
                }
            }
        }
    }
    for (i, leaf) in leaves.iter().enumerate() {
        let mut cmd = Command::new("sh");
        // A sandbox is `pause` in a network namespace of its own, whose
        // interfaces the agent reads once per pod each interval (the round's
        // baseline: network on); an app is a shell that exits with the bench.
        let work = if i % 2 == 0 {
            "exec unshare -n \"$0\" 100000"
        } else {
            "while kill -0 $PPID 2>/dev/null; do sleep 2; done"
        };
        cmd.arg("-c")
            .arg(format!(
                "for f in \"$@\"; do echo $$ > \"$f\" || exit 1; done; {work}"
            ))
            .arg(&pause);
        for base in &s.bases {
            cmd.arg(base.join(leaf).join("cgroup.procs"));
        }
        s.children.push(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    s
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// This thread's user-space CPU time so far (`utime` of /proc/thread-self/stat, in ticks of
/// 10 ms: exact enough over a run of seconds).
fn thread_user() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // After the command name's closing parenthesis: state is field 3, utime field 14.
    let ticks: u64 = text
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(11))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn per_container_sample_us(cpu: Duration, containers: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / (SAMPLES * containers) as f64
}

/// CPU µs per container per sample: (all, user space only). With
/// `sandboxes`, each of their `/proc/<pid>/net/dev` is read too (kept open,
/// as the agent keeps it): the floor of what a network-on agent reads.
fn floor(h: &Hierarchies, paths: &[String], sandboxes: &[u32]) -> (f64, f64) {
    use std::os::unix::fs::FileExt;
    let plan = sampler::plan(h);
    let mut errors = ReadErrors::default();
    let files: Vec<ContainerFiles> = paths
        .iter()
        .filter_map(|p| ContainerFiles::open(&plan, p, &mut errors).ok())
        .collect();
    let net_dev: Vec<std::fs::File> = sandboxes
        .iter()
        .map(|pid| {
            std::fs::File::open(format!("/proc/{pid}/net/dev")).expect("a sandbox's net/dev")
        })
        .collect();
    let mut buf = vec![0u8; 16 * 1024];
    let (start, user_start) = (thread_cpu(), thread_user());
    let mut bytes = 0;
    for i in 0..SAMPLES {
        // The agent's cadence: limits and peaks every LIMITS_EVERY samples.
        let refresh = i % LIMITS_EVERY as usize == 0;
        for f in &files {
            bytes += f.read_only(&mut buf, refresh);
        }
        for f in &net_dev {
            bytes += f.read_at(&mut buf, 0).unwrap_or(0);
        }
    }
    let (cpu, user) = (thread_cpu() - start, thread_user() - user_start);
    std::hint::black_box(bytes);
    (
        per_container_sample_us(cpu, files.len()),
        per_container_sample_us(user, files.len()),
    )
}

struct CycleResult {
    us: f64,
    /// Pods whose network was read in the last cycle.
    pods_with_network: usize,
    user_us: f64,
    containers: usize,
    bytes_per_sample: f64,
    files: usize,
    /// Bytes per container per sample: Parquet files, tail appends.
    parquet_per_row: f64,
    tail_per_row: f64,
}

/// `fd_budget`: `Some(0)` reads every file by reopening it (descriptors short).
fn whole_cycle(h: &Hierarchies, fd_budget: Option<usize>, processes: bool) -> CycleResult {
    let data = tempfile::tempdir().unwrap();
    let metrics = SelfMetrics::new();
    let t0 = Utc.timestamp_opt(1_767_225_600, 0).unwrap();
    let mut collector = Collector::new(
        h.clone(),
        DiscoveryMode::Kubernetes,
        PathBuf::from("/proc"),
        // The agent's default (`AgentArgs::to_config`); with inotify the
        // tree is walked every `RECONCILE_EVERY` cycles.
        5,
        LIMITS_EVERY,
    );
    if let Some(budget) = fd_budget {
        collector.fix_fd_budget(budget);
    }
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: data.path().to_path_buf(),
            node: "bench".into(),
            rotation: Duration::from_secs(90),
            policy: Policy {
                max_age: Duration::from_secs(86_400 * 3650),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        metrics.clone(),
        t0,
    );
    let (tx, _rx) = tokio::sync::watch::channel(Arc::new(Cycle::default()));
    // `--processes` with its defaults: top 10 by CPU and by RSS, PSS every 10 samples.
    let mut table = processes.then(|| {
        ProcessTable::new(
            Path::new("/proc"),
            HostClock::read(Path::new("/proc")).expect("/proc/stat"),
            ProcessConfig::default(),
        )
    });
    // Network on (the round's baseline), as the runner calls it: each pod's
    // sandbox's net/dev, once per pod (the pod spec says: not host network).
    let mut network = PodNetwork::new(Path::new("/proc"));
    let (mut containers, mut pods_with_network) = (0, 0);
    let (start, user_start) = (thread_cpu(), thread_user());
    for i in 0..SAMPLES {
        let ts = t0 + chrono::Duration::seconds(i as i64);
        let mut errors = ReadErrors::default();
        let mut cycle = collector.collect(ts, &mut errors);
        network.sample(&mut cycle, &|p| collector.pids_of(p), &|_| Some(false));
        recorder.filter(&mut cycle);
        if let Some(t) = &mut table {
            cycle.processes = t.sample(&cycle, &|p| collector.pids_of(p));
        }
        recorder.record(&mut cycle, collector.tracked());
        containers = cycle.containers.len();
        let rx = fine_grained_monitor::store::schema::metric_index("network_receive_bytes");
        pods_with_network = cycle
            .containers
            .iter()
            .filter(|c| {
                rx.and_then(|i| c.values.get(i).copied().flatten())
                    .is_some()
            })
            .count();
        tx.send_replace(Arc::new(cycle));
    }
    recorder.finish(t0 + chrono::Duration::seconds(SAMPLES as i64));
    let (cpu, user) = (thread_cpu() - start, thread_user() - user_start);
    let listing = fine_grained_monitor::store::layout::list_data_files(data.path(), None).unwrap();
    let bytes: u64 = listing
        .files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0))
        .sum();
    let rows = (SAMPLES * containers.max(1)) as f64;
    CycleResult {
        us: per_container_sample_us(cpu, containers.max(1)),
        user_us: per_container_sample_us(user, containers.max(1)),
        pods_with_network,
        containers,
        bytes_per_sample: bytes as f64 / (SAMPLES * containers.max(1) * METRICS.len()) as f64,
        files: listing.files.len(),
        parquet_per_row: metrics.file_bytes() as f64 / rows,
        tail_per_row: metrics.tail_bytes() as f64 / rows,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let h =
        mountinfo::from_mountinfo_file(Path::new("/proc/self/mountinfo")).expect("cgroups mounted");
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("root");
    std::fs::create_dir(&links).unwrap();
    let setup = setup(&h, &links);
    let root_h = mountinfo::from_root_dir(&links).expect("linked root");
    let paths = setup.leaves.clone();
    println!(
        "agent_cycle: {CONTAINERS} real cgroups, {SAMPLES} samples per run, {ROUNDS} rounds; hierarchies: v1 {:?}, v2 {}",
        root_h.v1.keys().collect::<Vec<_>>(),
        root_h.v2.is_some()
    );
    // The sandboxes (even children): `sh` execs `unshare -n`, which execs `pause`, one pid.
    let sandboxes: Vec<u32> = setup.children.iter().step_by(2).map(Child::id).collect();
    let (mut floors, mut cycles, mut cycles_reopen) = (Vec::new(), Vec::new(), Vec::new());
    let mut floors_cgroups = Vec::new();
    let mut cycles_processes = Vec::new();
    let (mut floors_user, mut cycles_user) = (Vec::new(), Vec::new());
    let mut last = None;
    // `FGM_CYCLE_ONLY=1`: floor and default cycle only (to profile the cycle with `perf`).
    let only_cycle = std::env::var_os("FGM_CYCLE_ONLY").is_some();
    for _ in 0..ROUNDS {
        floors_cgroups.push(floor(&root_h, &paths, &[]).0);
        let (floor_all, floor_user) = floor(&root_h, &paths, &sandboxes);
        floors.push(floor_all);
        floors_user.push(floor_user);
        let r = whole_cycle(&root_h, None, false);
        cycles.push(r.us);
        cycles_user.push(r.user_us);
        if !only_cycle {
            cycles_reopen.push(whole_cycle(&root_h, Some(0), false).us);
            cycles_processes.push(whole_cycle(&root_h, None, true).us);
        }
        last = Some(r);
    }
    let r = last.unwrap();
    let (floor_us, cycle_us, reopen_us) = (median(floors), median(cycles), median(cycles_reopen));
    let processes_us = median(cycles_processes);
    println!(
        "containers sampled per cycle:        {} ({} pods' network read each cycle)",
        r.containers, r.pods_with_network
    );
    let floor_cgroups_us = median(floors_cgroups);
    println!(
        "floor (read files only):             {floor_us:.2} µs CPU / container / sample (cgroup files and each pod's net/dev; cgroup files alone {floor_cgroups_us:.2})"
    );
    println!(
        "whole cycle (agent defaults):        {cycle_us:.2} µs CPU / container / sample  ratio {:.2} (target ≤ 1.1; {:.2} against the cgroup files alone)",
        cycle_us / floor_us,
        cycle_us / floor_cgroups_us
    );
    println!(
        "  of which user space:               floor {:.2} µs, cycle {:.2} µs (the rest is the kernel's)",
        median(floors_user),
        median(cycles_user)
    );
    println!(
        "whole cycle, --processes on:         {processes_us:.2} µs CPU / container / sample  ratio {:.2} (one process per container: stat every sample, status and cmdline once, smaps_rollup every 10)",
        processes_us / floor_us
    );
    println!(
        "whole cycle, descriptors short:      {reopen_us:.2} µs CPU / container / sample  ratio {:.2} (every file reopened at each read)",
        reopen_us / floor_us
    );
    println!(
        "on disk:                             {:.3} bytes / sample ({} files) (target ≤ 1)",
        r.bytes_per_sample, r.files
    );
    let per_day = |per_row: f64| per_row * 86_400.0 * 300.0 / 1e6;
    println!(
        "written per day at 300 containers:   Parquet {:.1} MB, tail {:.1} MB ({:.2}× the Parquet bytes; target ≤ 1)",
        per_day(r.parquet_per_row),
        per_day(r.tail_per_row),
        r.tail_per_row / r.parquet_per_row
    );
    println!(
        "peak RSS of this process:            {:.1} MiB (target ≤ 32)",
        peak_rss_kib() as f64 / 1024.0
    );
    drop(setup);
}
