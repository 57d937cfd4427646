//! `local` mode: the agent on this machine's own cgroups plus the viewer on
//! the same data directory, so a new user sees the product without a cluster.

use tokio_util::sync::CancellationToken;

use crate::cli::LocalArgs;

/// Runs agent and viewer together until `stop` is cancelled.
pub async fn run(_args: LocalArgs, _stop: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("local mode is not built yet")
}
