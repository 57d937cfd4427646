//! `kubectl fgm open deployment/NAME` (and `statefulset/`, `daemonset/`, `replicaset/`,
//! `job/`): every pod of the workload, on whichever nodes they run, selected in the cluster
//! view ([`super::view`]) over the nodes they run on.
//!
//! ```text
//!  get workload ─▶ spec.selector ─▶ list pods (selector) ─▶ (node, short ids) per pod
//!     ─▶ nodes with a monitor pod ─▶ Federation over them ─▶ page with <node>/<id> selected
//! ```

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::cluster::{Monitors, choose_pod};
use super::error::{Action, PluginError, api_error};
use super::federation::merge;
use super::open::container_ids;
use crate::operator::builders::settings::{SpecError, selector_string};
use crate::viewer::params::MAX_CONTAINERS;

/// A kind of workload `open` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
}

impl Kind {
    /// kubectl's names and short names of the kind.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" | "deployment.apps" => Kind::Deployment,
            "statefulset" | "statefulsets" | "sts" | "statefulset.apps" => Kind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" | "daemonset.apps" => Kind::DaemonSet,
            "replicaset" | "replicasets" | "rs" | "replicaset.apps" => Kind::ReplicaSet,
            "job" | "jobs" | "job.batch" => Kind::Job,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::ReplicaSet => "replicaset",
            Kind::Job => "job",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments.apps",
            Kind::StatefulSet => "statefulsets.apps",
            Kind::DaemonSet => "daemonsets.apps",
            Kind::ReplicaSet => "replicasets.apps",
            Kind::Job => "jobs.batch",
        }
    }
}

/// What `open`'s argument names: a pod (`NAME` or `pod/NAME`) or a workload (`KIND/NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenTarget {
    Pod(String),
    Workload(Kind, String),
}

/// Parses `open`'s argument; an unknown kind is a bad argument naming the kinds known.
pub fn parse_target(text: &str) -> Result<OpenTarget, PluginError> {
    let Some((kind, name)) = text.split_once('/') else {
        return Ok(OpenTarget::Pod(text.to_string()));
    };
    let bad = |reason: String| PluginError::BadFlag {
        flag: "pod",
        reason,
    };
    if name.is_empty() || name.contains('/') {
        return Err(bad(format!("{text:?} is not KIND/NAME")));
    }
    if matches!(kind.to_ascii_lowercase().as_str(), "pod" | "pods" | "po") {
        return Ok(OpenTarget::Pod(name.to_string()));
    }
    let kind = Kind::parse(kind).ok_or_else(|| {
        bad(format!(
            "{kind:?} is not a kind open knows: pod, deployment, statefulset, daemonset, replicaset, job"
        ))
    })?;
    Ok(OpenTarget::Workload(kind, name.to_string()))
}

/// A label selector as the API's query text (the operator's [`selector_string`]); an operator
/// the API does not define, or an empty selector, is an error.
pub fn selector_text(selector: &LabelSelector) -> Result<String, String> {
    let text = selector_string(selector).map_err(|e| match e {
        SpecError::Selector { key, operator } => {
            format!("selector operator {operator:?} of key {key}")
        }
        other => other.to_string(),
    })?;
    if text.is_empty() {
        return Err("an empty selector (it would select every pod)".into());
    }
    Ok(text)
}

/// What `open KIND/NAME` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadPlan {
    pub kind: Kind,
    pub name: String,
    pub namespace: String,
    /// Nodes with a monitor pod that run pods of the workload.
    pub nodes: Vec<String>,
    /// `<node>/<id>` of every started container of its pods on those nodes.
    pub keys: Vec<String>,
    /// Pods not shown, each with why (not scheduled, no monitor on its node, not started).
    pub left_out: Vec<String>,
}

