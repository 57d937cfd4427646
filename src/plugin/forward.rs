//! Port-forwards to a monitor pod's viewer through the API server (kube-rs, WebSocket), and a
//! small HTTP/1.1 client over the forwarded stream: the user's credentials, no `kubectl`.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Portforwarder};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{Action, PluginError, api_error};

/// Largest viewer answer read (an overview of a busy node is a few MB).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Where a viewer listens: a pod and its container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub port: u16,
}

impl Target {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.pod)
    }
}

/// One port-forward: its stream and the forwarder that must live as long as it.
pub struct Forward {
    pub stream: Box<dyn Stream>,
    pub forwarder: Portforwarder,
}

/// A forwarded stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens a port-forward to `target`.
pub async fn open(client: &Client, target: &Target) -> Result<Forward, PluginError> {
    let api = Api::<Pod>::namespaced(client.clone(), &target.namespace);
    let mut forwarder =
        api.portforward(&target.pod, &[target.port])
            .await
            .map_err(|e| match &e {
                kube::Error::Api(_) => api_error(
                    Action::new("create", "pods/portforward", Some(&target.namespace)),
                    e,
                ),
                _ => PluginError::Forward {
                    pod: target.key(),
                    reason: e.to_string(),
                },
            })?;
    let stream = forwarder
        .take_stream(target.port)
        .ok_or_else(|| PluginError::Forward {
            pod: target.key(),
            reason: format!("no stream for port {}", target.port),
        })?;
    Ok(Forward {
        stream: Box::new(stream),
        forwarder,
    })
}

/// How a node's viewer is reached.
#[derive(Clone)]
pub enum Reach {
    /// Through the API server's port-forward to a monitor pod (what the plugin uses).
    Forward { client: Client, target: Target },
    /// A viewer listening at an address this machine reaches directly: the benchmarks' and
    /// tests' viewers over recorded data behind local listeners.
    Direct(std::net::SocketAddr),
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Reach {
    /// The monitor pod (`namespace/pod`) or the address.
    pub fn describe(&self) -> String {
        match self {
            Reach::Forward { target, .. } => target.key(),
            Reach::Direct(addr) => addr.to_string(),
        }
    }

    /// A new connection to the viewer, and the forwarder to stop after it (if any).
    async fn connect(&self) -> Result<(Box<dyn Stream>, Option<Portforwarder>), AskError> {
        match self {
            Reach::Forward { client, target } => {
                let Forward { stream, forwarder } = open(client, target)
                    .await
                    .map_err(|e| AskError::Failed(e.to_string()))?;
                Ok((stream, Some(forwarder)))
            }
            Reach::Direct(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| AskError::Failed(format!("connect to {addr}: {e}")))?;
                Ok((Box::new(stream), None))
            }
        }
    }
}

/// Why a viewer did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
    /// It answered, with an error status and its message.
    #[error("viewer answered {status}: {message}")]
    Answered { status: u16, message: String },
}

/// A viewer's answer as it came: status, content type and disposition, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: http::StatusCode,
    pub content_type: Option<http::HeaderValue>,
    pub content_disposition: Option<http::HeaderValue>,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The body as JSON; an error status becomes [`AskError::Answered`] with the viewer's
    /// `error` message.
    pub fn json(&self) -> Result<serde_json::Value, AskError> {
        let value: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| AskError::Failed(format!("{}: not JSON: {e}", self.status)))?;
        if !self.status.is_success() {
            let said = value["error"].as_str().unwrap_or("no reason given");
            return Err(AskError::Answered {
                status: self.status.as_u16(),
                message: said.to_string(),
            });
        }
        Ok(value)
    }
}

/// `GET path_and_query` from the viewer at `target`, as JSON, within `timeout` (port-forward
/// included).
pub async fn get_json(
    client: &Client,
    target: &Target,
    path_and_query: &str,
    timeout: Duration,
) -> Result<serde_json::Value, AskError> {
    let reach = Reach::Forward {
        client: client.clone(),
        target: target.clone(),
    };
    request(&reach, path_and_query, None, timeout).await?.json()
}

