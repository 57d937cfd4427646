//! `kubectl fgm` (issue #26) against the test control plane: no kubelet, so nothing here
//! port-forwards to a real viewer (the real-node tests do). What works without one is tested:
//! `nodes` lists covered and uncovered nodes (and degrades without the right to list nodes),
//! `open` finds the monitor pod of a pod's node or names the NodeMonitors that do not select
//! it, and a user with less than the shipped role gets the API server's refusal in words.

mod support;

use std::path::PathBuf;
use std::process::Output;

use fine_grained_monitor::plugin::{self, error::USER_ROLE, workload::Kind};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use support::{control_plane, pki, workloads::create_fake_node};

use support::view::BIN;

/// Runs `kubectl-fgm` with `kubeconfig` and `args`.
fn plugin(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    support::view::run(kubeconfig, args)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A world: nodes `<p>-covered` (pool=<p>) and `<p>-bare`, a NodeMonitor selecting the pool in
/// a monitoring namespace with its pod on the covered node (the operator's labels), an app
/// namespace with a pod on each node.
struct World {
    admin: Client,
    prefix: String,
    monitoring: String,
    apps: String,
}

async fn world(prefix: &str) -> World {
    let cp = control_plane();
    let admin = cp.client().await;
    cp.install_nodemonitor_crd(&admin).await;
    let covered = format!("{prefix}-covered");
    let bare = format!("{prefix}-bare");
    create_fake_node(&admin, &covered, &[("pool", prefix)]).await;
    create_fake_node(&admin, &bare, &[]).await;
    let monitoring = cp.namespace(&admin, &format!("{prefix}-mon")).await;
    let apps = cp.namespace(&admin, &format!("{prefix}-app")).await;
    let nm: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": { "name": "nm", "namespace": monitoring },
        "spec": { "nodeSelector": { "pool": prefix }, "viewer": { "port": 8051 } }
    }))
    .expect("NodeMonitor");
    Api::<DynamicObject>::namespaced_with(
        admin.clone(),
        &monitoring,
        &plugin::cluster::nodemonitor_resource(),
    )
    .create(&PostParams::default(), &nm)
    .await
    .expect("create NodeMonitor");
    let monitor_pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "nm-abcde", "namespace": monitoring, "labels": {
            "app.kubernetes.io/name": "fine-grained-monitor",
            "app.kubernetes.io/instance": "nm",
            "app.kubernetes.io/component": "node-monitor",
            "app.kubernetes.io/managed-by": "fine-grained-monitor-operator" } },
        "spec": { "nodeName": covered, "containers": [
            { "name": "agent", "image": "ghcr.io/fine-grained-monitor/fine-grained-monitor:0.1.0" },
            { "name": "viewer", "image": "ghcr.io/fine-grained-monitor/fine-grained-monitor:0.1.0",
              "ports": [{ "containerPort": 8051, "name": "viewer" }] } ] }
    }))
    .expect("monitor pod");
    Api::<Pod>::namespaced(admin.clone(), &monitoring)
        .create(&PostParams::default(), &monitor_pod)
        .await
        .expect("create monitor pod");
    for (name, node) in [("web-0", &covered), ("batch-0", &bare)] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": apps, "labels": { "app": "shop" } },
            "spec": { "nodeName": node, "containers": [{ "name": "app", "image": "app:1" }] }
        }))
        .expect("app pod");
        let api = Api::<Pod>::namespaced(admin.clone(), &apps);
        api.create(&PostParams::default(), &pod)
            .await
            .expect("create app pod");
        // What a kubelet would report: the running container's id.
        let status = json!({ "status": { "phase": "Running", "containerStatuses": [{
            "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 0,
            "containerID": "containerd://0123456789abcdef0123456789abcdef" }] } });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("pod status");
    }
    // A Deployment selecting both pods; no replicas, so a controller-manager (if one runs)
    // makes none of its own.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "shop", "namespace": apps },
        "spec": { "replicas": 0, "selector": { "matchLabels": { "app": "shop" } },
            "template": { "metadata": { "labels": { "app": "shop" } },
                "spec": { "containers": [{ "name": "app", "image": "app:1" }] } } }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(admin.clone(), &apps)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    World {
        admin,
        prefix: prefix.to_string(),
        monitoring,
        apps,
    }
}

fn node<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["node"] == name))
        .unwrap_or_else(|| panic!("node {name} not listed: {report:#}"))
}

