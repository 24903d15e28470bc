//! Channel messages to a column batch: each payload's JSON is parsed once, its attributes
//! become columns (nested objects flatten to dotted names, arrays stay JSON text), and a
//! column takes the type its values share: boolean, double precision (every JSON number, as
//! AWS treats them), else text.

use std::collections::HashMap;

use crate::batch::{Batch, Bitmap, Column, DataType, Field, StrVec, Values};
use crate::channel::Messages;
use crate::util::json::{self, Json, Node};

/// Name of the column holding each row's message index in the decoded [`Messages`]: rows keep
/// it through every activity, so errors and arrival times map back to their message.
pub const ROW: &str = "__row";
/// Most attributes one decoded batch may hold (PostgreSQL's limit on a table's columns): a
/// message with more, or one that would take the batch past it, is refused with the reason,
/// so that messages with many distinct keys cannot make a batch of rows × keys values.
pub const MAX_ATTRIBUTES: usize = 1_600;
/// Prefix of the columns holding attributes extracted by path (`__path:a.b[0]`) for ADD
/// ATTRIBUTES; they are not stored.
pub const PATH_PREFIX: &str = "__path:";

/// One column being built: its values so far, promoted to text on a type conflict.
enum Acc {
    Bool(Vec<bool>),
    Num(Vec<f64>),
    /// Texts back to back, and where each ends.
    Text(String, Vec<usize>),
}

struct Builder {
    name: String,
    acc: Acc,
    /// Row of each value so far (rows only increase; a repeated row overwrites: the last
    /// duplicate key wins, as `->` does).
    rows: Vec<u32>,
}

