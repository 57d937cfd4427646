//! The operator against a real control plane (etcd + kube-apiserver, and for the
//! status counts kube-controller-manager, kube-scheduler and kwok fake nodes).
//! One operator runs for this whole test binary, as its own ServiceAccount with
//! only the operator's RBAC rules; each test works in its own namespace.

// Test helpers outside #[test] functions unwrap what the test itself built.
#![allow(clippy::unwrap_used)]

mod operator_common;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use fine_grained_monitor::crd::{NodeMonitor, NodeMonitorSpec};
use fine_grained_monitor::operator::builders::daemonset::SETTINGS_HASH_ANNOTATION;
use fine_grained_monitor::operator::reconcile::FINALIZER;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use operator_common::{
    cluster_name, condition, create_on_no_node, events_for, get, monitor, setup, wait_for,
};
use support::control_plane;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn template_hash(ds: &DaemonSet) -> String {
    ds.spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[SETTINGS_HASH_ANNOTATION]
        .clone()
}

#[tokio::test]
async fn crd_rejects_invalid_specs_with_the_rule_message() {
    let cp = control_plane();
    let admin = cp.client().await;
    cp.install_nodemonitor_crd(&admin).await;
    let ns = cp.namespace(&admin, "crd").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let cases = [
        (
            serde_json::json!({"collector": {"interval": "2s", "rotation": "1s"}}),
            "collector.rotation must be at least collector.interval",
        ),
        (
            serde_json::json!({"retention": {"maxAge": "60s"}}),
            "retention.maxAge must be longer than collector.rotation",
        ),
        (
            serde_json::json!({"collector": {"interval": "1d", "rotation": "2d"}, "retention": {"maxAge": "7d"}}),
            "collector.interval must be between 100ms and 1h",
        ),
        (
            serde_json::json!({"collector": {"interval": "50ms"}}),
            "collector.interval must be between 100ms and 1h",
        ),
        (
            serde_json::json!({"collector": {"interval": "1.5s"}}),
            "spec.collector.interval",
        ),
        (
            serde_json::json!({"retention": {"maxSize": "10GB"}}),
            "spec.retention.maxSize",
        ),
        (
            serde_json::json!({"dataHostPath": "/var/../etc"}),
            "dataHostPath must be an absolute directory",
        ),
        (
            serde_json::json!({"dataHostPath": "relative"}),
            "spec.dataHostPath",
        ),
        (
            serde_json::json!({"viewer": {"port": 70000}}),
            "spec.viewer.port",
        ),
        (
            serde_json::json!({"imagePullPolicy": "Sometimes"}),
            "spec.imagePullPolicy",
        ),
    ];
    // Raw objects: some of these values do not even fit the Rust types.
    let raw: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &ns, &ApiResource::erase::<NodeMonitor>(&()));
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let nm: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "fgm.dev/v1beta1",
            "kind": "NodeMonitor",
            "metadata": {"name": format!("bad-{i}")},
            "spec": spec,
        }))
        .expect("raw object");
        let err = raw
            .create(&PostParams::default(), &nm)
            .await
            .expect_err(&format!("spec {spec} must be refused"));
        assert!(err.to_string().contains(expected), "spec {spec}: {err}");
    }
    let long = monitor(&"n".repeat(64), serde_json::json!({}));
    let err = api.create(&PostParams::default(), &long).await.unwrap_err();
    assert!(err.to_string().contains("at most 63 characters"), "{err}");

    // Days convert for the CEL comparison, and the schema fills in the defaults.
    let ok = monitor(
        "ok",
        serde_json::json!({"collector": {"rotation": "1h"}, "retention": {"maxAge": "2d"}}),
    );
    let created = api
        .create(&PostParams::default(), &ok)
        .await
        .expect("valid spec");
    assert_eq!(created.spec.collector.interval, "1s");
    assert_eq!(created.spec.data_host_path, "/var/lib/fine-grained-monitor");
    assert_eq!(
        created.spec.tolerations[0].operator.as_deref(),
        Some("Exists")
    );
    api.delete("ok", &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test]
