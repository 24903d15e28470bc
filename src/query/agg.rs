//! Aggregate functions and hash aggregation: rows are mapped to group ids once per batch, then
//! each accumulator consumes whole columns with those ids.

use std::collections::HashMap;

use super::error::{SqlError, SqlResult};
use super::expr::{Expr, eval, eval_ref, scalars_to_column};
use super::scalar::Scalar;
use super::types::SqlType;
use crate::batch::{Batch, Column, DataType, Values};

mod group;
mod merge;
mod percentile;

pub(crate) use group::{AddToAccs, GroupAccs, Grouper, aggregate, aggregate_with};
pub(crate) use merge::{merge_acc, mergeable};
use percentile::percentile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    StddevSamp,
    StddevPop,
    VarSamp,
    VarPop,
    BoolAnd,
    BoolOr,
    StringAgg,
    /// first(value, time) / last(value, time): the value at the smallest / largest time.
    First,
    Last,
    /// percentile_cont(fraction) / percentile_disc(fraction) WITHIN GROUP (ORDER BY value
    /// [DESC]); arguments: value, fraction.
    PercentileCont {
        desc: bool,
    },
    PercentileDisc {
        desc: bool,
    },
    /// regr_slope, regr_intercept, regr_r2, corr, covar_pop, covar_samp, regr_count (Y, X):
    /// over the rows where both are non-NULL.
    Regr(RegrOut),
    /// rul_linear(time, value, threshold): the interval from the group's last time until the
    /// least-squares line of value over time reaches the threshold; NULL without an upward
    /// trend, zero once the line is past it.
    RulLinear,
    /// The sum of partial counts (an aggregate split below a join): `count` of the whole.
    CountMerge,
    /// The mean from partial (sum, count) pairs of a double precision column: `avg` of the
    /// whole.
    AvgMerge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegrOut {
    Slope,
    Intercept,
    R2,
    Corr,
    CovarPop,
    CovarSamp,
    Count,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AggCall {
    pub func: AggFunc,
    pub args: Vec<Expr>,
    pub distinct: bool,
    pub ty: SqlType,
}

/// The aggregate for `name` over argument types, with its result type (PostgreSQL's rules).
pub(crate) fn resolve(name: &str, args: &[SqlType], star: bool) -> Option<(AggFunc, SqlType)> {
    use SqlType as T;
    let a = args.first().copied().unwrap_or(T::Unknown);
    let float_or_numeric = if a.is_float() { T::Float8 } else { T::Numeric };
    Some(match name {
        "count" if star || args.is_empty() => (AggFunc::CountStar, T::Int8),
        "count" => (AggFunc::Count, T::Int8),
        "sum" if a.is_integer() && a != T::Int8 => (AggFunc::Sum, T::Int8),
        "sum" if a.is_numeric() => (AggFunc::Sum, float_or_numeric),
        "avg" if a.is_numeric() => (AggFunc::Avg, float_or_numeric),
        "min" => (AggFunc::Min, a),
        "max" => (AggFunc::Max, a),
        "stddev" | "stddev_samp" if a.is_numeric() => (AggFunc::StddevSamp, float_or_numeric),
        "stddev_pop" if a.is_numeric() => (AggFunc::StddevPop, float_or_numeric),
        "variance" | "var_samp" if a.is_numeric() => (AggFunc::VarSamp, float_or_numeric),
        "var_pop" if a.is_numeric() => (AggFunc::VarPop, float_or_numeric),
        "bool_and" | "every" if a == T::Bool => (AggFunc::BoolAnd, T::Bool),
        "bool_or" if a == T::Bool => (AggFunc::BoolOr, T::Bool),
        "string_agg" if args.len() == 2 => (AggFunc::StringAgg, T::Text),
        "first" if args.len() == 2 => (AggFunc::First, a),
        "last" if args.len() == 2 => (AggFunc::Last, a),
        "percentile_cont" if args.len() == 2 && a.is_numeric() => (AggFunc::PercentileCont { desc: false }, T::Float8),
        "percentile_disc" if args.len() == 2 => (AggFunc::PercentileDisc { desc: false }, a),
        "regr_slope" | "regr_intercept" | "regr_r2" | "corr" | "covar_pop" | "covar_samp" | "regr_count"
            if args.len() == 2 && args.iter().all(|t| t.is_numeric() || *t == T::Unknown) =>
        {
            let out = match name {
                "regr_slope" => RegrOut::Slope,
                "regr_intercept" => RegrOut::Intercept,
                "regr_r2" => RegrOut::R2,
                "corr" => RegrOut::Corr,
                "covar_pop" => RegrOut::CovarPop,
                "covar_samp" => RegrOut::CovarSamp,
                _ => RegrOut::Count,
            };
            (AggFunc::Regr(out), if out == RegrOut::Count { T::Int8 } else { T::Float8 })
        }
        "rul_linear" if args.len() == 3 && a.is_timestamp() && (args[1].is_numeric() || args[1] == T::Unknown) => {
            (AggFunc::RulLinear, T::Interval)
        }
        _ => return None,
    })
}

pub(crate) fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "stddev"
            | "stddev_samp"
            | "stddev_pop"
            | "variance"
            | "var_samp"
            | "var_pop"
            | "bool_and"
            | "bool_or"
            | "every"
            | "string_agg"
            | "first"
            | "last"
            | "percentile_cont"
            | "percentile_disc"
            | "regr_slope"
            | "regr_intercept"
            | "regr_r2"
            | "corr"
            | "covar_pop"
            | "covar_samp"
            | "regr_count"
            | "rul_linear"
    )
}

