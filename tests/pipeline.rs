//! Pipelines end to end, against the real server: the seed scenario with messages arriving
//! over MQTT (rumqttd in this process) and HTTP (curl), queried with psql; and SIGKILLs of
//! the server while a pipeline works through a backlog, after which every channel message's
//! output is in the datastore exactly once.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fleetdb, eventually, http_post, lines, ok, rumqttc_send, rumqttd};

/// POSTs `body`; the answer's body, which must be a success.
fn post(port: u16, path: &str, body: &[u8]) -> String {
    let (status, text) = http_post(port, path, body);
    assert_eq!(status, 200, "POST {path}: {text}");
    text.split_once("\r\n\r\n").map_or(text.clone(), |(_, b)| b.to_string())
}

const SEED: &str = "
    CREATE CHANNEL factory_sensor_channel WITH (retention = '90 days');
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
      WITH (timestamp = 'timestamp');";

#[test]
fn the_seed_scenario_over_mqtt_and_http_reaches_the_datastore() {
    let port = rumqttd();
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--mqtt", &format!("mqtt://127.0.0.1:{port}")], &[]);
    ok(db.psql(SEED), "seed");
    // The route subscribes asynchronously: publish a probe until one arrives.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&db, "SELECT count(*) FROM factory_sensor_channel") == ["0"] {
        assert!(Instant::now() < deadline, "the route never delivered");
        rumqttc_send(port, &[("iot/factory/probe", r#"{"machine_id": "probe", "vibration": 0}"#)]);
        std::thread::sleep(Duration::from_millis(200));
    }
    rumqttc_send(
        port,
        &[
            (
                "iot/factory/m1",
                r#"{"machine_id": "M-1", "temperature": 20, "vibration": 0.5, "timestamp": "2026-11-26T08:00:00Z", "debug_flags": 3}"#,
            ),
            (
                "iot/factory/m2",
                r#"{"machine_id": "M-2", "temperature": 30, "vibration": 0, "timestamp": "2026-11-26T08:00:01Z"}"#,
            ),
        ],
    );
    let ndjson = concat!(
        r#"{"machine_id": "M-2", "temperature": "25", "vibration": 1.5, "timestamp": 1795680002}"#,
        "\n",
        r#"{"machine_id": "M-1", "temperature": "hot", "vibration": 2.0, "timestamp": 1795680003}"#,
        "\n"
    );
    let answer = post(db.http_port, "/channels/factory_sensor_channel/messages", ndjson.as_bytes());
    assert!(answer.contains(r#""accepted":2"#), "{answer}");
    let batch = r#"{"channelName": "factory_sensor_channel", "messages": [
        {"messageId": "b1", "payload": {"machine_id": "M-9", "temperature": 10, "vibration": 3, "timestamp": "2026-11-26T08:00:04Z"}}]}"#;
    post(db.http_port, "/messages/batch", batch.as_bytes());
    eventually(&db, "SELECT count(*) FROM factory_processed_datastore", &["3"]);
    assert_eq!(
        lines(
            &db,
            "SELECT time, machine_id, temperature_f, model_type, location FROM factory_processed_datastore ORDER BY time"
        ),
        [
            "2026-11-26 08:00:00+00|M-1|68|press|hall A",
            "2026-11-26 08:00:02+00|M-2|77|lathe|hall B",
            "2026-11-26 08:00:04+00|M-9|50|NULL|NULL",
        ]
    );
    // The removed attribute never became a column.
    let columns = lines(&db, "DESCRIBE DATASTORE factory_processed_datastore");
    assert!(!columns.iter().any(|c| c.starts_with("debug_flags")), "{columns:?}");
    // The message whose temperature is not a number is accounted for.
    eventually(
        &db,
        "SELECT pipeline, activity, left(reason, 40) FROM fleetdb.pipeline_errors",
        &["factory_pipeline|2 math|function operator * (text, integer) does"],
    );
    let show = lines(&db, "SHOW PIPELINES");
    let cols: Vec<&str> = show[0].split('|').collect();
    // in: probe(s) + 2 MQTT + 2 NDJSON + 1 batch; out 3; filtered: probe(s) + M-2's zero; errors 1.
    let probes: u64 = lines(&db, "SELECT count(*) FROM factory_sensor_channel WHERE __topic = 'iot/factory/probe'")[0]
        .parse()
        .unwrap();
    assert_eq!(cols[4..10], [&(probes + 5).to_string(), "3", &(probes + 1).to_string(), "1", "0", "0.000"]);
    // An update of the table applies to the messages that follow it.
    ok(db.psql("UPDATE machines SET location = 'hall C' WHERE machine_id = 'M-1'"), "update");
    rumqttc_send(
        port,
        &[(
            "iot/factory/m1",
            r#"{"machine_id": "M-1", "temperature": 21, "vibration": 0.7, "timestamp": "2026-11-26T09:00:00Z"}"#,
        )],
    );
    eventually(
        &db,
        "SELECT location FROM factory_processed_datastore WHERE machine_id = 'M-1' ORDER BY time",
        &["hall A", "hall C"],
    );
    // TEST PIPELINE shows each activity's output and stores nothing.
    let trace = lines(
        &db,
        r#"TEST PIPELINE factory_pipeline WITH '[{"machine_id": "M-2", "temperature": 100, "vibration": 1, "debug_flags": 1}]'"#,
    );
    assert_eq!(
        trace,
        [
            r#"0|input|{"machine_id": "M-2", "temperature": 100, "vibration": 1, "debug_flags": 1}|NULL"#,
            r#"1|FILTER vibration > 0|{"machine_id": "M-2", "temperature": 100, "vibration": 1, "debug_flags": 1}|NULL"#,
            r#"2|MATH temperature_f = (temperature * 9 / 5) + 32|{"machine_id": "M-2", "temperature": 100, "vibration": 1, "debug_flags": 1, "temperature_f": 212}|NULL"#,
            r#"3|ENRICH FROM machines ON machine_id|{"machine_id": "M-2", "temperature": 100, "vibration": 1, "debug_flags": 1, "temperature_f": 212, "model_type": "lathe", "location": "hall B"}|NULL"#,
            r#"4|REMOVE ATTRIBUTES (debug_flags)|{"machine_id": "M-2", "temperature": 100, "vibration": 1, "temperature_f": 212, "model_type": "lathe", "location": "hall B"}|NULL"#,
        ]
    );
    // ALTER replaces the activities for new messages; the pipeline survives a restart.
    ok(
        db.psql("ALTER PIPELINE factory_pipeline FILTER vibration > 10 MATH temperature_f = temperature * 2 INTO DATASTORE factory_processed_datastore"),
        "alter",
    );
    let db = {
        db.stop();
        Fleetdb::start_with(dir.path(), &["--mqtt", &format!("mqtt://127.0.0.1:{port}")], &[])
    };
    assert!(
        lines(&db, "DESCRIBE PIPELINE factory_pipeline")
            .contains(&"activities|FILTER vibration > 10 MATH temperature_f = temperature * 2".to_string())
    );
    let ndjson = concat!(
        r#"{"machine_id": "M-2", "temperature": 5, "vibration": 11, "timestamp": "2026-11-26T10:00:00Z"}"#,
        "\n",
        r#"{"machine_id": "M-2", "temperature": 5, "vibration": 5, "timestamp": "2026-11-26T10:00:01Z"}"#,
        "\n"
    );
    post(db.http_port, "/channels/factory_sensor_channel/messages", ndjson.as_bytes());
    eventually(&db, "SELECT count(*) FROM factory_processed_datastore", &["5"]);
    assert_eq!(
        lines(
            &db,
            "SELECT temperature_f, location FROM factory_processed_datastore WHERE time = '2026-11-26 10:00:00+00'"
        ),
        ["10|NULL"]
    );
    // Nothing was processed twice across the restart.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&db, "SELECT count(*) FROM factory_processed_datastore"), ["5"]);
}

#[test]
fn sigkill_while_a_pipeline_works_stores_each_message_output_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Fleetdb::start(dir.path());
    ok(
        db.psql(
            "CREATE CHANNEL raw; CREATE DATASTORE clean; \
             CREATE PIPELINE p FROM CHANNEL raw FILTER keep MATH twice = seq * 2 INTO DATASTORE clean; \
             CREATE DATASTORE dedup; \
             CREATE PIPELINE d FROM CHANNEL raw DEDUPLICATE ON (seq) WITHIN '1 hour' \
               LATEST (site) BY machine_id INTO DATASTORE dedup",
        ),
        "setup",
    );
    // Big enough that the stream is still running when the kill comes on a fast machine.
    const ROUND: u64 = 250_000;
    let mut rng = fleetdb::sim::Rng::new(11);
    let (mut sent, mut kills_mid_stream) = (0u64, 0);
    let count = |db: &Fleetdb, sql: &str| -> u64 { lines(db, sql)[0].parse().unwrap() };
    for _ in 0..5 {
        let mut body = String::new();
        // Every 7th message also repeats an earlier one (maybe from before the last kill);
        // only the first 50 messages carry the machine's site.
        let line = |seq: u64| {
            let site = if seq < 50 { format!(", \"site\": \"S-{seq}\"") } else { String::new() };
            format!(
                "{{\"seq\": {seq}, \"keep\": {}, \"machine_id\": \"M-{}\"{site}}}\n",
                !seq.is_multiple_of(3),
                seq % 50
            )
        };
        for seq in sent..sent + ROUND {
            body.push_str(&line(seq));
            if seq % 7 == 6 && seq >= 500 {
                body.push_str(&line(seq - 500));
            }
        }
        sent += ROUND;
        // The stream goes on while the server is killed: what was acknowledged is in the
        // channel, and the rest of the stream fails.
        let port = db.http_port;
        let sender = std::thread::spawn(move || {
            let mut child = Command::new("curl")
                .args([
                    "-s",
                    "-X",
                    "POST",
                    "--data-binary",
                    "@-",
                    &format!("http://127.0.0.1:{port}/channels/raw/messages"),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("running curl");
            let _ = child.stdin.take().unwrap().write_all(body.as_bytes());
            let _ = child.wait();
        });
        let before = count(&db, "SELECT count(*) FROM clean");
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(&db, "SELECT count(*) FROM clean") == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        // The pipeline keeps up with the stream, so while the stream runs it is at work.
        kills_mid_stream += usize::from(!sender.is_finished());
        db.kill();
        sender.join().unwrap();
        db = Fleetdb::start(dir.path());
    }
    assert!(kills_mid_stream >= 2, "the stream had ended before most kills: send more per round");
    // Every channel message that passes the filter is in the datastore exactly once.
    let passing = count(&db, "SELECT count(*) FROM raw WHERE (payload->>'keep')::boolean");
    assert!(passing > 0);
    eventually(&db, "SELECT count(*) FROM clean", &[passing.to_string().as_str()]);
    assert_eq!(lines(&db, "SELECT count(*) FILTER (WHERE twice <> seq * 2 OR NOT keep) FROM clean"), ["0"]);
    // Each seq as many times as the channel has it (the stream repeats some).
    assert_eq!(
        lines(
            &db,
            "SELECT count(*) FROM (SELECT seq, count(*) AS n FROM clean GROUP BY seq) a \
             FULL JOIN (SELECT (payload->>'seq')::float8 AS seq, count(*) AS n FROM raw \
                        WHERE (payload->>'keep')::boolean GROUP BY 1) b ON a.seq = b.seq \
             WHERE a.n IS DISTINCT FROM b.n"
        ),
        ["0"]
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&db, "SELECT count(*) FROM clean"), [passing.to_string()]);
    // DEDUPLICATE and LATEST kept their state through the kills: each seq once, every row
    // with its machine's site.
    let distinct = count(&db, "SELECT count(DISTINCT payload->>'seq') FROM raw");
    let total = count(&db, "SELECT count(*) FROM raw");
    assert!(total > distinct, "the stream repeats messages");
    eventually(&db, "SELECT count(*) FROM dedup", &[distinct.to_string().as_str()]);
    assert_eq!(
        lines(
            &db,
            "SELECT count(DISTINCT seq), count(*) FILTER (WHERE site IS DISTINCT FROM 'S-' || substr(machine_id, 3)) \
             FROM dedup"
        ),
        [format!("{distinct}|0")]
    );
}

#[test]
fn lambda_runs_a_program_and_records_failures_and_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pipeline/score.py");
    ok(
        db.psql(&format!(
            "CREATE CHANNEL c; CREATE DATASTORE ok_ds (m float8, score float8, v2 float8); CREATE DATASTORE fail_ds; CREATE DATASTORE hang_ds; \
             CREATE PIPELINE scored FROM CHANNEL c LAMBDA 'python3 {script}' WITH (batch_size = 2) MATH v2 = score * 2 INTO DATASTORE ok_ds; \
             CREATE PIPELINE failing FROM CHANNEL c LAMBDA 'python3 -c \"import sys; sys.exit(''model not loaded'')\"' INTO DATASTORE fail_ds; \
             CREATE PIPELINE hanging FROM CHANNEL c LAMBDA 'sleep 30' WITH (timeout = '1s') INTO DATASTORE hang_ds"
        )),
        "setup",
    );
    let ndjson =
        "{\"m\": 1, \"vibration\": 0.5}\n{\"m\": 2, \"vibration\": 2, \"drop\": true}\n{\"m\": 3, \"vibration\": 3}\n";
    post(db.http_port, "/channels/c/messages", ndjson.as_bytes());
    eventually(&db, "SELECT m, score, v2 FROM ok_ds ORDER BY m", &["1|5|10", "3|30|60"]);
    eventually(
        &db,
        "SELECT pipeline, activity, count(*), min(reason) FROM fleetdb.pipeline_errors GROUP BY 1, 2 ORDER BY 1",
        &[
            "failing|1 lambda|3|the program failed (exit status: 1): model not loaded",
            "hanging|1 lambda|3|the program timed out after 1 s",
        ],
    );
    // The failed messages stay in the channel, and the pipelines go on with new ones.
    assert_eq!(lines(&db, "SELECT count(*) FROM c"), ["3"]);
    let show = lines(&db, "SHOW PIPELINES");
    assert!(show.iter().all(|l| l.split('|').nth(8) == Some("0")), "{show:?}");
    assert!(show.iter().any(|l| l.starts_with("hanging|") && l.split('|').nth(7) == Some("3")), "{show:?}");
}

/// Waits for reprocessing `id` to end; its SHOW REPROCESSING line.
fn reprocessing_ends(db: &Fleetdb, id: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // id|pipeline|status|progress_pct|messages_done|messages_total|rows_deleted|rows_written|…
        let row: Vec<String> = lines(db, "SHOW REPROCESSING")
            .iter()
            .map(|l| l.split('|').map(String::from).collect::<Vec<_>>())
            .find(|r| r[0] == id)
            .unwrap_or_default();
        if row.len() > 7 && row[2] != "RUNNING" {
            let mut out = vec![row[2].clone()];
            out.extend_from_slice(&row[4..8]);
            return out;
        }
        let got = &row;
        assert!(Instant::now() < deadline, "reprocessing {id} still runs: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reprocess_replaces_the_rows_of_a_range_and_never_duplicates_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(
            "CREATE CHANNEL c; CREATE DATASTORE d; CREATE PIPELINE p FROM CHANNEL c MATH f = v * 2 INTO DATASTORE d",
        ),
        "setup",
    );
    // Three waves of 500 messages (v from 1), with the times between them noted.
    let wave = |from: u64| -> String { (from..from + 500).map(|v| format!("{{\"v\": {v}}}\n")).collect() };
    let now = || lines(&db, "SELECT now()")[0].clone();
    post(db.http_port, "/channels/c/messages", wave(1).as_bytes());
    eventually(&db, "SELECT count(*) FROM d", &["500"]);
    std::thread::sleep(Duration::from_millis(20));
    let t1 = now();
    post(db.http_port, "/channels/c/messages", wave(501).as_bytes());
    eventually(&db, "SELECT count(*) FROM d", &["1000"]);
    std::thread::sleep(Duration::from_millis(20));
    let t2 = now();
    post(db.http_port, "/channels/c/messages", wave(1001).as_bytes());
    eventually(&db, "SELECT count(*) FROM d", &["1500"]);
    // Lineage columns are there by name, not in SELECT *.
    assert_eq!(
        lines(&db, "SELECT * FROM d WHERE v = 7"),
        [lines(&db, "SELECT time, v, f, __dt FROM d WHERE v = 7")[0].clone()]
    );
    assert_eq!(lines(&db, "SELECT count(DISTINCT __offset), min(__offset), max(__offset) FROM d"), ["1500|0|1499"]);

    // A new definition, then the middle wave again.
    ok(db.psql("ALTER PIPELINE p MATH f = v * 3"), "alter");
    let id = lines(&db, &format!("REPROCESS PIPELINE p FROM '{t1}' TO '{t2}'"))[0].clone();
    assert_eq!(reprocessing_ends(&db, &id), ["SUCCEEDED", "500", "500", "500", "500"]);
    assert_eq!(
        lines(&db, "SELECT count(*), count(DISTINCT v), count(*) FILTER (WHERE f = v * 3) FROM d"),
        ["1500|1500|500"]
    );
    assert_eq!(lines(&db, "SELECT min(v), max(v) FROM d WHERE f = v * 3"), ["501|1000"]);
    // The whole channel, twice: still every message once.
    for _ in 0..2 {
        let id = lines(&db, "REPROCESS PIPELINE p")[0].clone();
        assert_eq!(reprocessing_ends(&db, &id), ["SUCCEEDED", "1500", "1500", "1500", "1500"]);
    }
    assert_eq!(
        lines(&db, "SELECT count(*), count(DISTINCT v), count(*) FILTER (WHERE f = v * 3) FROM d"),
        ["1500|1500|1500"]
    );
    // Bad requests.
    let err = |sql: &str| String::from_utf8_lossy(&db.psql(sql).stderr).to_string();
    assert!(err("REPROCESS PIPELINE nope").contains("42704"));
    assert!(err("REPROCESS PIPELINE p FROM 'yesterday-ish'").contains("22007"));
    assert!(err(&format!("CANCEL REPROCESSING {id}")).contains("has ended"));
    assert!(err("CANCEL REPROCESSING 999").contains("42704"));
}

