//! The framing shared by channel segments and datastore files:
//!
//! ```text
//! { magic: [u8; 8] | version: u32 | flags: u32 | data … | footer | footer_len: u32 | footer_crc: u32 | magic: [u8; 8] }
//! ```
//! The magic at both ends tells a truncated file from a whole one; the footer (the file's index)
//! carries its own CRC; blocks in `data` carry theirs in the footer.

use super::bytes::{PutBytes, crc32, u32_at};

pub(crate) const HEADER_LEN: usize = 8 + 4 + 4;
pub(crate) const TRAILER_LEN: usize = 4 + 4 + 8;
const VERSION_OFFSET: usize = 8;

/// Why a file's bytes are unusable. The caller adds the path.
#[derive(Debug, PartialEq, Eq)]
pub enum FormatError {
    Corrupt(String),
    Version(u32),
}

pub(crate) fn corrupt(what: &str) -> FormatError {
    FormatError::Corrupt(what.to_string())
}

pub(crate) fn begin(magic: &[u8; 8], version: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(magic);
    out.put_u32(version);
    out.put_u32(0);
}

/// Ends the file: everything from `footer_start` on is the footer.
pub(crate) fn finish(magic: &[u8; 8], footer_start: usize, out: &mut Vec<u8>) {
    let footer_len = (out.len() - footer_start) as u32;
    let crc = crc32(&out[footer_start..]);
    out.put_u32(footer_len);
    out.put_u32(crc);
    out.extend_from_slice(magic);
}

/// Checks both magics, the version and the footer CRC; returns the footer and where data ends.
pub(crate) fn open<'a>(
    buf: &'a [u8],
    magic: &[u8; 8],
    versions: std::ops::RangeInclusive<u32>,
) -> Result<(&'a [u8], u64, u32), FormatError> {
    if buf.len() < HEADER_LEN + TRAILER_LEN || buf[..8] != magic[..] {
        return Err(corrupt("header (bad magic or file too short)"));
    }
    let found = u32_at(buf, VERSION_OFFSET).ok_or_else(|| corrupt("header"))?;
    if !versions.contains(&found) {
        return Err(FormatError::Version(found));
    }
    if u32_at(buf, VERSION_OFFSET + 4) != Some(0) {
        return Err(corrupt("header (reserved flags are not zero)"));
    }
    let t = buf.len() - TRAILER_LEN;
    if buf[t + 8..] != magic[..] {
        return Err(corrupt("trailer (bad magic: file truncated?)"));
    }
    let footer_len = u32_at(buf, t).ok_or_else(|| corrupt("trailer"))? as usize;
    let footer_crc = u32_at(buf, t + 4).ok_or_else(|| corrupt("trailer"))?;
    if footer_len > t - HEADER_LEN {
        return Err(corrupt("footer length"));
    }
    let footer = &buf[t - footer_len..t];
    if crc32(footer) != footer_crc {
        return Err(corrupt("footer checksum"));
    }
    Ok((footer, (t - footer_len) as u64, found))
}

/// The stored bytes of a block at `offset..offset+len`, after checking its CRC.
/// `what` names it in an error (made only then).
pub(crate) fn block<'a>(
    buf: &'a [u8],
    offset: u64,
    len: u32,
    crc: u32,
    what: &dyn Fn() -> String,
) -> Result<&'a [u8], FormatError> {
    let b = buf
        .get(offset as usize..(offset as usize).saturating_add(len as usize))
        .ok_or_else(|| corrupt(&format!("{} range", what())))?;
    if crc32(b) != crc {
        return Err(corrupt(&format!("{} checksum", what())));
    }
    Ok(b)
}

/// lz4-compresses `raw` into `out` when that saves at least 1/8; returns the raw length to
/// record (0 = stored uncompressed).
pub(crate) fn put_maybe_compressed(raw: &[u8], out: &mut Vec<u8>) -> u32 {
    let compressed = lz4_flex::block::compress(raw);
    if compressed.len() * 8 <= raw.len() * 7 {
        out.extend_from_slice(&compressed);
        raw.len() as u32
    } else {
        out.extend_from_slice(raw);
        0
    }
}

/// [`decompress`] into `scratch` (kept by the caller from block to block, so that reading
/// many blocks allocates once): the block's raw bytes.
pub(crate) fn decompress_into<'a>(
    stored: &'a [u8],
    raw_len: u32,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], FormatError> {
    if raw_len == 0 {
        return Ok(stored);
    }
    let n = raw_len as usize;
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    let got = lz4_flex::block::decompress_into(stored, &mut scratch[..n]).map_err(|_| corrupt("lz4 block"))?;
    if got != n {
        return Err(corrupt("lz4 block"));
    }
    Ok(&scratch[..n])
}

/// Inverse of [`put_maybe_compressed`].
pub(crate) fn decompress(stored: &[u8], raw_len: u32) -> Result<std::borrow::Cow<'_, [u8]>, FormatError> {
    if raw_len == 0 {
        return Ok(std::borrow::Cow::Borrowed(stored));
    }
    lz4_flex::block::decompress(stored, raw_len as usize).map(std::borrow::Cow::Owned).map_err(|_| corrupt("lz4 block"))
}
