use super::*;
use crate::crd::{NodeMonitorSpec, PullPolicy};
use crate::operator::builders::test_monitor;
use k8s_openapi::api::core::v1::Toleration;

fn pod(ds: &DaemonSet) -> &PodSpec {
    ds.spec.template.spec.as_ref().unwrap()
}

fn container<'a>(ds: &'a DaemonSet, name: &str) -> &'a Container {
    pod(ds)
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("container {name}"))
}

fn mount_of<'a>(c: &'a Container, path: &str) -> &'a VolumeMount {
    c.volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == path)
        .unwrap_or_else(|| panic!("{} has no mount at {path}", c.name))
}

fn volume<'a>(ds: &'a DaemonSet, name: &str) -> &'a Volume {
    pod(ds)
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("volume {name}"))
}

#[test]
fn default_daemon_set_follows_the_design() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = daemon_set(&nm, "abc", DEFAULT_IMAGE);
    assert_eq!(ds.metadata.name.as_deref(), Some("nm1"));
    assert_eq!(ds.metadata.namespace.as_deref(), Some("monitoring"));
    assert_eq!(
        ds.metadata.owner_references.as_ref().unwrap()[0].uid,
        "uid-nm1"
    );

    let agent = container(&ds, "agent");
    assert_eq!(
        agent.image.as_deref(),
        Some("ghcr.io/fine-grained-monitor/fine-grained-monitor:0.1.0")
    );
    assert_eq!(agent.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let args = agent.args.as_ref().unwrap().join(" ");
    assert!(
        args.starts_with("agent --config /etc/fine-grained-monitor/agent.yaml"),
        "{args}"
    );
    assert!(args.contains("--cgroup-root /host/sys/fs/cgroup"), "{args}");
    assert!(args.contains("--proc-root /host/proc"), "{args}");
    let node_name = &agent.env.as_ref().unwrap()[0];
    assert_eq!(node_name.name, "NODE_NAME");
    assert_eq!(
        node_name
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "spec.nodeName"
    );
    assert_eq!(mount_of(agent, "/data").read_only, Some(false));
    assert_eq!(mount_of(agent, "/host/sys/fs/cgroup").read_only, Some(true));
    assert_eq!(mount_of(agent, "/host/proc").read_only, Some(true));
    assert_eq!(
        mount_of(agent, "/etc/fine-grained-monitor").read_only,
        Some(true)
    );

    let viewer = container(&ds, "viewer");
    assert_eq!(
        viewer.command.as_deref(),
        Some(&["fgm-viewer".to_string()][..])
    );
    assert_eq!(
        viewer.args.as_ref().unwrap().join(" "),
        "/data --port=8050 --no-browser --bind 0.0.0.0"
    );
    assert_eq!(viewer.ports.as_ref().unwrap()[0].container_port, 8050);
    assert_eq!(mount_of(viewer, "/data").read_only, Some(true));
    assert_eq!(
        viewer.volume_mounts.as_ref().unwrap().len(),
        1,
        "viewer sees /data only"
    );

    let data = volume(&ds, "data").host_path.as_ref().unwrap();
    assert_eq!(data.path, "/var/lib/fine-grained-monitor");
    assert_eq!(
        volume(&ds, "host-cgroup").host_path.as_ref().unwrap().path,
        "/sys/fs/cgroup"
    );
    assert_eq!(
        volume(&ds, "host-proc").host_path.as_ref().unwrap().path,
        "/proc"
    );
    assert_eq!(
        volume(&ds, "settings").config_map.as_ref().unwrap().name,
        "nm1"
    );
    assert_eq!(pod(&ds).service_account_name.as_deref(), Some("nm1"));
    assert_eq!(
        pod(&ds).tolerations.as_ref().unwrap()[0]
            .operator
            .as_deref(),
        Some("Exists")
    );
}

