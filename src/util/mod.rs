//! Small shared helpers: bounds-checked byte encoding ([`bytes`]), time arithmetic
//! ([`time`]) and crash-safe file replacement ([`fsutil`]).

pub mod bytes;
pub mod fsutil;
pub mod time;
