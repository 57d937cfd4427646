//! The agent's Prometheus endpoint: the latest sample of every container under
//! cAdvisor's metric names, plus the agent's own metrics.
//!
//! ```text
//!  sampler ──Arc<Cycle>──▶ watch ──▶ cadvisor::render_containers ─┐
//!  PodMetadata::lookup ──▶ namespace/pod/container/image labels ──┤
//!  SelfMetrics (prometheus-client registry) ──────────────────────┴─▶ GET /metrics
//! ```
//!
//! - [`cadvisor`]: pure renderer of the container families.
//! - [`format`]: text 0.0.4 / OpenMetrics negotiation and encoding details.
//! - [`self_metrics`]: [`SelfMetrics`], incremented by the agent loop.
//! - [`health`]: the `/healthz` verdict.
//! - [`reliability`]: descriptors, clock steps, data directory bytes.
//! - [`server`]: the axum app and its listener.

pub mod cadvisor;
pub mod format;
pub mod health;
pub mod reliability;
pub mod self_metrics;
pub mod server;

pub use self_metrics::{EnrichmentState, EnrichmentStatus, SelfMetrics};
pub use server::{MetricsState, app, serve, serve_router};

/// Default `--metrics-addr`.
pub const DEFAULT_ADDR: &str = "0.0.0.0:9810";
