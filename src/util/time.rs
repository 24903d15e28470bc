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

/// Parses `s` with a strftime `pattern` into microseconds since the epoch (UTC unless the
/// pattern has `%z`). Understood: `%Y %y %m %d %e %j %H %I %p %M %S %f %z %b %h %B %a %A %s %T
/// %F %D %%`; any other character must match itself, and a space matches any run of spaces.
/// `None` when `s` does not match or names no valid time.
pub fn parse_strftime(s: &str, pattern: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let pattern = pattern.replace("%T", "%H:%M:%S").replace("%F", "%Y-%m-%d").replace("%D", "%m/%d/%y");
    let b = s.as_bytes();
    let mut i = 0;
    let (mut year, mut month, mut day, mut yday) = (1970i64, 1i64, 1i64, None::<i64>);
    let (mut hour, mut minute, mut second, mut micros, mut offset) = (0i64, 0i64, 0i64, 0i64, 0i64);
    let (mut pm, mut twelve, mut epoch) = (None::<bool>, false, None::<i64>);
    let num = |i: &mut usize, max_digits: usize, signed: bool| -> Option<i64> {
        let neg = signed && b.get(*i) == Some(&b'-');
        if neg || (signed && b.get(*i) == Some(&b'+')) {
            *i += 1;
        }
        let start = *i;
        while *i < b.len() && *i - start < max_digits && b[*i].is_ascii_digit() {
            *i += 1;
        }
        let v: i64 = s.get(start..*i)?.parse().ok()?;
        Some(if neg { -v } else { v })
    };
    let name = |i: &mut usize, names: &[&str]| -> Option<usize> {
        let rest = s.get(*i..)?.to_ascii_lowercase();
        let k = names.iter().position(|n| rest.starts_with(n))?;
        *i += 3;
        // A full name (January, Monday): skip its remaining letters.
        while *i < b.len() && b[*i].is_ascii_alphabetic() {
            *i += 1;
        }
        Some(k)
    };
    let mut p = pattern.chars().peekable();
    while let Some(c) = p.next() {
        if c != '%' {
            if c == ' ' {
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                continue;
            }
            let mut buf = [0u8; 4];
            let want = c.encode_utf8(&mut buf).as_bytes();
            if !b[i..].starts_with(want) {
                return None;
            }
            i += want.len();
            continue;
        }
        match p.next()? {
            'Y' => year = num(&mut i, 4, true)?,
            'y' => year = 2000 + num(&mut i, 2, false)?,
            'm' => month = num(&mut i, 2, false)?,
            'd' => day = num(&mut i, 2, false)?,
            'e' => {
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
                day = num(&mut i, 2, false)?
            }
            'j' => yday = Some(num(&mut i, 3, false)?),
            'H' => hour = num(&mut i, 2, false)?,
            'I' => {
                hour = num(&mut i, 2, false)?;
                twelve = true;
            }
            'p' => {
                let rest = s.get(i..i + 2)?.to_ascii_lowercase();
                pm = Some(match rest.as_str() {
                    "am" => false,
                    "pm" => true,
                    _ => return None,
                });
                i += 2;
            }
            'M' => minute = num(&mut i, 2, false)?,
            'S' => second = num(&mut i, 2, false)?,
            'f' => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = s.get(start..i)?;
                if digits.is_empty() {
                    return None;
                }
                let six: String = digits.chars().chain(std::iter::repeat('0')).take(6).collect();
                micros = six.parse().ok()?;
            }
            'z' => {
                if matches!(b.get(i), Some(b'Z' | b'z')) {
                    i += 1;
                } else {
                    let sign = match b.get(i)? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    i += 1;
                    let h = num(&mut i, 2, false)?;
                    if b.get(i) == Some(&b':') {
                        i += 1;
                    }
                    let m = num(&mut i, 2, false)?;
                    offset = sign * (h * 3600 + m * 60);
                }
            }
            'b' | 'h' | 'B' => month = name(&mut i, &MONTHS)? as i64 + 1,
            'a' | 'A' => {
                name(&mut i, &DAYS)?;
            }
            's' => epoch = Some(num(&mut i, 19, true)?),
            '%' => {
                if b.get(i) != Some(&b'%') {
                    return None;
                }
                i += 1;
            }
            _ => return None,
        }
    }
    if i != b.len() {
        return None;
    }
    if let Some(e) = epoch {
        return e.checked_mul(1_000_000)?.checked_add(micros);
    }
    if twelve {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if pm == Some(true) { 12 } else { 0 };
    } else if let Some(pm) = pm {
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) || !(0..=60).contains(&second) {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    let days = match yday {
        Some(n) => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if !(1..=365 + leap as i64).contains(&n) {
                return None;
            }
            days_from_civil(year, 1, 1) as i64 + n - 1
        }
        None => {
            let (m, d) = (u32::try_from(month).ok()?, u32::try_from(day).ok()?);
            if !(1..=12).contains(&m) || d < 1 || civil_from_days(days_from_civil(year, m, d)) != (year, m, d) {
                return None;
            }
            days_from_civil(year, m, d) as i64
        }
    };
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod strftime_tests {
    use super::*;

    #[test]
    fn strftime_patterns_parse_what_they_describe_and_nothing_else() {
        let t = |y, mo, d, h: i64, mi: i64, s: i64| {
            (days_from_civil(y, mo, d) as i64 * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000
        };
        let ok: &[(&str, &str, i64)] = &[
            ("2026-11-27 08:30:05", "%Y-%m-%d %H:%M:%S", t(2026, 11, 27, 8, 30, 5)),
            ("27/11/2026 08:30", "%d/%m/%Y %H:%M", t(2026, 11, 27, 8, 30, 0)),
            ("2026-11-27T08:30:05.25+0100", "%FT%T.%f%z", t(2026, 11, 27, 7, 30, 5) + 250_000),
            ("2026-11-27T08:30:05-02:30", "%Y-%m-%dT%H:%M:%S%z", t(2026, 11, 27, 11, 0, 5)),
            ("Nov 27 2026 8:30:05 PM", "%b %d %Y %I:%M:%S %p", t(2026, 11, 27, 20, 30, 5)),
            ("Friday, 27 November 26 12:00 AM", "%A, %d %B %y %I:%M %p", t(2026, 11, 27, 0, 0, 0)),
            ("2026.331", "%Y.%j", t(2026, 11, 27, 0, 0, 0)),
            ("1795000000", "%s", 1_795_000_000_000_000),
            ("100%", "100%%", 0),
        ];
        for (s, p, want) in ok {
            assert_eq!(parse_strftime(s, p), Some(*want), "{s} with {p}");
        }
        let bad: &[(&str, &str)] = &[
            ("2026-02-30 00:00:00", "%Y-%m-%d %H:%M:%S"),
            ("2026-11-27 24:00:00", "%Y-%m-%d %H:%M:%S"),
            ("2026-11-27", "%Y-%m-%d %H"),
            ("2026-11-27 extra", "%Y-%m-%d"),
            ("13:00 PM", "%I:%M %p"),
            ("x", "%Q"),
            ("", "%Y"),
        ];
        for (s, p) in bad {
            assert_eq!(parse_strftime(s, p), None, "{s} with {p}");
        }
    }
}
