//! Per-pod network on the real node (issue #25): a pod sends 200 MiB to another and both pods'
//! counters show it in the recorded data (tails included), the viewer's API and `/metrics`; the
//! pause process of a pod is killed and its counters neither jump nor turn into another pod's
//! or the node's; a host-network pod gets no pod network figures.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::data::{self, newest_since, samples};
use crate::kube_cli::{apply, eventually, get, run};
use crate::support::node::{NODE_NAME, World};

const NS: &str = "fgm-net";
const PAYLOAD: i64 = 200 << 20;

fn pod(name: &str, args: &str, host_network: bool) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{ name: {name}, namespace: {NS}, labels: {{ app: {name} }} }}
spec:
  nodeSelector: {{ kubernetes.io/hostname: {NODE_NAME} }}
  terminationGracePeriodSeconds: 1
  hostNetwork: {host_network}
  containers:
    - name: main
      image: localhost/fgm-stress:test
      imagePullPolicy: IfNotPresent
      args: {args}
"#
    )
}

/// The short id of a pod's sandbox, once the monitor named it (its `pod_uid` and `sandbox`).
fn sandbox_of(world: &World, pod: &str) -> String {
    crate::workloads::sandbox_named(world, NS, pod)
}

/// The value of a `/metrics` family of the pod's sandbox on `interface`.
fn scraped(body: &str, family: &str, sandbox: &str, interface: &str) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| l.contains(sandbox) && l.contains(&format!("interface=\"{interface}\"")))
        .and_then(|l| {
            l.rsplit_once('}')?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// A viewer over the node's data directory, asked `uri` as the page would.
pub fn viewer_api(uri: &str) -> Value {
    use fine_grained_monitor::viewer::{Options, Viewer};
    use tower::ServiceExt;
    let viewer = std::sync::Arc::new(Viewer::new(Options::new(data::DATA_DIR.into())));
    viewer.refresh();
    let app = fine_grained_monitor::viewer::app(viewer);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = app
            .oneshot(
                axum::http::Request::get(uri)
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 26)
            .await
            .expect("body");
        assert_eq!(status, 200, "{uri}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("JSON")
    })
}

pub fn metrics(monitor: &Value) -> String {
    use std::io::{Read, Write};
    let ip = monitor["status"]["podIP"].as_str().expect("pod IP");
    let mut s = std::net::TcpStream::connect((ip, 9810)).expect("agent /metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .expect("send the scrape");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the scrape");
    text
}

pub fn pod_network_recorded(world: &World, monitor: &Value) {
    apply(
        world,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {NS} }}\n"),
    );
    eventually(
        world,
        "fgm-net ServiceAccount",
        Duration::from_secs(60),
        || {
            get(world, &["serviceaccount", "-n", NS, "default"])
                .map(|_| ())
                .ok_or_else(|| "missing".to_string())
        },
    );
    apply(
        world,
        &pod("receiver", r#"["--net-listen", "5001"]"#, false),
    );
    apply(world, &pod("hostnet", r#"["--cpu", "0.01"]"#, true));
    let receiver_ip = eventually(world, "receiver running", Duration::from_secs(120), || {
        let p = get(world, &["pod", "-n", NS, "receiver"]).ok_or("no pod")?;
        match (p["status"]["phase"].as_str(), p["status"]["podIP"].as_str()) {
            (Some("Running"), Some(ip)) => Ok(ip.to_string()),
            _ => Err(format!("{}", p["status"]["phase"])),
        }
    });
    let receiver = sandbox_of(world, "receiver");
    let rx_before = eventually(
        world,
        "receiver's network recorded",
        Duration::from_secs(60),
        || newest_since(&receiver, "network_receive_bytes", 0).ok_or("no value yet".to_string()),
    );
    apply(
        world,
        &pod(
            "sender",
            &format!(r#"["--net-send", "{receiver_ip}:5001", "--net-bytes", "200Mi"]"#),
            false,
        ),
    );
    // The transfer's end: the sender says so.
    let sent_at = eventually(
        world,
        "sender sent 200 MiB",
        Duration::from_secs(120),
        || {
            // Not started yet: no logs, try again.
            let out = run(world.cp.kubectl().args(["logs", "-n", NS, "sender"]));
            let logs = String::from_utf8_lossy(&out.stdout).into_owned();
            if logs.contains(&format!("sent {PAYLOAD} bytes")) {
                Ok(chrono::Utc::now().timestamp_millis())
            } else {
                Err(logs)
            }
        },
    );
    let sender = sandbox_of(world, "sender");
    let started = Instant::now();
    // Within two intervals of the end (1 s samples), in the recorded data.
    let (rx_t, rx_after) = eventually(
        world,
        "receiver's bytes recorded",
        Duration::from_secs(30),
        || {
            newest_since(&receiver, "network_receive_bytes", sent_at + 2000)
                .ok_or("not yet".to_string())
        },
    );
    let grown = rx_after - rx_before.1;
    eprintln!(
        "figure: pod network: receiver +{grown} bytes for a 200 MiB payload ({:.2} % overhead), sample at end + {} ms, seen after {:.1?}",
        100.0 * (grown - PAYLOAD) as f64 / PAYLOAD as f64,
        rx_t - sent_at,
        started.elapsed()
    );
    assert!(
        (PAYLOAD..=PAYLOAD + PAYLOAD * 8 / 100).contains(&grown),
        "receiver grew by {grown}, payload {PAYLOAD}"
    );
    let tx: Vec<(i64, i64)> = samples(&sender, "network_transmit_bytes");
    let tx_grown = tx.last().expect("sender's rows").1 - tx.first().expect("sender's rows").1;
    // The sender's first sample may already hold the first bytes: its whole series at least
    // covers the payload sent after its pod started, within the header overhead.
    assert!(
        tx.last().expect("transmit samples").1 >= PAYLOAD
            && tx.last().expect("transmit samples").1 <= PAYLOAD + PAYLOAD * 8 / 100 + (1 << 20),
        "sender transmitted {} bytes in all ({tx_grown} while recorded)",
        tx.last().expect("transmit samples").1
    );
    // The viewer's API over the node's data directory (the sender's app container charts its
    // pod's network: the sandbox's rows).
    let answer = viewer_api(&format!(
        "/api/timeseries?containers={receiver}&metric=network_receive_bytes&from={}&to={}&points=10000",
        rx_before.0, rx_t
    ));
    let points = answer["series"][0]["v"].as_array().expect("series");
    let rate_sum: f64 = points.iter().filter_map(Value::as_f64).sum();
    assert!(
        rate_sum >= PAYLOAD as f64 * 0.99,
        "the viewer's per-second rates add up to the transfer: {rate_sum}"
    );
    // /metrics: the same counter on the sandbox's series, per interface.
    let body = metrics(monitor);
    let served = scraped(
        &body,
        "container_network_receive_bytes_total",
        &receiver,
        "eth0",
    )
    .expect("the receiver's eth0 on /metrics");
    assert!(
        served >= rx_after as f64,
        "/metrics {served} vs recorded {rx_after}"
    );
    assert!(
        !body
            .lines()
            .any(|l| l.starts_with("container_network_") && l.contains("interface=\"lo\"")),
        "lo is not served"
    );

    // The host-network pod: no pod network figures, anywhere.
    let hostnet = sandbox_of(world, "hostnet");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        samples(&hostnet, "network_receive_bytes").is_empty(),
        "a host-network pod's sandbox carries no pod network"
    );
    assert!(
        !body
            .lines()
            .any(|l| l.starts_with("container_network_") && l.contains(&hostnet)),
        "no network series for the host-network pod"
    );

    pause_killed(world, &receiver, rx_after);
}

/// The receiver's pause process is killed: the kubelet makes a new sandbox (a new network
/// namespace). The old series ends where it was; the new one starts from the new namespace's
/// small counters, never from another pod's or the node's.
fn pause_killed(world: &World, old_sandbox: &str, old_rx: i64) {
    let pod = get(world, &["pod", "-n", NS, "receiver"]).expect("receiver");
    let uid = pod["metadata"]["uid"].as_str().expect("uid").to_string();
    let index = data::index().expect("index");
    let full = index["containers"][old_sandbox]["full_id"]
        .as_str()
        .expect("sandbox full id")
        .to_string();
    let cgroup = world
        .container_cgroup("pids", &uid, &full)
        .expect("the sandbox's cgroup");
    let pids = std::fs::read_to_string(cgroup.join("cgroup.procs")).expect("cgroup.procs");
    for pid in pids.split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    let new_sandbox = eventually(
        world,
        "a new sandbox recorded",
        Duration::from_secs(120),
        || {
            let index = data::index().ok_or("no index")?;
            index["containers"]
                .as_object()
                .ok_or("no containers")?
                .iter()
                .find(|(id, c)| {
                    c["sandbox"] == true
                        && c["pod_uid"] == uid.as_str()
                        && id.as_str() != old_sandbox
                })
                .map(|(id, _)| id.clone())
                .ok_or_else(|| "old sandbox only".to_string())
        },
    );
    let first = eventually(
        world,
        "the new sandbox's network",
        Duration::from_secs(60),
        || {
            samples(&new_sandbox, "network_receive_bytes")
                .first()
                .copied()
                .ok_or("none yet".to_string())
        },
    );
    assert!(
        first.1 < 16 << 20,
        "the new namespace's counters start small ({}), not the old pod's ({old_rx}) or the node's",
        first.1
    );
    let old = samples(old_sandbox, "network_receive_bytes");
    assert!(
        old.windows(2).all(|w| w[1].1 >= w[0].1),
        "the old sandbox's series never jumps down"
    );
}
