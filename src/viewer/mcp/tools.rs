//! The MCP tools: each a translation of its arguments into a request to the
//! viewer's own HTTP API (in process, through the router: the same checks
//! and errors as the page's requests) and of the answer into a compact one.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::viewer::api::Shared;

/// Most containers, events or matches in one answer.
const MAX_ROWS: usize = 50;

/// Why a call gave no answer.
#[derive(Debug)]
pub enum CallError {
    UnknownTool,
    /// Bad arguments, or what the API said: the model reads this.
    Failed(String),
}

fn failed(message: impl Into<String>) -> CallError {
    CallError::Failed(message.into())
}

/// The range arguments every tool takes.
fn range_properties() -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("since".into(), json!({"type": "string",
        "description": "how far back from the newest sample, e.g. 15m, 2h, 1d (default: the last 15 minutes of data)"}));
    p.insert("from".into(), json!({"type": "string",
        "description": "start, RFC 3339 (2025-12-30T14:00:00Z) or ms since the epoch; instead of since"}));
    p.insert(
        "to".into(),
        json!({"type": "string", "description": "end, as from (default: the newest sample)"}),
    );
    p
}

fn tool(name: &str, description: &str, extra: Value, required: &[&str]) -> Value {
    let mut properties = range_properties();
    if let Some(extra) = extra.as_object() {
        properties.extend(extra.clone());
    }
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required},
    })
}

/// The tools, as `tools/list` gives them.
pub fn list() -> Vec<Value> {
    vec![
        tool(
            "top_containers",
            "The node's containers ranked by CPU, memory, CPU throttling, disk IO, pressure stall or pod network over a range, highest first, with their pod and namespace.",
            json!({
                "by": {"type": "string", "enum": ["cpu", "memory", "throttling", "io", "pressure", "network"],
                       "description": "what to rank by (default cpu)"},
                "top": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS, "description": "how many (default 10)"},
                "q": {"type": "string", "description": "only containers matching these words (pod, namespace, container, label=value)"},
            }),
            &[],
        ),
        tool(
            "container_summary",
            "One container over a range: CPU cores and memory working set (min, p50, p99, max of the per-second values), limits, throttling, IO, pressure, OOM kills and pod events.",
            json!({"container": {"type": "string",
                "description": "a container id, or words that match exactly one container (its pod name, say)"}}),
            &["container"],
        ),
        tool(
            "container_events",
            "Pod events over a range (OOM kills, restarts, terminations, CrashLoopBackOff), newest last; of one container, or of every container of the node.",
            json!({"container": {"type": "string", "description": "a container id or words matching one (default: all)"}}),
            &[],
        ),
        tool(
            "study",
            "A study of one container's per-second values: periodicity (is there a period, how strong) or changepoints (when the level changed and by how much).",
            json!({
                "container": {"type": "string", "description": "a container id or words matching one"},
                "kind": {"type": "string", "enum": ["periodicity", "changepoints"], "description": "default periodicity"},
                "metric": {"type": "string", "description": "a metric name from list_metrics (default cpu_usage_usec)"},
            }),
            &["container"],
        ),
        tool(
            "list_containers",
            "The node's containers (running or recorded), with pod, namespace and container names; optionally only those matching words.",
            json!({"q": {"type": "string", "description": "words to match (pod, namespace, container, label=value)"}}),
            &[],
        ),
        tool(
            "list_metrics",
            "The metrics recorded for every container (name, title, unit, kind).",
            json!({}),
            &[],
        ),
    ]
}

/// Runs tool `name` with `args`.
pub async fn call(viewer: &Shared, name: &str, args: &Value) -> Result<Value, CallError> {
    let api = Api { viewer };
    match name {
        "top_containers" => top_containers(&api, args).await,
        "container_summary" => container_summary(&api, args).await,
        "container_events" => container_events(&api, args).await,
        "study" => study(&api, args).await,
        "list_containers" => list_containers(&api, args).await,
        "list_metrics" => list_metrics(&api).await,
        _ => Err(CallError::UnknownTool),
    }
}

/// The viewer's HTTP API, called in process.
struct Api<'a> {
    viewer: &'a Shared,
}

