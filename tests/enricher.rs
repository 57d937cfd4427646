//! The pod metadata enricher against the real control plane (etcd +
//! kube-apiserver from tests/support): this node's pods only, container ids
//! matched into index.json by the agent, failure events recorded once, the
//! namespace selector. (API unusable: enricher_unavailable.rs, enricher_outage.rs.)

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod enricher_support;
mod support;

use std::time::Duration;

use enricher_support::*;
use fine_grained_monitor::agent::enrich::Health;
use fine_grained_monitor::agent::{PodMetadata, SelfMetrics};
use fine_grained_monitor::store::events::EventKind;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SYNC: Duration = Duration::from_secs(20);

fn synced(h: &Health) -> bool {
    *h == Health::Synced
}

#[tokio::test]
async fn this_nodes_pods_only_and_their_container_ids() {
    let cp = support::control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "enrich-node").await;
    let (here, elsewhere) = (node("ids"), node("ids-other"));
    let (app, sidecar, other) = (new_id(), new_id(), new_id());
    let web = create_pod(
        &client,
        &ns,
        "web-0",
        &here,
        &[("app", "web")],
        &["app", "sidecar"],
    )
    .await;
    set_statuses(
        &client,
        &ns,
        "web-0",
        vec![running("app", &app, 0), running("sidecar", &sidecar, 0)],
    )
    .await;
    create_pod(&client, &ns, "db-0", &elsewhere, &[("app", "db")], &["db"]).await;
    set_statuses(&client, &ns, "db-0", vec![running("db", &other, 0)]).await;

    let data = tempfile::tempdir().unwrap();
    let run = Running::start(enrich_config(&here, data.path(), &cp.kubeconfig));
    wait_health(&run.enricher, "initial sync", SYNC, synced).await;
    let info = run
        .enricher
        .lookup(&app)
        .expect("a container of this node's pod");
    assert_eq!(info.pod_name, "web-0");
    assert_eq!(info.namespace, ns);
    assert_eq!(info.container_name, "app");
    assert_eq!(Some(info.pod_uid.as_str()), web.metadata.uid.as_deref());
    assert_eq!(info.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(info.image.as_deref(), Some("registry.example/app:1"));
    assert_eq!(
        run.enricher.lookup(&sidecar).unwrap().container_name,
        "sidecar"
    );
    assert!(
        run.enricher.lookup(&other).is_none(),
        "pods of other nodes are never listed"
    );
    assert_eq!(
        run.enricher.counts(),
        (1, 2),
        "only this node's pod is cached"
    );

    // A pod that appears later is found as soon as the watch delivers it.
    let late = new_id();
    create_pod(&client, &ns, "late-0", &here, &[], &["main"]).await;
    assert!(run.enricher.lookup(&late).is_none());
    set_statuses(&client, &ns, "late-0", vec![running("main", &late, 0)]).await;
    eventually("late pod enriched", SYNC, || run.enricher.lookup(&late)).await;

    // Deleted pods leave the cache.
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete("web-0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("deleted pod forgotten", SYNC, || {
        run.enricher.lookup(&app).is_none().then_some(())
    })
    .await;
    assert!(run.enricher.lookup(&late).is_some());
    run.stop().await;
}

