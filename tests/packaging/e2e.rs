//! End to end on the real control plane: `helm install` the chart, run the
//! operator process (this crate's binary, outside the cluster since no
//! container can run here) with the chart's ServiceAccount token, apply the
//! sample NodeMonitor, see its DaemonSet, RBAC and ConfigMap appear; delete
//! it and `helm uninstall`, and see nothing left behind.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{apply_stdin, install_crd};
use crate::support::{control_plane, pki, process::free_port};
use crate::tools::{chart_dir, docs, one, root, run, run_ok};

const RELEASE: &str = "e2e";
/// The chart's full name for release `e2e`.
const FULLNAME: &str = "e2e-fine-grained-monitor-operator";
/// The fake node.
const NODE: &str = "fgm-e2e-node";
/// How the README and NOTES.txt select a NodeMonitor's pods (then by node).
const POD_SELECTOR: &str =
    "app.kubernetes.io/name=fine-grained-monitor,app.kubernetes.io/instance=";

/// A node kwok manages (the annotation tells it so) with room for pods.
fn fake_node(name: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": { "kwok.x-k8s.io/node": "fake" },
            "labels": { "type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" },
        },
        "status": {
            "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" },
        },
    })
    .to_string()
}

/// `kubectl get -o name` lines.
fn names(mut cmd: Command) -> Vec<String> {
    run_ok(cmd.args(["-o", "name"]))
        .lines()
        .map(String::from)
        .collect()
}

/// The operator process; killed when dropped (also when the test panics).
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Operator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Polls `check` every 200 ms until it returns true, for at most `limit`.
fn eventually(what: &str, limit: Duration, operator: &Operator, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; operator log:\n{}",
            operator.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `kubectl get` as JSON, or None when the object does not exist.
fn get(kubectl: impl Fn() -> Command, args: &[&str]) -> Option<Value> {
    let out = run(kubectl().arg("get").args(args).args(["-o", "json"]));
    if out.status.success() {
        Some(serde_json::from_slice(&out.stdout).expect("kubectl JSON"))
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("NotFound") || err.contains("not found"),
            "kubectl get {args:?}: {err}"
        );
        None
    }
}

