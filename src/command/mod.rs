//! The statement layer: fleetdb's statement grammar ([`parse`]) and the per-connection
//! [`session::Session`] that runs statements over every object kind (DDL, SHOW, COPY,
//! INSERT/UPDATE/DELETE, pipelines, datasets, queries through the query engine).

pub mod parse;
pub(crate) mod services;
pub mod session;

pub use services::Services;
pub use session::Session;
