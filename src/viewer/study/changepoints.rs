//! Changepoints: when did the level of a series shift, and by how much?
//!
//! Binary segmentation for shifts in the mean. For a stretch of the series,
//! the best split is the one that most reduces the squared error of fitting
//! each side with its own mean, `s1²/n1 + s2²/n2 - s²/n` (from prefix sums,
//! so every split of a stretch costs O(1)). A split is kept when that
//! reduction exceeds `PENALTY x ln(n) x σ²` and the two means differ by at
//! least `MIN_SHIFT x σ`, where σ is the noise level estimated robustly from
//! the median absolute difference of neighbouring samples (so the shifts
//! themselves barely move it). The stretch with the best remaining split is
//! split first, until none qualifies or `max_changes` are found. No side of a
//! split is shorter than `MIN_SEGMENT` samples or 1/200 of the series, and
//! splits are searched on the series smoothed by a running median (up to 31
//! samples wide), which keeps steps sharp but removes spikes shorter than
//! half its width: a spike is not a change of level. Levels are reported as
//! the means of the raw samples of each segment.

/// Penalty per changepoint, in units of σ² ln(n) (a BIC-style criterion with
/// margin for the correlated noise of real metrics).
pub const PENALTY: f64 = 3.0;
/// Smallest shift reported, in units of the noise level.
pub const MIN_SHIFT: f64 = 1.0;
/// Shortest segment, in samples.
pub const MIN_SEGMENT: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// First sample of the new level.
    pub index: usize,
    pub before: f64,
    pub after: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
    pub mean: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Changepoints {
    /// In time order.
    pub changes: Vec<Change>,
    pub segments: Vec<Segment>,
    /// Estimated noise level σ.
    pub noise: f64,
}

/// A qualifying split of a stretch: (index, gain).
type Split = (usize, f64);

