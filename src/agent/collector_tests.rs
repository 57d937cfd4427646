use super::*;
use crate::agent::mountinfo;
use chrono::TimeZone;

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + second, 0).unwrap()
}

/// A v2 container directory with the files the test reads.
fn container(dir: &std::path::Path, usage: i64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cpu.stat"), format!("usage_usec {usage}\n")).unwrap();
    std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
}

fn v2_root(dir: &std::path::Path) {
    std::fs::write(dir.join("cgroup.controllers"), "cpu memory io pids\n").unwrap();
}

fn usage(cycle: &Cycle, id: &str) -> Option<i64> {
    cycle
        .containers
        .iter()
        .find(|c| c.full_id == id)
        .and_then(|c| c.values[slots::CPU_USAGE])
}

const A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const C: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

#[test]
fn a_new_container_is_sampled_in_the_first_cycle_after_its_cgroup_appears() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    v2_root(root);
    let kp = root.join("kubelet.slice/kubelet-kubepods.slice");
    let burstable = kp.join("kubelet-kubepods-burstable.slice");
    container(
        &burstable.join(format!(
            "kubelet-kubepods-burstable-pod11_22.slice/cri-containerd-{A}.scope"
        )),
        1,
    );
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    let mut errors = ReadErrors::default();
    let first = c.collect(at(0), &mut errors);
    assert_eq!(first.containers.len(), 1);
    assert!(
        c.watched_dirs() >= 4,
        "root, kubelet.slice, kubepods, burstable, pod"
    );

    // A container in a new pod of an existing QoS slice...
    container(
        &burstable.join(format!(
            "kubelet-kubepods-burstable-pod33_44.slice/cri-containerd-{B}.scope"
        )),
        2,
    );
    let second = c.collect(at(1), &mut errors);
    assert_eq!(usage(&second, B), Some(2), "sampled in the very next cycle");
    // ... and a whole new QoS slice, pod and container created at once.
    container(
        &kp.join(format!(
            "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod55_66.slice/cri-containerd-{C}.scope"
        )),
        3,
    );
    let third = c.collect(at(2), &mut errors);
    assert_eq!(usage(&third, C), Some(3));
    assert_eq!(third.containers.len(), 3);
    let qos = &c
        .tracked()
        .values()
        .find(|t| t.container.full_id == C)
        .unwrap()
        .container;
    assert_eq!(qos.qos_class, Some("BestEffort"));
    assert_eq!(
        c.walks(),
        1,
        "found from events, without walking the tree again"
    );

    // A removed container drops out; its pod directory's watch goes with it.
    let watched = c.watched_dirs();
    std::fs::remove_dir_all(burstable.join("kubelet-kubepods-burstable-pod33_44.slice")).unwrap();
    let fourth = c.collect(at(3), &mut errors);
    assert_eq!(fourth.containers.len(), 2);
    assert_eq!(usage(&fourth, B), None);
    // The directory's watch ends once nothing holds it (our files were closed just now).
    c.collect(at(4), &mut errors);
    assert!(c.watched_dirs() < watched, "watches follow the live tree");
    assert_eq!(errors, ReadErrors::default());
}

#[test]
fn files_missing_at_first_open_are_opened_in_the_next_cycles() {
    // A v1 host: the runtime creates the container in cpuacct first, memory later.
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    for h in ["cpuacct", "memory"] {
        std::fs::create_dir_all(root.join(h)).unwrap();
        std::fs::write(root.join(h).join("cgroup.procs"), "1\n").unwrap();
    }
    let rel = format!("kubepods/burstable/pod1/{A}");
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    let mut errors = ReadErrors::default();
    std::fs::create_dir_all(root.join("cpuacct/kubepods/burstable/pod1")).unwrap();
    c.collect(at(0), &mut errors);
    std::fs::create_dir_all(root.join("cpuacct").join(&rel)).unwrap();
    std::fs::write(
        root.join("cpuacct").join(&rel).join("cpuacct.usage"),
        "5000\n",
    )
    .unwrap();
    let cycle = c.collect(at(1), &mut errors);
    let sample = &cycle.containers[0];
    assert_eq!(sample.values[slots::CPU_USAGE], Some(5));
    assert_eq!(
        sample.values[slots::MEMORY_CURRENT],
        None,
        "not created yet"
    );
    std::fs::create_dir_all(root.join("memory").join(&rel)).unwrap();
    std::fs::write(
        root.join("memory").join(&rel).join("memory.usage_in_bytes"),
        "8192\n",
    )
    .unwrap();
    let cycle = c.collect(at(2), &mut errors);
    assert_eq!(
        cycle.containers[0].values[slots::MEMORY_CURRENT],
        Some(8192)
    );
}

