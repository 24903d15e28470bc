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
use super::plan::{JoinKind, OutCol, Plan, Profile, ScanStats, SetOp, Source};
use super::scalar::Scalar;
use super::types::SqlType;
use crate::batch::{Batch, Column, Field, StrVec, Values};
use crate::datastore::DsFile;
use crate::table::{append_key_bytes, store_key_bytes};
use crate::util::time::MICROS_PER_DAY;

/// Threads that decode one large file's blocks (the machine's cores, at most 8).
static PARALLELISM: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8));

fn take_batch(b: &Batch, idx: &[u32]) -> Batch {
    b.take(idx)
}

thread_local! {
    static PROFILE: std::cell::RefCell<Option<Profile>> = const { std::cell::RefCell::new(None) };
}

/// Runs `plan` and records each operator's time and rows (EXPLAIN ANALYZE).
pub fn run_profiled(plan: &Plan) -> SqlResult<(Vec<Batch>, Profile)> {
    let outer = PROFILE.with(|p| p.replace(Some(Profile::new())));
    let r = run(plan);
    let prof = PROFILE.with(|p| p.replace(outer)).unwrap_or_default();
    r.map(|b| (b, prof))
}

/// Runs a plan to completion. Each operator's result counts against the query's working
/// memory while it is held (its inputs are released once it is built); see [`guard`].
pub fn run(plan: &Plan) -> SqlResult<Vec<Batch>> {
    guard::check_depth()?;
    let before = guard::live();
    let t = std::time::Instant::now();
    let out = run_node(plan)?;
    PROFILE.with(|p| {
        if let Some(prof) = p.borrow_mut().as_mut() {
            let rows = out.iter().map(|b| b.num_rows()).sum();
            prof.insert(plan as *const Plan as usize, (t.elapsed(), rows));
        }
    });
    guard::hold(before, guard::size_of(&out))?;
    Ok(out)
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
                e.0 += t.elapsed();
                e.1 += rows;
            }
        });
        r
    })
}

fn pull_node(plan: &Plan) -> SqlResult<Option<Pull<'_>>> {
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
        Plan::Filter { input, pred } => pull(input)?.map(|mut next| -> Pull<'_> {
            Box::new(move || {
                while let Some(b) = next()? {
                    let b = filter_batch(b, pred)?;
                    if b.num_rows() > 0 {
                        return Ok(Some(b));
                    }
                }
                Ok(None)
            })
        }),
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

/// Rows of `b` where `pred` is true.
fn filter_batch(b: Batch, pred: &Expr) -> SqlResult<Batch> {
    let c = eval(pred, &b)?;
    let Values::Bool(v) = &c.values else {
        return Err(SqlError::mismatch("argument of WHERE must be type boolean"));
    };
    let idx: Vec<u32> = (0..b.num_rows()).filter(|&i| v[i] && c.is_valid(i)).map(|i| i as u32).collect();
    Ok(if idx.len() == b.num_rows() { b } else { take_batch(&b, &idx) })
}

/// Messages of a channel received in a time range, a chunk at a time.
struct ChannelReader<'a> {
    ch: &'a crate::channel::Channel,
    next: u64,
    /// The channel's end when the scan started: later messages are not seen.
    end: u64,
    range: (i64, i64),
}

/// Messages a channel scan reads at once.
const CHANNEL_CHUNK: usize = 16_384;

impl<'a> ChannelReader<'a> {
    fn new(ch: &'a crate::channel::Channel, range: (i64, i64)) -> ChannelReader<'a> {
        let end = ch.next_offset();
        // Arrival times never decrease along offsets: find the first message of the range.
        let (mut lo, mut hi) = (0u64, end);
        if range.0 != i64::MIN {
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match ch.read_from(mid, 1).ok().and_then(|m| Some((m.first_offset, *m.received_at.first()?))) {
                    Some((at, t)) if t < range.0 => lo = at.max(mid) + 1,
                    Some(_) => hi = mid,
                    None => break,
                }
            }
        }
        ChannelReader { ch, next: lo, end, range }
    }

    fn next(&mut self) -> SqlResult<Option<crate::channel::Messages>> {
        while self.next < self.end {
            let m = self.ch.read_from(self.next, CHANNEL_CHUNK.min((self.end - self.next) as usize))?;
            if m.is_empty() {
                return Ok(None);
            }
            self.next = m.first_offset + m.len() as u64;
            let a = m.received_at.partition_point(|&t| t < self.range.0);
            let b = m.received_at.partition_point(|&t| t < self.range.1);
            if b < m.len() {
                self.end = self.next; // past the range: this is the last chunk
            }
            if a == 0 && b == m.len() {
                return Ok(Some(m));
            }
            if a < b {
                let mut part =
                    crate::channel::Messages { first_offset: m.first_offset + a as u64, ..Default::default() };
                part.extend_range(&m, a, b);
                return Ok(Some(part));
            }
        }
        Ok(None)
    }
}

