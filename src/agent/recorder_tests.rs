//! The recorder keeps index entries in step with the pod metadata it shares
//! (`Arc<PodInfo>`): a changed identity is copied in, an unchanged one leaves
//! the index clean.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::*;
use crate::agent::contract::{ContainerSample, PodInfo};

const FULL: &str = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888";

/// Pod metadata whose labels the test changes between cycles.
struct Pods(Mutex<BTreeMap<String, String>>);

impl PodMetadata for Pods {
    fn lookup(&self, full_container_id: &str) -> Option<Arc<PodInfo>> {
        (full_container_id == FULL).then(|| {
            Arc::new(PodInfo {
                pod_name: "web-0".into(),
                namespace: "shop".into(),
                pod_uid: "uid-1".into(),
                labels: self.0.lock().unwrap().clone(),
                container_name: "nginx".into(),
                image: None,
                host_network: false,
                requests: None,
            })
        })
    }

    fn lookup_pod(&self, pod_uid: &str) -> Option<Arc<PodInfo>> {
        (pod_uid == "uid-1").then(|| {
            Arc::new(PodInfo {
                pod_name: "web-0".into(),
                namespace: "shop".into(),
                pod_uid: "uid-1".into(),
                labels: labels(&[("app", "web")]),
                container_name: String::new(),
                image: None,
                host_network: false,
                requests: None,
            })
        })
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cycle(at_ms: i64) -> Cycle {
    Cycle {
        timestamp: DateTime::from_timestamp_millis(at_ms),
        containers: vec![ContainerSample {
            short_id: FULL[..12].into(),
            full_id: FULL.into(),
            cgroup_path: "kubepods/pod-uid-1/aaaa".into(),
            values: vec![None; crate::store::schema::METRICS.len()],
            pod_uid: None,
            sandbox: false,
            devices: Vec::new(),
        }],
        network: Vec::new(),
        processes: Vec::new(),
    }
}

#[test]
fn index_entry_follows_pod_identity_and_stays_clean_when_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pods = Arc::new(Pods(Mutex::new(labels(&[("app", "web")]))));
    let start = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: dir.path().to_path_buf(),
            node: "node-a".into(),
            rotation: Duration::from_secs(90),
            policy: Policy {
                max_age: Duration::from_secs(3600),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        Some(pods.clone() as Arc<dyn PodMetadata>),
        SelfMetrics::new(),
        start,
    );
    let tracked = BTreeMap::new();
    let entry = |r: &Recorder| r.index().containers[&FULL[..12]].clone();
    let as_map = |pairs: &[(&str, &str)]| -> Option<HashMap<String, String>> {
        Some(labels(pairs).into_iter().collect())
    };

    recorder.record(&mut cycle(1_700_000_000_000), &tracked);
    let first = entry(&recorder);
    assert_eq!(first.pod_name.as_deref(), Some("web-0"));
    assert_eq!(first.namespace.as_deref(), Some("shop"));
    assert_eq!(first.container_name.as_deref(), Some("nginx"));
    assert_eq!(first.pod_uid.as_deref(), Some("uid-1"));
    assert_eq!(first.labels, as_map(&[("app", "web")]));

    // Same identity again: nothing to save.
    recorder.index_dirty = false;
    recorder.index_grew = false;
    recorder.record(&mut cycle(1_700_000_001_000), &tracked);
    assert!(
        !recorder.index_dirty,
        "unchanged identity marked the index dirty"
    );

    // A label added, then a value changed at the same label count: both are copied in.
    *pods.0.lock().unwrap() = labels(&[("app", "web"), ("tier", "front")]);
    recorder.record(&mut cycle(1_700_000_002_000), &tracked);
    assert!(recorder.index_dirty);
    assert_eq!(
        entry(&recorder).labels,
        as_map(&[("app", "web"), ("tier", "front")])
    );
    recorder.index_dirty = false;
    recorder.index_grew = false;
    *pods.0.lock().unwrap() = labels(&[("app", "api"), ("tier", "front")]);
    recorder.record(&mut cycle(1_700_000_003_000), &tracked);
    assert!(recorder.index_dirty);
    assert_eq!(
        entry(&recorder).labels,
        as_map(&[("app", "api"), ("tier", "front")])
    );

    // No labels at all is still an identity: recorded as an empty map.
    recorder.index_dirty = false;
    recorder.index_grew = false;
    *pods.0.lock().unwrap() = BTreeMap::new();
    recorder.record(&mut cycle(1_700_000_004_000), &tracked);
    assert!(recorder.index_dirty);
    assert_eq!(entry(&recorder).labels, Some(HashMap::new()));
}

#[test]
fn a_sandbox_is_named_after_its_pod_without_a_container_name() {
    const PAUSE: &str = "9999888877776666555544443333222211110000ffffeeeeddddccccbbbbaaaa";
    let dir = tempfile::tempdir().unwrap();
    let pods = Arc::new(Pods(Mutex::new(BTreeMap::new())));
    let start = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    let mut recorder = Recorder::new(
        RecorderConfig {
            data_dir: dir.path().to_path_buf(),
            node: "node-a".into(),
            rotation: Duration::from_secs(90),
            policy: Policy {
                max_age: Duration::from_secs(3600),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        Some(pods as Arc<dyn PodMetadata>),
        SelfMetrics::new(),
        start,
    );
    let sample = |sandbox: bool| Cycle {
        timestamp: Some(start),
        containers: vec![ContainerSample {
            short_id: PAUSE[..12].into(),
            full_id: PAUSE.into(),
            cgroup_path: format!("kubepods/burstable/poduid-1/{PAUSE}"),
            values: vec![None; crate::store::schema::METRICS.len()],
            pod_uid: Some(Arc::from("uid-1")),
            sandbox,
            devices: Vec::new(),
        }],
        network: Vec::new(),
        processes: Vec::new(),
    };
    let tracked = BTreeMap::new();
    // Not known to be a sandbox yet: its id is in no pod status, so it stays unnamed.
    recorder.record(&mut sample(false), &tracked);
    assert_eq!(recorder.index().containers[&PAUSE[..12]].pod_name, None);
    recorder.record(&mut sample(true), &tracked);
    let entry = &recorder.index().containers[&PAUSE[..12]];
    assert_eq!(entry.pod_name.as_deref(), Some("web-0"));
    assert_eq!(entry.namespace.as_deref(), Some("shop"));
    assert_eq!(entry.pod_uid.as_deref(), Some("uid-1"));
    assert_eq!(
        entry.container_name, None,
        "a sandbox has no container name"
    );
}

fn recorder_in(dir: &std::path::Path, now: DateTime<Utc>) -> Recorder {
    Recorder::new(
        RecorderConfig {
            data_dir: dir.to_path_buf(),
            node: "node-a".into(),
            rotation: Duration::from_secs(90),
            policy: Policy {
                max_age: Duration::from_secs(3600),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        SelfMetrics::new(),
        now,
    )
}

fn sample_cycle(at_ms: i64, ids: &[&str]) -> Cycle {
    Cycle {
        timestamp: DateTime::from_timestamp_millis(at_ms),
        containers: ids
            .iter()
            .map(|id| ContainerSample {
                short_id: (*id).into(),
                full_id: format!("{id}{}", "0".repeat(64 - id.len())),
                cgroup_path: format!("kubepods/pod1/{id}"),
                values: (0..crate::store::schema::METRICS.len() as i64)
                    .map(|m| Some(at_ms + m))
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

#[test]
fn every_cycle_is_on_disk_in_the_tail_until_rotation_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let start = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    let mut recorder = recorder_in(dir.path(), start);
    let tracked = BTreeMap::new();
    for s in 0..5 {
        recorder.record(
            &mut sample_cycle(1_700_000_000_000 + s * 1000, &["aaaa", "bbbb"]),
            &tracked,
        );
    }
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert!(listing.files.is_empty());
    assert_eq!(listing.tails.len(), 1, "the open interval's tail");
    let (rows, _) = crate::store::tail::read_tail_file(&listing.tails[0].path).unwrap();
    assert_eq!(rows.rows(), 10, "every cycle appended");
    recorder.rotate(start + chrono::Duration::seconds(5));
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert_eq!(listing.files.len(), 1, "published");
    assert!(
        listing.tails.is_empty() && listing.superseded.is_empty(),
        "tail removed"
    );
}

#[test]
fn a_tail_left_by_a_crash_becomes_a_data_file_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let start = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    let tracked = BTreeMap::new();
    {
        let mut recorder = recorder_in(dir.path(), start);
        for s in 0..7 {
            recorder.record(
                &mut sample_cycle(1_700_000_000_000 + s * 1000, &["aaaa"]),
                &tracked,
            );
        }
        // Dropped without finish(): what kill -9 leaves.
    }
    // And before the new container reached index.json (it is saved every few seconds).
    let _ = std::fs::remove_file(layout::index_path(dir.path()));
    let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
    let later = start + chrono::Duration::seconds(30);
    let recorder = Recorder::with_hooks(
        RecorderConfig {
            data_dir: dir.path().to_path_buf(),
            node: "node-a".into(),
            rotation: Duration::from_secs(90),
            policy: Policy {
                max_age: Duration::from_secs(3600),
                max_bytes: None,
            },
            tail_sync: Duration::from_secs(10),
        },
        None,
        SelfMetrics::new(),
        later,
        RecorderHooks {
            events: Some(events),
            ..RecorderHooks::default()
        },
    );
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert_eq!(listing.files.len(), 1);
    assert!(listing.tails.is_empty());
    assert_eq!(
        listing.files[0].start, start,
        "named after the interval it held"
    );
    let column =
        crate::store::reader::read_metric(&listing.files[0].path, "cpu_usage_usec").unwrap();
    assert_eq!(
        column.get("aaaa").unwrap().timestamps.len(),
        7,
        "no sample lost"
    );
    assert_eq!(
        receive.try_recv().ok(),
        Some(StoreEvent::Published(listing.files[0].path.clone())),
        "exported like any other file"
    );
    assert_eq!(
        recorder.index().data_range.latest,
        Some(start + chrono::Duration::seconds(6))
    );
    // The crash came before the container reached index.json; the recovered file
    // names it, so the index on disk does too (before the file was published).
    let saved = crate::store::index::Index::load(&layout::index_path(dir.path()))
        .unwrap()
        .expect("index.json written");
    let entry = saved
        .containers
        .get("aaaa")
        .expect("the tail's container saved");
    assert_eq!(entry.first_seen, start);
    assert_eq!(entry.last_seen, start + chrono::Duration::seconds(6));
}

#[test]
fn a_rotation_writes_the_pods_interfaces_beside_the_metrics_file() {
    use crate::agent::contract::InterfaceSample;
    let dir = tempfile::tempdir().unwrap();
    let start = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    let mut recorder = recorder_in(dir.path(), start);
    let tracked = BTreeMap::new();
    for s in 0..3 {
        let mut c = sample_cycle(1_700_000_000_000 + s * 1000, &["aaaa"]);
        c.network.push(InterfaceSample {
            sandbox: "aaaa".into(),
            pod_uid: Arc::from("uid-1"),
            interface: "eth0".into(),
            counters: [s, 0, 0, 0, 0, 0, 0, 0],
        });
        recorder.record(&mut c, &tracked);
    }
    recorder.rotate(start + chrono::Duration::seconds(3));
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert_eq!(listing.files.len(), 1);
    assert_eq!(listing.datasets.len(), 1, "network-<start>.parquet");
    assert_eq!(
        listing.datasets[0].1.start, listing.files[0].start,
        "same start"
    );
}

/// Rotating into a new hour writes the closed hour's summary, listing its
/// files; the hour still open gets none (issue #24).
#[test]
fn a_rotation_into_a_new_hour_writes_the_closed_hours_summary() {
    let dir = tempfile::tempdir().unwrap();
    // 10:57:00, then a file every 90 s until 11:01:30.
    let first_ms = 1_772_362_620_000;
    let start = DateTime::from_timestamp_millis(first_ms).unwrap();
    let mut recorder = recorder_in(dir.path(), start);
    let tracked = BTreeMap::new();
    for k in 0..4 {
        for s in 0..90 {
            let ms = first_ms + k * 90_000 + s * 1000;
            recorder.record(&mut sample_cycle(ms, &["aaaa", "bbbb"]), &tracked);
        }
        let listing = layout::list_data_files(dir.path(), None).unwrap();
        // Files written so far: 10:57:00, 10:58:30, then 11:00:00 (k = 3).
        assert_eq!(listing.hours.is_empty(), k < 3, "closed by 11:00's file");
        recorder.rotate(start + chrono::Duration::seconds(90 * (k + 1)));
    }
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert_eq!(listing.files.len(), 4);
    assert_eq!(listing.hours.len(), 1, "{:?}", listing.hours);
    let hour = crate::store::hours::read(&listing.hours[0].path).unwrap();
    assert_eq!(hour.hour.to_rfc3339(), "2026-03-01T10:00:00+00:00");
    assert!(hour.covers(&listing.files[..2]), "{:?}", hour.files);
    let joined = crate::store::summary::codec::decode(&hour.summary).unwrap();
    assert_eq!(joined.containers.len(), 2);
    assert_eq!(joined.containers[0].1.samples, 180);
}
