//! Pruning: which columns each scan reads, and the time range, tag values and value ranges a filter lets a scan skip by.

use crate::query::expr::{BinOp, Expr};
use crate::query::plan::{JoinKind, Plan, Source};
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;

pub(super) fn split_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Bin { op: BinOp::And, l, r, .. } => {
            split_and(*l, out);
            split_and(*r, out);
        }
        other => out.push(other),
    }
}

/// Scans under a join decode every column (per-side column tracking is not done yet).
/// Tells the scans under `p` (through filters and joins) which of their columns the query
/// reads; the others are not decoded. `used` is indexed by `p`'s output columns.
pub(super) fn set_used(p: &mut Plan, used: &[bool]) {
    match p {
        Plan::Scan { used: u, schema, .. } if used.len() == schema.len() => *u = used.to_vec(),
        Plan::Filter { input, .. } => set_used(input, used),
        Plan::Apply { input, .. } => {
            let w = input.schema().len();
            if used.len() >= w {
                set_used(input, &used[..w]);
            }
        }
        Plan::Join { left, right, schema, .. } if used.len() == schema.len() => {
            let lw = left.schema().len();
            set_used(left, &used[..lw]);
            set_used(right, &used[lw..]);
        }
        _ => {}
    }
}

pub(super) fn mark_all_used(p: &mut Plan) {
    match p {
        Plan::Scan { used, schema, .. } if used.is_empty() => *used = vec![true; schema.len()],
        Plan::Filter { input, .. } => mark_all_used(input),
        _ => {}
    }
}

/// `column = 'text'` conjuncts of `pred`, which a datastore scan can answer from tag indexes.
/// `column op number` conditions (`<`, `<=`, `>`, `>=`, `=`, BETWEEN) on numeric columns, as
/// closed ranges `[lo, hi]` a row's value must fall in: blocks whose min/max lie outside are
/// skipped. (Closed bounds are conservative for `<` and `>`.)
pub(super) fn ranges_of(pred: &Expr) -> Vec<(usize, f64, f64)> {
    let mut out = Vec::new();
    let mut stack = vec![pred];
    // A number, possibly cast to the column's numeric type.
    let num = |e: &Expr| {
        let lit = match e {
            Expr::Cast { e, to } if to.is_numeric() => e.as_lit(),
            _ => e.as_lit(),
        };
        match lit {
            Some(Scalar::Int(i)) => Some(*i as f64),
            Some(Scalar::Float(f)) if !f.is_nan() => Some(*f),
            _ => None,
        }
    };
    let col = |e: &Expr| match e {
        Expr::Col { idx, ty } if ty.is_numeric() => Some(*idx),
        Expr::Cast { e, to } if to.is_numeric() => match e.as_ref() {
            Expr::Col { idx, ty } if ty.is_numeric() => Some(*idx),
            _ => None,
        },
        _ => None,
    };
    while let Some(e) = stack.pop() {
        let Expr::Bin { op, l, r, .. } = e else { continue };
        if *op == BinOp::And {
            stack.push(l);
            stack.push(r);
            continue;
        }
        // Normalise to `column op value`.
        let (c, v, op) = match (col(l), num(r), col(r), num(l)) {
            (Some(c), Some(v), _, _) => (c, v, *op),
            (_, _, Some(c), Some(v)) => (
                c,
                v,
                match op {
                    BinOp::Lt => BinOp::Gt,
                    BinOp::LtEq => BinOp::GtEq,
                    BinOp::Gt => BinOp::Lt,
                    BinOp::GtEq => BinOp::LtEq,
                    o => *o,
                },
            ),
            _ => continue,
        };
        match op {
            BinOp::Eq => out.push((c, v, v)),
            BinOp::Lt | BinOp::LtEq => out.push((c, f64::NEG_INFINITY, v)),
            BinOp::Gt | BinOp::GtEq => out.push((c, v, f64::INFINITY)),
            _ => {}
        }
    }
    out
}

