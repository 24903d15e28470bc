//! The MQTT client (rumqttc): fleetdb subscribes to a broker for every route and stores what
//! arrives in the routes' channels.
//!
//! - One connection, a persistent session (`clean_session = false`) under a client id that
//!   stays the same across restarts, so the broker keeps QoS 1 messages while fleetdb is away.
//! - Manual acknowledgement: a QoS 1 message is acknowledged (PUBACK) only after it is durable
//!   in its channel. A crash before that leaves it unacknowledged, and the broker sends it
//!   again, flagged DUP, after the reconnect.
//! - A redelivered (DUP) message whose topic and payload match a message stored from MQTT in
//!   the last [`DEDUP_WINDOW_MICROS`] is acknowledged without storing it again, so a crash
//!   between storing and acknowledging does not duplicate it. (Two genuinely separate
//!   messages with the same topic and payload, the second one redelivered, would be taken
//!   for one: the price of exactly-once over a protocol that carries no message id.)
//! - Backpressure: messages wait for the store in a bounded queue; when it is full the client
//!   stops reading from the broker, and the broker stops sending once its in-flight window of
//!   unacknowledged messages is full.
//! - Reconnects back off from 100 ms to 10 s.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

use super::{Incoming, Ingest, Route, Source};
use crate::util::json::{self, Json};
use crate::util::time::now_micros;

/// How far back a redelivered message is looked for among the stored ones.
pub const DEDUP_WINDOW_MICROS: i64 = 15 * 60 * 1_000_000;
/// Messages waiting for the store.
const QUEUE: usize = 8192;
/// Messages stored per append at most.
const BATCH: usize = 4096;
/// Requests (acknowledgements, subscriptions) waiting for the event loop.
const ACK_QUEUE: usize = 1 << 24;

/// Where and how to connect.
#[derive(Clone, Debug, Default)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_id: Option<String>,
}

/// Builds the client options from the configuration (errors name what is wrong).
pub fn options(cfg: &MqttConfig, default_id: &str) -> crate::Result<MqttOptions> {
    options_text(cfg, default_id).map_err(crate::Error::Invalid)
}

/// [`options`], its error a reason as text.
fn options_text(cfg: &MqttConfig, default_id: &str) -> std::result::Result<MqttOptions, String> {
    let (tls, rest) = if let Some(r) = cfg.url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = cfg.url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!("MQTT URL \"{}\" must start with mqtt:// or mqtts://", cfg.url));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("bad port in MQTT URL \"{}\"", cfg.url))?),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(format!("MQTT URL \"{}\" has no host", cfg.url));
    }
    let id = cfg.client_id.clone().unwrap_or_else(|| default_id.to_string());
    let mut o = MqttOptions::new(id, host, port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some(u) = &cfg.username {
        o.set_credentials(u.clone(), cfg.password.clone().unwrap_or_default());
    }
    if tls {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
        let ca = match &cfg.ca {
            Some(p) => read(p)?,
            None => return Err("mqtts needs the broker's CA certificate (--mqtt-ca FILE)".into()),
        };
        let client_auth = match (&cfg.cert, &cfg.key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => return Err("give both --mqtt-cert and --mqtt-key, or neither".into()),
        };
        o.set_transport(Transport::Tls(TlsConfiguration::Simple { ca, alpn: None, client_auth }));
    }
    Ok(o)
}

fn fingerprint(topic: &str, payload: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    topic.hash(&mut h);
    payload.hash(&mut h);
    h.finish()
}

/// Fingerprints of messages stored from MQTT recently, oldest first.
#[derive(Default)]
struct Recent {
    set: HashSet<u64>,
    order: VecDeque<(i64, u64)>,
}

impl Recent {
    fn insert(&mut self, at: i64, f: u64) {
        if self.set.insert(f) {
            self.order.push_back((at, f));
        }
        while let Some(&(t, old)) = self.order.front() {
            if t >= at - DEDUP_WINDOW_MICROS {
                break;
            }
            self.order.pop_front();
            self.set.remove(&old);
        }
    }
}

