//! The stateful activities: LATEST, DEDUPLICATE and REMOVE OUTLIERS, and their state.
//!
//! State is kept per activity and per key (the `BY` attribute's value). It survives restarts
//! through checkpoints: the runner writes the state with the channel position it belongs to
//! (a position already durable in the datastore), and on start replays the channel messages
//! from that checkpoint to the datastore's position through the activities, storing nothing,
//! so the state is what it would have been without the restart. Every input of these
//! activities (attribute values, arrival times) comes from the channel, so replay is exact.
//!
//! Semantics (README § Pipelines says the same for users):
//! - LATEST: a message lacking an attribute (or holding null) takes the last value its key
//!   had; a message without the key is left as it is.
//! - DEDUPLICATE: a message is dropped when a kept message with equal values of the
//!   attributes (nulls and missing attributes equal each other, numeric strings equal their
//!   numbers) arrived less than the interval
//!   before it. The window starts at the kept message, so a value repeated forever is kept
//!   once per interval.
//! - REMOVE OUTLIERS … RANGE lo TO hi: values outside `lo..=hi` are dropped.
//! - REMOVE OUTLIERS … ZSCORE k OVER n: once a key has min(n, 10) values, a value further than
//!   `k` population standard deviations from the mean of the key's last `n` kept values is
//!   dropped (with a deviation of 0, any other value is). Dropped values do not enter the
//!   window; min(n, 10) outliers in a row are taken as a change of level and start the window
//!   afresh.
//! - In both outlier rules a missing or null value is kept; a value that is not a number (nor
//!   a numeric string) fails the message into `fleetdb.pipeline_errors`.

use std::borrow::Cow;
use std::collections::VecDeque;

use crate::util::hash::FastMap;

use super::decode::{ROW, format_number};
use super::{Activity, OutlierRule};
use crate::batch::{Batch, Bitmap, Column, DataType, Field, StrVec, Values};
use crate::util::bytes::{ByteReader, PutBytes};

/// A remembered attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Num(f64),
    Bool(bool),
    Text(String),
}

/// One key's recent values for ZSCORE.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    values: VecDeque<f64>,
    /// Outliers in a row just before now.
    streak: u32,
    /// Sum and sum of squares of `values`, kept as values come and go (recomputed exactly
    /// every `n` values so rounding cannot drift). Checkpoints keep them as they are.
    sum: f64,
    sumsq: f64,
    since_exact: usize,
}

impl Window {
    fn exact(&mut self) {
        self.sum = self.values.iter().sum();
        self.sumsq = self.values.iter().map(|v| v * v).sum();
        self.since_exact = 0;
    }
}

/// The state of one activity.
#[derive(Clone, Debug, PartialEq)]
pub enum ActivityState {
    None,
    /// Per key, each attribute's last value.
    Latest(FastMap<String, Vec<Option<Scalar>>>),
    /// Encoded attribute values → arrival time of the kept message; `swept` is when expired
    /// entries were last removed.
    Dedup {
        kept: FastMap<Vec<u8>, i64>,
        swept: i64,
    },
    ZScore(FastMap<Option<String>, Window>),
}

/// The states of a pipeline's activities, each with the text of the activity it belongs to,
/// and the plans its activities were bound to (kept in memory only: a copy, a checkpoint or a
/// state read back starts without them).
#[derive(Default)]
pub struct PipelineState {
    pub slots: Vec<(String, ActivityState)>,
    pub(crate) plans: super::plans::ActivityPlans,
}

impl Clone for PipelineState {
    fn clone(&self) -> Self {
        PipelineState { slots: self.slots.clone(), plans: Default::default() }
    }
}

impl PartialEq for PipelineState {
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots
    }
}

impl std::fmt::Debug for PipelineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineState").field("slots", &self.slots).finish_non_exhaustive()
    }
}

fn fresh(a: &Activity) -> ActivityState {
    match a {
        Activity::Latest { .. } => ActivityState::Latest(FastMap::default()),
        Activity::Deduplicate { .. } => ActivityState::Dedup { kept: FastMap::default(), swept: i64::MIN },
        Activity::RemoveOutliers { rule: OutlierRule::ZScore { .. }, .. } => ActivityState::ZScore(FastMap::default()),
        _ => ActivityState::None,
    }
}

