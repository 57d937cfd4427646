//! Real tokens: the monitor's reads pods only, the operator's binds the agent roles only.

use fine_grained_monitor::crd::NodeMonitor;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::common::*;
use crate::operator_common::{
    TEST_DATA_ROOT, cluster_name, create_on_no_node, get, monitor, operator_client, setup, wait_for,
};
use crate::support::control_plane;

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
async fn the_monitor_token_reads_pods_and_node_stats_and_nothing_else() {
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
            // The kubelet's Summary API (container filesystems).
            ("".to_string(), "nodes/stats".to_string(), "get".to_string()),
            ("".into(), "pods".into(), "get".into()),
            ("".into(), "pods".into(), "list".into()),
            ("".into(), "pods".into(), "watch".into()),
        ],
        "the token's rules are pod reading and node stats, nothing more"
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
        ("get", "nodes", "log"),
        ("create", "nodes", "proxy"),
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
            ("".into(), "nodes/stats".into(), "get".into()),
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
    // It reads no secrets. Of pods it may only list (the agents' addresses for
    // `GET /export`): no get, no watch, no logs, no exec.
    forbidden(
        Api::<Secret>::all(operator.clone())
            .list(&ListParams::default())
            .await,
        "list secrets",
    );
    Api::<Pod>::all(operator.clone())
        .list(&ListParams::default())
        .await
        .expect("the operator lists pods (status.export)");
    forbidden(
        Api::<Pod>::namespaced(operator.clone(), &ns)
            .get("anything")
            .await,
        "get a pod",
    );
    for (verb, sub) in [
        ("watch", ""),
        ("get", "log"),
        ("create", "exec"),
        ("delete", ""),
    ] {
        assert!(
            !can(&operator, &ns, verb, "", "pods", sub).await,
            "the operator must not {verb} pods{}{sub}",
            if sub.is_empty() { "" } else { "/" }
        );
    }
}
