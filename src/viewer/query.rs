//! Pure parts of answering a query: parsing times, turning counters into
//! rates, downsampling that keeps peaks, and container search.

use chrono::{DateTime, TimeZone, Utc};

use crate::store::index::ContainerEntry;
use crate::store::reader::NULL_VALUE;

/// Parses a query time: milliseconds since the epoch, or RFC 3339.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A series ready to send: time in ms and value, `None` for a gap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    pub t: Vec<i64>,
    pub v: Vec<Option<f64>>,
}

impl Points {
    pub fn len(&self) -> usize {
        self.t.len()
    }
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
}

/// Gauge values as they are, nulls as gaps.
pub fn gauge_points(timestamps: &[i64], values: &[i64]) -> Points {
    Points {
        t: timestamps.to_vec(),
        v: values
            .iter()
            .map(|&v| (v != NULL_VALUE).then_some(v as f64))
            .collect(),
    }
}

/// Per-second rates of a raw counter, one per sample after the first. A
/// sample whose counter went down (container restarted, counter reset) or
/// whose neighbour is null gives a gap rather than a huge negative spike.
pub fn counter_rates(timestamps: &[i64], values: &[i64]) -> Points {
    let mut state = RateState::default();
    let mut out = Points::default();
    for (i, (&t, &v)) in timestamps.iter().zip(values).enumerate() {
        let rate = state.next(t, v);
        if i > 0 {
            out.t.push(t);
            out.v.push(rate);
        }
    }
    out
}

/// Keeps the points with `from <= t <= to` (input in time order).
pub fn clip(points: Points, from_ms: i64, to_ms: i64) -> Points {
    let start = points.t.partition_point(|&t| t < from_ms);
    let end = points.t.partition_point(|&t| t <= to_ms);
    Points {
        t: points.t[start..end].to_vec(),
        v: points.v[start..end].to_vec(),
    }
}

/// Reduces `points` (time order) to at most `max_points`; see [`Downsampler`].
pub fn downsample_min_max(points: &Points, from_ms: i64, to_ms: i64, max_points: usize) -> Points {
    let mut d = Downsampler::new(from_ms, to_ms, max_points);
    for (&t, &v) in points.t.iter().zip(&points.v) {
        d.push(t, v);
    }
    d.finish()
}

/// Streaming reduction to at most `max_points` points that keeps peaks.
///
/// `[from, to]` is split into `max_points / 2` equal buckets; each keeps its
/// minimum and maximum at their own times. A one-sample spike is the maximum
/// of its bucket, so it survives any reduction. A bucket holding only gaps
/// keeps one gap, so a stopped container still shows as a break. While no
/// more than `max_points` points arrived, they come back unchanged. Memory is
/// bounded by `max_points`, whatever the number of raw samples.
pub struct Downsampler {
    from_ms: i64,
    span: i64,
    max_points: usize,
    raw: Points,
    raw_count: usize,
    buckets: Vec<Bucket>,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    first_t: Option<i64>,
    min: Option<(i64, f64)>,
    max: Option<(i64, f64)>,
}

impl Downsampler {
    pub fn new(from_ms: i64, to_ms: i64, max_points: usize) -> Self {
        let max_points = max_points.max(2);
        Self {
            from_ms,
            span: (to_ms - from_ms).max(1),
            max_points,
            raw: Points::default(),
            raw_count: 0,
            buckets: vec![Bucket::default(); max_points / 2],
        }
    }

    /// Adds the next point (in time order).
    pub fn push(&mut self, t: i64, v: Option<f64>) {
        self.raw_count += 1;
        if self.raw_count <= self.max_points {
            self.raw.t.push(t);
            self.raw.v.push(v);
        } else if !self.raw.is_empty() {
            self.raw = Points::default();
        }
        let n = self.buckets.len() as i64;
        let offset = t.saturating_sub(self.from_ms).clamp(0, self.span - 1);
        // i64 suffices for any range the API allows (400 days x 5,000 buckets);
        // i128 (a library call per point) only beyond.
        let at = match offset.checked_mul(n) {
            Some(x) => x / self.span,
            None => (offset as i128 * n as i128 / self.span as i128) as i64,
        };
        let b = &mut self.buckets[at as usize];
        b.first_t.get_or_insert(t);
        if let Some(v) = v {
            if b.min.is_none_or(|(_, m)| v < m) {
                b.min = Some((t, v));
            }
            if b.max.is_none_or(|(_, m)| v > m) {
                b.max = Some((t, v));
            }
        }
    }

