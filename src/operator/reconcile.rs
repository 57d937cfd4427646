//! One reconcile of one NodeMonitor: check the spec, apply the children with
//! server-side apply, then write the status. Thin async shell over the pure
//! builders, [`super::conflict`] and [`super::status`].
//!
//! ```text
//!  NodeMonitor ─▶ settings ok? ── no ──▶ Degraded/InvalidSpec (children left as they were)
//!                     │ yes
//!                 conflict? ── yes ─▶ Degraded/HostPathConflict (own DaemonSet removed)
//!                     │ no
//!    apply SA, ConfigMap, ClusterRole, Binding, DaemonSet ─▶ status from the DaemonSet
//! ```
//!
//! Deletion: the finalizer removes the cluster-scoped RBAC (namespaced children
//! go with their owner reference).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builders::{daemonset, export, rbac, settings};
use super::conflict::host_path_conflict;
use super::error::{Error, Result};
use super::export_status;
use super::metrics::Metrics;
use super::status::{self, Blocked, Observed};
use crate::crd::{NodeMonitor, NodeMonitorStatus};

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "fine-grained-monitor";
/// Finalizer that removes the cluster-scoped RBAC.
pub const FINALIZER: &str = "fgm.dev/cleanup";
/// Re-check a healthy NodeMonitor this often even without events.
const RESYNC: Duration = Duration::from_secs(300);
/// Re-read the agents' export progress this often when `spec.export` is set.
const EXPORT_RESYNC: Duration = Duration::from_secs(60);
const INVALID_SPEC: &str = "InvalidSpec";
const HOST_PATH_CONFLICT: &str = "HostPathConflict";

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// All NodeMonitors, for the host-path conflict check.
    pub store: Store<NodeMonitor>,
    pub default_image: String,
    /// Consecutive failures per NodeMonitor, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        store: Store<NodeMonitor>,
        default_image: String,
    ) -> Self {
        Self {
            client,
            recorder,
            metrics,
            store,
            default_image,
            failures: Mutex::default(),
        }
    }

    async fn publish(&self, nm: &NodeMonitor, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &nm.object_ref(&())).await {
            tracing::warn!(nodemonitor = %key(nm), error = %e, "cannot record event");
        }
    }
}

fn key(nm: &NodeMonitor) -> String {
    format!("{}/{}", nm.namespace().unwrap_or_default(), nm.name_any())
}

/// Backoff after `n` consecutive failures: 1 s doubling to 5 min.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(9)).min(RESYNC)
}

