//! Scans: tables, channels and datastores read a chunk at a time, pruned by time, tags and value ranges, only the columns read decoded, large files split between the cores.

use super::*;
use crate::batch::{Batch, Column, Field, StrVec, Values};
use crate::datastore::DsFile;
use crate::query::error::{SqlError, SqlResult};
use crate::query::guard;
use crate::query::plan::{OutCol, ScanStats, Source};
use crate::util::time::MICROS_PER_DAY;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

pub(super) use crate::util::sync::PARALLELISM;

/// Messages of a channel received in a time range, a chunk at a time.
pub(super) struct ChannelReader<'a> {
    ch: &'a crate::channel::Channel,
    next: u64,
    /// The channel's end when the scan started: later messages are not seen.
    end: u64,
    range: (i64, i64),
}

/// Messages a channel scan reads at once.
pub(super) const CHANNEL_CHUNK: usize = 16_384;

impl<'a> ChannelReader<'a> {
    pub(super) fn new(ch: &'a crate::channel::Channel, range: (i64, i64)) -> ChannelReader<'a> {
        let end = ch.next_offset();
        // Arrival times never decrease along offsets: find the first message of the range.
        let (mut lo, mut hi) = (0u64, end);
        if range.0 != i64::MIN {
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match ch.read_from(mid, 1).ok().and_then(|m| Some((m.first_offset, *m.received_at.first()?))) {
                    Some((at, t)) if t < range.0 => lo = at.max(mid) + 1,
                    Some(_) => hi = mid,
                    None => break,
                }
            }
        }
        ChannelReader { ch, next: lo, end, range }
    }

    pub(super) fn next(&mut self) -> SqlResult<Option<crate::channel::Messages>> {
        while self.next < self.end {
            let m = self.ch.read_from(self.next, CHANNEL_CHUNK.min((self.end - self.next) as usize))?;
            if m.is_empty() {
                return Ok(None);
            }
            self.next = m.first_offset + m.len() as u64;
            let a = m.received_at.partition_point(|&t| t < self.range.0);
            let b = m.received_at.partition_point(|&t| t < self.range.1);
            if b < m.len() {
                self.end = self.next; // past the range: this is the last chunk
            }
            if a == 0 && b == m.len() {
                return Ok(Some(m));
            }
            if a < b {
                let mut part =
                    crate::channel::Messages { first_offset: m.first_offset + a as u64, ..Default::default() };
                part.extend_range(&m, a, b);
                return Ok(Some(part));
            }
        }
        Ok(None)
    }
}

/// A channel scan's batch of `m`: only the columns the query reads are filled.
pub(super) fn channel_batch(m: &crate::channel::Messages, schema: &[OutCol], used: &[bool]) -> Batch {
    let n = m.len();
    let want = |i: usize| used.get(i).copied().unwrap_or(true);
    let columns = vec![
        if want(0) { Column::new(Values::Timestamp(m.received_at.clone())) } else { unread(n) },
        if want(1) { Column::new(Values::Text(m.ids.clone())) } else { unread(n) },
        if want(2) { Column::new(Values::Text(m.topics.clone())) } else { unread(n) },
        if want(3) {
            let payload: StrVec = m.payloads.iter().map(|p| std::str::from_utf8(p).unwrap_or("")).collect();
            let mut valid = crate::batch::Bitmap::new_set(n);
            for (i, p) in m.payloads.iter().enumerate() {
                if std::str::from_utf8(p).is_err() {
                    valid.set(i, false);
                }
            }
            Column::with_validity(Values::Text(payload), Some(valid))
        } else {
            unread(n)
        },
        if want(4) {
            Column::new(Values::Int64((0..n as i64).map(|i| m.first_offset as i64 + i).collect()))
        } else {
            unread(n)
        },
    ];
    make_batch(schema, columns)
}

