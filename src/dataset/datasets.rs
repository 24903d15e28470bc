//! [`Datasets`]: the datasets of an engine, their runs (full, delta and bucketed), expiry,
//! late-data counting, events, delivery jobs and the scheduler.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use super::def::*;
use super::version::*;
use super::{deliver, grammar, incremental, program};
use crate::batch::{Batch, Field, Values};
use crate::datastore::file::{FileSpec, encode_file};
use crate::datastore::reader::DsFile;
use crate::engine::Engine;
use crate::error::{Error, IoContext, Object, Result};
use crate::query::bind::{Binder, DatasetSource, DeltaWindow};
use crate::query::exec::{concat, run};
use crate::query::expr::EvalCtx;
use crate::query::grammar::Options;
use crate::query::parse::parse_query;
use crate::query::plan::OutCol;
use crate::util::bytes::{ByteReader, PutBytes};
use crate::util::fsutil::create_dir_durable;
use crate::util::recfile;
use crate::util::sync::{lock, read, write};
use crate::util::time::now_micros;

pub(super) const DEFS_FILE: &str = "dataset_definitions";
pub(super) const DEFS_MAGIC: [u8; 8] = *b"FLEETDST";
pub(super) const DELIVERIES_MAGIC: [u8; 8] = *b"FLEETDSD";
pub(super) const VERSION: u32 = 1;
/// The system log behind `fleetdb.dataset_events`.
pub const EVENTS: &str = "__dataset_events";
pub(super) const EVENT_COLUMNS: [&str; 4] = ["dataset", "version_id", "event", "detail"];
pub(super) const EVENTS_RETENTION_DAYS: u32 = 30;
/// How often materialized delta windows are counted again for late data.
pub(super) const LATE_CHECK: i64 = 1_000_000;
/// How often the scheduler looks for datasets due.
pub(super) const TICK: Duration = Duration::from_millis(200);
pub(super) const DAY: i64 = 86_400_000_000;

pub(super) struct Ds {
    pub(super) def: DatasetDef,
    pub(super) dir: PathBuf,
    pub(super) versions: Mutex<Vec<Version>>,
    /// Serialises runs of this dataset.
    pub(super) running: Mutex<()>,
    pub(super) late: Mutex<Late>,
    /// For incremental refreshes: the version computed last and its datastore's partition
    /// generations when it was.
    pub(super) base: Mutex<Option<(u64, Generations)>>,
}

impl Ds {
    fn new(def: DatasetDef, dir: PathBuf, versions: Vec<Version>) -> Arc<Ds> {
        Arc::new(Ds {
            def,
            dir,
            versions: Mutex::new(versions),
            running: Mutex::new(()),
            late: Mutex::default(),
            base: Mutex::default(),
        })
    }
}

/// A datastore's partitions and their generations ([`crate::datastore::Datastore::day_generations`]).
pub(super) type Generations = Vec<(i32, u64)>;

/// A bucketed query's result: its columns and rows, the partition generations it reflects and
/// how it was computed.
pub(super) struct Bucketed {
    pub(super) cols: Vec<OutCol>,
    pub(super) rows: Batch,
    pub(super) marks: Generations,
    pub(super) refresh: Refresh,
}

/// Late rows seen in materialized delta windows and not reported yet.
#[derive(Default)]
pub(super) struct Late {
    pub(super) last_check: i64,
    /// Version id → rows in its window when last counted.
    pub(super) pending: std::collections::BTreeMap<u64, u64>,
    /// When the pending counts last grew.
    pub(super) last_growth: i64,
}

/// The datasets of an engine, and their scheduler. One per engine ([`Datasets::open`]),
/// held by the statement layer's `Services`.
pub struct Datasets {
    engine: Weak<Engine>,
    sets: RwLock<Vec<Arc<Ds>>>,
    ddl: Mutex<()>,
    started: AtomicBool,
    /// The broker MQTT deliveries publish through.
    mqtt: Mutex<Option<deliver::MqttOptions>>,
    /// Deliveries waiting for their (next) attempt.
    jobs: Mutex<Vec<deliver::Job>>,
    delivering: AtomicBool,
    /// This service itself, for the binder of its runs (dataset_content of other datasets).
    me: std::sync::OnceLock<Weak<Datasets>>,
}

/// What SHOW DATASETS shows of one dataset.
pub struct Status {
    pub def: DatasetDef,
    pub next_run: Option<i64>,
    pub last: Option<Version>,
}

