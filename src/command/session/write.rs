//! Table and channel writes: INSERT (with upserts), UPDATE and DELETE, and the conversions to a target column's type.

use super::*;
use crate::batch::{Batch, Column, Field, Values};
use crate::command::parse::{Statement, parse};
use crate::engine::Engine;
use crate::objects::ColumnSpec;
use crate::query::ast;
use crate::query::bind::type_of_oid;
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::{concat, run};
use crate::query::expr::{cast_scalar, scalars_to_column};
use crate::query::parse::parse_query;
use crate::query::plan::OutCol;
use crate::query::scalar::{Param, Scalar};
use crate::query::types::SqlType;
use crate::table::{Table, TableSchema, TableWrite};
use crate::util::time::now_micros;
use std::sync::Arc;

impl Session {
    /// Evaluates the VALUES or SELECT source of an INSERT into one batch.
    pub(super) fn insert_source(&self, ins: &ast::Insert, params: &[Param]) -> SqlResult<(Vec<OutCol>, Batch)> {
        let q = ins.source.as_ref().ok_or_else(|| SqlError::unsupported("INSERT without VALUES or SELECT"))?;
        let mut b = self.binder(params);
        // A VALUES list's values take their target columns' types (`'NaN'` into a double
        // precision column beside a `1` is a double, not a failed integer).
        if matches!(q.body.as_ref(), ast::SetExpr::Values(_)) && q.with.is_none() && q.order_by.is_none() {
            b = b.with_insert_targets(self.insert_target_types(ins));
        }
        let (plan, schema) = b.bind_query(q)?;
        let batches = run(&plan)?;
        Ok((schema.clone(), concat(batches, &schema)))
    }

