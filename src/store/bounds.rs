//! Bounded memory for files of the data directory, whatever is in them.
//!
//! A bit flip or a torn write can make a file claim sizes it does not have:
//! a Parquet page header saying its page decompresses to 2 GiB makes the
//! decoder allocate and zero 2 GiB before it notices, which kills a viewer in
//! a 128 MiB container and, as the file stays, kills it again on restart.
//! Before a column chunk is decoded, [`check_column_chunks`] walks its page
//! headers (a few bytes each, read at their offsets) and refuses a file whose
//! pages claim more than [`MAX_PAGE_BYTES`] or more than their column chunk, or
//! do not add up to it. The footer is bounded by [`MAX_FOOTER_BYTES`];
//! `index.json` is read only up to [`MAX_INDEX_BYTES`].
//!
//! The page headers are Thrift compact structs; [`page_header`] reads fields
//! 1-3 (type, uncompressed size, compressed size) and skips the rest.

use std::fs::File;
use std::io::{BufRead, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use parquet::file::metadata::ParquetMetaData;

/// Largest footer (file metadata) read; our files have a few KiB.
pub const MAX_FOOTER_BYTES: u64 = 16 << 20;
/// Largest uncompressed page (the writer's pages are about 1 MiB).
pub const MAX_PAGE_BYTES: i64 = 64 << 20;
/// Largest uncompressed column chunk.
pub const MAX_COLUMN_CHUNK_BYTES: i64 = 256 << 20;
/// Largest `index.json` read (about 1 KiB per container).
pub const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Largest page header (statistics included) looked at.
const MAX_HEADER_BYTES: usize = 64 << 10;
/// Deepest struct nesting skipped in a header.
const MAX_NESTING: usize = 16;

/// A file read at offsets: a plain `File`, or one read in whole ranges
/// ([`crate::store::reader::ranged::RangedFile`]).
pub trait ReadAt {
    /// Reads into `buf` from `offset`: the bytes read, 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    /// Fills `buf` from `offset`, or fails.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

/// Why the file's sizes cannot be trusted (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BoundsError(pub String);

fn err(message: impl Into<String>) -> BoundsError {
    BoundsError(message.into())
}

/// The footer of a Parquet file of `len` bytes: refuses one larger than
/// [`MAX_FOOTER_BYTES`] (or than the file) before it is read.
pub fn check_footer(file: &impl ReadAt, len: u64) -> Result<(), BoundsError> {
    let mut tail = [0u8; 8];
    // Not Parquet at all (too short, no magic): the Parquet reader says so itself.
    if len < 12 || file.read_exact_at(&mut tail, len - 8).is_err() || &tail[4..] != b"PAR1" {
        return Ok(());
    }
    let [a, b, c, d, ..] = tail;
    let footer = u64::from(u32::from_le_bytes([a, b, c, d]));
    // More than the file holds is the Parquet reader's own error; more than we read is ours.
    if footer > MAX_FOOTER_BYTES && footer + 8 <= len {
        return Err(err(format!(
            "its footer claims {footer} bytes (at most {MAX_FOOTER_BYTES} are read)"
        )));
    }
    Ok(())
}

/// What one page header says: uncompressed and compressed size, header length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    pub uncompressed: i32,
    pub compressed: i32,
    pub header_len: usize,
}

/// A cursor over a Thrift compact struct; `None` from a read means "need more bytes".
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<Result<u64, BoundsError>> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Some(Err(err("a varint in a page header overflows")));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(Ok(value));
            }
        }
        Some(Err(err("a varint in a page header is too long")))
    }

    fn zigzag(&mut self) -> Option<Result<i64, BoundsError>> {
        Some(
            self.varint()?
                .map(|v| ((v >> 1) as i64) ^ -((v & 1) as i64)),
        )
    }

    fn skip(&mut self, n: u64) -> Option<Result<(), BoundsError>> {
        let n = match usize::try_from(n) {
            Ok(n) if n <= MAX_HEADER_BYTES => n,
            _ => return Some(Err(err(format!("a page header field claims {n} bytes")))),
        };
        if self.pos + n > self.bytes.len() {
            return None;
        }
        self.pos += n;
        Some(Ok(()))
    }

    /// Skips one value of compact type `kind`.
    fn skip_value(&mut self, kind: u8, depth: usize) -> Option<Result<(), BoundsError>> {
        match kind {
            1 | 2 => Some(Ok(())),
            3 => self.skip(1),
            4..=6 => self.varint().map(|r| r.map(|_| ())),
            7 => self.skip(8),
            8 => match self.varint()? {
                Ok(len) => self.skip(len),
                Err(e) => Some(Err(e)),
            },
            9 | 10 => {
                let head = self.byte()?;
                let elem = head & 0x0f;
                let size = match head >> 4 {
                    15 => match self.varint()? {
                        Ok(n) => n,
                        Err(e) => return Some(Err(e)),
                    },
                    n => u64::from(n),
                };
                self.skip_many(size, depth, |c, d| {
                    if elem == 1 || elem == 2 {
                        c.skip(1)
                    } else {
                        c.skip_value(elem, d)
                    }
                })
            }
            11 => {
                let size = match self.varint()? {
                    Ok(n) => n,
                    Err(e) => return Some(Err(e)),
                };
                if size == 0 {
                    return Some(Ok(()));
                }
                let kinds = self.byte()?;
                let (k, v) = (kinds >> 4, kinds & 0x0f);
                self.skip_many(size, depth, |c, d| match c.skip_value(k, d)? {
                    Ok(()) => c.skip_value(v, d),
                    Err(e) => Some(Err(e)),
                })
            }
            12 => self.skip_struct(depth + 1),
            _ => Some(Err(err(format!(
                "unknown Thrift type {kind} in a page header"
            )))),
        }
    }

    fn skip_many(
        &mut self,
        count: u64,
        depth: usize,
        mut one: impl FnMut(&mut Self, usize) -> Option<Result<(), BoundsError>>,
    ) -> Option<Result<(), BoundsError>> {
        if count > MAX_HEADER_BYTES as u64 {
            return Some(Err(err(format!("a page header list claims {count} items"))));
        }
        for _ in 0..count {
            if let Err(e) = one(self, depth)? {
                return Some(Err(e));
            }
        }
        Some(Ok(()))
    }

    fn skip_struct(&mut self, depth: usize) -> Option<Result<(), BoundsError>> {
        if depth > MAX_NESTING {
            return Some(Err(err("a page header nests too deep")));
        }
        loop {
            let head = self.byte()?;
            if head == 0 {
                return Some(Ok(()));
            }
            if head >> 4 == 0 {
                // Long form: the field id follows as a zigzag varint.
                if let Err(e) = self.zigzag()? {
                    return Some(Err(e));
                }
            }
            if let Err(e) = self.skip_value(head & 0x0f, depth)? {
                return Some(Err(e));
            }
        }
    }
}

