//! Delivery of each SUCCEEDED version (AWS content delivery rules), in the background:
//!
//! - `DELIVER TO FILE 'dir/!{iotanalytics:scheduleTime}.csv'`: the content as CSV with a
//!   header, written whole (temporary name, fsync, rename). `!{iotanalytics:scheduleTime}`
//!   (RFC 3339, UTC) and `!{iotanalytics:versionId}` are replaced; a relative path is under the
//!   data directory.
//! - `DELIVER TO MQTT 'topic'`: one JSON object per row, QoS 1, through the broker the server
//!   was started with (`--mqtt`). A delivery succeeds once the broker acknowledged every row.
//! - `DELIVER TO WEBHOOK 'http://host:port/path'`: one POST of
//!   `{"datasetName", "versionId", "scheduleTime", "rows": [...]}`; any 2xx answer succeeds.
//!
//! A failed delivery is tried again after 1, 2, 4 and 8 seconds; every failure and the
//! outcome are rows of `fleetdb.dataset_events`. Pending deliveries are kept in the dataset's
//! `deliveries` file, written before the version is recorded SUCCEEDED and after each
//! attempt, so a restart resumes them: delivery is at least once (an attempt that succeeded
//! just before a crash is made again).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::batch::{Batch, Values};
use crate::query::copy::{CopyFormat, format_row};
use crate::query::expr::text_of;
use crate::query::plan::OutCol;
use crate::util::time::format_timestamp;

/// The broker MQTT deliveries publish through.
pub(crate) type MqttOptions = rumqttc::MqttOptions;

/// Attempts before a delivery is given up.
pub(crate) const ATTEMPTS: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Mqtt,
    Webhook,
}

/// One delivery rule of a dataset.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: Kind,
    pub target: String,
}

const VARIABLES: [&str; 2] = ["!{iotanalytics:scheduleTime}", "!{iotanalytics:versionId}"];

impl Target {
    /// A file target must stay inside the data directory: a relative path without `..`,
    /// control characters or NUL. Checked at CREATE and ALTER DATASET, and again before each
    /// delivery (definitions stored by older versions were not checked).
    pub fn check_contained(&self) -> crate::Result<()> {
        self.check_contained_text().map_err(crate::Error::Invalid)
    }

    /// [`Self::check_contained`], its error a reason as text.
    fn check_contained_text(&self) -> std::result::Result<(), String> {
        if self.kind != Kind::File {
            return Ok(());
        }
        let p = Path::new(&self.target);
        let escapes = p.is_absolute()
            || p.components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
            || self.target.chars().any(char::is_control);
        if escapes {
            return Err(format!(
                "DELIVER TO FILE '{}': the file must be inside the data directory (a relative path without \"..\")",
                self.target
            ));
        }
        Ok(())
    }

    /// A rule from its option (`deliver_file`, `deliver_mqtt`, `deliver_webhook`).
    pub fn new(key: &str, target: &str) -> crate::Result<Target> {
        Self::new_text(key, target).map_err(crate::Error::Invalid)
    }

    /// [`Self::new`], its error a reason as text.
    fn new_text(key: &str, target: &str) -> std::result::Result<Target, String> {
        let kind = match key {
            "deliver_file" => Kind::File,
            "deliver_mqtt" => Kind::Mqtt,
            _ => Kind::Webhook,
        };
        match kind {
            Kind::File => {
                let mut rest = target.to_string();
                for v in VARIABLES {
                    rest = rest.replace(v, "");
                }
                if let Some(at) = rest.find("!{") {
                    return Err(format!(
                        "DELIVER TO FILE '{target}': unknown variable {}… (known: {})",
                        &rest[at..(at + 24).min(rest.len())],
                        VARIABLES.join(", ")
                    ));
                }
                if target.ends_with('/') || target.is_empty() {
                    return Err(format!("DELIVER TO FILE '{target}': a file name was expected"));
                }
            }
            Kind::Mqtt => {
                if target.is_empty() || target.contains(['#', '+']) || target.len() > 1024 {
                    return Err(format!("DELIVER TO MQTT '{target}': a topic without wildcards was expected"));
                }
            }
            Kind::Webhook => {
                parse_url(target)?;
            }
        }
        Ok(Target { kind, target: target.to_string() })
    }

    pub fn option_key(&self) -> &'static str {
        match self.kind {
            Kind::File => "deliver_file",
            Kind::Mqtt => "deliver_mqtt",
            Kind::Webhook => "deliver_webhook",
        }
    }

    pub fn describe(&self) -> String {
        format!("{} '{}'", &self.option_key()["deliver_".len()..], self.target)
    }
}

/// A version to deliver to one target.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub dataset: String,
    pub version: u64,
    pub schedule_time: i64,
    pub target: Target,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not tried again before this time (microseconds).
    pub not_before: i64,
}