impl Datasets {
    fn new(engine: &Arc<Engine>) -> Result<Datasets> {
        let dir = engine.data_dir().to_path_buf();
        engine.system_log(EVENTS, EVENTS_RETENTION_DAYS, &EVENT_COLUMNS)?;
        let mut sets = Vec::new();
        let mut jobs = Vec::new();
        if let Some(body) = recfile::read(&dir.join(DEFS_FILE), &DEFS_MAGIC, VERSION, "datasets file")? {
            let path = dir.join(DEFS_FILE);
            let bad = |why: String| Error::corrupt(&path, format!("datasets file: {why}"));
            let mut r = ByteReader::new(&body);
            for _ in 0..r.u32().ok_or_else(|| bad("short".into()))? {
                let created = r.i64().ok_or_else(|| bad("short".into()))?;
                let sql = r.bytes32().and_then(|b| std::str::from_utf8(b).ok()).ok_or_else(|| bad("short".into()))?;
                let (name, query, options) = grammar::definition(sql)
                    .map_err(|e| bad(format!("unreadable definition {sql:?}: {}", e.message)))?;
                let def = DatasetDef::new(&name, &query, &options, created).map_err(|e| bad(e.to_string()))?;
                let ddir = dataset_dir(&dir, &name);
                let mut versions = load_versions(&ddir)?;
                // A run the server did not live to finish.
                let mut interrupted = false;
                for v in versions.iter_mut().filter(|v| v.state == VersionState::Creating) {
                    (v.state, v.reason, v.completed) = (
                        VersionState::Failed,
                        "interrupted: the server stopped during the run".into(),
                        Some(now_micros()),
                    );
                    interrupted = true;
                }
                if interrupted {
                    save_versions(&ddir, &versions)?;
                }
                // Deliveries not done when the server stopped, of versions that made it.
                let path = ddir.join("deliveries");
                if let Some(body) = recfile::read(&path, &DELIVERIES_MAGIC, VERSION, "dataset deliveries")? {
                    let pending =
                        deliver::decode(&name, &body).ok_or_else(|| Error::corrupt(&path, "dataset deliveries"))?;
                    let ok = |id: u64| versions.iter().any(|v| v.id == id && v.state == VersionState::Succeeded);
                    jobs.extend(pending.into_iter().filter(|j| ok(j.version)));
                }
                sets.push(Ds::new(def, ddir, versions));
            }
        }
        Ok(Datasets {
            engine: Arc::downgrade(engine),
            sets: RwLock::new(sets),
            ddl: Mutex::new(()),
            started: AtomicBool::new(false),
            mqtt: Mutex::new(None),
            jobs: Mutex::new(jobs),
            delivering: AtomicBool::new(false),
            me: std::sync::OnceLock::new(),
        })
    }

    /// The datasets of `engine`, loaded from its data directory (the scheduler not started).
    pub fn open(engine: &Arc<Engine>) -> Result<Arc<Datasets>> {
        let d = Arc::new(Datasets::new(engine)?);
        let _ = d.me.set(Arc::downgrade(&d));
        Ok(d)
    }

    /// Starts the scheduler thread and the delivery thread (once). The scheduler runs
    /// datasets as their schedules come due and looks for late data; both end with the engine.
    pub fn start(self: &Arc<Self>) {
        crate::util::sync::spawn_service_loop(self, &self.started, "fleetdb-datasets", |d| {
            d.run_due(now_micros());
            Some(TICK)
        });
        crate::util::sync::spawn_service_loop(self, &self.delivering, "fleetdb-deliver", |d| {
            d.deliver_due(now_micros());
            Some(TICK / 2)
        });
    }

    /// The broker `DELIVER TO MQTT` publishes through (the server's `--mqtt`).
    pub fn set_mqtt(&self, options: deliver::MqttOptions) {
        *lock(&self.mqtt) = Some(options);
    }

    fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.upgrade().ok_or_else(|| Error::Invalid("the engine is shut down".into()))
    }

    fn find(&self, name: &str) -> Option<Arc<Ds>> {
        read(&self.sets).iter().find(|d| d.def.name == name).cloned()
    }

    /// Dataset `name`, or NotFound.
    fn get(&self, name: &str) -> Result<Arc<Ds>> {
        self.find(name).ok_or_else(|| Error::not_found(Object::Dataset, name))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Writes `sets` as the definitions file; the caller then makes them current.
    fn save_defs(&self, sets: &[Arc<Ds>]) -> Result<()> {
        let engine = self.engine()?;
        let mut b = Vec::new();
        b.put_u32(sets.len() as u32);
        for d in sets.iter() {
            b.put_i64(d.def.created);
            b.put_bytes32(d.def.to_sql().as_bytes());
        }
        recfile::write(&engine.data_dir().join(DEFS_FILE), &DEFS_MAGIC, VERSION, &b)
    }

    /// Checks what a definition refers to: a query must plan now (its relations exist, its
    /// delta expression binds), a program's input dataset must exist.
    fn check_def(&self, engine: &Arc<Engine>, def: &DatasetDef) -> Result<()> {
        self.check_trigger(def)?;
        for t in &def.deliveries {
            t.check_contained()?;
        }
        match &def.program {
            Some(p) if p.input == def.name || self.find(&p.input).is_none() => {
                Err(Error::Invalid(format!("INPUT {}: no other dataset has that name", p.input)))
            }
            Some(_) => Ok(()),
            None => {
                let window = def.delta.as_ref().map(|d| DeltaWindow { expr: d.expr.clone(), from: 0, to: 1 });
                match self.plan_query(engine, &def.query, now_micros(), window) {
                    Err(e) if !e.is_undefined_column() => Err(Error::Invalid(e.message)),
                    _ => Ok(()),
                }
            }
        }
    }

    /// CREATE DATASET.
    pub fn create(&self, name: &str, query: &str, options: &Options, if_not_exists: bool) -> Result<bool> {
        // The name becomes a directory under datasets/: the one name rule keeps it there.
        crate::engine::validate_name(name)?;
        let _g = lock(&self.ddl);
        if self.find(name).is_some() {
            return if if_not_exists { Ok(false) } else { Err(Error::already_exists(Object::Dataset, name)) };
        }
        let engine = self.engine()?;
        if engine.table(name).is_ok() || engine.datastore(name).is_ok() || engine.channel(name).is_ok() {
            return Err(Error::already_exists(Object::Relation, name));
        }
        let def = DatasetDef::new(name, query, options, now_micros())?;
        self.check_def(&engine, &def)?;
        let dir = dataset_dir(engine.data_dir(), name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).at(&dir)?;
        }
        create_dir_durable(&dir).at(&dir)?;
        let mut sets = read(&self.sets).clone();
        sets.push(Ds::new(def, dir, Vec::new()));
        self.save_defs(&sets)?;
        *write(&self.sets) = sets;
        Ok(true)
    }

    /// Refuses a trigger that names no other dataset or would close a loop of triggers (a
    /// dataset dropped and created again, or altered).
    fn check_trigger(&self, def: &DatasetDef) -> Result<()> {
        let Some(first) = &def.trigger else { return Ok(()) };
        if *first == def.name || self.find(first).is_none() {
            return Err(Error::Invalid(format!("trigger = '{first}': no other dataset has that name")));
        }
        let mut at = Some(first.clone());
        for _ in 0..=read(&self.sets).len() {
            let Some(t) = at else { break };
            if t == def.name {
                return Err(Error::Invalid(format!("trigger = '{first}' would make datasets trigger each other")));
            }
            at = self.find(&t).and_then(|d| d.def.trigger.clone());
        }
        Ok(())
    }

    /// ALTER DATASET: a new query and options (`query` given), or options changed. Versions
    /// are kept; the next runs use the new definition. A rate still counts from creation.
    pub fn alter(&self, name: &str, query: Option<&str>, options: &Options) -> Result<()> {
        let _g = lock(&self.ddl);
        let old = self.get(name)?;
        let _busy = lock(&old.running);
        let merged: Options = match query {
            Some(_) => options.clone(),
            None => {
                // Setting a schedule replaces a trigger and the other way round.
                let given = |k: &str| options.iter().any(|(o, v)| o == k && !v.is_empty());
                let replaced = |k: &str| (k == "trigger" && given("schedule")) || (k == "schedule" && given("trigger"));
                old.def.options().into_iter().filter(|(k, _)| !replaced(k)).chain(options.iter().cloned()).collect()
            }
        };
        let def = DatasetDef::new(name, query.unwrap_or(&old.def.query), &merged, old.def.created)?;
        let engine = self.engine()?;
        self.check_def(&engine, &def)?;
        let versions = lock(&old.versions).clone();
        let new = Ds::new(def, old.dir.clone(), versions);
        let sets: Vec<Arc<Ds>> =
            read(&self.sets).iter().map(|d| if Arc::ptr_eq(d, &old) { new.clone() } else { d.clone() }).collect();
        self.save_defs(&sets)?;
        *write(&self.sets) = sets;
        Ok(())
    }

    pub fn drop_dataset(&self, name: &str) -> Result<()> {
        let _g = lock(&self.ddl);
        let d = self.get(name)?;
        if let Some(user) = read(&self.sets).iter().find(|u| u.def.program.as_ref().is_some_and(|p| p.input == name)) {
            return Err(Error::Invalid(format!(
                "dataset \"{}\" is the input of program dataset \"{}\"; drop that first",
                name, user.def.name
            )));
        }
        let _busy = lock(&d.running);
        let mut sets = read(&self.sets).clone();
        sets.retain(|x| !Arc::ptr_eq(x, &d));
        // Datasets it triggered no longer run (their definitions keep the name).
        self.save_defs(&sets)?;
        *write(&self.sets) = sets;
        lock(&self.jobs).retain(|j| j.dataset != name);
        std::fs::remove_dir_all(&d.dir).at(&d.dir)
    }

    /// REFRESH DATASET: runs it now. Returns the new version (SUCCEEDED or FAILED).
    pub fn refresh(&self, name: &str) -> Result<Version> {
        let d = self.get(name)?;
        self.run(&d, now_micros())
    }

    /// Runs every scheduled dataset whose next firing is at or before `now` (once, for the
    /// latest firing missed), then looks for late data. The scheduler calls it with the
    /// clock; tests call it with any time.
    pub fn run_due(&self, now: i64) {
        let sets: Vec<Arc<Ds>> = read(&self.sets).clone();
        for d in &sets {
            let Some(next) = next_run(d) else { continue };
            if next > now {
                continue;
            }
            // The latest firing at or before now: missed ones are not run one by one.
            let mut at = next;
            while let Some(n) = d.def.schedule.as_ref().and_then(|(_, s)| s.next_after(d.def.created, at)) {
                if n > now {
                    break;
                }
                at = n;
            }
            let _ = self.run(d, at);
        }
        for d in &sets {
            if d.def.late_data_timeout.is_some() {
                let _ = self.check_late(d, now);
            }
        }
    }

    fn run(&self, d: &Ds, schedule_time: i64) -> Result<Version> {
        let engine = self.engine()?;
        let _one = lock(&d.running);
        // ALTER and DROP replace or remove the dataset under this lock: a run that waited
        // for them must not use the old definition.
        if !self.find(&d.def.name).is_some_and(|cur| std::ptr::eq(Arc::as_ptr(&cur), d)) {
            return Err(Error::Invalid(format!(
                "dataset \"{}\" changed; its next run uses the new definition",
                d.def.name
            )));
        }
        let mut v = {
            let mut versions = lock(&d.versions);
            let mut v = Version::new(versions.last().map_or(1, |v| v.id + 1), schedule_time);
            if let Some(delta) = &d.def.delta {
                // Windows follow each other: this one starts where the last materialized ended.
                let from = versions.iter().rev().find_map(|v| v.window.filter(|_| v.state == VersionState::Succeeded));
                let from = from.map_or(i64::MIN, |(_, to)| to);
                v.window = Some((from, (schedule_time.saturating_add(delta.offset)).max(from)));
            }
            versions.push(v.clone());
            save_versions(&d.dir, &versions)?;
            v
        };
        let mut marks = None;
        let outcome = match (&d.def.program, &d.def.buckets) {
            (Some(p), _) => {
                self.content(&p.input, "$LATEST_SUCCEEDED").map_err(|e| format!("input: {e}")).and_then(|input| {
                    program::run(p, &d.def.name, &d.dir, v.id, schedule_time, input).map(|(s, b)| (s, b, 0))
                })
            }
            (None, Some(buckets)) => self.compute_buckets(&engine, d, buckets, schedule_time).map(|b| {
                (marks, v.refresh) = (Some(b.marks), b.refresh);
                (b.cols, b.rows, 0)
            }),
            (None, None) => {
                let window = d.def.delta.as_ref().zip(v.window).map(|(delta, (from, to))| DeltaWindow {
                    expr: delta.expr.clone(),
                    from,
                    to,
                });
                if window.is_some() {
                    v.refresh = Refresh::Delta;
                }
                self.compute(&engine, &d.def.query, schedule_time, window, d.def.late_data_timeout.is_some())
            }
        }
        .and_then(|(schema, batch, input_rows)| {
            let spec =
                FileSpec { day: 0, seq: v.id, max_lsn: 0, sort_key: String::new(), replaces: vec![], sources: vec![] };
            let path = d.dir.join(format!("{}.fds", v.id));
            crate::util::fsutil::write_atomic(&path, &encode_file(&spec, &batch, 8192))
                .at(&path)
                .map_err(|e| e.to_string())?;
            Ok((schema, batch.num_rows() as u64, input_rows))
        });
        match outcome {
            Ok((schema, rows, input_rows)) => {
                (v.state, v.rows, v.columns, v.input_rows) = (VersionState::Succeeded, rows, schema, input_rows);
                if let Some(m) = marks {
                    *lock(&d.base) = Some((v.id, m));
                }
            }
            Err(reason) => {
                tracing::warn!(dataset = %d.def.name, version = v.id, "dataset {} version {} failed: {reason}", d.def.name, v.id);
                (v.state, v.reason) = (VersionState::Failed, reason);
            }
        }
        v.completed = Some(now_micros());
        let mut versions = lock(&d.versions);
        if let Some(slot) = versions.iter_mut().find(|x| x.id == v.id) {
            *slot = v.clone();
        }
        let dropped = expire(&d.def, &mut versions, now_micros());
        if v.state == VersionState::Succeeded && !d.def.deliveries.is_empty() {
            // Recorded before the version is SUCCEEDED on disk: a crash in between leaves
            // deliveries of a version that failed, which the restart drops.
            lock(&self.jobs).extend(d.def.deliveries.iter().map(|t| deliver::Job {
                dataset: d.def.name.clone(),
                version: v.id,
                schedule_time,
                target: t.clone(),
                attempts: 0,
                not_before: i64::MIN,
            }));
            self.save_jobs(&d.def.name, &d.dir)?;
        }
        save_versions(&d.dir, &versions)?;
        for id in dropped {
            for file in [format!("{id}.fds"), format!("{id}.stdout"), format!("{id}.stderr")] {
                let _ = std::fs::remove_file(d.dir.join(file));
            }
        }
        drop(versions);
        drop(_one);
        if v.state == VersionState::Succeeded {
            // Datasets triggered by this one run now, at the same schedule time (CREATE refuses
            // triggers that would loop).
            let triggered: Vec<Arc<Ds>> =
                read(&self.sets).iter().filter(|t| t.def.trigger.as_deref() == Some(&d.def.name)).cloned().collect();
            for t in triggered {
                let _ = self.run(&t, schedule_time);
            }
        }
        Ok(v)
    }

    /// Runs a bucketed query: only the buckets where rows changed since the base version,
    /// merged with the base's other buckets, or the whole query when there is no usable base.
    fn compute_buckets(
        &self,
        engine: &Arc<Engine>,
        d: &Ds,
        buckets: &incremental::Buckets,
        now: i64,
    ) -> std::result::Result<Bucketed, String> {
        let Ok(store) = engine.datastore(&buckets.datastore) else {
            // Not a datastore (a table, a channel): no partitions to compare.
            let (cols, rows, _) = self.compute(engine, &d.def.query, now, None, false)?;
            return Ok(Bucketed { cols, rows, marks: Vec::new(), refresh: Refresh::Full });
        };
        // Taken before the query runs: rows appended meanwhile count as changes next time.
        let marks = store.day_generations();
        let latest_ok = lock(&d.versions).iter().rev().find(|v| v.state == VersionState::Succeeded).map(|v| v.id);
        let base = lock(&d.base).clone().filter(|(id, _)| Some(*id) == latest_ok);
        if let Some((id, before)) = base
            && let Ok((cols, old)) = self.content(&d.def.name, &id.to_string())
        {
            let Some((lo, hi)) = incremental::span(&store.changed_ranges(&before), buckets.width) else {
                return Ok(Bucketed { cols, rows: old, marks, refresh: Refresh::Incremental });
            };
            let window = DeltaWindow { expr: "time".into(), from: lo, to: hi };
            let (schema, fresh, _) = self.compute(engine, &d.def.query, now, Some(window), false)?;
            let bucket = old.columns.get(buckets.column);
            if let (true, Some(Values::Timestamp(t)), Some(c)) = (schema == cols, bucket.map(|c| &c.values), bucket) {
                let keep: Vec<u32> = (0..old.num_rows())
                    .filter(|&i| !c.is_valid(i) || t[i] < lo || t[i] >= hi)
                    .map(|i| i as u32)
                    .collect();
                let rows = Batch::concat(&[&old.take(&keep), &fresh]);
                return Ok(Bucketed { cols: schema, rows, marks, refresh: Refresh::Incremental });
            }
        }
        let (cols, rows, _) = self.compute(engine, &d.def.query, now, None, false)?;
        Ok(Bucketed { cols, rows, marks, refresh: Refresh::Full })
    }

    /// Counts the rows of `d`'s materialized delta windows again. Windows that gained rows
    /// are pending; once none has grown for `late_data_timeout`, each gets one `late_data`
    /// event and its version is marked (AWS batched late-data notifications the same way).
    fn check_late(&self, d: &Ds, now: i64) -> Result<()> {
        let (Some(delta), Some(timeout)) = (&d.def.delta, d.def.late_data_timeout) else { return Ok(()) };
        let mut late = lock(&d.late);
        if now - late.last_check < LATE_CHECK && late.last_check != 0 {
            return Ok(());
        }
        late.last_check = now;
        let engine = self.engine()?;
        let windows: Vec<(u64, (i64, i64), u64)> = lock(&d.versions)
            .iter()
            .filter(|v| v.state == VersionState::Succeeded)
            .filter_map(|v| Some((v.id, v.window?, v.input_rows)))
            .collect();
        // The datastores the query reads are the same for every window.
        let any = DeltaWindow { expr: delta.expr.clone(), from: 0, to: 1 };
        let reads = self.plan_query(&engine, &d.def.query, now, Some(any)).map_err(|e| Error::Invalid(e.message))?.2;
        let mut grew = false;
        for (id, (from, to), input_rows) in windows {
            let window = DeltaWindow { expr: delta.expr.clone(), from, to };
            let n = self.count_window(&engine, &reads, &window).map_err(Error::Invalid)?;
            if n > input_rows && late.pending.get(&id) != Some(&n) {
                late.pending.insert(id, n);
                grew = true;
            }
        }
        if grew {
            late.last_growth = now;
        }
        if late.pending.is_empty() || now - late.last_growth < timeout {
            return Ok(());
        }
        let pending = std::mem::take(&mut late.pending);
        let mut versions = lock(&d.versions);
        let mut events = Vec::new();
        for (id, n) in pending {
            let Some(v) = versions.iter_mut().find(|v| v.id == id) else { continue };
            let extra = n.saturating_sub(v.input_rows);
            let (from, to) = v.window.unwrap_or_default();
            let from =
                if from == i64::MIN { "the beginning".to_string() } else { crate::util::time::format_timestamp(from) };
            events.push((
                id,
                format!(
                    "{extra} rows arrived late into the window from {from} to {}",
                    crate::util::time::format_timestamp(to)
                ),
            ));
            (v.late_rows, v.input_rows) = (v.late_rows + extra, n);
        }
        save_versions(&d.dir, &versions)?;
        drop(versions);
        for (id, detail) in events {
            self.event(&d.def.name, Some(id), "late_data", &detail);
        }
        Ok(())
    }

    /// Records an event in `fleetdb.dataset_events`.
    fn event(&self, dataset: &str, version: Option<u64>, event: &str, detail: &str) {
        if let Ok(engine) = self.engine() {
            let values = vec![
                vec![dataset.to_string()],
                vec![version.map_or(String::new(), |v| v.to_string())],
                vec![event.to_string()],
                vec![detail.to_string()],
            ];
            let _ = engine.append_log(EVENTS, &EVENT_COLUMNS, values);
        }
    }

    /// Writes dataset `name`'s pending deliveries to its `deliveries` file (removed when
    /// none are pending).
    fn save_jobs(&self, name: &str, dir: &Path) -> Result<()> {
        let jobs = lock(&self.jobs);
        let mine: Vec<&deliver::Job> = jobs.iter().filter(|j| j.dataset == name).collect();
        let path = dir.join("deliveries");
        if mine.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
                _ => Ok(()),
            };
        }
        recfile::write(&path, &DELIVERIES_MAGIC, VERSION, &deliver::encode(&mine))
    }

    /// Makes the deliveries due at `now`; failures wait and are tried again. A job stays
    /// pending (in memory and in its dataset's file) until it succeeds or is given up.
    pub fn deliver_due(&self, now: i64) {
        let due: Vec<deliver::Job> = lock(&self.jobs).iter().filter(|j| j.not_before <= now).cloned().collect();
        if due.is_empty() {
            return;
        }
        let Ok(engine) = self.engine() else { return };
        let mqtt = lock(&self.mqtt).clone();
        let cx = deliver::Context { data_dir: engine.data_dir(), mqtt: mqtt.as_ref() };
        for job in due {
            let outcome = self
                .content(&job.dataset, &job.version.to_string())
                .map_err(|e| e.to_string())
                .and_then(|(cols, b)| deliver::deliver(&job, &cols, &b, &cx).map_err(|e| e.to_string()));
            let attempts = job.attempts + 1;
            let what = job.target.describe();
            let (event, detail, retry) = match outcome {
                Ok(summary) => ("delivered", format!("{what}: {summary}"), None),
                Err(why) if attempts < deliver::ATTEMPTS => {
                    let pause = deliver::Job::backoff(attempts);
                    let detail = format!("{what}: attempt {attempts}: {why}; next in {} s", pause.as_secs());
                    ("delivery_failed", detail, Some(now_micros() + pause.as_micros() as i64))
                }
                Err(why) => ("delivery_abandoned", format!("{what}: attempt {attempts}: {why}; given up"), None),
            };
            {
                let mut jobs = lock(&self.jobs);
                // A dataset dropped meanwhile took its jobs with it.
                let Some(i) = jobs.iter().position(|j| j.same(&job)) else { continue };
                match retry {
                    Some(at) => (jobs[i].attempts, jobs[i].not_before) = (attempts, at),
                    None => {
                        jobs.remove(i);
                    }
                }
            }
            if let Some(d) = self.find(&job.dataset) {
                let _ = self.save_jobs(&d.def.name, &d.dir);
            }
            match event {
                "delivery_failed" => {
                    tracing::warn!(dataset = %job.dataset, "dataset {} version {}: delivery failed: {detail}", job.dataset, job.version)
                }
                "delivery_abandoned" => {
                    tracing::error!(dataset = %job.dataset, "dataset {} version {}: delivery abandoned: {detail}", job.dataset, job.version)
                }
                _ => {}
            }
            self.event(&job.dataset, Some(job.version), event, &detail);
        }
    }

    pub fn statuses(&self) -> Vec<Status> {
        let mut out: Vec<Status> = read(&self.sets)
            .iter()
            .map(|d| Status { def: d.def.clone(), next_run: next_run(d), last: lock(&d.versions).last().cloned() })
            .collect();
        out.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        out
    }

    /// What dataset `name`'s content looks like before it has any: its query (`None` once a
    /// version SUCCEEDED, or for a program dataset, whose columns only its output tells).
    pub fn without_content(&self, name: &str) -> Option<Option<String>> {
        let d = self.find(name)?;
        let none = !lock(&d.versions).iter().any(|v| v.state == VersionState::Succeeded);
        none.then(|| d.def.program.is_none().then(|| d.def.query.clone()))
    }

    pub fn versions(&self, name: &str) -> Result<Vec<Version>> {
        let d = self.get(name)?;
        Ok(lock(&d.versions).clone())
    }

    /// What a program dataset's run `id` wrote to stdout and stderr (empty for others).
    pub fn logs(&self, name: &str, id: u64) -> Result<(String, String)> {
        let d = self.get(name)?;
        if !lock(&d.versions).iter().any(|v| v.id == id) {
            return Err(Error::not_found(Object::DatasetVersion, format!("version {id} of dataset \"{name}\"")));
        }
        let read = |s: &str| {
            std::fs::read(program::log_path(&d.dir, id, s))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        Ok((read("stdout"), read("stderr")))
    }

    /// The content of version `which` (`$LATEST_SUCCEEDED`, `$LATEST` or an id): its columns
    /// and rows. A version without content (CREATING or FAILED) is an error.
    pub fn content(&self, name: &str, which: &str) -> Result<(Vec<OutCol>, Batch)> {
        let d = self.get(name)?;
        let versions = lock(&d.versions).clone();
        let v = match which {
            "$LATEST_SUCCEEDED" => versions.iter().rev().find(|v| v.state == VersionState::Succeeded),
            "$LATEST" => versions.last(),
            id => versions.iter().find(|v| id.parse::<u64>().is_ok_and(|n| n == v.id)),
        };
        let Some(v) = v else {
            return Err(Error::not_found(Object::DatasetVersion, format!("content {which} of dataset \"{name}\"")));
        };
        if v.state != VersionState::Succeeded {
            return Err(Error::Invalid(format!(
                "version {} of dataset \"{name}\" is {}{}",
                v.id,
                v.state.name(),
                if v.reason.is_empty() { String::new() } else { format!(": {}", v.reason) }
            )));
        }
        let f = DsFile::open(&d.dir.join(format!("{}.fds", v.id)))?;
        Ok((v.columns.clone(), f.read_all()?))
    }
}

