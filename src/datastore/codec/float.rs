//! Float codecs.
//!
//! Sensors report fixed precision (`61.53`), so most float columns are decimals in disguise.
//! `float-decimal` finds the smallest scale `s` (0..=6) for which every value `v` satisfies
//! `round(v * 10^s) / 10^s == v` bit for bit, and stores those integers as int-delta. Anything
//! else (NaN, -0.0, full-precision values) uses `float-gorilla`, the XOR scheme of Facebook's
//! Gorilla paper.
//!
//! ```text
//! float-decimal: { scale: u8 | int-delta }
//! float-gorilla: { n: u32 | bit stream }
//!   first value: 64 bits; then per value, x = bits ^ prev_bits:
//!   x == 0              -> '0'
//!   fits previous window -> '10' + meaningful bits
//!   otherwise           -> '11' + leading zeros (6 bits) + meaningful length - 1 (6 bits) + bits
//! ```

use super::{CodecError, Encoding, int};
use crate::util::bytes::{ByteReader, PutBytes};

const MAX_SCALE: u32 = 6;
const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Integers beyond this are not exactly representable after scaling.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

pub fn encode(v: &[f64], out: &mut Vec<u8>) -> Encoding {
    if let Some(scale) = decimal_scale(v) {
        let p = POW10[scale as usize];
        let ints: Vec<i64> = v.iter().map(|&x| (x * p).round() as i64).collect();
        out.put_u8(scale as u8);
        int::encode_delta(&ints, out);
        Encoding::FloatDecimal
    } else {
        out.put_u32(v.len() as u32);
        gorilla_encode(v, out);
        Encoding::FloatGorilla
    }
}

fn decimal_scale(v: &[f64]) -> Option<u32> {
    'scale: for s in 0..=MAX_SCALE {
        let p = POW10[s as usize];
        for &x in v {
            let r = (x * p).round();
            // NaN fails `is_finite`, so the comparison below only sees numbers. The value must
            // come back bit for bit from the integer it is stored as: -0.0 would come back 0.0.
            if !r.is_finite() || r.abs() >= MAX_EXACT || ((r as i64) as f64 / p).to_bits() != x.to_bits() {
                continue 'scale;
            }
        }
        return Some(s);
    }
    None
}

pub fn decode(enc: Encoding, r: &mut ByteReader, n: usize) -> Result<Vec<f64>, CodecError> {
    match enc {
        Encoding::FloatDecimal => {
            let scale = r.u8().ok_or(CodecError("float-decimal"))? as usize;
            let p = *POW10.get(scale).ok_or(CodecError("float-decimal scale"))?;
            let ints = int::decode_delta(r, n)?;
            Ok(ints.into_iter().map(|i| i as f64 / p).collect())
        }
        _ => {
            if r.u32().ok_or(CodecError("float-gorilla"))? as usize != n {
                return Err(CodecError("float-gorilla"));
            }
            gorilla_decode(r.take(r.remaining()).unwrap_or_default(), n)
        }
    }
}

struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter<'_> {
    /// Writes the low `n` bits of `v`, most significant first.
    fn write(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        let free = 64 - self.bits;
        if n <= free {
            self.acc |= if n == 64 { v } else { v << (free - n) };
            self.bits += n;
        } else {
            let hi = n - free;
            self.acc |= v >> hi;
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = v << (64 - hi);
            self.bits = hi;
            return;
        }
        if self.bits == 64 {
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = 0;
            self.bits = 0;
        }
    }
    fn finish(self) {
        let n = self.bits.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_be_bytes()[..n]);
    }
}

struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize, // in bits
}

impl BitReader<'_> {
    fn read(&mut self, n: u32) -> Result<u64, CodecError> {
        if n == 0 {
            return Ok(0);
        }
        let end = self.pos + n as usize;
        if end > self.buf.len() * 8 {
            return Err(CodecError("float-gorilla bit stream"));
        }
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = self.buf[self.pos / 8];
            let off = (self.pos % 8) as u32;
            let take = (8 - off).min(left);
            let bits = (byte >> (8 - off - take)) as u64 & ((1u64 << take) - 1);
            v = if take == 64 { bits } else { (v << take) | bits };
            self.pos += take as usize;
            left -= take;
        }
        Ok(v)
    }
}

fn gorilla_encode(v: &[f64], out: &mut Vec<u8>) {
    let mut w = BitWriter { out, acc: 0, bits: 0 };
    let Some(first) = v.first() else {
        w.finish();
        return;
    };
    let mut prev = first.to_bits();
    w.write(prev, 64);
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for x in &v[1..] {
        let bits = x.to_bits();
        let xor = bits ^ prev;
        prev = bits;
        if xor == 0 {
            w.write(0, 1);
            continue;
        }
        let l = xor.leading_zeros().min(63);
        let t = xor.trailing_zeros();
        if lead != u32::MAX && l >= lead && t >= trail {
            w.write(0b10, 2);
            w.write(xor >> trail, 64 - lead - trail);
        } else {
            lead = l;
            trail = t;
            let len = 64 - l - t;
            w.write(0b11, 2);
            w.write(l as u64, 6);
            w.write((len - 1) as u64, 6);
            w.write(xor >> t, len);
        }
    }
    w.finish();
}

fn gorilla_decode(buf: &[u8], n: usize) -> Result<Vec<f64>, CodecError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let mut r = BitReader { buf, pos: 0 };
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for _ in 1..n {
        if r.read(1)? == 0 {
            out.push(f64::from_bits(prev));
            continue;
        }
        if r.read(1)? == 0 {
            if lead == u32::MAX {
                return Err(CodecError("float-gorilla window"));
            }
        } else {
            lead = r.read(6)? as u32;
            let len = r.read(6)? as u32 + 1;
            if lead + len > 64 {
                return Err(CodecError("float-gorilla window"));
            }
            trail = 64 - lead - len;
        }
        let len = 64 - lead - trail;
        prev ^= r.read(len)? << trail;
        out.push(f64::from_bits(prev));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_decimal_for_sensor_values() {
        let v = [61.53, 61.5, 61.49, 62.0];
        let mut buf = Vec::new();
        assert_eq!(encode(&v, &mut buf), Encoding::FloatDecimal);
        let v = [0.1 + 0.2, 1.0 / 3.0];
        let mut buf = Vec::new();
        assert_eq!(encode(&v, &mut buf), Encoding::FloatGorilla);
    }

    /// -0.0 is kept bit for bit (as a scaled integer it would come back as 0.0).
    #[test]
    fn negative_zero_survives() {
        let v = [1.5, -0.0, 2.25];
        let mut buf = Vec::new();
        let enc = encode(&v, &mut buf);
        assert_eq!(enc, Encoding::FloatGorilla);
        let got = decode(enc, &mut ByteReader::new(&buf), v.len()).unwrap();
        assert_eq!(
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
