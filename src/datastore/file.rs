//! Datastore files (`*.fds`): one immutable, sorted, columnar file per flush or compaction in a
//! partition directory. Byte layout in `storage-format.md` § "Datastore files". [`encode_file`]
//! builds a file's bytes from a sorted [`Batch`]; [`FileMeta::parse`] validates and parses the
//! footer of any byte slice; [`read_block`] decodes one block of one column.

use roaring::RoaringBitmap;

use super::codec::{self, CodecError, Dictionary, Encoding};
use crate::batch::{Batch, Bitmap, Column, DataType, StrVec, Values, dictionary};
use crate::util::bytes::{ByteReader, PutBytes, crc32};
use crate::util::container::{self, FormatError, corrupt};

pub const MAGIC: [u8; 8] = *b"FLEETDS\0";
/// Version 2 adds block statistics (flags, sum, per-value counts) to each block entry;
/// version 3 lets blocks differ in length (each block's rows in the footer), so that blocks
/// end where a series does. Versions 1 and 2 are still read (version-1 blocks have no
/// [`BlockStats`]; both have blocks of `block_rows` rows).
pub const VERSION: u32 = 3;
/// Most distinct values of a dictionary column whose per-value counts a block records.
const MAX_BLOCK_COUNTS: usize = 255;
const HEADER_LEN: usize = container::HEADER_LEN;
/// Dictionary encoding is used while the distinct count stays below this share of the rows.
const DICT_MAX_SHARE: usize = 2;
const DICT_MAX_VALUES: usize = 1 << 20;

/// What a file is, apart from its rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileSpec {
    pub day: i32,
    pub seq: u64,
    pub max_lsn: u64,
    /// Text column the rows are grouped by before time (empty: time only).
    pub sort_key: String,
    /// Sequence numbers of the files this one replaces (compaction); see crash case 4.
    pub replaces: Vec<u64>,
    /// Highest source (channel) offset consumed per source, for exactly-once pipelines.
    pub sources: Vec<(String, u64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BlockMeta {
    pub offset: u64,
    pub stored_len: u32,
    /// Length before lz4, or 0 when the block is stored uncompressed.
    pub raw_len: u32,
    pub crc: u32,
    pub encoding: Encoding,
    pub null_count: u32,
    /// Min and max of the present values: i64 for int/timestamp, f64 bits for float, unused
    /// otherwise. `min > max` (as numbers) means the block has no present value.
    pub min: i64,
    pub max: i64,
    /// Statistics enough to answer count, sum, avg, min and max over the whole block without
    /// decoding it (version 2; `None` in version-1 files).
    pub stats: Option<BlockStats>,
}

/// A block's statistics beyond min and max (file version 2).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BlockStats {
    /// [`BlockStats::NAN`] | [`BlockStats::INFINITE`]: a float block holds such a value.
    pub flags: u8,
    /// Sum of the present values in row order: exact for int columns; for float columns the
    /// f64 sum's bits in the low 64 bits; 0 for other types.
    pub sum: i128,
    /// For a dictionary-coded column: (code, present rows with that code) for each code in the
    /// block, by code; `None` when the block holds more than 255 distinct values.
    pub counts: Option<Vec<(u32, u32)>>,
}

