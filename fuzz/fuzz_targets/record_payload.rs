//! WAL record payloads and every value codec: arbitrary bytes decode or fail, never panic.
#![no_main]

use fleetdb::datastore::codec::{self, Dictionary, Encoding};
use fleetdb::engine::records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let _ = records::decode(data[0] % 4, &data[3..]);
    if let Some(enc) = Encoding::from_u8(data[1] % 8) {
        let dict = std::sync::Arc::new(["a", "b", "c"].into_iter().collect::<Dictionary>());
        let _ = codec::decode(enc, &data[3..], data[2] as usize * 4, Some(&dict));
    }
});
