//! [`Table`]: the rows of one reference table, their snapshot files and replay.
//!
//! Directory: `tables/<name>/options` (schema and key) and `tables/<name>/<lsn:020>.fds`, the
//! newest snapshot (datastore file format, `max_lsn` = the last change it contains). Replay
//! applies WAL records above the snapshot's LSN.
//!
//! Invariants: the in-memory batch always has exactly the declared columns, in order; no key
//! repeats; no declared NOT NULL column holds a null.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::batch::{Batch, Column, Field, Values};
use crate::datastore::DsFile;
use crate::datastore::file::{FileSpec, encode_file};
use crate::engine::objects::ColumnSpec;
use crate::error::{Error, IoContext, Result};
use crate::util::fsutil::{create_dir_durable, remove_tmp_files, sync_dir, write_atomic};
use crate::util::sync::{read, write};

const SNAPSHOT_EXT: &str = "fds";

/// How a write changes a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableWrite {
    /// Adds rows; a key already present is an error.
    Append = 1,
    /// Replaces the whole content (what UPDATE, DELETE and upserts log).
    Replace = 2,
}

impl TableWrite {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(TableWrite::Append),
            2 => Some(TableWrite::Replace),
            _ => None,
        }
    }
}

struct State {
    rows: Arc<Batch>,
    lsn: u64,
    snapshot_lsn: u64,
}

pub struct Table {
    name: String,
    dir: PathBuf,
    columns: Vec<ColumnSpec>,
    key: Vec<usize>,
    state: RwLock<State>,
}

/// The bytes identifying row `r`'s key (type-tagged, so `1` and `'1'` differ).
pub fn key_bytes(batch: &Batch, key: &[usize], r: usize) -> Vec<u8> {
    store_key_bytes(batch, key, r)
}

/// See [`key_bytes`]; also used to group rows in queries.
pub fn store_key_bytes(batch: &Batch, key: &[usize], r: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 * key.len());
    for &c in key {
        let col = &batch.columns[c];
        if !col.is_valid(r) {
            k.push(0);
            continue;
        }
        match &col.values {
            Values::Bool(v) => k.extend_from_slice(&[1, v[r] as u8]),
            Values::Int64(v) | Values::Timestamp(v) => {
                k.push(2);
                k.extend_from_slice(&v[r].to_le_bytes());
            }
            Values::Float64(v) => {
                k.push(3);
                k.extend_from_slice(&v[r].to_bits().to_le_bytes());
            }
            Values::Text(v) => {
                k.push(4);
                k.extend_from_slice(&(v.get(r).len() as u32).to_le_bytes());
                k.extend_from_slice(v.get(r).as_bytes());
            }
        }
    }
    k
}

