//! `kubectl fgm view`: the viewer's page on the user's machine over every monitored node. The
//! page is the node viewer's own; its API calls are answered here by asking the nodes
//! ([`Federation`]) and joining their answers ([`merge`]): containers are keyed `<node>/<id>`,
//! rows carry `node`, a chart may hold containers of several nodes.
//!
//! ```text
//!  browser ─▶ 127.0.0.1:P ─▶ /api/overview ─▶ every node ─▶ merge::overview (ranked across nodes)
//!                         ─▶ /api/timeseries?containers=a/1,b/2 ─▶ node a (1), node b (2) ─▶ joined
//!                         ─▶ /api/study|processes|breakdown|export?container=a/1 ─▶ node a only
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::error::PluginError;
use super::federation::merge::{self, NotAnswering};
use super::federation::{FedNode, Federation, all_refused, not_answering};
use crate::viewer::api::MAX_EVENTS;
use crate::viewer::overview::{DEFAULT_TOP, MAX_TOP};
use crate::viewer::page;

/// An answer in the node viewer's error form: `{"error": message}` with its status.
#[derive(Debug)]
pub struct ViewError(StatusCode, String);

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> ViewError {
    ViewError(StatusCode::BAD_REQUEST, message.into())
}

type Answered = Result<Json<Value>, ViewError>;

/// How long a request about one node's container (a study, an export) may take: the node
/// viewer's own request timeout (30 s) and a margin. Whether the node answers at all is asked
/// first, within `--node-timeout` ([`alive`]).
const ONE_NODE_TIMEOUT: Duration = Duration::from_secs(35);

/// The node's `/healthz` within `--node-timeout`: a stopped node is said at once, not after
/// [`ONE_NODE_TIMEOUT`].
async fn alive(fed: &Federation, node: &FedNode) -> Result<(), ViewError> {
    match fed.ask(node, "/healthz").await {
        Ok(a) if a.status.is_success() => Ok(()),
        Ok(a) => Err(unavailable(&not_answering(
            node,
            &super::forward::AskError::Failed(format!("/healthz answered {}", a.status)),
        ))),
        Err(e) => Err(unavailable(&not_answering(node, &e))),
    }
}

/// The query string's pairs, in order.
fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ViewError> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| bad(format!("bad query string: {e}")))
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `path?query` with `name` set to `value` (other parameters kept as given).
fn path_with(path: &str, pairs: &[(String, String)], name: &str, value: &str) -> String {
    let mut out: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    out.push((name, value));
    let query = serde_urlencoded::to_string(&out).unwrap_or_default();
    format!("{path}?{query}")
}

