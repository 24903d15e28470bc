//! Top-N: `ORDER BY … LIMIT n [OFFSET m]` keeps only the best `n + m` rows seen so far
//! instead of sorting the whole input. Rows arrive a batch at a time; whenever the rows held
//! reach twice what is kept (at least [`MIN_CUT`]), they are sorted and cut back, so the
//! memory held stays proportional to `n + m`, not to the input. After a cut, the first key of
//! the last row kept is a bound ([`Cutoff`]): a row whose first key sorts after it cannot be
//! among the best and is dropped as it arrives, so cuts become rare as the best rows settle.

use super::cutoff::{Cutoff, SharedCutoff};
use super::*;
use crate::query::plan::SortKey;

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

/// The best rows a top-N has seen, each with its position in scan order in a last column, so
/// that rows tying on every key come in scan order (as a stable sort puts them) also when
/// several threads' rows are merged ([`on_morsels`]). Cut back to the best
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
    let sorted = match on_morsels(input, keys, keep)? {
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

/// `ORDER BY keys LIMIT` over `input` on every core, when `input` is a datastore scan under
/// filters and projections: each thread keeps the best rows of the morsels it reads (see
/// [`Kept`]), and the threads' rows are sorted together and cut. Rows that tie
/// on every key come in scan order, as they do on one thread. `None` when `input` is not
/// such a pipeline.
fn on_morsels(input: &Plan, keys: &[SortKey], keep: usize) -> SqlResult<Option<Batch>> {
    let Some((ops, scan)) = super::parallel::chain(input) else { return Ok(None) };
    let schema = input.schema();
    // The first key, when it is a column of the scan: its cutoff passes blocks over.
    let shared = keys.first().and_then(|k| {
        let Expr::Col { idx, .. } = &k.expr else { return None };
        super::parallel::scan_column(&ops, scan, *idx).map(|name| super::cutoff::SharedCutoff::new(&name, k))
    });
    let make = |_| Kept::new(keys, keep, &schema).sharing(shared.as_ref());
    let Some(parts) = super::parallel::with_joins(&ops, |joins| {
        super::parallel::run_morsels(&ops, joins, scan, None, true, shared.as_ref(), &make)
    })?
    else {
        return Ok(None);
    };
    Kept::merge(parts).map(Some)
}
