//! Memory is a budget: per query (`--query-memory`) and for all queries together
//! (`--memory-limit`), measured from outside as the server's peak resident size (VmHWM); and
//! cancel requests and `statement_timeout` stop every kind of operator promptly.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fleetdb, ok};

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix(field)).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

fn psql(db: &Fleetdb, sqls: &[&str]) -> (bool, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), sqls.iter().map(|s| format!("{s};\n")).collect::<String>()).unwrap();
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &db.port.to_string()])
        .args(["-U", "fleetdb", "fleetdb", "-f"])
        .arg(f.path())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// COPYs `rows` lines made by `line` into `table (time, col)`.
fn copy(db: &Fleetdb, target: &str, rows: usize, line: impl Fn(usize) -> String) {
    common::copy_csv(db, target, rows, |i| format!("2026-01-01 00:00:00+00,{}", line(i)));
}

#[test]
fn a_query_stops_at_its_budget_before_it_allocates_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--query-memory", "64MiB"], &[]);
    ok(db.psql("CREATE DATASTORE a (x BIGINT)"), "a");
    ok(db.psql("CREATE DATASTORE g (k TEXT)"), "g");
    copy(&db, "a (time, x)", 150_000, |i| i.to_string());
    copy(&db, "g (time, k)", 1_000_000, |i| format!("key-{i}"));
    // The memtables written to files now: a background flush (sorting and encoding them,
    // charged to the shared pool) would otherwise land inside the window measured below.
    ok(db.psql("CHECKPOINT"), "checkpoint");
    std::thread::sleep(Duration::from_secs(2));
    let pid = db.child.id();
    let before = status_kb(pid, "VmHWM:");
    // 150k × 150k rows; 1M groups; text built whole (a 1 GB repeat) and aggregated
    // (string_agg of 1M keys, 1 KB each); a FROM list of 3,000 items.
    let from: Vec<String> = (0..3_000).map(|i| format!("(SELECT {i} AS c{i}) t{i}")).collect();
    let wide = format!("SELECT count(*) FROM {}", from.join(", "));
    for q in [
        "SELECT count(*) FROM a a1 CROSS JOIN a a2",
        "SELECT count(*) FROM (SELECT k, count(*) FROM g GROUP BY k) t",
        "SELECT length(repeat(repeat('x', 1000), 1000000))",
        "SELECT length(string_agg(repeat(k, 100), ',')) FROM g",
        "SELECT count(*) FROM g WHERE k IN (SELECT k FROM g)",
        // A result of 1M rows, 100 MB: held for sending, not only while it is made.
        "SELECT k, repeat(k, 10) FROM g",
        "COPY (SELECT k, repeat(k, 10) FROM g) TO STDOUT",
        wide.as_str(),
    ] {
        let (done, out) = psql(&db, &[q]);
        assert!(
            !done && out.contains("out of memory: the query needs more than its working memory of 64 MiB"),
            "{}: {out}",
            &q[..q.len().min(120)]
        );
    }
    // 50,000 casts in a chain: binding them nests as deep, and the stack that takes is
    // resident once touched; it counts against the working memory.
    let casts = format!("SELECT 1{}", "::text::int".repeat(25_000));
    let (done, out) = psql(&db, &[&casts]);
    assert!(!done && out.contains("stack depth limit exceeded"), "{out}");
    assert!(out.contains("working memory of 64 MiB"), "{out}");
    let grew_mb = (status_kb(pid, "VmHWM:") - before) / 1024;
    assert!(grew_mb < 96, "peak grew {grew_mb} MB for a 64 MiB budget");
    // A percentile keeps a double per row: a million of them fit in 64 MiB (they were once
    // charged as 96 bytes each, and refused).
    let (done, out) = psql(&db, &["SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY length(k)::float8) FROM g"]);
    assert!(done && out.trim() == "10", "{out}");
    // A million-row result that fits is sent (its rows encoded as they go, never all at once).
    let (done, out) = psql(&db, &["SELECT k FROM g WHERE k LIKE 'key-%'"]);
    assert!(done && out.lines().count() == 1_000_000, "{}", &out[..out.len().min(300)]);
    assert_eq!(psql(&db, &["SELECT count(*) FROM (SELECT k FROM g WHERE k LIKE 'key-1%') t"]).1.trim(), "111111");
}

