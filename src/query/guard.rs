//! Limits on a running query: cancellation (a client's cancel request, or shutdown) and
//! working memory. The executor runs a query on one thread; [`run_guarded`] installs the
//! query's [`QueryLimits`] there, and the executor calls [`check`] between units of work and
//! [`charge`] for what it materializes. Past the memory limit the query fails with SQLSTATE
//! 53200; a cancelled query fails with 57014. Outside [`run_guarded`] both are no-ops.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{SqlError, SqlResult};
use crate::batch::Batch;

/// Default working memory of one query: 1 GiB.
pub(crate) const DEFAULT_QUERY_MEMORY: usize = 1 << 30;

pub(crate) use crate::util::memory::MemoryPool;

#[derive(Clone, Debug)]
pub struct QueryLimits {
    /// Set from another thread to stop the query.
    pub cancel: Arc<AtomicBool>,
    /// Bytes of intermediate results the query may hold at once.
    pub memory: usize,
    /// When the statement times out (`statement_timeout`).
    pub deadline: Option<std::time::Instant>,
    /// The server's memory shared by all queries, if there is one.
    pub pool: Option<Arc<MemoryPool>>,
    /// The working memory errors name: the query's, when `memory` is one thread's share of
    /// it (`None`: `memory` is the query's).
    pub whole: Option<usize>,
    /// The place in the pool's line of the query a thread works for (a thread of a parallel
    /// operator waits for memory as its query does); `None`: the query takes its own place.
    pub(crate) line: Option<Arc<crate::util::memory::Ticket>>,
}

impl QueryLimits {
    /// The query's working memory, as errors name it.
    fn named_memory(&self) -> usize {
        self.whole.unwrap_or(self.memory)
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            cancel: Arc::new(AtomicBool::new(false)),
            memory: DEFAULT_QUERY_MEMORY,
            deadline: None,
            pool: None,
            whole: None,
            line: None,
        }
    }
}

struct Current {
    limits: QueryLimits,
    live: usize,
    /// Stack the statement has reached (in steps of [`STACK_STEP`]): resident once touched,
    /// so it counts against the working memory and the pool as the bytes held do.
    stack: usize,
    /// The most it held at once.
    peak: usize,
    /// Whether freed memory goes back to the system when the statement ends: `None`, if it
    /// held [`RELEASE_AFTER`] or more (see [`release_at_end`]).
    release: Option<bool>,
    ticket: Option<Arc<crate::util::memory::Ticket>>,
}

/// A statement that held this much gives freed memory back to the system when it ends.
const RELEASE_AFTER: usize = 32 << 20;

/// How long the oldest query waits for memory others hold before it fails.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Decides whether the statement running on this thread gives freed memory back to the
/// system when it ends, whatever it held: a COPY's pieces keep it for the next piece (giving
/// it back and faulting it in again cost as much as parsing), its last piece gives it back.
pub(crate) fn release_at_end(release: bool) {
    CURRENT.with(|c| {
        if let Some(cur) = c.borrow_mut().as_mut() {
            cur.release = Some(release);
        }
    });
}

/// Runs `f` under `limits` on this thread. What it still holds at the end (or when it
/// panics) goes back to the pool.
pub(crate) fn run_guarded<R>(limits: &QueryLimits, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Current>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let inner = CURRENT.with(|c| c.replace(self.0.take()));
            if let Some(cur) = inner {
                if let Some(pool) = &cur.limits.pool {
                    pool.give(cur.live + cur.stack);
                }
                if cur.release.unwrap_or(cur.peak >= RELEASE_AFTER) {
                    // Off the statement's thread: trimming a large heap takes a while, and the
                    // client's answer (a cancel's above all) must not wait for it.
                    if std::thread::Builder::new()
                        .name("fleetdb-trim".into())
                        .spawn(crate::util::mmap::release_free_memory)
                        .is_err()
                    {
                        crate::util::mmap::release_free_memory();
                    }
                }
            }
        }
    }
    let ticket = limits.line.clone().or_else(|| limits.pool.as_ref().map(|p| Arc::new(p.ticket())));
    let _restore = Restore(CURRENT.with(|c| {
        c.replace(Some(Current { limits: limits.clone(), live: 0, stack: 0, peak: 0, release: None, ticket }))
    }));
    f()
}

