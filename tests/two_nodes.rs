//! Two real nodes (issue #26): one cluster, two kubelets and containerds on this machine, each
//! with its own network namespace, pod subnet, kubelet cgroup root (`/kubelet`, `/kubelet-2`)
//! and monitor data directory (tests/support/node). The README's Helm install and NodeMonitor
//! put a monitor pod on each; the agents find their own kubelet's cgroup root
//! (`--kubelet-cgroup-root auto`), so each records only its node's pods.
//!
//! Then, with the user's kubeconfig and the API server's port-forwards only:
//! - a Deployment's pods on both nodes: `kubectl fgm open deployment/shop` selects all of them;
//! - `kubectl fgm top --by cpu` ranks the CPU burner pinned to node 2 first, every row on the
//!   node its pod runs on, each pod once;
//! - `kubectl fgm mcp` (the official Python client): the tools listed, `top_containers` with no
//!   arguments has the burner first;
//! - Chromium on `kubectl fgm view`: the overview ranks across nodes, one chart holds containers
//!   of both nodes;
//! - node 2's viewer stopped with SIGSTOP (accepts connections, never answers): `view`, `top`
//!   and MCP list it as not answering within the node timeout while node 1 still answers.
//!
//! Prints figures (lines starting `figure:`).

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

// Shared with the other real-node tests, which use all of it.
#[allow(dead_code)]
#[path = "real_node/install.rs"]
mod install;
// Shared with real_node.rs, which uses all of it.
#[allow(dead_code)]
#[path = "real_node/kube.rs"]
mod kube_cli;
#[path = "real_node/readme.rs"]
mod readme;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use install::{MONITOR_SELECTOR, NS, install_operator, readme_command};
use kube_cli::{apply, container_id, eventually, items, pod_ready};
use support::node::{self, NODE_NAME, World};
use support::view::{self as plugin_cli, BIN};

/// The second node's name.
const NODE_2: &str = "fgm-node-2";
/// The workloads' namespace.
const APPS: &str = "fgm-two";
/// How long a node may take in the not-answering phase.
const NODE_TIMEOUT: &str = "3s";

fn figure(what: &str, value: impl std::fmt::Display) {
    eprintln!("figure: {what}: {value}");
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A Deployment spread over both nodes (one pod per node by anti-affinity) and a CPU burner
/// pinned to node 2.
fn workloads() -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{ name: {APPS} }}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{ name: shop, namespace: {APPS} }}
spec:
  replicas: 2
  selector: {{ matchLabels: {{ app: shop }} }}
  template:
    metadata: {{ labels: {{ app: shop }} }}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - labelSelector: {{ matchLabels: {{ app: shop }} }}
              topologyKey: kubernetes.io/hostname
      containers:
        - name: app
          image: localhost/fgm-stress:test
          imagePullPolicy: IfNotPresent
          args: ["--cpu", "0.2"]
          resources:
            requests: {{ cpu: 10m, memory: 16Mi }}
            limits: {{ memory: 64Mi }}
---
apiVersion: v1
kind: Pod
metadata: {{ name: burner, namespace: {APPS}, labels: {{ app: burner }} }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_2} }}
  terminationGracePeriodSeconds: 1
  containers:
    - name: burn
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--cpu", "0.7"]
      resources:
        requests: {{ cpu: 10m, memory: 16Mi }}
        limits: {{ memory: 64Mi }}
"#
    )
}

/// The README's NodeMonitor; its pods Ready on both nodes. Returns them by node.
fn monitor_pods(world: &World) -> BTreeMap<String, Value> {
    readme_command(
        world,
        &readme::command("Create a NodeMonitor", "kubectl apply"),
    );
    eventually(
        world,
        "a Ready monitor pod on each node",
        Duration::from_secs(180),
        || {
            let pods = items(world, &["pods", "-n", NS, "-l", MONITOR_SELECTOR]);
            let by_node: BTreeMap<String, Value> = pods
                .iter()
                .filter(|p| pod_ready(p) && p["metadata"]["deletionTimestamp"].is_null())
                .filter_map(|p| Some((p["spec"]["nodeName"].as_str()?.to_string(), p.clone())))
                .collect();
            if by_node.len() == 2 && pods.len() == 2 {
                Ok(by_node)
            } else {
                Err(format!(
                    "{} pods, ready on {:?}",
                    pods.len(),
                    by_node.keys()
                ))
            }
        },
    )
}

