//! Every object the chart (defaults and every example values file), the
//! kustomize install and the samples produce is accepted by a real
//! kube-apiserver (server-side dry run: admission, schema and CEL rules run,
//! nothing is stored).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::chart::ci_values;
use crate::manifests::kustomize;
use crate::support::{ControlPlane, control_plane};
use crate::tools::{chart_dir, read, root, run_ok};

/// Installs the NodeMonitor CRD from `crds/` and waits until it is served.
pub fn install_crd(cp: &ControlPlane) {
    run_ok(
        cp.kubectl()
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(root().join("crds/nodemonitors.fgm.dev.yaml")),
    );
    run_ok(cp.kubectl().args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/nodemonitors.fgm.dev",
    ]));
}

/// Creates a namespace (idempotent).
pub fn ensure_namespace(cp: &ControlPlane, name: &str) {
    let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n");
    apply_stdin(cp, &["apply", "--server-side", "-f", "-"], &manifest);
}

/// Runs kubectl with `manifest` on standard input; fails with kubectl's output.
pub fn apply_stdin(cp: &ControlPlane, args: &[&str], manifest: &str) -> String {
    let mut child = cp
        .kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("write manifest to kubectl");
    let out = child.wait_with_output().expect("kubectl output");
    assert!(
        out.status.success(),
        "kubectl {args:?} refused:\n{}\n--- manifest ---\n{manifest}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Server-side dry run of a manifest stream; returns what kubectl printed.
fn dry_run(cp: &ControlPlane, namespace: &str, manifest: &str) -> String {
    apply_stdin(
        cp,
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "-n",
            namespace,
            "-f",
            "-",
        ],
        manifest,
    )
}

fn helm_template(cp: &ControlPlane, namespace: &str, values: Option<&std::path::Path>) -> String {
    let mut cmd: Command = cp.helm();
    cmd.args(["template", "fine-grained-monitor-operator"])
        .arg(chart_dir())
        .args(["--namespace", namespace]);
    if let Some(v) = values {
        cmd.arg("--values").arg(v);
    }
    run_ok(&mut cmd)
}

#[test]
fn every_rendered_object_is_accepted_by_the_apiserver() {
    let cp = control_plane();
    install_crd(cp);
    let ns = "fgm-dry-run";
    ensure_namespace(cp, ns);
    let mut renders = vec![("default values".to_string(), helm_template(cp, ns, None))];
    for values in ci_values() {
        renders.push((
            values.display().to_string(),
            helm_template(cp, ns, Some(&values)),
        ));
    }
    for (what, manifest) in &renders {
        let out = dry_run(cp, ns, manifest);
        for kind in [
            "deployment.apps",
            "clusterrole.rbac",
            "role.rbac",
            "serviceaccount",
        ] {
            assert!(out.contains(kind), "{what}: {kind} missing from:\n{out}");
        }
        if what.contains("nodemonitor") {
            assert!(out.contains("nodemonitor.fgm.dev"), "{what}: {out}");
        }
    }
    // The samples pass the CRD's schema and CEL rules.
    for sample in [
        "config/samples/nodemonitor.yaml",
        "config/samples/nodemonitor-minimal.yaml",
    ] {
        let out = dry_run(cp, ns, &read(sample));
        assert!(out.contains("nodemonitor.fgm.dev"), "{sample}: {out}");
    }
}

#[test]
fn kustomize_install_is_accepted_by_the_apiserver() {
    let cp = control_plane();
    install_crd(cp);
    // Its own namespace must exist for a dry run of the objects inside it.
    ensure_namespace(cp, "fine-grained-monitor");
    let objects = kustomize("config/default");
    let manifest: String = objects
        .iter()
        .map(|o| format!("---\n{}\n", serde_json::to_string(o).expect("JSON")))
        .collect();
    let out = dry_run(cp, "fine-grained-monitor", &manifest);
    for kind in [
        "customresourcedefinition.apiextensions.k8s.io/nodemonitors.fgm.dev",
        "deployment.apps/fine-grained-monitor-operator",
        "clusterrole.rbac.authorization.k8s.io/fine-grained-monitor-operator",
        "role.rbac.authorization.k8s.io/fine-grained-monitor-operator",
        "service/fine-grained-monitor-operator-metrics",
    ] {
        assert!(out.contains(kind), "{kind} missing from:\n{out}");
    }
}

/// The operator pod meets the `restricted` Pod Security Standard: a pod made
/// from the chart's Deployment template is admitted in a namespace enforcing
/// it, and the same pod without the chart's security contexts is refused (so
/// the enforcement is really on).
#[test]
fn operator_pod_passes_restricted_pod_security() {
    let cp = control_plane();
    let ns = "fgm-restricted";
    let manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n"
    );
    apply_stdin(cp, &["apply", "--server-side", "-f", "-"], &manifest);
    let objects = crate::tools::docs(&helm_template(cp, ns, None));
    let template = &crate::tools::one(&objects, "Deployment")["spec"]["template"];
    let pod = |spec: &serde_json::Value| {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "operator-pod-security", "namespace": ns },
            "spec": spec,
        })
        .to_string()
    };
    // Admission looks the pod's ServiceAccount up: create the chart's.
    let sa = serde_json::to_string(crate::tools::one(&objects, "ServiceAccount")).expect("JSON");
    apply_stdin(cp, &["apply", "--server-side", "-f", "-"], &sa);
    let out = dry_run(cp, ns, &pod(&template["spec"]));
    assert!(out.contains("pod/operator-pod-security"), "{out}");

    let mut loose = template["spec"].clone();
    loose
        .as_object_mut()
        .expect("pod spec")
        .remove("securityContext");
    loose["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("securityContext");
    let refused = cp
        .kubectl()
        .args(["apply", "--dry-run=server", "-n", ns, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(pod(&loose).as_bytes())?;
            child.wait_with_output()
        })
        .expect("run kubectl");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("violates PodSecurity"),
        "a pod without the chart's security contexts was not refused: {err}"
    );
}
