//! Physical plans: the tree of operators the binder builds ([`Plan`]) and the executor runs,
//! what each scan reads ([`Source`]) and counts ([`ScanStats`]), and its EXPLAIN text.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::agg::AggCall;
use super::expr::Expr;
use super::types::SqlType;
use crate::batch::Batch;
use crate::channel::Channel;
use crate::datastore::Datastore;
use crate::table::Table;

/// Where a scan reads from.
#[derive(Clone)]
pub(crate) enum Source {
    Datastore(Arc<Datastore>),
    Table(Arc<Table>),
    Channel(Arc<Channel>),
    /// Rows computed at plan time (system views, VALUES).
    Rows(Arc<Batch>),
    /// Rows set in before each run: a plan bound once over a slot runs again for each batch
    /// put into it (a pipeline's activities).
    Input(Arc<InputSlot>),
}

/// The rows a plan reads as [`Source::Input`], set before each run.
#[derive(Default)]
pub(crate) struct InputSlot(std::sync::Mutex<Option<Arc<Batch>>>);

impl InputSlot {
    /// The rows the next runs read (`None`: none, between runs).
    pub(crate) fn set(&self, rows: Option<Arc<Batch>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = rows;
    }

    pub(crate) fn get(&self) -> super::error::SqlResult<Arc<Batch>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| super::error::SqlError::new("XX000", "a plan over input rows ran with none set in"))
    }
}

/// A subquery that refers to columns of the query around it: run once per distinct
/// combination of those columns' values (see [`Plan::Apply`]).
#[derive(Clone, Debug)]
pub(crate) struct ApplyCall {
    pub query: Box<sqlparser::ast::Query>,
    pub kind: ApplyKind,
    /// The outer columns it reads: (input column, qualifier, name, type).
    pub outer: Vec<(usize, Option<String>, String, SqlType)>,
    pub ty: SqlType,
}

#[derive(Clone, Debug)]
pub(crate) enum ApplyKind {
    /// `(SELECT …)`: its one value, NULL without rows.
    Scalar,
    /// `EXISTS (…)`
    Exists,
    /// `x IN (SELECT …)`, with x evaluated over the outer row.
    In(Expr),
}

/// Plans a correlated subquery again for one outer row (its outer columns' values) and runs
/// it: made by the binder, so that the executor needs nothing of it.
pub(crate) type Rebind =
    Arc<dyn Fn(&ApplyCall, Vec<super::scalar::Scalar>) -> super::error::SqlResult<(Vec<OutCol>, Batch)> + Send + Sync>;

/// What a correlated subquery needs to be planned again for each outer row.
#[derive(Clone)]
pub(crate) struct ApplyEnv {
    pub rebind: Rebind,
}

pub(crate) use super::types::OutCol;

/// Largest `LIMIT + OFFSET` over an ORDER BY that is run as a top-N (only the best rows kept
/// as they come); beyond it a full sort is no worse.
pub(crate) const TOP_N_MAX_KEPT: u64 = 100_000;

#[derive(Default, Debug)]
pub(crate) struct ScanStats {
    pub files_total: AtomicU64,
    pub files_pruned: AtomicU64,
    pub blocks_total: AtomicU64,
    pub blocks_pruned: AtomicU64,
    /// Blocks whose part of the answer came from their statistics, not decoded.
    pub blocks_from_stats: AtomicU64,
    /// Most threads that decoded one file's blocks at once.
    pub decoders: AtomicU64,
    /// Whether the scan ran on a thread of its own, ahead of the operator reading it.
    pub ahead: std::sync::atomic::AtomicBool,
    /// Morsels the scan was cut into for threads that each decode, filter and aggregate
    /// their own (0: it was not).
    pub morsels: AtomicU64,
    /// Whether the morsels' threads kept the best rows of an `ORDER BY … LIMIT` (else they
    /// aggregated).
    pub morsels_top_n: std::sync::atomic::AtomicBool,
    pub rows_scanned: AtomicU64,
}