/// Reads a page header from the start of `bytes`: `Ok(None)` when more bytes
/// are needed, an error when it is not a page header.
pub fn page_header(bytes: &[u8]) -> Result<Option<PageSizes>, BoundsError> {
    let mut c = Cursor { bytes, pos: 0 };
    let mut last_id = 0i64;
    let (mut uncompressed, mut compressed) = (None, None);
    loop {
        let Some(head) = c.byte() else {
            return Ok(None);
        };
        if head == 0 {
            break;
        }
        let kind = head & 0x0f;
        let id = match head >> 4 {
            0 => match c.zigzag() {
                Some(r) => r?,
                None => return Ok(None),
            },
            delta => last_id + i64::from(delta),
        };
        last_id = id;
        if (id == 2 || id == 3) && kind == 5 {
            let value = match c.zigzag() {
                Some(r) => r?,
                None => return Ok(None),
            };
            let value = i32::try_from(value)
                .map_err(|_| err(format!("page header field {id} is out of range")))?;
            if id == 2 {
                uncompressed = Some(value);
            } else {
                compressed = Some(value);
            }
            continue;
        }
        match c.skip_value(kind, 0) {
            Some(r) => r?,
            None => return Ok(None),
        }
    }
    match (uncompressed, compressed) {
        (Some(u), Some(c_size)) if u >= 0 && c_size >= 0 => Ok(Some(PageSizes {
            uncompressed: u,
            compressed: c_size,
            header_len: c.pos,
        })),
        _ => Err(err("a page header lacks its sizes or has negative ones")),
    }
}

