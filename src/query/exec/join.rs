//! Hash joins: the right side indexed by key in chained form, the left side probed a batch at a time, residual conditions applied to bounded runs of candidates.

use super::*;
use crate::batch::{Batch, Column, Field, Values};
use crate::query::error::{SqlError, SqlResult};
use crate::query::expr::{Expr, eval};
use crate::query::guard;
use crate::query::plan::{JoinKind, OutCol, Plan};
use crate::table::append_key_bytes;

pub(super) fn key_batch(cols: Vec<Column>) -> Batch {
    Batch {
        fields: cols.iter().enumerate().map(|(i, c)| Field::new(&format!("k{i}"), c.data_type())).collect(),
        columns: cols,
    }
}

pub(super) fn hash_join(
    left: &Plan,
    right: &Plan,
    kind: JoinKind,
    left_keys: &[Expr],
    right_keys: &[Expr],
    residual: Option<&Expr>,
    schema: &[OutCol],
) -> SqlResult<Vec<Batch>> {
    let lbatches = run(left)?;
    let (r, rk) = right_side(right, right_keys)?;
    let joined = probe_join(&lbatches, &r, &rk, left, kind, left_keys, residual, schema);
    if joined.is_err() {
        // A cancelled join answers at once; its inputs are freed on another thread.
        let rows = r.num_rows();
        drop_large((lbatches, r, rk), rows);
    }
    joined
}

/// The right side of a join as one batch, and its keys as another.
pub(super) fn right_side(right: &Plan, right_keys: &[Expr]) -> SqlResult<(Batch, Batch)> {
    // The right side and its keys, a batch at a time, then each as one batch.
    let mut rbatches = run(right)?;
    let rs = right.schema();
    if rbatches.is_empty() {
        rbatches.push(concat(Vec::new(), &rs));
    }
    let mut rkeys = Vec::with_capacity(rbatches.len());
    for b in &rbatches {
        guard::check()?;
        rkeys.push(key_batch(right_keys.iter().map(|e| eval(e, b)).collect::<SqlResult<_>>()?));
    }
    let rk = concat_checked(rkeys, &[])?;
    let r = concat_checked(rbatches, &rs)?;
    Ok((r, rk))
}

/// A join's matching row pairs (a left row, and a right row or none), with the room charged
/// for them.
#[derive(Default)]
pub(super) struct Pairs {
    li: Vec<Option<u32>>,
    ri: Vec<Option<u32>>,
    /// Pairs charged so far; room is reserved (and charged) in steps.
    reserved: usize,
}

impl Pairs {
    /// Makes room for `more` pairs, charging the new total with `charge` first.
    fn grow(&mut self, more: usize, charge: impl Fn(usize) -> SqlResult<()>) -> SqlResult<()> {
        let need = self.li.len() + more;
        if need > self.reserved {
            let step = need.max(self.reserved + self.reserved / 2).max(4096);
            charge(step)?;
            self.li.reserve_exact(step - self.li.len());
            self.ri.reserve_exact(step - self.ri.len());
            self.reserved = step;
        }
        Ok(())
    }

    fn push(&mut self, l: Option<u32>, r: Option<u32>) {
        self.li.push(l);
        self.ri.push(r);
    }
}

/// The join of `lbatches` with the right side `r`, whose join keys are `rk`.
#[allow(clippy::too_many_arguments)]
pub(super) fn probe_join(
    lbatches: &[Batch],
    r: &Batch,
    rk: &Batch,
    left: &Plan,
    kind: JoinKind,
    left_keys: &[Expr],
    residual: Option<&Expr>,
    schema: &[OutCol],
) -> SqlResult<Vec<Batch>> {
    let bytes = KeyBytes::of(rk, r.num_rows())?;
    let index = Index::new(r, rk, bytes.as_ref())?;
    let base = guard::live();
    // Right rows matched so far (RIGHT and FULL joins).
    let mut right_matched = matches!(kind, JoinKind::Right | JoinKind::Full).then(|| vec![false; r.num_rows()]);
    let mut out = Vec::with_capacity(lbatches.len());
    let mut held = 0usize;
    let probe = Probe { left_keys, kind, residual, schema };
    // One output batch per left batch: the left side is never copied whole.
    for l in lbatches {
        for b in index.probe(l, &probe, right_matched.as_deref_mut(), base, held)? {
            held += guard::size_of(std::slice::from_ref(&b));
            guard::hold(base, held)?;
            out.push(b);
        }
    }
    if let Some(right_matched) = right_matched {
        let ri: Vec<Option<u32>> =
            right_matched.iter().enumerate().filter(|(_, m)| !**m).map(|(j, _)| Some(j as u32)).collect();
        let li = vec![None; ri.len()];
        let ls = left.schema();
        // NULL left columns of the same physical types as the other output batches.
        let empty_left: Vec<Column> = ls
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let t = lbatches
                    .first()
                    .map(|b| b.columns[k].data_type())
                    .unwrap_or_else(|| c.ty.physical().unwrap_or(crate::batch::DataType::Text));
                Column::nulls(t, 0)
            })
            .collect();
        let mut columns: Vec<Column> = empty_left.iter().map(|c| take_opt(c, &li)).collect();
        columns.extend(r.columns.iter().map(|c| take_opt(c, &ri)));
        out.push(make_batch(schema, columns));
    }
    Ok(out)
}

