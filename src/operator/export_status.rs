//! `status.export` and the `ExportHealthy` condition, from what the agents
//! report. The operator asks each agent pod of the NodeMonitor for
//! `GET http://<pod IP>:<metrics port>/export` (a read-only JSON status).
//!
//! Why this path: it needs one narrow right, `list` on pods (no get, no
//! watch: since #17 the operator binds the agents' role without holding it),
//! and the agents need no write access to the API: a node agent that could patch NodeMonitor status
//! or its own Pod would be a stronger identity on every node than a
//! read-only HTTP endpoint the agent already serves. The cost is one small
//! request per agent per resync, bounded in time and concurrency; a network
//! policy that blocks the operator from the metrics port leaves the condition
//! `Unknown` with that reason, and export itself unaffected.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::crd::{ExportStatusSummary, NodeMonitor, NodeMonitorStatus};
use crate::export::ExportStatus;

pub const EXPORT_HEALTHY: &str = "ExportHealthy";
/// Longest wait for one agent's answer.
const AGENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Agents asked at once.
const CONCURRENCY: usize = 16;
/// Nodes named in the condition message at most.
const NAMED_NODES: usize = 5;

/// One agent's answer (`None`: it did not answer, with why).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    pub node: String,
    pub status: Result<ExportStatus, String>,
}

/// The summary and the condition's (status, reason, message) (pure).
pub fn summarize(
    destination: &str,
    reports: &[NodeReport],
    last_compaction: Option<String>,
) -> (ExportStatusSummary, (&'static str, String, String)) {
    let answered: Vec<(&str, &ExportStatus)> = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok().map(|s| (r.node.as_str(), s)))
        .collect();
    let failing: Vec<(&str, &ExportStatus)> = answered
        .iter()
        .copied()
        .filter(|(_, s)| s.failing)
        .collect();
    let last_upload: Option<DateTime<Utc>> =
        answered.iter().filter_map(|(_, s)| s.last_upload).max();
    let sum = |f: fn(&ExportStatus) -> u64| -> i64 {
        i64::try_from(answered.iter().map(|(_, s)| f(s)).sum::<u64>()).unwrap_or(i64::MAX)
    };
    let summary = ExportStatusSummary {
        destination: destination.to_string(),
        last_upload: last_upload.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        backlog_files: sum(|s| s.backlog_files),
        backlog_bytes: sum(|s| s.backlog_bytes),
        dropped_files: sum(|s| s.dropped_files),
        nodes_reporting: answered.len() as i32,
        nodes_failing: failing.len() as i32,
        last_compaction,
    };
    let condition = if answered.is_empty() {
        let why = reports
            .iter()
            .find_map(|r| r.status.as_ref().err().cloned())
            .unwrap_or_else(|| "no agent pod is running".into());
        (
            "Unknown",
            "NoReports".to_string(),
            format!("no agent reported its export: {why}"),
        )
    } else if failing.is_empty() {
        (
            "True",
            "Uploading".to_string(),
            format!(
                "{} node(s) uploading to {destination}; backlog {} file(s)",
                answered.len(),
                summary.backlog_files
            ),
        )
    } else {
        // The most common reason names the condition.
        let mut reasons: Vec<&str> = failing
            .iter()
            .map(|(_, s)| s.reason.as_deref().unwrap_or("Failing"))
            .collect();
        reasons.sort_unstable();
        let reason = reasons
            .chunk_by(|a, b| a == b)
            .max_by_key(|c| c.len())
            .and_then(|c| c.first())
            .copied()
            .unwrap_or("Failing");
        let named: Vec<String> = failing
            .iter()
            .take(NAMED_NODES)
            .map(|(node, s)| {
                format!(
                    "{node}: {}",
                    s.message
                        .as_deref()
                        .unwrap_or("failing")
                        .chars()
                        .take(240)
                        .collect::<String>()
                )
            })
            .collect();
        (
            "False",
            reason.to_string(),
            format!(
                "{} of {} node(s) cannot upload to {destination} (collection goes on locally): {}",
                failing.len(),
                answered.len(),
                named.join("; ")
            ),
        )
    };
    (summary, condition)
}

/// Puts the summary and the condition into `status`, keeping the condition's
/// transition time from `previous` when its status did not change.
pub fn apply_to(
    status: &mut NodeMonitorStatus,
    previous: Option<&NodeMonitorStatus>,
    summary: Option<ExportStatusSummary>,
    condition: Option<(&'static str, String, String)>,
    generation: Option<i64>,
    now: Time,
) {
    status.export = summary;
    status.conditions.retain(|c| c.type_ != EXPORT_HEALTHY);
    let Some((state, reason, message)) = condition else {
        return;
    };
    let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == EXPORT_HEALTHY));
    let last_transition_time = match before {
        Some(old) if old.status == state => old.last_transition_time.clone(),
        _ => now,
    };
    status.conditions.push(Condition {
        type_: EXPORT_HEALTHY.into(),
        status: state.into(),
        reason,
        message,
        observed_generation: generation,
        last_transition_time,
    });
}

