//! [`Requests`]: idempotent retries of HTTP ingest calls. A client that sends a request id
//! (header `x-request-id`) and gets no answer (a timeout, a dropped connection, a crash of the
//! server) sends the same call again with the same id; what the first attempt stored is not
//! stored twice.
//!
//! How: before the first message of a request is appended, its id, channel and the channel's
//! end offset are written and synced to `http_requests` in the data directory (one entry per
//! request; its bytes are in storage-format.md). Every message the request stores carries the topic `x-request-id:<id>`. A
//! request whose id is in the file is a retry: the channel is read from the recorded offset,
//! and the messages with that topic say what was stored (NDJSON lines by number, batch
//! messages by `messageId`), which the retry skips. Entries older than [`KEEP`] are dropped
//! when the file is rewritten.
//!
//! ```text
//! http_requests: magic "FLEETREQ" | version u32 = 1 | entry*
//! entry: { len u32 | crc32 u32 (of body) | body: id str16 | channel str16 | start u64 | at u64 }
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::channel::Channel;
use crate::error::{Error, IoContext, Result};
use crate::util::bytes::{ByteReader, PutBytes, crc32};

pub(crate) const FILE_NAME: &str = "http_requests";
const MAGIC: [u8; 8] = *b"FLEETREQ";
const VERSION: u32 = 1;

fn header() -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.put_u32(VERSION);
    b
}

fn entry(id: &str, e: &Entry) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_str16(id);
    body.put_str16(&e.channel);
    body.put_u64(e.start);
    body.put_u64(e.at);
    let mut b = Vec::with_capacity(body.len() + 8);
    b.put_u32(body.len() as u32);
    b.put_u32(crc32(&body));
    b.extend_from_slice(&body);
    b
}

/// How long a request id is remembered.
pub(crate) const KEEP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The topic of the messages request `id` stores.
pub(crate) fn topic(id: &str) -> String {
    format!("x-request-id:{id}")
}

/// A request id: 1 to 128 characters of letters, digits and `._:-`.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

struct Entry {
    channel: String,
    start: u64,
    at: u64,
}

pub(crate) struct Requests {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    known: HashMap<String, Entry>,
    /// Requests being served now: a second call with the same id waits its turn (409).
    busy: HashSet<String>,
    /// Lines in the file (rewritten when it has twice as many as are kept).
    lines: usize,
}

/// What earlier attempts of a request stored: the ids of the messages under its topic, each with
/// the CRC-32 of its payload.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    ids: HashMap<String, u32>,
}

/// A message of a retried request, against what earlier attempts stored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not stored before: store it.
    New,
    /// Stored before with the same payload: skip it.
    Stored,
    /// Stored before with another payload: the id was reused for different data, refuse it.
    Different,
}

impl Stored {
    pub(crate) fn check(&self, id: &str, payload: &[u8]) -> Retry {
        match self.ids.get(id) {
            None => Retry::New,
            Some(&crc) if crc == crc32(payload) => Retry::Stored,
            Some(_) => Retry::Different,
        }
    }
}

/// Why a message of a retry is refused when its payload differs from the stored one.
pub(crate) fn different_payload(request_id: &str, message_id: &str) -> String {
    format!(
        "message {message_id} was stored by an earlier attempt of request {request_id} with a different payload; \
         a retry must send the same messages (new data goes under a new x-request-id)"
    )
}

/// A request being served; releases its id when dropped.
pub(crate) struct Serving<'a> {
    requests: &'a Requests,
    id: String,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.requests.lock().busy.remove(&self.id);
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The entries of a request id file, and the length of its sound part: a torn or damaged
/// last entry (a crash while appending it) ends it; damage before it, or an unknown
/// version, is refused.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<(String, Entry)>, usize)> {
    let mut r = ByteReader::new(bytes);
    if r.take(8) != Some(&MAGIC[..]) {
        return Err(Error::corrupt(path, "request id file"));
    }
    let version = r.u32().unwrap_or(0);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: "request id file",
            found: version,
            supported: VERSION,
        });
    }
    let mut out = Vec::new();
    let mut good = r.pos();
    while !r.is_empty() {
        let parsed = (|| {
            let len = r.u32()? as usize;
            let crc = r.u32()?;
            let body = r.take(len)?;
            (crc32(body) == crc).then_some(())?;
            let mut b = ByteReader::new(body);
            let (id, channel, start, at) = (b.str16()?, b.str16()?, b.u64()?, b.u64()?);
            Some((id.to_string(), Entry { channel: channel.to_string(), start, at }))
        })();
        match parsed {
            Some(e) => {
                out.push(e);
                good = r.pos();
            }
            None if good + 8 + (u16::MAX as usize) * 2 + 16 >= bytes.len() => break,
            None => return Err(Error::corrupt(path, "request id entry")),
        }
    }
    Ok((out, good))
}

/// What `fleetdb inspect` prints for a request id file (`bytes` start with its magic).
pub(crate) fn describe(path: &Path, bytes: &[u8]) -> Result<String> {
    use std::fmt::Write as _;
    let (entries, good) = parse(path, bytes)?;
    let mut out = format!("request id file {} (format version {VERSION}): {} entries\n", path.display(), entries.len());
    for (id, e) in &entries {
        let _ = writeln!(out, "  {id}: channel {} from offset {} (at {} s)", e.channel, e.start, e.at);
    }
    if good < bytes.len() {
        let _ = writeln!(out, "a torn last entry of {} bytes (cut off when the server opens it)", bytes.len() - good);
    }
    Ok(out)
}

