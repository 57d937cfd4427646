//! The NodeMonitor API can change (issue #27): objects written under the previous CRD
//! (`v1alpha1` only, stored as `v1alpha1`), then the operator starts, applies the new CRD
//! (`v1beta1` stored, conversions through its webhook over TLS), and moves the old objects to
//! `v1beta1` in etcd; objects written in both versions afterwards read back in both versions
//! without loss. A control plane of its own (this binary's): the CRD is upgraded under it.
//!
//! The operator runs as its own ServiceAccount with the packaged RBAC (the CRD and Secret
//! rights included) and calls itself by URL: the apiserver runs on this machine. The real
//! node's test (`crd_conversion_node.rs`) reaches it through its Service, as in a cluster.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod operator_common;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use fine_grained_monitor::crd::convert::{RENAMES, convert};
use fine_grained_monitor::crd::{CRD_NAME, STORAGE_VERSION, v1alpha1};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use operator_common::{TEST_DATA_ROOT, args, http_get, operator_client, spawn_operator, wait_for};
use serde_json::{Value, json};
use support::{ControlPlane, control_plane};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

fn resource(version: &str) -> ApiResource {
    ApiResource {
        group: "fgm.dev".into(),
        version: version.into(),
        api_version: format!("fgm.dev/{version}"),
        kind: "NodeMonitor".into(),
        plural: "nodemonitors".into(),
    }
}

fn api(client: &Client, ns: &str, version: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &resource(version))
}

/// A NodeMonitor in `version` that sets every renamed field (in that version's names) to a
/// value other than its default, with labels and annotations.
fn object(version: &str, name: &str, ns: &str) -> DynamicObject {
    let spec = if version == "v1alpha1" {
        json!({
            "retention": {"maxAge": "3d", "maxBytes": "5Gi"},
            "metrics": {"enabled": false, "port": 9811},
            "enrichment": {"enabled": false},
        })
    } else {
        json!({
            "retention": {"maxAge": "2d", "maxSize": "7Gi"},
            "metrics": {"declarePort": false, "scrapeAnnotations": true},
            "podMetadata": {"enabled": false},
        })
    };
    let mut spec = spec;
    spec["dataHostPath"] = json!(format!("{TEST_DATA_ROOT}/{ns}/{name}"));
    spec["nodeSelector"] = json!({"fgm-test": "none"});
    spec["collector"] = json!({"interval": "2s", "rotation": "1m"});
    serde_json::from_value(json!({
        "apiVersion": format!("fgm.dev/{version}"),
        "kind": "NodeMonitor",
        "metadata": {
            "name": name,
            "labels": {"written-as": version},
            "annotations": {"fgm.dev/note": format!("{name} as {version}")},
        },
        "spec": spec,
    }))
    .unwrap()
}

/// What a version's read must show: spec, labels and annotations.
fn visible(obj: &DynamicObject) -> Value {
    json!({
        "spec": obj.data["spec"],
        "labels": obj.metadata.labels,
        "annotations": obj.metadata.annotations.as_ref().map(|a| {
            a.iter().filter(|(k, _)| k.starts_with("fgm.dev/")).collect::<BTreeMap<_, _>>()
        }),
    })
}

/// `visible` of an object as the other version shows it (renamed by the crate's conversion).
fn as_version(obj: &DynamicObject, version: &str) -> Value {
    let mut value = serde_json::to_value(obj).unwrap();
    value = convert(value, &format!("fgm.dev/{version}")).unwrap();
    visible(&serde_json::from_value(value).unwrap())
}

