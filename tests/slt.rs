//! A sqllogictest-style runner for `tests/slt/*.slt`, run in process through a `Session`.
//!
//! Records are separated by blank lines:
//! ```text
//! statement ok
//! CREATE TABLE t (a INT)
//!
//! statement error 23505
//! INSERT INTO t VALUES (1)
//!
//! query rowsort
//! SELECT a, b FROM t
//! ----
//! 1 x
//! NULL y
//! ```
//! Values print in PostgreSQL's text format, separated by single spaces; NULL is `NULL`.
//! `query` compares rows in order; `query rowsort` sorts both sides first.

use fleetdb::command::Services;
use fleetdb::command::session::{Outcome, Session};
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::query::scalar::Scalar;

fn run_file(name: &str, text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        maintenance_interval: None,
        wal: fleetdb::wal::WalOptions { segment_bytes: 1 << 20, ..Default::default() },
        ..Default::default()
    };
    let (engine, _) = Engine::open(dir.path(), cfg).unwrap();
    let mut s = Session::new(Services::of(&engine).unwrap());
    let mut failures = Vec::new();
    for (n, record) in text.split("\n\n").enumerate() {
        let lines: Vec<&str> = record.lines().filter(|l| !l.starts_with('#')).collect();
        let Some(head) = lines.first() else { continue };
        let body: Vec<&str> = lines[1..].to_vec();
        let (sql_lines, expected): (Vec<&str>, Vec<&str>) = match body.iter().position(|l| *l == "----") {
            Some(i) => (body[..i].to_vec(), body[i + 1..].to_vec()),
            None => (body.clone(), Vec::new()),
        };
        let sql = sql_lines.join("\n");
        let where_ = format!("{name} record {} ({})", n + 1, sql.lines().next().unwrap_or(""));
        let result = s.execute(&sql).into_iter().last().expect("one statement");
        let words: Vec<&str> = head.split_whitespace().collect();
        match words.as_slice() {
            ["statement", "ok"] => {
                if let Err(e) = result {
                    failures.push(format!("{where_}: expected ok, got {e}"));
                }
            }
            ["statement", "error", code] => match result {
                Err(e) if e.sqlstate == *code => {}
                Err(e) => failures.push(format!("{where_}: expected error {code}, got {e}")),
                Ok(_) => failures.push(format!("{where_}: expected error {code}, it succeeded")),
            },
            ["query", rest @ ..] => {
                let rowsort = rest.contains(&"rowsort");
                let mut got: Vec<String> = match result {
                    Ok(Outcome::Rows { schema, batches }) => batches
                        .iter()
                        .flat_map(|b| {
                            (0..b.num_rows())
                                .map(|i| {
                                    schema
                                        .iter()
                                        .zip(&b.columns)
                                        .map(|(c, col)| {
                                            Scalar::from_column(col, c.ty, i)
                                                .to_text(c.ty)
                                                .unwrap_or_else(|| "NULL".into())
                                        })
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                    Ok(other) => {
                        failures.push(format!("{where_}: expected rows, got {other:?}"));
                        continue;
                    }
                    Err(e) => {
                        failures.push(format!("{where_}: {e}"));
                        continue;
                    }
                };
                let mut want: Vec<String> = expected.iter().map(std::string::ToString::to_string).collect();
                if rowsort {
                    got.sort();
                    want.sort();
                }
                if got != want {
                    failures.push(format!("{where_}:\n  expected {want:?}\n  got      {got:?}"));
                }
            }
            other => failures.push(format!("{where_}: unknown record kind {other:?}")),
        }
    }
    failures
}

#[test]
fn slt_files_pass() {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/slt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files");
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        failures.extend(run_file(&f.file_name().unwrap().to_string_lossy(), &text));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
