//! Processes inside containers (`--processes`) on REAL cgroups and /proc, with
//! the agent as the DaemonSet runs it (uid 65532):
//!
//! - a copy of the binary carrying `cap_sys_ptrace+p` (what the image sets)
//!   reads PSS of a root-owned process in the container; starts and exits of
//!   short-lived processes are recorded with their commands;
//! - the same agent without the file capability still records CPU and RSS
//!   (world-readable `stat`), and PSS is null, never 0.
//!
//! Needs root (cgroups, switching users, setting a file capability).

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod agent_support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_support::real_cgroups::{
    CONTAINER, kubelet_container_running, require_root, run_binary_as,
};
use arrow_array::{Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const AGENT_UID: u32 = 65532;

/// Joins the container, spins one CPU hog, and starts a short `sleep` every 300 ms. The hog
/// stops by itself once this shell is gone (the test kills the shell: a plain `while :` outlived
/// it and kept a core busy after the test).
const SCRIPT: &str = "for f in \"$@\"; do echo $$ > \"$f\" || exit 1; done; \
    (while kill -0 $$ 2>/dev/null; do :; done) & hog=$!; \
    while kill -0 $PPID 2>/dev/null; do sleep 0.3; done; kill $hog";

/// One processes row of the test container.
#[derive(Debug, Clone)]
struct ProcRow {
    pid: i64,
    command: String,
    event: String,
    rss: Option<i64>,
    pss: Option<i64>,
}

fn processes_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            processes_files(&path, out);
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("processes-") && n.ends_with(".parquet"))
        {
            out.push(path);
        }
    }
}

fn read_processes(data: &Path) -> Vec<ProcRow> {
    let mut files = Vec::new();
    processes_files(data, &mut files);
    let short = &CONTAINER[..12];
    let mut rows = Vec::new();
    for file in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let text = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap_or_else(|| panic!("{name} in {}", file.display()))
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let int = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap_or_else(|| panic!("{name} in {}", file.display()))
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone()
            };
            let (container, command, event) =
                (text("container_id"), text("command"), text("event"));
            let (pid, rss, pss) = (int("pid"), int("rss_bytes"), int("pss_bytes"));
            let opt = |a: &Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
            for i in 0..batch.num_rows() {
                if !container.value(i).starts_with(short) {
                    continue;
                }
                rows.push(ProcRow {
                    pid: pid.value(i),
                    command: command.value(i).to_string(),
                    event: event.value(i).to_string(),
                    rss: opt(&rss, i),
                    pss: opt(&pss, i),
                });
            }
        }
    }
    rows
}

fn args(data: &Path, cgroup_root: &Path) -> Vec<String> {
    vec![
        "agent".into(),
        format!("--data-dir={}", data.display()),
        format!("--cgroup-root={}", cgroup_root.display()),
        "--proc-root=/proc".into(),
        "--node-name=processes".into(),
        "--enrichment=false".into(),
        "--interval=200ms".into(),
        "--rotation=1s".into(),
        "--metrics-addr=127.0.0.1:0".into(),
        "--processes=true".into(),
        "--process-memory-every=1".into(),
    ]
}

fn data_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(AGENT_UID), Some(AGENT_UID)).unwrap();
    dir
}

/// `security.capability` of `cap_sys_ptrace+p` (revision 2, no effective bit).
fn ptrace_capability() -> Vec<u8> {
    let mut v = vec![0, 0, 0, 2, 0, 0, 8, 0];
    v.extend([0; 12]);
    v
}

#[test]
fn processes_are_recorded_and_ptrace_from_the_file_capability_reads_pss() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let links = tmp.path().join("cgroup");
    std::fs::create_dir(&links).unwrap();
    let (cgroups, cgroup_root) = kubelet_container_running(&links, SCRIPT);
    let shell = i64::from(cgroups.child.as_ref().unwrap().id());

    let capped = tmp.path().join("fine-grained-monitor");
    std::fs::copy(env!("CARGO_BIN_EXE_fine-grained-monitor"), &capped).unwrap();
    std::fs::set_permissions(&capped, std::fs::Permissions::from_mode(0o755)).unwrap();
    rustix::fs::setxattr(
        &capped,
        "security.capability",
        &ptrace_capability(),
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap_or_else(|e| panic!("set the file capability on {}: {e}", capped.display()));

    // With the capability: PSS of the root-owned shell.
    let data = data_dir(tmp.path(), "capped");
    let (status, log) = run_binary_as(
        &capped,
        AGENT_UID,
        &args(&data, &cgroup_root),
        Duration::from_secs(5),
    );
    assert!(status.success(), "capped agent: {status}\n{log}");
    let rows = read_processes(&data);
    assert!(
        !rows.is_empty(),
        "no processes rows for the container\n{log}"
    );
    let shell_rows: Vec<&ProcRow> = rows.iter().filter(|r| r.pid == shell).collect();
    assert!(
        !shell_rows.is_empty(),
        "the container's shell {shell} not recorded: {rows:?}"
    );
    assert!(
        shell_rows.iter().all(|r| r.command.starts_with("sh -c")),
        "{shell_rows:?}"
    );
    assert!(
        shell_rows.iter().any(|r| r.pss.is_some_and(|p| p > 0)),
        "PSS of a root process read as 65532 with CAP_SYS_PTRACE: {shell_rows:?}\n{log}"
    );
    let mut sleeps: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.command == "sleep 0.3") {
        sleeps.entry(r.pid).or_default().push(&r.event);
    }
    assert!(
        sleeps.values().any(|e| e.contains(&"start")),
        "a sleep's start recorded: {sleeps:?}"
    );
    assert!(
        sleeps
            .values()
            .any(|e| e.contains(&"start") && e.contains(&"exit")),
        "a sleep's start and exit recorded (rows sort by event text, not time): {sleeps:?}"
    );
    assert!(
        !log.contains("without CAP_SYS_PTRACE"),
        "the capped agent warned it lacks the capability:\n{log}"
    );

    // Without it: CPU and RSS still, PSS null (never 0).
    let data = data_dir(tmp.path(), "plain");
    let (status, log) = run_as_plain(&data, &cgroup_root);
    assert!(status.success(), "plain agent: {status}\n{log}");
    let rows = read_processes(&data);
    let shell_rows: Vec<&ProcRow> = rows.iter().filter(|r| r.pid == shell).collect();
    assert!(
        !shell_rows.is_empty(),
        "shell not recorded without the capability: {rows:?}"
    );
    assert!(
        shell_rows.iter().all(|r| r.rss.is_some_and(|v| v > 0)),
        "{shell_rows:?}"
    );
    assert!(shell_rows.iter().all(|r| r.pss.is_none()), "{shell_rows:?}");
    assert!(
        log.contains("CAP_SYS_PTRACE"),
        "the refusal is explained once:\n{log}"
    );
}

fn run_as_plain(data: &Path, cgroup_root: &Path) -> (std::process::ExitStatus, String) {
    run_binary_as(
        Path::new(env!("CARGO_BIN_EXE_fine-grained-monitor")),
        AGENT_UID,
        &args(data, cgroup_root),
        Duration::from_secs(4),
    )
}
