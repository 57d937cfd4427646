//! Joining the nodes' viewer answers into one (pure functions over JSON): every container id
//! becomes `<node>/<id>` and every row carries `node`; rankings are ranked again across
//! nodes; nodes that did not answer are listed, never fatal.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// A node whose viewer did not answer (in time, or at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotAnswering {
    pub node: String,
    /// The monitor pod (`namespace/pod`) or address asked.
    pub via: String,
    pub reason: String,
    /// The viewer's message when it refused the request itself (HTTP 400).
    #[serde(skip)]
    pub bad_request: Option<String>,
}

/// One node's answer to the same request.
pub type NodeAnswer = (String, Result<Value, NotAnswering>);

/// `<node>/<id>`.
pub fn key(node: &str, id: &str) -> String {
    format!("{node}/{id}")
}

/// `(node, id)` of a `<node>/<id>` key; `None` when it has no node part.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
        .filter(|(node, id)| !node.is_empty() && !id.is_empty())
}

/// Groups `<node>/<id>` keys by node, nodes in first-seen order; the first key without a node
/// part is the error.
pub fn group_by_node(keys: &[&str]) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for k in keys {
        let (node, id) = split_key(k).ok_or_else(|| {
            format!("container {k:?} names no node: in the cluster view ids are <node>/<id>")
        })?;
        match out.iter_mut().find(|(n, _)| n == node) {
            Some((_, ids)) => ids.push(id.to_string()),
            None => out.push((node.to_string(), vec![id.to_string()])),
        }
    }
    Ok(out)
}

fn rekey(v: &mut Value, field: &str, node: &str) {
    if let Some(id) = v[field].as_str() {
        v[field] = json!(key(node, id));
    }
}

fn with_node(mut v: Value, node: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("node".into(), json!(node));
    }
    v
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn skipped(v: &Value, node: &str) -> Vec<Value> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let mut f = f.clone();
            if let Some(path) = f["path"].as_str() {
                f["path"] = json!(format!("{node}: {path}"));
            }
            f
        })
        .collect()
}

/// Splits answers into the ones given and the nodes not answering.
fn answered(answers: Vec<NodeAnswer>) -> (Vec<(String, Value)>, Vec<NotAnswering>) {
    let mut ok = Vec::new();
    let mut not = Vec::new();
    for (node, a) in answers {
        match a {
            Ok(v) => ok.push((node, v)),
            Err(e) => not.push(e),
        }
    }
    (ok, not)
}

