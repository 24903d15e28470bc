//! [`Engine`]: opening a data directory (load files, replay the WAL), appends, checkpoints and
//! background maintenance.
//!
//! Data directory:
//! ```text
//! FLEETDB                      marker: magic and layout version
//! wal/<first_lsn>.wal          WAL segments
//! channels/<name>/options      + <YYYY-MM-DD>/<first_offset>.fch
//! datastores/<name>/options    + <YYYY-MM-DD>/<seq>.fds
//! tables/<name>/options        + <lsn>.fds (the newest snapshot)
//! ```
//!
//! Invariants:
//! - An append is acknowledged only after its WAL record is durable.
//! - Each object logs and applies an append under its own lock, so WAL order is apply order
//!   per object and a checkpoint that flushes an object covers every LSN issued before it.
//! - A checkpoint retires only WAL segments whose every record is in a sealed segment or file.
//! - LSNs are never reused: after a crash, numbering resumes above every LSN found in the WAL
//!   or in any file.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::Duration;

use super::records::{self, Payload};
use crate::batch::{Batch, Field};
use crate::channel::{Channel, ChannelOptions, Messages};
use crate::datastore::{Datastore, DatastoreOptions};
use crate::error::{Error, IoContext, Object, Result};
use crate::objects::{self, ColumnSpec, KIND_CHANNEL, KIND_DATASTORE, KIND_TABLE, ObjectOptions};
use crate::table::{Table, TableSchema, TableWrite};
use crate::util::bytes::{ByteReader, PutBytes};
use crate::util::fsutil::{create_dir_durable, sync_dir, write_atomic};
use crate::util::sync::{read, write};
use crate::util::time::{day_of, now_micros};
use crate::wal::{ReplayReport, Wal, WalOptions};

const DIR_MAGIC: [u8; 8] = *b"FLEETDIR";
const DIR_VERSION: u32 = 1;
const MARKER: &str = "FLEETDB";
/// Held locked (`flock`) while an engine has the directory open; one process at a time.
const LOCK: &str = "LOCK";

/// Takes the directory's lock, waiting a moment for an engine of this process that is
/// still closing; refuses when another process holds it.
fn lock_dir(dir: &Path) -> Result<fs::File> {
    use rustix::fs::{FlockOperation, flock};
    let path = dir.join(LOCK);
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(f),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(Error::Invalid(format!(
                    "data directory {} is in use by another fleetdb process",
                    dir.display()
                )));
            }
            Err(e) => return Err(Error::io(&path, e.into())),
        }
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub wal: WalOptions,
    /// Defaults for new channels (retention is per channel).
    pub channel: ChannelOptions,
    /// Defaults for new datastores (retention and series key are per datastore).
    pub datastore: DatastoreOptions,
    /// How often the background thread flushes, checkpoints, compacts and applies retention.
    /// `None` runs no thread (call [`Engine::maintain`] yourself). Default 1 s.
    pub maintenance_interval: Option<Duration>,
    /// Checkpoint once the WAL has more segments than this. Default 4.
    pub checkpoint_segments: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            wal: WalOptions::default(),
            channel: ChannelOptions::default(),
            datastore: DatastoreOptions::default(),
            maintenance_interval: Some(Duration::from_secs(1)),
            checkpoint_segments: 4,
        }
    }
}

/// The outcome of [`Engine::append_messages`]: the accepted messages are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Offset of the first accepted message (the rest follow consecutively).
    pub first_offset: u64,
    pub accepted: usize,
    /// Index in the request and reason of each refused message.
    pub rejected: Vec<(usize, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub flushed: usize,
    pub checkpointed: bool,
    pub compacted: usize,
    pub partitions_dropped: usize,
}

struct Obj<T> {
    handle: Arc<T>,
    created_lsn: u64,
}

pub struct Engine {
    dir: PathBuf,
    cfg: EngineConfig,
    wal: Wal,
    channels: RwLock<BTreeMap<String, Obj<Channel>>>,
    datastores: RwLock<BTreeMap<String, Obj<Datastore>>>,
    tables: RwLock<BTreeMap<String, Obj<Table>>>,
    /// Serialises checkpoints, DDL and retention.
    admin: Mutex<()>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    /// Why the last round of background upkeep failed, if it did.
    upkeep_failure: Mutex<Option<String>>,
    /// Bytes memtables and unsealed channel tails may hold together (0: no limit); see
    /// [`Engine::set_memtable_budget`].
    memtable_budget: std::sync::atomic::AtomicUsize,
    /// The directory's lock, released when the engine is dropped (or the process ends).
    _lock: fs::File,
}

