//! Shared helpers for integration tests: start the real `fleetdb` binary and a throwaway
//! PostgreSQL server, and talk to both with `psql`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

/// A running `fleetdb serve`.
pub struct Fleetdb {
    pub child: Child,
    pub port: u16,
    /// The HTTP API's port.
    pub http_port: u16,
    pub dir: PathBuf,
    /// What the server wrote to stderr so far (its log).
    log: Arc<Mutex<Vec<u8>>>,
}

impl Fleetdb {
    /// The server's log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Starts `fleetdb serve` on a port the OS picks, read back from its startup line (so
    /// tests running in parallel never race for a port).
    pub fn start(dir: &Path) -> Fleetdb {
        Self::start_with(dir, &[], &[])
    }

    /// Starts with extra `serve` flags and environment variables.
    pub fn start_with(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Fleetdb {
        Self::start_through(&[], dir, flags, env)
    }

    /// Starts through a program that then runs fleetdb (such as `prlimit --nofile=64:64`).
    pub fn start_through(prefix: &[&str], dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Fleetdb {
        use std::io::BufRead;
        let mut cmd = match prefix {
            [] => Command::new(env!("CARGO_BIN_EXE_fleetdb")),
            [program, rest @ ..] => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_fleetdb"));
                c
            }
        };
        let mut child = cmd
            .args(["serve", "--data-dir", dir.to_str().unwrap(), "--pg-listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0"])
            .args(flags)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            // FLEETDB_TEST_STDERR=1 shows the server's log while debugging a test.
            .stderr(if std::env::var_os("FLEETDB_TEST_STDERR").is_some() { Stdio::inherit() } else { Stdio::piped() })
            .spawn()
            .expect("starting fleetdb serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut port, mut http_port) = (None, None);
        let after = |line: &str, prefix: &str| {
            line.split(prefix).nth(1).and_then(|rest| rest.split(':').next()?.parse::<u16>().ok())
        };
        for line in lines.by_ref() {
            let line = line.expect("reading fleetdb output");
            port = port.or(after(&line, "SQL on 127.0.0.1:"));
            http_port = http_port.or(after(&line, "HTTP on 127.0.0.1:"));
            if port.is_some() && http_port.is_some() {
                break;
            }
        }
        let (Some(port), Some(http_port)) = (port, http_port) else {
            let _ = child.wait();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            panic!("fleetdb did not start: {err}");
        };
        // Keep reading its output so that later lines never hit a closed pipe, and its log so
        // that a server logging much never blocks on a full pipe (tests read it with `log`).
        std::thread::spawn(move || lines.for_each(drop));
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = std::io::Read::read(&mut err, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    if l.len() < 64 << 20 {
                        l.extend_from_slice(&buf[..n]);
                    }
                }
            });
        }
        wait_for_port(port, "fleetdb", &mut child);
        Fleetdb { child, port, http_port, dir: dir.to_path_buf(), log }
    }

    /// Stops with SIGTERM (clean shutdown) and waits.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// Stops with SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    pub fn psql(&self, sql: &str) -> Output {
        psql(self.port, "fleetdb", "fleetdb", sql)
    }
}

impl Drop for Fleetdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one statement with psql: unaligned, `|`-separated, NULL shown as `NULL`, errors with
/// their SQLSTATE (`ERROR:  22012: division by zero`).
pub fn psql(port: u16, user: &str, db: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([
            "-X",
            "-A",
            "-F",
            "|",
            "-P",
            "null=NULL",
            "-P",
            "footer=off",
            "-v",
            "VERBOSITY=verbose",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user, "-d", db, "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("running psql (install postgresql-client)")
}

/// stdout of a psql call that must succeed.
pub fn ok(out: Output, sql: &str) -> String {
    assert!(out.status.success(), "{sql}\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A throwaway PostgreSQL cluster on a free loopback port, stopped on drop.
pub struct Postgres {
    pub port: u16,
    data: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL server binaries are needed for this test: install the postgresql package (tools/test.sh does)",
        )
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let data = tempfile::tempdir().unwrap();
        // PostgreSQL refuses to run as root; CI runs as root, so run it as `postgres` then.
        let as_postgres = unsafe_is_root();
        if as_postgres {
            Command::new("chown").args(["-R", "postgres:postgres", data.path().to_str().unwrap()]).status().unwrap();
            Command::new("chmod").args(["755", data.path().parent().unwrap().to_str().unwrap()]).status().ok();
        }
        let port = free_port();
        let pgdata = data.path().join("pgdata");
        let run = |args: &[&str]| -> Output {
            let mut c = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]);
                c.arg(bin.join(args[0]));
                c
            } else {
                Command::new(bin.join(args[0]))
            };
            c.args(&args[1..]).output().unwrap()
        };
        let init = run(&[
            "initdb",
            "-D",
            pgdata.to_str().unwrap(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--locale=C",
            "-E",
            "UTF8",
        ]);
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c TimeZone=UTC",
            data.path().display()
        );
        let log = data.path().join("log");
        let start =
            run(&["pg_ctl", "-D", pgdata.to_str().unwrap(), "-o", &opts, "-l", log.to_str().unwrap(), "-w", "start"]);
        assert!(start.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&start.stderr));
        Postgres { port, data, bin, as_postgres }
    }

    pub fn psql(&self, sql: &str) -> Output {
        psql(self.port, "postgres", "postgres", sql)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pgdata = self.data.path().join("pgdata");
        let pg_ctl = self.bin.join("pg_ctl");
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let _ = c.args(["-D", pgdata.to_str().unwrap(), "-m", "immediate", "stop"]).output();
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// rumqttd inside this test process, on a free loopback port. It lives until the process ends.
pub fn rumqttd() -> u16 {
    let port = free_port();
    fleetdb::ingest::broker::start_local(port).expect("rumqttd");
    port
}

/// Publishes each (topic, payload) at QoS 1 with rumqttc and waits for every PUBACK.
pub fn rumqttc_send(port: u16, messages: &[(&str, &str)]) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut o = MqttOptions::new(format!("send-{}-{}", std::process::id(), free_port()), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, messages.len() + 1);
    for (topic, payload) in messages {
        client.publish(*topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec()).unwrap();
    }
    let mut acked = 0;
    for ev in conn.iter() {
        match ev {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked += 1;
                if acked == messages.len() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("publisher: {e}"),
        }
    }
    let _ = client.disconnect();
}

