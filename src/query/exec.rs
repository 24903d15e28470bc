//! The execution of physical plans ([`super::plan::Plan`]) over column batches ([`run`]).
//!
//! Scans prune before decoding anything: datastore files outside the time range are skipped
//! whole, then blocks by their `time` min/max; only the columns the query uses are decoded.
//! [`ScanStats`] counts what was pruned, for EXPLAIN ANALYZE.

use std::sync::atomic::Ordering;

use super::agg::aggregate;
use super::error::{SqlError, SqlResult};
use super::expr::{Expr, eval};
use super::func::scalar_cmp;
use super::guard;
use super::plan::{Figures, OutCol, Plan, Profile, SetOp, Source};
use super::scalar::Scalar;
use super::types::SqlType;
use crate::batch::{Batch, Column, Field, Values};
use crate::table::store_key_bytes;

mod ahead;
mod cutoff;
mod join;
mod parallel;
mod scan;
pub(crate) mod sort;
mod stats;
mod topn;

use join::*;
use scan::*;
use sort::*;

pub(crate) use sort::{ColOrder, sort_rows};

fn take_batch(b: &Batch, idx: &[u32]) -> Batch {
    b.take(idx)
}

thread_local! {
    static PROFILE: std::cell::RefCell<Option<Profile>> = const { std::cell::RefCell::new(None) };
}

/// Runs `plan` and records each operator's time and rows (EXPLAIN ANALYZE).
pub(crate) fn run_profiled(plan: &Plan) -> SqlResult<(Vec<Batch>, Profile)> {
    let outer = PROFILE.with(|p| p.replace(Some(Profile::new())));
    let r = run(plan);
    let prof = PROFILE.with(|p| p.replace(outer)).unwrap_or_default();
    r.map(|b| (b, prof))
}

/// Runs a plan to completion. Each operator's result counts against the query's working
/// memory while it is held (its inputs are released once it is built); see [`guard`].
pub(crate) fn run(plan: &Plan) -> SqlResult<Vec<Batch>> {
    guard::check_depth()?;
    let before = guard::live();
    let window = guard::open_window();
    let t = std::time::Instant::now();
    let out = match run_node(plan) {
        Ok(out) => out,
        Err(e) => {
            guard::close_window(window);
            return Err(e);
        }
    };
    let held = guard::hold(before, guard::size_of(&out));
    let peak = guard::close_window(window);
    PROFILE.with(|p| {
        if let Some(prof) = p.borrow_mut().as_mut() {
            let rows = out.iter().map(|b| b.num_rows()).sum();
            let memory = peak.saturating_sub(before);
            prof.insert(plan as *const Plan as usize, Figures { time: t.elapsed(), rows, memory });
        }
    });
    held?;
    Ok(out)
}

/// Adds `time` and `rows` to `plan`'s entry of the profile being kept (EXPLAIN ANALYZE).
fn add_profile(plan: &Plan, time: std::time::Duration, rows: usize) {
    PROFILE.with(|p| {
        if let Some(prof) = p.borrow_mut().as_mut() {
            let e = prof.entry(plan as *const Plan as usize).or_default();
            e.time += time;
            e.rows += rows;
        }
    });
}

/// Batches of `plan` one at a time, without materializing them, where the plan is a channel
/// or datastore scan under filters and projections; `None` for other plans.
type Pull<'a> = Box<dyn FnMut() -> SqlResult<Option<Batch>> + 'a>;

fn pull(plan: &Plan) -> SqlResult<Option<Pull<'_>>> {
    Ok(pull_node(plan)?.map(|next| profiled(plan, next)))
}

/// `next`, its time (its inputs' included) and rows added to `plan`'s profile when one is kept
/// (EXPLAIN ANALYZE), as [`run`] does for materialized nodes.
fn profiled<'a>(plan: &'a Plan, mut next: Pull<'a>) -> Pull<'a> {
    if PROFILE.with(|p| p.borrow().is_none()) {
        return next;
    }
    let key = plan as *const Plan as usize;
    Box::new(move || {
        let t = std::time::Instant::now();
        let r = next();
        let rows = match &r {
            Ok(Some(b)) => b.num_rows(),
            _ => 0,
        };
        PROFILE.with(|p| {
            if let Some(prof) = p.borrow_mut().as_mut() {
                let e = prof.entry(key).or_default();
                e.time += t.elapsed();
                e.rows += rows;
            }
        });
        r
    })
}

