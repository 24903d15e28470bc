//! Scalar functions: string, math (every AWS IoT Analytics math function among them), NULL
//! handling, time (`date_trunc`, `date_part`, `date_bin`, `to_timestamp`) and JSON (`->`, `->>`,
//! `#>`, `#>>`, `json_typeof`). Each takes whole columns; most work value by value on [`Scalar`]s, the math ones on float vectors.

use super::error::{SqlError, SqlResult};
use super::scalar::Scalar;
use super::scalar::scalars_to_column;
use super::types::{Interval, SqlType};
use crate::batch::{Bitmap, Column, StrVec, Values};
use crate::util::time::{MICROS_PER_DAY, MICROS_PER_SECOND, civil_from_days, days_from_civil};

mod json;
use json::json_call;

/// Scalar functions, resolved at bind time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Lower,
    Upper,
    Length,
    Substr,
    Left,
    Right,
    Repeat,
    Reverse,
    Concat,
    Replace,
    SplitPart,
    Btrim,
    Ltrim,
    Rtrim,
    Strpos,
    Abs,
    Round,
    Ceil,
    Floor,
    Trunc,
    Sqrt,
    Power,
    Ln,
    Log10,
    LogBase,
    Exp,
    Sign,
    Mod,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Atan2,
    Sinh,
    Cosh,
    Tanh,
    Coalesce,
    NullIf,
    Greatest,
    Least,
    DateTrunc,
    DatePart,
    ToTimestamp,
    /// timestamp + interval (the interval is a literal argument).
    AddInterval,
    /// date_bin(stride, ts, origin) / time_bucket(stride, ts).
    DateBin,
    /// `json -> key|index`
    JsonGet,
    /// `json ->> key|index`
    JsonGetText,
    /// `json #> '{path}'`
    JsonPath,
    /// `json #>> '{path}'`
    JsonPathText,
    /// json_typeof / jsonb_typeof
    JsonTypeof,
    /// `text ~ pattern` (`~*`: case-insensitive)
    RegexMatch,
    RegexIMatch,
    /// array_to_string(text array literal, separator)
    ArrayToString,
    /// `(record).field`: field k (a literal argument) of a record's text form `(a,b)`.
    RecordField,
    /// pg_sleep(seconds): waits, answering cancel requests and statement_timeout as it does.
    PgSleep,
}

