//! Attacks on the NodeMonitor surface against the real apiserver of the test
//! control plane (issue #17): a NodeMonitor must not be a key to the node.
//! One operator runs for the binary as its own ServiceAccount with exactly the
//! chart's rules; each test works in its own namespace.
//!
//! - dangerous host paths are refused (by the CRD where CEL can say it, else
//!   by the operator) before any object is made;
//! - the chart's admission policy refuses them at `kubectl apply`;
//! - a foreign image gets a condition and no DaemonSet (a running one is removed);
//! - a NodeMonitor named `default` never touches the `default` ServiceAccount;
//! - objects that already carry the operator's names are left untouched;
//! - one directory written two ways in two namespaces is one directory;
//! - the monitor's real token reads pods and nothing else; the operator's real
//!   token binds the agent roles and cannot create, change or bind another role;
//! - an older operator's binding is migrated, existing default NodeMonitors keep working.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod operator_common;
mod support;

use std::time::Duration;

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client, ResourceExt};
use operator_common::{
    TEST_DATA_ROOT, cluster_name, condition, condition_message, create_on_no_node, events_for, get,
    monitor, operator_client, setup, wait_for,
};
use support::control_plane;

const WAIT: Duration = Duration::from_secs(30);

/// A spec that selects no node, with `extra` fields merged in.
fn on_no_node(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({"nodeSelector": {"fgm-test": "none"}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// Waits until `name` is refused with `reason` (Degraded=True, Ready=False).
async fn refused(api: &Api<NodeMonitor>, name: &str, reason: &str) -> NodeMonitor {
    let nm = wait_for(&format!("{name} refused with {reason}"), WAIT, || async {
        get(api, name)
            .await
            .filter(|nm| condition(nm, "Degraded") == Some(("True".into(), reason.into())))
    })
    .await;
    assert_eq!(
        condition(&nm, "Ready"),
        Some(("False".into(), reason.into()))
    );
    nm
}

/// None of the objects the operator makes for `name` exists.
async fn nothing_made(admin: &Client, ns: &str, name: &str) {
    let ds: Api<DaemonSet> = Api::namespaced(admin.clone(), ns);
    let cm: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let crb: Api<ClusterRoleBinding> = Api::all(admin.clone());
    assert!(
        get(&ds, name).await.is_none(),
        "{ns}/{name}: DaemonSet made"
    );
    assert!(
        get(&cm, name).await.is_none(),
        "{ns}/{name}: ConfigMap made"
    );
    assert!(
        get(&sa, &format!("fine-grained-monitor-{name}"))
            .await
            .is_none(),
        "{ns}/{name}: ServiceAccount made"
    );
    assert!(
        get(&crb, &cluster_name(ns, name)).await.is_none(),
        "{ns}/{name}: ClusterRoleBinding made"
    );
}

async fn warning_event(admin: &Client, ns: &str, name: &str, reason: &str) {
    wait_for(&format!("a {reason} warning event"), WAIT, || async {
        events_for(admin, ns, name)
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn dangerous_host_paths_are_refused_before_anything_is_made() {
    let (admin, ns) = setup("paths").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    // The operator refuses these: outside every allowed root.
    let outside = [
        "/etc",
        "/proc",
        "/sys",
        "/var/lib/kubelet",
        "/var/run",
        "/root",
        "/usr",
        "/boot",
        "/var/lib/etcd",
        "/var/lib",
        "//etc",
        "/etc/",
        "/var/lib/fine-grained-monitor-evil",
        "//var/lib//fine-grained-monitorx/",
    ];
    for (i, path) in outside.iter().enumerate() {
        let name = format!("outside-{i}");
        api.create(
            &PostParams::default(),
            &monitor(&name, on_no_node(serde_json::json!({"dataHostPath": path}))),
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: the schema has no say here: {e}"));
    }
    for (i, path) in outside.iter().enumerate() {
        let name = format!("outside-{i}");
        let nm = refused(&api, &name, "HostPathNotAllowed").await;
        let message = condition_message(&nm, "Ready");
        assert!(
            message.contains(&format!("{path:?}"))
                && message.contains("/var/lib/fine-grained-monitor")
                && message.contains("--allowed-data-roots"),
            "{path}: {message}"
        );
        nothing_made(&admin, &ns, &name).await;
    }
    warning_event(&admin, &ns, "outside-0", "HostPathNotAllowed").await;

    // The CRD refuses these itself: `/` in any spelling, `.` and `..` segments.
    let raw: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &ns, &ApiResource::erase::<NodeMonitor>(&()));
    for (i, path) in [
        "/",
        "//",
        "///",
        "/var/lib/fine-grained-monitor/../kubelet",
        "/var/lib/fine-grained-monitor/..",
        "/var/lib/fine-grained-monitor/./x",
        "/var/lib/fine-grained-monitor/x/.",
        "relative/path",
    ]
    .iter()
    .enumerate()
    {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "fgm.dev/v1alpha1", "kind": "NodeMonitor",
            "metadata": {"name": format!("schema-{i}")},
            "spec": {"dataHostPath": path},
        }))
        .unwrap();
        let err = raw
            .create(&PostParams::default(), &obj)
            .await
            .expect_err(&format!("{path} must be refused by the apiserver"));
        assert!(
            err.to_string().contains("spec.dataHostPath"),
            "{path}: {err}"
        );
    }
}

#[tokio::test]
async fn the_charts_admission_policy_refuses_outside_paths_at_apply() {
    let (admin, ns) = setup("vap").await;
    let cp = control_plane();
    // The chart's own policy, rendered for this operator's roots, bound to this
    // test's namespace only (the other tests see the operator's refusal).
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/fine-grained-monitor-operator");
    let out = cp
        .helm()
        .args(["template", "vap"])
        .arg(&chart)
        .args([
            "--set",
            &format!("policy.allowedDataRoots={{/var/lib/fine-grained-monitor,{TEST_DATA_ROOT}}}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let label = format!("fgm-vap-{ns}");
    let apply = PatchParams::apply("fgm-test").force();
    for mut doc in docs.into_iter().filter(|d| {
        d["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("ValidatingAdmissionPolicy"))
    }) {
        let kind = doc["kind"].as_str().unwrap().to_string();
        doc["metadata"]["name"] = serde_json::json!(label);
        if kind == "ValidatingAdmissionPolicyBinding" {
            doc["spec"]["policyName"] = serde_json::json!(label);
            doc["spec"]["matchResources"] = serde_json::json!({
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
            });
        }
        let resource = ApiResource {
            group: "admissionregistration.k8s.io".into(),
            version: "v1".into(),
            api_version: "admissionregistration.k8s.io/v1".into(),
            kind: kind.clone(),
            plural: match kind.as_str() {
                "ValidatingAdmissionPolicy" => "validatingadmissionpolicies".into(),
                _ => "validatingadmissionpolicybindings".into(),
            },
        };
        let api: Api<DynamicObject> = Api::all_with(admin.clone(), &resource);
        let obj: DynamicObject = serde_json::from_value(doc).unwrap();
        api.patch(&label, &apply, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("the apiserver refused the chart's {kind}: {e}"));
    }
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let create = |name: &str, path: &str| {
        let api = api.clone();
        let nm = monitor(name, on_no_node(serde_json::json!({"dataHostPath": path})));
        async move { api.create(&PostParams::default(), &nm).await }
    };
    // Policies take effect a moment after they are stored.
    let err = wait_for("the admission policy in force", WAIT, || async {
        match create("probe", "/etc").await {
            Err(e) => Some(e),
            Ok(_) => {
                api.delete("probe", &DeleteParams::default()).await.unwrap();
                None
            }
        }
    })
    .await;
    let message = err.to_string();
    assert!(
        message.contains("spec.dataHostPath /etc is not under an allowed data root")
            && message.contains(TEST_DATA_ROOT),
        "{message}"
    );
    for path in ["/var/lib/kubelet", "//root", "/var/lib/fgm-testx", "/"] {
        assert!(create("bad", path).await.is_err(), "{path} admitted");
    }
    // In or below a root, in any spelling, is admitted.
    for (i, path) in [
        "/var/lib/fine-grained-monitor".to_string(),
        format!("//var/lib/fgm-test/{ns}-a/"),
        format!("{TEST_DATA_ROOT}/{ns}-b"),
    ]
    .iter()
    .enumerate()
    {
        create(&format!("good-{i}"), path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    // A stored NodeMonitor can still be changed elsewhere (and deleted).
    api.patch(
        "good-1",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"collector": {"interval": "2s"}}})),
    )
    .await
    .unwrap();
    for i in 0..3 {
        api.delete(&format!("good-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_foreign_image_gets_a_condition_and_no_daemonset() {
    let (admin, ns) = setup("image").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let path = format!("{TEST_DATA_ROOT}/{ns}");
    let spec = on_no_node(serde_json::json!({
        "dataHostPath": path,
        "image": "evil.example.com/root-shell:latest",
    }));
    api.create(&PostParams::default(), &monitor("img", spec))
        .await
        .unwrap();
    let nm = refused(&api, "img", "ImageNotAllowed").await;
    let message = condition_message(&nm, "Degraded");
    assert!(
        message.contains("evil.example.com/root-shell:latest")
            && message.contains("--allowed-image-repositories"),
        "{message}"
    );
    nothing_made(&admin, &ns, "img").await;
    warning_event(&admin, &ns, "img", "ImageNotAllowed").await;

    // From an allowed repository: it runs.
    let set_image = |image: &'static str| {
        let api = api.clone();
        async move {
            api.patch(
                "img",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"image": image}})),
            )
            .await
            .unwrap();
        }
    };
    set_image("registry.local/fgm:1").await;
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds = wait_for("the DaemonSet", WAIT, || get(&ds_api, "img")).await;
    let pod = ds.spec.template.spec.unwrap();
    assert!(
        pod.containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
            .all(|c| c.image.as_deref() == Some("registry.local/fgm:1"))
    );
    // Back to a foreign image: the running DaemonSet goes.
    set_image("registry.local.evil.com/fgm:1").await;
    refused(&api, "img", "ImageNotAllowed").await;
    wait_for("the DaemonSet removed", WAIT, || async {
        get(&ds_api, "img").await.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_node_monitor_named_default_leaves_the_default_service_account_alone() {
    let (admin, ns) = setup("named-default").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let before = get(&sas, "default").await.expect("default ServiceAccount");
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, "default").await;
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds = wait_for("the DaemonSet", WAIT, || get(&ds_api, "default")).await;
    assert_eq!(
        ds.spec
            .template
            .spec
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("fine-grained-monitor-default")
    );
    assert!(get(&sas, "fine-grained-monitor-default").await.is_some());
    let after = get(&sas, "default").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the default ServiceAccount was written"
    );
    assert!(after.owner_references().is_empty());
    let bound_to_default = Api::<ClusterRoleBinding>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|b| {
            b.subjects.iter().flatten().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == "default"
                    && s.namespace.as_deref() == Some(ns.as_str())
            })
        })
        .map(|b| b.name_any())
        .collect::<Vec<_>>();
    assert!(
        bound_to_default.is_empty(),
        "bindings to {ns}/default: {bound_to_default:?}"
    );
}

#[tokio::test]
async fn objects_that_carry_the_operators_names_are_never_adopted() {
    let (admin, ns) = setup("clash").await;
    let name = "clash";
    let crb_name = cluster_name(&ns, name);
    let apply = PatchParams::apply("someone-else");
    // A user's ConfigMap, a look-alike ServiceAccount (the operator's label, no
    // owner), a hand-made binding and DaemonSet, all with the names the operator would use.
    let cm_api: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"agent.yaml": "data-dir: /etc\n"},
    }))
    .unwrap();
    cm_api
        .patch(name, &apply, &Patch::Apply(&cm))
        .await
        .unwrap();
    let sa_api: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": format!("fine-grained-monitor-{name}"),
                     "labels": {"app.kubernetes.io/managed-by": "fine-grained-monitor-operator"}},
    }))
    .unwrap();
    sa_api
        .patch(
            &format!("fine-grained-monitor-{name}"),
            &apply,
            &Patch::Apply(&sa),
        )
        .await
        .unwrap();
    let crb_api: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": crb_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
    }))
    .unwrap();
    crb_api
        .patch(&crb_name, &apply, &Patch::Apply(&crb))
        .await
        .unwrap();
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": "theirs"}},
            "template": {
                "metadata": {"labels": {"app": "theirs"}},
                "spec": {"nodeSelector": {"fgm-test": "none"},
                         "containers": [{"name": "c", "image": "theirs:1"}]}
            }
        }
    }))
    .unwrap();
    ds_api
        .patch(name, &apply, &Patch::Apply(&ds))
        .await
        .unwrap();
    let versions = || async {
        (
            get(&cm_api, name).await.unwrap().resource_version(),
            get(&sa_api, &format!("fine-grained-monitor-{name}"))
                .await
                .unwrap()
                .resource_version(),
            get(&crb_api, &crb_name).await.unwrap().resource_version(),
            get(&ds_api, name).await.unwrap().resource_version(),
        )
    };
    let before = versions().await;

    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, name).await;
    let nm = refused(&api, name, "NameClash").await;
    let message = condition_message(&nm, "Degraded");
    for expected in [
        format!("ConfigMap {ns}/{name} exists and was not created for NodeMonitor {ns}/{name}"),
        format!("ServiceAccount {ns}/fine-grained-monitor-{name} exists"),
        format!("ClusterRoleBinding {crb_name} exists"),
        format!("DaemonSet {ns}/{name} exists"),
    ] {
        assert!(message.contains(&expected), "{expected} not in {message}");
    }
    warning_event(&admin, &ns, name, "NameClash").await;
    // Given time to do harm, the operator has not written any of them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(versions().await, before, "a foreign object was written");
    let crb_now = get(&crb_api, &crb_name).await.unwrap();
    assert_eq!(crb_now.role_ref.name, "view");
    assert_eq!(
        get(&cm_api, name).await.unwrap().data.unwrap()["agent.yaml"],
        "data-dir: /etc\n"
    );

    // Once they are gone, the NodeMonitor gets its own.
    cm_api.delete(name, &DeleteParams::default()).await.unwrap();
    sa_api
        .delete(
            &format!("fine-grained-monitor-{name}"),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    crb_api
        .delete(&crb_name, &DeleteParams::default())
        .await
        .unwrap();
    ds_api.delete(name, &DeleteParams::default()).await.unwrap();
    // The operator looks again within 30 s; a touch makes it look now.
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"touched": "1"}}})),
    )
    .await
    .unwrap();
    let ds = wait_for("its own DaemonSet", WAIT, || async {
        get(&ds_api, name).await.filter(|ds| {
            ds.owner_references()
                .iter()
                .any(|o| o.kind == "NodeMonitor")
        })
    })
    .await;
    assert!(
        ds.metadata
            .labels
            .unwrap()
            .contains_key("app.kubernetes.io/managed-by")
    );
    let crb = wait_for("its own binding", WAIT, || get(&crb_api, &crb_name)).await;
    assert_eq!(crb.role_ref.name, "fine-grained-monitor-agent");
}

