//! Shared by the operator's integration tests: the operator's own ServiceAccount
//! with exactly the RBAC of `operator_cluster_rules()` / `operator_namespace_rules()`
//! (the least-privilege set the packaged manifests use), an operator running
//! with that identity, and a poll helper.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fine_grained_monitor::crd::NodeMonitor;
use fine_grained_monitor::operator::builders::daemonset::DEFAULT_IMAGE;
use fine_grained_monitor::operator::builders::rbac::{
    OPERATOR_NAME, agent_cluster_roles, operator_cluster_rules, operator_namespace_rules,
};
use fine_grained_monitor::operator::{self, OperatorArgs};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::support::{ControlPlane, control_plane};

/// Namespace of the operator's ServiceAccount and Lease.
pub const OPERATOR_NS: &str = "fgm-operator";
/// Allowed data root of the tests' NodeMonitors (besides the default one).
pub const TEST_DATA_ROOT: &str = "/var/lib/fgm-test";

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs the CRD and the operator's ServiceAccount + RBAC; returns a client
/// authenticated as that ServiceAccount.
pub async fn operator_client(cp: &ControlPlane) -> Client {
    let admin = cp.client().await;
    cp.install_nodemonitor_crd(&admin).await;
    let apply = PatchParams::apply("fgm-test").force();
    let json = |v: serde_json::Value| v;
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json(serde_json::json!({"metadata": {"name": OPERATOR_NS}})))
            .unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .patch(OPERATOR_NS, &apply, &Patch::Apply(&ns))
        .await
        .expect("operator namespace");
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": OPERATOR_NAME, "namespace": OPERATOR_NS}
    }))
    .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), OPERATOR_NS);
    sas.patch(OPERATOR_NAME, &apply, &Patch::Apply(&sa))
        .await
        .expect("operator SA");
    let subject = serde_json::json!([{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": OPERATOR_NS}]);
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": OPERATOR_NAME},
        "rules": operator_cluster_rules(),
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .patch(OPERATOR_NAME, &apply, &Patch::Apply(&role))
        .await
        .expect("operator ClusterRole");
    // The fixed roles of the agents, which the chart installs and the operator binds.
    for agent_role in agent_cluster_roles() {
        let name = agent_role.metadata.name.clone().unwrap_or_default();
        let value = serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": agent_role.rules,
        });
        Api::<ClusterRole>::all(admin.clone())
            .patch(&name, &apply, &Patch::Apply(&value))
            .await
            .expect("agent ClusterRole");
    }
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": OPERATOR_NAME},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_NAME},
        "subjects": subject,
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .patch(OPERATOR_NAME, &apply, &Patch::Apply(&binding))
        .await
        .expect("operator ClusterRoleBinding");
    let lease_role: Role = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": OPERATOR_NAME, "namespace": OPERATOR_NS},
        "rules": operator_namespace_rules(),
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), OPERATOR_NS)
        .patch(OPERATOR_NAME, &apply, &Patch::Apply(&lease_role))
        .await
        .expect("operator Role");
    let lease_binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": OPERATOR_NAME, "namespace": OPERATOR_NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR_NAME},
        "subjects": subject,
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), OPERATOR_NS)
        .patch(OPERATOR_NAME, &apply, &Patch::Apply(&lease_binding))
        .await
        .expect("operator RoleBinding");
    let request = serde_json::from_value(serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}
    }))
    .unwrap();
    let token = sas
        .create_token_request(OPERATOR_NAME, &PostParams::default(), &request)
        .await
        .expect("token of the operator ServiceAccount")
        .status
        .expect("token status")
        .token
        .expect("token");
    cp.client_with_token(&token).await
}

