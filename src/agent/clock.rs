//! Sample timestamps from the wall clock, on the interval grid, robust to
//! the wall clock being stepped (NTP, a VM resumed, an operator's `date`).
//!
//! Each tick's timestamp is the wall-clock time the tick was due, rounded to
//! the nearest multiple of the interval: samples carry the time they were
//! taken, and a late cycle is labelled with its slot, not with its delay.
//! The monotonic clock tells a step from the passing of time: between two
//! ticks both clocks advance alike unless the wall clock was stepped. A step
//! is reported (the recorder closes the open file so no file mixes clocks),
//! and when it leaves the ticks off the wall grid, the ticker is re-aligned.

use std::time::Duration;

/// What one tick's wall and monotonic readings mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The sample's timestamp (ms since the epoch), on the interval grid.
    pub timestamp_ms: i64,
    /// The wall clock jumped by this much (ms) since the previous tick.
    pub step_ms: Option<i64>,
    /// The ticks fall this far from the wall grid: re-align the ticker so
    /// the next tick is due in `realign` (the time to the next grid point).
    pub realign: Option<Duration>,
}

/// State across ticks.
#[derive(Debug, Clone)]
pub struct WallClock {
    interval_ms: i64,
    /// Wall and monotonic time (ms) of the previous tick, and its timestamp.
    previous: Option<(i64, i64, i64)>,
}

impl WallClock {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval_ms: i64::try_from(interval.as_millis())
                .unwrap_or(i64::MAX)
                .max(1),
            previous: None,
        }
    }

    /// Smallest jump reported as a step: half an interval, at least 100 ms
    /// (readings of the two clocks are microseconds apart; slewing moves
    /// both alike).
    fn step_threshold(&self) -> i64 {
        (self.interval_ms / 2).max(100)
    }

    /// A tick due at wall time `wall_ms` and monotonic time `mono_ms`.
    pub fn tick(&mut self, wall_ms: i64, mono_ms: i64) -> Tick {
        let i = self.interval_ms;
        let mut timestamp_ms = (wall_ms + i / 2).div_euclid(i) * i;
        let step_ms = self.previous.and_then(|(wall, mono, _)| {
            let jump = (wall_ms - wall) - (mono_ms - mono);
            (jump.abs() >= self.step_threshold()).then_some(jump)
        });
        if let Some((_, _, last)) = self.previous
            && step_ms.is_none_or(|s| s > 0)
            && timestamp_ms <= last
        {
            // Without a step back, time moves forward: never two samples of
            // one slot (a tick late by more than half an interval).
            timestamp_ms = last + i;
        }
        let off_grid = (wall_ms - timestamp_ms).abs();
        let realign = (off_grid > (i / 8).max(10)).then(|| {
            let to_next = i - wall_ms.rem_euclid(i);
            Duration::from_millis(u64::try_from(to_next).unwrap_or(0))
        });
        self.previous = Some((wall_ms, mono_ms, timestamp_ms));
        Tick {
            timestamp_ms,
            step_ms,
            realign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn ticks_on_the_grid_carry_the_wall_time() {
        let mut c = WallClock::new(Duration::from_secs(1));
        let t = c.tick(T0 + 3, 50_000);
        assert_eq!((t.timestamp_ms, t.step_ms, t.realign), (T0, None, None));
        let t = c.tick(T0 + 1_002, 51_000);
        assert_eq!((t.timestamp_ms, t.step_ms), (T0 + 1_000, None));
    }

    #[test]
    fn forward_and_backward_steps_are_reported_and_followed() {
        let mut c = WallClock::new(Duration::from_secs(1));
        c.tick(T0, 0);
        // The wall clock jumps an hour ahead between two ticks.
        let t = c.tick(T0 + 3_601_000, 1_000);
        assert_eq!(t.step_ms, Some(3_600_000));
        assert_eq!(
            t.timestamp_ms,
            T0 + 3_601_000,
            "the new time, not the old grid"
        );
        assert_eq!(t.realign, None, "a whole-second step stays on the grid");
        // ... and back by two hours.
        let t = c.tick(T0 - 3_598_000, 2_000);
        assert_eq!(t.step_ms, Some(-7_200_000));
        assert_eq!(
            t.timestamp_ms,
            T0 - 3_598_000,
            "earlier than the last sample: allowed after a step back"
        );
        let t = c.tick(T0 - 3_597_000, 3_000);
        assert_eq!(t.step_ms, None);
    }

    #[test]
    fn a_step_off_the_grid_asks_for_realignment() {
        let mut c = WallClock::new(Duration::from_secs(1));
        c.tick(T0, 0);
        let t = c.tick(T0 + 1_400, 1_000);
        assert_eq!(t.step_ms, None, "below half an interval: not a step");
        assert_eq!(t.timestamp_ms, T0 + 1_000);
        assert_eq!(
            t.realign,
            Some(Duration::from_millis(600)),
            "but off the grid"
        );
        let mut c = WallClock::new(Duration::from_secs(1));
        c.tick(T0, 0);
        let t = c.tick(T0 + 1_700, 1_000);
        assert_eq!(t.step_ms, Some(700));
        assert_eq!(t.timestamp_ms, T0 + 2_000);
        assert_eq!(t.realign, Some(Duration::from_millis(300)));
    }

    #[test]
    fn late_ticks_never_repeat_a_slot() {
        // 100 ms interval: a 99 ms correction back is below the step
        // threshold, yet rounds into the previous slot.
        let mut c = WallClock::new(Duration::from_millis(100));
        c.tick(T0 + 49, 0);
        let t = c.tick(T0 + 50, 100);
        assert_eq!(t.step_ms, None);
        assert_eq!(t.timestamp_ms, T0 + 100, "the next slot, not T0 again");
    }
}
