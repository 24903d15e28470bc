//! [`Channel`]: one channel's sealed segments plus its in-memory tail.
//!
//! Invariants:
//! - Offsets are consecutive from 0 for the life of the channel, and arrival times never
//!   decrease along them (the engine clamps the clock), so a time range is an offset range.
//! - The unsealed tail lives only in memory and in the WAL; sealing writes it whole as one
//!   segment file. Replay skips records whose offsets a segment already holds.
//! - Sealing happens outside the channel's lock: a full tail is frozen into the `sealing`
//!   queue (still readable) and a fresh tail takes new messages at once. One writer at a time
//!   (`seal_lock`) writes the queue in offset order, so segment files never leave a gap.
//! - The tail is a list of shared chunks (one per append), so readers take a snapshot of it
//!   by cloning pointers, never the messages.
//! - A channel always keeps at least one segment once it has sealed anything, even if empty,
//!   so that the next offset survives retention dropping every message.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::Messages;
use super::segment::{self, ChSegment, FILE_EXT};
use crate::error::{Error, IoContext, Result};
use crate::util::fsutil::{create_dir_durable, remove_tmp_files, sync_dir, write_atomic};
use crate::util::sync::{lock, read, write};
use crate::util::time::{day_name, day_of, parse_day_name};

/// Channel settings.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    /// Days of messages kept (whole partitions); `None` keeps everything. Default `None`.
    pub retention_days: Option<u32>,
    /// The tail is sealed into a segment at this many messages. Default 100,000.
    pub seal_messages: usize,
    /// … or at this many payload bytes. Default 16 MiB.
    pub seal_bytes: usize,
    /// Messages per compressed block inside a segment. Default 4,096.
    pub block_messages: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions { retention_days: None, seal_messages: 100_000, seal_bytes: 16 << 20, block_messages: 4096 }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub messages: u64,
    pub payload_bytes: u64,
    pub disk_bytes: u64,
    pub segments: usize,
    pub first_offset: u64,
    pub next_offset: u64,
    pub first_received: Option<i64>,
    pub last_received: Option<i64>,
}

/// Messages not yet in a segment file, all of one day: the chunks of consecutive appends.
#[derive(Default)]
struct Pending {
    first_offset: u64,
    chunks: Vec<Arc<Messages>>,
    len: usize,
    payload_bytes: usize,
    max_lsn: u64,
}

