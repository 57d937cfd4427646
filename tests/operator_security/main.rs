//! Attacks on the NodeMonitor surface against the real apiserver of the test
//! control plane (issue #17): a NodeMonitor must not be a key to the node.
//! One operator runs for the binary as its own ServiceAccount with exactly the
//! chart's rules; each test works in its own namespace.
//!
//! ```text
//!  common.rs     refused / nothing made / warning event helpers
//!  paths.rs      dangerous paths, the chart's admission policy, one directory two ways
//!  images.rs     a foreign image
//!  ownership.rs  a NodeMonitor named default, foreign objects, an older operator's objects
//!  tokens.rs     the monitor's and the operator's real tokens
//! ```
//!
//! - dangerous host paths are refused (by the CRD where CEL can say it, else
//!   by the operator) before any object is made;
//! - the chart's admission policy refuses them at `kubectl apply`;
//! - a foreign image gets a condition and no DaemonSet (a running one is removed);
//! - a NodeMonitor named `default` never touches the `default` ServiceAccount;
//! - objects that already carry the operator's names are left untouched;
//! - one directory written two ways in two namespaces is one directory;
//! - the monitor's real token reads pods and nothing else; the operator's real
//!   token binds the agent roles and cannot create, change or bind another role;
//! - an older operator's binding is migrated, existing default NodeMonitors keep working.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "../operator_common/mod.rs"]
mod operator_common;
#[path = "../support/mod.rs"]
mod support;

mod common;
mod images;
mod ownership;
mod paths;
mod tokens;
