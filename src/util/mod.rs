//! Small shared helpers: bounds-checked byte encoding ([`bytes`]), time arithmetic
//! ([`time`]), crash-safe file replacement ([`fsutil`]), the file framing shared by data files
//! ([`container`]) and read-only memory maps ([`mmap`], the crate's only `unsafe`).

pub mod bytes;
pub mod container;
pub mod fsutil;
pub mod json;
pub mod mmap;
pub mod sync;
pub mod time;
