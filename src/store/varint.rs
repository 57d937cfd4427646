//! The compact integer codes of the in-memory interval and the tail file:
//! zigzag deltas as LEB128 varints, about a byte for a value that moved a
//! little, and every `i64` exact (wrapping deltas).

/// Longest LEB128 varint we write: 10 bytes hold 70 bits, enough for the
/// 65-bit value codes of [`value_code`].
pub const MAX_VARINT_BYTES: usize = 10;

/// Maps small magnitudes of either sign to small numbers: 0, -1, 1, -2 -> 0, 1, 2, 3.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Code of one value against its column's previous non-null value `prev`
/// (updated): 0 for null, else zigzag(wrapping delta) + 1, which needs up to
/// 65 bits, hence `u128`. Wrapping deltas make every `i64` exact.
pub fn value_code(value: Option<i64>, prev: &mut i64) -> u128 {
    match value {
        None => 0,
        Some(v) => {
            let delta = v.wrapping_sub(*prev);
            *prev = v;
            u128::from(zigzag(delta)) + 1
        }
    }
}

/// Inverse of [`value_code`]; `None` for a code no value produces.
pub fn decode_value(code: u128, prev: &mut i64) -> Option<Option<i64>> {
    let Some(biased) = code.checked_sub(1) else {
        return Some(None);
    };
    let delta = unzigzag(u64::try_from(biased).ok()?);
    *prev = prev.wrapping_add(delta);
    Some(Some(*prev))
}

/// Appends `v` as an LEB128 varint: 7 bits a byte, low first, high bit = more.
pub fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one LEB128 varint at `*pos` and advances past it; `None` when the
/// bytes end mid-varint or it is longer than [`MAX_VARINT_BYTES`].
pub fn take_varint(bytes: &[u8], pos: &mut usize) -> Option<u128> {
    // Most values fit a byte: no loop for them.
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u128::from(first));
    }
    let mut v = 0u128;
    for (i, &b) in bytes.get(*pos..)?.iter().take(MAX_VARINT_BYTES).enumerate() {
        v |= u128::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

/// [`take_varint`] for values that fit 64 bits (counts, lengths, zigzag
/// differences): `None` past 64 bits too.
pub fn take_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    let mut v = 0u64;
    for (i, &b) in bytes.get(*pos..)?.iter().take(MAX_VARINT_BYTES).enumerate() {
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}
