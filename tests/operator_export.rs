//! The operator with `spec.export` against the real control plane and a real
//! agent exporting to a real S3 server (SeaweedFS): the DaemonSet takes the
//! keys from the named Secret, the compaction CronJob is applied, and the
//! agents' progress reaches `status.export` and the `ExportHealthy`
//! condition: wrong keys give `AccessDenied` naming the node, fixed keys
//! give `Uploading` with the last upload. The agent runs on this machine
//! (no kubelet here); its Pod object carries 127.0.0.1 as pod IP, which is
//! where the operator asks for `GET /export`, as it would a pod's IP.

// Test helpers outside #[test] functions unwrap what the test itself built.
#![allow(clippy::unwrap_used)]

mod operator_common;
mod s3_support;
mod support;

use std::time::Duration;

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use operator_common::{args, operator_client, wait_for};
use s3_support::{S3Server, start_agent_on, static_env};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// Any change makes the operator reconcile (and poll the agents) now rather
/// than at its next resync.
async fn poke(api: &Api<NodeMonitor>, name: &str, n: u32) {
    let patch =
        serde_json::json!({"metadata": {"annotations": {"fgm.dev/test-poke": n.to_string()}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn export_condition(nm: &NodeMonitor) -> Option<(String, String, String)> {
    nm.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "ExportHealthy")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// A Running Pod object of the NodeMonitor's agent, at 127.0.0.1.
async fn agent_pod(admin: &Client, ns: &str, nm: &str) {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": format!("{nm}-agent"), "labels": {
            "app.kubernetes.io/name": "fine-grained-monitor",
            "app.kubernetes.io/instance": nm } },
        "spec": { "nodeName": "node-op", "containers": [{ "name": "agent", "image": "x" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = serde_json::json!({ "status": { "phase": "Running",
        "podIP": "127.0.0.1", "podIPs": [{ "ip": "127.0.0.1" }] } });
    pods.patch_status(
        &format!("{nm}-agent"),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_progress_and_wrong_keys_reach_the_node_monitor_status() {
    let cp = support::control_plane();
    let admin = cp.client().await;
    let client = operator_client(cp).await;
    let (operator_args, _) = args(false);
    let stop = CancellationToken::new();
    cp.install_nodemonitor_crd(&admin).await;
    let _operator = operator_common::spawn_operator(client, operator_args, stop.clone());

    let server = tokio::task::spawn_blocking(|| S3Server::start("operator-export", None))
        .await
        .unwrap();
    server.bucket("opexport").await;
    let data = tempfile::tempdir().unwrap();
    let port = support::process::free_port().unwrap();
    let bad_keys = vec![
        ("AWS_ACCESS_KEY_ID", s3_support::ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", "wrong".to_string()),
    ];
    let agent = start_agent_on(
        port,
        &server,
        data.path(),
        "node-op",
        "opexport",
        &bad_keys,
        &[],
    );
    tokio::task::block_in_place(|| agent.wait_status("failing", WAIT, |s| s["failing"] == true));

    let ns = cp.namespace(&admin, "export").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let nm: NodeMonitor = serde_json::from_value(serde_json::json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": { "name": "exp" },
        "spec": {
            "dataHostPath": format!("/var/lib/fine-grained-monitor/{ns}"),
            "nodeSelector": { "fgm.dev/none": "true" },
            "metrics": { "port": port },
            "export": {
                "endpoint": server.endpoint, "bucket": "opexport", "prefix": "fgm/test",
                "pathStyle": true, "credentials": { "secretName": "s3-keys" },
                "compaction": { "schedule": "*/20 * * * *" }
            }
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &nm).await.unwrap();
    agent_pod(&admin, &ns, "exp").await;

    // Children: the keys come from the Secret by reference; the CronJob exists.
    let ds = wait_for("the DaemonSet", WAIT, || async {
        Api::<DaemonSet>::namespaced(admin.clone(), &ns)
            .get_opt("exp")
            .await
            .ok()
            .flatten()
    })
    .await;
    let env = ds.spec.template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    assert!(env.iter().any(|e| {
        e.name == "AWS_SECRET_ACCESS_KEY"
            && e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .map(|r| r.name.as_str())
                == Some("s3-keys")
    }));
    let cj = wait_for("the compaction CronJob", WAIT, || async {
        Api::<CronJob>::namespaced(admin.clone(), &ns)
            .get_opt("exp-compact")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(cj.spec.schedule, "*/20 * * * *");

    // Wrong keys: a clear condition naming the node and the reason.
    poke(&api, "exp", 1).await;
    let (_, reason, message) = wait_for("ExportHealthy=False", WAIT, || async {
        let nm = api.get("exp").await.ok()?;
        export_condition(&nm).filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(reason, "AccessDenied", "{message}");
    assert!(
        message.contains("node-op") && message.contains("cannot upload"),
        "{message}"
    );
    let summary = api
        .get("exp")
        .await
        .unwrap()
        .status
        .unwrap()
        .export
        .unwrap();
    assert_eq!((summary.nodes_reporting, summary.nodes_failing), (1, 1));
    assert_eq!(summary.destination, "s3://opexport/fgm/test");
    assert!(summary.backlog_files > 0, "{summary:?}");

    // Keys fixed (the pod restarts with the corrected Secret): uploading again.
    tokio::task::block_in_place(|| agent.stop());
    let agent = start_agent_on(
        port,
        &server,
        data.path(),
        "node-op",
        "opexport",
        &static_env(),
        &[],
    );
    tokio::task::block_in_place(|| {
        agent.wait_status("backlog drained", WAIT, |s| {
            s["backlogFiles"] == 0 && s["failing"] == false
        })
    });
    poke(&api, "exp", 2).await;
    let (_, reason, _) = wait_for("ExportHealthy=True with a last upload", WAIT, || async {
        let nm = api.get("exp").await.ok()?;
        let uploaded = nm.status.as_ref()?.export.as_ref()?.last_upload.is_some();
        export_condition(&nm).filter(|c| c.0 == "True" && uploaded)
    })
    .await;
    assert_eq!(reason, "Uploading");
    let summary = api
        .get("exp")
        .await
        .unwrap()
        .status
        .unwrap()
        .export
        .unwrap();
    assert_eq!(summary.nodes_failing, 0);

    // Export switched off: no CronJob, no export status.
    let off = serde_json::json!({"spec": {"export": null}});
    api.patch("exp", &PatchParams::default(), &Patch::Merge(&off))
        .await
        .unwrap();
    wait_for(
        "the CronJob removed and the export status gone",
        WAIT,
        || async {
            let gone = Api::<CronJob>::namespaced(admin.clone(), &ns)
                .get_opt("exp-compact")
                .await
                .ok()?
                .is_none();
            let nm = api.get("exp").await.ok()?;
            let cleared = nm.status.as_ref().is_some_and(|s| s.export.is_none())
                && export_condition(&nm).is_none();
            (gone && cleared).then_some(())
        },
    )
    .await;
    tokio::task::block_in_place(|| agent.stop());
    stop.cancel();
}
