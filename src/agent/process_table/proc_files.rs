//! Parsers of the `/proc/<pid>` files the process table reads: `stat` every
//! interval, `status` (NSpid) and `cmdline` once per process, `smaps_rollup`
//! every few intervals. Pure: text in, values out; a malformed file is `None`.

/// What one read of `/proc/<pid>/stat` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The kernel's short name (`comm`, at most 15 bytes).
    pub comm: String,
    pub ppid: u32,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: i64,
    /// Start time after boot, in clock ticks: with the pid, what identifies
    /// the process (a recycled pid has another start time).
    pub start_ticks: u64,
    /// Resident set, in pages.
    pub rss_pages: i64,
}

/// Parses `/proc/<pid>/stat`. The name is between the first `(` and the
/// last `)`: it may hold spaces and parentheses itself.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = text[open + 1..close].to_string();
    // Fields after the name, from field 3 (`state`) on.
    let mut fields = text[close + 1..].split_ascii_whitespace();
    let mut nth = |n: usize| fields.nth(n);
    // state(3) ppid(4)
    nth(0)?;
    let ppid = nth(0)?.parse().ok()?;
    // utime(14) stime(15): skip pgrp..cmajflt (5..13)
    let utime: u64 = nth(9)?.parse().ok()?;
    let stime: u64 = nth(0)?.parse().ok()?;
    // num_threads(20): skip cutime..nice (16..19)
    let threads = nth(4)?.parse().ok()?;
    // starttime(22): skip itrealvalue(21)
    let start_ticks = nth(1)?.parse().ok()?;
    // rss(24): skip vsize(23)
    let rss_pages = nth(1)?.parse().ok()?;
    Some(Stat {
        comm,
        ppid,
        cpu_ticks: utime.saturating_add(stime),
        threads,
        start_ticks,
        rss_pages,
    })
}

/// The pid in the innermost PID namespace (the container's), from
/// `/proc/<pid>/status`'s `NSpid:` line (its last field).
pub fn parse_nspid(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_ascii_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Longest command kept, in bytes (a JVM's class path is not a name).
pub const COMMAND_MAX: usize = 256;

/// The command line (`/proc/<pid>/cmdline`, NUL-separated) as one line,
/// cut at [`COMMAND_MAX`] on a character boundary; `None` when empty (a
/// kernel thread, or a zombie).
pub fn parse_cmdline(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if line.is_empty() {
        return None;
    }
    let mut end = line.len().min(COMMAND_MAX);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_string())
}

/// Memory a process holds alone and shared, from `/proc/<pid>/smaps_rollup`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Proportional set size: shared pages divided among their users.
    pub pss_bytes: Option<i64>,
    /// Unique set size: pages only this process maps (private clean + dirty).
    pub uss_bytes: Option<i64>,
    pub swap_bytes: Option<i64>,
}

/// Parses `smaps_rollup` (values in kB).
pub fn parse_rollup(text: &str) -> Rollup {
    let mut rollup = Rollup::default();
    let mut private: Option<i64> = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(kb) = rest
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse::<i64>().ok())
        else {
            continue;
        };
        let bytes = kb.saturating_mul(1024);
        match key {
            "Pss" => rollup.pss_bytes = Some(bytes),
            "Swap" => rollup.swap_bytes = Some(bytes),
            "Private_Clean" | "Private_Dirty" => {
                private = Some(private.unwrap_or(0).saturating_add(bytes));
            }
            _ => {}
        }
    }
    rollup.uss_bytes = private;
    rollup
}

/// Boot time in ms since the epoch, from `/proc/stat`'s `btime` (seconds).
pub fn parse_boot_ms(proc_stat: &str) -> Option<i64> {
    let secs: i64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    secs.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `stat` line of a process whose name holds a space and a parenthesis.
    const STAT: &str = "4242 (my (app) x) S 17 4242 4242 0 -1 4194560 1520 0 3 0 250 75 0 0 20 0 5 0 123456 104857600 16384 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.comm, "my (app) x");
        assert_eq!(s.ppid, 17);
        assert_eq!(s.cpu_ticks, 325);
        assert_eq!(s.threads, 5);
        assert_eq!(s.start_ticks, 123_456);
        assert_eq!(s.rss_pages, 16_384);
    }

    #[test]
    fn a_cut_or_garbled_stat_is_none() {
        for bad in [
            "",
            "4242 (x",
            "4242 x) S 1",
            "4242 (x) S 17 4242",
            &STAT[..60],
            STAT.replace(" 250 ", " ?? ").as_str(),
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nspid_is_the_innermost() {
        let status = "Name:\tapp\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t17\nNSpid:\t4242\t7\n";
        assert_eq!(parse_nspid(status), Some(7));
        assert_eq!(parse_nspid("NSpid:\t99\n"), Some(99));
        assert_eq!(parse_nspid("Name:\tx\n"), None);
    }

    #[test]
    fn command_lines_are_joined_and_cut() {
        assert_eq!(
            parse_cmdline(b"/bin/stress\0--children\x004\0").as_deref(),
            Some("/bin/stress --children 4")
        );
        assert_eq!(parse_cmdline(b""), None);
        assert_eq!(parse_cmdline(b"\0\0"), None);
        let long = "é".repeat(400);
        let cut = parse_cmdline(long.as_bytes()).unwrap();
        assert!(cut.len() <= COMMAND_MAX && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn rollup_gives_pss_uss_and_swap_in_bytes() {
        let text = "55d0c0a3a000-7ffd1a5f2000 ---p 00000000 00:00 0                          [rollup]\n\
            Rss:               67244 kB\nPss:               65912 kB\nPss_Anon:          65536 kB\n\
            Shared_Clean:       1332 kB\nShared_Dirty:          0 kB\nPrivate_Clean:       376 kB\n\
            Private_Dirty:     65536 kB\nReferenced:        67244 kB\nAnonymous:         65536 kB\n\
            Swap:                  8 kB\nSwapPss:               8 kB\n";
        let r = parse_rollup(text);
        assert_eq!(r.pss_bytes, Some(65_912 * 1024));
        assert_eq!(r.uss_bytes, Some((376 + 65_536) * 1024));
        assert_eq!(r.swap_bytes, Some(8 * 1024));
        assert_eq!(parse_rollup("garbage\n"), Rollup::default());
    }

    #[test]
    fn boot_time() {
        assert_eq!(
            parse_boot_ms("cpu  1 2 3\nbtime 1767225600\nprocesses 9\n"),
            Some(1_767_225_600_000)
        );
        assert_eq!(parse_boot_ms("cpu 1\n"), None);
    }
}
