//! SQL through a session, in process: DDL, DML, queries, errors. (The wire protocol is tested
//! with real clients in tests/pg_clients.rs and against PostgreSQL in tests/differential.rs.)

use fleetdb::command::Services;
use fleetdb::command::session::{Outcome, Session};
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::query::error::SqlError;
use fleetdb::query::scalar::Scalar;

fn session() -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        maintenance_interval: None,
        wal: fleetdb::wal::WalOptions { segment_bytes: 1 << 20, ..Default::default() },
        ..Default::default()
    };
    let (e, _) = Engine::open(dir.path(), cfg).unwrap();
    (dir, Session::new(Services::of(&e).unwrap()))
}

/// A session whose datastores cut their files into blocks of `block_rows` rows (so that what
/// is decoded, and what is not, shows with few rows).
fn session_with_blocks_of(block_rows: u32) -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        maintenance_interval: None,
        datastore: fleetdb::datastore::DatastoreOptions { block_rows, ..Default::default() },
        ..Default::default()
    };
    let (e, _) = Engine::open(dir.path(), cfg).unwrap();
    (dir, Session::new(Services::of(&e).unwrap()))
}

/// Runs `sql` and returns the last statement's rows as text (NULL as "NULL").
fn rows(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for r in s.execute(sql) {
        match r.unwrap_or_else(|e| panic!("{sql}: {e}")) {
            Outcome::Rows { schema, batches } => {
                out.clear();
                for b in batches {
                    for i in 0..b.num_rows() {
                        out.push(
                            schema
                                .iter()
                                .zip(&b.columns)
                                .map(|(c, col)| {
                                    Scalar::from_column(col, c.ty, i).to_text(c.ty).unwrap_or_else(|| "NULL".into())
                                })
                                .collect(),
                        );
                    }
                }
            }
            Outcome::Done(_) => {}
            other => panic!("{sql}: unexpected {other:?}"),
        }
    }
    out
}

fn err(s: &mut Session, sql: &str) -> SqlError {
    s.execute(sql).into_iter().find_map(std::result::Result::err).unwrap_or_else(|| panic!("{sql} should fail"))
}

#[test]
fn tables_insert_update_delete_and_query() {
    let (_d, mut s) = session();
    rows(&mut s, "CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT, capacity INT)");
    rows(
        &mut s,
        "INSERT INTO machines VALUES ('M-1', 'CNC', 'plant-a', 10), ('M-2', 'PRESS', 'plant-a', 20), ('M-3', 'CNC', 'plant-b', NULL)",
    );
    assert_eq!(
        rows(&mut s, "SELECT count(*), sum(capacity), avg(capacity) FROM machines"),
        vec![vec!["3", "30", "15"]]
    );
    assert_eq!(
        rows(&mut s, "SELECT model_type, count(*) AS n FROM machines GROUP BY model_type ORDER BY n DESC, model_type"),
        vec![vec!["CNC", "2"], vec!["PRESS", "1"]]
    );
    let e = err(&mut s, "INSERT INTO machines VALUES ('M-1', 'X', 'Y', 1)");
    assert_eq!(e.sqlstate, "23505");
    rows(&mut s, "INSERT INTO machines VALUES ('M-1', 'X', 'Y', 1) ON CONFLICT DO NOTHING");
    rows(&mut s, "UPDATE machines SET capacity = capacity * 2 WHERE location = 'plant-a'");
    assert_eq!(
        rows(&mut s, "SELECT machine_id, capacity FROM machines ORDER BY 1"),
        vec![vec!["M-1", "20"], vec!["M-2", "40"], vec!["M-3", "NULL"]]
    );
    rows(&mut s, "DELETE FROM machines WHERE capacity IS NULL");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM machines"), vec![vec!["2"]]);
    assert_eq!(err(&mut s, "INSERT INTO machines (machine_id) VALUES (NULL)").sqlstate, "23502");
}

#[test]
fn datastore_insert_and_time_queries() {
    let (_d, mut s) = session();
    rows(&mut s, "CREATE DATASTORE readings WITH (retention = '365 days')");
    rows(
        &mut s,
        "INSERT INTO readings (time, machine_id, vibration) VALUES
           ('2026-01-01 00:00:00+00', 'M-1', 1.5), ('2026-01-01 00:00:10+00', 'M-1', 2.5),
           ('2026-01-02 00:00:00+00', 'M-2', 0.0), ('2026-01-02 00:00:10+00', 'M-2', 4.0)",
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT machine_id, avg(vibration), max(time) FROM readings WHERE vibration > 0 GROUP BY machine_id ORDER BY machine_id"
        ),
        vec![vec!["M-1", "2", "2026-01-01 00:00:10+00"], vec!["M-2", "4", "2026-01-02 00:00:10+00"]]
    );
    assert_eq!(
        rows(&mut s, "SELECT __dt, count(*) FROM readings GROUP BY __dt ORDER BY 1"),
        vec![vec!["2026-01-01", "2"], vec!["2026-01-02", "2"]]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT date_trunc('day', time) AS d, count(*) FROM readings WHERE time >= '2026-01-02' GROUP BY 1"
        ),
        vec![vec!["2026-01-02 00:00:00+00", "2"]]
    );
    // Flushed to files, the time filter prunes the first day's file.
    s.engine().checkpoint().unwrap();
    let plan = rows(&mut s, "EXPLAIN ANALYZE SELECT count(*) FROM readings WHERE time >= '2026-01-02'");
    let text: Vec<String> = plan.into_iter().map(|r| r[0].clone()).collect();
    assert!(text.iter().any(|l| l.contains("files: 1 of 2 pruned")), "{text:#?}");
    // Every operator reports its time and rows out.
    assert!(text[0].starts_with("Project") && text[0].contains("rows=1)"), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("HashAggregate") && l.contains("actual time=")), "{text:#?}");
    // The second day's block lies wholly in the range: its statistics answer, no row is read.
    assert!(
        text.iter().any(|l| l.contains("Datastore Scan")
            && l.contains("rows=0)")
            && l.contains("blocks answered from statistics: 1")),
        "{text:#?}"
    );
    assert_eq!(rows(&mut s, "SELECT count(*) FROM readings WHERE time >= '2026-01-02'"), vec![vec!["2"]]);
    let plan = rows(&mut s, "EXPLAIN ANALYZE SELECT count(*) FROM readings WHERE time >= '2026-01-02 00:00:01'");
    let text: Vec<String> = plan.into_iter().map(|r| r[0].clone()).collect();
    // The range cuts that block: both rows are decoded, and the one inside it (found by time,
    // the block being in time order) is all that leaves the scan.
    assert!(
        text.iter().any(|l| l.contains("Datastore Scan") && l.contains("rows=1)") && l.contains("rows scanned: 2")),
        "{text:#?}"
    );
    assert_eq!(rows(&mut s, "SELECT count(*) FROM readings WHERE time >= '2026-01-02 00:00:01'"), vec![vec!["1"]]);
    // Block min/max prune numeric conditions: day 1 holds vibration 1.5..2.5, day 2 0..4.
    let plan = rows(&mut s, "EXPLAIN ANALYZE SELECT count(*) FROM readings WHERE vibration >= 3 AND vibration < 10");
    let text: Vec<String> = plan.into_iter().map(|r| r[0].clone()).collect();
    assert!(
        text.iter().any(|l| l.contains("vibration in [3, inf]") && l.contains("vibration in [-inf, 10]")),
        "{text:#?}"
    );
    assert!(text.iter().any(|l| l.contains("blocks: 1 of 2 pruned")), "{text:#?}");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM readings WHERE vibration >= 3 AND vibration < 10"), vec![vec!["1"]]);
    assert_eq!(rows(&mut s, "SELECT count(*) FROM readings WHERE 2.5 = vibration"), vec![vec!["1"]]);
    // The tag index prunes by machine: the first day's file holds no M-2 rows.
    let plan = rows(&mut s, "EXPLAIN ANALYZE SELECT count(*) FROM readings WHERE machine_id = 'M-2'");
    let text: Vec<String> = plan.into_iter().map(|r| r[0].clone()).collect();
    assert!(text.iter().any(|l| l.contains("tag machine_id = 'M-2'")), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("files: 1 of 2 pruned")), "{text:#?}");
    assert_eq!(
        rows(&mut s, "SELECT count(*), max(vibration) FROM readings WHERE machine_id = 'M-2'"),
        vec![vec!["2", "4"]]
    );
    assert_eq!(rows(&mut s, "SELECT count(*) FROM readings WHERE machine_id = 'M-9'"), vec![vec!["0"]]);
    assert_eq!(rows(&mut s, "SHOW DATASTORES")[0][..3], ["readings", "365 days", "4"]);
}

