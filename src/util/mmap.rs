//! Read-only memory maps of immutable files (and giving their pages back), and
//! [`release_free_memory`]. This is the one module allowed `unsafe`.

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