const NONE: u32 = u32::MAX;

/// The right side's key bytes, row after row (a row with a NULL key has none), when its key
/// is not one text or integer column; the index's map borrows slices of them.
pub(super) struct KeyBytes {
    arena: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyBytes {
    /// `rk`: the keys of the right side's `n` rows (a batch of no columns for a join without
    /// keys, a cross join: every row's key is then empty).
    pub(super) fn of(rk: &Batch, n: usize) -> SqlResult<Option<KeyBytes>> {
        if let [rc] = rk.columns.as_slice()
            && matches!(rc.values, Values::Text(_) | Values::Int64(_) | Values::Timestamp(_))
        {
            return Ok(None);
        }
        let all: Vec<usize> = (0..rk.columns.len()).collect();
        let (mut arena, mut ends) = (Vec::new(), Vec::with_capacity(n));
        for j in 0..n {
            if j % 8192 == 0 {
                guard::check()?;
            }
            if !has_null(rk, j) {
                append_key_bytes(rk, &all, j, &mut arena);
            }
            ends.push(arena.len());
        }
        guard::charge(arena.len())?;
        Ok(Some(KeyBytes { arena, ends }))
    }
}

fn has_null(b: &Batch, row: usize) -> bool {
    b.columns.iter().any(|c| !c.is_valid(row))
}

/// The right side's rows by key, chained: `heads` maps a key to its first row and `next[j]` is
/// the next row with row j's key (NONE ends the chain). A handful of allocations whatever the
/// number of keys: building allocates nothing per row, and dropping is immediate, so a
/// cancelled or failed join answers without first freeing a million lists. Keys are the
/// column's own values when there is one text or integer key, else the rows' key bytes
/// ([`KeyBytes`]). Built once, then probed a left batch at a time (on several threads in a
/// morsel pipeline: probing only reads it).
pub(super) struct Index<'a> {
    r: &'a Batch,
    heads: Heads<'a>,
    next: Vec<u32>,
}

enum Heads<'a> {
    Text(HashMap<&'a str, u32>),
    Int(HashMap<i64, u32>),
    Bytes(HashMap<&'a [u8], u32>),
}

/// The index's maps hash with foldhash: keys come from the query's own data, and a seeded
/// fast hash is several times SipHash's speed on short keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What a probe makes of a left batch: the join's keys and kind, the residual condition and
/// the output's columns.
pub(super) struct Probe<'p> {
    pub left_keys: &'p [Expr],
    pub kind: JoinKind,
    pub residual: Option<&'p Expr>,
    pub schema: &'p [OutCol],
}

