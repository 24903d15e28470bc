//! The plans of a pipeline's FILTER, MATH and ENRICH activities: each activity is a query over
//! the batch so far (relation `__in`), parsed once by its text and bound once per input schema
//! into a plan run again over every batch of that schema.

use std::sync::Arc;

use crate::batch::{Batch, Field};
use crate::engine::Engine;
use crate::query::bind::Binder;
use crate::query::error::SqlResult;
use crate::query::exec::{concat, run};
use crate::query::expr::EvalCtx;
use crate::query::parse::parse_query;
use crate::query::plan::OutCol;
use crate::query::types::SqlType;
use crate::util::time::now_micros;

/// The activity queries parsed so far, by text (shared by every pipeline: an activity's text
/// depends only on its definition and the batch's column names). A plan is bound from them once
/// per input schema ([`ActivityPlans`]), or for every batch when it holds `now()` or a
/// subquery's answer.
static PARSED: std::sync::Mutex<Option<std::collections::HashMap<String, Arc<crate::query::ast::Query>>>> =
    std::sync::Mutex::new(None);

/// Texts kept in [`PARSED`]; past it the cache starts over (schemas churn only when messages
/// bring new attributes).
const PARSED_KEPT: usize = 512;

/// `sql` parsed, from [`PARSED`] when it was parsed before.
fn parsed(sql: &str) -> SqlResult<Arc<crate::query::ast::Query>> {
    let lock = || PARSED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(q) = lock().as_ref().and_then(|m| m.get(sql)) {
        return Ok(q.clone());
    }
    let q: Arc<crate::query::ast::Query> = Arc::from(parse_query(sql)?);
    let mut cache = lock();
    let map = cache.get_or_insert_with(Default::default);
    if map.len() >= PARSED_KEPT {
        map.clear();
    }
    map.insert(sql.to_string(), q.clone());
    Ok(q)
}

/// Activity plans (FILTER, MATH, ENRICH) bound once per input schema and run again for each
/// batch that has it: a batch's rows go into the plan's input slot. A plan is bound again when
/// a batch brings another schema or an ENRICH table changed (dropped and made again, altered);
/// one that bound a constant of its moment (`now()`, a subquery's answer) is bound for every
/// batch, as before.
#[derive(Default)]
pub struct ActivityPlans {
    /// By activity query: the schemas it was bound for, most recent last.
    by_query: std::collections::HashMap<String, Vec<(String, Bound)>>,
}

/// A bound activity query and the slot its input rows go into.
struct Bound {
    plan: crate::query::plan::Plan,
    schema: Vec<OutCol>,
    input: Arc<crate::query::plan::InputSlot>,
}

/// Schemas kept per activity query: messages with and without an optional attribute alternate
/// between two, rarely more.
const SCHEMAS_KEPT: usize = 4;

/// Activity queries kept; past it the plans start over.
const QUERIES_KEPT: usize = 256;

impl Bound {
    fn run(&self, input: Arc<Batch>) -> SqlResult<Batch> {
        self.input.set(Some(input));
        let out = run(&self.plan);
        self.input.set(None);
        let out = concat(out?, &self.schema);
        let fields = self.schema.iter().zip(&out.columns).map(|(s, c)| Field::new(&s.name, c.data_type())).collect();
        Ok(Batch { fields, columns: out.columns })
    }
}

impl ActivityPlans {
    /// How many plans are held.
    pub fn len(&self) -> usize {
        self.by_query.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `sql` over `input` as relation `__in`, with the plan bound for `input`'s schema and
    /// `also` (what else the plan depends on: an ENRICH table's identity and columns).
    pub(super) fn run(&mut self, engine: &Arc<Engine>, sql: &str, also: &str, input: Arc<Batch>) -> SqlResult<Batch> {
        let _stack = crate::query::guard::stack_base();
        let mut key = String::from(also);
        for f in &input.fields {
            key.push_str(&f.name);
            key.push(char::from(b'0' + f.data_type as u8));
            key.push('\0');
        }
        if let Some(b) = self.by_query.get(sql).and_then(|v| v.iter().find(|(k, _)| *k == key)) {
            return b.1.run(input);
        }
        let q = parsed(sql)?;
        let binder = Binder::new(engine, EvalCtx { now: now_micros() }, &[]);
        let schema: Vec<OutCol> = input
            .fields
            .iter()
            .map(|f| OutCol { name: f.name.clone(), ty: SqlType::of_storage(f.data_type) })
            .collect();
        let slot = binder.add_input_relation("__in", schema);
        let (plan, schema) = binder.bind_query(&q)?;
        let bound = Bound { plan, schema, input: slot };
        let out = bound.run(input);
        if !binder.bound_the_moment() {
            if self.by_query.len() >= QUERIES_KEPT && !self.by_query.contains_key(sql) {
                self.by_query.clear();
            }
            let kept = self.by_query.entry(sql.to_string()).or_default();
            if kept.len() >= SCHEMAS_KEPT {
                kept.remove(0);
            }
            kept.push((key, bound));
        }
        out
    }
}
