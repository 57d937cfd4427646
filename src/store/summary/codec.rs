//! A file's [`FileSummary`] in its Parquet footer, so the overview ranks a
//! range from footers instead of rows.
//!
//! Key `fgm.summary.v1`, value: base64 (standard alphabet) of the zstd frame of
//!
//! ```text
//!  slot width ms | containers n | file span: first, last − first |
//!  n × ( id | first_t − span first | last_t − first_t | samples |
//!        10 counters × (first code | last − first | increase − (last − first)) |
//!        cpu peak (µs/s) | working set max code | 4 gauges × code |
//!        slots: n, then n − 1 × (Δslot | covered ms | cpu | throttled | periods | io | 3 × psi | working set max code),
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

/// zstd level: summaries are small, so speed matters more than the last bytes.
const ZSTD_LEVEL: i32 = 3;
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

fn take_id(b: &[u8], pos: &mut usize) -> Option<String> {
    let len = usize::try_from(take_varint(b, pos)?).ok()?;
    if len == 0 {
        let bytes = b.get(*pos..*pos + 6)?;
        *pos += 6;
        let mut id = String::with_capacity(12);
        for byte in bytes {
            use std::fmt::Write as _;
            let _ = write!(id, "{byte:02x}");
        }
        return Some(id);
    }
    let id = std::str::from_utf8(b.get(*pos..pos.checked_add(len)?)?).ok()?;
    *pos += len;
    Some(id.to_string())
}

/// The eight sums of a slot, in storage order.
fn sums(slot: &Slot) -> [f32; 8] {
    [
        slot.covered_ms,
        slot.cpu_usec,
        slot.nr_throttled,
        slot.nr_periods,
        slot.io_bytes,
        slot.psi_usec[0],
        slot.psi_usec[1],
        slot.psi_usec[2],
    ]
}

/// What all of a file's slots of a container add up to: its span and its
/// counters' increases (the same steps, counted once each).
fn totals(s: &Summary) -> [f64; 8] {
    use super::{CPU, IO_READ, IO_WRITE, NR_PERIODS, NR_THROTTLED, PSI};
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
    let packed = zstd::bulk::compress(&out, ZSTD_LEVEL).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(packed)
}

/// A footer value back; `None` when it does not decode (the overview then
/// reads the file's rows, as for files written before summaries).
pub fn decode(value: &str) -> Option<FileSummary> {
    let packed = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    // The frame says its decoded size (the encoder writes it): allocate that, bounded.
    let size = zstd::zstd_safe::get_frame_content_size(&packed).ok()??;
    let size = usize::try_from(size).ok().filter(|s| *s <= MAX_DECODED)?;
    // One decompression context per thread, not one per footer.
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let bytes = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Decompressor::new().ok();
        }
        c.as_mut()?.decompress(&packed, size).ok()
    })?;
    let b = bytes.as_slice();
    let mut pos = 0;
    let uint = |pos: &mut usize| -> Option<u64> { take_u64(b, pos) };
    let int = |pos: &mut usize| -> Option<i64> { Some(unzigzag(uint(pos)?)) };
    if uint(&mut pos)? != SLOT_MS as u64 {
        return None;
    }
    let n = usize::try_from(uint(&mut pos)?).ok()?;
    let span_first = int(&mut pos)?;
    let span_last = span_first.wrapping_add(int(&mut pos)?);
    let mut containers = Vec::with_capacity(n.min(100_000));
    for _ in 0..n {
        let id = take_id(b, &mut pos)?;
        let first_t = span_first.wrapping_add(int(&mut pos)?);
        let last_t = first_t.wrapping_add(int(&mut pos)?);
        let samples = uint(&mut pos)?;
        let mut counters = [CounterSpan::default(); COUNTERS.len()];
        for c in counters.iter_mut() {
            c.first = decoded(take_varint(b, &mut pos)?)?;
            let moved = if c.first == NULL_VALUE {
                c.last = decoded(take_varint(b, &mut pos)?)?;
                0
            } else {
                let moved = int(&mut pos)?;
                c.last = c.first.wrapping_add(moved);
                moved
            };
            c.increase = int(&mut pos)?.wrapping_add(moved) as f64;
        }
        let cpu_peak = int(&mut pos)? as f64;
        let working_set_max = decoded(take_varint(b, &mut pos)?)?;
        let mut gauges_last = [NULL_VALUE; GAUGES.len()];
        for g in gauges_last.iter_mut() {
            *g = decoded(take_varint(b, &mut pos)?)?;
        }
        let slot_count = usize::try_from(uint(&mut pos)?).ok()?;
        let covered = int(&mut pos)?;
        let mut slots: Vec<(i64, Slot)> = Vec::with_capacity(slot_count.min(4096));
        let mut prev = 0i64;
        for k in 0..slot_count {
            prev = prev.wrapping_add(int(&mut pos)?);
            if k + 1 == slot_count {
                break;
            }
            let mut f = [0f32; 8];
            for v in f.iter_mut() {
                *v = int(&mut pos)? as f32;
            }
            let ws = decoded(take_varint(b, &mut pos)?)?;
            slots.push((prev, slot_of(f, ws)));
        }
        let mut summary = Summary {
            first_t,
            last_t,
            samples,
            counters,
            cpu_peak,
            working_set_max,
            gauges_last,
            slots,
        };
        if slot_count > 0 {
            let ws = decoded(take_varint(b, &mut pos)?)?;
            // The last slot: what the others leave of the file's totals.
            let mut total = totals(&summary);
            total[0] = covered as f64;
            let mut rest = [0f32; 8];
            for (k, r) in rest.iter_mut().enumerate() {
                let others: f64 = summary
                    .slots
                    .iter()
                    .map(|(_, s)| f64::from(sums(s)[k]))
                    .sum();
                *r = (total[k] - others).round() as f32;
            }
            summary.slots.push((prev, slot_of(rest, ws)));
        }
        containers.push((id, summary));
    }
    (pos == b.len()).then_some(FileSummary {
        containers,
        span: (n > 0).then_some((span_first, span_last)),
    })
}

fn slot_of(f: [f32; 8], ws: i64) -> Slot {
    Slot {
        covered_ms: f[0],
        cpu_usec: f[1],
        nr_throttled: f[2],
        nr_periods: f[3],
        io_bytes: f[4],
        psi_usec: [f[5], f[6], f[7]],
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
