//! The grouping driver: batches in, one row per group out. Keys that are columns are read
//! in place; one text key read as dictionary codes is looked up once per distinct code; the
//! accumulators lie flat (group × aggregate) and typed kernels feed them where they can.
//! Groups and what aggregates keep are charged to the query's memory as they grow.

use super::*;
/// Group keys (as `append_key_bytes` writes them) to group numbers, hashed with a per-process seed.
type KeyIndex = HashMap<Vec<u8>, usize, foldhash::fast::RandomState>;

/// Groups `input` by `group` and computes `aggs`. Output columns: groups, then aggregates.
/// With no GROUP BY, exactly one row (even over no input).
/// Groups and aggregates the batches `next` yields, one at a time (none is kept).
pub(crate) fn aggregate(
    next: &mut dyn FnMut() -> SqlResult<Option<Batch>>,
    group: &[Expr],
    aggs: &[AggCall],
) -> SqlResult<Batch> {
    aggregate_with(next, group, aggs, None)
}

/// Adds to finished-feeding accumulators what was not fed as rows.
pub(crate) type AddToAccs<'a> = &'a dyn Fn(&mut dyn GroupAccs) -> SqlResult<()>;

/// The groups of an aggregate that has been fed its rows, for adding what was not.
pub(crate) trait GroupAccs {
    /// The accumulators (one per aggregate) of the group whose keys are `key`, made if new;
    /// without GROUP BY, of the one group (`key` empty).
    fn accs_of(&mut self, key: &[Scalar]) -> SqlResult<&mut [Acc]>;
}

/// Groups made after feeding cost what fed ones do: charged every CHARGE_GROUPS.
const CHARGE_GROUPS: usize = 1024;

struct Groups<'a> {
    index: &'a mut KeyIndex,
    keys: &'a mut Vec<Vec<Scalar>>,
    accs: &'a mut Vec<Acc>,
    aggs: &'a [AggCall],
    grouped: bool,
    key_bytes: &'a mut usize,
    charge: &'a dyn Fn(usize, usize) -> SqlResult<()>,
}

impl GroupAccs for Groups<'_> {
    fn accs_of(&mut self, key: &[Scalar]) -> SqlResult<&mut [Acc]> {
        let n = self.aggs.len();
        let g = if self.grouped {
            let mut k = Vec::new();
            for s in key {
                scalar_key_bytes(s, &mut k)?;
            }
            match self.index.get(k.as_slice()) {
                Some(&g) => g,
                None => {
                    let g = self.keys.len();
                    *self.key_bytes += k.len();
                    self.index.insert(k, g);
                    self.keys.push(key.to_vec());
                    self.accs.extend(self.aggs.iter().map(new_acc));
                    if g.is_multiple_of(CHARGE_GROUPS) {
                        (self.charge)(g + CHARGE_GROUPS, *self.key_bytes)?;
                    }
                    g
                }
            }
        } else {
            0
        };
        Ok(&mut self.accs[g * n..(g + 1) * n])
    }
}

