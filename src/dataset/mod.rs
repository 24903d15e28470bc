//! Datasets: named queries materialized as versions, on a schedule or on demand (AWS IoT
//! Analytics SQL datasets).
//!
//! `CREATE DATASET d AS <query> [WITH (schedule = 'rate(…)' | 'cron(…)', versions = N |
//! 'unlimited', retention = 'N days')]`. Each run (a schedule's firing, or REFRESH DATASET) makes
//! a version: CREATING while the query runs with `now()` at the version's schedule time, then
//! SUCCEEDED with its rows or FAILED with the reason. `SELECT * FROM d` reads the latest
//! SUCCEEDED version; `dataset_content('d', 'id' | '$LATEST' | '$LATEST_SUCCEEDED')` any.
//!
//! Storage (storage-format.md § "Datasets"): `dataset_definitions` holds the definitions (their
//! CREATE DATASET text); `datasets/<name>/versions` the versions' metadata; each version's rows
//! are a datastore-format file `datasets/<name>/<id>.fds`, written before its metadata says
//! SUCCEEDED. A version still CREATING when the server stopped is FAILED after the restart.
//!
//! Which versions are kept: the `versions` newest (default 1) and, with `retention`, those
//! younger than it; the newest version and the newest SUCCEEDED one are always kept, as in AWS.
//! `schedule.rs` parses and evaluates the schedule expressions.

pub mod aws;
mod datasets;
mod def;
pub(crate) mod deliver;
pub mod grammar;
pub mod incremental;
pub mod program;
pub mod schedule;
mod version;

pub use datasets::{Datasets, EVENTS, Status};
pub use def::{DatasetDef, Delta, Program};
pub use version::{Refresh, Version, VersionState};
