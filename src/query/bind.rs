//! The binder and planner: sqlparser's AST to a typed [`Plan`]. Names are resolved against
//! fleetdb's objects (tables, datastores, channels), literals get PostgreSQL's types (an untyped
//! string takes the type its context needs), constant subexpressions are folded (so
//! `now() - interval '1 day'` is a timestamp literal), and `time` comparisons become the scan's
//! time range, which prunes partitions and blocks.

use std::cell::RefCell;
use std::sync::Arc;

use sqlparser::ast;

use super::agg::AggCall;
use super::error::{SqlError, SqlResult};
use super::expr::{EvalCtx, Expr};
use super::guard;
use super::plan::{ApplyCall, ApplyKind, InputSlot, OutCol, Plan, Source};
use super::scalar::{Param, Scalar};
use super::types::SqlType;
use super::window::WindowCall;
use crate::batch::Batch;
use crate::engine::Engine;

mod call;
mod coerce;
mod expr;
mod from;
mod prune;
mod pushagg;
mod select;

pub(crate) use super::types::type_of_oid;
use coerce::*;
pub(crate) use coerce::{coerce, fold};
use from::*;
use prune::*;
use select::*;

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
pub(crate) const MAX_COLUMNS: usize = 1664;

pub(crate) fn too_many_columns() -> SqlError {
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

/// What the binder reads of datasets: whether one exists, its content versions, a program
/// run's logs. The dataset layer implements it; the statement layer hands it to the binder.
pub trait DatasetSource: Send + Sync {
    fn exists(&self, name: &str) -> bool;
    /// For a dataset with no content yet: its query (`None` for a program dataset), whose
    /// columns an empty content has. `None` when it has content (or does not exist).
    fn without_content(&self, name: &str) -> Option<Option<String>>;
    /// Content version `which` (an id, `$LATEST` or `$LATEST_SUCCEEDED`): columns and rows.
    fn content(&self, name: &str, which: &str) -> crate::Result<(Vec<OutCol>, Batch)>;
    /// A program run's standard output and error.
    fn logs(&self, name: &str, version: u64) -> crate::Result<(String, String)>;
}

pub(crate) struct Binder<'a> {
    pub engine: &'a Arc<Engine>,
    /// Where `dataset_content(…)`, `dataset_logs(…)` and datasets named in FROM are read;
    /// without it no dataset is visible.
    datasets: Option<Arc<dyn DatasetSource>>,
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
    /// The target columns' types of the INSERT whose VALUES list is being bound: each value
    /// takes its column's type, as PostgreSQL assigns a row's values (`Unknown`: no type).
    insert_targets: RefCell<Option<Vec<SqlType>>>,
    /// Whether the plan holds something true only of the moment it was bound: `now()`, an
    /// uncorrelated subquery's answer, a correlated one's clock, a system view's or a
    /// dataset's rows. Such a plan is not run again later (see [`Binder::bound_the_moment`]).
    moment: std::cell::Cell<bool>,
}

/// Rows whose `expr` (SQL over a datastore's columns) is in `[from, to)`, in microseconds
/// (`from` is `i64::MIN` for no lower bound).
#[derive(Clone, Debug)]
pub(crate) struct DeltaWindow {
    pub expr: String,
    pub from: i64,
    pub to: i64,
}

