//! Injected file-system faults beyond SIGKILL (`FLEETDB_FAULTS`, see `util::faults`): a full
//! disk and failing `write`/`fsync` under the WAL, the channel and datastore files, the
//! request-id file and dataset contents. Every write that fails is refused with a clear error
//! (HTTP 503, SQLSTATE 53100 or 58030), reads go on, nothing acknowledged is lost, nothing
//! refused comes back, and the server takes writes again by itself once the fault is gone
//! (after a failed WAL it restarts in place and replays the log).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Fleetdb, lines, ok};

struct Faulty {
    db: Fleetdb,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

impl Faulty {
    fn start() -> Faulty {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("faults");
        std::fs::write(&control, "").unwrap();
        let db = Fleetdb::start_with(&dir.path().join("data"), &[], &[("FLEETDB_FAULTS", control.to_str().unwrap())]);
        Faulty { db, control, _dir: dir }
    }

    /// Replaces the injected faults (the server reads the file within 10 ms).
    fn inject(&self, rules: &str) {
        std::fs::write(&self.control, rules).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }

    fn still_running(&mut self) {
        assert!(self.db.child.try_wait().unwrap().is_none(), "fleetdb exited");
    }
}

/// The SQLSTATE of a failed statement (psql prints `ERROR:  53100: …`), or None.
fn sqlstate(db: &Fleetdb, sql: &str) -> Option<String> {
    let out = db.psql(sql);
    if out.status.success() {
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let code = err.split("ERROR:  ").nth(1).and_then(|r| r.split(':').next()).map(str::to_string);
    Some(code.unwrap_or(err))
}

fn ndjson(port: u16, call: usize, n: usize) -> (u16, String) {
    let body: String = (0..n).map(|i| format!("{{\"call\": {call}, \"i\": {i}}}\n")).collect();
    common::http_post(port, "/channels/c/messages", body.as_bytes())
}

/// Waits until `sql` succeeds (the server may be restarting meanwhile).
fn until_ok(db: &Fleetdb, sql: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let out = db.psql(sql);
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "{sql} still fails: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `sql` until it is refused with an error containing `text` (the server may be
/// restarting meanwhile, or still refusing for another reason); returns the error.
fn until_refused(db: &Fleetdb, sql: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = db.psql(sql);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{sql} was not refused");
        if err.contains(text) {
            return err;
        }
        assert!(Instant::now() < deadline, "{sql}: never refused with {text:?}; last: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(db: &Fleetdb, relation: &str) -> u64 {
    lines(db, &format!("SELECT count(*) FROM {relation}"))[0].parse().unwrap()
}

fn tmp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(tmp_files(&p));
        } else if p.to_string_lossy().ends_with(".tmp") {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_wal_write_refused_for_a_full_disk_loses_nothing_acknowledged_and_writes_resume_with_room() {
    let mut f = Faulty::start();
    ok(f.db.psql("CREATE CHANNEL c"), "channel");
    for call in 0..3 {
        let (status, body) = ndjson(f.db.http_port, call, 100);
        assert_eq!(status, 200, "{body}");
    }
    f.inject("write /wal/ ENOSPC\n");
    let (status, body) = ndjson(f.db.http_port, 3, 100);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("ServiceUnavailableException") && body.contains("No space left"), "{body}");
    assert!(body.to_lowercase().contains("retry-after"), "{body}");
    // The server restarts in place to replay its log, then serves reads and holds writes
    // until there is room (a write to the log's directory still fails).
    let held = until_refused(&f.db, "INSERT INTO c (payload) VALUES ('{}')", "until it has room");
    assert!(held.contains("53100"), "{held}");
    assert_eq!(lines(&f.db, "SELECT 1"), ["1"]);
    assert_eq!(count(&f.db, "c"), 300, "the acknowledged batches, not the refused one");
    let (status, body) = ndjson(f.db.http_port, 5, 100);
    assert_eq!(status, 503, "{body}");
    std::thread::sleep(Duration::from_millis(1500));
    f.still_running();
    assert_eq!(sqlstate(&f.db, "INSERT INTO c (payload) VALUES ('{}')").as_deref(), Some("53100"));
    // Room again: writes resume.
    f.inject("");
    until_ok(&f.db, "INSERT INTO c (payload) VALUES ('{\"after\": 1}')", Duration::from_secs(30));
    f.still_running();
    assert_eq!(count(&f.db, "c"), 301, "the 300 acknowledged, the one after; nothing refused");
    let (status, body) = ndjson(f.db.http_port, 4, 100);
    assert_eq!(status, 200, "{body}");
    // And all of it survives a SIGKILL.
    let data = f.db.dir.clone();
    let Faulty { db, _dir, .. } = f;
    db.kill();
    let db = Fleetdb::start(&data);
    assert_eq!(count(&db, "c"), 401);
    assert_eq!(lines(&db, "SELECT count(*) FROM c WHERE payload LIKE '%\"call\": 3,%'"), ["0"]);
}

#[test]
fn after_a_failed_wal_fsync_the_unsynced_write_is_never_trusted() {
    let mut f = Faulty::start();
    ok(f.db.psql("CREATE CHANNEL c"), "channel");
    for call in 0..2 {
        assert_eq!(ndjson(f.db.http_port, call, 50).0, 200);
    }
    f.inject("fsync /wal/ EIO\n");
    assert_eq!(sqlstate(&f.db, "INSERT INTO c (payload) VALUES ('{\"refused\": 1}')").as_deref(), Some("58030"));
    // The restart replays the log and tries again; the fsync fails again, so the next restart
    // holds writes for 5 s while reads go on.
    let held = until_refused(&f.db, "INSERT INTO c (payload) VALUES ('{\"refused\": 2}')", "times in a row");
    assert!(held.contains("58030"), "{held}");
    let (status, body) = ndjson(f.db.http_port, 2, 50);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("times in a row"), "{body}");
    assert_eq!(count(&f.db, "c"), 100, "reads go on, and see nothing refused");
    f.inject("");
    until_ok(&f.db, "INSERT INTO c (payload) VALUES ('{\"after\": 1}')", Duration::from_secs(40));
    f.still_running();
    assert_eq!(count(&f.db, "c"), 101);
    assert_eq!(lines(&f.db, "SELECT count(*) FROM c WHERE payload LIKE '%refused%'"), ["0"]);
}

#[test]
fn failing_data_file_writes_keep_the_rows_in_memory_and_the_log_until_they_succeed() {
    let mut f = Faulty::start();
    ok(f.db.psql("CREATE CHANNEL c"), "channel");
    ok(f.db.psql("CREATE DATASTORE d"), "datastore");
    let values: Vec<String> =
        (1..=2000).map(|g| format!("(now() + interval '{g} seconds', 'M-{}', {g})", g % 7)).collect();
    ok(f.db.psql(&format!("INSERT INTO d (time, machine_id, v) VALUES {}", values.join(", "))), "rows");
    assert_eq!(ndjson(f.db.http_port, 0, 500).0, 200);
    // Channel segments cannot be synced, datastore files not written (a full disk).
    f.inject("fsync /channels/ EIO\nwrite /datastores/ ENOSPC\n");
    let code = sqlstate(&f.db, "CHECKPOINT");
    assert!(matches!(code.as_deref(), Some("58030" | "53100")), "{code:?}");
    f.inject("write /datastores/ ENOSPC\n");
    assert_eq!(sqlstate(&f.db, "CHECKPOINT").as_deref(), Some("53100"));
    // The log still takes writes; reads see everything.
    ok(f.db.psql("INSERT INTO d (time, machine_id, v) VALUES (now(), 'M-x', -1)"), "more rows");
    assert_eq!(count(&f.db, "d"), 2001);
    assert_eq!(count(&f.db, "c"), 500);
    // A file whose directory entry cannot be synced is taken back, so a retry under a new name
    // cannot leave two copies of the same rows.
    f.inject("dirsync /datastores/d/ EIO\n");
    assert_eq!(sqlstate(&f.db, "CHECKPOINT").as_deref(), Some("58030"));
    f.inject("");
    ok(f.db.psql("CHECKPOINT"), "checkpoint with room");
    f.still_running();
    assert_eq!(tmp_files(&f.db.dir), Vec::<PathBuf>::new(), "no temporary files left behind");
    assert_eq!(count(&f.db, "d"), 2001);
    let data = f.db.dir.clone();
    let Faulty { db, _dir, .. } = f;
    db.kill();
    let db = Fleetdb::start(&data);
    assert_eq!(count(&db, "d"), 2001, "no row lost or doubled");
    assert_eq!(count(&db, "c"), 500);
    assert_eq!(lines(&db, "SELECT sum(v) FROM d"), [(2000 * 2001 / 2 - 1).to_string()]);
}

#[test]
fn a_failing_request_id_file_refuses_the_request_and_the_retry_is_stored_once() {
    let f = Faulty::start();
    ok(f.db.psql("CREATE CHANNEL c"), "channel");
    let body: String = (0..40).map(|i| format!("{{\"i\": {i}}}\n")).collect();
    let send = || common::http_post_with_id(f.db.http_port, "/channels/c/messages", "req-1", body.as_bytes());
    assert_eq!(send().0, 200, "creates the file");
    let other = |id: &str| common::http_post_with_id(f.db.http_port, "/channels/c/messages", id, body.as_bytes());
    f.inject("write http_requests EIO\n");
    let (status, text) = other("req-2");
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("http_requests") && text.contains("Input/output error"), "{text}");
    assert_eq!(count(&f.db, "c"), 40, "nothing of the refused request stored");
    f.inject("");
    assert_eq!(other("req-2").0, 200);
    assert_eq!(other("req-2").0, 200, "a retry");
    assert_eq!(send().0, 200, "an old retry");
    assert_eq!(count(&f.db, "c"), 80);
    // The file stayed whole: a restart reads it and still knows both requests.
    let data = f.db.dir.clone();
    let Faulty { db, _dir, .. } = f;
    db.kill();
    let db = Fleetdb::start(&data);
    assert_eq!(common::http_post_with_id(db.http_port, "/channels/c/messages", "req-2", body.as_bytes()).0, 200);
    assert_eq!(count(&db, "c"), 80);
}

#[test]
fn a_dataset_content_that_cannot_be_written_fails_clearly_and_the_next_refresh_succeeds() {
    let mut f = Faulty::start();
    ok(
        f.db.psql(
            "CREATE DATASTORE d; INSERT INTO d (time, machine_id, v) VALUES (now(), 'M-1', 1), (now(), 'M-2', 2); \
             CREATE DATASET health AS SELECT machine_id, avg(v) AS v FROM d GROUP BY machine_id",
        ),
        "dataset",
    );
    f.inject("write /datasets/ ENOSPC\n");
    let out = f.db.psql("REFRESH DATASET health");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("FAILED") || text.contains("53100"), "{text}");
    assert!(text.contains("No space left"), "{text}");
    f.still_running();
    f.inject("");
    let got = lines(&f.db, "REFRESH DATASET health");
    assert!(got[0].contains("|SUCCEEDED|2|"), "{got:?}");
    assert_eq!(lines(&f.db, "SELECT machine_id, v FROM dataset_content('health') ORDER BY 1"), ["M-1|1", "M-2|2"]);
}

#[test]
fn a_log_segment_that_could_not_be_started_never_blocks_a_restart() {
    let f = Faulty::start();
    ok(f.db.psql("CREATE CHANNEL c"), "channel");
    assert_eq!(ndjson(f.db.http_port, 0, 100).0, 200);
    // The checkpoint's new segment cannot be written: refused, and no half-written segment
    // stays behind for a later one to follow.
    f.inject("write /wal/ ENOSPC\n");
    assert_eq!(sqlstate(&f.db, "CHECKPOINT").as_deref(), Some("53100"));
    f.inject("");
    ok(f.db.psql("INSERT INTO c (payload) VALUES ('{\"after\": 1}')"), "insert after");
    ok(f.db.psql("CHECKPOINT"), "checkpoint");
    ok(f.db.psql("INSERT INTO c (payload) VALUES ('{\"after\": 2}')"), "insert after the checkpoint");
    let data = f.db.dir.clone();
    let Faulty { db, _dir, .. } = f;
    db.kill();
    let db = Fleetdb::start(&data);
    assert_eq!(count(&db, "c"), 102);
}
