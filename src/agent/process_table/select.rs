//! Which processes of a container are recorded in an interval: the top K by
//! CPU and by memory, then starts and exits within a budget.

/// A process as the ranking sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub pid: u32,
    /// CPU ticks used since the previous interval.
    pub cpu: u64,
    /// Resident pages.
    pub rss: i64,
}

/// The union of the `k` processes using the most CPU and the `k` holding the
/// most memory, in pid order. Ties go to the lower pid, so the same
/// processes stay chosen while nothing changes. Idle processes count for CPU
/// only when fewer than `k` are busy.
pub fn top_k(candidates: &[Candidate], k: usize) -> Vec<u32> {
    let mut by_cpu: Vec<&Candidate> = candidates.iter().collect();
    by_cpu.sort_unstable_by(|a, b| b.cpu.cmp(&a.cpu).then(a.pid.cmp(&b.pid)));
    let mut by_rss: Vec<&Candidate> = candidates.iter().collect();
    by_rss.sort_unstable_by(|a, b| b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid)));
    let mut out: Vec<u32> = by_cpu
        .iter()
        .take(k)
        .chain(by_rss.iter().take(k))
        .map(|c| c.pid)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Starts and exits recorded beyond the top K, within `budget`: exits first
/// (when something ended is what an incident asks), then starts not already
/// in `top`. Returns (starts to record, how many exits to record, dropped).
pub fn bounded_events(
    top: &[u32],
    started: &[u32],
    exited: usize,
    budget: usize,
) -> (Vec<u32>, usize, usize) {
    let exits = exited.min(budget);
    let mut starts: Vec<u32> = started
        .iter()
        .copied()
        .filter(|p| top.binary_search(p).is_err())
        .collect();
    starts.sort_unstable();
    let room = budget - exits;
    let dropped = (exited - exits) + starts.len().saturating_sub(room);
    starts.truncate(room);
    (starts, exits, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pid: u32, cpu: u64, rss: i64) -> Candidate {
        Candidate { pid, cpu, rss }
    }

    #[test]
    fn the_busiest_and_the_biggest_are_kept() {
        let all = [
            c(1, 0, 10),    // init: small, idle
            c(2, 500, 20),  // busiest
            c(3, 10, 9000), // biggest
            c(4, 400, 30),
            c(5, 0, 8000),
        ];
        assert_eq!(top_k(&all, 2), [2, 3, 4, 5]);
        assert_eq!(top_k(&all, 1), [2, 3]);
        assert_eq!(top_k(&all, 10), [1, 2, 3, 4, 5]);
        assert!(top_k(&[], 3).is_empty());
        // Ties: the lower pid, every time.
        let tied = [c(9, 1, 1), c(7, 1, 1), c(8, 1, 1)];
        assert_eq!(top_k(&tied, 1), [7]);
    }

    #[test]
    fn events_beyond_the_budget_are_counted_not_kept() {
        // Starts already in the top K are rows anyway: not charged.
        let (starts, exits, dropped) = bounded_events(&[2, 3], &[3, 10, 11], 2, 20);
        assert_eq!((starts, exits, dropped), (vec![10, 11], 2, 0));
        // A fork storm: 50 starts, 5 exits, budget 20.
        let storm: Vec<u32> = (100..150).collect();
        let (starts, exits, dropped) = bounded_events(&[], &storm, 5, 20);
        assert_eq!((starts.len(), exits, dropped), (15, 5, 35));
        assert_eq!(starts[0], 100);
        let (starts, exits, dropped) = bounded_events(&[], &[1], 30, 20);
        assert_eq!((starts.len(), exits, dropped), (0, 20, 11));
    }
}
