use super::*;
use crate::store::schema;
use crate::store::writer::{SampleBuffer, write_data_file};
use chrono::{TimeZone, Utc};

const IDS: [&str; 2] = ["aaaaaaaaaaaa", "bbbbbbbbbbbb"];

/// One 90 s file from `start`: CPU counters that reset once in the second
/// file of each hour, a working set that moves.
fn file(dir: &Path, start: DateTime<Utc>, k: i64) -> DataFile {
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    let ws = schema::metric_index("memory_working_set_bytes").unwrap();
    let mut buf = SampleBuffer::new();
    for s in 0..90i64 {
        for (n, id) in IDS.iter().enumerate() {
            let mut values = vec![None; schema::METRICS.len()];
            let base = if k % 40 == 1 { 0 } else { k * 1_000_000 };
            values[cpu] = Some(base + s * 10_000 * (n as i64 + 1));
            values[ws] = Some((1 << 20) * (1 + (s + k) % 7));
            buf.push(start.timestamp_millis() + s * 1000, id, &values);
        }
    }
    let written = write_data_file(dir, "n", start, &buf).unwrap().unwrap();
    DataFile {
        path: written.path,
        node: "n".into(),
        start,
        kind: layout::FileKind::Parquet,
    }
}

fn hour(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap()
}

/// Files every 90 s from 10:00 to 12:03 (three hours, the last one open).
fn files(dir: &Path) -> Vec<DataFile> {
    (0..83)
        .map(|k| file(dir, hour(10) + TimeDelta::seconds(90 * k), k))
        .collect()
}

#[test]
fn an_hour_summary_is_the_join_of_its_files_footers() {
    let dir = tempfile::tempdir().unwrap();
    let all = files(dir.path());
    let of_ten: Vec<DataFile> = all
        .iter()
        .filter(|f| hour_of(f.start) == hour(10))
        .cloned()
        .collect();
    assert_eq!(of_ten.len(), 40);
    let summary = build("n", hour(10), &of_ten).unwrap().unwrap();
    assert!(summary.covers(&of_ten));
    assert!(!summary.covers(&of_ten[1..]));
    let mut expected = FileSummary::default();
    for f in &of_ten {
        let s = reader::read_footer_summary(&f.path).unwrap().unwrap();
        join_into(&mut expected.containers, &s.containers, codec::SLOT_MS);
    }
    let decoded = codec::decode(&summary.summary).unwrap();
    assert_eq!(decoded.containers, expected.containers);
    let span = decoded.span.unwrap();
    assert_eq!(span.0, hour(10).timestamp_millis());
    assert_eq!(
        span.1,
        (hour(10) + TimeDelta::seconds(39 * 90 + 89)).timestamp_millis()
    );
    // The reset in the second file is skipped, not counted as a drop.
    let (_, a) = &decoded.containers[0];
    assert!(a.counters[0].increase > 0.0);
}

#[test]
fn closed_hours_are_summarised_once_and_again_when_their_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let all = files(dir.path());
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert!(listing.foreign.is_empty());
    // The open hour (12:00, the newest file's) is not summarised.
    assert_eq!(stale_hours(&listing, "n"), vec![hour(11), hour(10)]);
    assert_eq!(summarise_all(dir.path(), "n").unwrap(), 2);
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert!(listing.foreign.is_empty(), "{:?}", listing.foreign);
    assert_eq!(listing.hours.len(), 2);
    assert!(stale_hours(&listing, "n").is_empty());
    assert!(stale_hours(&listing, "other-node").is_empty());
    // Retention removes 10:00's first file: that hour's summary is stale.
    std::fs::remove_file(&all[0].path).unwrap();
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert_eq!(stale_hours(&listing, "n"), vec![hour(10)]);
    let path = summarise_hour(dir.path(), "n", hour(10)).unwrap().unwrap();
    assert_eq!(read(&path).unwrap().files.len(), 39);
}

#[test]
fn damaged_and_newer_hour_summaries_are_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let all = files(dir.path());
    let path = summarise_hour(dir.path(), "n", hour(10)).unwrap().unwrap();
    let good = read(&path).unwrap();
    assert_eq!(good.files.len(), 40);
    assert!(good.covers(&all[..40]));
    std::fs::write(&path, b"{\"format\": 1, \"node\": ").unwrap();
    assert!(read(&path).is_none());
    let newer = HourSummary {
        format: FORMAT + 1,
        ..good.clone()
    };
    std::fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
    assert!(read(&path).is_none());
    let listing = layout::list_data_files(dir.path(), None).unwrap();
    assert!(stale_hours(&listing, "n").contains(&hour(10)));
    assert!(read(&dir.path().join("none.summary.json")).is_none());
}

#[test]
fn hours_without_footer_summaries_get_none() {
    let dir = tempfile::tempdir().unwrap();
    let start = hour(10);
    let path = layout::data_file_path(dir.path(), "n", start);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut buf = SampleBuffer::new();
    buf.push(
        start.timestamp_millis(),
        IDS[0],
        &vec![Some(1); schema::METRICS.len()],
    );
    // Written as an earlier build did: no summary in the footer.
    let batch = buf.to_record_batch().unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let f = DataFile {
        path,
        node: "n".into(),
        start,
        kind: layout::FileKind::Parquet,
    };
    assert!(build("n", hour(10), &[f]).unwrap().is_none());
    assert!(summarise_hour(dir.path(), "n", hour(10)).unwrap().is_none());
}