/// When `d` runs next: its schedule's next firing after its last scheduled run (or creation).
pub(super) fn next_run(d: &Ds) -> Option<i64> {
    let (_, s) = d.def.schedule.as_ref()?;
    let last = lock(&d.versions).iter().map(|v| v.schedule_time).max().unwrap_or(d.def.created).max(d.def.created);
    s.next_after(d.def.created, last)
}

/// Removes the versions `def` no longer keeps; returns their ids.
pub(super) fn expire(def: &DatasetDef, versions: &mut Vec<Version>, now: i64) -> Vec<u64> {
    let newest = versions.last().map(|v| v.id);
    let newest_ok = versions.iter().rev().find(|v| v.state == VersionState::Succeeded).map(|v| v.id);
    let n = versions.len();
    let keep = |i: usize, v: &Version| {
        Some(v.id) == newest
            || Some(v.id) == newest_ok
            || v.state == VersionState::Creating
            || (def.versions.is_none_or(|k| i + k as usize >= n)
                && def.retention_days.is_none_or(|d| now - v.created < d as i64 * DAY))
    };
    let mut dropped = Vec::new();
    let mut i = 0;
    versions.retain(|v| {
        let k = keep(i, v);
        i += 1;
        if !k {
            dropped.push(v.id);
        }
        k
    });
    dropped
}

