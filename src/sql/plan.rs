//! The binder and planner: sqlparser's AST to a typed [`Plan`]. Names are resolved against
//! fleetdb's objects (tables, datastores, channels), literals get PostgreSQL's types (an untyped
//! string takes the type its context needs), constant subexpressions are folded (so
//! `now() - interval '1 day'` is a timestamp literal), and `time` comparisons become the scan's
//! time range, which prunes partitions and blocks.

use std::cell::RefCell;
use std::sync::Arc;

use sqlparser::ast;

use super::agg::{self, AggCall};
use super::catalog;
use super::error::{SqlError, SqlResult};
use super::exec::{JoinKind, OutCol, Plan, ScanStats, SetOp, SortKey, Source, concat, run};
use super::expr::{BinOp, EvalCtx, Expr, Func, cast_scalar, eval};
use super::func;
use super::guard;
use super::scalar::{Param, Scalar, parse_interval, parse_text};
use super::types::SqlType;
use super::window::{self, Bound, Frame, WinFunc, WindowCall};
use crate::batch::{Batch, Column, Field, StrVec, Values};
use crate::engine::Engine;

/// A column visible to expressions.
#[derive(Clone, Debug)]
struct ScopeCol {
    qualifier: Option<String>,
    name: String,
    ty: SqlType,
    /// The right copy of a `JOIN … USING` column: reachable only qualified, not in `*`.
    merged: bool,
    /// Reachable by name only, never in `*` (a datastore's lineage columns).
    hidden: bool,
}

impl ScopeCol {
    /// An ordinary column: in `*`, reachable qualified or not.
    fn new(qualifier: Option<String>, name: String, ty: SqlType) -> ScopeCol {
        ScopeCol { qualifier, name, ty, merged: false, hidden: false }
    }
}

struct Scope {
    cols: Vec<ScopeCol>,
    /// Which columns expressions used (drives which columns the scan decodes).
    used: RefCell<Vec<bool>>,
    /// Index of the `time` column, for time-range extraction.
    time_col: Option<usize>,
}

/// Aggregation state while binding the SELECT list of an aggregate query.
struct AggCtx {
    group_keys: Vec<String>,
    group_exprs: Vec<Expr>,
    agg_keys: Vec<String>,
    aggs: Vec<AggCall>,
}

/// Left-deep operator chains at least this long are bound iteratively. (Shorter ones are
/// bound recursively, which also lets every inner operand match a GROUP BY key.)
const LONG_CHAIN: usize = 64;

/// Most columns a result may have, as PostgreSQL's (`MaxTupleAttributeNumber`): a row
/// description of more is refused (54011), as is a select list of more, before it is bound.
pub const MAX_COLUMNS: usize = 1664;

pub fn too_many_columns() -> SqlError {
    SqlError::new("54011", format!("target lists can have at most {MAX_COLUMNS} entries"))
}

/// Bound on the query bodies a statement's WITH queries expand to (see `Binder::cte_weight`):
/// a chain of 1,000 WITH queries each reading the previous expands to 500,500.
const MAX_CTE_EXPANSION: usize = 1_000_000;

/// What one query body of a WITH expansion holds in memory, with room for the allocator
/// (measured: a chain of 1,000 WITH queries, 500,500 bodies, took 170 MB; chains that join
/// each step with itself took about twice as much per body).
const PLAN_BODY_BYTES: usize = 800;
/// What the binder charges for each column a join copies into its scope and plan (names,
/// types and the plan's schema), an overestimate.
const PLAN_COLUMN_BYTES: usize = 256;

pub struct Binder<'a> {
    pub engine: &'a Arc<Engine>,
    pub ctx: EvalCtx,
    /// Values of `$1, $2, …`; empty while describing a statement.
    pub params: &'a [Param],
    /// Common table expressions in scope (WITH).
    ctes: RefCell<std::collections::HashMap<String, (Plan, Vec<OutCol>)>>,
    /// How many CTE bodies each CTE expands to (its own and those it references), and how
    /// many the statement has expanded so far: each reference copies a plan, so a chain of
    /// CTEs each reading the previous grows as its square. Bounded by [`MAX_CTE_EXPANSION`].
    cte_weight: RefCell<std::collections::HashMap<String, usize>>,
    cte_expanded: std::cell::Cell<usize>,
    /// Window calls of the SELECT being bound; `None` where window functions are not allowed.
    windows: RefCell<Option<Vec<WindowCall>>>,
    /// The set-returning function of the select list being bound: its argument (as SQL text)
    /// and the index of its element column (ordinality and record follow).
    srf: RefCell<Option<(String, usize, SqlType)>>,
    /// Correlated subqueries: the enclosing queries' columns (innermost last), the outer
    /// columns a subquery being bound refers to, the values those columns have while a
    /// subquery runs for one outer row, and the subqueries of the clause being bound.
    outer: RefCell<Vec<Vec<OuterCol>>>,
    outer_refs: RefCell<Vec<usize>>,
    outer_values: RefCell<Vec<(OuterCol, Scalar)>>,
    applies: RefCell<Option<Vec<ApplyCall>>>,
    /// Parameter types inferred from their use (`x = $1`, `$1::int`), for Describe.
    param_types: RefCell<std::collections::BTreeMap<usize, SqlType>>,
    /// Named windows (`WINDOW w AS (…)`) of the SELECT being bound.
    named_windows: RefCell<Vec<ast::NamedWindowDefinition>>,
    /// A dataset's delta window: every datastore the query reads is limited to it.
    delta: RefCell<Option<DeltaWindow>>,
    /// The datastores read through the delta window.
    delta_reads: RefCell<Vec<String>>,
}

/// Rows whose `expr` (SQL over a datastore's columns) is in `[from, to)`, in microseconds
/// (`from` is `i64::MIN` for no lower bound).
#[derive(Clone, Debug)]
pub struct DeltaWindow {
    pub expr: String,
    pub from: i64,
    pub to: i64,
}

impl DeltaWindow {
    /// The window as a SQL condition over a datastore's columns.
    pub fn condition(&self) -> String {
        let ts = |t: i64| format!("'{}'::timestamptz", crate::util::time::format_timestamp(t));
        let mut c = format!("({}) < {}", self.expr, ts(self.to));
        if self.from != i64::MIN {
            c += &format!(" AND ({}) >= {}", self.expr, ts(self.from));
        }
        c
    }
}

/// A column of an enclosing query: qualifier, name, type.
type OuterCol = (Option<String>, String, SqlType);

/// A subquery that refers to columns of the query around it: run once per distinct
/// combination of those columns' values (see [`Plan::Apply`]).
#[derive(Clone, Debug)]
pub struct ApplyCall {
    pub query: Box<ast::Query>,
    pub kind: ApplyKind,
    /// The outer columns it reads: (input column, qualifier, name, type).
    pub outer: Vec<(usize, Option<String>, String, SqlType)>,
    pub ty: SqlType,
}

#[derive(Clone, Debug)]
pub enum ApplyKind {
    /// `(SELECT …)`: its one value, NULL without rows.
    Scalar,
    /// `EXISTS (…)`
    Exists,
    /// `x IN (SELECT …)`, with x evaluated over the outer row.
    In(Expr),
}

/// Correlated subqueries' results are bound as columns from this index up, and renumbered once
/// the width of the Apply node's input is known.
const APPLY_BASE: usize = usize::MAX / 4;

/// Window results are bound as columns from this index up, and renumbered once the width of
/// the Window node's input is known.
const WINDOW_BASE: usize = usize::MAX / 2;

/// The SQL type of a column declared with type tag (OID) `oid`.
pub fn type_of_oid(oid: u32, storage: crate::batch::DataType) -> SqlType {
    use SqlType as T;
    [
        T::Bool,
        T::Int2,
        T::Int4,
        T::Int8,
        T::Float4,
        T::Float8,
        T::Numeric,
        T::Text,
        T::Varchar,
        T::Timestamp,
        T::TimestampTz,
        T::Date,
        T::Json,
        T::Jsonb,
        T::Bytea,
    ]
    .into_iter()
    .find(|t| t.oid() == oid)
    .unwrap_or_else(|| SqlType::of_storage(storage))
}

fn ident_name(i: &ast::Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
}

fn object_name(n: &ast::ObjectName) -> Vec<String> {
    n.0.iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => ident_name(i),
            other => other.to_string(),
        })
        .collect()
}

