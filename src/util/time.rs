//! Time arithmetic. All timestamps are `i64` microseconds since the Unix epoch, UTC, as
//! PostgreSQL stores `timestamptz`. Partitions are named by civil date (`YYYY-MM-DD`).

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Days since 1970-01-01 of a timestamp (floor division, so pre-epoch times work).
pub fn day_of(ts_micros: i64) -> i32 {
    ts_micros.div_euclid(MICROS_PER_DAY) as i32
}

/// The current wall-clock time. Only the engine's edges call this; storage takes `now` as input.
pub fn now_micros() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// (year, month, day) of a day number; Howard Hinnant's civil-from-days algorithm.
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// Day number of a civil date; inverse of [`civil_from_days`].
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// `YYYY-MM-DD` for a day number: the name of a partition directory.
pub fn day_name(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses a partition directory name back into a day number.
pub fn parse_day_name(s: &str) -> Option<i32> {
    let mut it = s.splitn(3, '-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if s.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (day_name(days) == s).then_some(days)
}

/// RFC 3339 text of a timestamp, UTC, microsecond precision.
pub fn format_timestamp(ts: i64) -> String {
    let days = day_of(ts);
    let (y, mo, d) = civil_from_days(days);
    let rem = ts - days as i64 * MICROS_PER_DAY;
    let secs = rem / MICROS_PER_SECOND;
    let micros = rem % MICROS_PER_SECOND;
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 19_723, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(parse_day_name(&day_name(days)), Some(days), "{}", day_name(days));
        }
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(20_418), "2025-11-26");
        assert_eq!(parse_day_name("2025-02-30"), None);
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_timestamp(1_764_115_200_000_000 + 3_723_000_001), "2025-11-26T01:02:03.000001Z");
    }
}
