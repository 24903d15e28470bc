//! The ingest message decoder: an arbitrary HTTP BatchPutMessage body is decoded or refused
//! with a reason, never a panic; every decoded payload then goes through the channel checks
//! (size, UTF-8 JSON, attribute names), and the same bytes as one NDJSON line or MQTT payload
//! do too. The one-pass scanner agrees with the full parser.
#![no_main]

use fleetdb::ingest::{Incoming, check, http};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match http::parse_batch(data, 100) {
        Ok(req) => {
            assert!(!req.messages.is_empty() && req.messages.len() <= 100);
            for m in req.messages {
                if let Ok(payload) = m.payload {
                    let msg = Incoming { id: m.id, topic: "".into(), payload };
                    let _ = check::message(&msg, 128 * 1024);
                }
            }
        }
        Err(reason) => assert!(!reason.to_string().is_empty()),
    }
    let raw = Incoming { id: "1".into(), topic: "t".into(), payload: data.into() };
    if let Err(reason) = check::message(&raw, 1024) {
        assert!(!reason.to_string().is_empty());
    }
    // The one-pass scanner never accepts what the full parser and name checks refuse.
    if let Ok(text) = std::str::from_utf8(data)
        && check::valid_fast(data)
    {
        let doc = fleetdb::util::json::parse(text).expect("the fast scanner accepted invalid JSON");
        drop(doc);
        assert!(check::message(&raw, usize::MAX).is_ok());
    }
    let _ = check::printable(data, 64);
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(decoded) = check::base64_decode(text)
    {
        assert_eq!(check::base64_decode(&check::base64_encode(&decoded)), Some(decoded));
    }
});
