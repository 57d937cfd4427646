//! Crash safety: `kill -9` the agent binary while it samples and writes; every
//! `*.parquet` left behind opens and reads fully, and index.json parses. Then
//! a clean SIGTERM (the DaemonSet's stop) writes the open interval.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_support::fixture;
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::{layout, reader};

fn start_agent(data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"))
        .args(["agent", "--interval", "10ms", "--rotation", "1s"])
        .arg("--data-dir")
        .arg(data)
        .arg("--cgroup-root")
        .arg(fixture("v1-cgroupfs-docker"))
        .args(["--node-name", "crash-node", "--metrics-addr", "127.0.0.1:0"])
        .env("FGM_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("agent binary starts")
}

fn check_everything_readable(data: &std::path::Path) -> usize {
    let listing = layout::list_data_files(data, None).unwrap();
    let mut rows = 0;
    for file in &listing.files {
        let batches = reader::read_file(&file.path, None).unwrap_or_else(|e| {
            panic!(
                "{} left by a crash must read fully: {e}",
                file.path.display()
            )
        });
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    if layout::index_path(data).exists() {
        Index::load(&layout::index_path(data)).expect("index.json parses after a crash");
    }
    rows
}

#[test]
fn kill_dash_nine_leaves_only_complete_files() {
    let data = tempfile::tempdir().unwrap();
    let mut total_rows = 0;
    // Several kills at different moments of the rotation cycle.
    for (round, millis) in [1150u64, 1730, 2420, 1990].into_iter().enumerate() {
        let mut agent = start_agent(data.path());
        std::thread::sleep(Duration::from_millis(millis));
        agent.kill().expect("SIGKILL");
        agent.wait().unwrap();
        let rows = check_everything_readable(data.path());
        assert!(rows >= total_rows, "round {round}: earlier files intact");
        total_rows = rows;
    }
    assert!(total_rows > 0, "rotations completed files before the kills");
}

#[test]
fn sigterm_writes_the_open_interval() {
    let data = tempfile::tempdir().unwrap();
    let agent = start_agent(data.path());
    std::thread::sleep(Duration::from_millis(600));
    let status = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = agent.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "clean exit on SIGTERM: {:?}",
        output.status
    );
    // Less than one rotation ran: only the shutdown can have written this file.
    let rows = check_everything_readable(data.path());
    assert!(rows > 0, "open interval written on SIGTERM");
    let index = Index::load(&layout::index_path(data.path()))
        .unwrap()
        .unwrap();
    assert_eq!(index.containers.len(), 3);
    let listing = layout::list_data_files(data.path(), None).unwrap();
    for file in &listing.files {
        assert!(!layout::in_progress_path(&file.path).exists());
    }
}

/// Every sample of the open interval is in its tail file as it is taken: after `kill -9` the
/// next start turns the tail into a data file, losing at most the cycle being written
/// (issue #24; a kernel crash may lose what came after the last fsync, `--tail-sync`).
#[test]
fn kill_dash_nine_loses_at_most_the_cycle_being_written() {
    let data = tempfile::tempdir().unwrap();
    let interval_ms = 100;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"))
            .args(["agent", "--interval", "100ms", "--rotation", "60s"])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--cgroup-root")
            .arg(fixture("v1-cgroupfs-docker"))
            .args(["--node-name", "crash-node", "--metrics-addr", "127.0.0.1:0"])
            .env("FGM_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("agent binary starts")
    };
    let mut agent = spawn();
    std::thread::sleep(Duration::from_millis(2500));
    agent.kill().expect("SIGKILL");
    let killed_at = chrono::Utc::now();
    agent.wait().unwrap();
    let listing = layout::list_data_files(data.path(), None).unwrap();
    assert!(
        listing.files.is_empty(),
        "no rotation ran: only the tail holds the samples"
    );
    assert_eq!(
        listing.tails.len(),
        1,
        "the open interval's tail survives the kill"
    );
    let (tail_rows, _) =
        fine_grained_monitor::store::tail::read_tail_file(&listing.tails[0].path).unwrap();
    let (_, last) = tail_rows.span().expect("samples in the tail");
    assert!(
        killed_at - last <= chrono::Duration::milliseconds(2 * interval_ms),
        "the tail reaches the last cycle before the kill: last {last}, killed {killed_at}"
    );

    // The next start makes the tail a data file (and starts a new interval).
    let agent = spawn();
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(agent.wait_with_output().unwrap().status.success());
    let listing = layout::list_data_files(data.path(), None).unwrap();
    assert!(listing.tails.is_empty(), "{:?}", listing.tails);
    let recovered = listing
        .files
        .iter()
        .find(|f| f.start == listing.files[0].start)
        .unwrap();
    let batches = reader::read_file(&recovered.path, None).unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(
        rows,
        tail_rows.rows(),
        "every sample of the tail is in the data file"
    );
    assert!(
        listing.files.len() >= 2,
        "the restarted agent's own interval beside it"
    );
}
