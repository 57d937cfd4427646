//! Studies of one container's metric over a range, on its raw per-second
//! values (rates for counters): periodicity (autocorrelation) and
//! changepoints (level shifts). The analysis is pure ([`periodicity`],
//! [`changepoints`]); this module reads the samples and puts them on an even
//! time grid first.

pub mod changepoints;
pub mod fft;
pub mod periodicity;
#[cfg(test)]
mod testdata;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::files::{SkippedFile, for_each_file};
use super::query::RateState;
use super::state::Viewer;
use crate::store::reader::NULL_VALUE;
use crate::store::schema::{ColumnInfo, MetricKind};

/// Longest range a study covers.
pub const MAX_DAYS: i64 = 14;
/// Most samples a study reads (14 days at one a second, with room).
pub const MAX_SAMPLES: usize = 1_500_000;
/// Most changepoints reported.
pub const MAX_CHANGES: usize = 10;
/// Most period markers drawn.
const MAX_MARKERS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Periodicity,
    Changepoints,
}

impl Kind {
    pub const NAMES: [&'static str; 2] = ["periodicity", "changepoints"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "periodicity" => Some(Kind::Periodicity),
            "changepoints" => Some(Kind::Changepoints),
            _ => None,
        }
    }
}

/// One validated study request.
#[derive(Debug, Clone)]
pub struct StudyRequest {
    pub kind: Kind,
    pub container: String,
    pub metric: ColumnInfo,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a study could not run.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("the range holds more than {MAX_SAMPLES} samples of this container: narrow it")]
    TooManySamples,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Sample times (ms), values, and the files that could not be read.
type Samples = (Vec<i64>, Vec<f64>, Vec<SkippedFile>);

/// The container's values of the metric in the range, in the display unit
/// (rates for counters), and the files that could not be read.
fn samples(viewer: &Viewer, req: &StudyRequest) -> Result<Samples, StudyError> {
    let files = viewer.files_for_range(req.from, req.to)?;
    let (_, divisor) = req.metric.display_unit();
    let counter = req.metric.kind == MetricKind::Counter;
    let (from_ms, to_ms) = (req.from.timestamp_millis(), req.to.timestamp_millis());
    let mut rate = RateState::default();
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let mut too_many = false;
    let skipped = for_each_file(
        viewer,
        &files,
        4,
        |f| viewer.chart_columns(f, &req.metric.name),
        |_, column| {
            let Some(rows) = column.get(&req.container) else {
                return;
            };
            for (&t, &raw) in rows.timestamps.iter().zip(rows.values) {
                let value = if counter {
                    rate.next(t, raw)
                } else {
                    (raw != NULL_VALUE).then_some(raw as f64)
                };
                if let Some(v) = value.filter(|_| t >= from_ms && t <= to_ms) {
                    if ts.len() >= MAX_SAMPLES {
                        too_many = true;
                        return;
                    }
                    ts.push(t);
                    vs.push(v / divisor);
                }
            }
        },
    );
    if too_many {
        return Err(StudyError::TooManySamples);
    }
    Ok((ts, vs, skipped))
}

/// The usual time between samples: the median step, in ms (at least 1).
fn median_step(ts: &[i64]) -> i64 {
    let mut steps: Vec<i64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    if steps.is_empty() {
        return 1000;
    }
    let mid = (steps.len() - 1) / 2;
    (*steps.select_nth_unstable(mid).1).max(1)
}

/// `(ts, vs)` on an even grid of `step` ms from the first sample: each sample
/// at its nearest grid point, gaps filled by straight lines between samples.
pub fn regular(ts: &[i64], vs: &[f64], step: i64) -> Vec<f64> {
    let (Some(&t0), Some(&last)) = (ts.first(), ts.last()) else {
        return Vec::new();
    };
    let n = ((last - t0) / step + 1) as usize;
    let mut grid: Vec<Option<f64>> = vec![None; n];
    for (&t, &v) in ts.iter().zip(vs) {
        let at = (((t - t0) as f64 / step as f64).round() as usize).min(n - 1);
        grid[at] = Some(v);
    }
    let mut out = Vec::with_capacity(n);
    let mut previous: Option<(usize, f64)> = None;
    let mut i = 0;
    while i < n {
        match grid[i] {
            Some(v) => {
                out.push(v);
                previous = Some((i, v));
                i += 1;
            }
            None => {
                let next = (i..n).find_map(|j| grid[j].map(|v| (j, v)));
                let (pi, pv) = previous.unwrap_or((i, next.map_or(0.0, |n| n.1)));
                let (ni, nv) = next.unwrap_or((n, pv));
                for k in i..ni.min(n) {
                    let f = (k - pi) as f64 / (ni - pi).max(1) as f64;
                    out.push(pv + (nv - pv) * f);
                }
                i = ni;
            }
        }
    }
    out
}

/// Runs a study (blocking: call from the blocking pool).
pub fn query(viewer: &Viewer, req: &StudyRequest) -> Result<Value, StudyError> {
    let (ts, vs, skipped) = samples(viewer, req)?;
    let step = median_step(&ts);
    let (display_unit, _) = req.metric.display_unit();
    let result = match req.kind {
        Kind::Periodicity => {
            let grid = regular(&ts, &vs, step);
            match periodicity::periodicity(&grid) {
                None => json!({ "periodic": false, "period_seconds": null, "strength": 0.0 }),
                Some(p) => {
                    let period_ms = p.period * step as f64;
                    let first = ts[0] as f64 + p.phase as f64 * step as f64;
                    let peaks: Vec<i64> = (0..)
                        .map(|k| (first + k as f64 * period_ms).round() as i64)
                        .take_while(|t| *t <= ts[ts.len() - 1])
                        .take(MAX_MARKERS)
                        .collect();
                    json!({
                        "periodic": p.periodic,
                        "period_seconds": period_ms / 1000.0,
                        "strength": p.strength,
                        "min_strength": periodicity::MIN_STRENGTH,
                        "peaks": peaks,
                    })
                }
            }
        }
        Kind::Changepoints => {
            let c = changepoints::changepoints(&vs, MAX_CHANGES);
            json!({
                "noise": c.noise,
                "changes": c.changes.iter().map(|ch| json!({
                    "time": ts[ch.index],
                    "before": ch.before,
                    "after": ch.after,
                    "shift": ch.after - ch.before,
                })).collect::<Vec<_>>(),
                "segments": c.segments.iter().map(|s| json!({
                    "from": ts[s.start],
                    "to": ts[s.end - 1],
                    "mean": s.mean,
                })).collect::<Vec<_>>(),
            })
        }
    };
    Ok(json!({
        "kind": Kind::NAMES[req.kind as usize],
        "container": req.container,
        "metric": req.metric.name,
        "title": req.metric.title(),
        "display_unit": display_unit,
        "from": req.from,
        "to": req.to,
        "samples": ts.len(),
        "step_ms": step,
        "result": result,
        "skipped_files": skipped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_filled_on_an_even_grid() {
        let ts = [0, 1000, 2010, 5000, 6000];
        let vs = [1.0, 2.0, 3.0, 6.0, 7.0];
        assert_eq!(median_step(&ts), 1000);
        assert_eq!(
            regular(&ts, &vs, 1000),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        assert!(regular(&[], &[], 1000).is_empty());
    }
}