#[tokio::test]
async fn one_directory_written_two_ways_in_two_namespaces_is_one_directory() {
    let (admin, ns_a) = setup("twoways").await;
    let ns_b = control_plane().namespace(&admin, "twoways").await;
    let dir = format!("{TEST_DATA_ROOT}/shared-{ns_a}");
    let spec = |path: String| serde_json::json!({"dataHostPath": path, "nodeSelector": {"fgm-test": "none"}});
    let api_a: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns_a);
    let api_b: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns_b);
    api_a
        .create(
            &PostParams::default(),
            &monitor("shared", spec(format!("/{dir}/"))),
        )
        .await
        .unwrap();
    let ds_a: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns_a);
    let ds_b: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns_b);
    wait_for("the first DaemonSet", WAIT, || get(&ds_a, "shared")).await;
    // Creation times have one-second resolution: make the order unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let dotted = dir.replacen("/fgm-test/", "/fgm-test/./", 1);
    api_b
        .create(&PostParams::default(), &monitor("shared", spec(dotted)))
        .await
        .unwrap_err();
    // `.` segments are refused by the CRD; `//` and a trailing slash are the other spellings.
    api_b
        .create(
            &PostParams::default(),
            &monitor("shared", spec(dir.replace('/', "//"))),
        )
        .await
        .unwrap();
    let nm = refused(&api_b, "shared", "HostPathConflict").await;
    let message = condition_message(&nm, "Ready");
    assert!(message.contains(&format!("{ns_a}/shared")), "{message}");
    assert!(
        get(&ds_b, "shared").await.is_none(),
        "the later one must not run"
    );
    assert!(
        get(&ds_a, "shared").await.is_some(),
        "the earlier one runs on"
    );
    let a = get(&api_a, "shared").await.unwrap();
    assert_ne!(condition(&a, "Degraded").map(|c| c.0), Some("True".into()));
}

