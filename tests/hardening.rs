//! What hostile or clumsy clients send, tried from outside over the real protocols: each case
//! gets its value or a clear SQLSTATE, and the server still answers `SELECT 1` afterwards.

mod common;

use std::process::{Command, Output};

use common::{Fleetdb, ok};

/// Runs `sql` from a file with psql (statements too long for a command line).
fn psql_file(db: &Fleetdb, sql: &str) -> Output {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), sql).unwrap();
    Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
        .args(["-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb", "fleetdb", "-f"])
        .arg(f.path())
        .output()
        .unwrap()
}

fn value(db: &Fleetdb, sql: &str) -> String {
    let out = psql_file(db, sql);
    assert!(out.status.success(), "{}: {}", &sql[..sql.len().min(200)], String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The SQLSTATE psql reports for `sql` (which must fail).
fn sqlstate(db: &Fleetdb, sql: &str) -> String {
    let out = psql_file(db, sql);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{} succeeded", &sql[..sql.len().min(200)]);
    err.split("ERROR:  ").nth(1).map_or_else(|| panic!("no SQLSTATE in {err}"), |s| s[..5].to_string())
}

fn still_answers(db: &Fleetdb) {
    assert_eq!(value(db, "SELECT 1"), "1", "the server must still answer");
}

fn or_chain(n: usize) -> String {
    let terms: Vec<String> = (0..n).map(|i| format!("status = {i}")).collect();
    format!("SELECT count(*) FROM readings WHERE {}", terms.join(" OR "))
}

fn cte_chain(n: usize) -> String {
    let defs: Vec<String> = (1..n).map(|i| format!("a{i} AS (SELECT x + 1 AS x FROM a{})", i - 1)).collect();
    format!("WITH a0 AS (SELECT 1 AS x), {} SELECT x FROM a{}", defs.join(", "), n - 1)
}

fn union_chain(n: usize) -> String {
    let parts: Vec<String> = (0..n).map(|i| format!("SELECT {i} AS k")).collect();
    format!("SELECT count(*), sum(k) FROM ({}) u", parts.join(" UNION ALL "))
}

/// Long chains of OR / AND / + / || work (they are what ORMs send); nesting past the bounds is
/// refused with 54001 and statements past the parse budget with 54000, over the simple and
/// the extended protocol; the process never aborts.
#[test]
fn long_chains_work_and_too_deep_or_large_statements_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE DATASTORE readings (status BIGINT)"), "create");
    ok(db.psql("INSERT INTO readings (time, status) SELECT now(), 1 UNION ALL SELECT now(), 7 UNION ALL SELECT now(), 9000 UNION ALL SELECT now(), 60000"), "insert");

    assert_eq!(value(&db, &or_chain(500)), "2");
    assert_eq!(value(&db, &or_chain(5_000)), "2");
    assert_eq!(value(&db, &or_chain(45_000)), "3");
    let ands: Vec<String> = (0..5_000).map(|i| format!("status <> {}", i * 2 + 1)).collect();
    assert_eq!(value(&db, &format!("SELECT count(*) FROM readings WHERE {}", ands.join(" AND "))), "2");
    let plus: Vec<String> = (0..20_000).map(|i| (i % 10).to_string()).collect();
    assert_eq!(value(&db, &format!("SELECT {}", plus.join(" + "))), "90000");
    let plus_cols: Vec<&str> = vec!["status"; 5_000];
    assert_eq!(value(&db, &format!("SELECT max({}) FROM readings", plus_cols.join(" + "))), "300000000");
    let cat: Vec<&str> = vec!["'ab'"; 5_000];
    assert_eq!(value(&db, &format!("SELECT length({})", cat.join(" || "))), "10000");
    assert_eq!(value(&db, &union_chain(1_000)), "1000|499500");
    assert_eq!(value(&db, &cte_chain(1_000)), "1000");
    still_answers(&db);

    // Nesting as deep as hand-written or generated SQL goes works (PostgreSQL takes about as
    // much under its default stack depth).
    assert_eq!(value(&db, &format!("SELECT {}1{}", "(".repeat(900), ")".repeat(900))), "1");
    assert_eq!(value(&db, &format!("SELECT {}1{}", "(SELECT ".repeat(300), ")".repeat(300))), "1");
    let cases = format!("SELECT {}1{}", "CASE WHEN true THEN ".repeat(900), " END".repeat(900));
    assert_eq!(value(&db, &cases), "1");
    // Past the bounds: a clear error, then the server goes on.
    assert_eq!(sqlstate(&db, &format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000))), "54001");
    assert_eq!(sqlstate(&db, &format!("SELECT {}1{}", "(SELECT ".repeat(2_000), ")".repeat(2_000))), "54001");
    assert_eq!(sqlstate(&db, &format!("SELECT {}true", "NOT ".repeat(1_500))), "54001");
    let cases = format!("SELECT {}1{}", "CASE WHEN true THEN ".repeat(1_500), " END".repeat(1_500));
    assert_eq!(sqlstate(&db, &cases), "54001");
    assert_eq!(sqlstate(&db, &cte_chain(5_000)), "54001");
    let many: Vec<&str> = vec!["1"; 120_000];
    assert_eq!(sqlstate(&db, &format!("SELECT {}", many.join("+"))), "54001");
    assert_eq!(sqlstate(&db, &format!("SELECT 1{};", " ".repeat(50 << 20))), "54000");
    still_answers(&db);

    // The extended protocol parses at Parse, Describe and Execute: the same bounds hold.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conninfo = format!("host=127.0.0.1 port={} user=fleetdb dbname=fleetdb", db.port);
        let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let q = format!("{} AND status > $1", or_chain(5_000));
        let n: i64 = client.query_one(&q, &[&0i64]).await.unwrap().get(0);
        assert_eq!(n, 2);
        let q = format!("SELECT x + $1 FROM ({}) c", cte_chain(1_000));
        let x: i32 = client.query_one(&q, &[&1i32]).await.unwrap().get(0);
        assert_eq!(x, 1001);
        let q = format!("{} WHERE k >= $1", union_chain(1_000));
        let row = client.query_one(&q, &[&500i32]).await.unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (500, 374750));
        let e = client.prepare(&cte_chain(5_000)).await.unwrap_err();
        assert_eq!(e.code().map(tokio_postgres::error::SqlState::code), Some("54001"));
        let deep = format!("SELECT {}$1::int{}", "(".repeat(5_000), ")".repeat(5_000));
        let e = client.prepare(&deep).await.unwrap_err();
        assert_eq!(e.code().map(tokio_postgres::error::SqlState::code), Some("54001"));
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    });
}

