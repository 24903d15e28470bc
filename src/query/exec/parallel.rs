//! Morsel-driven pipelines over a datastore scan: aggregation and top-N. The scan is cut into
//! morsels (a few blocks of one file, or one memtable batch, see
//! [`DatastoreReader::morsels`]); each core takes the next morsel from one shared counter,
//! decodes it, runs the filters and projections above the scan over its batches and feeds
//! them to a sink of its own: a grouper (partial aggregates) or the best rows of an
//! `ORDER BY … LIMIT`. At the end the sinks are merged into one, whose groups or tied rows
//! come out in the order a single thread reading the scan in order would have made them.
//! Only the sinks hold data: a morsel's batches live while they are fed.
//!
//! Each thread's sink is charged to a share of the query's working memory (and to the
//! server's pool); the merged one is charged to the statement's thread before it grows.

use super::join::{Index, KeyBytes, Probe};
use super::*;
use crate::query::agg::{AddToAccs, AggCall, Grouper, mergeable};
use crate::query::plan::JoinKind;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

/// The time and rows of one plan node, as one thread saw them.
type NodeTimes = Vec<(Duration, usize)>;

/// The nodes of a morsel-driven pipeline: the filters, projections and joins (probed with the
/// batches of their left side) from the top down, and the datastore scan under them; `None`
/// when `input` is not such a chain, or when the pipeline would run on one thread (the
/// caller's single-threaded operators do then, without building a join's side twice).
pub(super) fn chain(input: &Plan) -> Option<(Vec<&Plan>, &Plan)> {
    if *PARALLELISM < 2 || guard::current_limits().is_none() {
        return None;
    }
    let mut ops: Vec<&Plan> = Vec::new();
    let mut scan = input;
    // Inner and left joins probe each left batch on its own (a right or full join must know
    // every left row before its unmatched right rows).
    while let Plan::Filter { input, .. }
    | Plan::Project { input, .. }
    | Plan::Join { left: input, kind: JoinKind::Inner | JoinKind::Left, .. } = scan
    {
        ops.push(scan);
        scan = input;
    }
    matches!(scan, Plan::Scan { source: Source::Datastore(_), .. }).then_some((ops, scan))
}

