//! `/proc/<pid>/net/dev`: a network namespace's interfaces and their counters.

/// The counters kept per interface, in this order everywhere (columns,
/// Prometheus families, the per-interface dataset).
pub const COUNTERS: [&str; 8] = [
    "receive_bytes",
    "receive_packets",
    "receive_errors",
    "receive_drops",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errors",
    "transmit_drops",
];

/// One interface's counters (see [`COUNTERS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub counters: [i64; COUNTERS.len()],
}

impl Interface {
    /// Loopback stays in the per-interface data but never in a pod's totals.
    pub fn is_loopback(&self) -> bool {
        self.name == "lo"
    }
}

/// Parses `net/dev`. Lines that do not parse are skipped (a vanished
/// interface, a format this build does not know); the header lines have no
/// `:` before their numbers.
pub fn parse(text: &str) -> Vec<Interface> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(' ') || name.contains('|') {
            continue;
        }
        let fields: Vec<i64> = rest
            .split_ascii_whitespace()
            .map_while(|f| f.parse().ok())
            .collect();
        // Receive: bytes packets errs drop fifo frame compressed multicast;
        // transmit: bytes packets errs drop fifo colls carrier compressed.
        if fields.len() < 12 {
            continue;
        }
        out.push(Interface {
            name: name.to_string(),
            counters: [
                fields[0], fields[1], fields[2], fields[3], fields[8], fields[9], fields[10],
                fields[11],
            ],
        });
    }
    out
}

/// The sum of every interface but loopback: a pod's traffic.
pub fn totals(interfaces: &[Interface]) -> [i64; COUNTERS.len()] {
    let mut sum = [0i64; COUNTERS.len()];
    for i in interfaces.iter().filter(|i| !i.is_loopback()) {
        for (s, c) in sum.iter_mut().zip(i.counters) {
            *s = s.saturating_add(c);
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a pod's network namespace shows it (recorded on the test node).
    const POD: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1024      12    0    0    0     0          0         0     1024      12    0    0    0     0       0          0
  eth0: 209715200  145000    1    2    0     0          0         0  5242880   70000    0    3    0     0       0          0
";

    #[test]
    fn interfaces_are_read_and_loopback_kept_out_of_the_totals() {
        let ifaces = parse(POD);
        assert_eq!(ifaces.len(), 2);
        assert_eq!(ifaces[0].name, "lo");
        assert_eq!(
            ifaces[1].counters,
            [209_715_200, 145_000, 1, 2, 5_242_880, 70_000, 0, 3]
        );
        assert_eq!(totals(&ifaces), ifaces[1].counters, "lo is not summed in");
    }

    #[test]
    fn broken_lines_are_skipped() {
        let text = "eth0: 1 2 3\nveth1: x y\nnet1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let ifaces = parse(text);
        assert_eq!(ifaces.len(), 1);
        assert_eq!(ifaces[0].name, "net1");
        assert_eq!(ifaces[0].counters, [1, 2, 3, 4, 9, 10, 11, 12]);
        assert!(parse("").is_empty());
    }
}
