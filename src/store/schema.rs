//! The Parquet schema of a data file: `timestamp`, `container_id`, then one
//! nullable Int64 column per metric.
//!
//! Each metric column carries Arrow field metadata `fgm.kind` (`counter` or
//! `gauge`) and `fgm.unit`, so readers learn from the file itself which
//! columns to turn into rates; nothing downstream hard-codes this list.
//! Counters are stored raw as the kernel reports them. A value the kernel does
//! not provide is null, never zero.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

pub const TIMESTAMP: &str = "timestamp";
pub const CONTAINER_ID: &str = "container_id";
/// Field metadata key: `counter` or `gauge`.
pub const KIND_KEY: &str = "fgm.kind";
/// Field metadata key: unit of the raw value.
pub const UNIT_KEY: &str = "fgm.unit";
/// File metadata key: version of this column layout.
pub const FORMAT_VERSION_KEY: &str = "fgm.format_version";
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic total; readers derive a per-second rate.
    Counter,
    /// Level as read.
    Gauge,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "counter" => Some(MetricKind::Counter),
            "gauge" => Some(MetricKind::Gauge),
            _ => None,
        }
    }
}

/// One metric column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    /// `usec`, `bytes` or `count`.
    pub unit: &'static str,
    pub help: &'static str,
}

const fn counter(name: &'static str, unit: &'static str, help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Counter,
        unit,
        help,
    }
}

const fn gauge(name: &'static str, unit: &'static str, help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Gauge,
        unit,
        help,
    }
}

/// Every metric the agent records, in column order. Appending is safe (old
/// files simply lack the column); renaming or removing breaks readers' history.
pub const METRICS: &[MetricDef] = &[
    counter("cpu_usage_usec", "usec", "CPU time consumed"),
    counter("cpu_user_usec", "usec", "CPU time in user mode"),
    counter("cpu_system_usec", "usec", "CPU time in kernel mode"),
    counter("cpu_nr_periods", "count", "CFS enforcement periods elapsed"),
    counter(
        "cpu_nr_throttled",
        "count",
        "CFS periods in which the cgroup was throttled",
    ),
    counter("cpu_throttled_usec", "usec", "Time spent throttled"),
    gauge(
        "memory_current_bytes",
        "bytes",
        "Memory charged to the cgroup",
    ),
    gauge(
        "memory_working_set_bytes",
        "bytes",
        "Memory current minus inactive file cache",
    ),
    gauge("memory_anon_bytes", "bytes", "Anonymous memory (RSS)"),
    gauge("memory_file_bytes", "bytes", "Page cache"),
    gauge(
        "memory_limit_bytes",
        "bytes",
        "Memory limit (null when unlimited)",
    ),
    counter(
        "memory_oom_events",
        "count",
        "Times the memory limit was hit (OOM)",
    ),
    counter(
        "memory_oom_kill_events",
        "count",
        "Processes killed by the OOM killer",
    ),
    gauge(
        "pids_current",
        "count",
        "Tasks (processes and threads) in the cgroup",
    ),
    counter("io_read_bytes", "bytes", "Bytes read from block devices"),
    counter("io_write_bytes", "bytes", "Bytes written to block devices"),
    counter("io_read_ops", "count", "Read operations on block devices"),
    counter("io_write_ops", "count", "Write operations on block devices"),
    counter(
        "cpu_pressure_some_usec",
        "usec",
        "Time some tasks stalled on CPU (PSI)",
    ),
    counter(
        "cpu_pressure_full_usec",
        "usec",
        "Time all tasks stalled on CPU (PSI)",
    ),
    counter(
        "memory_pressure_some_usec",
        "usec",
        "Time some tasks stalled on memory (PSI)",
    ),
    counter(
        "memory_pressure_full_usec",
        "usec",
        "Time all tasks stalled on memory (PSI)",
    ),
    counter(
        "io_pressure_some_usec",
        "usec",
        "Time some tasks stalled on IO (PSI)",
    ),
    counter(
        "io_pressure_full_usec",
        "usec",
        "Time all tasks stalled on IO (PSI)",
    ),
    gauge(
        "pids_processes",
        "count",
        "Processes (thread-group leaders) in the cgroup",
    ),
    // Added with the peers benchmark (issue #9): the rest of memory.stat,
    // burst and discard counters, v2 memory events, and the cgroup's limits.
    gauge(
        "memory_shmem_bytes",
        "bytes",
        "Shared memory and tmpfs pages",
    ),
    gauge(
        "memory_mapped_file_bytes",
        "bytes",
        "Page cache mapped into processes",
    ),
    gauge(
        "memory_dirty_bytes",
        "bytes",
        "Page cache waiting to be written back",
    ),
    gauge(
        "memory_writeback_bytes",
        "bytes",
        "Page cache being written back",
    ),
    gauge("memory_swap_bytes", "bytes", "Swap used"),
    gauge(
        "memory_active_anon_bytes",
        "bytes",
        "Anonymous memory on the active LRU list",
    ),
    gauge(
        "memory_inactive_anon_bytes",
        "bytes",
        "Anonymous memory on the inactive LRU list",
    ),
    gauge(
        "memory_active_file_bytes",
        "bytes",
        "Page cache on the active LRU list",
    ),
    gauge(
        "memory_inactive_file_bytes",
        "bytes",
        "Page cache on the inactive LRU list (reclaimable first)",
    ),
    gauge(
        "memory_unevictable_bytes",
        "bytes",
        "Memory that cannot be reclaimed (mlocked, ramfs)",
    ),
    gauge(
        "memory_anon_thp_bytes",
        "bytes",
        "Anonymous memory backed by transparent huge pages",
    ),
    gauge(
        "memory_kernel_bytes",
        "bytes",
        "Kernel memory charged to the cgroup (v2)",
    ),
    gauge(
        "memory_kernel_stack_bytes",
        "bytes",
        "Kernel stacks of the cgroup's tasks (v2)",
    ),
    gauge(
        "memory_pagetables_bytes",
        "bytes",
        "Page tables of the cgroup's processes (v2)",
    ),
    gauge(
        "memory_slab_bytes",
        "bytes",
        "Kernel slab objects (dentries, inodes, ...) charged to the cgroup (v2)",
    ),
    gauge("memory_sock_bytes", "bytes", "Network socket buffers (v2)"),
    counter("memory_pgfault", "count", "Page faults"),
    counter(
        "memory_pgmajfault",
        "count",
        "Major page faults (read from disk or swap)",
    ),
    counter(
        "memory_workingset_refault_anon",
        "count",
        "Evicted anonymous pages faulted back in (thrashing)",
    ),
    counter(
        "memory_workingset_refault_file",
        "count",
        "Evicted page cache faulted back in (thrashing)",
    ),
    counter("memory_pgscan", "count", "Pages scanned by reclaim (v2)"),
    counter("memory_pgsteal", "count", "Pages reclaimed (v2)"),
    counter("memory_pgpgin", "count", "Pages charged to the cgroup (v1)"),
    counter(
        "memory_pgpgout",
        "count",
        "Pages uncharged from the cgroup (v1)",
    ),
    counter(
        "memory_high_events",
        "count",
        "Times usage went over memory.high and was throttled (v2)",
    ),
    counter(
        "memory_max_events",
        "count",
        "Times usage was about to go over the memory limit (v2)",
    ),
    counter(
        "cpu_nr_bursts",
        "count",
        "CFS periods in which the cgroup used its burst allowance",
    ),
    counter(
        "cpu_burst_usec",
        "usec",
        "CPU time used beyond the quota from the burst allowance",
    ),
    counter(
        "io_discard_bytes",
        "bytes",
        "Bytes discarded (TRIM) on block devices",
    ),
    counter(
        "io_discard_ops",
        "count",
        "Discard operations on block devices",
    ),
    gauge(
        "memory_peak_bytes",
        "bytes",
        "Highest memory usage since the cgroup was created (refreshed at each rescan)",
    ),
    gauge(
        "memory_high_bytes",
        "bytes",
        "memory.high throttling threshold, null when unset (v2; refreshed at each rescan)",
    ),
    gauge(
        "cpu_quota_usec",
        "usec",
        "CFS quota per period, null when unlimited (refreshed at each rescan)",
    ),
    gauge(
        "cpu_period_usec",
        "usec",
        "CFS enforcement period (refreshed at each rescan)",
    ),
    gauge(
        "cpu_shares",
        "count",
        "CPU shares, the v1 weight (v1; refreshed at each rescan)",
    ),
    gauge(
        "cpu_weight",
        "count",
        "CPU weight, 1 to 10000 (v2; refreshed at each rescan)",
    ),
    gauge(
        "pids_max",
        "count",
        "Task limit, null when unlimited (refreshed at each rescan)",
    ),
    gauge(
        "pids_peak",
        "count",
        "Highest task count since the cgroup was created (refreshed at each rescan)",
    ),
];

