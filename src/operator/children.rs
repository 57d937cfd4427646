//! The objects one NodeMonitor owns, read before anything is written, and the
//! three ways they are written: created when absent, applied when ours,
//! deleted only when ours (with a uid precondition, so an object swapped in
//! meanwhile is never removed).
//!
//! Creation is a server-side apply without `force`: should another client
//! create the object between the read and the write, its differing fields make
//! the apply fail with a conflict instead of being overwritten, and the next
//! reconcile reports the clash.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builders::export::cron_job_name;
use super::builders::rbac::{self, AGENT_NAMESPACE_READER, AGENT_POD_READER};
use super::error::{Error, Result};
use super::ownership::Found;
use crate::crd::NodeMonitor;

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "fine-grained-monitor";

/// The fixed roles a NodeMonitor may be bound to, in a fixed order.
pub const AGENT_ROLES: [&str; 2] = [AGENT_POD_READER, AGENT_NAMESPACE_READER];

/// Every child of a NodeMonitor as it is now (`None`: absent).
pub struct Children {
    pub service_account: Option<ServiceAccount>,
    pub config_map: Option<ConfigMap>,
    pub daemon_set: Option<DaemonSet>,
    /// The compaction CronJob of `spec.export.compaction`.
    pub cron_job: Option<CronJob>,
    /// One per entry of [`AGENT_ROLES`].
    pub bindings: [Option<ClusterRoleBinding>; 2],
}

/// The APIs of a NodeMonitor's children.
pub struct Apis {
    pub service_accounts: Api<ServiceAccount>,
    pub config_maps: Api<ConfigMap>,
    pub daemon_sets: Api<DaemonSet>,
    pub cron_jobs: Api<CronJob>,
    pub bindings: Api<ClusterRoleBinding>,
}

impl Apis {
    pub fn new(client: &Client, namespace: &str) -> Self {
        Self {
            service_accounts: Api::namespaced(client.clone(), namespace),
            config_maps: Api::namespaced(client.clone(), namespace),
            daemon_sets: Api::namespaced(client.clone(), namespace),
            cron_jobs: Api::namespaced(client.clone(), namespace),
            bindings: Api::all(client.clone()),
        }
    }
}

async fn read<K>(api: &Api<K>, name: &str, kind: &'static str, what: &str) -> Result<Option<K>>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    api.get_opt(name)
        .await
        .map_err(Error::kube("get", kind, what.to_string()))
}

impl Children {
    /// Reads every child `nm` may have.
    pub async fn read(nm: &NodeMonitor, apis: &Apis) -> Result<Self> {
        let ns = nm.namespace().unwrap_or_default();
        let name = nm.name_any();
        let sa_name = rbac::service_account_name(nm);
        let service_account = read(
            &apis.service_accounts,
            &sa_name,
            "ServiceAccount",
            &format!("{ns}/{sa_name}"),
        )
        .await?;
        let what = format!("{ns}/{name}");
        let config_map = read(&apis.config_maps, &name, "ConfigMap", &what).await?;
        let daemon_set = read(&apis.daemon_sets, &name, "DaemonSet", &what).await?;
        let cron_name = cron_job_name(nm);
        let cron_job = read(
            &apis.cron_jobs,
            &cron_name,
            "CronJob",
            &format!("{ns}/{cron_name}"),
        )
        .await?;
        let mut bindings = [None, None];
        for (slot, role) in bindings.iter_mut().zip(AGENT_ROLES) {
            let binding = rbac::binding_name(nm, role);
            *slot = read(&apis.bindings, &binding, "ClusterRoleBinding", &binding).await?;
        }
        Ok(Self {
            service_account,
            config_map,
            daemon_set,
            cron_job,
            bindings,
        })
    }

    /// What the ownership check looks at: every child the reconcile would write.
    pub fn found<'a>(&'a self, nm: &NodeMonitor) -> Vec<Found<'a>> {
        let roles = rbac::roles_needed(nm);
        let mut found = vec![
            Found {
                kind: "ServiceAccount",
                name: rbac::service_account_name(nm),
                namespaced: true,
                existing: self.service_account.as_ref().map(|o| &o.metadata),
            },
            Found {
                kind: "ConfigMap",
                name: nm.name_any(),
                namespaced: true,
                existing: self.config_map.as_ref().map(|o| &o.metadata),
            },
            Found {
                kind: "DaemonSet",
                name: nm.name_any(),
                namespaced: true,
                existing: self.daemon_set.as_ref().map(|o| &o.metadata),
            },
        ];
        // Like an unneeded binding, a CronJob only matters while compaction is on.
        if compaction_enabled(nm) {
            found.push(Found {
                kind: "CronJob",
                name: cron_job_name(nm),
                namespaced: true,
                existing: self.cron_job.as_ref().map(|o| &o.metadata),
            });
        }
        for (binding, role) in self.bindings.iter().zip(AGENT_ROLES) {
            // A binding the spec does not need is only deleted when ours; a
            // foreign one of that name is no concern of this NodeMonitor.
            if roles.contains(&role) {
                found.push(Found {
                    kind: "ClusterRoleBinding",
                    name: rbac::binding_name(nm, role),
                    namespaced: false,
                    existing: binding.as_ref().map(|o| &o.metadata),
                });
            }
        }
        found
    }
}

/// Whether the spec asks for the compaction CronJob.
pub fn compaction_enabled(nm: &NodeMonitor) -> bool {
    nm.spec
        .export
        .as_ref()
        .is_some_and(|e| e.compaction.enabled)
}

/// Writes `desired`: created (apply without force) when `existing` is `None`,
/// else applied with force over our own object. Callers check ownership first.
pub async fn ensure<K>(
    api: &Api<K>,
    existing: Option<&K>,
    desired: &K,
    kind: &'static str,
) -> Result<K>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let params = if existing.is_some() {
        PatchParams::apply(FIELD_MANAGER).force()
    } else {
        PatchParams::apply(FIELD_MANAGER)
    };
    api.patch(&name, &params, &Patch::Apply(desired))
        .await
        .map_err(Error::kube("apply", kind, name))
}

/// Deletes `existing` if it still is that very object (uid precondition).
/// Returns whether something was deleted.
pub async fn remove<K>(api: &Api<K>, existing: &K, kind: &'static str) -> Result<bool>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let name = existing.name_any();
    let params = DeleteParams::default().preconditions(Preconditions {
        uid: existing.uid(),
        resource_version: None,
    });
    match api.delete(&name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        // Replaced meanwhile by another object of that name: not ours to delete.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(Error::kube("delete", kind, name)(e)),
    }
}
