//! A file's [`FileSummary`] in its Parquet footer, so the overview ranks a
//! range from footers instead of rows.
//!
//! Key `fgm.summary.v1`, value: base64 (standard alphabet) of an xxHash32 of
//! the record (4 bytes, little-endian) and its LZ4 block (after its 4-byte
//! length), the record being
//!
//! ```text
//!  slot width ms | containers n | file span: first, last − first |
//!  n × ( id | first_t − span first | last_t − first_t | samples |
//!        12 counters × (first code | last − first | increase − (last − first)) |
//!        cpu peak (µs/s) | working set max code | 4 gauges × code |
//!        slots: n, then n − 1 × (Δslot | covered ms | cpu | throttled | periods | io | 3 × psi | network | working set max code),
//!               then the last slot's Δslot (its sums are the file's less the others') )
//! ```
//!
//! Every number is a LEB128 varint ([`super::super::varint`]): zigzag for
//! differences, [`value_code`] (0 = null) for values that may be null. Sums
//! are whole numbers (they add integer steps), stored rounded. An id of 12
//! lowercase hex characters is stored as its 6 bytes (length 0 marks it).
//! The slots are [`SLOT_MS`] wide: the overview's wider slots (every width
//! from 5 minutes up is a multiple) are their sums, so any range of 5 hours
//! or more is ranked from footers alone. A 90-second file lies in one or two
//! slots, and a file's slot sums add up to its counters' increases and its
//! span: the last slot is what the others leave.

use base64::Engine as _;

use super::{COUNTERS, CounterSpan, FileSummary, GAUGES, Slot, Summary};
use crate::store::reader::NULL_VALUE;
use crate::store::varint::{
    decode_value, put_varint, take_u64, take_varint, unzigzag, value_code, zigzag,
};

/// Footer key of the summary (a new layout gets a new key).
pub const KEY: &str = "fgm.summary.v1";
/// Width of the slots stored: 5 minutes.
pub const SLOT_MS: i64 = 300_000;

fn code(v: i64) -> u128 {
    value_code((v != NULL_VALUE).then_some(v), &mut 0)
}

fn decoded(code: u128) -> Option<i64> {
    Some(decode_value(code, &mut 0)?.unwrap_or(NULL_VALUE))
}

fn diff(out: &mut Vec<u8>, v: i64) {
    put_varint(out, u128::from(zigzag(v)));
}

fn round(v: f64) -> i64 {
    v.round() as i64
}

/// Largest decoded summary accepted (a corrupt footer never makes the viewer allocate more).
const MAX_DECODED: usize = 64 << 20;

fn put_id(out: &mut Vec<u8>, id: &str) {
    let hex = id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex {
        put_varint(out, 0);
        for pair in id.as_bytes().chunks(2) {
            let digit = |b: u8| {
                if b.is_ascii_digit() {
                    b - b'0'
                } else {
                    b - b'a' + 10
                }
            };
            out.push(digit(pair[0]) << 4 | digit(pair[1]));
        }
    } else {
        put_varint(out, id.len() as u128);
        out.extend_from_slice(id.as_bytes());
    }
}

/// Reads an id into `out` (reused: no allocation per container).
fn read_id(b: &[u8], pos: &mut usize, out: &mut String) -> Option<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let len = usize::try_from(take_u64(b, pos)?).ok()?;
    out.clear();
    if len == 0 {
        for &byte in b.get(*pos..*pos + 6)? {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        *pos += 6;
        return Some(());
    }
    out.push_str(std::str::from_utf8(b.get(*pos..pos.checked_add(len)?)?).ok()?);
    *pos += len;
    Some(())
}

/// The sums of a slot, in storage order.
const SUMS: usize = 9;

