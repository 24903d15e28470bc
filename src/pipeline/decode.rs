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
/// Prefix of the columns holding attributes extracted by path (`__path:a.b[0]`) for ADD
/// ATTRIBUTES; they are not stored.
pub const PATH_PREFIX: &str = "__path:";

/// One column being built: its values so far, promoted to text on a type conflict.
enum Acc {
    Bool(Vec<bool>),
    Num(Vec<f64>),
    Text(Vec<String>),
}

struct Builder {
    acc: Acc,
    /// Row of each value so far (rows only increase; a repeated row overwrites: the last
    /// duplicate key wins, as `->` does).
    rows: Vec<u32>,
}

enum Leaf<'a> {
    Bool(bool),
    Num(f64, &'a str),
    Text(String),
}

impl Builder {
    fn push(&mut self, row: u32, v: Leaf<'_>) {
        if self.rows.last() == Some(&row) {
            self.rows.pop();
            match &mut self.acc {
                Acc::Bool(x) => drop(x.pop()),
                Acc::Num(x) => drop(x.pop()),
                Acc::Text(x) => drop(x.pop()),
            }
        }
        self.rows.push(row);
        match (&mut self.acc, v) {
            (Acc::Bool(x), Leaf::Bool(b)) => x.push(b),
            (Acc::Num(x), Leaf::Num(n, _)) => x.push(n),
            (Acc::Text(x), v) => x.push(leaf_text(v)),
            (_, v) => {
                self.promote();
                let Acc::Text(x) = &mut self.acc else { unreachable!("promoted to text") };
                x.push(leaf_text(v));
            }
        }
    }

    fn promote(&mut self) {
        let texts = match &self.acc {
            Acc::Bool(x) => x.iter().map(|b| b.to_string()).collect(),
            Acc::Num(x) => x.iter().map(|n| format_number(*n)).collect(),
            Acc::Text(_) => return,
        };
        self.acc = Acc::Text(texts);
    }

    fn finish(self, n: usize) -> Column {
        let mut valid = Bitmap::new_unset(n);
        for &r in &self.rows {
            valid.set(r as usize, true);
        }
        let values = match self.acc {
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
            Acc::Text(x) => {
                let mut by_row: Vec<Option<String>> = vec![None; n];
                for (r, s) in self.rows.iter().zip(x) {
                    by_row[*r as usize] = Some(s);
                }
                Values::Text(by_row.iter().map(|s| s.as_deref().unwrap_or("")).collect::<StrVec>())
            }
        };
        let all = self.rows.len() == n;
        Column::with_validity(values, (!all).then_some(valid))
    }
}

fn leaf_text(v: Leaf<'_>) -> String {
    match v {
        Leaf::Bool(b) => b.to_string(),
        Leaf::Num(_, text) => text.to_string(),
        Leaf::Text(s) => s,
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
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut builders: Vec<(String, Builder)> = Vec::new();
    let mut rows: Vec<i64> = Vec::with_capacity(msgs.len());
    let mut errors = Vec::new();
    let parsed_paths: Vec<Vec<Step>> = paths.iter().map(|p| parse_path(p)).collect();
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
        let row = rows.len() as u32;
        rows.push(i as i64);
        let mut add = |name: &str, leaf: Leaf<'_>| {
            let k = match names.get(name) {
                Some(&k) => k,
                None => {
                    let acc = match leaf {
                        Leaf::Bool(_) => Acc::Bool(Vec::new()),
                        Leaf::Num(..) => Acc::Num(Vec::new()),
                        Leaf::Text(_) => Acc::Text(Vec::new()),
                    };
                    builders.push((name.to_string(), Builder { acc, rows: Vec::new() }));
                    names.insert(name.to_string(), builders.len() - 1);
                    builders.len() - 1
                }
            };
            builders[k].1.push(row, leaf);
        };
        flatten("", &node, &mut add);
        for (path, steps) in paths.iter().zip(&parsed_paths) {
            if let Some(n) = walk(&node, steps)
                && let Some(leaf) = leaf_of(n)
            {
                add(&format!("{PATH_PREFIX}{path}"), leaf);
            }
        }
    }
    let n = rows.len();
    let mut fields = Vec::with_capacity(builders.len() + 1);
    let mut columns = Vec::with_capacity(builders.len() + 1);
    for (name, b) in builders {
        let col = b.finish(n);
        fields.push(Field::new(&name, col.data_type()));
        columns.push(col);
    }
    fields.push(Field::new(ROW, DataType::Int64));
    columns.push(Column::new(Values::Int64(rows)));
    let batch = Batch::try_new(fields, columns).expect("decoded columns are distinct and of equal length");
    Decoded { batch, errors }
}

fn leaf_of<'a>(n: &'a Node<'a>) -> Option<Leaf<'a>> {
    match &n.value {
        Json::Null => None,
        Json::Bool(b) => Some(Leaf::Bool(*b)),
        Json::Number(t) => Some(Leaf::Num(t.parse().unwrap_or(f64::NAN), t)),
        Json::String(s) => Some(Leaf::Text(s.to_string())),
        Json::Array(_) | Json::Object(_) => Some(Leaf::Text(n.text.to_string())),
    }
}

fn flatten<'a>(prefix: &str, n: &'a Node<'a>, add: &mut impl FnMut(&str, Leaf<'a>)) {
    match &n.value {
        Json::Object(members) => {
            for (k, v) in members {
                let name = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                flatten(&name, v, add);
            }
        }
        _ => {
            if let Some(leaf) = leaf_of(n) {
                add(prefix, leaf);
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
    }
}