#[test]
fn expressions_follow_postgres() {
    let (_d, mut s) = session();
    for (q, want) in [
        ("SELECT 7 / 2, 7 % 3, -7 / 2", vec!["3", "1", "-3"]),
        ("SELECT 1.5 + 1, 2 * 3.0", vec!["2.5", "6"]),
        ("SELECT 'a' || 'b', upper('x'), length('héllo')", vec!["ab", "X", "5"]),
        ("SELECT NULL IS NULL, 1 = NULL, coalesce(NULL, 2)", vec!["t", "NULL", "2"]),
        ("SELECT CASE WHEN 1 > 2 THEN 'a' ELSE 'b' END", vec!["b"]),
        ("SELECT 3 BETWEEN 1 AND 5, 'abc' LIKE 'a%', 'ABC' ILIKE 'a_c'", vec!["t", "t", "t"]),
        ("SELECT 5 IN (1, 2, 5), 5 NOT IN (1, NULL)", vec!["t", "NULL"]),
        ("SELECT round(2.5), round(2.567, 2), abs(-3), sqrt(16.0)", vec!["3", "2.57", "3", "4"]),
        ("SELECT '2026-03-18 10:05:00+00'::timestamptz + interval '1 day'", vec!["2026-03-19 10:05:00+00"]),
        ("SELECT extract(hour from timestamptz '2026-03-18 10:05:00+00')", vec!["10"]),
        (
            "SELECT split_part('a,b,c', ',', 2), replace('aXa', 'X', '-'), substr('hello', 2, 3)",
            vec!["b", "a-a", "ell"],
        ),
        ("SELECT greatest(1, 5, 3), least(2.5, 1), nullif(1, 1)", vec!["5", "1", "NULL"]),
    ] {
        assert_eq!(rows(&mut s, q), vec![want.iter().map(std::string::ToString::to_string).collect::<Vec<_>>()], "{q}");
    }
    assert_eq!(err(&mut s, "SELECT 1 / 0").sqlstate, "22012");
    assert_eq!(err(&mut s, "SELECT 2147483647 + 1").sqlstate, "22003");
    assert_eq!(err(&mut s, "SELECT nosuch FROM nowhere").sqlstate, "42P01");
    assert_eq!(err(&mut s, "SELEC 1").sqlstate, "42601");
    assert_eq!(err(&mut s, "CREATE PIPELINE p FROM CHANNEL c INTO DATASTORE d").sqlstate, "42704");
    assert_eq!(err(&mut s, "REFRESH DATASET nosuch").sqlstate, "42704");
    assert_eq!(err(&mut s, "CREATE DATASET ds AS SELECT 1 WITH (schedule = 'hourly')").sqlstate, "22023");
}

