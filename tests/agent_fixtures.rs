//! The agent on fixture cgroup trees copied from real kubelet layouts
//! (tests/fixtures/cgroup/generate.py): the right containers, pod UIDs,
//! QoS classes, runtimes, sandbox marks and values reach Parquet and index.json.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::time::Duration;

use agent_support::{config, fixture, read_index, read_rows, run_agent};
use fine_grained_monitor::agent::DiscoveryMode;

const MIB: i64 = 1_048_576;

fn id(n: u8) -> String {
    let hex = format!("{n:02x}").repeat(32);
    format!("a{}", &hex[1..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_systemd_containerd() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(
        data.path(),
        &fixture("v2-systemd-containerd"),
        DiscoveryMode::Kubernetes,
    );
    cfg.proc_root = fixture("v2-systemd-containerd.proc");
    let metrics = run_agent(cfg, Duration::from_millis(1600)).await;
    assert!(metrics.cycle_counts().0 >= 5, "cycles ran");

    let index = read_index(data.path());
    let keys: Vec<&str> = index.containers.keys().map(String::as_str).collect();
    let (c1, c2, c3) = (id(1), id(2), id(3));
    assert_eq!(
        keys,
        vec![&c1[..12], &c2[..12], &c3[..12]],
        "system.slice is not a container"
    );
    let sandbox = &index.containers[&c1[..12]];
    assert!(sandbox.sandbox, "pause process: sandbox");
    assert_eq!(sandbox.full_id, c1);
    assert_eq!(
        sandbox.pod_uid.as_deref(),
        Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    );
    assert_eq!(sandbox.qos_class, "Burstable");
    assert_eq!(sandbox.runtime.as_deref(), Some("containerd"));
    let app = &index.containers[&c2[..12]];
    assert!(!app.sandbox);
    assert!(app.cgroup_path.as_deref().unwrap().ends_with(".scope"));
    let guaranteed = &index.containers[&c3[..12]];
    assert_eq!(guaranteed.qos_class, "Guaranteed");
    assert_eq!(
        guaranteed.pod_uid.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert!(index.data_range.earliest.is_some() && index.data_range.latest.is_some());
    assert_eq!(index.data_range.rotation_interval_sec, 1);

    let rows = read_rows(data.path());
    assert_eq!(rows.len(), 3);
    let last = rows[&c2[..12]].last().unwrap();
    assert!(rows[&c2[..12]].len() >= 5, "one row per cycle");
    assert_eq!(last.get("cpu_usage_usec"), Some(2_000_000));
    assert_eq!(last.get("cpu_user_usec"), Some(1_400_000));
    assert_eq!(last.get("cpu_nr_throttled"), Some(2));
    assert_eq!(last.get("cpu_throttled_usec"), Some(1000));
    assert_eq!(last.get("memory_current_bytes"), Some(20 * MIB));
    assert_eq!(
        last.get("memory_working_set_bytes"),
        Some(18 * MIB),
        "current - inactive_file"
    );
    assert_eq!(last.get("memory_anon_bytes"), Some(12 * MIB));
    assert_eq!(last.get("memory_file_bytes"), Some(8 * MIB));
    assert_eq!(last.get("memory_limit_bytes"), Some(268_435_456));
    assert_eq!(last.get("memory_oom_events"), Some(2));
    assert_eq!(last.get("memory_oom_kill_events"), Some(1));
    assert_eq!(last.get("pids_current"), Some(3));
    assert_eq!(
        last.get("pids_processes"),
        Some(2),
        "cgroup.procs: 102, 103"
    );
    assert_eq!(
        last.get("io_read_bytes"),
        Some(2 * 4096 + 2 * 1000),
        "summed over devices"
    );
    assert_eq!(last.get("io_write_ops"), Some(4));
    assert_eq!(last.get("cpu_pressure_some_usec"), Some(22));
    assert_eq!(last.get("io_pressure_full_usec"), Some(18));
    // The rest of memory.stat, events, bursts, discards (n = 2 in generate.py).
    for (column, value) in [
        ("memory_shmem_bytes", 2048),
        ("memory_mapped_file_bytes", 4096),
        ("memory_dirty_bytes", 1024),
        ("memory_writeback_bytes", 0),
        ("memory_swap_bytes", 131_072),
        ("memory_active_file_bytes", 6 * MIB),
        ("memory_inactive_file_bytes", 2 * MIB),
        ("memory_anon_thp_bytes", 4 * MIB),
        ("memory_kernel_bytes", 8192),
        ("memory_kernel_stack_bytes", 16_384),
        ("memory_pagetables_bytes", 40_960),
        ("memory_slab_bytes", 8000),
        ("memory_sock_bytes", 16_384),
        ("memory_pgfault", 2000),
        ("memory_pgmajfault", 6),
        ("memory_workingset_refault_file", 10),
        ("memory_pgscan", 200),
        ("memory_pgsteal", 180),
        ("memory_high_events", 8),
        ("memory_max_events", 6),
        ("cpu_nr_bursts", 4),
        ("cpu_burst_usec", 80),
        ("io_discard_bytes", 1024),
        ("io_discard_ops", 2),
        // Limits and peaks (re-read every `limits_every` cycles).
        ("memory_peak_bytes", 24 * MIB),
        ("memory_high_bytes", 16 * MIB),
        ("cpu_quota_usec", 100_000),
        ("cpu_period_usec", 100_000),
        ("cpu_weight", 20),
        ("pids_max", 200),
        ("pids_peak", 7),
    ] {
        assert_eq!(last.get(column), Some(value), "{column}");
    }
    for v1_only in ["memory_pgpgin", "memory_pgpgout", "cpu_shares"] {
        assert_eq!(last.get(v1_only), None, "{v1_only} is v1 only");
    }
    let unlimited = rows[&c1[..12]].last().unwrap();
    for column in [
        "memory_limit_bytes",
        "memory_high_bytes",
        "cpu_quota_usec",
        "pids_max",
    ] {
        assert_eq!(
            unlimited.get(column),
            None,
            "{column}: max = no limit = null"
        );
    }
    assert_eq!(unlimited.get("cpu_period_usec"), Some(100_000));
    // Timestamps sit on the interval grid.
    for row in &rows[&c2[..12]] {
        assert_eq!(row.timestamp_ms % 50, 0, "{}", row.timestamp_ms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_systemd_crio_skips_conmon() {
    let data = tempfile::tempdir().unwrap();
    let cfg = config(
        data.path(),
        &fixture("v2-systemd-crio"),
        DiscoveryMode::Kubernetes,
    );
    run_agent(cfg, Duration::from_millis(400)).await;
    let index = read_index(data.path());
    let c4 = id(4);
    let keys: Vec<&str> = index.containers.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![&c4[..12]],
        "conmon scope and the scope's `container` child are not containers"
    );
    let entry = &index.containers[&c4[..12]];
    assert_eq!(entry.runtime.as_deref(), Some("crio"));
    assert_eq!(entry.qos_class, "BestEffort");
    assert_eq!(
        entry.pod_uid.as_deref(),
        Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    );
    assert!(
        !entry.sandbox,
        "pid not visible in this /proc: unknown, not a sandbox"
    );
    let rows = read_rows(data.path());
    // The scope's own files, not the conmon scope's (n = 9).
    assert_eq!(
        rows[&c4[..12]].last().unwrap().get("cpu_usage_usec"),
        Some(4_000_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_cgroupfs_docker() {
    let data = tempfile::tempdir().unwrap();
    let cfg = config(
        data.path(),
        &fixture("v1-cgroupfs-docker"),
        DiscoveryMode::Kubernetes,
    );
    run_agent(cfg, Duration::from_millis(400)).await;
    let index = read_index(data.path());
    let (c5, c6, c7) = (id(5), id(6), id(7));
    let qos: Vec<(&str, &str)> = index
        .containers
        .iter()
        .map(|(k, v)| (k.as_str(), v.qos_class.as_str()))
        .collect();
    assert_eq!(
        qos,
        vec![
            (&c5[..12], "Burstable"),
            (&c6[..12], "BestEffort"),
            (&c7[..12], "Guaranteed")
        ]
    );
    assert_eq!(
        index.containers[&c5[..12]].pod_uid.as_deref(),
        Some("0a0a0a0a-1b1b-2c2c-3d3d-4e4e4e4e4e4e")
    );
    let rows = read_rows(data.path());
    let r5 = rows[&c5[..12]].last().unwrap();
    assert_eq!(
        r5.get("cpu_usage_usec"),
        Some(5_000_000),
        "cpuacct.usage ns -> usec"
    );
    assert_eq!(
        r5.get("cpu_user_usec"),
        Some(3_500_000),
        "cpuacct.stat ticks -> usec"
    );
    assert_eq!(r5.get("cpu_system_usec"), Some(1_500_000));
    assert_eq!(r5.get("cpu_throttled_usec"), Some(2500));
    assert_eq!(r5.get("memory_current_bytes"), Some(50 * MIB));
    assert_eq!(r5.get("memory_working_set_bytes"), Some(45 * MIB));
    assert_eq!(r5.get("memory_anon_bytes"), Some(30 * MIB));
    assert_eq!(r5.get("memory_limit_bytes"), None, "v1 unlimited = null");
    assert_eq!(r5.get("memory_oom_kill_events"), Some(4));
    assert_eq!(
        r5.get("memory_oom_events"),
        None,
        "v1 has no OOM event counter"
    );
    assert_eq!(r5.get("io_read_bytes"), Some(5 * 4096 + 5 * 1000));
    assert_eq!(r5.get("io_write_bytes"), Some(5 * 8192));
    assert_eq!(r5.get("io_read_ops"), Some(10));
    assert_eq!(r5.get("pids_current"), Some(6));
    assert_eq!(
        r5.get("pids_processes"),
        Some(1),
        "v1 cgroup.procs: one pid"
    );
    assert_eq!(
        r5.get("cpu_pressure_some_usec"),
        None,
        "no v2 mount: no PSI"
    );
    // memory.stat's hierarchical totals win over the cgroup's own lines.
    for (column, value) in [
        ("memory_swap_bytes", 327_680),
        ("memory_pgpgin", 1000),
        ("memory_pgpgout", 750),
        ("memory_pgfault", 5000),
        ("memory_pgmajfault", 15),
        ("memory_anon_thp_bytes", 10 * MIB),
        ("memory_shmem_bytes", 5120),
        ("memory_mapped_file_bytes", 10_240),
        ("memory_dirty_bytes", 2560),
        ("cpu_nr_bursts", 5),
        ("cpu_burst_usec", 35),
        ("io_discard_bytes", 2560),
        ("io_discard_ops", 5),
        ("memory_peak_bytes", 60 * MIB),
        ("cpu_period_usec", 100_000),
        ("cpu_shares", 500),
        ("pids_peak", 10),
    ] {
        assert_eq!(r5.get(column), Some(value), "{column}");
    }
    for column in [
        "cpu_quota_usec",
        "pids_max",
        "memory_kernel_bytes",
        "cpu_weight",
    ] {
        assert_eq!(r5.get(column), None, "{column}");
    }
    let r7 = rows[&c7[..12]].last().unwrap();
    assert_eq!(
        r7.get("memory_limit_bytes"),
        Some(1_073_741_824),
        "hierarchical_memory_limit"
    );
    assert_eq!(r7.get("cpu_quota_usec"), Some(140_000));
    assert_eq!(r7.get("pids_max"), Some(700));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappearing_container_leaves_the_others_unaffected() {
    let tree = tempfile::tempdir().unwrap();
    copy_dir(&fixture("v1-cgroupfs-docker"), tree.path());
    let data = tempfile::tempdir().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics = fine_grained_monitor::agent::SelfMetrics::new();
    let cfg = config(data.path(), tree.path(), DiscoveryMode::Kubernetes);
    let handle =
        fine_grained_monitor::agent::Agent::start(cfg, None, metrics.clone(), stop.clone())
            .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The burstable container goes away in every hierarchy, mid-run.
    for h in ["cpu,cpuacct", "memory", "blkio", "pids"] {
        std::fs::remove_dir_all(tree.path().join(h).join("kubepods/burstable")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    stop.cancel();
    handle.task.await.unwrap().unwrap();
    let rows = read_rows(data.path());
    let (c5, c6) = (id(5), id(6));
    let gone_last = rows[&c5[..12]].last().unwrap().timestamp_ms;
    let stayed = &rows[&c6[..12]];
    assert!(
        stayed.last().unwrap().timestamp_ms > gone_last + 200,
        "others keep going"
    );
    // No gap for the others: consecutive samples 50 ms apart (a missed tick would show 100).
    let late = metrics.cycle_counts().1;
    if late == 0 {
        for pair in stayed.windows(2) {
            assert_eq!(pair[1].timestamp_ms - pair[0].timestamp_ms, 50);
        }
    }
    let index = read_index(data.path());
    assert!(
        index.containers.contains_key(&c5[..12]),
        "seen containers stay in the index"
    );
    let text = encode(&metrics);
    assert!(
        !text.contains("fgm_agent_read_errors_total{"),
        "a vanished cgroup is not an error: {text}"
    );
}

fn encode(metrics: &fine_grained_monitor::agent::SelfMetrics) -> String {
    let mut s = String::new();
    metrics.encode_openmetrics(&mut s);
    s
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// kubelet with `--cgroup-root=/kubelet` (kind, the test node): pod UID and
/// QoS class for every class, with both drivers, and on a hybrid host the
/// numbers from the v1 controllers plus pressure from the unified mount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_kubelet_cgroup_root_both_drivers() {
    for (tree, ids) in [
        ("hybrid-cgroupfs-kubelet-root", [8u8, 9, 10]),
        ("v2-systemd-kubelet-slice", [11, 12, 13]),
    ] {
        let data = tempfile::tempdir().unwrap();
        let cfg = config(data.path(), &fixture(tree), DiscoveryMode::Kubernetes);
        run_agent(cfg, Duration::from_millis(400)).await;
        let index = read_index(data.path());
        let expected = [
            (ids[0], "Burstable"),
            (ids[1], "BestEffort"),
            (ids[2], "Guaranteed"),
        ];
        assert_eq!(index.containers.len(), 3, "{tree}: {:?}", index.containers);
        let rows = read_rows(data.path());
        for (n, qos) in expected {
            let c = id(n);
            let entry = &index.containers[&c[..12]];
            assert_eq!(entry.full_id, c, "{tree}");
            assert_eq!(entry.qos_class, qos, "{tree} container {n}");
            let uid = format!("{}-0000-4000-8000-{n:012}", format!("{n:02}").repeat(4));
            assert_eq!(entry.pod_uid.as_deref(), Some(uid.as_str()), "{tree}");
            let last = rows[&c[..12]].last().unwrap();
            assert_eq!(
                last.get("cpu_usage_usec"),
                Some(i64::from(n) * 1_000_000),
                "{tree}"
            );
            assert_eq!(
                last.get("cpu_pressure_some_usec"),
                Some(i64::from(n) * 11),
                "{tree}: PSI"
            );
        }
    }
}

/// Two containers whose ids share their first 12 hex characters stay two row
/// sets: the second gets a longer short id, in Parquet and index.json alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_sharing_a_short_id_stay_apart() {
    let tree = tempfile::tempdir().unwrap();
    copy_dir(&fixture("v2-systemd-kubelet-slice"), tree.path());
    let pods = tree.path().join("kubelet.slice/kubelet-kubepods.slice");
    let first = pods.join(format!(
        "kubelet-kubepods-pod13131313_0000_4000_8000_000000000013.slice/cri-containerd-{}.scope",
        id(13)
    ));
    // Same 12-character prefix, different id, in another pod.
    let twin_id = format!("{}{}", &id(13)[..12], "f".repeat(52));
    let twin_pod = pods.join("kubelet-kubepods-pod77777777_0000_4000_8000_000000000077.slice");
    let twin = twin_pod.join(format!("cri-containerd-{twin_id}.scope"));
    copy_dir(&first, &twin);
    std::fs::write(twin.join("cpu.stat"), "usage_usec 777\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), tree.path(), DiscoveryMode::Kubernetes);
    run_agent(cfg, Duration::from_millis(400)).await;
    let index = read_index(data.path());
    let full_ids: Vec<&str> = index
        .containers
        .values()
        .map(|e| e.full_id.as_str())
        .collect();
    assert_eq!(index.containers.len(), 4, "{full_ids:?}");
    let (short, entry) = index
        .containers
        .iter()
        .find(|(_, e)| e.full_id == twin_id)
        .expect("the twin is in the index");
    let original = &index.containers[&id(13)[..12]];
    assert_eq!(original.full_id, id(13));
    assert!(
        short.len() > 12 && twin_id.starts_with(short.as_str()),
        "{short}"
    );
    assert_eq!(
        entry.pod_uid.as_deref(),
        Some("77777777-0000-4000-8000-000000000077")
    );
    let rows = read_rows(data.path());
    assert_eq!(rows[short].last().unwrap().get("cpu_usage_usec"), Some(777));
    assert_eq!(
        rows[&id(13)[..12]].last().unwrap().get("cpu_usage_usec"),
        Some(13_000_000)
    );
    assert_eq!(
        rows[short].len(),
        rows[&id(13)[..12]].len(),
        "one row per cycle each, not two rows per cycle under one id"
    );
}