/// Per-group state of one aggregate.
#[derive(Clone, Debug)]
pub(crate) enum Acc {
    Count(i64),
    /// Sum of integers (exact), count (sum and avg of integers).
    SumInt(i128, i64),
    /// Count, sum, and whether an infinite value was summed, for sum and avg of floats: a
    /// sum that became infinite from finite values overflowed (22003, as PostgreSQL says).
    SumFloat {
        n: i64,
        sum: f64,
        inf: bool,
    },
    /// The least or greatest float so far (PostgreSQL's order: NaN above every number).
    ExtremeFloat(Option<f64>),
    /// The least or greatest integer or time so far, as stored.
    ExtremeInt(Option<i64>),
    /// Welford's running count, mean and sum of squared deviations; also the plain sum.
    Moments {
        n: i64,
        mean: f64,
        m2: f64,
        sum: f64,
    },
    Extreme(Option<Scalar>),
    Bool(Option<bool>),
    Strings(Vec<String>, String),
    /// (time, value) of the first or last row by time.
    ByTime(Option<(i64, Scalar)>),
    Distinct(Vec<Scalar>, std::collections::HashSet<Vec<u8>>),
    /// DISTINCT over integers and times (bigint ids, timestamps): the values in the order
    /// first seen, and the set of them, unboxed (the general form holds a value and a key
    /// string per distinct value, ten times the memory).
    DistinctInt(Vec<i64>, std::collections::HashSet<i64, foldhash::fast::RandomState>),
    /// Every non-NULL value, and the fraction asked for (percentiles).
    Values(Vec<Scalar>, Scalar),
    /// The same for double precision values, kept unboxed; with the values other threads'
    /// accumulators of the group kept, taken over whole when they were merged and joined only
    /// when the group is finished (on every core, not in the merge).
    Floats(Vec<f64>, Scalar, Vec<Vec<f64>>),
    /// Running means and co-moments of (x, y) pairs (Welford), the largest x, and the third
    /// argument (rul_linear's threshold).
    Pairs {
        n: i64,
        mx: f64,
        my: f64,
        sxx: f64,
        syy: f64,
        sxy: f64,
        max_x: f64,
        extra: Option<f64>,
    },
}

pub(crate) fn new_acc(call: &AggCall) -> Acc {
    if call.distinct {
        if call.args.len() == 1 && matches!(call.args[0].ty().physical(), Some(DataType::Int64 | DataType::Timestamp)) {
            return Acc::DistinctInt(Vec::new(), Default::default());
        }
        return Acc::Distinct(Vec::new(), Default::default());
    }
    match call.func {
        AggFunc::CountStar | AggFunc::Count | AggFunc::CountMerge => Acc::Count(0),
        AggFunc::AvgMerge => Acc::SumFloat { n: 0, sum: 0.0, inf: false },
        AggFunc::Sum | AggFunc::Avg if call.args[0].ty().is_integer() => Acc::SumInt(0, 0),
        AggFunc::Sum | AggFunc::Avg => Acc::SumFloat { n: 0, sum: 0.0, inf: false },
        AggFunc::StddevSamp | AggFunc::StddevPop | AggFunc::VarSamp | AggFunc::VarPop => {
            Acc::Moments { n: 0, mean: 0.0, m2: 0.0, sum: 0.0 }
        }
        AggFunc::Min | AggFunc::Max => match call.args[0].ty().physical() {
            Some(DataType::Float64) => Acc::ExtremeFloat(None),
            Some(DataType::Int64 | DataType::Timestamp) => Acc::ExtremeInt(None),
            _ => Acc::Extreme(None),
        },
        AggFunc::BoolAnd | AggFunc::BoolOr => Acc::Bool(None),
        AggFunc::StringAgg => Acc::Strings(Vec::new(), String::new()),
        AggFunc::First | AggFunc::Last => Acc::ByTime(None),
        AggFunc::PercentileCont { .. } | AggFunc::PercentileDisc { .. }
            if call.args[0].ty().physical() == Some(DataType::Float64) =>
        {
            Acc::Floats(Vec::new(), Scalar::Null, Vec::new())
        }
        AggFunc::PercentileCont { .. } | AggFunc::PercentileDisc { .. } => Acc::Values(Vec::new(), Scalar::Null),
        AggFunc::Regr(_) | AggFunc::RulLinear => {
            Acc::Pairs { n: 0, mx: 0.0, my: 0.0, sxx: 0.0, syy: 0.0, sxy: 0.0, max_x: f64::NEG_INFINITY, extra: None }
        }
    }
}

