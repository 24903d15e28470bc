//! Differential suite: the same generated factory data is loaded into fleetdb and into a real
//! PostgreSQL server, then every query of `tests/sql/differential.sql` runs on both through
//! psql. Results must match: column names, rows (in order when the query has ORDER BY, as
//! multisets otherwise; numbers compared to 1e-9 relative), or the same SQLSTATE for errors.
//! PostgreSQL comes from the Debian package, started here on a free loopback port.

mod common;

use common::{Fleetdb, Postgres};
use fleetdb::sim::{Fleet, FleetConfig};

const SETUP_PG: &str = "
CREATE TABLE readings (time timestamptz, machine_id text, temperature double precision, vibration double precision,
  power double precision, rpm bigint, status text, __dt date GENERATED ALWAYS AS ((time AT TIME ZONE 'UTC')::date) STORED);
CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT, capacity INT);
CREATE TABLE nums (id INT PRIMARY KEY, a INT, b BIGINT, x DOUBLE PRECISION, s TEXT, flag BOOLEAN);
CREATE TABLE docs (id INT PRIMARY KEY, doc JSON);
CREATE TABLE upserts (id INT PRIMARY KEY, name TEXT, hits INT, seen TIMESTAMPTZ);
CREATE TABLE blobs (id INT PRIMARY KEY, b BYTEA);";

const SETUP_FLEETDB: &str = "
CREATE DATASTORE readings WITH (series_key = 'machine_id');
CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT, capacity INT);
CREATE TABLE nums (id INT PRIMARY KEY, a INT, b BIGINT, x DOUBLE PRECISION, s TEXT, flag BOOLEAN);
CREATE TABLE docs (id INT PRIMARY KEY, doc JSON);
CREATE TABLE upserts (id INT PRIMARY KEY, name TEXT, hits INT, seen TIMESTAMPTZ);
CREATE TABLE blobs (id INT PRIMARY KEY, b BYTEA);";

fn data_sql() -> Vec<String> {
    let mut fleet = Fleet::new(FleetConfig { machines: 12, seed: 42, ..Default::default() });
    let mut readings = Vec::new();
    for _ in 0..120 {
        readings.extend(fleet.next_readings());
    }
    let num = |v: Option<f64>| v.map_or("NULL".to_string(), |x| x.to_string());
    // A quarter of the machines also have older readings, five days before: each series'
    // latest row is then in a newer day than some of its rows (in files: loaded first).
    let older: Vec<(i64, &fleetdb::sim::Reading)> =
        readings.iter().filter(|r| r.machine % 4 == 0).take(30).map(|r| (-5, r)).collect();
    let rows: Vec<String> = older
        .into_iter()
        .chain(readings.iter().map(|r| (0, r)))
        .map(|(shift, r)| {
            format!(
                "('{}', '{}', {}, {}, {}, {}, '{}')",
                fleetdb::util::time::format_timestamp(r.time + 86_400_000_000 * (r.machine as i64 % 3 + shift)),
                fleet.machine_ids()[r.machine],
                num(r.temperature),
                num(r.vibration),
                num(r.power),
                r.rpm.map_or("NULL".to_string(), |x| x.to_string()),
                r.status
            )
        })
        .collect();
    let mut out: Vec<String> = rows
        .chunks(400)
        .map(|c| {
            format!(
                "INSERT INTO readings (time, machine_id, temperature, vibration, power, rpm, status) VALUES {}",
                c.join(", ")
            )
        })
        .collect();
    let m = fleet.machines();
    let mut mrows = Vec::new();
    for i in 0..m.num_rows() {
        let get = |c: usize| match &m.columns[c].values {
            fleetdb::batch::Values::Text(v) => v.get(i).to_string(),
            _ => unreachable!("machines are text"),
        };
        let cap = if i % 5 == 3 { "NULL".to_string() } else { ((i % 4 + 1) * 10).to_string() };
        mrows.push(format!("('{}', '{}', '{}', {cap})", get(0), get(1), get(2)));
    }
    mrows.push("('M-9999', 'UNKNOWN', NULL, NULL)".into());
    out.push(format!("INSERT INTO machines VALUES {}", mrows.join(", ")));
    out.push(
        "INSERT INTO nums VALUES (1, 10, 100, 1.5, 'alpha', true), (2, -3, 2147483648, -0.25, 'Beta', false), \
         (3, NULL, NULL, NULL, NULL, NULL), (4, 10, -5, 1e10, 'gamma', true), (5, 0, 0, 0, '', false), \
         (6, 2147483647, 9223372036854775807, 3.75, 'alpha', NULL), (7, -2147483648, -9223372036854775808, -1e-5, 'δelta', true)"
            .into(),
    );
    // Upserts, then the table's state is compared like any query result.
    out.extend(
        [
            "INSERT INTO upserts VALUES (1, 'a', 1, '2026-01-01 00:00:00+00'), (2, 'b', 1, NULL), (3, 'c', NULL, NULL)",
            "INSERT INTO upserts VALUES (1, 'a2', 5, '2026-01-02 00:00:00+00'), (4, 'd', 1, NULL) \
             ON CONFLICT (id) DO UPDATE SET hits = upserts.hits + excluded.hits, name = excluded.name",
            "INSERT INTO upserts AS u (id, name, hits) VALUES (2, 'b2', 10), (3, 'c2', 7), (5, 'e', 0) \
             ON CONFLICT (id) DO UPDATE SET hits = coalesce(u.hits, 0) + excluded.hits, seen = timestamptz '2026-03-01 00:00:00+00' WHERE u.hits IS NULL",
            "INSERT INTO upserts (id, name) VALUES (5, 'e2') ON CONFLICT (id) DO NOTHING",
            r"INSERT INTO blobs VALUES (1, '\x0102ff'), (2, 'abc'), (3, 'a\\b'), (4, NULL), (5, '\x')",
        ]
        .map(String::from),
    );
    out.push(
        r#"INSERT INTO docs VALUES (1, '{"machine": "M-1", "temp": 71.5, "tags": ["a", "b"], "engine": {"rpm": 1200, "ok": true}}'),
         (2, '{"machine": "M-2", "temp": null, "tags": [], "engine": {"rpm": 0, "ok": false}, "note": "say \"hi\"\n"}'),
         (3, '[1, "two", {"three": 3}, null]'), (4, '"just a string"'), (5, '42'), (6, NULL),
         (7, '{"a": 1, "a": 2, "deep": {"x": {"y": [10, 20, 30]}}}')"#
            .into(),
    );
    out
}

