//! Pipeline definitions: the activities, the spec CREATE and ALTER PIPELINE give and the definition it becomes, and the pipelines file.

use std::fmt;
use std::path::Path;

use crate::query::ast;

use crate::error::{Error, Result};
use crate::util::bytes::{ByteReader, PutBytes};

pub const FILE_NAME: &str = "pipelines";
pub(super) const MAGIC: [u8; 8] = *b"FLEETPIP";
pub(super) const VERSION: u32 = 1;

/// Activities in one pipeline, as AWS allows.
pub const MAX_ACTIVITIES: usize = 25;

/// One step of a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub enum Activity {
    /// Keeps the messages for which the condition is true (NULL drops, as in WHERE).
    Filter(ast::Expr),
    /// Sets attribute `name` to the expression's value.
    Math { name: String, expr: ast::Expr },
    /// Copies the attribute at `path` (dotted, `[i]` indexes) to a new attribute.
    AddAttributes(Vec<(String, String)>),
    /// Removes attributes (an object's name removes its nested attributes too).
    RemoveAttributes(Vec<String>),
    /// Keeps only these attributes.
    SelectAttributes(Vec<String>),
    /// Adds columns of the table row whose `column` equals the message's `attr`.
    Enrich { table: String, attr: String, column: String, columns: Option<Vec<String>> },
    /// Runs `command` (through `sh -c`) on up to `batch_size` messages at a time: a JSON array
    /// of messages on its stdin, a JSON array of messages expected on its stdout.
    Lambda { command: String, batch_size: usize, timeout_secs: u64 },
    /// Fills each of `attrs` a message lacks (or has as null) with the last value seen for
    /// the message's `key`, like a device shadow.
    Latest { attrs: Vec<String>, key: String },
    /// Drops a message when an earlier kept message with the same values of `attrs` arrived
    /// less than `within_micros` before it.
    Deduplicate { attrs: Vec<String>, within_micros: i64, within_text: String },
    /// Drops messages whose `attr` is an outlier among the recent values of its `key`.
    RemoveOutliers { attr: String, key: Option<String>, rule: OutlierRule },
}

/// How REMOVE OUTLIERS judges a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OutlierRule {
    /// More than `k` standard deviations from the mean of the key's last `n` values.
    ZScore { k: f64, n: usize },
    /// Outside `lo..=hi`.
    Range { lo: f64, hi: f64 },
}

impl fmt::Display for OutlierRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutlierRule::ZScore { k, n } => write!(f, "ZSCORE {k} OVER {n}"),
            OutlierRule::Range { lo, hi } => write!(f, "RANGE {lo} TO {hi}"),
        }
    }
}

/// LAMBDA's defaults: AWS's batch size, and a timeout.
pub const LAMBDA_BATCH: usize = 100;
pub const LAMBDA_TIMEOUT_SECS: u64 = 10;

pub(super) fn quoted(name: &str) -> String {
    let plain = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

pub(super) fn list(names: &[String]) -> String {
    names.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activity::Filter(e) => write!(f, "FILTER {e}"),
            Activity::Math { name, expr } => write!(f, "MATH {} = {expr}", quoted(name)),
            Activity::AddAttributes(pairs) => {
                let items: Vec<String> =
                    pairs.iter().map(|(p, n)| format!("{} AS {}", path_text(p), quoted(n))).collect();
                write!(f, "ADD ATTRIBUTES ({})", items.join(", "))
            }
            Activity::RemoveAttributes(names) => write!(f, "REMOVE ATTRIBUTES ({})", list(names)),
            Activity::SelectAttributes(names) => write!(f, "SELECT ATTRIBUTES ({})", list(names)),
            Activity::Lambda { command, batch_size, timeout_secs } => write!(
                f,
                "LAMBDA '{}' WITH (batch_size = {batch_size}, timeout = '{timeout_secs}s')",
                command.replace('\'', "''")
            ),
            Activity::Latest { attrs, key } => write!(f, "LATEST ({}) BY {}", paths(attrs), path_text(key)),
            Activity::Deduplicate { attrs, within_text, .. } => {
                write!(f, "DEDUPLICATE ON ({}) WITHIN '{}'", paths(attrs), within_text.replace('\'', "''"))
            }
            Activity::RemoveOutliers { attr, key, rule } => {
                write!(f, "REMOVE OUTLIERS ON {}", path_text(attr))?;
                if let Some(k) = key {
                    write!(f, " BY {}", path_text(k))?;
                }
                write!(f, " {rule}")
            }
            Activity::Enrich { table, attr, column, columns } => {
                write!(f, "ENRICH FROM {} ON {}", quoted(table), quoted(attr))?;
                if column != attr {
                    write!(f, " = {}", quoted(column))?;
                }
                if let Some(c) = columns {
                    write!(f, " COLUMNS ({})", list(c))?;
                }
                Ok(())
            }
        }
    }
}