async fn apply_creates_every_child_as_the_spec_asks() {
    let (admin, ns) = setup("apply").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let nm = monitor(
        "full",
        serde_json::json!({
            "image": "registry.local/fgm:test",
            "collector": {"interval": "2s", "rotation": "60s"},
            "retention": {"maxAge": "3d", "maxSize": "5Gi"},
            "dataHostPath": format!("/var/lib/fgm-test/{ns}"),
            "nodeSelector": {"fgm-test": "none"},
            "namespaceSelector": {"matchLabels": {"team": "a"}},
        }),
    );
    api.create(&PostParams::default(), &nm)
        .await
        .expect("create");

    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds = wait_for("the DaemonSet", WAIT, || get(&ds_api, "full")).await;
    let owner = &ds.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("NodeMonitor", "full", Some(true))
    );
    let pod = ds.spec.template.spec.as_ref().unwrap();
    let images: Vec<_> = pod
        .containers
        .iter()
        .map(|c| c.image.clone().unwrap())
        .collect();
    assert_eq!(
        images,
        ["registry.local/fgm:test", "registry.local/fgm:test"]
    );
    assert_eq!(pod.node_selector.as_ref().unwrap()["fgm-test"], "none");
    let data = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "data")
        .unwrap();
    // The allowed root is the volume; the NodeMonitor's directory below it a subPath.
    assert_eq!(data.host_path.as_ref().unwrap().path, "/var/lib/fgm-test");
    for c in &pod.containers {
        let m = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "data")
            .unwrap();
        assert_eq!(m.sub_path.as_deref(), Some(ns.as_str()), "{}", c.name);
    }

    let cm = get(&Api::<ConfigMap>::namespaced(admin.clone(), &ns), "full")
        .await
        .expect("ConfigMap");
    let settings = &cm.data.as_ref().unwrap()["agent.yaml"];
    for line in [
        "interval: \"2s\"",
        "rotation: \"1m\"",
        "retention-max-age: \"3d\"",
        "retention-max-bytes: \"5368709120\"",
        "namespace-selector: \"team=a\"",
    ] {
        assert!(settings.contains(line), "{line} not in {settings}");
    }
    assert_eq!(cm.owner_references()[0].name, "full");
    let sa = get(
        &Api::<ServiceAccount>::namespaced(admin.clone(), &ns),
        "fine-grained-monitor-full",
    )
    .await
    .expect("ServiceAccount");
    assert_eq!(sa.owner_references()[0].name, "full");
    assert_eq!(
        ds.spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("fine-grained-monitor-full")
    );
    // Bindings of the chart's fixed roles; no role of its own.
    assert!(
        get(
            &Api::<ClusterRole>::all(admin.clone()),
            &cluster_name(&ns, "full")
        )
        .await
        .is_none(),
        "the operator makes no ClusterRole"
    );
    let bindings = Api::<ClusterRoleBinding>::all(admin.clone());
    for (name, role) in [
        (cluster_name(&ns, "full"), "fine-grained-monitor-agent"),
        (
            format!("{}:namespaces", cluster_name(&ns, "full")),
            "fine-grained-monitor-agent-namespaces",
        ),
    ] {
        let binding = get(&bindings, &name).await.expect("binding");
        assert_eq!(binding.role_ref.name, role);
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(subject.namespace.as_deref(), Some(ns.as_str()));
        assert_eq!(subject.name, "fine-grained-monitor-full");
    }

    let nm = wait_for("status of generation 1", WAIT, || async {
        get(&api, "full")
            .await
            .filter(|nm| nm.status.as_ref().and_then(|s| s.observed_generation) == Some(1))
    })
    .await;
    assert!(nm.finalizers().contains(&FINALIZER.to_string()));
    assert_eq!(condition(&nm, "Degraded").unwrap().0, "False");
    assert!(condition(&nm, "Ready").is_some() && condition(&nm, "Progressing").is_some());
    let events = wait_for("an Applied event", WAIT, || async {
        let ev = events_for(&admin, &ns, "full").await;
        ev.iter()
            .any(|e| e.reason.as_deref() == Some("Applied"))
            .then_some(ev)
    })
    .await;
    assert!(
        events
            .iter()
            .all(|e| e.reporting_controller.as_deref() == Some("fine-grained-monitor-operator"))
    );
}

