//! `kubectl fgm nodes`: every node, whether a NodeMonitor covers it, its monitor pod, the
//! image version and the data range its viewer reports (`/api/status`).
//!
//! Without the right to list nodes it degrades to the nodes of the monitor pods, and says so.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use serde::Serialize;
use serde_json::Value;

use super::cluster::{Monitors, NodeLabels, choose_pod, list_nodes};
use super::error::PluginError;
use super::forward::{AskError, ask_all};
use super::top::targets;

/// One line of `nodes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRow {
    pub node: String,
    /// A monitor pod with a viewer runs on it.
    pub covered: bool,
    /// NodeMonitors (`namespace/name`) that have a pod on it.
    pub monitors: Vec<String>,
    /// NodeMonitors whose nodeSelector selects it (known only when nodes can be listed).
    pub selected_by: Vec<String>,
    /// The pod asked (`namespace/name`).
    pub pod: Option<String>,
    pub pod_phase: Option<String>,
    pub pod_ready: Option<bool>,
    pub version: Option<String>,
    /// The viewer's `/api/status` answer: `state`, `data_range`, `containers`…
    pub status: Option<Value>,
    /// Why the viewer did not answer.
    pub not_answering: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodesReport {
    /// False: nodes could not be listed, only the monitor pods' nodes are shown.
    pub all_nodes: bool,
    pub note: Option<String>,
    pub nodes: Vec<NodeRow>,
}

/// The rows from the cluster's state and the viewers' answers (by node).
pub fn rows(
    monitors: &Monitors,
    nodes: Option<&[NodeLabels]>,
    answers: &BTreeMap<String, Result<Value, AskError>>,
) -> NodesReport {
    let listed: Vec<(String, Option<&BTreeMap<String, String>>)> = match nodes {
        Some(nodes) => nodes.iter().map(|(n, l)| (n.clone(), Some(l))).collect(),
        None => {
            let mut names: Vec<String> = monitors
                .pods
                .iter()
                .filter_map(|p| p.node.clone())
                .collect();
            names.sort();
            names.dedup();
            names.into_iter().map(|n| (n, None)).collect()
        }
    };
    let mut rows: Vec<NodeRow> = listed
        .into_iter()
        .map(|(node, labels)| {
            let pod = choose_pod(&monitors.pods, &node);
            let mut on_node: Vec<String> = monitors
                .pods
                .iter()
                .filter(|p| p.node.as_deref() == Some(node.as_str()))
                .filter_map(|p| monitors.monitor_of(p).map(|m| m.key()))
                .collect();
            on_node.dedup();
            let selected_by = labels
                .map(|l| {
                    monitors
                        .monitors
                        .iter()
                        .filter(|m| m.selects(l))
                        .map(|m| m.key())
                        .collect()
                })
                .unwrap_or_default();
            let (status, not_answering) = match answers.get(&node) {
                Some(Ok(v)) => (Some(v.clone()), None),
                Some(Err(e)) => (None, Some(e.to_string())),
                None => (None, None),
            };
            NodeRow {
                covered: pod.is_some(),
                monitors: on_node,
                selected_by,
                pod: pod.map(|p| p.key()),
                pod_phase: pod.map(|p| p.phase.clone()),
                pod_ready: pod.map(|p| p.ready),
                version: pod.and_then(|p| p.version()),
                status,
                not_answering,
                node,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.node.cmp(&b.node));
    NodesReport {
        all_nodes: nodes.is_some(),
        note: nodes.is_none().then(|| {
            "you may not list nodes: showing only the nodes that run a monitor pod".to_string()
        }),
        nodes: rows,
    }
}

/// Lists nodes and monitors and asks every covered node's viewer for its status.
pub async fn collect(
    client: &Client,
    at_once: usize,
    timeout: Duration,
) -> Result<NodesReport, PluginError> {
    let monitors = Monitors::load(client).await?;
    let nodes = list_nodes(client).await?;
    let answers: BTreeMap<String, Result<Value, AskError>> =
        ask_all(client, targets(&monitors), "/api/status", at_once, timeout)
            .await
            .into_iter()
            .map(|(node, _, answer)| (node, answer))
            .collect();
    Ok(rows(&monitors, nodes.as_deref(), &answers))
}

/// `2025-12-30T16:00:00Z` as `12-30 16:00:00` (the year is rarely news; the zone is UTC).
fn short_time(v: &Value) -> Option<String> {
    let text = v.as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        t.with_timezone(&chrono::Utc)
            .format("%m-%d %H:%M:%S")
            .to_string(),
    )
}

/// The table: NODE MONITORED MONITOR-POD VERSION DATA (UTC) and the viewer's state.
pub fn render_table(report: &NodesReport) -> String {
    let mut lines = vec![vec![
        "NODE".to_string(),
        "MONITORED".into(),
        "MONITOR POD".into(),
        "VERSION".into(),
        "DATA (UTC)".into(),
        "CONTAINERS".into(),
        "VIEWER".into(),
    ]];
    for r in &report.nodes {
        let monitored = if r.covered {
            "yes".to_string()
        } else if !r.selected_by.is_empty() {
            format!("no (selected by {}, no pod)", r.selected_by.join(","))
        } else {
            "no".to_string()
        };
        let (data, containers, viewer) = match (&r.status, &r.not_answering) {
            (Some(s), _) => {
                let range = &s["data_range"];
                let data = match (short_time(&range["earliest"]), short_time(&range["latest"])) {
                    (Some(a), Some(b)) => format!("{a} .. {b}"),
                    _ => "none yet".to_string(),
                };
                (
                    data,
                    s["containers"]
                        .as_u64()
                        .map_or("-".into(), |c| c.to_string()),
                    s["state"].as_str().unwrap_or("?").to_string(),
                )
            }
            (None, Some(e)) => ("-".into(), "-".into(), format!("not answering: {e}")),
            (None, None) => ("-".into(), "-".into(), "-".into()),
        };
        let pod = match (&r.pod, r.pod_ready) {
            (Some(p), Some(false)) => format!("{p} ({})", r.pod_phase.as_deref().unwrap_or("?")),
            (Some(p), _) => p.clone(),
            (None, _) => "-".into(),
        };
        lines.push(vec![
            r.node.clone(),
            monitored,
            pod,
            r.version.clone().unwrap_or_else(|| "-".into()),
            data,
            containers,
            viewer,
        ]);
    }
    let mut out = super::table::render(&lines);
    if let Some(note) = &report.note {
        out.push_str(&format!("\nnote: {note}\n"));
    }
    out
}