fn pull_node(plan: &Plan) -> SqlResult<Option<Pull<'_>>> {
    if let Some(p) = ahead::read_ahead(plan) {
        return Ok(Some(p));
    }
    Ok(match plan {
        Plan::Scan { source: Source::Channel(ch), schema, used, time_range, stats, .. } => {
            let mut reader = ChannelReader::new(ch, *time_range);
            Some(Box::new(move || {
                guard::check()?;
                let Some(m) = reader.next()? else { return Ok(None) };
                stats.rows_scanned.fetch_add(m.len() as u64, Ordering::Relaxed);
                Ok(Some(channel_batch(&m, schema, used)))
            }))
        }
        Plan::Scan { source: Source::Datastore(ds), schema, used, time_range, tags, ranges, stats } => {
            let mut reader = DatastoreReader::new(ds, schema, used, *time_range, tags, ranges, stats);
            Some(Box::new(move || reader.next()))
        }
        Plan::Filter { input, pred } => pull(input)?.map(|next| filtered_pull(next, pred)),
        Plan::Project { input, exprs, schema } => pull(input)?.map(|mut next| -> Pull<'_> {
            Box::new(move || {
                let Some(b) = next()? else { return Ok(None) };
                let columns = exprs.iter().map(|e| eval(e, &b)).collect::<SqlResult<Vec<_>>>()?;
                Ok(Some(make_batch(schema, columns)))
            })
        }),
        _ => None,
    })
}

/// The latest row per series straight from file order, when the plan asks for it: the first
/// row per text column `k` of a datastore by `time` descending (`DISTINCT ON (k) … ORDER BY
/// k, time DESC`), over the whole datastore. Returns the projected candidate rows (a superset
/// of each series' latest row, see [`scan::last_per_series`]), or `None` when the plan is
/// another shape.
fn latest_per_series(input: &Plan, keys: &[usize], by: usize, desc: bool) -> Option<SqlResult<Vec<Batch>>> {
    let (k, t) = input.latest_per_series_columns(keys, by, desc)?;
    let Plan::Project { input: scan, exprs, schema: out } = input else { return None };
    let Plan::Scan { source: Source::Datastore(ds), schema, used, stats, .. } = &**scan else { return None };
    Some((|| {
        let candidates = last_per_series(ds, schema, used, k, t, stats)?;
        let mut projected = Vec::with_capacity(candidates.len());
        for b in &candidates {
            let columns = exprs.iter().map(|e| eval(e, b)).collect::<SqlResult<Vec<_>>>()?;
            projected.push(make_batch(out, columns));
        }
        Ok(projected)
    })())
}

/// Rows of `b` where `pred` is true.
/// The batches of `next` that `pred` leaves rows of, with only those rows.
fn filtered_pull<'a>(mut next: Pull<'a>, pred: &'a Expr) -> Pull<'a> {
    Box::new(move || {
        while let Some(b) = next()? {
            let b = filter_batch(b, pred)?;
            if b.num_rows() > 0 {
                return Ok(Some(b));
            }
        }
        Ok(None)
    })
}

fn filter_batch(b: Batch, pred: &Expr) -> SqlResult<Batch> {
    let c = eval(pred, &b)?;
    let Values::Bool(v) = &c.values else {
        return Err(SqlError::mismatch("argument of WHERE must be type boolean"));
    };
    // Most batches of a time filter pass whole: no selection is made for them.
    if c.validity.is_none() && v.iter().all(|&x| x) {
        return Ok(b);
    }
    let idx: Vec<u32> = (0..b.num_rows()).filter(|&i| v[i] && c.is_valid(i)).map(|i| i as u32).collect();
    Ok(if idx.len() == b.num_rows() { b } else { take_batch(&b, &idx) })
}

