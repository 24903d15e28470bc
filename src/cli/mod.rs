//! The `fleetdb` command line: argument parsing, configuration, and the subcommands that are
//! not the server itself (generator, stress writer for crash tests, storage benchmark).

pub mod args;
pub mod bench;
pub mod bench_datasets;
pub mod bench_ingest;
pub mod config;
pub mod demo;
pub mod generate;
pub mod stress;