    pub(super) fn insert(&mut self, ins: &ast::Insert, params: &[Param]) -> SqlResult<Outcome> {
        if ins.returning.is_some() {
            // Refused rather than ignored: a client waiting for the rows would get none.
            return Err(SqlError::unsupported("INSERT … RETURNING"));
        }
        let name = match &ins.table {
            ast::TableObject::TableName(n) => n.to_string().to_ascii_lowercase(),
            other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
        };
        let (src_schema, src) = self.insert_source(ins, params)?;
        let cols: Vec<String> = ins.columns.iter().map(|c| c.to_string().to_ascii_lowercase()).collect();
        let skip_conflicts = match &ins.on {
            None => false,
            Some(ast::OnInsert::OnConflict(ast::OnConflict { action: ast::OnConflictAction::DoNothing, .. })) => true,
            Some(ast::OnInsert::OnConflict(ast::OnConflict {
                action: ast::OnConflictAction::DoUpdate(update),
                conflict_target,
            })) => {
                let alias = ins.table_alias.as_ref().map(|a| a.alias.value.to_ascii_lowercase());
                let target = match conflict_target {
                    Some(ast::ConflictTarget::Columns { columns, .. }) => {
                        columns.iter().map(|c| c.value.to_ascii_lowercase()).collect::<Vec<_>>()
                    }
                    _ => {
                        return Err(SqlError::new(
                            "42601",
                            "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                        )
                        .with_hint("For example, ON CONFLICT (column_name)."));
                    }
                };
                let n = self.upsert(&name, alias.as_deref(), &cols, &src_schema, &src, &target, update, params)?;
                return Ok(Outcome::Done(format!("INSERT 0 {n}")));
            }
            Some(other) => return Err(SqlError::unsupported(format!("INSERT … {other}"))),
        };
        let n = self.insert_rows(&name, &cols, &src_schema, src, skip_conflicts, false)?;
        Ok(Outcome::Done(format!("INSERT 0 {n}")))
    }

    /// Writes rows (`src`, typed by `src_schema`) into columns `cols` of table or datastore
    /// `name`; returns how many were written.
    /// `infer`: untyped values (COPY text) take the datastore column's type, or for a new column
    /// a type inferred from the values; otherwise untyped literals are text, as in PostgreSQL.
    pub(super) fn insert_rows(
        &mut self,
        name: &str,
        cols: &[String],
        src_schema: &[OutCol],
        src: Batch,
        skip_conflicts: bool,
        infer: bool,
    ) -> SqlResult<usize> {
        let name = name.to_string();
        let n = src.num_rows();
        if let Ok(t) = self.engine.table(&name) {
            let (schema, current) = t.snapshot();
            let batch = self.table_batch(&schema, cols, src_schema, &src)?;
            let written = if skip_conflicts {
                insert_skipping_conflicts(&self.engine, &t, &schema, &current, batch)?
            } else {
                self.engine.write_table(&name, TableWrite::Append, batch, None)?;
                n
            };
            return Ok(written);
        }
        if let Ok(ds) = self.engine.datastore(&name) {
            let batch = datastore_batch(&ds.schema(), cols, src_schema, src, infer)?;
            self.engine.append_rows(&name, batch, None)?;
            return Ok(n);
        }
        if self.engine.channel(&name).is_ok() {
            return self.insert_messages(&name, cols, src_schema, &src);
        }
        Err(SqlError::undefined_relation(&name))
    }

    /// INSERT INTO channel (payload [, __message_id] [, __topic]) …: each row is a message.
    /// Without `__message_id`, messages get ids of the form `<arrival µs in hex>-<row>`.
    pub(super) fn insert_messages(
        &mut self,
        name: &str,
        cols: &[String],
        src_schema: &[OutCol],
        src: &Batch,
    ) -> SqlResult<usize> {
        let pos = |c: &str| cols.iter().position(|x| x == c);
        if let Some(bad) = cols.iter().find(|c| !matches!(c.as_str(), "payload" | "__message_id" | "__topic")) {
            return Err(SqlError::new(
                "42703",
                format!(
                    "column \"{bad}\" of channel \"{name}\" cannot be written: give payload, __message_id, __topic"
                ),
            ));
        }
        let Some(p) = pos("payload") else {
            return Err(SqlError::syntax(format!("INSERT into channel {name} needs a column list with payload")));
        };
        if cols.len() != src_schema.len() {
            return Err(SqlError::syntax("INSERT has more expressions than target columns"));
        }
        let text =
            |i: usize| -> SqlResult<Column> { cast_column(&src.columns[i], src_schema[i].ty, SqlType::Text, &cols[i]) };
        let payloads = text(p)?;
        let ids = pos("__message_id").map(text).transpose()?;
        let topics = pos("__topic").map(text).transpose()?;
        let start = now_micros();
        let value = |c: &Column, r: usize| -> Option<String> {
            Scalar::from_column(c, SqlType::Text, r).to_text(SqlType::Text)
        };
        let mut msgs = Vec::with_capacity(src.num_rows());
        for r in 0..src.num_rows() {
            let payload = value(&payloads, r).ok_or_else(|| {
                SqlError::new("23502", format!("null value in column \"payload\" of channel \"{name}\""))
            })?;
            let id = match &ids {
                Some(c) => value(c, r).unwrap_or_default(),
                None => format!("{start:x}-{}", r + 1),
            };
            let topic = topics.as_ref().and_then(|c| value(c, r)).unwrap_or_default();
            msgs.push(crate::ingest::Incoming {
                id: id.into(),
                topic: topic.into(),
                payload: payload.into_bytes().into(),
            });
        }
        self.put_messages(name, &msgs)
    }

    /// The rows of an INSERT into table `t` (`src` into columns `cols`, all if empty) as full
    /// table rows, each value cast to its column's type; absent columns are NULL.
    pub(super) fn table_batch(
        &self,
        t: &TableSchema,
        cols: &[String],
        src_schema: &[OutCol],
        src: &Batch,
    ) -> SqlResult<Batch> {
        let n = src.num_rows();
        let targets: Vec<usize> = if cols.is_empty() {
            (0..src_schema.len().min(t.columns.len())).collect()
        } else {
            cols.iter().map(|c| t.position(c).ok_or_else(|| SqlError::undefined_column(c))).collect::<SqlResult<_>>()?
        };
        if targets.len() != src_schema.len() {
            return Err(SqlError::syntax("INSERT has more expressions than target columns"));
        }
        let mut columns = Vec::with_capacity(t.columns.len());
        for (i, spec) in t.columns.iter().enumerate() {
            let ty = type_of_oid(spec.type_tag, spec.data_type);
            columns.push(match targets.iter().position(|&x| x == i) {
                Some(si) => cast_column(&src.columns[si], src_schema[si].ty, ty, &spec.name)?,
                None => self.default_column(spec, n)?,
            });
        }
        Ok(Batch { fields: t.fields(), columns })
    }

    /// `n` copies of column `spec`'s default value (NULL without a default). The default is
    /// evaluated once per statement, so `now()` gives every row the same time.
    pub(super) fn default_column(&self, spec: &ColumnSpec, n: usize) -> SqlResult<Column> {
        let Some(default) = &spec.default else { return Ok(Column::nulls(spec.data_type, n)) };
        let ty = type_of_oid(spec.type_tag, spec.data_type);
        let (plan, schema) = self.binder(&[]).bind_query(&*parse_query(&format!("SELECT {default}"))?)?;
        let out = concat(run(&plan)?, &schema);
        let v = cast_column(&out.columns[0], schema[0].ty, ty, &spec.name)?;
        scalars_to_column(&vec![Scalar::from_column(&v, ty, 0); n], ty)
    }

    /// INSERT … ON CONFLICT (key) DO UPDATE SET … [WHERE …]: proposed rows whose key exists
    /// update that row (the assignments see it under the table's name or alias, and the
    /// proposed row as `excluded`); the others are inserted. Returns rows inserted or updated.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn upsert(
        &mut self,
        name: &str,
        alias: Option<&str>,
        cols: &[String],
        src_schema: &[OutCol],
        src: &Batch,
        target: &[String],
        update: &ast::DoUpdate,
        params: &[Param],
    ) -> SqlResult<usize> {
        let t = self.engine.table(name).map_err(|_| match self.engine.datastore(name) {
            Ok(_) => SqlError::new("42809", format!("\"{name}\" is append-only: ON CONFLICT DO UPDATE needs a table")),
            Err(_) => SqlError::undefined_relation(name),
        })?;
        let (ts, current) = t.snapshot();
        let key_names: Vec<&str> = ts.key.iter().map(|&k| ts.columns[k].name.as_str()).collect();
        let mut sorted_target: Vec<&str> = target.iter().map(String::as_str).collect();
        sorted_target.sort();
        let mut sorted_key = key_names.clone();
        sorted_key.sort();
        if key_names.is_empty() || sorted_target != sorted_key {
            return Err(SqlError::new(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ));
        }
        // The proposed rows as full table rows.
        let proposed = self.table_batch(&ts, cols, src_schema, src)?;
        let index: std::collections::HashMap<Vec<u8>, usize> =
            (0..current.num_rows()).map(|r| (crate::table::store_key_bytes(&current, &ts.key, r), r)).collect();
        let mut seen = std::collections::HashSet::new();
        let (mut inserts, mut conflicts) = (Vec::new(), Vec::new()); // proposed rows; (existing, proposed)
        for r in 0..proposed.num_rows() {
            let k = crate::table::store_key_bytes(&proposed, &ts.key, r);
            if !seen.insert(k.clone()) {
                return Err(SqlError::new("21000", "ON CONFLICT DO UPDATE command cannot affect row a second time")
                    .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
            }
            match index.get(&k) {
                Some(&e) => conflicts.push((e as u32, r as u32)),
                None => inserts.push(r as u32),
            }
        }
        let mut columns = current.columns.clone();
        let mut updated = 0;
        if !conflicts.is_empty() {
            // Evaluate SET and WHERE over (existing row, excluded row) pairs, row by row aligned.
            let schema_of = |b: &Batch| -> Vec<OutCol> {
                ts.columns
                    .iter()
                    .map(|c| OutCol { name: c.name.clone(), ty: type_of_oid(c.type_tag, c.data_type) })
                    .chain(std::iter::once(OutCol { name: "__pair".into(), ty: SqlType::Int8 }))
                    .take(b.columns.len() + 1)
                    .collect()
            };
            let with_pair = |b: Batch| -> Batch {
                let mut b = b;
                let n = b.num_rows();
                b.fields.push(Field::new("__pair", crate::batch::DataType::Int64));
                b.columns.push(Column::new(Values::Int64((0..n as i64).collect())));
                b
            };
            let existing = with_pair(current.take(&conflicts.iter().map(|c| c.0).collect::<Vec<_>>()));
            let excluded = with_pair(proposed.take(&conflicts.iter().map(|c| c.1).collect::<Vec<_>>()));
            let qual = alias.unwrap_or(name);
            let mut exprs: Vec<String> = Vec::new();
            let mut targets = Vec::new();
            for a in &update.assignments {
                let col = match &a.target {
                    ast::AssignmentTarget::ColumnName(c) => c.to_string().to_ascii_lowercase(),
                    other => return Err(SqlError::unsupported(format!("assignment to {other}"))),
                };
                let ci = ts.position(&col).ok_or_else(|| SqlError::undefined_column(&col))?;
                if ts.key.contains(&ci) {
                    return Err(SqlError::unsupported("ON CONFLICT DO UPDATE of a primary key column"));
                }
                targets.push(ci);
                exprs.push(a.value.to_string());
            }
            let pred = update.selection.as_ref().map_or("true".to_string(), |w| w.to_string());
            let q = format!(
                "SELECT {qual}.__pair, {pred}{} FROM {qual} JOIN excluded ON {qual}.__pair = excluded.__pair ORDER BY 1",
                exprs.iter().map(|e| format!(", {e}")).collect::<String>()
            );
            let stmts = parse(&q)?;
            let Some(Statement::Sql(stmt)) = stmts.first() else { return Err(SqlError::syntax("ON CONFLICT")) };
            let ast::Statement::Query(query) = stmt.as_ref() else { return Err(SqlError::syntax("ON CONFLICT")) };
            let b = self.binder(params);
            b.add_relation(qual, schema_of(&existing), existing);
            b.add_relation("excluded", schema_of(&excluded), excluded);
            let (plan, schema) = b.bind_query(query)?;
            let out = concat(run(&plan)?, &schema);
            let keep = &out.columns[1];
            let Values::Bool(kv) = &keep.values else {
                return Err(SqlError::mismatch("argument of WHERE must be type boolean"));
            };
            for (k, &ci) in targets.iter().enumerate() {
                let spec = &ts.columns[ci];
                let ty = type_of_oid(spec.type_tag, spec.data_type);
                let newc = cast_column(&out.columns[2 + k], schema[2 + k].ty, ty, &spec.name)?;
                let mut vals: Vec<Scalar> =
                    (0..current.num_rows()).map(|i| Scalar::from_column(&columns[ci], ty, i)).collect();
                for (p, &(e, _)) in conflicts.iter().enumerate() {
                    if keep.is_valid(p) && kv[p] {
                        vals[e as usize] = Scalar::from_column(&newc, ty, p);
                    }
                }
                columns[ci] = scalars_to_column(&vals, ty)?;
            }
            updated = (0..conflicts.len()).filter(|&p| keep.is_valid(p) && kv[p]).count();
        }
        let new_rows = proposed.take(&inserts);
        let mut all = Batch { fields: current.fields.clone(), columns };
        if new_rows.num_rows() > 0 {
            all = concat(vec![all, new_rows], &schema_of_table(&ts));
        }
        if updated > 0 || !inserts.is_empty() {
            self.engine.write_table(t.name(), TableWrite::Replace, all, Some(&current))?;
        }
        Ok(updated + inserts.len())
    }

    /// The rows of table `name` as the statement sees them, and which match `selection`.
    fn matching(&self, name: &str, selection: Option<&ast::Expr>, params: &[Param]) -> SqlResult<Matching> {
        let t = self.engine.table(name).map_err(|_| SqlError::undefined_relation(name))?;
        let (schema, rows) = t.snapshot();
        let n = rows.num_rows();
        let mask = match selection {
            None => vec![true; n],
            Some(w) => {
                let (plan, _) = self.bind_over(&format!("SELECT {w} FROM {name}"), name, &schema, &rows, params)?;
                let out = concat(run(&plan)?, &[OutCol { name: "m".into(), ty: SqlType::Bool }]);
                let c = &out.columns[0];
                match &c.values {
                    Values::Bool(v) => (0..n).map(|i| c.is_valid(i) && v[i]).collect(),
                    _ => return Err(SqlError::mismatch("argument of WHERE must be type boolean")),
                }
            }
        };
        Ok(Matching { t, schema, rows, mask })
    }

    /// Binds query `sql` with relation `name` standing for `rows` (a table's content as the
    /// statement saw it, so every part of the statement reads the same rows).
    pub(super) fn bind_over(
        &self,
        sql: &str,
        name: &str,
        schema: &TableSchema,
        rows: &Arc<Batch>,
        params: &[Param],
    ) -> SqlResult<(crate::query::plan::Plan, Vec<OutCol>)> {
        let query = parse_query(sql)?;
        let b = self.binder(params);
        b.add_relation(name, schema_of_table(schema), rows.as_ref().clone());
        b.bind_query(&query)
    }

    pub(super) fn delete(&mut self, d: &ast::Delete, params: &[Param]) -> SqlResult<Outcome> {
        if d.returning.is_some() {
            return Err(SqlError::unsupported("DELETE … RETURNING"));
        }
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
        };
        let [twj] = from.as_slice() else { return Err(SqlError::unsupported("DELETE from several tables")) };
        let ast::TableFactor::Table { name, .. } = &twj.relation else {
            return Err(SqlError::unsupported("DELETE target"));
        };
        let name = name.to_string().to_ascii_lowercase();
        if self.engine.datastore(&name).is_ok() || self.engine.channel(&name).is_ok() {
            return Err(SqlError::new("42809", format!("\"{name}\" is append-only: rows leave it by retention")));
        }
        let Matching { t, rows, mask, .. } = self.matching(&name, d.selection.as_ref(), params)?;
        let keep: Vec<u32> = (0..rows.num_rows()).filter(|&i| !mask[i]).map(|i| i as u32).collect();
        let deleted = rows.num_rows() - keep.len();
        if deleted > 0 {
            self.engine.write_table(t.name(), TableWrite::Replace, rows.take(&keep), Some(&rows))?;
        }
        Ok(Outcome::Done(format!("DELETE {deleted}")))
    }

