//! Which existing objects are the operator's to change. Before it writes
//! anything for a NodeMonitor, the reconciler reads every child it would write
//! and asks [`clashes`]: an object that carries the name but was not made for
//! this NodeMonitor (a user's ConfigMap, a ServiceAccount, a binding someone
//! made by hand) is reported and left exactly as it was; nothing is written.
//!
//! - Namespaced children are ours when they carry a controller owner reference
//!   to this NodeMonitor's uid (what the operator always sets).
//! - Cluster-scoped bindings cannot reference a namespaced owner: they are ours
//!   when they carry the managed-by label and the owner annotation naming this
//!   NodeMonitor (and, when present, its uid).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::builders::{MANAGED_BY, OWNER_ANNOTATION, OWNER_UID_ANNOTATION};
use crate::crd::NodeMonitor;

/// Condition reason of a child name taken by a foreign object.
pub const NAME_CLASH: &str = "NameClash";

/// Whether a namespaced object is controlled by `nm`.
pub fn owns_namespaced(nm: &NodeMonitor, meta: &ObjectMeta) -> bool {
    let Some(uid) = nm.uid() else { return false };
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid && o.kind == "NodeMonitor")
}

/// Whether a cluster-scoped object was made by the operator for `nm`.
pub fn owns_cluster_scoped(nm: &NodeMonitor, meta: &ObjectMeta) -> bool {
    let managed = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|v| v == MANAGED_BY);
    let annotations = meta.annotations.as_ref();
    let owner = format!("{}/{}", nm.namespace().unwrap_or_default(), nm.name_any());
    let named = annotations
        .and_then(|a| a.get(OWNER_ANNOTATION))
        .is_some_and(|v| *v == owner);
    let uid_matches = match annotations.and_then(|a| a.get(OWNER_UID_ANNOTATION)) {
        Some(uid) => nm.uid().is_some_and(|mine| mine == *uid),
        // Made before the uid annotation existed.
        None => true,
    };
    managed && named && uid_matches
}

/// One child the reconcile would write, as found in the cluster.
#[derive(Debug, Clone)]
pub struct Found<'a> {
    pub kind: &'static str,
    pub name: String,
    /// Namespaced (owner reference) or cluster-scoped (label + annotation).
    pub namespaced: bool,
    /// The existing object's metadata; `None` when there is none.
    pub existing: Option<&'a ObjectMeta>,
}

impl Found<'_> {
    /// Whether the object exists and is ours.
    pub fn is_ours(&self, nm: &NodeMonitor) -> bool {
        self.existing.is_some_and(|meta| {
            if self.namespaced {
                owns_namespaced(nm, meta)
            } else {
                owns_cluster_scoped(nm, meta)
            }
        })
    }
}

/// One sentence per existing child that is not ours (empty: nothing clashes).
pub fn clashes(nm: &NodeMonitor, found: &[Found<'_>]) -> Vec<String> {
    let ns = nm.namespace().unwrap_or_default();
    found
        .iter()
        .filter(|f| f.existing.is_some() && !f.is_ours(nm))
        .map(|f| {
            let name = if f.namespaced {
                format!("{ns}/{}", f.name)
            } else {
                f.name.clone()
            };
            format!(
                "{} {name} exists and was not created for NodeMonitor {ns}/{}; it is left unchanged \
                 (rename the NodeMonitor or remove that {})",
                f.kind,
                nm.name_any(),
                f.kind
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::NodeMonitorSpec;
    use crate::operator::builders::{cluster_meta, owned_meta, test_monitor};

    #[test]
    fn our_children_are_recognised() {
        let nm = test_monitor("nm1", NodeMonitorSpec::default());
        assert!(owns_namespaced(&nm, &owned_meta(&nm)));
        assert!(owns_cluster_scoped(&nm, &cluster_meta(&nm)));
        // Made by an older operator: no uid annotation yet.
        let mut old = cluster_meta(&nm);
        old.annotations
            .as_mut()
            .unwrap()
            .remove(OWNER_UID_ANNOTATION);
        assert!(owns_cluster_scoped(&nm, &old));
    }

    #[test]
    fn foreign_and_look_alike_objects_are_not_ours() {
        let nm = test_monitor("nm1", NodeMonitorSpec::default());
        let other = test_monitor("nm2", NodeMonitorSpec::default());
        assert!(!owns_namespaced(&nm, &ObjectMeta::default()));
        assert!(!owns_namespaced(&nm, &owned_meta(&other)), "another uid");
        // Right label, no owner reference: a user copied the labels.
        let mut labelled = owned_meta(&nm);
        labelled.owner_references = None;
        assert!(!owns_namespaced(&nm, &labelled));
        // Owner reference that is not the controller.
        let mut not_controller = owned_meta(&nm);
        not_controller.owner_references.as_mut().unwrap()[0].controller = Some(false);
        assert!(!owns_namespaced(&nm, &not_controller));

        assert!(!owns_cluster_scoped(&nm, &ObjectMeta::default()));
        assert!(!owns_cluster_scoped(&nm, &cluster_meta(&other)));
        let mut unlabelled = cluster_meta(&nm);
        unlabelled.labels = None;
        assert!(!owns_cluster_scoped(&nm, &unlabelled));
        // Same namespace/name, but made for an earlier NodeMonitor of that name.
        let mut reborn = test_monitor("nm1", NodeMonitorSpec::default());
        reborn.metadata.uid = Some("another-uid".into());
        assert!(!owns_cluster_scoped(&reborn, &cluster_meta(&nm)));
    }

    #[test]
    fn clashes_name_kind_object_and_monitor() {
        let nm = test_monitor("default", NodeMonitorSpec::default());
        let foreign = ObjectMeta::default();
        let ours = owned_meta(&nm);
        let found = [
            Found {
                kind: "ConfigMap",
                name: "default".into(),
                namespaced: true,
                existing: Some(&foreign),
            },
            Found {
                kind: "DaemonSet",
                name: "default".into(),
                namespaced: true,
                existing: Some(&ours),
            },
            Found {
                kind: "ServiceAccount",
                name: "fine-grained-monitor-default".into(),
                namespaced: true,
                existing: None,
            },
            Found {
                kind: "ClusterRoleBinding",
                name: "fine-grained-monitor:monitoring:default".into(),
                namespaced: false,
                existing: Some(&foreign),
            },
        ];
        let c = clashes(&nm, &found);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(
            c[0].starts_with("ConfigMap monitoring/default exists and was not created for NodeMonitor monitoring/default"),
            "{}",
            c[0]
        );
        assert!(
            c[1].starts_with("ClusterRoleBinding fine-grained-monitor:monitoring:default exists"),
            "{}",
            c[1]
        );
    }
}
