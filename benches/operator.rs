//! Operator benchmark against a real control plane (prints figures, asserts nothing):
//! time from creating a NodeMonitor to its DaemonSet existing (median and p99 over
//! 100 NodeMonitors, created one after another), and the operator's peak RSS.
//! The operator runs as the real binary in its own process, as in a cluster.
//!
//! `cargo bench --bench operator` (needs `tools/envtest/build.sh`). Targets
//! (issue #5): median under 200 ms, RSS under 50 MiB.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fine_grained_monitor::crd::NodeMonitor;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

const COUNT: usize = 100;

/// Kills the operator process when the benchmark ends, however it ends.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident set size (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let cp = support::control_plane();
    let admin = cp.client().await;
    cp.install_nodemonitor_crd(&admin).await;
    let ns = cp.namespace(&admin, "bench").await;
    let port = support::process::free_port().expect("free port");
    let webhook = support::process::free_port().expect("free port");
    let operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"))
            .args(["operator", "--metrics-addr", &format!("127.0.0.1:{port}")])
            // The apiserver runs on this machine: conversions on loopback.
            .args(["--webhook-addr", &format!("127.0.0.1:{webhook}")])
            .args([
                "--webhook-url",
                &format!("https://127.0.0.1:{webhook}/convert"),
            ])
            // The NodeMonitors below keep their data under this root.
            .args(["--allowed-data-roots", "/var/lib/fgm-bench"])
            .env("KUBECONFIG", &cp.kubeconfig)
            .env("FGM_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the operator binary"),
    );
    let pid = operator.0.id();

    // Record when each DaemonSet first appears.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let dss: Api<DaemonSet> = Api::namespaced(admin.clone(), &ns);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(dss, watcher::Config::default()).applied_objects());
        while let Some(Ok(ds)) = stream.next().await {
            let _ = seen_tx.send((ds.name_any(), Instant::now()));
        }
    });

    let nms: Api<NodeMonitor> = Api::namespaced(admin.clone(), &ns);
    let mut latencies = Vec::with_capacity(COUNT);
    let started = Instant::now();
    for i in 0..COUNT {
        let name = format!("nm-{i}");
        let nm: NodeMonitor = serde_json::from_value(serde_json::json!({
            "apiVersion": "fgm.dev/v1beta1", "kind": "NodeMonitor",
            "metadata": {"name": name},
            "spec": {"dataHostPath": format!("/var/lib/fgm-bench/{i}"), "nodeSelector": {"bench": "none"}},
        }))
        .expect("NodeMonitor object");
        let t0 = Instant::now();
        nms.create(&PostParams::default(), &nm)
            .await
            .expect("create");
        let seen = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match seen_rx.recv().await {
                    Some((n, at)) if n == name => break at,
                    Some(_) => continue,
                    None => panic!("DaemonSet watch ended"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no DaemonSet for {name} within 30 s"));
        latencies.push(seen.saturating_duration_since(t0));
    }
    let total = started.elapsed();
    // Let the operator settle (status writes, resyncs) before reading its peak.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = peak_rss_kib(pid);
    drop(operator);

    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("operator benchmark: {COUNT} NodeMonitors created one after another in {total:.2?}");
    println!(
        "apply -> DaemonSet created: median {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms (target: median < 200 ms)",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies[0]),
        ms(latencies[COUNT - 1]),
    );
    match rss {
        Some(kib) => println!(
            "operator peak RSS (VmHWM): {:.1} MiB (target: < 50 MiB)",
            kib as f64 / 1024.0
        ),
        None => println!("operator peak RSS: unavailable (/proc/{pid}/status unreadable)"),
    }
}