enum Leaf<'a> {
    Bool(bool),
    Num(f64, &'a str),
    Text(&'a str),
}

impl Builder {
    fn new(name: &str, first: &Leaf<'_>) -> Builder {
        let acc = match first {
            Leaf::Bool(_) => Acc::Bool(Vec::new()),
            Leaf::Num(..) => Acc::Num(Vec::new()),
            Leaf::Text(_) => Acc::Text(String::new(), Vec::new()),
        };
        Builder { name: name.to_string(), acc, rows: Vec::new() }
    }

    fn push(&mut self, row: u32, v: Leaf<'_>) {
        if self.rows.last() == Some(&row) {
            self.rows.pop();
            match &mut self.acc {
                Acc::Bool(x) => drop(x.pop()),
                Acc::Num(x) => drop(x.pop()),
                Acc::Text(data, ends) => {
                    ends.pop();
                    data.truncate(ends.last().copied().unwrap_or(0));
                }
            }
        }
        self.rows.push(row);
        match (&mut self.acc, v) {
            (Acc::Bool(x), Leaf::Bool(b)) => x.push(b),
            (Acc::Num(x), Leaf::Num(n, _)) => x.push(n),
            (Acc::Text(data, ends), v) => {
                push_leaf_text(data, &v);
                ends.push(data.len());
            }
            (_, v) => {
                self.promote();
                let Acc::Text(data, ends) = &mut self.acc else { unreachable!("promoted to text") };
                push_leaf_text(data, &v);
                ends.push(data.len());
            }
        }
    }

    /// Turns the values so far (all but the one just pushed to `rows`) into text.
    fn promote(&mut self) {
        let mut data = String::new();
        let mut ends = Vec::new();
        match &self.acc {
            Acc::Bool(x) => x.iter().for_each(|b| {
                data.push_str(if *b { "true" } else { "false" });
                ends.push(data.len());
            }),
            Acc::Num(x) => x.iter().for_each(|n| {
                data.push_str(&format_number(*n));
                ends.push(data.len());
            }),
            Acc::Text(..) => return,
        }
        self.acc = Acc::Text(data, ends);
    }

    fn finish(self, n: usize) -> Column {
        let all = self.rows.len() == n;
        let mut valid = Bitmap::new_unset(if all { 0 } else { n });
        if !all {
            for &r in &self.rows {
                valid.set(r as usize, true);
            }
        }
        let values = match self.acc {
            Acc::Bool(x) if all => Values::Bool(x),
            Acc::Num(x) if all => Values::Float64(x),
            Acc::Bool(x) => {
                let mut v = vec![false; n];
                for (r, b) in self.rows.iter().zip(x) {
                    v[*r as usize] = b;
                }
                Values::Bool(v)
            }
            Acc::Num(x) => {
                let mut v = vec![0.0; n];
                for (r, f) in self.rows.iter().zip(x) {
                    v[*r as usize] = f;
                }
                Values::Float64(v)
            }
            Acc::Text(data, ends) => {
                let mut out = StrVec::with_capacity(n, data.len());
                let mut k = 0;
                let mut start = 0;
                for row in 0..n as u32 {
                    if self.rows.get(k) == Some(&row) {
                        out.push(&data[start..ends[k]]);
                        start = ends[k];
                        k += 1;
                    } else {
                        out.push("");
                    }
                }
                Values::Text(out)
            }
        };
        Column::with_validity(values, (!all).then_some(valid))
    }
}

fn push_leaf_text(data: &mut String, v: &Leaf<'_>) {
    match v {
        Leaf::Bool(b) => data.push_str(if *b { "true" } else { "false" }),
        Leaf::Num(_, text) => data.push_str(text),
        Leaf::Text(s) => data.push_str(s),
    }
}

/// A double as JSON would write it (integers without a fraction).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// Decoded messages: the batch (attribute columns and [`ROW`]) and the messages that could
/// not be decoded, with why.
pub struct Decoded {
    pub batch: Batch,
    pub errors: Vec<(usize, String)>,
}

/// Decodes every message of `msgs`. `paths` are extra attributes to extract by path
/// (`a.b[0].c`), each into a column named by [`PATH_PREFIX`] and the path.
pub fn decode(msgs: &Messages, paths: &[String]) -> Decoded {
    let mut cols = Columns::default();
    let mut rows: Vec<i64> = Vec::with_capacity(msgs.len());
    let mut errors = Vec::new();
    let parsed_paths: Vec<Vec<Step>> = paths.iter().map(|p| parse_path(p)).collect();
    let mut name = String::new();
    for i in 0..msgs.len() {
        let node = match std::str::from_utf8(msgs.payloads.get(i)).ok().map(json::parse) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                errors.push((i, format!("payload is not valid JSON: {e}")));
                continue;
            }
            None => {
                errors.push((i, "payload is not UTF-8".into()));
                continue;
            }
        };
        if !matches!(node.value, Json::Object(_)) {
            errors.push((i, "payload is not a JSON object".into()));
            continue;
        }
        // Near the bound (a message can hold at most a leaf per 4 bytes), count first what
        // this message would add.
        if cols.builders.len() + msgs.payloads.get(i).len() / 4 > MAX_ATTRIBUTES
            && let Some(why) = cols.too_many(&node, &mut name)
        {
            errors.push((i, why));
            continue;
        }
        let row = rows.len() as u32;
        rows.push(i as i64);
        cols.leaf = 0;
        name.clear();
        // Names starting with `__` are fleetdb's own (ingest refuses such attributes).
        flatten(&mut name, &node, &mut |n, leaf| {
            if !n.starts_with("__") {
                cols.add(row, n, leaf)
            }
        });
        for (path, steps) in paths.iter().zip(&parsed_paths) {
            if let Some(n) = walk(&node, steps)
                && let Some(leaf) = leaf_of(n)
            {
                cols.add(row, &format!("{PATH_PREFIX}{path}"), leaf);
            }
        }
    }
    let n = rows.len();
    let mut fields = Vec::with_capacity(cols.builders.len() + 1);
    let mut columns = Vec::with_capacity(cols.builders.len() + 1);
    for b in cols.builders {
        let name = b.name.clone();
        let col = b.finish(n);
        fields.push(Field::new(&name, col.data_type()));
        columns.push(col);
    }
    fields.push(Field::new(ROW, DataType::Int64));
    columns.push(Column::new(Values::Int64(rows)));
    let batch = Batch::try_new(fields, columns).expect("decoded columns are distinct and of equal length");
    Decoded { batch, errors }
}

/// The columns being built, found by name. Messages of one kind list their attributes in the
/// same order, so the builder of a message's k-th attribute is first looked for where the
/// previous message's k-th attribute went.
#[derive(Default)]
struct Columns {
    builders: Vec<Builder>,
    by_name: HashMap<String, usize>,
    guess: Vec<usize>,
    /// Attributes of the current message so far.
    leaf: usize,
}