#[test]
fn channel_payloads_answer_json_operators() {
    let (_d, mut s) = session();
    rows(&mut s, "CREATE CHANNEL raw");
    let mut m = fleetdb::channel::Messages::default();
    m.push(1_000_000, "m1", "factory/a", br#"{"machine_id": "M-1", "temperature": 71.5, "engine": {"rpm": 1200}}"#);
    m.push(2_000_000, "m2", "factory/b", br#"{"machine_id": "M-2", "temperature": null, "engine": {"rpm": 0}}"#);
    m.push(3_000_000, "m3", "factory/b", br#"[1, 2]"#);
    s.engine().append_messages("raw", m).unwrap();
    assert_eq!(
        rows(
            &mut s,
            "SELECT __message_id, payload ->> 'machine_id', (payload -> 'engine' ->> 'rpm')::int, \
             jsonb_typeof(payload -> 'temperature'), payload #>> '{engine,rpm}' FROM raw ORDER BY __offset"
        ),
        vec![
            vec!["m1", "M-1", "1200", "number", "1200"],
            vec!["m2", "M-2", "0", "null", "0"],
            vec!["m3", "NULL", "NULL", "NULL", "NULL"],
        ]
    );
    assert_eq!(
        rows(&mut s, "SELECT avg((payload ->> 'temperature')::float8) FROM raw WHERE json_typeof(payload) = 'object'"),
        vec![vec!["71.5"]]
    );
    assert_eq!(err(&mut s, "SELECT payload -> true FROM raw").sqlstate, "42883");
}

#[test]
fn upsert_errors_follow_postgres() {
    let (_d, mut s) = session();
    rows(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v INT)");
    rows(&mut s, "INSERT INTO t VALUES (1, 1)");
    let twice = "INSERT INTO t VALUES (1, 2), (1, 3) ON CONFLICT (id) DO UPDATE SET v = excluded.v";
    assert_eq!(err(&mut s, twice).sqlstate, "21000");
    assert_eq!(err(&mut s, "INSERT INTO t VALUES (1, 2) ON CONFLICT (v) DO UPDATE SET v = 0").sqlstate, "42P10");
    assert_eq!(err(&mut s, "INSERT INTO t VALUES (1, 2) ON CONFLICT DO UPDATE SET v = 0").sqlstate, "42601");
    assert_eq!(rows(&mut s, "SELECT v FROM t"), vec![vec!["1"]]);
    rows(&mut s, "INSERT INTO t VALUES (1, 9) ON CONFLICT (id) DO UPDATE SET v = t.v * 10 + excluded.v");
    assert_eq!(rows(&mut s, "SELECT v FROM t"), vec![vec!["19"]]);
}

fn open_session(dir: &std::path::Path) -> Session {
    let cfg = EngineConfig {
        maintenance_interval: None,
        wal: fleetdb::wal::WalOptions { segment_bytes: 1 << 20, ..Default::default() },
        ..Default::default()
    };
    Session::new(Services::of(&Engine::open(dir, cfg).unwrap().0).unwrap())
}

#[test]
fn altered_tables_come_back_from_the_wal_from_snapshots_and_after_rename() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_session(dir.path());
    rows(&mut s, "CREATE TABLE m (id TEXT PRIMARY KEY, model TEXT, rating INT)");
    rows(&mut s, "INSERT INTO m VALUES ('a', 'X', 1), ('b', 'Y', NULL)");
    rows(
        &mut s,
        "ALTER TABLE m ADD COLUMN zone TEXT DEFAULT 'north', RENAME COLUMN model TO model_type; \
         ALTER TABLE m ALTER COLUMN rating TYPE text; ALTER TABLE m DROP COLUMN rating",
    );
    rows(&mut s, "INSERT INTO m (id) VALUES ('c')");
    let want = vec![
        vec!["a".to_string(), "X".into(), "north".into()],
        vec!["b".into(), "Y".into(), "north".into()],
        vec!["c".into(), "NULL".into(), "north".into()],
    ];
    assert_eq!(rows(&mut s, "SELECT * FROM m ORDER BY id"), want);
    // Crash (no checkpoint): the schema changes replay from the WAL with the rows around them.
    drop(s);
    let mut s = open_session(dir.path());
    assert_eq!(rows(&mut s, "SELECT * FROM m ORDER BY id"), want);
    assert_eq!(
        rows(&mut s, "SELECT column_default FROM information_schema.columns WHERE column_name = 'zone'"),
        [["'north'"]]
    );
    // A checkpoint keeps the new schema beside the snapshot.
    s.engine().checkpoint().unwrap();
    let tdir = dir.path().join("tables/m");
    let schema_files = || {
        let mut v: Vec<String> = std::fs::read_dir(&tdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".schema"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(schema_files().len(), 1);
    drop(s);
    // A schema file without its snapshot (a checkpoint cut short) is ignored and removed.
    let stray = tdir.join(format!("{:020}.schema", 999_999));
    std::fs::copy(tdir.join(&schema_files()[0]), &stray).unwrap();
    let mut s = open_session(dir.path());
    assert_eq!(rows(&mut s, "SELECT * FROM m ORDER BY id"), want);
    assert!(!stray.exists());
    // Rename: the old name is gone, the rows and later writes stay with the new one.
    rows(&mut s, "ALTER TABLE m RENAME TO machines; INSERT INTO machines VALUES ('d', 'Z', 'south')");
    assert_eq!(err(&mut s, "SELECT * FROM m").sqlstate, "42P01");
    assert_eq!(err(&mut s, "ALTER TABLE machines RENAME TO machines").sqlstate, "42P07");
    drop(s);
    let mut s = open_session(dir.path());
    assert_eq!(rows(&mut s, "SELECT count(*), max(zone) FROM machines"), [["4", "south"]]);
    // A new table under the old name starts empty: the old name's WAL records stay out of it.
    rows(&mut s, "CREATE TABLE m (id TEXT PRIMARY KEY)");
    drop(s);
    let mut s = open_session(dir.path());
    assert_eq!(rows(&mut s, "SELECT count(*) FROM m"), [["0"]]);
}

#[test]
fn concurrent_read_modify_writes_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_session(dir.path());
    rows(&mut s, "CREATE TABLE counters (id INT PRIMARY KEY, n INT); INSERT INTO counters VALUES (1, 0)");
    let engine = s.engine().clone();
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let e = engine.clone();
            std::thread::spawn(move || {
                let mut s = Session::new(Services::of(&e).unwrap());
                for i in 0..100 {
                    let sql = match i % 3 {
                        0 => "UPDATE counters SET n = n + 1 WHERE id = 1".to_string(),
                        1 => "INSERT INTO counters VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = counters.n + 1"
                            .to_string(),
                        _ => format!("INSERT INTO counters VALUES ({}, 0) ON CONFLICT DO NOTHING", 1000 * (w + 1) + i),
                    };
                    rows(&mut s, &sql);
                    if i % 3 == 2 {
                        rows(&mut s, &format!("DELETE FROM counters WHERE id = {}", 1000 * (w + 1) + i));
                    }
                }
            })
        })
        .collect();
    // Schema changes meanwhile must not lose a write either.
    for i in 0..20 {
        rows(&mut s, &format!("ALTER TABLE counters ADD COLUMN c{i} INT DEFAULT {i}"));
    }
    for w in workers {
        w.join().unwrap();
    }
    // 67 increments per worker (i % 3 in {0, 1}), every helper row deleted again.
    assert_eq!(rows(&mut s, "SELECT n, c19 FROM counters"), [["134", "19"]]);
}

#[test]
fn the_latest_row_per_series_comes_from_file_order_and_the_memtable() {
    // Blocks of four rows, so that what is decoded shows.
    let (_dir, mut s) = session_with_blocks_of(4);
    rows(&mut s, "CREATE DATASTORE r WITH (series_key = 'machine_id')");
    // Four rows a machine: day 1 for M-1..M-3, flushed; day 2 for M-1 and M-2 only (M-3
    // stopped reporting), flushed. M-3's latest row is at minute 2, not its last inserted.
    let day = |d: u32, machines: &[&str]| {
        let mut v = Vec::new();
        for (k, m) in machines.iter().enumerate() {
            for (i, minute) in [0, 1, 3, 2].iter().enumerate() {
                v.push(format!("('2026-01-0{d} 00:0{minute}:00+00', '{m}', {})", d * 100 + k as u32 * 10 + i as u32));
            }
        }
        format!("INSERT INTO r (time, machine_id, v) VALUES {}", v.join(", "))
    };
    rows(&mut s, &day(1, &["M-1", "M-2", "M-3"]));
    s.engine().checkpoint().unwrap();
    rows(&mut s, &day(2, &["M-1", "M-2"]));
    s.engine().checkpoint().unwrap();
    // In the memtable: a later M-2 row, and a late M-1 row older than what the files hold.
    rows(
        &mut s,
        "INSERT INTO r (time, machine_id, v) VALUES ('2026-01-03 00:00:00+00', 'M-2', 9), ('2025-12-31 00:00:00+00', 'M-1', 10)",
    );
    let q = "SELECT DISTINCT ON (machine_id) machine_id, time, v FROM r ORDER BY machine_id, time DESC";
    let want = vec![
        vec!["M-1", "2026-01-02 00:03:00+00", "202"],
        vec!["M-2", "2026-01-03 00:00:00+00", "9"],
        vec!["M-3", "2026-01-01 00:03:00+00", "122"],
    ];
    assert_eq!(rows(&mut s, q), want);
    // The same answer another way (no shortcut applies to a window function).
    assert_eq!(
        rows(
            &mut s,
            "SELECT machine_id, time, v FROM (SELECT *, row_number() OVER (PARTITION BY machine_id ORDER BY time DESC) AS n FROM r) t WHERE n = 1 ORDER BY 1"
        ),
        want
    );
    // Only the blocks holding a series' last row are decoded, and only for series without a
    // later row already: one of the newer day's two blocks (M-1; M-2 has a later memtable row),
    // one of the older day's three (M-3, which no newer row has).
    let plan: Vec<String> = rows(&mut s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect();
    assert!(plan.iter().any(|l| l.contains("blocks: 3 of 5 pruned; rows scanned: 10")), "{plan:#?}");
    assert!(plan.iter().any(|l| l.contains("each series' last rows from file order")), "{plan:#?}");
    // last(x, time) and max(time) per series are answered from the same rows.
    let agg = "SELECT machine_id, max(time), last(v, time) FROM r GROUP BY machine_id ORDER BY 1";
    assert_eq!(rows(&mut s, agg), want);
    let plan: Vec<String> = rows(&mut s, &format!("EXPLAIN ANALYZE {agg}")).into_iter().map(|r| r[0].clone()).collect();
    assert!(plan.iter().any(|l| l.contains("over each series' last rows from file order")), "{plan:#?}");
    assert!(plan.iter().any(|l| l.contains("blocks: 3 of 5 pruned")), "{plan:#?}");
    // Not min(time), not with another aggregate beside them.
    let plan: Vec<String> = rows(&mut s, "EXPLAIN SELECT machine_id, max(time), count(*) FROM r GROUP BY 1")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(plan.iter().all(|l| !l.contains("file order")), "{plan:#?}");
    assert_eq!(
        rows(&mut s, "SELECT machine_id, max(time), count(*) FROM r GROUP BY 1 ORDER BY 1"),
        vec![
            vec!["M-1", "2026-01-02 00:03:00+00", "9"],
            vec!["M-2", "2026-01-03 00:00:00+00", "9"],
            vec!["M-3", "2026-01-01 00:03:00+00", "4"]
        ]
    );
    // With a filter the shortcut does not apply (and EXPLAIN does not claim it).
    let plan: Vec<String> = rows(
        &mut s,
        "EXPLAIN SELECT DISTINCT ON (machine_id) machine_id, time FROM r WHERE v > 0 ORDER BY machine_id, time DESC",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert!(plan.iter().all(|l| !l.contains("file order")), "{plan:#?}");
}

#[test]
fn whole_blocks_are_answered_from_their_statistics() {
    // Blocks of four rows: a time filter leaves some whole and cuts others.
    let (_dir, mut s) = session_with_blocks_of(4);
    rows(
        &mut s,
        "CREATE DATASTORE r (machine_id TEXT, v DOUBLE PRECISION, n BIGINT, status TEXT) WITH (series_key = 'machine_id')",
    );
    // Two machines, ten minutes each: NULLs, a NaN, an infinity, large integers, NULL statuses.
    let mut vals = Vec::new();
    for (k, m) in ["M-1", "M-2"].iter().enumerate() {
        for i in 0..10i64 {
            let v = match (k, i) {
                (0, 3) => "NULL".to_string(),
                (0, 7) => "'NaN'".to_string(),
                (1, 5) => "'Infinity'".to_string(),
                _ => format!("{}.25", i * 3 - 7 + k as i64),
            };
            // Large, but their sums (numeric) stay below 2^53, where a double holds every integer.
            let n = if i == 4 { "NULL".to_string() } else { ((1i64 << 48) - i * 1_000_003).to_string() };
            let status = ["'run'", "'idle'", "NULL", "'run'", "'fault'"][(i as usize + k) % 5];
            vals.push(format!("('2026-01-01 00:{i:02}:00+00', '{m}', {v}, {n}, {status})"));
        }
    }
    rows(&mut s, &format!("INSERT INTO r (time, machine_id, v, n, status) VALUES {}", vals.join(", ")));
    s.engine().checkpoint().unwrap();
    // And rows in the memtable (not in any block).
    rows(
        &mut s,
        "INSERT INTO r (time, machine_id, v, n, status) VALUES ('2026-01-01 00:05:30+00', 'M-1', -100, 5, 'idle'), ('2026-01-01 00:09:30+00', 'M-3', NULL, NULL, NULL)",
    );
    let plan = |s: &mut Session, q: &str| -> Vec<String> {
        rows(s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect()
    };
    let aggs = "count(*), count(v), count(n), sum(v), avg(v), min(v), max(v), sum(n), avg(n), min(n), max(n), min(time), max(time)";
    for cond in [
        "",
        " WHERE time >= '2026-01-01 00:04:00+00'",
        " WHERE time > '2026-01-01 00:02:00+00' AND time < '2026-01-01 00:09:00+00'",
    ] {
        let q = format!("SELECT {aggs} FROM r{cond}");
        // The same aggregates with every row decoded (LIMIT keeps the statistics out).
        let plain = format!("SELECT {aggs} FROM (SELECT * FROM r{cond} LIMIT 1000) t");
        assert_eq!(rows(&mut s, &q), rows(&mut s, &plain), "{q}");
        let p = plan(&mut s, &q);
        assert!(p.iter().any(|l| l.contains("blocks answered from statistics")), "{p:#?}");
        let q = format!("SELECT status, count(*), count(status) FROM r{cond} GROUP BY status ORDER BY 1");
        let plain = format!(
            "SELECT status, count(*), count(status) FROM (SELECT * FROM r{cond} LIMIT 1000) t GROUP BY status ORDER BY 1"
        );
        assert_eq!(rows(&mut s, &q), rows(&mut s, &plain), "{q}");
        let p = plan(&mut s, &q);
        assert!(p.iter().any(|l| l.contains("blocks answered from statistics")), "{p:#?}");
    }
    // Known values, not only agreement: all history.
    assert_eq!(rows(&mut s, "SELECT count(*), count(v), max(v), min(v) FROM r"), [["22", "20", "NaN", "-100"]]);
    assert_eq!(rows(&mut s, "SELECT sum(v) FROM r WHERE machine_id = 'M-2'"), [["Infinity"]]);
    assert_eq!(
        rows(&mut s, "SELECT status, count(*) FROM r GROUP BY status ORDER BY 1"),
        [["fault", "4"], ["idle", "5"], ["run", "8"], ["NULL", "5"]]
    );
    // Another condition or a DISTINCT: every block is decoded.
    for q in [
        "SELECT count(*) FROM r WHERE v > 0",
        "SELECT count(DISTINCT n) FROM r",
        "SELECT status, max(v) FROM r GROUP BY 1",
    ] {
        let p = plan(&mut s, q);
        assert!(p.iter().all(|l| !l.contains("statistics")), "{q}: {p:#?}");
    }
    // A float sum that overflows from finite values is refused, from statistics too.
    rows(&mut s, "CREATE DATASTORE big (v DOUBLE PRECISION)");
    rows(
        &mut s,
        "INSERT INTO big (time, v) VALUES ('2026-01-01 00:00:00+00', 1e308), ('2026-01-01 00:01:00+00', 1e308), ('2026-01-01 00:02:00+00', 1e308), ('2026-01-01 00:03:00+00', 1e308)",
    );
    // As is a sum of bigint past what fleetdb's numeric (a double) holds exactly.
    rows(&mut s, "CREATE DATASTORE huge (n BIGINT)");
    rows(
        &mut s,
        "INSERT INTO huge (time, n) VALUES ('2026-01-01 00:00:00+00', 9223372036854775807), ('2026-01-01 00:01:00+00', 1)",
    );
    s.engine().checkpoint().unwrap();
    assert_eq!(err(&mut s, "SELECT sum(v) FROM big").sqlstate, "22003");
    assert_eq!(err(&mut s, "SELECT sum(n) FROM huge").sqlstate, "22003");
    assert_eq!(err(&mut s, "SELECT sum(n) FROM (SELECT * FROM huge LIMIT 10) t").sqlstate, "22003");
    assert!(plan(&mut s, "SELECT count(n) FROM huge").iter().any(|l| l.contains("blocks answered from statistics: 1")));
    assert!(plan(&mut s, "SELECT count(*) FROM big").iter().any(|l| l.contains("blocks answered from statistics: 1")));
}

#[test]
fn blocks_of_one_series_answer_per_series_aggregates_and_cut_blocks_are_searched_by_time() {
    // Blocks of at most four rows, ending where a machine's series does.
    let (_dir, mut s) = session_with_blocks_of(4);
    rows(&mut s, "CREATE DATASTORE r (machine_id TEXT, v DOUBLE PRECISION, n BIGINT) WITH (series_key = 'machine_id')");
    // (machine, minute, v, n): M-1 ten rows, M-2 seven (a NULL and a NaN), M-3 one, two rows
    // without a machine; and two rows left in the memtable.
    let mut data: Vec<(Option<&str>, i64, Option<f64>, i64)> = Vec::new();
    for (k, (m, len)) in [("M-1", 10), ("M-2", 7), ("M-3", 1)].into_iter().enumerate() {
        for i in 0..len {
            let v = match (k, i) {
                (1, 2) => None,
                (1, 5) => Some(f64::NAN),
                _ => Some(((i * 7 + k as i64 * 3) % 11) as f64 + 0.5),
            };
            data.push((Some(m), i, v, i * 1000 + k as i64));
        }
    }
    data.push((None, 1, Some(2.5), 7));
    data.push((None, 6, Some(-1.5), 8));
    let sql = |d: &[(Option<&str>, i64, Option<f64>, i64)]| {
        d.iter()
            .map(|(m, i, v, n)| {
                let v = match v {
                    None => "NULL".to_string(),
                    Some(x) if x.is_nan() => "'NaN'".to_string(),
                    Some(x) => x.to_string(),
                };
                let m = m.map_or("NULL".to_string(), |m| format!("'{m}'"));
                format!("('2026-01-01 00:{i:02}:00+00', {m}, {v}, {n})")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    rows(&mut s, &format!("INSERT INTO r (time, machine_id, v, n) VALUES {}", sql(&data)));
    s.engine().checkpoint().unwrap();
    let mem = [(Some("M-1"), 4, Some(100.5), 9), (Some("M-4"), 9, None, 10)];
    rows(&mut s, &format!("INSERT INTO r (time, machine_id, v, n) VALUES {}", sql(&mem)));
    data.extend(mem);
    let plan = |s: &mut Session, q: &str| -> Vec<String> {
        rows(s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect()
    };
    for (cond, lo, hi) in [
        ("", i64::MIN, i64::MAX),
        (" WHERE time >= '2026-01-01 00:02:00+00'", 2, i64::MAX),
        (" WHERE time > '2026-01-01 00:03:00+00' AND time < '2026-01-01 00:08:00+00'", 4, 8),
    ] {
        let q = format!(
            "SELECT machine_id, count(*), count(v), sum(v), min(v), max(v), sum(n), max(time) FROM r{cond} GROUP BY machine_id ORDER BY 1"
        );
        // Known values: computed here from the rows inserted.
        let mut want: Vec<Vec<String>> = Vec::new();
        let mut keys: Vec<Option<&str>> = data.iter().map(|d| d.0).collect();
        keys.sort_by_key(|k| (k.is_none(), *k));
        keys.dedup();
        for k in keys {
            let rs: Vec<_> = data.iter().filter(|d| d.0 == k && d.1 >= lo && d.1 < hi).collect();
            if rs.is_empty() {
                continue;
            }
            let vs: Vec<f64> = rs.iter().filter_map(|d| d.2).collect();
            let num = |x: f64| if x.is_nan() { "NaN".to_string() } else { x.to_string() };
            let nan = vs.iter().any(|x| x.is_nan());
            let finite: Vec<f64> = vs.iter().copied().filter(|x| !x.is_nan()).collect();
            want.push(vec![
                k.unwrap_or("NULL").to_string(),
                rs.len().to_string(),
                vs.len().to_string(),
                if vs.is_empty() { "NULL".into() } else { num(vs.iter().sum()) },
                finite.iter().copied().reduce(f64::min).map_or("NULL".into(), num),
                if nan { "NaN".into() } else { finite.iter().copied().reduce(f64::max).map_or("NULL".into(), num) },
                rs.iter().map(|d| d.3).sum::<i64>().to_string(),
                format!("2026-01-01 00:{:02}:00+00", rs.iter().map(|d| d.1).max().unwrap()),
            ]);
        }
        assert_eq!(rows(&mut s, &q), want, "{q}");
        let p = plan(&mut s, &q);
        let scan = p.iter().find(|l| l.contains("blocks answered from statistics")).unwrap_or_else(|| panic!("{p:#?}"));
        assert!(!scan.contains("statistics: 0"), "{scan}");
    }
    // A block the range cuts: only its rows inside the range leave the scan (M-1's last block
    // holds minutes 8 and 9; the other six blocks end before 9 and are skipped; the memtable's
    // two rows are read as they are).
    let q = "SELECT machine_id, v FROM r WHERE time >= '2026-01-01 00:09:00+00' ORDER BY 1";
    assert_eq!(rows(&mut s, q), [["M-1", "8.5"], ["M-4", "NULL"]]);
    let p = plan(&mut s, q);
    let scan = p.iter().find(|l| l.contains("Datastore Scan")).unwrap_or_else(|| panic!("{p:#?}"));
    assert!(scan.contains("rows=3)") && scan.contains("blocks: 6 of 7 pruned; rows scanned: 4"), "{scan}");
}

#[test]
fn per_value_counts_past_their_cap_are_counted_from_rows() {
    // Blocks of 256 rows, 128 values each: 100,000 values in all, past the 65,536 values whose
    // counts are added up from statistics; the blocks past the cap are decoded and grouped.
    use fleetdb::batch::{Batch, Column, DataType, Field, StrVec, Values};
    let (_dir, mut s) = session_with_blocks_of(256);
    rows(&mut s, "CREATE DATASTORE w (k TEXT) WITH (series_key = 'k')");
    let n = 200_000i64;
    let keys: Vec<String> = (0..n).map(|i| format!("k{:06}", i / 2)).collect();
    let batch = Batch::try_new(
        vec![Field::new("time", DataType::Timestamp), Field::new("k", DataType::Text)],
        vec![
            Column::new(Values::Timestamp((0..n).map(|i| 1_767_225_600_000_000 + i).collect())),
            Column::new(Values::Text(keys.iter().map(|k| k.as_str()).collect::<StrVec>())),
        ],
    )
    .unwrap();
    s.engine().append_rows("w", batch, None).unwrap();
    s.engine().checkpoint().unwrap();
    let q =
        "SELECT count(*), count(DISTINCT c), min(c), max(c), sum(c) FROM (SELECT k, count(*) AS c FROM w GROUP BY k) t";
    assert_eq!(rows(&mut s, q), [["100000", "1", "2", "2", "200000"]]);
    let inner: Vec<String> = rows(&mut s, "EXPLAIN ANALYZE SELECT k, count(*) FROM w GROUP BY k")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let scan =
        inner.iter().find(|l| l.contains("blocks answered from statistics")).unwrap_or_else(|| panic!("{inner:#?}"));
    assert!(!scan.contains("rows scanned: 0;"), "blocks past the cap are decoded: {scan}");
}

#[test]
fn scans_read_ahead_and_order_by_limit_keeps_only_the_best_rows() {
    let (_d, mut s) = session();
    rows(&mut s, "CREATE DATASTORE r (machine_id TEXT, v DOUBLE PRECISION) WITH (series_key = 'machine_id')");
    let vals: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                "('2026-01-01 00:00:00+00'::timestamptz + interval '{i} seconds', 'M-{}', {})",
                i % 7,
                (i * 37) % 1001
            )
        })
        .collect();
    rows(&mut s, &format!("INSERT INTO r (time, machine_id, v) VALUES {}", vals.join(", ")));
    s.engine().checkpoint().unwrap();
    let plan = |s: &mut Session, q: &str| -> Vec<String> {
        rows(s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect()
    };
    let q = "SELECT machine_id, max(v), count(*) FROM r WHERE v > 500 GROUP BY 1 ORDER BY 1";
    let got = rows(&mut s, q);
    assert_eq!(got.len(), 7);
    assert_eq!(got.iter().map(|r| r[2].parse::<i64>().unwrap()).sum::<i64>(), 1497, "{got:?}");
    // Top-N: the best rows of an ORDER BY … LIMIT, as a full sort gives them.
    let top = "SELECT machine_id, v, time FROM r ORDER BY v DESC, time LIMIT 5 OFFSET 2";
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        // The aggregate takes the scan in morsels (one here: the file is small) and decodes,
        // filters and aggregates each where it is taken; the scan under the filter still
        // reports its rows (counted on the aggregate's threads).
        let p = plan(&mut s, q);
        assert!(p.iter().any(|l| l.contains("decoded, filtered and aggregated in 1 morsel on 1 thread")), "{p:#?}");
        assert!(p.iter().any(|l| l.contains("Datastore Scan") && l.contains("rows=3000)")), "{p:#?}");
        // A top-N takes its scan in morsels too, each thread keeping its best rows.
        let p = plan(&mut s, top);
        assert!(
            p.iter().any(|l| l.contains("decoded, filtered and their best rows kept in 1 morsel on 1 thread")),
            "{p:#?}"
        );
        // An aggregate that cannot be computed in parts reads its scan ahead, on a thread of
        // its own.
        let p = plan(&mut s, "SELECT machine_id, string_agg(v::text, ',') FROM r WHERE v > 500 GROUP BY 1");
        assert!(p.iter().any(|l| l.contains("read ahead on a thread of its own")), "{p:#?}");
    }
    let full = "SELECT machine_id, v, time FROM (SELECT * FROM r ORDER BY v DESC, time) t LIMIT 5 OFFSET 2";
    let want = rows(&mut s, full);
    assert_eq!(rows(&mut s, top), want);
    assert_eq!(want[0][1], "1000");
    let p = plan(&mut s, top);
    assert!(p.iter().any(|l| l.contains("top-N: the sort keeps the best 7 rows")), "{p:#?}");
    assert_eq!(rows(&mut s, "SELECT v FROM r ORDER BY v LIMIT 2 OFFSET 2999"), [["1000"]]);
    assert!(rows(&mut s, "SELECT v FROM r ORDER BY v LIMIT 2 OFFSET 3000").is_empty());
}

#[test]
fn conditions_on_one_side_of_a_join_are_applied_below_it() {
    let (_d, mut s) = session();
    rows(&mut s, "CREATE DATASTORE r");
    rows(&mut s, "CREATE TABLE m (machine_id TEXT PRIMARY KEY, model TEXT)");
    rows(&mut s, "INSERT INTO m VALUES ('M-1', 'A'), ('M-2', 'B')");
    rows(
        &mut s,
        "INSERT INTO r (time, machine_id, v) VALUES ('2026-01-01 00:00:00+00', 'M-1', 1), ('2026-01-01 00:00:00+00', 'M-2', 2)",
    );
    s.engine().checkpoint().unwrap();
    rows(
        &mut s,
        "INSERT INTO r (time, machine_id, v) VALUES ('2026-01-02 00:00:00+00', 'M-1', 3), ('2026-01-02 00:00:00+00', 'M-2', 4)",
    );
    s.engine().checkpoint().unwrap();
    let q = "SELECT m.model, sum(r.v) FROM r JOIN m ON r.machine_id = m.machine_id WHERE r.time >= '2026-01-02' AND m.model <> 'B' GROUP BY 1";
    assert_eq!(rows(&mut s, q), vec![vec!["A", "3"]]);
    let plan: Vec<String> = rows(&mut s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect();
    // Each condition sits under the join, on its side; the time condition prunes a file.
    let join = plan.iter().position(|l| l.contains("Join")).expect("a join");
    let filters: Vec<usize> =
        plan.iter().enumerate().filter(|(_, l)| l.trim_start().starts_with("Filter")).map(|(i, _)| i).collect();
    assert!(filters.len() == 2 && filters.iter().all(|&i| i > join), "{plan:#?}");
    assert!(plan.iter().any(|l| l.contains("files: 1 of 2 pruned")), "{plan:#?}");
    // Not below the side a LEFT JOIN fills with NULLs: there it would keep rows WHERE drops.
    let left = "SELECT m.model, count(r.v) FROM m LEFT JOIN r ON r.machine_id = m.machine_id WHERE r.v > 3 GROUP BY 1";
    assert_eq!(rows(&mut s, left), vec![vec!["B", "1"]]);
    let plan: Vec<String> = rows(&mut s, &format!("EXPLAIN {left}")).into_iter().map(|r| r[0].clone()).collect();
    let join = plan.iter().position(|l| l.contains("Join")).expect("a join");
    assert!(plan.iter().position(|l| l.trim_start().starts_with("Filter")).is_some_and(|f| f < join), "{plan:#?}");
}

#[test]
fn top_n_over_morsels_on_several_threads_keeps_ties_in_scan_order() {
    // 90,000 rows in two files and the memtable, keys with many ties and NULLs: ORDER BY …
    // LIMIT runs on the morsels' threads, each keeping its best rows, and must give the first
    // rows of the full (stable) sort, ties in scan order, with OFFSET, a filter and
    // expressions as keys.
    let (_dir, mut s) = session_with_blocks_of(1024);
    rows(&mut s, "CREATE DATASTORE d (k TEXT, x DOUBLE PRECISION, i BIGINT) WITH (series_key = 'k')");
    for (from, to) in [(0, 40_000), (40_000, 80_000), (80_000, 90_000)] {
        let values: Vec<String> = (from..to)
            .map(|r: i64| {
                let x = if r % 13 == 0 { "NULL".to_string() } else { format!("{}", (r * 7) % 50) };
                let t = 1_767_225_600 + r;
                format!("(to_timestamp({t}), 'm{:02}', {x}, {})", (r * 7919) % 37, (r * 31) % 101)
            })
            .collect();
        for chunk in values.chunks(5000) {
            rows(&mut s, &format!("INSERT INTO d (time, k, x, i) VALUES {}", chunk.join(", ")));
        }
        if to < 90_000 {
            s.engine().checkpoint().unwrap();
        }
    }
    // A table joined to the series (two keys without a row: NULLs in a LEFT JOIN).
    let ks: Vec<String> = (0..35).map(|k| format!("('m{k:02}', {})", k % 4)).collect();
    rows(&mut s, "CREATE TABLE ks (k TEXT PRIMARY KEY, w BIGINT)");
    rows(&mut s, &format!("INSERT INTO ks VALUES {}", ks.join(", ")));
    for (order, filter, limit, offset) in [
        ("x DESC", "", 50, 0),
        // Over joins probed on the morsels' threads.
        ("w NULLS FIRST, x, time", " LEFT JOIN ks USING (k)", 30, 0),
        ("w DESC, i", " JOIN ks USING (k) WHERE x > 10", 25, 3),
        ("x NULLS FIRST, i", "", 40, 0),
        ("i, k", "", 20, 100),
        ("k DESC, x", "WHERE i > 50", 30, 7),
        ("abs(x - 20) + i", "WHERE x IS NOT NULL", 25, 0),
        ("x, i", "", 30, 0),
        ("time DESC", "", 10, 0),
        ("time", "WHERE i <> 7", 12, 0),
        ("i DESC, time", "", 15, 0),
    ] {
        let cols = if filter.contains("JOIN") { "k, x, i, time, w" } else { "k, x, i, time" };
        let top = format!("SELECT {cols} FROM d {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}");
        let all = rows(&mut s, &format!("SELECT {cols} FROM d {filter} ORDER BY {order}"));
        let want: Vec<Vec<String>> = all.into_iter().skip(offset).take(limit).collect();
        assert_eq!(want.len(), limit, "{top}");
        assert_eq!(rows(&mut s, &top), want, "{top}");
        let p = rows(&mut s, &format!("EXPLAIN ANALYZE {top}"));
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert!(
                p.iter().any(|l| l[0].contains("their best rows kept in ") && l[0].contains(" morsels on 2 threads")),
                "{p:#?}"
            );
        }
    }
    // On one thread (a table is not a datastore), batches after the first cuts are filtered
    // by the last kept row's first key: doubles with NaN, -0 and NULLs (NaN only in the second
    // 64k-row batch: the first batch's cutoff must let them in), text, times.
    rows(&mut s, "CREATE TABLE f (v DOUBLE PRECISION, n BIGINT)");
    let fs: Vec<String> = (0..100_000)
        .map(|r| {
            let v = match r % 7 {
                0 if r >= 70_000 => "'NaN'::float8".to_string(),
                0 => "'-Infinity'::float8".to_string(),
                1 => "'-0'::float8".to_string(),
                2 => "0::float8".to_string(),
                3 => "NULL::float8".to_string(),
                4 => "'Infinity'::float8".to_string(),
                _ => format!("{}::float8", (r * 7919) % 1000 - 500),
            };
            format!("({v}, {r})")
        })
        .collect();
    for chunk in fs.chunks(10_000) {
        rows(&mut s, &format!("INSERT INTO f VALUES {}", chunk.join(", ")));
    }
    for (order, limit) in
        [("v", 20), ("v DESC", 20), ("v NULLS FIRST", 5), ("v DESC NULLS LAST", 30), ("v, n DESC", 7000)]
    {
        let top = format!("SELECT v, n FROM f ORDER BY {order} LIMIT {limit}");
        let all = rows(&mut s, &format!("SELECT v, n FROM f ORDER BY {order}"));
        assert_eq!(rows(&mut s, &top), all[..limit].to_vec(), "{top}");
    }
    let union = "(SELECT k, time FROM d WHERE i < 50 UNION ALL SELECT k, time FROM d WHERE i >= 50) u";
    for order in ["k DESC", "k, time DESC", "time"] {
        let top = format!("SELECT k, time FROM {union} ORDER BY {order} LIMIT 15");
        let all = rows(&mut s, &format!("SELECT k, time FROM {union} ORDER BY {order}"));
        assert_eq!(rows(&mut s, &top), all[..15].to_vec(), "{top}");
    }
    // Aggregates over a join on the morsels' threads, against one thread (string_agg cannot
    // be merged from parts, so its query runs on one).
    for join in ["JOIN", "LEFT JOIN"] {
        let q = |extra: &str| {
            format!(
                "SELECT w, count(*), sum(i), min(x), max(time){extra} FROM d {join} ks USING (k) WHERE i > 20 GROUP BY w ORDER BY w"
            )
        };
        let got = rows(&mut s, &q(""));
        let want: Vec<Vec<String>> = rows(&mut s, &q(", string_agg('', '')"))
            .into_iter()
            .map(|mut r| {
                r.pop();
                r
            })
            .collect();
        assert_eq!(got.len(), if join == "JOIN" { 4 } else { 5 }, "{join}: {got:?}");
        assert_eq!(got, want, "{join}");
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            let p = rows(&mut s, &format!("EXPLAIN ANALYZE {}", q("")));
            assert!(
                p.iter().any(|l| l[0].contains("aggregated in ") && l[0].contains(" morsels on 2 threads")),
                "{p:#?}"
            );
        }
    }
}

#[test]
fn top_n_passes_over_only_the_blocks_its_cutoff_puts_wholly_after_it() {
    // Narrow blocks (256 rows, 8 per series) in one file, series in key order. The first
    // series hold the highest values of `v` (the lowest of `i = -v`), so the rows a thread
    // keeps first set a tight cutoff, and most later blocks lie wholly after it. But a few
    // later blocks each hold one spike beyond every band: their min and max straddle the
    // cutoff and they must be decoded. A block skipped by its wrong end (min for max), or a
    // block whose max merely ties the cutoff (rows tying on the first key may win on the
    // next), would lose those rows.
    let (_dir, mut s) = session_with_blocks_of(256);
    rows(&mut s, "CREATE DATASTORE d (k TEXT, v DOUBLE PRECISION, i BIGINT) WITH (series_key = 'k')");
    let vals: Vec<String> = (0..40)
        .flat_map(|j: i64| {
            (0..2048).map(move |r: i64| {
                let spike = j >= 10 && r == 300 + 40 * j;
                // The last row of every fifth later series ties the first series' best band,
                // later in time (and in a later series) than any of its rows.
                let tie = j >= 10 && j % 5 == 0 && r == 2047;
                let v = if spike {
                    5000 + j
                } else if tie {
                    1006
                } else {
                    1000 - 10 * j + r % 7
                };
                format!("(to_timestamp({}), 'm{j:02}', {v}, {})", 1_767_225_600 + r, -v)
            })
        })
        .collect();
    for chunk in vals.chunks(8192) {
        rows(&mut s, &format!("INSERT INTO d (time, k, v, i) VALUES {}", chunk.join(", ")));
    }
    s.engine().checkpoint().unwrap();
    for (order, limit) in [
        ("v DESC", 10),
        ("v DESC, time DESC", 35),
        ("i", 10),
        ("i, k DESC", 33),
        ("v DESC NULLS LAST", 12),
        ("i DESC", 10),
    ] {
        let top = format!("SELECT k, v, i, time FROM d ORDER BY {order} LIMIT {limit}");
        let all = rows(&mut s, &format!("SELECT k, v, i, time FROM d ORDER BY {order}"));
        assert_eq!(rows(&mut s, &top), all[..limit].to_vec(), "{top}");
    }
    // The answer is the spikes, largest first: 30 of them, then the first series' top band.
    let got = rows(&mut s, "SELECT v FROM d ORDER BY v DESC LIMIT 31");
    assert_eq!(got[0][0], "5039");
    assert_eq!(got[29][0], "5010");
    assert_eq!(got[30][0], "1006");
}

#[test]
fn aggregates_over_morsels_on_several_threads_answer_as_one_thread_does() {
    // 150,000 rows in files (several morsels of blocks) and the memtable: every aggregate
    // that can be computed in parts, grouped by the series, by a computed key, and not
    // grouped. The same query with string_agg (which cannot be merged from parts) runs on
    // one thread over the scan in order: the rows must be the same, in the same order (groups
    // come out in the order of their first rows), numbers equal to 1e-9.
    use fleetdb::batch::{Batch, Column, DataType, Field, StrVec, Values};
    let (_dir, mut s) = session_with_blocks_of(1024);
    rows(
        &mut s,
        "CREATE DATASTORE d (k TEXT, x DOUBLE PRECISION, i BIGINT, b BOOLEAN, t TEXT) WITH (series_key = 'k')",
    );
    let append = |s: &mut Session, from: i64, to: i64| {
        let n = (to - from) as usize;
        let keys: Vec<String> = (from..to).map(|r| format!("m{:02}", (r * 7919) % 37)).collect();
        let texts: Vec<String> = (from..to).map(|r| format!("t{}", (r * 31) % 101)).collect();
        let mut x = Column::new(Values::Float64((from..to).map(|r| ((r * 7) % 1000) as f64 / 8.0 - 40.0).collect()));
        let mut valid = fleetdb::batch::Bitmap::new_set(n);
        (0..n).filter(|j| (from as usize + j).is_multiple_of(11)).for_each(|j| valid.set(j, false));
        x.validity = Some(valid);
        let batch = Batch::try_new(
            vec![
                Field::new("time", DataType::Timestamp),
                Field::new("k", DataType::Text),
                Field::new("x", DataType::Float64),
                Field::new("i", DataType::Int64),
                Field::new("b", DataType::Bool),
                Field::new("t", DataType::Text),
            ],
            vec![
                Column::new(Values::Timestamp((from..to).map(|r| 1_767_225_600_000_000 + r * 1_000_000).collect())),
                Column::new(Values::Text(keys.iter().map(|k| k.as_str()).collect::<StrVec>())),
                x,
                Column::new(Values::Int64((from..to).map(|r| (r * 13) % 977 - 300).collect())),
                Column::new(Values::Bool((from..to).map(|r| r % 5 != 0).collect())),
                Column::new(Values::Text(texts.iter().map(|k| k.as_str()).collect::<StrVec>())),
            ],
        )
        .unwrap();
        s.engine().append_rows("d", batch, None).unwrap();
    };
    append(&mut s, 0, 60_000);
    s.engine().checkpoint().unwrap();
    append(&mut s, 60_000, 120_000);
    s.engine().checkpoint().unwrap();
    append(&mut s, 120_000, 150_000);
    let aggs = "count(*), count(x), sum(i), sum(x), avg(x), avg(i), min(x), max(x), min(i), max(time), min(t), \
                max(t), stddev_samp(x), var_pop(i), bool_and(b), bool_or(b), first(x, time), last(i, time), \
                count(DISTINCT t), count(DISTINCT i), percentile_cont(0.9) WITHIN GROUP (ORDER BY x), \
                percentile_disc(0.5) WITHIN GROUP (ORDER BY i), regr_slope(x, i), corr(i, x), covar_samp(x, i)";
    let same = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    };
    // A sort holds all its rows: 150,000 of them, a few MB.
    let p = rows(&mut s, "EXPLAIN ANALYZE SELECT k, x, t FROM d ORDER BY x, t");
    assert!(p.iter().any(|l| l[0].trim_start().starts_with("Sort") && l[0].contains("MB rows=150000)")), "{p:#?}");
    for (key, filter) in [
        ("k", "WHERE i > -200"),
        ("date_trunc('hour', time)", "WHERE time >= '2026-01-01 03:00:00+00'"),
        ("b", ""),
        ("", "WHERE x < 50"),
    ] {
        let (select, group) = if key.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{key}, "), format!(" GROUP BY {key}"))
        };
        let parallel = format!("SELECT {select}{aggs} FROM d {filter}{group}");
        let single = format!("SELECT {select}{aggs}, string_agg('', '') FROM d {filter}{group}");
        let p = rows(&mut s, &format!("EXPLAIN ANALYZE {parallel}"));
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert!(p.iter().any(|l| l[0].contains(" morsels on 2 threads")), "{p:#?}");
        }
        // The aggregate's memory peak: its threads' groups and what percentiles and DISTINCT
        // kept (150,000 values at least, whatever the grouping).
        let memory = p
            .iter()
            .find_map(|l| l[0].split_once("HashAggregate").and_then(|(_, r)| r.split_once(" memory=")))
            .map(|(_, r)| r.split(' ').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{p:#?}"));
        assert!(memory.ends_with("MB"), "{memory}: {p:#?}");
        let got = rows(&mut s, &parallel);
        let want: Vec<Vec<String>> = rows(&mut s, &single)
            .into_iter()
            .map(|mut r| {
                r.pop();
                r
            })
            .collect();
        assert!(got.len() > 1 || key.is_empty(), "{parallel}: {got:?}");
        assert!(!got.is_empty(), "{parallel}");
        assert_eq!(got.len(), want.len(), "{parallel}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.iter().zip(w).all(|(a, b)| same(a, b)), "{parallel}:\n{g:?}\n{w:?}");
        }
    }
}

/// Datastore `d` in files of one block per series: a at 00:00, 00:10, 00:20 (v 1, 2, 3), b at
/// 00:00, 00:20 (v 4, 5), c at 00:05 (v 9).
fn three_series() -> (tempfile::TempDir, Session) {
    let (d, mut s) = session_with_blocks_of(16);
    rows(&mut s, "CREATE DATASTORE d (k TEXT, v DOUBLE PRECISION) WITH (series_key = 'k')");
    rows(
        &mut s,
        "INSERT INTO d (time, k, v) VALUES ('2026-01-01 00:00:00+00', 'a', 1), ('2026-01-01 00:10:00+00', 'a', 2), \
         ('2026-01-01 00:20:00+00', 'a', 3), ('2026-01-01 00:00:00+00', 'b', 4), ('2026-01-01 00:20:00+00', 'b', 5), \
         ('2026-01-01 00:05:00+00', 'c', 9)",
    );
    s.engine().checkpoint().unwrap();
    (d, s)
}

#[test]
fn distinct_values_come_from_blocks_that_show_a_row_in_the_range() {
    // One block per series (see three_series). A one-series block whose first or last time is in the range has its value there; one the
    // range only cuts between its rows (b at 00:09–00:11) must be read.
    let (_d, mut s) = three_series();
    for (range, want, from_stats) in [
        ("time >= '2026-01-01 00:15:00+00'", "2", "blocks answered from statistics: 2"),
        ("time >= '2026-01-01 00:09:00+00' AND time < '2026-01-01 00:11:00+00'", "1", "rows scanned: 5"),
        ("time < '2026-01-01 00:06:00+00'", "3", "blocks answered from statistics: 3"),
    ] {
        let q = format!("SELECT count(DISTINCT k) FROM d WHERE {range}");
        assert_eq!(rows(&mut s, &q), [[want]], "{q}");
        let p: Vec<String> = rows(&mut s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect();
        assert!(p.iter().any(|l| l.contains(from_stats)), "{q}: {p:#?}");
    }
}

#[test]
fn having_on_the_only_max_filters_rows_first() {
    // HAVING max(v) > c, max(v) the only aggregate: rows with v <= c change no group it keeps,
    // so they are filtered before grouping and blocks whose max is <= c are not read.
    let (_d, mut s) = three_series();
    let q = "SELECT k, max(v) FROM d GROUP BY k HAVING max(v) > 4.5 ORDER BY 1";
    assert_eq!(rows(&mut s, q), [["b", "5"], ["c", "9"]]);
    let p: Vec<String> = rows(&mut s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect();
    assert!(p.iter().any(|l| l.contains("blocks: 1 of 3 pruned")), "{p:#?}");
    // With another aggregate the rows all count: nothing is filtered first.
    let q = "SELECT k, max(v), count(*) FROM d GROUP BY k HAVING max(v) > 4.5 ORDER BY 1";
    assert_eq!(rows(&mut s, q), [["b", "5", "2"], ["c", "9", "1"]]);
    let p: Vec<String> = rows(&mut s, &format!("EXPLAIN ANALYZE {q}")).into_iter().map(|r| r[0].clone()).collect();
    assert!(p.iter().any(|l| l.contains("blocks: 0 of 3 pruned")), "{p:#?}");
    // min(v) < c likewise; an OR is left alone.
    assert_eq!(rows(&mut s, "SELECT k, min(v) FROM d GROUP BY k HAVING min(v) < 2 ORDER BY 1"), [["a", "1"]]);
    assert_eq!(
        rows(&mut s, "SELECT k, max(v) FROM d GROUP BY k HAVING max(v) > 8 OR max(v) < 4 ORDER BY 1"),
        [["a", "3"], ["c", "9"]]
    );
}