#[test]
fn cancel_reprocessing_stops_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    // A slow program: each call of 10,000 messages takes 0.15 s more.
    ok(
        db.psql(
            "CREATE CHANNEL c; CREATE DATASTORE d; \
             CREATE PIPELINE slow FROM CHANNEL c LAMBDA 'sleep 0.15; cat' WITH (batch_size = 10000) INTO DATASTORE d",
        ),
        "setup",
    );
    let body: String = (0..300_000).map(|v| format!("{{\"v\": {v}}}\n")).collect();
    post(db.http_port, "/channels/c/messages", body.as_bytes());
    eventually(&db, "SELECT count(*) FROM d", &["300000"]);
    let id = lines(&db, "REPROCESS PIPELINE slow")[0].clone();
    assert!(db.psql("REPROCESS PIPELINE slow").stderr.windows(5).any(|w| w == b"55006"), "one at a time");
    ok(db.psql(&format!("CANCEL REPROCESSING {id}")), "cancel");
    let end = reprocessing_ends(&db, &id);
    assert_eq!(end[0], "CANCELLED");
    let done: u64 = end[1].parse().unwrap();
    assert!(done < 300_000, "stopped early: {end:?}");
    // The batches done were replaced, the rest kept: still every message once.
    assert_eq!(lines(&db, "SELECT count(*), count(DISTINCT v) FROM d"), ["300000|300000"]);
}

