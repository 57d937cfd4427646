//! A full disk: the recorder logs, keeps at most two intervals in memory
//! (the open one and one unwritten), never panics, and writes again once
//! space returns. Uses a small tmpfs (needs root to mount it).

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fine_grained_monitor::agent::recorder::{Recorder, RecorderConfig};
use fine_grained_monitor::agent::{ContainerSample, Cycle, SelfMetrics};
use fine_grained_monitor::store::retention::Policy;
use fine_grained_monitor::store::schema::METRICS;
use fine_grained_monitor::store::{layout, reader};

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn cycle(second: i64) -> Cycle {
    let ts = Utc.timestamp_opt(1_767_225_600 + second, 0).unwrap();
    Cycle {
        timestamp: Some(ts),
        containers: (0..3)
            .map(|c| ContainerSample {
                short_id: format!("{c:012x}"),
                full_id: format!("{c:064x}"),
                cgroup_path: format!("c{c}"),
                values: (0..METRICS.len() as i64)
                    .map(|m| Some(second * 1000 + m * 7 + c))
                    .collect(),
                pod_uid: None,
                sandbox: false,
                devices: Vec::new(),
            })
            .collect(),
        network: Vec::new(),
        processes: Vec::new(),
    }
}

fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler file");
    let chunk = vec![1u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
    path
}

fn encode(m: &SelfMetrics) -> String {
    let mut s = String::new();
    m.encode_openmetrics(&mut s);
    s
}

#[test]
fn full_disk_keeps_two_intervals_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("`mount` runs");
    assert!(
        status.success(),
        "mounting a 1 MiB tmpfs failed: this test needs root (run `sudo -E cargo test --test agent_disk_full`)"
    );
    let _mount = Mount(dir.path().to_path_buf());
    let metrics = SelfMetrics::new();
    let start = Utc.timestamp_opt(1_767_225_600, 0).unwrap();
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: dir.path().to_path_buf(),
            node: "n".into(),
            rotation: Duration::from_secs(2),
            policy: Policy {
                max_age: Duration::from_secs(86_400 * 3650),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        metrics.clone(),
        start,
    );
    let tracked = BTreeMap::new();
    let filler = fill(dir.path());
    // 20 seconds of samples, a rotation every 2: every write fails.
    let mut max_in_memory = 0;
    for s in 0..20 {
        recorder.record(&mut cycle(s), &tracked);
        max_in_memory = max_in_memory.max(recorder.rows_in_memory());
    }
    // Two intervals of 2 samples x 3 containers, plus the sample that triggered rotation.
    assert!(max_in_memory <= 2 * 2 * 3 + 3, "held {max_in_memory} rows");
    let text = encode(&metrics);
    assert!(
        text.contains("fgm_agent_write_errors_total{kind=\"disk_full\"}"),
        "{text}"
    );
    assert!(text.contains("fgm_agent_samples_dropped_total "), "{text}");
    assert!(
        layout::list_data_files(dir.path(), None)
            .unwrap()
            .files
            .is_empty()
    );

    // Space comes back: the unwritten interval and the next ones are written.
    std::fs::remove_file(filler).unwrap();
    for s in 20..26 {
        recorder.record(&mut cycle(s), &tracked);
    }
    recorder.finish(Utc.timestamp_opt(1_767_225_600 + 26, 0).unwrap());
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    let mut seconds = Vec::new();
    for file in &listing.files {
        for batch in reader::read_file(&file.path, Some(&["timestamp"])).unwrap() {
            let ts = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::TimestampMillisecondArray>()
                .unwrap();
            seconds.extend((0..ts.len()).map(|i| ts.value(i) / 1000 - 1_767_225_600));
        }
    }
    seconds.sort();
    seconds.dedup();
    // Held through the outage: the last unwritten interval (16-17) and the
    // open one (18-19); everything before was dropped, everything after written.
    assert_eq!(seconds, (16..26).collect::<Vec<i64>>());
    let index = fine_grained_monitor::store::index::Index::load(&layout::index_path(dir.path()))
        .unwrap()
        .expect("index written once space returned");
    assert_eq!(index.containers.len(), 3);
}
