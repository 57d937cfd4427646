//! The viewer: a read-only web app over a data directory.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

/// Flags of `viewer` and `fgm-viewer`.
#[derive(Debug, Clone, Args)]
pub struct ViewerArgs {
    /// Data directory written by the agent.
    #[arg(env = "FGM_DATA_DIR", default_value = "/data", value_name = "DATA_DIR")]
    pub data_dir: PathBuf,

    /// Port to listen on.
    #[arg(long, env = "FGM_PORT", default_value_t = 8050)]
    pub port: u16,

    /// Address to listen on (loopback by default: reach it with kubectl port-forward).
    #[arg(long, env = "FGM_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Do not open a browser.
    #[arg(long, env = "FGM_NO_BROWSER")]
    pub no_browser: bool,
}

/// Serves the viewer until `stop` is cancelled.
pub async fn run(
    _args: ViewerArgs,
    _stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("viewer is not built yet")
}