// ---------------------------------------------------------------------------------------------
// Stack depth, as PostgreSQL's check_stack_depth: the outermost statement entry notes where its
// stack starts; recursive binding, planning and evaluation ask how much is used and fail with
// 54001 past this thread's allowance, long before the stack ends.

/// Allowance of a thread nobody sized for statements (Rust's smallest default is 2 MiB).
const DEFAULT_STACK_ALLOWANCE: usize = 1 << 20;
/// What is left unused of a statement thread's stack: room for the deepest frames between
/// two checks and for dropping what was built.
const STACK_MARGIN: usize = 16 << 20;

thread_local! {
    static STACK_BASE: Cell<usize> = const { Cell::new(0) };
}

/// How much of this thread's stack a statement may use: all of a statement thread's stack
/// (`util::sync::STATEMENT_STACK`) but a margin, or a small allowance on other threads.
fn stack_allowance() -> usize {
    crate::util::sync::stack_size()
        .map_or(DEFAULT_STACK_ALLOWANCE, |s| s.saturating_sub(STACK_MARGIN).max(DEFAULT_STACK_ALLOWANCE))
}

/// Marks the start of a statement's stack for [`check_depth`] while the returned value lives;
/// inner calls keep the outermost mark.
pub(crate) fn stack_base() -> StackBase {
    let here = approximate_sp();
    let outer = STACK_BASE.with(|b| b.get());
    if outer == 0 {
        STACK_BASE.with(|b| b.set(here));
    }
    StackBase { set: outer == 0 }
}

pub(crate) struct StackBase {
    set: bool,
}

impl Drop for StackBase {
    fn drop(&mut self) {
        if self.set {
            STACK_BASE.with(|b| b.set(0));
        }
    }
}

#[inline(never)]
fn approximate_sp() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Fails with 54001 when the statement has used this thread's stack allowance (nesting too
/// deep); also checks for cancellation.
pub(crate) fn check_depth() -> SqlResult<()> {
    let base = STACK_BASE.with(|b| b.get());
    if base != 0 {
        let used = base.abs_diff(approximate_sp());
        if used > stack_allowance() {
            return Err(too_deep());
        }
        charge_stack(used)?;
    }
    check()
}

fn too_deep() -> SqlError {
    SqlError::new("54001", "stack depth limit exceeded: the statement is nested too deeply")
        .with_hint("Simplify the statement: fewer nested subqueries, set operations or common table expressions.")
}

fn pool_full(pool: &MemoryPool) -> SqlError {
    SqlError::new(
        "53200",
        format!(
            "out of memory: queries, flushes and COPY data together hold {} MiB of the server's {} MiB for them",
            pool.used() >> 20,
            pool.limit() >> 20
        ),
    )
    .with_hint("Retry when other queries have finished, or raise --memory-limit.")
}

/// The stack is charged in steps of this much.
const STACK_STEP: usize = 1 << 20;

/// Counts `used` bytes of stack against the query's working memory and the pool (a stack's
/// pages stay resident once touched): past the working memory, 54001.
fn charge_stack(used: usize) -> SqlResult<()> {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(cur) = c.as_mut() else { return Ok(()) };
        if used <= cur.stack {
            return Ok(());
        }
        let stack = (used / STACK_STEP + 1) * STACK_STEP;
        if cur.live + stack > cur.limits.memory {
            return Err(too_deep().with_hint(format!(
                "Its nesting needs more stack than the query's working memory of {} MiB: simplify it, or raise --query-memory.",
                cur.limits.named_memory() >> 20
            )));
        }
        if let Some(pool) = &cur.limits.pool
            && !pool.take(stack - cur.stack)
        {
            return Err(pool_full(pool));
        }
        cur.stack = stack;
        cur.peak = cur.peak.max(cur.live + stack);
        Ok(())
    })
}

