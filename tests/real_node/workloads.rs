//! Workload pods with known names, namespaces, labels and QoS classes on the stress image, and
//! what the monitor must have recorded of them: names, pod UID, QoS, rows, throttling, an OOM
//! kill.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::data;
use crate::kube_cli::{apply, container_id, eventually, get};
use crate::support::node::{NODE_NAME, World};

/// Namespaces of the workloads, with labels.
const NAMESPACES: &str = "apiVersion: v1\nkind: Namespace\nmetadata: { name: fgm-shop, labels: { team: shop } }\n---\n\
     apiVersion: v1\nkind: Namespace\nmetadata: { name: fgm-batch, labels: { team: batch } }\n";

/// The workload pods, pinned to the real node (the kwok node is tainted too).
fn workloads() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: fgm-shop
  labels: {{ app: web, tier: frontend }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--cpu", "0.3", "--memory", "24Mi"]
      resources:
        requests: {{ cpu: 50m, memory: 32Mi }}
        limits: {{ cpu: "1", memory: 128Mi }}
---
apiVersion: v1
kind: Pod
metadata:
  name: cruncher
  namespace: fgm-shop
  labels: {{ app: cruncher }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  terminationGracePeriodSeconds: 1
  containers:
    - name: worker
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      # Wants a whole core, may use a tenth: throttled every period.
      args: ["--cpu", "1"]
      resources:
        requests: {{ cpu: 100m, memory: 48Mi }}
        limits: {{ cpu: 100m, memory: 48Mi }}
---
apiVersion: v1
kind: Pod
metadata:
  name: idle
  namespace: fgm-batch
  labels: {{ app: idle }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  terminationGracePeriodSeconds: 1
  containers:
    - name: sleeper
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
"#
    )
}

/// A pod that grows 8 MiB a second past its 96 MiB limit: the kernel's OOM killer ends it.
fn hog() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hog
  namespace: fgm-batch
  labels: {{ app: hog }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: leak
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: ["--memory", "512Mi", "--memory-step", "8Mi"]
      resources:
        limits: {{ memory: 96Mi }}
"#
    )
}
const HOG_LIMIT: i64 = 96 << 20;

/// (namespace, pod, container) of each workload container.
const EXPECTED: [(&str, &str, &str); 3] = [
    ("fgm-shop", "web", "app"),
    ("fgm-shop", "cruncher", "worker"),
    ("fgm-batch", "idle", "sleeper"),
];

