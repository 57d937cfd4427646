use super::*;
use chrono::TimeZone;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateWaiting, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn at(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, s).unwrap()
}

fn api_time(s: u32) -> Time {
    let t = at(s);
    Time(k8s_openapi::jiff::Timestamp::new(t.timestamp(), 0).unwrap())
}

fn terminated(id: Option<&str>, reason: &str, code: i32, finished: u32) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: id.map(Into::into),
            reason: Some(reason.into()),
            exit_code: code,
            finished_at: Some(api_time(finished)),
            message: Some("x".repeat(600)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some("back-off 10s restarting failed container".into()),
        }),
        ..Default::default()
    }
}

fn running(started: u32) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(api_time(started)),
        }),
        ..Default::default()
    }
}

fn pod(restarts: i32, id: &str, state: ContainerState, last: Option<ContainerState>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web-0".into()),
            namespace: Some("shop".into()),
            uid: Some("uid-1".into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                container_id: Some(id.into()),
                restart_count: restarts,
                state: Some(state),
                last_state: last,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const C0: &str = "containerd://0000000000aa0000000000000000000000000000000000000000000000000000";
const C1: &str = "containerd://1111111111bb1111111111111111111111111111111111111111111111111111";

#[test]
fn oom_kill_is_one_event_across_its_life() {
    let mut dedup = Dedup::default();
    // Seen while terminated, again after the restart as the last state, and again.
    let updates = [
        pod(0, C0, terminated(Some(C0), "OOMKilled", 137, 10), None),
        pod(
            1,
            C1,
            running(12),
            Some(terminated(Some(C0), "OOMKilled", 137, 10)),
        ),
        pod(
            1,
            C1,
            running(12),
            Some(terminated(Some(C0), "OOMKilled", 137, 10)),
        ),
    ];
    let recorded: Vec<PodEvent> = updates
        .iter()
        .flat_map(|p| dedup.admit(detect(p, at(30))))
        .collect();
    let kinds: Vec<EventKind> = recorded.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::OomKilled, EventKind::Restart]);
    let oom = &recorded[0];
    assert_eq!(oom.time, at(10), "time of the kill, not of the observation");
    assert_eq!(oom.exit_code, Some(137));
    assert_eq!(oom.reason.as_deref(), Some("OOMKilled"));
    assert_eq!(oom.container_id.as_deref(), Some("0000000000aa"));
    assert_eq!(
        (oom.namespace.as_str(), oom.pod.as_str()),
        ("shop", "web-0")
    );
    assert_eq!(oom.restart_count, 0);
    assert!(
        oom.message
            .as_ref()
            .is_some_and(|m| m.chars().count() == 513)
    );
    let restart = &recorded[1];
    assert_eq!((restart.restart_count, restart.time), (1, at(12)));
    assert_eq!(restart.container_id.as_deref(), Some("1111111111bb"));
}

#[test]
fn crash_loop_is_recorded_once_per_restart_count() {
    let mut dedup = Dedup::default();
    let looping = |n| {
        pod(
            n,
            C1,
            waiting("CrashLoopBackOff"),
            Some(terminated(Some(C0), "Error", 1, 5)),
        )
    };
    let mut all = Vec::new();
    for p in [looping(1), looping(1), looping(1), looping(2)] {
        all.extend(dedup.admit(detect(&p, at(40))));
    }
    let count = |k| all.iter().filter(|e| e.kind == k).count();
    assert_eq!(count(EventKind::CrashLoopBackOff), 2, "{all:#?}");
    assert_eq!(count(EventKind::Terminated), 1, "same dead instance C0");
    assert_eq!(count(EventKind::Restart), 2);
    let crash = all
        .iter()
        .find(|e| e.kind == EventKind::CrashLoopBackOff)
        .unwrap();
    assert_eq!(crash.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(crash.exit_code, None);
}

#[test]
fn clean_exits_are_not_failures() {
    let done = pod(0, C0, terminated(Some(C0), "Completed", 0, 3), None);
    assert!(detect(&done, at(9)).is_empty());
    let mut no_reason = done.clone();
    if let Some(t) = no_reason
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .state
        .as_mut()
        .unwrap()
        .terminated
        .as_mut()
    {
        t.reason = None;
        t.exit_code = 2;
    }
    let events = detect(&no_reason, at(9));
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].exit_code),
        (EventKind::Terminated, Some(2))
    );
}

#[test]
fn without_container_ids_terminations_key_on_the_run() {
    let mut dedup = Dedup::default();
    let first = dedup.admit(detect(
        &pod(3, "", terminated(None, "OOMKilled", 137, 1), None),
        at(2),
    ));
    let later = dedup.admit(detect(
        &pod(
            4,
            "",
            waiting("CrashLoopBackOff"),
            Some(terminated(None, "OOMKilled", 137, 1)),
        ),
        at(3),
    ));
    assert_eq!(
        first
            .iter()
            .filter(|e| e.kind == EventKind::OomKilled)
            .count(),
        1
    );
    assert!(
        later.iter().all(|e| e.kind != EventKind::OomKilled),
        "{later:#?}"
    );
}

#[test]
fn seeding_from_recorded_events_survives_a_restart_and_pruning_forgets_gone_pods() {
    let p = pod(
        1,
        C1,
        running(12),
        Some(terminated(Some(C0), "OOMKilled", 137, 10)),
    );
    let mut before = Dedup::default();
    let written = before.admit(detect(&p, at(20)));
    assert_eq!(written.len(), 2);
    // Round trip through JSON as the events file does.
    let lines: Vec<String> = written
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let read: Vec<PodEvent> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut after = Dedup::default();
    after.seed(&read);
    assert!(after.admit(detect(&p, at(50))).is_empty());
    after.retain_pods(&HashSet::from(["other-uid".to_string()]));
    assert!(after.is_empty());
}

#[test]
fn kind_names_match_the_file_format() {
    let kinds = [
        EventKind::OomKilled,
        EventKind::Terminated,
        EventKind::CrashLoopBackOff,
        EventKind::Restart,
    ];
    for kind in kinds {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind_name(kind));
    }
}

#[test]
fn short_ids_and_truncation() {
    assert_eq!(short_id("cri-o://abcdef0123456789"), "abcdef012345");
    assert_eq!(short_id("abc"), "abc");
    assert_eq!(truncate("héllo"), "héllo");
}

#[test]
fn saved_state_restores_the_set_and_holds_live_pods_only() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = pod(
        1,
        C1,
        running(12),
        Some(terminated(Some(C0), "OOMKilled", 137, 10)),
    );
    let mut dedup = Dedup::default();
    assert_eq!(dedup.admit(detect(&p1, at(20))).len(), 2);
    assert!(dedup.take_changed(), "new signals change the set");
    assert!(!dedup.take_changed());
    crate::store::events::write_seen(dir.path(), &dedup.keys()).unwrap();
    // A restart: the state file, not the events history, seeds the set.
    let keys: Vec<EventKey> = crate::store::events::read_seen(dir.path())
        .unwrap()
        .unwrap();
    let mut restored = Dedup::from_keys(keys);
    assert_eq!(restored.len(), dedup.len());
    assert!(
        restored.admit(detect(&p1, at(59))).is_empty(),
        "nothing recorded twice"
    );
    // Deleted pods leave the set (and the next save).
    restored.forget_pod("uid-1");
    assert!(restored.is_empty() && restored.take_changed());
    assert!(
        crate::store::events::read_seen::<Vec<EventKey>>(&dir.path().join("none"))
            .unwrap()
            .is_none()
    );
}