#[tokio::test]
async fn children_deleted_or_edited_by_hand_are_put_back() {
    let (admin, ns) = setup("heal").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, "heal").await;
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let cm_api: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let binding_name = cluster_name(&ns, "heal");
    let original = wait_for("the DaemonSet", WAIT, || get(&ds_api, "heal")).await;
    let original_settings = wait_for("the ConfigMap", WAIT, || get(&cm_api, "heal"))
        .await
        .data
        .unwrap();
    wait_for("the ClusterRoleBinding", WAIT, || {
        get(&bindings, &binding_name)
    })
    .await;

    // Deleted by hand: they come back.
    cm_api
        .delete("heal", &DeleteParams::default())
        .await
        .expect("delete ConfigMap");
    bindings
        .delete(&binding_name, &DeleteParams::default())
        .await
        .expect("delete ClusterRoleBinding");
    let cm = wait_for("the ConfigMap to come back", WAIT, || get(&cm_api, "heal")).await;
    assert_eq!(cm.data.unwrap(), original_settings);
    wait_for("the ClusterRoleBinding to come back", WAIT, || {
        get(&bindings, &binding_name)
    })
    .await;

    // Edited by hand (another field manager): the operator's values are put back.
    let edit = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "evil:1"}]}}}});
    ds_api
        .patch("heal", &PatchParams::default(), &Patch::Strategic(&edit))
        .await
        .expect("edit the DaemonSet");
    let cm_edit = serde_json::json!({"data": {"agent.yaml": "interval: \"1h\"\n"}});
    cm_api
        .patch("heal", &PatchParams::default(), &Patch::Merge(&cm_edit))
        .await
        .expect("edit ConfigMap");
    let agent_image = |ds: &DaemonSet| {
        ds.spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .find(|c| c.name == "agent")
            .unwrap()
            .image
            .clone()
    };
    wait_for("the DaemonSet image to be put back", WAIT, || async {
        get(&ds_api, "heal")
            .await
            .filter(|ds| agent_image(ds) == agent_image(&original))
    })
    .await;
    wait_for("the settings to be put back", WAIT, || async {
        get(&cm_api, "heal")
            .await
            .filter(|cm| cm.data.as_ref() == Some(&original_settings))
    })
    .await;
}

#[tokio::test]
async fn settings_change_rolls_the_pods_and_generation_catches_up() {
    let (admin, ns) = setup("roll").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, "roll").await;
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let before = template_hash(&wait_for("the DaemonSet", WAIT, || get(&ds_api, "roll")).await);

    let change = serde_json::json!({"spec": {"collector": {"interval": "5s"}, "viewer": {"enabled": false}}});
    api.patch("roll", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .expect("change the spec");
    let ds = wait_for("a new settings hash", WAIT, || async {
        get(&ds_api, "roll")
            .await
            .filter(|ds| template_hash(ds) != before)
    })
    .await;
    let names: Vec<_> = ds
        .spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["agent"], "viewer turned off");
    let cm = get(&Api::<ConfigMap>::namespaced(admin.clone(), &ns), "roll")
        .await
        .unwrap();
    assert!(cm.data.unwrap()["agent.yaml"].contains("interval: \"5s\""));
    wait_for("observedGeneration 2", WAIT, || async {
        get(&api, "roll")
            .await
            .filter(|nm| nm.status.as_ref().and_then(|s| s.observed_generation) == Some(2))
    })
    .await;
}

#[tokio::test]
async fn deleting_removes_cluster_rbac_and_releases_the_finalizer() {
    let (admin, ns) = setup("delete").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, "gone").await;
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let name = cluster_name(&ns, "gone");
    wait_for("the ClusterRoleBinding", WAIT, || get(&bindings, &name)).await;
    wait_for("the finalizer", WAIT, || async {
        get(&api, "gone")
            .await
            .filter(|nm| !nm.finalizers().is_empty())
    })
    .await;

    api.delete("gone", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("the NodeMonitor to be gone", WAIT, || async {
        get(&api, "gone").await.is_none().then_some(())
    })
    .await;
    assert!(
        get(&bindings, &name).await.is_none(),
        "ClusterRoleBinding left behind"
    );
}