#[test]
fn without_events_the_tree_is_walked_every_scan_every_cycles() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    v2_root(root);
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 2, 30);
    c.watch = None;
    let mut errors = ReadErrors::default();
    c.collect(at(0), &mut errors);
    container(&root.join(format!("kubepods/pod1/{A}")), 7);
    let cycle = c.collect(at(1), &mut errors);
    assert!(cycle.containers.is_empty(), "between walks");
    let cycle = c.collect(at(2), &mut errors);
    assert_eq!(usage(&cycle, A), Some(7));
    assert_eq!(c.walks(), 2);
}

#[test]
fn containers_beyond_the_descriptor_budget_are_read_by_reopening_their_files() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    v2_root(root);
    let ids: Vec<String> = (0..6).map(|i| format!("{i:x}").repeat(64)).collect();
    for (i, id) in ids.iter().enumerate() {
        container(&root.join(format!("kubepods/pod{i}/{id}")), i as i64 + 1);
    }
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    let plan = c.files_per_container();
    // Room for two containers' two files each, checked against the whole plan.
    c.fix_fd_budget(plan + 2);
    let mut errors = ReadErrors::default();
    let cycle = c.collect(at(0), &mut errors);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(usage(&cycle, id), Some(i as i64 + 1), "container {i} read");
    }
    let status = c.fd_status();
    assert_eq!(status.kept_files, 4, "{status:?}");
    assert_eq!(status.reopened, 4, "{status:?}");
    // Reopened files follow the file, not a stale descriptor.
    std::fs::write(
        root.join(format!("kubepods/pod5/{}/cpu.stat", ids[5])),
        "usage_usec 99\n",
    )
    .unwrap();
    let cycle = c.collect(at(1), &mut errors);
    assert_eq!(usage(&cycle, &ids[5]), Some(99));

    // More room (a raised limit): the next full walk keeps them open again.
    c.fix_fd_budget(1000);
    c.scan(&mut errors);
    let status = c.fd_status();
    assert_eq!((status.kept_files, status.reopened), (12, 0), "{status:?}");
    // Less room: shed down to the budget, still reading everything.
    c.fix_fd_budget(5);
    c.scan(&mut errors);
    let cycle = c.collect(at(2), &mut errors);
    assert_eq!(cycle.containers.len(), 6);
    assert!(c.fd_status().kept_files <= 5, "{:?}", c.fd_status());
    assert_eq!(errors, ReadErrors::default());
}

/// A fake `/proc` entry: `<pid>/stat` and a v1 + v2 `<pid>/cgroup` naming `cgroup`.
fn fake_process(proc_root: &std::path::Path, pid: u32, comm: &str, cgroup: &str) {
    let d = proc_root.join(pid.to_string());
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("stat"),
        format!(
            "{pid} ({comm}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {} 0 0\n",
            1000 + pid
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("cgroup"),
        format!("5:pids:/{cgroup}\n3:cpuacct:/{cgroup}\n0::/{cgroup}\n"),
    )
    .unwrap();
}

#[test]
fn from_another_pid_namespace_processes_come_from_the_index_never_a_wrong_zero() {
    // As the agent's pod sees a v1 host: `cgroup.procs` of other cgroups reads empty.
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let proc_root = root.join("proc");
    for h in ["cpuacct", "pids"] {
        std::fs::create_dir_all(root.join(h)).unwrap();
        std::fs::write(root.join(h).join("cgroup.procs"), "").unwrap();
    }
    let app = format!("kubepods/burstable/pod1/{A}");
    let pause = format!("kubepods/burstable/pod1/{B}");
    let young = format!("kubepods/burstable/pod1/{C}");
    for (rel, threads) in [(&app, 5), (&pause, 1), (&young, 1)] {
        std::fs::create_dir_all(root.join("cpuacct").join(rel)).unwrap();
        std::fs::write(root.join("cpuacct").join(rel).join("cpuacct.usage"), "1\n").unwrap();
        let pids = root.join("pids").join(rel);
        std::fs::create_dir_all(&pids).unwrap();
        std::fs::write(pids.join("cgroup.procs"), "").unwrap();
        std::fs::write(pids.join("pids.current"), format!("{threads}\n")).unwrap();
    }
    fake_process(&proc_root, 100, "pause", &pause);
    fake_process(&proc_root, 101, "nginx", &app);
    fake_process(&proc_root, 102, "nginx", &app);
    fake_process(
        &proc_root,
        7,
        "containerd",
        "system.slice/containerd.service",
    );

    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, proc_root.clone(), 5, 30);
    let processes = |cycle: &Cycle, id: &str| {
        cycle
            .containers
            .iter()
            .find(|s| s.full_id == id)
            .map(|s| s.values[slots::PROCESSES])
    };
    let mut errors = ReadErrors::default();
    let from_procs = c.collect(at(0), &mut errors);
    assert_eq!(
        processes(&from_procs, A),
        Some(Some(0)),
        "cgroup.procs as read from another PID namespace: the wrong zero this fixes"
    );

    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, proc_root.clone(), 5, 30);
    c.count_processes_from_index();
    let cycle = c.collect(at(0), &mut errors);
    assert_eq!(processes(&cycle, A), Some(Some(2)));
    assert_eq!(processes(&cycle, B), Some(Some(1)));
    assert_eq!(
        processes(&cycle, C),
        Some(None),
        "a thread but no process listed yet: unknown, not 0"
    );
    let sandbox = |c: &Collector, id: &str| {
        c.tracked()
            .values()
            .find(|t| t.container.full_id == id)
            .and_then(|t| t.sandbox)
    };
    assert_eq!(sandbox(&c, B), Some(true), "pause from the index");
    assert_eq!(sandbox(&c, A), Some(false));
    let pause_sample = cycle.containers.iter().find(|s| s.full_id == B).unwrap();
    assert_eq!(pause_sample.pod_uid.as_deref(), Some("1"));

    // The young container's process shows up; one of the app's exits.
    fake_process(&proc_root, 103, "worker", &young);
    std::fs::remove_dir_all(proc_root.join("102")).unwrap();
    let cycle = c.collect(at(1), &mut errors);
    assert_eq!(processes(&cycle, A), Some(Some(1)));
    assert_eq!(processes(&cycle, C), Some(Some(1)));
    assert!(
        cycle
            .containers
            .iter()
            .find(|s| s.full_id == B)
            .unwrap()
            .sandbox
    );
}