fn path_of(path: &str, raw: Option<&str>) -> String {
    match raw.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

/// The request was refused by every node that answered, with the same 400: answered so.
fn refused(answers: &[merge::NodeAnswer]) -> Result<(), ViewError> {
    match all_refused(answers) {
        Some(message) => Err(bad(message)),
        None => Ok(()),
    }
}

/// Container ids per node, nodes in first-seen order.
type ByNode = Vec<(String, Vec<String>)>;

/// `<node>/<id>` keys of a comma-separated parameter, grouped by node.
fn grouped(text: &str) -> Result<(Vec<&str>, ByNode), ViewError> {
    let keys: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    let groups = merge::group_by_node(&keys).map_err(bad)?;
    Ok((keys, groups))
}

/// The nodes named by `groups`, each with its ids; unknown nodes listed as not answering.
fn resolve(fed: &Federation, groups: ByNode) -> (Vec<(&FedNode, Vec<String>)>, Vec<NotAnswering>) {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for (node, ids) in groups {
        match fed.node(&node) {
            Some(n) => known.push((n, ids)),
            None => unknown.push(NotAnswering {
                node: node.clone(),
                via: String::new(),
                reason: "not a monitored node of this view".into(),
                bad_request: None,
            }),
        }
    }
    (known, unknown)
}

/// Asks each node in `targets` for `path` with `name` set to its ids.
async fn ask_split(
    fed: &Federation,
    targets: &[(&FedNode, Vec<String>)],
    path: &str,
    pairs: &[(String, String)],
    name: &str,
) -> Vec<merge::NodeAnswer> {
    let nodes: Vec<&FedNode> = targets.iter().map(|(n, _)| *n).collect();
    fed.ask_each(nodes, |node| {
        let ids = targets
            .iter()
            .find(|(n, _)| n.name == node.name)
            .map(|(_, ids)| ids.join(","))
            .unwrap_or_default();
        path_with(path, pairs, name, &ids)
    })
    .await
}

fn add_unknown(answers: &mut Vec<merge::NodeAnswer>, unknown: Vec<NotAnswering>) {
    answers.extend(unknown.into_iter().map(|n| (n.node.clone(), Err(n))));
}

/// How long the cluster's status is reused: the page asks for it every second while live, so
/// several pages (or a burst) ask the nodes once a second at most.
const STATUS_REUSE: Duration = Duration::from_secs(1);

/// The cluster view's state: the nodes, and the last status joined from them.
#[derive(Clone)]
pub struct ViewState {
    fed: Federation,
    status: Arc<tokio::sync::Mutex<Option<(Instant, Value)>>>,
}

impl FromRef<ViewState> for Federation {
    fn from_ref(state: &ViewState) -> Self {
        state.fed.clone()
    }
}

async fn status(State(state): State<ViewState>) -> Json<Value> {
    // Held while asking: requests arriving meanwhile wait for this answer instead of asking too.
    let mut last = state.status.lock().await;
    if let Some((at, value)) = last.as_ref()
        && at.elapsed() < STATUS_REUSE
    {
        return Json(value.clone());
    }
    let answers = state.fed.ask_all("/api/status").await;
    let mut value = merge::status(answers, env!("CARGO_PKG_VERSION"));
    value["asked_at"] = json!(chrono::Utc::now());
    *last = Some((Instant::now(), value.clone()));
    Json(value)
}

async fn containers(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    let answers = fed
        .ask_all(&path_of("/api/containers", raw.as_deref()))
        .await;
    refused(&answers)?;
    Ok(Json(merge::containers(answers)))
}

async fn metrics(State(fed): State<Federation>) -> Json<Value> {
    Json(merge::metrics(fed.ask_all("/api/metrics").await))
}

async fn overview(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    let p = pairs(raw.as_deref())?;
    let top = match param(&p, "top") {
        None => DEFAULT_TOP,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|t| (1..=MAX_TOP).contains(t))
            .ok_or_else(|| bad(format!("top={t:?} is not a number from 1 to {MAX_TOP}")))?,
    };
    let answers = fed.ask_all(&path_of("/api/overview", raw.as_deref())).await;
    refused(&answers)?;
    Ok(Json(merge::overview(answers, top, MAX_EVENTS)))
}

async fn timeseries(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    let p = pairs(raw.as_deref())?;
    let text = param(&p, "containers")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| bad("containers is required"))?;
    let (keys, groups) = grouped(text)?;
    let (targets, unknown) = resolve(&fed, groups);
    let mut answers = ask_split(&fed, &targets, "/api/timeseries", &p, "containers").await;
    refused(&answers)?;
    add_unknown(&mut answers, unknown);
    Ok(Json(merge::timeseries(answers, &keys)))
}

async fn events(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    let p = pairs(raw.as_deref())?;
    let mut answers = match param(&p, "containers").filter(|c| !c.trim().is_empty()) {
        None => fed.ask_all(&path_of("/api/events", raw.as_deref())).await,
        Some(text) => {
            let (_, groups) = grouped(text)?;
            let (targets, unknown) = resolve(&fed, groups);
            let mut answers = ask_split(&fed, &targets, "/api/events", &p, "containers").await;
            add_unknown(&mut answers, unknown);
            answers
        }
    };
    refused(&answers)?;
    answers.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Json(merge::events(answers, MAX_EVENTS)))
}

/// Study, processes, breakdown: the one node of `container`, its answer keyed back.
async fn one_node(fed: &Federation, path: &str, raw: Option<&str>) -> Answered {
    let p = pairs(raw)?;
    let key = param(&p, "container")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| bad("container is required"))?;
    let (node, id) = merge::split_key(key).ok_or_else(|| {
        bad(format!(
            "container {key:?} names no node: in the cluster view ids are <node>/<id>"
        ))
    })?;
    let node = fed.node(node).ok_or_else(|| {
        ViewError(
            StatusCode::NOT_FOUND,
            format!("no monitored node {node} in this view"),
        )
    })?;
    alive(fed, node).await?;
    let answer = fed
        .ask_within(
            node,
            &path_with(path, &p, "container", id),
            ONE_NODE_TIMEOUT,
        )
        .await
        .map_err(|e| unavailable(&not_answering(node, &e)))?;
    match answer.json() {
        Ok(v) => Ok(Json(merge::one_node(v, &node.name))),
        Err(super::forward::AskError::Answered { status, message }) => Err(ViewError(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            message,
        )),
        Err(e) => Err(unavailable(&not_answering(node, &e))),
    }
}