    pub(super) fn update(&mut self, u: &ast::Update, params: &[Param]) -> SqlResult<Outcome> {
        if u.returning.is_some() {
            return Err(SqlError::unsupported("UPDATE … RETURNING"));
        }
        let ast::TableFactor::Table { name, .. } = &u.table.relation else {
            return Err(SqlError::unsupported("UPDATE target"));
        };
        let name = name.to_string().to_ascii_lowercase();
        if self.engine.datastore(&name).is_ok() || self.engine.channel(&name).is_ok() {
            return Err(SqlError::new("42809", format!("\"{name}\" is append-only")));
        }
        let Matching { t, schema: ts, rows, mask } = self.matching(&name, u.selection.as_ref(), params)?;
        let n = rows.num_rows();
        let mut columns = rows.columns.clone();
        for a in &u.assignments {
            let col = match &a.target {
                ast::AssignmentTarget::ColumnName(c) => c.to_string().to_ascii_lowercase(),
                other => return Err(SqlError::unsupported(format!("assignment to {other}"))),
            };
            let ci = ts.position(&col).ok_or_else(|| SqlError::undefined_column(&col))?;
            let spec = &ts.columns[ci];
            let ty = type_of_oid(spec.type_tag, spec.data_type);
            // Evaluate the new value for every row through a query over the table.
            let (plan, schema) =
                self.bind_over(&format!("SELECT {} FROM {name}", a.value), &name, &ts, &rows, params)?;
            let vals = concat(run(&plan)?, &schema);
            let newc = cast_column(&vals.columns[0], schema[0].ty, ty, &col)?;
            let mut out = Vec::with_capacity(n);
            for (i, &m) in mask.iter().enumerate() {
                out.push(if m { Scalar::from_column(&newc, ty, i) } else { Scalar::from_column(&columns[ci], ty, i) });
            }
            columns[ci] = scalars_to_column(&out, ty)?;
        }
        let updated = mask.iter().filter(|m| **m).count();
        if updated > 0 {
            let batch = Batch { fields: rows.fields.clone(), columns };
            self.engine.write_table(t.name(), TableWrite::Replace, batch, Some(&rows))?;
        }
        Ok(Outcome::Done(format!("UPDATE {updated}")))
    }
}