impl Api<'_> {
    /// GET `path` (with its query); the JSON answer, or the API's error message.
    async fn get(&self, path: &str) -> Result<Value, CallError> {
        let request = Request::get(path)
            .body(Body::empty())
            .map_err(|e| failed(format!("bad request {path}: {e}")))?;
        let response = crate::viewer::api::app(self.viewer.clone())
            .oneshot(request)
            .await
            .map_err(|e| failed(format!("{path}: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(format!("{path}: {e}")))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != StatusCode::OK {
            let message = value["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(failed(message));
        }
        Ok(value)
    }
}

fn text<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `&from=..&to=..` of the arguments (`since` relative to the newest sample).
fn range_query(api: &Api<'_>, args: &Value) -> Result<String, CallError> {
    let mut q = String::new();
    if let Some(since) = text(args, "since") {
        let span: crate::units::HumanDuration = since
            .parse()
            .map_err(|e| failed(format!("since={since:?}: {e}")))?;
        let latest: DateTime<Utc> = api
            .viewer
            .snapshot()
            .index
            .as_ref()
            .and_then(|i| i.data_range.latest)
            .unwrap_or_else(Utc::now);
        let span = chrono::Duration::from_std(span.0).map_err(|e| failed(e.to_string()))?;
        q.push_str(&format!(
            "&from={}&to={}",
            (latest - span).timestamp_millis(),
            latest.timestamp_millis()
        ));
        return Ok(q);
    }
    for name in ["from", "to"] {
        if let Some(v) = text(args, name) {
            q.push_str(&format!("&{name}={}", encode(v)));
        }
    }
    Ok(q)
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Names of a container from a row of `/api/containers` or `/api/overview`.
fn names(row: &Value) -> Value {
    json!({
        "container_id": row["id"],
        "namespace": row["namespace"],
        "pod": row["pod_name"],
        "container": row["container_name"],
    })
}

/// The one container `container` names: an id, or words matching one.
async fn resolve(api: &Api<'_>, container: &str) -> Result<Value, CallError> {
    let list = api
        .get(&format!(
            "/api/containers?include_sandbox=true&q={}",
            encode(container)
        ))
        .await?;
    let rows = list["containers"].as_array().cloned().unwrap_or_default();
    if let Some(exact) = rows.iter().find(|r| r["id"] == container) {
        return Ok(exact.clone());
    }
    match rows.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(failed(format!(
            "no container matches {container:?}: list_containers names them"
        ))),
        many => Err(failed(format!(
            "{} containers match {container:?}, name one: {}",
            many.len(),
            many.iter()
                .take(10)
                .map(|r| format!(
                    "{} ({}/{} {})",
                    r["id"].as_str().unwrap_or(""),
                    r["namespace"].as_str().unwrap_or(""),
                    r["pod_name"].as_str().unwrap_or(""),
                    r["container_name"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

async fn top_containers(api: &Api<'_>, args: &Value) -> Result<Value, CallError> {
    let by = text(args, "by").unwrap_or("cpu");
    let top = args.get("top").and_then(Value::as_u64).unwrap_or(10);
    if !(1..=MAX_ROWS as u64).contains(&top) {
        return Err(failed(format!("top={top}: from 1 to {MAX_ROWS}")));
    }
    let mut path = format!("/api/overview?top={top}{}", range_query(api, args)?);
    if let Some(q) = text(args, "q") {
        path.push_str(&format!("&q={}", encode(q)));
    }
    let overview = api.get(&path).await?;
    let Some(ranking) = overview["rankings"].get(by) else {
        let known: Vec<&String> = overview["rankings"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        return Err(failed(format!("by={by:?}: one of {known:?}")));
    };
    let rows = overview["rows"].as_array().cloned().unwrap_or_default();
    let ranked: Vec<Value> = ranking["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let mut out = rows
                .iter()
                .find(|row| row["id"] == r["id"])
                .map(names)
                .unwrap_or_else(|| json!({"container_id": r["id"]}));
            out["value"] = r["value"].clone();
            out
        })
        .collect();
    Ok(json!({
        "by": by,
        "unit": ranking["unit"],
        "from": overview["from"],
        "to": overview["to"],
        "containers": ranked,
    }))
}

/// min, p50, p99 and max of the non-null values of a series answer.
fn spread(series: &Value) -> Value {
    let mut v: Vec<f64> = series["series"][0]["v"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    json!({"min": at(0.0), "p50": at(0.5), "p99": at(0.99), "max": at(1.0), "samples": v.len(),
           "downsampled": series["series"][0]["downsampled"]})
}

async fn container_summary(api: &Api<'_>, args: &Value) -> Result<Value, CallError> {
    let wanted = text(args, "container").ok_or_else(|| failed("container is required"))?;
    let c = resolve(api, wanted).await?;
    let id = c["id"].as_str().unwrap_or_default().to_string();
    let range = range_query(api, args)?;
    let overview = api
        .get(&format!(
            "/api/overview?top=1&include_sandbox=true&q={id}{range}"
        ))
        .await?;
    let row = overview["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id.as_str()))
        .cloned();
    let series = |metric: &str| {
        format!("/api/timeseries?containers={id}&metric={metric}&points=10000{range}")
    };
    let cpu = api.get(&series("cpu_usage_usec")).await?;
    let memory = api.get(&series("memory_working_set_bytes")).await?;
    let mut out = names(&c);
    out["from"] = overview["from"].clone();
    out["to"] = overview["to"].clone();
    out["cpu_cores"] = spread(&cpu);
    out["memory_working_set_bytes"] = spread(&memory);
    match row {
        Some(row) => {
            out["stats"] = row["stats"].clone();
            out["events"] = row["events"].clone();
            out["oom_kills"] = row["oom_kills"].clone();
        }
        None => out["stats"] = json!("no samples of this container in the range"),
    }
    Ok(out)
}

async fn container_events(api: &Api<'_>, args: &Value) -> Result<Value, CallError> {
    let mut path = format!(
        "/api/events?{}",
        range_query(api, args)?.trim_start_matches('&')
    );
    let mut who = json!("every container of the node");
    if let Some(wanted) = text(args, "container") {
        let c = resolve(api, wanted).await?;
        path.push_str(&format!(
            "&containers={}",
            c["id"].as_str().unwrap_or_default()
        ));
        who = names(&c);
    }
    let answer = api.get(&path).await?;
    let events = answer["events"].as_array().cloned().unwrap_or_default();
    let total = events.len();
    let kept: Vec<Value> = events.into_iter().rev().take(MAX_ROWS).rev().collect();
    Ok(json!({
        "of": who,
        "events": kept,
        "total": total,
        "truncated": total > MAX_ROWS || answer["truncated"] == true,
    }))
}

async fn study(api: &Api<'_>, args: &Value) -> Result<Value, CallError> {
    let wanted = text(args, "container").ok_or_else(|| failed("container is required"))?;
    let c = resolve(api, wanted).await?;
    let kind = text(args, "kind").unwrap_or("periodicity");
    let metric = text(args, "metric").unwrap_or("cpu_usage_usec");
    let answer = api
        .get(&format!(
            "/api/study?kind={}&metric={}&container={}{}",
            encode(kind),
            encode(metric),
            c["id"].as_str().unwrap_or_default(),
            range_query(api, args)?
        ))
        .await?;
    let mut out = names(&c);
    out["kind"] = json!(kind);
    out["metric"] = json!(metric);
    out["study"] = answer;
    Ok(out)
}

async fn list_containers(api: &Api<'_>, args: &Value) -> Result<Value, CallError> {
    let q = text(args, "q")
        .map(|q| format!("?q={}", encode(q)))
        .unwrap_or_default();
    let answer = api.get(&format!("/api/containers{q}")).await?;
    let rows = answer["containers"].as_array().cloned().unwrap_or_default();
    let total = rows.len();
    Ok(json!({
        "containers": rows.iter().take(MAX_ROWS).map(names).collect::<Vec<_>>(),
        "total": total,
        "truncated": total > MAX_ROWS,
    }))
}

async fn list_metrics(api: &Api<'_>) -> Result<Value, CallError> {
    let answer = api.get("/api/metrics").await?;
    let metrics: Vec<Value> = answer["metrics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| json!({"name": m["name"], "title": m["title"], "unit": m["display_unit"], "kind": m["kind"]}))
        .collect();
    Ok(json!({"metrics": metrics}))
}