pub(super) fn tags_of(pred: &Expr) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut stack = vec![pred];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Bin { op: BinOp::And, l, r, .. } => {
                stack.push(l);
                stack.push(r);
            }
            Expr::Bin { op: BinOp::Eq, l, r, .. } => match (l.as_ref(), r.as_ref()) {
                (Expr::Col { idx, ty }, Expr::Lit { value: Scalar::Text(v), .. })
                | (Expr::Lit { value: Scalar::Text(v), .. }, Expr::Col { idx, ty })
                    if ty.is_text() =>
                {
                    out.push((*idx, v.clone()));
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// The `[lo, hi)` range of column `time_col` implied by the conjuncts of `pred`.
pub(super) fn time_range_of(pred: &Expr, time_col: usize) -> (i64, i64) {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    let mut stack = vec![pred];
    while let Some(e) = stack.pop() {
        if let Expr::Bin { op, l, r, .. } = e {
            if *op == BinOp::And {
                stack.push(l);
                stack.push(r);
                continue;
            }
            let (col_left, lit) = match (l.as_ref(), r.as_ref()) {
                (Expr::Col { idx, .. }, Expr::Lit { value: Scalar::Time(t), .. }) if *idx == time_col => (true, *t),
                (Expr::Lit { value: Scalar::Time(t), .. }, Expr::Col { idx, .. }) if *idx == time_col => (false, *t),
                _ => continue,
            };
            let op = if col_left {
                *op
            } else {
                match op {
                    BinOp::Lt => BinOp::Gt,
                    BinOp::LtEq => BinOp::GtEq,
                    BinOp::Gt => BinOp::Lt,
                    BinOp::GtEq => BinOp::LtEq,
                    other => *other,
                }
            };
            match op {
                BinOp::Gt => lo = lo.max(lit.saturating_add(1)),
                BinOp::GtEq => lo = lo.max(lit),
                BinOp::Lt => hi = hi.min(lit),
                BinOp::LtEq => hi = hi.min(lit.saturating_add(1)),
                BinOp::Eq => {
                    lo = lo.max(lit);
                    hi = hi.min(lit.saturating_add(1));
                }
                _ => {}
            }
        }
    }
    (lo, hi)
}

/// The conjunction of `conj`, if there is any.
pub(super) fn and_all(conj: Vec<Expr>) -> Option<Expr> {
    conj.into_iter().reduce(|a, b| Expr::Bin { op: BinOp::And, l: Box::new(a), r: Box::new(b), ty: SqlType::Bool })
}

/// `plan` filtered by `pred`; a scan below (directly, or under a dataset's delta window
/// filter) takes the time range (of column `time_col`), tag values and value ranges `pred`
/// implies, to skip what cannot match.
pub(super) fn filtered(mut plan: Plan, pred: Expr, time_col: Option<usize>) -> Plan {
    let scan = match &mut plan {
        Plan::Filter { input, .. } => &mut **input,
        p => p,
    };
    if let (Plan::Scan { time_range, .. }, Some(tc)) = (&mut *scan, time_col) {
        let (lo, hi) = time_range_of(&pred, tc);
        *time_range = (time_range.0.max(lo), time_range.1.min(hi));
    }
    if let Plan::Scan { source: Source::Datastore(_), tags, ranges, .. } = scan {
        tags.extend(tags_of(&pred));
        ranges.extend(ranges_of(&pred));
    }
    Plan::Filter { input: Box::new(plan), pred }
}

/// The column of a scan's rows that is their time, for pruning: a datastore's `time`, a
/// channel's arrival time. Seen through a dataset's delta window filter.
pub(super) fn scan_time_col(plan: &Plan) -> Option<usize> {
    match plan {
        Plan::Filter { input, .. } => scan_time_col(input),
        Plan::Scan { source: Source::Datastore(_), schema, .. } => schema.iter().position(|c| c.name == "time"),
        Plan::Scan { source: Source::Channel(_), .. } => Some(0),
        _ => None,
    }
}

/// Pushes the conjuncts `conj` (over `plan`'s output) as far down a tree of joins as they
/// can go: a condition on one side's columns only is applied to that side's rows before the
/// join, when the join lets it (either side of an inner join; the preserved side of a LEFT or
/// RIGHT join, never the side a join fills with NULLs; nothing through a FULL join). An inner
/// join's own conditions on one side go down the same way. Returns the conjuncts that stay
/// above `plan`.
pub(super) fn push_down(plan: Plan, conj: Vec<Expr>) -> (Plan, Vec<Expr>) {
    let Plan::Join { left, right, kind, left_keys, right_keys, mut residual, schema } = plan else {
        return (plan, conj);
    };
    let (nl, nr) = (left.schema().len(), right.schema().len());
    let (to_left, to_right) = match kind {
        JoinKind::Inner => (true, true),
        JoinKind::Left => (true, false),
        JoinKind::Right => (false, true),
        JoinKind::Full => (false, false),
    };
    let mut conj = conj;
    let mut own = Vec::new();
    if kind == JoinKind::Inner
        && let Some(r) = residual.take()
    {
        split_and(r, &mut own);
    }
    let (mut lc, mut rc, mut kept, mut kept_own) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (c, is_own) in conj.drain(..).map(|c| (c, false)).chain(own.into_iter().map(|c| (c, true))) {
        let (mut l, mut r, mut beyond) = (false, false, false);
        c.columns(&mut |i| {
            if i < nl {
                l = true
            } else if i < nl + nr {
                r = true
            } else {
                beyond = true
            }
        });
        if l && !r && !beyond && (to_left || is_own) {
            lc.push(c);
        } else if r && !l && !beyond && (to_right || is_own) {
            let mut c = c;
            c.remap(&|i| i - nl);
            rc.push(c);
        } else if is_own {
            kept_own.push(c);
        } else {
            kept.push(c);
        }
    }
    if kind == JoinKind::Inner {
        residual = and_all(kept_own);
    }
    let below = |side: Box<Plan>, preds: Vec<Expr>| -> Box<Plan> {
        if preds.is_empty() && !matches!(*side, Plan::Join { .. }) {
            return side;
        }
        let (side, rest) = push_down(*side, preds);
        Box::new(match and_all(rest) {
            Some(pred) => {
                let tc = scan_time_col(&side);
                filtered(side, pred, tc)
            }
            None => side,
        })
    };
    let (left, right) = (below(left, lc), below(right, rc));
    (Plan::Join { left, right, kind, left_keys, right_keys, residual, schema }, kept)
}
