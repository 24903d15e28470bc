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
            if crate::util::bytes::count_byte(buf, q) == 0 {
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

/// What a COPY column becomes as it is read: text, or a type whose values are parsed from
/// the field where it lies (no string per value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyKind {
    Text,
    Float8,
    Int8,
    /// `timestamptz` (and `timestamp`, stored alike).
    Timestamp,
}

impl CopyKind {
    pub(crate) fn sql_type(self) -> super::types::SqlType {
        match self {
            CopyKind::Text => super::types::SqlType::Text,
            CopyKind::Float8 => super::types::SqlType::Float8,
            CopyKind::Int8 => super::types::SqlType::Int8,
            CopyKind::Timestamp => super::types::SqlType::TimestampTz,
        }
    }
}

/// One column being filled.
enum Filling {
    Text(TextFill),
    Float(Vec<f64>),
    Int(Vec<i64>),
    Time(Vec<i64>),
}

impl Filling {
    fn kind(&self) -> CopyKind {
        match self {
            Filling::Text(_) => CopyKind::Text,
            Filling::Float(_) => CopyKind::Float8,
            Filling::Int(_) => CopyKind::Int8,
            Filling::Time(_) => CopyKind::Timestamp,
        }
    }
}

/// Columns being filled from COPY rows: a text field's bytes go straight into its column, a
/// typed field is parsed into its column (a value that does not parse stops the piece with
/// the error a cast of it gives).
struct Columns {
    values: Vec<Filling>,
    /// Which values are present, per column: made at the column's first NULL (most columns
    /// have none, and a bit per field would cost as much as the field's parse).
    valid: Vec<Option<crate::batch::Bitmap>>,
    /// Fields of the row being read.
    at: usize,
    rows: usize,
    /// The first value that did not parse.
    failed: Option<SqlError>,
}

/// A text column as it is read: dictionary codes while its values repeat (machine ids and
/// statuses, most of what a fleet's COPY holds), so that nothing after the parse copies their
/// strings again (gathering pieces, sorting and encoding a file work on codes); plain strings
/// once it holds too many distinct values for codes to pay.
enum TextFill {
    Coded {
        /// The distinct values, in the order first read.
        dict: crate::batch::StrVec,
        ids: std::collections::HashMap<Box<str>, u32, foldhash::fast::RandomState>,
        codes: Vec<u32>,
        /// The most distinct values kept as codes.
        most: usize,
    },
    Plain(crate::batch::StrVec),
}

impl TextFill {
    /// `rows`: about how many values will be read.
    fn new(rows: usize) -> TextFill {
        TextFill::Coded {
            dict: crate::batch::StrVec::default(),
            ids: Default::default(),
            codes: Vec::with_capacity(rows),
            most: (rows / 4).clamp(1024, 1 << 16),
        }
    }

    fn push(&mut self, v: &str) {
        let TextFill::Coded { dict, ids, codes, most } = self else {
            if let TextFill::Plain(p) = self {
                p.push(v);
            }
            return;
        };
        // Runs of one value (a status) are told by one comparison, and so are rows of many
        // series in a repeating order (each time's row of every machine, in the same order):
        // the value first read after the last one.
        if let Some(&last) = codes.last() {
            for guess in [last, last + 1] {
                if (guess as usize) < dict.len() && dict.get(guess as usize) == v {
                    codes.push(guess);
                    return;
                }
            }
        }
        if let Some(&c) = ids.get(v) {
            codes.push(c);
            return;
        }
        if dict.len() < *most {
            let c = dict.len() as u32;
            dict.push(v);
            ids.insert(v.into(), c);
            codes.push(c);
            return;
        }
        let mut plain = crate::batch::StrVec::with_capacity(codes.capacity(), codes.capacity() * 8);
        codes.iter().for_each(|&c| plain.push(dict.get(c as usize)));
        plain.push(v);
        *self = TextFill::Plain(plain);
    }