impl PipelineState {
    /// Empty state for `activities`.
    pub fn new(activities: &[Activity]) -> PipelineState {
        PipelineState::carry(activities, PipelineState::default())
    }

    /// State for `activities`, keeping `old`'s state of every activity that is unchanged (the
    /// same text), in order: ALTER PIPELINE keeps what it can.
    pub fn carry(activities: &[Activity], mut old: PipelineState) -> PipelineState {
        let slots = activities
            .iter()
            .map(|a| {
                let text = a.to_string();
                let st = match old.slots.iter().position(|(t, _)| *t == text) {
                    Some(i) => old.slots.remove(i).1,
                    None => fresh(a),
                };
                (text, st)
            })
            .collect();
        PipelineState { slots, plans: Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|(_, s)| matches!(s, ActivityState::None))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.slots.len() as u32);
        for (text, st) in &self.slots {
            out.put_bytes32(text.as_bytes());
            match st {
                ActivityState::None => out.put_u8(0),
                ActivityState::Latest(m) => {
                    out.put_u8(1);
                    out.put_u32(m.len() as u32);
                    for (k, vals) in m {
                        out.put_bytes32(k.as_bytes());
                        out.put_u32(vals.len() as u32);
                        for v in vals {
                            match v {
                                None => out.put_u8(0),
                                Some(Scalar::Num(x)) => {
                                    out.put_u8(1);
                                    out.put_f64(*x)
                                }
                                Some(Scalar::Bool(b)) => {
                                    out.put_u8(2);
                                    out.put_u8(*b as u8)
                                }
                                Some(Scalar::Text(s)) => {
                                    out.put_u8(3);
                                    out.put_bytes32(s.as_bytes())
                                }
                            }
                        }
                    }
                }
                ActivityState::Dedup { kept, swept } => {
                    out.put_u8(2);
                    out.put_i64(*swept);
                    out.put_u32(kept.len() as u32);
                    for (k, t) in kept {
                        out.put_bytes32(k);
                        out.put_i64(*t);
                    }
                }
                ActivityState::ZScore(m) => {
                    out.put_u8(3);
                    out.put_u32(m.len() as u32);
                    for (k, w) in m {
                        match k {
                            None => out.put_u8(0),
                            Some(k) => {
                                out.put_u8(1);
                                out.put_bytes32(k.as_bytes())
                            }
                        }
                        out.put_u32(w.streak);
                        out.put_f64(w.sum);
                        out.put_f64(w.sumsq);
                        out.put_u32(w.since_exact as u32);
                        out.put_u32(w.values.len() as u32);
                        for v in &w.values {
                            out.put_f64(*v);
                        }
                    }
                }
            }
        }
    }

    pub fn decode(r: &mut ByteReader<'_>) -> Option<PipelineState> {
        let text = |r: &mut ByteReader<'_>| r.bytes32().and_then(|b| String::from_utf8(b.to_vec()).ok());
        let mut slots = Vec::new();
        for _ in 0..r.u32()? {
            let t = text(r)?;
            let st = match r.u8()? {
                0 => ActivityState::None,
                1 => {
                    let mut m = FastMap::default();
                    for _ in 0..r.u32()? {
                        let k = text(r)?;
                        let mut vals = Vec::new();
                        for _ in 0..r.u32()? {
                            vals.push(match r.u8()? {
                                0 => None,
                                1 => Some(Scalar::Num(r.f64()?)),
                                2 => Some(Scalar::Bool(r.u8()? != 0)),
                                3 => Some(Scalar::Text(text(r)?)),
                                _ => return None,
                            });
                        }
                        m.insert(k, vals);
                    }
                    ActivityState::Latest(m)
                }
                2 => {
                    let swept = r.i64()?;
                    let mut kept = FastMap::default();
                    for _ in 0..r.u32()? {
                        let k = r.bytes32()?.to_vec();
                        kept.insert(k, r.i64()?);
                    }
                    ActivityState::Dedup { kept, swept }
                }
                3 => {
                    let mut m = FastMap::default();
                    for _ in 0..r.u32()? {
                        let k = match r.u8()? {
                            0 => None,
                            1 => Some(text(r)?),
                            _ => return None,
                        };
                        let (streak, sum, sumsq, since_exact) = (r.u32()?, r.f64()?, r.f64()?, r.u32()? as usize);
                        let mut values = VecDeque::new();
                        for _ in 0..r.u32()? {
                            values.push_back(r.f64()?);
                        }
                        // Kept as they were, so a restored window decides exactly as the live one.
                        m.insert(k, Window { values, streak, sum, sumsq, since_exact });
                    }
                    ActivityState::ZScore(m)
                }
                _ => return None,
            };
            slots.push((t, st));
        }
        Some(PipelineState { slots, plans: Default::default() })
    }
}

