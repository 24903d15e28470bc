//! WAL segment layout (storage-format.md § "WAL segments"):
//!
//! ```text
//! segment: { header | record* }
//! header:  { magic: [u8; 8] | version: u32 | reserved: u32 | first_lsn: u64 | prev_lsn: u64
//!          | crc32: u32 | reserved: u32 }
//! record:  { len: u32 | crc32: u32 | lsn: u64 | kind: u8 | payload: [u8; len] }
//! ```
//! A record's CRC covers `len`, `lsn`, `kind` and `payload`. LSNs are consecutive within a
//! segment. `prev_lsn` is the last LSN the log held when the segment was started; the next
//! segment's `prev_lsn` must equal this segment's last LSN (or its `prev_lsn` if it has no
//! records), which is how replay notices a missing segment. `first_lsn` may be above
//! `prev_lsn + 1` after a crash (see the engine's LSN floor).

use crate::util::bytes::{ByteReader, PutBytes, crc32};

pub const MAGIC: [u8; 8] = *b"FLEETWAL";
pub const VERSION: u32 = 1;
const VERSION_OFFSET: usize = MAGIC.len();
const FIRST_LSN_OFFSET: usize = VERSION_OFFSET + 4 + 4;
const PREV_LSN_OFFSET: usize = FIRST_LSN_OFFSET + 8;
const HEADER_CRC_OFFSET: usize = PREV_LSN_OFFSET + 8;
pub const HEADER_LEN: usize = HEADER_CRC_OFFSET + 4 + 4;
/// `len`, `crc`, `lsn`, `kind`.
pub const RECORD_HEADER_LEN: usize = 4 + 4 + 8 + 1;
/// Largest payload accepted; a larger `len` is corruption.
pub const MAX_PAYLOAD: usize = 256 << 20;
pub const FILE_EXT: &str = "wal";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub lsn: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
}

pub fn encode_header(first_lsn: u64, prev_lsn: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(&MAGIC);
    h.put_u32(VERSION);
    h.put_u32(0);
    h.put_u64(first_lsn);
    h.put_u64(prev_lsn);
    let crc = crc32(&h);
    h.put_u32(crc);
    h.put_u32(0);
    h
}

pub fn encode_record(lsn: u64, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u32(payload.len() as u32);
    out.put_u32(0);
    out.put_u64(lsn);
    out.put_u8(kind);
    out.extend_from_slice(payload);
    let mut h = crc32fast::Hasher::new();
    h.update(&out[start..start + 4]);
    h.update(&out[start + 8..]);
    let crc = h.finalize();
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading one segment found.
#[derive(Debug, PartialEq, Eq)]
pub enum SegmentScan {
    /// The header is damaged or missing (e.g. a crash while creating the segment).
    BadHeader(String),
    /// The segment is written by another format version.
    Version(u32),
    /// Records read; `tail` says why reading stopped before the end, with the byte offset of
    /// the first unusable record.
    Records { first_lsn: u64, prev_lsn: u64, records: Vec<Record>, tail: Option<(usize, String)> },
}

/// Parses a whole segment. Never panics, whatever the bytes.
pub fn scan_segment(buf: &[u8]) -> SegmentScan {
    if buf.len() < HEADER_LEN || buf[..MAGIC.len()] != MAGIC {
        return SegmentScan::BadHeader("missing or bad magic".into());
    }
    let mut r = ByteReader::new(&buf[VERSION_OFFSET..]);
    let version = r.u32().unwrap_or(0);
    if crc32(&buf[..HEADER_CRC_OFFSET]) != ByteReader::new(&buf[HEADER_CRC_OFFSET..]).u32().unwrap_or(0) {
        return SegmentScan::BadHeader("header checksum".into());
    }
    if ByteReader::new(&buf[HEADER_CRC_OFFSET + 4..]).u32() != Some(0) {
        return SegmentScan::BadHeader("reserved header bytes are not zero".into());
    }
    if version != VERSION {
        return SegmentScan::Version(version);
    }
    let first_lsn = ByteReader::new(&buf[FIRST_LSN_OFFSET..]).u64().unwrap_or(0);
    let prev_lsn = ByteReader::new(&buf[PREV_LSN_OFFSET..]).u64().unwrap_or(0);
    let mut records = Vec::new();
    let mut pos = HEADER_LEN;
    let mut expect = first_lsn;
    let tail = loop {
        let rest = &buf[pos..];
        // Segments are preallocated with zeros: an all-zero remainder is unused space. A torn
        // write leaves non-zero bytes somewhere in it and is reported below.
        if rest.iter().all(|&b| b == 0) {
            break None;
        }
        if rest.len() < RECORD_HEADER_LEN {
            break Some((pos, "torn record header".to_string()));
        }
        let mut r = ByteReader::new(rest);
        let len = r.u32().unwrap_or(0) as usize;
        let crc = r.u32().unwrap_or(0);
        let lsn = r.u64().unwrap_or(0);
        let kind = r.u8().unwrap_or(0);
        if len > MAX_PAYLOAD {
            break Some((pos, format!("record length {len} out of range")));
        }
        if rest.len() < RECORD_HEADER_LEN + len {
            break Some((pos, "torn record".to_string()));
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&rest[..4]);
        h.update(&rest[8..RECORD_HEADER_LEN + len]);
        if h.finalize() != crc {
            break Some((pos, "record checksum mismatch".to_string()));
        }
        if lsn != expect {
            break Some((pos, format!("record LSN {lsn} where {expect} was expected")));
        }
        records.push(Record { lsn, kind, payload: rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len].to_vec() });
        expect += 1;
        pos += RECORD_HEADER_LEN + len;
    };
    SegmentScan::Records { first_lsn, prev_lsn, records, tail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let mut seg = encode_header(7, 6);
        for i in 0..5u64 {
            encode_record(7 + i, 1, format!("payload {i}").as_bytes(), &mut seg);
        }
        let SegmentScan::Records { records, tail: None, .. } = scan_segment(&seg) else { panic!() };
        assert_eq!(records.len(), 5);
        for cut in 0..seg.len() {
            match scan_segment(&seg[..cut]) {
                SegmentScan::BadHeader(_) => assert!(cut < HEADER_LEN),
                SegmentScan::Records { records: r, tail, .. } => {
                    assert_eq!(r[..], records[..r.len()]);
                    let boundary = HEADER_LEN + r.iter().map(|x| RECORD_HEADER_LEN + x.payload.len()).sum::<usize>();
                    assert_eq!(tail.is_none(), cut == boundary, "cut at {cut}");
                }
                SegmentScan::Version(_) => panic!("version from truncation"),
            }
        }
        for at in 0..seg.len() {
            let mut bad = seg.clone();
            bad[at] ^= 0x40;
            match scan_segment(&bad) {
                SegmentScan::Records { records: r, tail, .. } => {
                    assert!(tail.is_some(), "flip at {at} not detected");
                    assert_eq!(r[..], records[..r.len()]);
                }
                SegmentScan::BadHeader(_) | SegmentScan::Version(_) => assert!(at < HEADER_LEN),
            }
        }
    }
}