/// A table function's arguments as text, where they are string or number literals.
fn literal_args(args: &ast::TableFunctionArgs) -> Vec<Option<String>> {
    args.args
        .iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Value(v))) => match &v.value {
                ast::Value::SingleQuotedString(s) => Some(s.clone()),
                ast::Value::Number(n, _) => Some(n.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The column name PostgreSQL gives an unaliased select item.
fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident_name(i),
        ast::Expr::CompoundIdentifier(v) => v.last().map(ident_name).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name).last().cloned().unwrap_or_default(),
        ast::Expr::Cast { expr, data_type, .. } => match output_name(expr).as_str() {
            "?column?" => {
                let t = SqlType::from_name(&data_type.to_string());
                t.map(|t| match t {
                    SqlType::Int4 => "int4".to_string(),
                    SqlType::Int8 => "int8".to_string(),
                    SqlType::Int2 => "int2".to_string(),
                    SqlType::Float8 => "float8".to_string(),
                    SqlType::Float4 => "float4".to_string(),
                    SqlType::Bool => "bool".to_string(),
                    SqlType::TimestampTz => "timestamptz".to_string(),
                    SqlType::Varchar => "varchar".to_string(),
                    other => other.pg_name().to_string(),
                })
                .unwrap_or_else(|| "?column?".into())
            }
            name => name.to_string(),
        },
        ast::Expr::Nested(e) => output_name(e),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::Substring { shorthand: true, .. } => "substr".into(),
        ast::Expr::Substring { .. } => "substring".into(),
        ast::Expr::Trim { .. } => "btrim".into(),
        ast::Expr::Position { .. } => "position".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::TypedString(t) => {
            SqlType::from_name(&t.data_type.to_string()).map_or("?column?".into(), |t| match t {
                SqlType::TimestampTz => "timestamptz".into(),
                SqlType::Timestamp => "timestamp".into(),
                other => other.pg_name().into(),
            })
        }
        ast::Expr::Interval(_) => "interval".into(),
        ast::Expr::Exists { negated: false, .. } => "exists".into(),
        ast::Expr::Subquery(q) => match q.body.as_ref() {
            ast::SetExpr::Select(s) => match s.projection.first() {
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) => ident_name(alias),
                Some(ast::SelectItem::UnnamedExpr(e)) => output_name(e),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

/// Whether `e` calls an aggregate function (outside any window).
fn contains_agg(e: &ast::Expr) -> bool {
    use ast::Expr as E;
    match e {
        E::Function(f) => {
            let name = object_name(&f.name).join(".");
            (agg::is_aggregate(&name) && f.over.is_none())
                || match &f.args {
                    ast::FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => contains_agg(x),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        E::BinaryOp { left, right, .. } | E::IsDistinctFrom(left, right) | E::IsNotDistinctFrom(left, right) => {
            contains_agg(left) || contains_agg(right)
        }
        E::UnaryOp { expr, .. } | E::Nested(expr) | E::Cast { expr, .. } | E::IsNull(expr) | E::IsNotNull(expr) => {
            contains_agg(expr)
        }
        E::Case { operand, conditions, else_result, .. } => {
            operand.as_deref().is_some_and(contains_agg)
                || conditions.iter().any(|c| contains_agg(&c.condition) || contains_agg(&c.result))
                || else_result.as_deref().is_some_and(contains_agg)
        }
        E::Between { expr, low, high, .. } => contains_agg(expr) || contains_agg(low) || contains_agg(high),
        E::Extract { expr, .. } => contains_agg(expr),
        _ => false,
    }
}

impl<'a> Binder<'a> {
    pub fn new(engine: &'a Arc<Engine>, ctx: EvalCtx, params: &'a [Param]) -> Binder<'a> {
        Binder {
            engine,
            ctx,
            params,
            ctes: Default::default(),
            cte_weight: Default::default(),
            cte_expanded: Default::default(),
            windows: Default::default(),
            srf: Default::default(),
            outer: Default::default(),
            outer_refs: Default::default(),
            outer_values: Default::default(),
            applies: Default::default(),
            param_types: Default::default(),
            named_windows: Default::default(),
            delta: Default::default(),
            delta_reads: Default::default(),
        }
    }

    /// Limits every datastore the query reads to `window`.
    pub fn with_delta(self, window: DeltaWindow) -> Binder<'a> {
        *self.delta.borrow_mut() = Some(window);
        self
    }

    fn take_delta(&self) -> Option<DeltaWindow> {
        self.delta.borrow_mut().take()
    }

    /// The datastores the bound query read through its delta window.
    pub fn delta_reads(&self) -> Vec<String> {
        self.delta_reads.borrow().clone()
    }

    /// Records that parameter `e` (if it is `$n`) is used as type `ty`, for Describe.
    pub fn note_param(&self, e: &ast::Expr, ty: SqlType) {
        if let ast::Expr::Value(v) = e
            && let ast::Value::Placeholder(p) = &v.value
            && let Ok(k) = p.trim_start_matches('$').parse::<usize>()
            && ty != SqlType::Unknown
        {
            self.param_types.borrow_mut().entry(k).or_insert(ty);
        }
    }

    /// The parameter types inferred while binding (`$n` → type).
    pub fn param_types(&self) -> std::collections::BTreeMap<usize, SqlType> {
        self.param_types.borrow().clone()
    }

    /// Makes `rows` readable as relation `name` in the queries this binder plans (as a WITH
    /// query would).
    pub fn add_relation(&self, name: &str, schema: Vec<OutCol>, rows: Batch) {
        self.add_shared_relation(name, schema, Arc::new(rows));
    }

    /// [`Binder::add_relation`] for rows the caller keeps too.
    pub fn add_shared_relation(&self, name: &str, schema: Vec<OutCol>, rows: Arc<Batch>) {
        let plan = rows_scan(schema.clone(), rows);
        self.ctes.borrow_mut().insert(name.to_string(), (plan, schema));
    }

    /// Plans a query (SELECT, VALUES, set operations, WITH).
    pub fn bind_query(&self, q: &ast::Query) -> SqlResult<(Plan, Vec<OutCol>)> {
        guard::check_depth()?;
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(SqlError::unsupported("WITH RECURSIVE"));
            }
            for cte in &with.cte_tables {
                let before = self.cte_expanded.get();
                let (plan, mut schema) = self.bind_query(&cte.query)?;
                let weight = 1 + self.cte_expanded.get() - before;
                self.cte_weight.borrow_mut().insert(ident_name(&cte.alias.name), weight);
                for c in schema.iter_mut() {
                    c.ty = out_ty(c.ty);
                }
                for (c, a) in schema.iter_mut().zip(&cte.alias.columns) {
                    c.name = ident_name(&a.name);
                }
                self.ctes.borrow_mut().insert(ident_name(&cte.alias.name), (plan, schema));
            }
        }
        let order = q.order_by.as_ref();
        let limit = q.limit_clause.as_ref();
        match q.body.as_ref() {
            ast::SetExpr::Select(s) => self.bind_select(s, order, limit),
            ast::SetExpr::Query(inner) if order.is_none() && limit.is_none() => self.bind_query(inner),
            ast::SetExpr::Values(v) => self.bind_values(v, order, limit),
            body @ (ast::SetExpr::SetOperation { .. } | ast::SetExpr::Query(_)) => {
                let (plan, schema) = self.bind_set(body)?;
                let items: Vec<(Expr, OutCol)> =
                    schema.iter().enumerate().map(|(i, c)| (Expr::Col { idx: i, ty: c.ty }, c.clone())).collect();
                self.finish_query(plan, items, order, limit, None, false, Vec::new())
            }
            other => Err(SqlError::unsupported(format!(
                "query form {}",
                other.to_string().split_whitespace().next().unwrap_or("")
            ))),
        }
    }

    /// One branch of a set operation, or the operation itself.
    fn bind_set(&self, body: &ast::SetExpr) -> SqlResult<(Plan, Vec<OutCol>)> {
        guard::check_depth()?;
        match body {
            ast::SetExpr::Select(s) => self.bind_select(s, None, None),
            ast::SetExpr::Query(q) => self.bind_query(q),
            ast::SetExpr::Values(v) => self.bind_values(v, None, None),
            ast::SetExpr::SetOperation { left, op, set_quantifier, right } => {
                let (lp, ls) = self.bind_set(left)?;
                let (rp, rs) = self.bind_set(right)?;
                let name = match op {
                    ast::SetOperator::Union => "UNION",
                    ast::SetOperator::Intersect => "INTERSECT",
                    _ => "EXCEPT",
                };
                if ls.len() != rs.len() {
                    return Err(SqlError::syntax(format!("each {name} query must have the same number of columns")));
                }
                let mut schema = Vec::with_capacity(ls.len());
                for (a, b) in ls.iter().zip(&rs) {
                    let t = func::common_type(&[a.ty, b.ty]).ok_or_else(|| {
                        SqlError::mismatch(format!(
                            "{name} types {} and {} cannot be matched",
                            a.ty.pg_name(),
                            b.ty.pg_name()
                        ))
                    })?;
                    schema.push(OutCol {
                        name: a.name.clone(),
                        ty: if t == SqlType::Unknown { SqlType::Text } else { t },
                    });
                }
                let conform = |p: Plan, s: &[OutCol]| -> SqlResult<Plan> {
                    let exprs = s
                        .iter()
                        .zip(&schema)
                        .enumerate()
                        .map(|(i, (c, want))| coerce(Expr::Col { idx: i, ty: c.ty }, want.ty))
                        .collect::<SqlResult<Vec<_>>>()?;
                    Ok(Plan::Project { input: Box::new(p), exprs, schema: schema.clone() })
                };
                let op = match op {
                    ast::SetOperator::Union => SetOp::Union,
                    ast::SetOperator::Intersect => SetOp::Intersect,
                    _ => SetOp::Except,
                };
                let all = matches!(set_quantifier, ast::SetQuantifier::All);
                let plan = Plan::SetOp {
                    left: Box::new(conform(lp, &ls)?),
                    right: Box::new(conform(rp, &rs)?),
                    op,
                    all,
                    schema: schema.clone(),
                };
                Ok((plan, schema))
            }
            other => Err(SqlError::unsupported(format!("query form {other}"))),
        }
    }

    /// Runs an uncorrelated subquery now (it is a constant for the statement).
    fn run_values(&self, plan: Plan, schema: Vec<OutCol>) -> SqlResult<(SqlType, Vec<Scalar>)> {
        if schema.len() != 1 {
            return Err(SqlError::syntax("subquery must return only one column"));
        }
        let b = concat(run(&plan)?, &schema);
        let ty = schema[0].ty;
        Ok((ty, (0..b.num_rows()).map(|i| Scalar::from_column(&b.columns[0], ty, i)).collect()))
    }

    fn bind_values(
        &self,
        v: &ast::Values,
        order: Option<&ast::OrderBy>,
        limit: Option<&ast::LimitClause>,
    ) -> SqlResult<(Plan, Vec<OutCol>)> {
        let empty = Scope { cols: Vec::new(), used: RefCell::new(Vec::new()), time_col: None };
        let mut rows: Vec<Vec<Expr>> = Vec::new();
        for r in &v.rows {
            rows.push(r.iter().map(|e| self.bind_expr(e, &empty, &mut None)).collect::<SqlResult<_>>()?);
        }
        let width = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != width) {
            return Err(SqlError::syntax("VALUES lists must all be the same length"));
        }
        let mut cols = Vec::with_capacity(width);
        let mut schema = Vec::with_capacity(width);
        for c in 0..width {
            let tys: Vec<SqlType> = rows.iter().map(|r| r[c].ty()).collect();
            // An all-unknown column stays unknown, so INSERT can give it the target's type.
            let ty = func::common_type(&tys).ok_or_else(|| SqlError::mismatch("VALUES types cannot be matched"))?;
            let vals = rows
                .iter()
                .map(|r| {
                    let v = r[c].as_lit().cloned().unwrap_or(Scalar::Null);
                    cast_scalar(v, r[c].ty(), ty)
                })
                .collect::<SqlResult<Vec<_>>>()?;
            cols.push(super::expr::scalars_to_column(&vals, ty)?);
            schema.push(OutCol { name: format!("column{}", c + 1), ty });
        }
        let batch = Batch {
            fields: schema.iter().zip(&cols).map(|(s, c)| Field::new(&s.name, c.data_type())).collect(),
            columns: cols,
        };
        let plan = rows_scan(schema.clone(), Arc::new(batch));
        let items: Vec<(Expr, OutCol)> =
            (0..schema.len()).map(|i| (Expr::Col { idx: i, ty: schema[i].ty }, schema[i].clone())).collect();
        self.finish_query(plan, items, order, limit, None, false, Vec::new())
    }

    fn relation(&self, name: &ast::ObjectName, alias: Option<&ast::TableAlias>) -> SqlResult<(Plan, Scope)> {
        let parts = object_name(name);
        let mut rel = parts.last().cloned().unwrap_or_default();
        let schema_name = if parts.len() > 1 { Some(parts[parts.len() - 2].as_str()) } else { None };
        let qual = alias.map(|a| ident_name(&a.name)).unwrap_or_else(|| rel.clone());
        // fleetdb's system tables live in schema `fleetdb`, stored as `__<name>` objects.
        if schema_name == Some("fleetdb")
            && matches!(rel.as_str(), "rejected_messages" | "pipeline_errors" | "dataset_events")
        {
            rel = format!("__{rel}");
        }
        if matches!(schema_name, Some("pg_catalog" | "information_schema"))
            || (schema_name.is_none() && rel.starts_with("pg_"))
        {
            let (schema, batch) = catalog::relation(self.engine, schema_name, &rel)?
                .ok_or_else(|| SqlError::undefined_relation(&parts.join(".")))?;
            let mut scope = Scope {
                cols: schema.iter().map(|c| ScopeCol::new(Some(qual.clone()), c.name.clone(), c.ty)).collect(),
                used: RefCell::new(vec![true; schema.len()]),
                time_col: None,
            };
            if let Some(a) = alias {
                for (c, name) in scope.cols.iter_mut().zip(&a.columns) {
                    c.name = ident_name(&name.name);
                }
            }
            let plan = rows_scan(schema.clone(), Arc::new(batch));
            return Ok((plan, scope));
        }
        if let Some(s) = schema_name
            && s != "public"
            && s != "fleetdb"
        {
            return Err(SqlError::undefined_relation(&parts.join(".")));
        }
        let cte = if parts.len() == 1 { self.ctes.borrow().get(&rel).cloned() } else { None };
        if let Some((plan, schema)) = cte {
            let weight = self.cte_weight.borrow().get(&rel).copied().unwrap_or(1);
            let expanded = self.cte_expanded.get().saturating_add(weight);
            if expanded > MAX_CTE_EXPANSION {
                return Err(SqlError::new(
                    "54001",
                    format!("statement too complex: its common table expressions expand to more than {MAX_CTE_EXPANSION} query bodies"),
                )
                .with_hint("Each reference to a WITH query copies it, with the WITH queries it reads."));
            }
            self.cte_expanded.set(expanded);
            // Each copy is plan nodes in memory: charged before it is made.
            guard::charge(weight.saturating_mul(PLAN_BODY_BYTES))?;
            let cols =
                schema.iter().map(|c| ScopeCol::new(Some(qual.clone()), c.name.clone(), c.ty)).collect::<Vec<_>>();
            let n = cols.len();
            return Ok((plan, Scope { cols, used: RefCell::new(vec![true; n]), time_col: None }));
        }
        let (source, cols, time_col) = if let Ok(t) = self.engine.table(&rel) {
            let cols =
                t.schema().columns.iter().map(|c| (c.name.clone(), type_of_oid(c.type_tag, c.data_type))).collect();
            (Source::Table(t), cols, None)
        } else if let Ok(d) = self.engine.datastore(&rel) {
            let mut cols: Vec<(String, SqlType)> =
                d.schema().iter().map(|f| (f.name.clone(), SqlType::of_storage(f.data_type))).collect();
            let time_col = cols.iter().position(|c| c.0 == "time");
            cols.push(("__dt".into(), SqlType::Date));
            (Source::Datastore(d), cols, time_col)
        } else if let Ok(c) = self.engine.channel(&rel) {
            let cols = vec![
                ("__received_at".to_string(), SqlType::TimestampTz),
                ("__message_id".to_string(), SqlType::Text),
                ("__topic".to_string(), SqlType::Text),
                ("payload".to_string(), SqlType::Json),
                ("__offset".to_string(), SqlType::Int8),
            ];
            (Source::Channel(c), cols, Some(0))
        } else if parts.len() == 1 && self.datasets()?.exists(&rel) {
            return self.dataset_scan(&rel, "$LATEST_SUCCEEDED", qual);
        } else {
            return Err(SqlError::undefined_relation(&parts.join(".")));
        };
        let schema: Vec<OutCol> = cols.iter().map(|(n, t)| OutCol { name: n.clone(), ty: *t }).collect();
        let is_datastore = matches!(source, Source::Datastore(_));
        let scope = Scope {
            cols: cols
                .into_iter()
                .map(|(name, ty)| ScopeCol {
                    hidden: is_datastore && crate::pipeline::is_lineage(&name),
                    qualifier: Some(qual.clone()),
                    name,
                    ty,
                    merged: false,
                })
                .collect(),
            used: RefCell::new(vec![false; schema.len()]),
            time_col,
        };
        let datastore = match &source {
            Source::Datastore(d) => Some(d.name().to_string()),
            _ => None,
        };
        let mut plan = Plan::Scan {
            source,
            used: Vec::new(),
            schema,
            time_range: (i64::MIN, i64::MAX),
            tags: Vec::new(),
            ranges: Vec::new(),
            stats: Arc::new(ScanStats::default()),
        };
        if let (Some(name), Some(window)) = (datastore, self.take_delta()) {
            // A dataset's delta window: the datastore's rows in it, filtered at the scan (its
            // time range prunes partitions and blocks when the window is over `time`).
            let bound = crate::sql::parse::parse_expression(&window.condition())
                .and_then(|e| self.bind_expr(&e, &scope, &mut None));
            *self.delta.borrow_mut() = Some(window);
            let pred = bound?;
            if let (Plan::Scan { time_range, .. }, Some(tc)) = (&mut plan, scope.time_col) {
                *time_range = time_range_of(&pred, tc);
            }
            self.delta_reads.borrow_mut().push(name);
            plan = Plan::Filter { input: Box::new(plan), pred };
        }
        Ok((plan, scope))
    }

    fn datasets(&self) -> SqlResult<Arc<crate::dataset::Datasets>> {
        Ok(self.engine.service(crate::dataset::Datasets::new)?)
    }

    /// A dataset's content version `which` as a relation named `qual`.
    fn dataset_scan(&self, name: &str, which: &str, qual: String) -> SqlResult<(Plan, Scope)> {
        let datasets = self.datasets()?;
        let (schema, batch) = match datasets.without_content(name).filter(|_| which == "$LATEST_SUCCEEDED") {
            // No content yet: no rows, with the columns its query has.
            Some(query) => {
                let schema = match query {
                    // Before the columns it reads exist, it has none either.
                    Some(q) => match self.bind_query(&*crate::sql::parse::parse_query(&q)?) {
                        Err(e) if e.sqlstate == crate::dataset::COLUMN_NOT_YET => Vec::new(),
                        r => r?.1,
                    },
                    // A program dataset's columns are what its program writes.
                    None => Vec::new(),
                };
                let physical = |c: &OutCol| c.ty.physical().unwrap_or(crate::batch::DataType::Text);
                let columns = schema.iter().map(|c| crate::batch::Column::nulls(physical(c), 0)).collect();
                let fields = schema.iter().map(|c| crate::batch::Field::new(&c.name, physical(c))).collect();
                (schema, crate::batch::Batch { fields, columns })
            }
            None => datasets.content(name, which).map_err(|e| match e {
                crate::Error::NotFound(what) => {
                    SqlError::new("55000", format!("{what} does not exist (REFRESH DATASET makes one)"))
                }
                crate::Error::Invalid(why) => SqlError::new("55000", why),
                other => other.into(),
            })?,
        };
        let cols = schema.iter().map(|c| ScopeCol::new(Some(qual.clone()), c.name.clone(), c.ty)).collect::<Vec<_>>();
        let n = cols.len();
        Ok((rows_scan(schema, Arc::new(batch)), Scope { cols, used: RefCell::new(vec![true; n]), time_col: None }))
    }

    fn factor(&self, f: &ast::TableFactor) -> SqlResult<(Plan, Scope)> {
        match f {
            ast::TableFactor::Table { name, alias, args: None, .. } => self.relation(name, alias.as_ref()),
            ast::TableFactor::Table { name, alias, args: Some(args), .. }
                if object_name(name).last().is_some_and(|n| n == "dataset_content") =>
            {
                // dataset_content('name', 'version id' | '$LATEST' | '$LATEST_SUCCEEDED')
                let (ds, which) = match &literal_args(args)[..] {
                    [Some(d)] => (d.clone(), "$LATEST_SUCCEEDED".to_string()),
                    [Some(d), Some(w)] => (d.clone(), w.clone()),
                    _ => {
                        return Err(SqlError::new(
                            "42883",
                            "dataset_content takes a dataset name and a version ('<id>', '$LATEST' or '$LATEST_SUCCEEDED'), as literals",
                        ));
                    }
                };
                if !self.datasets()?.exists(&ds) {
                    return Err(SqlError::undefined_relation(&ds));
                }
                let qual = alias.as_ref().map_or_else(|| "dataset_content".to_string(), |a| ident_name(&a.name));
                self.dataset_scan(&ds, &which, qual)
            }
            ast::TableFactor::Table { name, alias, args: Some(args), .. }
                if object_name(name).last().is_some_and(|n| n == "dataset_logs") =>
            {
                // dataset_logs('name', version id): a program run's output, a row per line.
                let (ds, id) = match &literal_args(args)[..] {
                    [Some(d), Some(v)] if v.parse::<u64>().is_ok() => (d.clone(), v.parse::<u64>().unwrap_or(0)),
                    _ => {
                        return Err(SqlError::new(
                            "42883",
                            "dataset_logs takes a dataset name and a version id, as literals",
                        ));
                    }
                };
                let (stdout, stderr) = self.datasets()?.logs(&ds, id).map_err(|e| match e {
                    crate::Error::NotFound(what) => SqlError::new("42704", format!("{what} does not exist")),
                    other => other.into(),
                })?;
                let (mut streams, mut lines, mut texts) = (StrVec::default(), Vec::new(), StrVec::default());
                for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
                    for (i, l) in text.lines().enumerate() {
                        streams.push(stream);
                        lines.push(i as i64 + 1);
                        texts.push(l);
                    }
                }
                let schema = vec![
                    OutCol { name: "stream".into(), ty: SqlType::Text },
                    OutCol { name: "line".into(), ty: SqlType::Int8 },
                    OutCol { name: "text".into(), ty: SqlType::Text },
                ];
                let batch = Batch {
                    fields: vec![
                        Field::new("stream", crate::batch::DataType::Text),
                        Field::new("line", crate::batch::DataType::Int64),
                        Field::new("text", crate::batch::DataType::Text),
                    ],
                    columns: vec![
                        Column::new(Values::Text(streams)),
                        Column::new(Values::Int64(lines)),
                        Column::new(Values::Text(texts)),
                    ],
                };
                let qual = alias.as_ref().map_or_else(|| "dataset_logs".to_string(), |a| ident_name(&a.name));
                let cols = schema.iter().map(|c| ScopeCol::new(Some(qual.clone()), c.name.clone(), c.ty)).collect();
                Ok((
                    rows_scan(schema, Arc::new(batch)),
                    Scope { cols, used: RefCell::new(vec![true; 3]), time_col: None },
                ))
            }
            ast::TableFactor::Derived { lateral: false, subquery, alias, sample: None } => {
                self.derived(subquery, alias.as_ref())
            }
            other => Err(SqlError::unsupported(format!("FROM {other}"))),
        }
    }

    /// FROM: one relation, or several joined (comma-separated items are cross joins).
    fn bind_from(&self, from: &[ast::TableWithJoins]) -> SqlResult<(Plan, Scope)> {
        if from.is_empty() {
            let one = Batch {
                fields: vec![Field::new("dummy", crate::batch::DataType::Bool)],
                columns: vec![Column::new(Values::Bool(vec![true]))],
            };
            let schema = vec![OutCol { name: "dummy".into(), ty: SqlType::Bool }];
            let plan = Plan::Scan {
                source: Source::Rows(Arc::new(one)),
                used: vec![true],
                schema,
                time_range: (i64::MIN, i64::MAX),
                tags: Vec::new(),
                ranges: Vec::new(),
                stats: Default::default(),
            };
            return Ok((plan, Scope { cols: Vec::new(), used: RefCell::new(vec![false]), time_col: None }));
        }
        let mut acc: Option<(Plan, Scope)> = None;
        for twj in from {
            let mut cur = self.factor(&twj.relation)?;
            for j in &twj.joins {
                let right = self.factor(&j.relation)?;
                use ast::JoinOperator as J;
                let (kind, constraint) = match &j.join_operator {
                    J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                    J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                    J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                    J::FullOuter(c) => (JoinKind::Full, Some(c)),
                    J::CrossJoin(_) => (JoinKind::Inner, None),
                    other => return Err(SqlError::unsupported(format!("join {other:?}"))),
                };
                cur = self.join(cur, right, kind, constraint)?;
            }
            acc = Some(match acc {
                None => cur,
                Some(prev) => self.join(prev, cur, JoinKind::Inner, None)?,
            });
        }
        Ok(acc.expect("FROM has at least one item"))
    }

    fn join(
        &self,
        (lp, ls): (Plan, Scope),
        (rp, rs): (Plan, Scope),
        kind: JoinKind,
        c: Option<&ast::JoinConstraint>,
    ) -> SqlResult<(Plan, Scope)> {
        let nl = ls.cols.len();
        // A join copies both sides' columns into its scope and schema: a FROM list of
        // thousands of items makes that quadratic, so each copy is charged before it is made.
        guard::charge((ls.cols.len() + rs.cols.len()).saturating_mul(PLAN_COLUMN_BYTES))?;
        let mut cols = ls.cols.clone();
        cols.extend(rs.cols.iter().cloned());
        // Columns start unread (as the sides' scopes say); the join's own conditions and the
        // query's expressions mark what the scans below must decode.
        let mut used = ls.used.borrow().clone();
        used.extend(rs.used.borrow().iter().copied());
        let scope = Scope { cols, used: RefCell::new(used), time_col: None };
        let mut conjuncts: Vec<Expr> = Vec::new();
        match c {
            None | Some(ast::JoinConstraint::None) => {}
            Some(ast::JoinConstraint::On(e)) => {
                let b = coerce(self.bind_expr(e, &scope, &mut None)?, SqlType::Bool)?;
                split_and(b, &mut conjuncts);
            }
            Some(ast::JoinConstraint::Using(names)) => {
                for nm in names {
                    let name = object_name(nm).join(".");
                    let li =
                        ls.cols.iter().position(|c| c.name == name).ok_or_else(|| SqlError::undefined_column(&name))?;
                    let ri =
                        rs.cols.iter().position(|c| c.name == name).ok_or_else(|| SqlError::undefined_column(&name))?;
                    let l = Expr::Col { idx: li, ty: ls.cols[li].ty };
                    let r = Expr::Col { idx: nl + ri, ty: rs.cols[ri].ty };
                    let (l, r) = unify(l, r)?;
                    conjuncts.push(Expr::Bin { op: BinOp::Eq, l: Box::new(l), r: Box::new(r), ty: SqlType::Bool });
                }
                let mut scope_cols = scope.cols.clone();
                for nm in names {
                    let name = object_name(nm).join(".");
                    if let Some(c) = scope_cols.iter_mut().skip(nl).find(|c| c.name == name) {
                        c.merged = true;
                    }
                }
                let scope = Scope { cols: scope_cols, used: RefCell::new(scope.used.take()), time_col: None };
                return self.finish_join(lp, rp, kind, conjuncts, nl, scope);
            }
            Some(other) => return Err(SqlError::unsupported(format!("join constraint {other:?}"))),
        }
        self.finish_join(lp, rp, kind, conjuncts, nl, scope)
    }

    fn finish_join(
        &self,
        mut lp: Plan,
        mut rp: Plan,
        kind: JoinKind,
        conjuncts: Vec<Expr>,
        nl: usize,
        scope: Scope,
    ) -> SqlResult<(Plan, Scope)> {
        mark_all_used(&mut lp);
        mark_all_used(&mut rp);
        {
            let mut used = scope.used.borrow_mut();
            for c in &conjuncts {
                c.columns(&mut |i| used[i] = true);
            }
        }
        let side = |e: &Expr| {
            let (mut l, mut r) = (false, false);
            e.columns(&mut |i| if i < nl { l = true } else { r = true });
            (l, r)
        };
        let (mut lk, mut rk, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        for c in conjuncts {
            if let Expr::Bin { op: BinOp::Eq, l, r, .. } = &c {
                let (a, b) = (side(l), side(r));
                let (lhs, rhs) = match (a, b) {
                    ((true, false), (false, true)) => (l.as_ref().clone(), r.as_ref().clone()),
                    ((false, true), (true, false)) => (r.as_ref().clone(), l.as_ref().clone()),
                    _ => {
                        rest.push(c);
                        continue;
                    }
                };
                let mut rhs = rhs;
                rhs.remap(&|i| i - nl);
                lk.push(lhs);
                rk.push(rhs);
                continue;
            }
            rest.push(c);
        }
        let residual = rest.into_iter().reduce(|a, b| Expr::Bin {
            op: BinOp::And,
            l: Box::new(a),
            r: Box::new(b),
            ty: SqlType::Bool,
        });
        let schema: Vec<OutCol> = scope.cols.iter().map(|c| OutCol { name: c.name.clone(), ty: c.ty }).collect();
        let plan = Plan::Join {
            left: Box::new(lp),
            right: Box::new(rp),
            kind,
            left_keys: lk,
            right_keys: rk,
            residual,
            schema,
        };
        Ok((plan, scope))
    }

    /// A subquery in FROM: its output columns, renamed by the alias's column list.
    fn derived(&self, q: &ast::Query, alias: Option<&ast::TableAlias>) -> SqlResult<(Plan, Scope)> {
        let (plan, schema) = self.bind_query(q)?;
        let schema: Vec<OutCol> = schema.into_iter().map(|c| OutCol { ty: out_ty(c.ty), ..c }).collect();
        let qual = alias.map(|a| ident_name(&a.name));
        let names: Vec<String> =
            alias.map(|a| a.columns.iter().map(|c| ident_name(&c.name)).collect()).unwrap_or_default();
        if names.len() > schema.len() {
            return Err(SqlError::new(
                "42P10",
                format!(
                    "table \"{}\" has {} columns available but {} columns specified",
                    qual.unwrap_or_default(),
                    schema.len(),
                    names.len()
                ),
            ));
        }
        let cols = schema
            .iter()
            .enumerate()
            .map(|(i, c)| ScopeCol::new(qual.clone(), names.get(i).cloned().unwrap_or_else(|| c.name.clone()), c.ty))
            .collect::<Vec<_>>();
        let n = cols.len();
        Ok((plan, Scope { cols, used: RefCell::new(vec![true; n]), time_col: None }))
    }

    fn bind_select(
        &self,
        s: &ast::Select,
        order: Option<&ast::OrderBy>,
        limit: Option<&ast::LimitClause>,
    ) -> SqlResult<(Plan, Vec<OutCol>)> {
        let (mut plan, scope) = self.bind_from(&s.from)?;
        if let Some(w) = &s.selection {
            // Correlated subqueries in WHERE run in an Apply node below the filter.
            let outer_applies = self.applies.replace(Some(Vec::new()));
            let bound = self.bind_expr(w, &scope, &mut None);
            let calls = self.applies.replace(outer_applies).unwrap_or_default();
            let mut pred = bound?;
            if !calls.is_empty() {
                let base = plan.schema().len();
                pred.remap(&|i| if i >= APPLY_BASE { base + i - APPLY_BASE } else { i });
                plan = self.apply_node(plan, calls);
            }
            if pred.ty() != SqlType::Bool && pred.ty() != SqlType::Unknown {
                return Err(SqlError::mismatch(format!(
                    "argument of WHERE must be type boolean, not type {}",
                    pred.ty().pg_name()
                )));
            }
            // The scan, or the scan under a dataset's delta window filter.
            let scan = match &mut plan {
                Plan::Filter { input, .. } => &mut **input,
                p => p,
            };
            if let (Plan::Scan { time_range, .. }, Some(tc)) = (&mut *scan, scope.time_col) {
                let (lo, hi) = time_range_of(&pred, tc);
                *time_range = (time_range.0.max(lo), time_range.1.min(hi));
            }
            if let Plan::Scan { source: Source::Datastore(_), tags, ranges, .. } = scan {
                *tags = tags_of(&pred);
                *ranges = ranges_of(&pred);
            }
            plan = Plan::Filter { input: Box::new(plan), pred };
        }
        let group_asts: Vec<ast::Expr> = match &s.group_by {
            ast::GroupByExpr::Expressions(v, _) => v.clone(),
            ast::GroupByExpr::All(_) => return Err(SqlError::unsupported("GROUP BY ALL")),
        };
        let order_asts: Vec<ast::OrderByExpr> = match order {
            Some(ast::OrderBy { kind: ast::OrderByKind::Expressions(v), .. }) => v.clone(),
            Some(_) => return Err(SqlError::unsupported("ORDER BY ALL")),
            None => Vec::new(),
        };
        let select_exprs: Vec<&ast::Expr> = s
            .projection
            .iter()
            .filter_map(|i| match i {
                ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                _ => None,
            })
            .collect();
        let has_agg = !group_asts.is_empty()
            || select_exprs.iter().any(|e| contains_agg(e))
            || s.having.as_ref().is_some_and(contains_agg)
            || order_asts.iter().any(|o| contains_agg(&o.expr));
        let mut agg_ctx: Option<AggCtx> = None;
        if has_agg {
            // GROUP BY 1 and GROUP BY alias refer to select items.
            let mut resolved = Vec::with_capacity(group_asts.len());
            for g in &group_asts {
                let g = match g {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => {
                            let k: usize =
                                n.parse().map_err(|_| SqlError::syntax("GROUP BY position must be an integer"))?;
                            let item = s.projection.get(k.wrapping_sub(1)).ok_or_else(|| {
                                SqlError::new("42P10", format!("GROUP BY position {k} is not in select list"))
                            })?;
                            match item {
                                ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                                    e.clone()
                                }
                                _ => return Err(SqlError::unsupported("GROUP BY a * position")),
                            }
                        }
                        _ => g.clone(),
                    },
                    ast::Expr::Identifier(id) if !scope.cols.iter().any(|c| c.name == ident_name(id)) => s
                        .projection
                        .iter()
                        .find_map(|i| match i {
                            ast::SelectItem::ExprWithAlias { expr, alias } if ident_name(alias) == ident_name(id) => {
                                Some(expr.clone())
                            }
                            _ => None,
                        })
                        .unwrap_or_else(|| g.clone()),
                    _ => g.clone(),
                };
                resolved.push(g);
            }
            let mut ctx =
                AggCtx { group_keys: Vec::new(), group_exprs: Vec::new(), agg_keys: Vec::new(), aggs: Vec::new() };
            for g in &resolved {
                if contains_agg(g) {
                    return Err(SqlError::new("42803", "aggregate functions are not allowed in GROUP BY"));
                }
                ctx.group_keys.push(g.to_string());
                ctx.group_exprs.push(self.bind_expr(g, &scope, &mut None)?);
            }
            agg_ctx = Some(ctx);
        }
        // SELECT list (and ORDER BY, below) may call window functions.
        let outer_windows = self.windows.replace(Some(Vec::new()));
        let outer_named = self.named_windows.replace(s.named_window.clone());
        // Correlated subqueries in the select list (of a query without aggregation).
        let outer_applies = self.applies.replace(if agg_ctx.is_none() { Some(Vec::new()) } else { None });
        let bound = self.bind_select_list(s, &scope, plan, agg_ctx, &order_asts);
        self.windows.replace(outer_windows);
        self.named_windows.replace(outer_named);
        self.applies.replace(outer_applies);
        let (plan, items, order_exprs) = bound?;
        let (distinct, distinct_on) = match &s.distinct {
            None | Some(ast::Distinct::All) => (false, Vec::new()),
            Some(ast::Distinct::Distinct) => (true, Vec::new()),
            Some(ast::Distinct::On(exprs)) => {
                (false, exprs.iter().map(|e| self.bind_expr(e, &scope, &mut None)).collect::<SqlResult<Vec<_>>>()?)
            }
        };
        self.finish_query(plan, items, order, limit, Some(order_exprs), distinct, distinct_on)
    }

    /// The SELECT list, HAVING and ORDER BY of `s` over `plan`: adds aggregation and window
    /// functions to the plan, and returns it with the bound items and ORDER BY expressions.
    #[allow(clippy::type_complexity)]
    fn bind_select_list(
        &self,
        s: &ast::Select,
        scope: &Scope,
        mut plan: Plan,
        mut agg_ctx: Option<AggCtx>,
        order_asts: &[ast::OrderByExpr],
    ) -> SqlResult<(Plan, Vec<(Expr, OutCol)>, Vec<Option<Expr>>)> {
        if s.projection.len() > MAX_COLUMNS {
            return Err(too_many_columns());
        }
        // Set-returning functions in the select list expand each row (one argument for all).
        let mut srf_args = Vec::new();
        for item in &s.projection {
            if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } = item {
                find_srf_args(e, &mut srf_args);
            }
        }
        let int_elems = srf_args.iter().any(|(expandarray, _)| *expandarray);
        let mut srf_args: Vec<ast::Expr> = srf_args.into_iter().map(|(_, a)| a).collect();
        srf_args.dedup_by_key(|a| a.to_string());
        let ext_scope;
        let mut expand = None;
        let outer_scope = scope;
        let scope = if let Some(arg_ast) = srf_args.first() {
            if srf_args.len() > 1 || agg_ctx.is_some() {
                return Err(SqlError::unsupported("set-returning functions over different arrays or with aggregates"));
            }
            let arg = coerce_text(self.bind_expr(arg_ast, scope, &mut None)?)?;
            let base = plan.schema().len();
            let mut cols: Vec<ScopeCol> = scope.cols.clone();
            let elem_ty = if int_elems { SqlType::Int4 } else { SqlType::Text };
            for (name, ty) in [("\u{1}elem", elem_ty), ("\u{1}ord", SqlType::Int4), ("\u{1}rec", SqlType::Text)] {
                cols.push(ScopeCol::new(None, name.into(), ty));
            }
            let mut used = scope.used.borrow().clone();
            used.extend([true; 3]);
            ext_scope = Scope { cols, used: RefCell::new(used), time_col: scope.time_col };
            self.srf.replace(Some((arg_ast.to_string(), base, elem_ty)));
            expand = Some((arg, int_elems, elem_ty));
            &ext_scope
        } else {
            self.srf.replace(None);
            scope
        };
        let mut items: Vec<(Expr, OutCol)> = Vec::new();
        let lenient = reads_only_catalogs(&s.from);
        for item in &s.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let x = self.bind_item(e, scope, &mut agg_ctx, lenient)?;
                    let name = output_name(e);
                    items.push((x.clone(), OutCol { name, ty: x.ty() }));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let x = self.bind_item(expr, scope, &mut agg_ctx, lenient)?;
                    items.push((x.clone(), OutCol { name: ident_name(alias), ty: x.ty() }));
                }
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    if agg_ctx.is_some() {
                        return Err(SqlError::new("42803", "SELECT * is not allowed with GROUP BY or aggregates"));
                    }
                    if s.from.is_empty() {
                        return Err(SqlError::new("42601", "SELECT * with no tables specified is not valid"));
                    }
                    let only = match item {
                        ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                            object_name(n).last().cloned()
                        }
                        _ => None,
                    };
                    for (i, c) in scope.cols.iter().enumerate() {
                        if only.as_ref().is_some_and(|q| c.qualifier.as_ref() != Some(q))
                            || (only.is_none() && c.merged)
                            || c.hidden
                        {
                            continue;
                        }
                        scope.used.borrow_mut()[i] = true;
                        items.push((Expr::Col { idx: i, ty: c.ty }, OutCol { name: c.name.clone(), ty: c.ty }));
                    }
                }
                other => return Err(SqlError::unsupported(format!("select item {other}"))),
            }
        }
        let having = match &s.having {
            Some(h) => {
                if agg_ctx.is_none() {
                    agg_ctx = Some(AggCtx {
                        group_keys: Vec::new(),
                        group_exprs: Vec::new(),
                        agg_keys: Vec::new(),
                        aggs: Vec::new(),
                    });
                }
                Some(self.bind_expr(h, scope, &mut agg_ctx)?)
            }
            None => None,
        };
        // ORDER BY keys that are not output columns are bound now, in the same mode.
        let mut order_exprs: Vec<Option<Expr>> = Vec::with_capacity(order_asts.len());
        for o in order_asts {
            order_exprs.push(match self.output_ref(&o.expr, &items)? {
                Some(_) => None,
                None => Some(self.bind_expr(&o.expr, scope, &mut agg_ctx)?),
            });
        }
        self.srf.replace(None);
        if expand.is_some() {
            let ext = scope.used.borrow();
            for (u, e) in outer_scope.used.borrow_mut().iter_mut().zip(ext.iter()) {
                *u |= *e;
            }
        }
        let scope = outer_scope;
        set_used(&mut plan, &scope.used.borrow());
        let calls = self.applies.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default();
        if !calls.is_empty() {
            if expand.is_some() {
                return Err(SqlError::unsupported("set-returning functions with correlated subqueries"));
            }
            let base = plan.schema().len();
            let renumber = |i: usize| if (APPLY_BASE..WINDOW_BASE).contains(&i) { base + i - APPLY_BASE } else { i };
            for (e, _) in items.iter_mut() {
                e.remap(&renumber);
            }
            for e in order_exprs.iter_mut().flatten() {
                e.remap(&renumber);
            }
            plan = self.apply_node(plan, calls);
        }
        if let Some((arg, int_elems, elem_ty)) = expand {
            let mut schema = plan.schema();
            schema.push(OutCol { name: "elem".into(), ty: elem_ty });
            schema.push(OutCol { name: "ordinality".into(), ty: SqlType::Int4 });
            schema.push(OutCol { name: "record".into(), ty: SqlType::Text });
            plan = Plan::Expand { input: Box::new(plan), arg, int_elems, schema };
        }
        if let Some(ctx) = agg_ctx {
            let mut schema: Vec<OutCol> = ctx
                .group_exprs
                .iter()
                .enumerate()
                .map(|(i, e)| OutCol { name: format!("group{i}"), ty: e.ty() })
                .collect();
            schema.extend(ctx.aggs.iter().enumerate().map(|(i, a)| OutCol { name: format!("agg{i}"), ty: a.ty }));
            plan = Plan::Aggregate { input: Box::new(plan), group: ctx.group_exprs, aggs: ctx.aggs, schema };
            if let Some(h) = having {
                plan = Plan::Filter { input: Box::new(plan), pred: h };
            }
        }
        let calls = self.windows.borrow_mut().take().unwrap_or_default();
        if !calls.is_empty() {
            let mut schema = plan.schema();
            let base = schema.len();
            let renumber = |i: usize| if i >= WINDOW_BASE { base + (i - WINDOW_BASE) } else { i };
            for (k, c) in calls.iter().enumerate() {
                schema.push(OutCol { name: format!("window{k}"), ty: c.ty });
            }
            for (e, _) in items.iter_mut() {
                e.remap(&renumber);
            }
            for e in order_exprs.iter_mut().flatten() {
                e.remap(&renumber);
            }
            plan = Plan::Window { input: Box::new(plan), calls, schema };
        }
        Ok((plan, items, order_exprs))
    }

    /// An ORDER BY expression that names an output column: `ORDER BY 2` or `ORDER BY alias`.
    fn output_ref(&self, e: &ast::Expr, items: &[(Expr, OutCol)]) -> SqlResult<Option<usize>> {
        match e {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => {
                    let k: usize = n.parse().map_err(|_| SqlError::syntax("ORDER BY position must be an integer"))?;
                    if k == 0 || k > items.len() {
                        return Err(SqlError::new("42P10", format!("ORDER BY position {k} is not in select list")));
                    }
                    Ok(Some(k - 1))
                }
                _ => Ok(None),
            },
            ast::Expr::Identifier(id) => {
                let name = ident_name(id);
                let hits: Vec<usize> =
                    items.iter().enumerate().filter(|(_, (_, c))| c.name == name).map(|(i, _)| i).collect();
                Ok(if hits.len() == 1 { Some(hits[0]) } else { None })
            }
            _ => Ok(None),
        }
    }

    /// Projection, DISTINCT [ON], ORDER BY, LIMIT/OFFSET on top of `plan`.
    #[allow(clippy::too_many_arguments)]
    fn finish_query(
        &self,
        mut plan: Plan,
        items: Vec<(Expr, OutCol)>,
        order: Option<&ast::OrderBy>,
        limit_clause: Option<&ast::LimitClause>,
        order_exprs: Option<Vec<Option<Expr>>>,
        distinct: bool,
        distinct_on: Vec<Expr>,
    ) -> SqlResult<(Plan, Vec<OutCol>)> {
        let order_asts: Vec<ast::OrderByExpr> = match order {
            Some(ast::OrderBy { kind: ast::OrderByKind::Expressions(v), .. }) => v.clone(),
            _ => Vec::new(),
        };
        let visible: Vec<OutCol> = items.iter().map(|(_, c)| c.clone()).collect();
        let mut exprs: Vec<Expr> = items.iter().map(|(e, _)| e.clone()).collect();
        let mut schema = visible.clone();
        let mut keys = Vec::new();
        let order_exprs = order_exprs.unwrap_or_else(|| vec![None; order_asts.len()]);
        for (o, bound) in order_asts.iter().zip(order_exprs) {
            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            let nulls_first = o.options.nulls_first.unwrap_or(desc);
            let idx = match bound {
                None => self.output_ref(&o.expr, &items)?.ok_or_else(|| SqlError::syntax("ORDER BY reference"))?,
                Some(e) => {
                    if distinct {
                        return Err(SqlError::new(
                            "42P10",
                            "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                        ));
                    }
                    schema.push(OutCol { name: format!("__sort{}", keys.len()), ty: e.ty() });
                    exprs.push(e);
                    schema.len() - 1
                }
            };
            keys.push(SortKey { expr: Expr::Col { idx, ty: schema[idx].ty }, desc, nulls_first });
        }
        let mut on_keys = Vec::with_capacity(distinct_on.len());
        for e in distinct_on {
            schema.push(OutCol { name: format!("__on{}", on_keys.len()), ty: e.ty() });
            exprs.push(e);
            on_keys.push(schema.len() - 1);
        }
        // DISTINCT ON (k…) ORDER BY k…, x: keep each group's first row by x in one pass, then
        // sort only those rows.
        let top = !on_keys.is_empty()
            && keys.len() == on_keys.len() + 1
            && keys
                .iter()
                .zip(&on_keys)
                .all(|(k, &o)| matches!(k.expr, Expr::Col { idx, .. } if exprs[idx] == exprs[o]));
        let by = keys.last().and_then(|k| match k.expr {
            Expr::Col { idx, .. } => Some((idx, k.desc, k.nulls_first)),
            _ => None,
        });
        plan = Plan::Project { input: Box::new(plan), exprs, schema: schema.clone() };
        if distinct {
            plan = Plan::Distinct { input: Box::new(plan) };
        }
        match (top, by) {
            (true, Some((by, desc, nulls_first))) => {
                plan = Plan::TopPerGroup { input: Box::new(plan), keys: on_keys, by, desc, nulls_first };
                plan = Plan::Sort { input: Box::new(plan), keys };
            }
            _ => {
                if !keys.is_empty() {
                    plan = Plan::Sort { input: Box::new(plan), keys };
                }
                if !on_keys.is_empty() {
                    plan = Plan::DistinctOn { input: Box::new(plan), keys: on_keys };
                }
            }
        }
        let (limit, offset) = match limit_clause {
            None => (None, 0),
            Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => (
                limit.as_ref().map(|l| self.const_u64(l)).transpose()?.flatten(),
                offset.as_ref().map(|o| self.const_u64(&o.value)).transpose()?.flatten().unwrap_or(0),
            ),
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (self.const_u64(limit)?, self.const_u64(offset)?.unwrap_or(0))
            }
        };
        if limit.is_some() || offset > 0 {
            plan = Plan::Limit { input: Box::new(plan), limit, offset };
        }
        if schema.len() > visible.len() {
            let exprs = (0..visible.len()).map(|i| Expr::Col { idx: i, ty: visible[i].ty }).collect();
            plan = Plan::Project { input: Box::new(plan), exprs, schema: visible.clone() };
        }
        Ok((plan, visible))
    }

    /// A constant non-negative integer (LIMIT, OFFSET); `None` for LIMIT ALL / NULL.
    fn const_u64(&self, e: &ast::Expr) -> SqlResult<Option<u64>> {
        let empty = Scope { cols: Vec::new(), used: RefCell::new(Vec::new()), time_col: None };
        let x = self.bind_expr(e, &empty, &mut None)?;
        match x.as_lit() {
            Some(Scalar::Null) => Ok(None),
            Some(Scalar::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Scalar::Int(_)) => Err(SqlError::new("2201W", "LIMIT must not be negative")),
            _ => Err(SqlError::mismatch("argument of LIMIT must be an integer constant")),
        }
    }

    fn column_ref(&self, parts: &[String], scope: &Scope) -> SqlResult<Expr> {
        let (qual, name) = match parts {
            [n] => (None, n),
            [q, n] => (Some(q), n),
            [_, q, n] => (Some(q), n),
            _ => return Err(SqlError::undefined_column(&parts.join("."))),
        };
        let hits: Vec<usize> = scope
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == *name && qual.map_or(!c.merged, |q| c.qualifier.as_deref() == Some(q.as_str())))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => {
                scope.used.borrow_mut()[*i] = true;
                Ok(Expr::Col { idx: *i, ty: scope.cols[*i].ty })
            }
            [] => self.outer_column(qual.map(String::as_str), name, parts),
            _ => Err(SqlError::new("42702", format!("column reference \"{name}\" is ambiguous"))),
        }
    }

    /// A column of an enclosing query: its value while a correlated subquery runs for one
    /// outer row, or (while the subquery is first bound) a typed NULL standing in for it.
    fn outer_column(&self, qual: Option<&str>, name: &str, parts: &[String]) -> SqlResult<Expr> {
        let matches = |q: &Option<String>, n: &str| n == name && qual.is_none_or(|x| q.as_deref() == Some(x));
        if let Some(((_, _, ty), v)) = self.outer_values.borrow().iter().find(|((q, n, _), _)| matches(q, n)) {
            return Ok(Expr::lit(v.clone(), *ty));
        }
        let outer = self.outer.borrow();
        if let Some(cols) = outer.last() {
            let hits: Vec<usize> =
                cols.iter().enumerate().filter(|(_, (q, n, _))| matches(q, n)).map(|(i, _)| i).collect();
            match hits.as_slice() {
                [i] => {
                    self.outer_refs.borrow_mut().push(*i);
                    return Ok(Expr::lit(Scalar::Null, cols[*i].2));
                }
                [] => {}
                _ => return Err(SqlError::new("42702", format!("column reference \"{name}\" is ambiguous"))),
            }
            if outer[..outer.len() - 1].iter().any(|cols| cols.iter().any(|(q, n, _)| matches(q, n))) {
                return Err(SqlError::unsupported("a subquery referring to a query two or more levels out"));
            }
        }
        Err(SqlError::undefined_column(&parts.join(".")))
    }

    /// Binds subquery `q` of an expression over `scope`. Without references to `scope` it is
    /// planned as is (`Ok(Err(plan))`); with them it becomes a correlated call, registered for
    /// the clause's Apply node, and its result column is returned (`Ok(Ok(expr))`).
    #[allow(clippy::type_complexity)]
    fn bind_subquery(
        &self,
        q: &ast::Query,
        scope: &Scope,
        kind: impl FnOnce(SqlType) -> SqlResult<(ApplyKind, SqlType)>,
    ) -> SqlResult<Result<Expr, (Plan, Vec<OutCol>)>> {
        self.outer.borrow_mut().push(scope.cols.iter().map(|c| (c.qualifier.clone(), c.name.clone(), c.ty)).collect());
        let mark = self.outer_refs.borrow().len();
        let bound = self.bind_query(q);
        self.outer.borrow_mut().pop();
        let mut refs: Vec<usize> = self.outer_refs.borrow_mut().drain(mark..).collect();
        let (plan, schema) = bound?;
        if refs.is_empty() {
            return Ok(Err((plan, schema)));
        }
        refs.sort_unstable();
        refs.dedup();
        let first_ty = schema.first().map_or(SqlType::Bool, |c| c.ty);
        let (kind, ty) = kind(first_ty)?;
        let outer = refs
            .iter()
            .map(|&i| {
                scope.used.borrow_mut()[i] = true;
                let c = &scope.cols[i];
                (i, c.qualifier.clone(), c.name.clone(), c.ty)
            })
            .collect();
        let call = ApplyCall { query: Box::new(q.clone()), kind, outer, ty };
        let mut guard = self.applies.borrow_mut();
        let calls = guard.as_mut().ok_or_else(|| {
            SqlError::unsupported("a subquery referring to the outer query here (only in WHERE and the select list of a query without GROUP BY)")
        })?;
        calls.push(call);
        Ok(Ok(Expr::Col { idx: APPLY_BASE + calls.len() - 1, ty }))
    }

    /// `plan` with correlated subqueries' result columns appended.
    fn apply_node(&self, plan: Plan, calls: Vec<ApplyCall>) -> Plan {
        let mut schema = plan.schema();
        for (k, c) in calls.iter().enumerate() {
            schema.push(OutCol { name: format!("subquery{k}"), ty: c.ty });
        }
        let env = super::exec::ApplyEnv { engine: self.engine.clone(), ctx: self.ctx, params: self.params.to_vec() };
        Plan::Apply { input: Box::new(plan), calls, env, schema }
    }

    /// Runs correlated subquery `call` with the outer columns set to `values`.
    pub fn run_correlated(&self, call: &ApplyCall, values: Vec<Scalar>) -> SqlResult<(Vec<OutCol>, Batch)> {
        *self.outer_values.borrow_mut() =
            call.outer.iter().zip(values).map(|((_, q, n, t), v)| ((q.clone(), n.clone(), *t), v)).collect();
        let (plan, schema) = self.bind_query(&call.query)?;
        let b = concat(run(&plan)?, &schema);
        Ok((schema, b))
    }

    /// Binds an expression. In aggregate mode (`agg` is `Some`), grouped expressions and
    /// aggregate calls become references to the aggregate's output.
    fn bind_expr(&self, e: &ast::Expr, scope: &Scope, agg: &mut Option<AggCtx>) -> SqlResult<Expr> {
        use ast::Expr as E;
        guard::check_depth()?;
        if let Some(a) = agg.as_mut() {
            let key = e.to_string();
            if let Some(i) = a.group_keys.iter().position(|k| *k == key) {
                return Ok(Expr::Col { idx: i, ty: a.group_exprs[i].ty() });
            }
            if let E::Function(f) = e {
                let name = object_name(&f.name).join(".");
                if agg::is_aggregate(&name) && f.over.is_none() {
                    if let Some(j) = a.agg_keys.iter().position(|k| *k == key) {
                        return Ok(Expr::Col { idx: a.group_exprs.len() + j, ty: a.aggs[j].ty });
                    }
                    let call = self.bind_agg_call(&name, f, scope, &mut None)?;
                    a.agg_keys.push(key);
                    a.aggs.push(call);
                    let j = a.aggs.len() - 1;
                    return Ok(Expr::Col { idx: a.group_exprs.len() + j, ty: a.aggs[j].ty });
                }
            }
            if let E::Identifier(_) | E::CompoundIdentifier(_) = e {
                let col = self.column_ref(&ident_parts(e), scope)?;
                let name = e.to_string();
                let _ = col;
                return Err(SqlError::new(
                    "42803",
                    format!("column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"),
                ));
            }
        } else if let E::Function(f) = e {
            let name = object_name(&f.name).join(".");
            if agg::is_aggregate(&name) && f.over.is_none() {
                return Err(SqlError::new("42803", format!("aggregate functions are not allowed here ({name})")));
            }
        }
        let x = match e {
            E::Identifier(_) | E::CompoundIdentifier(_) => return self.column_ref(&ident_parts(e), scope),
            E::Nested(inner) => return self.bind_expr(inner, scope, agg),
            E::Value(v) => self.literal(&v.value)?,
            E::TypedString(t) => {
                let ty = SqlType::from_name(&t.data_type.to_string())
                    .ok_or_else(|| SqlError::new("42704", format!("type \"{}\" does not exist", t.data_type)))?;
                let text = match &t.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let v = if ty == SqlType::Interval {
                    Scalar::Interval(parse_interval(&text).ok_or_else(|| SqlError::invalid_input("interval", &text))?)
                } else {
                    parse_text(&text, ty)?
                };
                Expr::lit(v, ty)
            }
            E::Interval(iv) => {
                let inner = self.bind_expr(&iv.value, scope, agg)?;
                let text = match inner.as_lit() {
                    Some(Scalar::Text(s)) => s.clone(),
                    Some(Scalar::Int(i)) => i.to_string(),
                    _ => return Err(SqlError::syntax("INTERVAL needs a constant")),
                };
                let text = match &iv.leading_field {
                    Some(f) => format!("{text} {f}"),
                    None => text,
                };
                Expr::lit(
                    Scalar::Interval(parse_interval(&text).ok_or_else(|| SqlError::invalid_input("interval", &text))?),
                    SqlType::Interval,
                )
            }
            E::BinaryOp { left, op, right } => {
                // A long left-deep chain (`a = 1 OR a = 2 OR …`, `x || y || …`, as ORMs write
                // them) is bound from its innermost operand outwards, without recursion.
                let mut spine = vec![(op, left.as_ref(), right.as_ref())];
                let mut leaf = left.as_ref();
                while let E::BinaryOp { left, op, right } = leaf {
                    spine.push((op, left.as_ref(), right.as_ref()));
                    leaf = left.as_ref();
                }
                if spine.len() < LONG_CHAIN {
                    let l = self.bind_expr(left, scope, agg)?;
                    let r = self.bind_expr(right, scope, agg)?;
                    self.bind_binary(op, left, right, l, r)?
                } else {
                    let mut acc = self.bind_expr(leaf, scope, agg)?;
                    for (op, left, right) in spine.into_iter().rev() {
                        let r = self.bind_expr(right, scope, agg)?;
                        let both_constant = acc.as_lit().is_some() && r.as_lit().is_some();
                        acc = self.bind_binary(op, left, right, acc, r)?;
                        if both_constant {
                            acc = fold(acc)?;
                        }
                    }
                    return Ok(acc);
                }
            }
            // A negated number is one literal, as PostgreSQL folds it: -9223372036854775808
            // is a bigint, not the negation of a numeric.
            E::UnaryOp { op: ast::UnaryOperator::Minus, expr: inner } if matches!(&**inner, E::Value(v) if matches!(v.value, ast::Value::Number(..))) =>
            {
                let E::Value(v) = &**inner else { unreachable!("matched above") };
                let ast::Value::Number(n, long) = &v.value else { unreachable!("matched above") };
                self.literal(&ast::Value::Number(format!("-{n}"), *long))?
            }
            E::UnaryOp { op, expr } => {
                let x = self.bind_expr(expr, scope, agg)?;
                match op {
                    ast::UnaryOperator::Not => Expr::Not(Box::new(coerce(x, SqlType::Bool)?)),
                    ast::UnaryOperator::Minus => {
                        if let Some(Scalar::Interval(iv)) = x.as_lit() {
                            Expr::lit(
                                Scalar::Interval(super::types::Interval {
                                    months: -iv.months,
                                    days: -iv.days,
                                    micros: -iv.micros,
                                }),
                                SqlType::Interval,
                            )
                        } else {
                            let x = if x.ty() == SqlType::Unknown { coerce(x, SqlType::Numeric)? } else { x };
                            Expr::Neg(Box::new(x))
                        }
                    }
                    ast::UnaryOperator::Plus => x,
                    other => return Err(SqlError::unsupported(format!("operator {other}"))),
                }
            }
            E::IsDistinctFrom(a, b) | E::IsNotDistinctFrom(a, b) => {
                // Null-safe comparison: as CASE over IS NULL and <>.
                let (yes, no) = if matches!(e, E::IsDistinctFrom(..)) { ("true", "false") } else { ("false", "true") };
                let text = format!(
                    "CASE WHEN ({a}) IS NULL AND ({b}) IS NULL THEN {no} WHEN ({a}) IS NULL OR ({b}) IS NULL THEN {yes} \
                     WHEN ({a}) <> ({b}) THEN {yes} ELSE {no} END"
                );
                let rewritten = crate::sql::parse::parse_expression(&text)?;
                self.bind_expr(&rewritten, scope, agg)?
            }
            E::IsNull(x) => Expr::IsNull { e: Box::new(self.bind_expr(x, scope, agg)?), negated: false },
            E::IsNotNull(x) => Expr::IsNull { e: Box::new(self.bind_expr(x, scope, agg)?), negated: true },
            E::IsTrue(x) | E::IsNotTrue(x) | E::IsFalse(x) | E::IsNotFalse(x) => Expr::IsBool {
                e: Box::new(coerce(self.bind_expr(x, scope, agg)?, SqlType::Bool)?),
                value: matches!(e, E::IsTrue(_) | E::IsNotTrue(_)),
                negated: matches!(e, E::IsNotTrue(_) | E::IsNotFalse(_)),
            },
            E::Cast { expr, data_type, .. }
                if matches!(
                    data_type.to_string().to_ascii_lowercase().trim_start_matches("pg_catalog."),
                    "regclass" | "regtype" | "regnamespace" | "regrole" | "oid" | "regproc"
                ) =>
            {
                let to = data_type.to_string().to_ascii_lowercase();
                let x = self.bind_expr(expr, scope, agg)?;
                self.oid_cast(x, to.trim_start_matches("pg_catalog."))?
            }
            E::Cast { expr, data_type, .. } => {
                let to = SqlType::from_name(&data_type.to_string())
                    .ok_or_else(|| SqlError::new("42704", format!("type \"{data_type}\" does not exist")))?;
                self.note_param(expr, to);
                let x = self.bind_expr(expr, scope, agg)?;
                if to == SqlType::Interval {
                    match x.as_lit() {
                        Some(Scalar::Text(t)) => Expr::lit(
                            Scalar::Interval(parse_interval(t).ok_or_else(|| SqlError::invalid_input("interval", t))?),
                            to,
                        ),
                        _ => return Err(SqlError::unsupported("casting a column to interval")),
                    }
                } else if let Some(scale) = numeric_scale(&data_type.to_string()).filter(|_| to == SqlType::Numeric) {
                    // numeric(p, s) rounds to s decimals, as PostgreSQL's does (the precision
                    // is not checked).
                    let cast = Expr::Cast { e: Box::new(x), to };
                    Expr::Func {
                        f: Func::Round,
                        args: vec![cast, Expr::lit(Scalar::Int(scale), SqlType::Int4)],
                        ty: to,
                    }
                } else {
                    Expr::Cast { e: Box::new(x), to }
                }
            }
            E::Between { expr, negated, low, high } => {
                let x = self.bind_expr(expr, scope, agg)?;
                self.note_param(low, x.ty());
                self.note_param(high, x.ty());
                let lo = self.binary(&ast::BinaryOperator::GtEq, x.clone(), self.bind_expr(low, scope, agg)?)?;
                let hi = self.binary(&ast::BinaryOperator::LtEq, x, self.bind_expr(high, scope, agg)?)?;
                let both = Expr::Bin { op: BinOp::And, l: Box::new(lo), r: Box::new(hi), ty: SqlType::Bool };
                if *negated { Expr::Not(Box::new(both)) } else { both }
            }
            E::In { expr, target: ast::InTarget::Subquery(q), negated, .. } => {
                let x = self.bind_expr(expr, scope, agg)?;
                let xc = x.clone();
                let (plan, schema) = match self.bind_subquery(q, scope, |_| Ok((ApplyKind::In(xc), SqlType::Bool)))? {
                    Ok(r) => return Ok(if *negated { Expr::Not(Box::new(r)) } else { r }),
                    Err(p) => p,
                };
                let (ty, vals) = self.run_values(plan, schema)?;
                let t =
                    func::common_type(&[x.ty(), ty]).ok_or_else(|| SqlError::mismatch("IN types cannot be matched"))?;
                let list = vals.into_iter().map(|v| coerce(Expr::lit(v, ty), t)).collect::<SqlResult<Vec<_>>>()?;
                if list.is_empty() {
                    Expr::lit(Scalar::Bool(*negated), SqlType::Bool)
                } else {
                    Expr::InList { e: Box::new(coerce(x, t)?), list, negated: *negated }
                }
            }
            E::Exists { subquery, negated } => {
                let (plan, schema) =
                    match self.bind_subquery(subquery, scope, |_| Ok((ApplyKind::Exists, SqlType::Bool)))? {
                        Ok(r) => return Ok(if *negated { Expr::Not(Box::new(r)) } else { r }),
                        Err(p) => p,
                    };
                let rows: usize = run(&plan)?.iter().map(|b| b.num_rows()).sum();
                let _ = schema;
                Expr::lit(Scalar::Bool((rows > 0) != *negated), SqlType::Bool)
            }
            E::Subquery(q) => {
                let (plan, schema) = match self.bind_subquery(q, scope, |t| Ok((ApplyKind::Scalar, t)))? {
                    Ok(r) => return Ok(r),
                    Err(p) => p,
                };
                let (ty, vals) = self.run_values(plan, schema)?;
                if vals.len() > 1 {
                    return Err(SqlError::new(
                        "21000",
                        "more than one row returned by a subquery used as an expression",
                    ));
                }
                Expr::lit(vals.into_iter().next().unwrap_or(Scalar::Null), ty)
            }
            E::In { expr, target: ast::InTarget::List(list), negated, .. } => {
                let x = self.bind_expr(expr, scope, agg)?;
                for it in list.iter() {
                    self.note_param(it, x.ty());
                }
                let mut items = Vec::with_capacity(list.len());
                let tys: Vec<SqlType> = std::iter::once(x.ty()).collect();
                for it in list {
                    let b = self.bind_expr(it, scope, agg)?;
                    items.push(b);
                }
                let mut all = tys;
                all.extend(items.iter().map(|i| i.ty()));
                let ty = func::common_type(&all).ok_or_else(|| SqlError::mismatch("IN types cannot be matched"))?;
                let items = items.into_iter().map(|i| coerce(i, ty)).collect::<SqlResult<Vec<_>>>()?;
                Expr::InList { e: Box::new(coerce(x, ty)?), list: items, negated: *negated }
            }
            E::Like { negated, expr, pattern, any: false, .. }
            | E::ILike { negated, expr, pattern, any: false, .. } => {
                let x = coerce(self.bind_expr(expr, scope, agg)?, SqlType::Text)?;
                let p = coerce(self.bind_expr(pattern, scope, agg)?, SqlType::Text)?;
                Expr::Like {
                    e: Box::new(x),
                    pattern: Box::new(p),
                    negated: *negated,
                    case_insensitive: matches!(e, E::ILike { .. }),
                }
            }
            E::Case { operand, conditions, else_result, .. } => {
                let op = operand.as_ref().map(|o| self.bind_expr(o, scope, agg)).transpose()?;
                let mut whens = Vec::new();
                for c in conditions {
                    let cond = self.bind_expr(&c.condition, scope, agg)?;
                    let cond = match &op {
                        Some(o) => self.binary(&ast::BinaryOperator::Eq, o.clone(), cond)?,
                        None => coerce(cond, SqlType::Bool)?,
                    };
                    whens.push((cond, self.bind_expr(&c.result, scope, agg)?));
                }
                let else_ = else_result.as_ref().map(|x| self.bind_expr(x, scope, agg)).transpose()?;
                let mut tys: Vec<SqlType> = whens.iter().map(|(_, v)| v.ty()).collect();
                if let Some(x) = &else_ {
                    tys.push(x.ty());
                }
                let ty = func::common_type(&tys).ok_or_else(|| SqlError::mismatch("CASE types cannot be matched"))?;
                let ty = if ty == SqlType::Unknown { SqlType::Text } else { ty };
                let whens = whens.into_iter().map(|(c, v)| Ok((c, coerce(v, ty)?))).collect::<SqlResult<Vec<_>>>()?;
                let else_ = else_.map(|x| coerce(x, ty)).transpose()?.map(Box::new);
                Expr::Case { whens, else_, ty }
            }
            E::Extract { field, expr, .. } => {
                let x = self.bind_expr(expr, scope, agg)?;
                let unit = Expr::lit(Scalar::Text(field.to_string().to_ascii_lowercase()), SqlType::Text);
                let x = if x.ty() == SqlType::Unknown { coerce(x, SqlType::TimestampTz)? } else { x };
                Expr::Func { f: Func::DatePart, args: vec![unit, x], ty: SqlType::Numeric }
            }
            E::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.bind_expr(expr, scope, agg)?];
                args.push(match substring_from {
                    Some(f) => self.bind_expr(f, scope, agg)?,
                    None => Expr::lit(Scalar::Int(1), SqlType::Int4),
                });
                if let Some(f) = substring_for {
                    args.push(self.bind_expr(f, scope, agg)?);
                }
                self.call("substr", args)?
            }
            E::Position { expr, r#in } => {
                let args = vec![self.bind_expr(r#in, scope, agg)?, self.bind_expr(expr, scope, agg)?];
                self.call("strpos", args)?
            }
            E::Trim { expr, trim_where, trim_what, .. } => {
                let mut args = vec![self.bind_expr(expr, scope, agg)?];
                if let Some(w) = trim_what {
                    args.push(self.bind_expr(w, scope, agg)?);
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                self.call(name, args)?
            }
            E::Ceil { expr, .. } => self.call("ceil", vec![self.bind_expr(expr, scope, agg)?])?,
            E::Floor { expr, .. } => self.call("floor", vec![self.bind_expr(expr, scope, agg)?])?,
            E::Function(f) => self.bind_function(f, scope, agg)?,
            // `(record).field` on the records set-returning functions make: (x, n).
            E::CompoundFieldAccess { root, access_chain } if access_chain.len() == 1 => {
                let field = match &access_chain[0] {
                    ast::AccessExpr::Dot(ast::Expr::Identifier(id)) => ident_name(id),
                    other => return Err(SqlError::unsupported(format!("field access {other}"))),
                };
                let rec = self.bind_expr(root, scope, agg)?;
                let k = match field.as_str() {
                    "x" => 0,
                    "n" => 1,
                    _ => {
                        return Err(SqlError::new(
                            "42703",
                            format!("could not identify column \"{field}\" in record data type"),
                        ));
                    }
                };
                Expr::Func {
                    f: Func::RecordField,
                    args: vec![coerce_text(rec)?, Expr::lit(Scalar::Int(k), SqlType::Int4)],
                    ty: SqlType::Int4,
                }
            }
            // fleetdb compares text by bytes (the C collation) whatever the COLLATE clause says.
            E::Collate { expr, .. } => return self.bind_expr(expr, scope, agg),
            E::AnyOp { left, compare_op, right, .. } | E::AllOp { left, compare_op, right } => {
                // x op ANY('{a,b}') / ALL(...) over an array literal: one comparison per element.
                let any = matches!(e, E::AnyOp { .. });
                let x = self.bind_expr(left, scope, agg)?;
                let arr = fold(self.bind_expr(right, scope, agg)?)?;
                let items = match arr.as_lit() {
                    Some(Scalar::Text(t)) => func::parse_text_array(t)?,
                    Some(Scalar::Null) => return Ok(Expr::lit(Scalar::Null, SqlType::Bool)),
                    _ => return Err(SqlError::unsupported("ANY/ALL over a non-constant array")),
                };
                let mut acc: Option<Expr> = None;
                for it in items {
                    let c = self.binary(compare_op, x.clone(), Expr::lit(Scalar::Text(it), SqlType::Unknown))?;
                    acc = Some(match acc {
                        None => c,
                        Some(a) => Expr::Bin {
                            op: if any { BinOp::Or } else { BinOp::And },
                            l: Box::new(a),
                            r: Box::new(c),
                            ty: SqlType::Bool,
                        },
                    });
                }
                acc.unwrap_or_else(|| Expr::lit(Scalar::Bool(!any), SqlType::Bool))
            }
            other => return Err(SqlError::unsupported(format!("expression {other}"))),
        };
        fold(x)
    }

    fn literal(&self, v: &ast::Value) -> SqlResult<Expr> {
        Ok(match v {
            ast::Value::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    if i32::try_from(i).is_ok() {
                        Expr::lit(Scalar::Int(i), SqlType::Int4)
                    } else {
                        Expr::lit(Scalar::Int(i), SqlType::Int8)
                    }
                } else {
                    Expr::lit(Scalar::Float(super::scalar::parse_numeric(n)?), SqlType::Numeric)
                }
            }
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                Expr::lit(Scalar::Text(s.clone()), SqlType::Unknown)
            }
            ast::Value::DollarQuotedString(d) => Expr::lit(Scalar::Text(d.value.clone()), SqlType::Unknown),
            ast::Value::Boolean(b) => Expr::lit(Scalar::Bool(*b), SqlType::Bool),
            ast::Value::Null => Expr::lit(Scalar::Null, SqlType::Unknown),
            ast::Value::Placeholder(p) => {
                let k: usize =
                    p.trim_start_matches('$').parse().map_err(|_| SqlError::syntax(format!("bad parameter {p}")))?;
                match self.params.get(k.wrapping_sub(1)) {
                    Some(Param { text: Some(text), ty }) if !ty.is_text() && *ty != SqlType::Interval => {
                        Expr::lit(parse_text(text, *ty)?, *ty)
                    }
                    Some(Param { text: Some(text), ty }) => Expr::lit(
                        Scalar::Text(text.clone()),
                        if *ty == SqlType::Unknown { SqlType::Unknown } else { *ty },
                    ),
                    Some(Param { text: None, ty }) => Expr::lit(Scalar::Null, *ty),
                    None if self.params.is_empty() => Expr::lit(Scalar::Null, SqlType::Unknown),
                    None => return Err(SqlError::new("08P01", format!("there is no parameter {p}"))),
                }
            }
            other => return Err(SqlError::unsupported(format!("literal {other}"))),
        })
    }

    fn call(&self, name: &str, args: Vec<Expr>) -> SqlResult<Expr> {
        let tys: Vec<SqlType> = args.iter().map(|a| a.ty()).collect();
        let (f, ty) = func::resolve(name, &tys)?;
        // Text-typed parameters of string functions; unknown literals take the common type.
        let args = match f {
            Func::Coalesce | Func::Greatest | Func::Least => {
                args.into_iter().map(|a| coerce(a, ty)).collect::<SqlResult<Vec<_>>>()?
            }
            Func::DateTrunc | Func::DatePart => {
                let mut it = args.into_iter();
                let unit = coerce(it.next().expect("arity checked"), SqlType::Text)?;
                let t = it.next().expect("arity checked");
                let t = if t.ty() == SqlType::Unknown { coerce(t, SqlType::TimestampTz)? } else { t };
                vec![unit, t]
            }
            _ => args
                .into_iter()
                .map(|a| if a.ty() == SqlType::Unknown { coerce(a, SqlType::Text) } else { Ok(a) })
                .collect::<SqlResult<Vec<_>>>()?,
        };
        let ty = match f {
            Func::DateTrunc => {
                if args[1].ty() == SqlType::Timestamp {
                    SqlType::Timestamp
                } else {
                    SqlType::TimestampTz
                }
            }
            Func::NullIf => args[0].ty(),
            _ => ty,
        };
        Ok(Expr::Func { f, args, ty })
    }

    fn bind_function(&self, f: &ast::Function, scope: &Scope, agg: &mut Option<AggCtx>) -> SqlResult<Expr> {
        let name = object_name(&f.name).join(".");
        let name = name.trim_start_matches("pg_catalog.").to_string();
        if let Some(over) = &f.over {
            return self.bind_window(&name, f, over, scope, agg);
        }
        if is_srf(&name) {
            let arg = match &f.args {
                ast::FunctionArguments::List(l) if l.args.len() == 1 => l.args[0].to_string(),
                _ => return Err(SqlError::unsupported(format!("{name} with these arguments"))),
            };
            return match self.srf.borrow().as_ref() {
                Some((key, base, elem_ty)) if *key == arg => Ok(if name.ends_with("_pg_expandarray") {
                    Expr::Col { idx: base + 2, ty: SqlType::Text }
                } else {
                    Expr::Col { idx: *base, ty: *elem_ty }
                }),
                _ => Err(SqlError::new("0A000", format!("set-returning function {name} is not allowed here"))),
            };
        }
        if window::is_window_only(&name) {
            return Err(SqlError::new("42809", format!("window function {name} requires an OVER clause")));
        }
        let args = self.function_args(f, scope, agg)?;
        match name.as_str() {
            "now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp" | "localtimestamp" => {
                return Ok(Expr::lit(Scalar::Time(self.ctx.now), SqlType::TimestampTz));
            }
            "current_date" => {
                return Ok(Expr::lit(
                    Scalar::Time(self.ctx.now.div_euclid(crate::util::time::MICROS_PER_DAY)),
                    SqlType::Date,
                ));
            }
            "version" => return Ok(Expr::lit(Scalar::Text(version_string()), SqlType::Text)),
            "current_database" | "current_catalog" => {
                return Ok(Expr::lit(Scalar::Text("fleetdb".into()), SqlType::Text));
            }
            "current_schema" => return Ok(Expr::lit(Scalar::Text("public".into()), SqlType::Text)),
            "current_user" | "session_user" | "user" => {
                return Ok(Expr::lit(Scalar::Text("fleetdb".into()), SqlType::Text));
            }
            "pi" => return Ok(Expr::lit(Scalar::Float(std::f64::consts::PI), SqlType::Float8)),
            // Catalog functions clients call while describing objects.
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_function_is_visible"
            | "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege" => {
                return Ok(Expr::lit(Scalar::Bool(true), SqlType::Bool));
            }
            "pg_relation_is_publishable" | "pg_is_in_recovery" => {
                return Ok(Expr::lit(Scalar::Bool(false), SqlType::Bool));
            }
            "pg_get_userbyid" => return Ok(Expr::lit(Scalar::Text("fleetdb".into()), SqlType::Text)),
            "pg_encoding_to_char" => return Ok(Expr::lit(Scalar::Text("UTF8".into()), SqlType::Text)),
            "current_schemas" => return Ok(Expr::lit(Scalar::Text("{pg_catalog,public}".into()), SqlType::Text)),
            "pg_backend_pid" => return Ok(Expr::lit(Scalar::Int(std::process::id() as i64), SqlType::Int4)),
            // pg_attrdef.adbin holds the default's SQL text already.
            "pg_get_expr" if !args.is_empty() => return Ok(args[0].clone()),
            // No comments, partitions or extended statistics in fleetdb.
            "pg_get_expr"
            | "col_description"
            | "obj_description"
            | "shobj_description"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_partkeydef" => {
                return Ok(Expr::lit(Scalar::Null, SqlType::Text));
            }
            "format_type" if !args.is_empty() => {
                let pairs = catalog::TYPES
                    .iter()
                    .map(|t| (t.0, catalog::format_type(t.0).unwrap_or(t.1).to_string()))
                    .collect();
                return self.oid_case(args[0].clone(), pairs);
            }
            "pg_get_indexdef" | "pg_get_constraintdef" if !args.is_empty() => {
                let index = name == "pg_get_indexdef";
                let pairs = catalog::relations(self.engine)
                    .into_iter()
                    .filter(|r| !r.key.is_empty())
                    .map(|r| {
                        let cols: Vec<&str> = r.key.iter().map(|&k| r.columns[k as usize - 1].0.as_str()).collect();
                        let def = if index {
                            format!(
                                "CREATE UNIQUE INDEX {0}_pkey ON public.{0} USING btree ({1})",
                                r.name,
                                cols.join(", ")
                            )
                        } else {
                            format!("PRIMARY KEY ({})", cols.join(", "))
                        };
                        (r.oid + 1, def)
                    })
                    .collect();
                return self.oid_case(args[0].clone(), pairs);
            }
            _ => {}
        }
        self.call(&name, args)
    }

    /// `f(...) OVER (...)`: registers the call and returns a reference to its result column.
    fn bind_window(
        &self,
        name: &str,
        f: &ast::Function,
        over: &ast::WindowType,
        scope: &Scope,
        agg: &mut Option<AggCtx>,
    ) -> SqlResult<Expr> {
        if self.windows.borrow().is_none() {
            return Err(SqlError::new("42P20", "window functions are not allowed here"));
        }
        let spec = match over {
            ast::WindowType::WindowSpec(w) => w.clone(),
            ast::WindowType::NamedWindow(id) => self.named_window(&ident_name(id))?,
        };
        let spec = match &spec.window_name {
            // OVER (w ORDER BY …) copies w's partitioning and adds to it.
            Some(base) => {
                let b = self.named_window(&ident_name(base))?;
                ast::WindowSpec {
                    window_name: None,
                    partition_by: b.partition_by,
                    order_by: if spec.order_by.is_empty() { b.order_by } else { spec.order_by.clone() },
                    window_frame: spec.window_frame.clone().or(b.window_frame),
                }
            }
            None => spec,
        };
        // Window calls cannot nest: bind what is inside with window functions disallowed.
        let outer = self.windows.replace(None);
        let bound = (|| -> SqlResult<_> {
            let (func, args, ty) = if window::is_window_only(name) {
                let args = self.function_args(f, scope, agg)?;
                let tys: Vec<SqlType> = args.iter().map(|a| a.ty()).collect();
                let (func, ty) = window::resolve(name, &tys).ok_or_else(|| {
                    SqlError::undefined_function(&format!(
                        "{name}({})",
                        tys.iter().map(|t| t.pg_name()).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                let mut args = args;
                if matches!(func, WinFunc::Lag | WinFunc::Lead) && args.len() == 3 {
                    args[2] = coerce(args[2].clone(), ty)?;
                }
                (func, args, ty)
            } else if agg::is_aggregate(name) {
                let call = self.bind_agg_call(name, f, scope, agg)?;
                if call.distinct {
                    return Err(SqlError::new("0A000", "DISTINCT is not implemented for window functions"));
                }
                let ty = call.ty;
                (WinFunc::Agg(call.clone()), call.args, ty)
            } else {
                return Err(SqlError::new(
                    "42809",
                    format!("{name} is not a window function nor an aggregate function"),
                ));
            };
            let partition =
                spec.partition_by.iter().map(|e| self.bind_expr(e, scope, agg)).collect::<SqlResult<Vec<_>>>()?;
            let mut order = Vec::with_capacity(spec.order_by.len());
            for o in &spec.order_by {
                let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                order.push((self.bind_expr(&o.expr, scope, agg)?, desc, o.options.nulls_first.unwrap_or(desc)));
            }
            let frame = match &spec.window_frame {
                None => Frame::DEFAULT,
                Some(wf) => self.frame(wf, &order)?,
            };
            Ok(WindowCall { func, args, partition, order, frame, ty })
        })();
        self.windows.replace(outer);
        let call = bound?;
        let mut guard = self.windows.borrow_mut();
        let calls = guard.as_mut().ok_or_else(|| SqlError::new("42P20", "window functions are not allowed here"))?;
        let ty = call.ty;
        let k = match calls.iter().position(|c| *c == call) {
            Some(k) => k,
            None => {
                calls.push(call);
                calls.len() - 1
            }
        };
        Ok(Expr::Col { idx: WINDOW_BASE + k, ty })
    }

    fn named_window(&self, name: &str) -> SqlResult<ast::WindowSpec> {
        self.named_windows
            .borrow()
            .iter()
            .find_map(|d| match d {
                ast::NamedWindowDefinition(id, ast::NamedWindowExpr::WindowSpec(w)) if ident_name(id) == name => {
                    Some(w.clone())
                }
                _ => None,
            })
            .ok_or_else(|| SqlError::new("42704", format!("window \"{name}\" does not exist")))
    }

    /// A window frame clause, checked as PostgreSQL checks it.
    fn frame(&self, wf: &ast::WindowFrame, order: &[(Expr, bool, bool)]) -> SqlResult<Frame> {
        let rows = match wf.units {
            ast::WindowFrameUnits::Rows => true,
            ast::WindowFrameUnits::Range => false,
            ast::WindowFrameUnits::Groups => return Err(SqlError::unsupported("GROUPS window frames")),
        };
        let bound = |b: &ast::WindowFrameBound, is_start: bool| -> SqlResult<Bound> {
            let offset = |e: &ast::Expr| -> SqlResult<f64> {
                let empty = Scope { cols: Vec::new(), used: RefCell::new(Vec::new()), time_col: None };
                let x = fold(self.bind_expr(e, &empty, &mut None)?)?;
                let v = match x.as_lit() {
                    Some(Scalar::Int(i)) if rows => *i as f64,
                    Some(Scalar::Int(i)) => *i as f64,
                    Some(Scalar::Float(f)) if !rows => *f,
                    Some(Scalar::Interval(iv)) if !rows => iv.approx_micros() as f64,
                    Some(Scalar::Text(t)) if !rows && order.first().is_some_and(|o| o.0.ty().is_timestamp()) => {
                        super::scalar::parse_interval(t).map(|iv| iv.approx_micros() as f64).ok_or_else(|| {
                            SqlError::new("22007", format!("invalid input syntax for type interval: \"{t}\""))
                        })?
                    }
                    Some(Scalar::Null) => {
                        return Err(SqlError::new("22004", "frame offset must not be null"));
                    }
                    _ => {
                        return Err(SqlError::mismatch(format!("frame offset {e} is not a constant of a usable type")));
                    }
                };
                if v < 0.0 {
                    return Err(SqlError::new("22013", "frame offset must not be negative"));
                }
                if !rows && order.len() != 1 {
                    return Err(SqlError::new(
                        "42P20",
                        "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column",
                    ));
                }
                Ok(v)
            };
            Ok(match b {
                ast::WindowFrameBound::CurrentRow => Bound::CurrentRow,
                ast::WindowFrameBound::Preceding(None) => {
                    if !is_start {
                        return Err(SqlError::new("42P20", "frame end cannot be UNBOUNDED PRECEDING"));
                    }
                    Bound::UnboundedPreceding
                }
                ast::WindowFrameBound::Following(None) => {
                    if is_start {
                        return Err(SqlError::new("42P20", "frame start cannot be UNBOUNDED FOLLOWING"));
                    }
                    Bound::UnboundedFollowing
                }
                ast::WindowFrameBound::Preceding(Some(e)) => Bound::Preceding(offset(e)?),
                ast::WindowFrameBound::Following(Some(e)) => Bound::Following(offset(e)?),
            })
        };
        let start = bound(&wf.start_bound, true)?;
        let end = match &wf.end_bound {
            Some(b) => bound(b, false)?,
            None => Bound::CurrentRow,
        };
        let rank = |b: Bound| match b {
            Bound::UnboundedPreceding => 0,
            Bound::Preceding(_) => 1,
            Bound::CurrentRow => 2,
            Bound::Following(_) => 3,
            Bound::UnboundedFollowing => 4,
        };
        if rank(start) == 2 && rank(end) == 1 {
            return Err(SqlError::new("42P20", "frame starting from current row cannot have preceding rows"));
        }
        if rank(start) == 3 && rank(end) < 3 {
            return Err(SqlError::new("42P20", "frame starting from following row cannot have preceding rows"));
        }
        Ok(Frame { rows, start, end })
    }

    /// A select item. In a query over system catalogs only (`lenient`), an item fleetdb cannot
    /// evaluate (array expressions, correlated subqueries) is NULL instead of an error: such
    /// items describe features fleetdb does not have (column defaults, collations, storage
    /// options), so NULL is their true value, and client introspection queries run whole.
    fn bind_item(&self, e: &ast::Expr, scope: &Scope, agg: &mut Option<AggCtx>, lenient: bool) -> SqlResult<Expr> {
        match self.bind_expr(e, scope, agg) {
            Err(err) if lenient && agg.is_none() && !err.sqlstate.starts_with("22") => {
                Ok(Expr::lit(Scalar::Null, SqlType::Text))
            }
            other => other,
        }
    }

    /// `CASE oid WHEN k THEN v … END`: a lookup in catalog data known at bind time.
    fn oid_case(&self, oid: Expr, pairs: Vec<(i64, String)>) -> SqlResult<Expr> {
        let oid = coerce(oid, SqlType::Int8)?;
        let whens = pairs
            .into_iter()
            .map(|(k, v)| {
                let cond =
                    self.binary(&ast::BinaryOperator::Eq, oid.clone(), Expr::lit(Scalar::Int(k), SqlType::Int8))?;
                Ok((cond, Expr::lit(Scalar::Text(v), SqlType::Text)))
            })
            .collect::<SqlResult<Vec<_>>>()?;
        Ok(Expr::Case { whens, else_: None, ty: SqlType::Text })
    }

    /// Casts to the object-identifier types: a name becomes its oid, an oid its name.
    fn oid_cast(&self, x: Expr, to: &str) -> SqlResult<Expr> {
        let rels = catalog::relations(self.engine);
        let mut pairs: Vec<(i64, String)> = match to {
            "regclass" => rels
                .iter()
                .flat_map(|r| {
                    let mut v = vec![(r.oid, r.name.clone())];
                    if !r.key.is_empty() {
                        v.push((r.oid + 1, format!("{}_pkey", r.name)));
                    }
                    v
                })
                .collect(),
            "regtype" => {
                catalog::TYPES.iter().map(|t| (t.0, catalog::format_type(t.0).unwrap_or(t.1).to_string())).collect()
            }
            "regnamespace" => vec![
                (catalog::NS_PG_CATALOG, "pg_catalog".into()),
                (catalog::NS_PUBLIC, "public".into()),
                (catalog::NS_INFORMATION_SCHEMA, "information_schema".into()),
            ],
            "regrole" => vec![(10, "fleetdb".into())],
            _ => return coerce(x, SqlType::Int8),
        };
        if let Some(Scalar::Text(t)) = x.as_lit() {
            let name = t.trim().trim_matches('"');
            let name = name.strip_prefix("public.").or_else(|| name.strip_prefix("pg_catalog.")).unwrap_or(name);
            if to == "regclass"
                && let Some(oid) = catalog::system_rel_oid(name)
            {
                return Ok(Expr::lit(Scalar::Int(oid), SqlType::Int8));
            }
            if let Ok(n) = name.parse::<i64>() {
                return Ok(Expr::lit(Scalar::Int(n), SqlType::Int8));
            }
            if to == "regtype"
                && let Some(ty) = SqlType::from_name(name)
            {
                return Ok(Expr::lit(Scalar::Int(ty.oid() as i64), SqlType::Int8));
            }
            return match pairs.iter().find(|p| p.1 == name) {
                Some(p) => Ok(Expr::lit(Scalar::Int(p.0), SqlType::Int8)),
                None if to == "regclass" => Err(SqlError::undefined_relation(name)),
                None => Err(SqlError::new("42704", format!("{to} \"{name}\" does not exist"))),
            };
        }
        pairs.sort();
        self.oid_case(x, pairs)
    }

    fn function_args(&self, f: &ast::Function, scope: &Scope, agg: &mut Option<AggCtx>) -> SqlResult<Vec<Expr>> {
        match &f.args {
            ast::FunctionArguments::None => Ok(Vec::new()),
            ast::FunctionArguments::List(l) => l
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => self.bind_expr(x, scope, agg),
                    other => Err(SqlError::unsupported(format!("function argument {other}"))),
                })
                .collect(),
            ast::FunctionArguments::Subquery(_) => Err(SqlError::unsupported("subqueries")),
        }
    }

    /// An aggregate call. Its arguments are bound in `inner` mode: `None` for a plain aggregate,
    /// the query's aggregation when the aggregate is a window over grouped rows.
    fn bind_agg_call(
        &self,
        name: &str,
        f: &ast::Function,
        scope: &Scope,
        inner: &mut Option<AggCtx>,
    ) -> SqlResult<AggCall> {
        // `agg(x) FILTER (WHERE c)` is `agg(CASE WHEN c THEN x END)`: the aggregates skip
        // NULL inputs, and `count(*)` counts `CASE WHEN c THEN 1 END`.
        if let Some(cond) = &f.filter {
            let when = |x: ast::Expr| ast::Expr::Case {
                case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                operand: None,
                conditions: vec![ast::CaseWhen { condition: (**cond).clone(), result: x }],
                else_result: None,
            };
            let mut g = f.clone();
            g.filter = None;
            if let Some(o) = g.within_group.first_mut() {
                o.expr = when(o.expr.clone());
            } else if let ast::FunctionArguments::List(l) = &mut g.args
                && let Some(first) = l.args.first_mut()
            {
                match first {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => {
                        let one = ast::Expr::value(ast::Value::Number("1".into(), false));
                        *first = ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(when(one)));
                    }
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => *x = when(x.clone()),
                    other => return Err(SqlError::unsupported(format!("FILTER with aggregate argument {other}"))),
                }
            }
            return self.bind_agg_call(name, &g, scope, inner);
        }
        let (star, distinct, arg_asts) = match &f.args {
            ast::FunctionArguments::List(l) => {
                if !l.clauses.is_empty() {
                    return Err(SqlError::unsupported(format!("{name}(… ORDER BY …) (not supported yet)")));
                }
                let star =
                    l.args.iter().any(|a| matches!(a, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)));
                let distinct = matches!(l.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
                (
                    star,
                    distinct,
                    l.args
                        .iter()
                        .filter(|a| !matches!(a, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)))
                        .collect::<Vec<_>>(),
                )
            }
            ast::FunctionArguments::None => (false, false, Vec::new()),
            ast::FunctionArguments::Subquery(_) => return Err(SqlError::unsupported("subqueries")),
        };
        let mut args = Vec::new();
        for a in arg_asts {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => {
                    if inner.is_none() && contains_agg(x) {
                        return Err(SqlError::new("42803", "aggregate function calls cannot be nested"));
                    }
                    let b = self.bind_expr(x, scope, inner)?;
                    args.push(if b.ty() == SqlType::Unknown { coerce(b, SqlType::Text)? } else { b });
                }
                other => return Err(SqlError::unsupported(format!("aggregate argument {other}"))),
            }
        }
        // percentile_cont(fraction) WITHIN GROUP (ORDER BY value): arguments value, fraction.
        let mut within_desc = false;
        match f.within_group.as_slice() {
            [] if name.starts_with("percentile_") => {
                return Err(SqlError::new(
                    "42809",
                    format!("WITHIN GROUP is required for ordered-set aggregate {name}"),
                ));
            }
            [] => {}
            [o] if name.starts_with("percentile_") && args.len() == 1 => {
                within_desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                let fraction = coerce(fold(args.remove(0))?, SqlType::Float8)?;
                args.push(self.bind_expr(&o.expr, scope, inner)?);
                args.push(fraction);
            }
            _ => {
                return Err(SqlError::new(
                    "42809",
                    format!("{name} is not an ordered-set aggregate with one argument"),
                ));
            }
        }
        let tys: Vec<SqlType> = args.iter().map(|a| a.ty()).collect();
        let (func, ty) = agg::resolve(name, &tys, star).ok_or_else(|| {
            SqlError::undefined_function(&format!(
                "{name}({})",
                tys.iter().map(|t| t.pg_name()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let func = match func {
            agg::AggFunc::PercentileCont { .. } => agg::AggFunc::PercentileCont { desc: within_desc },
            agg::AggFunc::PercentileDisc { .. } => agg::AggFunc::PercentileDisc { desc: within_desc },
            f => f,
        };
        Ok(AggCall { func, args, distinct, ty })
    }

    /// `l op r` where `l` and `r` are `left` and `right` bound.
    fn bind_binary(
        &self,
        op: &ast::BinaryOperator,
        left: &ast::Expr,
        right: &ast::Expr,
        l: Expr,
        r: Expr,
    ) -> SqlResult<Expr> {
        // `x op $1`: the parameter takes x's type (as PostgreSQL infers it).
        let arith = !matches!(
            op,
            ast::BinaryOperator::StringConcat | ast::BinaryOperator::Arrow | ast::BinaryOperator::LongArrow
        );
        if arith {
            self.note_param(left, r.ty());
            self.note_param(right, l.ty());
        }
        self.binary(op, l, r)
    }

    fn binary(&self, op: &ast::BinaryOperator, l: Expr, r: Expr) -> SqlResult<Expr> {
        use ast::BinaryOperator as B;
        let bop = match op {
            B::Plus => BinOp::Add,
            B::Minus => BinOp::Sub,
            B::Multiply => BinOp::Mul,
            B::Divide => BinOp::Div,
            B::Modulo => BinOp::Mod,
            B::Eq => BinOp::Eq,
            B::NotEq => BinOp::NotEq,
            B::Lt => BinOp::Lt,
            B::LtEq => BinOp::LtEq,
            B::Gt => BinOp::Gt,
            B::GtEq => BinOp::GtEq,
            B::And => BinOp::And,
            B::Or => BinOp::Or,
            B::StringConcat => BinOp::Concat,
            B::PGExp => return self.call("power", vec![l, r]),
            B::Arrow | B::LongArrow | B::HashArrow | B::HashLongArrow => return json_operator(op, l, r),
            B::PGRegexMatch => return regex_operator("~", l, r),
            B::PGRegexIMatch => return regex_operator("~*", l, r),
            B::PGRegexNotMatch => return regex_operator("!~", l, r),
            B::PGRegexNotIMatch => return regex_operator("!~*", l, r),
            B::PGCustomBinaryOperator(parts)
                if parts.len() == 2
                    && parts[0] == "pg_catalog"
                    && ["~", "~*", "!~", "!~*"].contains(&parts[1].as_str()) =>
            {
                return regex_operator(&parts[1], l, r);
            }
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
        };
        let (lt, rt) = (l.ty(), r.ty());
        // timestamp ± interval
        if let Some(Scalar::Interval(iv)) = r.as_lit().cloned()
            && (lt.is_timestamp() || lt == SqlType::Date || lt == SqlType::Unknown)
            && matches!(bop, BinOp::Add | BinOp::Sub)
        {
            // date + interval is a timestamp without time zone, as in PostgreSQL.
            let l = match lt {
                SqlType::Timestamp => l,
                SqlType::Date => coerce(l, SqlType::Timestamp)?,
                _ => coerce(l, SqlType::TimestampTz)?,
            };
            let iv = if bop == BinOp::Sub {
                super::types::Interval { months: -iv.months, days: -iv.days, micros: -iv.micros }
            } else {
                iv
            };
            let ty = l.ty();
            return Ok(Expr::Func {
                f: Func::AddInterval,
                args: vec![l, Expr::lit(Scalar::Interval(iv), SqlType::Interval)],
                ty,
            });
        }
        match bop {
            BinOp::And | BinOp::Or => Ok(Expr::Bin {
                op: bop,
                l: Box::new(coerce(l, SqlType::Bool)?),
                r: Box::new(coerce(r, SqlType::Bool)?),
                ty: SqlType::Bool,
            }),
            BinOp::Concat => {
                Ok(Expr::Bin { op: bop, l: Box::new(coerce_text(l)?), r: Box::new(coerce_text(r)?), ty: SqlType::Text })
            }
            _ if bop.is_comparison() => {
                let (l, r) = unify(l, r)?;
                Ok(Expr::Bin { op: bop, l: Box::new(l), r: Box::new(r), ty: SqlType::Bool })
            }
            _ => {
                let (l, r) = match (lt, rt) {
                    (SqlType::Unknown, t) if t.is_numeric() => (coerce(l, t)?, r),
                    (t, SqlType::Unknown) if t.is_numeric() => (l, coerce(r, t)?),
                    (SqlType::Unknown, SqlType::Unknown) => {
                        (coerce(l, SqlType::Numeric)?, coerce(r, SqlType::Numeric)?)
                    }
                    _ => (l, r),
                };
                let (lt, rt) = (l.ty(), r.ty());
                if bop == BinOp::Sub
                    && (lt.is_timestamp() || lt == SqlType::Date)
                    && (rt.is_timestamp() || rt == SqlType::Date)
                {
                    let (l, r) = unify(l, r)?;
                    return Ok(Expr::Bin { op: bop, l: Box::new(l), r: Box::new(r), ty: SqlType::Interval });
                }
                if !lt.is_numeric() || !rt.is_numeric() {
                    return Err(SqlError::undefined_function(&format!(
                        "operator {} ({}, {})",
                        bop.symbol(),
                        lt.pg_name(),
                        rt.pg_name()
                    ))
                    .with_hint("No operator matches the given name and argument types."));
                }
                let ty = func::common_type(&[lt, rt]).unwrap_or(SqlType::Float8);
                Ok(Expr::Bin { op: bop, l: Box::new(l), r: Box::new(r), ty })
            }
        }
    }
}

fn is_srf(name: &str) -> bool {
    matches!(name, "unnest" | "_pg_expandarray" | "information_schema._pg_expandarray")
}

/// (whether it is `_pg_expandarray`, argument) of each set-returning call in `e`.
fn find_srf_args(e: &ast::Expr, out: &mut Vec<(bool, ast::Expr)>) {
    use ast::Expr as E;
    match e {
        E::Function(f) => {
            let name = object_name(&f.name).join(".");
            let name = name.trim_start_matches("pg_catalog.");
            if let ast::FunctionArguments::List(l) = &f.args {
                for a in &l.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = a {
                        if is_srf(name) && f.over.is_none() {
                            out.push((name.ends_with("_pg_expandarray"), x.clone()));
                        } else {
                            find_srf_args(x, out);
                        }
                    }
                }
            }
        }
        E::CompoundFieldAccess { root, .. } => find_srf_args(root, out),
        E::Nested(x) | E::Cast { expr: x, .. } | E::UnaryOp { expr: x, .. } => find_srf_args(x, out),
        E::BinaryOp { left, right, .. } => {
            find_srf_args(left, out);
            find_srf_args(right, out);
        }
        _ => {}
    }
}

/// A scan of rows computed at plan time (VALUES, catalogs, rows handed to the binder).
fn rows_scan(schema: Vec<OutCol>, rows: Arc<Batch>) -> Plan {
    Plan::Scan {
        source: Source::Rows(rows),
        used: vec![true; schema.len()],
        schema,
        time_range: (i64::MIN, i64::MAX),
        tags: Vec::new(),
        ranges: Vec::new(),
        stats: Arc::new(ScanStats::default()),
    }
}

/// Whether every relation in `from` is a system catalog (pg_catalog, information_schema).
fn reads_only_catalogs(from: &[ast::TableWithJoins]) -> bool {
    let is_catalog = |f: &ast::TableFactor| match f {
        ast::TableFactor::Table { name, .. } => {
            let parts = object_name(name);
            match parts.as_slice() {
                [n] => n.starts_with("pg_"),
                [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
                _ => false,
            }
        }
        _ => false,
    };
    !from.is_empty() && from.iter().all(|t| is_catalog(&t.relation) && t.joins.iter().all(|j| is_catalog(&j.relation)))
}

/// `~`, `~*`, `!~`, `!~*`: POSIX regular expression match.
fn regex_operator(op: &str, l: Expr, r: Expr) -> SqlResult<Expr> {
    let l = coerce_text(l)?;
    let r = coerce_text(r)?;
    if !l.ty().is_text() || !r.ty().is_text() {
        return Err(SqlError::new(
            "42883",
            format!("operator does not exist: {} {op} {}", l.ty().pg_name(), r.ty().pg_name()),
        ));
    }
    let f = if op.ends_with('*') { Func::RegexIMatch } else { Func::RegexMatch };
    let m = Expr::Func { f, args: vec![l, r], ty: SqlType::Bool };
    Ok(if op.starts_with('!') { Expr::Not(Box::new(m)) } else { m })
}

/// `->`, `->>`, `#>`, `#>>` on json and jsonb.
fn json_operator(op: &ast::BinaryOperator, l: Expr, r: Expr) -> SqlResult<Expr> {
    use ast::BinaryOperator as B;
    if l.ty() == SqlType::Unknown && r.ty() == SqlType::Unknown {
        return Err(SqlError::new("42725", format!("operator is not unique: unknown {op} unknown")));
    }
    let l = if l.ty() == SqlType::Unknown { coerce(l, SqlType::Json)? } else { l };
    let r = if r.ty() == SqlType::Unknown { coerce(r, SqlType::Text)? } else { r };
    let (lt, rt) = (l.ty(), r.ty());
    let path = matches!(op, B::HashArrow | B::HashLongArrow);
    if !lt.is_json() || !(rt.is_text() || (!path && rt.is_integer())) {
        return Err(SqlError::new("42883", format!("operator does not exist: {} {op} {}", lt.pg_name(), rt.pg_name())));
    }
    let (f, ty) = match op {
        B::Arrow => (Func::JsonGet, lt),
        B::LongArrow => (Func::JsonGetText, SqlType::Text),
        B::HashArrow => (Func::JsonPath, lt),
        _ => (Func::JsonPathText, SqlType::Text),
    };
    Ok(Expr::Func { f, args: vec![l, r], ty })
}

fn split_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Bin { op: BinOp::And, l, r, .. } => {
            split_and(*l, out);
            split_and(*r, out);
        }
        other => out.push(other),
    }
}

/// Scans under a join decode every column (per-side column tracking is not done yet).
/// Tells the scans under `p` (through filters and joins) which of their columns the query
/// reads; the others are not decoded. `used` is indexed by `p`'s output columns.
fn set_used(p: &mut Plan, used: &[bool]) {
    match p {
        Plan::Scan { used: u, schema, .. } if used.len() == schema.len() => *u = used.to_vec(),
        Plan::Filter { input, .. } => set_used(input, used),
        Plan::Apply { input, .. } => {
            let w = input.schema().len();
            if used.len() >= w {
                set_used(input, &used[..w]);
            }
        }
        Plan::Join { left, right, schema, .. } if used.len() == schema.len() => {
            let lw = left.schema().len();
            set_used(left, &used[..lw]);
            set_used(right, &used[lw..]);
        }
        _ => {}
    }
}

fn mark_all_used(p: &mut Plan) {
    match p {
        Plan::Scan { used, schema, .. } if used.is_empty() => *used = vec![true; schema.len()],
        Plan::Filter { input, .. } => mark_all_used(input),
        _ => {}
    }
}

fn ident_parts(e: &ast::Expr) -> Vec<String> {
    match e {
        ast::Expr::Identifier(i) => vec![ident_name(i)],
        ast::Expr::CompoundIdentifier(v) => v.iter().map(ident_name).collect(),
        _ => Vec::new(),
    }
}

/// A client-visible output type (unknown literals are text).
fn out_ty(t: SqlType) -> SqlType {
    if t == SqlType::Unknown { SqlType::Text } else { t }
}

/// Gives an expression type `to`: unknown literals are parsed, numerics widened.
pub fn coerce(e: Expr, to: SqlType) -> SqlResult<Expr> {
    let from = e.ty();
    if from == to || to == SqlType::Unknown {
        return Ok(e);
    }
    if let Expr::Lit { value, .. } = &e
        && from == SqlType::Unknown
    {
        let v = match value {
            Scalar::Null => Scalar::Null,
            Scalar::Text(t) if to == SqlType::Interval => {
                Scalar::Interval(parse_interval(t).ok_or_else(|| SqlError::invalid_input("interval", t))?)
            }
            Scalar::Text(t) => parse_text(t, to)?,
            other => other.clone(),
        };
        return Ok(Expr::lit(v, to));
    }
    let ok = (from.is_numeric() && to.is_numeric())
        || (from.is_text() && to.is_text())
        || (from == SqlType::Date && to.is_timestamp())
        || (from.is_timestamp() && to.is_timestamp())
        || (from.is_json() && to.is_text())
        || from == SqlType::Unknown;
    if !ok {
        return Err(SqlError::mismatch(format!("expected {}, got {}", to.pg_name(), from.pg_name())));
    }
    Ok(Expr::Cast { e: Box::new(e), to })
}

fn coerce_text(e: Expr) -> SqlResult<Expr> {
    if e.ty().is_text() || e.ty().is_json() {
        coerce(e, SqlType::Text)
    } else {
        Ok(Expr::Cast { e: Box::new(e), to: SqlType::Text })
    }
}

/// Makes both sides of a comparison the same family of type.
fn unify(l: Expr, r: Expr) -> SqlResult<(Expr, Expr)> {
    let (lt, rt) = (l.ty(), r.ty());
    let err = || {
        SqlError::undefined_function(&format!("operator ({}, {})", lt.pg_name(), rt.pg_name())).with_hint(
            "No operator matches the given name and argument types. You might need to add explicit type casts.",
        )
    };
    Ok(match (lt, rt) {
        (a, b) if a == b => (l, r),
        (SqlType::Unknown, t) => (coerce(l, t)?, r),
        (t, SqlType::Unknown) => (l, coerce(r, t)?),
        (a, b) if a.is_numeric() && b.is_numeric() => {
            let t = func::common_type(&[a, b]).ok_or_else(err)?;
            (coerce(l, t)?, coerce(r, t)?)
        }
        (a, b) if (a.is_text() || a.is_json()) && (b.is_text() || b.is_json()) => {
            (coerce(l, SqlType::Text)?, coerce(r, SqlType::Text)?)
        }
        (a, b) if (a.is_timestamp() || a == SqlType::Date) && (b.is_timestamp() || b == SqlType::Date) => {
            (coerce(l, SqlType::TimestampTz)?, coerce(r, SqlType::TimestampTz)?)
        }
        _ => return Err(err()),
    })
}

/// Evaluates an expression that reads no column (constant folding).
pub fn fold(e: Expr) -> SqlResult<Expr> {
    if matches!(e, Expr::Lit { .. } | Expr::Func { f: Func::PgSleep, .. }) {
        return Ok(e);
    }
    let mut reads = false;
    e.columns(&mut |_| reads = true);
    if reads {
        return Ok(e);
    }
    let one = Batch {
        fields: vec![Field::new("x", crate::batch::DataType::Bool)],
        columns: vec![Column::new(Values::Bool(vec![true]))],
    };
    let c = eval(&e, &one)?;
    Ok(Expr::lit(Scalar::from_column(&c, e.ty(), 0), e.ty()))
}

/// `column = 'text'` conjuncts of `pred`, which a datastore scan can answer from tag indexes.
/// `column op number` conditions (`<`, `<=`, `>`, `>=`, `=`, BETWEEN) on numeric columns, as
/// closed ranges `[lo, hi]` a row's value must fall in: blocks whose min/max lie outside are
/// skipped. (Closed bounds are conservative for `<` and `>`.)
fn ranges_of(pred: &Expr) -> Vec<(usize, f64, f64)> {
    let mut out = Vec::new();
    let mut stack = vec![pred];
    // A number, possibly cast to the column's numeric type.
    let num = |e: &Expr| {
        let lit = match e {
            Expr::Cast { e, to } if to.is_numeric() => e.as_lit(),
            _ => e.as_lit(),
        };
        match lit {
            Some(Scalar::Int(i)) => Some(*i as f64),
            Some(Scalar::Float(f)) if !f.is_nan() => Some(*f),
            _ => None,
        }
    };
    let col = |e: &Expr| match e {
        Expr::Col { idx, ty } if ty.is_numeric() => Some(*idx),
        Expr::Cast { e, to } if to.is_numeric() => match e.as_ref() {
            Expr::Col { idx, ty } if ty.is_numeric() => Some(*idx),
            _ => None,
        },
        _ => None,
    };
    while let Some(e) = stack.pop() {
        let Expr::Bin { op, l, r, .. } = e else { continue };
        if *op == BinOp::And {
            stack.push(l);
            stack.push(r);
            continue;
        }
        // Normalise to `column op value`.
        let (c, v, op) = match (col(l), num(r), col(r), num(l)) {
            (Some(c), Some(v), _, _) => (c, v, *op),
            (_, _, Some(c), Some(v)) => (
                c,
                v,
                match op {
                    BinOp::Lt => BinOp::Gt,
                    BinOp::LtEq => BinOp::GtEq,
                    BinOp::Gt => BinOp::Lt,
                    BinOp::GtEq => BinOp::LtEq,
                    o => *o,
                },
            ),
            _ => continue,
        };
        match op {
            BinOp::Eq => out.push((c, v, v)),
            BinOp::Lt | BinOp::LtEq => out.push((c, f64::NEG_INFINITY, v)),
            BinOp::Gt | BinOp::GtEq => out.push((c, v, f64::INFINITY)),
            _ => {}
        }
    }
    out
}

fn tags_of(pred: &Expr) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut stack = vec![pred];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Bin { op: BinOp::And, l, r, .. } => {
                stack.push(l);
                stack.push(r);
            }
            Expr::Bin { op: BinOp::Eq, l, r, .. } => match (l.as_ref(), r.as_ref()) {
                (Expr::Col { idx, ty }, Expr::Lit { value: Scalar::Text(v), .. })
                | (Expr::Lit { value: Scalar::Text(v), .. }, Expr::Col { idx, ty })
                    if ty.is_text() =>
                {
                    out.push((*idx, v.clone()));
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// The `[lo, hi)` range of column `time_col` implied by the conjuncts of `pred`.
fn time_range_of(pred: &Expr, time_col: usize) -> (i64, i64) {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    let mut stack = vec![pred];
    while let Some(e) = stack.pop() {
        if let Expr::Bin { op, l, r, .. } = e {
            if *op == BinOp::And {
                stack.push(l);
                stack.push(r);
                continue;
            }
            let (col_left, lit) = match (l.as_ref(), r.as_ref()) {
                (Expr::Col { idx, .. }, Expr::Lit { value: Scalar::Time(t), .. }) if *idx == time_col => (true, *t),
                (Expr::Lit { value: Scalar::Time(t), .. }, Expr::Col { idx, .. }) if *idx == time_col => (false, *t),
                _ => continue,
            };
            let op = if col_left {
                *op
            } else {
                match op {
                    BinOp::Lt => BinOp::Gt,
                    BinOp::LtEq => BinOp::GtEq,
                    BinOp::Gt => BinOp::Lt,
                    BinOp::GtEq => BinOp::LtEq,
                    other => *other,
                }
            };
            match op {
                BinOp::Gt => lo = lo.max(lit.saturating_add(1)),
                BinOp::GtEq => lo = lo.max(lit),
                BinOp::Lt => hi = hi.min(lit),
                BinOp::LtEq => hi = hi.min(lit.saturating_add(1)),
                BinOp::Eq => {
                    lo = lo.max(lit);
                    hi = hi.min(lit.saturating_add(1));
                }
                _ => {}
            }
        }
    }
    (lo, hi)
}

/// The PostgreSQL version fleetdb reports (`server_version`), whose protocol and catalogs it
/// follows.
pub const SERVER_VERSION: &str = "16.0";

pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (fleetdb {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION")
    )
}

/// The scale of `numeric(p, s)` / `decimal(p, s)` (0 for `numeric(p)`), if the type has one.
fn numeric_scale(type_text: &str) -> Option<i64> {
    let t = type_text.trim().to_ascii_lowercase();
    let args = t.strip_prefix("numeric").or_else(|| t.strip_prefix("decimal"))?.trim();
    let inner = args.strip_prefix('(')?.strip_suffix(')')?;
    let mut parts = inner.split(',').map(str::trim);
    let _precision: i64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some(s) => s.parse().ok(),
        None => Some(0),
    }
}
