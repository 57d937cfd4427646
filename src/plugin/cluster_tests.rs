use super::*;

fn pod(name: &str, monitor: &str, node: &str, ready: bool, viewer: bool) -> MonitorPod {
    MonitorPod {
        namespace: "monitoring".into(),
        name: name.into(),
        monitor: monitor.into(),
        node: Some(node.into()),
        phase: if ready { "Running" } else { "Pending" }.into(),
        ready,
        image: viewer.then(|| "ghcr.io/fine-grained-monitor/fine-grained-monitor:0.1.0".into()),
        viewer_port: viewer.then_some(8050),
    }
}

fn monitor(name: &str, selector: &[(&str, &str)]) -> Monitor {
    Monitor {
        namespace: "monitoring".into(),
        name: name.into(),
        node_selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        viewer_enabled: true,
        viewer_port: 8050,
    }
}

#[test]
fn the_ready_pod_with_a_viewer_on_the_node_is_chosen() {
    let pods = [
        pod("a-pending", "a", "n1", false, true),
        pod("b-ready", "b", "n1", true, true),
        pod("c-no-viewer", "c", "n1", true, false),
        pod("d-other-node", "d", "n2", true, true),
    ];
    assert_eq!(
        choose_pod(&pods, "n1").map(|p| p.name.as_str()),
        Some("b-ready")
    );
    assert_eq!(
        choose_pod(&pods, "n2").map(|p| p.name.as_str()),
        Some("d-other-node")
    );
    assert_eq!(choose_pod(&pods, "n3"), None);
    // Only a pending pod: still the one to ask (it may answer soon).
    assert_eq!(
        choose_pod(&pods[..1], "n1").map(|p| p.name.as_str()),
        Some("a-pending")
    );
    // A pod without a viewer is never chosen.
    assert_eq!(choose_pod(&pods[2..3], "n1"), None);
}

#[test]
fn ties_are_broken_by_name() {
    let pods = [
        pod("z", "z", "n1", true, true),
        pod("a", "a", "n1", true, true),
    ];
    assert_eq!(choose_pod(&pods, "n1").map(|p| p.name.as_str()), Some("a"));
}

#[test]
fn the_uncovered_message_names_the_node_and_every_monitor_and_why() {
    let labels: BTreeMap<String, String> = [("pool".to_string(), "batch".to_string())].into();
    let monitors = [
        monitor("gpu", &[("pool", "gpu")]),
        monitor("batch", &[("pool", "batch")]),
    ];
    let text = uncovered_message("node-7", Some(&labels), &monitors, &[]);
    assert!(text.starts_with("node node-7 is not monitored"), "{text}");
    assert!(
        text.contains("monitoring/gpu does not select it (nodeSelector pool=gpu)"),
        "{text}"
    );
    assert!(
        text.contains("monitoring/batch selects it (nodeSelector pool=batch) but has no pod there"),
        "{text}"
    );
    // Without the right to read nodes: the selectors, not a verdict.
    let text = uncovered_message("node-7", None, &monitors[..1], &[]);
    assert!(
        text.contains("monitoring/gpu has no pod there (nodeSelector pool=gpu)"),
        "{text}"
    );
    let text = uncovered_message("node-7", None, &[], &[]);
    assert!(text.contains("there is no NodeMonitor"), "{text}");
}

#[test]
fn a_monitor_without_viewer_is_said_so() {
    let mut m = monitor("quiet", &[]);
    m.viewer_enabled = false;
    let pods = [pod("quiet-x", "quiet", "n1", true, false)];
    let text = uncovered_message("n1", None, &[m], &pods);
    assert!(text.contains("runs no viewer"), "{text}");
}

#[test]
fn monitors_and_pods_read_from_objects() {
    let o: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": { "name": "nm", "namespace": "ops" },
        "spec": { "nodeSelector": { "pool": "a" }, "viewer": { "port": 9050 } }
    }))
    .expect("object");
    let m = Monitor::from_object(&o);
    assert_eq!(m.key(), "ops/nm");
    assert_eq!(m.viewer_port, 9050);
    assert!(m.viewer_enabled);
    assert!(m.selects(&[("pool".to_string(), "a".to_string())].into()));
    assert!(!m.selects(&BTreeMap::new()));
    let o: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": { "name": "bare", "namespace": "ops" }, "spec": {}
    }))
    .expect("object");
    assert_eq!(Monitor::from_object(&o).viewer_port, DEFAULT_VIEWER_PORT);

    let p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "nm-abc", "namespace": "ops",
                      "labels": { INSTANCE_LABEL: "nm" } },
        "spec": { "nodeName": "n1", "containers": [
            { "name": "agent", "image": "x:1" },
            { "name": "viewer", "image": "reg.example:5000/fgm/fine-grained-monitor:0.2.0",
              "ports": [{ "containerPort": 9050 }] } ] },
        "status": { "phase": "Running",
                    "conditions": [{ "type": "Ready", "status": "True" }] }
    }))
    .expect("pod");
    let mp = MonitorPod::from_pod(&p);
    assert_eq!(mp.monitor, "nm");
    assert_eq!(mp.node.as_deref(), Some("n1"));
    assert!(mp.ready);
    assert_eq!(mp.viewer_port, Some(9050));
    assert_eq!(mp.version().as_deref(), Some("0.2.0"));
    let mut untagged = mp.clone();
    untagged.image = Some("reg.example:5000/fgm/fine-grained-monitor".into());
    assert_eq!(untagged.version().as_deref(), Some("latest"));
}