    fn finish(self) -> SqlResult<crate::batch::StrVec> {
        match self {
            // Every code was made for a value of `dict`: refused only by a defect.
            TextFill::Coded { dict, codes, .. } => crate::batch::StrVec::coded(std::sync::Arc::new(dict), codes)
                .ok_or_else(|| SqlError::new("XX000", "COPY made a text code without its value")),
            TextFill::Plain(p) => Ok(p),
        }
    }
}

impl Columns {
    /// `rows`: about how many rows will be read (capacity is taken for them at once).
    fn new(kinds: &[CopyKind], rows: usize) -> Columns {
        let width = kinds.len();
        Columns {
            values: kinds
                .iter()
                .map(|k| match k {
                    CopyKind::Text => Filling::Text(TextFill::new(rows)),
                    CopyKind::Float8 => Filling::Float(Vec::with_capacity(rows)),
                    CopyKind::Int8 => Filling::Int(Vec::with_capacity(rows)),
                    CopyKind::Timestamp => Filling::Time(Vec::with_capacity(rows)),
                })
                .collect(),
            valid: vec![None; width],
            at: 0,
            rows: 0,
            failed: None,
        }
    }
    fn finish(self) -> SqlResult<Vec<crate::batch::Column>> {
        use crate::batch::Values;
        self.values
            .into_iter()
            .zip(self.valid)
            .map(|(v, m)| {
                let values = match v {
                    Filling::Text(v) => Values::Text(v.finish()?),
                    Filling::Float(v) => Values::Float64(v),
                    Filling::Int(v) => Values::Int64(v),
                    Filling::Time(v) => Values::Timestamp(v),
                };
                Ok(crate::batch::Column::with_validity(values, m))
            })
            .collect()
    }
    /// The error a cast of `v` to column `c`'s type gives.
    fn refuse(&mut self, c: usize, v: &str) {
        if self.failed.is_none() {
            let e = super::scalar::parse_text(v, self.values[c].kind().sql_type())
                .err()
                .unwrap_or_else(|| SqlError::new("XX000", format!("COPY read \"{v}\" two ways")));
            self.failed = Some(e);
        }
    }
}