pub(super) fn scan(
    source: &Source,
    schema: &[OutCol],
    used: &[bool],
    range: (i64, i64),
    tags: &[(usize, String)],
    ranges: &[(usize, f64, f64)],
    stats: &ScanStats,
) -> SqlResult<Vec<Batch>> {
    match source {
        Source::Rows(b) => Ok(vec![b.as_ref().clone()]),
        Source::Input(slot) => Ok(vec![slot.get()?.as_ref().clone()]),
        Source::Table(t) => {
            let rows = t.rows();
            if rows.fields.len() != schema.len()
                || rows.fields.iter().zip(schema).any(|(f, c)| f.name != c.name || c.ty.physical() != Some(f.data_type))
            {
                return Err(SqlError::new(
                    "40001",
                    format!("table \"{}\" was altered while the query ran; run it again", t.name()),
                ));
            }
            // A chunk at a time, only the columns read, each chunk charged as it is copied: a
            // large table answers cancel between chunks.
            const CHUNK: usize = 65_536;
            let n = rows.num_rows();
            stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
            let mut out = Vec::with_capacity(n.div_ceil(CHUNK).max(1));
            for at in (0..n.max(1)).step_by(CHUNK) {
                guard::check()?;
                let end = (at + CHUNK).min(n);
                let idx: Vec<u32> = (at as u32..end as u32).collect();
                let columns: Vec<Column> = rows
                    .columns
                    .iter()
                    .zip(used.iter().chain(std::iter::repeat(&true)))
                    .map(|(c, &u)| if u { c.take(&idx) } else { unread(end - at) })
                    .collect();
                let b = make_batch(schema, columns);
                guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
                out.push(b);
            }
            Ok(out)
        }
        Source::Channel(ch) => {
            // A chunk at a time, only the columns read, each chunk charged as it is built.
            let mut reader = ChannelReader::new(ch, range);
            let mut out = Vec::new();
            while let Some(m) = reader.next()? {
                stats.rows_scanned.fetch_add(m.len() as u64, Ordering::Relaxed);
                let b = channel_batch(&m, schema, used);
                guard::charge(guard::size_of(std::slice::from_ref(&b)))?;
                out.push(b);
            }
            Ok(out)
        }
        Source::Datastore(ds) => {
            let start = guard::live();
            let mut reader = DatastoreReader::new(ds, schema, used, range, tags, ranges, stats);
            let mut out = Vec::new();
            // What the scan decoded so far counts against the query's memory, a file at a time.
            while let Some(part) = reader.next_part()? {
                guard::charge(guard::size_of(&part))?;
                out.extend(part);
            }
            guard::hold(start, 0)?;
            Ok(out)
        }
    }
}

/// A datastore scan, a file (decoded by both cores) or a memtable batch at a time: files
/// outside the time range or without the tag values are skipped, and so are blocks by their
/// time and min/max; only the columns the query reads are decoded.
pub(super) struct DatastoreReader<'a> {
    snap: crate::datastore::Snapshot,
    schema: &'a [OutCol],
    used: &'a [bool],
    range: (i64, i64),
    tags: &'a [(usize, String)],
    ranges: &'a [(usize, f64, f64)],
    stats: &'a ScanStats,
    time_idx: Option<usize>,
    next_file: usize,
    /// Within the file being read (`next_file - 1`): its next block, and the blocks its tag
    /// index allows (`None`: all).
    next_block: usize,
    allowed: Option<BTreeSet<usize>>,
    next_mem: usize,
    /// Batches of the part being handed out one at a time by [`DatastoreReader::next`].
    pending: std::collections::VecDeque<Batch>,
    /// When set, blocks wholly inside `whole` (a time range) whose statistics cover these
    /// columns are not decoded: their statistics are added to the totals instead.
    totals: Option<StatsWanted<'a>>,
    /// A top-N's cutoff: morsels' blocks wholly past it are not decoded.
    pub(super) cutoff: Option<&'a super::cutoff::SharedCutoff>,
}

/// Which columns' statistics whole blocks are taken for, inside which time range, and where
/// they are added up.
#[derive(Clone, Copy)]
pub(super) struct StatsWanted<'a> {
    pub cols: &'a [StatCol],
    pub whole: (i64, i64),
    /// When set (a text column's schema position), only blocks holding one value of that
    /// column in every row are taken, and added up per value in [`BlockTotals::groups`].
    pub by: Option<usize>,
    pub totals: &'a std::sync::Mutex<BlockTotals>,
}

/// A column whose whole blocks a query can take from statistics, and what it needs of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StatCol {
    /// Present rows, and for numbers sum, min, max and flags (schema position).
    Numbers(usize),
    /// Present rows per dictionary value (schema position).
    Counts(usize),
    /// The dictionary values present in the rows inside the time range (schema position),
    /// in [`ColTotals::counts`] (the numbers there mean nothing): from blocks wholly inside
    /// it, and from blocks holding one value in every row whose first or last time is
    /// inside it (so at least that row is). Alone in [`StatsWanted::cols`], without `by`.
    Values(usize),
}

use crate::query::agg::ColTotals;

/// What the blocks answered from statistics add up to.
#[derive(Default, Debug)]
pub(super) struct BlockTotals {
    pub rows: u64,
    /// By schema position.
    pub cols: std::collections::HashMap<usize, ColTotals>,
    /// With [`StatsWanted::by`]: the totals of the blocks holding each value.
    pub groups: std::collections::HashMap<String, BlockTotals>,
}

/// Most distinct values (or groups) the statistics of whole blocks are added up for (an
/// uncharged map): past it, blocks are decoded and grouped as rows, under the query's budget.
const MAX_COUNTED_VALUES: usize = 65_536;

