//! Ingestion: what devices send (the AWS BatchPutMessage call, NDJSON over HTTP, MQTT, COPY and
//! INSERT over SQL) becomes channel messages here, and only here.
//!
//! [`Ingest::put`] checks every message (size, JSON, attribute names), appends the good ones to
//! the channel (returning once they are durable) and records each refused one, with its reason
//! and the start of its bytes, in the system datastore behind `fleetdb.rejected_messages`.
//! Nothing is dropped without a trace: AWS IoT Analytics discarded invalid JSON silently.
//!
//! - [`http`]: the HTTP API (BatchPutMessage, NDJSON, health, metrics).
//! - [`mqtt`]: the MQTT client that subscribes for the [`routes`] and acknowledges each
//!   message once it is durable.
//! - [`metrics`]: counters and the latency histogram behind `GET /metrics`.
//! - [`check`]: the message rules (AWS attribute names, base64).

pub mod broker;
pub mod check;
pub mod http;
pub(crate) mod metrics;
pub mod mqtt;
mod put;
pub(crate) mod requests;
pub(crate) mod routes;

pub use metrics::Metrics;
pub use put::*;
pub use routes::Route;