/// The index of the column named `name` (exactly, else ignoring case).
fn find(b: &Batch, name: &str) -> Option<usize> {
    b.column_index(name).or_else(|| b.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name)))
}

/// A cell as a key: its text (numbers as JSON prints them); `None` for null.
fn key_of(c: &Column, i: usize) -> Option<String> {
    if !c.is_valid(i) {
        return None;
    }
    Some(match &c.values {
        Values::Text(v) => v.get(i).to_string(),
        Values::Float64(v) => format_number(v[i]),
        Values::Int64(v) => v[i].to_string(),
        Values::Bool(v) => v[i].to_string(),
        Values::Timestamp(v) => crate::util::time::format_timestamp(v[i]),
    })
}

/// [`key_of`] without copying text keys.
fn key_cow(c: &Column, i: usize) -> Option<Cow<'_, str>> {
    match &c.values {
        Values::Text(v) if c.is_valid(i) => Some(Cow::Borrowed(v.get(i))),
        _ => key_of(c, i).map(Cow::Owned),
    }
}

fn scalar_of(c: &Column, i: usize) -> Option<Scalar> {
    if !c.is_valid(i) {
        return None;
    }
    Some(match &c.values {
        Values::Float64(v) => Scalar::Num(v[i]),
        Values::Int64(v) => Scalar::Num(v[i] as f64),
        Values::Bool(v) => Scalar::Bool(v[i]),
        Values::Text(_) | Values::Timestamp(_) => Scalar::Text(key_of(c, i)?),
    })
}

/// A column of `n` rows from per-row values: double precision, boolean or text, whichever
/// every value is (text when they differ).
fn column_of(values: &[Option<Scalar>]) -> (DataType, Column) {
    let all = |f: &dyn Fn(&Scalar) -> bool| values.iter().flatten().all(f);
    let validity = || {
        let mut b = Bitmap::new_unset(values.len());
        for (i, v) in values.iter().enumerate() {
            b.set(i, v.is_some());
        }
        Some(b)
    };
    if all(&|s| matches!(s, Scalar::Num(_))) {
        let v = values.iter().map(|s| if let Some(Scalar::Num(x)) = s { *x } else { 0.0 }).collect();
        (DataType::Float64, Column::with_validity(Values::Float64(v), validity()))
    } else if all(&|s| matches!(s, Scalar::Bool(_))) {
        let v = values.iter().map(|s| matches!(s, Some(Scalar::Bool(true)))).collect();
        (DataType::Bool, Column::with_validity(Values::Bool(v), validity()))
    } else {
        let texts: Vec<String> = values
            .iter()
            .map(|s| match s {
                Some(Scalar::Num(x)) => format_number(*x),
                Some(Scalar::Bool(b)) => b.to_string(),
                Some(Scalar::Text(t)) => t.clone(),
                None => String::new(),
            })
            .collect();
        let v: StrVec = texts.iter().map(String::as_str).collect();
        (DataType::Text, Column::with_validity(Values::Text(v), validity()))
    }
}

