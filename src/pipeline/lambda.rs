//! The LAMBDA activity: an external program as a pipeline step, what AWS ran as a Lambda
//! function. The program (run through `sh -c`) reads a JSON array of messages on stdin and
//! writes a JSON array of messages on stdout, for up to `batch_size` messages at a time. A
//! program that fails, times out (it and its children are killed) or writes something else
//! fails its whole batch: those messages go to `fleetdb.pipeline_errors` and stay in the
//! channel, where REPROCESS can reach them.

use std::time::Duration;

use super::decode::{self, ROW, row_json};
use crate::batch::{Batch, Column, Values};
use crate::channel::Messages;
use crate::util::json::{self, Json};
use crate::util::process;

/// Runs `command` over `b`'s rows in batches. Returns the rows it produced (each keeps the
/// input message it came from: the same position when the program returns as many messages
/// as it got, else the batch's first) and the rows that failed, with why.
pub(crate) fn run(command: &str, batch_size: usize, timeout: Duration, b: &Batch) -> (Batch, Vec<(usize, String)>) {
    let sources: Vec<i64> = match b.column(ROW).map(|c| &c.values) {
        Some(Values::Int64(v)) => v.clone(),
        _ => (0..b.num_rows() as i64).collect(),
    };
    let mut outs = Vec::new();
    let mut failed = Vec::new();
    let mut start = 0;
    while start < b.num_rows() {
        let end = (start + batch_size).min(b.num_rows());
        let input = format!("[{}]", (start..end).map(|i| row_json(b, i)).collect::<Vec<_>>().join(", "));
        match run_program(command, &input, timeout).and_then(|out| messages_of(&out)) {
            Ok(msgs) => {
                let d = decode::decode(&msgs, &[]);
                let same = msgs.len() == end - start;
                let source = |j: usize| sources[if same { start + j } else { start }];
                for (j, reason) in d.errors {
                    failed.push((start + if same { j } else { 0 }, format!("program output: {reason}")));
                }
                let mut out = d.batch;
                if let Some(i) = out.column_index(ROW) {
                    let Values::Int64(rows) = &out.columns[i].values else { unreachable!("ROW is bigint") };
                    let mapped: Vec<i64> = rows.iter().map(|&j| source(j as usize)).collect();
                    out.columns[i] = Column::new(Values::Int64(mapped));
                }
                outs.push(out);
            }
            Err(reason) => failed.extend((start..end).map(|i| (i, reason.clone()))),
        }
        start = end;
    }
    let out = if outs.is_empty() { b.take(&[]) } else { super::decode::union(&outs) };
    (out, failed)
}

/// The program's output as messages: a JSON array, one message per element.
fn messages_of(out: &str) -> Result<Messages, String> {
    let doc = json::parse(out).map_err(|e| format!("program output is not JSON: {e}"))?;
    let Json::Array(items) = &doc.value else { return Err("program output is not a JSON array".into()) };
    let mut msgs = Messages::default();
    for (i, m) in items.iter().enumerate() {
        msgs.push(0, &i.to_string(), "", m.text.as_bytes());
    }
    Ok(msgs)
}

/// Runs `command` with `input` on stdin; its stdout, or why it failed.
fn run_program(command: &str, input: &str, timeout: Duration) -> Result<String, String> {
    let spec = process::Spec { command, stdin: input.as_bytes(), timeout, memory_limit: None, cwd: None, env: &[] };
    let out = process::run(&spec).map_err(|e| e.to_string())?;
    out.check(timeout).map_err(|e| e.to_string())?;
    String::from_utf8(out.stdout).map_err(|_| "program output is not UTF-8".into())
}
