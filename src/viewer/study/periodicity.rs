//! Periodicity by autocorrelation: does the series repeat, how often, and
//! how strongly?
//!
//! The series (evenly spaced) has its least-squares line removed, so a trend
//! does not read as one long period. Its autocorrelation r(k) is computed by
//! FFT. Past the first lag where r drops to zero (a series always resembles
//! itself at small lags), the highest local maximum up to half the series
//! (at least two full cycles) is the dominant period. The biased estimate
//! weighs long lags down by 1 - k/n, which favours the fundamental over its
//! multiples. One peak is only good to a sample or so in noise, so the
//! period is refined from the peaks at its multiples too: each is located
//! near m times the current estimate (a parabola through the peak and its
//! neighbours places it below one sample) and the period is the
//! least-squares slope of peak position against m. The strength reported is
//! the unbiased r(k) at the first peak (1 = repeats exactly, 0 = no
//! resemblance). The phase is where the series, folded at that period,
//! peaks on average.

use super::fft::autocorrelation;

/// Strength from which a series counts as periodic.
pub const MIN_STRENGTH: f64 = 0.3;

#[derive(Debug, Clone, PartialEq)]
pub struct Periodicity {
    /// Dominant period, in samples (fractional after refinement).
    pub period: f64,
    /// Autocorrelation at the period, 0 to 1.
    pub strength: f64,
    /// `strength >= MIN_STRENGTH`.
    pub periodic: bool,
    /// Samples from the start of the series to the first peak of a cycle.
    pub phase: usize,
}

/// The dominant period of evenly spaced `x`; `None` when the series is too
/// short (under 8 samples), flat, or never oscillates.
pub fn periodicity(x: &[f64]) -> Option<Periodicity> {
    let n = x.len();
    if n < 8 || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let y = detrend(x);
    let r = autocorrelation(&y);
    if r[0] == 0.0 {
        return None;
    }
    let half = n / 2;
    let start = (1..half).find(|&k| r[k] <= 0.0)?;
    let peak = (start.max(2)..half.min(n - 1))
        .filter(|&k| r[k] >= r[k - 1] && r[k] >= r[k + 1] && r[k] > 0.0)
        .max_by(|&a, &b| r[a].total_cmp(&r[b]))?;
    let strength = (r[peak] * n as f64 / (n - peak) as f64).clamp(0.0, 1.0);
    let period = refine(&r, peak, half);
    Some(Periodicity {
        period,
        strength,
        periodic: strength >= MIN_STRENGTH,
        phase: phase(&y, period),
    })
}

/// The peak near lag `k` placed below one sample by a parabola through it
/// and its neighbours.
fn vertex(r: &[f64], k: usize) -> f64 {
    let (a, b, c) = (r[k - 1], r[k], r[k + 1]);
    let curve = a - 2.0 * b + c;
    if curve < 0.0 {
        k as f64 + (0.5 * (a - c) / curve).clamp(-0.5, 0.5)
    } else {
        k as f64
    }
}

/// The period from the peaks at its multiples up to lag `limit`: the
/// least-squares slope (through the origin) of peak lag against multiple.
fn refine(r: &[f64], first: usize, limit: usize) -> f64 {
    let mut estimate = vertex(r, first);
    let (mut sum_mx, mut sum_mm) = (estimate, 1.0);
    let reach = (first / 4).max(1);
    let mut m = 2.0;
    while estimate * m + reach as f64 + 1.0 < limit.min(r.len() - 1) as f64 {
        let centre = (estimate * m).round() as usize;
        let Some(k) = (centre - reach..=centre + reach)
            .filter(|&k| r[k] >= r[k - 1] && r[k] >= r[k + 1] && r[k] > 0.0)
            .max_by(|&a, &b| r[a].total_cmp(&r[b]))
        else {
            break;
        };
        sum_mx += m * vertex(r, k);
        sum_mm += m * m;
        estimate = sum_mx / sum_mm;
        m += 1.0;
    }
    estimate
}

/// `x` minus its least-squares line.
fn detrend(x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean_t = (n - 1.0) / 2.0;
    let mean_x = x.iter().sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let dt = i as f64 - mean_t;
        cov += dt * (v - mean_x);
        var += dt * dt;
    }
    let slope = if var > 0.0 { cov / var } else { 0.0 };
    x.iter()
        .enumerate()
        .map(|(i, v)| v - mean_x - slope * (i as f64 - mean_t))
        .collect()
}

/// Offset (in samples) within a cycle of `period` where `y` peaks on
/// average: `y` folded into one-sample bins of the (fractional) period.
fn phase(y: &[f64], period: f64) -> usize {
    let bins = (period.round() as usize).max(1);
    let mut sums = vec![(0.0, 0usize); bins];
    for (i, v) in y.iter().enumerate() {
        let at = ((i as f64 % period) / period * bins as f64) as usize;
        let s = &mut sums[at.min(bins - 1)];
        s.0 += v;
        s.1 += 1;
    }
    let best = sums
        .iter()
        .map(|(s, c)| s / (*c).max(1) as f64)
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    (best as f64 * period / bins as f64).round() as usize
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{noise, sine};
    use super::*;

    #[test]
    fn a_noisy_sine_has_its_period() {
        // One sample a second for an hour, a 60 s cycle, noise of a third of it.
        let x: Vec<f64> = sine(3600, 60.0, 1.0)
            .iter()
            .zip(noise(3600, 0.3, 1))
            .map(|(s, n)| 5.0 + s + n)
            .collect();
        let p = periodicity(&x).unwrap();
        assert!((p.period - 60.0).abs() < 0.1, "{p:?}");
        assert!(p.periodic && p.strength > 0.7, "{p:?}");
        // sin peaks a quarter cycle in.
        assert!((p.phase as i64 - 15).abs() <= 2, "{p:?}");
    }

    #[test]
    fn a_square_wave_on_a_trend_has_its_period() {
        // A batch job: busy 100 s of every 300 s, on a slowly growing baseline.
        let x: Vec<f64> = (0..7200)
            .map(|i| if i % 300 < 100 { 4.0 } else { 1.0 } + i as f64 * 1e-3)
            .zip(noise(7200, 0.2, 2))
            .map(|(s, n)| s + n)
            .collect();
        let p = periodicity(&x).unwrap();
        assert!((p.period - 300.0).abs() < 1.0, "{p:?}");
        assert!(p.strength > 0.8, "{p:?}");
        assert!(p.phase < 100, "the busy part starts each cycle: {p:?}");
    }

    #[test]
    fn noise_and_flat_series_are_not_periodic() {
        let p = periodicity(&noise(3600, 1.0, 3));
        assert!(p.as_ref().is_none_or(|p| !p.periodic), "{p:?}");
        assert_eq!(periodicity(&[2.0; 100]), None);
        assert_eq!(periodicity(&[1.0, 2.0]), None);
        // A straight line is all trend, no cycle.
        let line: Vec<f64> = (0..500).map(f64::from).collect();
        assert!(periodicity(&line).is_none_or(|p| !p.periodic));
    }
}
