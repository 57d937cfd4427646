use super::*;

/// A `<pid>/stat` line with this comm, ppid and start time (other fields as the kernel writes them).
fn stat_line(pid: u32, comm: &str, ppid: u32, start: u64) -> String {
    format!(
        "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 {start} 2240512 200 \
         18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
    )
}

/// A fake proc root: `<pid>/stat` and `<pid>/cgroup` of hybrid v1 + v2 lines.
struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Not pids: never indexed.
        std::fs::create_dir_all(dir.path().join("self")).unwrap();
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        Self { dir }
    }

    fn spawn(&self, pid: u32, comm: &str, start: u64, cgroup: &str) {
        let d = self.dir.path().join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("stat"), stat_line(pid, comm, 1, start)).unwrap();
        self.move_to(pid, cgroup);
    }

    fn move_to(&self, pid: u32, cgroup: &str) {
        let d = self.dir.path().join(pid.to_string());
        std::fs::write(
            d.join("cgroup"),
            format!("3:memory:{cgroup}\n2:cpu,cpuacct:{cgroup}\n1:name=systemd:/\n0::{cgroup}\n"),
        )
        .unwrap();
    }

    fn exit(&self, pid: u32) {
        std::fs::remove_dir_all(self.dir.path().join(pid.to_string())).unwrap();
    }

    fn index(&self) -> ProcessIndex {
        ProcessIndex::new(self.dir.path(), CgroupLine::V1("cpuacct".into()))
    }
}

const POD_A: &str = "kubelet/kubepods/burstable/pod1111/aaaa";
const POD_B: &str = "kubelet/kubepods/besteffort/pod2222/bbbb";

#[test]
fn stat_fields_are_counted_after_the_last_parenthesis() {
    let s = parse_stat(stat_line(42, "my (odd) name", 7, 123456).as_bytes()).unwrap();
    assert_eq!(
        s,
        Stat {
            comm: "my (odd) name".into(),
            ppid: 7,
            start_ticks: 123456
        }
    );
    assert_eq!(parse_stat(b"42 (short) S 1 2"), None, "truncated");
    assert_eq!(parse_stat(b"garbage"), None);
}

#[test]
fn cgroup_lines_give_the_hierarchy_path_without_the_namespace_part() {
    let hybrid = "12:pids:/kubelet/kubepods/pod1/abc\n4:cpu,cpuacct:/kubelet/kubepods/pod1/abc\n\
                  1:name=systemd:/\n0::/kubelet/kubepods/pod1/abc\n";
    let cpuacct = CgroupLine::V1("cpuacct".into());
    assert_eq!(
        parse_cgroup(hybrid, &cpuacct),
        Some("kubelet/kubepods/pod1/abc")
    );
    assert_eq!(
        parse_cgroup(hybrid, &CgroupLine::V2),
        Some("kubelet/kubepods/pod1/abc")
    );
    assert_eq!(parse_cgroup(hybrid, &CgroupLine::V1("blkio".into())), None);
    // Read from a private cgroup namespace: the part above it is `..`.
    let private = "0::/../../besteffort/pod2/def\n";
    assert_eq!(
        parse_cgroup(private, &CgroupLine::V2),
        Some("besteffort/pod2/def")
    );
    assert_eq!(parse_cgroup("0::/..\n", &CgroupLine::V2), Some(""));
    assert_eq!(parse_cgroup("0::/\n", &CgroupLine::V2), Some(""));
    // A name that merely starts with dots is a name.
    assert_eq!(
        parse_cgroup("0::/..hidden/x\n", &CgroupLine::V2),
        Some("..hidden/x")
    );
}

#[test]
fn processes_are_counted_by_cgroup_and_follow_starts_and_exits() {
    let proc = FakeProc::new();
    proc.spawn(10, "pause", 100, &format!("/{POD_A}-sandbox"));
    proc.spawn(11, "nginx", 101, &format!("/{POD_A}"));
    proc.spawn(12, "nginx", 102, &format!("/{POD_A}"));
    proc.spawn(20, "sleep", 103, &format!("/{POD_B}"));
    proc.spawn(2, "kthreadd", 1, "/");
    let mut index = proc.index();
    assert_eq!(index.count(POD_A), None, "unknown before the first listing");
    let stats = index.refresh().unwrap();
    assert_eq!((stats.listed, stats.added, stats.removed), (5, 5, 0));
    assert_eq!(index.count(POD_A), Some(2));
    assert_eq!(index.count(POD_B), Some(1));
    assert_eq!(
        index.count("kubelet/kubepods/burstable/pod1111/none"),
        Some(0)
    );
    assert_eq!(index.is_sandbox(&format!("{POD_A}-sandbox")), Some(true));
    assert_eq!(index.is_sandbox(POD_A), Some(false));
    assert_eq!(
        index.is_sandbox("nothing/here"),
        None,
        "no process: cannot tell"
    );

    proc.exit(12);
    proc.spawn(13, "worker", 110, &format!("/{POD_A}"));
    proc.spawn(14, "worker", 111, &format!("/{POD_A}"));
    let stats = index.refresh().unwrap();
    assert_eq!((stats.added, stats.removed), (2, 1));
    assert_eq!(index.count(POD_A), Some(3));
    assert_eq!(index.len(), 6);
}

#[test]
fn a_young_process_moved_into_its_container_is_followed() {
    // `runc exec`: the process appears in the runtime's cgroup, then joins the container's.
    let proc = FakeProc::new();
    proc.spawn(30, "runc:[2:INIT]", 200, "/system.slice/containerd.service");
    let mut index = proc.index();
    index.refresh().unwrap();
    assert_eq!(index.count(POD_A), Some(0));
    proc.move_to(30, &format!("/{POD_A}"));
    index.refresh().unwrap();
    assert_eq!(index.count(POD_A), Some(1), "re-read while young");
    assert_eq!(index.count("system.slice/containerd.service"), Some(0));
}