/// The rows `sql` answers, one `a|b|c` line each (psql's unaligned format), header left out.
pub fn lines(db: &Fleetdb, sql: &str) -> Vec<String> {
    ok(db.psql(sql), sql).lines().skip(1).map(str::to_string).collect()
}

/// Waits until `sql` answers `want`, for what arrives in the background (messages, pipelines).
pub fn eventually(db: &Fleetdb, sql: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = lines(db, sql);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: still {got:?}, expected {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs curl POSTing `body` (from stdin) with `args` before the URL; returns its output.
fn curl_post(port: u16, path: &str, args: &[&str], body: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(["-s", "-X", "POST", "--data-binary", "@-", "-H", "Expect:"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running curl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "curl failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// POSTs `body` with curl; returns (status, headers + body as text).
pub fn http_post(port: u16, path: &str, body: &[u8]) -> (u16, String) {
    let text = curl_post(port, path, &["-i", "-H", "Content-Type: application/json"], body);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// A Mosquitto broker on a free loopback port, with persistence in its own directory.
pub struct Broker {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Broker {
    /// A Mosquitto broker, or None (with a note) where Mosquitto is not installed and not required.
    pub fn start_if_installed() -> Option<Broker> {
        let installed = Command::new(mosquitto_bin()).arg("-h").output().is_ok();
        if !installed && std::env::var_os("FLEETDB_REQUIRE_MOSQUITTO").is_none() {
            eprintln!("mosquitto is not installed: skipped (the rumqttd tests cover MQTT ingestion)");
            return None;
        }
        Some(Broker::start())
    }

    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, free_port())
    }

    pub fn start_in(dir: tempfile::TempDir, port: u16) -> Broker {
        // `user root`: run as root (as CI does), mosquitto would otherwise switch to its own
        // user, which cannot write the persistence file in this directory.
        let conf = format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             max_queued_messages 1000000\nmax_inflight_messages 200\n",
            dir.path().display()
        );
        Broker::spawn(dir, port, &conf)
    }

    /// A broker that takes only TLS connections with a client certificate signed by the test
    /// CA in `dir`, and a username and password (`fleet`, `secret`).
    pub fn start_tls(dir: tempfile::TempDir) -> Broker {
        let port = free_port();
        let d = dir.path();
        let passwd = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg("-c")
            .arg(d.join("passwd"))
            .args(["fleet", "secret"])
            .status();
        assert!(passwd.expect("running mosquitto_passwd").success());
        let conf = format!(
            "user root\nlistener {port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             require_certificate true\nallow_anonymous false\npassword_file {d}/passwd\n",
            d = d.display()
        );
        Broker::spawn(dir, port, &conf)
    }

    pub fn spawn(dir: tempfile::TempDir, port: u16, conf_text: &str) -> Broker {
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let child = Command::new(mosquitto_bin())
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto (tools/test.sh installs the Debian package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, port, dir }
    }

    /// Stops the broker cleanly (it saves its queues) and starts it again on the same port.
    pub fn restart(mut self) -> Broker {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let (port, dir) = (self.port, std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()));
        std::mem::forget(self);
        Broker::start_in(dir, port)
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mosquitto_bin() -> &'static str {
    if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" }
}

/// Loads `rows` CSV lines made by `line` into `target` (`table (columns)`) with COPY
/// through psql's stdin.
pub fn copy_csv(db: &Fleetdb, target: &str, rows: usize, line: impl Fn(usize) -> String) {
    use std::io::Write;
    let mut child = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &db.port.to_string(),
            "-U",
            "fleetdb",
            "fleetdb",
        ])
        .args(["-c", &format!("COPY {target} FROM STDIN WITH (FORMAT csv)")])
        .stdin(Stdio::piped())
        .spawn()
        .expect("running psql");
    let mut w = std::io::BufWriter::new(child.stdin.take().unwrap());
    for i in 0..rows {
        writeln!(w, "{}", line(i)).unwrap();
    }
    drop(w);
    assert!(child.wait().unwrap().success(), "COPY {target}");
}

/// POSTs `body` to `path` with the header `x-request-id: rid`; returns (status, body).
pub fn http_post_with_id(port: u16, path: &str, rid: &str, body: &[u8]) -> (u16, String) {
    let header = format!("x-request-id: {rid}");
    let text = curl_post(port, path, &["-w", "\n%{http_code}", "-H", &header], body);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}
