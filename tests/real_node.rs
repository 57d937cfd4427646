//! The user's path on a real node (issue #16): `helm install` the operator chart, `kubectl
//! apply` the README's NodeMonitor, real pods recorded with their names, an OOM kill and CPU
//! throttling seen as the kernel reports them, `kubectl port-forward` to the node's viewer in a
//! real Chromium, and uninstalling leaves nothing behind.
//!
//! Runs on the test world's real node (tests/support/node): kubelet, containerd, runc and
//! kube-proxy on this machine's cgroups, the product image assembled from the release binaries
//! (`make images`). The README's commands are taken from its code blocks (real_node/readme.rs).
//! Prints the figures the README reports (lines starting `figure:`).
//!
//! ```text
//!  real_node.rs        the test: one phase after another on one world
//!  real_node/workloads pods of known names and QoS, what must be recorded of them
//!  real_node/viewer    the README's port-forward and Chromium
//!  real_node/footprint the agent's CPU and memory from its cgroup
//!  real_node/security  users, capabilities, listeners, a symlink escape
//!  real_node/data      index.json, Parquet rows and events on the hostPath
//!  real_node/truth     every recorded column against the host's own reading (#29)
//!  real_node/network   pod network: a 200 MiB transfer, a killed pause, host network (#25)
//!  real_node/filesystem a container's writable layer and logs from the kubelet (#25)
//!  real_node/processes a container's processes, PSS through the file capability (#25)
//!  real_node/install   the README's Helm install (shared with two_nodes.rs)
//!  real_node/kube      kubectl and helm, polling, diagnostics on failure
//! ```

mod support;

#[path = "real_node/data.rs"]
mod data;
#[path = "real_node/filesystem.rs"]
mod filesystem;
#[path = "real_node/footprint.rs"]
mod footprint;
#[path = "real_node/install.rs"]
mod install;
#[path = "real_node/kube.rs"]
mod kube_cli;
#[path = "real_node/network.rs"]
mod network;
#[path = "real_node/plugin.rs"]
mod plugin;
#[path = "real_node/processes.rs"]
mod processes;
#[path = "real_node/readme.rs"]
mod readme;
#[path = "real_node/security.rs"]
mod security;
#[path = "real_node/truth.rs"]
mod truth;
#[path = "real_node/viewer.rs"]
mod viewer;
#[path = "real_node/workloads.rs"]
mod workloads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use install::{MONITOR_SELECTOR, NS, install_operator, monitor_pod_on, readme_command};
use kube_cli::{condition, eventually, get, names, run_ok};
use support::node::{self, NODE_NAME, World};

/// The README's NodeMonitor (config/samples/nodemonitor-minimal.yaml).
const NM: &str = "default";
/// A kwok node beside the real one.
const FAKE_NODE: &str = "fgm-fake-1";

fn figure(what: &str, value: impl std::fmt::Display) {
    eprintln!("figure: {what}: {value}");
}

/// Where artifacts (the viewer screenshot) are kept: `target/test-artifacts`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// The monitor pod on the real node, once Ready (and not being replaced).
fn ready_monitor_pod(world: &World, what: &str) -> Value {
    eventually(world, what, Duration::from_secs(180), || {
        monitor_pod_on(world, NODE_NAME)
    })
}

/// A kwok node beside the real one, tainted as kwok advises: ordinary pods (the operator, the
/// workloads) stay on the real node; a NodeMonitor tolerates every taint by default.
fn add_fake_node(world: &World) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = world.cp.client().await;
        support::workloads::create_fake_node(&client, FAKE_NODE, &[]).await;
    });
    let taint = [
        "taint",
        "node",
        FAKE_NODE,
        "kwok.x-k8s.io/node=fake:NoSchedule",
    ];
    run_ok(world, world.cp.kubectl().args(taint));
}

