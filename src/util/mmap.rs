//! Read-only memory maps of immutable files. This is the one module allowed `unsafe`.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

/// The bytes of a data file: mapped from disk, or owned (tests, fuzzing, tiny files).
pub enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    pub fn map(path: &Path) -> std::io::Result<Backing> {
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
    pub fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}
