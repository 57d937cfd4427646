use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use tower::ServiceExt;

use super::*;
use crate::agent::contract::{ContainerSample, Cycle};
use crate::agent::prometheus::self_metrics::{EnrichmentState, EnrichmentStatus};
use crate::store::schema::METRICS;

fn cycle_now() -> Cycle {
    Cycle {
        timestamp: Some(Utc::now()),
        containers: vec![ContainerSample {
            short_id: "abcdef012345".into(),
            full_id: format!("abcdef012345{}", "9".repeat(52)),
            cgroup_path: "kubepods/besteffort/pod1/abcdef012345".into(),
            values: (0..METRICS.len()).map(|i| Some(i as i64 * 1000)).collect(),
            pod_uid: None,
            sandbox: false,
            devices: Vec::new(),
        }],
        network: Vec::new(),
        processes: Vec::new(),
    }
}

fn state(cycle: Cycle) -> (MetricsState, tokio::sync::watch::Sender<Arc<Cycle>>) {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(cycle));
    let s = MetricsState {
        cycles: rx,
        pods: None,
        self_metrics: SelfMetrics::new(),
        stale_after: Duration::from_secs(30),
        started: Utc::now(),
    };
    (s, tx)
}

async fn get(
    state: &MetricsState,
    uri: &str,
    accept: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = Request::get(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let resp = app(state.clone())
        .oneshot(req.body(Body::empty()).unwrap_or_default())
        .await
        .unwrap_or_else(|e| match e {});
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn metrics_text_has_container_and_self_metrics() {
    let (s, _tx) = state(cycle_now());
    s.self_metrics
        .cycle_done(Duration::from_millis(2), false, 1);
    let (status, ct, body) = get(&s, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(body.contains("container_cpu_usage_seconds_total{id=\"/kubepods/besteffort/pod1/abcdef012345\",cpu=\"total\"} 0 "), "{body}");
    assert!(
        body.contains("# TYPE fgm_agent_cycles_total counter\nfgm_agent_cycles_total 1\n"),
        "{body}"
    );
    assert!(!body.contains("# EOF"));
}

#[tokio::test]
async fn metrics_openmetrics_by_accept() {
    let (s, _tx) = state(cycle_now());
    let (status, ct, body) = get(
        &s,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(body.matches("# EOF").count(), 1);
    assert!(body.contains("# TYPE fgm_agent_cycles counter\n"));
    assert!(body.contains("# TYPE container_cpu_usage_seconds counter\n"));
}

#[tokio::test]
async fn container_filter() {
    let (s, _tx) = state(cycle_now());
    let (status, _, body) = get(&s, "/metrics?container=abcdef012345", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("abcdef012345"));
    assert!(!body.contains("fgm_agent_"), "one container only");

    let (status, _, body) = get(&s, "/metrics?container=..%2Fetc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid container id \"../etc\""), "{body}");

    let (status, _, body) = get(&s, "/metrics?container=", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, _, body) = get(&s, "/metrics?container=000000000000", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no container matching 000000000000"));
}

#[tokio::test]
async fn latest_cycle_is_served() {
    let (s, tx) = state(cycle_now());
    let mut next = cycle_now();
    next.containers[0].values[0] = Some(7_500_000);
    tx.send_replace(Arc::new(next));
    let (_, _, body) = get(&s, "/metrics", None).await;
    assert!(body.contains("cpu=\"total\"} 7.5 "), "{body}");
}

#[tokio::test]
async fn healthz_reports_and_fails_when_stalled() {
    let (s, _tx) = state(cycle_now());
    s.self_metrics.set_enrichment(EnrichmentStatus {
        state: EnrichmentState::syncing,
        reason: None,
        pods: 3,
    });
    let (status, ct, body) = get(&s, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["containers"], 1);
    assert_eq!(json["enrichment"]["state"], "syncing");
    assert_eq!(json["enrichment"]["pods"], 3);

    let mut old = cycle_now();
    old.timestamp = DateTime::from_timestamp(1_000_000_000, 0);
    let (s, _tx) = state(old);
    let (status, _, body) = get(&s, "/healthz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("\"stalled\""), "{body}");
}

#[tokio::test]
async fn index_by_accept() {
    let (s, _tx) = state(Cycle::default());
    let (status, ct, body) = get(&s, "/", Some("text/html,application/xhtml+xml")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(body.contains("<a href=\"/metrics\">"), "{body}");
    let (status, ct, body) = get(&s, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "text/plain; charset=utf-8");
    assert!(body.contains("/healthz"));
    assert!(!body.contains("<a "), "{body}");
    let (status, _, _) = get(&s, "/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
