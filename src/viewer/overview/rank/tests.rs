use super::super::summary::{COUNTERS, GAUGES, WORKING_SET, slices, summarize};
use super::*;

/// 10 minutes of a container using `cores`, throttled in a quarter of
/// 100 ms periods, reading 1 MB/s, stalled 10% on memory, with a 1 GiB
/// limit and working set at `mem` bytes, and a 2-core quota.
fn summary(cores: f64, mem: i64) -> Summary {
    let n = 601;
    let ts: Vec<i64> = (0..n).map(|i| 1_000_000 + i * 1000).collect();
    let mut values = vec![Vec::new(); COUNTERS.len() + GAUGES.len()];
    for i in 0..n {
        let counters = [
            (cores * 1e6) as i64 * i,
            i * 10 / 4,
            i * 10,
            0,
            i * 1_000_000,
            0,
            0,
            i * 100_000,
            0,
            i64::from(i >= 300),
            // Not a pod's sandbox: no network.
            NULL_VALUE,
            NULL_VALUE,
        ];
        for (c, v) in counters.into_iter().enumerate() {
            values[c].push(v);
        }
        values[COUNTERS.len() + WORKING_SET].push(mem);
        values[COUNTERS.len() + MEMORY_LIMIT].push(1 << 30);
        values[COUNTERS.len() + CPU_QUOTA].push(200_000);
        values[COUNTERS.len() + CPU_PERIOD].push(100_000);
    }
    summarize(&ts, &slices(&values), None, 15_000).unwrap()
}

#[test]
fn figures_come_out_in_display_units() {
    let s = stats(&summary(0.5, 512 << 20));
    assert_eq!(s.seconds, 600.0);
    assert_eq!(s.cpu_cores, Some(0.5));
    assert_eq!(s.cpu_peak_cores, Some(0.5));
    assert_eq!(s.cpu_limit_cores, Some(2.0));
    assert_eq!(s.cpu_pct_of_limit, Some(25.0));
    assert_eq!(s.memory_pct_of_limit, Some(50.0));
    assert_eq!(s.throttled_pct, Some(25.0));
    assert_eq!(s.io_bytes_per_sec, Some(1e6));
    assert_eq!(s.pressure_pct, [Some(0.0), Some(10.0), Some(0.0)]);
    assert_eq!(s.pressure_max_pct, Some(10.0));
    assert_eq!(s.oom_kills, Some(1));
}

#[test]
fn rankings_order_by_the_category_and_drop_zeros() {
    let a = stats(&summary(0.5, 100));
    let b = stats(&summary(1.5, 50));
    let idle = stats(&summary(0.0, 10));
    let rows = [("a", &a), ("b", &b), ("idle", &idle)];
    let ids = |c, top| {
        rank(rows.iter().map(|(i, s)| (*i, *s)), c, top)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Category::Cpu, 10), vec!["b", "a"], "idle is not ranked");
    assert_eq!(ids(Category::Memory, 10), vec!["a", "b", "idle"]);
    assert_eq!(ids(Category::Memory, 1), vec!["a"]);
}

#[test]
fn sparklines_cover_the_range_slot_by_slot() {
    let s = summary(0.5, 100);
    let (start, line) = sparkline(&s, Category::Cpu, 1_000_000, 1_600_000, 15_000);
    assert_eq!(start, 990_000);
    assert_eq!(line.len(), 41);
    // The first slot starts before the data but holds the steps ending at 1,001,000 on.
    assert!(
        line.iter()
            .all(|v| v.is_some_and(|v| (v - 0.5).abs() < 1e-6)),
        "{line:?}"
    );
    let (_, mem) = sparkline(&s, Category::Memory, 0, 2_000_000, 15_000);
    assert_eq!(mem.len(), 134);
    assert_eq!(
        mem.iter().flatten().count(),
        41,
        "gaps where there is no data"
    );
    assert_eq!(slot_ms(0, 15 * 60_000), 15_000);
    assert_eq!(slot_ms(0, 3_600_000), 60_000);
    assert_eq!(slot_ms(0, 86_400_000), 1_800_000);
}
