//! REPROCESS PIPELINE: running a pipeline again over channel messages it has already
//! processed, replacing the rows it made from them (AWS StartPipelineReprocessing).
//!
//! Semantics (README § Pipelines says the same for users):
//! - The range is of arrival times: the messages from the first one that arrived at or after
//!   `FROM` up to (not including) the first that arrived at or after `TO`, in channel order,
//!   and never past the messages the pipeline itself has processed so far. Without `FROM` it
//!   starts at the oldest message the channel keeps; without `TO` it ends where the pipeline is.
//!   Messages from before the pipeline was created are included: reprocessing backfills.
//! - The pipeline's current definition runs over them, with its stateful activities starting
//!   empty. Batch by batch, the rows the pipeline made earlier from those messages (found by
//!   the lineage columns `__pipeline_id` and `__offset`) are deleted, then the new rows are
//!   appended. Rows are never duplicated: a second reprocessing of the same range replaces
//!   the first one's rows.
//! - One reprocessing per pipeline at a time. CANCEL stops it between batches: the batches
//!   done stay replaced, the rest keep their old rows.
//! - Reprocessings run in the background; their history lasts while the server runs. A crash
//!   in the middle can leave the batch in progress without rows (deleted, not yet appended);
//!   reprocessing the range again restores them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::exec::run_pipeline;
use super::state::PipelineState;
use super::{LINEAGE_OFFSET, LINEAGE_PIPELINE, PipelineDef};
use crate::channel::Channel;
use crate::engine::Engine;
use crate::error::Result;
use crate::util::sync::lock;
use crate::util::time::now_micros;

/// Messages per reprocessing batch: large, since each batch rewrites the files holding the
/// rows it replaces.
const BATCH_MESSAGES: usize = 131_072;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Cancelled,
    Failed,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Cancelled => "CANCELLED",
            JobState::Failed => "FAILED",
        }
    }
}

/// What SHOW REPROCESSING shows of one reprocessing.
#[derive(Clone, Debug)]
pub struct Progress {
    pub state: JobState,
    pub messages_total: u64,
    pub messages_done: u64,
    pub rows_deleted: u64,
    pub rows_written: u64,
    pub ended: Option<i64>,
    pub reason: Option<String>,
}

pub struct Job {
    pub id: u64,
    pub pipeline: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub started: i64,
    cancel: AtomicBool,
    progress: Mutex<Progress>,
}

impl Job {
    pub fn new(id: u64, pipeline: &str, from: Option<i64>, to: Option<i64>) -> Job {
        Job {
            id,
            pipeline: pipeline.to_string(),
            from,
            to,
            started: now_micros(),
            cancel: AtomicBool::new(false),
            progress: Mutex::new(Progress {
                state: JobState::Running,
                messages_total: 0,
                messages_done: 0,
                rows_deleted: 0,
                rows_written: 0,
                ended: None,
                reason: None,
            }),
        }
    }

    pub fn progress(&self) -> Progress {
        lock(&self.progress).clone()
    }

    pub fn is_running(&self) -> bool {
        lock(&self.progress).state == JobState::Running
    }

    /// Asks the job to stop after its current batch.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    fn finish(&self, state: JobState, reason: Option<String>) {
        let mut p = lock(&self.progress);
        (p.state, p.reason, p.ended) = (state, reason, Some(now_micros()));
    }

    /// Runs the reprocessing of `def` up to channel position `until` (where the pipeline is),
    /// recording how it ends.
    pub fn run(&self, engine: &Arc<Engine>, def: &PipelineDef, until: u64) {
        match self.work(engine, def, until) {
            Ok(true) => self.finish(JobState::Succeeded, None),
            Ok(false) => self.finish(JobState::Cancelled, None),
            Err(e) => self.finish(JobState::Failed, Some(e.to_string())),
        }
    }

    /// `Ok(false)` when cancelled.
    fn work(&self, engine: &Arc<Engine>, def: &PipelineDef, until: u64) -> Result<bool> {
        let ch = engine.channel(&def.channel)?;
        let ds = engine.datastore(&def.datastore)?;
        let oldest = ch.read_from(0, 1)?.first_offset;
        let start = match self.from {
            Some(t) => first_at_or_after(&ch, oldest, until, t)?,
            None => oldest,
        };
        let end = match self.to {
            Some(t) => first_at_or_after(&ch, start, until, t)?,
            None => until,
        };
        lock(&self.progress).messages_total = end.saturating_sub(start);
        let mut state = PipelineState::new(&def.activities);
        let mut pos = start;
        while pos < end {
            if self.cancel.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let msgs = ch.read_from(pos, BATCH_MESSAGES.min((end - pos) as usize))?;
            if msgs.is_empty() {
                break;
            }
            let n = msgs.len().min((end - msgs.first_offset) as usize);
            let msgs = if n < msgs.len() { msgs.slice(0, n) } else { msgs };
            let out = run_pipeline(engine, def, &mut state, &msgs);
            super::errors::record_failures(engine, &def.name, &msgs, &out.failures)?;
            let range = msgs.first_offset as i64..msgs.end_offset() as i64;
            let deleted = ds.delete_lineage(LINEAGE_PIPELINE, def.id as i64, LINEAGE_OFFSET, range)?;
            let written = out.rows.num_rows() as u64;
            if written > 0 {
                engine.append_rows(&def.datastore, out.rows, None)?;
            }
            pos = msgs.end_offset();
            let mut p = lock(&self.progress);
            p.messages_done = pos - start;
            p.rows_deleted += deleted;
            p.rows_written += written;
        }
        Ok(true)
    }
}

/// The first offset in `lo..hi` whose message arrived at or after `t` (`hi` if none), by
/// binary search: arrival times grow with offsets.
fn first_at_or_after(ch: &Channel, mut lo: u64, mut hi: u64, t: i64) -> Result<u64> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let m = ch.read_from(mid, 1)?;
        match m.received_at.first() {
            Some(&at) if m.first_offset == mid && at < t => lo = mid + 1,
            Some(_) if m.first_offset == mid => hi = mid,
            // Not kept any more: everything before the first kept message is before `t`.
            _ => lo = mid + 1,
        }
    }
    Ok(lo)
}
