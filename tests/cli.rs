//! The `fleetdb` binary as a user runs it: help, version, bad flags, inspect, generate.

use std::process::Command;

fn fleetdb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fleetdb")).args(args).output().expect("running fleetdb")
}

#[test]
fn help_and_version() {
    let out = fleetdb(&["--version"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("fleetdb {}", env!("CARGO_PKG_VERSION")));
    let out = fleetdb(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "demo", "inspect", "import-aws", "generate", "bench-storage", "stress", "FLEETDB_"] {
        assert!(help.contains(cmd), "help lacks {cmd}");
    }
    // Each command has its own --help with its options.
    for (cmd, option) in [
        ("serve", "--memory-limit <SIZE>"),
        ("serve", "--ingest-memory <SIZE>"),
        ("serve", "--log-format <text|json>"),
        ("serve", "FLEETDB_DATA_DIR"),
        ("demo", "--machines <MACHINES>"),
        ("generate", "--format <FORMAT>"),
        ("inspect", "--no-verify"),
    ] {
        let out = fleetdb(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Usage: fleetdb {cmd}")) && text.contains(option),
            "{cmd} --help lacks {option}: {text}"
        );
    }
}

#[test]
fn bad_flags_give_one_line_and_exit_2() {
    for args in [&["serve", "--bogus"][..], &["frobnicate"], &["generate", "--machines"], &["serve", "extra"]] {
        let out = fleetdb(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("fleetdb: "), "{err}");
    }
}

#[test]
fn generate_is_deterministic_csv_and_ndjson() {
    let a = fleetdb(&["generate", "--machines", "5", "--hours", "0.1", "--seed", "7"]);
    let b = fleetdb(&["generate", "--machines", "5", "--hours", "0.1", "--seed", "7"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert_eq!(text.lines().next(), Some("time,machine_id,temperature,vibration,power,rpm,status"));
    assert!(text.lines().count() > 150);
    let j = fleetdb(&["generate", "--machines", "2", "--hours", "0.01", "--format", "ndjson"]);
    let first = String::from_utf8(j.stdout).unwrap().lines().next().unwrap().to_string();
    assert!(first.starts_with("{\"machine_id\":\"M-000") && first.ends_with('}'), "{first}");
}

/// Every file under `dir`, as paths.
fn all_files(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.to_str().unwrap().to_string());
            }
        }
    }
    files
}

