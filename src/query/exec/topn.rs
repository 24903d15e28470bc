//! Top-N: `ORDER BY … LIMIT n [OFFSET m]` keeps only the best `n + m` rows seen so far
//! instead of sorting the whole input. Rows arrive a batch at a time; whenever the rows held
//! reach twice what is kept (at least [`MIN_CUT`]), they are sorted and cut back, so the
//! memory held stays proportional to `n + m`, not to the input.

use super::*;
use crate::query::plan::SortKey;

/// Fewest rows collected before a cut (cutting is a sort of what is held).
const MIN_CUT: usize = 65_536;
pub(super) use crate::query::plan::TOP_N_MAX_KEPT as MAX_KEPT;

/// The rows of `batch` sorted by `keys`, the first `keep` of them.
fn best(batch: &Batch, keys: &[SortKey], keep: usize) -> SqlResult<Batch> {
    let cols = keys.iter().map(|k| eval(&k.expr, batch)).collect::<SqlResult<Vec<_>>>()?;
    let order: Vec<ColOrder> =
        keys.iter().map(|k| ColOrder { ty: k.expr.ty(), desc: k.desc, nulls_first: k.nulls_first }).collect();
    let mut idx = sort_rows(&cols, &order, batch.num_rows())?;
    idx.truncate(keep);
    Ok(batch.take(&idx))
}

/// `Limit(limit, offset)` over `Sort(keys)` over `input`, holding at most about twice
/// `limit + offset` rows (or [`MIN_CUT`]) at once.
pub(super) fn top_n(input: &Plan, keys: &[SortKey], limit: u64, offset: u64) -> SqlResult<Vec<Batch>> {
    let keep = (limit + offset) as usize;
    let schema = input.schema();
    let base = guard::live();
    let mut held: Vec<Batch> = Vec::new();
    let mut held_rows = 0usize;
    let cut = |held: &mut Vec<Batch>, held_rows: &mut usize| -> SqlResult<()> {
        let all = concat_checked(std::mem::take(held), &schema)?;
        let kept = best(&all, keys, keep)?;
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
    let sorted = best(&all, keys, keep)?;
    let from = (offset as usize).min(sorted.num_rows());
    let idx: Vec<u32> = (from as u32..sorted.num_rows() as u32).collect();
    Ok(vec![sorted.take(&idx)])
}
