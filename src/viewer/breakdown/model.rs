//! Per-key rates of a dataset's counters (pure): rows of one container (or a
//! pod's sandboxes) from the devices or network files → one series of
//! per-second rates per key (a device, an interface) and counter, in buckets
//! of a fixed width.
//!
//! A rate is the counter's increase over the time between two samples of the
//! same (container, key); a decrease (a counter reset: a device re-attached,
//! a pod's network namespace replaced) gives no rate for that interval, never
//! a negative one. A bucket's rate is the increases inside it over the time
//! they cover, so a bucket with one sample of a key has no rate.

use std::collections::BTreeMap;

use serde::Serialize;

/// One sample of one counter set: `values` in the dataset's counter order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub t_ms: i64,
    /// The container the row is of (a pod may have had several sandboxes).
    pub container: String,
    pub key: String,
    pub values: Vec<Option<i64>>,
}

/// One key's rates: `rates[counter][bucket]`, per second; `None` where no
/// interval of the bucket had a rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySeries {
    pub key: String,
    pub rates: Vec<Vec<Option<f64>>>,
    /// Counter increases over the whole range (what the key moved in total).
    pub totals: Vec<i64>,
}

/// A counter's increase in a bucket and the milliseconds it covers.
type Covered = (i64, i64);

/// The width of the buckets of `[from_ms, to_ms]`: whole seconds (samples are
/// a second apart at the finest), at most `points` buckets.
pub fn step_ms(from_ms: i64, to_ms: i64, points: usize) -> i64 {
    let span = (to_ms - from_ms).max(1);
    let points = points.max(1) as i64;
    let raw = (span + points - 1) / points;
    ((raw + 999) / 1000 * 1000).max(1000)
}

/// Rates of `samples` (any order) over `[from_ms, to_ms]` in buckets of `step`,
/// for `counters` counters; keys sorted by their total increase, largest first.
pub fn rates(
    mut samples: Vec<Sample>,
    counters: usize,
    from_ms: i64,
    to_ms: i64,
    step: i64,
) -> Vec<KeySeries> {
    let buckets = usize::try_from((to_ms - from_ms).max(0) / step.max(1) + 1).unwrap_or(1);
    samples.sort_by(|a, b| (&a.key, &a.container, a.t_ms).cmp(&(&b.key, &b.container, b.t_ms)));
    // Per key: (increase, milliseconds) per counter and bucket, and totals per counter.
    let mut sums: BTreeMap<String, (Vec<Vec<Covered>>, Vec<i64>)> = BTreeMap::new();
    for pair in samples.windows(2) {
        let (prev, cur) = (&pair[0], &pair[1]);
        if prev.key != cur.key || prev.container != cur.container || cur.t_ms <= prev.t_ms {
            continue;
        }
        if cur.t_ms < from_ms || cur.t_ms > to_ms {
            continue;
        }
        let bucket = usize::try_from((cur.t_ms - from_ms) / step.max(1)).unwrap_or(0);
        let Some(bucket) = (bucket < buckets).then_some(bucket) else {
            continue;
        };
        let (per, totals) = sums
            .entry(cur.key.clone())
            .or_insert_with(|| (vec![vec![(0, 0); buckets]; counters], vec![0; counters]));
        let dt = cur.t_ms - prev.t_ms;
        for c in 0..counters {
            let (Some(Some(a)), Some(Some(b))) = (prev.values.get(c), cur.values.get(c)) else {
                continue;
            };
            if b < a {
                continue; // a reset: no rate for this interval
            }
            per[c][bucket].0 += b - a;
            per[c][bucket].1 += dt;
            totals[c] += b - a;
        }
    }
    let mut out: Vec<KeySeries> = sums
        .into_iter()
        .map(|(key, (per, totals))| KeySeries {
            key,
            rates: per
                .into_iter()
                .map(|buckets| {
                    buckets
                        .into_iter()
                        .map(|(inc, ms)| (ms > 0).then(|| inc as f64 * 1000.0 / ms as f64))
                        .collect()
                })
                .collect(),
            totals,
        })
        .collect();
    out.sort_by(|a, b| {
        let total = |k: &KeySeries| k.totals.iter().sum::<i64>();
        total(b).cmp(&total(a)).then_with(|| a.key.cmp(&b.key))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, container: &str, key: &str, v: i64) -> Sample {
        Sample {
            t_ms: t * 1000,
            container: container.into(),
            key: key.into(),
            values: vec![Some(v), None],
        }
    }

    #[test]
    fn rates_per_key_per_bucket_resets_and_gaps_skipped() {
        let samples = vec![
            // vda: 100 B/s for 4 s, then a reset, then 50 B/s.
            s(0, "c", "vda", 0),
            s(1, "c", "vda", 100),
            s(3, "c", "vda", 300),
            s(4, "c", "vda", 400),
            s(5, "c", "vda", 10),
            s(6, "c", "vda", 60),
            // vdb: a single sample has no rate.
            s(2, "c", "vdb", 5),
        ];
        let out = rates(samples, 2, 0, 7000, 2000);
        assert_eq!(out.len(), 1, "vdb has no interval: {out:?}");
        let vda = &out[0];
        assert_eq!(vda.key, "vda");
        // Buckets [0,2) [2,4) [4,6) [6,8): 100 B/s, 100 B/s (2 s over 1..3), 100 (3..4; 4..5 reset), 50.
        assert_eq!(
            vda.rates[0],
            vec![Some(100.0), Some(100.0), Some(100.0), Some(50.0)]
        );
        assert_eq!(vda.totals[0], 450);
        // The second counter is null everywhere: no rate, total 0.
        assert!(vda.rates[1].iter().all(Option::is_none));
    }

    #[test]
    fn a_pods_sandboxes_never_make_a_rate_between_them_and_keys_rank_by_total() {
        let samples = vec![
            s(0, "old", "eth0", 1_000_000),
            s(1, "old", "eth0", 1_000_100),
            // The new sandbox starts from 0: not a drop from the old one's counter.
            s(2, "new", "eth0", 0),
            s(3, "new", "eth0", 300),
            s(0, "new", "lo", 0),
            s(3, "new", "lo", 30),
        ];
        let out = rates(samples, 1, 0, 3000, 1000);
        assert_eq!(out[0].key, "eth0");
        assert_eq!(out[0].totals, vec![400]);
        assert_eq!(out[0].rates[0], vec![None, Some(100.0), None, Some(300.0)]);
        assert_eq!(out[1].key, "lo");
        assert_eq!(out[1].rates[0][3], Some(10.0));
    }

    #[test]
    fn at_most_points_buckets_at_least_a_second_wide() {
        assert_eq!(step_ms(0, 3_600_000, 600), 6000);
        assert_eq!(step_ms(0, 10_000, 600), 1000);
        assert_eq!(step_ms(0, 0, 600), 1000);
        assert_eq!(step_ms(0, 179_000, 30), 6000, "whole seconds");
    }
}
