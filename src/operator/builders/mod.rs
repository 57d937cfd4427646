//! Pure builders: the objects one NodeMonitor asks for, computed from its spec
//! alone (no API calls), so every field is unit-tested here and the reconciler
//! only applies what these return.
//!
//! ```text
//!  NodeMonitor ─▶ settings::agent_settings ─▶ ConfigMap (agent.yaml) ─┐ hash
//!              ├▶ daemonset::daemon_set ◀────────────────────────────┘
//!              └▶ rbac::{service_account, cluster_role_binding} (of the fixed agent roles)
//! ```

pub mod daemonset;
pub mod export;
pub mod rbac;
pub mod settings;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::NodeMonitor;

/// `app.kubernetes.io/managed-by` value on every child; the operator's watches select on it.
pub const MANAGED_BY: &str = "fine-grained-monitor-operator";
/// Label selector matching every object the operator created.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=fine-grained-monitor-operator";
/// Annotation on cluster-scoped children naming their NodeMonitor as `namespace/name`
/// (they cannot carry an owner reference to a namespaced object).
pub const OWNER_ANNOTATION: &str = "fgm.dev/owner";
/// Annotation on cluster-scoped children with their NodeMonitor's uid, so a
/// NodeMonitor re-created under the same name does not take over another's objects.
pub const OWNER_UID_ANNOTATION: &str = "fgm.dev/owner-uid";

/// Labels that select one NodeMonitor's pods (the DaemonSet selector, immutable).
pub fn selector_labels(nm: &NodeMonitor) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "fine-grained-monitor".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), nm.name_any()),
    ])
}

/// Labels of every child: the selector labels plus component and manager.
pub fn labels(nm: &NodeMonitor) -> BTreeMap<String, String> {
    let mut labels = selector_labels(nm);
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        "node-monitor".to_string(),
    );
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        MANAGED_BY.to_string(),
    );
    labels
}

/// Metadata of a namespaced child: same name and namespace as the NodeMonitor,
/// controlled by it (so garbage collection removes it with the NodeMonitor).
pub fn owned_meta(nm: &NodeMonitor) -> ObjectMeta {
    ObjectMeta {
        name: Some(nm.name_any()),
        namespace: nm.namespace(),
        labels: Some(labels(nm)),
        owner_references: nm.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// Name of the cluster-scoped bindings of a NodeMonitor: unique per namespace and name
/// (`:` cannot occur in either, so two NodeMonitors never share it).
pub fn cluster_name(nm: &NodeMonitor) -> String {
    format!(
        "fine-grained-monitor:{}:{}",
        nm.namespace().unwrap_or_default(),
        nm.name_any()
    )
}

/// Metadata of a cluster-scoped child: labelled and annotated with its owner.
pub fn cluster_meta(nm: &NodeMonitor) -> ObjectMeta {
    ObjectMeta {
        name: Some(cluster_name(nm)),
        labels: Some(labels(nm)),
        annotations: Some(BTreeMap::from([
            (
                OWNER_ANNOTATION.to_string(),
                format!("{}/{}", nm.namespace().unwrap_or_default(), nm.name_any()),
            ),
            (
                OWNER_UID_ANNOTATION.to_string(),
                nm.uid().unwrap_or_default(),
            ),
        ])),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
pub(crate) fn test_monitor(name: &str, spec: crate::crd::NodeMonitorSpec) -> NodeMonitor {
    let mut nm = NodeMonitor::new(name, spec);
    nm.metadata.namespace = Some("monitoring".into());
    nm.metadata.uid = Some(format!("uid-{name}"));
    nm.metadata.generation = Some(1);
    nm
}
