//! DDL: CREATE and ALTER of tables and datastores, their options and columns.

use super::*;
use crate::batch::Batch;
use crate::objects::ColumnSpec;
use crate::query::ast;
use crate::query::bind::{Binder, type_of_oid};
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::{concat, run};
use crate::query::expr::EvalCtx;
use crate::query::grammar::Options;
use crate::query::types::SqlType;
use crate::util::time::now_micros;
use std::sync::Arc;

impl Session {
    pub(super) fn create_table(&self, ct: &ast::CreateTable) -> SqlResult<Outcome> {
        let name = ct.name.to_string().to_ascii_lowercase();
        if self.engine.datastore(&name).is_ok() || self.engine.channel(&name).is_ok() {
            return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
        }
        let mut cols: Vec<ColumnSpec> = Vec::new();
        let mut key = Vec::new();
        for (i, c) in ct.columns.iter().enumerate() {
            let (spec, primary) = self.column_spec(c)?;
            if cols.iter().any(|x| x.name == spec.name) {
                return Err(SqlError::new("42701", format!("column \"{}\" specified more than once", spec.name)));
            }
            if primary {
                key.push(i);
            }
            cols.push(spec);
        }
        for con in &ct.constraints {
            if let ast::TableConstraint::PrimaryKey(pk) = con {
                for col in &pk.columns {
                    let cname = col.to_string().to_ascii_lowercase();
                    let i =
                        cols.iter().position(|c| c.name == cname).ok_or_else(|| SqlError::undefined_column(&cname))?;
                    cols[i].not_null = true;
                    key.push(i);
                }
            } else {
                return Err(SqlError::unsupported(format!("table constraint {con}")));
            }
        }
        created(self.engine.create_table(&name, cols, key).map(drop), ct.if_not_exists, "CREATE TABLE")
    }

