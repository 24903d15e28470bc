//! `fleetdb bench-ingest`: ingest throughput and latency against a running `fleetdb serve`
//! (and a Mosquitto broker), on generated factory JSON messages of about 200 bytes. Every
//! figure counts messages acknowledged as durable. `tools/bench-ingest.sh` starts the servers
//! and creates the channels and the route this expects:
//!
//! - `bench_batch`: HTTP BatchPutMessage (base64 payloads, 100 per request), as fast as
//!   `--connections` keep-alive connections go; then at half that rate, the send-to-durable
//!   latency of each request (p50, p99);
//! - `bench_ndjson`: one NDJSON POST per connection;
//! - `bench_copy`: `COPY … FROM STDIN` through psql;
//! - `bench_mqtt` (route `bench/fleet/#`): QoS 1 publishes through the broker until fleetdb has
//!   stored them all, against the rate at which the same broker delivers the same messages to a
//!   subscriber that discards them (measured in the same run).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleetdb::ingest::check::base64_encode;
use fleetdb::sim::{Fleet, FleetConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::args::BenchIngestArgs;

/// A minimal HTTP/1.1 keep-alive client: POST a body, read the status and body.
struct HttpConn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl HttpConn {
    async fn connect(addr: &str) -> Result<HttpConn, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(HttpConn { stream, host: addr.to_string(), buf: Vec::with_capacity(64 * 1024) })
    }

    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let io = |e: std::io::Error| format!("HTTP {path}: {e}");
        self.stream.write_all(head.as_bytes()).await.map_err(io)?;
        self.stream.write_all(body).await.map_err(io)?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    let n = self.stream.read(&mut chunk).await.map_err(io)?;
                    if n == 0 {
                        return Err(format!("HTTP {path}: connection closed"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok((status, self.buf[end + 4..end + 4 + len].to_vec()));
            }
            let n = self.stream.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(format!("HTTP {path}: connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The BatchPutMessage bodies for `msgs`, 100 messages each.
fn batch_bodies(msgs: &[String], channel: &str, tag: &str) -> Vec<Vec<u8>> {
    msgs.chunks(100)
        .enumerate()
        .map(|(b, chunk)| {
            let entries: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| format!(r#"{{"messageId":"{tag}{b}-{i}","payload":"{}"}}"#, base64_encode(m.as_bytes())))
                .collect();
            format!(r#"{{"channelName":"{channel}","messages":[{}]}}"#, entries.join(",")).into_bytes()
        })
        .collect()
}

/// Sends `bodies` over `conns` connections; `per_conn_interval` paces each connection
/// (None: as fast as it goes). Returns (elapsed, latencies in ms).
async fn send_batches(
    http: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    conns: usize,
    per_conn_interval: Option<Duration>,
) -> Result<(Duration, Vec<f64>), String> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (bodies, next, http) = (bodies.clone(), next.clone(), http.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = HttpConn::connect(&http).await?;
            let mut lat = Vec::new();
            let mut tick = per_conn_interval.map(tokio::time::interval);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= bodies.len() {
                    return Ok::<_, String>(lat);
                }
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let t0 = Instant::now();
                let (status, body) = c.request("POST", "/messages/batch", &bodies[i]).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
                if status != 200 || body.len() > 40 {
                    return Err(format!("batch answered {status}: {}", String::from_utf8_lossy(&body)));
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    all.sort_by(f64::total_cmp);
    Ok((start.elapsed(), all))
}

/// Messages fleetdb has stored in `channel` from `source`, read from `/metrics`.
async fn stored(http: &str, channel: &str, source: &str) -> Result<u64, String> {
    let mut c = HttpConn::connect(http).await?;
    let (_, body) = c.request("GET", "/metrics", b"").await?;
    let key = format!("fleetdb_messages_received_total{{channel=\"{channel}\",source=\"{source}\"}} ");
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&key).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0))
}

/// Publishes `msgs` at QoS 1 to `topic` (one publisher, up to 1,000 in flight); returns when
/// the broker has acknowledged them all.
async fn publish_all(broker: (&str, u16), topic: &str, msgs: Arc<Vec<String>>, id: &str) -> Result<(), String> {
    let mut o = MqttOptions::new(id, broker.0, broker.1);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(1000).set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut ev) = AsyncClient::new(o, 10_000);
    let n = msgs.len();
    let topic = topic.to_string();
    let sender = tokio::spawn(async move {
        for m in msgs.iter() {
            client
                .publish(topic.clone(), QoS::AtLeastOnce, false, m.clone().into_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(client)
    });
    let mut acked = 0;
    while acked < n {
        match ev.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => return Err(format!("publisher: {e}")),
        }
    }
    let client = sender.await.map_err(|e| e.to_string())??;
    let _ = client.disconnect().await;
    Ok(())
}

pub fn run(a: &BenchIngestArgs) -> Result<(), String> {
    let http = a.http.clone();
    let (pg_port, n, conns) = (a.pg_port, a.messages, a.connections);
    let broker = a.broker.as_deref().map(|b| {
        let (h, p) = b.rsplit_once(':').unwrap_or((b, "1883"));
        (h.to_string(), p.parse::<u16>().unwrap_or(1883))
    });

    let mut fleet = Fleet::new(FleetConfig { machines: 1000, ..Default::default() });
    let mut msgs = Vec::with_capacity(n);
    while msgs.len() < n {
        for r in fleet.next_readings() {
            if msgs.len() < n {
                // The simulator's reading plus the metadata devices usually send along,
                // bringing it to about 200 bytes.
                let j = fleet.to_json(&r);
                let extra =
                    format!(r#","site":"plant-north","line":"L{:02}","firmware":"fw-2.4.17"}}"#, msgs.len() % 12);
                msgs.push(format!("{}{extra}", &j[..j.len() - 1]));
            }
        }
    }
    let avg = msgs.iter().map(String::len).sum::<usize>() as f64 / n as f64;
    println!("{n} factory messages, {avg:.0} bytes of JSON each on average");
    let msgs = Arc::new(msgs);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let rate = |k: usize, d: Duration| k as f64 / d.as_secs_f64();

        // 1. BatchPutMessage at full speed, then at half of it for latency.
        let bodies = Arc::new(batch_bodies(&msgs, "bench_batch", "a"));
        let (d, _) = send_batches(&http, bodies, conns, None).await?;
        let full = rate(n, d);
        println!("http batch      {full:>10.0} messages/s  ({conns} connections, 100 per request)");
        let half_n = n.min((full / 2.0 * 5.0) as usize).max(100 * conns);
        let bodies = Arc::new(batch_bodies(&msgs[..half_n], "bench_batch", "b"));
        let per_conn = Duration::from_secs_f64(100.0 * conns as f64 / (full / 2.0));
        let (d, lat) = send_batches(&http, bodies, conns, Some(per_conn)).await?;
        println!(
            "http batch at half load ({:.0} messages/s): send to durable p50 {:.2} ms, p99 {:.2} ms",
            rate(half_n, d),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );

        // 2. NDJSON: one streamed POST per connection.
        let start = Instant::now();
        let per = n.div_ceil(conns);
        let mut tasks = Vec::new();
        for c in 0..conns {
            let lines: Vec<u8> = msgs[(c * per).min(n)..((c + 1) * per).min(n)]
                .iter()
                .flat_map(|m| [m.as_bytes(), b"\n"].concat())
                .collect();
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = HttpConn::connect(&http).await?;
                let (status, body) = conn.request("POST", "/channels/bench_ndjson/messages", &lines).await?;
                if status != 200 || !String::from_utf8_lossy(&body).contains("\"rejected\":0") {
                    return Err(format!("NDJSON answered {status}: {}", String::from_utf8_lossy(&body)));
                }
                Ok::<_, String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        println!("http ndjson     {:>10.0} messages/s  ({conns} streams)", rate(n, start.elapsed()));

        // 3. COPY through psql.
        let data: Vec<u8> = msgs.iter().flat_map(|m| [m.as_bytes(), b"\n"].concat()).collect();
        let start = Instant::now();
        let mut psql = std::process::Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg_port.to_string(), "-U", "fleetdb", "fleetdb"])
            .args(["-c", "COPY bench_copy FROM STDIN"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("running psql: {e}"))?;
        psql.stdin.take().expect("piped").write_all(&data).map_err(|e| e.to_string())?;
        let out = psql.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err("psql COPY failed".to_string());
        }
        println!("sql copy        {:>10.0} messages/s  (psql, one COPY)", rate(n, start.elapsed()));

        // 4. MQTT through the broker, against the broker's own delivery rate.
        if let Some((host, port)) = &broker {
            let mut o = MqttOptions::new("bench-discard", host.as_str(), *port);
            o.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(1 << 20, 1 << 20);
            let (sub, mut sub_ev) = AsyncClient::new(o, 100);
            sub.subscribe("bench/discard/#", QoS::AtLeastOnce).await.map_err(|e| e.to_string())?;
            loop {
                if let Ok(Event::Incoming(Packet::SubAck(_))) = sub_ev.poll().await {
                    break;
                }
            }
            let counter = tokio::spawn(async move {
                let (mut got, mut first) = (0usize, None);
                while got < n {
                    match sub_ev.poll().await {
                        Ok(Event::Incoming(Packet::Publish(_))) => {
                            first.get_or_insert_with(Instant::now);
                            got += 1;
                        }
                        Ok(_) => {}
                        Err(e) => return Err(format!("subscriber: {e}")),
                    }
                }
                Ok::<_, String>(())
            });
            let start = Instant::now();
            publish_all((host, *port), "bench/discard/x", msgs.clone(), "bench-pub-1").await?;
            counter.await.map_err(|e| e.to_string())??;
            let baseline = rate(n, start.elapsed());
            println!("mqtt baseline   {baseline:>10.0} messages/s  (Mosquitto to a subscriber that discards, QoS 1)");
            let before = stored(&http, "bench_mqtt", "mqtt").await?;
            let start = Instant::now();
            publish_all((host, *port), "bench/fleet/x", msgs.clone(), "bench-pub-2").await?;
            let deadline = Instant::now() + Duration::from_secs(300);
            while stored(&http, "bench_mqtt", "mqtt").await? < before + n as u64 {
                if Instant::now() > deadline {
                    return Err("fleetdb did not store every MQTT message within 300 s".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let fleet_rate = rate(n, start.elapsed());
            println!(
                "mqtt fleetdb    {:>10.0} messages/s  ({:.0}% of the baseline; QoS 1, acknowledged once durable)",
                fleet_rate,
                100.0 * fleet_rate / baseline
            );
        }
        Ok::<_, String>(())
    })
}
