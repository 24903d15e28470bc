//! The LAMBDA activity: an external program as a pipeline step, what AWS ran as a Lambda
//! function. The program (run through `sh -c`) reads a JSON array of messages on stdin and
//! writes a JSON array of messages on stdout, for up to `batch_size` messages at a time. A
//! program that fails, times out (it and its children are killed) or writes something else
//! fails its whole batch: those messages go to `fleetdb.pipeline_errors` and stay in the
//! channel, where REPROCESS can reach them.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::decode::{self, ROW, row_json};
use crate::batch::{Batch, Column, Values};
use crate::channel::Messages;
use crate::util::json::{self, Json};

/// Runs `command` over `b`'s rows in batches. Returns the rows it produced (each keeps the
/// input message it came from: the same position when the program returns as many messages
/// as it got, else the batch's first) and the rows that failed, with why.
pub fn run(command: &str, batch_size: usize, timeout: Duration, b: &Batch) -> (Batch, Vec<(usize, String)>) {
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
    let out = if outs.is_empty() { b.take(&[]) } else { super::exec::union(&outs) };
    (out, failed)
}

/// Kills every process of process group `pgid` (the program and whatever it started), found
/// in /proc: signalling the group as a whole does not reach all of them everywhere.
fn kill_group(pgid: u32) {
    let members: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 1..];
            let pgrp: u32 = rest.split_whitespace().nth(2)?.parse().ok()?;
            (pgrp == pgid).then(|| pid.to_string())
        })
        .collect();
    if !members.is_empty() {
        let _ = Command::new("kill").arg("-KILL").args(&members).stderr(Stdio::null()).status();
    }
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
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the program: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => break None,
        }
    };
    if status.is_none() {
        kill_group(child.id());
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = writer.join();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err);
    let tail = err.trim().lines().last().unwrap_or("").chars().take(300).collect::<String>();
    match status {
        None => Err(format!("the program timed out after {} s", timeout.as_secs())),
        Some(s) if !s.success() => Err(format!("the program failed ({s}): {tail}")),
        Some(_) => String::from_utf8(out).map_err(|_| "program output is not UTF-8".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_answer_fail_or_time_out_and_are_killed() {
        assert_eq!(run_program("cat", "[1]", Duration::from_secs(5)).unwrap(), "[1]");
        let e = run_program("echo broken >&2; exit 3", "[]", Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("exit status: 3") && e.contains("broken"), "{e}");
        let t = Instant::now();
        let e = run_program("sleep 20; echo late", "[]", Duration::from_millis(1500)).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "the program and its children were not killed");
    }
}
