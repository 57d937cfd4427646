use super::*;
use crate::store::schema::METRICS;
use crate::store::writer::SampleBuffer;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{Int64Array, StringArray, TimestampMillisecondArray};

/// One rotation interval of `ids`, `rows` samples each, a second apart from `t0`.
fn data_file(t0: i64, rows: i64, ids: &[&str]) -> Bytes {
    let mut buf = SampleBuffer::new();
    for i in 0..rows {
        for (c, id) in ids.iter().enumerate() {
            let v = t0 + i * 10 + c as i64;
            buf.push(t0 + i * 1000, id, &vec![Some(v); METRICS.len()]);
        }
    }
    let mut out = Vec::new();
    buf.encode(&mut out, "n").unwrap();
    Bytes::from(out)
}

/// A file of an older writer: only timestamp, container_id and the first metric.
fn old_file(t0: i64, ids: &[&str]) -> Bytes {
    let fields = vec![
        schema::arrow_schema().field(0).clone(),
        schema::arrow_schema().field(1).clone(),
        schema::arrow_schema().field(2).clone(),
    ];
    let target = Arc::new(Schema::new(fields));
    let n = ids.len();
    let batch = RecordBatch::try_new(
        target.clone(),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![t0; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(Int64Array::from(vec![7; n])),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, target, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    Bytes::from(out)
}

fn read(bytes: Vec<u8>) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn rows_once_sorted_by_container_then_time() {
    let inputs = vec![
        ("a".to_string(), data_file(1_000_000, 90, &["c2", "c1"])),
        (
            "b".to_string(),
            data_file(1_090_000, 90, &["c1", "c3", "c2"]),
        ),
        ("c".to_string(), data_file(1_180_000, 5, &["c3"])),
    ];
    let merged = merge(&inputs, "n").unwrap();
    assert_eq!(merged.rows, 90 * 2 + 90 * 3 + 5);
    let batches = read(merged.bytes);
    let mut last: Option<(String, i64)> = None;
    let mut per_container: HashMap<String, (usize, i64)> = HashMap::new();
    for b in &batches {
        let ids = b.column(1).as_string::<i32>();
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        let first_metric = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let key = (ids.value(i).to_string(), ts.value(i));
            if let Some(prev) = &last {
                assert!(prev < &key, "{prev:?} then {key:?}");
            }
            let e = per_container.entry(key.0.clone()).or_default();
            e.0 += 1;
            e.1 += first_metric.value(i);
            last = Some(key);
        }
    }
    assert_eq!(per_container["c1"].0, 180);
    assert_eq!(per_container["c3"].0, 95);
    // Values travel with their rows: the sum of c1's first metric is the inputs' sum.
    let c1_sum: i64 = (0..90).map(|i| 1_000_000 + i * 10 + 1).sum::<i64>()
        + (0..90).map(|i| 1_090_000 + i * 10).sum::<i64>();
    assert_eq!(per_container["c1"].1, c1_sum);
}

#[test]
fn older_inputs_with_fewer_columns_get_nulls() {
    let inputs = vec![
        ("old".to_string(), old_file(500_000, &["c1", "c2"])),
        ("new".to_string(), data_file(600_000, 3, &["c1"])),
    ];
    let merged = merge(&inputs, "n").unwrap();
    assert_eq!(merged.rows, 5);
    let batches = read(merged.bytes);
    let schema = batches[0].schema();
    assert_eq!(schema.fields().len(), METRICS.len() + 2, "union of columns");
    let last_metric = METRICS[METRICS.len() - 1].name;
    let nulls: usize = batches
        .iter()
        .map(|b| b.column_by_name(last_metric).unwrap().null_count())
        .sum();
    assert_eq!(
        nulls, 2,
        "the old file's rows have no value for newer columns"
    );
    assert_eq!(
        schema.field_with_name(METRICS[0].name).unwrap().metadata()["fgm.kind"],
        METRICS[0].kind.as_str(),
        "field metadata of the newest input is kept"
    );
}

#[test]
fn unreadable_input_is_named() {
    let inputs = vec![
        ("good".to_string(), data_file(0, 1, &["c1"])),
        (
            "broken.parquet".to_string(),
            Bytes::from_static(b"not parquet"),
        ),
    ];
    let e = merge(&inputs, "n").unwrap_err().to_string();
    assert!(e.contains("broken.parquet"), "{e}");
}

/// One interval's network rows of `containers` × two interfaces, written as the agent does.
fn network_file(dir: &std::path::Path, t0_s: i64, containers: &[&str]) -> Bytes {
    use crate::store::datasets::{Buffer, NETWORK, Row};
    let start = chrono::DateTime::from_timestamp(t0_s, 0).unwrap();
    let mut buf = Buffer::new(&NETWORK);
    for s in 0..3 {
        for c in containers {
            for iface in ["eth0", "lo"] {
                buf.push(Row {
                    timestamp_ms: (t0_s + s) * 1000,
                    container: (*c).to_string(),
                    texts: vec![Arc::from("uid"), Arc::from(iface)],
                    ints: NETWORK.ints.iter().map(|_| Some(t0_s + s)).collect(),
                });
            }
        }
    }
    let (path, _) = datasets::write(dir, "n", start, &mut buf).unwrap().unwrap();
    Bytes::from(std::fs::read(path).unwrap())
}

#[test]
fn dataset_files_merge_with_their_own_footer_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = vec![
        (
            "a".to_string(),
            network_file(dir.path(), 1_000, &["s2", "s1"]),
        ),
        (
            "b".to_string(),
            network_file(dir.path(), 1_090, &["s1", "s3"]),
        ),
    ];
    let merged = merge_dataset(&inputs, "n", &datasets::NETWORK).unwrap();
    assert_eq!(merged.rows, 2 * 2 * 3 + 2 * 2 * 3);
    let footer = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(merged.bytes.clone()))
        .unwrap()
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let value = |k: &str| {
        footer
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
    };
    assert_eq!(value("fgm.dataset").as_deref(), Some("network"));
    assert_eq!(
        value(schema::FORMAT_VERSION_KEY).as_deref(),
        Some(datasets::NETWORK.version)
    );
    let batches = read(merged.bytes);
    let mut rows = Vec::new();
    for b in &batches {
        let ids = b.column_by_name("container_id").unwrap().as_string::<i32>();
        let ifaces = b.column_by_name("interface").unwrap().as_string::<i32>();
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        for i in 0..b.num_rows() {
            rows.push((
                ids.value(i).to_string(),
                ts.value(i),
                ifaces.value(i).to_string(),
            ));
        }
    }
    // Containers in order; each (container, time, interface) once.
    let containers: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut sorted = containers.clone();
    sorted.sort();
    assert_eq!(containers, sorted);
    let mut unique = rows.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), rows.len());
    assert_eq!(rows.iter().filter(|r| r.0 == "s1").count(), 12);
}