fn sums(slot: &Slot) -> [f32; SUMS] {
    [
        slot.covered_ms,
        slot.cpu_usec,
        slot.nr_throttled,
        slot.nr_periods,
        slot.io_bytes,
        slot.psi_usec[0],
        slot.psi_usec[1],
        slot.psi_usec[2],
        slot.net_bytes,
    ]
}

/// What all of a file's slots of a container add up to: its span and its
/// counters' increases (the same steps, counted once each).
fn totals(s: &Summary) -> [f64; SUMS] {
    use super::{CPU, IO_READ, IO_WRITE, NET_RX, NET_TX, NR_PERIODS, NR_THROTTLED, PSI};
    let inc = |c: usize| s.counters[c].increase;
    let covered: i64 = s
        .slots
        .iter()
        .map(|(_, slot)| slot.covered_ms as i64)
        .fold(0, i64::saturating_add);
    [
        covered as f64,
        inc(CPU),
        inc(NR_THROTTLED),
        inc(NR_PERIODS),
        inc(IO_READ) + inc(IO_WRITE),
        inc(PSI[0]),
        inc(PSI[1]),
        inc(PSI[2]),
        inc(NET_RX) + inc(NET_TX),
    ]
}

/// The footer value of `summary` (its slots [`SLOT_MS`] wide).
pub fn encode(summary: &FileSummary) -> String {
    let mut out = Vec::with_capacity(64 + summary.containers.len() * 96);
    put_varint(&mut out, SLOT_MS as u128);
    put_varint(&mut out, summary.containers.len() as u128);
    let (span_first, span_last) = summary.span.unwrap_or((0, 0));
    diff(&mut out, span_first);
    diff(&mut out, span_last.wrapping_sub(span_first));
    for (id, s) in &summary.containers {
        put_id(&mut out, id);
        diff(&mut out, s.first_t.wrapping_sub(span_first));
        diff(&mut out, s.last_t.wrapping_sub(s.first_t));
        put_varint(&mut out, u128::from(s.samples));
        for c in &s.counters {
            put_varint(&mut out, code(c.first));
            let moved = if c.first != NULL_VALUE && c.last != NULL_VALUE {
                c.last.wrapping_sub(c.first)
            } else {
                0
            };
            if c.first == NULL_VALUE {
                put_varint(&mut out, code(c.last));
            } else {
                diff(&mut out, moved);
            }
            diff(&mut out, round(c.increase).wrapping_sub(moved));
        }
        diff(&mut out, round(s.cpu_peak));
        put_varint(&mut out, code(s.working_set_max));
        for g in s.gauges_last {
            put_varint(&mut out, code(g));
        }
        put_varint(&mut out, s.slots.len() as u128);
        // Covered time is stored whole for every slot but the last, so the
        // last one's is the total less theirs: store the total.
        let covered: i64 = s
            .slots
            .iter()
            .map(|(_, slot)| slot.covered_ms as i64)
            .fold(0, i64::saturating_add);
        diff(&mut out, covered);
        let mut prev = 0i64;
        let last = s.slots.len().saturating_sub(1);
        for (k, (n, slot)) in s.slots.iter().enumerate() {
            diff(&mut out, n.wrapping_sub(prev));
            prev = *n;
            if k == last {
                break;
            }
            for v in sums(slot) {
                diff(&mut out, round(f64::from(v)));
            }
            let ws = if slot.working_set_max.is_nan() {
                NULL_VALUE
            } else {
                round(f64::from(slot.working_set_max))
            };
            put_varint(&mut out, code(ws));
        }
        // The last slot's working set maximum is the file's unless an earlier slot had it.
        if let Some((_, slot)) = s.slots.last() {
            let ws = if slot.working_set_max.is_nan() {
                NULL_VALUE
            } else {
                round(f64::from(slot.working_set_max))
            };
            put_varint(&mut out, code(ws));
        }
    }
    // A checksum of the whole: a damaged value fails before any container is read.
    let mut packed = checksum(&out).to_le_bytes().to_vec();
    packed.extend_from_slice(&lz4_flex::block::compress_prepend_size(&out));
    base64::engine::general_purpose::STANDARD.encode(packed)
}

