//! SQL types as clients see them: [`SqlType`] (PostgreSQL type, OID, name), its physical
//! representation in column batches, and PostgreSQL's text output formats.
//!
//! Physical representation: bool → `Bool`; smallint, integer, bigint, date (days since
//! 1970-01-01) → `Int64`; real, double precision, numeric → `Float64`; text, varchar, json,
//! jsonb → `Text`; timestamp, timestamptz → `Timestamp` (microseconds, UTC).

use crate::batch::DataType;
use crate::util::time::{MICROS_PER_DAY, MICROS_PER_SECOND, civil_from_days};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Varchar,
    Timestamp,
    TimestampTz,
    Date,
    Interval,
    Json,
    Jsonb,
    /// Binary strings, carried as their canonical text form `\x0102ff`.
    Bytea,
    /// The type of a bare NULL or an untyped string literal before it is resolved.
    Unknown,
}

impl SqlType {
    pub fn oid(self) -> u32 {
        match self {
            SqlType::Bool => 16,
            SqlType::Int8 => 20,
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Text => 25,
            SqlType::Json => 114,
            SqlType::Float4 => 700,
            SqlType::Float8 => 701,
            SqlType::Unknown => 705,
            SqlType::Varchar => 1043,
            SqlType::Date => 1082,
            SqlType::Timestamp => 1114,
            SqlType::TimestampTz => 1184,
            SqlType::Interval => 1186,
            SqlType::Numeric => 1700,
            SqlType::Jsonb => 3802,
            SqlType::Bytea => 17,
        }
    }

    /// The name `format_type` and `\d` show.
    pub fn pg_name(self) -> &'static str {
        match self {
            SqlType::Bool => "boolean",
            SqlType::Int2 => "smallint",
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Float4 => "real",
            SqlType::Float8 => "double precision",
            SqlType::Numeric => "numeric",
            SqlType::Text => "text",
            SqlType::Varchar => "character varying",
            SqlType::Timestamp => "timestamp without time zone",
            SqlType::TimestampTz => "timestamp with time zone",
            SqlType::Date => "date",
            SqlType::Interval => "interval",
            SqlType::Json => "json",
            SqlType::Jsonb => "jsonb",
            SqlType::Bytea => "bytea",
            SqlType::Unknown => "unknown",
        }
    }

    /// The physical column type.
    pub fn physical(self) -> Option<DataType> {
        Some(match self {
            SqlType::Bool => DataType::Bool,
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Date => DataType::Int64,
            SqlType::Float4 | SqlType::Float8 | SqlType::Numeric => DataType::Float64,
            // Intervals travel as their PostgreSQL text (`1 day 02:00:00`); unknown literals as text.
            SqlType::Text
            | SqlType::Varchar
            | SqlType::Json
            | SqlType::Jsonb
            | SqlType::Interval
            | SqlType::Bytea
            | SqlType::Unknown => DataType::Text,
            SqlType::Timestamp | SqlType::TimestampTz => DataType::Timestamp,
        })
    }

    /// The SQL type of a stored column.
    pub fn of_storage(t: DataType) -> SqlType {
        match t {
            DataType::Bool => SqlType::Bool,
            DataType::Int64 => SqlType::Int8,
            DataType::Float64 => SqlType::Float8,
            DataType::Text => SqlType::Text,
            DataType::Timestamp => SqlType::TimestampTz,
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, SqlType::Int2 | SqlType::Int4 | SqlType::Int8)
    }
    pub fn is_float(self) -> bool {
        matches!(self, SqlType::Float4 | SqlType::Float8)
    }
    pub fn is_numeric(self) -> bool {
        self.is_integer() || self.is_float() || self == SqlType::Numeric
    }
    pub fn is_text(self) -> bool {
        matches!(self, SqlType::Text | SqlType::Varchar | SqlType::Unknown)
    }
    pub fn is_json(self) -> bool {
        matches!(self, SqlType::Json | SqlType::Jsonb)
    }
    pub fn is_timestamp(self) -> bool {
        matches!(self, SqlType::Timestamp | SqlType::TimestampTz)
    }

    /// Range of an integer type, for overflow checks.
    pub fn int_range(self) -> (i64, i64) {
        match self {
            SqlType::Int2 => (i16::MIN as i64, i16::MAX as i64),
            SqlType::Int4 => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        }
    }

    /// Parses a type name as written in SQL (`int`, `double precision`, `timestamptz`, …).
    pub fn from_name(name: &str) -> Option<SqlType> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.trim_start_matches("pg_catalog.");
        // Arrays are carried in their text form ('{a,b}').
        if n.ends_with("[]") {
            return Some(SqlType::Text);
        }
        let n = n.split('(').next().unwrap_or("").trim().to_string();
        Some(match n.as_str() {
            "bool" | "boolean" => SqlType::Bool,
            "int2" | "smallint" => SqlType::Int2,
            "int" | "int4" | "integer" | "serial" => SqlType::Int4,
            "int8" | "bigint" | "bigserial" => SqlType::Int8,
            "float4" | "real" => SqlType::Float4,
            "float" | "float8" | "double precision" | "double" => SqlType::Float8,
            "numeric" | "decimal" => SqlType::Numeric,
            "text" | "string" | "name" => SqlType::Text,
            "varchar" | "character varying" | "char" | "character" | "bpchar" => SqlType::Varchar,
            "timestamp" | "timestamp without time zone" => SqlType::Timestamp,
            "timestamptz" | "timestamp with time zone" => SqlType::TimestampTz,
            "date" => SqlType::Date,
            "interval" => SqlType::Interval,
            "json" => SqlType::Json,
            "jsonb" => SqlType::Jsonb,
            "bytea" => SqlType::Bytea,
            _ => return None,
        })
    }
}

