//! Top-N: `ORDER BY … LIMIT n [OFFSET m]` keeps only the best `n + m` rows seen so far
//! instead of sorting the whole input. Rows arrive a batch at a time; whenever the rows held
//! reach twice what is kept (at least [`MIN_CUT`]), they are sorted and cut back, so the
//! memory held stays proportional to `n + m`, not to the input.

use super::*;
use crate::query::plan::SortKey;

/// Fewest rows collected before a cut (cutting is a sort of what is held).
const MIN_CUT: usize = 65_536;
pub(super) use crate::query::plan::TOP_N_MAX_KEPT as MAX_KEPT;

/// The rows of `batch` sorted by `keys` (then, with `position`, by that column ascending),
/// the first `keep` of them.
fn best(batch: &Batch, keys: &[SortKey], position: Option<usize>, keep: usize) -> SqlResult<Batch> {
    let mut cols = keys.iter().map(|k| eval(&k.expr, batch)).collect::<SqlResult<Vec<_>>>()?;
    let mut order: Vec<ColOrder> =
        keys.iter().map(|k| ColOrder { ty: k.expr.ty(), desc: k.desc, nulls_first: k.nulls_first }).collect();
    if let Some(p) = position {
        cols.push(batch.columns[p].clone());
        order.push(ColOrder { ty: SqlType::Int8, desc: false, nulls_first: false });
    }
    let mut idx = sort_rows(&cols, &order, batch.num_rows())?;
    idx.truncate(keep);
    Ok(batch.take(&idx))
}

/// The best rows one thread of a parallel top-N has seen (see [`super::parallel::top_n`]),
/// each with its position in scan order in a last column, so that rows tying on every key
/// are put in scan order when the threads' rows are merged. Held as [`top_n`] holds rows:
/// cut back to the best whenever twice as many are held, charged to the thread.
pub(super) struct Kept<'q> {
    keys: &'q [SortKey],
    keep: usize,
    /// The input's columns, then the position.
    schema: Vec<OutCol>,
    held: Vec<Batch>,
    held_rows: usize,
    at: u64,
    base: usize,
}

impl<'q> Kept<'q> {
    pub(super) fn new(keys: &'q [SortKey], keep: usize, input: &[OutCol]) -> Kept<'q> {
        let mut schema = input.to_vec();
        schema.push(OutCol { name: "?position".into(), ty: SqlType::Int8 });
        Kept { keys, keep, schema, held: Vec::new(), held_rows: 0, at: 0, base: guard::live() }
    }

    fn cut(&mut self) -> SqlResult<()> {
        let all = concat_checked(std::mem::take(&mut self.held), &self.schema)?;
        let kept = best(&all, self.keys, Some(self.schema.len() - 1), self.keep)?;
        self.held_rows = kept.num_rows();
        self.held.push(kept);
        guard::hold(self.base, guard::size_of(&self.held))
    }

    /// The best `keep` rows of all threads' (charged here first), in order, without the
    /// position column.
    pub(super) fn merge(parts: Vec<Kept<'q>>) -> SqlResult<Batch> {
        let Some(first) = parts.first() else { return Err(SqlError::new("XX000", "a top-N without threads")) };
        let (keys, keep, schema) = (first.keys, first.keep, first.schema.clone());
        let held: Vec<Batch> = parts.into_iter().flat_map(|p| p.held).collect();
        guard::charge(guard::size_of(&held))?;
        let all = concat_checked(held, &schema)?;
        let mut sorted = best(&all, keys, Some(schema.len() - 1), keep)?;
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
        b.columns.push(crate::batch::Column::new(crate::batch::Values::Int64(
            (self.at..self.at + n as u64).map(|p| p as i64).collect(),
        )));
        b.fields.push(crate::batch::Field::new("?position", crate::batch::DataType::Int64));
        self.at += n as u64;
        guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
        self.held_rows += n;
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
    let keep = (limit + offset) as usize;
    // Over a datastore scan (under filters and projections), on every core.
    if let Some(sorted) = super::parallel::top_n(input, keys, keep)? {
        let from = (offset as usize).min(sorted.num_rows());
        let idx: Vec<u32> = (from as u32..sorted.num_rows() as u32).collect();
        return Ok(vec![sorted.take(&idx)]);
    }
    let schema = input.schema();
    let base = guard::live();
    let mut held: Vec<Batch> = Vec::new();
    let mut held_rows = 0usize;
    let cut = |held: &mut Vec<Batch>, held_rows: &mut usize| -> SqlResult<()> {
        let all = concat_checked(std::mem::take(held), &schema)?;
        let kept = best(&all, keys, None, keep)?;
        *held_rows = kept.num_rows();
        held.push(kept);
        guard::hold(base, guard::size_of(held))
    };
    let feed = |b: Batch, held: &mut Vec<Batch>, held_rows: &mut usize| -> SqlResult<()> {
        guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
        *held_rows += b.num_rows();
        held.push(b);
        if *held_rows >= (2 * keep).max(MIN_CUT) {
            cut(held, held_rows)?;
        }
        Ok(())
    };
    match pull(input)? {
        Some(mut next) => {
            while let Some(b) = next()? {
                feed(b, &mut held, &mut held_rows)?;
            }
        }
        None => {
            for b in run(input)? {
                feed(b, &mut held, &mut held_rows)?;
            }
        }
    }
    let all = concat_checked(held, &schema)?;
    let sorted = best(&all, keys, None, keep)?;
    let from = (offset as usize).min(sorted.num_rows());
    let idx: Vec<u32> = (from as u32..sorted.num_rows() as u32).collect();
    Ok(vec![sorted.take(&idx)])
}
