//! Datasets against the real server with psql: the DESIGN's dataset as written, refreshed and
//! read, then the server SIGKILLed and its content read again.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, Fleetdb, eventually, lines, ok};

#[test]
fn a_dataset_materializes_its_query_and_keeps_its_content_through_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(
            "CREATE DATASTORE factory_processed_datastore; \
             INSERT INTO factory_processed_datastore (time, machine_id, vibration) VALUES \
               (now() - interval '1 hour', 'M-1', 1.5), (now() - interval '2 hours', 'M-1', 2.5), \
               (now() - interval '3 days', 'M-1', 100), (now(), 'M-2', 4); \
             CREATE DATASET factory_health_dataset AS
               SELECT machine_id, AVG(vibration) AS avg_vibration_24hr
               FROM factory_processed_datastore
               WHERE time > NOW() - INTERVAL '1' DAY
               GROUP BY machine_id
               WITH (schedule = 'rate(1 hour)', versions = 10);",
        ),
        "setup",
    );
    assert_eq!(lines(&db, "REFRESH DATASET factory_health_dataset"), ["1|SUCCEEDED|2|NULL"]);
    let want = ["M-1|2", "M-2|4"];
    assert_eq!(lines(&db, "SELECT * FROM factory_health_dataset ORDER BY 1"), want);
    ok(
        db.psql("INSERT INTO factory_processed_datastore (time, machine_id, vibration) VALUES (now(), 'M-3', 7)"),
        "more",
    );
    assert_eq!(lines(&db, "REFRESH DATASET factory_health_dataset"), ["2|SUCCEEDED|3|NULL"]);
    let show = lines(&db, "SHOW DATASETS");
    assert!(show[0].starts_with("factory_health_dataset|rate(1 hour)|10|"), "{show:?}");
    assert!(show[0].contains("|2|SUCCEEDED|"), "{show:?}");
    db.kill();
    let db = Fleetdb::start(dir.path());
    assert_eq!(lines(&db, "SELECT count(*) FROM factory_health_dataset"), ["3"]);
    assert_eq!(lines(&db, "SELECT * FROM dataset_content('factory_health_dataset', '1') ORDER BY 1"), want);
    let contents = lines(&db, "SHOW DATASET CONTENTS factory_health_dataset");
    assert_eq!(contents.len(), 2);
    assert!(contents[0].starts_with("2|SUCCEEDED|") && contents[1].starts_with("1|SUCCEEDED|"), "{contents:?}");
}

/// The DESIGN's five steps as a user types them into psql, with a real Mosquitto broker:
/// channel and route, reference table, datastore, pipeline, dataset. Messages published with
/// mosquitto_pub flow through to the dataset, whose content is delivered back over MQTT to a
/// mosquitto_sub subscriber, one JSON message per row.
#[test]
fn the_seed_steps_run_from_mqtt_to_a_delivered_dataset() {
    let Some(broker) = Broker::start_if_installed() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--mqtt", &broker.url()], &[]);
    ok(
        db.psql(
            "CREATE CHANNEL factory_sensor_channel WITH (retention = '90 days');
             CREATE ROUTE factory_rule FROM MQTT 'iot/factory/#' INTO CHANNEL factory_sensor_channel;
             CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT);
             INSERT INTO machines VALUES ('M-1', 'press', 'hall A'), ('M-2', 'lathe', 'hall B');
             CREATE DATASTORE factory_processed_datastore WITH (retention = '365 days');
             CREATE PIPELINE factory_pipeline
               FROM CHANNEL factory_sensor_channel
               FILTER vibration > 0
               MATH temperature_f = (temperature * 9 / 5) + 32
               ENRICH FROM machines ON machine_id
               REMOVE ATTRIBUTES (debug_flags)
               INTO DATASTORE factory_processed_datastore
               WITH (timestamp = 'timestamp');
             CREATE DATASET factory_health_dataset AS
               SELECT machine_id, location, AVG(vibration) AS avg_vibration_24hr, max(temperature_f) AS max_f
               FROM factory_processed_datastore
               WHERE time > NOW() - INTERVAL '1' DAY
               GROUP BY machine_id, location ORDER BY machine_id
               WITH (schedule = 'rate(1 hour)', versions = 10)
               DELIVER TO MQTT 'alerts/health';",
        ),
        "the five steps",
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let messages = [
        ("M-1", 1.0, 20.0, 600),
        ("M-1", 3.0, 30.0, 300),
        ("M-2", 5.0, 10.0, 120),
        ("M-2", 0.0, 99.0, 60),         // filtered: no vibration
        ("M-2", 7.0, 40.0, 3 * 86_400), // older than a day: outside the dataset
    ];
    for (m, vib, temp, ago) in messages {
        let payload = format!(
            r#"{{"machine_id": "{m}", "vibration": {vib}, "temperature": {temp}, "debug_flags": 1, "timestamp": {}}}"#,
            now - ago
        );
        let out = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1", "-t", "iot/factory/line1"])
            .args(["-m", &payload])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    eventually(&db, "SELECT count(*) FROM factory_processed_datastore", &["4"]);
    let sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1", "-t", "alerts/health", "-C", "2"])
        .args(["-W", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The subscriber is in place once the broker counts it.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&db, "REFRESH DATASET factory_health_dataset"), ["1|SUCCEEDED|2|NULL"]);
    let want = ["M-1|hall A|2|86", "M-2|hall B|5|50"];
    assert_eq!(lines(&db, "SELECT * FROM factory_health_dataset"), want);
    let out = sub.wait_with_output().unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            r#"{"machine_id": "M-1", "location": "hall A", "avg_vibration_24hr": 2, "max_f": 86}"#,
            r#"{"machine_id": "M-2", "location": "hall B", "avg_vibration_24hr": 5, "max_f": 50}"#,
        ]
    );
    eventually(
        &db,
        "SELECT event, detail FROM fleetdb.dataset_events",
        &["delivered|mqtt 'alerts/health': 2 messages to alerts/health"],
    );
}

