//! `POST /mcp`: the node's viewer as a Model Context Protocol server
//! (streamable HTTP, JSON answers, no session), for AI assistants on the
//! user's machine (through the same port-forward as the page). Its tools
//! answer for this node only, in small structured JSON with caps, never raw
//! per-second dumps.
//!
//! ```text
//!  JSON-RPC request ─▶ initialize │ ping │ tools/list │ tools/call
//!                                                        │
//!                      tools::call ─▶ the viewer's own API (in process) ─▶ a compact answer
//! ```
//!
//! Each tool is a translation to the HTTP API the page uses (same checks,
//! same errors), so the two never disagree. A request whose `Origin` is not
//! this machine is refused (DNS rebinding: the viewer listens on loopback).

pub(crate) mod tools;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::Shared;

/// Protocol versions this server speaks, newest first.
const VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// JSON-RPC error codes.
pub(crate) const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

pub(crate) fn rpc_error(id: &Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// True when `origin` (an `Origin` header) is this machine's.
fn local_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

pub(crate) async fn mcp_get() -> Response {
    // No server-initiated stream: every answer comes with its request.
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "POST JSON-RPC messages to /mcp (no event stream is offered)",
    )
        .into_response()
}

pub(crate) async fn mcp_post(
    State(viewer): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin.to_str().is_ok_and(local_origin)
    {
        return (
            StatusCode::FORBIDDEN,
            "MCP requests from another origin than this machine are refused",
        )
            .into_response();
    }
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(rpc_error(
                    &Value::Null,
                    PARSE_ERROR,
                    format!("not JSON: {e}"),
                )),
            )
                .into_response();
        }
    };
    let answer = match classify(&message) {
        Incoming::Ignore => return StatusCode::ACCEPTED.into_response(),
        Incoming::Invalid(answer) => {
            return (StatusCode::BAD_REQUEST, Json(answer)).into_response();
        }
        Incoming::Initialize { id, params } => initialize_answer(
            &id,
            &params,
            "Per-second history of this node's containers (CPU, memory, IO, pressure, \
             throttling, OOM kills). Start with top_containers; every range defaults to the last \
             15 minutes of data.",
        ),
        Incoming::Ping(id) => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
        Incoming::List(id) => {
            json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools::list()}})
        }
        Incoming::Call { id, name, args } => match tools::call(&viewer, &name, &args).await {
            Err(tools::CallError::UnknownTool) => unknown_tool(&id, &name),
            Ok(value) => tool_answer(&id, Ok(value)),
            Err(tools::CallError::Failed(message)) => tool_answer(&id, Err(message)),
        },
        Incoming::Error(answer) => answer,
    };
    Json(answer).into_response()
}

/// One JSON-RPC message, sorted by what it asks for.
pub(crate) enum Incoming {
    /// A notification, a response or something without a method: nothing to answer.
    Ignore,
    /// Not a JSON-RPC request at all (a batch, not an object): answered as a bad request.
    Invalid(Value),
    Initialize {
        id: Value,
        params: Value,
    },
    Ping(Value),
    List(Value),
    Call {
        id: Value,
        name: String,
        args: Value,
    },
    /// A request this server answers with a JSON-RPC error.
    Error(Value),
}

/// Sorts a parsed message (the HTTP server and `kubectl fgm mcp` share this).
pub(crate) fn classify(message: &Value) -> Incoming {
    let Some(object) = message.as_object() else {
        return Incoming::Invalid(rpc_error(
            &Value::Null,
            INVALID_REQUEST,
            "one JSON-RPC message per request (batches are not supported)",
        ));
    };
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return Incoming::Ignore;
    };
    // A notification (`notifications/initialized`, ...) has no id.
    let Some(id) = object.get("id").cloned() else {
        return Incoming::Ignore;
    };
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    match method {
        "initialize" => Incoming::Initialize { id, params },
        "ping" => Incoming::Ping(id),
        "tools/list" => Incoming::List(id),
        "tools/call" => match params.get("name").and_then(Value::as_str) {
            Some(name) => Incoming::Call {
                name: name.to_string(),
                args: params.get("arguments").cloned().unwrap_or(json!({})),
                id,
            },
            None => Incoming::Error(rpc_error(
                &id,
                INVALID_PARAMS,
                "tools/call needs a tool name",
            )),
        },
        other => Incoming::Error(rpc_error(
            &id,
            METHOD_NOT_FOUND,
            format!("no method {other:?}"),
        )),
    }
}

/// The answer to `initialize`: the client's protocol version when spoken here, else ours.
pub(crate) fn initialize_answer(id: &Value, params: &Value, instructions: &str) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| VERSIONS.contains(v))
        .unwrap_or(VERSIONS[0]);
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "fine-grained-monitor", "version": env!("CARGO_PKG_VERSION")},
        "instructions": instructions,
    }})
}

/// A tool's answer; a failure is the tool's answer too, for the model to read.
pub(crate) fn tool_answer(id: &Value, outcome: Result<Value, String>) -> Value {
    match outcome {
        Ok(value) => json!({"jsonrpc": "2.0", "id": id, "result": {
            "content": [{"type": "text", "text": value.to_string()}],
            "structuredContent": value,
            "isError": false,
        }}),
        Err(message) => json!({"jsonrpc": "2.0", "id": id, "result": {
            "content": [{"type": "text", "text": message}],
            "isError": true,
        }}),
    }
}

pub(crate) fn unknown_tool(id: &Value, name: &str) -> Value {
    rpc_error(
        id,
        INVALID_PARAMS,
        format!("no tool {name:?}: tools/list names them"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machines_origins_pass() {
        for ok in [
            "http://localhost:8050",
            "http://127.0.0.1",
            "http://[::1]:9",
            "https://localhost",
        ] {
            assert!(local_origin(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "",
            "http://localhost.evil:80",
        ] {
            assert!(!local_origin(bad), "{bad}");
        }
    }
}
