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
    let mut rows = Rows::default();
    read_fields(format, text, &mut rows).map_err(|e| match e {
        ColumnsError::Width { .. } => SqlError::new("XX000", "rows of any width are taken"),
        ColumnsError::Other(e) => e,
    })?;
    let mut rows = rows.rows;
    if let CopyFormat::Csv { header: true, .. } = format
        && !rows.is_empty()
    {
        rows.remove(0);
    }
    Ok(rows)
}

/// Length of the longest prefix of `buf` made of whole rows (ending in a newline that is not
/// inside a CSV quoted field), so COPY data can be loaded as it streams in.
pub(crate) fn complete_prefix(format: &CopyFormat, buf: &[u8]) -> usize {
    match format {
        CopyFormat::Text { .. } => buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
        CopyFormat::Csv { quote, .. } => {
            let q = *quote as u8;
            // Without a quote byte (most data), the last newline ends the last whole row: a
            // count the compiler vectorizes, then a search from the end.
            if buf.iter().filter(|&&b| b == q).count() == 0 {
                return buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            }
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

/// Appends `f` with the text format's backslash escapes resolved.
fn unescape_into(f: &str, out: &mut String) {
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
}

/// Where COPY data split into columns went wrong.
enum ColumnsError {
    /// Row `row` (1-based within the piece parsed) has `got` fields.
    Width {
        row: usize,
        got: usize,
    },
    Other(SqlError),
}

/// Where the COPY parser puts the fields it reads.
trait Fields {
    fn field(&mut self, v: Option<&str>);
    fn end_row(&mut self) -> Result<(), ColumnsError>;
    /// Whether the row being read has a field yet.
    fn in_row(&self) -> bool;
}

/// Rows of fields, as [`parse`] returns them.
#[derive(Default)]
struct Rows {
    rows: Vec<Vec<Option<String>>>,
    row: Vec<Option<String>>,
}

impl Fields for Rows {
    fn field(&mut self, v: Option<&str>) {
        self.row.push(v.map(str::to_string));
    }
    fn end_row(&mut self) -> Result<(), ColumnsError> {
        self.rows.push(std::mem::take(&mut self.row));
        Ok(())
    }
    fn in_row(&self) -> bool {
        !self.row.is_empty()
    }
}

/// Text columns being filled from COPY rows: each field's bytes go straight into its column.
struct Columns {
    values: Vec<crate::batch::StrVec>,
    valid: Vec<crate::batch::Bitmap>,
    nulls: Vec<bool>,
    /// Fields of the row being read.
    at: usize,
    rows: usize,
}

impl Columns {
    fn new(width: usize) -> Columns {
        Columns {
            values: (0..width).map(|_| crate::batch::StrVec::with_capacity(0, 0)).collect(),
            valid: vec![crate::batch::Bitmap::default(); width],
            nulls: vec![false; width],
            at: 0,
            rows: 0,
        }
    }
    fn finish(self) -> Vec<crate::batch::Column> {
        self.values
            .into_iter()
            .zip(self.valid)
            .zip(self.nulls)
            .map(|((v, m), any_null)| {
                crate::batch::Column::with_validity(crate::batch::Values::Text(v), any_null.then_some(m))
            })
            .collect()
    }
}

impl Fields for Columns {
    fn field(&mut self, v: Option<&str>) {
        if let Some(c) = self.values.get_mut(self.at) {
            c.push(v.unwrap_or(""));
            self.valid[self.at].push(v.is_some());
            self.nulls[self.at] |= v.is_none();
        }
        self.at += 1;
    }
    fn end_row(&mut self) -> Result<(), ColumnsError> {
        self.rows += 1;
        if self.at != self.values.len() {
            return Err(ColumnsError::Width { row: self.rows, got: self.at });
        }
        self.at = 0;
        Ok(())
    }
    fn in_row(&self) -> bool {
        self.at > 0
    }
}

/// Splits COPY input into `width` text columns (NULL where the format says so), as [`parse`]
/// reads rows, without allocating per field. Large input is parsed by two threads, each
/// taking the rows on one side of a row boundary near the middle. A row with another number
/// of fields is refused (22P04).
pub(crate) fn parse_columns(format: &CopyFormat, data: &[u8], width: usize) -> SqlResult<Vec<crate::batch::Column>> {
    let text = std::str::from_utf8(data).map_err(|_| SqlError::new("22021", "COPY data is not valid UTF-8"))?;
    let body = match format {
        CopyFormat::Csv { header: true, quote, .. } => &text[row_end(text, *quote, 0).unwrap_or(text.len())..],
        _ => text,
    };
    let quote = match format {
        CopyFormat::Csv { quote, .. } => Some(*quote),
        CopyFormat::Text { .. } => None,
    };
    // The end marker (a line `\.`) ends the data: the second half must not read past it.
    // Without a backslash (most data) there is none to search for.
    let marker = body.as_bytes().contains(&b'\\') && (body.contains("\\.\n") || body.contains("\\.\r"));
    let split = (body.len() >= 1 << 20 && !marker).then(|| middle_row_start(body, quote)).flatten();
    // Rows of the second half are numbered after the first's.
    let refused = |e: ColumnsError, rows_before: usize| match e {
        ColumnsError::Width { row, got } => SqlError::new(
            "22P04",
            format!("COPY row {} has {got} columns where {width} were expected", rows_before + row),
        ),
        ColumnsError::Other(e) => e,
    };
    let parts = match split {
        Some(mid) => {
            let (a, b) = body.split_at(mid);
            let (ra, rb) = std::thread::scope(|sc| {
                let h = sc.spawn(|| columns_of(format, b, width));
                (columns_of(format, a, width), h.join())
            });
            let ra = ra.map_err(|e| refused(e, 0))?;
            let rb = rb
                .map_err(|_| SqlError::new("XX000", "a COPY parser thread failed"))?
                .map_err(|e| refused(e, ra.rows))?;
            let mut cols = ra.finish();
            for (c, more) in cols.iter_mut().zip(rb.finish()) {
                c.extend(&more);
            }
            cols
        }
        None => columns_of(format, body, width).map_err(|e| refused(e, 0))?.finish(),
    };
    Ok(parts)
}

/// The byte after the row that starts at `from` ends (its line end: `\n`, `\r\n` or `\r`, as
/// the parser reads them), CSV quotes respected.
fn row_end(text: &str, quote: char, from: usize) -> Option<usize> {
    let mut in_quotes = false;
    for (i, c) in text[from..].char_indices() {
        if c == quote {
            in_quotes = !in_quotes;
        } else if (c == '\n' || c == '\r') && !in_quotes {
            let after = from + i + 1;
            return Some(if c == '\r' && text[after..].starts_with('\n') { after + 1 } else { after });
        }
    }
    None
}

/// The start of the first row after the middle of `text` (quotes counted from the start, as
/// the parser toggles them), or `None` when there is none.
fn middle_row_start(text: &str, quote: Option<char>) -> Option<usize> {
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid += 1;
    }
    let at = match quote {
        None => text[mid..].find('\n').map(|i| mid + i + 1),
        Some(q) => {
            let mut qb = [0u8; 4];
            let qs: &str = q.encode_utf8(&mut qb);
            let inside = text[..mid].matches(qs).count() % 2 == 1;
            let mut in_quotes = inside;
            text[mid..].char_indices().find_map(|(i, c)| {
                if c == q {
                    in_quotes = !in_quotes;
                    None
                } else if c == '\n' && !in_quotes {
                    Some(mid + i + 1)
                } else {
                    None
                }
            })
        }
    }?;
    (at < text.len()).then_some(at)
}

/// The rows of `text` (no header) into columns.
fn columns_of(format: &CopyFormat, text: &str, width: usize) -> Result<Columns, ColumnsError> {
    let mut out = Columns::new(width);
    read_fields(format, text, &mut out)?;
    Ok(out)
}

/// Reads the rows of `text` (a header is a row like the others) into `out`.
fn read_fields<S: Fields>(format: &CopyFormat, text: &str, out: &mut S) -> Result<(), ColumnsError> {
    match format {
        CopyFormat::Text { delimiter, null } => {
            let mut buf = String::new();
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line == "\\." {
                    break;
                }
                if line.is_empty() {
                    continue;
                }
                for f in line.split(*delimiter) {
                    if f == null {
                        out.field(None);
                    } else if !f.contains('\\') {
                        out.field(Some(f));
                    } else {
                        buf.clear();
                        unescape_into(f, &mut buf);
                        out.field(Some(&buf));
                    }
                }
                out.end_row()?;
            }
        }
        CopyFormat::Csv { delimiter, null, quote, .. } => csv_fields(text, *delimiter, *quote, null, out)?,
    }
    Ok(())
}

/// The fields of CSV `text`. With an ASCII delimiter and quote (as almost always), bytes are
/// scanned a table lookup each and an unquoted field is handed on where it lies; a field with
/// quotes is built in a buffer. Other delimiters go through [`csv_fields_chars`], which reads
/// the same fields a character at a time.
fn csv_fields<S: Fields>(text: &str, delim: char, quote: char, null: &str, out: &mut S) -> Result<(), ColumnsError> {
    if !delim.is_ascii() || !quote.is_ascii() {
        return csv_fields_chars(text, delim, quote, null, out);
    }
    let (d, q) = (delim as u8, quote as u8);
    let mut special = [false; 256];
    for c in [d, q, b'\n', b'\r'] {
        special[c as usize] = true;
    }
    let b = text.as_bytes();
    let n = b.len();
    let mut buf = String::new();
    let (mut i, mut line_start) = (0, 0);
    loop {
        // One field from `i`: unquoted bytes up to a special one; quoted parts (a doubled
        // quote inside is one quote) make it a built field.
        let start = i;
        while i < n && !special[b[i] as usize] {
            i += 1;
        }
        let mut quoted = false;
        if i < n && b[i] == q {
            quoted = true;
            buf.clear();
            buf.push_str(&text[start..i]);
            while i < n && b[i] == q {
                i += 1;
                loop {
                    let from = i;
                    while i < n && b[i] != q {
                        i += 1;
                    }
                    buf.push_str(&text[from..i]);
                    if i == n {
                        return Err(ColumnsError::Other(SqlError::new("22P04", "unterminated CSV quoted field")));
                    }
                    i += 1;
                    if i < n && b[i] == q {
                        buf.push(quote);
                        i += 1;
                        continue;
                    }
                    break;
                }
                let from = i;
                while i < n && !special[b[i] as usize] {
                    i += 1;
                }
                buf.push_str(&text[from..i]);
            }
        }
        let field = if quoted { buf.as_str() } else { &text[start..i] };
        let value = if !quoted && field == null { None } else { Some(field) };
        if i == n {
            // The input's end: a last line without its newline is a row too.
            if i > line_start && (field != "\\." || quoted || out.in_row()) {
                out.field(value);
                out.end_row()?;
            }
            return Ok(());
        }
        if b[i] == d {
            out.field(value);
            i += 1;
            continue;
        }
        // A line's end: \n, \r\n or \r.
        if field == "\\." && !out.in_row() && !quoted {
            return Ok(());
        }
        out.field(value);
        out.end_row()?;
        i += if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
        line_start = i;
    }
}

/// [`csv_fields`] a character at a time, for any delimiter and quote.
fn csv_fields_chars<S: Fields>(
    text: &str,
    delim: char,
    quote: char,
    null: &str,
    out: &mut S,
) -> Result<(), ColumnsError> {
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    let end_field = |field: &mut String, quoted: &mut bool, out: &mut S| {
        out.field(if !*quoted && field == null { None } else { Some(field) });
        field.clear();
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
            end_field(&mut field, &mut quoted, out);
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            if field == "\\." && !out.in_row() && !quoted {
                return Ok(());
            }
            end_field(&mut field, &mut quoted, out);
            out.end_row()?;
            any = false;
        } else {
            field.push(c);
        }
    }
    if in_quotes {
        return Err(ColumnsError::Other(SqlError::new("22P04", "unterminated CSV quoted field")));
    }
    // A quoted "\." is data, not the end marker (as at a line's end).
    if any && (field != "\\." || quoted || out.in_row()) {
        end_field(&mut field, &mut quoted, out);
        out.end_row()?;
    }
    Ok(())
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
    use proptest::prelude::*;

    /// What a CSV reader made of `text`: its rows, or that it refused it.
    fn csv_rows(
        read: fn(&str, char, char, &str, &mut Rows) -> Result<(), ColumnsError>,
        text: &str,
        null: &str,
    ) -> Option<Vec<Vec<Option<String>>>> {
        let mut rows = Rows::default();
        read(text, ',', '"', null, &mut rows).ok()?;
        Some(rows.rows)
    }

    proptest! {
        #[test]
        fn csv_bytes_and_characters_read_the_same_fields(
            parts in prop::collection::vec(prop::sample::select(vec!["a", "bc", ",", "\"", "\"\"", "\n", "\r", "\r\n", "\\.", "é", "N", " "]), 0..40),
            null in prop::sample::select(vec!["", "N"]),
        ) {
            let text: String = parts.concat();
            prop_assert_eq!(csv_rows(csv_fields, &text, null), csv_rows(csv_fields_chars, &text, null), "{:?}", text);
        }
    }

    #[test]
    fn csv_fields_by_bytes() {
        let rows = |t: &str| csv_rows(csv_fields, t, "");
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            rows("a,\"b,\"\"c\"\"\",\nd,\r\ne,f\rg,h"),
            Some(vec![
                vec![s("a"), s("b,\"c\""), None],
                vec![s("d"), None],
                vec![s("e"), s("f")],
                vec![s("g"), s("h")],
            ])
        );
        // The end marker, but not quoted; an unterminated quote is refused.
        assert_eq!(rows("a\n\\.\nb\n"), Some(vec![vec![s("a")]]));
        assert_eq!(rows("a\n\"\\.\""), Some(vec![vec![s("a")], vec![s("\\.")]]));
        assert_eq!(rows("a,\"b\nc"), None);
    }

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

    /// The rows `parse_columns` makes, as `parse` gives them.
    fn rows_of(cols: &[crate::batch::Column]) -> Vec<Vec<Option<String>>> {
        let n = cols.first().map_or(0, |c| c.len());
        (0..n)
            .map(|r| {
                cols.iter()
                    .map(|c| match &c.values {
                        crate::batch::Values::Text(v) if c.is_valid(r) => Some(v.get(r).to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn columns_are_the_rows_parse_reads_also_when_split_between_two_threads() {
        let csv = CopyFormat::Csv { delimiter: ',', null: String::new(), header: true, quote: '"' };
        let text = CopyFormat::default();
        // Small inputs (one thread) and inputs past 1 MiB (two), with quoted newlines and
        // delimiters, doubled quotes, NULLs, escapes, CRLF and non-ASCII text.
        for rows in [3usize, 80_000] {
            let mut c = String::from("a,b,c\n");
            let mut t = String::new();
            for i in 0..rows {
                let odd = match i % 5 {
                    0 => "\"multi\nline, \"\"quoted\"\"\"".to_string(),
                    1 => String::new(),
                    2 => format!("δ{i}"),
                    3 => "\"\"".to_string(),
                    _ => format!("plain{i}"),
                };
                c.push_str(&format!("{i},{odd},x{}{}", i % 7, if i % 3 == 0 { "\r\n" } else { "\n" }));
                t.push_str(&format!("{i}\t{}\tx\\t{}\n", if i % 4 == 0 { "\\N" } else { "v" }, i % 7));
            }
            for (f, data) in [(&csv, &c), (&text, &t)] {
                assert!(rows < 100 || data.len() > 1 << 20, "large enough to be split");
                let want = parse(f, data.as_bytes()).unwrap();
                assert_eq!(want.len(), rows);
                let got = parse_columns(f, data.as_bytes(), 3).unwrap();
                assert_eq!(rows_of(&got), want, "{f:?} {rows}");
            }
        }
        // A row of another width is refused with its number, also in the second half.
        let mut big = String::new();
        for i in 0..60_000 {
            big.push_str(if i == 50_000 { "1,2,3,4\n" } else { "1,2,3\n" });
        }
        let plain = CopyFormat::Csv { delimiter: ',', null: String::new(), header: false, quote: '"' };
        let e = parse_columns(&plain, big.as_bytes(), 3).unwrap_err();
        assert_eq!((e.sqlstate, e.message.as_str()), ("22P04", "COPY row 50001 has 4 columns where 3 were expected"));
        assert!(parse_columns(&plain, b"1,\"open\n", 2).is_err());
        // Old line ends (a lone carriage return) end rows, the header's too.
        let cr = CopyFormat::Csv { delimiter: ',', null: String::new(), header: true, quote: '"' };
        let data = b"a,b\r1,\"x\ry\"\r3,\r\n5,6";
        let want = parse(&cr, data).unwrap();
        assert_eq!(want.len(), 3);
        assert_eq!(rows_of(&parse_columns(&cr, data, 2).unwrap()), want);
        // The end marker ends the data.
        assert_eq!(rows_of(&parse_columns(&plain, b"1,2\n\\.\n3,4\n", 2).unwrap()).len(), 1);
    }
}
