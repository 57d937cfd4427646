//! The status a NodeMonitor reports, computed from what the reconcile did and
//! the DaemonSet's own status (pure, so every condition is unit-tested).
//!
//! - `Ready`: every selected node runs a ready pod of the current spec.
//! - `Progressing`: the DaemonSet is still rolling out the current spec.
//! - `Degraded`: the operator refuses to run this spec (invalid settings, or a
//!   host directory another NodeMonitor already uses on the same nodes).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::NodeMonitorStatus;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Why the operator did not apply the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// `InvalidSpec` or `HostPathConflict`.
    pub reason: &'static str,
    pub message: String,
}

/// What one reconcile found.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The NodeMonitor's `metadata.generation`.
    pub generation: Option<i64>,
    /// The DaemonSet as the apiserver returned it (None: there is none).
    pub daemon_set: Option<DaemonSet>,
    pub blocked: Option<Blocked>,
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    observed: &Observed,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: observed.generation,
        // Replaced below by the previous time when the status did not change.
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// The new status; a condition whose `status` did not change keeps its
/// `lastTransitionTime` from `previous`, a changed one gets `now`.
pub fn compute(
    previous: Option<&NodeMonitorStatus>,
    observed: &Observed,
    now: Time,
) -> NodeMonitorStatus {
    let ds_status = observed
        .daemon_set
        .as_ref()
        .and_then(|ds| ds.status.clone())
        .unwrap_or_default();
    let desired = ds_status.desired_number_scheduled;
    let ready = ds_status.number_ready;
    let updated = ds_status.updated_number_scheduled.unwrap_or(0);
    let available = ds_status.number_available.unwrap_or(0);

    let conditions = match &observed.blocked {
        Some(blocked) => vec![
            condition(
                READY,
                false,
                blocked.reason,
                blocked.message.clone(),
                observed,
            ),
            condition(
                PROGRESSING,
                false,
                blocked.reason,
                "the spec is not applied".into(),
                observed,
            ),
            condition(
                DEGRADED,
                true,
                blocked.reason,
                blocked.message.clone(),
                observed,
            ),
        ],
        None => {
            let ds_generation = observed
                .daemon_set
                .as_ref()
                .and_then(|ds| ds.metadata.generation);
            let caught_up = ds_status.observed_generation.is_some()
                && ds_status.observed_generation >= ds_generation;
            let rolled_out = caught_up && updated == desired && ready == desired;
            let counts =
                format!("{ready}/{desired} pods ready, {updated} updated, {available} available");
            let ready_condition = if !caught_up {
                condition(
                    READY,
                    false,
                    "Pending",
                    "the DaemonSet controller has not seen the current spec yet".into(),
                    observed,
                )
            } else if desired == 0 {
                condition(
                    READY,
                    false,
                    "NoNodes",
                    "no node matches the node selector and tolerations".into(),
                    observed,
                )
            } else if rolled_out {
                condition(READY, true, "AllPodsReady", counts.clone(), observed)
            } else {
                condition(READY, false, "PodsNotReady", counts.clone(), observed)
            };
            vec![
                ready_condition,
                if rolled_out {
                    condition(PROGRESSING, false, "RolloutComplete", counts, observed)
                } else {
                    condition(PROGRESSING, true, "RollingOut", counts, observed)
                },
                condition(
                    DEGRADED,
                    false,
                    "AsExpected",
                    "the spec is applied".into(),
                    observed,
                ),
            ]
        }
    };

    let conditions = conditions
        .into_iter()
        .map(|mut c| {
            let before =
                previous.and_then(|p| p.conditions.iter().find(|old| old.type_ == c.type_));
            c.last_transition_time = match before {
                Some(old) if old.status == c.status => old.last_transition_time.clone(),
                _ => now.clone(),
            };
            c
        })
        .collect();

    NodeMonitorStatus {
        observed_generation: observed.generation,
        conditions,
        desired_number_scheduled: desired,
        number_ready: ready,
        updated_number_scheduled: updated,
        number_available: available,
        // Filled by the reconcile from the agents (issue #19); kept until then.
        export: previous.and_then(|p| p.export.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetStatus;
    use k8s_openapi::jiff::Timestamp;

    fn ds(generation: i64, status: DaemonSetStatus) -> DaemonSet {
        let mut ds = DaemonSet::default();
        ds.metadata.generation = Some(generation);
        ds.status = Some(status);
        ds
    }

    fn counts(observed_generation: i64, desired: i32, ready: i32, updated: i32) -> DaemonSetStatus {
        DaemonSetStatus {
            observed_generation: Some(observed_generation),
            desired_number_scheduled: desired,
            number_ready: ready,
            updated_number_scheduled: Some(updated),
            number_available: Some(ready),
            ..DaemonSetStatus::default()
        }
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn get<'a>(s: &'a NodeMonitorStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn observed(ds: Option<DaemonSet>) -> Observed {
        Observed {
            generation: Some(3),
            daemon_set: ds,
            blocked: None,
        }
    }

    #[test]
    fn all_pods_ready_is_ready_and_not_progressing() {
        let s = compute(None, &observed(Some(ds(2, counts(2, 3, 3, 3)))), at(10));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            (
                s.desired_number_scheduled,
                s.number_ready,
                s.updated_number_scheduled,
                s.number_available
            ),
            (3, 3, 3, 3)
        );
        assert_eq!(get(&s, READY).status, "True");
        assert_eq!(get(&s, PROGRESSING).status, "False");
        assert_eq!(get(&s, DEGRADED).status, "False");
        assert_eq!(get(&s, READY).observed_generation, Some(3));
    }

    #[test]
    fn rolling_out_is_progressing_and_not_ready() {
        let s = compute(None, &observed(Some(ds(2, counts(2, 3, 2, 1)))), at(10));
        assert_eq!(get(&s, READY).reason, "PodsNotReady");
        assert_eq!(
            get(&s, READY).message,
            "2/3 pods ready, 1 updated, 2 available"
        );
        assert_eq!(get(&s, PROGRESSING).status, "True");

        // The DaemonSet controller has not caught up with a new template yet.
        let s = compute(None, &observed(Some(ds(3, counts(2, 3, 3, 3)))), at(10));
        assert_eq!(get(&s, READY).reason, "Pending");
        assert_eq!(get(&s, PROGRESSING).status, "True");
    }

    #[test]
    fn no_nodes_is_said_so() {
        let s = compute(None, &observed(Some(ds(1, counts(1, 0, 0, 0)))), at(10));
        assert_eq!(get(&s, READY).reason, "NoNodes");
        assert_eq!(get(&s, READY).status, "False");
    }

    #[test]
    fn blocked_is_degraded_with_reason_and_message() {
        let o = Observed {
            generation: Some(1),
            daemon_set: None,
            blocked: Some(Blocked {
                reason: "HostPathConflict",
                message: "used by a/b".into(),
            }),
        };
        let s = compute(None, &o, at(10));
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert_eq!(get(&s, DEGRADED).reason, "HostPathConflict");
        assert_eq!(get(&s, READY).status, "False");
        assert_eq!(get(&s, READY).message, "used by a/b");
        assert_eq!(s.desired_number_scheduled, 0);
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = compute(None, &observed(Some(ds(1, counts(1, 2, 1, 2)))), at(10));
        let same = compute(
            Some(&first),
            &observed(Some(ds(1, counts(1, 2, 1, 2)))),
            at(20),
        );
        assert_eq!(get(&same, READY).last_transition_time, at(10));
        assert_eq!(
            first, same,
            "an unchanged world gives an identical status (no write)"
        );
        let ready = compute(
            Some(&same),
            &observed(Some(ds(1, counts(1, 2, 2, 2)))),
            at(30),
        );
        assert_eq!(get(&ready, READY).last_transition_time, at(30));
        assert_eq!(get(&ready, DEGRADED).last_transition_time, at(10));
    }
}