/// A channel scan's batch of `m`: only the columns the query reads are filled.
fn channel_batch(m: &crate::channel::Messages, schema: &[OutCol], used: &[bool]) -> Batch {
    let n = m.len();
    let want = |i: usize| used.get(i).copied().unwrap_or(true);
    let columns = vec![
        if want(0) { Column::new(Values::Timestamp(m.received_at.clone())) } else { unread(n) },
        if want(1) { Column::new(Values::Text(m.ids.clone())) } else { unread(n) },
        if want(2) { Column::new(Values::Text(m.topics.clone())) } else { unread(n) },
        if want(3) {
            let payload: StrVec = m.payloads.iter().map(|p| std::str::from_utf8(p).unwrap_or("")).collect();
            let mut valid = crate::batch::Bitmap::new_set(n);
            for (i, p) in m.payloads.iter().enumerate() {
                if std::str::from_utf8(p).is_err() {
                    valid.set(i, false);
                }
            }
            Column::with_validity(Values::Text(payload), Some(valid))
        } else {
            unread(n)
        },
        if want(4) {
            Column::new(Values::Int64((0..n as i64).map(|i| m.first_offset as i64 + i).collect()))
        } else {
            unread(n)
        },
    ];
    make_batch(schema, columns)
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
                out.push(make_batch(schema, columns));
            }
            Ok(out)
        }
        Plan::Aggregate { input, group, aggs, schema } => {
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
            let binder =
                super::bind::Binder::new(&env.engine, env.ctx, &env.params).with_datasets(env.datasets.clone());
            let mut out = Vec::new();
            let mut cache: Vec<std::collections::HashMap<Vec<u8>, Vec<Scalar>>> = vec![Default::default(); calls.len()];
            for b in run(input)? {
                let mut columns = b.columns.clone();
                for (k, call) in calls.iter().enumerate() {
                    let keys: Vec<usize> = call.outer.iter().map(|o| o.0).collect();
                    let x = match &call.kind {
                        super::bind::ApplyKind::In(x) => Some((eval(x, &b)?, x.ty())),
                        _ => None,
                    };
                    let mut vals = Vec::with_capacity(b.num_rows());
                    for r in 0..b.num_rows() {
                        guard::check()?;
                        let key = store_key_bytes(&b, &keys, r);
                        if !cache[k].contains_key(&key) {
                            let outer: Vec<Scalar> =
                                call.outer.iter().map(|o| Scalar::from_column(&b.columns[o.0], o.3, r)).collect();
                            let (schema, rows) = binder.run_correlated(call, outer)?;
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
            let all = concat_charged(run(input)?, &schema)?;
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

/// How one sort key orders its column.
#[derive(Clone, Copy, Debug)]
pub struct ColOrder {
    pub ty: SqlType,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Compares two non-NULL values of one column, ascending (floats: NaN sorts last, as in
/// PostgreSQL; text by bytes, the C collation; intervals by length).
pub fn cmp_values(c: &Column, ty: SqlType, a: usize, b: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match &c.values {
        Values::Int64(v) | Values::Timestamp(v) => v[a].cmp(&v[b]),
        Values::Float64(v) => v[a].partial_cmp(&v[b]).unwrap_or_else(|| v[a].is_nan().cmp(&v[b].is_nan())),
        Values::Text(_) if ty == SqlType::Interval => {
            scalar_cmp(&Scalar::from_column(c, ty, a), &Scalar::from_column(c, ty, b)).unwrap_or(Ordering::Equal)
        }
        Values::Text(v) => v.get(a).as_bytes().cmp(v.get(b).as_bytes()),
        Values::Bool(v) => v[a].cmp(&v[b]),
    }
}

/// Compares rows `a` and `b` of `c` under `o`, NULLs placed as `o` says.
pub fn cmp_rows(c: &Column, o: &ColOrder, a: usize, b: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (c.is_valid(a), c.is_valid(b)) {
        (false, false) => Ordering::Equal,
        (false, true) => {
            if o.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (true, false) => {
            if o.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (true, true) => {
            let x = cmp_values(c, o.ty, a, b);
            if o.desc { x.reverse() } else { x }
        }
    }
}

/// The row order of `n` rows sorted by `cols` under `order` (stable: ties keep input order).
/// Row numbers in sort order. A cancel or timeout stops it within a few milliseconds: the
/// comparisons then all answer "equal", which ends the sort in one pass, and it fails.
pub fn sort_rows(cols: &[Column], order: &[ColOrder], n: usize) -> SqlResult<Vec<u32>> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let compared = std::cell::Cell::new(0u32);
    let stopped = std::cell::Cell::new(false);
    let go_on = || {
        let k = compared.get().wrapping_add(1);
        compared.set(k);
        if k.is_multiple_of(65_536) && guard::check().is_err() {
            stopped.set(true);
        }
        !stopped.get()
    };
    // One integer or timestamp key without NULLs: sort the values themselves.
    if let ([c], [o]) = (cols, order)
        && c.validity.is_none()
        && let Values::Int64(v) | Values::Timestamp(v) = &c.values
    {
        if o.desc {
            idx.sort_by(|&a, &b| if go_on() { v[b as usize].cmp(&v[a as usize]) } else { std::cmp::Ordering::Equal });
        } else {
            idx.sort_by(|&a, &b| if go_on() { v[a as usize].cmp(&v[b as usize]) } else { std::cmp::Ordering::Equal });
        }
        guard::check()?;
        return Ok(idx);
    }
    idx.sort_by(|&a, &b| {
        if !go_on() {
            return std::cmp::Ordering::Equal;
        }
        for (c, o) in cols.iter().zip(order) {
            let x = cmp_rows(c, o, a as usize, b as usize);
            if x != std::cmp::Ordering::Equal {
                return x;
            }
        }
        std::cmp::Ordering::Equal
    });
    guard::check()?;
    Ok(idx)
}

/// A correlated subquery's rows for one outer row, as the values of its first column (one
/// NULL per row for EXISTS of a query without columns).
fn correlated_rows(kind: &super::bind::ApplyKind, schema: &[OutCol], rows: &Batch) -> SqlResult<Vec<Scalar>> {
    use super::bind::ApplyKind;
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
fn correlated_value(kind: &super::bind::ApplyKind, x: Option<Scalar>, rows: &[Scalar]) -> Scalar {
    use super::bind::ApplyKind;
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

fn top_per_group(all: &Batch, keys: &[usize], by: usize, ty: SqlType, desc: bool, nulls_first: bool) -> Vec<u32> {
    use std::cmp::Ordering;
    use std::collections::HashMap;
    let c = &all.columns[by];
    let better = |a: usize, b: usize| -> bool {
        match (c.is_valid(a), c.is_valid(b)) {
            (false, false) => false,
            (false, true) => nulls_first,
            (true, false) => !nulls_first,
            (true, true) => {
                let o = cmp_values(c, ty, a, b);
                if desc { o == Ordering::Greater } else { o == Ordering::Less }
            }
        }
    };
    let mut slot: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut best: Vec<usize> = Vec::new();
    let mut prev: Option<(usize, usize)> = None; // (row, slot) of the previous row
    for r in 0..all.num_rows() {
        // Inputs grouped by series hit this often: same key as the previous row, no hashing.
        let s = match prev {
            Some((pr, ps)) if keys.iter().all(|&k| super::agg::same_value(&all.columns[k], pr, r)) => ps,
            _ => {
                let next = best.len();
                let s = *slot.entry(store_key_bytes(all, keys, r)).or_insert(next);
                if s == next {
                    best.push(r);
                }
                s
            }
        };
        if better(r, best[s]) {
            best[s] = r;
        }
        prev = Some((r, s));
    }
    let mut idx: Vec<u32> = best.into_iter().map(|r| r as u32).collect();
    idx.sort_unstable();
    idx
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

fn key_batch(cols: Vec<Column>) -> Batch {
    Batch {
        fields: cols.iter().enumerate().map(|(i, c)| Field::new(&format!("k{i}"), c.data_type())).collect(),
        columns: cols,
    }
}

fn hash_join(
    left: &Plan,
    right: &Plan,
    kind: JoinKind,
    left_keys: &[Expr],
    right_keys: &[Expr],
    residual: Option<&Expr>,
    schema: &[OutCol],
) -> SqlResult<Vec<Batch>> {
    let lbatches = run(left)?;
    // The right side and its keys, a batch at a time, then each as one batch.
    let mut rbatches = run(right)?;
    let rs = right.schema();
    if rbatches.is_empty() {
        rbatches.push(concat(Vec::new(), &rs));
    }
    let mut rkeys = Vec::with_capacity(rbatches.len());
    for b in &rbatches {
        guard::check()?;
        rkeys.push(key_batch(right_keys.iter().map(|e| eval(e, b)).collect::<SqlResult<_>>()?));
    }
    let rk = concat_checked(rkeys, &[])?;
    let r = concat_checked(rbatches, &rs)?;
    let joined = probe_join(&lbatches, &r, &rk, left, kind, left_keys, residual, schema);
    if joined.is_err() {
        // A cancelled join answers at once; its inputs are freed on another thread.
        let rows = r.num_rows();
        drop_large((lbatches, r, rk), rows);
    }
    joined
}

/// A join's matching row pairs (a left row, and a right row or none), with the room charged
/// for them.
#[derive(Default)]
struct Pairs {
    li: Vec<Option<u32>>,
    ri: Vec<Option<u32>>,
    /// Pairs charged so far; room is reserved (and charged) in steps.
    reserved: usize,
}

impl Pairs {
    /// Makes room for `more` pairs, charging the new total with `charge` first.
    fn grow(&mut self, more: usize, charge: impl Fn(usize) -> SqlResult<()>) -> SqlResult<()> {
        let need = self.li.len() + more;
        if need > self.reserved {
            let step = need.max(self.reserved + self.reserved / 2).max(4096);
            charge(step)?;
            self.li.reserve_exact(step - self.li.len());
            self.ri.reserve_exact(step - self.ri.len());
            self.reserved = step;
        }
        Ok(())
    }

    fn push(&mut self, l: Option<u32>, r: Option<u32>) {
        self.li.push(l);
        self.ri.push(r);
    }
}

/// The join of `lbatches` with the right side `r`, whose join keys are `rk`.
#[allow(clippy::too_many_arguments)]
fn probe_join(
    lbatches: &[Batch],
    r: &Batch,
    rk: &Batch,
    left: &Plan,
    kind: JoinKind,
    left_keys: &[Expr],
    residual: Option<&Expr>,
    schema: &[OutCol],
) -> SqlResult<Vec<Batch>> {
    use std::collections::HashMap;
    let all: Vec<usize> = (0..left_keys.len()).collect();
    let has_null = |b: &Batch, row: usize| b.columns.iter().any(|c| !c.is_valid(row));
    // The right side's rows by key, chained: `heads` maps a key to its first row and `next[j]` is
    // the next row with row j's key (NONE ends the chain). A handful of allocations whatever the
    // number of keys: building allocates nothing per row, and dropping is immediate, so a
    // cancelled or failed join answers without first freeing a million lists. Keys are the
    // column's own values when there is one text or integer key, else the rows' key bytes, all
    // in one buffer.
    const NONE: u32 = u32::MAX;
    enum Heads<'a> {
        Text(HashMap<&'a str, u32>),
        Int(HashMap<i64, u32>),
        Bytes(HashMap<&'a [u8], u32>),
    }
    let n = r.num_rows();
    if n >= NONE as usize {
        return Err(SqlError::new("54000", "the inner side of a join has too many rows"));
    }
    // The map (sized for up to a million keys at once: growing one that large takes a while
    // without answering cancel) and the chain, and the key bytes.
    guard::charge(n.saturating_mul(40) + guard::size_of(std::slice::from_ref(rk)))?;
    let mut next = vec![NONE; n];
    // Filled backwards, so every chain lists its rows in ascending order.
    fn link<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, next: &mut [u32], k: K, j: usize) {
        let head = m.entry(k).or_insert(NONE);
        next[j] = *head;
        *head = j as u32;
    }
    let (mut arena, mut ends) = (Vec::new(), Vec::new());
    let heads = match rk.columns.as_slice() {
        [rc] if matches!(rc.values, Values::Text(_)) => {
            let Values::Text(rv) = &rc.values else { unreachable!("matched above") };
            let mut m: HashMap<&str, u32> = HashMap::with_capacity(n.min(1 << 20));
            for j in (0..n).rev() {
                if j % 8192 == 0 {
                    guard::check()?;
                }
                if rc.is_valid(j) {
                    link(&mut m, &mut next, rv.get(j), j);
                }
            }
            Heads::Text(m)
        }
        [rc] if matches!(rc.values, Values::Int64(_) | Values::Timestamp(_)) => {
            let (Values::Int64(rv) | Values::Timestamp(rv)) = &rc.values else { unreachable!("matched above") };
            let mut m: HashMap<i64, u32> = HashMap::with_capacity(n.min(1 << 20));
            for j in (0..n).rev() {
                if j % 8192 == 0 {
                    guard::check()?;
                }
                if rc.is_valid(j) {
                    link(&mut m, &mut next, rv[j], j);
                }
            }
            Heads::Int(m)
        }
        _ => {
            // Every row's key bytes in one buffer (a row with a NULL key has none), then the map
            // over slices of it.
            ends.reserve_exact(n);
            for j in 0..n {
                if j % 8192 == 0 {
                    guard::check()?;
                }
                if !has_null(rk, j) {
                    append_key_bytes(rk, &all, j, &mut arena);
                }
                ends.push(arena.len());
            }
            guard::charge(arena.len())?;
            let mut m: HashMap<&[u8], u32> = HashMap::with_capacity(n.min(1 << 20));
            for j in (0..n).rev() {
                if j % 8192 == 0 {
                    guard::check()?;
                }
                let begin = if j == 0 { 0 } else { ends[j - 1] };
                if !has_null(rk, j) {
                    link(&mut m, &mut next, &arena[begin..ends[j]], j);
                }
            }
            Heads::Bytes(m)
        }
    };
    let base = guard::live();
    let row_bytes = guard::size_of(lbatches) / lbatches.iter().map(|b| b.num_rows()).sum::<usize>().max(1)
        + guard::size_of(std::slice::from_ref(r)) / n.max(1)
        + 8;
    // Right rows matched so far (RIGHT and FULL joins).
    let mut right_matched = vec![false; n];
    let mut out = Vec::with_capacity(lbatches.len());
    let mut held = 0usize;
    // A pair of row numbers, and the output row it becomes: charged before the pairs grow.
    let pair_bytes = 2 * std::mem::size_of::<Option<u32>>() + row_bytes;
    // Candidate pairs go through the residual condition this many at a time, so its work and
    // memory are bounded and a cancel is seen between runs.
    const CHUNK: usize = 65_536;
    let mut key_buf = Vec::new();
    // One output batch per left batch: the left side is never copied whole.
    for l in lbatches {
        guard::check()?;
        let lk = key_batch(left_keys.iter().map(|e| eval(e, l)).collect::<SqlResult<_>>()?);
        let build = |li: &[Option<u32>], ri: &[Option<u32>]| -> Batch {
            let mut columns: Vec<Column> = l.columns.iter().map(|c| take_opt(c, li)).collect();
            columns.extend(r.columns.iter().map(|c| take_opt(c, ri)));
            make_batch(schema, columns)
        };
        // Pairs that passed, and candidates waiting for the residual (cl, cr).
        let mut pairs = Pairs::default();
        let (mut cl, mut cr): (Vec<Option<u32>>, Vec<Option<u32>>) = (Vec::new(), Vec::new());
        let charge = |pairs: usize| guard::hold(base, held + pairs.saturating_mul(pair_bytes));
        // Runs the candidates through the residual condition, keeping those it holds for.
        let sift = |cl: &mut Vec<Option<u32>>, cr: &mut Vec<Option<u32>>, pairs: &mut Pairs| -> SqlResult<()> {
            let Some(pred) = residual else { return Ok(()) };
            guard::check()?;
            let cand = build(cl, cr);
            let c = eval(pred, &cand)?;
            let Values::Bool(v) = &c.values else {
                return Err(SqlError::mismatch("argument of JOIN/ON must be type boolean"));
            };
            let keep = (0..cand.num_rows()).filter(|&k| c.is_valid(k) && v[k]).count();
            pairs.grow(keep, charge)?;
            for k in (0..cand.num_rows()).filter(|&k| c.is_valid(k) && v[k]) {
                pairs.push(cl[k], cr[k]);
            }
            cl.clear();
            cr.clear();
            Ok(())
        };
        let mut last: Option<(usize, u32)> = None;
        let mut pushed = 0usize;
        for i in 0..l.num_rows() {
            if i % 4096 == 4095 {
                guard::check()?;
            }
            if has_null(&lk, i) {
                continue;
            }
            let first = match (&heads, lk.columns.first().map(|c| &c.values)) {
                // Runs of equal keys (files are grouped by series) reuse the previous lookup.
                (Heads::Text(m), Some(Values::Text(lv))) => match last {
                    Some((p, h)) if lv.get(p) == lv.get(i) => h,
                    _ => m.get(lv.get(i)).copied().unwrap_or(NONE),
                },
                (Heads::Int(m), Some(Values::Int64(lv) | Values::Timestamp(lv))) => match last {
                    Some((p, h)) if lv[p] == lv[i] => h,
                    _ => m.get(&lv[i]).copied().unwrap_or(NONE),
                },
                (Heads::Bytes(m), _) => {
                    key_buf.clear();
                    append_key_bytes(&lk, &all, i, &mut key_buf);
                    m.get(key_buf.as_slice()).copied().unwrap_or(NONE)
                }
                _ => NONE,
            };
            last = Some((i, first));
            let mut j = first;
            while j != NONE {
                if residual.is_some() {
                    cl.push(Some(i as u32));
                    cr.push(Some(j));
                    if cl.len() >= CHUNK {
                        sift(&mut cl, &mut cr, &mut pairs)?;
                    }
                } else {
                    pairs.grow(1, charge)?;
                    pairs.push(Some(i as u32), Some(j));
                    pushed += 1;
                    if pushed.is_multiple_of(CHUNK) {
                        guard::check()?;
                    }
                }
                j = next[j as usize];
            }
        }
        if !cl.is_empty() {
            sift(&mut cl, &mut cr, &mut pairs)?;
        }
        drop((cl, cr));
        let Pairs { mut li, mut ri, reserved } = pairs;
        if matches!(kind, JoinKind::Right | JoinKind::Full) {
            ri.iter().flatten().for_each(|&j| right_matched[j as usize] = true);
        }
        if matches!(kind, JoinKind::Left | JoinKind::Full) {
            let mut matched = vec![false; l.num_rows()];
            li.iter().flatten().for_each(|&i| matched[i as usize] = true);
            let unmatched = matched.iter().filter(|m| !**m).count();
            if li.len() + unmatched > reserved {
                charge(li.len() + unmatched)?;
            }
            for (i, m) in matched.iter().enumerate() {
                if !m {
                    li.push(Some(i as u32));
                    ri.push(None);
                }
            }
        }
        // In chunks, so a large output answers cancel between them.
        for at in (0..li.len().max(1)).step_by(CHUNK) {
            guard::check()?;
            let end = (at + CHUNK).min(li.len());
            let b = build(&li[at..end], &ri[at..end]);
            held += guard::size_of(std::slice::from_ref(&b));
            guard::hold(base, held)?;
            out.push(b);
        }
    }
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        let ri: Vec<Option<u32>> =
            right_matched.iter().enumerate().filter(|(_, m)| !**m).map(|(j, _)| Some(j as u32)).collect();
        let li = vec![None; ri.len()];
        let ls = left.schema();
        // NULL left columns of the same physical types as the other output batches.
        let empty_left: Vec<Column> = ls
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let t = lbatches
                    .first()
                    .map(|b| b.columns[k].data_type())
                    .unwrap_or_else(|| c.ty.physical().unwrap_or(crate::batch::DataType::Text));
                Column::nulls(t, 0)
            })
            .collect();
        let mut columns: Vec<Column> = empty_left.iter().map(|c| take_opt(c, &li)).collect();
        columns.extend(r.columns.iter().map(|c| take_opt(c, &ri)));
        out.push(make_batch(schema, columns));
    }
    Ok(out)
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
pub fn concat(batches: Vec<Batch>, schema: &[OutCol]) -> Batch {
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

fn scan(
    source: &Source,
    schema: &[OutCol],
    used: &[bool],
    range: (i64, i64),
    tags: &[(usize, String)],
    ranges: &[(usize, f64, f64)],
    stats: &ScanStats,
) -> SqlResult<Vec<Batch>> {
    match source {
        Source::Rows(b) => Ok(vec![b.as_ref().clone()]),
        Source::Table(t) => {
            let rows = t.rows();
            if rows.fields.len() != schema.len()
                || rows.fields.iter().zip(schema).any(|(f, c)| f.name != c.name || c.ty.physical() != Some(f.data_type))
            {
                return Err(SqlError::new(
                    "40001",
                    format!("table \"{}\" was altered while the query ran; run it again", t.name()),
                ));
            }
            // A chunk at a time, only the columns read, each chunk charged as it is copied: a
            // large table answers cancel between chunks.
            const CHUNK: usize = 65_536;
            let n = rows.num_rows();
            stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
            let mut out = Vec::with_capacity(n.div_ceil(CHUNK).max(1));
            for at in (0..n.max(1)).step_by(CHUNK) {
                guard::check()?;
                let end = (at + CHUNK).min(n);
                let idx: Vec<u32> = (at as u32..end as u32).collect();
                let columns: Vec<Column> = rows
                    .columns
                    .iter()
                    .zip(used.iter().chain(std::iter::repeat(&true)))
                    .map(|(c, &u)| if u { c.take(&idx) } else { unread(end - at) })
                    .collect();
                let b = make_batch(schema, columns);
                guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
                out.push(b);
            }
            Ok(out)
        }
        Source::Channel(ch) => {
            // A chunk at a time, only the columns read, each chunk charged as it is built.
            let mut reader = ChannelReader::new(ch, range);
            let mut out = Vec::new();
            while let Some(m) = reader.next()? {
                stats.rows_scanned.fetch_add(m.len() as u64, Ordering::Relaxed);
                let b = channel_batch(&m, schema, used);
                guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
                out.push(b);
            }
            Ok(out)
        }
        Source::Datastore(ds) => {
            let start = guard::live();
            let mut reader = DatastoreReader::new(ds, schema, used, range, tags, ranges, stats);
            let mut out = Vec::new();
            // What the scan decoded so far counts against the query's memory, a file at a time.
            while let Some(part) = reader.next_part()? {
                guard::charge(guard::size_of(&part))?;
                out.extend(part);
            }
            guard::hold(start, 0)?;
            Ok(out)
        }
    }
}

/// A datastore scan, a file (decoded by both cores) or a memtable batch at a time: files
/// outside the time range or without the tag values are skipped, and so are blocks by their
/// time and min/max; only the columns the query reads are decoded.
struct DatastoreReader<'a> {
    snap: crate::datastore::Snapshot,
    schema: &'a [OutCol],
    used: &'a [bool],
    range: (i64, i64),
    tags: &'a [(usize, String)],
    ranges: &'a [(usize, f64, f64)],
    stats: &'a ScanStats,
    time_idx: Option<usize>,
    next_file: usize,
    next_mem: usize,
    /// Batches of the part being handed out one at a time by [`DatastoreReader::next`].
    pending: std::collections::VecDeque<Batch>,
}

impl<'a> DatastoreReader<'a> {
    fn new(
        ds: &crate::datastore::Datastore,
        schema: &'a [OutCol],
        used: &'a [bool],
        range: (i64, i64),
        tags: &'a [(usize, String)],
        ranges: &'a [(usize, f64, f64)],
        stats: &'a ScanStats,
    ) -> DatastoreReader<'a> {
        let snap = ds.snapshot();
        stats.files_total.fetch_add(snap.files.len() as u64, Ordering::Relaxed);
        let time_idx = snap.schema.iter().position(|f| f.name == "time");
        DatastoreReader {
            snap,
            schema,
            used,
            range,
            tags,
            ranges,
            stats,
            time_idx,
            next_file: 0,
            next_mem: 0,
            pending: Default::default(),
        }
    }

    /// The next batch, or None at the end.
    fn next(&mut self) -> SqlResult<Option<Batch>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            match self.next_part()? {
                Some(part) => self.pending.extend(part),
                None => return Ok(None),
            }
        }
    }

    /// The batches of the next file that has rows in range, or of the next memtable batch.
    fn next_part(&mut self) -> SqlResult<Option<Vec<Batch>>> {
        // Schema positions: storage columns in order, then __dt.
        let (schema, used, range, tags) = (self.schema, self.used, self.range, self.tags);
        let dt_idx = schema.len() - 1;
        let time_idx = self.time_idx;
        let need_time = used.get(dt_idx).copied().unwrap_or(false);
        while self.next_file < self.snap.files.len() {
            guard::check()?;
            let f = &self.snap.files[self.next_file];
            self.next_file += 1;
            if f.meta.max_time < range.0 || f.meta.min_time >= range.1 {
                self.stats.files_pruned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Blocks holding rows with every tag value, from the file's tag index.
            let mut allowed: Option<std::collections::BTreeSet<usize>> = None;
            for (c, v) in tags {
                let Some(fc) = f.meta.column_index(&schema[*c].name) else { continue };
                if let Some(rows) = f.tag_rows(fc, v)? {
                    let blocks: std::collections::BTreeSet<usize> =
                        rows.iter().map(|r| r as usize / f.meta.block_rows as usize).collect();
                    allowed = Some(match allowed {
                        None => blocks,
                        Some(a) => a.intersection(&blocks).copied().collect(),
                    });
                }
            }
            if allowed.as_ref().is_some_and(|a| a.is_empty()) {
                self.stats.files_pruned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Large files are decoded by both cores, each taking half the blocks; the
            // batches keep the file's order.
            let nblocks = f.meta.num_blocks();
            let workers = if nblocks >= 16 { (*PARALLELISM).min(nblocks) } else { 1 };
            let per = nblocks.div_ceil(workers);
            let storage: Vec<&Field> = self.snap.schema.iter().collect();
            let (ranges, stats) = (self.ranges, self.stats);
            let parts: Vec<SqlResult<Vec<Batch>>> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..workers)
                    .map(|w| {
                        let blocks = (w * per).min(nblocks)..((w + 1) * per).min(nblocks);
                        let (storage, allowed) = (&storage, allowed.as_ref());
                        sc.spawn(move || {
                            let mut part = Vec::new();
                            scan_file(
                                f, schema, storage, used, time_idx, dt_idx, range, ranges, allowed, stats, blocks,
                                &mut part,
                            )
                            .map(|_| part)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(SqlError::new("XX000", "a scan worker failed"))))
                    .collect()
            });
            let mut out = Vec::new();
            for p in parts {
                out.extend(p?);
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        while self.next_mem < self.snap.mem.len() {
            guard::check()?;
            let (b, (lo, hi)) = (&self.snap.mem[self.next_mem], self.snap.mem_times[self.next_mem]);
            self.next_mem += 1;
            // Memtable batches wholly outside the time range are skipped, as files are.
            if hi < range.0 || lo >= range.1 {
                continue;
            }
            let n = b.num_rows();
            self.stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
            // Only the columns the query reads are copied.
            let mut columns: Vec<Column> = self
                .snap
                .schema
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let want = used.get(i).copied().unwrap_or(true) || (need_time && Some(i) == time_idx);
                    if want { crate::datastore::conform_column(f, b) } else { unread(n) }
                })
                .collect();
            // As from files: `__dt` only when read, else the placeholder of unread columns,
            // so that batches from files and from the memtable have the same types.
            columns.push(if need_time { dt_column(&columns, time_idx) } else { unread(n) });
            return Ok(Some(vec![make_batch(schema, columns)]));
        }
        Ok(None)
    }
}

fn dt_column(columns: &[Column], time_idx: Option<usize>) -> Column {
    match time_idx.map(|i| &columns[i].values) {
        Some(Values::Timestamp(t)) => {
            Column::new(Values::Int64(t.iter().map(|x| x.div_euclid(MICROS_PER_DAY)).collect()))
        }
        _ => Column::nulls(crate::batch::DataType::Int64, columns.first().map_or(0, |c| c.len())),
    }
}

#[allow(clippy::too_many_arguments)]
fn scan_file(
    f: &DsFile,
    schema: &[OutCol],
    storage: &[&Field],
    used: &[bool],
    time_idx: Option<usize>,
    dt_idx: usize,
    range: (i64, i64),
    ranges: &[(usize, f64, f64)],
    allowed: Option<&std::collections::BTreeSet<usize>>,
    stats: &ScanStats,
    blocks: std::ops::Range<usize>,
    out: &mut Vec<Batch>,
) -> SqlResult<()> {
    let file_cols: Vec<Option<usize>> = storage.iter().map(|fl| f.meta.column_index(&fl.name)).collect();
    let time_file_col = f.meta.column_index("time");
    stats.blocks_total.fetch_add(blocks.len() as u64, Ordering::Relaxed);
    for b in blocks {
        if allowed.is_some_and(|a| !a.contains(&b)) {
            stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(tc) = time_file_col {
            let bm = &f.meta.columns[tc].blocks[b];
            if bm.max < range.0 || bm.min >= range.1 {
                stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        // Numeric conditions against the block's min/max (a block without present values
        // has min > max and matches no condition).
        let outside = ranges.iter().any(|&(c, lo, hi)| {
            let Some(fc) = file_cols.get(c).copied().flatten() else { return false };
            let cm = &f.meta.columns[fc];
            let bm = &cm.blocks[b];
            let (min, max) = match cm.data_type {
                crate::batch::DataType::Float64 => (f64::from_bits(bm.min as u64), f64::from_bits(bm.max as u64)),
                crate::batch::DataType::Int64 => (bm.min as f64, bm.max as f64),
                _ => return false,
            };
            if min.is_nan() || max.is_nan() {
                return false;
            }
            min > max || max < lo || min > hi
        });
        if outside {
            stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let n = f.meta.block_len(b);
        stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
        let need_time = used.get(dt_idx).copied().unwrap_or(false);
        let mut columns = Vec::with_capacity(schema.len());
        for (i, fl) in storage.iter().enumerate() {
            let want = used.get(i).copied().unwrap_or(true) || (need_time && Some(i) == time_idx);
            let col = match (want, file_cols[i]) {
                (true, Some(fc)) => {
                    let c = f.block(fc, b)?;
                    if c.data_type() != fl.data_type { c.widen_to_float() } else { c }
                }
                // A column this (older) file lacks: NULLs of the column's type.
                (true, None) => Column::nulls(fl.data_type, n),
                (false, _) => unread(n),
            };
            columns.push(col);
        }
        columns.push(if need_time { dt_column(&columns, time_idx) } else { unread(n) });
        out.push(make_batch(schema, columns));
    }
    Ok(())
}
