//! Top-N: `ORDER BY … LIMIT n [OFFSET m]` keeps only the best `n + m` rows seen so far
//! instead of sorting the whole input. Rows arrive a batch at a time; whenever the rows held
//! reach twice what is kept (at least [`MIN_CUT`]), they are sorted and cut back, so the
//! memory held stays proportional to `n + m`, not to the input. After a cut, the first key of
//! the last row kept is a bound ([`Cutoff`]): a row whose first key sorts after it cannot be
//! among the best and is dropped as it arrives, so cuts become rare as the best rows settle.

use super::*;
use crate::query::plan::SortKey;
use std::cmp::Ordering;

/// Fewest rows collected before a cut (cutting is a sort of what is held).
const MIN_CUT: usize = 16_384;
pub(super) use crate::query::plan::TOP_N_MAX_KEPT as MAX_KEPT;

/// The rows of `batch` sorted by `keys`, then by its last column (the scan position)
/// ascending, the first `keep` of them.
fn best(batch: &Batch, keys: &[SortKey], keep: usize) -> SqlResult<Batch> {
    let mut cols = keys.iter().map(|k| eval(&k.expr, batch)).collect::<SqlResult<Vec<_>>>()?;
    let mut order: Vec<ColOrder> =
        keys.iter().map(|k| ColOrder { ty: k.expr.ty(), desc: k.desc, nulls_first: k.nulls_first }).collect();
    if let Some(p) = batch.columns.last() {
        cols.push(p.clone());
        order.push(ColOrder { ty: SqlType::Int8, desc: false, nulls_first: false });
    }
    let mut idx = sort_rows(&cols, &order, batch.num_rows())?;
    idx.truncate(keep);
    Ok(batch.take(&idx))
}

/// The first sort key's value in the last row kept at a cut, when every row to keep is held:
/// a row whose first key sorts strictly after it is not among the best.
struct Cutoff {
    bound: Bound,
    desc: bool,
    nulls_first: bool,
}

enum Bound {
    Int(i64),
    Float(f64),
    Text(String),
    /// The last row kept has a NULL key and NULLs come first: every value sorts after it.
    Null,
}

impl Cutoff {
    /// The cutoff of `kept`, the best rows in order (`None` when the last one's first key is
    /// a NULL sorted last, or of a type compared otherwise, such as intervals).
    fn of(kept: &Batch, key: &SortKey) -> SqlResult<Option<Cutoff>> {
        let Some(last) = kept.num_rows().checked_sub(1) else { return Ok(None) };
        let c = eval(&key.expr, &kept.take(&[last as u32]))?;
        if !c.is_valid(0) {
            return Ok(key.nulls_first.then_some(Cutoff { bound: Bound::Null, desc: key.desc, nulls_first: true }));
        }
        let bound = match &c.values {
            Values::Int64(v) | Values::Timestamp(v) => Bound::Int(v[0]),
            Values::Float64(v) => Bound::Float(v[0]),
            Values::Text(v) if key.expr.ty() != SqlType::Interval => Bound::Text(v.get(0).to_string()),
            _ => return Ok(None),
        };
        Ok(Some(Cutoff { bound, desc: key.desc, nulls_first: key.nulls_first }))
    }

    /// The rows of `c` (a batch's first sort key) that may be among the best: not after the
    /// bound in sort order (ties kept, the cut decides them). `None`: every row.
    fn rows(&self, c: &Column) -> Option<Vec<u32>> {
        // Whether a value's order against the bound (ascending) puts it after the bound.
        let after = |o: Ordering| if self.desc { o == Ordering::Less } else { o == Ordering::Greater };
        let n = c.len();
        let mut keep: Vec<u32> = Vec::new();
        let mut push = |i: usize, drop: bool| {
            if !drop {
                keep.push(i as u32);
            }
        };
        match (&self.bound, &c.values) {
            (Bound::Null, _) => (0..n).for_each(|i| push(i, c.is_valid(i))),
            (Bound::Int(x), Values::Int64(v) | Values::Timestamp(v)) => {
                for (i, y) in v.iter().enumerate() {
                    push(i, if c.is_valid(i) { after(y.cmp(x)) } else { !self.nulls_first });
                }
            }
            (Bound::Float(x), Values::Float64(v)) => {
                // As the sort compares doubles: -0 equals 0, NaN after every number.
                for (i, &y) in v.iter().enumerate() {
                    push(
                        i,
                        if c.is_valid(i) { after(crate::query::scalar::cmp_f64(y, *x)) } else { !self.nulls_first },
                    );
                }
            }
            (Bound::Text(x), Values::Text(v)) => {
                let x = x.as_bytes();
                match v.codes() {
                    // A coded column: each dictionary entry compared once.
                    Some((dict, codes)) if dict.len() < n => {
                        let past: Vec<bool> = dict.iter().map(|d| after(d.as_bytes().cmp(x))).collect();
                        for (i, &k) in codes.iter().enumerate() {
                            push(i, if c.is_valid(i) { past[k as usize] } else { !self.nulls_first });
                        }
                    }
                    _ => {
                        for i in 0..n {
                            push(i, if c.is_valid(i) { after(v.get(i).as_bytes().cmp(x)) } else { !self.nulls_first });
                        }
                    }
                }
            }
            _ => return None,
        }
        (keep.len() < n).then_some(keep)
    }
}

