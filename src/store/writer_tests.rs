use std::collections::BTreeMap;

use super::*;
use crate::store::buffer::{RowDecoder, encode_row, grow_for};
use crate::store::varint::{decode_value, put_varint, take_varint, unzigzag, value_code, zigzag};
use arrow_array::{Array, Int64Array, StringArray};
use chrono::TimeZone;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use schema::MetricKind;

fn sample(i: i64) -> Vec<Option<i64>> {
    let mut v: Vec<Option<i64>> = (0..METRICS.len() as i64)
        .map(|m| Some(i * 1000 + m))
        .collect();
    v[schema::metric_index("memory_limit_bytes").unwrap()] = None;
    v
}

#[test]
fn round_trip_sorted_by_container_then_time() {
    let mut buf = SampleBuffer::new();
    for t in 0..3 {
        buf.push(1_000 * t + 2_000, "bbbbbbbbbbbb", &sample(t));
        buf.push(1_000 * t + 2_000, "aaaaaaaaaaaa", &sample(10 + t));
    }
    let mut bytes = Vec::new();
    buf.encode(&mut bytes, "node-a").unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 6);
    let ids = batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(ids.value(0), "aaaaaaaaaaaa");
    assert_eq!(ids.value(5), "bbbbbbbbbbbb");
    let cpu = batch
        .column_by_name("cpu_usage_usec")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(cpu.value(0), 10_000);
    assert_eq!(cpu.value(3), 0);
    let limit = batch.column_by_name("memory_limit_bytes").unwrap();
    assert_eq!(limit.null_count(), 6, "absent values stay null, not zero");
    let meta = schema::metric_columns(&batch.schema());
    assert_eq!(meta.len(), METRICS.len());
}

#[test]
fn file_appears_only_complete_and_empty_buffers_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2025, 12, 31, 23, 59, 30).unwrap();
    assert!(
        write_data_file(dir.path(), "n", start, &SampleBuffer::new())
            .unwrap()
            .is_none()
    );
    let mut buf = SampleBuffer::new();
    buf.push(start.timestamp_millis(), "aaaaaaaaaaaa", &sample(1));
    let written = write_data_file(dir.path(), "n", start, &buf)
        .unwrap()
        .unwrap();
    assert!(
        written
            .path
            .ends_with("dt=2025-12-31/identifier=n/metrics-20251231T235930Z.parquet")
    );
    assert!(written.bytes > 0);
    assert!(!layout::in_progress_path(&written.path).exists());
    assert_eq!(written.first, start);
}

const EDGES: [i64; 9] = [
    0,
    1,
    -1,
    63,
    -64,
    i64::MAX,
    i64::MAX - 1,
    i64::MIN + 1,
    i64::MIN,
];

#[test]
fn zigzag_round_trips_edges_and_keeps_small_magnitudes_small() {
    for v in EDGES {
        assert_eq!(unzigzag(zigzag(v)), v, "{v}");
    }
    assert_eq!([0, -1, 1, -2, 2].map(zigzag), [0, 1, 2, 3, 4]);
    assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
    assert_eq!(zigzag(i64::MIN), u64::MAX);
}