/// Reconciles one NodeMonitor (the controller's reconciler).
pub async fn reconcile(nm: Arc<NodeMonitor>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile();
    let name = key(&nm);
    let ns = nm
        .namespace()
        .ok_or_else(|| Error::NoNamespace(nm.name_any()))?;
    let api: Api<NodeMonitor> = Api::namespaced(ctx.client.clone(), &ns);
    let action = finalizer(&api, FINALIZER, nm, |event| async {
        match event {
            FinalizerEvent::Apply(nm) => apply(&nm, &ctx).await,
            FinalizerEvent::Cleanup(nm) => cleanup(&nm, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer {
            name: name.clone(),
            message: other.to_string(),
        },
    })?;
    if let Ok(mut failures) = ctx.failures.lock() {
        failures.remove(&name);
    }
    Ok(action)
}

/// Counts the failure, records a Warning event and retries with backoff.
pub fn error_policy(nm: Arc<NodeMonitor>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failure(error);
    let name = key(&nm);
    let attempt = match ctx.failures.lock() {
        Ok(mut failures) => {
            let n = failures.entry(name.clone()).or_insert(0);
            *n += 1;
            *n
        }
        Err(_) => 1,
    };
    let delay = backoff(attempt - 1);
    tracing::warn!(nodemonitor = %name, error = %error, retry_in = ?delay, "reconcile failed");
    let note = error.to_string();
    tokio::spawn(async move {
        ctx.publish(&nm, EventType::Warning, "ReconcileFailed", note)
            .await;
    });
    Action::requeue(delay)
}

async fn apply_object<K>(api: &Api<K>, obj: &K, kind: &'static str) -> Result<K>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(Error::kube("apply", kind, name))
}

async fn delete_object<K>(api: &Api<K>, name: &str, kind: &'static str) -> Result<bool>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(e) => Err(Error::kube("delete", kind, name)(e)),
    }
}

async fn apply(nm: &NodeMonitor, ctx: &Context) -> Result<Action> {
    let ns = nm.namespace().unwrap_or_default();
    let name = nm.name_any();
    let client = &ctx.client;
    let ds_api: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);

    let settings = settings::agent_settings(&nm.spec);
    // Judge conflicts only on the full list of NodeMonitors, not a half-filled cache.
    if ctx.store.wait_until_ready().await.is_err() {
        tracing::warn!("NodeMonitor cache closed; judging host-path conflicts on what it holds");
    }
    let conflict = {
        let all = ctx.store.state();
        host_path_conflict(nm, all.iter().map(|o| &**o)).map(|other| {
            format!(
                "dataHostPath {} is already used by NodeMonitor {} on the same nodes; the earlier NodeMonitor keeps it",
                nm.spec.data_host_path,
                key(other)
            )
        })
    };

    let (blocked, daemon_set) = match (settings, conflict) {
        (Err(e), _) => {
            // Leave the last good DaemonSet running; report why the spec is refused.
            let ds =
                ds_api
                    .get_opt(&name)
                    .await
                    .map_err(Error::kube("get", "DaemonSet", key(nm)))?;
            let blocked = Blocked {
                reason: INVALID_SPEC,
                message: e.to_string(),
            };
            (Some(blocked), ds)
        }
        (Ok(_), Some(message)) => {
            if delete_object(&ds_api, &name, "DaemonSet").await? {
                tracing::info!(nodemonitor = %key(nm), "deleted DaemonSet of a conflicting NodeMonitor");
            }
            let blocked = Blocked {
                reason: HOST_PATH_CONFLICT,
                message,
            };
            (Some(blocked), None)
        }
        (Ok(settings), None) => {
            let yaml = settings::settings_yaml(&settings);
            let hash = settings::settings_hash(&yaml);
            apply_object(
                &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
                &rbac::service_account(nm),
                "ServiceAccount",
            )
            .await?;
            apply_object(
                &Api::<ConfigMap>::namespaced(client.clone(), &ns),
                &settings::config_map(nm, &yaml),
                "ConfigMap",
            )
            .await?;
            apply_object(
                &Api::<ClusterRole>::all(client.clone()),
                &rbac::cluster_role(nm),
                "ClusterRole",
            )
            .await?;
            apply_object(
                &Api::<ClusterRoleBinding>::all(client.clone()),
                &rbac::cluster_role_binding(nm),
                "ClusterRoleBinding",
            )
            .await?;
            let ds = apply_object(
                &ds_api,
                &daemonset::daemon_set(nm, &hash, &ctx.default_image),
                "DaemonSet",
            )
            .await?;
            reconcile_compaction(nm, ctx).await?;
            (None, Some(ds))
        }
    };

    let observed = Observed {
        generation: nm.metadata.generation,
        daemon_set,
        blocked: blocked.clone(),
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut new_status = status::compute(nm.status.as_ref(), &observed, now.clone());
    refresh_export_status(nm, &mut new_status, blocked.is_some(), ctx, now).await;
    publish_changes(nm, nm.status.as_ref(), &new_status, blocked.as_ref(), ctx).await;
    if nm.status.as_ref() != Some(&new_status) {
        write_status(nm, &new_status, ctx).await?;
    }
    // With export, the agents' progress is polled: resync more often.
    Ok(Action::requeue(if nm.spec.export.is_some() {
        EXPORT_RESYNC
    } else {
        RESYNC
    }))
}

/// The compaction CronJob: applied while `spec.export.compaction` is on,
/// removed (when it is ours) otherwise.
async fn reconcile_compaction(nm: &NodeMonitor, ctx: &Context) -> Result<()> {
    let api: Api<CronJob> =
        Api::namespaced(ctx.client.clone(), &nm.namespace().unwrap_or_default());
    let name = export::cron_job_name(nm);
    let image = nm.spec.image.as_deref().unwrap_or(&ctx.default_image);
    match nm.spec.export.as_ref().filter(|e| e.compaction.enabled) {
        Some(spec) => {
            apply_object(&api, &export::cron_job(nm, spec, image), "CronJob").await?;
        }
        None => {
            let existing =
                api.get_opt(&name)
                    .await
                    .map_err(Error::kube("get", "CronJob", name.clone()))?;
            let ours = existing.is_some_and(|cj| {
                cj.owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == nm.metadata.uid.as_ref())
            });
            if ours {
                delete_object(&api, &name, "CronJob").await?;
            }
        }
    }
    Ok(())
}

