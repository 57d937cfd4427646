//! The fault matrix of issue #18: one test per fault, each stating in its
//! doc what the user sees and what data is lost (README "Reliability").
//! Each runs the real agent binary (or its parts) on real files.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod cgroups;
mod clock_step;
mod descriptors;
mod files;
mod second_agent;
mod support;
