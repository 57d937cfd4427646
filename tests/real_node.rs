//! The user's path on a real node (issue #16): `helm install` the operator chart, `kubectl
//! apply` the README's NodeMonitor, real pods recorded with their names, an OOM kill and CPU
//! throttling seen as the kernel reports them, `kubectl port-forward` to the node's viewer in a
//! real Chromium, and uninstalling leaves nothing behind.
//!
//! Runs on the test world's real node (tests/support/node): kubelet, containerd, runc and
//! kube-proxy on this machine's cgroups, the product image assembled from the release binaries
//! (`make images`). Prints the figures the README reports (lines starting `figure:`).

mod support;

#[path = "real_node/data.rs"]
mod data;
#[path = "real_node/kube.rs"]
mod kube_cli;
#[path = "real_node/readme.rs"]
mod readme;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use kube_cli::{apply, condition, container_id, eventually, get, items, pod_ready, run_ok};
use support::node::{self, NODE_NAME, World};

/// The chart's namespace and the README's NodeMonitor (config/samples/nodemonitor-minimal.yaml).
const NS: &str = "fine-grained-monitor";
const NM: &str = "default";
/// A kwok node beside the real one.
const FAKE_NODE: &str = "fgm-fake-1";
const MONITOR_SELECTOR: &str =
    "app.kubernetes.io/name=fine-grained-monitor,app.kubernetes.io/instance=default";

/// The workload pods: known names, namespaces, labels and QoS classes, on the stress image.
const WORKLOADS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: fgm-shop
  labels: { app: web, tier: frontend }
spec:
  nodeSelector: { kubernetes.io/hostname: fgm-node }
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--cpu", "0.3", "--memory", "24Mi"]
      resources:
        requests: { cpu: 50m, memory: 32Mi }
        limits: { cpu: "1", memory: 128Mi }
---
apiVersion: v1
kind: Pod
metadata:
  name: cruncher
  namespace: fgm-shop
  labels: { app: cruncher }
spec:
  nodeSelector: { kubernetes.io/hostname: fgm-node }
  terminationGracePeriodSeconds: 1
  containers:
    - name: worker
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      # Wants a whole core, may use a tenth: throttled every period.
      args: ["--cpu", "1"]
      resources:
        requests: { cpu: 100m, memory: 48Mi }
        limits: { cpu: 100m, memory: 48Mi }
---
apiVersion: v1
kind: Pod
metadata:
  name: idle
  namespace: fgm-batch
  labels: { app: idle }
spec:
  nodeSelector: { kubernetes.io/hostname: fgm-node }
  terminationGracePeriodSeconds: 1
  containers:
    - name: sleeper
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
"#;

/// A pod that grows 8 MiB a second past its 96 MiB limit: the kernel's OOM killer ends it.
const HOG: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: hog
  namespace: fgm-batch
  labels: { app: hog }
spec:
  nodeSelector: { kubernetes.io/hostname: fgm-node }
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: leak
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--memory", "512Mi", "--memory-step", "8Mi"]
      resources:
        limits: { memory: 96Mi }
"#;
const HOG_LIMIT: i64 = 96 << 20;

/// (namespace, pod, container, QoS class) of each workload container.
const EXPECTED: [(&str, &str, &str, &str); 3] = [
    ("fgm-shop", "web", "app", "Burstable"),
    ("fgm-shop", "cruncher", "worker", "Guaranteed"),
    ("fgm-batch", "idle", "sleeper", "BestEffort"),
];

fn phase(began: Instant, what: &str) {
    eprintln!("real-node: {what} after {:.1?}", began.elapsed());
}

fn figure(what: &str, value: String) {
    eprintln!("figure: {what}: {value}");
}

