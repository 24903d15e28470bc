//! Dataset schedule expressions: any text parses or is refused, never a panic; a schedule's
//! next firing is after the time asked about, and on a whole minute for cron.
#![no_main]

use fleetdb::dataset::schedule::Schedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let start = i64::from_le_bytes(data[..8].try_into().unwrap());
    let after = i64::from_le_bytes(data[8..16].try_into().unwrap());
    let Ok(text) = std::str::from_utf8(&data[16..]) else { return };
    let Ok(s) = Schedule::parse(text) else { return };
    if let Some(next) = s.next_after(start, after) {
        assert!(next > after || (after < start && next == start), "{text}: {next} after {after}");
        if matches!(s, Schedule::Cron(_)) {
            assert_eq!(next.rem_euclid(60_000_000), 0);
        }
    }
});
