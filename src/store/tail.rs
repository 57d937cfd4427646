//! The open interval on disk: a tail file the agent appends one frame to per
//! cycle, so the viewer shows the newest second and a crash of the agent
//! loses at most the cycle it was writing.
//!
//! ```text
//!  metrics-<start>.tail   "FGMTAIL" version(1)   then frames:
//!    frame  = len: u32 LE | xxh32(payload): u32 LE | payload
//!    payload= 0 | columns: n, n × name              (first frame: the column names)
//!           | 1 | cycle                             (a cycle, as is)
//!           | 2 | cycle length | LZ4 block of cycle (a cycle, compressed when smaller)
//!    cycle  = Δtimestamp | new ids: n, n × id | rows: n, n × (Δid index | changed: n, n × (Δcolumn | value code))
//! ```
//!
//! Every number is a LEB128 varint ([`super::varint`]). A row carries only
//! the columns whose value changed since the container's previous row in
//! this file, as the code of the new value against the column's last non-null
//! value: most gauges stay put from one second to the next and most counters
//! move a little, so a row is a few bytes. Readers carry unchanged values
//! forward.
//!
//! A tail is named after the Parquet file it becomes (same start time). At
//! rotation the Parquet file is renamed in first, then the tail removed; a
//! reader that finds both reads only the Parquet file. A frame is whole or
//! not there: a reader stops at a frame that is incomplete (being written,
//! or torn by a crash) or whose checksum fails, and the agent turns a tail
//! left by a crash into a data file at its next start ([`read_tail_file`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::buffer::SampleBuffer;
use super::schema::{METRICS, metric_index};
use super::varint::{decode_value, put_varint, take_varint, unzigzag, value_code, zigzag};

/// File name extension of a tail (`metrics-<start>.tail`).
pub const EXTENSION: &str = "tail";
const MAGIC: &[u8; 7] = b"FGMTAIL";
/// Version of this layout: a reader meeting a newer one says so.
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1;
const FRAME_HEAD: usize = 8;
/// Largest frame a reader accepts (a cycle of ~100,000 containers): a
/// corrupt length never makes it allocate more.
const MAX_FRAME: usize = 64 << 20;

const KIND_COLUMNS: u8 = 0;
const KIND_CYCLE: u8 = 1;
const KIND_CYCLE_LZ4: u8 = 2;

/// Why a tail could not be read at all (a torn or corrupt end is not an error:
/// the frames before it are read).
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("cannot read tail file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a tail file (no FGMTAIL header)")]
    NotATail { path: PathBuf },
    #[error(
        "{path} is a tail file of version {found}, newer than this build reads ({VERSION}): \
         upgrade the viewer"
    )]
    NewerVersion { path: PathBuf, found: u8 },
}

/// Encodes cycles as frames (pure: bytes in memory).
#[derive(Debug)]
pub struct TailEncoder {
    ids: HashMap<String, usize>,
    /// Per container (dictionary order): last value of each column, and the
    /// last non-null one (the base of value codes).
    rows: Vec<RowState>,
    last_ms: i64,
    body: Vec<u8>,
    payload: Vec<u8>,
    compressed: Vec<u8>,
    changed: Vec<(usize, u128)>,
}

#[derive(Debug, Clone)]
struct RowState {
    values: Vec<Option<i64>>,
    bases: Vec<i64>,
}

impl RowState {
    fn new(width: usize) -> Self {
        Self {
            values: vec![None; width],
            bases: vec![0; width],
        }
    }
}

impl Default for TailEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TailEncoder {
    pub fn new() -> Self {
        Self {
            ids: HashMap::new(),
            rows: Vec::new(),
            last_ms: 0,
            body: Vec::new(),
            payload: Vec::new(),
            compressed: Vec::new(),
            changed: Vec::new(),
        }
    }

    /// The file header and the column-names frame: what a new tail starts with.
    pub fn header(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        self.payload.clear();
        self.payload.push(KIND_COLUMNS);
        put_varint(&mut self.payload, METRICS.len() as u128);
        for m in METRICS {
            put_varint(&mut self.payload, m.name.len() as u128);
            self.payload.extend_from_slice(m.name.as_bytes());
        }
        push_frame(&mut out, &self.payload);
        out
    }

