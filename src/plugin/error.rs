//! Errors of `kubectl fgm`, in words: an API refusal names the verb and resource the user
//! lacks and the role that grants it, never a stack trace.

use kube::core::Status;

/// The ClusterRole an admin binds to users of `kubectl fgm` (the chart's `user-role.yaml`).
pub const USER_ROLE: &str = "fine-grained-monitor-user";

/// One API call the plugin makes, for the message when it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub verb: &'static str,
    pub resource: &'static str,
    /// `None`: cluster-wide.
    pub namespace: Option<String>,
}

impl Action {
    pub fn new(verb: &'static str, resource: &'static str, namespace: Option<&str>) -> Self {
        Self {
            verb,
            resource,
            namespace: namespace.map(str::to_string),
        }
    }

    fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot load the kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("{0}")]
    Refused(String),
    #[error("cannot {verb} {resource} {scope}: {source}", verb = .action.verb, resource = .action.resource, scope = .action.scope())]
    Api {
        action: Action,
        #[source]
        source: kube::Error,
    },
    #[error("pod {namespace}/{name} not found")]
    PodNotFound { namespace: String, name: String },
    #[error("pod {namespace}/{name} is not scheduled to a node yet")]
    Unscheduled { namespace: String, name: String },
    #[error("pod {namespace}/{name} has no container named {container} (it has: {known})")]
    NoSuchContainer {
        namespace: String,
        name: String,
        container: String,
        known: String,
    },
    #[error("{0}")]
    NotCovered(String),
    #[error("bad --{flag}: {reason}")]
    BadFlag { flag: &'static str, reason: String },
    #[error("port-forward to {pod}: {reason}")]
    Forward { pod: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Maps an API error of `action`: a 401/403 becomes the API server's refusal in words.
pub fn api_error(action: Action, source: kube::Error) -> PluginError {
    match &source {
        kube::Error::Api(status) if matches!(status.code, 401 | 403) => {
            PluginError::Refused(refusal_message(&action, status))
        }
        _ => PluginError::Api { action, source },
    }
}

/// The message for a refused call: what was refused, the API server's reason, and the fix.
pub fn refusal_message(action: &Action, status: &Status) -> String {
    if status.code == 401 {
        return format!(
            "the API server did not accept your credentials (401 Unauthorized) when asked to \
             {} {} {}: {}. Log in again or pick another context (--context).",
            action.verb,
            action.resource,
            action.scope(),
            reason_text(status)
        );
    }
    format!(
        "forbidden: you may not {} {} {} (the API server said: {}). Ask a cluster admin to \
         bind the ClusterRole {USER_ROLE} to you (see docs/kubectl-fgm.md).",
        action.verb,
        action.resource,
        action.scope(),
        reason_text(status)
    )
}

fn reason_text(status: &Status) -> String {
    match (status.message.trim(), status.reason.trim()) {
        ("", "") => format!("HTTP {}", status.code),
        ("", reason) => reason.to_string(),
        (message, _) => message.to_string(),
    }
}

/// Whether `e` is the API server's 403.
pub fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// Whether `e` is the API server's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> Box<Status> {
        Box::new(Status::failure(message, "Forbidden").with_code(code))
    }

    #[test]
    fn a_403_names_the_verb_resource_scope_and_role() {
        let msg = "nodemonitors.fgm.dev is forbidden: User \"system:serviceaccount:a:b\" cannot \
                   list resource \"nodemonitors\" in API group \"fgm.dev\" at the cluster scope";
        let e = api_error(
            Action::new("list", "nodemonitors.fgm.dev", None),
            kube::Error::Api(status(403, msg)),
        );
        let text = e.to_string();
        assert!(text.starts_with("forbidden: you may not list nodemonitors.fgm.dev cluster-wide"));
        assert!(text.contains(msg), "{text}");
        assert!(text.contains(USER_ROLE), "{text}");
    }

    #[test]
    fn a_namespaced_refusal_names_the_namespace() {
        let text = refusal_message(
            &Action::new("create", "pods/portforward", Some("monitoring")),
            &status(403, ""),
        );
        assert!(
            text.contains("create pods/portforward in namespace monitoring"),
            "{text}"
        );
        assert!(text.contains("Forbidden"), "{text}");
    }

    #[test]
    fn a_401_says_credentials() {
        let text = refusal_message(
            &Action::new("get", "pods", Some("x")),
            &status(401, "Unauthorized"),
        );
        assert!(text.contains("did not accept your credentials"), "{text}");
    }

    #[test]
    fn other_errors_keep_their_source() {
        let e = api_error(
            Action::new("get", "pods", Some("x")),
            kube::Error::Api(status(500, "etcd down")),
        );
        assert!(matches!(e, PluginError::Api { .. }));
        assert!(e.to_string().contains("cannot get pods in namespace x"));
    }
}
