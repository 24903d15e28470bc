//! Bound, typed expressions ([`Expr`]) and their vectorized evaluation over column batches
//! ([`eval`]). Arithmetic follows PostgreSQL: integer results are range-checked for their type
//! (`integer out of range`), integer division truncates, division by zero is an error, NULL
//! propagates, and AND/OR use three-valued logic.

use std::borrow::Cow;

mod compare;
mod inset;
use compare::{compare, compare_const};
pub(crate) use inset::{FREE_ELSEWHERE, LitSet, MIN_SET};

use super::error::{SqlError, SqlResult};
pub(crate) use super::func::Func;
use super::scalar::{Scalar, format_numeric};
pub(crate) use super::scalar::{scalars_to_column, text_of};
use super::types::SqlType;
use crate::batch::{Batch, Bitmap, Column, StrVec, Values};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq)
    }
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Concat => "||",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Col {
        idx: usize,
        ty: SqlType,
    },
    Lit {
        value: Scalar,
        ty: SqlType,
    },
    Bin {
        op: BinOp,
        l: Box<Expr>,
        r: Box<Expr>,
        ty: SqlType,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>),
    IsNull {
        e: Box<Expr>,
        negated: bool,
    },
    IsBool {
        e: Box<Expr>,
        value: bool,
        negated: bool,
    },
    /// `l IS [NOT] DISTINCT FROM r`: `<>` where NULL is a value (two NULLs are not distinct);
    /// each side evaluated once.
    Distinct {
        l: Box<Expr>,
        r: Box<Expr>,
        negated: bool,
    },
    Cast {
        e: Box<Expr>,
        to: SqlType,
    },
    Func {
        f: Func,
        args: Vec<Expr>,
        ty: SqlType,
    },
    Case {
        whens: Vec<(Expr, Expr)>,
        else_: Option<Box<Expr>>,
        ty: SqlType,
    },
    InList {
        e: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `e IN (literals…)` of [`MIN_SET`] or more literals: their set, built at binding.
    InSet {
        e: Box<Expr>,
        set: std::sync::Arc<LitSet>,
        negated: bool,
    },
    Like {
        e: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
}

impl Expr {
    pub(crate) fn ty(&self) -> SqlType {
        match self {
            Expr::Col { ty, .. }
            | Expr::Lit { ty, .. }
            | Expr::Bin { ty, .. }
            | Expr::Func { ty, .. }
            | Expr::Case { ty, .. } => *ty,
            Expr::Not(_)
            | Expr::IsNull { .. }
            | Expr::IsBool { .. }
            | Expr::Distinct { .. }
            | Expr::InList { .. }
            | Expr::InSet { .. }
            | Expr::Like { .. } => SqlType::Bool,
            Expr::Neg(e) => e.ty(),
            Expr::Cast { to, .. } => *to,
        }
    }
    pub(crate) fn lit(value: Scalar, ty: SqlType) -> Expr {
        Expr::Lit { value, ty }
    }
    /// The literal value, if this is one.
    pub(crate) fn as_lit(&self) -> Option<&Scalar> {
        match self {
            Expr::Lit { value, .. } => Some(value),
            _ => None,
        }
    }
    /// Calls `f` on every column index this expression reads (plan time only: it walks a copy).
    pub(crate) fn columns(&self, f: &mut impl FnMut(usize)) {
        self.clone().visit_cols_mut(&mut |i| f(*i));
    }
    /// Rewrites column indexes through `map` (after projection pushdown or a join split).
    pub(crate) fn remap(&mut self, map: &dyn Fn(usize) -> usize) {
        self.visit_cols_mut(&mut |i| *i = map(*i));
    }
    /// The one traversal of the tree: `f` sees every column reference.
    fn visit_cols_mut(&mut self, f: &mut dyn FnMut(&mut usize)) {
        match self {
            Expr::Col { idx, .. } => f(idx),
            Expr::Lit { .. } => {}
            Expr::Bin { l, r, .. } | Expr::Like { e: l, pattern: r, .. } | Expr::Distinct { l, r, .. } => {
                l.visit_cols_mut(f);
                r.visit_cols_mut(f);
            }
            Expr::Not(e)
            | Expr::Neg(e)
            | Expr::IsNull { e, .. }
            | Expr::IsBool { e, .. }
            | Expr::Cast { e, .. }
            | Expr::InSet { e, .. } => e.visit_cols_mut(f),
            Expr::Func { args, .. } => args.iter_mut().for_each(|a| a.visit_cols_mut(f)),
            Expr::Case { whens, else_, .. } => {
                for (c, v) in whens {
                    c.visit_cols_mut(f);
                    v.visit_cols_mut(f);
                }
                if let Some(e) = else_ {
                    e.visit_cols_mut(f);
                }
            }
            Expr::InList { e, list, .. } => {
                e.visit_cols_mut(f);
                list.iter_mut().for_each(|x| x.visit_cols_mut(f));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Column helpers

fn validity_and(a: &Column, b: &Column) -> Option<Bitmap> {
    match (&a.validity, &b.validity) {
        (None, None) => None,
        (Some(v), None) | (None, Some(v)) => Some(v.clone()),
        (Some(x), Some(y)) => {
            let mut out = x.clone();
            for i in 0..out.len() {
                if !y.get(i) {
                    out.set(i, false);
                }
            }
            Some(out)
        }
    }
}

fn as_f64(c: &Column) -> Cow<'_, [f64]> {
    match &c.values {
        Values::Float64(v) => Cow::Borrowed(v),
        Values::Int64(v) | Values::Timestamp(v) => Cow::Owned(v.iter().map(|&x| x as f64).collect()),
        Values::Bool(v) => Cow::Owned(v.iter().map(|&x| x as u8 as f64).collect()),
        Values::Text(v) => Cow::Owned(vec![0.0; v.len()]),
    }
}

fn as_i64(c: &Column) -> &[i64] {
    match &c.values {
        Values::Int64(v) | Values::Timestamp(v) => v,
        _ => &[],
    }
}

fn bools(c: &Column) -> &[bool] {
    match &c.values {
        Values::Bool(v) => v,
        _ => &[],
    }
}

fn bool_col(v: Vec<bool>, validity: Option<Bitmap>) -> Column {
    Column::with_validity(Values::Bool(v), validity)
}

/// Evaluation context: values fixed for a whole statement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvalCtx {
    /// `now()`: the statement's start time, microseconds.
    pub now: i64,
}

/// [`eval`], borrowing a column reference from the batch instead of copying it.
pub(crate) fn eval_ref<'b>(e: &Expr, b: &'b Batch) -> SqlResult<std::borrow::Cow<'b, Column>> {
    match e {
        Expr::Col { idx, .. } => Ok(std::borrow::Cow::Borrowed(&b.columns[*idx])),
        _ => eval(e, b).map(std::borrow::Cow::Owned),
    }
}

/// Evaluates `e` for every row of `b`.
pub(crate) fn eval(e: &Expr, b: &Batch) -> SqlResult<Column> {
    super::guard::check_depth()?;
    let n = b.num_rows();
    match e {
        Expr::Col { idx, .. } => Ok(b.columns[*idx].clone()),
        Expr::Bin { op, l, r, .. }
            if op.is_comparison()
                && let Expr::Col { idx: li, .. } = &**l
                && let Expr::Lit { value, ty: rt } = &**r
                && let Some(c) = compare_const(*op, &b.columns[*li], l.ty(), value, *rt)? =>
        {
            Ok(c)
        }
        Expr::Lit { value, ty } => {
            let ty = if *ty == SqlType::Unknown { SqlType::Text } else { *ty };
            value.to_column(ty, n)
        }
        Expr::Bin { .. } => {
            // Left-deep chains are evaluated from the innermost operand outwards, without
            // recursion (a chain may be thousands of operators long).
            let mut spine = Vec::new();
            let mut leaf = e;
            while let Expr::Bin { l, .. } = leaf {
                spine.push(leaf);
                leaf = l;
            }
            let mut acc = eval_ref(leaf, b)?;
            let mut acc_ty = leaf.ty();
            for node in spine.into_iter().rev() {
                let Expr::Bin { op, r, ty, .. } = node else { unreachable!("the spine holds only Bin nodes") };
                let rc = eval(r, b)?;
                acc = std::borrow::Cow::Owned(binary(*op, &acc, acc_ty, &rc, r.ty(), *ty)?);
                acc_ty = *ty;
            }
            Ok(acc.into_owned())
        }
        Expr::Not(x) => {
            let c = eval(x, b)?;
            Ok(bool_col(bools(&c).iter().map(|v| !v).collect(), c.validity))
        }
        Expr::Neg(x) => {
            let c = eval(x, b)?;
            match &c.values {
                Values::Int64(v) => {
                    let (lo, _) = x.ty().int_range();
                    let mut out = Vec::with_capacity(v.len());
                    for (i, &a) in v.iter().enumerate() {
                        if a == lo && c.is_valid(i) {
                            return Err(SqlError::out_of_range(int_name(x.ty())));
                        }
                        out.push(a.wrapping_neg());
                    }
                    Ok(Column::with_validity(Values::Int64(out), c.validity))
                }
                Values::Float64(v) => {
                    Ok(Column::with_validity(Values::Float64(v.iter().map(|a| -a).collect()), c.validity))
                }
                _ => Err(SqlError::undefined_function(&format!("-({})", x.ty().pg_name()))),
            }
        }
        Expr::IsNull { e, negated } => {
            let c = eval(e, b)?;
            Ok(bool_col((0..n).map(|i| c.is_valid(i) == *negated).collect(), None))
        }
        Expr::Distinct { l, r, negated } => {
            let (lc, rc) = (eval(l, b)?, eval(r, b)?);
            let ne = binary(BinOp::NotEq, &lc, l.ty(), &rc, r.ty(), SqlType::Bool)?;
            let v = bools(&ne);
            let distinct = |i: usize| match (lc.is_valid(i), rc.is_valid(i)) {
                (true, true) => v[i],
                (false, false) => false,
                _ => true,
            };
            Ok(bool_col((0..n).map(|i| distinct(i) != *negated).collect(), None))
        }
        Expr::IsBool { e, value, negated } => {
            let c = eval(e, b)?;
            let v = bools(&c);
            Ok(bool_col((0..n).map(|i| (c.is_valid(i) && v[i] == *value) != *negated).collect(), None))
        }
        Expr::Cast { e, to } => {
            let c = eval(e, b)?;
            cast(&c, e.ty(), *to)
        }
        Expr::Func { f, args, ty } => {
            let tys: Vec<SqlType> = args.iter().map(|a| a.ty()).collect();
            // The functions see constant arguments' values (a date_trunc unit, a stride).
            let lits: Vec<Option<&Scalar>> = args.iter().map(Expr::as_lit).collect();
            // date_trunc / date_bin whose other arguments are constants: only the times are
            // evaluated (no column of copies of each constant).
            if matches!(f, Func::DateTrunc | Func::DateBin)
                && args.len() >= 2
                && args.iter().enumerate().all(|(i, a)| i == 1 || matches!(a, Expr::Lit { .. }))
            {
                let time = eval_ref(&args[1], b)?;
                if let Some(c) = super::func::time_fast_path(*f, &time, &tys, &lits)? {
                    return Ok(c);
                }
            }
            let cols = args.iter().map(|a| eval(a, b)).collect::<SqlResult<Vec<_>>>()?;
            super::func::call(*f, &cols, &tys, *ty, n, &lits)
        }
        Expr::Case { whens, else_, ty } => {
            let mut out_vals: Vec<Scalar> = vec![Scalar::Null; n];
            let mut decided = vec![false; n];
            for (cond, val) in whens {
                let c = eval(cond, b)?;
                let v = eval(val, b)?;
                let cb = bools(&c);
                for i in 0..n {
                    if !decided[i] && c.is_valid(i) && cb[i] {
                        decided[i] = true;
                        out_vals[i] = Scalar::from_column(&v, val.ty(), i);
                    }
                }
            }
            if let Some(e) = else_ {
                let v = eval(e, b)?;
                for i in 0..n {
                    if !decided[i] {
                        out_vals[i] = Scalar::from_column(&v, e.ty(), i);
                    }
                }
            }
            scalars_to_column(&out_vals, *ty)
        }
        Expr::InList { e, list, negated } => {
            let c = eval(e, b)?;
            let mut any = vec![false; n];
            let mut saw_null = vec![false; n];
            for (k, item) in list.iter().enumerate() {
                if k % 256 == 255 {
                    super::guard::check()?;
                }
                let ic = eval(item, b)?;
                let eq = binary(BinOp::Eq, &c, e.ty(), &ic, item.ty(), SqlType::Bool)?;
                let ev = bools(&eq);
                for i in 0..n {
                    if eq.is_valid(i) {
                        any[i] |= ev[i];
                    } else {
                        saw_null[i] = true;
                    }
                }
            }
            let mut valid = Bitmap::new_set(n);
            let vals = (0..n)
                .map(|i| {
                    if !c.is_valid(i) || (!any[i] && saw_null[i]) {
                        valid.set(i, false);
                    }
                    any[i] != *negated
                })
                .collect();
            Ok(bool_col(vals, Some(valid)))
        }
        Expr::InSet { e, set, negated } => {
            let c = eval(e, b)?;
            set.eval(&c, *negated).ok_or_else(|| {
                SqlError::new("XX000", format!("IN list of {set:?} applied to values of type {}", e.ty().pg_name()))
            })
        }
        Expr::Like { e, pattern, negated, case_insensitive } => {
            let c = eval(e, b)?;
            let p = eval(pattern, b)?;
            let (Values::Text(sv), Values::Text(pv)) = (&c.values, &p.values) else {
                return Err(SqlError::undefined_function("like on non-text"));
            };
            let mut out = Vec::with_capacity(n);
            let mut cache: Option<(String, Vec<char>)> = None;
            for i in 0..n {
                let pat = pv.get(i);
                if cache.as_ref().is_none_or(|(p0, _)| p0 != pat) {
                    let chars =
                        if *case_insensitive { pat.to_lowercase().chars().collect() } else { pat.chars().collect() };
                    cache = Some((pat.to_string(), chars));
                }
                let pc = &cache.as_ref().expect("set above").1;
                let s: Vec<char> = if *case_insensitive {
                    sv.get(i).to_lowercase().chars().collect()
                } else {
                    sv.get(i).chars().collect()
                };
                out.push(like_match(&s, pc) != *negated);
            }
            Ok(bool_col(out, validity_and(&c, &p)))
        }
    }
}

/// SQL LIKE with `%`, `_` and backslash escapes.
pub(crate) fn like_match(s: &[char], p: &[char]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let (mut star_p, mut star_s) = (usize::MAX, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == '\\' && pi + 1 < p.len() {
            if p[pi + 1] == s[si] {
                si += 1;
                pi += 2;
                continue;
            }
        } else if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == s[si])) {
            si += 1;
            pi += 1;
            continue;
        } else if pi < p.len() && p[pi] == '%' {
            star_p = pi;
            star_s = si;
            pi += 1;
            continue;
        }
        if star_p != usize::MAX {
            pi = star_p + 1;
            star_s += 1;
            si = star_s;
            continue;
        }
        return false;
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

fn int_name(t: SqlType) -> &'static str {
    match t {
        SqlType::Int2 => "smallint",
        SqlType::Int4 => "integer",
        _ => "bigint",
    }
}