fn check_marker(dir: &Path) -> Result<()> {
    let path = dir.join(MARKER);
    if !path.exists() {
        let mut b = DIR_MAGIC.to_vec();
        b.put_u32(DIR_VERSION);
        return write_atomic(&path, &b).at(&path);
    }
    let b = fs::read(&path).at(&path)?;
    if b.len() != 12 || b[..8] != DIR_MAGIC {
        return Err(Error::corrupt(&path, "data directory marker"));
    }
    let v = ByteReader::new(&b[8..]).u32().unwrap_or(0);
    if v != DIR_VERSION {
        return Err(Error::UnsupportedVersion { path, kind: "data directory", found: v, supported: DIR_VERSION });
    }
    Ok(())
}

fn load<T>(
    root: &Path,
    kind: u8,
    open: impl Fn(&str, &Path, &ObjectOptions) -> Result<T>,
) -> Result<BTreeMap<String, Obj<T>>> {
    create_dir_durable(root).at(root)?;
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(root).at(root)? {
        let path = entry.at(root)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !objects::is_object_name(&name) || !path.join(objects::FILE_NAME).exists() {
            continue; // not an object (e.g. a crash between mkdir and the options file)
        }
        let o = objects::read(&path)?;
        if o.kind != kind {
            return Err(Error::corrupt(&path, "options file names the wrong object kind"));
        }
        out.insert(name.clone(), Obj { handle: Arc::new(open(&name, &path, &o)?), created_lsn: o.created_lsn });
    }
    Ok(out)
}

impl Engine {
    /// Opens the data directory `dir`, creating it if needed, and recovers: loads every sealed
    /// segment and file, then replays the WAL. The report lists what replay found.
    pub fn open(dir: &Path, cfg: EngineConfig) -> Result<(Arc<Engine>, ReplayReport)> {
        create_dir_durable(dir).at(dir)?;
        let lock = lock_dir(dir)?;
        check_marker(dir)?;
        let ch_defaults = cfg.channel.clone();
        let channels = load(&dir.join("channels"), KIND_CHANNEL, |name, path, o| {
            Channel::open(name, path, ChannelOptions { retention_days: o.retention_days, ..ch_defaults.clone() })
        })?;
        let ds_defaults = cfg.datastore.clone();
        let datastores = load(&dir.join("datastores"), KIND_DATASTORE, |name, path, o| {
            let opts = DatastoreOptions {
                retention_days: o.retention_days,
                series_key: o.series_key.clone(),
                declared: o.columns.iter().map(|c| Field::new(&c.name, c.data_type)).collect(),
                ..ds_defaults.clone()
            };
            Datastore::open(name, path, opts)
        })?;
        let tables = load(&dir.join("tables"), KIND_TABLE, Table::open)?;
        let floor = channels
            .values()
            .map(|c| c.handle.max_lsn().max(c.created_lsn))
            .chain(datastores.values().map(|d| d.handle.max_lsn().max(d.created_lsn)))
            .chain(tables.values().map(|t| t.handle.max_lsn().max(t.created_lsn)))
            .max()
            .unwrap_or(0);
        let mut skipped = 0usize;
        let (wal, mut report) =
            Wal::open(&dir.join("wal"), cfg.wal.clone(), floor, |rec| match records::decode(rec.kind, &rec.payload) {
                Some(Payload::ChannelAppend { channel, messages }) => match channels.get(&channel) {
                    Some(c) if rec.lsn > c.created_lsn => c.handle.replay(&messages, rec.lsn),
                    _ => {
                        skipped += 1;
                        Ok(())
                    }
                },
                Some(Payload::DatastoreAppend { datastore, source, batch }) => match datastores.get(&datastore) {
                    Some(d) if rec.lsn > d.created_lsn => d.handle.append(batch, rec.lsn, source),
                    _ => {
                        skipped += 1;
                        Ok(())
                    }
                },
                Some(Payload::TableWrite { table, mode, batch }) => match tables.get(&table) {
                    Some(t) if rec.lsn > t.created_lsn => t.handle.replay(mode, batch, rec.lsn),
                    _ => {
                        skipped += 1;
                        Ok(())
                    }
                },
                Some(Payload::TableAlter { table, schema, batch }) => match tables.get(&table) {
                    Some(t) if rec.lsn > t.created_lsn => t.handle.replay_alter(schema, batch, rec.lsn),
                    _ => {
                        skipped += 1;
                        Ok(())
                    }
                },
                None => Err(Error::corrupt(
                    dir.join("wal"),
                    format!("WAL record {} (kind {}) has a valid checksum but cannot be decoded", rec.lsn, rec.kind),
                )),
            })?;
        if skipped > 0 {
            report.warnings.push(format!("skipped {skipped} WAL records of dropped channels, datastores or tables"));
        }
        let engine = Arc::new(Engine {
            dir: dir.to_path_buf(),
            cfg,
            wal,
            channels: RwLock::new(channels),
            datastores: RwLock::new(datastores),
            tables: RwLock::new(tables),
            admin: Mutex::new(()),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            upkeep_failure: Mutex::new(None),
            memtable_budget: Default::default(),
            _lock: lock,
        });
        if let Some(every) = engine.cfg.maintenance_interval {
            spawn_maintenance(Arc::downgrade(&engine), engine.stop.clone(), every);
        }
        Ok((engine, report))
    }

