//! Lock helpers and small shared state. A poisoned lock (a thread panicked while holding it)
//! is taken over rather than propagated: every structure guarded here stays consistent between
//! statements, and refusing all later work would turn one bug into an outage.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Days of data kept (`None`: unlimited), changeable while in use (ALTER … SET).
#[derive(Debug, Default)]
pub struct Retention(AtomicU32);

impl Retention {
    pub fn new(days: Option<u32>) -> Self {
        Retention(AtomicU32::new(days.unwrap_or(0)))
    }
    pub fn get(&self) -> Option<u32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            d => Some(d),
        }
    }
    pub fn set(&self, days: Option<u32>) {
        self.0.store(days.unwrap_or(0), Ordering::Relaxed);
    }
}

/// Stack of every thread that parses, binds or evaluates SQL (sessions, pipelines, datasets).
/// Nesting is bounded where statements are bound (SQLSTATE 54001 past it), and this is sized
/// so the bound is reached long before the stack ends. It is address space: only the pages a
/// deep statement touches are ever resident.
pub const STATEMENT_STACK: usize = 256 << 20;

/// Threads one query runs on at most: the machine's cores, at most 8.
pub static PARALLELISM: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8));

thread_local! {
    static STACK_SIZE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Notes, first thing on a thread started with a stack of `bytes`, how large its stack is.
pub fn note_stack_size(bytes: usize) {
    STACK_SIZE.with(|s| s.set(bytes));
}

/// This thread's stack size, if it was noted.
pub fn stack_size() -> Option<usize> {
    Some(STACK_SIZE.with(|s| s.get())).filter(|&s| s > 0)
}

/// Starts thread `name` (once per `started` flag) that calls `step` on `owner` for as long as
/// the owner lives, sleeping for what `step` returns between calls. The thread holds the owner
/// only during a call, so dropping the owner (with its engine) ends it.
pub fn spawn_service_loop<T: Send + Sync + 'static>(
    owner: &std::sync::Arc<T>,
    started: &std::sync::atomic::AtomicBool,
    name: &str,
    step: fn(&T) -> Option<std::time::Duration>,
) {
    if started.swap(true, Ordering::Relaxed) {
        return;
    }
    let me = std::sync::Arc::downgrade(owner);
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(STATEMENT_STACK)
        .spawn(move || {
            note_stack_size(STATEMENT_STACK);
            while let Some(o) = me.upgrade() {
                let pause = step(&o);
                drop(o);
                if let Some(d) = pause {
                    std::thread::sleep(d);
                }
            }
        })
        .expect("spawning a background thread");
}
