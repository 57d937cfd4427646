//! `kubectl fgm mcp`: the whole cluster as one MCP server on stdin/stdout, for AI assistants
//! on the user's machine. Each tool call goes to the nodes' own `/mcp` (through port-forwards
//! with the user's credentials, as `top` does) and their answers are joined here.
//!
//! ```text
//!  assistant ─stdio─▶ kubectl fgm mcp ─┬─ port-forward ─▶ node A viewer /mcp
//!                                      └─ port-forward ─▶ node B viewer /mcp   (at most N at once)
//! ```
//!
//! The tools are the node's, each with an optional `node`: `top_containers`,
//! `list_containers` and `container_events` join every node's answer (rows carry `node`,
//! ranked again); a tool about one container asks every node and answers from the one that has
//! it; `list_nodes` says which nodes are covered. A node that does not answer in time is listed
//! under `not_answering` and the rest still answer.

use std::time::Duration;

use kube::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::cluster::Monitors;
use super::error::PluginError;
use super::forward::{AskError, Target, post_all};
use crate::viewer::mcp::{
    Incoming, PARSE_ERROR, classify, initialize_answer, rpc_error, tool_answer, unknown_tool,
};

/// Most rows in a joined answer.
const MAX_ROWS: usize = 50;

/// How the nodes are asked.
#[derive(Debug, Clone, Copy)]
pub struct McpOptions {
    pub max_nodes_at_once: usize,
    pub node_timeout: Duration,
}

/// How a node tool's answers are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// Rows of every node ranked again by `value`, highest first.
    Ranked,
    /// Rows of every node, in node order (events: by time).
    Listed(&'static str),
    /// One container: the node that has it answers.
    One,
    /// The same everywhere (the metric list): the first node that answers.
    Any,
}

fn join_of(tool: &str, args: &Value) -> Option<Join> {
    Some(match tool {
        "top_containers" => Join::Ranked,
        "list_containers" => Join::Listed("containers"),
        "container_events" if args.get("container").is_none() => Join::Listed("events"),
        "container_events" | "container_summary" | "study" => Join::One,
        "list_metrics" => Join::Any,
        _ => return None,
    })
}

/// The tools: the node's, each with `node`, and `list_nodes`.
pub fn tools() -> Vec<Value> {
    let mut tools = crate::viewer::mcp::tools::list();
    for tool in &mut tools {
        let scope = match tool["name"].as_str() {
            Some("top_containers" | "list_containers" | "container_events") => {
                " Across every monitored node unless node is given; rows carry their node."
            }
            Some("list_metrics") => "",
            _ => " Finds the container on whichever node has it (node narrows the search).",
        };
        if let Some(d) = tool["description"].as_str() {
            tool["description"] = Value::String(format!("{d}{scope}"));
        }
        tool["inputSchema"]["properties"]["node"] = json!({"type": "string",
            "description": "only this node (a Kubernetes node name; list_nodes names them)"});
    }
    tools.push(json!({
        "name": "list_nodes",
        "description": "Every node with a monitor pod serving a viewer: node, pod, and whether it answered.",
        "inputSchema": {"type": "object", "properties": {}, "required": []},
    }));
    tools
}

/// What one node said: its tool's result or the tool's error (`Ok`), or why it did not answer.
type NodeAnswer = Result<Result<Value, String>, String>;

/// A node's answer to a `tools/call`: the tool's result, or its error in words.
fn node_result(answer: Result<Value, AskError>) -> NodeAnswer {
    let answer = answer.map_err(|e| e.to_string())?;
    if let Some(error) = answer.get("error") {
        return Err(error["message"]
            .as_str()
            .unwrap_or("an MCP error")
            .to_string());
    }
    let result = &answer["result"];
    if result["isError"].as_bool() == Some(true) {
        let text = result["content"][0]["text"].as_str().unwrap_or("failed");
        return Ok(Err(text.to_string()));
    }
    Ok(Ok(result["structuredContent"].clone()))
}