pub(crate) fn feed(acc: &mut Acc, call: &AggCall, v: &[Scalar]) {
    use std::cmp::Ordering;
    match (call.func, &mut *acc) {
        (AggFunc::CountMerge, Acc::Count(c)) => {
            if let Scalar::Int(k) = v[0] {
                *c += k;
            }
            return;
        }
        (AggFunc::AvgMerge, Acc::SumFloat { n, sum, inf }) => {
            // A partial sum is infinite only from an infinite input (a finite overflow was
            // refused where it was summed).
            if let (Scalar::Float(s), Scalar::Int(k)) = (&v[0], &v[1]) {
                *n += k;
                *sum += s;
                *inf |= s.is_infinite();
            }
            return;
        }
        _ => {}
    }
    match acc {
        Acc::Count(c) => {
            if call.func == AggFunc::CountStar || !v[0].is_null() {
                *c += 1;
            }
        }
        Acc::SumInt(s, n) => {
            if let Scalar::Int(x) = v[0] {
                *s += x as i128;
                *n += 1;
            }
        }
        Acc::SumFloat { n, sum, inf } => {
            let x = match v[0] {
                Scalar::Int(i) => i as f64,
                Scalar::Float(f) => f,
                _ => return,
            };
            *n += 1;
            *sum += x;
            *inf |= x.is_infinite();
        }
        Acc::ExtremeFloat(best) => {
            if let Scalar::Float(x) = v[0] {
                extreme_float(best, x, call.func == AggFunc::Max);
            }
        }
        Acc::ExtremeInt(best) => {
            let (Scalar::Int(x) | Scalar::Time(x)) = v[0] else { return };
            extreme_int(best, x, call.func == AggFunc::Max);
        }
        Acc::Moments { n, mean, m2, sum } => {
            let x = match v[0] {
                Scalar::Int(i) => i as f64,
                Scalar::Float(f) => f,
                _ => return,
            };
            *n += 1;
            *sum += x;
            let d = x - *mean;
            *mean += d / *n as f64;
            *m2 += d * (x - *mean);
        }
        Acc::Extreme(best) => {
            if v[0].is_null() {
                return;
            }
            let want = if call.func == AggFunc::Min { Ordering::Less } else { Ordering::Greater };
            if best.as_ref().is_none_or(|b| super::func::scalar_cmp(&v[0], b) == Some(want)) {
                *best = Some(v[0].clone());
            }
        }
        Acc::Bool(b) => {
            if let Scalar::Bool(x) = v[0] {
                *b = Some(match (call.func, *b) {
                    (AggFunc::BoolAnd, Some(y)) => x && y,
                    (AggFunc::BoolOr, Some(y)) => x || y,
                    _ => x,
                });
            }
        }
        Acc::Strings(parts, sep) => {
            if let Scalar::Text(s) = &v[0] {
                if parts.is_empty()
                    && let Scalar::Text(d) = &v[1]
                {
                    *sep = d.clone();
                }
                parts.push(s.clone());
            }
        }
        Acc::ByTime(best) => {
            let Scalar::Time(t) = v[1] else { return };
            let better = match best {
                None => true,
                Some((bt, _)) => {
                    if call.func == AggFunc::First {
                        t < *bt
                    } else {
                        t > *bt
                    }
                }
            };
            if better {
                *best = Some((t, v[0].clone()));
            }
        }
        Acc::Values(vals, fraction) => {
            if fraction.is_null() {
                *fraction = v[1].clone();
            }
            if !v[0].is_null() {
                vals.push(v[0].clone());
            }
        }
        Acc::Floats(vals, fraction, _) => {
            if fraction.is_null() {
                *fraction = v[1].clone();
            }
            if let Scalar::Float(x) = v[0] {
                vals.push(x);
            }
        }
        Acc::Pairs { n, mx, my, sxx, syy, sxy, max_x, extra } => {
            let num = |s: &Scalar| match s {
                Scalar::Int(i) => Some(*i as f64),
                Scalar::Float(f) => Some(*f),
                // rul_linear's time, in seconds.
                Scalar::Time(t) => Some(*t as f64 / 1e6),
                _ => None,
            };
            // regr_*(Y, X); rul_linear(time, value, …) has X first.
            let (y, x) =
                if call.func == AggFunc::RulLinear { (num(&v[1]), num(&v[0])) } else { (num(&v[0]), num(&v[1])) };
            if extra.is_none() {
                *extra = v.get(2).and_then(num);
            }
            let (Some(x), Some(y)) = (x, y) else { return };
            *n += 1;
            let nf = *n as f64;
            let dx = x - *mx;
            let dy = y - *my;
            *mx += dx / nf;
            *my += dy / nf;
            *sxx += dx * (x - *mx);
            *syy += dy * (y - *my);
            *sxy += dx * (y - *my);
            *max_x = max_x.max(x);
        }
        Acc::DistinctInt(vals, seen) => {
            // An integer or time column's values are these two (NULL is not counted).
            if let Scalar::Int(x) | Scalar::Time(x) = v[0]
                && seen.insert(x)
            {
                vals.push(x);
            }
        }
        Acc::Distinct(vals, seen) => {
            if v[0].is_null() {
                return;
            }
            // Values equal in SQL are one value: 0 and -0, and every NaN (PostgreSQL's float
            // equality), whatever their bits.
            let key = match v[0] {
                Scalar::Float(x) if x.classify() == std::num::FpCategory::Zero => b"F0".to_vec(),
                Scalar::Float(x) if x.is_nan() => b"FNaN".to_vec(),
                _ => format!("{:?}", v[0]).into_bytes(),
            };
            if seen.insert(key) {
                vals.push(v[0].clone());
            }
        }
    }
}

