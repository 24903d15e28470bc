//! COPY data formats: PostgreSQL's text format (tab-separated, `\N` for NULL, backslash
//! escapes) and CSV (quoted fields, empty unquoted field for NULL, optional header line).

use super::error::{SqlError, SqlResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyFormat {
    Text { delimiter: char, null: String },
    Csv { delimiter: char, null: String, header: bool, quote: char },
}

impl Default for CopyFormat {
    fn default() -> Self {
        CopyFormat::Text { delimiter: '\t', null: "\\N".into() }
    }
}

/// Splits COPY input into rows of fields (`None` for NULL).
pub(crate) fn parse(format: &CopyFormat, data: &[u8]) -> SqlResult<Vec<Vec<Option<String>>>> {
    let text = std::str::from_utf8(data).map_err(|_| SqlError::new("22021", "COPY data is not valid UTF-8"))?;
    match format {
        CopyFormat::Text { delimiter, null } => {
            let mut rows = Vec::new();
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line == "\\." {
                    break;
                }
                if line.is_empty() {
                    continue;
                }
                rows.push(line.split(*delimiter).map(|f| if f == null { None } else { Some(unescape(f)) }).collect());
            }
            Ok(rows)
        }
        CopyFormat::Csv { delimiter, null, header, quote } => {
            let mut rows = csv_rows(text, *delimiter, *quote, null)?;
            if *header && !rows.is_empty() {
                rows.remove(0);
            }
            Ok(rows)
        }
    }
}

/// Length of the longest prefix of `buf` made of whole rows (ending in a newline that is not
/// inside a CSV quoted field), so COPY data can be loaded as it streams in.
pub(crate) fn complete_prefix(format: &CopyFormat, buf: &[u8]) -> usize {
    match format {
        CopyFormat::Text { .. } => buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
        CopyFormat::Csv { quote, .. } => {
            let q = *quote as u8;
            let mut in_quotes = false;
            let mut last = 0;
            for (i, &b) in buf.iter().enumerate() {
                if b == q {
                    in_quotes = !in_quotes;
                } else if b == b'\n' && !in_quotes {
                    last = i + 1;
                }
            }
            last
        }
    }
}

fn unescape(f: &str) -> String {
    if !f.contains('\\') {
        return f.to_string();
    }
    let mut out = String::with_capacity(f.len());
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn csv_rows(text: &str, delim: char, quote: char, null: &str) -> SqlResult<Vec<Vec<Option<String>>>> {
    let mut rows = Vec::new();
    let mut row: Vec<Option<String>> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    let end_field = |field: &mut String, quoted: &mut bool, row: &mut Vec<Option<String>>| {
        let v = std::mem::take(field);
        row.push(if !*quoted && v == null { None } else { Some(v) });
        *quoted = false;
    };
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            if c == quote {
                if chars.peek() == Some(&quote) {
                    field.push(quote);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == quote {
            in_quotes = true;
            quoted = true;
        } else if c == delim {
            end_field(&mut field, &mut quoted, &mut row);
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            if field == "\\." && row.is_empty() && !quoted {
                return Ok(rows);
            }
            end_field(&mut field, &mut quoted, &mut row);
            rows.push(std::mem::take(&mut row));
            any = false;
        } else {
            field.push(c);
        }
    }
    if in_quotes {
        return Err(SqlError::new("22P04", "unterminated CSV quoted field"));
    }
    if any && !(field == "\\." && row.is_empty()) {
        end_field(&mut field, &mut quoted, &mut row);
        rows.push(row);
    }
    Ok(rows)
}

/// Formats one row for COPY TO.
pub(crate) fn format_row(format: &CopyFormat, fields: &[Option<String>], out: &mut String) {
    let (delimiter, null) = match format {
        CopyFormat::Text { delimiter, null } | CopyFormat::Csv { delimiter, null, .. } => (*delimiter, null),
    };
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        let Some(v) = f else {
            out.push_str(null);
            continue;
        };
        match format {
            CopyFormat::Text { .. } => {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => {
                            if c == delimiter {
                                out.push('\\');
                            }
                            out.push(c);
                        }
                    }
                }
            }
            CopyFormat::Csv { quote, .. } => {
                if v.is_empty() || v.contains([delimiter, *quote, '\n', '\r']) || v == null {
                    out.push(*quote);
                    for c in v.chars() {
                        if c == *quote {
                            out.push(*quote);
                        }
                        out.push(c);
                    }
                    out.push(*quote);
                } else {
                    out.push_str(v);
                }
            }
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_csv_round_trip() {
        let rows = vec![
            vec![Some("a\tb".to_string()), None, Some("x\\y".into())],
            vec![Some("".into()), Some("q\"r,s".into()), None],
        ];
        for f in
            [CopyFormat::default(), CopyFormat::Csv { delimiter: ',', null: String::new(), header: false, quote: '"' }]
        {
            let mut out = String::new();
            for r in &rows {
                format_row(&f, r, &mut out);
            }
            assert_eq!(parse(&f, out.as_bytes()).unwrap(), rows, "{f:?}: {out}");
        }
        let csv = CopyFormat::Csv { delimiter: ',', null: String::new(), header: true, quote: '"' };
        assert_eq!(
            parse(&csv, b"a,b\n1,\"multi\nline\"\n2,\n").unwrap(),
            vec![vec![Some("1".into()), Some("multi\nline".into())], vec![Some("2".into()), None]]
        );
        assert!(parse(&csv, b"a\n\"open").is_err());
        assert_eq!(complete_prefix(&csv, b"1,\"a\nb\"\n2,\"c"), 8);
        assert_eq!(complete_prefix(&CopyFormat::default(), b"1\t2\n3"), 4);
    }
}