/// Drops `x` on another thread: a failed or cancelled statement answers without waiting for
/// its intermediate results to be freed (a million allocations take 100 ms or more).
pub(crate) fn free_elsewhere<T: Send + 'static>(x: T) {
    if let Err(back) = std::thread::Builder::new().name("fleetdb-free".into()).spawn(move || drop(x)) {
        drop(back);
    }
}

/// The limits of the statement running on this thread, if one is, with its place in the
/// pool's line (for threads that work for it).
pub(crate) fn current_limits() -> Option<QueryLimits> {
    CURRENT.with(|c| c.borrow().as_ref().map(|cur| QueryLimits { line: cur.ticket.clone(), ..cur.limits.clone() }))
}

/// [`check`] at every 4,096th step `k` of a long loop (a no-op at the others).
pub(crate) fn check_every(k: usize) -> SqlResult<()> {
    if k % 4096 == 4095 { check() } else { Ok(()) }
}

/// Fails if the query was cancelled.
pub(crate) fn check() -> SqlResult<()> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(cur) if cur.limits.cancel.load(Ordering::Relaxed) => {
            Err(SqlError::new("57014", "canceling statement due to user request"))
        }
        Some(cur) if cur.limits.deadline.is_some_and(|d| std::time::Instant::now() >= d) => {
            Err(SqlError::new("57014", "canceling statement due to statement timeout"))
        }
        _ => Ok(()),
    })
}

/// Bytes held now (for an operator to restore after its inputs are dropped).
pub(crate) fn live() -> usize {
    CURRENT.with(|c| c.borrow().as_ref().map_or(0, |cur| cur.live))
}

