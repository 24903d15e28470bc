//! SELECT: set operations, the select list, grouping and aggregates, set-returning functions, and ORDER BY, LIMIT and DISTINCT.

use super::*;
use crate::query::agg::{self};
use crate::query::error::{SqlError, SqlResult};
use crate::query::expr::Expr;
use crate::query::func;
use crate::query::guard;
use crate::query::plan::{OutCol, Plan, SetOp, SortKey};
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;
use sqlparser::ast;
use std::cell::RefCell;

impl Binder<'_> {
    /// One branch of a set operation, or the operation itself.
    pub(super) fn bind_set(&self, body: &ast::SetExpr) -> SqlResult<(Plan, Vec<OutCol>)> {
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

    pub(super) fn bind_select(
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
            // Conditions on one side of a join are applied below it, on that side's rows
            // (and prune its scan); what needs both sides stays above.
            let kept = if matches!(plan, Plan::Join { .. }) {
                let mut conj = Vec::new();
                split_and(pred, &mut conj);
                let (p, kept) = push_down(plan, conj);
                plan = p;
                and_all(kept)
            } else {
                Some(pred)
            };
            if let Some(pred) = kept {
                plan = filtered(plan, pred, scope.time_col);
            }
        } else if matches!(plan, Plan::Join { .. }) {
            // An inner join's own conditions on one side go below it all the same.
            plan = push_down(plan, Vec::new()).0;
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
    pub(super) fn bind_select_list(
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
            if let Some(h) = &having
                && let Some(pred) = having_as_where(h, ctx.group_exprs.len(), &ctx.aggs)
                && match &plan {
                    Plan::Filter { input, .. } => matches!(**input, Plan::Scan { .. }),
                    p => matches!(p, Plan::Scan { .. }),
                }
            {
                let time_col = prune::scan_time_col(&plan);
                plan = prune::filtered(plan, pred, time_col);
            }
            plan = pushagg::aggregate(plan, ctx.group_exprs, ctx.aggs, schema);
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
    pub(super) fn output_ref(&self, e: &ast::Expr, items: &[(Expr, OutCol)]) -> SqlResult<Option<usize>> {
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
    pub(super) fn finish_query(
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
    pub(super) fn const_u64(&self, e: &ast::Expr) -> SqlResult<Option<u64>> {
        let empty = Scope { cols: Vec::new(), used: RefCell::new(Vec::new()), time_col: None };
        let x = self.bind_expr(e, &empty, &mut None)?;
        match x.as_lit() {
            Some(Scalar::Null) => Ok(None),
            Some(Scalar::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Scalar::Int(_)) => Err(SqlError::new("2201W", "LIMIT must not be negative")),
            _ => Err(SqlError::mismatch("argument of LIMIT must be an integer constant")),
        }
    }
}

/// The column name PostgreSQL gives an unaliased select item.
pub(super) fn output_name(e: &ast::Expr) -> String {
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
pub(super) fn contains_agg(e: &ast::Expr) -> bool {
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

pub(super) fn is_srf(name: &str) -> bool {
    matches!(name, "unnest" | "_pg_expandarray" | "information_schema._pg_expandarray")
}

/// (whether it is `_pg_expandarray`, argument) of each set-returning call in `e`.
pub(super) fn find_srf_args(e: &ast::Expr, out: &mut Vec<(bool, ast::Expr)>) {
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

/// A condition on the rows equivalent to `having` for the groups it keeps, when the query's
/// only aggregate is `max(x)` (or `min(x)`) of a column and `having` requires `max(x) > c`
/// or `>= c` (`min(x) < c`, `<= c`), alone or AND-ed with other conditions: a row with `x`
/// on the other side of `c` changes no kept group's value and is left out of every dropped
/// one, so `x > c` may filter the rows first (and skip blocks by their max). `None`
/// otherwise. `groups` is the number of group keys (the aggregate's output column follows).
fn having_as_where(having: &Expr, groups: usize, aggs: &[agg::AggCall]) -> Option<Expr> {
    use crate::query::expr::BinOp;
    let [call] = aggs else { return None };
    let max = match call.func {
        agg::AggFunc::Max => true,
        agg::AggFunc::Min => false,
        _ => return None,
    };
    let arg @ Expr::Col { ty, .. } = call.args.first()? else { return None };
    if call.distinct || call.args.len() != 1 || !ty.is_numeric() {
        return None;
    }
    let constant = |e: &Expr| {
        let mut any = false;
        e.columns(&mut |_| any = true);
        !any
    };
    let out = |e: &Expr| matches!(e, Expr::Col { idx, .. } if *idx == groups);
    let mut stack = vec![having];
    while let Some(e) = stack.pop() {
        let Expr::Bin { op, l, r, ty } = e else { continue };
        if *op == BinOp::And {
            stack.push(l);
            stack.push(r);
            continue;
        }
        // The aggregate on the left, the constant on the right.
        let (op, c) = match (out(l) && constant(r), out(r) && constant(l)) {
            (true, _) => (*op, r),
            (false, true) => match op {
                BinOp::Gt => (BinOp::Lt, l),
                BinOp::GtEq => (BinOp::LtEq, l),
                BinOp::Lt => (BinOp::Gt, l),
                BinOp::LtEq => (BinOp::GtEq, l),
                _ => continue,
            },
            _ => continue,
        };
        let keeps = if max { matches!(op, BinOp::Gt | BinOp::GtEq) } else { matches!(op, BinOp::Lt | BinOp::LtEq) };
        if keeps {
            return Some(Expr::Bin { op, l: Box::new(arg.clone()), r: c.clone(), ty: *ty });
        }
    }
    None
}
