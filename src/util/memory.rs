//! [`MemoryPool`]: the memory that every query of an engine shares (`--memory-limit`, less
//! what ingest buffers and memtables may hold). Each query takes its bytes from it as they are
//! charged and gives them back as they are released, so all queries together stay under it.
//! One pool per engine (the statement layer's `Services` holds it).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[derive(Debug)]
pub struct MemoryPool {
    limit: AtomicUsize,
    used: AtomicUsize,
    /// Tickets of the queries running now, in the order they started. When the pool is
    /// full, the oldest waits for memory and the others give theirs up, so that concurrent
    /// heavy queries finish one after another instead of all failing together.
    running: Mutex<BTreeSet<u64>>,
    next_ticket: AtomicU64,
}

/// A running query's place in line; it leaves the line when dropped.
#[derive(Debug)]
pub struct Ticket {
    pool: std::sync::Arc<MemoryPool>,
    id: u64,
}

impl Ticket {
    /// Whether this query started before every other running one.
    pub fn is_oldest(&self) -> bool {
        self.pool.lock().first() == Some(&self.id)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pool.lock().remove(&self.id);
    }
}

impl MemoryPool {
    /// A pool without a limit (until [`MemoryPool::set_limit`]).
    pub fn unlimited() -> MemoryPool {
        MemoryPool {
            limit: AtomicUsize::new(usize::MAX),
            used: AtomicUsize::new(0),
            running: Mutex::new(BTreeSet::new()),
            next_ticket: AtomicU64::new(0),
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Enters a query in line.
    pub fn ticket(self: &std::sync::Arc<Self>) -> Ticket {
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id);
        Ticket { pool: self.clone(), id }
    }
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
    /// Takes `bytes` if they fit under the limit.
    pub fn take(&self, bytes: usize) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit() {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }
    /// Gives back `bytes` taken before.
    pub fn give(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
    /// Takes `bytes` even past the limit: for work that frees memory (writing a memtable to
    /// a file) and must not be refused; queries then find less room until it gives them back.
    pub fn take_anyway(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Bytes held from a pool by something other than a query (a COPY's pending data, a flush's
/// working memory), given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: std::sync::Arc<MemoryPool>,
    bytes: usize,
}

impl Reservation {
    /// Nothing held yet.
    pub(crate) fn new(pool: &std::sync::Arc<MemoryPool>) -> Reservation {
        Reservation { pool: pool.clone(), bytes: 0 }
    }
    /// Holds `bytes` whatever the limit (see [`MemoryPool::take_anyway`]).
    pub(crate) fn anyway(pool: &std::sync::Arc<MemoryPool>, bytes: usize) -> Reservation {
        pool.take_anyway(bytes);
        Reservation { pool: pool.clone(), bytes }
    }
    /// Holds `bytes` instead of what it held; false (holding what it held) if more does not
    /// fit under the pool's limit.
    pub(crate) fn resize(&mut self, bytes: usize) -> bool {
        if bytes > self.bytes {
            if !self.pool.take(bytes - self.bytes) {
                return false;
            }
        } else {
            self.pool.give(self.bytes - bytes);
        }
        self.bytes = bytes;
        true
    }
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
    /// Bytes its pool holds now, for all.
    pub(crate) fn pool_used(&self) -> usize {
        self.pool.used()
    }
    pub(crate) fn pool_limit(&self) -> usize {
        self.pool.limit()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back() {
        let p = std::sync::Arc::new(MemoryPool::unlimited());
        p.set_limit(100);
        assert!(p.take(60));
        assert!(!p.take(41));
        assert_eq!(p.used(), 60);
        assert!(p.take(40));
        p.give(100);
        assert_eq!(p.used(), 0);
        let (a, b) = (p.ticket(), p.ticket());
        assert!(a.is_oldest() && !b.is_oldest());
        drop(a);
        assert!(b.is_oldest());
    }

    #[test]
    fn reservations_hold_until_dropped() {
        let p = std::sync::Arc::new(MemoryPool::unlimited());
        p.set_limit(100);
        let mut r = Reservation::new(&p);
        assert!(r.resize(70));
        assert!(!r.resize(101), "past the limit");
        assert_eq!((r.bytes, p.used()), (70, 70));
        assert!(r.resize(10));
        assert_eq!(p.used(), 10);
        let forced = Reservation::anyway(&p, 200);
        assert_eq!(p.used(), 210);
        assert!(!p.take(1), "nothing fits while the pool is over its limit");
        drop((r, forced));
        assert_eq!(p.used(), 0);
    }
}