fn run_node(plan: &Plan) -> SqlResult<Vec<Batch>> {
    match plan {
        Plan::Scan { source, schema, used, time_range, tags, ranges, stats } => {
            scan(source, schema, used, *time_range, tags, ranges, stats)
        }
        Plan::Filter { input, pred } => {
            let mut out = Vec::new();
            for b in run(input)? {
                let c = eval(pred, &b)?;
                let Values::Bool(v) = &c.values else {
                    return Err(SqlError::mismatch("argument of WHERE must be type boolean"));
                };
                let idx: Vec<u32> = (0..b.num_rows()).filter(|&i| v[i] && c.is_valid(i)).map(|i| i as u32).collect();
                if idx.len() == b.num_rows() {
                    out.push(b);
                } else if !idx.is_empty() {
                    out.push(take_batch(&b, &idx));
                }
            }
            Ok(out)
        }
        Plan::Project { input, exprs, schema } => {
            let inputs = run(input)?;
            let mut out = Vec::with_capacity(inputs.len());
            for b in &inputs {
                let columns = exprs.iter().map(|e| eval(e, b)).collect::<SqlResult<Vec<_>>>()?;
                let b = make_batch(schema, columns);
                // Each projected batch counts as it is made (its input is still held).
                guard::charge(b.approx_bytes())?;
                out.push(b);
            }
            Ok(out)
        }
        Plan::Aggregate { input, group, aggs, schema } => {
            // max(time) and last(x, time) per series: only each series' last rows count.
            if let (Some((k, t)), Plan::Scan { source: Source::Datastore(ds), schema: ss, used, stats, .. }) =
                (input.latest_per_series_aggregate(group, aggs), &**input)
            {
                let mut candidates = last_per_series(ds, ss, used, k, t, stats)?.into_iter();
                let b = aggregate(&mut || Ok(candidates.next()), group, aggs)?;
                return Ok(vec![make_batch(schema, b.columns)]);
            }
            // Whole blocks inside the range answered from their statistics.
            if let Some(out) = stats::aggregate_from_stats(input, group, aggs, schema)? {
                return Ok(out);
            }
            // Over a datastore scan, on every core.
            if let Some(b) = parallel::aggregate(input, group, aggs, None, None)? {
                return Ok(vec![make_batch(schema, b.columns)]);
            }
            // Over a channel or datastore scan the batches stream: only one file's are held.
            let b = match pull(input)? {
                Some(mut next) => aggregate(&mut *next, group, aggs)?,
                None => {
                    let mut inputs = run(input)?.into_iter();
                    aggregate(&mut || Ok(inputs.next()), group, aggs)?
                }
            };
            Ok(vec![make_batch(schema, b.columns)])
        }
        Plan::Sort { input, keys } => {
            let all = concat_checked(run(input)?, &input.schema())?;
            let sorted = (|| {
                let cols = keys
                    .iter()
                    .map(|k| {
                        guard::check()?;
                        eval(&k.expr, &all)
                    })
                    .collect::<SqlResult<Vec<_>>>()?;
                let order: Vec<ColOrder> = keys
                    .iter()
                    .map(|k| ColOrder { ty: k.expr.ty(), desc: k.desc, nulls_first: k.nulls_first })
                    .collect();
                // The sort keys, the order and the sorted copy.
                guard::charge(guard::size_of(std::slice::from_ref(&all)) + 4 * all.num_rows())?;
                let idx = sort_rows(&cols, &order, all.num_rows())?;
                drop_large(cols, all.num_rows());
                take_chunked(&all, &idx)
            })();
            let rows = all.num_rows();
            drop_large(all, rows);
            sorted
        }
        Plan::Expand { input, arg, int_elems, schema } => {
            let mut out = Vec::new();
            for b in run(input)? {
                let a = eval(arg, &b)?;
                let texts = super::expr::text_of(&a, arg.ty());
                let mut idx = Vec::new();
                let (mut elems, mut ords, mut recs) = (Vec::new(), Vec::new(), Vec::new());
                for r in 0..b.num_rows() {
                    if !a.is_valid(r) {
                        continue;
                    }
                    let t = texts.get(r);
                    let items = if t.trim_start().starts_with('{') {
                        super::func::parse_text_array(t)?
                    } else {
                        t.split_whitespace().map(str::to_string).collect()
                    };
                    for (k, el) in items.into_iter().enumerate() {
                        idx.push(r as u32);
                        recs.push(Scalar::Text(format!("({el},{})", k + 1)));
                        ords.push(Scalar::Int(k as i64 + 1));
                        elems.push(if *int_elems {
                            Scalar::Int(el.trim().parse().map_err(|_| SqlError::invalid_input("integer", &el))?)
                        } else {
                            Scalar::Text(el)
                        });
                    }
                }
                let mut columns = b.take(&idx).columns;
                let n = schema.len();
                columns.push(super::expr::scalars_to_column(&elems, schema[n - 3].ty)?);
                columns.push(super::expr::scalars_to_column(&ords, SqlType::Int4)?);
                columns.push(super::expr::scalars_to_column(&recs, SqlType::Text)?);
                out.push(make_batch(schema, columns));
            }
            Ok(out)
        }
        Plan::Apply { input, calls, env, schema } => {
            let mut out = Vec::new();
            let mut cache: Vec<std::collections::HashMap<Vec<u8>, Vec<Scalar>>> = vec![Default::default(); calls.len()];
            for b in run(input)? {
                let mut columns = b.columns.clone();
                for (k, call) in calls.iter().enumerate() {
                    let keys: Vec<usize> = call.outer.iter().map(|o| o.0).collect();
                    let x = match &call.kind {
                        super::plan::ApplyKind::In(x) => Some((eval(x, &b)?, x.ty())),
                        _ => None,
                    };
                    let mut vals = Vec::with_capacity(b.num_rows());
                    for r in 0..b.num_rows() {
                        guard::check()?;
                        let key = store_key_bytes(&b, &keys, r);
                        if !cache[k].contains_key(&key) {
                            let outer: Vec<Scalar> =
                                call.outer.iter().map(|o| Scalar::from_column(&b.columns[o.0], o.3, r)).collect();
                            let (schema, rows) = (env.rebind)(call, outer)?;
                            cache[k].insert(key.clone(), correlated_rows(&call.kind, &schema, &rows)?);
                        }
                        let rows = &cache[k][&key];
                        let xv = x.as_ref().map(|(c, t)| Scalar::from_column(c, *t, r));
                        vals.push(correlated_value(&call.kind, xv, rows));
                    }
                    columns.push(super::expr::scalars_to_column(&vals, call.ty)?);
                }
                out.push(make_batch(schema, columns));
            }
            Ok(out)
        }
        Plan::Window { input, calls, schema } => {
            let all = concat_charged(run(input)?, &input.schema())?;
            // Partitions, orders and the new columns: about a copy of the input.
            guard::charge(guard::size_of(std::slice::from_ref(&all)) + 16 * all.num_rows())?;
            let mut columns = all.columns.clone();
            columns.extend(super::window::compute(&all, calls)?);
            Ok(vec![make_batch(schema, columns)])
        }
        Plan::Limit { input, limit: Some(limit), offset }
            if let Plan::Sort { input: sorted, keys } = &**input
                && limit.saturating_add(*offset) <= topn::MAX_KEPT =>
        {
            topn::top_n(sorted, keys, *limit, *offset)
        }
        Plan::Limit { input, limit, offset } => {
            let mut skip = *offset as usize;
            let mut left = limit.map_or(usize::MAX, |l| l as usize);
            let mut out = Vec::new();
            for b in run(input)? {
                if left == 0 {
                    break;
                }
                let n = b.num_rows();
                if skip >= n {
                    skip -= n;
                    continue;
                }
                let end = skip.saturating_add(left).min(n);
                let idx: Vec<u32> = (skip as u32..end as u32).collect();
                left -= end - skip;
                skip = 0;
                out.push(take_batch(&b, &idx));
            }
            Ok(out)
        }
        Plan::Join { left, right, kind, left_keys, right_keys, residual, schema } => {
            hash_join(left, right, *kind, left_keys, right_keys, residual.as_ref(), schema)
        }
        Plan::SetOp { left, right, op, all, schema } => set_op(left, right, *op, *all, schema),
        Plan::TopPerGroup { input, keys, by, desc, nulls_first } => {
            let schema = input.schema();
            let inputs = match latest_per_series(input, keys, *by, *desc) {
                Some(candidates) => candidates?,
                None => run(input)?,
            };
            let all = concat_charged(inputs, &schema)?;
            guard::charge(guard::size_of(std::slice::from_ref(&all)))?;
            let idx = top_per_group(&all, keys, *by, schema[*by].ty, *desc, *nulls_first);
            Ok(vec![take_batch(&all, &idx)])
        }
        Plan::DistinctOn { input, keys } => {
            let all = concat_charged(run(input)?, &input.schema())?;
            // The set of keys seen and the copy kept: about two copies of the input.
            guard::charge(2 * guard::size_of(std::slice::from_ref(&all)) + 48 * all.num_rows())?;
            let mut seen = std::collections::HashSet::new();
            let idx: Vec<u32> = (0..all.num_rows())
                .filter(|&r| seen.insert(store_key_bytes(&all, keys, r)))
                .map(|r| r as u32)
                .collect();
            Ok(vec![take_batch(&all, &idx)])
        }
        Plan::Distinct { input } => {
            let all = concat_charged(run(input)?, &input.schema())?;
            guard::charge(2 * guard::size_of(std::slice::from_ref(&all)) + 48 * all.num_rows())?;
            let positions: Vec<usize> = (0..all.columns.len()).collect();
            let mut seen = std::collections::HashSet::new();
            let idx: Vec<u32> = (0..all.num_rows())
                .filter(|&r| seen.insert(store_key_bytes(&all, &positions, r)))
                .map(|r| r as u32)
                .collect();
            Ok(vec![take_batch(&all, &idx)])
        }
    }
}

