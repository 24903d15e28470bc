//! [`Wal`]: the writer with group commit, and replay on open.
//!
//! Group commit: [`Wal::enqueue`] assigns an LSN and encodes the record into a shared buffer;
//! [`Wal::wait_durable`] blocks until it is on disk. The first waiter finding no write in
//! progress becomes the leader: it takes the whole buffer, writes it and fsyncs once, then
//! wakes everyone whose record it covered. Records that arrive meanwhile form the next group.
//! A failed write or fsync poisons the log: the records were already applied in memory, and
//! after a failed fsync the page cache may have dropped the data, so nothing later can be
//! acknowledged until the log is reopened and replayed (the server restarts itself for that,
//! see `main.rs`). The failed group is cut off the segment first, so records whose writers
//! heard of the failure do not come back at replay (unless the cut itself fails).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::format::{self, FILE_EXT, HEADER_LEN, Record, SegmentScan};
use crate::error::{Error, IoContext, Result};
use crate::util::fsutil::{create_dir_durable, fs as disk, sync_dir};
use crate::util::sync::lock;

/// When an append counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After `fdatasync` of the segment (the default).
    Fsync,
    /// After `write` to the OS; a machine crash may lose acknowledged records. Benchmarks only.
    None,
}

/// How replay treats a damaged record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Cut the last segment at its first damaged record (a torn write from a crash) and go on;
    /// damage in any earlier segment is refused. The default.
    TolerateTailCorruption,
    /// Refuse any damaged record.
    AbsoluteConsistency,
}

/// WAL settings.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Default [`Durability::Fsync`].
    pub durability: Durability,
    /// Size after which a new segment is started. Default 64 MiB; at least 1 MiB is sensible.
    pub segment_bytes: u64,
    /// Default [`RecoveryMode::TolerateTailCorruption`].
    pub recovery: RecoveryMode,
    /// Zero-fill each segment to `segment_bytes` ahead of use (in a background thread), so an
    /// fsync after an append only flushes data, not the file's size. Default true.
    pub preallocate: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            durability: Durability::Fsync,
            segment_bytes: 64 << 20,
            recovery: RecoveryMode::TolerateTailCorruption,
            preallocate: true,
        }
    }
}

const SPARE_NAME: &str = "next-segment.zeroed";
const SPARE_TMP: &str = "next-segment.zeroing";

/// The preallocated file for the next segment, prepared by a background thread.
#[derive(Default)]
struct Spare {
    ready: Option<PathBuf>,
    preparing: bool,
    /// The preparing thread; joined when the `Wal` is dropped, so no thread outlives it.
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What replay did.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub segments: usize,
    pub records: usize,
    pub last_lsn: u64,
    /// Warnings for the operator, e.g. a torn tail that was cut off.
    pub warnings: Vec<String>,
}

/// Longest a group-commit leader waits for writers to join its group.
const GROUP_WAIT: Duration = Duration::from_micros(100);

struct Shared {
    buf: Vec<u8>,
    buf_first_lsn: u64,
    /// Records in `buf`, and in the previous group written.
    buf_records: u64,
    last_group: u64,
    next_lsn: u64,
    durable_lsn: u64,
    flushing: bool,
    poisoned: Option<String>,
    /// Writes refused for now ([`Wal::hold_writes`]): why, and whether for a full disk.
    held: Option<(String, bool)>,
}

struct Active {
    file: File,
    path: PathBuf,
    len: u64,
    started: std::time::Instant,
}

/// A segment filled faster than this rate (a bulk load) is followed by segments that are not
/// zero-filled ahead: zeroing would write the log twice while appends are large, when an
/// fsync's flush of the file's size is a small part of its cost. Once a segment fills slower
/// (or is rotated before it is full), zero-filling resumes.
const BULK_BYTES_PER_SEC: u64 = 8 << 20;

pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    shared: Mutex<Shared>,
    cond: Condvar,
    /// The segment appends go to; none until the first write after open, so that opening
    /// (and replaying) writes nothing to the log: it works on a full disk.
    active: Mutex<Option<Active>>,
    /// The LSN the first segment created after open follows (the last one replayed).
    open_prev: u64,
    /// The last LSN issued before open: records above it were written by this `Wal`.
    open_lsn: u64,
    /// (first_lsn, path) of every segment, oldest first; the last is the active one.
    segments: Mutex<Vec<(u64, PathBuf)>>,
    groups: AtomicU64,
    grouped_records: AtomicU64,
    spare: std::sync::Arc<Mutex<Spare>>,
}

fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{first_lsn:020}.{FILE_EXT}"))
}

/// Writes a zero-filled file of `size` bytes and publishes it as the spare segment.
fn zero_fill_spare(dir: &Path, size: u64) -> std::io::Result<PathBuf> {
    let tmp = dir.join(SPARE_TMP);
    let done = dir.join(SPARE_NAME);
    let filled = (|| {
        let mut f = OpenOptions::new().create(true).write(true).truncate(true).open(&tmp)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            disk().write_all(&mut f, &tmp, &zeros[..n])?;
            left -= n as u64;
        }
        disk().sync(&f, &tmp, false)
    })();
    if let Err(e) = filled {
        let _ = fs::remove_file(&tmp); // its space back
        return Err(e);
    }
    fs::rename(&tmp, &done)?;
    Ok(done)
}

/// Creates a segment, from the zero-filled spare when one is ready.
fn create_segment(dir: &Path, first_lsn: u64, prev_lsn: u64, spare: Option<PathBuf>) -> Result<Active> {
    let path = segment_path(dir, first_lsn);
    let mut file = match spare {
        Some(sp) => {
            fs::rename(&sp, &path).at(&path)?;
            OpenOptions::new().write(true).open(&path).at(&path)?
        }
        None => OpenOptions::new().create(true).write(true).truncate(true).open(&path).at(&path)?,
    };
    let started = disk()
        .write_all(&mut file, &path, &format::encode_header(first_lsn, prev_lsn))
        .and_then(|()| disk().sync(&file, &path, false))
        .and_then(|()| sync_dir(dir));
    if let Err(e) = started {
        // A segment without a whole header must not stay behind: a later segment would make
        // it a damaged one in the middle of the log, which replay refuses.
        drop(file);
        let _ = fs::remove_file(&path);
        let _ = sync_dir(dir);
        return Err(Error::io(&path, e));
    }
    Ok(Active { file, path, len: HEADER_LEN as u64, started: std::time::Instant::now() })
}

