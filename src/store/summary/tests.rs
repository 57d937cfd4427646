use super::*;

const SLOT: i64 = 15_000;

/// `n` one-second samples from `t0`: CPU at 0.5 cores, a working set that
/// climbs 1 KiB a second, every other column a slow counter; `reset_at`
/// restarts the counters from zero.
fn series(t0: i64, n: usize, reset_at: Option<usize>) -> (Vec<i64>, Vec<Vec<i64>>) {
    let ts: Vec<i64> = (0..n as i64).map(|i| t0 + i * 1000).collect();
    let mut values = vec![Vec::new(); COUNTERS.len() + GAUGES.len()];
    for i in 0..n {
        let k = match reset_at {
            Some(r) if i >= r => (i - r) as i64,
            _ => i as i64,
        };
        for (c, column) in values.iter_mut().enumerate().take(COUNTERS.len()) {
            column.push(if c == CPU {
                500_000 * k
            } else {
                k * (c as i64 + 1)
            });
        }
        values[COUNTERS.len() + WORKING_SET].push(1 << 20 | (i as i64) << 10);
        values[COUNTERS.len() + MEMORY_LIMIT].push(if i % 7 == 3 { NULL_VALUE } else { 1 << 30 });
        values[COUNTERS.len() + CPU_QUOTA].push(50_000);
        values[COUNTERS.len() + CPU_PERIOD].push(100_000);
    }
    (ts, values)
}

fn part(ts: &[i64], values: &[Vec<i64>], range: std::ops::Range<usize>) -> Option<Summary> {
    let v: Vec<Vec<i64>> = values.iter().map(|c| c[range.clone()].to_vec()).collect();
    summarize(&ts[range], &slices(&v), None, SLOT)
}

#[test]
fn a_steady_counter_gives_its_exact_increase_and_peak() {
    let (ts, values) = series(1_000_000, 181, None);
    let s = summarize(&ts, &slices(&values), None, SLOT).unwrap();
    assert_eq!(s.counters[CPU].increase, 180.0 * 500_000.0);
    assert_eq!(
        (s.first_t, s.last_t, s.samples),
        (1_000_000, 1_180_000, 181)
    );
    assert_eq!(s.cpu_peak, 500_000.0, "µs per second = 0.5 cores");
    assert_eq!(s.working_set_max, 1 << 20 | 180 << 10);
    assert_eq!(s.gauges_last[MEMORY_LIMIT], 1 << 30);
    let covered: f32 = s.slots.iter().map(|(_, x)| x.covered_ms).sum();
    assert_eq!(covered, 180_000.0);
    let cpu: f32 = s.slots.iter().map(|(_, x)| x.cpu_usec).sum();
    assert_eq!(cpu, 90_000_000.0);
    // Slots are epoch-aligned and every one holds 0.5 cores.
    for (n, slot) in &s.slots {
        assert!(*n * SLOT <= 1_180_000 && (n + 1) * SLOT > 1_000_000);
        assert!((slot.cpu_usec / slot.covered_ms * 1000.0 - 500_000.0).abs() < 1e-3);
    }
}

#[test]
fn joining_files_equals_summarising_them_together() {
    // Resets, nulls and uneven cuts: any split must give the same answer.
    let (ts, mut values) = series(7_000, 300, Some(170));
    values[THROTTLED_USEC][40] = NULL_VALUE;
    values[COUNTERS.len() + WORKING_SET][100] = NULL_VALUE;
    let whole = summarize(&ts, &slices(&values), None, SLOT).unwrap();
    for cuts in [vec![90], vec![1, 2, 150], vec![89, 90, 171, 299]] {
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(ts.len());
        let mut joined: Option<Summary> = None;
        for w in bounds.windows(2) {
            let next = part(&ts, &values, w[0]..w[1]).unwrap();
            match joined.as_mut() {
                None => joined = Some(next),
                Some(j) => j.append(&next, SLOT),
            }
        }
        assert_eq!(joined.unwrap(), whole, "cuts {cuts:?}");
    }
}

#[test]
fn a_reset_is_skipped_not_counted_negative() {
    let (ts, values) = series(0, 20, Some(10));
    let s = summarize(&ts, &slices(&values), None, SLOT).unwrap();
    // Steps 0..9 then 0..9 again: 9 + 9 steps of 0.5 s; the drop is skipped.
    assert_eq!(s.counters[CPU].increase, 18.0 * 500_000.0);
    assert_eq!(s.counters[CPU].first, 0);
    assert_eq!(s.counters[CPU].last, 9 * 500_000);
}

