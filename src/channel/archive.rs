//! [`Channel`]: one channel's sealed segments plus its in-memory tail.
//!
//! Invariants:
//! - Offsets are consecutive from 0 for the life of the channel, and arrival times never
//!   decrease along them (the engine clamps the clock), so a time range is an offset range.
//! - The unsealed tail lives only in memory and in the WAL; sealing writes it whole as one
//!   segment file. Replay skips records whose offsets a segment already holds.
//! - A channel always keeps at least one segment once it has sealed anything, even if empty,
//!   so that the next offset survives retention dropping every message.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::Messages;
use super::segment::{self, ChSegment, FILE_EXT};
use crate::error::{Error, IoContext, Result};
use crate::util::fsutil::{create_dir_durable, remove_tmp_files, sync_dir, write_atomic};
use crate::util::sync::{read, write};
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

struct State {
    segments: Vec<Arc<ChSegment>>,
    tail: Messages,
    tail_max_lsn: u64,
    last_received: i64,
}

impl State {
    fn next_offset(&self) -> u64 {
        self.tail.end_offset()
    }
}

pub struct Channel {
    name: String,
    dir: PathBuf,
    opts: ChannelOptions,
    /// Days kept; starts from the options, changed by ALTER … SET.
    retention: crate::util::sync::Retention,
    state: RwLock<State>,
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
        let tail = Messages { first_offset: next, ..Default::default() };
        Ok(Channel {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            retention: crate::util::sync::Retention::new(opts.retention_days),
            opts,
            state: RwLock::new(State { segments, tail, tail_max_lsn: 0, last_received }),
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
    /// it runs under the channel's lock so WAL order equals offset order. The caller waits for
    /// durability afterwards, outside the lock. Returns (first offset, LSN).
    pub fn append(&self, mut msgs: Messages, log: impl FnOnce(&Messages) -> Result<u64>) -> Result<(u64, u64)> {
        let mut st = write(&self.state);
        msgs.first_offset = st.next_offset();
        for t in &mut msgs.received_at {
            *t = (*t).max(st.last_received);
            st.last_received = *t;
        }
        let lsn = log(&msgs)?;
        let first = msgs.first_offset;
        self.apply(&mut st, &msgs, lsn)?;
        Ok((first, lsn))
    }

    /// Re-applies a WAL record on startup; offsets already in segments are skipped.
    pub fn replay(&self, msgs: &Messages, lsn: u64) -> Result<()> {
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
        self.apply(&mut st, &rest, lsn)
    }

    fn apply(&self, st: &mut State, msgs: &Messages, lsn: u64) -> Result<()> {
        // A segment holds one day: seal the tail before the first message of a new day.
        let mut start = 0;
        while start < msgs.len() {
            let day = day_of(msgs.received_at[start]);
            if let Some(&t) = st.tail.received_at.first()
                && day_of(t) != day
            {
                self.seal(st)?;
            }
            let mut end = start;
            while end < msgs.len() && day_of(msgs.received_at[end]) == day {
                end += 1;
            }
            st.tail.extend_range(msgs, start, end);
            st.tail_max_lsn = st.tail_max_lsn.max(lsn);
            if st.tail.len() >= self.opts.seal_messages || st.tail.payload_bytes() >= self.opts.seal_bytes {
                self.seal(st)?;
            }
            start = end;
        }
        Ok(())
    }

    fn seal(&self, st: &mut State) -> Result<()> {
        let day = st.tail.received_at.first().map_or(0, |&t| day_of(t));
        self.write_segment(st, day)
    }

    /// Writes the tail (possibly empty) as a segment of partition `day`.
    fn write_segment(&self, st: &mut State, day: i32) -> Result<()> {
        let pdir = self.dir.join(day_name(day));
        create_dir_durable(&pdir).at(&pdir)?;
        let path = pdir.join(format!("{:020}.{FILE_EXT}", st.tail.first_offset));
        let bytes = segment::encode(&st.tail, day, st.tail_max_lsn, self.opts.block_messages);
        write_atomic(&path, &bytes).at(&path)?;
        let seg = Arc::new(ChSegment::open(&path)?);
        // An empty marker segment is superseded by the next segment at the same offset.
        st.segments
            .retain(|s| !(s.meta.count == 0 && s.meta.first_offset == seg.meta.first_offset && s.path != seg.path));
        st.segments.push(seg);
        st.tail = Messages { first_offset: st.next_offset(), ..Default::default() };
        st.tail_max_lsn = 0;
        Ok(())
    }

    /// Seals the tail if it holds anything. Afterwards every message appended before the call
    /// is in a segment file.
    pub fn flush(&self) -> Result<()> {
        let mut st = write(&self.state);
        if st.tail.is_empty() {
            return Ok(());
        }
        self.seal(&mut st)
    }

    /// Highest LSN held in segments or the tail.
    pub fn max_lsn(&self) -> u64 {
        let st = read(&self.state);
        st.segments.iter().map(|s| s.meta.max_lsn).max().unwrap_or(0).max(st.tail_max_lsn)
    }

    /// Day of the oldest partition holding messages.
    pub fn oldest_day(&self) -> Option<i32> {
        let st = read(&self.state);
        st.segments.iter().find(|s| s.meta.count > 0).map(|s| s.meta.day).or(st
            .tail
            .received_at
            .first()
            .map(|&t| day_of(t)))
    }

    pub fn next_offset(&self) -> u64 {
        read(&self.state).next_offset()
    }

    fn view(&self) -> (Vec<Arc<ChSegment>>, Messages) {
        let st = read(&self.state);
        (st.segments.clone(), st.tail.clone())
    }

    /// Up to `max` messages from `offset` on (from the oldest kept if `offset` was dropped by
    /// retention). The result's `first_offset` says where it starts.
    pub fn read_from(&self, offset: u64, max: usize) -> Result<Messages> {
        let (segs, tail) = self.view();
        let oldest = segs.first().map_or(tail.first_offset, |s| s.meta.first_offset);
        let from = offset.max(oldest);
        let to = from.saturating_add(max as u64);
        let mut out = Messages { first_offset: from, ..Default::default() };
        for s in &segs {
            if s.meta.end_offset() > from && s.meta.first_offset < to {
                s.read(from.max(s.meta.first_offset), to, None, &mut out)?;
            }
        }
        let s = from.max(tail.first_offset);
        if s < to && s < tail.end_offset() {
            if out.is_empty() {
                out.first_offset = s;
            }
            let a = (s - tail.first_offset) as usize;
            let b = (to.min(tail.end_offset()) - tail.first_offset) as usize;
            out.extend_range(&tail, a, b);
        }
        Ok(out)
    }

    /// Messages received in `[from, to)`, pruning segments and blocks by time.
    pub fn read_time_range(&self, from: i64, to: i64) -> Result<Messages> {
        let (segs, tail) = self.view();
        let mut out = Messages::default();
        for s in &segs {
            if s.meta.count > 0 && s.meta.max_time >= from && s.meta.min_time < to {
                s.read(s.meta.first_offset, s.meta.end_offset(), Some((from, to)), &mut out)?;
            }
        }
        for i in 0..tail.len() {
            let t = tail.received_at[i];
            if t >= from && t < to {
                if out.is_empty() {
                    out.first_offset = tail.first_offset + i as u64;
                }
                out.extend_range(&tail, i, i + 1);
            }
        }
        Ok(out)
    }

    pub fn stats(&self) -> ChannelStats {
        let st = read(&self.state);
        let kept: Vec<_> = st.segments.iter().filter(|s| s.meta.count > 0).collect();
        let first_received = kept.first().map(|s| s.meta.min_time).or(st.tail.received_at.first().copied());
        let last_received = st.tail.received_at.last().copied().or(kept.last().map(|s| s.meta.max_time));
        ChannelStats {
            messages: kept.iter().map(|s| s.meta.count).sum::<u64>() + st.tail.len() as u64,
            payload_bytes: kept.iter().map(|s| s.meta.payload_bytes).sum::<u64>() + st.tail.payload_bytes() as u64,
            disk_bytes: st.segments.iter().map(|s| s.meta.file_len).sum(),
            segments: st.segments.len(),
            first_offset: st.segments.first().map_or(st.tail.first_offset, |s| s.meta.first_offset),
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
        if st.segments.iter().all(|s| s.meta.day < cutoff) && st.tail.is_empty() {
            self.write_segment(&mut st, today.max(cutoff))?;
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