/// Every object kind takes names by one rule: nothing with `/`, `..`, NUL or a control
/// character, so no object touches a path outside the data directory.
#[test]
fn names_that_are_paths_are_refused_for_every_object_kind() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let victim = root.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "precious").unwrap();
    let db = Fleetdb::start(&data);
    ok(db.psql("CREATE CHANNEL c"), "channel");
    ok(db.psql("CREATE DATASTORE d"), "datastore");
    ok(db.psql("CREATE TABLE t (k TEXT PRIMARY KEY)"), "table");
    let victim_abs = victim.display().to_string();
    for bad in ["../../victim", "../victim", "..", "a/b", &victim_abs, "new\nline", "tab\there", "dot.dot"] {
        let q = bad.replace('"', "\"\"");
        for sql in [
            format!("CREATE CHANNEL \"{q}\""),
            format!("CREATE DATASTORE \"{q}\""),
            format!("CREATE TABLE \"{q}\" (k TEXT PRIMARY KEY)"),
            format!("CREATE PIPELINE \"{q}\" FROM CHANNEL c INTO DATASTORE d"),
            format!("CREATE DATASET \"{q}\" AS SELECT 1 AS one"),
            format!("CREATE ROUTE \"{q}\" FROM MQTT 'a/#' INTO CHANNEL c"),
            format!("ALTER TABLE t RENAME TO \"{q}\""),
        ] {
            assert_eq!(sqlstate(&db, &sql), "22023", "{sql}");
        }
    }
    assert_eq!(std::fs::read_to_string(victim.join("keep.txt")).unwrap(), "precious");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
    // Nothing was created anywhere beside the data directory.
    let beside: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside.len(), 2, "{beside:?}");
    assert_eq!(value(&db, "SELECT count(*) FROM pg_class WHERE relname LIKE '%victim%'"), "0");
    still_answers(&db);
}

