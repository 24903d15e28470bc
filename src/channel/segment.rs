//! Channel segment files (`*.fch`), storage-format.md § "Channel segments". A segment holds
//! consecutive messages of one day in lz4-compressed blocks and is written whole, once.
//!
//! ```text
//! footer: { day: i32 | first_offset: u64 | count: u64 | min_time: i64 | max_time: i64
//!         | max_lsn: u64 | payload_bytes: u64 | n_blocks: u32 | block* }
//! block:  { offset: u64 | stored_len: u32 | raw_len: u32 | crc32: u32 | first_offset: u64
//!         | count: u32 | min_time: i64 | max_time: i64 }
//! ```

use std::path::{Path, PathBuf};

use super::Messages;
use crate::error::{Error, IoContext, Result};
use crate::util::bytes::{ByteReader, PutBytes, crc32};
use crate::util::container::{self, FormatError, corrupt};
use crate::util::mmap::Backing;

pub const MAGIC: [u8; 8] = *b"FLEETCH\0";
pub const VERSION: u32 = 1;
pub const FILE_EXT: &str = "fch";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub crc: u32,
    pub first_offset: u64,
    pub count: u32,
    pub min_time: i64,
    pub max_time: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    pub day: i32,
    pub first_offset: u64,
    pub count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub max_lsn: u64,
    pub payload_bytes: u64,
    pub blocks: Vec<BlockMeta>,
    pub file_len: u64,
}

impl SegmentMeta {
    pub fn end_offset(&self) -> u64 {
        self.first_offset + self.count
    }
}

/// Encodes `msgs` (all of day `day`) as a segment of blocks of at most `block_messages`.
pub fn encode(msgs: &Messages, day: i32, max_lsn: u64, block_messages: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(msgs.payload_bytes() / 2 + 4096);
    container::begin(&MAGIC, VERSION, &mut out);
    let mut blocks = Vec::new();
    let mut raw = Vec::new();
    let step = block_messages.max(1);
    for start in (0..msgs.len()).step_by(step) {
        let end = (start + step).min(msgs.len());
        let part = msgs.slice(start, end);
        raw.clear();
        part.encode(&mut raw);
        let offset = out.len();
        let raw_len = container::put_maybe_compressed(&raw, &mut out);
        blocks.push(BlockMeta {
            offset: offset as u64,
            stored_len: (out.len() - offset) as u32,
            raw_len,
            crc: crc32(&out[offset..]),
            first_offset: part.first_offset,
            count: part.len() as u32,
            min_time: part.received_at.iter().copied().min().unwrap_or(0),
            max_time: part.received_at.iter().copied().max().unwrap_or(0),
        });
    }
    let footer_start = out.len();
    out.put_i32(day);
    out.put_u64(msgs.first_offset);
    out.put_u64(msgs.len() as u64);
    out.put_i64(msgs.received_at.iter().copied().min().unwrap_or(0));
    out.put_i64(msgs.received_at.iter().copied().max().unwrap_or(0));
    out.put_u64(max_lsn);
    out.put_u64(msgs.payload_bytes() as u64);
    out.put_u32(blocks.len() as u32);
    for b in &blocks {
        out.put_u64(b.offset);
        out.put_u32(b.stored_len);
        out.put_u32(b.raw_len);
        out.put_u32(b.crc);
        out.put_u64(b.first_offset);
        out.put_u32(b.count);
        out.put_i64(b.min_time);
        out.put_i64(b.max_time);
    }
    container::finish(&MAGIC, footer_start, &mut out);
    out
}

