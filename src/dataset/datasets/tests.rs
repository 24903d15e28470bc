//! Runs, delta windows and bucketed refreshes, driven by the tests' own clock.

#![cfg(test)]

use super::*;
use crate::command::session::Session;
use crate::engine::EngineConfig;

fn sql(s: &mut Session, text: &str) -> Vec<Vec<Option<String>>> {
    s.text_rows(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

/// An engine in `dir` whose datasets run only when the test says (no scheduler thread).
fn open(dir: &Path) -> (Arc<Engine>, Arc<Datasets>, Session) {
    let (engine, _) = Engine::open(dir, EngineConfig::default()).unwrap();
    let services = crate::command::Services::of(&engine).unwrap();
    let ds = services.datasets.clone();
    ds.started.store(true, std::sync::atomic::Ordering::Relaxed);
    let s = Session::new(services);
    (engine, ds, s)
}

/// Pins every dataset's creation time to T0, so schedule times are exact.
fn created_at_t0(ds: &Datasets) {
    for d in write(&ds.sets).iter_mut() {
        let mut def = d.def.clone();
        def.created = T0;
        *d = Ds::new(def, d.dir.clone(), Vec::new());
    }
}

const T0: i64 = 1_795_000_000_000_000;
const MIN: i64 = 60_000_000;

/// Schedules run on the clock the test hands them: due runs, `now()` at the schedule time,
/// one run for missed firings, versions kept, failures recorded, content readable.
#[test]
fn scheduled_runs_follow_the_clock_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    // The test is the clock: the scheduler thread never starts.
    let (engine, ds, mut s) = open(dir.path());
    sql(
        &mut s,
        "CREATE DATASTORE d; INSERT INTO d (time, v) VALUES ('2026-11-20 00:00:00+00', 1), ('2026-11-20 00:00:00+00', 3)",
    );
    sql(
        &mut s,
        "CREATE DATASET a AS SELECT now() AS at, sum(v) AS total FROM d WITH (schedule = 'rate(15 minutes)', versions = 2)",
    );
    sql(&mut s, "CREATE DATASET c AS SELECT 10 / (count(*) - 2) AS x FROM d WITH (schedule = 'cron(0 * * * ? *)')");
    created_at_t0(&ds);
    ds.run_due(T0 + 14 * MIN);
    assert!(ds.versions("a").unwrap().is_empty(), "not due yet");
    ds.run_due(T0 + 15 * MIN);
    let v = ds.versions("a").unwrap();
    assert_eq!((v.len(), v[0].schedule_time, v[0].state), (1, T0 + 15 * MIN, VersionState::Succeeded));
    // now() in the query is the schedule time.
    let at = crate::util::time::format_timestamp(T0 + 15 * MIN);
    let rows = sql(&mut s, &format!("SELECT at = '{at}'::timestamptz, total FROM a"));
    assert_eq!(rows, [[Some("t".into()), Some("4".into())]]);
    // An hour and a bit later: one run, at the latest firing missed.
    ds.run_due(T0 + 77 * MIN);
    let v = ds.versions("a").unwrap();
    assert_eq!(v.iter().map(|v| v.schedule_time).collect::<Vec<_>>(), [T0 + 15 * MIN, T0 + 75 * MIN]);
    // versions = 2: a third run drops the oldest.
    ds.run_due(T0 + 90 * MIN);
    assert_eq!(ds.versions("a").unwrap().iter().map(|v| v.id).collect::<Vec<_>>(), [2, 3]);
    assert!(!dir.path().join("datasets/a/1.fds").exists());
    // The cron dataset ran on the hour (T0 is not on one) and failed: division by zero.
    let c = ds.versions("c").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].schedule_time % (60 * MIN), 0);
    assert_eq!(c[0].state, VersionState::Failed);
    assert!(c[0].reason.contains("division by zero"), "{}", c[0].reason);
    assert!(ds.content("c", "$LATEST").is_err());
    assert!(ds.content("a", "2").is_ok());
    // A run the server did not finish is FAILED after a restart; content survives.
    {
        let d = ds.find("a").unwrap();
        let mut versions = lock(&d.versions).clone();
        versions.push(Version::new(4, T0));
        save_versions(&d.dir, &versions).unwrap();
    }
    drop((s, ds));
    drop(engine);
    let (engine, _) = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let ds = Datasets::open(&engine).unwrap();
    let v = ds.versions("a").unwrap();
    assert_eq!((v[2].state, v[2].reason.contains("interrupted")), (VersionState::Failed, true));
    let (cols, rows) = ds.content("a", "$LATEST_SUCCEEDED").unwrap();
    assert_eq!((cols.len(), rows.num_rows()), (2, 1));
}