/// LATEST (attrs) BY key over `b`, in row order.
pub fn latest(attrs: &[String], key: &str, st: &mut FastMap<String, Vec<Option<Scalar>>>, mut b: Batch) -> Batch {
    let Some(kc) = find(&b, key) else { return b };
    let n = b.num_rows();
    let keys: Vec<Option<Cow<'_, str>>> = (0..n).map(|i| key_cow(&b.columns[kc], i)).collect();
    // Each attribute's fills: (row, the key's last value), found in row order.
    let mut fills: Vec<Vec<(usize, Scalar)>> = vec![Vec::new(); attrs.len()];
    for (a, attr) in attrs.iter().enumerate() {
        let col = find(&b, attr);
        for (i, k) in keys.iter().enumerate() {
            let Some(k) = k.as_deref() else { continue };
            if !st.contains_key(k) {
                st.insert(k.to_string(), vec![None; attrs.len()]);
            }
            let slot = st.get_mut(k).expect("inserted above");
            if slot.len() < attrs.len() {
                slot.resize(attrs.len(), None);
            }
            match col.and_then(|c| scalar_of(&b.columns[c], i)) {
                Some(v) => slot[a] = Some(v),
                None => {
                    if let Some(v) = &slot[a] {
                        fills[a].push((i, v.clone()));
                    }
                }
            }
        }
    }
    drop(keys);
    for (attr, fills) in attrs.iter().zip(fills) {
        if fills.is_empty() {
            continue;
        }
        let col = find(&b, attr);
        let mut out: Vec<Option<Scalar>> = (0..n).map(|i| col.and_then(|c| scalar_of(&b.columns[c], i))).collect();
        for (i, v) in fills {
            out[i] = Some(v);
        }
        let (t, c) = column_of(&out);
        match col {
            Some(i) => {
                b.fields[i].data_type = t;
                b.columns[i] = c;
            }
            None => {
                b.fields.push(Field::new(attr, t));
                b.columns.push(c);
            }
        }
    }
    b
}

/// Appends `c`'s value at row `i` to a DEDUPLICATE key: numbers of any type compare as
/// doubles, null and missing are equal.
fn push_key(out: &mut Vec<u8>, c: Option<&Column>, i: usize) {
    let Some(c) = c.filter(|c| c.is_valid(i)) else {
        out.push(0);
        return;
    };
    let num = |out: &mut Vec<u8>, x: f64| {
        out.push(1);
        out.put_f64(if x == 0.0 { 0.0 } else { x });
    };
    match &c.values {
        Values::Float64(v) => num(out, v[i]),
        Values::Int64(v) => num(out, v[i] as f64),
        Values::Bool(v) => out.extend_from_slice(&[2, v[i] as u8]),
        Values::Text(v) => match v.get(i).trim().parse::<f64>() {
            // A numeric string equals its number, whatever type its column has in this batch.
            Ok(x) if x.is_finite() => num(out, x),
            _ => {
                out.push(3);
                out.put_bytes32(v.get(i).as_bytes());
            }
        },
        Values::Timestamp(v) => {
            out.push(4);
            out.put_i64(v[i]);
        }
    }
}

/// The message index of each row (the [`ROW`] column), or the row itself.
pub fn rows_of(b: &Batch) -> Vec<usize> {
    match b.column(ROW).map(|c| &c.values) {
        Some(Values::Int64(v)) => v.iter().map(|&r| r as usize).collect(),
        _ => (0..b.num_rows()).collect(),
    }
}

/// DEDUPLICATE ON (attrs) WITHIN `within` over `b`; `arrival[m]` is message m's arrival time.
pub fn deduplicate(
    attrs: &[String],
    within: i64,
    kept: &mut FastMap<Vec<u8>, i64>,
    swept: &mut i64,
    b: Batch,
    arrival: &[i64],
) -> Batch {
    let cols: Vec<Option<&Column>> = attrs.iter().map(|a| find(&b, a).map(|i| &b.columns[i])).collect();
    let rows = rows_of(&b);
    let mut keep: Vec<u32> = Vec::with_capacity(rows.len());
    let mut key = Vec::new();
    let mut latest = i64::MIN;
    for (i, &m) in rows.iter().enumerate() {
        let t = arrival.get(m).copied().unwrap_or(0);
        latest = latest.max(t);
        key.clear();
        for c in &cols {
            push_key(&mut key, *c, i);
        }
        match kept.get_mut(&key) {
            Some(at) if t.saturating_sub(*at) < within => {}
            Some(at) => {
                *at = t;
                keep.push(i as u32);
            }
            None => {
                kept.insert(key.clone(), t);
                keep.push(i as u32);
            }
        }
    }
    // Forget what can no longer match, now and then (every quarter window).
    if latest != i64::MIN && latest.saturating_sub(*swept) >= within / 4 {
        kept.retain(|_, at| latest.saturating_sub(*at) < within);
        *swept = latest;
    }
    if keep.len() == b.num_rows() { b } else { b.take(&keep) }
}