/// Walks the page headers of the column chunks `columns` (all when `None`)
/// of every row group and refuses sizes that do not fit.
pub fn check_column_chunks(
    file: &impl ReadAt,
    metadata: &ParquetMetaData,
    columns: Option<&[usize]>,
) -> Result<(), BoundsError> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (i, chunk) in group.columns().iter().enumerate() {
            if columns.is_some_and(|wanted| !wanted.contains(&i)) {
                continue;
            }
            let name = chunk.column_path().string();
            let total = chunk.uncompressed_size();
            if !(0..=MAX_COLUMN_CHUNK_BYTES).contains(&total) {
                return Err(err(format!(
                    "column {name} of row group {g} claims {total} bytes uncompressed (at most {MAX_COLUMN_CHUNK_BYTES})"
                )));
            }
            let start = chunk
                .dictionary_page_offset()
                .filter(|o| *o > 0)
                .unwrap_or_else(|| chunk.data_page_offset());
            let end = start.saturating_add(chunk.compressed_size());
            let mut pos = start;
            while pos < end {
                let sizes = read_header_at(file, pos, end)
                    .map_err(|e| err(format!("column {name} of row group {g}: {}", e.0)))?;
                let limit = MAX_PAGE_BYTES.min(total);
                if i64::from(sizes.uncompressed) > limit {
                    return Err(err(format!(
                        "a page of column {name} in row group {g} claims {} bytes uncompressed (its column chunk has {total})",
                        sizes.uncompressed
                    )));
                }
                pos += sizes.header_len as i64 + i64::from(sizes.compressed);
            }
            if pos != end {
                return Err(err(format!(
                    "the pages of column {name} in row group {g} do not add up to its column chunk"
                )));
            }
        }
    }
    Ok(())
}

/// The page header at `pos` (before `end`), reading more bytes as it needs them.
fn read_header_at(file: &impl ReadAt, pos: i64, end: i64) -> Result<PageSizes, BoundsError> {
    let offset = u64::try_from(pos).map_err(|_| err("a negative page offset"))?;
    let available = usize::try_from(end - pos).unwrap_or(usize::MAX);
    let mut want = 256.min(available);
    loop {
        let mut buf = vec![0u8; want];
        let n = read_at_most(file, &mut buf, offset)?;
        buf.truncate(n);
        match page_header(&buf)? {
            Some(sizes) => return Ok(sizes),
            None if n < want || want >= MAX_HEADER_BYTES.min(available) => {
                return Err(err("a page header is cut off"));
            }
            None => want = (want * 4).min(MAX_HEADER_BYTES).min(available),
        }
    }
}

fn read_at_most(file: &impl ReadAt, buf: &mut [u8], offset: u64) -> Result<usize, BoundsError> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(format!("cannot read a page header: {e}"))),
        }
    }
    Ok(filled)
}

/// Largest line of an events file (an event is a few hundred bytes).
pub const MAX_EVENT_LINE_BYTES: usize = 64 << 10;

/// One line from [`read_line_at_most`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line (without its newline) is in the buffer.
    Read,
    /// The line was longer than the limit; it was consumed and dropped.
    TooLong,
    /// End of file.
    End,
}

/// Reads one line into `buf` holding at most `max` bytes of it in memory; a
/// longer line is skipped to its end.
pub fn read_line_at_most(
    reader: &mut impl std::io::BufRead,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(max as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Read);
    }
    if buf.len() <= max {
        // The last line of the file, without a newline.
        return Ok(Line::Read);
    }
    // Too long: drop the rest of it in bounded pieces.
    loop {
        buf.clear();
        let n = reader.by_ref().take(64 << 10).read_until(b'\n', buf)?;
        if n == 0 || buf.last() == Some(&b'\n') {
            buf.clear();
            return Ok(Line::TooLong);
        }
    }
}

/// Reads a text file of at most `max` bytes (an error names the size otherwise).
pub fn read_text_at_most(path: &Path, max: u64) -> std::io::Result<String> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{len} bytes, more than the {max} read"),
        ));
    }
    let mut text = String::new();
    // A file growing meanwhile is still read only up to the limit.
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("more than the {max} bytes read"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
