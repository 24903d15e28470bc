//! The PostgreSQL wire protocol server (pgwire on tokio). Each connection gets its own
//! [`Session`]; statements run on the blocking pool's terms (`block_in_place`) because storage
//! calls wait for fsync. Authentication: trust (connections are accepted on loopback only by
//! default; see the README).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Sink, SinkExt, stream};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password, random_nonce};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo,
    QueryResponse, Response, Tag,
};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;

use super::prepared::{Parser, Prepared};
use super::rows::{Copying, ResultRows};
use super::wire::{decode_param, error_info, pg_type, to_pg_error};
use crate::command::session::{CopyPiece, Outcome, Session};
use crate::query::error::SqlError;
use crate::query::plan::OutCol;
use crate::query::scalar::Param;
use crate::query::types::SqlType;

/// What `fleetdb serve` configures for its SQL clients.
#[derive(Clone)]
pub struct ServerOptions {
    /// Clients must authenticate with SCRAM-SHA-256 using this password (any user name).
    /// `None` trusts every client, which is allowed only on a loopback address.
    pub password: Option<String>,
    /// Working memory of one query, in bytes.
    pub query_memory: usize,
    /// Connection and message limits.
    pub conn: ConnLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            password: None,
            query_memory: crate::query::guard::DEFAULT_QUERY_MEMORY,
            conn: ConnLimits::default(),
        }
    }
}

/// One connection's handlers and session.
pub struct Connection {
    session: Mutex<Session>,
    /// Where cancel requests find this connection's running query.
    manager: Arc<ConnectionManager>,
    parser: Arc<Parser>,
    /// A COPY FROM STDIN in progress: what it loads, data not yet loaded, rows loaded so far.
    copy: Mutex<PendingCopy>,
    /// Parameter types inferred per statement text (at Describe), reused at each execution.
    inferred: Mutex<HashMap<String, Arc<InferredParams>>>,
    /// The largest message accepted (for the error a larger query gets).
    max_message: usize,
}

/// COPY data is loaded in pieces of about this many bytes as it arrives (memory stays bounded).
const COPY_CHUNK: usize = 4 << 20;

type PendingCopy = Option<Copying>;

fn lock_copy(c: &Mutex<PendingCopy>) -> std::sync::MutexGuard<'_, PendingCopy> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock(s: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn fields(schema: &[OutCol], format: &Format) -> Vec<FieldInfo> {
    schema
        .iter()
        .enumerate()
        .map(|(i, c)| FieldInfo::new(column_label(&c.name), None, None, pg_type(c.ty), format.format_for(i)))
        .collect()
}

/// A result column's name as the client sees it: at most 63 bytes (PostgreSQL's NAMEDATALEN - 1),
/// cut at a character boundary, as PostgreSQL truncates identifiers.
fn column_label(name: &str) -> String {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return name.to_string();
    }
    let cut = (0..=MAX).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
    name[..cut].to_string()
}

/// Encodes a statement's outcome as a pgwire response; a COPY FROM STDIN is remembered so
/// that the data that follows can be loaded.
fn response(conn: &Connection, outcome: Outcome, format: &Format) -> PgWireResult<Response> {
    match outcome {
        Outcome::CopyIn(spec) => {
            let width = spec.width;
            *lock_copy(&conn.copy) = Some(Copying::new(spec));
            Ok(Response::CopyIn(CopyResponse::new(0, width, stream::empty())))
        }
        Outcome::CopyOut { columns, lines } => {
            // Charged to the server's memory until sent, as rows are (see `ResultRows`).
            let held =
                lock(&conn.session).limits.pool.as_ref().map(|p| {
                    crate::util::memory::Reservation::anyway(p, lines.iter().map(|l| l.capacity() + 48).sum())
                });
            let data = lines.into_iter().map(move |l| {
                let _kept_until_sent = &held;
                Ok(CopyData::new(bytes::Bytes::from(l)))
            });
            Ok(Response::CopyOut(CopyResponse::new(0, columns, stream::iter(data))))
        }
        Outcome::Done(tag) => {
            // "INSERT 0 5" / "UPDATE 3" / "DELETE 2" carry counts; others are bare.
            let mut parts = tag.rsplitn(2, ' ');
            let last = parts.next().unwrap_or("");
            let rest = parts.next();
            Ok(Response::Execution(match (rest, last.parse::<usize>()) {
                (Some(cmd), Ok(n)) => Tag::new(cmd).with_rows(n),
                _ => Tag::new(&tag),
            }))
        }
        Outcome::Rows { schema, batches } => {
            if schema.len() > crate::query::bind::MAX_COLUMNS {
                return Err(to_pg_error(crate::query::bind::too_many_columns()));
            }
            check_result_formats(format, schema.len())?;
            let info = Arc::new(fields(&schema, format));
            // The result stays charged to the server's memory until it is sent (the query's
            // own charge ended with it); rows are encoded as the client takes them.
            let held = lock(&conn.session)
                .limits
                .pool
                .as_ref()
                .map(|p| crate::util::memory::Reservation::anyway(p, crate::query::guard::size_of(&batches)));
            let rows = ResultRows {
                enc: DataRowEncoder::new(info.clone()),
                schema,
                batches: batches.into_iter(),
                current: None,
                row: 0,
                held,
            };
            let mut q = QueryResponse::new(info, stream::iter(rows));
            q.set_command_tag("SELECT");
            Ok(Response::Query(q))
        }
    }
}

