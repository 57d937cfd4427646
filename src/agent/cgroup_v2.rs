//! cgroup v2 files and their parsers (pure: bytes in, values out).
//!
//! | metric | file |
//! |---|---|
//! | CPU usage/user/system, throttling | `cpu.stat` |
//! | memory current, limit | `memory.current`, `memory.max` (`max` = no limit = null) |
//! | anon, file, working set | `memory.stat` (`anon`, `file`; working set = current - `inactive_file`) |
//! | OOM, OOM kill | `memory.events` (`oom`, `oom_kill`) |
//! | pids | `pids.current` |
//! | processes | `cgroup.procs` (one pid a line) |
//! | IO bytes and ops | `io.stat`, summed over devices |
//! | pressure | `cpu.pressure`, `memory.pressure`, `io.pressure` (`total=` of `some`/`full`) |
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

/// `cpu.stat`: usage/user/system and throttling, all in microseconds or counts.
pub fn parse_cpu_stat(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| {
        let slot = match key {
            b"usage_usec" => slots::CPU_USAGE,
            b"user_usec" => slots::CPU_USER,
            b"system_usec" => slots::CPU_SYSTEM,
            b"nr_periods" => slots::CPU_NR_PERIODS,
            b"nr_throttled" => slots::CPU_NR_THROTTLED,
            b"throttled_usec" => slots::CPU_THROTTLED,
            _ => return,
        };
        v.set(slot, parse_int(value));
    });
}

/// `memory.max`: a byte count, or `max` for no limit (null).
pub fn parse_memory_max(text: &[u8]) -> Option<i64> {
    parse_int(text)
}

/// `memory.stat`: anon and file bytes; remembers `inactive_file` for the working set.
pub fn parse_memory_stat(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| match key {
        b"anon" => v.set(slots::MEMORY_ANON, parse_int(value)),
        b"file" => v.set(slots::MEMORY_FILE, parse_int(value)),
        b"inactive_file" => v.inactive_file = parse_int(value),
        _ => {}
    });
}

/// `memory.events`: `oom` and `oom_kill` counters.
pub fn parse_memory_events(text: &[u8], v: &mut Values) {
    for_each_pair(text, |key, value| match key {
        b"oom" => v.set(slots::MEMORY_OOM, parse_int(value)),
        b"oom_kill" => v.set(slots::MEMORY_OOM_KILL, parse_int(value)),
        _ => {}
    });
}

/// `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..` per device, summed.
/// An empty file (no IO yet) is zero: the controller is there and counted nothing.
pub fn parse_io_stat(text: &[u8], v: &mut Values) {
    let (mut rbytes, mut wbytes, mut rios, mut wios) = (0i64, 0i64, 0i64, 0i64);
    for line in text.split(|&b| b == b'\n') {
        for field in line.split(|&b| b == b' ').skip(1) {
            let Some(eq) = field.iter().position(|&b| b == b'=') else {
                continue;
            };
            let n = parse_int(&field[eq + 1..]).unwrap_or(0);
            match &field[..eq] {
                b"rbytes" => rbytes = rbytes.saturating_add(n),
                b"wbytes" => wbytes = wbytes.saturating_add(n),
                b"rios" => rios = rios.saturating_add(n),
                b"wios" => wios = wios.saturating_add(n),
                _ => {}
            }
        }
    }
    v.set(slots::IO_READ_BYTES, Some(rbytes));
    v.set(slots::IO_WRITE_BYTES, Some(wbytes));
    v.set(slots::IO_READ_OPS, Some(rios));
    v.set(slots::IO_WRITE_OPS, Some(wios));
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
        parse_memory_stat(
            b"anon 4096\nfile 8192\nkernel 1\ninactive_file 1000\n",
            &mut v,
        );
        assert_eq!(v.get(slots::MEMORY_ANON), Some(4096));
        assert_eq!(v.inactive_file, Some(1000));
        parse_memory_events(b"low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n", &mut v);
        assert_eq!(v.get(slots::MEMORY_OOM), Some(2));
        assert_eq!(v.get(slots::MEMORY_OOM_KILL), Some(1));
        parse_io_stat(
            b"8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
            &mut v,
        );
        assert_eq!(v.get(slots::IO_READ_BYTES), Some(101));
        assert_eq!(v.get(slots::IO_WRITE_OPS), Some(6));
        let mut empty = Values::new();
        parse_io_stat(b"", &mut empty);
        assert_eq!(empty.get(slots::IO_READ_BYTES), Some(0));
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