impl DeltaWindow {
    /// The window as a SQL condition over a datastore's columns.
    pub(crate) fn condition(&self) -> String {
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

/// Correlated subqueries' results are bound as columns from this index up, and renumbered once
/// the width of the Apply node's input is known.
const APPLY_BASE: usize = usize::MAX / 4;

/// Window results are bound as columns from this index up, and renumbered once the width of
/// the Window node's input is known.
const WINDOW_BASE: usize = usize::MAX / 2;

fn ident_name(i: &ast::Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
}

impl<'a> Binder<'a> {
    pub(crate) fn new(engine: &'a Arc<Engine>, ctx: EvalCtx, params: &'a [Param]) -> Binder<'a> {
        Binder {
            engine,
            datasets: None,
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
            insert_targets: Default::default(),
            moment: Default::default(),
        }
    }

    /// Whether what was bound holds a constant of the moment it was bound (`now()`, a
    /// subquery's answer, a system view's rows): a plan that does may not be kept and run
    /// again on later input; one that does not reads everything when it runs.
    pub(crate) fn bound_the_moment(&self) -> bool {
        self.moment.get()
    }

    /// Records that the plan being bound holds a constant of this moment.
    pub(super) fn of_the_moment(&self) {
        self.moment.set(true);
    }

    /// Makes relation `name` read the rows set into the returned slot when the plan runs, so
    /// that the plan can run again over other rows of the same schema.
    pub(crate) fn add_input_relation(&self, name: &str, schema: Vec<OutCol>) -> Arc<InputSlot> {
        let slot = Arc::new(InputSlot::default());
        let plan = whole_scan(schema.clone(), Source::Input(slot.clone()));
        self.ctes.borrow_mut().insert(name.to_string(), (plan, schema));
        slot
    }

    /// The query bound next is an INSERT's VALUES list into columns of types `targets`.
    pub(crate) fn with_insert_targets(self, targets: Vec<SqlType>) -> Binder<'a> {
        *self.insert_targets.borrow_mut() = Some(targets);
        self
    }

    /// Reads datasets from `datasets`.
    pub(crate) fn with_datasets(mut self, datasets: Option<Arc<dyn DatasetSource>>) -> Binder<'a> {
        self.datasets = datasets;
        self
    }

    /// Limits every datastore the query reads to `window`.
    pub(crate) fn with_delta(self, window: DeltaWindow) -> Binder<'a> {
        *self.delta.borrow_mut() = Some(window);
        self
    }

    fn take_delta(&self) -> Option<DeltaWindow> {
        self.delta.borrow_mut().take()
    }

    /// The datastores the bound query read through its delta window.
    pub(crate) fn delta_reads(&self) -> Vec<String> {
        self.delta_reads.borrow().clone()
    }

    /// Records that parameter `e` (if it is `$n`) is used as type `ty`, for Describe.
    pub(crate) fn note_param(&self, e: &ast::Expr, ty: SqlType) {
        if let ast::Expr::Value(v) = e
            && let ast::Value::Placeholder(p) = &v.value
            && let Ok(k) = p.trim_start_matches('$').parse::<usize>()
            && ty != SqlType::Unknown
        {
            self.param_types.borrow_mut().entry(k).or_insert(ty);
        }
    }

    /// The parameter types inferred while binding (`$n` → type).
    pub(crate) fn param_types(&self) -> std::collections::BTreeMap<usize, SqlType> {
        self.param_types.borrow().clone()
    }

    /// Makes `rows` readable as relation `name` in the queries this binder plans (as a WITH
    /// query would).
    pub(crate) fn add_relation(&self, name: &str, schema: Vec<OutCol>, rows: Batch) {
        self.add_shared_relation(name, schema, Arc::new(rows));
    }

    /// [`Binder::add_relation`] for rows the caller keeps too.
    pub(crate) fn add_shared_relation(&self, name: &str, schema: Vec<OutCol>, rows: Arc<Batch>) {
        let plan = rows_scan(schema.clone(), rows);
        self.ctes.borrow_mut().insert(name.to_string(), (plan, schema));
    }

    /// Plans a query (SELECT, VALUES, set operations, WITH).
    pub(crate) fn bind_query(&self, q: &ast::Query) -> SqlResult<(Plan, Vec<OutCol>)> {
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
}

