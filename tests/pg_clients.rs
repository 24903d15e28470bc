//! fleetdb as a PostgreSQL server for real clients: psql (simple query protocol) and psycopg 3
//! (extended protocol with parameters, binary and text results), restarts, and errors.

mod common;

use std::process::Command;

use common::{Fleetdb, ok};

#[test]
fn psql_creates_loads_queries_and_sees_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    for sql in [
        "CREATE CHANNEL factory_sensor_channel WITH (retention = '90 days')",
        "CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT)",
        "CREATE DATASTORE factory_processed_datastore WITH (retention = '365 days')",
        "INSERT INTO machines VALUES ('M-0001', 'CNC-5X', 'plant-a'), ('M-0002', 'PRESS-200', 'plant-b')",
        "INSERT INTO factory_processed_datastore (time, machine_id, vibration, temperature) VALUES
           ('2026-01-01 00:00:00+00', 'M-0001', 2.5, 61.5), ('2026-01-01 00:00:10+00', 'M-0001', 2.75, 61.75),
           ('2026-01-01 00:00:00+00', 'M-0002', 0.5, 59.0)",
    ] {
        ok(db.psql(sql), sql);
    }
    let out = ok(db.psql("SELECT machine_id, avg(vibration) AS avg_vibration FROM factory_processed_datastore GROUP BY machine_id ORDER BY machine_id"), "avg");
    assert_eq!(out, "machine_id|avg_vibration\nM-0001|2.625\nM-0002|0.5\n");
    let out = ok(db.psql("SHOW CHANNELS"), "show");
    assert!(
        out.starts_with("name|retention|messages|bytes|last_arrival\nfactory_sensor_channel|90 days|0|0|"),
        "{out}"
    );
    let err = db.psql("SELECT 1/0");
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("ERROR:  22012: division by zero"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let err = db.psql("SELECT * FROM nowhere");
    assert!(String::from_utf8_lossy(&err.stderr).contains("42P01: relation \"nowhere\" does not exist"));
    let err = db.psql("SELECT 1 +");
    let text = String::from_utf8_lossy(&err.stderr).to_string();
    assert!(text.contains("ERROR:  42601"), "{text}");

    // A clean stop checkpoints; a restart sees everything. Then a SIGKILL loses nothing either.
    assert!(db.stop().success());
    let db = Fleetdb::start(dir.path());
    ok(db.psql("INSERT INTO machines VALUES ('M-0003', 'LATHE-L3', 'plant-c')"), "insert after restart");
    db.kill();
    let db = Fleetdb::start(dir.path());
    assert_eq!(ok(db.psql("SELECT count(*) FROM machines"), "count"), "count\n3\n");
    assert_eq!(ok(db.psql("SELECT count(*) FROM factory_processed_datastore"), "count"), "count\n3\n");
}

#[test]
fn psycopg_uses_the_extended_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    let script = format!(
        r#"
import datetime, psycopg
conn = psycopg.connect("host=127.0.0.1 port={port} user=fleetdb dbname=fleetdb", autocommit=True)
cur = conn.cursor()
cur.execute("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, capacity INT, rating DOUBLE PRECISION, active BOOLEAN)")
cur.executemany("INSERT INTO machines VALUES (%s, %s, %s, %s)", [("M-1", 10, 1.5, True), ("M-2", 20, None, False), ("M-3", None, 2.25, True)])
cur.execute("SELECT machine_id, capacity, rating, active FROM machines WHERE capacity > %s ORDER BY machine_id", (5,))
rows = cur.fetchall()
assert rows == [("M-1", 10, 1.5, True), ("M-2", 20, None, False)], rows
cur.execute("SELECT count(*), sum(capacity) FROM machines WHERE machine_id = %s", ("M-3",))
assert cur.fetchone() == (1, None)
cur.execute("CREATE DATASTORE d")
cur.execute("INSERT INTO d (time, machine_id, v) VALUES (%s, %s, %s)", (datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc), "M-1", 3.5))
cur.execute("SELECT time, v FROM d")
t, v = cur.fetchone()
assert t == datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc) and v == 3.5, (t, v)
# Binary results
cur = conn.cursor(binary=True)
cur.execute("SELECT capacity, rating, machine_id FROM machines ORDER BY machine_id")
assert cur.fetchall() == [(10, 1.5, "M-1"), (20, None, "M-2"), (None, 2.25, "M-3")]
try:
    cur.execute("SELECT 1 / 0")
    raise SystemExit("no error")