pub(super) fn paths(names: &[String]) -> String {
    names.iter().map(|n| path_text(n)).collect::<Vec<_>>().join(", ")
}

/// A path as written back in SQL: each dotted part quoted as needed, indexes kept.
pub(super) fn path_text(path: &str) -> String {
    path.split('.')
        .map(|part| match part.find('[') {
            Some(i) => format!("{}{}", quoted(&part[..i]), &part[i..]),
            None => quoted(part),
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Activity {
    /// The activity's kind, as `pipeline_errors` and SHOW name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Activity::Filter(_) => "filter",
            Activity::Math { .. } => "math",
            Activity::AddAttributes(_) => "addAttributes",
            Activity::RemoveAttributes(_) => "removeAttributes",
            Activity::SelectAttributes(_) => "selectAttributes",
            Activity::Enrich { .. } => "enrich",
            Activity::Lambda { .. } => "lambda",
            Activity::Latest { .. } => "latest",
            Activity::Deduplicate { .. } => "deduplicate",
            Activity::RemoveOutliers { .. } => "removeOutliers",
        }
    }

    /// Whether the activity keeps state from batch to batch.
    pub fn is_stateful(&self) -> bool {
        matches!(self, Activity::Latest { .. } | Activity::Deduplicate { .. } | Activity::RemoveOutliers { .. })
    }
}

/// How the event time is read from the `timestamp` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// Numbers are epoch seconds below 10^11 and epoch milliseconds above; strings are ISO 8601.
    Auto,
    EpochSeconds,
    EpochMillis,
    Iso8601,
    /// A strftime pattern (`%Y-%m-%d %H:%M:%S`), UTC unless it has `%z`.
    Pattern(String),
}

impl TimeFormat {
    pub fn parse(s: &str) -> Result<TimeFormat> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(TimeFormat::Auto),
            "epoch_s" => Ok(TimeFormat::EpochSeconds),
            "epoch_ms" => Ok(TimeFormat::EpochMillis),
            "iso8601" => Ok(TimeFormat::Iso8601),
            _ if s.contains('%') => {
                // Every directive must be one the parser knows.
                let mut it = s.chars();
                while let Some(c) = it.next() {
                    if c == '%' {
                        match it.next() {
                            Some(d) if "YymdejHIpMSfzbhBaAsTFD%".contains(d) => {}
                            Some(d) => {
                                return Err(Error::invalid(format!("timestamp_format '{s}': %{d} is not supported")));
                            }
                            None => return Err(Error::invalid(format!("timestamp_format '{s}' ends with a lone %"))),
                        }
                    }
                }
                Ok(TimeFormat::Pattern(s.to_string()))
            }
            _ => Err(Error::invalid(format!(
                "timestamp_format '{s}' is not one of epoch_s, epoch_ms, iso8601 or a strftime pattern"
            ))),
        }
    }
    pub fn name(&self) -> &str {
        match self {
            TimeFormat::Auto => "auto",
            TimeFormat::EpochSeconds => "epoch_s",
            TimeFormat::EpochMillis => "epoch_ms",
            TimeFormat::Iso8601 => "iso8601",
            TimeFormat::Pattern(p) => p,
        }
    }
}

/// A pipeline as defined.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineDef {
    pub name: String,
    pub channel: String,
    pub datastore: String,
    pub activities: Vec<Activity>,
    /// The attribute holding event time; without it rows take their arrival time.
    pub timestamp: Option<String>,
    pub timestamp_format: TimeFormat,
    /// Unique for the life of the data directory: it names the pipeline's position in the
    /// datastore, so a pipeline created again under the same name starts afresh.
    pub id: u64,
    /// The channel offset the pipeline starts at (the channel's end when it was created).
    pub start_offset: u64,
}

impl PipelineDef {
    /// The key of this pipeline's channel position in the datastore.
    pub fn position_key(&self) -> String {
        format!("pipeline:{}:{}", self.name, self.id)
    }

    /// The activities as CREATE PIPELINE writes them.
    pub fn activities_text(&self) -> String {
        self.activities.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")
    }

    /// The CREATE PIPELINE statement that defines this pipeline.
    pub fn to_sql(&self) -> String {
        let mut s = format!("CREATE PIPELINE {} FROM CHANNEL {}", quoted(&self.name), quoted(&self.channel));
        for a in &self.activities {
            s.push(' ');
            s.push_str(&a.to_string());
        }
        s.push_str(&format!(" INTO DATASTORE {}", quoted(&self.datastore)));
        if let Some(t) = &self.timestamp {
            s.push_str(&format!(
                " WITH (timestamp = '{}', timestamp_format = '{}')",
                t.replace('\'', "''"),
                self.timestamp_format.name().replace('\'', "''")
            ));
        }
        s
    }
}

