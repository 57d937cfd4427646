//! The agent on REAL cgroups of this machine (needs root). The test creates
//! its own cgroups in every hierarchy (v1 controllers under this process's
//! own cgroup, plus the v2 mount), runs a busy loop in one and a process
//! holding 64 MiB in another, records a few seconds, and checks the Parquet
//! files: about one core of CPU, at least 64 MiB of memory. On a hybrid host
//! it runs two agents at once: one on the v1 controllers (+ unified PSI),
//! one on the v2 mount alone. Everything it creates is removed, even when an
//! assertion fails (the guard's Drop), and the child processes exit by
//! themselves when the test process dies (they poll their parent).

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::{Row, config, read_index, read_rows, run_agent};
use fine_grained_monitor::agent::DiscoveryMode;
use fine_grained_monitor::agent::mountinfo::{self, Hierarchies};

const HOLD_BYTES: i64 = 64 * 1024 * 1024;

/// Test cgroups and processes; removed on drop.
struct Cgroups {
    /// The test's top cgroup in each hierarchy.
    bases: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for base in &self.bases {
            for leaf in ["busy", "mem"] {
                let dir = base.join(leaf);
                if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                    for pid in procs.split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
            }
        }
        for base in &self.bases {
            for dir in [base.join("busy"), base.join("mem"), base.clone()] {
                // Dying tasks leave a cgroup a moment after SIGKILL.
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

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    assert_eq!(
        uid, "0",
        "this test creates real cgroups and needs root: run `sudo -E cargo test --test agent_real_cgroups`"
    );
}

/// This process's cgroup path in the hierarchy mounted with `controllers`
/// (v1: `4:memory:/a/b`), or in v2 (`0::/a`).
fn own_cgroup(v1_controller: Option<&str>) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
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

fn mkdir(dir: &Path) {
    std::fs::create_dir(dir)
        .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", dir.display()));
}

/// Starts `sh` that moves itself into `leaf` of every base, then runs `work`.
fn spawn_in(bases: &[PathBuf], leaf: &str, work: &str) -> Child {
    let script = format!("for f in \"$@\"; do echo $$ > \"$f\" || exit 1; done; {work}");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh");
    for base in bases {
        cmd.arg(base.join(leaf).join("cgroup.procs"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("sh starts")
}

/// CPU seconds of a process so far, from /proc (USER_HZ = 100).
fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat are 12 and 13 after "pid (comm) ".
    (ticks(11) + ticks(12)) / 100.0
}

fn rows_of<'a>(
    rows: &'a std::collections::BTreeMap<String, Vec<Row>>,
    data: &Path,
    path: &str,
) -> &'a [Row] {
    let index = read_index(data);
    let (id, _) = index
        .containers
        .iter()
        .find(|(_, c)| c.cgroup_path.as_deref() == Some(path))
        .unwrap_or_else(|| panic!("container {path} in index: {:?}", index.containers.keys()));
    rows.get(id).unwrap_or_else(|| panic!("rows of {path}"))
}

fn cpu_cores(rows: &[Row]) -> f64 {
    let with_cpu: Vec<&Row> = rows
        .iter()
        .filter(|r| r.get("cpu_usage_usec").is_some())
        .collect();
    assert!(
        with_cpu.len() >= 4,
        "enough CPU samples: {}",
        with_cpu.len()
    );
    let (first, last) = (with_cpu[0], with_cpu[with_cpu.len() - 1]);
    let used = (last.get("cpu_usage_usec").unwrap() - first.get("cpu_usage_usec").unwrap()) as f64;
    used / ((last.timestamp_ms - first.timestamp_ms) as f64 * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_loop_and_held_memory_on_real_cgroups() {
    require_root();
    let h: Hierarchies = mountinfo::from_mountinfo_file(Path::new("/proc/self/mountinfo"))
        .expect("cgroup hierarchies mounted (see /proc/self/mountinfo)");
    let name = format!(
        "fgm-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let links = tempfile::tempdir().unwrap();
    let mut guard = Cgroups {
        bases: Vec::new(),
        children: Vec::new(),
    };
    // v1: one base per distinct hierarchy, under our own cgroup there, linked
    // into a --cgroup-root directory so every hierarchy has the same paths.
    let mut seen = Vec::new();
    for (controller, mount) in &h.v1 {
        if seen.contains(mount) {
            continue;
        }
        seen.push(mount.clone());
        let base = mount.join(own_cgroup(Some(controller))).join(&name);
        mkdir(&base);
        guard.bases.push(base.clone());
        let link_name = mount.file_name().expect("mount point has a name");
        std::os::unix::fs::symlink(&base, links.path().join(link_name)).unwrap();
    }
    let v2_base = h.v2.as_ref().map(|v2| {
        let base = v2.join(&name);
        mkdir(&base);
        guard.bases.push(base.clone());
        if h.is_v1() {
            std::os::unix::fs::symlink(&base, links.path().join("unified")).unwrap();
        } else {
            // Pure v2: the controllers must be enabled for the children.
            for c in ["+cpu", "+memory", "+pids", "+io"] {
                let _ = std::fs::write(base.join("cgroup.subtree_control"), c);
            }
        }
        base
    });
    for base in &guard.bases {
        mkdir(&base.join("busy"));
        mkdir(&base.join("mem"));
    }
    let busy = spawn_in(
        &guard.bases,
        "busy",
        "while kill -0 $PPID 2>/dev/null; do :; done",
    );
    let busy_pid = busy.id();
    guard.children.push(busy);
    let mem = spawn_in(
        &guard.bases,
        "mem",
        &format!(
            "x=$(head -c {HOLD_BYTES} /dev/zero | tr '\\0' a); while kill -0 $PPID 2>/dev/null; do sleep 0.2; done"
        ),
    );
    guard.children.push(mem);
    // Wait until the memory is held, so every sample sees it.
    let usage_file = match h.v1.get("memory") {
        Some(_) => guard.bases[seen
            .iter()
            .position(|m| Some(m) == h.v1.get("memory"))
            .unwrap()]
        .join("mem/memory.usage_in_bytes"),
        None => v2_base.clone().unwrap().join("mem/memory.current"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let used: i64 = std::fs::read_to_string(&usage_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if used >= HOLD_BYTES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memory holder reached only {used} bytes in {}",
            usage_file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let data_v1 = tempfile::tempdir().unwrap();
    let data_v2 = tempfile::tempdir().unwrap();
    let cpu_before = proc_cpu_seconds(busy_pid);
    let started = Instant::now();
    let mut runs = Vec::new();
    if h.is_v1() {
        let mut cfg = config(data_v1.path(), links.path(), DiscoveryMode::Local);
        cfg.interval = Duration::from_millis(250);
        runs.push(tokio::spawn(run_agent(cfg, Duration::from_millis(3600))));
    }
    if let Some(v2) = &v2_base {
        let mut cfg = config(data_v2.path(), v2, DiscoveryMode::Local);
        cfg.interval = Duration::from_millis(250);
        runs.push(tokio::spawn(run_agent(cfg, Duration::from_millis(3600))));
    }
    for run in runs {
        run.await.expect("agent run");
    }
    let truth = (proc_cpu_seconds(busy_pid) - cpu_before) / started.elapsed().as_secs_f64();
    // On a loaded machine the loop may get less than a core: then the kernel's
    // own per-process figure is what the agent must match.
    let expected = if truth >= 0.8 { 1.0 } else { truth };
    println!("busy loop: /proc says {truth:.3} cores");

    if h.is_v1() {
        let rows = read_rows(data_v1.path());
        let busy_rows = rows_of(&rows, data_v1.path(), "busy");
        let cores = cpu_cores(busy_rows);
        println!("v1 agent: busy {cores:.3} cores");
        assert!(
            (cores - expected).abs() <= 0.2 * expected,
            "v1 cpu {cores:.3} cores vs expected {expected:.3}"
        );
        let mem_rows = rows_of(&rows, data_v1.path(), "mem");
        let held = mem_rows
            .last()
            .unwrap()
            .get("memory_current_bytes")
            .expect("memory recorded");
        println!("v1 agent: mem {held} bytes");
        assert!(held >= HOLD_BYTES, "memory {held} < {HOLD_BYTES}");
        assert!(
            mem_rows
                .last()
                .unwrap()
                .get("memory_anon_bytes")
                .unwrap_or(0)
                >= HOLD_BYTES / 2
        );
        assert_eq!(busy_rows.last().unwrap().get("pids_current"), Some(1));
        assert_eq!(
            busy_rows.last().unwrap().get("pids_processes"),
            Some(1),
            "v1 cgroup.procs of the busy loop: one process"
        );
        if h.v2.is_some() {
            assert!(
                busy_rows
                    .last()
                    .unwrap()
                    .get("cpu_pressure_some_usec")
                    .is_some(),
                "hybrid host: pressure from the unified mount"
            );
        }
    }
    if v2_base.is_some() {
        let rows = read_rows(data_v2.path());
        let busy_rows = rows_of(&rows, data_v2.path(), "busy");
        let cores = cpu_cores(busy_rows);
        println!("v2 agent: busy {cores:.3} cores");
        assert!(
            (cores - expected).abs() <= 0.2 * expected,
            "v2 cpu {cores:.3} cores vs expected {expected:.3}"
        );
        assert_eq!(
            busy_rows.last().unwrap().get("pids_processes"),
            Some(1),
            "v2 cgroup.procs of the busy loop: one process"
        );
        if h.is_v1() {
            // Hybrid: the v2 mount has no memory controller; null, not zero.
            assert_eq!(busy_rows.last().unwrap().get("memory_current_bytes"), None);
        } else {
            let mem_rows = rows_of(&rows, data_v2.path(), "mem");
            let held = mem_rows
                .last()
                .unwrap()
                .get("memory_current_bytes")
                .expect("memory recorded");
            assert!(held >= HOLD_BYTES, "memory {held} < {HOLD_BYTES}");
        }
    }
    drop(guard);
}

/// Directories created by a test, removed deepest first on drop.
struct Dirs(Vec<PathBuf>);

impl Drop for Dirs {
    fn drop(&mut self) {
        let mut dirs = self.0.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
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

/// On this machine's real cgroups (every v1 hierarchy plus the unified
/// mount, as a runtime creates them): a container whose cgroup appears
/// between two cycles is in the very next cycle, with its v1 numbers, found
/// from inotify events rather than a walk; removed, it is gone the next cycle.
#[test]
fn new_real_cgroup_is_sampled_in_the_next_cycle() {
    use fine_grained_monitor::agent::collector::Collector;
    use fine_grained_monitor::agent::sampler::ReadErrors;
    require_root();
    let h: Hierarchies = mountinfo::from_mountinfo_file(Path::new("/proc/self/mountinfo"))
        .expect("cgroup hierarchies mounted (see /proc/self/mountinfo)");
    let name = format!("fgm-test-new-{}", std::process::id());
    let links = tempfile::tempdir().unwrap();
    let mut created = Dirs(Vec::new());
    let mut bases = Vec::new();
    let mut seen = Vec::new();
    for (controller, mount) in &h.v1 {
        if seen.contains(mount) {
            continue;
        }
        seen.push(mount.clone());
        let base = mount.join(own_cgroup(Some(controller))).join(&name);
        mkdir(&base);
        created.0.push(base.clone());
        let link_name = mount.file_name().expect("mount point has a name");
        std::os::unix::fs::symlink(&base, links.path().join(link_name)).unwrap();
        bases.push(base);
    }
    let root = if h.is_v1() {
        if let Some(v2) = &h.v2 {
            let base = v2.join(&name);
            mkdir(&base);
            created.0.push(base.clone());
            std::os::unix::fs::symlink(&base, links.path().join("unified")).unwrap();
            bases.push(base);
        }
        links.path().to_path_buf()
    } else {
        let base = h.v2.as_ref().expect("a v2 mount").join(&name);
        mkdir(&base);
        created.0.push(base.clone());
        bases.push(base.clone());
        base
    };
    let hierarchies = fine_grained_monitor::agent::runner::find_hierarchies(Some(&root)).unwrap();
    let mut collector = Collector::new(
        hierarchies,
        DiscoveryMode::Kubernetes,
        PathBuf::from("/proc"),
        5,
        30,
    );
    let t0 = chrono::Utc::now();
    let mut errors = ReadErrors::default();
    let first = collector.collect(t0, &mut errors);
    assert!(first.containers.is_empty());
    let id = format!("{:064x}", 0xfeed_u64 + u64::from(std::process::id()));
    let rel = format!("kubelet/kubepods/burstable/pod0a0b0c0d-0000-4000-8000-000000000001/{id}");
    // One hierarchy after the other, as runc does.
    for base in &bases {
        let mut dir = base.clone();
        for part in rel.split('/') {
            dir = dir.join(part);
            mkdir(&dir);
            created.0.push(dir.clone());
        }
    }
    let second = collector.collect(t0 + chrono::Duration::seconds(1), &mut errors);
    let sample = second
        .containers
        .iter()
        .find(|c| c.full_id == id)
        .unwrap_or_else(|| panic!("new container in the next cycle: {second:?}"));
    let cpu = fine_grained_monitor::store::schema::METRICS
        .iter()
        .position(|m| m.name == "cpu_usage_usec")
        .unwrap();
    assert_eq!(
        sample.values[cpu],
        Some(0),
        "an empty cgroup used no CPU yet"
    );
    let tracked = collector.tracked().get(&rel).expect("tracked by its path");
    assert_eq!(tracked.container.qos_class, Some("Burstable"));
    assert_eq!(
        tracked.container.pod_uid.as_deref(),
        Some("0a0b0c0d-0000-4000-8000-000000000001")
    );
    assert_eq!(collector.walks(), 1, "found from events, not a walk");
    for base in &bases {
        std::fs::remove_dir(base.join(&rel)).unwrap();
    }
    let third = collector.collect(t0 + chrono::Duration::seconds(2), &mut errors);
    assert!(
        third.containers.is_empty(),
        "removed: gone in the next cycle"
    );
    assert_eq!(errors, ReadErrors::default());
    drop(collector);
    drop(created);
}

/// The agent as its DaemonSet runs it: in a PID namespace of its own (`unshare --pid`, its own
/// `/proc`), with the host's `/proc` mounted elsewhere and passed as `--proc-root`, and in a
/// cgroup namespace rooted at a cgroup of its own (as on cgroup v2 nodes: other containers'
/// paths in `/proc/<pid>/cgroup` start with `/..`). From there a v1 `cgroup.procs` reads
/// empty; the recorded process counts must still be the host's, and a cgroup of `pause`
/// processes must be recognised as a pod sandbox (issue #29).
#[test]
fn an_agent_in_its_own_pid_namespace_counts_the_hosts_processes() {
    in_its_own_pid_namespace("agent");
}

/// `local` mode in its own PID namespace: a plain cgroup (no container id in its path) is a
/// container when processes run in it, which `cgroup.procs` cannot tell from there; the
/// host's process index does (issue #29: `local` found no container at all).
#[test]
fn local_mode_in_its_own_pid_namespace_finds_the_hosts_plain_cgroups() {
    in_its_own_pid_namespace("local");
}

/// The body of the two tests above: `subcommand` is `agent` (Kubernetes discovery) or
/// `local` (every populated leaf cgroup).
fn in_its_own_pid_namespace(subcommand: &str) {
    require_root();
    let h: Hierarchies = mountinfo::from_mountinfo_file(Path::new("/proc/self/mountinfo"))
        .expect("cgroup hierarchies mounted (see /proc/self/mountinfo)");
    let name = format!("fgm-test-pidns-{subcommand}-{}", std::process::id());
    let links = tempfile::tempdir().unwrap();
    let mut created = Dirs(Vec::new());
    let mut bases = Vec::new();
    let mut seen = Vec::new();
    for (controller, mount) in &h.v1 {
        if seen.contains(mount) {
            continue;
        }
        seen.push(mount.clone());
        let base = mount.join(own_cgroup(Some(controller))).join(&name);
        mkdir(&base);
        created.0.push(base.clone());
        let link_name = mount.file_name().expect("mount point has a name");
        std::os::unix::fs::symlink(&base, links.path().join(link_name)).unwrap();
        bases.push(base);
    }
    let root = if h.is_v1() {
        if let Some(v2) = &h.v2 {
            let base = v2.join(&name);
            mkdir(&base);
            created.0.push(base.clone());
            std::os::unix::fs::symlink(&base, links.path().join("unified")).unwrap();
            bases.push(base);
        }
        links.path().to_path_buf()
    } else {
        let base = h.v2.as_ref().expect("a v2 mount").join(&name);
        mkdir(&base);
        created.0.push(base.clone());
        bases.push(base.clone());
        base
    };
    let pod = "kubelet/kubepods/burstable/pod0a0b0c0d-0000-4000-8000-0000000000a1";
    // The agent's own cgroup, beside the pods: the root of its cgroup namespace.
    let mut agent_procs = Vec::new();
    for base in &bases {
        let dir = base.join("agent");
        mkdir(&dir);
        created.0.push(dir.clone());
        agent_procs.push(dir.join("cgroup.procs"));
    }
    // A plain cgroup with a shell and one child: `local` mode's kind of container.
    let mut plain_leaves = Vec::new();
    for base in &bases {
        let dir = base.join("plain-app");
        mkdir(&dir);
        created.0.push(dir.clone());
        plain_leaves.push(dir);
    }
    // Ids of their own per test: both tests run at once, and each agent's index sees every
    // process of the host (ids are unique on a real node).
    let tag = u8::from(subcommand == "local");
    let app_id = format!("a{tag}{:062x}", std::process::id());
    let pause_id = format!("b{tag}{:062x}", std::process::id());
    for base in &bases {
        for id in [&app_id, &pause_id] {
            let mut dir = base.clone();
            for part in format!("{pod}/{id}").split('/') {
                dir = dir.join(part);
                if !dir.exists() {
                    mkdir(&dir);
                    created.0.push(dir.clone());
                }
            }
        }
    }
    let leaves = |id: &str| -> Vec<PathBuf> {
        bases
            .iter()
            .map(|b| b.join(format!("{pod}/{id}")))
            .collect()
    };
    // The app: a shell and two sleeping children, three processes.
    let mut guard = Cgroups {
        bases: Vec::new(),
        children: Vec::new(),
    };
    let killer = KillIn(
        leaves(&app_id)
            .into_iter()
            .chain(leaves(&pause_id))
            .chain(bases.iter().map(|b| b.join("agent")))
            .chain(plain_leaves.iter().cloned())
            .collect(),
    );
    guard
        .children
        .push(spawn_in(&plain_leaves, "", "sleep 600 & wait"));
    guard.children.push(spawn_in(
        &leaves(&app_id),
        "",
        "sleep 600 & sleep 600 & wait",
    ));
    // The sandbox: one process whose name (comm) is `pause`.
    let bin = tempfile::tempdir().unwrap();
    let pause_bin = bin.path().join("pause");
    std::fs::copy("/bin/sleep", &pause_bin).expect("copy /bin/sleep as pause");
    guard.children.push(spawn_in(
        &leaves(&pause_id),
        "",
        // In a network namespace of its own, as a pod's sandbox.
        &format!("exec unshare -n {} 600", pause_bin.display()),
    ));
    let procs_file = leaves(&app_id)[0].join("cgroup.procs");
    let host_count = || {
        std::fs::read_to_string(&procs_file)
            .unwrap_or_default()
            .lines()
            .count() as i64
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while host_count() != 3 {
        assert!(
            Instant::now() < deadline,
            "app processes started: {}",
            host_count()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let data = tempfile::tempdir().unwrap();
    let host_proc = tempfile::tempdir().unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    // Into its own cgroup, then new cgroup, mount and PID namespaces; the host's /proc stays
    // reachable at $0 once the namespace's own /proc is mounted over /proc.
    let inner = r#"mount --rbind /proc "$0" && mount -t proc proc /proc && exec "$@""#;
    let cgroup_files: Vec<String> = agent_procs
        .iter()
        .map(|p| format!("'{}'", p.display()))
        .collect();
    let outer = format!(
        "for f in {}; do echo $$ > \"$f\" || exit 1; done; \
         exec unshare --cgroup --mount --pid --fork --propagation private sh -c '{inner}' \"$@\"",
        cgroup_files.join(" ")
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(outer)
        .arg("sh")
        .arg(host_proc.path())
        .arg(env!("CARGO_BIN_EXE_fine-grained-monitor"))
        .arg(subcommand);
    if subcommand == "local" {
        let viewer_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        command
            .args(["--no-browser", "--port"])
            .arg(viewer_port.to_string());
    }
    let mut agent = command
        .arg("--data-dir")
        .arg(data.path())
        .arg("--cgroup-root")
        .arg(&root)
        .arg("--proc-root")
        .arg(host_proc.path())
        .args(["--node-name", "pidns-node", "--enrichment", "false"])
        .args(["--interval", "250ms", "--rotation", "1s"])
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) starts the agent");
    std::thread::sleep(Duration::from_secs(4));
    let scraped = scrape_processes(metrics_port, &app_id[..12]);
    let host_now = host_count();
    // `unshare` ignores SIGTERM while it waits: the agent (pid 1 of its namespace, with a
    // handler) gets it and writes its file.
    let children = format!("/proc/{0}/task/{0}/children", agent.id());
    let child = std::fs::read_to_string(&children).unwrap_or_default();
    let child = child
        .split_whitespace()
        .next()
        .expect("unshare's child, the agent");
    let _ = Command::new("kill").arg(child).status();
    let status = agent.wait().expect("agent exits");
    assert!(status.success(), "agent in its own PID namespace: {status}");

    let rows = read_rows(data.path());
    let index = read_index(data.path());
    let app = rows
        .get(&app_id[..12])
        .unwrap_or_else(|| panic!("app rows: {:?}", rows.keys()));
    let last = app.last().unwrap();
    assert_eq!(
        last.get("pids_processes"),
        Some(host_now),
        "recorded = host's cgroup.procs"
    );
    assert_eq!(last.get("pids_processes"), Some(3));
    assert!(
        app.iter().all(|r| r.get("pids_processes") == Some(3)),
        "every sample: {:?}",
        app.iter()
            .map(|r| r.get("pids_processes"))
            .collect::<Vec<_>>()
    );
    if subcommand == "agent" {
        assert_eq!(scraped, Some(3.0), "/metrics container_processes");
    } else {
        assert_eq!(scraped, None, "`local` serves no Prometheus endpoint");
    }
    let pause = &index.containers[&pause_id[..12]];
    assert!(pause.sandbox, "pause recognised from the host's /proc");
    assert!(!index.containers[&app_id[..12]].sandbox);
    let pause_rows = &rows[&pause_id[..12]];
    assert_eq!(pause_rows.last().unwrap().get("pids_processes"), Some(1));
    // No pod spec here (enrichment off): its own network namespace says it is a pod's,
    // so its interfaces are read (only `lo`, kept out of the totals: 0); the app's row
    // carries no pod totals.
    assert_eq!(
        pause_rows.last().unwrap().get("network_receive_bytes"),
        Some(0),
        "the sandbox's network, read from its own namespace"
    );
    assert_eq!(last.get("network_receive_bytes"), None);
    let plain: Vec<&String> = index
        .containers
        .iter()
        .filter(|(_, e)| {
            e.cgroup_path
                .as_deref()
                .is_some_and(|p| p.rsplit('/').next() == Some("plain-app"))
        })
        .map(|(id, _)| id)
        .collect();
    if subcommand == "local" {
        let id = plain.first().unwrap_or_else(|| {
            panic!(
                "local mode found the plain cgroup; it found {:?}",
                index
                    .containers
                    .values()
                    .map(|e| e.cgroup_path.clone())
                    .collect::<Vec<_>>()
            )
        });
        let plain_rows = &rows[*id];
        assert_eq!(
            plain_rows.last().unwrap().get("pids_processes"),
            Some(2),
            "the plain cgroup's processes, counted from the host's /proc"
        );
    } else {
        assert!(plain.is_empty(), "Kubernetes discovery skips plain cgroups");
    }
    drop(killer);
    drop(guard);
    drop(created);
}

/// Kills every process of these cgroups on drop (before their directories are removed).
struct KillIn(Vec<PathBuf>);

impl Drop for KillIn {
    fn drop(&mut self) {
        for dir in &self.0 {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

/// `container_processes` of the container whose `id` label ends in `short_id`, from /metrics.
fn scrape_processes(port: u16, short_id: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.lines()
        .filter(|l| l.starts_with("container_processes{"))
        .find(|l| l.contains(short_id))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}
