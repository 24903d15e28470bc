//! Session settings: their defaults (SET, SHOW and `pg_settings`) and PostgreSQL's duration
//! format.

/// The PostgreSQL version fleetdb reports (`server_version`), whose protocol and catalogs it
/// follows.
pub(crate) const SERVER_VERSION: &str = "16.0";

pub(crate) fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (fleetdb {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION")
    )
}

/// A new session's settings (SET/SHOW, and `pg_settings`).
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("timezone", "UTC"),
    ("standard_conforming_strings", "on"),
    ("search_path", "public"),
    ("transaction_isolation", "read committed"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("extra_float_digits", "1"),
    ("application_name", ""),
    ("statement_timeout", "0"),
    ("idle_session_timeout", "0"),
];

/// A duration setting in PostgreSQL's form: a number of milliseconds, or a number and one of
/// `us`, `ms`, `s`, `min`, `h`, `d`.
pub fn parse_duration_setting(v: &str) -> Option<std::time::Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        "min" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        "d" => n * 86_400_000.0,
        _ => return None,
    };
    Some(std::time::Duration::from_micros((ms * 1000.0).min(u64::MAX as f64 / 2.0) as u64))
}
