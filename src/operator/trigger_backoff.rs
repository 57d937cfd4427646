//! The pause between errors of the controller's watches. kube-runtime pauses the one stream
//! that joins every watch (NodeMonitors, DaemonSets, ConfigMaps, ...) after each error, with a
//! default of 0.8 s doubling to 30 s. After an API server restart every watch answers
//! "410 resource version too old" once, a normal signal to list again, one after the other:
//! the default grew to 46 s pauses and the NodeMonitors' status lagged two minutes behind their
//! DaemonSets (tests/control_plane_faults.rs). Short and capped instead: any successful event
//! resets it, and during an outage one retry every 2 s is little load.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// First pause.
const FIRST: Duration = Duration::from_millis(100);
/// Longest pause.
const MAX: Duration = Duration::from_secs(2);

/// 100 ms doubling to 2 s, reset by any successful event.
#[derive(Debug, Clone, Default)]
pub struct TriggerBackoff {
    errors: u32,
}

impl Iterator for TriggerBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let pause = FIRST.saturating_mul(1 << self.errors.min(16)).min(MAX);
        self.errors = self.errors.saturating_add(1);
        Some(pause)
    }
}

impl Backoff for TriggerBackoff {
    fn reset(&mut self) {
        self.errors = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_two_seconds_and_resets() {
        let mut b = TriggerBackoff::default();
        let pauses: Vec<u128> = b.by_ref().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000]);
        // Seven watches' 410s one after another: seconds, not minutes.
        assert!(pauses.iter().sum::<u128>() < 8_000);
        b.reset();
        assert_eq!(b.next(), Some(FIRST));
    }
}
