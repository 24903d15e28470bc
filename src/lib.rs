//! fleetdb: a self-hosted time-series database for device fleets.
//!
//! The modules, from the bottom layer up (the README's Architecture section has the order that
//! `tests/architecture.rs` enforces):
//! - [`error`]: the error type below the query engine, with its one mapping to SQLSTATEs, AWS
//!   error codes and HTTP statuses; [`util`]: bytes, time, files and the
//!   `FileSystem` seam, memory maps, JSON, locks, memory pools, external programs.
//! - [`batch`]: the column batches every stage speaks.
//! - [`wal`]: the write-ahead log; [`objects`]: each object's options file and the naming rule.
//! - [`datastore`]: processed rows in columnar files; [`channel`]: the raw message archive;
//!   [`table`]: reference tables.
//! - [`engine`]: the storage engine (recovery, appends, checkpoints, maintenance).
//! - [`ingest`]: what devices send, checked into channels (HTTP, MQTT, routes, metrics).
//! - [`query`]: the query engine (parse, bind, plan, execute, catalogs).
//! - [`pipeline`]: channels to datastores through activities; [`dataset`]: scheduled
//!   materialized queries and programs, and their delivery.
//! - [`command`]: the statement layer (the session that runs every statement).
//! - [`server`]: the PostgreSQL wire protocol; [`inspect`]: dumps and verifies data files;
//!   [`sim`]: the factory fleet simulator.
//!
//! The library never prints; the `fleetdb` binary does.

// The library never prints (the binary does): enforced here as well as by the architecture test.
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![warn(unreachable_pub)]

pub mod batch;
pub mod channel;
pub mod command;
pub mod dataset;
pub mod datastore;
pub mod engine;
pub mod error;
pub mod ingest;
pub mod inspect;
pub mod objects;
pub mod pipeline;
pub mod query;
pub mod server;
pub mod sim;
pub mod table;
pub mod util;
pub mod wal;

pub use error::{Error, Result};
