//! SQL: statement parsing ([`parse`]), PostgreSQL types and their text formats ([`types`]),
//! values ([`scalar`]) and client errors with SQLSTATE and position ([`error`]).

pub mod error;
pub mod parse;
pub mod scalar;
pub mod types;
