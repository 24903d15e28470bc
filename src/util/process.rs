//! External programs run to completion under a deadline: the LAMBDA activity's commands and
//! program datasets. A program runs through `sh -c` in its own process group; on timeout it
//! and everything it started are killed.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to run one program.
pub(crate) struct Spec<'a> {
    pub command: &'a str,
    pub stdin: &'a [u8],
    pub timeout: Duration,
    /// Address space limit in bytes (`ulimit -v`), inherited by its children.
    pub memory_limit: Option<u64>,
    pub cwd: Option<&'a Path>,
    pub env: &'a [(&'a str, String)],
}

/// What a program did: its exit status (`None` when it timed out and was killed) and output.
pub(crate) struct Output {
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// `Ok` for a successful exit, else why not, with the last line of stderr.
    pub(crate) fn check(&self, timeout: Duration) -> crate::Result<()> {
        let err = String::from_utf8_lossy(&self.stderr);
        let tail = err.trim().lines().last().unwrap_or("").chars().take(300).collect::<String>();
        match self.status {
            None => Err(crate::Error::external(format!("the program timed out after {} s", timeout.as_secs_f64()))),
            Some(s) if !s.success() => Err(crate::Error::external(format!("the program failed ({s}): {tail}"))),
            Some(_) => Ok(()),
        }
    }
}

/// Runs a program; `Err` only when it cannot be started.
pub(crate) fn run(spec: &Spec<'_>) -> crate::Result<Output> {
    let script = match spec.memory_limit {
        // The shell limits itself, then runs the command: the limit holds for all it starts.
        Some(bytes) => format!("ulimit -v {} || exit 125\n{}", bytes.div_ceil(1024), spec.command),
        None => spec.command.to_string(),
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    if let Some(dir) = spec.cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| crate::Error::external(format!("cannot start the program: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = spec.stdin.to_vec();
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
    let deadline = Instant::now() + spec.timeout;
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
    Ok(Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(command: &'a str, timeout: Duration, memory_limit: Option<u64>) -> Spec<'a> {
        Spec { command, stdin: b"[1]", timeout, memory_limit, cwd: None, env: &[] }
    }

    #[test]
    fn programs_answer_fail_time_out_and_stay_within_memory() {
        let t = Duration::from_secs(5);
        let o = run(&spec("cat", t, None)).unwrap();
        assert!(o.check(t).is_ok());
        assert_eq!(o.stdout.as_slice(), &b"[1]"[..]);
        let e = run(&spec("echo broken >&2; exit 3", t, None)).unwrap().check(t).unwrap_err().to_string();
        assert!(e.contains("exit status: 3") && e.contains("broken"), "{e}");
        let start = Instant::now();
        let short = Duration::from_millis(1500);
        let e = run(&spec("sleep 20; echo late", short, None)).unwrap().check(short).unwrap_err().to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10), "the program and its children were not killed");
        // 64 MiB of address space is not enough to make a 200 MiB string.
        let big = "head -c 200000000 /dev/zero | tr '\\0' x | { v=$(cat); echo ${#v}; }";
        let limited = run(&spec(big, t, Some(64 << 20))).unwrap();
        assert!(limited.check(t).is_err(), "{}", String::from_utf8_lossy(&limited.stdout));
    }
}