#[test]
fn varints_round_trip_and_reject_truncated_or_overlong_input() {
    let cases: [(u128, usize); 6] = [
        (0, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (u128::from(u64::MAX), 10),
        (u128::from(u64::MAX) + 1, 10),
    ];
    let mut bytes = Vec::new();
    for (v, len) in cases {
        let before = bytes.len();
        put_varint(&mut bytes, v);
        assert_eq!(bytes.len() - before, len, "{v}");
    }
    let mut pos = 0;
    for (v, _) in cases {
        assert_eq!(take_varint(&bytes, &mut pos), Some(v));
    }
    assert_eq!(pos, bytes.len());
    assert_eq!(take_varint(&bytes, &mut pos), None, "nothing left");
    assert_eq!(take_varint(&[0x80, 0x80], &mut 0), None, "ends mid-varint");
    assert_eq!(
        take_varint(&[0xff; 11], &mut 0),
        None,
        "longer than 10 bytes"
    );
}

#[test]
fn value_codes_are_exact_for_every_pair_of_edge_values() {
    let values: Vec<Option<i64>> = EDGES
        .iter()
        .map(|&v| Some(v))
        .chain([None, Some(i64::MIN), None])
        .collect();
    for &first in &values {
        for &second in &values {
            let (mut enc, mut dec) = (0i64, 0i64);
            for value in [first, second, first] {
                let code = value_code(value, &mut enc);
                assert_eq!(code == 0, value.is_none(), "only null is code 0");
                assert_eq!(decode_value(code, &mut dec), Some(value));
                assert_eq!(enc, dec, "delta bases stay in step");
            }
        }
    }
    assert_eq!(decode_value(u128::from(u64::MAX) + 2, &mut 0), None);
}

#[test]
fn unchanged_gauges_and_small_steps_take_one_byte() {
    let mut prev = 1 << 40;
    for step in [0, 1, -1, 63, -63] {
        let mut bytes = Vec::new();
        put_varint(&mut bytes, value_code(Some(prev + step), &mut prev));
        assert_eq!(bytes.len(), 1, "step {step}");
    }
}

#[test]
fn rows_round_trip_through_encode_row_and_the_decoder() {
    let rows: [(i64, &[Option<i64>]); 4] = [
        (1_767_225_600_000, &[Some(5), None, Some(i64::MIN)]),
        (1_767_225_601_000, &[Some(4)]),
        (i64::MIN, &[None, Some(i64::MAX), Some(0), Some(9)]),
        (i64::MAX, &[]),
    ];
    let (mut bytes, mut last_ms, mut prev) = (Vec::new(), 0, [0i64; 3]);
    for (ts, values) in rows {
        encode_row(&mut bytes, &mut last_ms, &mut prev, ts, values);
    }
    let mut decoder = RowDecoder::new(&bytes, 3);
    let mut row = [None; 3];
    for (ts, values) in rows {
        assert_eq!(decoder.next_row(&mut row), Some(ts));
        let mut expected = values.to_vec();
        expected.resize(3, None);
        assert_eq!(row.as_slice(), expected.get(..3).unwrap());
    }
    assert!(decoder.at_end());
    assert_eq!(decoder.next_row(&mut row), None);
    let mut truncated = RowDecoder::new(&bytes[..bytes.len() - 1], 3);
    assert!((0..4).any(|_| truncated.next_row(&mut row).is_none()));
}

#[test]
fn streams_grow_by_an_eighth_not_by_doubling() {
    let mut bytes = Vec::new();
    for _ in 0..2_000 {
        grow_for(&mut bytes, 33);
        bytes.extend_from_slice(&[1; 33]);
        assert!(bytes.capacity() - bytes.len() <= bytes.len() / 8 + 64);
    }
}

/// What the buffer must hold: rows keyed by (container, time), padded to
/// [`METRICS`] with nulls.
type Model = BTreeMap<(String, i64), Vec<Option<i64>>>;
type Row = (String, i64, Vec<Option<i64>>);

fn push_both(buf: &mut SampleBuffer, model: &mut Model, ts: i64, id: &str, values: &[Option<i64>]) {
    buf.push(ts, id, values);
    let mut row = values.to_vec();
    row.resize(METRICS.len(), None);
    model.insert((id.to_string(), ts), row);
}

fn model_rows(model: &Model) -> Vec<Row> {
    model
        .iter()
        .map(|((id, ts), v)| (id.clone(), *ts, v.clone()))
        .collect()
}

fn batch_rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in batches {
        assert_eq!(batch.schema().fields(), schema::arrow_schema().fields());
        let ts = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        let ids = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let metrics: Vec<&Int64Array> = (2..batch.num_columns())
            .map(|c| batch.column(c).as_any().downcast_ref().unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            let values = metrics
                .iter()
                .map(|m| m.is_valid(r).then_some(m.value(r)))
                .collect();
            rows.push((ids.value(r).to_string(), ts.value(r), values));
        }
    }
    rows
}

/// Encodes `buf` and reads it back: the batches and the row group count.
fn encode_and_read(buf: &SampleBuffer) -> (Vec<u8>, Vec<RecordBatch>, usize) {
    let mut bytes = Vec::new();
    buf.encode(&mut bytes, "node-a").unwrap();
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone())).unwrap();
    let row_groups = builder.metadata().num_row_groups();
    let batches = builder.build().unwrap().map(|b| b.unwrap()).collect();
    (bytes, batches, row_groups)
}

