use super::*;
use crate::store::writer::{SampleBuffer, write_data_file};
use chrono::{TimeZone, Utc};

#[test]
fn metric_column_groups_rows_per_container() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
    let mut buf = SampleBuffer::new();
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    for t in 0..3i64 {
        for (n, id) in ["bbbbbbbbbbbb", "aaaaaaaaaaaa"].iter().enumerate() {
            let mut values = vec![None; schema::METRICS.len()];
            values[cpu] = (t != 1 || n == 0).then_some(t * 100 + n as i64);
            buf.push(start.timestamp_millis() + t * 1000, id, &values);
        }
    }
    let file = write_data_file(dir.path(), "n", start, &buf)
        .unwrap()
        .unwrap();
    let col = read_metric(&file.path, "cpu_usage_usec").unwrap();
    assert_eq!(col.series.len(), 2);
    let b = col.get("bbbbbbbbbbbb").unwrap();
    assert_eq!(b.values, vec![0, 100, 200]);
    let a = col.get("aaaaaaaaaaaa").unwrap();
    assert_eq!(a.values, vec![1, NULL_VALUE, 201]);
    assert_eq!(a.timestamps[2] - a.timestamps[0], 2000);
    assert!(
        read_metric(&file.path, "no_such_metric")
            .unwrap()
            .series
            .is_empty()
    );
    let spans = read_container_spans(&file.path).unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].2 - spans[0].1, 2000);
}

#[test]
fn files_of_earlier_builds_compressed_with_zstd_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics-20251230T000000Z.parquet");
    let mut buf = SampleBuffer::new();
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    let mut values = vec![None; schema::METRICS.len()];
    values[cpu] = Some(42);
    buf.push(1_767_052_800_000, "aaaaaaaaaaaa", &values);
    let batch = buf.to_record_batch().unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let file = std::fs::File::create(&path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    let meta = writer.close().unwrap();
    assert_eq!(
        meta.row_group(0).column(2).compression(),
        parquet::basic::Compression::ZSTD(Default::default())
    );
    let col = read_metric(&path, "cpu_usage_usec").unwrap();
    assert_eq!(col.get("aaaaaaaaaaaa").unwrap().values, vec![42]);
}

/// A file of a future build: the writer's footer with `fgm.format_version` one higher.
pub(crate) fn write_newer_version_file(path: &std::path::Path) {
    let mut buf = SampleBuffer::new();
    let mut values = vec![None; schema::METRICS.len()];
    values[schema::metric_index("cpu_usage_usec").unwrap()] = Some(42);
    buf.push(1_767_052_800_000, "aaaaaaaaaaaa", &values);
    let batch = buf.to_record_batch().unwrap();
    let next = schema::FORMAT_VERSION.parse::<u32>().unwrap() + 1;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            schema::FORMAT_VERSION_KEY.to_string(),
            next.to_string(),
        )]))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_newer_format_version_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics-20251230T000000Z.parquet");
    write_newer_version_file(&path);
    let next = schema::FORMAT_VERSION.parse::<u32>().unwrap() + 1;
    for err in [
        read_metric(&path, "cpu_usage_usec").unwrap_err(),
        read_schema(&path).unwrap_err(),
        read_footer_value(&path, "anything").unwrap_err(),
        read_metrics(&path, &["cpu_usage_usec"]).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(matches!(err, ReadError::NewerFormat { .. }), "{text}");
        assert!(
            text.contains(&format!("format version {next}"))
                && text.contains(&format!("up to {}", schema::FORMAT_VERSION))
                && text.contains("metrics-20251230T000000Z.parquet"),
            "{text}"
        );
    }
    // The current version (what the writer stamps) is read.
    let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
    let mut buf = SampleBuffer::new();
    buf.push(
        start.timestamp_millis(),
        "aaaaaaaaaaaa",
        &vec![Some(1); schema::METRICS.len()],
    );
    let file = write_data_file(dir.path(), "n", start, &buf)
        .unwrap()
        .unwrap();
    assert_eq!(
        read_footer_value(&file.path, schema::FORMAT_VERSION_KEY)
            .unwrap()
            .as_deref(),
        Some(schema::FORMAT_VERSION)
    );
    assert!(read_schema(&file.path).is_ok());
}

