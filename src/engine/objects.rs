//! Object names and the `options` file each channel and datastore directory holds.
//!
//! ```text
//! options: { magic: "FLEETOPT" | version: u32 | kind: u8 | retention_days: u32 (0 = unlimited)
//!          | series_key: str16 | created_lsn: u64 | crc32: u32 }
//! ```
//! `created_lsn` is the last LSN issued before the object was created: WAL records for this
//! name at or below it belong to an earlier object of the same name and are not replayed.
//! ```text
//! ```
//! Written atomically when the object is created; the catalog will own richer metadata.

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::util::bytes::{ByteReader, PutBytes, crc32};
use crate::util::fsutil::write_atomic;

pub const MAGIC: [u8; 8] = *b"FLEETOPT";
pub const VERSION: u32 = 1;
pub const FILE_NAME: &str = "options";
pub const KIND_CHANNEL: u8 = 1;
pub const KIND_DATASTORE: u8 = 2;

/// Checks a channel or datastore name against the AWS IoT Analytics rule:
/// `[A-Za-z0-9_]{1,128}`, not starting with `__` (reserved for system objects).
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if name.is_empty() || name.len() > 128 || !ok_chars {
        return Err(Error::Invalid(format!("invalid name \"{name}\": use 1 to 128 letters, digits or underscores")));
    }
    if name.starts_with("__") {
        return Err(Error::Invalid(format!("invalid name \"{name}\": names starting with \"__\" are reserved")));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectOptions {
    pub kind: u8,
    pub retention_days: Option<u32>,
    pub series_key: Option<String>,
    pub created_lsn: u64,
}

pub fn write(dir: &Path, o: &ObjectOptions) -> Result<()> {
    let mut b = Vec::new();
    b.extend_from_slice(&MAGIC);
    b.put_u32(VERSION);
    b.put_u8(o.kind);
    b.put_u32(o.retention_days.unwrap_or(0));
    b.put_str16(o.series_key.as_deref().unwrap_or(""));
    b.put_u64(o.created_lsn);
    let crc = crc32(&b);
    b.put_u32(crc);
    let path = dir.join(FILE_NAME);
    write_atomic(&path, &b).at(&path)
}

pub fn read(dir: &Path) -> Result<ObjectOptions> {
    let path = dir.join(FILE_NAME);
    let b = std::fs::read(&path).at(&path)?;
    let bad = || Error::corrupt(&path, "options file");
    if b.len() < MAGIC.len() + 8 || b[..8] != MAGIC {
        return Err(bad());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32(body) != ByteReader::new(crc).u32().ok_or_else(bad)? {
        return Err(bad());
    }
    let mut r = ByteReader::new(&body[8..]);
    let version = r.u32().ok_or_else(bad)?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion { path, kind: "options file", found: version, supported: VERSION });
    }
    let kind = r.u8().ok_or_else(bad)?;
    let retention = r.u32().ok_or_else(bad)?;
    let key = r.str16().ok_or_else(bad)?;
    let created_lsn = r.u64().ok_or_else(bad)?;
    Ok(ObjectOptions {
        created_lsn,
        kind,
        retention_days: (retention > 0).then_some(retention),
        series_key: (!key.is_empty()).then(|| key.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_aws_rule() {
        assert!(validate_name("factory_sensor_channel").is_ok());
        assert!(validate_name(&"a".repeat(128)).is_ok());
        for bad in ["", "__sys", "has-dash", "spa ce", "é", &"a".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
