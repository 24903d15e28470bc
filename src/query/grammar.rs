//! Token-level helpers for fleetdb's own statement grammars (the statement layer's, the
//! pipeline's and the dataset's): names, numbers, words, option lists. Built on sqlparser's
//! tokens, so literals and names follow PostgreSQL's rules.

pub(crate) use sqlparser::keywords::Keyword;
pub(crate) use sqlparser::parser::Parser;
pub(crate) use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::error::{SqlError, SqlResult, from_parser, position_of};

/// `name = value` options of `WITH (...)` and `SET (...)`; values as their text.
pub(crate) type Options = Vec<(String, String)>;

/// An unquoted word, upper-cased.
pub(crate) fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}
/// A number, maybe negative.
pub(crate) fn number(sql: &str, p: &mut Parser) -> SqlResult<f64> {
    let neg = p.consume_token(&Token::Minus);
    let t = p.next_token();
    match &t.token {
        Token::Number(n, _) => n
            .parse::<f64>()
            .map(|x| if neg { -x } else { x })
            .map_err(|_| SqlError::syntax(format!("{n} is not a number"))),
        other => Err(SqlError::syntax(format!("syntax error at or near \"{other}\": a number was expected"))
            .at(position_of(sql, t.span.start.line, t.span.start.column))),
    }
}

/// The word `want` (unquoted, any case), or a syntax error.
pub(crate) fn expect_word(sql: &str, p: &mut Parser, want: &str) -> SqlResult<()> {
    let t = p.next_token();
    if word(&t.token).as_deref() == Some(want) {
        Ok(())
    } else {
        Err(SqlError::syntax(format!("syntax error at or near \"{}\": {want} was expected", t.token)).at(position_of(
            sql,
            t.span.start.line,
            t.span.start.column,
        )))
    }
}

/// `( name, … )`.
pub(crate) fn paren_names(sql: &str, p: &mut Parser) -> SqlResult<Vec<String>> {
    p.expect_token(&Token::LParen).map_err(|e| from_parser(sql, e))?;
    let mut names = vec![attribute_path(sql, p)?];
    while p.consume_token(&Token::Comma) {
        names.push(attribute_path(sql, p)?);
    }
    p.expect_token(&Token::RParen).map_err(|e| from_parser(sql, e))?;
    Ok(names)
}

/// An attribute path: names joined by dots, each maybe followed by `[index]`.
pub(crate) fn attribute_path(sql: &str, p: &mut Parser) -> SqlResult<String> {
    let mut path = ident(sql, p)?;
    loop {
        if p.consume_token(&Token::Period) {
            path.push('.');
            path.push_str(&ident(sql, p)?);
        } else if p.consume_token(&Token::LBracket) {
            let t = p.next_token();
            let Token::Number(n, _) = &t.token else {
                return Err(SqlError::syntax("an attribute index is a number, as in coord[0]").at(position_of(
                    sql,
                    t.span.start.line,
                    t.span.start.column,
                )));
            };
            path.push_str(&format!("[{n}]"));
            p.expect_token(&Token::RBracket).map_err(|e| from_parser(sql, e))?;
        } else {
            return Ok(path);
        }
    }
}

pub(crate) fn if_not_exists(p: &mut Parser) -> bool {
    use sqlparser::keywords::Keyword;
    p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
}

pub(crate) fn ident(sql: &str, p: &mut Parser) -> SqlResult<String> {
    let t = p.peek_token();
    match t.token {
        Token::Word(w) => {
            p.next_token();
            Ok(if w.quote_style.is_some() { w.value } else { w.value.to_ascii_lowercase() })
        }
        other => Err(SqlError::syntax(format!("syntax error at or near \"{other}\": a name was expected"))
            .at(position_of(sql, t.span.start.line, t.span.start.column))),
    }
}

/// `WITH ( name = value, … )`, or nothing.
pub(crate) fn with_options(sql: &str, p: &mut Parser) -> SqlResult<Options> {
    if p.parse_keyword(sqlparser::keywords::Keyword::WITH) { option_list(sql, p) } else { Ok(Vec::new()) }
}

pub(crate) fn option_list(sql: &str, p: &mut Parser) -> SqlResult<Options> {
    option_list_at(sql, p, false)
}

/// An option list; `nested` lists (an option's value) keep their values as JSON.
fn option_list_at(sql: &str, p: &mut Parser, nested: bool) -> SqlResult<Options> {
    let pe = |e| from_parser(sql, e);
    p.expect_token(&Token::LParen).map_err(pe)?;
    let mut out = Vec::new();
    loop {
        let key = ident(sql, p)?;
        p.expect_token(&Token::Eq).map_err(pe)?;
        if p.peek_token().token == Token::LParen {
            // `name = (k = v, …)`: kept as a JSON object of the values.
            let inner = option_list_at(sql, p, true)?;
            let mut json = String::from("{");
            for (i, (k, v)) in inner.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                crate::util::json::write_string(&mut json, k);
                json.push(':');
                json.push_str(v);
            }
            json.push('}');
            out.push((key, json));
            if !p.consume_token(&Token::Comma) {
                break;
            }
            continue;
        }
        let t = p.next_token();
        let value = match t.token {
            Token::SingleQuotedString(s) if nested => {
                let mut q = String::new();
                crate::util::json::write_string(&mut q, &s);
                q
            }
            Token::SingleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Minus if matches!(p.peek_token().token, Token::Number(..)) => format!("-{}", p.next_token().token),
            Token::Word(w) if nested && matches!(w.value.to_ascii_lowercase().as_str(), "true" | "false" | "null") => {
                w.value.to_ascii_lowercase()
            }
            Token::Word(w) if nested => {
                let mut q = String::new();
                crate::util::json::write_string(&mut q, &w.value);
                q
            }
            Token::Word(w) => w.value,
            other => {
                return Err(SqlError::syntax(format!(
                    "syntax error at or near \"{other}\": an option value was expected"
                ))
                .at(position_of(sql, t.span.start.line, t.span.start.column)));
            }
        };
        out.push((key, value));
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    p.expect_token(&Token::RParen).map_err(pe)?;
    Ok(out)
}

/// Skips to the end of the current statement (used for statements not implemented yet).
pub(crate) fn skip_statement(p: &mut Parser) {
    let mut depth = 0i32;
    loop {
        match p.peek_token().token {
            Token::EOF => return,
            Token::SemiColon if depth == 0 => return,
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        p.next_token();
    }
}
