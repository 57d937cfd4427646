use super::*;
use crate::store::layout;
use chrono::TimeZone;

fn at(min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 10, min, 0).unwrap()
}

fn file(min: u32, bytes: u64) -> Artefact {
    Artefact {
        path: PathBuf::from(format!("f{min}")),
        kind: "parquet",
        start: at(min),
        end: at(min),
        bytes,
        protected: false,
    }
}

fn newest_protected(mut files: Vec<Artefact>) -> Vec<Artefact> {
    if let Some(newest) = files.iter_mut().max_by_key(|a| a.start) {
        newest.protected = true;
    }
    files
}

fn names(paths: Vec<(PathBuf, Reason)>) -> Vec<String> {
    paths.iter().map(|(p, _)| p.display().to_string()).collect()
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn age_then_bytes_oldest_first_never_the_protected() {
    let files = newest_protected(vec![file(3, 100), file(0, 100), file(1, 100), file(2, 100)]);
    let age = |mins: u64| Policy {
        max_age: Duration::from_secs(mins * 60),
        max_bytes: None,
    };
    let t = DAY;
    // now = 10:05, max age 4 min: files before 10:01 go.
    assert_eq!(names(select(&files, at(5), age(4), t)), ["f0"]);
    // Everything too old: still the newest stays.
    assert_eq!(names(select(&files, at(59), age(1), t)), ["f0", "f1", "f2"]);
    let bytes = Policy {
        max_age: DAY,
        max_bytes: Some(250),
    };
    assert_eq!(names(select(&files, at(5), bytes, t)), ["f0", "f1"]);
    assert!(
        select(&files, at(5), bytes, t)
            .iter()
            .all(|(_, r)| *r == Reason::Size)
    );
    let both = Policy {
        max_age: Duration::from_secs(4 * 60),
        max_bytes: Some(250),
    };
    let reasons: Vec<Reason> = select(&files, at(5), both, t)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(reasons, [Reason::Age, Reason::Size]);
    let tiny = Policy {
        max_age: DAY,
        max_bytes: Some(0),
    };
    assert_eq!(names(select(&files, at(5), tiny, t)), ["f0", "f1", "f2"]);
    assert!(select(&[], at(5), tiny, t).is_empty());
    assert!(select(&files, at(5), age(60), t).is_empty());
}

#[test]
fn every_kind_counts_towards_the_bytes_and_protected_ones_stay() {
    let mut events = file(1, 300);
    events.kind = "events";
    events.path = PathBuf::from("events-old");
    let mut state = file(9, 1000);
    state.kind = "state";
    state.path = PathBuf::from("index.json");
    state.protected = true;
    let files = vec![file(0, 100), events, file(2, 100), state];
    let policy = Policy {
        max_age: DAY,
        max_bytes: Some(1150),
    };
    // 1500 bytes: the oldest go, whatever their kind, until 1150 fits.
    assert_eq!(
        names(select(&files, at(5), policy, DAY)),
        ["f0", "events-old"]
    );
}

#[test]
fn future_dated_artefacts_go_even_the_newest() {
    let mut future = file(50, 10);
    future.protected = false;
    let files = vec![file(0, 10), future];
    let policy = Policy {
        max_age: DAY,
        max_bytes: None,
    };
    // now 10:05: the 10:50 file is 45 minutes ahead.
    let doomed = select(&files, at(5), policy, Duration::from_secs(300));
    assert_eq!(doomed, vec![(PathBuf::from("f50"), Reason::Future)]);
    assert!(
        select(&files, at(5), policy, Duration::from_secs(3600)).is_empty(),
        "within tolerance"
    );
    assert_eq!(
        future_tolerance(Duration::from_secs(90)),
        Duration::from_secs(300)
    );
    assert_eq!(
        future_tolerance(Duration::from_secs(600)),
        Duration::from_secs(1200)
    );
}

fn touch(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![0u8; bytes]).unwrap();
}

#[test]
fn plan_and_remove_cover_data_events_and_state_and_leave_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut paths = Vec::new();
    for (day, hour) in [(1, 10), (2, 9), (2, 10)] {
        let start = Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap();
        let path = layout::data_file_path(d, "n1", start);
        touch(&path, 10);
        paths.push(path);
    }
    // Hour summaries age with their hour: day 1's goes, day 2's 09:00 stays.
    let old_hour =
        layout::hour_summary_path(d, "n1", Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap());
    let kept_hour =
        layout::hour_summary_path(d, "n1", Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap());
    touch(&old_hour, 2);
    touch(&kept_hour, 2);
    let other = layout::data_file_path(d, "n2", at(0));
    touch(&other, 1);
    let foreign = paths[1].parent().unwrap().join("notes.txt");
    touch(&foreign, 4);
    let open = layout::in_progress_path(&layout::data_file_path(d, "n1", at(30)));
    touch(&open, 7);
    // The open interval's tail: counted, never removed.
    let tail = layout::tail_file_path(d, "n1", at(20));
    touch(&tail, 6);
    let old_events = crate::store::events::events_file(d, at(0).date_naive().pred_opt().unwrap());
    let today_events = crate::store::events::events_file(d, at(0).date_naive());
    touch(&old_events, 5);
    touch(&today_events, 5);
    touch(&d.join("index.json"), 3);
    let policy = Policy {
        max_age: Duration::from_secs(3600 * 2),
        max_bytes: None,
    };
    // now 2026-01-02 10:30, max age 2 h: the day-1 data file and events day go.
    let now = at(30);
    let kinds = default_kinds();
    let p = plan(d, "n1", now, policy, DAY, &kinds);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let doomed: Vec<&PathBuf> = p.doomed.iter().map(|(p, _)| p).collect();
    assert_eq!(
        doomed,
        vec![&old_events, &old_hour, &paths[0]],
        "oldest first"
    );
    assert_eq!(
        p.data_kept(),
        (
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap()),
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap())
        )
    );
    assert_eq!(
        p.bytes_kept(&kinds),
        vec![
            ("parquet", 20),
            ("tail", 6),
            ("network", 0),
            ("devices", 0),
            ("hour_summaries", 2),
            ("events", 5),
            ("state", 3)
        ]
    );
    let (removed, errors) = remove(&p);
    assert!(errors.is_empty());
    assert_eq!(removed.len(), 3);
    assert!(!old_hour.exists() && kept_hour.exists());
    assert!(!paths[0].exists() && paths[1].exists() && paths[2].exists());
    assert!(!d.join("dt=2026-01-01").exists(), "emptied dirs removed");
    assert!(other.exists(), "other nodes' files are not ours");
    assert!(open.exists(), "the file being written is never removed");
    assert!(foreign.exists(), "foreign files are left alone");
    assert!(today_events.exists() && !old_events.exists());
    assert!(d.join("events").is_dir(), "the events directory stays");
}

#[test]
fn index_prune_by_last_seen() {
    let mut index = Index::empty(at(0), 90);
    for (id, seen) in [("aaaaaaaaaaaa", 0), ("bbbbbbbbbbbb", 50)] {
        index.containers.insert(
            id.to_string(),
            crate::store::index::ContainerEntry {
                full_id: id.to_string(),
                pod_uid: None,
                qos_class: String::new(),
                first_seen: at(0),
                last_seen: at(seen),
                pod_name: None,
                namespace: None,
                labels: None,
                container_name: None,
                cgroup_path: None,
                runtime: None,
                sandbox: false,
                requests: None,
            },
        );
    }
    assert_eq!(prune_index(&mut index, at(55), Duration::from_secs(600)), 1);
    assert!(index.containers.contains_key("bbbbbbbbbbbb"));
}
