//! How metrics are presented: the resource group a column belongs to, the
//! unit its values are shown in, and which columns (or pod requests) are
//! drawn as lines beside it. Derived from the column names and units of
//! [`super::METRICS`] so a new metric needs no second table.

use super::MetricKind;

/// The resource a metric describes; lists and the overview group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Cpu,
    Memory,
    Io,
    Network,
    Filesystem,
    Pids,
    Other,
}

impl Group {
    /// From the column name's first word (`cpu_pressure_*` is CPU, and so on).
    pub fn of(name: &str) -> Self {
        match name.split('_').next() {
            Some("cpu") => Group::Cpu,
            Some("memory") => Group::Memory,
            Some("io") => Group::Io,
            Some("network") => Group::Network,
            Some("fs") => Group::Filesystem,
            Some("pids") => Group::Pids,
            _ => Group::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Cpu => "cpu",
            Group::Memory => "memory",
            Group::Io => "io",
            Group::Network => "network",
            Group::Filesystem => "fs",
            Group::Pids => "pids",
            Group::Other => "other",
        }
    }

    /// Heading shown above the group.
    pub fn title(self) -> &'static str {
        match self {
            Group::Cpu => "CPU",
            Group::Memory => "Memory",
            Group::Io => "Disk IO",
            Group::Network => "Network",
            Group::Filesystem => "Filesystem",
            Group::Pids => "Processes",
            Group::Other => "Other",
        }
    }
}

/// The unit values are shown in, and the divisor from the raw value (a
/// gauge) or its per-second rate (a counter). CPU time per second is cores,
/// pressure stall time per second the percentage of time stalled.
pub fn display_unit(kind: MetricKind, unit: &str, name: &str) -> (String, f64) {
    match (kind, unit) {
        (MetricKind::Counter, "usec") if name.contains("pressure") => {
            ("% time stalled".into(), 1e4)
        }
        (MetricKind::Counter, "usec") if name.starts_with("cpu_") => ("cores".into(), 1e6),
        (MetricKind::Counter, "usec") => ("s/s".into(), 1e6),
        (MetricKind::Counter, "count") | (MetricKind::Counter, "") => ("/s".into(), 1.0),
        (MetricKind::Counter, unit) => (format!("{unit}/s"), 1.0),
        (MetricKind::Gauge, unit) => (unit.to_string(), 1.0),
    }
}

/// Where a limit line's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitLine {
    /// Another gauge column of the same unit (`memory_limit_bytes`, `pids_max`).
    Column {
        column: &'static str,
        label: &'static str,
    },
    /// The CFS quota in cores: `cpu_quota_usec / cpu_period_usec`.
    CpuQuota,
}

impl LimitLine {
    pub fn label(&self) -> &'static str {
        match self {
            LimitLine::Column { label, .. } => label,
            LimitLine::CpuQuota => "CPU limit",
        }
    }
    /// The columns read to draw the line.
    pub fn columns(&self) -> Vec<&'static str> {
        match self {
            LimitLine::Column { column, .. } => vec![column],
            LimitLine::CpuQuota => vec!["cpu_quota_usec", "cpu_period_usec"],
        }
    }
}

const MEMORY_LIMIT: LimitLine = LimitLine::Column {
    column: "memory_limit_bytes",
    label: "memory limit",
};
const MEMORY_HIGH: LimitLine = LimitLine::Column {
    column: "memory_high_bytes",
    label: "memory.high",
};
const PIDS_MAX: LimitLine = LimitLine::Column {
    column: "pids_max",
    label: "task limit",
};

/// The limits drawn beside a metric's chart, in its display unit.
pub fn limit_lines(name: &str) -> &'static [LimitLine] {
    match name {
        "cpu_usage_usec" | "cpu_user_usec" | "cpu_system_usec" => &[LimitLine::CpuQuota],
        "memory_current_bytes" | "memory_working_set_bytes" | "memory_anon_bytes" => {
            &[MEMORY_LIMIT, MEMORY_HIGH]
        }
        "pids_current" | "pids_processes" => &[PIDS_MAX],
        _ => &[],
    }
}

/// A pod spec's resource request, recorded by the enricher in `index.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `resources.requests.cpu`, drawn in cores.
    Cpu,
    /// `resources.requests.memory`, drawn in bytes.
    Memory,
}

/// The request drawn beside a metric's chart.
pub fn request_of(name: &str) -> Option<RequestKind> {
    match name {
        "cpu_usage_usec" => Some(RequestKind::Cpu),
        "memory_current_bytes" | "memory_working_set_bytes" | "memory_anon_bytes" => {
            Some(RequestKind::Memory)
        }
        _ => None,
    }
}
