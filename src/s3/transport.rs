//! The HTTP(S) transport of the S3 client: hyper's pooled client over rustls
//! (ring), trusting the system's roots plus an optional CA bundle (private
//! S3-compatible stores often use one). Every request has a deadline and a
//! cap on the body it reads back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::S3Error;

/// A response read whole.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no usable answer (no status from the server).
#[derive(Debug)]
pub enum TransportError {
    Timeout(Duration),
    Connect(String),
    Body(String),
}

impl TransportError {
    /// The client error of operation `op` on `target`.
    pub fn into_error(self, op: &'static str, target: &str) -> S3Error {
        let message = match self {
            TransportError::Timeout(d) => format!("no answer within {d:?}"),
            TransportError::Connect(m) => m,
            TransportError::Body(m) => format!("unreadable response: {m}"),
        };
        S3Error::Transport {
            op,
            target: target.to_string(),
            message,
        }
    }
}

/// Shared, pooled client; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client trusting the system roots and, when given, the PEM certificates
    /// in `ca_file`; each request must finish within `timeout`.
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Self, S3Error> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            use rustls_pki_types::pem::PemObject;
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| S3Error::Config {
                    what: format!("CA file {}", path.display()),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(S3Error::Config {
                    what: format!("CA file {}", path.display()),
                    reason: "no PEM certificate in it".into(),
                });
            }
            for cert in certs {
                roots.add(cert).map_err(|e| S3Error::Config {
                    what: format!("CA file {}", path.display()),
                    reason: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| S3Error::Config {
                what: "TLS".into(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(https);
        Ok(Self { inner, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` and reads at most `max_body` bytes of the answer.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<Response, TransportError> {
        let timeout = self.timeout;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| TransportError::Connect(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| TransportError::Body(e.to_string()))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }
}

/// An error and its sources on one line ("connection refused" hides two levels down).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
