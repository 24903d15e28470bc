//! Comparisons of columns: `=`, `<>`, `<`, `<=`, `>`, `>=` over typed slices, with a
//! constant kept unrepeated (and compared once per dictionary value for coded text), in
//! PostgreSQL's order (NaN above every number, text by bytes, intervals by length).

use super::*;
/// `column op constant` over the column's typed slice, the constant never repeated per row;
/// a dictionary-coded text column is compared once per dictionary value. `None` when the
/// types are not a pair handled here (the general path then runs).
pub(super) fn compare_const(
    op: BinOp,
    l: &Column,
    lt: SqlType,
    value: &Scalar,
    rt: SqlType,
) -> SqlResult<Option<Column>> {
    use std::cmp::Ordering;
    let same = lt == rt || (lt.is_integer() && rt.is_integer()) || (lt.is_text() && rt.is_text());
    if value.is_null() || !same || lt == SqlType::Interval {
        return Ok(None);
    }
    let one = value.to_column(rt, 1)?;
    let keep = |o: Ordering| ordering_holds(op, o);
    let out: Vec<bool> = match (&l.values, &one.values) {
        (Values::Int64(a), Values::Int64(b)) | (Values::Timestamp(a), Values::Timestamp(b)) => {
            let y = b[0];
            match op {
                BinOp::Gt => a.iter().map(|&x| x > y).collect(),
                BinOp::GtEq => a.iter().map(|&x| x >= y).collect(),
                BinOp::Lt => a.iter().map(|&x| x < y).collect(),
                BinOp::LtEq => a.iter().map(|&x| x <= y).collect(),
                _ => a.iter().map(|x| keep(x.cmp(&y))).collect(),
            }
        }
        (Values::Float64(a), Values::Float64(b)) => {
            let y = b[0];
            // PostgreSQL orders NaN above every number and equal to itself.
            a.iter().map(|&x| keep(crate::query::scalar::cmp_f64(x, y))).collect()
        }
        (Values::Text(a), Values::Text(b)) => {
            let y = b.get(0).as_bytes();
            match a.codes() {
                Some((dict, codes)) => {
                    let holds: Vec<bool> = dict.iter().map(|s| keep(s.as_bytes().cmp(y))).collect();
                    codes.iter().map(|&c| holds[c as usize]).collect()
                }
                None => a.iter().map(|s| keep(s.as_bytes().cmp(y))).collect(),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(bool_col(out, l.validity.clone())))
}

/// Whether comparison `op` holds for two values ordered `o`.
pub(super) fn ordering_holds(op: BinOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering;
    match op {
        BinOp::Eq => o == Ordering::Equal,
        BinOp::NotEq => o != Ordering::Equal,
        BinOp::Lt => o == Ordering::Less,
        BinOp::LtEq => o != Ordering::Greater,
        BinOp::Gt => o == Ordering::Greater,
        BinOp::GtEq => o != Ordering::Less,
        _ => false,
    }
}

pub(super) fn compare(op: BinOp, l: &Column, lt: SqlType, r: &Column, rt: SqlType) -> SqlResult<Column> {
    use std::cmp::Ordering;
    let n = l.len();
    if lt == SqlType::Interval && rt == SqlType::Interval {
        // Intervals compare by length (a month as 30 days), as in PostgreSQL.
        let len = |c: &Column, i: usize| match Scalar::from_column(c, SqlType::Interval, i) {
            Scalar::Interval(iv) => iv.approx_micros(),
            _ => 0,
        };
        let v = (0..n).map(|i| ordering_holds(op, len(l, i).cmp(&len(r, i)))).collect();
        return Ok(bool_col(v, validity_and(l, r)));
    }
    let keep = |o: Ordering| ordering_holds(op, o);
    let validity = validity_and(l, r);
    let out: Vec<bool> = match (&l.values, &r.values) {
        (Values::Int64(a), Values::Int64(b)) | (Values::Timestamp(a), Values::Timestamp(b)) => {
            // The hot path of time filters: one comparison per row, no branches on type.
            a.iter().zip(b).map(|(x, y)| keep(x.cmp(y))).collect()
        }
        (Values::Text(a), Values::Text(b)) => {
            (0..n).map(|i| keep(a.get(i).as_bytes().cmp(b.get(i).as_bytes()))).collect()
        }
        (Values::Bool(a), Values::Bool(b)) => a.iter().zip(b).map(|(x, y)| keep(x.cmp(y))).collect(),
        (Values::Float64(_) | Values::Int64(_), Values::Float64(_) | Values::Int64(_)) => {
            let (a, b) = (as_f64(l), as_f64(r));
            // PostgreSQL orders NaN above every number and equal to itself.
            a.iter().zip(b.iter()).map(|(&x, &y)| keep(crate::query::scalar::cmp_f64(x, y))).collect()
        }
        _ => {
            return Err(SqlError::undefined_function(&format!(
                "operator {} ({}, {})",
                op.symbol(),
                lt.pg_name(),
                rt.pg_name()
            )));
        }
    };
    Ok(bool_col(out, validity))
}
