//! The query engine: query and expression parsing ([`parse`], and [`grammar`] for the token
//! helpers every statement grammar shares), binding and planning ([`plan`]), vectorized
//! execution ([`exec`], [`expr`], [`func`], [`agg`], [`window`], [`regex`]), the running
//! query's limits ([`guard`]), PostgreSQL types, values and text formats ([`types`],
//! [`scalar`], [`copy`]), `pg_catalog` and `information_schema` ([`catalog`]), and errors with
//! SQLSTATE and position ([`error`]). It knows the engine's objects but nothing of pipelines,
//! datasets, ingest, the server or the statement layer above it.

/// The SQL syntax tree (sqlparser's, PostgreSQL dialect): the one place the crate is named
/// for the layers above.
pub use sqlparser::ast;

pub mod agg;
pub mod bind;
pub mod catalog;
pub mod copy;
pub mod error;
pub mod exec;
pub mod expr;
pub mod func;
pub mod grammar;
pub mod guard;
pub mod parse;
pub mod plan;
pub mod regex;
pub mod scalar;
pub mod settings;
pub mod types;
pub mod window;
