//! Proof that the test control plane is the real thing (issue #3): behaviour only a real
//! kube-apiserver (and controller-manager, scheduler, kwok) shows.

mod support;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::json;

use support::control_plane;

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid object JSON")
}

/// The API error code of `result`, panicking if it succeeded or failed otherwise.
fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A namespaced CRD `<plural>.envtest.fgm.dev` whose v1 schema is `schema`.
fn crd(plural: &str, kind: &str, schema: serde_json::Value) -> CustomResourceDefinition {
    from_json(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.envtest.fgm.dev") },
        "spec": {
            "group": "envtest.fgm.dev",
            "scope": "Namespaced",
            "names": { "plural": plural, "singular": kind.to_lowercase(), "kind": kind },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": schema },
                "subresources": { "status": {} },
            }],
        },
    }))
}

#[tokio::test]
async fn serves_the_pinned_kubernetes_version() {
    let cp = control_plane();
    let client = cp.client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.git_version, support::KUBERNETES_VERSION);

    let out = cp
        .kubectl()
        .args(["version", "--output=json"])
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl version: {out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kubectl JSON");
    assert_eq!(report["clientVersion"]["gitVersion"], "v1.37.2");
    assert_eq!(report["serverVersion"]["gitVersion"], "v1.37.2");
}

#[tokio::test]
async fn non_structural_schema_and_bad_cel_rule_are_rejected() {
    let client = control_plane().client().await;
    let crds = Api::<CustomResourceDefinition>::all(client);

    // `spec` has properties but no type: not structural, so apiextensions refuses it.
    let non_structural = crd(
        "loosethings",
        "LooseThing",
        json!({ "type": "object", "properties": {
            "spec": { "properties": { "size": { "type": "integer" } } } } }),
    );
    let status = api_error(crds.create(&PostParams::default(), &non_structural).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("properties[spec].type"),
        "{}",
        status.message
    );

    // A CEL rule that does not compile is refused at CRD creation, not at first use.
    let bad_cel = crd(
        "celthings",
        "CelThing",
        json!({ "type": "object", "properties": { "spec": {
            "type": "object",
            "properties": { "size": { "type": "integer" } },
            "x-kubernetes-validations": [{ "rule": "self.size >" }] } } }),
    );
    let status = api_error(crds.create(&PostParams::default(), &bad_cel).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("compil"), "{}", status.message);
}

