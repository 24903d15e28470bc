//! [`Summary`]: log lines for events that can come once per message or per batch (refused
//! messages, failing pipeline messages), summarised: at most one line per key every period,
//! with the count since the last line and the last event's detail. Counts left over when the
//! events stop are written by a background thread once their period is up, so the log's
//! counts add up to what happened.

use std::collections::HashMap;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// How often a summarised line may be written for one key.
pub(crate) const PERIOD: Duration = Duration::from_secs(5);

/// Writes one summary line: the key, the count since the last line, the last event's detail.
pub(crate) type Emit = fn(key: &str, count: u64, last: &str);

/// Counts per key; writes a line through its [`Emit`] when one is due.
pub(crate) struct Summary {
    period: Duration,
    emit: Emit,
    keys: Mutex<Option<HashMap<String, Pending>>>,
    registered: Once,
}

struct Pending {
    /// When the last line for this key was written.
    written: Instant,
    /// Events since then, and the last one's detail.
    count: u64,
    last: String,
}

/// The most keys remembered (keys are object names; past this the quiet ones are forgotten).
const MAX_KEYS: usize = 4096;

/// Every summary that has counted something, for the thread that writes left-over counts.
static SUMMARIES: Mutex<Vec<&'static Summary>> = Mutex::new(Vec::new());

impl Summary {
    pub(crate) const fn new(emit: Emit) -> Summary {
        Summary { period: PERIOD, emit, keys: Mutex::new(None), registered: Once::new() }
    }

    /// Counts `n` events for `key`, the last with `detail`; writes the line when it is due
    /// (the first event of a key, then at most once a period).
    pub(crate) fn add(&'static self, key: &str, n: u64, detail: &str) {
        self.registered.call_once(|| register(self));
        if let Some((count, last)) = self.add_at(key, n, detail, Instant::now()) {
            (self.emit)(key, count, &last);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HashMap<String, Pending>>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The line due now for `key`, if one is: its count and last detail.
    fn add_at(&self, key: &str, n: u64, detail: &str, now: Instant) -> Option<(u64, String)> {
        let mut guard = self.lock();
        let keys = guard.get_or_insert_with(HashMap::new);
        if let Some(p) = keys.get_mut(key) {
            p.count += n;
            if now.duration_since(p.written) < self.period {
                detail.clone_into(&mut p.last);
                return None;
            }
            let count = std::mem::take(&mut p.count);
            p.written = now;
            return Some((count, detail.to_string()));
        }
        if keys.len() >= MAX_KEYS {
            let period = self.period;
            keys.retain(|_, p| p.count > 0 || now.duration_since(p.written) < period);
        }
        keys.insert(key.to_string(), Pending { written: now, count: 0, last: String::new() });
        Some((n, detail.to_string()))
    }

    /// The left-over counts whose period is up at `now`, taken.
    fn due(&self, now: Instant) -> Vec<(String, u64, String)> {
        let mut guard = self.lock();
        let Some(keys) = guard.as_mut() else { return Vec::new() };
        let mut out = Vec::new();
        for (k, p) in keys.iter_mut() {
            if p.count > 0 && now.duration_since(p.written) >= self.period {
                out.push((k.clone(), std::mem::take(&mut p.count), std::mem::take(&mut p.last)));
                p.written = now;
            }
        }
        out
    }
}

/// Adds `s` to the summaries the background thread looks at, starting the thread once.
fn register(s: &'static Summary) {
    static THREAD: Once = Once::new();
    SUMMARIES.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    THREAD.call_once(|| {
        let _ = std::thread::Builder::new().name("fleetdb-logsum".into()).spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let all: Vec<&'static Summary> = SUMMARIES.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for s in all {
                    for (key, count, last) in s.due(Instant::now()) {
                        (s.emit)(&key, count, &last);
                    }
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(_: &str, _: u64, _: &str) {}

    #[test]
    fn one_line_a_period_and_left_over_counts_are_written_later() {
        let s = Summary::new(ignore);
        let t = Instant::now();
        assert_eq!(s.add_at("c", 3, "a", t), Some((3, "a".into())));
        assert_eq!(s.add_at("c", 2, "b", t + Duration::from_secs(1)), None);
        assert_eq!(s.add_at("d", 1, "x", t + Duration::from_secs(1)), Some((1, "x".into())), "keys are apart");
        assert_eq!(s.add_at("c", 4, "c", t + Duration::from_secs(4)), None);
        // Nothing more comes: the 6 counted are due once the period is up, with the last detail.
        assert!(s.due(t + Duration::from_secs(4)).is_empty());
        assert_eq!(s.due(t + Duration::from_secs(6)), vec![("c".to_string(), 6, "c".to_string())]);
        assert!(s.due(t + Duration::from_secs(20)).is_empty(), "taken once");
        assert_eq!(s.add_at("c", 1, "e", t + Duration::from_secs(7)), None, "within the period of that line");
        assert_eq!(s.add_at("c", 1, "f", t + Duration::from_secs(12)), Some((2, "f".into())));
    }
}
