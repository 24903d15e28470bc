//! A dataset's definition: its query or program, schedule, versions kept, delta window and
//! deliveries, read from the options of CREATE DATASET and written back as its text.

use std::time::Duration;

use super::schedule::Schedule;

use super::{deliver, grammar, incremental};
use crate::query::grammar::Options;

/// A dataset as defined.
#[derive(Clone, Debug)]
pub struct DatasetDef {
    pub name: String,
    /// The query as written, or a program dataset's `PROGRAM '…' INPUT …`.
    pub query: String,
    /// Set for a program dataset.
    pub program: Option<Program>,
    pub schedule: Option<(String, Schedule)>,
    /// Versions kept; `None` is unlimited.
    pub versions: Option<u32>,
    pub retention_days: Option<u32>,
    /// Runs whenever this other dataset's content succeeds.
    pub trigger: Option<String>,
    /// Each run reads only the rows of its delta window.
    pub delta: Option<Delta>,
    /// Rows arriving late into materialized windows are reported once none has arrived for
    /// this long (microseconds).
    pub late_data_timeout: Option<i64>,
    /// Where each SUCCEEDED version goes.
    pub deliveries: Vec<deliver::Target>,
    /// Set when the query groups by time buckets and can be refreshed incrementally.
    pub buckets: Option<incremental::Buckets>,
    /// When it was created: rates count from here.
    pub created: i64,
}

/// A program dataset (AWS container dataset): `command` turns its input dataset's content
/// into this dataset's.
#[derive(Clone, Debug)]
pub struct Program {
    pub command: String,
    pub input: String,
    /// A JSON object, handed to the program in its params file.
    pub variables: String,
    pub timeout: Duration,
    pub memory_limit: Option<u64>,
}

/// A delta window: rows whose `expr` falls after the previous window and before this run's
/// schedule time plus `offset`.
#[derive(Clone, Debug)]
pub struct Delta {
    pub expr: String,
    pub offset: i64,
}

/// An interval of days or less, in microseconds (negative allowed where `signed`).
pub(super) fn interval_micros(key: &str, v: &str, signed: bool) -> std::result::Result<i64, String> {
    crate::query::scalar::parse_fixed_interval(v)
        .filter(|&us| signed || us > 0)
        .ok_or_else(|| format!("{key} = '{v}': an interval such as '10 minutes' was expected"))
}

pub(super) fn program_mut<'d>(def: &'d mut DatasetDef, k: &str) -> std::result::Result<&'d mut Program, String> {
    def.program.as_mut().ok_or_else(|| format!("option \"{k}\" is for program datasets (AS PROGRAM …)"))
}

impl DatasetDef {
    /// The definition from CREATE DATASET's parts.
    pub fn new(name: &str, query: &str, options: &Options, created: i64) -> crate::Result<DatasetDef> {
        Self::new_text(name, query, options, created).map_err(crate::Error::Invalid)
    }