    /// One frame holding the cycle at `timestamp_ms`: `(container id, values
    /// in METRICS order)` per container.
    pub fn cycle<'a>(
        &mut self,
        timestamp_ms: i64,
        rows: impl IntoIterator<Item = (&'a str, &'a [Option<i64>])>,
        out: &mut Vec<u8>,
    ) {
        let width = METRICS.len();
        let body = &mut self.body;
        body.clear();
        put_varint(
            body,
            u128::from(zigzag(timestamp_ms.wrapping_sub(self.last_ms))),
        );
        self.last_ms = timestamp_ms;
        // New ids first, then the rows naming ids by their index.
        let mut new_ids: Vec<&str> = Vec::new();
        let mut indexed: Vec<(usize, &[Option<i64>])> = Vec::new();
        for (id, values) in rows {
            let next = self.ids.len();
            let index = *self.ids.entry(id.to_string()).or_insert_with(|| {
                new_ids.push(id);
                next
            });
            if index == self.rows.len() {
                self.rows.push(RowState::new(width));
            }
            indexed.push((index, values));
        }
        put_varint(body, new_ids.len() as u128);
        for id in &new_ids {
            put_varint(body, id.len() as u128);
            body.extend_from_slice(id.as_bytes());
        }
        put_varint(body, indexed.len() as u128);
        let changed = &mut self.changed;
        // Each row's id index as the step from the previous row's plus one:
        // rows keep the same order cycle after cycle, so that is 0 nearly always.
        let mut expected = 0i64;
        for (index, values) in indexed {
            let state = &mut self.rows[index];
            changed.clear();
            for m in 0..width {
                let value = values.get(m).copied().flatten();
                if value != state.values[m] {
                    state.values[m] = value;
                    changed.push((m, value_code(value, &mut state.bases[m])));
                }
            }
            put_varint(body, u128::from(zigzag(index as i64 - expected)));
            expected = index as i64 + 1;
            put_varint(body, changed.len() as u128);
            let mut last = 0;
            for &(m, code) in changed.iter() {
                put_varint(body, (m - last) as u128);
                put_varint(body, code);
                last = m;
            }
        }
        // The cycle, compressed when that is smaller (it usually is: rows of
        // idle containers look alike).
        let payload = &mut self.payload;
        payload.clear();
        payload.push(KIND_CYCLE_LZ4);
        put_varint(payload, body.len() as u128);
        self.compressed
            .resize(lz4_flex::block::get_maximum_output_size(body.len()), 0);
        match lz4_flex::block::compress_into(body, &mut self.compressed) {
            Ok(n) if payload.len() + n < 1 + body.len() => {
                payload.extend_from_slice(&self.compressed[..n]);
            }
            _ => {
                payload.clear();
                payload.push(KIND_CYCLE);
                payload.extend_from_slice(body);
            }
        }
        push_frame(out, payload);
    }
}

fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(bytes: &[u8]) -> u32 {
    twox_hash::XxHash32::oneshot(0x6667_6d74, bytes)
}

/// Where decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailEnd {
    /// Every byte was a whole frame.
    #[default]
    Clean,
    /// The last frame is incomplete: being written, or torn by a crash.
    Incomplete,
    /// A frame's checksum or content is wrong: nothing after it is read.
    Corrupt,
}

/// Decodes a tail's frames, incrementally: feed it the bytes after the ones
/// it consumed and it goes on where it stopped.
#[derive(Debug, Default)]
pub struct TailDecoder {
    header_read: bool,
    /// File column → our METRICS index (`None`: a column this build lacks).
    columns: Option<Vec<Option<usize>>>,
    ids: Vec<String>,
    rows: Vec<RowState>,
    last_ms: i64,
    consumed: u64,
    out: Vec<Option<i64>>,
    scratch: Vec<u8>,
}