impl Connection {
    /// Runs `f` on the session, on this thread, while a task turns a cancel request for this
    /// connection into the session's cancel flag.
    ///
    /// A panic while running (a defect) becomes an XX000 error for this statement; the
    /// connection and the server go on.
    async fn with_session<C: ClientInfo, R>(
        &self,
        client: &C,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Result<R, SqlError> {
        let cancel = lock(&self.session).limits.cancel.clone();
        cancel.store(false, std::sync::atomic::Ordering::Relaxed);
        let watcher = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => {
                let rx = handle.start_query().await;
                let flag = cancel.clone();
                Some(tokio::spawn(async move {
                    if rx.await.is_ok() {
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }))
            }
            None => None,
        };
        let r = self.on_session(f);
        if let Some(w) = watcher {
            w.abort();
        }
        r
    }

    /// Runs `f` on the session, on this thread. A panic while running (a defect) becomes an
    /// XX000 error for this statement; the connection and the server go on.
    fn on_session<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Result<R, SqlError> {
        let r = tokio::task::block_in_place(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut lock(&self.session))))
        });
        r.map_err(|p| {
            let what = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("unknown");
            SqlError::new("XX000", format!("internal error, the statement was abandoned: {what}"))
        })
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(size) = query.strip_prefix(super::framing::TOO_LARGE_MARKER) {
            let size = size.trim_end_matches(" bytes*/");
            let e = SqlError::new(
                "54000",
                format!(
                    "statement too large: the query message is {size} bytes, more than the limit of {} bytes",
                    self.max_message
                ),
            )
            .with_hint("Send large data with COPY, or raise --max-message-size.");
            return Ok(vec![Response::Error(Box::new(error_info(e)))]);
        }
        let results = self.with_session(client, |s| s.execute(query)).await.unwrap_or_else(|e| vec![Err(e)]);
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(o) => out.push(response(self, o, &Format::UnifiedText)?),
                Err(e) => {
                    out.push(Response::Error(Box::new(error_info(e))));
                    break;
                }
            }
        }
        Ok(out)
    }
}

fn protocol_violation(message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".to_string(), "08P01".to_string(), message)))
}

/// A Bind's result format codes: none (all text), one for every column, or one per column;
/// each 0 (text) or 1 (binary). Anything else is refused as PostgreSQL refuses it, rather than
/// read past or taken as text.
fn check_result_formats(format: &Format, columns: usize) -> PgWireResult<()> {
    if let Format::Individual(codes) = format {
        if codes.len() != columns {
            return Err(protocol_violation(format!(
                "bind message has {} result formats but query has {columns} columns",
                codes.len()
            )));
        }
        check_format_codes(codes)?;
    }
    Ok(())
}

fn check_format_codes(codes: &[i16]) -> PgWireResult<()> {
    match codes.iter().find(|&&c| c != 0 && c != 1) {
        Some(c) => Err(PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".to_string(),
            "22023".to_string(),
            format!("unsupported format code: {c}"),
        )))),
        None => Ok(()),
    }
}

