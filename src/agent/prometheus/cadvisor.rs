//! cAdvisor-named metric families rendered from one [`Cycle`]: a pure function
//! from (cycle, pod lookup, filter, format) to exposition text.
//!
//! Names, types, help texts and units follow cAdvisor's Prometheus collector
//! (`metrics/prometheus.go`) so dashboards written for the kubelet's
//! `/metrics/cadvisor` work unchanged: microsecond counters become seconds,
//! `container_cpu_usage_seconds_total` carries `cpu="total"`, an unlimited
//! memory limit is `0`, and every sample carries the time it was read.
//!
//! The disk families (`container_fs_{reads,writes}{,_bytes}_total`) are
//! served per block device with a `device` label, as cAdvisor's, and only
//! per device: a `sum()` over them is the container's total, never twice.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::agent::contract::{ContainerSample, Cycle, PodInfo};
use crate::store::schema::{METRICS, MetricKind, metric_index};

use super::format::{Format, write_escaped_label_value, write_timestamp};

/// How a stored value becomes the exposed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    /// Stored as is (bytes, counts).
    Identity,
    /// Stored in microseconds, exposed in seconds.
    MicrosToSeconds,
    /// A limit where null means unlimited: exposed as 0, as cAdvisor does.
    LimitOrZero,
    /// v1 `cpu_shares`, else v2 `cpu_weight` converted to shares the way
    /// cAdvisor does (`2 + (weight - 1) * 262142 / 9999`).
    SharesOrWeight,
    /// One series per block device (`device` label), from the sample's
    /// devices, never the sum: a `sum()` over devices does not count twice.
    PerDevice,
}

/// One exposed family and the store column it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Full sample name (counters end in `_total`).
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    /// Column of [`crate::store::schema::METRICS`].
    pub source: &'static str,
    pub convert: Convert,
    /// A constant label cAdvisor adds (`cpu="total"`).
    pub extra_label: Option<(&'static str, &'static str)>,
}

const fn fam(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    source: &'static str,
    convert: Convert,
) -> Family {
    Family {
        name,
        help,
        kind,
        source,
        convert,
        extra_label: None,
    }
}

use Convert::{Identity, LimitOrZero, MicrosToSeconds, PerDevice, SharesOrWeight};
use MetricKind::{Counter, Gauge};

