//! The pipeline runner: one background thread per engine that moves every pipeline's new
//! channel messages through its activities into its datastore.
//!
//! Exactly once: the rows of a batch of messages and the channel position after that batch
//! are one datastore append (one WAL record), and a pipeline resumes from the position its
//! datastore holds. A batch that yields no rows moves the position only in memory; after a
//! restart such messages are run again and again yield no rows, so nothing is duplicated
//! (their `pipeline_errors` entries may be, since errors are recorded before the rows).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use super::exec::{Failure, run_pipeline};
use super::{PipelineDef, PipelineSpec};
use crate::batch::Batch;
use crate::channel::Messages;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::util::sync::{lock, read, write};
use crate::util::time::now_micros;

/// The system datastore behind `fleetdb.pipeline_errors`.
pub const ERRORS: &str = "__pipeline_errors";
pub const ERRORS_RETENTION_DAYS: u32 = 30;
/// Messages read from a channel per batch.
const BATCH_MESSAGES: usize = 16_384;
/// How often an idle runner looks for new messages.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// Bytes of a failed message kept in `pipeline_errors`.
const ERROR_MESSAGE_BYTES: usize = 1024;

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
}

struct Running {
    def: RwLock<PipelineDef>,
    counters: Mutex<Counters>,
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
}

impl Pipelines {
    /// Loads the pipelines of `engine`'s data directory. Use through [`Engine::service`], so
    /// an engine has one runner, then [`Pipelines::start`].
    pub fn new(engine: &Arc<Engine>) -> Result<Pipelines> {
        engine.system_log(ERRORS, ERRORS_RETENTION_DAYS, &ERROR_COLUMNS)?;
        let defs = super::load(engine.data_dir())?;
        let running = defs
            .into_iter()
            .map(|def| Arc::new(Running { def: RwLock::new(def), counters: Mutex::default() }))
            .collect();
        Ok(Pipelines {
            engine: Arc::downgrade(engine),
            running: RwLock::new(running),
            ddl: Mutex::new(()),
            started: AtomicBool::new(false),
        })
    }

    /// Starts the runner thread (once; later calls do nothing). It ends when the runner is
    /// dropped (with its engine).
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let me = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("fleetdb-pipelines".into())
            .spawn(move || {
                while let Some(p) = me.upgrade() {
                    let worked = p.run_once();
                    drop(p);
                    if !worked {
                        std::thread::sleep(IDLE_POLL);
                    }
                }
            })
            .expect("spawning the pipeline thread");
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

    /// Checks that a definition's channel, datastore and enrichment tables exist.
    fn check(&self, def: &PipelineDef) -> Result<()> {
        let engine = self.engine()?;
        engine.channel(&def.channel)?;
        engine.datastore(&def.datastore)?;
        for a in &def.activities {
            if let super::Activity::Enrich { table, .. } = a {
                engine.table(table)?;
            }
        }
        Ok(())
    }

    /// CREATE PIPELINE: the pipeline starts at the channel's current end.
    pub fn create(&self, spec: PipelineSpec, if_not_exists: bool) -> Result<bool> {
        let _g = lock(&self.ddl);
        if self.find(&spec.name).is_some() {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(Error::AlreadyExists(format!("pipeline \"{}\"", spec.name)))
            };
        }
        let engine = self.engine()?;
        let channel = spec.channel.clone().unwrap_or_default();
        let start = engine.channel(&channel)?.next_offset();
        let id = self.defs().iter().map(|d| d.id + 1).max().unwrap_or(0).max(now_micros() as u64);
        let def = spec.into_def(id, start).map_err(Error::Invalid)?;
        self.check(&def)?;
        write(&self.running).push(Arc::new(Running { def: RwLock::new(def), counters: Mutex::default() }));
        self.save()?;
        Ok(true)
    }

    /// ALTER PIPELINE: new activities (and options) for the messages not yet processed.
    pub fn alter(&self, spec: PipelineSpec) -> Result<()> {
        let _g = lock(&self.ddl);
        let r = self.find(&spec.name).ok_or_else(|| Error::NotFound(format!("pipeline \"{}\"", spec.name)))?;
        let mut def = read(&r.def).clone();
        if spec.channel.as_ref().is_some_and(|c| *c != def.channel)
            || spec.datastore.as_ref().is_some_and(|d| *d != def.datastore)
        {
            return Err(Error::Invalid(
                "ALTER PIPELINE keeps the channel and the datastore; create a new pipeline".into(),
            ));
        }
        super::apply_spec(&mut def, spec.activities, &spec.options).map_err(Error::Invalid)?;
        self.check(&def)?;
        *write(&r.def) = def;
        self.save()
    }

    pub fn drop_pipeline(&self, name: &str) -> Result<()> {
        let _g = lock(&self.ddl);
        let before = read(&self.running).len();
        write(&self.running).retain(|r| read(&r.def).name != name);
        if read(&self.running).len() == before {
            return Err(Error::NotFound(format!("pipeline \"{name}\"")));
        }
        self.save()
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
            match self.step(&r) {
                Ok(w) => {
                    worked |= w;
                    lock(&r.counters).stalled = None;
                }
                Err(e) => lock(&r.counters).stalled = Some(e.to_string()),
            }
        }
        worked
    }

    fn step(&self, r: &Running) -> Result<bool> {
        let engine = self.engine()?;
        let def = read(&r.def).clone();
        let ch = engine.channel(&def.channel)?;
        let pos = self.position(&engine, &def, &lock(&r.counters))?;
        if ch.next_offset() <= pos {
            return Ok(false);
        }
        let msgs = ch.read_from(pos, BATCH_MESSAGES)?;
        if msgs.is_empty() {
            return Ok(false);
        }
        let end = msgs.end_offset();
        let out = run_pipeline(&engine, &def, &msgs);
        record_failures(&engine, &def.name, &msgs, &out.failures)?;
        let rows = out.rows.num_rows();
        if rows > 0 {
            engine.append_rows(&def.datastore, out.rows, Some((def.position_key(), end)))?;
        }
        let mut c = lock(&r.counters);
        c.position = Some(end);
        c.messages_in += msgs.len() as u64;
        c.rows_out += rows as u64;
        c.filtered += out.filtered as u64;
        c.errors += out.failures.iter().filter(|f| f.activity != "timestamp").count() as u64;
        Ok(true)
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
        super::exec::run_activities(engine, &def.activities, decoded.batch, &mut failures, &mut |_, b, _| {
            steps.push(b.clone())
        });
        (steps, failures)
    }
}

/// Columns of `fleetdb.pipeline_errors` after `time`.
const ERROR_COLUMNS: [&str; 5] = ["pipeline", "activity", "reason", "message_id", "message"];

/// Appends failures to `fleetdb.pipeline_errors`.
fn record_failures(engine: &Engine, pipeline: &str, msgs: &Messages, failures: &[Failure]) -> Result<()> {
    let column = |f: &dyn Fn(&Failure) -> String| failures.iter().map(f).collect::<Vec<String>>();
    let values = vec![
        column(&|_| pipeline.to_string()),
        column(&|f| f.activity.clone()),
        column(&|f| f.reason.clone()),
        column(&|f| msgs.ids.get(f.message).to_string()),
        column(&|f| crate::ingest::check::printable(msgs.payloads.get(f.message), ERROR_MESSAGE_BYTES)),
    ];
    engine.append_log(ERRORS, &ERROR_COLUMNS, values)
}
