//! What a chart of one metric keeps of a data file between requests: per
//! container, the metric's samples, and its limit lines as runs of equal
//! values (limits change rarely, so they cost a few entries rather than a
//! column of their own).

use std::ops::Range;

use crate::store::reader::{ContainerRows, MetricColumns, NULL_VALUE};
use crate::store::schema::{self, LimitLine};

/// The columns a chart of `metric` reads from each file: the metric, then
/// the columns of each of its limit lines in [`schema::limit_lines`] order.
pub fn columns(metric: &str) -> Vec<&str> {
    let mut columns = vec![metric];
    for line in schema::limit_lines(metric) {
        columns.extend(line.columns());
    }
    columns
}

/// A run of rows sharing one limit value: (first row, value in the chart's unit).
pub type Run = (u32, Option<f64>);

/// One container's rows of a chart (borrowed from [`ChartColumns`]).
#[derive(Debug, Clone, Copy)]
pub struct ChartRows<'a> {
    pub timestamps: &'a [i64],
    /// Raw metric values ([`NULL_VALUE`] for none).
    pub values: &'a [i64],
    /// Per limit line of the metric, its runs in row order (rows of this container).
    pub limits: &'a [Vec<Run>],
}

impl ChartRows<'_> {
    /// The limit `line` as (time, value) steps over rows `first..end`: each
    /// run's first and last row inside.
    pub fn limit_steps(&self, line: usize, first: usize, end: usize) -> Vec<(i64, Option<f64>)> {
        let Some(runs) = self.limits.get(line) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, &(start, value)) in runs.iter().enumerate() {
            let run_end = runs
                .get(i + 1)
                .map_or(self.timestamps.len(), |r| r.0 as usize);
            let (a, b) = ((start as usize).max(first), run_end.min(end));
            if a < b {
                out.push((self.timestamps[a], value));
                out.push((self.timestamps[b - 1], value));
            }
        }
        out
    }
}

/// One file's columns for a chart: the metric's whole column, and per
/// container (sorted by id) its rows and its limits as runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartColumns {
    /// Whether the file has the metric at all (older files may not).
    pub present: bool,
    timestamps: Vec<i64>,
    values: Vec<i64>,
    series: Vec<(String, Range<usize>, Vec<Vec<Run>>)>,
}

impl ChartColumns {
    /// From the columns read by [`columns`] for `metric`.
    pub fn new(metric: &str, mut read: MetricColumns) -> Self {
        let lines = schema::limit_lines(metric);
        let series = read
            .series
            .iter()
            .map(|(id, range)| {
                let rows = read.get(id);
                let mut offset = 1;
                let limits = lines
                    .iter()
                    .map(|line| {
                        let runs = rows.map(|r| runs(line, &r, offset)).unwrap_or_default();
                        offset += line.columns().len();
                        runs
                    })
                    .collect();
                (id.clone(), range.clone(), limits)
            })
            .collect();
        let values = if read.values.is_empty() {
            Vec::new()
        } else {
            read.values.swap_remove(0)
        };
        Self {
            present: read.present.first().copied().unwrap_or(false),
            timestamps: std::mem::take(&mut read.timestamps),
            values,
            series,
        }
    }

    pub fn get(&self, container: &str) -> Option<ChartRows<'_>> {
        self.series
            .binary_search_by(|(id, _, _)| id.as_str().cmp(container))
            .ok()
            .map(|i| {
                let (_, range, limits) = &self.series[i];
                ChartRows {
                    timestamps: &self.timestamps[range.clone()],
                    values: self.values.get(range.clone()).unwrap_or(&[]),
                    limits,
                }
            })
    }

    /// Approximate heap size, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.timestamps.len() * 16
            + self
                .series
                .iter()
                .map(|(id, _, limits)| {
                    id.len() + 96 + limits.iter().map(|l| 24 + l.len() * 24).sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// The runs of the limit `line`, whose columns start at `offset` in `rows`.
fn runs(line: &LimitLine, rows: &ContainerRows, offset: usize) -> Vec<Run> {
    // The columns' slices once, not per row: this runs for every row of every file read.
    let (first, second) = (rows.values(offset), rows.values(offset + 1));
    let raw = |column: &[i64], row: usize| column.get(row).copied().filter(|&v| v != NULL_VALUE);
    let mut out: Vec<Run> = Vec::new();
    let mut last: Option<(i64, i64)> = None;
    for row in 0..rows.len() {
        // Limits change rarely: a row with the raw values of the one before adds nothing.
        let key = (
            first.get(row).copied().unwrap_or(NULL_VALUE),
            second.get(row).copied().unwrap_or(NULL_VALUE),
        );
        if last == Some(key) {
            continue;
        }
        last = Some(key);
        let value = match line {
            LimitLine::Column { .. } => raw(first, row).map(|v| v as f64),
            LimitLine::CpuQuota => match (raw(first, row), raw(second, row)) {
                (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
                _ => None,
            },
        };
        if out.last().is_none_or(|last| last.1 != value) {
            out.push((u32::try_from(row).unwrap_or(u32::MAX), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_runs_and_steps() {
        // CPU usage with a quota of 2 cores, lifted (unlimited) at row 3.
        let read = MetricColumns {
            present: vec![true, true, true],
            timestamps: vec![10, 20, 30, 40, 50],
            values: vec![
                vec![1, 2, 3, 4, 5],
                vec![200_000, 200_000, 200_000, NULL_VALUE, NULL_VALUE],
                vec![100_000; 5],
            ],
            series: vec![("a".into(), 0..5)],
        };
        let chart = ChartColumns::new("cpu_usage_usec", read);
        let a = chart.get("a").unwrap();
        assert_eq!(a.values, vec![1, 2, 3, 4, 5]);
        assert_eq!(a.limits, vec![vec![(0, Some(2.0)), (3, None)]]);
        assert_eq!(
            a.limit_steps(0, 1, 5),
            vec![(20, Some(2.0)), (30, Some(2.0)), (40, None), (50, None)]
        );
        assert_eq!(a.limit_steps(0, 4, 5), vec![(50, None), (50, None)]);
        assert!(chart.present);
    }
}
