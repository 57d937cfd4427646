//! The kustomize install (`config/default`) against the chart: same operator,
//! same RBAC, same names.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::chart::{NAMESPACE, RELEASE, template};
use crate::tools::{docs, kubectl, named, of_kind, one, root, run_ok};

/// `kubectl kustomize <dir>` as JSON objects.
pub fn kustomize(rel: &str) -> Vec<Value> {
    docs(&run_ok(kubectl().arg("kustomize").arg(root().join(rel))))
}

/// An RBAC rule list as (group, resource, verb, resource name) tuples (name
/// empty: any): two lists grant the same rights exactly when their tuples are
/// equal, however they are grouped.
pub fn grants(rules: &Value) -> BTreeSet<(String, String, String, String)> {
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
        let mut names = strings(&rule["resourceNames"]);
        if names.is_empty() {
            names.push(String::new());
        }
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    for n in &names {
                        out.insert((g.clone(), r.clone(), v.clone(), n.clone()));
                    }
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
        grants(&named(&chart, "ClusterRole", RELEASE)["rules"]),
        grants(&declared(rbac::operator_cluster_rules())),
        "chart ClusterRole vs operator_cluster_rules() in src/operator/builders/rbac.rs"
    );
    // The roles the operator may bind are exactly the fixed roles the chart ships.
    for role in rbac::agent_cluster_roles() {
        let name = role.metadata.name.clone().expect("name");
        assert_eq!(
            grants(&named(&chart, "ClusterRole", &name)["rules"]),
            grants(&declared(role.rules.clone().unwrap_or_default())),
            "chart ClusterRole {name} vs agent_cluster_roles()"
        );
    }
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
    for name in [
        RELEASE,
        fine_grained_monitor::operator::builders::rbac::AGENT_POD_READER,
        fine_grained_monitor::operator::builders::rbac::AGENT_NAMESPACE_READER,
        // The role admins bind to users of `kubectl fgm` (docs/kubectl-fgm.md).
        fine_grained_monitor::plugin::error::USER_ROLE,
    ] {
        assert_eq!(
            grants(&named(&kust, "ClusterRole", name)["rules"]),
            grants(&named(&chart, "ClusterRole", name)["rules"]),
            "ClusterRole {name} rules of config/default and of the chart differ"
        );
    }
    assert_eq!(
        grants(&one(&kust, "Role")["rules"]),
        grants(&one(&chart, "Role")["rules"]),
        "Role rules of config/default and of the chart differ"
    );
    // The same admission policy and NetworkPolicy as the chart's defaults.
    for kind in [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "NetworkPolicy",
    ] {
        assert_eq!(
            one(&kust, kind)["spec"],
            one(&chart, kind)["spec"],
            "{kind} of config/policy and of the chart differ"
        );
    }
    for kind in [
        "ServiceAccount",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
    ] {
        let (k, c) = (one(&kust, kind), one(&chart, kind));
        assert_eq!(k["metadata"]["name"], c["metadata"]["name"], "{kind} name");
        assert_eq!(
            k["metadata"]["namespace"], c["metadata"]["namespace"],
            "{kind} namespace"
        );
    }
    // Services: the metrics one and the conversion webhook's, same names and ports.
    let services = |objects: &[Value]| {
        let mut v: Vec<(String, String, String)> = of_kind(objects, "Service")
            .iter()
            .map(|o| {
                (
                    o["metadata"]["name"].to_string(),
                    o["metadata"]["namespace"].to_string(),
                    o["spec"]["ports"].to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        services(&kust),
        services(&chart),
        "Services of config/ and of the chart differ"
    );
    assert_eq!(services(&kust).len(), 2, "metrics and webhook Services");
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
    assert_eq!(nm["apiVersion"], "fgm.dev/v1beta1");
    assert_eq!(nm["metadata"]["name"], "sample");
}