/// Two result descriptions a client decodes alike: as many columns, of the same wire types.
fn same_shape(a: &[OutCol], b: &[OutCol]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| pg_type(x.ty) == pg_type(y.ty))
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// Describe of a statement: its parameters, then its row description, or NoData when it
    /// returns no rows (an INSERT with parameters, say), as PostgreSQL answers it. pgwire's own
    /// answer sends an empty row description when there are parameters, which pgjdbc reads as
    /// rows to come.
    async fn on_describe<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Describe,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::store::Entry;
        use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let d = self.do_describe_statement(client, &stmt).await?;
                let oids = d.parameters.iter().map(Type::oid).collect();
                client.send(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
                let last = if d.fields.is_empty() {
                    PgWireBackendMessage::NoData(NoData::new())
                } else {
                    PgWireBackendMessage::RowDescription(RowDescription::new(d.fields.iter().map(Into::into).collect()))
                };
                client.send(last).await?;
                return Ok(());
            }
        }
        self._on_describe(client, message).await
    }

    /// Bind, after the checks PostgreSQL makes: as many parameters as the statement has, and
    /// parameter and result format codes that are 0 or 1, given for none, all or each.
    async fn on_bind<C>(&self, client: &mut C, message: pgwire::messages::extendedquery::Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::store::Entry;
        let statement_name = message.statement_name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let statement = match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(s)) => Some(s),
            Some(Entry::Empty) => None,
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        };
        let wanted = statement.as_ref().map_or(0, |s| s.statement.dollar_params().max(s.parameter_types.len()));
        let given = message.parameters.len();
        if given != wanted {
            return Err(protocol_violation(format!(
                "bind message supplies {given} parameters, but prepared statement \"{}\" requires {wanted}",
                if statement_name == pgwire::api::DEFAULT_NAME { "" } else { statement_name }
            )));
        }
        let formats = message.parameter_format_codes.len();
        if formats > 1 && formats != given {
            return Err(protocol_violation(format!(
                "bind message has {formats} parameter formats but {given} parameters"
            )));
        }
        check_format_codes(&message.parameter_format_codes)?;
        check_format_codes(&message.result_column_format_codes)?;
        // One result format per column must match the columns, checked here as PostgreSQL
        // does (not at Describe or Execute, after BindComplete).
        if let Some(s) = &statement
            && message.result_column_format_codes.len() > 1
        {
            let columns = self.result_fields(s, &Format::UnifiedText)?.len();
            let n = message.result_column_format_codes.len();
            if n != columns {
                return Err(protocol_violation(format!(
                    "bind message has {n} result formats but query has {columns} columns"
                )));
            }
        }
        match statement {
            Some(s) => {
                let portal = Portal::try_new(&message, s)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            None => client
                .portal_store()
                .put_empty_portal(message.portal_name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME)),
        }
        client.send(PgWireBackendMessage::BindComplete(pgwire::messages::extendedquery::BindComplete::new())).await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let typed = self.param_types(&portal.statement, portal.parameters.len());
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, (p, (ty, sql_ty))) in portal.parameters.iter().zip(typed).enumerate() {
            let binary = portal.parameter_format.format_for(i) == FieldFormat::Binary;
            let text = match p {
                None => None,
                Some(bytes) => {
                    // As PostgreSQL: bytes that are not UTF-8 are 22021, a malformed binary value 22P03.
                    Some(decode_param(bytes, binary, ty.as_ref()).map_err(|e| {
                        let e = e.to_string();
                        to_pg_error(SqlError::new(if e.contains("UTF-8") { "22021" } else { "22P03" }, e))
                    })?)
                }
            };
            params.push(Param { text, ty: sql_ty });
        }
        let outcome = self
            .with_session(client, |s| s.run(prepared.statement(), &params))
            .await
            .and_then(|r| r)
            .map_err(to_pg_error)?;
        // Rows unlike what Describe said (the tables changed in between): refused as PostgreSQL
        // refuses them, never sent under the old description.
        if let Outcome::Rows { schema, .. } = &outcome
            && let Ok(Some(described)) = prepared.described(|_| Ok(Some(schema.clone())))
            && !same_shape(described, schema)
        {
            // The routine PostgreSQL names: pgjdbc prepares the statement again when it sees it.
            let mut info = error_info(SqlError::new("0A000", "cached plan must not change result type"));
            info.routine = Some("RevalidateCachedQuery".into());
            return Err(PgWireError::UserError(Box::new(info)));
        }
        response(self, outcome, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let n = target.statement.dollar_params();
        let inferred = self.inferred_params(&target.statement);
        let param_types: Vec<Type> = (0..n)
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| inferred.get(&(i + 1)).map(|t| pg_type(*t)).unwrap_or(Type::TEXT))
            })
            .collect();
        // Result formats are chosen at Bind: a described statement's fields all say text (0),
        // as PostgreSQL's do; a client reads the formats it asked for from Describe Portal.
        Ok(DescribeStatementResponse::new(param_types, self.result_fields(target, &Format::UnifiedText)?))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.result_fields(&portal.statement, &Format::UnifiedText)?;
        check_result_formats(&portal.result_column_format, fields.len())?;
        let fields = fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                FieldInfo::new(
                    f.name().to_string(),
                    None,
                    None,
                    f.datatype().clone(),
                    portal.result_column_format.format_for(i),
                )
            })
            .collect();
        Ok(DescribePortalResponse::new(fields))
    }
}