/// [`finish`] of an accumulator that is not needed after: a percentile of doubles selects
/// among the values it kept rather than a copy of them.
pub(crate) fn finish_in_place(acc: &mut Acc, call: &AggCall) -> SqlResult<Scalar> {
    match acc {
        Acc::Floats(vals, fraction, more) => {
            percentile::percentile_floats_joined(vals, &std::mem::take(more), fraction, call)
        }
        acc => finish(acc, call),
    }
}

pub(crate) fn finish(acc: &Acc, call: &AggCall) -> SqlResult<Scalar> {
    Ok(match acc {
        Acc::Count(c) => Scalar::Int(*c),
        Acc::SumInt(_, 0) => Scalar::Null,
        Acc::SumInt(s, n) if call.func == AggFunc::Avg => {
            // Whole part exactly, then the fraction: the mean's integer digits are right or
            // the mean is refused.
            let (q, r) = (s / *n as i128, s % *n as i128);
            let whole = crate::query::scalar::numeric_of_int(q)
                .map_err(|_| crate::query::scalar::numeric_inexact(&format!("average {q}.…")))?;
            Scalar::Float(whole + r as f64 / *n as f64)
        }
        Acc::SumInt(s, _) => {
            if call.ty == SqlType::Int8 {
                Scalar::Int(i64::try_from(*s).map_err(|_| SqlError::out_of_range("bigint"))?)
            } else {
                Scalar::Float(crate::query::scalar::numeric_of_int(*s)?)
            }
        }
        Acc::Moments { n, mean, m2, sum } => {
            let n = *n;
            let var = |d: i64| if n - d > 0 { Scalar::Float(m2 / (n - d) as f64) } else { Scalar::Null };
            match call.func {
                _ if n == 0 => Scalar::Null,
                AggFunc::Sum => Scalar::Float(*sum),
                AggFunc::Avg => Scalar::Float(sum / n as f64).max_finite(*mean),
                AggFunc::VarSamp => var(1),
                AggFunc::VarPop => var(0),
                AggFunc::StddevSamp => var(1).sqrt(),
                AggFunc::StddevPop => var(0).sqrt(),
                _ => Scalar::Null,
            }
        }
        Acc::SumFloat { n: 0, .. } => Scalar::Null,
        Acc::SumFloat { sum, inf: false, .. } if sum.is_infinite() => {
            return Err(SqlError::new("22003", "value out of range: overflow"));
        }
        Acc::SumFloat { n, sum, .. } if matches!(call.func, AggFunc::Avg | AggFunc::AvgMerge) => {
            Scalar::Float(sum / *n as f64)
        }
        Acc::SumFloat { sum, .. } => Scalar::Float(*sum),
        Acc::ExtremeFloat(b) => b.map(Scalar::Float).unwrap_or(Scalar::Null),
        Acc::ExtremeInt(b) => match b {
            None => Scalar::Null,
            Some(x) => {
                let ty = call.args[0].ty();
                let dt = ty.physical().unwrap_or(DataType::Int64);
                let values =
                    if dt == DataType::Timestamp { Values::Timestamp(vec![*x]) } else { Values::Int64(vec![*x]) };
                Scalar::from_column(&Column::new(values), ty, 0)
            }
        },
        Acc::Extreme(b) => b.clone().unwrap_or(Scalar::Null),
        Acc::Bool(b) => b.map(Scalar::Bool).unwrap_or(Scalar::Null),
        Acc::Strings(p, sep) => {
            if p.is_empty() {
                Scalar::Null
            } else {
                Scalar::Text(p.join(sep))
            }
        }
        Acc::ByTime(b) => b.as_ref().map(|(_, v)| v.clone()).unwrap_or(Scalar::Null),
        Acc::Values(vals, fraction) => percentile(vals, fraction, call)?,
        Acc::Floats(vals, fraction, more) => {
            percentile::percentile_floats_joined(&mut vals.clone(), more, fraction, call)?
        }
        Acc::Pairs { n, mx, my, sxx, syy, sxy, max_x, extra } => {
            let (n, f) = (*n, |x: f64| if x.is_finite() { Scalar::Float(x) } else { Scalar::Null });
            match call.func {
                AggFunc::Regr(RegrOut::Count) => Scalar::Int(n),
                _ if n == 0 => Scalar::Null,
                AggFunc::Regr(RegrOut::CovarPop) => f(sxy / n as f64),
                AggFunc::Regr(RegrOut::CovarSamp) if n > 1 => f(sxy / (n - 1) as f64),
                AggFunc::Regr(RegrOut::CovarSamp) => Scalar::Null,
                _ if *sxx == 0.0 => Scalar::Null,
                AggFunc::Regr(RegrOut::Slope) => f(sxy / sxx),
                AggFunc::Regr(RegrOut::Intercept) => f(my - sxy / sxx * mx),
                AggFunc::Regr(RegrOut::R2) if *syy == 0.0 => Scalar::Float(1.0),
                AggFunc::Regr(RegrOut::R2) => f(sxy * sxy / (sxx * syy)),
                AggFunc::Regr(RegrOut::Corr) if *syy == 0.0 => Scalar::Null,
                AggFunc::Regr(RegrOut::Corr) => f(sxy / (sxx * syy).sqrt()),
                AggFunc::RulLinear => {
                    let slope = sxy / sxx;
                    let Some(threshold) = extra else { return Ok(Scalar::Null) };
                    if slope.is_nan() || slope <= 0.0 {
                        return Ok(Scalar::Null);
                    }
                    // value = my + slope * (t - mx) reaches the threshold at:
                    let cross = mx + (threshold - my) / slope;
                    let left = ((cross - max_x) * 1e6).max(0.0);
                    if !left.is_finite() || left > 9.2e18 {
                        return Ok(Scalar::Null);
                    }
                    Scalar::Interval(crate::query::types::Interval { months: 0, days: 0, micros: left.round() as i64 })
                }
                _ => Scalar::Null,
            }
        }
        Acc::DistinctInt(vals, _) => {
            // The distinct values as a column of their type, fed to the aggregate without
            // DISTINCT (by its typed kernel when it has one).
            let plain = AggCall { distinct: false, ..call.clone() };
            let ty = call.args[0].ty();
            let col = Column::new(match ty.physical() {
                Some(DataType::Timestamp) => Values::Timestamp(vals.clone()),
                _ => Values::Int64(vals.clone()),
            });
            let mut a = new_acc(&plain);
            if !feed_rows(&mut a, &plain, &[&col], 0..vals.len()) {
                for i in 0..vals.len() {
                    feed(&mut a, &plain, &[Scalar::from_column(&col, ty, i)]);
                }
            }
            finish(&a, &plain)?
        }
        Acc::Distinct(vals, _) => {
            let plain = AggCall { distinct: false, ..call.clone() };
            let mut a = new_acc(&plain);
            for v in vals {
                feed(&mut a, &plain, std::slice::from_ref(v));
            }
            finish(&a, &plain)?
        }
    })
}