/// A top-N's cutoff shared by the threads of a morsel pipeline and read by its datastore scan,
/// when the first sort key is a numeric column of the scan: a block whose every row sorts
/// after the tightest cutoff any thread has reached (by the block's min, max and NULL count)
/// is not decoded. Any thread's cutoff bounds the whole answer: that thread alone has as many
/// rows as are kept before it.
pub(super) struct SharedCutoff {
    /// The scan's column, by name (each file finds its own column).
    name: String,
    desc: bool,
    nulls_first: bool,
    bound: std::sync::Mutex<Option<NumBound>>,
}

#[derive(Clone, Copy)]
enum NumBound {
    Int(i64),
    Float(f64),
    /// NULLs first, and enough of them kept: a block without NULLs is passed over.
    Null,
}

impl SharedCutoff {
    pub(super) fn new(name: &str, key: &SortKey) -> SharedCutoff {
        SharedCutoff { name: name.to_string(), desc: key.desc, nulls_first: key.nulls_first, bound: Default::default() }
    }

    /// Takes `c` if it is tighter than the bound held.
    fn publish(&self, c: &Cutoff) {
        let new = match c.bound {
            Bound::Int(x) => NumBound::Int(x),
            Bound::Float(x) if !x.is_nan() => NumBound::Float(x),
            Bound::Null => NumBound::Null,
            _ => return,
        };
        let mut held = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        let tighter = match (*held, new) {
            (None, _) | (Some(_), NumBound::Null) => true,
            (Some(NumBound::Int(a)), NumBound::Int(b)) => {
                if self.desc {
                    b > a
                } else {
                    b < a
                }
            }
            (Some(NumBound::Float(a)), NumBound::Float(b)) => {
                if self.desc {
                    b > a
                } else {
                    b < a
                }
            }
            _ => false,
        };
        if tighter {
            *held = Some(new);
        }
    }

    /// Whether every row of block `b` of file `f` sorts after the bound.
    pub(super) fn skips(&self, f: &crate::datastore::DsFile, b: usize) -> bool {
        use crate::batch::DataType;
        let Some(bound) = *self.bound.lock().unwrap_or_else(|e| e.into_inner()) else { return false };
        let Some(cm) = f.meta.column_index(&self.name).map(|c| &f.meta.columns[c]) else { return false };
        let bm = &cm.blocks[b];
        if let NumBound::Null = bound {
            return bm.null_count == 0;
        }
        if bm.null_count > 0 && self.nulls_first {
            return false; // its NULLs come before every value
        }
        match (cm.data_type, bound) {
            (DataType::Int64 | DataType::Timestamp, NumBound::Int(x)) => {
                bm.min > bm.max || past(self.desc, bm.min, bm.max, x)
            }
            (DataType::Float64, NumBound::Float(x)) => {
                let (lo, hi) = (f64::from_bits(bm.min as u64), f64::from_bits(bm.max as u64));
                // Min and max leave NaN out, and NaN sorts after every number: descending, a
                // block is passed over only when its statistics say it holds none.
                let no_nan =
                    bm.stats.as_ref().is_some_and(|st| st.flags & crate::datastore::file::BlockStats::NAN == 0);
                (!self.desc || no_nan) && (lo > hi || past(self.desc, lo, hi, x))
            }
            _ => false,
        }
    }
}

/// Whether a block of values in `[lo, hi]` is wholly past bound `x`: below it descending, above
/// it ascending (values equal to it may tie in, so they are not past).
fn past<T: PartialOrd>(desc: bool, lo: T, hi: T, x: T) -> bool {
    if desc { hi < x } else { lo > x }
}

/// The best rows a top-N has seen, each with its position in scan order in a last column, so
/// that rows tying on every key come in scan order (as a stable sort puts them) also when
/// several threads' rows are merged ([`super::parallel::top_n`]). Cut back to the best
/// whenever twice as many are held, charged to the thread.
pub(super) struct Kept<'q> {
    keys: &'q [SortKey],
    keep: usize,
    /// The input's columns, then the position.
    schema: Vec<OutCol>,
    held: Vec<Batch>,
    held_rows: usize,
    at: u64,
    base: usize,
    cutoff: Option<Cutoff>,
    shared: Option<&'q SharedCutoff>,
}