type InferredParams = std::collections::BTreeMap<usize, SqlType>;

impl Connection {
    /// The type of each of the `n` parameters of `stmt` (parsed from `target`): the one the
    /// client declared at Parse, else the one its use implies (what Describe sent). Execution
    /// and the result description both bind with these, so what is described is what is sent.
    fn param_types(&self, target: &StoredStatement<Prepared>, n: usize) -> Vec<(Option<Type>, SqlType)> {
        let declared = &target.parameter_types;
        let inferred = if (0..n).any(|i| declared.get(i).is_none_or(|t| t.is_none())) {
            self.inferred_params(&target.statement)
        } else {
            Default::default()
        };
        (0..n)
            .map(|i| {
                let ty = declared.get(i).cloned().flatten().or_else(|| inferred.get(&(i + 1)).map(|t| pg_type(*t)));
                let sql_ty = ty
                    .as_ref()
                    .map(|t| crate::query::bind::type_of_oid(t.oid(), crate::batch::DataType::Text))
                    .unwrap_or(SqlType::Unknown);
                // A declared text type still lets context decide, as PostgreSQL's unknown does.
                let sql_ty =
                    if sql_ty == SqlType::Text && ty.as_ref() != Some(&Type::TEXT) { SqlType::Unknown } else { sql_ty };
                (ty, sql_ty)
            })
            .collect()
    }

    /// The parameter types of a statement as their use implies; worked out once per statement
    /// text (clients parse the same text again and again as an unnamed statement).
    fn inferred_params(&self, prepared: &Prepared) -> Arc<InferredParams> {
        let sql = prepared.sql();
        if let Some(t) = self.inferred.lock().unwrap_or_else(|e| e.into_inner()).get(sql) {
            return t.clone();
        }
        let t = Arc::new(self.on_session(|s| s.param_types(prepared.statement())).unwrap_or_default());
        let mut cache = self.inferred.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(sql.to_string(), t.clone());
        t
    }

    /// The idle-session timeout in force: the session's `idle_session_timeout` (PostgreSQL's
    /// units; 0 turns it off), which starts as the server's. Not while a transaction is open.
    fn idle_session_timeout(&self) -> Option<std::time::Duration> {
        let s = lock(&self.session);
        if s.in_transaction() {
            return None;
        }
        s.setting("idle_session_timeout")
            .and_then(crate::query::settings::parse_duration_setting)
            .filter(|d| !d.is_zero())
    }

    /// The columns a statement returns, as row-description fields (none for commands); bound
    /// at the first Describe or Bind and kept with the statement.
    fn result_fields(&self, target: &StoredStatement<Prepared>, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
        let prepared = &target.statement;
        let n = prepared.dollar_params().max(target.parameter_types.len());
        let schema = prepared
            .described(|stmt| {
                let params: Vec<Param> =
                    self.param_types(target, n).into_iter().map(|(_, ty)| Param { text: None, ty }).collect();
                self.on_session(|s| s.describe_with(stmt, &params)).and_then(|r| r)
            })
            .map_err(to_pg_error)?;
        if schema.as_ref().is_some_and(|s| s.len() > crate::query::bind::MAX_COLUMNS) {
            return Err(to_pg_error(crate::query::bind::too_many_columns()));
        }
        Ok(schema.map(|s| fields(s, format)).unwrap_or_default())
    }
}

impl NoopStartupHandler for Connection {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.manager.clone())
    }
}

/// The configured password, salted and hashed afresh for each SCRAM exchange.
#[derive(Debug)]
struct PasswordSource {
    password: String,
}

