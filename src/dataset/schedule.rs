//! Schedule expressions, parsed and evaluated as Amazon CloudWatch (EventBridge) does, so a
//! dataset's `schedule` carries over from AWS IoT Analytics unchanged:
//!
//! - `rate(value unit)`: every `value` minutes, hours or days. The unit is singular for 1
//!   (`rate(1 hour)`) and plural otherwise (`rate(15 minutes)`), as AWS requires. fleetdb
//!   also takes seconds (`rate(1 second)`), which AWS did not: its refreshes took minutes.
//! - `cron(minutes hours day-of-month month day-of-week year)`, in UTC. Fields take `*`, a
//!   value, `a-b`, `a,b,…`, `a/n` and `*/n`; months `1-12` or `JAN-DEC`; weekdays `1-7` or
//!   `SUN-SAT` (1 is Sunday); years 1970-2199. One of day-of-month and day-of-week must be
//!   `?`. Day-of-month also takes `L` (last day), `LW` (last weekday) and `nW` (the weekday
//!   nearest day n, within the month); day-of-week takes `nL` (last weekday n of the month) and
//!   `n#k` (the k-th weekday n).
//!
//! A rate counts from a starting time (the dataset's creation); a cron fires at whole minutes.

use crate::util::time::{civil_from_days, days_from_civil};

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 86_400_000_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Every `every` microseconds.
    Rate {
        every: i64,
    },
    Cron(Cron),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    years: Vec<bool>,
    day: DayRule,
}

#[derive(Clone, Debug, PartialEq)]
enum DayRule {
    /// Days of the month (1..=31) and/or `L`/`LW`/`nW`.
    OfMonth { days: Vec<bool>, last: bool, last_weekday: bool, nearest_weekday: Option<u32> },
    /// Weekdays (1 = Sunday … 7), `nL` or `n#k`.
    OfWeek { days: Vec<bool>, last: Option<u32>, nth: Option<(u32, u32)> },
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    pub fn parse(s: &str) -> crate::Result<Schedule> {
        Self::parse_text(s).map_err(crate::Error::Invalid)
    }

    /// [`Self::parse`], its error a reason as text.
    fn parse_text(s: &str) -> std::result::Result<Schedule, String> {
        let t = s.trim();
        let inner = |prefix: &str| {
            t.strip_prefix(prefix).and_then(|r| r.trim_start().strip_prefix('(')).and_then(|r| r.strip_suffix(')'))
        };
        if let Some(body) = inner("rate") {
            let mut parts = body.split_whitespace();
            let (Some(v), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("'{s}': rate takes a value and a unit, as in rate(5 minutes)"));
            };
            let v: i64 = v
                .parse()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("'{s}': the value must be a positive whole number"))?;
            let (one, many, us) = match unit {
                "second" | "seconds" => ("second", "seconds", MINUTE / 60),
                "minute" | "minutes" => ("minute", "minutes", MINUTE),
                "hour" | "hours" => ("hour", "hours", 60 * MINUTE),
                "day" | "days" => ("day", "days", DAY),
                _ => return Err(format!("'{s}': the unit is second(s), minute(s), hour(s) or day(s)")),
            };
            if (v == 1) != (unit == one) {
                return Err(format!("'{s}': write rate(1 {one}) for one, rate({v} {many}) for more"));
            }
            return v.checked_mul(us).map(|every| Schedule::Rate { every }).ok_or_else(|| format!("'{s}': too long"));
        }
        if let Some(body) = inner("cron") {
            return Cron::parse(body).map(Schedule::Cron).map_err(|e| format!("'{s}': {e}"));
        }
        Err(format!("'{s}' is not a schedule expression: use rate(…) or cron(…)"))
    }

    /// The first time the schedule fires strictly after `after`; a rate counts from `start`.
    /// `None` when a cron never fires again.
    pub fn next_after(&self, start: i64, after: i64) -> Option<i64> {
        match self {
            Schedule::Rate { every } => {
                if after < start {
                    return Some(start);
                }
                let n = after.checked_sub(start)? / every + 1;
                start.checked_add(n.checked_mul(*every)?)
            }
            Schedule::Cron(c) => c.next_after(after),
        }
    }
}

/// Parses one field into a membership table over `lo..=hi`.
fn field(s: &str, lo: u32, hi: u32, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut set = vec![false; hi as usize + 1];
    let value = |v: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(i as u32 + lo);
        }
        v.parse::<u32>().ok().filter(|x| (lo..=hi).contains(x)).ok_or_else(|| format!("{v} is not in {lo}-{hi}"))
    };
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                (r, st.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| format!("bad step in {part}"))?)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a > b {
            return Err(format!("{range} is an empty range"));
        }
        let mut x = a;
        while x <= b {
            set[x as usize] = true;
            x += step;
        }
    }
    Ok(set)
}

