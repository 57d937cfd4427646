//! What the enricher tells the agent's health endpoint, why the API is
//! unavailable when it is, and the rules that keep the log to one line per
//! outage: a warning when the cause changes, an info line when it resumes.

use std::fmt;
use std::time::Duration;

use kube::runtime::watcher;
use serde::Serialize;

/// State of the pod cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// `--enrichment=false`.
    Disabled,
    /// Connected, the first full list of this node's pods has not arrived yet.
    Syncing,
    /// The cache holds this node's pods and follows their changes.
    Synced,
    /// No usable API; collection goes on with short ids and a retry is scheduled.
    Unavailable { cause: Cause, reason: String },
}

impl Health {
    pub fn unavailable(u: &Unavailable) -> Self {
        Self::Unavailable {
            cause: u.cause,
            reason: u.to_string(),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("disabled"),
            Self::Syncing => f.write_str("syncing"),
            Self::Synced => f.write_str("synced"),
            Self::Unavailable { reason, .. } => write!(f, "unavailable: {reason}"),
        }
    }
}

/// Why there is no pod metadata, in the words an operator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// No in-cluster service account and no kubeconfig.
    NotInCluster,
    /// The kubeconfig cannot be read or used.
    BadKubeconfig,
    /// The requested (or current) context is not in the kubeconfig.
    UnknownContext,
    /// The API server rejected the credentials (401).
    Unauthorized,
    /// RBAC denies listing or watching (403).
    Forbidden,
    /// The API server cannot be reached (down, wrong address, TLS).
    Unreachable,
    /// The API server refused the request otherwise (e.g. a bad selector).
    Rejected,
}

impl Cause {
    fn describe(self) -> &'static str {
        match self {
            Self::NotInCluster => "not in a cluster and no kubeconfig",
            Self::BadKubeconfig => "bad kubeconfig",
            Self::UnknownContext => "unknown kubeconfig context",
            Self::Unauthorized => "credentials rejected by the API server",
            Self::Forbidden => "RBAC denied",
            Self::Unreachable => "API server unreachable",
            Self::Rejected => "request rejected by the API server",
        }
    }
}

/// A cause plus the detail that lets someone fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub cause: Cause,
    pub detail: String,
}

impl Unavailable {
    /// `detail` is folded onto one line (YAML and TLS errors span several).
    pub fn new(cause: Cause, detail: impl Into<String>) -> Self {
        let detail: String = detail.into();
        Self {
            cause,
            detail: detail.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.cause.describe(), self.detail)
    }
}

/// Classifies a client error from a request to `what` (e.g. "list pods on node n1").
pub fn classify_api(what: &str, err: &kube::Error) -> Unavailable {
    match err {
        kube::Error::Api(status) => {
            let cause = match status.code {
                401 => Cause::Unauthorized,
                403 => Cause::Forbidden,
                _ => Cause::Rejected,
            };
            let hint = if cause == Cause::Forbidden {
                " (the agent needs get/list/watch on pods, and list/watch on namespaces with a namespace selector)"
            } else {
                ""
            };
            Unavailable::new(
                cause,
                format!("{what}: {} {}{hint}", status.code, status.message),
            )
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::RustlsTls(_) => {
            Unavailable::new(Cause::Unreachable, format!("{what}: {}", source_chain(err)))
        }
        other => Unavailable::new(Cause::Rejected, format!("{what}: {}", source_chain(other))),
    }
}

/// Classifies a watcher error (list, watch start, or a broken watch).
pub fn classify_watch(what: &str, err: &watcher::Error) -> Unavailable {
    match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => classify_api(what, e),
        watcher::Error::WatchError(status) => classify_api(what, &kube::Error::Api(status.clone())),
        watcher::Error::NoResourceVersion => {
            Unavailable::new(Cause::Rejected, format!("{what}: {err}"))
        }
    }
}

/// An error and its sources on one line: "a: b: c" (hyper hides the useful part in sources).
pub fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// What to log on a state change, so an outage is one warning and one recovery line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// The API became unavailable, or unavailable for another cause.
    Unavailable(Unavailable),
    /// The API is back after an outage.
    Resumed,
}

/// Remembers the current outage cause.
#[derive(Debug, Default)]
pub struct Reporter {
    failing: Option<Cause>,
}

impl Reporter {
    /// A failure: logged when it starts or its cause changes, not on every retry.
    pub fn failed(&mut self, u: &Unavailable) -> Option<LogLine> {
        let changed = self.failing != Some(u.cause);
        self.failing = Some(u.cause);
        changed.then(|| LogLine::Unavailable(u.clone()))
    }

    /// A success: logged when it ends an outage.
    pub fn succeeded(&mut self) -> Option<LogLine> {
        self.failing.take().map(|_| LogLine::Resumed)
    }
}

/// Exponential retry delay, doubling from `initial` up to `max`; reset on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    /// Never ends: enrichment always tries again.
    fn next(&mut self) -> Option<Duration> {
        let now = self.next.min(self.max);
        self.next = (now * 2).min(self.max);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests;
