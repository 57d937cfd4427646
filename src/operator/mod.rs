//! The operator: reconciles NodeMonitor resources into DaemonSets, RBAC and settings.
//!
//! ```text
//!  watch NodeMonitors ─┐
//!  watch owned DaemonSets, ConfigMaps, ServiceAccounts (label-selected) ─┼▶ reconcile ─▶ children + status
//!  watch our ClusterRoleBindings (owner annotation) ─┘                      │
//!                                                                           └▶ Events, /metrics
//!  Lease `fine-grained-monitor-operator` ─▶ only the leader runs the controller
//!  every replica: conversion webhook (HTTPS :9443) ─▶ v1alpha1 <-> v1beta1
//!  start: webhook certificate (Secret) ─▶ CRD applied ─▶ leader: storage migrated
//! ```
//!
//! What a NodeMonitor may ask for is bounded by the operator's flags
//! ([`policy`]): the allowed data roots, the default image and the allowed
//! image repositories. The operator writes only objects it made ([`ownership`]).
//!
//! With `--leader-election`, replicas wait on the Lease; the holder runs the
//! controller and a replica that loses the Lease stops reconciling at once.
//! Settings changes reach running agents by rolling their pods (the settings
//! hash is a pod-template annotation); the agent never hot-reloads.

pub mod builders;
pub mod children;
pub mod conflict;
pub mod crd_install;
pub mod error;
pub mod export_status;
pub mod metrics;
pub mod ownership;
pub mod policy;
pub mod reconcile;
pub mod server;
pub mod status;
pub mod trigger_backoff;
pub mod uninstall;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::ListParams;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::crd::NodeMonitor;
use crate::units::HumanDuration;
use builders::{MANAGED_SELECTOR, OWNER_ANNOTATION};
use server::Shared;

/// Name of the leader-election Lease.
pub const LEASE_NAME: &str = "fine-grained-monitor-operator";

/// Flags of `operator`.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "FGM_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,

    /// Reconcile only while holding the Lease `fine-grained-monitor-operator`
    /// (run more than one replica safely).
    #[arg(long, env = "FGM_LEADER_ELECTION")]
    pub leader_election: bool,

    /// Namespace of the Lease [default: $POD_NAMESPACE, else `default`].
    #[arg(long, env = "FGM_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a Lease stays valid without renewal (a standby takes over after it).
    #[arg(long, env = "FGM_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: HumanDuration,

    /// Image of the monitor pods when a NodeMonitor names none (the chart passes
    /// the operator's own image).
    #[arg(long, env = "FGM_DEFAULT_IMAGE", default_value = builders::daemonset::DEFAULT_IMAGE)]
    pub default_image: String,

    /// Host directories (comma-separated) a NodeMonitor's dataHostPath must be in or below.
    #[arg(
        long,
        env = "FGM_ALLOWED_DATA_ROOTS",
        value_delimiter = ',',
        default_value = crate::crd::DEFAULT_DATA_HOST_PATH,
        value_name = "DIRS"
    )]
    pub allowed_data_roots: Vec<policy::DataRoot>,

    /// Image repositories (comma-separated; `registry/path/*` for everything below)
    /// a NodeMonitor's spec.image may come from [default: none, only --default-image].
    #[arg(
        long,
        env = "FGM_ALLOWED_IMAGE_REPOSITORIES",
        value_delimiter = ',',
        value_name = "REPOS"
    )]
    pub allowed_image_repositories: Vec<policy::AllowedRepository>,

    /// Address of the conversion webhook (HTTPS; the apiserver converts
    /// NodeMonitors between v1alpha1 and v1beta1 through it).
    #[arg(long, env = "FGM_WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    pub webhook_addr: std::net::SocketAddr,

    /// Service in front of the webhook port, `[namespace/]name` (port 443; the
    /// namespace defaults to the operator's own), named in the CRD's conversion.
    #[arg(
        long,
        env = "FGM_WEBHOOK_SERVICE",
        default_value = crate::crd::DEFAULT_WEBHOOK_SERVICE.1,
        value_name = "SERVICE"
    )]
    pub webhook_service: String,

    /// URL the apiserver calls for conversions instead of the Service (an operator
    /// running outside the cluster), e.g. `https://127.0.0.1:9443/convert`.
    #[arg(long, env = "FGM_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,

    /// Apply the NodeMonitor CRD (both versions, conversion webhook, CA) at start and
    /// migrate stored objects to v1beta1; `false` leaves the CRD to you.
    #[arg(
        long,
        env = "FGM_MANAGE_CRD",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub manage_crd: bool,

    /// Limits of the metrics and probe endpoint (and of the webhook, but for its body size).
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
}