except psycopg.errors.DivisionByZero:
    pass
print("ok")
"#,
        port = db.port
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with psycopg (pip install psycopg[binary])");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn psql_copy_in_and_out() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, capacity INT)"), "create");
    ok(db.psql("CREATE DATASTORE readings"), "create datastore");
    let copy = |sql: &str, input: &[u8]| {
        let mut child = Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb", "fleetdb", "-c", sql])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = copy("COPY machines FROM STDIN", b"M-1\tCNC\t10\nM-2\tPRESS\t\\N\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "COPY 2", "{}", String::from_utf8_lossy(&out.stderr));
    let csv = b"time,machine_id,temperature,rpm,status\n2026-01-01T00:00:00Z,M-1,61.5,1500,running\n2026-01-01T00:00:10Z,M-1,,1510,\"idle, cooling\"\n";
    let out = copy(
        "COPY readings (time, machine_id, temperature, rpm, status) FROM STDIN WITH (FORMAT csv, HEADER true)",
        csv,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "COPY 2", "{}", String::from_utf8_lossy(&out.stderr));
    // Types come from the values: temperature is a number, so avg works.
    assert_eq!(
        ok(db.psql("SELECT avg(temperature), sum(rpm), count(temperature) FROM readings"), "avg"),
        "avg|sum|count\n61.5|3010|1\n"
    );
    let out = copy("COPY machines FROM STDIN", b"M-3\tX\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("COPY row 1 has 2 columns where 3 were expected"));
    let out = ok(
        db.psql("COPY (SELECT machine_id, capacity FROM machines ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER true)"),
        "copy out",
    );
    assert_eq!(out, "machine_id,capacity\nM-1,10\nM-2,\n");
    let out = ok(db.psql("COPY readings (machine_id, status) TO STDOUT"), "copy out text");
    assert_eq!(out, "M-1\trunning\nM-1\tidle, cooling\n");
}

/// psql's describe commands run their own catalog queries; each must answer as PostgreSQL would.
#[test]
fn psql_describe_commands_read_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    for sql in [
        "CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT NOT NULL, capacity INT)",
        "CREATE DATASTORE readings (machine_id TEXT, vibration DOUBLE PRECISION)",
        "CREATE CHANNEL raw",
    ] {
        ok(db.psql(sql), sql);
    }
    let describe = |cmd: &str| {
        let out = Command::new("psql")
            .args(["-X", "-A", "-F", "|", "-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb"])
            .args(["-d", "fleetdb", "-v", "ON_ERROR_STOP=1", "-c", cmd])
            .output()
            .unwrap();
        ok(out, cmd)
    };
    let dt = describe("\\dt");
    for rel in ["public|machines|table|fleetdb", "public|raw|table|fleetdb", "public|readings|table|fleetdb"] {
        assert!(dt.contains(rel), "{dt}");
    }
    assert_eq!(describe("\\dt mach*").matches("|table|").count(), 1);
    let d = describe("\\d machines");
    assert!(d.contains("Table \"public.machines\""), "{d}");
    assert!(d.contains("machine_id|text||not null|"), "{d}");
    assert!(d.contains("model_type|text||not null|"), "{d}");
    assert!(d.contains("capacity|integer|||"), "{d}");
    assert!(d.contains("\"machines_pkey\" PRIMARY KEY, btree (machine_id)"), "{d}");
    let dplus = describe("\\d+ machines");
    assert!(dplus.contains("machine_id|text||not null||extended|||"), "{dplus}");
    assert!(dplus.contains("Access method: heap"), "{dplus}");
    let d = describe("\\d readings");
    assert!(d.contains("time|timestamp with time zone||not null|"), "{d}");
    assert!(d.contains("vibration|double precision|||"), "{d}");
    let d = describe("\\d raw");
    assert!(d.contains("payload|json|||"), "{d}");
    assert!(describe("\\l").contains("fleetdb|fleetdb|UTF8|C|C|"));
    assert!(describe("\\dn").contains("public|fleetdb"));
    let err = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &db.port.to_string(),
            "-U",
            "fleetdb",
            "-d",
            "fleetdb",
            "-c",
            "\\d nothing",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&err.stderr).contains("Did not find any relation named \"nothing\""));
    // The catalogs answer ad-hoc queries too.
    let out = ok(
        db.psql(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid WHERE c.relname = 'machines' AND a.attnum > 0 ORDER BY a.attnum",
        ),
        "pg_attribute",
    );
    assert_eq!(
        out,
        "relname|attname|format_type\nmachines|machine_id|text\nmachines|model_type|text\nmachines|capacity|integer\n"
    );
    let out = ok(
        db.psql(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'readings' ORDER BY ordinal_position",
        ),
        "information_schema",
    );
    assert_eq!(
        out,
        "table_name|column_name|data_type|is_nullable\nreadings|time|timestamp with time zone|NO\n\
         readings|machine_id|text|YES\nreadings|vibration|double precision|YES\nreadings|__dt|date|NO\n"
    );
}

