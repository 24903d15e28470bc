//! Running a pipeline's activities over a decoded batch. Each activity is a query of the
//! query engine over the batch so far (relation `__in`), so FILTER and MATH expressions are
//! PostgreSQL expressions evaluated column-wise, and ENRICH is a hash join with the table as
//! it is at that moment. The queries are bound once per input schema ([`ActivityPlans`], kept
//! in the pipeline's state) and run again over each batch of that schema.
//!
//! A batch an activity fails on (a type mismatch in one message, say) is run again one
//! message at a time, so only the messages that fail go to `fleetdb.pipeline_errors`. A
//! message alone whose attribute is a numeric string is retried with that attribute as a
//! number, as AWS coerces numeric strings in math.

use std::sync::Arc;
use std::time::Duration;

use super::decode::{self, PATH_PREFIX, ROW, format_number};
use super::plans::ActivityPlans;
use super::state::{self, ActivityState, PipelineState};
use super::{Activity, PipelineDef, TimeFormat};
use crate::batch::{Batch, Column, DataType, Field, Values};
use crate::channel::Messages;
use crate::engine::Engine;
use crate::query::error::{SqlError, SqlResult};
use crate::query::parse::parse_query;

/// A message that did not make it through: its index in the input, the activity (or stage)
/// and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub message: usize,
    pub activity: String,
    pub reason: String,
}

/// What a run produced.
pub struct Output {
    /// Datastore rows: `time` and the attributes.
    pub rows: Batch,
    /// The input message each row came from.
    pub sources: Vec<usize>,
    /// Messages a FILTER dropped.
    pub filtered: usize,
    pub failures: Vec<Failure>,
}

impl Output {
    /// Keeps the rows within the datastore's column limit: when the rows bring more new
    /// columns than `existing` (the datastore's schema) leaves room for, the first new ones
    /// are kept and the rows holding a value in any other become failures (the messages are
    /// refused, not the batch).
    pub fn fit_columns(&mut self, existing: &[crate::batch::Field]) {
        use crate::datastore::MAX_COLUMNS;
        let new: Vec<usize> = (0..self.rows.fields.len())
            .filter(|&i| !existing.iter().any(|g| g.name == self.rows.fields[i].name))
            .collect();
        let room = MAX_COLUMNS.saturating_sub(existing.len());
        if new.len() <= room {
            return;
        }
        let excess = &new[room..];
        let n = self.rows.num_rows();
        let mut keep = Vec::with_capacity(n);
        for r in 0..n {
            match excess.iter().find(|&&c| self.rows.columns[c].is_valid(r)) {
                Some(&c) => self.failures.push(Failure {
                    message: self.sources[r],
                    activity: "datastore".into(),
                    reason: format!(
                        "attribute \"{}\" would be a column past the datastore's limit of {MAX_COLUMNS}",
                        self.rows.fields[c].name
                    ),
                }),
                None => keep.push(r as u32),
            }
        }
        let kept = self.rows.take(&keep);
        let cols: Vec<usize> = (0..kept.fields.len()).filter(|i| !excess.contains(i)).collect();
        self.rows = crate::batch::Batch {
            fields: cols.iter().map(|&i| kept.fields[i].clone()).collect(),
            columns: cols.iter().map(|&i| kept.columns[i].clone()).collect(),
        };
        self.sources = keep.iter().map(|&r| self.sources[r as usize]).collect();
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks that the activities' expressions parse as [`run_activities`] will parse them, within
/// the same bounds on size and nesting (for CREATE and ALTER PIPELINE).
pub fn check_activities(activities: &[Activity]) -> SqlResult<()> {
    let _stack = crate::query::guard::stack_base();
    for a in activities {
        match a {
            Activity::Filter(e) => drop(parse_query(&format!("SELECT * FROM __in WHERE {e}"))?),
            Activity::Math { expr, .. } => drop(parse_query(&format!("SELECT ({expr}) AS x FROM __in"))?),
            _ => {}
        }
    }
    Ok(())
}

/// The index of the batch's column named `name`: exactly, else ignoring case.
fn find(b: &Batch, name: &str) -> Option<usize> {
    b.column_index(name).or_else(|| b.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name)))
}

/// The name of the batch's column `name` as [`find`] finds it.
fn find_name(b: &Batch, name: &str) -> Option<String> {
    find(b, name).map(|i| b.fields[i].name.clone())
}

/// Whether column `c` is `name` or nested under it.
fn under(c: &str, name: &str) -> bool {
    c == name || (c.len() > name.len() && c.starts_with(name) && c.as_bytes()[name.len()] == b'.')
}

fn select_list(cols: impl Iterator<Item = String>) -> String {
    cols.map(|c| quote(&c)).collect::<Vec<_>>().join(", ")
}