#[test]
fn containers_are_locked_down_with_design_resources() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = daemon_set(&nm, "abc", DEFAULT_IMAGE);
    for c in &pod(&ds).containers {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..]),
            "{}",
            c.name
        );
        assert!(sc.privileged.is_none(), "{}", c.name);
    }
    let viewer_sc = container(&ds, "viewer").security_context.as_ref().unwrap();
    assert_eq!(viewer_sc.run_as_non_root, Some(true));

    let res = |name: &str, kind: &str, key: &str| {
        let r = container(&ds, name).resources.as_ref().unwrap();
        let map = if kind == "requests" {
            &r.requests
        } else {
            &r.limits
        };
        map.as_ref().unwrap()[key].0.clone()
    };
    assert_eq!(res("agent", "requests", "memory"), "64Mi");
    assert_eq!(res("agent", "requests", "cpu"), "100m");
    assert_eq!(res("agent", "limits", "memory"), "256Mi");
    assert_eq!(res("agent", "limits", "cpu"), "500m");
    assert_eq!(res("viewer", "requests", "memory"), "32Mi");
    assert_eq!(res("viewer", "requests", "cpu"), "10m");
    assert_eq!(res("viewer", "limits", "memory"), "128Mi");
    assert_eq!(res("viewer", "limits", "cpu"), "100m");
}

#[test]
fn settings_hash_goes_on_the_pod_template() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let a = daemon_set(&nm, "hash-a", DEFAULT_IMAGE);
    let b = daemon_set(&nm, "hash-b", DEFAULT_IMAGE);
    let hash = |ds: &DaemonSet| {
        ds.spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[SETTINGS_HASH_ANNOTATION]
            .clone()
    };
    assert_eq!(hash(&a), "hash-a");
    assert_ne!(a.spec.template, b.spec.template);
}

#[test]
fn spec_choices_reach_the_pods() {
    let spec = NodeMonitorSpec {
        image: Some("registry.local/fgm:dev".into()),
        image_pull_policy: PullPolicy::Always,
        data_host_path: "/mnt/fgm".into(),
        node_selector: BTreeMap::from([("role".into(), "db".into())]),
        tolerations: vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("db".into()),
            ..Toleration::default()
        }],
        priority_class_name: Some("system-node-critical".into()),
        viewer: crate::crd::ViewerSpec {
            enabled: true,
            port: 9000,
        },
        enrichment: crate::crd::EnrichmentSpec { enabled: false },
        ..NodeMonitorSpec::default()
    };
    let nm = test_monitor("db", spec);
    let ds = daemon_set(&nm, "h", DEFAULT_IMAGE);
    let p = pod(&ds);
    assert_eq!(
        container(&ds, "agent").image.as_deref(),
        Some("registry.local/fgm:dev")
    );
    assert_eq!(
        container(&ds, "viewer").image_pull_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(
        volume(&ds, "data").host_path.as_ref().unwrap().path,
        "/mnt/fgm"
    );
    assert_eq!(p.node_selector.as_ref().unwrap()["role"], "db");
    assert_eq!(
        p.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    assert_eq!(
        p.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert_eq!(p.automount_service_account_token, Some(false));
    assert!(
        container(&ds, "viewer")
            .args
            .as_ref()
            .unwrap()
            .contains(&"--port=9000".to_string())
    );
    assert_eq!(
        container(&ds, "viewer").ports.as_ref().unwrap()[0].container_port,
        9000
    );
}

#[test]
fn viewer_can_be_turned_off() {
    let mut spec = NodeMonitorSpec::default();
    spec.viewer.enabled = false;
    let ds = daemon_set(&test_monitor("nm1", spec), "h", DEFAULT_IMAGE);
    let names: Vec<_> = pod(&ds)
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["agent"]);
}

#[test]
fn selector_is_a_subset_of_the_template_labels() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = daemon_set(&nm, "h", DEFAULT_IMAGE);
    let spec = ds.spec;
    let template_labels = spec.template.metadata.unwrap().labels.unwrap();
    for (k, v) in spec.selector.match_labels.unwrap() {
        assert_eq!(template_labels.get(&k), Some(&v), "{k}");
    }
}

