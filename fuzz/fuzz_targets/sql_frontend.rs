//! The SQL front end: any statement text is parsed, planned and executed against a small
//! engine (a datastore, a table, a channel) without panicking; errors are fine.
#![no_main]

use std::sync::{Mutex, OnceLock};

use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::command::session::Session;
use libfuzzer_sys::fuzz_target;

fn session() -> &'static Mutex<Session> {
    static S: OnceLock<Mutex<Session>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fleetdb-fuzz-sql-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = EngineConfig { maintenance_interval: None, ..Default::default() };
        let (engine, _) = Engine::open(&dir, cfg).expect("open engine");
        let mut s = Session::new(fleetdb::command::Services::of(&engine).unwrap());
        for sql in [
            "CREATE DATASTORE d",
            "INSERT INTO d (time, machine_id, v, n) VALUES ('2026-01-01', 'M-1', 1.5, 1), ('2026-01-02', 'M-2', NULL, 2)",
            "CREATE TABLE t (id INT PRIMARY KEY, s TEXT, x DOUBLE PRECISION, b BOOLEAN)",
            "INSERT INTO t VALUES (1, 'a', 0.5, true), (2, NULL, -1, NULL)",
            "CREATE CHANNEL c",
        ] {
            for r in s.execute(sql) {
                r.expect("fuzz setup");
            }
        }
        Mutex::new(s)
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 2048 {
        return;
    }
    let sql = String::from_utf8_lossy(data);
    // Statements that run shell commands (LAMBDA activities, program datasets) are left to
    // their own tests: a fuzzer must not run whatever command it makes up.
    let lower = sql.to_ascii_lowercase();
    if lower.contains("lambda") || lower.contains("program") {
        return;
    }
    let mut s = session().lock().unwrap_or_else(|e| e.into_inner());
    let _ = s.execute(&sql);
});