/// The index names the container after its pod, with the API's UID and QoS class, and its rows
/// are in a completed data file; returns the short id.
pub fn recorded(
    world: &World,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<String, String> {
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
    for (field, want) in [
        ("pod_uid", &api["metadata"]["uid"]),
        ("qos_class", &api["status"]["qosClass"]),
    ] {
        if &entry[field] != want {
            return Err(format!("{field} {} != the API's {want}", entry[field]));
        }
    }
    if data::series(&short, "cpu_usage_usec").timestamps.is_empty() {
        return Err(format!(
            "no rows of {short} in {} data files",
            data::parquet_files().len()
        ));
    }
    Ok(short)
}

/// Runs the workloads and waits until each is recorded by name (and the monitor's own
/// containers too); returns the time from `kubectl apply` to the first row of `web`.
pub fn run_and_record(world: &World, monitor_pod: &str, monitor_ns: &str) -> Duration {
    apply(world, NAMESPACES);
    for ns in ["fgm-shop", "fgm-batch"] {
        // Pods are admitted once the controller-manager made the namespace's ServiceAccount.
        eventually(
            world,
            &format!("{ns}/default ServiceAccount"),
            Duration::from_secs(60),
            || {
                get(world, &["serviceaccount", "-n", ns, "default"])
                    .map(|_| ())
                    .ok_or_else(|| "missing".to_string())
            },
        );
    }
    let created_at = Instant::now();
    apply(world, &workloads());
    let mut first_row = None;
    for (namespace, pod, container) in EXPECTED {
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
    let index = data::index().expect("index.json");
    let (_, web) = data::indexed(&index, "fgm-shop", "web", "app").expect("web indexed");
    assert_eq!(web["labels"]["app"], "web", "{web}");
    assert_eq!(web["labels"]["tier"], "frontend", "{web}");
    for container in ["agent", "viewer"] {
        eventually(
            world,
            &format!("monitor's {container} recorded"),
            Duration::from_secs(60),
            || recorded(world, monitor_ns, monitor_pod, container),
        );
    }
    first_row.expect("web recorded")
}

/// CPU throttling as the kernel counts it: the Guaranteed pod wants 1 core, may use 0.1.
pub fn throttling_recorded(world: &World) {
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
}

fn oom_events() -> Vec<Value> {
    data::events()
        .into_iter()
        .filter(|e| e["kind"] == "oom_killed" && e["pod"] == "hog")
        .collect()
}

/// A kernel OOM kill: recorded once, its memory climbing to the limit over several samples.
pub fn oom_kill_recorded(world: &World) {
    apply(world, &hog());
    let pod = eventually(world, "hog OOMKilled", Duration::from_secs(120), || {
        let pod = get(world, &["pod", "-n", "fgm-batch", "hog"]).ok_or("no pod")?;
        let state = &pod["status"]["containerStatuses"][0]["state"];
        if state["terminated"]["reason"] == "OOMKilled" {
            Ok(pod)
        } else {
            Err(format!("state {state}"))
        }
    });
    let id = container_id(&pod, "leak").expect("hog container id");
    eventually(
        world,
        "OOMKilled event recorded",
        Duration::from_secs(60),
        || {
            let ooms = oom_events();
            match ooms.as_slice() {
                [one] if id.starts_with(one["container_id"].as_str().unwrap_or("-")) => Ok(()),
                _ => Err(format!("{ooms:?}")),
            }
        },
    );
    let memory = eventually(world, "hog's memory rows", Duration::from_secs(60), || {
        let s = data::series(&id[..12], "memory_current_bytes");
        if s.values.iter().any(|v| *v >= HOG_LIMIT * 8 / 10) {
            Ok(s)
        } else {
            Err(format!("{:?}", s.values))
        }
    });
    let peak = *memory.values.iter().max().expect("values");
    assert!(
        memory.values[0] < peak / 2 && memory.values.len() >= 5,
        "memory should climb over several samples to the limit: {:?}",
        memory.values
    );
    assert!(peak <= HOG_LIMIT, "usage {peak} above the 96 MiB limit");
    // Recorded once, also after more status updates and agent cycles.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        oom_events().len(),
        1,
        "the OOM kill is recorded exactly once"
    );
}

/// Short ids of the workload containers (they must be recorded already).
pub fn short_ids() -> Vec<String> {
    let index = data::index().expect("index.json");
    EXPECTED
        .iter()
        .map(|(ns, pod, container)| {
            data::indexed(&index, ns, pod, container)
                .unwrap_or_else(|| panic!("{ns}/{pod}/{container} indexed"))
                .0
        })
        .collect()
}

/// A pod's sandbox (pause) row carries its pod: namespace, name, UID and QoS like the pod's
/// containers, no container name, marked `sandbox` (issue #29). Returns its short id.
pub fn sandbox_named(world: &World, namespace: &str, pod: &str) -> String {
    let api = get(world, &["pod", "-n", namespace, pod]).expect("pod");
    let uid = api["metadata"]["uid"].as_str().expect("uid").to_string();
    let qos = api["status"]["qosClass"]
        .as_str()
        .expect("qosClass")
        .to_string();
    eventually(
        world,
        &format!("{namespace}/{pod}'s sandbox named after its pod"),
        Duration::from_secs(30),
        || {
            let index = data::index().ok_or("no index.json")?;
            let containers = index["containers"].as_object().ok_or("no containers")?;
            let (short, entry) = containers
                .iter()
                .find(|(_, c)| c["sandbox"] == true && c["pod_uid"] == uid.as_str())
                .ok_or("no sandbox of the pod's UID yet")?;
            if entry["namespace"] != namespace || entry["pod_name"] != pod {
                return Err(format!("sandbox entry {entry}"));
            }
            assert_eq!(entry["qos_class"], qos.as_str(), "{entry}");
            assert!(entry["container_name"].is_null(), "{entry}");
            Ok(short.clone())
        },
    )
}
