//! `fleetdb serve` configuration. Each setting comes from, in order of precedence: its flag,
//! its `FLEETDB_*` environment variable, its key in the TOML file named by `--config`
//! (or `FLEETDB_CONFIG`), or the default.
//!
//! | flag | variable | key | default |
//! |---|---|---|---|
//! | `--data-dir` | `FLEETDB_DATA_DIR` | `data_dir` | `./fleetdb-data` |
//! | `--pg-listen` | `FLEETDB_PG_LISTEN` | `pg_listen` | `127.0.0.1:5433` |
//! | `--http-listen` | `FLEETDB_HTTP_LISTEN` | `http_listen` | `127.0.0.1:8080` |
//! | `--mqtt` | `FLEETDB_MQTT` | `mqtt` | none (`mqtt://host:1883` or `mqtts://host:8883`) |
//! | `--mqtt-username` | `FLEETDB_MQTT_USERNAME` | `mqtt_username` | none |
//! | `--mqtt-password` | `FLEETDB_MQTT_PASSWORD` | `mqtt_password` | none |
//! | `--mqtt-ca` | `FLEETDB_MQTT_CA` | `mqtt_ca` | none: the broker's CA certificate (PEM), for mqtts |
//! | `--mqtt-cert` | `FLEETDB_MQTT_CERT` | `mqtt_cert` | none: client certificate (PEM), with `--mqtt-key` |
//! | `--mqtt-key` | `FLEETDB_MQTT_KEY` | `mqtt_key` | none: client private key (PEM) |
//! | `--mqtt-client-id` | `FLEETDB_MQTT_CLIENT_ID` | `mqtt_client_id` | `fleetdb-` and a hash of the data directory |
//! | `--password` | `FLEETDB_PASSWORD` | `password` | none: trust, loopback only |
//! | `--query-memory` | `FLEETDB_QUERY_MEMORY` | `query_memory` | `1GiB` |
//! | `--memory-limit` | `FLEETDB_MEMORY_LIMIT` | `memory_limit` | half the machine's memory: queries, ingest buffers and memtables together |
//! | `--batch-messages` | `FLEETDB_BATCH_MESSAGES` | `batch_messages` | `100`: messages in one BatchPutMessage |
//! | `--message-bytes` | `FLEETDB_MESSAGE_BYTES` | `message_bytes` | `128KiB`: one message, over every source |
//! | `--ingest-memory` | `FLEETDB_INGEST_MEMORY` | `ingest_memory` | `256MiB`: HTTP request bodies in flight |
//! | `--http-max-connections` | `FLEETDB_HTTP_MAX_CONNECTIONS` | `http_max_connections` | `1024`: HTTP connections at once (past it the one idle longest is closed for a new one; 503 when all are mid-request) |
//! | `--http-header-timeout` | `FLEETDB_HTTP_HEADER_TIMEOUT` | `http_header_timeout` | `10s`: a request's headers must arrive within it |
//! | `--http-body-timeout` | `FLEETDB_HTTP_BODY_TIMEOUT` | `http_body_timeout` | `30s`: a batch body must arrive within it; NDJSON must bring 1 KiB in each such window |
//! | `--max-connections` | `FLEETDB_MAX_CONNECTIONS` | `max_connections` | `100`: SQL sessions at once (53300 past it) |
//! | `--max-message-size` | `FLEETDB_MAX_MESSAGE_SIZE` | `max_message_size` | `64MiB`: one SQL protocol message (a query: 54000 past it) |
//! | `--authentication-timeout` | `FLEETDB_AUTHENTICATION_TIMEOUT` | `authentication_timeout` | `60s`: from connecting to authenticated |
//! | `--idle-session-timeout` | `FLEETDB_IDLE_SESSION_TIMEOUT` | `idle_session_timeout` | `0` (never): an idle SQL session is closed |
//! | `--memtable-idle-flush` | `FLEETDB_MEMTABLE_IDLE_FLUSH` | `memtable_idle_flush` | `30s`: a datastore's memtable without appends for this long is written to a file (`0`: only when full) |
//! | `--block-rows` | `FLEETDB_BLOCK_ROWS` | `block_rows` | `8192`: most rows in a block of a datastore file (blocks end where a series does) |
//! | `--log-format` | `FLEETDB_LOG_FORMAT` | `log_format` | `text` (or `json`: one object a line) |
//! | `--log-level` | `FLEETDB_LOG_LEVEL` | `log_level` | `info` |
//!
//! With a password, SQL clients authenticate with SCRAM-SHA-256 (any user name). Prefer the
//! variable or the file to the flag: other users of the machine can see a process's flags.

