//! The JSON reader: arbitrary text parses or fails with an offset inside the input, never
//! panics; every value's source text re-parses to the same value, and strings survive the
//! writer.
#![no_main]

use fleetdb::util::json::{self, Json, Node};
use libfuzzer_sys::fuzz_target;

fn check(n: &Node<'_>, input: &str) {
    let again = json::parse(n.text).expect("a value's source text is valid JSON");
    assert_eq!(again.value, n.value);
    match &n.value {
        Json::String(s) => {
            let mut out = String::new();
            json::write_string(&mut out, s);
            assert_eq!(json::parse(&out).expect("writer output parses").as_text().as_deref(), Some(s.as_ref()));
        }
        Json::Array(items) => items.iter().for_each(|i| check(i, input)),
        Json::Object(members) => members.iter().for_each(|(_, v)| check(v, input)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match json::parse(text) {
        Ok(n) => check(&n, text),
        Err(e) => assert!(e.offset <= text.len()),
    }
});