/// Keeps the least (or, with `max`, the greatest) of `best` and `x` in PostgreSQL's order
/// (NaN above every number); the first of equal values stays.
#[inline]
fn extreme_float(best: &mut Option<f64>, x: f64, max: bool) {
    let better = match *best {
        None => true,
        Some(b) if max => (x.is_nan() && !b.is_nan()) || (!b.is_nan() && x > b),
        Some(b) => !x.is_nan() && (b.is_nan() || x < b),
    };
    if better {
        *best = Some(x);
    }
}

#[inline]
fn extreme_int(best: &mut Option<i64>, x: i64, max: bool) {
    if best.is_none_or(|b| if max { x > b } else { x < b }) {
        *best = Some(x);
    }
}

trait ScalarMath {
    fn sqrt(self) -> Scalar;
    fn max_finite(self, fallback: f64) -> Scalar;
}

impl ScalarMath for Scalar {
    fn sqrt(self) -> Scalar {
        match self {
            Scalar::Float(f) => Scalar::Float(f.max(0.0).sqrt()),
            other => other,
        }
    }
    /// The mean from the running sum, unless the sum overflowed to infinity.
    fn max_finite(self, fallback: f64) -> Scalar {
        match self {
            Scalar::Float(f) if !f.is_finite() && fallback.is_finite() => Scalar::Float(fallback),
            other => other,
        }
    }
}

/// What the blocks of one column answered from statistics add up to (see
/// `exec::scan`), for [`add_totals`].
#[derive(Default, Debug)]
pub(crate) struct ColTotals {
    pub present: u64,
    pub sum_int: i128,
    pub sum_float: f64,
    /// BlockStats flags, or-ed.
    pub flags: u8,
    pub min_int: Option<i64>,
    pub max_int: Option<i64>,
    pub min_float: Option<f64>,
    pub max_float: Option<f64>,
    /// Present rows per value (dictionary columns).
    pub counts: std::collections::HashMap<String, u64>,
}

