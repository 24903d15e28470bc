//! Ingestion through real clients: curl and boto3's `iotanalytics` client against the HTTP API
//! (BatchPutMessage, NDJSON, health, metrics), psql for COPY and INSERT into channels, and
//! what comes back out of the channel and `fleetdb.rejected_messages`, also after SIGKILL.

mod common;

use std::process::{Command, Stdio};

use common::{Fleetdb, http_post, lines, ok};

fn get(port: u16, path: &str) -> String {
    let out = Command::new("curl").args(["-s", "-f"]).arg(format!("http://127.0.0.1:{port}{path}")).output().unwrap();
    assert!(out.status.success(), "GET {path} failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn batch_put_message_keeps_good_messages_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL factory_sensor_channel"), "create");
    // The AWS example body as users bring it: base64 payloads.
    let example = std::fs::read("tests/http/batch-put-message.json").unwrap();
    let (status, text) = http_post(db.http_port, "/messages/batch", &example);
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with(r#"{"batchPutMessageErrorEntries":[]}"#), "{text}");
    // Inline JSON and base64 mixed with every kind of bad message.
    let big = format!(r#"{{"v": "{}"}}"#, "x".repeat(130 * 1024));
    let body = format!(
        r#"{{"channelName": "factory_sensor_channel", "messages": [
            {{"messageId": "3", "payload": {{"machine_id": "M-0003", "engine": {{"temp": 80}}}}}},
            {{"messageId": "4", "payload": "eyJhIjogMX0="}},
            {{"messageId": "5", "payload": "%%%"}},
            {{"messageId": "6", "payload": "eyJhIjog"}},
            {{"messageId": "7", "payload": {{"bad name": 1}}}},
            {{"messageId": "8", "payload": {big}}},
            {{"messageId": "3", "payload": {{"machine_id": "again"}}}}
        ]}}"#
    );
    let (status, text) = http_post(db.http_port, "/messages/batch", body.as_bytes());
    assert_eq!(status, 200, "{text}");
    let entries: Vec<&str> = text.split("{\"messageId\":").skip(1).collect();
    let ids: Vec<&str> = entries.iter().map(|e| e.split('"').nth(1).unwrap()).collect();
    assert_eq!(ids, ["5", "6", "7", "8", "3"], "{text}");
    assert!(entries.iter().all(|e| e.contains(r#""errorCode":"InvalidRequestException""#)), "{text}");
    assert!(text.contains("payload is not valid base64") && text.contains("invalid attribute name"));
    assert!(text.contains("the limit is 131072") && text.contains("duplicate messageId"), "{text}");
    // The whole request is refused for a bad shape, an unknown channel or too many messages.
    let (status, text) = http_post(db.http_port, "/messages/batch", b"{not json");
    assert_eq!(status, 400);
    assert!(text.to_ascii_lowercase().contains("x-amzn-errortype: invalidrequestexception"), "{text}");
    let (status, text) = http_post(
        db.http_port,
        "/messages/batch",
        br#"{"channelName": "nope", "messages": [{"messageId": "1", "payload": {"a": 1}}]}"#,
    );
    assert_eq!(status, 404);
    assert!(text.to_ascii_lowercase().contains("x-amzn-errortype: resourcenotfoundexception"), "{text}");
    let many: Vec<String> = (0..101).map(|i| format!(r#"{{"messageId": "{i}", "payload": {{}}}}"#)).collect();
    let body = format!(r#"{{"channelName": "factory_sensor_channel", "messages": [{}]}}"#, many.join(","));
    assert_eq!(http_post(db.http_port, "/messages/batch", body.as_bytes()).0, 400);

    assert_eq!(
        lines(&db, "SELECT __message_id, payload->>'machine_id' FROM factory_sensor_channel ORDER BY __offset"),
        ["1|M-0001", "2|M-0002", "3|M-0003", "4|NULL"]
    );
    // Every refused message is on record with its reason and bytes.
    assert_eq!(
        lines(
            &db,
            "SELECT source, channel, message_id, left(reason, 24), left(raw, 12) FROM fleetdb.rejected_messages ORDER BY message_id"
        ),
        [
            "http_batch|nope|1|channel nope does not ex|{\"a\": 1}".to_string(),
            "http_batch|factory_sensor_channel|3|duplicate messageId \"3\" |{\"machine_id".into(),
            "http_batch|factory_sensor_channel|5|payload is not valid bas|{\"messageId\"".into(),
            "http_batch|factory_sensor_channel|6|payload is not valid JSO|{\"a\": ".into(),
            "http_batch|factory_sensor_channel|7|invalid attribute name \"|{\"bad name\":".into(),
            format!("http_batch|factory_sensor_channel|8|payload is {} bytes;|{{\"v\": \"xxxxx", big.len()),
        ]
    );
    let metrics = get(db.http_port, "/metrics");
    assert!(
        metrics.contains(r#"fleetdb_messages_received_total{channel="factory_sensor_channel",source="http_batch"} 4"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"fleetdb_messages_rejected_total{channel="factory_sensor_channel",source="http_batch"} 5"#)
    );
    assert!(metrics.contains(r#"fleetdb_ingest_latency_seconds_count{source="http_batch"} 2"#), "{metrics}");
    assert_eq!(get(db.http_port, "/health"), r#"{"status":"ok"}"#);
}

#[test]
fn ndjson_copy_and_insert_reach_the_channel_and_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL c WITH (retention = '30 days')"), "create");
    // NDJSON: 5,000 lines with a blank line, a bad line and a line without its newline.
    let mut body = String::new();
    for i in 0..5_000 {
        body.push_str(&format!("{{\"machine_id\": \"M-{:04}\", \"seq\": {i}}}\n", i % 50));
        if i == 10 {
            body.push_str("\n{\"oops\" 1}\n");
        }
    }
    body.push_str(r#"{"machine_id": "last", "seq": 5000}"#);
    let (status, text) = http_post(db.http_port, "/channels/c/messages", body.as_bytes());
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(r#"{"accepted":5001,"rejected":1,"errors":[{"line":13,"error":"payload is not valid JSON"#),
        "{text}"
    );
    assert_eq!(http_post(db.http_port, "/channels/nope/messages", b"{}\n").0, 404);
    // COPY (NDJSON lines) and INSERT over SQL.
    let mut copy = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &db.port.to_string(),
            "-U",
            "fleetdb",
            "fleetdb",
            "-c",
            "COPY c FROM STDIN",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut copy.stdin.take().unwrap(), b"{\"seq\": -1}\nnot json\n{\"seq\": -2}\n").unwrap();
    let out = copy.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "COPY 2");
    ok(
        db.psql(r#"INSERT INTO c (payload, __message_id, __topic) VALUES ('{"seq": -3}', 'sql-1', 'manual/entry')"#),
        "insert",
    );
    assert_eq!(
        lines(
            &db,
            "SELECT count(*), count(DISTINCT __message_id), min((payload->>'seq')::int), max((payload->>'seq')::int) FROM c"
        ),
        ["5004|5004|-3|5000"]
    );
    assert_eq!(lines(&db, "SELECT __topic FROM c WHERE __message_id = 'sql-1'"), ["manual/entry"]);
    assert_eq!(lines(&db, "SELECT count(*) FROM c WHERE __received_at > now() - interval '1 hour'"), ["5004"]);
    assert_eq!(lines(&db, "SELECT count(*) FROM fleetdb.rejected_messages"), ["3"]);
    let sample = lines(&db, "SAMPLE CHANNEL c LIMIT 4");
    assert_eq!(sample.len(), 4, "{sample:?}");
    // Acknowledged means durable: a SIGKILL right after loses nothing.
    db.kill();
    let db = Fleetdb::start(dir.path());
    assert_eq!(lines(&db, "SELECT count(*) FROM c"), ["5004"]);
    assert_eq!(lines(&db, "SELECT count(*) FROM fleetdb.rejected_messages"), ["3"]);
}

#[test]
fn boto3_iotanalytics_client_speaks_to_fleetdb() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL factory_sensor_channel"), "create");
    // tools/test.sh installs boto3 < 1.42 into target/py-boto3 (newer botocore lacks the
    // iotanalytics model).
    let out = Command::new("python3")
        .env("PYTHONPATH", "target/py-boto3")
        .args(["tests/http/boto3_client.py", &db.http_port.to_string()])
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "status 200",
            "entry b2 InvalidRequestException payload is not valid JSON",
            "entry b3 InvalidRequestException invalid attribute name \"bad-name\"",
            "entry b1 InvalidRequestException duplicate messageId \"b1\" in the batch",
            "error ResourceNotFoundException 404",
            "error InvalidRequestException 400",
        ]
    );
    assert_eq!(lines(&db, "SELECT payload->>'machine_id' FROM factory_sensor_channel"), ["M-0007"]);
}

#[test]
fn configured_limits_apply_and_a_full_budget_answers_503_with_retry_after() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--batch-messages", "3", "--message-bytes", "1KiB", "--ingest-memory", "1MiB"];
    let db = Fleetdb::start_with(dir.path(), &flags, &[]);
    ok(db.psql("CREATE CHANNEL c"), "create");
    let msg =
        |id: usize, size: usize| format!(r#"{{"messageId": "{id}", "payload": {{"pad": "{}"}}}}"#, "x".repeat(size));
    let batch = |msgs: &[String]| format!(r#"{{"channelName": "c", "messages": [{}]}}"#, msgs.join(","));
    // Four messages are over the configured three.
    let (status, body) =
        http_post(db.http_port, "/messages/batch", batch(&(0..4).map(|i| msg(i, 10)).collect::<Vec<_>>()).as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("1 to 3 entries"), "{body}");
    // A message over the configured 1 KiB is refused on its own; the others are stored.
    let (status, body) = http_post(db.http_port, "/messages/batch", batch(&[msg(1, 10), msg(2, 2000)]).as_bytes());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""messageId":"2""#) && body.contains("InvalidRequestException"), "{body}");
    assert_eq!(lines(&db, "SELECT count(*) FROM c"), ["1"]);
    // Slow senders hold the 1 MiB budget: each declares a body and sends all of it but its
    // last byte. The server takes the budget as the bytes arrive (not as declared) and answers
    // 503 at once when they do not fit. Big bodies first, then small ones, until the budget
    // has less room left than the batch that follows needs.
    let mut slow = Vec::new();
    for (declared, count) in [(70_000, 16), (1_000, 80)] {
        let opened: Vec<std::net::TcpStream> = (0..count)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", db.http_port)).unwrap();
                write!(s, "POST /messages/batch HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n{{").unwrap();
                let _ = s.write_all(&vec![b' '; declared - 2]);
                s
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let refused = opened
            .iter()
            .filter(|s: &&std::net::TcpStream| {
                use std::io::Read;
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 512];
                matches!((&mut &**s).read(&mut buf), Ok(n) if n > 0 && String::from_utf8_lossy(&buf[..n]).contains(" 503 "))
            })
            .count();
        assert!(refused >= 1, "{count} requests of {declared} bytes all fit in the 1 MiB budget");
        slow.extend(opened);
    }
    let full = http_post(db.http_port, "/messages/batch", batch(&[msg(3, 900), msg(4, 900)]).as_bytes());
    assert_eq!(full.0, 503, "{}", full.1);
    let head = full.1.to_ascii_lowercase();
    assert!(head.contains("\nretry-after: 1\r\n"), "{}", full.1);
    assert!(head.contains("\nx-amzn-errortype: serviceunavailableexception\r\n"), "{}", full.1);
    let metrics = get(db.http_port, "/metrics");
    assert!(metrics.lines().any(|l| l.starts_with("fleetdb_http_throttled_total ") && !l.ends_with(" 0")), "{metrics}");
    // When the slow senders go away, their share comes back and the retry is stored.
    drop(slow);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = http_post(db.http_port, "/messages/batch", batch(&[msg(3, 900), msg(4, 900)]).as_bytes());
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "budget never came back: {status} {body}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(lines(&db, "SELECT count(*) FROM c"), ["3"]);
}
