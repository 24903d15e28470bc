//! Blocks: the codec identifier written before each encoded block, and encoding and decoding a column's values by it.

use crate::batch::{StrVec, Values};
use crate::util::bytes::{ByteReader, PutBytes};

/// Codec identifiers, written as one byte before each encoded block. Never reuse a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    IntDelta = 1,
    TimestampDod = 2,
    FloatDecimal = 3,
    FloatGorilla = 4,
    TextDict = 5,
    TextPlain = 6,
    BoolBits = 7,
}

impl Encoding {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Encoding::IntDelta,
            2 => Encoding::TimestampDod,
            3 => Encoding::FloatDecimal,
            4 => Encoding::FloatGorilla,
            5 => Encoding::TextDict,
            6 => Encoding::TextPlain,
            7 => Encoding::BoolBits,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Encoding::IntDelta => "int-delta",
            Encoding::TimestampDod => "ts-dod",
            Encoding::FloatDecimal => "float-decimal",
            Encoding::FloatGorilla => "float-gorilla",
            Encoding::TextDict => "text-dict",
            Encoding::TextPlain => "text-plain",
            Encoding::BoolBits => "bool-bits",
        }
    }
}

/// A malformed encoded block.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed {0} block")]
pub struct CodecError(pub &'static str);

/// A sorted string dictionary shared by all blocks of one text column in one file.
pub type Dictionary = StrVec;

/// Encodes `values` (nulls already filled by the caller) and returns the encoding used.
/// `dict` maps each text value to its code when the column is dictionary-encoded.
pub fn encode(values: &Values, dict_codes: Option<&[u32]>, out: &mut Vec<u8>) -> Encoding {
    match values {
        Values::Int64(v) => {
            super::int::encode_delta(v, out);
            Encoding::IntDelta
        }
        Values::Timestamp(v) => {
            super::int::encode_dod(v, out);
            Encoding::TimestampDod
        }
        Values::Float64(v) => super::float::encode(v, out),
        Values::Text(v) => match dict_codes {
            Some(codes) => {
                let codes: Vec<u64> = codes.iter().map(|&c| c as u64).collect();
                out.put_u32(codes.len() as u32);
                super::pfor::encode(&codes, out);
                Encoding::TextDict
            }
            None => {
                out.put_u32(v.len() as u32);
                let v = v.as_bin();
                for &o in v.offsets() {
                    out.put_u32(o);
                }
                out.extend_from_slice(v.data());
                Encoding::TextPlain
            }
        },
        Values::Bool(v) => {
            out.put_u32(v.len() as u32);
            let bits: Vec<u64> = v.iter().map(|&b| b as u64).collect();
            super::bitpack::pack(&bits, 1, out);
            Encoding::BoolBits
        }
    }
}

/// Decodes a block of exactly `n` values encoded as `enc`.
pub fn decode(
    enc: Encoding,
    bytes: &[u8],
    n: usize,
    dict: Option<&std::sync::Arc<Dictionary>>,
) -> Result<Values, CodecError> {
    let mut r = ByteReader::new(bytes);
    let values = match enc {
        Encoding::IntDelta => Values::Int64(super::int::decode_delta(&mut r, n)?),
        Encoding::TimestampDod => Values::Timestamp(super::int::decode_dod(&mut r, n)?),
        Encoding::FloatDecimal | Encoding::FloatGorilla => Values::Float64(super::float::decode(enc, &mut r, n)?),
        Encoding::TextDict => {
            let dict = dict.ok_or(CodecError("text-dict without dictionary"))?;
            check_count(&mut r, n, "text-dict")?;
            let mut codes = Vec::with_capacity(n);
            super::pfor::decode(&mut r, n, &mut codes)?;
            // The block's values stay codes into the file's dictionary (see StrVec).
            let codes = codes.into_iter().map(|c| u32::try_from(c).unwrap_or(u32::MAX)).collect();
            Values::Text(StrVec::coded(dict.clone(), codes).ok_or(CodecError("text-dict code"))?)
        }
        Encoding::TextPlain => {
            check_count(&mut r, n, "text-plain")?;
            let mut offsets = Vec::with_capacity(n + 1);
            for _ in 0..=n {
                offsets.push(r.u32().ok_or(CodecError("text-plain"))?);
            }
            let data = r.take(r.remaining()).unwrap_or_default().to_vec();
            Values::Text(StrVec::from_parts(offsets, data).ok_or(CodecError("text-plain"))?)
        }
        Encoding::BoolBits => {
            check_count(&mut r, n, "bool-bits")?;
            let mut bits = Vec::with_capacity(n);
            super::bitpack::unpack(r.take(n.div_ceil(8)).ok_or(CodecError("bool-bits"))?, n, 1, &mut bits)?;
            Values::Bool(bits.into_iter().map(|b| b == 1).collect())
        }
    };
    Ok(values)
}

pub(super) fn check_count(r: &mut ByteReader, n: usize, what: &'static str) -> Result<(), CodecError> {
    match r.u32() {
        Some(c) if c as usize == n => Ok(()),
        _ => Err(CodecError(what)),
    }
}

/// Zigzag maps signed to unsigned so that small magnitudes get small codes.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: Values, dict: Option<(&std::sync::Arc<Dictionary>, Vec<u32>)>) {
        let mut buf = Vec::new();
        let enc = encode(&values, dict.as_ref().map(|d| d.1.as_slice()), &mut buf);
        let back = decode(enc, &buf, values.len(), dict.map(|d| d.0)).unwrap();
        match (&values, &back) {
            (Values::Float64(a), Values::Float64(b)) => {
                let a: Vec<u64> = a.iter().map(|x| x.to_bits()).collect();
                let b: Vec<u64> = b.iter().map(|x| x.to_bits()).collect();
                assert_eq!(a, b, "{enc:?}");
            }
            _ => assert_eq!(values, back, "{enc:?}"),
        }
    }

    proptest! {
        #[test]
        fn ints_round_trip(v in prop::collection::vec(any::<i64>(), 0..600)) {
            round_trip(Values::Int64(v), None);
        }
        #[test]
        fn small_ints_round_trip(v in prop::collection::vec(-1000i64..1000, 0..600)) {
            round_trip(Values::Int64(v), None);
        }
        #[test]
        fn timestamps_round_trip(start in any::<i64>(), steps in prop::collection::vec(prop_oneof![Just(10_000_000i64), -5_000_000i64..5_000_000, any::<i64>()], 0..600)) {
            let mut t = start;
            let v: Vec<i64> = steps.iter().map(|s| { t = t.wrapping_add(*s); t }).collect();
            round_trip(Values::Timestamp(v), None);
        }
        #[test]
        fn floats_round_trip(v in prop::collection::vec(any::<f64>(), 0..600)) {
            round_trip(Values::Float64(v), None);
        }
        #[test]
        fn decimal_floats_round_trip(v in prop::collection::vec(-100_000i64..100_000, 0..600), scale in 0u32..4) {
            let p = 10f64.powi(scale as i32);
            round_trip(Values::Float64(v.iter().map(|&x| x as f64 / p).collect()), None);
        }
        #[test]
        fn text_round_trip(v in prop::collection::vec(".{0,12}", 0..200)) {
            round_trip(Values::Text(v.iter().map(|s| s.as_str()).collect()), None);
            let mut dict: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
            dict.sort();
            dict.dedup();
            let codes = v.iter().map(|s| dict.binary_search(&s.as_str()).unwrap() as u32).collect();
            let d = std::sync::Arc::new(dict.into_iter().collect::<Dictionary>());
            round_trip(Values::Text(v.iter().map(|s| s.as_str()).collect()), Some((&d, codes)));
        }
        #[test]
        fn bools_round_trip(v in prop::collection::vec(any::<bool>(), 0..600)) {
            round_trip(Values::Bool(v), None);
        }
        #[test]
        fn garbage_never_panics(enc in 1u8..8, bytes in prop::collection::vec(any::<u8>(), 0..200), n in 0usize..300) {
            let dict = std::sync::Arc::new(["a", "b"].into_iter().collect::<Dictionary>());
            let _ = decode(Encoding::from_u8(enc).unwrap(), &bytes, n, Some(&dict));
        }
    }

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -12345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn special_floats_keep_their_bits() {
        round_trip(Values::Float64(vec![0.0, -0.0, f64::NAN, f64::INFINITY, 1.5, f64::MIN_POSITIVE]), None);
    }
}