fn weekday_of(days: i64) -> u32 {
    // 1970-01-01 was a Thursday (5 with Sunday = 1).
    ((days + 4).rem_euclid(7) + 1) as u32
}

fn month_len(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as u32
}

impl Cron {
    fn parse(body: &str) -> Result<Cron, String> {
        let f: Vec<&str> = body.split_whitespace().collect();
        let [mi, h, dom, mon, dow, yr] = f[..] else {
            return Err("cron takes six fields: minutes hours day-of-month month day-of-week year".into());
        };
        if (dom == "?") == (dow == "?") {
            return Err("one of day-of-month and day-of-week must be ?".into());
        }
        let day = if dom == "?" {
            let w = dow;
            let (mut last, mut nth) = (None, None);
            let days = if let Some(n) = w.strip_suffix('L').filter(|n| !n.is_empty()) {
                last = Some(field(n, 1, 7, &WEEKDAYS)?.iter().position(|&b| b).ok_or("bad L")? as u32);
                vec![false; 8]
            } else if let Some((n, k)) = w.split_once('#') {
                let d = field(n, 1, 7, &WEEKDAYS)?.iter().position(|&b| b).ok_or("bad #")? as u32;
                let k: u32 = k.parse().ok().filter(|k| (1..=5).contains(k)).ok_or("n#k takes k from 1 to 5")?;
                nth = Some((d, k));
                vec![false; 8]
            } else if w == "L" {
                last = Some(7);
                vec![false; 8]
            } else {
                field(w, 1, 7, &WEEKDAYS)?
            };
            DayRule::OfWeek { days, last, nth }
        } else {
            let d = dom;
            let (mut last, mut last_weekday, mut nearest_weekday) = (false, false, None);
            let days = match d {
                "L" => {
                    last = true;
                    vec![false; 32]
                }
                "LW" => {
                    last_weekday = true;
                    vec![false; 32]
                }
                _ if d.ends_with('W') => {
                    let n: u32 = d[..d.len() - 1]
                        .parse()
                        .ok()
                        .filter(|n| (1..=31).contains(n))
                        .ok_or("nW takes n from 1 to 31")?;
                    nearest_weekday = Some(n);
                    vec![false; 32]
                }
                _ => field(d, 1, 31, &[])?,
            };
            DayRule::OfMonth { days, last, last_weekday, nearest_weekday }
        };
        Ok(Cron {
            minutes: field(mi, 0, 59, &[])?,
            hours: field(h, 0, 23, &[])?,
            months: field(mon, 1, 12, &MONTHS)?,
            years: field(yr, 1970, 2199, &[])?,
            day,
        })
    }

    fn day_matches(&self, days: i64) -> bool {
        let (y, m, d) = civil_from_days(days as i32);
        if !self.years.get(y as usize).copied().unwrap_or(false) || !self.months[m as usize] {
            return false;
        }
        let len = month_len(y, m);
        let wd = weekday_of(days);
        let is_weekday = |wd: u32| (2..=6).contains(&wd);
        match &self.day {
            DayRule::OfMonth { days: set, last, last_weekday, nearest_weekday } => {
                if *last {
                    return d == len;
                }
                if *last_weekday {
                    let last_wd = (1..=len).rev().find(|&x| is_weekday(weekday_of(days - d as i64 + x as i64)));
                    return Some(d) == last_wd;
                }
                if let Some(n) = nearest_weekday {
                    let n = (*n).min(len);
                    let wd_n = weekday_of(days - d as i64 + n as i64);
                    let target = match wd_n {
                        7 if n == 1 => n + 2,   // Saturday the 1st: Monday the 3rd
                        7 => n - 1,             // Saturday: Friday
                        1 if n == len => n - 2, // Sunday the last day: Friday
                        1 => n + 1,             // Sunday: Monday
                        _ => n,
                    };
                    return d == target;
                }
                set[d as usize]
            }
            DayRule::OfWeek { days: set, last, nth } => {
                if let Some(w) = last {
                    return wd == *w && d + 7 > len;
                }
                if let Some((w, k)) = nth {
                    return wd == *w && (d - 1) / 7 + 1 == *k;
                }
                set[wd as usize]
            }
        }
    }

