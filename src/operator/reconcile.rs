//! One reconcile of one NodeMonitor: check the spec against the operator's
//! policy and the other NodeMonitors, read every child, check it is ours, then
//! write the children and the status. Thin async shell over the pure
//! [`super::policy`], [`super::conflict`], [`super::ownership`], builders and
//! [`super::status`].
//!
//! ```text
//!  NodeMonitor ─▶ policy ok? ── no ──▶ Degraded/HostPathNotAllowed|ImageNotAllowed (our DaemonSet removed)
//!                    │ yes
//!               settings ok? ── no ──▶ Degraded/InvalidSpec (children left as they were)
//!                    │ yes
//!                conflict? ── yes ─▶ Degraded/HostPathConflict (our DaemonSet removed)
//!                    │ no
//!   read SA, ConfigMap, DaemonSet, bindings ─▶ one not ours? ── yes ─▶ Degraded/NameClash
//!                    │ no                                    (it stays untouched; our DaemonSet removed)
//!   create or apply SA, ConfigMap, bindings (of the fixed roles), DaemonSet ─▶ status
//! ```
//!
//! Every refusal is decided before the first write. Deletion: the finalizer
//! removes our ClusterRoleBindings (namespaced children go with their owner
//! reference).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};

use super::builders::{daemonset, export, rbac, settings};
pub use super::children::FIELD_MANAGER;
use super::children::{AGENT_ROLES, Apis, Children, compaction_enabled, ensure, remove};
use super::conflict::host_path_conflict;
use super::error::{Error, Result};
use super::export_status;
use super::metrics::Metrics;
use super::ownership::{self, NAME_CLASH};
use super::policy::{Policy, Resolved};
use super::status::{self, Blocked, Observed};
use crate::crd::{NodeMonitor, NodeMonitorStatus};