/// Resource rules of `client` in `ns`, as (group, resource, verb) triples.
async fn rules_of(client: &Client, ns: &str) -> Vec<(String, String, String)> {
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(ns.into()),
        },
        ..SelfSubjectRulesReview::default()
    };
    let api: Api<SelfSubjectRulesReview> = Api::all(client.clone());
    let status = api
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap();
    let mut out = Vec::new();
    for rule in status.resource_rules {
        for g in rule.api_groups.unwrap_or_default() {
            for r in rule.resources.clone().unwrap_or_default() {
                for v in &rule.verbs {
                    out.push((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The rules `client` has beyond what every ServiceAccount has (the
/// namespace's `default` account, bound to nothing, is the baseline).
async fn own_rules(admin: &Client, client: &Client, ns: &str) -> Vec<(String, String, String)> {
    let baseline = rules_of(&token_client(admin, ns, "default").await, ns).await;
    rules_of(client, ns)
        .await
        .into_iter()
        .filter(|r| !baseline.contains(r))
        .collect()
}

async fn can(
    client: &Client,
    ns: &str,
    verb: &str,
    group: &str,
    resource: &str,
    sub: &str,
) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: (!sub.is_empty()).then(|| sub.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    }
}

/// A real token of the ServiceAccount `name` in `ns` (TokenRequest), as a client.
async fn token_client(admin: &Client, ns: &str, name: &str) -> Client {
    let request = serde_json::from_value(serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600}
    }))
    .unwrap();
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("token of {ns}/{name}: {e}"))
        .status
        .unwrap()
        .token
        .expect("a token");
    control_plane().client_with_token(&token).await
}

#[tokio::test]
async fn the_monitor_token_reads_pods_and_nothing_else() {
    let (admin, ns) = setup("token").await;
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    create_on_no_node(&api, &ns, "reader").await;
    let crb_api: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let binding = cluster_name(&ns, "reader");
    wait_for("the binding", WAIT, || get(&crb_api, &binding)).await;
    let monitor = token_client(&admin, &ns, "fine-grained-monitor-reader").await;

    // What the agent needs: pods of every namespace (its node's), read only.
    Api::<Pod>::all(monitor.clone())
        .list(&ListParams::default())
        .await
        .expect("the monitor token lists pods");
    assert_eq!(
        own_rules(&admin, &monitor, &ns).await,
        [
            ("".to_string(), "pods".to_string(), "get".to_string()),
            ("".into(), "pods".into(), "list".into()),
            ("".into(), "pods".into(), "watch".into()),
        ],
        "the token's rules are pod reading and nothing more"
    );
    // 403 on everything else, asked for real.
    forbidden(
        Api::<Namespace>::all(monitor.clone())
            .list(&ListParams::default())
            .await,
        "list namespaces",
    );
    forbidden(
        Api::<Secret>::namespaced(monitor.clone(), &ns)
            .list(&ListParams::default())
            .await,
        "list secrets",
    );
    forbidden(
        Api::<ConfigMap>::all(monitor.clone())
            .list(&ListParams::default())
            .await,
        "list configmaps",
    );
    forbidden(
        Api::<k8s_openapi::api::core::v1::Node>::all(monitor.clone())
            .list(&ListParams::default())
            .await,
        "list nodes",
    );
    forbidden(
        Api::<NodeMonitor>::all(monitor.clone())
            .list(&ListParams::default())
            .await,
        "list nodemonitors",
    );
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "evil"},
        "spec": {"containers": [{"name": "c", "image": "evil:1"}]}
    }))
    .unwrap();
    forbidden(
        Api::<Pod>::namespaced(monitor.clone(), &ns)
            .create(&PostParams::default(), &pod)
            .await,
        "create a pod",
    );
    forbidden(
        Api::<Pod>::namespaced(monitor.clone(), &ns)
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
        "delete pods",
    );
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("evil-{ns}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "fine-grained-monitor-reader", "namespace": ns}],
    }))
    .unwrap();
    forbidden(
        Api::<ClusterRoleBinding>::all(monitor.clone())
            .create(&PostParams::default(), &crb)
            .await,
        "create a ClusterRoleBinding",
    );
    // Subresources a pod reader could be tempted by.
    for (verb, resource, sub) in [
        ("create", "pods", "exec"),
        ("get", "pods", "log"),
        ("create", "pods", "eviction"),
        ("get", "nodes", "proxy"),
        ("create", "serviceaccounts", "token"),
        ("patch", "pods", "status"),
    ] {
        assert!(
            !can(&monitor, &ns, verb, "", resource, sub).await,
            "{verb} {resource}/{sub} allowed"
        );
    }

    // With a namespace selector, reading namespaces is added, and nothing else.
    api.create(&PostParams::default(), &monitor_with_selector(&ns))
        .await
        .unwrap();
    let ns_binding = format!("{}:namespaces", cluster_name(&ns, "selecting"));
    wait_for("the namespaces binding", WAIT, || {
        get(&crb_api, &ns_binding)
    })
    .await;
    let selecting = token_client(&admin, &ns, "fine-grained-monitor-selecting").await;
    Api::<Namespace>::all(selecting.clone())
        .list(&ListParams::default())
        .await
        .expect("lists namespaces");
    let rules = own_rules(&admin, &selecting, &ns).await;
    assert_eq!(
        rules,
        [
            ("".to_string(), "namespaces".to_string(), "list".to_string()),
            ("".into(), "namespaces".into(), "watch".into()),
            ("".into(), "pods".into(), "get".into()),
            ("".into(), "pods".into(), "list".into()),
            ("".into(), "pods".into(), "watch".into()),
        ]
    );
}

