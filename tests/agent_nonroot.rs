//! The agent as the DaemonSet runs it: uid 65532 with no capability, on REAL
//! cgroups of this machine, after `prepare-data-dir` (run as root, as the init
//! container is) handed it a data directory a root agent wrote before. Needs
//! root to create cgroups and to switch users.
//!
//! - a root-owned data directory is refused by the non-root agent, naming it;
//! - `prepare-data-dir` hands it over; the non-root agent then records a
//!   kubelet-layout container (a busy loop) from the cgroup files and
//!   `/proc/<pid>/{cgroup,comm}`, and writes its files as 65532;
//! - the viewer as `nobody` (65534) reads what the agent wrote.
//!
//! Test cgroups are unique per process (pid + nanos) and removed on drop.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::real_cgroups::{CONTAINER, kubelet_container, require_root, run_as};
use agent_support::{read_index, read_rows};

const AGENT_UID: u32 = 65532;
const VIEWER_UID: u32 = 65534;

fn agent_args(data: &Path, cgroup_root: &Path) -> Vec<String> {
    vec![
        "agent".into(),
        format!("--data-dir={}", data.display()),
        format!("--cgroup-root={}", cgroup_root.display()),
        "--proc-root=/proc".into(),
        "--node-name=nonroot".into(),
        "--enrichment=false".into(),
        "--interval=200ms".into(),
        "--rotation=1s".into(),
        "--metrics-addr=127.0.0.1:0".into(),
    ]
}

fn owners_under(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = vec![(dir.to_path_buf(), std::fs::metadata(dir).unwrap().uid())];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(owners_under(&path));
        } else {
            out.push((
                path.clone(),
                std::fs::symlink_metadata(&path).unwrap().uid(),
            ));
        }
    }
    out
}

#[test]
fn the_agent_records_real_cgroups_as_uid_65532_after_prepare_data_dir() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    // Other users must reach the data directory's parent (as on a node).
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let links = tmp.path().join("cgroup");
    std::fs::create_dir(&links).unwrap();
    let (_cgroups, cgroup_root) = kubelet_container(&links);
    let data = tmp.path().join("data");

    // Before: an agent running as root (the old DaemonSet) wrote the directory.
    let (status, log) = run_as(0, &agent_args(&data, &cgroup_root), Duration::from_secs(3));
    assert!(status.success(), "root agent: {status}\n{log}");
    let root_files = owners_under(&data);
    assert!(root_files.iter().all(|(_, uid)| *uid == 0));
    assert!(root_files.len() >= 3, "{root_files:?}");

    // The non-root agent refuses a directory it does not own, and says why.
    let (status, log) = run_as(
        AGENT_UID,
        &agent_args(&data, &cgroup_root),
        Duration::from_secs(10),
    );
    assert!(!status.success(), "a non-owned data directory was used");
    assert!(
        log.contains(&data.display().to_string())
            && log.contains("belongs to uid 0")
            && log.contains("prepare-data-dir"),
        "{log}"
    );

    // The init container's work: hand it over.
    let out = Command::new(env!("CARGO_BIN_EXE_fine-grained-monitor"))
        .args([
            "prepare-data-dir",
            "--data-dir",
            data.to_str().unwrap(),
            "--owner-uid",
            "65532",
            "--owner-gid",
            "65532",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prepare-data-dir: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        owners_under(&data).iter().all(|(_, uid)| *uid == AGENT_UID),
        "{:?}",
        owners_under(&data)
    );

    // The agent as the DaemonSet runs it: records the container from the cgroup
    // files and /proc, and writes as 65532.
    let before: usize = read_rows(&data).values().map(Vec::len).sum();
    let (status, log) = run_as(
        AGENT_UID,
        &agent_args(&data, &cgroup_root),
        Duration::from_secs(4),
    );
    assert!(status.success(), "non-root agent: {status}\n{log}");
    assert!(
        owners_under(&data).iter().all(|(_, uid)| *uid == AGENT_UID),
        "files written as another user: {:?}",
        owners_under(&data)
    );
    let index = read_index(&data);
    let short = &CONTAINER[..12];
    let entry = index
        .containers
        .get(short)
        .unwrap_or_else(|| panic!("container {short} not in {:?}", index.containers.keys()));
    assert_eq!(entry.full_id, CONTAINER);
    assert_eq!(entry.qos_class, "BestEffort");
    assert!(!entry.sandbox, "comm of the busy loop is sh, not pause");
    let rows = read_rows(&data);
    let mine = &rows[short];
    assert!(
        rows.values().map(Vec::len).sum::<usize>() > before,
        "the non-root agent added rows"
    );
    let last = mine.last().unwrap();
    assert!(
        last.get("cpu_usage_usec").unwrap_or(0) > 0,
        "CPU read from the cgroup files: {last:?}"
    );
    assert_eq!(last.get("pids_processes"), Some(1), "{last:?}");
    assert!(
        last.get("memory_current_bytes").unwrap_or(0) > 0,
        "memory read from the cgroup files: {last:?}"
    );

    // The viewer as nobody reads what the agent wrote.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut viewer = Command::new(env!("CARGO_BIN_EXE_fgm-viewer"))
        .arg(&data)
        .args(["--no-browser", &format!("--port={port}")])
        .uid(VIEWER_UID)
        .gid(VIEWER_UID)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Some(body) = http_get(port, "/api/containers")
            && body.contains(short)
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the viewer as uid {VIEWER_UID} does not list {short}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = viewer.kill();
    let _ = viewer.wait();
    assert!(body.contains(CONTAINER), "{body}");
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
