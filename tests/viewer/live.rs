//! Live to the second (issue #24): the viewer reads the open interval from the agent's tail
//! file. A reader polls while the agent's recorder appends and rotates (1 s samples, 300
//! containers, several rotations) and every answer holds each (container, timestamp) exactly
//! once, up to the newest cycle written: the rows of a rotated interval are read from the tail
//! or from its Parquet file, never both, never neither.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fine_grained_monitor::agent::recorder::{Recorder, RecorderConfig};
use fine_grained_monitor::agent::{ContainerSample, Cycle, SelfMetrics};
use fine_grained_monitor::store::layout;
use fine_grained_monitor::store::retention::Policy;
use fine_grained_monitor::store::schema::{METRICS, metric_index};
use fine_grained_monitor::viewer::files::for_each_file;
use fine_grained_monitor::viewer::{Options, Viewer};

use crate::fixture::get_json;

const CONTAINERS: usize = 300;
const ROTATION_S: i64 = 4;
const CYCLES: i64 = 15;

fn id(c: usize) -> String {
    format!("{c:012x}")
}

/// Memory of container `c` at second `s`: tells each row apart.
fn value(c: usize, s: i64) -> i64 {
    (c as i64) * 1_000_000 + s
}

fn cycle(start: DateTime<Utc>, s: i64) -> Cycle {
    let memory = metric_index("memory_current_bytes").unwrap();
    Cycle {
        timestamp: Some(start + chrono::Duration::seconds(s)),
        containers: (0..CONTAINERS)
            .map(|c| {
                let mut values = vec![Some(7); METRICS.len()];
                values[memory] = Some(value(c, s));
                ContainerSample {
                    short_id: id(c),
                    full_id: format!("{}{}", id(c), "0".repeat(52)),
                    cgroup_path: format!("kubepods/pod{c}/{}", id(c)),
                    values,
                    pod_uid: None,
                    sandbox: false,
                    devices: Vec::new(),
                }
            })
            .collect(),
        network: Vec::new(),
        processes: Vec::new(),
    }
}

/// Every (container, time) the reader sees, through the loop every answer uses.
fn read_all(
    viewer: &Viewer,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<String, Vec<(i64, i64)>> {
    let files = viewer.files_for_range(from, to).unwrap();
    let mut rows: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let skipped = for_each_file(
        viewer,
        &files,
        4,
        |f| viewer.read_columns(f, &["memory_current_bytes"]),
        |_, read| {
            for (id, r) in read.iter() {
                let v = r.values(0);
                rows.entry(id.to_string())
                    .or_default()
                    .extend(r.timestamps.iter().copied().zip(v.iter().copied()));
            }
        },
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    rows
}

#[test]
fn a_reader_polling_while_the_agent_appends_and_rotates_sees_each_row_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let start: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: dir.path().to_path_buf(),
            node: "node-a".into(),
            rotation: Duration::from_secs(ROTATION_S as u64),
            policy: Policy {
                max_age: Duration::from_secs(86_400 * 3650),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        SelfMetrics::new(),
        start,
    );
    let viewer = Arc::new(Viewer::new(Options::new(dir.path().to_path_buf())));
    let written = Arc::new(AtomicI64::new(-1));
    let done = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(0usize));
    let reader = {
        let (viewer, written, done, answers) = (
            viewer.clone(),
            written.clone(),
            done.clone(),
            answers.clone(),
        );
        std::thread::spawn(move || {
            let to = start + chrono::Duration::seconds(CYCLES + 10);
            while !done.load(Ordering::SeqCst) {
                // Cycles written before the read began must all be there.
                let before = written.load(Ordering::SeqCst);
                let rows = read_all(&viewer, start, to);
                for c in (0..CONTAINERS).step_by(37) {
                    let got = rows.get(&id(c)).cloned().unwrap_or_default();
                    let seconds: Vec<i64> = got
                        .iter()
                        .map(|(t, _)| (t - start.timestamp_millis()) / 1000)
                        .collect();
                    let expected: Vec<i64> = (0..seconds.len() as i64).collect();
                    assert_eq!(
                        seconds, expected,
                        "container {c}: each second once, in order, no gap"
                    );
                    assert!(
                        seconds.len() as i64 > before,
                        "container {c}: {} seconds read, {} cycles were written before the read",
                        seconds.len(),
                        before + 1
                    );
                    for (t, v) in got {
                        let s = (t - start.timestamp_millis()) / 1000;
                        assert_eq!(v, value(c, s), "container {c} second {s}");
                    }
                }
                *answers.lock().unwrap() += 1;
            }
        })
    };
    let tracked = BTreeMap::new();
    for s in 0..CYCLES {
        recorder.record(&mut cycle(start, s), &tracked);
        written.store(s, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(60));
    }
    let rotations = layout::list_data_files(dir.path(), None)
        .unwrap()
        .files
        .len();
    done.store(true, Ordering::SeqCst);
    reader.join().expect("the reader's checks hold");
    assert!(
        rotations >= 3,
        "{rotations} rotations while the reader polled"
    );
    assert!(
        *answers.lock().unwrap() >= 10,
        "the reader polled throughout"
    );
    // The last, open interval is in the tail only, and read.
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert_eq!(listing.tails.len(), 1);
    let rows = read_all(
        &viewer,
        start,
        start + chrono::Duration::seconds(CYCLES + 10),
    );
    assert_eq!(rows.len(), CONTAINERS);
    assert!(rows.values().all(|r| r.len() == CYCLES as usize));
}