#[test]
fn two_kubelets_on_one_host_each_agent_records_its_own() {
    // Two nodes' kubelets on one host (kind, the test world): /kubelet-1 and /kubelet-2.
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    v2_root(root);
    let own_pod = "0a0a0a0a-1111-2222-3333-444444444444";
    container(
        &root.join(format!("kubelet-2/kubepods/burstable/pod{own_pod}/{A}")),
        1,
    );
    container(&root.join(format!("kubelet-1/kubepods/pod1/{B}")), 2);
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    c.set_scope(Scope::OwnPod(own_pod.into()));
    let mut errors = ReadErrors::default();
    let cycle = c.collect(at(0), &mut errors);
    assert_eq!(c.scope(), &Scope::Under("kubelet-2".into()));
    assert_eq!(usage(&cycle, A), Some(1));
    assert_eq!(usage(&cycle, B), None, "the other kubelet's container");

    // New containers under either root: only its own kubelet's are recorded, by event and by
    // the next full walk alike.
    container(
        &root.join(format!("kubelet-2/kubepods/besteffort/pod2/{C}")),
        3,
    );
    let other = "d4".repeat(32);
    container(&root.join(format!("kubelet-1/kubepods/pod3/{other}")), 4);
    let cycle = c.collect(at(1), &mut errors);
    assert_eq!(usage(&cycle, C), Some(3));
    assert_eq!(usage(&cycle, &other), None);
    c.scan(&mut errors);
    let cycle = c.collect(at(2), &mut errors);
    let ids: Vec<&str> = cycle
        .containers
        .iter()
        .map(|s| s.full_id.as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&A) && ids.contains(&C), "{ids:?}");

    // Without its own pod in the tree (not in a pod), every container is recorded.
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut all = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    all.set_scope(Scope::OwnPod("not-here".into()));
    assert_eq!(all.collect(at(0), &mut errors).containers.len(), 4);
}

#[test]
fn slow_files_are_read_by_reopening_and_never_hold_a_descriptor() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    v2_root(root);
    let dir = root.join(format!("kubepods/pod1/{A}"));
    container(&dir, 1);
    std::fs::write(dir.join("memory.max"), "1048576\n").unwrap();
    let h = mountinfo::from_root_dir(root).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 3);
    let mut errors = ReadErrors::default();
    let limit = |cycle: &Cycle| cycle.containers[0].values[slots::MEMORY_LIMIT];
    assert_eq!(limit(&c.collect(at(0), &mut errors)), Some(1_048_576));
    let status = c.fd_status();
    assert_eq!(
        (status.kept_files, status.reopened),
        (2, 0),
        "cpu.stat and memory.current kept, memory.max not: {status:?}"
    );
    std::fs::write(dir.join("memory.max"), "2097152\n").unwrap();
    assert_eq!(
        limit(&c.collect(at(1), &mut errors)),
        Some(1_048_576),
        "carried"
    );
    c.collect(at(2), &mut errors);
    assert_eq!(
        limit(&c.collect(at(3), &mut errors)),
        Some(2_097_152),
        "re-read every limits_every cycles"
    );
    assert_eq!(errors, ReadErrors::default());
}
