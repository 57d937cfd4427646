//! Pod metadata enricher: which pod, namespace, labels and container name a
//! container id belongs to, and the pod failure signals (OOM kills, other
//! terminations, CrashLoopBackOff, restarts) of this node's pods.
//!
//! ```text
//!  API server ──watch pods spec.nodeName=$NODE──▶ cache task ──▶ PodIndex (id → PodInfo)
//!            ──watch namespaces (selector)─────▶            ──▶ selected namespaces
//!                                                           ──▶ events::detect ─▶ Dedup ─▶ <data>/events/*.jsonl
//!  agent cycle ──PodMetadata::lookup(full id)──▶ PodIndex (one hash probe, no network)
//!  health endpoint ◀── Enricher::health(): syncing | synced | unavailable{cause, reason}
//! ```
//!
//! The cache is a kube-runtime watcher whose events are applied to our own
//! map keyed by container id (a reflector `Store` is keyed by pod name, so a
//! container-id look-up would be a scan). Lists are served from the API
//! server's watch cache (`resourceVersion=0`); kube 5 speaks JSON only, so
//! there is no protobuf negotiation to do.
//!
//! Without an API (not in a cluster, bad kubeconfig, unknown context, RBAC
//! denied, server down) the agent keeps collecting with short ids: one log
//! line names the cause, retries back off in the background, and enrichment
//! resumes by itself (with a fresh list, so nothing missed during the outage
//! stays stale).

mod cache;
pub mod client;
pub mod events;
pub mod health;
pub mod index;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agent::contract::{PodInfo, PodMetadata};
use crate::agent::prometheus::{EnrichmentState, EnrichmentStatus, SelfMetrics};
pub use client::ClientSource;
pub use health::{Cause, Health};
use index::PodIndex;

/// Everything the enricher needs from the agent's settings.
#[derive(Debug, Clone)]
pub struct EnrichConfig {
    /// Only pods with `spec.nodeName` equal to this are watched.
    pub node_name: String,
    pub source: ClientSource,
    /// Label selector on namespaces (`--namespace-selector`); `None` selects all.
    pub namespace_selector: Option<String>,
    /// Data directory; pod events go to `<data>/events/`.
    pub data_dir: PathBuf,
    /// First and longest wait between attempts while the API is unavailable.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Where the cache state and pod event counts are published (`/metrics`, `/healthz`).
    pub metrics: Option<SelfMetrics>,
}

impl EnrichConfig {
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_name: node_name.into(),
            source: ClientSource::default(),
            namespace_selector: None,
            data_dir: data_dir.into(),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            metrics: None,
        }
    }
}

/// Which namespaces are recorded.
#[derive(Debug)]
enum Namespaces {
    /// No selector.
    All,
    /// A selector, not listed yet.
    Pending,
    /// A selector and the names of the namespaces it selects now.
    Selected(HashSet<String>),
}

/// The agent's handle on pod metadata; cheap to query from the collection loop.
#[derive(Debug)]
pub struct Enricher {
    index: RwLock<PodIndex>,
    namespaces: RwLock<Namespaces>,
    health: watch::Sender<Health>,
}

impl Enricher {
    fn new(selector: bool, health: Health) -> Self {
        Self {
            index: RwLock::new(PodIndex::default()),
            namespaces: RwLock::new(if selector {
                Namespaces::Pending
            } else {
                Namespaces::All
            }),
            health: watch::Sender::new(health),
        }
    }

    /// An enricher that knows nothing (`--enrichment=false`); reports `disabled`.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self::new(false, Health::Disabled))
    }

    /// Loading state of the pod cache, for the health endpoint.
    pub fn health(&self) -> Health {
        self.health.borrow().clone()
    }

    /// Follows health changes (tests and the health endpoint may wait on it).
    pub fn health_changes(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// The health in the shape `/healthz` and the state gauge use.
    pub fn status(&self) -> EnrichmentStatus {
        let (pods, _) = self.counts();
        let (state, reason) = match self.health() {
            Health::Disabled => (EnrichmentState::disabled, None),
            Health::Syncing => (EnrichmentState::syncing, None),
            Health::Synced => (EnrichmentState::synced, None),
            Health::Unavailable { reason, .. } => (EnrichmentState::unavailable, Some(reason)),
        };
        EnrichmentStatus {
            state,
            reason,
            pods: pods as u64,
        }
    }

    /// Pods and container ids currently known.
    pub fn counts(&self) -> (usize, usize) {
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        (index.pods(), index.containers())
    }

    fn replace_index(&self, index: PodIndex) {
        *self.index.write().unwrap_or_else(PoisonError::into_inner) = index;
    }

    fn update_index(&self, f: impl FnOnce(&mut PodIndex)) {
        f(&mut self.index.write().unwrap_or_else(PoisonError::into_inner));
    }

    fn set_selected(&self, names: HashSet<String>) {
        *self
            .namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Namespaces::Selected(names);
    }

    fn update_selected(&self, f: impl FnOnce(&mut HashSet<String>)) {
        if let Namespaces::Selected(names) = &mut *self
            .namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner)
        {
            f(names);
        }
    }
}

impl PodMetadata for Enricher {
    fn lookup(&self, full_container_id: &str) -> Option<Arc<PodInfo>> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup(full_container_id)
            .cloned()
    }

    fn lookup_pod(&self, pod_uid: &str) -> Option<Arc<PodInfo>> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup_pod(pod_uid)
            .cloned()
    }

    fn namespace_selected(&self, namespace: &str) -> Option<bool> {
        match &*self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Namespaces::All => Some(true),
            Namespaces::Pending => None,
            Namespaces::Selected(names) => Some(names.contains(namespace)),
        }
    }
}

/// Starts the cache task; it runs until `stop` is cancelled and never fails
/// (an unusable API is a health state, not an error).
pub fn start(config: EnrichConfig, stop: CancellationToken) -> (Arc<Enricher>, JoinHandle<()>) {
    let selector = config
        .namespace_selector
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty());
    let enricher = Arc::new(Enricher::new(selector, Health::Syncing));
    let task = tokio::spawn(cache::run(enricher.clone(), config, stop));
    (enricher, task)
}

impl EnrichConfig {
    /// The enricher's settings from the agent's flags; `None` with `--enrichment=false`.
    pub fn from_args(
        args: &crate::agent::AgentArgs,
        node_name: &str,
        data_dir: &std::path::Path,
    ) -> Option<Self> {
        if !args.enrichment {
            return None;
        }
        let mut config = Self::new(node_name, data_dir);
        config.source = ClientSource {
            kubeconfig: args.kubeconfig.clone(),
            context: args.kube_context.clone(),
        };
        config.namespace_selector = args
            .namespace_selector
            .clone()
            .filter(|s| !s.trim().is_empty());
        config.retry_max = args.enrichment_retry_max.0.max(config.retry_initial);
        Some(config)
    }
}
