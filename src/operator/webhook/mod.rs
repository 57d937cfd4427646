//! The conversion webhook: the apiserver sends every `v1alpha1` <-> `v1beta1`
//! NodeMonitor conversion here (HTTPS, `POST /convert`, a ConversionReview) and
//! gets the objects back with their fields renamed ([`crate::crd::convert`]).
//!
//! ```text
//!  kube-apiserver ─TLS (caBundle = our CA)─▶ Service <name>:443 ─▶ pod :9443 /convert
//!                  (or --webhook-url, an operator outside the cluster)
//! ```
//!
//! Every replica serves it (the Service picks any ready one), leader or not:
//! conversions must not wait for an election. Its certificate is managed by the
//! operator ([`certs`]); the same HTTP limits as every other server apply, but
//! for the body size (a list of NodeMonitors arrives as one review).

pub mod certs;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use tokio_util::sync::CancellationToken;

use crate::crd::convert::convert;
use crate::crd::{CONVERSION_PATH, WebhookTarget};

/// Largest ConversionReview accepted (a list of a few thousand NodeMonitors).
pub const MAX_REVIEW_BYTES: usize = 32 << 20;

/// The webhook's routes (tested without a socket).
pub fn app() -> Router {
    Router::new().route(CONVERSION_PATH, post(review))
}

/// Answers one ConversionReview: every object converted, or a failure naming why.
pub fn answer(review: ConversionReview) -> ConversionReview {
    let request = match ConversionRequest::from_review(review) {
        Ok(request) => request,
        Err(e) => {
            return ConversionResponse::invalid(Status::failure(&e.to_string(), "BadRequest"))
                .into_review();
        }
    };
    let desired = request.desired_api_version.clone();
    let objects = request.objects.clone();
    let response = ConversionResponse::for_request(request);
    match objects
        .into_iter()
        .map(|o| convert(o, &desired))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(converted) => response.success(converted),
        Err(e) => {
            tracing::warn!(error = %e, desired = %desired, "conversion refused");
            response.failure(Status::failure(&e.to_string(), "ConversionFailed"))
        }
    }
    .into_review()
}

async fn review(body: Bytes) -> Response {
    // Decoding a large review is CPU work: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        serde_json::from_slice::<ConversionReview>(&body).map(answer)
    })
    .await;
    match result {
        Ok(Ok(review)) => axum::Json(review).into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            format!("not a ConversionReview: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("conversion failed: {e}\n"),
        )
            .into_response(),
    }
}

/// The host names (or IP addresses) the apiserver checks the certificate against.
pub fn hosts(target: &WebhookTarget) -> Vec<String> {
    match target {
        WebhookTarget::Service {
            namespace, name, ..
        } => vec![
            format!("{name}.{namespace}.svc"),
            format!("{name}.{namespace}.svc.cluster.local"),
        ],
        WebhookTarget::Url(url) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
            };
            vec![host.to_string()]
        }
    }
}

/// A TLS acceptor serving whatever `resolver` holds (HTTP/1.1).
pub fn acceptor(resolver: Arc<certs::Resolver>) -> tokio_rustls::TlsAcceptor {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| unreachable!("ring supports the default TLS versions: {e}"))
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Binds `addr` (clear error when taken).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on --webhook-addr {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, path = CONVERSION_PATH, "serving the conversion webhook (HTTPS)");
    Ok(listener)
}

/// Serves the webhook until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    resolver: Arc<certs::Resolver>,
    limits: crate::http::Limits,
    stop: CancellationToken,
) {
    if let Err(e) = crate::http::serve_tls(
        listener,
        app(),
        &limits,
        MAX_REVIEW_BYTES,
        acceptor(resolver),
        stop,
    )
    .await
    {
        tracing::error!(error = %e, "conversion webhook server failed");
    }
}

#[cfg(test)]
mod tests;
