//! [`DsFile`]: an open datastore file. Opening validates the footer and loads the text
//! dictionaries; blocks are checksummed and decoded on demand, straight from the memory map.

use std::path::{Path, PathBuf};

use roaring::RoaringBitmap;

use super::file::{self, DictSection, FileMeta};
use crate::batch::{Batch, Column, Field, Values};
use crate::error::{Error, IoContext, Result};
use crate::util::container::FormatError;
use crate::util::mmap::Backing;

pub struct DsFile {
    pub path: PathBuf,
    data: Backing,
    pub meta: FileMeta,
    dicts: Vec<Option<DictSection>>,
}

/// Sum with eight independent accumulators: the additions pipeline (and vectorise) instead of
/// waiting on one another.
fn sum_f64(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f64>() + rest.iter().sum::<f64>()
}

impl std::fmt::Debug for DsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DsFile({}, {} rows)", self.path.display(), self.meta.rows)
    }
}

fn format_err(path: &Path, e: FormatError) -> Error {
    match e {
        FormatError::Corrupt(what) => Error::corrupt(path, what),
        FormatError::Version(found) => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: "datastore file",
            found,
            supported: file::VERSION,
        },
    }
}

impl DsFile {
    pub fn open(path: &Path) -> Result<DsFile> {
        let data = Backing::map(path).at(path)?;
        Self::from_backing(path.to_path_buf(), data)
    }

    /// Opens file bytes held in memory (fuzzing, tests).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<DsFile> {
        Self::from_backing(PathBuf::from("<memory>"), Backing::Owned(bytes))
    }

    fn from_backing(path: PathBuf, data: Backing) -> Result<DsFile> {
        let buf = data.bytes();
        let meta = FileMeta::parse(buf).map_err(|e| format_err(&path, e))?;
        let dicts = meta
            .columns
            .iter()
            .map(|c| file::read_dict(buf, c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format_err(&path, e))?;
        // Per-value counts name dictionary codes and add up to the block's present rows: a
        // query answered from them must never read past the dictionary or count wrong.
        for (c, d) in meta.columns.iter().zip(&dicts) {
            for (b, bm) in c.blocks.iter(buf).enumerate() {
                let Some(counts) = bm.stats.as_ref().and_then(|s| s.counts.as_ref()) else { continue };
                let n = d.as_ref().map_or(0, |d| d.values.len());
                let total: u64 = counts.iter().map(|&(_, k)| k as u64).sum();
                if counts.iter().any(|&(code, _)| code as usize >= n)
                    || total + bm.null_count as u64 != meta.block_len(b) as u64
                {
                    return Err(format_err(&path, crate::util::container::corrupt("block value counts")));
                }
            }
        }
        Ok(DsFile { path, data, meta, dicts })
    }

    /// Block `b`'s entry of column `c` (decoded from the footer: see [`file::Blocks`]).
    pub fn block_meta(&self, c: usize, b: usize) -> file::BlockMeta {
        self.meta.columns[c].blocks.get(self.bytes(), b)
    }

    /// Column `c`'s dictionary (sorted distinct values), when it has one.
    pub fn dictionary(&self, c: usize) -> Option<&std::sync::Arc<crate::batch::StrVec>> {
        self.dicts.get(c).and_then(|d| d.as_ref()).map(|d| &d.values)
    }

    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }

    pub fn fields(&self) -> Vec<Field> {
        self.meta.columns.iter().map(|c| Field { name: c.name.clone(), data_type: c.data_type }).collect()
    }

    /// Block `b` of column `c`.
    pub fn block(&self, c: usize, b: usize) -> Result<Column> {
        let dict = self.dicts.get(c).and_then(|d| d.as_ref()).map(|d| &d.values);
        file::read_block(self.bytes(), &self.meta, c, b, dict).map_err(|e| format_err(&self.path, e))
    }

    /// The whole of column `c`.
    pub fn column(&self, c: usize) -> Result<Column> {
        let mut out: Option<Column> = None;
        for b in 0..self.meta.num_blocks() {
            let col = self.block(c, b)?;
            match &mut out {
                Some(o) => o.extend(&col),
                None => out = Some(col),
            }
        }
        Ok(out.unwrap_or_else(|| Column::new(Values::new(self.meta.columns[c].data_type))))
    }

    /// All rows, all columns.
    pub fn read_all(&self) -> Result<Batch> {
        let columns = (0..self.meta.columns.len()).map(|c| self.column(c)).collect::<Result<Vec<_>>>()?;
        Ok(Batch { fields: self.fields(), columns })
    }

    /// Rows (file row numbers) whose text column `c` equals `value`; `None` when the column
    /// has no tag index (high cardinality or not text).
    pub fn tag_rows(&self, c: usize, value: &str) -> Result<Option<RoaringBitmap>> {
        let Some(Some(d)) = self.dicts.get(c) else { return Ok(None) };
        let Ok(pos) = d.values.iter().collect::<Vec<_>>().binary_search(&value) else {
            return Ok(Some(RoaringBitmap::new()));
        };
        file::read_tag_rows(self.bytes(), d.index[pos]).map(Some).map_err(|e| format_err(&self.path, e))
    }

    /// For text column `c`, when it has a tag index: each value `wanted` accepts, with the last
    /// row (file row number) that holds it. In a file sorted by `c` (its `sort_key`), then
    /// time, that row has the value's latest time in the file. `None` without a tag index.
    pub fn last_row_of_values(&self, c: usize, wanted: impl Fn(&str) -> bool) -> Result<Option<Vec<(String, u32)>>> {
        let Some(Some(d)) = self.dicts.get(c) else { return Ok(None) };
        let mut out = Vec::new();
        for (i, v) in d.values.iter().enumerate() {
            if !wanted(v) {
                continue;
            }
            let rows = file::read_tag_rows(self.bytes(), d.index[i]).map_err(|e| format_err(&self.path, e))?;
            if let Some(last) = rows.max() {
                out.push((v.to_string(), last));
            }
        }
        Ok(Some(out))
    }

    /// Sum and count of the present values of a float column, block by block.
    pub fn sum_f64(&self, c: usize) -> Result<(f64, u64)> {
        let (mut sum, mut n) = (0.0, 0u64);
        for b in 0..self.meta.num_blocks() {
            let col = self.block(c, b)?;
            if let Values::Float64(v) = &col.values {
                match &col.validity {
                    None => {
                        sum += sum_f64(v);
                        n += v.len() as u64;
                    }
                    Some(valid) => {
                        for (i, x) in v.iter().enumerate() {
                            if valid.get(i) {
                                sum += x;
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        Ok((sum, n))
    }

    /// Reads every block and every tag index: a full integrity check.
    pub fn verify(&self) -> Result<()> {
        for c in 0..self.meta.columns.len() {
            for b in 0..self.meta.num_blocks() {
                self.block(c, b)?;
            }
            if let Some(Some(d)) = self.dicts.get(c) {
                for &r in &d.index {
                    let rows = file::read_tag_rows(self.bytes(), r).map_err(|e| format_err(&self.path, e))?;
                    if rows.max().is_some_and(|m| m as u64 >= self.meta.rows) {
                        return Err(Error::corrupt(&self.path, "tag index row out of range"));
                    }
                }
            }
        }
        Ok(())
    }
}
