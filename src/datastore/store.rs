//! [`Datastore`]: one datastore's memtable and files, with flush, compaction and retention.
//!
//! Invariants:
//! - Files are immutable; a partition's rows are exactly its files plus its memtable batches.
//! - Flush and compaction publish new files and retire what they replace (memtable batches or
//!   older files) under one write lock, so a [`Snapshot`] sees every row exactly once.
//! - Replay is idempotent per partition: a WAL record whose LSN is at most the partition's
//!   highest file LSN is already in a file and is skipped.
//! - This module never reads the wall clock: retention takes `now` from the caller.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::file::{self, FileSpec};
use super::reader::DsFile;
use super::schema::{conform, reconcile};
use crate::batch::{Batch, DataType, Field, Values, dictionary};
use crate::error::{Error, IoContext, Result};
use crate::util::fsutil::{create_dir_durable, remove_tmp_files, sync_dir, write_atomic};
use crate::util::memory::{MemoryPool, Reservation};
use crate::util::recfile;
use crate::util::sync::{read, write};
use crate::util::time::{MICROS_PER_DAY, day_name, day_of, parse_day_name};

pub(super) const FILE_EXT: &str = "fds";
/// `{ magic: "FLEETFLR" | version: u32 | day: i32 | crc32: u32 }`: partitions before `day` were
/// dropped by retention; replay skips rows for them.
pub(super) const FLOOR_FILE: &str = "retention_floor";
const FLOOR_MAGIC: [u8; 8] = *b"FLEETFLR";
const FLOOR_VERSION: u32 = 1;
/// `{ magic: "FLEETSRC" | version: u32 | count: u32 | (key: bytes16, offset: u64)* | crc32: u32 }`:
/// how far the datastore has consumed each source, as of the last flush. Kept apart from the
/// partitions so a position survives retention and batches that produced no rows.
pub(super) const SOURCES_FILE: &str = "sources";
const SOURCES_MAGIC: [u8; 8] = *b"FLEETSRC";
const SOURCES_VERSION: u32 = 1;

fn read_floor(dir: &Path) -> Result<i32> {
    let Some(b) = recfile::read(&dir.join(FLOOR_FILE), &FLOOR_MAGIC, FLOOR_VERSION, "retention floor")? else {
        return Ok(i32::MIN);
    };
    let day: [u8; 4] = b.try_into().map_err(|_| Error::corrupt(dir.join(FLOOR_FILE), "retention floor"))?;
    Ok(i32::from_le_bytes(day))
}

fn write_floor(dir: &Path, day: i32) -> Result<()> {
    recfile::write(&dir.join(FLOOR_FILE), &FLOOR_MAGIC, FLOOR_VERSION, &day.to_le_bytes())
}

