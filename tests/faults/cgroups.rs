//! Faults in the cgroup tree: a file that cannot be read, a cgroup removed
//! while it is read.

use fine_grained_monitor::agent::collector::Collector;
use fine_grained_monitor::agent::mountinfo;
use fine_grained_monitor::agent::sampler::ReadErrors;
use fine_grained_monitor::agent::{DiscoveryMode, SelfMetrics};
use fine_grained_monitor::store::schema::METRICS;

use crate::support::{add_container, container_source, many_containers};

fn slot(name: &str) -> usize {
    METRICS.iter().position(|m| m.name == name).unwrap()
}

/// Fault: one cgroup file cannot be read (here `memory.stat` replaced by a
/// directory: the read fails with EISDIR; a kernel bug or an LSM denial
/// looks the same). User sees: `fgm_agent_read_errors_total{kind="io"}`
/// counts it; that file's metrics are null for that container. Data lost:
/// those metrics of that container only; every other value is recorded.
#[test]
fn unreadable_cgroup_file_nulls_its_metrics_only() {
    let tree = tempfile::tempdir().unwrap();
    let ids = many_containers(tree.path(), 3);
    let broken = tree.path().join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{:08x}_0000_4000_8000_000000000000.slice/cri-containerd-{}.scope/memory.stat",
        1, ids[1]
    ));
    std::fs::remove_file(&broken).unwrap();
    std::fs::create_dir(&broken).unwrap();
    let h = mountinfo::from_root_dir(tree.path()).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    let mut errors = ReadErrors::default();
    let cycle = c.collect(chrono::Utc::now(), &mut errors);
    assert_eq!(cycle.containers.len(), 3);
    assert!(errors.io >= 1, "{errors:?}");
    for sample in &cycle.containers {
        let anon = sample.values[slot("memory_anon_bytes")];
        let cpu = sample.values[slot("cpu_usage_usec")];
        assert_eq!(cpu, Some(2_000_000), "other files still read");
        if sample.full_id == ids[1] {
            assert_eq!(anon, None, "memory.stat unreadable: null, not zero");
        } else {
            assert_eq!(anon, Some(12 * 1_048_576));
        }
    }
    let metrics = SelfMetrics::new();
    for _ in 0..errors.io {
        metrics.read_error("io");
    }
    let mut text = String::new();
    metrics.encode_openmetrics(&mut text);
    assert!(
        text.contains("fgm_agent_read_errors_total{kind=\"io\"}"),
        "{text}"
    );
}

/// Fault: a cgroup is removed between discovery and the read, or while the
/// agent reads it (a container exits). User sees: nothing: the container
/// stops being sampled from that cycle, no error is counted, the others go
/// on. Data lost: none (a removed cgroup has nothing left to read). On this
/// machine's real cgroups the same is checked by
/// agent_real_cgroups::new_real_cgroup_is_sampled_in_the_next_cycle.
#[test]
fn cgroup_removed_between_two_reads_is_dropped_silently() {
    let tree = tempfile::tempdir().unwrap();
    let ids = many_containers(tree.path(), 20);
    let h = mountinfo::from_root_dir(tree.path()).unwrap();
    let mut c = Collector::new(h, DiscoveryMode::Kubernetes, "/proc".into(), 5, 30);
    let mut errors = ReadErrors::default();
    let t0 = chrono::Utc::now();
    assert_eq!(c.collect(t0, &mut errors).containers.len(), 20);
    // Half go away and one comes, all between two cycles.
    let pod = |i: usize| {
        tree.path().join(format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{i:08x}_0000_4000_8000_000000000000.slice"
        ))
    };
    for i in (0..20).step_by(2) {
        std::fs::remove_dir_all(pod(i)).unwrap();
    }
    let new = add_container(tree.path(), &container_source(), 99);
    let cycle = c.collect(t0 + chrono::Duration::seconds(1), &mut errors);
    let seen: Vec<&str> = cycle
        .containers
        .iter()
        .map(|s| s.full_id.as_str())
        .collect();
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen.contains(&new.as_str()));
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(seen.contains(&id.as_str()), i % 2 == 1, "container {i}");
    }
    assert_eq!(
        errors,
        ReadErrors::default(),
        "a removed cgroup is not an error"
    );
}
