//! The pipeline runner: one background thread per engine that moves every pipeline's new
//! channel messages through its activities into its datastore.
//!
//! Exactly once: the rows of a batch of messages and the channel position after that batch
//! are one datastore append (one WAL record), and a pipeline resumes from the position its
//! datastore holds. A batch that yields no rows moves the position only in memory; after a
//! restart such messages are run again and again yield no rows, so nothing is duplicated
//! (their `pipeline_errors` entries may be, since errors are recorded before the rows).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use super::errors::{ERROR_COLUMNS, ERRORS, ERRORS_RETENTION_DAYS, record_failures, record_pause};
use super::exec::{Failure, run_pipeline};
use super::reprocess::Job;
use super::state::PipelineState;
use super::{PipelineDef, PipelineSpec};
use crate::batch::Batch;
use crate::channel::Messages;
use crate::engine::Engine;
use crate::error::{Error, Object, Result};
use crate::util::sync::{lock, read, write};
use crate::util::time::now_micros;

/// Messages read from a channel per batch.
const BATCH_MESSAGES: usize = 16_384;
/// How often an idle runner looks for new messages.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// How often a pipeline's activity state is checkpointed while it changes.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A pipeline pauses when every message of this many batches in a row failed, and they were at
/// least [`PAUSE_AFTER_FAILED_MESSAGES`]: something is broken (a LAMBDA that always fails, an
/// expression that cannot work), and the rest of the channel waits for ALTER PIPELINE rather
/// than being read and dropped. A few bad messages in a row do not pause it.
const PAUSE_AFTER_FAILED_BATCHES: u32 = 3;
const PAUSE_AFTER_FAILED_MESSAGES: u64 = 1_000;
/// Directory (in the data directory) of the activity state checkpoints, one file per pipeline.
pub(crate) const STATE_DIR: &str = "pipeline-state";
const STATE_MAGIC: [u8; 8] = *b"FLEETPST";
const STATE_VERSION: u32 = 1;

/// Counters of one pipeline since the server started.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub messages_in: u64,
    pub rows_out: u64,
    pub filtered: u64,
    pub errors: u64,
    /// The next channel offset to process (as far as this process knows).
    pub position: Option<u64>,
    /// The last failure of the pipeline as a whole (a missing datastore, a full disk), if
    /// it has not succeeded since.
    pub stalled: Option<String>,
    /// Why the pipeline stopped taking batches: one failed in a way that may not be retried
    /// (an internal error). It stays paused until ALTER PIPELINE or a restart.
    pub paused: Option<String>,
    /// Batches, and their messages, in a row in which every message failed.
    pub failed_batches: u32,
    pub failed_messages: u64,
    /// While stalled: failures in a row, and when the next batch is tried (50 ms doubling up
    /// to 5 s), so a failing disk is not retried in a busy loop that re-reads and re-runs the
    /// same messages.
    pub retries: u32,
    pub retry_at: Option<std::time::Instant>,
}

struct Running {
    def: RwLock<PipelineDef>,
    counters: Mutex<Counters>,
    /// The stateful activities' state; held while a batch runs.
    state: Mutex<StateSlot>,
}

impl Running {
    fn new(def: PipelineDef) -> Arc<Running> {
        Arc::new(Running { def: RwLock::new(def), counters: Mutex::default(), state: Mutex::default() })
    }
}

/// A pipeline's activity state and its last checkpoint.
#[derive(Default)]
struct StateSlot {
    /// `None` until loaded (from the checkpoint, then replay) by the first batch.
    state: Option<PipelineState>,
    saved_at: Option<Instant>,
    /// The position `state` belongs to, if it changed since it was saved.
    unsaved: Option<u64>,
}

/// What SHOW PIPELINES shows of one pipeline.
#[derive(Clone, Debug)]
pub struct Status {
    pub def: PipelineDef,
    pub counters: Counters,
    pub lag_messages: u64,
    pub lag_seconds: f64,
}