#[test]
fn metrics_option_names_the_port_and_adds_scrape_annotations() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = daemon_set(&nm, "abc", DEFAULT_IMAGE);
    let agent = container(&ds, "agent");
    let port = &agent.ports.as_ref().expect("metrics port declared")[0];
    assert_eq!(port.name.as_deref(), Some("metrics"));
    assert_eq!(port.container_port, 9810);
    let annotations = ds
        .spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert!(!annotations.contains_key("prometheus.io/scrape"), "opt-in");

    let mut spec = NodeMonitorSpec::default();
    spec.metrics.port = 9900;
    spec.metrics.scrape_annotations = true;
    let ds = daemon_set(&test_monitor("nm1", spec), "abc", DEFAULT_IMAGE);
    let agent = container(&ds, "agent");
    assert_eq!(agent.ports.as_ref().unwrap()[0].container_port, 9900);
    let annotations = ds
        .spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9900");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations[SETTINGS_HASH_ANNOTATION], "abc");

    // Not advertised: no named port, but the probe still reaches /healthz by number.
    let mut spec = NodeMonitorSpec::default();
    spec.metrics.enabled = false;
    let ds = daemon_set(&test_monitor("nm1", spec), "abc", DEFAULT_IMAGE);
    let agent = container(&ds, "agent");
    assert!(agent.ports.is_none());
    let probe = agent
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.port, IntOrString::Int(9810));
}

#[test]
fn container_commands_parse_with_the_real_cli() {
    use crate::cli::{Cli, Mode, ViewerCli, parse_with_config};
    use crate::operator::builders::settings::{agent_settings, settings_yaml};
    let mut spec = NodeMonitorSpec::default();
    spec.collector.interval = "2s".into();
    let nm = test_monitor("nm1", spec);
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("agent.yaml");
    std::fs::write(&settings, settings_yaml(&agent_settings(&nm.spec).unwrap())).unwrap();
    let ds = daemon_set(&nm, "h", DEFAULT_IMAGE);
    let argv = |c: &Container| -> Vec<std::ffi::OsString> {
        c.command
            .iter()
            .chain(c.args.iter())
            .flatten()
            .map(|a| {
                if a == "/etc/fine-grained-monitor/agent.yaml" {
                    settings.clone().into_os_string()
                } else {
                    a.into()
                }
            })
            .collect()
    };

    let cli: Cli = parse_with_config(argv(container(&ds, "agent")))
        .unwrap_or_else(|e| panic!("the agent container's command does not parse: {e}"));
    let Mode::Agent(agent) = cli.mode else {
        panic!("agent mode expected")
    };
    assert_eq!(agent.interval.to_string(), "2s", "settings file read");
    assert_eq!(
        agent.data_dir.as_deref(),
        Some(std::path::Path::new("/data"))
    );
    assert_eq!(
        agent.cgroup_root.as_deref(),
        Some(std::path::Path::new("/host/sys/fs/cgroup"))
    );

    let viewer = <ViewerCli as clap::Parser>::try_parse_from(argv(container(&ds, "viewer")))
        .unwrap_or_else(|e| panic!("the viewer container's command does not parse: {e}"));
    assert_eq!(viewer.viewer.port, 8050);
    assert!(viewer.viewer.no_browser);
    assert_eq!(viewer.viewer.bind.to_string(), "0.0.0.0");
    assert_eq!(viewer.viewer.data_dir, std::path::Path::new("/data"));
}

#[test]
fn update_strategy_replaces_then_starts_unless_the_spec_says_otherwise() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let strategy = daemon_set(&nm, "abc", DEFAULT_IMAGE)
        .spec
        .update_strategy
        .unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.unwrap();
    // One agent per data directory: the old pod goes before the new one starts.
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(0)));
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(1)));
    let chosen = k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy {
        type_: Some("OnDelete".into()),
        rolling_update: None,
    };
    let nm = test_monitor(
        "nm1",
        NodeMonitorSpec {
            update_strategy: Some(chosen.clone()),
            ..NodeMonitorSpec::default()
        },
    );
    let ds = daemon_set(&nm, "abc", DEFAULT_IMAGE);
    assert_eq!(ds.spec.update_strategy, Some(chosen));
}
