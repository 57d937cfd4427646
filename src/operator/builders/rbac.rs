//! RBAC: the ServiceAccount of a NodeMonitor's pods and the bindings that let
//! their enricher read pods (and the kubelet's stats), plus the fixed roles the chart installs and the
//! operator's own rules (one list, used by the tests and by the packaged
//! manifests).
//!
//! The agents' read access is two fixed ClusterRoles shipped with the chart
//! ([`AGENT_POD_READER`], [`AGENT_NAMESPACE_READER`]); the operator only binds
//! them (`bind` on exactly these names) and cannot create or change any role.
//! The ServiceAccount is `fine-grained-monitor-<name>`, so no NodeMonitor name
//! (`default`, ...) lands on an account that exists for something else.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::{cluster_meta, cluster_name, owned_meta};
use crate::crd::NodeMonitor;

/// The fixed ClusterRole that lets the agents read pods (get/list/watch).
pub const AGENT_POD_READER: &str = "fine-grained-monitor-agent";
/// The fixed ClusterRole that lets the agents read namespaces (list/watch), bound
/// only for a NodeMonitor with a `namespaceSelector`.
pub const AGENT_NAMESPACE_READER: &str = "fine-grained-monitor-agent-namespaces";
/// Prefix of every ServiceAccount the operator makes.
pub const SERVICE_ACCOUNT_PREFIX: &str = "fine-grained-monitor-";

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// Name of the ServiceAccount of a NodeMonitor's pods.
pub fn service_account_name(nm: &NodeMonitor) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{}", nm.name_any())
}

/// The ServiceAccount the monitor pods run as (its token is mounted into the agent only).
pub fn service_account(nm: &NodeMonitor) -> ServiceAccount {
    let mut metadata = owned_meta(nm);
    metadata.name = Some(service_account_name(nm));
    ServiceAccount {
        metadata,
        // Tokens are mounted explicitly (agent container only), never by default.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The fixed ClusterRoles of the agents, installed with the chart (and `config/`).
pub fn agent_cluster_roles() -> Vec<ClusterRole> {
    let role = |name: &str, rules: Vec<PolicyRule>| ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    };
    vec![
        role(
            AGENT_POD_READER,
            vec![
                rule("", &["pods"], &["get", "list", "watch"]),
                // The node's kubelet `/stats/summary`: each container's writable
                // layer and logs, measured by the runtime (no walk of the layer).
                rule("", &["nodes/stats"], &["get"]),
            ],
        ),
        role(
            AGENT_NAMESPACE_READER,
            vec![rule("", &["namespaces"], &["list", "watch"])],
        ),
    ]
}

/// Name of the binding of `role` for a NodeMonitor.
pub fn binding_name(nm: &NodeMonitor, role: &str) -> String {
    if role == AGENT_NAMESPACE_READER {
        format!("{}:namespaces", cluster_name(nm))
    } else {
        cluster_name(nm)
    }
}

/// The fixed roles a NodeMonitor's pods need: none without enrichment (no
/// token is mounted then), pods, and namespaces for a namespace selector.
pub fn roles_needed(nm: &NodeMonitor) -> Vec<&'static str> {
    let mut roles = Vec::new();
    if nm.spec.pod_metadata.enabled {
        roles.push(AGENT_POD_READER);
        if nm.spec.namespace_selector.is_some() {
            roles.push(AGENT_NAMESPACE_READER);
        }
    }
    roles
}

/// Binds the fixed ClusterRole `role` to the NodeMonitor's ServiceAccount.
pub fn cluster_role_binding(nm: &NodeMonitor, role: &str) -> ClusterRoleBinding {
    let mut metadata = cluster_meta(nm);
    metadata.name = Some(binding_name(nm, role));
    ClusterRoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: service_account_name(nm),
            namespace: nm.namespace(),
            ..Subject::default()
        }]),
    }
}

/// Name of the operator's ClusterRole (and of its ServiceAccount in the packaged manifests).
pub const OPERATOR_NAME: &str = "fine-grained-monitor-operator";

/// Everything the operator does cluster-wide, and nothing more:
/// - NodeMonitors: watch, finalizer and status updates;
/// - DaemonSets, ConfigMaps, ServiceAccounts: create, server-side apply (patch) of
///   its own; a DaemonSet is deleted when its NodeMonitor is refused;
/// - CronJobs: the compaction job of `spec.export`, created, applied and
///   deleted like the DaemonSet (its own only);
/// - pods list: find the agent pods of a NodeMonitor with `spec.export` to read
///   their `GET /export` (last upload, backlog) into `status.export`;
/// - ClusterRoleBindings: create, apply and delete its own (the finalizer);
/// - `bind` on the two fixed agent roles only: what lets it grant their rights
///   without holding them, and nothing else (no role can be created or changed);
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
        // `spec.export` status: the agent pods' addresses, to ask each for
        // `GET /export`. List only: no get, no watch.
        rule("", &["pods"], &["list"]),
        rule(
            "rbac.authorization.k8s.io",
            &["clusterrolebindings"],
            &apply_delete,
        ),
        PolicyRule {
            resource_names: Some(vec![
                AGENT_POD_READER.to_string(),
                AGENT_NAMESPACE_READER.to_string(),
            ]),
            ..rule("rbac.authorization.k8s.io", &["clusterroles"], &["bind"])
        },
        rule("events.k8s.io", &["events"], &["create", "patch"]),
        // Its own CRD only: applied at start (Helm never upgrades a chart's
        // crds/), conversions sent to its webhook with its CA; after a storage
        // upgrade, `status.storedVersions` narrowed. It exists already: no create.
        PolicyRule {
            resource_names: Some(vec![crate::crd::CRD_NAME.to_string()]),
            ..rule(
                "apiextensions.k8s.io",
                &["customresourcedefinitions"],
                &["get", "patch"],
            )
        },
        PolicyRule {
            resource_names: Some(vec![crate::crd::CRD_NAME.to_string()]),
            ..rule(
                "apiextensions.k8s.io",
                &["customresourcedefinitions/status"],
                &["patch"],
            )
        },
    ]
}

/// What the operator does in its own namespace: the leader-election Lease, and
/// the Secret of its webhook's CA and certificate (that one Secret only; create
/// cannot be limited to a name).
pub fn operator_namespace_rules() -> Vec<PolicyRule> {
    let secret = crate::operator::webhook::certs::SECRET_NAME.to_string();
    vec![
        rule(
            "coordination.k8s.io",
            &["leases"],
            &["get", "list", "watch", "create", "update", "patch"],
        ),
        PolicyRule {
            resource_names: Some(vec![secret]),
            ..rule("", &["secrets"], &["get", "update"])
        },
        rule("", &["secrets"], &["create"]),
    ]
}

#[cfg(test)]
mod tests;

/// The operator's ClusterRole and leader-election Role, then the agents' fixed
/// ClusterRoles, as YAML (what
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
    let mut out = format!(
        "# Generated by `make generate` from src/operator/builders/rbac.rs; do not edit.\n{}---\n{}",
        serde_saphyr::to_string(&cluster_role)?,
        serde_saphyr::to_string(&role)?
    );
    // The fixed roles the operator binds for the agents (it cannot create them).
    for agent_role in agent_cluster_roles() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&agent_role)?);
    }
    Ok(out)
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
