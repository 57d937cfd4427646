//! RBAC: the ServiceAccount of a NodeMonitor's pods and the cluster-wide read
//! access to pods their enricher needs, plus the operator's own rules (one list,
//! used by the tests and by the packaged manifests).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::ResourceExt;

use super::{cluster_meta, cluster_name, owned_meta};
use crate::crd::NodeMonitor;

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// The ServiceAccount the monitor pods run as.
pub fn service_account(nm: &NodeMonitor) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(nm),
        ..ServiceAccount::default()
    }
}

/// What the monitor pods may read: pods (get/list/watch) and, with a namespace
/// selector, namespaces (list/watch) to resolve it. Nothing else.
pub fn monitor_rules(nm: &NodeMonitor) -> Vec<PolicyRule> {
    let mut rules = vec![rule("", &["pods"], &["get", "list", "watch"])];
    if nm.spec.namespace_selector.is_some() {
        rules.push(rule("", &["namespaces"], &["list", "watch"]));
    }
    rules
}

/// The ClusterRole of a NodeMonitor's pods.
pub fn cluster_role(nm: &NodeMonitor) -> ClusterRole {
    ClusterRole {
        metadata: cluster_meta(nm),
        rules: Some(monitor_rules(nm)),
        ..ClusterRole::default()
    }
}

/// Binds the ClusterRole to the NodeMonitor's ServiceAccount.
pub fn cluster_role_binding(nm: &NodeMonitor) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: cluster_meta(nm),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: cluster_name(nm),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: nm.name_any(),
            namespace: nm.namespace(),
            ..Subject::default()
        }]),
    }
}

/// Name of the operator's ClusterRole (and of its ServiceAccount in the packaged manifests).
pub const OPERATOR_NAME: &str = "fine-grained-monitor-operator";