impl OperatorArgs {
    /// The operator's own namespace (its Lease and webhook Secret): --lease-namespace,
    /// else $POD_NAMESPACE, else `default`.
    pub fn own_namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }

    /// How the apiserver reaches the webhook.
    pub fn webhook_target(&self) -> crate::crd::WebhookTarget {
        if let Some(url) = &self.webhook_url {
            return crate::crd::WebhookTarget::Url(url.clone());
        }
        let (namespace, name) = match self.webhook_service.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => (self.own_namespace(), self.webhook_service.clone()),
        };
        crate::crd::WebhookTarget::Service {
            namespace,
            name,
            port: 443,
        }
    }
}

/// How often the webhook's certificate is checked (renewed well before it expires).
const CERT_CHECK: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Runs the operator with the in-cluster (or $KUBECONFIG) client until `stop` is cancelled.
pub async fn run(args: OperatorArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let client = Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("cannot build a Kubernetes client (in-cluster or $KUBECONFIG): {e}")
    })?;
    run_with_client(client, args, stop).await
}

/// Runs the operator with `client` until `stop` is cancelled: the HTTP endpoints,
/// then the controller (directly, or whenever this replica holds the Lease).
pub async fn run_with_client(
    client: Client,
    args: OperatorArgs,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let policy = policy::Policy::new(
        args.allowed_data_roots.clone(),
        args.allowed_image_repositories.clone(),
        args.default_image.clone(),
    )?;
    tracing::info!(
        data_roots = %join(&policy.data_roots),
        image_repositories = %join(&policy.image_repositories),
        default_image = %policy.default_image,
        "NodeMonitors are held to these settings"
    );
    let shared = Arc::new(Shared::default());
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot listen on --metrics-addr {}: {e}", args.metrics_addr)
        })?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let limits = crate::http::Limits::from(&args.http);
    let server = tokio::spawn(server::serve(
        listener,
        shared.clone(),
        limits.clone(),
        stop.clone(),
    ));

    let (webhook_server, renewal) = match start_webhook(&client, &args, &limits, &stop).await {
        Ok(tasks) => tasks,
        Err(e) => {
            stop.cancel();
            let _ = server.await;
            return Err(e);
        }
    };

    let result = if args.leader_election {
        run_with_lease(client, &args, shared.clone(), stop.clone()).await
    } else {
        shared.metrics.leader.set(1);
        shared.ready.store(true, Ordering::Release);
        run_controller(client, &args, shared.clone(), stop.clone()).await
    };
    stop.cancel();
    let _ = server.await;
    let _ = webhook_server.await;
    renewal.abort();
    result
}

/// The webhook first: the CRD names it, and even listing v1alpha1-stored
/// objects in v1beta1 goes through it. Then the CRD (`--manage-crd`).
async fn start_webhook(
    client: &Client,
    args: &OperatorArgs,
    limits: &crate::http::Limits,
    stop: &CancellationToken,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)> {
    let target = args.webhook_target();
    let hosts = webhook::hosts(&target);
    let bundle = webhook::certs::ensure(client, &args.own_namespace(), &hosts).await?;
    let resolver = Arc::new(webhook::certs::Resolver::new(
        webhook::certs::certified_key(&bundle)?,
    ));
    let listener = webhook::bind(args.webhook_addr).await?;
    let server = tokio::spawn(webhook::serve(
        listener,
        resolver.clone(),
        limits.clone(),
        stop.clone(),
    ));
    if args.manage_crd
        && let Err(e) = crd_install::apply(client, &target, bundle.ca_cert.as_bytes()).await
    {
        stop.cancel();
        let _ = server.await;
        return Err(e.into());
    }
    let renewal = tokio::spawn(keep_certificate(
        client.clone(),
        args.clone(),
        bundle,
        resolver,
        stop.clone(),
    ));
    Ok((server, renewal))
}

/// Checks the webhook's certificate every [`CERT_CHECK`]: a renewed one is served
/// at once (and a new CA applied to the CRD).
async fn keep_certificate(
    client: Client,
    args: OperatorArgs,
    mut bundle: webhook::certs::Bundle,
    resolver: Arc<webhook::certs::Resolver>,
    stop: CancellationToken,
) {
    let target = args.webhook_target();
    let hosts = webhook::hosts(&target);
    loop {
        tokio::select! {
            () = tokio::time::sleep(CERT_CHECK) => {}
            () = stop.cancelled() => return,
        }
        let now = match webhook::certs::ensure(&client, &args.own_namespace(), &hosts).await {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the webhook certificate; serving the current one");
                continue;
            }
        };
        if now.cert != bundle.cert {
            match webhook::certs::certified_key(&now) {
                Ok(key) => resolver.set(key),
                Err(e) => {
                    tracing::warn!(error = %e, "renewed webhook certificate unusable");
                    continue;
                }
            }
        }
        if now.ca_cert != bundle.ca_cert
            && args.manage_crd
            && let Err(e) = crd_install::apply(&client, &target, now.ca_cert.as_bytes()).await
        {
            tracing::warn!(error = %e, "cannot name the new webhook CA in the CRD");
            continue;
        }
        bundle = now;
    }
}