/// The query that runs `a` over `b` and what else its plan depends on besides `b`'s schema
/// (an ENRICH table: its identity and columns), or `None` when the activity leaves the batch
/// as it is.
fn activity_sql(engine: &Arc<Engine>, a: &Activity, b: &Batch) -> SqlResult<Option<(String, String)>> {
    let names = || b.fields.iter().map(|f| f.name.clone());
    Ok(Some(match a {
        Activity::Filter(e) => (format!("SELECT * FROM __in WHERE {e}"), String::new()),
        Activity::Math { name, expr } => {
            let target = find_name(b, name).unwrap_or_else(|| name.clone());
            let rest = select_list(names().filter(|c| *c != target));
            (format!("SELECT {rest}, ({expr}) AS {} FROM __in", quote(&target)), String::new())
        }
        Activity::AddAttributes(_)
        | Activity::RemoveAttributes(_)
        | Activity::SelectAttributes(_)
        | Activity::Lambda { .. }
        | Activity::Latest { .. }
        | Activity::Deduplicate { .. }
        | Activity::RemoveOutliers { .. } => {
            unreachable!("attribute, stateful and LAMBDA activities run without a query")
        }
        Activity::Enrich { table, attr, column, columns } => {
            let Some(key) = find_name(b, attr) else { return Ok(None) };
            let t =
                engine.table(table).map_err(|_| SqlError::new("42P01", format!("table \"{table}\" does not exist")))?;
            let schema = t.schema();
            let added: Vec<String> = match columns {
                Some(c) => c.clone(),
                None => schema.columns.iter().map(|c| c.name.clone()).filter(|c| c != column).collect(),
            };
            let rest = names().filter(|c| !added.contains(c)).map(|c| format!("m.{}", quote(&c)));
            let adds = added.iter().map(|c| format!("t.{}", quote(c)));
            let mut also = format!("{:p}\0", Arc::as_ptr(&t));
            for c in &schema.columns {
                also += &format!("{}\0{}\0{}\0", c.name, c.type_tag, c.data_type as u8);
            }
            let sql = format!(
                "SELECT {} FROM __in m LEFT JOIN {} t ON m.{}::text = t.{}::text",
                rest.chain(adds).collect::<Vec<_>>().join(", "),
                quote(table),
                quote(&key),
                quote(column)
            );
            (sql, also)
        }
    }))
}

/// ADD, REMOVE and SELECT ATTRIBUTES: they copy, drop or keep columns.
fn move_attributes(a: &Activity, mut b: Batch) -> Batch {
    let keep = |b: Batch, f: &dyn Fn(&str) -> bool| {
        let (fields, columns) =
            b.fields.into_iter().zip(b.columns).filter(|(fl, _)| fl.name == ROW || f(&fl.name)).unzip();
        Batch { fields, columns }
    };
    match a {
        Activity::AddAttributes(pairs) => {
            for (path, new) in pairs {
                let src = b.column_index(&format!("{PATH_PREFIX}{path}")).or_else(|| find(&b, path));
                let Some(i) = src else { continue };
                let (field, col) = (Field::new(new, b.fields[i].data_type), b.columns[i].clone());
                match b.column_index(new) {
                    Some(j) => (b.fields[j], b.columns[j]) = (field, col),
                    None => {
                        b.fields.push(field);
                        b.columns.push(col);
                    }
                }
            }
            b
        }
        Activity::RemoveAttributes(names) => {
            keep(b, &|c| !names.iter().any(|r| under(c, r) || c.eq_ignore_ascii_case(r)))
        }
        Activity::SelectAttributes(names) => {
            keep(b, &|c| names.iter().any(|s| under(c, s) || c.eq_ignore_ascii_case(s)))
        }
        _ => b,
    }
}

/// Runs FILTER, MATH or ENRICH over `b`; `None` when it leaves the batch as it is. Attributes
/// an expression names but no message has are NULL: numbers, or text where the expression
/// needs text.
fn run_activity(
    engine: &Arc<Engine>,
    plans: &mut ActivityPlans,
    a: &Activity,
    mut b: Arc<Batch>,
) -> SqlResult<Option<Batch>> {
    let mut added: Vec<String> = Vec::new();
    let mut as_text = false;
    for _ in 0..32 {
        let Some((sql, also)) = activity_sql(engine, a, &b)? else { return Ok(None) };
        let missing_ok = matches!(a, Activity::Filter(_) | Activity::Math { .. });
        match plans.run(engine, &sql, &also, b.clone()) {
            Err(e) if e.is_undefined_column() && missing_ok => {
                let Some(name) = e.column.clone().filter(|n| b.column_index(n).is_none()) else {
                    return Err(e);
                };
                let t = if as_text { DataType::Text } else { DataType::Float64 };
                let m = Arc::make_mut(&mut b);
                let n = m.num_rows();
                m.fields.push(Field::new(&name, t));
                m.columns.push(Column::nulls(t, n));
                added.push(name);
            }
            Err(_) if !added.is_empty() && !as_text => {
                // Try the missing attributes as text instead.
                as_text = true;
                let m = Arc::make_mut(&mut b);
                let n = m.num_rows();
                for name in &added {
                    let i = m.column_index(name).expect("added above");
                    m.fields[i].data_type = DataType::Text;
                    m.columns[i] = Column::nulls(DataType::Text, n);
                }
            }
            other => return other.map(|out| Some(drop_columns(out, &added))),
        }
    }
    Err(SqlError::new("42703", "too many missing attributes"))
}

