//! Statement parsing. fleetdb's own statements (`CREATE CHANNEL`, `CREATE DATASTORE`,
//! `SHOW CHANNELS`, `DESCRIBE x`, `ALTER CHANNEL x SET (...)`, …) are recognised by their first
//! words and parsed with sqlparser's token-level helpers, so their expressions and literals
//! follow PostgreSQL's rules; everything else is standard SQL for sqlparser's PostgreSQL dialect.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::error::{PARSE_DEPTH, SqlError, SqlResult, from_parser, position_of};
use super::types::SqlType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Channel,
    Datastore,
    Table,
    Pipeline,
    Dataset,
    Route,
}

impl ObjectKind {
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Channel => "channel",
            ObjectKind::Datastore => "datastore",
            ObjectKind::Table => "table",
            ObjectKind::Pipeline => "pipeline",
            ObjectKind::Dataset => "dataset",
            ObjectKind::Route => "route",
        }
    }
    fn from_word(w: &str) -> Option<ObjectKind> {
        Some(match w.trim_end_matches('S') {
            "CHANNEL" => ObjectKind::Channel,
            "DATASTORE" => ObjectKind::Datastore,
            "TABLE" => ObjectKind::Table,
            "PIPELINE" => ObjectKind::Pipeline,
            "DATASET" => ObjectKind::Dataset,
            "ROUTE" => ObjectKind::Route,
            _ => return None,
        })
    }
}

/// `name = value` options of `WITH (...)` and `SET (...)`; values as their text.
pub type Options = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Sql(Box<ast::Statement>),
    CreateChannel {
        name: String,
        if_not_exists: bool,
        options: Options,
    },
    CreateDatastore {
        name: String,
        if_not_exists: bool,
        columns: Vec<(String, SqlType)>,
        options: Options,
    },
    Drop {
        kind: ObjectKind,
        names: Vec<String>,
        if_exists: bool,
    },
    Show(ObjectKind),
    Describe {
        kind: Option<ObjectKind>,
        name: String,
    },
    AlterSet {
        kind: ObjectKind,
        name: String,
        options: Options,
    },
    /// `CREATE ROUTE r FROM MQTT 'filter' INTO CHANNEL c [WITH (…)]`.
    CreateRoute {
        name: String,
        if_not_exists: bool,
        filter: String,
        channel: String,
        options: Options,
    },
    /// `SAMPLE CHANNEL c [LIMIT n] [FROM 'ts' TO 'ts']` (AWS SampleChannelData).
    Sample {
        name: String,
        limit: Option<u64>,
        from: Option<String>,
        to: Option<String>,
    },
    /// `CREATE PIPELINE p FROM CHANNEL c <activities> INTO DATASTORE d [WITH (…)]`.
    CreatePipeline {
        spec: crate::pipeline::PipelineSpec,
        if_not_exists: bool,
    },
    /// `ALTER PIPELINE p [FROM CHANNEL c] <activities> [INTO DATASTORE d] [WITH (…)]`.
    AlterPipeline(crate::pipeline::PipelineSpec),
    /// `TEST PIPELINE p WITH '<json array>'` (AWS RunPipelineActivity).
    TestPipeline {
        name: String,
        messages: String,
    },
    /// `CREATE DATASET d AS <query> [WITH (…)]`: the query's text as written.
    CreateDataset {
        name: String,
        if_not_exists: bool,
        query: String,
        options: Options,
    },
    /// `ALTER DATASET d SET (…)` (options changed, the rest kept) or `ALTER DATASET d AS
    /// <query> [WITH (…)]` (the whole definition replaced); AWS UpdateDataset.
    AlterDataset {
        name: String,
        query: Option<String>,
        options: Options,
    },
    /// `REFRESH DATASET d` (AWS CreateDatasetContent).
    RefreshDataset(String),
    /// `CHECKPOINT`: as PostgreSQL's, everything logged so far written to data files (channel
    /// tails sealed, memtables flushed) and the WAL they covered removed.
    Checkpoint,
    /// `SHOW DATASET CONTENTS d` (AWS ListDatasetContents).
    ShowDatasetContents(String),
    /// `REPROCESS PIPELINE p [FROM 'ts'] [TO 'ts']` (AWS StartPipelineReprocessing).
    ReprocessPipeline {
        name: String,
        from: Option<String>,
        to: Option<String>,
    },
    /// `SHOW REPROCESSING`.
    ShowReprocessing,
    /// `CANCEL REPROCESSING id`.
    CancelReprocessing(u64),
    /// A fleetdb statement this build does not implement yet (its first words).
    NotYet(String),
}

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// One SQL expression (text fleetdb builds, or an option's value such as `delta_time`).
pub fn parse_expression(sql: &str) -> SqlResult<ast::Expr> {
    check_size(sql)?;
    let mut p = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(PARSE_DEPTH)
        .try_with_sql(sql)
        .map_err(|e| from_parser(sql, e))?;
    let e = p.parse_expr().map_err(|e| from_parser(sql, e))?;
    if p.peek_token().token != Token::EOF {
        return Err(SqlError::syntax(format!("unexpected text after the expression: {sql}")));
    }
    Ok(e)
}

