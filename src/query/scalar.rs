//! [`Scalar`]: one SQL value, for literals, parameters and constant folding. Columns of values
//! are `batch::Column`s; a scalar broadcasts to a column with [`Scalar::to_column`].

use super::error::{SqlError, SqlResult};
use super::types::{Interval, SqlType, format_date, format_float4, format_float8, format_interval, format_timestamp};
use crate::batch::{Bitmap, Column, DataType, StrVec, Values};
use crate::util::time::{MICROS_PER_DAY, MICROS_PER_SECOND, days_from_civil};
use std::borrow::Cow;

/// A bound statement parameter (`$n`): its text form, and the type the client declared for it
/// (`Unknown` when it declared none; the statement's context then decides, as for a literal).
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub text: Option<String>,
    pub ty: SqlType,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// Microseconds since the epoch (timestamp, timestamptz) or days (date), by the SQL type.
    Time(i64),
    Interval(Interval),
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// `n` copies as a column of the physical type of `ty`.
    pub fn to_column(&self, ty: SqlType, n: usize) -> SqlResult<Column> {
        let Some(dt) = ty.physical() else {
            return Err(SqlError::unsupported(format!("a column of type {}", ty.pg_name())));
        };
        if self.is_null() {
            return Ok(Column::nulls(dt, n));
        }
        let values = match (dt, self) {
            (DataType::Bool, Scalar::Bool(b)) => Values::Bool(vec![*b; n]),
            (DataType::Int64, Scalar::Int(i) | Scalar::Time(i)) => Values::Int64(vec![*i; n]),
            (DataType::Float64, Scalar::Float(f)) => Values::Float64(vec![*f; n]),
            (DataType::Float64, Scalar::Int(i)) => Values::Float64(vec![*i as f64; n]),
            (DataType::Timestamp, Scalar::Time(t)) => Values::Timestamp(vec![*t; n]),
            (DataType::Text, Scalar::Interval(iv)) => {
                let t = format_interval(iv);
                text_room(t.len(), n)?;
                let mut v = StrVec::with_capacity(n, t.len() * n);
                (0..n).for_each(|_| v.push(&t));
                Values::Text(v)
            }
            (DataType::Text, Scalar::Text(s)) => {
                text_room(s.len(), n)?;
                let mut v = StrVec::with_capacity(n, s.len() * n);
                (0..n).for_each(|_| v.push(s));
                Values::Text(v)
            }
            (dt, s) => return Err(SqlError::mismatch(format!("cannot hold {s:?} in a {dt:?} column"))),
        };
        Ok(Column::new(values))
    }

    /// Value `i` of `col`, read as SQL type `ty`.
    pub fn from_column(col: &Column, ty: SqlType, i: usize) -> Scalar {
        if !col.is_valid(i) {
            return Scalar::Null;
        }
        match &col.values {
            Values::Bool(v) => Scalar::Bool(v[i]),
            Values::Int64(v) if ty == SqlType::Date => Scalar::Time(v[i]),
            Values::Int64(v) => Scalar::Int(v[i]),
            Values::Float64(v) => Scalar::Float(v[i]),
            Values::Text(v) if ty == SqlType::Interval => {
                parse_interval(v.get(i)).map(Scalar::Interval).unwrap_or(Scalar::Null)
            }
            Values::Text(v) => Scalar::Text(v.get(i).to_string()),
            Values::Timestamp(v) => Scalar::Time(v[i]),
        }
    }

    /// PostgreSQL's text output of this value as type `ty`; `None` for NULL.
    pub fn to_text(&self, ty: SqlType) -> Option<String> {
        Some(match self {
            Scalar::Null => return None,
            Scalar::Bool(b) => (if *b { "t" } else { "f" }).to_string(),
            Scalar::Int(i) if ty.is_float() || ty == SqlType::Numeric => {
                if ty == SqlType::Numeric {
                    i.to_string()
                } else {
                    format_float8(*i as f64)
                }
            }
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => match ty {
                SqlType::Float4 => format_float4(*f as f32),
                SqlType::Numeric => format_numeric(*f),
                _ => format_float8(*f),
            },
            Scalar::Text(s) => s.clone(),
            Scalar::Time(t) => match ty {
                SqlType::Date => format_date(*t),
                SqlType::Timestamp => format_timestamp(*t, false),
                _ => format_timestamp(*t, true),
            },
            Scalar::Interval(iv) => format_interval(iv),
        })
    }
}

