//! Aggregate pushdown: an aggregate over an inner join whose aggregates read one side only,
//! grouped by the other side's columns, is computed in two steps. The read side is first
//! aggregated per join key (3M readings become 1,000 rows, one per machine), those rows are
//! joined, and the joined partial results are merged per group. The answer is the same:
//! every row of the read side with a given key meets the same rows of the other side, so its
//! contribution to each group is the partial result of its key, counted once per match.
//!
//! Done for the aggregates whose partial results merge exactly: count, count(*), min, max,
//! and sum and avg of double precision (partial sums and counts; a sum of partial sums only
//! differs from the plain sum in the rounding of the last bits, as any parallel sum does).

use crate::query::agg::{AggCall, AggFunc};
use crate::query::expr::Expr;
use crate::query::plan::{JoinKind, OutCol, Plan};
use crate::query::types::SqlType;

/// Which side of a join an expression reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// The sides `e` reads columns of (join output numbering: left columns, then right).
fn sides(e: &Expr, nl: usize) -> (bool, bool) {
    let (mut l, mut r) = (false, false);
    e.columns(&mut |i| if i < nl { l = true } else { r = true });
    (l, r)
}

/// What one aggregate becomes: its partial calls below the join, and how they merge above.
enum Split {
    /// One partial call, merged by `func` (count → sum of counts, min → min, …).
    One(AggCall, AggFunc),
    /// avg: a partial sum and a partial count, merged by AvgMerge.
    Avg(AggCall, AggCall),
}

fn split(call: &AggCall) -> Option<Split> {
    if call.distinct {
        return None;
    }
    let float_arg = || call.args.first().is_some_and(|a| a.ty() == SqlType::Float8);
    let same = |func: AggFunc| AggCall { func, args: call.args.clone(), distinct: false, ty: call.ty };
    Some(match call.func {
        AggFunc::CountStar | AggFunc::Count => Split::One(same(call.func), AggFunc::CountMerge),
        AggFunc::Min | AggFunc::Max => Split::One(same(call.func), call.func),
        AggFunc::Sum if float_arg() => Split::One(same(AggFunc::Sum), AggFunc::Sum),
        AggFunc::Avg if float_arg() => Split::Avg(
            AggCall { func: AggFunc::Sum, args: call.args.clone(), distinct: false, ty: SqlType::Float8 },
            AggCall { func: AggFunc::Count, args: call.args.clone(), distinct: false, ty: SqlType::Int8 },
        ),
        _ => return None,
    })
}

/// Where the rewrite applies to `Aggregate(group, aggs) over input`: the side aggregated first
/// and each aggregate's split. `None` when it does not (not an inner equi-join without
/// residual, aggregates on both sides or not mergeable, groups on the aggregated side).
fn applies(input: &Plan, group: &[Expr], aggs: &[AggCall]) -> Option<(Side, Vec<Split>)> {
    let Plan::Join { left, kind: JoinKind::Inner, residual: None, left_keys, .. } = input else {
        return None;
    };
    // Without join keys (a cross join) an empty side would still give its one ungrouped
    // partial row, and groups of the other side would appear with zero counts.
    if aggs.is_empty() || left_keys.is_empty() {
        return None;
    }
    let nl = left.schema().len();
    let (mut agg_l, mut agg_r) = (false, false);
    for a in aggs {
        for e in &a.args {
            let (l, r) = sides(e, nl);
            agg_l |= l;
            agg_r |= r;
        }
    }
    let (mut grp_l, mut grp_r) = (false, false);
    for g in group {
        let (l, r) = sides(g, nl);
        grp_l |= l;
        grp_r |= r;
    }
    // The aggregated side: the one the aggregates read and the groups do not.
    let side = match (agg_l || grp_r, agg_r || grp_l) {
        (true, false) => Side::Left,
        (false, true) => Side::Right,
        // count(*) alone over an ungrouped join: either; the left is usually the facts.
        (false, false) => Side::Left,
        (true, true) => return None,
    };
    Some((side, aggs.iter().map(split).collect::<Option<Vec<_>>>()?))
}