use std::path::PathBuf;

use serde::Deserialize;

/// Declares every setting of `fleetdb serve` once: its flag (clap, in [`ServeArgs`]), its
/// variable and its config-file key (serde, in [`FileConfig`]), and their precedence ([`pick`]).
macro_rules! serve_settings {
    ($( $field:ident, $var:literal, $value:literal, $help:literal; )*) => {
        /// `fleetdb serve`'s flags (each also a variable and a config-file key).
        #[derive(clap::Args, Debug, Default, Clone)]
        pub struct ServeArgs {
            /// A TOML file of settings: the keys are the flags' names with `_` for `-`
            /// (data_dir, pg_listen, …); flags and variables win over it [env: FLEETDB_CONFIG]
            #[arg(long, value_name = "FILE")]
            pub config: Option<String>,
            $(
                #[arg(long, value_name = $value, help = concat!($help, " [env: ", $var, "]"))]
                pub $field: Option<String>,
            )*
        }

        /// The config file: the same settings, any other key refused.
        #[derive(Deserialize, Debug, Default)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            $( $field: Option<FileValue>, )*
        }

        /// Each setting as text, from the flag, else the variable, else the file.
        #[derive(Debug, Default)]
        struct Picked {
            $( $field: Option<String>, )*
        }

        fn pick(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>, file: FileConfig) -> Picked {
            Picked {
                $( $field: args.$field.clone().or_else(|| env($var)).or_else(|| file.$field.map(FileValue::into_text)), )*
            }
        }

        /// The variables, for tests and the help.
        #[cfg(test)]
        const VARIABLES: &[&str] = &[$($var),*];
    };
}