impl<'q> Kept<'q> {
    pub(super) fn new(keys: &'q [SortKey], keep: usize, input: &[OutCol]) -> Kept<'q> {
        let mut schema = input.to_vec();
        schema.push(OutCol { name: "?position".into(), ty: SqlType::Int8 });
        Kept {
            keys,
            keep,
            schema,
            held: Vec::new(),
            held_rows: 0,
            at: 0,
            base: guard::live(),
            cutoff: None,
            shared: None,
        }
    }

    /// Publishes each cutoff to `shared` too (see [`SharedCutoff`]).
    pub(super) fn sharing(mut self, shared: Option<&'q SharedCutoff>) -> Kept<'q> {
        self.shared = shared;
        self
    }

    fn cut(&mut self) -> SqlResult<()> {
        let all = concat_checked(std::mem::take(&mut self.held), &self.schema)?;
        let kept = best(&all, self.keys, self.keep)?;
        drop(all);
        self.held_rows = kept.num_rows();
        if self.held_rows == self.keep
            && let Some(first) = self.keys.first()
        {
            self.cutoff = Cutoff::of(&kept, first)?;
            if let (Some(shared), Some(c)) = (self.shared, &self.cutoff) {
                shared.publish(c);
            }
        }
        self.held.push(kept);
        guard::hold(self.base, guard::size_of(&self.held))
    }

    /// The best `keep` rows of all parts' (charged here first), in order, without the
    /// position column.
    pub(super) fn merge(parts: Vec<Kept<'q>>) -> SqlResult<Batch> {
        let Some(first) = parts.first() else { return Err(SqlError::new("XX000", "a top-N without threads")) };
        let (keys, keep, schema) = (first.keys, first.keep, first.schema.clone());
        let held: Vec<Batch> = parts.into_iter().flat_map(|p| p.held).collect();
        guard::charge(guard::size_of(&held))?;
        let all = concat_checked(held, &schema)?;
        let mut sorted = best(&all, keys, keep)?;
        sorted.fields.pop();
        sorted.columns.pop();
        Ok(sorted)
    }
}

impl super::parallel::Sink for Kept<'_> {
    fn at(&mut self, pos: u64) {
        self.at = pos;
    }
    fn feed(&mut self, mut b: Batch) -> SqlResult<()> {
        let n = b.num_rows();
        let first = self.at;
        self.at += n as u64;
        let rows = match (&self.cutoff, self.keys.first()) {
            (Some(cutoff), Some(key)) => cutoff.rows(&eval(&key.expr, &b)?),
            _ => None,
        };
        let positions: Vec<i64> = match &rows {
            Some(rows) if rows.is_empty() => return Ok(()),
            Some(rows) => {
                b = b.take(rows);
                rows.iter().map(|&r| (first + r as u64) as i64).collect()
            }
            None => (first..first + n as u64).map(|p| p as i64).collect(),
        };
        b.columns.push(crate::batch::Column::new(crate::batch::Values::Int64(positions)));
        b.fields.push(crate::batch::Field::new("?position", crate::batch::DataType::Int64));
        guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
        self.held_rows += b.num_rows();
        self.held.push(b);
        if self.held_rows >= (2 * self.keep).max(MIN_CUT) {
            self.cut()?;
        }
        Ok(())
    }
    fn discard(self) {}
}

/// `Limit(limit, offset)` over `Sort(keys)` over `input`, holding at most about twice
/// `limit + offset` rows (or [`MIN_CUT`]) at once.
pub(super) fn top_n(input: &Plan, keys: &[SortKey], limit: u64, offset: u64) -> SqlResult<Vec<Batch>> {
    use super::parallel::Sink;
    let keep = (limit + offset) as usize;
    // Over a datastore scan (under filters and projections), on every core; else here.
    let sorted = match super::parallel::top_n(input, keys, keep)? {
        Some(sorted) => sorted,
        None => {
            let mut kept = Kept::new(keys, keep, &input.schema());
            match pull(input)? {
                Some(mut next) => {
                    while let Some(b) = next()? {
                        kept.feed(b)?;
                    }
                }
                None => {
                    for b in run(input)? {
                        kept.feed(b)?;
                    }
                }
            }
            Kept::merge(vec![kept])?
        }
    };
    let from = (offset as usize).min(sorted.num_rows());
    let idx: Vec<u32> = (from as u32..sorted.num_rows() as u32).collect();
    Ok(vec![sorted.take(&idx)])
}
