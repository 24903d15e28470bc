//! Integer and timestamp codecs.
//!
//! ```text
//! int-delta: { n: u32 | first: i64 | pfor(zigzag(v[i] - v[i-1]) for i in 1..n) }
//! ts-dod:    { n: u32 | first: i64 | first_delta: i64 | pfor(zigzag(d[i] - d[i-1]) for i in 2..n) }
//! ```
//! All arithmetic wraps, so any `i64` sequence round-trips.

use super::{CodecError, pfor, unzigzag, zigzag};
use crate::util::bytes::{ByteReader, PutBytes};

pub fn encode_delta(v: &[i64], out: &mut Vec<u8>) {
    out.put_u32(v.len() as u32);
    out.put_i64(v.first().copied().unwrap_or(0));
    let deltas: Vec<u64> = v.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]))).collect();
    pfor::encode(&deltas, out);
}

pub fn decode_delta(r: &mut ByteReader, n: usize) -> Result<Vec<i64>, CodecError> {
    let err = || CodecError("int-delta");
    if r.u32().ok_or_else(err)? as usize != n {
        return Err(err());
    }
    let first = r.i64().ok_or_else(err)?;
    let mut deltas = Vec::with_capacity(n);
    pfor::decode(r, n.saturating_sub(1), &mut deltas)?;
    let mut out = Vec::with_capacity(n);
    if n > 0 {
        let mut acc = first;
        out.push(acc);
        for d in deltas {
            acc = acc.wrapping_add(unzigzag(d));
            out.push(acc);
        }
    }
    Ok(out)
}

pub fn encode_dod(v: &[i64], out: &mut Vec<u8>) {
    out.put_u32(v.len() as u32);
    out.put_i64(v.first().copied().unwrap_or(0));
    let first_delta = if v.len() > 1 { v[1].wrapping_sub(v[0]) } else { 0 };
    out.put_i64(first_delta);
    let dods: Vec<u64> =
        v.windows(3).map(|w| zigzag(w[2].wrapping_sub(w[1]).wrapping_sub(w[1].wrapping_sub(w[0])))).collect();
    pfor::encode(&dods, out);
}

pub fn decode_dod(r: &mut ByteReader, n: usize) -> Result<Vec<i64>, CodecError> {
    let err = || CodecError("ts-dod");
    if r.u32().ok_or_else(err)? as usize != n {
        return Err(err());
    }
    let first = r.i64().ok_or_else(err)?;
    let mut delta = r.i64().ok_or_else(err)?;
    let mut dods = Vec::with_capacity(n);
    pfor::decode(r, n.saturating_sub(2), &mut dods)?;
    let mut out = Vec::with_capacity(n);
    if n > 0 {
        out.push(first);
    }
    if n > 1 {
        let mut acc = first.wrapping_add(delta);
        out.push(acc);
        for d in dods {
            delta = delta.wrapping_add(unzigzag(d));
            acc = acc.wrapping_add(delta);
            out.push(acc);
        }
    }
    Ok(out)
}
