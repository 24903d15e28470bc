//! The PostgreSQL protocol spoken byte by byte, as a hostile or broken client would: messages
//! larger than their limit before and after authentication, connections that never
//! authenticate or sit idle, more connections than allowed, Bind messages whose format codes
//! do not fit, and result descriptions too wide to send. Each gets PostgreSQL's answer and the
//! server goes on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Fleetdb;

/// A frontend that writes messages by hand.
struct Raw {
    s: TcpStream,
    /// BackendKeyData: (process id, secret key).
    key: Option<(u32, u32)>,
}

type Msg = (u8, Vec<u8>);

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw { s, key: None }
    }

    fn startup_bytes(user: &str) -> Vec<u8> {
        let mut body = 196608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", "fleetdb")] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        m.extend(body);
        m
    }

    /// Starts a trusted session and reads up to ReadyForQuery.
    fn session(port: u16) -> Raw {
        let mut r = Raw::connect(port);
        r.s.write_all(&Raw::startup_bytes("fleetdb")).unwrap();
        let msgs = r.until_ready();
        assert!(msgs.iter().any(|(k, b)| *k == b'R' && b[..4] == [0, 0, 0, 0]), "{msgs:?}");
        r.key = msgs
            .iter()
            .find(|(k, _)| *k == b'K')
            .map(|(_, b)| (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]])));
        r
    }

    /// Sends a CancelRequest for this session on a connection of its own.
    fn cancel(&self, port: u16) {
        let (pid, secret) = self.key.expect("BackendKeyData");
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut m = 16u32.to_be_bytes().to_vec();
        m.extend(80877102u32.to_be_bytes());
        m.extend(pid.to_be_bytes());
        m.extend(secret.to_be_bytes());
        c.write_all(&m).unwrap();
        let _ = c.read(&mut [0u8; 16]);
    }

    fn send(&mut self, kind: u8, body: &[u8]) {
        let _ = self.s.write_all(&message(kind, body));
    }

    /// The next message, or None at the end of the stream.
    fn read(&mut self) -> Option<Msg> {
        let mut head = [0u8; 5];
        self.s.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.s.read_exact(&mut body).ok()?;
        Some((head[0], body))
    }

    fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = self.read() {
            let done = m.0 == b'Z';
            out.push(m);
            if done {
                break;
            }
        }
        out
    }

    fn query(&mut self, sql: &str) -> Vec<Msg> {
        self.send(b'Q', &cstr(sql));
        self.until_ready()
    }
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// (severity, SQLSTATE) of the first ErrorResponse among `msgs`.
fn error_of(msgs: &[Msg]) -> Option<(String, String)> {
    let (_, body) = msgs.iter().find(|(k, _)| *k == b'E')?;
    let mut sev = String::new();
    let mut code = String::new();
    for field in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let text = String::from_utf8_lossy(&field[1..]).to_string();
        match field[0] {
            b'V' | b'S' => sev = text,
            b'C' => code = text,
            _ => {}
        }
    }
    Some((sev, code))
}

fn data_rows(msgs: &[Msg]) -> usize {
    msgs.iter().filter(|(k, _)| *k == b'D').count()
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap()
}

/// Reads everything until the server closes, with the error it sent on the way. As with
/// PostgreSQL, a FATAL error is the last message (no ReadyForQuery after it).
fn closed_with(r: &mut Raw) -> Option<(String, String)> {
    let mut msgs = Vec::new();
    while let Some(m) = r.read() {
        msgs.push(m);
    }
    let err = error_of(&msgs);
    if err.as_ref().is_some_and(|(sev, _)| sev == "FATAL") {
        let kinds: Vec<char> = msgs.iter().map(|(k, _)| *k as char).collect();
        assert_eq!(kinds.last(), Some(&'E'), "messages after the FATAL error: {kinds:?}");
    }
    err
}

