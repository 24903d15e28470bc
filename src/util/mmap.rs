//! Read-only memory maps of immutable files, and the allocator's settings
//! ([`release_free_memory`], [`return_large_blocks_at_once`]). This is the one
//! module allowed `unsafe`.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

/// The bytes of a data file: mapped from disk, or owned (tests, fuzzing, tiny files).
pub(crate) enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    pub(crate) fn map(path: &Path) -> std::io::Result<Backing> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Backing::Owned(Vec::new()));
        }
        // SAFETY: fleetdb never modifies a data file after the rename that publishes it (files
        // are written whole under a temporary name, see storage-format.md), and deletes it only by
        // unlinking, which keeps the mapping valid. Another process truncating the file would
        // break this; the data directory is fleetdb's alone.
        let map = unsafe { Mmap::map(&file)? };
        Ok(Backing::Mapped(map))
    }
    /// Unmaps the pages read so far from this process (they stay in the page cache, and the
    /// next read maps them again): for files read once from end to end and rarely again,
    /// such as channel segments, which would otherwise count in the server's RSS as the
    /// whole archive it ever read. Does nothing for owned bytes.
    pub(crate) fn release_pages(&self) {
        if let Backing::Mapped(m) = self {
            // SAFETY: the map is a shared read-only map of a file that never changes (see
            // `map`): MADV_DONTNEED only drops this process's page table entries, and a later
            // read, by this thread or one still holding a slice of it, faults the same bytes
            // in again from the page cache. It is advice: a failure leaves the pages mapped.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    /// glibc: gives the free memory at the top of the heap, and free whole pages inside every
    /// arena, back to the system; returns 1 if any memory was released.
    fn malloc_trim(pad: usize) -> i32;
    /// glibc: sets one of the allocator's parameters; returns 1 when it was set.
    fn mallopt(param: i32, value: i32) -> i32;
}

/// glibc's `M_MMAP_THRESHOLD`: blocks of at least this many bytes get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_MMAP_THRESHOLD: i32 = -3;

/// Blocks of at least this size (a memtable's columns, a flush's sorted copy, a file being
/// encoded, a large hash table) are mapped on their own and unmapped when freed.
pub(crate) const LARGE_BLOCK: usize = 1 << 20;

/// Makes every block of [`LARGE_BLOCK`] or more a mapping of its own, given back to the system
/// the moment it is freed. glibc's default raises that threshold to the size of each large
/// block freed (up to 32 MiB), after which a flush's buffers come from the arenas and stay
/// there: under sustained ingest, where a flush follows a flush and
/// [`release_free_memory`] never gets an idle moment, a server whose live memory was ~70 MB
/// held ~600 MB (tools/soak.py, BENCHMARKS.md). Once per process; later calls do nothing.
pub(crate) fn return_large_blocks_at_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt takes two plain integers and changes only the allocator's own
        // parameters, under its lock; blocks allocated before keep working as they were.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK as i32);
        }
    });
}

/// Gives memory that was freed back to the operating system. glibc keeps freed small blocks in
/// per-thread arenas, so after a large query (or one that failed for want of memory) the
/// process would otherwise stay as large as its peak. Called after statements that held much,
/// and after background flushes and compactions.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain size and touches only the allocator's own state,
    // under the allocator's locks; it is safe to call from any thread at any time.
    unsafe {
        malloc_trim(0);
    }
}
