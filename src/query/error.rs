//! [`SqlError`]: an error for a SQL client: SQLSTATE, message, and where in the statement.

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub sqlstate: &'static str,
    pub message: String,
    /// 1-based character position in the query string, as PostgreSQL reports it.
    pub position: Option<usize>,
    pub hint: Option<String>,
    /// The column a 42703 names (as the statement wrote it), for callers that supply it.
    pub column: Option<String>,
}

pub type SqlResult<T> = std::result::Result<T, SqlError>;

impl SqlError {
    /// 42703: a column the statement names does not exist (yet: a datastore's columns come
    /// with its first rows, so a dataset may be defined before them).
    pub fn is_undefined_column(&self) -> bool {
        self.sqlstate == "42703"
    }

    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        SqlError { sqlstate, message: message.into(), position: None, hint: None, column: None }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn at(mut self, position: Option<usize>) -> Self {
        self.position = self.position.or(position);
        self
    }
    /// 42601 syntax_error.
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new("42601", message)
    }
    /// 0A000 feature_not_supported.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new("0A000", format!("{} is not supported yet", what.into()))
    }
    /// 42P01 undefined_table.
    pub fn undefined_relation(name: &str) -> Self {
        Self::new("42P01", format!("relation \"{name}\" does not exist"))
    }
    /// 42703 undefined_column.
    pub fn undefined_column(name: &str) -> Self {
        SqlError { column: Some(name.to_string()), ..Self::new("42703", format!("column \"{name}\" does not exist")) }
    }
    /// 42883 undefined_function.
    pub fn undefined_function(sig: &str) -> Self {
        Self::new("42883", format!("function {sig} does not exist"))
            .with_hint("No function matches the given name and argument types.")
    }
    /// 42804 datatype_mismatch.
    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::new("42804", message)
    }
    /// 22P02 invalid_text_representation.
    pub fn invalid_input(ty: &str, text: &str) -> Self {
        Self::new("22P02", format!("invalid input syntax for type {ty}: \"{text}\""))
    }
    /// 22012 division_by_zero.
    pub fn division_by_zero() -> Self {
        Self::new("22012", "division by zero")
    }
    /// 22003 numeric_value_out_of_range.
    pub fn out_of_range(ty: &str) -> Self {
        Self::new("22003", format!("{ty} out of range"))
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.sqlstate)
    }
}

impl From<Error> for SqlError {
    fn from(e: Error) -> Self {
        SqlError::new(e.sqlstate(), e.to_string())
    }
}

/// Converts a 1-based line and column into a 1-based character position in `sql`.
pub fn position_of(sql: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut pos = 0usize;
    for (i, l) in sql.split('\n').enumerate() {
        if i as u64 + 1 == line {
            return Some(pos + column as usize);
        }
        pos += l.chars().count() + 1;
    }
    None
}

/// How deeply the parser may nest (parentheses, subqueries, operators' operands); past it,
/// 54001. Statements are parsed on threads whose stack holds this much
/// (`util::sync::STATEMENT_STACK`); binding and evaluation check the stack themselves.
pub const PARSE_DEPTH: usize = 1_000;

/// Maps a sqlparser error to 42601 with the position it names.
pub fn from_parser(sql: &str, e: sqlparser::parser::ParserError) -> SqlError {
    let msg = e.to_string();
    let pos = msg
        .rfind("Line: ")
        .and_then(|i| {
            let rest = &msg[i + 6..];
            let (line, rest) = rest.split_once(", Column: ")?;
            let col: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            Some((line.parse().ok()?, col.parse().ok()?))
        })
        .and_then(|(l, c)| position_of(sql, l, c));
    if matches!(e, sqlparser::parser::ParserError::RecursionLimitExceeded) {
        return SqlError::new("54001", "statement too complex: parentheses, subqueries or types nested too deeply")
            .with_hint(format!(
                "The parser nests at most {PARSE_DEPTH} levels (a parenthesis or an operator's operand is one, a subquery about three)."
            ));
    }
    let clean = msg.trim_start_matches("sql parser error: ");
    let clean = clean.split(" at Line: ").next().unwrap_or(clean);
    SqlError::syntax(format!("syntax error: {clean}")).at(pos)
}
