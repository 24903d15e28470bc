//! The HTTP API (hyper, HTTP/1.1):
//!
//! - `POST /messages/batch`: the AWS IoT Analytics BatchPutMessage call, body and answer as AWS
//!   defines them. Each payload is base64 (what AWS SDKs send) or inline JSON. Errors of the
//!   whole request answer with AWS's status, `x-amzn-ErrorType` header and `{"message": …}`;
//!   per-message errors come back in `batchPutMessageErrorEntries` while the good messages of
//!   the batch are stored. Request signatures (SigV4) are not checked: put fleetdb behind a
//!   proxy that authenticates if the network is not trusted.
//! - `POST /channels/{name}/messages`: NDJSON of any length, one message per line, streamed in
//!   chunks; answers `{"accepted": n, "rejected": m, "errors": [...]}`.
//! - `GET /health`, `GET /metrics` (Prometheus text).
//!
//! Every answer comes after the data is durable. Memory is bounded: requests in flight share a
//! byte budget; a batch that does not fit is answered 503 with `Retry-After` (the AWS
//! ServiceUnavailableException), and an NDJSON stream waits for room, which slows its sender
//! through TCP flow control.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::check::base64_decode;
use super::requests::Retry;
use super::{Incoming, Ingest, PutResult, Refusal, Source};
use crate::error::Error;
use crate::util::json::{self, Json};
use crate::util::time::now_micros;

/// NDJSON lines stored per append.
const NDJSON_CHUNK_LINES: usize = 20_000;
const NDJSON_CHUNK_BYTES: usize = 4 << 20;
/// Per-line errors listed in an NDJSON answer (all are in `rejected_messages`).
const NDJSON_ERRORS_LISTED: usize = 100;

type Reply = Response<Full<Bytes>>;

struct Server {
    ingest: Arc<Ingest>,
    budget: Semaphore,
    /// Request ids seen (`x-request-id`), for retries without duplicates.
    requests: super::requests::Requests,
}

/// The `x-request-id` of a request: `Ok(None)` without one, `Err` (an answer) if malformed.
fn request_id(req: &Request<Body>) -> Result<Option<String>, Box<Reply>> {
    match req.headers().get("x-request-id") {
        None => Ok(None),
        Some(v) => match v.to_str().ok().filter(|s| super::requests::valid_id(s)) {
            Some(s) => Ok(Some(s.to_string())),
            None => Err(Box::new(aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "x-request-id must be 1 to 128 letters, digits or ._:-",
            ))),
        },
    }
}

fn in_progress(id: &str) -> Reply {
    aws_error(
        StatusCode::CONFLICT,
        "InvalidRequestException",
        &format!("request {id} is being served; retry once it is answered"),
    )
}

impl Server {
    /// The budget's size: no one request holds more than all of it.
    fn budget_total(&self) -> usize {
        budget_size(&self.ingest.limits)
    }
}

/// Bytes of request bodies in flight (a semaphore counts permits in `u32`).
fn budget_size(limits: &super::Limits) -> usize {
    limits.inflight_bytes.min(u32::MAX as usize)
}

/// Bytes of the ingest budget one request holds; given back when dropped.
struct Held<'a> {
    budget: &'a Semaphore,
    permits: u32,
}