/// `b` without the columns named in `names` (stand-ins for missing attributes).
fn drop_columns(mut b: Batch, names: &[String]) -> Batch {
    for name in names {
        if let Some(i) = b.column_index(name) {
            b.fields.remove(i);
            b.columns.remove(i);
        }
    }
    b
}

/// Text columns whose every present value is a number (or that have none), as numbers: AWS's
/// coercion of numeric strings. `None` when there are no such columns.
fn coerce_numeric_strings(b: &Batch) -> Option<Batch> {
    let mut out = b.clone();
    let mut changed = false;
    for (f, c) in out.fields.iter_mut().zip(out.columns.iter_mut()) {
        let Values::Text(v) = &c.values else { continue };
        let parsed: Option<Vec<f64>> =
            (0..v.len())
                .map(|i| {
                    if c.is_valid(i) {
                        v.get(i).trim().parse::<f64>().ok().filter(|x| x.is_finite())
                    } else {
                        Some(0.0)
                    }
                })
                .collect();
        if let Some(nums) = parsed {
            *c = Column::with_validity(Values::Float64(nums), c.validity.clone());
            f.data_type = DataType::Float64;
            changed = true;
        }
    }
    changed.then_some(out)
}

/// Runs the activities over `b`. `on_step(k, batch, failed)` sees the output of activity k
/// and how many messages failed in it. Messages an activity fails on are added to `failures`.
///
/// `state` holds the stateful activities' state (one slot per activity, as
/// [`PipelineState::new`] makes it), `arrival[m]` message m's arrival time.
pub fn run_activities(
    engine: &Arc<Engine>,
    activities: &[Activity],
    mut b: Batch,
    state: &mut PipelineState,
    arrival: &[i64],
    failures: &mut Vec<Failure>,
    on_step: &mut dyn FnMut(usize, &Batch, usize),
) -> Batch {
    for (k, a) in activities.iter().enumerate() {
        let failed_before = failures.len();
        if a.is_stateful() {
            let slot = state.slots.get_mut(k).map(|s| &mut s.1);
            let (out, failed) = run_stateful(a, slot, b, arrival);
            for (message, reason) in failed {
                failures.push(Failure { message, activity: format!("{} {}", k + 1, a.kind()), reason });
            }
            b = out;
            on_step(k, &b, failures.len() - failed_before);
            continue;
        }
        if let Activity::Lambda { command, batch_size, timeout_secs } = a {
            let (out, failed) = super::lambda::run(command, *batch_size, Duration::from_secs(*timeout_secs), &b);
            for (i, reason) in failed {
                failures.push(Failure { message: row_of(&b, i), activity: format!("{} {}", k + 1, a.kind()), reason });
            }
            b = out;
            on_step(k, &b, failures.len() - failed_before);
            continue;
        }
        if matches!(a, Activity::AddAttributes(_) | Activity::RemoveAttributes(_) | Activity::SelectAttributes(_)) {
            b = move_attributes(a, b);
            on_step(k, &b, 0);
            continue;
        }
        let shared = Arc::new(b);
        b = match run_activity(engine, &mut state.plans, a, shared.clone()) {
            Ok(Some(out)) => out,
            Ok(None) => Arc::unwrap_or_clone(shared),
            Err(_) => {
                // Find the messages at fault: one at a time.
                let b = Arc::unwrap_or_clone(shared);
                let mut outs = Vec::new();
                for i in 0..b.num_rows() {
                    match one_message(engine, &mut state.plans, a, b.take(&[i as u32])) {
                        Ok(o) => outs.push(o),
                        Err(e) => failures.push(failure(&b, i, k, a, &e)),
                    }
                }
                if outs.is_empty() { b.take(&[]) } else { super::decode::union(&outs) }
            }
        };
        on_step(k, &b, failures.len() - failed_before);
    }
    b
}

