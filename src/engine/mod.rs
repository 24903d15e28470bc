//! The storage engine: one WAL shared by every channel and datastore of a data directory,
//! crash recovery, checkpoints and background maintenance. [`Engine`] is the handle the
//! server (and the stress tool) use; [`records`] is the WAL record grammar (each object's options
//! file is [`crate::objects`]).

mod core;
pub mod records;

pub use crate::objects::{ColumnSpec, validate_name};
pub use core::{AppendReceipt, Engine, EngineConfig, MaintenanceReport};