async fn selector_of(
    client: &Client,
    kind: Kind,
    name: &str,
    namespace: &str,
) -> Result<LabelSelector, PluginError> {
    async fn get<K>(client: &Client, namespace: &str, name: &str) -> Result<Option<K>, kube::Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::<K>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
    }
    let found = match kind {
        Kind::Deployment => get::<Deployment>(client, namespace, name)
            .await
            .map(|o| o.map(|d| d.spec.selector)),
        Kind::StatefulSet => get::<StatefulSet>(client, namespace, name)
            .await
            .map(|o| o.map(|d| d.spec.selector)),
        Kind::DaemonSet => get::<DaemonSet>(client, namespace, name)
            .await
            .map(|o| o.map(|d| d.spec.selector)),
        Kind::ReplicaSet => get::<ReplicaSet>(client, namespace, name)
            .await
            .map(|o| o.map(|d| d.spec.selector)),
        Kind::Job => get::<Job>(client, namespace, name)
            .await
            .map(|o| o.and_then(|d| d.spec.and_then(|s| s.selector))),
    }
    .map_err(|e| api_error(Action::new("get", kind.resource(), Some(namespace)), e))?;
    found.ok_or_else(|| {
        PluginError::NotCovered(format!(
            "{} {namespace}/{name} not found (or it has no selector)",
            kind.as_str()
        ))
    })
}

/// The workload's pods (by its selector), their nodes and containers, and the nodes that have
/// a monitor pod.
pub async fn prepare(
    client: &Client,
    kind: Kind,
    name: &str,
    namespace: &str,
    container: Option<&str>,
) -> Result<WorkloadPlan, PluginError> {
    let selector = selector_of(client, kind, name, namespace).await?;
    let text = selector_text(&selector).map_err(|reason| {
        PluginError::NotCovered(format!(
            "{} {namespace}/{name} cannot be opened: {reason}",
            kind.as_str()
        ))
    })?;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&text))
        .await
        .map_err(|e| api_error(Action::new("list", "pods", Some(namespace)), e))?;
    let monitors = Monitors::load(client).await?;
    let plan = plan(kind, name, namespace, &pods.items, container, |node| {
        choose_pod(&monitors.pods, node).is_some()
    })?;
    if plan.keys.is_empty() {
        let mut message = format!(
            "{} {namespace}/{name}: no started container of its pods is on a monitored node",
            kind.as_str()
        );
        for why in &plan.left_out {
            message.push_str(&format!("\n  {why}"));
        }
        return Err(PluginError::NotCovered(message));
    }
    Ok(plan)
}

/// The plan from the pods listed; `covered(node)`: a monitor pod runs there.
pub fn plan(
    kind: Kind,
    name: &str,
    namespace: &str,
    pods: &[Pod],
    container: Option<&str>,
    covered: impl Fn(&str) -> bool,
) -> Result<WorkloadPlan, PluginError> {
    let mut nodes = BTreeSet::new();
    let mut keys = Vec::new();
    let mut left_out = Vec::new();
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by_key(|p| p.name_any());
    for pod in pods {
        let pod_name = pod.name_any();
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            left_out.push(format!("{pod_name}: not scheduled to a node yet"));
            continue;
        };
        if !covered(&node) {
            left_out.push(format!(
                "{pod_name}: node {node} has no monitor pod (kubectl fgm nodes says why)"
            ));
            continue;
        }
        let (ids, not_started) = container_ids(pod, container)?;
        if !not_started.is_empty() {
            left_out.push(format!(
                "{pod_name}: not started yet: {}",
                not_started.join(", ")
            ));
        }
        if !ids.is_empty() {
            nodes.insert(node.clone());
        }
        keys.extend(ids.iter().map(|id| merge::key(&node, id)));
    }
    // A chart holds at most this many containers (the viewer's limit per request).
    if keys.len() > MAX_CONTAINERS {
        left_out.push(format!(
            "{} more container(s): a chart holds {MAX_CONTAINERS}; pick them in the list",
            keys.len() - MAX_CONTAINERS
        ));
        keys.truncate(MAX_CONTAINERS);
        nodes.retain(|n| {
            keys.iter()
                .any(|k| merge::split_key(k).is_some_and(|(kn, _)| kn == n))
        });
    }
    Ok(WorkloadPlan {
        kind,
        name: name.to_string(),
        namespace: namespace.to_string(),
        nodes: nodes.into_iter().collect(),
        keys,
        left_out,
    })
}

#[cfg(test)]
#[path = "workload_tests.rs"]
mod tests;
