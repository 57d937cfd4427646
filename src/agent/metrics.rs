//! The agent's own health, as Prometheus metrics: cycle timing, late
//! cycles, containers tracked, read errors by kind, files and bytes written,
//! retention deletions. The HTTP endpoint that serves them lives elsewhere
//! (issue #8); this struct only owns the values and registers them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Label set of `read_errors`: `kind` = `open` | `read` | `write` | `disk_full` | `index` | `retention`.
pub type KindLabel = Vec<(&'static str, &'static str)>;

/// Self-metrics of one agent. Cheap to clone (every metric is shared).
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    /// Seconds one collection cycle took (discovery, read, parse, buffer).
    pub cycle_duration: Histogram,
    pub cycles: Counter,
    /// Cycles that started after their tick was due by more than half an interval.
    pub late_cycles: Counter,
    pub containers: Gauge,
    pub errors: Family<KindLabel, Counter>,
    pub files_written: Counter,
    pub bytes_written: Counter,
    pub retention_deletions: Counter,
    /// Samples dropped because the disk stayed full for more than two rotations.
    pub samples_dropped: Counter,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> Self {
        Self {
            // 50 µs .. ~3 s.
            cycle_duration: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            cycles: Counter::default(),
            late_cycles: Counter::default(),
            containers: Gauge::default(),
            errors: Family::default(),
            files_written: Counter::default(),
            bytes_written: Counter::default(),
            retention_deletions: Counter::default(),
            samples_dropped: Counter::default(),
        }
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &'static str, n: u64) {
        if n > 0 {
            self.errors.get_or_create(&vec![("kind", kind)]).inc_by(n);
        }
    }

    /// Registers every metric under the `fgm_agent_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("fgm_agent");
        r.register_with_unit(
            "cycle_duration",
            "Duration of one collection cycle",
            Unit::Seconds,
            self.cycle_duration.clone(),
        );
        r.register("cycles", "Collection cycles run", self.cycles.clone());
        r.register(
            "late_cycles",
            "Cycles started more than half an interval after their tick",
            self.late_cycles.clone(),
        );
        r.register(
            "containers",
            "Containers tracked in the last cycle",
            self.containers.clone(),
        );
        r.register(
            "errors",
            "Errors by kind (open, read, write, disk_full, index, retention)",
            self.errors.clone(),
        );
        r.register(
            "files_written",
            "Parquet data files completed",
            self.files_written.clone(),
        );
        r.register_with_unit(
            "written",
            "Bytes of Parquet data files completed",
            Unit::Bytes,
            self.bytes_written.clone(),
        );
        r.register(
            "retention_deletions",
            "Data files removed by retention",
            self.retention_deletions.clone(),
        );
        r.register(
            "samples_dropped",
            "Samples dropped while the disk stayed full",
            self.samples_dropped.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_encodes() {
        let m = AgentMetrics::new();
        m.cycles.inc();
        m.error("read", 2);
        m.error("open", 0);
        m.cycle_duration.observe(0.001);
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("fgm_agent_cycles_total 1"), "{text}");
        assert!(
            text.contains("fgm_agent_errors_total{kind=\"read\"} 2"),
            "{text}"
        );
        assert!(!text.contains("kind=\"open\""), "{text}");
        assert!(
            text.contains("fgm_agent_cycle_duration_seconds_bucket"),
            "{text}"
        );
    }
}