    /// The memory every query and every flush and compaction of this engine draws on (the
    /// server's `--memory-limit`, less ingest buffers and memtables).
    pub fn memory(&self) -> &Arc<crate::util::memory::MemoryPool> {
        &self.cfg.datastore.memory
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
    /// Bounds what datastore memtables and unsealed channel tails hold together: past it,
    /// upkeep flushes the largest first (down to half of it), and a datastore or channel that
    /// alone holds more is flushed by its next append before it appends (the writer waits:
    /// that is the backpressure); when that flush fails, the append is refused. 0: no bound.
    pub fn set_memtable_budget(&self, bytes: usize) {
        self.memtable_budget.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Approximate bytes held by memtables and unsealed channel tails.
    pub fn memtable_bytes(&self) -> usize {
        self.all_datastores().iter().map(|d| d.mem_bytes()).sum::<usize>()
            + self.all_channels().iter().map(|c| c.unsealed_bytes()).sum::<usize>()
    }

    /// Flushes the largest memtables and channel tails while they hold more than the budget,
    /// down to half of it. Returns how many were flushed.
    fn flush_over_budget(&self) -> Result<usize> {
        let budget = self.memtable_budget.load(std::sync::atomic::Ordering::Relaxed);
        if budget == 0 || self.memtable_bytes() <= budget {
            return Ok(0);
        }
        enum Held {
            Ds(Arc<Datastore>),
            Ch(Arc<Channel>),
        }
        let mut held: Vec<(usize, Held)> = self
            .all_datastores()
            .into_iter()
            .map(|d| (d.mem_bytes(), Held::Ds(d)))
            .chain(self.all_channels().into_iter().map(|c| (c.unsealed_bytes(), Held::Ch(c))))
            .filter(|(b, _)| *b > 0)
            .collect();
        held.sort_by_key(|(b, _)| std::cmp::Reverse(*b));
        let mut total: usize = held.iter().map(|(b, _)| b).sum();
        let mut n = 0;
        for (bytes, h) in held {
            if total <= budget / 2 {
                break;
            }
            match h {
                Held::Ds(d) => d.flush()?,
                Held::Ch(c) => c.flush()?,
            }
            total -= bytes;
            n += 1;
        }
        Ok(n)
    }

    /// Why the last round of background upkeep (flush, checkpoint, compaction, retention)
    /// failed, if it did; it is retried every round, the data staying in memory and the WAL.
    pub fn upkeep_failure(&self) -> Option<String> {
        self.upkeep_failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Creates an object's directory and options file. User objects follow the AWS name rule;
    /// `system` objects are `__` and such a name (fleetdb's own).
    fn create_object(&self, root: &str, name: &str, mut o: ObjectOptions, system: bool) -> Result<PathBuf> {
        if system {
            assert!(name.starts_with("__") && objects::is_object_name(name), "system object name {name}");
        } else {
            objects::validate_name(name)?;
        }
        let path = self.dir.join(root).join(name);
        if path.exists() {
            // A directory without an options file is debris from a crashed CREATE.
            if path.join(objects::FILE_NAME).exists() {
                return Err(Error::already_exists(
                    match root {
                        "channels" => Object::Channel,
                        "datastores" => Object::Datastore,
                        "tables" => Object::Relation,
                        _ => Object::Relation,
                    },
                    name,
                ));
            }
            fs::remove_dir_all(&path).at(&path)?;
        }
        fs::create_dir_all(&path).at(&path)?;
        o.created_lsn = self.wal.last_lsn();
        objects::write(&path, &o)?;
        sync_dir(&self.dir.join(root)).at(&path)?;
        Ok(path)
    }

    pub fn create_channel(&self, name: &str, retention_days: Option<u32>) -> Result<Arc<Channel>> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        if read(&self.channels).contains_key(name) {
            return Err(Error::already_exists(Object::Channel, name));
        }
        let o = ObjectOptions { retention_days, ..ObjectOptions::new(KIND_CHANNEL) };
        let path = self.create_object("channels", name, o, false)?;
        let opts = ChannelOptions { retention_days, ..self.cfg.channel.clone() };
        let ch = Arc::new(Channel::open(name, &path, opts)?);
        let created_lsn = self.wal.last_lsn();
        write(&self.channels).insert(name.to_string(), Obj { handle: ch.clone(), created_lsn });
        Ok(ch)
    }

    pub fn create_datastore(
        &self,
        name: &str,
        retention_days: Option<u32>,
        series_key: Option<&str>,
    ) -> Result<Arc<Datastore>> {
        self.create_datastore_with(name, retention_days, series_key, Vec::new())
    }

    /// Creates a datastore whose schema starts with `time` and the `declared` columns.
    pub fn create_datastore_with(
        &self,
        name: &str,
        retention_days: Option<u32>,
        series_key: Option<&str>,
        declared: Vec<ColumnSpec>,
    ) -> Result<Arc<Datastore>> {
        self.new_datastore(name, retention_days, series_key, declared, false)
    }

    /// The system datastore `name` (`__…`), created with `declared` columns if missing.
    pub fn system_datastore(
        &self,
        name: &str,
        retention_days: Option<u32>,
        declared: Vec<ColumnSpec>,
    ) -> Result<Arc<Datastore>> {
        match self.new_datastore(name, retention_days, None, declared, true) {
            Err(Error::AlreadyExists { .. }) => self.datastore(name),
            r => r,
        }
    }

    /// A system log: a system datastore whose columns after `time` are text (the backing of
    /// `fleetdb.rejected_messages` and `fleetdb.pipeline_errors`). Creates it if needed.
    pub fn system_log(&self, name: &str, retention_days: u32, columns: &[&str]) -> Result<Arc<Datastore>> {
        let declared = columns
            .iter()
            .map(|c| ColumnSpec {
                name: c.to_string(),
                data_type: crate::batch::DataType::Text,
                type_tag: 25,
                not_null: false,
                default: None,
            })
            .collect();
        self.system_datastore(name, Some(retention_days), declared)
    }

    /// Appends rows to system log `name`, all stamped now: `values[i]` is the column
    /// `columns[i]`, one entry per row.
    pub fn append_log(&self, name: &str, columns: &[&str], values: Vec<Vec<String>>) -> Result<()> {
        use crate::batch::{Column, DataType, StrVec, Values};
        let n = values.first().map_or(0, Vec::len);
        if n == 0 {
            return Ok(());
        }
        let mut fields = vec![Field::new("time", DataType::Timestamp)];
        let mut cols = vec![Column::new(Values::Timestamp(vec![now_micros(); n]))];
        for (c, v) in columns.iter().zip(values) {
            fields.push(Field::new(c, DataType::Text));
            cols.push(Column::new(Values::Text(v.iter().map(String::as_str).collect::<StrVec>())));
        }
        let batch = Batch::try_new(fields, cols)
            .ok_or_else(|| Error::Invalid(format!("{name}: log columns must be distinct and of equal length")))?;
        self.append_rows(name, batch, None).map(drop)
    }

    fn new_datastore(
        &self,
        name: &str,
        retention_days: Option<u32>,
        series_key: Option<&str>,
        declared: Vec<ColumnSpec>,
        system: bool,
    ) -> Result<Arc<Datastore>> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        if read(&self.datastores).contains_key(name) {
            return Err(Error::already_exists(Object::Datastore, name));
        }
        let series_key = series_key.map(str::to_string);
        let fields = declared.iter().map(|c| Field::new(&c.name, c.data_type)).collect();
        let o = ObjectOptions {
            retention_days,
            series_key: series_key.clone(),
            columns: declared,
            ..ObjectOptions::new(KIND_DATASTORE)
        };
        let path = self.create_object("datastores", name, o, system)?;
        let opts = DatastoreOptions { retention_days, series_key, declared: fields, ..self.cfg.datastore.clone() };
        let ds = Arc::new(Datastore::open(name, &path, opts)?);
        let created_lsn = self.wal.last_lsn();
        write(&self.datastores).insert(name.to_string(), Obj { handle: ds.clone(), created_lsn });
        Ok(ds)
    }

    /// Creates a reference table with the given columns and primary key (column positions).
    pub fn create_table(&self, name: &str, columns: Vec<ColumnSpec>, key: Vec<usize>) -> Result<Arc<Table>> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        if read(&self.tables).contains_key(name) {
            return Err(Error::already_exists(Object::Relation, name));
        }
        if columns.is_empty() || columns.len() > u16::MAX as usize {
            return Err(Error::Invalid(format!("table {name} needs between 1 and 65535 columns")));
        }
        let o = ObjectOptions {
            columns: columns.clone(),
            primary_key: key.iter().map(|&k| k as u16).collect(),
            ..ObjectOptions::new(KIND_TABLE)
        };
        let path = self.create_object("tables", name, o, false)?;
        let t = Arc::new(Table::open(name, &path, &objects::read(&path)?)?);
        let created_lsn = self.wal.last_lsn();
        write(&self.tables).insert(name.to_string(), Obj { handle: t.clone(), created_lsn });
        Ok(t)
    }

