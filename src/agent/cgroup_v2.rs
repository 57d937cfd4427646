//! cgroup v2 files and their parsers (pure: bytes in, values out).
//!
//! | metric | file |
//! |---|---|
//! | CPU usage/user/system, throttling, bursts | `cpu.stat` |
//! | memory current, swap | `memory.current`, `memory.swap.current` |
//! | anon, file, LRU lists, kernel, faults, reclaim | `memory.stat` (working set = current - `inactive_file`) |
//! | OOM, OOM kill, high and max events | `memory.events` |
//! | pids | `pids.current` |
//! | processes | `cgroup.procs` (one pid a line) |
//! | IO bytes and ops, discards | `io.stat`, summed over devices |
//! | pressure | `cpu.pressure`, `memory.pressure`, `io.pressure` (`total=` of `some`/`full`) |
//! | limits (read at each rescan) | `memory.max`, `memory.high`, `memory.peak`, `cpu.max`, `cpu.weight`, `pids.max`, `pids.peak` (`max` = no limit = null) |
//!
//! The pressure parser is shared with v1 hosts, which read PSI from the
//! hybrid `unified` mount.

use super::slots::{self, Values};

/// Parses a number as the kernel prints it; `None` for anything else.
pub fn parse_int(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii();
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(n)
}

/// `cgroup.procs` (v1 and v2): the number of processes, one pid a line.
/// `None` when a line is not a pid (not the file we expect). No allocation:
/// counted in place in the caller's read buffer.
pub fn parse_procs(text: &[u8]) -> Option<i64> {
    let mut n: i64 = 0;
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if !line.iter().all(u8::is_ascii_digit) {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// Calls `f(key, value)` for each `key value` line.
pub fn for_each_pair(text: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
    for line in text.split(|&b| b == b'\n') {
        if let Some(space) = line.iter().position(|&b| b == b' ') {
            f(&line[..space], &line[space + 1..]);
        }
    }
}

/// `cpu.stat`: usage/user/system, throttling and bursts, in microseconds or counts.
pub fn parse_cpu_stat(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| {
        let slot = match key {
            b"usage_usec" => slots::CPU_USAGE,
            b"user_usec" => slots::CPU_USER,
            b"system_usec" => slots::CPU_SYSTEM,
            b"nr_periods" => slots::CPU_NR_PERIODS,
            b"nr_throttled" => slots::CPU_NR_THROTTLED,
            b"throttled_usec" => slots::CPU_THROTTLED,
            b"nr_bursts" => slots::CPU_NR_BURSTS,
            b"burst_usec" => slots::CPU_BURST_USEC,
            _ => return,
        };
        v.set(slot, parse_int(value));
    });
}

/// `memory.max`, `memory.high`, `pids.max`: a number, or `max` for no limit (null).
pub fn parse_memory_max(text: &[u8]) -> Option<i64> {
    parse_int(text)
}

/// Where a v2 `memory.stat` key goes (a `match` on the key: this runs for
/// ~40 lines of every container every second).
fn memory_stat_slot(key: &[u8]) -> Option<usize> {
    Some(match key {
        b"anon" => slots::MEMORY_ANON,
        b"file" => slots::MEMORY_FILE,
        b"kernel" => slots::MEMORY_KERNEL,
        b"kernel_stack" => slots::MEMORY_KERNEL_STACK,
        b"pagetables" => slots::MEMORY_PAGETABLES,
        b"sock" => slots::MEMORY_SOCK,
        b"shmem" => slots::MEMORY_SHMEM,
        b"file_mapped" => slots::MEMORY_MAPPED_FILE,
        b"file_dirty" => slots::MEMORY_DIRTY,
        b"file_writeback" => slots::MEMORY_WRITEBACK,
        b"anon_thp" => slots::MEMORY_ANON_THP,
        b"inactive_anon" => slots::MEMORY_INACTIVE_ANON,
        b"active_anon" => slots::MEMORY_ACTIVE_ANON,
        b"inactive_file" => slots::MEMORY_INACTIVE_FILE,
        b"active_file" => slots::MEMORY_ACTIVE_FILE,
        b"unevictable" => slots::MEMORY_UNEVICTABLE,
        b"slab" => slots::MEMORY_SLAB,
        b"pgfault" => slots::MEMORY_PGFAULT,
        b"pgmajfault" => slots::MEMORY_PGMAJFAULT,
        b"workingset_refault_anon" => slots::MEMORY_WORKINGSET_REFAULT_ANON,
        b"workingset_refault_file" => slots::MEMORY_WORKINGSET_REFAULT_FILE,
        b"pgscan" => slots::MEMORY_PGSCAN,
        b"pgsteal" => slots::MEMORY_PGSTEAL,
        _ => return None,
    })
}

/// `memory.stat`: the byte and event counts of [`memory_stat_slot`]; the
/// working set is derived from `inactive_file` afterwards.
pub fn parse_memory_stat(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| {
        if let Some(slot) = memory_stat_slot(key) {
            v.set(slot, parse_int(value));
        }
    });
}