/// A footer value back; `None` when it does not decode (the overview then
/// reads the file's rows, as for files written before summaries).
pub fn decode(value: &str) -> Option<FileSummary> {
    let mut containers = Vec::new();
    let span = decode_each(value, SLOT_MS, |id, s| {
        containers.push((id.to_string(), s.clone()))
    })?;
    Some(FileSummary { containers, span })
}

/// Decodes a footer value container by container, each with its slots
/// `slot_ms` wide (a multiple of [`SLOT_MS`]), handing `(id, summary)` to
/// `visit` in id order without keeping them: what joining a range needs, with
/// no allocation per container. Returns the file's span; `None` when the value
/// does not decode (or `slot_ms` is not a multiple), in which case `visit` may
/// have seen some containers.
pub fn decode_each(
    value: &str,
    slot_ms: i64,
    mut visit: impl FnMut(&str, &Summary),
) -> Option<Option<(i64, i64)>> {
    if slot_ms % SLOT_MS != 0 || slot_ms < SLOT_MS {
        return None;
    }
    let factor = slot_ms / SLOT_MS;
    thread_local! {
        /// Buffers reused per thread, not allocated per footer.
        static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (packed, bytes) = &mut *scratch;
        packed.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(value, packed)
            .ok()?;
        let sum = u32::from_le_bytes(packed.get(..4)?.try_into().ok()?);
        let size = u32::from_le_bytes(packed.get(4..8)?.try_into().ok()?) as usize;
        if size > MAX_DECODED {
            return None;
        }
        bytes.clear();
        bytes.resize(size, 0);
        let n = lz4_flex::block::decompress_into(packed.get(8..)?, bytes).ok()?;
        if n != size || checksum(bytes) != sum {
            return None;
        }
        walk(bytes, factor, &mut visit)
    })
}

fn checksum(bytes: &[u8]) -> u32 {
    twox_hash::XxHash32::oneshot(0x6667_6d73, bytes)
}

/// Decodes the container records of a decompressed value (see [`decode_each`]).
fn walk(
    b: &[u8],
    factor: i64,
    visit: &mut impl FnMut(&str, &Summary),
) -> Option<Option<(i64, i64)>> {
    let mut pos = 0;
    let uint = |pos: &mut usize| -> Option<u64> { take_u64(b, pos) };
    let int = |pos: &mut usize| -> Option<i64> { Some(unzigzag(uint(pos)?)) };
    let value = |pos: &mut usize| -> Option<i64> { decoded(take_code(b, pos)?) };
    if uint(&mut pos)? != SLOT_MS as u64 {
        return None;
    }
    let n = usize::try_from(uint(&mut pos)?).ok()?;
    let span_first = int(&mut pos)?;
    let span_last = span_first.wrapping_add(int(&mut pos)?);
    let mut id = String::with_capacity(16);
    let mut s = Summary {
        first_t: 0,
        last_t: 0,
        samples: 0,
        counters: [CounterSpan::default(); COUNTERS.len()],
        cpu_peak: 0.0,
        working_set_max: NULL_VALUE,
        gauges_last: [NULL_VALUE; GAUGES.len()],
        slots: Vec::with_capacity(4),
    };
    for _ in 0..n {
        read_id(b, &mut pos, &mut id)?;
        s.first_t = span_first.wrapping_add(int(&mut pos)?);
        s.last_t = s.first_t.wrapping_add(int(&mut pos)?);
        s.samples = uint(&mut pos)?;
        for c in s.counters.iter_mut() {
            c.first = value(&mut pos)?;
            let moved = if c.first == NULL_VALUE {
                c.last = value(&mut pos)?;
                0
            } else {
                let moved = int(&mut pos)?;
                c.last = c.first.wrapping_add(moved);
                moved
            };
            c.increase = int(&mut pos)?.wrapping_add(moved) as f64;
        }
        s.cpu_peak = int(&mut pos)? as f64;
        s.working_set_max = value(&mut pos)?;
        for g in s.gauges_last.iter_mut() {
            *g = value(&mut pos)?;
        }
        let slot_count = usize::try_from(uint(&mut pos)?).ok()?;
        let covered = int(&mut pos)?;
        s.slots.clear();
        let mut prev = 0i64;
        let mut last_n = 0i64;
        let mut given = [0f64; SUMS];
        for k in 0..slot_count {
            prev = prev.wrapping_add(int(&mut pos)?);
            if k + 1 == slot_count {
                last_n = prev;
                break;
            }
            let mut f = [0f32; SUMS];
            for (v, g) in f.iter_mut().zip(given.iter_mut()) {
                *v = int(&mut pos)? as f32;
                *g += f64::from(*v);
            }
            let ws = value(&mut pos)?;
            push_slot(&mut s.slots, prev.div_euclid(factor), slot_of(f, ws));
        }
        if slot_count > 0 {
            let ws = value(&mut pos)?;
            // The last slot: what the others leave of the file's totals.
            let mut total = totals(&s);
            total[0] = covered as f64;
            let mut rest = [0f32; SUMS];
            for ((r, t), g) in rest.iter_mut().zip(total).zip(given) {
                *r = (t - g).round() as f32;
            }
            push_slot(&mut s.slots, last_n.div_euclid(factor), slot_of(rest, ws));
        }
        visit(&id, &s);
    }
    (pos == b.len()).then_some((n > 0).then_some((span_first, span_last)))
}

