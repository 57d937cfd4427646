//! A Parquet file read in a few whole ranges: its tail (the footer) in one
//! read, then the wanted column chunks in one read each.
//!
//! The Parquet reader over a plain `File` clones the descriptor, seeks and
//! fills an 8 KiB buffer for every page header, and asks the file's length
//! each time: about 70 system calls per file for a chart's five columns,
//! a third of a cold 24 h chart's CPU. Here a file costs an open, a length
//! and a few `pread`s; every later read is a slice of what was loaded.
//!
//! No read goes past the file's end, so a corrupt footer never makes this
//! allocate more than the file holds.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

/// Bytes read from the end at open: the footer of our files (schema, column
/// chunks, the overview's summary) fits, and a small file is read whole.
const TAIL_BYTES: u64 = 64 << 10;
/// Ranges closer than this are read as one (fewer reads for a few bytes more).
const JOIN_GAP: u64 = 4 << 10;
/// What a read at an offset not loaded yet takes (a page header and its page, usually).
const READ_AHEAD: u64 = 64 << 10;

/// A data file open for ranged reads; clones share the loaded ranges.
#[derive(Clone)]
pub struct RangedFile {
    inner: Arc<Inner>,
}

struct Inner {
    file: File,
    len: u64,
    /// Loaded ranges: (offset, bytes), in no particular order.
    loaded: Mutex<Vec<(u64, Bytes)>>,
}

impl RangedFile {
    /// Opens `path` and reads its last [`TAIL_BYTES`].
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let ranged = Self {
            inner: Arc::new(Inner {
                file,
                len,
                loaded: Mutex::new(Vec::new()),
            }),
        };
        ranged.read_range(len.saturating_sub(TAIL_BYTES), len)?;
        Ok(ranged)
    }

    /// Reads each of `ranges` not loaded yet, ranges close to each other as
    /// one. A range past the file's end is an error naming it.
    pub fn load(&self, mut ranges: Vec<Range<u64>>) -> std::io::Result<()> {
        ranges.retain(|r| r.start < r.end && self.find(r.start, r.end).is_none());
        ranges.sort_by_key(|r| r.start);
        let mut joined: Vec<Range<u64>> = Vec::new();
        for r in ranges {
            match joined.last_mut() {
                Some(last) if r.start <= last.end.saturating_add(JOIN_GAP) => {
                    last.end = last.end.max(r.end);
                }
                _ => joined.push(r),
            }
        }
        for r in joined {
            self.read_range(r.start, r.end)?;
        }
        Ok(())
    }

    /// The loaded range (offset, bytes) holding all of `start..end`, if one does.
    fn covering(&self, start: u64, end: u64) -> Option<(u64, Bytes)> {
        let loaded = self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded
            .iter()
            .find(|(at, bytes)| *at <= start && end <= at + bytes.len() as u64)
            .cloned()
    }

    /// The loaded bytes `start..end` (`start <= end`), if one range holds them all.
    fn find(&self, start: u64, end: u64) -> Option<Bytes> {
        let (at, bytes) = self.covering(start, end)?;
        Some(bytes.slice((start - at) as usize..(end - at) as usize))
    }

    /// Reads `start..end` (within the file) with `pread` and keeps it.
    fn read_range(&self, start: u64, end: u64) -> std::io::Result<Bytes> {
        if start > end || end > self.inner.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "bytes {start}..{end} asked of a file of {} bytes",
                    self.inner.len
                ),
            ));
        }
        let mut buf = vec![0u8; (end - start) as usize];
        self.inner.file.read_exact_at(&mut buf, start)?;
        let bytes = Bytes::from(buf);
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((start, bytes.clone()));
        Ok(bytes)
    }

    /// `start..end` from what is loaded, or read now.
    fn bytes(&self, start: u64, end: u64) -> std::io::Result<Bytes> {
        match self.find(start, end) {
            Some(bytes) => Ok(bytes),
            None => self.read_range(start, end),
        }
    }
}

impl crate::store::bounds::ReadAt for RangedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let end = offset
            .saturating_add(buf.len() as u64)
            .min(self.inner.len)
            .max(offset.min(self.inner.len));
        let start = offset.min(end);
        let bytes = self.bytes(start, end)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}

impl Length for RangedFile {
    fn len(&self) -> u64 {
        self.inner.len
    }
}

fn parquet_error(e: std::io::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl ChunkReader for RangedFile {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        // The rest of a loaded range holding `start`, or a read-ahead from it.
        if let Some((at, bytes)) = self.covering(start, start.saturating_add(1)) {
            return Ok(bytes.slice((start - at) as usize..).reader());
        }
        let end = start.saturating_add(READ_AHEAD).min(self.inner.len);
        self.read_range(start.min(end), end)
            .map(Buf::reader)
            .map_err(parquet_error)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start.saturating_add(length as u64);
        self.bytes(start, end).map_err(parquet_error)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn file_of(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), &data).expect("write");
        (file, data)
    }

    #[test]
    fn reads_come_from_the_loaded_ranges_and_match_the_file() {
        let (file, data) = file_of(300_000);
        let ranged = RangedFile::open(file.path()).expect("open");
        assert_eq!(
            ranged.inner.loaded.lock().expect("lock").len(),
            1,
            "the tail"
        );
        // Two ranges 1 KiB apart are read as one; one far away on its own.
        ranged
            .load(vec![1_000..2_000, 3_000..5_000, 100_000..100_010])
            .expect("load");
        assert_eq!(ranged.inner.loaded.lock().expect("lock").len(), 3);
        assert_eq!(
            ranged.get_bytes(1_500, 3_000).expect("bytes"),
            data[1_500..4_500]
        );
        let mut rest = Vec::new();
        ranged
            .get_read(4_990)
            .expect("read")
            .read_to_end(&mut rest)
            .expect("read");
        assert_eq!(rest, data[4_990..5_000], "to the end of the loaded range");
        assert_eq!(
            ranged.inner.loaded.lock().expect("lock").len(),
            3,
            "nothing read again"
        );
        // Not loaded: read ahead from there, within the file.
        let mut ahead = Vec::new();
        ranged
            .get_read(200_000)
            .expect("read")
            .read_to_end(&mut ahead)
            .expect("read");
        assert_eq!(ahead, data[200_000..200_000 + READ_AHEAD as usize]);
        let tail = ranged.get_bytes(299_990, 10).expect("tail");
        assert_eq!(tail, data[299_990..]);
    }

    #[test]
    fn nothing_past_the_end_is_read_or_allocated() {
        let (file, data) = file_of(1_000);
        let ranged = RangedFile::open(file.path()).expect("open");
        assert!(
            ranged.get_bytes(900, 1 << 40).is_err(),
            "a claimed huge chunk"
        );
        assert!(ranged.load(std::iter::once(500..5_000).collect()).is_err());
        let mut buf = [0u8; 64];
        let n = crate::store::bounds::ReadAt::read_at(&ranged, &mut buf, 980).expect("read");
        assert_eq!(&buf[..n], &data[980..]);
        assert_eq!(
            crate::store::bounds::ReadAt::read_at(&ranged, &mut buf, 5_000).expect("read"),
            0
        );
    }
}
