//! The one HTTP server of every mode: the viewer, the agent's `/metrics` and
//! the operator's metrics and probes all serve their axum `Router` through
//! [`serve`], so every listener has the same limits.
//!
//! ```text
//!  accept ─▶ connection slot? (--http-max-connections; else wait, the kernel queues)
//!    │
//!    ▼ hyper HTTP/1.1: request line + headers within --http-header-timeout
//!    │                 and --http-max-request-bytes (431), else the connection is closed
//!    ▼ guard: body over --http-max-request-bytes ─▶ 413
//!    │        request slot (--http-max-requests) + handler within --http-request-timeout, else 503
//!    ▼
//!  Router (the mode's handlers; heavy work runs on the blocking pool)
//! ```
//!
//! A slow-loris client (headers dribbled byte by byte, or an idle keep-alive
//! connection) is cut off by the header timeout; an oversized request is
//! refused before any handler runs; a flood waits for a slot instead of
//! growing memory. Shutdown stops accepting, lets requests in flight finish
//! for [`DRAIN`] and then drops what is left.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use clap::Args;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::units::{ByteSize, HumanDuration};

/// How long shutdown waits for requests in flight.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Smallest head size hyper accepts as its read buffer.
const MIN_HEAD_BYTES: usize = 8192;

/// Limits of one HTTP listener (flags of every serving mode).
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// A client must send a request's line and headers within this time (also
    /// how long an idle keep-alive connection stays open).
    #[arg(long, env = "FGM_HTTP_HEADER_TIMEOUT", default_value = "10s")]
    pub http_header_timeout: HumanDuration,

    /// A request must be answered within this time (waiting for a slot included), else 503.
    #[arg(long, env = "FGM_HTTP_REQUEST_TIMEOUT", default_value = "30s")]
    pub http_request_timeout: HumanDuration,

    /// Open connections at most; more wait in the kernel's accept queue.
    #[arg(long, env = "FGM_HTTP_MAX_CONNECTIONS", default_value_t = 128)]
    pub http_max_connections: usize,

    /// Requests handled at once; more wait (within the request timeout).
    #[arg(long, env = "FGM_HTTP_MAX_REQUESTS", default_value_t = 32)]
    pub http_max_requests: usize,

    /// Largest request head (line + headers; 431 above) and body (413 above).
    #[arg(long, env = "FGM_HTTP_MAX_REQUEST_BYTES", default_value = "16Ki")]
    pub http_max_request_bytes: ByteSize,
}

impl Default for HttpArgs {
    fn default() -> Self {
        Limits::default().into()
    }
}

/// The limits [`serve`] enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_requests: usize,
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 128,
            max_requests: 32,
            max_request_bytes: 16 << 10,
        }
    }
}

impl From<&HttpArgs> for Limits {
    fn from(args: &HttpArgs) -> Self {
        let HttpArgs {
            http_header_timeout,
            http_request_timeout,
            http_max_connections,
            http_max_requests,
            http_max_request_bytes,
        } = args;
        Self {
            header_timeout: http_header_timeout.get(),
            request_timeout: http_request_timeout.get(),
            // Zero would refuse everything forever: one is the least that works.
            max_connections: (*http_max_connections).max(1),
            max_requests: (*http_max_requests).max(1),
            max_request_bytes: usize::try_from(http_max_request_bytes.0).unwrap_or(usize::MAX),
        }
    }
}

impl From<Limits> for HttpArgs {
    fn from(l: Limits) -> Self {
        Self {
            http_header_timeout: HumanDuration(l.header_timeout),
            http_request_timeout: HumanDuration(l.request_timeout),
            http_max_connections: l.max_connections,
            http_max_requests: l.max_requests,
            http_max_request_bytes: ByteSize(l.max_request_bytes as u64),
        }
    }
}

/// Per-listener state of the request guard.
struct Guard {
    requests: Semaphore,
    request_timeout: Duration,
    max_body: usize,
}

