//! Aggregates answered from block statistics. A datastore block lying wholly inside the
//! query's time range, under no other condition, contributes to `count`, `sum`, `avg`, `min`
//! and `max` of a column exactly what its statistics say (file format version 2), and to
//! `count(*) … GROUP BY` a dictionary column what its per-value counts say: such blocks are
//! not decoded. Blocks cut by the range, blocks of older files and memtable rows are read
//! and aggregated as usual; the two are added before the aggregate is finished.

use super::*;
use crate::query::agg::{AggCall, AggFunc, GroupAccs, add_totals, aggregate_with};
use crate::query::expr::BinOp;
use std::sync::Mutex;

/// A filter node above a scan and its predicate, when there is one.
type FilterNode<'a> = Option<(&'a Plan, &'a Expr)>;

/// The datastore scan `input` reads (directly, or under a filter made only of bounds on its
/// `time` column), that filter, and the time range inside which a block's rows all pass.
fn stats_input(input: &Plan) -> Option<(&Plan, FilterNode<'_>, (i64, i64))> {
    let (scan, filter) = match input {
        Plan::Filter { input: s, pred } => (&**s, Some((input, pred))),
        p => (p, None),
    };
    let Plan::Scan { source: Source::Datastore(_), schema, tags, ranges, time_range, .. } = scan else {
        return None;
    };
    if !tags.is_empty() || !ranges.is_empty() {
        return None;
    }
    let time_col = schema.iter().position(|c| c.name == "time")?;
    let time_ty = schema[time_col].ty;
    let mut whole = *time_range;
    if let Some((_, pred)) = filter {
        let (lo, hi) = time_bounds(pred, time_col, time_ty)?;
        whole = (whole.0.max(lo), whole.1.min(hi));
    }
    Some((scan, filter, whole))
}

/// `[lo, hi)` when `pred` is a conjunction of comparisons of column `time_col` with
/// constants of its type (nothing else); `None` otherwise.
fn time_bounds(pred: &Expr, time_col: usize, time_ty: SqlType) -> Option<(i64, i64)> {
    match pred {
        Expr::Bin { op: BinOp::And, l, r, .. } => {
            let (a, b) = (time_bounds(l, time_col, time_ty)?, time_bounds(r, time_col, time_ty)?);
            Some((a.0.max(b.0), a.1.min(b.1)))
        }
        Expr::Bin { op, l, r, .. } => {
            let (op, v) = match (&**l, &**r) {
                (Expr::Col { idx, .. }, Expr::Lit { value: Scalar::Time(v), ty })
                    if *idx == time_col && *ty == time_ty =>
                {
                    (*op, *v)
                }
                (Expr::Lit { value: Scalar::Time(v), ty }, Expr::Col { idx, .. })
                    if *idx == time_col && *ty == time_ty =>
                {
                    let mirrored = match op {
                        BinOp::Gt => BinOp::Lt,
                        BinOp::GtEq => BinOp::LtEq,
                        BinOp::Lt => BinOp::Gt,
                        BinOp::LtEq => BinOp::GtEq,
                        BinOp::Eq => BinOp::Eq,
                        _ => return None,
                    };
                    (mirrored, *v)
                }
                _ => return None,
            };
            Some(match op {
                BinOp::Gt => (v.checked_add(1)?, i64::MAX),
                BinOp::GtEq => (v, i64::MAX),
                BinOp::Lt => (i64::MIN, v),
                BinOp::LtEq => (i64::MIN, v.checked_add(1)?),
                BinOp::Eq => (v, v.checked_add(1)?),
                _ => return None,
            })
        }
        _ => None,
    }
}

/// The column an aggregate's only argument is, when it is one.
fn arg_col(call: &AggCall) -> Option<usize> {
    match call.args.as_slice() {
        [Expr::Col { idx, .. }] => Some(*idx),
        _ => None,
    }
}

/// The scan's batches (whole blocks inside `want.whole` left out and added to its totals),
/// filtered.
fn reader<'a>(scan: &'a Plan, filter: FilterNode<'a>, want: StatsWanted<'a>) -> Option<Pull<'a>> {
    let Plan::Scan { source: Source::Datastore(ds), schema, used, time_range, tags, ranges, stats } = scan else {
        return None;
    };
    let mut r = DatastoreReader::new(ds, schema, used, *time_range, tags, ranges, stats).with_totals(want);
    let scanned = profiled(scan, Box::new(move || r.next()));
    Some(match filter {
        None => scanned,
        Some((fplan, pred)) => profiled(fplan, filtered_pull(scanned, pred)),
    })
}