    /// ALTER TABLE: on a table, ADD / DROP / RENAME COLUMN, ALTER COLUMN (SET / DROP NOT NULL,
    /// SET / DROP DEFAULT, [SET DATA] TYPE … [USING …]), ADD PRIMARY KEY, DROP CONSTRAINT
    /// <name>_pkey, and RENAME TO. The operations apply in order to the table's schema and
    /// content, which change together in one WAL record; any error leaves the table as it was.
    /// On a datastore, ADD COLUMN declares a column.
    pub(super) fn alter_table(&self, at: &ast::AlterTable) -> SqlResult<Outcome> {
        use ast::{AlterColumnOperation as Col, AlterTableOperation as Op};
        let name = at.name.to_string().to_ascii_lowercase();
        let name = name.strip_prefix("public.").unwrap_or(&name).to_string();
        let done = || Ok(Outcome::Done("ALTER TABLE".into()));
        let t = match self.engine.table(&name) {
            Ok(t) => t,
            Err(_) if self.engine.datastore(&name).is_ok() => return self.alter_datastore(&name, &at.operations),
            Err(_) if self.engine.channel(&name).is_ok() => {
                return Err(SqlError::new(
                    "42809",
                    format!("\"{name}\" is a channel: use ALTER CHANNEL {name} SET (retention = …)"),
                ));
            }
            Err(_) if at.if_exists => return done(),
            Err(_) => return Err(SqlError::undefined_relation(&name)),
        };
        if let [Op::RenameTable { table_name }] = at.operations.as_slice() {
            let (ast::RenameTableNameKind::To(n) | ast::RenameTableNameKind::As(n)) = table_name;
            let new = n.to_string().to_ascii_lowercase();
            self.engine.rename_table(&name, &new)?;
            return done();
        }
        let (base_schema, base) = t.snapshot();
        let mut schema = (*base_schema).clone();
        let mut cols = base.columns.clone();
        let n = base.num_rows();
        let missing = |c: &str| SqlError::new("42703", format!("column \"{c}\" of relation \"{name}\" does not exist"));
        let has_nulls =
            |c: &str| SqlError::new("23502", format!("column \"{c}\" of relation \"{name}\" contains null values"));
        let two_keys = || SqlError::new("42P16", format!("multiple primary keys for table \"{name}\" are not allowed"));
        for op in &at.operations {
            match op {
                Op::AddColumn { if_not_exists, column_def, .. } => {
                    let (spec, primary) = self.column_spec(column_def)?;
                    if schema.position(&spec.name).is_some() {
                        if *if_not_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            "42701",
                            format!("column \"{}\" of relation \"{name}\" already exists", spec.name),
                        ));
                    }
                    let col = self.default_column(&spec, n)?;
                    if spec.not_null && col.null_count() > 0 {
                        return Err(has_nulls(&spec.name));
                    }
                    if primary {
                        if !schema.key.is_empty() {
                            return Err(two_keys());
                        }
                        schema.key = vec![schema.columns.len()];
                    }
                    schema.columns.push(spec);
                    cols.push(col);
                }
                Op::DropColumn { column_names, if_exists, .. } => {
                    for c in column_names {
                        let c = ident_name(c);
                        let Some(i) = schema.position(&c) else {
                            if *if_exists {
                                continue;
                            }
                            return Err(missing(&c));
                        };
                        if schema.columns.len() == 1 {
                            return Err(SqlError::unsupported("a table without columns"));
                        }
                        // As in PostgreSQL, the primary key goes with any of its columns.
                        if schema.key.contains(&i) {
                            schema.key.clear();
                        }
                        schema.columns.remove(i);
                        cols.remove(i);
                        for k in &mut schema.key {
                            if *k > i {
                                *k -= 1;
                            }
                        }
                    }
                }
                Op::RenameColumn { old_column_name, new_column_name } => {
                    let (old, new) = (ident_name(old_column_name), ident_name(new_column_name));
                    let i = schema
                        .position(&old)
                        .ok_or_else(|| SqlError::new("42703", format!("column \"{old}\" does not exist")))?;
                    if schema.position(&new).is_some() {
                        return Err(SqlError::new(
                            "42701",
                            format!("column \"{new}\" of relation \"{name}\" already exists"),
                        ));
                    }
                    schema.columns[i].name = new;
                }
                Op::AlterColumn { column_name, op } => {
                    let c = ident_name(column_name);
                    let i = schema.position(&c).ok_or_else(|| missing(&c))?;
                    match op {
                        Col::SetNotNull => {
                            if cols[i].null_count() > 0 {
                                return Err(has_nulls(&c));
                            }
                            schema.columns[i].not_null = true;
                        }
                        Col::DropNotNull => {
                            if schema.key.contains(&i) {
                                return Err(SqlError::new("42P16", format!("column \"{c}\" is in a primary key")));
                            }
                            schema.columns[i].not_null = false;
                        }
                        Col::SetDefault { value } => {
                            schema.columns[i].default = Some(value.to_string());
                            self.default_column(&schema.columns[i], 1)?;
                        }
                        Col::DropDefault => schema.columns[i].default = None,
                        Col::SetDataType { data_type, using, .. } => {
                            let to = SqlType::from_name(&data_type.to_string()).ok_or_else(|| {
                                SqlError::new("42704", format!("type \"{data_type}\" does not exist"))
                            })?;
                            let physical = to
                                .physical()
                                .ok_or_else(|| SqlError::unsupported(format!("columns of type {}", to.pg_name())))?;
                            let spec = &schema.columns[i];
                            let from = type_of_oid(spec.type_tag, spec.data_type);
                            let newc = match using {
                                Some(e) => {
                                    let rows = Arc::new(Batch { fields: schema.fields(), columns: cols.clone() });
                                    let sql = format!("SELECT CAST(({e}) AS {data_type}) FROM {name}");
                                    let (plan, out) = self.bind_over(&sql, &name, &schema, &rows, &[])?;
                                    let b = concat(run(&plan)?, &out);
                                    cast_column(&b.columns[0], out[0].ty, to, &c)?
                                }
                                None if from == to => cols[i].clone(),
                                None => {
                                    if !assignable(from, to) {
                                        return Err(SqlError::new(
                                            "42804",
                                            format!(
                                                "column \"{c}\" cannot be cast automatically to type {}",
                                                to.pg_name()
                                            ),
                                        )
                                        .with_hint(format!(
                                            "You might need to specify \"USING {c}::{}\".",
                                            to.pg_name()
                                        )));
                                    }
                                    cast_column(&cols[i], from, to, &c)?
                                }
                            };
                            let spec = &mut schema.columns[i];
                            spec.data_type = physical;
                            spec.type_tag = to.oid();
                            if spec.not_null && newc.null_count() > 0 {
                                return Err(has_nulls(&c));
                            }
                            cols[i] = newc;
                            if schema.columns[i].default.is_some()
                                && self.default_column(&schema.columns[i], 1).is_err()
                            {
                                return Err(SqlError::new(
                                    "42804",
                                    format!(
                                        "default for column \"{c}\" cannot be cast automatically to type {}",
                                        to.pg_name()
                                    ),
                                ));
                            }
                        }
                        other => return Err(SqlError::unsupported(format!("ALTER COLUMN … {other}"))),
                    }
                }
                Op::AddConstraint { constraint: ast::TableConstraint::PrimaryKey(pk), .. } => {
                    if !schema.key.is_empty() {
                        return Err(two_keys());
                    }
                    let mut key = Vec::new();
                    for col in &pk.columns {
                        let c = col.to_string().to_ascii_lowercase();
                        let i = schema.position(&c).ok_or_else(|| {
                            SqlError::new("42703", format!("column \"{c}\" named in key does not exist"))
                        })?;
                        if cols[i].null_count() > 0 {
                            return Err(has_nulls(&c));
                        }
                        schema.columns[i].not_null = true;
                        key.push(i);
                    }
                    let rows = Batch { fields: schema.fields(), columns: cols.clone() };
                    let mut seen = std::collections::HashSet::new();
                    if (0..n).any(|r| !seen.insert(crate::table::store_key_bytes(&rows, &key, r))) {
                        return Err(SqlError::new("23505", format!("could not create unique index \"{name}_pkey\"")));
                    }
                    schema.key = key;
                }
                Op::DropConstraint { name: cname, if_exists, .. } => {
                    let cname = ident_name(cname);
                    if cname == format!("{name}_pkey") && !schema.key.is_empty() {
                        schema.key.clear();
                    } else if !*if_exists {
                        return Err(SqlError::new(
                            "42704",
                            format!("constraint \"{cname}\" of relation \"{name}\" does not exist"),
                        ));
                    }
                }
                Op::DropPrimaryKey { .. } => schema.key.clear(),
                Op::RenameTable { .. } => {
                    return Err(SqlError::syntax("RENAME TO cannot be combined with other ALTER TABLE actions"));
                }
                other => return Err(SqlError::unsupported(format!("ALTER TABLE … {other}"))),
            }
        }
        let rows = Batch { fields: schema.fields(), columns: cols };
        self.engine.alter_table(&name, schema, rows, &base)?;
        done()
    }

    /// ALTER TABLE on a datastore: ADD COLUMN declares columns; the rest is refused, since a
    /// datastore's rows are append-only.
    pub(super) fn alter_datastore(&self, name: &str, ops: &[ast::AlterTableOperation]) -> SqlResult<Outcome> {
        for op in ops {
            let ast::AlterTableOperation::AddColumn { if_not_exists, column_def, .. } = op else {
                return Err(SqlError::new(
                    "0A000",
                    format!("datastore \"{name}\" takes only ADD COLUMN (its rows are append-only): {op}"),
                ));
            };
            let (spec, primary) = self.column_spec(column_def)?;
            if primary || spec.not_null || spec.default.is_some() {
                return Err(SqlError::unsupported("constraints and defaults on datastore columns"));
            }
            if spec.name == "__dt" || spec.name.starts_with("__") {
                return Err(SqlError::new("42P16", format!("column \"{}\" is fleetdb's own", spec.name)));
            }
            match self.engine.add_datastore_column(name, spec) {
                Err(crate::Error::AlreadyExists { .. }) if *if_not_exists => {}
                r => r?,
            }
        }
        Ok(Outcome::Done("ALTER TABLE".into()))
    }

    /// A column definition of CREATE TABLE or ALTER TABLE … ADD COLUMN, and whether it is
    /// the primary key. A DEFAULT is checked now by evaluating it for one row.
    pub(super) fn column_spec(&self, c: &ast::ColumnDef) -> SqlResult<(ColumnSpec, bool)> {
        let ty = SqlType::from_name(&c.data_type.to_string())
            .ok_or_else(|| SqlError::new("42704", format!("type \"{}\" does not exist", c.data_type)))?;
        let physical =
            ty.physical().ok_or_else(|| SqlError::unsupported(format!("columns of type {}", ty.pg_name())))?;
        let name = ident_name(&c.name);
        let mut spec = ColumnSpec { name, data_type: physical, type_tag: ty.oid(), not_null: false, default: None };
        let mut primary = false;
        for o in &c.options {
            match &o.option {
                ast::ColumnOption::NotNull => spec.not_null = true,
                ast::ColumnOption::PrimaryKey(_) => {
                    spec.not_null = true;
                    primary = true;
                }
                ast::ColumnOption::Null => {}
                ast::ColumnOption::Default(e) => {
                    spec.default = Some(e.to_string());
                    self.default_column(&spec, 1)?;
                }
                other => return Err(SqlError::unsupported(format!("column option {other}"))),
            }
        }
        Ok((spec, primary))
    }

    /// The engine's pipeline runner, started on first use.
    /// Plans a SQL dataset's query before the dataset is defined, so a bad query keeps its
    /// SQLSTATE (program datasets have no query). Columns that do not exist yet are allowed:
    /// a datastore's columns come with its first rows, often after the dataset is defined.
    pub(super) fn check_dataset_query(&self, query: &str) -> SqlResult<()> {
        if crate::dataset::grammar::program_body(query).is_none() {
            let q = crate::query::parse::parse_query(query)?;
            match Binder::new(&self.engine, EvalCtx { now: now_micros() }, &[])
                .with_datasets(self.dataset_source())
                .bind_query(&q)
            {
                Err(e) if !e.is_undefined_column() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

pub(super) fn parse_retention(opts: &Options) -> SqlResult<Option<u32>> {
    for (k, v) in opts {
        if k == "retention" || k == "retention_period" {
            let v = v.trim().to_ascii_lowercase();
            if v == "unlimited" {
                return Ok(None);
            }
            let n: u32 = v.trim_end_matches("days").trim_end_matches("day").trim().parse().map_err(|_| {
                SqlError::new("22023", format!("invalid retention \"{v}\": use 'N days' or 'unlimited'"))
            })?;
            if n == 0 {
                return Err(SqlError::new("22023", "retention must be at least 1 day"));
            }
            return Ok(Some(n));
        }
    }
    Ok(None)
}

pub(super) fn check_options(opts: &Options, allowed: &[&str], what: &str) -> SqlResult<()> {
    for (k, _) in opts {
        if !allowed.contains(&k.as_str()) {
            return Err(SqlError::new(
                "22023",
                format!("unknown {what} option \"{k}\" (allowed: {})", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The outcome of a CREATE: `tag`, or 42P07 when the object exists (unless IF NOT EXISTS).
pub(super) fn created(r: crate::Result<()>, if_not_exists: bool, tag: &str) -> SqlResult<Outcome> {
    match r {
        Err(crate::Error::AlreadyExists { .. }) if if_not_exists => {}
        r => r?,
    }
    Ok(Outcome::Done(tag.into()))
}