/// With a password configured, clients authenticate with SCRAM-SHA-256; a query past its
/// working memory fails with 53200 and the server keeps serving; a cancel request stops a
/// running query with 57014.
#[test]
fn password_memory_limit_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--query-memory", "32MiB"], &[("FLEETDB_PASSWORD", "s3cret")]);
    let psql = |password: &str, sql: &str| {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb", "-d", "fleetdb"])
            .args(["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", sql])
            .env("PGPASSWORD", password)
            .output()
            .unwrap()
    };
    assert_eq!(ok(psql("s3cret", "SELECT 40 + 2"), "scram"), "42\n");
    let denied = psql("wrong", "SELECT 1");
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("authentication failed"), "{denied:?}");
    // 400,000 rows; a self-join on machine_id would make 320 million.
    ok(psql("s3cret", "CREATE DATASTORE big"), "create");
    let mut csv = String::new();
    for i in 0..400_000 {
        csv.push_str(&format!("2026-01-01 00:00:{:02}.{:06}+00,M-{:04},{}\n", i % 60, i % 1_000_000, i % 500, i % 500));
    }
    let mut child = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb", "-d", "fleetdb"])
        .args(["-v", "ON_ERROR_STOP=1", "-c", "COPY big (time, machine_id, v) FROM STDIN (FORMAT csv)"])
        .env("PGPASSWORD", "s3cret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), csv.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait_with_output().unwrap().status.success());
    let oom = psql("s3cret", "SELECT count(*) FROM big a JOIN big b ON a.machine_id = b.machine_id");
    assert!(String::from_utf8_lossy(&oom.stderr).contains("53200"), "{oom:?}");
    assert_eq!(ok(psql("s3cret", "SELECT count(*) FROM big WHERE v = 7"), "after oom"), "800\n");

    // Cancel: psycopg's cancel() sends a CancelRequest while a slow query runs.
    let script = r#"
import sys, threading, time, psycopg
conn = psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="fleetdb", dbname="fleetdb", password="s3cret")
threading.Timer(0.3, conn.cancel).start()
start = time.time()
try:
    conn.execute("SELECT count(*) FROM big WHERE machine_id ~ '(.*)(.*)(.*)(.*)z'")
    print("finished")
except psycopg.errors.QueryCanceled as e:
    print("cancelled", e.sqlstate)
"#;
    let out = Command::new("python3").args(["-c", script, &db.port.to_string()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cancelled 57014", "{out:?}");
}
