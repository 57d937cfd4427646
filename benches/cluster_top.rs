//! `cargo bench --bench cluster_top`: `kubectl fgm top` over 20 nodes (issue #26), printed,
//! never asserted.
//!
//! Two of the 20 are the test world's real nodes (tests/support/node, root and `make images`
//! needed; `FGM_BENCH_REAL_NODES=0` leaves them out): the chart and the README's NodeMonitor
//! installed, each node's viewer reached through the API server's port-forward as `kubectl fgm`
//! reaches it, with the minutes of data the agents recorded since.
//!
//! The others are viewers over recorded data behind local listeners, in this process: one
//! node's day of 100 containers (90 s files, footer summaries, the agent's hour summaries)
//! written once with the store's writer, then hard-linked into 20 data directories, each
//! served by its own viewer (its own cache: every node starts cold). `top` asks them as it asks
//! a cluster's (`top::collect_from` over a federation, at most 16 at once) but reaches each at
//! its address, not through a port-forward: the API server's share is not in these figures.
//! All 20 viewers share this machine's cores, where a cluster gives each node its own, so the
//! cold figures are an upper bound.
//!
//! Figures: `top --since 15m` and `--since 24h`, cold (each node's first request) and warm.

#[path = "support/recorded.rs"]
mod recorded;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use fine_grained_monitor::plugin::federation::{self, FedNode, Federation, NodeFilter};
use fine_grained_monitor::plugin::forward::Reach;
use fine_grained_monitor::plugin::top::{self, Measure, TopOptions};
use fine_grained_monitor::store::hours;
use fine_grained_monitor::viewer;

const NODES: usize = 20;
const CONTAINERS: usize = 100;
const HOURS: i64 = 24;

/// Hard links of every file under `from` into `to` (same tree).
fn link_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            link_tree(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target).expect("link");
        }
    }
}

/// The chart and the README's NodeMonitor on the test world's `count` real nodes; their
/// viewers as federation nodes once each answers ready through its port-forward.
async fn real_nodes(count: usize) -> Vec<FedNode> {
    let world = support::node::world_of(count);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |mut cmd: std::process::Command, what: &str| {
        let out = cmd.current_dir(repo).output().expect(what);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut helm = world.cp.helm();
    helm.args([
        "install",
        "fine-grained-monitor-operator",
        "charts/fine-grained-monitor-operator",
        "--namespace",
        "fine-grained-monitor",
        "--create-namespace",
        "--wait",
    ]);
    run(helm, "helm install");
    let mut apply = world.cp.kubectl();
    apply.args([
        "apply",
        "-n",
        "fine-grained-monitor",
        "-f",
        "config/samples/nodemonitor-minimal.yaml",
    ]);
    run(apply, "kubectl apply NodeMonitor");
    let client = world.cp.client().await;
    let began = Instant::now();
    loop {
        let fed =
            federation::from_cluster(&client, &NodeFilter::default(), 16, Duration::from_secs(5))
                .await
                .expect("monitored nodes");
        let answers = fed.ask_all("/api/status").await;
        let ready = answers
            .iter()
            .filter(|(_, a)| a.as_ref().is_ok_and(|s| s["state"] == "ready"))
            .count();
        if ready == count && answers.len() == count {
            // A few seconds of data on each before the figures.
            tokio::time::sleep(Duration::from_secs(20)).await;
            return fed.nodes().to_vec();
        }
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "{ready} of {count} real nodes' viewers ready"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn top_of(fed: &Federation, since: Duration) -> (Duration, top::TopReport) {
    let opts = TopOptions {
        by: Measure::Cpu,
        since,
        top: 20,
        max_nodes_at_once: 16,
        node_timeout: Duration::from_secs(60),
    };
    let began = Instant::now();
    let report = top::collect_from(fed, &opts).await;
    (began.elapsed(), report)
}

fn main() {
    let root = tempfile::tempdir().expect("tempdir");
    let recorded = root.path().join("recorded");
    let end = Utc::now()
        .duration_trunc(TimeDelta::seconds(recorded::ROTATION))
        .expect("now");
    let began = Instant::now();
    recorded::overview_data(&recorded, end, CONTAINERS, HOURS);
    let summarised = hours::summarise_all(&recorded, "node-1").expect("hour summaries");
    println!(
        "data: {HOURS} h of {CONTAINERS} containers, {} files, {summarised} hour summaries, written in {:.1?}",
        HOURS * 3600 / recorded::ROTATION,
        began.elapsed()
    );
    let real = std::env::var("FGM_BENCH_REAL_NODES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(2);
    let dirs: Vec<_> = (1..=NODES - real)
        .map(|n| {
            let dir = root.path().join(format!("node-{n:02}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            link_tree(&recorded, &dir);
            dir
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let mut nodes = if real > 0 {
            real_nodes(real).await
        } else {
            Vec::new()
        };
        for (n, dir) in dirs.iter().enumerate() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut opts = viewer::Options::new(dir.clone());
            opts.poll_interval = Duration::from_secs(3600);
            tokio::spawn(viewer::serve(listener, opts, stop.clone()));
            nodes.push(FedNode {
                name: format!("node-{:02}", n + 1),
                reach: Reach::Direct(addr),
            });
        }
        println!(
            "nodes: {real} real (port-forward through the API server), {} recorded (local listeners)",
            NODES - real
        );
        let fed = Federation::new(nodes, 16, Duration::from_secs(60));
        // Each viewer loads its index before answering: wait until all say ready.
        let ready = Instant::now();
        loop {
            let answers = fed.ask_all("/api/status").await;
            if answers
                .iter()
                .all(|(_, a)| a.as_ref().is_ok_and(|s| s["state"] == "ready"))
            {
                break;
            }
            assert!(ready.elapsed() < Duration::from_secs(120), "viewers not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (name, since) in [
            ("15m", Duration::from_secs(900)),
            ("24h", Duration::from_secs(86_400)),
        ] {
            let (cold, report) = top_of(&fed, since).await;
            let (warm, _) = top_of(&fed, since).await;
            assert!(report.not_answering.is_empty(), "{:?}", report.not_answering);
            println!(
                "kubectl fgm top --since {name} over {NODES} nodes ({real} real) x {CONTAINERS} containers: cold {:.0} ms, warm {:.0} ms (first row {} at {:.3} cores; target < {})",
                cold.as_secs_f64() * 1000.0,
                warm.as_secs_f64() * 1000.0,
                report.rows.first().map_or("-", |r| r.key.as_str()),
                report.rows.first().map_or(0.0, |r| r.value),
                if name == "15m" { "3 s" } else { "10 s" },
            );
        }
        stop.cancel();
    });
}