/// Whether block `b` of `f` can be answered from statistics for `want` (inside its time
/// range, every column there, of the schema's type, with the statistics it needs, and one
/// value of its `by` column); if so, adds them to its totals.
fn take_block_stats(
    f: &DsFile,
    b: usize,
    storage: &[&Field],
    file_cols: &[Option<usize>],
    time_file_col: Option<usize>,
    want: StatsWanted,
) -> bool {
    let StatsWanted { cols, whole, by, totals } = want;
    let Some(tc) = time_file_col else { return false };
    let tb = f.block_meta(tc, b);
    // The block's entry of each column asked about, decoded once (entries are decoded from
    // the footer when needed: see `datastore::file::Blocks`).
    let asked = |c: usize| {
        by == Some(c) || cols.iter().any(|&(StatCol::Numbers(x) | StatCol::Counts(x) | StatCol::Values(x))| x == c)
    };
    let entries: Vec<_> = (0..storage.len())
        .map(|c| {
            let fc = file_cols.get(c).copied().flatten().filter(|_| asked(c))?;
            let cm = &f.meta.columns[fc];
            (cm.data_type == storage[c].data_type).then(|| (fc, cm, f.block_meta(fc, b)))
        })
        .collect();
    let meta_of = |c: usize| entries.get(c)?.as_ref().map(|(fc, cm, bm)| (*fc, *cm, bm));
    if let [StatCol::Values(c)] = cols {
        return take_block_values(f, b, *c, &tb, whole, &meta_of, totals);
    }
    if tb.min < whole.0 || tb.max >= whole.1 {
        return false;
    }
    // The one value of the `by` column in every row of the block.
    let value = match by {
        None => None,
        Some(k) => {
            let one = meta_of(k).and_then(|(fc, _, bm)| {
                let dict = f.dictionary(fc)?;
                match bm.stats.as_ref()?.counts.as_deref()? {
                    [(code, n)] if *n as usize == f.meta.block_len(b) => Some(dict.get(*code as usize).to_string()),
                    _ => None,
                }
            });
            match one {
                Some(v) => Some(v),
                None => return false,
            }
        }
    };
    // Checked and added under one lock: the cap on counted values holds across the threads
    // decoding one file, and a block is either added whole or decoded.
    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
    let t = &mut *t;
    if let Some(v) = &value
        && t.groups.len() >= MAX_COUNTED_VALUES
        && !t.groups.contains_key(v)
    {
        return false;
    }
    // Checked before anything is added: a block that fails leaves the totals as they were.
    for &sc in cols {
        let ok = match sc {
            StatCol::Numbers(c) => meta_of(c).is_some_and(|(_, _, bm)| bm.stats.is_some()),
            StatCol::Values(_) => false,
            StatCol::Counts(c) => {
                let so_far = match &value {
                    None => t.cols.get(&c),
                    Some(v) => t.groups.get(v).and_then(|g| g.cols.get(&c)),
                };
                meta_of(c).is_some_and(|(fc, _, bm)| {
                    f.dictionary(fc).is_some() && bm.stats.as_ref().is_some_and(|s| s.counts.is_some())
                }) && so_far.is_none_or(|t| t.counts.len() <= MAX_COUNTED_VALUES)
            }
        };
        if !ok {
            return false;
        }
    }
    let dest = match value {
        None => t,
        Some(v) => t.groups.entry(v).or_default(),
    };
    add_block_stats(f, b, cols, &meta_of, dest);
    true
}

/// [`take_block_stats`] for [`StatCol::Values`] of column `c`.
fn take_block_values<'f>(
    f: &'f DsFile,
    b: usize,
    c: usize,
    tb: &crate::datastore::file::BlockMeta,
    whole: (i64, i64),
    meta_of: &MetaOf<'f>,
    totals: &std::sync::Mutex<BlockTotals>,
) -> bool {
    let inside = |t: i64| whole.0 <= t && t < whole.1;
    // A block with a time outside its statistics (NULL) is read as rows.
    if tb.null_count > 0 || tb.min > tb.max {
        return false;
    }
    let Some((fc, _, bm)) = meta_of(c) else { return false };
    let (Some(dict), Some(counts)) = (f.dictionary(fc), bm.stats.as_ref().and_then(|s| s.counts.as_deref())) else {
        return false;
    };
    let n = f.meta.block_len(b);
    let present: Vec<u32> = if inside(tb.min) && inside(tb.max) {
        counts.iter().filter(|&&(_, k)| k > 0).map(|&(code, _)| code).collect()
    } else {
        match counts {
            [(code, k)] if *k as usize == n && (inside(tb.min) || inside(tb.max)) => vec![*code],
            _ => return false,
        }
    };
    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
    let ct = t.cols.entry(c).or_default();
    if ct.counts.len() + present.len() > MAX_COUNTED_VALUES {
        return false;
    }
    for code in present {
        *ct.counts.entry(dict.get(code as usize).to_string()).or_default() += 1;
    }
    true
}

type MetaOf<'f> = dyn Fn(usize) -> Option<(usize, &'f crate::datastore::file::ColumnMeta, &'f crate::datastore::file::BlockMeta)>
    + 'f;