#[test]
fn concurrent_heavy_queries_share_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 1 GiB: 256 MiB of ingest buffers, 256 MiB for memtables, 512 MiB for queries, flushes
    // and COPY data.
    let db = Fleetdb::start_with(dir.path(), &["--memory-limit", "1GiB"], &[]);
    ok(db.psql("CREATE DATASTORE g (k TEXT)"), "g");
    // COPYs of one piece each (under 4 MiB) are appended through the log into the memtable,
    // as INSERTs are; a larger COPY would go straight to files.
    for part in 0..10 {
        copy(&db, "g (time, k)", 100_000, |i| format!("key-{}", part * 100_000 + i));
    }
    // The memtable is written to a file while the queries run: the flush's working memory
    // (sorting and encoding a million rows) is charged to the same limit, and the peak below
    // is the whole life of the server (the COPYs' included).
    let mut handles: Vec<_> = (0..8)
        .map(|_| {
            let port = db.port;
            std::thread::spawn(move || {
                let out = Command::new("psql")
                    .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "fleetdb", "fleetdb"])
                    .args(["-c", "SELECT count(*) FROM (SELECT k, count(*) FROM g GROUP BY k) t"])
                    .output()
                    .unwrap();
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
            })
        })
        .collect();
    let port = db.port;
    handles.push(std::thread::spawn(move || {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "fleetdb", "fleetdb"])
            .args(["-c", "CHECKPOINT"])
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }));
    let outs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outs[8].trim(), "CHECKPOINT", "{outs:#?}");
    let outs = &outs[..8];
    let done = outs.iter().filter(|o| o.trim() == "1000000").count();
    let refused =
        outs.iter().filter(|o| o.contains("out of memory: queries, flushes and COPY data together hold")).count();
    assert!(done >= 1 && done + refused == 8, "{outs:#?}");
    let peak_mb = status_kb(db.child.id(), "VmHWM:") / 1024;
    assert!(peak_mb < 1024, "peak {peak_mb} MB over a 1 GiB limit");
    // Freed memory goes back to the system (trimmed on a thread of its own after each large
    // statement, so within moments), and the server goes on.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rss_mb = status_kb(db.child.id(), "VmRSS:") / 1024;
    while rss_mb >= 512 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        rss_mb = status_kb(db.child.id(), "VmRSS:") / 1024;
    }
    assert!(rss_mb < 512, "RSS stayed at {rss_mb} MB");
    assert_eq!(psql(&db, &["SELECT 1"]).1.trim(), "1");
}