#[async_trait]
impl AuthSource for PasswordSource {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        let salt = random_nonce().into_bytes();
        let hashed = gen_salted_password(&self.password, &salt, SCRAM_ITERATIONS);
        Ok(Password::new(Some(salt), hashed))
    }
}

const SCRAM_ITERATIONS: usize = 4096;

/// Trust (no password configured) or SCRAM-SHA-256.
enum Startup {
    Trust(Arc<Connection>),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Trust(c) => c.on_startup(client, message).await,
            Startup::Scram(s) => s.on_startup(client, message).await,
        }
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut pending = lock_copy(&self.copy);
        let Some(c) = pending.as_mut() else { return Ok(()) };
        if c.held.is_none() {
            let (pool, row_limit) =
                self.on_session(|s| (s.limits.pool.clone(), s.limits.memory)).map_err(to_pg_error)?;
            c.held = pool.map(|p| crate::util::memory::Reservation::new(&p));
            c.row_limit = row_limit;
        }
        // The data not loaded yet is charged to the server's memory before it grows, and a
        // row (which is loaded only when whole) may not outgrow a query's working memory: a
        // row that never ends is refused, not buffered.
        let want = c.buf.len() + copy_data.data.len();
        if want > c.row_limit.saturating_add(COPY_CHUNK) {
            let mib = c.row_limit >> 20;
            *pending = None;
            return Err(to_pg_error(
                SqlError::new("54000", format!("COPY row is longer than a query's working memory ({mib} MiB)"))
                    .with_hint("End each row with a newline; for longer rows raise --query-memory."),
            ));
        }
        if let Some(h) = c.held.as_mut()
            && !h.resize(want.max(c.buf.capacity()))
        {
            let (used, limit) = (h.pool_used() >> 20, h.pool_limit() >> 20);
            *pending = None;
            return Err(to_pg_error(
                SqlError::new(
                    "53200",
                    format!("out of memory: queries, flushes and COPY data together hold {used} MiB of the server's {limit} MiB for them"),
                )
                .with_hint("Retry when other queries have finished, or raise --memory-limit."),
            ));
        }
        c.buf.extend_from_slice(&copy_data.data);
        if c.buf.len() >= c.looked_at + COPY_CHUNK {
            let n = crate::query::copy::complete_prefix(&c.spec.format, &c.buf);
            c.looked_at = if n == 0 { c.buf.len() } else { 0 };
            if n > 0 {
                let rest = c.buf.split_off(n);
                let rows = std::mem::replace(&mut c.buf, rest);
                let spec = &c.spec;
                match self.on_session(|s| s.copy_in(spec, &rows, CopyPiece::More)).and_then(|r| r) {
                    Ok(k) => c.loaded += k,
                    Err(e) => {
                        *pending = None;
                        return Err(to_pg_error(e));
                    }
                }
                drop(rows);
                if let Some(h) = c.held.as_mut() {
                    h.resize(c.buf.capacity());
                }
                // A header line is only in the first piece.
                if let crate::query::copy::CopyFormat::Csv { header, .. } = &mut c.spec.format {
                    *header = false;
                }
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pending = lock_copy(&self.copy).take();
        let Some(c) = pending else {
            return Err(to_pg_error(SqlError::new("08P01", "CopyDone without a COPY in progress")));
        };
        let n = c.loaded
            + self.on_session(|s| s.copy_in(&c.spec, &c.buf, CopyPiece::Last)).and_then(|r| r).map_err(to_pg_error)?;
        client.send(PgWireBackendMessage::CommandComplete(Tag::new("COPY").with_rows(n).into())).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        lock_copy(&self.copy).take();
        let _ = self.on_session(|s| s.copy_abort());
        to_pg_error(SqlError::new("57014", format!("COPY from stdin failed: {}", fail.message)))
    }
}

/// Hands each connection its handlers.
pub struct ConnectionFactory {
    conn: Arc<Connection>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

/// Limits on connections and the messages they send (see module [`super::framing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Sessions at once; one more is answered 53300 (cancel requests still get through).
    pub max_connections: usize,
    /// Largest message after authentication (a query, a Bind, COPY data).
    pub max_message: usize,
    /// Largest message before authentication: the startup packet, passwords.
    pub max_startup_message: usize,
    /// From connecting to being authenticated.
    pub authentication_timeout: std::time::Duration,
    /// A session idle outside a transaction for this long is closed (57P05); `None`: never.
    /// Each session starts with it as its `idle_session_timeout`, which it may change.
    pub idle_session_timeout: Option<std::time::Duration>,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 100,
            max_message: 64 << 20,
            max_startup_message: 10_000,
            authentication_timeout: std::time::Duration::from_secs(60),
            idle_session_timeout: None,
        }
    }
}