#[tokio::test]
async fn agent_writes_pod_identity_into_the_index_and_honours_the_namespace_selector() {
    let cp = support::control_plane();
    let client = cp.client().await;
    let selected = cp.namespace(&client, "enrich-agent-on").await;
    let unselected = cp.namespace(&client, "enrich-agent-off").await;
    let label = format!("fgm.dev/agent-test-{}", std::process::id());
    Api::<Namespace>::all(client.clone())
        .patch(
            &selected,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {&label: "on"}}})),
        )
        .await
        .unwrap();
    let here = node("agent");
    let (a, b, c) = (new_id(), new_id(), new_id());
    let pod_a = create_pod_requesting(
        &client,
        &selected,
        "api-0",
        &here,
        &[("tier", "front")],
        &["api"],
        Some(("250m", "64Mi")),
    )
    .await;
    set_statuses(&client, &selected, "api-0", vec![running("api", &a, 0)]).await;
    let pod_b = create_pod(&client, &unselected, "noise-0", &here, &[], &["noise"]).await;
    set_statuses(
        &client,
        &unselected,
        "noise-0",
        vec![running("noise", &b, 0)],
    )
    .await;

    let data = tempfile::tempdir().unwrap();
    let cgroups = data.path().join("cgroup");
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap();
    cgroup_tree(&cgroups, &[(&uid(&pod_a), &a), (&uid(&pod_b), &b)]);
    let mut config = enrich_config(&here, data.path(), &cp.kubeconfig);
    config.namespace_selector = Some(format!("{label}=on"));
    let run = Running::start(config);
    // As `agent` mode does with a selector: the first sync before the first cycle, so
    // containers of unselected namespaces are not recorded while their namespace is unknown.
    wait_health(&run.enricher, "initial sync", SYNC, synced).await;
    let stop = CancellationToken::new();
    let agent = start_agent(
        data.path(),
        &cgroups,
        &here,
        Some(run.enricher.clone()),
        SelfMetrics::new(),
        stop.clone(),
    );

    // A container whose pod the API does not know yet: recorded by short id first.
    let pod_c = create_pod(
        &client,
        &selected,
        "worker-0",
        &here,
        &[("tier", "back")],
        &["work"],
    )
    .await;
    add_container(&cgroups, &uid(&pod_c), &c);
    eventually("the new container is recorded", SYNC, || {
        read_index(data.path()).filter(|i| i.containers.contains_key(&c[..12]))
    })
    .await;
    set_statuses(&client, &selected, "worker-0", vec![running("work", &c, 0)]).await;

    let index = wait_named("pod names in index.json", data.path(), &[&a, &c]).await;
    let api = &index.containers[&a[..12]];
    assert_eq!(api.pod_name.as_deref(), Some("api-0"));
    assert_eq!(api.namespace.as_deref(), Some(selected.as_str()));
    assert_eq!(api.container_name.as_deref(), Some("api"));
    assert_eq!(api.pod_uid.as_deref(), pod_a.metadata.uid.as_deref());
    let labels = api.labels.as_ref().expect("labels");
    assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
    // The spec's requests, for the viewer to draw beside usage (cgroups hold only limits).
    let requests = api.requests.expect("requests recorded");
    assert_eq!(
        (requests.cpu_millicores, requests.memory_bytes),
        (Some(250), Some(64 << 20))
    );
    let worker = &index.containers[&c[..12]];
    assert_eq!(
        (worker.pod_name.as_deref(), worker.container_name.as_deref()),
        (Some("worker-0"), Some("work"))
    );
    assert!(
        !index.containers.contains_key(&b[..12]),
        "a pod of an unselected namespace is never recorded: {:?}",
        index.containers.keys()
    );
    assert_eq!(run.enricher.namespace_selected(&unselected), Some(false));

    stop.cancel();
    agent.task.await.unwrap().unwrap();
    run.stop().await;
}