impl Datasets {
    /// Plans `query` with `now()` at `now`, through a delta window if given; also returns the
    /// datastores read through the window.
    fn plan_query(
        &self,
        engine: &Arc<Engine>,
        query: &str,
        now: i64,
        window: Option<DeltaWindow>,
    ) -> crate::query::error::SqlResult<(crate::query::plan::Plan, Vec<OutCol>, Vec<String>)> {
        let q = parse_query(query)?;
        let mut binder = Binder::new(engine, EvalCtx { now }, &[]).with_datasets(self.source());
        if let Some(w) = window {
            binder = binder.with_delta(w);
        }
        let (plan, schema) = binder.bind_query(&q)?;
        Ok((plan, schema, binder.delta_reads()))
    }

    /// Rows of `datastores` that fall in `window`.
    fn count_window(
        &self,
        engine: &Arc<Engine>,
        datastores: &[String],
        window: &DeltaWindow,
    ) -> std::result::Result<u64, String> {
        let mut n = 0;
        for ds in datastores {
            let count = format!("SELECT count(*) FROM \"{}\" WHERE {}", ds.replace('"', "\"\""), window.condition());
            let (plan, schema, _) = self.plan_query(engine, &count, window.to, None).map_err(|e| e.message)?;
            let out = concat(run(&plan).map_err(|e| e.message)?, &schema);
            if let Some(Values::Int64(v)) = out.columns.first().map(|c| &c.values) {
                n += v.first().copied().unwrap_or(0) as u64;
            }
        }
        Ok(n)
    }

