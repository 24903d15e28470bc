//! Query text to syntax trees: SQL statements, queries and expressions in sqlparser's
//! PostgreSQL dialect, with the statement's size and nesting bounded before anything is
//! allocated for it ([`check_size`], [`PARSE_DEPTH`]). fleetdb's own statements are read by the
//! statement layer (`command::parse`) and the object grammars, with the helpers of
//! [`super::grammar`].

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::error::{PARSE_DEPTH, SqlError, SqlResult, from_parser, position_of};

/// One SQL expression (text fleetdb builds, or an option's value such as `delta_time`).
pub(crate) fn parse_expression(sql: &str) -> SqlResult<ast::Expr> {
    check_size(sql)?;
    let mut p = parser(sql)?;
    let e = p.parse_expr().map_err(|e| from_parser(sql, e))?;
    if p.peek_token().token != Token::EOF {
        return Err(SqlError::syntax(format!("unexpected text after the expression: {sql}")));
    }
    Ok(e)
}

/// The one SELECT (or other query) that `sql`, text fleetdb builds itself, holds.
pub(crate) fn parse_query(sql: &str) -> SqlResult<Box<ast::Query>> {
    let statements = statements(sql, |sql, p| p.parse_statement().map_err(|e| from_parser(sql, e)))?;
    match statements.into_iter().next() {
        Some(ast::Statement::Query(q)) => Ok(q),
        _ => Err(SqlError::syntax(format!("not a query: {sql}"))),
    }
}

/// What parsing a statement may take at most: the tokens, then the syntax tree. Past it the
/// statement is refused (54000) before anything is allocated for it.
pub(crate) const MAX_PARSE_MEMORY: usize = 1 << 30;

/// Most operators one statement may chain (`a = 1 OR a = 2 OR …` has two per term): such a
/// chain is a syntax tree as deep as it is long, and walking it (to free it, to print it)
/// recurses once per operator.
pub(crate) const MAX_OPERATORS: usize = 100_000;