/// The README's NodeMonitor: its pod on the real node becomes Ready, the DaemonSet's and the
/// NodeMonitor's status count both nodes.
fn create_nodemonitor(world: &World) -> Value {
    let applied_at = Instant::now();
    readme_command(
        world,
        &readme::command("Create a NodeMonitor", "kubectl apply"),
    );
    let monitor = ready_monitor_pod(world, "monitor pod Ready on the real node");
    figure(
        "kubectl apply NodeMonitor -> monitor pod Ready",
        format!("{:.1?}", applied_at.elapsed()),
    );
    eventually(
        world,
        "NodeMonitor Ready 2/2 (real and kwok node)",
        Duration::from_secs(60),
        || {
            let nm = get(world, &["nodemonitor", "-n", NS, NM]).ok_or("no NodeMonitor")?;
            let status = &nm["status"];
            let ready = condition(&nm, "Ready").is_some_and(|(s, _)| s == "True");
            if ready && status["numberReady"] == 2 && status["desiredNumberScheduled"] == 2 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        },
    );
    let ds = get(world, &["daemonset", "-n", NS, NM]).expect("DaemonSet");
    assert_eq!(ds["status"]["numberReady"], 2, "{}", ds["status"]);
    for c in monitor["status"]["containerStatuses"]
        .as_array()
        .expect("statuses")
    {
        assert_eq!(c["restartCount"], 0, "container restarted: {c}");
    }
    monitor
}

/// Editing the NodeMonitor rolls its pod: 5 s files, so rows show up within seconds.
fn roll_to_short_files(world: &World, monitor: &Value) -> Value {
    roll(
        world,
        monitor,
        r#"{"spec":{"collector":{"rotation":"5s"}}}"#,
    )
}

/// Merge-patches the NodeMonitor and waits for its rolled pod on the real node to be Ready.
fn roll(world: &World, monitor: &Value, patch: &str) -> Value {
    run_ok(
        world,
        world.cp.kubectl().args([
            "patch",
            "nodemonitor",
            NM,
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            patch,
        ]),
    );
    let old_uid = &monitor["metadata"]["uid"];
    eventually(
        world,
        "rolled monitor pod Ready",
        Duration::from_secs(180),
        || {
            let pod = ready_monitor_pod(world, "monitor pod Ready after the edit");
            if &pod["metadata"]["uid"] == old_uid {
                Err("the old pod still runs".into())
            } else {
                Ok(pod)
            }
        },
    )
}

