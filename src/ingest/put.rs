//! [`Ingest::put`]: the checks every incoming message goes through, the channel append of the good ones and the rejected-messages log of the others.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::metrics::Metrics;
use super::routes::Route;
use crate::channel::Messages;
use crate::engine::Engine;
use crate::error::{Error, Object, Result};
use crate::util::time::now_micros;

/// The system datastore that `fleetdb.rejected_messages` reads.
pub const REJECTED: &str = "__rejected_messages";
/// Days refused messages are kept.
pub const REJECTED_RETENTION_DAYS: u32 = 30;
/// Columns of `fleetdb.rejected_messages` after `time`.
pub(super) const REJECTED_COLUMNS: [&str; 5] = ["source", "channel", "message_id", "reason", "raw"];
/// Bytes of a refused message kept for inspection.
pub const REJECTED_RAW_BYTES: usize = 1024;

/// Where messages come from (a label in `rejected_messages` and the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `POST /messages/batch` (AWS BatchPutMessage).
    Batch,
    /// `POST /channels/{name}/messages`.
    Ndjson,
    Mqtt,
    /// `COPY channel FROM STDIN` or `INSERT INTO channel`.
    Sql,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Batch => "http_batch",
            Source::Ndjson => "http_ndjson",
            Source::Mqtt => "mqtt",
            Source::Sql => "sql",
        }
    }
}

/// Limits on what one call may carry (AWS's BatchPutMessage limits by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Messages in one BatchPutMessage request.
    pub batch_messages: usize,
    /// Bytes of one message's payload.
    pub message_bytes: usize,
    /// Bytes of HTTP request bodies held in memory at once, over all requests, taken as the
    /// bytes arrive (not as declared). A batch that does not fit is answered 503; an NDJSON
    /// stream waits for room.
    pub inflight_bytes: usize,
    /// HTTP connections at once; one more is answered 503 and closed.
    pub http_connections: usize,
    /// A request's headers must arrive within this (slow or idle clients are closed).
    pub http_header_timeout: std::time::Duration,
    /// A batch body must arrive within this; an NDJSON body must bring at least
    /// [`NDJSON_MIN_BYTES_PER_WINDOW`] in each such window.
    pub http_body_timeout: std::time::Duration,
}

/// What an NDJSON stream must send in each `http_body_timeout` window: slower is a slowloris.
pub const NDJSON_MIN_BYTES_PER_WINDOW: usize = 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch_messages: 100,
            message_bytes: 128 * 1024,
            inflight_bytes: 256 << 20,
            http_connections: 1024,
            http_header_timeout: std::time::Duration::from_secs(10),
            http_body_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// One message as received.
#[derive(Clone, Debug)]
pub struct Incoming<'a> {
    pub id: Cow<'a, str>,
    pub topic: Cow<'a, str>,
    pub payload: Cow<'a, [u8]>,
}

/// Why a message was refused: an AWS error code and a sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The message's position in the call.
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

/// The outcome of [`Ingest::put`].
#[derive(Debug, Default)]
pub struct PutResult {
    pub accepted: usize,
    /// Offset of the first accepted message in the channel.
    pub first_offset: u64,
    pub refused: Vec<Refusal>,
}

pub struct Ingest {
    engine: Arc<Engine>,
    pub limits: Limits,
    pub metrics: Metrics,
    routes: RwLock<Vec<Route>>,
    /// Bumped on every route change, so the MQTT client re-subscribes.
    routes_changed: tokio::sync::watch::Sender<u64>,
}

impl Ingest {
    pub fn new(engine: Arc<Engine>, limits: Limits) -> Result<Ingest> {
        engine.system_log(REJECTED, REJECTED_RETENTION_DAYS, &REJECTED_COLUMNS)?;
        let routes = RwLock::new(super::routes::load(engine.data_dir())?);
        let (routes_changed, _) = tokio::sync::watch::channel(0);
        Ok(Ingest { engine, limits, metrics: Metrics::default(), routes, routes_changed })
    }

    pub fn routes(&self) -> Vec<Route> {
        crate::util::sync::read(&self.routes).clone()
    }