/// Applies `op` to two columns. `out` is the result type decided at bind time.
pub(crate) fn binary(op: BinOp, l: &Column, lt: SqlType, r: &Column, rt: SqlType, out: SqlType) -> SqlResult<Column> {
    let n = l.len();
    match op {
        BinOp::And | BinOp::Or => {
            let (a, b) = (bools(l), bools(r));
            let mut vals = Vec::with_capacity(n);
            let mut valid = Bitmap::new_set(n);
            for i in 0..n {
                let (av, bv) = (l.is_valid(i).then(|| a[i]), r.is_valid(i).then(|| b[i]));
                let res = if op == BinOp::And {
                    match (av, bv) {
                        (Some(false), _) | (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    }
                } else {
                    match (av, bv) {
                        (Some(true), _) | (_, Some(true)) => Some(true),
                        (Some(false), Some(false)) => Some(false),
                        _ => None,
                    }
                };
                if res.is_none() {
                    valid.set(i, false);
                }
                vals.push(res.unwrap_or(false));
            }
            Ok(bool_col(vals, Some(valid)))
        }
        _ if op.is_comparison() => compare(op, l, lt, r, rt),
        BinOp::Concat => {
            let (ls, rs) = (text_of(l, lt), text_of(r, rt));
            let mut out_v = StrVec::with_capacity(n, 0);
            for i in 0..n {
                let mut s = ls.get(i).to_string();
                s.push_str(rs.get(i));
                out_v.push(&s);
            }
            Ok(Column::with_validity(Values::Text(out_v), validity_and(l, r)))
        }
        _ if out.is_integer() => {
            let (a, b) = (as_i64(l), as_i64(r));
            let (lo, hi) = out.int_range();
            let validity = validity_and(l, r);
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let ok = validity.as_ref().is_none_or(|x| x.get(i));
                let (x, y) = (a[i], b[i]);
                let res = match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    BinOp::Mul => x.checked_mul(y),
                    BinOp::Div | BinOp::Mod => {
                        if y == 0 {
                            if ok {
                                return Err(SqlError::division_by_zero());
                            }
                            Some(0)
                        } else if op == BinOp::Div {
                            x.checked_div(y)
                        } else {
                            Some(x.wrapping_rem(y))
                        }
                    }
                    _ => unreachable!("arithmetic operator"),
                };
                match res {
                    Some(z) if z >= lo && z <= hi => v.push(z),
                    _ if !ok => v.push(0),
                    _ => return Err(SqlError::out_of_range(int_name(out))),
                }
            }
            Ok(Column::with_validity(Values::Int64(v), validity))
        }
        _ if out.is_numeric() => {
            let (a, b) = (as_f64(l), as_f64(r));
            // Numeric results past 2^53 are checked against the exact decimal result.
            let numeric = out == SqlType::Numeric;
            let validity = validity_and(l, r);
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let ok = validity.as_ref().is_none_or(|x| x.get(i));
                let (x, y) = (a[i], b[i]);
                v.push(match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div | BinOp::Mod if y == 0.0 && ok => return Err(SqlError::division_by_zero()),
                    BinOp::Div => x / y,
                    BinOp::Mod => x % y,
                    _ => unreachable!("arithmetic operator"),
                });
                if ok && v[i].is_infinite() && x.is_finite() && y.is_finite() {
                    return Err(SqlError::new("22003", "value out of range: overflow"));
                }
                if ok
                    && numeric
                    && v[i].is_finite()
                    && x.abs().max(y.abs()).max(v[i].abs()) >= super::scalar::EXACT_INT_LIMIT
                {
                    v[i] = numeric_exact(op, x, y, v[i])?;
                }
            }
            Ok(Column::with_validity(Values::Float64(v), validity))
        }
        _ if lt.is_timestamp() && rt.is_timestamp() && op == BinOp::Sub => {
            // timestamp - timestamp: an interval of days and time (24-hour units become days).
            let (a, b) = (as_i64(l), as_i64(r));
            let validity = validity_and(l, r);
            let mut out = StrVec::with_capacity(n, 0);
            for i in 0..n {
                let d = a[i].saturating_sub(b[i]);
                let day = crate::util::time::MICROS_PER_DAY;
                let iv = super::types::Interval { months: 0, days: (d / day) as i32, micros: d % day };
                out.push(&super::types::format_interval(&iv));
            }
            Ok(Column::with_validity(Values::Text(out), validity))
        }
        _ => {
            Err(SqlError::undefined_function(&format!("operator {} ({}, {})", op.symbol(), lt.pg_name(), rt.pg_name())))
        }
    }
}