/// Delta windows follow each other exactly, shifted by the offset; a row arriving into a
/// materialized window is reported once, after the late-data timeout, and marks its version.
#[test]
fn delta_windows_are_contiguous_and_late_rows_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ds, mut s) = open(dir.path());
    let at = |m: i64| crate::util::time::format_timestamp(T0 + m * MIN);
    let insert = |s: &mut Session, rows: &[(i64, i64)]| {
        let values: Vec<String> = rows.iter().map(|(m, v)| format!("('{}', {v})", at(*m))).collect();
        sql(s, &format!("INSERT INTO d (time, v) VALUES {}", values.join(", ")));
    };
    sql(&mut s, "CREATE DATASTORE d");
    // Each row's v is a distinct bit, so a window's sum names its rows.
    insert(&mut s, &[(10, 1), (50, 2), (58, 4), (110, 8), (116, 16)]);
    sql(
        &mut s,
        "CREATE DATASET w AS SELECT count(*) AS n, sum(v) AS bits FROM d WITH (schedule = 'rate(1 hour)', \
         delta_time = 'time', delta_offset = '-5 minutes', late_data_timeout = '10 minutes', versions = 10)",
    );
    created_at_t0(&ds);
    let bits = |s: &mut Session, v: u64| sql(s, &format!("SELECT n, bits FROM dataset_content('w', '{v}')"));
    ds.run_due(T0 + 60 * MIN);
    ds.run_due(T0 + 120 * MIN);
    // Window 1 is everything before 00:55; window 2 is [00:55, 01:55).
    assert_eq!(bits(&mut s, 1), [[Some("2".into()), Some("3".into())]]);
    assert_eq!(bits(&mut s, 2), [[Some("2".into()), Some("12".into())]]);
    let v = ds.versions("w").unwrap();
    assert_eq!(v[0].window, Some((i64::MIN, T0 + 55 * MIN)));
    assert_eq!(v[1].window, Some((T0 + 55 * MIN, T0 + 115 * MIN)));
    // A row for 01:40 arrives after window 2 was materialized.
    insert(&mut s, &[(100, 32)]);
    ds.run_due(T0 + 121 * MIN);
    ds.run_due(T0 + 129 * MIN);
    let events = |s: &mut Session| {
        sql(s, "SELECT dataset, version_id, event FROM fleetdb.dataset_events WHERE event = 'late_data'")
    };
    assert!(events(&mut s).is_empty(), "reported before the timeout");
    ds.run_due(T0 + 132 * MIN);
    assert_eq!(events(&mut s), [[Some("w".into()), Some("2".into()), Some("late_data".into())]]);
    let v = ds.versions("w").unwrap();
    assert_eq!((v[0].late_rows, v[1].late_rows), (0, 1));
    // Reported once; the late row stays out of later windows, which keep following.
    ds.run_due(T0 + 150 * MIN);
    ds.run_due(T0 + 180 * MIN);
    assert_eq!(events(&mut s).len(), 1);
    assert_eq!(bits(&mut s, 3), [[Some("1".into()), Some("16".into())]]);
    assert_eq!(ds.versions("w").unwrap()[2].window, Some((T0 + 115 * MIN, T0 + 175 * MIN)));
    // The windows and late counts survive a restart.
    drop((s, ds));
    drop(engine);
    let (engine, _) = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let ds = Datasets::open(&engine).unwrap();
    let v = ds.versions("w").unwrap();
    assert_eq!((v[1].window, v[1].late_rows, v[1].input_rows), (Some((T0 + 55 * MIN, T0 + 115 * MIN)), 1, 3));
}

/// A dataset grouped by hour buckets recomputes only the buckets that changed and keeps the
/// rest; its content always equals what the whole query gives.
#[test]
fn bucketed_datasets_refresh_only_changed_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ds, mut s) = open(dir.path());
    let at = |day: i64, h: i64| crate::util::time::format_timestamp(T0 / DAY * DAY + day * DAY + h * 3_600_000_000);
    let insert = |s: &mut Session, rows: &[(i64, i64, &str, i64)]| {
        let values: Vec<String> = rows.iter().map(|(d, h, m, v)| format!("('{}', '{m}', {v})", at(*d, *h))).collect();
        sql(s, &format!("INSERT INTO d (time, m, v) VALUES {}", values.join(", ")));
    };
    sql(&mut s, "CREATE DATASTORE d");
    insert(&mut s, &[(0, 1, "a", 1), (0, 1, "b", 2), (1, 5, "a", 4), (2, 7, "a", 8)]);
    let query = "SELECT m, date_trunc('hour', time) AS hour, sum(v) AS total, count(*) AS n FROM d GROUP BY m, hour";
    sql(&mut s, &format!("CREATE DATASET h AS {query}"));
    let content = |s: &mut Session| sql(s, "SELECT * FROM h ORDER BY hour, m");
    let whole = |s: &mut Session| sql(s, &format!("SELECT * FROM ({query}) q ORDER BY hour, m"));
    let refresh = |ds: &Datasets| ds.refresh("h").unwrap().refresh;
    assert_eq!(refresh(&ds), Refresh::Full);
    assert_eq!(content(&mut s).len(), 4);
    // Nothing changed: the content is kept as it is.
    assert_eq!(refresh(&ds), Refresh::Incremental);
    assert_eq!(content(&mut s), whole(&mut s));
    // Rows into an old day (late data) and a new day: those days' buckets are recomputed.
    insert(&mut s, &[(1, 5, "a", 16), (1, 6, "b", 32), (3, 0, "c", 64)]);
    assert_eq!(refresh(&ds), Refresh::Incremental);
    assert_eq!(content(&mut s), whole(&mut s));
    // Machine a's 05:00 bucket of day 1 holds the old row and the late one.
    let a5: Vec<_> =
        content(&mut s).into_iter().filter(|r| r[0].as_deref() == Some("a") && r[3].as_deref() == Some("2")).collect();
    assert_eq!(a5.len(), 1);
    assert_eq!(a5[0][2].as_deref(), Some("20"));
    // A reprocessed or deleted day's buckets go as well: a restart forgets the base, so
    // the first refresh after it is a full one.
    drop((s, ds));
    drop(engine);
    let (_engine, ds, mut s) = open(dir.path());
    assert_eq!(refresh(&ds), Refresh::Full);
    assert_eq!(content(&mut s), whole(&mut s));
    assert_eq!(content(&mut s).len(), 6);
}
