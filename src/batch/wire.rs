//! Plain serialization of a [`Batch`] for WAL records: fast to write, validated on read.
//!
//! ```text
//! { ncols: u32 | nrows: u32 | column* }
//! column: { name: str16 | type: u8 | has_validity: u8 | validity: [u64; ceil(nrows/64)]?
//!         | values: bool → [u8; n], int/float/timestamp → [8 bytes; n],
//!                   text → { offsets: [u32; n+1] | data_len: u32 | data } }
//! ```

use super::{Batch, Bitmap, Column, DataType, Field, StrVec, Values};
use crate::util::bytes::{ByteReader, PutBytes};

impl Batch {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let n = self.num_rows();
        out.put_u32(self.columns.len() as u32);
        out.put_u32(n as u32);
        for (f, c) in self.fields.iter().zip(&self.columns) {
            out.put_str16(&f.name);
            out.put_u8(f.data_type as u8);
            match &c.validity {
                Some(v) => {
                    out.put_u8(1);
                    for i in (0..n).step_by(64) {
                        let mut w = 0u64;
                        for j in i..(i + 64).min(n) {
                            w |= (v.get(j) as u64) << (j - i);
                        }
                        out.put_u64(w);
                    }
                }
                None => out.put_u8(0),
            }
            match &c.values {
                Values::Bool(v) => v.iter().for_each(|&b| out.put_u8(b as u8)),
                Values::Int64(v) | Values::Timestamp(v) => v.iter().for_each(|&x| out.put_i64(x)),
                Values::Float64(v) => v.iter().for_each(|&x| out.put_f64(x)),
                Values::Text(v) => {
                    let v = v.as_bin();
                    v.offsets().iter().for_each(|&o| out.put_u32(o));
                    out.put_bytes32(v.data());
                }
            }
        }
    }

    /// Decodes [`Batch::encode`] output; `None` if malformed.
    pub fn decode(r: &mut ByteReader) -> Option<Batch> {
        let ncols = r.u32()? as usize;
        let n = r.u32()? as usize;
        if n > r.remaining() || ncols > r.remaining() {
            return None;
        }
        let mut fields = Vec::with_capacity(ncols);
        let mut columns = Vec::with_capacity(ncols);
        for _ in 0..ncols {
            let name = r.str16()?.to_string();
            let t = DataType::from_u8(r.u8()?)?;
            let validity = match r.u8()? {
                0 => None,
                1 => {
                    let mut v = Bitmap::new_unset(n);
                    for i in (0..n).step_by(64) {
                        let w = r.u64()?;
                        for j in i..(i + 64).min(n) {
                            v.set(j, w >> (j - i) & 1 == 1);
                        }
                    }
                    Some(v)
                }
                _ => return None,
            };
            let values = match t {
                DataType::Bool => Values::Bool(r.take(n)?.iter().map(|&b| b != 0).collect()),
                DataType::Int64 => Values::Int64((0..n).map(|_| r.i64()).collect::<Option<_>>()?),
                DataType::Timestamp => Values::Timestamp((0..n).map(|_| r.i64()).collect::<Option<_>>()?),
                DataType::Float64 => Values::Float64((0..n).map(|_| r.f64()).collect::<Option<_>>()?),
                DataType::Text => {
                    let offsets = (0..=n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?;
                    Values::Text(StrVec::from_parts(offsets, r.bytes32()?.to_vec())?)
                }
            };
            fields.push(Field { name, data_type: t });
            columns.push(Column::with_validity(values, validity));
        }
        Batch::try_new(fields, columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut v = Bitmap::new_set(3);
        v.set(1, false);
        let b = Batch::try_new(
            vec![
                Field::new("t", DataType::Timestamp),
                Field::new("x", DataType::Float64),
                Field::new("s", DataType::Text),
            ],
            vec![
                Column::new(Values::Timestamp(vec![1, 2, 3])),
                Column::with_validity(Values::Float64(vec![1.5, 0.0, -2.0]), Some(v)),
                Column::new(Values::Text(["a", "bb", ""].into_iter().collect())),
            ],
        )
        .unwrap();
        let mut buf = Vec::new();
        b.encode(&mut buf);
        assert_eq!(Batch::decode(&mut ByteReader::new(&buf)), Some(b));
        for cut in 0..buf.len() {
            assert_eq!(Batch::decode(&mut ByteReader::new(&buf[..cut])), None);
        }
    }
}
