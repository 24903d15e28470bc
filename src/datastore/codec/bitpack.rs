//! Fixed-width bit-packing: value `i` occupies bits `[i*w, (i+1)*w)` of a little-endian bit
//! stream. Width 0 stores nothing (all values zero).

use super::CodecError;

/// Appends `values`, each masked to `width` bits (0..=64), to `out`.
pub fn pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let nbytes = packed_len(values.len(), width);
    let start = out.len();
    out.resize(start + nbytes, 0);
    let buf = &mut out[start..];
    let mask = mask(width);
    let mut acc: u128 = 0;
    let mut acc_bits = 0u32;
    let mut pos = 0usize;
    for &v in values {
        acc |= ((v & mask) as u128) << acc_bits;
        acc_bits += width;
        while acc_bits >= 64 {
            buf[pos..pos + 8].copy_from_slice(&(acc as u64).to_le_bytes());
            pos += 8;
            acc >>= 64;
            acc_bits -= 64;
        }
    }
    let tail = acc_bits.div_ceil(8) as usize;
    buf[pos..pos + tail].copy_from_slice(&(acc as u64).to_le_bytes()[..tail]);
}

/// Bytes taken by `n` values of `width` bits.
pub fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(8)
}

#[inline]
pub fn mask(width: u32) -> u64 {
    if width >= 64 { u64::MAX } else { (1u64 << width) - 1 }
}

/// Appends `n` values of `width` bits from `buf` to `out`. `buf` must hold exactly the packed bytes.
pub fn unpack(buf: &[u8], n: usize, width: u32, out: &mut Vec<u64>) -> Result<(), CodecError> {
    unpack_add(buf, n, width, 0, out)
}

/// Like [`unpack`], adding `base` (wrapping) to every value in the same pass.
pub fn unpack_add(buf: &[u8], n: usize, width: u32, base: u64, out: &mut Vec<u64>) -> Result<(), CodecError> {
    if width > 64 {
        return Err(CodecError("bit width"));
    }
    let start = out.len();
    if width == 0 {
        out.resize(start + n, base);
        return Ok(());
    }
    if buf.len() < packed_len(n, width) {
        return Err(CodecError("bit-packed length"));
    }
    out.resize(start + n, 0);
    let out = &mut out[start..];
    let m = mask(width);
    let w = width as usize;
    // Fast path: one unaligned 8-byte read per value while it stays inside `buf` and the value
    // fits in the word (width <= 56 leaves room for the bit shift).
    let fast_end = if width <= 56 && buf.len() >= 8 { ((buf.len() - 8) * 8 / w + 1).min(n) } else { 0 };
    for (i, o) in out[..fast_end].iter_mut().enumerate() {
        let bit = i * w;
        let byte = bit / 8;
        let word = u64::from_le_bytes(buf[byte..byte + 8].try_into().expect("8 bytes"));
        *o = ((word >> (bit % 8)) & m).wrapping_add(base);
    }
    for (i, o) in out.iter_mut().enumerate().skip(fast_end) {
        let bit = i * w;
        let mut word = [0u8; 16];
        let avail = (buf.len() - bit / 8).min(16);
        word[..avail].copy_from_slice(&buf[bit / 8..bit / 8 + avail]);
        *o = (((u128::from_le_bytes(word) >> (bit % 8)) as u64) & m).wrapping_add(base);
    }
    Ok(())
}

/// Bits needed to represent `v`.
#[inline]
pub fn bits_needed(v: u64) -> u32 {
    64 - v.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(width in 0u32..=64, raw in prop::collection::vec(any::<u64>(), 0..300)) {
            let vals: Vec<u64> = raw.iter().map(|v| v & mask(width)).collect();
            let vals = if width == 0 { vec![0; raw.len()] } else { vals };
            let mut buf = Vec::new();
            pack(&vals, width, &mut buf);
            assert_eq!(buf.len(), packed_len(vals.len(), width));
            let mut out = Vec::new();
            unpack(&buf, vals.len(), width, &mut out).unwrap();
            prop_assert_eq!(out, vals);
        }
    }

    #[test]
    fn short_input_is_an_error() {
        let mut out = Vec::new();
        assert!(unpack(&[1, 2], 10, 7, &mut out).is_err());
        assert!(unpack(&[], 1, 65, &mut out).is_err());
    }
}