/// Builds the right side of every join among `ops` (on this thread, before the pipeline's
/// threads start: they only probe it), then runs `f` with each op's index (`None` for the
/// others).
pub(super) fn with_joins<R>(ops: &[&Plan], f: impl FnOnce(&[Option<Index<'_>>]) -> SqlResult<R>) -> SqlResult<R> {
    let sides = ops
        .iter()
        .map(|op| match op {
            Plan::Join { right, right_keys, .. } => super::join::right_side(right, right_keys).map(Some),
            _ => Ok(None),
        })
        .collect::<SqlResult<Vec<Option<(Batch, Batch)>>>>()?;
    let bytes = sides
        .iter()
        .map(|s| match s {
            Some((r, rk)) => KeyBytes::of(rk, r.num_rows()),
            None => Ok(None),
        })
        .collect::<SqlResult<Vec<Option<KeyBytes>>>>()?;
    let indexes = sides
        .iter()
        .zip(&bytes)
        .map(|(s, b)| s.as_ref().map(|(r, rk)| Index::new(r, rk, b.as_ref())).transpose())
        .collect::<SqlResult<Vec<Option<Index<'_>>>>>()?;
    f(&indexes)
}

/// What a thread feeds the batches of its morsels to: a grouper (partial aggregates) or a
/// top-N. `at` says where the next batch lies in scan order (morsel number, then row).
pub(super) trait Sink {
    fn at(&mut self, pos: u64);
    fn feed(&mut self, b: Batch) -> SqlResult<()>;
    /// Gives back what it holds (its memory is charged to the thread that made it).
    fn discard(self);
}

impl Sink for Grouper<'_> {
    fn at(&mut self, pos: u64) {
        Grouper::at(self, pos);
    }
    fn feed(&mut self, b: Batch) -> SqlResult<()> {
        Grouper::feed(self, &b)
    }
    fn discard(self) {
        Grouper::discard(self);
    }
}

/// Runs the pipeline `ops` over `scan` on every core (`sink` makes each thread's sink; its
/// argument says whether there is more than one), and gives each thread's sink once every
/// morsel is done; the first error stops every thread and is the answer. `want` makes the
/// reader answer whole blocks from their statistics.
pub(super) fn run_morsels<S: Sink + Send>(
    ops: &[&Plan],
    joins: &[Option<Index<'_>>],
    scan: &Plan,
    want: Option<StatsWanted<'_>>,
    top_n: bool,
    cutoff: Option<&super::cutoff::SharedCutoff>,
    sink: &(dyn Fn(bool) -> S + Sync),
) -> SqlResult<Option<Vec<S>>> {
    let Plan::Scan { source: Source::Datastore(ds), schema, used, time_range, tags, ranges, stats } = scan else {
        return Ok(None);
    };
    if *PARALLELISM < 2 {
        return Ok(None);
    }
    let Some(limits) = guard::current_limits() else { return Ok(None) };
    let mut reader = DatastoreReader::new(ds, schema, used, *time_range, tags, ranges, stats);
    if let Some(want) = want {
        reader = reader.with_totals(want);
    }
    reader.cutoff = cutoff;
    let morsels = reader.morsels()?;
    let workers = (*PARALLELISM).min(morsels.len()).max(1);
    stats.decoders.fetch_max(workers as u64, Ordering::Relaxed);
    stats.morsels.fetch_add(morsels.len() as u64, Ordering::Relaxed);
    stats.morsels_top_n.store(top_n, Ordering::Relaxed);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (reader, morsels) = (&reader, &morsels);
    let work = || -> SqlResult<Part<S>> {
        let r = work(reader, morsels, &next, &stop, ops, joins, sink(workers > 1));
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        r
    };
    let results: Vec<SqlResult<Part<S>>> = if workers == 1 {
        vec![work()]
    } else {
        // Each thread may hold its share of the query's working memory; the pool is shared.
        let share = guard::QueryLimits {
            cancel: limits.cancel.clone(),
            memory: limits.memory / workers,
            deadline: limits.deadline,
            pool: limits.pool.clone(),
            whole: Some(limits.whole.unwrap_or(limits.memory)),
            // When the pool is full, the threads wait for memory if their query is the oldest
            // and give up otherwise, as the query would on its own thread.
            line: limits.line.clone(),
        };
        let (share, work) = (&share, &work);
        std::thread::scope(|sc| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let stack = crate::util::sync::STATEMENT_STACK;
                    std::thread::Builder::new().name("fleetdb-agg".into()).stack_size(stack).spawn_scoped(
                        sc,
                        move || {
                            crate::util::sync::note_stack_size(stack);
                            guard::run_guarded(share, || {
                                let _stack = guard::stack_base();
                                work()
                            })
                        },
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|_| Err(SqlError::new("XX000", "a query thread failed"))),
                    Err(e) => Err(SqlError::new("53000", format!("could not start a query thread: {e}"))),
                })
                .collect()
        })
    };
    // The first thread's error is the query's (the others stopped because of it).
    let mut parts = Vec::with_capacity(results.len());
    let mut failed = None;
    for r in results {
        match r {
            Ok(p) => parts.push(p),
            Err(e) if failed.is_none() => failed = Some(e),
            Err(_) => {}
        }
    }
    if let Some(e) = failed {
        for p in parts {
            p.sink.discard();
        }
        return Err(e);
    }
    // The threads' peaks count as held by this one (EXPLAIN ANALYZE's memory of the
    // operator above them), when they ran beside it.
    if workers > 1 {
        guard::note_held_elsewhere(parts.iter().map(|p| p.peak).sum());
    }
    // EXPLAIN ANALYZE: each node's rows over all threads, and its time (with the nodes
    // below it, as other nodes' times are) on the busiest thread.
    let nodes: Vec<&Plan> = ops.iter().copied().chain(std::iter::once(scan)).collect();
    for (k, node) in nodes.iter().enumerate() {
        let time = parts.iter().map(|p| p.times[k..].iter().map(|x| x.0).sum::<Duration>()).max().unwrap_or_default();
        let rows = parts.iter().map(|p| p.times[k].1).sum();
        add_profile(node, time, rows);
    }
    Ok(Some(parts.into_iter().map(|p| p.sink).collect()))
}

