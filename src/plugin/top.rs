//! `kubectl fgm top`: every node's `/api/overview` over port-forwards, merged into one ranking
//! keyed `<node>/<id>`, first row the highest.
//!
//! ```text
//!  Monitors::load ─▶ one pod per node ─▶ Federation::ask_all(/api/overview?from=now-since&top=100)
//!        answers ─▶ merge (node, measure) ─▶ rank ─▶ top N │ nodes not answering listed after
//! ```

use std::time::Duration;

use clap::ValueEnum;
use kube::Client;
use serde::Serialize;
use serde_json::Value;

use super::cluster::{Monitors, choose_pod};
use super::error::PluginError;
use super::federation::merge::{self, NodeAnswer};
use super::federation::{Federation, NodeFilter, from_cluster};
use super::forward::{AskError, Target};

/// What `top` ranks by: the overview's figure of each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Mean CPU over the range (cores).
    Cpu,
    /// Peak memory (bytes).
    Memory,
    /// Periods throttled (%).
    Throttling,
    /// Disk read + write (bytes/s).
    Io,
    /// A pod's network received + sent (bytes/s).
    Network,
    /// OOM kills.
    Oom,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Cpu => "cpu",
            Measure::Memory => "memory",
            Measure::Throttling => "throttling",
            Measure::Io => "io",
            Measure::Network => "network",
            Measure::Oom => "oom",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Measure::Cpu => "cores",
            Measure::Memory => "bytes",
            Measure::Throttling => "% periods throttled",
            Measure::Io | Measure::Network => "bytes/s",
            Measure::Oom => "OOM kills",
        }
    }

    /// The value of one overview row (`None`: not measured).
    pub fn value(self, row: &Value) -> Option<f64> {
        let stat = |k: &str| row["stats"][k].as_f64();
        match self {
            Measure::Cpu => stat("cpu_cores"),
            Measure::Memory => stat("memory_peak_bytes"),
            Measure::Throttling => stat("throttled_pct"),
            Measure::Io => stat("io_bytes_per_sec"),
            Measure::Network => stat("network_bytes_per_sec"),
            Measure::Oom => row["oom_kills"].as_f64(),
        }
    }

    /// The value as the table shows it.
    pub fn format(self, v: f64) -> String {
        match self {
            Measure::Cpu => format!("{v:.3}"),
            Measure::Memory => bytes(v),
            Measure::Throttling => format!("{v:.1}%"),
            Measure::Io | Measure::Network => format!("{}/s", bytes(v)),
            Measure::Oom => format!("{v:.0}"),
        }
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What to ask and how.
#[derive(Debug, Clone)]
pub struct TopOptions {
    pub by: Measure,
    pub since: Duration,
    pub top: usize,
    pub max_nodes_at_once: usize,
    pub node_timeout: Duration,
}

/// One container (or pod, for network) of the cluster ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopRow {
    /// `<node>/<id>`.
    pub key: String,
    pub node: String,
    pub id: String,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub value: f64,
    /// The viewer's whole row (stats, events, OOM kills).
    pub row: Value,
}

/// A node whose viewer did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotAnswering {
    pub node: String,
    pub pod: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopReport {
    pub by: Measure,
    pub unit: &'static str,
    pub since_seconds: u64,
    /// Nodes asked (one monitor pod each).
    pub nodes: usize,
    pub rows: Vec<TopRow>,
    pub not_answering: Vec<NotAnswering>,
}

/// The rows of one node's overview answer, keyed `<node>/<id>`, with their value of `by`
/// (rows without one, or with nothing to show — zero or less — are left out).
pub fn node_rows(node: &str, answer: &Value, by: Measure) -> Vec<TopRow> {
    let Some(rows) = answer["rows"].as_array() else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|row| {
            let id = row["id"].as_str()?;
            let value = by.value(row).filter(|v| v.is_finite() && *v > 0.0)?;
            let text = |k: &str| row[k].as_str().map(str::to_string);
            Some(TopRow {
                key: format!("{node}/{id}"),
                node: node.to_string(),
                id: id.to_string(),
                namespace: text("namespace"),
                pod: text("pod_name"),
                container: text("container_name"),
                value,
                row: row.clone(),
            })
        })
        .collect()
}