impl TailDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the file consumed so far (whole frames only).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Decodes the whole frames at the start of `bytes` (the file's bytes
    /// from [`Self::consumed`] on), handing each row to `visit(id, timestamp,
    /// values in METRICS order)`. Returns where it stopped.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        path: &Path,
        mut visit: impl FnMut(&str, i64, &[Option<i64>]),
    ) -> Result<TailEnd, TailError> {
        let mut pos = 0;
        if !self.header_read {
            if bytes.len() < HEADER_LEN {
                return Ok(TailEnd::Incomplete);
            }
            if &bytes[..MAGIC.len()] != MAGIC {
                return Err(TailError::NotATail {
                    path: path.to_path_buf(),
                });
            }
            let found = bytes[MAGIC.len()];
            if found > VERSION {
                return Err(TailError::NewerVersion {
                    path: path.to_path_buf(),
                    found,
                });
            }
            self.header_read = true;
            pos = HEADER_LEN;
            self.consumed += HEADER_LEN as u64;
        }
        loop {
            let rest = &bytes[pos..];
            if rest.is_empty() {
                return Ok(TailEnd::Clean);
            }
            if rest.len() < FRAME_HEAD {
                return Ok(TailEnd::Incomplete);
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let sum = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if len > MAX_FRAME || len == 0 {
                return Ok(TailEnd::Corrupt);
            }
            let Some(payload) = rest.get(FRAME_HEAD..FRAME_HEAD + len) else {
                return Ok(TailEnd::Incomplete);
            };
            if checksum(payload) != sum || self.frame(payload, &mut visit).is_none() {
                return Ok(TailEnd::Corrupt);
            }
            pos += FRAME_HEAD + len;
            self.consumed += (FRAME_HEAD + len) as u64;
        }
    }

    /// Decodes one frame's payload; `None` when it does not decode.
    fn frame(
        &mut self,
        payload: &[u8],
        visit: &mut impl FnMut(&str, i64, &[Option<i64>]),
    ) -> Option<()> {
        let (&kind, rest) = payload.split_first()?;
        match kind {
            KIND_COLUMNS => {
                let mut pos = 0;
                let n = usize::try_from(take_varint(rest, &mut pos)?).ok()?;
                let mut columns = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    let len = usize::try_from(take_varint(rest, &mut pos)?).ok()?;
                    let name = std::str::from_utf8(rest.get(pos..pos.checked_add(len)?)?).ok()?;
                    pos += len;
                    columns.push(metric_index(name));
                }
                self.columns = Some(columns);
                Some(())
            }
            KIND_CYCLE => self.cycle(rest, visit),
            KIND_CYCLE_LZ4 => {
                let mut pos = 0;
                let len = usize::try_from(take_varint(rest, &mut pos)?).ok()?;
                if len > MAX_FRAME {
                    return None;
                }
                let mut body = std::mem::take(&mut self.scratch);
                body.clear();
                body.resize(len, 0);
                let n = lz4_flex::block::decompress_into(&rest[pos..], &mut body).ok()?;
                body.truncate(n);
                let result = self.cycle(&body, visit);
                self.scratch = body;
                result
            }
            _ => None,
        }
    }

    fn cycle(
        &mut self,
        body: &[u8],
        visit: &mut impl FnMut(&str, i64, &[Option<i64>]),
    ) -> Option<()> {
        let columns = self.columns.as_ref()?;
        let width = columns.len();
        let mut pos = 0;
        let delta = u64::try_from(take_varint(body, &mut pos)?).ok()?;
        self.last_ms = self.last_ms.wrapping_add(unzigzag(delta));
        let new_ids = usize::try_from(take_varint(body, &mut pos)?).ok()?;
        for _ in 0..new_ids {
            let len = usize::try_from(take_varint(body, &mut pos)?).ok()?;
            let id = std::str::from_utf8(body.get(pos..pos.checked_add(len)?)?).ok()?;
            pos += len;
            self.ids.push(id.to_string());
            self.rows.push(RowState::new(width));
        }
        let rows = usize::try_from(take_varint(body, &mut pos)?).ok()?;
        self.out.resize(METRICS.len(), None);
        let mut expected = 0i64;
        for _ in 0..rows {
            let step = unzigzag(u64::try_from(take_varint(body, &mut pos)?).ok()?);
            let index = usize::try_from(expected.checked_add(step)?).ok()?;
            expected = index as i64 + 1;
            let state = self.rows.get_mut(index)?;
            let changed = usize::try_from(take_varint(body, &mut pos)?).ok()?;
            let mut m = 0;
            for _ in 0..changed {
                m += usize::try_from(take_varint(body, &mut pos)?).ok()?;
                let code = take_varint(body, &mut pos)?;
                let base = state.bases.get_mut(m)?;
                state.values[m] = decode_value(code, base)?;
            }
            self.out.iter_mut().for_each(|v| *v = None);
            for (file_column, ours) in columns.iter().enumerate() {
                if let Some(ours) = ours {
                    self.out[*ours] = state.values[file_column];
                }
            }
            visit(&self.ids[index], self.last_ms, &self.out);
        }
        (pos == body.len()).then_some(())
    }
}

