//! What the cluster holds for the plugin: NodeMonitors (read through the dynamic API, so any
//! served version works), their monitor pods (by the operator's labels) and nodes.
//!
//! ```text
//!  list nodemonitors (all namespaces) ─▶ Monitor {ns, name, nodeSelector, viewer port}
//!  list pods in their namespaces, selector name=fine-grained-monitor,component=node-monitor
//!                                      ─▶ MonitorPod {node, monitor, ready, image, port}
//!  choose_pod(node) ◀─ one pod per node; uncovered_message(node) names who does not select it
//! ```

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::error::{Action, PluginError, api_error};

/// Label selector of the monitor pods (the DaemonSet pods, not the compaction Jobs).
pub const MONITOR_POD_SELECTOR: &str =
    "app.kubernetes.io/name=fine-grained-monitor,app.kubernetes.io/component=node-monitor";
/// The label naming a monitor pod's NodeMonitor.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// The viewer's container port when neither the pod nor the NodeMonitor says.
pub const DEFAULT_VIEWER_PORT: u16 = 8050;
/// Name of the viewer container in the monitor pods.
pub const VIEWER_CONTAINER: &str = "viewer";

/// The NodeMonitor resource as the plugin reads it.
pub fn nodemonitor_resource() -> ApiResource {
    ApiResource {
        group: "fgm.dev".into(),
        version: "v1beta1".into(),
        api_version: "fgm.dev/v1beta1".into(),
        kind: "NodeMonitor".into(),
        plural: "nodemonitors".into(),
    }
}

/// One NodeMonitor: where its pods go and where their viewer listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Monitor {
    pub namespace: String,
    pub name: String,
    pub node_selector: BTreeMap<String, String>,
    pub viewer_enabled: bool,
    pub viewer_port: u16,
}

