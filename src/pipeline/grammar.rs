//! The pipeline grammar: the body of CREATE and ALTER PIPELINE, and a stored definition read
//! back.

use super::PipelineSpec;
use crate::query::error::{SqlError, SqlResult, from_parser, position_of};
use crate::query::grammar::{
    Keyword, Parser, Token, attribute_path, expect_word, ident, if_not_exists, number, paren_names, with_options, word,
};

/// A stored definition, `CREATE PIPELINE [IF NOT EXISTS] name …`: its spec.
pub(crate) fn definition(sql: &str) -> SqlResult<PipelineSpec> {
    let mut specs = crate::query::parse::statements(sql, |sql, p| {
        expect_word(sql, p, "CREATE")?;
        expect_word(sql, p, "PIPELINE")?;
        if_not_exists(p);
        let name = ident(sql, p)?;
        pipeline_spec(sql, p, name)
    })?;
    match (specs.pop(), specs.is_empty()) {
        (Some(spec), true) => Ok(spec),
        _ => Err(SqlError::syntax("a pipeline definition is one CREATE PIPELINE statement")),
    }
}

/// The rest of CREATE or ALTER PIPELINE after the name: `[FROM CHANNEL c] <activities>
/// [INTO DATASTORE d] [WITH (…)]`.
pub(crate) fn pipeline_spec(sql: &str, p: &mut Parser, name: String) -> SqlResult<super::PipelineSpec> {
    use super::Activity;
    use Keyword;
    let pe = |e| from_parser(sql, e);
    let expect_word = |p: &mut Parser, want: &str| expect_word(sql, p, want);
    let mut channel = None;
    if p.parse_keyword(Keyword::FROM) {
        expect_word(p, "CHANNEL")?;
        channel = Some(ident(sql, p)?);
    }
    let mut activities = Vec::new();
    let mut datastore = None;
    loop {
        let t = p.peek_token();
        let at = position_of(sql, t.span.start.line, t.span.start.column);
        let Some(w) = word(&t.token) else { break };
        match w.as_str() {
            "FILTER" => {
                p.next_token();
                activities.push(Activity::Filter(p.parse_expr().map_err(pe)?));
            }
            "MATH" => {
                p.next_token();
                let name = ident(sql, p)?;
                p.expect_token(&Token::Eq).map_err(pe)?;
                activities.push(Activity::Math { name, expr: p.parse_expr().map_err(pe)? });
            }
            "ADD" => {
                p.next_token();
                expect_word(p, "ATTRIBUTES")?;
                p.expect_token(&Token::LParen).map_err(pe)?;
                let mut pairs = Vec::new();
                loop {
                    let path = attribute_path(sql, p)?;
                    p.expect_keyword(Keyword::AS).map_err(pe)?;
                    pairs.push((path, ident(sql, p)?));
                    if !p.consume_token(&Token::Comma) {
                        break;
                    }
                }
                p.expect_token(&Token::RParen).map_err(pe)?;
                activities.push(Activity::AddAttributes(pairs));
            }
            "REMOVE" | "SELECT" => {
                p.next_token();
                if w == "REMOVE" && word(&p.peek_token().token).as_deref() == Some("OUTLIERS") {
                    p.next_token();
                    p.expect_keyword(Keyword::ON).map_err(pe)?;
                    let attr = attribute_path(sql, p)?;
                    let key = if p.parse_keyword(Keyword::BY) { Some(attribute_path(sql, p)?) } else { None };
                    let paren = p.consume_token(&Token::LParen);
                    let rule = match word(&p.next_token().token).as_deref() {
                        Some("ZSCORE") => {
                            let k = number(sql, p)?;
                            expect_word(p, "OVER")?;
                            let n = number(sql, p)?;
                            if !(k > 0.0 && k.is_finite() && (2.0..=100_000.0).contains(&n) && n.fract() == 0.0) {
                                return Err(SqlError::new(
                                    "22023",
                                    "ZSCORE k OVER n needs k > 0 and a whole n from 2 to 100000",
                                )
                                .at(at));
                            }
                            super::OutlierRule::ZScore { k, n: n as usize }
                        }
                        Some("RANGE") => {
                            let lo = number(sql, p)?;
                            p.expect_keyword(Keyword::TO).map_err(pe)?;
                            let hi = number(sql, p)?;
                            if lo > hi {
                                return Err(SqlError::new("22023", format!("RANGE {lo} TO {hi} is empty")).at(at));
                            }
                            super::OutlierRule::Range { lo, hi }
                        }
                        _ => {
                            return Err(
                                SqlError::syntax("REMOVE OUTLIERS takes ZSCORE k OVER n or RANGE lo TO hi").at(at)
                            );
                        }
                    };
                    if paren {
                        p.expect_token(&Token::RParen).map_err(pe)?;
                    }
                    activities.push(Activity::RemoveOutliers { attr, key, rule });
                    continue;
                }
                expect_word(p, "ATTRIBUTES")?;
                let names = paren_names(sql, p)?;
                activities.push(if w == "REMOVE" {
                    Activity::RemoveAttributes(names)
                } else {
                    Activity::SelectAttributes(names)
                });
            }
            "ENRICH" => {
                p.next_token();
                p.expect_keyword(Keyword::FROM).map_err(pe)?;
                let table = ident(sql, p)?;
                p.expect_keyword(Keyword::ON).map_err(pe)?;
                let attr = ident(sql, p)?;
                let column = if p.consume_token(&Token::Eq) { ident(sql, p)? } else { attr.clone() };
                let columns = if word(&p.peek_token().token).as_deref() == Some("COLUMNS") {
                    p.next_token();
                    Some(paren_names(sql, p)?)
                } else {
                    None
                };
                activities.push(Activity::Enrich { table, attr, column, columns });
            }
            "LAMBDA" => {
                p.next_token();
                let command = p.parse_literal_string().map_err(pe)?;
                let (mut batch_size, mut timeout_secs) = (super::LAMBDA_BATCH, super::LAMBDA_TIMEOUT_SECS);
                for (k, v) in with_options(sql, p)? {
                    let bad = || SqlError::new("22023", format!("LAMBDA option {k} = '{v}' is not valid"));
                    match k.as_str() {
                        "batch_size" => {
                            batch_size = v.parse().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(bad)?
                        }
                        "timeout" => {
                            timeout_secs = v
                                .trim()
                                .trim_end_matches('s')
                                .trim()
                                .parse()
                                .ok()
                                .filter(|&n| n >= 1)
                                .ok_or_else(bad)?
                        }
                        _ => {
                            return Err(SqlError::new(
                                "22023",
                                format!("unknown LAMBDA option \"{k}\" (batch_size, timeout)"),
                            ));
                        }
                    }
                }
                activities.push(Activity::Lambda { command, batch_size, timeout_secs });
            }
            "LATEST" => {
                p.next_token();
                let attrs = paren_names(sql, p)?;
                p.expect_keyword(Keyword::BY).map_err(pe)?;
                activities.push(Activity::Latest { attrs, key: attribute_path(sql, p)? });
            }
            "DEDUPLICATE" => {
                p.next_token();
                p.expect_keyword(Keyword::ON).map_err(pe)?;
                let attrs = paren_names(sql, p)?;
                expect_word(p, "WITHIN")?;
                let text = p.parse_literal_string().map_err(pe)?;
                let within =
                    crate::query::scalar::parse_fixed_interval(&text).filter(|&us| us > 0).ok_or_else(|| {
                        SqlError::new(
                            "22007",
                            format!("DEDUPLICATE … WITHIN '{text}': a positive interval of days or less was expected"),
                        )
                        .at(at)
                    })?;
                activities.push(Activity::Deduplicate { attrs, within_micros: within, within_text: text });
            }
            "INTO" => {
                p.next_token();
                expect_word(p, "DATASTORE")?;
                datastore = Some(ident(sql, p)?);
                break;
            }
            _ => break,
        }
    }
    let options = with_options(sql, p)?;
    Ok(super::PipelineSpec { name, channel, activities, datastore, options })
}