#[tokio::test]
async fn our_nodemonitor_crd_is_served_and_its_cel_rules_run() {
    let cp = control_plane();
    let client = cp.client().await;
    cp.install_nodemonitor_crd(&client).await;
    let ns = cp.namespace(&client, "nodemonitor").await;
    let api = Api::<fine_grained_monitor::crd::NodeMonitor>::namespaced(client, &ns);
    let minimal: fine_grained_monitor::crd::NodeMonitor = from_json(json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": { "name": "default" }, "spec": {},
    }));
    api.create(&PostParams::default(), &minimal)
        .await
        .expect("minimal NodeMonitor accepted");
    let root: fine_grained_monitor::crd::NodeMonitor = from_json(json!({
        "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
        "metadata": { "name": "root" }, "spec": { "dataHostPath": "/" },
    }));
    let status = api_error(api.create(&PostParams::default(), &root).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("dataHostPath"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn custom_objects_are_created_listed_by_label_and_watched() {
    let cp = control_plane();
    let client = cp.client().await;
    let widgets = crd(
        "widgets",
        "Widget",
        json!({ "type": "object", "properties": { "spec": {
            "type": "object", "required": ["size"],
            "properties": { "size": { "type": "integer", "minimum": 1 } },
            "x-kubernetes-validations": [{ "rule": "self.size <= 100", "message": "too big" }],
        } } }),
    );
    cp.install_crd(&client, &widgets)
        .await
        .expect("install CRD");
    let ns = cp.namespace(&client, "widgets").await;
    let resource = ApiResource {
        group: "envtest.fgm.dev".into(),
        version: "v1".into(),
        api_version: "envtest.fgm.dev/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let api = Api::<DynamicObject>::namespaced_with(client, &ns, &resource);
    let widget = |name: &str, color: &str, size: serde_json::Value| -> DynamicObject {
        from_json(json!({
            "apiVersion": "envtest.fgm.dev/v1", "kind": "Widget",
            "metadata": { "name": name, "labels": { "color": color } },
            "spec": { "size": size },
        }))
    };
    let pp = PostParams::default();
    api.create(&pp, &widget("red", "red", json!(3)))
        .await
        .expect("create red");
    api.create(&pp, &widget("blue", "blue", json!(5)))
        .await
        .expect("create blue");

    // The schema and the CEL rule are enforced on objects.
    let status = api_error(api.create(&pp, &widget("bad", "red", json!("big"))).await);
    assert_eq!(status.code, 422, "{status:?}");
    let status = api_error(api.create(&pp, &widget("huge", "red", json!(1000))).await);
    assert!(status.message.contains("too big"), "{}", status.message);

    let reds = api
        .list(&ListParams::default().labels("color=red"))
        .await
        .expect("list by label");
    let names: Vec<String> = reds.items.iter().map(|o| o.name_any()).collect();
    assert_eq!(names, ["red"]);

    let version = reds
        .metadata
        .resource_version
        .expect("list resourceVersion");
    let stream = api
        .watch(&WatchParams::default().labels("color=green"), &version)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    api.create(&pp, &widget("green", "green", json!(7)))
        .await
        .expect("create green");
    let event = tokio::time::timeout(Duration::from_secs(20), stream.try_next())
        .await
        .expect("a watch event within 20s")
        .expect("watch stream ok")
        .expect("watch stream open");
    match event {
        WatchEvent::Added(obj) => {
            assert_eq!(obj.name_any(), "green");
            assert_eq!(obj.data["spec"]["size"], 7);
        }
        other => panic!("expected Added, got {other:?}"),
    }
}

#[tokio::test]
async fn pods_are_selected_by_node_name_and_status_goes_through_the_subresource() {
    let cp = control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "pods").await;
    let pods = Api::<Pod>::namespaced(client, &ns);
    for (name, node) in [("on-a", "node-a"), ("on-b", "node-b")] {
        let pod: Pod = from_json(json!({
            "metadata": { "name": name },
            "spec": { "nodeName": node, "containers": [{ "name": "c", "image": "example/c:1" }] },
        }));
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
    }
    let on_a = pods
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .expect("list by field");
    let names: Vec<String> = on_a.items.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, ["on-a"]);

    // Status written through the main resource is ignored...
    let running = json!({ "status": { "phase": "Running", "podIP": "10.1.2.3" } });
    let pod = pods
        .patch("on-a", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .expect("patch main resource");
    let phase = pod.status.and_then(|s| s.phase);
    assert_ne!(phase.as_deref(), Some("Running"));
    // ...and taken through the status subresource.
    pods.patch_status("on-a", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .expect("patch status");
    let status = pods
        .get("on-a")
        .await
        .expect("get pod")
        .status
        .expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.1.2.3"));
}

#[tokio::test]
async fn service_account_token_is_held_to_its_cluster_role() {
    let cp = control_plane();
    let admin = cp.client().await;
    let ns = cp.namespace(&admin, "rbac").await;
    let role_name = format!("{ns}-pod-lister");
    let role: ClusterRole = from_json(json!({
        "metadata": { "name": role_name },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["list"] }],
    }));
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("create ClusterRole");
    let sa: ServiceAccount = from_json(json!({ "metadata": { "name": "lister" } }));
    let sas = Api::<ServiceAccount>::namespaced(admin.clone(), &ns);
    sas.create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    let binding: RoleBinding = from_json(json!({
        "metadata": { "name": "lister" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name },
        "subjects": [{ "kind": "ServiceAccount", "name": "lister", "namespace": ns }],
    }));
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");
    let pod: Pod = from_json(json!({
        "metadata": { "name": "victim" },
        "spec": { "containers": [{ "name": "c", "image": "example/c:1" }] },
    }));
    Api::<Pod>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");

    let request: TokenRequest = from_json(json!({ "spec": { "audiences": [] } }));
    let token = sas
        .create_token_request("lister", &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("token status")
        .token
        .expect("token issued");
    let as_sa = Api::<Pod>::namespaced(cp.client_with_token(&token).await, &ns);

    // The RBAC authorizer's cache may lag the binding by a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        match as_sa.list(&ListParams::default()).await {
            Ok(list) => break list,
            Err(e) if Instant::now() < deadline => {
                eprintln!("list as ServiceAccount not allowed yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("ServiceAccount cannot list pods: {e}"),
        }
    };
    assert_eq!(listed.items.len(), 1);
    let status = api_error(as_sa.delete("victim", &DeleteParams::default()).await);
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains("system:serviceaccount:"),
        "{}",
        status.message
    );
    // Other namespaces are out of the binding's reach.
    let status = api_error(
        Api::<Pod>::namespaced(cp.client_with_token(&token).await, "default")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(status.code, 403, "{status:?}");
}

#[tokio::test]
async fn server_side_apply_reports_conflicts_between_managers() {
    let cp = control_plane();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "ssa").await;
    let maps = Api::<ConfigMap>::namespaced(client, &ns);
    let config = |value: &str| -> ConfigMap {
        from_json(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "settings" }, "data": { "interval": value },
        }))
    };
    maps.patch(
        "settings",
        &PatchParams::apply("first"),
        &Patch::Apply(config("1s")),
    )
    .await
    .expect("first apply");
    let status = api_error(
        maps.patch(
            "settings",
            &PatchParams::apply("second"),
            &Patch::Apply(config("5s")),
        )
        .await,
    );
    assert_eq!(status.code, 409, "{status:?}");
    assert!(status.message.contains("first"), "{}", status.message);

    let forced = maps
        .patch(
            "settings",
            &PatchParams::apply("second").force(),
            &Patch::Apply(config("5s")),
        )
        .await
        .expect("forced apply");
    assert_eq!(forced.data.expect("data")["interval"], "5s");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["second"]);
}

