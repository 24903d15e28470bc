//! percentile_cont and percentile_disc over the values a group kept.

use super::*;

/// The fraction a percentile asks for (`None` when NULL); 22003 outside 0..1.
fn percentile_fraction(fraction: &Scalar) -> SqlResult<Option<f64>> {
    let p = match fraction {
        Scalar::Float(f) => *f,
        Scalar::Int(i) => *i as f64,
        _ => return Ok(None),
    };
    if !(0.0..=1.0).contains(&p) {
        return Err(SqlError::new("22003", format!("percentile value {p} is not between 0 and 1")));
    }
    Ok(Some(p))
}

/// [`percentile_floats_in_place`] over `vals` and, appended to it, the values taken over from
/// other threads' accumulators of the group.
pub(super) fn percentile_floats_joined(
    vals: &mut Vec<f64>,
    more: &[Vec<f64>],
    fraction: &Scalar,
    call: &AggCall,
) -> SqlResult<Scalar> {
    vals.reserve(more.iter().map(Vec::len).sum());
    more.iter().for_each(|m| vals.extend_from_slice(m));
    percentile_floats_in_place(vals, fraction, call)
}

/// [`percentile`] of double precision values: the one or two values it needs are selected
/// (linear time) among `v` itself, whose order it changes, not the whole group sorted. NaN
/// sorts above every number, as in PostgreSQL.
fn percentile_floats_in_place(v: &mut [f64], fraction: &Scalar, call: &AggCall) -> SqlResult<Scalar> {
    let Some(p) = percentile_fraction(fraction)? else { return Ok(Scalar::Null) };
    let n = v.len();
    if n == 0 {
        return Ok(Scalar::Null);
    }
    let order = |a: &f64, b: &f64| crate::query::scalar::cmp_f64(*a, *b);
    let desc = matches!(call.func, AggFunc::PercentileCont { desc: true } | AggFunc::PercentileDisc { desc: true });
    // The k-th value (from 0) in the asked order.
    let mut kth = |k: usize| -> f64 {
        let at = if desc { n - 1 - k } else { k };
        *v.select_nth_unstable_by(at, order).1
    };
    if let AggFunc::PercentileDisc { .. } = call.func {
        let k = ((p * n as f64).ceil() as usize).max(1);
        return Ok(Scalar::Float(kth(k - 1)));
    }
    let pos = p * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    if lo == hi {
        return Ok(Scalar::Float(kth(lo)));
    }
    // The next value in the asked order is the nearest of those the selection put after it.
    let at = if desc { n - 1 - lo } else { lo };
    let (below, a, above) = v.select_nth_unstable_by(at, order);
    let a = *a;
    let b = if desc { below.iter().copied().max_by(order) } else { above.iter().copied().min_by(order) };
    let Some(b) = b else { return Err(SqlError::new("XX000", "a percentile between two values found one")) };
    Ok(Scalar::Float(a + (b - a) * (pos - lo as f64)))
}

/// PostgreSQL's percentile_cont (linear interpolation between the two nearest values) and
/// percentile_disc (the first value whose position reaches the fraction).
pub(super) fn percentile(vals: &[Scalar], fraction: &Scalar, call: &AggCall) -> SqlResult<Scalar> {
    let Some(p) = percentile_fraction(fraction)? else { return Ok(Scalar::Null) };
    if vals.is_empty() {
        return Ok(Scalar::Null);
    }
    let mut sorted = vals.to_vec();
    sorted.sort_by(|a, b| crate::query::func::scalar_cmp(a, b).unwrap_or(std::cmp::Ordering::Equal));
    let desc = matches!(call.func, AggFunc::PercentileCont { desc: true } | AggFunc::PercentileDisc { desc: true });
    if desc {
        sorted.reverse();
    }
    let n = sorted.len();
    if let AggFunc::PercentileDisc { .. } = call.func {
        let k = ((p * n as f64).ceil() as usize).max(1);
        return Ok(sorted[k - 1].clone());
    }
    let pos = p * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let f = |s: &Scalar| match s {
        Scalar::Int(i) => *i as f64,
        Scalar::Float(x) => *x,
        _ => 0.0,
    };
    let (a, b) = (f(&sorted[lo]), f(&sorted[hi]));
    let v = if lo == hi { a } else { a + (b - a) * (pos - lo as f64) };
    Ok(Scalar::Float(v))
}
