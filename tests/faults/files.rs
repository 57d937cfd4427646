//! Faults in the data directory: kill -9 at any point of a rotation, a
//! corrupt index, corrupt Parquet files.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::{layout, reader};

use crate::support::{agent_command, fixture, many_containers, spawn, total_rows, wait_until};

/// Every finished file's start, sample range and short ids.
struct FileFacts {
    start: DateTime<Utc>,
    first_ms: i64,
    last_ms: i64,
    ids: Vec<String>,
}

fn facts(data: &Path) -> Vec<FileFacts> {
    use arrow_array::{Array, StringArray, TimestampMillisecondArray};
    let listing = layout::list_data_files(data, None).unwrap();
    listing
        .files
        .iter()
        .map(|f| {
            let batches = reader::read_file(&f.path, Some(&["timestamp", "container_id"]))
                .unwrap_or_else(|e| panic!("{} must read fully: {e}", f.path.display()));
            let (mut first_ms, mut last_ms, mut ids) = (i64::MAX, i64::MIN, Vec::new());
            for b in batches {
                let ts = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .unwrap();
                let id = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
                for i in 0..b.num_rows() {
                    first_ms = first_ms.min(ts.value(i));
                    last_ms = last_ms.max(ts.value(i));
                    ids.push(id.value(i).to_string());
                }
            }
            ids.sort();
            ids.dedup();
            FileFacts {
                start: f.start,
                first_ms,
                last_ms,
                ids,
            }
        })
        .collect()
}

fn load_index(data: &Path) -> Option<Index> {
    Index::load(&layout::index_path(data)).expect("index.json parses")
}

/// The index claims no more than the files hold: its range lies within
/// theirs and every container of a file is in it.
fn index_within_files(data: &Path, round: usize) {
    let files = facts(data);
    let Some(index) = load_index(data) else {
        assert!(files.is_empty(), "round {round}: files without an index");
        return;
    };
    if let Some(earliest) = index.data_range.earliest {
        let first = files.iter().map(|f| f.start).min();
        assert!(
            first.is_some_and(|f| f <= earliest),
            "round {round}: index earliest {earliest} before every file ({first:?})"
        );
    }
    if let Some(latest) = index.data_range.latest {
        let last = files.iter().map(|f| f.last_ms).max().unwrap_or(i64::MIN);
        assert!(
            latest.timestamp_millis() <= last,
            "round {round}: index latest {latest} after the last sample {last}"
        );
    }
    for f in &files {
        for id in &f.ids {
            assert!(
                index.containers.contains_key(id),
                "round {round}: container {id} of file {} missing from the index",
                f.start
            );
        }
    }
}