pub struct Pipelines {
    engine: Weak<Engine>,
    running: RwLock<Vec<Arc<Running>>>,
    /// Serialises definition changes and the pipelines file.
    ddl: Mutex<()>,
    started: AtomicBool,
    /// Reprocessings since the server started, oldest first.
    jobs: Mutex<Vec<Arc<Job>>>,
}

impl Pipelines {
    /// Loads the pipelines of `engine`'s data directory. One per engine (the statement layer's `Services` holds it), so
    /// an engine has one runner, then [`Pipelines::start`].
    pub fn new(engine: &Arc<Engine>) -> Result<Pipelines> {
        engine.system_log(ERRORS, ERRORS_RETENTION_DAYS, &ERROR_COLUMNS)?;
        let defs = super::load(engine.data_dir())?;
        let running = defs.into_iter().map(Running::new).collect();
        Ok(Pipelines {
            engine: Arc::downgrade(engine),
            running: RwLock::new(running),
            ddl: Mutex::new(()),
            started: AtomicBool::new(false),
            jobs: Mutex::default(),
        })
    }

    /// Starts the runner thread (once; later calls do nothing). It ends when the runner is
    /// dropped (with its engine).
    pub fn start(self: &Arc<Self>) {
        crate::util::sync::spawn_service_loop(self, &self.started, "fleetdb-pipelines", |p| {
            (!p.run_once()).then_some(IDLE_POLL)
        });
    }

    fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.upgrade().ok_or_else(|| Error::Invalid("the engine is shut down".into()))
    }

    fn defs(&self) -> Vec<PipelineDef> {
        read(&self.running).iter().map(|r| read(&r.def).clone()).collect()
    }

    fn save(&self) -> Result<()> {
        super::save(self.engine()?.data_dir(), &self.defs())
    }

    fn find(&self, name: &str) -> Option<Arc<Running>> {
        read(&self.running).iter().find(|r| read(&r.def).name == name).cloned()
    }

    /// Checks that a definition's channel, datastore and enrichment tables exist, and that
    /// its expressions parse as the runner will parse them (within the same bounds).
    fn check(&self, def: &PipelineDef) -> Result<()> {
        let engine = self.engine()?;
        engine.channel(&def.channel)?;
        engine.datastore(&def.datastore)?;
        super::exec::check_activities(&def.activities)
            .map_err(|e| Error::Constraint { sqlstate: e.sqlstate, message: e.message })?;
        for a in &def.activities {
            if let super::Activity::Enrich { table, .. } = a {
                engine.table(table)?;
            }
        }
        Ok(())
    }

    /// CREATE PIPELINE: the pipeline starts at the channel's current end.
    pub fn create(&self, spec: PipelineSpec, if_not_exists: bool) -> Result<bool> {
        crate::engine::validate_name(&spec.name)?;
        let _g = lock(&self.ddl);
        if self.find(&spec.name).is_some() {
            return if if_not_exists { Ok(false) } else { Err(Error::already_exists(Object::Pipeline, &spec.name)) };
        }
        let engine = self.engine()?;
        let channel = spec.channel.clone().unwrap_or_default();
        let start = engine.channel(&channel)?.next_offset();
        let id = self.defs().iter().map(|d| d.id + 1).max().unwrap_or(0).max(now_micros() as u64);
        let def = spec.into_def(id, start)?;
        self.check(&def)?;
        write(&self.running).push(Running::new(def));
        self.save()?;
        Ok(true)
    }

    /// ALTER PIPELINE: new activities (and options) for the messages not yet processed.
    pub fn alter(&self, spec: PipelineSpec) -> Result<()> {
        let _g = lock(&self.ddl);
        let r = self.find(&spec.name).ok_or_else(|| Error::not_found(Object::Pipeline, &spec.name))?;
        let mut def = read(&r.def).clone();
        if spec.channel.as_ref().is_some_and(|c| *c != def.channel)
            || spec.datastore.as_ref().is_some_and(|d| *d != def.datastore)
        {
            return Err(Error::Invalid(
                "ALTER PIPELINE keeps the channel and the datastore; create a new pipeline".into(),
            ));
        }
        super::apply_spec(&mut def, spec.activities, &spec.options)?;
        self.check(&def)?;
        // Between batches: unchanged activities keep their state, saved with the new definition.
        let mut slot = lock(&r.state);
        if let Some(st) = slot.state.take() {
            let st = PipelineState::carry(&def.activities, st);
            let pos = lock(&r.counters).position;
            if let Some(pos) = pos {
                save_state(self.engine()?.data_dir(), def.id, pos, &st)?;
                slot.unsaved = None;
            }
            slot.state = Some(st);
        }
        *write(&r.def) = def;
        drop(slot);
        let mut c = lock(&r.counters);
        (c.paused, c.failed_batches, c.failed_messages) = (None, 0, 0);
        drop(c);
        self.save()
    }

    pub fn drop_pipeline(&self, name: &str) -> Result<()> {
        let _g = lock(&self.ddl);
        let r = self.find(name).ok_or_else(|| Error::not_found(Object::Pipeline, name))?;
        let _busy = lock(&r.state);
        write(&self.running).retain(|x| !Arc::ptr_eq(x, &r));
        self.save()?;
        let path = state_path(self.engine()?.data_dir(), read(&r.def).id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        }
    }

    /// Every pipeline's definition.
    pub fn definitions(&self) -> Vec<PipelineDef> {
        read(&self.running).iter().map(|r| read(&r.def).clone()).collect()
    }

    pub fn definition(&self, name: &str) -> Option<PipelineDef> {
        self.find(name).map(|r| read(&r.def).clone())
    }

    pub fn statuses(&self) -> Vec<Status> {
        let engine = self.engine.upgrade();
        let mut out: Vec<Status> = read(&self.running)
            .iter()
            .map(|r| {
                let def = read(&r.def).clone();
                let mut counters = lock(&r.counters).clone();
                let (mut lag_messages, mut lag_seconds) = (0, 0.0);
                if let Some(e) = &engine
                    && let (Ok(ch), Ok(pos)) = (e.channel(&def.channel), self.position(e, &def, &counters))
                {
                    counters.position = Some(pos);
                    lag_messages = ch.next_offset().saturating_sub(pos);
                    if lag_messages > 0
                        && let Ok(m) = ch.read_from(pos, 1)
                        && let Some(&t) = m.received_at.first()
                    {
                        lag_seconds = (now_micros() - t).max(0) as f64 / 1e6;
                    }
                }
                Status { def, counters, lag_messages, lag_seconds }
            })
            .collect();
        out.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        out
    }

    /// Where `def` resumes: after what its datastore holds, or what this process did since.
    fn position(&self, engine: &Engine, def: &PipelineDef, c: &Counters) -> Result<u64> {
        let stored = engine.datastore(&def.datastore)?.source_offset(&def.position_key()).unwrap_or(def.start_offset);
        Ok(stored.max(c.position.unwrap_or(0)))
    }

    /// One batch for each pipeline that has new messages. Returns whether any had.
    pub fn run_once(&self) -> bool {
        let running: Vec<Arc<Running>> = read(&self.running).clone();
        let mut worked = false;
        for r in running {
            {
                let c = lock(&r.counters);
                if c.paused.is_some() || c.retry_at.is_some_and(|t| Instant::now() < t) {
                    continue;
                }
            }
            // A defect in one pipeline's batch pauses that pipeline; the others and the
            // process go on.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step(&r))) {
                Ok(Ok(w)) => {
                    worked |= w;
                    let mut c = lock(&r.counters);
                    (c.stalled, c.retries, c.retry_at) = (None, 0, None);
                }
                Ok(Err(e)) => {
                    let mut c = lock(&r.counters);
                    // Logged when it starts or changes, not at every retry.
                    if c.stalled.as_deref() != Some(e.to_string().as_str()) {
                        let name = read(&r.def).name.clone();
                        tracing::error!(pipeline = %name, "pipeline {name}: a batch failed and is retried: {e}");
                    }
                    c.stalled = Some(e.to_string());
                    c.retries = c.retries.saturating_add(1);
                    let wait = Duration::from_millis(50u64 << c.retries.min(7)).min(Duration::from_secs(5));
                    c.retry_at = Some(Instant::now() + wait);
                }
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("unknown");
                    let reason = format!("internal error in a batch: {what}");
                    // The batch's messages stay in the channel; the state may be half-applied.
                    let mut slot = lock(&r.state);
                    (slot.state, slot.unsaved) = (None, None);
                    drop(slot);
                    if let Ok(engine) = self.engine() {
                        let name = read(&r.def).name.clone();
                        let _ = record_pause(&engine, &name, &reason);
                    }
                    lock(&r.counters).paused = Some(reason);
                }
            }
        }
        worked
    }

    fn step(&self, r: &Running) -> Result<bool> {
        let engine = self.engine()?;
        let mut slot = lock(&r.state);
        // Polled every few milliseconds: an idle pipeline copies nothing (a definition may
        // hold thousands of terms).
        let (msgs, pos) = {
            let def = read(&r.def);
            let ch = engine.channel(&def.channel)?;
            let pos = self.position(&engine, &def, &lock(&r.counters))?;
            if ch.next_offset() <= pos && slot.state.is_some() {
                if let Some(at) = slot.unsaved
                    && slot.saved_at.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY)
                {
                    save_state(engine.data_dir(), def.id, at, slot.state.as_ref().expect("checked above"))?;
                    (slot.saved_at, slot.unsaved) = (Some(Instant::now()), None);
                }
                return Ok(false);
            }
            let msgs = if ch.next_offset() > pos { ch.read_from(pos, BATCH_MESSAGES)? } else { Messages::default() };
            (msgs, pos)
        };
        let def = read(&r.def).clone();
        if slot.state.is_none() {
            slot.state = Some(self.load_state(&engine, &def, pos)?);
        }
        if msgs.is_empty() {
            return Ok(false);
        }
        let end = msgs.end_offset();
        let state = slot.state.as_mut().expect("loaded above");
        let mut out = run_pipeline(&engine, &def, state, &msgs);
        out.fit_columns(&engine.datastore(&def.datastore)?.schema());
        let rows = out.rows.num_rows();
        let failed: std::collections::HashSet<usize> =
            out.failures.iter().filter(|f| f.activity != "timestamp").map(|f| f.message).collect();
        if failed.len() == msgs.len() {
            let mut c = lock(&r.counters);
            c.failed_batches += 1;
            c.failed_messages += msgs.len() as u64;
            if c.failed_batches >= PAUSE_AFTER_FAILED_BATCHES && c.failed_messages >= PAUSE_AFTER_FAILED_MESSAGES {
                let first = out.failures.iter().find(|f| f.activity != "timestamp").expect("every message failed");
                let reason = format!(
                    "every message of the last {} batches ({} messages) failed, the last at {}: {}; the messages from \
                     offset {pos} wait in the channel until ALTER PIPELINE",
                    c.failed_batches, c.failed_messages, first.activity, first.reason
                );
                (c.failed_batches, c.failed_messages) = (0, 0);
                c.paused = Some(reason.clone());
                drop(c);
                // The state saw messages that are not stored: rebuild it when the pipeline resumes.
                (slot.state, slot.unsaved) = (None, None);
                let _ = record_pause(&engine, &def.name, &reason);
                return Ok(false);
            }
        } else {
            let mut c = lock(&r.counters);
            (c.failed_batches, c.failed_messages) = (0, 0);
        }
        // The position goes with the rows, or alone when there are none, so it is durable
        // either way and the state's checkpoints never run ahead of it.
        let stored = record_failures(&engine, &def.name, &msgs, &out.failures)
            .and_then(|()| engine.append_rows(&def.datastore, out.rows, Some((def.position_key(), end))));
        if let Err(e) = stored {
            // The state has seen messages that are not stored: rebuild it at the next batch.
            (slot.state, slot.unsaved) = (None, None);
            return Err(e);
        }
        let state = slot.state.as_ref().expect("loaded above");
        if !state.is_empty() {
            slot.unsaved = Some(end);
            if slot.saved_at.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY) {
                save_state(engine.data_dir(), def.id, end, slot.state.as_ref().expect("loaded above"))?;
                (slot.saved_at, slot.unsaved) = (Some(Instant::now()), None);
            }
        }
        drop(slot);
        let mut c = lock(&r.counters);
        c.position = Some(end);
        c.messages_in += msgs.len() as u64;
        c.rows_out += rows as u64;
        c.filtered += out.filtered as u64;
        c.errors += out.failures.iter().filter(|f| f.activity != "timestamp").count() as u64;
        Ok(true)
    }

    /// REPROCESS PIPELINE: starts reprocessing the messages that arrived from `from` to
    /// `to` (module [`super::reprocess`]) in the background. Returns its id.
    pub fn reprocess(&self, name: &str, from: Option<i64>, to: Option<i64>) -> Result<u64> {
        let engine = self.engine()?;
        let r = self.find(name).ok_or_else(|| Error::not_found(Object::Pipeline, name))?;
        let def = read(&r.def).clone();
        let until = self.position(&engine, &def, &lock(&r.counters))?;
        let mut jobs = lock(&self.jobs);
        if let Some(j) = jobs.iter().find(|j| j.pipeline == name && j.is_running()) {
            return Err(Error::Constraint {
                sqlstate: "55006",
                message: format!("pipeline \"{name}\" is being reprocessed already (reprocessing {})", j.id),
            });
        }
        let id = jobs.last().map_or(1, |j| j.id + 1);
        let job = Arc::new(Job::new(id, name, from, to));
        jobs.push(job.clone());
        std::thread::Builder::new()
            .name(format!("fleetdb-reprocess-{id}"))
            .stack_size(crate::util::sync::STATEMENT_STACK)
            .spawn(move || {
                crate::util::sync::note_stack_size(crate::util::sync::STATEMENT_STACK);
                job.run(&engine, &def, until)
            })
            .map_err(|e| Error::Invalid(format!("starting the reprocessing: {e}")))?;
        Ok(id)
    }

    /// The reprocessings since the server started, oldest first.
    pub fn reprocessings(&self) -> Vec<Arc<Job>> {
        lock(&self.jobs).clone()
    }

    /// CANCEL REPROCESSING: the job stops after its current batch.
    pub fn cancel_reprocessing(&self, id: u64) -> Result<()> {
        let job = lock(&self.jobs).iter().find(|j| j.id == id).cloned();
        match job {
            Some(j) if j.is_running() => {
                j.cancel();
                Ok(())
            }
            Some(j) => Err(Error::Invalid(format!("reprocessing {id} has ended ({})", j.progress().state.name()))),
            None => Err(Error::not_found(Object::Reprocessing, id.to_string())),
        }
    }

    /// The state of `def`'s activities at channel position `pos`: the last checkpoint, then
    /// the messages from there to `pos` run again through the activities up to the last
    /// stateful one, storing nothing.
    fn load_state(&self, engine: &Arc<Engine>, def: &PipelineDef, pos: u64) -> Result<PipelineState> {
        let Some(last) = def.activities.iter().rposition(|a| a.is_stateful()) else {
            return Ok(PipelineState::new(&def.activities));
        };
        let (mut at, st) = load_saved_state(engine.data_dir(), def.id)?
            .unwrap_or_else(|| (def.start_offset, PipelineState::default()));
        let mut st = PipelineState::carry(&def.activities, st);
        let prefix = PipelineDef { activities: def.activities[..=last].to_vec(), timestamp: None, ..def.clone() };
        let ch = engine.channel(&def.channel)?;
        while at < pos {
            let msgs = ch.read_from(at, BATCH_MESSAGES.min((pos - at) as usize))?;
            if msgs.is_empty() {
                break;
            }
            let n = msgs.len().min((pos - msgs.first_offset) as usize);
            let msgs = if n < msgs.len() { msgs.slice(0, n) } else { msgs };
            run_pipeline(engine, &prefix, &mut st, &msgs);
            at = msgs.end_offset();
        }
        Ok(st)
    }

    /// Runs `def`'s activities over `msgs` without storing anything (TEST PIPELINE): the
    /// batch after each activity.
    pub fn trace(engine: &Arc<Engine>, def: &PipelineDef, msgs: &Messages) -> (Vec<Batch>, Vec<Failure>) {
        let decoded = super::decode::decode(msgs, &[]);
        let mut failures: Vec<Failure> = decoded
            .errors
            .into_iter()
            .map(|(message, reason)| Failure { message, activity: "decode".into(), reason })
            .collect();
        let mut steps = vec![decoded.batch.clone()];
        let mut state = PipelineState::new(&def.activities);
        super::exec::run_activities(
            engine,
            &def.activities,
            decoded.batch,
            &mut state,
            &msgs.received_at,
            &mut failures,
            &mut |_, b, _| steps.push(b.clone()),
        );
        (steps, failures)
    }
}