impl Columns {
    /// Why message `node` cannot be added (it has more than [`MAX_ATTRIBUTES`] attributes, or
    /// would take the batch past them), if so.
    fn too_many(&self, node: &Node<'_>, name: &mut String) -> Option<String> {
        let (mut leaves, mut new) = (0usize, std::collections::HashSet::new());
        name.clear();
        flatten(name, node, &mut |n, _| {
            if !n.starts_with("__") {
                leaves += 1;
                if !self.by_name.contains_key(n) {
                    new.insert(n.to_string());
                }
            }
        });
        if leaves > MAX_ATTRIBUTES {
            return Some(format!("payload has {leaves} attributes; at most {MAX_ATTRIBUTES} are stored"));
        }
        (self.builders.len() + new.len() > MAX_ATTRIBUTES).then(|| {
            format!(
                "payload would add {} attributes to a batch already holding {}: at most {MAX_ATTRIBUTES} columns",
                new.len(),
                self.builders.len()
            )
        })
    }

    fn add(&mut self, row: u32, name: &str, leaf: Leaf<'_>) {
        let k = self.leaf;
        self.leaf += 1;
        let hit = self.guess.get(k).copied().filter(|&g| self.builders[g].name == name);
        let b = match hit {
            Some(g) => g,
            None => {
                let b = match self.by_name.get(name) {
                    Some(&b) => b,
                    None => {
                        self.builders.push(Builder::new(name, &leaf));
                        self.by_name.insert(name.to_string(), self.builders.len() - 1);
                        self.builders.len() - 1
                    }
                };
                if k < self.guess.len() {
                    self.guess[k] = b;
                } else {
                    self.guess.push(b);
                }
                b
            }
        };
        self.builders[b].push(row, leaf);
    }
}

fn leaf_of<'a>(n: &'a Node<'a>) -> Option<Leaf<'a>> {
    match &n.value {
        Json::Null => None,
        Json::Bool(b) => Some(Leaf::Bool(*b)),
        Json::Number(t) => Some(Leaf::Num(t.parse().unwrap_or(f64::NAN), t)),
        Json::String(s) => Some(Leaf::Text(s)),
        Json::Array(_) | Json::Object(_) => Some(Leaf::Text(n.text)),
    }
}

