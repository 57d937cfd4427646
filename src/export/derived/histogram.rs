//! Log-bucket histograms with 1 % relative accuracy (the DDSketch mapping),
//! stored as plain rows `(bucket, count)` so that any SQL engine merges them
//! with `SUM(count) GROUP BY bucket` (pure).
//!
//! A positive value `v` falls in bucket `i = ceil(ln v / ln γ)`, the interval
//! `(γ^(i-1), γ^i]`, with `γ = (1 + α) / (1 − α)` and `α = 0.01`; zero has a
//! bucket of its own ([`ZERO_BUCKET`]). A bucket stands for `2 γ^i / (γ + 1)`,
//! which is within `α` of every value in it, so a percentile read from merged
//! buckets is within 1 % of the exact one. The SQL of `examples/queries`
//! computes the same expressions (`fgm_bucket`, `fgm_bucket_value`).

use std::collections::BTreeMap;

/// Relative accuracy α of a bucket's value.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// γ = (1 + α) / (1 − α), written as the SQL writes it (`1.01 / 0.99`) so
/// both sides compute bucket indices from the same double.
pub const GAMMA: f64 = 1.01 / 0.99;
/// The bucket of zero: below every positive bucket, value 0.
pub const ZERO_BUCKET: i32 = i32::MIN;

/// Bucket of `v`; `None` for negative, NaN or infinite values (rates and
/// gauges here are never negative: a counter that went down gives no rate).
pub fn bucket(v: f64) -> Option<i32> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    if v == 0.0 {
        return Some(ZERO_BUCKET);
    }
    // |ln v| <= 745 for finite doubles, so the index fits an i32 (|i| < 38,000).
    Some((v.ln() / GAMMA.ln()).ceil() as i32)
}

/// The value a bucket stands for: `2 γ^i / (γ + 1)` (0 for [`ZERO_BUCKET`]).
pub fn bucket_value(bucket: i32) -> f64 {
    if bucket == ZERO_BUCKET {
        0.0
    } else {
        2.0 * GAMMA.powi(bucket) / (GAMMA + 1.0)
    }
}

/// The `p` percentile (0..=1) of merged `(bucket, count)` rows: the value of
/// the first bucket, in bucket order, where the running count reaches
/// `p × total`. Rows of the same bucket may repeat (they add up). `None` when
/// there is no count.
pub fn percentile(rows: impl IntoIterator<Item = (i32, u64)>, p: f64) -> Option<f64> {
    let mut merged: BTreeMap<i32, u64> = BTreeMap::new();
    for (b, c) in rows {
        *merged.entry(b).or_default() += c;
    }
    let total: u64 = merged.values().sum();
    if total == 0 {
        return None;
    }
    let target = p.clamp(0.0, 1.0) * total as f64;
    let mut running = 0u64;
    for (b, c) in &merged {
        running += c;
        if running as f64 >= target {
            return Some(bucket_value(*b));
        }
    }
    merged.keys().next_back().map(|b| bucket_value(*b))
}

/// Counts by bucket for one (container, hour, metric): dense over the range
/// of buckets seen, because a container's values stay within a few hundred
/// buckets and an indexed add is what a day of per-second rows needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    zeros: u64,
    /// Bucket of `counts[0]`.
    base: i32,
    counts: Vec<u64>,
    /// Last value added and its bucket: gauges repeat, `ln` is the cost.
    last: Option<(f64, i32)>,
}

impl Histogram {
    /// Adds `v`; returns false (and counts nothing) for values [`bucket`] refuses.
    pub fn add(&mut self, v: f64) -> bool {
        let b = match self.last {
            Some((last, b)) if last == v => b,
            _ => match bucket(v) {
                Some(b) => {
                    self.last = Some((v, b));
                    b
                }
                None => return false,
            },
        };
        if b == ZERO_BUCKET {
            self.zeros += 1;
            return true;
        }
        if self.counts.is_empty() {
            self.base = b;
            self.counts.push(0);
        } else if b < self.base {
            let grow = (self.base - b) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.base = b;
        } else if (b - self.base) as usize >= self.counts.len() {
            self.counts.resize((b - self.base) as usize + 1, 0);
        }
        self.counts[(b - self.base) as usize] += 1;
        true
    }