/// A program dataset: a small Python script reads the input dataset's CSV and its params,
/// writes a CSV that becomes the content, and runs whenever the input succeeds. Others fail
/// (with their stderr as the reason) or time out; each keeps its output.
#[test]
fn program_datasets_run_python_fail_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("score.py");
    std::fs::write(
        &script,
        "import csv, json, os, sys\n\
         p = json.load(open(os.environ['FLEETDB_PARAMS']))\n\
         rows = list(csv.DictReader(open(p['inputFile'])))\n\
         print('scoring', len(rows), 'machines for version', p['versionId'])\n\
         with open(p['outputFile'], 'w', newline='') as f:\n\
         \x20   w = csv.writer(f)\n\
         \x20   w.writerow(['machine_id', 'score', 'at_risk'])\n\
         \x20   for r in rows:\n\
         \x20       s = float(r['avg_v']) * p['variables']['weight']\n\
         \x20       w.writerow([r['machine_id'], s, s > p['variables']['threshold']])\n",
    )
    .unwrap();
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(&format!(
            "CREATE DATASTORE d; \
             INSERT INTO d (time, machine_id, v) VALUES (now(), 'M-1', 1), (now(), 'M-1', 3), (now(), 'M-2', 10); \
             CREATE DATASET health AS SELECT machine_id, avg(v) AS avg_v FROM d GROUP BY machine_id ORDER BY 1; \
             CREATE DATASET scores AS PROGRAM 'python3 {}' INPUT health \
               WITH (variables = (weight = 2, threshold = 5.5), timeout = '30 seconds', memory_limit = '1 GB'); \
             CREATE DATASET crashes AS PROGRAM 'echo model file missing >&2; exit 3' INPUT health; \
             CREATE DATASET hangs AS PROGRAM 'sleep 30' INPUT health WITH (timeout = '1 second');",
            script.display()
        )),
        "setup",
    );
    // Nothing ran yet: no rows, and no columns to speak of.
    assert_eq!(lines(&db, "SELECT count(*) FROM scores"), ["0"]);
    assert_eq!(lines(&db, "REFRESH DATASET health"), ["1|SUCCEEDED|2|NULL"]);
    // The input's success ran the three programs.
    assert_eq!(lines(&db, "SELECT * FROM scores"), ["M-1|4|f", "M-2|20|t"]);
    assert_eq!(
        lines(&db, "SELECT stream, line, text FROM dataset_logs('scores', 1)"),
        ["stdout|1|scoring 2 machines for version 1"]
    );
    let show = lines(&db, "SHOW DATASETS");
    let row = |name: &str| show.iter().find(|l| l.starts_with(&format!("{name}|"))).cloned().unwrap_or_default();
    assert!(row("crashes").contains("|FAILED|") && row("crashes").contains("(exit status: 3): model file missing"));
    assert!(row("hangs").contains("|FAILED|") && row("hangs").contains("timed out after 1 s"), "{show:?}");
    assert_eq!(lines(&db, "SELECT text FROM dataset_logs('crashes', 1)"), ["model file missing"]);
    // Types come from the values: the score is a number SQL can compute with.
    assert_eq!(lines(&db, "SELECT sum(score) FROM scores WHERE at_risk"), ["20"]);
    // The input cannot be dropped from under its program.
    let out = db.psql("DROP DATASET health");
    assert!(String::from_utf8_lossy(&out.stderr).contains("input of program dataset"), "{out:?}");
}