/// Runs the client until `stop` turns true. Connection errors are logged and retried.
pub async fn run(ingest: Arc<Ingest>, opts: MqttOptions, stop: watch::Receiver<bool>) {
    // The event loop sends one request (an acknowledgement) per poll, and only once it has
    // handed out every message it read, so acknowledgements can pile up in its request queue
    // beyond what the store holds. If that queue could fill, the store would wait on it while
    // the event loop waits for room in the store's queue: a deadlock. So it is effectively
    // unbounded (its memory grows only as entries are added); the broker's in-flight window
    // bounds how many messages, and so acknowledgements, can be outstanding.
    let (client, mut eventloop) = AsyncClient::new(opts, ACK_QUEUE);
    let (tx, rx) = mpsc::channel::<Publish>(QUEUE);
    let store = tokio::spawn(store_loop(ingest.clone(), client.clone(), rx));
    let mut routes_rx = ingest.watch_routes();
    let mut subscribed: HashSet<(String, u8)> = HashSet::new();
    let mut backoff = Duration::from_millis(100);
    let stop_all = stopped(stop.clone());
    tokio::pin!(stop_all);
    loop {
        tokio::select! {
            _ = &mut stop_all => break,
            _ = routes_rx.changed() => {
                resubscribe(&client, &ingest.routes(), &mut subscribed).await;
            }
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(100);
                    tracing::info!("MQTT connected");
                    // A persistent session may keep subscriptions, but routes may have changed.
                    subscribed.clear();
                    resubscribe(&client, &ingest.routes(), &mut subscribed).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("MQTT connection: {e}; retrying in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(stop.clone()) => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
    drop(tx);
    let _ = store.await;
    let _ = client.disconnect().await;
    // Let the DISCONNECT go out (bounded: the broker may be gone).
    let _ = tokio::time::timeout(Duration::from_millis(500), drain(&mut eventloop)).await;
}

/// Completes when `rx` turns true (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn drain(eventloop: &mut EventLoop) {
    while eventloop.poll().await.is_ok() {}
}

/// Subscribes to every route's filter not yet subscribed; unsubscribes dropped ones.
async fn resubscribe(client: &AsyncClient, routes: &[Route], subscribed: &mut HashSet<(String, u8)>) {
    let want: HashSet<(String, u8)> = routes.iter().map(|r| (r.subscription(), r.qos)).collect();
    for (topic, _) in subscribed.difference(&want) {
        let _ = client.unsubscribe(topic.clone()).await;
    }
    for (topic, qos) in want.difference(subscribed) {
        let q = if *qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        if let Err(e) = client.subscribe(topic.clone(), q).await {
            tracing::warn!("MQTT subscribe {topic}: {e}");
        }
    }
    *subscribed = want;
}

/// Stores queued messages in batches, then acknowledges them.
async fn store_loop(ingest: Arc<Ingest>, client: AsyncClient, mut rx: mpsc::Receiver<Publish>) {
    let session = now_micros();
    let mut seq: u64 = 0;
    let recent = Arc::new(std::sync::Mutex::new(recent_from_channels(&ingest)));
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let publishes = std::mem::take(&mut batch);
        let routes = ingest.routes();
        // Per channel, the messages (with their fingerprints) to store.
        let mut per_channel: HashMap<String, Vec<(Incoming<'static>, u64)>> = HashMap::new();
        // Messages no route takes (a subscription of a dropped route, still in the session).
        let mut unrouted: Vec<Incoming<'static>> = Vec::new();
        {
            let recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            for p in &publishes {
                let f = fingerprint(&p.topic, &p.payload);
                if p.dup && recent.set.contains(&f) {
                    continue; // stored before a crash or reconnect, never acknowledged
                }
                let mut routed = false;
                for r in routes.iter().filter(|r| super::routes::matches(&r.filter, &p.topic)) {
                    routed = true;
                    let out = per_channel.entry(r.channel.clone()).or_default();
                    for payload in split(r, &p.payload) {
                        seq += 1;
                        let id = format!("{session:x}-{seq}");
                        out.push((Incoming { id: id.into(), topic: p.topic.clone().into(), payload }, f));
                    }
                }
                if !routed {
                    seq += 1;
                    let id = format!("{session:x}-{seq}");
                    unrouted.push(Incoming {
                        id: id.into(),
                        topic: p.topic.clone().into(),
                        payload: p.payload.to_vec().into(),
                    });
                }
            }
        }
        let ing = ingest.clone();
        let rec = recent.clone();
        let stored = tokio::task::spawn_blocking(move || -> crate::error::Result<()> {
            let why: Vec<String> = unrouted.iter().map(|m| format!("no route matches topic \"{}\"", m.topic)).collect();
            let rows: Vec<(&Incoming<'_>, &str)> = unrouted.iter().zip(&why).map(|(m, w)| (m, w.as_str())).collect();
            ing.record_rejections(Source::Mqtt, "", &rows)?;
            for (channel, msgs) in per_channel {
                let (incoming, prints): (Vec<_>, Vec<_>) = msgs.into_iter().unzip();
                match ing.put(Source::Mqtt, &channel, &incoming) {
                    // A route to a dropped channel: the messages are in rejected_messages.
                    Ok(_) | Err(crate::error::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
                let now = now_micros();
                let mut r = rec.lock().unwrap_or_else(|e| e.into_inner());
                for f in prints {
                    r.insert(now, f);
                }
            }
            Ok(())
        })
        .await;
        match stored {
            Ok(Ok(())) => {
                for p in &publishes {
                    if p.qos != QoS::AtMostOnce {
                        let _ = client.ack(p).await;
                    }
                }
            }
            // Not durable: no acknowledgement, so the broker keeps the messages.
            Ok(Err(e)) => tracing::error!("storing MQTT messages failed, not acknowledged: {e}"),
            Err(e) => tracing::error!("MQTT store task failed: {e}"),
        }
    }
}

/// The payloads a message becomes on route `r`: with `batch_mode`, each element of a
/// top-level JSON array (as its source text); otherwise the payload itself.
fn split(r: &Route, payload: &[u8]) -> Vec<std::borrow::Cow<'static, [u8]>> {
    if r.batch_mode
        && let Ok(text) = std::str::from_utf8(payload)
        && let Ok(doc) = json::parse(text)
        && let Json::Array(items) = &doc.value
    {
        return items.iter().map(|i| i.text.as_bytes().to_vec().into()).collect();
    }
    vec![payload.to_vec().into()]
}

/// Fingerprints of the messages that routed channels received from MQTT (they carry a topic)
/// within the dedup window: after a restart, the broker redelivers what was not acknowledged.
fn recent_from_channels(ingest: &Ingest) -> Recent {
    let mut recent = Recent::default();
    let now = now_micros();
    let channels: HashSet<String> = ingest.routes().into_iter().map(|r| r.channel).collect();
    for name in channels {
        let Ok(ch) = ingest.engine().channel(&name) else { continue };
        let Ok(m) = ch.read_time_range(now - DEDUP_WINDOW_MICROS, i64::MAX) else { continue };
        for i in 0..m.len() {
            let topic = m.topics.get(i);
            if !topic.is_empty() {
                recent.insert(m.received_at[i], fingerprint(topic, m.payloads.get(i)));
            }
        }
    }
    recent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_tls_options_are_checked() {
        let cfg = |url: &str| MqttConfig { url: url.into(), ..Default::default() };
        assert_eq!(options(&cfg("mqtt://127.0.0.1:1884"), "id").unwrap().broker_address(), ("127.0.0.1".into(), 1884));
        assert_eq!(options(&cfg("mqtt://broker"), "id").unwrap().broker_address().1, 1883);
        assert!(options(&cfg("tcp://x"), "id").unwrap_err().to_string().contains("mqtt://"));
        assert!(options(&cfg("mqtt://x:port"), "id").unwrap_err().to_string().contains("bad port"));
        assert!(options(&cfg("mqtts://x"), "id").unwrap_err().to_string().contains("CA certificate"));
        let o = options(&MqttConfig { client_id: Some("mine".into()), ..cfg("mqtt://x") }, "id").unwrap();
        assert_eq!(o.client_id(), "mine");
    }

    #[test]
    fn batch_mode_splits_top_level_arrays() {
        let r = |batch_mode| Route {
            name: "r".into(),
            filter: "#".into(),
            channel: "c".into(),
            qos: 1,
            batch_mode,
            shared_group: None,
        };
        let p = br#"[{"a": 1}, {"a": 2}]"#;
        let parts: Vec<Vec<u8>> = split(&r(true), p).into_iter().map(|c| c.to_vec()).collect();
        assert_eq!(parts, [br#"{"a": 1}"#.to_vec(), br#"{"a": 2}"#.to_vec()]);
        assert_eq!(split(&r(false), p).len(), 1);
        assert_eq!(split(&r(true), br#"{"a": 1}"#).len(), 1);
    }

    #[test]
    fn recent_fingerprints_expire() {
        let mut r = Recent::default();
        r.insert(0, 1);
        r.insert(DEDUP_WINDOW_MICROS, 2);
        assert!(r.set.contains(&1) && r.set.contains(&2));
        r.insert(DEDUP_WINDOW_MICROS + 1, 3);
        assert!(!r.set.contains(&1) && r.set.contains(&2));
    }
}