/// Fault: kill -9 at arbitrary points, many of them during a rotation (100
/// containers, 10 ms interval, rotation every second). User sees: after each
/// kill only complete files (no partial ones with a .parquet name) and an
/// index that claims no more than they hold; after a restart the index
/// matches them exactly. Data lost: the open interval (at most one rotation).
#[test]
fn kill_dash_nine_during_rotation_leaves_readable_files_and_a_matching_index() {
    let tree = tempfile::tempdir().unwrap();
    many_containers(tree.path(), 100);
    let data = tempfile::tempdir().unwrap();
    let args = ["--interval", "10ms", "--rotation", "1s"];
    for (round, millis) in [1040u64, 1310, 2085, 1770, 2930, 1515]
        .into_iter()
        .enumerate()
    {
        let mut agent = spawn(agent_command(data.path(), tree.path(), &args));
        std::thread::sleep(Duration::from_millis(millis));
        agent.child.kill().unwrap();
        agent.child.wait().unwrap();
        index_within_files(data.path(), round);
    }
    assert!(
        total_rows(data.path()) > 0,
        "rotations completed before the kills"
    );
    // A clean run reconciles: the index then matches the files exactly.
    let mut agent = spawn(agent_command(data.path(), tree.path(), &args));
    wait_until(Duration::from_secs(20), "the reconciled index", || {
        agent.log_text().contains("agent starting")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(agent.terminate(Duration::from_secs(20)).success());
    let files = facts(data.path());
    let index = load_index(data.path()).unwrap();
    assert_eq!(
        index.data_range.earliest,
        files.iter().map(|f| f.start).min()
    );
    assert_eq!(
        index.data_range.latest.map(|l| l.timestamp_millis()),
        files.iter().map(|f| f.last_ms).max()
    );
    // A file is named after the second its interval starts in, unless that name is taken (a
    // restart within the second of the killed run's recovered tail): then the next free second,
    // so its first sample may precede its name by less than a second, and only right after a
    // file named the second before.
    for f in &files {
        let start = f.start.timestamp_millis();
        if f.first_ms < start {
            let taken = files
                .iter()
                .any(|g| g.start.timestamp_millis() == start - 1000);
            assert!(
                f.first_ms >= start - 1000 && taken,
                "a file named {} starts at {} without the second before taken",
                f.start,
                f.first_ms
            );
        }
    }
    index_within_files(data.path(), 99);
    let leftovers: Vec<_> = walk(data.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".inprogress"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial files removed at start: {leftovers:?}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// Fault: index.json is corrupt (a torn write by another tool, a disk
/// error). User sees: an error naming the file, which is moved to
/// index.json.corrupt; a new index whose time range is rebuilt from the
/// files on disk. Data lost: the pod names of containers not running any
/// more (the samples stay in the files).
#[test]
fn corrupt_index_is_moved_aside_and_rebuilt_from_the_files() {
    let data = tempfile::tempdir().unwrap();
    let tree = fixture("v1-cgroupfs-docker");
    let mut agent = spawn(agent_command(data.path(), &tree, &[]));
    wait_until(Duration::from_secs(20), "a first file", || {
        total_rows(data.path()) > 0
    });
    assert!(agent.terminate(Duration::from_secs(20)).success());
    let first_start = facts(data.path()).iter().map(|f| f.start).min().unwrap();
    let index_path = layout::index_path(data.path());
    std::fs::write(&index_path, b"{\"schema_version\": 2, \"containers\": {tr").unwrap();

    let mut agent = spawn(agent_command(data.path(), &tree, &[]));
    wait_until(Duration::from_secs(20), "the agent to start", || {
        agent.log_text().contains("agent starting")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(agent.terminate(Duration::from_secs(20)).success());
    let log = agent.log_text();
    assert!(
        log.contains("index.json unreadable") && log.contains("index.json"),
        "{log}"
    );
    assert!(data.path().join("index.json.corrupt").exists());
    let index = load_index(data.path()).unwrap();
    assert_eq!(
        index.data_range.earliest,
        Some(first_start),
        "range rebuilt from the files"
    );
    assert_eq!(index.containers.len(), 3, "running containers are back");
}

/// Fault: data files are corrupt (garbage under a .parquet name: a disk
/// error, a copy cut short). User sees: an error naming the newest one at
/// start (skipped when reconciling; the viewer skips unreadable files too);
/// retention removes them like any file (an old one at once here). Data
/// lost: what the corrupt files held.
#[test]
fn corrupt_parquet_is_skipped_and_aged_out() {
    let data = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let old = layout::data_file_path(data.path(), "fault-node", now - chrono::Duration::hours(3));
    let newest = layout::data_file_path(
        data.path(),
        "fault-node",
        now - chrono::Duration::seconds(5),
    );
    for path in [&old, &newest] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"PAR1 this is not parquet").unwrap();
    }
    let tree = fixture("v1-cgroupfs-docker");
    let mut agent = spawn(agent_command(
        data.path(),
        &tree,
        &["--retention-max-age", "1h"],
    ));
    wait_until(Duration::from_secs(20), "the agent's own files", || {
        layout::list_data_files(data.path(), None)
            .unwrap()
            .files
            .iter()
            .any(|f| f.start > now)
    });
    assert!(agent.terminate(Duration::from_secs(20)).success());
    let log = agent.log_text();
    assert!(
        log.contains("unreadable data file") && log.contains(&newest.display().to_string()),
        "{log}"
    );
    assert!(!old.exists(), "the old corrupt file went by age");
    assert!(log.contains("reason=\"age\""), "{log}");
    // Everything the agent wrote reads back.
    for f in layout::list_data_files(data.path(), None).unwrap().files {
        if f.path != newest {
            reader::read_file(&f.path, None).unwrap();
        }
    }
    let index = load_index(data.path()).unwrap();
    assert!(
        index.data_range.latest.unwrap() > now,
        "latest comes from readable files"
    );
}
