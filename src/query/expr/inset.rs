//! `x IN (literal, …)` as one hash set of the literals, built once when the statement is bound
//! ([`LitSet::of`]): the lists ORMs and BI tools send for a selection run to thousands of
//! items, and a list evaluated item by item (or a set rebuilt for every batch) costs a
//! statement time no cancel reaches. The set is charged to the query's working memory as it is
//! built; evaluation is one lookup per row (per dictionary entry for a coded text column).

type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

use super::{Expr, bool_col};
use crate::batch::{Bitmap, Column, Values};
use crate::query::error::SqlResult;
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;

/// Lists shorter than this stay item by item (their comparisons are as cheap as a set's set-up).
pub(crate) const MIN_SET: usize = 16;

/// The non-NULL literals of an IN list, by the list's common type; whether a NULL was among
/// them (then a value not found is NULL, not false).
#[derive(PartialEq)]
pub(crate) struct LitSet {
    keys: Keys,
    has_null: bool,
}

#[derive(PartialEq)]
enum Keys {
    Int(HashSet<i64>),
    /// Doubles by value as PostgreSQL compares them: -0 equals 0, every NaN equals every NaN.
    Float(HashSet<u64>),
    Text(HashSet<String>),
}

fn float_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        u64::MAX
    } else {
        x.to_bits()
    }
}

impl std::fmt::Debug for LitSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = match &self.keys {
            Keys::Int(s) => s.len(),
            Keys::Float(s) => s.len(),
            Keys::Text(s) => s.len(),
        };
        write!(f, "LitSet({n} values{})", if self.has_null { " and NULL" } else { "" })
    }
}

impl LitSet {
    /// The set of `items` (already coerced to `ty`, taken apart: text moves into the set), or
    /// the items back when they are not all literals of an integer, double or text type (the
    /// list is then compared item by item).
    pub(crate) fn of(items: Vec<Expr>, ty: SqlType) -> SqlResult<Result<LitSet, Vec<Expr>>> {
        let kind = |v: &Scalar| match v {
            Scalar::Int(_) if ty.is_integer() => true,
            Scalar::Float(_) => ty == SqlType::Float8,
            Scalar::Text(_) => matches!(ty, SqlType::Text | SqlType::Unknown),
            Scalar::Null => true,
            _ => false,
        };
        let fits = matches!(ty, SqlType::Float8 | SqlType::Text | SqlType::Unknown) || ty.is_integer();
        if !fits || !items.iter().all(|x| x.as_lit().is_some_and(kind)) {
            return Ok(Err(items));
        }
        let n = items.len();
        // A hash set holds its entries and about a quarter more in control bytes and slack.
        let slot = |size: usize| n.saturating_mul(size + size / 4 + 1);
        let text: usize =
            items.iter().map(|x| if let Some(Scalar::Text(t)) = x.as_lit() { t.capacity() } else { 0 }).sum();
        if let Err(e) = crate::query::guard::charge(slot(if text > 0 { 24 } else { 8 }).saturating_add(text)) {
            if n >= FREE_ELSEWHERE {
                crate::query::guard::free_elsewhere(items);
            }
            return Err(e);
        }
        let mut set = LitSet {
            keys: match ty {
                SqlType::Float8 => Keys::Float(HashSet::with_capacity_and_hasher(n, Default::default())),
                SqlType::Text | SqlType::Unknown => {
                    Keys::Text(HashSet::with_capacity_and_hasher(n, Default::default()))
                }
                _ => Keys::Int(HashSet::with_capacity_and_hasher(n, Default::default())),
            },
            has_null: false,
        };
        let mut rest = items.into_iter();
        for (k, x) in rest.by_ref().enumerate() {
            let Expr::Lit { value, .. } = x else { continue };
            match (&mut set.keys, value) {
                (_, Scalar::Null) => set.has_null = true,
                (Keys::Int(s), Scalar::Int(i)) => _ = s.insert(i),
                (Keys::Float(s), Scalar::Float(f)) => _ = s.insert(float_key(f)),
                (Keys::Text(s), Scalar::Text(t)) => _ = s.insert(t),
                _ => {}
            }
            if let Err(e) = crate::query::guard::check_every(k) {
                crate::query::guard::free_elsewhere(rest);
                return Err(e);
            }
        }
        Ok(Ok(set))
    }

    /// `c IN (the set)` (or NOT IN) with SQL's NULLs: NULL for a NULL value, and for a value
    /// not found when the list held a NULL. `None` when `c`'s values are not of the set's kind.
    pub(crate) fn eval(&self, c: &Column, negated: bool) -> Option<Column> {
        let n = c.len();
        let hits: Vec<bool> = match (&self.keys, &c.values) {
            (Keys::Int(s), Values::Int64(v)) => v.iter().map(|x| s.contains(x)).collect(),
            (Keys::Float(s), Values::Float64(v)) => v.iter().map(|&x| s.contains(&float_key(x))).collect(),
            (Keys::Text(s), Values::Text(v)) => match v.codes() {
                // A coded column: each dictionary entry looked up once.
                Some((dict, codes)) if dict.len() < n => {
                    let found: Vec<bool> = dict.iter().map(|d| s.contains(d)).collect();
                    codes.iter().map(|&k| found[k as usize]).collect()
                }
                _ => (0..n).map(|i| s.contains(v.get(i))).collect(),
            },
            _ => return None,
        };
        let vals: Vec<bool> = hits.iter().map(|&h| h != negated).collect();
        let valid = if self.has_null || c.validity.is_some() {
            let mut valid = Bitmap::new_set(n);
            for (i, &h) in hits.iter().enumerate() {
                if !c.is_valid(i) || (!h && self.has_null) {
                    valid.set(i, false);
                }
            }
            Some(valid)
        } else {
            None
        };
        Some(bool_col(vals, valid))
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::Int(HashSet::default())
    }
}

impl Drop for LitSet {
    /// A large set is freed on another thread: a million strings take ~50 ms to free, which a
    /// statement's answer (a cancel's above all) does not wait for.
    fn drop(&mut self) {
        let n = match &self.keys {
            Keys::Int(s) => s.len(),
            Keys::Float(s) => s.len(),
            Keys::Text(s) => s.len(),
        };
        if n >= FREE_ELSEWHERE {
            crate::query::guard::free_elsewhere(std::mem::take(&mut self.keys));
        }
    }
}

/// Sets and lists at least this long are freed on another thread.
pub(crate) const FREE_ELSEWHERE: usize = 65_536;
