//! Host paths: refused by the CRD, the operator and the chart's admission policy; one directory however spelled.

use std::time::Duration;

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};

use crate::common::*;
use crate::operator_common::{
    TEST_DATA_ROOT, condition, condition_message, get, monitor, setup, wait_for,
};
use crate::support::control_plane;

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
            "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
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