/// Two doubles in PostgreSQL's order: NaN above every number and equal to itself, -0 equal
/// to 0.
pub fn cmp_f64(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Numeric output of a value held as a double: plain decimal notation, never exponent
/// notation; below 1e15 at most 15 significant digits (what a double carries reliably), from
/// 1e15 on a whole number as its shortest round-trip digits (what a numeric literal, an exact
/// sum or product of them, or a cast from a double made it; see [`parse_numeric`]).
pub fn format_numeric(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f.abs() >= 1e15 && f.fract() == 0.0 {
        return format!("{f}");
    }
    let digits = 15 - (f.abs().log10().floor() as i32 + 1);
    let s = format!("{:.*}", digits.clamp(0, 20) as usize, f);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Integers from 2^53 on are not all doubles: past it a numeric result must be checked.
pub const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// 22003 for a numeric result fleetdb's numeric (a double) cannot hold: its integer digits
/// would not be the true ones.
pub fn numeric_inexact(what: &str) -> SqlError {
    SqlError::new(
        "22003",
        format!(
            "numeric {what} cannot be held exactly: fleetdb's numeric is a double precision number (integers are exact up to 2^53, about 15 significant digits)"
        ),
    )
    .with_hint("Cast to double precision to accept the rounding.")
}

/// `s` as a numeric, or 22003 when the numeric read from the double nearest it is not it.
pub fn numeric_of_int(s: i128) -> SqlResult<f64> {
    let f = s as f64;
    if f.abs() >= EXACT_INT_LIMIT && numeric_decimal(f) != decimal_normal(s, 0) {
        return Err(numeric_inexact(&format!("value {s}")));
    }
    Ok(f)
}

/// The decimal value a numeric double stands for, `m × 10^e` with `m` free of trailing
/// zeros: its shortest round-trip digits (at most 17).
pub fn numeric_decimal(f: f64) -> (i128, i32) {
    let (digits, exp) = decimal_digits(&format!("{f:e}")).expect("a finite double in exponent form");
    let m = digits.iter().fold(0i128, |m, d| m * 10 + i128::from(d - b'0'));
    let e = if digits.is_empty() { 0 } else { (exp - digits.len() as i64) as i32 };
    (if f < 0.0 { -m } else { m }, e)
}

/// `m × 10^e` without trailing zeros in `m` (0 as `(0, 0)`).
pub fn decimal_normal(mut m: i128, mut e: i32) -> (i128, i32) {
    while m != 0 && m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    if m == 0 { (0, 0) } else { (m, e) }
}

/// Parses text as a value of `ty` (literals, COPY, text-format parameters).
/// A constant text of `len` bytes repeated over `n` rows must fit a column (4 GiB) and the
/// query's memory before it is built.
fn text_room(len: usize, n: usize) -> SqlResult<()> {
    let bytes = len.saturating_mul(n).saturating_add(4 * n);
    if bytes > u32::MAX as usize {
        return Err(SqlError::new("54000", format!("a column of {n} rows of {len} bytes would hold more than 4 GiB")));
    }
    super::guard::room(bytes)
}

/// Significant decimal digits of a number written in decimal (`-12.50e3`) and its exponent
/// (value = 0.d1d2… × 10^exp), with leading and trailing zeros dropped; None if not decimal.
fn decimal_digits(s: &str) -> Option<(Vec<u8>, i64)> {
    let s = s.trim().trim_start_matches(['+', '-']);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], s[at + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())) || int.len() + frac.len() == 0 {
        return None;
    }
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut exp = exp.checked_add(int.len() as i64)?;
    let lead = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..lead);
    exp -= lead as i64;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        exp = 0;
    }
    Some((digits, exp))
}

