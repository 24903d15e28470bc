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
/// version-1 files are still read (their blocks have no [`BlockStats`]).
pub const VERSION: u32 = 2;
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
    pub blocks: Vec<BlockMeta>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileMeta {
    pub spec: FileSpec,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub block_rows: u32,
    pub columns: Vec<ColumnMeta>,
    pub file_len: u64,
}

impl FileMeta {
    pub fn num_blocks(&self) -> usize {
        self.columns.first().map_or(0, |c| c.blocks.len())
    }
    /// Rows in block `b`.
    pub fn block_len(&self, b: usize) -> usize {
        let start = b as u64 * self.block_rows as u64;
        (self.rows - start).min(self.block_rows as u64) as usize
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
fn fill_nulls(col: &Column) -> Values {
    let Some(valid) = &col.validity else { return col.values.clone() };
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
    Column::new(col.values.clone()).take(&idx).values
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
    let mut out = Vec::with_capacity(rows * batch.columns.len() + 4096);
    container::begin(&MAGIC, VERSION, &mut out);

    let (min_time, max_time) = match batch.column("time").map(|c| &c.values) {
        Some(Values::Timestamp(t)) if !t.is_empty() => (*t.iter().min().unwrap_or(&0), *t.iter().max().unwrap_or(&0)),
        _ => (0, 0),
    };

    let mut columns = Vec::with_capacity(batch.columns.len());
    for (field, col) in batch.fields.iter().zip(&batch.columns) {
        let filled = fill_nulls(col);
        // Dictionary (sorted distinct values) and per-row codes for low-cardinality text.
        let mut dict_codes: Option<Vec<u32>> = None;
        let mut dict_section = (0u64, 0u32, 0u32);
        if let Values::Text(sv) = &filled {
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
            }
        }

        let mut blocks = Vec::with_capacity(rows.div_ceil(block_rows));
        let mut raw = Vec::new();
        for start in (0..rows).step_by(block_rows) {
            let end = (start + block_rows).min(rows);
            let values = slice_values(&filled, start, end);
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
        columns.push(ColumnMeta {
            name: field.name.clone(),
            data_type: field.data_type,
            null_count: col.null_count() as u64,
            dict: dict_section,
            blocks,
        });
    }

    let meta = FileMeta {
        spec: spec.clone(),
        rows: rows as u64,
        min_time,
        max_time,
        block_rows: block_rows as u32,
        columns,
        file_len: 0,
    };
    let footer_start = out.len();
    write_footer(&meta, &mut out);
    container::finish(&MAGIC, footer_start, &mut out);
    out
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

fn write_footer(m: &FileMeta, out: &mut Vec<u8>) {
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
    for c in &m.columns {
        out.put_str16(&c.name);
        out.put_u8(c.data_type as u8);
        out.put_u64(c.null_count);
        out.put_u64(c.dict.0);
        out.put_u32(c.dict.1);
        out.put_u32(c.dict.2);
        for b in &c.blocks {
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
        if block_rows == 0 || rows.div_ceil(block_rows as u64) != nblocks as u64 {
            return Err(corrupt("block count"));
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
            let mut blocks = Vec::with_capacity(nblocks.min(1 << 20));
            for _ in 0..nblocks {
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
                let b = if version >= 2 { BlockMeta { stats: Some(read_stats(&mut r, &data_type)?), ..b } } else { b };
                if b.offset < HEADER_LEN as u64 || b.offset.saturating_add(b.stored_len as u64) > data_end {
                    return Err(corrupt("block offset"));
                }
                blocks.push(b);
            }
            columns.push(ColumnMeta { name, data_type, null_count, dict, blocks });
        }
        if !r.is_empty() {
            return Err(corrupt("footer (trailing bytes)"));
        }
        let spec = FileSpec { day, seq, max_lsn, sort_key, replaces, sources };
        Ok(FileMeta { spec, rows, min_time, max_time, block_rows, columns, file_len: buf.len() as u64 })
    }
}

/// A block entry's statistics (version 2), checked against the column's type.
fn read_stats(r: &mut ByteReader, ty: &DataType) -> Result<BlockStats, FormatError> {
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
    if counts.is_some() && *ty != DataType::Text || flags & !(BlockStats::NAN | BlockStats::INFINITE) != 0 {
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
    let bm = col.blocks.get(b).ok_or_else(|| corrupt("block index"))?;
    let what = format!("block {b} of column {}", col.name);
    let stored = container::block(buf, bm.offset, bm.stored_len, bm.crc, &what)?;
    let raw = container::decompress(stored, bm.raw_len)?;
    let n = meta.block_len(b);
    let mut r = ByteReader::new(&raw);
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
    let values = codec::decode(bm.encoding, &raw[r.pos()..], n, dict).map_err(codec_err)?;
    if values.data_type() != col.data_type {
        return Err(corrupt("block encoding does not match column type"));
    }
    Ok(Column::with_validity(values, validity))
}