/// A correlated subquery's rows for one outer row, as the values of its first column (one
/// NULL per row for EXISTS of a query without columns).
fn correlated_rows(kind: &super::plan::ApplyKind, schema: &[OutCol], rows: &Batch) -> SqlResult<Vec<Scalar>> {
    use super::plan::ApplyKind;
    let n = rows.num_rows();
    match kind {
        ApplyKind::Scalar | ApplyKind::In(_) if schema.len() != 1 => {
            Err(SqlError::syntax("subquery must return only one column"))
        }
        ApplyKind::Scalar if n > 1 => {
            Err(SqlError::new("21000", "more than one row returned by a subquery used as an expression"))
        }
        ApplyKind::Exists if schema.is_empty() => Ok(vec![Scalar::Null; n]),
        _ => Ok((0..n).map(|i| Scalar::from_column(&rows.columns[0], schema[0].ty, i)).collect()),
    }
}

/// The value of a correlated subquery expression for one outer row: the scalar, EXISTS, or
/// `x IN (…)` with SQL's NULL rules.
fn correlated_value(kind: &super::plan::ApplyKind, x: Option<Scalar>, rows: &[Scalar]) -> Scalar {
    use super::plan::ApplyKind;
    match kind {
        ApplyKind::Exists => Scalar::Bool(!rows.is_empty()),
        ApplyKind::Scalar => rows.first().cloned().unwrap_or(Scalar::Null),
        ApplyKind::In(_) => {
            let x = x.unwrap_or(Scalar::Null);
            if rows.is_empty() {
                return Scalar::Bool(false);
            }
            if x.is_null() {
                return Scalar::Null;
            }
            let mut saw_null = false;
            for v in rows {
                if v.is_null() {
                    saw_null = true;
                } else if scalar_cmp(&x, v) == Some(std::cmp::Ordering::Equal) {
                    return Scalar::Bool(true);
                }
            }
            if saw_null { Scalar::Null } else { Scalar::Bool(false) }
        }
    }
}