serve_settings! {
    data_dir, "FLEETDB_DATA_DIR", "DIR", "The data directory (default ./fleetdb-data)";
    pg_listen, "FLEETDB_PG_LISTEN", "ADDR", "The SQL (PostgreSQL protocol) listener (default 127.0.0.1:5433)";
    http_listen, "FLEETDB_HTTP_LISTEN", "ADDR", "The HTTP listener (default 127.0.0.1:8080)";
    mqtt, "FLEETDB_MQTT", "URL", "An MQTT broker to read routes from: mqtt://host:1883 or mqtts://host:8883";
    mqtt_username, "FLEETDB_MQTT_USERNAME", "USER", "The broker's user name";
    mqtt_password, "FLEETDB_MQTT_PASSWORD", "PASSWORD", "The broker's password";
    mqtt_ca, "FLEETDB_MQTT_CA", "FILE", "The broker's CA certificate (PEM), for mqtts";
    mqtt_cert, "FLEETDB_MQTT_CERT", "FILE", "A client certificate (PEM), with --mqtt-key";
    mqtt_key, "FLEETDB_MQTT_KEY", "FILE", "The client certificate's private key (PEM)";
    mqtt_client_id, "FLEETDB_MQTT_CLIENT_ID", "ID", "The MQTT client id (default fleetdb- and a hash of the data directory)";
    password, "FLEETDB_PASSWORD", "PASSWORD", "SQL clients authenticate with it (SCRAM-SHA-256); without it clients are trusted and only loopback is allowed. Prefer the variable or the file: other users can see a process's flags";
    query_memory, "FLEETDB_QUERY_MEMORY", "SIZE", "Working memory of one query (default 1GiB)";
    memory_limit, "FLEETDB_MEMORY_LIMIT", "SIZE", "Queries, ingest buffers and memtables together (default half the machine's memory)";
    batch_messages, "FLEETDB_BATCH_MESSAGES", "N", "Messages in one BatchPutMessage (default 100)";
    message_bytes, "FLEETDB_MESSAGE_BYTES", "SIZE", "One message, over every source (default 128KiB)";
    ingest_memory, "FLEETDB_INGEST_MEMORY", "SIZE", "HTTP request bodies in flight (default 256MiB)";
    http_max_connections, "FLEETDB_HTTP_MAX_CONNECTIONS", "N", "HTTP connections at once; past it the one idle longest is closed, 503 when all are mid-request (default 1024)";
    http_header_timeout, "FLEETDB_HTTP_HEADER_TIMEOUT", "DURATION", "A request's headers must arrive within it (default 10s)";
    http_body_timeout, "FLEETDB_HTTP_BODY_TIMEOUT", "DURATION", "A batch body must arrive within it; NDJSON must bring 1 KiB in each such window (default 30s)";
    max_connections, "FLEETDB_MAX_CONNECTIONS", "N", "SQL sessions at once, 53300 past it (default 100)";
    max_message_size, "FLEETDB_MAX_MESSAGE_SIZE", "SIZE", "One SQL protocol message; a longer query gets 54000 (default 64MiB)";
    authentication_timeout, "FLEETDB_AUTHENTICATION_TIMEOUT", "DURATION", "From connecting to authenticated (default 60s)";
    idle_session_timeout, "FLEETDB_IDLE_SESSION_TIMEOUT", "DURATION", "An idle SQL session is closed after it (default 0: never)";
    memtable_idle_flush, "FLEETDB_MEMTABLE_IDLE_FLUSH", "DURATION", "A datastore's memtable without appends for this long is written to a file; 0: only when full (default 30s)";
    block_rows, "FLEETDB_BLOCK_ROWS", "N", "Most rows in a block of a datastore file, up to 1048576 (default 8192)";
    log_format, "FLEETDB_LOG_FORMAT", "text|json", "Log lines on stderr as text or as JSON objects (default text)";
    log_level, "FLEETDB_LOG_LEVEL", "LEVEL", "error, warn, info, debug or trace (default info)";
}

/// A config-file value: a string, or a number or boolean written bare.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum FileValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl FileValue {
    fn into_text(self) -> String {
        match self {
            FileValue::Text(s) => s,
            FileValue::Int(n) => n.to_string(),
            FileValue::Float(x) => x.to_string(),
            FileValue::Bool(b) => b.to_string(),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub pg_listen: String,
    pub http_listen: String,
    pub mqtt: Option<String>,
    /// Broker credentials, TLS files and client id (see the table above).
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<String>,
    pub mqtt_ca: Option<PathBuf>,
    pub mqtt_cert: Option<PathBuf>,
    pub mqtt_key: Option<PathBuf>,
    pub mqtt_client_id: Option<String>,
    pub password: Option<String>,
    /// Working memory of one query, in bytes.
    pub query_memory: usize,
    /// All queries, ingest buffers and memtables together, in bytes.
    pub memory_limit: usize,
    /// Ingest limits: batch size, message size, HTTP bytes in flight.
    pub limits: fleetdb::ingest::Limits,
    /// SQL connection and message limits.
    pub conn: fleetdb::server::pg::ConnLimits,
    /// Most rows in a block of a datastore file written from now on.
    pub block_rows: u32,
    /// A memtable idle this long is flushed (`None`: only when full).
    pub memtable_idle_flush: Option<std::time::Duration>,
    pub log_format: LogFormat,
    pub log_level: tracing::Level,
}

/// Half the machine's memory (`MemTotal`), or 4 GiB where it cannot be read.
fn default_memory_limit() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: usize = m
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kb * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

/// A duration with its unit (`500ms`, `30s`, `5min`, `1h`); `0` alone turns a timeout off.
pub fn parse_duration(name: &str, s: &str) -> Result<Option<std::time::Duration>, String> {
    if s.trim() == "0" {
        return Ok(None);
    }
    let unit = s.trim().trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    match fleetdb::query::settings::parse_duration_setting(s) {
        Some(d) if !unit.is_empty() && !d.is_zero() => Ok(Some(d)),
        _ => Err(format!("{name} '{s}' is not a duration (such as 500ms, 30s, 5min, or 0 for none)")),
    }
}

/// Reads a size such as `1GiB`, `512MiB`, `256MB` or a number of bytes, at least `min` bytes.
pub fn parse_size_at_least(s: &str, min: usize) -> Result<usize, String> {
    fleetdb::util::bytes::parse_size(s, min).map_err(|e| e.to_string())
}

/// Reads the config file: TOML, only the keys of [`serve_settings!`]. An error is one line.
fn read_file(path: &str) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {path}: {e}"))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let what = e.message().replace('\n', " ");
        match line {
            Some(n) => format!("config file {path}, line {n}: {what}"),
            None => format!("config file {path}: {what}"),
        }
    })
}

