//! Network servers. [`pg`] speaks the PostgreSQL wire protocol (the only module that depends on
//! pgwire, with [`prepared`], the extended protocol's statements parsed once and [`framing`]);
//! [`wire`] turns values and errors into what the protocol carries (text and binary formats).

pub mod framing;
pub mod pg;
pub(crate) mod prepared;
pub(crate) mod wire;
