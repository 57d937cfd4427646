//! Rates from consecutive samples of one container (pure): the columns of
//! the `rates` dataset and how each comes from the raw counters and gauges.
//!
//! A row's rates cover the interval from the container's previous sample to
//! this one. A counter that went down (reset) or whose neighbour is null
//! gives null, never a negative value or a spike; a container's first sample
//! has no rates. The SQL of `examples/queries/duckdb/fgm_rates.sql` derives
//! the same columns with the same arithmetic from raw files compaction has
//! not reached yet.

use crate::store::schema::metric_index;

/// How a column comes from the raw metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Counter in µs over elapsed µs: cores, or stalled/throttled time per second.
    UsecPerUsec(&'static str),
    /// Counter per second (bytes/s, ops/s).
    PerSecond(&'static str),
    /// Increase of one counter over the increase of another (null when the
    /// second did not grow).
    DeltaRatio(&'static str, &'static str),
    /// Increase of a counter in the interval (events).
    Delta(&'static str),
    /// A gauge as read.
    Gauge(&'static str),
    /// One gauge over another (null unless both are set and the second is positive).
    GaugeRatio(&'static str, &'static str),
}

impl Source {
    /// True for Float64 columns, false for Int64.
    pub fn is_float(self) -> bool {
        !matches!(self, Source::Delta(_) | Source::Gauge(_))
    }

    /// The raw metric columns it reads.
    pub fn inputs(self) -> Vec<&'static str> {
        match self {
            Source::UsecPerUsec(a) | Source::PerSecond(a) | Source::Delta(a) | Source::Gauge(a) => {
                vec![a]
            }
            Source::DeltaRatio(a, b) | Source::GaugeRatio(a, b) => vec![a, b],
        }
    }
}

/// One value column of the rates dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateColumn {
    pub name: &'static str,
    /// `cores`, `share`, `seconds/s`, `bytes/s`, `ops/s`, `count`, `bytes`.
    pub unit: &'static str,
    pub source: Source,
}

const fn col(name: &'static str, unit: &'static str, source: Source) -> RateColumn {
    RateColumn { name, unit, source }
}

use Source::*;

/// The value columns, in file order (after `timestamp`, `container_id`, `interval_ms`).
/// Appending is safe; renaming breaks queries.
pub const RATE_COLUMNS: &[RateColumn] = &[
    col("cpu_cores", "cores", UsecPerUsec("cpu_usage_usec")),
    col("cpu_user_cores", "cores", UsecPerUsec("cpu_user_usec")),
    col("cpu_system_cores", "cores", UsecPerUsec("cpu_system_usec")),
    col(
        "cpu_throttled_share",
        "share",
        DeltaRatio("cpu_nr_throttled", "cpu_nr_periods"),
    ),
    col(
        "cpu_throttled_seconds_per_s",
        "seconds/s",
        UsecPerUsec("cpu_throttled_usec"),
    ),
    col("io_read_bytes_per_s", "bytes/s", PerSecond("io_read_bytes")),
    col(
        "io_write_bytes_per_s",
        "bytes/s",
        PerSecond("io_write_bytes"),
    ),
    col("io_read_ops_per_s", "ops/s", PerSecond("io_read_ops")),
    col("io_write_ops_per_s", "ops/s", PerSecond("io_write_ops")),
    col(
        "cpu_pressure_some_share",
        "share",
        UsecPerUsec("cpu_pressure_some_usec"),
    ),
    col(
        "cpu_pressure_full_share",
        "share",
        UsecPerUsec("cpu_pressure_full_usec"),
    ),
    col(
        "memory_pressure_some_share",
        "share",
        UsecPerUsec("memory_pressure_some_usec"),
    ),
    col(
        "memory_pressure_full_share",
        "share",
        UsecPerUsec("memory_pressure_full_usec"),
    ),
    col(
        "io_pressure_some_share",
        "share",
        UsecPerUsec("io_pressure_some_usec"),
    ),
    col(
        "io_pressure_full_share",
        "share",
        UsecPerUsec("io_pressure_full_usec"),
    ),
    col("oom_events", "count", Delta("memory_oom_events")),
    col("oom_kill_events", "count", Delta("memory_oom_kill_events")),
    col(
        "memory_current_bytes",
        "bytes",
        Gauge("memory_current_bytes"),
    ),
    col(
        "memory_working_set_bytes",
        "bytes",
        Gauge("memory_working_set_bytes"),
    ),
    col("memory_anon_bytes", "bytes", Gauge("memory_anon_bytes")),
    col("memory_file_bytes", "bytes", Gauge("memory_file_bytes")),
    col("memory_swap_bytes", "bytes", Gauge("memory_swap_bytes")),
    col("memory_limit_bytes", "bytes", Gauge("memory_limit_bytes")),
    col("pids_current", "count", Gauge("pids_current")),
    col("pids_processes", "count", Gauge("pids_processes")),
    col(
        "cpu_limit_cores",
        "cores",
        GaugeRatio("cpu_quota_usec", "cpu_period_usec"),
    ),
];

/// The raw metric columns the rates read, each once, in a fixed order: a
/// [`Sample`]'s values are in this order.
pub fn inputs() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for c in RATE_COLUMNS {
        for name in c.source.inputs() {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    debug_assert!(out.iter().all(|n| metric_index(n).is_some()), "{out:?}");
    out
}

/// A column's source with its inputs resolved to positions in [`inputs`].
#[derive(Debug, Clone, Copy)]
pub enum Resolved {
    UsecPerUsec(usize),
    PerSecond(usize),
    DeltaRatio(usize, usize),
    Delta(usize),
    Gauge(usize),
    GaugeRatio(usize, usize),
}

/// [`RATE_COLUMNS`] resolved against [`inputs`].
pub fn resolve() -> Vec<Resolved> {
    let inputs = inputs();
    let at = |n: &str| inputs.iter().position(|i| *i == n).unwrap_or(0);
    RATE_COLUMNS
        .iter()
        .map(|c| match c.source {
            UsecPerUsec(a) => Resolved::UsecPerUsec(at(a)),
            PerSecond(a) => Resolved::PerSecond(at(a)),
            DeltaRatio(a, b) => Resolved::DeltaRatio(at(a), at(b)),
            Delta(a) => Resolved::Delta(at(a)),
            Gauge(a) => Resolved::Gauge(at(a)),
            GaugeRatio(a, b) => Resolved::GaugeRatio(at(a), at(b)),
        })
        .collect()
}

/// One raw sample of a container: time (ms) and the [`inputs`] values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub t_ms: i64,
    pub values: Vec<Option<i64>>,
}

/// A derived value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Float(Option<f64>),
    Int(Option<i64>),
}