fn monitor_with_selector(ns: &str) -> NodeMonitor {
    monitor(
        "selecting",
        serde_json::json!({
            "dataHostPath": format!("{TEST_DATA_ROOT}/{ns}-selecting"),
            "nodeSelector": {"fgm-test": "none"},
            "namespaceSelector": {"matchLabels": {"team": "a"}},
        }),
    )
}

#[tokio::test]
async fn the_operator_token_binds_the_agent_roles_and_nothing_else() {
    let (admin, ns) = setup("operator-token").await;
    let operator = operator_client(control_plane()).await;
    let binding = |name: &str, role: &str| -> ClusterRoleBinding {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
        }))
        .unwrap()
    };
    let crbs: Api<ClusterRoleBinding> = Api::all(operator.clone());
    // A role with rights the operator does not hold, like the built-in ones.
    let secret_reader = format!("fgm-secret-reader-{ns}");
    let reader: ClusterRole = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": secret_reader},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &reader)
        .await
        .unwrap();
    // Binding any role but the agents' is an escalation RBAC refuses.
    for role in [
        "cluster-admin",
        "system:node",
        "system:kube-controller-manager",
        secret_reader.as_str(),
    ] {
        forbidden(
            crbs.create(
                &PostParams::default(),
                &binding(&format!("evil-{ns}"), role),
            )
            .await,
            &format!("bind {role}"),
        );
    }
    let ok = format!("fgm-ok-{ns}");
    crbs.create(
        &PostParams::default(),
        &binding(&ok, "fine-grained-monitor-agent"),
    )
    .await
    .expect("the operator binds the agent role");
    Api::<ClusterRoleBinding>::all(admin.clone())
        .delete(&ok, &DeleteParams::default())
        .await
        .unwrap();
    // No role can be created or changed.
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("evil-{ns}")},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }))
    .unwrap();
    let roles: Api<ClusterRole> = Api::all(operator.clone());
    forbidden(
        roles.create(&PostParams::default(), &role).await,
        "create a ClusterRole",
    );
    forbidden(
        roles
            .patch(
                "fine-grained-monitor-agent",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})),
            )
            .await,
        "widen the agent role",
    );
    // And it reads neither secrets nor pods itself.
    forbidden(
        Api::<Secret>::all(operator.clone())
            .list(&ListParams::default())
            .await,
        "list secrets",
    );
    forbidden(
        Api::<Pod>::all(operator.clone())
            .list(&ListParams::default())
            .await,
        "list pods",
    );
}