/// Numeric `x op y` where a value reaches 2^53: there doubles are whole numbers 2 and more
/// apart, and the decimal a double stands for (its shortest digits) may not be the double
/// itself, so the double `r` the hardware rounded to may be wrong. The exact result is worked
/// out on the operands' decimals in 128-bit integers: the double that stands for it, or 22003
/// when none does.
fn numeric_exact(op: BinOp, x: f64, y: f64, r: f64) -> SqlResult<f64> {
    use super::scalar::numeric_decimal as dec;
    let ((mx, ex), (my, ey)) = (dec(x), dec(y));
    // Both mantissas at the smaller exponent, when they fit.
    let aligned = || {
        let e = ex.min(ey);
        let scale = |m: i128, by: i32| 10i128.checked_pow(u32::try_from(by).ok()?).and_then(|p| m.checked_mul(p));
        Some((scale(mx, ex - e)?, scale(my, ey - e)?, e))
    };
    let exact = match op {
        BinOp::Add => aligned().and_then(|(a, b, e)| Some((a.checked_add(b)?, e))),
        BinOp::Sub => aligned().and_then(|(a, b, e)| Some((a.checked_sub(b)?, e))),
        BinOp::Mod => aligned().and_then(|(a, b, e)| Some((a.checked_rem(b)?, e))),
        BinOp::Mul => mx.checked_mul(my).map(|m| (m, ex + ey)),
        // The quotient is exact when it times the divisor is the dividend.
        BinOp::Div => {
            let (mr, er) = dec(r);
            let back = mr.checked_mul(my).map(|m| super::scalar::decimal_normal(m, er + ey));
            return if back == Some((mx, ex)) { Ok(r) } else { Err(inexact_op(op, x, y)) };
        }
        _ => return Ok(r),
    };
    let Some((m, e)) = exact.map(|(m, e)| super::scalar::decimal_normal(m, e)) else {
        return Err(inexact_op(op, x, y));
    };
    if (m, e) == dec(r) {
        return Ok(r);
    }
    match format!("{m}e{e}").parse::<f64>() {
        Ok(f) if f.is_finite() && dec(f) == (m, e) => Ok(f),
        _ => Err(inexact_op(op, x, y)),
    }
}