#[derive(Debug, PartialEq)]
enum Answer {
    Rows(Vec<String>, Vec<Vec<String>>),
    Error(String),
}

fn answer(out: std::process::Output) -> Answer {
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let code = err.split("ERROR:  ").nth(1).and_then(|r| r.split(':').next()).unwrap_or(&err).trim().to_string();
        return Answer::Error(code);
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").split('|').map(str::to_string).collect();
    let rows = lines.map(|l| l.split('|').map(str::to_string).collect()).collect();
    Answer::Rows(header, rows)
}

fn cell_eq(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    // Whole numbers exactly (a tolerance would pass 9223372036854775808 for …807); other
    // numbers within the last digits a double carries.
    if let (Ok(_), Ok(_)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return false;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

fn rows_eq(a: &[Vec<String>], b: &[Vec<String>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| cell_eq(p, q)))
}

#[test]
fn fleetdb_answers_like_postgres() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    // Blocks of at most 16 rows, ending where a machine's series does: queries meet blocks
    // wholly inside their time range (answered from statistics, per machine too) and blocks
    // the range cuts (searched by time), as well as memtable rows.
    // The memtable is kept however long the queries take (they must read it beside files).
    let db = Fleetdb::start_with(dir.path(), &["--block-rows", "16", "--memtable-idle-flush", "0"], &[]);
    for stmt in SETUP_PG.split(';').filter(|s| !s.trim().is_empty()) {
        common::ok(pg.psql(stmt), stmt);
    }
    for stmt in SETUP_FLEETDB.split(';').filter(|s| !s.trim().is_empty()) {
        common::ok(db.psql(stmt), stmt);
    }
    let data = data_sql();
    let readings = data.iter().filter(|s| s.starts_with("INSERT INTO readings")).count();
    for (i, stmt) in data.iter().enumerate() {
        common::ok(pg.psql(stmt), "load into PostgreSQL");
        common::ok(db.psql(stmt), "load into fleetdb");
        // Half the readings in files, half in the memtable: queries read both.
        if i + 1 == readings / 2 {
            common::ok(db.psql("CHECKPOINT"), "checkpoint");
        }
    }
    let queries = include_str!("sql/differential.sql");
    let mut failures = Vec::new();
    let mut count = 0;
    // `-- fleetdb refuses: <SQLSTATE> …` before a query: PostgreSQL answers it, fleetdb must
    // refuse it with that error (a value its types cannot hold), never answer otherwise.
    let mut refuses: Option<String> = None;
    for q in queries.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = q.strip_prefix("-- fleetdb refuses: ") {
            refuses = rest.split_whitespace().next().map(str::to_string);
            continue;
        }
        if q.starts_with("--") {
            continue;
        }
        count += 1;
        let want = answer(pg.psql(q));
        let got = answer(db.psql(q));
        if let Some(code) = refuses.take() {
            if !matches!(want, Answer::Rows(..)) || got != Answer::Error(code.clone()) {
                failures.push(format!("{q}\n  postgres: {want:?}\n  fleetdb:  {got:?} (must refuse it: {code})"));
            }
            continue;
        }
        let same = match (&want, &got) {
            (Answer::Error(a), Answer::Error(b)) => a == b,
            (Answer::Rows(h1, r1), Answer::Rows(h2, r2)) if h1 == h2 => {
                if q.to_ascii_uppercase().contains("ORDER BY") {
                    rows_eq(r1, r2)
                } else {
                    let (mut a, mut b) = (r1.clone(), r2.clone());
                    a.sort();
                    b.sort();
                    rows_eq(&a, &b)
                }
            }
            _ => false,
        };
        if !same {
            let show = |a: &Answer| match a {
                Answer::Error(c) => format!("ERROR {c}"),
                Answer::Rows(h, r) => format!("{h:?} {} rows: {:?}", r.len(), r.iter().take(4).collect::<Vec<_>>()),
            };
            failures.push(format!("{q}\n  postgres: {}\n  fleetdb:  {}", show(&want), show(&got)));
        }
    }
    assert!(count >= 100, "the differential suite should hold at least 100 queries, has {count}");
    assert!(
        failures.is_empty(),
        "{} of {count} queries differ from PostgreSQL:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} queries answered exactly as PostgreSQL answers them");
}