/// Everything the operator does cluster-wide, and nothing more:
/// - NodeMonitors: watch, finalizer and status updates;
/// - DaemonSets, ConfigMaps, ServiceAccounts: server-side apply (create/patch); a
///   DaemonSet is deleted when a host-path conflict disables its monitor;
/// - ClusterRoles/Bindings: apply and delete (the finalizer);
/// - CronJobs: the compaction job of `spec.export`, applied and removed;
/// - pods get/list/watch and namespaces list/watch: held so that it may grant them
///   (RBAC refuses to grant what the granter lacks; no `escalate`/`bind` needed);
/// - events: record what it does.
pub fn operator_cluster_rules() -> Vec<PolicyRule> {
    let apply = ["get", "list", "watch", "create", "patch"];
    let apply_delete = ["get", "list", "watch", "create", "patch", "delete"];
    vec![
        rule(
            "fgm.dev",
            &["nodemonitors"],
            &["get", "list", "watch", "patch"],
        ),
        rule("fgm.dev", &["nodemonitors/status"], &["get", "patch"]),
        rule("fgm.dev", &["nodemonitors/finalizers"], &["update"]),
        rule("apps", &["daemonsets"], &apply_delete),
        // The compaction CronJob of `spec.export` (issue #19).
        rule("batch", &["cronjobs"], &apply_delete),
        rule("", &["configmaps", "serviceaccounts"], &apply),
        rule(
            "rbac.authorization.k8s.io",
            &["clusterroles", "clusterrolebindings"],
            &apply_delete,
        ),
        rule("", &["pods"], &["get", "list", "watch"]),
        rule("", &["namespaces"], &["list", "watch"]),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// What the operator does in its own namespace: the leader-election Lease.
pub fn operator_namespace_rules() -> Vec<PolicyRule> {
    vec![rule(
        "coordination.k8s.io",
        &["leases"],
        &["get", "list", "watch", "create", "update", "patch"],
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::NodeMonitorSpec;
    use crate::operator::builders::test_monitor;

    #[test]
    fn monitor_reads_pods_only_unless_namespaces_are_selected() {
        let nm = test_monitor("nm1", NodeMonitorSpec::default());
        let role = cluster_role(&nm);
        assert_eq!(
            role.metadata.name.as_deref(),
            Some("fine-grained-monitor:monitoring:nm1")
        );
        assert_eq!(
            role.metadata.annotations.as_ref().unwrap()["fgm.dev/owner"],
            "monitoring/nm1"
        );
        assert!(
            role.metadata.owner_references.is_none(),
            "cluster-scoped: finalizer, not owner ref"
        );
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["pods".to_string()][..])
        );
        assert_eq!(rules[0].verbs, ["get", "list", "watch"]);

        let spec = NodeMonitorSpec {
            namespace_selector: Some(Default::default()),
            ..NodeMonitorSpec::default()
        };
        let nm = test_monitor("nm2", spec);
        let rules = monitor_rules(&nm);
        assert_eq!(
            rules[1].resources.as_deref(),
            Some(&["namespaces".to_string()][..])
        );
        assert_eq!(rules[1].verbs, ["list", "watch"]);
    }

    #[test]
    fn binding_names_the_service_account() {
        let nm = test_monitor("nm1", NodeMonitorSpec::default());
        let sa = service_account(&nm);
        let binding = cluster_role_binding(&nm);
        assert_eq!(binding.role_ref.name, "fine-grained-monitor:monitoring:nm1");
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(subject.name, sa.metadata.name.unwrap());
        assert_eq!(subject.namespace, sa.metadata.namespace);
        assert!(sa.metadata.owner_references.is_some());
    }

    #[test]
    fn operator_holds_what_it_grants() {
        let nm = test_monitor(
            "nm1",
            NodeMonitorSpec {
                namespace_selector: Some(Default::default()),
                ..NodeMonitorSpec::default()
            },
        );
        let held = operator_cluster_rules();
        for granted in monitor_rules(&nm) {
            let covered = held.iter().any(|h| {
                h.api_groups == granted.api_groups
                    && h.resources == granted.resources
                    && granted.verbs.iter().all(|v| h.verbs.contains(v))
            });
            assert!(covered, "operator must hold {granted:?} to grant it");
        }
        assert!(held.iter().all(|r| {
            !r.verbs
                .iter()
                .any(|v| v == "*" || v == "escalate" || v == "bind")
        }));
    }
}

/// The operator's ClusterRole and leader-election Role as YAML (what
/// `config/rbac/role.yaml` holds; the namespace is left to kustomize/Helm).
pub fn operator_rbac_yaml() -> Result<String, serde_saphyr::ser::Error> {
    use k8s_openapi::api::rbac::v1::Role;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let meta = || ObjectMeta {
        name: Some(OPERATOR_NAME.into()),
        ..ObjectMeta::default()
    };
    let cluster_role = ClusterRole {
        metadata: meta(),
        rules: Some(operator_cluster_rules()),
        ..ClusterRole::default()
    };
    let role = Role {
        metadata: meta(),
        rules: Some(operator_namespace_rules()),
    };
    Ok(format!(
        "# Generated by `make generate` from src/operator/builders/rbac.rs; do not edit.\n{}---\n{}",
        serde_saphyr::to_string(&cluster_role)?,
        serde_saphyr::to_string(&role)?
    ))
}

#[cfg(test)]
mod golden {
    /// `config/rbac/role.yaml` is the operator's rule list; `make generate` rewrites
    /// it (FGM_UPDATE_GOLDEN=1), otherwise this test fails when they differ.
    #[test]
    fn operator_rbac_file_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rbac/role.yaml");
        let yaml = super::operator_rbac_yaml().unwrap();
        if std::env::var_os("FGM_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &yaml).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate it with `make generate`",
                path.display()
            )
        });
        assert!(
            committed == yaml,
            "{} differs from operator_cluster_rules(); regenerate it with `make generate`",
            path.display()
        );
    }
}
