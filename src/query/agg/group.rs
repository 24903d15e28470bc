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
    /// Groups' first input positions, when kept: groups made here come after every row.
    first: Option<&'a mut Vec<u64>>,
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
                    if let Some(first) = self.first.as_deref_mut() {
                        first.push(u64::MAX);
                    }
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
    let mut g = Grouper::new(group, aggs);
    let fed = (|| -> SqlResult<()> {
        while let Some(b) = next()? {
            g.feed(&b)?;
        }
        if let Some(add) = after {
            g.add(add)?;
        }
        Ok(())
    })();
    match fed {
        Ok(()) => g.finish(),
        Err(e) => {
            g.discard();
            Err(e)
        }
    }
}

/// One hash aggregation's groups and accumulators while it is fed batches ([`Grouper::feed`]);
/// several, each fed part of the input on its own thread, are merged into one
/// ([`Grouper::merge`]) before it is finished. What it holds is charged to the memory of the
/// thread feeding it as it grows.
pub(crate) struct Grouper<'q> {
    group: &'q [Expr],
    aggs: &'q [AggCall],
    index: KeyIndex,
    /// Each key's bytes are made here, and copied only for a new group.
    kbuf: Vec<u8>,
    /// For each file dictionary met in a coded key column, its codes' groups (u32::MAX: none
    /// yet): a key read as codes is looked up once per distinct code, not once per row.
    by_code: Vec<(std::sync::Arc<crate::batch::StrVec>, Vec<u32>)>,
    keys: Vec<Vec<Scalar>>,
    /// Group g's accumulator of aggregate a is accs[g * aggs.len() + a].
    accs: Vec<Acc>,
    row: Vec<Scalar>,
    /// The thread's memory held before the grouper, and what one group costs: its hash table
    /// entry (twice, for the table's growth), key vector and accumulators (and its first
    /// position, when kept), plus its key's bytes twice (hashed, and as values).
    base: usize,
    per_group: usize,
    /// Key bytes, and what aggregates that keep their inputs hold.
    key_bytes: usize,
    /// When batches are fed out of the input's order (parts on several threads): the input
    /// position of each group's first row, so that groups come out in the order one thread
    /// reading the input in order would have made them.
    first: Option<Vec<u64>>,
    /// The input position of the next batch's first row.
    at: u64,
}

impl<'q> Grouper<'q> {
    pub(crate) fn new(group: &'q [Expr], aggs: &'q [AggCall]) -> Self {
        let mut g = Grouper {
            group,
            aggs,
            index: KeyIndex::default(),
            kbuf: Vec::new(),
            by_code: Vec::new(),
            keys: Vec::new(),
            accs: Vec::new(),
            row: Vec::new(),
            base: crate::query::guard::live(),
            per_group: 2 * (std::mem::size_of::<Vec<u8>>() + 16)
                + std::mem::size_of::<Vec<Scalar>>()
                + group.len() * std::mem::size_of::<Scalar>()
                + aggs.len() * std::mem::size_of::<Acc>(),
            key_bytes: 0,
            first: None,
            at: 0,
        };
        if group.is_empty() {
            g.keys.push(Vec::new());
            g.accs.extend(aggs.iter().map(new_acc));
        }
        g
    }

    /// Keeps each group's first input position (see [`Grouper::at`]); for groupers fed parts
    /// of the input out of order, before anything is fed.
    pub(crate) fn keep_order(&mut self) {
        self.per_group += std::mem::size_of::<u64>();
        self.first = Some(vec![0; self.keys.len()]);
    }

    /// The input position of the next batch fed's first row (the rows after it follow).
    pub(crate) fn at(&mut self, at: u64) {
        self.at = at;
    }

    /// Charges what the grouper holds to this thread's memory, on top of what the thread
    /// holds now (a grouper fed on another thread, taken over by this one).
    pub(crate) fn adopt(&mut self) -> SqlResult<()> {
        self.base = crate::query::guard::live();
        self.charge(self.keys.len())
    }

    /// Charges this thread's memory for `groups` groups and the key bytes.
    fn charge(&self, groups: usize) -> SqlResult<()> {
        crate::query::guard::hold(self.base, groups.saturating_mul(self.per_group).saturating_add(2 * self.key_bytes))
    }