/// The one SELECT (or other query) that `sql`, text fleetdb builds itself, holds.
pub fn parse_query(sql: &str) -> SqlResult<Box<ast::Query>> {
    match parse(sql)?.into_iter().next() {
        Some(Statement::Sql(s)) => match *s {
            ast::Statement::Query(q) => Ok(q),
            _ => Err(SqlError::syntax(format!("not a query: {sql}"))),
        },
        _ => Err(SqlError::syntax(format!("not a query: {sql}"))),
    }
}

/// What parsing a statement may take at most: the tokens, then the syntax tree. Past it the
/// statement is refused (54000) before anything is allocated for it.
pub const MAX_PARSE_MEMORY: usize = 1 << 30;

/// Most operators one statement may chain (`a = 1 OR a = 2 OR …` has two per term): such a
/// chain is a syntax tree as deep as it is long, and walking it (to free it, to print it)
/// recurses once per operator.
pub const MAX_OPERATORS: usize = 100_000;

/// Checks, in one pass over the text and before the tokenizer runs, that `sql` can be parsed
/// within [`MAX_PARSE_MEMORY`] and [`MAX_OPERATORS`]: the tokenizer keeps every whitespace
/// character as a token of its own, so a statement's text size alone says little.
pub fn check_size(sql: &str) -> SqlResult<()> {
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

/// Parses every statement of `sql` (separated by semicolons).
pub fn parse(sql: &str) -> SqlResult<Vec<Statement>> {
    check_size(sql)?;
    let dialect = PostgreSqlDialect {};
    let mut p =
        Parser::new(&dialect).with_recursion_limit(PARSE_DEPTH).try_with_sql(sql).map_err(|e| from_parser(sql, e))?;
    let mut out = Vec::new();
    loop {
        while p.consume_token(&Token::SemiColon) {}
        if p.peek_token().token == Token::EOF {
            break;
        }
        out.push(parse_one(sql, &mut p)?);
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

fn parse_one(sql: &str, p: &mut Parser) -> SqlResult<Statement> {
    let pe = |e| from_parser(sql, e);
    let w: Vec<Option<String>> = (0..3).map(|i| word(&p.peek_nth_token(i).token)).collect();
    let w0 = w[0].as_deref().unwrap_or("");
    let w1 = w[1].as_deref().unwrap_or("");
    let kind1 = ObjectKind::from_word(w1);
    match (w0, kind1) {
        ("CHECKPOINT", _) if matches!(p.peek_nth_token(1).token, Token::EOF | Token::SemiColon) => {
            p.next_token();
            Ok(Statement::Checkpoint)
        }
        ("CREATE", Some(ObjectKind::Channel)) => {
            p.next_token();
            p.next_token();
            let if_not_exists = if_not_exists(p);
            let name = ident(sql, p)?;
            let options = with_options(sql, p)?;
            Ok(Statement::CreateChannel { name, if_not_exists, options })
        }
        ("CREATE", Some(ObjectKind::Datastore)) => {
            p.next_token();
            p.next_token();
            let if_not_exists = if_not_exists(p);
            let name = ident(sql, p)?;
            let mut columns = Vec::new();
            if p.consume_token(&Token::LParen) {
                loop {
                    let col = ident(sql, p)?;
                    let start = p.peek_token().span.start;
                    let dt = p.parse_data_type().map_err(pe)?;
                    let ty = SqlType::from_name(&dt.to_string()).ok_or_else(|| {
                        SqlError::new("42704", format!("type \"{dt}\" does not exist")).at(position_of(
                            sql,
                            start.line,
                            start.column,
                        ))
                    })?;
                    columns.push((col, ty));
                    if !p.consume_token(&Token::Comma) {
                        break;
                    }
                }
                p.expect_token(&Token::RParen).map_err(pe)?;
            }
            let options = with_options(sql, p)?;
            Ok(Statement::CreateDatastore { name, if_not_exists, columns, options })
        }
        ("CREATE", Some(ObjectKind::Route)) => {
            use sqlparser::keywords::Keyword;
            p.next_token();
            p.next_token();
            let if_not_exists = if_not_exists(p);
            let name = ident(sql, p)?;
            p.expect_keyword(Keyword::FROM).map_err(pe)?;
            let source = ident(sql, p)?;
            if source != "mqtt" {
                return Err(SqlError::syntax(format!("routes come FROM MQTT, not {source}")));
            }
            let filter = p.parse_literal_string().map_err(pe)?;
            p.expect_keyword(Keyword::INTO).map_err(pe)?;
            let kind = ident(sql, p)?;
            if kind != "channel" {
                return Err(SqlError::syntax(format!("a route goes INTO CHANNEL, not {kind}")));
            }
            let channel = ident(sql, p)?;
            let options = with_options(sql, p)?;
            Ok(Statement::CreateRoute { name, if_not_exists, filter, channel, options })
        }
        ("CREATE", Some(ObjectKind::Pipeline)) => {
            p.next_token();
            p.next_token();
            let if_not_exists = if_not_exists(p);
            let name = ident(sql, p)?;
            Ok(Statement::CreatePipeline { spec: pipeline_spec(sql, p, name)?, if_not_exists })
        }
        ("ALTER", Some(ObjectKind::Pipeline)) => {
            p.next_token();
            p.next_token();
            let name = ident(sql, p)?;
            Ok(Statement::AlterPipeline(pipeline_spec(sql, p, name)?))
        }
        ("TEST", Some(ObjectKind::Pipeline)) => {
            p.next_token();
            p.next_token();
            let name = ident(sql, p)?;
            p.expect_keyword(sqlparser::keywords::Keyword::WITH).map_err(pe)?;
            let messages = p.parse_literal_string().map_err(pe)?;
            Ok(Statement::TestPipeline { name, messages })
        }
        ("CREATE", Some(ObjectKind::Dataset)) => {
            p.next_token();
            p.next_token();
            let if_not_exists = if_not_exists(p);
            let name = ident(sql, p)?;
            p.expect_keyword(sqlparser::keywords::Keyword::AS).map_err(pe)?;
            let (query, options) = dataset_body(sql, p)?;
            Ok(Statement::CreateDataset { name, if_not_exists, query, options })
        }
        ("ALTER", Some(ObjectKind::Dataset)) => {
            use sqlparser::keywords::Keyword;
            p.next_token();
            p.next_token();
            let name = ident(sql, p)?;
            if p.parse_keyword(Keyword::SET) {
                let options = option_list(sql, p)?;
                return Ok(Statement::AlterDataset { name, query: None, options });
            }
            p.expect_keyword(Keyword::AS).map_err(pe)?;
            let (query, options) = dataset_body(sql, p)?;
            Ok(Statement::AlterDataset { name, query: Some(query), options })
        }
        ("REFRESH", Some(ObjectKind::Dataset)) => {
            p.next_token();
            p.next_token();
            Ok(Statement::RefreshDataset(ident(sql, p)?))
        }
        ("SHOW", Some(ObjectKind::Dataset)) if word(&p.peek_nth_token(2).token).as_deref() == Some("CONTENTS") => {
            p.next_token();
            p.next_token();
            p.next_token();
            Ok(Statement::ShowDatasetContents(ident(sql, p)?))
        }
        ("DROP", Some(k)) if k != ObjectKind::Table => {
            p.next_token();
            p.next_token();
            let if_exists = p.parse_keywords(&[sqlparser::keywords::Keyword::IF, sqlparser::keywords::Keyword::EXISTS]);
            let mut names = vec![ident(sql, p)?];
            while p.consume_token(&Token::Comma) {
                names.push(ident(sql, p)?);
            }
            Ok(Statement::Drop { kind: k, names, if_exists })
        }
        ("SHOW", Some(k)) if w1.ends_with('S') && p.peek_nth_token(2).token != Token::Period => {
            p.next_token();
            p.next_token();
            Ok(Statement::Show(k))
        }
        ("DESCRIBE" | "DESC", _) => {
            p.next_token();
            if kind1.is_some() && word(&p.peek_nth_token(1).token).is_some() {
                p.next_token();
            }
            let name = ident(sql, p)?;
            Ok(Statement::Describe { kind: kind1, name })
        }
        ("ALTER", Some(k @ (ObjectKind::Channel | ObjectKind::Datastore))) => {
            p.next_token();
            p.next_token();
            let name = ident(sql, p)?;
            p.expect_keyword(sqlparser::keywords::Keyword::SET).map_err(pe)?;
            let options = option_list(sql, p)?;
            Ok(Statement::AlterSet { kind: k, name, options })
        }
        ("SAMPLE", Some(ObjectKind::Channel)) => {
            use sqlparser::keywords::Keyword;
            p.next_token();
            p.next_token();
            let name = ident(sql, p)?;
            let mut limit = None;
            if p.parse_keyword(Keyword::LIMIT) {
                let t = p.next_token();
                let Token::Number(n, _) = &t.token else {
                    return Err(SqlError::syntax("LIMIT takes a number of messages").at(position_of(
                        sql,
                        t.span.start.line,
                        t.span.start.column,
                    )));
                };
                limit = Some(n.parse().map_err(|_| SqlError::syntax("LIMIT takes a number of messages"))?);
            }
            let (mut from, mut to) = (None, None);
            if p.parse_keyword(Keyword::FROM) {
                from = Some(p.parse_literal_string().map_err(pe)?);
                p.expect_keyword(Keyword::TO).map_err(pe)?;
                to = Some(p.parse_literal_string().map_err(pe)?);
            }
            Ok(Statement::Sample { name, limit, from, to })
        }
        ("REPROCESS", Some(ObjectKind::Pipeline)) => {
            use sqlparser::keywords::Keyword;
            p.next_token();
            p.next_token();
            let name = ident(sql, p)?;
            let from = if p.parse_keyword(Keyword::FROM) { Some(p.parse_literal_string().map_err(pe)?) } else { None };
            let to = if p.parse_keyword(Keyword::TO) { Some(p.parse_literal_string().map_err(pe)?) } else { None };
            Ok(Statement::ReprocessPipeline { name, from, to })
        }
        ("SHOW", _) if w1 == "REPROCESSING" || w1 == "REPROCESSINGS" => {
            p.next_token();
            p.next_token();
            Ok(Statement::ShowReprocessing)
        }
        ("CANCEL", _) if w1 == "REPROCESSING" => {
            p.next_token();
            p.next_token();
            let t = p.next_token();
            let id = match &t.token {
                Token::Number(n, _) => n.parse().ok(),
                Token::SingleQuotedString(s) => s.parse().ok(),
                _ => None,
            };
            let id = id.ok_or_else(|| {
                SqlError::syntax("CANCEL REPROCESSING takes the id REPROCESS PIPELINE returned").at(position_of(
                    sql,
                    t.span.start.line,
                    t.span.start.column,
                ))
            })?;
            Ok(Statement::CancelReprocessing(id))
        }
        ("REFRESH" | "REPROCESS" | "SAMPLE" | "TEST" | "CANCEL", _) => {
            let what = format!("{w0} {w1}");
            skip_statement(p);
            Ok(Statement::NotYet(what))
        }
        _ => Ok(Statement::Sql(Box::new(p.parse_statement().map_err(pe)?))),
    }
}

/// The rest of CREATE or ALTER PIPELINE after the name: `[FROM CHANNEL c] <activities>
/// [INTO DATASTORE d] [WITH (…)]`.
fn pipeline_spec(sql: &str, p: &mut Parser, name: String) -> SqlResult<crate::pipeline::PipelineSpec> {
    use crate::pipeline::Activity;
    use sqlparser::keywords::Keyword;
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
                            crate::pipeline::OutlierRule::ZScore { k, n: n as usize }
                        }
                        Some("RANGE") => {
                            let lo = number(sql, p)?;
                            p.expect_keyword(Keyword::TO).map_err(pe)?;
                            let hi = number(sql, p)?;
                            if lo > hi {
                                return Err(SqlError::new("22023", format!("RANGE {lo} TO {hi} is empty")).at(at));
                            }
                            crate::pipeline::OutlierRule::Range { lo, hi }
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
                let (mut batch_size, mut timeout_secs) =
                    (crate::pipeline::LAMBDA_BATCH, crate::pipeline::LAMBDA_TIMEOUT_SECS);
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
                let within = crate::sql::scalar::parse_fixed_interval(&text).filter(|&us| us > 0).ok_or_else(|| {
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
    Ok(crate::pipeline::PipelineSpec { name, channel, activities, datastore, options })
}

/// A dataset's body: `<query>` or `PROGRAM '<command>' INPUT <dataset>`, then `[WITH (…)]` and
/// any number of `DELIVER TO FILE | MQTT | WEBHOOK '<target>'`. A query runs to the
/// statement's end, or to its last top-level `WITH (` or first top-level `DELIVER TO`. The
/// deliveries join the options as `deliver_file`, `deliver_mqtt` and `deliver_webhook`.
fn dataset_body(sql: &str, p: &mut Parser) -> SqlResult<(String, Options)> {
    if word(&p.peek_token().token).as_deref() == Some("PROGRAM") {
        p.next_token();
        let command = p.parse_literal_string().map_err(|e| from_parser(sql, e))?;
        expect_word(sql, p, "INPUT")?;
        let input = ident(sql, p)?;
        let mut options = with_options(sql, p)?;
        deliveries(sql, p, &mut options)?;
        return Ok((program_text(&command, &input), options));
    }
    let byte_at = |t: &sqlparser::tokenizer::TokenWithSpan| -> usize {
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
    let mut op = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(PARSE_DEPTH)
        .try_with_sql(text)
        .map_err(|e| from_parser(text, e))?;
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
    let mut p = Parser::new(&PostgreSqlDialect {}).with_recursion_limit(PARSE_DEPTH).try_with_sql(body).ok()?;
    if word(&p.next_token().token).as_deref() != Some("PROGRAM") {
        return None;
    }
    let command = p.parse_literal_string().ok()?;
    expect_word(body, &mut p, "INPUT").ok()?;
    let input = ident(body, &mut p).ok()?;
    (p.peek_token().token == Token::EOF).then_some((command, input))
}

/// A number, maybe negative.
fn number(sql: &str, p: &mut Parser) -> SqlResult<f64> {
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
fn expect_word(sql: &str, p: &mut Parser, want: &str) -> SqlResult<()> {
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
fn paren_names(sql: &str, p: &mut Parser) -> SqlResult<Vec<String>> {
    p.expect_token(&Token::LParen).map_err(|e| from_parser(sql, e))?;
    let mut names = vec![attribute_path(sql, p)?];
    while p.consume_token(&Token::Comma) {
        names.push(attribute_path(sql, p)?);
    }
    p.expect_token(&Token::RParen).map_err(|e| from_parser(sql, e))?;
    Ok(names)
}

/// An attribute path: names joined by dots, each maybe followed by `[index]`.
fn attribute_path(sql: &str, p: &mut Parser) -> SqlResult<String> {
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

fn if_not_exists(p: &mut Parser) -> bool {
    use sqlparser::keywords::Keyword;
    p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
}

fn ident(sql: &str, p: &mut Parser) -> SqlResult<String> {
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
fn with_options(sql: &str, p: &mut Parser) -> SqlResult<Options> {
    if p.parse_keyword(sqlparser::keywords::Keyword::WITH) { option_list(sql, p) } else { Ok(Vec::new()) }
}

fn option_list(sql: &str, p: &mut Parser) -> SqlResult<Options> {
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
fn skip_statement(p: &mut Parser) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fleetdb_statements_and_sql_together() {
        let s = parse(
            "CREATE CHANNEL factory_sensor_channel WITH (retention = '90 days');
             CREATE DATASTORE d (machine_id TEXT, temperature DOUBLE PRECISION) WITH (retention = '365 days');
             SHOW CHANNELS; DESCRIBE CHANNEL factory_sensor_channel; DESCRIBE d;
             ALTER DATASTORE d SET (retention = 'unlimited');
             CREATE PIPELINE p FROM CHANNEL c FILTER vibration > 0 INTO DATASTORE d;
             DROP CHANNEL IF EXISTS a, b;
             SELECT 1",
        )
        .unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(
            s[0],
            Statement::CreateChannel {
                name: "factory_sensor_channel".into(),
                if_not_exists: false,
                options: vec![("retention".into(), "90 days".into())]
            }
        );
        let Statement::CreateDatastore { columns, .. } = &s[1] else { panic!("{:?}", s[1]) };
        assert_eq!(columns, &vec![("machine_id".into(), SqlType::Text), ("temperature".into(), SqlType::Float8)]);
        assert_eq!(s[2], Statement::Show(ObjectKind::Channel));
        assert_eq!(
            s[3],
            Statement::Describe { kind: Some(ObjectKind::Channel), name: "factory_sensor_channel".into() }
        );
        assert_eq!(s[4], Statement::Describe { kind: None, name: "d".into() });
        let Statement::CreatePipeline { spec, if_not_exists: false } = &s[6] else { panic!("{:?}", s[6]) };
        assert_eq!((spec.channel.as_deref(), spec.datastore.as_deref()), (Some("c"), Some("d")));
        assert_eq!(spec.activities.len(), 1);
        assert_eq!(
            s[7],
            Statement::Drop { kind: ObjectKind::Channel, names: vec!["a".into(), "b".into()], if_exists: true }
        );
        assert!(matches!(&s[8], Statement::Sql(_)));
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let e = parse("SELECT 1;\nSELEC 2").unwrap_err();
        assert_eq!(e.sqlstate, "42601");
        assert_eq!(e.position, Some(11), "{e:?}");
        let e = parse("CREATE CHANNEL 5").unwrap_err();
        assert_eq!(e.position, Some(16), "{e:?}");
    }
}