impl<'a> Index<'a> {
    pub(super) fn new(r: &'a Batch, rk: &'a Batch, bytes: Option<&'a KeyBytes>) -> SqlResult<Index<'a>> {
        let n = r.num_rows();
        if n >= NONE as usize {
            return Err(SqlError::new("54000", "the inner side of a join has too many rows"));
        }
        // The map (sized for up to a million keys at once: growing one that large takes a
        // while without answering cancel) and the chain, and the key bytes.
        guard::charge(n.saturating_mul(40) + guard::size_of(std::slice::from_ref(rk)))?;
        let mut next = vec![NONE; n];
        // Filled backwards, so every chain lists its rows in ascending order.
        fn link<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, next: &mut [u32], k: K, j: usize) {
            let head = m.entry(k).or_insert(NONE);
            next[j] = *head;
            *head = j as u32;
        }
        let heads = match (rk.columns.as_slice(), bytes) {
            (_, Some(KeyBytes { arena, ends })) => {
                let mut m: HashMap<&[u8], u32> = HashMap::with_capacity_and_hasher(n.min(1 << 20), Default::default());
                for j in (0..n).rev() {
                    if j % 8192 == 0 {
                        guard::check()?;
                    }
                    let begin = if j == 0 { 0 } else { ends[j - 1] };
                    if !has_null(rk, j) {
                        link(&mut m, &mut next, &arena[begin..ends[j]], j);
                    }
                }
                Heads::Bytes(m)
            }
            ([rc], None) => match &rc.values {
                Values::Text(rv) => {
                    let mut m: HashMap<&str, u32> =
                        HashMap::with_capacity_and_hasher(n.min(1 << 20), Default::default());
                    for j in (0..n).rev() {
                        if j % 8192 == 0 {
                            guard::check()?;
                        }
                        if rc.is_valid(j) {
                            link(&mut m, &mut next, rv.get(j), j);
                        }
                    }
                    Heads::Text(m)
                }
                Values::Int64(rv) | Values::Timestamp(rv) => {
                    let mut m: HashMap<i64, u32> =
                        HashMap::with_capacity_and_hasher(n.min(1 << 20), Default::default());
                    for j in (0..n).rev() {
                        if j % 8192 == 0 {
                            guard::check()?;
                        }
                        if rc.is_valid(j) {
                            link(&mut m, &mut next, rv[j], j);
                        }
                    }
                    Heads::Int(m)
                }
                _ => return Err(SqlError::new("XX000", "a join key without its key bytes")),
            },
            _ => return Err(SqlError::new("XX000", "a join key without its key bytes")),
        };
        Ok(Index { r, heads, next })
    }