/// Operator flags for a test: a free local metrics port, optional leader election.
pub fn args(leader_election: bool) -> (OperatorArgs, SocketAddr) {
    let port = crate::support::process::free_port().expect("free port");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let webhook_port = crate::support::process::free_port().expect("free port");
    let args = OperatorArgs {
        metrics_addr: addr,
        leader_election,
        lease_namespace: Some(OPERATOR_NS.into()),
        lease_duration: "3s".parse().unwrap(),
        default_image: DEFAULT_IMAGE.into(),
        // The default root, plus one for the tests' own NodeMonitors (so they never
        // overlap a NodeMonitor at the default path) and a registry for image tests.
        allowed_data_roots: vec![
            fine_grained_monitor::crd::DEFAULT_DATA_HOST_PATH
                .parse()
                .unwrap(),
            TEST_DATA_ROOT.parse().unwrap(),
        ],
        allowed_image_repositories: vec!["registry.local/*".parse().unwrap()],
        // The apiserver runs on this machine: it calls the webhook on loopback.
        webhook_addr: ([127, 0, 0, 1], webhook_port).into(),
        webhook_service: fine_grained_monitor::crd::DEFAULT_WEBHOOK_SERVICE.1.into(),
        webhook_url: Some(format!("https://127.0.0.1:{webhook_port}/convert")),
        manage_crd: true,
        http: Default::default(),
    };
    (args, addr)
}

/// Starts an operator on its own thread and runtime (so it outlives any one
/// test's runtime); cancel the token to stop it. Its result is logged.
pub fn spawn_operator(
    client: Client,
    args: OperatorArgs,
    stop: CancellationToken,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("operator runtime");
        if let Err(e) = rt.block_on(operator::run_with_client(client, args, stop)) {
            eprintln!("operator stopped with an error: {e:#}");
        }
    })
}

/// GET `path` from the operator's HTTP endpoint: the raw response, or None if
/// it does not answer (a short local call, so blocking is fine).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of an unlabelled metric line `name value`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Starts this test binary's one operator (as its ServiceAccount, with
/// [`args`]) once, waits until it answers /readyz, and returns an admin
/// client and a fresh namespace `<prefix>-<n>`.
pub async fn setup(prefix: &str) -> (Client, String) {
    static OPERATOR: OnceLock<SocketAddr> = OnceLock::new();
    let cp = control_plane();
    let addr = *OPERATOR.get_or_init(|| {
        let (args, addr) = args(false);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("operator runtime");
            rt.block_on(async move {
                let client = operator_client(cp).await;
                if let Err(e) =
                    operator::run_with_client(client, args, CancellationToken::new()).await
                {
                    panic!("operator failed: {e:#}");
                }
            });
        });
        addr
    });
    let admin = cp.client().await;
    wait_for(
        "the operator's /readyz",
        Duration::from_secs(60),
        || async {
            let out = http_get(addr, "/readyz")?;
            out.starts_with("HTTP/1.1 200").then_some(())
        },
    )
    .await;
    let ns = cp.namespace(&admin, prefix).await;
    (admin, ns)
}

/// A NodeMonitor object named `name` with `spec` (raw JSON, defaults by the apiserver).
pub fn monitor(name: &str, spec: serde_json::Value) -> NodeMonitor {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fgm.dev/v1beta1",
        "kind": "NodeMonitor",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("NodeMonitor object")
}

/// Creates a NodeMonitor with a host path of its own that selects no node.
pub async fn create_on_no_node(api: &Api<NodeMonitor>, ns: &str, name: &str) {
    let spec = serde_json::json!({"dataHostPath": format!("{TEST_DATA_ROOT}/{ns}"), "nodeSelector": {"fgm-test": "none"}});
    api.create(&PostParams::default(), &monitor(name, spec))
        .await
        .expect("create");
}

/// The object, or None when it does not exist (any other error fails the test).
pub async fn get<K>(api: &Api<K>, name: &str) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.expect("get")
}

/// Name of a NodeMonitor's pod-read ClusterRoleBinding.
pub fn cluster_name(ns: &str, name: &str) -> String {
    format!("fine-grained-monitor:{ns}:{name}")
}

/// Status and reason of a condition.
pub fn condition(nm: &NodeMonitor, type_: &str) -> Option<(String, String)> {
    nm.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Message of a condition.
pub fn condition_message(nm: &NodeMonitor, type_: &str) -> String {
    nm.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Events about the object `name` in `ns`.
pub async fn events_for(client: &Client, ns: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}