/// Every family served, sorted by name (the order the Go client writes them).
pub const FAMILIES: &[Family] = &[
    fam(
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals.",
        Counter,
        "cpu_nr_periods",
        Identity,
    ),
    fam(
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals.",
        Counter,
        "cpu_nr_throttled",
        Identity,
    ),
    fam(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
        Counter,
        "cpu_throttled_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds.",
        Counter,
        "cpu_system_usec",
        MicrosToSeconds,
    ),
    Family {
        extra_label: Some(("cpu", "total")),
        ..fam(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed in seconds.",
            Counter,
            "cpu_usage_usec",
            MicrosToSeconds,
        )
    },
    fam(
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds.",
        Counter,
        "cpu_user_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read",
        Counter,
        "io_read_bytes",
        PerDevice,
    ),
    fam(
        "container_fs_reads_total",
        "Cumulative count of reads completed",
        Counter,
        "io_read_ops",
        PerDevice,
    ),
    // The writable layer as the kubelet measures it (no `device` label: the
    // kubelet's Summary API does not say which device holds it).
    fam(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
        Gauge,
        "fs_usage_bytes",
        Identity,
    ),
    fam(
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written",
        Counter,
        "io_write_bytes",
        PerDevice,
    ),
    fam(
        "container_fs_writes_total",
        "Cumulative count of writes completed",
        Counter,
        "io_write_ops",
        PerDevice,
    ),
    fam(
        "container_memory_cache",
        "Number of bytes of page cache memory.",
        Gauge,
        "memory_file_bytes",
        Identity,
    ),
    fam(
        "container_memory_events_high_total",
        "Cumulative count of memory.high throttle events for the container",
        Counter,
        "memory_high_events",
        Identity,
    ),
    fam(
        "container_memory_events_max_total",
        "Cumulative count of memory.max limit hit events for the container",
        Counter,
        "memory_max_events",
        Identity,
    ),
    fam(
        "container_memory_file_dirty_bytes",
        "Number of bytes of file cache that has been modified but not yet written back to disk.",
        Gauge,
        "memory_dirty_bytes",
        Identity,
    ),
    fam(
        "container_memory_file_writeback_bytes",
        "Number of bytes of file cache that is currently being written back to disk.",
        Gauge,
        "memory_writeback_bytes",
        Identity,
    ),
    fam(
        "container_memory_kernel_usage",
        "Size of kernel memory allocated in bytes.",
        Gauge,
        "memory_kernel_bytes",
        Identity,
    ),
    fam(
        "container_memory_mapped_file",
        "Size of memory mapped files in bytes.",
        Gauge,
        "memory_mapped_file_bytes",
        Identity,
    ),
    fam(
        "container_memory_max_usage_bytes",
        "Maximum memory usage recorded in bytes",
        Gauge,
        "memory_peak_bytes",
        Identity,
    ),
    fam(
        "container_memory_pgscan_total",
        "Cumulative number of pages scanned by the page reclaim algorithm.",
        Counter,
        "memory_pgscan",
        Identity,
    ),
    fam(
        "container_memory_pgsteal_total",
        "Cumulative number of pages reclaimed by the page reclaim algorithm.",
        Counter,
        "memory_pgsteal",
        Identity,
    ),
    fam(
        "container_memory_rss",
        "Size of RSS in bytes.",
        Gauge,
        "memory_anon_bytes",
        Identity,
    ),
    fam(
        "container_memory_swap",
        "Container swap usage in bytes.",
        Gauge,
        "memory_swap_bytes",
        Identity,
    ),
    fam(
        "container_memory_total_active_file_bytes",
        "Current total active file in bytes.",
        Gauge,
        "memory_active_file_bytes",
        Identity,
    ),
    fam(
        "container_memory_total_inactive_file_bytes",
        "Current total inactive file in bytes.",
        Gauge,
        "memory_inactive_file_bytes",
        Identity,
    ),
    fam(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        Gauge,
        "memory_current_bytes",
        Identity,
    ),
    fam(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
        Gauge,
        "memory_working_set_bytes",
        Identity,
    ),
    fam(
        "container_memory_workingset_refault_anon_total",
        "Cumulative number of refaults of previously evicted anonymous pages.",
        Counter,
        "memory_workingset_refault_anon",
        Identity,
    ),
    fam(
        "container_memory_workingset_refault_file_total",
        "Cumulative number of refaults of previously evicted file pages.",
        Counter,
        "memory_workingset_refault_file",
        Identity,
    ),
    // cAdvisor counts OOM kills seen in the kernel log; memory.events `oom_kill` is that count.
    fam(
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
        Counter,
        "memory_oom_kill_events",
        Identity,
    ),
    fam(
        "container_pressure_cpu_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to CPU congestion.",
        Counter,
        "cpu_pressure_full_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_pressure_cpu_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to CPU congestion.",
        Counter,
        "cpu_pressure_some_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_pressure_io_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to IO congestion.",
        Counter,
        "io_pressure_full_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_pressure_io_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to IO congestion.",
        Counter,
        "io_pressure_some_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_pressure_memory_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to memory congestion.",
        Counter,
        "memory_pressure_full_usec",
        MicrosToSeconds,
    ),
    fam(
        "container_pressure_memory_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to memory congestion.",
        Counter,
        "memory_pressure_some_usec",
        MicrosToSeconds,
    ),
    // Like cAdvisor: the pids listed in the container's `cgroup.procs`.
    fam(
        "container_processes",
        "Number of processes running inside the container.",
        Gauge,
        "pids_processes",
        Identity,
    ),
    fam(
        "container_spec_cpu_period",
        "CPU period of the container.",
        Gauge,
        "cpu_period_usec",
        Identity,
    ),
    fam(
        "container_spec_cpu_quota",
        "CPU quota of the container.",
        Gauge,
        "cpu_quota_usec",
        Identity,
    ),
    fam(
        "container_spec_cpu_shares",
        "CPU share of the container.",
        Gauge,
        "cpu_shares",
        SharesOrWeight,
    ),
    fam(
        "container_spec_memory_limit_bytes",
        "Memory limit for the container.",
        Gauge,
        "memory_limit_bytes",
        LimitOrZero,
    ),
    // pids.current counts tasks (threads), which is what cAdvisor reports here.
    fam(
        "container_threads",
        "Number of threads running inside the container",
        Gauge,
        "pids_current",
        Identity,
    ),
    fam(
        "container_threads_max",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
        Gauge,
        "pids_max",
        LimitOrZero,
    ),
];