/// Adds a slot in time order, merging it into the last when they share a wide slot.
fn push_slot(slots: &mut Vec<(i64, Slot)>, n: i64, slot: Slot) {
    match slots.last_mut() {
        Some((last, acc)) if *last == n => acc.add(&slot),
        _ => slots.push((n, slot)),
    }
}

/// A value code: a single u64 read nearly always (only deltas past 64 bits need more).
fn take_code(b: &[u8], pos: &mut usize) -> Option<u128> {
    let at = *pos;
    match take_u64(b, pos) {
        Some(v) => Some(u128::from(v)),
        None => {
            *pos = at;
            take_varint(b, pos)
        }
    }
}

fn slot_of(f: [f32; SUMS], ws: i64) -> Slot {
    Slot {
        covered_ms: f[0],
        cpu_usec: f[1],
        nr_throttled: f[2],
        nr_periods: f[3],
        io_bytes: f[4],
        psi_usec: [f[5], f[6], f[7]],
        net_bytes: f[8],
        working_set_max: if ws == NULL_VALUE {
            f32::NAN
        } else {
            ws as f32
        },
    }
}
/// `summary` (slots [`SLOT_MS`] wide) with slots `slot_ms` wide, a multiple
/// of [`SLOT_MS`]: each wide slot is the sum of the narrow ones inside it.
pub fn widen(summary: &FileSummary, slot_ms: i64) -> Option<FileSummary> {
    if slot_ms % SLOT_MS != 0 || slot_ms < SLOT_MS {
        return None;
    }
    let factor = slot_ms / SLOT_MS;
    let containers = summary
        .containers
        .iter()
        .map(|(id, s)| {
            let mut wide: Vec<(i64, Slot)> = Vec::with_capacity(s.slots.len());
            for (n, slot) in &s.slots {
                let w = n.div_euclid(factor);
                match wide.last_mut() {
                    Some((last, acc)) if *last == w => acc.add(slot),
                    _ => wide.push((w, *slot)),
                }
            }
            (
                id.clone(),
                Summary {
                    slots: wide,
                    ..s.clone()
                },
            )
        })
        .collect();
    Some(FileSummary {
        containers,
        span: summary.span,
    })
}