impl Value {
    /// As a double (for summaries), when set.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Float(v) => v,
            Value::Int(v) => v.map(|v| v as f64),
        }
    }
}

/// Increase of a counter: null when either side is null or it went down.
pub fn delta(prev: Option<i64>, cur: Option<i64>) -> Option<i64> {
    match (prev, cur) {
        (Some(p), Some(c)) if c >= p => Some(c - p),
        _ => None,
    }
}

/// Length of the interval ending at `cur`: `None` without a previous sample
/// or when time did not advance (a duplicate timestamp gives no rate).
pub fn interval_ms(prev: Option<&Sample>, cur: &Sample) -> Option<i64> {
    let dt = cur.t_ms - prev?.t_ms;
    (dt > 0).then_some(dt)
}

/// The value of column `source` for the interval `prev..cur`. The arithmetic
/// is the SQL's, operation for operation, so both give the same doubles.
pub fn value(source: Resolved, prev: Option<&Sample>, cur: &Sample) -> Value {
    let dt = interval_ms(prev, cur);
    let d = |i: usize| match (prev, dt) {
        (Some(p), Some(_)) => delta(p.values[i], cur.values[i]),
        _ => None,
    };
    match source {
        Resolved::UsecPerUsec(i) => {
            Value::Float(d(i).zip(dt).map(|(d, dt)| d as f64 / (dt as f64 * 1000.0)))
        }
        Resolved::PerSecond(i) => {
            Value::Float(d(i).zip(dt).map(|(d, dt)| d as f64 * 1000.0 / dt as f64))
        }
        Resolved::DeltaRatio(a, b) => Value::Float(match (d(a), d(b)) {
            (Some(n), Some(m)) if m > 0 => Some(n as f64 / m as f64),
            _ => None,
        }),
        Resolved::Delta(i) => Value::Int(d(i)),
        Resolved::Gauge(i) => Value::Int(cur.values[i]),
        Resolved::GaugeRatio(a, b) => Value::Float(match (cur.values[a], cur.values[b]) {
            (Some(n), Some(m)) if m > 0 => Some(n as f64 / m as f64),
            _ => None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: i64, set: &[(&str, i64)]) -> Sample {
        let names = inputs();
        let mut values = vec![None; names.len()];
        for (n, v) in set {
            let i = names.iter().position(|x| x == n).unwrap();
            values[i] = Some(*v);
        }
        Sample { t_ms, values }
    }

    fn get(name: &str, prev: Option<&Sample>, cur: &Sample) -> Value {
        let i = RATE_COLUMNS.iter().position(|c| c.name == name).unwrap();
        value(resolve()[i], prev, cur)
    }

    #[test]
    fn counters_become_rates_over_the_interval() {
        let a = sample(
            1_000,
            &[
                ("cpu_usage_usec", 5_000_000),
                ("cpu_nr_periods", 100),
                ("cpu_nr_throttled", 10),
                ("io_read_bytes", 4096),
                ("memory_oom_kill_events", 1),
                ("cpu_pressure_some_usec", 0),
            ],
        );
        let b = sample(
            3_000,
            &[
                ("cpu_usage_usec", 8_000_000),
                ("cpu_nr_periods", 120),
                ("cpu_nr_throttled", 15),
                ("io_read_bytes", 4096 + 8192),
                ("memory_oom_kill_events", 3),
                ("cpu_pressure_some_usec", 500_000),
                ("memory_working_set_bytes", 77),
                ("cpu_quota_usec", 50_000),
                ("cpu_period_usec", 100_000),
            ],
        );
        // 3 s of CPU over 2 s: 1.5 cores.
        assert_eq!(get("cpu_cores", Some(&a), &b), Value::Float(Some(1.5)));
        assert_eq!(
            get("cpu_throttled_share", Some(&a), &b),
            Value::Float(Some(0.25))
        );
        assert_eq!(
            get("io_read_bytes_per_s", Some(&a), &b),
            Value::Float(Some(4096.0))
        );
        assert_eq!(get("oom_kill_events", Some(&a), &b), Value::Int(Some(2)));
        assert_eq!(
            get("cpu_pressure_some_share", Some(&a), &b),
            Value::Float(Some(0.25))
        );
        assert_eq!(
            get("memory_working_set_bytes", Some(&a), &b),
            Value::Int(Some(77))
        );
        assert_eq!(
            get("cpu_limit_cores", Some(&a), &b),
            Value::Float(Some(0.5))
        );
        assert_eq!(interval_ms(Some(&a), &b), Some(2000));
    }

    #[test]
    fn resets_nulls_first_samples_and_stalled_clocks_give_null() {
        let a = sample(
            1_000,
            &[("cpu_usage_usec", 9_000_000), ("memory_anon_bytes", 5)],
        );
        let reset = sample(2_000, &[("cpu_usage_usec", 100), ("memory_anon_bytes", 6)]);
        assert_eq!(get("cpu_cores", Some(&a), &reset), Value::Float(None));
        // The gauge is still there.
        assert_eq!(
            get("memory_anon_bytes", Some(&a), &reset),
            Value::Int(Some(6))
        );
        // First sample: no rate, gauges as read.
        assert_eq!(get("cpu_cores", None, &a), Value::Float(None));
        assert_eq!(get("memory_anon_bytes", None, &a), Value::Int(Some(5)));
        // Neighbour null.
        let hole = sample(3_000, &[]);
        assert_eq!(get("cpu_cores", Some(&reset), &hole), Value::Float(None));
        assert_eq!(get("cpu_cores", Some(&hole), &reset), Value::Float(None));
        // Same timestamp twice.
        let again = sample(1_000, &[("cpu_usage_usec", 9_500_000)]);
        assert_eq!(get("cpu_cores", Some(&a), &again), Value::Float(None));
        assert_eq!(interval_ms(Some(&a), &again), None);
        // Periods that did not advance: no share.
        let p1 = sample(0, &[("cpu_nr_periods", 7), ("cpu_nr_throttled", 1)]);
        let p2 = sample(1_000, &[("cpu_nr_periods", 7), ("cpu_nr_throttled", 1)]);
        assert_eq!(
            get("cpu_throttled_share", Some(&p1), &p2),
            Value::Float(None)
        );
        // No limit: no cpu_limit_cores.
        assert_eq!(
            get(
                "cpu_limit_cores",
                None,
                &sample(0, &[("cpu_period_usec", 100_000)])
            ),
            Value::Float(None)
        );
    }

    #[test]
    fn every_input_is_a_raw_metric_of_the_right_kind() {
        use crate::store::schema::{METRICS, MetricKind};
        for c in RATE_COLUMNS {
            let kind = match c.source {
                Gauge(_) | GaugeRatio(..) => MetricKind::Gauge,
                _ => MetricKind::Counter,
            };
            for input in c.source.inputs() {
                let m = METRICS.iter().find(|m| m.name == input).unwrap();
                assert_eq!(m.kind, kind, "{} reads {input}", c.name);
            }
        }
    }
}