#[test]
fn garbage_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics-20251230T000000Z.parquet");
    std::fs::write(&path, b"PAR1 not really").unwrap();
    let err = read_metric(&path, "cpu_usage_usec")
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics-20251230T000000Z.parquet"), "{err}");
}

#[test]
fn several_metrics_are_read_in_one_pass_and_missing_ones_are_null() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
    let mut buf = SampleBuffer::new();
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    let mem = schema::metric_index("memory_current_bytes").unwrap();
    for t in 0..4i64 {
        for (n, id) in ["bbbbbbbbbbbb", "aaaaaaaaaaaa"].iter().enumerate() {
            let mut values = vec![None; schema::METRICS.len()];
            values[cpu] = Some(t * 10 + n as i64);
            values[mem] = (t != 2).then_some(1000 + t);
            buf.push(start.timestamp_millis() + t * 1000, id, &values);
        }
    }
    let file = write_data_file(dir.path(), "n", start, &buf)
        .unwrap()
        .unwrap();
    let cols = read_metrics(
        &file.path,
        &["memory_current_bytes", "no_such_metric", "cpu_usage_usec"],
    )
    .unwrap();
    assert_eq!(cols.present, vec![true, false, true]);
    let ids: Vec<&str> = cols.series.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, vec!["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
    let a = cols.get("aaaaaaaaaaaa").unwrap();
    assert_eq!(a.timestamps.len(), 4);
    assert_eq!(a.values(0), [1000, 1001, NULL_VALUE, 1003]);
    assert_eq!(a.values(1), [NULL_VALUE; 4]);
    assert_eq!(a.values(2), [1, 11, 21, 31]);
}

#[test]
fn files_of_other_writers_read_with_their_types() {
    use arrow_array::{ArrayRef, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics-20251230T000000Z.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("container_id", DataType::Utf8, true),
        Field::new("cpu_usage_usec", DataType::Float64, true),
        Field::new("pids_current", DataType::Int32, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(vec![
            3_000_000, 1_000_000, 2_000_000, 4_000_000,
        ])),
        Arc::new(StringArray::from(vec![
            Some("a"),
            Some("a"),
            None,
            Some("b"),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(2.6),
            None,
            Some(9.0),
            Some(f64::NAN),
        ])),
        Arc::new(Int32Array::from(vec![3, 1, 2, 4])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let cols = read_metrics(&path, &["cpu_usage_usec", "pids_current"]).unwrap();
    let ids: Vec<&str> = cols.series.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b"], "the row without an id is skipped");
    let a = cols.get("a").unwrap();
    assert_eq!(a.timestamps, [1_000, 3_000], "µs to ms, sorted");
    assert_eq!(a.values(0), [NULL_VALUE, 3], "doubles rounded, nulls kept");
    assert_eq!(a.values(1), [1, 3]);
    assert_eq!(
        cols.get("b").unwrap().values(0),
        [NULL_VALUE],
        "NaN is no value"
    );
}

/// `batch` written to `path` by another writer than the agent's
/// (`properties`), with the footer entry `extra` if any (a lying footer, for the tests).
fn write_with(
    path: &std::path::Path,
    batch: &RecordBatch,
    properties: Option<parquet::file::properties::WriterProperties>,
    extra: Option<(&str, &str)>,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), properties).unwrap();
    writer.write(batch).unwrap();
    if let Some((key, value)) = extra {
        writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
            key.into(),
            value.to_string(),
        ));
    }
    writer.close().unwrap();
}

/// A file of `buf` written with `runs` as its footer's row runs.
fn with_runs(path: &std::path::Path, buf: &SampleBuffer, runs: &str) {
    let properties = crate::store::writer::writer_properties("n");
    let batch = buf.to_record_batch().unwrap();
    write_with(path, &batch, Some(properties), Some((row_runs::KEY, runs)));
}

