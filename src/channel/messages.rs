//! [`Messages`]: a columnar batch of channel messages with consecutive offsets.
//!
//! Encoding (used by WAL records and segment blocks):
//! ```text
//! { n: u32 | first_offset: u64 | received_at: ts-dod | ids: bin | topics: bin | payloads: bin }
//! bin: { offsets: [u32; n + 1] | data_len: u32 | data }
//! ```

use crate::batch::{BinVec, StrVec};
use crate::datastore::codec::int;
use crate::util::bytes::{ByteReader, PutBytes};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Messages {
    /// Offset of the first message; message `i` has offset `first_offset + i`.
    pub first_offset: u64,
    /// Arrival time, microseconds since the epoch.
    pub received_at: Vec<i64>,
    /// The sender's message id (AWS `messageId`).
    pub ids: StrVec,
    /// MQTT topic, or empty.
    pub topics: StrVec,
    /// Raw payload bytes, kept exactly as received.
    pub payloads: BinVec,
}

impl Messages {
    pub fn len(&self) -> usize {
        self.received_at.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn end_offset(&self) -> u64 {
        self.first_offset + self.len() as u64
    }
    pub fn push(&mut self, received_at: i64, id: &str, topic: &str, payload: &[u8]) {
        self.received_at.push(received_at);
        self.ids.push(id);
        self.topics.push(topic);
        self.payloads.push(payload);
    }
    /// Messages `start..end` (indices, not offsets).
    pub fn slice(&self, start: usize, end: usize) -> Messages {
        let mut out = Messages { first_offset: self.first_offset + start as u64, ..Default::default() };
        out.extend_range(self, start, end);
        out
    }
    /// Appends messages `start..end` of `other`; the caller keeps offsets contiguous.
    pub fn extend_range(&mut self, other: &Messages, start: usize, end: usize) {
        self.received_at.extend_from_slice(&other.received_at[start..end]);
        for i in start..end {
            self.ids.push(other.ids.get(i));
            self.topics.push(other.topics.get(i));
        }
        self.payloads.extend_range(&other.payloads, start, end);
    }
    pub fn payload_bytes(&self) -> usize {
        self.payloads.data_len()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.len() as u32);
        out.put_u64(self.first_offset);
        int::encode_dod(&self.received_at, out);
        for b in [&*self.ids.as_bin(), &*self.topics.as_bin(), &self.payloads] {
            for &o in b.offsets() {
                out.put_u32(o);
            }
            out.put_bytes32(b.data());
        }
    }

    /// Decodes [`Messages::encode`] output; `None` if malformed.
    pub fn decode(r: &mut ByteReader) -> Option<Messages> {
        let n = r.u32()? as usize;
        if n > r.remaining() {
            return None;
        }
        let first_offset = r.u64()?;
        let received_at = int::decode_dod(r, n).ok()?;
        let mut bins = Vec::with_capacity(3);
        for _ in 0..3 {
            let mut offsets = Vec::with_capacity(n + 1);
            for _ in 0..=n {
                offsets.push(r.u32()?);
            }
            bins.push(BinVec::from_parts(offsets, r.bytes32()?.to_vec())?);
        }
        let payloads = bins.pop()?;
        let topics = StrVec::from_bin(bins.pop()?)?;
        let ids = StrVec::from_bin(bins.pop()?)?;
        Some(Messages { first_offset, received_at, ids, topics, payloads })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trip_and_truncation() {
        let mut m = Messages { first_offset: 42, ..Default::default() };
        m.push(1_000, "a", "iot/x", b"{\"v\":1}");
        m.push(2_000, "b", "", b"\xff\x00 not json");
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!(Messages::decode(&mut ByteReader::new(&buf)), Some(m.clone()));
        for cut in 0..buf.len() {
            assert_eq!(Messages::decode(&mut ByteReader::new(&buf[..cut])), None, "cut {cut}");
        }
        assert_eq!(m.slice(1, 2).first_offset, 43);
    }
}
