//! A program dataset's output CSV: any bytes become typed columns of equal length or are
//! refused with a reason, never a panic; and the definitions around programs and deliveries
//! (a dataset's options) are accepted or refused the same way.
#![no_main]

use fleetdb::dataset::program::parse_output;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((cols, batch)) = parse_output(data) {
        assert_eq!(cols.len(), batch.columns.len());
        for c in &batch.columns {
            assert_eq!(c.len(), batch.num_rows());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fleetdb::dataset::grammar::program_body(text);
        let _ = fleetdb::dataset::incremental::buckets(text);
        let (key, value) = text.split_once('=').unwrap_or(("deliver_file", text));
        let options = vec![(key.trim().to_string(), value.to_string())];
        let _ = fleetdb::dataset::DatasetDef::new("d", "SELECT 1", &options, 0);
    }
});