impl Family {
    /// The family name in OpenMetrics (counters without `_total`).
    pub fn openmetrics_name(&self) -> &'static str {
        match self.kind {
            MetricKind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            MetricKind::Gauge => self.name,
        }
    }

    /// The exposed value for a sample, `None` when the kernel gave none.
    pub fn value(&self, sample: &ContainerSample, source_index: usize) -> Option<Value> {
        let raw = sample.values.get(source_index).copied().flatten();
        match (self.convert, raw) {
            (Convert::PerDevice, _) => None,
            (Convert::Identity, Some(v)) => Some(Value::Int(v)),
            (Convert::MicrosToSeconds, Some(v)) => Some(Value::Float(v as f64 / 1e6)),
            (Convert::LimitOrZero, Some(v)) | (Convert::SharesOrWeight, Some(v)) => {
                Some(Value::Int(v))
            }
            (Convert::SharesOrWeight, None) => {
                let weight = metric_index("cpu_weight")?;
                let w = sample.values.get(weight).copied().flatten()?;
                (1..=10_000)
                    .contains(&w)
                    .then(|| Value::Int(2 + ((w - 1) * 262_142) / 9_999))
            }
            // Unlimited, but only for a container whose memory we could read at all.
            (Convert::LimitOrZero, None) => {
                let usage = metric_index("memory_current_bytes")?;
                sample
                    .values
                    .get(usage)
                    .copied()
                    .flatten()
                    .map(|_| Value::Int(0))
            }
            (_, None) => None,
        }
    }
}

/// An exposed sample value: integers stay exact, seconds are floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            // Rust's shortest round-trip form; both text formats accept it.
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// `?container=<id>`: a short (12) to full (64) hex container id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFilter(String);

/// A `?container=` value that is not a container id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid container id {value:?}: expected 12 to 64 hexadecimal characters (a short or full container id)"
)]
pub struct FilterError {
    pub value: String,
}

impl ContainerFilter {
    pub fn parse(value: &str) -> Result<Self, FilterError> {
        let ok = (12..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(FilterError {
                value: value.chars().take(80).collect(),
            })
        }
    }

