//! [`Summary`]: log lines for events that can come once per message or per batch (refused
//! messages, failing pipeline batches), summarised: at most one line per key every period,
//! counting what happened since the last line.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a summarised line may be written for one key.
pub(crate) const PERIOD: Duration = Duration::from_secs(5);

/// Counts per key; [`Summary::add`] says when a line is due and with what count.
pub(crate) struct Summary {
    period: Duration,
    keys: Mutex<Option<HashMap<String, (Instant, u64)>>>,
}

/// The most keys remembered (keys are object names; past this the oldest are forgotten).
const MAX_KEYS: usize = 4096;

impl Summary {
    pub(crate) const fn new(period: Duration) -> Summary {
        Summary { period, keys: Mutex::new(None) }
    }

    /// Counts `n` events for `key`. Returns the count to write when a line is due (the first
    /// event of a key, then at most once a period), `None` while it is not.
    pub(crate) fn add(&self, key: &str, n: u64) -> Option<u64> {
        self.add_at(key, n, Instant::now())
    }

    fn add_at(&self, key: &str, n: u64, now: Instant) -> Option<u64> {
        let mut guard = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let keys = guard.get_or_insert_with(HashMap::new);
        if let Some((last, pending)) = keys.get_mut(key) {
            *pending += n;
            if now.duration_since(*last) < self.period {
                return None;
            }
            let count = *pending;
            (*last, *pending) = (now, 0);
            return Some(count);
        }
        if keys.len() >= MAX_KEYS {
            let period = self.period;
            keys.retain(|_, (last, _)| now.duration_since(*last) < period);
        }
        keys.insert(key.to_string(), (now, 0));
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_period_with_the_count_since_the_last() {
        let s = Summary::new(Duration::from_secs(5));
        let t = Instant::now();
        assert_eq!(s.add_at("c", 3, t), Some(3));
        assert_eq!(s.add_at("c", 2, t + Duration::from_secs(1)), None);
        assert_eq!(s.add_at("d", 1, t + Duration::from_secs(1)), Some(1), "keys are apart");
        assert_eq!(s.add_at("c", 4, t + Duration::from_secs(4)), None);
        assert_eq!(s.add_at("c", 1, t + Duration::from_secs(6)), Some(7));
        assert_eq!(s.add_at("c", 1, t + Duration::from_secs(7)), None);
    }
}
