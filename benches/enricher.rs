//! Enricher figures against the real control plane (etcd + kube-apiserver from
//! tests/support; build them with `tools/envtest/build.sh`):
//!
//! - initial sync: from `enrich::start` to `synced` for 110 and for 1,000 pods
//!   on the node (2 containers each), median of several starts;
//! - container-id look-up through `PodMetadata::lookup` (what the agent calls
//!   per container per cycle), hit and miss, in ns.
//!
//! `cargo bench --bench enricher`

#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use fine_grained_monitor::agent::PodMetadata;
use fine_grained_monitor::agent::enrich::{self, EnrichConfig, Health};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const STARTS: usize = 7;
const LOOKUPS: usize = 2_000_000;

fn id(node: usize, pod: usize, container: usize) -> String {
    format!("{node:04x}{pod:06x}{container:02x}").repeat(6)[..64].to_string()
}

/// Creates `count` pods on `node`, two containers each, with running statuses.
async fn populate(client: &Client, ns: &str, node: &str, node_no: usize, count: usize) {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    futures::stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let name = format!("{node}-{i}");
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"app": format!("app-{}", i % 20), "tier": "bench",
                        "pod-template-hash": "5d4f8c7b9", "team": "observability"}},
                    "spec": {"nodeName": node, "automountServiceAccountToken": false, "containers": [
                        {"name": "app", "image": "registry.example/app:1"},
                        {"name": "sidecar", "image": "registry.example/sidecar:1"}]},
                }))
                .unwrap();
                api.create(&PostParams::default(), &pod).await.unwrap();
                let status = |c: &str, n: usize| json!({"name": c, "image": format!("registry.example/{c}:1"),
                    "imageID": "", "ready": true, "restartCount": 0,
                    "containerID": format!("containerd://{}", id(node_no, i, n)),
                    "state": {"running": {"startedAt": "2026-01-02T03:04:05Z"}}});
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": "Running",
                        "containerStatuses": [status("app", 0), status("sidecar", 1)]}})),
                )
                .await
                .unwrap();
            }
        })
        .await;
}

async fn time_to_sync(
    config: &EnrichConfig,
) -> (
    Duration,
    std::sync::Arc<enrich::Enricher>,
    CancellationToken,
) {
    let stop = CancellationToken::new();
    let began = Instant::now();
    let (enricher, _task) = enrich::start(config.clone(), stop.clone());
    let mut rx = enricher.health_changes();
    loop {
        let h = rx.borrow_and_update().clone();
        match h {
            Health::Synced => break,
            Health::Unavailable { reason, .. } => panic!("API unavailable: {reason}"),
            _ => rx.changed().await.unwrap(),
        }
    }
    (began.elapsed(), enricher, stop)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let cp = support::control_plane();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = cp.client().await;
        let ns = cp.namespace(&client, "bench").await;
        let data = tempfile::tempdir().unwrap();
        println!("enricher benchmark: kube-apiserver {} on this machine, JSON, list from the watch cache", support::KUBERNETES_VERSION);
        let mut last = None;
        for (node_no, pods) in [(1usize, 110usize), (2, 1000)] {
            let node = format!("bench-node-{pods}");
            let began = Instant::now();
            populate(&client, &ns, &node, node_no, pods).await;
            println!("  created {pods} pods on {node} in {:.1?}", began.elapsed());
            let mut config = EnrichConfig::new(&node, data.path());
            config.source.kubeconfig = Some(cp.kubeconfig.clone());
            let mut times = Vec::new();
            for _ in 0..STARTS {
                let (t, enricher, stop) = time_to_sync(&config).await;
                assert_eq!(enricher.counts(), (pods, 2 * pods), "every pod and container cached");
                times.push(t);
                stop.cancel();
                last = Some((enricher, node_no, pods));
            }
            let min = *times.iter().min().unwrap();
            println!(
                "  initial sync, {pods} pods ({} containers): median {:.1} ms, min {:.1} ms over {STARTS} starts (seed 004 asks 1-2 s for hundreds)",
                2 * pods,
                median(times.clone()).as_secs_f64() * 1e3,
                min.as_secs_f64() * 1e3
            );
        }
        let (enricher, node_no, pods) = last.unwrap();
        let ids: Vec<String> = (0..pods).flat_map(|p| [id(node_no, p, 0), id(node_no, p, 1)]).collect();
        let misses: Vec<String> = (0..1024).map(|p| id(0xfff, p, 7)).collect();
        let meta: &dyn PodMetadata = enricher.as_ref();
        for _ in 0..2 {
            let began = Instant::now();
            for i in 0..LOOKUPS {
                black_box(meta.lookup(black_box(&ids[i % ids.len()])));
            }
            let hit = began.elapsed().as_nanos() as f64 / LOOKUPS as f64;
            let began = Instant::now();
            for i in 0..LOOKUPS {
                black_box(meta.lookup(black_box(&misses[i % misses.len()])));
            }
            let miss = began.elapsed().as_nanos() as f64 / LOOKUPS as f64;
            println!(
                "  lookup with {} containers cached: hit {hit:.0} ns (Arc<PodInfo> shared), miss {miss:.0} ns (target < 1 us; seed 004 < 100 us)",
                ids.len()
            );
        }
    });
}
