//! One error type for the reconciler; each variant has a metric label so
//! `fgm_operator_reconcile_errors_total{error=...}` says what keeps failing.

/// Why one reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {kind} {name}: {source}")]
    Kube {
        action: &'static str,
        kind: &'static str,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("NodeMonitor {0} has no namespace")]
    NoNamespace(String),

    #[error("finalizer of NodeMonitor {name}: {message}")]
    Finalizer { name: String, message: String },

    #[error("cannot serialize {kind} {name}: {source}")]
    Serialize {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { action, .. } => match *action {
                "apply" => "apply",
                "delete" => "delete",
                "get" => "get",
                "patch status of" => "status",
                _ => "kube",
            },
            Self::NoNamespace(_) => "no_namespace",
            Self::Finalizer { .. } => "finalizer",
            Self::Serialize { .. } => "serialize",
        }
    }

    pub(crate) fn kube(
        action: &'static str,
        kind: &'static str,
        name: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> Self {
        let name = name.into();
        move |source| Self::Kube {
            action,
            kind,
            name,
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object_and_labels_are_bounded() {
        let e = Error::kube("apply", "DaemonSet", "monitoring/nm1")(
            kube::Error::LinesCodecMaxLineLengthExceeded,
        );
        assert!(
            e.to_string()
                .starts_with("apply DaemonSet monitoring/nm1: "),
            "{e}"
        );
        assert_eq!(e.metric_label(), "apply");
        assert_eq!(
            Error::NoNamespace("x".into()).metric_label(),
            "no_namespace"
        );
    }
}
