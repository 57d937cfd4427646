//! Objects the operator did not make are never adopted; an older operator's are migrated.

use std::time::Duration;

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use crate::common::*;
use crate::operator_common::{
    cluster_name, condition, condition_message, create_on_no_node, get, monitor, setup, wait_for,
};

#[tokio::test]
async fn a_node_monitor_named_default_leaves_the_default_service_account_alone() {
    let (admin, ns) = setup("named-default").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let before = get(&sas, "default").await.expect("default ServiceAccount");
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, "default").await;
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds = wait_for("the DaemonSet", WAIT, || get(&ds_api, "default")).await;
    assert_eq!(
        ds.spec
            .template
            .spec
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("fine-grained-monitor-default")
    );
    assert!(get(&sas, "fine-grained-monitor-default").await.is_some());
    let after = get(&sas, "default").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the default ServiceAccount was written"
    );
    assert!(after.owner_references().is_empty());
    let bound_to_default = Api::<ClusterRoleBinding>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|b| {
            b.subjects.iter().flatten().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == "default"
                    && s.namespace.as_deref() == Some(ns.as_str())
            })
        })
        .map(|b| b.name_any())
        .collect::<Vec<_>>();
    assert!(
        bound_to_default.is_empty(),
        "bindings to {ns}/default: {bound_to_default:?}"
    );
}

#[tokio::test]
async fn objects_that_carry_the_operators_names_are_never_adopted() {
    let (admin, ns) = setup("clash").await;
    let name = "clash";
    let crb_name = cluster_name(&ns, name);
    let apply = PatchParams::apply("someone-else");
    // A user's ConfigMap, a look-alike ServiceAccount (the operator's label, no
    // owner), a hand-made binding and DaemonSet, all with the names the operator would use.
    let cm_api: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"agent.yaml": "data-dir: /etc\n"},
    }))
    .unwrap();
    cm_api
        .patch(name, &apply, &Patch::Apply(&cm))
        .await
        .unwrap();
    let sa_api: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": format!("fine-grained-monitor-{name}"),
                     "labels": {"app.kubernetes.io/managed-by": "fine-grained-monitor-operator"}},
    }))
    .unwrap();
    sa_api
        .patch(
            &format!("fine-grained-monitor-{name}"),
            &apply,
            &Patch::Apply(&sa),
        )
        .await
        .unwrap();
    let crb_api: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": crb_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
    }))
    .unwrap();
    crb_api
        .patch(&crb_name, &apply, &Patch::Apply(&crb))
        .await
        .unwrap();
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": "theirs"}},
            "template": {
                "metadata": {"labels": {"app": "theirs"}},
                "spec": {"nodeSelector": {"fgm-test": "none"},
                         "containers": [{"name": "c", "image": "theirs:1"}]}
            }
        }
    }))
    .unwrap();
    ds_api
        .patch(name, &apply, &Patch::Apply(&ds))
        .await
        .unwrap();
    let versions = || async {
        (
            get(&cm_api, name).await.unwrap().resource_version(),
            get(&sa_api, &format!("fine-grained-monitor-{name}"))
                .await
                .unwrap()
                .resource_version(),
            get(&crb_api, &crb_name).await.unwrap().resource_version(),
            get(&ds_api, name).await.unwrap().resource_version(),
        )
    };
    let before = versions().await;

    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, name).await;
    let nm = refused(&api, name, "NameClash").await;
    let message = condition_message(&nm, "Degraded");
    for expected in [
        format!("ConfigMap {ns}/{name} exists and was not created for NodeMonitor {ns}/{name}"),
        format!("ServiceAccount {ns}/fine-grained-monitor-{name} exists"),
        format!("ClusterRoleBinding {crb_name} exists"),
        format!("DaemonSet {ns}/{name} exists"),
    ] {
        assert!(message.contains(&expected), "{expected} not in {message}");
    }
    warning_event(&admin, &ns, name, "NameClash").await;
    // Given time to do harm, the operator has not written any of them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(versions().await, before, "a foreign object was written");
    let crb_now = get(&crb_api, &crb_name).await.unwrap();
    assert_eq!(crb_now.role_ref.name, "view");
    assert_eq!(
        get(&cm_api, name).await.unwrap().data.unwrap()["agent.yaml"],
        "data-dir: /etc\n"
    );

    // Once they are gone, the NodeMonitor gets its own.
    cm_api.delete(name, &DeleteParams::default()).await.unwrap();
    sa_api
        .delete(
            &format!("fine-grained-monitor-{name}"),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    crb_api
        .delete(&crb_name, &DeleteParams::default())
        .await
        .unwrap();
    ds_api.delete(name, &DeleteParams::default()).await.unwrap();
    // The operator looks again within 30 s; a touch makes it look now.
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"touched": "1"}}})),
    )
    .await
    .unwrap();
    let ds = wait_for("its own DaemonSet", WAIT, || async {
        get(&ds_api, name).await.filter(|ds| {
            ds.owner_references()
                .iter()
                .any(|o| o.kind == "NodeMonitor")
        })
    })
    .await;
    assert!(
        ds.metadata
            .labels
            .unwrap()
            .contains_key("app.kubernetes.io/managed-by")
    );
    let crb = wait_for("its own binding", WAIT, || get(&crb_api, &crb_name)).await;
    assert_eq!(crb.role_ref.name, "fine-grained-monitor-agent");
}