#[test]
fn messages_over_their_limit_are_refused_at_their_head() {
    // Before authentication (a password is set): a query declaring 1 GB, four times at once,
    // and a startup packet declaring 1 GB. Each is refused from its first five bytes.
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &[], &[("FLEETDB_PASSWORD", "secret")]);
    let before = vm_hwm_kb(db.child.id());
    let mut conns: Vec<Raw> = (0..4)
        .map(|_| {
            let mut r = Raw::connect(db.port);
            r.s.write_all(&Raw::startup_bytes("fleetdb")).unwrap();
            let (k, _) = r.read().unwrap();
            assert_eq!(k, b'R', "SASL authentication is asked for");
            r
        })
        .collect();
    let chunk = vec![b' '; 1 << 20];
    for r in &mut conns {
        let _ = r.s.write_all(&[b'Q', 0x3f, 0xff, 0xff, 0xff]);
        for _ in 0..64 {
            if r.s.write_all(&chunk).is_err() {
                break;
            }
        }
    }
    for r in &mut conns {
        assert_eq!(closed_with(r), Some(("FATAL".into(), "54000".into())));
    }
    let mut r = Raw::connect(db.port);
    r.s.write_all(&[0x3f, 0xff, 0xff, 0xff, 0, 3, 0, 0]).unwrap();
    assert_eq!(closed_with(&mut r), Some(("FATAL".into(), "54000".into())));
    let mut r = Raw::connect(db.port);
    r.s.write_all(&Raw::startup_bytes("fleetdb")).unwrap();
    r.read().unwrap();
    r.send(b'p', &vec![b'x'; 20_000]);
    assert_eq!(closed_with(&mut r), Some(("FATAL".into(), "54000".into())));
    let grew_mb = (vm_hwm_kb(db.child.id()) - before) / 1024;
    assert!(grew_mb < 32, "the server buffered what it refused: +{grew_mb} MB");
    drop(db);

    // After authentication: a simple query over the limit gets 54000 and the session goes on;
    // any other message over it ends the connection.
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--max-message-size", "1MiB"], &[]);
    let mut r = Raw::session(db.port);
    let big = format!("SELECT 1 {}", " ".repeat(2 << 20));
    let msgs = r.query(&big);
    assert_eq!(error_of(&msgs), Some(("ERROR".into(), "54000".into())));
    assert_eq!(data_rows(&r.query("SELECT 1")), 1);
    let mut parse = cstr("");
    parse.extend(cstr(&big));
    parse.extend([0, 0]);
    r.send(b'P', &parse);
    assert_eq!(closed_with(&mut r), Some(("FATAL".into(), "54000".into())));
    let mut r = Raw::session(db.port);
    r.send(b'Q', b"SELECT 1");
    let _ = r.s.write_all(&[b'S', 0, 0, 0, 2]);
    let _ = r.s.write_all(&[b'S', 0, 0, 0, 0]);
    assert_eq!(closed_with(&mut r).map(|e| e.1), Some("08P01".into()), "a length under 4");
    assert_eq!(data_rows(&Raw::session(db.port).query("SELECT 1")), 1);
}

#[test]
fn connections_that_never_authenticate_or_sit_idle_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--authentication-timeout", "1s"], &[("FLEETDB_PASSWORD", "pw")]);
    // Silent, then slow: neither finishes its startup within the timeout.
    let mut silent = Raw::connect(db.port);
    let mut slow = Raw::connect(db.port);
    let t = Instant::now();
    let startup = Raw::startup_bytes("fleetdb");
    let writer = std::thread::spawn(move || {
        for b in startup {
            if slow.s.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        slow
    });
    assert_eq!(closed_with(&mut silent), Some(("FATAL".into(), "08006".into())));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let mut slow = writer.join().unwrap();
    assert_eq!(closed_with(&mut slow), Some(("FATAL".into(), "08006".into())));
    drop(db);

    // A session's own idle_session_timeout, and the server's.
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--idle-session-timeout", "2s"], &[]);
    let mut r = Raw::session(db.port);
    let shown = r.query("SHOW idle_session_timeout");
    assert!(shown.iter().any(|(k, b)| *k == b'D' && String::from_utf8_lossy(b).contains("2000ms")), "{shown:?}");
    r.query("SET idle_session_timeout = '300ms'");
    let t = Instant::now();
    assert_eq!(closed_with(&mut r), Some(("FATAL".into(), "57P05".into())));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let mut r = Raw::session(db.port);
    r.query("BEGIN");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(data_rows(&r.query("SELECT 1")), 1, "not while a transaction is open");
    r.query("COMMIT");
    assert_eq!(closed_with(&mut r), Some(("FATAL".into(), "57P05".into())));
}