pub(crate) use super::settings::version_string;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::objects::ColumnSpec;

    /// An engine with a datastore `d (time, machine_id text, vibration double)`.
    fn engine(dir: &std::path::Path) -> Arc<Engine> {
        let (engine, _) = Engine::open(dir, EngineConfig::default()).unwrap();
        let col = |name: &str, data_type, ty: SqlType| ColumnSpec {
            name: name.into(),
            data_type,
            type_tag: ty.oid(),
            not_null: false,
            default: None,
        };
        let cols = vec![
            col("machine_id", crate::batch::DataType::Text, SqlType::Text),
            col("vibration", crate::batch::DataType::Float64, SqlType::Float8),
        ];
        engine.create_datastore_with("d", None, None, cols).unwrap();
        engine
    }

    fn bind(engine: &Arc<Engine>, sql: &str) -> SqlResult<(Plan, Vec<OutCol>)> {
        let q = crate::query::parse::parse_query(sql)?;
        Binder::new(engine, EvalCtx { now: 0 }, &[]).bind_query(&q)
    }

    fn error_of(engine: &Arc<Engine>, sql: &str) -> SqlError {
        match bind(engine, sql) {
            Ok(_) => panic!("{sql}: bound without an error"),
            Err(e) => e,
        }
    }

    /// The scan under filters and projections.
    fn scan_of(p: &Plan) -> &Plan {
        match p {
            Plan::Scan { .. } => p,
            Plan::Project { input, .. } | Plan::Filter { input, .. } => scan_of(input),
            other => panic!("no scan under {}", other.schema().len()),
        }
    }

    #[test]
    fn types_follow_postgresql() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let (_, cols) =
            bind(&e, "SELECT 1 AS i, 2.5 AS n, 1 + 2.5 AS s, 'a' || 'b' AS t, 7 / 2 AS q, now() AS w").unwrap();
        let got: Vec<(&str, SqlType)> = cols.iter().map(|c| (c.name.as_str(), c.ty)).collect();
        assert_eq!(
            got,
            [
                ("i", SqlType::Int4),
                ("n", SqlType::Numeric),
                ("s", SqlType::Numeric),
                ("t", SqlType::Text),
                ("q", SqlType::Int4),
                ("w", SqlType::TimestampTz)
            ]
        );
    }

    #[test]
    fn time_comparisons_become_the_scans_range_and_only_read_columns_are_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let (plan, cols) = bind(
            &e,
            "SELECT avg(vibration) FROM d WHERE time >= '2026-01-01 00:00:00+00' AND time < '2026-01-02 00:00:00+00'",
        )
        .unwrap();
        assert_eq!(cols.len(), 1);
        let mut scan = None;
        let mut stack = vec![&plan];
        while let Some(p) = stack.pop() {
            match p {
                Plan::Scan { .. } => scan = Some(p),
                Plan::Project { input, .. }
                | Plan::Filter { input, .. }
                | Plan::Aggregate { input, .. }
                | Plan::Sort { input, .. } => stack.push(input),
                _ => {}
            }
        }
        let Some(Plan::Scan { schema, used, time_range, .. }) = scan else { panic!("no scan") };
        let day = 86_400_000_000i64;
        let from = crate::query::scalar::parse_timestamp("2026-01-01 00:00:00+00").unwrap();
        assert_eq!(*time_range, (from, from + day), "a half-open range, as the condition");
        let read: Vec<&str> = schema.iter().zip(used).filter(|(_, u)| **u).map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(read, ["time", "vibration"], "machine_id is not decoded");
        // Without a time condition the range is everything.
        let (plan, _) = bind(&e, "SELECT machine_id FROM d WHERE vibration > 1").unwrap();
        let Plan::Scan { time_range, .. } = scan_of(&plan) else { unreachable!() };
        assert_eq!(*time_range, (i64::MIN, i64::MAX));
    }

    #[test]
    fn unknown_names_have_postgresql_codes() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let err = error_of(&e, "SELECT nope FROM d");
        assert!(err.is_undefined_column(), "{err:?}");
        assert_eq!(error_of(&e, "SELECT * FROM nowhere").sqlstate, "42P01");
        assert_eq!(error_of(&e, "SELECT no_such_function(1)").sqlstate, "42883");
        // Without a dataset source, no dataset is visible (the statement layer gives one).
        assert_eq!(error_of(&e, "SELECT * FROM dataset_content('x')").sqlstate, "42P01");
    }

    #[test]
    fn parameter_types_are_inferred_from_their_context() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let q = crate::query::parse::parse_query("SELECT machine_id FROM d WHERE vibration > $1 AND machine_id = $2")
            .unwrap();
        let b = Binder::new(&e, EvalCtx { now: 0 }, &[]);
        b.bind_query(&q).unwrap();
        let types = b.param_types();
        assert_eq!(types.get(&1), Some(&SqlType::Float8));
        assert_eq!(types.get(&2), Some(&SqlType::Text));
    }
}
