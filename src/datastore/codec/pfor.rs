//! Patched frame-of-reference bit-packing of `u64` sequences.
//!
//! Values are stored as `v - base` in `width` bits, where `base` is the minimum and `width` is
//! chosen to minimise the total size; the few values that need more bits are *exceptions*: their
//! low `width` bits stay in the packed stream and their high bits are listed separately. A
//! sensor spike or the jump between two series in a sorted file therefore costs a few bytes
//! instead of widening every value.
//!
//! ```text
//! { base: u64 | width: u8 | n_exceptions: u32 | packed: ceil(n*width/8) bytes
//!   | n_exceptions × { index: u32 | high_bits: u64 } }
//! ```
//! The count `n` is known to the caller and not stored here.

use super::CodecError;
use super::bitpack::{self, bits_needed};
use crate::util::bytes::{ByteReader, PutBytes};

const EXCEPTION_BYTES: usize = 12;

pub fn encode(values: &[u64], out: &mut Vec<u8>) {
    let base = values.iter().copied().min().unwrap_or(0);
    let mut hist = [0usize; 65];
    for &v in values {
        hist[bits_needed(v - base) as usize] += 1;
    }
    // Cost of width w: packed bits plus exceptions for every value wider than w.
    let mut best_w = 64u32;
    let mut best_cost = usize::MAX;
    let mut wider = 0usize; // values needing more than w bits
    for w in (0..=64u32).rev() {
        let cost = bitpack::packed_len(values.len(), w) + wider * EXCEPTION_BYTES;
        if cost < best_cost {
            best_cost = cost;
            best_w = w;
        }
        wider += hist[w as usize];
    }
    let exceptions: Vec<(u32, u64)> = if best_w == 64 {
        Vec::new()
    } else {
        values
            .iter()
            .enumerate()
            .filter(|&(_, &v)| bits_needed(v - base) > best_w)
            .map(|(i, &v)| (i as u32, (v - base) >> best_w))
            .collect()
    };
    out.put_u64(base);
    out.put_u8(best_w as u8);
    out.put_u32(exceptions.len() as u32);
    let low: Vec<u64> = values.iter().map(|&v| v - base).collect();
    bitpack::pack(&low, best_w, out);
    for (i, hi) in exceptions {
        out.put_u32(i);
        out.put_u64(hi);
    }
}

/// Appends `n` decoded values to `out`.
pub fn decode(r: &mut ByteReader, n: usize, out: &mut Vec<u64>) -> Result<(), CodecError> {
    let err = || CodecError("pfor");
    let base = r.u64().ok_or_else(err)?;
    let width = r.u8().ok_or_else(err)? as u32;
    if width > 64 {
        return Err(err());
    }
    let n_exc = r.u32().ok_or_else(err)? as usize;
    if n_exc > n {
        return Err(err());
    }
    let packed = r.take(bitpack::packed_len(n, width)).ok_or_else(err)?;
    let start = out.len();
    bitpack::unpack_add(packed, n, width, base, out)?;
    let vals = &mut out[start..];
    for _ in 0..n_exc {
        let i = r.u32().ok_or_else(err)? as usize;
        let hi = r.u64().ok_or_else(err)?;
        if i >= n || width >= 64 {
            return Err(err());
        }
        let low = vals[i].wrapping_sub(base);
        vals[i] = (low | hi << width).wrapping_add(base);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(v in prop::collection::vec(prop_oneof![0u64..16, any::<u64>()], 0..400)) {
            let mut buf = Vec::new();
            encode(&v, &mut buf);
            let mut out = Vec::new();
            decode(&mut ByteReader::new(&buf), v.len(), &mut out).unwrap();
            prop_assert_eq!(out, v);
        }
    }

    #[test]
    fn outliers_become_exceptions() {
        let mut v: Vec<u64> = (0..1000).map(|i| i % 4).collect();
        v[500] = u64::MAX / 3;
        let mut buf = Vec::new();
        encode(&v, &mut buf);
        assert!(buf.len() < 300, "{} bytes", buf.len());
    }
}