impl Wal {
    /// Opens the log in `dir`, replaying every record in LSN order through `apply`, then starts
    /// a fresh segment. New LSNs start above both the log and `floor_lsn` (the highest LSN the
    /// caller already holds in data files), so an LSN is never issued twice.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        floor_lsn: u64,
        mut apply: impl FnMut(Record) -> Result<()>,
    ) -> Result<(Wal, ReplayReport)> {
        create_dir_durable(dir).at(dir)?;
        for leftover in [SPARE_NAME, SPARE_TMP] {
            let p = dir.join(leftover);
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
                _ => {}
            }
        }
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .at(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(FILE_EXT))
            .collect();
        paths.sort();
        let mut report = ReplayReport::default();
        let mut segments = Vec::new();
        let mut last_lsn = 0u64;
        let mut chain: Option<u64> = None; // end LSN of the previous segment
        let n = paths.len();
        for (i, path) in paths.into_iter().enumerate() {
            let is_last = i + 1 == n;
            let buf = fs::read(&path).at(&path)?;
            match format::scan_segment(&buf) {
                SegmentScan::BadHeader(why) if is_last && opts.recovery == RecoveryMode::TolerateTailCorruption => {
                    report.warnings.push(format!("{}: {why}; removed the unfinished segment", path.display()));
                    fs::remove_file(&path).at(&path)?;
                    sync_dir(dir).at(dir)?;
                }
                // No whole header: a segment whose creation failed (it never held a record).
                SegmentScan::BadHeader(why) if buf[HEADER_LEN.min(buf.len())..].iter().all(|&b| b == 0) => {
                    report
                        .warnings
                        .push(format!("{}: {why}; removed a segment that was never started", path.display()));
                    fs::remove_file(&path).at(&path)?;
                    sync_dir(dir).at(dir)?;
                }
                SegmentScan::BadHeader(why) => {
                    return Err(Error::corrupt(&path, format!("WAL segment header ({why})")));
                }
                SegmentScan::Version(found) => {
                    return Err(Error::UnsupportedVersion {
                        path,
                        kind: "WAL segment",
                        found,
                        supported: format::VERSION,
                    });
                }
                SegmentScan::Records { first_lsn, prev_lsn, records, tail } => {
                    if let Some(end) = chain
                        && (prev_lsn != end || first_lsn <= end)
                    {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "WAL segment follows LSN {prev_lsn} but the previous segment ends at {end} (a segment is missing)"
                            ),
                        ));
                    }
                    if let Some((at, why)) = tail {
                        if !is_last || opts.recovery == RecoveryMode::AbsoluteConsistency {
                            return Err(Error::corrupt(&path, format!("WAL record at byte {at}: {why}")));
                        }
                        report.warnings.push(format!(
                            "{}: {why} at byte {at}; cut off the last {} bytes (a write torn by a crash)",
                            path.display(),
                            buf.len() - at
                        ));
                        let f = OpenOptions::new().write(true).open(&path).at(&path)?;
                        f.set_len(at as u64).at(&path)?;
                        crate::util::fsutil::fs().sync(&f, &path, false).at(&path)?;
                    }
                    let mut end = prev_lsn;
                    for rec in records {
                        end = rec.lsn;
                        report.records += 1;
                        apply(rec)?;
                    }
                    chain = Some(end);
                    last_lsn = last_lsn.max(end);
                    segments.push((first_lsn, path));
                }
            }
        }
        report.segments = segments.len();
        report.last_lsn = last_lsn;
        let next_lsn = last_lsn.max(floor_lsn) + 1;
        // A trailing segment without records could share the new segment's name; drop it.
        if let Some((first, path)) = segments.last().cloned()
            && (first >= next_lsn || fs::metadata(&path).at(&path)?.len() <= HEADER_LEN as u64)
        {
            fs::remove_file(&path).at(&path)?;
            segments.pop();
        }
        // The first segment is zero-filled here, once, at startup (later ones in the background)
        // and created at the first write. Without the room for it (a disk nearly full) the log
        // starts on a plain file.
        let spare: std::sync::Arc<Mutex<Spare>> = Default::default();
        if opts.preallocate {
            // Preallocation only makes fsyncs cheaper; a failing disk shows at the first write.
            match zero_fill_spare(dir, opts.segment_bytes) {
                Ok(p) => lock(&spare).ready = Some(p),
                Err(e) => report.warnings.push(format!(
                    "{}: cannot preallocate a {} MiB log segment ({e}); appends are slower until it can",
                    dir.display(),
                    opts.segment_bytes >> 20
                )),
            }
        }
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            shared: Mutex::new(Shared {
                buf: Vec::new(),
                buf_first_lsn: next_lsn,
                buf_records: 0,
                last_group: 0,
                next_lsn,
                durable_lsn: next_lsn - 1,
                flushing: false,
                poisoned: None,
                held: None,
            }),
            cond: Condvar::new(),
            active: Mutex::new(None),
            open_prev: last_lsn,
            open_lsn: next_lsn - 1,
            segments: Mutex::new(segments),
            groups: AtomicU64::new(0),
            grouped_records: AtomicU64::new(0),
            spare,
        };
        wal.prepare_spare();
        Ok((wal, report))
    }

    /// Appends a record and returns its LSN once it is durable.
    pub fn append(&self, kind: u8, payload: &[u8]) -> Result<u64> {
        let lsn = self.enqueue(kind, payload)?;
        self.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// Assigns the next LSN and buffers the record; not yet durable. Callers that must order
    /// records with other state (e.g. channel offsets) call this under their own lock.
    pub fn enqueue(&self, kind: u8, payload: &[u8]) -> Result<u64> {
        let mut s = lock(&self.shared);
        if let Some(p) = &s.poisoned {
            return Err(Error::WalPoisoned(p.clone()));
        }
        if let Some((why, full)) = &s.held {
            return Err(Error::WritesHeld { why: why.clone(), disk_full: *full });
        }
        if payload.len() > format::MAX_PAYLOAD {
            return Err(Error::Invalid(format!("record of {} bytes exceeds the WAL limit", payload.len())));
        }
        let lsn = s.next_lsn;
        s.next_lsn += 1;
        if s.buf.is_empty() {
            s.buf_first_lsn = lsn;
        }
        format::encode_record(lsn, kind, payload, &mut s.buf);
        s.buf_records += 1;
        Ok(lsn)
    }

    /// Blocks until every record up to `lsn` is durable (see the module docs).
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        let mut s = lock(&self.shared);
        loop {
            if let Some(p) = &s.poisoned {
                return Err(Error::WalPoisoned(p.clone()));
            }
            if s.durable_lsn >= lsn {
                return Ok(());
            }
            if s.flushing {
                s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            s.flushing = true;
            // Writers released by the previous group are about to append again; when that group
            // was larger than what is buffered now, give them a moment to join this one.
            let deadline = Instant::now() + GROUP_WAIT;
            while s.buf_records < s.last_group && Instant::now() < deadline {
                drop(s);
                std::thread::yield_now();
                s = lock(&self.shared);
            }
            s.last_group = s.buf_records;
            s.buf_records = 0;
            self.groups.fetch_add(1, Ordering::Relaxed);
            self.grouped_records.fetch_add(s.last_group, Ordering::Relaxed);
            let buf = std::mem::take(&mut s.buf);
            let first = s.buf_first_lsn;
            let upto = s.next_lsn - 1;
            drop(s);
            let res = self.write_group(&buf, first);
            s = lock(&self.shared);
            s.flushing = false;
            match res {
                Ok(()) => s.durable_lsn = upto,
                Err(e) => s.poisoned = Some(e.to_string()),
            }
            if s.buf.is_empty() {
                // Keep the allocation for the next group.
                s.buf = buf;
                s.buf.clear();
            }
            self.cond.notify_all();
        }
    }

    fn write_group(&self, buf: &[u8], first_lsn: u64) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut active = lock(&self.active);
        let full = active
            .as_ref()
            .is_none_or(|a| a.len > HEADER_LEN as u64 && a.len + buf.len() as u64 > self.opts.segment_bytes);
        if full {
            let prev = if active.is_none() { self.open_prev } else { first_lsn - 1 };
            // A failure here also poisons: the group's records are applied in memory already.
            self.start_segment(&mut active, first_lsn, prev)?;
        }
        let a = active.as_mut().expect("a segment was just started");
        let path = a.path.clone();
        let written = disk().write_all(&mut a.file, &path, buf).and_then(|()| match self.opts.durability {
            Durability::Fsync => disk().sync(&a.file, &path, true),
            Durability::None => Ok(()),
        });
        if let Err(e) = written {
            // Unacknowledged and never to be trusted: cut the group off (its writers are told
            // it failed), so a replay cannot bring it back. Best effort on a failing disk.
            let cut = match a.file.set_len(a.len) {
                Err(c) => Some(format!("cutting the failed write off also failed ({c})")),
                Ok(()) => {
                    disk().sync(&a.file, &path, false).err().map(|c| format!("the cut could not be synced ({c})"))
                }
            };
            return Err(Error::io(
                &path,
                match cut {
                    Some(more) => std::io::Error::new(e.kind(), format!("{e}; {more}")),
                    None => e,
                },
            ));
        }
        a.len += buf.len() as u64;
        Ok(())
    }

    /// Refuses new records with [`Error::WritesHeld`] until [`Wal::release_writes`].
    pub fn hold_writes(&self, why: String, disk_full: bool) {
        lock(&self.shared).held = Some((why, disk_full));
    }

    /// Whether a record appended since open was made durable.
    pub fn wrote_since_open(&self) -> bool {
        lock(&self.shared).durable_lsn > self.open_lsn
    }

    /// Whether writes are held ([`Wal::hold_writes`]).
    pub fn held(&self) -> bool {
        lock(&self.shared).held.is_some()
    }

    /// Takes records again after [`Wal::hold_writes`].
    pub fn release_writes(&self) {
        lock(&self.shared).held = None;
    }

    /// Why the log stopped taking records, if it did (see the module docs): the error, and
    /// whether it was a full disk (room again is then enough for a restart to succeed).
    pub fn failure(&self) -> Option<(String, bool)> {
        lock(&self.shared).poisoned.clone().map(|p| {
            let full = Error::WalPoisoned(p.clone()).is_disk_full();
            (p, full)
        })
    }

    /// Makes a new segment starting at `first_lsn` (following `prev_lsn`) the active one.
    fn start_segment(&self, active: &mut Option<Active>, first_lsn: u64, prev_lsn: u64) -> Result<()> {
        let bulk = active.as_ref().is_some_and(|a| {
            let secs = a.started.elapsed().as_secs_f64();
            a.len * 2 > self.opts.segment_bytes && (a.len as f64) > secs * BULK_BYTES_PER_SEC as f64
        });
        let next = create_segment(&self.dir, first_lsn, prev_lsn, self.take_spare())?;
        lock(&self.segments).push((first_lsn, next.path.clone()));
        *active = Some(next);
        if !bulk {
            self.prepare_spare();
        }
        Ok(())
    }

    fn take_spare(&self) -> Option<PathBuf> {
        lock(&self.spare).ready.take()
    }

    /// Starts zero-filling the next segment in the background, unless one is ready or under way.
    fn prepare_spare(&self) {
        if !self.opts.preallocate {
            return;
        }
        {
            let mut sp = lock(&self.spare);
            if sp.ready.is_some() || sp.preparing {
                return;
            }
            sp.preparing = true;
            if let Some(done) = sp.thread.take() {
                let _ = done.join(); // finished: it cleared `preparing`
            }
        }
        let (dir, size, spare) = (self.dir.clone(), self.opts.segment_bytes, self.spare.clone());
        let spawned = std::thread::Builder::new().name("fleetdb-wal-prealloc".into()).spawn(move || {
            let res = zero_fill_spare(&dir, size);
            let mut sp = spare.lock().unwrap_or_else(|e| e.into_inner());
            sp.preparing = false;
            // Without a spare the next segment is created plain: slower fsyncs, still correct.
            sp.ready = res.ok();
        });
        let mut sp = lock(&self.spare);
        match spawned {
            Ok(h) => sp.thread = Some(h),
            Err(_) => sp.preparing = false,
        }
    }

    /// Highest LSN issued so far.
    pub fn last_lsn(&self) -> u64 {
        lock(&self.shared).next_lsn - 1
    }

    /// Makes every record issued so far durable.
    pub fn sync(&self) -> Result<()> {
        let lsn = self.last_lsn();
        self.wait_durable(lsn)
    }

    /// Makes every record issued so far durable and starts a new segment. Returns the last LSN
    /// before the new segment: every record up to it is in older segments, which
    /// [`Wal::retire_through`] can then delete (a checkpoint leaves nothing to replay).
    pub fn rotate(&self) -> Result<u64> {
        loop {
            self.sync()?;
            let s = lock(&self.shared);
            if s.flushing || !s.buf.is_empty() {
                continue; // new records arrived meanwhile; make them durable too
            }
            // No write is in progress, so the active segment is free; holding `shared` keeps
            // new records out until the new segment is in place.
            let mut active = lock(&self.active);
            match active.as_ref() {
                None => self.start_segment(&mut active, s.next_lsn, self.open_prev)?,
                Some(a) if a.len > HEADER_LEN as u64 => self.start_segment(&mut active, s.next_lsn, s.next_lsn - 1)?,
                Some(_) => {}
            }
            return Ok(s.next_lsn - 1);
        }
    }

    /// Deletes segments all of whose records have LSN <= `lsn` (their contents are durable
    /// elsewhere). The active segment is never deleted. Returns how many were deleted.
    pub fn retire_through(&self, lsn: u64) -> Result<usize> {
        let mut segs = lock(&self.segments);
        let mut n = 0;
        while segs.len() > 1 && segs[1].0 <= lsn + 1 {
            let (_, path) = segs.remove(0);
            fs::remove_file(&path).at(&path)?;
            n += 1;
        }
        if n > 0 {
            sync_dir(&self.dir).at(&self.dir)?;
        }
        Ok(n)
    }

    /// (groups written, records in them) since open: the group-commit batching achieved.
    pub fn group_stats(&self) -> (u64, u64) {
        (self.groups.load(Ordering::Relaxed), self.grouped_records.load(Ordering::Relaxed))
    }

    /// Number of segment files, the active one included.
    pub fn segment_count(&self) -> usize {
        lock(&self.segments).len()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let handle = lock(&self.spare).thread.take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn wal_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == FILE_EXT))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn opening_writes_no_segment_and_the_first_after_a_floor_still_chains() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { preallocate: false, ..Default::default() };
        let (w, _) = Wal::open(dir.path(), opts.clone(), 0, |_| Ok(())).unwrap();
        assert!(wal_files(dir.path()).is_empty(), "open created a segment");
        w.append(1, b"a").unwrap();
        w.append(1, b"b").unwrap();
        drop(w);
        // Replayed twice without appends: still one segment, nothing written.
        for _ in 0..2 {
            let (_, got, _) = replay(dir.path());
            assert_eq!(got.len(), 2);
            assert_eq!(wal_files(dir.path()).len(), 1);
        }
        // Data files already hold LSN 10: the next segment starts above it and follows the
        // last record replayed (2), so the chain check at the next open passes.
        let (w, _) = Wal::open(dir.path(), opts.clone(), 10, |_| Ok(())).unwrap();
        assert_eq!(w.append(1, b"c").unwrap(), 11);
        drop(w);
        let (_, got, rep) = replay(dir.path());
        assert_eq!(got.iter().map(|r| r.lsn).collect::<Vec<_>>(), [1, 2, 11]);
        assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
        // A checkpoint right after open still retires everything before it.
        let (w, _) = Wal::open(dir.path(), opts, 0, |_| Ok(())).unwrap();
        let upto = w.rotate().unwrap();
        assert_eq!(upto, 11);
        assert_eq!(w.retire_through(upto).unwrap(), 2);
        drop(w);
        let (_, got, _) = replay(dir.path());
        assert!(got.is_empty());
    }

    fn replay(dir: &Path) -> (Wal, Vec<Record>, ReplayReport) {
        let mut got = Vec::new();
        let (w, rep) = Wal::open(dir, WalOptions { preallocate: false, ..Default::default() }, 0, |r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        (w, got, rep)
    }

    #[test]
    fn concurrent_appends_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (w, got, _) = replay(dir.path());
        assert!(got.is_empty());
        let w = Arc::new(w);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        w.append(1, format!("{t}-{i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(w);
        let (_, got, rep) = replay(dir.path());
        assert_eq!(got.len(), 400);
        assert!(got.windows(2).all(|p| p[1].lsn == p[0].lsn + 1));
        assert!(rep.warnings.is_empty());
    }

    #[test]
    fn torn_tail_is_cut_and_lsns_continue() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _, _) = replay(dir.path());
        for i in 0..10u8 {
            w.append(2, &[i; 100]).unwrap();
        }
        drop(w);
        let seg = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).max().unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 50).unwrap();
        let (w, got, rep) = replay(dir.path());
        assert_eq!(got.len(), 9);
        assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
        assert_eq!(w.append(2, b"next").unwrap(), 10);
        drop(w);
        let (_, got, rep) = replay(dir.path());
        assert_eq!(got.len(), 10);
        assert!(rep.warnings.is_empty());
    }

    #[test]
    fn preallocated_zero_tail_is_a_clean_end_and_a_torn_write_in_it_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes: 64 << 10, ..Default::default() };
        let (w, _) = Wal::open(dir.path(), opts.clone(), 0, |_| Ok(())).unwrap();
        // Let the spare appear, then rotate onto it.
        for _ in 0..200 {
            if lock(&w.spare).ready.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for _ in 0..20 {
            w.append(1, &[9; 1000]).unwrap();
        }
        w.rotate().unwrap();
        for _ in 0..3 {
            w.append(1, &[8; 100]).unwrap();
        }
        let active = lock(&w.active).as_ref().unwrap().path.clone();
        drop(w);
        assert_eq!(fs::metadata(&active).unwrap().len(), 64 << 10, "the active segment was preallocated");
        // A copy opens cleanly: the zero tail is unused space, not damage.
        let copy = tempfile::tempdir().unwrap();
        for e in fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            fs::copy(&p, copy.path().join(p.file_name().unwrap())).unwrap();
        }
        let mut n = 0;
        let (_, rep) = Wal::open(copy.path(), opts.clone(), 0, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 23);
        assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
        // A write torn inside the zeroed area of the last segment: garbage after the last record.
        let mut bytes = fs::read(&active).unwrap();
        let end = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
        bytes[end + 3000] = 0x5A;
        fs::write(&active, &bytes).unwrap();
        let mut n = 0;
        let (_, rep) = Wal::open(dir.path(), opts, 0, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 23, "every record before the torn write survives");
        assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
    }

    #[test]
    fn rotation_and_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes: 4096, ..Default::default() };
        let (w, _) = Wal::open(dir.path(), opts.clone(), 0, |_| Ok(())).unwrap();
        for _ in 0..100 {
            w.append(1, &[7; 500]).unwrap();
        }
        assert!(w.segment_count() > 5);
        assert!(w.retire_through(60).unwrap() > 0);
        drop(w);
        let mut lsns = Vec::new();
        Wal::open(dir.path(), opts, 0, |r| {
            lsns.push(r.lsn);
            Ok(())
        })
        .unwrap();
        assert!(lsns[0] <= 61 && *lsns.last().unwrap() == 100);
    }

    #[test]
    fn damage_in_an_older_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_bytes: 4096, ..Default::default() };
        let (w, _) = Wal::open(dir.path(), opts.clone(), 0, |_| Ok(())).unwrap();
        for _ in 0..30 {
            w.append(1, &[7; 500]).unwrap();
        }
        drop(w);
        let mut segs: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        segs.sort();
        let mut bytes = fs::read(&segs[0]).unwrap();
        bytes[HEADER_LEN + 30] ^= 1;
        fs::write(&segs[0], bytes).unwrap();
        let err = Wal::open(dir.path(), opts, 0, |_| Ok(())).err().unwrap();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }
}
