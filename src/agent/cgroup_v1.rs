//! cgroup v1 equivalents of the v2 files (pure parsers).
//!
//! | metric | v1 file |
//! |---|---|
//! | CPU usage | `cpuacct.usage` (ns → µs) |
//! | CPU user/system | `cpuacct.stat` (USER_HZ ticks → µs) |
//! | throttling, bursts | `cpu.stat` (`nr_periods`, `nr_throttled`, `throttled_time`, `nr_bursts`, `burst_time`; ns → µs) |
//! | memory current | `memory.usage_in_bytes` |
//! | anon, file, LRU lists, faults, working set | `memory.stat` (`total_*` hierarchical values; working set = usage - `total_inactive_file`) |
//! | limit | `memory.stat` `hierarchical_memory_limit`: the effective limit, ancestors' included ("unlimited" is null) |
//! | OOM kill | `memory.oom_control` (`oom_kill`); v1 has no OOM-event counter, so `memory_oom_events` is null |
//! | IO | `blkio.throttle.io_service_bytes_recursive` / `io_serviced_recursive`, `Read`/`Write`/`Discard` summed |
//! | pids | `pids.current` |
//! | processes | `cgroup.procs` of the pids hierarchy (else cpu, memory), as on v2 |
//! | limits (read at each rescan) | `memory.max_usage_in_bytes`, `cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpu.shares`, `pids.max`, `pids.peak` |

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

/// v1 `cpu.stat`: CFS throttling and bursts.
pub fn parse_cpu_stat(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| match key {
        b"nr_periods" => v.set(slots::CPU_NR_PERIODS, parse_int(value)),
        b"nr_throttled" => v.set(slots::CPU_NR_THROTTLED, parse_int(value)),
        b"throttled_time" => v.set(slots::CPU_THROTTLED, parse_int(value).map(|ns| ns / 1000)),
        b"nr_bursts" => v.set(slots::CPU_NR_BURSTS, parse_int(value)),
        b"burst_time" => v.set(slots::CPU_BURST_USEC, parse_int(value).map(|ns| ns / 1000)),
        _ => {}
    });
}

/// `memory.limit_in_bytes`, `hierarchical_memory_limit`; the unlimited value is null.
pub fn parse_memory_limit(text: &[u8]) -> Option<i64> {
    parse_int(text).filter(|&l| l < UNLIMITED)
}

/// `cpu.cfs_quota_us`: `-1` (unlimited) is null.
pub fn parse_cfs_quota(text: &[u8]) -> Option<i64> {
    parse_int(text)
}

/// Where a v1 `memory.stat` key goes, with the `total_` prefix removed.
fn memory_stat_slot(key: &[u8]) -> Option<usize> {
    Some(match key {
        b"rss" => slots::MEMORY_ANON,
        b"cache" => slots::MEMORY_FILE,
        b"shmem" => slots::MEMORY_SHMEM,
        b"mapped_file" => slots::MEMORY_MAPPED_FILE,
        b"dirty" => slots::MEMORY_DIRTY,
        b"writeback" => slots::MEMORY_WRITEBACK,
        b"swap" => slots::MEMORY_SWAP,
        b"rss_huge" => slots::MEMORY_ANON_THP,
        b"inactive_anon" => slots::MEMORY_INACTIVE_ANON,
        b"active_anon" => slots::MEMORY_ACTIVE_ANON,
        b"inactive_file" => slots::MEMORY_INACTIVE_FILE,
        b"active_file" => slots::MEMORY_ACTIVE_FILE,
        b"unevictable" => slots::MEMORY_UNEVICTABLE,
        b"pgfault" => slots::MEMORY_PGFAULT,
        b"pgmajfault" => slots::MEMORY_PGMAJFAULT,
        b"pgpgin" => slots::MEMORY_PGPGIN,
        b"pgpgout" => slots::MEMORY_PGPGOUT,
        b"workingset_refault_anon" => slots::MEMORY_WORKINGSET_REFAULT_ANON,
        b"workingset_refault_file" => slots::MEMORY_WORKINGSET_REFAULT_FILE,
        _ => return None,
    })
}

