//! The agent's Prometheus endpoint over a real loopback socket, checked by
//! Prometheus' own parsers: `promtool check metrics` (text format + lint) and
//! `promtool tsdb create-blocks-from openmetrics` (the OpenMetrics parser).

mod metrics_support;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fine_grained_monitor::agent::contract::{ContainerSample, Cycle, PodInfo, PodMetadata};
use fine_grained_monitor::agent::prometheus::{
    EnrichmentState, EnrichmentStatus, MetricsState, SelfMetrics, serve,
};
use fine_grained_monitor::store::schema::METRICS;
use metrics_support::{http_get, run_promtool};
use tokio_util::sync::CancellationToken;

/// The Go-built promtool; a missing one fails the test naming the build command.
fn promtool() -> std::path::PathBuf {
    support::find_bin("promtool").unwrap_or_else(|e| panic!("{e}"))
}

struct Pods;

impl PodMetadata for Pods {
    fn lookup(&self, full_container_id: &str) -> Option<Arc<PodInfo>> {
        full_container_id.starts_with("aaaa").then(|| {
            Arc::new(PodInfo {
                pod_name: "web-0".into(),
                namespace: "shop".into(),
                pod_uid: "0b8f-uid".into(),
                labels: BTreeMap::from([("app".into(), "web".into())]),
                container_name: "nginx \"edge\"".into(),
                image: Some("registry.example/nginx:1.27@sha256:abc".into()),
                host_network: false,
                requests: None,
            })
        })
    }
}

fn container(prefix: &str, path: &str, base: i64) -> ContainerSample {
    ContainerSample {
        short_id: format!("{prefix}11112222"),
        full_id: format!("{prefix}11112222{}", "3".repeat(52)),
        cgroup_path: path.into(),
        values: (0..METRICS.len())
            .map(|i| Some(base + 1_234_567 * i as i64))
            .collect(),
        pod_uid: None,
        sandbox: false,
        devices: Vec::new(),
    }
}

async fn start() -> (std::net::SocketAddr, SelfMetrics, CancellationToken) {
    let mut limited = container(
        "aaaa",
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b8f.slice/cri-containerd-aaaa11112222.scope",
        5,
    );
    // Unlimited memory and no PSI: the cases cAdvisor renders specially.
    limited.values[fine_grained_monitor::store::schema::metric_index("cpu_pressure_full_usec")
        .unwrap_or_default()] = None;
    let mut other = container("bbbb", "kubepods/besteffort/podx/bbbb11112222", 99);
    other.values[fine_grained_monitor::store::schema::metric_index("memory_limit_bytes")
        .unwrap_or_default()] = None;
    let cycle = Cycle {
        timestamp: Some(Utc::now()),
        containers: vec![limited, other],
        network: Vec::new(),
        processes: Vec::new(),
    };
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(cycle));
    // The sender lives as long as the test: keep it in a leaked task-free Box.
    Box::leak(Box::new(tx));
    let self_metrics = SelfMetrics::new();
    self_metrics.cycle_done(Duration::from_millis(4), false, 2);
    self_metrics.cycle_done(Duration::from_millis(1200), true, 2);
    self_metrics.read_error("not_found");
    self_metrics.file_written(4096);
    self_metrics.retention_deleted("age");
    self_metrics.pod_event("oom_killed", true);
    self_metrics.pod_event("oom_killed", false);
    self_metrics.set_enrichment(EnrichmentStatus {
        state: EnrichmentState::synced,
        reason: None,
        pods: 1,
    });
    let state = MetricsState {
        cycles: rx,
        pods: Some(Arc::new(Pods)),
        self_metrics: self_metrics.clone(),
        stale_after: Duration::from_secs(30),
        started: Utc::now(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, state, Default::default(), stop.clone()));
    (addr, self_metrics, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_exposition_passes_promtool_check_and_lint() {
    let (addr, _m, stop) = start().await;
    let resp = http_get(addr, "/metrics", None).unwrap_or_else(|e| panic!("scrape: {e}"));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = resp.body;
    // Every family, labels of a known pod, escaped quotes.
    assert!(body.contains("container=\"nginx \\\"edge\\\"\""), "{body}");
    assert!(body.contains("namespace=\"shop\",pod=\"web-0\""), "{body}");
    assert!(body.contains("fgm_agent_late_cycles_total 1\n"), "{body}");
    let (code, stdout, stderr) = run_promtool(&promtool(), &["check", "metrics"], &body);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "", ""),
        "promtool check metrics found problems in\n{body}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_exposition_parses_with_prometheus_openmetrics_parser() {
    let (addr, _m, stop) = start().await;
    let accept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    let full = http_get(addr, "/metrics", Some(accept)).unwrap_or_else(|e| panic!("scrape: {e}"));
    assert_eq!(
        full.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(full.body.ends_with("# EOF\n"));
    assert_eq!(full.body.matches("# EOF").count(), 1);

    // The backfill importer uses Prometheus' OpenMetrics parser and needs a
    // timestamp on every sample: the container families have them.
    let one = http_get(addr, "/metrics?container=aaaa11112222", Some(accept))
        .unwrap_or_else(|e| panic!("scrape: {e}"));
    assert_eq!(one.status, 200);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("exposition.om");
    std::fs::write(&input, &one.body).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("blocks");
    let (code, stdout, stderr) = run_promtool(
        &promtool(),
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            &input.to_string_lossy(),
            &out.to_string_lossy(),
        ],
        "",
    );
    assert_eq!(
        code, 0,
        "OpenMetrics rejected:\n{stdout}\n{stderr}\n{}",
        one.body
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_index_and_bad_requests_over_http() {
    let (addr, _m, stop) = start().await;
    let h = http_get(addr, "/healthz", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.status, 200);
    assert!(
        h.body.contains("\"enrichment\":{\"state\":\"synced\""),
        "{}",
        h.body
    );
    let bad =
        http_get(addr, "/metrics?container=%2e%2e%2f", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let idx = http_get(addr, "/", Some("text/html")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(idx.status, 200);
    assert!(idx.body.contains("<a href=\"/healthz\">"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agent_exposition_passes_promtool() {
    let run = metrics_support::agent_run::AgentRun::start(
        4,
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_millis(30),
    )
    .await;
    let addr = run.addr;
    let mut body = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let resp = tokio::task::spawn_blocking(move || http_get(addr, "/metrics", None))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("scrape: {e}"));
        if resp.body.contains("container_cpu_usage_seconds_total{") {
            body = resp.body;
            break;
        }
    }
    assert!(
        !body.is_empty(),
        "the agent never published a cycle with containers"
    );
    assert!(body.contains("fgm_agent_cycles_total "), "{body}");
    let (code, stdout, stderr) = run_promtool(&promtool(), &["check", "metrics"], &body);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "", ""),
        "promtool check metrics found problems in\n{body}"
    );
    let _data = run.stop().await;
}
