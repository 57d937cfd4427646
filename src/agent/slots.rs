//! Positions of the metrics in a sample, checked against the schema at
//! compile time, and the value row a sampler fills.

use crate::store::schema::METRICS;

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Position of `name` in [`METRICS`]; a misspelt name fails the build.
const fn pos(name: &str) -> usize {
    let mut i = 0;
    while i < METRICS.len() {
        if same(METRICS[i].name.as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("metric missing from store::schema::METRICS")
}

pub const CPU_USAGE: usize = pos("cpu_usage_usec");
pub const CPU_USER: usize = pos("cpu_user_usec");
pub const CPU_SYSTEM: usize = pos("cpu_system_usec");
pub const CPU_NR_PERIODS: usize = pos("cpu_nr_periods");
pub const CPU_NR_THROTTLED: usize = pos("cpu_nr_throttled");
pub const CPU_THROTTLED: usize = pos("cpu_throttled_usec");
pub const MEMORY_CURRENT: usize = pos("memory_current_bytes");
pub const MEMORY_WORKING_SET: usize = pos("memory_working_set_bytes");
pub const MEMORY_ANON: usize = pos("memory_anon_bytes");
pub const MEMORY_FILE: usize = pos("memory_file_bytes");
pub const MEMORY_LIMIT: usize = pos("memory_limit_bytes");
pub const MEMORY_OOM: usize = pos("memory_oom_events");
pub const MEMORY_OOM_KILL: usize = pos("memory_oom_kill_events");
pub const PIDS: usize = pos("pids_current");
pub const IO_READ_BYTES: usize = pos("io_read_bytes");
pub const IO_WRITE_BYTES: usize = pos("io_write_bytes");
pub const IO_READ_OPS: usize = pos("io_read_ops");
pub const IO_WRITE_OPS: usize = pos("io_write_ops");
pub const CPU_PRESSURE_SOME: usize = pos("cpu_pressure_some_usec");
pub const CPU_PRESSURE_FULL: usize = pos("cpu_pressure_full_usec");
pub const MEMORY_PRESSURE_SOME: usize = pos("memory_pressure_some_usec");
pub const MEMORY_PRESSURE_FULL: usize = pos("memory_pressure_full_usec");
pub const IO_PRESSURE_SOME: usize = pos("io_pressure_some_usec");
pub const IO_PRESSURE_FULL: usize = pos("io_pressure_full_usec");
pub const PROCESSES: usize = pos("pids_processes");

/// One container's row being filled: values in schema order (null until
/// read), plus intermediate readings some metrics are derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    pub values: Vec<Option<i64>>,
    /// `inactive_file` from memory.stat, for the working set.
    pub inactive_file: Option<i64>,
}

impl Default for Values {
    fn default() -> Self {
        Self::new()
    }
}

impl Values {
    pub fn new() -> Self {
        Self {
            values: vec![None; METRICS.len()],
            inactive_file: None,
        }
    }

    pub fn set(&mut self, slot: usize, value: Option<i64>) {
        if let Some(v) = self.values.get_mut(slot) {
            *v = value;
        }
    }

    pub fn get(&self, slot: usize) -> Option<i64> {
        self.values.get(slot).copied().flatten()
    }

    /// Derived values: working set = current - inactive file (never below zero).
    pub fn finish(&mut self) {
        let working_set = match (self.get(MEMORY_CURRENT), self.inactive_file) {
            (Some(current), Some(inactive)) => Some((current - inactive).max(0)),
            (Some(current), None) => Some(current),
            _ => None,
        };
        self.set(MEMORY_WORKING_SET, working_set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_schema_names() {
        assert_eq!(METRICS[CPU_USAGE].name, "cpu_usage_usec");
        assert_eq!(METRICS[IO_PRESSURE_FULL].name, "io_pressure_full_usec");
        let mut v = Values::new();
        v.set(MEMORY_CURRENT, Some(100));
        v.inactive_file = Some(130);
        v.finish();
        assert_eq!(v.get(MEMORY_WORKING_SET), Some(0));
    }
}