/// LATEST, DEDUPLICATE or REMOVE OUTLIERS over `b` with the activity's state: the batch
/// after it, and the messages that failed.
fn run_stateful(
    a: &Activity,
    slot: Option<&mut ActivityState>,
    b: Batch,
    arrival: &[i64],
) -> (Batch, Vec<(usize, String)>) {
    match (a, slot) {
        (Activity::Latest { attrs, key }, Some(ActivityState::Latest(m))) => (state::latest(attrs, key, m, b), vec![]),
        (Activity::Deduplicate { attrs, within_micros, .. }, Some(ActivityState::Dedup { kept, swept })) => {
            (state::deduplicate(attrs, *within_micros, kept, swept, b, arrival), vec![])
        }
        (Activity::RemoveOutliers { attr, key, rule }, slot) => {
            let windows = match slot {
                Some(ActivityState::ZScore(w)) => Some(w),
                _ => None,
            };
            let rows = state::rows_of(&b);
            let (out, failed) = state::remove_outliers(attr, key.as_deref(), *rule, windows, b);
            (out, failed.into_iter().map(|(i, why)| (rows[i], why)).collect())
        }
        _ => (b, vec![]),
    }
}

fn one_message(engine: &Arc<Engine>, plans: &mut ActivityPlans, a: &Activity, one: Batch) -> SqlResult<Batch> {
    let one = Arc::new(one);
    let unchanged = |r: Option<Batch>, input: &Arc<Batch>| r.unwrap_or_else(|| input.as_ref().clone());
    match run_activity(engine, plans, a, one.clone()) {
        Ok(o) => Ok(unchanged(o, &one)),
        Err(e) => match coerce_numeric_strings(&one).map(Arc::new) {
            Some(c) => run_activity(engine, plans, a, c.clone()).map(|o| unchanged(o, &c)).map_err(|_| e),
            None => Err(e),
        },
    }
}

fn row_of(b: &Batch, i: usize) -> usize {
    match b.column(ROW).map(|c| &c.values) {
        Some(Values::Int64(v)) => v[i] as usize,
        _ => i,
    }
}

fn failure(b: &Batch, i: usize, k: usize, a: &Activity, e: &SqlError) -> Failure {
    Failure { message: row_of(b, i), activity: format!("{} {}", k + 1, a.kind()), reason: e.message.clone() }
}

/// Reads an event time: microseconds since the epoch.
pub fn parse_time(c: &Column, i: usize, format: &TimeFormat) -> Option<i64> {
    if !c.is_valid(i) {
        return None;
    }
    let from_number = |x: f64, ms: bool| {
        let micros = if ms { x * 1e3 } else { x * 1e6 };
        (micros.is_finite() && micros.abs() < 9.2e18).then_some(micros.round() as i64)
    };
    match (&c.values, format) {
        (Values::Float64(x), TimeFormat::EpochSeconds) => from_number(x[i], false),
        (Values::Float64(x), TimeFormat::EpochMillis) => from_number(x[i], true),
        (Values::Float64(x), TimeFormat::Auto) => from_number(x[i], x[i].abs() >= 1e11),
        (Values::Text(s), TimeFormat::Pattern(p)) => crate::util::time::parse_strftime(s.get(i).trim(), p),
        (Values::Float64(x), TimeFormat::Pattern(p)) => crate::util::time::parse_strftime(&format_number(x[i]), p),
        (Values::Int64(x), f) => parse_time(&Column::new(Values::Float64(vec![x[i] as f64])), 0, f),
        (Values::Text(s), TimeFormat::Iso8601) => crate::query::scalar::parse_timestamp(s.get(i)),
        (Values::Text(s), TimeFormat::Auto) => match s.get(i).trim().parse::<f64>() {
            Ok(x) => from_number(x, x.abs() >= 1e11),
            Err(_) => crate::query::scalar::parse_timestamp(s.get(i)),
        },
        (Values::Text(s), f) => {
            let x: f64 = s.get(i).trim().parse().ok()?;
            parse_time(&Column::new(Values::Float64(vec![x])), 0, f)
        }
        (Values::Timestamp(x), _) => Some(x[i]),
        _ => None,
    }
}

/// Runs pipeline `def` over `msgs`: decode, activities (with `state`), event time.
pub fn run_pipeline(engine: &Arc<Engine>, def: &PipelineDef, state: &mut PipelineState, msgs: &Messages) -> Output {
    let paths: Vec<String> = def
        .activities
        .iter()
        .flat_map(|a| match a {
            Activity::AddAttributes(p) => p.iter().map(|(path, _)| path.clone()).filter(|p| p.contains('[')).collect(),
            _ => Vec::new(),
        })
        .collect();
    let decoded = decode::decode(msgs, &paths);
    let mut failures: Vec<Failure> = decoded
        .errors
        .into_iter()
        .map(|(message, reason)| Failure { message, activity: "decode".into(), reason })
        .collect();
    let mut filtered = 0usize;
    let mut rows = decoded.batch.num_rows();
    let arrival = &msgs.received_at;
    let b =
        run_activities(engine, &def.activities, decoded.batch, state, arrival, &mut failures, &mut |k, b, failed| {
            if matches!(
                def.activities[k],
                Activity::Filter(_) | Activity::Deduplicate { .. } | Activity::RemoveOutliers { .. }
            ) {
                filtered += rows.saturating_sub(b.num_rows() + failed);
            }
            rows = b.num_rows();
        });
    finish(def, msgs, b, failures, filtered)
}

