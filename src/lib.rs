//! fleetdb: a self-hosted time-series database for device fleets.
//!
//! The modules follow the data's path: [`wal`] makes writes durable, [`channel`] archives raw
//! messages, [`datastore`] stores processed rows in columnar files, and [`engine`] ties them
//! together with crash recovery. [`batch`] is the columnar unit everything speaks, [`sim`]
//! generates a realistic factory fleet, and [`inspect`] dumps and verifies data files.
//! The library never prints; the `fleetdb` binary does.

#![deny(unsafe_code)]

pub mod batch;
pub mod channel;
pub mod dataset;
pub mod datastore;
pub mod engine;
pub mod error;
pub mod ingest;
pub mod inspect;
pub mod pipeline;
pub mod server;
pub mod sim;
pub mod sql;
pub mod table;
pub mod util;
pub mod wal;

pub use error::{Error, Result};