/// Finalizer that removes the cluster-scoped bindings.
pub const FINALIZER: &str = "fgm.dev/cleanup";
/// Re-check a healthy NodeMonitor this often even without events.
const RESYNC: Duration = Duration::from_secs(300);
/// Re-read the agents' export progress this often when `spec.export` is set.
const EXPORT_RESYNC: Duration = Duration::from_secs(60);
/// Re-check a NodeMonitor blocked by a foreign object this often.
const CLASH_RECHECK: Duration = Duration::from_secs(30);
const INVALID_SPEC: &str = "InvalidSpec";
const HOST_PATH_CONFLICT: &str = "HostPathConflict";

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// All NodeMonitors, for the host-path conflict check.
    pub store: Store<NodeMonitor>,
    /// The operator's settings every NodeMonitor is held to.
    pub policy: Policy,
    /// Consecutive failures per NodeMonitor, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        store: Store<NodeMonitor>,
        policy: Policy,
    ) -> Self {
        Self {
            client,
            recorder,
            metrics,
            store,
            policy,
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

/// Removes our DaemonSet and compaction CronJob of a refused NodeMonitor
/// (foreign ones stay): neither may keep running an image the policy refuses.
async fn stop_monitor(nm: &NodeMonitor, children: &Children, apis: &Apis) -> Result<()> {
    if let Some(ds) = &children.daemon_set
        && ownership::owns_namespaced(nm, &ds.metadata)
        && remove(&apis.daemon_sets, ds, "DaemonSet").await?
    {
        tracing::info!(nodemonitor = %key(nm), "deleted the DaemonSet of a refused NodeMonitor");
    }
    if let Some(cj) = &children.cron_job
        && ownership::owns_namespaced(nm, &cj.metadata)
    {
        remove(&apis.cron_jobs, cj, "CronJob").await?;
    }
    Ok(())
}

/// Writes every child of an accepted NodeMonitor; returns the DaemonSet.
async fn write_children(
    nm: &NodeMonitor,
    children: &Children,
    apis: &Apis,
    resolved: &Resolved,
    settings_yaml: &str,
) -> Result<k8s_openapi::api::apps::v1::DaemonSet> {
    ensure(
        &apis.service_accounts,
        children.service_account.as_ref(),
        &rbac::service_account(nm),
        "ServiceAccount",
    )
    .await?;
    ensure(
        &apis.config_maps,
        children.config_map.as_ref(),
        &settings::config_map(nm, settings_yaml),
        "ConfigMap",
    )
    .await?;
    let needed = rbac::roles_needed(nm);
    for (existing, role) in children.bindings.iter().zip(AGENT_ROLES) {
        let ours = existing
            .as_ref()
            .filter(|b| ownership::owns_cluster_scoped(nm, &b.metadata));
        if !needed.contains(&role) {
            if let Some(binding) = ours {
                remove(&apis.bindings, binding, "ClusterRoleBinding").await?;
            }
            continue;
        }
        // A binding's role cannot change: one made by an older operator (for a
        // per-NodeMonitor role) is replaced by one of the fixed role.
        let mut current = ours;
        if let Some(binding) = ours.filter(|b| b.role_ref.name != role) {
            remove(&apis.bindings, binding, "ClusterRoleBinding").await?;
            current = None;
        }
        ensure::<ClusterRoleBinding>(
            &apis.bindings,
            current,
            &rbac::cluster_role_binding(nm, role),
            "ClusterRoleBinding",
        )
        .await?;
    }
    match nm.spec.export.as_ref().filter(|_| compaction_enabled(nm)) {
        Some(spec) => {
            ensure(
                &apis.cron_jobs,
                children.cron_job.as_ref(),
                &export::cron_job(nm, spec, resolved),
                "CronJob",
            )
            .await?;
        }
        None => {
            if let Some(cj) = children
                .cron_job
                .as_ref()
                .filter(|cj| ownership::owns_namespaced(nm, &cj.metadata))
            {
                remove(&apis.cron_jobs, cj, "CronJob").await?;
            }
        }
    }
    let hash = settings::settings_hash(settings_yaml);
    ensure(
        &apis.daemon_sets,
        children.daemon_set.as_ref(),
        &daemonset::daemon_set(nm, &hash, resolved),
        "DaemonSet",
    )
    .await
}

async fn apply(nm: &NodeMonitor, ctx: &Context) -> Result<Action> {
    let ns = nm.namespace().unwrap_or_default();
    let apis = Apis::new(&ctx.client, &ns);

    let resolved = ctx.policy.resolve(&nm.spec);
    let settings = settings::agent_settings(&nm.spec);
    // Judge conflicts only on the full list of NodeMonitors, not a half-filled cache.
    if ctx.store.wait_until_ready().await.is_err() {
        tracing::warn!("NodeMonitor cache closed; judging host-path conflicts on what it holds");
    }
    let conflict = {
        let all = ctx.store.state();
        host_path_conflict(nm, all.iter().map(|o| &**o), &ctx.policy).map(|other| {
            format!(
                "dataHostPath {} is already used by NodeMonitor {} on the same nodes; the earlier NodeMonitor keeps it",
                nm.spec.data_host_path,
                key(other)
            )
        })
    };
    // Read every child before the first write: a refusal writes nothing.
    let children = Children::read(nm, &apis).await?;
    let clashes = ownership::clashes(nm, &children.found(nm));

    let (blocked, daemon_set) = match (resolved, settings) {
        (Err(refusal), _) => {
            stop_monitor(nm, &children, &apis).await?;
            let blocked = Blocked {
                reason: refusal.reason(),
                message: refusal.to_string(),
            };
            (Some(blocked), None)
        }
        (Ok(_), Err(e)) => {
            // Leave the last good DaemonSet running; report why the spec is refused.
            let ds = children
                .daemon_set
                .clone()
                .filter(|ds| ownership::owns_namespaced(nm, &ds.metadata));
            let blocked = Blocked {
                reason: INVALID_SPEC,
                message: e.to_string(),
            };
            (Some(blocked), ds)
        }
        (Ok(_), Ok(_)) if conflict.is_some() => {
            stop_monitor(nm, &children, &apis).await?;
            let blocked = Blocked {
                reason: HOST_PATH_CONFLICT,
                message: conflict.unwrap_or_default(),
            };
            (Some(blocked), None)
        }
        (Ok(_), Ok(_)) if !clashes.is_empty() => {
            stop_monitor(nm, &children, &apis).await?;
            let blocked = Blocked {
                reason: NAME_CLASH,
                message: clashes.join("; "),
            };
            (Some(blocked), None)
        }
        (Ok(resolved), Ok(settings)) => {
            let yaml = settings::settings_yaml(&settings);
            let ds = write_children(nm, &children, &apis, &resolved, &yaml).await?;
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
    // A foreign object is not watched: look again soon in case it went away;
    // with export, the agents' progress is polled: resync more often.
    let clashed = blocked.as_ref().is_some_and(|b| b.reason == NAME_CLASH);
    Ok(Action::requeue(if clashed {
        CLASH_RECHECK
    } else if nm.spec.export.is_some() {
        EXPORT_RESYNC
    } else {
        RESYNC
    }))
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
        .filter(|cj| ownership::owns_namespaced(nm, &cj.metadata))
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
                "applied generation {}: DaemonSet, ConfigMap, ServiceAccount {} and the bindings of {}",
                nm.metadata.generation.unwrap_or_default(),
                rbac::service_account_name(nm),
                match rbac::roles_needed(nm).as_slice() {
                    [] => "no role (enrichment is off)".to_string(),
                    roles => roles.join(", "),
                }
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
        "apiVersion": "fgm.dev/v1beta1",
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

/// The NodeMonitor is being deleted: remove what garbage collection cannot
/// (our ClusterRoleBindings; a foreign object of that name stays).
async fn cleanup(nm: &NodeMonitor, ctx: &Context) -> Result<Action> {
    let apis = Apis::new(&ctx.client, &nm.namespace().unwrap_or_default());
    let children = Children::read(nm, &apis).await?;
    let mut deleted = Vec::new();
    for binding in children.bindings.iter().flatten() {
        if ownership::owns_cluster_scoped(nm, &binding.metadata)
            && remove(&apis.bindings, binding, "ClusterRoleBinding").await?
        {
            deleted.push(binding.name_any());
        }
    }
    if !deleted.is_empty() {
        ctx.publish(
            nm,
            EventType::Normal,
            "Cleanup",
            format!("deleted ClusterRoleBinding {}", deleted.join(", ")),
        )
        .await;
    }
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
