//! `fleetdb.pipeline_errors`: the system log of what pipelines could not process (a message
//! and why, or a pipeline's pause), written by the runner and by reprocessing.

use super::exec::Failure;
use crate::channel::Messages;
use crate::engine::Engine;
use crate::error::Result;

/// The system datastore behind `fleetdb.pipeline_errors`.
pub(crate) const ERRORS: &str = "__pipeline_errors";
pub(crate) const ERRORS_RETENTION_DAYS: u32 = 30;
/// Bytes of a failed message kept in `pipeline_errors`.
const ERROR_MESSAGE_BYTES: usize = 1024;

/// Columns of `fleetdb.pipeline_errors` after `time`.
pub(crate) const ERROR_COLUMNS: [&str; 5] = ["pipeline", "activity", "reason", "message_id", "message"];

/// Notes in `fleetdb.pipeline_errors` that `pipeline` was paused, and why.
pub(crate) fn record_pause(engine: &Engine, pipeline: &str, reason: &str) -> Result<()> {
    tracing::error!(pipeline, "pipeline {pipeline} paused: {reason}");
    let one = |s: &str| vec![s.to_string()];
    let values = vec![one(pipeline), one("paused"), one(reason), one(""), one("")];
    engine.append_log(ERRORS, &ERROR_COLUMNS, values)
}

/// Appends failures to `fleetdb.pipeline_errors`.
pub(crate) fn record_failures(engine: &Engine, pipeline: &str, msgs: &Messages, failures: &[Failure]) -> Result<()> {
    static FAILING: crate::util::lograte::Summary = crate::util::lograte::Summary::new(|pipeline, count, last| {
        tracing::warn!(
            pipeline,
            count,
            "pipeline {pipeline}: messages failed ({count} since the last such line; the last at {last}); see fleetdb.pipeline_errors"
        );
    });
    if let Some(last) = failures.last() {
        FAILING.add(pipeline, failures.len() as u64, &format!("{}: {}", last.activity, last.reason));
    }
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
