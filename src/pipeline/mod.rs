//! Pipelines: AWS IoT Analytics pipeline activities between a channel and a datastore.
//!
//! `CREATE PIPELINE p FROM CHANNEL c <activities> INTO DATASTORE d [WITH (timestamp = 'attr',
//! timestamp_format = '…')]`. A pipeline reads its channel in offset order from where it was
//! created, decodes each message's JSON once into a column batch (one column per attribute,
//! nested objects flattened to dotted names), runs the activities over the batch as the query
//! engine's expressions, and appends the rows to the datastore together with the channel
//! position they reach, in one WAL record. After a crash the pipeline resumes from the
//! position stored with the rows, so every message's output is stored exactly once.
//!
//! Definitions are kept in the data directory's `pipelines` file (storage-format.md
//! § "Pipelines"), rewritten whole and atomically on each change.

pub mod aws;
pub mod decode;
mod def;
mod errors;
pub mod exec;
pub(crate) mod grammar;
pub(crate) mod lambda;
pub mod plans;
pub(crate) mod reprocess;
pub(crate) mod runner;
pub mod state;

pub use crate::datastore::{LINEAGE_OFFSET, LINEAGE_PIPELINE, is_lineage};
pub use def::*;
pub use runner::Pipelines;