impl BlockStats {
    pub const NAN: u8 = 1;
    pub const INFINITE: u8 = 2;
    /// The float sum, for float columns.
    pub fn sum_f64(&self) -> f64 {
        f64::from_bits(self.sum as u64)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnMeta {
    pub name: String,
    pub data_type: DataType,
    pub null_count: u64,
    /// Dictionary and tag-index section: (offset, len, crc); len 0 when the column has none.
    pub dict: (u64, u32, u32),
    pub blocks: Blocks,
}

/// A column's block entries. Those of a file that was opened stay in its footer (mapped, so
/// page cache rather than the process's own memory) and each is decoded when asked for: what
/// stays in memory is where each entry starts, 4 bytes a block, not the entry with its
/// statistics (~100 bytes). Memory then does not grow with the rows a server holds: a file of
/// a million rows of 500 series has 500 blocks a column, and before this a soak at 600k rows/s
/// grew by ~10 MB a minute in block entries alone (BENCHMARKS.md).
#[derive(Clone, Debug, PartialEq)]
pub enum Blocks {
    /// Entries made by the encoder, for the file being written.
    Owned(Vec<BlockMeta>),
    /// Entries in the footer of a file that was opened: where the footer starts in the file,
    /// where each entry starts in the footer, and whether entries carry [`BlockStats`]
    /// (version 2 on). Every entry was checked when the file was opened.
    InFooter { base: u64, at: Vec<u32>, stats: bool },
}

impl Blocks {
    pub fn len(&self) -> usize {
        match self {
            Blocks::Owned(v) => v.len(),
            Blocks::InFooter { at, .. } => at.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Block `b`'s entry; `buf` is the file's bytes (those [`FileMeta::parse`] read).
    pub fn get(&self, buf: &[u8], b: usize) -> BlockMeta {
        match self {
            Blocks::Owned(v) => v[b].clone(),
            Blocks::InFooter { base, at, stats } => {
                let mut r = ByteReader::new(&buf[*base as usize + at[b] as usize..]);
                read_entry(&mut r, *stats)
                    .expect("a footer entry is checked when its file is opened, and files never change")
            }
        }
    }
    /// Every block's entry, in order.
    pub fn iter<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = BlockMeta> + 'a {
        (0..self.len()).map(move |b| self.get(buf, b))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileMeta {
    pub spec: FileSpec,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
    /// The most rows a block holds.
    pub block_rows: u32,
    /// Block `b` holds file rows `block_starts[b] .. block_starts[b + 1]` (one entry more
    /// than there are blocks, the last being `rows`).
    pub block_starts: Vec<u64>,
    pub columns: Vec<ColumnMeta>,
    pub file_len: u64,
}

impl FileMeta {
    pub fn num_blocks(&self) -> usize {
        self.columns.first().map_or(0, |c| c.blocks.len())
    }
    /// Rows in block `b`.
    pub fn block_len(&self, b: usize) -> usize {
        (self.block_starts[b + 1] - self.block_starts[b]) as usize
    }
    /// The block holding file row `row`, and the row's position in it.
    pub fn block_of_row(&self, row: u64) -> (usize, usize) {
        let b = self.block_starts.partition_point(|&s| s <= row).saturating_sub(1);
        (b, (row - self.block_starts[b]) as usize)
    }
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

fn codec_err(e: CodecError) -> FormatError {
    FormatError::Corrupt(e.to_string())
}

/// Replaces null positions with the previous present value (the first present value for
/// leading nulls) so that deltas across nulls are zero. Readers never look at those positions.
fn fill_nulls(col: &Column) -> std::borrow::Cow<'_, Values> {
    let Some(valid) = &col.validity else { return std::borrow::Cow::Borrowed(&col.values) };
    let n = col.len();
    let first = (0..n).find(|&i| valid.get(i));
    let mut idx: Vec<u32> = Vec::with_capacity(n);
    let mut last = first.unwrap_or(0) as u32;
    for i in 0..n {
        if valid.get(i) {
            last = i as u32;
        }
        idx.push(last);
    }
    std::borrow::Cow::Owned(Column::new(col.values.clone()).take(&idx).values)
}

fn block_stats(values: &Values, valid: &dyn Fn(usize) -> bool) -> (i64, i64) {
    match values {
        Values::Int64(v) | Values::Timestamp(v) => {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for (i, &x) in v.iter().enumerate() {
                if valid(i) {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            (lo, hi)
        }
        Values::Float64(v) => {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for (i, &x) in v.iter().enumerate() {
                if valid(i) && !x.is_nan() {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            (lo.to_bits() as i64, hi.to_bits() as i64)
        }
        _ => (1, 0),
    }
}

/// A block's flags, sum and per-value counts (see [`BlockStats`]); `codes` are the block's
/// dictionary codes when the column has a dictionary.
fn block_sums(values: &Values, valid: &dyn Fn(usize) -> bool, codes: Option<&[u32]>) -> BlockStats {
    let mut st = BlockStats::default();
    match values {
        Values::Int64(v) => st.sum = v.iter().enumerate().filter(|(i, _)| valid(*i)).map(|(_, &x)| x as i128).sum(),
        Values::Float64(v) => {
            let mut sum = 0.0f64;
            for (i, &x) in v.iter().enumerate() {
                if valid(i) {
                    sum += x;
                    if x.is_nan() {
                        st.flags |= BlockStats::NAN;
                    } else if x.is_infinite() {
                        st.flags |= BlockStats::INFINITE;
                    }
                }
            }
            st.sum = sum.to_bits() as i128;
        }
        _ => {}
    }
    if let Some(codes) = codes {
        let mut counts: std::collections::BTreeMap<u32, u32> = Default::default();
        for (i, &c) in codes.iter().enumerate() {
            if valid(i) {
                *counts.entry(c).or_default() += 1;
                if counts.len() > MAX_BLOCK_COUNTS {
                    return st;
                }
            }
        }
        st.counts = Some(counts.into_iter().collect());
    }
    st
}

/// Encodes a whole file. `batch` must be sorted as the caller wants it stored and must have a
/// non-null `time` timestamp column.
pub fn encode_file(spec: &FileSpec, batch: &Batch, block_rows: u32) -> Vec<u8> {
    let rows = batch.num_rows();
    let block_rows = block_rows.max(1) as usize;
    let key = Some(spec.sort_key.as_str()).filter(|k| !k.is_empty()).and_then(|k| batch.column(k));
    let block_starts = block_starts(key, rows, block_rows);
    let mut out = Vec::with_capacity(rows * batch.columns.len() + 4096);
    container::begin(&MAGIC, VERSION, &mut out);

    let (min_time, max_time) = match batch.column("time").map(|c| &c.values) {
        Some(Values::Timestamp(t)) if !t.is_empty() => (*t.iter().min().unwrap_or(&0), *t.iter().max().unwrap_or(&0)),
        _ => (0, 0),
    };

    // Columns are encoded apart (on the machine's cores, each into its own buffer, offsets
    // from 0), then laid out one after the other, their offsets moved to where they land.
    let encoded = encode_columns(batch, &block_starts);
    let mut columns = Vec::with_capacity(encoded.len());
    for (mut meta, bytes) in encoded {
        let base = out.len() as u64;
        if meta.dict.1 > 0 {
            meta.dict.0 += base;
        }
        if let Blocks::Owned(blocks) = &mut meta.blocks {
            for b in blocks {
                b.offset += base;
            }
        }
        out.extend_from_slice(&bytes);
        columns.push(meta);
    }

    let meta = FileMeta {
        spec: spec.clone(),
        rows: rows as u64,
        min_time,
        max_time,
        block_rows: block_rows as u32,
        block_starts,
        columns,
        file_len: 0,
    };
    let footer_start = out.len();
    write_footer(&meta, &[], &mut out);
    container::finish(&MAGIC, footer_start, &mut out);
    out
}

/// Every column of `batch` encoded (see [`encode_column`]), by up to as many threads as the
/// machine has cores; in column order.
fn encode_columns(batch: &Batch, block_starts: &[u64]) -> Vec<(ColumnMeta, Vec<u8>)> {
    let n = batch.columns.len();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n).min(8);
    if threads <= 1 || batch.num_rows() < 65_536 {
        return batch.fields.iter().zip(&batch.columns).map(|(f, c)| encode_column(f, c, block_starts)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, (ColumnMeta, Vec<u8>))> = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, encode_column(&batch.fields[i], &batch.columns[i], block_starts)));
                    }
                })
            })
            .collect();
        // A worker only encodes (no I/O, no lock): it cannot fail but by a defect, which is
        // the caller's panic as it would be on one thread.
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, c)| c).collect()
}

