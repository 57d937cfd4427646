use super::*;
use crate::crd::{NodeMonitorSpec, PullPolicy};
use crate::operator::builders::test_monitor;
use crate::operator::policy::Policy;
use k8s_openapi::api::core::v1::Toleration;

/// A policy that also allows `/mnt` and `registry.local/*` (for the spec tests).
fn policy() -> Policy {
    Policy::new(
        vec![
            crate::crd::DEFAULT_DATA_HOST_PATH.parse().unwrap(),
            "/mnt".parse().unwrap(),
        ],
        vec!["registry.local/*".parse().unwrap()],
        DEFAULT_IMAGE.into(),
    )
    .unwrap()
}

fn build(nm: &NodeMonitor, hash: &str) -> DaemonSet {
    let resolved = policy().resolve(&nm.spec).unwrap();
    daemon_set(nm, hash, &resolved)
}

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
    let ds = build(&nm, "abc");
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
    let pod_uid = agent
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "FGM_POD_UID");
    let field = pod_uid.and_then(|e| e.value_from.as_ref()?.field_ref.as_ref());
    assert_eq!(
        field.map(|f| f.field_path.as_str()),
        Some("metadata.uid"),
        "the agent finds its own kubelet's cgroup root by its pod's UID"
    );
    assert_eq!(mount_of(agent, "/data").read_only, Some(false));
    assert_eq!(mount_of(agent, "/host/sys/fs/cgroup").read_only, Some(true));
    assert_eq!(mount_of(agent, "/host/proc").read_only, Some(true));
    for host in ["/host/sys/fs/cgroup", "/host/proc"] {
        assert_eq!(
            mount_of(agent, host).recursive_read_only.as_deref(),
            Some("IfPossible"),
            "{host}: the mounts below it read-only too"
        );
    }
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
        "/data --port=8050 --no-browser --bind 127.0.0.1",
        "loopback: kubectl port-forward dials it inside the pod"
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
    assert_eq!(
        pod(&ds).service_account_name.as_deref(),
        Some("fine-grained-monitor-nm1")
    );
    assert!(
        mount_of(agent, "/data").sub_path.is_none(),
        "the root itself"
    );
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
    let ds = build(&nm, "abc");
    let p = pod(&ds);
    assert_eq!(
        p.security_context
            .as_ref()
            .unwrap()
            .seccomp_profile
            .as_ref()
            .unwrap()
            .type_,
        "RuntimeDefault"
    );
    let all = p
        .init_containers
        .iter()
        .flatten()
        .chain(p.containers.iter());
    for c in all {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.privileged, Some(false), "{}", c.name);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..]),
            "{}",
            c.name
        );
        assert_eq!(
            sc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault",
            "{}",
            c.name
        );
    }
    for (name, uid) in [("agent", AGENT_UID), ("viewer", VIEWER_UID)] {
        let sc = container(&ds, name).security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(uid), "{name}");
        assert_eq!(sc.run_as_group, Some(uid), "{name}");
        assert_eq!(sc.run_as_non_root, Some(true), "{name}");
        assert!(
            sc.capabilities.as_ref().unwrap().add.is_none(),
            "{name} has no capability"
        );
    }

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
    let a = build(&nm, "hash-a");
    let b = build(&nm, "hash-b");
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
            port: 9000,
            ..crate::crd::ViewerSpec::default()
        },
        pod_metadata: crate::crd::PodMetadataSpec { enabled: false },
        ..NodeMonitorSpec::default()
    };
    let nm = test_monitor("db", spec);
    let ds = build(&nm, "h");
    let p = pod(&ds);
    assert_eq!(
        container(&ds, "agent").image.as_deref(),
        Some("registry.local/fgm:dev")
    );
    assert_eq!(
        container(&ds, "viewer").image_pull_policy.as_deref(),
        Some("Always")
    );
    // Below the allowed root /mnt: the root is the volume, the rest a subPath.
    assert_eq!(volume(&ds, "data").host_path.as_ref().unwrap().path, "/mnt");
    for c in ["agent", "viewer"] {
        assert_eq!(
            mount_of(container(&ds, c), "/data").sub_path.as_deref(),
            Some("fgm"),
            "{c}"
        );
    }
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
    let ds = build(&test_monitor("nm1", spec), "h");
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
    let ds = build(&nm, "h");
    let spec = ds.spec;
    let template_labels = spec.template.metadata.unwrap().labels.unwrap();
    for (k, v) in spec.selector.match_labels.unwrap() {
        assert_eq!(template_labels.get(&k), Some(&v), "{k}");
    }
}

