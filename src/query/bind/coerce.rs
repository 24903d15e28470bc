//! Types: implicit coercion and unification the PostgreSQL way, constant folding, type OIDs and numeric scales.

use crate::batch::{Batch, Column, Field, Values};
use crate::query::error::{SqlError, SqlResult};
use crate::query::expr::{Expr, Func, eval};
use crate::query::func;
use crate::query::scalar::{Scalar, parse_interval, parse_text};
use crate::query::types::SqlType;

/// A client-visible output type (unknown literals are text).
pub(super) fn out_ty(t: SqlType) -> SqlType {
    if t == SqlType::Unknown { SqlType::Text } else { t }
}

/// Gives an expression type `to`: unknown literals are parsed, numerics widened.
pub(crate) fn coerce(e: Expr, to: SqlType) -> SqlResult<Expr> {
    let from = e.ty();
    if from == to || to == SqlType::Unknown {
        return Ok(e);
    }
    if let Expr::Lit { value, .. } = &e
        && from == SqlType::Unknown
    {
        let v = match value {
            Scalar::Null => Scalar::Null,
            Scalar::Text(t) if to == SqlType::Interval => {
                Scalar::Interval(parse_interval(t).ok_or_else(|| SqlError::invalid_input("interval", t))?)
            }
            Scalar::Text(t) => parse_text(t, to)?,
            other => other.clone(),
        };
        return Ok(Expr::lit(v, to));
    }
    let ok = (from.is_numeric() && to.is_numeric())
        || (from.is_text() && to.is_text())
        || (from == SqlType::Date && to.is_timestamp())
        || (from.is_timestamp() && to.is_timestamp())
        || (from.is_json() && to.is_text())
        || from == SqlType::Unknown;
    if !ok {
        return Err(SqlError::mismatch(format!("expected {}, got {}", to.pg_name(), from.pg_name())));
    }
    // An integer literal widened to a larger integer type is that literal (so an IN list of
    // them stays a list of literals, which runs as a hash set).
    if let Expr::Lit { value: v @ Scalar::Int(_), .. } = &e
        && from.is_integer()
        && to == SqlType::Int8
    {
        return Ok(Expr::lit(v.clone(), to));
    }
    // Likewise a number literal as a double (numerics are doubles here, so nothing is lost).
    if let Expr::Lit { value, .. } = &e
        && from.is_numeric()
        && to == SqlType::Float8
    {
        match value {
            Scalar::Int(i) => return Ok(Expr::lit(Scalar::Float(*i as f64), to)),
            Scalar::Float(f) => return Ok(Expr::lit(Scalar::Float(*f), to)),
            _ => {}
        }
    }
    Ok(Expr::Cast { e: Box::new(e), to })
}

pub(super) fn coerce_text(e: Expr) -> SqlResult<Expr> {
    if e.ty().is_text() || e.ty().is_json() {
        coerce(e, SqlType::Text)
    } else {
        Ok(Expr::Cast { e: Box::new(e), to: SqlType::Text })
    }
}

/// Makes both sides of a comparison the same family of type.
pub(super) fn unify(l: Expr, r: Expr) -> SqlResult<(Expr, Expr)> {
    let (lt, rt) = (l.ty(), r.ty());
    let err = || {
        SqlError::undefined_function(&format!("operator ({}, {})", lt.pg_name(), rt.pg_name())).with_hint(
            "No operator matches the given name and argument types. You might need to add explicit type casts.",
        )
    };
    Ok(match (lt, rt) {
        (a, b) if a == b => (l, r),
        (SqlType::Unknown, t) => (coerce(l, t)?, r),
        (t, SqlType::Unknown) => (l, coerce(r, t)?),
        (a, b) if a.is_numeric() && b.is_numeric() => {
            let t = func::common_type(&[a, b]).ok_or_else(err)?;
            (coerce(l, t)?, coerce(r, t)?)
        }
        (a, b) if (a.is_text() || a.is_json()) && (b.is_text() || b.is_json()) => {
            (coerce(l, SqlType::Text)?, coerce(r, SqlType::Text)?)
        }
        (a, b) if (a.is_timestamp() || a == SqlType::Date) && (b.is_timestamp() || b == SqlType::Date) => {
            (coerce(l, SqlType::TimestampTz)?, coerce(r, SqlType::TimestampTz)?)
        }
        _ => return Err(err()),
    })
}

/// Evaluates an expression that reads no column (constant folding).
pub(crate) fn fold(e: Expr) -> SqlResult<Expr> {
    if matches!(e, Expr::Lit { .. } | Expr::Func { f: Func::PgSleep, .. }) {
        return Ok(e);
    }
    let mut reads = false;
    e.columns(&mut |_| reads = true);
    if reads {
        return Ok(e);
    }
    let one = Batch {
        fields: vec![Field::new("x", crate::batch::DataType::Bool)],
        columns: vec![Column::new(Values::Bool(vec![true]))],
    };
    let c = eval(&e, &one)?;
    Ok(Expr::lit(Scalar::from_column(&c, e.ty(), 0), e.ty()))
}

/// The scale of `numeric(p, s)` / `decimal(p, s)` (0 for `numeric(p)`), if the type has one.
pub(super) fn numeric_scale(type_text: &str) -> Option<i64> {
    let t = type_text.trim().to_ascii_lowercase();
    let args = t.strip_prefix("numeric").or_else(|| t.strip_prefix("decimal"))?.trim();
    let inner = args.strip_prefix('(')?.strip_suffix(')')?;
    let mut parts = inner.split(',').map(str::trim);
    let _precision: i64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some(s) => s.parse().ok(),
        None => Some(0),
    }
}