/// Position of a metric in [`METRICS`] (and in a sample's value slice).
pub fn metric_index(name: &str) -> Option<usize> {
    METRICS.iter().position(|m| m.name == name)
}

/// The Arrow schema written to every data file.
pub fn arrow_schema() -> Arc<Schema> {
    let mut fields = Vec::with_capacity(METRICS.len() + 2);
    fields.push(Field::new(
        TIMESTAMP,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    ));
    fields.push(Field::new(CONTAINER_ID, DataType::Utf8, false));
    for m in METRICS {
        let metadata = HashMap::from([
            (KIND_KEY.to_string(), m.kind.as_str().to_string()),
            (UNIT_KEY.to_string(), m.unit.to_string()),
        ]);
        fields.push(Field::new(m.name, DataType::Int64, true).with_metadata(metadata));
    }
    Arc::new(Schema::new(fields))
}

/// What a reader learns about one metric column from a file's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub kind: MetricKind,
    pub unit: String,
}

/// The metric columns of a file's schema, from field metadata. Columns
/// without `fgm.kind` metadata (files from other writers) count as gauges.
pub fn metric_columns(schema: &Schema) -> Vec<ColumnInfo> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != TIMESTAMP && f.name() != CONTAINER_ID)
        .filter(|f| {
            matches!(
                f.data_type(),
                DataType::Int64 | DataType::UInt64 | DataType::Float64
            )
        })
        .map(|f| ColumnInfo {
            name: f.name().clone(),
            kind: f
                .metadata()
                .get(KIND_KEY)
                .and_then(|k| MetricKind::parse(k))
                .unwrap_or(MetricKind::Gauge),
            unit: f.metadata().get(UNIT_KEY).cloned().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "duplicate {}", m.name);
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }

    #[test]
    fn schema_round_trips_kinds() {
        let cols = metric_columns(&arrow_schema());
        assert_eq!(cols.len(), METRICS.len());
        let cpu = &cols[metric_index("cpu_usage_usec").unwrap()];
        assert_eq!(cpu.kind, MetricKind::Counter);
        assert_eq!(cpu.unit, "usec");
        let mem = &cols[metric_index("memory_current_bytes").unwrap()];
        assert_eq!(mem.kind, MetricKind::Gauge);
    }
}
