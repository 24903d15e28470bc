//! Network servers. [`pg`] speaks the PostgreSQL wire protocol (the only module that depends on
//! pgwire); [`wire`] turns values into PostgreSQL's text and binary formats.

pub mod framing;
pub mod pg;
pub mod wire;