    /// Runs `query` with `now()` at `now` (through a delta window if given): the output's
    /// columns and rows, and how many rows of its window there were (if `count_input`).
    fn compute(
        &self,
        engine: &Arc<Engine>,
        query: &str,
        now: i64,
        window: Option<DeltaWindow>,
        count_input: bool,
    ) -> std::result::Result<(Vec<OutCol>, Batch, u64), String> {
        let (plan, schema, reads) = self.plan_query(engine, query, now, window.clone()).map_err(|e| e.message)?;
        // The window's rows are counted (for late data) before the query runs: a row arriving
        // in between is reported late rather than missed.
        let input_rows = match &window {
            Some(w) if count_input => self.count_window(engine, &reads, w)?,
            _ => 0,
        };
        let out = concat(run(&plan).map_err(|e| e.message)?, &schema);
        let fields = schema.iter().zip(&out.columns).map(|(s, c)| Field::new(&s.name, c.data_type())).collect();
        Ok((schema, Batch { fields, columns: out.columns }, input_rows))
    }

    /// This service as the binder reads datasets.
    pub fn source(&self) -> Option<Arc<dyn DatasetSource>> {
        self.me.get().and_then(Weak::upgrade).map(|d| d as Arc<dyn DatasetSource>)
    }
}

impl DatasetSource for Datasets {
    fn exists(&self, name: &str) -> bool {
        Datasets::exists(self, name)
    }
    fn without_content(&self, name: &str) -> Option<Option<String>> {
        Datasets::without_content(self, name)
    }
    fn content(&self, name: &str, which: &str) -> Result<(Vec<OutCol>, Batch)> {
        Datasets::content(self, name, which)
    }
    fn logs(&self, name: &str, version: u64) -> Result<(String, String)> {
        Datasets::logs(self, name, version)
    }
}

#[cfg(test)]
mod tests;
