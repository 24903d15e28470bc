//! Window functions: `f(...) OVER (PARTITION BY … ORDER BY … frame)`.
//!
//! The input is materialized once; each call sorts row numbers by its partition and order
//! keys (typed comparisons, no per-row values), walks the partitions, and writes each row's
//! result back at the row's input position, so the output keeps the input's order and the
//! window columns are appended to it.
//!
//! Frames follow PostgreSQL: `ROWS` counts rows; `RANGE` takes peers (rows with equal ORDER BY
//! values) together and, with one numeric or timestamp ORDER BY key, offsets such as
//! `RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW`. The default frame is `RANGE
//! BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`, which without ORDER BY is the whole partition.
//! Aggregates over a frame whose start never moves are computed incrementally; sliding frames
//! recompute per row, as PostgreSQL does for floating-point sums.

use super::agg::{AggCall, feed, finish, new_acc};
use super::error::{SqlError, SqlResult};
use super::exec::sort::{ColOrder, cmp_rows, sort_rows};
use super::expr::{Expr, eval, scalars_to_column};
use super::scalar::Scalar;
use super::types::SqlType;
use crate::batch::{Batch, Column, Values};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WinFunc {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    /// ntile(buckets)
    Ntile,
    /// lag(value [, offset [, default]])
    Lag,
    Lead,
    FirstValue,
    LastValue,
    /// nth_value(value, n)
    NthValue,
    /// An aggregate over the frame.
    Agg(AggCall),
}

/// One end of a frame. Offsets are rows for ROWS, values of the ORDER BY key for RANGE
/// (a number, or microseconds for a timestamp key).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Bound {
    UnboundedPreceding,
    Preceding(f64),
    CurrentRow,
    Following(f64),
    UnboundedFollowing,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Frame {
    pub rows: bool,
    pub start: Bound,
    pub end: Bound,
}

