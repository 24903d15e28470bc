//! The disk fills up under the server (a small tmpfs mounted for the test; CI runs as root):
//! writes are refused with clear errors (HTTP 503 ServiceUnavailableException, SQLSTATE
//! 53100), reads go on, nothing acknowledged is lost, and with room again the server takes
//! writes by itself (it restarts in place to replay the poisoned log, then waits for room).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fleetdb, ok};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(out.status.success(), "mounting a tmpfs (run as root): {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(at.to_path_buf())
    }
    fn resize(&self, size: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn ndjson_call(port: u16, call: usize) -> (u16, String) {
    let mut body = Vec::new();
    for i in 0..20_000 {
        writeln!(body, r#"{{"call": {call}, "i": {i}, "pad": "{}"}}"#, "x".repeat(200)).unwrap();
    }
    common::http_post_with_id(port, "/channels/c/messages", &format!("call-{call}"), &body)
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&root.path().join("disk"), "300m");
    let data = root.path().join("disk").join("data");
    let db = Fleetdb::start(&data);
    ok(db.psql("CREATE CHANNEL c"), "channel");
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for call in 0..200 {
        let (status, body) = ndjson_call(db.http_port, call);
        if status == 200 {
            assert!(body.contains(r#""accepted":20000"#), "{body}");
            acknowledged.push(call);
        } else {
            refusal = Some((status, body));
            break;
        }
    }
    let (status, body) = refusal.expect("the disk never filled up");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk is full") || body.contains("No space left"), "{body}");
    assert!(acknowledged.len() >= 5, "{acknowledged:?}");
    // SQL writes: 53100. Reads go on (the server restarts in place to replay its log meanwhile,
    // then holds writes until there is room).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = db.psql("INSERT INTO c (payload) VALUES ('{}')");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "a write was taken on a full disk");
        if err.contains("until it has room") {
            assert!(err.contains("53100"), "{err}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{err}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ok(db.psql("SELECT 1 AS one"), "select"), "one\n1\n");
    ok(db.psql("SELECT count(*) FROM c"), "count while full");
    // Room again: writes resume without anyone restarting the server.
    fs.resize("1g");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !db.psql("INSERT INTO c (payload) VALUES ('{}')").status.success() {
        assert!(std::time::Instant::now() < deadline, "writes did not resume with room");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Everything acknowledged is there, and survives a SIGKILL.
    db.kill();
    let db = Fleetdb::start(&data);
    for call in &acknowledged {
        let out = ok(
            db.psql(&format!("SELECT count(DISTINCT __message_id) FROM c WHERE __topic = 'x-request-id:call-{call}'")),
            "count",
        );
        assert_eq!(out, "count\n20000\n", "call {call} was acknowledged");
    }
    // The refused call, sent again with its id, stores what is missing.
    let next = acknowledged.len();
    let (status, body) = ndjson_call(db.http_port, next);
    assert_eq!(status, 200, "{body}");
    let out = ok(db.psql(&format!("SELECT count(*) FROM c WHERE __topic = 'x-request-id:call-{next}'")), "count");
    assert_eq!(out, "count\n20000\n");
}