fn inexact_op(op: BinOp, x: f64, y: f64) -> SqlError {
    super::scalar::numeric_inexact(&format!("result of {} {} {}", format_numeric(x), op.symbol(), format_numeric(y)))
}

/// A column as text (its PostgreSQL text form for non-text types).
/// The rows of `b` (columns typed by `schema`) as text, `None` for NULL, as clients print them.
pub(crate) fn rows_as_text(schema: &[super::types::OutCol], b: &crate::batch::Batch) -> Vec<Vec<Option<String>>> {
    let texts: Vec<_> = b.columns.iter().zip(schema).map(|(c, o)| text_of(c, o.ty)).collect();
    (0..b.num_rows())
        .map(|i| (0..texts.len()).map(|j| b.columns[j].is_valid(i).then(|| texts[j].get(i).to_string())).collect())
        .collect()
}

/// Casts a column from `from` to `to`, as PostgreSQL's `::` does.
pub(crate) fn cast(c: &Column, from: SqlType, to: SqlType) -> SqlResult<Column> {
    if from == to || (from.is_text() && to.is_text()) {
        return Ok(c.clone());
    }
    let n = c.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let s = Scalar::from_column(c, from, i);
        out.push(cast_scalar(s, from, to)?);
    }
    scalars_to_column(&out, to)
}

