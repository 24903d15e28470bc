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
    // The first value, then the deltas, in one buffer summed in place (the collect reuses it).
    // The deltas' header is there even when there are none.
    let mut v = Vec::with_capacity(n.max(1));
    v.push(first as u64);
    pfor::decode(r, n.saturating_sub(1), &mut v)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut acc = first as u64;
    for x in &mut v[1..] {
        acc = acc.wrapping_add(unzigzag(*x) as u64);
        *x = acc;
    }
    Ok(v.into_iter().map(|x| x as i64).collect())
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
    let delta = r.i64().ok_or_else(err)?;
    // The first two values, then the deltas of deltas, in one buffer summed in place. The
    // header of the deltas of deltas is there even when there are none.
    let mut v = Vec::with_capacity(n.max(2));
    v.push(first as u64);
    v.push(first.wrapping_add(delta) as u64);
    pfor::decode(r, n.saturating_sub(2), &mut v)?;
    if n < 2 {
        return Ok(if n == 1 { vec![first] } else { Vec::new() });
    }
    let (mut delta, mut acc) = (delta as u64, v[1]);
    for x in &mut v[2..] {
        delta = delta.wrapping_add(unzigzag(*x) as u64);
        acc = acc.wrapping_add(delta);
        *x = acc;
    }
    Ok(v.into_iter().map(|x| x as i64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sequences_round_trip_and_leave_the_reader_after_them() {
        // Records hold such sequences back to back: a decoder that read less (or more) than
        // was written would misread what follows.
        for n in 0..5usize {
            let v: Vec<i64> = (0..n as i64).map(|i| 1_000 + i * i * 7 - i).collect();
            for (encode, decode) in [
                (encode_delta as fn(&[i64], &mut Vec<u8>), decode_delta as fn(&mut ByteReader, usize) -> _),
                (encode_dod, decode_dod),
            ] {
                let mut buf = Vec::new();
                encode(&v, &mut buf);
                buf.put_u32(0xfeed_f00d);
                let mut r = ByteReader::new(&buf);
                assert_eq!(decode(&mut r, n).unwrap(), v, "{n} values");
                assert_eq!(r.u32(), Some(0xfeed_f00d), "{n} values: the reader stops at their end");
            }
        }
    }
}