/// `Aggregate(group, aggs)` over `input` on every core, when `input` is a datastore scan under
/// filters and projections only and every aggregate can be computed in parts; `None`
/// otherwise (the caller runs it on one thread). With `want`, whole blocks are answered from
/// their statistics into its totals, and `after` adds those before the groups are finished.
pub(super) fn aggregate(
    input: &Plan,
    group: &[Expr],
    aggs: &[AggCall],
    want: Option<StatsWanted<'_>>,
    after: Option<AddToAccs<'_>>,
) -> SqlResult<Option<Batch>> {
    let Some((ops, scan)) = chain(input) else { return Ok(None) };
    if !aggs.iter().all(mergeable) {
        return Ok(None);
    }
    // With more than one thread, each grouper keeps each group's first position, so the
    // merged groups come out in the order one thread would have made them.
    let make = |in_parts: bool| {
        let mut g = Grouper::new(group, aggs);
        if in_parts {
            g.keep_order();
        }
        g
    };
    let Some(parts) = with_joins(&ops, |joins| run_morsels(&ops, joins, scan, want, false, None, &make))? else {
        return Ok(None);
    };
    let workers = parts.len();
    let mut parts = parts.into_iter();
    let Some(mut all) = parts.next() else { return Err(SqlError::new("XX000", "an aggregate without threads")) };
    let merged = (|| -> SqlResult<()> {
        // Groups fed on other threads are charged to this one now (one fed here already is).
        if workers > 1 {
            all.adopt()?;
        }
        for g in parts.by_ref() {
            all.merge(g)?;
        }
        if let Some(add) = after {
            all.add(add)?;
        }
        Ok(())
    })();
    match merged {
        Ok(()) => all.finish().map(Some),
        Err(e) => {
            all.discard();
            for g in parts {
                g.discard();
            }
            Err(e)
        }
    }
}

/// The name of the scan's column that column `idx` of the output of `ops` (top down) is, when
/// it is one: through filters, projections of a column, and a join's left side.
pub(super) fn scan_column(ops: &[&Plan], scan: &Plan, mut idx: usize) -> Option<String> {
    for op in ops {
        match op {
            Plan::Filter { .. } => {}
            Plan::Project { exprs, .. } => match exprs.get(idx)? {
                Expr::Col { idx: j, .. } => idx = *j,
                _ => return None,
            },
            Plan::Join { left, .. } if idx < left.schema().len() => {}
            _ => return None,
        }
    }
    let Plan::Scan { schema, .. } = scan else { return None };
    schema.get(idx).map(|c| c.name.clone())
}