/// Sets the bytes held to `bytes` plus `more`, failing past the limit; also checks for
/// cancellation.
pub(crate) fn hold(bytes: usize, more: usize) -> SqlResult<()> {
    check()?;
    CURRENT.with(|c| {
        if let Some(cur) = c.borrow_mut().as_mut() {
            let want = bytes.saturating_add(more);
            // The stack the statement reached counts too.
            let over = want.saturating_add(cur.stack) > cur.limits.memory;
            if let Some(pool) = &cur.limits.pool {
                if want > cur.live {
                    // When the pool is full the oldest query waits for others to finish or
                    // give up; the others give up at once.
                    let mut got = over || pool.take(want - cur.live);
                    let waited = std::time::Instant::now();
                    while !got
                        && cur.ticket.as_ref().is_some_and(|t| t.is_oldest())
                        && waited.elapsed() < POOL_WAIT
                        && !cur.limits.cancel.load(Ordering::Relaxed)
                        && cur.limits.deadline.is_none_or(|d| std::time::Instant::now() < d)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        got = pool.take(want - cur.live);
                    }
                    if !got {
                        return Err(pool_full(pool));
                    }
                } else {
                    pool.give(cur.live - want);
                }
            }
            if over {
                if let Some(pool) = &cur.limits.pool {
                    pool.give(cur.live);
                }
                cur.live = 0;
                return Err(SqlError::new(
                    "53200",
                    format!(
                        "out of memory: the query needs more than its working memory of {} MiB",
                        cur.limits.named_memory() >> 20
                    ),
                )
                .with_hint("Filter by time or machine, aggregate, or raise --query-memory."));
            }
            cur.live = want;
            cur.peak = cur.peak.max(want + cur.stack);
            WINDOW.with(|w| w.set(w.get().max(want)));
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Peaks per operator (EXPLAIN ANALYZE): the most the thread held since the innermost window
// opened. Windows nest; a closed window's peak counts in the window around it.

thread_local! {
    static WINDOW: Cell<usize> = const { Cell::new(0) };
}

/// Opens a window (see [`close_window`]); returns what to give that call.
pub(crate) fn open_window() -> usize {
    WINDOW.with(|w| w.replace(live()))
}

/// Closes the window `open_window` returned `outer` for: the most this thread held while it
/// was open (the window around it keeps the greater of the two).
pub(crate) fn close_window(outer: usize) -> usize {
    WINDOW.with(|w| {
        let peak = w.get();
        w.set(outer.max(peak));
        peak
    })
}

/// Notes that, while this thread held what it holds now, other threads working for it held
/// `bytes` more (their peaks count in this thread's open windows).
pub(crate) fn note_held_elsewhere(bytes: usize) {
    let at = live().saturating_add(bytes);
    WINDOW.with(|w| w.set(w.get().max(at)));
}

/// Fails (53200) unless `bytes` more would fit the query's memory now; holds nothing. For a
/// value about to be built whole (`repeat`, a padded string) or a result growing row by row.
pub(crate) fn room(bytes: usize) -> SqlResult<()> {
    let l = live();
    hold(l, bytes)?;
    hold(l, 0)
}

/// Adds `bytes` to what the query holds.
pub(crate) fn charge(bytes: usize) -> SqlResult<()> {
    hold(live(), bytes)
}

/// Approximate bytes of `batches` in memory.
pub(crate) fn size_of(batches: &[Batch]) -> usize {
    batches.iter().map(Batch::approx_bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(n: usize) -> SqlResult<usize> {
        check_depth()?;
        let pad = std::hint::black_box([0u8; 512]);
        if n == 0 { Ok(pad[0] as usize) } else { nest(n - 1).map(|d| d + 1 + pad[1] as usize) }
    }

    #[test]
    fn deep_recursion_fails_with_54001_before_the_stack_ends() {
        let r = std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(|| {
                crate::util::sync::note_stack_size(4 << 20);
                let _base = stack_base();
                (nest(100).is_ok(), nest(1_000_000).unwrap_err().sqlstate)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(r, (true, "54001"));
    }

    #[test]
    fn limits_apply_only_inside_run_guarded() {
        assert!(charge(usize::MAX / 2).is_ok());
        let limits = QueryLimits { memory: 1000, ..Default::default() };
        run_guarded(&limits, || {
            assert!(charge(600).is_ok());
            assert_eq!(charge(600).unwrap_err().sqlstate, "53200");
            assert!(hold(0, 900).is_ok());
            limits.cancel.store(true, Ordering::Relaxed);
            assert_eq!(check().unwrap_err().sqlstate, "57014");
        });
        assert!(check().is_ok());
    }

    /// A thread working for the oldest query waits for memory as that query would, so that
    /// of two concurrent queries one finishes; a thread of the newer one gives up at once.
    #[test]
    fn threads_of_a_query_keep_its_place_in_line() {
        let pool = Arc::new(MemoryPool::unlimited());
        pool.set_limit(100);
        let limits = QueryLimits { pool: Some(pool.clone()), ..Default::default() };
        run_guarded(&limits, || {
            let older = current_limits().unwrap();
            assert!(older.line.is_some());
            std::thread::scope(|sc| {
                // The newer query holds 80 and, refused 30 more, gives all up.
                let newer = sc.spawn(|| {
                    run_guarded(&limits, || {
                        hold(0, 80).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        let e = hold(80, 30).unwrap_err();
                        assert!(e.message.contains("together hold"), "{}", e.message);
                    })
                });
                // A thread of the older query asks for 50 while the newer holds 80: it waits.
                let worker = sc.spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    run_guarded(&older, || hold(0, 50).is_ok())
                });
                newer.join().unwrap();
                assert!(worker.join().unwrap(), "the older query's thread waited for memory");
            });
        });
        assert_eq!(pool.used(), 0);
    }
}