/// `/api/status` of the cluster: ready when any node is; the data range spans every node's;
/// each node's own line under `nodes`.
pub fn status(answers: Vec<NodeAnswer>, version: &str) -> Value {
    let asked = answers.len();
    let (ok, not) = answered(answers);
    let mut earliest: Option<DateTime<Utc>> = None;
    let mut latest: Option<DateTime<Utc>> = None;
    let mut updated: Option<DateTime<Utc>> = None;
    let mut containers = 0;
    let mut poll = 1.0_f64;
    let mut corrupt = Vec::new();
    let mut nodes = Vec::new();
    let mut states = Vec::new();
    for (node, s) in &ok {
        let state = s["state"].as_str().unwrap_or("error").to_string();
        if state == "ready" {
            containers += s["containers"].as_u64().unwrap_or(0);
            let range = &s["data_range"];
            if let Some(e) = time(&range["earliest"]) {
                earliest = Some(earliest.map_or(e, |x| x.min(e)));
            }
            if let Some(l) = time(&range["latest"]) {
                latest = Some(latest.map_or(l, |x| x.max(l)));
            }
            updated = updated.max(time(&s["updated_at"]));
        }
        poll = poll.max(s["poll_interval_seconds"].as_f64().unwrap_or(1.0));
        corrupt.extend(skipped(&s["corrupt_files"], node));
        nodes.push(json!({
            "node": node,
            "state": state,
            "message": s["message"],
            "version": s["version"],
            "data_range": s["data_range"],
            "containers": s["containers"],
        }));
        states.push(state);
    }
    let state = if states.iter().any(|s| s == "ready") {
        "ready"
    } else if states.iter().any(|s| s == "waiting") {
        "waiting"
    } else {
        "error"
    };
    let message = match state {
        "ready" => String::new(),
        _ if asked == 0 => "No monitored node: no NodeMonitor's pod runs a viewer".into(),
        _ if ok.is_empty() => format!(
            "None of the {asked} node(s) answered: {}",
            not.iter()
                .map(|n| format!("{} ({})", n.node, n.reason))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!("No node has data yet ({} node(s) answered)", ok.len()),
    };
    let range = match (earliest, latest) {
        (None, None) => Value::Null,
        _ => json!({ "earliest": earliest, "latest": latest }),
    };
    json!({
        "state": state,
        "message": message,
        "version": version,
        "federated": true,
        "index_loaded": state == "ready",
        "index_source": "federated",
        "index_error": Value::Null,
        "updated_at": updated,
        "data_range": range,
        "containers": containers,
        "waiting_seconds": 0,
        "poll_interval_seconds": poll,
        "corrupt_files": corrupt,
        "nodes": nodes,
        "not_answering": not,
    })
}

/// `/api/containers` of the cluster: every node's list, keyed `<node>/<id>`, with `node`.
pub fn containers(answers: Vec<NodeAnswer>) -> Value {
    let (ok, not) = answered(answers);
    let mut list = Vec::new();
    let mut hidden = 0;
    for (node, a) in ok {
        hidden += a["hidden_sandboxes"].as_u64().unwrap_or(0);
        for c in a["containers"].as_array().into_iter().flatten() {
            let mut c = c.clone();
            rekey(&mut c, "id", &node);
            list.push(with_node(c, &node));
        }
    }
    json!({ "containers": list, "hidden_sandboxes": hidden, "not_answering": not })
}

/// `/api/metrics` of the cluster: the union of the nodes' metrics by name, in the first
/// answer's order (a node of another version may know more).
pub fn metrics(answers: Vec<NodeAnswer>) -> Value {
    let (ok, not) = answered(answers);
    let mut list: Vec<Value> = Vec::new();
    for (_, a) in &ok {
        for m in a["metrics"].as_array().into_iter().flatten() {
            if !list.iter().any(|k| k["name"] == m["name"]) {
                list.push(m.clone());
            }
        }
    }
    json!({ "metrics": list, "from_file": Value::Null, "not_answering": not })
}

/// `/api/timeseries` of the cluster from each node's answer for its own containers: series
/// in the order `keys` asked for them.
pub fn timeseries(answers: Vec<NodeAnswer>, keys: &[&str]) -> Value {
    let (ok, not) = answered(answers);
    let mut out = ok
        .first()
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| json!({}));
    let mut series: Vec<Value> = Vec::new();
    let mut files_read = 0;
    let mut skipped_files = Vec::new();
    for (node, a) in &ok {
        files_read += a["files_read"].as_u64().unwrap_or(0);
        skipped_files.extend(skipped(&a["skipped_files"], node));
        for s in a["series"].as_array().into_iter().flatten() {
            let mut s = s.clone();
            rekey(&mut s, "container", node);
            series.push(with_node(s, node));
        }
    }
    let at = |s: &Value| {
        s["container"]
            .as_str()
            .and_then(|c| keys.iter().position(|k| *k == c))
            .unwrap_or(usize::MAX)
    };
    series.sort_by_key(at);
    if let Some(o) = out.as_object_mut() {
        o.insert("series".into(), json!(series));
        o.insert("files_read".into(), json!(files_read));
        o.insert("skipped_files".into(), json!(skipped_files));
        o.insert("not_answering".into(), json!(not));
    }
    out
}

/// `/api/events` of the cluster: every node's events with `node`, in time order, the newest
/// `max` kept.
pub fn events(answers: Vec<NodeAnswer>, max: usize) -> Value {
    let (ok, not) = answered(answers);
    let mut out = ok
        .first()
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| json!({}));
    let mut list = Vec::new();
    let mut truncated = false;
    let mut skipped_lines = 0;
    for (node, a) in &ok {
        truncated |= a["truncated"].as_bool().unwrap_or(false);
        skipped_lines += a["skipped_lines"].as_u64().unwrap_or(0);
        list.extend(events_of(&a["events"], node));
    }
    sort_by_time(&mut list);
    if list.len() > max {
        list.drain(..list.len() - max);
        truncated = true;
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("events".into(), json!(list));
        o.insert("truncated".into(), json!(truncated));
        o.insert("skipped_lines".into(), json!(skipped_lines));
        o.insert("not_answering".into(), json!(not));
    }
    out
}