#[tokio::test]
async fn an_older_operators_binding_is_migrated_and_default_monitors_keep_working() {
    let (admin, ns) = setup("upgrade").await;
    let name = "legacy";
    let old_role = cluster_name(&ns, name);
    // What the operator before this release made: a per-NodeMonitor role and a
    // binding to it, labelled and annotated as its own (no uid annotation yet).
    let apply = PatchParams::apply("fine-grained-monitor");
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": old_role,
                     "labels": {"app.kubernetes.io/managed-by": "fine-grained-monitor-operator"},
                     "annotations": {"fgm.dev/owner": format!("{ns}/{name}")}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .patch(&old_role, &apply, &Patch::Apply(&role))
        .await
        .unwrap();
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": old_role,
                     "labels": {"app.kubernetes.io/managed-by": "fine-grained-monitor-operator"},
                     "annotations": {"fgm.dev/owner": format!("{ns}/{name}")}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": old_role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))
    .unwrap();
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    crbs.patch(&old_role, &apply, &Patch::Apply(&crb))
        .await
        .unwrap();

    // An existing user's NodeMonitor: the default path, defaults everywhere.
    let api: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let spec = serde_json::json!({"nodeSelector": {"fgm-test": format!("none-{ns}")}});
    api.create(&PostParams::default(), &monitor(name, spec))
        .await
        .unwrap();
    let migrated = wait_for("the binding of the fixed role", WAIT, || async {
        get(&crbs, &old_role)
            .await
            .filter(|b| b.role_ref.name == "fine-grained-monitor-agent")
    })
    .await;
    let subject = &migrated.subjects.unwrap()[0];
    assert_eq!(subject.name, format!("fine-grained-monitor-{name}"));
    let ds_api: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    let ds = wait_for("the DaemonSet", WAIT, || get(&ds_api, name)).await;
    let pod = ds.spec.template.spec.unwrap();
    let data = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(
        data.host_path.unwrap().path,
        "/var/lib/fine-grained-monitor",
        "the same host directory as before"
    );
    assert!(
        pod.containers
            .iter()
            .flat_map(|c| c.volume_mounts.iter().flatten())
            .filter(|m| m.name == "data")
            .all(|m| m.sub_path.is_none())
    );
    let nm = get(&api, name).await.unwrap();
    assert_ne!(condition(&nm, "Degraded").map(|c| c.0), Some("True".into()));
    // The operator may not delete roles: the old one stays, bound to nothing.
    let bound: Vec<String> = crbs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|b| b.role_ref.name == old_role)
        .map(|b| b.name_any())
        .collect();
    assert!(bound.is_empty(), "the old role is still bound by {bound:?}");
}