impl Table {
    pub fn open(name: &str, dir: &Path, columns: Vec<ColumnSpec>, key: Vec<usize>) -> Result<Table> {
        create_dir_durable(dir).at(dir)?;
        remove_tmp_files(dir).at(dir)?;
        let mut snaps: Vec<PathBuf> = fs::read_dir(dir)
            .at(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(SNAPSHOT_EXT))
            .collect();
        snaps.sort();
        let fields: Vec<Field> =
            columns.iter().map(|c| Field { name: c.name.clone(), data_type: c.data_type }).collect();
        let (rows, lsn) = match snaps.pop() {
            Some(path) => {
                let f = DsFile::open(&path)?;
                let b = f.read_all()?;
                if b.fields != fields {
                    return Err(Error::corrupt(&path, "table snapshot columns differ from the table's schema"));
                }
                for old in snaps {
                    fs::remove_file(&old).at(&old)?;
                }
                (b, f.meta.spec.max_lsn)
            }
            None => (Batch { columns: fields.iter().map(|f| Column::nulls(f.data_type, 0)).collect(), fields }, 0),
        };
        Ok(Table {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            columns,
            key,
            state: RwLock::new(State { rows: Arc::new(rows), lsn, snapshot_lsn: lsn }),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }
    pub fn key(&self) -> &[usize] {
        &self.key
    }
    /// The current content (a snapshot: later writes do not change it).
    pub fn rows(&self) -> Arc<Batch> {
        read(&self.state).rows.clone()
    }
    pub fn max_lsn(&self) -> u64 {
        read(&self.state).lsn
    }

    /// Checks `batch` against the schema and constraints, as the content after `mode`.
    fn check(&self, current: &Batch, mode: TableWrite, batch: &Batch) -> Result<()> {
        let fields: Vec<Field> =
            self.columns.iter().map(|c| Field { name: c.name.clone(), data_type: c.data_type }).collect();
        if batch.fields != fields {
            return Err(Error::Invalid(format!("rows for table {} do not have its columns", self.name)));
        }
        for (c, spec) in batch.columns.iter().zip(&self.columns) {
            if spec.not_null && c.null_count() > 0 {
                return Err(Error::Constraint {
                    sqlstate: "23502",
                    message: format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        spec.name, self.name
                    ),
                });
            }
        }
        if self.key.is_empty() {
            return Ok(());
        }
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        if mode == TableWrite::Append {
            for r in 0..current.num_rows() {
                seen.insert(key_bytes(current, &self.key, r));
            }
        }
        for r in 0..batch.num_rows() {
            if !seen.insert(key_bytes(batch, &self.key, r)) {
                return Err(Error::Constraint {
                    sqlstate: "23505",
                    message: format!("duplicate key value violates unique constraint \"{}_pkey\"", self.name),
                });
            }
        }
        Ok(())
    }

    fn apply(st: &mut State, mode: TableWrite, batch: Batch, lsn: u64) {
        st.rows = Arc::new(match mode {
            TableWrite::Append => Batch::concat(&[st.rows.as_ref(), &batch]),
            TableWrite::Replace => batch,
        });
        st.lsn = st.lsn.max(lsn);
    }

    /// Changes the table. `log` writes the WAL record and returns its LSN while the table is
    /// locked (the same discipline as channels and datastores).
    pub fn write(&self, mode: TableWrite, batch: Batch, log: impl FnOnce(&Batch) -> Result<u64>) -> Result<u64> {
        let mut st = write(&self.state);
        self.check(&st.rows, mode, &batch)?;
        let lsn = log(&batch)?;
        Self::apply(&mut st, mode, batch, lsn);
        Ok(lsn)
    }

    /// Re-applies a WAL record on startup; records in the snapshot are skipped.
    pub fn replay(&self, mode: TableWrite, batch: Batch, lsn: u64) -> Result<()> {
        let mut st = write(&self.state);
        if lsn <= st.snapshot_lsn {
            return Ok(());
        }
        Self::apply(&mut st, mode, batch, lsn);
        Ok(())
    }

    /// Writes the content as a snapshot if it changed since the last one.
    pub fn checkpoint(&self) -> Result<()> {
        let (rows, lsn) = {
            let st = read(&self.state);
            if st.lsn <= st.snapshot_lsn {
                return Ok(());
            }
            (st.rows.clone(), st.lsn)
        };
        let path = self.dir.join(format!("{lsn:020}.{SNAPSHOT_EXT}"));
        let spec = FileSpec { seq: lsn, max_lsn: lsn, ..Default::default() };
        write_atomic(&path, &encode_file(&spec, &rows, 8192)).at(&path)?;
        let mut st = write(&self.state);
        st.snapshot_lsn = st.snapshot_lsn.max(lsn);
        drop(st);
        for e in fs::read_dir(&self.dir).at(&self.dir)? {
            let p = e.at(&self.dir)?.path();
            if p.extension().and_then(|e| e.to_str()) == Some(SNAPSHOT_EXT) && p != path {
                fs::remove_file(&p).at(&p)?;
            }
        }
        sync_dir(&self.dir).at(&self.dir)
    }
}
