use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::DateTime;

use super::*;
use crate::agent::contract::{ContainerSample, Cycle, PodInfo};
use crate::store::schema::{METRICS, MetricKind, metric_index};

/// A sample whose every metric is set to `base + column index`.
fn sample(short: &str, base: i64) -> ContainerSample {
    ContainerSample {
        short_id: short.to_string(),
        full_id: format!("{short}{}", "0".repeat(64 - short.len())),
        cgroup_path: format!(
            "kubepods.slice/kubepods-burstable.slice/cri-containerd-{short}.scope"
        ),
        values: (0..METRICS.len()).map(|i| Some(base + i as i64)).collect(),
        pod_uid: None,
        sandbox: false,
        devices: Vec::new(),
    }
}

fn cycle(containers: Vec<ContainerSample>) -> Cycle {
    Cycle {
        timestamp: DateTime::from_timestamp_millis(1_700_000_000_250),
        containers,
        network: Vec::new(),
        processes: Vec::new(),
    }
}

fn pod(c: &ContainerSample) -> Option<Arc<PodInfo>> {
    c.full_id.starts_with("aaaa").then(|| {
        Arc::new(PodInfo {
            pod_name: "web-0".into(),
            namespace: "shop".into(),
            pod_uid: "uid-1".into(),
            labels: BTreeMap::new(),
            container_name: "nginx".into(),
            image: Some("nginx:1.27".into()),
            host_network: false,
            requests: None,
        })
    })
}

fn render(c: &Cycle, filter: Option<&ContainerFilter>, format: Format) -> String {
    let mut out = String::new();
    render_containers(c, &pod, filter, format, &mut out);
    out
}

#[test]
fn families_are_sorted_unique_and_backed_by_the_schema() {
    let names: Vec<_> = FAMILIES.iter().map(|f| f.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted);
    for f in FAMILIES {
        let def = source_def(f).unwrap_or_else(|| panic!("{} has no column {}", f.name, f.source));
        assert_eq!(def.kind, f.kind, "{}: kind differs from column", f.name);
        assert_eq!(
            f.kind == MetricKind::Counter,
            f.name.ends_with("_total"),
            "{}",
            f.name
        );
        let seconds = f.name.contains("_seconds");
        // cAdvisor's CPU period and quota keep the kernel's microseconds.
        let raw_micros = matches!(
            f.name,
            "container_spec_cpu_period" | "container_spec_cpu_quota"
        );
        assert_eq!(
            seconds,
            def.unit == "usec" && !raw_micros,
            "{}: unit {}",
            f.name,
            def.unit
        );
        assert_eq!(seconds, f.convert == Convert::MicrosToSeconds, "{}", f.name);
    }
}

#[test]
fn renders_labels_values_and_timestamps() {
    let out = render(
        &cycle(vec![sample("aaaa11112222", 1_000_000)]),
        None,
        Format::Text,
    );
    let labels = "container=\"nginx\",id=\"/kubepods.slice/kubepods-burstable.slice/cri-containerd-aaaa11112222.scope\",image=\"nginx:1.27\",namespace=\"shop\",pod=\"web-0\"";
    let cpu = metric_index("cpu_usage_usec").unwrap_or_default() as i64;
    let want = format!(
        "container_cpu_usage_seconds_total{{{labels},cpu=\"total\"}} {} 1700000000250\n",
        (1_000_000 + cpu) as f64 / 1e6
    );
    assert!(out.contains(&want), "missing {want}\nin\n{out}");
    let rss = metric_index("memory_anon_bytes").unwrap_or_default() as i64;
    assert!(out.contains(&format!(
        "container_memory_rss{{{labels}}} {} 1700000000250\n",
        1_000_000 + rss
    )));
    assert!(out.contains(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n"
    ));
    assert!(out.contains("# TYPE container_cpu_usage_seconds_total counter\n"));
    assert!(out.contains("# TYPE container_threads gauge\n"));
    assert!(out.contains(
        "# HELP container_processes Number of processes running inside the container.\n"
    ));
    let procs = metric_index("pids_processes").unwrap_or_default() as i64;
    assert!(out.contains(&format!(
        "container_processes{{{labels}}} {} 1700000000250\n",
        1_000_000 + procs
    )));
    // One HELP and one TYPE per family, each family served (the per-device ones only for
    // a container that used a device).
    let per_device = FAMILIES
        .iter()
        .filter(|f| f.convert == Convert::PerDevice)
        .count();
    assert_eq!(per_device, 4);
    assert_eq!(out.matches("# TYPE ").count(), FAMILIES.len() - per_device);
}

