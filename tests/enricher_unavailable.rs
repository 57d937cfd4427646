//! The enricher when the API cannot be used, against the real control plane:
//! a bad kubeconfig, an unknown context, a ServiceAccount RBAC denies. In each
//! case collection goes on with short ids, one log line says what happened,
//! and enrichment resumes by itself once the cause is fixed.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod enricher_support;
mod support;

use std::time::Duration;

use enricher_support::*;
use fine_grained_monitor::agent::SelfMetrics;
use fine_grained_monitor::agent::enrich::{Cause, Health};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SYNC: Duration = Duration::from_secs(20);

/// Runs an agent with an enricher whose API is unusable in some way, checks
/// that collection goes on and that one log line names `cause`, then lets
/// `fix` repair it and checks that enrichment resumes by itself.
async fn outage_then_recovery<F, Fut>(
    test: &str,
    kubeconfig: &std::path::Path,
    cause: Cause,
    needle: &str,
    fix: F,
) where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cp = support::control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, &format!("enrich-{test}")).await;
    let here = node(test);
    let id = new_id();
    let pod = create_pod(&client, &ns, "app-0", &here, &[], &["app"]).await;
    set_statuses(&client, &ns, "app-0", vec![running("app", &id, 0)]).await;

    let (logs, _guard) = Logs::capture();
    let data = tempfile::tempdir().unwrap();
    let cgroups = data.path().join("cgroup");
    cgroup_tree(&cgroups, &[(pod.metadata.uid.as_deref().unwrap(), &id)]);
    let run = Running::start(enrich_config(&here, data.path(), kubeconfig));
    let metrics = SelfMetrics::new();
    let stop = CancellationToken::new();
    let agent = start_agent(
        data.path(),
        &cgroups,
        &here,
        Some(run.enricher.clone()),
        metrics.clone(),
        stop.clone(),
    );

    let health = wait_health(&run.enricher, "unavailable", SYNC, |h| {
        matches!(h, Health::Unavailable { .. })
    })
    .await;
    let Health::Unavailable {
        cause: seen,
        reason,
    } = &health
    else {
        unreachable!()
    };
    assert_eq!(*seen, cause, "{reason}");
    // Several retries and cycles later: still collecting, still one line.
    let cycles = metrics.cycle_counts().0;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        metrics.cycle_counts().0 >= cycles + 10,
        "collection goes on during the outage"
    );
    let index = eventually("short ids recorded", SYNC, || read_index(data.path())).await;
    let entry = &index.containers[&id[..12]];
    assert!(entry.pod_name.is_none(), "no names without the API");
    let lines = logs.lines_with("pod metadata unavailable");
    assert_eq!(lines.len(), 1, "one log line per outage:\n{}", logs.text());
    assert!(
        lines[0].contains(needle),
        "the line says what happened ({needle}): {}",
        lines[0]
    );
    assert!(lines[0].contains("collection continues"), "{}", lines[0]);

    fix().await;
    wait_health(&run.enricher, "recovery", Duration::from_secs(30), |h| {
        *h == Health::Synced
    })
    .await;
    wait_named("names after recovery", data.path(), &[&id]).await;
    assert_one_outage_one_resume(&logs);
    stop.cancel();
    agent.task.await.unwrap().unwrap();
    run.stop().await;
}

#[tokio::test]
async fn bad_kubeconfig_then_fixed() {
    let cp = support::control_plane();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, "clusters: [this is not a kubeconfig").unwrap();
    let good = std::fs::read_to_string(&cp.kubeconfig).unwrap();
    let fix_path = path.clone();
    outage_then_recovery(
        "badcfg",
        &path,
        Cause::BadKubeconfig,
        "bad kubeconfig",
        || async move {
            std::fs::write(&fix_path, good).unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_context_then_fixed() {
    let cp = support::control_plane();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let good = std::fs::read_to_string(&cp.kubeconfig).unwrap();
    assert!(good.contains("current-context: envtest"), "{good}");
    std::fs::write(
        &path,
        good.replace("current-context: envtest", "current-context: elsewhere"),
    )
    .unwrap();
    let fix_path = path.clone();
    outage_then_recovery(
        "context",
        &path,
        Cause::UnknownContext,
        "\"elsewhere\"",
        || async move {
            std::fs::write(&fix_path, good).unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn rbac_denied_service_account_then_granted() {
    let cp = support::control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "enrich-rbac-sa").await;
    let sa_name = "fgm-agent";
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": sa_name}})).unwrap();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let token = sas
        .create_token_request(
            sa_name,
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).unwrap(),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let user = format!("    token: {token}");
    std::fs::write(&path, support::pki::kubeconfig(&cp.server, &cp.pki, &user)).unwrap();
    let role_name = format!("{ns}-pods-reader");
    let grant = {
        let (client, ns, role_name) = (client.clone(), ns.clone(), role_name.clone());
        || async move {
            // The rules the operator gives the agent: pods get/list/watch only.
            let role: ClusterRole = serde_json::from_value(json!({
                "metadata": {"name": role_name},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            }))
            .unwrap();
            let binding: ClusterRoleBinding = serde_json::from_value(json!({
                "metadata": {"name": role_name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
                "subjects": [{"kind": "ServiceAccount", "name": "fgm-agent", "namespace": ns}],
            }))
            .unwrap();
            Api::<ClusterRole>::all(client.clone())
                .create(&PostParams::default(), &role)
                .await
                .unwrap();
            Api::<ClusterRoleBinding>::all(client)
                .create(&PostParams::default(), &binding)
                .await
                .unwrap();
        }
    };
    outage_then_recovery("rbac", &path, Cause::Forbidden, "RBAC denied", grant).await;
    let dp = DeleteParams::default();
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&role_name, &dp)
        .await
        .unwrap();
    Api::<ClusterRole>::all(client)
        .delete(&role_name, &dp)
        .await
        .unwrap();
}