/// The workloads' pods Running and Ready: pod name → node.
fn workload_pods(world: &World) -> BTreeMap<String, String> {
    apply(world, &workloads());
    eventually(
        world,
        "the Deployment on both nodes and the burner on node 2",
        Duration::from_secs(120),
        || {
            let pods = items(world, &["pods", "-n", APPS]);
            let ready: BTreeMap<String, String> = pods
                .iter()
                .filter(|p| pod_ready(p))
                .filter_map(|p| {
                    Some((
                        p["metadata"]["name"].as_str()?.to_string(),
                        p["spec"]["nodeName"].as_str()?.to_string(),
                    ))
                })
                .collect();
            let shop_nodes: std::collections::BTreeSet<&String> = ready
                .iter()
                .filter(|(name, _)| name.starts_with("shop-"))
                .map(|(_, node)| node)
                .collect();
            if ready.len() == 3 && shop_nodes.len() == 2 {
                Ok(ready)
            } else {
                Err(format!("ready: {ready:?} of {} pods", pods.len()))
            }
        },
    )
}

/// The `identifier=<node>` directories under a data directory.
fn identifiers(data_dir: &Path) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for day in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
        for node in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = node.file_name().to_string_lossy().into_owned();
            if let Some(node) = name.strip_prefix("identifier=") {
                found.insert(node.to_string());
            }
        }
    }
    found.into_iter().collect()
}

fn plugin(world: &World, args: &[&str]) -> Value {
    let started = Instant::now();
    let out = plugin_cli::run(&world.cp.kubeconfig, args);
    let value = plugin_cli::json_of(&format!("kubectl fgm {args:?}"), &out);
    figure(
        &format!("two real nodes: kubectl fgm {}", args.join(" ")),
        format!("{:.1?}", started.elapsed()),
    );
    value
}

/// The nodes a federated answer lists as not answering.
fn silent(answer: &Value) -> Vec<String> {
    answer["not_answering"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n["node"].as_str().map(str::to_string))
        .collect()
}

/// `kubectl fgm top --by cpu`: the burner first, on node 2; every workload row on its pod's
/// node, each workload container once (one agent never records another node's pods).
fn top_ranks_the_burner_first(world: &World, pods: &BTreeMap<String, String>) {
    let top = eventually(
        world,
        "the burner first in kubectl fgm top --by cpu",
        Duration::from_secs(90),
        || {
            let top = plugin(
                world,
                &["top", "--by", "cpu", "--since", "2m", "-o", "json"],
            );
            let first = &top["rows"][0];
            // Every workload pod named (each node's agent names its pods from the API).
            let named: std::collections::BTreeSet<&str> = top["rows"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|r| r["namespace"] == APPS)
                .filter_map(|r| r["pod"].as_str())
                .collect();
            if first["pod"] == "burner" && first["node"] == NODE_2 && named.len() == pods.len() {
                Ok(top)
            } else {
                Err(format!("first row {first}, named {named:?}"))
            }
        },
    );
    assert!(silent(&top).is_empty(), "{top:#}");
    let rows = top["rows"].as_array().unwrap();
    // The workloads' own containers (a pod's sandbox, if listed, is not one of them).
    let mine: Vec<&Value> = rows
        .iter()
        .filter(|r| r["namespace"] == APPS && (r["container"] == "app" || r["container"] == "burn"))
        .collect();
    for row in &mine {
        let pod = row["pod"].as_str().unwrap();
        assert_eq!(
            row["node"].as_str(),
            pods.get(pod).map(String::as_str),
            "{pod} recorded on the node it runs on: {row}"
        );
    }
    let mut seen: Vec<&str> = mine.iter().filter_map(|r| r["pod"].as_str()).collect();
    seen.sort_unstable();
    let mut expected: Vec<&str> = pods.keys().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected, "each workload pod once: {top:#}");
}

