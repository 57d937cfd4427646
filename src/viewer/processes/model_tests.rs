use std::path::PathBuf;

use chrono::TimeZone;

use super::*;
use crate::store::layout::FileKind;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn row(t: i64, pid: i64, start_ms: i64, cpu_usec: i64, event: Event) -> ProcessRow {
    ProcessRow {
        t,
        event,
        pid,
        start_ms,
        nspid: Some(pid - 100),
        ppid: Some(1),
        command: format!("cmd-{pid}"),
        cpu_usec: Some(cpu_usec),
        rss_bytes: Some(1000 + t - T0),
        pss_bytes: None,
    }
}

fn one(answer: &Answer, pid: i64, start_ms: i64) -> &Process {
    answer
        .processes
        .iter()
        .find(|p| p.pid == pid && p.start_ms == start_ms)
        .unwrap_or_else(|| panic!("no process ({pid}, {start_ms}) in {answer:?}"))
}

#[test]
fn cpu_rates_come_from_consecutive_counters_of_a_process() {
    let mut b = Builder::new(T0, T0 + 10_000, MAX_SAMPLES);
    // Half a core for 4 s, then 2 cores over a 2 s gap (not kept in between).
    let rows = vec![
        row(T0, 200, T0 - 60_000, 1_000_000, Event::None),
        row(T0 + 1000, 200, T0 - 60_000, 1_500_000, Event::None),
        row(T0 + 2000, 200, T0 - 60_000, 2_000_000, Event::None),
        row(T0 + 4000, 200, T0 - 60_000, 6_000_000, Event::None),
    ];
    b.add_file(rows);
    let answer = b.finish(MAX_PROCESSES);
    let p = one(&answer, 200, T0 - 60_000);
    let rates: Vec<Option<f64>> = p.samples.iter().map(|s| s.cpu_cores).collect();
    assert_eq!(rates, vec![None, Some(0.5), Some(0.5), Some(2.0)]);
    // Started before the range with no row before it: only the differences count.
    assert!((p.cpu_seconds - 5.0).abs() < 1e-9, "{}", p.cpu_seconds);
    assert_eq!(p.max_rss_bytes, Some(1000 + 4000));
    assert_eq!(
        (p.nspid, p.ppid, p.command.as_str()),
        (Some(100), Some(1), "cmd-200")
    );
    assert_eq!(p.end_ms, None);
}

#[test]
fn a_recycled_pid_is_another_process() {
    let mut b = Builder::new(T0, T0 + 60_000, MAX_SAMPLES);
    let first = T0 - 5000;
    let second = T0 + 20_000;
    b.add_file(vec![
        row(T0, 300, first, 100_000, Event::None),
        row(T0 + 1000, 300, first, 400_000, Event::None),
        row(T0 + 3000, 300, first, 400_000, Event::Exit),
        // The same pid, started later: its counter starts again from 0.
        row(T0 + 21_000, 300, second, 50_000, Event::Start),
        row(T0 + 22_000, 300, second, 1_050_000, Event::None),
    ]);
    let answer = b.finish(MAX_PROCESSES);
    assert_eq!(answer.total, 2);
    let old = one(&answer, 300, first);
    let new = one(&answer, 300, second);
    assert_eq!(old.end_ms, Some(T0 + 3000), "the exit row's time");
    assert_eq!(new.end_ms, None);
    assert!((old.cpu_seconds - 0.3).abs() < 1e-9, "{}", old.cpu_seconds);
    // Started in the range: its CPU before its first row counts too.
    assert!((new.cpu_seconds - 1.05).abs() < 1e-9, "{}", new.cpu_seconds);
    assert_eq!(new.samples[0].cpu_cores, None, "no rate for its first row");
    assert_eq!(new.samples[1].cpu_cores, Some(1.0));
    // No rate across the two processes (that would be negative).
    assert!(
        answer
            .processes
            .iter()
            .flat_map(|p| &p.samples)
            .all(|s| s.cpu_cores.is_none_or(|c| c >= 0.0))
    );
    assert_eq!(answer.processes[0].start_ms, second, "the most CPU first");
}

#[test]
fn a_files_order_of_rows_is_not_time_order_but_rates_are() {
    // As written: sorted by (pid, start, command, event, time), so the exit
    // row and the start row come after the others.
    let start = T0 + 500;
    let mut b = Builder::new(T0, T0 + 10_000, MAX_SAMPLES);
    b.add_file(vec![
        row(T0 + 2000, 7, start, 300_000, Event::None),
        row(T0 + 3000, 7, start, 600_000, Event::None),
        row(T0 + 4000, 7, start, 600_000, Event::Exit),
        row(T0 + 1000, 7, start, 100_000, Event::Start),
    ]);
    let answer = b.finish(MAX_PROCESSES);
    let p = one(&answer, 7, start);
    let t: Vec<i64> = p.samples.iter().map(|s| s.t).collect();
    assert_eq!(t, vec![T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000]);
    let rates: Vec<Option<f64>> = p.samples.iter().map(|s| s.cpu_cores).collect();
    assert_eq!(rates, vec![None, Some(0.2), Some(0.3), Some(0.0)]);
    assert_eq!(p.end_ms, Some(T0 + 4000));
    assert!((p.cpu_seconds - 0.6).abs() < 1e-9);
}

