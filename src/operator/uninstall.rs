//! `fine-grained-monitor uninstall`: the Helm chart's pre-delete hook.
//!
//! `helm uninstall` deletes a release's objects all at once: a NodeMonitor the chart created
//! would lose its operator (and the operator its RBAC) before the operator's finalizer ran, and
//! stay stuck on it. The hook runs first, while the operator still runs: it deletes the
//! release's NodeMonitors and waits until the operator has finalized them (their DaemonSets,
//! RBAC and settings gone), then Helm deletes the rest.
//!
//! ```text
//!  helm uninstall ─▶ pre-delete Job: uninstall ─▶ delete NodeMonitors (selector) ─▶ wait: gone
//!                                                          │
//!                    operator (still running) ◀─ finalizer ┘
//!  then Helm deletes the operator, its RBAC and the rest of the release
//! ```

use std::time::Duration;

use clap::Args;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::crd::NodeMonitor;
use crate::units::HumanDuration;

/// Flags of `uninstall`.
#[derive(Debug, Clone, Args)]
pub struct UninstallArgs {
    /// Namespace of the NodeMonitors to delete [default: $POD_NAMESPACE, else `default`].
    #[arg(long, env = "FGM_NAMESPACE")]
    pub namespace: Option<String>,

    /// Label selector of the NodeMonitors to delete (the release's, e.g.
    /// `app.kubernetes.io/instance=<release>`); an empty selector is refused.
    #[arg(long, env = "FGM_SELECTOR")]
    pub selector: String,

    /// How long to wait for the operator to finalize them before failing.
    #[arg(long, env = "FGM_TIMEOUT", default_value = "2m")]
    pub timeout: HumanDuration,
}

/// Why the NodeMonitors could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    #[error("--selector is empty: refusing to delete every NodeMonitor of namespace {0}")]
    EmptySelector(String),
    #[error("cannot build a Kubernetes client (in-cluster or $KUBECONFIG): {0}")]
    Client(#[source] kube::Error),
    #[error("cannot list NodeMonitors in {namespace} with selector {selector:?}: {source}")]
    List {
        namespace: String,
        selector: String,
        source: kube::Error,
    },
    #[error("cannot delete NodeMonitor {namespace}/{name}: {source}")]
    Delete {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(
        "NodeMonitors still present after {timeout}: {names} (is the operator running? \
         `kubectl describe nodemonitor` shows what holds them)"
    )]
    Timeout { timeout: String, names: String },
    #[error("stopped before the NodeMonitors were gone")]
    Stopped,
}

/// Runs the hook with the in-cluster (or $KUBECONFIG) client.
pub async fn run(args: UninstallArgs, stop: CancellationToken) -> Result<(), UninstallError> {
    let client = Client::try_default()
        .await
        .map_err(UninstallError::Client)?;
    run_with_client(client, args, stop).await
}

/// Deletes the selected NodeMonitors and waits until they are gone.
pub async fn run_with_client(
    client: Client,
    args: UninstallArgs,
    stop: CancellationToken,
) -> Result<(), UninstallError> {
    let namespace = args
        .namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    if args.selector.trim().is_empty() {
        return Err(UninstallError::EmptySelector(namespace));
    }
    let api: Api<NodeMonitor> = Api::namespaced(client, &namespace);
    let selected = ListParams::default().labels(&args.selector);
    let list = || async {
        api.list(&selected)
            .await
            .map(|l| l.items.iter().map(|nm| nm.name_any()).collect::<Vec<_>>())
            .map_err(|source| UninstallError::List {
                namespace: namespace.clone(),
                selector: args.selector.clone(),
                source,
            })
    };
    let names = list().await?;
    for name in &names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(%namespace, %name, "NodeMonitor deleted, waiting for the operator")
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(UninstallError::Delete {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    source,
                });
            }
        }
    }
    let deadline = tokio::time::Instant::now() + args.timeout.0;
    loop {
        let left = list().await?;
        if left.is_empty() {
            tracing::info!(%namespace, deleted = names.len(), "the release's NodeMonitors are gone");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(UninstallError::Timeout {
                timeout: args.timeout.to_string(),
                names: left.join(", "),
            });
        }
        tokio::select! {
            () = stop.cancelled() => return Err(UninstallError::Stopped),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
