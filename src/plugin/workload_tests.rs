use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde_json::json;

#[test]
fn open_takes_a_pod_or_kind_slash_name() {
    assert_eq!(
        parse_target("web-0").unwrap(),
        OpenTarget::Pod("web-0".into())
    );
    assert_eq!(
        parse_target("pod/web-0").unwrap(),
        OpenTarget::Pod("web-0".into())
    );
    assert_eq!(
        parse_target("deploy/shop").unwrap(),
        OpenTarget::Workload(Kind::Deployment, "shop".into())
    );
    assert_eq!(
        parse_target("statefulset.apps/db").unwrap(),
        OpenTarget::Workload(Kind::StatefulSet, "db".into())
    );
    assert_eq!(
        parse_target("job/backup").unwrap(),
        OpenTarget::Workload(Kind::Job, "backup".into())
    );
    let err = parse_target("cronjob/x").unwrap_err().to_string();
    assert!(
        err.contains("\"cronjob\" is not a kind open knows"),
        "{err}"
    );
    assert!(parse_target("deployment/").is_err());
    assert!(parse_target("a/b/c").is_err());
}

#[test]
fn selectors_become_the_apis_query_text() {
    let selector = LabelSelector {
        match_labels: Some([("app".to_string(), "shop".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["web".into(), "api".into()]),
            },
            LabelSelectorRequirement {
                key: "canary".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    assert_eq!(
        selector_text(&selector).unwrap(),
        "app=shop,tier in (web,api),!canary"
    );
    assert!(
        selector_text(&LabelSelector::default()).is_err(),
        "would select every pod"
    );
    let odd = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "k".into(),
            operator: "Near".into(),
            values: None,
        }]),
        ..LabelSelector::default()
    };
    assert!(selector_text(&odd).unwrap_err().contains("\"Near\""));
}

fn pod(name: &str, node: Option<&str>, ids: &[(&str, Option<&str>)]) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"nodeName": node, "containers": ids.iter().map(|(c, _)| json!({"name": c})).collect::<Vec<_>>()},
        "status": {"containerStatuses": ids.iter().map(|(c, id)| json!({
            "name": c, "containerID": id, "image": "x", "imageID": "", "ready": true, "restartCount": 0
        })).collect::<Vec<_>>()}
    }))
    .unwrap()
}

#[test]
fn a_workloads_pods_become_keys_on_covered_nodes_and_the_rest_is_said() {
    let hex = |c: char| format!("containerd://{}", c.to_string().repeat(64));
    let (a, b, c) = (hex('a'), hex('b'), hex('c'));
    let pods = vec![
        pod("shop-2", Some("n2"), &[("app", Some(&b))]),
        pod("shop-1", Some("n1"), &[("app", Some(&a))]),
        pod("shop-3", Some("bare"), &[("app", Some(&c))]),
        pod("shop-4", None, &[("app", None)]),
        pod("shop-5", Some("n1"), &[("app", None)]),
    ];
    let plan = plan(Kind::Deployment, "shop", "shop", &pods, None, |n| {
        n != "bare"
    })
    .unwrap();
    assert_eq!(plan.keys, vec!["n1/aaaaaaaaaaaa", "n2/bbbbbbbbbbbb"]);
    assert_eq!(plan.nodes, vec!["n1", "n2"]);
    let said = plan.left_out.join("\n");
    assert!(
        said.contains("shop-3: node bare has no monitor pod"),
        "{said}"
    );
    assert!(said.contains("shop-4: not scheduled"), "{said}");
    assert!(said.contains("shop-5: not started yet: app"), "{said}");
}