#[test]
fn buffer_and_file_match_a_reference_model() {
    let width = METRICS.len();
    let mut buf = SampleBuffer::new();
    let mut model = Model::new();
    let base = 1_767_225_600_000;
    for t in 0..12i64 {
        let ts = base + t * 1_000 + t % 3;
        // Counter with a reset at t = 6, nulls on odd seconds, edge values.
        let mut full: Vec<Option<i64>> = (0..width as i64).map(|m| Some(m * 7 + t)).collect();
        full[0] = Some(if t < 6 { 1_000_000 + t * 250 } else { t - 6 });
        full[1] = (t % 2 == 0).then_some(t * 10);
        full[2] = [
            Some(0),
            Some(i64::MAX),
            Some(i64::MIN + 1),
            Some(i64::MIN),
            None,
            Some(-1),
        ][t as usize % 6];
        full[width - 1] = (t % 4 == 0).then_some(i64::MAX - t);
        push_both(&mut buf, &mut model, ts, "cccccccccccc", &full);
        // Trailing-short slices, down to empty.
        let short = &full[..(t as usize * 5) % (width + 1)];
        push_both(&mut buf, &mut model, ts, "aaaaaaaaaaaa", short);
        // A container appearing late.
        if t >= 7 {
            let late: Vec<Option<i64>> = full.iter().map(|v| v.map(|v| v.wrapping_neg())).collect();
            push_both(&mut buf, &mut model, ts, "bbbbbbbbbbbb", &late);
        }
    }
    // Extra values past METRICS are ignored; extreme timestamp jumps are exact.
    let mut long = vec![Some(5); width + 3];
    long[width] = Some(99);
    buf.push(-1_000, "dddddddddddd", &long);
    buf.push(i64::MAX, "dddddddddddd", &[Some(i64::MIN)]);
    long.truncate(width);
    model.insert(("dddddddddddd".into(), -1_000), long);
    let mut last = vec![None; width];
    last[0] = Some(i64::MIN);
    model.insert(("dddddddddddd".into(), i64::MAX), last);

    assert_eq!(buf.rows(), model.len());
    assert_eq!(buf.containers(), 4);
    let expected = model_rows(&model);
    assert_eq!(batch_rows(&[buf.to_record_batch().unwrap()]), expected);
    let (_, batches, row_groups) = encode_and_read(&buf);
    assert_eq!(row_groups, 1);
    assert_eq!(batch_rows(&batches), expected);
}

/// Deterministic xorshift, so realistic-looking data needs no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n) as i64
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// One second of plausible readings after `state`: counters grow by small
/// random steps (a few containers are busy), gauges mostly stay put.
fn step(rng: &mut Rng, container: usize, state: &mut [Option<i64>]) {
    let busy = container.is_multiple_of(8);
    for (m, value) in METRICS.iter().zip(state.iter_mut()) {
        let Some(v) = value else { continue };
        *v += match (m.name, m.kind) {
            ("cpu_usage_usec" | "cpu_user_usec" | "cpu_system_usec", _) => {
                rng.below(if busy { 400_000 } else { 3_000 })
            }
            ("cpu_nr_periods", _) => 10,
            ("cpu_nr_throttled", _) => i64::from(busy && rng.one_in(4)),
            ("cpu_throttled_usec", _) if busy && rng.one_in(4) => rng.below(50_000),
            ("cpu_throttled_usec", _) => 0,
            (name, _) if name.starts_with("io_") && rng.one_in(5) => {
                rng.below(if name.ends_with("bytes") { 1 << 20 } else { 64 })
            }
            (name, _) if name.starts_with("io_") => 0,
            (name, _) if name.contains("pressure") => rng.below(if busy { 20_000 } else { 50 }),
            ("memory_oom_events" | "memory_oom_kill_events", _) => 0,
            (name, MetricKind::Gauge) if name.starts_with("memory") && rng.one_in(10) => {
                (rng.below(128) - 64) * 4096
            }
            (_, MetricKind::Gauge) if rng.one_in(30) => rng.below(3) - 1,
            (_, MetricKind::Counter) => rng.below(100),
            _ => 0,
        };
    }
}