#[test]
fn counting_a_channel_holds_nothing_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--query-memory", "8MiB"], &[]);
    ok(db.psql("CREATE CHANNEL ch"), "channel");
    let mut body = Vec::new();
    for i in 0..2_000_000 {
        writeln!(body, r#"{{"machine": "M-{}", "v": {i}}}"#, i % 1000).unwrap();
    }
    let (status, text) = common::http_post(db.http_port, "/channels/ch/messages", &body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""accepted":2000000"#), "{text}");
    // 2M messages would be 12 MB even as one byte per message and column: over 8 MiB.
    assert_eq!(psql(&db, &["SELECT count(*) FROM ch"]).1.trim(), "2000000");
    assert_eq!(psql(&db, &["SELECT count(*) FROM ch WHERE payload->>'machine' = 'M-7'"]).1.trim(), "2000");
    let (done, out) = psql(&db, &["SELECT count(*) FROM ch WHERE __received_at > now() - interval '1 hour'"]);
    assert!(done && out.trim() == "2000000", "{out}");
    let (done, out) = psql(&db, &["SELECT payload FROM ch ORDER BY payload"]);
    assert!(!done && out.contains("53200") || out.contains("out of memory"), "materializing it is refused: {out}");
}

#[test]
fn statement_timeout_and_cancel_stop_every_operator_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start(dir.path());
    ok(db.psql("CREATE DATASTORE g (k TEXT, v BIGINT)"), "g");
    copy(&db, "g (time, k, v)", 1_000_000, |i| format!("key-{i},{}", i % 1000));
    std::thread::sleep(Duration::from_secs(2));
    let ins: Vec<String> = (0..100_000).map(|i| format!("'key-{}'", i * 7)).collect();
    let in_list = format!("SELECT count(*) FROM g WHERE k IN ({})", ins.join(", "));
    // A long IN list is a hash set: quick, and right.
    assert_eq!(psql(&db, &[&in_list]).1.trim(), "100000");
    // Integers too (a linear list took minutes here: 100k items times 1M rows). The timeout
    // only bounds the test if that ever comes back.
    let ints: Vec<String> = (0..100_000).map(|i| (i * 7).to_string()).collect();
    let int_list = format!("SELECT count(*) FROM g WHERE v IN ({})", ints.join(", "));
    assert_eq!(psql(&db, &["SET statement_timeout = '60s'", &int_list]).1.trim(), "143000");
    let not_in = int_list.replace(" IN (", " NOT IN (");
    assert_eq!(psql(&db, &["SET statement_timeout = '60s'", &not_in]).1.trim(), "857000");
    // A million-item list (14 MB of text): read apart from the parser and bound as one set,
    // the cancel checked as it goes. sqlparser alone took ~2 s over it, out of a cancel's reach.
    let million: Vec<String> = (0..1_000_000).map(|i| format!("'key-{}'", i * 3)).collect();
    let million = format!("SELECT count(*) FROM g WHERE k IN ({})", million.join(", "));
    assert_eq!(psql(&db, &[&million]).1.trim(), "333334");
    let t = Instant::now();
    let (done, out) = psql(&db, &["SET statement_timeout = '50ms'", &million]);
    assert!(!done && out.contains("canceling statement due to statement timeout"), "{out}");
    assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
    for q in [
        "SELECT count(*) FROM g a JOIN g b ON a.k = b.k",
        "SELECT count(*) FROM (SELECT k, count(*) FROM g GROUP BY k) t",
        "SELECT count(DISTINCT k) FROM g",
        "SELECT count(*) FROM g a JOIN g b ON a.v = b.v",
        "SELECT pg_sleep(10)",
        "SELECT count(*) FROM (SELECT sum(v) OVER (ORDER BY k ROWS BETWEEN 1000 PRECEDING AND CURRENT ROW) FROM g) t",
    ] {
        let t = Instant::now();
        let (done, out) = psql(&db, &["SET statement_timeout = '50ms'", q]);
        let took = t.elapsed();
        assert!(!done && out.contains("canceling statement due to statement timeout"), "{q}: {out}");
        assert!(took < Duration::from_millis(1500), "{q}: {took:?}");
    }
    // The same join counted with the count pushed below it (per value of v, then joined):
    // 1,000 values of 1,000 rows each side, 10^9 pairs, without making them.
    assert_eq!(
        psql(&db, &["SET statement_timeout = '20s'", "SELECT count(*) FROM g a JOIN g b ON a.v = b.v"]).1.trim(),
        "1000000000"
    );
    // A cancel request (psql sends one on SIGINT) stops a running join (a condition on both
    // sides keeps the count above it).
    let child = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb", "fleetdb"])
        .args(["-c", "SELECT count(*) FROM g a JOIN g b ON a.v = b.v WHERE a.k <> b.k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("canceling statement due to user request"), "{err}");
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    assert_eq!(psql(&db, &["SELECT 1"]).1.trim(), "1");
}

#[test]
fn copy_data_is_charged_before_it_is_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let db = Fleetdb::start_with(dir.path(), &["--query-memory", "64MiB"], &[]);
    ok(db.psql("CREATE DATASTORE g (k TEXT)"), "g");
    let pid = db.child.id();
    let before = status_kb(pid, "VmHWM:");
    // A CSV row that never ends (an unclosed quote, 300 MB): refused once it outgrows a
    // query's working memory, not buffered whole.
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &db.port.to_string(), "-U", "fleetdb", "fleetdb"])
        .args(["-c", "COPY g (time, k) FROM STDIN WITH (FORMAT csv)"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let _ = w.write_all(b"2026-01-01 00:00:00+00,\"");
    for _ in 0..300 {
        if w.write_all(&chunk).is_err() {
            break; // the server ended the COPY
        }
    }
    drop(w);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("COPY row is longer than a query's working memory (64 MiB)"),
        "{err}"
    );
    let grew_mb = (status_kb(pid, "VmHWM:") - before) / 1024;
    assert!(grew_mb < 160, "peak grew {grew_mb} MB for a 64 MiB working memory");
    // Rows that end are loaded, pieces at a time, and the server goes on.
    copy(&db, "g (time, k)", 200_000, |i| format!("key-{i}"));
    assert_eq!(psql(&db, &["SELECT count(*) FROM g"]).1.trim(), "200000");
}