/// Adds whole blocks' statistics to `acc`, the accumulator of `call` (count(*) over `rows`
/// rows; count, sum, avg, min or max of a column whose totals are `t`). False when the
/// call is not one statistics answer (the caller then must not skip those blocks' rows).
pub(crate) fn add_totals(acc: &mut Acc, call: &AggCall, rows: u64, t: &ColTotals) -> bool {
    use crate::datastore::file::BlockStats;
    if call.distinct {
        return false;
    }
    let max = call.func == AggFunc::Max;
    match (call.func, acc) {
        (AggFunc::CountStar, Acc::Count(c)) => *c += rows as i64,
        (AggFunc::Count, Acc::Count(c)) => *c += t.present as i64,
        (AggFunc::Sum | AggFunc::Avg, Acc::SumInt(s, n)) => {
            *s += t.sum_int;
            *n += t.present as i64;
        }
        (AggFunc::Sum | AggFunc::Avg, Acc::SumFloat { n, sum, inf }) => {
            *n += t.present as i64;
            *sum += t.sum_float;
            *inf |= t.flags & BlockStats::INFINITE != 0;
        }
        (AggFunc::Min | AggFunc::Max, Acc::ExtremeFloat(best)) => {
            for x in [t.min_float, t.max_float].into_iter().flatten() {
                extreme_float(best, x, max);
            }
            if t.flags & BlockStats::NAN != 0 {
                extreme_float(best, f64::NAN, max);
            }
        }
        (AggFunc::Min | AggFunc::Max, Acc::ExtremeInt(best)) => {
            for x in [t.min_int, t.max_int].into_iter().flatten() {
                extreme_int(best, x, max);
            }
        }
        _ => return false,
    }
    true
}

/// Whether rows `a` and `b` of `c` hold the same value (NULLs equal, as grouping wants).
pub(crate) fn same_value(c: &Column, a: usize, b: usize) -> bool {
    match (c.is_valid(a), c.is_valid(b)) {
        (false, false) => true,
        (true, true) => match &c.values {
            Values::Text(v) => v.get(a) == v.get(b),
            Values::Int64(v) | Values::Timestamp(v) => v[a] == v[b],
            Values::Float64(v) => v[a].to_bits() == v[b].to_bits(),
            Values::Bool(v) => v[a] == v[b],
        },
        _ => false,
    }
}

/// Sum of `v` with eight independent accumulators (the additions pipeline and vectorise);
/// with `valid`, only the rows it marks.
/// Sum and count of the present values of `v`, whose first value is row `at` of the column
/// `valid` belongs to.
fn sum_slice(v: &[f64], valid: Option<&crate::batch::Bitmap>, at: usize) -> (f64, i64) {
    match valid {
        None => {
            let mut acc = [0.0f64; 8];
            let chunks = v.chunks_exact(8);
            let rest = chunks.remainder();
            for c in chunks {
                for (a, x) in acc.iter_mut().zip(c) {
                    *a += x;
                }
            }
            (acc.iter().sum::<f64>() + rest.iter().sum::<f64>(), v.len() as i64)
        }
        Some(m) => {
            let (mut sum, mut n) = (0.0, 0i64);
            for (i, x) in v.iter().enumerate() {
                if m.get(at + i) {
                    sum += x;
                    n += 1;
                }
            }
            (sum, n)
        }
    }
}

/// Feeds a whole batch's column to one accumulator (no GROUP BY) with a typed kernel; false
/// when there is none for this aggregate and type (the caller feeds row by row).
fn feed_whole(acc: &mut Acc, call: &AggCall, cols: &[&Column], n: usize) -> bool {
    feed_rows(acc, call, cols, 0..n)
}