/// Adds block `b`'s statistics for `cols` to `t` (checked by [`take_block_stats`]).
fn add_block_stats<'f>(f: &'f DsFile, b: usize, cols: &[StatCol], meta_of: &MetaOf<'f>, t: &mut BlockTotals) {
    use crate::batch::DataType;
    t.rows += f.meta.block_len(b) as u64;
    for &sc in cols {
        let (StatCol::Numbers(c) | StatCol::Counts(c) | StatCol::Values(c)) = sc;
        let Some((fc, cm, bm)) = meta_of(c) else { continue };
        let Some(st) = bm.stats.as_ref() else { continue };
        let ct = t.cols.entry(c).or_default();
        let present = f.meta.block_len(b) as u64 - bm.null_count as u64;
        match sc {
            StatCol::Numbers(_) => {
                ct.present += present;
                ct.flags |= st.flags;
                match cm.data_type {
                    DataType::Int64 | DataType::Timestamp if bm.min <= bm.max => {
                        ct.sum_int += st.sum;
                        ct.min_int = Some(ct.min_int.map_or(bm.min, |m| m.min(bm.min)));
                        ct.max_int = Some(ct.max_int.map_or(bm.max, |m| m.max(bm.max)));
                    }
                    DataType::Float64 => {
                        if present > 0 {
                            ct.sum_float += st.sum_f64();
                        }
                        let (lo, hi) = (f64::from_bits(bm.min as u64), f64::from_bits(bm.max as u64));
                        // min > max: no present value other than NaN.
                        if lo <= hi {
                            ct.min_float = Some(ct.min_float.map_or(lo, |m| m.min(lo)));
                            ct.max_float = Some(ct.max_float.map_or(hi, |m| m.max(hi)));
                        }
                    }
                    _ => {}
                }
            }
            StatCol::Values(_) => {}
            StatCol::Counts(_) => {
                ct.present += present;
                let (Some(dict), Some(counts)) = (f.dictionary(fc), st.counts.as_ref()) else { continue };
                for &(code, n) in counts {
                    *ct.counts.entry(dict.get(code as usize).to_string()).or_default() += n as u64;
                }
            }
        }
    }
}