/// `Aggregate(group, aggs) over input`, with the aggregate pushed below the join when
/// [`applies`] says it can be; `schema` is the plain aggregate's (the rewrite keeps it).
pub(super) fn aggregate(input: Plan, group: Vec<Expr>, aggs: Vec<AggCall>, schema: Vec<OutCol>) -> Plan {
    let Some((side, splits)) = applies(&input, &group, &aggs) else {
        return Plan::Aggregate { input: Box::new(input), group, aggs, schema };
    };
    let Plan::Join { left, right, left_keys, right_keys, .. } = input else { unreachable!("applies checked the join") };
    let nl = left.schema().len();
    let (agg_side, other, agg_keys, other_keys) = match side {
        Side::Left => (left, right, left_keys, right_keys),
        Side::Right => (right, left, right_keys, left_keys),
    };
    // Below the join: the aggregated side grouped by its join keys.
    let offset = if side == Side::Left { 0 } else { nl };
    let mut partial_calls = Vec::new();
    for s in &splits {
        match s {
            Split::One(c, _) => partial_calls.push(c.clone()),
            Split::Avg(sum, count) => {
                partial_calls.push(sum.clone());
                partial_calls.push(count.clone());
            }
        }
    }
    for c in &mut partial_calls {
        for a in &mut c.args {
            a.remap(&|i| i - offset);
        }
    }
    let nk = agg_keys.len();
    let mut partial_schema: Vec<OutCol> =
        agg_keys.iter().enumerate().map(|(i, k)| OutCol { name: format!("key{i}"), ty: k.ty() }).collect();
    partial_schema.extend(partial_calls.iter().enumerate().map(|(i, c)| OutCol { name: format!("part{i}"), ty: c.ty }));
    let np = partial_schema.len();
    let partial =
        Plan::Aggregate { input: agg_side, group: agg_keys.clone(), aggs: partial_calls, schema: partial_schema };
    let new_keys: Vec<Expr> = agg_keys.iter().enumerate().map(|(i, k)| Expr::Col { idx: i, ty: k.ty() }).collect();
    let (join, part_at, shift_right) = match side {
        Side::Left => {
            let left = Box::new(partial);
            let schema = left.schema().into_iter().chain(other.schema()).collect();
            let j = Plan::Join {
                left,
                right: other,
                kind: JoinKind::Inner,
                left_keys: new_keys,
                right_keys: other_keys,
                residual: None,
                schema,
            };
            (j, nk, Some(np))
        }
        Side::Right => {
            let right = Box::new(partial);
            let schema = other.schema().into_iter().chain(right.schema()).collect();
            let j = Plan::Join {
                left: other,
                right,
                kind: JoinKind::Inner,
                left_keys: other_keys,
                right_keys: new_keys,
                residual: None,
                schema,
            };
            (j, nl + nk, None)
        }
    };
    // Above the join: the groups (the other side's columns, renumbered when that side moved)
    // and one merge per aggregate.
    let mut group = group;
    if let Some(np) = shift_right {
        for g in &mut group {
            g.remap(&|i| i - nl + np);
        }
    }
    let col = |j: usize, ty: SqlType| Expr::Col { idx: part_at + j, ty };
    let mut merges = Vec::new();
    let mut j = 0;
    for (s, orig) in splits.iter().zip(aggs) {
        match s {
            Split::One(c, func) => {
                merges.push(AggCall { func: *func, args: vec![col(j, c.ty)], distinct: false, ty: orig.ty });
                j += 1;
            }
            Split::Avg(..) => {
                merges.push(AggCall {
                    func: AggFunc::AvgMerge,
                    args: vec![col(j, SqlType::Float8), col(j + 1, SqlType::Int8)],
                    distinct: false,
                    ty: orig.ty,
                });
                j += 2;
            }
        }
    }
    Plan::Aggregate { input: Box::new(join), group, aggs: merges, schema }
}