#[test]
fn connections_past_the_maximum_get_53300_and_cancels_still_get_through() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--max-connections", "2"], &[]);
    let mut a = Raw::session(db.port);
    let _b = Raw::session(db.port);
    let mut c = Raw::connect(db.port);
    c.s.write_all(&Raw::startup_bytes("fleetdb")).unwrap();
    assert_eq!(closed_with(&mut c), Some(("FATAL".into(), "53300".into())));
    // A cancel request (a connection of its own) still gets through.
    a.send(b'Q', &cstr("SELECT pg_sleep(30)"));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    a.cancel(db.port);
    assert_eq!(error_of(&a.until_ready()).map(|e| e.1), Some("57014".into()));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(data_rows(&a.query("SELECT 1")), 1);
    drop(a);
    // The slot frees once the server has read the end of a's connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut r = Raw::connect(db.port);
        r.s.write_all(&Raw::startup_bytes("fleetdb")).unwrap();
        let msgs = r.until_ready();
        if error_of(&msgs).is_none() {
            assert_eq!(data_rows(&r.query("SELECT 1")), 1);
            break;
        }
        assert_eq!(error_of(&msgs).map(|e| e.1), Some("53300".into()));
        assert!(Instant::now() < deadline, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bind_format_codes_that_do_not_fit_are_refused_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let mut r = Raw::session(db.port);
    let bind = |formats: &[i16], params: &[&[u8]], result_formats: &[i16]| {
        let mut b = cstr("");
        b.extend(cstr(""));
        b.extend((formats.len() as u16).to_be_bytes());
        formats.iter().for_each(|f| b.extend(f.to_be_bytes()));
        b.extend((params.len() as u16).to_be_bytes());
        for p in params {
            b.extend((p.len() as u32).to_be_bytes());
            b.extend(*p);
        }
        b.extend((result_formats.len() as u16).to_be_bytes());
        result_formats.iter().for_each(|f| b.extend(f.to_be_bytes()));
        b
    };
    let mut parse = cstr("");
    parse.extend(cstr("SELECT 1 AS a, $1::int AS b, 'x' AS c"));
    parse.extend([0, 0]);
    for (b, want) in [
        (bind(&[], &[b"5"], &[0, 1]), "08P01"),
        (bind(&[], &[b"5"], &[0, 1, 0, 1]), "08P01"),
        (bind(&[], &[b"5"], &[7]), "22023"),
        (bind(&[0, 0], &[b"5"], &[]), "08P01"),
        (bind(&[], &[], &[]), "08P01"),
        (bind(&[], &[b"5", b"6"], &[]), "08P01"),
    ] {
        r.send(b'P', &parse);
        r.send(b'B', &b);
        r.send(b'E', &[0, 0, 0, 0, 0]);
        r.send(b'S', &[]);
        let msgs = r.until_ready();
        assert_eq!(error_of(&msgs).map(|e| e.1), Some(want.to_string()), "{msgs:?}");
        // Refused at Bind, as PostgreSQL does: ParseComplete, then the error, no BindComplete.
        let kinds: Vec<char> = msgs.iter().map(|(k, _)| *k as char).collect();
        assert_eq!(kinds, ['1', 'E', 'Z'], "{want}");
    }
    // The described statement says text for every column; the portal what Bind asked for.
    r.send(b'P', &parse);
    r.send(b'D', &cstr("S"));
    r.send(b'B', &bind(&[], &[b"5"], &[1, 0, 1]));
    r.send(b'D', &cstr("P"));
    r.send(b'E', &[0, 0, 0, 0, 0]);
    r.send(b'S', &[]);
    let msgs = r.until_ready();
    let descriptions: Vec<Vec<i16>> = msgs
        .iter()
        .filter(|(k, _)| *k == b'T')
        .map(|(_, b)| {
            let n = u16::from_be_bytes([b[0], b[1]]) as usize;
            let mut at = 2;
            (0..n)
                .map(|_| {
                    at += b[at..].iter().position(|&c| c == 0).unwrap() + 1 + 16;
                    let f = i16::from_be_bytes([b[at], b[at + 1]]);
                    at += 2;
                    f
                })
                .collect()
        })
        .collect();
    assert_eq!(descriptions, vec![vec![0, 0, 0], vec![1, 0, 1]]);
    let row = &msgs.iter().find(|(k, _)| *k == b'D').unwrap().1;
    assert_eq!(&row[2..10], &[0, 0, 0, 4, 0, 0, 0, 1], "a binary int4 1");
    assert_eq!(data_rows(&r.query("SELECT 1")), 1);
    // A Parse whose body ends before the parameter types it announces: 08P01, and only
    // this connection ends.
    let mut bad = cstr("s");
    bad.extend(cstr("SELECT $1::int"));
    bad.extend([0, 3, 0, 0]);
    r.send(b'P', &bad);
    r.send(b'S', &[]);
    assert_eq!(closed_with(&mut r).map(|e| e.1), Some("08P01".into()));
    assert_eq!(data_rows(&Raw::session(db.port).query("SELECT 1")), 1);
}