/// Checks, in one pass over the text and before the tokenizer runs, that `sql` can be parsed
/// within [`MAX_PARSE_MEMORY`] and [`MAX_OPERATORS`]: the tokenizer keeps every whitespace
/// character as a token of its own, so a statement's text size alone says little.
pub(crate) fn check_size(sql: &str) -> SqlResult<()> {
    let b = sql.as_bytes();
    let (mut blanks, mut tokens, mut operators) = (0usize, 0usize, 0usize);
    // CASE nesting and runs of NOT: past the parser's depth, sqlparser reports a syntax error
    // (it tries other readings), so they are judged here and answered 54001 as other nesting.
    let (mut case_depth, mut deepest_case, mut nots, mut longest_nots) = (0usize, 0usize, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_whitespace() {
            blanks += 1;
            continue;
        }
        tokens += 1;
        match c {
            b'\'' | b'"' => {
                while i < b.len() && b[i] != c {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 || c == b'$' => {
                let start = i - 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80 || b[i] == b'.') {
                    i += 1;
                }
                let w = &b[start..i];
                if w.eq_ignore_ascii_case(b"not") {
                    nots += 1;
                    longest_nots = longest_nots.max(nots);
                    continue;
                }
                nots = 0;
                if w.eq_ignore_ascii_case(b"case") {
                    case_depth += 1;
                    deepest_case = deepest_case.max(case_depth);
                } else if w.eq_ignore_ascii_case(b"end") {
                    case_depth = case_depth.saturating_sub(1);
                }
                if w.eq_ignore_ascii_case(b"or")
                    || w.eq_ignore_ascii_case(b"and")
                    || w.eq_ignore_ascii_case(b"union")
                    || w.eq_ignore_ascii_case(b"intersect")
                    || w.eq_ignore_ascii_case(b"except")
                    || w.eq_ignore_ascii_case(b"is")
                {
                    operators += 1;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'=' | b'<' | b'>' | b'|' | b':' | b'[' | b'~' | b'!' | b'^' | b'&'
            | b'#' | b'@' => operators += 1,
            _ => {}
        }
    }
    if deepest_case >= PARSE_DEPTH || longest_nots >= PARSE_DEPTH {
        return Err(from_parser(sql, sqlparser::parser::ParserError::RecursionLimitExceeded));
    }
    // A token is 88 bytes, a vector of them grows to twice what it holds, and each token that
    // is not a blank becomes a few syntax tree nodes.
    let token = 2 * std::mem::size_of::<sqlparser::tokenizer::TokenWithSpan>();
    let need = blanks.saturating_mul(token).saturating_add(tokens.saturating_mul(token + 256));
    if need > MAX_PARSE_MEMORY {
        return Err(SqlError::new(
            "54000",
            format!(
                "statement too large: parsing its {} bytes ({} tokens, {} blanks) would take about {} MiB, more than {} MiB",
                sql.len(),
                tokens,
                blanks,
                need >> 20,
                MAX_PARSE_MEMORY >> 20
            ),
        )
        .with_hint("Send large data with COPY, or in several statements."));
    }
    if operators > MAX_OPERATORS {
        return Err(SqlError::new(
            "54001",
            format!("statement too complex: {operators} operators, more than {MAX_OPERATORS}"),
        )
        .with_hint("Use IN (…) or = ANY(…) for long lists of alternatives, or split the statement."));
    }
    Ok(())
}

/// Parses every statement of `sql` (separated by semicolons), each with `one`, which reads one
/// statement's tokens. The text's size is checked first ([`check_size`]).
pub(crate) fn statements<T>(sql: &str, mut one: impl FnMut(&str, &mut Parser) -> SqlResult<T>) -> SqlResult<Vec<T>> {
    check_size(sql)?;
    let mut p = parser(sql)?;
    let mut out = Vec::new();
    loop {
        while p.consume_token(&Token::SemiColon) {}
        if p.peek_token().token == Token::EOF {
            break;
        }
        out.push(one(sql, &mut p)?);
        if !p.consume_token(&Token::SemiColon) && p.peek_token().token != Token::EOF {
            let t = p.peek_token();
            return Err(SqlError::syntax(format!("syntax error at or near \"{}\"", t.token)).at(position_of(
                sql,
                t.span.start.line,
                t.span.start.column,
            )));
        }
    }
    Ok(out)
}

/// A parser over `sql` in PostgreSQL's dialect, nesting bounded by [`PARSE_DEPTH`].
pub(crate) fn parser(sql: &str) -> SqlResult<Parser<'static>> {
    Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(PARSE_DEPTH)
        .try_with_sql(sql)
        .map_err(|e| from_parser(sql, e))
}

// ---------------------------------------------------------------------------------------------
// Long lists of literals. sqlparser reads `x IN (1, 2, …)` item by item at ~2 µs an item (it
// tries a typed literal before each one and formats the error), so a million-item list took
// two seconds no cancel could interrupt. Lists of [`LONG_LIST`] literals or more are read here
// in one pass (cancel checked as it goes), the text sqlparser reads holds a marker in their
// place, and the items are put back into the syntax tree after: the tree is the one sqlparser
// would have made (the test below compares them).

/// Lists shorter than this are left to sqlparser.
const LONG_LIST: usize = 256;

/// The lists [`cut_long_lists`] took out of a statement's text, in order, each item as where
/// its text is: syntax tree nodes are ~20 times an item's text, made only once the list's
/// length is known ([`put_back`]).
pub(crate) struct LongLists<'a> {
    sql: &'a str,
    lists: Vec<Option<Vec<Lit>>>,
}

/// A literal of a long list: its text at `start..end` (a string's between its quotes, a
/// number's after its minus sign).
struct Lit {
    start: usize,
    end: usize,
    negative: bool,
    string: bool,
}

impl Lit {
    /// The syntax tree sqlparser makes of it: a number's text as written (under a unary minus
    /// if it had one), a string with `''` as one quote.
    fn expr(&self, sql: &str) -> ast::Expr {
        let text = &sql[self.start..self.end];
        let v = if self.string {
            ast::Value::SingleQuotedString(if text.contains('\'') { text.replace("''", "'") } else { text.to_string() })
        } else {
            ast::Value::Number(text.to_string(), false)
        };
        let e = ast::Expr::Value(v.with_empty_span());
        if self.negative { ast::Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr: Box::new(e) } } else { e }
    }
}

