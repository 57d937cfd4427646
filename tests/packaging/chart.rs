//! The Helm chart through the Go-built `helm`: lint, render, values schema.

use std::path::PathBuf;

use serde_json::Value;

use crate::tools::{
    chart_dir, crate_version, docs, files_with_ext, helm, named, of_kind, one, run, run_ok,
};

pub const RELEASE: &str = "fine-grained-monitor-operator";
pub const NAMESPACE: &str = "fine-grained-monitor";

/// The example values files: every `ci/*.yaml` of the chart.
pub fn ci_values() -> Vec<PathBuf> {
    let files = files_with_ext(&chart_dir().join("ci"), "yaml");
    assert!(!files.is_empty(), "no example values under the chart's ci/");
    files
}

/// `helm template` of the chart with extra arguments, as JSON objects.
pub fn template(extra: &[&str]) -> Vec<Value> {
    let mut cmd = helm();
    cmd.args(["template", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", NAMESPACE])
        .args(extra);
    docs(&run_ok(&mut cmd))
}

fn container(objects: &[Value]) -> &Value {
    let deployment = one(objects, "Deployment");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect()
}

#[test]
fn helm_lint_strict_passes_for_defaults_and_every_example() {
    run_ok(helm().args(["lint", "--strict"]).arg(chart_dir()));
    for values in ci_values() {
        let out = run_ok(
            helm()
                .args(["lint", "--strict"])
                .arg(chart_dir())
                .arg("--values")
                .arg(&values),
        );
        assert!(
            out.contains("0 chart(s) failed"),
            "{}: {out}",
            values.display()
        );
    }
}

#[test]
fn default_render_is_the_operator_with_least_privilege() {
    let objects = template(&[]);
    let mut kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().expect("kind"))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            // fine-grained-monitor-user, for users of `kubectl fgm`
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "NetworkPolicy",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ],
        "no NodeMonitor unless asked for"
    );
    for o in &objects {
        let scoped = !matches!(
            o["kind"].as_str(),
            Some(
                "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
        );
        if scoped {
            assert_eq!(o["metadata"]["namespace"], NAMESPACE, "{}", o["kind"]);
        }
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/version"],
            crate_version()
        );
    }
    let deployment = one(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    let sa = one(&objects, "ServiceAccount")["metadata"]["name"].clone();
    assert_eq!(pod["serviceAccountName"], sa);
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let subject = &one(&objects, binding)["subjects"][0];
        assert_eq!(subject["name"], sa, "{binding}");
        assert_eq!(subject["namespace"], NAMESPACE, "{binding}");
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = container(&objects);
    assert_eq!(
        c["image"],
        format!(
            "ghcr.io/fine-grained-monitor/fine-grained-monitor:{}",
            crate_version()
        )
    );
    assert_eq!(c["command"][0], "/usr/local/bin/fine-grained-monitor");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(c["resources"]["limits"]["memory"].is_string());
    let env: Vec<&str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter(|e| e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace")
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(env, ["POD_NAMESPACE"]);
    let args = args(&objects);
    assert!(args.contains(&"operator".to_string()), "{args:?}");
    assert!(
        args.contains(&"--metrics-addr=0.0.0.0:8080".to_string()),
        "{args:?}"
    );
    assert!(
        !args.contains(&"--leader-election".to_string()),
        "one replica: {args:?}"
    );
    assert!(
        args.contains(&format!(
            "--default-image={}",
            c["image"].as_str().expect("image")
        )),
        "the monitor pods run the operator's image: {args:?}"
    );
    assert!(
        args.contains(&"--allowed-data-roots=/var/lib/fine-grained-monitor".to_string()),
        "{args:?}"
    );
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--allowed-image-repositories")),
        "no image overrides by default: {args:?}"
    );
    // Leases only in the operator's own namespace, never cluster-wide.
    let cluster_rules = &named(&objects, "ClusterRole", RELEASE)["rules"];
    assert!(
        !cluster_rules.to_string().contains("leases"),
        "leases must not be granted cluster-wide"
    );
    assert!(
        !cluster_rules.to_string().contains('*'),
        "no wildcards: {cluster_rules}"
    );
    assert!(
        one(&objects, "Role")["rules"]
            .to_string()
            .contains("leases")
    );
}

#[test]
fn more_than_one_replica_turns_leader_election_on() {
    let objects = template(&["--set", "replicaCount=2"]);
    assert_eq!(one(&objects, "Deployment")["spec"]["replicas"], 2);
    assert!(args(&objects).contains(&"--leader-election".to_string()));
    // The release owns the Lease, so `helm uninstall` removes it.
    let lease = one(&objects, "Lease");
    assert_eq!(
        lease["metadata"]["name"],
        fine_grained_monitor::operator::LEASE_NAME
    );
    assert_eq!(lease["metadata"]["namespace"], NAMESPACE);
    let forced = template(&["--set", "leaderElection.enabled=true"]);
    assert!(args(&forced).contains(&"--leader-election".to_string()));
}

#[test]
fn optional_node_monitor_is_rendered_when_asked_for() {
    let objects = template(&[
        "--set",
        "nodeMonitor.create=true",
        "--set",
        "nodeMonitor.spec.collector.interval=2s",
    ]);
    let nm = one(&objects, "NodeMonitor");
    assert_eq!(nm["apiVersion"], "fgm.dev/v1beta1");
    assert_eq!(nm["metadata"]["name"], "default");
    assert_eq!(nm["metadata"]["namespace"], NAMESPACE);
    assert_eq!(nm["spec"]["collector"]["interval"], "2s");
}