/// Where artifacts (the viewer screenshot) are kept: `target/test-artifacts`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// The monitor pod on the node, once Ready.
fn ready_monitor_pod(world: &World, what: &str) -> Value {
    eventually(world, what, Duration::from_secs(180), || {
        let pods = items(
            world,
            &[
                "pods",
                "-n",
                NS,
                "-l",
                MONITOR_SELECTOR,
                "--field-selector",
                &format!("spec.nodeName={NODE_NAME}"),
            ],
        );
        match pods.as_slice() {
            [pod] if pod_ready(pod) && pod["metadata"]["deletionTimestamp"].is_null() => {
                Ok(pod.clone())
            }
            _ => Err(format!(
                "{} monitor pods: {}",
                pods.len(),
                pods.iter()
                    .map(|p| format!("{} {}", p["metadata"]["name"], p["status"]["phase"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    })
}

/// `kubectl port-forward` as the README's "Reach a node's viewer" block runs it (its node name
/// and local port replaced by the test's), until the returned child is killed.
fn port_forward(world: &World) -> (Child, u16) {
    let block = readme::blocks("Reach a node's viewer")
        .into_iter()
        .find(|b| b.contains("port-forward"))
        .expect("README shows how to port-forward");
    let port = support::process::free_port().expect("free port");
    let script = block
        .replace("NODE=worker-1", &format!("NODE={NODE_NAME}"))
        .replace("8050:8050", &format!("{port}:8050"));
    assert_ne!(
        script, block,
        "the README block names NODE=worker-1 and 8050:8050"
    );
    let path = format!(
        "{}:{}",
        support::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .env("KUBECONFIG", &world.cp.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so kubectl (bash's child) is killed with it.
        .process_group(0)
        .spawn()
        .expect("start the README's port-forward");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            let err = child
                .stderr
                .take()
                .map(|mut e| {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut e, &mut s);
                    s
                })
                .unwrap_or_default();
            panic!(
                "port-forward printed nothing within 60 s: {err}\n{}",
                world.logs()
            )
        });
    assert!(line.contains("Forwarding from"), "port-forward: {line}");
    (child, port)
}

fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// Reads a cgroup file as a number.
fn cgroup_number(dir: &Path, file: &str) -> i64 {
    let path = dir.join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{} is not a number: {e}", path.display()))
}

/// The `key value` line of a memory.stat file.
fn stat_value(dir: &Path, key: &str) -> i64 {
    let text = std::fs::read_to_string(dir.join("memory.stat")).expect("memory.stat");
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// The agent's own CPU and memory, from its container's cgroup on the node (cgroup v1 here).
fn agent_footprint(world: &World, monitor: &Value) {
    let uid = monitor["metadata"]["uid"].as_str().expect("pod uid");
    let id = container_id(monitor, "agent").expect("agent container id");
    let cpu = world
        .container_cgroup("cpuacct", uid, &id)
        .expect("agent's cpuacct cgroup under /kubelet/kubepods");
    let memory = world
        .container_cgroup("memory", uid, &id)
        .expect("agent's memory cgroup under /kubelet/kubepods");
    let window = Duration::from_secs(20);
    let (t0, u0) = (Instant::now(), cgroup_number(&cpu, "cpuacct.usage"));
    let mut peak_ws = 0;
    while t0.elapsed() < window {
        let usage = cgroup_number(&memory, "memory.usage_in_bytes");
        peak_ws = peak_ws.max(usage - stat_value(&memory, "total_inactive_file "));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (t1, u1) = (t0.elapsed(), cgroup_number(&cpu, "cpuacct.usage"));
    let containers = data::index()
        .and_then(|i| i["containers"].as_object().map(|c| c.len()))
        .unwrap_or(0);
    figure(
        "agent CPU on the real node",
        format!(
            "{:.2} % of a core over {:.0?} ({containers} containers in the index, 1 s interval)",
            (u1 - u0) as f64 / t1.as_nanos() as f64 * 100.0,
            t1
        ),
    );
    figure(
        "agent memory on the real node",
        format!(
            "working set peak {:.1} MiB, usage {:.1} MiB, max usage {:.1} MiB",
            peak_ws as f64 / 1048576.0,
            cgroup_number(&memory, "memory.usage_in_bytes") as f64 / 1048576.0,
            cgroup_number(&memory, "memory.max_usage_in_bytes") as f64 / 1048576.0
        ),
    );
}

/// The index names the container after its pod, with the API's UID and QoS class, and its rows
/// are in a completed data file; returns the short id.
fn recorded(world: &World, namespace: &str, pod: &str, container: &str) -> Result<String, String> {
    let api = get(world, &["pod", "-n", namespace, pod]).ok_or("pod gone")?;
    let full = container_id(&api, container).ok_or("no container id yet")?;
    let index = data::index().ok_or("no index.json yet")?;
    let (short, entry) = data::indexed(&index, namespace, pod, container)
        .ok_or_else(|| format!("{namespace}/{pod}/{container} not named in index.json"))?;
    if entry["full_id"] != full.as_str() || !full.starts_with(&short) {
        return Err(format!(
            "index has {} for {pod}, the API {full}",
            entry["full_id"]
        ));
    }
    if entry["pod_uid"] != api["metadata"]["uid"] {
        return Err(format!(
            "pod_uid {} != {}",
            entry["pod_uid"], api["metadata"]["uid"]
        ));
    }
    if entry["qos_class"] != api["status"]["qosClass"] {
        return Err(format!(
            "qos_class {} != {}",
            entry["qos_class"], api["status"]["qosClass"]
        ));
    }
    if data::series(&short, "cpu_usage_usec").timestamps.is_empty() {
        return Err(format!(
            "no rows of {short} in {} data files",
            data::parquet_files().len()
        ));
    }
    Ok(short)
}

#[test]
fn helm_install_nodemonitor_and_port_forward_on_a_real_node() {
    let began = Instant::now();
    let world = node::world();
    phase(began, "control plane and real node ready");
    figure("node world start-up", format!("{:.1?}", world.startup));
    // A kwok node beside the real one: the monitor's DaemonSet covers both.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = world.cp.client().await;
        support::workloads::create_fake_node(&client, FAKE_NODE, &[]).await;
    });
    // Tainted, as kwok advises: ordinary pods (the operator, the workloads) stay on the real
    // node; the NodeMonitor tolerates every taint by default, so its DaemonSet covers both.
    run_ok(
        world,
        world.cp.kubectl().args([
            "taint",
            "node",
            FAKE_NODE,
            "kwok.x-k8s.io/node=fake:NoSchedule",
        ]),
    );

    // 1. The README's Helm install, verbatim; the operator pod becomes Running and Ready.
    let install = readme::command("Install with Helm", "helm install");
    run_ok(world, world.cp.helm().args(&install[1..]));
    eventually(
        world,
        "operator pod Ready",
        Duration::from_secs(180),
        || {
            let pods = items(
                world,
                &[
                    "pods",
                    "-n",
                    NS,
                    "-l",
                    "app.kubernetes.io/name=fine-grained-monitor-operator",
                ],
            );
            match pods.as_slice() {
                [pod] if pod_ready(pod) => Ok(()),
                _ => Err(format!("{pods:?}")),
            }
        },
    );
    phase(began, "operator Running and Ready");

    // 2. The README's NodeMonitor, verbatim: its pod on the real node becomes Ready, and both
    // the DaemonSet's and the NodeMonitor's status say so.
    let create = readme::command("Create a NodeMonitor", "kubectl apply");
    let applied_at = Instant::now();
    run_ok(
        world,
        world
            .cp
            .kubectl()
            .args(&create[1..])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    let monitor = ready_monitor_pod(world, "monitor pod Ready on the real node");
    figure(
        "kubectl apply NodeMonitor -> monitor pod Ready",
        format!("{:.1?}", applied_at.elapsed()),
    );
    eventually(
        world,
        "NodeMonitor status Ready 2/2 (the real node and the kwok node)",
        Duration::from_secs(60),
        || {
            let nm = get(world, &["nodemonitor", "-n", NS, NM]).ok_or("no NodeMonitor")?;
            let ready = condition(&nm, "Ready");
            if nm["status"]["numberReady"] == 2
                && nm["status"]["desiredNumberScheduled"] == 2
                && ready.as_ref().is_some_and(|(s, _)| s == "True")
            {
                Ok(())
            } else {
                Err(format!("status {}", nm["status"]))
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
    phase(began, "NodeMonitor Ready");

    // Editing the NodeMonitor rolls the pod: 5 s files, so rows show up within seconds.
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
            r#"{"spec":{"collector":{"rotation":"5s"}}}"#,
        ]),
    );
    let old_uid = monitor["metadata"]["uid"].clone();
    let monitor = eventually(
        world,
        "rolled monitor pod Ready",
        Duration::from_secs(180),
        || {
            let pod = ready_monitor_pod(world, "monitor pod Ready after the edit");
            if pod["metadata"]["uid"] == old_uid {
                Err("the old pod still runs".into())
            } else {
                Ok(pod)
            }
        },
    );
    phase(began, "monitor rolled to 5 s files");

    // 3. Workloads with known names, namespaces, labels and QoS classes.
    apply(
        world,
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: fgm-shop, labels: { team: shop } }\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: { name: fgm-batch, labels: { team: batch } }\n",
    );
    for ns in ["fgm-shop", "fgm-batch"] {
        eventually(
            world,
            &format!("{ns}/default ServiceAccount"),
            Duration::from_secs(60),
            || {
                get(world, &["serviceaccount", "-n", ns, "default"])
                    .map(|_| ())
                    .ok_or("missing".to_string())
            },
        );
    }
    let created_at = Instant::now();
    apply(world, WORKLOADS);
    let mut first_row = None;
    for (namespace, pod, container, _) in EXPECTED {
        eventually(
            world,
            &format!("{namespace}/{pod} recorded"),
            Duration::from_secs(120),
            || {
                let short = recorded(world, namespace, pod, container)?;
                if pod == "web" {
                    first_row.get_or_insert(created_at.elapsed());
                }
                Ok(short)
            },
        );
    }
    figure(
        "kubectl apply pod -> first Parquet row of its container (5 s files)",
        format!("{:.1?}", first_row.expect("web recorded")),
    );
    let index = data::index().expect("index.json");
    let (_, web) = data::indexed(&index, "fgm-shop", "web", "app").expect("web indexed");
    assert_eq!(web["labels"]["app"], "web", "{web}");
    assert_eq!(web["labels"]["tier"], "frontend", "{web}");
    // The monitor's own containers are recorded too.
    for container in ["agent", "viewer"] {
        eventually(
            world,
            &format!("monitor's {container} recorded"),
            Duration::from_secs(60),
            || {
                let pod = monitor["metadata"]["name"].as_str().unwrap_or_default();
                recorded(world, NS, pod, container)
            },
        );
    }
    phase(began, "workloads and the monitor recorded by name");

    // 4. CPU throttling as the kernel counts it: the Guaranteed pod wants 1 core, may use 0.1.
    let index = data::index().expect("index.json");
    let (cruncher, _) = data::indexed(&index, "fgm-shop", "cruncher", "worker").expect("cruncher");
    eventually(world, "cruncher throttled", Duration::from_secs(60), || {
        let throttled = data::series(&cruncher, "cpu_nr_throttled");
        let periods = data::series(&cruncher, "cpu_nr_periods");
        match (
            throttled.values.first(),
            throttled.values.last(),
            periods.values.last(),
        ) {
            (Some(a), Some(b), Some(p)) if b - a >= 10 && *p > 0 => Ok(()),
            _ => Err(format!("throttled {:?}", throttled.values)),
        }
    });

    // An OOM kill by the kernel: recorded once, its memory climbing to the limit first.
    apply(world, HOG);
    let hog_pod = eventually(world, "hog OOMKilled", Duration::from_secs(120), || {
        let pod = get(world, &["pod", "-n", "fgm-batch", "hog"]).ok_or("no pod")?;
        let reason = &pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"];
        if reason == "OOMKilled" {
            Ok(pod)
        } else {
            Err(format!("state {}", pod["status"]["containerStatuses"]))
        }
    });
    let hog_id = container_id(&hog_pod, "leak").expect("hog container id");
    eventually(
        world,
        "OOMKilled event recorded",
        Duration::from_secs(60),
        || {
            let ooms: Vec<Value> = data::events()
                .into_iter()
                .filter(|e| e["kind"] == "oom_killed" && e["pod"] == "hog")
                .collect();
            if ooms.len() == 1
                && hog_id.starts_with(ooms[0]["container_id"].as_str().unwrap_or("-"))
            {
                Ok(())
            } else {
                Err(format!("{ooms:?}"))
            }
        },
    );
    let hog_short = &hog_id[..12];
    let memory = eventually(world, "hog's memory rows", Duration::from_secs(60), || {
        let s = data::series(hog_short, "memory_current_bytes");
        if s.values.iter().any(|v| *v >= HOG_LIMIT * 8 / 10) {
            Ok(s)
        } else {
            Err(format!("{:?}", s.values))
        }
    });
    let peak = *memory.values.iter().max().expect("values");
    let first = memory.values[0];
    assert!(
        first < peak / 2 && memory.values.len() >= 5,
        "memory should climb over several samples to the limit: {:?}",
        memory.values
    );
    assert!(peak <= HOG_LIMIT, "usage {peak} above the 96 MiB limit");
    // Recorded once, also after more status updates and agent cycles.
    std::thread::sleep(Duration::from_secs(6));
    let ooms = data::events()
        .into_iter()
        .filter(|e| e["kind"] == "oom_killed" && e["pod"] == "hog")
        .count();
    assert_eq!(ooms, 1, "the OOM kill is recorded exactly once");
    phase(began, "throttling and OOM kill recorded");

    // 5. The README's port-forward, then a real Chromium finds the web pod and draws its CPU.
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core missing: `npm ci --prefix tests/browser` (`make setup` runs it)"
    );
    let (mut forward, port) = port_forward(world);
    let screenshot = artifacts().join("real-node-viewer.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check-node-viewer.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("FGM_URL", format!("http://127.0.0.1:{port}/"))
        .env("FGM_SEARCH", "web")
        .env("FGM_POD", "web")
        .env("FGM_SCREENSHOT", &screenshot)
        .env(
            "NODE_PATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules"),
        )
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser"))
        .output()
        .expect("run node (Node.js; `make test` installs it)");
    kill_group(&mut forward);
    assert!(
        out.status.success(),
        "browser check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        screenshot.is_file(),
        "screenshot kept at {}",
        screenshot.display()
    );
    phase(
        began,
        "viewer reached through port-forward, chart drawn in Chromium",
    );

    agent_footprint(world, &monitor);

    // 6. The README's uninstall: NodeMonitors first, then the chart; nothing is left behind.
    let uninstall = readme::blocks("Uninstall")
        .into_iter()
        .flat_map(|b| readme::commands(&b))
        .collect::<Vec<_>>();
    let delete_nm = uninstall
        .iter()
        .find(|c| c.starts_with("kubectl delete nodemonitors"))
        .expect("README deletes NodeMonitors");
    let words: Vec<&str> = delete_nm.split_whitespace().collect();
    run_ok(world, world.cp.kubectl().args(&words[1..]));
    let monitor_uid = monitor["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    eventually(
        world,
        "NodeMonitor children gone",
        Duration::from_secs(120),
        || {
            let left = run_ok(
                world,
                world.cp.kubectl().args([
                    "get",
                    "daemonsets,configmaps,serviceaccounts,clusterroles,clusterrolebindings,pods",
                    "--all-namespaces",
                    "-l",
                    "app.kubernetes.io/managed-by=fine-grained-monitor-operator",
                    "-o",
                    "name",
                ]),
            );
            let pods = items(world, &["pods", "-n", NS, "-l", MONITOR_SELECTOR]);
            if left.trim().is_empty() && pods.is_empty() {
                Ok(())
            } else {
                Err(format!("{left} {} pods", pods.len()))
            }
        },
    );
    // The pod's cgroups went with it on the node.
    eventually(
        world,
        "monitor pod's cgroups removed",
        Duration::from_secs(60),
        || {
            let dir = Path::new("/sys/fs/cgroup/memory/kubelet/kubepods/burstable")
                .join(format!("pod{monitor_uid}"));
            if dir.exists() {
                Err(format!("{} still there", dir.display()))
            } else {
                Ok(())
            }
        },
    );
    let helm_uninstall = uninstall
        .iter()
        .find(|c| c.starts_with("helm uninstall"))
        .expect("README uninstalls the chart");
    let words: Vec<&str> = helm_uninstall.split_whitespace().collect();
    run_ok(world, world.cp.helm().args(&words[1..]).arg("--wait"));
    eventually(world, "release gone", Duration::from_secs(120), || {
        let left = run_ok(
            world,
            world.cp.kubectl().args([
                "get",
                "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,configmaps,daemonsets,nodemonitors,leases",
                "--all-namespaces",
                "-l",
                "app.kubernetes.io/instance=fine-grained-monitor-operator",
                "-o",
                "name",
            ]),
        );
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    });
    phase(began, "uninstalled, nothing left behind");

    // 7. A NodeMonitor the chart creates, then `helm uninstall` alone: its pre-delete hook
    // deletes the NodeMonitor while the operator still runs, so nothing is left stuck.
    run_ok(
        world,
        world
            .cp
            .helm()
            .args(&install[1..])
            .args(["--set", "nodeMonitor.create=true", "--wait"]),
    );
    ready_monitor_pod(world, "the chart's NodeMonitor's pod Ready");
    run_ok(world, world.cp.helm().args(&words[1..]).arg("--wait"));
    eventually(
        world,
        "nothing left after helm uninstall",
        Duration::from_secs(120),
        || {
            let left = run_ok(
            world,
            world.cp.kubectl().args([
                "get",
                "nodemonitors,daemonsets,configmaps,serviceaccounts,roles,rolebindings,jobs,pods",
                "-n",
                NS,
                "-o",
                "name",
            ]),
        );
            let cluster = run_ok(
                world,
                world.cp.kubectl().args([
                    "get",
                    "clusterroles,clusterrolebindings",
                    "-l",
                    "app.kubernetes.io/managed-by=fine-grained-monitor-operator",
                    "-o",
                    "name",
                ]),
            );
            let left: Vec<&str> = left
                .lines()
                .chain(cluster.lines())
                // The namespace's own ServiceAccount and CA bundle are not ours.
                .filter(|l| *l != "serviceaccount/default" && *l != "configmap/kube-root-ca.crt")
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    );
    phase(
        began,
        "chart-created NodeMonitor removed by helm uninstall alone",
    );
    run_ok(
        world,
        world.cp.kubectl().args(["delete", "node", FAKE_NODE]),
    );
}