/// `sql` with every list of at least [`LONG_LIST`] plain literals (unsigned or `-` numbers,
/// single-quoted strings) after `IN (` replaced by a marker `$0<k>` (not a parameter
/// PostgreSQL's grammar has), and the lists; `None` when there is none, or when `sql` has a
/// `$0` of its own. Strings, quoted names, dollar quotes and comments are skipped as the
/// tokenizer would; a list with anything else in it (a cast, a comment, a parameter) is left.
pub(crate) fn cut_long_lists(sql: &str) -> SqlResult<Option<(String, LongLists<'_>)>> {
    if sql.len() < 2 * LONG_LIST || sql.contains("$0") {
        return Ok(None);
    }
    let b = sql.as_bytes();
    let (mut out, mut lists) = (String::new(), Vec::new());
    let (mut i, mut copied, mut held) = (0, 0, 0usize);
    while i < b.len() {
        let c = b[i];
        i = match c {
            b'\'' | b'"' => after_quoted(b, i + 1, c, false),
            b'-' if b.get(i + 1) == Some(&b'-') => b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |p| i + p),
            b'/' if b.get(i + 1) == Some(&b'*') => after_block_comment(b, i + 2),
            b'$' => after_dollar(b, i),
            b'0'..=b'9' => i + b[i..].iter().take_while(|&&x| is_word(x) || x == b'.').count(),
            _ if is_word(c) => {
                let end = i + b[i..].iter().take_while(|&&x| is_word(x)).count();
                let w = &b[i..end];
                if w.eq_ignore_ascii_case(b"e") && b.get(end) == Some(&b'\'') {
                    after_quoted(b, end + 1, b'\'', true)
                } else if w.eq_ignore_ascii_case(b"in") {
                    match literal_list(sql, end, &mut held)? {
                        Some((open, close, items)) if items.len() >= LONG_LIST => {
                            out.push_str(&sql[copied..open]);
                            out.push_str(&format!("$0{}", lists.len()));
                            copied = close;
                            lists.push(Some(items));
                            close
                        }
                        _ => end,
                    }
                } else {
                    end
                }
            }
            _ => i + 1,
        };
    }
    if lists.is_empty() {
        return Ok(None);
    }
    out.push_str(&sql[copied..]);
    Ok(Some((out, LongLists { sql, lists })))
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Past the closing `q` of a quoted string or name whose text starts at `i` (`''` inside is
/// one quote; with `backslash`, as in `E'…'`, a backslash escapes the next byte).
fn after_quoted(b: &[u8], mut i: usize, q: u8, backslash: bool) -> usize {
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past a `/* … */` comment (nested as PostgreSQL nests them) whose text starts at `i`.
fn after_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() {
        if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past a dollar-quoted string `$tag$…$tag$` starting at `i`, or past the `$` of anything else.
fn after_dollar(b: &[u8], i: usize) -> usize {
    let tag_len = b[i + 1..].iter().take_while(|&&x| is_word(x) && x != b'$').count();
    let close = i + 1 + tag_len;
    if b.get(close) != Some(&b'$') || b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return i + 1;
    }
    let tag = &b[i..=close];
    let body = close + 1;
    b[body..].windows(tag.len()).position(|w| w == tag).map_or(b.len(), |p| body + p + tag.len())
}

/// At `i`, just past a word `IN`: `( literal, literal, … )` with only blanks between, as
/// (the position past `(`, the position of `)`, the literals).
/// `held` counts what the lists hold (their items and text), bounded by [`MAX_PARSE_MEMORY`]
/// as [`check_size`] bounds the rest of a statement.
fn literal_list(sql: &str, i: usize, held: &mut usize) -> SqlResult<Option<(usize, usize, Vec<Lit>)>> {
    let b = sql.as_bytes();
    let blanks = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut k = blanks(i);
    if b.get(k) != Some(&b'(') {
        return Ok(None);
    }
    let open = k + 1;
    k = open;
    let mut items = Vec::new();
    loop {
        let Some((item, end)) = literal(sql, blanks(k)) else { return Ok(None) };
        items.push(item);
        *held = held.saturating_add(std::mem::size_of::<ast::Expr>() + 16 + (end - k));
        if items.len() % 4096 == 0 {
            crate::query::guard::check()?;
            if *held > MAX_PARSE_MEMORY {
                return Err(SqlError::new(
                    "54000",
                    format!(
                        "statement too large: its lists of values would take more than {} MiB",
                        MAX_PARSE_MEMORY >> 20
                    ),
                )
                .with_hint("Send large data with COPY, or in several statements."));
            }
        }
        k = blanks(end);
        match b.get(k) {
            Some(b',') => k += 1,
            Some(b')') => return Ok(Some((open, k, items))),
            _ => return Ok(None),
        }
    }
}

/// The literal at `i` (an unsigned or `-` number, a single-quoted string) and the position
/// past it; `None` for anything else.
fn literal(sql: &str, i: usize) -> Option<(Lit, usize)> {
    let b = sql.as_bytes();
    let digits = |i: usize| b[i.min(b.len())..].iter().take_while(|x| x.is_ascii_digit()).count();
    match *b.get(i)? {
        b'-' => {
            b.get(i + 1).is_some_and(u8::is_ascii_digit).then_some(())?;
            let (lit, end) = literal(sql, i + 1)?;
            Some((Lit { negative: true, ..lit }, end))
        }
        b'0'..=b'9' => {
            let mut end = i + digits(i);
            if b.get(end) == Some(&b'.') {
                let frac = digits(end + 1);
                (frac > 0).then_some(())?;
                end += 1 + frac;
            }
            if matches!(b.get(end), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
                let exp = digits(end + 1 + sign);
                (exp > 0).then_some(())?;
                end += 1 + sign + exp;
            }
            // `1_000`, `0x1f`, `1.2.3`, `1e`: left to sqlparser.
            if b.get(end).is_some_and(|&x| is_word(x) || x == b'.') {
                return None;
            }
            Some((Lit { start: i, end, negative: false, string: false }, end))
        }
        b'\'' => {
            let end = after_quoted(b, i + 1, b'\'', false);
            (b[end - 1] == b'\'' && end > i + 1).then_some(())?;
            Some((Lit { start: i + 1, end: end - 1, negative: false, string: true }, end))
        }
        _ => None,
    }
}

/// Puts the lists [`cut_long_lists`] took back in place of their markers in `stmt`, made into
/// syntax tree nodes (cancel checked as they are made): false if a marker was somewhere a list
/// could not go back (the text is then parsed whole).
pub(crate) fn put_back(stmt: &mut ast::Statement, lists: &mut LongLists) -> SqlResult<bool> {
    let mut ok = true;
    let flow = ast::visit_expressions_mut(stmt, |e| {
        if let ast::Expr::In { target: ast::InTarget::List(list), .. } = e
            && let [ast::Expr::Value(v)] = list.as_slice()
            && let ast::Value::Placeholder(p) = &v.value
            && let Some(k) = p.strip_prefix("$0").and_then(|k| k.parse::<usize>().ok())
        {
            match lists.lists.get_mut(k).and_then(Option::take) {
                Some(lits) => {
                    let mut items = Vec::with_capacity(lits.len());
                    for (n, lit) in lits.iter().enumerate() {
                        if let Err(e) = crate::query::guard::check_every(n) {
                            crate::query::guard::free_elsewhere(items);
                            return std::ops::ControlFlow::Break(e);
                        }
                        items.push(lit.expr(lists.sql));
                    }
                    *list = items;
                }
                None => ok = false,
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    match flow {
        std::ops::ControlFlow::Break(e) => Err(e),
        std::ops::ControlFlow::Continue(()) => Ok(ok),
    }
}

impl LongLists<'_> {
    /// Whether every list went back.
    pub(crate) fn all_back(&self) -> bool {
        self.lists.iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(sql: &str) -> Vec<ast::Statement> {
        statements(sql, |sql, p| p.parse_statement().map_err(|e| from_parser(sql, e))).unwrap()
    }

    /// The statements of `sql` with its long lists read apart, checked equal to sqlparser's own
    /// reading; whether any list was read apart.
    fn read_apart(sql: &str) -> bool {
        let Some((short, mut lists)) = cut_long_lists(sql).unwrap() else { return false };
        assert!(short.len() < sql.len());
        let mut cut = whole(&short);
        for s in &mut cut {
            assert!(put_back(s, &mut lists).unwrap(), "{short}");
        }
        assert!(lists.all_back());
        assert_eq!(cut, whole(sql), "{short}");
        true
    }

    fn list(n: usize, item: impl Fn(usize) -> String, sep: &str) -> String {
        (0..n).map(item).collect::<Vec<_>>().join(sep)
    }

    #[test]
    fn long_lists_read_apart_make_the_tree_sqlparser_makes() {
        let mixed = |i: usize| match i % 8 {
            0 => format!("{i}"),
            1 => format!("-{i}"),
            2 => format!("{i}.5"),
            3 => format!("{i}e3"),
            4 => format!("'it''s {i}'"),
            5 => format!("'ünï\\co''de\n{i}'"),
            6 => format!("-{i}.25E-2"),
            _ => "''".to_string(),
        };
        let sql = format!(
            "SELECT a IN ({}) FROM t WHERE a IN ({}) AND b NOT IN ({}) -- IN (1, 2)\n; SELECT 1 WHERE x IN ({})",
            list(300, mixed, ", "),
            list(256, |i| i.to_string(), ","),
            list(1000, mixed, " ,\n\t "),
            list(400, |i| format!("'{i}'"), ", ")
        );
        assert!(read_apart(&sql));
        // Nested in a subquery, a CTE and a CASE.
        let sql = format!(
            "WITH w AS (SELECT * FROM t WHERE k IN ({0})) SELECT CASE WHEN v IN ({0}) THEN 1 END FROM w \
             WHERE EXISTS (SELECT 1 FROM u WHERE u.k NOT IN ({0}))",
            list(500, |i| format!("-{i}"), ", ")
        );
        assert!(read_apart(&sql));
    }

    #[test]
    fn lists_that_are_not_plain_literals_are_left_to_sqlparser() {
        let long = list(300, |i| i.to_string(), ", ");
        for sql in [
            format!("SELECT 1 WHERE a IN ({long}, 1::int)"),
            format!("SELECT 1 WHERE a IN ({long}, $1)"),
            format!("SELECT 1 WHERE a IN ({long} /* c */)"),
            format!("SELECT 1 WHERE a IN ({long}, - 1)"),
            format!("SELECT 1 WHERE a IN ({long}, 0x1f)"),
            format!("SELECT 1 WHERE a IN ({long}, 1_000)"),
            format!("SELECT 1 WHERE a IN ({long}, E'x')"),
            format!("SELECT 1 WHERE a IN ({long}, NULL)"),
            format!("SELECT 1 WHERE a IN ({long}, 'a' 'b')"),
            format!("SELECT 1 WHERE a IN (SELECT {long})"),
            list(100, |_| "SELECT 1 WHERE a IN (1, 2)".to_string(), ";"),
            // Inside strings, names, comments and dollar quotes: not code.
            format!("SELECT 'a IN ({long})'"),
            format!("SELECT E'\\' IN ({long})'"),
            format!("SELECT \"x IN ({long})\" FROM t"),
            format!("SELECT 1 /* a /* IN ({long}) */ b */"),
            format!("SELECT $q$ IN ({long}) $q$"),
            format!("SELECT 1 -- a IN ({long})"),
            // A `$0` of the statement's own.
            format!("SELECT $0, 1 WHERE a IN ({long})"),
        ] {
            let parsed = crate::command::parse::parse(&sql);
            assert!(!read_apart(&sql), "{sql}");
            if let Ok(stmts) = parsed {
                // Whatever was read, it is what sqlparser alone reads.
                let plain: Vec<String> = whole(&sql).iter().map(|s| s.to_string()).collect();
                let got: Vec<String> = stmts
                    .iter()
                    .filter_map(|s| {
                        if let crate::command::parse::Statement::Sql(s) = s { Some(s.to_string()) } else { None }
                    })
                    .collect();
                assert_eq!(got, plain, "{sql}");
            }
        }
    }

    #[test]
    fn a_list_too_long_to_hold_is_refused_before_it_is_read_whole() {
        // Each item of a long list is a syntax tree node, larger than its text.
        let items = MAX_PARSE_MEMORY / (std::mem::size_of::<ast::Expr>() + 16) + 8192;
        let sql = format!("SELECT 1 WHERE a IN ({})", list(items, |_| "1".to_string(), ","));
        let e = cut_long_lists(&sql).err().expect("refused");
        assert_eq!(e.sqlstate, "54000", "{}", e.message);
    }
}
