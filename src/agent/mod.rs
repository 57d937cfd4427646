//! The node agent: discovers containers from the cgroup tree, samples their
//! metrics once per interval and hands each sample to the store.

pub mod contract;
pub mod enrich;

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
}

/// Runs the agent until `stop` is cancelled.
pub async fn run(
    _args: AgentArgs,
    _stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("agent mode is not built yet")
}
