//! `kubectl-fgm`: the kubectl plugin (`kubectl fgm nodes|open|top`), see docs/kubectl-fgm.md.

use clap::Parser;
use fine_grained_monitor::plugin::{self, PluginCli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = PluginCli::parse();
    match plugin::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