#[test]
fn results_wider_than_the_protocol_allows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let mut r = Raw::session(db.port);
    let wide = format!("SELECT {}", vec!["1"; 2_000].join(", "));
    assert_eq!(error_of(&r.query(&wide)).map(|e| e.1), Some("54011".into()));
    let star =
        format!("SELECT * FROM (SELECT {}) a, (SELECT {}) b", vec!["1"; 1_000].join(", "), vec!["2"; 1_000].join(", "));
    assert_eq!(error_of(&r.query(&star)).map(|e| e.1), Some("54011".into()));
    let mut parse = cstr("");
    parse.extend(cstr(&star));
    parse.extend([0, 0]);
    r.send(b'P', &parse);
    r.send(b'D', &cstr("S"));
    r.send(b'S', &[]);
    assert_eq!(error_of(&r.until_ready()).map(|e| e.1), Some("54011".into()));
    let wide_ok = format!("SELECT {}", vec!["1"; 1_664].join(", "));
    assert_eq!(data_rows(&r.query(&wide_ok)), 1);
}

#[test]
fn malformed_extended_protocol_messages_end_the_connection_with_08p01_before_they_are_decoded() {
    // Each of these made pgwire's decoder read past the message's end (a panic, caught); the
    // framing now refuses them from their fields, as PostgreSQL does: FATAL 08P01.
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let cases: [(u8, &[u8], &str); 6] = [
        (b'B', b"", "B message ends before its last field"),
        (b'B', b"\0\0\0\x05", "B message ends before its last field"),
        (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xf0\0\0", "B message gives a parameter a negative length"),
        (b'P', b"s\0SELECT 1\0\0\x09", "P message ends before its last field"),
        (b'E', b"\0\0", "E message ends before its last field"),
        (b'D', b"Q\0", "D message names neither a statement (S) nor a portal (P)"),
    ];
    for (kind, body, why) in cases {
        let mut r = Raw::session(db.port);
        r.send(kind, body);
        r.send(b'S', b"");
        let mut msgs = Vec::new();
        while let Some(m) = r.read() {
            msgs.push(m);
        }
        assert_eq!(error_of(&msgs), Some(("FATAL".into(), "08P01".into())), "{}", kind as char);
        let text = String::from_utf8_lossy(&msgs.last().unwrap().1).to_string();
        assert!(text.contains(why), "{text}");
    }
    assert_eq!(data_rows(&Raw::session(db.port).query("SELECT 1")), 1);
    assert!(!db.log().contains("internal error (caught)"), "{}", db.log());
}