fn state_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(STATE_DIR).join(format!("{id}.state"))
}

/// Writes the checkpoint of pipeline `id`'s activity state at channel position `pos`
/// (storage-format.md § "Pipelines").
fn save_state(dir: &Path, id: u64, pos: u64, st: &PipelineState) -> Result<()> {
    use crate::util::bytes::PutBytes;
    let sdir = dir.join(STATE_DIR);
    crate::util::fsutil::create_dir_durable(&sdir).map_err(|e| Error::io(&sdir, e))?;
    let mut b = Vec::new();
    b.put_u64(pos);
    st.encode(&mut b);
    crate::util::recfile::write(&state_path(dir, id), &STATE_MAGIC, STATE_VERSION, &b)
}

/// The checkpoint of pipeline `id`: its position and state, if there is one.
fn load_saved_state(dir: &Path, id: u64) -> Result<Option<(u64, PipelineState)>> {
    let path = state_path(dir, id);
    let Some(body) = crate::util::recfile::read(&path, &STATE_MAGIC, STATE_VERSION, "pipeline state")? else {
        return Ok(None);
    };
    let corrupt = || Error::corrupt(&path, "pipeline state checkpoint");
    let mut r = crate::util::bytes::ByteReader::new(&body);
    let pos = r.u64().ok_or_else(corrupt)?;
    let st = PipelineState::decode(&mut r).filter(|_| r.is_empty()).ok_or_else(corrupt)?;
    Ok(Some((pos, st)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Messages;

    /// State of every kind survives its checkpoint file; damage is refused.
    #[test]
    fn activity_state_checkpoints_round_trip() {
        let sql = "CREATE PIPELINE p FROM CHANNEL c LATEST (site, ok) BY id DEDUPLICATE ON (id, seq) WITHIN '1 hour' \
                   REMOVE OUTLIERS ON v BY id ZSCORE 3 OVER 50 REMOVE OUTLIERS ON v RANGE -1 TO 1e6 INTO DATASTORE d";
        let def = crate::pipeline::grammar::definition(sql).unwrap().into_def(9, 0).unwrap();
        let mut msgs = Messages::default();
        for i in 0..40 {
            let p = format!(r#"{{"id": "m{}", "seq": {i}, "v": {}, "site": "s", "ok": {}}}"#, i % 3, i % 5, i % 2 == 0);
            msgs.push(i, "", "", p.as_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), crate::engine::EngineConfig::default()).unwrap();
        let mut st = PipelineState::new(&def.activities);
        super::super::exec::run_pipeline(&engine, &def, &mut st, &msgs);
        assert!(!st.is_empty());
        assert_eq!(load_saved_state(dir.path(), 9).unwrap(), None);
        save_state(dir.path(), 9, 123, &st).unwrap();
        assert_eq!(load_saved_state(dir.path(), 9).unwrap(), Some((123, st.clone())));
        let path = state_path(dir.path(), 9);
        let mut b = std::fs::read(&path).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(&path, b).unwrap();
        assert!(load_saved_state(dir.path(), 9).is_err());
    }
}
