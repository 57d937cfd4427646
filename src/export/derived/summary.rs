//! Hourly per-container summaries of the rate columns (pure): for each
//! (container, hour, metric) one row of count, sum, min and max, and one row
//! per non-empty histogram bucket with its count.
//!
//! Compaction summarises the rows of one merged file, one summaries object
//! per clock hour of them; a clock hour whose rows sit in two merged files (a
//! raw file crossing the hour, late uploads, spans shorter than an hour) gets
//! an object from each, whose rows add up: readers always aggregate
//! (`SUM(count)`, `SUM(sum)`, `MIN(min)`, `MAX(max)`, `SUM(count)` by bucket).

use std::collections::{BTreeMap, HashMap};

use super::histogram::Histogram;

pub const HOUR_MS: i64 = 3_600_000;

/// Count, sum, min and max of one (container, hour, metric), with its histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accum {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub histogram: Histogram,
}

impl Accum {
    /// Adds `v` (negative and non-finite values are not counted anywhere, so
    /// the histogram's total is always `count`).
    pub fn add(&mut self, v: f64) {
        if !self.histogram.add(v) {
            return;
        }
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
    }
}

/// Start (ms) of the clock hour holding `t_ms`.
pub fn hour_of(t_ms: i64) -> i64 {
    t_ms - t_ms.rem_euclid(HOUR_MS)
}

/// The summaries of one merged file, by hour, then container: one [`Accum`] per metric.
#[derive(Debug, Clone, Default)]
pub struct Summaries {
    metrics: usize,
    /// Looked up for every row by `&str`, so no key is allocated once a
    /// container is known.
    by_hour: BTreeMap<i64, HashMap<String, Vec<Accum>>>,
}

/// One output row: a stats row (`bucket` None) or a bucket row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    pub container_id: &'a str,
    pub metric: usize,
    pub bucket: Option<i32>,
    pub count: u64,
    /// Sum, min, max: on stats rows only.
    pub stats: Option<(f64, f64, f64)>,
}

impl Summaries {
    /// Summaries of `metrics` columns.
    pub fn new(metrics: usize) -> Self {
        Summaries {
            metrics,
            by_hour: BTreeMap::new(),
        }
    }

    /// The accumulators of `container` for the hour of `t_ms` (one per metric).
    pub fn slot(&mut self, container: &str, t_ms: i64) -> &mut [Accum] {
        let metrics = self.metrics;
        let hour = self.by_hour.entry(hour_of(t_ms)).or_default();
        if !hour.contains_key(container) {
            hour.insert(container.to_string(), vec![Accum::default(); metrics]);
        }
        hour.get_mut(container)
            .map(Vec::as_mut_slice)
            .unwrap_or_default()
    }

    /// The hours (start, ms) with rows, in order.
    pub fn hours(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_hour.keys().copied()
    }

    /// Rows of `hour` sorted by (metric, container), each key's stats row
    /// before its buckets (ascending): one metric's rows are contiguous, so a
    /// query of one metric reads few pages.
    pub fn rows(&self, hour: i64) -> Vec<Row<'_>> {
        let mut out = Vec::new();
        let Some(containers) = self.by_hour.get(&hour) else {
            return out;
        };
        let mut containers: Vec<(&String, &Vec<Accum>)> = containers.iter().collect();
        containers.sort_by_key(|(c, _)| *c);
        for metric in 0..self.metrics {
            for (container, accums) in &containers {
                let Some(a) = accums.get(metric).filter(|a| a.count > 0) else {
                    continue;
                };
                out.push(Row {
                    container_id: container.as_str(),
                    metric,
                    bucket: None,
                    count: a.count,
                    stats: Some((a.sum, a.min, a.max)),
                });
                out.extend(a.histogram.buckets().map(|(b, c)| Row {
                    container_id: container.as_str(),
                    metric,
                    bucket: Some(b),
                    count: c,
                    stats: None,
                }));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::derived::histogram::bucket;

    #[test]
    fn stats_and_buckets_per_container_hour_and_metric() {
        let mut s = Summaries::new(2);
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;
        for (t, v) in [(t0, 1.0), (t0 + 1000, 3.0), (t0 + HOUR_MS, 0.0)] {
            s.slot("c1", t)[0].add(v);
        }
        s.slot("c1", t0)[1].add(-1.0);
        s.slot("c0", t0 + 5)[1].add(8.0);
        assert_eq!(s.hours().collect::<Vec<_>>(), vec![t0, t0 + HOUR_MS]);
        let brief = |hour| -> Vec<(String, usize, Option<i32>, u64)> {
            s.rows(hour)
                .iter()
                .map(|r| (r.container_id.to_string(), r.metric, r.bucket, r.count))
                .collect()
        };
        assert_eq!(
            brief(t0),
            vec![
                ("c1".into(), 0, None, 2),
                ("c1".into(), 0, bucket(1.0), 1),
                ("c1".into(), 0, bucket(3.0), 1),
                ("c0".into(), 1, None, 1),
                ("c0".into(), 1, bucket(8.0), 1),
            ]
        );
        assert_eq!(
            brief(t0 + HOUR_MS),
            vec![("c1".into(), 0, None, 1), ("c1".into(), 0, bucket(0.0), 1)]
        );
        assert_eq!(s.rows(t0)[0].stats, Some((4.0, 1.0, 3.0)));
        assert_eq!(s.rows(t0)[1].stats, None);
        assert_eq!(hour_of(t0 + HOUR_MS - 1), t0);
        assert_eq!(hour_of(-1), -HOUR_MS);
    }
}