/// The `apiVersion` each NodeMonitor of `ns` is stored under in etcd, by name.
fn stored_versions(cp: &ControlPlane, ns: &str) -> BTreeMap<String, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let prefix = format!("/registry/fgm.dev/nodemonitors/{ns}/");
    let end = format!("/registry/fgm.dev/nodemonitors/{ns}0");
    let answer = cp
        .etcd_call(
            "kv/range",
            &json!({"key": b64.encode(&prefix), "range_end": b64.encode(&end)}),
        )
        .unwrap();
    answer["kvs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let key = String::from_utf8(b64.decode(kv["key"].as_str().unwrap()).unwrap()).unwrap();
            let value: Value =
                serde_json::from_slice(&b64.decode(kv["value"].as_str().unwrap()).unwrap())
                    .expect("NodeMonitors are stored as JSON");
            (
                key.trim_start_matches(&prefix).to_string(),
                value["apiVersion"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn crd_stored_versions(client: &Client) -> Vec<String> {
    Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD_NAME)
        .await
        .unwrap()
        .status
        .and_then(|s| s.stored_versions)
        .unwrap_or_default()
}

#[tokio::test]
async fn objects_of_both_versions_survive_the_storage_upgrade_without_loss() {
    let cp = control_plane();
    let admin = cp.client().await;
    // The previous release's CRD: v1alpha1 served and stored, no conversion.
    cp.install_crd(&admin, &v1alpha1::NodeMonitor::crd())
        .await
        .expect("the v1alpha1-only CRD");
    let ns = cp.namespace(&admin, "conversion").await;
    let post = PostParams::default();
    let mut written = BTreeMap::new();
    for name in ["old-0", "old-1"] {
        let created = api(&admin, &ns, "v1alpha1")
            .create(&post, &object("v1alpha1", name, &ns))
            .await
            .unwrap();
        written.insert(name.to_string(), created);
    }
    let before = stored_versions(cp, &ns);
    assert_eq!(before.values().collect::<Vec<_>>(), ["fgm.dev/v1alpha1"; 2]);

    // The new operator: webhook up, CRD applied (its own RBAC suffices), storage migrated.
    let client = operator_client(cp).await;
    let (operator_args, addr) = args(false);
    let stop = CancellationToken::new();
    let operator = spawn_operator(client, operator_args, stop.clone());
    wait_for("the operator's /readyz", WAIT, || async {
        http_get(addr, "/readyz")?
            .starts_with("HTTP/1.1 200")
            .then_some(())
    })
    .await;
    wait_for("storedVersions = [v1beta1]", WAIT, || async {
        (crd_stored_versions(&admin).await == [STORAGE_VERSION]).then_some(())
    })
    .await;
    let crd = Api::<CustomResourceDefinition>::all(admin.clone())
        .get(CRD_NAME)
        .await
        .unwrap();
    let served: Vec<_> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(served, [("v1beta1", true, true), ("v1alpha1", true, false)]);
    let webhook = crd.spec.conversion.unwrap().webhook.unwrap();
    let ca = webhook.client_config.unwrap().ca_bundle.unwrap();
    assert!(String::from_utf8_lossy(&ca.0).contains("BEGIN CERTIFICATE"));

    // Both forms after the upgrade: the webhook converts the v1alpha1 one for storage.
    for (version, name) in [("v1alpha1", "new-alpha"), ("v1beta1", "new-beta")] {
        let created = api(&admin, &ns, version)
            .create(&post, &object(version, name, &ns))
            .await
            .unwrap_or_else(|e| panic!("create {name} as {version}: {e}"));
        written.insert(name.to_string(), created);
    }
    let after = stored_versions(cp, &ns);
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(
        after.values().all(|v| v == "fgm.dev/v1beta1"),
        "every object is stored as v1beta1 now: {after:?}"
    );

    // Every object in both versions: what was written, renamed and nothing else.
    for (name, created) in &written {
        let version = if name.ends_with("beta") {
            "v1beta1"
        } else {
            "v1alpha1"
        };
        let other = if version == "v1beta1" {
            "v1alpha1"
        } else {
            "v1beta1"
        };
        let same = api(&admin, &ns, version).get(name).await.unwrap();
        let converted = api(&admin, &ns, other).get(name).await.unwrap();
        assert_eq!(visible(&same), visible(created), "{name} read as {version}");
        assert_eq!(
            visible(&converted),
            as_version(created, other),
            "{name} read as {other}"
        );
        for (alpha_path, beta_path) in RENAMES {
            let (path, obj) = if other == "v1beta1" {
                (beta_path, &converted)
            } else {
                (alpha_path, &converted)
            };
            let value = path[1..]
                .iter()
                .fold(&obj.data["spec"], |at, key| &at[*key]);
            assert!(!value.is_null(), "{name} as {other} has {path:?}");
        }
    }

    // A write through the old version keeps what only the new one names the same way.
    let label = json!({"metadata": {"labels": {"touched": "through-v1alpha1"}}});
    api(&admin, &ns, "v1alpha1")
        .patch("new-beta", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let beta = api(&admin, &ns, "v1beta1").get("new-beta").await.unwrap();
    assert_eq!(beta.data["spec"], written["new-beta"].data["spec"]);
    assert_eq!(beta.data["spec"]["retention"]["maxSize"], "7Gi");

    stop.cancel();
    tokio::task::spawn_blocking(move || operator.join())
        .await
        .unwrap()
        .unwrap();
}
