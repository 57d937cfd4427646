//! fine-grained-monitor: per-second container metrics for Kubernetes nodes.
//!
//! ```text
//!  NodeMonitor ─▶ operator ─▶ DaemonSet + RBAC + ConfigMap (one pod per node)
//!                              │
//!       agent: cgroup scan ─▶ sample ─▶ store (Parquet + index.json on /data)
//!                                               │
//!       viewer: index.json + Parquet ─▶ JSON API + charts (port 8050)
//! ```
//!
//! - [`agent`]: container discovery and per-second sampling of cgroup files.
//! - [`store`]: the data directory contract: Parquet schema, rotation, index, retention.
//! - [`viewer`]: read-only web app over a data directory.
//! - [`operator`]: NodeMonitor reconciler.
//! - [`plugin`]: `kubectl fgm`, the kubectl plugin (nodes, open, top through port-forwards).
//! - [`http`]: the one HTTP server (timeouts, connection and request caps) every mode serves through.
//! - [`cli`], [`units`], [`telemetry`]: flags, durations and sizes, logging.

pub mod agent;
pub mod cli;
pub mod crd;
pub mod export;
pub mod http;
pub mod local;
pub mod operator;
pub mod plugin;
pub mod s3;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod units;
pub mod viewer;