async fn run_with_lease(
    client: Client,
    args: &OperatorArgs,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let namespace = args.own_namespace();
    let duration = args.lease_duration.get().as_secs().max(2);
    let mut builder = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(&namespace)
        .with_duration(duration)
        .with_grace((duration / 3).max(1));
    // The pod name tells people who leads; without it the manager makes up a unique identity.
    if let Ok(pod) = std::env::var("POD_NAME") {
        builder = builder.with_identity(pod);
    }
    let manager = builder
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("cannot use Lease {namespace}/{LEASE_NAME}: {e}"))?;
    let (mut leading, task) = manager.watch().await;
    shared.ready.store(true, Ordering::Release);
    tracing::info!(lease = %format!("{namespace}/{LEASE_NAME}"), "waiting for leadership");
    let mut result = Ok(());
    while !stop.is_cancelled() {
        if !*leading.borrow_and_update() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { break },
                () = stop.cancelled() => break,
            }
            continue;
        }
        tracing::info!("leading: starting the controller");
        shared.metrics.leader.set(1);
        let term = stop.child_token();
        let controller = run_controller(client.clone(), args, shared.clone(), term.clone());
        tokio::pin!(controller);
        let lost = loop {
            tokio::select! {
                r = &mut controller => break r,
                changed = leading.changed() => {
                    if changed.is_err() || !*leading.borrow_and_update() {
                        tracing::warn!("lost the Lease: stopping the controller");
                        term.cancel();
                    }
                }
            }
        };
        shared.metrics.leader.set(0);
        if let Err(e) = lost {
            result = Err(e);
            break;
        }
    }
    // Closing the channel makes the manager release the Lease, so a standby takes over at once.
    drop(leading);
    match task.await {
        Ok(Ok(_)) => tracing::info!("released the Lease"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the Lease"),
        Err(e) => tracing::warn!(error = %e, "lease task failed"),
    }
    result
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The NodeMonitor a cluster-scoped child belongs to, from its owner annotation.
fn owner_of<K: ResourceExt>(obj: &K) -> Option<ObjectRef<NodeMonitor>> {
    let (ns, name) = obj.annotations().get(OWNER_ANNOTATION)?.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// Runs the controller until `stop` is cancelled (finishing reconciles in flight).
pub async fn run_controller(
    client: Client,
    args: &OperatorArgs,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let nodemonitors: Api<NodeMonitor> = Api::all(client.clone());
    nodemonitors
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|e| anyhow::anyhow!("cannot list NodeMonitors (is the CRD installed? `fine-grained-monitor crd | kubectl apply --server-side -f -`): {e}"))?;
    if args.manage_crd {
        crd_install::migrate_storage(&client).await?;
    }
    let managed = watcher::Config::default().labels(MANAGED_SELECTOR);
    let controller = Controller::new(nodemonitors.clone(), watcher::Config::default());
    let store = controller.store();
    let conflicts = store.clone();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "fine-grained-monitor-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(reconcile::Context::new(
        client.clone(),
        recorder,
        shared.metrics.clone(),
        store,
        policy::Policy::new(
            args.allowed_data_roots.clone(),
            args.allowed_image_repositories.clone(),
            args.default_image.clone(),
        )?,
    ));
    controller
        .owns(Api::<DaemonSet>::all(client.clone()), managed.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), managed.clone())
        .owns(Api::<ServiceAccount>::all(client.clone()), managed.clone())
        .watches(
            Api::<ClusterRoleBinding>::all(client.clone()),
            managed,
            |o| owner_of(&o),
        )
        // A NodeMonitor that changes or goes away may free (or take) another's host directory.
        .watches(nodemonitors, watcher::Config::default(), move |changed| {
            conflicts
                .state()
                .iter()
                .filter(|other| conflict::affects(&changed, other))
                .map(|other| ObjectRef::from_obj(&**other))
                .collect::<Vec<_>>()
        })
        .trigger_backoff(trigger_backoff::TriggerBackoff::default())
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(nodemonitor = %obj, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
    Ok(())
}

/// Prints the NodeMonitor CRD as YAML (`fine-grained-monitor crd`).
pub fn print_crd() -> anyhow::Result<()> {
    use std::io::Write;
    let yaml = crate::crd::crd_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}
