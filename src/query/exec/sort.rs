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
        Values::Float64(v) => crate::query::scalar::cmp_f64(v[a], v[b]),
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
    // Rows already in order (a series' rows read in time order, a sorted file): one pass of
    // comparisons, stopping at the first pair out of order, answers without building keys.
    let mut in_order = true;
    for i in 1..n {
        if i % 65_536 == 0 {
            guard::check()?;
        }
        let x = cols.iter().zip(order).map(|(c, o)| cmp_rows(c, o, i - 1, i)).find(|x| x.is_ne());
        if x.is_some_and(|x| x.is_gt()) {
            in_order = false;
            break;
        }
    }
    if in_order {
        return Ok(idx);
    }
    if let Some(keys) = NormalKeys::of(cols, order)? {
        // Each row's first 16 key bytes as a number beside its row number, sorted in place;
        // the rest of the key (if any) is compared only when those are equal, and the row
        // number last, so an unstable sort keeps input order on ties.
        let NormalKeys { heads, tails } = keys;
        let mut pairs: Vec<(u128, u32)> = heads.into_iter().zip(0..n as u32).collect();
        match &tails {
            None => pairs.sort_unstable_by(|a, b| if go_on() { a.cmp(b) } else { std::cmp::Ordering::Equal }),
            Some((bytes, ends)) => {
                let tail =
                    |i: u32| &bytes[if i == 0 { 0 } else { ends[i as usize - 1] as usize }..ends[i as usize] as usize];
                pairs.sort_unstable_by(|a, b| {
                    if !go_on() {
                        return std::cmp::Ordering::Equal;
                    }
                    a.0.cmp(&b.0).then_with(|| tail(a.1).cmp(tail(b.1))).then(a.1.cmp(&b.1))
                });
            }
        }
        guard::check()?;
        return Ok(pairs.into_iter().map(|(_, i)| i).collect());
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

/// Normalized sort keys: each row's keys as bytes whose unsigned order is the rows' order
/// under [`cmp_rows`], so a sort compares one byte string (or one number) per pair of rows
/// instead of dispatching on each key column's type. Per key column:
/// - a NULL marker byte when the column has NULLs (NULL below or above every value, as the
///   key's NULLS FIRST / LAST says; a NULL's value bytes are zeros);
/// - integers and times: big-endian with the sign bit flipped;
/// - doubles: the bits, all inverted for negatives and the sign bit flipped otherwise (-0 as
///   0, every NaN as one NaN above infinity, as PostgreSQL orders them);
/// - booleans: one byte; text (bytes, the C collation): each byte, a zero byte as `00 FF`,
///   then the terminator `00 00`, so a prefix sorts first;
/// - DESC: the value bytes inverted.
///
/// Intervals (ordered by length, not by their stored form) keep the comparing sort.
struct NormalKeys {
    /// Each row's first 16 key bytes (zeros past a shorter key), as a big-endian number.
    heads: Vec<u128>,
    /// The bytes after those, row after row (`ends[i]`: where row `i`'s end), when any key
    /// is longer.
    tails: Option<(Vec<u8>, Vec<u32>)>,
}

impl NormalKeys {
    fn of(cols: &[Column], order: &[ColOrder]) -> SqlResult<Option<NormalKeys>> {
        let n = cols.first().map_or(0, Column::len);
        let mut width = 0usize;
        let mut fixed = true;
        for (c, o) in cols.iter().zip(order) {
            width += c.validity.is_some() as usize;
            width += match &c.values {
                Values::Int64(_) | Values::Timestamp(_) | Values::Float64(_) => 8,
                Values::Bool(_) => 1,
                Values::Text(_) if o.ty == SqlType::Interval => return Ok(None),
                Values::Text(v) => {
                    fixed = false;
                    v.data_len() / n.max(1) + 2
                }
            };
        }
        if n < 2 {
            return Ok(None);
        }
        let narrow = fixed && width <= 16;
        // The keys are held while the rows are sorted: room for them first.
        // (a 16-byte head per row, then a 32-byte head and row number pair per row, and the
        // bytes past 16 of longer keys with their offsets)
        guard::room(48 * n + if narrow { 0 } else { n.saturating_mul(width.saturating_sub(16) + 4) })?;
        let mut row = Vec::with_capacity(width);
        let put = |i: usize, out: &mut Vec<u8>| {
            for (c, o) in cols.iter().zip(order) {
                let valid = c.is_valid(i);
                if c.validity.is_some() {
                    out.push(match (valid, o.nulls_first) {
                        (true, _) => 1,
                        (false, true) => 0,
                        (false, false) => 2,
                    });
                }
                let from = out.len();
                match &c.values {
                    Values::Int64(v) | Values::Timestamp(v) => {
                        let x = if valid { v[i] } else { 0 };
                        out.extend_from_slice(&((x as u64) ^ (1 << 63)).to_be_bytes());
                    }
                    Values::Float64(v) => {
                        let x = if valid { v[i] } else { 0.0 };
                        let bits = if x.is_nan() {
                            f64::NAN.to_bits()
                        } else if x == 0.0 {
                            0
                        } else {
                            x.to_bits()
                        };
                        let key = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
                        out.extend_from_slice(&key.to_be_bytes());
                    }
                    Values::Bool(v) => out.push((valid && v[i]) as u8),
                    Values::Text(v) => {
                        if valid {
                            for &b in v.get(i).as_bytes() {
                                out.push(b);
                                if b == 0 {
                                    out.push(0xff);
                                }
                            }
                        }
                        out.extend_from_slice(&[0, 0]);
                    }
                }
                if o.desc {
                    out[from..].iter_mut().for_each(|b| *b = !*b);
                }
            }
        };
        let mut heads = Vec::with_capacity(n);
        let mut tails = (!narrow).then(|| (Vec::with_capacity(n * width.saturating_sub(16)), Vec::with_capacity(n)));
        for i in 0..n {
            row.clear();
            put(i, &mut row);
            let mut k = [0u8; 16];
            let h = row.len().min(16);
            k[..h].copy_from_slice(&row[..h]);
            heads.push(u128::from_be_bytes(k));
            if let Some((bytes, ends)) = &mut tails {
                bytes.extend_from_slice(&row[h..]);
                // Offsets are u32: keys past 4 GiB keep the comparing sort.
                match u32::try_from(bytes.len()) {
                    Ok(e) => ends.push(e),
                    Err(_) => return Ok(None),
                }
            }
            if i % 65_536 == 65_535 {
                guard::check()?;
            }
        }
        Ok(Some(NormalKeys { heads, tails }))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Bitmap, StrVec};
    use proptest::prelude::*;

    /// The order the comparing sort gives (stable), the reference for normalized keys.
    fn compared(cols: &[Column], order: &[ColOrder], n: usize) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        idx.sort_by(|&a, &b| {
            cols.iter()
                .zip(order)
                .map(|(c, o)| cmp_rows(c, o, a as usize, b as usize))
                .find(|x| x.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        idx
    }

    fn with_nulls(values: Values, nulls: &[bool]) -> Column {
        let mut b = Bitmap::default();
        nulls.iter().for_each(|&x| b.push(!x));
        Column::with_validity(values, Some(b))
    }

    /// Values where byte order and value order part: negatives, -0 and 0, NaN, infinities,
    /// text with zero bytes and prefixes of each other.
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            -3.0f64..3.0,
            any::<f64>()
        ]
    }
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), Just("a".to_string()), Just("a\0".to_string()), "[a\0b\u{ff}]{0,4}"]
    }
    fn orders(k: usize) -> impl Strategy<Value = Vec<(bool, bool)>> {
        prop::collection::vec((any::<bool>(), any::<bool>()), k)
    }

    proptest! {
        /// Sorting by normalized keys (narrow: numbers; wide: bytes) gives the comparing
        /// sort's order exactly, ties in input order, for every mix of types, NULL places
        /// and directions.
        #[test]
        fn normalized_keys_order_rows_as_comparisons_do(
            rows in prop::collection::vec((-3i64..3, float(), text(), any::<bool>(), any::<i64>()), 2..120),
            nulls in prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), 120),
            dirs in orders(3),
            pick in 0usize..5,
        ) {
            let n = rows.len();
            let ints = with_nulls(Values::Int64(rows.iter().map(|r| r.0).collect()), &nulls.iter().map(|x| x.0).take(n).collect::<Vec<_>>());
            let floats = with_nulls(Values::Float64(rows.iter().map(|r| r.1).collect()), &nulls.iter().map(|x| x.1).take(n).collect::<Vec<_>>());
            let texts = with_nulls(Values::Text(rows.iter().map(|r| r.2.as_str()).collect::<StrVec>()), &nulls.iter().map(|x| x.2).take(n).collect::<Vec<_>>());
            let bools = Column::new(Values::Bool(rows.iter().map(|r| r.3).collect()));
            let times = Column::new(Values::Timestamp(rows.iter().map(|r| r.4).collect()));
            let sets: [Vec<(Column, SqlType)>; 5] = [
                // narrow (at most 16 bytes): a nullable int or double and a boolean
                vec![(ints.clone(), SqlType::Int8), (bools.clone(), SqlType::Bool)],
                vec![(floats.clone(), SqlType::Float8), (bools.clone(), SqlType::Bool)],
                // wide: 17 bytes, then text
                vec![(floats.clone(), SqlType::Float8), (times, SqlType::TimestampTz)],
                vec![(texts.clone(), SqlType::Text), (ints, SqlType::Int8), (floats.clone(), SqlType::Float8)],
                vec![(bools, SqlType::Bool), (floats, SqlType::Float8), (texts, SqlType::Text)],
            ];
            let set = &sets[pick];
            let cols: Vec<Column> = set.iter().map(|(c, _)| c.clone()).collect();
            let order: Vec<ColOrder> = set
                .iter()
                .zip(&dirs)
                .map(|((_, ty), &(desc, nulls_first))| ColOrder { ty: *ty, desc, nulls_first })
                .collect();
            prop_assert!(NormalKeys::of(&cols, &order).unwrap().is_some());
            prop_assert_eq!(sort_rows(&cols, &order, n).unwrap(), compared(&cols, &order, n));
        }
    }

    #[test]
    fn keys_of_sixteen_bytes_or_less_are_numbers() {
        let ints = Column::new(Values::Int64(vec![3, -1, 3, i64::MIN, i64::MAX]));
        let times = Column::new(Values::Timestamp(vec![5, 5, 4, 0, 0]));
        let up = |ty| ColOrder { ty, desc: false, nulls_first: false };
        let cols = [ints, times];
        let order = [up(SqlType::Int8), up(SqlType::TimestampTz)];
        assert!(NormalKeys::of(&cols, &order).unwrap().is_some_and(|k| k.tails.is_none()));
        assert_eq!(sort_rows(&cols, &order, 5).unwrap(), [3, 1, 2, 0, 4]);
        // Intervals order by length, not by their stored text: no normalized keys.
        let iv = Column::new(Values::Text(["1 day", "2 hours"].into_iter().collect()));
        assert!(NormalKeys::of(&[iv], &[up(SqlType::Interval)]).unwrap().is_none());
    }
}