fn count(name: &str, s: &str, what: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("{name} '{s}' is not a count of {what} (at least 1)"))
}

fn timeout(name: &str, s: &str) -> Result<std::time::Duration, String> {
    parse_duration(name, s)?.ok_or_else(|| format!("{name} cannot be 0"))
}

/// The settings of `fleetdb serve`: each from its flag, else its variable (`env`), else the
/// config file, else the default.
pub fn resolve(args: &ServeArgs, env: impl Fn(&str) -> Option<String>) -> Result<ServeConfig, String> {
    let file = match args.config.clone().or_else(|| env("FLEETDB_CONFIG")) {
        Some(path) => read_file(&path)?,
        None => FileConfig::default(),
    };
    let p = pick(args, &env, file);
    let size = |v: &Option<String>, min: usize, default: usize| match v {
        Some(s) => parse_size_at_least(s, min),
        None => Ok(default),
    };
    let d = fleetdb::ingest::Limits::default();
    let limits = fleetdb::ingest::Limits {
        batch_messages: p
            .batch_messages
            .as_deref()
            .map_or(Ok(d.batch_messages), |s| count("batch-messages", s, "messages"))?,
        message_bytes: size(&p.message_bytes, 1, d.message_bytes)?,
        inflight_bytes: size(&p.ingest_memory, 1 << 20, d.inflight_bytes)?,
        http_connections: p
            .http_max_connections
            .as_deref()
            .map_or(Ok(d.http_connections), |s| count("http-max-connections", s, "connections"))?,
        http_header_timeout: p
            .http_header_timeout
            .as_deref()
            .map_or(Ok(d.http_header_timeout), |s| timeout("http-header-timeout", s))?,
        http_body_timeout: p
            .http_body_timeout
            .as_deref()
            .map_or(Ok(d.http_body_timeout), |s| timeout("http-body-timeout", s))?,
    };
    let c = fleetdb::server::pg::ConnLimits::default();
    let conn = fleetdb::server::pg::ConnLimits {
        max_connections: p
            .max_connections
            .as_deref()
            .map_or(Ok(c.max_connections), |s| count("max-connections", s, "connections"))?,
        max_message: size(&p.max_message_size, 64 << 10, c.max_message)?,
        authentication_timeout: p
            .authentication_timeout
            .as_deref()
            .map_or(Ok(c.authentication_timeout), |s| timeout("authentication-timeout", s))?,
        idle_session_timeout: match &p.idle_session_timeout {
            Some(s) => parse_duration("idle-session-timeout", s)?,
            None => c.idle_session_timeout,
        },
        ..c
    };
    let log_format = match p.log_format.as_deref().map(str::trim) {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => return Err(format!("log-format '{other}' is not text or json")),
    };
    let log_level = match &p.log_level {
        None => tracing::Level::INFO,
        Some(s) => s.trim().parse().map_err(|_| format!("log-level '{s}' is not error, warn, info, debug or trace"))?,
    };
    Ok(ServeConfig {
        data_dir: PathBuf::from(p.data_dir.unwrap_or_else(|| "./fleetdb-data".into())),
        pg_listen: p.pg_listen.unwrap_or_else(|| "127.0.0.1:5433".into()),
        http_listen: p.http_listen.unwrap_or_else(|| "127.0.0.1:8080".into()),
        mqtt: p.mqtt,
        mqtt_username: p.mqtt_username,
        mqtt_password: p.mqtt_password,
        mqtt_ca: p.mqtt_ca.map(PathBuf::from),
        mqtt_cert: p.mqtt_cert.map(PathBuf::from),
        mqtt_key: p.mqtt_key.map(PathBuf::from),
        mqtt_client_id: p.mqtt_client_id,
        password: p.password.filter(|p| !p.is_empty()),
        query_memory: size(&p.query_memory, 1 << 20, 1 << 30)?,
        memory_limit: match &p.memory_limit {
            Some(s) => parse_size_at_least(s, 64 << 20)?,
            None => default_memory_limit(),
        },
        limits,
        conn,
        block_rows: match &p.block_rows {
            Some(s) => match count("block-rows", s, "rows")? {
                n @ 1..=1_048_576 => n as u32,
                _ => return Err(format!("block-rows '{s}' is more than 1048576")),
            },
            None => fleetdb::datastore::DatastoreOptions::default().block_rows,
        },
        memtable_idle_flush: match &p.memtable_idle_flush {
            Some(s) => parse_duration("memtable-idle-flush", s)?,
            None => fleetdb::datastore::DatastoreOptions::default().idle_flush,
        },
        log_format,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        Cmd::try_parse_from(std::iter::once("serve").chain(argv.iter().copied())).unwrap().serve
    }

    #[test]
    fn precedence_is_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("f.toml");
        std::fs::write(
            &cfg,
            "# fleetdb\ndata_dir = \"/from/file\"\npg_listen = \"127.0.0.1:6000\"\nbatch_messages = 7\n",
        )
        .unwrap();
        let path = cfg.display().to_string();
        let a = args(&["--config", &path, "--http-listen=127.0.0.1:9"]);
        let env = |k: &str| (k == "FLEETDB_PG_LISTEN").then(|| "127.0.0.1:7000".to_string());
        let c = resolve(&a, env).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.pg_listen, "127.0.0.1:7000");
        assert_eq!(c.http_listen, "127.0.0.1:9");
        assert_eq!(c.mqtt, None);
        assert_eq!(c.limits.batch_messages, 7, "a bare number in the file");
        assert_eq!((c.log_format, c.log_level), (LogFormat::Text, tracing::Level::INFO));
        let env = |k: &str| (k == "FLEETDB_MESSAGE_BYTES").then(|| "1KiB".to_string());
        let limits = resolve(&args(&["--ingest-memory=2MiB"]), env).unwrap().limits;
        assert_eq!((limits.message_bytes, limits.inflight_bytes, limits.batch_messages), (1024, 2 << 20, 100));
        assert!(resolve(&args(&["--batch-messages=0"]), |_| None).unwrap_err().contains("batch-messages '0'"));
        let json = resolve(&args(&["--log-format", "json", "--log-level", "warn"]), |_| None).unwrap();
        assert_eq!((json.log_format, json.log_level), (LogFormat::Json, tracing::Level::WARN));
        assert!(resolve(&args(&["--log-format", "xml"]), |_| None).is_err());
        std::fs::write(&cfg, "data_dir = \"/x\"\ncolour = \"blue\"\n").unwrap();
        let e = resolve(&a, |_| None).unwrap_err();
        assert!(e.contains("line 2") && e.contains("colour") && !e.contains('\n'), "{e}");
        std::fs::write(&cfg, "data_dir = [1\n").unwrap();
        assert!(!resolve(&a, |_| None).unwrap_err().contains('\n'));
    }

    #[test]
    fn every_setting_has_a_flag_a_variable_and_a_key() {
        use clap::CommandFactory;
        let help = Cmd::command().render_long_help().to_string();
        for var in VARIABLES {
            assert!(help.contains(var), "{var} is not in the help");
            let key = var.strip_prefix("FLEETDB_").unwrap().to_ascii_lowercase();
            assert!(help.contains(&format!("--{} ", key.replace('_', "-"))), "--{key} is not in the help");
            // The key is known to the file.
            let text = format!("{key} = \"1\"");
            assert!(toml::from_str::<FileConfig>(&text).is_ok(), "{key} is not a file key");
        }
    }
}