/// One column's dictionary section (low-cardinality text) and blocks, in a buffer of its
/// own: offsets in the returned metadata count from the buffer's start.
fn encode_column(field: &crate::batch::Field, col: &Column, block_starts: &[u64]) -> (ColumnMeta, Vec<u8>) {
    let rows = col.len();
    let mut out = Vec::with_capacity(rows + 1024);
    let filled = fill_nulls(col);
    // Dictionary (sorted distinct values) and per-row codes for low-cardinality text.
    let mut dict_codes: Option<Vec<u32>> = None;
    let mut dict_section = (0u64, 0u32, 0u32);
    // The dictionary as a vector, for blocks to hold their values as codes into it.
    let mut dict_vec: Option<std::sync::Arc<StrVec>> = None;
    if let Values::Text(sv) = &*filled {
        let limit = (rows / DICT_MAX_SHARE).min(DICT_MAX_VALUES);
        if let Some((distinct, codes)) = dictionary(sv, limit).filter(|_| rows > 0) {
            let mut index: Vec<RoaringBitmap> = vec![RoaringBitmap::new(); distinct.len()];
            // Rows are grouped by series, so values come in runs: insert each run at once.
            let mut row = 0;
            while row < rows {
                let c = codes[row];
                let valid = col.is_valid(row);
                let mut end = row + 1;
                while end < rows && codes[end] == c && col.is_valid(end) == valid {
                    end += 1;
                }
                if valid {
                    index[c as usize].insert_range(row as u32..end as u32);
                }
                row = end;
            }
            let start = out.len();
            out.put_u32(distinct.len() as u32);
            for s in &distinct {
                out.put_bytes32(s.as_bytes());
            }
            let mut rb = Vec::new();
            for bm in &mut index {
                bm.optimize();
                rb.clear();
                bm.serialize_into(&mut rb).expect("writing to a Vec cannot fail");
                out.put_bytes32(&rb);
            }
            let crc = crc32(&out[start..]);
            dict_section = (start as u64, (out.len() - start) as u32, crc);
            dict_codes = Some(codes);
            dict_vec = Some(std::sync::Arc::new(distinct.iter().copied().collect()));
        }
    }

    let mut blocks = Vec::with_capacity(block_starts.len() - 1);
    let mut raw = Vec::new();
    for w in block_starts.windows(2) {
        let (start, end) = (w[0] as usize, w[1] as usize);
        let values = match (&dict_vec, &dict_codes) {
            // A block's text is its dictionary codes (what it stores): no string is copied.
            (Some(dict), Some(codes)) => StrVec::coded(dict.clone(), codes[start..end].to_vec())
                .map(Values::Text)
                .unwrap_or_else(|| slice_values(&filled, start, end)),
            _ => slice_values(&filled, start, end),
        };
        let valid = |i: usize| col.is_valid(start + i);
        let (min, max) = block_stats(&values, &valid);
        let stats = block_sums(&values, &valid, dict_codes.as_ref().map(|c| &c[start..end]));
        let mut nulls = RoaringBitmap::new();
        if col.validity.is_some() {
            for i in 0..end - start {
                if !valid(i) {
                    nulls.insert(i as u32);
                }
            }
        }
        raw.clear();
        nulls.optimize();
        let mut nb = Vec::new();
        nulls.serialize_into(&mut nb).expect("writing to a Vec cannot fail");
        raw.put_bytes32(if nulls.is_empty() { &[] } else { &nb });
        let encoding = codec::encode(&values, dict_codes.as_ref().map(|c| &c[start..end]), &mut raw);
        let offset = out.len();
        let raw_len = container::put_maybe_compressed(&raw, &mut out);
        blocks.push(BlockMeta {
            offset: offset as u64,
            stored_len: (out.len() - offset) as u32,
            raw_len,
            crc: crc32(&out[offset..]),
            encoding,
            null_count: nulls.len() as u32,
            min,
            max,
            stats: Some(stats),
        });
    }
    let meta = ColumnMeta {
        name: field.name.clone(),
        data_type: field.data_type,
        null_count: col.null_count() as u64,
        dict: dict_section,
        blocks: Blocks::Owned(blocks),
    };
    (meta, out)
}

