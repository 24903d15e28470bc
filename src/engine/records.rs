//! WAL record kinds and payloads (storage-format.md § "WAL record payloads").
//!
//! ```text
//! kind 1, channel append:   { channel: str16 | messages }
//! kind 2, datastore append: { datastore: str16 | has_source: u8 | (source: str16 | offset: u64)? | batch }
//! kind 3, table write:      { table: str16 | mode: u8 (1 append, 2 replace) | batch }
//! kind 4, table alter:      { table: str16 | schema_len: u32 | schema: options encoding | batch }
//! ```

use crate::batch::Batch;
use crate::channel::Messages;
use crate::table::{TableSchema, TableWrite};
use crate::util::bytes::{ByteReader, PutBytes};

pub const CHANNEL_APPEND: u8 = 1;
pub const DATASTORE_APPEND: u8 = 2;
pub const TABLE_WRITE: u8 = 3;
pub const TABLE_ALTER: u8 = 4;

#[derive(Debug, PartialEq)]
pub enum Payload {
    ChannelAppend { channel: String, messages: Messages },
    DatastoreAppend { datastore: String, source: Option<(String, u64)>, batch: Batch },
    TableWrite { table: String, mode: TableWrite, batch: Batch },
    TableAlter { table: String, schema: TableSchema, batch: Batch },
}

pub fn encode_table_alter(table: &str, schema: &TableSchema, b: &Batch) -> Vec<u8> {
    let s = crate::objects::encode(&schema.to_options(0));
    let mut out = Vec::with_capacity(b.num_rows() * b.columns.len() * 9 + s.len() + 64);
    out.put_str16(table);
    out.put_bytes32(&s);
    b.encode(&mut out);
    out
}

pub fn encode_table_write(table: &str, mode: TableWrite, b: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.num_rows() * b.columns.len() * 9 + 64);
    out.put_str16(table);
    out.put_u8(mode as u8);
    b.encode(&mut out);
    out
}

pub fn encode_channel_append(channel: &str, m: &Messages) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.payload_bytes() + m.len() * 32 + 64);
    out.put_str16(channel);
    m.encode(&mut out);
    out
}

pub fn encode_datastore_append(datastore: &str, source: Option<&(String, u64)>, b: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.num_rows() * b.columns.len() * 9 + 64);
    out.put_str16(datastore);
    match source {
        Some((s, o)) => {
            out.put_u8(1);
            out.put_str16(s);
            out.put_u64(*o);
        }
        None => out.put_u8(0),
    }
    b.encode(&mut out);
    out
}

/// Decodes a record payload; `None` for an unknown kind or malformed bytes.
pub fn decode(kind: u8, payload: &[u8]) -> Option<Payload> {
    let mut r = ByteReader::new(payload);
    let p = match kind {
        CHANNEL_APPEND => {
            let channel = r.str16()?.to_string();
            Payload::ChannelAppend { channel, messages: Messages::decode(&mut r)? }
        }
        DATASTORE_APPEND => {
            let datastore = r.str16()?.to_string();
            let source = match r.u8()? {
                0 => None,
                1 => Some((r.str16()?.to_string(), r.u64()?)),
                _ => return None,
            };
            Payload::DatastoreAppend { datastore, source, batch: Batch::decode(&mut r)? }
        }
        TABLE_WRITE => {
            let table = r.str16()?.to_string();
            let mode = TableWrite::from_u8(r.u8()?)?;
            Payload::TableWrite { table, mode, batch: Batch::decode(&mut r)? }
        }
        TABLE_ALTER => {
            let table = r.str16()?.to_string();
            let o = crate::objects::decode(r.bytes32()?, std::path::Path::new("WAL record")).ok()?;
            if o.kind != crate::objects::KIND_TABLE {
                return None;
            }
            Payload::TableAlter { table, schema: TableSchema::from_options(&o), batch: Batch::decode(&mut r)? }
        }
        _ => return None,
    };
    r.is_empty().then_some(p)
}