    /// Matches the exact short id or a prefix of the full id (as `docker` does).
    pub fn matches(&self, sample: &ContainerSample) -> bool {
        sample.short_id == self.0 || sample.full_id.starts_with(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The label set of one container, pre-rendered once per scrape:
/// `container`, `id`, `image`, `namespace`, `pod` (the ones known).
pub fn container_labels(sample: &ContainerSample, pod: Option<&PodInfo>) -> String {
    let mut out = String::with_capacity(160);
    let mut push = |name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        write_escaped_label_value(&mut out, value);
        out.push('"');
    };
    if let Some(p) = pod {
        push("container", &p.container_name);
    }
    // cAdvisor's `id` is the cgroup path from the root, with a leading slash.
    let id = if sample.cgroup_path.starts_with('/') {
        sample.cgroup_path.clone()
    } else {
        format!("/{}", sample.cgroup_path)
    };
    push("id", &id);
    if let Some(p) = pod {
        push("image", p.image.as_deref().unwrap_or(""));
        push("namespace", &p.namespace);
        push("pod", &p.pod_name);
    }
    out
}

/// Writes the container families of `cycle` in `format` (no `# EOF`).
/// Returns how many containers were rendered.
pub fn render_containers(
    cycle: &Cycle,
    lookup: &dyn Fn(&ContainerSample) -> Option<Arc<PodInfo>>,
    filter: Option<&ContainerFilter>,
    format: Format,
    out: &mut String,
) -> usize {
    let selected: Vec<(&ContainerSample, String)> = cycle
        .containers
        .iter()
        .filter(|c| filter.is_none_or(|f| f.matches(c)))
        .map(|c| {
            let pod = lookup(c);
            (c, container_labels(c, pod.as_deref()))
        })
        .collect();
    let timestamp_ms = cycle.timestamp.map(|t| t.timestamp_millis());
    for family in FAMILIES {
        // A family whose column is unknown to this build is skipped (tested never to happen).
        let Some(index) = metric_index(family.source) else {
            continue;
        };
        let mut header_written = false;
        if family.convert == PerDevice {
            render_devices(family, &selected, timestamp_ms, format, out);
            continue;
        }
        for (sample, labels) in &selected {
            let Some(value) = family.value(sample, index) else {
                continue;
            };
            if !header_written {
                write_header(out, family, format);
                header_written = true;
            }
            out.push_str(family.name);
            out.push('{');
            out.push_str(labels);
            if let Some((k, v)) = family.extra_label {
                if !labels.is_empty() {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{v}\"");
            }
            let _ = write!(out, "}} {value}");
            if let Some(ms) = timestamp_ms {
                out.push(' ');
                write_timestamp(out, ms, format);
            }
            out.push('\n');
        }
    }
    let labels: std::collections::HashMap<&str, &str> = selected
        .iter()
        .filter(|(c, _)| c.sandbox)
        .map(|(c, l)| (c.short_id.as_str(), l.as_str()))
        .collect();
    render_network(cycle, &labels, format, out);
    selected.len()
}

/// A per-device family: each device of each sample, with a `device` label.
fn render_devices(
    family: &Family,
    selected: &[(&ContainerSample, String)],
    timestamp_ms: Option<i64>,
    format: Format,
    out: &mut String,
) {
    let field = |d: &crate::agent::slots::DeviceIo| match family.source {
        "io_read_bytes" => d.read_bytes,
        "io_write_bytes" => d.write_bytes,
        "io_read_ops" => d.read_ops,
        "io_write_ops" => d.write_ops,
        _ => None,
    };
    let mut header_written = false;
    for (sample, labels) in selected {
        for d in &sample.devices {
            let Some(value) = field(d) else {
                continue;
            };
            if !header_written {
                write_header(out, family, format);
                header_written = true;
            }
            out.push_str(family.name);
            out.push('{');
            out.push_str(labels);
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("device=\"");
            match &d.name {
                Some(name) => write_escaped_label_value(out, name),
                None => {
                    let _ = write!(out, "{}:{}", d.major, d.minor);
                }
            }
            let _ = write!(out, "\"}} {value}");
            if let Some(ms) = timestamp_ms {
                out.push(' ');
                write_timestamp(out, ms, format);
            }
            out.push('\n');
        }
    }
}

/// cAdvisor's per-interface network families, in [`netdev::COUNTERS`] order,
/// with their help texts.
pub const NETWORK_FAMILIES: [(&str, &str); 8] = [
    (
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
    ),
    (
        "container_network_receive_packets_total",
        "Cumulative count of packets received",
    ),
    (
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
    ),
    (
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
    ),
    (
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
    ),
    (
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted",
    ),
    (
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
    ),
    (
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
    ),
];

/// Writes each pod's interfaces (loopback left out, as cAdvisor does) once,
/// on its sandbox's series (`container` empty) with an `interface` label;
/// `labels` are the rendered labels of the selected samples by short id.
fn render_network(
    cycle: &Cycle,
    labels: &std::collections::HashMap<&str, &str>,
    format: Format,
    out: &mut String,
) {
    let timestamp_ms = cycle.timestamp.map(|t| t.timestamp_millis());
    for (c, (name, help)) in NETWORK_FAMILIES.iter().enumerate() {
        let mut header_written = false;
        for iface in cycle.network.iter().filter(|i| i.interface != "lo") {
            let Some(l) = labels.get(iface.sandbox.as_str()) else {
                continue;
            };
            if !header_written {
                let shown = match format {
                    Format::Text => *name,
                    Format::OpenMetrics => name.strip_suffix("_total").unwrap_or(name),
                };
                let _ = writeln!(out, "# HELP {shown} {help}");
                let _ = writeln!(out, "# TYPE {shown} counter");
                header_written = true;
            }
            out.push_str(name);
            out.push('{');
            out.push_str(l);
            if !l.is_empty() {
                out.push(',');
            }
            out.push_str("interface=\"");
            write_escaped_label_value(out, &iface.interface);
            let _ = write!(out, "\"}} {}", iface.counters[c]);
            if let Some(ms) = timestamp_ms {
                out.push(' ');
                write_timestamp(out, ms, format);
            }
            out.push('\n');
        }
    }
}

fn write_header(out: &mut String, family: &Family, format: Format) {
    let name = match format {
        Format::Text => family.name,
        Format::OpenMetrics => family.openmetrics_name(),
    };
    let kind = match family.kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {name} {}", family.help);
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The store column a family comes from, with its kind and unit (for docs and tests).
pub fn source_def(family: &Family) -> Option<&'static crate::store::schema::MetricDef> {
    METRICS.iter().find(|m| m.name == family.source)
}

#[cfg(test)]
#[path = "cadvisor_tests.rs"]
mod tests;