/// Calls `add` with each leaf's dotted name; `path` is the name so far.
fn flatten<'a>(path: &mut String, n: &'a Node<'a>, add: &mut impl FnMut(&str, Leaf<'a>)) {
    match &n.value {
        Json::Object(members) => {
            for (k, v) in members {
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                flatten(path, v, add);
                path.truncate(len);
            }
        }
        _ => {
            if let Some(leaf) = leaf_of(n) {
                add(path, leaf);
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[0].c` → keys and indexes.
fn parse_path(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Step::Key(key.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            out.push(r[..end].trim().parse().map_or(Step::Key(r[..end].to_string()), Step::Index));
            rest = r.get(end + 1..).unwrap_or("");
        }
    }
    out
}

fn walk<'a>(n: &'a Node<'a>, steps: &[Step]) -> Option<&'a Node<'a>> {
    let mut cur = n;
    for s in steps {
        cur = match (&cur.value, s) {
            (Json::Object(m), Step::Key(k)) => m.iter().rev().find(|(name, _)| name == k).map(|(_, v)| v)?,
            (Json::Array(a), Step::Index(i)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Row `i` of `b` as a JSON object of its present attributes.
pub fn row_json(b: &Batch, i: usize) -> String {
    let mut out = String::from("{");
    for (f, c) in b.fields.iter().zip(&b.columns) {
        if f.name.starts_with("__") || !c.is_valid(i) {
            continue;
        }
        if out.len() > 1 {
            out.push_str(", ");
        }
        crate::util::json::write_string(&mut out, &f.name);
        out.push_str(": ");
        match &c.values {
            Values::Bool(v) => out.push_str(if v[i] { "true" } else { "false" }),
            Values::Int64(v) => out.push_str(&v[i].to_string()),
            Values::Float64(v) if v[i].is_finite() => out.push_str(&format_number(v[i])),
            Values::Float64(_) => out.push_str("null"),
            Values::Text(v) => crate::util::json::write_string(&mut out, v.get(i)),
            Values::Timestamp(v) => {
                crate::util::json::write_string(&mut out, &crate::util::time::format_timestamp(v[i]))
            }
        }
    }
    out.push('}');
    out
}

/// Batches with possibly different columns as one: missing columns are NULL, and a column
/// whose types differ becomes double precision (numbers) or text.
pub fn union(batches: &[Batch]) -> Batch {
    let mut fields: Vec<Field> = Vec::new();
    for b in batches {
        for f in &b.fields {
            match fields.iter_mut().find(|g| g.name == f.name) {
                None => fields.push(f.clone()),
                Some(g) if g.data_type == f.data_type => {}
                Some(g) => {
                    let numeric = |t: DataType| matches!(t, DataType::Int64 | DataType::Float64);
                    g.data_type =
                        if numeric(g.data_type) && numeric(f.data_type) { DataType::Float64 } else { DataType::Text };
                }
            }
        }
    }
    let columns = fields
        .iter()
        .map(|f| {
            let mut out: Option<Column> = None;
            for b in batches {
                let part = match b.column(&f.name) {
                    Some(c) => convert(c, f.data_type),
                    None => Column::nulls(f.data_type, b.num_rows()),
                };
                match &mut out {
                    None => out = Some(part),
                    Some(o) => o.extend(&part),
                }
            }
            out.unwrap_or_else(|| Column::nulls(f.data_type, 0))
        })
        .collect();
    Batch { fields, columns }
}

/// `c` as type `to`: ints widen to doubles; anything to text as PostgreSQL prints it.
fn convert(c: &Column, to: DataType) -> Column {
    if c.data_type() == to {
        return c.clone();
    }
    match (&c.values, to) {
        (Values::Int64(_), DataType::Float64) => c.clone().widen_to_float(),
        (v, DataType::Text) => {
            let text: StrVec = (0..c.len())
                .map(|i| match v {
                    Values::Bool(x) => x[i].to_string(),
                    Values::Int64(x) => x[i].to_string(),
                    Values::Float64(x) => format_number(x[i]),
                    Values::Text(x) => x.get(i).to_string(),
                    Values::Timestamp(x) => crate::util::time::format_timestamp(x[i]),
                })
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect();
            Column::with_validity(Values::Text(text), c.validity.clone())
        }
        _ => Column::nulls(to, c.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(payloads: &[&str]) -> Messages {
        let mut m = Messages::default();
        for (i, p) in payloads.iter().enumerate() {
            m.push(1, &i.to_string(), "", p.as_bytes());
        }
        m
    }

    #[test]
    fn attributes_become_typed_columns_and_nested_objects_flatten() {
        let m = messages(&[
            r#"{"machine_id": "M-1", "temperature": 21.5, "ok": true, "engine": {"rpm": 900}, "tags": [1, 2]}"#,
            r#"{"machine_id": "M-2", "temperature": "hot", "device": {"coord": [4.5, 6]}}"#,
            r#"not json"#,
            r#"[1, 2]"#,
            r#"{"machine_id": "M-3", "machine_id": "M-4"}"#,
        ]);
        let d = decode(&m, &["device.coord[1]".to_string()]);
        assert_eq!(d.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3]);
        let b = &d.batch;
        assert_eq!(b.num_rows(), 3);
        let names: Vec<&str> = b.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["machine_id", "temperature", "ok", "engine.rpm", "tags", "device.coord", "__path:device.coord[1]", ROW]
        );
        let text = |c: &str, i: usize| match &b.column(c).unwrap().values {
            Values::Text(v) => v.get(i).to_string(),
            other => format!("{other:?}"),
        };
        // A number and a string in one column: text, the number as written.
        assert_eq!((text("temperature", 0), text("temperature", 1)), ("21.5".into(), "hot".into()));
        assert_eq!(text("machine_id", 2), "M-4", "the last duplicate key wins");
        assert_eq!(text("tags", 0), "[1, 2]");
        assert_eq!(b.column("engine.rpm").unwrap().data_type(), DataType::Float64);
        assert!(!b.column("engine.rpm").unwrap().is_valid(1));
        assert_eq!(b.column("__path:device.coord[1]").unwrap().values, Values::Float64(vec![0.0, 6.0, 0.0]));
        assert_eq!(b.column(ROW).unwrap().values, Values::Int64(vec![0, 1, 4]));
        // fleetdb's own names are not attributes (found by fuzzing: they collided).
        let d = decode(&messages(&[r#"{"__row": 7, "__path:x": 1, "a": {"__b": 2}}"#]), &["x".to_string()]);
        let names: Vec<&str> = d.batch.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.__b", ROW]);
    }
}
