//! Read-ahead: a datastore scan, and the filter above it, run on a thread of their own a few
//! batches ahead of the aggregate pulling them, so that decoding and filtering use one core
//! while the aggregate uses the other. The batches arrive in the scan's order; at most
//! [`AHEAD`] wait at once (each a block's rows, or one memtable batch).

use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Batches read ahead at most.
const AHEAD: usize = 4;

/// What the reading thread sends: a filtered batch (`None`: the end), and the time and rows
/// of the scan since the last one (for EXPLAIN ANALYZE).
struct Piece {
    batch: Option<Batch>,
    scan_time: Duration,
    scan_rows: usize,
}

/// Sets the reading thread's stop flag when the puller is done with it (at the end, after an
/// error, or when a LIMIT above needs no more).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `plan` (a datastore scan, or a filter right above one) read ahead on a thread of its own;
/// `None` when it is another node, the machine has one core, or no thread could be made (the
/// caller then reads in place).
pub(super) fn read_ahead(plan: &Plan) -> Option<Pull<'_>> {
    let (scan, pred) = match plan {
        Plan::Filter { input, pred } => (&**input, Some(pred.clone())),
        p => (p, None),
    };
    let Plan::Scan { source: Source::Datastore(ds), schema, used, time_range, tags, ranges, stats } = scan else {
        return None;
    };
    if *PARALLELISM < 2 {
        return None;
    }
    let limits = guard::current_limits()?;
    let stop = Arc::new(AtomicBool::new(false));
    // The statement's cancel and deadline reach the reading thread; it holds no memory of its
    // own beyond the batches in flight (no pool share).
    let thread_limits = guard::QueryLimits {
        cancel: limits.cancel.clone(),
        memory: limits.memory,
        deadline: limits.deadline,
        pool: None,
        whole: limits.whole,
        line: None,
    };
    // The snapshot is the statement's, taken here; the thread only reads it.
    let snap = ds.snapshot();
    let (schema, used, tags, ranges, stats_t, range) =
        (schema.clone(), used.clone(), tags.clone(), ranges.clone(), stats.clone(), *time_range);
    let stopped = stop.clone();
    let (tx, rx) = mpsc::sync_channel::<SqlResult<Piece>>(AHEAD);
    let stack = crate::util::sync::STATEMENT_STACK;
    let spawned = std::thread::Builder::new().name("fleetdb-scan".into()).stack_size(stack).spawn(move || {
        crate::util::sync::note_stack_size(stack);
        guard::run_guarded(&thread_limits, || {
            let _stack = guard::stack_base();
            let mut reader = DatastoreReader::of_snapshot(snap, &schema, &used, range, &tags, &ranges, &stats_t);
            let (mut scan_time, mut scan_rows) = (Duration::ZERO, 0);
            while !stopped.load(Ordering::Relaxed) {
                let t = Instant::now();
                let next = reader.next();
                scan_time += t.elapsed();
                let b = match next {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                scan_rows += b.num_rows();
                let b = match &pred {
                    Some(p) => match filter_batch(b, p) {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    },
                    None => b,
                };
                if b.num_rows() == 0 {
                    continue;
                }
                let piece = Piece {
                    batch: Some(b),
                    scan_time: std::mem::take(&mut scan_time),
                    scan_rows: std::mem::take(&mut scan_rows),
                };
                if tx.send(Ok(piece)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Ok(Piece { batch: None, scan_time, scan_rows }));
        })
    });
    if spawned.is_err() {
        return None;
    }
    stats.ahead.store(true, Ordering::Relaxed);
    let stop = StopOnDrop(stop);
    // Under a filter, the scan's own profile entry is kept here (the filter's is kept by the
    // caller, as for any pulled node).
    let scan_key = (!std::ptr::eq(scan, plan)).then_some(scan as *const Plan as usize);
    let mut done = false;
    Some(Box::new(move || {
        let _stop = &stop;
        if done {
            return Ok(None);
        }
        guard::check()?;
        let Ok(piece) = rx.recv() else {
            return Err(SqlError::new("XX000", "a scan thread ended without its answer"));
        };
        let piece = piece?;
        if let Some(key) = scan_key {
            PROFILE.with(|p| {
                if let Some(prof) = p.borrow_mut().as_mut() {
                    let e = prof.entry(key).or_default();
                    e.time += piece.scan_time;
                    e.rows += piece.scan_rows;
                }
            });
        }
        match piece.batch {
            Some(b) => Ok(Some(b)),
            None => {
                done = true;
                Ok(None)
            }
        }
    }))
}