impl<'a> DatastoreReader<'a> {
    pub(super) fn new(
        ds: &crate::datastore::Datastore,
        schema: &'a [OutCol],
        used: &'a [bool],
        range: (i64, i64),
        tags: &'a [(usize, String)],
        ranges: &'a [(usize, f64, f64)],
        stats: &'a ScanStats,
    ) -> DatastoreReader<'a> {
        Self::of_snapshot(ds.snapshot(), schema, used, range, tags, ranges, stats)
    }

    /// A reader of `snap`, a snapshot taken earlier (perhaps on another thread).
    pub(super) fn of_snapshot(
        snap: crate::datastore::Snapshot,
        schema: &'a [OutCol],
        used: &'a [bool],
        range: (i64, i64),
        tags: &'a [(usize, String)],
        ranges: &'a [(usize, f64, f64)],
        stats: &'a ScanStats,
    ) -> DatastoreReader<'a> {
        stats.files_total.fetch_add(snap.files.len() as u64, Ordering::Relaxed);
        let time_idx = snap.schema.iter().position(|f| f.name == "time");
        DatastoreReader {
            snap,
            schema,
            used,
            range,
            tags,
            ranges,
            stats,
            time_idx,
            next_file: 0,
            next_block: 0,
            allowed: None,
            next_mem: 0,
            pending: Default::default(),
            totals: None,
            cutoff: None,
        }
    }

    /// Whole blocks inside `want.whole` are answered from their statistics for `want.cols`
    /// (see [`StatCol`]), added up in `want.totals`, instead of being decoded.
    pub(super) fn with_totals(mut self, want: StatsWanted<'a>) -> Self {
        self.totals = Some(want);
        self
    }

    /// The next batch, or None at the end.
    pub(super) fn next(&mut self) -> SqlResult<Option<Batch>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            match self.next_part()? {
                Some(part) => self.pending.extend(part),
                None => return Ok(None),
            }
        }
    }

    /// The batches of the next file that has rows in range, or of the next memtable batch.
    pub(super) fn next_part(&mut self) -> SqlResult<Option<Vec<Batch>>> {
        // Schema positions: storage columns in order, then __dt.
        let (schema, used, range) = (self.schema, self.used, self.range);
        let dt_idx = schema.len() - 1;
        let time_idx = self.time_idx;
        loop {
            guard::check()?;
            // A file is read about PART_ROWS rows at a time, so that what one part holds stays
            // small whatever the file's size.
            const PART_ROWS: u64 = 1 << 18;
            if self.next_block == 0 {
                if self.next_file >= self.snap.files.len() {
                    break;
                }
                let f = &self.snap.files[self.next_file];
                self.next_file += 1;
                let Some(allowed) = self.file_blocks(f)? else { continue };
                self.allowed = allowed;
            }
            let f = &self.snap.files[self.next_file - 1];
            // Large files are decoded by both cores, each taking its share of the part's
            // blocks; the batches keep the file's order.
            let nblocks = f.meta.num_blocks();
            if nblocks == 0 {
                self.next_block = 0;
                continue;
            }
            let from = self.next_block;
            let starts = &f.meta.block_starts;
            let to = starts.partition_point(|&st| st < starts[from] + PART_ROWS).clamp(from + 1, nblocks);
            self.next_block = if to >= nblocks { 0 } else { to };
            let part_blocks = to - from;
            let workers = if part_blocks >= 16 { (*PARALLELISM).min(part_blocks) } else { 1 };
            self.stats.decoders.fetch_max(workers as u64, Ordering::Relaxed);
            let per = part_blocks.div_ceil(workers);
            let storage: Vec<&Field> = self.snap.schema.iter().collect();
            let (ranges, stats, totals) = (self.ranges, self.stats, self.totals);
            let allowed = self.allowed.as_ref();
            let parts: Vec<SqlResult<Vec<Batch>>> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..workers)
                    .map(|w| {
                        let blocks = (from + w * per).min(to)..(from + (w + 1) * per).min(to);
                        let storage = &storage;
                        sc.spawn(move || {
                            let mut part = Vec::new();
                            scan_file(
                                f, schema, storage, used, time_idx, dt_idx, range, ranges, allowed, stats, blocks,
                                totals, &mut part, None,
                            )
                            .map(|_| part)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(SqlError::new("XX000", "a scan worker failed"))))
                    .collect()
            });
            let mut out = Vec::new();
            for p in parts {
                out.extend(p?);
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        while self.next_mem < self.snap.mem.len() {
            guard::check()?;
            let i = self.next_mem;
            self.next_mem += 1;
            if let Some(b) = self.mem_batch(i) {
                return Ok(Some(vec![b]));
            }
        }
        Ok(None)
    }

    /// Whether file `f` has rows in range: `None` if not, else the blocks its tag index
    /// allows (`Some(None)`: all).
    fn file_blocks(&self, f: &DsFile) -> SqlResult<Option<Option<BTreeSet<usize>>>> {
        let (schema, range) = (self.schema, self.range);
        if f.meta.max_time < range.0 || f.meta.min_time >= range.1 {
            self.stats.files_pruned.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        // Blocks holding rows with every tag value, from the file's tag index.
        let mut allowed: Option<BTreeSet<usize>> = None;
        for (c, v) in self.tags {
            let Some(fc) = f.meta.column_index(&schema[*c].name) else { continue };
            if let Some(rows) = f.tag_rows(fc, v)? {
                let blocks: BTreeSet<usize> = rows.iter().map(|r| f.meta.block_of_row(r as u64).0).collect();
                allowed = Some(match allowed {
                    None => blocks,
                    Some(a) => a.intersection(&blocks).copied().collect(),
                });
            }
        }
        if allowed.as_ref().is_some_and(|a| a.is_empty()) {
            self.stats.files_pruned.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(allowed))
    }

    /// Memtable batch `i` (the columns the query reads), or `None` when it lies wholly
    /// outside the time range.
    fn mem_batch(&self, i: usize) -> Option<Batch> {
        let (schema, used, range) = (self.schema, self.used, self.range);
        let dt_idx = schema.len() - 1;
        let need_time = used.get(dt_idx).copied().unwrap_or(false);
        let (b, (lo, hi)) = (&self.snap.mem[i], self.snap.mem_times[i]);
        // Memtable batches wholly outside the time range are skipped, as files are.
        if hi < range.0 || lo >= range.1 {
            return None;
        }
        let n = b.num_rows();
        self.stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
        // Only the columns the query reads are copied.
        let mut columns: Vec<Column> = self
            .snap
            .schema
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let want = used.get(i).copied().unwrap_or(true) || (need_time && Some(i) == self.time_idx);
                if want { crate::datastore::conform_column(f, b) } else { unread(n) }
            })
            .collect();
        // As from files: `__dt` only when read, else the placeholder of unread columns,
        // so that batches from files and from the memtable have the same types.
        columns.push(if need_time { dt_column(&columns, self.time_idx) } else { unread(n) });
        Some(make_batch(schema, columns))
    }

    /// The whole scan cut into morsels (about [`MORSEL_ROWS`] rows of blocks of one file,
    /// or one memtable batch), in the scan's order, for threads to take one at a time.
    pub(super) fn morsels(&self) -> SqlResult<Vec<Morsel>> {
        let mut out = Vec::new();
        for (fi, f) in self.snap.files.iter().enumerate() {
            guard::check()?;
            let Some(allowed) = self.file_blocks(f)? else { continue };
            let allowed = allowed.map(std::sync::Arc::new);
            let (starts, nblocks) = (&f.meta.block_starts, f.meta.num_blocks());
            let mut from = 0;
            while from < nblocks {
                let to = starts.partition_point(|&st| st < starts[from] + MORSEL_ROWS).clamp(from + 1, nblocks);
                out.push(Morsel::Blocks { file: fi, blocks: from..to, allowed: allowed.clone() });
                from = to;
            }
        }
        out.extend((0..self.snap.mem.len()).map(Morsel::Mem));
        Ok(out)
    }

    /// The batches of morsel `m`.
    pub(super) fn read_morsel(&self, m: &Morsel, out: &mut Vec<Batch>) -> SqlResult<()> {
        match m {
            Morsel::Blocks { file, blocks, allowed } => {
                let f = &self.snap.files[*file];
                let storage: Vec<&Field> = self.snap.schema.iter().collect();
                let dt_idx = self.schema.len() - 1;
                scan_file(
                    f,
                    self.schema,
                    &storage,
                    self.used,
                    self.time_idx,
                    dt_idx,
                    self.range,
                    self.ranges,
                    allowed.as_deref(),
                    self.stats,
                    blocks.clone(),
                    self.totals,
                    out,
                    self.cutoff,
                )
            }
            Morsel::Mem(i) => {
                out.extend(self.mem_batch(*i));
                Ok(())
            }
        }
    }
}

