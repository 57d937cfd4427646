//! The cluster as one viewer: every monitored node's viewer asked over its own connection (a
//! port-forward through the API server, opened per request), at most N at a time, each within a
//! timeout; answers joined by [`merge`]. A node that does not answer in time is listed as not
//! answering and the rest still answer.
//!
//! ```text
//!  request ─▶ Federation::ask_all(path) ─┬─ node A ─▶ Reach (port-forward | address) ─▶ /api/…
//!            (≤ at_once, each ≤ timeout) └─ node B ─▶ …
//!         ◀─ merge::{status, containers, overview, timeseries, …} ◀─ answers │ not answering
//! ```

pub mod merge;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;

use kube::Client;

use super::cluster::Monitors;
use super::error::PluginError;
use super::forward::{Answer, AskError, Reach, request};
use merge::{NodeAnswer, NotAnswering};

/// One monitored node and how its viewer is reached.
#[derive(Debug, Clone)]
pub struct FedNode {
    pub name: String,
    pub reach: Reach,
}

/// The nodes asked, and how.
#[derive(Debug, Clone)]
pub struct Federation {
    nodes: Arc<Vec<FedNode>>,
    /// Connections open at once, over every request (one port-forward each).
    slots: Arc<Semaphore>,
    at_once: usize,
    timeout: Duration,
}

impl Federation {
    pub fn new(mut nodes: Vec<FedNode>, at_once: usize, timeout: Duration) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        let at_once = at_once.max(1);
        Self {
            nodes: Arc::new(nodes),
            slots: Arc::new(Semaphore::new(at_once)),
            at_once,
            timeout,
        }
    }

    pub fn nodes(&self) -> &[FedNode] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&FedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// One request to one node, waiting for a free connection slot first (the wait counts in
    /// the node's timeout, so a crowd of slow nodes still answers in bounded time).
    pub async fn ask(&self, node: &FedNode, path_and_query: &str) -> Result<Answer, AskError> {
        self.ask_within(node, path_and_query, self.timeout).await
    }

    /// [`Self::ask`] with a timeout of its own (a study or an export of one node's data takes
    /// longer than an answer from each node should).
    pub async fn ask_within(
        &self,
        node: &FedNode,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<Answer, AskError> {
        let asked = async {
            let _slot =
                self.slots.acquire().await.map_err(|_| {
                    AskError::Failed("the cluster view is shutting down".to_string())
                })?;
            request(&node.reach, path_and_query, None, timeout).await
        };
        tokio::time::timeout(timeout, asked)
            .await
            .unwrap_or(Err(AskError::Timeout(timeout)))
    }

    /// `path_and_query` of `node` as JSON; a failure as the node's [`NotAnswering`] line.
    pub async fn ask_json(&self, node: &FedNode, path_and_query: &str) -> NodeAnswer {
        let answer = self
            .ask(node, path_and_query)
            .await
            .and_then(|a| a.json())
            .map_err(|e| not_answering(node, &e));
        (node.name.clone(), answer)
    }

    /// `path(node)` of every node in `nodes` as JSON, in their order.
    pub async fn ask_each(
        &self,
        nodes: Vec<&FedNode>,
        path: impl Fn(&FedNode) -> String,
    ) -> Vec<NodeAnswer> {
        // Owned per request (a clone of the node and of this handle is a few Arcs), so the
        // futures borrow nothing and serve in any handler.
        let asks: Vec<(FedNode, String)> = nodes
            .into_iter()
            .map(|node| (node.clone(), path(node)))
            .collect();
        futures::stream::iter(asks)
            .map(|(node, path)| {
                let fed = self.clone();
                async move { fed.ask_json(&node, &path).await }
            })
            .buffered(self.at_once)
            .collect()
            .await
    }

    /// The same `path_and_query` of every node.
    pub async fn ask_all(&self, path_and_query: &str) -> Vec<NodeAnswer> {
        self.ask_each(self.nodes.iter().collect(), |_| path_and_query.to_string())
            .await
    }
}

/// Which monitored nodes a federation holds (`view --nodes`, `--selector`).
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Only these nodes (`--nodes`), empty: all.
    pub names: Vec<String>,
    /// Only nodes whose labels match (`--selector`), resolved to names by listing nodes.
    pub selector: Option<String>,
}

/// The monitored nodes `filter` keeps, each reached through its monitor pod's port-forward.
pub async fn from_cluster(
    client: &Client,
    filter: &NodeFilter,
    at_once: usize,
    timeout: Duration,
) -> Result<Federation, PluginError> {
    let monitors = Monitors::load(client).await?;
    let selected = match &filter.selector {
        Some(selector) => Some(super::cluster::nodes_matching(client, selector).await?),
        None => None,
    };
    let nodes = super::top::targets(&monitors)
        .into_iter()
        .filter(|(node, _)| filter.names.is_empty() || filter.names.contains(node))
        .filter(|(node, _)| selected.as_ref().is_none_or(|s| s.contains(node)))
        .map(|(name, target)| FedNode {
            name,
            reach: Reach::Forward {
                client: client.clone(),
                target,
            },
        })
        .collect();
    Ok(Federation::new(nodes, at_once, timeout))
}

/// A node's failure as listed in answers. A viewer's own error answer (a 400, say) is listed
/// too: it is that node's answer, not the cluster's.
pub fn not_answering(node: &FedNode, e: &AskError) -> NotAnswering {
    NotAnswering {
        node: node.name.clone(),
        via: node.reach.describe(),
        reason: e.to_string(),
        bad_request: match e {
            AskError::Answered {
                status: 400,
                message,
            } => Some(message.clone()),
            _ => None,
        },
    }
}

/// Whether every answer is the same refusal of the request itself (a 400 from each node that
/// answered, none answering otherwise): then the request was bad, and is answered so.
pub fn all_refused(answers: &[NodeAnswer]) -> Option<String> {
    let mut message = None;
    for (_, a) in answers {
        match a {
            Ok(_) => return None,
            Err(e) => {
                if let Some(m) = &e.bad_request {
                    message.get_or_insert_with(|| m.clone());
                }
            }
        }
    }
    message
}
