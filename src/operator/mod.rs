//! The operator: reconciles NodeMonitor resources into DaemonSets, RBAC and settings.

use clap::Args;

/// Flags of `operator`.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "FGM_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
}