impl Job {
    /// Whether `other` delivers the same version to the same target.
    pub(crate) fn same(&self, other: &Job) -> bool {
        self.dataset == other.dataset
            && self.version == other.version
            && self.target.kind == other.target.kind
            && self.target.target == other.target.target
    }

    /// Pause before the next attempt after `attempts` failures.
    pub(crate) fn backoff(attempts: u32) -> Duration {
        Duration::from_secs(1 << attempts.saturating_sub(1).min(10))
    }
}

/// The pending deliveries of one dataset as the body of its `deliveries` file
/// (storage-format.md § Datasets).
pub(crate) fn encode(jobs: &[&Job]) -> Vec<u8> {
    use crate::util::bytes::PutBytes;
    let mut b = Vec::new();
    b.put_u32(jobs.len() as u32);
    for j in jobs {
        b.put_u64(j.version);
        b.put_i64(j.schedule_time);
        b.put_u8(match j.target.kind {
            Kind::File => 0,
            Kind::Mqtt => 1,
            Kind::Webhook => 2,
        });
        b.put_bytes32(j.target.target.as_bytes());
        b.put_u32(j.attempts);
    }
    b
}

/// The jobs of dataset `dataset` from a `deliveries` file's body; `None` if it is damaged.
pub(crate) fn decode(dataset: &str, body: &[u8]) -> Option<Vec<Job>> {
    let mut r = crate::util::bytes::ByteReader::new(body);
    let mut out = Vec::new();
    for _ in 0..r.u32()? {
        let (version, schedule_time) = (r.u64()?, r.i64()?);
        let kind = match r.u8()? {
            0 => Kind::File,
            1 => Kind::Mqtt,
            2 => Kind::Webhook,
            _ => return None,
        };
        let target = String::from_utf8(r.bytes32()?.to_vec()).ok()?;
        let attempts = r.u32()?;
        out.push(Job {
            dataset: dataset.to_string(),
            version,
            schedule_time,
            target: Target { kind, target },
            attempts,
            not_before: i64::MIN,
        });
    }
    Some(out)
}

/// What a delivery needs beyond the content.
pub(crate) struct Context<'a> {
    pub data_dir: &'a Path,
    pub mqtt: Option<&'a MqttOptions>,
}

/// Delivers one version's content; a summary of what was done, or why it failed.
pub(crate) fn deliver(job: &Job, cols: &[OutCol], b: &Batch, cx: &Context<'_>) -> crate::Result<String> {
    deliver_text(job, cols, b, cx).map_err(crate::Error::External)
}