/// Loads `rows` readings with COPY.
fn copy_readings(db: &Fleetdb, rows: usize) {
    common::copy_csv(db, "readings (time, machine_id, v, status)", rows, |i| {
        format!(
            "2026-01-01 00:{:02}:{:02}+00,M-{},{},{}",
            (i / 60) % 60,
            i % 60,
            i % 1000,
            (i % 97) as f64 * 0.5,
            i % 3
        )
    });
}

/// Found from outside: a window function or a subquery over a datastore whose rows are partly
/// in files and partly in the memtable (≥ 1.5M rows) failed with XX000 "extend Bool with
/// Int64": the memtable's batches carried `__dt` where files' carried the unread placeholder.
#[test]
fn window_functions_and_subqueries_over_files_and_memtable_together() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE DATASTORE readings (machine_id TEXT, v DOUBLE PRECISION, status BIGINT)"), "create");
    copy_readings(&db, 1_600_000);
    copy_readings(&db, 1_000);
    let window = "SELECT count(*), max(rn) FROM (SELECT row_number() OVER (PARTITION BY machine_id ORDER BY v) AS rn FROM readings) t";
    assert_eq!(value(&db, window), "1601000|1601");
    assert_eq!(value(&db, "SELECT count(*) FROM (SELECT v FROM readings) t"), "1601000");
    assert_eq!(value(&db, "SELECT count(*) FROM (SELECT row_number() OVER () AS rn FROM readings) t"), "1601000");
    assert_eq!(
        value(&db, "SELECT count(*) FROM readings a CROSS JOIN (SELECT 1 AS one UNION ALL SELECT 2) b"),
        "3202000"
    );
    still_answers(&db);
}

/// A FILTER of 500 OR terms (an ORM's list) runs; one nested past the bound is refused at
/// CREATE, by the code that runs it, instead of taking the process down at the first message
/// and again at every restart.
#[test]
fn pipelines_with_long_or_deep_expressions_never_take_the_process_down() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE CHANNEL c"), "channel");
    ok(db.psql("CREATE DATASTORE d"), "datastore");
    let terms: Vec<String> = (0..500).map(|i| format!("machine = 'M-{}'", i * 2)).collect();
    value(&db, &format!("CREATE PIPELINE p FROM CHANNEL c FILTER {} INTO DATASTORE d", terms.join(" OR ")));
    let deep = format!(
        "CREATE PIPELINE q FROM CHANNEL c FILTER {}machine = 'x'{} INTO DATASTORE d",
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    assert_eq!(sqlstate(&db, &deep), "54001");
    let body = r#"{"channelName": "c", "messages": [{"messageId": "1", "payload": {"machine": "M-4"}}, {"messageId": "2", "payload": {"machine": "M-5"}}, {"messageId": "3", "payload": {"machine": "M-998"}}]}"#;
    assert_eq!(common::http_post(db.http_port, "/messages/batch", body.as_bytes()).0, 200);
    common::eventually(&db, "SELECT machine FROM d ORDER BY machine", &["M-4", "M-998"]);
    // A restart runs the same definition again.
    assert!(db.stop().success());
    let db = Fleetdb::start(dir.path());
    let body = r#"{"channelName": "c", "messages": [{"messageId": "4", "payload": {"machine": "M-6"}}]}"#;
    assert_eq!(common::http_post(db.http_port, "/messages/batch", body.as_bytes()).0, 200);
    common::eventually(&db, "SELECT machine FROM d ORDER BY machine", &["M-4", "M-6", "M-998"]);
    assert_eq!(value(&db, "SELECT count(*) FROM fleetdb.pipeline_errors"), "0");
    still_answers(&db);
}

