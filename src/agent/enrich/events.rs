//! Pod failure signals from container statuses, each recorded once.
//!
//! [`detect`] turns one pod object into every signal its statuses show (pure,
//! stateless); [`Dedup`] lets through only signals not recorded before. A
//! signal's identity is (pod UID, container, kind, instance) where the
//! instance is:
//!
//! - for a termination (`oom_killed`, `terminated`): the id of the container
//!   instance that ended, so the same death seen first as `state.terminated`
//!   and later as `lastState.terminated` is one event; the restart count of
//!   that instance when the API gives no id;
//! - for `crash_loop_back_off` and `restart`: the restart count.
//!
//! The set holds the identities of live pods only (deleted pods are
//! forgotten, and a full list keeps only the pods it returned), so it is
//! bounded by the pods on the node, not by history. It is saved to
//! `events/seen.json` when it changes and loaded at start, so an agent
//! restart neither records a signal twice nor reads the events history.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::index::{all_statuses, strip_runtime_prefix};
use crate::store::events::{EventKind, PodEvent};

/// Longest termination message kept (the API allows 4 KiB; the viewer shows a line).
const MAX_MESSAGE: usize = 512;

/// Every failure signal a pod's container statuses show right now.
pub fn detect(pod: &Pod, now: DateTime<Utc>) -> Vec<PodEvent> {
    let mut out = Vec::new();
    for status in all_statuses(pod) {
        detect_container(pod, status, now, &mut out);
    }
    out
}

fn detect_container(
    pod: &Pod,
    status: &ContainerStatus,
    now: DateTime<Utc>,
    out: &mut Vec<PodEvent>,
) {
    let meta = &pod.metadata;
    let current_id = status.container_id.as_deref().map(short_id);
    let base = PodEvent {
        time: now,
        kind: EventKind::Restart,
        namespace: meta.namespace.clone().unwrap_or_default(),
        pod: meta.name.clone().unwrap_or_default(),
        pod_uid: meta.uid.clone(),
        container: status.name.clone(),
        container_id: current_id.clone(),
        restart_count: status.restart_count,
        reason: None,
        exit_code: None,
        message: None,
    };
    let state = status.state.as_ref();
    let last = status.last_state.as_ref();
    // The current instance ended: it is run number `restart_count`.
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        out.extend(termination(&base, t, status.restart_count, now));
    }
    // The previous instance ended and was replaced: run number `restart_count - 1`.
    if let Some(t) = last.and_then(|s| s.terminated.as_ref()) {
        out.extend(termination(
            &base,
            t,
            (status.restart_count - 1).max(0),
            now,
        ));
    }
    if let Some(w) = state.and_then(|s| s.waiting.as_ref())
        && w.reason.as_deref() == Some("CrashLoopBackOff")
    {
        out.push(PodEvent {
            kind: EventKind::CrashLoopBackOff,
            reason: w.reason.clone(),
            message: w.message.as_deref().map(truncate),
            ..base.clone()
        });
    }
    if status.restart_count > 0 {
        // When it started again, if it is running; otherwise when we noticed.
        let started = state
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .and_then(to_chrono);
        out.push(PodEvent {
            time: started.unwrap_or(now),
            kind: EventKind::Restart,
            ..base
        });
    }
}

/// A termination worth recording: OOM kills and any non-clean exit.
fn termination(
    base: &PodEvent,
    t: &ContainerStateTerminated,
    run: i32,
    now: DateTime<Utc>,
) -> Option<PodEvent> {
    let reason = t.reason.as_deref().filter(|r| !r.is_empty());
    let kind = match reason {
        Some("OOMKilled") => EventKind::OomKilled,
        // A clean exit (a finished job, an init container) is no failure.
        None | Some("Completed") if t.exit_code == 0 => return None,
        _ => EventKind::Terminated,
    };
    Some(PodEvent {
        time: t.finished_at.as_ref().and_then(to_chrono).unwrap_or(now),
        kind,
        container_id: t.container_id.as_deref().map(short_id),
        restart_count: run,
        reason: reason.map(str::to_string),
        exit_code: Some(t.exit_code),
        message: t.message.as_deref().map(truncate),
        ..base.clone()
    })
}

/// An API time as a chrono time (k8s-openapi uses jiff).
pub fn to_chrono(time: &Time) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(time.0.subsec_nanosecond()).ok()?;
    DateTime::from_timestamp(time.0.as_second(), nanos)
}

/// The `kind` value as written in the events files (and the metrics label).
pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::OomKilled => "oom_killed",
        EventKind::Terminated => "terminated",
        EventKind::CrashLoopBackOff => "crash_loop_back_off",
        EventKind::Restart => "restart",
    }
}

/// The 12-hex short id of an API container id (prefix stripped).
pub fn short_id(id: &str) -> String {
    strip_runtime_prefix(id).chars().take(12).collect()
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_string(),
    }
}

/// Which instance of a container a signal concerns (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Instance {
    ContainerId(String),
    Restart(i32),
}

/// The identity under which a signal is recorded once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct EventKey {
    pod: String,
    container: String,
    kind: EventKind,
    instance: Instance,
}

impl EventKey {
    pub fn of(event: &PodEvent) -> Self {
        let pod = match &event.pod_uid {
            Some(uid) => uid.clone(),
            None => format!("{}/{}", event.namespace, event.pod),
        };
        let instance = match (event.kind, &event.container_id) {
            (EventKind::OomKilled | EventKind::Terminated, Some(id)) if !id.is_empty() => {
                Instance::ContainerId(id.clone())
            }
            _ => Instance::Restart(event.restart_count),
        };
        Self {
            pod,
            container: event.container.clone(),
            kind: event.kind,
            instance,
        }
    }
}

/// Signals already recorded.
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashSet<EventKey>,
    /// Changed since [`Dedup::take_changed`].
    changed: bool,
}

impl Dedup {
    /// A set holding exactly `keys` (loaded from `events/seen.json`).
    pub fn from_keys(keys: Vec<EventKey>) -> Self {
        Self {
            seen: keys.into_iter().collect(),
            changed: false,
        }
    }

    /// The identities held, to save.
    pub fn keys(&self) -> Vec<&EventKey> {
        self.seen.iter().collect()
    }

    /// Whether the set changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Marks events (e.g. read back from the events files) as recorded.
    pub fn seed<'a>(&mut self, events: impl IntoIterator<Item = &'a PodEvent>) {
        let before = self.seen.len();
        self.seen.extend(events.into_iter().map(EventKey::of));
        self.changed |= self.seen.len() != before;
    }

    /// The events not recorded before, now marked as recorded.
    pub fn admit(&mut self, events: Vec<PodEvent>) -> Vec<PodEvent> {
        events.into_iter().filter(|e| self.admit_one(e)).collect()
    }

    /// Whether `event` is new; it is marked as recorded either way.
    pub fn admit_one(&mut self, event: &PodEvent) -> bool {
        let new = self.seen.insert(EventKey::of(event));
        self.changed |= new;
        new
    }

    /// Forgets the signals of pods not in `live` (deleted pods), bounding memory.
    pub fn retain_pods(&mut self, live: &HashSet<String>) {
        let before = self.seen.len();
        self.seen.retain(|k| live.contains(&k.pod));
        self.changed |= self.seen.len() != before;
    }

    /// Forgets the signals of one deleted pod.
    pub fn forget_pod(&mut self, pod_key: &str) {
        let before = self.seen.len();
        self.seen.retain(|k| k.pod != pod_key);
        self.changed |= self.seen.len() != before;
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests;