#[test]
fn disk_families_have_a_series_per_device_and_never_the_sum() {
    use crate::agent::slots::DeviceIo;
    let mut s = sample("aaaa11112222", 0);
    for (minor, read) in [(0, 100), (16, 50)] {
        s.devices.push(DeviceIo {
            major: 8,
            minor,
            name: Some(Arc::from(if minor == 0 { "/dev/sda" } else { "/dev/sdb" })),
            read_bytes: Some(read),
            write_bytes: Some(7),
            read_ops: Some(1),
            write_ops: None,
        });
    }
    let out = render(&cycle(vec![s]), None, Format::Text);
    let reads: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("container_fs_reads_bytes_total{"))
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(
        reads[0].contains("device=\"/dev/sda\"} 100 "),
        "{}",
        reads[0]
    );
    assert!(
        reads[1].contains("device=\"/dev/sdb\"} 50 "),
        "{}",
        reads[1]
    );
    assert!(
        !out.lines()
            .any(|l| l.starts_with("container_fs_writes_total{")),
        "no value, no series"
    );
    assert_eq!(
        out.matches("# TYPE container_fs_reads_bytes_total counter")
            .count(),
        1
    );
}

#[test]
fn unknown_pod_gets_only_id() {
    let out = render(&cycle(vec![sample("bbbb11112222", 5)]), None, Format::Text);
    assert!(out.contains(
        "container_threads{id=\"/kubepods.slice/kubepods-burstable.slice/cri-containerd-bbbb11112222.scope\"} "
    ));
    assert!(!out.contains("namespace="));
}

#[test]
fn missing_values_are_left_out_and_unlimited_memory_is_zero() {
    let mut s = sample("aaaa11112222", 10);
    let limit = metric_index("memory_limit_bytes").unwrap_or_default();
    let psi = metric_index("cpu_pressure_full_usec").unwrap_or_default();
    s.values[limit] = None;
    s.values[psi] = None;
    let out = render(&cycle(vec![s.clone()]), None, Format::Text);
    assert!(
        !out.contains("container_pressure_cpu_stalled_seconds_total"),
        "{out}"
    );
    assert!(out.contains("container_spec_memory_limit_bytes{"));
    assert!(out.contains("} 0 1700000000250\n"), "{out}");
    // No memory data at all: no limit either.
    let usage = metric_index("memory_current_bytes").unwrap_or_default();
    s.values[usage] = None;
    let out = render(&cycle(vec![s]), None, Format::Text);
    assert!(!out.contains("container_spec_memory_limit_bytes"), "{out}");
}

#[test]
fn openmetrics_names_counter_families_without_total() {
    let out = render(
        &cycle(vec![sample("aaaa11112222", 0)]),
        None,
        Format::OpenMetrics,
    );
    assert!(
        out.contains("# TYPE container_cpu_usage_seconds counter\n"),
        "{out}"
    );
    assert!(out.contains("# HELP container_oom_events Count of out of memory events"));
    assert!(out.contains("# TYPE container_memory_rss gauge\n"));
    assert!(out.contains(" 1700000000.250\n"), "{out}");
    assert!(!out.contains("# EOF"), "EOF is the server's job");
}

#[test]
fn filter_by_short_id_or_full_id_prefix() {
    let c = cycle(vec![sample("aaaa11112222", 0), sample("bbbb11112222", 0)]);
    for id in ["bbbb11112222", "bbbb111122220000", "BBBB11112222"] {
        let f = ContainerFilter::parse(id).unwrap_or_else(|e| panic!("{e}"));
        let out = render(&c, Some(&f), Format::Text);
        assert!(out.contains("bbbb11112222"), "{id}");
        assert!(!out.contains("aaaa11112222"), "{id}");
    }
    let f = ContainerFilter::parse("cccc11112222").unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    assert_eq!(
        render_containers(&c, &pod, Some(&f), Format::Text, &mut out),
        0
    );
    assert!(out.is_empty());
}

#[test]
fn filter_rejects_non_ids() {
    for bad in [
        "",
        "abc",
        "../../etc/passwd",
        "zzzz11112222",
        &"a".repeat(65),
        "aaaa1111 2222",
    ] {
        let e = ContainerFilter::parse(bad).expect_err(bad);
        assert!(e.to_string().contains("invalid container id"), "{e}");
    }
}

