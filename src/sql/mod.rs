//! SQL: statement parsing ([`parse`]), binding and planning ([`plan`]), vectorized execution
//! ([`exec`], [`expr`], [`func`], [`agg`]), PostgreSQL types and text formats ([`types`]),
//! values ([`scalar`]), errors with SQLSTATE and position ([`error`]), and the per-connection
//! [`session::Session`] that runs statements.

pub mod agg;
pub mod catalog;
pub mod copy;
pub mod error;
pub mod exec;
pub mod expr;
pub mod func;
pub mod guard;
pub mod parse;
pub mod plan;
pub mod regex;
pub mod scalar;
pub mod session;
pub mod types;
pub mod window;
