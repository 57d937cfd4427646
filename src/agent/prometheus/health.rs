//! `/healthz`: is the agent still collecting? A pure verdict from the latest
//! cycle's time, so a liveness probe restarts an agent whose loop is stuck,
//! while a pod metadata outage (collection goes on with short ids) only shows
//! up in the body, never as a failure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::self_metrics::EnrichmentStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A cycle completed recently.
    Ok,
    /// No cycle yet, still within the grace period after start.
    Starting,
    /// No cycle for longer than the grace period.
    Stalled,
}

/// Body of `/healthz` (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle_age_seconds: Option<f64>,
    pub containers: usize,
    pub cycles: u64,
    pub late_cycles: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<EnrichmentStatus>,
}

impl Health {
    /// Whether the probe passes (HTTP 200) or fails (503).
    pub fn healthy(&self) -> bool {
        self.status != Status::Stalled
    }
}

/// What `/healthz` needs to decide.
#[derive(Debug, Clone)]
pub struct HealthInput {
    pub now: DateTime<Utc>,
    pub started: DateTime<Utc>,
    pub last_cycle: Option<DateTime<Utc>>,
    /// Longest acceptable time without a cycle (and grace period after start).
    pub stale_after: Duration,
    pub containers: usize,
    pub cycles: u64,
    pub late_cycles: u64,
    pub enrichment: Option<EnrichmentStatus>,
}

pub fn evaluate(input: HealthInput) -> Health {
    let age = |t: DateTime<Utc>| (input.now - t).to_std().unwrap_or(Duration::ZERO);
    let (status, age_s) = match input.last_cycle {
        Some(t) if age(t) > input.stale_after => (Status::Stalled, Some(age(t).as_secs_f64())),
        Some(t) => (Status::Ok, Some(age(t).as_secs_f64())),
        None if age(input.started) > input.stale_after => (Status::Stalled, None),
        None => (Status::Starting, None),
    };
    Health {
        status,
        last_cycle: input.last_cycle,
        last_cycle_age_seconds: age_s,
        containers: input.containers,
        cycles: input.cycles,
        late_cycles: input.late_cycles,
        enrichment: input.enrichment,
    }
}

/// Grace period for an interval: ten missed cycles, at least 30 s.
pub fn stale_after(interval: Duration) -> Duration {
    (interval * 10).max(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::prometheus::self_metrics::EnrichmentState;

    fn input(now_s: i64, last: Option<i64>) -> HealthInput {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap_or_default();
        HealthInput {
            now: t(now_s),
            started: t(1000),
            last_cycle: last.map(t),
            stale_after: Duration::from_secs(30),
            containers: 3,
            cycles: 10,
            late_cycles: 0,
            enrichment: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(evaluate(input(1010, None)).status, Status::Starting);
        assert!(evaluate(input(1010, None)).healthy());
        assert_eq!(evaluate(input(1031, None)).status, Status::Stalled);
        assert_eq!(evaluate(input(1040, Some(1039))).status, Status::Ok);
        let stalled = evaluate(input(1100, Some(1060)));
        assert_eq!(stalled.status, Status::Stalled);
        assert!(!stalled.healthy());
        assert_eq!(stalled.last_cycle_age_seconds, Some(40.0));
    }

    #[test]
    fn enrichment_outage_is_reported_not_failed() {
        let mut i = input(1040, Some(1039));
        i.enrichment = Some(EnrichmentStatus {
            state: EnrichmentState::unavailable,
            reason: Some("server down".into()),
            pods: 0,
        });
        let h = evaluate(i);
        assert!(h.healthy());
        let json = serde_json::to_value(&h).unwrap_or_default();
        assert_eq!(json["enrichment"]["state"], "unavailable");
        assert_eq!(json["enrichment"]["reason"], "server down");
        assert_eq!(json["status"], "ok");
    }

    #[test]
    fn grace_period() {
        assert_eq!(stale_after(Duration::from_secs(1)), Duration::from_secs(30));
        assert_eq!(
            stale_after(Duration::from_secs(10)),
            Duration::from_secs(100)
        );
    }
}
