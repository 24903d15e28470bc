//! The `fleetdb` binary: parses the command line and runs a subcommand. All printing happens
//! here (and in `cli`), never in the library.

mod cli;

/// A status line on stdout. A closed stdout (the server's output piped into `head`) is no
/// reason to stop serving, nor to panic at shutdown.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use std::path::Path;
use std::process::ExitCode;

use cli::args::{Command, Parsed};
use fleetdb::engine::{Engine, EngineConfig};

fn main() -> ExitCode {
    let cli = match cli::args::parse(std::env::args_os()) {
        Parsed::Run(cli) => cli,
        Parsed::Print { text, to_stderr, code } => {
            // Help piped into `head` meets a closed pipe: not an error worth a panic.
            use std::io::Write as _;
            let _ =
                if to_stderr { writeln!(std::io::stderr(), "{text}") } else { writeln!(std::io::stdout(), "{text}") };
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Serve(a) => match cli::config::resolve(&a, |k| std::env::var(k).ok()) {
            // A setting that cannot be read is a mistake on the command line (or in the
            // variables or the file): exit 2, as for a bad flag.
            Err(e) => {
                eprintln!("fleetdb: {e}");
                return ExitCode::from(2);
            }
            Ok(cfg) => serve(&cfg),
        },
        Command::Demo(a) => {
            init_logging(cli::config::LogFormat::Text, tracing::Level::INFO);
            cli::demo::run(&a)
        }
        Command::ImportAws(a) => import_aws(&a),
        Command::Inspect(a) => inspect(&a),
        Command::Generate(a) => cli::generate::run(&a),
        Command::BenchStorage(a) => cli::bench::run(&a),
        Command::BenchIngest(a) => cli::bench_ingest::run(&a),
        Command::BenchDatasets(a) => cli::bench_datasets::run(&a),
        Command::Stress(a) => cli::stress::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetdb: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Log events go to stderr as text or JSON lines: fleetdb's from `level` up, other crates'
/// warnings and errors (the in-process MQTT broker of the demo and tests, whose "errors" are
/// clients disconnecting, not at all).
fn init_logging(format: cli::config::LogFormat, level: tracing::Level) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    let targets = Targets::new()
        .with_target("fleetdb", level)
        .with_target("rumqttd", LevelFilter::OFF)
        .with_default(LevelFilter::WARN.min(LevelFilter::from_level(level)));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_ansi(false);
    let _ = match format {
        cli::config::LogFormat::Text => {
            tracing::subscriber::set_global_default(builder.with_target(false).finish().with(targets))
        }
        cli::config::LogFormat::Json => {
            tracing::subscriber::set_global_default(builder.json().flatten_event(true).finish().with(targets))
        }
    };
}

/// Raises the soft limit on open files to the hard limit (clients, files and the WAL all take
/// descriptors); says so when it stays low.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_some_and(|n| n < 4096) {
        tracing::warn!(
            "at most {} open files (ulimit -n); connections past that wait until some close",
            now.unwrap_or(0)
        );
    }
}

