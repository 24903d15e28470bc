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
//! | `--http-max-connections` | `FLEETDB_HTTP_MAX_CONNECTIONS` | `http_max_connections` | `1024`: HTTP connections at once (503 past it) |
//! | `--http-header-timeout` | `FLEETDB_HTTP_HEADER_TIMEOUT` | `http_header_timeout` | `10s`: a request's headers must arrive within it |
//! | `--http-body-timeout` | `FLEETDB_HTTP_BODY_TIMEOUT` | `http_body_timeout` | `30s`: a batch body must arrive within it; NDJSON must bring 1 KiB in each such window |
//! | `--max-connections` | `FLEETDB_MAX_CONNECTIONS` | `max_connections` | `100`: SQL sessions at once (53300 past it) |
//! | `--max-message-size` | `FLEETDB_MAX_MESSAGE_SIZE` | `max_message_size` | `64MiB`: one SQL protocol message (a query: 54000 past it) |
//! | `--authentication-timeout` | `FLEETDB_AUTHENTICATION_TIMEOUT` | `authentication_timeout` | `60s`: from connecting to authenticated |
//! | `--idle-session-timeout` | `FLEETDB_IDLE_SESSION_TIMEOUT` | `idle_session_timeout` | `0` (never): an idle SQL session is closed |
//!
//! With a password, SQL clients authenticate with SCRAM-SHA-256 (any user name). Prefer the
//! variable or the file to the flag: other users of the machine can see a process's flags.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::args::Args;

pub const SERVE_OPTIONS: [&str; 24] = [
    "data-dir",
    "pg-listen",
    "http-listen",
    "mqtt",
    "config",
    "password",
    "query-memory",
    "mqtt-username",
    "mqtt-password",
    "mqtt-ca",
    "mqtt-cert",
    "mqtt-key",
    "mqtt-client-id",
    "batch-messages",
    "message-bytes",
    "ingest-memory",
    "max-connections",
    "max-message-size",
    "authentication-timeout",
    "idle-session-timeout",
    "http-max-connections",
    "http-header-timeout",
    "http-body-timeout",
    "memory-limit",
];

const FILE_KEYS: [&str; 23] = [
    "data_dir",
    "pg_listen",
    "http_listen",
    "mqtt",
    "password",
    "query_memory",
    "mqtt_username",
    "mqtt_password",
    "mqtt_ca",
    "mqtt_cert",
    "mqtt_key",
    "mqtt_client_id",
    "batch_messages",
    "message_bytes",
    "ingest_memory",
    "max_connections",
    "max_message_size",
    "authentication_timeout",
    "idle_session_timeout",
    "http_max_connections",
    "http_header_timeout",
    "http_body_timeout",
    "memory_limit",
];

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

/// Reads a size such as `1GiB`, `512MiB`, `256MB` or a number of bytes, at least 1 MiB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    parse_size_at_least(s, 1 << 20)
}

/// Reads a size as [`parse_size`] does, at least `min` bytes.
pub fn parse_size_at_least(s: &str, min: usize) -> Result<usize, String> {
    fleetdb::util::bytes::parse_size(s, min)
}

/// Reads the flat `key = "value"` subset of TOML that the config file uses.
pub fn parse_toml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split_once(" #").map_or(line, |(a, _)| a).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: expected key = value", n + 1))?;
        let v = v.trim();
        let v = if let Some(s) = v.strip_prefix('"') {
            s.strip_suffix('"').ok_or_else(|| format!("line {}: unterminated string", n + 1))?.to_string()
        } else {
            v.to_string()
        };
        out.insert(k.trim().to_string(), v);
    }
    Ok(out)
}