/// Asks every running agent pod of `nm` for its export status.
pub async fn collect(client: &Client, nm: &NodeMonitor) -> Vec<NodeReport> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &nm.namespace().unwrap_or_default());
    let selector = super::builders::selector_labels(nm)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let list = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list,
        Err(e) => {
            return vec![NodeReport {
                node: String::new(),
                status: Err(format!("cannot list the agent pods: {e}")),
            }];
        }
    };
    let http = match crate::s3::transport::HttpClient::new(None, AGENT_TIMEOUT) {
        Ok(h) => h,
        Err(e) => {
            return vec![NodeReport {
                node: String::new(),
                status: Err(e.to_string()),
            }];
        }
    };
    let port = nm.spec.metrics.port;
    let targets: Vec<(String, String)> = list
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| p.name_any());
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            Some((node, format!("http://{host}:{port}/export")))
        })
        .collect();
    futures::stream::iter(targets)
        .map(|(node, url)| {
            let http = http.clone();
            async move {
                let status = fetch(&http, &url).await;
                NodeReport { node, status }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

async fn fetch(http: &crate::s3::transport::HttpClient, url: &str) -> Result<ExportStatus, String> {
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| format!("{url}: {e}"))?;
    let response = http
        .send(request, 1 << 20)
        .await
        .map_err(|e| e.into_error("GET", url).to_string())?;
    if !response.status.is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| format!("GET {url}: not an export status: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node: &str, failing: Option<&str>, backlog: u64) -> NodeReport {
        NodeReport {
            node: node.into(),
            status: Ok(ExportStatus {
                destination: "s3://b/p".into(),
                failing: failing.is_some(),
                reason: failing.map(str::to_string),
                message: failing.map(|r| format!("PutObject s3://b/k: HTTP 403 {r}")),
                last_upload: Some(
                    DateTime::parse_from_rfc3339("2026-01-02T10:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc)
                        + chrono::Duration::seconds(backlog as i64),
                ),
                backlog_files: backlog,
                backlog_bytes: backlog * 100,
                ..ExportStatus::default()
            }),
        }
    }

    #[test]
    fn healthy_nodes_sum_up() {
        let (s, (state, reason, message)) = summarize(
            "s3://b/p",
            &[report("a", None, 1), report("b", None, 2)],
            None,
        );
        assert_eq!((state, reason.as_str()), ("True", "Uploading"));
        assert_eq!(
            (s.backlog_files, s.backlog_bytes, s.nodes_reporting),
            (3, 300, 2)
        );
        assert_eq!(s.last_upload.as_deref(), Some("2026-01-02T10:00:02Z"));
        assert!(message.contains("2 node(s)"), "{message}");
    }

    #[test]
    fn failing_nodes_name_the_reason_and_the_nodes() {
        let reports = [
            report("a", Some("AccessDenied"), 5),
            report("b", Some("AccessDenied"), 5),
            report("c", Some("Unreachable"), 5),
            report("d", None, 0),
            NodeReport {
                node: "e".into(),
                status: Err("timeout".into()),
            },
        ];
        let (s, (state, reason, message)) = summarize("s3://b/p", &reports, None);
        assert_eq!((state, reason.as_str()), ("False", "AccessDenied"));
        assert_eq!((s.nodes_reporting, s.nodes_failing), (4, 3));
        assert!(
            message.starts_with("3 of 4 node(s) cannot upload"),
            "{message}"
        );
        assert!(
            message.contains("a: PutObject") && message.contains("HTTP 403"),
            "{message}"
        );
    }

    #[test]
    fn silence_is_unknown_and_transition_time_is_kept() {
        let none = [NodeReport {
            node: "a".into(),
            status: Err("GET http://10.0.0.1:9810/export: connection refused".into()),
        }];
        let (_, (state, reason, message)) = summarize("s3://b", &none, None);
        assert_eq!((state, reason.as_str()), ("Unknown", "NoReports"));
        assert!(message.contains("connection refused"));
        let t = |s| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap());
        let mut first = NodeMonitorStatus::default();
        apply_to(
            &mut first,
            None,
            None,
            Some(("True", "Uploading".into(), "m".into())),
            Some(1),
            t(10),
        );
        let mut second = NodeMonitorStatus::default();
        apply_to(
            &mut second,
            Some(&first),
            None,
            Some(("True", "Uploading".into(), "m2".into())),
            Some(1),
            t(20),
        );
        assert_eq!(second.conditions[0].last_transition_time, t(10));
        let mut third = second.clone();
        apply_to(&mut third, Some(&second), None, None, Some(1), t(30));
        assert!(
            third.conditions.is_empty(),
            "export switched off: condition gone"
        );
    }
}
