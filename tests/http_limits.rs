//! The HTTP API against slow, idle and greedy clients: header and body timeouts, the ingest
//! budget taken as bytes arrive (so clients that declare much and send little starve no one),
//! a maximum of connections, `/metrics` labels bounded by the channels that exist; and running
//! out of file descriptors, which never closes a listener.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Fleetdb, http_post, ok};

fn batch(channel: &str, id: &str) -> String {
    format!(r#"{{"channelName": "{channel}", "messages": [{{"messageId": "{id}", "payload": {{"v": 1}}}}]}}"#)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Reads until the server closes; returns what it sent and how long that took.
fn until_closed(s: &mut TcpStream) -> (String, Duration) {
    let t = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).to_string(), t.elapsed())
}

#[test]
fn slow_idle_and_greedy_http_clients_starve_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--http-header-timeout", "1s", "--http-body-timeout", "2s", "--ingest-memory", "4MiB"];
    let db = Fleetdb::start_with(dir.path(), &flags, &[]);
    ok(db.psql("CREATE CHANNEL c"), "channel");
    // Sixteen clients declare 16 MiB bodies (64 times the budget together) and send nothing.
    let mut idle: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = connect(db.http_port);
            let head = "POST /messages/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16777216\r\n\r\n";
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    // Slowloris: a header byte every 300 ms.
    let slow: Vec<std::thread::JoinHandle<(String, Duration)>> = (0..20)
        .map(|_| {
            let mut s = connect(db.http_port);
            std::thread::spawn(move || {
                let t = Instant::now();
                for b in b"POST /messages/batch HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n" {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                let (text, _) = until_closed(&mut s);
                (text, t.elapsed())
            })
        })
        .collect();
    // A chunked NDJSON body that never ends, ten bytes a second.
    let trickle = {
        let mut s = connect(db.http_port);
        std::thread::spawn(move || {
            let head = "POST /channels/c/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
            s.write_all(head.as_bytes()).unwrap();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(8) {
                if s.write_all(b"9\r\n{\"v\": 1}\n\r\n").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1000));
            }
            until_closed(&mut s)
        })
    };
    // Meanwhile the well-behaved are served.
    for i in 0..5 {
        let (status, text) = http_post(db.http_port, "/messages/batch", batch("c", &i.to_string()).as_bytes());
        assert_eq!(status, 200, "{text}");
    }
    // A declared 1 GB body is refused at once.
    let mut s = connect(db.http_port);
    s.write_all(b"POST /messages/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{}").unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 413");
    // The idle ones are answered 408 within the body timeout and closed.
    for s in &mut idle {
        let (text, took) = until_closed(s);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(took < Duration::from_secs(6), "{took:?}");
    }
    for h in slow {
        let (text, took) = h.join().unwrap();
        assert!(took < Duration::from_secs(8), "a slowloris client was kept {took:?}: {text}");
    }
    let (text, _) = trickle.join().unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let (status, _) = http_post(db.http_port, "/messages/batch", batch("c", "last").as_bytes());
    assert_eq!(status, 200);
    assert_eq!(ok(db.psql("SELECT count(*) FROM c"), "count"), "count\n6\n");
}

#[test]
fn past_the_maximum_idle_connections_make_room_and_busy_ones_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--http-max-connections", "4"], &[]);
    // Four connections that never send a byte hold every slot: a client with a request gets
    // in all the same, and the connection idle longest is the one closed for it.
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let s = connect(db.http_port);
            std::thread::sleep(Duration::from_millis(50));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for round in 0..3 {
        let (status, _) = http_post(db.http_port, "/messages/batch", batch("nowhere", "1").as_bytes());
        assert_eq!(status, 404, "round {round}: served although idle connections held every slot");
    }
    let (text, took) = until_closed(&mut held[0]);
    assert!(text.is_empty() && took < Duration::from_secs(2), "the oldest idle connection was closed: {text:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    // Four connections in the middle of a request (a body still arriving) are not closed for
    // another: past them, 503.
    let busy: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(db.http_port);
            s.write_all(b"POST /messages/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = connect(db.http_port);
    let (text, took) = until_closed(&mut extra);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(busy);
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = http_post(db.http_port, "/messages/batch", batch("nowhere", "1").as_bytes());
    assert_eq!(status, 404, "served again once connections closed");
}

#[test]
fn metrics_label_only_existing_channels_and_stay_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL real_one"), "channel");
    http_post(db.http_port, "/messages/batch", batch("real_one", "1").as_bytes());
    http_post(
        db.http_port,
        "/messages/batch",
        br#"{"channelName": "real_one", "messages": [{"messageId": "2", "payload": "***"}]}"#,
    );
    for i in 0..500 {
        let (status, _) = http_post(db.http_port, "/messages/batch", batch(&format!("made_up_{i}"), "1").as_bytes());
        assert_eq!(status, 404);
    }
    let (status, _) = http_post(db.http_port, "/messages/batch", batch("new\\nline\\\"quote", "1").as_bytes());
    assert_eq!(status, 404);
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/metrics", db.http_port)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.len() < 8192, "{} bytes of metrics", text.len());
    assert!(!text.contains("made_up"), "{text}");
    assert!(
        text.contains("fleetdb_messages_rejected_total{channel=\"(unknown channel)\",source=\"http_batch\"} 501"),
        "{text}"
    );
    assert!(text.contains("fleetdb_messages_rejected_total{channel=\"real_one\",source=\"http_batch\"} 1"), "{text}");
    // Every line is a comment or `name{labels} value`, as the text format requires.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("fleetdb_") && (!series.contains('{') || series.ends_with('}')), "{line}");
    }
}

#[test]
fn running_out_of_file_descriptors_never_closes_a_listener() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_through(&["prlimit", "--nofile=96:96", "--"], dir.path(), &[], &[]);
    ok(db.psql("CREATE CHANNEL c"), "channel");
    // Far more connections than descriptors: the server runs out while accepting.
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..150 {
        held.push(connect(db.port));
        held.push(connect(db.http_port));
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    std::thread::sleep(Duration::from_millis(1500));
    // Both listeners serve again.
    assert_eq!(ok(db.psql("SELECT 1 AS one"), "select"), "one\n1\n");
    let (status, text) = http_post(db.http_port, "/messages/batch", batch("c", "after").as_bytes());
    assert_eq!(status, 200, "{text}");
    // The log says what happened (it may reach the test's reader a moment after it is written).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut err = db.log();
    while !err.contains("connections again") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        err = db.log();
    }
    assert!(
        err.contains("accepting a SQL connection failed") || err.contains("accepting an HTTP connection failed"),
        "{err}"
    );
    assert!(err.contains("connections again"), "{err}");
}
