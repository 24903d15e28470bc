//! MQTT ingestion against a real Mosquitto broker (Debian package `mosquitto`, started here
//! on a free loopback port): routes with wildcards, batch mode and shared groups; publishers
//! mosquitto_pub, paho-mqtt (Python) and rumqttc; and SIGKILLs of fleetdb in the middle of a
//! QoS 1 stream, after which every published message is stored exactly once.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fleetdb, free_port, ok};

/// A Mosquitto broker on a free loopback port, with persistence in its own directory.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, free_port())
    }

    fn start_in(dir: tempfile::TempDir, port: u16) -> Broker {
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                // `user root`: run as root (as CI does), mosquitto would otherwise switch to its
                // own user, which cannot write the persistence file in this directory.
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
                 max_queued_messages 1000000\nmax_inflight_messages 200\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new(mosquitto_bin())
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto (tools/test.sh installs the Debian package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, port, dir }
    }

    /// Stops the broker cleanly (it saves its queues) and starts it again on the same port.
    fn restart(mut self) -> Broker {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let (port, dir) = (self.port, std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()));
        std::mem::forget(self);
        Broker::start_in(dir, port)
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosquitto_bin() -> &'static str {
    if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" }
}

fn start(dir: &Path, broker: &Broker) -> Fleetdb {
    Fleetdb::start_with(dir, &["--mqtt", &broker.url()], &[])
}

fn lines(db: &Fleetdb, sql: &str) -> Vec<String> {
    ok(db.psql(sql), sql).lines().skip(1).map(str::to_string).collect()
}

/// Waits until `sql` answers `want` (messages arrive asynchronously).
fn eventually(db: &Fleetdb, sql: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = lines(db, sql);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: still {got:?}, expected {want:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let broker = Broker::start();
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
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let db = start(dir.path(), &broker);
    ok(db.psql("CREATE CHANNEL stream; CREATE ROUTE s FROM MQTT 'load/#' INTO CHANNEL stream"), "setup");
    // Let the subscription settle: the persistent session queues what follows.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&db, "SELECT count(*) FROM stream") == ["0"] {
        assert!(Instant::now() < deadline, "route never delivered");
        mosquitto_pub(&broker, "load/probe", r#"{"seq": -1}"#);
        std::thread::sleep(Duration::from_millis(200));
    }
    let probes: i64 = lines(&db, "SELECT count(*) FROM stream")[0].parse().unwrap();
    const N: u64 = 100_000;
    let port = broker.port;
    let publisher = std::thread::spawn(move || rumqttc_publish(port, "load/machines", 0..N));
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
        kills_mid_stream += usize::from(last < N as i64 + probes);
        db.kill();
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        db = start(dir.path(), &broker);
    }
    publisher.join().unwrap();
    assert!(kills_mid_stream >= 2, "fleetdb had stored the whole stream before the kills: publish more messages");
    let want = (N as i64 + probes).to_string();
    eventually(&db, "SELECT count(*) FROM stream", &[want.as_str()]);
    assert_eq!(
        lines(
            &db,
            "SELECT count(DISTINCT (payload->>'seq')::int), min((payload->>'seq')::int), max((payload->>'seq')::int) \
             FROM stream WHERE __topic = 'load/machines'"
        ),
        [format!("{N}|0|{}", N - 1)]
    );
    // And nothing more arrives later (no late duplicates).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(&db, "SELECT count(*) FROM stream"), [want]);
}
