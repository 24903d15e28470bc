//! The write-ahead log. Every write is appended here first and acknowledged only once its
//! record is durable; channels and datastores are rebuilt from it after a crash.
//!
//! [`Wal`] is the writer (group commit: many writers, one fsync); [`Wal::open`] replays the
//! existing segments, cutting off a torn tail. [`format`] is the byte layout shared with the
//! inspector and the fuzz target.

pub mod format;
mod writer;

pub use format::{Record, SegmentScan, scan_segment};
pub use writer::{Durability, RecoveryMode, ReplayReport, Wal, WalOptions};