#[tokio::test]
async fn nodes_lists_covered_and_uncovered_nodes() {
    let w = world("fgm-nodes").await;
    let kubeconfig = &control_plane().kubeconfig;
    let out = plugin(kubeconfig, &["nodes", "-o", "json", "--node-timeout", "2s"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["all_nodes"], true);
    let covered = node(&report, &format!("{}-covered", w.prefix));
    assert_eq!(covered["covered"], true, "{covered:#}");
    assert_eq!(covered["pod"], format!("{}/nm-abcde", w.monitoring));
    assert_eq!(covered["monitors"][0], format!("{}/nm", w.monitoring));
    assert_eq!(covered["version"], "0.1.0");
    // No kubelet behind the fake node: its viewer cannot answer, and says so.
    assert!(covered["not_answering"].is_string(), "{covered:#}");
    let bare = node(&report, &format!("{}-bare", w.prefix));
    assert_eq!(bare["covered"], false);
    assert_eq!(bare["pod"], Value::Null);
    assert_eq!(bare["selected_by"], json!([]));

    let out = plugin(kubeconfig, &["nodes", "--node-timeout", "2s"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("NODE"), "{stdout}");
    let line = |name: String| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"))
            .to_string()
    };
    let covered = line(format!("{}-covered", w.prefix));
    assert!(covered.contains(" yes "), "{covered}");
    assert!(covered.contains("nm-abcde"), "{covered}");
    assert!(covered.contains("not answering"), "{covered}");
    let bare = line(format!("{}-bare", w.prefix));
    assert!(bare.contains(" no "), "{bare}");
}

#[tokio::test]
async fn open_finds_the_monitor_pod_or_names_who_does_not_select_the_node() {
    let w = world("fgm-open").await;
    let plan = plugin::open::prepare(&w.admin, "web-0", &w.apps, None, None, None)
        .await
        .expect("a plan for the covered pod");
    assert_eq!(plan.node, format!("{}-covered", w.prefix));
    assert_eq!(plan.monitor, format!("{}/nm", w.monitoring));
    assert_eq!(plan.target.pod, "nm-abcde");
    assert_eq!(plan.target.namespace, w.monitoring);
    assert_eq!(plan.target.port, 8051);
    assert_eq!(plan.container_ids, ["0123456789ab"]);
    assert_eq!(
        plan.url(4242),
        "http://127.0.0.1:4242/#v=charts&c=0123456789ab&r=1h"
    );

    let kubeconfig = &control_plane().kubeconfig;
    let out = plugin(
        kubeconfig,
        &["open", "batch-0", "-n", &w.apps, "--no-browser"],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    let bare = format!("{}-bare", w.prefix);
    assert!(
        stderr.contains(&format!("node {bare} is not monitored")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}/nm does not select it (nodeSelector pool={})",
            w.monitoring, w.prefix
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = plugin(kubeconfig, &["open", "nope", "-n", &w.apps, "--no-browser"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!("pod {}/nope not found", w.apps)),
        "{stderr}"
    );
}

#[tokio::test]
async fn open_deployment_selects_its_pods_on_covered_nodes_and_view_lists_the_silent_ones() {
    let w = world("fgm-work").await;
    let covered = format!("{}-covered", w.prefix);
    let plan = plugin::workload::prepare(&w.admin, Kind::Deployment, "shop", &w.apps, None)
        .await
        .expect("a plan for the deployment");
    assert_eq!(plan.keys, [format!("{covered}/0123456789ab")]);
    assert_eq!(plan.nodes, std::slice::from_ref(&covered));
    let said = plan.left_out.join("\n");
    assert!(
        said.contains(&format!(
            "batch-0: node {}-bare has no monitor pod",
            w.prefix
        )),
        "{said}"
    );

    let kubeconfig = &control_plane().kubeconfig;
    let out = plugin(
        kubeconfig,
        &["open", "deployment/nope", "-n", &w.apps, "--no-browser"],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("deployment {}/nope not found", w.apps)),
        "{stderr}"
    );

    // The cluster view over the covered node: no kubelet behind it, so it is listed as not
    // answering, in words, within the timeout; a bad request is a 400 naming what is wrong.
    // Its stdout closed (as `kubectl fgm view | head -1` does): it keeps serving (a print to a
    // closed pipe once brought it down).
    let view = support::view::start(
        BIN,
        kubeconfig,
        &["--node-timeout", "2s", "--nodes", &covered],
        false,
    );
    let get = |path: &str| view.get(path);
    let began = std::time::Instant::now();
    let (code, status) = get("/api/status");
    let waited = began.elapsed();
    let (bad_code, bad) = get("/api/timeseries?containers=abc&metric=cpu_usage_usec");
    drop(view);
    assert_eq!(bad_code, 400, "{bad:#}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("names no node"),
        "{bad:#}"
    );
    assert_eq!(code, 200, "{status:#}");
    assert_eq!(status["state"], "error", "{status:#}");
    assert_eq!(
        status["not_answering"][0]["node"],
        covered.as_str(),
        "{status:#}"
    );
    assert_eq!(
        status["not_answering"][0]["via"],
        format!("{}/nm-abcde", w.monitoring)
    );
    assert!(
        waited < std::time::Duration::from_secs(10),
        "not answering within the 2 s timeout (took {waited:?})"
    );
}

/// A ServiceAccount of `ns` bound (cluster-wide) to a ClusterRole with `rules`, and a kubeconfig
/// with its token.
async fn user(w: &World, name: &str, rules: Value) -> PathBuf {
    let cp = control_plane();
    let role_name = format!("{}-{}-{name}", w.prefix, w.monitoring);
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": { "name": role_name }, "rules": rules
    }))
    .expect("role");
    Api::<ClusterRole>::all(w.admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("create role");
    let sa: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": name } })).expect("sa");
    let accounts = Api::<ServiceAccount>::namespaced(w.admin.clone(), &w.monitoring);
    accounts
        .create(&PostParams::default(), &sa)
        .await
        .expect("create sa");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": role_name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name },
        "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": w.monitoring }]
    }))
    .expect("binding");
    Api::<ClusterRoleBinding>::all(w.admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("create binding");
    let request = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": { "audiences": [], "expirationSeconds": 3600 }
    }))
    .expect("token request");
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("token")
        .status
        .expect("token status")
        .token
        .expect("a token");
    let path = cp.dir.join(format!("{role_name}.kubeconfig"));
    std::fs::write(
        &path,
        pki::kubeconfig(&cp.server, &cp.pki, &format!("    token: {token}")),
    )
    .expect("write kubeconfig");
    path
}

