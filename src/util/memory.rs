//! [`MemoryPool`]: the memory that every query of an engine shares (`--memory-limit`, less
//! what ingest buffers and memtables may hold). Each query takes its bytes from it as they are
//! charged and gives them back as they are released, so all queries together stay under it.
//! One pool per engine, as an [`crate::engine::Engine::service`].

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct MemoryPool {
    limit: AtomicUsize,
    used: AtomicUsize,
}

impl MemoryPool {
    /// A pool without a limit (until [`MemoryPool::set_limit`]).
    pub fn unlimited() -> MemoryPool {
        MemoryPool { limit: AtomicUsize::new(usize::MAX), used: AtomicUsize::new(0) }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back() {
        let p = MemoryPool::unlimited();
        p.set_limit(100);
        assert!(p.take(60));
        assert!(!p.take(41));
        assert_eq!(p.used(), 60);
        assert!(p.take(40));
        p.give(100);
        assert_eq!(p.used(), 0);
    }
}