/// A key value's bytes as [`crate::table::append_key_bytes`] writes them from a column of
/// its type (text, integers, timestamps, booleans, doubles and NULL).
fn scalar_key_bytes(s: &Scalar, k: &mut Vec<u8>) -> SqlResult<()> {
    match s {
        Scalar::Null => k.push(0),
        Scalar::Bool(b) => k.extend_from_slice(&[1, *b as u8]),
        Scalar::Int(v) | Scalar::Time(v) => {
            k.push(2);
            k.extend_from_slice(&v.to_le_bytes());
        }
        Scalar::Float(v) => {
            k.push(3);
            k.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        Scalar::Text(t) => {
            k.push(4);
            k.extend_from_slice(&(t.len() as u32).to_le_bytes());
            k.extend_from_slice(t.as_bytes());
        }
        Scalar::Interval(_) => return Err(SqlError::new("XX000", "an interval group key added after feeding")),
    }
    Ok(())
}

/// [`aggregate`]; `after` adds what was not fed as rows (whole blocks' statistics) to the
/// accumulators of the groups it names before they are finished.
pub(crate) fn aggregate_with(
    next: &mut dyn FnMut() -> SqlResult<Option<Batch>>,
    group: &[Expr],
    aggs: &[AggCall],
    after: Option<AddToAccs<'_>>,
) -> SqlResult<Batch> {
    let mut index: KeyIndex = KeyIndex::default();
    // Each key's bytes are made here, and copied only for a new group.
    let mut kbuf: Vec<u8> = Vec::new();
    // For each file dictionary met in a coded key column, its codes' groups (u32::MAX: none
    // yet): a key read as codes is looked up once per distinct code, not once per row.
    let mut by_code: Vec<(std::sync::Arc<crate::batch::StrVec>, Vec<u32>)> = Vec::new();
    let mut keys: Vec<Vec<Scalar>> = Vec::new();
    // Group g's accumulator of aggregate a is accs[g * aggs.len() + a].
    let mut accs: Vec<Acc> = Vec::new();
    if group.is_empty() {
        keys.push(Vec::new());
        accs.extend(aggs.iter().map(new_acc));
    }
    let mut row = Vec::new();
    let naggs = aggs.len();
    // What each group costs: its hash table entry (twice, for the table's growth), key vector
    // and accumulators, plus its key's bytes twice (hashed, and as values). Charged every
    // CHARGE_GROUPS new groups, before the table grows much further.
    let base = crate::query::guard::live();
    let per_group = 2 * (std::mem::size_of::<Vec<u8>>() + 16)
        + std::mem::size_of::<Vec<Scalar>>()
        + group.len() * std::mem::size_of::<Scalar>()
        + aggs.len() * std::mem::size_of::<Acc>();
    let mut key_bytes = 0usize;
    let charge = |groups: usize, key_bytes: usize| -> SqlResult<()> {
        crate::query::guard::hold(base, groups.saturating_mul(per_group).saturating_add(2 * key_bytes))
    };
    // A failed or cancelled aggregate frees its groups on another thread: a million of them
    // take a while to free, and the client's answer must not wait for that.
    let fed = (|| -> SqlResult<()> {
        while let Some(b) = next()? {
            let b = &b;
            crate::query::guard::check()?;
            let n = b.num_rows();
            if n == 0 {
                continue;
            }
            // Keys that are columns are read where they are; computed keys are made first.
            let computed;
            let (gbatch, positions): (&Batch, Vec<usize>) = match group
                .iter()
                .map(|g| if let Expr::Col { idx, .. } = g { Some(*idx) } else { None })
                .collect::<Option<Vec<usize>>>()
            {
                Some(at) => (b, at),
                None => {
                    let gcols = group.iter().map(|g| eval(g, b)).collect::<SqlResult<Vec<_>>>()?;
                    computed = Batch {
                        fields: gcols
                            .iter()
                            .enumerate()
                            .map(|(i, c)| crate::batch::Field::new(&format!("g{i}"), c.data_type()))
                            .collect(),
                        columns: gcols,
                    };
                    (&computed, (0..group.len()).collect())
                }
            };
            let kcols: Vec<&Column> = positions.iter().map(|&p| &gbatch.columns[p]).collect();
            let mut gids = Vec::with_capacity(n);
            let new_group = |keys: &mut Vec<Vec<Scalar>>, accs: &mut Vec<Acc>, r: usize| {
                keys.push(kcols.iter().zip(group).map(|(c, g)| Scalar::from_column(c, g.ty(), r)).collect());
                accs.extend(aggs.iter().map(new_acc));
                keys.len() - 1
            };
            // Row r's group, made (and charged, every CHARGE_GROUPS groups) if it is new.
            let group_id = |r: usize,
                            index: &mut KeyIndex,
                            kbuf: &mut Vec<u8>,
                            keys: &mut Vec<Vec<Scalar>>,
                            accs: &mut Vec<Acc>,
                            key_bytes: &mut usize|
             -> SqlResult<usize> {
                kbuf.clear();
                crate::table::append_key_bytes(gbatch, &positions, r, kbuf);
                if let Some(&id) = index.get(kbuf.as_slice()) {
                    return Ok(id);
                }
                let next = keys.len();
                index.insert(kbuf.clone(), next);
                *key_bytes += kbuf.len();
                if next.is_multiple_of(CHARGE_GROUPS) {
                    charge(next + CHARGE_GROUPS, *key_bytes)?;
                }
                Ok(new_group(keys, accs, r))
            };
            // Without GROUP BY, each aggregate takes the batch whole (typed kernels over the
            // column, no per-row group).
            if group.is_empty() {
                for (ai, call) in aggs.iter().enumerate() {
                    let owned = call.args.iter().map(|a| eval_ref(a, b)).collect::<SqlResult<Vec<_>>>()?;
                    let cols: Vec<&Column> = owned.iter().map(|c| &**c).collect();
                    // DISTINCT over one text or integer column: each value once per batch
                    // (files hold series in runs; coded text is told apart by its codes).
                    if call.distinct
                        && let [c] = cols.as_slice()
                        && let Some(firsts) = first_of_each_value(c)
                    {
                        let ty = call.args[0].ty();
                        for &r in &firsts {
                            row.clear();
                            row.push(Scalar::from_column(c, ty, r));
                            feed(&mut accs[ai], call, &row);
                        }
                        key_bytes += 48 * firsts.len()
                            + match &c.values {
                                Values::Text(v) => firsts.iter().map(|&r| v.get(r).len()).sum(),
                                _ => 0,
                            };
                        charge(keys.len(), key_bytes)?;
                        continue;
                    }
                    if call.distinct || !feed_whole(&mut accs[ai], call, &cols, n) {
                        let tys: Vec<SqlType> = call.args.iter().map(|a| a.ty()).collect();
                        for r in 0..n {
                            if r % 16_384 == 16_383 {
                                crate::query::guard::check()?;
                            }
                            row.clear();
                            for (c, t) in cols.iter().zip(&tys) {
                                row.push(Scalar::from_column(c, *t, r));
                            }
                            feed(&mut accs[ai], call, &row);
                        }
                    }
                    if call.distinct || matches!(accs[ai], Acc::Strings(..) | Acc::Values(..) | Acc::Floats(..)) {
                        key_bytes += kept_bytes(&cols, n);
                        charge(keys.len(), key_bytes)?;
                    }
                }
                continue;
            }
            match kcols.as_slice() {
                [] => gids.resize(n, 0),
                // One text key read as dictionary codes (from a file): each distinct code is
                // looked up once, then its group is an array index.
                [c] if let Values::Text(v) = &c.values
                    && let Some((dict, codes)) = v.codes() =>
                {
                    let slot = match by_code.iter().position(|(d, _)| std::sync::Arc::ptr_eq(d, dict)) {
                        Some(i) => i,
                        None => {
                            key_bytes += 4 * dict.len();
                            charge(keys.len(), key_bytes)?;
                            by_code.push((dict.clone(), vec![u32::MAX; dict.len()]));
                            by_code.len() - 1
                        }
                    };
                    for (r, &code) in codes.iter().enumerate() {
                        if r % 16_384 == 16_383 {
                            crate::query::guard::check()?;
                        }
                        if !c.is_valid(r) {
                            gids.push(group_id(r, &mut index, &mut kbuf, &mut keys, &mut accs, &mut key_bytes)?);
                            continue;
                        }
                        let known = by_code[slot].1[code as usize];
                        if known != u32::MAX {
                            gids.push(known as usize);
                            continue;
                        }
                        let id = group_id(r, &mut index, &mut kbuf, &mut keys, &mut accs, &mut key_bytes)?;
                        by_code[slot].1[code as usize] = u32::try_from(id).unwrap_or(u32::MAX);
                        gids.push(id);
                    }
                }
                // One integer or time key without NULLs (a time bucket): runs of equal values
                // are found on the slice, and each run's group looked up once.
                [c] if let Values::Int64(v) | Values::Timestamp(v) = &c.values
                    && c.validity.is_none() =>
                {
                    let mut r = 0;
                    while r < n {
                        let e = r + v[r..].iter().position(|&x| x != v[r]).unwrap_or(n - r);
                        let id = group_id(r, &mut index, &mut kbuf, &mut keys, &mut accs, &mut key_bytes)?;
                        gids.extend(std::iter::repeat_n(id, e - r));
                        r = e;
                    }
                }
                // One text or integer key: hash the value itself, no per-row allocation, and reuse
                // the previous group for runs of equal keys (files are grouped by series).
                [c] if matches!(c.values, Values::Text(_) | Values::Int64(_) | Values::Timestamp(_)) => {
                    let mut last: Option<(usize, usize)> = None; // (row, group)
                    for r in 0..n {
                        if r % 16_384 == 16_383 {
                            crate::query::guard::check()?;
                        }
                        if let Some((lr, lg)) = last
                            && same_value(c, lr, r)
                        {
                            gids.push(lg);
                            last = Some((r, lg));
                            continue;
                        }
                        let id = group_id(r, &mut index, &mut kbuf, &mut keys, &mut accs, &mut key_bytes)?;
                        gids.push(id);
                        last = Some((r, id));
                    }
                }
                _ => {
                    for r in 0..n {
                        if r % 16_384 == 16_383 {
                            crate::query::guard::check()?;
                        }
                        gids.push(group_id(r, &mut index, &mut kbuf, &mut keys, &mut accs, &mut key_bytes)?);
                    }
                }
            }
            // Rows of one group come in runs (files hold each series' rows together, in time
            // order): when there are few, each run is fed as a slice.
            let runs = group_runs(&gids, n / 8);
            for (ai, call) in aggs.iter().enumerate() {
                let owned = call.args.iter().map(|a| eval_ref(a, b)).collect::<SqlResult<Vec<_>>>()?;
                let cols: Vec<&Column> = owned.iter().map(|c| &**c).collect();
                let tys: Vec<SqlType> = call.args.iter().map(|a| a.ty()).collect();
                // Typed kernels for the common numeric aggregates over plain columns: by runs,
                // else row by row; the generic path otherwise.
                let fed = !call.distinct
                    && (runs.as_ref().is_some_and(|runs| feed_runs(&mut accs, naggs, ai, call, &cols, runs))
                        || fast_feed(&mut accs, naggs, ai, call, &cols, &gids));
                for r in (0..n).filter(|_| !fed) {
                    if r % 16_384 == 16_383 {
                        crate::query::guard::check()?;
                    }
                    row.clear();
                    for (c, t) in cols.iter().zip(&tys) {
                        row.push(Scalar::from_column(c, *t, r));
                    }
                    feed(&mut accs[gids[r] * naggs + ai], call, &row);
                }
                // Aggregates that keep their inputs (string_agg, percentiles, DISTINCT) hold what
                // they were fed: charged with the groups, before the next batch grows them.
                if call.distinct
                    || matches!(accs[gids[0] * naggs + ai], Acc::Strings(..) | Acc::Values(..) | Acc::Floats(..))
                {
                    key_bytes += kept_bytes(&cols, n);
                    charge(keys.len(), key_bytes)?;
                }
            }
        }
        if let Some(add) = after {
            add(&mut Groups {
                index: &mut index,
                keys: &mut keys,
                accs: &mut accs,
                aggs,
                grouped: !group.is_empty(),
                key_bytes: &mut key_bytes,
                charge: &charge,
            })?;
        }
        Ok(())
    })();
    if let Err(e) = fed {
        crate::query::guard::free_elsewhere((index, keys, accs, by_code));
        return Err(e);
    }
    let ngroups = keys.len();
    let mut columns = Vec::with_capacity(group.len() + aggs.len());
    // Building the output of a million groups takes a while: it answers cancel too.
    let tick = |g: usize| if g % 16_384 == 16_383 { crate::query::guard::check() } else { Ok(()) };
    for (gi, g) in group.iter().enumerate() {
        let mut vals: Vec<Scalar> = Vec::with_capacity(ngroups);
        for (i, k) in keys.iter().enumerate() {
            tick(i)?;
            vals.push(k[gi].clone());
        }
        columns.push(scalars_to_column(&vals, g.ty())?);
    }
    for (ai, call) in aggs.iter().enumerate() {
        let mut vals = Vec::with_capacity(ngroups);
        for g in 0..ngroups {
            tick(g)?;
            vals.push(finish(&accs[g * naggs + ai], call)?);
        }
        columns.push(scalars_to_column(&vals, call.ty)?);
    }
    let fields =
        columns.iter().enumerate().map(|(i, c)| crate::batch::Field::new(&format!("c{i}"), c.data_type())).collect();
    Ok(Batch { fields, columns })
}

/// The runs of equal groups in `gids` as (first row, end, group), or `None` when there are
/// more than `max`.
fn group_runs(gids: &[usize], max: usize) -> Option<Vec<(usize, usize, usize)>> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut start = 0;
    while start < gids.len() {
        let g = gids[start];
        let end = start + gids[start..].iter().position(|&x| x != g).unwrap_or(gids.len() - start);
        if runs.len() == max {
            return None;
        }
        runs.push((start, end, g));
        start = end;
    }
    Some(runs)
}