/// The README's uninstall: NodeMonitors first (their children, pods and cgroups go), then the
/// chart; nothing of the release or the operator is left.
fn uninstall_as_readme(world: &World, monitor: &Value) -> Vec<String> {
    let commands: Vec<String> = readme::blocks("Uninstall")
        .iter()
        .flat_map(|b| readme::commands(b))
        .collect();
    let command = |prefix: &str| -> Vec<String> {
        commands
            .iter()
            .find(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("README's Uninstall has no `{prefix}`"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    readme_command(world, &command("kubectl delete nodemonitors"));
    eventually(
        world,
        "NodeMonitor children and pods gone",
        Duration::from_secs(120),
        || {
            let mut left = operator_children(world);
            left.extend(names(world, &["pods", "-n", NS, "-l", MONITOR_SELECTOR]));
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    );
    let uid = monitor["metadata"]["uid"].as_str().expect("uid");
    let cgroup =
        Path::new("/sys/fs/cgroup/memory/kubelet/kubepods/burstable").join(format!("pod{uid}"));
    eventually(
        world,
        "monitor pod's cgroups removed",
        Duration::from_secs(60),
        || {
            if cgroup.exists() {
                Err(format!("{} still there", cgroup.display()))
            } else {
                Ok(())
            }
        },
    );
    let mut helm_uninstall = command("helm uninstall");
    helm_uninstall.push("--wait".into());
    readme_command(world, &helm_uninstall);
    eventually(world, "release gone", Duration::from_secs(120), || {
        let kinds = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,\
                     clusterroles,clusterrolebindings,configmaps,daemonsets,nodemonitors,leases,jobs";
        let release = "app.kubernetes.io/instance=fine-grained-monitor-operator";
        let left = names(world, &[kinds, "--all-namespaces", "-l", release]);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    helm_uninstall
}

/// What the operator made for NodeMonitors, anywhere.
fn operator_children(world: &World) -> Vec<String> {
    let kinds = "daemonsets,configmaps,serviceaccounts,clusterroles,clusterrolebindings";
    let managed = "app.kubernetes.io/managed-by=fine-grained-monitor-operator";
    names(world, &[kinds, "--all-namespaces", "-l", managed])
}

/// A NodeMonitor the chart creates, then `helm uninstall` alone: its pre-delete hook deletes the
/// NodeMonitor while the operator still runs, so nothing is left stuck.
fn uninstall_chart_created(world: &World, helm_uninstall: &[String]) {
    install_operator(world, &["--set", "nodeMonitor.create=true", "--wait"]);
    ready_monitor_pod(world, "the chart's NodeMonitor's pod Ready");
    readme_command(world, helm_uninstall);
    eventually(
        world,
        "nothing left after helm uninstall",
        Duration::from_secs(120),
        || {
            let kinds =
                "nodemonitors,daemonsets,configmaps,serviceaccounts,roles,rolebindings,jobs,pods";
            let mut left: Vec<String> = names(world, &[kinds, "-n", NS])
                .into_iter()
                // The namespace's own ServiceAccount and CA bundle are not ours.
                .filter(|l| l != "serviceaccount/default" && l != "configmap/kube-root-ca.crt")
                .collect();
            left.extend(operator_children(world));
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    );
}

#[test]
fn helm_install_nodemonitor_and_port_forward_on_a_real_node() {
    let began = Instant::now();
    let phase = |what: &str| eprintln!("real-node: {what} after {:.1?}", began.elapsed());
    let world = node::world();
    figure("node world start-up", format!("{:.1?}", world.startup));
    add_fake_node(world);
    phase("control plane, real node and a kwok node ready");

    install_operator(world, &[]);
    phase("operator Running and Ready");
    security::symlink_escape_refused(world);
    phase("a data path escaping through a symlink refused by the kubelet");
    let monitor = create_nodemonitor(world);
    phase("NodeMonitor Ready");
    let monitor = roll_to_short_files(world, &monitor);
    phase("monitor rolled to 5 s files");

    let monitor_pod = monitor["metadata"]["name"].as_str().expect("pod name");
    let first_row = workloads::run_and_record(world, monitor_pod, NS);
    figure(
        "kubectl apply pod -> first Parquet row of its container (5 s files)",
        format!("{first_row:.1?}"),
    );
    phase("workloads and the monitor recorded by name, UID and QoS");
    let mut truth_set = workloads::short_ids();
    truth_set.push(workloads::sandbox_named(world, "fgm-shop", "web"));
    truth::agent_records_what_the_host_reads(world, &monitor, &truth_set);
    phase("every column recorded in the pod equals the host's reading and /metrics");
    security::monitor_runs_locked_down(world, &monitor);
    phase("agent as 65532 and viewer as nobody without capabilities, viewer on loopback only");
    workloads::throttling_recorded(world);
    workloads::oom_kill_recorded(world);
    phase("throttling and OOM kill recorded");
    network::pod_network_recorded(world, &monitor);
    phase("pod network: 200 MiB between pods, pause killed, host network");
    filesystem::container_filesystem_recorded(world, &monitor);
    phase("container filesystem: 128 MiB in a writable layer, from the kubelet");

    viewer::chart_in_chromium(world, "web", artifacts().join("real-node-viewer.png"));
    phase("viewer reached through port-forward, chart drawn in Chromium");
    plugin::cluster_commands_over_port_forward(world);
    plugin::cluster_view_over_port_forward(world);
    plugin::open_to_chart_in_chromium(world);
    phase("kubectl fgm top, nodes, mcp and view over the API server's port-forwards");
    for line in footprint::agent(world, &monitor, Duration::from_secs(20)) {
        eprintln!("figure: {line}");
    }
    // After the footprint: the baseline figures are with processes off.
    let monitor = processes::processes_recorded(world, &monitor);
    phase(
        "processes: 4 children at 64 MiB with PSS as 65532, a killed child's exit, /api/processes",
    );

    let helm_uninstall = uninstall_as_readme(world, &monitor);
    phase("uninstalled as the README says, nothing left behind");
    uninstall_chart_created(world, &helm_uninstall);
    phase("chart-created NodeMonitor removed by helm uninstall alone");
    run_ok(
        world,
        world.cp.kubectl().args(["delete", "node", FAKE_NODE]),
    );
}
