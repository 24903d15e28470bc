//! Morsel-driven aggregation over a datastore scan. The scan is cut into morsels (a few
//! blocks of one file, or one memtable batch, see [`DatastoreReader::morsels`]); each core
//! takes the next morsel from one shared counter, decodes it, runs the filters and
//! projections above the scan over its batches and feeds them to a grouper of its own. At
//! the end the groupers are merged into one, whose groups come out in the order a single
//! thread reading the scan in order would have made them. Only groups are held: a morsel's
//! batches live while it is aggregated.
//!
//! Each thread's grouper is charged to a share of the query's working memory (and to the
//! server's pool); the merged one is charged to the statement's thread before it grows.

use super::*;
use crate::query::agg::{AddToAccs, AggCall, Grouper, mergeable};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

/// The time and rows of one plan node, as one thread saw them.
type NodeTimes = Vec<(Duration, usize)>;

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
    // The filters and projections from the top down, then the scan.
    let mut ops: Vec<&Plan> = Vec::new();
    let mut scan = input;
    while let Plan::Filter { input, .. } | Plan::Project { input, .. } = scan {
        ops.push(scan);
        scan = input;
    }
    let Plan::Scan { source: Source::Datastore(ds), schema, used, time_range, tags, ranges, stats } = scan else {
        return Ok(None);
    };
    if *PARALLELISM < 2 || !aggs.iter().all(mergeable) {
        return Ok(None);
    }
    let Some(limits) = guard::current_limits() else { return Ok(None) };
    let mut reader = DatastoreReader::new(ds, schema, used, *time_range, tags, ranges, stats);
    if let Some(want) = want {
        reader = reader.with_totals(want);
    }
    let morsels = reader.morsels()?;
    let workers = (*PARALLELISM).min(morsels.len()).max(1);
    stats.decoders.fetch_max(workers as u64, Ordering::Relaxed);
    stats.morsels.fetch_add(morsels.len() as u64, Ordering::Relaxed);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (reader, morsels, ops) = (&reader, &morsels, &ops);
    let work = || -> SqlResult<Part<'_>> {
        let r = work(reader, morsels, &next, &stop, ops, group, aggs, workers > 1);
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        r
    };
    let results: Vec<SqlResult<Part<'_>>> = if workers == 1 {
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
                    Ok(h) => h.join().unwrap_or_else(|_| Err(SqlError::new("XX000", "an aggregate thread failed"))),
                    Err(e) => Err(SqlError::new("53000", format!("could not start an aggregate thread: {e}"))),
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
            p.grouper.discard();
        }
        return Err(e);
    }
    // The threads' peaks count as held by this one (EXPLAIN ANALYZE's memory of the
    // aggregate), when they ran beside it.
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
    let mut parts = parts.into_iter().map(|p| p.grouper);
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

/// One thread's part: morsels taken in turn until none is left (or another thread failed),
/// each read, passed through `ops` (bottom up) and fed to the thread's grouper. With
/// `in_parts`, the grouper keeps each group's first position: morsel number, then row.
#[allow(clippy::too_many_arguments)]
fn work<'q>(
    reader: &DatastoreReader<'_>,
    morsels: &[Morsel],
    next: &AtomicUsize,
    stop: &AtomicBool,
    ops: &[&Plan],
    group: &'q [Expr],
    aggs: &'q [AggCall],
    in_parts: bool,
) -> SqlResult<Part<'q>> {
    let window = guard::open_window();
    let mut g = Grouper::new(group, aggs);
    if in_parts {
        g.keep_order();
    }
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
            let scan = &mut times[ops.len()];
            scan.0 += t.elapsed();
            scan.1 += batches.iter().map(Batch::num_rows).sum::<usize>();
            g.at((i as u64) << 32);
            'batch: for mut b in batches.drain(..) {
                for (k, op) in ops.iter().enumerate().rev() {
                    let t = Instant::now();
                    b = match op {
                        Plan::Filter { pred, .. } => filter_batch(b, pred)?,
                        Plan::Project { exprs, schema, .. } => {
                            let columns = exprs.iter().map(|e| eval(e, &b)).collect::<SqlResult<Vec<_>>>()?;
                            make_batch(schema, columns)
                        }
                        _ => return Err(SqlError::new("XX000", "a parallel aggregate over an unexpected node")),
                    };
                    times[k].0 += t.elapsed();
                    times[k].1 += b.num_rows();
                    if b.num_rows() == 0 {
                        continue 'batch;
                    }
                }
                g.feed(&b)?;
            }
        }
    })();
    let peak = guard::close_window(window);
    match fed {
        Ok(()) => Ok(Part { grouper: g, times, peak }),
        Err(e) => {
            g.discard();
            Err(e)
        }
    }
}

/// What one thread made: its groups, the time and rows of each node it ran, and the most
/// memory it held at once.
struct Part<'q> {
    grouper: Grouper<'q>,
    times: NodeTimes,
    peak: usize,
}