impl Pending {
    fn starting_at(first_offset: u64) -> Pending {
        Pending { first_offset, ..Default::default() }
    }
    fn end_offset(&self) -> u64 {
        self.first_offset + self.len as u64
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn first_time(&self) -> Option<i64> {
        self.chunks.first().and_then(|c| c.received_at.first().copied())
    }
    fn last_time(&self) -> Option<i64> {
        self.chunks.last().and_then(|c| c.received_at.last().copied())
    }
    fn push(&mut self, msgs: Messages, lsn: u64) {
        self.len += msgs.len();
        self.payload_bytes += msgs.payload_bytes();
        self.max_lsn = self.max_lsn.max(lsn);
        self.chunks.push(Arc::new(msgs));
    }
    fn concat(&self) -> Messages {
        let mut out = Messages { first_offset: self.first_offset, ..Default::default() };
        for c in &self.chunks {
            out.extend_range(c, 0, c.len());
        }
        out
    }
}

struct State {
    segments: Vec<Arc<ChSegment>>,
    /// Full tails waiting to be written as segments, oldest first.
    sealing: VecDeque<Arc<Pending>>,
    tail: Pending,
    last_received: i64,
}

impl State {
    fn next_offset(&self) -> u64 {
        self.tail.end_offset()
    }
    /// Every message not in a segment file, in offset order.
    fn unsealed(&self) -> impl Iterator<Item = &Pending> {
        self.sealing.iter().map(|p| &**p).chain(std::iter::once(&self.tail))
    }
    /// Moves the tail, if it holds anything, to the sealing queue.
    fn freeze(&mut self) {
        if !self.tail.is_empty() {
            let next = Pending::starting_at(self.tail.end_offset());
            self.sealing.push_back(Arc::new(std::mem::replace(&mut self.tail, next)));
        }
    }
}

pub struct Channel {
    name: String,
    dir: PathBuf,
    opts: ChannelOptions,
    /// Days kept; starts from the options, changed by ALTER … SET.
    retention: crate::util::sync::Retention,
    state: RwLock<State>,
    /// Held by the one thread writing the sealing queue.
    seal_lock: Mutex<()>,
}

impl Channel {
    pub fn open(name: &str, dir: &Path, opts: ChannelOptions) -> Result<Channel> {
        create_dir_durable(dir).at(dir)?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            if entry.file_name().to_str().and_then(parse_day_name).is_none() {
                continue;
            }
            let pdir = entry.path();
            remove_tmp_files(&pdir).at(&pdir)?;
            for f in fs::read_dir(&pdir).at(&pdir)? {
                let path = f.at(&pdir)?.path();
                if path.extension().and_then(|e| e.to_str()) == Some(FILE_EXT) {
                    segments.push(Arc::new(ChSegment::open(&path)?));
                }
            }
        }
        segments.sort_by_key(|s| (s.meta.first_offset, s.meta.count));
        // An empty marker segment followed by a real one at the same offset is superseded.
        let mut kept: Vec<Arc<ChSegment>> = Vec::with_capacity(segments.len());
        for s in segments {
            if let Some(prev) = kept.last()
                && prev.meta.count == 0
                && prev.meta.first_offset == s.meta.first_offset
            {
                let old = kept.pop().expect("checked");
                fs::remove_file(&old.path).at(&old.path)?;
            }
            kept.push(s);
        }
        let segments = kept;
        for w in segments.windows(2) {
            if w[0].meta.end_offset() != w[1].meta.first_offset {
                return Err(Error::corrupt(
                    &w[1].path,
                    format!(
                        "channel {name}: segment starts at offset {} but the previous ends at {}",
                        w[1].meta.first_offset,
                        w[0].meta.end_offset()
                    ),
                ));
            }
        }
        let next = segments.last().map_or(0, |s| s.meta.end_offset());
        let last_received = segments.iter().rev().find(|s| s.meta.count > 0).map_or(i64::MIN, |s| s.meta.max_time);
        let tail = Pending::starting_at(next);
        Ok(Channel {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            retention: crate::util::sync::Retention::new(opts.retention_days),
            opts,
            state: RwLock::new(State { segments, sealing: VecDeque::new(), tail, last_received }),
            seal_lock: Mutex::new(()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn options(&self) -> &ChannelOptions {
        &self.opts
    }
    /// Days of data kept, `None` for unlimited.
    pub fn retention_days(&self) -> Option<u32> {
        self.retention.get()
    }
    pub fn set_retention_days(&self, days: Option<u32>) {
        self.retention.set(days)
    }

    /// Appends `msgs` at the next offsets. Arrival times are clamped so they never decrease.
    /// `log` writes the WAL record (it sees the final offsets and times) and returns its LSN;
    /// it runs under the channel's lock so WAL order equals offset order. A tail this fills is
    /// written as a segment after the lock is released. The caller waits for durability
    /// afterwards. Returns (first offset, LSN).
    pub fn append(&self, mut msgs: Messages, log: impl FnOnce(&Messages) -> Result<u64>) -> Result<(u64, u64)> {
        let (first, lsn, full) = {
            let mut st = write(&self.state);
            msgs.first_offset = st.next_offset();
            for t in &mut msgs.received_at {
                *t = (*t).max(st.last_received);
                st.last_received = *t;
            }
            let lsn = log(&msgs)?;
            let first = msgs.first_offset;
            self.apply(&mut st, msgs, lsn);
            (first, lsn, !st.sealing.is_empty())
        };
        // The messages are logged and applied: the append has happened, whatever the segment
        // write does. A segment that cannot be written now (a full disk) stays queued, in memory
        // and in the WAL, and the next append or flush writes it; failing this append would
        // make its caller report as refused messages that the WAL will store.
        if full {
            let _ = self.write_sealed();
        }
        Ok((first, lsn))
    }

    /// Re-applies a WAL record on startup; offsets already in segments are skipped.
    pub fn replay(&self, msgs: &Messages, lsn: u64) -> Result<()> {
        {
            let mut st = write(&self.state);
            let next = st.next_offset();
            if msgs.end_offset() <= next {
                return Ok(());
            }
            if msgs.first_offset > next {
                return Err(Error::corrupt(
                    &self.dir,
                    format!(
                        "channel {}: WAL record starts at offset {} but the channel ends at {next}",
                        self.name, msgs.first_offset
                    ),
                ));
            }
            let skip = (next - msgs.first_offset) as usize;
            let rest = msgs.slice(skip, msgs.len());
            if let Some(&t) = rest.received_at.last() {
                st.last_received = st.last_received.max(t);
            }
            self.apply(&mut st, rest, lsn);
        }
        self.write_sealed()
    }

    /// Adds `msgs` (at the tail's end offset) to the tail, freezing the tail whenever a new
    /// day starts or it is full.
    fn apply(&self, st: &mut State, msgs: Messages, lsn: u64) {
        // A segment holds one day. Most appends are within one day and go in whole.
        let mut days = Vec::new();
        let mut start = 0;
        while start < msgs.len() {
            let day = day_of(msgs.received_at[start]);
            let end = start + msgs.received_at[start..].iter().take_while(|&&t| day_of(t) == day).count();
            days.push((start, end));
            start = end;
        }
        if days.len() == 1 {
            self.apply_day(st, msgs, lsn);
        } else {
            for (a, b) in days {
                self.apply_day(st, msgs.slice(a, b), lsn);
            }
        }
    }

    /// [`Self::apply`] for messages of one day.
    fn apply_day(&self, st: &mut State, msgs: Messages, lsn: u64) {
        if st.tail.first_time().map(day_of) != msgs.received_at.first().map(|&t| day_of(t)) {
            st.freeze();
        }
        st.tail.push(msgs, lsn);
        if st.tail.len >= self.opts.seal_messages || st.tail.payload_bytes >= self.opts.seal_bytes {
            st.freeze();
        }
    }

    /// Writes the sealing queue as segment files, oldest first. Readers and appenders go on
    /// meanwhile; a tail that fails to write stays queued and is tried again by the next call.
    fn write_sealed(&self) -> Result<()> {
        let _one_writer = lock(&self.seal_lock);
        loop {
            let Some(p) = read(&self.state).sealing.front().cloned() else { return Ok(()) };
            let day = p.first_time().map_or(0, day_of);
            let seg = self.write_segment(&p, day)?;
            let mut st = write(&self.state);
            st.sealing.pop_front();
            Self::add_segment(&mut st, seg);
        }
    }

    /// Writes `p` (possibly empty) as a segment file of partition `day`.
    fn write_segment(&self, p: &Pending, day: i32) -> Result<Arc<ChSegment>> {
        let pdir = self.dir.join(day_name(day));
        create_dir_durable(&pdir).at(&pdir)?;
        let path = pdir.join(format!("{:020}.{FILE_EXT}", p.first_offset));
        let bytes = segment::encode(&p.concat(), day, p.max_lsn, self.opts.block_messages);
        write_atomic(&path, &bytes).at(&path)?;
        Ok(Arc::new(ChSegment::open(&path)?))
    }

    fn add_segment(st: &mut State, seg: Arc<ChSegment>) {
        // An empty marker segment is superseded by the next segment at the same offset.
        st.segments
            .retain(|s| !(s.meta.count == 0 && s.meta.first_offset == seg.meta.first_offset && s.path != seg.path));
        st.segments.push(seg);
    }

    /// Seals the tail if it holds anything. Afterwards every message appended before the call
    /// is in a segment file.
    pub fn flush(&self) -> Result<()> {
        write(&self.state).freeze();
        self.write_sealed()
    }

    /// Highest LSN held in segments or the tail.
    pub fn max_lsn(&self) -> u64 {
        let st = read(&self.state);
        let unsealed = st.unsealed().map(|p| p.max_lsn).max().unwrap_or(0);
        st.segments.iter().map(|s| s.meta.max_lsn).max().unwrap_or(0).max(unsealed)
    }

    /// Day of the oldest partition holding messages.
    pub fn oldest_day(&self) -> Option<i32> {
        let st = read(&self.state);
        let unsealed = st.unsealed().find_map(Pending::first_time).map(day_of);
        st.segments.iter().find(|s| s.meta.count > 0).map(|s| s.meta.day).or(unsealed)
    }

    pub fn next_offset(&self) -> u64 {
        read(&self.state).next_offset()
    }

    /// The segments and the chunks of every unsealed message, at one moment.
    /// Also the offset where the unsealed messages start.
    fn view(&self) -> (Vec<Arc<ChSegment>>, u64, Vec<Arc<Messages>>) {
        let st = read(&self.state);
        let from = st.sealing.front().map_or(st.tail.first_offset, |p| p.first_offset);
        (st.segments.clone(), from, st.unsealed().flat_map(|p| p.chunks.iter().cloned()).collect())
    }

    /// Up to `max` messages from `offset` on (from the oldest kept if `offset` was dropped by
    /// retention). The result's `first_offset` says where it starts.
    pub fn read_from(&self, offset: u64, max: usize) -> Result<Messages> {
        let (segs, unsealed_from, chunks) = self.view();
        let oldest = segs.first().map_or(unsealed_from, |s| s.meta.first_offset);
        let from = offset.max(oldest);
        let to = from.saturating_add(max as u64);
        let mut out = Messages { first_offset: from, ..Default::default() };
        for s in &segs {
            if s.meta.end_offset() > from && s.meta.first_offset < to {
                s.read(from.max(s.meta.first_offset), to, None, &mut out)?;
            }
        }
        for c in &chunks {
            let s = from.max(c.first_offset);
            if s < to && s < c.end_offset() {
                if out.is_empty() {
                    out.first_offset = s;
                }
                let a = (s - c.first_offset) as usize;
                let b = (to.min(c.end_offset()) - c.first_offset) as usize;
                out.extend_range(c, a, b);
            }
        }
        Ok(out)
    }

    /// Messages received in `[from, to)`, pruning segments and blocks by time.
    pub fn read_time_range(&self, from: i64, to: i64) -> Result<Messages> {
        let (segs, _, chunks) = self.view();
        let mut out = Messages::default();
        for s in &segs {
            if s.meta.count > 0 && s.meta.max_time >= from && s.meta.min_time < to {
                s.read(s.meta.first_offset, s.meta.end_offset(), Some((from, to)), &mut out)?;
            }
        }
        for c in &chunks {
            // Arrival times never decrease along offsets: the range is one run of each chunk.
            let a = c.received_at.partition_point(|&t| t < from);
            let b = c.received_at.partition_point(|&t| t < to);
            if a < b {
                if out.is_empty() {
                    out.first_offset = c.first_offset + a as u64;
                }
                out.extend_range(c, a, b);
            }
        }
        Ok(out)
    }

    /// Approximate bytes of the messages not yet in segment files (payloads, ids, topics).
    pub fn unsealed_bytes(&self) -> usize {
        read(&self.state).unsealed().map(|p| p.payload_bytes + 48 * p.len).sum()
    }

    pub fn stats(&self) -> ChannelStats {
        let st = read(&self.state);
        let kept: Vec<_> = st.segments.iter().filter(|s| s.meta.count > 0).collect();
        let unsealed: Vec<&Pending> = st.unsealed().collect();
        let first_received = kept.first().map(|s| s.meta.min_time).or(unsealed.iter().find_map(|p| p.first_time()));
        let last_received = unsealed.iter().rev().find_map(|p| p.last_time()).or(kept.last().map(|s| s.meta.max_time));
        ChannelStats {
            messages: kept.iter().map(|s| s.meta.count).sum::<u64>()
                + unsealed.iter().map(|p| p.len as u64).sum::<u64>(),
            payload_bytes: kept.iter().map(|s| s.meta.payload_bytes).sum::<u64>()
                + unsealed.iter().map(|p| p.payload_bytes as u64).sum::<u64>(),
            disk_bytes: st.segments.iter().map(|s| s.meta.file_len).sum(),
            segments: st.segments.len(),
            first_offset: st.segments.first().map_or(unsealed[0].first_offset, |s| s.meta.first_offset),
            next_offset: st.next_offset(),
            first_received,
            last_received,
        }
    }

    /// Drops the partitions older than the retention period at `now`. The engine seals and
    /// checkpoints first, so no dropped message can come back from the WAL.
    pub fn enforce_retention(&self, now: i64) -> Result<Vec<i32>> {
        let Some(days) = self.retention_days() else { return Ok(Vec::new()) };
        self.drop_partitions_before(day_of(now) - days as i32, day_of(now))
    }

    /// Drops partitions before `cutoff`; `today` names the partition of the marker segment
    /// written when nothing else would remain.
    pub fn drop_partitions_before(&self, cutoff: i32, today: i32) -> Result<Vec<i32>> {
        let mut st = write(&self.state);
        let mut days: Vec<i32> = st.segments.iter().map(|s| s.meta.day).filter(|&d| d < cutoff).collect();
        days.dedup();
        if days.is_empty() {
            return Ok(days);
        }
        if st.segments.iter().all(|s| s.meta.day < cutoff) && st.unsealed().all(Pending::is_empty) {
            let marker = self.write_segment(&Pending::starting_at(st.next_offset()), today.max(cutoff))?;
            Self::add_segment(&mut st, marker);
        }
        st.segments.retain(|s| s.meta.day >= cutoff);
        for d in &days {
            let pdir = self.dir.join(day_name(*d));
            if pdir.exists() {
                fs::remove_dir_all(&pdir).at(&pdir)?;
            }
        }
        sync_dir(&self.dir).at(&self.dir)?;
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appenders fill tails while readers read: every read sees consecutive offsets with the
    /// messages in append order, whether they sit in segments, in tails being sealed, or in
    /// the tail; after a reopen the same messages are there.
    #[test]
    fn reads_during_concurrent_appends_and_seals_see_every_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ChannelOptions { seal_messages: 50, block_messages: 8, ..Default::default() };
        let ch = Channel::open("c", dir.path(), opts.clone()).unwrap();
        let day = 86_400_000_000i64;
        std::thread::scope(|s| {
            for w in 0..2 {
                let ch = &ch;
                s.spawn(move || {
                    for i in 0..200 {
                        let mut m = Messages::default();
                        for j in 0..7 {
                            // Every 50 appends cross into the next day.
                            m.push(day * (i / 50) + 1, &format!("{w}-{i}-{j}"), "", b"{}");
                        }
                        ch.append(m, |_| Ok(1)).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..200 {
                    let m = ch.read_from(0, usize::MAX).unwrap();
                    assert_eq!(m.first_offset, 0);
                    let mut seen = std::collections::HashSet::new();
                    for i in 0..m.len() {
                        assert!(seen.insert(m.ids.get(i).to_string()), "duplicate in a read");
                    }
                    assert_eq!(m.len() % 7, 0, "a read saw part of an append");
                }
            });
        });
        let all = ch.read_from(0, usize::MAX).unwrap();
        assert_eq!(all.len(), 2 * 200 * 7);
        assert_eq!(ch.stats().messages, 2800);
        ch.flush().unwrap();
        let again = Channel::open("c", dir.path(), opts).unwrap();
        let reread = again.read_from(0, usize::MAX).unwrap();
        assert_eq!(
            (0..reread.len()).map(|i| reread.ids.get(i)).collect::<Vec<_>>(),
            (0..all.len()).map(|i| all.ids.get(i)).collect::<Vec<_>>()
        );
        // Arrival times were clamped to never decrease, so count what landed in day 1.
        let in_day_one = all.received_at.iter().filter(|&&t| (day..2 * day).contains(&t)).count();
        assert!(in_day_one > 0);
        assert_eq!(again.read_time_range(day, 2 * day).unwrap().len(), in_day_one);
    }
}