/// Sends a FATAL error and nothing after it: as PostgreSQL, the connection then closes, with
/// no ReadyForQuery (pgwire's `process_error` sends one).
async fn send_fatal<S>(socket: &mut S, e: PgWireError)
where
    S: Sink<PgWireBackendMessage, Error = std::io::Error> + Unpin,
{
    let info: ErrorInfo = e.into();
    let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
}

fn fatal(sqlstate: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".to_string(), sqlstate.to_string(), message)))
}

/// Accepts PostgreSQL clients on `listener` until `shutdown` completes. The listener never
/// closes on an accept error: running out of file descriptors backs off and is reported to
/// `log` (once per episode), and accepting resumes when descriptors free up.
pub async fn serve(
    services: Arc<crate::command::Services>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let manager = Arc::new(ConnectionManager::new());
    let cancel = Arc::new(DefaultCancelHandler::new(manager.clone()));
    let slots = Arc::new(tokio::sync::Semaphore::new(options.conn.max_connections));
    let mut backoff = std::time::Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let socket = match accepted {
                    Ok((socket, _)) => socket,
                    Err(e) => {
                        if backoff.is_zero() {
                            tracing::warn!("accepting a SQL connection failed: {e}; retrying");
                        }
                        backoff = (backoff * 2).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(1));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => continue,
                            _ = &mut shutdown => return Ok(()),
                        }
                    }
                };
                if !backoff.is_zero() {
                    tracing::info!("accepting SQL connections again");
                    backoff = std::time::Duration::ZERO;
                }
                let _ = socket.set_nodelay(true);
                let permit = slots.clone().try_acquire_owned().ok();
                let refusal = permit.is_none().then(|| {
                    fatal("53300", "sorry, too many clients already".to_string())
                });
                let mut session = Session::new(services.clone());
                session.limits.memory = options.query_memory;
                if let Some(d) = options.conn.idle_session_timeout {
                    session.set_setting("idle_session_timeout", &format!("{}ms", d.as_millis()));
                }
                let conn = Arc::new(Connection {
                    session: Mutex::new(session),
                    manager: manager.clone(),
                    parser: Arc::new(Parser),
                    copy: Mutex::new(None),
                    inferred: Mutex::new(HashMap::new()),
                    max_message: options.conn.max_message,
                });
                let startup = Arc::new(match &options.password {
                    None => Startup::Trust(conn.clone()),
                    Some(p) => {
                        let mut scram = ScramAuth::new(Arc::new(PasswordSource { password: p.clone() }));
                        scram.set_iterations(SCRAM_ITERATIONS);
                        Startup::Scram(
                            SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
                                .with_scram(scram)
                                .with_connection_manager(manager.clone()),
                        )
                    }
                });
                let factory = ConnectionFactory { conn, startup, cancel: cancel.clone() };
                let limits = options.conn;
                tokio::spawn(async move {
                    // A client that disconnects mid-message is its own business.
                    let _ = serve_connection(socket, factory, limits, refusal).await;
                    drop(permit);
                });
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// One connection, from the first byte to the last: TLS is refused (`N`), the startup and
/// authentication must finish within `limits.authentication_timeout`, every message is held
/// to its size limit before it is buffered, and an idle session may time out. `refusal`
/// answers the startup message instead of authenticating (too many connections).
async fn serve_connection(
    socket: tokio::net::TcpStream,
    factory: ConnectionFactory,
    limits: ConnLimits,
    refusal: Option<PgWireError>,
) -> Result<(), PgWireError> {
    use futures::{FutureExt, StreamExt};
    use pgwire::api::PgWireConnectionState as St;
    use pgwire::messages::SslNegotiationMetaMessage as Ssl;
    use pgwire::messages::response::{GssEncResponse, SslResponse};
    use pgwire::tokio::server::{PgWireMessageServerCodec, process_error, process_message};

    let addr = socket.peer_addr()?;
    let authenticated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let frame_limits = super::framing::FrameLimits {
        max_startup_message: limits.max_startup_message,
        max_message: limits.max_message,
    };
    let stream = super::framing::GuardedStream::new(socket, frame_limits, authenticated.clone());
    let client = pgwire::api::DefaultClient::new(addr, false);
    let mut socket = tokio_util::codec::Framed::new(stream, PgWireMessageServerCodec::<Prepared>::new(client));
    let conn = factory.conn.clone();
    let (startup, simple, extended, copy, cancel) =
        (factory.startup.clone(), conn.clone(), conn.clone(), conn.clone(), factory.cancel.clone());
    let deadline = tokio::time::Instant::now()
        + if refusal.is_some() {
            limits.authentication_timeout.min(std::time::Duration::from_secs(5))
        } else {
            limits.authentication_timeout
        };
    let mut refusal = refusal;
    loop {
        let state = socket.state();
        let before_auth = matches!(state, St::AwaitingSslRequest | St::AwaitingStartup | St::AuthenticationInProgress);
        authenticated.store(!before_auth, std::sync::atomic::Ordering::Relaxed);
        let idle = if matches!(state, St::ReadyForQuery) { conn.idle_session_timeout() } else { None };
        // The framing checks the extended protocol's messages before pgwire decodes them
        // (framing::BodyCheck); should its decoder still panic on something, that ends this
        // connection (08P01), not the task.
        let read = std::panic::AssertUnwindSafe(socket.next()).catch_unwind();
        let read = async {
            match read.await {
                Ok(m) => m,
                Err(_) => Some(Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".to_string(),
                    "08P01".to_string(),
                    "invalid message format".to_string(),
                ))))),
            }
        };
        let next = if before_auth {
            match tokio::time::timeout_at(deadline, read).await {
                Ok(m) => m,
                Err(_) => {
                    let e = fatal("08006", "canceling authentication due to timeout".to_string());
                    send_fatal(&mut socket, e).await;
                    break;
                }
            }
        } else if let Some(idle) = idle {
            match tokio::time::timeout(idle, read).await {
                Ok(m) => m,
                Err(_) => {
                    let e = fatal("57P05", "terminating connection due to idle-session timeout".to_string());
                    send_fatal(&mut socket, e).await;
                    break;
                }
            }
        } else {
            read.await
        };
        let msg = match next {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(PgWireError::IoError(io))) => {
                if let Some(t) = super::framing::as_too_large(&io) {
                    let (code, what) =
                        if t.length < 4 { ("08P01", "invalid message") } else { ("54000", "message too large") };
                    let e = fatal(code, format!("{what}: {t}"));
                    send_fatal(&mut socket, e).await;
                } else if let Some(m) = super::framing::as_malformed(&io) {
                    send_fatal(&mut socket, fatal("08P01", m.to_string())).await;
                }
                break;
            }
            Some(Err(e)) => {
                send_fatal(&mut socket, e).await;
                break;
            }
        };
        match msg {
            PgWireFrontendMessage::Terminate(_) => break,
            PgWireFrontendMessage::SslNegotiation(Ssl::PostgresSsl(_)) => {
                socket.send(PgWireBackendMessage::SslResponse(SslResponse::Refuse)).await?;
                continue;
            }
            PgWireFrontendMessage::SslNegotiation(Ssl::PostgresGss(_)) => {
                socket.send(PgWireBackendMessage::GssEncResponse(GssEncResponse::Refuse)).await?;
                continue;
            }
            PgWireFrontendMessage::SslNegotiation(_) => {
                socket.set_state(St::AwaitingStartup);
                continue;
            }
            PgWireFrontendMessage::Startup(_) if refusal.is_some() => {
                let e = refusal.take().expect("checked above");
                send_fatal(&mut socket, e).await;
                break;
            }
            _ => {}
        }
        let is_extended_query = match socket.state() {
            St::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let is_cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        if let Err(e) = process_message(
            msg,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await
        {
            if e.is_fatal() {
                send_fatal(&mut socket, e).await;
                break;
            }
            process_error(&mut socket, e, is_extended_query).await?;
        }
        if is_cancel_request {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_labels_are_cut_to_63_bytes_at_a_character() {
        assert_eq!(column_label("n"), "n");
        assert_eq!(column_label(&"a".repeat(1 << 20)), "a".repeat(63));
        // 31 two-byte characters are 62 bytes; the 32nd would end at 64.
        assert_eq!(column_label(&"é".repeat(40)), "é".repeat(31));
    }
}
