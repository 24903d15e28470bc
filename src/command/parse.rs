//! Statement parsing. fleetdb's own statements (`CREATE CHANNEL`, `CREATE DATASTORE`,
//! `SHOW CHANNELS`, `DESCRIBE x`, `ALTER CHANNEL x SET (...)`, …) are recognised by their first
//! words and parsed with sqlparser's token-level helpers, so their expressions and literals
//! follow PostgreSQL's rules; pipelines and datasets by their own grammars
//! (`pipeline::grammar`, `dataset::grammar`); everything else is standard SQL for sqlparser's
//! PostgreSQL dialect.

use crate::query::ast;

use crate::dataset::grammar::dataset_body;
use crate::pipeline::grammar::pipeline_spec;
use crate::query::error::{SqlError, SqlResult, from_parser, position_of};
use crate::query::grammar::{
    Keyword, Options, Parser, Token, ident, if_not_exists, option_list, skip_statement, with_options, word,
};
use crate::query::types::SqlType;

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

/// Parses every statement of `sql` (separated by semicolons).
/// Long lists of literals are read apart ([`crate::query::parse::cut_long_lists`]); if one
/// cannot go back where its marker ended up, or the shortened text does not parse, the whole
/// text is parsed as written (so errors and their positions are the text's).
pub fn parse(sql: &str) -> SqlResult<Vec<Statement>> {
    use crate::query::parse::{cut_long_lists, put_back, statements};
    if let Some((short, mut lists)) = cut_long_lists(sql)?
        && let Ok(mut stmts) = statements(&short, parse_one)
    {
        let mut ok = true;
        for s in &mut stmts {
            if let Statement::Sql(s) = s {
                match put_back(s, &mut lists) {
                    Ok(back) => ok &= back,
                    Err(e) => {
                        // Cancelled: the lists made so far are freed apart (see Session::execute).
                        crate::query::guard::free_elsewhere(stmts);
                        return Err(e);
                    }
                }
            }
        }
        if ok && lists.all_back() {
            return Ok(stmts);
        }
    }
    statements(sql, parse_one)
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
            use Keyword;
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
            p.expect_keyword(Keyword::WITH).map_err(pe)?;
            let messages = p.parse_literal_string().map_err(pe)?;
            Ok(Statement::TestPipeline { name, messages })
        }
        ("CREATE", Some(ObjectKind::Dataset)) => {
            p.next_token();
            p.next_token();
            let if_not_exists = if_not_exists(p);
            let name = ident(sql, p)?;
            p.expect_keyword(Keyword::AS).map_err(pe)?;
            let (query, options) = dataset_body(sql, p)?;
            Ok(Statement::CreateDataset { name, if_not_exists, query, options })
        }
        ("ALTER", Some(ObjectKind::Dataset)) => {
            use Keyword;
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
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
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
            p.expect_keyword(Keyword::SET).map_err(pe)?;
            let options = option_list(sql, p)?;
            Ok(Statement::AlterSet { kind: k, name, options })
        }
        ("SAMPLE", Some(ObjectKind::Channel)) => {
            use Keyword;
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
            use Keyword;
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