impl Frame {
    pub(crate) const DEFAULT: Frame = Frame { rows: false, start: Bound::UnboundedPreceding, end: Bound::CurrentRow };
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WindowCall {
    pub func: WinFunc,
    pub args: Vec<Expr>,
    pub partition: Vec<Expr>,
    pub order: Vec<(Expr, bool, bool)>,
    pub frame: Frame,
    pub ty: SqlType,
}

/// The window function named `name`, with its result type, if it is one (aggregates are
/// resolved by the caller).
pub(crate) fn resolve(name: &str, args: &[SqlType]) -> Option<(WinFunc, SqlType)> {
    let a = args.first().copied().unwrap_or(SqlType::Unknown);
    Some(match (name, args.len()) {
        ("row_number", 0) => (WinFunc::RowNumber, SqlType::Int8),
        ("rank", 0) => (WinFunc::Rank, SqlType::Int8),
        ("dense_rank", 0) => (WinFunc::DenseRank, SqlType::Int8),
        ("percent_rank", 0) => (WinFunc::PercentRank, SqlType::Float8),
        ("cume_dist", 0) => (WinFunc::CumeDist, SqlType::Float8),
        ("ntile", 1) if a.is_integer() => (WinFunc::Ntile, SqlType::Int4),
        ("lag", 1..=3) => (WinFunc::Lag, a),
        ("lead", 1..=3) => (WinFunc::Lead, a),
        ("first_value", 1) => (WinFunc::FirstValue, a),
        ("last_value", 1) => (WinFunc::LastValue, a),
        ("nth_value", 2) => (WinFunc::NthValue, a),
        _ => return None,
    })
}

pub(crate) fn is_window_only(name: &str) -> bool {
    matches!(
        name,
        "row_number"
            | "rank"
            | "dense_rank"
            | "percent_rank"
            | "cume_dist"
            | "ntile"
            | "lag"
            | "lead"
            | "first_value"
            | "last_value"
            | "nth_value"
    )
}

/// Computes each call over `all`; one output column per call, in input row order.
pub(crate) fn compute(all: &Batch, calls: &[WindowCall]) -> SqlResult<Vec<Column>> {
    calls.iter().map(|c| compute_one(all, c)).collect()
}

fn compute_one(all: &Batch, call: &WindowCall) -> SqlResult<Column> {
    let n = all.num_rows();
    // Each step over all rows answers cancel before it starts.
    let step = |e: &Expr| {
        super::guard::check()?;
        eval(e, all)
    };
    let pcols = call.partition.iter().map(step).collect::<SqlResult<Vec<_>>>()?;
    let ocols = call.order.iter().map(|(e, _, _)| step(e)).collect::<SqlResult<Vec<_>>>()?;
    super::guard::check()?;
    let mut keys: Vec<Column> = pcols.clone();
    keys.extend(ocols.iter().cloned());
    super::guard::check()?;
    let mut order: Vec<ColOrder> =
        call.partition.iter().map(|e| ColOrder { ty: e.ty(), desc: false, nulls_first: false }).collect();
    let oorder: Vec<ColOrder> = call
        .order
        .iter()
        .map(|(e, desc, nulls_first)| ColOrder { ty: e.ty(), desc: *desc, nulls_first: *nulls_first })
        .collect();
    order.extend(oorder.iter().copied());
    let idx = sort_rows(&keys, &order, n)?;
    drop(keys);
    let args = call.args.iter().map(step).collect::<SqlResult<Vec<_>>>()?;
    super::guard::check()?;
    let arg_tys: Vec<SqlType> = call.args.iter().map(|e| e.ty()).collect();
    let mut out = vec![Scalar::Null; n];
    let same = |cols: &[Column], ords: &[ColOrder], a: u32, b: u32| {
        cols.iter().zip(ords).all(|(c, o)| cmp_rows(c, o, a as usize, b as usize).is_eq())
    };
    let pord = &order[..pcols.len()];
    let mut start = 0;
    while start < n {
        super::guard::check()?;
        let mut end = start + 1;
        while end < n && same(&pcols, pord, idx[start], idx[end]) {
            end += 1;
        }
        let rows = &idx[start..end];
        // Peer groups: peer_start[i] and peer_end[i] (exclusive) around position i.
        let m = rows.len();
        let mut peer_start = vec![0usize; m];
        let mut peer_end = vec![m; m];
        let mut g = 0;
        for i in 1..m {
            if !same(&ocols, &oorder, rows[i - 1], rows[i]) {
                for e in peer_end.iter_mut().take(i).skip(g) {
                    *e = i;
                }
                g = i;
            }
            peer_start[i] = g;
        }
        partition(call, &args, &arg_tys, &ocols, rows, &peer_start, &peer_end, &mut out)?;
        start = end;
    }
    scalars_to_column(&out, call.ty)
}

fn arg_value(args: &[Column], tys: &[SqlType], k: usize, row: u32) -> Scalar {
    Scalar::from_column(&args[k], tys[k], row as usize)
}

/// A non-negative integer argument of row `row`, or NULL.
fn int_arg(args: &[Column], tys: &[SqlType], k: usize, row: u32) -> Option<i64> {
    match arg_value(args, tys, k, row) {
        Scalar::Int(i) => Some(i),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn partition(
    call: &WindowCall,
    args: &[Column],
    tys: &[SqlType],
    ocols: &[Column],
    rows: &[u32],
    peer_start: &[usize],
    peer_end: &[usize],
    out: &mut [Scalar],
) -> SqlResult<()> {
    let m = rows.len();
    match &call.func {
        WinFunc::RowNumber => {
            for (i, &r) in rows.iter().enumerate() {
                out[r as usize] = Scalar::Int(i as i64 + 1);
            }
        }
        WinFunc::Rank => {
            for (i, &r) in rows.iter().enumerate() {
                out[r as usize] = Scalar::Int(peer_start[i] as i64 + 1);
            }
        }
        WinFunc::DenseRank => {
            let mut rank = 0;
            for (i, &r) in rows.iter().enumerate() {
                if i == 0 || peer_start[i] == i {
                    rank += 1;
                }
                out[r as usize] = Scalar::Int(rank);
            }
        }
        WinFunc::PercentRank => {
            for (i, &r) in rows.iter().enumerate() {
                let v = if m > 1 { peer_start[i] as f64 / (m - 1) as f64 } else { 0.0 };
                out[r as usize] = Scalar::Float(v);
            }
        }
        WinFunc::CumeDist => {
            for (i, &r) in rows.iter().enumerate() {
                out[r as usize] = Scalar::Float(peer_end[i] as f64 / m as f64);
            }
        }
        WinFunc::Ntile => {
            for (i, &r) in rows.iter().enumerate() {
                let Some(k) = int_arg(args, tys, 0, r) else { continue };
                if k <= 0 {
                    return Err(SqlError::new("22014", "argument of ntile must be greater than zero"));
                }
                let k = k as usize;
                // PostgreSQL: the first m % k buckets get one extra row.
                let (per, extra) = (m / k, m % k);
                let big = extra * (per + 1);
                let bucket = if i < big { i / (per + 1) } else { extra + (i - big) / per.max(1) };
                out[r as usize] = Scalar::Int(bucket as i64 + 1);
            }
        }
        WinFunc::Lag | WinFunc::Lead => {
            for (i, &r) in rows.iter().enumerate() {
                let off = if args.len() > 1 {
                    match arg_value(args, tys, 1, r) {
                        Scalar::Int(k) => k,
                        _ => continue,
                    }
                } else {
                    1
                };
                let j = if call.func == WinFunc::Lag { i as i64 - off } else { i as i64 + off };
                out[r as usize] = if (0..m as i64).contains(&j) {
                    arg_value(args, tys, 0, rows[j as usize])
                } else if args.len() > 2 {
                    arg_value(args, tys, 2, r)
                } else {
                    Scalar::Null
                };
            }
        }
        WinFunc::FirstValue | WinFunc::LastValue | WinFunc::NthValue => {
            let key = range_key(call, ocols, rows)?;
            for (i, &r) in rows.iter().enumerate() {
                let (s, e) = frame_of(&call.frame, i, m, peer_start, peer_end, key.as_deref(), call);
                let pick = match call.func {
                    WinFunc::FirstValue => (s < e).then_some(s),
                    WinFunc::LastValue => (s < e).then(|| e - 1),
                    _ => match int_arg(args, tys, 1, r) {
                        Some(k) if k <= 0 => {
                            return Err(SqlError::new("22016", "argument of nth_value must be greater than zero"));
                        }
                        Some(k) => Some(s + k as usize - 1).filter(|&p| p < e),
                        None => None,
                    },
                };
                out[r as usize] = pick.map_or(Scalar::Null, |p| arg_value(args, tys, 0, rows[p]));
            }
        }
        WinFunc::Agg(a) => {
            // The aggregate's arguments are the call's arguments.
            let key = range_key(call, ocols, rows)?;
            let mut row = Vec::with_capacity(args.len());
            let mut feed_row = |acc: &mut super::agg::Acc, x: u32| {
                row.clear();
                row.extend((0..args.len()).map(|k| arg_value(args, tys, k, x)));
                feed(acc, a, &row);
            };
            let mut acc = new_acc(a);
            let mut fed = 0usize; // with a fixed frame start, rows[..fed] are in `acc`
            for (i, &r) in rows.iter().enumerate() {
                // A frame of k rows costs k per row: answer cancel and timeouts as it goes.
                if i % 1024 == 1023 {
                    super::guard::check()?;
                }
                let (s, e) = frame_of(&call.frame, i, m, peer_start, peer_end, key.as_deref(), call);
                if call.frame.start != Bound::UnboundedPreceding || e < fed {
                    acc = new_acc(a);
                    fed = s;
                }
                while fed < e {
                    feed_row(&mut acc, rows[fed]);
                    fed += 1;
                }
                out[r as usize] = finish(&acc, a)?;
            }
        }
    }
    Ok(())
}

/// The ORDER BY key as numbers, when the frame uses RANGE offsets.
fn range_key(call: &WindowCall, ocols: &[Column], rows: &[u32]) -> SqlResult<Option<Vec<Option<f64>>>> {
    let f = &call.frame;
    let has_offset = |b: Bound| matches!(b, Bound::Preceding(_) | Bound::Following(_));
    if f.rows || !(has_offset(f.start) || has_offset(f.end)) {
        return Ok(None);
    }
    let [c] = ocols else {
        return Err(SqlError::new(
            "42P20",
            "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column",
        ));
    };
    Ok(Some(
        rows.iter()
            .map(|&r| {
                let r = r as usize;
                if !c.is_valid(r) {
                    return None;
                }
                Some(match &c.values {
                    Values::Int64(v) | Values::Timestamp(v) => v[r] as f64,
                    Values::Float64(v) => v[r],
                    _ => 0.0,
                })
            })
            .collect(),
    ))
}

/// The frame of position `i` in a partition of `m` rows: positions `[start, end)`.
fn frame_of(
    f: &Frame,
    i: usize,
    m: usize,
    peer_start: &[usize],
    peer_end: &[usize],
    key: Option<&[Option<f64>]>,
    call: &WindowCall,
) -> (usize, usize) {
    let desc = call.order.first().is_some_and(|o| o.1);
    // RANGE with an offset: the first position whose key is at or past `target`, moving forward.
    let range_pos = |target: f64, inclusive_end: bool| -> usize {
        let ks = key.unwrap_or(&[]);
        // NULL keys sort together at one end and are never within an offset of a value.
        let nulls_first = call.order.first().is_some_and(|o| o.2);
        let (lo, hi) = if nulls_first {
            (ks.partition_point(|k| k.is_none()), ks.len())
        } else {
            (0, ks.partition_point(|k| k.is_some()))
        };
        lo + ks[lo..hi].partition_point(|k| {
            let k = k.unwrap_or(0.0);
            match (inclusive_end, desc) {
                (false, false) => k < target,
                (false, true) => k > target,
                (true, false) => k <= target,
                (true, true) => k >= target,
            }
        })
    };
    let step = |k: f64, forward: bool| -> Option<f64> {
        let cur = key.and_then(|ks| ks[i])?;
        Some(if forward != desc { cur + k } else { cur - k })
    };
    let start = match f.start {
        Bound::UnboundedPreceding => 0,
        Bound::CurrentRow if f.rows => i,
        Bound::CurrentRow => peer_start[i],
        Bound::Preceding(k) if f.rows => i.saturating_sub(k as usize),
        Bound::Following(k) if f.rows => (i + k as usize).min(m),
        Bound::Preceding(k) => step(k, false).map_or(peer_start[i], |t| range_pos(t, false)),
        Bound::Following(k) => step(k, true).map_or(peer_start[i], |t| range_pos(t, false)),
        Bound::UnboundedFollowing => m,
    };
    let end = match f.end {
        Bound::UnboundedPreceding => 0,
        Bound::CurrentRow if f.rows => i + 1,
        Bound::CurrentRow => peer_end[i],
        Bound::Preceding(k) if f.rows => (i + 1).saturating_sub(k as usize),
        Bound::Following(k) if f.rows => (i + 1 + k as usize).min(m),
        Bound::Preceding(k) => step(k, false).map_or(peer_end[i], |t| range_pos(t, true)),
        Bound::Following(k) => step(k, true).map_or(peer_end[i], |t| range_pos(t, true)),
        Bound::UnboundedFollowing => m,
    };
    (start.min(m), end.max(start).min(m))
}