/// `memory.events`: `oom`, `oom_kill`, `high` and `max` counters.
pub fn parse_memory_events(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| {
        let slot = match key {
            b"oom" => slots::MEMORY_OOM,
            b"oom_kill" => slots::MEMORY_OOM_KILL,
            b"high" => slots::MEMORY_HIGH_EVENTS,
            b"max" => slots::MEMORY_MAX_EVENTS,
            _ => return,
        };
        v.set(slot, parse_int(value));
    });
}

/// `cpu.max`: `<quota> <period>` in microseconds, quota `max` = unlimited (null).
pub fn parse_cpu_max(text: &[u8], v: &mut Values) {
    let mut fields = text.trim_ascii().split(|&b| b == b' ');
    let quota = fields.next().and_then(parse_int);
    let period = fields.next().and_then(parse_int);
    v.set(slots::CPU_QUOTA_USEC, quota);
    v.set(slots::CPU_PERIOD_USEC, period);
}

/// `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`
/// per device, summed. An empty file (no IO yet) is zero: the controller is
/// there and counted nothing. Discards are null on kernels that do not report them.
pub fn parse_io_stat(text: &[u8], v: &mut Values) {
    // rbytes, wbytes, rios, wios, dbytes, dios
    let mut sums = [0i64; 6];
    let mut has_discards = false;
    for line in text.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b' ');
        let device = fields.next().and_then(slots::parse_device);
        for field in fields {
            let Some(eq) = field.iter().position(|&b| b == b'=') else {
                continue;
            };
            let at = match &field[..eq] {
                b"rbytes" => 0,
                b"wbytes" => 1,
                b"rios" => 2,
                b"wios" => 3,
                b"dbytes" => 4,
                b"dios" => 5,
                _ => continue,
            };
            has_discards |= at >= 4;
            let n = parse_int(&field[eq + 1..]).unwrap_or(0);
            sums[at] = sums[at].saturating_add(n);
            if let Some((major, minor)) = device {
                let d = v.device(major, minor);
                match at {
                    0 => d.read_bytes = Some(n),
                    1 => d.write_bytes = Some(n),
                    2 => d.read_ops = Some(n),
                    3 => d.write_ops = Some(n),
                    _ => {}
                }
            }
        }
    }
    v.set(slots::IO_READ_BYTES, Some(sums[0]));
    v.set(slots::IO_WRITE_BYTES, Some(sums[1]));
    v.set(slots::IO_READ_OPS, Some(sums[2]));
    v.set(slots::IO_WRITE_OPS, Some(sums[3]));
    // No device at all: zero discards too, like reads and writes.
    let discards = has_discards || text.trim_ascii().is_empty();
    v.set(slots::IO_DISCARD_BYTES, discards.then_some(sums[4]));
    v.set(slots::IO_DISCARD_OPS, discards.then_some(sums[5]));
}