/// A `numeric` from its decimal text. fleetdb's numeric is a double: a value it cannot hold
/// exactly as written (more than about 15 significant digits) is refused (22003) rather than
/// silently rounded, as PostgreSQL's exact numeric would never round it.
pub fn parse_numeric(t: &str) -> SqlResult<f64> {
    let f: f64 = t.trim().parse().map_err(|_| SqlError::invalid_input("numeric", t))?;
    if f.is_infinite() && decimal_digits(t).is_some() {
        return Err(SqlError::new(
            "22003",
            format!(
                "numeric value {} is out of range for fleetdb's numeric (a double precision number, up to about 1.8e308)",
                t.trim()
            ),
        ));
    }
    // Held when the double's shortest round-trip digits are the text's (0.1 stays 0.1; 2^53
    // is held, 2^53 + 1 is not, nor 2^60 written out: its shortest digits are 1152921504606847e3),
    // and when past 15 significant digits it is a whole number from 1e15 on, which
    // `format_numeric` writes out whole.
    if f.is_finite()
        && let Some(want) = decimal_digits(t)
        && (decimal_digits(&format!("{f:e}")).as_ref() != Some(&want)
            || (want.0.len() > 15 && !(f.abs() >= 1e15 && f.fract() == 0.0)))
    {
        return Err(SqlError::new(
            "22003",
            format!("numeric value {} cannot be held exactly: fleetdb's numeric is a double precision number (about 15 significant digits)", t.trim()),
        )
        .with_hint("Round it, or cast it to double precision to accept the rounding."));
    }
    Ok(f)
}

pub fn parse_text(s: &str, ty: SqlType) -> SqlResult<Scalar> {
    let t = s.trim();
    let bad = || SqlError::invalid_input(ty.pg_name(), s);
    Ok(match ty {
        SqlType::Bool => match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" | "y" => Scalar::Bool(true),
            "f" | "false" | "no" | "off" | "0" | "n" => Scalar::Bool(false),
            _ => return Err(bad()),
        },
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => {
            let v: i64 = t.parse().map_err(|_| {
                if t.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '+') && !t.is_empty() {
                    SqlError::new("22003", format!("value \"{s}\" is out of range for type {}", ty.pg_name()))
                } else {
                    bad()
                }
            })?;
            let (lo, hi) = ty.int_range();
            if v < lo || v > hi {
                return Err(SqlError::new("22003", format!("value \"{s}\" is out of range for type {}", ty.pg_name())));
            }
            Scalar::Int(v)
        }
        SqlType::Numeric => match special_float(t) {
            Some(x) => Scalar::Float(x),
            None => {
                t.parse::<f64>().map_err(|_| bad())?;
                Scalar::Float(parse_numeric(t)?)
            }
        },
        SqlType::Float4 | SqlType::Float8 => Scalar::Float(parse_float8(t).ok_or_else(bad)?),
        SqlType::Text | SqlType::Varchar | SqlType::Unknown => Scalar::Text(s.to_string()),
        SqlType::Bytea => Scalar::Text(super::types::parse_bytea(s).ok_or_else(|| {
            if s.starts_with("\\x") {
                SqlError::new("22023", format!("invalid hexadecimal data in bytea: \"{s}\""))
            } else {
                bad()
            }
        })?),
        SqlType::Json | SqlType::Jsonb => {
            crate::util::json::parse(s).map_err(|e| {
                SqlError::new("22P02", format!("invalid input syntax for type json: {}", e.message))
                    .with_hint(format!("The document is invalid near byte {}.", e.offset))
            })?;
            Scalar::Text(s.to_string())
        }
        SqlType::Date => Scalar::Time(parse_date(t).ok_or_else(|| SqlError { sqlstate: "22007", ..bad() })?),
        SqlType::Timestamp | SqlType::TimestampTz => {
            Scalar::Time(parse_timestamp(t).ok_or_else(|| SqlError { sqlstate: "22007", ..bad() })?)
        }
        SqlType::Interval => Scalar::Interval(parse_interval(t).ok_or_else(bad)?),
    })
}

/// NaN and the infinities as PostgreSQL spells them (any case).
fn special_float(t: &str) -> Option<f64> {
    let is = |w: &str| t.eq_ignore_ascii_case(w);
    if is("nan") {
        Some(f64::NAN)
    } else if is("infinity") || is("inf") || is("+infinity") {
        Some(f64::INFINITY)
    } else if is("-infinity") || is("-inf") {
        Some(f64::NEG_INFINITY)
    } else {
        None
    }
}

