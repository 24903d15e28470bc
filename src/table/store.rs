//! [`Table`]: the rows of one reference table, their snapshot files and replay.
//!
//! Directory: `tables/<name>/options` (schema and key at creation or the last rename),
//! `tables/<name>/<lsn:020>.fds`, the newest snapshot (datastore file format, `max_lsn` = the
//! last change it contains), and `<lsn:020>.schema` beside it when the snapshot was taken under
//! a schema other than the options file's (after ALTER TABLE; options encoding). Replay applies
//! WAL records above the snapshot's LSN: writes (kind 3) and schema changes (kind 4, the new
//! schema with the whole new content).
//!
//! Invariants: the in-memory batch always has exactly the current schema's columns, in order;
//! no key repeats; no NOT NULL column holds a null; schema and content change together.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::batch::{Batch, Column, Field, Values};
use crate::datastore::DsFile;
use crate::datastore::file::{FileSpec, encode_file};
use crate::error::{Error, IoContext, Result};
use crate::objects::{self, ColumnSpec, KIND_TABLE, ObjectOptions};
use crate::util::fsutil::{create_dir_durable, remove_tmp_files, sync_dir, write_atomic};
use crate::util::sync::{read, write};

const SNAPSHOT_EXT: &str = "fds";
const SCHEMA_EXT: &str = "schema";

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

/// A table's columns and primary key (column positions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    pub columns: Vec<ColumnSpec>,
    pub key: Vec<usize>,
}

impl TableSchema {
    pub fn fields(&self) -> Vec<Field> {
        self.columns.iter().map(|c| Field { name: c.name.clone(), data_type: c.data_type }).collect()
    }
    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }
    pub fn from_options(o: &ObjectOptions) -> TableSchema {
        TableSchema { columns: o.columns.clone(), key: o.primary_key.iter().map(|&k| k as usize).collect() }
    }
    pub fn to_options(&self, created_lsn: u64) -> ObjectOptions {
        ObjectOptions {
            columns: self.columns.clone(),
            primary_key: self.key.iter().map(|&k| k as u16).collect(),
            created_lsn,
            ..ObjectOptions::new(KIND_TABLE)
        }
    }
}

struct State {
    schema: Arc<TableSchema>,
    rows: Arc<Batch>,
    lsn: u64,
    snapshot_lsn: u64,
    /// Set while the table is renamed: writes are refused.
    closed: bool,
}

pub struct Table {
    name: String,
    dir: PathBuf,
    /// The schema in the options file; snapshots taken under another one carry a schema file.
    created: TableSchema,
    state: RwLock<State>,
}

/// The bytes identifying row `r`'s key (type-tagged, so `1` and `'1'` differ).
pub(super) fn key_bytes(batch: &Batch, key: &[usize], r: usize) -> Vec<u8> {
    store_key_bytes(batch, key, r)
}

/// See [`key_bytes`]; also used to group rows in queries.
pub fn store_key_bytes(batch: &Batch, key: &[usize], r: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 * key.len());
    append_key_bytes(batch, key, r, &mut k);
    k
}

/// [`store_key_bytes`], appended to `k` (one buffer for many keys).
pub fn append_key_bytes(batch: &Batch, key: &[usize], r: usize, k: &mut Vec<u8>) {
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
}

/// The LSN a snapshot or schema file is named by (`<lsn:020>.<ext>`).
fn file_lsn(p: &Path, ext: &str) -> Option<u64> {
    if p.extension().and_then(|e| e.to_str()) != Some(ext) {
        return None;
    }
    p.file_stem()?.to_str()?.parse().ok()
}

