//! Shared by the enricher's tests against the real control plane: pods with
//! container statuses set through the status subresource, a fixture cgroup
//! tree whose container ids match them, an agent running on it, captured logs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fine_grained_monitor::agent::enrich::{self, EnrichConfig, Enricher, Health};
use fine_grained_monitor::agent::{
    Agent, AgentConfig, AgentHandle, DiscoveryMode, PodMetadata, SelfMetrics,
};
use fine_grained_monitor::store::events::{self, PodEvent};
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::layout;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

static IDS: AtomicU32 = AtomicU32::new(1);

/// A fresh 64-hex container id, unique in this test process.
pub fn new_id() -> String {
    let n = IDS.fetch_add(1, Ordering::Relaxed);
    // The first 12 hex digits (the short id) differ per call.
    let head = format!("{n:06x}{:06x}", std::process::id() % 0x100_0000);
    format!("{head}{}", &"0123456789abcdef".repeat(4)[..52])
}

/// A node name of its own per test, so pods of other tests never show up.
pub fn node(test: &str) -> String {
    format!("node-{test}-{}", std::process::id())
}

/// Creates a pod bound to `node` with one container per name.
pub async fn create_pod(
    client: &Client,
    ns: &str,
    name: &str,
    node: &str,
    labels: &[(&str, &str)],
    containers: &[&str],
) -> Pod {
    create_pod_requesting(client, ns, name, node, labels, containers, None).await
}

/// [`create_pod`] whose containers request `(cpu, memory)` quantities.
pub async fn create_pod_requesting(
    client: &Client,
    ns: &str,
    name: &str,
    node: &str,
    labels: &[(&str, &str)],
    containers: &[&str],
    requests: Option<(&str, &str)>,
) -> Pod {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| {
            let mut spec = json!({"name": c, "image": format!("registry.example/{c}:1")});
            if let Some((cpu, memory)) = requests {
                spec["resources"] = json!({"requests": {"cpu": cpu, "memory": memory}});
            }
            spec
        })
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": containers, "automountServiceAccountToken": false},
    }))
    .expect("pod object");
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {ns}/{name}: {e}"))
}

/// A running container's status.
pub fn running(name: &str, id: &str, restarts: i32) -> Value {
    json!({
        "name": name, "image": format!("registry.example/{name}:1"), "imageID": "",
        "ready": true, "restartCount": restarts,
        "containerID": format!("containerd://{id}"),
        "state": {"running": {"startedAt": "2026-01-02T03:04:05Z"}},
    })
}

/// Sets `status.containerStatuses` (and a phase) through the status subresource, as the kubelet does.
pub async fn set_statuses(client: &Client, ns: &str, name: &str, statuses: Vec<Value>) {
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running", "containerStatuses": statuses}})),
        )
        .await
        .unwrap_or_else(|e| panic!("patch status of {ns}/{name}: {e}"));
}