#[test]
fn a_recycled_pid_is_a_new_process() {
    let proc = FakeProc::new();
    // A pid whose rolling recheck comes at the 60th listing (60 % 60 == 60 % 60).
    let pid = 60;
    proc.spawn(pid, "old", 300, &format!("/{POD_A}"));
    let mut index = proc.index();
    for _ in 0..RECHECK_EVERY - 1 {
        index.refresh().unwrap();
    }
    assert_eq!(index.count(POD_A), Some(1));
    // Between two listings the process exits and the pid is given to another, elsewhere.
    proc.spawn(pid, "new", 999, &format!("/{POD_B}"));
    let stats = index.refresh().unwrap();
    assert!(stats.rechecked >= 1);
    assert_eq!(index.count(POD_A), Some(0));
    assert_eq!(index.count(POD_B), Some(1));
    let p = index.process(pid).unwrap();
    assert_eq!((p.start_ticks, &*p.comm), (999, "new"));
}

#[test]
fn keys_from_a_private_cgroup_namespace_match_by_longest_suffix() {
    let proc = FakeProc::new();
    proc.spawn(40, "app", 1, "/../../besteffort/pod2222/bbbb");
    let mut index = proc.index();
    index.refresh().unwrap();
    assert_eq!(index.count(POD_B), Some(1));
    assert_eq!(index.count(POD_A), Some(0));
}

#[test]
fn keys_below_a_cgroup_root_that_is_not_the_hierarchy_root_match_too() {
    // `--cgroup-root` pointing below the hierarchy's root: paths lack the key's prefix.
    let proc = FakeProc::new();
    proc.spawn(41, "app", 1, &format!("/test-base/{POD_A}"));
    proc.spawn(42, "other", 1, "/elsewhere/aaaa");
    let mut index = proc.index();
    index.refresh().unwrap();
    assert_eq!(
        index.count(POD_A),
        Some(1),
        "same leaf elsewhere does not count"
    );
    assert_eq!(suffix_match("a/b/c", "b/c"), Some(2));
    assert_eq!(suffix_match("b/c", "x/a/b/c"), Some(2));
    assert_eq!(
        suffix_match("a/bb/c", "b/c"),
        None,
        "not at a component boundary"
    );
    assert_eq!(suffix_match("a/b/c", "a/b/c"), Some(3));
}

#[test]
fn a_vanished_or_corrupt_process_is_skipped() {
    let proc = FakeProc::new();
    proc.spawn(50, "ok", 1, &format!("/{POD_A}"));
    // A pid directory whose files are gone (the process exited mid-listing) or garbage.
    std::fs::create_dir_all(proc.dir.path().join("51")).unwrap();
    std::fs::create_dir_all(proc.dir.path().join("52")).unwrap();
    std::fs::write(proc.dir.path().join("52/stat"), "not a stat line").unwrap();
    let mut index = proc.index();
    let stats = index.refresh().unwrap();
    assert_eq!((stats.listed, stats.added), (3, 1));
    assert_eq!(
        index.count(POD_A),
        Some(1),
        "the others do not make counts unknown"
    );
}

#[test]
fn an_unreadable_root_is_an_error_naming_it_and_counts_are_unknown() {
    let proc = FakeProc::new();
    proc.spawn(60, "a", 1, &format!("/{POD_A}"));
    let mut index = proc.index();
    index.refresh().unwrap();
    let root = proc.dir.path().to_path_buf();
    drop(proc);
    // The directory is gone: the open descriptor lists nothing, the next open fails.
    let _ = index.refresh();
    index.dir = None;
    let err = index.refresh().unwrap_err();
    assert!(
        err.to_string().contains(&root.display().to_string()),
        "{err}"
    );
    assert_eq!(index.count(POD_A), None);
}

#[test]
fn the_real_proc_lists_this_process_in_its_cgroup() {
    // The host's own /proc: this test process is listed under its own cgroup.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let line = if own
        .lines()
        .any(|l| l.starts_with("0::") && own.lines().count() == 1)
    {
        CgroupLine::V2
    } else {
        CgroupLine::V1("memory".into())
    };
    let key = parse_cgroup(&own, &line).unwrap().to_string();
    let mut index = ProcessIndex::new(Path::new("/proc"), line);
    index.refresh().unwrap();
    let me = std::process::id();
    assert!(index.process(me).is_some(), "pid {me} indexed");
    assert!(
        index.pids_in(&key).contains(&me),
        "pid {me} under its cgroup {key:?}"
    );
    assert_eq!(pid_namespace_of(Path::new("/proc")), PidView::Same);
    assert_eq!(pid_namespace_of(&std::env::temp_dir()), PidView::NotProcfs);
}

#[test]
fn a_sandbox_is_told_only_once_its_runtime_init_has_become_pause() {
    let proc = FakeProc::new();
    proc.spawn(70, "runc:[2:INIT]", 5, &format!("/{POD_A}"));
    let mut index = proc.index();
    index.refresh().unwrap();
    assert_eq!(index.is_sandbox(POD_A), None, "not exec'd yet: cannot tell");
    for _ in 0..5 {
        index.refresh().unwrap();
    }
    assert_eq!(
        index.is_sandbox(POD_A),
        None,
        "still waiting: no verdict from a stale name"
    );
    // The exec: same process (pid, start time), a new name.
    std::fs::write(
        proc.dir.path().join("70/stat"),
        stat_line(70, "pause", 1, 5),
    )
    .unwrap();
    index.refresh().unwrap();
    assert_eq!(index.is_sandbox(POD_A), Some(true));
}
