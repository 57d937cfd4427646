//! The control plane misbehaves under a real node while pods come and go (issue #27), in a
//! world of its own (stopping the API server would break any test beside it): the chart and
//! the README's NodeMonitor on the test world's real node, a pod created and one deleted every
//! two seconds, a steady pod running throughout. One test per fault, run one after another:
//!
//! - the API server stopped for 60 s, then started again;
//! - the API server restarted with a new serving key under the same CA;
//! - etcd compacted to its current revision.
//!
//! After each: the enricher recovers by itself (a pod created after the fault is named in
//! index.json, every pod and its events recorded once, the agent not restarted), the operator's
//! status catches up (a kwok node added after the fault is counted), no NodeMonitor child is
//! deleted or duplicated (same names and UIDs), and collection never stopped (the steady pod's
//! samples have no gap over the fault). The fault matrix in docs/reliability.md lists them.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "real_node/data.rs"]
mod data;
#[path = "real_node/install.rs"]
mod install;
#[allow(dead_code)]
#[path = "real_node/kube.rs"]
mod kube_cli;
#[path = "real_node/readme.rs"]
mod readme;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use install::{NS, install_operator, monitor_pod_on, readme_command};
use kube_cli::{apply, eventually, get, items, run_ok};
use support::ControlPlane;
use support::node::{self, NODE_NAME, World};

/// The workloads' namespace.
const APPS: &str = "fgm-churn";
/// The README's NodeMonitor (90 s files: the samples of the open interval come from its tail).
const NM: &str = "default";
/// A pod created (and the one three before deleted) this often.
const CHURN_EVERY: Duration = Duration::from_secs(2);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The world, set up once for every fault; the faults run one at a time.
struct Setup {
    world: &'static World,
    churn: Churn,
    /// The steady pod's container (short id).
    steady: String,
    /// kwok nodes added so far (the NodeMonitor's desired count is 1 + this).
    fake_nodes: AtomicUsize,
}

static SETUP: OnceLock<Setup> = OnceLock::new();
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn setup() -> &'static Setup {
    SETUP.get_or_init(|| {
        let world = node::world();
        install_operator(world, &["--set", "log.level=info\\,kube_runtime=debug"]);
        readme_command(
            world,
            &readme::command("Create a NodeMonitor", "kubectl apply"),
        );
        apply(world, &steady_pod());
        let steady = eventually(
            world,
            "the steady pod named in index.json",
            Duration::from_secs(180),
            || {
                monitor_pod_on(world, NODE_NAME)?;
                let index = data::index().ok_or("no index.json")?;
                data::indexed(&index, APPS, "steady", "c")
                    .map(|(id, _)| id)
                    .ok_or_else(|| "steady not named yet".into())
            },
        );
        Setup {
            world,
            churn: Churn::start(world),
            steady,
            fake_nodes: AtomicUsize::new(0),
        }
    })
}

fn steady_pod() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {APPS} }}\n---\n{}",
        stress_pod("steady", "{}", "0.02")
    )
}

fn churn_pod(name: &str) -> String {
    stress_pod(name, r#"{ churn: "yes" }"#, "0.01")
}

/// A pod of the stress image using `cpu` cores in the workloads' namespace.
fn stress_pod(name: &str, labels: &str, cpu: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{ name: {name}, namespace: {APPS}, labels: {labels} }}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--cpu", "{cpu}"]
"#
    )
}

