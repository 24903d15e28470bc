//! MQTT ingestion against a real Mosquitto broker (Debian package `mosquitto`, started here
//! on a free loopback port): routes with wildcards, batch mode and shared groups; publishers
//! mosquitto_pub, paho-mqtt (Python) and rumqttc; and SIGKILLs of fleetdb in the middle of a
//! QoS 1 stream, after which every published message is stored exactly once.
//!
//! The same route and kill checks also run against rumqttd inside this test process, so a
//! plain `cargo test` checks MQTT ingestion where Mosquitto is not installed. The Mosquitto
//! tests say they were skipped in that case, unless `FLEETDB_REQUIRE_MOSQUITTO=1` (set by
//! tools/test.sh) makes a missing Mosquitto a failure.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Broker, Fleetdb, eventually, lines, ok, rumqttc_send, rumqttd};

fn start(dir: &Path, broker: &Broker) -> Fleetdb {
    Fleetdb::start_with(dir, &["--mqtt", &broker.url()], &[])
}

fn mosquitto_pub(broker: &Broker, topic: &str, message: &str) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1", "-t", topic, "-m", message])
        .output()
        .expect("running mosquitto_pub");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Publishes `{"seq": i}` for i in `range` at QoS 1 with rumqttc, waiting for every PUBACK.