/// Rows of blocks a morsel holds at least (unless its file has fewer).
const MORSEL_ROWS: u64 = 1 << 15;

/// A piece of a datastore scan (see [`DatastoreReader::morsels`]).
pub(super) enum Morsel {
    /// Blocks of file `file` (in the snapshot), those of `allowed` only when set.
    Blocks { file: usize, blocks: std::ops::Range<usize>, allowed: Option<std::sync::Arc<BTreeSet<usize>>> },
    /// A memtable batch.
    Mem(usize),
}

pub(super) fn dt_column(columns: &[Column], time_idx: Option<usize>) -> Column {
    match time_idx.map(|i| &columns[i].values) {
        Some(Values::Timestamp(t)) => {
            Column::new(Values::Int64(t.iter().map(|x| x.div_euclid(MICROS_PER_DAY)).collect()))
        }
        _ => Column::nulls(crate::batch::DataType::Int64, columns.first().map_or(0, |c| c.len())),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn scan_file(
    f: &DsFile,
    schema: &[OutCol],
    storage: &[&Field],
    used: &[bool],
    time_idx: Option<usize>,
    dt_idx: usize,
    range: (i64, i64),
    ranges: &[(usize, f64, f64)],
    allowed: Option<&std::collections::BTreeSet<usize>>,
    stats: &ScanStats,
    blocks: std::ops::Range<usize>,
    totals: Option<StatsWanted>,
    out: &mut Vec<Batch>,
    cutoff: Option<&super::cutoff::SharedCutoff>,
) -> SqlResult<()> {
    let file_cols: Vec<Option<usize>> = storage.iter().map(|fl| f.meta.column_index(&fl.name)).collect();
    let time_file_col = f.meta.column_index("time");
    stats.blocks_total.fetch_add(blocks.len() as u64, Ordering::Relaxed);
    // Small blocks (one short series each, or what a time range leaves of one) are handed on
    // together, BATCH_ROWS rows or more at a time: operators pay their per-batch costs once.
    // Blocks of a quarter of that or more go as they are (the copy would cost more).
    const BATCH_ROWS: usize = 4096;
    let mut small: Vec<Batch> = Vec::new();
    let mut small_rows = 0;
    let hand_on = |small: &mut Vec<Batch>, out: &mut Vec<Batch>| {
        if !small.is_empty() {
            out.push(super::concat(std::mem::take(small), schema));
        }
    };
    for b in blocks {
        if allowed.is_some_and(|a| !a.contains(&b)) {
            stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(tc) = time_file_col {
            let bm = f.block_meta(tc, b);
            if bm.max < range.0 || bm.min >= range.1 {
                stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        // Numeric conditions against the block's min/max (a block without present values
        // has min > max and matches no condition).
        let outside = ranges.iter().any(|&(c, lo, hi)| {
            let Some(fc) = file_cols.get(c).copied().flatten() else { return false };
            let cm = &f.meta.columns[fc];
            let bm = f.block_meta(fc, b);
            let (min, max) = match cm.data_type {
                crate::batch::DataType::Float64 => (f64::from_bits(bm.min as u64), f64::from_bits(bm.max as u64)),
                crate::batch::DataType::Int64 => (bm.min as f64, bm.max as f64),
                _ => return false,
            };
            if min.is_nan() || max.is_nan() {
                return false;
            }
            min > max || max < lo || min > hi
        });
        if outside || cutoff.is_some_and(|c| c.skips(f, b)) {
            stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(want) = totals
            && take_block_stats(f, b, storage, &file_cols, time_file_col, want)
        {
            stats.blocks_from_stats.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let n = f.meta.block_len(b);
        stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
        let need_time = used.get(dt_idx).copied().unwrap_or(false);
        let wanted = |i: usize| used.get(i).copied().unwrap_or(true) || (need_time && Some(i) == time_idx);
        // A block the time range cuts, whose times are in order (it holds one series, or
        // the file is in time order): the rows inside the range are found by binary search
        // and only they are kept.
        let mut time_col = None;
        let mut keep = None;
        if let (Some(ti), Some(tc)) = (time_idx, time_file_col)
            && wanted(ti)
            && file_cols[ti] == Some(tc)
        {
            let bm = f.block_meta(tc, b);
            if bm.min < range.0 || bm.max >= range.1 {
                let c = f.block(tc, b)?;
                if let Values::Timestamp(t) = &c.values
                    && c.validity.is_none()
                    && t.is_sorted()
                {
                    let (from, to) = (t.partition_point(|&x| x < range.0), t.partition_point(|&x| x < range.1));
                    if from == to {
                        stats.blocks_pruned.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if to - from < n {
                        keep = Some((from, to));
                    }
                }
                time_col = Some(c);
            }
        }
        let mut columns = Vec::with_capacity(schema.len());
        for (i, fl) in storage.iter().enumerate() {
            let want = wanted(i);
            let col = match (want, file_cols[i]) {
                (true, Some(_)) if Some(i) == time_idx && time_col.is_some() => {
                    let c = time_col.take().unwrap_or_else(|| unread(n));
                    if c.data_type() != fl.data_type { c.widen_to_float() } else { c }
                }
                (true, Some(fc)) => {
                    let c = f.block(fc, b)?;
                    if c.data_type() != fl.data_type { c.widen_to_float() } else { c }
                }
                // A column this (older) file lacks: NULLs of the column's type.
                (true, None) => Column::nulls(fl.data_type, n),
                (false, _) => unread(n),
            };
            columns.push(col);
        }
        let n = match keep {
            Some((from, to)) => {
                columns.iter_mut().for_each(|c| c.keep_range(from, to));
                to - from
            }
            None => n,
        };
        columns.push(if need_time { dt_column(&columns, time_idx) } else { unread(n) });
        let batch = make_batch(schema, columns);
        if n >= BATCH_ROWS / 4 && small.is_empty() {
            out.push(batch);
            continue;
        }
        small.push(batch);
        small_rows += n;
        if small_rows >= BATCH_ROWS {
            hand_on(&mut small, out);
            small_rows = 0;
        }
    }
    hand_on(&mut small, out);
    Ok(())
}

/// The rows of a datastore that can be the latest of their series, where a series is a value
/// of text column `key` and time is column `time` (positions in `schema`): every memtable row;
/// then, files newest first (by their latest time), in a file sorted by that column (then
/// time) the last row of each series that has no candidate yet at or after the file's latest
/// time (files wholly older than every series' candidate are skipped); and every row of a
/// file the shortcut does not fit (sorted otherwise, without a tag index, or with NULL keys).
/// A superset of each series' latest row, for
/// [`top_per_group`](super::sort::top_per_group) to choose from: the last rows come from the
/// tag index, and only the blocks holding them are decoded (the columns the query reads).
pub(super) fn last_per_series(
    ds: &crate::datastore::Datastore,
    schema: &[OutCol],
    used: &[bool],
    key: usize,
    time: usize,
    stats: &ScanStats,
) -> SqlResult<Vec<Batch>> {
    use std::collections::{BTreeMap, HashMap};
    let snap = ds.snapshot();
    stats.files_total.fetch_add(snap.files.len() as u64, Ordering::Relaxed);
    let storage: Vec<&Field> = snap.schema.iter().collect();
    let time_idx = snap.schema.iter().position(|f| f.name == "time");
    let dt_idx = schema.len() - 1;
    let need_time = used.get(dt_idx).copied().unwrap_or(false);
    let key_name = &schema[key].name;
    // The latest time seen so far per series.
    let mut best: HashMap<String, i64> = HashMap::new();
    let note = |best: &mut HashMap<String, i64>, b: &Batch| {
        let (Values::Text(k), Values::Timestamp(t)) = (&b.columns[key].values, &b.columns[time].values) else {
            return;
        };
        for i in (0..b.num_rows()).filter(|&i| b.columns[key].is_valid(i) && b.columns[time].is_valid(i)) {
            match best.get_mut(k.get(i)) {
                Some(x) => *x = (*x).max(t[i]),
                None => {
                    best.insert(k.get(i).to_string(), t[i]);
                }
            }
        }
    };
    let mut out = Vec::new();
    for b in &snap.mem {
        guard::check()?;
        let n = b.num_rows();
        stats.rows_scanned.fetch_add(n as u64, Ordering::Relaxed);
        // Memtable rows come in arrival order: each series' latest row in this batch, found
        // from the key and time columns alone, is all that is copied (rows with a NULL key
        // or time are kept as they are: they group apart).
        let column = |c: usize| match b.column(&storage[c].name) {
            Some(col) if col.data_type() == storage[c].data_type => std::borrow::Cow::Borrowed(col),
            _ => std::borrow::Cow::Owned(crate::datastore::conform_column(storage[c], b)),
        };
        let (keys, times) = (column(key), column(time));
        let rows: Vec<u32> = match (&keys.values, &times.values) {
            (Values::Text(k), Values::Timestamp(t)) => {
                let mut latest: HashMap<&str, u32> = HashMap::new();
                let mut odd = Vec::new();
                for i in 0..n {
                    if !keys.is_valid(i) || !times.is_valid(i) {
                        odd.push(i as u32);
                        continue;
                    }
                    let e = latest.entry(k.get(i)).or_insert(i as u32);
                    if t[i] > t[*e as usize] {
                        *e = i as u32;
                    }
                }
                let mut rows: Vec<u32> = latest.into_values().chain(odd).collect();
                rows.sort_unstable();
                rows
            }
            _ => (0..n as u32).collect(),
        };
        let mut columns: Vec<Column> = storage
            .iter()
            .enumerate()
            .map(|(c, f)| {
                let want = used.get(c).copied().unwrap_or(true) || (need_time && Some(c) == time_idx);
                if want { crate::datastore::conform_column(f, b).take(&rows) } else { unread(rows.len()) }
            })
            .collect();
        columns.push(if need_time { dt_column(&columns, time_idx) } else { unread(rows.len()) });
        let batch = make_batch(schema, columns);
        guard::charge(batch.approx_bytes())?;
        note(&mut best, &batch);
        out.push(batch);
    }
    let mut files: Vec<&std::sync::Arc<DsFile>> = snap.files.iter().collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.meta.max_time));
    let full = (i64::MIN, i64::MAX);
    for f in files {
        guard::check()?;
        let nblocks = f.meta.num_blocks();
        let fc = f.meta.column_index(key_name);
        let sorted_by_key = fc.is_some_and(|c| f.meta.spec.sort_key == *key_name && f.meta.columns[c].null_count == 0);
        let newer = f.meta.max_time;
        let last = match fc {
            Some(c) if sorted_by_key => f.last_row_of_values(c, |v| best.get(v).is_none_or(|&t| t < newer))?,
            _ => None,
        };
        let mut part = Vec::new();
        // Blocks of this file decoded whole (the columns the query reads).
        let storage = &storage;
        let decode = |blocks: std::ops::Range<usize>, out: &mut Vec<Batch>| {
            scan_file(f, schema, storage, used, time_idx, dt_idx, full, &[], None, stats, blocks, None, out, None)
        };
        match last {
            None => {
                // Every row of this file.
                decode(0..nblocks, &mut part)?;
            }
            Some(last) => {
                if last.is_empty() {
                    stats.files_pruned.fetch_add(1, Ordering::Relaxed);
                }
                // The rows wanted, by block; each block holding one is decoded, the rest skipped.
                let mut by_block: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
                for (_, row) in last {
                    let (b, at) = f.meta.block_of_row(row as u64);
                    by_block.entry(b).or_default().push(at as u32);
                }
                // (scan_file counts the blocks it decodes.)
                let skipped = (nblocks - by_block.len()) as u64;
                stats.blocks_total.fetch_add(skipped, Ordering::Relaxed);
                stats.blocks_pruned.fetch_add(skipped, Ordering::Relaxed);
                // Each block holding a wanted row is decoded, the blocks shared between the
                // cores in order.
                let wanted: Vec<(usize, Vec<u32>)> = by_block.into_iter().collect();
                let workers = if wanted.len() >= 16 { (*PARALLELISM).min(wanted.len()) } else { 1 };
                let per = wanted.len().div_ceil(workers.max(1)).max(1);
                let decode = &decode;
                let parts: Vec<SqlResult<Vec<Batch>>> = std::thread::scope(|sc| {
                    let handles: Vec<_> = wanted
                        .chunks(per)
                        .map(|chunk| {
                            sc.spawn(move || -> SqlResult<Vec<Batch>> {
                                let mut got = Vec::with_capacity(chunk.len());
                                for (b, rows) in chunk {
                                    let mut whole = Vec::with_capacity(1);
                                    decode(*b..*b + 1, &mut whole)?;
                                    let mut rows = rows.clone();
                                    rows.sort_unstable();
                                    got.extend(whole.iter().map(|w| w.take(&rows)));
                                }
                                Ok(got)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err(SqlError::new("XX000", "a scan worker failed"))))
                        .collect()
                });
                for p in parts {
                    part.extend(p?);
                }
            }
        }
        guard::charge(guard::size_of(&part))?;
        for b in &part {
            note(&mut best, b);
        }
        out.extend(part);
    }
    Ok(out)
}
