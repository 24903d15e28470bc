//! Channel segments: opening and reading every block of arbitrary bytes never panics.
#![no_main]

use fleetdb::channel::{ChSegment, Messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(seg) = ChSegment::from_bytes(data.to_vec()) {
        let _ = seg.verify();
        let mut out = Messages::default();
        let _ = seg.read(0, u64::MAX, Some((i64::MIN, i64::MAX)), &mut out);
    }
});