/// One request to the viewer at `reach` (GET, or POST of a JSON `body`), within `timeout`
/// (connection included).
pub async fn request(
    reach: &Reach,
    path_and_query: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<Answer, AskError> {
    match tokio::time::timeout(timeout, request_unbounded(reach, path_and_query, body)).await {
        Ok(answer) => answer,
        Err(_) => Err(AskError::Timeout(timeout)),
    }
}

async fn request_unbounded(
    reach: &Reach,
    path_and_query: &str,
    body: Option<&serde_json::Value>,
) -> Result<Answer, AskError> {
    let failed = |e: &dyn std::fmt::Display| AskError::Failed(e.to_string());
    let (stream, forwarder) = reach.connect().await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(&e))?;
    let driver = tokio::spawn(conn);
    let request = match body {
        None => http::Request::get(path_and_query),
        Some(_) => http::Request::post(path_and_query)
            .header(http::header::CONTENT_TYPE, "application/json"),
    }
    .header(http::header::HOST, "localhost")
    .header(http::header::ACCEPT, "application/json")
    .body(Full::new(bytes::Bytes::from(
        body.map(|b| b.to_string()).unwrap_or_default(),
    )))
    .map_err(|e| failed(&e))?;
    let answer = async {
        let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
        let status = response.status();
        let header = |name| response.headers().get(name).cloned();
        let content_type = header(http::header::CONTENT_TYPE);
        let content_disposition = header(http::header::CONTENT_DISPOSITION);
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| failed(&*e))?
            .to_bytes();
        Ok(Answer {
            status,
            content_type,
            content_disposition,
            body,
        })
    }
    .await;
    driver.abort();
    if let Some(forwarder) = forwarder {
        forwarder.abort();
    }
    answer
}

/// Copies one local connection through a new port-forward to `target` until either side ends.
pub async fn pipe<S>(client: &Client, target: &Target, mut local: S) -> Result<(), PluginError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Forward {
        mut stream,
        forwarder,
    } = open(client, target).await?;
    let copied = tokio::io::copy_bidirectional(&mut local, &mut stream).await;
    drop(stream);
    forwarder.abort();
    copied.map(|_| ()).map_err(|source| PluginError::Io {
        what: format!("forwarding to {}", target.key()),
        source,
    })
}

/// Asks every `(node, target)` for `path_and_query`, at most `at_once` at a time, each within
/// `timeout`; answers in the order given.
pub async fn ask_all(
    client: &Client,
    targets: Vec<(String, Target)>,
    path_and_query: &str,
    at_once: usize,
    timeout: Duration,
) -> Vec<(String, Target, Result<serde_json::Value, AskError>)> {
    each_node(client, targets, path_and_query, None, at_once, timeout).await
}

/// POSTs `body` to `path` of every `(node, target)`, as [`ask_all`] does.
pub async fn post_all(
    client: &Client,
    targets: Vec<(String, Target)>,
    path: &str,
    body: &serde_json::Value,
    at_once: usize,
    timeout: Duration,
) -> Vec<(String, Target, Result<serde_json::Value, AskError>)> {
    each_node(client, targets, path, Some(body), at_once, timeout).await
}

async fn each_node(
    client: &Client,
    targets: Vec<(String, Target)>,
    path: &str,
    body: Option<&serde_json::Value>,
    at_once: usize,
    timeout: Duration,
) -> Vec<(String, Target, Result<serde_json::Value, AskError>)> {
    use futures::StreamExt;
    futures::stream::iter(targets)
        .map(|(node, target)| async move {
            let reach = Reach::Forward {
                client: client.clone(),
                target: target.clone(),
            };
            let answer = request(&reach, path, body, timeout)
                .await
                .and_then(|a| a.json());
            (node, target, answer)
        })
        .buffered(at_once.max(1))
        .collect()
        .await
}