impl SegmentMeta {
    /// Validates the framing and footer of a segment's bytes.
    pub fn parse(buf: &[u8]) -> Result<SegmentMeta, FormatError> {
        let (footer, data_end, _) = container::open(buf, &MAGIC, VERSION..=VERSION)?;
        let e = || corrupt("segment footer");
        let mut r = ByteReader::new(footer);
        let day = r.i32().ok_or_else(e)?;
        let first_offset = r.u64().ok_or_else(e)?;
        let count = r.u64().ok_or_else(e)?;
        let min_time = r.i64().ok_or_else(e)?;
        let max_time = r.i64().ok_or_else(e)?;
        let max_lsn = r.u64().ok_or_else(e)?;
        let payload_bytes = r.u64().ok_or_else(e)?;
        let n = r.u32().ok_or_else(e)? as usize;
        let mut blocks = Vec::with_capacity(n.min(1 << 16));
        let mut next = first_offset;
        for _ in 0..n {
            let b = BlockMeta {
                offset: r.u64().ok_or_else(e)?,
                stored_len: r.u32().ok_or_else(e)?,
                raw_len: r.u32().ok_or_else(e)?,
                crc: r.u32().ok_or_else(e)?,
                first_offset: r.u64().ok_or_else(e)?,
                count: r.u32().ok_or_else(e)?,
                min_time: r.i64().ok_or_else(e)?,
                max_time: r.i64().ok_or_else(e)?,
            };
            if b.first_offset != next
                || b.offset < container::HEADER_LEN as u64
                || b.offset.saturating_add(b.stored_len as u64) > data_end
            {
                return Err(corrupt("segment block index"));
            }
            next += b.count as u64;
            blocks.push(b);
        }
        if next != first_offset.saturating_add(count) || !r.is_empty() {
            return Err(corrupt("segment footer counts"));
        }
        Ok(SegmentMeta {
            day,
            first_offset,
            count,
            min_time,
            max_time,
            max_lsn,
            payload_bytes,
            blocks,
            file_len: buf.len() as u64,
        })
    }
}

/// An open, sealed segment.
pub struct ChSegment {
    pub path: PathBuf,
    data: Backing,
    pub meta: SegmentMeta,
}

impl std::fmt::Debug for ChSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChSegment({}, offsets {}..{})", self.path.display(), self.meta.first_offset, self.meta.end_offset())
    }
}

fn format_err(path: &Path, e: FormatError) -> Error {
    match e {
        FormatError::Corrupt(what) => Error::corrupt(path, what),
        FormatError::Version(found) => {
            Error::UnsupportedVersion { path: path.to_path_buf(), kind: "channel segment", found, supported: VERSION }
        }
    }
}

impl ChSegment {
    pub fn open(path: &Path) -> Result<ChSegment> {
        let data = Backing::map(path).at(path)?;
        let meta = SegmentMeta::parse(data.bytes()).map_err(|e| format_err(path, e))?;
        Ok(ChSegment { path: path.to_path_buf(), data, meta })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<ChSegment> {
        let path = PathBuf::from("<memory>");
        let meta = SegmentMeta::parse(&bytes).map_err(|e| format_err(&path, e))?;
        Ok(ChSegment { path, data: Backing::Owned(bytes), meta })
    }

    pub fn block(&self, i: usize) -> Result<Messages> {
        let b = self.meta.blocks.get(i).ok_or_else(|| Error::corrupt(&self.path, "block index"))?;
        let stored = container::block(self.data.bytes(), b.offset, b.stored_len, b.crc, &|| "segment block".into())
            .map_err(|e| format_err(&self.path, e))?;
        let raw = container::decompress(stored, b.raw_len).map_err(|e| format_err(&self.path, e))?;
        let m = Messages::decode(&mut ByteReader::new(&raw))
            .ok_or_else(|| Error::corrupt(&self.path, format!("segment block {i} contents")))?;
        if m.first_offset != b.first_offset || m.len() != b.count as usize {
            return Err(Error::corrupt(&self.path, format!("segment block {i} does not match the index")));
        }
        Ok(m)
    }

    /// Messages with offsets in `from..to`, and received in `t_from..t_to` if given (blocks
    /// outside the time range are skipped without decoding).
    pub fn read(&self, from: u64, to: u64, time: Option<(i64, i64)>, out: &mut Messages) -> Result<()> {
        for (i, b) in self.meta.blocks.iter().enumerate() {
            let b_end = b.first_offset + b.count as u64;
            if b_end <= from || b.first_offset >= to {
                continue;
            }
            if let Some((t0, t1)) = time
                && (b.max_time < t0 || b.min_time >= t1)
            {
                continue;
            }
            let m = self.block(i)?;
            let s = from.saturating_sub(b.first_offset) as usize;
            let e = ((to.min(b_end)) - b.first_offset) as usize;
            for j in s..e {
                if time.is_none_or(|(t0, t1)| m.received_at[j] >= t0 && m.received_at[j] < t1) {
                    if out.is_empty() {
                        out.first_offset = m.first_offset + j as u64;
                    }
                    out.extend_range(&m, j, j + 1);
                }
            }
        }
        // A segment is read once by each pipeline, as it is sealed, and by the odd query:
        // its pages need not stay in the server's RSS.
        self.data.release_pages();
        Ok(())
    }

    /// Reads every block: a full integrity check.
    pub fn verify(&self) -> Result<()> {
        (0..self.meta.blocks.len()).try_for_each(|i| self.block(i).map(|_| ()))
    }
}