#[test]
fn label_values_are_escaped() {
    let mut s = sample("aaaa11112222", 0);
    s.cgroup_path = "odd\"path\\with\nnewline".into();
    let labels = container_labels(&s, None);
    assert_eq!(labels, "id=\"/odd\\\"path\\\\with\\nnewline\"");
}

#[test]
fn empty_cycle_renders_nothing() {
    let out = render(&Cycle::default(), None, Format::Text);
    assert!(out.is_empty());
}

#[test]
fn v2_weight_is_served_as_cadvisor_shares() {
    let family = FAMILIES
        .iter()
        .find(|f| f.name == "container_spec_cpu_shares")
        .unwrap_or_else(|| panic!("no shares family"));
    let source = metric_index(family.source).unwrap_or_default();
    let weight = metric_index("cpu_weight").unwrap_or_default();
    let mut s = sample("aaaa11112222", 1);
    s.values[source] = None;
    s.values[weight] = Some(39);
    assert_eq!(
        family.value(&s, source),
        Some(Value::Int(998)),
        "kubelet's 1 CPU"
    );
    s.values[weight] = Some(0);
    assert_eq!(family.value(&s, source), None, "out of range: not served");
    s.values[source] = Some(1024);
    assert_eq!(
        family.value(&s, source),
        Some(Value::Int(1024)),
        "v1 shares as read"
    );
}

#[test]
fn a_sandbox_series_carries_its_pod_and_an_empty_container() {
    struct Pods;
    impl crate::agent::contract::PodMetadata for Pods {
        fn lookup(&self, _: &str) -> Option<Arc<PodInfo>> {
            None
        }
        fn lookup_pod(&self, uid: &str) -> Option<Arc<PodInfo>> {
            (uid == "uid-9").then(|| {
                Arc::new(PodInfo {
                    pod_name: "web-0".into(),
                    namespace: "shop".into(),
                    pod_uid: uid.into(),
                    labels: BTreeMap::new(),
                    container_name: String::new(),
                    image: None,
                    host_network: false,
                    requests: None,
                })
            })
        }
    }
    let mut pause = sample("bbbb", 0);
    pause.pod_uid = Some(Arc::from("uid-9"));
    pause.sandbox = true;
    let lookup = |c: &ContainerSample| crate::agent::contract::identity_of(&Pods, c);
    let mut out = String::new();
    render_containers(
        &cycle(vec![pause.clone()]),
        &lookup,
        None,
        Format::Text,
        &mut out,
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("container_memory_usage_bytes{"))
        .unwrap();
    // An empty label is an absent one in Prometheus: `container=""` selects this series.
    assert!(
        line.starts_with(&format!(
            "container_memory_usage_bytes{{id=\"/{}\",namespace=\"shop\",pod=\"web-0\"}}",
            pause.cgroup_path
        )),
        "{line}"
    );
    // Not (yet) known as a sandbox: only its id, as before.
    pause.sandbox = false;
    let mut out = String::new();
    render_containers(&cycle(vec![pause]), &lookup, None, Format::Text, &mut out);
    assert!(!out.contains("pod=\"web-0\""));
}

#[test]
fn network_families_are_per_interface_on_the_sandbox_series_only() {
    use crate::agent::contract::InterfaceSample;
    let mut pause = sample("bbbb", 0);
    pause.sandbox = true;
    let app = sample("aaaa", 0);
    let mut c = cycle(vec![app, pause]);
    for (name, rx) in [("lo", 9), ("eth0", 1234)] {
        c.network.push(InterfaceSample {
            sandbox: "bbbb".into(),
            pod_uid: Arc::from("uid-9"),
            interface: name.into(),
            counters: [rx, 2, 3, 4, 5, 6, 7, 8],
        });
    }
    let out = render(&c, None, Format::Text);
    let rx: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("container_network_receive_bytes_total{"))
        .collect();
    assert_eq!(rx.len(), 1, "lo not served, once per pod: {rx:?}");
    assert!(
        rx[0].contains("interface=\"eth0\"") && rx[0].contains(" 1234 "),
        "{}",
        rx[0]
    );
    assert!(
        rx[0].contains("cri-containerd-bbbb"),
        "on the sandbox's series: {}",
        rx[0]
    );
    assert!(out.contains("# TYPE container_network_transmit_packets_dropped_total counter"));
    let om = render(&c, None, Format::OpenMetrics);
    assert!(om.contains("# TYPE container_network_receive_bytes counter"));
}
