//! Accumulators fed different rows (on different threads) added into one.

use super::*;

/// Whether `call` can be computed in parts merged by [`merge_acc`] with the same answer as
/// fed in one piece: all but string_agg, whose parts' order is the answer's.
pub(crate) fn mergeable(call: &AggCall) -> bool {
    call.func != AggFunc::StringAgg
}

/// Adds `other` (the same aggregate fed other rows) into `acc`; false when they are of
/// different kinds.
pub(crate) fn merge_acc(acc: &mut Acc, other: Acc, call: &AggCall) -> bool {
    let max = call.func == AggFunc::Max;
    match (acc, other) {
        (Acc::Count(a), Acc::Count(b)) => *a += b,
        (Acc::SumInt(s, n), Acc::SumInt(s2, n2)) => {
            *s += s2;
            *n += n2;
        }
        (Acc::SumFloat { n, sum, inf }, Acc::SumFloat { n: n2, sum: s2, inf: i2 }) => {
            *n += n2;
            *sum += s2;
            *inf |= i2;
        }
        (Acc::ExtremeFloat(best), Acc::ExtremeFloat(b)) => {
            if let Some(x) = b {
                extreme_float(best, x, max);
            }
        }
        (Acc::ExtremeInt(best), Acc::ExtremeInt(b)) => {
            if let Some(x) = b {
                extreme_int(best, x, max);
            }
        }
        // Chan et al.'s combination of two sets' counts, means and squared deviations.
        (Acc::Moments { n, mean, m2, sum }, Acc::Moments { n: n2, mean: mean2, m2: m22, sum: sum2 }) => {
            if n2 == 0 {
                return true;
            }
            let total = *n + n2;
            let d = mean2 - *mean;
            let (na, nb, nt) = (*n as f64, n2 as f64, total as f64);
            *mean += d * nb / nt;
            *m2 += m22 + d * d * na * nb / nt;
            *sum += sum2;
            *n = total;
        }
        (Acc::Extreme(best), Acc::Extreme(b)) => {
            if let Some(x) = b {
                let want = if max { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less };
                if best.as_ref().is_none_or(|cur| crate::query::func::scalar_cmp(&x, cur) == Some(want)) {
                    *best = Some(x);
                }
            }
        }
        (Acc::Bool(a), Acc::Bool(b)) => {
            if let Some(y) = b {
                *a = Some(match (call.func, *a) {
                    (AggFunc::BoolAnd, Some(x)) => x && y,
                    (AggFunc::BoolOr, Some(x)) => x || y,
                    _ => y,
                });
            }
        }
        (Acc::ByTime(best), Acc::ByTime(b)) => {
            if let Some((t, v)) = b {
                let better = match best {
                    None => true,
                    Some((bt, _)) if call.func == AggFunc::First => t < *bt,
                    Some((bt, _)) => t > *bt,
                };
                if better {
                    *best = Some((t, v));
                }
            }
        }
        (Acc::DistinctInt(vals, seen), Acc::DistinctInt(more, _)) => {
            for x in more {
                if seen.insert(x) {
                    vals.push(x);
                }
            }
        }
        (acc @ Acc::Distinct(..), Acc::Distinct(vals, _)) => {
            for v in vals {
                feed(acc, call, &[v]);
            }
        }
        (Acc::Values(vals, fraction), Acc::Values(v2, f2)) => {
            if fraction.is_null() {
                *fraction = f2;
            }
            vals.extend(v2);
        }
        (Acc::Floats(vals, fraction, more), Acc::Floats(v2, f2, more2)) => {
            if fraction.is_null() {
                *fraction = f2;
            }
            // Taken over, not copied: the values are joined when the group is finished.
            more.extend(std::iter::once(v2).chain(more2).filter(|v| !v.is_empty()));
            if vals.is_empty() {
                *vals = more.pop().unwrap_or_default();
            }
        }
        // The same for two variables: means, squared deviations and the co-moment.
        (
            Acc::Pairs { n, mx, my, sxx, syy, sxy, max_x, extra },
            Acc::Pairs { n: n2, mx: mx2, my: my2, sxx: sxx2, syy: syy2, sxy: sxy2, max_x: max_x2, extra: e2 },
        ) => {
            if extra.is_none() {
                *extra = e2;
            }
            *max_x = max_x.max(max_x2);
            if n2 == 0 {
                return true;
            }
            let total = *n + n2;
            let (na, nb, nt) = (*n as f64, n2 as f64, total as f64);
            let (dx, dy) = (mx2 - *mx, my2 - *my);
            *sxx += sxx2 + dx * dx * na * nb / nt;
            *syy += syy2 + dy * dy * na * nb / nt;
            *sxy += sxy2 + dx * dy * na * nb / nt;
            *mx += dx * nb / nt;
            *my += dy * nb / nt;
            *n = total;
        }
        _ => return false,
    }
    true
}