fn serve(cfg: &cli::config::ServeConfig) -> Result<(), String> {
    init_logging(cfg.log_format, cfg.log_level);
    if let Some(faults) = fleetdb::util::faults::Faulty::from_env() {
        faults.check().map_err(|e| format!("FLEETDB_FAULTS {}: {e}", faults.control().display()))?;
        fleetdb::util::fsutil::install(faults);
        tracing::warn!(
            "FLEETDB_FAULTS is set: file-system faults are injected as {} says (for tests)",
            faults.control().display()
        );
    }
    // After a restart for a failed log (see `watch_the_log`), an open that fails for the disk
    // is tried again until it works, rather than leaving the server down.
    let (engine, report) = loop {
        let ecfg = EngineConfig {
            datastore: fleetdb::datastore::DatastoreOptions {
                block_rows: cfg.block_rows,
                idle_flush: cfg.memtable_idle_flush,
                ..Default::default()
            },
            ..Default::default()
        };
        match Engine::open(&cfg.data_dir, ecfg) {
            Ok(opened) => break opened,
            Err(e @ (fleetdb::Error::Io { .. } | fleetdb::Error::WalPoisoned(_))) if restarted().is_some() => {
                tracing::warn!("cannot open the data directory yet ({e}); trying again in 5 s");
                std::thread::sleep(std::time::Duration::from_secs(5));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    // Held before anything can write (pipelines start with the server); `watch_the_log` lets go.
    match restarted() {
        Some((true, _)) if !room_for_the_log(&cfg.data_dir) => engine.wal().hold_writes(
            "the disk is full: writes are refused until it has room (fleetdb checks every second); reads go on".into(),
            true,
        ),
        Some((_, n)) if !io_backoff(n).is_zero() => engine.wal().hold_writes(
            format!(
                "the write-ahead log failed {n} times in a row: writes are refused for {} s, then tried again; reads go on",
                io_backoff(n).as_secs()
            ),
            false,
        ),
        _ => {}
    }
    serve_engine(cfg, engine, report.records, None)
}

/// Serves SQL, HTTP and (with a broker) MQTT over `engine` until SIGTERM, Ctrl-C or, if
/// given, `stop_after`; then checkpoints.
pub(crate) fn serve_engine(
    cfg: &cli::config::ServeConfig,
    engine: std::sync::Arc<Engine>,
    replayed: usize,
    stop_after: Option<std::time::Duration>,
) -> Result<(), String> {
    let mqtt = match &cfg.mqtt {
        Some(url) => {
            let mc = fleetdb::ingest::mqtt::MqttConfig {
                url: url.clone(),
                username: cfg.mqtt_username.clone(),
                password: cfg.mqtt_password.clone(),
                ca: cfg.mqtt_ca.clone(),
                cert: cfg.mqtt_cert.clone(),
                key: cfg.mqtt_key.clone(),
                client_id: cfg.mqtt_client_id.clone(),
            };
            // The same data directory is the same MQTT session across restarts.
            let dir = std::fs::canonicalize(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
            let default_id = format!("fleetdb-{:08x}", crc32fast::hash(dir.to_string_lossy().as_bytes()));
            Some(fleetdb::ingest::mqtt::options(&mc, &default_id).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    raise_file_limit();
    // A defect's panic is caught where it happens (a statement, a pipeline batch, a message
    // pgwire cannot decode) and answered there; the log gets one line, not a backtrace a
    // client could make the server write again and again.
    std::panic::set_hook(Box::new(|info| tracing::error!("internal error (caught): {info}")));
    // The memory limit is shared: ingest buffers take theirs, memtables a quarter, and queries,
    // flushes, compactions and COPY data waiting to be loaded the rest (one pool).
    let memtables = cfg.memory_limit / 4;
    let for_queries = cfg.memory_limit.saturating_sub(cfg.limits.inflight_bytes).saturating_sub(memtables);
    if for_queries < (64 << 20) {
        return Err(format!(
            "--memory-limit {} MiB leaves {} MiB for queries after ingest buffers ({} MiB) and memtables ({} MiB); raise it",
            cfg.memory_limit >> 20,
            for_queries >> 20,
            cfg.limits.inflight_bytes >> 20,
            memtables >> 20
        ));
    }
    engine.set_memtable_budget(memtables);
    // The engine's services: ingest (shared by SQL, HTTP and MQTT), pipelines, datasets and
    // the queries' memory pool.
    let services = fleetdb::command::Services::open(&engine, cfg.limits.clone()).map_err(|e| e.to_string())?;
    services.pool.set_limit(for_queries);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fleetdb-net")
        // Statements run on these threads (`block_in_place`).
        .thread_stack_size(fleetdb::util::sync::STATEMENT_STACK)
        .on_thread_start(|| fleetdb::util::sync::note_stack_size(fleetdb::util::sync::STATEMENT_STACK))
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let ingest = services.ingest.clone();
    if let Some(o) = &mqtt {
        services.datasets.set_mqtt(o.clone());
    }
    // Pipelines and dataset schedules run from the start, whether or not a session touches them.
    services.start();
    let options = fleetdb::server::pg::ServerOptions {
        password: cfg.password.clone(),
        query_memory: cfg.query_memory.min(for_queries),
        conn: cfg.conn,
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&cfg.pg_listen)
            .await
            .map_err(|e| format!("cannot listen for PostgreSQL clients on {}: {e}", cfg.pg_listen))?;
        say!(
            "fleetdb {}: data directory {} ({} WAL records replayed); {} channels, {} datastores, {} tables",
            env!("CARGO_PKG_VERSION"),
            cfg.data_dir.display(),
            replayed,
            engine.channel_names().len(),
            engine.datastore_names().len(),
            engine.table_names().len()
        );
        // The bound address (a port of 0 in the configuration picks a free one).
        let bound = listener.local_addr().map_err(|e| format!("SQL listener: {e}"))?;
        if options.password.is_none() && !bound.ip().is_loopback() {
            return Err(format!(
                "refusing to trust SQL clients on {bound}: set a password (FLEETDB_PASSWORD) to listen beyond loopback"
            ));
        }
        let http = tokio::net::TcpListener::bind(&cfg.http_listen)
            .await
            .map_err(|e| format!("cannot listen for HTTP on {}: {e}", cfg.http_listen))?;
        let http_bound = http.local_addr().map_err(|e| format!("HTTP listener: {e}"))?;
        if !http_bound.ip().is_loopback() {
            tracing::warn!(
                "the HTTP API on {http_bound} does not authenticate requests (SigV4 signatures are not checked); expose it only to trusted networks"
            );
        }
        let addr = bound.to_string();
        say!("fleetdb: SQL on {addr}: psql -h {} -p {} -U fleetdb fleetdb", host_of(&addr), port_of(&addr));
        say!("fleetdb: HTTP on {http_bound}: POST /messages/batch, POST /channels/NAME/messages, GET /metrics");
        // One signal stops both servers.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            match stop_after {
                Some(d) => tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = tokio::time::sleep(d) => {}
                },
                None => shutdown_signal().await,
            }
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let mqtt_task = mqtt.map(|o| {
            let (host, port) = o.broker_address();
            say!("fleetdb: MQTT client of {host}:{port} (routes: SHOW ROUTES)");
            tokio::spawn(fleetdb::ingest::mqtt::run(ingest.clone(), o, stop_rx.clone()))
        });
        // The restart listens where this process does (a port of 0 was given a real one).
        let listen = [bound.to_string(), http_bound.to_string()];
        tokio::spawn(watch_the_log(engine.clone(), cfg.data_dir.clone(), listen));
        let (sql, web) = tokio::join!(
            fleetdb::server::pg::serve(services.clone(), listener, options, stopped(stop_rx.clone())),
            fleetdb::ingest::http::serve(ingest, http, stopped(stop_rx)),
        );
        if let Some(t) = mqtt_task {
            let _ = t.await;
        }
        sql.map_err(|e| format!("SQL server: {e}"))?;
        web.map_err(|e| format!("HTTP server: {e}"))
    })?;
    say!("fleetdb: shutting down (checkpoint)");
    engine.shutdown().map_err(|e| e.to_string())?;
    // Connections still open are dropped with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

/// Why this process was started by [`watch_the_log`]'s restart, and how many restarts in a row.
fn restarted() -> Option<(bool, u32)> {
    let full = std::env::var("FLEETDB_RESTART_REASON").ok()? == "disk-full";
    Some((full, std::env::var("FLEETDB_RESTARTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)))
}

/// Room for the log: the file system says so, and a 1 MiB write to the log's directory succeeds.
fn room_for_the_log(data_dir: &Path) -> bool {
    let free = rustix::fs::statvfs(data_dir).ok().is_some_and(|s| {
        let (free, size) = (s.f_bavail * s.f_frsize, s.f_blocks * s.f_frsize);
        free >= (144u64 << 20).min(size / 10)
    });
    let probe = data_dir.join("wal").join("room.probe");
    let fs = fleetdb::util::fsutil::fs();
    let wrote = free
        && std::fs::File::create(&probe)
            .and_then(|mut f| {
                fs.write_all(&mut f, &probe, &vec![0u8; 1 << 20]).and_then(|()| fs.sync(&f, &probe, true))
            })
            .is_ok();
    let _ = std::fs::remove_file(&probe);
    wrote
}

/// How long writes wait after the `n`-th restart in a row for an I/O error: none after the
/// first, then 5 s doubling up to 5 minutes.
fn io_backoff(n: u32) -> std::time::Duration {
    match n {
        0 | 1 => std::time::Duration::ZERO,
        n => std::time::Duration::from_secs((5u64 << (n - 2).min(6)).min(300)),
    }
}

/// Watches the write-ahead log. When a write or fsync fails, the log is poisoned: its records
/// were already applied in memory, and after a failed fsync the page cache may have dropped
/// them, so only a replay from disk is trusted. The process then restarts in place (`exec`,
/// as PostgreSQL reinitializes after a failed WAL flush): readers see nothing unacknowledged
/// for more than a moment, and clients reconnect. The restarted process serves reads at once
/// and holds writes (53100 / 58030, HTTP 503) until the disk has room, after a full disk, or
/// while I/O errors repeat ([`io_backoff`]). Background upkeep failures are logged when they
/// start, change or end, and once a minute while they last.
async fn watch_the_log(engine: std::sync::Arc<Engine>, data_dir: std::path::PathBuf, listen: [String; 2]) {
    let tick = std::time::Duration::from_millis(50);
    let previous = restarted();
    if let Some((full, n)) = previous
        && engine.wal().held()
    {
        if full {
            while !room_for_the_log(&data_dir) {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            tracing::info!("the disk has room again: writes resume");
        } else {
            tokio::time::sleep(io_backoff(n)).await;
            tracing::info!("writes resume after the log's I/O errors");
        }
        engine.wal().release_writes();
    }
    let mut upkeep: Option<(String, std::time::Instant)> = None;
    let (why, full) = loop {
        tokio::time::sleep(tick).await;
        if let Some(f) = engine.wal().failure() {
            break f;
        }
        match (engine.upkeep_failure(), &upkeep) {
            (None, Some(_)) => {
                tracing::info!("background upkeep (flush, checkpoint, compaction) works again");
                upkeep = None;
            }
            (Some(e), last) if last.as_ref().is_none_or(|(t, at)| *t != e || at.elapsed().as_secs() >= 60) => {
                tracing::error!(
                    "background upkeep failed, retried every round (the data stays in memory and the WAL): {e}"
                );
                upkeep = Some((e, std::time::Instant::now()));
            }
            _ => {}
        }
    };
    // Restarts in a row count up; a write that succeeded since this process started ends the row.
    let n = match previous {
        Some((_, n)) if !engine.wal().wrote_since_open() => n + 1,
        _ => 1,
    };
    tracing::error!("the write-ahead log failed ({why}); restarting to replay it");
    // The writes the failure refused are being answered (503, 53100): let those answers reach
    // their clients before the process is replaced. New writes are refused meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new("/proc/self/exe")
        .args(std::env::args_os().skip(1))
        .args(["--pg-listen", &listen[0], "--http-listen", &listen[1]])
        .env("FLEETDB_RESTARTS", n.to_string())
        .env("FLEETDB_RESTART_REASON", if full { "disk-full" } else { "io-error" })
        .exec();
    tracing::error!("cannot restart ({err}); writes stay refused until fleetdb is restarted");
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or("5432", |(_, p)| p)
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Prints the CREATE PIPELINE equivalent of an AWS pipeline; what could not be carried over
/// is said on stderr, and then the exit status is 1.
fn import_aws(a: &cli::args::ImportAwsArgs) -> Result<(), String> {
    let file = &a.file;
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let t = if fleetdb::dataset::aws::is_dataset(&text) {
        fleetdb::dataset::aws::translate(&text)
    } else {
        fleetdb::pipeline::aws::translate(&text, a.enrich_table.as_deref())
    }
    .map_err(|e| format!("{file}: {e}"))?;
    println!("{}", t.sql);
    if t.left_out.is_empty() {
        return Ok(());
    }
    for l in &t.left_out {
        eprintln!("fleetdb: {l}");
    }
    Err(format!("{} part(s) of {file} were not carried over (see above)", t.left_out.len()))
}

fn inspect(a: &cli::args::InspectArgs) -> Result<(), String> {
    let mut failed = 0;
    for f in &a.files {
        match fleetdb::inspect::inspect(Path::new(f), !a.no_verify) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("fleetdb: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 { Err(format!("{failed} file(s) failed verification")) } else { Ok(()) }
}
