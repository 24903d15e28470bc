//! The storage engine: one WAL shared by every channel and datastore of a data directory,
//! crash recovery, checkpoints and background maintenance. [`Engine`] is the handle the
//! server (and the stress tool) use; [`records`] is the WAL record grammar; [`objects`] the
//! per-object options files.

mod core;
pub mod objects;
pub mod records;

pub use core::{AppendReceipt, Engine, EngineConfig, MaintenanceReport};
pub use objects::{ColumnSpec, validate_name};
