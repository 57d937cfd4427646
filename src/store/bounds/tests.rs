use std::io::Write;
use std::os::unix::fs::FileExt;

use chrono::{TimeZone, Utc};

use super::*;
use crate::store::reader::{ReadError, read_metric};
use crate::store::schema;
use crate::store::writer::{SampleBuffer, write_data_file};

/// Compact-protocol zigzag varint of `v`.
fn zigzag(v: i64) -> Vec<u8> {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A page header: type, sizes, and a nested data page header with a binary
/// statistic, a list and a bool, the way real headers carry extra fields.
fn header(uncompressed: i64, compressed: i64) -> Vec<u8> {
    let mut h = vec![0x15];
    h.extend(zigzag(0)); // 1: type (i32)
    h.push(0x15);
    h.extend(zigzag(uncompressed)); // 2: uncompressed_page_size
    h.push(0x15);
    h.extend(zigzag(compressed)); // 3: compressed_page_size
    h.push(0x2c); // 5: data_page_header (struct), delta 2
    h.push(0x15);
    h.extend(zigzag(1024)); // 1: num_values
    h.push(0x18); // 2: binary
    h.push(3);
    h.extend(b"abc");
    h.push(0x19); // 3: list
    h.push(0x25); // 2 x i32
    h.extend(zigzag(7));
    h.extend(zigzag(8));
    h.push(0x11); // 4: bool true
    h.push(0); // end of data_page_header
    h.push(0); // end of page header
    h
}

#[test]
fn page_headers_are_read_and_their_length_known() {
    let h = header(4096, 1000);
    let sizes = page_header(&h).unwrap().unwrap();
    assert_eq!(
        sizes,
        PageSizes {
            uncompressed: 4096,
            compressed: 1000,
            header_len: h.len()
        }
    );
    // Followed by page data: the length still ends at the header.
    let mut with_data = h.clone();
    with_data.extend([0xff; 10]);
    assert_eq!(
        page_header(&with_data).unwrap().unwrap().header_len,
        h.len()
    );
    // Cut anywhere: more bytes are needed, never a wrong answer.
    for cut in 0..h.len() {
        assert_eq!(page_header(&h[..cut]).unwrap(), None, "cut at {cut}");
    }
}

#[test]
fn lying_or_broken_headers_are_errors() {
    assert!(page_header(&header(-1, 10)).is_err());
    // Field 2 missing.
    assert!(page_header(&[0x15, 0x00, 0x25, 0x02, 0x00]).is_err());
    // Unknown Thrift type 14.
    assert!(page_header(&[0x1e, 0x00]).is_err());
    // A binary claiming a gigabyte.
    let mut huge_binary = vec![0x18];
    huge_binary.extend(zigzag(1 << 29));
    assert!(page_header(&huge_binary).is_err());
    // Nesting without end.
    let deep: Vec<u8> = std::iter::repeat_n(0x1c, 64).collect();
    assert!(page_header(&deep).is_err());
    // A 2 GiB claim parses: the caller compares it with the column chunk.
    let bomb = page_header(&header(i64::from(i32::MAX), 10))
        .unwrap()
        .unwrap();
    assert_eq!(bomb.uncompressed, i32::MAX);
}

fn data_file(dir: &Path) -> std::path::PathBuf {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut buf = SampleBuffer::new();
    let cpu = schema::metric_index("cpu_usage_usec").unwrap();
    for t in 0..200i64 {
        for id in ["aaaaaaaaaaaa", "bbbbbbbbbbbb"] {
            let mut values = vec![None; schema::METRICS.len()];
            values[cpu] = Some(t * 1000);
            buf.push(start.timestamp_millis() + t * 1000, id, &values);
        }
    }
    write_data_file(dir, "n", start, &buf)
        .unwrap()
        .unwrap()
        .path
}

#[test]
fn a_real_file_passes_and_a_page_claiming_more_than_its_chunk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = data_file(dir.path());
    let file = File::open(&path).unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        file.try_clone().unwrap(),
    )
    .unwrap();
    let metadata = builder.metadata().clone();
    check_column_chunks(&file, &metadata, None).unwrap();
    assert_eq!(
        read_metric(&path, "cpu_usage_usec").unwrap().series.len(),
        2
    );

    // Tamper with the first page of the timestamp column: its uncompressed size
    // becomes the largest value of the same encoded length (the file keeps its layout).
    let chunk = metadata.row_group(0).column(0);
    let start = chunk
        .dictionary_page_offset()
        .filter(|o| *o > 0)
        .unwrap_or_else(|| chunk.data_page_offset()) as u64;
    let mut head = vec![0u8; 64];
    FileExt::read_exact_at(&file, &mut head, start).unwrap();
    // Field 1 (type) is one header byte and a one-byte varint; field 2 follows.
    assert_eq!(head[0], 0x15);
    assert_eq!(head[2], 0x15, "field 2 right after field 1");
    let len = head[3..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    // The largest even (zigzag: positive) varint of that length, low group first.
    let mut bytes = vec![0xffu8; len];
    bytes[len - 1] = 0x7f;
    bytes[0] &= 0xfe;
    let claimed = page_header(&[&head[..3], &bytes, &head[3 + len..]].concat())
        .unwrap()
        .unwrap()
        .uncompressed;
    assert!(
        i64::from(claimed) > chunk.uncompressed_size(),
        "{claimed} must exceed {}",
        chunk.uncompressed_size()
    );
    let mut out = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Seek::seek(&mut out, std::io::SeekFrom::Start(start + 3)).unwrap();
    out.write_all(&bytes).unwrap();
    drop(out);
    let e = read_metric(&path, "cpu_usage_usec").unwrap_err();
    assert!(matches!(e, ReadError::Bounds { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("claims"),
        "{msg}"
    );
}

#[test]
fn a_footer_larger_than_the_limit_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = data_file(dir.path());
    // A file grown (sparse) to 32 MiB whose footer claims 20 MiB.
    let claim: u32 = 20 << 20;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(32 << 20).unwrap();
    let mut tail = claim.to_le_bytes().to_vec();
    tail.extend(b"PAR1");
    f.write_all_at(&tail, (32 << 20) - 8).unwrap();
    drop(f);
    let e = read_metric(&path, "cpu_usage_usec").unwrap_err();
    assert!(matches!(e, ReadError::Bounds { .. }), "{e}");
    assert!(
        e.to_string().contains("footer claims 20971520 bytes"),
        "{e}"
    );
    // Claiming more than the file holds stays the Parquet reader's own error.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&u32::MAX.to_le_bytes(), (32 << 20) - 8)
        .unwrap();
    drop(f);
    let e = read_metric(&path, "cpu_usage_usec").unwrap_err();
    assert!(matches!(e, ReadError::Parquet { .. }), "{e}");
}

#[test]
fn lines_and_text_files_are_read_up_to_their_limit() {
    let mut input: &[u8] = b"short\nxxxxxxxxxxxxxxxxxxxxxxxx\nlast";
    let mut reader = std::io::BufReader::new(&mut input);
    let mut buf = Vec::new();
    assert_eq!(
        read_line_at_most(&mut reader, 8, &mut buf).unwrap(),
        Line::Read
    );
    assert_eq!(buf, b"short");
    assert_eq!(
        read_line_at_most(&mut reader, 8, &mut buf).unwrap(),
        Line::TooLong
    );
    assert!(buf.len() <= 9);
    assert_eq!(
        read_line_at_most(&mut reader, 8, &mut buf).unwrap(),
        Line::Read
    );
    assert_eq!(buf, b"last");
    assert_eq!(
        read_line_at_most(&mut reader, 8, &mut buf).unwrap(),
        Line::End
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.json");
    std::fs::write(&path, "x".repeat(100)).unwrap();
    assert_eq!(read_text_at_most(&path, 100).unwrap().len(), 100);
    let e = read_text_at_most(&path, 99).unwrap_err();
    assert!(e.to_string().contains("100 bytes"), "{e}");
}