/// Polls `check` every 500 ms until it returns `Some`, or panics after `timeout` naming `what`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) => last = e,
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {timeout:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_fake_node() {
    let cp = control_plane();
    cp.start_workloads();
    let client = cp.client().await;
    let ns = cp.namespace(&client, "daemonset").await;
    let nodes: Vec<String> = (0..3).map(|i| format!("{ns}-node-{i}")).collect();
    for node in &nodes {
        support::workloads::create_fake_node(&client, node, &[("fgm.dev/pool", &ns)]).await;
    }
    let ds: DaemonSet = from_json(json!({
        "metadata": { "name": "agent" },
        "spec": {
            "selector": { "matchLabels": { "app": "agent" } },
            "template": {
                "metadata": { "labels": { "app": "agent" } },
                "spec": {
                    "nodeSelector": { "fgm.dev/pool": ns },
                    "containers": [{ "name": "agent", "image": "example/agent:1" }],
                },
            },
        },
    }));
    let daemonsets = Api::<DaemonSet>::namespaced(client.clone(), &ns);
    daemonsets
        .create(&PostParams::default(), &ds)
        .await
        .expect("create DaemonSet");

    let ready = eventually(
        "DaemonSet reporting 3 ready",
        Duration::from_secs(120),
        || {
            let daemonsets = daemonsets.clone();
            async move {
                let ds = daemonsets.get("agent").await.map_err(|e| e.to_string())?;
                let status = ds.status.ok_or("no status yet")?;
                Ok(
                    (status.desired_number_scheduled == 3 && status.number_ready == 3)
                        .then_some(status),
                )
            }
        },
    )
    .await;
    assert_eq!(ready.current_number_scheduled, 3);

    let pods = Api::<Pod>::namespaced(client, &ns)
        .list(&ListParams::default().labels("app=agent"))
        .await
        .expect("list pods");
    let mut on: Vec<String> = pods
        .items
        .iter()
        .map(|p| {
            let status = p.status.clone().unwrap_or_default();
            assert_eq!(status.phase.as_deref(), Some("Running"), "{}", p.name_any());
            p.spec
                .clone()
                .unwrap_or_default()
                .node_name
                .unwrap_or_default()
        })
        .collect();
    on.sort();
    assert_eq!(on, nodes);
}

#[tokio::test]
async fn missing_binary_is_named_with_the_build_command() {
    let err = support::find_bin("no-such-envtest-binary").expect_err("must be missing");
    assert!(err.contains("`no-such-envtest-binary`"), "{err}");
    assert!(err.contains(support::BUILD_COMMAND), "{err}");
}