/// A tail file being appended to by the agent.
#[derive(Debug)]
pub struct TailWriter {
    path: PathBuf,
    file: File,
    encoder: TailEncoder,
    /// Bytes of whole frames written: a failed write is cut back to this.
    good_len: u64,
    frame: Vec<u8>,
    unsynced: bool,
}

impl TailWriter {
    /// Creates `path` with its header (replacing a file of that name).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut encoder = TailEncoder::new();
        let header = encoder.header();
        let mut file = File::create(path)?;
        file.write_all(&header)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            encoder,
            good_len: header.len() as u64,
            frame: Vec::new(),
            unsynced: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.good_len
    }

    pub fn is_empty(&self) -> bool {
        self.good_len == 0
    }

    /// Appends one cycle; returns the bytes written. On failure (a full
    /// disk) the file is cut back to its last whole frame, so later frames
    /// stay readable.
    pub fn append<'a>(
        &mut self,
        timestamp_ms: i64,
        rows: impl IntoIterator<Item = (&'a str, &'a [Option<i64>])>,
    ) -> std::io::Result<u64> {
        self.frame.clear();
        let mut frame = std::mem::take(&mut self.frame);
        self.encoder.cycle(timestamp_ms, rows, &mut frame);
        let result = self.file.write_all(&frame);
        let written = frame.len() as u64;
        self.frame = frame;
        match result {
            Ok(()) => {
                self.good_len += written;
                self.unsynced = true;
                Ok(written)
            }
            Err(e) => {
                let _ = self.file.set_len(self.good_len);
                let _ = self.file.seek(SeekFrom::Start(self.good_len));
                Err(e)
            }
        }
    }

    /// Makes what was appended durable (a kernel or node crash loses at most
    /// what came after the last sync).
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }
}

/// The tail a Parquet file `metrics-<start>.parquet` replaces: same name, `.tail`.
pub fn tail_path_for(parquet: &Path) -> PathBuf {
    parquet.with_extension(EXTENSION)
}

/// The rows of a whole tail file (a torn or corrupt end is where it stops),
/// and where it stopped: what the agent turns into a data file after a crash.
pub fn read_tail_file(path: &Path) -> Result<(SampleBuffer, TailEnd), TailError> {
    let io = |source| TailError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io)?;
    let mut buffer = SampleBuffer::new();
    let mut decoder = TailDecoder::new();
    let end = decoder.feed(&bytes, path, |id, ts, values| buffer.push(ts, id, values))?;
    Ok((buffer, end))
}

/// An open interval as the viewer follows it: the rows decoded so far, and
/// the decoder to go on with the bytes appended since.
#[derive(Debug, Default)]
pub struct TailFollower {
    decoder: TailDecoder,
    rows: SampleBuffer,
    end: TailEnd,
    bytes: Vec<u8>,
}

impl TailFollower {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads what was appended to `path` since the last call (only that).
    pub fn refresh(&mut self, path: &Path) -> Result<TailEnd, TailError> {
        let io = |source| TailError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        file.seek(SeekFrom::Start(self.decoder.consumed()))
            .map_err(io)?;
        self.bytes.clear();
        file.read_to_end(&mut self.bytes).map_err(io)?;
        let rows = &mut self.rows;
        self.end = self.decoder.feed(&self.bytes, path, |id, ts, values| {
            rows.push(ts, id, values)
        })?;
        Ok(self.end)
    }

    pub fn rows(&self) -> &SampleBuffer {
        &self.rows
    }

    /// Bytes of the file read so far.
    pub fn consumed(&self) -> u64 {
        self.decoder.consumed()
    }

    pub fn end(&self) -> TailEnd {
        self.end
    }
}

#[cfg(test)]
mod tests;