impl Fields for Columns {
    fn field(&mut self, v: Option<&str>) {
        let c = self.at;
        self.at += 1;
        let Some(col) = self.values.get_mut(c) else { return };
        let ok = match (col, v) {
            (Filling::Text(t), v) => {
                t.push(v.unwrap_or(""));
                true
            }
            (Filling::Float(f), None) => {
                f.push(0.0);
                true
            }
            (Filling::Int(i) | Filling::Time(i), None) => {
                i.push(0);
                true
            }
            (Filling::Float(f), Some(s)) => match super::scalar::parse_float8(s) {
                Some(x) => {
                    f.push(x);
                    true
                }
                None => {
                    f.push(0.0);
                    false
                }
            },
            (Filling::Int(i), Some(s)) => {
                let x = s.trim().parse::<i64>().ok();
                i.push(x.unwrap_or(0));
                x.is_some()
            }
            (Filling::Time(i), Some(s)) => {
                let x = super::scalar::parse_timestamp(s);
                i.push(x.unwrap_or(0));
                x.is_some()
            }
        };
        if !ok {
            self.refuse(c, v.unwrap_or(""));
        }
        match (&mut self.valid[c], v) {
            (Some(m), v) => m.push(v.is_some()),
            (None, Some(_)) => {}
            (m @ None, None) => {
                // The column's first NULL: every value before it was present.
                let mut b = crate::batch::Bitmap::new_set(self.rows);
                b.push(false);
                *m = Some(b);
            }
        }
    }
    fn end_row(&mut self) -> Result<(), ColumnsError> {
        self.rows += 1;
        if self.at != self.values.len() {
            return Err(ColumnsError::Width { row: self.rows, got: self.at });
        }
        if let Some(e) = self.failed.take() {
            return Err(ColumnsError::Other(e));
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
#[cfg(test)]
fn parse_columns(format: &CopyFormat, data: &[u8], width: usize) -> SqlResult<Vec<crate::batch::Column>> {
    parse_typed(format, data, &vec![CopyKind::Text; width])
}

/// [`parse_columns`] with each column parsed as `kinds` says: a value that does not parse
/// fails with the error its cast gives.
pub(crate) fn parse_typed(
    format: &CopyFormat,
    data: &[u8],
    kinds: &[CopyKind],
) -> SqlResult<Vec<crate::batch::Column>> {
    let width = kinds.len();
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
                let h = sc.spawn(|| columns_of(format, b, kinds));
                (columns_of(format, a, kinds), h.join())
            });
            let ra = ra.map_err(|e| refused(e, 0))?;
            let rb = rb
                .map_err(|_| SqlError::new("XX000", "a COPY parser thread failed"))?
                .map_err(|e| refused(e, ra.rows))?;
            let mut cols = ra.finish()?;
            for (c, more) in cols.iter_mut().zip(rb.finish()?) {
                c.extend(&more);
            }
            cols
        }
        None => columns_of(format, body, kinds).map_err(|e| refused(e, 0))?.finish()?,
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
            let inside = if q.is_ascii() {
                // A byte count (vectorized), not a substring search.
                crate::util::bytes::count_byte(&text.as_bytes()[..mid], q as u8) % 2 == 1
            } else {
                let mut qb = [0u8; 4];
                text[..mid].matches(&*q.encode_utf8(&mut qb)).count() % 2 == 1
            };
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
fn columns_of(format: &CopyFormat, text: &str, kinds: &[CopyKind]) -> Result<Columns, ColumnsError> {
    let mut out = Columns::new(kinds, crate::util::bytes::count_byte(text.as_bytes(), b'\n') + 1);
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

/// A byte's worth of ones in each byte of a word.
const SWAR_ONES: u64 = 0x0101_0101_0101_0101;

/// The first byte at or after `i` that `special` marks (or `b.len()`); `patterns` are those
/// bytes (at most four), each repeated in a word. Eight bytes at a time: a byte of
/// `w ^ pattern` is zero where `w` holds it, and `(x - 0x01..) & !x & 0x80..` marks a zero
/// byte exactly at the lowest one (a borrow can only mark bytes above it), so the lowest
/// mark of the four is the first special byte.
#[inline]
fn special_at(b: &[u8], mut i: usize, special: &[bool; 256], patterns: &[u64; 4]) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let mut marks = 0;
        for p in patterns {
            let x = w ^ p;
            marks |= x.wrapping_sub(SWAR_ONES) & !x & HIGH;
        }
        if marks != 0 {
            return i + (marks.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !special[b[i] as usize] {
        i += 1;
    }
    i
}

/// The fields of CSV `text`. With an ASCII delimiter and quote (as almost always), bytes are
/// scanned eight at a time ([`special_at`]) and an unquoted field is handed on where it lies;
/// a field with quotes is built in a buffer. Other delimiters go through
/// [`csv_fields_chars`], which reads the same fields a character at a time.
fn csv_fields<S: Fields>(text: &str, delim: char, quote: char, null: &str, out: &mut S) -> Result<(), ColumnsError> {
    if !delim.is_ascii() || !quote.is_ascii() {
        return csv_fields_chars(text, delim, quote, null, out);
    }
    let (d, q) = (delim as u8, quote as u8);
    let mut special = [false; 256];
    for c in [d, q, b'\n', b'\r'] {
        special[c as usize] = true;
    }
    let patterns = [d, q, b'\n', b'\r'].map(|c| SWAR_ONES * c as u64);
    let b = text.as_bytes();
    let n = b.len();
    let mut buf = String::new();
    let (mut i, mut line_start) = (0, 0);
    loop {
        // One field from `i`: unquoted bytes up to a special one; quoted parts (a doubled
        // quote inside is one quote) make it a built field.
        let start = i;
        i = special_at(b, i, &special, &patterns);
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
                // Seven values repeating stay dictionary codes (the two halves' dictionaries
                // merged); a value per row turns plain part way through a half.
                let codes = |c: usize| match &got[c].values {
                    crate::batch::Values::Text(v) => v.codes().map(|(d, _)| d.len()),
                    _ => None,
                };
                assert_eq!(codes(2), Some(rows.min(7)), "{f:?} {rows}");
                if rows > 100 && *f == csv {
                    assert_eq!(codes(1), None);
                }
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

    /// Typed columns hold what a cast of the text column gives, on one thread and on two, and
    /// a value that does not parse fails the piece as the cast fails.
    #[test]
    fn typed_columns_are_the_casts_of_the_text_ones() {
        use crate::batch::Values;
        let csv = CopyFormat::Csv { delimiter: ',', null: String::new(), header: false, quote: '"' };
        let kinds = [CopyKind::Timestamp, CopyKind::Float8, CopyKind::Int8, CopyKind::Text];
        for rows in [4usize, 60_000] {
            let mut data = String::new();
            for i in 0..rows {
                let x = if i % 4 == 1 { String::new() } else { format!(" {}.{:03} ", i as i64 - 7, i % 1000) };
                let n = if i % 5 == 2 { String::new() } else { format!("{}", i as i64 * 1_000_003) };
                let t = if i % 2 == 0 {
                    format!("2026-03-0{} 12:00:{:02}Z", 1 + i % 9, i % 60)
                } else {
                    "2026-02-28T23:59:59.5+01".into()
                };
                data.push_str(&format!("{t},{x},{n},\"s{i}\"\n"));
            }
            let typed = parse_typed(&csv, data.as_bytes(), &kinds).unwrap();
            let text = parse_columns(&csv, data.as_bytes(), 4).unwrap();
            for (k, (t, c)) in kinds.iter().zip(typed.iter().zip(&text)) {
                assert_eq!(t.len(), rows);
                for r in 0..rows {
                    assert_eq!(t.is_valid(r), c.is_valid(r), "{k:?} row {r}");
                    let Values::Text(s) = &c.values else { panic!("text") };
                    if !c.is_valid(r) {
                        continue;
                    }
                    let want = super::super::scalar::parse_text(s.get(r), k.sql_type()).unwrap();
                    let got = match (&t.values, want) {
                        (Values::Timestamp(v), super::super::scalar::Scalar::Time(w)) => v[r] == w,
                        (Values::Float64(v), super::super::scalar::Scalar::Float(w)) => v[r].to_bits() == w.to_bits(),
                        (Values::Int64(v), super::super::scalar::Scalar::Int(w)) => v[r] == w,
                        (Values::Text(v), super::super::scalar::Scalar::Text(w)) => v.get(r) == w,
                        (v, w) => panic!("{k:?}: {v:?} for {w:?}"),
                    };
                    assert!(got, "{k:?} row {r}: {}", s.get(r));
                }
            }
        }
        let e = parse_typed(&csv, b"2026-01-01,1.5,2,a\n2026-01-01,1.5x,2,a\n", &kinds).unwrap_err();
        assert_eq!(
            (e.sqlstate, e.message.as_str()),
            ("22P02", "invalid input syntax for type double precision: \"1.5x\"")
        );
        let e = parse_typed(&csv, b"2026-01-01,1,2.5,a\n", &kinds).unwrap_err();
        assert_eq!(e.sqlstate, "22P02");
        let e = parse_typed(&csv, b"2026-13-01,1,2,a\n", &kinds).unwrap_err();
        assert_eq!(e.sqlstate, "22007");
        let e = parse_typed(&csv, b"2026-01-01,1,99999999999999999999,a\n", &kinds).unwrap_err();
        assert_eq!(e.sqlstate, "22003");
    }
}
