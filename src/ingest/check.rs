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
pub fn message(m: &Incoming<'_>, max_bytes: usize) -> crate::Result<()> {
    message_text(m, max_bytes).map_err(crate::Error::Invalid)
}

/// [`message`], its error a reason as text.
fn message_text(m: &Incoming<'_>, max_bytes: usize) -> std::result::Result<(), String> {
    if m.id.is_empty() || m.id.len() > 128 {
        return Err("messageId must be 1 to 128 characters".into());
    }
    if m.payload.len() > max_bytes {
        return Err(format!("payload is {} bytes; the limit is {max_bytes}", m.payload.len()));
    }
    let text = std::str::from_utf8(&m.payload).map_err(|e| format!("payload is not UTF-8 JSON: {e}"))?;
    if valid_fast(text.as_bytes()) {
        return Ok(());
    }
    // The full parser says what is wrong.
    let doc = json::parse(text).map_err(|e| format!("payload is not valid JSON: {e}"))?;
    attribute_names(&doc)
}

/// One pass over the bytes, no allocation for small objects: true only if `b` is one JSON
/// value whose object keys are all valid attribute names (unescaped), no two alike in one
/// object. False means "look closer" ([`message`] then runs the full parser, which either
/// accepts it after all, e.g. a key written with escapes, or says what is wrong).
pub fn valid_fast(b: &[u8]) -> bool {
    let mut s = Scanner { b, i: 0 };
    s.ws();
    if !s.value(0) {
        return false;
    }
    s.ws();
    s.i == b.len()
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn lit(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < json::MAX_DEPTH && self.object(depth + 1),
            Some(b'[') => depth < json::MAX_DEPTH && self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.lit(b"true"),
            Some(b'f') => self.lit(b"false"),
            Some(b'n') => self.lit(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }
    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }
    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return false;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }
    /// A string; its raw bytes between the quotes, and whether it had escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.i += 1; // the opening quote
        let start = self.i;
        let mut escaped = false;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    let b: &'a [u8] = self.b;
                    let raw = &b[start..self.i];
                    self.i += 1;
                    return Some((raw, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            let cp = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                            // \u0000 and surrogates: the full parser decides (it refuses
                            // \u0000 and unpaired surrogates).
                            if cp == 0 || (0xD800..0xE000).contains(&cp) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }
    /// Past an opening bracket: skips it and white space; true (past it too) if `close`
    /// follows at once.
    fn empty(&mut self, close: u8) -> bool {
        self.i += 1;
        self.ws();
        let empty = self.peek() == Some(close);
        self.i += usize::from(empty);
        empty
    }
    fn array(&mut self, depth: usize) -> bool {
        if self.empty(b']') {
            return true;
        }
        loop {
            self.ws();
            if !self.value(depth) {
                return false;
            }
            match self.after_item(b']') {
                Some(true) => return true,
                Some(false) => {}
                None => return false,
            }
        }
    }
    /// After an array element or object member: `Some(true)` past the closing `close`,
    /// `Some(false)` past a comma, `None` for anything else.
    fn after_item(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        if c != b',' && c != close {
            return None;
        }
        self.i += 1;
        Some(c == close)
    }
    fn object(&mut self, depth: usize) -> bool {
        if self.empty(b'}') {
            return true;
        }
        let mut keys: Vec<&'a [u8]> = Vec::new();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return false;
            }
            let Some((key, escaped)) = self.string() else { return false };
            let Ok(name) = std::str::from_utf8(key) else { return false };
            if escaped || !valid_attribute_name(name) || keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return false;
            }
            keys.push(key);
            self.ws();
            if self.peek() != Some(b':') {
                return false;
            }
            self.i += 1;
            self.ws();
            if !self.value(depth) {
                return false;
            }
            match self.after_item(b'}') {
                Some(true) => return true,
                Some(false) => {}
                None => return false,
            }
        }
    }
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
        assert!(message(&m(r#"{"a": 1"#), 1000).unwrap_err().to_string().contains("not valid JSON"));
        assert!(message(&m(r#"{"a-b": 1}"#), 1000).unwrap_err().to_string().contains("invalid attribute name"));
        assert!(message(&m(r#"{"x": {"9": 1}}"#), 1000).unwrap_err().to_string().contains("invalid attribute name"));
        assert!(message(&m(r#"{"Foo": 1, "foo": 2}"#), 1000).unwrap_err().to_string().contains("twice"));
        assert!(message(&m(r#"{"a": 1}"#), 3).unwrap_err().to_string().contains("limit is 3"));
        let bin = Incoming { id: "1".into(), topic: "".into(), payload: vec![0xff, 0xfe].into() };
        assert!(message(&bin, 1000).unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn the_fast_scanner_agrees_with_the_parser() {
        for ok in [
            r#"{"machine_id": "M-1", "t": -1.5e3, "ok": true, "x": null, "a": [1, {"b": "c\"d"}]}"#,
            "[]",
            " 42 ",
            r#""\u00e9""#,
            r#"{"a": {"b": {"c": []}}}"#,
        ] {
            assert!(valid_fast(ok.as_bytes()), "{ok}");
        }
        let escaped_key = r#"{"\u0061": 1}"#;
        assert!(!valid_fast(escaped_key.as_bytes()));
        let m = Incoming { id: "1".into(), topic: "".into(), payload: escaped_key.as_bytes().to_vec().into() };
        assert!(message(&m, 1000).is_ok(), "escaped keys go to the full parser, which accepts this one");
        for bad in [
            r#""\u0000""#,
            r#""\ud800""#,
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "\"\t\"",
            r#""\x""#,
            "1 2",
            r#"{"a-b": 1}"#,
            r#"{"a": 1, "A": 2}"#,
            r#"{"a": 1,}"#,
        ] {
            assert!(!valid_fast(bad.as_bytes()), "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(!valid_fast(deep.as_bytes()));
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