pub fn resolve(args: &Args, env: impl Fn(&str) -> Option<String>) -> Result<ServeConfig, String> {
    let file = match args.get("config").map(str::to_string).or_else(|| env("FLEETDB_CONFIG")) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read config file {path}: {e}"))?;
            let kv = parse_toml(&text).map_err(|e| format!("config file {path}: {e}"))?;
            for k in kv.keys() {
                if !FILE_KEYS.contains(&k.as_str()) {
                    return Err(format!("config file {path}: unknown key '{k}'"));
                }
            }
            kv
        }
        None => BTreeMap::new(),
    };
    let pick = |flag: &str, var: &str, key: &str| -> Option<String> {
        args.get(flag).map(str::to_string).or_else(|| env(var)).or_else(|| file.get(key).cloned())
    };
    Ok(ServeConfig {
        data_dir: PathBuf::from(
            pick("data-dir", "FLEETDB_DATA_DIR", "data_dir").unwrap_or_else(|| "./fleetdb-data".into()),
        ),
        pg_listen: pick("pg-listen", "FLEETDB_PG_LISTEN", "pg_listen").unwrap_or_else(|| "127.0.0.1:5433".into()),
        http_listen: pick("http-listen", "FLEETDB_HTTP_LISTEN", "http_listen")
            .unwrap_or_else(|| "127.0.0.1:8080".into()),
        mqtt: pick("mqtt", "FLEETDB_MQTT", "mqtt"),
        mqtt_username: pick("mqtt-username", "FLEETDB_MQTT_USERNAME", "mqtt_username"),
        mqtt_password: pick("mqtt-password", "FLEETDB_MQTT_PASSWORD", "mqtt_password"),
        mqtt_ca: pick("mqtt-ca", "FLEETDB_MQTT_CA", "mqtt_ca").map(PathBuf::from),
        mqtt_cert: pick("mqtt-cert", "FLEETDB_MQTT_CERT", "mqtt_cert").map(PathBuf::from),
        mqtt_key: pick("mqtt-key", "FLEETDB_MQTT_KEY", "mqtt_key").map(PathBuf::from),
        mqtt_client_id: pick("mqtt-client-id", "FLEETDB_MQTT_CLIENT_ID", "mqtt_client_id"),
        password: pick("password", "FLEETDB_PASSWORD", "password").filter(|p| !p.is_empty()),
        query_memory: match pick("query-memory", "FLEETDB_QUERY_MEMORY", "query_memory") {
            Some(s) => parse_size(&s)?,
            None => 1 << 30,
        },
        memory_limit: match pick("memory-limit", "FLEETDB_MEMORY_LIMIT", "memory_limit") {
            Some(s) => parse_size_at_least(&s, 64 << 20)?,
            None => default_memory_limit(),
        },
        limits: {
            let d = fleetdb::ingest::Limits::default();
            let size = |v: Option<String>, min: usize, default: usize| match v {
                Some(s) => parse_size_at_least(&s, min),
                None => Ok(default),
            };
            fleetdb::ingest::Limits {
                batch_messages: match pick("batch-messages", "FLEETDB_BATCH_MESSAGES", "batch_messages") {
                    Some(s) => s
                        .trim()
                        .parse()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| format!("batch-messages '{s}' is not a count of messages (at least 1)"))?,
                    None => d.batch_messages,
                },
                message_bytes: size(
                    pick("message-bytes", "FLEETDB_MESSAGE_BYTES", "message_bytes"),
                    1,
                    d.message_bytes,
                )?,
                inflight_bytes: size(
                    pick("ingest-memory", "FLEETDB_INGEST_MEMORY", "ingest_memory"),
                    1 << 20,
                    d.inflight_bytes,
                )?,
                http_connections: match pick(
                    "http-max-connections",
                    "FLEETDB_HTTP_MAX_CONNECTIONS",
                    "http_max_connections",
                ) {
                    Some(s) => s.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                        format!("http-max-connections '{s}' is not a count of connections (at least 1)")
                    })?,
                    None => d.http_connections,
                },
                http_header_timeout: match pick(
                    "http-header-timeout",
                    "FLEETDB_HTTP_HEADER_TIMEOUT",
                    "http_header_timeout",
                ) {
                    Some(s) => parse_duration("http-header-timeout", &s)?
                        .ok_or_else(|| "http-header-timeout cannot be 0".to_string())?,
                    None => d.http_header_timeout,
                },
                http_body_timeout: match pick("http-body-timeout", "FLEETDB_HTTP_BODY_TIMEOUT", "http_body_timeout") {
                    Some(s) => parse_duration("http-body-timeout", &s)?
                        .ok_or_else(|| "http-body-timeout cannot be 0".to_string())?,
                    None => d.http_body_timeout,
                },
            }
        },
        conn: {
            let d = fleetdb::server::pg::ConnLimits::default();
            fleetdb::server::pg::ConnLimits {
                max_connections: match pick("max-connections", "FLEETDB_MAX_CONNECTIONS", "max_connections") {
                    Some(s) => {
                        s.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                            format!("max-connections '{s}' is not a count of connections (at least 1)")
                        })?
                    }
                    None => d.max_connections,
                },
                max_message: match pick("max-message-size", "FLEETDB_MAX_MESSAGE_SIZE", "max_message_size") {
                    Some(s) => parse_size_at_least(&s, 64 << 10)?,
                    None => d.max_message,
                },
                authentication_timeout: match pick(
                    "authentication-timeout",
                    "FLEETDB_AUTHENTICATION_TIMEOUT",
                    "authentication_timeout",
                ) {
                    Some(s) => parse_duration("authentication-timeout", &s)?
                        .ok_or_else(|| "authentication-timeout cannot be 0".to_string())?,
                    None => d.authentication_timeout,
                },
                idle_session_timeout: match pick(
                    "idle-session-timeout",
                    "FLEETDB_IDLE_SESSION_TIMEOUT",
                    "idle_session_timeout",
                ) {
                    Some(s) => parse_duration("idle-session-timeout", &s)?,
                    None => d.idle_session_timeout,
                },
                ..d
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::parse;

    #[test]
    fn precedence_is_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("f.toml");
        std::fs::write(&cfg, "# fleetdb\ndata_dir = \"/from/file\"\npg_listen = \"127.0.0.1:6000\"\n").unwrap();
        let argv: Vec<String> = vec!["--config".into(), cfg.display().to_string(), "--http-listen=127.0.0.1:9".into()];
        let a = parse("serve", &argv, &SERVE_OPTIONS, &[]).unwrap();
        let env = |k: &str| (k == "FLEETDB_PG_LISTEN").then(|| "127.0.0.1:7000".to_string());
        let c = resolve(&a, env).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.pg_listen, "127.0.0.1:7000");
        assert_eq!(c.http_listen, "127.0.0.1:9");
        assert_eq!(c.mqtt, None);
        assert_eq!(c.limits, fleetdb::ingest::Limits::default());
        let env = |k: &str| (k == "FLEETDB_MESSAGE_BYTES").then(|| "1KiB".to_string());
        let limits = resolve(&parse("serve", &["--ingest-memory=2MiB".into()], &SERVE_OPTIONS, &[]).unwrap(), env)
            .unwrap()
            .limits;
        assert_eq!((limits.message_bytes, limits.inflight_bytes, limits.batch_messages), (1024, 2 << 20, 100));
        let zero = parse("serve", &["--batch-messages=0".into()], &SERVE_OPTIONS, &[]).unwrap();
        assert!(resolve(&zero, |_| None).unwrap_err().contains("batch-messages '0'"));
        std::fs::write(&cfg, "colour = \"blue\"\n").unwrap();
        assert!(resolve(&a, |_| None).unwrap_err().contains("unknown key 'colour'"));
    }
}
