//! The API server stopped in the middle of a run, then started again: the
//! agent keeps collecting with short ids, logs the outage once, and
//! enrichment resumes by itself. A test binary of its own, because stopping
//! the shared control plane would break any other test running beside it.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod enricher_support;
mod support;

use std::time::Duration;

use enricher_support::*;
use fine_grained_monitor::agent::enrich::{Cause, Health};
use fine_grained_monitor::agent::{PodMetadata, SelfMetrics};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn apiserver_stopped_mid_run_then_restarted() {
    let cp = support::control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "enrich-outage").await;
    let here = node("outage");
    let (before, after) = (new_id(), new_id());
    let pod = create_pod(&client, &ns, "before-0", &here, &[], &["app"]).await;
    set_statuses(&client, &ns, "before-0", vec![running("app", &before, 0)]).await;

    let (logs, _guard) = Logs::capture();
    let data = tempfile::tempdir().unwrap();
    let cgroups = data.path().join("cgroup");
    cgroup_tree(&cgroups, &[(pod.metadata.uid.as_deref().unwrap(), &before)]);
    let run = Running::start(enrich_config(&here, data.path(), &cp.kubeconfig));
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
    wait_health(
        &run.enricher,
        "initial sync",
        Duration::from_secs(20),
        |h| *h == Health::Synced,
    )
    .await;

    tokio::task::spawn_blocking(|| support::control_plane().stop_apiserver())
        .await
        .unwrap();
    let health = wait_health(
        &run.enricher,
        "outage noticed",
        Duration::from_secs(30),
        |h| matches!(h, Health::Unavailable { .. }),
    )
    .await;
    assert!(
        matches!(
            &health,
            Health::Unavailable {
                cause: Cause::Unreachable,
                ..
            }
        ),
        "{health:?}"
    );
    assert!(
        run.enricher.lookup(&before).is_some(),
        "the cache keeps what it knew"
    );
    let cycles = metrics.cycle_counts().0;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        metrics.cycle_counts().0 >= cycles + 10,
        "collection goes on while the API is down"
    );
    let lines = logs.lines_with("pod metadata unavailable");
    assert_eq!(lines.len(), 1, "one line for the outage:\n{}", logs.text());
    assert!(lines[0].contains("API server unreachable"), "{}", lines[0]);

    tokio::task::spawn_blocking(|| support::control_plane().start_apiserver())
        .await
        .unwrap();
    wait_health(
        &run.enricher,
        "enrichment resumed",
        Duration::from_secs(40),
        |h| *h == Health::Synced,
    )
    .await;

    // A pod created after the restart is enriched: the watch is live again.
    let late = create_pod(
        &client,
        &ns,
        "after-0",
        &here,
        &[("when", "after")],
        &["app"],
    )
    .await;
    add_container(&cgroups, late.metadata.uid.as_deref().unwrap(), &after);
    set_statuses(&client, &ns, "after-0", vec![running("app", &after, 0)]).await;
    let index = wait_named("names after the restart", data.path(), &[&before, &after]).await;
    assert_eq!(
        index.containers[&after[..12]].pod_name.as_deref(),
        Some("after-0")
    );
    assert_one_outage_one_resume(&logs);
    stop.cancel();
    agent.task.await.unwrap().unwrap();
    run.stop().await;
}