/// Merges the nodes' rows: highest first, ties by key; the first `top`.
pub fn rank(mut rows: Vec<TopRow>, top: usize) -> Vec<TopRow> {
    rows.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.key.cmp(&b.key)));
    rows.truncate(top);
    rows
}

/// The overview request for `since` before `now_ms`.
pub fn overview_path(now_ms: i64, since: Duration) -> String {
    let since_ms = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    format!(
        "/api/overview?from={}&top=100",
        now_ms.saturating_sub(since_ms).max(0)
    )
}

/// Asks every monitored node and ranks their containers.
pub async fn collect(client: &Client, opts: &TopOptions) -> Result<TopReport, PluginError> {
    let fed = from_cluster(
        client,
        &NodeFilter::default(),
        opts.max_nodes_at_once,
        opts.node_timeout,
    )
    .await?;
    Ok(collect_from(&fed, opts).await)
}

/// Asks every node of `fed` (the benchmark's recorded nodes, or the cluster's) and ranks.
pub async fn collect_from(fed: &Federation, opts: &TopOptions) -> TopReport {
    let path = overview_path(chrono::Utc::now().timestamp_millis(), opts.since);
    report_from(opts, fed.ask_all(&path).await)
}

/// One target per node that has a monitor pod with a viewer.
pub fn targets(monitors: &Monitors) -> Vec<(String, Target)> {
    let mut nodes: Vec<&str> = monitors
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
        .into_iter()
        .filter_map(|node| {
            let pod = choose_pod(&monitors.pods, node)?;
            Some((
                node.to_string(),
                Target {
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    port: pod.viewer_port?,
                },
            ))
        })
        .collect()
}

/// The report from the nodes' answers (as [`super::forward::ask_all`] gives them).
pub fn report(
    opts: &TopOptions,
    answers: Vec<(String, Target, Result<Value, AskError>)>,
) -> TopReport {
    let answers = answers
        .into_iter()
        .map(|(node, target, answer)| {
            let answer = answer.map_err(|e| merge::NotAnswering {
                node: node.clone(),
                via: target.key(),
                reason: e.to_string(),
                bad_request: None,
            });
            (node, answer)
        })
        .collect();
    report_from(opts, answers)
}

/// The report from the federation's answers.
pub fn report_from(opts: &TopOptions, answers: Vec<NodeAnswer>) -> TopReport {
    let nodes = answers.len();
    let mut rows = Vec::new();
    let mut not_answering = Vec::new();
    for (node, answer) in answers {
        match answer {
            Ok(v) => rows.extend(node_rows(&node, &v, opts.by)),
            Err(e) => not_answering.push(NotAnswering {
                node,
                pod: e.via,
                reason: e.reason,
            }),
        }
    }
    TopReport {
        by: opts.by,
        unit: opts.by.unit(),
        since_seconds: opts.since.as_secs(),
        nodes,
        rows: rank(rows, opts.top),
        not_answering,
    }
}

/// The table: NODE NAMESPACE POD CONTAINER and the measure, then the nodes not answering.
pub fn render_table(report: &TopReport) -> String {
    let header = format!("{} ({})", report.by.as_str().to_uppercase(), report.unit);
    let mut lines = vec![vec![
        "NODE".to_string(),
        "NAMESPACE".into(),
        "POD".into(),
        "CONTAINER".into(),
        header,
    ]];
    for r in &report.rows {
        let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        let container = match (&r.container, r.row["sandbox"].as_bool()) {
            (Some(c), _) => c.clone(),
            (None, Some(true)) => "(pod)".into(),
            (None, _) => r.id.clone(),
        };
        lines.push(vec![
            r.node.clone(),
            dash(&r.namespace),
            dash(&r.pod),
            container,
            report.by.format(r.value),
        ]);
    }
    let mut out = super::table::render(&lines);
    if report.rows.is_empty() {
        out.push_str(&format!(
            "no container with {} data in the last {}s on {} node(s)\n",
            report.by.as_str(),
            report.since_seconds,
            report.nodes
        ));
    }
    if !report.not_answering.is_empty() {
        out.push_str(&format!(
            "\n{} of {} node(s) not answering:\n",
            report.not_answering.len(),
            report.nodes
        ));
        for n in &report.not_answering {
            out.push_str(&format!("  {} ({}): {}\n", n.node, n.pod, n.reason));
        }
    }
    out
}

#[cfg(test)]
#[path = "top_tests.rs"]
mod tests;