/// Feeds rows `rows` of the argument columns to one accumulator with a typed kernel (a
/// batch without GROUP BY, or a run of rows of one group); false, having fed nothing, when
/// there is none for this aggregate and type (the caller feeds row by row). Whether there
/// is depends only on the accumulator's kind and the columns' types.
pub(crate) fn feed_rows(acc: &mut Acc, call: &AggCall, cols: &[&Column], rows: std::ops::Range<usize>) -> bool {
    // Merges of partial results add up their inputs' values: the generic path does.
    if matches!(call.func, AggFunc::CountMerge | AggFunc::AvgMerge) {
        return false;
    }
    let max = call.func == AggFunc::Max;
    let (at, n) = (rows.start, rows.len());
    let present = |valid: Option<&crate::batch::Bitmap>, i: usize| valid.is_none_or(|m| m.get(at + i));
    match (acc, cols.first().map(|c| (&c.values, c.validity.as_ref()))) {
        (Acc::Count(c), _) if call.func == AggFunc::CountStar => *c += n as i64,
        (Acc::Count(c), Some((_, None))) => *c += n as i64,
        (Acc::Count(c), Some((_, Some(m)))) => *c += rows.filter(|&i| m.get(i)).count() as i64,
        (Acc::SumFloat { n: k, sum, inf }, Some((Values::Float64(v), valid))) => {
            let v = &v[rows];
            let (s, cnt) = sum_slice(v, valid, at);
            if !s.is_finite() {
                // An infinite input, or an overflow (which finish reports).
                *inf |= v.iter().enumerate().any(|(i, x)| x.is_infinite() && present(valid, i));
            }
            *k += cnt;
            *sum += s;
        }
        (Acc::SumInt(s, k), Some((Values::Int64(v), valid))) => {
            for (i, x) in v[rows].iter().enumerate() {
                if present(valid, i) {
                    *s += *x as i128;
                    *k += 1;
                }
            }
        }
        (Acc::ExtremeFloat(best), Some((Values::Float64(v), valid))) => {
            for (i, &x) in v[rows].iter().enumerate() {
                if present(valid, i) {
                    extreme_float(best, x, max);
                }
            }
        }
        (Acc::ExtremeInt(best), Some((Values::Int64(v) | Values::Timestamp(v), valid))) => {
            let v = &v[rows];
            let pick = |it: &mut dyn Iterator<Item = i64>| if max { it.max() } else { it.min() };
            let found = match valid {
                None => pick(&mut v.iter().copied()),
                Some(_) => pick(&mut v.iter().enumerate().filter(|(i, _)| present(valid, *i)).map(|(_, x)| *x)),
            };
            if let Some(x) = found {
                extreme_int(best, x, max);
            }
        }
        (Acc::Floats(vals, fraction, _), Some((Values::Float64(v), valid)))
            if matches!(call.func, AggFunc::PercentileCont { .. } | AggFunc::PercentileDisc { .. }) =>
        {
            let Some(fc) = cols.get(1) else { return false };
            if n == 0 {
                return true;
            }
            if fraction.is_null() {
                // The fraction is the same in every row (a constant): the generic path takes
                // the first non-NULL one it meets, as this does.
                if let Some(r) = rows.clone().find(|&r| fc.is_valid(r)) {
                    *fraction = Scalar::from_column(fc, call.args[1].ty(), r);
                }
            }
            match valid {
                None => vals.extend_from_slice(&v[rows]),
                Some(_) => {
                    vals.reserve(n);
                    for (i, &x) in v[rows].iter().enumerate() {
                        if present(valid, i) {
                            vals.push(x);
                        }
                    }
                }
            }
        }
        _ => return false,
    }
    true
}

