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

// Parsers keep per-slot flags in a u128 (cgroup_v1::parse_memory_stat).
const _: () = assert!(
    METRICS.len() <= 128,
    "more than 128 metrics: widen the slot masks"
);

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
pub const MEMORY_SHMEM: usize = pos("memory_shmem_bytes");
pub const MEMORY_MAPPED_FILE: usize = pos("memory_mapped_file_bytes");
pub const MEMORY_DIRTY: usize = pos("memory_dirty_bytes");
pub const MEMORY_WRITEBACK: usize = pos("memory_writeback_bytes");
pub const MEMORY_SWAP: usize = pos("memory_swap_bytes");
pub const MEMORY_ACTIVE_ANON: usize = pos("memory_active_anon_bytes");
pub const MEMORY_INACTIVE_ANON: usize = pos("memory_inactive_anon_bytes");
pub const MEMORY_ACTIVE_FILE: usize = pos("memory_active_file_bytes");
pub const MEMORY_INACTIVE_FILE: usize = pos("memory_inactive_file_bytes");
pub const MEMORY_UNEVICTABLE: usize = pos("memory_unevictable_bytes");
pub const MEMORY_ANON_THP: usize = pos("memory_anon_thp_bytes");
pub const MEMORY_KERNEL: usize = pos("memory_kernel_bytes");
pub const MEMORY_KERNEL_STACK: usize = pos("memory_kernel_stack_bytes");
pub const MEMORY_PAGETABLES: usize = pos("memory_pagetables_bytes");
pub const MEMORY_SLAB: usize = pos("memory_slab_bytes");
pub const MEMORY_SOCK: usize = pos("memory_sock_bytes");
pub const MEMORY_PGFAULT: usize = pos("memory_pgfault");
pub const MEMORY_PGMAJFAULT: usize = pos("memory_pgmajfault");
pub const MEMORY_WORKINGSET_REFAULT_ANON: usize = pos("memory_workingset_refault_anon");
pub const MEMORY_WORKINGSET_REFAULT_FILE: usize = pos("memory_workingset_refault_file");
pub const MEMORY_PGSCAN: usize = pos("memory_pgscan");
pub const MEMORY_PGSTEAL: usize = pos("memory_pgsteal");
pub const MEMORY_PGPGIN: usize = pos("memory_pgpgin");
pub const MEMORY_PGPGOUT: usize = pos("memory_pgpgout");
pub const MEMORY_HIGH_EVENTS: usize = pos("memory_high_events");
pub const MEMORY_MAX_EVENTS: usize = pos("memory_max_events");
pub const CPU_NR_BURSTS: usize = pos("cpu_nr_bursts");
pub const CPU_BURST_USEC: usize = pos("cpu_burst_usec");
pub const IO_DISCARD_BYTES: usize = pos("io_discard_bytes");
pub const IO_DISCARD_OPS: usize = pos("io_discard_ops");
pub const MEMORY_PEAK: usize = pos("memory_peak_bytes");
pub const MEMORY_HIGH: usize = pos("memory_high_bytes");
pub const CPU_QUOTA_USEC: usize = pos("cpu_quota_usec");
pub const CPU_PERIOD_USEC: usize = pos("cpu_period_usec");
pub const CPU_SHARES: usize = pos("cpu_shares");
pub const CPU_WEIGHT: usize = pos("cpu_weight");
pub const PIDS_MAX: usize = pos("pids_max");
pub const PIDS_PEAK: usize = pos("pids_peak");

/// One container's row being filled: values in schema order, null until read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    pub values: Vec<Option<i64>>,
    /// The IO of each block device the cgroup used (its sums are the `io_*` values).
    pub devices: Vec<DeviceIo>,
}

/// One block device's IO in a cgroup: raw counters, null when the file lacks them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceIo {
    pub major: u32,
    pub minor: u32,
    /// `/dev/<DEVNAME>` from `/sys/dev/block/<major>:<minor>/uevent`, else `major:minor`
    /// (filled by the collector).
    pub name: Option<std::sync::Arc<str>>,
    pub read_bytes: Option<i64>,
    pub write_bytes: Option<i64>,
    pub read_ops: Option<i64>,
    pub write_ops: Option<i64>,
}

impl Values {
    /// The entry of device `major:minor`, created when new.
    pub fn device(&mut self, major: u32, minor: u32) -> &mut DeviceIo {
        let at = match self
            .devices
            .iter()
            .position(|d| d.major == major && d.minor == minor)
        {
            Some(at) => at,
            None => {
                self.devices.push(DeviceIo {
                    major,
                    minor,
                    ..DeviceIo::default()
                });
                self.devices.len() - 1
            }
        };
        &mut self.devices[at]
    }
}

/// `major:minor` as the kernel writes it.
pub fn parse_device(text: &[u8]) -> Option<(u32, u32)> {
    let s = std::str::from_utf8(text).ok()?;
    let (major, minor) = s.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
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
            devices: Vec::new(),
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
        let working_set = match (self.get(MEMORY_CURRENT), self.get(MEMORY_INACTIVE_FILE)) {
            (Some(current), Some(inactive)) => Some((current - inactive).max(0)),
            (Some(current), None) => Some(current),
            _ => None,
        };
        self.set(MEMORY_WORKING_SET, working_set);
    }
}

/// Test helper: each `(slot, value)` was read, named by its column on failure.
#[cfg(test)]
pub fn assert_values(v: &Values, expected: &[(usize, i64)]) {
    for &(slot, value) in expected {
        assert_eq!(v.get(slot), Some(value), "{}", METRICS[slot].name);
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
        v.set(MEMORY_INACTIVE_FILE, Some(130));
        v.finish();
        assert_eq!(v.get(MEMORY_WORKING_SET), Some(0));
    }
}