/// Where each block starts (and, last, `rows`). Without a sort key, every `block_rows` rows.
/// With one, blocks end where a series does, so that most blocks hold one series (their
/// statistics then answer per-series aggregates, and their time range is the series'):
/// a series of `block_rows` rows or more is cut into equal blocks; shorter ones are packed
/// whole into a block until it holds a sixteenth of `block_rows` or the next one does not fit.
fn block_starts(key: Option<&Column>, rows: usize, block_rows: usize) -> Vec<u64> {
    let mut starts = vec![0u64];
    let Some(key) = key.filter(|k| matches!(k.values, Values::Text(_))) else {
        starts.extend((block_rows..rows).step_by(block_rows).map(|s| s as u64));
        if rows > 0 {
            starts.push(rows as u64);
        }
        return starts;
    };
    let Values::Text(v) = &key.values else { return starts };
    // Codes of one dictionary (a sorted key is coded) are equal when their values are.
    let codes = v.codes().map(|(_, c)| c);
    let same = |a: usize, b: usize| match (key.is_valid(a), key.is_valid(b)) {
        (true, true) => match codes {
            Some(c) => c[a] == c[b],
            None => v.get(a) == v.get(b),
        },
        (x, y) => x == y,
    };
    // The end of the series run holding row `s`.
    let run_end = |s: usize| {
        let mut e = s + 1;
        while e < rows && same(s, e) {
            e += 1;
        }
        e
    };
    let fill = (block_rows / 16).max(1);
    let mut s = 0;
    while s < rows {
        let e = run_end(s);
        if e - s >= block_rows {
            let parts = (e - s).div_ceil(block_rows);
            let part = (e - s).div_ceil(parts);
            starts.extend((s + part..e).step_by(part).map(|x| x as u64));
            starts.push(e as u64);
            s = e;
            continue;
        }
        let mut end = e;
        while end - s < fill && end < rows {
            let next = run_end(end);
            if next - s > block_rows {
                break;
            }
            end = next;
        }
        starts.push(end as u64);
        s = end;
    }
    starts
}

/// Values `start..end` of a column, copied.
fn slice_values(v: &Values, start: usize, end: usize) -> Values {
    match v {
        Values::Int64(v) => Values::Int64(v[start..end].to_vec()),
        Values::Timestamp(v) => Values::Timestamp(v[start..end].to_vec()),
        Values::Float64(v) => Values::Float64(v[start..end].to_vec()),
        Values::Bool(v) => Values::Bool(v[start..end].to_vec()),
        Values::Text(v) => {
            let mut out = StrVec::with_capacity(end - start, 0);
            (start..end).for_each(|i| out.push(v.get(i)));
            Values::Text(out)
        }
    }
}