/// Resolves a function name and argument types to a [`Func`] and its result type.
pub(crate) fn resolve(name: &str, args: &[SqlType]) -> SqlResult<(Func, SqlType)> {
    use SqlType as T;
    let num = |t: &T| t.is_numeric() || *t == T::Unknown;
    let float_or = |t: T| {
        if t.is_integer() {
            t
        } else if t == T::Numeric {
            T::Numeric
        } else {
            T::Float8
        }
    };
    let sig = || format!("{name}({})", args.iter().map(|t| t.pg_name()).collect::<Vec<_>>().join(", "));
    let arity = |lo: usize, hi: usize| (lo..=hi).contains(&args.len());
    let first = args.first().copied().unwrap_or(T::Unknown);
    let common =
        || common_type(args).ok_or_else(|| SqlError::mismatch(format!("{name} types {} cannot be matched", sig())));
    let r = match name {
        "lower" if arity(1, 1) => (Func::Lower, T::Text),
        "upper" if arity(1, 1) => (Func::Upper, T::Text),
        "length" | "char_length" | "character_length" if arity(1, 1) => (Func::Length, T::Int4),
        "substr" | "substring" if arity(2, 3) => (Func::Substr, T::Text),
        "left" if arity(2, 2) => (Func::Left, T::Text),
        "right" if arity(2, 2) => (Func::Right, T::Text),
        "repeat" if arity(2, 2) => (Func::Repeat, T::Text),
        "reverse" if arity(1, 1) => (Func::Reverse, T::Text),
        "concat" => (Func::Concat, T::Text),
        "replace" if arity(3, 3) => (Func::Replace, T::Text),
        "split_part" if arity(3, 3) => (Func::SplitPart, T::Text),
        "btrim" | "trim" if arity(1, 2) => (Func::Btrim, T::Text),
        "ltrim" if arity(1, 2) => (Func::Ltrim, T::Text),
        "rtrim" if arity(1, 2) => (Func::Rtrim, T::Text),
        "strpos" | "position" if arity(2, 2) => (Func::Strpos, T::Int4),
        "abs" if arity(1, 1) && num(&first) => (Func::Abs, if first == T::Unknown { T::Float8 } else { first }),
        "round" if arity(1, 2) && num(&first) => (
            Func::Round,
            if first.is_float() || args.len() == 2 {
                if first.is_float() { T::Float8 } else { T::Numeric }
            } else {
                float_or(first)
            },
        ),
        "ceil" | "ceiling" if arity(1, 1) => {
            (Func::Ceil, if first.is_integer() { T::Numeric } else { float_or(first) })
        }
        "floor" if arity(1, 1) => (Func::Floor, if first.is_integer() { T::Numeric } else { float_or(first) }),
        "trunc" if arity(1, 2) => (Func::Trunc, if first.is_float() { T::Float8 } else { T::Numeric }),
        "sqrt" if arity(1, 1) => (Func::Sqrt, if first == T::Numeric { T::Numeric } else { T::Float8 }),
        "power" | "pow" if arity(2, 2) => {
            (Func::Power, if args.contains(&T::Numeric) { T::Numeric } else { T::Float8 })
        }
        "ln" if arity(1, 1) => (Func::Ln, if first == T::Numeric { T::Numeric } else { T::Float8 }),
        "log" | "log10" if arity(1, 1) => (Func::Log10, if first == T::Numeric { T::Numeric } else { T::Float8 }),
        "log" if arity(2, 2) => (Func::LogBase, T::Numeric),
        "exp" if arity(1, 1) => (Func::Exp, if first == T::Numeric { T::Numeric } else { T::Float8 }),
        "sign" if arity(1, 1) => (Func::Sign, if first.is_integer() { T::Numeric } else { float_or(first) }),
        "mod" if arity(2, 2) => (Func::Mod, common()?),
        "sin" if arity(1, 1) => (Func::Sin, T::Float8),
        "cos" if arity(1, 1) => (Func::Cos, T::Float8),
        "tan" if arity(1, 1) => (Func::Tan, T::Float8),
        "asin" if arity(1, 1) => (Func::Asin, T::Float8),
        "acos" if arity(1, 1) => (Func::Acos, T::Float8),
        "atan" if arity(1, 1) => (Func::Atan, T::Float8),
        "atan2" if arity(2, 2) => (Func::Atan2, T::Float8),
        "sinh" if arity(1, 1) => (Func::Sinh, T::Float8),
        "cosh" if arity(1, 1) => (Func::Cosh, T::Float8),
        "tanh" if arity(1, 1) => (Func::Tanh, T::Float8),
        "coalesce" if !args.is_empty() => (Func::Coalesce, common()?),
        "nullif" if arity(2, 2) => (Func::NullIf, first),
        "greatest" if !args.is_empty() => (Func::Greatest, common()?),
        "least" if !args.is_empty() => (Func::Least, common()?),
        "date_trunc" if arity(2, 2) => (Func::DateTrunc, if args[1] == T::Date { T::TimestampTz } else { args[1] }),
        "date_part" if arity(2, 2) => (Func::DatePart, T::Float8),
        // from_unixtime is Presto's name, as AWS IoT Analytics queries wrote it.
        "to_timestamp" | "from_unixtime" if arity(1, 1) => (Func::ToTimestamp, T::TimestampTz),
        "date_bin" if arity(2, 3) => (Func::DateBin, args[1]),
        "time_bucket" if arity(2, 3) => (Func::DateBin, args[1]),
        "array_to_string" if arity(2, 3) => (Func::ArrayToString, T::Text),
        "pg_sleep" if arity(1, 1) && (first.is_numeric() || first == T::Unknown) => (Func::PgSleep, T::Text),
        "json_typeof" | "jsonb_typeof" if arity(1, 1) && (first.is_json() || first == T::Unknown) => {
            (Func::JsonTypeof, T::Text)
        }
        "json_extract_path" | "jsonb_extract_path" if args.len() >= 2 && first.is_json() => (Func::JsonPath, first),
        "json_extract_path_text" | "jsonb_extract_path_text" if args.len() >= 2 && first.is_json() => {
            (Func::JsonPathText, T::Text)
        }
        _ => return Err(SqlError::undefined_function(&sig())),
    };
    Ok(r)
}

/// The type every argument can be converted to (numeric widening, text with unknown), or `None`.
pub(crate) fn common_type(tys: &[SqlType]) -> Option<SqlType> {
    use SqlType as T;
    let mut out = T::Unknown;
    for &t in tys {
        out = match (out, t) {
            (a, T::Unknown) => a,
            (T::Unknown, b) => b,
            (a, b) if a == b => a,
            (a, b) if a.is_integer() && b.is_integer() => {
                if a == T::Int8 || b == T::Int8 {
                    T::Int8
                } else if a == T::Int4 || b == T::Int4 {
                    T::Int4
                } else {
                    T::Int2
                }
            }
            (a, b) if a.is_numeric() && b.is_numeric() => {
                if a.is_float() || b.is_float() {
                    T::Float8
                } else {
                    T::Numeric
                }
            }
            (a, b) if a.is_text() && b.is_text() => T::Text,
            (a, b) if a.is_timestamp() && b.is_timestamp() => T::TimestampTz,
            _ => return None,
        };
    }
    Some(out)
}