/// Casts one value.
pub(crate) fn cast_scalar(s: Scalar, from: SqlType, to: SqlType) -> SqlResult<Scalar> {
    use SqlType as T;
    if s.is_null() || from == to {
        return Ok(s);
    }
    Ok(match (s, to) {
        (Scalar::Text(t), _) => super::scalar::parse_text(&t, to)?,
        // A boolean written as text is spelled out (its output form is t or f).
        (Scalar::Bool(b), t) if t.is_text() || t.is_json() => Scalar::Text((if b { "true" } else { "false" }).into()),
        (v, t) if t.is_text() || t.is_json() => Scalar::Text(v.to_text(from).unwrap_or_default()),
        (Scalar::Int(i), t) if t.is_integer() => {
            let (lo, hi) = t.int_range();
            if i < lo || i > hi {
                return Err(SqlError::out_of_range(int_name(t)));
            }
            Scalar::Int(i)
        }
        // An integer a double cannot hold exactly is refused as numeric (see `parse_numeric`);
        // double precision rounds it, as PostgreSQL's does.
        (Scalar::Int(i), T::Numeric) if i.unsigned_abs() > 1 << 53 => {
            super::scalar::parse_numeric(&i.to_string())?;
            Scalar::Float(i as f64)
        }
        (Scalar::Int(i), t) if t.is_numeric() => Scalar::Float(i as f64),
        (Scalar::Float(f), t) if t.is_integer() => {
            // float → int rounds half to even; numeric → int rounds half away from zero.
            let r = if from == T::Numeric { f.round() } else { f.round_ties_even() };
            let (lo, hi) = t.int_range();
            if !r.is_finite() || r < lo as f64 || r > hi as f64 {
                return Err(SqlError::out_of_range(int_name(t)));
            }
            Scalar::Int(r as i64)
        }
        // A double becomes numeric rounded to 15 significant digits, as in PostgreSQL (below
        // 1e15 the text form rounds so already; above, its integer digits show): refused when
        // the rounded value is not a double either (past 2^53).
        (Scalar::Float(f), T::Numeric) if f.is_finite() && f.abs() >= 1e15 => {
            Scalar::Float(super::scalar::parse_numeric(&format!("{f:.14e}"))?)
        }
        (Scalar::Float(f), t) if t.is_numeric() => Scalar::Float(if t == T::Float4 { f as f32 as f64 } else { f }),
        (Scalar::Bool(b), t) if t.is_integer() => Scalar::Int(b as i64),
        (Scalar::Int(i), T::Bool) => Scalar::Bool(i != 0),
        (Scalar::Time(t), T::Date) if from.is_timestamp() => {
            Scalar::Time(t.div_euclid(crate::util::time::MICROS_PER_DAY))
        }
        (Scalar::Time(d), t) if from == T::Date && t.is_timestamp() => Scalar::Time(
            d.checked_mul(crate::util::time::MICROS_PER_DAY)
                .ok_or_else(|| SqlError::new("22008", "date out of range for timestamp"))?,
        ),
        (Scalar::Time(t), u) if from.is_timestamp() && u.is_timestamp() => Scalar::Time(t),
        (v, t) => {
            return Err(SqlError::new("42846", format!("cannot cast type {} to {}", from.pg_name(), t.pg_name()))
                .with_hint(format!("{v:?}")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn like_patterns() {
        for (s, p, want) in [
            ("machine-7", "machine%", true),
            ("machine-7", "%-_", true),
            ("abc", "a_c", true),
            ("abc", "a%d", false),
            ("", "%", true),
            ("50%", "50\\%", true),
            ("505", "50\\%", false),
            ("aXbXc", "%X%X%", true),
        ] {
            assert_eq!(like_match(&chars(s), &chars(p)), want, "{s} LIKE {p}");
        }
    }

    #[test]
    fn integer_arithmetic_checks_range_and_zero() {
        let a = Column::new(Values::Int64(vec![2_147_483_647]));
        let one = Column::new(Values::Int64(vec![1]));
        let e = binary(BinOp::Add, &a, SqlType::Int4, &one, SqlType::Int4, SqlType::Int4).unwrap_err();
        assert_eq!((e.sqlstate, e.message.as_str()), ("22003", "integer out of range"));
        assert!(binary(BinOp::Add, &a, SqlType::Int8, &one, SqlType::Int8, SqlType::Int8).is_ok());
        let zero = Column::new(Values::Int64(vec![0]));
        assert_eq!(
            binary(BinOp::Div, &one, SqlType::Int4, &zero, SqlType::Int4, SqlType::Int4).unwrap_err().sqlstate,
            "22012"
        );
        let seven = Column::new(Values::Int64(vec![-7]));
        let two = Column::new(Values::Int64(vec![2]));
        let q = binary(BinOp::Div, &seven, SqlType::Int4, &two, SqlType::Int4, SqlType::Int4).unwrap();
        assert_eq!(q.values, Values::Int64(vec![-3]), "integer division truncates toward zero");
    }
}