/// `s` without leading and trailing whitespace (as `str::trim`), answered by two byte tests
/// when its ends are visible ASCII (every value of a COPY, read per field).
#[inline]
fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) { s } else { s.trim() }
}

/// A `double precision` from text (surrounding whitespace allowed), as PostgreSQL reads it.
/// A plain decimal (`-12.345`) of at most 15 significant digits and 22 fraction digits is
/// read by hand: its digits as an integer and a power of ten are both exact doubles, so one
/// division rounds it correctly, the same value the general reader gives.
pub fn parse_float8(s: &str) -> Option<f64> {
    let t = trim(s);
    let b = t.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut m, mut n, mut frac, mut seen_point) = (0u64, 0usize, 0usize, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                m = m.wrapping_mul(10).wrapping_add((c - b'0') as u64);
                n += 1;
                frac += seen_point as usize;
            }
            b'.' if !seen_point => seen_point = true,
            _ => {
                n = usize::MAX;
                break;
            }
        }
    }
    if (1..=15).contains(&n) && frac <= 22 {
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
            1e19, 1e20, 1e21, 1e22,
        ];
        let x = m as f64 / POW10[frac];
        return Some(if neg { -x } else { x });
    }
    special_float(t).or_else(|| t.parse::<f64>().ok())
}

fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (crate::util::time::civil_from_days(days) == (y, m, d)).then_some(days as i64)
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|±HH[:MM]]`, or a date alone; UTC unless an offset is
/// given. Also `epoch`, `now` is resolved by the caller.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = trim(s);
    if let Some(t) = parse_iso_timestamp(s) {
        return Some(t);
    }
    parse_timestamp_forms(s)
}

/// `YYYY-MM-DD(T| )HH:MM:SS[.f (1 to 6 digits)][Z|+00|+00:00]` exactly, as exports and
/// loggers write times: read by position, a small part of the general reader's work; `None`
/// for any other form (and for hour 24 or second 60), which [`parse_timestamp_forms`] reads.
fn parse_iso_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |from: usize, n: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(from..from + n)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    let (y, mo, d) = (digits(0, 4)? as i32, digits(5, 2)? as u32, digits(8, 2)? as u32);
    let (h, mi, sec) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if d > month_days[mo as usize - 1] {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let (mut at, mut frac) = (19, 0i64);
    if b.get(at) == Some(&b'.') {
        let n = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return None;
        }
        frac = digits(at + 1, n)? * 10i64.pow((6 - n) as u32);
        at += 1 + n;
    }
    if !matches!(&b[at..], b"" | b"Z" | b"z" | b"+00" | b"+00:00") {
        return None;
    }
    Some(days as i64 * MICROS_PER_DAY + (h * 3600 + mi * 60 + sec) * MICROS_PER_SECOND + frac)
}

/// [`parse_timestamp`]'s every form (`s` trimmed).
fn parse_timestamp_forms(s: &str) -> Option<i64> {
    if s.eq_ignore_ascii_case("epoch") {
        return Some(0);
    }
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let days = parse_date(date)?;
    let mut micros = days.checked_mul(MICROS_PER_DAY)?;
    if rest.is_empty() {
        return Some(micros);
    }
    // Split off a zone: Z, +HH, +HH:MM, -HHMM, or " UTC"/"+00".
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => match rest.split_once(' ') {
            Some((t, z)) => (t, Some(z)),
            None => (rest, None),
        },
    };
    let mut parts = time.trim().split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec_text = parts.next().unwrap_or("0");
    let (whole, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let sec: i64 = whole.parse().ok()?;
    if h > 24 || m > 59 || sec > 60 {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Up to microseconds exactly; finer fractions rounded to the nearest microsecond as
    // PostgreSQL rounds them (the fraction as a double, times a million, ties to even).
    let frac_micros = if frac.len() <= 6 {
        frac.bytes().enumerate().map(|(i, c)| (c - b'0') as i64 * 10i64.pow(5 - i as u32)).sum::<i64>()
    } else {
        let f: f64 = format!("0.{frac}").parse().ok()?;
        (f * 1e6).round_ties_even() as i64
    };
    micros = micros.checked_add((h * 3600 + m * 60 + sec) * MICROS_PER_SECOND + frac_micros)?;
    if let Some(z) = zone {
        let z = z.trim();
        if !(z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("utc") || z.eq_ignore_ascii_case("gmt")) {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let body = z.trim_start_matches(['+', '-']);
            let (zh, zm): (i64, i64) = match body.split_once(':') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None if body.len() == 4 => (body.get(..2)?.parse().ok()?, body.get(2..)?.parse().ok()?),
                None => (body.parse().ok()?, 0),
            };
            if !(0..=15).contains(&zh) || !(0..60).contains(&zm) {
                return None;
            }
            micros = micros.checked_sub(sign * (zh * 3600 + zm * 60) * MICROS_PER_SECOND)?;
        }
    }
    Some(micros)
}

/// `1 day`, `2 hours 30 minutes`, `10 minutes`, `-3 minutes`, `1 mon`, `01:30:00`, `1 day 02:00:00`.
/// An interval of days or less (no months or years) in microseconds, a day being 24 hours:
/// what time windows and timeouts written as intervals (`'10 minutes'`) mean.
pub fn parse_fixed_interval(s: &str) -> Option<i64> {
    parse_interval(s)
        .filter(|i| i.months == 0)
        .and_then(|i| (i.days as i64).checked_mul(86_400_000_000)?.checked_add(i.micros))
}

pub fn parse_interval(s: &str) -> Option<Interval> {
    let mut iv = Interval::default();
    let toks: Vec<&str> = s.split_whitespace().collect();
    let mut i = 0;
    if toks.is_empty() {
        return None;
    }
    while i < toks.len() {
        let t = toks[i];
        if t.contains(':') {
            let neg = t.starts_with('-');
            let mut p = t.trim_start_matches(['-', '+']).split(':');
            let h: i64 = p.next()?.parse().ok()?;
            let m: i64 = p.next()?.parse().ok()?;
            let sec: f64 = p.next().unwrap_or("0").parse().ok()?;
            if !(0..=1_000_000).contains(&h) || !(0..60).contains(&m) || !(0.0..61.0).contains(&sec) {
                return None;
            }
            let us = (h * 3600 + m * 60) * MICROS_PER_SECOND + (sec * 1e6).round() as i64;
            iv.micros = iv.micros.checked_add(if neg { -us } else { us })?;
            i += 1;
            continue;
        }
        let n: f64 = t.parse().ok()?;
        if !n.is_finite() || n.abs() > 1e12 {
            return None;
        }
        let unit = toks.get(i + 1).map(|u| u.to_ascii_lowercase()).unwrap_or_else(|| "second".into());
        let unit = unit.trim_end_matches(',');
        let add = |v: &mut i64, x: f64| -> Option<()> {
            *v = v.checked_add(x.round() as i64)?;
            Some(())
        };
        let add32 = |v: &mut i32, x: f64| -> Option<()> {
            *v = v.checked_add(i32::try_from(x as i64).ok()?)?;
            Some(())
        };
        match unit.trim_end_matches('s') {
            "microsecond" | "us" | "usec" => add(&mut iv.micros, n)?,
            "millisecond" | "m" if unit.starts_with("milli") || unit == "ms" => add(&mut iv.micros, n * 1e3)?,
            "ms" | "msec" => add(&mut iv.micros, n * 1e3)?,
            "second" | "sec" | "" => add(&mut iv.micros, n * 1e6)?,
            "minute" | "min" => add(&mut iv.micros, n * 60e6)?,
            "hour" | "hr" | "h" => add(&mut iv.micros, n * 3600e6)?,
            "day" | "d" => add32(&mut iv.days, n)?,
            "week" | "w" => add32(&mut iv.days, n * 7.0)?,
            "mon" | "month" => add32(&mut iv.months, n)?,
            "year" | "yr" | "y" => add32(&mut iv.months, n * 12.0)?,
            _ => return None,
        }
        i += 2;
    }
    Some(iv)
}

/// Builds a column of type `ty` from scalars.
pub(crate) fn scalars_to_column(vals: &[Scalar], ty: SqlType) -> SqlResult<Column> {
    let ty = if ty == SqlType::Unknown { SqlType::Text } else { ty };
    let n = vals.len();
    let mut valid = Bitmap::new_set(n);
    for (i, v) in vals.iter().enumerate() {
        if v.is_null() {
            valid.set(i, false);
        }
    }
    let values = match ty.physical() {
        Some(crate::batch::DataType::Bool) => {
            Values::Bool(vals.iter().map(|v| matches!(v, Scalar::Bool(true))).collect())
        }
        Some(crate::batch::DataType::Int64) => Values::Int64(
            vals.iter()
                .map(|v| match v {
                    Scalar::Int(i) | Scalar::Time(i) => *i,
                    Scalar::Float(f) => *f as i64,
                    _ => 0,
                })
                .collect(),
        ),
        Some(crate::batch::DataType::Float64) => Values::Float64(
            vals.iter()
                .map(|v| match v {
                    Scalar::Float(f) => *f,
                    Scalar::Int(i) => *i as f64,
                    _ => 0.0,
                })
                .collect(),
        ),
        Some(crate::batch::DataType::Timestamp) => {
            Values::Timestamp(vals.iter().map(|v| if let Scalar::Time(t) = v { *t } else { 0 }).collect())
        }
        Some(crate::batch::DataType::Text) => {
            let mut sv = StrVec::with_capacity(n, 0);
            for v in vals {
                match v {
                    Scalar::Text(s) => sv.push(s),
                    Scalar::Null => sv.push(""),
                    other => sv.push(&other.to_text(ty).unwrap_or_default()),
                }
            }
            Values::Text(sv)
        }
        None => return Err(SqlError::unsupported(format!("a column of type {}", ty.pg_name()))),
    };
    Ok(Column::with_validity(values, Some(valid)))
}

/// A column as text: its PostgreSQL text form for non-text types.
pub(crate) fn text_of(c: &Column, t: SqlType) -> Cow<'_, StrVec> {
    match &c.values {
        Values::Text(v) => Cow::Borrowed(v),
        _ => {
            let mut out = StrVec::with_capacity(c.len(), 0);
            for i in 0..c.len() {
                out.push(&Scalar::from_column(c, t, i).to_text(t).unwrap_or_default());
            }
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn iso_times_read_by_position_are_the_general_readers(
            y in 0u32..10_000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61, sec in 0u32..62,
            frac in prop::option::of(0u32..100_000_000), width in 0usize..9,
            sep in prop::sample::select(vec!["T", " ", "t"]),
            zone in prop::sample::select(vec!["", "Z", "z", "+00", "+00:00", "+01", "-05:30", " UTC"]),
        ) {
            let frac = frac.map_or(String::new(), |f| format!(".{:0width$}", f % 10u32.pow(width as u32).max(1), width = width));
            let s = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{sec:02}{frac}{zone}");
            if let Some(t) = parse_iso_timestamp(&s) {
                prop_assert_eq!(Some(t), parse_timestamp_forms(&s), "{}", s);
            }
        }

        #[test]
        fn decimals_read_by_hand_are_the_general_readers(
            sign in prop::sample::select(vec!["", "-", "+"]), int in "[0-9]{0,17}", point in any::<bool>(),
            frac in "[0-9]{0,17}", pad in prop::sample::select(vec!["", " ", "\t"]),
        ) {
            let s = format!("{pad}{sign}{int}{}{frac}{pad}", if point { "." } else { "" });
            let general = s.trim().parse::<f64>().ok();
            let ours = parse_float8(&s);
            prop_assert_eq!(ours.map(f64::to_bits), general.map(f64::to_bits), "{}", s);
        }
    }

    #[test]
    fn doubles_as_postgresql_spells_them() {
        assert_eq!(parse_float8(" 0.1 "), Some(0.1));
        assert_eq!(parse_float8("-0").map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(parse_float8("123456789012345.6"), Some(123456789012345.6));
        assert_eq!(parse_float8("1e-3"), Some(0.001));
        assert_eq!(parse_float8("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float8("NaN").is_some_and(f64::is_nan));
        for bad in ["", ".", "-", "1.2.3", "1,5", "0x10", "1 2"] {
            assert_eq!(parse_float8(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso_times_by_position() {
        assert_eq!(parse_iso_timestamp("2026-01-01T00:00:09.174000Z"), Some(1_767_225_609_174_000));
        assert_eq!(parse_iso_timestamp("2026-01-01 00:00:09.5+00:00"), Some(1_767_225_609_500_000));
        // Other forms are the general reader's.
        for s in
            ["2026-02-30 00:00:00", "2026-01-01 24:00:00", "2026-01-01T00:00:00.1234567Z", "2026-01-01 00:00:00+01"]
        {
            assert_eq!(parse_iso_timestamp(s), None, "{s}");
        }
        assert_eq!(parse_timestamp("2026-01-01 00:00:00+01"), Some(1_767_225_600_000_000 - 3_600_000_000));
        // Past microseconds the fraction is rounded (PostgreSQL's way), and digits only.
        assert_eq!(parse_timestamp("2026-01-01 00:00:00.9999996"), Some(1_767_225_601_000_000));
        assert_eq!(parse_timestamp("2026-01-01 00:00:00.1234564Z"), Some(1_767_225_600_123_456));
        assert_eq!(parse_timestamp("2026-01-01 00:00:00.1234567x"), None);
    }

    #[test]
    fn parses_timestamps_dates_intervals() {
        assert_eq!(parse_timestamp("2026-01-01"), Some(1_767_225_600_000_000));
        assert_eq!(parse_timestamp("2026-01-01 00:00:01.5"), Some(1_767_225_601_500_000));
        assert_eq!(parse_timestamp("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000_000));
        assert_eq!(parse_timestamp("2026-01-01 00:00:00Z"), Some(1_767_225_600_000_000));
        assert_eq!(parse_timestamp("2026-02-30"), None);
        assert_eq!(parse_interval("1 day"), Some(Interval { months: 0, days: 1, micros: 0 }));
        assert_eq!(parse_interval("10 minutes"), Some(Interval { months: 0, days: 0, micros: 600_000_000 }));
        assert_eq!(parse_interval("1 hour 30 mins").unwrap().micros, 5_400_000_000);
        assert_eq!(parse_interval("-3 minutes").unwrap().micros, -180_000_000);
        assert_eq!(parse_interval("2 mons").unwrap().months, 2);
        assert_eq!(parse_interval("01:30:00").unwrap().micros, 5_400_000_000);
        assert!(parse_interval("soon").is_none());
        assert_eq!(format_numeric(2.5), "2.5");
        assert_eq!(format_numeric(1.0 / 3.0), "0.333333333333333");
    }
}

#[cfg(test)]
mod numeric_tests {
    use super::*;

    #[test]
    fn numerics_a_double_cannot_hold_exactly_are_refused() {
        for ok in [
            "0.1",
            "1.50",
            "-12.5e3",
            "9007199254740992",
            "123456789012345",
            "0.000001234",
            "1e300",
            "0",
            "1152921504606850000",
            "1e20",
        ] {
            assert!(parse_numeric(ok).is_ok(), "{ok}");
            assert_eq!(decimal_digits(&format_numeric(parse_numeric(ok).unwrap())), decimal_digits(ok), "{ok}");
        }
        // 2^63 and 2^60 are doubles, but a double past 2^53 stands for its shortest digits
        // (9223372036854776000): written out whole they are refused, not misprinted.
        for bad in [
            "9007199254740993",
            "12345678901234567890.123",
            "3.14159265358979323846",
            "9223372036854775808",
            "1152921504606846976",
            "0.30000000000000004",
        ] {
            assert_eq!(parse_numeric(bad).unwrap_err().sqlstate, "22003", "{bad}");
        }
        assert_eq!(decimal_digits("00120.0500"), Some((b"12005".to_vec(), 3)));
        assert_eq!(decimal_digits("1.2e-3"), Some((b"12".to_vec(), -2)));
    }
}
