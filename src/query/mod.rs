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

pub(crate) mod agg;
pub(crate) mod bind;
pub(crate) mod catalog;
pub(crate) mod copy;
pub mod error;
pub(crate) mod exec;
pub(crate) mod expr;
pub(crate) mod func;
pub(crate) mod grammar;
pub(crate) mod guard;
pub(crate) mod parse;
pub(crate) mod plan;
pub(crate) mod regex;
pub mod scalar;
pub mod settings;
pub mod types;
pub(crate) mod window;