/// Feeds each run of rows of one group to that group's accumulator of aggregate `ai` with a
/// typed kernel; false, having fed nothing, when there is none (every group's accumulator is
/// of one kind, so the first run decides for all).
fn feed_runs(
    accs: &mut [Acc],
    naggs: usize,
    ai: usize,
    call: &AggCall,
    cols: &[&Column],
    runs: &[(usize, usize, usize)],
) -> bool {
    for (i, &(start, end, g)) in runs.iter().enumerate() {
        if !feed_rows(&mut accs[g * naggs + ai], call, cols, start..end) {
            debug_assert_eq!(i, 0, "accumulators of one aggregate are of one kind");
            return false;
        }
    }
    true
}

/// The first row of each distinct non-NULL value of `c`, for text and integer columns
/// (`None` for other types: floats have values equal but told apart by bits, such as -0).
fn first_of_each_value(c: &Column) -> Option<Vec<usize>> {
    use std::collections::HashSet;
    let mut out = Vec::new();
    let n = c.len();
    match &c.values {
        Values::Text(v) => match v.codes() {
            Some((dict, codes)) if dict.len() <= 4 * n + 1024 => {
                let mut seen = vec![false; dict.len()];
                for (r, &code) in codes.iter().enumerate() {
                    if c.is_valid(r) && !std::mem::replace(&mut seen[code as usize], true) {
                        out.push(r);
                    }
                }
            }
            _ => {
                let mut seen: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
                for r in 0..n {
                    if c.is_valid(r) && seen.insert(v.get(r)) {
                        out.push(r);
                    }
                }
            }
        },
        Values::Int64(v) | Values::Timestamp(v) => {
            let mut seen: HashSet<i64, foldhash::fast::RandomState> = HashSet::default();
            for (r, x) in v.iter().enumerate() {
                if c.is_valid(r) && seen.insert(*x) {
                    out.push(r);
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// What an aggregate that keeps its inputs (string_agg, percentiles, DISTINCT) holds after
/// being fed `n` rows of `cols`: their text and a value slot per row.
fn kept_bytes(cols: &[&Column], n: usize) -> usize {
    let text: usize = cols
        .iter()
        .map(|c| match &c.values {
            Values::Text(v) => v.data_len(),
            _ => 0,
        })
        .sum();
    text + 48 * n
}
