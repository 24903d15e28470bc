//! Calls: scalar functions, aggregates (with FILTER, DISTINCT, ORDER BY) and window functions with their frames.

use super::*;
use crate::query::agg::{self, AggCall};
use crate::query::catalog;
use crate::query::error::{SqlError, SqlResult};
use crate::query::expr::{Expr, Func};
use crate::query::func;
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;
use crate::query::window::{self, Bound, Frame, WinFunc, WindowCall};
use sqlparser::ast;
use std::cell::RefCell;

impl Binder<'_> {
    pub(super) fn call(&self, name: &str, args: Vec<Expr>) -> SqlResult<Expr> {
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

    pub(super) fn bind_function(&self, f: &ast::Function, scope: &Scope, agg: &mut Option<AggCtx>) -> SqlResult<Expr> {
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
                self.of_the_moment();
                return Ok(Expr::lit(Scalar::Time(self.ctx.now), SqlType::TimestampTz));
            }
            "current_date" => {
                self.of_the_moment();
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
    pub(super) fn bind_window(
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

    pub(super) fn named_window(&self, name: &str) -> SqlResult<ast::WindowSpec> {
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
    pub(super) fn frame(&self, wf: &ast::WindowFrame, order: &[(Expr, bool, bool)]) -> SqlResult<Frame> {
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
                        crate::query::scalar::parse_interval(t).map(|iv| iv.approx_micros() as f64).ok_or_else(
                            || SqlError::new("22007", format!("invalid input syntax for type interval: \"{t}\"")),
                        )?
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

    pub(super) fn function_args(
        &self,
        f: &ast::Function,
        scope: &Scope,
        agg: &mut Option<AggCtx>,
    ) -> SqlResult<Vec<Expr>> {
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
    pub(super) fn bind_agg_call(
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
}