/// Reads bytea input (hex `\x0102ff`, or the escape format with `\\` and `\ooo`) into the
/// canonical hex text fleetdb carries; `None` if malformed.
pub fn parse_bytea(s: &str) -> Option<String> {
    let mut bytes = Vec::new();
    if let Some(hex) = s.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return None;
        }
        for pair in digits.chunks(2) {
            bytes.push(u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?);
        }
    } else {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'\\' {
                bytes.push(b[i]);
                i += 1;
            } else if b.get(i + 1) == Some(&b'\\') {
                bytes.push(b'\\');
                i += 2;
            } else {
                let oct = std::str::from_utf8(b.get(i + 1..i + 4)?).ok()?;
                bytes.push(u8::from_str_radix(oct, 8).ok()?);
                i += 4;
            }
        }
    }
    Some(bytea_text(&bytes))
}

/// The canonical text of bytes: `\x` and two lowercase hex digits per byte.
pub fn bytea_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("\\x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The bytes of canonical bytea text.
pub fn bytea_bytes(text: &str) -> Vec<u8> {
    let hex = text.strip_prefix("\\x").unwrap_or("").as_bytes();
    hex.chunks(2).filter_map(|p| std::str::from_utf8(p).ok().and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// A PostgreSQL interval: months, days and microseconds are kept apart, as PostgreSQL does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// Length in microseconds, counting a month as 30 days and a day as 24 hours (PostgreSQL's
    /// rule for comparing intervals).
    pub fn approx_micros(&self) -> i64 {
        (self.months as i64 * 30 + self.days as i64) * MICROS_PER_DAY + self.micros
    }
}

/// `float8out`: the shortest text that reads back to the same double, in fixed notation for
/// decimal exponents -4..15 and scientific (`1e+15`, `1.5e-05`) otherwise.
pub fn format_float8(v: f64) -> String {
    format_shortest(v, format!("{v:e}"), format!("{v}"), 15)
}

/// `float4out`, the same rule with single precision (fixed for exponents -4..6).
pub fn format_float4(v: f32) -> String {
    format_shortest(v as f64, format!("{v:e}"), format!("{v}"), 6)
}

/// PostgreSQL's choice between fixed and scientific notation for the shortest round-trip
/// digits (`sci` and `fixed` are Rust's shortest forms of the same value).
fn format_shortest(v: f64, sci: String, fixed: String, max_exp: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..max_exp).contains(&exp) {
        fixed
    } else {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn push_time_of_day(out: &mut String, micros_of_day: i64) {
    let secs = micros_of_day / MICROS_PER_SECOND;
    let frac = micros_of_day % MICROS_PER_SECOND;
    out.push_str(&format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60));
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// `date` output, ISO style: `2026-01-01`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days as i32);
    if y <= 0 { format!("{:04}-{m:02}-{d:02} BC", 1 - y) } else { format!("{y:04}-{m:02}-{d:02}") }
}

/// `timestamp` / `timestamptz` output, ISO style with the session time zone UTC:
/// `2026-01-01 08:30:00.25` (and `+00` for timestamptz).
pub fn format_timestamp(ts: i64, with_tz: bool) -> String {
    let days = ts.div_euclid(MICROS_PER_DAY);
    let mut out = format_date(days);
    let bc = out.ends_with(" BC");
    if bc {
        out.truncate(out.len() - 3);
    }
    out.push(' ');
    push_time_of_day(&mut out, ts.rem_euclid(MICROS_PER_DAY));
    if with_tz {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

/// `interval` output in PostgreSQL's default style: `1 year 2 mons 3 days 04:05:06.5`.
pub fn format_interval(iv: &Interval) -> String {
    let mut parts: Vec<String> = Vec::new();
    let (years, months) = (iv.months / 12, iv.months % 12);
    let unit = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 || n == -1 { one } else { many });
    if years != 0 {
        parts.push(unit(years as i64, "year", "years"));
    }
    if months != 0 {
        parts.push(unit(months as i64, "mon", "mons"));
    }
    if iv.days != 0 {
        parts.push(unit(iv.days as i64, "day", "days"));
    }
    if iv.micros != 0 || parts.is_empty() {
        let mut t = String::new();
        if iv.micros < 0 {
            t.push('-');
        }
        let m = iv.micros.unsigned_abs() as i64;
        let secs = m / MICROS_PER_SECOND;
        t.push_str(&format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60));
        let frac = m % MICROS_PER_SECOND;
        if frac != 0 {
            t.push('.');
            t.push_str(format!("{frac:06}").trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
}

/// The narrowest type every present value of a text column parses as: bigint, double
/// precision, boolean, else text.
pub fn infer_type(c: &crate::batch::Column) -> SqlType {
    let crate::batch::Values::Text(v) = &c.values else { return SqlType::Text };
    let present: Vec<&str> = (0..c.len()).filter(|&i| c.is_valid(i)).map(|i| v.get(i).trim()).collect();
    if present.is_empty() {
        return SqlType::Text;
    }
    if present.iter().all(|s| s.parse::<i64>().is_ok()) {
        SqlType::Int8
    } else if present.iter().all(|s| s.parse::<f64>().is_ok()) {
        SqlType::Float8
    } else if present.iter().all(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "t" | "f")) {
        SqlType::Bool
    } else {
        SqlType::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(format_float8(1.5), "1.5");
        assert_eq!(format_float8(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_float8(1e14), "100000000000000");
        assert_eq!(format_float8(1e15), "1e+15");
        assert_eq!(format_float8(0.0001), "0.0001");
        assert_eq!(format_float8(0.00001), "1e-05");
        assert_eq!(format_float8(-2.5e-7), "-2.5e-07");
        assert_eq!(format_float8(f64::NAN), "NaN");
        assert_eq!(format_float8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(format_float8(100.0), "100");
    }

    #[test]
    fn timestamps_dates_and_intervals_print_like_postgres() {
        let t = 1_767_225_600_000_000 + 30_600_250_000;
        assert_eq!(format_timestamp(t, true), "2026-01-01 08:30:00.25+00");
        assert_eq!(format_timestamp(t, false), "2026-01-01 08:30:00.25");
        assert_eq!(format_date(0), "1970-01-01");
        let iv = Interval { months: 14, days: 3, micros: 4 * 3_600_000_000 + 5_500_000 };
        assert_eq!(format_interval(&iv), "1 year 2 mons 3 days 04:00:05.5");
        assert_eq!(format_interval(&Interval::default()), "00:00:00");
        assert_eq!(format_interval(&Interval { months: 0, days: 1, micros: 0 }), "1 day");
        assert_eq!(format_interval(&Interval { months: 0, days: 0, micros: -90_000_000 }), "-00:01:30");
    }
}

/// The SQL type of a column declared with type tag (OID) `oid`.
pub(crate) fn type_of_oid(oid: u32, storage: DataType) -> SqlType {
    use SqlType as T;
    [
        T::Bool,
        T::Int2,
        T::Int4,
        T::Int8,
        T::Float4,
        T::Float8,
        T::Numeric,
        T::Text,
        T::Varchar,
        T::Timestamp,
        T::TimestampTz,
        T::Date,
        T::Json,
        T::Jsonb,
        T::Bytea,
    ]
    .into_iter()
    .find(|t| t.oid() == oid)
    .unwrap_or_else(|| SqlType::of_storage(storage))
}

/// A named, typed output column.
#[derive(Clone, Debug, PartialEq)]
pub struct OutCol {
    pub name: String,
    pub ty: SqlType,
}