/// `kubectl fgm open deployment/shop`: both pods selected, keyed by their nodes, and the local
/// viewer answers for them.
fn open_deployment_selects_both_nodes(world: &World, pods: &BTreeMap<String, String>) {
    let started = Instant::now();
    let open = plugin_cli::start_command(
        BIN,
        &world.cp.kubeconfig,
        &["open", "deployment/shop", "-n", APPS, "--no-browser"],
        true,
    );
    figure(
        "two real nodes: kubectl fgm open deployment/shop to its URL",
        format!("{:.1?}", started.elapsed()),
    );
    let selected: Vec<String> = open
        .url
        .split(['#', '&'])
        .find_map(|part| part.strip_prefix("c="))
        .unwrap_or_else(|| panic!("no selection in {}", open.url))
        .replace("%2F", "/")
        .replace("%2C", ",")
        .split(',')
        .map(str::to_string)
        .collect();
    let shop_nodes: Vec<&String> = pods
        .iter()
        .filter(|(name, _)| name.starts_with("shop-"))
        .map(|(_, node)| node)
        .collect();
    assert_eq!(selected.len(), 2, "{}", open.url);
    for node in shop_nodes {
        assert!(
            selected.iter().any(|k| k.starts_with(&format!("{node}/"))),
            "a shop pod on {node} in {selected:?}"
        );
    }
    let (code, list) = open.get("/api/containers");
    assert_eq!(code, 200, "{list}");
    for key in &selected {
        let row = list["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == key.as_str()))
            .unwrap_or_else(|| panic!("{key} in {list}"));
        assert_eq!(row["namespace"], APPS, "{row}");
        assert_eq!(row["container_name"], "app", "{row}");
    }
}

/// `kubectl fgm mcp`: the tools listed, `top_containers` with no arguments ranks the burner first.
fn mcp_finds_the_burner(world: &World) {
    let server = format!("{BIN} --kubeconfig {} mcp", world.cp.kubeconfig.display());
    let listed = plugin_cli::json_of("mcp tools/list", &plugin_cli::mcp_call(&server, None));
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"top_containers"), "{names:?}");
    let started = Instant::now();
    let answer = plugin_cli::json_of(
        "mcp top_containers",
        &plugin_cli::mcp_call(&server, Some("top_containers")),
    );
    figure(
        "two real nodes: kubectl fgm mcp top_containers (no arguments)",
        format!("{:.1?}", started.elapsed()),
    );
    assert_eq!(answer["is_error"], false, "{answer}");
    let first = &answer["result"]["containers"][0];
    assert_eq!(
        (first["pod"].as_str(), first["node"].as_str()),
        (Some("burner"), Some(NODE_2)),
        "{answer:#}"
    );
    assert!(silent(&answer["result"]).is_empty(), "{answer:#}");
}