pub fn save(dir: &Path, defs: &[PipelineDef]) -> Result<()> {
    let mut b = Vec::new();
    b.put_u32(defs.len() as u32);
    for d in defs {
        b.put_u64(d.id);
        b.put_u64(d.start_offset);
        b.put_bytes32(d.to_sql().as_bytes());
    }
    crate::util::recfile::write(&dir.join(FILE_NAME), &MAGIC, VERSION, &b)
}

/// The pipelines in `dir` (none if the file does not exist).
pub fn load(dir: &Path) -> Result<Vec<PipelineDef>> {
    let path = dir.join(FILE_NAME);
    let Some(body) = crate::util::recfile::read(&path, &MAGIC, VERSION, "pipelines file")? else {
        return Ok(Vec::new());
    };
    let corrupt = |why: &str| Error::corrupt(&path, format!("pipelines file: {why}"));
    let mut r = ByteReader::new(&body);
    let n = r.u32().ok_or_else(|| corrupt("short"))?;
    let mut out = Vec::new();
    for _ in 0..n {
        let id = r.u64().ok_or_else(|| corrupt("short"))?;
        let start_offset = r.u64().ok_or_else(|| corrupt("short"))?;
        let sql = r.bytes32().and_then(|b| std::str::from_utf8(b).ok()).ok_or_else(|| corrupt("short"))?;
        let spec = crate::pipeline::grammar::definition(sql)
            .map_err(|e| corrupt(&format!("unreadable definition {sql:?}: {}", e.message)))?;
        let def = spec.into_def(id, start_offset).map_err(|e| corrupt(&e.to_string()))?;
        out.push(def);
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// A CREATE or ALTER PIPELINE statement's parts, as parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineSpec {
    pub name: String,
    pub channel: Option<String>,
    pub activities: Vec<Activity>,
    pub datastore: Option<String>,
    pub options: Vec<(String, String)>,
}

impl PipelineSpec {
    /// A full definition; CREATE needs the channel and the datastore.
    pub fn into_def(self, id: u64, start_offset: u64) -> Result<PipelineDef> {
        let channel = self.channel.ok_or_else(|| Error::invalid("a pipeline reads FROM CHANNEL c"))?;
        let datastore = self.datastore.ok_or_else(|| Error::invalid("a pipeline writes INTO DATASTORE d"))?;
        let mut def = PipelineDef {
            name: self.name,
            channel,
            datastore,
            activities: Vec::new(),
            timestamp: None,
            timestamp_format: TimeFormat::Auto,
            id,
            start_offset,
        };
        apply_spec(&mut def, self.activities, &self.options)?;
        Ok(def)
    }
}

/// Sets a definition's activities and options, checking them.
pub fn apply_spec(def: &mut PipelineDef, activities: Vec<Activity>, options: &[(String, String)]) -> Result<()> {
    if activities.len() > MAX_ACTIVITIES {
        return Err(Error::invalid(format!(
            "a pipeline has at most {MAX_ACTIVITIES} activities; this one has {}",
            activities.len()
        )));
    }
    def.activities = activities;
    for (k, v) in options {
        match k.as_str() {
            "timestamp" => def.timestamp = (!v.is_empty()).then(|| v.clone()),
            "timestamp_format" => def.timestamp_format = TimeFormat::parse(v)?,
            other => {
                return Err(Error::invalid(format!(
                    "unknown pipeline option \"{other}\" (timestamp, timestamp_format)"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let sql = "CREATE PIPELINE p FROM CHANNEL c FILTER vibration > 0 MATH temperature_f = (temperature * 9 / 5) + 32 \
                   ADD ATTRIBUTES (device.\"Coord\"[0] AS x) REMOVE ATTRIBUTES (debug_flags, \"Raw\") \
                   SELECT ATTRIBUTES (a, b) ENRICH FROM machines ON machine_id = id COLUMNS (model_type) \
                   INTO DATASTORE d WITH (timestamp = 'ts', timestamp_format = 'epoch_ms')";
        let spec = crate::pipeline::grammar::definition(sql).unwrap();
        let def = spec.into_def(7, 42).unwrap();
        assert_eq!(def.activities.len(), 6);
        assert_eq!(def.timestamp_format, TimeFormat::EpochMillis);
        save(dir.path(), std::slice::from_ref(&def)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![def.clone()]);
        let path = dir.path().join(FILE_NAME);
        let mut b = std::fs::read(&path).unwrap();
        b[30] ^= 1;
        std::fs::write(&path, b).unwrap();
        assert!(load(dir.path()).is_err());
    }
}