    /// Removes a reference table and its rows.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        write(&self.tables).remove(name).ok_or_else(|| Error::not_found(Object::Table, name))?;
        self.remove_object("tables", name)
    }

    pub fn table(&self, name: &str) -> Result<Arc<Table>> {
        read(&self.tables).get(name).map(|o| o.handle.clone()).ok_or_else(|| Error::not_found(Object::Table, name))
    }
    pub fn table_names(&self) -> Vec<String> {
        read(&self.tables).keys().cloned().collect()
    }

    /// Appends rows to, or replaces the content of, a reference table; returns once durable.
    /// `base`: the content the write was computed from (see [`Table::write`]).
    pub fn write_table(&self, name: &str, mode: TableWrite, batch: Batch, base: Option<&Arc<Batch>>) -> Result<u64> {
        let t = self.table(name)?;
        let lsn = t.write(mode, batch, base, |b| {
            self.wal.enqueue(records::TABLE_WRITE, &records::encode_table_write(name, mode, b))
        })?;
        self.wal.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// Gives a reference table a new schema and content (computed from `base`, the content
    /// it changes); returns once durable.
    pub fn alter_table(&self, name: &str, schema: TableSchema, rows: Batch, base: &Arc<Batch>) -> Result<u64> {
        let t = self.table(name)?;
        if schema.columns.len() > u16::MAX as usize {
            return Err(Error::Invalid(format!("table {name} needs between 1 and 65535 columns")));
        }
        let lsn = t.alter(schema, rows, base, |s, b| {
            self.wal.enqueue(records::TABLE_ALTER, &records::encode_table_alter(name, s, b))
        })?;
        self.wal.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// Declares a new column on a datastore (rows already stored read it as NULL); persisted.
    pub fn add_datastore_column(&self, name: &str, column: ColumnSpec) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let ds = self.datastore(name)?;
        if ds.schema().iter().any(|f| f.name == column.name) {
            return Err(Error::already_exists(
                Object::Column,
                format!("column \"{}\" of relation \"{name}\"", column.name),
            ));
        }
        let dir = self.dir.join("datastores").join(name);
        let mut o = objects::read(&dir)?;
        let field = Field::new(&column.name, column.data_type);
        o.columns.push(column);
        objects::write(&dir, &o)?;
        ds.declare(field);
        Ok(())
    }

    /// Renames a reference table. The table is snapshotted and its options file rewritten
    /// with a `created_lsn` above every record of its old name, then its directory is renamed:
    /// a crash leaves it whole under one name or the other.
    pub fn rename_table(&self, name: &str, new_name: &str) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        objects::validate_name(new_name)?;
        let t = self.table(name)?;
        let taken = read(&self.tables).contains_key(new_name)
            || read(&self.datastores).contains_key(new_name)
            || read(&self.channels).contains_key(new_name);
        let to = self.dir.join("tables").join(new_name);
        if taken || to.join(objects::FILE_NAME).exists() {
            return Err(Error::already_exists(Object::Relation, new_name));
        }
        let (schema, _) = t.close_for_rename()?;
        let from = self.dir.join("tables").join(name);
        let moved = (|| {
            self.wal.wait_durable(self.wal.last_lsn())?;
            let created_lsn = self.wal.last_lsn();
            objects::write(&from, &schema.to_options(created_lsn))?;
            if to.exists() {
                fs::remove_dir_all(&to).at(&to)?; // debris of a crashed CREATE
            }
            fs::rename(&from, &to).at(&to)?;
            sync_dir(&self.dir.join("tables")).at(&to)?;
            Ok(created_lsn)
        })();
        let created_lsn = match moved {
            Ok(l) => l,
            Err(e) => {
                t.reopen();
                return Err(e);
            }
        };
        let renamed = Arc::new(Table::open(new_name, &to, &objects::read(&to)?)?);
        let mut tables = write(&self.tables);
        tables.remove(name);
        tables.insert(new_name.to_string(), Obj { handle: renamed, created_lsn });
        Ok(())
    }

    /// Changes how many days a channel (`datastore` false) or datastore keeps; persisted.
    pub fn set_retention(&self, datastore: bool, name: &str, days: Option<u32>) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let (root, what) = if datastore { ("datastores", Object::Datastore) } else { ("channels", Object::Channel) };
        let exists =
            if datastore { read(&self.datastores).contains_key(name) } else { read(&self.channels).contains_key(name) };
        if !exists {
            return Err(Error::not_found(what, name));
        }
        let dir = self.dir.join(root).join(name);
        let mut o = objects::read(&dir)?;
        o.retention_days = days;
        objects::write(&dir, &o)?;
        if datastore {
            self.datastore(name)?.set_retention_days(days);
        } else {
            self.channel(name)?.set_retention_days(days);
        }
        Ok(())
    }

    /// Removes a channel and all its messages.
    pub fn drop_channel(&self, name: &str) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        write(&self.channels).remove(name).ok_or_else(|| Error::not_found(Object::Channel, name))?;
        self.remove_object("channels", name)
    }

    /// Deletes the options file first: from then on the object does not exist for `open`,
    /// whatever a crash leaves of the rest of the directory.
    fn remove_object(&self, root: &str, name: &str) -> Result<()> {
        let path = self.dir.join(root).join(name);
        let opts = path.join(objects::FILE_NAME);
        fs::remove_file(&opts).at(&opts)?;
        sync_dir(&path).at(&path)?;
        fs::remove_dir_all(&path).at(&path)?;
        sync_dir(&self.dir.join(root)).at(&path)
    }

    /// Removes a datastore and all its rows.
    pub fn drop_datastore(&self, name: &str) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        write(&self.datastores).remove(name).ok_or_else(|| Error::not_found(Object::Datastore, name))?;
        self.remove_object("datastores", name)
    }

    pub fn channel(&self, name: &str) -> Result<Arc<Channel>> {
        read(&self.channels).get(name).map(|o| o.handle.clone()).ok_or_else(|| Error::not_found(Object::Channel, name))
    }
    pub fn datastore(&self, name: &str) -> Result<Arc<Datastore>> {
        read(&self.datastores)
            .get(name)
            .map(|o| o.handle.clone())
            .ok_or_else(|| Error::not_found(Object::Datastore, name))
    }
    pub fn channel_names(&self) -> Vec<String> {
        read(&self.channels).keys().cloned().collect()
    }
    /// The user's datastores (system ones, named `__…`, are left out).
    pub fn datastore_names(&self) -> Vec<String> {
        read(&self.datastores).keys().filter(|n| !n.starts_with("__")).cloned().collect()
    }
    fn all_channels(&self) -> Vec<Arc<Channel>> {
        read(&self.channels).values().map(|o| o.handle.clone()).collect()
    }
    fn all_datastores(&self) -> Vec<Arc<Datastore>> {
        read(&self.datastores).values().map(|o| o.handle.clone()).collect()
    }

    /// Appends messages to `channel` and returns once they are durable. `msgs.received_at`
    /// is the arrival time of each (clamped so it never decreases); `first_offset` is ignored.
    /// A `messageId` repeated within the request is refused after its first occurrence; the
    /// other messages are stored.
    pub fn append_messages(&self, channel: &str, msgs: Messages) -> Result<AppendReceipt> {
        let ch = self.channel(channel)?;
        let mut seen = HashSet::with_capacity(msgs.len());
        let mut rejected = Vec::new();
        for (i, id) in msgs.ids.iter().enumerate() {
            if !seen.insert(id) {
                rejected.push((i, format!("duplicate messageId \"{id}\" in the batch")));
            }
        }
        let batch = if rejected.is_empty() {
            msgs
        } else {
            let mut keep = Messages::default();
            let mut r = rejected.iter().map(|(i, _)| *i).peekable();
            for i in 0..msgs.len() {
                if r.peek() == Some(&i) {
                    r.next();
                } else {
                    keep.extend_range(&msgs, i, i + 1);
                }
            }
            keep
        };
        let accepted = batch.len();
        if accepted == 0 {
            return Ok(AppendReceipt { first_offset: ch.next_offset(), accepted, rejected });
        }
        let budget = self.memtable_budget.load(std::sync::atomic::Ordering::Relaxed);
        if budget > 0 && ch.unsealed_bytes() > budget {
            // Tails that cannot be sealed (a failing disk) stop new appends, as memtables do.
            ch.flush()?;
        }
        let (first_offset, lsn) = ch.append(batch, |m| {
            self.wal.enqueue(records::CHANNEL_APPEND, &records::encode_channel_append(channel, m))
        })?;
        self.wal.wait_durable(lsn)?;
        Ok(AppendReceipt { first_offset, accepted, rejected })
    }

    /// Appends rows to `datastore` and returns the WAL LSN once they are durable. `source`
    /// records the pipeline position these rows reach, stored atomically with them.
    pub fn append_rows(&self, datastore: &str, batch: Batch, source: Option<(String, u64)>) -> Result<u64> {
        let ds = self.datastore(datastore)?;
        let src = source.clone();
        let budget = self.memtable_budget.load(std::sync::atomic::Ordering::Relaxed);
        if budget > 0 && ds.mem_bytes() > budget {
            // Faster than upkeep flushes: this writer flushes first (the backpressure). When
            // the memtable cannot be written (a failing disk), the append is refused with why:
            // memory is not where writes wait for a disk.
            ds.flush()?;
        }
        let lsn = ds.append_logged(batch, source, |b| {
            self.wal.enqueue(records::DATASTORE_APPEND, &records::encode_datastore_append(datastore, src.as_ref(), b))
        })?;
        self.wal.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// Writes rows straight to `datastore`'s files, without the log or the memtable: a large
    /// COPY's bulk load (see [`Datastore::load_direct`]); durable when it returns.
    pub fn load_rows(&self, datastore: &str, batch: Batch) -> Result<usize> {
        self.datastore(datastore)?.load_direct(batch)
    }

    /// Seals every channel tail and flushes every memtable, then deletes the WAL segments
    /// they covered. Returns the number of segments deleted.
    pub fn checkpoint(&self) -> Result<usize> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.checkpoint_locked()
    }

    fn checkpoint_locked(&self) -> Result<usize> {
        // Records up to `lsn` are in the segments before the new one and already applied (each
        // object logs and applies under its lock, which flush takes), so after the flushes every
        // one of them is in a sealed segment or file.
        let lsn = self.wal.rotate()?;
        for c in self.all_channels() {
            c.flush()?;
        }
        for d in self.all_datastores() {
            d.flush()?;
        }
        let tables: Vec<Arc<Table>> = read(&self.tables).values().map(|o| o.handle.clone()).collect();
        for t in tables {
            t.checkpoint()?;
        }
        self.wal.retire_through(lsn)
    }

    /// One round of upkeep at time `now`: flush full memtables, checkpoint a long WAL,
    /// compact partitions with many files, drop expired partitions.
    pub fn maintain(&self, now: i64) -> Result<MaintenanceReport> {
        let mut rep = MaintenanceReport::default();
        for d in self.all_datastores() {
            if d.needs_flush() {
                d.flush()?;
                rep.flushed += 1;
            }
        }
        rep.flushed += self.flush_over_budget()?;
        if self.wal.segment_count() > self.cfg.checkpoint_segments {
            self.checkpoint()?;
            rep.checkpointed = true;
        }
        for d in self.all_datastores() {
            rep.compacted += d.compact()?;
        }
        rep.partitions_dropped = self.enforce_retention(now)?;
        if rep.partitions_dropped > 0 {
            rep.checkpointed = true;
        }
        Ok(rep)
    }

    /// Drops the partitions of channels and datastores that are past their retention at
    /// `now`. Checkpoints first, so replay cannot bring dropped rows back. Returns the number
    /// of partitions dropped.
    pub fn enforce_retention(&self, now: i64) -> Result<usize> {
        let expired = |days: Option<u32>, oldest: Option<i32>| match (days, oldest) {
            (Some(n), Some(o)) => o < day_of(now) - n as i32,
            _ => false,
        };
        let chans: Vec<_> =
            self.all_channels().into_iter().filter(|c| expired(c.retention_days(), c.oldest_day())).collect();
        let dss: Vec<_> = self
            .all_datastores()
            .into_iter()
            .filter(|d| expired(d.retention_days(), d.partitions().first().copied()))
            .collect();
        if chans.is_empty() && dss.is_empty() {
            return Ok(0);
        }
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.checkpoint_locked()?;
        let mut dropped = 0;
        for c in chans {
            dropped += c.enforce_retention(now)?.len();
        }
        for d in dss {
            dropped += d.enforce_retention(now)?.len();
        }
        Ok(dropped)
    }

    /// Stops the background thread and makes everything durable in files (a clean shutdown
    /// leaves a WAL with nothing to replay).
    pub fn shutdown(&self) -> Result<()> {
        self.signal_stop();
        self.wal.sync()?;
        self.checkpoint().map(|_| ())
    }

    fn signal_stop(&self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn spawn_maintenance(engine: Weak<Engine>, stop: Arc<(Mutex<bool>, Condvar)>, every: Duration) {
    std::thread::Builder::new()
        .name("fleetdb-maintenance".into())
        .spawn(move || {
            // A round that flushed or compacted owes the system the memory it freed; it is given
            // back in the first round with nothing to do, or every TRIM_UNDER_LOAD while a load
            // goes on (not at every flush: the next would fault the same memory in again, at a
            // cost like the flush's own).
            const TRIM_UNDER_LOAD: Duration = Duration::from_secs(10);
            let mut owed = false;
            let mut trimmed = std::time::Instant::now();
            loop {
                {
                    let (flag, cv) = &*stop;
                    let g = flag.lock().unwrap_or_else(|e| e.into_inner());
                    let (g, _) = cv.wait_timeout(g, every).unwrap_or_else(|e| e.into_inner());
                    if *g {
                        return;
                    }
                }
                let Some(e) = engine.upgrade() else { return };
                // Upkeep retries next round; the failure is kept for the server to report.
                let res = e.maintain(now_micros());
                // A flush or compaction frees what it held (a memtable, the merged files'
                // rows) in the allocator's arenas; give it back so the process stays its size.
                let busy = res.as_ref().is_ok_and(|r| r.flushed > 0 || r.compacted > 0 || r.checkpointed);
                owed |= busy;
                if owed && (!busy || trimmed.elapsed() >= TRIM_UNDER_LOAD) {
                    crate::util::mmap::release_free_memory();
                    owed = false;
                    trimmed = std::time::Instant::now();
                }
                *e.upkeep_failure.lock().unwrap_or_else(|p| p.into_inner()) = res.err().map(|err| err.to_string());
            }
        })
        .expect("spawning the maintenance thread");
}