fn rumqttc_publish(port: u16, topic: &str, range: std::ops::Range<u64>) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut o = MqttOptions::new(format!("pub-{}-{}", std::process::id(), range.start), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(100);
    let (client, mut conn) = Client::new(o, 1000);
    let n = range.end - range.start;
    let topic = topic.to_string();
    let sender = std::thread::spawn(move || {
        for i in range {
            client.publish(topic.clone(), QoS::AtLeastOnce, false, format!("{{\"seq\": {i}}}")).unwrap();
        }
        client
    });
    let mut acked = 0;
    for ev in conn.iter() {
        match ev {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked += 1;
                if acked == n {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("publisher: {e}"),
        }
    }
    let client = sender.join().unwrap();
    let _ = client.disconnect();
}

#[test]
fn routes_take_messages_from_every_kind_of_publisher() {
    let Some(broker) = Broker::start_if_installed() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = start(dir.path(), &broker);
    ok(db.psql("CREATE CHANNEL factory; CREATE CHANNEL other"), "channels");
    ok(
        db.psql(
            "CREATE ROUTE r1 FROM MQTT 'iot/factory/+/telemetry' INTO CHANNEL factory WITH (qos = 1, batch_mode = true); \
             CREATE ROUTE r2 FROM MQTT 'iot/other/#' INTO CHANNEL other WITH (shared_group = 'fleetdb')",
        ),
        "routes",
    );
    for (sql, state) in [
        ("CREATE ROUTE r1 FROM MQTT 'x' INTO CHANNEL factory", "42710"),
        ("CREATE ROUTE r3 FROM MQTT 'x' INTO CHANNEL nope", "42704"),
        ("CREATE ROUTE r3 FROM MQTT 'a/#/b' INTO CHANNEL factory", "22023"),
        ("CREATE ROUTE r3 FROM MQTT 'x' INTO CHANNEL factory WITH (qos = 2)", "22023"),
        ("DROP ROUTE nope", "42704"),
    ] {
        let out = db.psql(sql);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(&format!("ERROR:  {state}")), "{sql}: {err}");
    }
    assert_eq!(
        lines(&db, "SHOW ROUTES"),
        ["r1|iot/factory/+/telemetry|factory|1|true|NULL", "r2|iot/other/#|other|1|false|fleetdb"]
    );
    // Subscriptions are made asynchronously; wait until the first message gets through.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&db, "SELECT count(*) FROM factory") == ["0"] {
        assert!(Instant::now() < deadline, "route r1 never delivered");
        mosquitto_pub(&broker, "iot/factory/m0/telemetry", r#"{"machine_id": "M-0", "probe": true}"#);
        std::thread::sleep(Duration::from_millis(200));
    }
    let before: i64 = lines(&db, "SELECT count(*) FROM factory")[0].parse().unwrap();
    mosquitto_pub(&broker, "iot/factory/m1/telemetry", r#"{"machine_id": "M-1", "vibration": 2.5}"#);
    mosquitto_pub(
        &broker,
        "iot/factory/m2/telemetry",
        r#"[{"machine_id": "M-2", "v": 1}, {"machine_id": "M-2", "v": 2}]"#,
    );
    mosquitto_pub(&broker, "iot/factory/m3/telemetry", "not json");
    mosquitto_pub(&broker, "iot/factory/m4/status", r#"{"ignored": "no route matches"}"#);
    mosquitto_pub(&broker, "iot/other/deep/topic", r#"{"machine_id": "M-9"}"#);
    let paho = Command::new("python3")
        .args(["tests/mqtt/paho_publish.py", &broker.port.to_string(), "iot/factory/m5/telemetry", "3"])
        .output()
        .expect("running python3");
    assert!(paho.status.success(), "paho-mqtt: {}", String::from_utf8_lossy(&paho.stderr));
    rumqttc_publish(broker.port, "iot/factory/m6/telemetry", 0..50);
    eventually(&db, &format!("SELECT count(*) - {before} FROM factory"), &["56"]);
    assert_eq!(
        lines(
            &db,
            "SELECT __topic, payload->>'machine_id', payload->>'v' FROM factory \
             WHERE __topic IN ('iot/factory/m1/telemetry', 'iot/factory/m2/telemetry') ORDER BY __offset"
        ),
        ["iot/factory/m1/telemetry|M-1|NULL", "iot/factory/m2/telemetry|M-2|1", "iot/factory/m2/telemetry|M-2|2"]
    );
    assert_eq!(lines(&db, "SELECT count(*) FROM factory WHERE __topic = 'iot/factory/m5/telemetry'"), ["3"]);
    eventually(&db, "SELECT __topic, payload->>'machine_id' FROM other", &["iot/other/deep/topic|M-9"]);
    assert_eq!(
        lines(&db, "SELECT source, channel, left(reason, 25) FROM fleetdb.rejected_messages ORDER BY reason"),
        ["mqtt|factory|payload is not valid JSON"]
    );
    // Dropping a route stops its messages; they are not silently lost either way.
    ok(db.psql("DROP ROUTE r2"), "drop");
    assert_eq!(lines(&db, "SHOW ROUTES").len(), 1);
    let metrics =
        Command::new("curl").args(["-s", &format!("http://127.0.0.1:{}/metrics", db.http_port)]).output().unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(metrics.contains(r#"fleetdb_messages_received_total{channel="other",source="mqtt"} 1"#), "{metrics}");
    // Routes survive a restart, and so does the broker's session: messages published while
    // fleetdb is down arrive when it is back.
    let db = {
        db.stop();
        mosquitto_pub(&broker, "iot/factory/m7/telemetry", r#"{"machine_id": "M-7"}"#);
        start(dir.path(), &broker)
    };
    assert_eq!(lines(&db, "SHOW ROUTES"), ["r1|iot/factory/+/telemetry|factory|1|true|NULL"]);
    eventually(&db, "SELECT count(*) FROM factory WHERE __topic = 'iot/factory/m7/telemetry'", &["1"]);
    // A broker restart: fleetdb reconnects with backoff and picks up where it was.
    let broker = broker.restart();
    mosquitto_pub(&broker, "iot/factory/m8/telemetry", r#"{"machine_id": "M-8"}"#);
    eventually(&db, "SELECT count(*) FROM factory WHERE __topic = 'iot/factory/m8/telemetry'", &["1"]);
}

#[test]
fn sigkill_during_a_qos1_stream_stores_every_message_exactly_once() {
    let Some(broker) = Broker::start_if_installed() else { return };
    sigkill_during_a_qos1_stream(broker.port, 100_000, Redelivery::MarkedDup, || {
        mosquitto_pub(&broker, "load/probe", r#"{"seq": -1}"#);
    });
}

/// How a broker re-sends the messages whose PUBACK it did not get before a disconnect.
#[derive(PartialEq)]
enum Redelivery {
    /// With the DUP flag, as MQTT 3.1.1 §4.4 requires (Mosquitto): fleetdb recognises the
    /// ones it already stored, so every message is stored exactly once.
    MarkedDup,
    /// Without the DUP flag (rumqttd 0.19 replays its log as fresh messages): fleetdb cannot
    /// tell a re-send from a new message that happens to be equal, so it stores both. Nothing
    /// is lost, and the extra copies are at most the in-flight window per kill.
    Unmarked { in_flight: i64 },
}

/// Streams `n` QoS 1 messages from rumqttc through the broker on `port` while fleetdb is
/// SIGKILLed four times, then checks that every message is stored, exactly once where the
/// broker marks re-sends. `probe` publishes one message on `load/probe`.
fn sigkill_during_a_qos1_stream(port: u16, n: u64, redelivery: Redelivery, probe: impl Fn()) {
    let url = format!("mqtt://127.0.0.1:{port}");
    let start = |dir: &Path| Fleetdb::start_with(dir, &["--mqtt", &url], &[]);
    let dir = tempfile::tempdir().unwrap();
    let db = start(dir.path());
    ok(db.psql("CREATE CHANNEL stream; CREATE ROUTE s FROM MQTT 'load/#' INTO CHANNEL stream"), "setup");
    // Let the subscription settle: the persistent session queues what follows.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&db, "SELECT count(*) FROM stream") == ["0"] {
        assert!(Instant::now() < deadline, "route never delivered");
        probe();
        std::thread::sleep(Duration::from_millis(200));
    }
    let probes: i64 = lines(&db, "SELECT count(*) FROM stream")[0].parse().unwrap();
    let publisher = std::thread::spawn(move || rumqttc_publish(port, "load/machines", 0..n));
    let mut db = db;
    let mut rng = fleetdb::sim::Rng::new(7);
    let mut kills_mid_stream = 0;
    // Each kill waits for the stream to make progress since the last restart, then strikes a
    // moment later, so the kills land mid-stream however fast this machine ingests.
    let stored = |db: &Fleetdb| -> i64 { lines(db, "SELECT count(*) FROM stream")[0].parse().unwrap() };
    let mut last = probes;
    for _ in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored(&db) <= last && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(40)));
        last = stored(&db);
        kills_mid_stream += usize::from(last < n as i64 + probes);
        db.kill();
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        db = start(dir.path());
    }
    publisher.join().unwrap();
    assert!(kills_mid_stream >= 2, "fleetdb had stored the whole stream before the kills: publish more messages");
    let want = n as i64 + probes;
    let count_seq = "SELECT count(DISTINCT (payload->>'seq')::int), min((payload->>'seq')::int), \
                     max((payload->>'seq')::int) FROM stream WHERE __topic = 'load/machines'";
    match redelivery {
        Redelivery::MarkedDup => {
            eventually(&db, "SELECT count(*) FROM stream", &[want.to_string().as_str()]);
            assert_eq!(lines(&db, count_seq), [format!("{n}|0|{}", n - 1)]);
            // And nothing more arrives later (no late duplicates).
            std::thread::sleep(Duration::from_secs(1));
            assert_eq!(lines(&db, "SELECT count(*) FROM stream"), [want.to_string()]);
        }
        Redelivery::Unmarked { in_flight } => {
            eventually(&db, count_seq, &[format!("{n}|0|{}", n - 1).as_str()]);
            std::thread::sleep(Duration::from_secs(1));
            let extra = stored(&db) - want;
            assert!((0..=4 * in_flight).contains(&extra), "{extra} extra copies after 4 kills");
        }
    }
}

/// A test CA and, signed by it, a server certificate for 127.0.0.1 and a client certificate,
/// made with the openssl command into `dir` (ca.pem, server.pem/.key, client.pem/.key).
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("running openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=fleetdb test CA"],
        ]
        .concat(),
    );
    for (name, ext) in [("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        openssl(
            &[&["req"], &ec[..], &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN=fleetdb test {name}")]]
                .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

#[test]
fn mqtts_with_a_client_certificate_and_a_password() {
    if Broker::start_if_installed().is_none() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let (ca, cert, key) = (c("ca.pem"), c("client.pem"), c("client.key"));
    let broker = Broker::start_tls(certs);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let tls = ["--mqtt", &url, "--mqtt-ca", &ca, "--mqtt-cert", &cert, "--mqtt-key", &key];
    let db = Fleetdb::start_with(
        dir.path(),
        &[&tls[..], &["--mqtt-username", "fleet", "--mqtt-password", "secret"]].concat(),
        &[],
    );
    ok(db.psql("CREATE CHANNEL secure; CREATE ROUTE r FROM MQTT 'secure/#' INTO CHANNEL secure"), "setup");
    let publish = |payload: &str| {
        let port = broker.port.to_string();
        let out = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-t", "secure/m1", "-m", payload])
            .args(["--cafile", &ca, "--cert", &cert, "--key", &key, "-u", "fleet", "-P", "secret"])
            .output()
            .expect("running mosquitto_pub");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&db, "SELECT count(*) FROM secure WHERE __topic = 'secure/m1'") == ["0"] {
        assert!(Instant::now() < deadline, "no message arrived over mqtts");
        publish(r#"{"machine_id": "M-1", "probe": true}"#);
        std::thread::sleep(Duration::from_millis(200));
    }
    publish(r#"{"machine_id": "M-1", "temperature": 71.5}"#);
    eventually(&db, "SELECT payload->>'temperature' FROM secure WHERE payload->>'probe' IS NULL", &["71.5"]);
    db.stop();
    // The broker refuses a client without the password, so nothing arrives through it: the
    // message published meanwhile waits for a client that may read it.
    let db = Fleetdb::start_with(dir.path(), &tls, &[]);
    publish(r#"{"machine_id": "M-1", "temperature": 72.0}"#);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lines(&db, "SELECT count(*) FROM secure WHERE payload->>'probe' IS NULL"), ["1"]);
}

#[test]
fn routes_work_with_an_in_process_rumqttd_broker() {
    let port = rumqttd();
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--mqtt", &format!("mqtt://127.0.0.1:{port}")], &[]);
    ok(
        db.psql(
            "CREATE CHANNEL factory; CREATE CHANNEL other; \
             CREATE ROUTE r1 FROM MQTT 'iot/factory/+/telemetry' INTO CHANNEL factory WITH (batch_mode = true); \
             CREATE ROUTE r2 FROM MQTT 'iot/other/#' INTO CHANNEL other WITH (shared_group = 'fleetdb')",
        ),
        "setup",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&db, "SELECT count(*) FROM factory") == ["0"] {
        assert!(Instant::now() < deadline, "route r1 never delivered");
        rumqttc_send(port, &[("iot/factory/m0/telemetry", r#"{"probe": true}"#)]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let before: i64 = lines(&db, "SELECT count(*) FROM factory")[0].parse().unwrap();
    rumqttc_send(
        port,
        &[
            ("iot/factory/m1/telemetry", r#"{"machine_id": "M-1", "vibration": 2.5}"#),
            ("iot/factory/m2/telemetry", r#"[{"machine_id": "M-2", "v": 1}, {"machine_id": "M-2", "v": 2}]"#),
            ("iot/factory/m3/telemetry", "not json"),
            ("iot/other/deep/topic", r#"{"machine_id": "M-9"}"#),
        ],
    );
    eventually(&db, &format!("SELECT count(*) - {before} FROM factory"), &["3"]);
    assert_eq!(
        lines(
            &db,
            "SELECT __topic, payload->>'machine_id', payload->>'v' FROM factory WHERE payload->>'probe' IS NULL ORDER BY __offset"
        ),
        ["iot/factory/m1/telemetry|M-1|NULL", "iot/factory/m2/telemetry|M-2|1", "iot/factory/m2/telemetry|M-2|2"]
    );
    eventually(&db, "SELECT __topic, payload->>'machine_id' FROM other", &["iot/other/deep/topic|M-9"]);
    eventually(
        &db,
        "SELECT source, channel, left(reason, 25) FROM fleetdb.rejected_messages",
        &["mqtt|factory|payload is not valid JSON"],
    );
}

#[test]
fn sigkill_during_a_qos1_stream_through_rumqttd_loses_nothing() {
    let port = rumqttd();
    let redelivery = Redelivery::Unmarked { in_flight: 500 };
    sigkill_during_a_qos1_stream(port, 50_000, redelivery, || rumqttc_send(port, &[("load/probe", r#"{"seq": -1}"#)]));
}