/// The shipped role's rules (config/rbac/user_role.yaml), minus the resources named.
fn shipped_rules_without(resources: &[&str]) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rbac/user_role.yaml");
    let role: ClusterRole =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("read user role"))
            .expect("user role YAML");
    assert_eq!(role.metadata.name.as_deref(), Some(USER_ROLE));
    let rules: Vec<Value> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            !r.resources
                .iter()
                .flatten()
                .any(|res| resources.contains(&res.as_str()))
        })
        .map(|r| serde_json::to_value(r).expect("rule"))
        .collect();
    Value::Array(rules)
}

#[tokio::test]
async fn the_shipped_role_suffices_and_less_is_refused_in_words() {
    let w = world("fgm-rbac").await;
    let full = user(&w, "full", shipped_rules_without(&[])).await;
    let out = plugin(&full, &["nodes", "-o", "json", "--node-timeout", "2s"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["all_nodes"], true);
    assert_eq!(
        node(&report, &format!("{}-covered", w.prefix))["covered"],
        true
    );
    // The refusal of the port-forward would be a refusal, not "not answering" for another
    // reason: with the role, the API server lets the request through to the (missing) kubelet.
    let covered = node(&report, &format!("{}-covered", w.prefix));
    assert!(
        !covered["not_answering"]
            .as_str()
            .unwrap_or_default()
            .contains("forbidden"),
        "{covered:#}"
    );
    let out = plugin(&full, &["open", "batch-0", "-n", &w.apps, "--no-browser"]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("is not monitored"), "{stderr}");

    // Without nodes: the monitored nodes only, and a note saying so.
    let no_nodes = user(&w, "no-nodes", shipped_rules_without(&["nodes"])).await;
    let out = plugin(&no_nodes, &["nodes", "-o", "json", "--node-timeout", "2s"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["all_nodes"], false);
    assert!(
        report["note"]
            .as_str()
            .unwrap_or_default()
            .contains("may not list nodes")
    );
    node(&report, &format!("{}-covered", w.prefix));
    let listed: Vec<&str> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert!(
        !listed.contains(&format!("{}-bare", w.prefix).as_str()),
        "{listed:?}"
    );

    // Without NodeMonitors: the API server's refusal, naming the verb and resource.
    let no_monitors = user(&w, "no-monitors", shipped_rules_without(&["nodemonitors"])).await;
    for args in [
        vec!["nodes"],
        vec!["top"],
        vec!["open", "web-0", "-n", &w.apps, "--no-browser"],
    ] {
        let out = plugin(&no_monitors, &args);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("forbidden: you may not list nodemonitors.fgm.dev cluster-wide"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("cannot list resource \"nodemonitors\""),
            "{stderr}"
        );
        assert!(stderr.contains(USER_ROLE), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Error {"),
            "{stderr}"
        );
    }

    // Without the right to read deployments: `open deployment/…` says which right is missing.
    let no_apps = user(
        &w,
        "no-apps",
        shipped_rules_without(&["deployments", "jobs"]),
    )
    .await;
    let out = plugin(
        &no_apps,
        &["open", "deployment/shop", "-n", &w.apps, "--no-browser"],
    );
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!(
            "forbidden: you may not get deployments.apps in namespace {}",
            w.apps
        )),
        "{stderr}"
    );

    // Without pods: the pod to open cannot be read, and the message says which right.
    let no_pods = user(&w, "no-pods", shipped_rules_without(&["pods"])).await;
    let out = plugin(&no_pods, &["open", "web-0", "-n", &w.apps, "--no-browser"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!(
            "forbidden: you may not get pods in namespace {}",
            w.apps
        )),
        "{stderr}"
    );
}