/// Appends the rows of `batch` whose key is not in `current` (the content seen by the
/// statement) or earlier in `batch`; returns how many.
pub(super) fn insert_skipping_conflicts(
    engine: &Engine,
    t: &Table,
    schema: &TableSchema,
    current: &Arc<Batch>,
    batch: Batch,
) -> SqlResult<usize> {
    let mut seen: std::collections::HashSet<Vec<u8>> =
        (0..current.num_rows()).map(|r| crate::table::store_key_bytes(current, &schema.key, r)).collect();
    let keep: Vec<u32> = (0..batch.num_rows())
        .filter(|&r| schema.key.is_empty() || seen.insert(crate::table::store_key_bytes(&batch, &schema.key, r)))
        .map(|r| r as u32)
        .collect();
    let n = keep.len();
    if n > 0 {
        engine.write_table(t.name(), TableWrite::Append, batch.take(&keep), Some(current))?;
    }
    Ok(n)
}

/// Whether a value of type `from` converts to `to` on assignment without a written cast (as
/// PostgreSQL's assignment casts: between numbers, between times, anything to text).
pub(super) fn assignable(from: SqlType, to: SqlType) -> bool {
    (from.is_numeric() && to.is_numeric())
        || to.is_text()
        || (from.is_timestamp() && to.is_timestamp())
        || (from == SqlType::Date && to.is_timestamp())
}

