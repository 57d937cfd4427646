//! Helpers of the attack tests.

use std::time::Duration;

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::{Api, Client};

use crate::operator_common::{cluster_name, condition, events_for, get, wait_for};

pub const WAIT: Duration = Duration::from_secs(30);

/// A spec that selects no node, with `extra` fields merged in.
pub fn on_no_node(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({"nodeSelector": {"fgm-test": "none"}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// Waits until `name` is refused with `reason` (Degraded=True, Ready=False).
pub async fn refused(api: &Api<NodeMonitor>, name: &str, reason: &str) -> NodeMonitor {
    let nm = wait_for(&format!("{name} refused with {reason}"), WAIT, || async {
        get(api, name)
            .await
            .filter(|nm| condition(nm, "Degraded") == Some(("True".into(), reason.into())))
    })
    .await;
    assert_eq!(
        condition(&nm, "Ready"),
        Some(("False".into(), reason.into()))
    );
    nm
}

/// None of the objects the operator makes for `name` exists.
pub async fn nothing_made(admin: &Client, ns: &str, name: &str) {
    let ds: Api<DaemonSet> = Api::namespaced(admin.clone(), ns);
    let cm: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let crb: Api<ClusterRoleBinding> = Api::all(admin.clone());
    assert!(
        get(&ds, name).await.is_none(),
        "{ns}/{name}: DaemonSet made"
    );
    assert!(
        get(&cm, name).await.is_none(),
        "{ns}/{name}: ConfigMap made"
    );
    assert!(
        get(&sa, &format!("fine-grained-monitor-{name}"))
            .await
            .is_none(),
        "{ns}/{name}: ServiceAccount made"
    );
    assert!(
        get(&crb, &cluster_name(ns, name)).await.is_none(),
        "{ns}/{name}: ClusterRoleBinding made"
    );
}

pub async fn warning_event(admin: &Client, ns: &str, name: &str, reason: &str) {
    wait_for(&format!("a {reason} warning event"), WAIT, || async {
        events_for(admin, ns, name)
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning"))
            .then_some(())
    })
    .await;
}
