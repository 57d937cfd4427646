//! A second agent on the same data directory.

use std::time::Duration;

use fine_grained_monitor::store::layout;

use crate::support::{agent_command, fixture, spawn, total_rows, wait_until};

fn lock_holder_pid(data: &std::path::Path) -> Option<u32> {
    let text = std::fs::read_to_string(data.join(".lock")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("pid")?.as_u64().map(|p| p as u32)
}

/// Fault: a second agent starts on a directory another agent writes (a second
/// NodeMonitor, a surge pod). User sees: the second exits non-zero, its
/// error naming the holder (pid, host, node, since); the first goes on.
/// Data lost: none; the second never touches the first one's files.
#[test]
fn second_agent_exits_naming_the_holder_and_touches_nothing() {
    let data = tempfile::tempdir().unwrap();
    let tree = fixture("v1-cgroupfs-docker");
    let mut first = spawn(agent_command(data.path(), &tree, &[]));
    let first_pid = first.child.id();
    wait_until(Duration::from_secs(20), "the first agent's lock", || {
        lock_holder_pid(data.path()) == Some(first_pid)
    });
    // As if the first agent were writing a file right now.
    let node_dir = layout::node_day_dir(data.path(), chrono::Utc::now().date_naive(), "fault-node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let writing = node_dir.join("metrics-20990101T000000Z.parquet.inprogress");
    std::fs::write(&writing, b"being written").unwrap();

    let mut second = spawn(agent_command(data.path(), &tree, &["--lock-wait", "1s"]));
    let status = second.wait(Duration::from_secs(20));
    assert!(!status.success(), "the second agent must fail: {status:?}");
    let log = second.log_text();
    assert!(
        log.contains(&format!("pid {first_pid}")) && log.contains("fault-node"),
        "the error names the holder:\n{log}"
    );
    assert!(log.contains("another agent"), "{log}");
    assert!(
        writing.exists(),
        "the first agent's in-progress file is untouched"
    );
    assert_eq!(lock_holder_pid(data.path()), Some(first_pid));
    assert!(first.running(), "the first agent goes on");
    let status = first.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", first.log_text());
    assert!(total_rows(data.path()) > 0);
}

/// Fault: a rolling update starts the new agent while the old one still
/// writes its last file. User sees: the new agent logs that it waits, then
/// takes over within its `--lock-wait` once the old one exits. Data lost:
/// none but the seconds between the old agent's stop and the new one's start.
#[test]
fn rolling_update_waits_for_the_old_agent_then_takes_over() {
    let data = tempfile::tempdir().unwrap();
    let tree = fixture("v1-cgroupfs-docker");
    let mut old = spawn(agent_command(data.path(), &tree, &[]));
    let old_pid = old.child.id();
    wait_until(Duration::from_secs(20), "the old agent's lock", || {
        lock_holder_pid(data.path()) == Some(old_pid)
    });
    // Rows on disk, not just index.json (saved when containers are first
    // seen, possibly before any sample is kept): under load the SIGTERM below
    // could otherwise land before the old agent has a sample to write.
    wait_until(
        Duration::from_secs(20),
        "the old agent's first file",
        || total_rows(data.path()) > 0,
    );
    let mut new = spawn(agent_command(data.path(), &tree, &["--lock-wait", "30s"]));
    let new_pid = new.child.id();
    wait_until(Duration::from_secs(20), "the new agent waiting", || {
        new.log_text().contains("waiting for it to stop")
    });
    assert_eq!(lock_holder_pid(data.path()), Some(old_pid));
    let status = old.terminate(Duration::from_secs(20));
    assert!(status.success());
    let rows_of_old = total_rows(data.path());
    wait_until(Duration::from_secs(20), "the new agent's lock", || {
        lock_holder_pid(data.path()) == Some(new_pid)
    });
    // At least one rotation of the new agent.
    wait_until(Duration::from_secs(20), "rows of the new agent", || {
        total_rows(data.path()) > rows_of_old
    });
    assert!(new.log_text().contains("taking over"), "{}", new.log_text());
    let status = new.terminate(Duration::from_secs(20));
    assert!(status.success(), "{}", new.log_text());
}