/// A pipeline whose every message fails, batch after batch, pauses with its reason (in SHOW
/// PIPELINES and `fleetdb.pipeline_errors`) instead of reading the whole channel and dropping
/// it; the messages after the pause wait in the channel, and ALTER PIPELINE resumes it with them.
#[test]
fn a_pipeline_whose_every_message_fails_pauses_and_resumes_after_alter() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(
        db.psql(
            "CREATE CHANNEL c; CREATE DATASTORE d (m float8, y float8); \
             CREATE PIPELINE p FROM CHANNEL c MATH y = 1 / (m - m) INTO DATASTORE d",
        ),
        "setup",
    );
    // Batches of 400 messages, one call at a time so that each is a batch of its own; a few
    // bad messages in a row do not pause the pipeline, a thousand over three batches do.
    let batch = |from: usize| -> String { (from..from + 400).map(|i| format!("{{\"m\": {i}}}\n")).collect() };
    let errors = |db: &Fleetdb| lines(db, "SELECT count(*) FROM fleetdb.pipeline_errors WHERE activity <> 'paused'");
    for (k, from) in [0, 400, 800].into_iter().enumerate() {
        post(db.http_port, "/channels/c/messages", batch(from).as_bytes());
        if k < 2 {
            eventually(&db, "SELECT count(*) FROM fleetdb.pipeline_errors", &[&((k + 1) * 400).to_string()]);
        }
    }
    eventually(&db, "SELECT count(*) FROM fleetdb.pipeline_errors WHERE activity = 'paused'", &["1"]);
    let show = lines(&db, "SHOW PIPELINES");
    assert!(
        show.iter().any(|l| l.contains("paused: every message of the last") && l.contains("division by zero")),
        "{show:?}"
    );
    // The third batch was not consumed: its errors are not recorded, its messages wait.
    assert_eq!(errors(&db), ["800"]);
    post(db.http_port, "/channels/c/messages", batch(1200).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(errors(&db), ["800"], "a paused pipeline reads nothing");
    ok(db.psql("ALTER PIPELINE p MATH y = m * 2"), "alter");
    eventually(&db, "SELECT count(*), min(m), max(y) FROM d", &["800|800|3198"]);
    assert_eq!(lines(&db, "SELECT 1"), ["1"]);
}
