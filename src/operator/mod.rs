//! The operator: reconciles NodeMonitor resources into DaemonSets, RBAC and settings.

pub mod builders;

use clap::Args;

/// Flags of `operator`.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "FGM_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
}

/// Runs the operator until `stop` is cancelled.
pub async fn run(
    _args: OperatorArgs,
    _stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("operator is not built yet")
}

/// Prints the NodeMonitor CRD as YAML (`fine-grained-monitor crd`).
pub fn print_crd() -> anyhow::Result<()> {
    use std::io::Write;
    let yaml = crate::crd::crd_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}
