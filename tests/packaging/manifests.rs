//! The kustomize install (`config/default`) against the chart: same operator,
//! same RBAC, same names.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::chart::{NAMESPACE, template};
use crate::tools::{docs, kubectl, one, root, run_ok};

/// `kubectl kustomize <dir>` as JSON objects.
pub fn kustomize(rel: &str) -> Vec<Value> {
    docs(&run_ok(kubectl().arg("kustomize").arg(root().join(rel))))
}

/// An RBAC rule list as (group, resource, verb) triples: two lists grant the
/// same rights exactly when their triples are equal, however they are grouped.
pub fn grants(rules: &Value) -> BTreeSet<(String, String, String)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        assert!(
            rule.get("resourceNames").is_none(),
            "unexpected resourceNames: {rule}"
        );
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

fn container(objects: &[Value]) -> Value {
    let mut c = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0].clone();
    // Same image, reached through kustomize `images:` or the chart's appVersion.
    c.as_object_mut()
        .expect("container")
        .remove("imagePullPolicy");
    c
}

#[test]
fn chart_grants_exactly_what_the_operator_declares_it_needs() {
    use fine_grained_monitor::operator::builders::rbac;
    let chart = template(&[]);
    let declared = |rules| serde_json::to_value(rules).expect("rules as JSON");
    assert_eq!(
        grants(&one(&chart, "ClusterRole")["rules"]),
        grants(&declared(rbac::operator_cluster_rules())),
        "chart ClusterRole vs operator_cluster_rules() in src/operator/builders/rbac.rs"
    );
    assert_eq!(
        grants(&one(&chart, "Role")["rules"]),
        grants(&declared(rbac::operator_namespace_rules())),
        "chart Role vs operator_namespace_rules() in src/operator/builders/rbac.rs"
    );
}

#[test]
fn kustomize_install_has_the_charts_rbac_and_operator() {
    let kust = kustomize("config/default");
    let chart = template(&[]);
    for kind in ["ClusterRole", "Role"] {
        assert_eq!(
            grants(&one(&kust, kind)["rules"]),
            grants(&one(&chart, kind)["rules"]),
            "{kind} rules of config/default and of the chart differ"
        );
    }
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
    ] {
        let (k, c) = (one(&kust, kind), one(&chart, kind));
        assert_eq!(k["metadata"]["name"], c["metadata"]["name"], "{kind} name");
        assert_eq!(
            k["metadata"]["namespace"], c["metadata"]["namespace"],
            "{kind} namespace"
        );
    }
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        assert_eq!(
            one(&kust, kind)["subjects"],
            one(&chart, kind)["subjects"],
            "{kind} subjects"
        );
        assert_eq!(
            one(&kust, kind)["roleRef"],
            one(&chart, kind)["roleRef"],
            "{kind} roleRef"
        );
    }
    assert_eq!(container(&kust), container(&chart), "operator container");
    let pod =
        |o: &[Value]| one(o, "Deployment")["spec"]["template"]["spec"]["securityContext"].clone();
    assert_eq!(pod(&kust), pod(&chart), "pod security context");
    assert_eq!(one(&kust, "Namespace")["metadata"]["name"], NAMESPACE);
    assert_eq!(
        one(&kust, "CustomResourceDefinition")["metadata"]["name"],
        "nodemonitors.fgm.dev"
    );
}

#[test]
fn config_root_is_the_default_install() {
    assert_eq!(kustomize("config"), kustomize("config/default"));
}

#[test]
fn sample_kustomization_is_the_sample_node_monitor() {
    let objects = kustomize("config/samples");
    let nm = one(&objects, "NodeMonitor");
    assert_eq!(nm["apiVersion"], "fgm.dev/v1alpha1");
    assert_eq!(nm["metadata"]["name"], "sample");
}