/// Typed accumulation for count/sum/avg/min/max over float, integer and time columns, group
/// by group (`gids`: each row's group; accumulators laid out `naggs` per group).
fn fast_feed(accs: &mut [Acc], naggs: usize, ai: usize, call: &AggCall, cols: &[&Column], gids: &[usize]) -> bool {
    if matches!(call.func, AggFunc::CountMerge | AggFunc::AvgMerge) {
        return false;
    }
    let max = call.func == AggFunc::Max;
    let at = |g: usize| g * naggs + ai;
    // Every group's accumulator of this aggregate is of one kind; the loops below feed only
    // that kind, so a column of another type goes the generic way, never dropped.
    let Some(&g0) = gids.first() else { return true };
    let kind_fits = matches!(
        (&accs[at(g0)], &cols.first().map(|c| &c.values)),
        (Acc::Count(_), _)
            | (Acc::ExtremeFloat(_) | Acc::SumFloat { .. } | Acc::Floats(..), Some(Values::Float64(_)))
            | (Acc::ExtremeInt(_), Some(Values::Int64(_) | Values::Timestamp(_)))
            | (Acc::SumInt(..), Some(Values::Int64(_)))
    );
    if !kind_fits {
        return false;
    }
    match call.func {
        AggFunc::CountStar => {
            for &g in gids {
                if let Acc::Count(c) = &mut accs[at(g)] {
                    *c += 1;
                }
            }
            true
        }
        AggFunc::Count => {
            let c = &cols[0];
            for (r, &g) in gids.iter().enumerate() {
                if c.is_valid(r)
                    && let Acc::Count(x) = &mut accs[at(g)]
                {
                    *x += 1;
                }
            }
            true
        }
        AggFunc::Min | AggFunc::Max => match &cols[0].values {
            Values::Float64(v) => {
                let c = &cols[0];
                for (r, &g) in gids.iter().enumerate() {
                    if c.is_valid(r)
                        && let Acc::ExtremeFloat(best) = &mut accs[at(g)]
                    {
                        extreme_float(best, v[r], max);
                    }
                }
                true
            }
            Values::Int64(v) | Values::Timestamp(v) => {
                let c = &cols[0];
                for (r, &g) in gids.iter().enumerate() {
                    if c.is_valid(r)
                        && let Acc::ExtremeInt(best) = &mut accs[at(g)]
                    {
                        extreme_int(best, v[r], max);
                    }
                }
                true
            }
            _ => false,
        },
        AggFunc::PercentileCont { .. } | AggFunc::PercentileDisc { .. } => {
            let (Values::Float64(v), Some(fc)) = (&cols[0].values, cols.get(1)) else { return false };
            let c = &cols[0];
            let fty = call.args[1].ty();
            for (r, &g) in gids.iter().enumerate() {
                if let Acc::Floats(vals, fraction, _) = &mut accs[at(g)] {
                    if fraction.is_null() {
                        *fraction = Scalar::from_column(fc, fty, r);
                    }
                    if c.is_valid(r) {
                        vals.push(v[r]);
                    }
                }
            }
            true
        }
        AggFunc::Sum | AggFunc::Avg => match &cols[0].values {
            Values::Float64(v) => {
                let c = &cols[0];
                for (r, &g) in gids.iter().enumerate() {
                    if c.is_valid(r)
                        && let Acc::SumFloat { n, sum, inf } = &mut accs[at(g)]
                    {
                        *n += 1;
                        *sum += v[r];
                        *inf |= v[r].is_infinite();
                    }
                }
                true
            }
            Values::Int64(v) => {
                let c = &cols[0];
                for (r, &g) in gids.iter().enumerate() {
                    if c.is_valid(r)
                        && let Acc::SumInt(s, n) = &mut accs[at(g)]
                    {
                        *s += v[r] as i128;
                        *n += 1;
                    }
                }
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Bitmap;

    /// The aggregate `func` over one float or integer column, fed (a) whole batch by whole
    /// batch through the typed kernels, (b) group by group through the typed per-row loops,
    /// and (c) a value at a time through the generic path: the three agree.
    fn three_ways(func: AggFunc, ty: SqlType, col: &Column) -> [SqlResult<Scalar>; 3] {
        let call = AggCall { func, args: vec![Expr::Col { idx: 0, ty }], distinct: false, ty: resolve_ty(func, ty) };
        let mut whole = new_acc(&call);
        let fed_whole = feed_whole(&mut whole, &call, &[col], col.len());
        assert!(fed_whole, "{func:?} over {ty:?} has a kernel");
        let mut grouped = vec![new_acc(&call)];
        let gids = vec![0; col.len()];
        assert!(fast_feed(&mut grouped, 1, 0, &call, &[col], &gids));
        let mut generic = new_acc(&call);
        for r in 0..col.len() {
            feed(&mut generic, &call, &[Scalar::from_column(col, ty, r)]);
        }
        [finish(&whole, &call), finish(&grouped[0], &call), finish(&generic, &call)]
    }

    fn resolve_ty(func: AggFunc, ty: SqlType) -> SqlType {
        let name = match func {
            AggFunc::CountStar | AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            _ => "max",
        };
        resolve(name, &[ty], func == AggFunc::CountStar).unwrap().1
    }

    fn same(a: &SqlResult<Scalar>, b: &SqlResult<Scalar>) -> bool {
        match (a, b) {
            (Ok(Scalar::Float(x)), Ok(Scalar::Float(y))) => {
                // Summed in another order: rounding differs by a few ulps of the terms (≤ 1e6).
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-6 + 1e-9 * x.abs().max(y.abs())
            }
            (Ok(x), Ok(y)) => format!("{x:?}") == format!("{y:?}"),
            (Err(x), Err(y)) => x.sqlstate == y.sqlstate,
            _ => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn typed_kernels_agree_with_the_generic_path(
            vals in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => -1e6f64..1e6,
                    1 => proptest::prelude::Just(f64::NAN),
                    1 => proptest::prelude::Just(f64::INFINITY),
                    1 => proptest::prelude::Just(-0.0f64),
                    1 => proptest::prelude::Just(1.7e308f64),
                ],
                0..300,
            ),
            nulls in proptest::collection::vec(proptest::prelude::any::<bool>(), 300),
            ints in proptest::collection::vec(proptest::prelude::any::<i64>(), 0..300),
        ) {
            let mut valid = Bitmap::new_set(vals.len());
            for (i, &n) in nulls.iter().take(vals.len()).enumerate() {
                valid.set(i, !n);
            }
            let floats = Column::with_validity(Values::Float64(vals.clone()), Some(valid));
            let plain = Column::new(Values::Float64(vals));
            let integers = Column::new(Values::Int64(ints.iter().map(|x| x >> 4).collect()));
            for func in [AggFunc::CountStar, AggFunc::Count, AggFunc::Sum, AggFunc::Avg, AggFunc::Min, AggFunc::Max] {
                for (col, ty) in [(&floats, SqlType::Float8), (&plain, SqlType::Float8), (&integers, SqlType::Int8)] {
                    let [a, b, c] = three_ways(func, ty, col);
                    proptest::prop_assert!(same(&a, &c) && same(&b, &c), "{func:?} {ty:?}: {a:?} / {b:?} / {c:?}");
                }
            }
        }
    }
}
