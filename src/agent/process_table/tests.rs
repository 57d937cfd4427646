use std::fs;
use std::path::Path;

use super::*;
use crate::agent::contract::ContainerSample;

const CLOCK: HostClock = HostClock {
    ticks_per_second: 100,
    page_size: 4096,
    boot_ms: 1_767_225_600_000,
};

fn container(short: &str) -> ContainerSample {
    ContainerSample {
        short_id: short.into(),
        full_id: short.into(),
        cgroup_path: format!("kubepods/{short}"),
        values: Vec::new(),
        pod_uid: None,
        sandbox: false,
        devices: Vec::new(),
    }
}

fn cycle(shorts: &[&str]) -> Cycle {
    Cycle {
        timestamp: None,
        containers: shorts.iter().map(|s| container(s)).collect(),
        network: Vec::new(),
        processes: Vec::new(),
    }
}

/// Writes a process's files as the kernel shows them.
fn write_process(root: &Path, pid: u32, comm: &str, cpu: u64, start: u64, rss_pages: i64) {
    let dir = root.join(pid.to_string());
    fs::create_dir_all(&dir).unwrap();
    let stat = format!(
        "{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 {cpu} 0 0 0 20 0 2 0 {start} 1000000 {rss_pages} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
    );
    fs::write(dir.join("stat"), stat).unwrap();
    fs::write(
        dir.join("status"),
        format!("Name:\t{comm}\nPid:\t{pid}\nNSpid:\t{pid}\t{}\n", pid % 100),
    )
    .unwrap();
    fs::write(dir.join("cmdline"), format!("/bin/{comm}\0--flag\0")).unwrap();
    fs::write(
        dir.join("smaps_rollup"),
        format!(
            "Rss: {} kB\nPss: {} kB\nPrivate_Clean: 4 kB\nPrivate_Dirty: 8 kB\nSwap: 0 kB\n",
            rss_pages * 4,
            rss_pages * 2
        ),
    )
    .unwrap();
}

fn table(root: &Path, config: ProcessConfig) -> ProcessTable {
    ProcessTable::new(root, CLOCK, config)
}

#[test]
fn each_kept_process_is_named_timed_and_measured() {
    let root = tempfile::tempdir().unwrap();
    write_process(root.path(), 4242, "app", 250, 12_345, 16_384);
    let mut t = table(root.path(), ProcessConfig::default());
    let rows = t.sample(&cycle(&["aaa"]), &|_| vec![4242]);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.container.as_str(), r.pid, r.nspid, r.ppid),
        ("aaa", 4242, Some(42), 1)
    );
    assert_eq!(&*r.command, "/bin/app --flag");
    assert_eq!(r.start_ms, CLOCK.boot_ms + 123_450);
    assert_eq!(r.cpu_usec, 2_500_000);
    assert_eq!(r.rss_bytes, 16_384 * 4096);
    assert_eq!(r.threads, 2);
    assert_eq!(
        r.memory.pss_bytes,
        Some(16_384 * 2 * 1024),
        "read on the first interval"
    );
    assert_eq!(r.memory.uss_bytes, Some(12 * 1024));
    assert_eq!(r.event, Event::None, "present at first sight: not a start");
}

#[test]
fn top_k_by_cpu_and_memory_and_the_memory_every_n_intervals() {
    let root = tempfile::tempdir().unwrap();
    write_process(root.path(), 10, "idle", 0, 1, 10);
    write_process(root.path(), 11, "busy", 900, 2, 20);
    write_process(root.path(), 12, "big", 1, 3, 90_000);
    let config = ProcessConfig {
        top_k: 1,
        memory_every: 3,
        max_events: 20,
    };
    let mut t = table(root.path(), config);
    let pids = |_: &str| vec![10, 11, 12];
    let kept: Vec<u32> = t
        .sample(&cycle(&["c"]), &pids)
        .iter()
        .map(|r| r.pid)
        .collect();
    assert_eq!(kept, [11, 12]);
    // Next interval: the idle one becomes the busiest.
    write_process(root.path(), 10, "idle", 5000, 1, 10);
    let rows = t.sample(&cycle(&["c"]), &pids);
    assert_eq!(rows.iter().map(|r| r.pid).collect::<Vec<_>>(), [10, 12]);
    assert!(
        rows.iter().all(|r| r.memory.pss_bytes.is_none()),
        "not a memory interval"
    );
    t.sample(&cycle(&["c"]), &pids);
    let rows = t.sample(&cycle(&["c"]), &pids);
    assert!(
        rows.iter().all(|r| r.memory.pss_bytes.is_some()),
        "every 3rd interval"
    );
}

