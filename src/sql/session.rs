//! [`Session`]: executes parsed statements against the engine and returns results as
//! column batches. One per client connection; it holds the connection's settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlparser::ast;

use super::copy::CopyFormat;
use super::error::{SqlError, SqlResult};
use super::exec::{OutCol, concat, run};
use super::expr::{EvalCtx, cast_scalar, scalars_to_column};
use super::parse::{ObjectKind, Options, Statement, parse, parse_query};
use super::plan::{Binder, type_of_oid};
use super::scalar::{Param, Scalar};
use super::types::SqlType;
use crate::batch::{Batch, Column, Field, Values};
use crate::engine::Engine;
use crate::engine::objects::ColumnSpec;
use crate::ingest::Ingest;
use crate::pipeline::Pipelines;
use crate::table::{Table, TableSchema, TableWrite};
use crate::util::time::{format_timestamp, now_micros};

/// What a statement produced.
#[derive(Debug)]
pub enum Outcome {
    Rows {
        schema: Vec<OutCol>,
        batches: Vec<Batch>,
    },
    /// A command tag (`CREATE CHANNEL`, `INSERT 0 5`, …).
    Done(String),
    /// `COPY … FROM STDIN`: the client sends data next; pass it to [`Session::copy_in`].
    CopyIn(CopyIn),
    /// `COPY … TO STDOUT`: the formatted rows, one line each (a header line first with HEADER).
    CopyOut {
        columns: usize,
        lines: Vec<String>,
    },
}

/// A COPY FROM STDIN waiting for its data.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub target: String,
    /// Target columns (empty: all columns, in order).
    pub columns: Vec<String>,
    pub format: CopyFormat,
    /// Number of columns each row carries.
    pub width: usize,
    /// The target is a channel: each line is one message's payload (NDJSON), taken as is.
    pub into_channel: bool,
}

pub struct Session {
    engine: Arc<Engine>,
    settings: BTreeMap<String, String>,
    in_transaction: bool,
    /// Cancellation flag and working memory of this session's queries.
    pub limits: super::guard::QueryLimits,
    /// Where COPY and INSERT into channels go; made on first use when not given.
    pub ingest: Option<Arc<Ingest>>,
}