    /// Non-empty buckets in bucket order (zero first).
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let zeros = (self.zeros > 0).then_some((ZERO_BUCKET, self.zeros));
        zeros.into_iter().chain(
            self.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| (self.base + i as i32, *c)),
        )
    }

    pub fn total(&self) -> u64 {
        self.zeros + self.counts.iter().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_within_one_percent_of_its_bucket_value() {
        let mut v = 1e-9;
        while v < 1e13 {
            let b = bucket(v).unwrap();
            let r = bucket_value(b);
            assert!(
                (r - v).abs() / v <= RELATIVE_ACCURACY + 1e-12,
                "{v} -> bucket {b} -> {r}"
            );
            // The bucket is the interval (γ^(b-1), γ^b].
            assert!(GAMMA.powi(b - 1) < v * (1.0 + 1e-12) && v <= GAMMA.powi(b) * (1.0 + 1e-12));
            v *= 1.003_7;
        }
        assert_eq!(bucket(0.0), Some(ZERO_BUCKET));
        assert_eq!(bucket_value(ZERO_BUCKET), 0.0);
        assert_eq!(bucket(1.0), Some(0));
        for bad in [-1e-9, f64::NAN, f64::INFINITY] {
            assert_eq!(bucket(bad), None);
        }
    }

    /// A known distribution: 0, then 1..=100,000 scaled by 1e-3 (0.001..100),
    /// each value once. The exact p99 (nearest rank) is 99.000; buckets give
    /// it within 1 %, from one histogram or from several merged by adding counts.
    #[test]
    fn p99_of_histograms_is_within_one_percent_of_the_exact_p99() {
        let values: Vec<f64> = std::iter::once(0.0)
            .chain((1..=100_000).map(|i| i as f64 * 1e-3))
            .collect();
        let exact = |p: f64| {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
            sorted[rank - 1]
        };
        let mut whole = Histogram::default();
        let mut parts = vec![Histogram::default(); 7];
        for (i, v) in values.iter().enumerate() {
            assert!(whole.add(*v));
            parts[i % 7].add(*v);
        }
        assert_eq!(whole.total(), values.len() as u64);
        let merged_rows: Vec<(i32, u64)> = parts.iter().flat_map(|h| h.buckets()).collect();
        for p in [0.5, 0.9, 0.99, 0.999, 1.0] {
            let want = exact(p);
            for got in [
                percentile(whole.buckets(), p).unwrap(),
                percentile(merged_rows.iter().copied(), p).unwrap(),
            ] {
                let err = (got - want).abs() / want;
                assert!(err <= RELATIVE_ACCURACY, "p{p}: {got} vs {want} ({err})");
            }
        }
        assert!((exact(0.99) - 99.0).abs() < 1e-9);
        // p0 is the zero bucket; an empty histogram has no percentile.
        assert_eq!(percentile(whole.buckets(), 0.0), Some(0.0));
        assert_eq!(percentile(Vec::new(), 0.99), None);
    }

    /// A skewed distribution (log-normal-like, from a fixed LCG), where
    /// neighbouring ranks are far apart in value.
    #[test]
    fn skewed_distribution_percentiles_stay_within_one_percent() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut values = Vec::new();
        let mut h = Histogram::default();
        for _ in 0..50_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = (8.0 * u - 4.0).exp();
            values.push(v);
            h.add(v);
        }
        values.sort_by(f64::total_cmp);
        for p in [0.01, 0.5, 0.95, 0.99] {
            let want = values[(p * values.len() as f64).ceil() as usize - 1];
            let got = percentile(h.buckets(), p).unwrap();
            assert!((got - want).abs() / want <= RELATIVE_ACCURACY, "p{p}");
        }
    }

    #[test]
    fn dense_buckets_grow_both_ways_and_refuse_negatives() {
        let mut h = Histogram::default();
        for v in [1.0, 100.0, 0.01, 1.0, 0.0, -3.0] {
            h.add(v);
        }
        let rows: Vec<(i32, u64)> = h.buckets().collect();
        assert_eq!(
            rows,
            vec![
                (ZERO_BUCKET, 1),
                (bucket(0.01).unwrap(), 1),
                (0, 2),
                (bucket(100.0).unwrap(), 1)
            ]
        );
        assert_eq!(h.total(), 5, "the negative value is not counted");
    }
}
