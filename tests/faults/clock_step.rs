//! Wall-clock steps, seen by the real agent binary: libfaketime
//! (`LD_PRELOAD`, offset read from a file at every call) steps the clock the
//! process sees while the monotonic clock runs on (this machine's clock is
//! never touched).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fine_grained_monitor::store::index::Index;
use fine_grained_monitor::store::{layout, reader};

use crate::support::{agent_command, fixture, spawn};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn libfaketime() -> PathBuf {
    let lib = PathBuf::from(LIBFAKETIME);
    assert!(
        lib.exists(),
        "{LIBFAKETIME} missing: install the Debian package `libfaketime` (tools/setup.sh does)"
    );
    lib
}

/// Every sample's time (ms) per finished file, in file order.
fn files_and_times(data: &Path) -> Vec<(DateTime<Utc>, Vec<i64>)> {
    use arrow_array::{Array, TimestampMillisecondArray};
    let listing = layout::list_data_files(data, None).unwrap();
    listing
        .files
        .iter()
        .map(|f| {
            let mut times = Vec::new();
            for batch in reader::read_file(&f.path, Some(&["timestamp"])).unwrap() {
                let ts = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .unwrap();
                times.extend((0..ts.len()).map(|i| ts.value(i)));
            }
            (f.start, times)
        })
        .collect()
}

/// Runs the agent 2.5 s, steps its clock by `offset` (libfaketime syntax,
/// seconds), runs 2.5 s more, stops it. Returns (data dir, log, real time of the step).
fn run_with_step(offset_secs: i64) -> (tempfile::TempDir, String, DateTime<Utc>) {
    let lib = libfaketime();
    let data = tempfile::tempdir().unwrap();
    let offset_file = data.path().join(".faketime-offset");
    std::fs::write(&offset_file, "+0\n").unwrap();
    let mut cmd = agent_command(data.path(), &fixture("v1-cgroupfs-docker"), &[]);
    cmd.env("LD_PRELOAD", &lib)
        .env("FAKETIME_TIMESTAMP_FILE", &offset_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let mut agent = spawn(cmd);
    std::thread::sleep(Duration::from_millis(2500));
    let stepped_at = Utc::now();
    std::fs::write(&offset_file, format!("{offset_secs:+}\n")).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", agent.log_text());
    let log = agent.log_text();
    (data, log, stepped_at)
}

/// Fault: the wall clock steps back two hours (NTP correcting a clock that
/// ran ahead). User sees: a warning with the step; samples after it carry
/// the corrected time; no file dated in the future and an index whose
/// "latest" is not in the future. Data lost: the samples taken before the
/// step, whose times lie in the future of the corrected clock (2.5 s here;
/// at most the time since the clock went wrong, when that exceeds the
/// 5-minute tolerance).
#[test]
fn clock_step_back_leaves_nothing_in_the_future() {
    let (data, log, stepped_at) = run_with_step(-7200);
    assert!(
        log.contains("the wall clock was stepped") && log.contains("backward"),
        "{log}"
    );
    let corrected_now = Utc::now() - chrono::Duration::hours(2);
    let tolerance = chrono::Duration::minutes(5);
    let files = files_and_times(data.path());
    assert!(!files.is_empty(), "samples after the step were written");
    for (start, times) in &files {
        assert!(
            *start <= corrected_now + tolerance,
            "future-dated file {start}"
        );
        for t in times {
            let t = DateTime::from_timestamp_millis(*t).unwrap();
            assert!(t <= corrected_now, "sample at {t} is in the future");
            assert!(
                t >= stepped_at - chrono::Duration::hours(2) - chrono::Duration::seconds(2),
                "after the step, samples carry the corrected time: {t}"
            );
        }
    }
    let index = Index::load(&layout::index_path(data.path()))
        .unwrap()
        .unwrap();
    let latest = index.data_range.latest.expect("latest");
    assert!(latest <= corrected_now, "latest {latest} in the future");
    assert!(
        log.contains("reason=\"future\""),
        "removed through retention:\n{log}"
    );
}

/// Fault: the wall clock steps forward two hours (a VM resumed, NTP
/// correcting a clock that ran behind). User sees: a warning with the step
/// and a two-hour gap in the charts; no file spans the gap. Data lost: none.
#[test]
fn clock_step_forward_keeps_everything_and_no_file_spans_the_gap() {
    let (data, log, stepped_at) = run_with_step(7200);
    assert!(
        log.contains("the wall clock was stepped") && log.contains("forward"),
        "{log}"
    );
    let files = files_and_times(data.path());
    let boundary = (stepped_at + chrono::Duration::hours(1)).timestamp_millis();
    let (mut before, mut after) = (0, 0);
    for (start, times) in &files {
        let early = times.iter().filter(|t| **t < boundary).count();
        let late = times.len() - early;
        assert!(early == 0 || late == 0, "file {start} spans the step");
        before += early;
        after += late;
    }
    // 100 ms interval, 2.5 s each side (minus start-up and scheduling).
    assert!(before >= 3 * 10, "samples before the step kept: {before}");
    assert!(after >= 3 * 10, "samples after the step: {after}");
    let index = Index::load(&layout::index_path(data.path()))
        .unwrap()
        .unwrap();
    let latest = index.data_range.latest.unwrap();
    assert!(
        latest > Utc::now() + chrono::Duration::minutes(110),
        "latest follows the new clock: {latest}"
    );
    assert!(
        index.data_range.earliest.unwrap() < stepped_at,
        "the samples before the step stay"
    );
}