fn parse_retention(opts: &Options) -> SqlResult<Option<u32>> {
    for (k, v) in opts {
        if k == "retention" || k == "retention_period" {
            let v = v.trim().to_ascii_lowercase();
            if v == "unlimited" {
                return Ok(None);
            }
            let n: u32 = v.trim_end_matches("days").trim_end_matches("day").trim().parse().map_err(|_| {
                SqlError::new("22023", format!("invalid retention \"{v}\": use 'N days' or 'unlimited'"))
            })?;
            if n == 0 {
                return Err(SqlError::new("22023", "retention must be at least 1 day"));
            }
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn check_options(opts: &Options, allowed: &[&str], what: &str) -> SqlResult<()> {
    for (k, _) in opts {
        if !allowed.contains(&k.as_str()) {
            return Err(SqlError::new(
                "22023",
                format!("unknown {what} option \"{k}\" (allowed: {})", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn text_batch(names: &[&str], rows: Vec<Vec<Option<String>>>) -> (Vec<OutCol>, Vec<Batch>) {
    let schema: Vec<OutCol> = names.iter().map(|n| OutCol { name: n.to_string(), ty: SqlType::Text }).collect();
    let mut columns = Vec::new();
    for c in 0..names.len() {
        let vals: Vec<Scalar> = rows.iter().map(|r| r[c].clone().map(Scalar::Text).unwrap_or(Scalar::Null)).collect();
        columns.push(scalars_to_column(&vals, SqlType::Text).expect("text column"));
    }
    let fields = names.iter().map(|n| Field::new(n, crate::batch::DataType::Text)).collect();
    (schema, vec![Batch { fields, columns }])
}

/// The outcome of a CREATE: `tag`, or 42P07 when the object exists (unless IF NOT EXISTS).
fn created(r: crate::Result<()>, if_not_exists: bool, kind: &str, name: &str, tag: &str) -> SqlResult<Outcome> {
    match r {
        Err(crate::Error::AlreadyExists(_)) if if_not_exists => {}
        Err(crate::Error::AlreadyExists(_)) => {
            return Err(SqlError::new("42P07", format!("{kind} \"{name}\" already exists")));
        }
        r => r?,
    }
    Ok(Outcome::Done(tag.into()))
}

/// A new session's settings (SET/SHOW, and `pg_settings`).
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("server_version", super::plan::SERVER_VERSION),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("timezone", "UTC"),
    ("standard_conforming_strings", "on"),
    ("search_path", "public"),
    ("transaction_isolation", "read committed"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("extra_float_digits", "1"),
    ("application_name", ""),
    ("statement_timeout", "0"),
    ("idle_session_timeout", "0"),
];

/// A duration setting in PostgreSQL's form: a number of milliseconds, or a number and one of
/// `us`, `ms`, `s`, `min`, `h`, `d`.
pub fn parse_duration_setting(v: &str) -> Option<std::time::Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        "min" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        "d" => n * 86_400_000.0,
        _ => return None,
    };
    Some(std::time::Duration::from_micros((ms * 1000.0).min(u64::MAX as f64 / 2.0) as u64))
}

impl Session {
    pub fn new(engine: Arc<Engine>) -> Session {
        let settings = DEFAULT_SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // Every session of an engine draws on the engine's one memory pool.
        let pool = engine.service(|_| Ok(super::guard::MemoryPool::unlimited())).ok();
        let limits = super::guard::QueryLimits { pool, ..Default::default() };
        Session { engine, settings, in_transaction: false, limits, ingest: None }
    }

    fn ingest(&mut self) -> SqlResult<Arc<Ingest>> {
        if self.ingest.is_none() {
            self.ingest = Some(Arc::new(Ingest::new(self.engine.clone(), Default::default())?));
        }
        Ok(self.ingest.clone().expect("set above"))
    }

    /// Stores messages in `channel` through the ingest checks: refused ones go to
    /// `fleetdb.rejected_messages`. Returns how many were stored.
    fn put_messages(&mut self, channel: &str, msgs: &[crate::ingest::Incoming<'_>]) -> SqlResult<usize> {
        let r = self.ingest()?.put(crate::ingest::Source::Sql, channel, msgs)?;
        Ok(r.accepted)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Parses and runs every statement of `sql`; stops at the first error.
    /// Runs the statements of `sql`, stopping at the first error; the rows of the last, as
    /// text (`None` for NULL), as a client would print them.
    pub fn text_rows(&mut self, sql: &str) -> SqlResult<Vec<Vec<Option<String>>>> {
        let mut rows = Vec::new();
        for r in self.execute(sql) {
            rows.clear();
            if let Outcome::Rows { schema, batches } = r? {
                for b in &batches {
                    rows.extend(super::expr::rows_as_text(&schema, b));
                }
            }
        }
        Ok(rows)
    }

    /// A setting's value (SET/SHOW).
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.settings.insert(name.to_string(), value.to_string());
    }

    pub fn execute(&mut self, sql: &str) -> Vec<SqlResult<Outcome>> {
        let _stack = super::guard::stack_base();
        let stmts = match parse(sql) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        let mut out = Vec::with_capacity(stmts.len());
        for s in &stmts {
            let r = self.run(s, &[]);
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    /// The types a statement's parameters take from their use, as PostgreSQL infers them for
    /// Describe: `col = $1` gives col's type, `$1::int8` int8, `INSERT INTO t VALUES ($1, …)`
    /// the target columns' types. `$n` absent from the map are left to the client (text).
    pub fn param_types(&self, stmt: &Statement) -> std::collections::BTreeMap<usize, SqlType> {
        let _stack = super::guard::stack_base();
        let Statement::Sql(s) = stmt else { return Default::default() };
        let b = self.binder(&[]);
        match s.as_ref() {
            ast::Statement::Query(q) => {
                let _ = b.bind_query(q);
            }
            ast::Statement::Insert(ins) => {
                let name = ins.table.to_string().to_ascii_lowercase();
                let cols: Vec<String> = ins.columns.iter().map(|c| c.to_string().to_ascii_lowercase()).collect();
                let target_types: Vec<SqlType> = if let Ok(t) = self.engine.table(&name) {
                    let all: Vec<(String, SqlType)> = t
                        .schema()
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), type_of_oid(c.type_tag, c.data_type)))
                        .collect();
                    if cols.is_empty() {
                        all.iter().map(|c| c.1).collect()
                    } else {
                        cols.iter().map(|c| all.iter().find(|a| &a.0 == c).map_or(SqlType::Unknown, |a| a.1)).collect()
                    }
                } else if let Ok(d) = self.engine.datastore(&name) {
                    let schema = d.schema();
                    cols.iter()
                        .map(|c| match c.as_str() {
                            "time" => SqlType::TimestampTz,
                            _ => schema
                                .iter()
                                .find(|f| &f.name == c)
                                .map_or(SqlType::Unknown, |f| SqlType::of_storage(f.data_type)),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                if let Some(src) = &ins.source {
                    if let ast::SetExpr::Values(v) = src.body.as_ref() {
                        for row in &v.rows {
                            for (e, ty) in row.iter().zip(&target_types) {
                                b.note_param(e, *ty);
                            }
                        }
                    }
                    let _ = b.bind_query(src);
                }
            }
            ast::Statement::Update(ast::Update { table, assignments, selection, .. }) => {
                if let ast::TableFactor::Table { name, .. } = &table.relation
                    && let Ok(t) = self.engine.table(&name.to_string().to_ascii_lowercase())
                {
                    for a in assignments {
                        if let ast::AssignmentTarget::ColumnName(c) = &a.target {
                            let c = c.to_string().to_ascii_lowercase();
                            if let Some(spec) = t.schema().columns.iter().find(|x| x.name == c) {
                                b.note_param(&a.value, type_of_oid(spec.type_tag, spec.data_type));
                            }
                        }
                    }
                    if let Some(w) = selection {
                        self.note_where_params(&b, &name.to_string(), w);
                    }
                }
            }
            ast::Statement::Delete(d) => {
                let from = match &d.from {
                    ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
                };
                if let (Some(t), Some(w)) = (from.first(), &d.selection) {
                    self.note_where_params(&b, &t.relation.to_string(), w);
                }
            }
            _ => {}
        }
        b.param_types()
    }

    /// Binds `SELECT <where> FROM <table>` only to learn the parameter types in `w`.
    fn note_where_params(&self, b: &Binder<'_>, table: &str, w: &ast::Expr) {
        if let Ok(stmts) = parse(&format!("SELECT {w} FROM {table}"))
            && let Some(Statement::Sql(s)) = stmts.first()
            && let ast::Statement::Query(q) = s.as_ref()
        {
            let _ = b.bind_query(q);
        }
    }

    /// The result columns a statement would return, without running it (Describe).
    pub fn describe(&self, stmt: &Statement) -> SqlResult<Option<Vec<OutCol>>> {
        self.describe_with(stmt, &[])
    }

    /// The columns `stmt` returns when its parameters have the types of `params` (their
    /// values absent), as execution will bind it: a client that sends `$1` as int8 reads
    /// `coalesce($1, 7)` as int8, and the rows must be encoded as what was described.
    pub fn describe_with(&self, stmt: &Statement, params: &[Param]) -> SqlResult<Option<Vec<OutCol>>> {
        let _stack = super::guard::stack_base();
        match stmt {
            Statement::Sql(s) => match s.as_ref() {
                ast::Statement::Query(q) => {
                    let b = Binder::new(&self.engine, EvalCtx { now: now_micros() }, params);
                    match b.bind_query(q) {
                        Ok((_, schema)) => Ok(Some(client_schema(schema))),
                        // A parameter's absent value may not bind everywhere (LIMIT $1):
                        // then the types alone decide, as before.
                        Err(_) if !params.is_empty() => {
                            let b = Binder::new(&self.engine, EvalCtx { now: now_micros() }, &[]);
                            Ok(Some(client_schema(b.bind_query(q)?.1)))
                        }
                        Err(e) => Err(e),
                    }
                }
                ast::Statement::Explain { .. } => {
                    Ok(Some(vec![OutCol { name: "QUERY PLAN".into(), ty: SqlType::Text }]))
                }
                ast::Statement::ShowVariable { variable } => Ok(Some(vec![OutCol {
                    name: variable.iter().map(|i| i.value.to_ascii_lowercase()).collect::<Vec<_>>().join("."),
                    ty: SqlType::Text,
                }])),
                _ => Ok(None),
            },
            Statement::Show(_)
            | Statement::Describe { .. }
            | Statement::TestPipeline { .. }
            | Statement::ShowReprocessing
            | Statement::ShowDatasetContents(_) => {
                // Run it: these are cheap and read-only.
                let mut probe = Session {
                    engine: self.engine.clone(),
                    settings: self.settings.clone(),
                    in_transaction: false,
                    limits: self.limits.clone(),
                    ingest: self.ingest.clone(),
                };
                match probe.run(stmt, &[])? {
                    Outcome::Rows { schema, .. } => Ok(Some(schema)),
                    _ => Ok(None),
                }
            }
            Statement::ReprocessPipeline { .. } => {
                Ok(Some(vec![OutCol { name: "reprocessing_id".into(), ty: SqlType::Text }]))
            }
            Statement::RefreshDataset(_) => Ok(Some(
                ["version_id", "status", "rows", "reason"]
                    .iter()
                    .map(|n| OutCol { name: n.to_string(), ty: SqlType::Text })
                    .collect(),
            )),
            _ => Ok(None),
        }
    }

    /// Runs one statement with text parameter values, under the session's query limits.
    pub fn run(&mut self, stmt: &Statement, params: &[Param]) -> SqlResult<Outcome> {
        let _stack = super::guard::stack_base();
        let mut limits = self.limits.clone();
        limits.deadline = self
            .setting("statement_timeout")
            .and_then(parse_duration_setting)
            .filter(|d| !d.is_zero())
            .map(|d| std::time::Instant::now() + d);
        super::guard::run_guarded(&limits, || self.run_statement(stmt, params))
    }

    fn run_statement(&mut self, stmt: &Statement, params: &[Param]) -> SqlResult<Outcome> {
        let e = &self.engine;
        match stmt {
            Statement::CreateChannel { name, if_not_exists, options } => {
                check_options(options, &["retention", "retention_period"], "channel")?;
                let retention = parse_retention(options)?;
                created(e.create_channel(name, retention).map(drop), *if_not_exists, "channel", name, "CREATE CHANNEL")
            }
            Statement::CreateDatastore { name, if_not_exists, columns, options } => {
                check_options(options, &["retention", "retention_period", "series_key"], "datastore")?;
                let retention = parse_retention(options)?;
                let key = options.iter().find(|(k, _)| k == "series_key").map(|(_, v)| v.as_str());
                if self.engine.table(name).is_ok() || self.engine.channel(name).is_ok() {
                    return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
                }
                let mut declared = Vec::with_capacity(columns.len());
                for (c, ty) in columns {
                    if c == "__dt" || (c == "time" && !ty.is_timestamp()) {
                        return Err(SqlError::new(
                            "42P16",
                            format!("column \"{c}\" is fleetdb's own (time is timestamptz; __dt is derived)"),
                        ));
                    }
                    let data_type =
                        ty.physical().ok_or_else(|| SqlError::unsupported(format!("type {}", ty.pg_name())))?;
                    declared.push(crate::engine::ColumnSpec {
                        name: c.clone(),
                        data_type,
                        type_tag: ty.oid(),
                        not_null: false,
                        default: None,
                    });
                }
                created(
                    e.create_datastore_with(name, retention, key, declared).map(drop),
                    *if_not_exists,
                    "datastore",
                    name,
                    "CREATE DATASTORE",
                )
            }
            Statement::CreateRoute { name, if_not_exists, filter, channel, options } => {
                check_options(options, &["qos", "batch_mode", "shared_group"], "route")?;
                let opt = |k: &str| options.iter().find(|(x, _)| x == k).map(|(_, v)| v.to_ascii_lowercase());
                let qos = match opt("qos").as_deref() {
                    None | Some("1") => 1,
                    Some("0") => 0,
                    Some(q) => return Err(SqlError::new("22023", format!("qos must be 0 or 1, not {q}"))),
                };
                let batch_mode = match opt("batch_mode").as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(b) => {
                        return Err(SqlError::new("22023", format!("batch_mode must be true or false, not {b}")));
                    }
                };
                let shared_group = options.iter().find(|(x, _)| x == "shared_group").map(|(_, v)| v.clone());
                let route = crate::ingest::Route {
                    name: name.clone(),
                    filter: filter.clone(),
                    channel: channel.clone(),
                    qos,
                    batch_mode,
                    shared_group,
                };
                match self.ingest()?.create_route(route) {
                    Err(crate::Error::AlreadyExists(_)) if *if_not_exists => {}
                    Err(crate::Error::AlreadyExists(_)) => {
                        return Err(SqlError::new("42710", format!("route \"{name}\" already exists")));
                    }
                    Err(crate::Error::NotFound(_)) => {
                        return Err(SqlError::new("42704", format!("channel \"{channel}\" does not exist")));
                    }
                    r => r?,
                }
                Ok(Outcome::Done("CREATE ROUTE".into()))
            }
            Statement::Show(ObjectKind::Route) => {
                let rows = self
                    .ingest()?
                    .routes()
                    .into_iter()
                    .map(|r| {
                        vec![
                            Some(r.name),
                            Some(r.filter),
                            Some(r.channel),
                            Some(r.qos.to_string()),
                            Some(r.batch_mode.to_string()),
                            r.shared_group,
                        ]
                    })
                    .collect();
                let (schema, batches) =
                    text_batch(&["name", "filter", "channel", "qos", "batch_mode", "shared_group"], rows);
                Ok(Outcome::Rows { schema, batches })
            }
            Statement::Drop { kind: ObjectKind::Route, names, if_exists } => {
                let ingest = self.ingest()?;
                for n in names {
                    match ingest.drop_route(n) {
                        Err(crate::Error::NotFound(_)) if *if_exists => {}
                        Err(crate::Error::NotFound(_)) => {
                            return Err(SqlError::new("42704", format!("route \"{n}\" does not exist")));
                        }
                        r => r?,
                    }
                }
                Ok(Outcome::Done("DROP ROUTE".into()))
            }
            Statement::Drop { kind, names, if_exists } => {
                for n in names {
                    let r = match kind {
                        ObjectKind::Channel => e.drop_channel(n),
                        ObjectKind::Datastore => e.drop_datastore(n),
                        ObjectKind::Pipeline => self.pipelines()?.drop_pipeline(n),
                        ObjectKind::Dataset => self.datasets()?.drop_dataset(n),
                        _ => return Err(SqlError::unsupported(format!("DROP {}", kind.name()))),
                    };
                    match r {
                        Err(crate::Error::NotFound(_)) if *if_exists => {}
                        Err(crate::Error::NotFound(_)) => {
                            return Err(SqlError::new("42704", format!("{} \"{n}\" does not exist", kind.name())));
                        }
                        r => r?,
                    }
                }
                Ok(Outcome::Done(format!("DROP {}", kind.name().to_ascii_uppercase())))
            }
            Statement::Show(kind) => self.show(*kind),
            Statement::Describe { kind, name } => self.describe_object(*kind, name),
            Statement::AlterSet { kind, name, options } => {
                check_options(options, &["retention", "retention_period"], kind.name())?;
                if options.is_empty() {
                    return Err(SqlError::syntax("ALTER … SET needs at least one option"));
                }
                let days = parse_retention(options)?;
                self.engine.set_retention(*kind == ObjectKind::Datastore, name, days).map_err(|e| match e {
                    crate::Error::NotFound(_) => {
                        SqlError::new("42704", format!("{} \"{name}\" does not exist", kind.name()))
                    }
                    other => other.into(),
                })?;
                Ok(Outcome::Done(format!("ALTER {}", kind.name().to_ascii_uppercase())))
            }
            Statement::Sample { name, limit, from, to } => self.sample_channel(name, *limit, from, to),
            Statement::CreatePipeline { spec, if_not_exists } => {
                match self.pipelines()?.create(spec.clone(), *if_not_exists) {
                    Err(crate::Error::AlreadyExists(what)) => {
                        Err(SqlError::new("42710", format!("{what} already exists")))
                    }
                    r => pipeline_result(r.map(drop), "CREATE PIPELINE"),
                }
            }
            Statement::AlterPipeline(spec) => pipeline_result(self.pipelines()?.alter(spec.clone()), "ALTER PIPELINE"),
            Statement::TestPipeline { name, messages } => self.test_pipeline(name, messages),
            Statement::ReprocessPipeline { name, from, to } => {
                let at = |s: &Option<String>| -> SqlResult<Option<i64>> {
                    s.as_deref()
                        .map(|t| {
                            crate::sql::scalar::parse_timestamp(t).ok_or_else(|| {
                                SqlError::new("22007", format!("invalid input syntax for type timestamp: \"{t}\""))
                            })
                        })
                        .transpose()
                };
                let (from, to) = (at(from)?, at(to)?);
                let id = match self.pipelines()?.reprocess(name, from, to) {
                    Ok(id) => id,
                    Err(crate::Error::NotFound(what)) => {
                        return Err(SqlError::new("42704", format!("{what} does not exist")));
                    }
                    Err(e) => return Err(e.into()),
                };
                let (schema, batches) = text_batch(&["reprocessing_id"], vec![vec![Some(id.to_string())]]);
                Ok(Outcome::Rows { schema, batches })
            }
            Statement::ShowReprocessing => self.show_reprocessing(),
            Statement::CreateDataset { name, if_not_exists, query, options } => {
                self.check_dataset_query(query)?;
                match self.datasets()?.create(name, query, options, *if_not_exists) {
                    Err(crate::Error::AlreadyExists(what)) => {
                        Err(SqlError::new("42P07", format!("{what} already exists")))
                    }
                    Err(crate::Error::Invalid(why)) => Err(SqlError::new("22023", why)),
                    r => r.map(|_| Outcome::Done("CREATE DATASET".into())).map_err(Into::into),
                }
            }
            Statement::AlterDataset { name, query, options } => {
                if let Some(q) = query {
                    self.check_dataset_query(q)?;
                }
                match self.datasets()?.alter(name, query.as_deref(), options) {
                    Err(crate::Error::Invalid(why)) => Err(SqlError::new("22023", why)),
                    r => r.map(|()| Outcome::Done("ALTER DATASET".into())).map_err(not_found),
                }
            }
            Statement::Checkpoint => {
                self.engine.checkpoint().map_err(SqlError::from)?;
                Ok(Outcome::Done("CHECKPOINT".into()))
            }
            Statement::RefreshDataset(name) => {
                let v = self.datasets()?.refresh(name).map_err(not_found)?;
                let (schema, batches) = text_batch(
                    &["version_id", "status", "rows", "reason"],
                    vec![vec![
                        Some(v.id.to_string()),
                        Some(v.state.name().into()),
                        Some(v.rows.to_string()),
                        (!v.reason.is_empty()).then(|| v.reason.clone()),
                    ]],
                );
                Ok(Outcome::Rows { schema, batches })
            }
            Statement::ShowDatasetContents(name) => {
                let rows = self
                    .datasets()?
                    .versions(name)
                    .map_err(not_found)?
                    .iter()
                    .rev()
                    .map(|v| {
                        vec![
                            Some(v.id.to_string()),
                            Some(v.state.name().into()),
                            Some(format_timestamp(v.schedule_time)),
                            Some(format_timestamp(v.created)),
                            v.completed.map(format_timestamp),
                            Some(v.rows.to_string()),
                            (!v.reason.is_empty()).then(|| v.reason.clone()),
                            v.window.filter(|w| w.0 != i64::MIN).map(|w| format_timestamp(w.0)),
                            v.window.map(|w| format_timestamp(w.1)),
                            Some(v.late_rows.to_string()),
                            Some(v.refresh.name().into()),
                        ]
                    })
                    .collect();
                let (schema, batches) = text_batch(
                    &[
                        "version_id",
                        "status",
                        "schedule_time",
                        "created",
                        "completed",
                        "rows",
                        "reason",
                        "window_start",
                        "window_end",
                        "late_rows",
                        "refresh",
                    ],
                    rows,
                );
                Ok(Outcome::Rows { schema, batches })
            }
            Statement::CancelReprocessing(id) => {
                pipeline_result(self.pipelines()?.cancel_reprocessing(*id), "CANCEL REPROCESSING")
            }
            Statement::NotYet(what) => Err(SqlError::unsupported(what.clone())),
            Statement::Sql(s) => {
                // A write computed from a table's content fails with 40001 if another session
                // changed the table first; nothing was written, so the statement runs again on
                // the new content (as PostgreSQL re-checks rows at READ COMMITTED).
                let mut tries = 0;
                loop {
                    match self.run_sql(s, params) {
                        Err(e) if e.sqlstate == "40001" && tries < 16 => tries += 1,
                        r => return r,
                    }
                }
            }
        }
    }

    /// The engine's pipeline runner, started on first use.
    /// Plans a SQL dataset's query before the dataset is defined, so a bad query keeps its
    /// SQLSTATE (program datasets have no query). Columns that do not exist yet are allowed:
    /// a datastore's columns come with its first rows, often after the dataset is defined.
    fn check_dataset_query(&self, query: &str) -> SqlResult<()> {
        if crate::sql::parse::program_body(query).is_none() {
            let q = crate::sql::parse::parse_query(query)?;
            match Binder::new(&self.engine, EvalCtx { now: now_micros() }, &[]).bind_query(&q) {
                Err(e) if e.sqlstate != crate::dataset::COLUMN_NOT_YET => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn datasets(&self) -> SqlResult<Arc<crate::dataset::Datasets>> {
        let d = self.engine.service(crate::dataset::Datasets::new)?;
        d.start();
        Ok(d)
    }

    fn pipelines(&self) -> SqlResult<Arc<Pipelines>> {
        let p = self.engine.service(Pipelines::new)?;
        p.start();
        Ok(p)
    }

    /// TEST PIPELINE: each activity's output for up to 10 messages, nothing stored.
    fn test_pipeline(&self, name: &str, messages: &str) -> SqlResult<Outcome> {
        let def = self
            .pipelines()?
            .definition(name)
            .ok_or_else(|| SqlError::new("42704", format!("pipeline \"{name}\" does not exist")))?;
        let doc = crate::util::json::parse(messages)
            .map_err(|e| SqlError::new("22P02", format!("TEST PIPELINE takes a JSON array of messages: {e}")))?;
        let crate::util::json::Json::Array(items) = &doc.value else {
            return Err(SqlError::new("22023", "TEST PIPELINE takes a JSON array of messages"));
        };
        if items.is_empty() || items.len() > 10 {
            return Err(SqlError::new("22023", format!("TEST PIPELINE takes 1 to 10 messages, not {}", items.len())));
        }
        let mut msgs = crate::channel::Messages::default();
        for (i, m) in items.iter().enumerate() {
            msgs.push(now_micros(), &i.to_string(), "", m.text.as_bytes());
        }
        let (steps, failures) = Pipelines::trace(&self.engine, &def, &msgs);
        let mut rows = Vec::new();
        for (k, b) in steps.iter().enumerate() {
            let label = if k == 0 { "input".to_string() } else { def.activities[k - 1].to_string() };
            for i in 0..b.num_rows() {
                rows.push(vec![
                    Some(k.to_string()),
                    Some(label.clone()),
                    Some(crate::pipeline::decode::row_json(b, i)),
                    None,
                ]);
            }
        }
        for f in failures {
            let message = String::from_utf8_lossy(msgs.payloads.get(f.message)).to_string();
            rows.push(vec![None, Some(f.activity), Some(message), Some(f.reason)]);
        }
        let (schema, batches) = text_batch(&["step", "activity", "message", "error"], rows);
        Ok(Outcome::Rows { schema, batches })
    }

    /// SHOW REPROCESSING: every reprocessing since the server started, with its progress.
    fn show_reprocessing(&self) -> SqlResult<Outcome> {
        let rows = self
            .pipelines()?
            .reprocessings()
            .iter()
            .map(|j| {
                let p = j.progress();
                let pct = if p.messages_total == 0 {
                    if p.state == crate::pipeline::reprocess::JobState::Running { 0.0 } else { 100.0 }
                } else {
                    100.0 * p.messages_done as f64 / p.messages_total as f64
                };
                vec![
                    Some(j.id.to_string()),
                    Some(j.pipeline.clone()),
                    Some(p.state.name().to_string()),
                    Some(format!("{pct:.1}")),
                    Some(p.messages_done.to_string()),
                    Some(p.messages_total.to_string()),
                    Some(p.rows_deleted.to_string()),
                    Some(p.rows_written.to_string()),
                    j.from.map(format_timestamp),
                    j.to.map(format_timestamp),
                    Some(format_timestamp(j.started)),
                    p.ended.map(format_timestamp),
                    p.reason.clone(),
                ]
            })
            .collect();
        let (schema, batches) = text_batch(
            &[
                "id",
                "pipeline",
                "status",
                "progress_pct",
                "messages_done",
                "messages_total",
                "rows_deleted",
                "rows_written",
                "from",
                "to",
                "started",
                "ended",
                "reason",
            ],
            rows,
        );
        Ok(Outcome::Rows { schema, batches })
    }

    fn show(&self, kind: ObjectKind) -> SqlResult<Outcome> {
        let e = &self.engine;
        if kind == ObjectKind::Dataset {
            let rows = self
                .datasets()?
                .statuses()
                .into_iter()
                .map(|s| {
                    let last = s.last.as_ref();
                    vec![
                        Some(s.def.name.clone()),
                        s.def.schedule.as_ref().map(|(t, _)| t.clone()),
                        Some(s.def.versions.map_or("unlimited".into(), |n| n.to_string())),
                        s.next_run.map(format_timestamp),
                        last.map(|v| v.id.to_string()),
                        last.map(|v| v.state.name().to_string()),
                        last.and_then(|v| v.completed.map(|c| format!("{:.3}", (c - v.created) as f64 / 1000.0))),
                        last.and_then(|v| (!v.reason.is_empty()).then(|| v.reason.clone())),
                    ]
                })
                .collect();
            let (schema, batches) = text_batch(
                &[
                    "name",
                    "schedule",
                    "versions",
                    "next_run",
                    "last_version",
                    "last_status",
                    "last_duration_ms",
                    "last_reason",
                ],
                rows,
            );
            return Ok(Outcome::Rows { schema, batches });
        }
        if kind == ObjectKind::Pipeline {
            let rows = self
                .pipelines()?
                .statuses()
                .into_iter()
                .map(|s| {
                    let c = &s.counters;
                    vec![
                        Some(s.def.name.clone()),
                        Some(s.def.channel.clone()),
                        Some(s.def.datastore.clone()),
                        Some(s.def.activities_text()),
                        Some(c.messages_in.to_string()),
                        Some(c.rows_out.to_string()),
                        Some(c.filtered.to_string()),
                        Some(c.errors.to_string()),
                        Some(s.lag_messages.to_string()),
                        Some(format!("{:.3}", s.lag_seconds)),
                        Some(match (&c.paused, &c.stalled) {
                            (Some(why), _) => format!("paused: {why}"),
                            (None, Some(e)) => format!("stalled: {e}"),
                            (None, None) => "running".into(),
                        }),
                    ]
                })
                .collect();
            let names = [
                "name",
                "channel",
                "datastore",
                "activities",
                "messages_in",
                "rows_out",
                "filtered",
                "errors",
                "lag_messages",
                "lag_seconds",
                "status",
            ];
            let (schema, batches) = text_batch(&names, rows);
            return Ok(Outcome::Rows { schema, batches });
        }
        let retention = |d: Option<u32>| Some(d.map_or("unlimited".to_string(), |d| format!("{d} days")));
        let (schema, batches) = match kind {
            ObjectKind::Channel => {
                let mut rows = Vec::new();
                for n in e.channel_names() {
                    let c = e.channel(&n)?;
                    let st = c.stats();
                    rows.push(vec![
                        Some(n),
                        retention(c.retention_days()),
                        Some(st.messages.to_string()),
                        Some(st.payload_bytes.to_string()),
                        st.last_received.map(format_timestamp),
                    ]);
                }
                text_batch(&["name", "retention", "messages", "bytes", "last_arrival"], rows)
            }
            ObjectKind::Datastore => {
                let mut rows = Vec::new();
                for n in e.datastore_names() {
                    let d = e.datastore(&n)?;
                    let snap = d.snapshot();
                    rows.push(vec![
                        Some(n),
                        retention(d.retention_days()),
                        Some(snap.num_rows().to_string()),
                        Some(d.disk_bytes().to_string()),
                        Some(d.partitions().len().to_string()),
                    ]);
                }
                text_batch(&["name", "retention", "rows", "disk_bytes", "partitions"], rows)
            }
            ObjectKind::Table => {
                let rows = e
                    .table_names()
                    .into_iter()
                    .map(|n| {
                        let rows = e.table(&n).map(|t| t.rows().num_rows()).unwrap_or(0);
                        vec![Some(n), Some(rows.to_string())]
                    })
                    .collect();
                text_batch(&["name", "rows"], rows)
            }
            other => return Err(SqlError::unsupported(format!("SHOW {}S", other.name().to_ascii_uppercase()))),
        };
        Ok(Outcome::Rows { schema, batches })
    }

    fn describe_object(&self, kind: Option<ObjectKind>, name: &str) -> SqlResult<Outcome> {
        let e = &self.engine;
        let want = |k: ObjectKind| kind.is_none_or(|x| x == k);
        if want(ObjectKind::Dataset)
            && let Some(s) = self.datasets()?.statuses().into_iter().find(|s| s.def.name == name)
        {
            let rows = vec![
                vec![Some("kind".into()), Some("dataset".into())],
                vec![Some("definition".into()), Some(s.def.to_sql())],
            ];
            let (schema, batches) = text_batch(&["property", "value"], rows);
            return Ok(Outcome::Rows { schema, batches });
        }
        let (schema, batches) = if want(ObjectKind::Channel) && e.channel(name).is_ok() {
            let c = e.channel(name)?;
            let st = c.stats();
            let rows = vec![
                vec![Some("kind".into()), Some("channel".into())],
                vec![
                    Some("retention".into()),
                    Some(c.retention_days().map_or("unlimited".into(), |d| format!("{d} days"))),
                ],
                vec![Some("messages".into()), Some(st.messages.to_string())],
                vec![Some("bytes".into()), Some(st.payload_bytes.to_string())],
                vec![Some("disk_bytes".into()), Some(st.disk_bytes.to_string())],
                vec![Some("first_arrival".into()), st.first_received.map(format_timestamp)],
                vec![Some("last_arrival".into()), st.last_received.map(format_timestamp)],
                vec![Some("next_offset".into()), Some(st.next_offset.to_string())],
            ];
            text_batch(&["property", "value"], rows)
        } else if want(ObjectKind::Datastore) && e.datastore(name).is_ok() {
            let d = e.datastore(name)?;
            let mut rows: Vec<Vec<Option<String>>> = d
                .schema()
                .iter()
                .filter(|f| !crate::pipeline::is_lineage(&f.name))
                .map(|f| vec![Some(f.name.clone()), Some(SqlType::of_storage(f.data_type).pg_name().to_string())])
                .collect();
            rows.push(vec![Some("__dt".into()), Some("date".into())]);
            text_batch(&["column", "type"], rows)
        } else if want(ObjectKind::Table) && e.table(name).is_ok() {
            let t = e.table(name)?.schema();
            let rows = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    vec![
                        Some(c.name.clone()),
                        Some(type_of_oid(c.type_tag, c.data_type).pg_name().to_string()),
                        Some(if c.not_null { "not null".into() } else { String::new() }),
                        Some(if t.key.contains(&i) { "primary key".into() } else { String::new() }),
                        c.default.clone(),
                    ]
                })
                .collect();
            text_batch(&["column", "type", "nullable", "key", "default"], rows)
        } else if want(ObjectKind::Pipeline)
            && let Some(def) = self.pipelines()?.definition(name)
        {
            let rows = vec![
                vec![Some("kind".into()), Some("pipeline".into())],
                vec![Some("channel".into()), Some(def.channel.clone())],
                vec![Some("datastore".into()), Some(def.datastore.clone())],
                vec![Some("activities".into()), Some(def.activities_text())],
                vec![Some("timestamp".into()), def.timestamp.clone()],
                vec![Some("timestamp_format".into()), Some(def.timestamp_format.name().into())],
                vec![Some("definition".into()), Some(def.to_sql())],
            ];
            text_batch(&["property", "value"], rows)
        } else {
            return Err(SqlError::undefined_relation(name));
        };
        Ok(Outcome::Rows { schema, batches })
    }

    fn binder<'a>(&'a self, params: &'a [Param]) -> Binder<'a> {
        Binder::new(&self.engine, EvalCtx { now: now_micros() }, params)
    }

    fn run_sql(&mut self, s: &ast::Statement, params: &[Param]) -> SqlResult<Outcome> {
        use ast::Statement as S;
        match s {
            S::Query(q) => {
                let b = self.binder(params);
                let (plan, schema) = b.bind_query(q)?;
                let batches = run(&plan)?;
                Ok(Outcome::Rows { schema: client_schema(schema), batches })
            }
            S::Explain { statement, analyze, .. } => {
                let S::Query(q) = statement.as_ref() else {
                    return Err(SqlError::unsupported("EXPLAIN of this statement"));
                };
                let b = self.binder(params);
                let (plan, _) = b.bind_query(q)?;
                let mut lines = Vec::new();
                if *analyze {
                    let t = std::time::Instant::now();
                    let (batches, profile) = super::exec::run_profiled(&plan)?;
                    let rows: usize = batches.iter().map(|x| x.num_rows()).sum();
                    plan.explain(0, Some(&profile), &mut lines);
                    lines.push(format!("Execution Time: {:.3} ms ({rows} rows)", t.elapsed().as_secs_f64() * 1e3));
                } else {
                    plan.explain(0, None, &mut lines);
                }
                let (schema, batches) = text_batch(&["QUERY PLAN"], lines.into_iter().map(|l| vec![Some(l)]).collect());
                Ok(Outcome::Rows { schema, batches })
            }
            S::CreateTable(ct) => self.create_table(ct),
            S::AlterTable(at) => self.alter_table(at),
            S::Drop { object_type: ast::ObjectType::Table, if_exists, names, .. } => {
                for n in names {
                    let name = n.to_string().to_ascii_lowercase();
                    match self.engine.drop_table(&name) {
                        Err(crate::Error::NotFound(_)) if *if_exists => {}
                        Err(crate::Error::NotFound(_)) => {
                            return Err(SqlError::new("42P01", format!("table \"{name}\" does not exist")));
                        }
                        r => r?,
                    }
                }
                Ok(Outcome::Done("DROP TABLE".into()))
            }
            S::Insert(ins) => self.insert(ins, params),
            S::Copy { source, to, target, options, legacy_options, .. } => {
                self.copy(source, *to, target, options, legacy_options, params)
            }
            S::Update(u) => self.update(u, params),
            S::Delete(d) => self.delete(d, params),
            S::StartTransaction { .. } => {
                self.in_transaction = true;
                Ok(Outcome::Done("BEGIN".into()))
            }
            S::Commit { .. } => {
                self.in_transaction = false;
                Ok(Outcome::Done("COMMIT".into()))
            }
            S::Rollback { .. } => {
                self.in_transaction = false;
                Ok(Outcome::Done("ROLLBACK".into()))
            }
            S::Set(set) => {
                let text = set.to_string();
                let body = text.trim_start_matches(|c: char| c.is_alphabetic()).trim();
                let body = body.strip_prefix("SESSION ").or_else(|| body.strip_prefix("LOCAL ")).unwrap_or(body);
                if let Some((k, v)) = body
                    .split_once([' ', '='])
                    .map(|(k, v)| (k.trim(), v.trim().trim_start_matches("TO ").trim_start_matches('=').trim()))
                {
                    let v = v.trim_matches('\'').to_string();
                    self.settings.insert(k.to_ascii_lowercase(), v);
                }
                Ok(Outcome::Done("SET".into()))
            }
            S::ShowVariable { variable } => {
                let name = variable.iter().map(|i| i.value.to_ascii_lowercase()).collect::<Vec<_>>().join(" ");
                let name = if name == "time zone" { "timezone".to_string() } else { name };
                let value = if name == "all" {
                    return Err(SqlError::unsupported("SHOW ALL"));
                } else {
                    self.settings.get(&name).cloned().ok_or_else(|| {
                        SqlError::new("42704", format!("unrecognized configuration parameter \"{name}\""))
                    })?
                };
                let (schema, batches) = text_batch(&[&name], vec![vec![Some(value)]]);
                Ok(Outcome::Rows { schema, batches })
            }
            other => Err(SqlError::unsupported(format!(
                "the statement {}",
                other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ")
            ))),
        }
    }

    fn create_table(&self, ct: &ast::CreateTable) -> SqlResult<Outcome> {
        let name = ct.name.to_string().to_ascii_lowercase();
        if self.engine.datastore(&name).is_ok() || self.engine.channel(&name).is_ok() {
            return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
        }
        let mut cols: Vec<ColumnSpec> = Vec::new();
        let mut key = Vec::new();
        for (i, c) in ct.columns.iter().enumerate() {
            let (spec, primary) = self.column_spec(c)?;
            if cols.iter().any(|x| x.name == spec.name) {
                return Err(SqlError::new("42701", format!("column \"{}\" specified more than once", spec.name)));
            }
            if primary {
                key.push(i);
            }
            cols.push(spec);
        }
        for con in &ct.constraints {
            if let ast::TableConstraint::PrimaryKey(pk) = con {
                for col in &pk.columns {
                    let cname = col.to_string().to_ascii_lowercase();
                    let i =
                        cols.iter().position(|c| c.name == cname).ok_or_else(|| SqlError::undefined_column(&cname))?;
                    cols[i].not_null = true;
                    key.push(i);
                }
            } else {
                return Err(SqlError::unsupported(format!("table constraint {con}")));
            }
        }
        created(
            self.engine.create_table(&name, cols, key).map(drop),
            ct.if_not_exists,
            "relation",
            &name,
            "CREATE TABLE",
        )
    }

    /// SAMPLE CHANNEL: up to `limit` messages (10 by default, as SampleChannelData) spread
    /// evenly over those that arrived in [from, to) (all time by default), oldest first.
    fn sample_channel(
        &mut self,
        name: &str,
        limit: Option<u64>,
        from: &Option<String>,
        to: &Option<String>,
    ) -> SqlResult<Outcome> {
        if self.engine.channel(name).is_err() {
            return Err(SqlError::new("42704", format!("channel \"{name}\" does not exist")));
        }
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut sql = format!("SELECT __received_at, __message_id, __topic, payload FROM {name}");
        if let (Some(f), Some(t)) = (from, to) {
            sql.push_str(&format!(
                " WHERE __received_at >= {}::timestamptz AND __received_at < {}::timestamptz",
                quote(f),
                quote(t)
            ));
        }
        let (plan, schema) = self.binder(&[]).bind_query(&*parse_query(&sql)?)?;
        let all = concat(run(&plan)?, &schema);
        let n = all.num_rows();
        let want = limit.unwrap_or(10) as usize;
        let pick: Vec<u32> =
            if n <= want { (0..n as u32).collect() } else { (0..want).map(|i| (i * n / want) as u32).collect() };
        Ok(Outcome::Rows { batches: vec![all.take(&pick)], schema })
    }

    /// ALTER TABLE: on a table, ADD / DROP / RENAME COLUMN, ALTER COLUMN (SET / DROP NOT NULL,
    /// SET / DROP DEFAULT, [SET DATA] TYPE … [USING …]), ADD PRIMARY KEY, DROP CONSTRAINT
    /// <name>_pkey, and RENAME TO. The operations apply in order to the table's schema and
    /// content, which change together in one WAL record; any error leaves the table as it was.
    /// On a datastore, ADD COLUMN declares a column.
    fn alter_table(&self, at: &ast::AlterTable) -> SqlResult<Outcome> {
        use ast::{AlterColumnOperation as Col, AlterTableOperation as Op};
        let name = at.name.to_string().to_ascii_lowercase();
        let name = name.strip_prefix("public.").unwrap_or(&name).to_string();
        let done = || Ok(Outcome::Done("ALTER TABLE".into()));
        let t = match self.engine.table(&name) {
            Ok(t) => t,
            Err(_) if self.engine.datastore(&name).is_ok() => return self.alter_datastore(&name, &at.operations),
            Err(_) if self.engine.channel(&name).is_ok() => {
                return Err(SqlError::new(
                    "42809",
                    format!("\"{name}\" is a channel: use ALTER CHANNEL {name} SET (retention = …)"),
                ));
            }
            Err(_) if at.if_exists => return done(),
            Err(_) => return Err(SqlError::undefined_relation(&name)),
        };
        if let [Op::RenameTable { table_name }] = at.operations.as_slice() {
            let (ast::RenameTableNameKind::To(n) | ast::RenameTableNameKind::As(n)) = table_name;
            let new = n.to_string().to_ascii_lowercase();
            return match self.engine.rename_table(&name, &new) {
                Err(crate::Error::AlreadyExists(_)) => {
                    Err(SqlError::new("42P07", format!("relation \"{new}\" already exists")))
                }
                r => r.map_err(SqlError::from).and_then(|_| done()),
            };
        }
        let (base_schema, base) = t.snapshot();
        let mut schema = (*base_schema).clone();
        let mut cols = base.columns.clone();
        let n = base.num_rows();
        let missing = |c: &str| SqlError::new("42703", format!("column \"{c}\" of relation \"{name}\" does not exist"));
        let has_nulls =
            |c: &str| SqlError::new("23502", format!("column \"{c}\" of relation \"{name}\" contains null values"));
        let two_keys = || SqlError::new("42P16", format!("multiple primary keys for table \"{name}\" are not allowed"));
        for op in &at.operations {
            match op {
                Op::AddColumn { if_not_exists, column_def, .. } => {
                    let (spec, primary) = self.column_spec(column_def)?;
                    if schema.position(&spec.name).is_some() {
                        if *if_not_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            "42701",
                            format!("column \"{}\" of relation \"{name}\" already exists", spec.name),
                        ));
                    }
                    let col = self.default_column(&spec, n)?;
                    if spec.not_null && col.null_count() > 0 {
                        return Err(has_nulls(&spec.name));
                    }
                    if primary {
                        if !schema.key.is_empty() {
                            return Err(two_keys());
                        }
                        schema.key = vec![schema.columns.len()];
                    }
                    schema.columns.push(spec);
                    cols.push(col);
                }
                Op::DropColumn { column_names, if_exists, .. } => {
                    for c in column_names {
                        let c = ident_name(c);
                        let Some(i) = schema.position(&c) else {
                            if *if_exists {
                                continue;
                            }
                            return Err(missing(&c));
                        };
                        if schema.columns.len() == 1 {
                            return Err(SqlError::unsupported("a table without columns"));
                        }
                        // As in PostgreSQL, the primary key goes with any of its columns.
                        if schema.key.contains(&i) {
                            schema.key.clear();
                        }
                        schema.columns.remove(i);
                        cols.remove(i);
                        for k in &mut schema.key {
                            if *k > i {
                                *k -= 1;
                            }
                        }
                    }
                }
                Op::RenameColumn { old_column_name, new_column_name } => {
                    let (old, new) = (ident_name(old_column_name), ident_name(new_column_name));
                    let i = schema
                        .position(&old)
                        .ok_or_else(|| SqlError::new("42703", format!("column \"{old}\" does not exist")))?;
                    if schema.position(&new).is_some() {
                        return Err(SqlError::new(
                            "42701",
                            format!("column \"{new}\" of relation \"{name}\" already exists"),
                        ));
                    }
                    schema.columns[i].name = new;
                }
                Op::AlterColumn { column_name, op } => {
                    let c = ident_name(column_name);
                    let i = schema.position(&c).ok_or_else(|| missing(&c))?;
                    match op {
                        Col::SetNotNull => {
                            if cols[i].null_count() > 0 {
                                return Err(has_nulls(&c));
                            }
                            schema.columns[i].not_null = true;
                        }
                        Col::DropNotNull => {
                            if schema.key.contains(&i) {
                                return Err(SqlError::new("42P16", format!("column \"{c}\" is in a primary key")));
                            }
                            schema.columns[i].not_null = false;
                        }
                        Col::SetDefault { value } => {
                            schema.columns[i].default = Some(value.to_string());
                            self.default_column(&schema.columns[i], 1)?;
                        }
                        Col::DropDefault => schema.columns[i].default = None,
                        Col::SetDataType { data_type, using, .. } => {
                            let to = SqlType::from_name(&data_type.to_string()).ok_or_else(|| {
                                SqlError::new("42704", format!("type \"{data_type}\" does not exist"))
                            })?;
                            let physical = to
                                .physical()
                                .ok_or_else(|| SqlError::unsupported(format!("columns of type {}", to.pg_name())))?;
                            let spec = &schema.columns[i];
                            let from = type_of_oid(spec.type_tag, spec.data_type);
                            let newc = match using {
                                Some(e) => {
                                    let rows = Arc::new(Batch { fields: schema.fields(), columns: cols.clone() });
                                    let sql = format!("SELECT CAST(({e}) AS {data_type}) FROM {name}");
                                    let (plan, out) = self.bind_over(&sql, &name, &schema, &rows, &[])?;
                                    let b = concat(run(&plan)?, &out);
                                    cast_column(&b.columns[0], out[0].ty, to, &c)?
                                }
                                None if from == to => cols[i].clone(),
                                None => {
                                    if !assignable(from, to) {
                                        return Err(SqlError::new(
                                            "42804",
                                            format!(
                                                "column \"{c}\" cannot be cast automatically to type {}",
                                                to.pg_name()
                                            ),
                                        )
                                        .with_hint(format!(
                                            "You might need to specify \"USING {c}::{}\".",
                                            to.pg_name()
                                        )));
                                    }
                                    cast_column(&cols[i], from, to, &c)?
                                }
                            };
                            let spec = &mut schema.columns[i];
                            spec.data_type = physical;
                            spec.type_tag = to.oid();
                            if spec.not_null && newc.null_count() > 0 {
                                return Err(has_nulls(&c));
                            }
                            cols[i] = newc;
                            if schema.columns[i].default.is_some()
                                && self.default_column(&schema.columns[i], 1).is_err()
                            {
                                return Err(SqlError::new(
                                    "42804",
                                    format!(
                                        "default for column \"{c}\" cannot be cast automatically to type {}",
                                        to.pg_name()
                                    ),
                                ));
                            }
                        }
                        other => return Err(SqlError::unsupported(format!("ALTER COLUMN … {other}"))),
                    }
                }
                Op::AddConstraint { constraint: ast::TableConstraint::PrimaryKey(pk), .. } => {
                    if !schema.key.is_empty() {
                        return Err(two_keys());
                    }
                    let mut key = Vec::new();
                    for col in &pk.columns {
                        let c = col.to_string().to_ascii_lowercase();
                        let i = schema.position(&c).ok_or_else(|| {
                            SqlError::new("42703", format!("column \"{c}\" named in key does not exist"))
                        })?;
                        if cols[i].null_count() > 0 {
                            return Err(has_nulls(&c));
                        }
                        schema.columns[i].not_null = true;
                        key.push(i);
                    }
                    let rows = Batch { fields: schema.fields(), columns: cols.clone() };
                    let mut seen = std::collections::HashSet::new();
                    if (0..n).any(|r| !seen.insert(crate::table::store_key_bytes(&rows, &key, r))) {
                        return Err(SqlError::new("23505", format!("could not create unique index \"{name}_pkey\"")));
                    }
                    schema.key = key;
                }
                Op::DropConstraint { name: cname, if_exists, .. } => {
                    let cname = ident_name(cname);
                    if cname == format!("{name}_pkey") && !schema.key.is_empty() {
                        schema.key.clear();
                    } else if !*if_exists {
                        return Err(SqlError::new(
                            "42704",
                            format!("constraint \"{cname}\" of relation \"{name}\" does not exist"),
                        ));
                    }
                }
                Op::DropPrimaryKey { .. } => schema.key.clear(),
                Op::RenameTable { .. } => {
                    return Err(SqlError::syntax("RENAME TO cannot be combined with other ALTER TABLE actions"));
                }
                other => return Err(SqlError::unsupported(format!("ALTER TABLE … {other}"))),
            }
        }
        let rows = Batch { fields: schema.fields(), columns: cols };
        self.engine.alter_table(&name, schema, rows, &base)?;
        done()
    }

    /// ALTER TABLE on a datastore: ADD COLUMN declares columns; the rest is refused, since a
    /// datastore's rows are append-only.
    fn alter_datastore(&self, name: &str, ops: &[ast::AlterTableOperation]) -> SqlResult<Outcome> {
        for op in ops {
            let ast::AlterTableOperation::AddColumn { if_not_exists, column_def, .. } = op else {
                return Err(SqlError::new(
                    "0A000",
                    format!("datastore \"{name}\" takes only ADD COLUMN (its rows are append-only): {op}"),
                ));
            };
            let (spec, primary) = self.column_spec(column_def)?;
            if primary || spec.not_null || spec.default.is_some() {
                return Err(SqlError::unsupported("constraints and defaults on datastore columns"));
            }
            if spec.name == "__dt" || spec.name.starts_with("__") {
                return Err(SqlError::new("42P16", format!("column \"{}\" is fleetdb's own", spec.name)));
            }
            let cname = spec.name.clone();
            match self.engine.add_datastore_column(name, spec) {
                Err(crate::Error::AlreadyExists(_)) if *if_not_exists => {}
                Err(crate::Error::AlreadyExists(_)) => {
                    return Err(SqlError::new(
                        "42701",
                        format!("column \"{cname}\" of relation \"{name}\" already exists"),
                    ));
                }
                r => r?,
            }
        }
        Ok(Outcome::Done("ALTER TABLE".into()))
    }

    /// A column definition of CREATE TABLE or ALTER TABLE … ADD COLUMN, and whether it is
    /// the primary key. A DEFAULT is checked now by evaluating it for one row.
    fn column_spec(&self, c: &ast::ColumnDef) -> SqlResult<(ColumnSpec, bool)> {
        let ty = SqlType::from_name(&c.data_type.to_string())
            .ok_or_else(|| SqlError::new("42704", format!("type \"{}\" does not exist", c.data_type)))?;
        let physical =
            ty.physical().ok_or_else(|| SqlError::unsupported(format!("columns of type {}", ty.pg_name())))?;
        let name = ident_name(&c.name);
        let mut spec = ColumnSpec { name, data_type: physical, type_tag: ty.oid(), not_null: false, default: None };
        let mut primary = false;
        for o in &c.options {
            match &o.option {
                ast::ColumnOption::NotNull => spec.not_null = true,
                ast::ColumnOption::PrimaryKey(_) => {
                    spec.not_null = true;
                    primary = true;
                }
                ast::ColumnOption::Null => {}
                ast::ColumnOption::Default(e) => {
                    spec.default = Some(e.to_string());
                    self.default_column(&spec, 1)?;
                }
                other => return Err(SqlError::unsupported(format!("column option {other}"))),
            }
        }
        Ok((spec, primary))
    }

    /// Evaluates the VALUES or SELECT source of an INSERT into one batch.
    fn insert_source(&self, ins: &ast::Insert, params: &[Param]) -> SqlResult<(Vec<OutCol>, Batch)> {
        let q = ins.source.as_ref().ok_or_else(|| SqlError::unsupported("INSERT without VALUES or SELECT"))?;
        let b = self.binder(params);
        let (plan, schema) = b.bind_query(q)?;
        let batches = run(&plan)?;
        Ok((schema.clone(), concat(batches, &schema)))
    }

    fn insert(&mut self, ins: &ast::Insert, params: &[Param]) -> SqlResult<Outcome> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => n.to_string().to_ascii_lowercase(),
            other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
        };
        let (src_schema, src) = self.insert_source(ins, params)?;
        let cols: Vec<String> = ins.columns.iter().map(|c| c.to_string().to_ascii_lowercase()).collect();
        let skip_conflicts = match &ins.on {
            None => false,
            Some(ast::OnInsert::OnConflict(ast::OnConflict { action: ast::OnConflictAction::DoNothing, .. })) => true,
            Some(ast::OnInsert::OnConflict(ast::OnConflict {
                action: ast::OnConflictAction::DoUpdate(update),
                conflict_target,
            })) => {
                let alias = ins.table_alias.as_ref().map(|a| a.alias.value.to_ascii_lowercase());
                let target = match conflict_target {
                    Some(ast::ConflictTarget::Columns { columns, .. }) => {
                        columns.iter().map(|c| c.value.to_ascii_lowercase()).collect::<Vec<_>>()
                    }
                    _ => {
                        return Err(SqlError::new(
                            "42601",
                            "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                        )
                        .with_hint("For example, ON CONFLICT (column_name)."));
                    }
                };
                let n = self.upsert(&name, alias.as_deref(), &cols, &src_schema, &src, &target, update, params)?;
                return Ok(Outcome::Done(format!("INSERT 0 {n}")));
            }
            Some(other) => return Err(SqlError::unsupported(format!("INSERT … {other}"))),
        };
        let n = self.insert_rows(&name, &cols, &src_schema, &src, skip_conflicts, false)?;
        Ok(Outcome::Done(format!("INSERT 0 {n}")))
    }

    /// Writes rows (`src`, typed by `src_schema`) into columns `cols` of table or datastore
    /// `name`; returns how many were written.
    /// `infer`: untyped values (COPY text) take the datastore column's type, or for a new column
    /// a type inferred from the values; otherwise untyped literals are text, as in PostgreSQL.
    fn insert_rows(
        &mut self,
        name: &str,
        cols: &[String],
        src_schema: &[OutCol],
        src: &Batch,
        skip_conflicts: bool,
        infer: bool,
    ) -> SqlResult<usize> {
        let name = name.to_string();
        let n = src.num_rows();
        if let Ok(t) = self.engine.table(&name) {
            let (schema, current) = t.snapshot();
            let batch = self.table_batch(&schema, cols, src_schema, src)?;
            let written = if skip_conflicts {
                insert_skipping_conflicts(&self.engine, &t, &schema, &current, batch)?
            } else {
                self.engine.write_table(&name, TableWrite::Append, batch, None)?;
                n
            };
            return Ok(written);
        }
        if let Ok(ds) = self.engine.datastore(&name) {
            let existing = ds.schema();
            if cols.is_empty() {
                return Err(SqlError::syntax(
                    "INSERT into a datastore needs a column list, e.g. INSERT INTO d (time, machine_id, x) VALUES …",
                ));
            }
            if cols.len() != src_schema.len() {
                return Err(SqlError::syntax("INSERT has more expressions than target columns"));
            }
            let mut fields = Vec::new();
            let mut columns = Vec::new();
            for (c, (oc, col)) in cols.iter().zip(src_schema.iter().zip(&src.columns)) {
                let (ty, col) = if c == "time" {
                    (SqlType::TimestampTz, cast_column(col, oc.ty, SqlType::TimestampTz, c)?)
                } else if infer && oc.ty == SqlType::Unknown {
                    let ty = existing
                        .iter()
                        .find(|f| f.name == *c)
                        .map(|f| SqlType::of_storage(f.data_type))
                        .unwrap_or_else(|| infer_type(col));
                    (ty, cast_column(col, SqlType::Unknown, ty, c)?)
                } else if oc.ty == SqlType::Unknown || oc.ty.is_text() || oc.ty.is_json() {
                    (SqlType::Text, col.clone())
                } else if oc.ty.is_integer() {
                    (SqlType::Int8, col.clone())
                } else if oc.ty.is_numeric() {
                    (SqlType::Float8, col.clone())
                } else {
                    (
                        oc.ty,
                        cast_column(col, oc.ty, if oc.ty == SqlType::Date { SqlType::TimestampTz } else { oc.ty }, c)?,
                    )
                };
                let dt = col.data_type();
                let _ = ty;
                fields.push(Field::new(c, dt));
                columns.push(col);
            }
            if !cols.iter().any(|c| c == "time") {
                fields.push(Field::new("time", crate::batch::DataType::Timestamp));
                columns.push(Column::new(Values::Timestamp(vec![now_micros(); n])));
            }
            let batch =
                Batch::try_new(fields, columns).ok_or_else(|| SqlError::syntax("column named twice in INSERT"))?;
            self.engine.append_rows(&name, batch, None)?;
            return Ok(n);
        }
        if self.engine.channel(&name).is_ok() {
            return self.insert_messages(&name, cols, src_schema, src);
        }
        Err(SqlError::undefined_relation(&name))
    }

    /// INSERT INTO channel (payload [, __message_id] [, __topic]) …: each row is a message.
    /// Without `__message_id`, messages get ids of the form `<arrival µs in hex>-<row>`.
    fn insert_messages(&mut self, name: &str, cols: &[String], src_schema: &[OutCol], src: &Batch) -> SqlResult<usize> {
        let pos = |c: &str| cols.iter().position(|x| x == c);
        if let Some(bad) = cols.iter().find(|c| !matches!(c.as_str(), "payload" | "__message_id" | "__topic")) {
            return Err(SqlError::new(
                "42703",
                format!(
                    "column \"{bad}\" of channel \"{name}\" cannot be written: give payload, __message_id, __topic"
                ),
            ));
        }
        let Some(p) = pos("payload") else {
            return Err(SqlError::syntax(format!("INSERT into channel {name} needs a column list with payload")));
        };
        if cols.len() != src_schema.len() {
            return Err(SqlError::syntax("INSERT has more expressions than target columns"));
        }
        let text =
            |i: usize| -> SqlResult<Column> { cast_column(&src.columns[i], src_schema[i].ty, SqlType::Text, &cols[i]) };
        let payloads = text(p)?;
        let ids = pos("__message_id").map(text).transpose()?;
        let topics = pos("__topic").map(text).transpose()?;
        let start = now_micros();
        let value = |c: &Column, r: usize| -> Option<String> {
            Scalar::from_column(c, SqlType::Text, r).to_text(SqlType::Text)
        };
        let mut msgs = Vec::with_capacity(src.num_rows());
        for r in 0..src.num_rows() {
            let payload = value(&payloads, r).ok_or_else(|| {
                SqlError::new("23502", format!("null value in column \"payload\" of channel \"{name}\""))
            })?;
            let id = match &ids {
                Some(c) => value(c, r).unwrap_or_default(),
                None => format!("{start:x}-{}", r + 1),
            };
            let topic = topics.as_ref().and_then(|c| value(c, r)).unwrap_or_default();
            msgs.push(crate::ingest::Incoming {
                id: id.into(),
                topic: topic.into(),
                payload: payload.into_bytes().into(),
            });
        }
        self.put_messages(name, &msgs)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        source: &ast::CopySource,
        to: bool,
        target: &ast::CopyTarget,
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
        params: &[Param],
    ) -> SqlResult<Outcome> {
        let mut csv = false;
        let mut header = false;
        let mut delimiter = None;
        let mut null = None;
        let mut quote = '"';
        for o in options {
            match o {
                ast::CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                    "csv" => csv = true,
                    "text" => csv = false,
                    other => return Err(SqlError::unsupported(format!("COPY format {other}"))),
                },
                ast::CopyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => header = *h,
                ast::CopyOption::Quote(c) => quote = *c,
                other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
            }
        }
        for o in legacy {
            match o {
                ast::CopyLegacyOption::Csv(inner) => {
                    csv = true;
                    for i in inner {
                        match i {
                            ast::CopyLegacyCsvOption::Header => header = true,
                            ast::CopyLegacyCsvOption::Quote(c) => quote = *c,
                            other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
                        }
                    }
                }
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyLegacyOption::Header => header = true,
                other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
            }
        }
        let format = if csv {
            CopyFormat::Csv { delimiter: delimiter.unwrap_or(','), null: null.unwrap_or_default(), header, quote }
        } else {
            CopyFormat::Text { delimiter: delimiter.unwrap_or('\t'), null: null.unwrap_or_else(|| "\\N".into()) }
        };
        match (to, target) {
            (false, ast::CopyTarget::Stdin) => {
                let ast::CopySource::Table { table_name, columns } = source else {
                    return Err(SqlError::syntax("COPY FROM needs a table"));
                };
                let target = table_name.to_string().to_ascii_lowercase();
                let columns: Vec<String> = columns.iter().map(|c| c.value.to_ascii_lowercase()).collect();
                if self.engine.channel(&target).is_ok() {
                    if !(columns.is_empty() || columns == ["payload"]) || csv {
                        return Err(SqlError::syntax(format!(
                            "COPY into channel {target} takes NDJSON payloads: COPY {target} FROM STDIN"
                        )));
                    }
                    return Ok(Outcome::CopyIn(CopyIn { target, columns, format, width: 1, into_channel: true }));
                }
                let width = if !columns.is_empty() {
                    columns.len()
                } else if let Ok(t) = self.engine.table(&target) {
                    t.schema().columns.len()
                } else if self.engine.datastore(&target).is_ok() {
                    return Err(SqlError::syntax(format!(
                        "COPY into datastore {target} needs a column list, e.g. COPY {target} (time, machine_id, x) FROM STDIN"
                    )));
                } else {
                    return Err(SqlError::undefined_relation(&target));
                };
                Ok(Outcome::CopyIn(CopyIn { target, columns, format, width, into_channel: false }))
            }
            (true, ast::CopyTarget::Stdout) => {
                let sql = match source {
                    ast::CopySource::Table { table_name, columns } if columns.is_empty() => {
                        format!("SELECT * FROM {table_name}")
                    }
                    ast::CopySource::Table { table_name, columns } => {
                        format!(
                            "SELECT {} FROM {table_name}",
                            columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                        )
                    }
                    ast::CopySource::Query(q) => q.to_string(),
                };
                let (plan, schema) = self.binder(params).bind_query(&*parse_query(&sql)?)?;
                let batches = run(&plan)?;
                let mut lines = Vec::new();
                if let CopyFormat::Csv { header: true, .. } = &format {
                    let names: Vec<Option<String>> = schema.iter().map(|c| Some(c.name.clone())).collect();
                    let mut line = String::new();
                    super::copy::format_row(&format, &names, &mut line);
                    lines.push(line);
                }
                for bt in &batches {
                    for i in 0..bt.num_rows() {
                        let fields: Vec<Option<String>> = schema
                            .iter()
                            .zip(&bt.columns)
                            .map(|(c, col)| Scalar::from_column(col, c.ty, i).to_text(c.ty))
                            .collect();
                        let mut line = String::new();
                        super::copy::format_row(&format, &fields, &mut line);
                        lines.push(line);
                    }
                }
                Ok(Outcome::CopyOut { columns: schema.len(), lines })
            }
            _ => Err(SqlError::unsupported("COPY to or from a file on the server; use STDIN / STDOUT")),
        }
    }

    /// Loads the data of a COPY FROM STDIN; returns the number of rows.
    pub fn copy_in(&mut self, spec: &CopyIn, data: &[u8]) -> SqlResult<usize> {
        if spec.into_channel {
            let start = now_micros();
            let msgs: Vec<crate::ingest::Incoming<'_>> = data
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace) && *l != b"\\.")
                .enumerate()
                .map(|(i, l)| crate::ingest::Incoming {
                    id: format!("{start:x}-{}", i + 1).into(),
                    topic: "".into(),
                    payload: l.into(),
                })
                .collect();
            return self.put_messages(&spec.target.clone(), &msgs);
        }
        let rows = super::copy::parse(&spec.format, data)?;
        for (i, r) in rows.iter().enumerate() {
            if r.len() != spec.width {
                return Err(SqlError::new(
                    "22P04",
                    format!("COPY row {} has {} columns where {} were expected", i + 1, r.len(), spec.width),
                ));
            }
        }
        let mut fields = Vec::with_capacity(spec.width);
        let mut columns = Vec::with_capacity(spec.width);
        let mut schema = Vec::with_capacity(spec.width);
        for c in 0..spec.width {
            let vals: Vec<Scalar> =
                rows.iter().map(|r| r[c].clone().map(Scalar::Text).unwrap_or(Scalar::Null)).collect();
            columns.push(scalars_to_column(&vals, SqlType::Unknown)?);
            fields.push(Field::new(&format!("c{c}"), crate::batch::DataType::Text));
            schema.push(OutCol { name: format!("c{c}"), ty: SqlType::Unknown });
        }
        let batch = Batch { fields, columns };
        self.insert_rows(&spec.target.clone(), &spec.columns, &schema, &batch, false, true)
    }

    /// The rows of an INSERT into table `t` (`src` into columns `cols`, all if empty) as full
    /// table rows, each value cast to its column's type; absent columns are NULL.
    fn table_batch(&self, t: &TableSchema, cols: &[String], src_schema: &[OutCol], src: &Batch) -> SqlResult<Batch> {
        let n = src.num_rows();
        let targets: Vec<usize> = if cols.is_empty() {
            (0..src_schema.len().min(t.columns.len())).collect()
        } else {
            cols.iter().map(|c| t.position(c).ok_or_else(|| SqlError::undefined_column(c))).collect::<SqlResult<_>>()?
        };
        if targets.len() != src_schema.len() {
            return Err(SqlError::syntax("INSERT has more expressions than target columns"));
        }
        let mut columns = Vec::with_capacity(t.columns.len());
        for (i, spec) in t.columns.iter().enumerate() {
            let ty = type_of_oid(spec.type_tag, spec.data_type);
            columns.push(match targets.iter().position(|&x| x == i) {
                Some(si) => cast_column(&src.columns[si], src_schema[si].ty, ty, &spec.name)?,
                None => self.default_column(spec, n)?,
            });
        }
        Ok(Batch { fields: t.fields(), columns })
    }

    /// `n` copies of column `spec`'s default value (NULL without a default). The default is
    /// evaluated once per statement, so `now()` gives every row the same time.
    fn default_column(&self, spec: &ColumnSpec, n: usize) -> SqlResult<Column> {
        let Some(default) = &spec.default else { return Ok(Column::nulls(spec.data_type, n)) };
        let ty = type_of_oid(spec.type_tag, spec.data_type);
        let (plan, schema) = self.binder(&[]).bind_query(&*parse_query(&format!("SELECT {default}"))?)?;
        let out = concat(run(&plan)?, &schema);
        let v = cast_column(&out.columns[0], schema[0].ty, ty, &spec.name)?;
        scalars_to_column(&vec![Scalar::from_column(&v, ty, 0); n], ty)
    }

    /// INSERT … ON CONFLICT (key) DO UPDATE SET … [WHERE …]: proposed rows whose key exists
    /// update that row (the assignments see it under the table's name or alias, and the
    /// proposed row as `excluded`); the others are inserted. Returns rows inserted or updated.
    #[allow(clippy::too_many_arguments)]
    fn upsert(
        &mut self,
        name: &str,
        alias: Option<&str>,
        cols: &[String],
        src_schema: &[OutCol],
        src: &Batch,
        target: &[String],
        update: &ast::DoUpdate,
        params: &[Param],
    ) -> SqlResult<usize> {
        let t = self.engine.table(name).map_err(|_| match self.engine.datastore(name) {
            Ok(_) => SqlError::new("42809", format!("\"{name}\" is append-only: ON CONFLICT DO UPDATE needs a table")),
            Err(_) => SqlError::undefined_relation(name),
        })?;
        let (ts, current) = t.snapshot();
        let key_names: Vec<&str> = ts.key.iter().map(|&k| ts.columns[k].name.as_str()).collect();
        let mut sorted_target: Vec<&str> = target.iter().map(String::as_str).collect();
        sorted_target.sort();
        let mut sorted_key = key_names.clone();
        sorted_key.sort();
        if key_names.is_empty() || sorted_target != sorted_key {
            return Err(SqlError::new(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ));
        }
        // The proposed rows as full table rows.
        let proposed = self.table_batch(&ts, cols, src_schema, src)?;
        let index: std::collections::HashMap<Vec<u8>, usize> =
            (0..current.num_rows()).map(|r| (crate::table::store_key_bytes(&current, &ts.key, r), r)).collect();
        let mut seen = std::collections::HashSet::new();
        let (mut inserts, mut conflicts) = (Vec::new(), Vec::new()); // proposed rows; (existing, proposed)
        for r in 0..proposed.num_rows() {
            let k = crate::table::store_key_bytes(&proposed, &ts.key, r);
            if !seen.insert(k.clone()) {
                return Err(SqlError::new("21000", "ON CONFLICT DO UPDATE command cannot affect row a second time")
                    .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
            }
            match index.get(&k) {
                Some(&e) => conflicts.push((e as u32, r as u32)),
                None => inserts.push(r as u32),
            }
        }
        let mut columns = current.columns.clone();
        let mut updated = 0;
        if !conflicts.is_empty() {
            // Evaluate SET and WHERE over (existing row, excluded row) pairs, row by row aligned.
            let schema_of = |b: &Batch| -> Vec<OutCol> {
                ts.columns
                    .iter()
                    .map(|c| OutCol { name: c.name.clone(), ty: type_of_oid(c.type_tag, c.data_type) })
                    .chain(std::iter::once(OutCol { name: "__pair".into(), ty: SqlType::Int8 }))
                    .take(b.columns.len() + 1)
                    .collect()
            };
            let with_pair = |b: Batch| -> Batch {
                let mut b = b;
                let n = b.num_rows();
                b.fields.push(Field::new("__pair", crate::batch::DataType::Int64));
                b.columns.push(Column::new(Values::Int64((0..n as i64).collect())));
                b
            };
            let existing = with_pair(current.take(&conflicts.iter().map(|c| c.0).collect::<Vec<_>>()));
            let excluded = with_pair(proposed.take(&conflicts.iter().map(|c| c.1).collect::<Vec<_>>()));
            let qual = alias.unwrap_or(name);
            let mut exprs: Vec<String> = Vec::new();
            let mut targets = Vec::new();
            for a in &update.assignments {
                let col = match &a.target {
                    ast::AssignmentTarget::ColumnName(c) => c.to_string().to_ascii_lowercase(),
                    other => return Err(SqlError::unsupported(format!("assignment to {other}"))),
                };
                let ci = ts.position(&col).ok_or_else(|| SqlError::undefined_column(&col))?;
                if ts.key.contains(&ci) {
                    return Err(SqlError::unsupported("ON CONFLICT DO UPDATE of a primary key column"));
                }
                targets.push(ci);
                exprs.push(a.value.to_string());
            }
            let pred = update.selection.as_ref().map_or("true".to_string(), |w| w.to_string());
            let q = format!(
                "SELECT {qual}.__pair, {pred}{} FROM {qual} JOIN excluded ON {qual}.__pair = excluded.__pair ORDER BY 1",
                exprs.iter().map(|e| format!(", {e}")).collect::<String>()
            );
            let stmts = parse(&q)?;
            let Some(Statement::Sql(stmt)) = stmts.first() else { return Err(SqlError::syntax("ON CONFLICT")) };
            let ast::Statement::Query(query) = stmt.as_ref() else { return Err(SqlError::syntax("ON CONFLICT")) };
            let b = self.binder(params);
            b.add_relation(qual, schema_of(&existing), existing);
            b.add_relation("excluded", schema_of(&excluded), excluded);
            let (plan, schema) = b.bind_query(query)?;
            let out = concat(run(&plan)?, &schema);
            let keep = &out.columns[1];
            let Values::Bool(kv) = &keep.values else {
                return Err(SqlError::mismatch("argument of WHERE must be type boolean"));
            };
            for (k, &ci) in targets.iter().enumerate() {
                let spec = &ts.columns[ci];
                let ty = type_of_oid(spec.type_tag, spec.data_type);
                let newc = cast_column(&out.columns[2 + k], schema[2 + k].ty, ty, &spec.name)?;
                let mut vals: Vec<Scalar> =
                    (0..current.num_rows()).map(|i| Scalar::from_column(&columns[ci], ty, i)).collect();
                for (p, &(e, _)) in conflicts.iter().enumerate() {
                    if keep.is_valid(p) && kv[p] {
                        vals[e as usize] = Scalar::from_column(&newc, ty, p);
                    }
                }
                columns[ci] = scalars_to_column(&vals, ty)?;
            }
            updated = (0..conflicts.len()).filter(|&p| keep.is_valid(p) && kv[p]).count();
        }
        let new_rows = proposed.take(&inserts);
        let mut all = Batch { fields: current.fields.clone(), columns };
        if new_rows.num_rows() > 0 {
            all = concat(vec![all, new_rows], &schema_of_table(&ts));
        }
        if updated > 0 || !inserts.is_empty() {
            self.engine.write_table(t.name(), TableWrite::Replace, all, Some(&current))?;
        }
        Ok(updated + inserts.len())
    }

    /// The rows of table `name` as the statement sees them, and which match `selection`.
    fn matching(&self, name: &str, selection: Option<&ast::Expr>, params: &[Param]) -> SqlResult<Matching> {
        let t = self.engine.table(name).map_err(|_| SqlError::undefined_relation(name))?;
        let (schema, rows) = t.snapshot();
        let n = rows.num_rows();
        let mask = match selection {
            None => vec![true; n],
            Some(w) => {
                let (plan, _) = self.bind_over(&format!("SELECT {w} FROM {name}"), name, &schema, &rows, params)?;
                let out = concat(run(&plan)?, &[OutCol { name: "m".into(), ty: SqlType::Bool }]);
                let c = &out.columns[0];
                match &c.values {
                    Values::Bool(v) => (0..n).map(|i| c.is_valid(i) && v[i]).collect(),
                    _ => return Err(SqlError::mismatch("argument of WHERE must be type boolean")),
                }
            }
        };
        Ok(Matching { t, schema, rows, mask })
    }

    /// Binds query `sql` with relation `name` standing for `rows` (a table's content as the
    /// statement saw it, so every part of the statement reads the same rows).
    fn bind_over(
        &self,
        sql: &str,
        name: &str,
        schema: &TableSchema,
        rows: &Arc<Batch>,
        params: &[Param],
    ) -> SqlResult<(super::exec::Plan, Vec<OutCol>)> {
        let query = parse_query(sql)?;
        let b = self.binder(params);
        b.add_relation(name, schema_of_table(schema), rows.as_ref().clone());
        b.bind_query(&query)
    }

    fn delete(&mut self, d: &ast::Delete, params: &[Param]) -> SqlResult<Outcome> {
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
        };
        let [twj] = from.as_slice() else { return Err(SqlError::unsupported("DELETE from several tables")) };
        let ast::TableFactor::Table { name, .. } = &twj.relation else {
            return Err(SqlError::unsupported("DELETE target"));
        };
        let name = name.to_string().to_ascii_lowercase();
        if self.engine.datastore(&name).is_ok() || self.engine.channel(&name).is_ok() {
            return Err(SqlError::new("42809", format!("\"{name}\" is append-only: rows leave it by retention")));
        }
        let Matching { t, rows, mask, .. } = self.matching(&name, d.selection.as_ref(), params)?;
        let keep: Vec<u32> = (0..rows.num_rows()).filter(|&i| !mask[i]).map(|i| i as u32).collect();
        let deleted = rows.num_rows() - keep.len();
        if deleted > 0 {
            self.engine.write_table(t.name(), TableWrite::Replace, rows.take(&keep), Some(&rows))?;
        }
        Ok(Outcome::Done(format!("DELETE {deleted}")))
    }

    fn update(&mut self, u: &ast::Update, params: &[Param]) -> SqlResult<Outcome> {
        let ast::TableFactor::Table { name, .. } = &u.table.relation else {
            return Err(SqlError::unsupported("UPDATE target"));
        };
        let name = name.to_string().to_ascii_lowercase();
        if self.engine.datastore(&name).is_ok() || self.engine.channel(&name).is_ok() {
            return Err(SqlError::new("42809", format!("\"{name}\" is append-only")));
        }
        let Matching { t, schema: ts, rows, mask } = self.matching(&name, u.selection.as_ref(), params)?;
        let n = rows.num_rows();
        let mut columns = rows.columns.clone();
        for a in &u.assignments {
            let col = match &a.target {
                ast::AssignmentTarget::ColumnName(c) => c.to_string().to_ascii_lowercase(),
                other => return Err(SqlError::unsupported(format!("assignment to {other}"))),
            };
            let ci = ts.position(&col).ok_or_else(|| SqlError::undefined_column(&col))?;
            let spec = &ts.columns[ci];
            let ty = type_of_oid(spec.type_tag, spec.data_type);
            // Evaluate the new value for every row through a query over the table.
            let (plan, schema) =
                self.bind_over(&format!("SELECT {} FROM {name}", a.value), &name, &ts, &rows, params)?;
            let vals = concat(run(&plan)?, &schema);
            let newc = cast_column(&vals.columns[0], schema[0].ty, ty, &col)?;
            let mut out = Vec::with_capacity(n);
            for (i, &m) in mask.iter().enumerate() {
                out.push(if m { Scalar::from_column(&newc, ty, i) } else { Scalar::from_column(&columns[ci], ty, i) });
            }
            columns[ci] = scalars_to_column(&out, ty)?;
        }
        let updated = mask.iter().filter(|m| **m).count();
        if updated > 0 {
            let batch = Batch { fields: rows.fields.clone(), columns };
            self.engine.write_table(t.name(), TableWrite::Replace, batch, Some(&rows))?;
        }
        Ok(Outcome::Done(format!("UPDATE {updated}")))
    }
}

/// What an UPDATE or DELETE works on: the table's schema and rows as the statement sees them,
/// and which rows its WHERE matches.
struct Matching {
    t: Arc<Table>,
    schema: Arc<TableSchema>,
    rows: Arc<Batch>,
    mask: Vec<bool>,
}

/// Appends the rows of `batch` whose key is not in `current` (the content seen by the
/// statement) or earlier in `batch`; returns how many.
fn insert_skipping_conflicts(
    engine: &Engine,
    t: &Table,
    schema: &TableSchema,
    current: &Arc<Batch>,
    batch: Batch,
) -> SqlResult<usize> {
    let mut seen: std::collections::HashSet<Vec<u8>> =
        (0..current.num_rows()).map(|r| crate::table::store_key_bytes(current, &schema.key, r)).collect();
    let keep: Vec<u32> = (0..batch.num_rows())
        .filter(|&r| schema.key.is_empty() || seen.insert(crate::table::store_key_bytes(&batch, &schema.key, r)))
        .map(|r| r as u32)
        .collect();
    let n = keep.len();
    if n > 0 {
        engine.write_table(t.name(), TableWrite::Append, batch.take(&keep), Some(current))?;
    }
    Ok(n)
}

/// A column name as written: folded to lower case unless quoted.
fn ident_name(i: &ast::Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
}

/// Pipeline errors as SQL errors: unknown objects are 42704 (undefined_object).
/// A not-found error as 42704 with its object's name.
fn not_found(e: crate::Error) -> SqlError {
    match e {
        crate::Error::NotFound(what) => SqlError::new("42704", format!("{what} does not exist")),
        other => other.into(),
    }
}

fn pipeline_result(r: crate::Result<()>, tag: &str) -> SqlResult<Outcome> {
    match r {
        Ok(()) => Ok(Outcome::Done(tag.into())),
        Err(crate::Error::NotFound(what)) => Err(SqlError::new("42704", format!("{what} does not exist"))),
        Err(e) => Err(e.into()),
    }
}

fn schema_of_table(t: &TableSchema) -> Vec<OutCol> {
    t.columns.iter().map(|c| OutCol { name: c.name.clone(), ty: type_of_oid(c.type_tag, c.data_type) }).collect()
}

/// The narrowest type every present value of a text column parses as: bigint, double
/// precision, boolean, else text.
pub(crate) fn infer_type(c: &Column) -> SqlType {
    let Values::Text(v) = &c.values else { return SqlType::Text };
    let present: Vec<&str> = (0..c.len()).filter(|&i| c.is_valid(i)).map(|i| v.get(i).trim()).collect();
    if present.is_empty() {
        return SqlType::Text;
    }
    if present.iter().all(|s| s.parse::<i64>().is_ok()) {
        SqlType::Int8
    } else if present.iter().all(|s| s.parse::<f64>().is_ok()) {
        SqlType::Float8
    } else if present.iter().all(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "t" | "f")) {
        SqlType::Bool
    } else {
        SqlType::Text
    }
}

/// What clients see: unknown-typed results (bare string literals) are text.
pub fn client_schema(schema: Vec<OutCol>) -> Vec<OutCol> {
    schema.into_iter().map(|c| if c.ty == SqlType::Unknown { OutCol { ty: SqlType::Text, ..c } } else { c }).collect()
}

/// Whether a value of type `from` converts to `to` on assignment without a written cast (as
/// PostgreSQL's assignment casts: between numbers, between times, anything to text).
fn assignable(from: SqlType, to: SqlType) -> bool {
    (from.is_numeric() && to.is_numeric())
        || to.is_text()
        || (from.is_timestamp() && to.is_timestamp())
        || (from == SqlType::Date && to.is_timestamp())
}

/// Converts a column to the SQL type of a target column, naming it in errors.
fn cast_column(c: &Column, from: SqlType, to: SqlType, name: &str) -> SqlResult<Column> {
    if from == to || (from == SqlType::Unknown && to.is_text()) {
        return Ok(c.clone());
    }
    let ok = from == SqlType::Unknown || (from.is_text() && to.is_json()) || assignable(from, to);
    if !ok {
        return Err(SqlError::mismatch(format!(
            "column \"{name}\" is of type {} but expression is of type {}",
            to.pg_name(),
            from.pg_name()
        ))
        .with_hint("You will need to rewrite or cast the expression."));
    }
    let n = c.len();
    let mut vals = Vec::with_capacity(n);
    for i in 0..n {
        vals.push(cast_scalar(Scalar::from_column(c, from, i), from, to)?);
    }
    scalars_to_column(&vals, to)
}