/// Polls `check` every 50 ms until it returns `Some`, panicking with `what` after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the enricher's health satisfies `want`.
pub async fn wait_health(
    enricher: &Enricher,
    what: &str,
    timeout: Duration,
    want: impl Fn(&Health) -> bool,
) -> Health {
    let mut rx = enricher.health_changes();
    let wait = async {
        loop {
            let h = rx.borrow_and_update().clone();
            if want(&h) {
                return h;
            }
            if rx.changed().await.is_err() {
                panic!("enricher gone while waiting for {what}");
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(h) => h,
        Err(_) => panic!(
            "{what}: not within {timeout:?}; health is {}",
            enricher.health()
        ),
    }
}

/// An enricher config for tests: quick retries.
pub fn enrich_config(node: &str, data_dir: &Path, kubeconfig: &Path) -> EnrichConfig {
    let mut c = EnrichConfig::new(node, data_dir);
    c.source.kubeconfig = Some(kubeconfig.to_path_buf());
    c.retry_initial = Duration::from_millis(200);
    c.retry_max = Duration::from_millis(800);
    c
}

/// A running enricher and the token that stops it.
pub struct Running {
    pub enricher: Arc<Enricher>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(config: EnrichConfig) -> Self {
        let stop = CancellationToken::new();
        let (enricher, task) = enrich::start(config, stop.clone());
        Self {
            enricher,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("enricher stops within 10 s")
            .expect("enricher task joins");
    }
}

/// Every event recorded in `data_dir`.
pub fn recorded_events(data_dir: &Path) -> Vec<PodEvent> {
    let from = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
        .expect("time")
        .to_utc();
    let to = chrono::Utc::now() + chrono::Duration::days(1);
    // Event times come from the statuses (2026-01-02) or from now.
    let read = events::read_range(data_dir, from.max(to - chrono::Duration::days(400)), to)
        .expect("events read");
    assert_eq!(read.skipped_lines, 0, "events files hold only whole lines");
    read.events
}

/// A kubelet-style (systemd, containerd) cgroup v2 tree with one scope per
/// (pod uid, container id), each with a few counters.
pub fn cgroup_tree(root: &Path, containers: &[(&str, &str)]) {
    std::fs::create_dir_all(root).expect("cgroup root");
    std::fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").expect("controllers");
    for (uid, id) in containers {
        add_container(root, uid, id);
    }
}

/// Adds one container scope to a tree made by [`cgroup_tree`] (a container started later).
pub fn add_container(root: &Path, pod_uid: &str, id: &str) {
    let dir = root
        .join("kubepods.slice/kubepods-burstable.slice")
        .join(format!(
            "kubepods-burstable-pod{}.slice",
            pod_uid.replace('-', "_")
        ))
        .join(format!("cri-containerd-{id}.scope"));
    std::fs::create_dir_all(&dir).expect("container cgroup");
    for (file, text) in [
        ("cgroup.procs", ""),
        (
            "cpu.stat",
            "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n",
        ),
        ("memory.current", "1048576\n"),
        ("pids.current", "1\n"),
    ] {
        std::fs::write(dir.join(file), text).expect("cgroup file");
    }
}

/// An agent on a fixture tree with the enricher's metadata, fast cycles.
pub fn start_agent(
    data_dir: &Path,
    cgroup_root: &Path,
    node: &str,
    pods: Option<Arc<dyn PodMetadata>>,
    metrics: SelfMetrics,
    stop: CancellationToken,
) -> AgentHandle {
    let empty_proc = data_dir.join("no-proc");
    std::fs::create_dir_all(&empty_proc).expect("empty proc root");
    let config = AgentConfig {
        data_dir: data_dir.to_path_buf(),
        node_name: node.to_string(),
        interval: Duration::from_millis(100),
        rotation: Duration::from_secs(1),
        cgroup_root: Some(cgroup_root.to_path_buf()),
        proc_root: empty_proc,
        retention_max_age: Duration::from_secs(7 * 86_400),
        retention_max_bytes: None,
        discovery: DiscoveryMode::Kubernetes,
        scope: fine_grained_monitor::agent::Scope::All,
        scan_every: 1,
        limits_every: 1,
        lock_wait: Duration::from_secs(5),
        tail_sync: Duration::from_secs(10),
        kubelet: None,
        processes: None,
    };
    Agent::start(config, pods, metrics, stop).expect("agent starts")
}

/// index.json as written so far (`None` before the first save).
pub fn read_index(data_dir: &Path) -> Option<Index> {
    Index::load(&layout::index_path(data_dir)).expect("index.json parses")
}

/// Waits until index.json names the pod of every container in `ids` (full ids).
pub async fn wait_named(what: &str, data_dir: &Path, ids: &[&str]) -> Index {
    eventually(what, Duration::from_secs(40), || {
        read_index(data_dir).filter(|i| {
            ids.iter().all(|id| {
                i.containers
                    .get(&id[..12])
                    .is_some_and(|e| e.pod_name.is_some())
            })
        })
    })
    .await
}

/// One outage seen: exactly one "unavailable" line and one "resumed" line.
pub fn assert_one_outage_one_resume(logs: &Logs) {
    for needle in ["pod metadata unavailable", "enrichment resumed"] {
        assert_eq!(logs.lines_with(needle).len(), 1, "{}", logs.text());
    }
}

/// Log output captured from the current thread (tests run on a current-thread runtime,
/// so the enricher's task logs here too).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures logs until the guard is dropped.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