#[test]
fn inspect_dumps_and_verifies_every_file_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let out = fleetdb(&["stress", "--data-dir", d.to_str().unwrap(), "--batches", "60"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = all_files(&d);
    let kinds = ["WAL segment", "channel segment", "datastore file", "options file", "data directory marker"];
    let args: Vec<&str> = std::iter::once("inspect").chain(files.iter().map(String::as_str)).collect();
    let out = fleetdb(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for k in kinds {
        assert!(text.contains(k), "no {k} in: {text}");
    }
    assert!(text.contains("column seq"));
    // A damaged file makes inspect fail with the reason.
    let victim = files.iter().find(|f| f.ends_with(".fds")).unwrap();
    let mut b = std::fs::read(victim).unwrap();
    let mid = b.len() / 3;
    b[mid] ^= 0xFF;
    std::fs::write(victim, b).unwrap();
    let out = fleetdb(&["inspect", victim]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
}

#[test]
fn demo_streams_a_simulated_fleet_through_the_pipeline_and_stops_by_itself() {
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (pg, http) = (free(), free());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let child = Command::new(env!("CARGO_BIN_EXE_fleetdb"))
        .args(["demo", "--machines", "20", "--duration", "12s", "--data-dir", data.to_str().unwrap()])
        .args(["--pg-listen", &format!("127.0.0.1:{pg}"), "--http-listen", &format!("127.0.0.1:{http}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Rows arrive through broker, route, channel and pipeline; the table enriches them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let mut rows = String::new();
    while std::time::Instant::now() < deadline {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &pg.to_string(), "-U", "fleetdb", "fleetdb", "-c"])
            .arg("SELECT count(*) > 0, count(*) FILTER (WHERE model_type IS NULL), max(temperature_f) > max(temperature) FROM factory_processed_datastore")
            .output()
            .unwrap();
        rows = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if rows == "t|0|t" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(rows, "t|0|t");
    // The datasets: RUL from history, the Python planner's alerts for machines failing soon.
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &pg.to_string(), "-U", "fleetdb", "fleetdb", "-c"])
        .arg("SELECT (SELECT count(*) FROM machine_rul) || '|' || (SELECT count(*) > 0 FROM maintenance_plan WHERE priority IN ('urgent', 'soon'))")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20|true");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rows stored") && text.contains("pipeline lag"), "{text}");
    assert!(!text.contains("| 0 alerts on factory/alerts"), "no alert arrived over MQTT: {text}");
    // It ends with the RUL's error against the simulator's truth, within 10%.
    let last = text.lines().last().unwrap_or_default();
    let pct: f64 = last
        .strip_prefix("RUL mean absolute error: ")
        .and_then(|r| r.split('%').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no RUL error at the end: {text}"));
    assert!(pct <= 10.0, "{last}");
    // What the demo left on disk: inspect knows every file, the pipeline's small files too
    // (the planner program the demo wrote is the user's, not fleetdb's).
    let files: Vec<String> = all_files(&data).into_iter().filter(|f| !f.contains("/programs/")).collect();
    let args: Vec<&str> = std::iter::once("inspect").chain(files.iter().map(String::as_str)).collect();
    let out = fleetdb(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for k in [
        "routes file",
        "pipelines file",
        "pipeline state checkpoint",
        "datastore sources file",
        "dataset definitions",
        "dataset versions",
        "program output",
    ] {
        assert!(text.contains(k), "no {k} in: {text}");
    }
}

#[test]
fn import_aws_prints_create_pipeline_and_says_what_it_left_out() {
    let create = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws/create-pipeline.json");
    let out = fleetdb(&["import-aws", create, "--enrich-table", "machines"]);
    assert!(out.status.success());
    let sql = String::from_utf8_lossy(&out.stdout);
    assert!(sql.starts_with("CREATE PIPELINE factory_pipeline FROM CHANNEL factory_sensor_channel"), "{sql}");
    assert!(sql.contains("ENRICH FROM machines ON machine_id"), "{sql}");
    // Without the registry's table, and with activities fleetdb lacks: the statement, the
    // reasons on stderr, exit status 1.
    let out = fleetdb(&["import-aws", create]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--enrich-table"));
    let describe = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws/describe-pipeline.json");
    let out = fleetdb(&["import-aws", describe]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deviceShadowEnrich"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INTO DATASTORE line_datastore;"));
    let out = fleetdb(&["import-aws", "/nonexistent.json"]);
    assert_eq!(out.status.code(), Some(1));
    // Datasets too: the query dataset whole; the container dataset says its image is left out.
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws/create-dataset.json");
    let out = fleetdb(&["import-aws", dataset]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sql = String::from_utf8_lossy(&out.stdout);
    assert!(sql.starts_with("CREATE DATASET factory_health_dataset AS SELECT machine_id"), "{sql}");
    assert!(sql.contains("delta_time = 'from_unixtime(ts / 1000)'"), "{sql}");
    let container = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws/create-container-dataset.json");
    let out = fleetdb(&["import-aws", container]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rul-model:latest"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INPUT factory_health_dataset"));
}

#[test]
fn serve_takes_a_data_directory_named_relative_to_where_it_runs() {
    // `--data-dir data` (a bare name: its parent is the current directory) was refused with
    // "I/O error on data: No such file or directory" on a first start.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetdb"))
        .current_dir(dir.path())
        .args(["serve", "--data-dir", "data", "--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("data directory data"), "{first}{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/wal").is_dir());
}