/// `containers` x `secs` rows of [`step`] data, ids pushed out of sorted order.
fn realistic(containers: usize, secs: i64) -> (SampleBuffer, Model) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limit = schema::metric_index("memory_limit_bytes").unwrap();
    let mut states: Vec<Vec<Option<i64>>> = (0..containers)
        .map(|c| {
            let mut s: Vec<Option<i64>> = METRICS
                .iter()
                .map(|m| {
                    Some(match m.kind {
                        MetricKind::Counter => rng.below(1 << 40),
                        MetricKind::Gauge => rng.below(1 << 30),
                    })
                })
                .collect();
            s[limit] = (!c.is_multiple_of(3)).then_some(1 << 30);
            s
        })
        .collect();
    let mut buf = SampleBuffer::new();
    let mut model = Model::new();
    for t in 0..secs {
        let ts = 1_767_225_600_000 + t * 1_000 + rng.below(3);
        for (c, state) in states.iter_mut().enumerate() {
            step(&mut rng, c, state);
            let id = format!("{:012x}", (c * 7919) % 65_521);
            push_both(&mut buf, &mut model, ts, &id, state);
        }
    }
    (buf, model)
}

fn file_metadata(bytes: Vec<u8>) -> parquet::file::metadata::ParquetMetaData {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    builder.metadata().as_ref().clone()
}

#[test]
fn large_buffers_encode_in_chunks_into_one_sorted_row_group() {
    let (buf, model) = realistic(300, 90);
    assert!(buf.rows() > 3 * CHUNK_ROWS, "needs several chunks");
    let (bytes, batches, row_groups) = encode_and_read(&buf);
    assert_eq!(row_groups, 1);
    let rows = batch_rows(&batches);
    assert_eq!(rows.len(), 300 * 90);
    assert!(
        rows.windows(2)
            .all(|w| (&w[0].0, w[0].1) < (&w[1].0, w[1].1))
    );
    assert_eq!(rows, model_rows(&model));
    assert_eq!(batch_rows(&[buf.to_record_batch().unwrap()]), rows);

    // Chunking moves page boundaries at most (the writer flushes pages between
    // write() calls): the column chunks keep their statistics and their size.
    let mut whole = Vec::new();
    let batch = buf.to_record_batch().unwrap();
    let mut writer = ArrowWriter::try_new(
        &mut whole,
        batch.schema(),
        Some(writer_properties("node-a")),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let (chunked, whole) = (file_metadata(bytes), file_metadata(whole));
    assert_eq!(whole.num_row_groups(), 1);
    let (a, b) = (chunked.row_group(0), whole.row_group(0));
    assert_eq!(a.num_rows(), b.num_rows());
    assert_eq!(a.num_columns(), b.num_columns());
    for (x, y) in a.columns().iter().zip(b.columns()) {
        assert_eq!(x.column_path(), y.column_path());
        assert_eq!(
            x.encodings_mask(),
            y.encodings_mask(),
            "{}",
            x.column_path()
        );
        assert_eq!(x.statistics(), y.statistics(), "{}", x.column_path());
    }
    let (sa, sb) = (a.compressed_size(), b.compressed_size());
    assert!(
        sa.abs_diff(sb) * 100 < sb.unsigned_abs(),
        "chunked {sa} vs whole {sb} bytes"
    );
    println!("row group bytes: chunked {sa}, whole {sb}");
}

/// 211 containers x 90 s is a full node's default interval. The bound scales
/// with [`METRICS`] (columns are being added): at most two bytes a value,
/// about 1 MB for 25 columns, and at least 5x below eight bytes a value.
#[test]
fn an_interval_of_211_containers_takes_under_two_bytes_a_value() {
    let (mut buf, _) = realistic(211, 90);
    let values = buf.rows() * (1 + METRICS.len());
    let old_layout = values * size_of::<i64>();
    let held = buf.heap_bytes();
    println!(
        "heap_bytes {held} vs old layout {old_layout} ({} columns)",
        METRICS.len()
    );
    assert!(held < values * 2, "{held} bytes for {values} values");
    assert!(held * 5 < old_layout, "{held} vs {old_layout}");
    buf.clear();
    assert!(buf.is_empty() && buf.span().is_none() && buf.containers() == 0);
    assert!(buf.heap_bytes() < 100_000, "series are dropped on clear");
}