/// Chromium on `kubectl fgm view`: the burner first in the CPU ranking, then one chart with the
/// burner (node 2) and node 1's shop pod.
fn chart_of_both_nodes_in_chromium(world: &World, pods: &BTreeMap<String, String>) {
    let view = plugin_cli::start(BIN, &world.cp.kubeconfig, &["--node-timeout", "5s"], true);
    let (code, list) = view.get("/api/containers");
    assert_eq!(code, 200, "{list}");
    let key_of = |pod: &str| -> String {
        list["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["pod_name"] == pod))
            .and_then(|c| c["id"].as_str())
            .unwrap_or_else(|| panic!("{pod} in {list}"))
            .to_string()
    };
    let shop_on_node_1 = pods
        .iter()
        .find(|(name, node)| name.starts_with("shop-") && node.as_str() == NODE_NAME)
        .map(|(name, _)| name.clone())
        .unwrap();
    let (hot, other) = (key_of("burner"), key_of(&shop_on_node_1));
    let browser = repo().join("tests/browser");
    let screenshot = artifacts().join("two-nodes-view.png");
    let out = Command::new("node")
        .arg(browser.join("check-cluster-view.mjs"))
        .env("FGM_URL", format!("http://{}/", view.addr))
        .env("FGM_HOT", &hot)
        .env("FGM_OTHER", &other)
        .env("FGM_SILENT", "")
        // 0.7 and 0.2 cores asked; a busy two-core machine gives less.
        .env("FGM_HOT_CORES", "0.4")
        .env("FGM_OTHER_CORES", "0.08")
        .env("FGM_SCREENSHOT", &screenshot)
        .current_dir(&browser)
        .output()
        .expect("run node (Node.js; `make test` installs it)");
    assert!(
        out.status.success(),
        "the cluster view of two real nodes in Chromium:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "two-nodes: Chromium: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

fn artifacts() -> PathBuf {
    let dir = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops a container's processes with SIGSTOP; SIGCONT when dropped (the test's failure too).
struct Stopped(Vec<String>);

impl Stopped {
    fn container(world: &World, node: &str, pod: &Value, container: &str) -> Self {
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        let id = container_id(pod, container).unwrap();
        let cgroup = world
            .node(node)
            .container_cgroup("memory", uid, &id)
            .unwrap_or_else(|| panic!("cgroup of {container} in {uid} on {node}"));
        let pids: Vec<String> = std::fs::read_to_string(cgroup.join("cgroup.procs"))
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert!(!pids.is_empty(), "{} has processes", cgroup.display());
        signal("-STOP", &pids);
        Self(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal("-CONT", &self.0);
    }
}

fn signal(which: &str, pids: &[String]) {
    let ok = Command::new("kill")
        .arg(which)
        .args(pids)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {which} {pids:?}");
}

/// Node 2's viewer stopped: `top`, `view` and MCP name it as not answering within the timeout
/// and still answer for node 1.
fn a_stopped_node_is_named_and_the_other_answers(
    world: &World,
    monitors: &BTreeMap<String, Value>,
) {
    let _stopped = Stopped::container(world, NODE_2, &monitors[NODE_2], "viewer");
    let limit = Duration::from_secs(15);

    let started = Instant::now();
    let top = plugin(
        world,
        &[
            "top",
            "--by",
            "cpu",
            "--since",
            "2m",
            "--node-timeout",
            NODE_TIMEOUT,
            "-o",
            "json",
        ],
    );
    let took = started.elapsed();
    assert_eq!(silent(&top), [NODE_2], "{top:#}");
    let rows = top["rows"].as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["node"] == NODE_NAME),
        "node 1 still answers: {top:#}"
    );
    assert!(
        took < limit,
        "top within the {NODE_TIMEOUT} node timeout: {took:?}"
    );

    let view = plugin_cli::start(
        BIN,
        &world.cp.kubeconfig,
        &["--node-timeout", NODE_TIMEOUT],
        true,
    );
    let started = Instant::now();
    let (code, status) = view.get("/api/status");
    let took = started.elapsed();
    assert_eq!(code, 200, "{status:#}");
    assert_eq!(silent(&status), [NODE_2], "{status:#}");
    assert!(took < limit, "view within the node timeout: {took:?}");
    let (code, overview) = view.get("/api/overview");
    assert_eq!(code, 200, "{overview:#}");
    assert!(
        overview["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["node"] == NODE_NAME)),
        "{overview:#}"
    );
    drop(view);

    let server = format!(
        "{BIN} --kubeconfig {} mcp --node-timeout {NODE_TIMEOUT}",
        world.cp.kubeconfig.display()
    );
    let answer = plugin_cli::json_of(
        "mcp top_containers, node 2 stopped",
        &plugin_cli::mcp_call(&server, Some("top_containers")),
    );
    let result = &answer["result"];
    assert_eq!(silent(result), [NODE_2], "{answer:#}");
    assert!(
        result["containers"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["node"] == NODE_NAME)),
        "{answer:#}"
    );
}

#[test]
fn kubectl_fgm_across_two_real_nodes() {
    let began = Instant::now();
    let phase = |what: &str| eprintln!("two-nodes: {what} after {:.1?}", began.elapsed());
    let world = node::world_of(2);
    figure("two-node world start-up", format!("{:.1?}", world.startup));
    install_operator(world, &[]);
    phase("operator Ready");
    let monitors = monitor_pods(world);
    phase("a monitor pod Ready on each node");
    let pods = workload_pods(world);
    phase("Deployment on both nodes, burner on node 2");

    top_ranks_the_burner_first(world, &pods);
    phase("kubectl fgm top: the burner on node 2 first, every pod on its own node once");
    // Each node's agent wrote its own data directory, named after its node only.
    assert_eq!(identifiers(Path::new(node::DATA_DIR)), [NODE_NAME]);
    assert_eq!(identifiers(&world.node(NODE_2).spec.data_dir), [NODE_2]);
    open_deployment_selects_both_nodes(world, &pods);
    phase("kubectl fgm open deployment/shop: both nodes' pods selected");
    mcp_finds_the_burner(world);
    phase("kubectl fgm mcp: top_containers with no arguments, the burner first");
    chart_of_both_nodes_in_chromium(world, &pods);
    phase("Chromium: cross-node overview and a chart of both nodes");
    a_stopped_node_is_named_and_the_other_answers(world, &monitors);
    phase("node 2's viewer stopped: named as not answering in top, view and mcp");
    // Its viewer goes on once continued.
    let status = plugin(world, &["nodes", "-o", "json"]);
    let node_2 = status["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == NODE_2))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(node_2["not_answering"].is_null(), "{node_2}");
}
