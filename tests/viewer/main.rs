//! Viewer API tests on data written by the crate's own store writer (the
//! contract the agent writes to): range selection across rotated files and
//! day boundaries, rates, downsampling, bad requests, path escapes, events,
//! waiting and rebuilt indexes, corrupt files, and the real server loop.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod api;
mod breakdown;
mod export;
mod fixture;
mod live;
mod loading;
mod mcp;
mod overview;
mod processes;
mod robust;
mod server;
mod study;
