//! A small JSON reader and writer (RFC 8259).
//!
//! [`parse`] builds a [`Json`] tree that borrows from the input: strings without escapes and
//! every value's source text (its span) are slices of the input, so extracting one attribute
//! of a message (`payload -> 'temperature'`) copies nothing. Numbers keep their source text
//! too, so integers beyond 2^53 and decimals read back exactly as sent.
//!
//! Nesting is limited to [`MAX_DEPTH`] levels, so hostile input cannot exhaust the stack.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members in input order; duplicates are kept (lookups take the last, as PostgreSQL's
    /// `->` on json does).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A value and the exact input text it was parsed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node<'a> {
    pub value: Json<'a>,
    pub text: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub message: String,
    /// Byte offset in the input.
    pub offset: usize,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(input: &str) -> Result<Node<'_>, JsonError> {
    let mut p = Parser { s: input, b: input.as_bytes(), pos: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.b.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, m: &str) -> JsonError {
        JsonError { message: m.to_string(), offset: self.pos }
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }
    fn lit(&mut self, word: &str, v: Json<'a>) -> Result<Json<'a>, JsonError> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }
    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        let start = self.pos;
        let value = match self.b.get(self.pos) {
            None => return Err(self.err("unexpected end of input")),
            Some(b'n') => self.lit("null", Json::Null)?,
            Some(b't') => self.lit("true", Json::Bool(true))?,
            Some(b'f') => self.lit("false", Json::Bool(false))?,
            Some(b'"') => Json::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => Json::Number(self.number()?),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("JSON nested too deeply"));
                }
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.pos) {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']' in array")),
                        }
                    }
                }
                Json::Array(items)
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("JSON nested too deeply"));
                }
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        if self.b.get(self.pos) != Some(&b'"') {
                            return Err(self.err("expected a string key in object"));
                        }
                        let k = self.string()?;
                        self.ws();
                        if self.b.get(self.pos) != Some(&b':') {
                            return Err(self.err("expected ':' after object key"));
                        }
                        self.pos += 1;
                        self.ws();
                        let v = self.value(depth + 1)?;
                        members.push((k, v));
                        self.ws();
                        match self.b.get(self.pos) {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or '}' in object")),
                        }
                    }
                }
                Json::Object(members)
            }
            Some(_) => return Err(self.err("unexpected character")),
        };
        Ok(Node { value, text: &self.s[start..self.pos] })
    }
    fn number(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.b.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > s
        };
        if self.b[self.pos] == b'-' {
            self.pos += 1;
        }
        if self.b.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return Err(self.err("invalid number"));
        }
        if self.b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.err("invalid number: digits expected after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.b.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.err("invalid number: digits expected in exponent"));
            }
        }
        Ok(&self.s[start..self.pos])
    }
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self.b.get(self.pos..self.pos + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let h = std::str::from_utf8(h).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
        let h = h.ok_or_else(|| self.err("invalid \\u escape"))?;
        self.pos += 4;
        Ok(h)
    }
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        // Fast path: no escapes.
        while let Some(&c) = self.b.get(self.pos) {
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Borrowed(&self.s[start..self.pos - 1]));
                }
                b'\\' => break,
                0..=0x1f => return Err(self.err("control character in string")),
                _ => self.pos += 1,
            }
        }
        let mut out = String::from(&self.s[start..self.pos]);
        loop {
            let Some(&c) = self.b.get(self.pos) else { return Err(self.err("unterminated string")) };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(&e) = self.b.get(self.pos) else { return Err(self.err("unterminated string")) };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.err("unpaired surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("invalid low surrogate in \\u escape"));
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(cp).ok_or_else(|| self.err("invalid \\u escape"))?;
                            if ch == '\0' {
                                return Err(self.err("\\u0000 cannot be stored in text"));
                            }
                            out.push(ch);
                        }
                        _ => return Err(self.err("invalid escape in string")),
                    }
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => {
                    // Copy the run up to the next quote or backslash (UTF-8 stays whole).
                    let run = self.pos;
                    while self.b.get(self.pos).is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20) {
                        self.pos += 1;
                    }
                    out.push_str(&self.s[run..self.pos]);
                }
            }
        }
    }
}

impl<'a> Node<'a> {
    /// The member `key` of an object (the last one, if repeated).
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.value {
            Json::Object(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Element `i` of an array; negative counts from the end.
    pub fn index(&self, i: i64) -> Option<&Node<'a>> {
        match &self.value {
            Json::Array(a) => {
                let i = if i < 0 { a.len() as i64 + i } else { i };
                usize::try_from(i).ok().and_then(|i| a.get(i))
            }
            _ => None,
        }
    }
    /// PostgreSQL's `json_typeof`.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
    /// The value as `->>` gives it: strings unquoted, JSON null as `None`, others as JSON text.
    pub fn as_text(&self) -> Option<Cow<'a, str>> {
        match &self.value {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            _ => Some(Cow::Borrowed(self.text)),
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_keeps_their_source_text() {
        let doc = r#" {"a": 1.50, "b": [true, null, "x\"y"], "c": {"d": -2e3}, "a": "last"} "#;
        let n = parse(doc).unwrap();
        assert_eq!(n.get("a").unwrap().value, Json::String("last".into()));
        let b = n.get("b").unwrap();
        assert_eq!(b.text, r#"[true, null, "x\"y"]"#);
        assert_eq!(b.index(-1).unwrap().as_text().unwrap(), "x\"y");
        assert_eq!(b.index(1).unwrap().as_text(), None);
        assert_eq!(b.index(3), None);
        assert_eq!(n.get("c").unwrap().get("d").unwrap().value, Json::Number("-2e3"));
        assert_eq!(n.get("c").unwrap().type_name(), "object");
    }

    #[test]
    fn decodes_escapes_and_surrogate_pairs() {
        let n = parse(r#""\u00e9\ud83d\ude00\n\/""#).unwrap();
        assert_eq!(n.as_text().unwrap(), "é😀\n/");
    }

    #[test]
    fn rejects_malformed_input_with_its_offset() {
        for (bad, at) in [
            ("", 0),
            ("{", 1),
            ("[1,]", 3),
            ("01", 1),
            ("1.", 2),
            ("\"a", 2),
            ("{\"a\" 1}", 5),
            ("tru", 0),
            ("\"\\ud800\"", 7),
            ("[1] x", 4),
            ("\"\\u0000\"", 7),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.offset, at, "{bad:?}: {e}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deeply"));
    }

    #[test]
    fn strings_round_trip_through_the_writer() {
        let mut out = String::new();
        write_string(&mut out, "q\"b\\n\n\u{1}é");
        assert_eq!(parse(&out).unwrap().as_text().unwrap(), "q\"b\\n\n\u{1}é");
    }
}