/// Pods created and deleted in the background, through every fault (failures while the API is
/// down are counted and the churn goes on).
struct Churn {
    /// Pods the API server accepted: (name, accepted at, ms).
    created: Arc<Mutex<Vec<(String, i64)>>>,
    failures: Arc<AtomicUsize>,
    _stop: StopOnDrop,
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Churn {
    fn start(world: &'static World) -> Self {
        let created = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, f, s) = (created.clone(), failures.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !s.load(Ordering::Relaxed) {
                let name = format!("churn-{n}");
                let ok = kubectl_stdin(world, &["apply", "-f", "-"], &churn_pod(&name));
                if ok {
                    c.lock().unwrap().push((name, now_ms()));
                    n += 1;
                } else {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                if n >= 4 {
                    let old = format!("churn-{}", n - 4);
                    let deleted = world
                        .cp
                        .kubectl()
                        .args(["delete", "pod", "-n", APPS, &old, "--wait=false"])
                        .args(["--ignore-not-found", "--request-timeout=5s"])
                        .output()
                        .is_ok_and(|o| o.status.success());
                    if !deleted {
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(CHURN_EVERY);
            }
        });
        Self {
            created,
            failures,
            _stop: StopOnDrop(stop),
        }
    }

    /// The first pod accepted at or after `since_ms`, waiting for the churn to make one.
    fn first_after(&self, world: &World, since_ms: i64) -> String {
        eventually(
            world,
            "a churn pod accepted after the fault",
            Duration::from_secs(120),
            || {
                self.created
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(_, at)| *at >= since_ms)
                    .map(|(name, _)| name.clone())
                    .ok_or_else(|| "none yet".into())
            },
        )
    }
}

/// `kubectl ARGS` with `stdin`, within 5 s; whether it succeeded.
fn kubectl_stdin(world: &World, args: &[&str], stdin: &str) -> bool {
    use std::io::Write;
    let Ok(mut child) = world
        .cp
        .kubectl()
        .args(args)
        .arg("--request-timeout=5s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait().is_ok_and(|s| s.success())
}

/// What the operator made for NodeMonitors: kind/name → UID.
fn children(world: &World) -> BTreeMap<String, String> {
    let kinds =
        "daemonsets,configmaps,serviceaccounts,clusterroles,clusterrolebindings,roles,rolebindings";
    let managed = "app.kubernetes.io/managed-by=fine-grained-monitor-operator";
    items(world, &[kinds, "--all-namespaces", "-l", managed])
        .iter()
        .map(|o| {
            let key = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("?")
            );
            (key, o["metadata"]["uid"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// The monitor pod's UID and each container's restart count.
fn monitor_identity(world: &World) -> (String, Vec<i64>) {
    let pod = eventually(
        world,
        "the monitor pod Ready",
        Duration::from_secs(120),
        || monitor_pod_on(world, NODE_NAME),
    );
    let restarts = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(-1))
        .collect();
    (
        pod["metadata"]["uid"].as_str().unwrap().to_string(),
        restarts,
    )
}

/// Runs `fault` on the control plane and checks what must hold after it.
fn survive(what: &str, fault: impl FnOnce(&ControlPlane)) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let world = s.world;
    let children_before = children(world);
    assert!(
        children_before.keys().any(|k| k.starts_with("DaemonSet/")),
        "{children_before:?}"
    );
    let (monitor_uid, restarts) = monitor_identity(world);
    let failures_before = s.churn.failures.load(Ordering::Relaxed);

    let began = now_ms();
    let clock = Instant::now();
    fault(world.cp);
    let ended = now_ms();
    eprintln!("faults: {what}: fault over in {:.1?}", clock.elapsed());

    // The enricher recovers: pods the API server accepts after the fault are named again (a
    // churn pod lives ~8 s: one that came and went before the enricher was back may stay
    // unnamed, as the fault matrix says).
    s.churn.first_after(world, ended);
    let named_in = Instant::now();
    let fresh = eventually(
        world,
        &format!("a pod created after the fault named in index.json after: {what}"),
        Duration::from_secs(180),
        || {
            let index = data::index().ok_or("no index.json")?;
            let created = s.churn.created.lock().unwrap().clone();
            created
                .iter()
                .filter(|(_, at)| *at >= ended)
                .find(|(name, _)| data::indexed(&index, APPS, name, "c").is_some())
                .map(|(name, _)| name.clone())
                .ok_or_else(|| format!("none of {} named yet", created.len()))
        },
    );
    eprintln!(
        "figure: {what}: fault over -> a new pod ({fresh}) named in index.json: {:.1?}",
        named_in.elapsed()
    );

    // The operator's status catches up: a node added now is counted.
    let n = s.fake_nodes.fetch_add(1, Ordering::Relaxed) + 1;
    let fake = format!("fgm-fault-{n}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = world.cp.client().await;
        support::workloads::create_fake_node(&client, &fake, &[]).await;
    });
    run_ok(
        world,
        world
            .cp
            .kubectl()
            .args(["taint", "node", &fake, "kwok.x-k8s.io/node=fake:NoSchedule"]),
    );
    eventually(
        world,
        &format!("NodeMonitor status counting {fake} after: {what}"),
        Duration::from_secs(120),
        || {
            let nm = get(world, &["nodemonitor", "-n", NS, NM]).ok_or("no NodeMonitor")?;
            let status = &nm["status"];
            let wanted = 1 + n as i64;
            let ds = get(world, &["daemonset", "-n", NS, NM]).unwrap_or_default();
            let ds_status = &ds["status"];
            // The operator mirrors its DaemonSet (whose ready count is the controller-manager's
            // business): the new node is counted and both agree.
            let same = ["desiredNumberScheduled", "numberReady", "numberAvailable"]
                .iter()
                .all(|k| status[*k] == ds_status[*k]);
            if status["desiredNumberScheduled"] == wanted
                && same
                && status["observedGeneration"] == nm["metadata"]["generation"]
            {
                Ok(())
            } else {
                let logs = world
                    .cp
                    .kubectl()
                    .args([
                        "logs",
                        "-n",
                        NS,
                        "-l",
                        "app.kubernetes.io/component=operator",
                    ])
                    .args(["--tail", "80"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                Err(format!(
                    "{wanted} wanted, status {status}, DaemonSet status {ds_status}, operator log:\n{logs}"
                ))
            }
        },
    );

    // No child deleted or duplicated; the agent not restarted.
    assert_eq!(children(world), children_before, "after: {what}");
    assert_eq!(
        monitor_identity(world),
        (monitor_uid, restarts),
        "the monitor pod neither replaced nor restarted after: {what}"
    );

    // Every pod recorded once, and its events once.
    let index = data::index().unwrap();
    let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
    for c in index["containers"].as_object().unwrap().values() {
        if c["namespace"] == APPS && c["container_name"] == "c" {
            *per_pod
                .entry(c["pod_name"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = per_pod.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "pods recorded twice after {what}: {twice:?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for event in data::events() {
        assert!(
            seen.insert(event.to_string()),
            "an event recorded twice after {what}: {event}"
        );
    }

    // Collection never stopped: the steady pod's samples cover the fault without a gap.
    let until = ended + 3_000;
    let times = eventually(
        world,
        "the steady pod's samples past the fault",
        Duration::from_secs(60),
        || {
            let times: Vec<i64> = data::samples(&s.steady, "cpu_usage_usec")
                .into_iter()
                .map(|(t, _)| t)
                .filter(|t| *t >= began - 3_000 && *t <= until)
                .collect();
            if times.last().is_some_and(|t| *t >= until - 1_500) {
                Ok(times)
            } else {
                Err(format!("newest {:?}", times.last()))
            }
        },
    );
    let widest = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(i64::MAX);
    assert!(
        times.first().is_some_and(|t| *t <= began - 1_500) && widest <= 2_500,
        "collection never stopped over {what}: {} samples, widest gap {widest} ms",
        times.len()
    );
    eprintln!(
        "faults: {what}: {} samples over the fault, widest gap {widest} ms; {} churn calls refused during it",
        times.len(),
        s.churn.failures.load(Ordering::Relaxed) - failures_before
    );
}

#[test]
fn apiserver_stopped_for_a_minute_then_started() {
    survive("API server stopped for 60 s", |cp| {
        cp.stop_apiserver();
        std::thread::sleep(Duration::from_secs(60));
        cp.start_apiserver();
    });
}

#[test]
fn apiserver_restarted_with_a_new_serving_key_under_the_same_ca() {
    survive("API server restarted with a new serving key", |cp| {
        let before = std::fs::read(&cp.pki.serving_key).unwrap();
        cp.restart_apiserver_with_new_key();
        assert_ne!(std::fs::read(&cp.pki.serving_key).unwrap(), before);
    });
}

#[test]
fn etcd_compacted_to_its_current_revision() {
    survive("etcd compacted", |cp| {
        let range = cp
            .etcd_call(
                "kv/range",
                &serde_json::json!({ "key": "AA==", "limit": 1 }),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let revision = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("revision in {range}"));
        cp.etcd_call(
            "kv/compaction",
            &serde_json::json!({ "revision": revision.to_string(), "physical": true }),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    });
}