#[tokio::test]
async fn a_second_monitor_on_the_same_host_path_is_degraded_not_run() {
    let (admin, ns) = setup("conflict").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let path = format!("/var/lib/fgm-test/{ns}");
    let spec = serde_json::json!({"dataHostPath": path, "nodeSelector": {"fgm-test": "none"}});
    api.create(&PostParams::default(), &monitor("first", spec.clone()))
        .await
        .expect("create first");
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    wait_for("the first DaemonSet", WAIT, || get(&ds_api, "first")).await;
    // Creation timestamps have one-second resolution: make the order unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let nested = serde_json::json!({"dataHostPath": format!("{path}/nested/"), "nodeSelector": {"fgm-test": "none"}});
    api.create(&PostParams::default(), &monitor("second", nested))
        .await
        .expect("create second");

    let second = wait_for("Degraded on the second", WAIT, || async {
        get(&api, "second").await.filter(|nm| {
            condition(nm, "Degraded") == Some(("True".into(), "HostPathConflict".into()))
        })
    })
    .await;
    assert_eq!(
        condition(&second, "Ready").unwrap(),
        ("False".into(), "HostPathConflict".into())
    );
    assert!(
        get(&ds_api, "second").await.is_none(),
        "the conflicting monitor must not run"
    );
    let first = get(&api, "first").await.unwrap();
    assert_ne!(
        condition(&first, "Degraded").map(|c| c.0),
        Some("True".into())
    );
    wait_for("a HostPathConflict warning event", WAIT, || async {
        events_for(&admin, &ns, "second")
            .await
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("HostPathConflict")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;

    // The earlier monitor goes away: the later one takes the directory.
    api.delete("first", &DeleteParams::default())
        .await
        .expect("delete first");
    wait_for("the second DaemonSet", WAIT, || get(&ds_api, "second")).await;
    wait_for("Degraded=False on the second", WAIT, || async {
        get(&api, "second")
            .await
            .filter(|nm| condition(nm, "Degraded").map(|c| c.0) == Some("False".into()))
    })
    .await;
}

#[tokio::test]
async fn status_counts_follow_the_pods_on_fake_nodes() {
    let (admin, ns) = setup("counts").await;
    let cp = control_plane();
    cp.start_workloads();
    let label = ("fgm-counts", ns.as_str());
    for i in 0..2 {
        support::workloads::create_fake_node(&admin, &format!("{ns}-node-{i}"), &[label]).await;
    }
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let spec = serde_json::json!({
        "dataHostPath": format!("/var/lib/fgm-test/{ns}"),
        "nodeSelector": BTreeMap::from([label]),
    });
    api.create(&PostParams::default(), &monitor("counts", spec))
        .await
        .expect("create");
    let nm = wait_for(
        "2 of 2 pods ready in the status",
        Duration::from_secs(90),
        || async {
            get(&api, "counts").await.filter(|nm| {
                nm.status
                    .as_ref()
                    .is_some_and(|s| s.desired_number_scheduled == 2 && s.number_ready == 2)
                    && condition(nm, "Ready").is_some_and(|c| c.0 == "True")
            })
        },
    )
    .await;
    let status = nm.status.unwrap();
    assert_eq!(status.updated_number_scheduled, 2);
    assert_eq!(condition_reason(&status, "Progressing"), "RolloutComplete");
    let _ = NodeMonitorSpec::default();
}

fn condition_reason(status: &fine_grained_monitor::crd::NodeMonitorStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_spec_the_schema_cannot_judge_is_reported_in_a_condition() {
    let (admin, ns) = setup("invalid").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    // The LabelSelector schema does not enumerate operators: the operator must refuse it.
    let spec = serde_json::json!({
        "dataHostPath": format!("/var/lib/fgm-test/{ns}"),
        "nodeSelector": {"fgm-test": "none"},
        "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Like", "values": ["x"]}]},
    });
    api.create(&PostParams::default(), &monitor("odd", spec))
        .await
        .expect("the apiserver accepts it");
    let nm = wait_for("Degraded/InvalidSpec", WAIT, || async {
        get(&api, "odd")
            .await
            .filter(|nm| condition(nm, "Degraded") == Some(("True".into(), "InvalidSpec".into())))
    })
    .await;
    let message = nm
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(
        message.contains("spec.namespaceSelector") && message.contains("Like"),
        "{message}"
    );
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    assert!(
        get(&ds_api, "odd").await.is_none(),
        "nothing runs with a refused spec"
    );

    // Fixing the spec clears the condition and starts the monitor.
    let fix = serde_json::json!({"spec": {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["x"]}]}}});
    api.patch("odd", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix");
    wait_for("the DaemonSet after the fix", WAIT, || get(&ds_api, "odd")).await;
}

