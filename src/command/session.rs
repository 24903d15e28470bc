//! [`Session`]: executes parsed statements against the engine and returns results as
//! column batches. One per client connection; it holds the connection's settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::query::ast;

use super::parse::{ObjectKind, Statement, parse};
use crate::batch::Batch;
use crate::engine::Engine;
use crate::ingest::Ingest;
use crate::pipeline::Pipelines;
use crate::query::bind::{Binder, type_of_oid};
use crate::query::copy::CopyFormat;
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::run;
use crate::query::expr::EvalCtx;
use crate::query::plan::OutCol;
use crate::query::scalar::Param;
use crate::query::settings::{DEFAULT_SETTINGS, parse_duration_setting};
use crate::query::types::SqlType;
use crate::table::TableSchema;
use crate::util::time::{format_timestamp, now_micros};

mod copy;
pub use copy::CopyPiece;
mod ddl;
mod show;
mod write;

use ddl::*;
use show::*;
use write::*;

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
    services: Arc<super::Services>,
    engine: Arc<Engine>,
    settings: BTreeMap<String, String>,
    in_transaction: bool,
    /// Cancellation flag and working memory of this session's queries.
    pub limits: crate::query::guard::QueryLimits,
    /// The COPY FROM STDIN under way, if one is.
    copying: Option<copy::CopyRun>,
}

impl Session {
    pub fn new(services: Arc<super::Services>) -> Session {
        let settings = DEFAULT_SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // Every session of an engine draws on the engine's one memory pool.
        let limits = crate::query::guard::QueryLimits { pool: Some(services.pool.clone()), ..Default::default() };
        Session { engine: services.engine.clone(), services, settings, in_transaction: false, limits, copying: None }
    }

    fn ingest(&mut self) -> SqlResult<Arc<Ingest>> {
        Ok(self.services.ingest.clone())
    }