impl Table {
    /// Opens the table in `dir` whose options file holds `options`: loads the newest snapshot
    /// under the schema it was taken with.
    pub fn open(name: &str, dir: &Path, options: &ObjectOptions) -> Result<Table> {
        create_dir_durable(dir).at(dir)?;
        remove_tmp_files(dir).at(dir)?;
        let files: Vec<PathBuf> = fs::read_dir(dir).at(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        let snapshot = files.iter().filter_map(|p| Some((file_lsn(p, SNAPSHOT_EXT)?, p.clone()))).max();
        let created = TableSchema::from_options(options);
        let mut schema = created.clone();
        // Schema files other than the newest snapshot's are older or from a checkpoint that
        // stopped before its snapshot was written.
        for p in &files {
            match file_lsn(p, SCHEMA_EXT) {
                Some(lsn) if snapshot.as_ref().map(|s| s.0) == Some(lsn) => {
                    schema = TableSchema::from_options(&objects::read_file(p)?);
                }
                Some(_) => fs::remove_file(p).at(p)?,
                None => {}
            }
        }
        let fields = schema.fields();
        let (rows, lsn) = match &snapshot {
            Some((_, path)) => {
                let f = DsFile::open(path)?;
                let b = f.read_all()?;
                if b.fields != fields {
                    return Err(Error::corrupt(path, "table snapshot columns differ from the table's schema"));
                }
                for p in files.iter().filter(|p| file_lsn(p, SNAPSHOT_EXT).is_some() && *p != path) {
                    fs::remove_file(p).at(p)?;
                }
                (b, f.meta.spec.max_lsn)
            }
            None => (Batch { columns: fields.iter().map(|f| Column::nulls(f.data_type, 0)).collect(), fields }, 0),
        };
        Ok(Table {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            created,
            state: RwLock::new(State {
                schema: Arc::new(schema),
                rows: Arc::new(rows),
                lsn,
                snapshot_lsn: lsn,
                closed: false,
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// The current columns and key.
    pub fn schema(&self) -> Arc<TableSchema> {
        read(&self.state).schema.clone()
    }
    /// The current content (a snapshot: later writes do not change it).
    pub fn rows(&self) -> Arc<Batch> {
        read(&self.state).rows.clone()
    }
    /// The current schema and content, taken together.
    pub fn snapshot(&self) -> (Arc<TableSchema>, Arc<Batch>) {
        let st = read(&self.state);
        (st.schema.clone(), st.rows.clone())
    }
    pub fn max_lsn(&self) -> u64 {
        read(&self.state).lsn
    }

    fn changed_error(&self) -> Error {
        Error::Conflict(format!("table \"{}\" changed while the statement ran; run it again", self.name))
    }

    /// Checks `batch` against `schema` and its constraints, as the content after `mode`.
    fn check(&self, schema: &TableSchema, current: &Batch, mode: TableWrite, batch: &Batch) -> Result<()> {
        if batch.fields != schema.fields() {
            return Err(self.changed_error());
        }
        for (c, spec) in batch.columns.iter().zip(&schema.columns) {
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
        if schema.key.is_empty() {
            return Ok(());
        }
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        if mode == TableWrite::Append {
            for r in 0..current.num_rows() {
                seen.insert(key_bytes(current, &schema.key, r));
            }
        }
        for r in 0..batch.num_rows() {
            if !seen.insert(key_bytes(batch, &schema.key, r)) {
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

    /// Changes the table. `base`, when given, is the content the write was computed from: if
    /// the table changed since, nothing is written and the error is a [`Error::Conflict`].
    /// `log` writes the WAL record and returns its LSN while the table is locked (the same
    /// discipline as channels and datastores).
    pub fn write(
        &self,
        mode: TableWrite,
        batch: Batch,
        base: Option<&Arc<Batch>>,
        log: impl FnOnce(&Batch) -> Result<u64>,
    ) -> Result<u64> {
        let mut st = write(&self.state);
        if st.closed || base.is_some_and(|b| !Arc::ptr_eq(b, &st.rows)) {
            return Err(self.changed_error());
        }
        self.check(&st.schema, &st.rows, mode, &batch)?;
        let lsn = log(&batch)?;
        Self::apply(&mut st, mode, batch, lsn);
        Ok(lsn)
    }

    /// Replaces the schema and the content together (ALTER TABLE), computed from `base`, as
    /// [`Table::write`] does.
    pub fn alter(
        &self,
        schema: TableSchema,
        rows: Batch,
        base: &Arc<Batch>,
        log: impl FnOnce(&TableSchema, &Batch) -> Result<u64>,
    ) -> Result<u64> {
        let mut st = write(&self.state);
        if st.closed || !Arc::ptr_eq(base, &st.rows) {
            return Err(self.changed_error());
        }
        if schema.columns.is_empty() || schema.key.iter().any(|&k| k >= schema.columns.len()) {
            return Err(Error::Invalid(format!("table {} needs at least one column", self.name)));
        }
        self.check(&schema, &st.rows, TableWrite::Replace, &rows)?;
        let lsn = log(&schema, &rows)?;
        st.schema = Arc::new(schema);
        Self::apply(&mut st, TableWrite::Replace, rows, lsn);
        Ok(lsn)
    }

    /// Re-applies a WAL record on startup; records in the snapshot are skipped.
    pub fn replay(&self, mode: TableWrite, batch: Batch, lsn: u64) -> Result<()> {
        let mut st = write(&self.state);
        if lsn <= st.snapshot_lsn {
            return Ok(());
        }
        if batch.fields != st.schema.fields() {
            return Err(Error::corrupt(
                &self.dir,
                format!("WAL record {lsn} does not have table {}'s columns", self.name),
            ));
        }
        Self::apply(&mut st, mode, batch, lsn);
        Ok(())
    }

    /// Re-applies a schema change on startup.
    pub fn replay_alter(&self, schema: TableSchema, batch: Batch, lsn: u64) -> Result<()> {
        let mut st = write(&self.state);
        if lsn <= st.snapshot_lsn {
            return Ok(());
        }
        if batch.fields != schema.fields() {
            return Err(Error::corrupt(&self.dir, format!("WAL record {lsn} does not match its own schema")));
        }
        st.schema = Arc::new(schema);
        Self::apply(&mut st, TableWrite::Replace, batch, lsn);
        Ok(())
    }

    /// Writes the content as a snapshot if it changed since the last one.
    pub fn checkpoint(&self) -> Result<()> {
        let (schema, rows, lsn) = {
            let st = read(&self.state);
            if st.lsn <= st.snapshot_lsn {
                return Ok(());
            }
            (st.schema.clone(), st.rows.clone(), st.lsn)
        };
        self.write_snapshot(&schema, &rows, lsn)?;
        let mut st = write(&self.state);
        st.snapshot_lsn = st.snapshot_lsn.max(lsn);
        Ok(())
    }

    /// Writes `lsn`'s schema file (when the schema is not the options file's) and snapshot,
    /// then deletes the older ones.
    fn write_snapshot(&self, schema: &TableSchema, rows: &Batch, lsn: u64) -> Result<()> {
        let schema_path = self.dir.join(format!("{lsn:020}.{SCHEMA_EXT}"));
        if *schema != self.created {
            objects::write_file(&schema_path, &schema.to_options(0))?;
        }
        let path = self.dir.join(format!("{lsn:020}.{SNAPSHOT_EXT}"));
        let spec = FileSpec { seq: lsn, max_lsn: lsn, ..Default::default() };
        write_atomic(&path, &encode_file(&spec, rows, 8192)).at(&path)?;
        for e in fs::read_dir(&self.dir).at(&self.dir)? {
            let p = e.at(&self.dir)?.path();
            let old = file_lsn(&p, SNAPSHOT_EXT).or_else(|| file_lsn(&p, SCHEMA_EXT)).is_some_and(|l| l != lsn);
            if old || (p == schema_path && *schema == self.created) {
                fs::remove_file(&p).at(&p)?;
            }
        }
        sync_dir(&self.dir).at(&self.dir)
    }

    /// Stops all writes and snapshots the content with its schema, so the directory alone
    /// holds the table (before it is renamed). `reopen` undoes the stop on failure.
    pub fn close_for_rename(&self) -> Result<(Arc<TableSchema>, u64)> {
        let mut st = write(&self.state);
        st.closed = true;
        let lsn = st.lsn;
        let (schema, rows) = (st.schema.clone(), st.rows.clone());
        if let Err(e) = self.write_snapshot(&schema, &rows, lsn) {
            st.closed = false;
            return Err(e);
        }
        st.snapshot_lsn = lsn;
        Ok((schema, lsn))
    }

    pub fn reopen(&self) {
        write(&self.state).closed = false;
    }
}