/// One thread's part: morsels taken in turn until none is left (or another thread failed),
/// each read, passed through `ops` (bottom up) and fed to the thread's sink, told where each
/// morsel lies (its number, high bits of a position whose low bits count its rows).
#[allow(clippy::too_many_arguments)]
fn work<S: Sink>(
    reader: &DatastoreReader<'_>,
    morsels: &[Morsel],
    next: &AtomicUsize,
    stop: &AtomicBool,
    ops: &[&Plan],
    joins: &[Option<Index<'_>>],
    mut g: S,
) -> SqlResult<Part<S>> {
    let window = guard::open_window();
    // Times of ops (top down), then of the scan.
    let mut times: NodeTimes = vec![(Duration::ZERO, 0); ops.len() + 1];
    let fed = (|| -> SqlResult<()> {
        let mut batches = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(m) = morsels.get(i) else { return Ok(()) };
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            guard::check()?;
            let t = Instant::now();
            reader.read_morsel(m, &mut batches)?;
            // The decoded morsel is held while it passes through: it must fit beside what the
            // thread holds (and counts in the operators' peaks).
            guard::room(guard::size_of(&batches))?;
            let scan = &mut times[ops.len()];
            scan.0 += t.elapsed();
            scan.1 += batches.iter().map(Batch::num_rows).sum::<usize>();
            g.at((i as u64) << 32);
            for b in batches.drain(..) {
                through(ops, joins, ops.len(), b, &mut times, &mut g)?;
            }
        }
    })();
    let peak = guard::close_window(window);
    match fed {
        Ok(()) => Ok(Part { sink: g, times, peak }),
        Err(e) => {
            g.discard();
            Err(e)
        }
    }
}

/// Left rows a join probes at once in a morsel pipeline: the pairs of one probe (and the
/// batch they make) stay within this many times the join's fan-out, whatever the morsel's size.
const PROBE_ROWS: usize = 1024;

/// Passes `b` through `ops[..k]` (bottom up: `ops[k - 1]` first) and feeds what comes out to
/// the sink. A join probes its left batch a slice of [`PROBE_ROWS`] at a time and passes each
/// slice's output on before the next, so a join that multiplies rows (many right rows per
/// key) streams instead of making all its pairs at once.
fn through<S: Sink>(
    ops: &[&Plan],
    joins: &[Option<Index<'_>>],
    k: usize,
    b: Batch,
    times: &mut NodeTimes,
    g: &mut S,
) -> SqlResult<()> {
    if k == 0 {
        return g.feed(b);
    }
    let op = ops[k - 1];
    let t = Instant::now();
    let out = match op {
        Plan::Filter { pred, .. } => filter_batch(b, pred)?,
        Plan::Project { exprs, schema, .. } => {
            let columns = exprs.iter().map(|e| eval(e, &b)).collect::<SqlResult<Vec<_>>>()?;
            make_batch(schema, columns)
        }
        Plan::Join { left_keys, kind, residual, schema, .. } => {
            let Some(Some(index)) = joins.get(k - 1) else {
                return Err(SqlError::new("XX000", "a join in a parallel pipeline without its index"));
            };
            let probe = Probe { left_keys, kind: *kind, residual: residual.as_ref(), schema };
            let n = b.num_rows();
            for from in (0..n).step_by(PROBE_ROWS) {
                let t = Instant::now();
                let slice = if n <= PROBE_ROWS {
                    None
                } else {
                    Some(b.take(&(from as u32..(from + PROBE_ROWS).min(n) as u32).collect::<Vec<u32>>()))
                };
                // Its pairs are charged as they grow; the batches it makes are then in
                // flight as the others are.
                let before = guard::live();
                let made = index.probe(slice.as_ref().unwrap_or(&b), &probe, None, before, 0)?;
                guard::hold(before, 0)?;
                times[k - 1].0 += t.elapsed();
                for o in made {
                    times[k - 1].1 += o.num_rows();
                    if o.num_rows() > 0 {
                        through(ops, joins, k - 1, o, times, g)?;
                    }
                }
            }
            return Ok(());
        }
        _ => return Err(SqlError::new("XX000", "a parallel pipeline over an unexpected node")),
    };
    times[k - 1].0 += t.elapsed();
    times[k - 1].1 += out.num_rows();
    if out.num_rows() == 0 {
        return Ok(());
    }
    through(ops, joins, k - 1, out, times, g)
}

/// What one thread made: its sink (groups, kept rows), the time and rows of each node it ran,
/// and the most memory it held at once.
struct Part<S> {
    sink: S,
    times: NodeTimes,
    peak: usize,
}