/// Column values at `idx`, NULL where the index is `None` (the missing side of an outer join).
fn take_opt(c: &Column, idx: &[Option<u32>]) -> Column {
    if c.is_empty() {
        return Column::nulls(c.data_type(), idx.len());
    }
    let plain: Vec<u32> = idx.iter().map(|x| x.unwrap_or(0)).collect();
    let mut out = c.take(&plain);
    if idx.iter().any(|x| x.is_none()) {
        let mut v = out.validity.take().unwrap_or_else(|| crate::batch::Bitmap::new_set(idx.len()));
        for (k, x) in idx.iter().enumerate() {
            if x.is_none() {
                v.set(k, false);
            }
        }
        out.validity = Some(v);
    }
    out
}

fn set_op(left: &Plan, right: &Plan, op: SetOp, all: bool, schema: &[OutCol]) -> SqlResult<Vec<Batch>> {
    use std::collections::{HashMap, HashSet};
    let l = concat_checked(run(left)?, schema)?;
    let r = concat_checked(run(right)?, schema)?;
    let cols: Vec<usize> = (0..schema.len()).collect();
    let key = |b: &Batch, i: usize| store_key_bytes(b, &cols, i);
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    if op != SetOp::Union {
        for j in 0..r.num_rows() {
            *counts.entry(key(&r, j)).or_default() += 1;
        }
    }
    let keep: Vec<u32> = match op {
        SetOp::Union => {
            if all {
                return Ok(vec![l, r]);
            }
            let both = concat_checked(vec![l, r], schema)?;
            let mut seen = HashSet::new();
            let idx: Vec<u32> =
                (0..both.num_rows()).filter(|&i| seen.insert(key(&both, i))).map(|i| i as u32).collect();
            return Ok(vec![take_batch(&both, &idx)]);
        }
        SetOp::Intersect => {
            let mut seen = HashSet::new();
            (0..l.num_rows())
                .filter(|&i| {
                    let k = key(&l, i);
                    match counts.get_mut(&k) {
                        Some(c) if *c > 0 && (all || seen.insert(k)) => {
                            *c -= 1;
                            true
                        }
                        _ => false,
                    }
                })
                .map(|i| i as u32)
                .collect()
        }
        SetOp::Except => {
            let mut seen = HashSet::new();
            (0..l.num_rows())
                .filter(|&i| {
                    let k = key(&l, i);
                    match counts.get_mut(&k) {
                        Some(c) if *c > 0 => {
                            if all {
                                *c -= 1;
                            }
                            false
                        }
                        _ => all || seen.insert(k),
                    }
                })
                .map(|i| i as u32)
                .collect()
        }
    };
    Ok(vec![take_batch(&l, &keep)])
}