#[test]
fn starts_exits_and_a_recycled_pid() {
    let root = tempfile::tempdir().unwrap();
    write_process(root.path(), 20, "main", 10, 100, 50);
    write_process(root.path(), 21, "child", 0, 200, 5);
    let config = ProcessConfig {
        top_k: 1,
        ..ProcessConfig::default()
    };
    let mut t = table(root.path(), config);
    t.sample(&cycle(&["c"]), &|_| vec![20, 21]);
    // A new child (not in the top 1) starts: its row says so.
    write_process(root.path(), 22, "newcomer", 0, 300, 1);
    let rows = t.sample(&cycle(&["c"]), &|_| vec![20, 21, 22]);
    let newcomer = rows
        .iter()
        .find(|r| r.pid == 22)
        .expect("the start is recorded");
    assert_eq!(newcomer.event, Event::Start);
    assert!(
        rows.iter().all(|r| r.pid != 21),
        "an idle small child is not kept"
    );
    // 21 exits; 22's pid goes to another process (another start time).
    fs::remove_dir_all(root.path().join("21")).unwrap();
    write_process(root.path(), 22, "recycled", 0, 400, 1);
    let rows = t.sample(&cycle(&["c"]), &|_| vec![20, 21, 22]);
    let events: Vec<(u32, &str, Event)> = rows
        .iter()
        .filter(|r| r.event != Event::None)
        .map(|r| (r.pid, &*r.command, r.event))
        .collect();
    assert!(
        events.contains(&(21, "/bin/child --flag", Event::Exit)),
        "{events:?}"
    );
    assert!(
        events.contains(&(22, "/bin/newcomer --flag", Event::Exit)),
        "{events:?}"
    );
    assert!(
        events.contains(&(22, "/bin/recycled --flag", Event::Start)),
        "{events:?}"
    );
    let exit = rows
        .iter()
        .find(|r| r.pid == 22 && r.event == Event::Exit)
        .unwrap();
    assert_eq!(
        exit.start_ms,
        CLOCK.boot_ms + 3000,
        "the old process's own start"
    );
}

#[test]
fn a_storm_of_starts_is_bounded_and_counted() {
    let root = tempfile::tempdir().unwrap();
    write_process(root.path(), 2, "main", 10, 1, 50);
    let config = ProcessConfig {
        top_k: 1,
        memory_every: 1,
        max_events: 5,
    };
    let mut t = table(root.path(), config);
    t.sample(&cycle(&["c"]), &|_| vec![2]);
    let pids: Vec<u32> = (100..130).collect();
    for p in &pids {
        write_process(root.path(), *p, "worker", 0, u64::from(*p), 1);
    }
    let all: Vec<u32> = std::iter::once(2).chain(pids.iter().copied()).collect();
    let rows = t.sample(&cycle(&["c"]), &|_| all.clone());
    let starts = rows.iter().filter(|r| r.event == Event::Start).count();
    // top 1 by CPU (main) ∪ top 1 by memory (main): then 5 starts.
    assert_eq!(starts, 5, "{rows:?}");
    assert_eq!(t.counts().events_dropped, 25);
}

#[test]
fn vanished_or_corrupt_processes_are_skipped() {
    let root = tempfile::tempdir().unwrap();
    write_process(root.path(), 30, "ok", 10, 1, 50);
    write_process(root.path(), 31, "bad", 10, 2, 50);
    fs::write(root.path().join("31/stat"), "31 (bad) S garbage").unwrap();
    fs::create_dir_all(root.path().join("32")).unwrap(); // no files at all
    let mut t = table(root.path(), ProcessConfig::default());
    let rows = t.sample(&cycle(&["c"]), &|_| vec![30, 31, 32, 33]);
    assert_eq!(rows.iter().map(|r| r.pid).collect::<Vec<_>>(), [30]);
    // The cmdline of a zombie is empty: the kernel's name in brackets.
    write_process(root.path(), 34, "zomb", 0, 5, 0);
    fs::write(root.path().join("34/cmdline"), "").unwrap();
    let rows = t.sample(&cycle(&["c"]), &|_| vec![30, 34]);
    assert_eq!(
        &*rows.iter().find(|r| r.pid == 34).unwrap().command,
        "[zomb]"
    );
    // Caught in its exec: the arguments appear at a later interval.
    fs::write(root.path().join("34/cmdline"), "/bin/zomb\0").unwrap();
    let rows = t.sample(&cycle(&["c"]), &|_| vec![30, 34]);
    assert_eq!(
        &*rows.iter().find(|r| r.pid == 34).unwrap().command,
        "/bin/zomb"
    );
}

#[test]
fn sandboxes_are_skipped_and_gone_containers_forgotten() {
    let root = tempfile::tempdir().unwrap();
    write_process(root.path(), 40, "pause", 0, 1, 10);
    let mut t = table(root.path(), ProcessConfig::default());
    let mut c = cycle(&["s"]);
    c.containers[0].sandbox = true;
    assert!(t.sample(&c, &|_| vec![40]).is_empty());
    t.sample(&cycle(&["a"]), &|_| vec![40]);
    t.sample(&cycle(&[]), &|_| vec![]);
    // Seen again later: a first sight (no start rows).
    let rows = t.sample(&cycle(&["a"]), &|_| vec![40]);
    assert!(rows.iter().all(|r| r.event == Event::None));
}

#[test]
fn a_real_process_of_this_machine() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    // Past exec (a process between fork and exec has another command, and for an
    // instant during exec no memory at all).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default() != b"sleep\x0030\x00" {
        assert!(std::time::Instant::now() < deadline, "sleep never exec'd");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let clock = HostClock::read(Path::new("/proc")).expect("/proc/stat and sysconf");
    let config = ProcessConfig {
        memory_every: 1,
        ..ProcessConfig::default()
    };
    let mut t = ProcessTable::new(Path::new("/proc"), clock, config);
    t.sample(&cycle(&["c"]), &|_| vec![pid]);
    // The second interval: a command line caught mid-exec is read again.
    let rows = t.sample(&cycle(&["c"]), &|_| vec![pid]);
    child.kill().ok();
    child.wait().ok();
    let r = rows.first().expect("the child recorded");
    assert_eq!(&*r.command, "sleep 30");
    assert_eq!(r.nspid, Some(i64::from(pid)), "same PID namespace");
    assert_eq!(r.ppid, std::process::id());
    assert!(r.rss_bytes > 0);
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now - r.start_ms).abs() < 60_000,
        "started just now: {} vs {now}",
        r.start_ms
    );
    assert!(
        r.memory.pss_bytes.is_some_and(|p| p > 0),
        "our own child's PSS"
    );
}