impl<'a> Held<'a> {
    fn new(budget: &'a Semaphore) -> Held<'a> {
        Held { budget, permits: 0 }
    }
    /// Takes `bytes` more if the budget has them now.
    fn try_take(&mut self, bytes: usize) -> bool {
        let n = bytes.min(u32::MAX as usize) as u32;
        match self.budget.try_acquire_many(n) {
            Ok(p) => {
                p.forget();
                self.permits += n;
                true
            }
            Err(_) => false,
        }
    }
    /// Takes `bytes` more, waiting for room.
    async fn take(&mut self, bytes: usize) -> bool {
        let n = bytes.min(u32::MAX as usize) as u32;
        match self.budget.acquire_many(n).await {
            Ok(p) => {
                p.forget();
                self.permits += n;
                true
            }
            Err(_) => false,
        }
    }
    fn release(&mut self) {
        self.budget.add_permits(std::mem::take(&mut self.permits) as usize);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Serves the HTTP API on `listener` until `shutdown` completes. Accept errors (such as
/// running out of file descriptors) back off and are logged; the listener never closes before
/// shutdown.
pub async fn serve(
    ingest: Arc<Ingest>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let budget = Semaphore::new(budget_size(&ingest.limits));
    let connections = Arc::new(Semaphore::new(ingest.limits.http_connections));
    let header_timeout = ingest.limits.http_header_timeout;
    let requests = super::requests::Requests::open(ingest.engine().data_dir()).map_err(std::io::Error::other)?;
    let server = Arc::new(Server { ingest, budget, requests });
    let slots = Arc::new(Slots::default());
    let mut backoff = std::time::Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let socket = match accepted {
                    Ok((socket, _)) => socket,
                    Err(e) => {
                        if backoff.is_zero() {
                            tracing::warn!("accepting an HTTP connection failed: {e}; retrying");
                        }
                        backoff = (backoff * 2).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(1));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => continue,
                            _ = &mut shutdown => return Ok(()),
                        }
                    }
                };
                if !backoff.is_zero() {
                    tracing::info!("accepting HTTP connections again");
                    backoff = std::time::Duration::ZERO;
                }
                let _ = socket.set_nodelay(true);
                let permit = match connections.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    // Full: the connection idle longest (reading a request's head, or kept
                    // alive between requests) is closed to make room, so clients that hold
                    // connections without using them cannot keep others out.
                    Err(_) if slots.evict_oldest_idle() => None,
                    Err(_) => {
                        server.ingest.metrics.throttled();
                        tokio::spawn(busy(socket));
                        continue;
                    }
                };
                let (server, connections, slots) = (server.clone(), connections.clone(), slots.clone());
                tokio::spawn(async move {
                    let permit = match permit {
                        Some(p) => p,
                        None => match tokio::time::timeout(std::time::Duration::from_secs(1), connections.acquire_owned()).await {
                            Ok(Ok(p)) => p,
                            _ => {
                                server.ingest.metrics.throttled();
                                return busy(socket).await;
                            }
                        },
                    };
                    let slot = slots.enter();
                    let in_service = slot.clone();
                    let service = service_fn(move |req| {
                        let server = server.clone();
                        let slot = in_service.clone();
                        async move {
                            // A connection chosen for closing serves no more requests.
                            let Some(_busy) = slot.begin_request() else {
                                return Ok::<_, Infallible>(aws_error(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "ServiceUnavailableException",
                                    "the server is at its connection limit; retry",
                                ));
                            };
                            Ok::<_, Infallible>(server.handle(req).await)
                        }
                    });
                    // A client that goes away mid-request is its own business.
                    let conn = http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(socket), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = slot.evicted() => {}
                    }
                    slots.leave(&slot);
                    drop(permit);
                });
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// Answers 503 to a connection there is no room for, and closes it.
async fn busy(mut socket: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nx-amzn-ErrorType: ServiceUnavailableException\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.write_all(busy)).await;
}

/// The open connections, for choosing one to close when all slots are taken.
#[derive(Default)]
struct Slots {
    open: std::sync::Mutex<Vec<Arc<Slot>>>,
}

/// One connection: idle (no request being served) since when, and whether it was chosen to
/// be closed.
struct Slot {
    /// [`IDLE`], [`SERVING`] or [`EVICTED`]; a request starts only from idle.
    state: std::sync::atomic::AtomicU8,
    idle_since: std::sync::Mutex<std::time::Instant>,
    close: tokio::sync::Notify,
}

const IDLE: u8 = 0;
const SERVING: u8 = 1;
const EVICTED: u8 = 2;

impl Slots {
    fn enter(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            state: std::sync::atomic::AtomicU8::new(IDLE),
            idle_since: std::sync::Mutex::new(std::time::Instant::now()),
            close: tokio::sync::Notify::new(),
        });
        self.open.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
        slot
    }
    fn leave(&self, slot: &Arc<Slot>) {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| !Arc::ptr_eq(s, slot));
    }
    /// Closes the connection idle longest, if one is idle; says whether one was.
    fn evict_oldest_idle(&self) -> bool {
        use std::sync::atomic::Ordering;
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut idle: Vec<&Arc<Slot>> = open.iter().filter(|s| s.state.load(Ordering::Relaxed) == IDLE).collect();
        idle.sort_by_key(|s| *s.idle_since.lock().unwrap_or_else(|e| e.into_inner()));
        for s in idle {
            // It may have started a request since it was looked at: then the next.
            if s.state.compare_exchange(IDLE, EVICTED, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                s.close.notify_one();
                return true;
            }
        }
        false
    }
}