    /// A receiver that sees every route change.
    pub fn watch_routes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.routes_changed.subscribe()
    }

    /// Adds a route (persisted). Errors: a route of that name exists (`AlreadyExists`), the
    /// channel does not (`NotFound`), or the filter or options are invalid.
    pub fn create_route(&self, route: Route) -> Result<()> {
        crate::engine::validate_name(&route.name)?;
        super::routes::validate_filter(&route.filter)?;
        if route.qos > 1 {
            return Err(Error::Invalid("qos must be 0 or 1".into()));
        }
        if let Some(g) = &route.shared_group
            && (g.is_empty() || g.contains(['/', '+', '#']))
        {
            return Err(Error::Invalid(format!("invalid shared_group \"{g}\": no '/', '+' or '#'")));
        }
        self.engine.channel(&route.channel)?;
        let mut all = crate::util::sync::write(&self.routes);
        if all.iter().any(|r| r.name == route.name) {
            return Err(Error::already_exists(Object::Route, &route.name));
        }
        let mut next = all.clone();
        next.push(route);
        super::routes::save(self.engine.data_dir(), &next)?;
        *all = next;
        self.routes_changed.send_modify(|v| *v += 1);
        Ok(())
    }

    pub fn drop_route(&self, name: &str) -> Result<()> {
        let mut all = crate::util::sync::write(&self.routes);
        let next: Vec<Route> = all.iter().filter(|r| r.name != name).cloned().collect();
        if next.len() == all.len() {
            return Err(Error::not_found(Object::Route, name));
        }
        super::routes::save(self.engine.data_dir(), &next)?;
        *all = next;
        self.routes_changed.send_modify(|v| *v += 1);
        Ok(())
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Checks `msgs` and appends the good ones to `channel`; returns once they are durable.
    /// Refused messages are recorded in `rejected_messages`. An unknown channel refuses every
    /// message and is the error [`Error::NotFound`].
    pub fn put(&self, source: Source, channel: &str, msgs: &[Incoming<'_>]) -> Result<PutResult> {
        let started = Instant::now();
        if self.engine.channel(channel).is_err() {
            let refused: Vec<Refusal> = (0..msgs.len())
                .map(|index| Refusal {
                    index,
                    code: "ResourceNotFoundException",
                    message: format!("channel {channel} does not exist"),
                })
                .collect();
            self.reject(source, channel, msgs, &refused)?;
            return Err(Error::not_found(Object::Channel, channel));
        }
        let now = now_micros();
        let mut batch = Messages::default();
        let mut positions = Vec::with_capacity(msgs.len());
        let mut refused = Vec::new();
        for (index, m) in msgs.iter().enumerate() {
            match super::check::message(m, self.limits.message_bytes) {
                Ok(()) => {
                    batch.push(now, &m.id, &m.topic, &m.payload);
                    positions.push(index);
                }
                Err(e) => refused.push(Refusal { index, code: e.aws_code(), message: e.to_string() }),
            }
        }
        let bytes = batch.payload_bytes();
        let receipt = self.engine.append_messages(channel, batch)?;
        for (i, reason) in receipt.rejected {
            refused.push(Refusal { index: positions[i], code: "InvalidRequestException", message: reason });
        }
        refused.sort_by_key(|r| r.index);
        self.reject(source, channel, msgs, &refused)?;
        self.metrics.record(source, channel, receipt.accepted as u64, bytes as u64, started.elapsed());
        Ok(PutResult { accepted: receipt.accepted, first_offset: receipt.first_offset, refused })
    }

    /// Records refused messages in `rejected_messages` (durably) and counts them.
    fn reject(&self, source: Source, channel: &str, msgs: &[Incoming<'_>], refused: &[Refusal]) -> Result<()> {
        if refused.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&Incoming<'_>, &str)> = refused.iter().map(|r| (&msgs[r.index], r.message.as_str())).collect();
        self.record_rejections(source, channel, &rows)
    }

    /// Records `(message, reason)` pairs refused before they reached [`Ingest::put`] (for
    /// example NDJSON lines or request bodies that could not be read).
    pub fn record_rejections(&self, source: Source, channel: &str, rows: &[(&Incoming<'_>, &str)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len();
        let column = |f: &dyn Fn(&(&Incoming<'_>, &str)) -> String| rows.iter().map(f).collect::<Vec<String>>();
        let values = vec![
            column(&|_| source.name().to_string()),
            column(&|_| channel.to_string()),
            column(&|(m, _)| m.id.to_string()),
            column(&|(_, reason)| reason.to_string()),
            column(&|(m, _)| super::check::printable(&m.payload, REJECTED_RAW_BYTES)),
        ];
        self.engine.append_log(REJECTED, &REJECTED_COLUMNS, values)?;
        // Metrics and log lines label only channels that exist: names clients make up are
        // counted together (a client cannot grow either with names of its own).
        let label = if self.engine.channel(channel).is_ok() { channel } else { super::metrics::UNKNOWN_CHANNEL };
        static REFUSED: crate::util::lograte::Summary = crate::util::lograte::Summary::new(|channel, count, last| {
            tracing::warn!(
                channel,
                count,
                "messages refused for channel {channel:?} ({count} since the last such line; the last: {last}); see fleetdb.rejected_messages"
            );
        });
        REFUSED.add(label, n as u64, rows[n - 1].1);
        self.metrics.rejected(source, label, n as u64);
        Ok(())
    }
}
