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
        }],
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
    *pods.0.lock().unwrap() = labels(&[("app", "api"), ("tier", "front")]);
    recorder.record(&mut cycle(1_700_000_003_000), &tracked);
    assert!(recorder.index_dirty);
    assert_eq!(
        entry(&recorder).labels,
        as_map(&[("app", "api"), ("tier", "front")])
    );

    // No labels at all is still an identity: recorded as an empty map.
    recorder.index_dirty = false;
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
        }],
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
