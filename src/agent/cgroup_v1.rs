//! cgroup v1 equivalents of the v2 files (pure parsers).
//!
//! | metric | v1 file |
//! |---|---|
//! | CPU usage | `cpuacct.usage` (ns → µs) |
//! | CPU user/system | `cpuacct.stat` (USER_HZ ticks → µs) |
//! | throttling | `cpu.stat` (`nr_periods`, `nr_throttled`, `throttled_time` ns → µs) |
//! | memory current | `memory.usage_in_bytes` |
//! | anon, file, working set | `memory.stat` (`total_rss`, `total_cache`; usage - `total_inactive_file`) |
//! | limit | `memory.limit_in_bytes` (the "unlimited" value is null) |
//! | OOM kill | `memory.oom_control` (`oom_kill`); v1 has no OOM-event counter, so `memory_oom_events` is null |
//! | IO | `blkio.throttle.io_service_bytes_recursive` / `io_serviced_recursive`, `Read`/`Write` summed |
//! | pids | `pids.current` |
//! | processes | `cgroup.procs` of the pids hierarchy (else cpu, memory), as on v2 |

use super::cgroup_v2::{for_each_pair, parse_int};
use super::slots::{self, Values};

/// Kernel clock ticks per second for `cpuacct.stat` (USER_HZ is 100 on every Linux ABI).
const USER_HZ: i64 = 100;

/// Limits at or above this mean "unlimited" (the kernel prints PAGE_COUNTER_MAX pages).
const UNLIMITED: i64 = 1 << 62;

/// `cpuacct.usage` in nanoseconds → microseconds.
pub fn parse_cpuacct_usage(text: &[u8]) -> Option<i64> {
    parse_int(text).map(|ns| ns / 1000)
}

/// `cpuacct.stat`: `user` and `system` ticks → microseconds.
pub fn parse_cpuacct_stat(text: &[u8], v: &mut Values) {
    let to_usec = |ticks: Option<i64>| ticks.map(|t| t.saturating_mul(1_000_000 / USER_HZ));
    for_each_pair(text, |key, value| match key {
        b"user" => v.set(slots::CPU_USER, to_usec(parse_int(value))),
        b"system" => v.set(slots::CPU_SYSTEM, to_usec(parse_int(value))),
        _ => {}
    });
}

/// v1 `cpu.stat`: CFS throttling.
pub fn parse_cpu_stat(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| match key {
        b"nr_periods" => v.set(slots::CPU_NR_PERIODS, parse_int(value)),
        b"nr_throttled" => v.set(slots::CPU_NR_THROTTLED, parse_int(value)),
        b"throttled_time" => v.set(slots::CPU_THROTTLED, parse_int(value).map(|ns| ns / 1000)),
        _ => {}
    });
}

/// `memory.limit_in_bytes`; the unlimited value is null.
pub fn parse_memory_limit(text: &[u8]) -> Option<i64> {
    parse_int(text).filter(|&l| l < UNLIMITED)
}

/// v1 `memory.stat`: hierarchical totals where present, else the local values.
pub fn parse_memory_stat(text: &[u8], v: &mut Values) {
    let (mut rss, mut cache, mut inactive) = (None, None, None);
    let (mut total_rss, mut total_cache, mut total_inactive) = (None, None, None);
    for_each_pair(text, |key, value| match key {
        b"rss" => rss = parse_int(value),
        b"cache" => cache = parse_int(value),
        b"inactive_file" => inactive = parse_int(value),
        b"total_rss" => total_rss = parse_int(value),
        b"total_cache" => total_cache = parse_int(value),
        b"total_inactive_file" => total_inactive = parse_int(value),
        _ => {}
    });
    v.set(slots::MEMORY_ANON, total_rss.or(rss));
    v.set(slots::MEMORY_FILE, total_cache.or(cache));
    v.inactive_file = total_inactive.or(inactive);
}

/// `memory.oom_control`: `oom_kill` (kernels since 4.13).
pub fn parse_oom_control(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| {
        if key == b"oom_kill" {
            v.set(slots::MEMORY_OOM_KILL, parse_int(value));
        }
    });
}

/// `blkio.throttle.io_service_bytes*` or `io_serviced*`: `MAJ:MIN Read N`
/// lines summed over devices into the read and write slots.
pub fn parse_blkio(text: &[u8], read_slot: usize, write_slot: usize, v: &mut Values) {
    let (mut read, mut write) = (0i64, 0i64);
    for line in text.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b' ');
        let (Some(_device), Some(op), Some(n)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let n = parse_int(n).unwrap_or(0);
        match op {
            b"Read" => read = read.saturating_add(n),
            b"Write" => write = write.saturating_add(n),
            _ => {}
        }
    }
    v.set(read_slot, Some(read));
    v.set(write_slot, Some(write));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        assert_eq!(parse_cpuacct_usage(b"2500000\n"), Some(2500));
        let mut v = Values::new();
        parse_cpuacct_stat(b"user 150\nsystem 50\n", &mut v);
        assert_eq!(v.get(slots::CPU_USER), Some(1_500_000));
        assert_eq!(v.get(slots::CPU_SYSTEM), Some(500_000));
        parse_cpu_stat(
            b"nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\n",
            &mut v,
        );
        assert_eq!(v.get(slots::CPU_NR_THROTTLED), Some(4));
        assert_eq!(v.get(slots::CPU_THROTTLED), Some(2000));
    }

    #[test]
    fn memory() {
        assert_eq!(parse_memory_limit(b"9223372036854771712\n"), None);
        assert_eq!(parse_memory_limit(b"268435456\n"), Some(268_435_456));
        let mut v = Values::new();
        parse_memory_stat(
            b"cache 10\nrss 20\ninactive_file 5\ntotal_cache 100\ntotal_rss 200\ntotal_inactive_file 50\n",
            &mut v,
        );
        assert_eq!(v.get(slots::MEMORY_ANON), Some(200));
        assert_eq!(v.get(slots::MEMORY_FILE), Some(100));
        assert_eq!(v.inactive_file, Some(50));
        parse_oom_control(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", &mut v);
        assert_eq!(v.get(slots::MEMORY_OOM_KILL), Some(3));
        assert_eq!(
            v.get(slots::MEMORY_OOM),
            None,
            "v1 has no OOM event counter"
        );
    }

    #[test]
    fn blkio_sums_devices_and_skips_total() {
        let mut v = Values::new();
        parse_blkio(
            b"8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 300\n8:16 Read 1\n8:16 Write 2\nTotal 303\n",
            slots::IO_READ_BYTES,
            slots::IO_WRITE_BYTES,
            &mut v,
        );
        assert_eq!(v.get(slots::IO_READ_BYTES), Some(101));
        assert_eq!(v.get(slots::IO_WRITE_BYTES), Some(202));
    }
}
