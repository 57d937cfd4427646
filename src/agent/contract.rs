//! What the agent shares with the parts built around it: the latest cycle
//! (read by the Prometheus endpoint) and the pod metadata source (the enricher).
//!
//! ```text
//!  sampler ──Cycle──▶ watch channel ──▶ /metrics (latest sample per container)
//!  sampler ──full id──▶ PodMetadata::lookup ──▶ index.json pod/namespace/labels
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// One container's sample in a cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSample {
    /// 12-hex short id (the `container_id` column and index.json key).
    pub short_id: String,
    /// Full container id (64 hex in Kubernetes; the cgroup path in `local` mode).
    pub full_id: String,
    /// cgroup path relative to the cgroup root.
    pub cgroup_path: String,
    /// Values in [`crate::store::schema::METRICS`] order; `None` when the kernel lacks it.
    pub values: Vec<Option<i64>>,
    /// The pod's UID, from the cgroup path (shared: cloned every cycle).
    pub pod_uid: Option<Arc<str>>,
    /// A pod's sandbox (pause) container: named after its pod, with no container name.
    pub sandbox: bool,
    /// IO per block device (the `io_*` values are their sums).
    pub devices: Vec<crate::agent::slots::DeviceIo>,
}

/// A sample's Kubernetes identity: its container's, or for a sandbox its pod's.
pub fn identity_of(pods: &dyn PodMetadata, sample: &ContainerSample) -> Option<Arc<PodInfo>> {
    if sample.sandbox
        && let Some(uid) = sample.pod_uid.as_deref()
    {
        return pods.lookup_pod(uid);
    }
    pods.lookup(&sample.full_id)
}

/// Everything one collection cycle read, published after each cycle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cycle {
    pub timestamp: Option<DateTime<Utc>>,
    pub containers: Vec<ContainerSample>,
    /// Every interface of every pod's network namespace (loopback included).
    pub network: Vec<InterfaceSample>,
    /// The kept processes of each container (`--processes`; empty otherwise).
    pub processes: Vec<crate::agent::process_table::ProcessSample>,
}

/// One interface of a pod's network namespace in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSample {
    /// Short id of the pod's sandbox container (whose row carries the pod's totals).
    pub sandbox: String,
    pub pod_uid: Arc<str>,
    pub interface: String,
    /// In [`crate::agent::network::netdev::COUNTERS`] order.
    pub counters: [i64; crate::agent::network::netdev::COUNTERS.len()],
}

/// Receiver of the latest cycle; starts with an empty [`Cycle`].
pub type CycleReceiver = tokio::sync::watch::Receiver<Arc<Cycle>>;

/// Kubernetes identity of a container, as the enricher knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodInfo {
    pub pod_name: String,
    pub namespace: String,
    pub pod_uid: String,
    pub labels: BTreeMap<String, String>,
    pub container_name: String,
    /// Image, where the API reports it (used as the `image` Prometheus label).
    pub image: Option<String>,
    /// The pod uses the node's network namespace (`spec.hostNetwork`).
    pub host_network: bool,
    /// The container's resource requests (recorded in index.json, drawn by the viewer).
    pub requests: Option<crate::store::index::Requests>,
}

/// A source of pod metadata keyed by container id. Must be cheap (called for
/// every container every cycle) and never block on the network.
pub trait PodMetadata: Send + Sync {
    /// Looks up a container by its full id (runtime prefix already stripped).
    /// Shared, not cloned: a hit costs a reference-count increment rather than
    /// copying the names and every label (the agent asks every cycle).
    fn lookup(&self, full_container_id: &str) -> Option<Arc<PodInfo>>;

    /// A pod's identity by its UID, with an empty container name: what its
    /// sandbox (pause) container is named by. `None` when unknown.
    fn lookup_pod(&self, _pod_uid: &str) -> Option<Arc<PodInfo>> {
        None
    }

    /// Whether pods of this namespace are recorded (the NodeMonitor `namespaceSelector`).
    /// `None` when unknown (cache not synced yet): record until known.
    fn namespace_selected(&self, _namespace: &str) -> Option<bool> {
        Some(true)
    }
}
