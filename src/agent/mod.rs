//! The node agent: discovers containers from the cgroup tree, samples their
//! metrics once per interval and hands each sample to the store.

pub mod contract;
pub mod enrich;
pub mod prometheus;

pub use contract::{ContainerSample, Cycle, CycleReceiver, PodInfo, PodMetadata};

use std::path::PathBuf;

use clap::Args;

use crate::units::{ByteSize, HumanDuration};

/// Flags of `agent` (and of `local`, which adds the viewer's).
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Where Parquet files and index.json are written
    /// [default: /data for `agent`, ~/.local/share/fine-grained-monitor for `local`].
    #[arg(long, env = "FGM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Node name, used for the `identifier=` directory [default: $NODE_NAME, else the hostname].
    #[arg(long, env = "FGM_NODE_NAME")]
    pub node_name: Option<String>,

    /// Sampling interval.
    #[arg(long, env = "FGM_INTERVAL", default_value = "1s")]
    pub interval: HumanDuration,

    /// How often the open Parquet file is completed and a new one started.
    #[arg(long, env = "FGM_ROTATION", default_value = "90s")]
    pub rotation: HumanDuration,

    /// Root of the cgroup tree to read: a v2 root or a directory of v1 controller
    /// hierarchies [default: found from /proc/self/mountinfo].
    #[arg(long, env = "FGM_CGROUP_ROOT", value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,

    /// Data files older than this are deleted.
    #[arg(long, env = "FGM_RETENTION_MAX_AGE", default_value = "7d")]
    pub retention_max_age: HumanDuration,

    /// Oldest data files are deleted while the data exceeds this size (e.g. 10Gi).
    #[arg(long, env = "FGM_RETENTION_MAX_BYTES")]
    pub retention_max_bytes: Option<ByteSize>,

    /// Address of the Prometheus endpoint: /metrics (cAdvisor names + self-metrics), /healthz, /.
    #[arg(long, env = "FGM_METRICS_ADDR", default_value = prometheus::DEFAULT_ADDR)]
    pub metrics_addr: std::net::SocketAddr,

    /// Record pod names, namespaces, labels and failure events from the
    /// Kubernetes API (pods of this node only); `false` keeps short ids only.
    #[arg(long, env = "FGM_ENRICHMENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub enrichment: bool,

    /// Kubeconfig for the API [default: in-cluster service account, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "FGM_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use [default: the current context].
    #[arg(long, env = "FGM_KUBE_CONTEXT")]
    pub kube_context: Option<String>,

    /// Only record pods of namespaces matching this label selector (e.g. `monitoring=on`).
    #[arg(long, env = "FGM_NAMESPACE_SELECTOR", value_name = "SELECTOR")]
    pub namespace_selector: Option<String>,

    /// Longest wait between attempts to reach the API while it is unavailable.
    #[arg(long, env = "FGM_ENRICHMENT_RETRY_MAX", default_value = "30s")]
    pub enrichment_retry_max: HumanDuration,
}

/// Runs the agent until `stop` is cancelled.
pub async fn run(
    _args: AgentArgs,
    _stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("agent mode is not built yet")
}