/// [`deliver`], its error a reason as text.
fn deliver_text(job: &Job, cols: &[OutCol], b: &Batch, cx: &Context<'_>) -> std::result::Result<String, String> {
    match job.target.kind {
        Kind::File => {
            job.target.check_contained_text()?;
            let key = job
                .target
                .target
                .replace(VARIABLES[0], &schedule_stamp(job.schedule_time))
                .replace(VARIABLES[1], &job.version.to_string());
            let path = cx.data_dir.join(&key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            crate::util::fsutil::write_atomic(&path, to_csv(cols, b).as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(format!("{} rows to {}", b.num_rows(), path.display()))
        }
        Kind::Mqtt => {
            let o = cx.mqtt.ok_or("the server has no MQTT broker (serve --mqtt URL)")?;
            publish(o, &job.target.target, &(0..b.num_rows()).map(|i| row_json(cols, b, i)).collect::<Vec<_>>())?;
            Ok(format!("{} messages to {}", b.num_rows(), job.target.target))
        }
        Kind::Webhook => {
            let rows: Vec<String> = (0..b.num_rows()).map(|i| row_json(cols, b, i)).collect();
            let mut body = String::from("{\"datasetName\": ");
            crate::util::json::write_string(&mut body, &job.dataset);
            body += &format!(
                ", \"versionId\": \"{}\", \"scheduleTime\": \"{}\", \"rows\": [{}]}}",
                job.version,
                format_timestamp(job.schedule_time),
                rows.join(", ")
            );
            let status = post(&job.target.target, &body)?;
            Ok(format!("{} rows to {} (HTTP {status})", rows.len(), job.target.target))
        }
    }
}

/// `!{iotanalytics:scheduleTime}`: the schedule time to the second, RFC 3339 UTC.
fn schedule_stamp(t: i64) -> String {
    let s = format_timestamp(t);
    format!("{}Z", &s[..19])
}

/// The content as CSV with a header line; NULL is an empty field.
pub(crate) fn to_csv(cols: &[OutCol], b: &Batch) -> String {
    let fmt = CopyFormat::Csv { delimiter: ',', null: String::new(), header: true, quote: '"' };
    let mut out = String::new();
    format_row(&fmt, &cols.iter().map(|c| Some(c.name.clone())).collect::<Vec<_>>(), &mut out);
    for row in crate::query::expr::rows_as_text(cols, b) {
        format_row(&fmt, &row, &mut out);
    }
    out
}

/// Row `i` as a JSON object: numbers and booleans as such, NULL as null, others as text.
pub(crate) fn row_json(cols: &[OutCol], b: &Batch, i: usize) -> String {
    let mut out = String::from("{");
    for (j, (o, c)) in cols.iter().zip(&b.columns).enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        crate::util::json::write_string(&mut out, &o.name);
        out.push_str(": ");
        if !c.is_valid(i) {
            out.push_str("null");
            continue;
        }
        match (&c.values, o.ty) {
            (Values::Bool(v), _) => out.push_str(if v[i] { "true" } else { "false" }),
            (Values::Int64(v), t) if t.is_numeric() => out.push_str(&v[i].to_string()),
            (Values::Float64(v), _) if v[i].is_finite() => out.push_str(&v[i].to_string()),
            _ => {
                let t = text_of(c, o.ty);
                crate::util::json::write_string(&mut out, t.get(i))
            }
        }
    }
    out.push('}');
    out
}

/// Publishes each payload at QoS 1 and waits until the broker acknowledged them all.
fn publish(o: &MqttOptions, topic: &str, payloads: &[String]) -> Result<(), String> {
    use rumqttc::{Client, Event, Packet, QoS};
    if payloads.is_empty() {
        return Ok(());
    }
    let mut o = o.clone();
    o.set_client_id(format!("{}-deliver", o.client_id()));
    o.set_clean_session(true).set_manual_acks(false);
    let (client, mut conn) = Client::new(o, 64);
    let sender = {
        let client = client.clone();
        let topic = topic.to_string();
        let payloads = payloads.to_vec();
        std::thread::spawn(move || {
            for p in payloads {
                if client.publish(topic.as_str(), QoS::AtLeastOnce, false, p.into_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acked = 0;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(format!("the broker acknowledged {acked} of {} messages in 30 s", payloads.len()));
        }
        match conn.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                acked += 1;
                if acked == payloads.len() {
                    break Ok(());
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => break Err(format!("MQTT: {e}")),
            Err(_) => {}
        }
    };
    let _ = client.disconnect();
    // Let the disconnect go out; the connection ends on its own otherwise.
    let _ = conn.recv_timeout(Duration::from_millis(50));
    drop(conn);
    let _ = sender.join();
    outcome
}

/// `http://host[:port]/path` → (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let bad = || format!("DELIVER TO WEBHOOK '{url}': an http://host[:port]/path URL was expected");
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
        None => (authority, 80),
    };
    if host.is_empty() || path.contains([' ', '\r', '\n']) {
        return Err(bad());
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// POSTs a JSON body; the status of a 2xx answer, else why it failed.
fn post(url: &str, body: &str) -> Result<u16, String> {
    let (host, port, path) = parse_url(url)?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("{url}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: fleetdb/{}\r\n\r\n",
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes())).map_err(|e| format!("{url}: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The status line is enough; stop reading at the end of the headers.
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.len() < 65_536 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{url}: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{url}: no HTTP answer"))?;
    if (200..300).contains(&status) { Ok(status) } else { Err(format!("{url} answered HTTP {status}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_when_defined() {
        assert!(Target::new("deliver_file", "out/!{iotanalytics:scheduleTime}-!{iotanalytics:versionId}.csv").is_ok());
        let e = Target::new("deliver_file", "out/!{iotanalytics:datasetName}.csv").unwrap_err();
        assert!(e.to_string().contains("unknown variable"), "{e}");
        assert!(Target::new("deliver_mqtt", "alerts/#").is_err());
        assert!(Target::new("deliver_webhook", "https://example.com/x").is_err());
        assert_eq!(parse_url("http://127.0.0.1:8080/hook").unwrap(), ("127.0.0.1".into(), 8080, "/hook".into()));
        assert_eq!(parse_url("http://h").unwrap(), ("h".into(), 80, "/".into()));
        assert_eq!(schedule_stamp(1_795_000_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(Job::backoff(1), Duration::from_secs(1));
        assert_eq!(Job::backoff(4), Duration::from_secs(8));
        let job = Job {
            dataset: "d".into(),
            version: 7,
            schedule_time: -5,
            target: Target::new("deliver_mqtt", "alerts/x").unwrap(),
            attempts: 2,
            not_before: 99,
        };
        let back = decode("d", &encode(&[&job])).unwrap();
        assert!(back.len() == 1 && back[0].same(&job) && back[0].attempts == 2 && back[0].schedule_time == -5);
        assert!(decode("d", &encode(&[&job])[..10]).is_none());
    }
}