/// The level shifts of `y` (in sample order), at most `max_changes`.
pub fn changepoints(y: &[f64], max_changes: usize) -> Changepoints {
    let n = y.len();
    let noise = noise_level(y);
    let min_len = MIN_SEGMENT.max(n / 200);
    let smooth = running_median(y, (min_len.min(31)) | 1);
    let prefix = prefix_sums(&smooth);
    let mut cuts: Vec<usize> = Vec::new();
    if noise > 0.0 && n >= 2 * min_len {
        let threshold = PENALTY * (n as f64).ln() * noise * noise;
        let qualifies = |(k, gain, shift): (usize, f64, f64)| {
            (gain > threshold && shift.abs() >= MIN_SHIFT * noise).then_some((k, gain))
        };
        // Stretches still to look at, with their best qualifying split.
        let mut open: Vec<(usize, usize, Option<Split>)> =
            vec![(0, n, best_split(&prefix, 0, n, min_len).and_then(qualifies))];
        while cuts.len() < max_changes {
            let Some(at) = open
                .iter()
                .enumerate()
                .filter_map(|(i, (_, _, split))| split.map(|(_, gain)| (i, gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
            else {
                break;
            };
            let (a, b, split) = open.swap_remove(at);
            let Some((k, _)) = split else { break };
            cuts.push(k);
            for (s, e) in [(a, k), (k, b)] {
                open.push((s, e, best_split(&prefix, s, e, min_len).and_then(qualifies)));
            }
        }
    }
    cuts.sort_unstable();
    let raw = prefix_sums(y);
    let mean = |a: usize, b: usize| (raw[b] - raw[a]) / (b - a) as f64;
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(cuts.iter().copied())
        .chain(std::iter::once(n))
        .collect();
    let segments: Vec<Segment> = bounds
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| Segment {
            start: w[0],
            end: w[1],
            mean: mean(w[0], w[1]),
        })
        .collect();
    let changes = segments
        .windows(2)
        .map(|w| Change {
            index: w[1].start,
            before: w[0].mean,
            after: w[1].mean,
        })
        .collect();
    Changepoints {
        changes,
        segments,
        noise,
    }
}

fn prefix_sums(y: &[f64]) -> Vec<f64> {
    let mut prefix = Vec::with_capacity(y.len() + 1);
    prefix.push(0.0);
    for v in y {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
    }
    prefix
}

/// Each sample replaced by the median of the `width` samples around it
/// (fewer at the ends).
fn running_median(y: &[f64], width: usize) -> Vec<f64> {
    let half = width / 2;
    let mut window = Vec::with_capacity(width);
    (0..y.len())
        .map(|i| {
            window.clear();
            window.extend_from_slice(&y[i.saturating_sub(half)..(i + half + 1).min(y.len())]);
            let mid = window.len() / 2;
            *window.select_nth_unstable_by(mid, f64::total_cmp).1
        })
        .collect()
}

/// The split of `[a, b)` that most reduces the squared error, with that
/// reduction and the shift of the mean: `(index, gain, after - before)`.
fn best_split(prefix: &[f64], a: usize, b: usize, min_len: usize) -> Option<(usize, f64, f64)> {
    if b - a < 2 * min_len {
        return None;
    }
    let total = prefix[b] - prefix[a];
    let n = (b - a) as f64;
    (a + min_len..=b - min_len)
        .map(|k| {
            let (n1, n2) = ((k - a) as f64, (b - k) as f64);
            let s1 = prefix[k] - prefix[a];
            let s2 = total - s1;
            let gain = s1 * s1 / n1 + s2 * s2 / n2 - total * total / n;
            (k, gain, s2 / n2 - s1 / n1)
        })
        .max_by(|x, y| x.1.total_cmp(&y.1))
}

/// Noise level σ of `y`: the median absolute difference of neighbours scaled
/// to a standard deviation (robust to the shifts); the mean absolute
/// difference when over half the neighbours are equal (stepwise data).
fn noise_level(y: &[f64]) -> f64 {
    let mut diffs: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    if diffs.is_empty() {
        return 0.0;
    }
    diffs.sort_by(f64::total_cmp);
    let median = diffs[diffs.len() / 2];
    // |d| of two independent N(0, σ²) samples has median 0.6745·√2·σ.
    let from_median = median / (0.6745 * std::f64::consts::SQRT_2);
    if from_median > 0.0 {
        return from_median;
    }
    diffs.iter().sum::<f64>() / diffs.len() as f64 / std::f64::consts::SQRT_2
}

#[cfg(test)]
mod tests {
    use super::super::testdata::noise;
    use super::*;

    fn steps(levels: &[(usize, f64)], sigma: f64, seed: u64) -> Vec<f64> {
        let n: usize = levels.iter().map(|l| l.0).sum();
        let base = levels
            .iter()
            .flat_map(|&(len, level)| std::iter::repeat_n(level, len));
        base.zip(noise(n, sigma, seed))
            .map(|(b, e)| b + e)
            .collect()
    }

    #[test]
    fn one_step_is_found_where_and_as_big_as_it_is() {
        // Memory steps from 1 to 3 (GiB, say) at sample 1000 of 3000.
        let y = steps(&[(1000, 1.0), (2000, 3.0)], 0.2, 4);
        let c = changepoints(&y, 10);
        assert_eq!(c.changes.len(), 1, "{:?}", c.changes);
        let change = &c.changes[0];
        assert!(change.index.abs_diff(1000) <= 3, "{change:?}");
        assert!(
            (change.after - change.before - 2.0).abs() < 0.05,
            "{change:?}"
        );
        assert!((c.noise - 0.2).abs() < 0.03, "σ estimated: {}", c.noise);
        assert_eq!(c.segments.len(), 2);
        assert_eq!((c.segments[0].start, c.segments[1].end), (0, 3000));
    }

    #[test]
    fn several_steps_come_back_in_time_order() {
        let y = steps(&[(600, 5.0), (600, 2.0), (900, 2.8), (500, 6.0)], 0.3, 5);
        let c = changepoints(&y, 10);
        let at: Vec<usize> = c.changes.iter().map(|c| c.index).collect();
        assert_eq!(at.len(), 3, "{:?}", c.changes);
        for (got, want) in at.iter().zip([600, 1200, 2100]) {
            assert!(got.abs_diff(want) <= 5, "{at:?}");
        }
        assert!(
            c.changes[0].after < c.changes[0].before,
            "a drop is a negative shift"
        );
        assert_eq!(changepoints(&y, 1).changes.len(), 1, "at most max_changes");
    }

    #[test]
    fn noise_spikes_and_flat_series_have_no_changepoint() {
        assert!(changepoints(&noise(3000, 1.0, 6), 10).changes.is_empty());
        let mut spiky = steps(&[(2000, 1.0)], 0.1, 7);
        spiky[900] = 50.0;
        spiky[901] = 50.0;
        assert!(
            changepoints(&spiky, 10).changes.is_empty(),
            "a 2-sample spike is not a level"
        );
        let flat = changepoints(&[4.0; 500], 10);
        assert!(flat.changes.is_empty());
        assert_eq!(
            flat.segments,
            vec![Segment {
                start: 0,
                end: 500,
                mean: 4.0
            }]
        );
    }

    #[test]
    fn running_medians_drop_spikes_and_keep_steps() {
        let y = [1.0, 1.0, 9.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0];
        assert_eq!(
            running_median(&y, 3),
            vec![1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0]
        );
    }

    #[test]
    fn exact_steps_without_noise_are_found() {
        let y: Vec<f64> = (0..400)
            .map(|i| if i < 250 { 10.0 } else { 12.0 })
            .collect();
        let c = changepoints(&y, 10);
        assert_eq!(
            c.changes,
            vec![Change {
                index: 250,
                before: 10.0,
                after: 12.0
            }]
        );
    }
}