impl Monitor {
    /// From a NodeMonitor object (missing fields take the CRD's defaults).
    pub fn from_object(o: &DynamicObject) -> Self {
        let spec = &o.data["spec"];
        let node_selector = spec["nodeSelector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            namespace: o.namespace().unwrap_or_default(),
            name: o.name_any(),
            node_selector,
            viewer_enabled: spec["viewer"]["enabled"].as_bool().unwrap_or(true),
            viewer_port: spec["viewer"]["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .unwrap_or(DEFAULT_VIEWER_PORT),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether its nodeSelector selects a node with `labels`.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }

    fn selector_text(&self) -> String {
        if self.node_selector.is_empty() {
            return "every node".into();
        }
        let parts: Vec<String> = self
            .node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("nodeSelector {}", parts.join(","))
    }
}

/// One monitor pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorPod {
    pub namespace: String,
    pub name: String,
    /// Its NodeMonitor's name (same namespace).
    pub monitor: String,
    pub node: Option<String>,
    pub phase: String,
    pub ready: bool,
    /// The viewer container's image, if the pod has a viewer.
    pub image: Option<String>,
    /// The viewer container's port, if the pod has a viewer.
    pub viewer_port: Option<u16>,
}

impl MonitorPod {
    pub fn from_pod(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        let viewer = spec.and_then(|s| s.containers.iter().find(|c| c.name == VIEWER_CONTAINER));
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        Self {
            namespace: pod.namespace().unwrap_or_default(),
            name: pod.name_any(),
            monitor: pod
                .labels()
                .get(INSTANCE_LABEL)
                .cloned()
                .unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".into()),
            ready,
            image: viewer.and_then(|c| c.image.clone()),
            viewer_port: viewer.map(|c| {
                c.ports
                    .as_ref()
                    .and_then(|ps| ps.first())
                    .and_then(|p| u16::try_from(p.container_port).ok())
                    .unwrap_or(DEFAULT_VIEWER_PORT)
            }),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The image's tag (or digest), else the whole image reference.
    pub fn version(&self) -> Option<String> {
        let image = self.image.as_deref()?;
        if let Some((_, digest)) = image.split_once('@') {
            return Some(digest.chars().take(19).collect());
        }
        let last = image.rsplit('/').next().unwrap_or(image);
        Some(match last.split_once(':') {
            Some((_, tag)) => tag.to_string(),
            None => "latest".to_string(),
        })
    }
}

/// The pod to ask for `node`: a pod with a viewer on it, ready and running first, then by
/// name (several NodeMonitors may cover one node).
pub fn choose_pod<'a>(pods: &'a [MonitorPod], node: &str) -> Option<&'a MonitorPod> {
    pods.iter()
        .filter(|p| p.node.as_deref() == Some(node) && p.viewer_port.is_some())
        .min_by_key(|p| (!p.ready, p.phase != "Running", p.key()))
}

/// The message for a node no monitor pod covers: who does not select it and why.
pub fn uncovered_message(
    node: &str,
    node_labels: Option<&BTreeMap<String, String>>,
    monitors: &[Monitor],
    pods: &[MonitorPod],
) -> String {
    if monitors.is_empty() {
        return format!(
            "node {node} is not monitored: there is no NodeMonitor in the cluster \
             (create one: see README.md \"Create a NodeMonitor\")"
        );
    }
    let mut lines = Vec::new();
    for m in monitors {
        let on_node = pods.iter().any(|p| {
            p.node.as_deref() == Some(node) && p.namespace == m.namespace && p.monitor == m.name
        });
        let why = if on_node && !m.viewer_enabled {
            "has a pod there but runs no viewer (spec.viewer.enabled: false)".to_string()
        } else {
            match node_labels.map(|l| m.selects(l)) {
                Some(false) => format!("does not select it ({})", m.selector_text()),
                Some(true) => format!(
                    "selects it ({}) but has no pod there (a taint it does not tolerate? \
                     see `kubectl -n {} describe daemonset {}`)",
                    m.selector_text(),
                    m.namespace,
                    m.name
                ),
                None => format!("has no pod there ({})", m.selector_text()),
            }
        };
        lines.push(format!("  {} {why}", m.key()));
    }
    format!(
        "node {node} is not monitored: no NodeMonitor has a viewer pod on it.\n{}",
        lines.join("\n")
    )
}

/// Everything `nodes`, `open` and `top` need about the monitors.
#[derive(Debug, Clone, Default)]
pub struct Monitors {
    pub monitors: Vec<Monitor>,
    pub pods: Vec<MonitorPod>,
}

impl Monitors {
    /// Lists NodeMonitors cluster-wide and the monitor pods in their namespaces.
    pub async fn load(client: &Client) -> Result<Self, PluginError> {
        let resource = nodemonitor_resource();
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let list = api.list(&ListParams::default()).await.map_err(|e| {
            if super::error::is_not_found(&e) {
                PluginError::NotCovered(
                    "the cluster has no NodeMonitor resource (fgm.dev/v1beta1 nodemonitors): \
                     is the fine-grained-monitor operator installed?"
                        .into(),
                )
            } else {
                api_error(Action::new("list", "nodemonitors.fgm.dev", None), e)
            }
        })?;
        let mut monitors: Vec<Monitor> = list.items.iter().map(Monitor::from_object).collect();
        monitors.sort_by_key(Monitor::key);
        let namespaces: BTreeSet<&str> = monitors.iter().map(|m| m.namespace.as_str()).collect();
        let mut pods = Vec::new();
        let lp = ListParams::default().labels(MONITOR_POD_SELECTOR);
        for ns in namespaces {
            let listed = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .map_err(|e| api_error(Action::new("list", "pods", Some(ns)), e))?;
            pods.extend(
                listed
                    .items
                    .iter()
                    .map(MonitorPod::from_pod)
                    // Only pods of a NodeMonitor that exists.
                    .filter(|p| {
                        monitors
                            .iter()
                            .any(|m| m.namespace == p.namespace && m.name == p.monitor)
                    }),
            );
        }
        pods.sort_by_key(MonitorPod::key);
        Ok(Self { monitors, pods })
    }

    /// The monitor of a pod.
    pub fn monitor_of(&self, pod: &MonitorPod) -> Option<&Monitor> {
        self.monitors
            .iter()
            .find(|m| m.namespace == pod.namespace && m.name == pod.monitor)
    }
}

/// A node's name and labels.
pub type NodeLabels = (String, BTreeMap<String, String>);

/// Lists nodes; `Ok(None)` when the user may not (the callers degrade).
pub async fn list_nodes(client: &Client) -> Result<Option<Vec<NodeLabels>>, PluginError> {
    match Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Ok(Some(
            list.items
                .iter()
                .map(|n| (n.name_any(), n.labels().clone()))
                .collect(),
        )),
        Err(e) if super::error::is_forbidden(&e) => Ok(None),
        Err(e) => Err(api_error(Action::new("list", "nodes", None), e)),
    }
}

/// The labels of one node (a list by field selector, so `nodes list` suffices); `None` when the
/// user may not list nodes or it is gone.
pub async fn node_labels(client: &Client, node: &str) -> Option<BTreeMap<String, String>> {
    let lp = ListParams::default().fields(&format!("metadata.name={node}"));
    let list = Api::<Node>::all(client.clone()).list(&lp).await.ok()?;
    list.items.first().map(|n| n.labels().clone())
}

/// Names of the nodes whose labels match `selector` (`--selector` of `view`): needs `list
/// nodes`, refused in words without it.
pub async fn nodes_matching(
    client: &Client,
    selector: &str,
) -> Result<BTreeSet<String>, PluginError> {
    let lp = ListParams::default().labels(selector);
    let list = Api::<Node>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| api_error(Action::new("list", "nodes", None), e))?;
    Ok(list.items.iter().map(|n| n.name_any()).collect())
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
