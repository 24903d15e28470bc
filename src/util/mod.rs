//! Small shared helpers: bounds-checked byte encoding ([`bytes`]), time arithmetic
//! ([`time`]), crash-safe file replacement ([`fsutil`]), the file framing shared by data files
//! ([`container`]), log lines summarised per key ([`lograte`]), external programs under a deadline ([`process`]) and read-only memory maps ([`mmap`], one of the crate's two `unsafe` places; the other is
//! `StrVec::get`).

pub mod bytes;
pub mod container;
pub mod faults;
pub mod fsutil;
pub mod hash;
pub mod json;
pub mod lograte;
pub mod memory;
pub mod mmap;
pub mod process;
pub mod recfile;
pub mod sync;
pub mod time;