    /// Number of points pushed.
    pub fn raw_count(&self) -> usize {
        self.raw_count
    }

    pub fn finish(self) -> Points {
        if self.raw_count <= self.max_points {
            return self.raw;
        }
        let mut out = Points::default();
        for b in self.buckets {
            match (b.min, b.max, b.first_t) {
                (Some(a), Some(z), _) => {
                    let (first, second) = if a.0 <= z.0 { (a, z) } else { (z, a) };
                    out.t.push(first.0);
                    out.v.push(Some(first.1));
                    if second.0 != first.0 {
                        out.t.push(second.0);
                        out.v.push(Some(second.1));
                    }
                }
                (_, _, Some(t)) => {
                    out.t.push(t);
                    out.v.push(None);
                }
                _ => {}
            }
        }
        out
    }
}

/// A level that changes rarely (a limit) as the points where it changes:
/// each run of equal values keeps its first and last sample, so a line
/// drawn through them steps where the value changed.
#[derive(Debug, Default)]
pub struct Steps {
    points: Points,
    /// The latest sample of the current run, when it is not its first.
    run_end: Option<(i64, Option<f64>)>,
}

impl Steps {
    /// Adds the next sample (in time order).
    pub fn push(&mut self, t: i64, v: Option<f64>) {
        if self.points.v.last().is_some_and(|last| *last == v) {
            self.run_end = Some((t, v));
            return;
        }
        if let Some((t_end, v_end)) = self.run_end.take() {
            self.points.t.push(t_end);
            self.points.v.push(v_end);
        }
        self.points.t.push(t);
        self.points.v.push(v);
    }

    pub fn finish(mut self) -> Points {
        if let Some((t, v)) = self.run_end.take() {
            self.points.t.push(t);
            self.points.v.push(v);
        }
        self.points
    }
}

/// Turns a raw counter stream into per-second rates, one sample at a time
/// (the streaming twin of [`counter_rates`]).
#[derive(Debug, Default)]
pub struct RateState {
    last: Option<(i64, i64)>,
}

impl RateState {
    /// True once a sample was seen (the next one gets a rate).
    pub fn started(&self) -> bool {
        self.last.is_some()
    }

    /// The rate ending at this sample, `None` for the first sample, after a
    /// gap, or when the counter went down (restart, reset).
    pub fn next(&mut self, t: i64, v: i64) -> Option<f64> {
        let prev = self.last.replace((t, v));
        let (t0, v0) = prev?;
        if v0 == NULL_VALUE || v == NULL_VALUE || t <= t0 || v < v0 {
            return None;
        }
        Some((v - v0) as f64 * 1000.0 / (t - t0) as f64)
    }
}

/// True when every whitespace-separated term of `query` matches the
/// container: a `key=value` term matches a label exactly, any other term is a
/// case-insensitive substring of the pod, namespace, container name, id,
/// cgroup path or a label `key=value`.
pub fn container_matches(id: &str, entry: &ContainerEntry, query: &str) -> bool {
    let fields = [
        Some(id),
        entry.pod_name.as_deref(),
        entry.namespace.as_deref(),
        entry.container_name.as_deref(),
        entry.cgroup_path.as_deref(),
    ];
    query.split_whitespace().all(|term| {
        if let Some((key, value)) = term.split_once('=')
            && !key.is_empty()
        {
            return entry
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .is_some_and(|v| v == value);
        }
        let term = term.to_lowercase();
        fields
            .iter()
            .flatten()
            .any(|f| f.to_lowercase().contains(&term))
            || entry
                .labels
                .iter()
                .flatten()
                .any(|(k, v)| k.to_lowercase().contains(&term) || v.to_lowercase().contains(&term))
    })
}

/// A container id as the API accepts it: the characters ids are made of, so
/// nothing else can travel further.
pub fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        && id != "."
        && id != ".."
}

#[cfg(test)]
mod tests;