#[tokio::test]
async fn the_status_and_charts_reach_the_newest_cycle_before_any_file_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    // Samples are taken on a millisecond grid.
    let start = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()
        - chrono::Duration::seconds(5);
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: dir.path().to_path_buf(),
            node: "node-a".into(),
            rotation: Duration::from_secs(90),
            policy: Policy {
                max_age: Duration::from_secs(86_400),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        SelfMetrics::new(),
        start,
    );
    let tracked = BTreeMap::new();
    for s in 0..5 {
        recorder.record(&mut cycle(start, s), &tracked);
    }
    assert!(
        layout::list_data_files(dir.path(), None)
            .unwrap()
            .files
            .is_empty()
    );
    let (viewer, app) = crate::fixture::app_with(Options::new(dir.path().to_path_buf()));
    viewer.refresh();
    let status = get_json(&app, "/api/status").await;
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(
        status["containers"], CONTAINERS,
        "listed within seconds: {status}"
    );
    let latest: DateTime<Utc> = status["data_range"]["latest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(latest, start + chrono::Duration::seconds(4), "{status}");
    assert!(
        status["data_range"]["earliest"].is_string(),
        "no '?' in the header: {status}"
    );
    let q = format!(
        "/api/timeseries?containers={}&metric=memory_current_bytes&from={}&to={}",
        id(3),
        start.timestamp_millis(),
        now.timestamp_millis()
    );
    let json = get_json(&app, &q).await;
    let (t, v) = crate::fixture::series(&json, &id(3));
    assert_eq!(t.len(), 5, "{json}");
    assert_eq!(v[4], Some(value(3, 4) as f64));
    // One more cycle: a live refresh from the newest point gets only it.
    recorder.record(&mut cycle(start, 5), &tracked);
    let q = format!(
        "/api/timeseries?containers={}&metric=memory_current_bytes&from={}&to={}",
        id(3),
        t[4],
        (now + chrono::Duration::seconds(5)).timestamp_millis()
    );
    let json = get_json(&app, &q).await;
    let (t, _) = crate::fixture::series(&json, &id(3));
    assert_eq!(
        t.last().copied(),
        Some((start + chrono::Duration::seconds(5)).timestamp_millis())
    );
}
