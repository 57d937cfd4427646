use super::*;

fn row(seed: i64) -> Vec<Option<i64>> {
    (0..METRICS.len() as i64)
        .map(|m| (m % 7 != 3).then_some(seed * 1000 + m))
        .collect()
}

/// A decoded row: (id, ts, values).
type Fed = (String, i64, Vec<Option<i64>>);
/// A cycle to encode: (ts, rows of (id, values)).
type CycleRows<'a> = (i64, Vec<(&'a str, Vec<Option<i64>>)>);

/// Every row fed, as (id, ts, values).
fn decode_all(bytes: &[u8]) -> (Vec<Fed>, TailEnd) {
    let mut decoder = TailDecoder::new();
    let mut rows = Vec::new();
    let end = decoder
        .feed(bytes, Path::new("t.tail"), |id, ts, v| {
            rows.push((id.to_string(), ts, v.to_vec()))
        })
        .unwrap();
    (rows, end)
}

fn file_of(cycles: &[CycleRows<'_>]) -> Vec<u8> {
    let mut enc = TailEncoder::new();
    let mut bytes = enc.header();
    for (ts, rows) in cycles {
        enc.cycle(
            *ts,
            rows.iter().map(|(id, v)| (*id, v.as_slice())),
            &mut bytes,
        );
    }
    bytes
}

#[test]
fn cycles_round_trip_with_nulls_new_and_vanishing_containers() {
    let mut b2 = row(2);
    b2[0] = None; // a value that goes null...
    let mut b3 = row(3);
    b3[5] = Some(i64::MIN); // ...and extremes stay exact
    b3[6] = Some(i64::MAX);
    let cycles = vec![
        (1_000, vec![("aaaa", row(1)), ("bbbb", row(1))]),
        (2_000, vec![("aaaa", row(1)), ("bbbb", b2.clone())]),
        (3_000, vec![("bbbb", b3.clone()), ("cccc", row(9))]),
        (4_000, vec![("aaaa", row(4))]),
    ];
    let (rows, end) = decode_all(&file_of(&cycles));
    assert_eq!(end, TailEnd::Clean);
    let expected: Vec<(String, i64, Vec<Option<i64>>)> = cycles
        .iter()
        .flat_map(|(ts, rows)| {
            rows.iter()
                .map(move |(id, v)| (id.to_string(), *ts, v.clone()))
        })
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn a_torn_or_corrupt_end_is_read_up_to_its_last_whole_frame() {
    let cycles: Vec<_> = (0..5)
        .map(|t| (1_000 * t, vec![("aaaa", row(t)), ("bbbb", row(t + 10))]))
        .collect();
    let bytes = file_of(&cycles);
    let (whole, _) = decode_all(&bytes);
    assert_eq!(whole.len(), 10);
    // Every cut inside the file reads the whole frames before it, and stops.
    let mut seen_partial = false;
    for cut in HEADER_LEN..bytes.len() {
        let (rows, end) = decode_all(&bytes[..cut]);
        assert!(
            rows.len() <= 10 && rows.len() % 2 == 0,
            "cut {cut}: {}",
            rows.len()
        );
        assert_eq!(rows[..], whole[..rows.len()], "cut {cut}");
        if end == TailEnd::Incomplete {
            seen_partial = true;
        }
    }
    assert!(seen_partial);
    // A flipped byte in the third frame: the first two cycles (and the columns frame) stand.
    let mut corrupt = bytes.clone();
    let mut pos = HEADER_LEN;
    for _ in 0..3 {
        let len = u32::from_le_bytes(corrupt[pos..pos + 4].try_into().unwrap()) as usize;
        pos += FRAME_HEAD + len;
    }
    corrupt[pos + FRAME_HEAD + 2] ^= 0x55;
    let (rows, end) = decode_all(&corrupt);
    assert_eq!(end, TailEnd::Corrupt);
    assert_eq!(rows, whole[..4]);
}

#[test]
fn feeding_in_pieces_gives_the_same_rows_once() {
    let cycles: Vec<_> = (0..20)
        .map(|t| (1_000 * t, vec![("aaaa", row(t)), ("bbbb", row(t % 3))]))
        .collect();
    let bytes = file_of(&cycles);
    let mut decoder = TailDecoder::new();
    let mut rows = Vec::new();
    let mut fed = 0;
    for step in [3usize, 50, 7, 400, 1, 100_000] {
        let upto = (fed + step).min(bytes.len());
        let start = decoder.consumed() as usize;
        decoder
            .feed(&bytes[start..upto], Path::new("t"), |id, ts, v| {
                rows.push((id.to_string(), ts, v.to_vec()))
            })
            .unwrap();
        fed = upto;
    }
    assert_eq!(decoder.consumed() as usize, bytes.len());
    assert_eq!(rows, decode_all(&bytes).0);
}

#[test]
fn newer_versions_and_other_files_are_refused_in_words() {
    let mut bytes = file_of(&[(1, vec![("a", row(1))])]);
    bytes[MAGIC.len()] = VERSION + 1;
    let err = TailDecoder::new()
        .feed(&bytes, Path::new("/d/m.tail"), |_, _, _| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("version 2, newer than this build reads (1)"),
        "{err}"
    );
    let err = TailDecoder::new()
        .feed(b"PAR1 and more", Path::new("/d/x.tail"), |_, _, _| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("/d/x.tail is not a tail file"),
        "{err}"
    );
}

#[test]
fn unchanged_values_cost_almost_nothing() {
    // 300 containers whose values do not change: after the first cycle a
    // frame is a few bytes a container at most.
    let ids: Vec<String> = (0..300).map(|i| format!("{i:012x}")).collect();
    let values: Vec<Vec<Option<i64>>> = (0..300).map(row).collect();
    let mut enc = TailEncoder::new();
    let mut first = Vec::new();
    enc.cycle(
        0,
        ids.iter()
            .map(String::as_str)
            .zip(values.iter().map(Vec::as_slice)),
        &mut first,
    );
    let mut second = Vec::new();
    enc.cycle(
        1_000,
        ids.iter()
            .map(String::as_str)
            .zip(values.iter().map(Vec::as_slice)),
        &mut second,
    );
    assert!(
        second.len() < 300,
        "a cycle of 300 unchanged containers: {} bytes",
        second.len()
    );
}

#[test]
fn the_writer_appends_frames_and_a_follower_reads_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics-20261206T000000Z.tail");
    let mut w = TailWriter::create(&path).unwrap();
    let mut follower = TailFollower::new();
    assert_eq!(follower.refresh(&path).unwrap(), TailEnd::Clean);
    assert_eq!(follower.rows().rows(), 0);
    for t in 0..3 {
        let r = row(t);
        w.append(t * 1000, [("aaaa", r.as_slice())]).unwrap();
    }
    follower.refresh(&path).unwrap();
    assert_eq!(follower.rows().rows(), 3);
    let read_before = follower.consumed();
    let r = row(9);
    w.append(3_000, [("bbbb", r.as_slice())]).unwrap();
    w.sync().unwrap();
    follower.refresh(&path).unwrap();
    assert_eq!(
        follower.rows().rows(),
        4,
        "the new row only, not the first three again"
    );
    assert_eq!(follower.consumed(), w.len());
    assert!(follower.consumed() > read_before);
    let (all, end) = read_tail_file(&path).unwrap();
    assert_eq!((all.rows(), end), (4, TailEnd::Clean));
    assert_eq!(tail_path_for(&path.with_extension("parquet")), path);
}