/// A NodeMonitor with `labels` and a host path of its own, selecting no node.
fn labelled_monitor(ns: &str, name: &str, labels: serde_json::Value) -> NodeMonitor {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fgm.dev/v1beta1",
        "kind": "NodeMonitor",
        "metadata": {"name": name, "labels": labels},
        "spec": {"dataHostPath": format!("/var/lib/fgm-test/{ns}-{name}"), "nodeSelector": {"fgm-test": "none"}},
    }))
    .expect("NodeMonitor object")
}

#[tokio::test]
async fn uninstall_hook_deletes_the_release_monitors_once_finalized() {
    use fine_grained_monitor::operator::uninstall::{self, UninstallArgs, UninstallError};
    use fine_grained_monitor::units::HumanDuration;

    let (admin, ns) = setup("uninstall").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let release = serde_json::json!({"app.kubernetes.io/instance": "rel", "app.kubernetes.io/managed-by": "Helm"});
    let user = serde_json::json!({"app.kubernetes.io/instance": "someone-else"});
    for (name, labels) in [("rel-a", &release), ("rel-b", &release), ("mine", &user)] {
        api.create(
            &PostParams::default(),
            &labelled_monitor(&ns, name, labels.clone()),
        )
        .await
        .expect("create");
        wait_for("the finalizer", WAIT, || async {
            get(&api, name)
                .await
                .filter(|nm| !nm.finalizers().is_empty())
        })
        .await;
    }
    let args = |selector: &str, timeout: u64| UninstallArgs {
        namespace: Some(ns.clone()),
        selector: selector.into(),
        timeout: HumanDuration::from_secs(timeout),
    };

    // The release's two go, finalized by the running operator (their cluster RBAC too); the
    // user's NodeMonitor stays.
    uninstall::run_with_client(
        admin.clone(),
        args(
            "app.kubernetes.io/instance=rel,app.kubernetes.io/managed-by=Helm",
            30,
        ),
        CancellationToken::new(),
    )
    .await
    .expect("the hook succeeds while the operator runs");
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    for name in ["rel-a", "rel-b"] {
        assert!(get(&api, name).await.is_none(), "{name} still there");
        assert!(
            get(&bindings, &cluster_name(&ns, name)).await.is_none(),
            "{name}'s ClusterRoleBinding left behind"
        );
    }
    let mine = get(&api, "mine")
        .await
        .expect("the user's NodeMonitor is left alone");
    assert!(mine.metadata.deletion_timestamp.is_none());

    // A NodeMonitor nobody finalizes (a finalizer the operator does not own): the hook fails
    // after its timeout, naming it, instead of letting Helm leave it stuck.
    let mut held = labelled_monitor(
        &ns,
        "held",
        serde_json::json!({"app.kubernetes.io/instance": "rel2"}),
    );
    held.metadata.finalizers = Some(vec!["fgm.dev/test-hold".into()]);
    api.create(&PostParams::default(), &held)
        .await
        .expect("create");
    let err = uninstall::run_with_client(
        admin.clone(),
        args("app.kubernetes.io/instance=rel2", 2),
        CancellationToken::new(),
    )
    .await
    .expect_err("nothing can finalize it");
    assert!(
        matches!(&err, UninstallError::Timeout { names, .. } if names.contains("held")),
        "{err}"
    );
    // Release it: the operator's own finalizer then completes as usual.
    let current = get(&api, "held").await.expect("held");
    let kept: Vec<String> = current
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != "fgm.dev/test-hold")
        .cloned()
        .collect();
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": kept}})),
    )
    .await
    .expect("drop the test finalizer");

    // An empty selector would delete every NodeMonitor of the namespace: refused.
    let err = uninstall::run_with_client(admin.clone(), args(" ", 2), CancellationToken::new())
        .await
        .expect_err("empty selector");
    assert!(matches!(err, UninstallError::EmptySelector(_)), "{err}");
    assert!(get(&api, "mine").await.is_some());
}