fn events_of(v: &Value, node: &str) -> Vec<Value> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut e = e.clone();
            if let Some(owners) = e["containers"].as_array() {
                let owners: Vec<Value> = owners
                    .iter()
                    .filter_map(|o| o.as_str().map(|id| json!(key(node, id))))
                    .collect();
                e["containers"] = json!(owners);
            }
            with_node(e, node)
        })
        .collect()
}

fn sort_by_time(list: &mut [Value]) {
    list.sort_by(|a, b| time(&a["time"]).cmp(&time(&b["time"])));
}

/// `/api/overview` of the cluster: every node's rows (with `node`), each ranking ranked again
/// across nodes and cut to `top`, the troubled ones likewise, events joined in time order.
pub fn overview(answers: Vec<NodeAnswer>, top: usize, max_events: usize) -> Value {
    let (ok, not) = answered(answers);
    let mut out = ok
        .first()
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| json!({}));
    let mut rows = Vec::new();
    let mut rankings: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    let mut troubled = Vec::new();
    let mut events = Vec::new();
    let (mut containers, mut files_read, mut slot_ms) = (0, 0, 0);
    let mut skipped_files = Vec::new();
    let mut events_truncated = false;
    for (node, a) in &ok {
        containers += a["containers"].as_u64().unwrap_or(0);
        files_read += a["files_read"].as_u64().unwrap_or(0);
        slot_ms = slot_ms.max(a["slot_ms"].as_u64().unwrap_or(0));
        skipped_files.extend(skipped(&a["skipped_files"], node));
        events_truncated |= a["events_truncated"].as_bool().unwrap_or(false);
        for r in a["rows"].as_array().into_iter().flatten() {
            let mut r = r.clone();
            rekey(&mut r, "id", node);
            rows.push(with_node(r, node));
        }
        for (category, ranking) in a["rankings"].as_object().into_iter().flatten() {
            let entry = rankings
                .entry(category.clone())
                .or_insert_with(|| (ranking["unit"].clone(), Vec::new()));
            for r in ranking["rows"].as_array().into_iter().flatten() {
                let mut r = r.clone();
                rekey(&mut r, "id", node);
                entry.1.push(with_node(r, node));
            }
        }
        for t in a["troubled"].as_array().into_iter().flatten() {
            let mut t = t.clone();
            rekey(&mut t, "id", node);
            troubled.push(with_node(t, node));
        }
        events.extend(events_of(&a["events"], node));
    }
    let mut ranked = Map::new();
    for (category, (unit, mut list)) in rankings {
        list.sort_by(|a, b| {
            let v = |r: &Value| r["value"].as_f64().unwrap_or(0.0);
            v(b).total_cmp(&v(a))
                .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
        });
        list.truncate(top);
        ranked.insert(category, json!({ "unit": unit, "rows": list }));
    }
    troubled.sort_by(|a, b| {
        let k = |t: &Value| {
            (
                t["oom_kills"].as_u64().unwrap_or(0),
                t["other_events"].as_u64().unwrap_or(0),
            )
        };
        k(b).cmp(&k(a))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    troubled.truncate(top);
    sort_by_time(&mut events);
    if events.len() > max_events {
        events.drain(..events.len() - max_events);
        events_truncated = true;
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("containers".into(), json!(containers));
        o.insert("files_read".into(), json!(files_read));
        o.insert("slot_ms".into(), json!(slot_ms));
        o.insert("skipped_files".into(), json!(skipped_files));
        o.insert("rows".into(), json!(rows));
        o.insert("rankings".into(), Value::Object(ranked));
        o.insert("troubled".into(), json!(troubled));
        o.insert("events".into(), json!(events));
        o.insert("events_truncated".into(), json!(events_truncated));
        o.insert("nodes".into(), json!(ok.len() + not.len()));
        o.insert("not_answering".into(), json!(not));
    }
    out
}

/// A one-node answer (study, processes, breakdown) with its container ids keyed `<node>/<id>`.
pub fn one_node(mut answer: Value, node: &str) -> Value {
    for field in ["container", "id"] {
        rekey(&mut answer, field, node);
    }
    if let Some(skips) = answer.get("skipped_files").cloned() {
        answer["skipped_files"] = json!(skipped(&skips, node));
    }
    with_node(answer, node)
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