/// The footer of `m`; `buf` holds the file `m` was read from, if it was (its block entries).
fn write_footer(m: &FileMeta, buf: &[u8], out: &mut Vec<u8>) {
    let s = &m.spec;
    out.put_i32(s.day);
    out.put_u64(s.seq);
    out.put_u64(m.rows);
    out.put_i64(m.min_time);
    out.put_i64(m.max_time);
    out.put_u64(s.max_lsn);
    out.put_u32(m.block_rows);
    out.put_str16(&s.sort_key);
    out.put_u32(s.replaces.len() as u32);
    for r in &s.replaces {
        out.put_u64(*r);
    }
    out.put_u32(s.sources.len() as u32);
    for (name, off) in &s.sources {
        out.put_str16(name);
        out.put_u64(*off);
    }
    out.put_u32(m.columns.len() as u32);
    out.put_u32(m.num_blocks() as u32);
    for w in m.block_starts.windows(2) {
        out.put_u32((w[1] - w[0]) as u32);
    }
    for c in &m.columns {
        out.put_str16(&c.name);
        out.put_u8(c.data_type as u8);
        out.put_u64(c.null_count);
        out.put_u64(c.dict.0);
        out.put_u32(c.dict.1);
        out.put_u32(c.dict.2);
        for b in c.blocks.iter(buf) {
            out.put_u64(b.offset);
            out.put_u32(b.stored_len);
            out.put_u32(b.raw_len);
            out.put_u32(b.crc);
            out.put_u8(b.encoding as u8);
            out.put_u32(b.null_count);
            out.put_i64(b.min);
            out.put_i64(b.max);
            let st = b.stats.clone().unwrap_or_default();
            out.put_u8(st.flags);
            out.extend_from_slice(&st.sum.to_le_bytes());
            match &st.counts {
                Some(c) => {
                    out.put_u16(c.len() as u16);
                    for &(code, n) in c {
                        out.put_u32(code);
                        out.put_u32(n);
                    }
                }
                None => out.put_u16(u16::MAX),
            }
        }
    }
}

impl FileMeta {
    /// Validates header, trailer, footer checksum and every offset, then parses the footer.
    /// Blocks are checked (CRC) when read.
    pub fn parse(buf: &[u8]) -> Result<FileMeta, FormatError> {
        let (footer, data_end, version) = container::open(buf, &MAGIC, 1..=VERSION)?;
        // The footer ends where the trailer begins.
        let footer_at = (buf.len() - container::TRAILER_LEN - footer.len()) as u64;
        let e = || corrupt("footer");
        let mut r = ByteReader::new(footer);
        let day = r.i32().ok_or_else(e)?;
        let seq = r.u64().ok_or_else(e)?;
        let rows = r.u64().ok_or_else(e)?;
        let min_time = r.i64().ok_or_else(e)?;
        let max_time = r.i64().ok_or_else(e)?;
        let max_lsn = r.u64().ok_or_else(e)?;
        let block_rows = r.u32().ok_or_else(e)?;
        let sort_key = r.str16().ok_or_else(e)?.to_string();
        let n = r.u32().ok_or_else(e)? as usize;
        let mut replaces = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            replaces.push(r.u64().ok_or_else(e)?);
        }
        let n = r.u32().ok_or_else(e)? as usize;
        let mut sources = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let name = r.str16().ok_or_else(e)?.to_string();
            sources.push((name, r.u64().ok_or_else(e)?));
        }
        let ncols = r.u32().ok_or_else(e)? as usize;
        let nblocks = r.u32().ok_or_else(e)? as usize;
        if block_rows == 0 {
            return Err(corrupt("block rows"));
        }
        let mut block_starts = Vec::with_capacity(nblocks.min(1 << 20) + 1);
        block_starts.push(0u64);
        if version >= 3 {
            // Each block's rows: between 1 and block_rows, adding up to the file's rows.
            for _ in 0..nblocks {
                let n = r.u32().ok_or_else(e)?;
                if n == 0 || n > block_rows {
                    return Err(corrupt("block length"));
                }
                block_starts.push(block_starts[block_starts.len() - 1] + n as u64);
            }
            if block_starts[nblocks] != rows {
                return Err(corrupt("block lengths"));
            }
        } else {
            if rows.div_ceil(block_rows as u64) != nblocks as u64 {
                return Err(corrupt("block count"));
            }
            block_starts.extend((1..=nblocks as u64).map(|b| (b * block_rows as u64).min(rows)));
        }
        let mut columns = Vec::with_capacity(ncols.min(4096));
        for _ in 0..ncols {
            let name = r.str16().ok_or_else(e)?.to_string();
            let data_type = DataType::from_u8(r.u8().ok_or_else(e)?).ok_or_else(|| corrupt("column type"))?;
            let null_count = r.u64().ok_or_else(e)?;
            let dict = (r.u64().ok_or_else(e)?, r.u32().ok_or_else(e)?, r.u32().ok_or_else(e)?);
            if dict.1 > 0 && (dict.0 < HEADER_LEN as u64 || dict.0 + dict.1 as u64 > data_end) {
                return Err(corrupt("dictionary offset"));
            }
            let stats = version >= 2;
            let mut at = Vec::with_capacity(nblocks.min(1 << 20));
            for _ in 0..nblocks {
                at.push(u32::try_from(r.pos()).map_err(|_| corrupt("footer length"))?);
                let b = read_entry(&mut r, stats)?;
                if b.stats.as_ref().is_some_and(|s| s.counts.is_some()) && data_type != DataType::Text {
                    return Err(corrupt("block statistics"));
                }
                if b.offset < HEADER_LEN as u64 || b.offset.saturating_add(b.stored_len as u64) > data_end {
                    return Err(corrupt("block offset"));
                }
            }
            let blocks = Blocks::InFooter { base: footer_at, at, stats };
            columns.push(ColumnMeta { name, data_type, null_count, dict, blocks });
        }
        if !r.is_empty() {
            return Err(corrupt("footer (trailing bytes)"));
        }
        let spec = FileSpec { day, seq, max_lsn, sort_key, replaces, sources };
        Ok(FileMeta { spec, rows, min_time, max_time, block_rows, block_starts, columns, file_len: buf.len() as u64 })
    }
}

