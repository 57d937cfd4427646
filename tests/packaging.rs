//! Packaging tests (issue #7): the Helm chart, the kustomize manifests under
//! `config/`, the Dockerfile and the documentation, checked against the real tools
//! (Go-built `helm` and `kubectl` from `tools/envtest/build.sh`) and, where an
//! object must be accepted or reconciled, a real kube-apiserver.
//!
//! ```text
//!  files.rs     versions, CRD copies, Dockerfile vs Cargo.toml, .dockerignore
//!  docs.rs      docs pages and samples vs the CRD, the flags, the metric schema, values.yaml
//!  docs_links.rs links and anchors of the docs, the make and cargo targets they name
//!  chart.rs     helm lint --strict, helm template (defaults, ci/*.yaml), values schema
//!  manifests.rs kustomize output vs the chart vs the operator's declared RBAC
//!  cluster.rs   rendered objects accepted by the apiserver (server-side dry run)
//!  e2e.rs       helm install, operator process with the chart's ServiceAccount token,
//!               sample NodeMonitor reconciled, delete + uninstall leave nothing behind
//!  image.rs     the image `make images` assembles vs the Dockerfile's runtime stage
//! ```
//!
//! The same path with real pods on a real kubelet is tests/real_node.rs.

#[path = "packaging/tools.rs"]
mod tools;

#[path = "packaging/files.rs"]
mod files;

#[path = "packaging/docs.rs"]
mod docs;

#[path = "packaging/docs_links.rs"]
mod docs_links;

#[path = "packaging/chart.rs"]
mod chart;

#[path = "packaging/manifests.rs"]
mod manifests;

mod support;

#[path = "packaging/cluster.rs"]
mod cluster;

#[path = "packaging/e2e.rs"]
mod e2e;

#[path = "packaging/image.rs"]
mod image;