    fn next_after(&self, after: i64) -> Option<i64> {
        // The next whole minute after `after`.
        let t = after.div_euclid(MINUTE).checked_add(1)?.checked_mul(MINUTE)?;
        let first_day = t.div_euclid(DAY);
        let last_day = days_from_civil(2200, 1, 1) as i64;
        for day in first_day..last_day {
            if !self.day_matches(day) {
                continue;
            }
            let from = if day == first_day { (t - day * DAY) / MINUTE } else { 0 };
            for m in from..24 * 60 {
                if self.hours[(m / 60) as usize] && self.minutes[(m % 60) as usize] {
                    return Some(day * DAY + m * MINUTE);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::scalar::parse_timestamp;

    fn at(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    /// Each expression, a time, and the next firings after it.
    #[test]
    fn schedules_fire_when_cloudwatch_would() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("cron(0 12 * * ? *)", "2026-11-27 12:00:00+00", &["2026-11-28 12:00:00+00", "2026-11-29 12:00:00+00"]),
            (
                "cron(15 10 ? * 6L 2026-2027)",
                "2026-11-01 00:00:00+00",
                &["2026-11-27 10:15:00+00", "2026-12-25 10:15:00+00"],
            ),
            ("cron(0/15 * * * ? *)", "2026-11-27 08:07:30+00", &["2026-11-27 08:15:00+00", "2026-11-27 08:30:00+00"]),
            (
                "cron(0 18 ? * MON-FRI *)",
                "2026-11-27 19:00:00+00",
                &["2026-11-30 18:00:00+00", "2026-12-01 18:00:00+00"],
            ),
            ("cron(0 8 1 * ? *)", "2026-11-27 00:00:00+00", &["2026-12-01 08:00:00+00", "2027-01-01 08:00:00+00"]),
            ("cron(0 0 L * ? *)", "2027-01-31 00:00:00+00", &["2027-02-28 00:00:00+00", "2027-03-31 00:00:00+00"]),
            ("cron(0 0 LW * ? *)", "2026-01-01 00:00:00+00", &["2026-01-30 00:00:00+00", "2026-02-27 00:00:00+00"]),
            // 2026-11-01 is a Sunday: the nearest weekday is Monday the 2nd; 2027-05-01 a Saturday: Monday the 3rd.
            ("cron(0 0 1W * ? *)", "2026-10-31 00:00:00+00", &["2026-11-02 00:00:00+00", "2026-12-01 00:00:00+00"]),
            ("cron(30 9 ? * 2#1 *)", "2026-11-27 00:00:00+00", &["2026-12-07 09:30:00+00", "2027-01-04 09:30:00+00"]),
            ("cron(0 12 29 FEB ? *)", "2026-01-01 00:00:00+00", &["2028-02-29 12:00:00+00", "2032-02-29 12:00:00+00"]),
            (
                "cron(5,35 14 * JAN,JUL ? *)",
                "2026-07-31 14:35:00+00",
                &["2027-01-01 14:05:00+00", "2027-01-01 14:35:00+00"],
            ),
        ];
        for (expr, from, want) in cases {
            let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let mut t = at(from);
            for w in *want {
                t = s.next_after(0, t).unwrap_or_else(|| panic!("{expr} stopped"));
                assert_eq!(t, at(w), "{expr} after {from}");
            }
        }
        assert_eq!(Schedule::parse("cron(0 0 1 1 ? 2026)").unwrap().next_after(0, at("2026-06-01 00:00:00+00")), None);
        let rate = Schedule::parse("rate(15 minutes)").unwrap();
        let start = at("2026-11-27 08:00:00+00");
        assert_eq!(rate.next_after(start, start), Some(start + 15 * MINUTE));
        assert_eq!(rate.next_after(start, start + 16 * MINUTE), Some(start + 30 * MINUTE));
        assert_eq!(rate.next_after(start, start - 1), Some(start));
        assert_eq!(Schedule::parse("rate(1 day)").unwrap(), Schedule::Rate { every: DAY });
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        for bad in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 hours)",
            "rate(5 weeks)",
            "rate(5)",
            "cron(0 12 * * * *)",
            "cron(0 12 ? * ? *)",
            "cron(0 12 * *)",
            "cron(60 12 * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 12 32 * ? *)",
            "cron(0 12 * 13 ? *)",
            "cron(0 12 ? * 8 *)",
            "cron(0 12 ? * MON#6 *)",
            "cron(0 12 5-1 * ? *)",
            "cron(0/0 * * * ? *)",
            "cron(0 12 * * ? 1969)",
            "every hour",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
