//! The PostgreSQL connection framing and message decoder: arbitrary bytes, before and after
//! authentication, split anywhere, frame to the same result (the same bytes, or the same
//! refusal); the framed bytes decode without panicking (the framing checks the fields of the
//! extended protocol's messages, which pgwire's decoder reads past their end); nothing grows
//! past the input but a refused query's short stand-in.
#![no_main]

use fleetdb::server::framing::{FrameLimits, decode_all, frame_in_pieces};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let limits = FrameLimits { max_startup_message: 300, max_message: 2000 };
    for authenticated in [false, true] {
        let whole = frame_in_pieces(input, input.len(), limits, authenticated);
        let pieces = frame_in_pieces(input, split as usize + 1, limits, authenticated);
        match (&whole, &pieces) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b);
                assert!(a.len() <= input.len() + 64 * (input.len() / 2005 + 1));
                decode_all(a);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("the framing depends on how the bytes arrive: {whole:?} / {pieces:?}"),
        }
    }
});