#[test]
fn helm_install_reconcile_delete_and_uninstall_leave_nothing_behind() {
    let began = Instant::now();
    let phase = |what: &str| eprintln!("e2e: {what} after {:.1?}", began.elapsed());
    let cp = control_plane();
    // The garbage collector (kube-controller-manager) removes owned children.
    // The CRD goes first: the collector learns new types by rediscovery only
    // every 30 s, and until then it cannot follow owner references to NodeMonitors.
    install_crd(cp);
    cp.start_workloads();
    // One fake node (kwok runs its pods): the DaemonSet must get a pod there,
    // found the way the README and NOTES.txt find it.
    apply_stdin(cp, &["apply", "-f", "-"], &fake_node(NODE));
    phase("control plane and CRD ready");
    let ns = "fgm-e2e";
    let kubectl = || {
        let mut c = cp.kubectl();
        c.args(["-n", ns]);
        c
    };
    // Leader election on: the operator's Lease goes through the chart's Role
    // and the chart's Lease object (so uninstall removes it).
    let notes = run_ok(
        cp.helm()
            .args(["install", RELEASE])
            .arg(chart_dir())
            .args(["--namespace", ns, "--create-namespace"])
            .args(["--set", "leaderElection.enabled=true"]),
    );
    assert!(
        notes.contains(&format!("-l {POD_SELECTOR}$NM"))
            && notes.contains("port-forward $POD 8050:8050"),
        "NOTES.txt does not show how to reach a node's viewer:\n{notes}"
    );
    let readme = crate::tools::read("README.md");
    assert!(
        readme.contains(&format!("-l {POD_SELECTOR}$NM")),
        "README.md pod lookup"
    );
    let token = run_ok(kubectl().args(["create", "token", FULLNAME, "--duration=1h"]));
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("operator.kubeconfig");
    let user = format!("    token: {}", token.trim());
    std::fs::write(&kubeconfig, pki::kubeconfig(&cp.server, &cp.pki, &user))
        .expect("write operator kubeconfig");

    // Exactly what the chart's Deployment runs (its command line, its
    // environment), with the token's rights only; the metrics port moves to a
    // free loopback port.
    let manifest = run_ok(
        cp.helm()
            .args(["get", "manifest", RELEASE, "--namespace", ns]),
    );
    let objects = docs(&manifest);
    let container = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"][0],
        "/usr/local/bin/fine-grained-monitor"
    );
    let port = free_port().expect("free port");
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .map(|a| {
            if a.starts_with("--metrics-addr=") {
                format!("--metrics-addr=127.0.0.1:{port}")
            } else {
                a
            }
        })
        .collect();
    assert!(args.contains(&"--leader-election".to_string()), "{args:?}");
    let log = dir.path().join("operator.log");
    let log_file = std::fs::File::create(&log).expect("operator log");
    let child = Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"))
        .args(&args)
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", ns)
        .env("POD_NAME", "operator-e2e")
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the operator");
    let operator = Operator { child, log };

    // The chart's probes answer on the operator's metrics port.
    for path in ["/healthz", "/readyz"] {
        eventually(
            &format!("GET {path}"),
            Duration::from_secs(60),
            &operator,
            || http_get_ok(port, path),
        );
    }

    eventually(
        "Lease held by the operator",
        Duration::from_secs(60),
        &operator,
        || {
            get(kubectl, &["lease", "fine-grained-monitor-operator"])
                .is_some_and(|l| l["spec"]["holderIdentity"].is_string())
        },
    );

    phase("operator leading");
    run_ok(
        kubectl()
            .args(["apply", "-f"])
            .arg(root().join("config/samples/nodemonitor.yaml")),
    );
    let cluster_name = format!("fine-grained-monitor:{ns}:sample");
    let namespaces_binding = format!("{cluster_name}:namespaces");
    let children: [(&str, String); 5] = [
        ("daemonset", "sample".into()),
        ("configmap", "sample".into()),
        ("serviceaccount", "fine-grained-monitor-sample".into()),
        ("clusterrolebinding", cluster_name.clone()),
        ("clusterrolebinding", namespaces_binding.clone()),
    ];
    for (kind, name) in &children {
        eventually(
            &format!("{kind} {name} created"),
            Duration::from_secs(60),
            &operator,
            || get(kubectl, &[kind, name]).is_some(),
        );
    }
    let ds = get(kubectl, &["daemonset", "sample"]).expect("daemonset");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "fine-grained-monitor-sample");
    let images: Vec<&str> = pod["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["image"].as_str().expect("image"))
        .collect();
    let image = format!(
        "ghcr.io/fine-grained-monitor/fine-grained-monitor:{}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(images.iter().all(|i| *i == image), "{images:?}");
    let cm = get(kubectl, &["configmap", "sample"]).expect("configmap");
    assert!(cm["data"]["agent.yaml"].is_string(), "{cm}");
    // Bindings of the chart's fixed roles (the operator may only bind those):
    // pods, and namespaces as the sample selects namespaces.
    for (binding, role) in [
        (&cluster_name, "fine-grained-monitor-agent"),
        (&namespaces_binding, "fine-grained-monitor-agent-namespaces"),
    ] {
        let b = get(kubectl, &["clusterrolebinding", binding]).expect("binding");
        assert_eq!(b["roleRef"]["name"], role, "{b}");
        assert_eq!(
            b["subjects"][0]["name"], "fine-grained-monitor-sample",
            "{b}"
        );
    }
    eventually(
        "NodeMonitor status observed",
        Duration::from_secs(60),
        &operator,
        || {
            get(kubectl, &["nodemonitor", "sample"]).is_some_and(|nm| {
                nm["status"]["observedGeneration"] == nm["metadata"]["generation"]
            })
        },
    );
    // The README's lookup: the NodeMonitor's pod on a given node.
    let lookup = || {
        let mut c = kubectl();
        c.args(["get", "pods", "-l", &format!("{POD_SELECTOR}sample")])
            .arg(format!("--field-selector=spec.nodeName={NODE}"));
        c
    };
    eventually(
        "monitor pod on the node",
        Duration::from_secs(60),
        &operator,
        || names(lookup()).len() == 1,
    );
    eventually(
        "NodeMonitor reports the node ready",
        Duration::from_secs(60),
        &operator,
        || {
            get(kubectl, &["nodemonitor", "sample"]).is_some_and(|nm| {
                nm["status"]["desiredNumberScheduled"] == 1 && nm["status"]["numberReady"] == 1
            })
        },
    );

    phase("NodeMonitor reconciled");
    run_ok(kubectl().args(["delete", "nodemonitor", "sample", "--wait=false"]));
    for (kind, name) in &children {
        eventually(
            &format!("{kind} {name} deleted"),
            Duration::from_secs(90),
            &operator,
            || get(kubectl, &[kind, name]).is_none(),
        );
    }
    eventually(
        "NodeMonitor deleted",
        Duration::from_secs(60),
        &operator,
        || get(kubectl, &["nodemonitor", "sample"]).is_none(),
    );
    eventually(
        "monitor pods deleted",
        Duration::from_secs(60),
        &operator,
        || names(lookup()).is_empty(),
    );
    let log = operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator lacked a permission the chart should grant:\n{log}"
    );
    drop(operator);

    phase("NodeMonitor and children deleted");
    run_ok(
        cp.helm()
            .args(["uninstall", RELEASE, "--namespace", ns, "--wait"]),
    );
    phase("helm uninstall done");
    let left = run_ok(cp.kubectl().args([
        "get",
        "deployments,services,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,configmaps,secrets,daemonsets,nodemonitors,leases,networkpolicies,validatingadmissionpolicies,validatingadmissionpolicybindings",
        "--all-namespaces",
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "name",
    ]));
    assert!(
        left.trim().is_empty(),
        "left behind after helm uninstall:\n{left}"
    );
    // The operator's own pod (kwok ran it) goes with its ReplicaSet.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = cp.kubectl();
        c.args(["get", "pods,replicasets", "--all-namespaces", "-l"])
            .arg(format!("app.kubernetes.io/instance={RELEASE}"));
        let pods = names(c);
        if pods.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind after helm uninstall: {pods:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let managed = run_ok(cp.kubectl().args([
        "get",
        "daemonsets,configmaps,serviceaccounts,clusterroles,clusterrolebindings",
        "--all-namespaces",
        "-l",
        "app.kubernetes.io/managed-by=fine-grained-monitor-operator",
        "-o",
        "name",
    ]));
    assert!(
        managed.trim().is_empty(),
        "operator children left behind:\n{managed}"
    );
    let helm_secrets = run_ok(kubectl().args(["get", "secrets", "-l", "owner=helm", "-o", "name"]));
    assert!(
        helm_secrets.trim().is_empty(),
        "release records left: {helm_secrets}"
    );
    run_ok(cp.kubectl().args(["delete", "node", NODE]));
}

/// Plain HTTP GET on 127.0.0.1:`port`; true on a 200 answer.
fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