#[test]
fn a_row_before_the_range_is_the_baseline_and_only_the_share_after_from_counts() {
    let start = T0 - 100_000;
    let mut b = Builder::new(T0, T0 + 10_000, MAX_SAMPLES);
    b.add_file(vec![
        row(T0 - 30_000, 9, start, 0, Event::None),
        row(T0 - 2000, 9, start, 2_000_000, Event::None),
    ]);
    b.add_file(vec![
        row(T0 + 2000, 9, start, 6_000_000, Event::None),
        // After the range: not read.
        row(T0 + 20_000, 9, start, 9_000_000, Event::Exit),
        // Only before the range: not listed.
        row(T0 - 1000, 10, start, 5_000_000, Event::Exit),
    ]);
    let answer = b.finish(MAX_PROCESSES);
    assert_eq!(answer.total, 1, "{answer:?}");
    let p = one(&answer, 9, start);
    assert_eq!(p.samples.len(), 1);
    assert_eq!(
        p.samples[0].cpu_cores,
        Some(1.0),
        "from the row before the range"
    );
    assert!(
        (p.cpu_seconds - 2.0).abs() < 1e-9,
        "half of 4 s of one core: {}",
        p.cpu_seconds
    );
    assert_eq!(p.end_ms, None, "the exit after the range is not in it");
}

#[test]
fn samples_are_capped_by_merging_buckets_that_keep_the_mean_rate_and_peak() {
    let start = T0 - 1;
    let n = 2000;
    let rows: Vec<ProcessRow> = (0..n)
        .map(|i| {
            let mut r = row(T0 + i * 1000, 5, start, i * 250_000, Event::None);
            r.rss_bytes = Some(if i == 1234 { 1 << 30 } else { 1 << 20 });
            r.pss_bytes = (i % 10 == 0).then_some(i);
            r
        })
        .collect();
    let mut b = Builder::new(T0, T0 + (n - 1) * 1000, MAX_SAMPLES);
    b.add_file(rows);
    let answer = b.finish(MAX_PROCESSES);
    let p = one(&answer, 5, start);
    assert!(
        p.samples.len() <= MAX_SAMPLES && p.samples.len() > MAX_SAMPLES / 2,
        "{}",
        p.samples.len()
    );
    assert!(p.downsampled);
    assert_eq!(p.raw_samples, n as usize);
    assert!(p.samples.windows(2).all(|w| w[0].t < w[1].t), "time order");
    assert!(
        p.samples
            .iter()
            .skip(1)
            .all(|s| (s.cpu_cores.unwrap() - 0.25).abs() < 1e-9)
    );
    assert_eq!(
        p.samples.iter().filter_map(|s| s.rss_bytes).max(),
        Some(1 << 30),
        "the peak stays"
    );
    assert_eq!(p.last_pss_bytes, Some(1990));
    assert!((p.cpu_seconds - (n - 1) as f64 * 0.25).abs() < 1e-6);

    // At or under the cap: every row as it is.
    let mut b = Builder::new(T0, T0 + 100_000, 10);
    b.add_file(
        (0..10)
            .map(|i| row(T0 + i * 7, 6, start, i, Event::None))
            .collect(),
    );
    let p = b.finish(MAX_PROCESSES).processes.remove(0);
    assert_eq!((p.samples.len(), p.downsampled), (10, false));
}

#[test]
fn processes_are_sorted_by_cpu_and_capped() {
    let mut b = Builder::new(T0, T0 + 10_000, MAX_SAMPLES);
    let rows = (0..30)
        .flat_map(|pid| {
            let start = T0 - 1000;
            [
                row(T0, pid, start, 0, Event::None),
                row(T0 + 1000, pid, start, pid * 1000, Event::None),
            ]
        })
        .collect();
    b.add_file(rows);
    let answer = b.finish(5);
    assert_eq!((answer.total, answer.truncated), (30, true));
    let pids: Vec<i64> = answer.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![29, 28, 27, 26, 25]);
}

fn file(node: &str, min: u32, kind: FileKind) -> DataFile {
    DataFile {
        path: PathBuf::from(format!("{node}-{min}")),
        node: node.into(),
        start: Utc.with_ymd_and_hms(2026, 1, 1, 0, min, 0).unwrap(),
        kind,
    }
}

#[test]
fn files_of_a_range_end_where_the_next_file_of_their_node_starts() {
    let at = |min| Utc.with_ymd_and_hms(2026, 1, 1, 0, min, 0).unwrap();
    // Processes files at 0, 10, 20 (none at 30: no process rows then), 40.
    let processes = vec![
        file("a", 40, FileKind::Parquet),
        file("a", 0, FileKind::Parquet),
        file("a", 10, FileKind::Parquet),
        file("a", 20, FileKind::Parquet),
        file("b", 5, FileKind::Parquet),
    ];
    let metrics: Vec<DataFile> = [0, 10, 20, 30]
        .into_iter()
        .map(|m| file("a", m, FileKind::Parquet))
        .chain([
            file("a", 40, FileKind::Tail),
            file("b", 5, FileKind::Parquet),
        ])
        .collect();
    let names = |files: Vec<DataFile>| -> Vec<String> {
        files.iter().map(|f| f.path.display().to_string()).collect()
    };
    // 00:31-00:35: the file of 00:20 ended at 00:30 (the metrics file's start).
    assert_eq!(
        names(select_files(processes.clone(), &metrics, at(31), at(35))),
        vec!["b-5"]
    );
    assert_eq!(
        names(select_files(processes.clone(), &metrics, at(12), at(25))),
        vec!["b-5", "a-10", "a-20"]
    );
    assert_eq!(
        names(select_files(processes.clone(), &metrics, at(45), at(50))),
        vec!["b-5", "a-40"]
    );
    assert_eq!(
        names(select_files(processes, &metrics, at(0), at(0))),
        vec!["a-0"]
    );
}