fn unavailable(n: &NotAnswering) -> ViewError {
    ViewError(
        StatusCode::BAD_GATEWAY,
        format!("node {} ({}) is not answering: {}", n.node, n.via, n.reason),
    )
}

async fn study(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    one_node(&fed, "/api/study", raw.as_deref()).await
}

async fn processes(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    one_node(&fed, "/api/processes", raw.as_deref()).await
}

async fn breakdown(State(fed): State<Federation>, RawQuery(raw): RawQuery) -> Answered {
    one_node(&fed, "/api/breakdown", raw.as_deref()).await
}

/// An export holds the containers of one node: its answer (CSV, Parquet or JSON) as it came.
async fn export(
    State(fed): State<Federation>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ViewError> {
    let p = pairs(raw.as_deref())?;
    let text = param(&p, "containers")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| bad("containers is required"))?;
    let (_, groups) = grouped(text)?;
    let [(node, ids)] = groups.as_slice() else {
        return Err(bad(
            "an export holds the containers of one node: export each node's separately",
        ));
    };
    let node = fed.node(node).ok_or_else(|| {
        ViewError(
            StatusCode::NOT_FOUND,
            format!("no monitored node {node} in this view"),
        )
    })?;
    let path = path_with("/api/export", &p, "containers", &ids.join(","));
    alive(&fed, node).await?;
    let answer = fed
        .ask_within(node, &path, ONE_NODE_TIMEOUT)
        .await
        .map_err(|e| unavailable(&not_answering(node, &e)))?;
    let mut response = (answer.status, answer.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, answer.content_type),
        (header::CONTENT_DISPOSITION, answer.content_disposition),
    ] {
        if let Some(v) = value {
            headers.insert(name, v);
        }
    }
    Ok(response)
}

async fn asset(Path(name): Path<String>) -> Response {
    match page::asset(&name) {
        Some((mime, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            body,
        )
            .into_response(),
        None => ViewError(StatusCode::NOT_FOUND, format!("no asset {name:?}")).into_response(),
    }
}

/// The cluster view's routes: the node viewer's page and API, answered across `fed`.
pub fn app(fed: Federation) -> Router {
    Router::new()
        .route("/", get(|| async { Html(page::INDEX_HTML) }))
        .route("/assets/{name}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/status", get(status))
        .route("/api/containers", get(containers))
        .route("/api/metrics", get(metrics))
        .route("/api/timeseries", get(timeseries))
        .route("/api/events", get(events))
        .route("/api/overview", get(overview))
        .route("/api/study", get(study))
        .route("/api/processes", get(processes))
        .route("/api/breakdown", get(breakdown))
        .route("/api/export", get(export))
        .fallback(|| async { ViewError(StatusCode::NOT_FOUND, "no such page".into()) })
        .with_state(ViewState {
            fed,
            status: Arc::new(tokio::sync::Mutex::new(None)),
        })
}

/// Serves the cluster view on 127.0.0.1:`port` until `stop`, printing the URL (`hash` opens
/// the page on a selection) and opening the browser unless told not to.
pub async fn serve(
    fed: Federation,
    port: u16,
    hash: &str,
    browser: bool,
    stop: CancellationToken,
) -> Result<(), PluginError> {
    let (listener, local) = super::open::listen_local(port).await?;
    let names: Vec<&str> = fed.nodes().iter().map(|n| n.name.as_str()).collect();
    say!(
        "cluster view over {} node(s): {}",
        names.len(),
        names.join(", ")
    );
    let url = format!("http://127.0.0.1:{}/{hash}", local.port());
    say!("{url}");
    if browser && !super::open::open_browser(&url) {
        say!("(no browser opener found: open the URL yourself)");
    }
    say!("serving; press Ctrl-C to stop");
    // Room for a node's own 30 s request timeout behind the port-forward.
    let limits = crate::http::Limits {
        request_timeout: ONE_NODE_TIMEOUT + Duration::from_secs(10),
        ..crate::http::Limits::default()
    };
    crate::http::serve(listener, app(fed), &limits, stop)
        .await
        .map_err(|source| PluginError::Io {
            what: "serving the cluster view".into(),
            source,
        })
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