    /// The join of the left batch `l`: its pairs with right rows, and (LEFT and FULL) its rows
    /// that matched none; right rows matched are marked in `right_matched` (RIGHT and FULL).
    /// The pairs are charged as they grow, above `held` bytes held since `base`.
    pub(super) fn probe(
        &self,
        l: &Batch,
        p: &Probe<'_>,
        right_matched: Option<&mut [bool]>,
        base: usize,
        held: usize,
    ) -> SqlResult<Vec<Batch>> {
        let (r, next) = (self.r, &self.next);
        let all: Vec<usize> = (0..p.left_keys.len()).collect();
        let n = r.num_rows();
        let row_bytes = guard::size_of(std::slice::from_ref(l)) / l.num_rows().max(1)
            + guard::size_of(std::slice::from_ref(r)) / n.max(1)
            + 8;
        // A pair of row numbers, and the output row it becomes: charged before the pairs grow.
        let pair_bytes = 2 * std::mem::size_of::<Option<u32>>() + row_bytes;
        // Candidate pairs go through the residual condition this many at a time, so its work
        // and memory are bounded and a cancel is seen between runs.
        const CHUNK: usize = 65_536;
        let mut key_buf = Vec::new();
        let mut out = Vec::new();
        guard::check()?;
        let lk = key_batch(p.left_keys.iter().map(|e| eval(e, l)).collect::<SqlResult<_>>()?);
        let build = |li: &[Option<u32>], ri: &[Option<u32>]| -> Batch {
            let mut columns: Vec<Column> = l.columns.iter().map(|c| take_opt(c, li)).collect();
            columns.extend(r.columns.iter().map(|c| take_opt(c, ri)));
            make_batch(p.schema, columns)
        };
        // Pairs that passed, and candidates waiting for the residual (cl, cr).
        let mut pairs = Pairs::default();
        let (mut cl, mut cr): (Vec<Option<u32>>, Vec<Option<u32>>) = (Vec::new(), Vec::new());
        let charge = |pairs: usize| guard::hold(base, held + pairs.saturating_mul(pair_bytes));
        // Runs the candidates through the residual condition, keeping those it holds for.
        let sift = |cl: &mut Vec<Option<u32>>, cr: &mut Vec<Option<u32>>, pairs: &mut Pairs| -> SqlResult<()> {
            let Some(pred) = p.residual else { return Ok(()) };
            guard::check()?;
            let cand = build(cl, cr);
            let c = eval(pred, &cand)?;
            let Values::Bool(v) = &c.values else {
                return Err(SqlError::mismatch("argument of JOIN/ON must be type boolean"));
            };
            let keep = (0..cand.num_rows()).filter(|&k| c.is_valid(k) && v[k]).count();
            pairs.grow(keep, charge)?;
            for k in (0..cand.num_rows()).filter(|&k| c.is_valid(k) && v[k]) {
                pairs.push(cl[k], cr[k]);
            }
            cl.clear();
            cr.clear();
            Ok(())
        };
        let mut last: Option<(usize, u32)> = None;
        let mut pushed = 0usize;
        // A coded text key (a datastore's dictionary column): each dictionary entry looked
        // up once, then each row's first match by its code.
        let by_code: Option<(Vec<u32>, &[u32])> = match (&self.heads, lk.columns.first().map(|c| &c.values)) {
            (Heads::Text(m), Some(Values::Text(lv))) => match lv.codes() {
                Some((dict, codes)) if dict.len() < l.num_rows() => {
                    Some((dict.iter().map(|d| m.get(d).copied().unwrap_or(NONE)).collect(), codes))
                }
                _ => None,
            },
            _ => None,
        };
        for i in 0..l.num_rows() {
            if i % 4096 == 4095 {
                guard::check()?;
            }
            if has_null(&lk, i) {
                continue;
            }
            let first = match (&self.heads, lk.columns.first().map(|c| &c.values)) {
                (Heads::Text(_), _) if let Some((firsts, codes)) = &by_code => firsts[codes[i] as usize],
                // Runs of equal keys (files are grouped by series) reuse the previous lookup.
                (Heads::Text(m), Some(Values::Text(lv))) => match last {
                    Some((q, h)) if lv.get(q) == lv.get(i) => h,
                    _ => m.get(lv.get(i)).copied().unwrap_or(NONE),
                },
                (Heads::Int(m), Some(Values::Int64(lv) | Values::Timestamp(lv))) => match last {
                    Some((q, h)) if lv[q] == lv[i] => h,
                    _ => m.get(&lv[i]).copied().unwrap_or(NONE),
                },
                (Heads::Bytes(m), _) => {
                    key_buf.clear();
                    append_key_bytes(&lk, &all, i, &mut key_buf);
                    m.get(key_buf.as_slice()).copied().unwrap_or(NONE)
                }
                _ => NONE,
            };
            last = Some((i, first));
            let mut j = first;
            while j != NONE {
                if p.residual.is_some() {
                    cl.push(Some(i as u32));
                    cr.push(Some(j));
                    if cl.len() >= CHUNK {
                        sift(&mut cl, &mut cr, &mut pairs)?;
                    }
                } else {
                    pairs.grow(1, charge)?;
                    pairs.push(Some(i as u32), Some(j));
                    pushed += 1;
                    if pushed.is_multiple_of(CHUNK) {
                        guard::check()?;
                    }
                }
                j = next[j as usize];
            }
        }
        if !cl.is_empty() {
            sift(&mut cl, &mut cr, &mut pairs)?;
        }
        drop((cl, cr));
        let Pairs { mut li, mut ri, reserved } = pairs;
        if let Some(right_matched) = right_matched {
            ri.iter().flatten().for_each(|&j| right_matched[j as usize] = true);
        }
        if matches!(p.kind, JoinKind::Left | JoinKind::Full) {
            let mut matched = vec![false; l.num_rows()];
            li.iter().flatten().for_each(|&i| matched[i as usize] = true);
            let unmatched = matched.iter().filter(|m| !**m).count();
            if li.len() + unmatched > reserved {
                charge(li.len() + unmatched)?;
            }
            for (i, m) in matched.iter().enumerate() {
                if !m {
                    li.push(Some(i as u32));
                    ri.push(None);
                }
            }
        }
        // In chunks, so a large output answers cancel between them.
        let mut held = held;
        for at in (0..li.len().max(1)).step_by(CHUNK) {
            guard::check()?;
            let end = (at + CHUNK).min(li.len());
            let b = build(&li[at..end], &ri[at..end]);
            held += guard::size_of(std::slice::from_ref(&b));
            guard::hold(base, held)?;
            out.push(b);
        }
        Ok(out)
    }
}