/// `*.pressure`: the `total=` (microseconds) of the `some` and `full` lines.
/// A kernel without a `full` line for CPU leaves it null.
pub fn parse_pressure(text: &[u8], some_slot: usize, full_slot: usize, v: &mut Values) {
    for line in text.split(|&b| b == b'\n') {
        let slot = if line.starts_with(b"some ") {
            some_slot
        } else if line.starts_with(b"full ") {
            full_slot
        } else {
            continue;
        };
        let total = line
            .split(|&b| b == b' ')
            .find_map(|f| f.strip_prefix(b"total="))
            .and_then(parse_int);
        v.set(slot, total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_int(b"123\n"), Some(123));
        assert_eq!(parse_int(b"max\n"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"99999999999999999999"), None);
        assert_eq!(parse_memory_max(b"max\n"), None);
        assert_eq!(parse_memory_max(b"536870912\n"), Some(536_870_912));
    }

    #[test]
    fn cpu_limits() {
        let mut v = Values::new();
        parse_cpu_max(b"max 100000\n", &mut v);
        assert_eq!(v.get(slots::CPU_QUOTA_USEC), None, "unlimited");
        assert_eq!(v.get(slots::CPU_PERIOD_USEC), Some(100_000));
        parse_cpu_max(b"50000 100000\n", &mut v);
        assert_eq!(v.get(slots::CPU_QUOTA_USEC), Some(50_000));
    }

    #[test]
    fn procs_are_counted_one_a_line() {
        assert_eq!(parse_procs(b"101\n102\n4711\n"), Some(3));
        assert_eq!(parse_procs(b"101\n102"), Some(2), "no final newline");
        assert_eq!(parse_procs(b""), Some(0), "an empty cgroup has 0, not null");
        assert_eq!(parse_procs(b"max\n"), None, "not a pid list");
    }

    #[test]
    fn cpu_memory_io_pressure() {
        let mut v = Values::new();
        parse_cpu_stat(
            b"usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 300\nnr_bursts 0\n",
            &mut v,
        );
        assert_eq!(v.get(slots::CPU_USAGE), Some(1500));
        assert_eq!(v.get(slots::CPU_THROTTLED), Some(300));
        assert_eq!(v.get(slots::CPU_NR_BURSTS), Some(0));
        assert_eq!(v.get(slots::CPU_BURST_USEC), None, "absent key: null");
        parse_memory_stat(
            b"anon 4096\nfile 8192\nkernel 1\nkernel_stack 2\npagetables 3\nsec_pagetables 0\npercpu 9\nsock 4\nvmalloc 0\nshmem 5\nfile_mapped 6\nfile_dirty 7\nfile_writeback 8\nswapcached 0\nanon_thp 2097152\ninactive_anon 10\nactive_anon 11\ninactive_file 1000\nactive_file 12\nunevictable 13\nslab_reclaimable 14\nslab 15\nworkingset_refault_anon 16\nworkingset_refault_file 17\npgscan 18\npgsteal 19\npgfault 20\npgmajfault 21\n",
            &mut v,
        );
        let expected = [
            (slots::MEMORY_ANON, 4096),
            (slots::MEMORY_FILE, 8192),
            (slots::MEMORY_KERNEL, 1),
            (slots::MEMORY_KERNEL_STACK, 2),
            (slots::MEMORY_PAGETABLES, 3),
            (slots::MEMORY_SOCK, 4),
            (slots::MEMORY_SHMEM, 5),
            (slots::MEMORY_MAPPED_FILE, 6),
            (slots::MEMORY_DIRTY, 7),
            (slots::MEMORY_WRITEBACK, 8),
            (slots::MEMORY_ANON_THP, 2_097_152),
            (slots::MEMORY_INACTIVE_ANON, 10),
            (slots::MEMORY_ACTIVE_ANON, 11),
            (slots::MEMORY_INACTIVE_FILE, 1000),
            (slots::MEMORY_ACTIVE_FILE, 12),
            (slots::MEMORY_UNEVICTABLE, 13),
            (slots::MEMORY_SLAB, 15),
            (slots::MEMORY_WORKINGSET_REFAULT_ANON, 16),
            (slots::MEMORY_WORKINGSET_REFAULT_FILE, 17),
            (slots::MEMORY_PGSCAN, 18),
            (slots::MEMORY_PGSTEAL, 19),
            (slots::MEMORY_PGFAULT, 20),
            (slots::MEMORY_PGMAJFAULT, 21),
        ];
        slots::assert_values(&v, &expected);
        assert_eq!(v.get(slots::MEMORY_PGPGIN), None, "v1 only");
        parse_memory_events(b"low 0\nhigh 4\nmax 3\noom 2\noom_kill 1\n", &mut v);
        assert_eq!(v.get(slots::MEMORY_OOM), Some(2));
        assert_eq!(v.get(slots::MEMORY_OOM_KILL), Some(1));
        assert_eq!(v.get(slots::MEMORY_HIGH_EVENTS), Some(4));
        assert_eq!(v.get(slots::MEMORY_MAX_EVENTS), Some(3));
        parse_io_stat(
            b"8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=4096 dios=1\n259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
            &mut v,
        );
        assert_eq!(v.get(slots::IO_READ_BYTES), Some(101));
        assert_eq!(v.get(slots::IO_WRITE_OPS), Some(6));
        assert_eq!(v.get(slots::IO_DISCARD_BYTES), Some(4096));
        assert_eq!(v.get(slots::IO_DISCARD_OPS), Some(1));
        // Per device, the sums' parts.
        assert_eq!(v.devices.len(), 2);
        assert_eq!((v.devices[0].major, v.devices[0].minor), (8, 0));
        assert_eq!(v.devices[0].read_bytes, Some(100));
        assert_eq!(v.devices[1].write_ops, Some(4));
        let mut empty = Values::new();
        parse_io_stat(b"", &mut empty);
        assert_eq!(empty.get(slots::IO_READ_BYTES), Some(0));
        assert_eq!(empty.get(slots::IO_DISCARD_OPS), Some(0));
        let mut old_kernel = Values::new();
        parse_io_stat(b"8:0 rbytes=1 wbytes=2 rios=3 wios=4\n", &mut old_kernel);
        assert_eq!(
            old_kernel.get(slots::IO_DISCARD_BYTES),
            None,
            "no dbytes field: null"
        );
        parse_pressure(
            b"some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
            slots::CPU_PRESSURE_SOME,
            slots::CPU_PRESSURE_FULL,
            &mut v,
        );
        assert_eq!(v.get(slots::CPU_PRESSURE_SOME), Some(42));
        assert_eq!(
            v.get(slots::CPU_PRESSURE_FULL),
            None,
            "old kernels: no full line"
        );
    }
}