#[tokio::test]
async fn oom_kill_and_crash_loop_are_recorded_once_each() {
    let cp = support::control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "enrich-events").await;
    let here = node("events");
    let (c0, c1, l0, barrier) = (new_id(), new_id(), new_id(), new_id());
    create_pod(&client, &ns, "shop-0", &here, &[], &["app", "looper"]).await;
    let data = tempfile::tempdir().unwrap();
    let run = Running::start(enrich_config(&here, data.path(), &cp.kubeconfig));
    wait_health(&run.enricher, "initial sync", SYNC, synced).await;

    let oom = |id: &str| {
        json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
        "containerID": format!("containerd://{id}"), "finishedAt": "2026-01-02T03:04:10Z", "startedAt": "2026-01-02T03:04:00Z"}})
    };
    let error = |id: &str| {
        json!({"terminated": {"exitCode": 1, "reason": "Error",
        "containerID": format!("containerd://{id}"), "finishedAt": "2026-01-02T03:04:20Z", "startedAt": "2026-01-02T03:04:15Z"}})
    };
    let crash_loop = |restarts: i32, message: &str, last: &str| {
        json!({
            "name": "looper", "image": "registry.example/looper:1", "imageID": "", "ready": false,
            "restartCount": restarts, "containerID": format!("containerd://{last}"),
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
            "lastState": error(last),
        })
    };
    // The kubelet's sequence: killed, restarted (the kill now in lastState), and
    // further updates of unrelated fields; the looper backs off several times.
    let updates = vec![
        vec![
            json!({"name": "app", "image": "registry.example/app:1", "imageID": "", "ready": false,
                   "restartCount": 0, "containerID": format!("containerd://{c0}"), "state": oom(&c0)}),
            crash_loop(3, "back-off 40s restarting failed container", &l0),
        ],
        vec![
            json!({"name": "app", "image": "registry.example/app:1", "imageID": "", "ready": true,
                   "restartCount": 1, "containerID": format!("containerd://{c1}"),
                   "state": {"running": {"startedAt": "2026-01-02T03:04:12Z"}}, "lastState": oom(&c0)}),
            crash_loop(3, "back-off 80s restarting failed container", &l0),
        ],
        vec![
            json!({"name": "app", "image": "registry.example/app:1", "imageID": "", "ready": false,
                   "restartCount": 1, "containerID": format!("containerd://{c1}"),
                   "state": {"running": {"startedAt": "2026-01-02T03:04:12Z"}}, "lastState": oom(&c0)}),
            crash_loop(3, "back-off 160s restarting failed container", &l0),
        ],
    ];
    for statuses in &updates {
        set_statuses(&client, &ns, "shop-0", statuses.clone()).await;
    }
    // A last update naming a new container id: once it is looked up, every earlier update was seen.
    let mut last = updates[2].clone();
    last[1] = crash_loop(3, "back-off 300s restarting failed container", &l0);
    last[1]["containerID"] = json!(format!("containerd://{barrier}"));
    set_statuses(&client, &ns, "shop-0", last).await;
    eventually("every update observed", SYNC, || {
        run.enricher.lookup(&barrier)
    })
    .await;

    let recorded = recorded_events(data.path());
    let count = |container: &str, kind: EventKind| {
        recorded
            .iter()
            .filter(|e| e.container == container && e.kind == kind)
            .count()
    };
    assert_eq!(count("app", EventKind::OomKilled), 1, "{recorded:#?}");
    assert_eq!(
        count("looper", EventKind::CrashLoopBackOff),
        1,
        "{recorded:#?}"
    );
    assert_eq!(count("looper", EventKind::Terminated), 1, "{recorded:#?}");
    assert_eq!(count("app", EventKind::Restart), 1, "{recorded:#?}");
    let kill = recorded
        .iter()
        .find(|e| e.kind == EventKind::OomKilled)
        .unwrap();
    assert_eq!(
        (kill.exit_code, kill.reason.as_deref()),
        (Some(137), Some("OOMKilled"))
    );
    assert_eq!(
        (kill.pod.as_str(), kill.namespace.as_str()),
        ("shop-0", ns.as_str())
    );
    assert_eq!(kill.container_id.as_deref(), Some(&c0[..12]));
    assert_eq!(kill.time.to_rfc3339(), "2026-01-02T03:04:10+00:00");
    run.stop().await;

    // A restarted agent reads the files back and records nothing twice.
    let before = recorded.len();
    let again = Running::start(enrich_config(&here, data.path(), &cp.kubeconfig));
    wait_health(&again.enricher, "second sync", SYNC, synced).await;
    assert_eq!(
        recorded_events(data.path()).len(),
        before,
        "nothing recorded twice after a restart"
    );
    again.stop().await;
}

#[tokio::test]
async fn events_of_unselected_namespaces_are_not_recorded() {
    let cp = support::control_plane();
    let client = cp.client().await;
    let on = cp.namespace(&client, "enrich-sel-on").await;
    let off = cp.namespace(&client, "enrich-sel-off").await;
    let label = format!("fgm.dev/events-test-{}", std::process::id());
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .patch(
            &on,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {&label: "yes"}}})),
        )
        .await
        .unwrap();
    let here = node("selector");
    let data = tempfile::tempdir().unwrap();
    let mut config = enrich_config(&here, data.path(), &cp.kubeconfig);
    config.namespace_selector = Some(format!("{label}=yes"));
    let run = Running::start(config);
    wait_health(&run.enricher, "initial sync", SYNC, synced).await;
    assert_eq!(run.enricher.namespace_selected(&on), Some(true));
    assert_eq!(run.enricher.namespace_selected(&off), Some(false));

    let oom = |id: &str| {
        vec![
            json!({"name": "app", "image": "i", "imageID": "", "ready": false,
        "restartCount": 0, "containerID": format!("containerd://{id}"),
        "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "containerID": format!("containerd://{id}")}}}),
        ]
    };
    let (id_on, id_off) = (new_id(), new_id());
    for (ns, id) in [(&off, &id_off), (&on, &id_on)] {
        create_pod(&client, ns, "victim", &here, &[], &["app"]).await;
        set_statuses(&client, ns, "victim", oom(id)).await;
    }
    eventually("both pods seen", SYNC, || {
        (run.enricher.lookup(&id_on).is_some() && run.enricher.lookup(&id_off).is_some())
            .then_some(())
    })
    .await;
    let recorded = recorded_events(data.path());
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0].namespace, on);

    // Labelling a namespace selects it while running.
    namespaces
        .patch(
            &off,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {&label: "yes"}}})),
        )
        .await
        .unwrap();
    eventually("namespace selected after labelling", SYNC, || {
        (run.enricher.namespace_selected(&off) == Some(true)).then_some(())
    })
    .await;
    run.stop().await;
}