/// Deliveries to a file and to a webhook that fails twice: retried with backoff, each
/// failure and the success in fleetdb.dataset_events, the file written whole.
#[test]
fn deliveries_are_retried_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = hook.local_addr().unwrap().port();
    let server = webhook(hook, &["503 Busy", "503 Busy", "204 No Content"]);
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(&format!(
            "CREATE DATASTORE d; INSERT INTO d (time, machine_id, v) VALUES (now(), 'M-1', 1.5), (now(), 'M-2, \"east\"', NULL); \
             CREATE DATASET out AS SELECT machine_id, v FROM d ORDER BY 1 \
               DELIVER TO FILE 'exports/!{{iotanalytics:versionId}}.csv' \
               DELIVER TO WEBHOOK 'http://127.0.0.1:{hook_port}/hook';"
        )),
        "setup",
    );
    assert_eq!(lines(&db, "REFRESH DATASET out"), ["1|SUCCEEDED|2|NULL"]);
    let bodies = server.join().unwrap();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies[2].contains(r#""rows": [{"machine_id": "M-1", "v": 1.5}, {"machine_id": "M-2, \"east\"", "v": null}]"#),
        "{}",
        bodies[2]
    );
    assert!(bodies[2].starts_with(r#"{"datasetName": "out", "versionId": "1""#), "{}", bodies[2]);
    eventually(
        &db,
        "SELECT event, count(*) FROM fleetdb.dataset_events GROUP BY event ORDER BY event",
        &["delivered|2", "delivery_failed|2"],
    );
    let failed = lines(&db, "SELECT detail FROM fleetdb.dataset_events WHERE event = 'delivery_failed' ORDER BY time");
    assert!(failed[0].contains("attempt 1") && failed[0].contains("HTTP 503") && failed[0].contains("next in 1 s"));
    assert!(failed[1].contains("attempt 2") && failed[1].contains("next in 2 s"), "{failed:?}");
    let csv = std::fs::read_to_string(dir.path().join("exports/1.csv")).unwrap();
    assert_eq!(csv, "machine_id,v\nM-1,1.5\n\"M-2, \"\"east\"\"\",\n");
}

/// A webhook receiver on `listener`: answers each request with the next status of `answers`,
/// then returns the bodies it received.
fn webhook(listener: std::net::TcpListener, answers: &[&str]) -> std::thread::JoinHandle<Vec<String>> {
    use std::io::{Read, Write};
    let answers: Vec<String> = answers.iter().map(std::string::ToString::to_string).collect();
    std::thread::spawn(move || {
        let mut bodies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        listener.set_nonblocking(true).unwrap();
        for answer in answers {
            let mut c = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(Instant::now() < deadline, "no delivery arrived in 60 s");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("webhook: {e}"),
                }
            };
            c.set_nonblocking(false).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // The headers, then the body by its length.
            loop {
                let n = c.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if req.len() >= end + 4 + len {
                        bodies.push(text[end + 4..].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ =
                c.write_all(format!("HTTP/1.1 {answer}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
        bodies
    })
}

/// A delivery still pending when the server is SIGKILLed is made after the restart.
#[test]
fn pending_deliveries_resume_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = common::free_port();
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(&format!(
            "CREATE DATASTORE d; INSERT INTO d (time, v) VALUES (now(), 1), (now(), 2); \
             CREATE DATASET total AS SELECT sum(v) AS s FROM d DELIVER TO WEBHOOK 'http://127.0.0.1:{hook_port}/hook';"
        )),
        "setup",
    );
    assert_eq!(lines(&db, "REFRESH DATASET total"), ["1|SUCCEEDED|1|NULL"]);
    // Nobody listens yet: the first attempt fails.
    eventually(&db, "SELECT count(*) FROM fleetdb.dataset_events WHERE event = 'delivery_failed'", &["1"]);
    db.kill();
    let server = webhook(std::net::TcpListener::bind(("127.0.0.1", hook_port)).unwrap(), &["200 OK"]);
    let db = Fleetdb::start(dir.path());
    let bodies = server.join().unwrap();
    assert!(bodies[0].starts_with(r#"{"datasetName": "total", "versionId": "1""#), "{bodies:?}");
    assert!(bodies[0].ends_with(r#""rows": [{"s": 3}]}"#), "{bodies:?}");
    eventually(&db, "SELECT event FROM fleetdb.dataset_events ORDER BY time", &["delivery_failed", "delivered"]);
    // Done: nothing is pending any more.
    assert!(!dir.path().join("datasets/total/deliveries").exists());
}