    /// Row r's group, made (and charged, every CHARGE_GROUPS groups) if it is new; the key
    /// is columns `positions` of `gbatch`.
    fn group_id(&mut self, gbatch: &Batch, positions: &[usize], r: usize) -> SqlResult<usize> {
        self.kbuf.clear();
        crate::table::append_key_bytes(gbatch, positions, r, &mut self.kbuf);
        if let Some(&id) = self.index.get(self.kbuf.as_slice()) {
            return Ok(id);
        }
        let next = self.keys.len();
        self.key_bytes += self.kbuf.len();
        if next.is_multiple_of(CHARGE_GROUPS) {
            self.charge(next + CHARGE_GROUPS)?;
        }
        self.index.insert(self.kbuf.clone(), next);
        self.keys.push(
            positions
                .iter()
                .zip(self.group)
                .map(|(&p, g)| Scalar::from_column(&gbatch.columns[p], g.ty(), r))
                .collect(),
        );
        self.accs.extend(self.aggs.iter().map(new_acc));
        if let Some(first) = &mut self.first {
            first.push(self.at + r as u64);
        }
        Ok(next)
    }

    /// Groups and aggregates the rows of `b`.
    pub(crate) fn feed(&mut self, b: &Batch) -> SqlResult<()> {
        crate::query::guard::check()?;
        let n = b.num_rows();
        if n == 0 {
            return Ok(());
        }
        let (group, aggs) = (self.group, self.aggs);
        let naggs = aggs.len();
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
                        self.row.clear();
                        self.row.push(Scalar::from_column(c, ty, r));
                        feed(&mut self.accs[ai], call, &self.row);
                    }
                    self.key_bytes += kept_bytes(&self.accs[ai], &[], firsts.len())
                        + match &c.values {
                            Values::Text(v) => firsts.iter().map(|&r| v.get(r).len()).sum(),
                            _ => 0,
                        };
                    self.charge(self.keys.len())?;
                    continue;
                }
                if call.distinct || !feed_whole(&mut self.accs[ai], call, &cols, n) {
                    let tys: Vec<SqlType> = call.args.iter().map(|a| a.ty()).collect();
                    for r in 0..n {
                        if r % 16_384 == 16_383 {
                            crate::query::guard::check()?;
                        }
                        self.row.clear();
                        for (c, t) in cols.iter().zip(&tys) {
                            self.row.push(Scalar::from_column(c, *t, r));
                        }
                        feed(&mut self.accs[ai], call, &self.row);
                    }
                }
                if call.distinct || matches!(self.accs[ai], Acc::Strings(..) | Acc::Values(..) | Acc::Floats(..)) {
                    self.key_bytes += kept_bytes(&self.accs[ai], &cols, n);
                    self.charge(self.keys.len())?;
                }
            }
            self.at += n as u64;
            return Ok(());
        }
        let mut gids = Vec::with_capacity(n);
        match kcols.as_slice() {
            [] => gids.resize(n, 0),
            // One text key read as dictionary codes (from a file): each distinct code is
            // looked up once, then its group is an array index.
            [c] if let Values::Text(v) = &c.values
                && let Some((dict, codes)) = v.codes() =>
            {
                let slot = match self.by_code.iter().position(|(d, _)| std::sync::Arc::ptr_eq(d, dict)) {
                    Some(i) => i,
                    None => {
                        self.key_bytes += 4 * dict.len();
                        self.charge(self.keys.len())?;
                        self.by_code.push((dict.clone(), vec![u32::MAX; dict.len()]));
                        self.by_code.len() - 1
                    }
                };
                for (r, &code) in codes.iter().enumerate() {
                    if r % 16_384 == 16_383 {
                        crate::query::guard::check()?;
                    }
                    if !c.is_valid(r) {
                        gids.push(self.group_id(gbatch, &positions, r)?);
                        continue;
                    }
                    let known = self.by_code[slot].1[code as usize];
                    if known != u32::MAX {
                        gids.push(known as usize);
                        continue;
                    }
                    let id = self.group_id(gbatch, &positions, r)?;
                    self.by_code[slot].1[code as usize] = u32::try_from(id).unwrap_or(u32::MAX);
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
                    let id = self.group_id(gbatch, &positions, r)?;
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
                    let id = self.group_id(gbatch, &positions, r)?;
                    gids.push(id);
                    last = Some((r, id));
                }
            }
            _ => {
                for r in 0..n {
                    if r % 16_384 == 16_383 {
                        crate::query::guard::check()?;
                    }
                    gids.push(self.group_id(gbatch, &positions, r)?);
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
                && (runs.as_ref().is_some_and(|runs| feed_runs(&mut self.accs, naggs, ai, call, &cols, runs))
                    || fast_feed(&mut self.accs, naggs, ai, call, &cols, &gids));
            for r in (0..n).filter(|_| !fed) {
                if r % 16_384 == 16_383 {
                    crate::query::guard::check()?;
                }
                self.row.clear();
                for (c, t) in cols.iter().zip(&tys) {
                    self.row.push(Scalar::from_column(c, *t, r));
                }
                feed(&mut self.accs[gids[r] * naggs + ai], call, &self.row);
            }
            // Aggregates that keep their inputs (string_agg, percentiles, DISTINCT) hold what
            // they were fed: charged with the groups, before the next batch grows them.
            if call.distinct
                || matches!(self.accs[gids[0] * naggs + ai], Acc::Strings(..) | Acc::Values(..) | Acc::Floats(..))
            {
                self.key_bytes += kept_bytes(&self.accs[gids[0] * naggs + ai], &cols, n);
                self.charge(self.keys.len())?;
            }
        }
        self.at += n as u64;
        Ok(())
    }

    /// Adds to the accumulators what was not fed as rows (see [`AddToAccs`]).
    pub(crate) fn add(&mut self, after: AddToAccs<'_>) -> SqlResult<()> {
        let grouped = !self.group.is_empty();
        let (base, per_group) = (self.base, self.per_group);
        let charge = move |groups: usize, key_bytes: usize| -> SqlResult<()> {
            crate::query::guard::hold(base, groups.saturating_mul(per_group).saturating_add(2 * key_bytes))
        };
        after(&mut Groups {
            index: &mut self.index,
            keys: &mut self.keys,
            accs: &mut self.accs,
            aggs: self.aggs,
            grouped,
            key_bytes: &mut self.key_bytes,
            first: self.first.as_mut(),
            charge: &charge,
        })
    }

    /// Takes in `other`'s groups: a group both have gets both accumulators' inputs, one only
    /// `other` has is moved over. `other` was charged to another thread's memory: what it
    /// holds is charged to this one's first.
    pub(crate) fn merge(&mut self, mut other: Grouper<'_>) -> SqlResult<()> {
        let naggs = self.aggs.len();
        self.key_bytes = self.key_bytes.saturating_add(other.key_bytes);
        self.charge(self.keys.len() + other.keys.len())?;
        let merge_group = |mine: &mut [Acc], theirs: &mut [Acc], aggs: &[AggCall]| -> SqlResult<()> {
            for ((a, b), call) in mine.iter_mut().zip(theirs.iter_mut()).zip(aggs) {
                if !merge_acc(a, std::mem::replace(b, Acc::Count(0)), call) {
                    return Err(SqlError::new("XX000", "partial aggregates of different kinds"));
                }
            }
            Ok(())
        };
        if self.group.is_empty() {
            return merge_group(&mut self.accs[..naggs], &mut other.accs[..naggs], self.aggs);
        }
        for (i, (bytes, oid)) in std::mem::take(&mut other.index).into_iter().enumerate() {
            if i % 16_384 == 16_383 {
                crate::query::guard::check()?;
            }
            let theirs = &mut other.accs[oid * naggs..(oid + 1) * naggs];
            let their_first = other.first.as_ref().map_or(0, |f| f[oid]);
            match self.index.get(bytes.as_slice()) {
                Some(&id) => {
                    merge_group(&mut self.accs[id * naggs..(id + 1) * naggs], theirs, self.aggs)?;
                    if let Some(first) = &mut self.first {
                        first[id] = first[id].min(their_first);
                    }
                }
                None => {
                    let id = self.keys.len();
                    self.index.insert(bytes, id);
                    self.keys.push(std::mem::take(&mut other.keys[oid]));
                    self.accs.extend(theirs.iter_mut().map(|a| std::mem::replace(a, Acc::Count(0))));
                    if let Some(first) = &mut self.first {
                        first.push(their_first);
                    }
                }
            }
        }
        // What both held for the groups they shared is counted once.
        self.charge(self.keys.len())
    }

    /// Frees what a failed or cancelled aggregate holds on another thread: a million groups
    /// take a while to free, and the client's answer must not wait for that.
    pub(crate) fn discard(self) {
        crate::query::guard::free_elsewhere((self.index, self.keys, self.accs, self.by_code));
    }

    /// One row per group: the groups' keys, then the aggregates' values.
    pub(crate) fn finish(self) -> SqlResult<Batch> {
        let Grouper { group, aggs, keys, accs, first, index, by_code, .. } = self;
        crate::query::guard::free_elsewhere((index, by_code));
        let naggs = aggs.len();
        let ngroups = keys.len();
        // Groups in the order of their first rows, when parts were fed out of order.
        let order: Option<Vec<usize>> = first.map(|first| {
            let mut o: Vec<usize> = (0..ngroups).collect();
            o.sort_by_key(|&g| first[g]);
            o
        });
        let at = |i: usize| order.as_ref().map_or(i, |o| o[i]);
        let mut columns = Vec::with_capacity(group.len() + aggs.len());
        // Building the output of a million groups takes a while: it answers cancel too.
        let tick = |g: usize| if g % 16_384 == 16_383 { crate::query::guard::check() } else { Ok(()) };
        for (gi, g) in group.iter().enumerate() {
            let mut vals: Vec<Scalar> = Vec::with_capacity(ngroups);
            for i in 0..ngroups {
                tick(i)?;
                vals.push(keys[at(i)][gi].clone());
            }
            columns.push(scalars_to_column(&vals, g.ty())?);
        }
        // Each group's accumulators, in output order: finishing may work on what they hold
        // (a percentile selects among its kept values in place rather than on a copy).
        let mut accs = accs;
        let mut slots: Vec<&mut [Acc]> = accs.chunks_mut(naggs.max(1)).collect();
        if let Some(o) = &order {
            let mut taken: Vec<Option<&mut [Acc]>> = slots.into_iter().map(Some).collect();
            slots = o.iter().filter_map(|&g| taken[g].take()).collect();
        }
        let finish_part = |ai: usize, call: &AggCall, part: &mut [&mut [Acc]], from: usize| -> SqlResult<Vec<Scalar>> {
            let mut vals = Vec::with_capacity(part.len());
            for (i, slot) in part.iter_mut().enumerate() {
                tick(from + i)?;
                vals.push(finish_in_place(&mut slot[ai], call)?);
            }
            Ok(vals)
        };
        let threads = *crate::util::sync::PARALLELISM;
        for (ai, call) in aggs.iter().enumerate() {
            // Aggregates that kept their inputs (percentiles, DISTINCT) do their work here:
            // many groups of them are finished on every core, each a share of the groups.
            let kept = matches!(
                slots.first().and_then(|s| s.get(ai)),
                Some(Acc::Floats(..) | Acc::Values(..) | Acc::Distinct(..) | Acc::DistinctInt(..))
            );
            let vals = if kept && threads > 1 && ngroups >= 64 {
                let per = ngroups.div_ceil(threads);
                let finish_part = &finish_part;
                let parts: Vec<SqlResult<Vec<Scalar>>> = std::thread::scope(|sc| {
                    let handles: Vec<_> = slots
                        .chunks_mut(per)
                        .enumerate()
                        .map(|(t, part)| sc.spawn(move || finish_part(ai, call, part, t * per)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err(SqlError::new("XX000", "an aggregate thread failed"))))
                        .collect()
                });
                let mut vals = Vec::with_capacity(ngroups);
                for p in parts {
                    vals.extend(p?);
                }
                vals
            } else {
                finish_part(ai, call, &mut slots, 0)?
            };
            columns.push(scalars_to_column(&vals, call.ty)?);
        }
        let fields = columns
            .iter()
            .enumerate()
            .map(|(i, c)| crate::batch::Field::new(&format!("c{i}"), c.data_type()))
            .collect();
        Ok(Batch { fields, columns })
    }
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
/// being fed `n` rows of `cols`: their text and a value slot per row; a percentile of doubles
/// keeps a double per row (charged twice over, as all kept bytes are: room for its vector
/// to double).
fn kept_bytes(acc: &Acc, cols: &[&Column], n: usize) -> usize {
    match acc {
        Acc::Floats(..) => return 8 * n,
        // A value in the list and in the set (with the set's slack).
        Acc::DistinctInt(..) => return 24 * n,
        _ => {}
    }
    let text: usize = cols
        .iter()
        .map(|c| match &c.values {
            Values::Text(v) => v.data_len(),
            _ => 0,
        })
        .sum();
    text + 48 * n
}