/// `Aggregate(group, aggs)` over the scan (and filter) with the blocks `want` names taken
/// from their statistics, on every core when it can be, and `after` adding them to the
/// groups; `None` when the scan is not a datastore's.
fn aggregate_taking_stats(
    scan: &Plan,
    filter: FilterNode<'_>,
    group: &[Expr],
    aggs: &[AggCall],
    want: StatsWanted<'_>,
    after: Option<crate::query::agg::AddToAccs<'_>>,
) -> SqlResult<Option<Batch>> {
    let input = filter.map_or(scan, |(p, _)| p);
    if let Some(b) = super::parallel::aggregate(input, group, aggs, Some(want), after)? {
        return Ok(Some(b));
    }
    let Some(mut next) = reader(scan, filter, want) else { return Ok(None) };
    aggregate_with(&mut *next, group, aggs, after).map(Some)
}

/// `Aggregate(group, aggs)` over `input` with whole blocks answered from their statistics,
/// or `None` when the shape does not allow it (then the plain path runs).
pub(super) fn aggregate_from_stats(
    input: &Plan,
    group: &[Expr],
    aggs: &[AggCall],
    schema: &[OutCol],
) -> SqlResult<Option<Vec<Batch>>> {
    let Some((scan, filter, whole)) = stats_input(input) else { return Ok(None) };
    let Plan::Scan { schema: ss, .. } = scan else { return Ok(None) };
    if whole.0 >= whole.1 || aggs.is_empty() {
        return Ok(None);
    }
    // count(DISTINCT c) of a text column, not grouped: the values present in blocks.
    if let ([], [call]) = (group, aggs)
        && call.func == AggFunc::Count
        && call.distinct
        && let Some(c) = arg_col(call)
        && ss[c].ty.physical() == Some(crate::batch::DataType::Text)
    {
        return distinct_values(scan, filter, whole, c, group, aggs, schema);
    }
    if aggs.iter().any(|a| a.distinct) {
        return Ok(None);
    }
    match group {
        [] => totals(scan, filter, whole, group, aggs, schema),
        [Expr::Col { idx, .. }] if ss[*idx].ty.physical() == Some(crate::batch::DataType::Text) => {
            let counts_only = aggs
                .iter()
                .all(|a| a.func == AggFunc::CountStar || (a.func == AggFunc::Count && arg_col(a) == Some(*idx)));
            if counts_only {
                counts_by_value(scan, filter, whole, *idx, group, aggs, schema)
            } else {
                totals(scan, filter, whole, group, aggs, schema)
            }
        }
        _ => Ok(None),
    }
}

/// count(*), count, sum, avg, min and max of columns, without GROUP BY or grouped by one
/// text column (then from the blocks holding one value of it; the others are decoded).
fn totals(
    scan: &Plan,
    filter: FilterNode<'_>,
    whole: (i64, i64),
    group: &[Expr],
    aggs: &[AggCall],
    schema: &[OutCol],
) -> SqlResult<Option<Vec<Batch>>> {
    let Plan::Scan { schema: ss, .. } = scan else { return Ok(None) };
    let by = match group {
        [] => None,
        [Expr::Col { idx, .. }] => Some(*idx),
        _ => return Ok(None),
    };
    use crate::batch::DataType;
    let mut cols = Vec::new();
    for a in aggs {
        let numeric = |c: usize| matches!(ss[c].ty.physical(), Some(DataType::Int64 | DataType::Float64));
        let ok = match (a.func, arg_col(a)) {
            (AggFunc::CountStar, _) => true,
            (AggFunc::Count, Some(_)) => true,
            (AggFunc::Sum | AggFunc::Avg, Some(c)) => numeric(c),
            (AggFunc::Min | AggFunc::Max, Some(c)) => numeric(c) || ss[c].ty.physical() == Some(DataType::Timestamp),
            _ => false,
        };
        if !ok {
            return Ok(None);
        }
        if let Some(c) = arg_col(a)
            && !cols.contains(&StatCol::Numbers(c))
        {
            cols.push(StatCol::Numbers(c));
        }
    }
    let totals = Mutex::new(BlockTotals::default());
    let want = StatsWanted { cols: &cols, whole, by, totals: &totals };
    let add = |groups: &mut dyn GroupAccs| -> SqlResult<()> {
        let t = totals.lock().unwrap_or_else(|p| p.into_inner());
        // A column without totals had no block answered from statistics.
        let none = crate::query::agg::ColTotals::default();
        let add_to = |accs: &mut [crate::query::agg::Acc], t: &BlockTotals| -> SqlResult<()> {
            for (ai, call) in aggs.iter().enumerate() {
                let col = arg_col(call).and_then(|c| t.cols.get(&c)).unwrap_or(&none);
                if !add_totals(&mut accs[ai], call, t.rows, col) {
                    return Err(SqlError::new("XX000", "block statistics do not fit an aggregate they were taken for"));
                }
            }
            Ok(())
        };
        if by.is_none() {
            add_to(groups.accs_of(&[])?, &t)?;
        }
        for (value, gt) in &t.groups {
            add_to(groups.accs_of(&[Scalar::Text(value.clone())])?, gt)?;
        }
        Ok(())
    };
    let b = aggregate_taking_stats(scan, filter, group, aggs, want, Some(&add))?;
    Ok(b.map(|b| vec![make_batch(schema, b.columns)]))
}