/// One block's footer entry, with its statistics when the file's version has them.
fn read_entry(r: &mut ByteReader, stats: bool) -> Result<BlockMeta, FormatError> {
    let e = || corrupt("footer");
    let b = BlockMeta {
        offset: r.u64().ok_or_else(e)?,
        stored_len: r.u32().ok_or_else(e)?,
        raw_len: r.u32().ok_or_else(e)?,
        crc: r.u32().ok_or_else(e)?,
        encoding: Encoding::from_u8(r.u8().ok_or_else(e)?).ok_or_else(|| corrupt("block encoding"))?,
        null_count: r.u32().ok_or_else(e)?,
        min: r.i64().ok_or_else(e)?,
        max: r.i64().ok_or_else(e)?,
        stats: None,
    };
    Ok(if stats { BlockMeta { stats: Some(read_stats(r)?), ..b } } else { b })
}

/// A block entry's statistics (version 2); per-value counts are checked against the column's
/// type by the caller.
fn read_stats(r: &mut ByteReader) -> Result<BlockStats, FormatError> {
    let e = || corrupt("block statistics");
    let flags = r.u8().ok_or_else(e)?;
    let sum = i128::from_le_bytes(r.take(16).ok_or_else(e)?.try_into().map_err(|_| e())?);
    let n = r.u16().ok_or_else(e)?;
    let counts = if n == u16::MAX {
        None
    } else {
        let mut c = Vec::with_capacity(n as usize);
        for _ in 0..n {
            c.push((r.u32().ok_or_else(e)?, r.u32().ok_or_else(e)?));
        }
        Some(c)
    };
    if flags & !(BlockStats::NAN | BlockStats::INFINITE) != 0 {
        return Err(e());
    }
    Ok(BlockStats { flags, sum, counts })
}

/// A column's dictionary and tag index, decoded from its section.
pub struct DictSection {
    pub values: std::sync::Arc<Dictionary>,
    /// Byte ranges (within the file) of each value's roaring bitmap of rows.
    pub index: Vec<(usize, usize)>,
}

pub fn read_dict(buf: &[u8], c: &ColumnMeta) -> Result<Option<DictSection>, FormatError> {
    let (off, len, crc) = c.dict;
    if len == 0 {
        return Ok(None);
    }
    let sec = buf.get(off as usize..off as usize + len as usize).ok_or_else(|| corrupt("dictionary"))?;
    if crc32(sec) != crc {
        return Err(corrupt("dictionary checksum"));
    }
    let e = || corrupt("dictionary");
    let mut r = ByteReader::new(sec);
    let n = r.u32().ok_or_else(e)? as usize;
    let mut values = Dictionary::with_capacity(n.min(1 << 20), 0);
    for _ in 0..n {
        values.push(std::str::from_utf8(r.bytes32().ok_or_else(e)?).map_err(|_| e())?);
    }
    let mut index = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let len = r.u32().ok_or_else(e)? as usize;
        let start = off as usize + r.pos();
        r.take(len).ok_or_else(e)?;
        index.push((start, len));
    }
    Ok(Some(DictSection { values: std::sync::Arc::new(values), index }))
}

/// Decodes the rows bitmap of one dictionary value.
pub fn read_tag_rows(buf: &[u8], range: (usize, usize)) -> Result<RoaringBitmap, FormatError> {
    let bytes = buf.get(range.0..range.0 + range.1).ok_or_else(|| corrupt("tag index"))?;
    RoaringBitmap::deserialize_from(bytes).map_err(|_| corrupt("tag index bitmap"))
}

