use super::*;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn status(name: &str, id: Option<&str>, last: Option<&str>) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image: format!("registry/{name}:1"),
        container_id: id.map(Into::into),
        last_state: last.map(|l| ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: Some(l.into()),
                exit_code: 137,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(name: &str, uid: &str, statuses: Vec<ContainerStatus>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            uid: Some(uid.into()),
            labels: Some([("app".to_string(), name.to_string())].into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            container_statuses: Some(statuses),
            init_container_statuses: Some(vec![status("init", Some("cri-o://i1"), None)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn strips_every_runtime_prefix() {
    assert_eq!(strip_runtime_prefix("containerd://abc"), "abc");
    assert_eq!(strip_runtime_prefix("cri-o://abc"), "abc");
    assert_eq!(strip_runtime_prefix("docker://abc"), "abc");
    assert_eq!(strip_runtime_prefix("podman://abc"), "abc");
    assert_eq!(strip_runtime_prefix("abc"), "abc");
    assert_eq!(strip_runtime_prefix(""), "");
}

#[test]
fn maps_current_previous_and_init_containers() {
    let p = pod(
        "web-0",
        "u1",
        vec![
            status("app", Some("containerd://c1"), Some("containerd://c0")),
            status("sidecar", Some("docker://s1"), None),
            // Not started yet: no id, nothing to index.
            status("late", None, None),
        ],
    );
    let index = PodIndex::from_pods([&p]);
    assert_eq!(index.containers(), 4);
    let app = index.lookup("c1").expect("current instance");
    assert_eq!(app.pod_name, "web-0");
    assert_eq!(app.namespace, "shop");
    assert_eq!(app.pod_uid, "u1");
    assert_eq!(app.container_name, "app");
    assert_eq!(app.labels.get("app").map(String::as_str), Some("web-0"));
    assert_eq!(app.image.as_deref(), Some("registry/app:1"));
    assert_eq!(
        index.lookup("c0").map(|i| i.container_name.as_str()),
        Some("app")
    );
    assert_eq!(
        index
            .lookup("docker://s1")
            .map(|i| i.container_name.as_str()),
        Some("sidecar")
    );
    assert_eq!(
        index.lookup("i1").map(|i| i.container_name.as_str()),
        Some("init")
    );
    assert!(index.lookup("").is_none());
}

#[test]
fn updates_drop_stale_ids_and_deletes_remove_the_pod() {
    let mut index = PodIndex::default();
    index.apply(&pod(
        "web-0",
        "u1",
        vec![status("app", Some("containerd://c1"), None)],
    ));
    index.apply(&pod(
        "web-1",
        "u2",
        vec![status("app", Some("containerd://d1"), None)],
    ));
    // The container restarted: new id, the old one is now the last state.
    index.apply(&pod(
        "web-0",
        "u1",
        vec![status(
            "app",
            Some("containerd://c2"),
            Some("containerd://c1"),
        )],
    ));
    assert!(index.lookup("c1").is_some());
    assert!(index.lookup("c2").is_some());
    // Restarted again: c1 is gone from the status and from the index.
    index.apply(&pod(
        "web-0",
        "u1",
        vec![status(
            "app",
            Some("containerd://c3"),
            Some("containerd://c2"),
        )],
    ));
    assert!(index.lookup("c1").is_none());
    index.apply(&pod(
        "web-1",
        "u2",
        vec![status("app", Some("containerd://d1"), None)],
    ));
    index.delete(&pod("web-0", "u1", vec![]));
    assert!(index.lookup("c3").is_none() && index.lookup("c2").is_none());
    assert_eq!(
        index.lookup("d1").map(|i| i.pod_name.as_str()),
        Some("web-1")
    );
    // Both test pods name init container i1; web-1's later claim survives the delete.
    assert_eq!(
        index.lookup("i1").map(|i| i.pod_name.as_str()),
        Some("web-1")
    );
    assert_eq!(index.pods(), 1);
    // A sandbox is named by its pod's UID: the pod's identity, no container name.
    let sandbox = index.lookup_pod("u2").expect("pod by UID");
    assert_eq!(
        (sandbox.pod_name.as_str(), sandbox.pod_uid.as_str()),
        ("web-1", "u2")
    );
    assert!(sandbox.container_name.is_empty());
    assert!(index.lookup_pod("u1").is_none(), "deleted pod");
}

#[test]
fn requests_come_from_the_spec_or_the_applied_resources() {
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let resources = |cpu: &str, mem: Option<&str>| ResourceRequirements {
        requests: Some(
            [("cpu".to_string(), Quantity(cpu.into()))]
                .into_iter()
                .chain(mem.map(|m| ("memory".to_string(), Quantity(m.into()))))
                .collect(),
        ),
        ..Default::default()
    };
    let mut p = pod(
        "web-0",
        "u1",
        vec![
            status("app", Some("containerd://c1"), None),
            status("sidecar", Some("containerd://s1"), None),
        ],
    );
    p.spec = Some(PodSpec {
        containers: vec![
            Container {
                name: "app".into(),
                resources: Some(resources("250m", Some("128Mi"))),
                ..Default::default()
            },
            Container {
                name: "sidecar".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    let found: HashMap<String, Option<Requests>> = containers_of(&p)
        .into_iter()
        .map(|(id, info)| (id, info.requests))
        .collect();
    assert_eq!(
        found["c1"],
        Some(Requests {
            cpu_millicores: Some(250),
            memory_bytes: Some(128 << 20)
        })
    );
    assert_eq!(found["s1"], None, "no requests, nothing recorded");
    // Resized in place: the kubelet's applied resources win over the spec.
    let mut resized = p
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .clone()
        .unwrap();
    resized[0].resources = Some(resources("1.5", None));
    let info = requests_of(&p, &resized[0]);
    assert_eq!(
        info,
        Some(Requests {
            cpu_millicores: Some(1500),
            memory_bytes: None
        })
    );
}
