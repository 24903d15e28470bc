//! Sorting: value and row comparisons the PostgreSQL way, sorts that answer cancel, and the top row per group.

use crate::batch::{Batch, Column, Values};
use crate::query::error::SqlResult;
use crate::query::func::scalar_cmp;
use crate::query::guard;
use crate::query::scalar::Scalar;
use crate::query::types::SqlType;
use crate::table::store_key_bytes;

/// How one sort key orders its column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColOrder {
    pub ty: SqlType,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Compares two non-NULL values of one column, ascending (floats: NaN sorts last, as in
/// PostgreSQL; text by bytes, the C collation; intervals by length).
pub(super) fn cmp_values(c: &Column, ty: SqlType, a: usize, b: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match &c.values {
        Values::Int64(v) | Values::Timestamp(v) => v[a].cmp(&v[b]),
        Values::Float64(v) => v[a].partial_cmp(&v[b]).unwrap_or_else(|| v[a].is_nan().cmp(&v[b].is_nan())),
        Values::Text(_) if ty == SqlType::Interval => {
            scalar_cmp(&Scalar::from_column(c, ty, a), &Scalar::from_column(c, ty, b)).unwrap_or(Ordering::Equal)
        }
        Values::Text(v) => v.get(a).as_bytes().cmp(v.get(b).as_bytes()),
        Values::Bool(v) => v[a].cmp(&v[b]),
    }
}

/// Compares rows `a` and `b` of `c` under `o`, NULLs placed as `o` says.
pub(crate) fn cmp_rows(c: &Column, o: &ColOrder, a: usize, b: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (c.is_valid(a), c.is_valid(b)) {
        (false, false) => Ordering::Equal,
        (false, true) => {
            if o.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (true, false) => {
            if o.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (true, true) => {
            let x = cmp_values(c, o.ty, a, b);
            if o.desc { x.reverse() } else { x }
        }
    }
}

/// The row order of `n` rows sorted by `cols` under `order` (stable: ties keep input order).
/// Row numbers in sort order. A cancel or timeout stops it within a few milliseconds: the
/// comparisons then all answer "equal", which ends the sort in one pass, and it fails.
pub(crate) fn sort_rows(cols: &[Column], order: &[ColOrder], n: usize) -> SqlResult<Vec<u32>> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let compared = std::cell::Cell::new(0u32);
    let stopped = std::cell::Cell::new(false);
    let go_on = || {
        let k = compared.get().wrapping_add(1);
        compared.set(k);
        if k.is_multiple_of(65_536) && guard::check().is_err() {
            stopped.set(true);
        }
        !stopped.get()
    };
    // One integer or timestamp key without NULLs: sort the values themselves.
    if let ([c], [o]) = (cols, order)
        && c.validity.is_none()
        && let Values::Int64(v) | Values::Timestamp(v) = &c.values
    {
        if o.desc {
            idx.sort_by(|&a, &b| if go_on() { v[b as usize].cmp(&v[a as usize]) } else { std::cmp::Ordering::Equal });
        } else {
            idx.sort_by(|&a, &b| if go_on() { v[a as usize].cmp(&v[b as usize]) } else { std::cmp::Ordering::Equal });
        }
        guard::check()?;
        return Ok(idx);
    }
    idx.sort_by(|&a, &b| {
        if !go_on() {
            return std::cmp::Ordering::Equal;
        }
        for (c, o) in cols.iter().zip(order) {
            let x = cmp_rows(c, o, a as usize, b as usize);
            if x != std::cmp::Ordering::Equal {
                return x;
            }
        }
        std::cmp::Ordering::Equal
    });
    guard::check()?;
    Ok(idx)
}

pub(super) fn top_per_group(
    all: &Batch,
    keys: &[usize],
    by: usize,
    ty: SqlType,
    desc: bool,
    nulls_first: bool,
) -> Vec<u32> {
    use std::cmp::Ordering;
    use std::collections::HashMap;
    let c = &all.columns[by];
    let better = |a: usize, b: usize| -> bool {
        match (c.is_valid(a), c.is_valid(b)) {
            (false, false) => false,
            (false, true) => nulls_first,
            (true, false) => !nulls_first,
            (true, true) => {
                let o = cmp_values(c, ty, a, b);
                if desc { o == Ordering::Greater } else { o == Ordering::Less }
            }
        }
    };
    let mut slot: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut best: Vec<usize> = Vec::new();
    let mut prev: Option<(usize, usize)> = None; // (row, slot) of the previous row
    for r in 0..all.num_rows() {
        // Inputs grouped by series hit this often: same key as the previous row, no hashing.
        let s = match prev {
            Some((pr, ps)) if keys.iter().all(|&k| crate::query::agg::same_value(&all.columns[k], pr, r)) => ps,
            _ => {
                let next = best.len();
                let s = *slot.entry(store_key_bytes(all, keys, r)).or_insert(next);
                if s == next {
                    best.push(r);
                }
                s
            }
        };
        if better(r, best[s]) {
            best[s] = r;
        }
        prev = Some((r, s));
    }
    let mut idx: Vec<u32> = best.into_iter().map(|r| r as u32).collect();
    idx.sort_unstable();
    idx
}
