//! Prepared statements through real clients, each run 12 times so that every client's switch
//! to named statements and binary results is crossed (pgjdbc's is in tests/jdbc.rs): psycopg
//! with text and binary cursors (tests/clients/prepared_psycopg.py), node-postgres with named
//! statements (tests/clients/prepared_node.js), and tokio-postgres with
//! typed and untyped parameters. Each runs against PostgreSQL and against fleetdb in the same
//! test and every line must be PostgreSQL's.

mod common;

use std::process::Command;

use common::{Fleetdb, Postgres};

fn lines_of(mut cmd: Command, what: &str) -> Vec<String> {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(str::to_string).collect()
}

fn compare(got: &[String], want: &[String], runs: usize) {
    assert_eq!(want.len(), runs, "{want:#?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn psycopg_prepared_and_binary_cursors_give_postgresql_values_on_every_run() {
    let run = |port: u16, flavour: &str, user: &str| {
        let mut c = Command::new("python3");
        c.args(["tests/clients/prepared_psycopg.py", &port.to_string(), flavour, user]);
        lines_of(c, &format!("psycopg against {flavour}"))
    };
    let pg = Postgres::start();
    let want = run(pg.port, "postgres", "postgres");
    assert!(want[0].starts_with("text q1 1 (1000, "), "{want:?}");
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    compare(&run(db.port, "fleetdb", "fleetdb"), &want, 2 * 5 * 12 + 2);
}

#[test]
fn node_postgres_named_statements_give_postgresql_values_on_every_run() {
    let run = |port: u16, flavour: &str, user: &str| {
        let mut c = Command::new("node");
        c.args(["tests/clients/prepared_node.js", &port.to_string(), flavour, user])
            .env("NODE_PATH", concat!(env!("CARGO_MANIFEST_DIR"), "/target/node/node_modules"));
        lines_of(c, &format!("node-postgres against {flavour}"))
    };
    let pg = Postgres::start();
    let want = run(pg.port, "postgres", "postgres");
    assert!(want[0].starts_with("text q1 1 [[1000,"), "{want:?}");
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    compare(&run(db.port, "fleetdb", "fleetdb"), &want, 3 * 12);
}

/// tokio-postgres reads every result in binary; parameters typed by the client, or left for
/// the server to infer.
async fn tokio_postgres_runs(port: u16, flavour: &str, user: &str) -> Vec<String> {
    use std::time::{Duration, UNIX_EPOCH};
    let conninfo = format!("host=127.0.0.1 port={port} user={user} dbname={user}");
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let create = if flavour == "fleetdb" {
        "CREATE DATASTORE readings (machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT)"
    } else {
        "CREATE TABLE readings (time TIMESTAMPTZ, machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT)"
    };
    client.batch_execute(create).await.unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let insert = client
        .prepare("INSERT INTO readings (time, machine_id, temperature, status) VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    for i in 0..500u64 {
        let (m, t, s) = (format!("M-{}", i % 7), 20.0 + (i % 50) as f64 * 0.25, (i % 3) as i64);
        client.execute(&insert, &[&(t0 + Duration::from_secs(60 * i)), &m, &t, &s]).await.unwrap();
    }
    let mut out = Vec::new();
    // Untyped: the server infers timestamptz for $1 (it is sent as the client's text).
    let untyped = client
        .prepare("SELECT count(*)::int AS n, max(temperature) AS t, min(time) FROM readings WHERE time > $1::text::timestamptz")
        .await
        .unwrap();
    let typed = client
        .prepare_typed(
            "SELECT count(*), sum(status)::bigint, max(time) FROM readings WHERE time >= $1 AND machine_id = $2",
            &[tokio_postgres::types::Type::TIMESTAMPTZ, tokio_postgres::types::Type::TEXT],
        )
        .await
        .unwrap();
    let inferred = client
        .prepare("SELECT machine_id, status, temperature * $1 AS scaled FROM readings WHERE status = $2 ORDER BY time LIMIT 2")
        .await
        .unwrap();
    for run in 1..=12u64 {
        let r = client.query_one(&untyped, &[&"2025-12-31 23:59:59+00"]).await.unwrap();
        out.push(format!(
            "untyped {run} {} {:?} {:?}",
            r.get::<_, i32>(0),
            r.get::<_, Option<f64>>(1),
            r.get::<_, std::time::SystemTime>(2)
        ));
        let r = client
            .query_one(&typed, &[&(t0 + Duration::from_secs(600 * run)), &format!("M-{}", run % 7)])
            .await
            .unwrap();
        out.push(format!(
            "typed {run} {} {:?} {:?}",
            r.get::<_, i64>(0),
            r.get::<_, Option<i64>>(1),
            r.get::<_, Option<std::time::SystemTime>>(2)
        ));
        let rows = client.query(&inferred, &[&(run as f64), &((run % 3) as i64)]).await.unwrap();
        let rows: Vec<String> = rows
            .iter()
            .map(|r| format!("{}/{}/{}", r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, f64>(2)))
            .collect();
        out.push(format!("inferred {run} {rows:?}"));
    }
    out
}

#[test]
fn tokio_postgres_typed_and_untyped_statements_give_postgresql_values_on_every_run() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pg = Postgres::start();
    let want = rt.block_on(tokio_postgres_runs(pg.port, "postgres", "postgres"));
    assert!(want[0].starts_with("untyped 1 500 "), "{want:?}");
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let got = rt.block_on(tokio_postgres_runs(db.port, "fleetdb", "fleetdb"));
    compare(&got, &want, 3 * 12);
}
