//! Two operator replicas with leader election against a real control plane:
//! only the Lease holder reconciles; when it stops, the other takes over.

// Test helpers outside #[test] functions unwrap what the test itself built.
#![allow(clippy::unwrap_used)]

mod operator_common;
mod support;

use std::time::Duration;

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use operator_common::{
    OPERATOR_NS, args, http_get, metric, operator_client, spawn_operator, wait_for,
};
use support::control_plane;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn leader(addr: std::net::SocketAddr) -> Option<f64> {
    metric(&http_get(addr, "/metrics")?, "fgm_operator_leader")
}

fn reconciles(addr: std::net::SocketAddr) -> f64 {
    http_get(addr, "/metrics")
        .and_then(|m| metric(&m, "fgm_operator_reconciles_total"))
        .unwrap_or(-1.0)
}

fn monitor(name: &str) -> NodeMonitor {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": {"name": name},
        "spec": {"dataHostPath": format!("/var/lib/fgm-test/{name}"), "nodeSelector": {"fgm-test": "none"}},
    }))
    .expect("NodeMonitor object")
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over() {
    let cp = control_plane();
    let client = operator_client(cp).await;
    let admin = cp.client().await;
    let ns = cp.namespace(&admin, "leader").await;

    let (args_a, addr_a) = args(true);
    let stop_a = CancellationToken::new();
    let a = spawn_operator(client.clone(), args_a, stop_a.clone());
    wait_for("replica A to lead", WAIT, || async {
        (leader(addr_a) == Some(1.0)).then_some(())
    })
    .await;

    let (args_b, addr_b) = args(true);
    let stop_b = CancellationToken::new();
    let b = spawn_operator(client.clone(), args_b, stop_b.clone());
    wait_for("replica B to be ready as standby", WAIT, || async {
        http_get(addr_b, "/readyz").filter(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
    assert_eq!(
        leader(addr_b),
        Some(0.0),
        "B must not lead while A holds the Lease"
    );

    let nms: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let dss: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    nms.create(&PostParams::default(), &monitor("one"))
        .await
        .expect("create one");
    wait_for("A to create the DaemonSet", WAIT, || async {
        dss.get_opt("one").await.ok().flatten()
    })
    .await;
    assert!(reconciles(addr_a) >= 1.0);
    assert_eq!(reconciles(addr_b), 0.0, "the standby reconciled");

    let leases: Api<Lease> = Api::namespaced(admin.clone(), OPERATOR_NS);
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity);
    let first_holder = holder(
        leases
            .get("fine-grained-monitor-operator")
            .await
            .expect("Lease"),
    );

    // A stops (releasing the Lease): B takes over and reconciles new work.
    stop_a.cancel();
    tokio::task::spawn_blocking(move || a.join())
        .await
        .expect("join")
        .expect("A thread");
    wait_for("B to lead", WAIT, || async {
        (leader(addr_b) == Some(1.0)).then_some(())
    })
    .await;
    nms.create(&PostParams::default(), &monitor("two"))
        .await
        .expect("create two");
    wait_for("B to create the second DaemonSet", WAIT, || async {
        dss.get_opt("two").await.ok().flatten()
    })
    .await;
    assert!(reconciles(addr_b) >= 1.0);
    let second_holder = holder(
        leases
            .get("fine-grained-monitor-operator")
            .await
            .expect("Lease"),
    );
    assert!(
        second_holder.is_some() && second_holder != first_holder,
        "{first_holder:?} → {second_holder:?}"
    );

    stop_b.cancel();
    tokio::task::spawn_blocking(move || b.join())
        .await
        .expect("join")
        .expect("B thread");
}
