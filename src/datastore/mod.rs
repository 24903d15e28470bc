//! Datastores: processed rows in immutable, sorted, columnar, day-partitioned files plus an
//! in-memory memtable. [`Datastore`] is the handle; [`Snapshot`] is a consistent read view;
//! [`file`] is the on-disk format, [`codec`] the value encodings, [`reader::DsFile`] an open file.

pub mod codec;
pub mod file;
pub(crate) mod reader;
mod schema;
mod sort;
mod store;

pub use reader::DsFile;
pub use schema::{LINEAGE_OFFSET, LINEAGE_PIPELINE, conform_column, is_lineage, reconcile};
pub use store::{Datastore, DatastoreOptions, MAX_COLUMNS, Snapshot};
