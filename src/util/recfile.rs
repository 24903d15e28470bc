//! Small files written whole: `{ magic: [u8; 8] | version: u32 | body | crc32: u32 }`, the CRC
//! over everything before it. They are replaced atomically (temporary name, fsync, rename)
//! and read back whole: a missing file is `None`, damage is a corruption error, another
//! version is refused.

use std::path::Path;

use super::bytes::{PutBytes, crc32, u32_at};
use super::fsutil::write_atomic;
use crate::error::{Error, IoContext, Result};

pub(crate) fn write(path: &Path, magic: &[u8; 8], version: u32, body: &[u8]) -> Result<()> {
    let mut b = Vec::with_capacity(body.len() + 16);
    b.extend_from_slice(magic);
    b.put_u32(version);
    b.extend_from_slice(body);
    let crc = crc32(&b);
    b.put_u32(crc);
    write_atomic(path, &b).at(path)
}

/// The body of the file at `path`, `None` if there is no file. `kind` names it in errors.
pub(crate) fn read(path: &Path, magic: &[u8; 8], version: u32, kind: &'static str) -> Result<Option<Vec<u8>>> {
    let b = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if b.len() < 16 || b[..8] != *magic {
        return Err(Error::corrupt(path, format!("{kind}: bad header")));
    }
    let Some(found) = verify(&b) else {
        return Err(Error::corrupt(path, format!("{kind}: checksum mismatch")));
    };
    if found != version {
        return Err(Error::UnsupportedVersion { path: path.to_path_buf(), kind, found, supported: version });
    }
    Ok(Some(b[12..b.len() - 4].to_vec()))
}

/// The version of a whole file in this framing whose checksum is sound, whatever its magic.
pub(crate) fn verify(b: &[u8]) -> Option<u32> {
    if b.len() < 16 {
        return None;
    }
    let (head, crc) = b.split_at(b.len() - 4);
    (u32_at(crc, 0) == Some(crc32(head))).then(|| u32_at(head, 8)).flatten()
}