impl Slot {
    /// Marks the connection as serving a request until the returned guard drops; `None` if
    /// it was chosen to be closed.
    fn begin_request(self: &Arc<Self>) -> Option<Serving> {
        use std::sync::atomic::Ordering;
        self.state.compare_exchange(IDLE, SERVING, Ordering::AcqRel, Ordering::Relaxed).ok()?;
        Some(Serving(self.clone()))
    }
    async fn evicted(&self) {
        self.close.notified().await
    }
}

/// A request being served on a connection; the connection is idle again when it drops.
struct Serving(Arc<Slot>);

impl Drop for Serving {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        self.0.state.store(IDLE, std::sync::atomic::Ordering::Release);
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::new();
    json::write_string(&mut out, s);
    out
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An AWS-style error: status, `x-amzn-ErrorType`, `{"message": …}`.
fn aws_error(status: StatusCode, code: &'static str, message: &str) -> Reply {
    let mut body = String::from("{\"message\":");
    json::write_string(&mut body, message);
    body.push('}');
    let mut r = reply(status, "application/json", body);
    r.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(code));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The AWS-style answer for a library error: code and status as [`Error`] maps them.
fn internal(e: &Error) -> Reply {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if e.is_disk_full() {
        // Nothing of the failed call was acknowledged; it may be sent again once there is room.
        format!("the disk is full; retry when there is room: {e}")
    } else if e.retry_later() {
        // Refused until the log is replayed, which the server does by itself (see `main.rs`).
        format!("{e}; retry shortly")
    } else {
        e.to_string()
    };
    aws_error(status, e.aws_code(), &message)
}

impl Server {
    async fn handle(self: Arc<Self>, req: Request<Body>) -> Reply {
        let path = req.uri().path().to_string();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/health") => reply(StatusCode::OK, "application/json", "{\"status\":\"ok\"}".into()),
            (&Method::GET, "/metrics") => {
                reply(StatusCode::OK, "text/plain; version=0.0.4", self.ingest.metrics.render())
            }
            (&Method::POST, "/messages/batch") => self.batch(req).await,
            (&Method::POST, p) if p.starts_with("/channels/") && p.ends_with("/messages") => {
                let channel = p["/channels/".len()..p.len() - "/messages".len()].to_string();
                self.ndjson(&channel, req).await
            }
            (_, "/health" | "/metrics" | "/messages/batch") => {
                aws_error(StatusCode::METHOD_NOT_ALLOWED, "InvalidRequestException", "method not allowed")
            }
            _ => aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &format!("no such path: {path}")),
        }
    }

    /// With a request id and an existing channel: what earlier attempts of the request stored
    /// (message ids), and the hold on the id while this attempt runs.
    #[allow(clippy::type_complexity)]
    fn begin_request(
        &self,
        rid: Option<&str>,
        channel: &str,
    ) -> Result<(super::requests::Stored, Option<super::requests::Serving<'_>>), Box<Reply>> {
        let (Some(id), Ok(ch)) = (rid, self.ingest.engine().channel(channel)) else {
            return Ok(Default::default());
        };
        match self.requests.begin(id, &ch) {
            Ok(Some((serving, stored))) => Ok((stored, Some(serving))),
            Ok(None) => Err(Box::new(in_progress(id))),
            Err(e) => Err(Box::new(internal(&e))),
        }
    }

    /// Runs [`Ingest::put`] on the blocking pool (it waits for the WAL sync).
    async fn put(&self, source: Source, channel: String, msgs: Vec<Incoming<'static>>) -> Result<PutResult, Error> {
        let ingest = self.ingest.clone();
        tokio::task::spawn_blocking(move || ingest.put(source, &channel, &msgs))
            .await
            .unwrap_or_else(|e| Err(Error::Invalid(format!("ingest task failed: {e}"))))
    }

    async fn record(
        &self,
        source: Source,
        channel: String,
        refused: Vec<(Incoming<'static>, String)>,
    ) -> Result<(), Error> {
        if refused.is_empty() {
            return Ok(());
        }
        let ingest = self.ingest.clone();
        tokio::task::spawn_blocking(move || {
            let rows: Vec<(&Incoming<'_>, &str)> = refused.iter().map(|(m, r)| (m, r.as_str())).collect();
            ingest.record_rejections(source, &channel, &rows)
        })
        .await
        .unwrap_or_else(|e| Err(Error::Invalid(format!("ingest task failed: {e}"))))
    }

    async fn batch(&self, req: Request<Body>) -> Reply {
        let limits = &self.ingest.limits;
        let rid = match request_id(&req) {
            Ok(r) => r,
            Err(answer) => return *answer,
        };
        // Base64 grows payloads by a third; allow for the JSON around them.
        let max_body = limits.batch_messages * (limits.message_bytes * 4 / 3 + 1024) + 64 * 1024;
        let declared =
            req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > max_body) {
            return aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "InvalidRequestException",
                &format!("request body over {max_body} bytes"),
            );
        }
        // The budget is taken as the bytes arrive, within the body timeout: a client that
        // declares much and sends little holds only what it sent, and not for long.
        let deadline = tokio::time::Instant::now() + self.ingest.limits.http_body_timeout;
        let mut held = Held::new(&self.budget);
        let mut body = req.into_body();
        let mut data: Vec<u8> = Vec::new();
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
                return aws_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "InvalidRequestException",
                    &format!("the request body did not arrive within {:?}", self.ingest.limits.http_body_timeout),
                );
            };
            let chunk = match frame {
                None => break,
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Some(Err(e)) => {
                    return aws_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequestException",
                        &format!("request body unreadable: {e}"),
                    );
                }
            };
            if data.len() + chunk.len() > max_body {
                return aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "InvalidRequestException",
                    &format!("request body over {max_body} bytes"),
                );
            }
            if !held.try_take(chunk.len()) {
                self.ingest.metrics.throttled();
                return aws_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    "ingest is saturated; retry shortly",
                );
            }
            data.extend_from_slice(&chunk);
        }
        let body = Bytes::from(data);
        let request = match parse_batch(&body, limits.batch_messages) {
            Ok(r) => r,
            Err(message) => return aws_error(StatusCode::BAD_REQUEST, "InvalidRequestException", &message.to_string()),
        };
        let BatchRequest { channel, messages } = request;
        // With a request id: what an earlier attempt stored is not stored again, and what this
        // one stores carries the id (see module `requests`).
        let (already, _serving) = match self.begin_request(rid.as_deref(), &channel) {
            Ok(r) => r,
            Err(answer) => return *answer,
        };
        let topic: Cow<'static, str> =
            rid.as_deref().map_or(Cow::Borrowed(""), |id| Cow::Owned(super::requests::topic(id)));
        // Messages an earlier attempt stored are skipped; one stored with another payload is
        // refused (its id was reused for different data: storing or skipping it would be wrong).
        // Then messages refused while decoding, and the rest through the channel's checks.
        let (mut good, mut early) = (Vec::new(), Vec::new());
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let retry = already.check(&m.id, m.payload.as_deref().unwrap_or(&m.raw));
            if retry == Retry::Stored {
                continue;
            }
            ids.push(m.id.to_string());
            let payload = match m.payload {
                Ok(p) if retry == Retry::Different => {
                    let why = super::requests::different_payload(rid.as_deref().unwrap_or(""), &m.id);
                    Err((p.into_owned(), why))
                }
                Ok(p) => Ok(p),
                Err(reason) => Err((m.raw, reason)),
            };
            match payload {
                Ok(payload) => good.push((ids.len() - 1, Incoming { id: m.id, topic: topic.clone(), payload })),
                Err((raw, reason)) => early.push((
                    ids.len() - 1,
                    Incoming { id: m.id, topic: Cow::Borrowed(""), payload: Cow::Owned(raw) },
                    reason,
                )),
            }
        }
        let mut errors: Vec<(usize, &'static str, String)> = Vec::new();
        if self.ingest.engine().channel(&channel).is_ok() {
            errors.extend(early.iter().map(|(i, _, r)| (*i, "InvalidRequestException", r.clone())));
            let rows = early.into_iter().map(|(_, m, r)| (m, r)).collect();
            if let Err(e) = self.record(Source::Batch, channel.clone(), rows).await {
                return internal(&e);
            }
        } else {
            // Every message of the call is recorded as refused for its unknown channel.
            good.extend(early.into_iter().map(|(i, m, _)| (i, m)));
        }
        let positions: Vec<usize> = good.iter().map(|(i, _)| *i).collect();
        let msgs: Vec<Incoming<'static>> = good.into_iter().map(|(_, m)| m).collect();
        match self.put(Source::Batch, channel, msgs).await {
            Ok(r) => errors.extend(
                r.refused.into_iter().map(|Refusal { index, code, message }| (positions[index], code, message)),
            ),
            Err(e) => return internal(&e),
        }
        errors.sort_by_key(|e| e.0);
        let mut body = String::from("{\"batchPutMessageErrorEntries\":[");
        for (k, (i, code, message)) in errors.iter().enumerate() {
            if k > 0 {
                body.push(',');
            }
            body.push_str("{\"messageId\":");
            json::write_string(&mut body, &ids[*i]);
            body.push_str(",\"errorCode\":");
            json::write_string(&mut body, code);
            body.push_str(",\"errorMessage\":");
            json::write_string(&mut body, message);
            body.push('}');
        }
        body.push_str("]}");
        reply(StatusCode::OK, "application/json", body)
    }

    async fn ndjson(&self, channel: &str, req: Request<Body>) -> Reply {
        let started = now_micros();
        let rid = match request_id(&req) {
            Ok(r) => r,
            Err(answer) => return *answer,
        };
        // With a request id, line n is message `<id>-<n>` under the id's topic, and the lines
        // an earlier attempt stored are skipped (see module `requests`).
        let (already, _serving) = match self.begin_request(rid.as_deref(), channel) {
            Ok(r) => r,
            Err(answer) => return *answer,
        };
        let prefix = rid.clone().unwrap_or_else(|| format!("{started:x}"));
        let topic: Cow<'static, str> =
            rid.as_deref().map_or(Cow::Borrowed(""), |id| Cow::Owned(super::requests::topic(id)));
        let mut skipped = 0usize;
        let mut body = req.into_body();
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk: Vec<Incoming<'static>> = Vec::new();
        let mut chunk_bytes = 0usize;
        let (mut line_no, mut accepted, mut rejected) = (0u64, 0usize, 0usize);
        let mut errors: Vec<(u64, String)> = Vec::new();
        // The line number of each message in `chunk`.
        let mut chunk_lines: Vec<u64> = Vec::new();
        let mut done = false;
        // Bytes held in the budget: what `pending` and `chunk` hold, taken as they arrive.
        let mut held = Held::new(&self.budget);
        let window = self.ingest.limits.http_body_timeout;
        let (mut window_end, mut window_bytes) = (tokio::time::Instant::now() + window, 0usize);
        while !done {
            let frame = loop {
                match tokio::time::timeout_at(window_end, body.frame()).await {
                    Ok(f) => break f,
                    Err(_) if window_bytes >= super::NDJSON_MIN_BYTES_PER_WINDOW => {
                        (window_end, window_bytes) = (tokio::time::Instant::now() + window, 0);
                    }
                    Err(_) => {
                        return aws_error(
                            StatusCode::REQUEST_TIMEOUT,
                            "InvalidRequestException",
                            &format!(
                                "the body brought {window_bytes} bytes in {window:?} (at least {} are needed); {accepted} messages were stored",
                                super::NDJSON_MIN_BYTES_PER_WINDOW
                            ),
                        );
                    }
                }
            };
            if tokio::time::Instant::now() >= window_end {
                // A window ends with this frame: it must have brought enough, this frame included.
                let this = match &frame {
                    Some(Ok(f)) => f.data_ref().map_or(0, |d| d.len()),
                    _ => 0,
                };
                if window_bytes + this < super::NDJSON_MIN_BYTES_PER_WINDOW && frame.is_some() {
                    return aws_error(
                        StatusCode::REQUEST_TIMEOUT,
                        "InvalidRequestException",
                        &format!(
                            "the body brought {} bytes in {window:?} (at least {} are needed); {accepted} messages were stored",
                            window_bytes + this,
                            super::NDJSON_MIN_BYTES_PER_WINDOW
                        ),
                    );
                }
                (window_end, window_bytes) = (tokio::time::Instant::now() + window, 0);
            }
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        // (A frame larger than a quarter of the budget is charged as a quarter,
                        // so one stream can never wait for room it holds itself.)
                        if !held.take(data.len().min(self.budget_total() / 4)).await {
                            break;
                        }
                        window_bytes += data.len();
                        pending.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return aws_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequestException",
                        &format!("reading the body: {e}"),
                    );
                }
                None => {
                    done = true;
                    if !pending.is_empty() && pending.last() != Some(&b'\n') {
                        pending.push(b'\n');
                    }
                }
            }
            // Whole lines become messages; a partial last line waits for more bytes.
            if let Some(last_nl) = pending.iter().rposition(|&b| b == b'\n') {
                let rest = pending.split_off(last_nl + 1);
                let mut refused_lines: Vec<(Incoming<'static>, String)> = Vec::new();
                for line in pending.split(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    line_no += 1;
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let id = format!("{prefix}-{line_no}");
                    match already.check(&id, line) {
                        Retry::New => {}
                        Retry::Stored => {
                            skipped += 1;
                            continue;
                        }
                        Retry::Different => {
                            // The request id was reused for other data: refuse the line.
                            let why = super::requests::different_payload(&prefix, &id);
                            rejected += 1;
                            if errors.len() < NDJSON_ERRORS_LISTED {
                                errors.push((line_no, why.clone()));
                            }
                            refused_lines.push((
                                Incoming {
                                    id: Cow::Owned(id),
                                    topic: Cow::Borrowed(""),
                                    payload: Cow::Owned(line.to_vec()),
                                },
                                why,
                            ));
                            continue;
                        }
                    }
                    chunk_lines.push(line_no);
                    chunk_bytes += line.len();
                    chunk.push(Incoming {
                        id: Cow::Owned(id),
                        topic: topic.clone(),
                        payload: Cow::Owned(line.to_vec()),
                    });
                }
                // `split` yields an empty piece after the last newline: not a line.
                line_no -= 1;
                pending = rest;
                if !refused_lines.is_empty()
                    && let Err(e) = self.record(Source::Ndjson, channel.to_string(), refused_lines).await
                {
                    return internal(&e);
                }
            }
            let chunk_full = chunk_bytes >= NDJSON_CHUNK_BYTES.min(self.budget_total() / 4);
            if chunk.len() >= NDJSON_CHUNK_LINES || chunk_full || (done && !chunk.is_empty()) {
                let msgs = std::mem::take(&mut chunk);
                let lines = std::mem::take(&mut chunk_lines);
                chunk_bytes = 0;
                match self.put(Source::Ndjson, channel.to_string(), msgs).await {
                    Ok(r) => {
                        accepted += r.accepted;
                        rejected += r.refused.len();
                        for f in r.refused {
                            if errors.len() < NDJSON_ERRORS_LISTED {
                                errors.push((lines[f.index], f.message));
                            }
                        }
                    }
                    Err(e) => {
                        // What was stored before stays stored; with a request id, sending the
                        // same call again stores just the rest.
                        let mut r = internal(&e);
                        let note = format!(
                            "{{\"message\":{},\"accepted\":{accepted},\"rejected\":{rejected},\"alreadyStored\":{skipped}}}",
                            json_string(&format!("{e}; {accepted} messages were stored before it"))
                        );
                        *r.body_mut() = Full::new(Bytes::from(note));
                        return r;
                    }
                }
                // Stored: the budget goes back, but for what is still pending.
                held.release();
                if !held.take(pending.len().min(self.budget_total() / 4)).await {
                    break;
                }
            }
            if pending.len() > self.ingest.limits.message_bytes + 1 {
                // A line longer than any message may be: refuse it without holding it all.
                line_no += 1;
                rejected += 1;
                let head = Incoming {
                    id: Cow::Owned(format!("{started:x}-{line_no}")),
                    topic: Cow::Borrowed(""),
                    payload: Cow::Owned(pending[..super::REJECTED_RAW_BYTES].to_vec()),
                };
                let why = format!("line is longer than the {}-byte message limit", self.ingest.limits.message_bytes);
                if errors.len() < NDJSON_ERRORS_LISTED {
                    errors.push((line_no, why.clone()));
                }
                if let Err(e) = self.record(Source::Ndjson, channel.to_string(), vec![(head, why)]).await {
                    return internal(&e);
                }
                // Skip to the end of that line.
                loop {
                    if let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                        pending.drain(..=nl);
                        break;
                    }
                    pending.clear();
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                pending.extend_from_slice(&data);
                            }
                        }
                        _ => {
                            done = true;
                            break;
                        }
                    }
                }
            }
        }
        let mut out = format!("{{\"accepted\":{accepted},\"rejected\":{rejected},");
        if rid.is_some() {
            out.push_str(&format!("\"alreadyStored\":{skipped},"));
        }
        out.push_str("\"errors\":[");
        for (k, (line, message)) in errors.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"line\":{line},\"error\":"));
            json::write_string(&mut out, message);
            out.push('}');
        }
        out.push_str("]}");
        reply(StatusCode::OK, "application/json", out)
    }
}