/// `router` behind the request guard: body size, request slots, request timeout.
/// [`serve`] applies it; tests without a socket use it directly.
pub fn guarded(router: Router, limits: &Limits) -> Router {
    let guard = Arc::new(Guard {
        requests: Semaphore::new(limits.max_requests.max(1)),
        request_timeout: limits.request_timeout,
        max_body: limits.max_request_bytes,
    });
    router.layer(middleware::from_fn_with_state(guard, guard_request))
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        message,
    )
        .into_response()
}

/// The declared body length, when the request declares one.
fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

async fn guard_request(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if content_length(&req).is_some_and(|n| n > guard.max_body as u64) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {} bytes\n", guard.max_body),
        );
    }
    // A chunked body has no declared length: cap what a handler can read of it.
    let max = guard.max_body;
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, max)));
    let work = async {
        let Ok(_slot) = guard.requests.acquire().await else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "server shutting down\n".into(),
            );
        };
        next.run(req).await
    };
    match tokio::time::timeout(guard.request_timeout, work).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?guard.request_timeout, "request timed out");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "request not answered within {} (server busy)\n",
                    crate::units::format_duration(guard.request_timeout)
                ),
            )
        }
    }
}

/// Serves `router` on `listener` with `limits` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, guarded(router, limits), limits, None, stop).await
}

/// [`serve`] over TLS (the operator's conversion webhook): the handshake must
/// finish within the header timeout, and request bodies may be up to `max_body`
/// bytes (heads stay within `limits`).
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    max_body: usize,
    acceptor: tokio_rustls::TlsAcceptor,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let body_limits = Limits {
        max_request_bytes: max_body,
        ..limits.clone()
    };
    serve_with(
        listener,
        guarded(router, &body_limits),
        limits,
        Some(acceptor),
        stop,
    )
    .await
}

/// The accept loop of [`serve`] and [`serve_tls`]: `router` is already guarded.
async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_request_bytes)
        .max_buf_size(limits.max_request_bytes.max(MIN_HEAD_BYTES));
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Connections hold a receiver; dropping the sender asks them to finish.
    let (closing, closed) = watch::channel(());
    loop {
        let slot = tokio::select! {
            slot = connections.clone().acquire_owned() => slot,
            () = stop.cancelled() => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (http, service, tls) = (http.clone(), service.clone(), tls.clone());
        let handshake_timeout = limits.header_timeout;
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let io = match tls {
                None => Either::Left(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => Either::Right(tls_stream),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let conn = http.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    return;
                }
                _ = closed.changed() => conn.as_mut().graceful_shutdown(),
            }
            if tokio::time::timeout(DRAIN, conn).await.is_err() {
                tracing::debug!("connection dropped at shutdown");
            }
        });
    }
    drop(closing);
    // Every connection task holds a slot: all slots back means all are done.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        DRAIN + Duration::from_secs(1),
        connections.acquire_many(all),
    )
    .await;
    Ok(())
}

/// A plain or a TLS connection.
enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A, B> tokio::io::AsyncRead for Either<A, B>
where
    A: tokio::io::AsyncRead + Unpin,
    B: tokio::io::AsyncRead + Unpin,
{
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Left(a) => std::pin::Pin::new(a).poll_read(cx, buf),
            Self::Right(b) => std::pin::Pin::new(b).poll_read(cx, buf),
        }
    }
}

impl<A, B> tokio::io::AsyncWrite for Either<A, B>
where
    A: tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncWrite + Unpin,
{
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Left(a) => std::pin::Pin::new(a).poll_write(cx, buf),
            Self::Right(b) => std::pin::Pin::new(b).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Left(a) => std::pin::Pin::new(a).poll_flush(cx),
            Self::Right(b) => std::pin::Pin::new(b).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Left(a) => std::pin::Pin::new(a).poll_shutdown(cx),
            Self::Right(b) => std::pin::Pin::new(b).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