/// Decodes block `b` of column `c`: checksum, lz4, validity, values.
pub fn read_block(
    buf: &[u8],
    meta: &FileMeta,
    c: usize,
    b: usize,
    dict: Option<&std::sync::Arc<Dictionary>>,
) -> Result<Column, FormatError> {
    let col = meta.columns.get(c).ok_or_else(|| corrupt("column index"))?;
    if b >= col.blocks.len() {
        return Err(corrupt("block index"));
    }
    let bm = col.blocks.get(buf, b);
    let stored =
        container::block(buf, bm.offset, bm.stored_len, bm.crc, &|| format!("block {b} of column {}", col.name))?;
    // Blocks are decompressed into one buffer per thread, kept from block to block.
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|s| {
        let mut scratch = s.borrow_mut();
        let raw = container::decompress_into(stored, bm.raw_len, &mut scratch)?;
        decode_block(raw, meta, col, b, bm.encoding, dict)
    })
}

/// A block's column from its raw (decompressed) bytes.
fn decode_block(
    raw: &[u8],
    meta: &FileMeta,
    col: &ColumnMeta,
    b: usize,
    encoding: Encoding,
    dict: Option<&std::sync::Arc<Dictionary>>,
) -> Result<Column, FormatError> {
    let n = meta.block_len(b);
    let mut r = ByteReader::new(raw);
    let nulls = r.bytes32().ok_or_else(|| corrupt("block validity"))?;
    let validity = if nulls.is_empty() {
        None
    } else {
        let rb = RoaringBitmap::deserialize_from(nulls).map_err(|_| corrupt("block validity bitmap"))?;
        let mut v = Bitmap::new_set(n);
        for i in rb.iter() {
            if i as usize >= n {
                return Err(corrupt("block validity bitmap"));
            }
            v.set(i as usize, false);
        }
        Some(v)
    };
    let values = codec::decode(encoding, &raw[r.pos()..], n, dict).map_err(codec_err)?;
    if values.data_type() != col.data_type {
        return Err(corrupt("block encoding does not match column type"));
    }
    Ok(Column::with_validity(values, validity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(runs: &[(&str, usize)]) -> Column {
        let mut v = StrVec::with_capacity(0, 0);
        let mut valid = Vec::new();
        for &(k, n) in runs {
            for _ in 0..n {
                v.push(k);
                valid.push(!k.is_empty());
            }
        }
        let mut bm = Bitmap::new_set(valid.len());
        for (i, ok) in valid.iter().enumerate() {
            bm.set(i, *ok);
        }
        Column::with_validity(Values::Text(v), Some(bm))
    }

    /// Block lengths for series runs (an empty name is a NULL key).
    fn lengths(runs: &[(&str, usize)], block_rows: usize) -> Vec<u64> {
        let rows = runs.iter().map(|r| r.1).sum();
        let s = block_starts(Some(&keys(runs)), rows, block_rows);
        assert_eq!((s[0], *s.last().unwrap()), (0, rows as u64));
        s.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[test]
    fn blocks_end_where_series_do() {
        // Long series: cut into equal blocks, never two series in one.
        assert_eq!(lengths(&[("a", 8640), ("b", 8640)], 8192), [4320, 4320, 4320, 4320]);
        assert_eq!(lengths(&[("a", 8192), ("b", 100)], 8192), [8192, 100]);
        assert_eq!(lengths(&[("a", 20_000)], 8192), [6667, 6667, 6666]);
        // Series of a sixteenth of block_rows or more: a block each.
        assert_eq!(lengths(&[("a", 3000), ("b", 600), ("c", 3000)], 8192), [3000, 600, 3000]);
        // Shorter ones packed whole until the block holds that many, or the next does not fit.
        assert_eq!(lengths(&[("a", 100), ("b", 300), ("c", 200), ("d", 5)], 8192), [600, 5]);
        assert_eq!(lengths(&[("a", 100), ("b", 10_000)], 8192), [100, 5000, 5000]);
        assert_eq!(lengths(&[("a", 100), ("b", 8000), ("c", 50)], 8192), [8100, 50]);
        // NULL keys are a series of their own.
        assert_eq!(lengths(&[("", 5), ("a", 5)], 5), [5, 5]);
        // No sort key: every block_rows rows.
        assert_eq!(block_starts(None, 10, 4), [0, 4, 8, 10]);
        assert_eq!(block_starts(None, 0, 4), [0]);
        assert_eq!(block_starts(Some(&keys(&[])), 0, 4), [0]);
    }

    #[test]
    fn variable_blocks_round_trip_and_bad_lengths_are_refused() {
        let k = keys(&[("a", 7), ("b", 3)]);
        let t = Column::new(Values::Timestamp((0..10).collect()));
        let batch = Batch {
            fields: vec![
                crate::batch::Field::new("time", DataType::Timestamp),
                crate::batch::Field::new("k", DataType::Text),
            ],
            columns: vec![t, k],
        };
        let spec = FileSpec { sort_key: "k".into(), ..Default::default() };
        let bytes = encode_file(&spec, &batch, 4);
        let meta = FileMeta::parse(&bytes).unwrap();
        assert_eq!(meta.block_starts, [0, 4, 7, 10]);
        assert_eq!((meta.block_len(1), meta.block_of_row(6), meta.block_of_row(7)), (3, (1, 2), (2, 0)));
        let times: Vec<Vec<i64>> = (0..3)
            .map(|b| match read_block(&bytes, &meta, 0, b, None).unwrap().values {
                Values::Timestamp(t) => t,
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(times, [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
        // A block length above block_rows is refused (the footer's checksum redone).
        let mut bad = meta.clone();
        bad.block_starts = vec![0, 5, 7, 10];
        let mut out = bytes[..container::HEADER_LEN].to_vec();
        let data_end = bytes.len() - container::TRAILER_LEN - footer_len(&bytes);
        out.extend_from_slice(&bytes[container::HEADER_LEN..data_end]);
        let start = out.len();
        write_footer(&bad, &bytes, &mut out);
        container::finish(&MAGIC, start, &mut out);
        assert!(format!("{:?}", FileMeta::parse(&out).unwrap_err()).contains("block length"));
    }

    fn footer_len(bytes: &[u8]) -> usize {
        let mut out = Vec::new();
        write_footer(&FileMeta::parse(bytes).unwrap(), bytes, &mut out);
        out.len()
    }

    #[test]
    fn columns_encoded_on_several_threads_read_back() {
        // Past the size at which columns are encoded in parallel: every column, with NULLs,
        // a dictionary and a sort key, reads back as written, from offsets moved into place.
        let n = 100_000usize;
        let mut valid = Bitmap::new_set(n);
        (0..n).filter(|i| i % 7 == 3).for_each(|i| valid.set(i, false));
        let keys: Vec<String> = (0..n).map(|i| format!("M-{:03}", i / 1000)).collect();
        let batch = Batch {
            fields: vec![
                crate::batch::Field::new("time", DataType::Timestamp),
                crate::batch::Field::new("k", DataType::Text),
                crate::batch::Field::new("x", DataType::Float64),
                crate::batch::Field::new("n", DataType::Int64),
                crate::batch::Field::new("s", DataType::Text),
            ],
            columns: vec![
                Column::new(Values::Timestamp((0..n as i64).map(|i| i * 1000).collect())),
                Column::new(Values::Text(keys.iter().map(|k| k.as_str()).collect())),
                Column::with_validity(Values::Float64((0..n).map(|i| i as f64 / 8.0).collect()), Some(valid)),
                Column::new(Values::Int64((0..n as i64).map(|i| i * i).collect())),
                Column::new(Values::Text((0..n).map(|i| if i % 3 == 0 { "a" } else { "bb" }).collect())),
            ],
        };
        let spec = FileSpec { sort_key: "k".into(), ..Default::default() };
        let bytes = encode_file(&spec, &batch, 8192);
        let meta = FileMeta::parse(&bytes).unwrap();
        assert_eq!(meta.num_blocks(), 100, "one block per series of 1,000 rows");
        // The entries of an opened file stay in its footer, and each decodes to what was
        // written: the footer written again from them is the same bytes, statistics and
        // per-value counts included.
        assert!(meta.columns.iter().all(|c| matches!(c.blocks, Blocks::InFooter { .. }) && c.blocks.len() == 100));
        let data_end = bytes.len() - container::TRAILER_LEN - footer_len(&bytes);
        let mut again = Vec::new();
        write_footer(&meta, &bytes, &mut again);
        assert_eq!(again, bytes[data_end..bytes.len() - container::TRAILER_LEN]);
        assert!(
            meta.columns[1].blocks.iter(&bytes).all(|b| b.stats.and_then(|s| s.counts).is_some_and(|c| c.len() == 1))
        );
        for (c, want) in batch.columns.iter().enumerate() {
            let dict = read_dict(&bytes, &meta.columns[c]).unwrap().map(|d| d.values);
            let mut got: Option<Column> = None;
            for b in 0..meta.num_blocks() {
                let part = read_block(&bytes, &meta, c, b, dict.as_ref()).unwrap();
                match &mut got {
                    Some(g) => g.extend(&part),
                    None => got = Some(part),
                }
            }
            let got = got.unwrap();
            assert_eq!(got.validity.is_some(), want.validity.is_some(), "column {c}");
            for i in (0..n).step_by(997).chain([n - 1]) {
                assert_eq!(got.is_valid(i), want.is_valid(i), "column {c} row {i}");
                if want.is_valid(i) {
                    let same = match (&got.values, &want.values) {
                        (Values::Text(a), Values::Text(b)) => a.get(i) == b.get(i),
                        (Values::Float64(a), Values::Float64(b)) => a[i] == b[i],
                        (Values::Int64(a), Values::Int64(b)) | (Values::Timestamp(a), Values::Timestamp(b)) => {
                            a[i] == b[i]
                        }
                        _ => false,
                    };
                    assert!(same, "column {c} row {i}");
                }
            }
        }
    }
}