/// Converts a column to the SQL type of a target column, naming it in errors.
/// The rows `src` (typed by `src_schema`) for columns `cols` of a datastore whose columns are
/// `existing`, as the datastore takes them (see [`Session::insert_rows`] for `infer`): text,
/// bigint, double, timestamp and boolean columns, and `time` (now when not given).
pub(super) fn datastore_batch(
    existing: &[Field],
    cols: &[String],
    src_schema: &[OutCol],
    src: Batch,
    infer: bool,
) -> SqlResult<Batch> {
    let n = src.num_rows();
    if cols.is_empty() {
        return Err(SqlError::syntax(
            "INSERT into a datastore needs a column list, e.g. INSERT INTO d (time, machine_id, x) VALUES …",
        ));
    }
    if cols.len() != src_schema.len() {
        return Err(SqlError::syntax("INSERT has more expressions than target columns"));
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    // The values move into the datastore's batch; only those of another type are copied.
    for (c, (oc, col)) in cols.iter().zip(src_schema.iter().zip(src.columns)) {
        let col = if c == "time" {
            cast_owned(col, oc.ty, SqlType::TimestampTz, c)?
        } else if infer && oc.ty == SqlType::Unknown {
            let ty = existing
                .iter()
                .find(|f| f.name == *c)
                .map(|f| SqlType::of_storage(f.data_type))
                .unwrap_or_else(|| crate::query::types::infer_type(&col));
            cast_owned(col, SqlType::Unknown, ty, c)?
        } else if oc.ty == SqlType::Unknown || oc.ty.is_text() || oc.ty.is_json() || oc.ty.is_numeric() {
            // Integers stay bigint, other numbers double: as they are.
            col
        } else {
            let to = if oc.ty == SqlType::Date { SqlType::TimestampTz } else { oc.ty };
            cast_owned(col, oc.ty, to, c)?
        };
        fields.push(Field::new(c, col.data_type()));
        columns.push(col);
    }
    if !cols.iter().any(|c| c == "time") {
        fields.push(Field::new("time", crate::batch::DataType::Timestamp));
        columns.push(Column::new(Values::Timestamp(vec![now_micros(); n])));
    }
    Batch::try_new(fields, columns).ok_or_else(|| SqlError::syntax("column named twice in INSERT"))
}

/// [`cast_column`] of a column given up: returned as it is when no conversion is needed.
fn cast_owned(c: Column, from: SqlType, to: SqlType, name: &str) -> SqlResult<Column> {
    if from == to || (from == SqlType::Unknown && to.is_text()) {
        return Ok(c);
    }
    cast_column(&c, from, to, name)
}

pub(super) fn cast_column(c: &Column, from: SqlType, to: SqlType, name: &str) -> SqlResult<Column> {
    if from == to || (from == SqlType::Unknown && to.is_text()) {
        return Ok(c.clone());
    }
    let ok = from == SqlType::Unknown || (from.is_text() && to.is_json()) || assignable(from, to);
    if !ok {
        return Err(SqlError::mismatch(format!(
            "column \"{name}\" is of type {} but expression is of type {}",
            to.pg_name(),
            from.pg_name()
        ))
        .with_hint("You will need to rewrite or cast the expression."));
    }
    let n = c.len();
    let mut vals = Vec::with_capacity(n);
    // Text (COPY data, untyped literals) is parsed where it lies, not copied into a value first.
    if let Values::Text(t) = &c.values
        && (from == SqlType::Unknown || from.is_text())
    {
        // Times, doubles and bigints go straight into their typed column (NULLs stay where
        // they are); other types through values.
        let parse = |i: usize| crate::query::scalar::parse_text(t.get(i), to);
        let typed = match to {
            SqlType::Timestamp | SqlType::TimestampTz | SqlType::Float8 | SqlType::Int8 => {
                let (mut ints, mut floats) = (Vec::new(), Vec::new());
                for i in 0..n {
                    match (c.is_valid(i), to) {
                        (false, SqlType::Float8) => floats.push(0.0),
                        (false, _) => ints.push(0),
                        (true, _) => match parse(i)? {
                            Scalar::Time(x) | Scalar::Int(x) => ints.push(x),
                            Scalar::Float(x) => floats.push(x),
                            _ => return Err(SqlError::new("XX000", "a value parsed as another type")),
                        },
                    }
                }
                Some(match to {
                    SqlType::Float8 => Values::Float64(floats),
                    SqlType::Int8 => Values::Int64(ints),
                    _ => Values::Timestamp(ints),
                })
            }
            _ => None,
        };
        if let Some(values) = typed {
            return Ok(Column::with_validity(values, c.validity.clone()));
        }
        for i in 0..n {
            vals.push(if c.is_valid(i) { crate::query::scalar::parse_text(t.get(i), to)? } else { Scalar::Null });
        }
        return scalars_to_column(&vals, to);
    }
    for i in 0..n {
        vals.push(cast_scalar(Scalar::from_column(c, from, i), from, to)?);
    }
    scalars_to_column(&vals, to)
}

/// What an UPDATE or DELETE works on: the table's schema and rows as the statement sees them,
/// and which rows its WHERE matches.
struct Matching {
    t: Arc<Table>,
    schema: Arc<TableSchema>,
    rows: Arc<Batch>,
    mask: Vec<bool>,
}