    /// [`Self::new`], its error a reason as text.
    fn new_text(name: &str, query: &str, options: &Options, created: i64) -> std::result::Result<DatasetDef, String> {
        let mut def = DatasetDef {
            name: name.to_string(),
            query: query.to_string(),
            program: grammar::program_body(query).map(|(command, input)| Program {
                command,
                input,
                variables: "{}".into(),
                timeout: Duration::from_secs(300),
                memory_limit: None,
            }),
            schedule: None,
            versions: Some(1),
            retention_days: None,
            trigger: None,
            delta: None,
            late_data_timeout: None,
            deliveries: Vec::new(),
            buckets: None,
            created,
        };
        let mut delta_offset = None;
        for (k, v) in options {
            match k.as_str() {
                "schedule" if v.is_empty() => def.schedule = None,
                "schedule" => def.schedule = Some((v.clone(), Schedule::parse(v).map_err(|e| e.to_string())?)),
                "versions" => {
                    def.versions = if v.eq_ignore_ascii_case("unlimited") {
                        None
                    } else {
                        Some(
                            v.parse()
                                .ok()
                                .filter(|&n| (1..=1000).contains(&n))
                                .ok_or_else(|| format!("versions = '{v}': a number from 1 to 1000, or 'unlimited'"))?,
                        )
                    }
                }
                "retention" => {
                    let days = v.trim().strip_suffix("days").or_else(|| v.trim().strip_suffix("day")).unwrap_or(v);
                    def.retention_days = if v.eq_ignore_ascii_case("unlimited") {
                        None
                    } else {
                        Some(days.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                            format!("retention = '{v}': a number of days, as in '30 days', or 'unlimited'")
                        })?)
                    }
                }
                "trigger" => def.trigger = (!v.is_empty()).then(|| v.clone()),
                "delta_time" if v.is_empty() => def.delta = None,
                "delta_time" => {
                    crate::query::parse::parse_expression(v)
                        .map_err(|e| format!("delta_time = '{v}': {}", e.message))?;
                    def.delta = Some(Delta { expr: v.clone(), offset: 0 });
                }
                "delta_offset" => delta_offset = Some(interval_micros(k, v, true)?),
                "late_data_timeout" if v.is_empty() => def.late_data_timeout = None,
                "late_data_timeout" => def.late_data_timeout = Some(interval_micros(k, v, false)?),
                "variables" => {
                    let ok =
                        matches!(crate::util::json::parse(v).map(|n| n.value), Ok(crate::util::json::Json::Object(_)));
                    if !ok {
                        return Err(format!("variables = {v}: (name = value, …) or a JSON object was expected"));
                    }
                    program_mut(&mut def, k)?.variables = v.clone();
                }
                "timeout" => {
                    let us = interval_micros(k, v, false)?;
                    program_mut(&mut def, k)?.timeout = Duration::from_micros(us as u64);
                }
                "memory_limit" => {
                    let bytes = crate::util::bytes::parse_size(v, 1 << 20)
                        .map_err(|_| format!("memory_limit = '{v}': a size of at least 1 MB, as in '512 MB'"))?;
                    program_mut(&mut def, k)?.memory_limit = Some(bytes as u64);
                }
                "deliver_file" | "deliver_mqtt" | "deliver_webhook" => {
                    def.deliveries.push(deliver::Target::new(k, v).map_err(|e| e.to_string())?)
                }
                other => {
                    return Err(format!(
                        "unknown dataset option \"{other}\" (schedule, trigger, versions, retention, delta_time, delta_offset, late_data_timeout; for programs variables, timeout, memory_limit)"
                    ));
                }
            }
        }
        match (&mut def.delta, delta_offset) {
            (Some(d), Some(o)) => d.offset = o,
            (None, Some(_)) => return Err("delta_offset needs delta_time".into()),
            _ => {}
        }
        if def.late_data_timeout.is_some() && def.delta.is_none() {
            return Err("late_data_timeout needs delta_time: late data is data arriving into a delta window".into());
        }
        if let Some(p) = &def.program {
            if def.delta.is_some() {
                return Err(
                    "a program dataset reads its input dataset's content; delta_time is for SQL datasets".into()
                );
            }
            if def.schedule.is_none() && def.trigger.is_none() {
                // As in AWS, a container dataset runs when its input's content succeeds.
                def.trigger = Some(p.input.clone());
            }
        }
        if def.schedule.is_some() && def.trigger.is_some() {
            return Err("a dataset runs on a schedule or on a trigger, not both".into());
        }
        if def.program.is_none() && def.delta.is_none() {
            def.buckets = incremental::buckets(&def.query);
        }
        Ok(def)
    }

    /// The options as CREATE DATASET's WITH and DELIVER clauses would give them.
    pub fn options(&self) -> Options {
        let mut o = Vec::new();
        if let Some((s, _)) = &self.schedule {
            o.push(("schedule".to_string(), s.clone()));
        }
        o.push(("versions".into(), self.versions.map_or("unlimited".into(), |n| n.to_string())));
        if let Some(d) = self.retention_days {
            o.push(("retention".into(), format!("{d} days")));
        }
        if let Some(t) = &self.trigger {
            o.push(("trigger".into(), t.clone()));
        }
        if let Some(d) = &self.delta {
            o.push(("delta_time".into(), d.expr.clone()));
            if d.offset != 0 {
                o.push(("delta_offset".into(), format!("{} seconds", d.offset as f64 / 1e6)));
            }
        }
        if let Some(t) = self.late_data_timeout {
            o.push(("late_data_timeout".into(), format!("{} seconds", t as f64 / 1e6)));
        }
        if let Some(p) = &self.program {
            o.push(("variables".into(), p.variables.clone()));
            o.push(("timeout".into(), format!("{} seconds", p.timeout.as_secs_f64())));
            if let Some(m) = p.memory_limit {
                o.push(("memory_limit".into(), m.to_string()));
            }
        }
        for t in &self.deliveries {
            o.push((t.option_key().into(), t.target.clone()));
        }
        o
    }

    /// The CREATE DATASET statement that defines this dataset.
    pub fn to_sql(&self) -> String {
        let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
        let mut with = Vec::new();
        let mut deliver = String::new();
        for (k, v) in self.options() {
            match k.strip_prefix("deliver_") {
                Some(kind) => deliver += &format!(" DELIVER TO {} {}", kind.to_ascii_uppercase(), quote(&v)),
                None => with.push(match v.parse::<u32>() {
                    Ok(n) => format!("{k} = {n}"),
                    Err(_) => format!("{k} = {}", quote(&v)),
                }),
            }
        }
        format!(
            "CREATE DATASET \"{}\" AS {} WITH ({}){deliver}",
            self.name.replace('"', "\"\""),
            self.query,
            with.join(", ")
        )
    }
}