#[test]
fn metrics_option_names_the_port_and_adds_scrape_annotations() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = build(&nm, "abc");
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
    let ds = build(&test_monitor("nm1", spec), "abc");
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
    spec.metrics.declare_port = false;
    let ds = build(&test_monitor("nm1", spec), "abc");
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
    let ds = build(&nm, "h");
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
    assert_eq!(viewer.viewer.bind.to_string(), "127.0.0.1");

    let init = &pod(&ds).init_containers.as_ref().unwrap()[0];
    let cli: Cli = parse_with_config(argv(init))
        .unwrap_or_else(|e| panic!("the init container's command does not parse: {e}"));
    let Mode::PrepareDataDir(prepare) = cli.mode else {
        panic!("prepare-data-dir mode expected")
    };
    assert_eq!(prepare.data_dir, std::path::Path::new("/data"));
    assert_eq!(
        (prepare.owner_uid, prepare.owner_gid),
        (AGENT_UID as u32, AGENT_UID as u32)
    );
    assert_eq!(viewer.viewer.data_dir, std::path::Path::new("/data"));
}

#[test]
fn only_the_init_container_has_capabilities_and_it_runs_first() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = build(&nm, "h");
    let inits = pod(&ds).init_containers.as_ref().expect("init containers");
    assert_eq!(inits.len(), 1);
    let init = &inits[0];
    assert_eq!(init.name, "prepare-data-dir");
    assert_eq!(init.image, container(&ds, "agent").image);
    let sc = init.security_context.as_ref().unwrap();
    assert_eq!(sc.run_as_user, Some(0));
    assert_eq!(sc.run_as_non_root, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().add.as_deref(),
        Some(&["CHOWN".to_string(), "DAC_READ_SEARCH".to_string()][..])
    );
    assert_eq!(
        init.volume_mounts.as_ref().unwrap().len(),
        1,
        "it sees the data directory only"
    );
    assert_eq!(mount_of(init, "/data").read_only, Some(false));
    assert!(init.resources.as_ref().unwrap().limits.is_some());
}

#[test]
fn processes_give_the_agent_ptrace_and_nothing_else() {
    let mut spec = NodeMonitorSpec::default();
    let off = build(&test_monitor("nm1", spec.clone()), "h");
    let sc = container(&off, "agent").security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert!(sc.capabilities.unwrap().add.is_none());
    spec.processes.enabled = true;
    let on = build(&test_monitor("nm1", spec), "h");
    let sc = container(&on, "agent").security_context.clone().unwrap();
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.add.as_deref(), Some(&["SYS_PTRACE".to_string()][..]));
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    // The file capability is granted at exec only without no_new_privs.
    assert_eq!(sc.allow_privilege_escalation, Some(true));
    assert_eq!(sc.run_as_user, Some(AGENT_UID));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.privileged, Some(false));
    let viewer = container(&on, "viewer").security_context.clone().unwrap();
    assert_eq!(viewer.allow_privilege_escalation, Some(false));
}

#[test]
fn the_token_reaches_the_agent_only_and_only_for_enrichment() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let ds = build(&nm, "h");
    let p = pod(&ds);
    assert_eq!(p.automount_service_account_token, Some(false));
    let token = volume(&ds, "kube-api-access").projected.as_ref().unwrap();
    let sources = token.sources.as_ref().unwrap();
    assert!(sources[0].service_account_token.is_some());
    assert_eq!(
        sources[1].config_map.as_ref().unwrap().name,
        "kube-root-ca.crt"
    );
    assert_eq!(
        mount_of(container(&ds, "agent"), TOKEN_DIR).read_only,
        Some(true)
    );
    for c in p
        .init_containers
        .iter()
        .flatten()
        .chain([container(&ds, "viewer")])
    {
        assert!(
            !c.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == TOKEN_DIR),
            "{} must not see the token",
            c.name
        );
    }

    let mut spec = NodeMonitorSpec::default();
    spec.pod_metadata.enabled = false;
    let ds = build(&test_monitor("nm1", spec), "h");
    assert!(
        !pod(&ds)
            .volumes
            .iter()
            .flatten()
            .any(|v| v.name == "kube-api-access")
    );
    assert!(
        !container(&ds, "agent")
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == TOKEN_DIR)
    );
}

#[test]
fn an_exposed_viewer_is_what_the_spec_asks() {
    let mut spec = NodeMonitorSpec::default();
    spec.viewer.bind_address = "0.0.0.0".into();
    let ds = build(&test_monitor("nm1", spec), "h");
    let args = container(&ds, "viewer").args.as_ref().unwrap().join(" ");
    assert!(args.ends_with("--bind 0.0.0.0"), "{args}");
}

#[test]
fn update_strategy_replaces_then_starts_unless_the_spec_says_otherwise() {
    let nm = test_monitor("nm1", NodeMonitorSpec::default());
    let strategy = build(&nm, "abc").spec.update_strategy.unwrap();
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
    let ds = build(&nm, "abc");
    assert_eq!(ds.spec.update_strategy, Some(chosen));
}