/// The stand-in for a column the query never reads: NULLs stored as one byte per row (plus the
/// validity bitmap) whatever the column's type, so unread columns cost little to carry
/// through filters and joins. Nothing evaluates it: the binder marks every column an
/// expression reads, and scans decode those.
fn unread(n: usize) -> Column {
    Column::nulls(crate::batch::DataType::Bool, n)
}

fn make_batch(schema: &[OutCol], columns: Vec<Column>) -> Batch {
    let fields =
        schema.iter().zip(&columns).map(|(s, c)| Field { name: s.name.clone(), data_type: c.data_type() }).collect();
    Batch { fields, columns }
}

/// [`concat`], charged before the copy is made and answering cancel between batches.
fn concat_checked(batches: Vec<Batch>, schema: &[OutCol]) -> SqlResult<Batch> {
    if batches.len() <= 1 {
        return Ok(concat(batches, schema));
    }
    guard::charge(guard::size_of(&batches))?;
    let mut it = batches.into_iter();
    let Some(Batch { fields, mut columns }) = it.next() else { unreachable!("two batches or more") };
    for b in it {
        guard::check()?;
        for (c, o) in columns.iter_mut().zip(&b.columns) {
            c.extend(o);
        }
    }
    // Named as the schema says (the key batches of a join have no schema: their own names).
    if schema.is_empty() { Ok(Batch { fields, columns }) } else { Ok(make_batch(schema, columns)) }
}

/// Drops `x` (of `rows` rows) on another thread when it is large, so that the statement answers (a cancel, an
/// error, its result) without waiting for the memory to be returned.
fn drop_large<T: Send + 'static>(x: T, rows: usize) {
    if rows >= 65_536 {
        guard::free_elsewhere(x);
    }
}

/// The rows of `all` at `idx`, in batches of up to 64k rows, answering cancel between them.
fn take_chunked(all: &Batch, idx: &[u32]) -> SqlResult<Vec<Batch>> {
    const CHUNK: usize = 65_536;
    let mut out = Vec::with_capacity(idx.len().div_ceil(CHUNK).max(1));
    for at in (0..idx.len().max(1)).step_by(CHUNK) {
        guard::check()?;
        out.push(take_batch(all, &idx[at..(at + CHUNK).min(idx.len())]));
    }
    Ok(out)
}

/// [`concat`], with the copy charged to the query before it is made.
fn concat_charged(batches: Vec<Batch>, schema: &[OutCol]) -> SqlResult<Batch> {
    if batches.len() > 1 {
        guard::charge(guard::size_of(&batches))?;
    }
    Ok(concat(batches, schema))
}

/// All batches as one (an empty batch of the schema's types when there are none).
pub(crate) fn concat(batches: Vec<Batch>, schema: &[OutCol]) -> Batch {
    if batches.len() == 1 {
        return batches.into_iter().next().expect("one batch");
    }
    if batches.is_empty() {
        let columns: Vec<Column> =
            schema.iter().map(|c| Column::nulls(c.ty.physical().unwrap_or(crate::batch::DataType::Text), 0)).collect();
        return make_batch(schema, columns);
    }
    // Positional concatenation: every batch has the schema's columns in order.
    let mut columns: Vec<Column> = batches[0].columns.clone();
    for b in &batches[1..] {
        for (c, o) in columns.iter_mut().zip(&b.columns) {
            c.extend(o);
        }
    }
    make_batch(schema, columns)
}
