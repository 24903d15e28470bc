//! Object names and the `options` file each channel and datastore directory holds.
//!
//! ```text
//! options: { magic: "FLEETOPT" | version: u32 | kind: u8 | retention_days: u32 (0 = unlimited)
//!          | series_key: str16 | created_lsn: u64
//!          | n_columns: u16 | column* | n_key: u16 | key: [u16; n_key] | crc32: u32 }
//! column:  { name: str16 | type: u8 | type_tag: u32 | not_null: u8 | default: str16 }
//! ```
//! Version 1 columns end after `not_null` (no default); they are still read.
//! Declared columns are a table's schema (or a datastore's declared columns); `type_tag` is
//! opaque here (the SQL layer keeps the PostgreSQL type OID in it); `key` lists the primary
//! key's column positions.
//! `created_lsn` is the last LSN issued before the object was created: WAL records for this
//! name at or below it belong to an earlier object of the same name and are not replayed.
//! Written atomically when the object is created, and rewritten by ALTER … SET and RENAME.
//! A table's schema files (`<lsn>.schema`, see `table::store`) use the same encoding.

use std::path::Path;

use crate::batch::DataType;
use crate::error::{Error, IoContext, Result};
use crate::util::bytes::{ByteReader, PutBytes, crc32};
use crate::util::fsutil::write_atomic;

pub const MAGIC: [u8; 8] = *b"FLEETOPT";
pub const VERSION: u32 = 2;
pub const FILE_NAME: &str = "options";
pub const KIND_CHANNEL: u8 = 1;
pub const KIND_DATASTORE: u8 = 2;
pub const KIND_TABLE: u8 = 3;

/// A declared column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub data_type: DataType,
    /// Meaning left to the layer above (the SQL layer stores the PostgreSQL type OID).
    pub type_tag: u32,
    pub not_null: bool,
    /// The SQL text of the column's DEFAULT expression (tables only).
    pub default: Option<String>,
}

/// Checks the name of any object (channel, datastore, table, pipeline, dataset, route) against
/// the AWS IoT Analytics rule: `[A-Za-z0-9_]{1,128}`, not starting with `__` (reserved for
/// system objects). So no name holds `/`, `..`, NUL or a control character, and an object's
/// files stay inside the data directory.
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

/// Whether `name` names a user object or a system object (`__` and a valid name, created by
/// fleetdb itself, e.g. `__rejected_messages`).
pub fn is_object_name(name: &str) -> bool {
    validate_name(name).is_ok() || name.strip_prefix("__").is_some_and(|rest| validate_name(rest).is_ok())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectOptions {
    pub kind: u8,
    pub retention_days: Option<u32>,
    pub series_key: Option<String>,
    pub created_lsn: u64,
    pub columns: Vec<ColumnSpec>,
    pub primary_key: Vec<u16>,
}

impl ObjectOptions {
    pub fn new(kind: u8) -> Self {
        ObjectOptions {
            kind,
            retention_days: None,
            series_key: None,
            created_lsn: 0,
            columns: Vec::new(),
            primary_key: Vec::new(),
        }
    }
}

/// Writes `dir/options` atomically.
pub fn write(dir: &Path, o: &ObjectOptions) -> Result<()> {
    write_file(&dir.join(FILE_NAME), o)
}

/// Writes an options-encoded file at `path` atomically.
pub fn write_file(path: &Path, o: &ObjectOptions) -> Result<()> {
    write_atomic(path, &encode(o)).at(path)
}

/// The options encoding of `o` (also carried by WAL records that change a table's schema).
pub fn encode(o: &ObjectOptions) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&MAGIC);
    b.put_u32(VERSION);
    b.put_u8(o.kind);
    b.put_u32(o.retention_days.unwrap_or(0));
    b.put_str16(o.series_key.as_deref().unwrap_or(""));
    b.put_u64(o.created_lsn);
    b.put_u16(o.columns.len() as u16);
    for c in &o.columns {
        b.put_str16(&c.name);
        b.put_u8(c.data_type as u8);
        b.put_u32(c.type_tag);
        b.put_u8(c.not_null as u8);
        b.put_str16(c.default.as_deref().unwrap_or(""));
    }
    b.put_u16(o.primary_key.len() as u16);
    for k in &o.primary_key {
        b.put_u16(*k);
    }
    let crc = crc32(&b);
    b.put_u32(crc);
    b
}

/// Reads `dir/options`.
pub fn read(dir: &Path) -> Result<ObjectOptions> {
    read_file(&dir.join(FILE_NAME))
}

/// Reads an options-encoded file.
pub fn read_file(path: &Path) -> Result<ObjectOptions> {
    decode(&std::fs::read(path).at(path)?, path)
}

/// Decodes the options encoding; `path` names the source in errors.
pub fn decode(b: &[u8], path: &Path) -> Result<ObjectOptions> {
    let path = path.to_path_buf();
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
    if version != 1 && version != VERSION {
        return Err(Error::UnsupportedVersion { path, kind: "options file", found: version, supported: VERSION });
    }
    let kind = r.u8().ok_or_else(bad)?;
    let retention = r.u32().ok_or_else(bad)?;
    let key = r.str16().ok_or_else(bad)?;
    let created_lsn = r.u64().ok_or_else(bad)?;
    let n = r.u16().ok_or_else(bad)? as usize;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        columns.push(ColumnSpec {
            name: r.str16().ok_or_else(bad)?.to_string(),
            data_type: DataType::from_u8(r.u8().ok_or_else(bad)?).ok_or_else(bad)?,
            type_tag: r.u32().ok_or_else(bad)?,
            not_null: r.u8().ok_or_else(bad)? != 0,
            default: if version >= 2 {
                Some(r.str16().ok_or_else(bad)?.to_string()).filter(|d| !d.is_empty())
            } else {
                None
            },
        });
    }
    let n = r.u16().ok_or_else(bad)? as usize;
    let mut primary_key = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.u16().ok_or_else(bad)?;
        if k as usize >= columns.len() {
            return Err(bad());
        }
        primary_key.push(k);
    }
    if !r.is_empty() {
        return Err(bad());
    }
    Ok(ObjectOptions {
        columns,
        primary_key,
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
    fn options_round_trip_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let col = |name: &str, default: Option<&str>| ColumnSpec {
            name: name.into(),
            data_type: DataType::Int64,
            type_tag: 23,
            not_null: default.is_some(),
            default: default.map(str::to_string),
        };
        let o = ObjectOptions {
            columns: vec![col("a", None), col("b", Some("42")), col("c", Some("'x'"))],
            primary_key: vec![0],
            created_lsn: 7,
            ..ObjectOptions::new(KIND_TABLE)
        };
        write(dir.path(), &o).unwrap();
        assert_eq!(read(dir.path()).unwrap(), o);
        // A flipped byte is refused.
        let path = dir.path().join(FILE_NAME);
        let mut b = std::fs::read(&path).unwrap();
        b[20] ^= 1;
        std::fs::write(&path, b).unwrap();
        assert!(read(dir.path()).is_err());
    }

    #[test]
    fn names_follow_the_aws_rule() {
        assert!(validate_name("factory_sensor_channel").is_ok());
        assert!(validate_name(&"a".repeat(128)).is_ok());
        for bad in ["", "__sys", "has-dash", "spa ce", "é", &"a".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
