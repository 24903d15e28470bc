//! Expressions: column references (outer ones too), subqueries, literals, operators and casts.

use super::*;
use crate::batch::Batch;
use crate::query::agg::{self};
use crate::query::catalog;
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::{concat, run};
use crate::query::expr::{BinOp, Expr, Func};
use crate::query::func;
use crate::query::guard;
use crate::query::plan::{OutCol, Plan};
use crate::query::scalar::{Param, Scalar, parse_interval, parse_text};
use crate::query::types::SqlType;
use sqlparser::ast;

impl Binder<'_> {
    pub(super) fn column_ref(&self, parts: &[String], scope: &Scope) -> SqlResult<Expr> {
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
    pub(super) fn outer_column(&self, qual: Option<&str>, name: &str, parts: &[String]) -> SqlResult<Expr> {
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
    pub(super) fn bind_subquery(
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
    pub(super) fn apply_node(&self, plan: Plan, calls: Vec<ApplyCall>) -> Plan {
        // Its subqueries are bound again for each outer row, with this moment's clock.
        self.of_the_moment();
        let mut schema = plan.schema();
        for (k, c) in calls.iter().enumerate() {
            schema.push(OutCol { name: format!("subquery{k}"), ty: c.ty });
        }
        let (engine, datasets, ctx, params) =
            (self.engine.clone(), self.datasets.clone(), self.ctx, self.params.to_vec());
        let rebind: crate::query::plan::Rebind = Arc::new(move |call: &ApplyCall, outer: Vec<Scalar>| {
            Binder::new(&engine, ctx, &params).with_datasets(datasets.clone()).run_correlated(call, outer)
        });
        let env = crate::query::plan::ApplyEnv { rebind };
        Plan::Apply { input: Box::new(plan), calls, env, schema }
    }

    /// Runs correlated subquery `call` with the outer columns set to `values`.
    pub(crate) fn run_correlated(&self, call: &ApplyCall, values: Vec<Scalar>) -> SqlResult<(Vec<OutCol>, Batch)> {
        *self.outer_values.borrow_mut() =
            call.outer.iter().zip(values).map(|((_, q, n, t), v)| ((q.clone(), n.clone(), *t), v)).collect();
        let (plan, schema) = self.bind_query(&call.query)?;
        let b = concat(run(&plan)?, &schema);
        Ok((schema, b))
    }

    /// Binds an expression. In aggregate mode (`agg` is `Some`), grouped expressions and
    /// aggregate calls become references to the aggregate's output.
    pub(super) fn bind_expr(&self, e: &ast::Expr, scope: &Scope, agg: &mut Option<AggCtx>) -> SqlResult<Expr> {
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
                                Scalar::Interval(crate::query::types::Interval {
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
                // Null-safe comparison: the operands typed as for `<>`.
                let (l, r) = unify(self.bind_expr(a, scope, agg)?, self.bind_expr(b, scope, agg)?)?;
                Expr::Distinct { l: Box::new(l), r: Box::new(r), negated: matches!(e, E::IsNotDistinctFrom(..)) }
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
                // The values become a list of literals for the rest of the statement: charged
                // before it is built (a million of them took 177 MB past a 64 MiB budget).
                let bytes: usize = vals
                    .iter()
                    .map(|v| 2 * std::mem::size_of::<Expr>() + if let Scalar::Text(t) = v { 2 * t.len() } else { 0 })
                    .sum();
                crate::query::guard::charge(bytes)?;
                let t =
                    func::common_type(&[x.ty(), ty]).ok_or_else(|| SqlError::mismatch("IN types cannot be matched"))?;
                let list = vals.into_iter().map(|v| coerce(Expr::lit(v, ty), t)).collect::<SqlResult<Vec<_>>>()?;
                if list.is_empty() {
                    Expr::lit(Scalar::Bool(*negated), SqlType::Bool)
                } else {
                    in_list(coerce(x, t)?, list, t, *negated)?
                }
            }
            E::Exists { subquery, negated } => {
                let (plan, schema) =
                    match self.bind_subquery(subquery, scope, |_| Ok((ApplyKind::Exists, SqlType::Bool)))? {
                        Ok(r) => return Ok(if *negated { Expr::Not(Box::new(r)) } else { r }),
                        Err(p) => p,
                    };
                self.of_the_moment();
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
                // Charged before it is built: a list of a million items is ~100 MB of bound
                // expressions (the statement's text was a tenth of it).
                crate::query::guard::charge(list.len().saturating_mul(std::mem::size_of::<Expr>()))?;
                let mut items = Vec::with_capacity(list.len());
                let mut all = vec![x.ty()];
                for (k, it) in list.iter().enumerate() {
                    let b = match guard::check_every(k).and_then(|_| self.bind_expr(it, scope, agg)) {
                        Ok(b) => b,
                        Err(e) => return Err(free_list(items, e)),
                    };
                    if !all.contains(&b.ty()) {
                        all.push(b.ty());
                    }
                    items.push(b);
                }
                let Some(ty) = func::common_type(&all) else {
                    return Err(free_list(items, SqlError::mismatch("IN types cannot be matched")));
                };
                let mut coerced = Vec::with_capacity(items.len());
                for (k, i) in items.into_iter().enumerate() {
                    match guard::check_every(k).and_then(|_| coerce(i, ty)) {
                        Ok(c) => coerced.push(c),
                        Err(e) => return Err(free_list(coerced, e)),
                    }
                }
                in_list(coerce(x, ty)?, coerced, ty, *negated)?
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

    pub(super) fn literal(&self, v: &ast::Value) -> SqlResult<Expr> {
        Ok(match v {
            ast::Value::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    if i32::try_from(i).is_ok() {
                        Expr::lit(Scalar::Int(i), SqlType::Int4)
                    } else {
                        Expr::lit(Scalar::Int(i), SqlType::Int8)
                    }
                } else {
                    Expr::lit(Scalar::Float(crate::query::scalar::parse_numeric(n)?), SqlType::Numeric)
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

    /// A select item. In a query over system catalogs only (`lenient`), an item fleetdb cannot
    /// evaluate (array expressions, correlated subqueries) is NULL instead of an error: such
    /// items describe features fleetdb does not have (column defaults, collations, storage
    /// options), so NULL is their true value, and client introspection queries run whole.
    pub(super) fn bind_item(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        agg: &mut Option<AggCtx>,
        lenient: bool,
    ) -> SqlResult<Expr> {
        match self.bind_expr(e, scope, agg) {
            Err(err) if lenient && agg.is_none() && !err.sqlstate.starts_with("22") => {
                Ok(Expr::lit(Scalar::Null, SqlType::Text))
            }
            other => other,
        }
    }

    /// `CASE oid WHEN k THEN v … END`: a lookup in catalog data known at bind time.
    pub(super) fn oid_case(&self, oid: Expr, pairs: Vec<(i64, String)>) -> SqlResult<Expr> {
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
    pub(super) fn oid_cast(&self, x: Expr, to: &str) -> SqlResult<Expr> {
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

    /// `l op r` where `l` and `r` are `left` and `right` bound.
    pub(super) fn bind_binary(
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

    pub(super) fn binary(&self, op: &ast::BinaryOperator, l: Expr, r: Expr) -> SqlResult<Expr> {
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
                crate::query::types::Interval { months: -iv.months, days: -iv.days, micros: -iv.micros }
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

/// `~`, `~*`, `!~`, `!~*`: POSIX regular expression match.
pub(super) fn regex_operator(op: &str, l: Expr, r: Expr) -> SqlResult<Expr> {
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
pub(super) fn json_operator(op: &ast::BinaryOperator, l: Expr, r: Expr) -> SqlResult<Expr> {
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

pub(super) fn ident_parts(e: &ast::Expr) -> Vec<String> {
    match e {
        ast::Expr::Identifier(i) => vec![ident_name(i)],
        ast::Expr::CompoundIdentifier(v) => v.iter().map(ident_name).collect(),
        _ => Vec::new(),
    }
}

/// `x IN (items)`, items coerced to `ty`: a long list of literals becomes their hash set, built
/// here once ([`crate::query::expr::LitSet`]); anything else is compared item by item.
fn in_list(x: Expr, items: Vec<Expr>, ty: SqlType, negated: bool) -> SqlResult<Expr> {
    if items.len() >= crate::query::expr::MIN_SET {
        return Ok(match crate::query::expr::LitSet::of(items, ty)? {
            Ok(set) => Expr::InSet { e: Box::new(x), set: std::sync::Arc::new(set), negated },
            Err(list) => Expr::InList { e: Box::new(x), list, negated },
        });
    }
    Ok(Expr::InList { e: Box::new(x), list: items, negated })
}

/// Frees a long list's bound items on another thread (a million text literals take ~50 ms to
/// free, which the answer does not wait for); passes `then` on.
fn free_list<T>(items: Vec<Expr>, then: T) -> T {
    if items.len() >= crate::query::expr::FREE_ELSEWHERE {
        guard::free_elsewhere(items);
    }
    then
}