/// `status.export` and the `ExportHealthy` condition from the agents' reports.
async fn refresh_export_status(
    nm: &NodeMonitor,
    status: &mut NodeMonitorStatus,
    blocked: bool,
    ctx: &Context,
    now: Time,
) {
    let export = match (&nm.spec.export, blocked) {
        (Some(export), false) => export,
        _ => {
            export_status::apply_to(
                status,
                nm.status.as_ref(),
                None,
                None,
                nm.metadata.generation,
                now,
            );
            return;
        }
    };
    let prefix = crate::export::keys::normalize_prefix(&export.prefix);
    let destination = if prefix.is_empty() {
        format!("s3://{}", export.bucket)
    } else {
        format!("s3://{}/{prefix}", export.bucket)
    };
    let reports = export_status::collect(&ctx.client, nm).await;
    let cron_jobs: Api<CronJob> =
        Api::namespaced(ctx.client.clone(), &nm.namespace().unwrap_or_default());
    let last_compaction = cron_jobs
        .get_opt(&export::cron_job_name(nm))
        .await
        .ok()
        .flatten()
        .and_then(|cj| cj.status?.last_successful_time)
        .map(|t| t.0.to_string());
    let (summary, condition) = export_status::summarize(&destination, &reports, last_compaction);
    export_status::apply_to(
        status,
        nm.status.as_ref(),
        Some(summary),
        Some(condition),
        nm.metadata.generation,
        now,
    );
}

fn condition<'a>(s: Option<&'a NodeMonitorStatus>, type_: &str) -> Option<(&'a str, &'a str)> {
    s.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

/// Events for what changed: a spec applied, refused, or all pods ready.
async fn publish_changes(
    nm: &NodeMonitor,
    old: Option<&NodeMonitorStatus>,
    new: &NodeMonitorStatus,
    blocked: Option<&Blocked>,
    ctx: &Context,
) {
    let new_generation = old.and_then(|s| s.observed_generation) != nm.metadata.generation;
    match blocked {
        Some(b)
            if new_generation || condition(old, status::DEGRADED) != Some(("True", b.reason)) =>
        {
            ctx.publish(nm, EventType::Warning, b.reason, b.message.clone())
                .await;
        }
        Some(_) => {}
        None if new_generation => {
            let note = format!(
                "applied generation {}: DaemonSet, ConfigMap, ServiceAccount, ClusterRole and ClusterRoleBinding",
                nm.metadata.generation.unwrap_or_default()
            );
            ctx.publish(nm, EventType::Normal, "Applied", note).await;
        }
        None => {}
    }
    let ready = condition(Some(new), status::READY);
    if ready.is_some_and(|(s, _)| s == "True")
        && condition(old, status::READY).map(|c| c.0) != Some("True")
    {
        let note = format!(
            "{} of {} pods ready",
            new.number_ready, new.desired_number_scheduled
        );
        ctx.publish(nm, EventType::Normal, "Ready", note).await;
    }
}

async fn write_status(nm: &NodeMonitor, status: &NodeMonitorStatus, ctx: &Context) -> Result<()> {
    let api: Api<NodeMonitor> =
        Api::namespaced(ctx.client.clone(), &nm.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "fgm.dev/v1alpha1",
        "kind": "NodeMonitor",
        "status": status,
    });
    api.patch_status(
        &nm.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube("patch status of", "NodeMonitor", key(nm)))?;
    Ok(())
}

/// The NodeMonitor is being deleted: remove what garbage collection cannot.
async fn cleanup(nm: &NodeMonitor, ctx: &Context) -> Result<Action> {
    let name = super::builders::cluster_name(nm);
    let bindings: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    let roles: Api<ClusterRole> = Api::all(ctx.client.clone());
    delete_object(&bindings, &name, "ClusterRoleBinding").await?;
    delete_object(&roles, &name, "ClusterRole").await?;
    ctx.publish(
        nm,
        EventType::Normal,
        "Cleanup",
        format!("deleted ClusterRole and ClusterRoleBinding {name}"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_resync() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), RESYNC);
    }
}