/// One entry of `messages`: its id, and its payload bytes or why they could not be read
/// (then `raw` holds the entry's source text for `rejected_messages`).
pub struct BatchMessage {
    pub id: Cow<'static, str>,
    pub payload: Result<Cow<'static, [u8]>, String>,
    pub raw: Vec<u8>,
}

/// A decoded BatchPutMessage body.
pub struct BatchRequest {
    pub channel: String,
    pub messages: Vec<BatchMessage>,
}

/// Reads a BatchPutMessage body. Errors of its shape refuse the whole request; errors of one
/// message's payload refuse that message.
pub fn parse_batch(body: &[u8], max_messages: usize) -> crate::Result<BatchRequest> {
    parse_batch_text(body, max_messages).map_err(crate::Error::Invalid)
}

/// [`parse_batch`], its error a reason as text.
fn parse_batch_text(body: &[u8], max_messages: usize) -> std::result::Result<BatchRequest, String> {
    let text = std::str::from_utf8(body).map_err(|_| "request body is not UTF-8 JSON".to_string())?;
    let doc = json::parse(text).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let Json::Object(_) = &doc.value else { return Err("request body must be a JSON object".into()) };
    let channel = match doc.get("channelName").map(|n| &n.value) {
        Some(Json::String(s)) => s.to_string(),
        _ => return Err("channelName is required and must be a string".into()),
    };
    let Some(Json::Array(items)) = doc.get("messages").map(|n| &n.value) else {
        return Err("messages is required and must be a list".into());
    };
    if items.is_empty() || items.len() > max_messages {
        return Err(format!("messages must hold 1 to {max_messages} entries; it has {}", items.len()));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let raw = item.text.as_bytes().to_vec();
        let id = match item.get("messageId").map(|n| &n.value) {
            Some(Json::String(s)) => Cow::Owned(s.to_string()),
            _ => return Err(format!("messages[{i}].messageId is required and must be a string")),
        };
        let payload = match item.get("payload") {
            None => Err("payload is required".to_string()),
            Some(p) => match &p.value {
                Json::String(s) => base64_decode(s).map(Cow::Owned).ok_or_else(|| "payload is not valid base64".into()),
                Json::Null => Err("payload is null".into()),
                _ => Ok(Cow::Owned(p.text.as_bytes().to_vec())),
            },
        };
        messages.push(BatchMessage { id, payload, raw });
    }
    Ok(BatchRequest { channel, messages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bodies_take_base64_and_inline_json() {
        let body = br#"{"channelName": "c", "messages": [
            {"messageId": "1", "payload": "eyJhIjogMX0="},
            {"messageId": "2", "payload": {"a": 2}},
            {"messageId": "3", "payload": "***"},
            {"messageId": "4"}]}"#;
        let r = parse_batch(body, 100).unwrap();
        assert_eq!(r.channel, "c");
        let p: Vec<_> = r.messages.iter().map(|m| m.payload.clone().map(|p| p.to_vec())).collect();
        assert_eq!(p[0].as_deref().unwrap(), br#"{"a": 1}"#);
        assert_eq!(p[1].as_deref().unwrap(), br#"{"a": 2}"#);
        assert_eq!(p[2].clone().unwrap_err(), "payload is not valid base64");
        assert_eq!(p[3].clone().unwrap_err(), "payload is required");
    }

    #[test]
    fn malformed_batch_bodies_are_refused_whole() {
        for (body, why) in [
            (&b"{"[..], "not valid JSON"),
            (b"[]", "must be a JSON object"),
            (br#"{"messages": []}"#, "channelName"),
            (br#"{"channelName": "c"}"#, "messages is required"),
            (br#"{"channelName": "c", "messages": []}"#, "1 to 2 entries"),
            (br#"{"channelName": "c", "messages": [{}, {}, {}]}"#, "1 to 2 entries"),
            (br#"{"channelName": "c", "messages": [{"payload": "e30="}]}"#, "messageId"),
        ] {
            let e = parse_batch(body, 2).err().unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(body)));
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
