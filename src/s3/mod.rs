//! A small S3 client: the six calls export, compaction and the viewer's
//! mirror need (PUT, HEAD, GET, list, DELETE, and STS for web identity),
//! signed with SigV4 over the hyper/rustls stack the crate already has.
//!
//! ```text
//!  credentials (env: static keys | web identity ─▶ STS) ─┐
//!  BucketConfig (endpoint, bucket, region, path style) ──┼─▶ Client ─▶ sigv4 ─▶ transport (hyper + rustls)
//!                                                        └─ xml (listings, errors)
//! ```
//!
//! The client does not retry: callers own their backoff (the uploader keeps a
//! queue, compaction stops and is run again). Errors say which call on which
//! key failed and classify themselves ([`S3Error::reason`]) so callers can
//! tell "wrong credentials" from "server away".

pub mod client;
pub mod credentials;
pub mod sigv4;
pub mod transport;
pub mod xml;

pub use client::{BucketConfig, Client, ObjectInfo};
pub use credentials::{Credentials, Provider, Source, WebIdentity};

/// Why an S3 (or STS) call failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{op} {target}: {message}")]
    Transport {
        op: &'static str,
        target: String,
        message: String,
    },
    #[error("{op} {target}: HTTP {status} {code}: {message}")]
    Status {
        op: &'static str,
        target: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("invalid {what}: {reason}")]
    Config { what: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Local {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl S3Error {
    /// A stable, short classification: the condition reason and metric label.
    /// `AccessDenied` (keys refused or missing), `NoSuchBucket`, `Unreachable`
    /// (no answer), `ServerError` (5xx, throttling), `NotFound`,
    /// `InvalidConfig`, `LocalFile`, `RequestRefused` (another 4xx).
    pub fn reason(&self) -> &'static str {
        match self {
            S3Error::Transport { .. } => "Unreachable",
            S3Error::Credentials(_) => "AccessDenied",
            S3Error::Config { .. } => "InvalidConfig",
            S3Error::Local { .. } => "LocalFile",
            S3Error::Status { status, code, .. } => match (status, code.as_str()) {
                (_, "NoSuchBucket") => "NoSuchBucket",
                (
                    _,
                    "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "InvalidIdentityToken"
                    | "InvalidClientTokenId"
                    | "AuthFailure",
                ) => "AccessDenied",
                (401 | 403, _) => "AccessDenied",
                (404, _) => "NotFound",
                (408 | 429, _) | (500..=599, _) => "ServerError",
                (_, "SlowDown" | "RequestTimeout" | "InternalError") => "ServerError",
                _ => "RequestRefused",
            },
        }
    }

    /// True when trying again later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self.reason(), "Unreachable" | "ServerError")
    }

    /// True when the keys were refused (they may have expired: refetch them).
    pub fn is_denied(&self) -> bool {
        self.reason() == "AccessDenied"
    }
}