fn f64_of(s: &Scalar) -> Option<f64> {
    match s {
        Scalar::Int(i) => Some(*i as f64),
        Scalar::Float(f) => Some(*f),
        Scalar::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(s: &Scalar, t: SqlType) -> Option<String> {
    s.to_text(t)
}

/// Calls `f` on argument columns; `out` is the result type from [`resolve`].
pub(crate) fn call(
    f: Func,
    cols: &[Column],
    tys: &[SqlType],
    out: SqlType,
    n: usize,
    lits: &[Option<&Scalar>],
) -> SqlResult<Column> {
    if matches!(f, Func::JsonGet | Func::JsonGetText | Func::JsonPath | Func::JsonPathText | Func::JsonTypeof) {
        return json_call(f, cols, tys, n);
    }
    if matches!(f, Func::RegexMatch | Func::RegexIMatch) {
        return regex_call(f, cols, tys, n);
    }
    if let Some(time) = cols.get(1)
        && let Some(c) = time_fast_path(f, time, tys, lits)?
    {
        return Ok(c);
    }
    if f == Func::PgSleep {
        for i in 0..n {
            let secs = f64_of(&Scalar::from_column(&cols[0], tys[0], i)).unwrap_or(0.0);
            let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs.clamp(0.0, 1e9));
            while std::time::Instant::now() < until {
                super::guard::check()?;
                std::thread::sleep(
                    until
                        .saturating_duration_since(std::time::Instant::now())
                        .min(std::time::Duration::from_millis(10)),
                );
            }
        }
        return Ok(Column::new(Values::Text((0..n).map(|_| "").collect::<StrVec>())));
    }
    // Fast path: unary float math over a float column.
    if let (Some(op), [c]) = (unary_math(f), cols)
        && let Values::Float64(v) = &c.values
    {
        let mut res = Vec::with_capacity(n);
        for (i, &x) in v.iter().enumerate() {
            res.push(if c.is_valid(i) { op(x)? } else { 0.0 });
        }
        return Ok(Column::with_validity(Values::Float64(res), c.validity.clone()));
    }
    let mut vals = Vec::with_capacity(n);
    let mut row: Vec<Scalar> = Vec::with_capacity(cols.len());
    // Text built row by row must fit the query's memory (twice: as values, then the column),
    // checked as it grows; and a long column answers cancel.
    let (mut text, mut checked) = (0usize, 0usize);
    for i in 0..n {
        row.clear();
        for (c, t) in cols.iter().zip(tys) {
            row.push(Scalar::from_column(c, *t, i));
        }
        let v = call_row(f, &row, tys, out, lits)?;
        if let Scalar::Text(s) = &v {
            text += s.len() + 24;
            if text - checked >= 1 << 20 {
                super::guard::room(2 * text)?;
                checked = text;
            }
        }
        if i % 4096 == 4095 {
            super::guard::check()?;
        }
        vals.push(v);
    }
    scalars_to_column(&vals, out)
}

/// `~` and `~*` over text columns; the pattern is compiled once per distinct pattern value.
fn regex_call(f: Func, cols: &[Column], tys: &[SqlType], n: usize) -> SqlResult<Column> {
    let texts = super::scalar::text_of(&cols[0], tys[0]);
    let pats = super::scalar::text_of(&cols[1], tys[1]);
    let mut out = Vec::with_capacity(n);
    let mut valid = Bitmap::new_set(n);
    let mut compiled: Option<(String, super::regex::Regex)> = None;
    for i in 0..n {
        if i % 1024 == 0 {
            super::guard::check()?;
        }
        if !cols[0].is_valid(i) || !cols[1].is_valid(i) {
            out.push(false);
            valid.set(i, false);
            continue;
        }
        let p = pats.get(i);
        let (_, re) = match compiled.take() {
            Some((cp, re)) if cp == p => compiled.insert((cp, re)),
            _ => compiled.insert((p.to_string(), super::regex::Regex::new(p, f == Func::RegexIMatch)?)),
        };
        out.push(re.is_match(texts.get(i))?);
    }
    Ok(Column::with_validity(Values::Bool(out), Some(valid)))
}

/// A one-dimensional text array literal such as `{a,b,"c d"}`.
pub(crate) fn parse_text_array(s: &str) -> SqlResult<Vec<String>> {
    let bad = || SqlError::new("22P02", format!("malformed array literal: \"{s}\""));
    let inner = s.trim().strip_prefix('{').and_then(|x| x.strip_suffix('}')).ok_or_else(bad)?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next().ok_or_else(bad)? {
                    '"' => break,
                    '\\' => item.push(chars.next().ok_or_else(bad)?),
                    c => item.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '}' || c == '"' {
                    return Err(bad());
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_string();
            if item.is_empty() {
                return Err(bad());
            }
        }
        out.push(item);
        match chars.next() {
            None => return Ok(out),
            Some(',') => {}
            Some(_) => return Err(bad()),
        }
    }
}

/// `date_trunc` with a fixed-width unit and `date_bin` with a literal stride, over a timestamp
/// column (`time`, the second argument's values): plain integer arithmetic per value.
pub(crate) fn time_fast_path(
    f: Func,
    time: &Column,
    tys: &[SqlType],
    lits: &[Option<&Scalar>],
) -> SqlResult<Option<Column>> {
    let width = |unit: &str| -> Option<i64> {
        Some(match unit {
            "microsecond" | "microseconds" => 1,
            "millisecond" | "milliseconds" => 1000,
            "second" | "seconds" => MICROS_PER_SECOND,
            "minute" | "minutes" => 60 * MICROS_PER_SECOND,
            "hour" | "hours" => 3600 * MICROS_PER_SECOND,
            "day" | "days" => MICROS_PER_DAY,
            _ => return None,
        })
    };
    let (step, origin, col) = match (f, lits) {
        (Func::DateTrunc, [Some(Scalar::Text(u)), _]) if tys[1].is_timestamp() => {
            let Some(w) = width(&u.to_ascii_lowercase()) else { return Ok(None) };
            (w, 0, time)
        }
        (Func::DateBin, [Some(stride), _, rest @ ..]) if tys[1].is_timestamp() => {
            let iv = match stride {
                Scalar::Interval(iv) => *iv,
                Scalar::Text(t) => match super::scalar::parse_interval(t) {
                    Some(iv) => iv,
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
            let step = iv.days as i64 * MICROS_PER_DAY + iv.micros;
            let origin = match rest {
                [Some(Scalar::Time(o))] => {
                    if tys[2] == SqlType::Date {
                        o * MICROS_PER_DAY
                    } else {
                        *o
                    }
                }
                [] => 946_684_800 * MICROS_PER_SECOND,
                _ => return Ok(None),
            };
            if iv.months != 0 || step <= 0 {
                return Ok(None);
            }
            (step, origin, time)
        }
        _ => return Ok(None),
    };
    let Values::Timestamp(v) = &col.values else { return Ok(None) };
    let out: Vec<i64> =
        v.iter().map(|&t| origin.wrapping_add(t.wrapping_sub(origin).div_euclid(step).wrapping_mul(step))).collect();
    Ok(Some(Column::with_validity(Values::Timestamp(out), col.validity.clone())))
}

type MathFn = fn(f64) -> SqlResult<f64>;

/// `x` if a logarithm of it exists, else PostgreSQL's error.
fn log_domain(x: f64) -> SqlResult<f64> {
    if x == 0.0 {
        Err(SqlError::new("2201E", "cannot take logarithm of zero"))
    } else if x < 0.0 {
        Err(SqlError::new("2201E", "cannot take logarithm of a negative number"))
    } else {
        Ok(x)
    }
}

fn unary_math(f: Func) -> Option<MathFn> {
    let dom = |ok: bool, v: f64, what: &str| -> SqlResult<f64> {
        if ok { Ok(v) } else { Err(SqlError::new("2201E", format!("cannot take {what}"))) }
    };
    let _ = dom;
    Some(match f {
        Func::Sqrt => |x| {
            if x < 0.0 {
                Err(SqlError::new("2201F", "cannot take square root of a negative number"))
            } else {
                Ok(x.sqrt())
            }
        },
        Func::Ln => |x| log_domain(x).map(f64::ln),
        Func::Log10 => |x| log_domain(x).map(f64::log10),
        Func::Exp => |x| Ok(x.exp()),
        Func::Sin => |x| Ok(x.sin()),
        Func::Cos => |x| Ok(x.cos()),
        Func::Tan => |x| Ok(x.tan()),
        Func::Asin => |x| {
            if (-1.0..=1.0).contains(&x) { Ok(x.asin()) } else { Err(SqlError::new("22003", "input is out of range")) }
        },
        Func::Acos => |x| {
            if (-1.0..=1.0).contains(&x) { Ok(x.acos()) } else { Err(SqlError::new("22003", "input is out of range")) }
        },
        Func::Atan => |x| Ok(x.atan()),
        Func::Sinh => |x| Ok(x.sinh()),
        Func::Cosh => |x| Ok(x.cosh()),
        Func::Tanh => |x| Ok(x.tanh()),
        Func::Abs => |x| Ok(x.abs()),
        Func::Floor => |x| Ok(x.floor()),
        Func::Ceil => |x| Ok(x.ceil()),
        Func::Sign => |x| {
            Ok(if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            })
        },
        _ => return None,
    })
}

fn call_row(f: Func, a: &[Scalar], tys: &[SqlType], out: SqlType, lits: &[Option<&Scalar>]) -> SqlResult<Scalar> {
    use Scalar as S;
    // Functions that look at NULLs themselves.
    match f {
        Func::Coalesce => {
            return Ok(a.iter().find(|v| !v.is_null()).cloned().map(|v| widen(v, out)).unwrap_or(S::Null));
        }
        Func::NullIf => {
            return Ok(
                if !a[0].is_null() && !a[1].is_null() && scalar_cmp(&a[0], &a[1]) == Some(std::cmp::Ordering::Equal) {
                    S::Null
                } else {
                    a[0].clone()
                },
            );
        }
        Func::Greatest | Func::Least => {
            let mut best: Option<Scalar> = None;
            for v in a.iter().filter(|v| !v.is_null()) {
                let v = widen(v.clone(), out);
                let better = match &best {
                    None => true,
                    Some(b) => {
                        let o = scalar_cmp(&v, b);
                        if f == Func::Greatest {
                            o == Some(std::cmp::Ordering::Greater)
                        } else {
                            o == Some(std::cmp::Ordering::Less)
                        }
                    }
                };
                if better {
                    best = Some(v);
                }
            }
            return Ok(best.unwrap_or(S::Null));
        }
        Func::RecordField => {
            let (S::Text(rec), S::Int(k)) = (&a[0], &a[1]) else { return Ok(S::Null) };
            let inner = rec.trim().trim_start_matches('(').trim_end_matches(')');
            let field = inner.split(',').nth(*k as usize).unwrap_or("").trim();
            return Ok(if field.is_empty() {
                S::Null
            } else {
                S::Int(field.parse().map_err(|_| SqlError::invalid_input("integer", field))?)
            });
        }
        Func::ArrayToString => {
            let (S::Text(arr), S::Text(sep)) = (&a[0], &a[1]) else { return Ok(S::Null) };
            let null_as = match a.get(2) {
                Some(S::Text(x)) => Some(x.as_str()),
                _ => None,
            };
            let items = parse_text_array(arr)?;
            let parts: Vec<&str> =
                items.iter().filter_map(|x| if x == "NULL" { null_as } else { Some(x.as_str()) }).collect();
            return Ok(S::Text(parts.join(sep)));
        }
        Func::Concat => {
            let mut s = String::new();
            for (v, t) in a.iter().zip(tys) {
                if let Some(x) = text_of(v, *t) {
                    s.push_str(&x);
                }
            }
            return Ok(S::Text(s));
        }
        _ => {}
    }
    if a.iter().any(Scalar::is_null) {
        return Ok(S::Null);
    }
    let txt = |i: usize| text_of(&a[i], tys[i]).unwrap_or_default();
    let int = |i: usize| -> SqlResult<i64> {
        match &a[i] {
            S::Int(v) => Ok(*v),
            S::Float(v) => Ok(v.round() as i64),
            S::Text(t) => t.trim().parse().map_err(|_| SqlError::invalid_input("integer", t)),
            _ => Err(SqlError::mismatch("an integer argument was expected")),
        }
    };
    let flt = |i: usize| f64_of(&a[i]).ok_or_else(|| SqlError::mismatch("a numeric argument was expected"));
    Ok(match f {
        // Character by character, as PostgreSQL's lower/upper: a character whose case mapping
        // is several characters (ß → SS) stays as it is.
        Func::Lower => S::Text(txt(0).chars().map(|c| single(c.to_lowercase(), c)).collect()),
        Func::Upper => S::Text(txt(0).chars().map(|c| single(c.to_uppercase(), c)).collect()),
        Func::Length => S::Int(txt(0).chars().count() as i64),
        Func::Substr => {
            let s: Vec<char> = txt(0).chars().collect();
            let start = int(1)?;
            let (from, to) = match a.get(2) {
                Some(_) => {
                    let len = int(2)?;
                    if len < 0 {
                        return Err(SqlError::new("22011", "negative substring length not allowed"));
                    }
                    (start, start.saturating_add(len))
                }
                None => (start, i64::MAX),
            };
            let lo = (from.max(1) - 1) as usize;
            let hi = (to.max(1) - 1).min(s.len() as i64) as usize;
            S::Text(if lo < hi { s[lo..hi].iter().collect() } else { String::new() })
        }
        // left/right: n < 0 keeps all but the last (first) |n| characters.
        Func::Left | Func::Right => {
            let s: Vec<char> = txt(0).chars().collect();
            let n = int(1)?;
            let len = s.len() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            S::Text(if f == Func::Left { s[..keep].iter().collect() } else { s[s.len() - keep..].iter().collect() })
        }
        Func::Repeat => {
            let (s, n) = (txt(0), int(1)?.max(0) as usize);
            if s.len().saturating_mul(n) > 1 << 30 {
                return Err(SqlError::new("54000", "requested length too large"));
            }
            super::guard::room(s.len() * n)?;
            S::Text(s.repeat(n))
        }
        Func::Reverse => S::Text(txt(0).chars().rev().collect()),
        Func::Replace => {
            let from = txt(1);
            S::Text(if from.is_empty() { txt(0) } else { txt(0).replace(&from, &txt(2)) })
        }
        Func::SplitPart => {
            let (s, d, k) = (txt(0), txt(1), int(2)?);
            if k == 0 {
                return Err(SqlError::new("22023", "field position must not be zero"));
            }
            let parts: Vec<&str> = if d.is_empty() { vec![s.as_str()] } else { s.split(d.as_str()).collect() };
            let idx = if k > 0 { k - 1 } else { parts.len() as i64 + k };
            S::Text(if idx >= 0 {
                parts.get(idx as usize).map(|p| p.to_string()).unwrap_or_default()
            } else {
                String::new()
            })
        }
        Func::Btrim | Func::Ltrim | Func::Rtrim => {
            let chars: Vec<char> = if a.len() > 1 { txt(1).chars().collect() } else { vec![' '] };
            let s = txt(0);
            let t = match f {
                Func::Btrim => s.trim_matches(|c| chars.contains(&c)),
                Func::Ltrim => s.trim_start_matches(|c| chars.contains(&c)),
                _ => s.trim_end_matches(|c| chars.contains(&c)),
            };
            S::Text(t.to_string())
        }
        Func::Strpos => {
            let (s, sub) = (txt(0), txt(1));
            S::Int(s.find(&sub).map(|b| s[..b].chars().count() as i64 + 1).unwrap_or(0))
        }
        Func::Abs => match &a[0] {
            S::Int(v) => S::Int(v.checked_abs().ok_or_else(|| SqlError::out_of_range("integer"))?),
            _ => S::Float(flt(0)?.abs()),
        },
        Func::Round => {
            let x = flt(0)?;
            let d = if a.len() > 1 { int(1)? } else { 0 };
            // numeric rounds half away from zero; float8 rounds half to even (rint).
            let r =
                if out == SqlType::Float8 && a.len() == 1 { x.round_ties_even() } else { to_places(x, d, f64::round) };
            S::Float(r)
        }
        Func::Ceil => S::Float(flt(0)?.ceil()),
        Func::Floor => S::Float(flt(0)?.floor()),
        Func::Trunc => {
            let d = if a.len() > 1 { int(1)? } else { 0 };
            S::Float(to_places(flt(0)?, d, f64::trunc))
        }
        Func::Power => {
            let (x, y) = (flt(0)?, flt(1)?);
            if x == 0.0 && y < 0.0 {
                return Err(SqlError::new("2201F", "zero raised to a negative power is undefined"));
            }
            if x < 0.0 && y.fract() != 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            S::Float(x.powf(y))
        }
        Func::LogBase => {
            let (b, x) = (flt(0)?, flt(1)?);
            if b <= 0.0 || x <= 0.0 {
                return Err(SqlError::new("2201E", "cannot take logarithm of a negative number or zero"));
            }
            if b == 1.0 {
                return Err(SqlError::division_by_zero());
            }
            S::Float(x.ln() / b.ln())
        }
        Func::Mod => match (&a[0], &a[1]) {
            (S::Int(x), S::Int(y)) => {
                if *y == 0 {
                    return Err(SqlError::division_by_zero());
                }
                S::Int(x.wrapping_rem(*y))
            }
            _ => {
                let y = flt(1)?;
                if y == 0.0 {
                    return Err(SqlError::division_by_zero());
                }
                S::Float(flt(0)? % y)
            }
        },
        Func::Atan2 => S::Float(flt(0)?.atan2(flt(1)?)),
        Func::DateTrunc => {
            let unit = txt(0).to_ascii_lowercase();
            let t = time_of(&a[1], tys[1]);
            S::Time(date_trunc(&unit, t)?)
        }
        Func::DatePart => {
            let unit = txt(0).to_ascii_lowercase();
            match &a[1] {
                S::Interval(iv) => S::Float(interval_part(&unit, iv)?),
                _ => S::Float(date_part(&unit, time_of(&a[1], tys[1]), tys[1])?),
            }
        }
        Func::ToTimestamp => {
            let secs = flt(0)?;
            if !secs.is_finite() {
                return Err(SqlError::new("22008", "timestamp out of range"));
            }
            S::Time((secs * 1e6).round() as i64)
        }
        Func::AddInterval => {
            let S::Interval(iv) = &a[1] else { return Err(SqlError::mismatch("an interval was expected")) };
            S::Time(add_interval(time_of(&a[0], tys[0]), iv, 1).ok_or_else(timestamp_out_of_range)?)
        }
        Func::DateBin => {
            let stride = match &a[0] {
                S::Interval(iv) => *iv,
                S::Text(t) => super::scalar::parse_interval(t).ok_or_else(|| SqlError::invalid_input("interval", t))?,
                _ => return Err(SqlError::mismatch("date_bin needs an interval stride")),
            };
            if stride.months != 0 {
                return Err(SqlError::unsupported("date_bin with a stride in months or years"));
            }
            let step = stride.days as i128 * MICROS_PER_DAY as i128 + stride.micros as i128;
            if step <= 0 {
                return Err(SqlError::new("22023", "stride must be greater than zero"));
            }
            let origin = match a.get(2) {
                Some(o) => time_of(o, tys[2]),
                None if lits.len() == 2 => 946_684_800 * MICROS_PER_SECOND, // 2000-01-01, as PostgreSQL and TimescaleDB
                None => 0,
            };
            let t = time_of(&a[1], tys[1]) as i128;
            let origin = origin as i128;
            let bin = origin + (t - origin).div_euclid(step) * step;
            S::Time(i64::try_from(bin).map_err(|_| SqlError::new("22008", "timestamp out of range"))?)
        }
        other => {
            let op = unary_math(other).ok_or_else(|| SqlError::unsupported(format!("function {other:?}")))?;
            S::Float(op(flt(0)?)?)
        }
    })
}

fn single(mut mapped: impl ExactSizeIterator<Item = char>, original: char) -> char {
    if mapped.len() == 1 { mapped.next().unwrap_or(original) } else { original }
}

fn widen(v: Scalar, to: SqlType) -> Scalar {
    match (v, to) {
        (Scalar::Int(i), t) if t.is_float() || t == SqlType::Numeric => Scalar::Float(i as f64),
        (v, _) => v,
    }
}

/// Compares two scalars of compatible types.
pub(crate) fn scalar_cmp(a: &Scalar, b: &Scalar) -> Option<std::cmp::Ordering> {
    use Scalar as S;
    match (a, b) {
        (S::Int(x), S::Int(y)) | (S::Time(x), S::Time(y)) => Some(x.cmp(y)),
        (S::Bool(x), S::Bool(y)) => Some(x.cmp(y)),
        (S::Text(x), S::Text(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (S::Interval(x), S::Interval(y)) => Some(x.approx_micros().cmp(&y.approx_micros())),
        _ => {
            let (x, y) = (f64_of(a)?, f64_of(b)?);
            Some(crate::query::scalar::cmp_f64(x, y))
        }
    }
}

/// `x` rounded (or truncated) to `places` decimal places, negative places left of the point.
/// Past what a double holds the value is already exact (or rounds to zero): never NaN, and a
/// places count beyond `i32` is not wrapped.
fn to_places(x: f64, places: i64, op: fn(f64) -> f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if places >= 0 {
        let p = 10f64.powi(places.min(400) as i32);
        let scaled = x * p;
        // A double has at most 17 significant digits: once scaled past 2^53 nothing is left to round.
        if !scaled.is_finite() || scaled.abs() >= 9_007_199_254_740_992.0 { x } else { op(scaled) / p }
    } else {
        let p = 10f64.powi(places.unsigned_abs().min(400) as i32);
        if !p.is_finite() { 0.0 } else { op(x / p) * p }
    }
}

fn time_of(s: &Scalar, t: SqlType) -> i64 {
    match s {
        Scalar::Time(v) if t == SqlType::Date => v.saturating_mul(MICROS_PER_DAY),
        Scalar::Time(v) => *v,
        Scalar::Text(x) => super::scalar::parse_timestamp(x).unwrap_or(0),
        _ => 0,
    }
}

fn timestamp_out_of_range() -> SqlError {
    SqlError::new("22008", "timestamp out of range")
}

/// PostgreSQL's timestamp range, in microseconds since 1970: 4714-11-24 BC to the end of 294276 AD.
fn timestamp_range() -> std::ops::RangeInclusive<i128> {
    let first = days_from_civil(-4713, 11, 24) as i128 * MICROS_PER_DAY as i128;
    let end = days_from_civil(294_277, 1, 1) as i128 * MICROS_PER_DAY as i128;
    first..=end - 1
}

/// `ts + sign * interval`, months by the calendar (clamping the day), days as 24 hours (UTC).
/// `None` when the result falls outside PostgreSQL's timestamp range (22008 for the caller).
pub(crate) fn add_interval(ts: i64, iv: &Interval, sign: i64) -> Option<i64> {
    let range = timestamp_range();
    let mut t = ts as i128;
    if iv.months != 0 {
        let days = ts.div_euclid(MICROS_PER_DAY);
        let tod = ts.rem_euclid(MICROS_PER_DAY);
        let (y, m, d) = civil_from_days(i32::try_from(days).ok()?);
        let total = y as i64 * 12 + (m as i64 - 1) + sign * iv.months as i64;
        // Years past the range cannot come back inside it with the days and microseconds that
        // an interval holds (at most 2^31 days, about 5.9 million years: checked below).
        let ny = i32::try_from(total.div_euclid(12)).ok().filter(|y| (-4_800_000..=4_800_000).contains(y))?;
        let nm = (total.rem_euclid(12) + 1) as u32;
        let last =
            (28..=31).rev().find(|&dd| civil_from_days(days_from_civil(ny, nm, dd)) == (ny, nm, dd)).unwrap_or(28);
        t = days_from_civil(ny, nm, d.min(last)) as i128 * MICROS_PER_DAY as i128 + tod as i128;
    }
    let delta = (iv.days as i128 * MICROS_PER_DAY as i128 + iv.micros as i128) * sign as i128;
    let out = t + delta;
    if range.contains(&out) { Some(out as i64) } else { None }
}

/// Start of day `days`, saturating at the ends of the representable range.
fn day_start(days: i64) -> i64 {
    days.saturating_mul(MICROS_PER_DAY)
}

fn date_trunc(unit: &str, t: i64) -> SqlResult<i64> {
    let day = t.div_euclid(MICROS_PER_DAY);
    let (y, m, _) = civil_from_days(day as i32);
    Ok(match unit {
        "microsecond" | "microseconds" => t,
        "millisecond" | "milliseconds" => t - t.rem_euclid(1000),
        "second" | "seconds" => t - t.rem_euclid(MICROS_PER_SECOND),
        "minute" | "minutes" => t - t.rem_euclid(60 * MICROS_PER_SECOND),
        "hour" | "hours" => t - t.rem_euclid(3600 * MICROS_PER_SECOND),
        "day" | "days" => day_start(day),
        "week" | "weeks" => day_start(day - (day + 3).rem_euclid(7)), // ISO weeks start on Monday
        "month" | "months" => day_start(days_from_civil(y, m, 1) as i64),
        "quarter" => day_start(days_from_civil(y, (m - 1) / 3 * 3 + 1, 1) as i64),
        "year" | "years" => day_start(days_from_civil(y, 1, 1) as i64),
        "decade" => day_start(days_from_civil(y.div_euclid(10) * 10, 1, 1) as i64),
        _ => {
            return Err(SqlError::new(
                "22023",
                format!("unit \"{unit}\" not recognized for type timestamp with time zone"),
            ));
        }
    })
}

/// `extract(unit FROM interval)`, as PostgreSQL: `epoch` counts a month as 30 days and a
/// year as 365.25 days; the other fields are the interval's own parts.
fn interval_part(unit: &str, iv: &super::types::Interval) -> SqlResult<f64> {
    let secs = iv.micros as f64 / 1e6;
    Ok(match unit {
        "epoch" => {
            let (years, months) = (iv.months / 12, iv.months % 12);
            years as f64 * 365.25 * 86_400.0 + months as f64 * 30.0 * 86_400.0 + iv.days as f64 * 86_400.0 + secs
        }
        "year" | "years" => (iv.months / 12) as f64,
        "month" | "months" => (iv.months % 12) as f64,
        "day" | "days" => iv.days as f64,
        "hour" | "hours" => (iv.micros / (3600 * MICROS_PER_SECOND)) as f64,
        "minute" | "minutes" => (iv.micros / (60 * MICROS_PER_SECOND) % 60) as f64,
        "second" | "seconds" => (iv.micros % (60 * MICROS_PER_SECOND)) as f64 / 1e6,
        _ => return Err(SqlError::new("22023", format!("unit \"{unit}\" not supported for type interval"))),
    })
}

fn date_part(unit: &str, t: i64, ty: SqlType) -> SqlResult<f64> {
    let day = t.div_euclid(MICROS_PER_DAY);
    let tod = t.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(day as i32);
    Ok(match unit {
        "epoch" => t as f64 / 1e6,
        "year" | "years" => y as f64,
        "month" | "months" => m as f64,
        "day" | "days" => d as f64,
        "hour" | "hours" => (tod / (3600 * MICROS_PER_SECOND)) as f64,
        "minute" | "minutes" => (tod / (60 * MICROS_PER_SECOND) % 60) as f64,
        "second" | "seconds" => (tod % (60 * MICROS_PER_SECOND)) as f64 / 1e6,
        "millisecond" | "milliseconds" => (tod % (60 * MICROS_PER_SECOND)) as f64 / 1e3,
        "microsecond" | "microseconds" => (tod % (60 * MICROS_PER_SECOND)) as f64,
        "dow" => ((day + 4).rem_euclid(7)) as f64,
        "isodow" => ((day + 3).rem_euclid(7) + 1) as f64,
        "doy" => (day - days_from_civil(y, 1, 1) as i64 + 1) as f64,
        "quarter" => ((m - 1) / 3 + 1) as f64,
        "week" => {
            let thursday = day - (day + 3).rem_euclid(7) + 3;
            let (ty_, _, _) = civil_from_days(thursday as i32);
            ((thursday - days_from_civil(ty_, 1, 1) as i64) / 7 + 1) as f64
        }
        "timezone" if ty != SqlType::Timestamp => 0.0,
        _ => return Err(SqlError::new("22023", format!("unit \"{unit}\" not recognized"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time::days_from_civil;

    #[test]
    fn calendar_arithmetic() {
        let jan31 = day_start(days_from_civil(2026, 1, 31) as i64);
        let feb28 = day_start(days_from_civil(2026, 2, 28) as i64);
        assert_eq!(add_interval(jan31, &Interval { months: 1, days: 0, micros: 0 }, 1), Some(feb28));
        // 300,000 years (in months, and in days) leave PostgreSQL's range: an error, not a clamp.
        assert_eq!(add_interval(jan31, &Interval { months: 3_600_000, days: 0, micros: 0 }, 1), None);
        assert_eq!(add_interval(jan31, &Interval { months: 0, days: 109_500_000, micros: 0 }, 1), None);
        assert_eq!(add_interval(jan31, &Interval { months: -12 * 7000, days: 0, micros: 0 }, 1), None);
        assert!(add_interval(jan31, &Interval { months: 12 * 290_000, days: 0, micros: 0 }, 1).is_some());
        let t = day_start(days_from_civil(2026, 3, 18) as i64) + 3_723_000_000;
        assert_eq!(date_trunc("hour", t).unwrap(), t - 123_000_000);
        assert_eq!(date_trunc("month", t).unwrap(), day_start(days_from_civil(2026, 3, 1) as i64));
        assert_eq!(date_trunc("week", t).unwrap(), day_start(days_from_civil(2026, 3, 16) as i64));
        assert_eq!(date_part("dow", t, SqlType::TimestampTz).unwrap(), 3.0); // a Wednesday
        assert_eq!(date_part("minute", t, SqlType::TimestampTz).unwrap(), 2.0);
        assert!(date_trunc("fortnight", t).is_err());
    }

    #[test]
    fn rounding_to_places_never_gives_nan() {
        assert_eq!(to_places(1.5, 1_000_000, f64::round), 1.5);
        assert_eq!(to_places(1.25, 1, f64::round), 1.3);
        assert_eq!(to_places(1234.5, -2, f64::round), 1200.0);
        assert_eq!(to_places(1234.5, -1_000_000, f64::round), 0.0);
        assert_eq!(to_places(1.5, 4_294_967_297, f64::round), 1.5); // not wrapped to 1 place
        assert_eq!(to_places(-2.77, 1, f64::trunc), -2.7);
        assert_eq!(to_places(0.0, 400, f64::round), 0.0);
    }
}