impl Requests {
    /// Reads the file of `dir`. A torn or damaged last entry (a crash while appending it) is
    /// cut off; damage before it, or an unknown version, is refused.
    pub(crate) fn open(dir: &Path) -> Result<Requests> {
        let path = dir.join(FILE_NAME);
        let mut state = State::default();
        if path.exists() {
            let bytes = std::fs::read(&path).at(&path)?;
            let (entries, good) = parse(&path, &bytes)?;
            if good < bytes.len() {
                // The tail a crash cut: drop it so later entries follow a whole one.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| {
                        f.set_len(good as u64).and_then(|()| crate::util::fsutil::fs().sync(&f, &path, false))
                    })
                    .at(&path)?;
            }
            let horizon = now_secs().saturating_sub(KEEP.as_secs());
            state.lines = entries.len();
            state.known.extend(entries.into_iter().filter(|(_, e)| e.at >= horizon));
        }
        Ok(Requests { path, state: Mutex::new(state) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts serving request `id` for `channel`: records it durably if it is new, or reads
    /// what its earlier attempts stored. `None` if the same id is being served right now.
    pub(crate) fn begin(&self, id: &str, channel: &Channel) -> Result<Option<(Serving<'_>, Stored)>> {
        let earlier = {
            let mut st = self.lock();
            if !st.busy.insert(id.to_string()) {
                return Ok(None);
            }
            st.known.get(id).filter(|e| e.channel == channel.name()).map(|e| e.start)
        };
        let serving = Serving { requests: self, id: id.to_string() };
        let stored = match earlier {
            Some(start) => Stored { ids: stored_ids(channel, start, &topic(id))? },
            None => {
                self.record(id, channel.name(), channel.next_offset())?;
                Stored::default()
            }
        };
        Ok(Some((serving, stored)))
    }

    /// Appends and syncs one line; rewrites the file without expired entries when it has
    /// grown to twice what it keeps.
    fn record(&self, id: &str, channel: &str, start: u64) -> Result<()> {
        let mut st = self.lock();
        let at = now_secs();
        let horizon = at.saturating_sub(KEEP.as_secs());
        st.known.retain(|_, e| e.at >= horizon);
        st.known.insert(id.to_string(), Entry { channel: channel.to_string(), start, at });
        if !self.path.exists() || (st.lines >= 1024 && st.lines >= 2 * st.known.len()) {
            // New, or grown to twice what it keeps: written whole (temporary name, rename).
            let mut b = header();
            for (k, e) in &st.known {
                b.extend(entry(k, e));
            }
            if let Err(e) = crate::util::fsutil::write_atomic(&self.path, &b) {
                st.known.remove(id); // not recorded: a retry is a first try
                return Err(Error::io(&self.path, e));
            }
            st.lines = st.known.len();
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).at(&self.path)?;
        let line = entry(id, &Entry { channel: channel.to_string(), start, at });
        let fs = crate::util::fsutil::fs();
        let len = f.metadata().at(&self.path)?.len();
        if let Err(e) = fs.write_all(&mut f, &self.path, &line).and_then(|()| fs.sync(&f, &self.path, true)) {
            // A part of an entry followed by later ones would be damage in the middle of the
            // file, which the next start refuses: cut it off again.
            let _ = f.set_len(len).and_then(|()| fs.sync(&f, &self.path, true));
            st.known.remove(id);
            return Err(Error::io(&self.path, e));
        }
        st.lines += 1;
        Ok(())
    }
}

/// Ids of the messages with `topic` from offset `start` on.
fn stored_ids(channel: &Channel, start: u64, topic: &str) -> Result<HashMap<String, u32>> {
    let end = channel.next_offset();
    let mut at = start;
    let mut ids = HashMap::new();
    while at < end {
        let m = channel.read_from(at, 16_384)?;
        if m.is_empty() {
            break;
        }
        for i in 0..m.len() {
            if m.topics.get(i) == topic {
                ids.insert(m.ids.get(i).to_string(), crc32(m.payloads.get(i)));
            }
        }
        at = m.first_offset + m.len() as u64;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_plain() {
        assert!(valid_id("job-2026-12-06T10:00:00.001_a"));
        assert!(!valid_id(""));
        assert!(!valid_id(&"x".repeat(129)));
        assert!(!valid_id("a b"));
        assert!(!valid_id("a\tb"));
        assert!(!valid_id("a/b"));
    }

    #[test]
    fn the_file_survives_a_reopen_a_torn_last_entry_is_cut_and_other_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = Requests::open(dir.path()).unwrap();
        r.record("r1", "c", 7).unwrap();
        r.record("r2", "c", 9).unwrap();
        drop(r);
        // A crash in the middle of appending r2: its entry is cut short.
        let path = dir.path().join(FILE_NAME);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
        let r = Requests::open(dir.path()).unwrap();
        {
            let st = r.lock();
            assert_eq!(st.known.get("r1").map(|e| (e.channel.as_str(), e.start)), Some(("c", 7)));
            assert!(!st.known.contains_key("r2"));
        }
        r.record("r3", "c", 11).unwrap();
        drop(r);
        let r = Requests::open(dir.path()).unwrap();
        assert!(r.lock().known.contains_key("r3"), "appended after the cut, it reads back");
        // Another version is refused.
        let mut b = std::fs::read(&path).unwrap();
        b[8] = 9;
        std::fs::write(&path, b).unwrap();
        assert!(matches!(Requests::open(dir.path()), Err(Error::UnsupportedVersion { found: 9, .. })));
    }
}
