//! Value codecs for datastore blocks. Each block of a column is encoded by one [`Encoding`],
//! chosen per type and per block from the data:
//!
//! | type | encodings |
//! |---|---|
//! | timestamp | delta-of-delta, patched bit-packing ([`pfor`]) |
//! | int | delta, zigzag, patched bit-packing |
//! | float | decimal-scaled integers when every value has few decimals, else Gorilla XOR |
//! | text | dictionary codes (file-level dictionary) bit-packed, or plain when high-cardinality |
//! | bool | one bit per value |
//!
//! Decoders never trust their input: malformed bytes give [`CodecError`], never a panic.

pub mod bitpack;
mod block;
pub mod float;
pub mod int;
pub mod pfor;

pub use block::*;