/// v1 `memory.stat`: hierarchical `total_*` values where present (they
/// include child cgroups, like v2's), else the local ones; the effective
/// limit from `hierarchical_memory_limit`.
pub fn parse_memory_stat(text: &[u8], v: &mut Values) {
    // Slots already set from a `total_` line, so a local line cannot override them.
    let mut from_total: u128 = 0;
    for_each_pair(text, |key, value| {
        if key == b"hierarchical_memory_limit" {
            v.set(slots::MEMORY_LIMIT, parse_memory_limit(value));
            return;
        }
        let (key, total) = match key.strip_prefix(b"total_") {
            Some(rest) => (rest, true),
            None => (key, false),
        };
        let Some(slot) = memory_stat_slot(key) else {
            return;
        };
        let bit = 1u128 << slot;
        if total {
            from_total |= bit;
        } else if from_total & bit != 0 {
            return;
        }
        v.set(slot, parse_int(value));
    });
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
/// lines summed over devices into the read, write and discard slots
/// (`[read, write, discard]`; discard is null on kernels before 4.19).
pub fn parse_blkio(text: &[u8], slots: [usize; 3], v: &mut Values) {
    let (mut read, mut write, mut discard) = (0i64, 0i64, None::<i64>);
    let mut devices = false;
    // The bytes file and the ops file fill different fields of each device.
    let bytes = slots[0] == super::slots::IO_READ_BYTES;
    for line in text.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b' ');
        let (Some(device), Some(op), Some(n)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        devices = true;
        let n = parse_int(n).unwrap_or(0);
        match op {
            b"Read" => read = read.saturating_add(n),
            b"Write" => write = write.saturating_add(n),
            b"Discard" => discard = Some(discard.unwrap_or(0).saturating_add(n)),
            _ => {}
        }
        if let Some((major, minor)) = super::slots::parse_device(device) {
            let d = v.device(major, minor);
            match (op, bytes) {
                (b"Read", true) => d.read_bytes = Some(n),
                (b"Write", true) => d.write_bytes = Some(n),
                (b"Read", false) => d.read_ops = Some(n),
                (b"Write", false) => d.write_ops = Some(n),
                _ => {}
            }
        }
    }
    v.set(slots[0], Some(read));
    v.set(slots[1], Some(write));
    // No device listed at all (only `Total 0`): nothing happened, discards included.
    v.set(slots[2], discard.or((!devices).then_some(0)));
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
            b"cache 10\nrss 20\ninactive_file 5\npgfault 1\nhierarchical_memory_limit 9223372036854771712\ntotal_cache 100\ntotal_rss 200\ntotal_inactive_file 50\ntotal_pgfault 7\n",
            &mut v,
        );
        assert_eq!(v.get(slots::MEMORY_ANON), Some(200));
        assert_eq!(v.get(slots::MEMORY_FILE), Some(100));
        assert_eq!(v.get(slots::MEMORY_INACTIVE_FILE), Some(50));
        assert_eq!(v.get(slots::MEMORY_PGFAULT), Some(7));
        assert_eq!(v.get(slots::MEMORY_LIMIT), None, "unlimited");
        parse_oom_control(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", &mut v);
        assert_eq!(v.get(slots::MEMORY_OOM_KILL), Some(3));
        assert_eq!(
            v.get(slots::MEMORY_OOM),
            None,
            "v1 has no OOM event counter"
        );
    }

    #[test]
    fn memory_stat_of_a_real_kernel() {
        // Trimmed from Linux 6.18's v1 memory.stat of a cgroup with a child.
        let text = b"cache 11694080\nrss 1646592\nrss_huge 0\nshmem 9580544\nmapped_file 7364608\ndirty 24576\nwriteback 0\nworkingset_refault_anon 0\nworkingset_refault_file 139\nswap 0\nswapcached 0\npgpgin 16071\npgpgout 12852\npgfault 12510\npgmajfault 0\ninactive_anon 0\nactive_anon 1531904\ninactive_file 245760\nactive_file 1867776\nunevictable 9695232\nhierarchical_memory_limit 536870912\nhierarchical_memsw_limit 9223372036854771712\ntotal_cache 1888796672\ntotal_rss 670248960\ntotal_rss_huge 2097152\ntotal_shmem 9580544\ntotal_mapped_file 275091456\ntotal_dirty 116649984\ntotal_writeback 4096\ntotal_workingset_refault_anon 3\ntotal_workingset_refault_file 91073\ntotal_swap 8192\ntotal_swapcached 0\ntotal_pgpgin 7726734\ntotal_pgpgout 7255197\ntotal_pgfault 8652010\ntotal_pgmajfault 1219\ntotal_inactive_anon 668524544\ntotal_active_anon 1560576\ntotal_inactive_file 1107701760\ntotal_active_file 771514368\ntotal_unevictable 9695232\n";
        let mut v = Values::new();
        parse_memory_stat(text, &mut v);
        let expected = [
            (slots::MEMORY_ANON, 670_248_960),
            (slots::MEMORY_FILE, 1_888_796_672),
            (slots::MEMORY_ANON_THP, 2_097_152),
            (slots::MEMORY_SHMEM, 9_580_544),
            (slots::MEMORY_MAPPED_FILE, 275_091_456),
            (slots::MEMORY_DIRTY, 116_649_984),
            (slots::MEMORY_WRITEBACK, 4096),
            (slots::MEMORY_WORKINGSET_REFAULT_ANON, 3),
            (slots::MEMORY_WORKINGSET_REFAULT_FILE, 91_073),
            (slots::MEMORY_SWAP, 8192),
            (slots::MEMORY_PGPGIN, 7_726_734),
            (slots::MEMORY_PGPGOUT, 7_255_197),
            (slots::MEMORY_PGFAULT, 8_652_010),
            (slots::MEMORY_PGMAJFAULT, 1219),
            (slots::MEMORY_INACTIVE_ANON, 668_524_544),
            (slots::MEMORY_ACTIVE_ANON, 1_560_576),
            (slots::MEMORY_INACTIVE_FILE, 1_107_701_760),
            (slots::MEMORY_ACTIVE_FILE, 771_514_368),
            (slots::MEMORY_UNEVICTABLE, 9_695_232),
            (slots::MEMORY_LIMIT, 536_870_912),
        ];
        slots::assert_values(&v, &expected);
        assert_eq!(v.get(slots::MEMORY_KERNEL), None, "v2 only");
    }

    #[test]
    fn cpu_stat_bursts_and_quota() {
        let mut v = Values::new();
        parse_cpu_stat(
            b"nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\nnr_bursts 2\nburst_time 3000\n",
            &mut v,
        );
        assert_eq!(v.get(slots::CPU_NR_BURSTS), Some(2));
        assert_eq!(v.get(slots::CPU_BURST_USEC), Some(3));
        assert_eq!(parse_cfs_quota(b"-1\n"), None, "unlimited");
        assert_eq!(parse_cfs_quota(b"50000\n"), Some(50_000));
    }

    #[test]
    fn blkio_sums_devices_and_skips_total() {
        let mut v = Values::new();
        let slots = [
            slots::IO_READ_BYTES,
            slots::IO_WRITE_BYTES,
            slots::IO_DISCARD_BYTES,
        ];
        parse_blkio(
            b"8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Discard 7\n8:0 Total 300\n8:16 Read 1\n8:16 Write 2\nTotal 303\n",
            slots,
            &mut v,
        );
        assert_eq!(v.get(slots[0]), Some(101));
        assert_eq!(v.get(slots[1]), Some(202));
        assert_eq!(v.get(slots[2]), Some(7));
        // Per device: the bytes file fills bytes, the ops file ops.
        assert_eq!(v.devices.len(), 2);
        assert_eq!((v.devices[1].major, v.devices[1].minor), (8, 16));
        assert_eq!(v.devices[0].read_bytes, Some(100));
        assert_eq!(v.devices[0].read_ops, None);
        parse_blkio(
            b"8:0 Read 5\n8:0 Write 6\nTotal 11\n",
            [
                slots::IO_READ_OPS,
                slots::IO_WRITE_OPS,
                slots::IO_DISCARD_OPS,
            ],
            &mut v,
        );
        assert_eq!(v.devices[0].read_ops, Some(5));
        assert_eq!(v.devices[0].read_bytes, Some(100), "the bytes stay");
        let mut idle = Values::new();
        parse_blkio(b"Total 0\n", slots, &mut idle);
        assert_eq!(idle.get(slots[0]), Some(0));
        assert_eq!(idle.get(slots[2]), Some(0), "no device: no discards either");
        let mut old = Values::new();
        parse_blkio(b"8:0 Read 1\n8:0 Write 2\nTotal 3\n", slots, &mut old);
        assert_eq!(
            old.get(slots[2]),
            None,
            "kernels before 4.19 do not count discards"
        );
    }
}