/// A number from a cell: numbers, and numeric strings as AWS coerces them. `Err` for any
/// other value.
fn number_of(c: &Column, i: usize) -> Result<Option<f64>, String> {
    if !c.is_valid(i) {
        return Ok(None);
    }
    match &c.values {
        Values::Float64(v) => Ok(Some(v[i])),
        Values::Int64(v) => Ok(Some(v[i] as f64)),
        Values::Text(v) => {
            v.get(i).trim().parse::<f64>().map(Some).map_err(|_| format!("\"{}\" is not a number", v.get(i)))
        }
        Values::Bool(v) => Err(format!("{} is not a number", v[i])),
        Values::Timestamp(_) => Err("a timestamp is not a number".into()),
    }
}

/// REMOVE OUTLIERS over `b`: the rows kept, and the rows whose value is not a number (with
/// why), which the caller records as failures.
pub fn remove_outliers(
    attr: &str,
    key: Option<&str>,
    rule: OutlierRule,
    mut windows: Option<&mut FastMap<Option<String>, Window>>,
    b: Batch,
) -> (Batch, Vec<(usize, String)>) {
    let Some(vc) = find(&b, attr) else { return (b, Vec::new()) };
    let kc = key.and_then(|k| find(&b, k));
    let n_rows = b.num_rows();
    // Each row's window: the batch's distinct keys are looked up once, their windows taken
    // out of the state for the batch and put back after.
    let mut taken: Vec<(Option<String>, Window)> = Vec::new();
    let mut row_window: Vec<u32> = Vec::new();
    if let (OutlierRule::ZScore { .. }, Some(ws)) = (rule, windows.as_deref_mut()) {
        let mut slot: FastMap<Option<Cow<'_, str>>, u32> = FastMap::default();
        row_window.reserve(n_rows);
        for i in 0..n_rows {
            let k = kc.and_then(|c| key_cow(&b.columns[c], i));
            let next = taken.len() as u32;
            let w = *slot.entry(k.clone()).or_insert_with(|| {
                let owned = k.map(|c| c.into_owned());
                let w = ws.remove(&owned).unwrap_or_default();
                taken.push((owned, w));
                next
            });
            row_window.push(w);
        }
    }
    let mut keep: Vec<u32> = Vec::with_capacity(n_rows);
    let mut failed = Vec::new();
    for i in 0..n_rows {
        let x = match number_of(&b.columns[vc], i) {
            Ok(Some(x)) => x,
            Ok(None) => {
                keep.push(i as u32);
                continue;
            }
            Err(why) => {
                failed.push((i, format!("attribute \"{attr}\": {why}")));
                continue;
            }
        };
        let ok = match rule {
            OutlierRule::Range { lo, hi } => (lo..=hi).contains(&x),
            OutlierRule::ZScore { k, n } => match row_window.get(i) {
                Some(&w) => zscore_keeps(&mut taken[w as usize].1, x, k, n),
                None => true,
            },
        };
        if ok {
            keep.push(i as u32);
        }
    }
    if let Some(ws) = windows {
        for (k, w) in taken {
            ws.insert(k, w);
        }
    }
    let out = if keep.len() == n_rows { b } else { b.take(&keep) };
    (out, failed)
}

/// Judges `x` against the window and updates it. Returns whether `x` is kept.
fn zscore_keeps(w: &mut Window, x: f64, k: f64, n: usize) -> bool {
    let min = n.min(10);
    let ok = if w.values.len() < min || !x.is_finite() {
        x.is_finite()
    } else {
        let len = w.values.len() as f64;
        let mean = w.sum / len;
        let sd = (w.sumsq / len - mean * mean).max(0.0).sqrt();
        // Deviations below rounding noise count as none.
        let noise = 1e-9 * mean.abs().max(1.0);
        if sd > noise { (x - mean).abs() <= k * sd } else { (x - mean).abs() <= noise }
    };
    if !ok {
        w.streak += 1;
        if w.streak as usize >= min {
            // A change of level, not a run of outliers: start over from here.
            w.values.clear();
            w.streak = 0;
            w.exact();
        }
        return false;
    }
    w.streak = 0;
    w.values.push_back(x);
    w.sum += x;
    w.sumsq += x * x;
    while w.values.len() > n {
        let old = w.values.pop_front().unwrap_or(0.0);
        w.sum -= old;
        w.sumsq -= old * old;
    }
    w.since_exact += 1;
    if w.since_exact >= n {
        w.exact();
    }
    true
}