fn read_sources(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let path = dir.join(SOURCES_FILE);
    let Some(body) = recfile::read(&path, &SOURCES_MAGIC, SOURCES_VERSION, "sources file")? else {
        return Ok(BTreeMap::new());
    };
    let bad = || Error::corrupt(&path, "sources file");
    let mut r = crate::util::bytes::ByteReader::new(&body);
    let mut out = BTreeMap::new();
    for _ in 0..r.u32().ok_or_else(bad)? {
        let key = r.str16().ok_or_else(bad)?.to_string();
        out.insert(key, r.u64().ok_or_else(bad)?);
    }
    if !r.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn write_sources(dir: &Path, sources: &BTreeMap<String, u64>) -> Result<()> {
    use crate::util::bytes::PutBytes;
    let mut b = Vec::new();
    b.put_u32(sources.len() as u32);
    for (k, o) in sources {
        b.put_str16(k);
        b.put_u64(*o);
    }
    recfile::write(&dir.join(SOURCES_FILE), &SOURCES_MAGIC, SOURCES_VERSION, &b)
}

/// Datastore settings. Defaults are in [`DatastoreOptions::default`].
#[derive(Clone, Debug)]
pub struct DatastoreOptions {
    /// Days of data kept, counted in whole partitions; `None` keeps everything. Default `None`.
    pub retention_days: Option<u32>,
    /// Text column whose values group rows inside a file (then time). `None` picks, at each
    /// flush, the first text column with at most one distinct value per 4 rows. Default `None`.
    pub series_key: Option<String>,
    /// Rows per block (1..=1,048,576). Default 8,192.
    pub block_rows: u32,
    /// Memtable rows above which [`Datastore::needs_flush`] says yes. Default 1,000,000.
    pub memtable_rows: usize,
    /// A memtable that has had no append for this long is flushed too, whatever its size, so
    /// that rows at rest are read from files (sorted, with statistics); `None`: never.
    /// Default 30 s.
    pub idle_flush: Option<std::time::Duration>,
    /// Files in a partition from which compaction merges them. Default 4.
    pub compact_min_files: usize,
    /// Most rows one compaction merges (it holds them all in memory): the smallest files of
    /// a partition are merged up to this; larger files stay as they are. Default 2,000,000.
    pub compact_max_rows: u64,
    /// Columns declared at creation (`CREATE DATASTORE d (x DOUBLE PRECISION, …)`): part of
    /// the schema, after `time`, before any row is written. Default none.
    pub declared: Vec<Field>,
    /// The server's memory: a flush's working memory (sorting and encoding a memtable) and a
    /// compaction's are charged to it. One pool for every datastore of an engine (and its
    /// queries). Default a pool of its own without a limit.
    pub memory: Arc<MemoryPool>,
}

impl Default for DatastoreOptions {
    fn default() -> Self {
        DatastoreOptions {
            retention_days: None,
            series_key: None,
            block_rows: 8192,
            memtable_rows: 1_000_000,
            idle_flush: Some(std::time::Duration::from_secs(30)),
            compact_min_files: 4,
            compact_max_rows: 2_000_000,
            declared: Vec::new(),
            memory: Arc::new(MemoryPool::unlimited()),
        }
    }
}

#[derive(Clone)]
struct MemBatch {
    batch: Arc<Batch>,
    /// Its earliest and latest `time`.
    times: (i64, i64),
    lsn: u64,
    source: Option<(String, u64)>,
}

struct Partition {
    files: Vec<Arc<DsFile>>,
    mem: Vec<MemBatch>,
    /// Changes whenever the partition's rows change (appends, deletes; not flushes or
    /// compactions): what incremental dataset refreshes compare.
    generation: u64,
    /// The time range of each recent change, by the generation it made (at most
    /// [`CHANGES_KEPT`], oldest first): which part of the day changed since a generation.
    changes: std::collections::VecDeque<(u64, i64, i64)>,
}

/// Changes remembered per partition; older ones count as the whole day.
const CHANGES_KEPT: usize = 256;

impl Default for Partition {
    fn default() -> Self {
        Partition {
            files: Vec::new(),
            mem: Vec::new(),
            generation: next_generation(),
            changes: std::collections::VecDeque::new(),
        }
    }
}

impl Partition {
    /// Records a change of rows between times `lo` and `hi` (inclusive).
    fn changed(&mut self, lo: i64, hi: i64) {
        self.generation = next_generation();
        if self.changes.len() == CHANGES_KEPT {
            self.changes.pop_front();
        }
        self.changes.push_back((self.generation, lo, hi));
    }
}

/// Partition generations, unique within the process (they are never stored).
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Partition {
    fn file_max_lsn(&self) -> u64 {
        self.files.iter().map(|f| f.meta.spec.max_lsn).max().unwrap_or(0)
    }
}

struct State {
    parts: BTreeMap<i32, Partition>,
    /// Partitions before this day were dropped by retention (persisted in [`FLOOR_FILE`]).
    floor_day: i32,
    schema: Vec<Field>,
    mem_rows: usize,
    /// When rows were last appended to the memtable.
    last_append: Option<std::time::Instant>,
    /// Approximate bytes of the memtable's rows (`Batch::approx_bytes`).
    mem_bytes: usize,
    /// Source positions in files or the sources file.
    sources: BTreeMap<String, u64>,
    /// Source positions appended since the last flush: offset and the append's LSN.
    mem_sources: BTreeMap<String, (u64, u64)>,
}

pub struct Datastore {
    name: String,
    dir: PathBuf,
    opts: DatastoreOptions,
    /// Days kept; starts from the options, changed by ALTER … SET.
    retention: crate::util::sync::Retention,
    state: RwLock<State>,
    /// Serialises flush, compaction and retention (writers of files).
    maint: Mutex<()>,
    next_seq: AtomicU64,
}

/// A consistent view: the files and memtable batches at one instant, and the schema.
/// Most columns a datastore may have (PostgreSQL's limit on a table's): an append that would
/// add columns past it is refused (54011), before anything is logged.
pub const MAX_COLUMNS: usize = 1_600;

#[derive(Clone)]
pub struct Snapshot {
    pub schema: Vec<Field>,
    pub files: Vec<Arc<DsFile>>,
    pub mem: Vec<Arc<Batch>>,
    /// The earliest and latest `time` of each memtable batch, in the order of `mem`.
    pub mem_times: Vec<(i64, i64)>,
}

impl Snapshot {
    pub fn num_rows(&self) -> u64 {
        self.files.iter().map(|f| f.meta.rows).sum::<u64>() + self.mem.iter().map(|b| b.num_rows() as u64).sum::<u64>()
    }
    /// Every row, every column of the schema (files first, then memtable).
    pub fn read_all(&self) -> Result<Batch> {
        let mut parts = Vec::with_capacity(self.files.len() + self.mem.len());
        for f in &self.files {
            parts.push(conform(&self.schema, &f.read_all()?));
        }
        for b in &self.mem {
            parts.push(conform(&self.schema, b));
        }
        let refs: Vec<&Batch> = parts.iter().collect();
        Ok(conform(&self.schema, &Batch::concat(&refs)))
    }
}

impl Datastore {
    /// Opens (creating if needed) the datastore in `dir`, loading every partition's files and
    /// finishing any compaction a crash interrupted (crash case 4 in storage-format.md).
    pub fn open(name: &str, dir: &Path, opts: DatastoreOptions) -> Result<Datastore> {
        create_dir_durable(dir).at(dir)?;
        let floor_day = read_floor(dir)?;
        let mut sources = read_sources(dir)?;
        let mut parts: BTreeMap<i32, Partition> = BTreeMap::new();
        let mut max_seq = 0;
        // Every datastore has `time`, from its creation on; other columns are declared or
        // come with the first rows that carry them.
        let mut schema = vec![Field::new("time", crate::batch::DataType::Timestamp)];
        schema.extend(opts.declared.iter().filter(|f| f.name != "time").cloned());
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let Some(day) = entry.file_name().to_str().and_then(parse_day_name) else { continue };
            let pdir = entry.path();
            if day < floor_day {
                // A retention drop that a crash interrupted: finish it.
                fs::remove_dir_all(&pdir).at(&pdir)?;
                continue;
            }
            remove_tmp_files(&pdir).at(&pdir)?;
            let mut files = Vec::new();
            for f in fs::read_dir(&pdir).at(&pdir)? {
                let path = f.at(&pdir)?.path();
                if path.extension().and_then(|e| e.to_str()) == Some(FILE_EXT) {
                    files.push(Arc::new(DsFile::open(&path)?));
                }
            }
            let replaced: HashSet<u64> = files.iter().flat_map(|f| f.meta.spec.replaces.clone()).collect();
            let mut kept = Vec::new();
            for f in files {
                if replaced.contains(&f.meta.spec.seq) {
                    fs::remove_file(&f.path).at(&f.path)?;
                } else {
                    kept.push(f);
                }
            }
            if !replaced.is_empty() {
                sync_dir(&pdir).at(&pdir)?;
            }
            kept.sort_by_key(|f| f.meta.spec.seq);
            for f in &kept {
                max_seq = max_seq.max(f.meta.spec.seq);
            }
            parts.insert(day, Partition { files: kept, ..Default::default() });
        }
        // Schema: the union of the files' columns, oldest file first.
        let mut all: Vec<&Arc<DsFile>> = parts.values().flat_map(|p| &p.files).collect();
        all.sort_by_key(|f| f.meta.spec.seq);
        for f in all {
            let empty = Batch {
                fields: f.fields(),
                columns: f.fields().iter().map(|fl| crate::batch::Column::nulls(fl.data_type, 0)).collect(),
            };
            reconcile(&mut schema, empty);
            for (k, o) in &f.meta.spec.sources {
                let e = sources.entry(k.clone()).or_insert(*o);
                *e = (*e).max(*o);
            }
        }
        Ok(Datastore {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            retention: crate::util::sync::Retention::new(opts.retention_days),
            opts,
            state: RwLock::new(State {
                parts,
                floor_day,
                schema,
                mem_rows: 0,
                last_append: None,
                mem_bytes: 0,
                sources,
                mem_sources: BTreeMap::new(),
            }),
            maint: Mutex::new(()),
            next_seq: AtomicU64::new(max_seq + 1),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn options(&self) -> &DatastoreOptions {
        &self.opts
    }
    /// Days of data kept, `None` for unlimited.
    pub fn retention_days(&self) -> Option<u32> {
        self.retention.get()
    }
    pub fn set_retention_days(&self, days: Option<u32>) {
        self.retention.set(days)
    }
    /// Each partition's day and generation: a day whose generation differs from an earlier
    /// call's (or that appeared or went) had rows added or removed in between.
    pub fn day_generations(&self) -> Vec<(i32, u64)> {
        read(&self.state).parts.iter().map(|(d, p)| (*d, p.generation)).collect()
    }

    /// The time ranges (inclusive) where rows were added or removed since `before` (a
    /// [`Datastore::day_generations`] answer): the recorded ranges of each changed
    /// partition, or its whole day when its changes since are no longer all remembered or
    /// it appeared or went.
    pub fn changed_ranges(&self, before: &[(i32, u64)]) -> Vec<(i64, i64)> {
        let st = read(&self.state);
        let whole = |d: i32| (d as i64 * MICROS_PER_DAY, (d as i64 + 1) * MICROS_PER_DAY - 1);
        let mut out = Vec::new();
        for (day, p) in &st.parts {
            match before.iter().find(|(d, _)| d == day) {
                Some((_, g)) if *g == p.generation => {}
                Some((_, g)) if p.changes.front().is_some_and(|(first, _, _)| first <= g) => {
                    out.extend(p.changes.iter().filter(|(c, _, _)| c > g).map(|(_, lo, hi)| (*lo, *hi)));
                }
                _ => out.push(whole(*day)),
            }
        }
        out.extend(before.iter().filter(|(d, _)| !st.parts.contains_key(d)).map(|(d, _)| whole(*d)));
        out
    }

    pub fn schema(&self) -> Vec<Field> {
        read(&self.state).schema.clone()
    }

    /// Adds a declared column (ALTER … ADD COLUMN): rows written before read it as NULL.
    /// Returns false if a column of that name exists.
    pub fn declare(&self, field: Field) -> bool {
        let mut st = write(&self.state);
        if st.schema.iter().any(|f| f.name == field.name) {
            return false;
        }
        st.schema.push(field);
        true
    }

    /// Adds rows written under WAL record `lsn`. `batch` needs a non-null timestamp column
    /// `time`. Rows go to the memtable partition of their day; partitions whose files already
    /// hold `lsn` skip them (replay), and rows older than a partition retention has dropped
    /// are expired on arrival. `source` is the pipeline position this batch reaches.
    pub fn append(&self, batch: Batch, lsn: u64, source: Option<(String, u64)>) -> Result<()> {
        self.append_logged(batch, source, |_| Ok(lsn)).map(|_| ())
    }

    /// Like [`Datastore::append`], but `log` writes the WAL record and returns its LSN while
    /// the datastore is locked, so a concurrent checkpoint either sees the rows in the memtable
    /// or a later LSN. Returns the LSN.
    pub fn append_logged(
        &self,
        batch: Batch,
        source: Option<(String, u64)>,
        log: impl FnOnce(&Batch) -> Result<u64>,
    ) -> Result<u64> {
        let days = self.days_of(&batch)?;
        let mut st = write(&self.state);
        self.check_width(&st, &batch)?;
        let lsn = log(&batch)?;
        if let Some((k, o)) = &source
            && st.sources.get(k).is_none_or(|d| d < o)
            && st.mem_sources.get(k).is_none_or(|m| m.0 < *o)
        {
            st.mem_sources.insert(k.clone(), (*o, lsn));
        }
        if days.is_empty() {
            return Ok(lsn);
        }
        let batch = reconcile(&mut st.schema, batch);
        for (day, b) in split_by_day(batch, &days) {
            // Rows of a partition that retention already dropped are expired on arrival, live
            // and on replay alike, so a crash never changes what is stored.
            if day < st.floor_day {
                continue;
            }
            let p = st.parts.entry(day).or_default();
            if lsn > 0 && lsn <= p.file_max_lsn() {
                continue;
            }
            let n = b.num_rows();
            let times = time_range(&b);
            p.changed(times.0, times.1);
            let bytes = b.approx_bytes();
            p.mem.push(MemBatch { batch: Arc::new(b), times, lsn, source: source.clone() });
            st.mem_rows += n;
            st.mem_bytes += bytes;
            st.last_append = Some(std::time::Instant::now());
        }
        Ok(lsn)
    }

    /// The day of each row (see [`Datastore::times_of`]).
    fn days_of(&self, batch: &Batch) -> Result<Vec<i32>> {
        Ok(self.times_of(batch)?.iter().map(|&t| day_of(t)).collect())
    }

    /// The `time` of each row; refuses rows without one or with a NULL one.
    fn times_of<'b>(&self, batch: &'b Batch) -> Result<&'b [i64]> {
        match batch.column("time") {
            Some(c) if c.null_count() == 0 => match &c.values {
                Values::Timestamp(t) => Ok(t),
                _ => Err(Error::Invalid(format!("datastore {}: column \"time\" must be a timestamp", self.name))),
            },
            Some(_) => Err(Error::Invalid(format!("datastore {}: column \"time\" must not be null", self.name))),
            None => Err(Error::Invalid(format!("datastore {}: rows need a \"time\" column", self.name))),
        }
    }

    /// Refuses rows an append or [`Datastore::load_direct`] would refuse (no `time`, a NULL
    /// one, too many columns), before they are gathered for a bulk load.
    pub fn check_rows(&self, batch: &Batch) -> Result<()> {
        self.days_of(batch)?;
        self.check_width(&read(&self.state), batch)
    }

    /// Refuses a batch whose new columns would take the schema past [`MAX_COLUMNS`].
    fn check_width(&self, st: &State, batch: &Batch) -> Result<()> {
        let new = batch.fields.iter().filter(|f| !st.schema.iter().any(|g| g.name == f.name)).count();
        if new > 0 && st.schema.len() + new > MAX_COLUMNS {
            return Err(Error::Constraint {
                sqlstate: "54011",
                message: format!(
                    "datastore {} has {} columns; {new} more would pass the limit of {MAX_COLUMNS}",
                    self.name,
                    st.schema.len()
                ),
            });
        }
        Ok(())
    }

    /// Writes `batch` straight to files, one per day it covers, sorted as a flush sorts them,
    /// without the log or the memtable: the bulk load of a large COPY. The rows are durable
    /// when it returns (each file is written whole and synced before it is published, see
    /// storage-format.md) and visible from then on. Such files hold no LSN (0): replay compares
    /// the log's records with the LSNs of flushed files only. Returns the rows written
    /// (rows of days retention has dropped are expired on arrival, as appends expire them).
    pub fn load_direct(&self, batch: Batch) -> Result<usize> {
        let days = self.days_of(&batch)?;
        if days.is_empty() {
            return Ok(0);
        }
        let (batch, floor) = {
            let mut st = write(&self.state);
            self.check_width(&st, &batch)?;
            (reconcile(&mut st.schema, batch), st.floor_day)
        };
        let mut written = 0;
        for (day, b) in split_by_day(batch, &days) {
            if day < floor {
                continue;
            }
            // The sorted copy, beside the rows the caller holds.
            let _working = Reservation::anyway(&self.opts.memory, b.approx_bytes());
            let times = time_range(&b);
            let f = self.write_sorted(day, &b, 0, Vec::new(), Vec::new())?;
            let mut st = write(&self.state);
            if day < st.floor_day {
                // Retention dropped the day meanwhile: the rows expire.
                drop(st);
                fs::remove_file(&f.path).at(&f.path)?;
                continue;
            }
            let p = st.parts.entry(day).or_default();
            p.files.push(f);
            p.files.sort_by_key(|f| f.meta.spec.seq);
            p.changed(times.0, times.1);
            written += b.num_rows();
        }
        Ok(written)
    }

    /// The memtable holds `memtable_rows` rows, or some rows and none appended for
    /// `idle_flush`.
    pub fn needs_flush(&self) -> bool {
        let st = read(&self.state);
        st.mem_rows >= self.opts.memtable_rows
            || (st.mem_rows > 0
                && st.last_append.zip(self.opts.idle_flush).is_some_and(|(t, idle)| t.elapsed() >= idle))
    }
    pub fn mem_rows(&self) -> usize {
        read(&self.state).mem_rows
    }
    /// Approximate bytes the memtable holds (see the engine's memtable budget).
    pub fn mem_bytes(&self) -> usize {
        read(&self.state).mem_bytes
    }

    pub fn snapshot(&self) -> Snapshot {
        let st = read(&self.state);
        Snapshot {
            schema: st.schema.clone(),
            files: st.parts.values().flat_map(|p| p.files.iter().cloned()).collect(),
            mem: st.parts.values().flat_map(|p| p.mem.iter().map(|m| m.batch.clone())).collect(),
            mem_times: st.parts.values().flat_map(|p| p.mem.iter().map(|m| m.times)).collect(),
        }
    }

    /// Highest LSN in memory or files; the engine never issues an LSN at or below it again.
    pub fn max_lsn(&self) -> u64 {
        let st = read(&self.state);
        st.parts
            .values()
            .map(|p| p.file_max_lsn().max(p.mem.iter().map(|m| m.lsn).max().unwrap_or(0)))
            .max()
            .unwrap_or(0)
    }

    /// How far this datastore has consumed `source` (e.g. a channel): the highest offset
    /// appended with it, whether the append had rows or not.
    pub fn source_offset(&self, source: &str) -> Option<u64> {
        let st = read(&self.state);
        st.sources.get(source).copied().max(st.mem_sources.get(source).map(|m| m.0))
    }

    /// Partitions (day numbers) present.
    pub fn partitions(&self) -> Vec<i32> {
        read(&self.state).parts.keys().copied().collect()
    }

    /// Bytes of all files.
    pub fn disk_bytes(&self) -> u64 {
        read(&self.state).parts.values().flat_map(|p| &p.files).map(|f| f.meta.file_len).sum()
    }

    fn sort_key_for(&self, batch: &Batch) -> Option<String> {
        if let Some(k) = &self.opts.series_key {
            return batch.column(k).filter(|c| c.data_type() == DataType::Text).map(|_| k.clone());
        }
        let rows = batch.num_rows();
        batch.fields.iter().zip(&batch.columns).find_map(|(f, c)| match &c.values {
            Values::Text(v) if rows >= 16 => dictionary(v, rows / 4).map(|_| f.name.clone()),
            _ => None,
        })
    }

    /// Sorts rows by (series key, time), stable so equal keys keep arrival order.
    fn sorted(&self, batch: &Batch) -> (Batch, String) {
        super::sort::sorted(batch, self.sort_key_for(batch))
    }

    /// Sorts `rows` (see [`Datastore::sorted`]) and writes them as a new file of `day`, with
    /// the footer's `max_lsn`, `replaces` and `sources` as given.
    fn write_sorted(
        &self,
        day: i32,
        rows: &Batch,
        max_lsn: u64,
        replaces: Vec<u64>,
        sources: Vec<(String, u64)>,
    ) -> Result<Arc<DsFile>> {
        let (batch, sort_key) = self.sorted(rows);
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        self.write_file(FileSpec { day, seq, max_lsn, sort_key, replaces, sources }, &batch)
    }

    fn write_file(&self, spec: FileSpec, batch: &Batch) -> Result<Arc<DsFile>> {
        let pdir = self.dir.join(day_name(spec.day));
        create_dir_durable(&pdir).at(&pdir)?;
        let path = pdir.join(format!("{:016}.{FILE_EXT}", spec.seq));
        let bytes = file::encode_file(&spec, batch, self.opts.block_rows);
        write_atomic(&path, &bytes).at(&path)?;
        Ok(Arc::new(DsFile::open(&path)?))
    }

    /// Writes every memtable partition to a new file. Afterwards all rows appended before the
    /// call are in files.
    pub fn flush(&self) -> Result<()> {
        let _g = self.maint.lock().unwrap_or_else(|e| e.into_inner());
        let (plan, mem_sources): (Vec<(i32, Vec<MemBatch>, u64)>, _) = {
            let st = read(&self.state);
            let plan = st
                .parts
                .iter()
                .filter(|(_, p)| !p.mem.is_empty())
                .map(|(d, p)| (*d, p.mem.clone(), p.file_max_lsn()))
                .collect();
            (plan, st.mem_sources.clone())
        };
        for (day, mem, file_lsn) in plan {
            // The rows concatenated and then sorted: twice the memtable's bytes at once. A
            // flush frees memory, so it is never refused; queries find less room meanwhile.
            let _working =
                Reservation::anyway(&self.opts.memory, 2 * mem.iter().map(|m| m.batch.approx_bytes()).sum::<usize>());
            let refs: Vec<&Batch> = mem.iter().map(|m| m.batch.as_ref()).collect();
            let rows = Batch::concat(&refs);
            let max_lsn = mem.iter().map(|m| m.lsn).max().unwrap_or(0).max(file_lsn);
            let sources = merge_sources(mem.iter().filter_map(|m| m.source.clone()));
            let f = self.write_sorted(day, &rows, max_lsn, Vec::new(), sources)?;
            let mut st = write(&self.state);
            let p = st.parts.entry(day).or_default();
            p.files.push(f);
            p.mem.drain(..mem.len());
            st.mem_rows -= rows.num_rows();
            st.mem_bytes -= mem.iter().map(|m| m.batch.approx_bytes()).sum::<usize>();
        }
        // The positions of the rows just written (and of appends without rows), after their
        // files: a crash in between leaves them in the files and the WAL.
        if !mem_sources.is_empty() {
            let mut all = read(&self.state).sources.clone();
            for (k, (o, _)) in &mem_sources {
                let e = all.entry(k.clone()).or_insert(*o);
                *e = (*e).max(*o);
            }
            write_sources(&self.dir, &all)?;
            let mut st = write(&self.state);
            for (k, o) in all {
                let e = st.sources.entry(k).or_insert(o);
                *e = (*e).max(o);
            }
            for (k, v) in &mem_sources {
                if st.mem_sources.get(k) == Some(v) {
                    st.mem_sources.remove(k);
                }
            }
        }
        Ok(())
    }

    /// Merges the smallest files of every partition into one, as many as hold at most
    /// `compact_max_rows` rows together, when there are at least `compact_min_files` of them
    /// (so compaction's memory is bounded whatever a partition holds). A subset keeps the
    /// partition's largest LSN in its files, which is what replay compares. Returns the
    /// number of partitions compacted.
    pub fn compact(&self) -> Result<usize> {
        let _g = self.maint.lock().unwrap_or_else(|e| e.into_inner());
        type Plan = Vec<(i32, Vec<Arc<DsFile>>)>;
        let (plan, schema): (Plan, Vec<Field>) = {
            let st = read(&self.state);
            let min_files = self.opts.compact_min_files.max(2);
            let plan = st
                .parts
                .iter()
                .filter(|(_, p)| p.files.len() >= min_files)
                .filter_map(|(d, p)| {
                    let mut by_size = p.files.clone();
                    by_size.sort_by_key(|f| f.meta.rows);
                    let mut total = 0u64;
                    let chosen: Vec<Arc<DsFile>> = by_size
                        .into_iter()
                        .take_while(|f| {
                            total += f.meta.rows;
                            total <= self.opts.compact_max_rows
                        })
                        .collect();
                    (chosen.len() >= min_files).then_some((*d, chosen))
                })
                .collect();
            (plan, st.schema.clone())
        };
        let mut compacted = 0;
        for (day, files) in &plan {
            // The files read, concatenated and sorted (three copies), estimated from their
            // rows and columns. Compaction can wait: when the memory is not there now, this
            // partition is merged at a later round.
            let estimate: u64 = files.iter().map(|f| f.meta.rows * (f.meta.columns.len() as u64) * 16 * 3).sum();
            let mut working = Reservation::new(&self.opts.memory);
            if !working.resize(usize::try_from(estimate).unwrap_or(usize::MAX)) {
                continue;
            }
            let mut parts = Vec::with_capacity(files.len());
            for f in files {
                parts.push(conform(&schema, &f.read_all()?));
            }
            let refs: Vec<&Batch> = parts.iter().collect();
            let max_lsn = files.iter().map(|f| f.meta.spec.max_lsn).max().unwrap_or(0);
            let replaces = files.iter().map(|f| f.meta.spec.seq).collect();
            let sources = merge_sources(files.iter().flat_map(|f| f.meta.spec.sources.clone()));
            let merged = self.write_sorted(*day, &Batch::concat(&refs), max_lsn, replaces, sources)?;
            {
                let mut st = write(&self.state);
                let p = st.parts.entry(*day).or_default();
                let old: HashSet<u64> = files.iter().map(|f| f.meta.spec.seq).collect();
                p.files.retain(|f| !old.contains(&f.meta.spec.seq));
                p.files.push(merged);
                p.files.sort_by_key(|f| f.meta.spec.seq);
            }
            for f in files {
                fs::remove_file(&f.path).at(&f.path)?;
            }
            let pdir = self.dir.join(day_name(*day));
            sync_dir(&pdir).at(&pdir)?;
            compacted += 1;
        }
        Ok(compacted)
    }

    /// Deletes the rows whose Int64 column `id_col` equals `id` and whose `offset_col` is in
    /// `offsets`, e.g. the rows a pipeline made from some channel messages; returns
    /// how many. The memtable is flushed first, then each file that may hold such rows (by
    /// its block statistics) is rewritten without them and replaces the old one as compaction
    /// does, keeping its LSN so replay never brings them back. Rows appended meanwhile are
    /// untouched.
    pub fn delete_lineage(&self, id_col: &str, id: i64, offset_col: &str, offsets: Range<i64>) -> Result<u64> {
        if offsets.is_empty() {
            return Ok(0);
        }
        let (lo, hi) = (offsets.start, offsets.end - 1);
        self.flush()?;
        let _g = self.maint.lock().unwrap_or_else(|e| e.into_inner());
        let (files, schema): (Vec<(i32, Arc<DsFile>)>, Vec<Field>) = {
            let st = read(&self.state);
            let files = st.parts.iter().flat_map(|(d, p)| p.files.iter().map(|f| (*d, f.clone()))).collect();
            (files, st.schema.clone())
        };
        let may_hold = |f: &DsFile, col: &str, lo: i64, hi: i64| {
            f.meta.columns.iter().find(|c| c.name == col).is_some_and(|c| {
                c.data_type == DataType::Int64 && c.blocks.iter(f.bytes()).any(|b| b.min <= hi && b.max >= lo)
            })
        };
        let mut deleted = 0u64;
        for (day, f) in files {
            if !may_hold(&f, id_col, id, id) || !may_hold(&f, offset_col, lo, hi) {
                continue;
            }
            let batch = conform(&schema, &f.read_all()?);
            let (Some(Values::Int64(ids)), Some(Values::Int64(offs))) =
                (batch.column(id_col).map(|c| &c.values), batch.column(offset_col).map(|c| &c.values))
            else {
                continue;
            };
            let (idc, offc) = (batch.column(id_col).expect("matched"), batch.column(offset_col).expect("matched"));
            let keep: Vec<u32> = (0..batch.num_rows())
                .filter(|&i| !(idc.is_valid(i) && offc.is_valid(i) && ids[i] == id && offsets.contains(&offs[i])))
                .map(|i| i as u32)
                .collect();
            if keep.len() == batch.num_rows() {
                continue;
            }
            deleted += (batch.num_rows() - keep.len()) as u64;
            let spec = FileSpec {
                day,
                seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
                max_lsn: f.meta.spec.max_lsn,
                sort_key: f.meta.spec.sort_key.clone(),
                replaces: vec![f.meta.spec.seq],
                sources: f.meta.spec.sources.clone(),
            };
            let new = self.write_file(spec, &batch.take(&keep))?;
            {
                let mut st = write(&self.state);
                let p = st.parts.entry(day).or_default();
                p.files.retain(|x| x.meta.spec.seq != f.meta.spec.seq);
                p.files.push(new);
                p.files.sort_by_key(|x| x.meta.spec.seq);
                p.changed(day as i64 * MICROS_PER_DAY, (day as i64 + 1) * MICROS_PER_DAY - 1);
            }
            fs::remove_file(&f.path).at(&f.path)?;
            let pdir = self.dir.join(day_name(day));
            sync_dir(&pdir).at(&pdir)?;
        }
        Ok(deleted)
    }

    /// Drops whole partitions older than the retention period at time `now` (microseconds).
    /// Call only after the WAL records of those partitions are retired (the engine checkpoints
    /// first), or replay would bring their rows back.
    pub fn enforce_retention(&self, now: i64) -> Result<Vec<i32>> {
        let Some(days) = self.retention_days() else { return Ok(Vec::new()) };
        let cutoff = day_of(now) - days as i32;
        self.drop_partitions_before(cutoff)
    }

    /// Drops every partition whose day is before `cutoff`.
    pub fn drop_partitions_before(&self, cutoff: i32) -> Result<Vec<i32>> {
        let _g = self.maint.lock().unwrap_or_else(|e| e.into_inner());
        if cutoff > read(&self.state).floor_day {
            // Recorded before anything is deleted, so replay can never resurrect these rows.
            write_floor(&self.dir, cutoff)?;
        }
        let dropped: Vec<i32> = {
            let mut st = write(&self.state);
            st.floor_day = st.floor_day.max(cutoff);
            let old: Vec<i32> = st.parts.range(..cutoff).map(|(d, _)| *d).collect();
            for d in &old {
                if let Some(p) = st.parts.remove(d) {
                    st.mem_rows -= p.mem.iter().map(|m| m.batch.num_rows()).sum::<usize>();
                    st.mem_bytes -= p.mem.iter().map(|m| m.batch.approx_bytes()).sum::<usize>();
                }
            }
            old
        };
        for d in &dropped {
            let pdir = self.dir.join(day_name(*d));
            if pdir.exists() {
                fs::remove_dir_all(&pdir).at(&pdir)?;
            }
        }
        if !dropped.is_empty() {
            sync_dir(&self.dir).at(&self.dir)?;
        }
        Ok(dropped)
    }
}

/// The earliest and latest `time` of a batch.
fn time_range(b: &Batch) -> (i64, i64) {
    match b.column("time").map(|c| &c.values) {
        Some(Values::Timestamp(t)) => t.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x))),
        _ => (i64::MIN, i64::MAX),
    }
}

/// The rows of `batch` by day (`days`: each row's), in day order.
fn split_by_day(batch: Batch, days: &[i32]) -> Vec<(i32, Batch)> {
    if days.is_empty() {
        return Vec::new();
    }
    if days.iter().all(|&d| d == days[0]) {
        return vec![(days[0], batch)];
    }
    let mut by_day: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
    for (i, &d) in days.iter().enumerate() {
        by_day.entry(d).or_default().push(i as u32);
    }
    by_day.into_iter().map(|(d, idx)| (d, batch.take(&idx))).collect()
}

fn merge_sources(it: impl Iterator<Item = (String, u64)>) -> Vec<(String, u64)> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for (s, o) in it {
        let e = m.entry(s).or_insert(o);
        *e = (*e).max(o);
    }
    m.into_iter().collect()
}