#[test]
fn every_example_values_file_renders() {
    for values in ci_values() {
        let objects = template(&["--values", values.to_str().expect("utf-8 path")]);
        assert!(
            objects.iter().any(|o| o["kind"] == "Deployment"),
            "{}",
            values.display()
        );
    }
}

#[test]
fn values_schema_refuses_bad_values_naming_them() {
    for (set, names) in [
        ("replicaCount=-1", "replicaCount"),
        ("log.format=xml", "format"),
        ("metrics.port=70000", "port"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("policy.allowedDataRoots={/}", "allowedDataRoots"),
        ("policy.allowedDataRoots={/var/../etc}", "allowedDataRoots"),
        ("policy.allowedDataRoots={relative}", "allowedDataRoots"),
        ("networkPolicy.namespaces={Bad_NS}", "namespaces"),
        ("replicas=2", "replicas"),
    ] {
        let mut cmd = helm();
        cmd.args(["template", RELEASE])
            .arg(chart_dir())
            .args(["--set", set]);
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            stderr.contains(names),
            "--set {set}: error does not name {names}: {stderr}"
        );
    }
}

#[test]
fn chart_crd_is_installed_with_include_crds() {
    let objects = template(&["--include-crds"]);
    let crd = one(&objects, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "nodemonitors.fgm.dev");
}

/// The packaged chart (what a chart repository serves) renders the same
/// objects as the directory: .helmignore keeps nothing needed out.
#[test]
fn packaged_chart_renders_like_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    run_ok(
        helm()
            .arg("package")
            .arg(chart_dir())
            .arg("--destination")
            .arg(dir.path()),
    );
    let tgz = dir.path().join(format!(
        "fine-grained-monitor-operator-{}.tgz",
        crate_version()
    ));
    assert!(tgz.is_file(), "{} not written", tgz.display());
    let mut cmd = helm();
    cmd.args(["template", RELEASE])
        .arg(&tgz)
        .args(["--namespace", NAMESPACE, "--include-crds"]);
    let packaged = docs(&run_ok(&mut cmd));
    assert_eq!(packaged, template(&["--include-crds"]));
}

#[test]
fn policy_values_reach_the_operator_the_admission_policy_and_the_network_policy() {
    let objects = template(&[
        "--set",
        "policy.allowedDataRoots={/var/lib/fine-grained-monitor,//mnt/fast.disk/}",
        "--set",
        "policy.allowedImageRepositories={registry.example.com/fgm,mirror.example.com/team/*}",
        "--set",
        "policy.defaultImage=registry.example.com/fgm:1.2.3",
        "--set",
        "networkPolicy.namespaces={team-a,team-b}",
    ]);
    let args = args(&objects);
    for expected in [
        "--allowed-data-roots=/var/lib/fine-grained-monitor,//mnt/fast.disk/",
        "--allowed-image-repositories=registry.example.com/fgm,mirror.example.com/team/*",
        "--default-image=registry.example.com/fgm:1.2.3",
    ] {
        assert!(
            args.contains(&expected.to_string()),
            "{expected} not in {args:?}"
        );
    }
    // The operator parses exactly these flags.
    let mut argv = vec!["fine-grained-monitor".to_string()];
    argv.extend(args.iter().cloned());
    let cli = <fine_grained_monitor::cli::Cli as clap::Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("the chart's operator flags do not parse: {e}"));
    let fine_grained_monitor::cli::Mode::Operator(op) = cli.mode else {
        panic!("operator mode")
    };
    let roots: Vec<String> = op
        .allowed_data_roots
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(roots, ["/var/lib/fine-grained-monitor", "/mnt/fast.disk"]);
    assert_eq!(op.allowed_image_repositories.len(), 2);

    let vap = one(&objects, "ValidatingAdmissionPolicy");
    let expression = vap["spec"]["validations"][0]["expression"]
        .as_str()
        .expect("expression");
    assert!(
        expression.contains(r"matches(r'^/+var/+lib/+fine-grained-monitor(/.*)?$')")
            && expression.contains(r"matches(r'^/+mnt/+fast\.disk(/.*)?$')"),
        "{expression}"
    );
    assert_eq!(
        one(&objects, "ValidatingAdmissionPolicyBinding")["spec"]["policyName"],
        vap["metadata"]["name"]
    );
    let policies = of_kind(&objects, "NetworkPolicy");
    let namespaces: Vec<&str> = policies
        .iter()
        .map(|p| p["metadata"]["namespace"].as_str().expect("namespace"))
        .collect();
    assert_eq!(namespaces, ["team-a", "team-b"]);
    let rule = &policies[0]["spec"]["ingress"][0];
    assert_eq!(rule["ports"][0]["port"], "metrics");
    assert_eq!(
        rule["from"][0]["namespaceSelector"]["matchLabels"]["fgm.dev/scrape-agents"],
        "true"
    );

    let off = template(&[
        "--set",
        "policy.admissionPolicy=false",
        "--set",
        "networkPolicy.metricsFrom=null",
    ]);
    assert!(of_kind(&off, "ValidatingAdmissionPolicy").is_empty());
    let closed = one(&off, "NetworkPolicy");
    // No peer: only the operator itself (its GET /export) reaches the agents.
    let ingress = closed["spec"]["ingress"].as_array().expect("ingress");
    assert_eq!(ingress.len(), 1, "{closed}");
    assert_eq!(
        ingress[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "operator",
        "{closed}"
    );
    assert_eq!(ingress[0]["ports"][0]["port"], "metrics", "{closed}");
    let none = template(&["--set", "networkPolicy.enabled=false"]);
    assert!(of_kind(&none, "NetworkPolicy").is_empty());
}
