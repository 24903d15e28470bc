//! Injected file-system faults, for tests: a [`FileSystem`] that fails chosen writes and
//! syncs with `ENOSPC`, `EDQUOT` or `EIO`, steered at run time through a small control file.
//!
//! `fleetdb serve` installs it when `FLEETDB_FAULTS` names a control file (and says so on
//! stderr); nothing else changes. The file holds one rule per line, read again whenever it
//! changes (checked at most every 10 ms):
//!
//! ```text
//! # op     path contains    error    [times]
//! write    /wal/            ENOSPC
//! fsync    /datastores/     EIO      1
//! dirsync  /channels/       EIO
//! ```
//!
//! A rule matches an operation (`write`, `fsync` of a file, `dirsync` of a directory) on a
//! path containing the text; the first matching rule with times left fails it. A failed
//! write first writes half of the buffer, as a real short write on a full disk does. Counts
//! are per process: a server that restarts itself (after a failed log) reads the file afresh,
//! so `fsync /wal/ EIO 1` fails once in each process. An
//! empty file injects nothing, and so does a file with a line that does not parse
//! ([`Faulty::check`] says why).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::fsutil::{FileSystem, Os};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Write,
    Fsync,
    DirSync,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    path: String,
    errno: i32,
    left: Option<u64>,
}

struct State {
    text: String,
    rules: Vec<Rule>,
    checked: Option<Instant>,
}

/// The fault-injecting file system (see the module docs).
pub struct Faulty {
    control: PathBuf,
    state: Mutex<State>,
}

// Linux errno values.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;

fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {}: want `write|fsync|dirsync PATH-TEXT ENOSPC|EDQUOT|EIO [TIMES]`: {line}", n + 1);
        let (op, path, err, times) = match f.as_slice() {
            [op, path, err] => (op, path, err, None),
            [op, path, err, t] => (op, path, err, Some(t.parse::<u64>().map_err(|_| bad())?)),
            _ => return Err(bad()),
        };
        let op = match *op {
            "write" => Op::Write,
            "fsync" => Op::Fsync,
            "dirsync" => Op::DirSync,
            _ => return Err(bad()),
        };
        let errno = match *err {
            "ENOSPC" => ENOSPC,
            "EDQUOT" => EDQUOT,
            "EIO" => EIO,
            _ => return Err(bad()),
        };
        rules.push(Rule { op, path: path.to_string(), errno, left: times });
    }
    Ok(rules)
}

impl Faulty {
    /// A fault-injecting file system steered by the file at `control` (it need not exist yet).
    pub fn new(control: PathBuf) -> Faulty {
        Faulty { control, state: Mutex::new(State { text: String::new(), rules: Vec::new(), checked: None }) }
    }

    /// The one named by `FLEETDB_FAULTS`, if set; lives as long as the process.
    pub fn from_env() -> Option<&'static Faulty> {
        let path = std::env::var_os("FLEETDB_FAULTS")?;
        Some(Box::leak(Box::new(Faulty::new(PathBuf::from(path)))))
    }

    /// The control file.
    pub fn control(&self) -> &Path {
        &self.control
    }

    /// Whether the control file's rules parse (a missing file is no rules).
    pub fn check(&self) -> crate::Result<()> {
        parse(&std::fs::read_to_string(&self.control).unwrap_or_default()).map(|_| ()).map_err(crate::Error::Invalid)
    }

    /// The error `op` on `path` is to fail with, if a rule says so.
    fn hit(&self, op: Op, path: &Path) -> Option<io::Error> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.is_none_or(|t| t.elapsed() >= Duration::from_millis(10)) {
            st.checked = Some(Instant::now());
            let text = std::fs::read_to_string(&self.control).unwrap_or_default();
            if text != st.text {
                // Counts start again only when the rules change.
                st.rules = parse(&text).unwrap_or_default();
                st.text = text;
            }
        }
        let path = path.to_string_lossy();
        let rule = st.rules.iter_mut().find(|r| r.op == op && path.contains(&r.path) && r.left != Some(0))?;
        if let Some(n) = &mut rule.left {
            *n -= 1;
        }
        Some(io::Error::from_raw_os_error(rule.errno))
    }
}

impl FileSystem for Faulty {
    fn write_all(&self, f: &mut File, path: &Path, buf: &[u8]) -> io::Result<()> {
        match self.hit(Op::Write, path) {
            Some(e) => {
                f.write_all(&buf[..buf.len() / 2])?;
                Err(e)
            }
            None => Os.write_all(f, path, buf),
        }
    }
    fn sync(&self, f: &File, path: &Path, data_only: bool) -> io::Result<()> {
        let op = if f.metadata().is_ok_and(|m| m.is_dir()) { Op::DirSync } else { Op::Fsync };
        match self.hit(op, path) {
            Some(e) => Err(e),
            None => Os.sync(f, path, data_only),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_op_and_path_and_count_down() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("faults");
        std::fs::write(&control, "# a comment\nfsync /wal/ EIO 2\nwrite seg ENOSPC\n").unwrap();
        let f = Faulty::new(control.clone());
        let wal = Path::new("/data/wal/1.wal");
        assert_eq!(f.hit(Op::Write, wal).map(|e| e.raw_os_error()), None);
        assert_eq!(f.hit(Op::Fsync, wal).and_then(|e| e.raw_os_error()), Some(EIO));
        assert_eq!(f.hit(Op::Fsync, wal).and_then(|e| e.raw_os_error()), Some(EIO));
        assert!(f.hit(Op::Fsync, wal).is_none(), "two times only");
        let e = f.hit(Op::Write, Path::new("/d/seg1")).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // A changed file replaces the rules; an empty one clears them.
        std::fs::write(&control, "").unwrap();
        std::thread::sleep(Duration::from_millis(15));
        assert!(f.hit(Op::Write, Path::new("/d/seg1")).is_none());
    }

    #[test]
    fn a_failed_write_is_short_and_bad_rules_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("faults");
        std::fs::write(&control, "write x EIO\n").unwrap();
        let f = Faulty::new(control);
        let path = dir.path().join("x");
        let mut file = File::create(&path).unwrap();
        assert!(f.write_all(&mut file, &path, &[7u8; 10]).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 5]);
        assert!(parse("write").is_err());
        assert!(parse("truncate x EIO").is_err());
        assert!(parse("write x EPERM").is_err());
        assert!(parse("write x EIO many").is_err());
    }
}