#[test]
fn the_footers_row_runs_stand_for_the_id_column_only_when_they_fit() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    let mut buf = SampleBuffer::new();
    for t in 0..4i64 {
        for (n, id) in ["cccccccccccc", "aaaaaaaaaaaa"].iter().enumerate() {
            let mut values = vec![None; schema::METRICS.len()];
            values[cpu] = Some(t * 10 + n as i64);
            buf.push(start.timestamp_millis() + t * 1000, id, &values);
        }
    }
    // As the agent writes it: the runs are in the footer and give the same columns.
    let file = write_data_file(dir.path(), "n", start, &buf)
        .unwrap()
        .unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(
        std::fs::File::open(&file.path).unwrap(),
    )
    .unwrap();
    let runs = parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == row_runs::KEY))
        .and_then(|k| k.value.clone());
    assert_eq!(runs.as_deref(), Some("4 aaaaaaaaaaaa\n4 cccccccccccc\n"));
    let read = read_metrics(&file.path, &["cpu_usage_usec"]).unwrap();
    let expected = read_metrics_with(&file.path, &["cpu_usage_usec"], false)
        .unwrap()
        .unwrap();
    assert_eq!(read, expected);
    assert_eq!(read.get("cccccccccccc").unwrap().values(0), [0, 10, 20, 30]);
    // Runs that split rows where the times do not ascend are not trusted: the
    // ids are read and the rows come out right.
    let lying = dir.path().join("metrics-20251230T000130Z.parquet");
    with_runs(&lying, &buf, "2 aaaaaaaaaaaa\n6 cccccccccccc\n");
    assert_eq!(
        read_metrics_with(&lying, &["cpu_usage_usec"], true).unwrap(),
        None,
        "the runs do not fit the timestamps"
    );
    assert_eq!(read_metrics(&lying, &["cpu_usage_usec"]).unwrap(), expected);
    // Runs that do not cover the rows are ignored outright.
    let short = dir.path().join("metrics-20251230T000300Z.parquet");
    with_runs(&short, &buf, "4 aaaaaaaaaaaa\n");
    assert_eq!(read_metrics(&short, &["cpu_usage_usec"]).unwrap(), expected);
}

#[test]
fn files_of_another_schema_are_decoded_in_full_after_ours() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2025, 12, 30, 0, 0, 0).unwrap();
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    let mut buf = SampleBuffer::new();
    for t in 0..3i64 {
        let mut values = vec![None; schema::METRICS.len()];
        values[cpu] = Some(t + 7);
        buf.push(start.timestamp_millis() + t * 1000, "aaaaaaaaaaaa", &values);
    }
    // Ours: its schema is learnt (fingerprint in the footer, recomputed).
    let ours = write_data_file(dir.path(), "n", start, &buf)
        .unwrap()
        .unwrap();
    let read = read_metrics(&ours.path, &["cpu_usage_usec"]).unwrap();
    assert_eq!(read.get("aaaaaaaaaaaa").unwrap().values(0), [7, 8, 9]);
    let (known, _) = known_schema::known().expect("learnt from our file");
    assert_eq!(Some(known.as_str()), known_schema::of_written());
    // Another writer's file with fewer columns in another order, claiming no
    // fingerprint or a wrong one: decoded in full, values where they are.
    let batch = buf.to_record_batch().unwrap();
    let names = [schema::CONTAINER_ID, "cpu_usage_usec", schema::TIMESTAMP];
    let fields: Vec<usize> = names
        .iter()
        .map(|n| batch.schema().index_of(n).unwrap())
        .collect();
    let small = batch.project(&fields).unwrap();
    for (n, claim) in [None, Some("0123456789abcdef")].into_iter().enumerate() {
        let path = dir
            .path()
            .join(format!("metrics-20251230T00{n}500Z.parquet"));
        write_with(&path, &small, None, claim.map(|c| (known_schema::KEY, c)));
        let read = read_metrics(&path, &["cpu_usage_usec", "memory_current_bytes"]).unwrap();
        assert_eq!(read.present, [true, false]);
        assert_eq!(read.get("aaaaaaaaaaaa").unwrap().values(0), [7, 8, 9]);
    }
    // And ours again, with the kept schema.
    let read = read_metrics(&ours.path, &["cpu_usage_usec"]).unwrap();
    assert_eq!(read.get("aaaaaaaaaaaa").unwrap().values(0), [7, 8, 9]);
}