/// Joins the nodes' answers to one tool call. `answers`: (node, pod, answer) per node asked.
fn join(how: Join, answers: Vec<(String, String, NodeAnswer)>) -> Result<Value, String> {
    let mut not_answering = Vec::new();
    let mut found: Vec<(String, Value)> = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    for (node, pod, answer) in answers {
        match answer {
            Ok(Ok(v)) => found.push((node, v)),
            Ok(Err(message)) => refused.push((node, message)),
            Err(reason) => not_answering.push(json!({"node": node, "pod": pod, "reason": reason})),
        }
    }
    let tagged = |node: &str, mut row: Value| {
        row["node"] = Value::String(node.to_string());
        row
    };
    let mut out = match how {
        Join::Ranked | Join::Listed(_) => {
            let field = match how {
                Join::Listed(field) => field,
                _ => "containers",
            };
            if found.is_empty() && !refused.is_empty() {
                return Err(said(&refused));
            }
            let mut rows: Vec<Value> = found
                .iter()
                .flat_map(|(node, v)| {
                    v[field]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |row| tagged(node, row))
                })
                .collect();
            if how == Join::Ranked {
                let value = |r: &Value| r["value"].as_f64().unwrap_or(f64::NEG_INFINITY);
                rows.sort_by(|a, b| value(b).total_cmp(&value(a)));
            } else if field == "events" {
                rows.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
            }
            let total = rows.len();
            rows.truncate(MAX_ROWS);
            let mut out = found
                .first()
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| json!({}));
            // Range and unit of the first node; rows from all.
            if found.len() > 1
                && let Some(o) = out.as_object_mut()
            {
                o.remove("from");
                o.remove("to");
            }
            out[field] = Value::Array(rows);
            if total > MAX_ROWS {
                out["more"] = json!(total - MAX_ROWS);
            }
            out["nodes_answered"] = json!(found.iter().map(|(n, _)| n).collect::<Vec<_>>());
            out
        }
        Join::One => match found.len() {
            1 => {
                let (node, v) = found.remove(0);
                tagged(&node, v)
            }
            0 => {
                let mut message = if refused.is_empty() {
                    "no node answered".to_string()
                } else {
                    said(&refused)
                };
                if !not_answering.is_empty() {
                    message.push_str(&format!(
                        "; not answering: {}",
                        not_answering
                            .iter()
                            .map(|n| n["node"].as_str().unwrap_or("").to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                return Err(message);
            }
            _ => {
                return Err(format!(
                    "the container matches on {} nodes ({}): name one with node",
                    found.len(),
                    found
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        },
        Join::Any => match found.into_iter().next() {
            Some((_, v)) => v,
            None if !refused.is_empty() => return Err(said(&refused)),
            None => return Err("no node answered".into()),
        },
    };
    out["not_answering"] = Value::Array(not_answering);
    Ok(out)
}

/// What the nodes said, one line per distinct message (a container no node has: each says so).
fn said(refused: &[(String, String)]) -> String {
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    for (node, message) in refused {
        match groups.iter_mut().find(|(_, m)| *m == message) {
            Some((nodes, _)) => nodes.push(node),
            None => groups.push((vec![node], message)),
        }
    }
    groups
        .iter()
        .map(|(nodes, message)| format!("{}: {message}", nodes.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The nodes to ask: all, or the one `node` names.
fn chosen(
    targets: Vec<(String, Target)>,
    node: Option<&str>,
) -> Result<Vec<(String, Target)>, String> {
    match node {
        None => Ok(targets),
        Some(node) => {
            let known: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
            let picked: Vec<_> = targets.into_iter().filter(|(n, _)| n == node).collect();
            if picked.is_empty() {
                return Err(format!(
                    "no monitor pod serves a viewer on node {node:?} (monitored: {})",
                    known.join(", ")
                ));
            }
            Ok(picked)
        }
    }
}

/// Answers one tool call for the cluster.
async fn call(
    client: &Client,
    opts: McpOptions,
    name: &str,
    args: &Value,
) -> Option<Result<Value, String>> {
    let monitors = match Monitors::load(client).await {
        Ok(m) => m,
        Err(e) => return Some(Err(e.to_string())),
    };
    let targets = super::top::targets(&monitors);
    if name == "list_nodes" {
        let probe = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let answers = post_all(
            client,
            targets,
            "/mcp",
            &probe,
            opts.max_nodes_at_once,
            opts.node_timeout,
        )
        .await;
        let nodes: Vec<Value> = answers
            .into_iter()
            .map(|(node, t, a)| {
                json!({
                    "node": node,
                    "pod": format!("{}/{}", t.namespace, t.pod),
                    "answering": a.is_ok(),
                    "reason": a.err().map(|e| e.to_string()),
                })
            })
            .collect();
        return Some(Ok(json!({"nodes": nodes})));
    }
    let how = join_of(name, args)?;
    let node = args.get("node").and_then(Value::as_str).map(str::to_string);
    let targets = match chosen(targets, node.as_deref()) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    if targets.is_empty() {
        return Some(Err(
            "no monitor pod serves a viewer in this cluster (kubectl fgm nodes)".into(),
        ));
    }
    let mut node_args = args.clone();
    if let Some(o) = node_args.as_object_mut() {
        o.remove("node");
    }
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": node_args}});
    let answers = post_all(
        client,
        targets,
        "/mcp",
        &request,
        opts.max_nodes_at_once,
        opts.node_timeout,
    )
    .await
    .into_iter()
    .map(|(node, t, a)| (node, format!("{}/{}", t.namespace, t.pod), node_result(a)))
    .collect();
    Some(join(how, answers))
}

/// Serves MCP on stdin/stdout (one JSON-RPC message per line) until stdin closes.
pub async fn serve(client: &Client, opts: McpOptions) -> Result<(), PluginError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| PluginError::Io {
            what: what.clone(),
            source,
        }
    };
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.next_line().await.map_err(io("reading stdin"))? {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Err(e) => Some(rpc_error(
                &Value::Null,
                PARSE_ERROR,
                format!("not JSON: {e}"),
            )),
            Ok(message) => match classify(&message) {
                Incoming::Ignore => None,
                Incoming::Invalid(a) | Incoming::Error(a) => Some(a),
                Incoming::Initialize { id, params } => Some(initialize_answer(
                    &id,
                    &params,
                    "Per-second history of every container of the cluster's monitored nodes (CPU, \
                     memory, IO, pressure, throttling, network, OOM kills). Start with \
                     top_containers (no arguments: the last 15 minutes, every node).",
                )),
                Incoming::Ping(id) => Some(json!({"jsonrpc": "2.0", "id": id, "result": {}})),
                Incoming::List(id) => {
                    Some(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools()}}))
                }
                Incoming::Call { id, name, args } => {
                    Some(match call(client, opts, &name, &args).await {
                        None => unknown_tool(&id, &name),
                        Some(outcome) => tool_answer(&id, outcome),
                    })
                }
            },
        };
        if let Some(answer) = answer {
            let mut text = answer.to_string();
            text.push('\n');
            out.write_all(text.as_bytes())
                .await
                .map_err(io("writing stdout"))?;
            out.flush().await.map_err(io("writing stdout"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "mcp_tests.rs"]
mod tests;
