//! The rules a message must meet to enter a channel, and the byte helpers around them.
//!
//! A payload must be at most the size limit, UTF-8 JSON, and every object key in it must be a
//! valid AWS IoT Analytics attribute name: a letter or one underscore, then letters and digits,
//! underscores allowed after the second character, at most 255 characters, and no two keys of
//! one object equal ignoring case (they would become the same column).

use std::collections::HashSet;

use super::Incoming;
use crate::util::json::{self, Json, Node};

/// Longest attribute name AWS IoT Analytics accepts.
pub const MAX_ATTRIBUTE_NAME: usize = 255;

/// Checks one message; the error is the reason it is refused.
pub fn message(m: &Incoming<'_>, max_bytes: usize) -> Result<(), String> {
    if m.id.is_empty() || m.id.len() > 128 {
        return Err("messageId must be 1 to 128 characters".into());
    }
    if m.payload.len() > max_bytes {
        return Err(format!("payload is {} bytes; the limit is {max_bytes}", m.payload.len()));
    }
    let text = std::str::from_utf8(&m.payload).map_err(|e| format!("payload is not UTF-8 JSON: {e}"))?;
    let doc = json::parse(text).map_err(|e| format!("payload is not valid JSON: {e}"))?;
    attribute_names(&doc)
}

/// Whether `name` is a valid attribute name (see the module comment).
pub fn valid_attribute_name(name: &str) -> bool {
    let b = name.as_bytes();
    let Some((&first, rest)) = b.split_first() else { return false };
    if b.len() > MAX_ATTRIBUTE_NAME || !(first.is_ascii_alphabetic() || first == b'_') {
        return false;
    }
    match rest.split_first() {
        None => true,
        Some((&second, tail)) => {
            second.is_ascii_alphanumeric() && tail.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
    }
}

fn attribute_names(n: &Node<'_>) -> Result<(), String> {
    match &n.value {
        Json::Object(members) => {
            let mut seen = HashSet::with_capacity(members.len());
            for (k, v) in members {
                if !valid_attribute_name(k) {
                    return Err(format!(
                        "invalid attribute name \"{}\": use a letter or _, then letters, digits and _ (at most {MAX_ATTRIBUTE_NAME})",
                        k.chars().take(64).collect::<String>()
                    ));
                }
                if !seen.insert(k.to_ascii_lowercase()) {
                    return Err(format!("attribute \"{k}\" appears twice (names are case-insensitive)"));
                }
                attribute_names(v)?;
            }
            Ok(())
        }
        Json::Array(items) => items.iter().try_for_each(attribute_names),
        _ => Ok(()),
    }
}

/// Decodes standard base64 (RFC 4648, with or without padding); `None` if malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.trim_end_matches('=').as_bytes();
    if s.len() - b.len() > 2 || b.len() % 4 == 1 || (s.len() != b.len() && !s.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for chunk in b.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | val(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let mut acc = [0u8; 3];
        acc[..chunk.len()].copy_from_slice(chunk);
        let v = u32::from_be_bytes([0, acc[0], acc[1], acc[2]]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { A[(v >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

/// The first `max` bytes of `b` as text: UTF-8 kept, other bytes as `\xNN`, cut marked `…`.
pub fn printable(b: &[u8], max: usize) -> String {
    let cut = &b[..b.len().min(max)];
    let mut out = String::with_capacity(cut.len() + 4);
    for chunk in cut.utf8_chunks() {
        out.push_str(chunk.valid());
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    if b.len() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_follow_aws() {
        for ok in ["a", "_a", "temperature", "engine_temp", "a1", "_a_b", "Ab__c", "x9_"] {
            assert!(valid_attribute_name(ok), "{ok}");
        }
        for bad in ["", "1a", "__a", "A__b", "a-b", "a b", "é", "a.b", &"a".repeat(256)] {
            assert!(!valid_attribute_name(bad), "{bad}");
        }
        assert!(valid_attribute_name("_"), "a lone underscore matches the AWS pattern");
    }

    #[test]
    fn messages_are_checked() {
        let m = |p: &str| Incoming { id: "1".into(), topic: "".into(), payload: p.as_bytes().to_vec().into() };
        assert!(message(&m(r#"{"machine_id": "M-1", "engine": {"temp": 1}}"#), 1000).is_ok());
        assert!(message(&m(r#"[{"a": 1}, 2]"#), 1000).is_ok());
        assert!(message(&m(r#"{"a": 1"#), 1000).unwrap_err().contains("not valid JSON"));
        assert!(message(&m(r#"{"a-b": 1}"#), 1000).unwrap_err().contains("invalid attribute name"));
        assert!(message(&m(r#"{"x": {"9": 1}}"#), 1000).unwrap_err().contains("invalid attribute name"));
        assert!(message(&m(r#"{"Foo": 1, "foo": 2}"#), 1000).unwrap_err().contains("twice"));
        assert!(message(&m(r#"{"a": 1}"#), 3).unwrap_err().contains("limit is 3"));
        let bin = Incoming { id: "1".into(), topic: "".into(), payload: vec![0xff, 0xfe].into() };
        assert!(message(&bin, 1000).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes(), "{e}");
            assert_eq!(base64_decode(e.trim_end_matches('=')).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decode("eyJhIjogMX0=").unwrap(), br#"{"a": 1}"#);
        for bad in ["a", "ab!d", "abc==", "=abc", "a===", "ab=c"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn printable_keeps_text_and_escapes_bytes() {
        assert_eq!(printable(b"ab\xffc", 10), "ab\\xffc");
        assert_eq!(printable(b"abcdef", 3), "abc…");
    }
}