    pub fn services(&self) -> &Arc<super::Services> {
        &self.services
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
                    rows.extend(crate::query::expr::rows_as_text(&schema, b));
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
        let _stack = crate::query::guard::stack_base();
        // Parsed under the statement's limits: a cancel or statement_timeout reaches the
        // reading of a long list of literals, and the first statement's time counts from here.
        let limits = self.statement_limits();
        let stmts = match crate::query::guard::run_guarded(&limits, || parse(sql)) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        let mut out = Vec::with_capacity(stmts.len());
        for (i, s) in stmts.iter().enumerate() {
            let r = if i == 0 { self.run_limited(s, &[], &limits) } else { self.run(s, &[]) };
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        if sql.len() >= 1 << 20 {
            // The syntax trees of a long statement (a million-item IN list) take a while to
            // free; the client's answer (a cancel's above all) does not wait for it.
            crate::query::guard::free_elsewhere(stmts);
        }
        out
    }

    /// The types of the columns an INSERT writes, in its column list's order (all of a table's
    /// columns when it has none); `Unknown` for a datastore column not declared yet.
    pub(crate) fn insert_target_types(&self, ins: &ast::Insert) -> Vec<SqlType> {
        let name = ins.table.to_string().to_ascii_lowercase();
        let cols: Vec<String> = ins.columns.iter().map(|c| c.to_string().to_ascii_lowercase()).collect();
        if let Ok(t) = self.engine.table(&name) {
            let all: Vec<(String, SqlType)> =
                t.schema().columns.iter().map(|c| (c.name.clone(), type_of_oid(c.type_tag, c.data_type))).collect();
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
        }
    }

    /// The types a statement's parameters take from their use, as PostgreSQL infers them for
    /// Describe: `col = $1` gives col's type, `$1::int8` int8, `INSERT INTO t VALUES ($1, …)`
    /// the target columns' types. `$n` absent from the map are left to the client (text).
    pub fn param_types(&self, stmt: &Statement) -> std::collections::BTreeMap<usize, SqlType> {
        let _stack = crate::query::guard::stack_base();
        let Statement::Sql(s) = stmt else { return Default::default() };
        let b = self.binder(&[]);
        match s.as_ref() {
            ast::Statement::Query(q) => {
                let _ = b.bind_query(q);
            }
            ast::Statement::Insert(ins) => {
                let target_types = self.insert_target_types(ins);
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
        let _stack = crate::query::guard::stack_base();
        match stmt {
            Statement::Sql(s) => match s.as_ref() {
                ast::Statement::Query(q) => {
                    let b = Binder::new(&self.engine, EvalCtx { now: now_micros() }, params)
                        .with_datasets(self.dataset_source());
                    match b.bind_query(q) {
                        Ok((_, schema)) => Ok(Some(client_schema(schema))),
                        // A parameter's absent value may not bind everywhere (LIMIT $1):
                        // then the types alone decide, as before.
                        Err(_) if !params.is_empty() => {
                            let b = Binder::new(&self.engine, EvalCtx { now: now_micros() }, &[])
                                .with_datasets(self.dataset_source());
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
                    services: self.services.clone(),
                    engine: self.engine.clone(),
                    settings: self.settings.clone(),
                    in_transaction: false,
                    limits: self.limits.clone(),
                    copying: None,
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
        let limits = self.statement_limits();
        self.run_limited(stmt, params, &limits)
    }

    /// [`Session::run`] under `limits` (a statement whose parse they already covered).
    fn run_limited(
        &mut self,
        stmt: &Statement,
        params: &[Param],
        limits: &crate::query::guard::QueryLimits,
    ) -> SqlResult<Outcome> {
        let _stack = crate::query::guard::stack_base();
        crate::query::guard::run_guarded(limits, || self.run_statement(stmt, params))
    }

    /// The session's query limits with the deadline `statement_timeout` sets from now.
    fn statement_limits(&self) -> crate::query::guard::QueryLimits {
        let mut limits = self.limits.clone();
        limits.deadline = self
            .setting("statement_timeout")
            .and_then(parse_duration_setting)
            .filter(|d| !d.is_zero())
            .map(|d| std::time::Instant::now() + d);
        limits
    }

    fn run_statement(&mut self, stmt: &Statement, params: &[Param]) -> SqlResult<Outcome> {
        let e = &self.engine;
        match stmt {
            Statement::CreateChannel { name, if_not_exists, options } => {
                check_options(options, &["retention", "retention_period"], "channel")?;
                let retention = parse_retention(options)?;
                created(e.create_channel(name, retention).map(drop), *if_not_exists, "CREATE CHANNEL")
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
                    Err(crate::Error::AlreadyExists { .. }) if *if_not_exists => {}
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
                        Err(crate::Error::NotFound { .. }) if *if_exists => {}
                        r => r?,
                    }
                }
                Ok(Outcome::Done("DROP ROUTE".into()))
            }
            Statement::Drop { kind, names, if_exists } => {
                for n in names {
                    self.refuse_drop_in_use(*kind, n)?;
                    let r = match kind {
                        ObjectKind::Channel => self.engine.drop_channel(n),
                        ObjectKind::Datastore => self.engine.drop_datastore(n),
                        ObjectKind::Pipeline => self.pipelines()?.drop_pipeline(n),
                        ObjectKind::Dataset => self.datasets()?.drop_dataset(n),
                        _ => return Err(SqlError::unsupported(format!("DROP {}", kind.name()))),
                    };
                    match r {
                        Err(crate::Error::NotFound { .. }) if *if_exists => {}
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
                self.engine.set_retention(*kind == ObjectKind::Datastore, name, days)?;
                Ok(Outcome::Done(format!("ALTER {}", kind.name().to_ascii_uppercase())))
            }
            Statement::Sample { name, limit, from, to } => self.sample_channel(name, *limit, from, to),
            Statement::CreatePipeline { spec, if_not_exists } => {
                pipeline_result(self.pipelines()?.create(spec.clone(), *if_not_exists).map(drop), "CREATE PIPELINE")
            }
            Statement::AlterPipeline(spec) => pipeline_result(self.pipelines()?.alter(spec.clone()), "ALTER PIPELINE"),
            Statement::TestPipeline { name, messages } => self.test_pipeline(name, messages),
            Statement::ReprocessPipeline { name, from, to } => {
                let at = |s: &Option<String>| -> SqlResult<Option<i64>> {
                    s.as_deref()
                        .map(|t| {
                            crate::query::scalar::parse_timestamp(t).ok_or_else(|| {
                                SqlError::new("22007", format!("invalid input syntax for type timestamp: \"{t}\""))
                            })
                        })
                        .transpose()
                };
                let (from, to) = (at(from)?, at(to)?);
                let id = self.pipelines()?.reprocess(name, from, to)?;
                let (schema, batches) = text_batch(&["reprocessing_id"], vec![vec![Some(id.to_string())]]);
                Ok(Outcome::Rows { schema, batches })
            }
            Statement::ShowReprocessing => self.show_reprocessing(),
            Statement::CreateDataset { name, if_not_exists, query, options } => {
                self.check_dataset_query(query)?;
                match self.datasets()?.create(name, query, options, *if_not_exists) {
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
                    r => r.map(|()| Outcome::Done("ALTER DATASET".into())).map_err(SqlError::from),
                }
            }
            Statement::Checkpoint => {
                self.engine.checkpoint().map_err(SqlError::from)?;
                Ok(Outcome::Done("CHECKPOINT".into()))
            }
            Statement::RefreshDataset(name) => {
                let v = self.datasets()?.refresh(name).map_err(SqlError::from)?;
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
                    .map_err(SqlError::from)?
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
                // the new content (as PostgreSQL re-checks rows at READ COMMITTED). Writers that
                // keep colliding back off a little longer each time (with jitter, so they fall
                // out of step), for as long as the statement may run: a cancel or
                // statement_timeout ends the waiting.
                let mut tries: u32 = 0;
                loop {
                    match self.run_sql(s, params) {
                        Err(e) if e.sqlstate == "40001" && tries < 1_000 => {
                            tries += 1;
                            crate::query::guard::check()?;
                            let cap = 1u64 << tries.min(6);
                            let jitter = std::hash::BuildHasher::hash_one(
                                &std::collections::hash_map::RandomState::new(),
                                tries,
                            );
                            std::thread::sleep(std::time::Duration::from_micros(500 * (jitter % cap + 1)));
                        }
                        r => return r,
                    }
                }
            }
        }
    }

    fn datasets(&self) -> SqlResult<Arc<crate::dataset::Datasets>> {
        let d = self.services.datasets.clone();
        d.start();
        Ok(d)
    }

    /// The datasets as the binder reads them (without starting their scheduler).
    fn dataset_source(&self) -> Option<Arc<dyn crate::query::bind::DatasetSource>> {
        self.services.dataset_source()
    }

    fn pipelines(&self) -> SqlResult<Arc<Pipelines>> {
        let p = self.services.pipelines.clone();
        p.start();
        Ok(p)
    }

    fn binder<'a>(&'a self, params: &'a [Param]) -> Binder<'a> {
        Binder::new(&self.engine, EvalCtx { now: now_micros() }, params).with_datasets(self.dataset_source())
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
                    let (batches, profile) = crate::query::exec::run_profiled(&plan)?;
                    let rows: usize = batches.iter().map(|x| x.num_rows()).sum();
                    plan.explain(0, Some(&profile), &mut lines);
                    lines.push(format!("Execution Time: {:.3} ms ({rows} rows)", t.elapsed().as_secs_f64() * 1e3));
                } else {
                    plan.explain(0, None, &mut lines);
                }
                let (schema, batches) = text_batch(&["QUERY PLAN"], lines.into_iter().map(|l| vec![Some(l)]).collect());
                Ok(Outcome::Rows { schema, batches })
            }
            // Clients (psycopg after DDL, connection pools) free their prepared statements and
            // reset their sessions; statements prepared over the protocol are the server's to keep.
            S::Deallocate { name, .. } => Ok(Outcome::Done(
                if name.value.eq_ignore_ascii_case("all") { "DEALLOCATE ALL" } else { "DEALLOCATE" }.into(),
            )),
            S::Discard { object_type } => {
                if matches!(object_type, ast::DiscardObject::ALL) {
                    let idle = self.settings.get("idle_session_timeout").cloned();
                    self.settings = DEFAULT_SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    if let Some(v) = idle {
                        self.settings.insert("idle_session_timeout".into(), v);
                    }
                }
                Ok(Outcome::Done(format!("DISCARD {object_type}")))
            }
            S::CreateTable(ct) => self.create_table(ct),
            S::AlterTable(at) => self.alter_table(at),
            S::Drop { object_type: ast::ObjectType::Table, if_exists, names, .. } => {
                for n in names {
                    let name = n.to_string().to_ascii_lowercase();
                    match self.engine.drop_table(&name) {
                        Err(crate::Error::NotFound { .. }) if *if_exists => {}
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
}

/// A column name as written: folded to lower case unless quoted.
fn ident_name(i: &ast::Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
}

impl Session {
    /// A channel that pipelines or routes read, or a datastore that pipelines write, is not
    /// dropped from under them (2BP01, as PostgreSQL refuses to drop what others depend on):
    /// they would stall on a name that is gone, or come back to life if it is made again.
    fn refuse_drop_in_use(&mut self, kind: ObjectKind, name: &str) -> SqlResult<()> {
        let mut users: Vec<String> = match kind {
            ObjectKind::Channel | ObjectKind::Datastore => self
                .pipelines()?
                .definitions()
                .into_iter()
                .filter(|d| if kind == ObjectKind::Channel { d.channel == name } else { d.datastore == name })
                .map(|d| format!("pipeline {}", d.name))
                .collect(),
            _ => return Ok(()),
        };
        if kind == ObjectKind::Channel {
            users.extend(
                self.ingest()?.routes().into_iter().filter(|r| r.channel == name).map(|r| format!("route {}", r.name)),
            );
        }
        if users.is_empty() {
            return Ok(());
        }
        Err(SqlError::new(
            "2BP01",
            format!("cannot drop {} \"{name}\" because other objects depend on it: {}", kind.name(), users.join(", ")),
        )
        .with_hint("Drop those first (DROP PIPELINE …, DROP ROUTE …)."))
    }
}

fn pipeline_result(r: crate::Result<()>, tag: &str) -> SqlResult<Outcome> {
    r.map(|()| Outcome::Done(tag.into())).map_err(SqlError::from)
}

fn schema_of_table(t: &TableSchema) -> Vec<OutCol> {
    t.columns.iter().map(|c| OutCol { name: c.name.clone(), ty: type_of_oid(c.type_tag, c.data_type) }).collect()
}

/// What clients see: unknown-typed results (bare string literals) are text.
pub fn client_schema(schema: Vec<OutCol>) -> Vec<OutCol> {
    schema.into_iter().map(|c| if c.ty == SqlType::Unknown { OutCol { ty: SqlType::Text, ..c } } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;

    fn session(dir: &std::path::Path) -> Session {
        let (engine, _) = Engine::open(dir, EngineConfig::default()).unwrap();
        Session::new(super::super::Services::of(&engine).unwrap())
    }

    fn tag(s: &mut Session, sql: &str) -> String {
        match s.execute(sql).pop().unwrap() {
            Ok(Outcome::Done(t)) => t,
            Ok(Outcome::Rows { .. }) => "rows".into(),
            Ok(_) => "other".into(),
            Err(e) => format!("{} {}", e.sqlstate, e.message),
        }
    }

    /// Each statement kind reaches its handler and answers with PostgreSQL's command tag.
    #[test]
    fn every_statement_kind_reaches_its_handler() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path());
        for (sql, want) in [
            ("CREATE CHANNEL c", "CREATE CHANNEL"),
            ("CREATE DATASTORE d (machine_id TEXT, v DOUBLE PRECISION)", "CREATE DATASTORE"),
            ("CREATE TABLE m (id TEXT PRIMARY KEY, model TEXT)", "CREATE TABLE"),
            ("INSERT INTO m VALUES ('M-1', 'press'), ('M-2', 'lathe')", "INSERT 0 2"),
            ("UPDATE m SET model = 'mill' WHERE id = 'M-2'", "UPDATE 1"),
            ("DELETE FROM m WHERE id = 'M-1'", "DELETE 1"),
            ("CREATE PIPELINE p FROM CHANNEL c FILTER v > 0 INTO DATASTORE d", "CREATE PIPELINE"),
            ("CREATE DATASET ds AS SELECT count(*) FROM d", "CREATE DATASET"),
            ("SHOW CHANNELS", "rows"),
            ("SHOW PIPELINES", "rows"),
            ("DESCRIBE d", "rows"),
            ("SET statement_timeout = '5s'", "SET"),
            ("BEGIN", "BEGIN"),
            ("COMMIT", "COMMIT"),
            ("CHECKPOINT", "CHECKPOINT"),
            ("DROP PIPELINE p", "DROP PIPELINE"),
        ] {
            assert_eq!(tag(&mut s, sql), want, "{sql}");
        }
        assert_eq!(s.setting("statement_timeout"), Some("5s"));
        assert_eq!(
            s.text_rows("SELECT id, model FROM m").unwrap(),
            [[Some("M-2".to_string()), Some("mill".to_string())]]
        );
        // Not implemented yet: said so, not mistaken for something else.
        assert!(tag(&mut s, "SAMPLE PIPELINE p").starts_with("0A000"), "{}", tag(&mut s, "SAMPLE PIPELINE p"));
    }

    /// A list of statements stops at the first error; what ran before it stays done.
    #[test]
    fn a_statement_list_stops_at_the_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path());
        let out = s.execute("CREATE CHANNEL a; CREATE CHANNEL a; CREATE CHANNEL b");
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], Ok(Outcome::Done(t)) if t == "CREATE CHANNEL"));
        assert_eq!(out[1].as_ref().err().map(|e| e.sqlstate), Some("42P07"));
        assert_eq!(s.text_rows("SHOW CHANNELS").unwrap().len(), 1);
    }

    #[test]
    fn values_of_an_insert_take_their_target_columns_types() {
        // As in PostgreSQL, each value is assigned its column's type: 'NaN' beside a 1 goes
        // into a double precision column (the list's common type, integer, refused it).
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path());
        s.text_rows("CREATE TABLE f (v DOUBLE PRECISION, n BIGINT, t TEXT)").unwrap();
        s.text_rows("INSERT INTO f VALUES ('NaN', 0, 1), (1, '2', 'x')").unwrap();
        s.text_rows("INSERT INTO f (n, v) VALUES (3, '-Infinity'), (4, 2.5)").unwrap();
        let rows = s.text_rows("SELECT v, n, t FROM f ORDER BY n").unwrap();
        let rows: Vec<Vec<String>> =
            rows.into_iter().map(|r| r.into_iter().map(|v| v.unwrap_or_else(|| "NULL".into())).collect()).collect();
        assert_eq!(rows, [["NaN", "0", "1"], ["1", "2", "x"], ["-Infinity", "3", "NULL"], ["2.5", "4", "NULL"]]);
        // A value its column's type cannot hold is refused as PostgreSQL refuses it.
        let e = s.text_rows("INSERT INTO f (n) VALUES ('abc'), (1)").unwrap_err();
        assert_eq!(e.sqlstate, "22P02", "{}", e.message);
        // Not through a subquery: there, VALUES has its own type (text), as in PostgreSQL.
        let e = s.text_rows("INSERT INTO f SELECT * FROM (VALUES ('2', 5, 'y')) x").unwrap_err();
        assert_eq!(e.sqlstate, "42804", "{}", e.message);
    }
}
