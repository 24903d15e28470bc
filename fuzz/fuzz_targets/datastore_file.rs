//! Datastore files: opening, verifying, reading and tag lookups on arbitrary bytes never panic.
#![no_main]

use fleetdb::datastore::DsFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = DsFile::from_bytes(data.to_vec()) {
        let _ = f.verify();
        let _ = f.read_all();
        for c in 0..f.meta.columns.len() {
            let _ = f.tag_rows(c, "M-0001");
            let _ = f.sum_f64(c);
        }
    }
});
