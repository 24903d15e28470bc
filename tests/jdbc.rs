//! fleetdb through the PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java): the Java
//! program tests/jdbc/JdbcClient.java writes and reads with prepared statements and prints
//! what DatabaseMetaData reports (getTables, getColumns, getPrimaryKeys).

mod common;

use std::process::Command;

use common::Fleetdb;

#[test]
fn jdbc_driver_queries_and_reads_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let out = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar", "tests/jdbc/JdbcClient.java", &db.port.to_string()])
        .output()
        .expect("running java (install default-jdk-headless and libpostgresql-jdbc-java)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("product ")).collect();
    assert_eq!(
        lines,
        [
            "row M-0001 10 15",
            "row M-0003 null null",
            "types timestamptz float8 text",
            "reading 2026-01-01T00:00:00Z 2.5 M-0001",
            "table public.machines TABLE",
            "table public.readings TABLE",
            "column machine_id text 12 NO 1",
            "column model_type text 12 NO 2",
            "column capacity int4 4 YES 3",
            "pk machines machine_id 1 machines_pkey",
            "error 42P01",
        ]
    );
    assert!(stdout.contains("product PostgreSQL "), "{stdout}");
}

/// Runs tests/jdbc/JdbcPrepared.java against `port` and returns its lines.
fn prepared_runs(port: u16, flavour: &str, user: &str) -> Vec<String> {
    let out = Command::new("java")
        .args([
            "-cp",
            "/usr/share/java/postgresql.jar",
            "tests/jdbc/JdbcPrepared.java",
            &port.to_string(),
            flavour,
            user,
        ])
        .output()
        .expect("running java");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{flavour}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(str::to_string).collect()
}

/// Each prepared query runs 12 times (past pgjdbc's prepareThreshold, where it switches to a
/// named statement and binary results); every run's values must be PostgreSQL's.
#[test]
fn jdbc_prepared_statements_give_postgresql_values_on_every_run() {
    let pg = common::Postgres::start();
    let want = prepared_runs(pg.port, "postgres", "postgres");
    assert_eq!(want.len(), 10 * 12, "{want:?}");
    assert!(want[11].starts_with("q1 run 12 1000 "), "{want:?}");
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let got = prepared_runs(db.port, "fleetdb", "fleetdb");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len(), "{got:?}");
}
