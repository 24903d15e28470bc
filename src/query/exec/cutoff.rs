//! A top-N's cutoff: after a cut, the first key of the last row kept bounds the rows that can
//! still be among the best ([`Cutoff`]); shared by a morsel pipeline's threads, it lets the
//! datastore scan pass over blocks whose statistics put every row after it ([`SharedCutoff`]).

use super::*;
use crate::query::plan::SortKey;
use std::cmp::Ordering;

/// The first sort key's value in the last row kept at a cut, when every row to keep is held:
/// a row whose first key sorts strictly after it is not among the best.
pub(super) struct Cutoff {
    bound: Bound,
    desc: bool,
    nulls_first: bool,
}

pub(super) enum Bound {
    Int(i64),
    Float(f64),
    Text(String),
    /// The last row kept has a NULL key and NULLs come first: every value sorts after it.
    Null,
}

impl Cutoff {
    /// The cutoff of `kept`, the best rows in order (`None` when the last one's first key is
    /// a NULL sorted last, or of a type compared otherwise, such as intervals).
    pub(super) fn of(kept: &Batch, key: &SortKey) -> SqlResult<Option<Cutoff>> {
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
    pub(super) fn rows(&self, c: &Column) -> Option<Vec<u32>> {
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
    pub(super) fn publish(&self, c: &Cutoff) {
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
        let Some(c) = f.meta.column_index(&self.name) else { return false };
        let (cm, bm) = (&f.meta.columns[c], f.block_meta(c, b));
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
