//! WAL segments: any bytes give records or a reason, never a panic; whatever is returned
//! re-encodes to the same bytes.
#![no_main]

use fleetdb::wal::format::{HEADER_LEN, encode_record};
use fleetdb::wal::{SegmentScan, scan_segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let SegmentScan::Records { records, tail, .. } = scan_segment(data) {
        let mut again = Vec::new();
        for r in &records {
            encode_record(r.lsn, r.kind, &r.payload, &mut again);
        }
        let end = tail.map_or(data.len(), |(at, _)| at);
        assert_eq!(&data[HEADER_LEN..end], &again[..]);
    }
});
