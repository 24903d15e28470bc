//! The pipeline's message decoder: any bytes, split into messages at newlines, decode into a
//! column batch or a per-message error, never a panic. Every message is accounted for once,
//! every column has a row per decoded message, and the paths ADD ATTRIBUTES reads resolve.
#![no_main]

use fleetdb::channel::Messages;
use fleetdb::pipeline::decode::{ROW, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut msgs = Messages::default();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        msgs.push(i as i64, "", "", line);
    }
    let paths = ["a.b[0]".to_string(), "x[1][2].y".to_string()];
    let d = decode(&msgs, &paths);
    let rows = d.batch.num_rows();
    assert_eq!(rows + d.errors.len(), msgs.len());
    assert!(d.batch.columns.iter().all(|c| c.len() == rows));
    assert!(d.batch.column(ROW).is_some());
});