#[test]
fn clipping_keeps_only_the_range() {
    let (ts, values) = series(0, 100, None);
    let s = summarize(&ts, &slices(&values), Some((10_000, 19_999)), SLOT).unwrap();
    assert_eq!((s.first_t, s.last_t, s.samples), (10_000, 19_000, 10));
    assert_eq!(s.counters[CPU].increase, 9.0 * 500_000.0);
    assert!(summarize(&ts, &slices(&values), Some((200_000, 300_000)), SLOT).is_none());
}

/// Two summaries equal up to the rounding the footer stores (whole sums, a
/// whole µs/s peak, f32 slot sums added in a different order).
fn assert_close(a: &FileSummary, b: &FileSummary) {
    assert_eq!(a.span, b.span);
    assert_eq!(a.containers.len(), b.containers.len());
    for ((ia, sa), (ib, sb)) in a.containers.iter().zip(&b.containers) {
        assert_eq!(ia, ib);
        assert_eq!(
            (sa.first_t, sa.last_t, sa.samples),
            (sb.first_t, sb.last_t, sb.samples)
        );
        for (ca, cb) in sa.counters.iter().zip(&sb.counters) {
            assert_eq!((ca.first, ca.last), (cb.first, cb.last));
            assert!((ca.increase - cb.increase).abs() < 0.5, "{ca:?} {cb:?}");
        }
        assert!((sa.cpu_peak - sb.cpu_peak).abs() <= 0.5);
        assert_eq!(sa.working_set_max, sb.working_set_max);
        assert_eq!(sa.gauges_last, sb.gauges_last);
        assert_eq!(sa.slots.len(), sb.slots.len(), "{ia}");
        for ((na, x), (nb, y)) in sa.slots.iter().zip(&sb.slots) {
            assert_eq!(na, nb);
            let close = |p: f32, q: f32| (p - q).abs() <= 1.0 + 1e-6 * p.abs().max(q.abs());
            assert!(
                close(x.covered_ms, y.covered_ms) && close(x.cpu_usec, y.cpu_usec),
                "{x:?} {y:?}"
            );
            assert!(
                close(x.nr_periods, y.nr_periods) && close(x.io_bytes, y.io_bytes),
                "{x:?} {y:?}"
            );
            assert!(x.psi_usec.iter().zip(y.psi_usec).all(|(p, q)| close(*p, q)));
            assert!(
                x.working_set_max == y.working_set_max
                    || (x.working_set_max.is_nan() && y.working_set_max.is_nan())
            );
        }
    }
}

fn file_summary(slot: i64) -> FileSummary {
    // Two containers over 25 minutes, one with a counter reset and nulls.
    let (ts, values) = series(1_765_000_000_000, 1500, None);
    let (ts2, values2) = series(1_765_000_030_000, 1400, Some(700));
    let a = summarize(&ts, &slices(&values), None, slot).unwrap();
    let b = summarize(&ts2, &slices(&values2), None, slot).unwrap();
    FileSummary {
        span: Some((ts[0], ts2[ts2.len() - 1].max(ts[ts.len() - 1]))),
        containers: vec![("aaaa".into(), a), ("bbbb".into(), b)],
    }
}

#[test]
fn the_footer_value_decodes_to_what_was_summarised() {
    let summary = file_summary(codec::SLOT_MS);
    let value = codec::encode(&summary);
    let back = codec::decode(&value).expect("decodes");
    assert_close(&summary, &back);
    assert!(codec::decode("not base64 !").is_none());
    let mut truncated = value.clone();
    truncated.truncate(value.len() / 2);
    assert!(
        codec::decode(&truncated).is_none(),
        "a cut value is refused, not misread"
    );
}

#[test]
fn wider_slots_from_the_footer_equal_summarising_at_that_width() {
    let narrow = codec::decode(&codec::encode(&file_summary(codec::SLOT_MS))).unwrap();
    for width in [300_000, 600_000, 1_800_000, 10_800_000] {
        let widened = codec::widen(&narrow, width).unwrap();
        assert_close(&widened, &file_summary(width));
    }
    assert!(
        codec::widen(&narrow, 60_000).is_none(),
        "narrower than stored"
    );
    assert!(codec::widen(&narrow, 450_000).is_none(), "not a multiple");
}
