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
