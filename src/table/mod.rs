//! Reference tables: small, mutable, keyed tables such as `machines`, used for lookups and
//! enrichment. [`Table`] keeps the current rows as one column batch in memory; every change is
//! a WAL record (append rows, or replace the whole content), and a checkpoint writes the content
//! as a snapshot file in the datastore file format.

mod store;

pub use store::{Table, TableSchema, TableWrite, append_key_bytes, store_key_bytes};
