//! [`Prepared`]: a statement of the extended protocol, parsed once at Parse. Describe, Bind and
//! Execute use its syntax tree (the text is never parsed again), and the result description
//! worked out at the first Describe or Bind is kept with it.
//!
//! A syntax error is answered at Parse, as PostgreSQL answers it; a statement list is refused
//! there too ("cannot insert multiple commands into a prepared statement").

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::api::stmt::QueryParser;
use pgwire::api::{ClientInfo, Type};
use pgwire::error::PgWireResult;

use crate::command::parse::{Statement, parse};
use crate::query::error::SqlError;
use crate::query::plan::OutCol;

/// One parsed statement, shared by the portals bound from it.
#[derive(Clone, Debug)]
pub struct Prepared(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sql: String,
    stmt: Statement,
    /// The highest `$n` in the text.
    dollar_params: usize,
    /// The result columns (none for a command), once described.
    described: OnceLock<Option<Vec<OutCol>>>,
}

impl Prepared {
    pub fn sql(&self) -> &str {
        &self.0.sql
    }
    pub fn statement(&self) -> &Statement {
        &self.0.stmt
    }
    /// How many parameters the text refers to (`$1` … `$n`).
    pub fn dollar_params(&self) -> usize {
        self.0.dollar_params
    }
    /// The result columns: worked out by `describe` the first time, kept after.
    pub fn described(
        &self,
        describe: impl FnOnce(&Statement) -> Result<Option<Vec<OutCol>>, SqlError>,
    ) -> Result<Option<&[OutCol]>, SqlError> {
        if let Some(d) = self.0.described.get() {
            return Ok(d.as_deref());
        }
        let d = describe(&self.0.stmt)?;
        Ok(self.0.described.get_or_init(|| d).as_deref())
    }
}

/// Parses statements for the extended protocol (pgwire's [`QueryParser`]).
#[derive(Default)]
pub struct Parser;

/// Parses `sql` as one statement: `None` when it holds none (only comments).
pub(crate) fn parse_one(sql: &str) -> Result<Option<Prepared>, SqlError> {
    let mut stmts = parse(sql)?;
    match stmts.len() {
        0 => Ok(None),
        1 => Ok(stmts.pop().map(|stmt| {
            Prepared(Arc::new(Inner {
                sql: sql.to_string(),
                stmt,
                dollar_params: param_count(sql),
                described: OnceLock::new(),
            }))
        })),
        _ => Err(SqlError::syntax("cannot insert multiple commands into a prepared statement")),
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // Parsing a long statement takes a while (bounded by its size): off the async workers'
        // turn, and a parser defect is this statement's error, not the connection's end.
        let parsed = tokio::task::block_in_place(|| std::panic::catch_unwind(|| parse_one(sql)));
        match parsed {
            Ok(r) => r.map_err(super::wire::to_pg_error),
            Err(_) => {
                Err(super::wire::to_pg_error(SqlError::new("XX000", "internal error while parsing the statement")))
            }
        }
    }

    fn get_parameter_types(&self, _stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(Vec::new())
    }

    fn get_result_schema(&self, _stmt: &Prepared, _format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

/// Parameter count of a statement: the highest `$n` in it (outside string literals).
pub(crate) fn param_count(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
        } else if b[i] == b'$' {
            let j = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if let Ok(n) = sql[i + 1..i + 1 + j].parse::<usize>() {
                max = max.max(n);
            }
            i += j;
        }
        i += 1;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parameters_outside_strings() {
        assert_eq!(param_count("SELECT $1, $2::int WHERE x = '$9'"), 2);
        assert_eq!(param_count("SELECT 1"), 0);
        assert_eq!(param_count("SELECT $10"), 10);
    }

    #[test]
    fn parsed_once_described_once() {
        let p = parse_one("SELECT $1::int AS n").unwrap().unwrap();
        assert_eq!((p.sql(), p.dollar_params()), ("SELECT $1::int AS n", 1));
        let col = OutCol { name: "n".into(), ty: crate::query::types::SqlType::Int4 };
        let first = p.described(|_| Ok(Some(vec![col.clone()]))).unwrap();
        // The second time the kept description answers; the closure is not called.
        let second = p.described(|_| panic!("described again")).unwrap();
        assert_eq!(first, second);
        assert!(parse_one("-- nothing").unwrap().is_none());
        let e = parse_one("SELECT 1; SELECT 2").unwrap_err();
        assert!(e.message.contains("multiple commands"), "{}", e.message);
        assert_eq!(parse_one("SELEC 1").unwrap_err().sqlstate, "42601");
    }
}
