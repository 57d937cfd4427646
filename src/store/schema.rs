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

mod present;
pub use present::{Group, LimitLine, RequestKind, display_unit, limit_lines, request_of};

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
    /// Short human name shown on charts and lists ("CPU usage").
    pub title: &'static str,
    pub help: &'static str,
}

impl MetricDef {
    /// The resource this metric belongs to.
    pub fn group(&self) -> Group {
        Group::of(self.name)
    }
}

const fn counter(
    name: &'static str,
    unit: &'static str,
    title: &'static str,
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Counter,
        unit,
        title,
        help,
    }
}

const fn gauge(
    name: &'static str,
    unit: &'static str,
    title: &'static str,
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Gauge,
        unit,
        title,
        help,
    }
}

/// Every metric the agent records, in column order. Appending is safe (old
/// files simply lack the column); renaming or removing breaks readers' history.
pub const METRICS: &[MetricDef] = &[
    counter("cpu_usage_usec", "usec", "CPU usage", "CPU time consumed"),
    counter("cpu_user_usec", "usec", "CPU user", "CPU time in user mode"),
    counter(
        "cpu_system_usec",
        "usec",
        "CPU system",
        "CPU time in kernel mode",
    ),
    counter(
        "cpu_nr_periods",
        "count",
        "CFS periods",
        "CFS enforcement periods elapsed",
    ),
    counter(
        "cpu_nr_throttled",
        "count",
        "Throttled periods",
        "CFS periods in which the cgroup was throttled",
    ),
    counter(
        "cpu_throttled_usec",
        "usec",
        "Throttled time",
        "Time spent throttled",
    ),
    gauge(
        "memory_current_bytes",
        "bytes",
        "Memory usage",
        "Memory charged to the cgroup",
    ),
    gauge(
        "memory_working_set_bytes",
        "bytes",
        "Memory working set",
        "Memory current minus inactive file cache",
    ),
    gauge(
        "memory_anon_bytes",
        "bytes",
        "Anonymous memory (RSS)",
        "Anonymous memory (RSS)",
    ),
    gauge("memory_file_bytes", "bytes", "Page cache", "Page cache"),
    gauge(
        "memory_limit_bytes",
        "bytes",
        "Memory limit",
        "Memory limit (null when unlimited)",
    ),
    counter(
        "memory_oom_events",
        "count",
        "OOM events",
        "Times the memory limit was hit (OOM)",
    ),
    counter(
        "memory_oom_kill_events",
        "count",
        "OOM kills",
        "Processes killed by the OOM killer",
    ),
    gauge(
        "pids_current",
        "count",
        "Tasks",
        "Tasks (processes and threads) in the cgroup",
    ),
    counter(
        "io_read_bytes",
        "bytes",
        "Disk read",
        "Bytes read from block devices",
    ),
    counter(
        "io_write_bytes",
        "bytes",
        "Disk write",
        "Bytes written to block devices",
    ),
    counter(
        "io_read_ops",
        "count",
        "Disk read ops",
        "Read operations on block devices",
    ),
    counter(
        "io_write_ops",
        "count",
        "Disk write ops",
        "Write operations on block devices",
    ),
    counter(
        "cpu_pressure_some_usec",
        "usec",
        "CPU pressure (some)",
        "Time some tasks stalled on CPU (PSI)",
    ),
    counter(
        "cpu_pressure_full_usec",
        "usec",
        "CPU pressure (full)",
        "Time all tasks stalled on CPU (PSI)",
    ),
    counter(
        "memory_pressure_some_usec",
        "usec",
        "Memory pressure (some)",
        "Time some tasks stalled on memory (PSI)",
    ),
    counter(
        "memory_pressure_full_usec",
        "usec",
        "Memory pressure (full)",
        "Time all tasks stalled on memory (PSI)",
    ),
    counter(
        "io_pressure_some_usec",
        "usec",
        "IO pressure (some)",
        "Time some tasks stalled on IO (PSI)",
    ),
    counter(
        "io_pressure_full_usec",
        "usec",
        "IO pressure (full)",
        "Time all tasks stalled on IO (PSI)",
    ),
    gauge(
        "pids_processes",
        "count",
        "Processes",
        "Processes (thread-group leaders) in the cgroup",
    ),
    // Added with the peers benchmark (issue #9): the rest of memory.stat,
    // burst and discard counters, v2 memory events, and the cgroup's limits.
    gauge(
        "memory_shmem_bytes",
        "bytes",
        "Shared memory",
        "Shared memory and tmpfs pages",
    ),
    gauge(
        "memory_mapped_file_bytes",
        "bytes",
        "Mapped files",
        "Page cache mapped into processes",
    ),
    gauge(
        "memory_dirty_bytes",
        "bytes",
        "Dirty pages",
        "Page cache waiting to be written back",
    ),
    gauge(
        "memory_writeback_bytes",
        "bytes",
        "Writeback",
        "Page cache being written back",
    ),
    gauge("memory_swap_bytes", "bytes", "Swap", "Swap used"),
    gauge(
        "memory_active_anon_bytes",
        "bytes",
        "Active anonymous",
        "Anonymous memory on the active LRU list",
    ),
    gauge(
        "memory_inactive_anon_bytes",
        "bytes",
        "Inactive anonymous",
        "Anonymous memory on the inactive LRU list",
    ),
    gauge(
        "memory_active_file_bytes",
        "bytes",
        "Active page cache",
        "Page cache on the active LRU list",
    ),
    gauge(
        "memory_inactive_file_bytes",
        "bytes",
        "Inactive page cache",
        "Page cache on the inactive LRU list (reclaimable first)",
    ),
    gauge(
        "memory_unevictable_bytes",
        "bytes",
        "Unevictable",
        "Memory that cannot be reclaimed (mlocked, ramfs)",
    ),
    gauge(
        "memory_anon_thp_bytes",
        "bytes",
        "Transparent huge pages",
        "Anonymous memory backed by transparent huge pages",
    ),
    gauge(
        "memory_kernel_bytes",
        "bytes",
        "Kernel memory",
        "Kernel memory charged to the cgroup (v2)",
    ),
    gauge(
        "memory_kernel_stack_bytes",
        "bytes",
        "Kernel stacks",
        "Kernel stacks of the cgroup's tasks (v2)",
    ),
    gauge(
        "memory_pagetables_bytes",
        "bytes",
        "Page tables",
        "Page tables of the cgroup's processes (v2)",
    ),
    gauge(
        "memory_slab_bytes",
        "bytes",
        "Slab",
        "Kernel slab objects (dentries, inodes, ...) charged to the cgroup (v2)",
    ),
    gauge(
        "memory_sock_bytes",
        "bytes",
        "Socket buffers",
        "Network socket buffers (v2)",
    ),
    counter("memory_pgfault", "count", "Page faults", "Page faults"),
    counter(
        "memory_pgmajfault",
        "count",
        "Major page faults",
        "Major page faults (read from disk or swap)",
    ),
    counter(
        "memory_workingset_refault_anon",
        "count",
        "Refaults (anonymous)",
        "Evicted anonymous pages faulted back in (thrashing)",
    ),
    counter(
        "memory_workingset_refault_file",
        "count",
        "Refaults (page cache)",
        "Evicted page cache faulted back in (thrashing)",
    ),
    counter(
        "memory_pgscan",
        "count",
        "Pages scanned",
        "Pages scanned by reclaim (v2)",
    ),
    counter(
        "memory_pgsteal",
        "count",
        "Pages reclaimed",
        "Pages reclaimed (v2)",
    ),
    counter(
        "memory_pgpgin",
        "count",
        "Pages charged",
        "Pages charged to the cgroup (v1)",
    ),
    counter(
        "memory_pgpgout",
        "count",
        "Pages uncharged",
        "Pages uncharged from the cgroup (v1)",
    ),
    counter(
        "memory_high_events",
        "count",
        "memory.high breaches",
        "Times usage went over memory.high and was throttled (v2)",
    ),
    counter(
        "memory_max_events",
        "count",
        "Memory limit hits",
        "Times usage was about to go over the memory limit (v2)",
    ),
    counter(
        "cpu_nr_bursts",
        "count",
        "Burst periods",
        "CFS periods in which the cgroup used its burst allowance",
    ),
    counter(
        "cpu_burst_usec",
        "usec",
        "Burst time",
        "CPU time used beyond the quota from the burst allowance",
    ),
    counter(
        "io_discard_bytes",
        "bytes",
        "Disk discard",
        "Bytes discarded (TRIM) on block devices",
    ),
    counter(
        "io_discard_ops",
        "count",
        "Disk discard ops",
        "Discard operations on block devices",
    ),
    gauge(
        "memory_peak_bytes",
        "bytes",
        "Memory peak",
        "Highest memory usage since the cgroup was created (refreshed at each rescan)",
    ),
    gauge(
        "memory_high_bytes",
        "bytes",
        "memory.high",
        "memory.high throttling threshold, null when unset (v2; refreshed at each rescan)",
    ),
    gauge(
        "cpu_quota_usec",
        "usec",
        "CPU quota",
        "CFS quota per period, null when unlimited (refreshed at each rescan)",
    ),
    gauge(
        "cpu_period_usec",
        "usec",
        "CPU period",
        "CFS enforcement period (refreshed at each rescan)",
    ),
    gauge(
        "cpu_shares",
        "count",
        "CPU shares",
        "CPU shares, the v1 weight (v1; refreshed at each rescan)",
    ),
    gauge(
        "cpu_weight",
        "count",
        "CPU weight",
        "CPU weight, 1 to 10000 (v2; refreshed at each rescan)",
    ),
    gauge(
        "pids_max",
        "count",
        "Task limit",
        "Task limit, null when unlimited (refreshed at each rescan)",
    ),
    gauge(
        "pids_peak",
        "count",
        "Task peak",
        "Highest task count since the cgroup was created (refreshed at each rescan)",
    ),
    // A pod's network (its namespace, every interface but loopback), on its
    // sandbox's rows only; null elsewhere and for host-network pods.
    counter(
        "network_receive_bytes",
        "bytes",
        "Network received",
        "Bytes the pod received (every interface but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_receive_packets",
        "count",
        "Packets received",
        "Packets the pod received (every interface but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_receive_errors",
        "count",
        "Receive errors",
        "Receive errors of the pod's interfaces (but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_receive_drops",
        "count",
        "Receive drops",
        "Received packets dropped (every interface but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_transmit_bytes",
        "bytes",
        "Network sent",
        "Bytes the pod sent (every interface but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_transmit_packets",
        "count",
        "Packets sent",
        "Packets the pod sent (every interface but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_transmit_errors",
        "count",
        "Transmit errors",
        "Transmit errors of the pod's interfaces (but lo; on the pod's sandbox row)",
    ),
    counter(
        "network_transmit_drops",
        "count",
        "Transmit drops",
        "Sent packets dropped (every interface but lo; on the pod's sandbox row)",
    ),
    // A container's filesystem as its node's kubelet reports it (every
    // `--fs-interval`, the newest answer on each row until the next).
    gauge(
        "fs_usage_bytes",
        "bytes",
        "Writable layer",
        "Bytes in the container's writable layer (from the kubelet's Summary API; null outside Kubernetes)",
    ),
    gauge(
        "fs_inodes_used",
        "count",
        "Layer inodes",
        "Inodes used by the container's writable layer (from the kubelet's Summary API)",
    ),
    gauge(
        "fs_log_bytes",
        "bytes",
        "Log files",
        "Bytes of the container's log files on the node (from the kubelet's Summary API)",
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

impl ColumnInfo {
    /// This build's definition of the column, if it knows it.
    pub fn def(&self) -> Option<&'static MetricDef> {
        METRICS.iter().find(|m| m.name == self.name)
    }
    /// Human name: the catalogue's title, else the column name.
    pub fn title(&self) -> String {
        self.def()
            .map_or_else(|| self.name.clone(), |d| d.title.to_string())
    }
    pub fn group(&self) -> Group {
        Group::of(&self.name)
    }
    /// Unit values are shown in, and the divisor from the raw rate or level.
    pub fn display_unit(&self) -> (String, f64) {
        display_unit(self.kind, &self.unit, &self.name)
    }
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
mod tests;
