//! FROM: relations (datastores, channels, tables, catalogs, datasets, CTEs), joins, derived tables and VALUES.

use super::*;
use crate::batch::{Batch, Column, Field, StrVec, Values};
use crate::query::catalog;
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::{concat, run};
use crate::query::expr::{BinOp, Expr, cast_scalar};
use crate::query::func;
use crate::query::guard;
use crate::query::plan::{JoinKind, OutCol, Plan, ScanStats, Source};
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;
use sqlparser::ast;
use std::cell::RefCell;
use std::sync::Arc;

impl Binder<'_> {
    pub(super) fn relation(&self, name: &ast::ObjectName, alias: Option<&ast::TableAlias>) -> SqlResult<(Plan, Scope)> {
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
            self.of_the_moment();
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
        } else if parts.len() == 1 && self.is_dataset(&rel) {
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
                    hidden: is_datastore && crate::datastore::is_lineage(&name),
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
            let bound = crate::query::parse::parse_expression(&window.condition())
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

    pub(super) fn datasets(&self) -> SqlResult<&Arc<dyn DatasetSource>> {
        self.datasets.as_ref().ok_or_else(|| SqlError::new("0A000", "datasets cannot be read here"))
    }

    pub(super) fn is_dataset(&self, name: &str) -> bool {
        self.datasets.as_ref().is_some_and(|d| d.exists(name))
    }

    /// A dataset's content version `which` as a relation named `qual`.
    pub(super) fn dataset_scan(&self, name: &str, which: &str, qual: String) -> SqlResult<(Plan, Scope)> {
        let datasets = self.datasets()?;
        let (schema, batch) = match datasets.without_content(name).filter(|_| which == "$LATEST_SUCCEEDED") {
            // No content yet: no rows, with the columns its query has.
            Some(query) => {
                let schema = match query {
                    // Before the columns it reads exist, it has none either.
                    Some(q) => match self.bind_query(&*crate::query::parse::parse_query(&q)?) {
                        Err(e) if e.is_undefined_column() => Vec::new(),
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
                e @ crate::Error::NotFound { .. } => SqlError::new("55000", format!("{e} (REFRESH DATASET makes one)")),
                crate::Error::Invalid(why) => SqlError::new("55000", why),
                other => other.into(),
            })?,
        };
        let cols = schema.iter().map(|c| ScopeCol::new(Some(qual.clone()), c.name.clone(), c.ty)).collect::<Vec<_>>();
        let n = cols.len();
        self.of_the_moment();
        Ok((rows_scan(schema, Arc::new(batch)), Scope { cols, used: RefCell::new(vec![true; n]), time_col: None }))
    }

    pub(super) fn factor(&self, f: &ast::TableFactor) -> SqlResult<(Plan, Scope)> {
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
                if !self.is_dataset(&ds) {
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
                let (stdout, stderr) = self.datasets()?.logs(&ds, id).map_err(SqlError::from)?;
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
                self.of_the_moment();
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
    pub(super) fn bind_from(&self, from: &[ast::TableWithJoins]) -> SqlResult<(Plan, Scope)> {
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

    pub(super) fn join(
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

    pub(super) fn finish_join(
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
    pub(super) fn derived(&self, q: &ast::Query, alias: Option<&ast::TableAlias>) -> SqlResult<(Plan, Scope)> {
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

    /// Runs an uncorrelated subquery now (it is a constant for the statement).
    pub(super) fn run_values(&self, plan: Plan, schema: Vec<OutCol>) -> SqlResult<(SqlType, Vec<Scalar>)> {
        if schema.len() != 1 {
            return Err(SqlError::syntax("subquery must return only one column"));
        }
        self.of_the_moment();
        let b = concat(run(&plan)?, &schema);
        let ty = schema[0].ty;
        // A value per row, its text copied: charged before they are made.
        let text = match &b.columns[0].values {
            crate::batch::Values::Text(v) => v.data_len(),
            _ => 0,
        };
        crate::query::guard::charge(b.num_rows() * std::mem::size_of::<Scalar>() + text)?;
        Ok((ty, (0..b.num_rows()).map(|i| Scalar::from_column(&b.columns[0], ty, i)).collect()))
    }

    pub(super) fn bind_values(
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
        // An INSERT's VALUES: each value is assigned its target column's type.
        let targets = self.insert_targets.borrow_mut().take().filter(|t| t.len() == width);
        let mut cols = Vec::with_capacity(width);
        let mut schema = Vec::with_capacity(width);
        for c in 0..width {
            let tys: Vec<SqlType> = rows.iter().map(|r| r[c].ty()).collect();
            // An all-unknown column stays unknown, so INSERT can give it the target's type.
            let ty = match targets.as_ref().map(|t| t[c]).filter(|t| *t != SqlType::Unknown) {
                Some(t) => t,
                None => func::common_type(&tys).ok_or_else(|| SqlError::mismatch("VALUES types cannot be matched"))?,
            };
            let vals = rows
                .iter()
                .map(|r| {
                    let v = r[c].as_lit().cloned().unwrap_or(Scalar::Null);
                    cast_scalar(v, r[c].ty(), ty)
                })
                .collect::<SqlResult<Vec<_>>>()?;
            cols.push(crate::query::expr::scalars_to_column(&vals, ty)?);
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
}

/// A scan of rows computed at plan time (VALUES, catalogs, rows handed to the binder).
pub(super) fn rows_scan(schema: Vec<OutCol>, rows: Arc<Batch>) -> Plan {
    whole_scan(schema, Source::Rows(rows))
}

/// A scan of every column and row of `source`.
pub(super) fn whole_scan(schema: Vec<OutCol>, source: Source) -> Plan {
    Plan::Scan {
        source,
        used: vec![true; schema.len()],
        schema,
        time_range: (i64::MIN, i64::MAX),
        tags: Vec::new(),
        ranges: Vec::new(),
        stats: Arc::new(ScanStats::default()),
    }
}

/// Whether every relation in `from` is a system catalog (pg_catalog, information_schema).
pub(super) fn reads_only_catalogs(from: &[ast::TableWithJoins]) -> bool {
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

pub(super) fn object_name(n: &ast::ObjectName) -> Vec<String> {
    n.0.iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => ident_name(i),
            other => other.to_string(),
        })
        .collect()
}

/// A table function's arguments as text, where they are string or number literals.
pub(super) fn literal_args(args: &ast::TableFunctionArgs) -> Vec<Option<String>> {
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