#[tokio::test]
async fn an_older_operators_binding_is_migrated_and_default_monitors_keep_working() {
    let (admin, ns) = setup("upgrade").await;
    let name = "legacy";
    let old_role = cluster_name(&ns, name);
    // What the operator before this release made: a per-NodeMonitor role and a
    // binding to it, labelled and annotated as its own (no uid annotation yet).
    let apply = PatchParams::apply("fine-grained-monitor");
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": old_role,
                     "labels": {"app.kubernetes.io/managed-by": "fine-grained-monitor-operator"},
                     "annotations": {"fgm.dev/owner": format!("{ns}/{name}")}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .patch(&old_role, &apply, &Patch::Apply(&role))
        .await
        .unwrap();
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": old_role,
                     "labels": {"app.kubernetes.io/managed-by": "fine-grained-monitor-operator"},
                     "annotations": {"fgm.dev/owner": format!("{ns}/{name}")}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": old_role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))
    .unwrap();
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    crbs.patch(&old_role, &apply, &Patch::Apply(&crb))
        .await
        .unwrap();

    // An existing user's NodeMonitor: the default path, defaults everywhere.
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let spec = serde_json::json!({"nodeSelector": {"fgm-test": format!("none-{ns}")}});
    api.create(&PostParams::default(), &monitor(name, spec))
        .await
        .unwrap();
    let migrated = wait_for("the binding of the fixed role", WAIT, || async {
        get(&crbs, &old_role)
            .await
            .filter(|b| b.role_ref.name == "fine-grained-monitor-agent")
    })
    .await;
    let subject = &migrated.subjects.unwrap()[0];
    assert_eq!(subject.name, format!("fine-grained-monitor-{name}"));
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds = wait_for("the DaemonSet", WAIT, || get(&ds_api, name)).await;
    let pod = ds.spec.template.spec.unwrap();
    let data = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(
        data.host_path.unwrap().path,
        "/var/lib/fine-grained-monitor",
        "the same host directory as before"
    );
    assert!(
        pod.containers
            .iter()
            .flat_map(|c| c.volume_mounts.iter().flatten())
            .filter(|m| m.name == "data")
            .all(|m| m.sub_path.is_none())
    );
    let nm = get(&api, name).await.unwrap();
    assert_ne!(condition(&nm, "Degraded").map(|c| c.0), Some("True".into()));
    // The operator may not delete roles: the old one stays, bound to nothing.
    let bound: Vec<String> = crbs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|b| b.role_ref.name == old_role)
        .map(|b| b.name_any())
        .collect();
    assert!(bound.is_empty(), "the old role is still bound by {bound:?}");
}