/// count(DISTINCT c) of text column `c`: the values present in blocks the statistics tell
/// (see [`StatCol::Values`]) are added to those of the rows read.
fn distinct_values(
    scan: &Plan,
    filter: FilterNode<'_>,
    whole: (i64, i64),
    c: usize,
    group: &[Expr],
    aggs: &[AggCall],
    schema: &[OutCol],
) -> SqlResult<Option<Vec<Batch>>> {
    let cols = [StatCol::Values(c)];
    let totals = Mutex::new(BlockTotals::default());
    let want = StatsWanted { cols: &cols, whole, by: None, totals: &totals };
    let add = |groups: &mut dyn GroupAccs| -> SqlResult<()> {
        let t = totals.lock().unwrap_or_else(|p| p.into_inner());
        let acc = &mut groups.accs_of(&[])?[0];
        for v in t.cols.get(&c).map(|ct| ct.counts.keys()).into_iter().flatten() {
            crate::query::agg::feed(acc, &aggs[0], &[Scalar::Text(v.clone())]);
        }
        Ok(())
    };
    let b = aggregate_taking_stats(scan, filter, group, aggs, want, Some(&add))?;
    Ok(b.map(|b| vec![make_batch(schema, b.columns)]))
}

/// count(*) and count(key) GROUP BY one text column: whole blocks by their per-value counts.
fn counts_by_value(
    scan: &Plan,
    filter: FilterNode<'_>,
    whole: (i64, i64),
    key: usize,
    group: &[Expr],
    aggs: &[AggCall],
    schema: &[OutCol],
) -> SqlResult<Option<Vec<Batch>>> {
    let cols = [StatCol::Counts(key)];
    let totals = Mutex::new(BlockTotals::default());
    let want = StatsWanted { cols: &cols, whole, by: None, totals: &totals };
    let Some(b) = aggregate_taking_stats(scan, filter, group, aggs, want, None)? else { return Ok(None) };
    let t = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    // The groups read as rows, then what the statistics add (NULL keys: the blocks' rows
    // without a value, which only count(*) counts).
    let mut keys: Vec<Option<String>> = Vec::new();
    let mut counts: Vec<Vec<i64>> = Vec::new();
    let mut at: std::collections::HashMap<Option<String>, usize> = Default::default();
    let kc = &b.columns[0];
    for r in 0..b.num_rows() {
        let k = match &kc.values {
            Values::Text(v) if kc.is_valid(r) => Some(v.get(r).to_string()),
            _ => None,
        };
        let row = b.columns[1..]
            .iter()
            .map(|c| match &c.values {
                Values::Int64(v) => v[r],
                _ => 0,
            })
            .collect();
        at.insert(k.clone(), keys.len());
        keys.push(k);
        counts.push(row);
    }
    let present = t.cols.get(&key);
    let nulls = t.rows - present.map_or(0, |c| c.present);
    let mut add = |k: Option<String>, n: u64| {
        let i = *at.entry(k.clone()).or_insert_with(|| {
            keys.push(k.clone());
            counts.push(vec![0; aggs.len()]);
            keys.len() - 1
        });
        for (ai, a) in aggs.iter().enumerate() {
            if a.func == AggFunc::CountStar || k.is_some() {
                counts[i][ai] += n as i64;
            }
        }
    };
    for (v, &n) in present.map(|c| &c.counts).into_iter().flatten() {
        add(Some(v.clone()), n);
    }
    if nulls > 0 {
        add(None, nulls);
    }
    let mut columns = Vec::with_capacity(1 + aggs.len());
    let key_vals: Vec<Scalar> = keys.into_iter().map(|k| k.map_or(Scalar::Null, Scalar::Text)).collect();
    columns.push(crate::query::expr::scalars_to_column(&key_vals, group[0].ty())?);
    for ai in 0..aggs.len() {
        columns.push(Column::new(Values::Int64(counts.iter().map(|c| c[ai]).collect())));
    }
    Ok(Some(vec![make_batch(schema, columns)]))
}
