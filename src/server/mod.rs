//! Network servers. [`pg`] speaks the PostgreSQL wire protocol (the only module that depends on
//! pgwire, with [`prepared`], the extended protocol's statements parsed once and [`framing`]);
//! [`wire`] turns values and errors into what the protocol carries (text and binary formats);
//! [`rows`] holds a result's rows as they are sent and a COPY's data not loaded yet.

pub mod framing;
pub mod pg;
pub(crate) mod prepared;
pub(crate) mod rows;
pub(crate) mod wire;