/// Adds `time` (from the timestamp attribute, else the arrival time) and drops [`ROW`].
fn finish(def: &PipelineDef, msgs: &Messages, mut b: Batch, mut failures: Vec<Failure>, filtered: usize) -> Output {
    let n = b.num_rows();
    let sources: Vec<usize> = (0..n).map(|i| row_of(&b, i)).collect();
    let mut time: Vec<i64> = sources.iter().map(|&m| msgs.received_at[m]).collect();
    let ts_col = def.timestamp.as_ref().and_then(|t| find_name(&b, t));
    if let Some(name) = &ts_col {
        let c = b.column(name).expect("found above").clone();
        for (i, t) in time.iter_mut().enumerate() {
            match parse_time(&c, i, &def.timestamp_format) {
                Some(v) => *t = v,
                None => failures.push(Failure {
                    message: sources[i],
                    activity: "timestamp".into(),
                    reason: format!(
                        "attribute \"{name}\" is missing or is not a time ({}); the row takes its arrival time",
                        def.timestamp_format.name()
                    ),
                }),
            }
        }
    } else if let Some(t) = &def.timestamp {
        for &m in &sources {
            failures.push(Failure {
                message: m,
                activity: "timestamp".into(),
                reason: format!("attribute \"{t}\" is missing; the row takes its arrival time"),
            });
        }
    }
    let mut fields = vec![Field::new("time", DataType::Timestamp)];
    let mut columns = vec![Column::new(Values::Timestamp(time))];
    fields.push(Field::new(super::LINEAGE_PIPELINE, DataType::Int64));
    columns.push(Column::new(Values::Int64(vec![def.id as i64; n])));
    fields.push(Field::new(super::LINEAGE_OFFSET, DataType::Int64));
    columns.push(Column::new(Values::Int64(sources.iter().map(|&m| (msgs.first_offset + m as u64) as i64).collect())));
    for (f, c) in b.fields.drain(..).zip(b.columns.drain(..)) {
        // `__` names are fleetdb's own (ROW, paths, lineage); an activity cannot make them.
        if f.name.starts_with("__") || ts_col.as_deref() == Some("time") && f.name == "time" {
            continue;
        }
        // An attribute named `time` that is not the event time keeps its value under another name.
        let name = if f.name == "time" { "payload_time".to_string() } else { f.name };
        fields.push(Field::new(&name, f.data_type));
        columns.push(c);
    }
    let rows = Batch::try_new(fields, columns).unwrap_or_default();
    Output { rows, sources, filtered, failures }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse::parse;
    use crate::command::session::Session;
    use crate::engine::EngineConfig;

    fn def(activities: &str, with: &str) -> PipelineDef {
        let sql = format!("CREATE PIPELINE p FROM CHANNEL c {activities} INTO DATASTORE d {with}");
        crate::pipeline::grammar::definition(&sql).unwrap().into_def(1, 0).unwrap()
    }

    fn messages(payloads: &[&str]) -> Messages {
        let mut m = Messages::default();
        for (i, p) in payloads.iter().enumerate() {
            m.push(1_000_000 * (i as i64 + 1), &format!("m{i}"), "", p.as_bytes());
        }
        m
    }

    /// Every activity on messages with NULLs, missing attributes and type mismatches: the
    /// rows that come out (as JSON, without `time`) and the failures (message, activity).
    #[test]
    fn activities_follow_aws_semantics_with_nulls_missing_attributes_and_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = crate::engine::Engine::open(dir.path(), EngineConfig::default()).unwrap();
        let mut session = Session::new(crate::command::Services::of(&engine).unwrap());
        for stmt in parse(
            "CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT); \
             INSERT INTO machines VALUES ('M-1', 'press', 'hall A'), ('M-2', 'lathe', NULL)",
        )
        .unwrap()
        {
            session.run(&stmt, &[]).unwrap();
        }
        type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [(usize, &'a str)]);
        let cases: &[Case] = &[
            // FILTER: NULL and missing attributes drop the message, as WHERE does.
            (
                "FILTER vibration > 0",
                &[r#"{"vibration": 1.5}"#, r#"{"vibration": 0}"#, r#"{"vibration": null}"#, r#"{"other": 1}"#],
                &[r#"{"vibration": 1.5}"#],
                &[],
            ),
            // A filter on an attribute no message has drops them all; none fails.
            ("FILTER nothing = 'x'", &[r#"{"a": 1}"#], &[], &[]),
            // MATH: numbers are doubles (no integer division); numeric strings are coerced;
            // other strings fail that message only; a missing input gives no value.
            (
                "MATH f = (t * 9 / 5) + 32",
                &[r#"{"t": 21}"#, r#"{"t": "30"}"#, r#"{"t": "hot"}"#, r#"{"x": 1}"#],
                &[r#"{"t": 30, "f": 86}"#, r#"{"t": 21, "f": 69.8}"#, r#"{"x": 1}"#],
                &[(2, "1 math")],
            ),
            // MATH replaces an attribute of the same name; the functions AWS lists work.
            (
                "MATH v = round(sqrt(abs(v)) * power(2, 2), 1) MATH s = sign(v) + mod(7, 4) + trunc(2.7)",
                &[r#"{"v": -16}"#],
                &[r#"{"v": 16, "s": 6}"#],
                &[],
            ),
            // ADD ATTRIBUTES copies nested and indexed paths; a missing path adds nothing.
            (
                "ADD ATTRIBUTES (device.coord[1] AS y, device.name AS n, nope AS z)",
                &[r#"{"device": {"name": "d1", "coord": [4, 5]}}"#],
                &[r#"{"device.name": "d1", "device.coord": "[4, 5]", "y": 5, "n": "d1"}"#],
                &[],
            ),
            // REMOVE ATTRIBUTES removes nested attributes under a name; unknown names are fine.
            ("REMOVE ATTRIBUTES (device, nope)", &[r#"{"a": 1, "device": {"x": 1, "y": 2}}"#], &[r#"{"a": 1}"#], &[]),
            (
                "SELECT ATTRIBUTES (a, device)",
                &[r#"{"a": 1, "b": 2, "device": {"x": 1}}"#],
                &[r#"{"a": 1, "device.x": 1}"#],
                &[],
            ),
            // ENRICH: a match adds the table's columns (NULLs stay absent); no match or no key
            // adds nothing; a number key matches its text.
            (
                "ENRICH FROM machines ON machine_id",
                &[r#"{"machine_id": "M-1"}"#, r#"{"machine_id": "M-2"}"#, r#"{"machine_id": "M-9"}"#, r#"{"v": 1}"#],
                &[
                    r#"{"machine_id": "M-1", "model_type": "press", "location": "hall A"}"#,
                    r#"{"machine_id": "M-2", "model_type": "lathe"}"#,
                    r#"{"machine_id": "M-9"}"#,
                    r#"{"v": 1}"#,
                ],
                &[],
            ),
            (
                "ENRICH FROM machines ON mid = machine_id COLUMNS (location)",
                &[r#"{"mid": "M-1"}"#],
                &[r#"{"mid": "M-1", "location": "hall A"}"#],
                &[],
            ),
            // LATEST: a missing or null attribute takes its key's last value; other keys and
            // messages without the key are left alone.
            (
                "LATEST (temp, status) BY id",
                &[
                    r#"{"id": "a", "temp": 1, "status": "ok"}"#,
                    r#"{"id": "a"}"#,
                    r#"{"id": "b", "temp": null}"#,
                    r#"{"id": "a", "temp": 2, "status": null}"#,
                    r#"{"temp": 9}"#,
                ],
                &[
                    r#"{"id": "a", "temp": 1, "status": "ok"}"#,
                    r#"{"id": "a", "temp": 1, "status": "ok"}"#,
                    r#"{"id": "b"}"#,
                    r#"{"id": "a", "temp": 2, "status": "ok"}"#,
                    r#"{"temp": 9}"#,
                ],
                &[],
            ),
            // DEDUPLICATE (messages arrive a second apart): equal values within the interval
            // are dropped; missing attributes equal each other, numeric strings their numbers.
            (
                "DEDUPLICATE ON (id, ts) WITHIN '10 seconds'",
                &[
                    r#"{"id": "a", "ts": 1}"#,
                    r#"{"id": "a", "ts": 1, "extra": true}"#,
                    r#"{"id": "b", "ts": 1}"#,
                    r#"{"id": "a", "ts": 2}"#,
                    r#"{"ts": 1}"#,
                    r#"{"ts": 1.0}"#,
                    r#"{"id": "a", "ts": "1"}"#,
                ],
                // (One string makes the column text; numeric strings equal their numbers.)
                &[
                    r#"{"id": "a", "ts": "1"}"#,
                    r#"{"id": "b", "ts": "1"}"#,
                    r#"{"id": "a", "ts": "2"}"#,
                    r#"{"ts": "1"}"#,
                ],
                &[],
            ),
            // The window starts at the kept message: with 2 s, one in two of a value repeated
            // every second is kept.
            (
                "DEDUPLICATE ON (id) WITHIN '2 s'",
                &[r#"{"id": "a"}"#, r#"{"id": "a"}"#, r#"{"id": "a"}"#, r#"{"id": "a"}"#],
                &[r#"{"id": "a"}"#, r#"{"id": "a"}"#],
                &[],
            ),
            // RANGE: outside values go; missing and null stay; numeric strings are numbers;
            // other strings fail.
            (
                "REMOVE OUTLIERS ON v RANGE 0 TO 10",
                &[
                    r#"{"v": 5}"#,
                    r#"{"v": -1}"#,
                    r#"{"v": 11}"#,
                    r#"{"v": null}"#,
                    r#"{"x": 1}"#,
                    r#"{"v": "7"}"#,
                    r#"{"v": "hot"}"#,
                ],
                &[r#"{"v": "5"}"#, r#"{}"#, r#"{"x": 1}"#, r#"{"v": "7"}"#],
                &[(6, "1 removeOutliers")],
            ),
            // ZSCORE per key: after 10 values around 10 (sd 0.77), 50 is dropped and 10.5
            // kept; key b has no history, so its 50 stays.
            (
                "REMOVE OUTLIERS ON v BY id ZSCORE 3 OVER 20",
                &[
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 11}"#,
                    r#"{"id": "a", "v": 9}"#,
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 11}"#,
                    r#"{"id": "a", "v": 9}"#,
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 11}"#,
                    r#"{"id": "a", "v": 9}"#,
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 50}"#,
                    r#"{"id": "a", "v": 10.5}"#,
                    r#"{"id": "b", "v": 50}"#,
                ],
                &[
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 11}"#,
                    r#"{"id": "a", "v": 9}"#,
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 11}"#,
                    r#"{"id": "a", "v": 9}"#,
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 11}"#,
                    r#"{"id": "a", "v": 9}"#,
                    r#"{"id": "a", "v": 10}"#,
                    r#"{"id": "a", "v": 10.5}"#,
                    r#"{"id": "b", "v": 50}"#,
                ],
                &[],
            ),
            // Messages that are not JSON objects fail at decoding.
            (
                "FILTER true",
                &[r#"[1, 2]"#, "7", r#"{"ok": true}"#],
                &[r#"{"ok": true}"#],
                &[(0, "decode"), (1, "decode")],
            ),
        ];
        for (activities, input, want_rows, want_failures) in cases {
            let d = def(activities, "");
            let out = run_pipeline(&engine, &d, &mut PipelineState::new(&d.activities), &messages(input));
            let mut got: Vec<String> = (0..out.rows.num_rows())
                .map(|i| {
                    // Without time and the lineage columns.
                    let mut b = out.rows.clone();
                    b.fields.drain(..3);
                    b.columns.drain(..3);
                    decode::row_json(&b, i)
                })
                .collect();
            let mut want: Vec<String> = want_rows.iter().map(|s| s.to_string()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{activities}");
            let failures: Vec<(usize, &str)> = out.failures.iter().map(|f| (f.message, f.activity.as_str())).collect();
            assert_eq!(failures, want_failures.to_vec(), "{activities}");
        }
    }

    /// Rows of `out` as JSON, without time and lineage, sorted.
    fn json_rows(out: &Output) -> Vec<String> {
        let mut b = out.rows.clone();
        b.fields.drain(..3);
        b.columns.drain(..3);
        let mut rows: Vec<String> = (0..b.num_rows()).map(|i| decode::row_json(&b, i)).collect();
        rows.sort();
        rows
    }

    #[test]
    fn activity_plans_are_bound_once_per_schema_and_run_again_on_later_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = crate::engine::Engine::open(dir.path(), EngineConfig::default()).unwrap();
        let mut session = Session::new(crate::command::Services::of(&engine).unwrap());
        let mut sql = |q: &str| {
            for stmt in parse(q).unwrap() {
                session.run(&stmt, &[]).unwrap();
            }
        };
        sql("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT); \
             INSERT INTO machines VALUES ('M-1', 'press'), ('M-2', 'lathe')");
        let d = def("FILTER v > 0 MATH w = v * 2 ENRICH FROM machines ON machine_id", "");
        let mut st = PipelineState::new(&d.activities);
        let run = |st: &mut PipelineState, input: &[&str]| json_rows(&run_pipeline(&engine, &d, st, &messages(input)));
        assert_eq!(
            run(&mut st, &[r#"{"machine_id": "M-1", "v": 1}"#, r#"{"machine_id": "M-2", "v": -1}"#]),
            [r#"{"machine_id": "M-1", "v": 1, "w": 2, "model_type": "press"}"#]
        );
        assert_eq!(st.plans.len(), 3, "one plan per activity");
        // The same schema: the plans run again over the new rows.
        assert_eq!(
            run(&mut st, &[r#"{"machine_id": "M-2", "v": 5}"#, r#"{"machine_id": "M-1", "v": 0}"#]),
            [r#"{"machine_id": "M-2", "v": 5, "w": 10, "model_type": "lathe"}"#]
        );
        assert_eq!(st.plans.len(), 3);
        // ENRICH reads the table as it is when the batch runs.
        sql("UPDATE machines SET model_type = 'mill' WHERE machine_id = 'M-2'");
        assert_eq!(
            run(&mut st, &[r#"{"machine_id": "M-2", "v": 3}"#]),
            [r#"{"machine_id": "M-2", "v": 3, "w": 6, "model_type": "mill"}"#]
        );
        assert_eq!(st.plans.len(), 3);
        // Another schema (an attribute more): bound for it too, the first kept.
        assert_eq!(
            run(&mut st, &[r#"{"machine_id": "M-1", "v": 2, "x": "a"}"#]),
            [r#"{"machine_id": "M-1", "v": 2, "x": "a", "w": 4, "model_type": "press"}"#]
        );
        assert_eq!(st.plans.len(), 6);
        // The table made again with other columns: ENRICH is bound again and adds them.
        sql("DROP TABLE machines; CREATE TABLE machines (machine_id TEXT PRIMARY KEY, hall TEXT); \
             INSERT INTO machines VALUES ('M-1', 'A')");
        assert_eq!(
            run(&mut st, &[r#"{"machine_id": "M-1", "v": 1}"#]),
            [r#"{"machine_id": "M-1", "v": 1, "w": 2, "hall": "A"}"#]
        );
        sql("ALTER TABLE machines ADD COLUMN bay BIGINT; UPDATE machines SET bay = 4");
        assert_eq!(
            run(&mut st, &[r#"{"machine_id": "M-1", "v": 1}"#]),
            [r#"{"machine_id": "M-1", "v": 1, "w": 2, "hall": "A", "bay": 4}"#]
        );
        // A subquery's answer and now() hold only for the batch they were bound for: such an
        // activity is bound for every batch (and sees the table as it is then).
        let d = def(
            "FILTER machine_id IN (SELECT machine_id FROM machines WHERE bay = 4) FILTER v < extract(epoch from now())",
            "",
        );
        let mut st = PipelineState::new(&d.activities);
        let run = |st: &mut PipelineState, input: &[&str]| json_rows(&run_pipeline(&engine, &d, st, &messages(input)));
        let batch = [
            r#"{"machine_id": "M-1", "v": 1}"#,
            r#"{"machine_id": "M-2", "v": 1}"#,
            r#"{"machine_id": "M-1", "v": 1e12}"#,
        ];
        assert_eq!(run(&mut st, &batch), [r#"{"machine_id": "M-1", "v": 1}"#]);
        sql("INSERT INTO machines VALUES ('M-2', 'B', 4)");
        assert_eq!(run(&mut st, &batch).len(), 2);
        assert_eq!(st.plans.len(), 0, "{:?}", st.plans.len());
    }

    #[test]
    fn event_time_comes_from_the_timestamp_attribute_or_the_arrival_time() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = crate::engine::Engine::open(dir.path(), EngineConfig::default()).unwrap();
        let msgs = messages(&[
            r#"{"ts": "2026-11-26T10:00:00Z"}"#,
            r#"{"ts": 1795000000}"#,
            r#"{"ts": 1795000000123}"#,
            r#"{"ts": "soon"}"#,
            r#"{"other": 1, "time": 5}"#,
        ]);
        let out = run_pipeline(&engine, &def("", "WITH (timestamp = 'ts')"), &mut PipelineState::default(), &msgs);
        let Values::Timestamp(t) = &out.rows.columns[0].values else { panic!("time is a timestamp") };
        assert_eq!(t[0], crate::query::scalar::parse_timestamp("2026-11-26 10:00:00+00").unwrap());
        assert_eq!(t[1], 1_795_000_000_000_000);
        assert_eq!(t[2], 1_795_000_000_123_000);
        assert_eq!((t[3], t[4]), (4_000_000, 5_000_000), "unparsable or missing: arrival time");
        assert_eq!(out.failures.iter().map(|f| f.message).collect::<Vec<_>>(), [3, 4]);
        assert!(out.rows.column("payload_time").is_some(), "an attribute named time is kept under another name");
        let d = def("", "WITH (timestamp = 'ts', timestamp_format = 'epoch_ms')");
        let ms = run_pipeline(&engine, &d, &mut PipelineState::default(), &msgs);
        let Values::Timestamp(t) = &ms.rows.columns[0].values else { panic!() };
        assert_eq!(t[1], 1_795_000_000_000);
        // A strftime pattern; a value it does not describe takes the arrival time.
        let msgs = messages(&[r#"{"ts": "27/11/2026 08:30"}"#, r#"{"ts": "2026-11-27 08:30"}"#]);
        let d = def("", "WITH (timestamp = 'ts', timestamp_format = '%d/%m/%Y %H:%M')");
        let out = run_pipeline(&engine, &d, &mut PipelineState::default(), &msgs);
        let Values::Timestamp(t) = &out.rows.columns[0].values else { panic!() };
        assert_eq!(t[0], crate::query::scalar::parse_timestamp("2026-11-27 08:30:00+00").unwrap());
        assert_eq!(t[1], 2_000_000);
        assert_eq!(out.failures.iter().map(|f| f.message).collect::<Vec<_>>(), [1]);
    }
}
