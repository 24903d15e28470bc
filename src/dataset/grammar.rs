//! The dataset grammar: the body of CREATE and ALTER DATASET (a query or a program, options,
//! deliveries), and a stored definition read back.

use crate::query::error::{SqlError, SqlResult, from_parser, position_of};
use crate::query::grammar::{
    Options, Parser, Token, TokenWithSpan, expect_word, ident, if_not_exists, with_options, word,
};
use crate::query::parse::parse_query;

/// A stored definition, `CREATE DATASET [IF NOT EXISTS] name AS …`: its name, body and options.
pub fn definition(sql: &str) -> SqlResult<(String, String, Options)> {
    let mut defs = crate::query::parse::statements(sql, |sql, p| {
        expect_word(sql, p, "CREATE")?;
        expect_word(sql, p, "DATASET")?;
        if_not_exists(p);
        let name = ident(sql, p)?;
        expect_word(sql, p, "AS")?;
        let (query, options) = dataset_body(sql, p)?;
        Ok((name, query, options))
    })?;
    match (defs.pop(), defs.is_empty()) {
        (Some(def), true) => Ok(def),
        _ => Err(SqlError::syntax("a dataset definition is one CREATE DATASET statement")),
    }
}

/// A dataset's body: `<query>` or `PROGRAM '<command>' INPUT <dataset>`, then `[WITH (…)]` and
/// any number of `DELIVER TO FILE | MQTT | WEBHOOK '<target>'`. A query runs to the
/// statement's end, or to its last top-level `WITH (` or first top-level `DELIVER TO`. The
/// deliveries join the options as `deliver_file`, `deliver_mqtt` and `deliver_webhook`.
pub fn dataset_body(sql: &str, p: &mut Parser) -> SqlResult<(String, Options)> {
    if word(&p.peek_token().token).as_deref() == Some("PROGRAM") {
        p.next_token();
        let command = p.parse_literal_string().map_err(|e| from_parser(sql, e))?;
        expect_word(sql, p, "INPUT")?;
        let input = ident(sql, p)?;
        let mut options = with_options(sql, p)?;
        deliveries(sql, p, &mut options)?;
        return Ok((program_text(&command, &input), options));
    }
    let byte_at = |t: &TokenWithSpan| -> usize {
        if t.token == Token::EOF {
            return sql.len();
        }
        let c = position_of(sql, t.span.start.line, t.span.start.column).unwrap_or(1).saturating_sub(1);
        sql.char_indices().nth(c).map_or(sql.len(), |(b, _)| b)
    };
    let start = byte_at(&p.peek_token());
    let (mut depth, mut with_at, mut deliver_at, mut end) = (0i32, None, None, sql.len());
    loop {
        let t = p.peek_token();
        match &t.token {
            Token::EOF => break,
            Token::SemiColon if depth == 0 => {
                end = byte_at(&t);
                break;
            }
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() && deliver_at.is_none() => {
                let next = &p.peek_nth_token(1).token;
                if w.value.eq_ignore_ascii_case("WITH") && *next == Token::LParen {
                    with_at = Some(byte_at(&t));
                } else if w.value.eq_ignore_ascii_case("DELIVER") && word(next).as_deref() == Some("TO") {
                    deliver_at = Some(byte_at(&t));
                }
            }
            _ => {}
        }
        p.next_token();
    }
    // A WITH that opens the query is its common table expressions, not options.
    let with_at = with_at.filter(|&w| sql[start..w].trim() != "");
    let query_end = with_at.or(deliver_at).unwrap_or(end);
    let query = sql[start..query_end].trim().to_string();
    let text = &sql[query_end..end];
    let mut op = crate::query::parse::parser(text)?;
    let mut options = with_options(text, &mut op)?;
    deliveries(text, &mut op, &mut options)?;
    if op.peek_token().token != Token::EOF {
        return Err(SqlError::syntax(format!("unexpected text after the dataset's options: {}", text.trim())));
    }
    parse_query(&query)?;
    Ok((query, options))
}

/// `DELIVER TO FILE | MQTT | WEBHOOK '<target>'`, any number of them.
fn deliveries(sql: &str, p: &mut Parser, options: &mut Options) -> SqlResult<()> {
    while word(&p.peek_token().token).as_deref() == Some("DELIVER") {
        p.next_token();
        expect_word(sql, p, "TO")?;
        let t = p.next_token();
        let key = match word(&t.token).as_deref() {
            Some("FILE") => "deliver_file",
            Some("MQTT") => "deliver_mqtt",
            Some("WEBHOOK") => "deliver_webhook",
            _ => {
                return Err(SqlError::syntax(format!(
                    "syntax error at or near \"{}\": DELIVER TO FILE, MQTT or WEBHOOK was expected",
                    t.token
                ))
                .at(position_of(sql, t.span.start.line, t.span.start.column)));
            }
        };
        let target = p.parse_literal_string().map_err(|e| from_parser(sql, e))?;
        options.push((key.to_string(), target));
    }
    Ok(())
}

/// The canonical text of a program dataset's body.
pub fn program_text(command: &str, input: &str) -> String {
    format!("PROGRAM '{}' INPUT \"{}\"", command.replace('\'', "''"), input.replace('"', "\"\""))
}

/// A program dataset's command and input dataset, if `body` is `PROGRAM '…' INPUT …`.
pub fn program_body(body: &str) -> Option<(String, String)> {
    let mut p = crate::query::parse::parser(body).ok()?;
    if word(&p.next_token().token).as_deref() != Some("PROGRAM") {
        return None;
    }
    let command = p.parse_literal_string().ok()?;
    expect_word(body, &mut p, "INPUT").ok()?;
    let input = ident(body, &mut p).ok()?;
    (p.peek_token().token == Token::EOF).then_some((command, input))
}
