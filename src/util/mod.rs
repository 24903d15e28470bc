//! Small shared helpers: bounds-checked byte encoding ([`bytes`]), time arithmetic
//! ([`time`]), crash-safe file replacement ([`fsutil`]), the file framing shared by data files
//! ([`container`]), log lines summarised per key ([`lograte`]), external programs under a deadline ([`process`]) and read-only memory maps ([`mmap`], one of the crate's two `unsafe` places; the other is
//! `StrVec::get`).

pub mod bytes;
pub(crate) mod container;
pub mod faults;
pub mod fsutil;
pub(crate) mod hash;
pub mod json;
pub(crate) mod lograte;
pub(crate) mod memory;
pub(crate) mod mmap;
pub(crate) mod process;
pub(crate) mod recfile;
pub mod sync;
pub mod time;