#[derive(Clone)]
pub(crate) enum Plan {
    Scan {
        source: Source,
        schema: Vec<OutCol>,
        /// Which columns are decoded; the others are produced as NULL.
        used: Vec<bool>,
        /// Rows with time in `[lo, hi)` (datastores and channels); other rows may be skipped.
        time_range: (i64, i64),
        /// `column = 'value'` conditions the rows must meet (datastores): files and blocks
        /// without matching rows in the tag index are skipped. The filter above still applies.
        tags: Vec<(usize, String)>,
        /// `column` within `[lo, hi]` (numeric columns of datastores): blocks whose min/max
        /// rule out every row are skipped. The filter above still applies.
        ranges: Vec<(usize, f64, f64)>,
        stats: Arc<ScanStats>,
    },
    Filter {
        input: Box<Plan>,
        pred: Expr,
    },
    Project {
        input: Box<Plan>,
        exprs: Vec<Expr>,
        schema: Vec<OutCol>,
    },
    Aggregate {
        input: Box<Plan>,
        group: Vec<Expr>,
        aggs: Vec<AggCall>,
        schema: Vec<OutCol>,
    },
    Sort {
        input: Box<Plan>,
        keys: Vec<SortKey>,
    },
    Limit {
        input: Box<Plan>,
        limit: Option<u64>,
        offset: u64,
    },
    Distinct {
        input: Box<Plan>,
    },
    /// UNION / INTERSECT / EXCEPT [ALL] of two inputs with the same column types.
    SetOp {
        left: Box<Plan>,
        right: Box<Plan>,
        op: SetOp,
        all: bool,
        schema: Vec<OutCol>,
    },
    /// The first row of each group of equal values of columns `keys` (DISTINCT ON).
    DistinctOn {
        input: Box<Plan>,
        keys: Vec<usize>,
    },
    /// For each group of equal `keys`, the row that sorts first by column `by` (DISTINCT ON
    /// whose ORDER BY is its keys then one column): one pass, no sort of the whole input.
    TopPerGroup {
        input: Box<Plan>,
        keys: Vec<usize>,
        by: usize,
        desc: bool,
        nulls_first: bool,
    },
    /// Set-returning functions in a select list (`unnest(a)`, `_pg_expandarray(a)`): each input
    /// row repeats once per element of array `arg`, with columns element, ordinality and the
    /// record `(element,ordinality)` appended.
    Expand {
        input: Box<Plan>,
        arg: Expr,
        /// Elements are integers (int2vector / oidvector), else text.
        int_elems: bool,
        schema: Vec<OutCol>,
    },
    /// Correlated subqueries: the input's columns, then one column per call, each computed by
    /// running the call's subquery once per distinct value of the outer columns it reads.
    Apply {
        input: Box<Plan>,
        calls: Vec<ApplyCall>,
        env: ApplyEnv,
        schema: Vec<OutCol>,
    },
    /// Window functions: the input's columns, then one column per call.
    Window {
        input: Box<Plan>,
        calls: Vec<super::window::WindowCall>,
        schema: Vec<OutCol>,
    },
    /// Hash join: rows of `left` and `right` whose keys are equal and for which `residual`
    /// (over the combined row) holds. Output: left columns, then right columns.
    Join {
        left: Box<Plan>,
        right: Box<Plan>,
        kind: JoinKind,
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        residual: Option<Expr>,
        schema: Vec<OutCol>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetOp {
    Union,
    Intersect,
    Except,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

impl Plan {
    /// For an Aggregate over this plan (`group`, `aggs`): when every aggregate is answered by
    /// each group's latest row (`max(time)`, `last(x, time)`) and the group is one text column
    /// of a whole datastore (this plan its unfiltered scan), the scan's key and time columns;
    /// the executor then aggregates only each series' last rows (see
    /// [`Plan::latest_per_series_columns`]).
    pub(crate) fn latest_per_series_aggregate(&self, group: &[Expr], aggs: &[AggCall]) -> Option<(usize, usize)> {
        let Plan::Scan { source: Source::Datastore(_), schema, time_range, tags, ranges, .. } = self else {
            return None;
        };
        let whole = *time_range == (i64::MIN, i64::MAX) && tags.is_empty() && ranges.is_empty();
        let t = schema.iter().position(|c| c.name == "time")?;
        let is_time = |e: &Expr| matches!(e, Expr::Col { idx, .. } if *idx == t);
        let k = match group {
            [Expr::Col { idx, .. }] if schema[*idx].ty == SqlType::Text => *idx,
            _ => return None,
        };
        let latest = |a: &AggCall| {
            !a.distinct
                && match a.func {
                    super::agg::AggFunc::Max => a.args.len() == 1 && is_time(&a.args[0]),
                    super::agg::AggFunc::Last => a.args.len() == 2 && is_time(&a.args[1]),
                    _ => false,
                }
        };
        (whole && !aggs.is_empty() && aggs.iter().all(latest)).then_some((k, t))
    }

    /// For a TopPerGroup over this plan (`keys`, `by`, `desc`): when it asks for the latest row
    /// per series of a whole datastore (`DISTINCT ON (k) … ORDER BY k, time DESC`, this plan a
    /// projection of an unfiltered datastore scan, `k` a text column), the scan's key and time
    /// columns; the executor then reads each series' last rows from file order.
    pub(crate) fn latest_per_series_columns(&self, keys: &[usize], by: usize, desc: bool) -> Option<(usize, usize)> {
        let Plan::Project { input, exprs, .. } = self else { return None };
        let Plan::Scan { source: Source::Datastore(_), schema, time_range, tags, ranges, .. } = &**input else {
            return None;
        };
        let whole = *time_range == (i64::MIN, i64::MAX) && tags.is_empty() && ranges.is_empty();
        let col = |i: usize| match exprs.get(i) {
            Some(Expr::Col { idx, .. }) => Some(*idx),
            _ => None,
        };
        let (k, t) = (col(*keys.first()?)?, col(by)?);
        let fits = whole && desc && keys.len() == 1 && schema[k].ty == SqlType::Text && schema[t].name == "time";
        fits.then_some((k, t))
    }

    pub(crate) fn schema(&self) -> Vec<OutCol> {
        match self {
            Plan::Scan { schema, .. }
            | Plan::Project { schema, .. }
            | Plan::Aggregate { schema, .. }
            | Plan::Join { schema, .. }
            | Plan::Window { schema, .. }
            | Plan::Expand { schema, .. }
            | Plan::Apply { schema, .. }
            | Plan::SetOp { schema, .. } => schema.clone(),
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input }
            | Plan::DistinctOn { input, .. }
            | Plan::TopPerGroup { input, .. } => input.schema(),
        }
    }

    /// Indented plan text for EXPLAIN; with a profile (EXPLAIN ANALYZE), each operator's time
    /// and rows, and what the scans pruned and read.
    pub(crate) fn explain(&self, depth: usize, profile: Option<&Profile>, out: &mut Vec<String>) {
        let analyze = profile.is_some();
        let pad = "  ".repeat(depth);
        let line = match self {
            Plan::Scan { source, schema, used, time_range, tags, ranges, stats } => {
                let what = match source {
                    Source::Datastore(d) => format!("Datastore Scan on {}", d.name()),
                    Source::Table(t) => format!("Table Scan on {}", t.name()),
                    Source::Channel(c) => format!("Channel Scan on {}", c.name()),
                    Source::Rows(_) => "Values Scan".to_string(),
                    Source::Input(_) => "Input Scan".to_string(),
                };
                let cols: Vec<&str> =
                    schema.iter().zip(used).filter(|(_, u)| **u).map(|(c, _)| c.name.as_str()).collect();
                let mut s = format!("{what} (columns: {})", cols.join(", "));
                if *time_range != (i64::MIN, i64::MAX) {
                    s += &format!(
                        " time range [{}, {})",
                        super::types::format_timestamp(time_range.0.max(-210_866_803_200_000_000), true),
                        if time_range.1 == i64::MAX {
                            "∞".into()
                        } else {
                            super::types::format_timestamp(time_range.1, true)
                        }
                    );
                }
                for (c, v) in tags {
                    s += &format!(" tag {} = '{v}'", schema[*c].name);
                }
                for (c, lo, hi) in ranges {
                    s += &format!(" {} in [{lo}, {hi}]", schema[*c].name);
                }
                if analyze {
                    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
                    s += &format!(
                        "\n{pad}  files: {} of {} pruned; blocks: {} of {} pruned; rows scanned: {}",
                        l(&stats.files_pruned),
                        l(&stats.files_total),
                        l(&stats.blocks_pruned),
                        l(&stats.blocks_total),
                        l(&stats.rows_scanned)
                    );
                    let from_stats = l(&stats.blocks_from_stats);
                    if from_stats > 0 {
                        s += &format!("; blocks answered from statistics: {from_stats}");
                    }
                    let decoders = l(&stats.decoders);
                    let morsels = l(&stats.morsels);
                    if morsels > 0 {
                        let plural = |n: u64| if n == 1 { "" } else { "s" };
                        let what = if stats.morsels_top_n.load(Ordering::Relaxed) {
                            "their best rows kept"
                        } else {
                            "aggregated"
                        };
                        s += &format!(
                            "; decoded, filtered and {what} in {morsels} morsel{} on {decoders} thread{}",
                            plural(morsels),
                            plural(decoders)
                        );
                    } else if decoders > 1 {
                        s += &format!("; threads decoding: {decoders}");
                    }
                    if stats.ahead.load(Ordering::Relaxed) {
                        s += "; read ahead on a thread of its own";
                    }
                }
                s
            }
            Plan::Filter { .. } => "Filter".into(),
            Plan::Project { schema, .. } => {
                format!("Project ({})", schema.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))
            }
            Plan::Aggregate { input, group, aggs, .. } => format!(
                "HashAggregate ({} keys, {} aggregates{})",
                group.len(),
                aggs.len(),
                if input.latest_per_series_aggregate(group, aggs).is_some() {
                    "; over each series' last rows from file order"
                } else {
                    ""
                }
            ),
            Plan::Sort { keys, .. } => format!("Sort ({} keys)", keys.len()),
            Plan::Window { calls, .. } => format!("WindowAgg ({} functions)", calls.len()),
            Plan::Expand { .. } => "ProjectSet".into(),
            Plan::Apply { calls, .. } => format!("Correlated Subqueries ({})", calls.len()),
            Plan::Limit { limit, offset, input } => {
                let top = match (&**input, limit) {
                    (Plan::Sort { .. }, Some(l)) if l.saturating_add(*offset) <= TOP_N_MAX_KEPT => {
                        format!("; top-N: the sort keeps the best {} rows as they come", l + offset)
                    }
                    _ => String::new(),
                };
                format!("Limit ({} offset {offset}{top})", limit.map_or("all".into(), |l| l.to_string()))
            }
            Plan::Distinct { .. } => "Distinct".into(),
            Plan::SetOp { op, all, .. } => format!("{op:?}{}", if *all { " All" } else { "" }),
            Plan::DistinctOn { keys, .. } => format!("Distinct On ({} keys)", keys.len()),
            Plan::TopPerGroup { input, keys, by, desc, .. } => format!(
                "Top Row Per Group ({} keys, by {}{})",
                keys.len(),
                if *desc { "largest" } else { "smallest" },
                if input.latest_per_series_columns(keys, *by, *desc).is_some() {
                    "; each series' last rows from file order"
                } else {
                    ""
                }
            ),
            Plan::Join { kind, left_keys, residual, .. } => format!(
                "Hash {kind:?} Join ({} keys{})",
                left_keys.len(),
                if residual.is_some() { ", residual filter" } else { "" }
            ),
        };
        let actual = profile.and_then(|p| p.get(&(self as *const Plan as usize))).map_or(String::new(), |f| {
            let memory = if f.memory > 0 { format!(" memory={}", memory_text(f.memory)) } else { String::new() };
            format!(" (actual time={:.3} ms{memory} rows={})", f.time.as_secs_f64() * 1e3, f.rows)
        });
        // The first line of an operator carries its actual figures (scan details follow it).
        match line.split_once('\n') {
            Some((first, rest)) => out.push(format!("{pad}{first}{actual}\n{rest}")),
            None => out.push(format!("{pad}{line}{actual}")),
        }
        match self {
            Plan::Scan { .. } => {}
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Window { input, .. }
            | Plan::Expand { input, .. }
            | Plan::Apply { input, .. }
            | Plan::Distinct { input } => input.explain(depth + 1, profile, out),
            Plan::Join { left, right, .. } | Plan::SetOp { left, right, .. } => {
                left.explain(depth + 1, profile, out);
                right.explain(depth + 1, profile, out);
            }
            Plan::DistinctOn { input, .. } | Plan::TopPerGroup { input, .. } => input.explain(depth + 1, profile, out),
        }
    }
}

/// Time (including the operators below) and rows out of each operator of a profiled run,
/// by the operator's address in the plan.
pub(crate) type Profile = std::collections::HashMap<usize, Figures>;

/// What EXPLAIN ANALYZE shows of one operator: its time and that of its inputs, the rows it
/// produced, and the most working memory it held at once with its inputs (0: not measured,
/// an operator streamed into the one above).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct Figures {
    pub time: std::time::Duration,
    pub rows: usize,
    pub memory: usize,
}

/// Bytes as EXPLAIN shows them: kB below a MiB, then MiB with one decimal.
fn memory_text(bytes: usize) -> String {
    if bytes < 1 << 20 {
        format!("{}kB", bytes.div_ceil(1024))
    } else {
        format!("{:.1}MB", bytes as f64 / (1 << 20) as f64)
    }
}
