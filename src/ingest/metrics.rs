//! Ingest counters and the ingest latency histogram, rendered in the Prometheus text format
//! for `GET /metrics`.
//!
//! Latency is measured from the moment a call reaches [`super::Ingest::put`] to the moment its
//! messages are durable (the WAL sync included), per source.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use super::Source;

/// The `channel` label of messages refused for a channel that does not exist (a name no
/// channel can have, so the label set stays as small as the set of channels).
pub(crate) const UNKNOWN_CHANNEL: &str = "(unknown channel)";

/// A label value as the Prometheus text format writes it: `\`, `"` and newlines escaped.
fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Counts {
    /// (channel, source) → messages stored, payload bytes stored.
    stored: BTreeMap<(String, &'static str), (u64, u64)>,
    /// (channel, source) → messages refused.
    rejected: BTreeMap<(String, &'static str), u64>,
    /// source → bucket counts (one per bound, then +Inf), sum of seconds.
    latency: BTreeMap<&'static str, ([u64; BUCKETS.len() + 1], f64)>,
    /// HTTP requests answered 503 because ingest was saturated.
    throttled: u64,
}

#[derive(Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, source: Source, channel: &str, messages: u64, bytes: u64, latency: Duration) {
        let mut c = self.lock();
        let e = c.stored.entry((channel.to_string(), source.name())).or_default();
        e.0 += messages;
        e.1 += bytes;
        let secs = latency.as_secs_f64();
        let h = c.latency.entry(source.name()).or_insert(([0; BUCKETS.len() + 1], 0.0));
        let b = BUCKETS.iter().position(|&le| secs <= le).unwrap_or(BUCKETS.len());
        h.0[b] += 1;
        h.1 += secs;
    }

    pub fn rejected(&self, source: Source, channel: &str, messages: u64) {
        *self.lock().rejected.entry((channel.to_string(), source.name())).or_default() += messages;
    }

    pub fn throttled(&self) {
        self.lock().throttled += 1;
    }

    /// Messages stored in `channel` from every source so far.
    pub fn stored_in(&self, channel: &str) -> u64 {
        self.lock().stored.iter().filter(|((c, _), _)| c == channel).map(|(_, v)| v.0).sum()
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let c = self.lock();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP fleetdb_messages_received_total Messages stored in a channel, by source.");
        let _ = writeln!(out, "# TYPE fleetdb_messages_received_total counter");
        for ((ch, src), (n, _)) in &c.stored {
            let _ = writeln!(out, "fleetdb_messages_received_total{{channel=\"{}\",source=\"{src}\"}} {n}", label(ch));
        }
        let _ =
            writeln!(out, "# HELP fleetdb_message_bytes_received_total Payload bytes stored in a channel, by source.");
        let _ = writeln!(out, "# TYPE fleetdb_message_bytes_received_total counter");
        for ((ch, src), (_, b)) in &c.stored {
            let _ =
                writeln!(out, "fleetdb_message_bytes_received_total{{channel=\"{}\",source=\"{src}\"}} {b}", label(ch));
        }
        let _ = writeln!(
            out,
            "# HELP fleetdb_messages_rejected_total Messages refused (see fleetdb.rejected_messages), by source."
        );
        let _ = writeln!(out, "# TYPE fleetdb_messages_rejected_total counter");
        for ((ch, src), n) in &c.rejected {
            let _ = writeln!(out, "fleetdb_messages_rejected_total{{channel=\"{}\",source=\"{src}\"}} {n}", label(ch));
        }
        let _ =
            writeln!(out, "# HELP fleetdb_http_throttled_total HTTP ingest requests answered 503 (ingest saturated).");
        let _ = writeln!(out, "# TYPE fleetdb_http_throttled_total counter");
        let _ = writeln!(out, "fleetdb_http_throttled_total {}", c.throttled);
        let _ = writeln!(
            out,
            "# HELP fleetdb_ingest_latency_seconds Time from receiving a call to its messages being durable."
        );
        let _ = writeln!(out, "# TYPE fleetdb_ingest_latency_seconds histogram");
        for (src, (buckets, sum)) in &c.latency {
            let mut cumulative = 0;
            for (i, n) in buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let _ =
                    writeln!(out, "fleetdb_ingest_latency_seconds_bucket{{source=\"{src}\",le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "fleetdb_ingest_latency_seconds_sum{{source=\"{src}\"}} {sum}");
            let _ = writeln!(out, "fleetdb_ingest_latency_seconds_count{{source=\"{src}\"}} {cumulative}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.record(Source::Batch, "c", 3, 30, Duration::from_micros(700));
        m.record(Source::Batch, "c", 2, 20, Duration::from_millis(30));
        m.rejected(Source::Ndjson, "c\"x", 1);
        let text = m.render();
        assert!(text.contains("fleetdb_messages_received_total{channel=\"c\",source=\"http_batch\"} 5"), "{text}");
        assert!(text.contains("fleetdb_message_bytes_received_total{channel=\"c\",source=\"http_batch\"} 50"));
        assert!(text.contains("fleetdb_messages_rejected_total{channel=\"c\\\"x\",source=\"http_ndjson\"} 1"));
        assert!(text.contains("fleetdb_ingest_latency_seconds_bucket{source=\"http_batch\",le=\"0.001\"} 1"));
        assert!(text.contains("fleetdb_ingest_latency_seconds_bucket{source=\"http_batch\",le=\"0.05\"} 2"));
        assert!(text.contains("fleetdb_ingest_latency_seconds_count{source=\"http_batch\"} 2"));
        assert_eq!(m.stored_in("c"), 5);
        assert_eq!(label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
