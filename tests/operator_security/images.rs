//! Images outside the operator's allowed repositories.

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::common::*;
use crate::operator_common::{TEST_DATA_ROOT, condition_message, get, monitor, setup, wait_for};

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
