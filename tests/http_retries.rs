//! Retrying HTTP ingest calls with `x-request-id`: a call cut off by a crash of the server
//! before its answer, sent again with the same id after the restart, stores exactly what was
//! missing; a batch sent twice is stored once.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Fleetdb, ok};

fn lines(from: usize, to: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in from..to {
        writeln!(b, r#"{{"n": {i}}}"#).unwrap();
    }
    b
}

/// POSTs NDJSON `body` with the request id; returns status and body.
fn post_ndjson(port: u16, rid: &str, body: &[u8]) -> (u16, String) {
    common::http_post_with_id(port, "/channels/c/messages", rid, body)
}

fn count(db: &Fleetdb) -> (u64, u64) {
    let out = ok(db.psql("SELECT count(*), count(DISTINCT __message_id) FROM c"), "count");
    let row = out.lines().nth(1).unwrap();
    let (a, b) = row.split_once('|').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn an_ndjson_call_cut_by_a_crash_is_retried_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL c"), "channel");
    let all = lines(0, 100_000);
    // The first attempt: half the body arrives, the server stores what it has whole chunks
    // of, and is killed before the call can be answered.
    let mut s = TcpStream::connect(("127.0.0.1", db.http_port)).unwrap();
    let head = format!(
        "POST /channels/c/messages HTTP/1.1\r\nHost: x\r\nx-request-id: load-7\r\nContent-Length: {}\r\n\r\n",
        all.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&all[..all.len() / 2]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&db).0 == 0 {
        assert!(Instant::now() < deadline, "no chunk was stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A chunk is visible to queries once appended and durable a group commit later; the kill
    // waits for that, so that some of the call is stored and the retry has something to skip.
    std::thread::sleep(Duration::from_millis(300));
    db.kill();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"), "the first attempt was never answered");
    let db = Fleetdb::start(dir.path());
    let (stored_before, _) = count(&db);
    assert!(stored_before > 0 && stored_before < 100_000, "{stored_before}");
    // The retry sends everything again under the same id.
    let (status, body) = post_ndjson(db.http_port, "load-7", &all);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!(r#""accepted":{}"#, 100_000 - stored_before)), "{body}");
    assert!(body.contains(&format!(r#""alreadyStored":{stored_before}"#)), "{body}");
    assert_eq!(count(&db), (100_000, 100_000));
    // Once more: nothing new. Another id is another call.
    let (status, body) = post_ndjson(db.http_port, "load-7", &all);
    assert!(status == 200 && body.contains(r#""accepted":0"#), "{body}");
    assert_eq!(count(&db), (100_000, 100_000));
    let (status, _) = post_ndjson(db.http_port, "load-8", &lines(0, 10));
    assert_eq!(status, 200);
    assert_eq!(count(&db).0, 100_010);
    let (status, body) = post_ndjson(db.http_port, "bad id", &lines(0, 1));
    assert!(status == 400 && body.contains("x-request-id"), "{body}");
}

#[test]
fn a_batch_sent_twice_with_one_request_id_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL c"), "channel");
    let body = r#"{"channelName": "c", "messages": [{"messageId": "a", "payload": {"v": 1}}, {"messageId": "b", "payload": {"v": 2}}]}"#;
    let send = |port: u16, rid: &str| {
        let (status, text) = common::http_post_with_id(port, "/messages/batch", rid, body.as_bytes());
        format!("{text}\n{status}")
    };
    assert!(send(db.http_port, "batch-1").ends_with("\n200"));
    // The server restarts in between: the id is remembered on disk.
    assert!(db.stop().success());
    let db = Fleetdb::start(dir.path());
    let again = send(db.http_port, "batch-1");
    assert!(again.starts_with(r#"{"batchPutMessageErrorEntries":[]}"#) && again.ends_with("\n200"), "{again}");
    assert_eq!(count(&db), (2, 2));
    assert!(send(db.http_port, "batch-2").ends_with("\n200"));
    assert_eq!(count(&db), (4, 2), "another id is another call (AWS message ids need not be unique across calls)");
}

/// A request id reused for other data is not answered as stored: a message whose payload
/// differs from what the first attempt stored under its id is refused (with its reason, and a
/// row in fleetdb.rejected_messages); the messages that match are skipped, the new ones stored.
#[test]
fn a_request_id_reused_with_other_data_refuses_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL c"), "channel");
    let first = r#"{"channelName": "c", "messages": [{"messageId": "a", "payload": {"v": 1}}, {"messageId": "b", "payload": {"v": 2}}]}"#;
    let (status, _) = common::http_post_with_id(db.http_port, "/messages/batch", "reuse-1", first.as_bytes());
    assert_eq!(status, 200);
    let other = r#"{"channelName": "c", "messages": [{"messageId": "a", "payload": {"v": 1}}, {"messageId": "b", "payload": {"v": 99}}, {"messageId": "c", "payload": {"v": 3}}]}"#;
    let (status, body) = common::http_post_with_id(db.http_port, "/messages/batch", "reuse-1", other.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""messageId":"b""#)
            && body.contains("different payload")
            && !body.contains(r#""messageId":"a""#),
        "{body}"
    );
    assert_eq!(count(&db), (3, 3), "a skipped, b refused, c stored");
    let v = ok(db.psql("SELECT payload->>'v' FROM c WHERE __message_id = 'b'"), "b");
    assert_eq!(v.lines().nth(1), Some("2"), "the first attempt's b stays: {v}");
    // NDJSON: line 2 changed, line 3 is new.
    let (status, _) = post_ndjson(db.http_port, "reuse-2", &lines(0, 2));
    assert_eq!(status, 200);
    let mut changed = lines(0, 1);
    changed.extend_from_slice(b"{\"n\": 1000}\n{\"n\": 2}\n");
    let (status, body) = post_ndjson(db.http_port, "reuse-2", &changed);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""accepted":1,"rejected":1,"alreadyStored":1"#)
            && body.contains(r#""line":2"#)
            && body.contains("different payload"),
        "{body}"
    );
    let refused =
        ok(db.psql("SELECT count(*) FROM fleetdb.rejected_messages WHERE reason LIKE '%different payload%'"), "r");
    assert_eq!(refused.lines().nth(1), Some("2"), "{refused}");
    assert_eq!(ok(db.psql("SELECT 1"), "alive").lines().nth(1), Some("1"));
}