/// Messages whose keys would make more than 1,600 columns (PostgreSQL's limit on a table) are
/// refused one by one with the reason, the others are stored; a decoded batch never holds more
/// columns than that, whatever the messages; SQL writes past the limit get 54011.
#[test]
fn payload_keys_cannot_add_columns_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    value(&db, "CREATE CHANNEL c; CREATE DATASTORE d; CREATE PIPELINE p FROM CHANNEL c INTO DATASTORE d");
    let wide = |m: usize, keys: usize| {
        let attrs: Vec<String> = (0..keys).map(|i| format!("\"k{m}_{i}\": {i}")).collect();
        format!(r#"{{"messageId": "w{m}", "payload": {{{}}}}}"#, attrs.join(", "))
    };
    // Four messages of 500 new keys each and a plain one, in one batch: the fourth would take
    // the batch to 2,000 attributes.
    let msgs: Vec<String> = (0..4)
        .map(|m| wide(m, 500))
        .chain([r#"{"messageId": "plain-1", "payload": {"machine": "M-1"}}"#.to_string()])
        .collect();
    let body = format!(r#"{{"channelName": "c", "messages": [{}]}}"#, msgs.join(", "));
    let (status, text) = common::http_post(db.http_port, "/messages/batch", body.as_bytes());
    assert_eq!(status, 200, "{text}");
    common::eventually(&db, "SELECT count(*) FROM d", &["4"]);
    common::eventually(&db, "SELECT count(*) FROM fleetdb.pipeline_errors", &["1"]);
    assert!(
        value(&db, "SELECT reason FROM fleetdb.pipeline_errors").contains("at most 1600 columns"),
        "{}",
        value(&db, "SELECT reason FROM fleetdb.pipeline_errors")
    );
    // The datastore now has time + 1,500 + machine columns: 98 more fit. A message with 200
    // new keys is refused, the plain one beside it stored.
    let msgs = [wide(9, 200), r#"{"messageId": "plain-2", "payload": {"machine": "M-2"}}"#.to_string()];
    let body = format!(r#"{{"channelName": "c", "messages": [{}]}}"#, msgs.join(", "));
    assert_eq!(common::http_post(db.http_port, "/messages/batch", body.as_bytes()).0, 200);
    common::eventually(&db, "SELECT count(*) FROM d", &["5"]);
    common::eventually(&db, "SELECT count(*) FROM fleetdb.pipeline_errors", &["2"]);
    assert_eq!(
        value(
            &db,
            "SELECT count(*) FROM fleetdb.pipeline_errors WHERE reason LIKE '%past the datastore''s limit of 1600%'"
        ),
        "1"
    );
    assert_eq!(value(&db, "SELECT machine FROM d WHERE machine IS NOT NULL ORDER BY 1"), "M-1\nM-2");
    // SQL: an INSERT bringing columns past the limit is refused.
    let cols: Vec<String> = (0..200).map(|i| format!("x{i}")).collect();
    let vals: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let insert = format!("INSERT INTO d (time, {}) VALUES (now(), {})", cols.join(", "), vals.join(", "));
    assert_eq!(sqlstate(&db, &insert), "54011");
    still_answers(&db);
}

/// A dataset delivers files only inside the data directory.
#[test]
fn dataset_files_are_delivered_only_inside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(&dir.path().join("data"));
    for target in ["../../outside.csv", "/tmp/outside.csv", "exports/../../outside.csv"] {
        let sql = format!("CREATE DATASET d1 AS SELECT 1 AS a DELIVER TO FILE '{target}'");
        assert_eq!(sqlstate(&db, &sql), "22023", "{target}");
    }
    value(&db, "CREATE DATASET d1 AS SELECT 1 AS a DELIVER TO FILE 'exports/d1-!{iotanalytics:versionId}.csv'");
    value(&db, "REFRESH DATASET d1");
    common::eventually(&db, "SELECT count(*) FROM dataset_content('d1')", &["1"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !dir.path().join("data/exports/d1-1.csv").exists() {
        assert!(std::time::Instant::now() < deadline, "no delivery");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    still_answers(&db);
}

/// fleetdb's numeric is a double: a numeric it cannot hold exactly as written is refused
/// (22003), never silently rounded; what it holds reads back as written.
#[test]
fn numerics_are_never_silently_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    for sql in [
        "SELECT 9007199254740993::numeric",
        "SELECT '12345678901234567890.123'::numeric + 1",
        "SELECT 12345678901234567890",
        "SELECT 3.14159265358979323846",
        // Would print as 0.3, and 2^60 as 1152921504606847000 (its double's shortest digits).
        "SELECT 0.30000000000000004::numeric",
        "SELECT 1152921504606846976::numeric",
        // Results whose digits a double cannot keep: sums of bigint (numeric), their mean's
        // whole part, arithmetic past 2^53 (also where the operands' doubles are not their
        // decimals: 1152921504606850000 is held as 1152921504606850048).
        "SELECT sum(x) FROM (VALUES (9007199254740993::bigint), (2::bigint)) t(x)",
        "SELECT sum(x) FROM (VALUES (9223372036854775807::bigint), (1::bigint)) t(x)",
        "SELECT avg(x) FROM (VALUES (9223372036854775807::bigint), (9223372036854775805::bigint)) t(x)",
        "SELECT 1e20::numeric + 1",
        "SELECT 9007199254740992::numeric + 1",
        "SELECT 1073741824::numeric * 1073741824",
        "SELECT 1e20::numeric / 3",
        "SELECT 1152921504606850000::numeric + 1024",
    ] {
        assert_eq!(sqlstate(&db, sql), "22003", "{sql}");
    }
    assert_eq!(
        value(&db, "SELECT 0.1::numeric, 9007199254740992::numeric, -9223372036854775808"),
        "0.1|9007199254740992|-9223372036854775808"
    );
    // What it holds, it computes exactly: as PostgreSQL answers each (a double becomes numeric
    // rounded to 15 significant digits, as in PostgreSQL).
    assert_eq!(
        value(
            &db,
            "SELECT 1e20::numeric * 10, 1e20::numeric - 1e20, 1e20::numeric / 4, 1e20::numeric % 7, \
             4503599627370496::numeric * 2, 1152921504606850000::numeric + 1000000, \
             1152921504606850000::numeric - 1152921504606840000::numeric, \
             1152921504606846976::float8::numeric, 1765000000123456::float8::numeric"
        ),
        "1000000000000000000000|0|25000000000000000000|2|9007199254740992|1152921504607850000|10000|1152921504606850000|1765000000123460"
    );
    // (PostgreSQL writes the mean with its scale: 4503599627370496.0000.)
    assert_eq!(
        value(&db, "SELECT sum(x), avg(x) FROM (VALUES (4503599627370496::bigint), (4503599627370496::bigint)) t(x)"),
        "9007199254740992|4503599627370496"
    );
    // -2147483648 is an integer, as in PostgreSQL (one literal, not a negated bigint).
    assert_eq!(sqlstate(&db, "SELECT -2147483648 - 1"), "22003");
    still_answers(&db);
}

/// A constant repeated over many rows is charged before the column is built (a 30 KB text
/// over 300k rows aborted the process), and numeric(p, s) rounds to its scale.
#[test]
fn constants_over_many_rows_are_charged_and_numeric_scales_round() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--query-memory", "256MiB"], &[]);
    value(&db, "CREATE DATASTORE big");
    common::copy_csv(&db, "big (time, k)", 300_000, |i| format!("2026-01-01 00:00:00+00,k{i}"));
    assert_eq!(sqlstate(&db, "SELECT count(*) FROM big WHERE repeat('xxxxxxxxxx', 3000) <> k"), "53200");
    assert_eq!(sqlstate(&db, "SELECT length(string_agg(repeat('xxxxxxxxxx', 300), ',')) FROM big"), "53200");
    assert_eq!(value(&db, "SELECT 123.456::numeric(10,2), 2.5::numeric(5), (-2.345)::numeric(6,2)"), "123.46|3|-2.35");
    assert_eq!(sqlstate(&db, "SELECT 1e400::numeric"), "22003");
    still_answers(&db);
}
