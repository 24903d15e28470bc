//! The system catalogs clients read: `pg_catalog` (pg_class, pg_attribute, pg_type, …) and
//! `information_schema` (tables, columns, …), computed from the engine's objects when a query
//! names them. They hold what psql's `\d` family, JDBC's DatabaseMetaData and BI tools ask for.
//!
//! Every table, datastore and channel appears as a relation of kind `r` in schema `public`;
//! a table's primary key appears as an index named `<table>_pkey` with its constraint. Object
//! identifiers are derived from names (stable across restarts, ≥ 16384 like PostgreSQL's user
//! objects); a table's key index is the table's oid + 1.

use super::error::SqlResult;
use super::expr::scalars_to_column;
use super::plan::OutCol;
use super::scalar::Scalar;
use super::types::SqlType;
use super::types::type_of_oid;
use crate::batch::{Batch, Field};
use crate::engine::Engine;

pub(crate) const NS_PG_CATALOG: i64 = 11;
pub(crate) const NS_PUBLIC: i64 = 2200;
pub(crate) const NS_INFORMATION_SCHEMA: i64 = 13_000;
const ROLE_OID: i64 = 10;
const AM_HEAP: i64 = 2;
const AM_BTREE: i64 = 403;
const COLL_DEFAULT: i64 = 100;

/// One user relation as the catalogs describe it.
pub(crate) struct Rel {
    pub oid: i64,
    pub name: String,
    /// (name, type, not null)
    pub columns: Vec<(String, SqlType, bool)>,
    /// Primary key column numbers (1-based).
    pub key: Vec<i64>,
    /// Column defaults as SQL text, by column number − 1 (tables only; empty otherwise).
    pub defaults: Vec<Option<String>>,
}

impl Rel {
    fn default_of(&self, column: usize) -> Option<&str> {
        self.defaults.get(column).and_then(|d| d.as_deref())
    }
}

/// The oid fleetdb gives the relation `name`.
pub(crate) fn rel_oid(name: &str) -> i64 {
    16_384 + 2 * (crc32fast::hash(name.as_bytes()) as i64 % 500_000_000)
}

/// The oid of system catalog `name` (PostgreSQL's, for the ones clients name in queries).
pub(crate) fn system_rel_oid(name: &str) -> Option<i64> {
    Some(match name {
        "pg_type" => 1247,
        "pg_attribute" => 1249,
        "pg_proc" => 1255,
        "pg_class" => 1259,
        "pg_database" => 1262,
        "pg_constraint" => 2606,
        "pg_index" => 2610,
        "pg_namespace" => 2615,
        "pg_description" => 2609,
        "pg_am" => 2601,
        "pg_attrdef" => 2604,
        "pg_inherits" => 2611,
        "pg_trigger" => 2620,
        "pg_collation" => 3456,
        "pg_roles" | "pg_authid" => 1260,
        n if n.starts_with("pg_") => 10_000 + (crc32fast::hash(n.as_bytes()) % 2_000) as i64,
        _ => return None,
    })
}

/// Every user relation, ordered by name.
pub(crate) fn relations(engine: &Engine) -> Vec<Rel> {
    let mut out = Vec::new();
    for n in engine.table_names() {
        if let Ok(t) = engine.table(&n) {
            // Key columns are NOT NULL, as PostgreSQL's primary keys make them.
            let t = t.schema();
            let columns = t
                .columns
                .iter()
                .enumerate()
                .map(|(k, c)| (c.name.clone(), type_of_oid(c.type_tag, c.data_type), c.not_null || t.key.contains(&k)))
                .collect();
            let key = t.key.iter().map(|&k| k as i64 + 1).collect();
            let defaults = t.columns.iter().map(|c| c.default.clone()).collect();
            out.push(Rel { oid: rel_oid(&n), name: n, columns, key, defaults });
        }
    }
    for n in engine.datastore_names() {
        if let Ok(d) = engine.datastore(&n) {
            let mut columns: Vec<(String, SqlType, bool)> = d
                .schema()
                .iter()
                .filter(|f| !crate::datastore::is_lineage(&f.name))
                .map(|f| (f.name.clone(), SqlType::of_storage(f.data_type), f.name == "time"))
                .collect();
            columns.push(("__dt".into(), SqlType::Date, true));
            out.push(Rel { oid: rel_oid(&n), name: n, columns, key: Vec::new(), defaults: Vec::new() });
        }
    }
    for n in engine.channel_names() {
        let columns = vec![
            ("__received_at".to_string(), SqlType::TimestampTz, true),
            ("__message_id".to_string(), SqlType::Text, true),
            ("__topic".to_string(), SqlType::Text, true),
            ("payload".to_string(), SqlType::Json, false),
            ("__offset".to_string(), SqlType::Int8, true),
        ];
        out.push(Rel { oid: rel_oid(&n), name: n, columns, key: Vec::new(), defaults: Vec::new() });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The types fleetdb has, as pg_type rows: (oid, name, length, category).
pub(crate) const TYPES: &[(i64, &str, i64, &str)] = &[
    (16, "bool", 1, "B"),
    (17, "bytea", -1, "U"),
    (18, "char", 1, "Z"),
    (19, "name", 64, "S"),
    (20, "int8", 8, "N"),
    (21, "int2", 2, "N"),
    (23, "int4", 4, "N"),
    (25, "text", -1, "S"),
    (26, "oid", 4, "N"),
    (114, "json", -1, "U"),
    (700, "float4", 4, "N"),
    (701, "float8", 8, "N"),
    (1043, "varchar", -1, "S"),
    (1082, "date", 4, "D"),
    (1114, "timestamp", 8, "D"),
    (1184, "timestamptz", 8, "D"),
    (1186, "interval", 16, "T"),
    (1700, "numeric", -1, "N"),
    (3802, "jsonb", -1, "U"),
];

/// `format_type(oid, typmod)`: the SQL name of a type.
pub(crate) fn format_type(oid: i64) -> Option<&'static str> {
    Some(match oid {
        16 => "boolean",
        17 => "bytea",
        18 => "\"char\"",
        19 => "name",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1043 => "character varying",
        1082 => "date",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1186 => "interval",
        1700 => "numeric",
        3802 => "jsonb",
        _ => return None,
    })
}

/// Builds rows into a batch.
struct Builder {
    schema: Vec<OutCol>,
    rows: Vec<Vec<Scalar>>,
}

impl Builder {
    fn new(cols: &[(&str, SqlType)]) -> Builder {
        Builder { schema: cols.iter().map(|(n, t)| OutCol { name: n.to_string(), ty: *t }).collect(), rows: Vec::new() }
    }
    fn row(&mut self, r: Vec<Scalar>) {
        debug_assert_eq!(r.len(), self.schema.len());
        self.rows.push(r);
    }
    fn finish(self) -> SqlResult<(Vec<OutCol>, Batch)> {
        let mut columns = Vec::with_capacity(self.schema.len());
        for (i, c) in self.schema.iter().enumerate() {
            let vals: Vec<Scalar> = self.rows.iter().map(|r| r[i].clone()).collect();
            columns.push(scalars_to_column(&vals, c.ty)?);
        }
        let fields = self.schema.iter().zip(&columns).map(|(c, col)| Field::new(&c.name, col.data_type())).collect();
        Ok((self.schema, Batch { fields, columns }))
    }
}

fn t(s: &str) -> Scalar {
    Scalar::Text(s.to_string())
}
fn i(v: i64) -> Scalar {
    Scalar::Int(v)
}
fn b(v: bool) -> Scalar {
    Scalar::Bool(v)
}
const N: Scalar = Scalar::Null;

/// The catalog relation `schema.name`, if there is one. `schema` is `None` for an unqualified
/// name (pg_catalog is on the search path; information_schema is not).
pub(crate) fn relation(engine: &Engine, schema: Option<&str>, name: &str) -> SqlResult<Option<(Vec<OutCol>, Batch)>> {
    use SqlType::{Bool as B, Int2 as I2, Int4 as I4, Int8 as I8, Text as T};
    let is_info = match schema {
        Some("pg_catalog") | None => false,
        Some("information_schema") => true,
        Some(_) => return Ok(None),
    };
    let rels = || relations(engine);
    let mut out = if !is_info {
        match name {
            "pg_namespace" => {
                let mut bl = Builder::new(&[("oid", I8), ("nspname", T), ("nspowner", I8), ("nspacl", T)]);
                for (oid, n) in [
                    (NS_PG_CATALOG, "pg_catalog"),
                    (NS_PUBLIC, "public"),
                    (NS_INFORMATION_SCHEMA, "information_schema"),
                ] {
                    bl.row(vec![i(oid), t(n), i(ROLE_OID), N]);
                }
                bl
            }
            "pg_class" => {
                let mut bl = Builder::new(&[
                    ("oid", I8),
                    ("relname", T),
                    ("relnamespace", I8),
                    ("reltype", I8),
                    ("reloftype", I8),
                    ("relowner", I8),
                    ("relam", I8),
                    ("relfilenode", I8),
                    ("reltablespace", I8),
                    ("relpages", I4),
                    ("reltuples", SqlType::Float4),
                    ("reltoastrelid", I8),
                    ("relhasindex", B),
                    ("relisshared", B),
                    ("relpersistence", T),
                    ("relkind", T),
                    ("relnatts", I2),
                    ("relchecks", I2),
                    ("relhasrules", B),
                    ("relhastriggers", B),
                    ("relhassubclass", B),
                    ("relrowsecurity", B),
                    ("relforcerowsecurity", B),
                    ("relispopulated", B),
                    ("relreplident", T),
                    ("relispartition", B),
                    ("relacl", T),
                    ("reloptions", T),
                    ("relpartbound", T),
                ]);
                for r in rels() {
                    let has_key = !r.key.is_empty();
                    let row = |oid: i64, name: &str, kind: &str, am: i64, natts: i64, has_index: bool| {
                        vec![
                            i(oid),
                            t(name),
                            i(NS_PUBLIC),
                            i(0),
                            i(0),
                            i(ROLE_OID),
                            i(am),
                            i(oid),
                            i(0),
                            i(0),
                            Scalar::Float(-1.0),
                            i(0),
                            b(has_index),
                            b(false),
                            t("p"),
                            t(kind),
                            i(natts),
                            i(0),
                            b(false),
                            b(false),
                            b(false),
                            b(false),
                            b(false),
                            b(true),
                            t("d"),
                            b(false),
                            N,
                            N,
                            N,
                        ]
                    };
                    bl.row(row(r.oid, &r.name, "r", AM_HEAP, r.columns.len() as i64, has_key));
                    if has_key {
                        bl.row(row(r.oid + 1, &format!("{}_pkey", r.name), "i", AM_BTREE, r.key.len() as i64, false));
                    }
                }
                bl
            }
            "pg_attribute" => {
                let mut bl = Builder::new(&[
                    ("attrelid", I8),
                    ("attname", T),
                    ("atttypid", I8),
                    ("attstattarget", I4),
                    ("attlen", I2),
                    ("attnum", I2),
                    ("attndims", I4),
                    ("atttypmod", I4),
                    ("attnotnull", B),
                    ("atthasdef", B),
                    ("atthasmissing", B),
                    ("attidentity", T),
                    ("attgenerated", T),
                    ("attisdropped", B),
                    ("attislocal", B),
                    ("attstorage", T),
                    ("attcompression", T),
                    ("attcollation", I8),
                    ("attacl", T),
                ]);
                // (relation, name, type, number, not null, has default, length, storage, collation)
                let mut attr = |rel: i64,
                                name: &str,
                                ty: SqlType,
                                num: usize,
                                (not_null, has_def): (bool, bool),
                                len: i64,
                                storage: &str,
                                coll: i64| {
                    bl.row(vec![
                        i(rel),
                        t(name),
                        i(ty.oid() as i64),
                        i(-1),
                        i(len),
                        i(num as i64),
                        i(0),
                        i(-1),
                        b(not_null),
                        b(has_def),
                        b(false),
                        t(""),
                        t(""),
                        b(false),
                        b(true),
                        t(storage),
                        t(""),
                        i(coll),
                        N,
                    ])
                };
                for r in rels() {
                    for (k, (name, ty, not_null)) in r.columns.iter().enumerate() {
                        let len = TYPES.iter().find(|x| x.0 == ty.oid() as i64).map_or(-1, |x| x.2);
                        let coll = if ty.is_text() { COLL_DEFAULT } else { 0 };
                        let flags = (*not_null, r.default_of(k).is_some());
                        attr(r.oid, name, *ty, k + 1, flags, len, if len < 0 { "x" } else { "p" }, coll);
                    }
                    // The key index's columns.
                    for (k, &col) in r.key.iter().enumerate() {
                        let (name, ty, _) = &r.columns[col as usize - 1];
                        attr(r.oid + 1, name, *ty, k + 1, (false, false), -1, "p", 0);
                    }
                }
                bl
            }
            "pg_type" => {
                let mut bl = Builder::new(&[
                    ("oid", I8),
                    ("typname", T),
                    ("typnamespace", I8),
                    ("typowner", I8),
                    ("typlen", I2),
                    ("typbyval", B),
                    ("typtype", T),
                    ("typcategory", T),
                    ("typispreferred", B),
                    ("typisdefined", B),
                    ("typdelim", T),
                    ("typrelid", I8),
                    ("typelem", I8),
                    ("typarray", I8),
                    ("typnotnull", B),
                    ("typbasetype", I8),
                    ("typtypmod", I4),
                    ("typndims", I4),
                    ("typcollation", I8),
                ]);
                for &(oid, name, len, cat) in TYPES {
                    bl.row(vec![
                        i(oid),
                        t(name),
                        i(NS_PG_CATALOG),
                        i(ROLE_OID),
                        i(len),
                        b(len > 0 && len <= 8),
                        t("b"),
                        t(cat),
                        b(false),
                        b(true),
                        t(","),
                        i(0),
                        i(0),
                        i(0),
                        b(false),
                        i(0),
                        i(-1),
                        i(0),
                        i(if cat == "S" { COLL_DEFAULT } else { 0 }),
                    ]);
                }
                bl
            }
            "pg_index" => {
                let mut bl = Builder::new(&[
                    ("indexrelid", I8),
                    ("indrelid", I8),
                    ("indnatts", I2),
                    ("indnkeyatts", I2),
                    ("indisunique", B),
                    ("indisprimary", B),
                    ("indisexclusion", B),
                    ("indimmediate", B),
                    ("indisclustered", B),
                    ("indisvalid", B),
                    ("indisready", B),
                    ("indislive", B),
                    ("indisreplident", B),
                    ("indkey", T),
                    ("indexprs", T),
                    ("indpred", T),
                ]);
                for r in rels().into_iter().filter(|r| !r.key.is_empty()) {
                    let n = r.key.len() as i64;
                    let key = r.key.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" ");
                    bl.row(vec![
                        i(r.oid + 1),
                        i(r.oid),
                        i(n),
                        i(n),
                        b(true),
                        b(true),
                        b(false),
                        b(true),
                        b(false),
                        b(true),
                        b(true),
                        b(true),
                        b(false),
                        t(&key),
                        N,
                        N,
                    ]);
                }
                bl
            }
            "pg_constraint" => {
                let mut bl = Builder::new(&[
                    ("oid", I8),
                    ("conname", T),
                    ("connamespace", I8),
                    ("contype", T),
                    ("condeferrable", B),
                    ("condeferred", B),
                    ("convalidated", B),
                    ("conrelid", I8),
                    ("contypid", I8),
                    ("conindid", I8),
                    ("confrelid", I8),
                    ("conkey", T),
                    ("confkey", T),
                ]);
                for r in rels().into_iter().filter(|r| !r.key.is_empty()) {
                    let key = r.key.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",");
                    bl.row(vec![
                        i(r.oid + 1),
                        t(&format!("{}_pkey", r.name)),
                        i(NS_PUBLIC),
                        t("p"),
                        b(false),
                        b(false),
                        b(true),
                        i(r.oid),
                        i(0),
                        i(r.oid + 1),
                        i(0),
                        t(&format!("{{{key}}}")),
                        N,
                    ]);
                }
                bl
            }
            "pg_database" => {
                let mut bl = Builder::new(&[
                    ("oid", I8),
                    ("datname", T),
                    ("datdba", I8),
                    ("encoding", I4),
                    ("datlocprovider", T),
                    ("datistemplate", B),
                    ("datallowconn", B),
                    ("datconnlimit", I4),
                    ("datcollate", T),
                    ("datctype", T),
                    ("daticulocale", T),
                    ("datacl", T),
                ]);
                bl.row(vec![
                    i(16_383),
                    t("fleetdb"),
                    i(ROLE_OID),
                    i(6),
                    t("c"),
                    b(false),
                    b(true),
                    i(-1),
                    t("C"),
                    t("C"),
                    N,
                    N,
                ]);
                bl
            }
            "pg_am" => {
                let mut bl = Builder::new(&[("oid", I8), ("amname", T), ("amtype", T)]);
                bl.row(vec![i(AM_HEAP), t("heap"), t("t")]);
                bl.row(vec![i(AM_BTREE), t("btree"), t("i")]);
                bl
            }
            "pg_roles" | "pg_user" | "pg_authid" => {
                let mut bl = Builder::new(&[
                    ("oid", I8),
                    ("rolname", T),
                    ("usename", T),
                    ("rolsuper", B),
                    ("rolcanlogin", B),
                    ("usesuper", B),
                    ("usesysid", I8),
                ]);
                bl.row(vec![i(ROLE_OID), t("fleetdb"), t("fleetdb"), b(true), b(true), b(true), i(ROLE_OID)]);
                bl
            }
            "pg_collation" => {
                let mut bl = Builder::new(&[("oid", I8), ("collname", T), ("collnamespace", I8)]);
                bl.row(vec![i(COLL_DEFAULT), t("default"), i(NS_PG_CATALOG)]);
                bl.row(vec![i(950), t("C"), i(NS_PG_CATALOG)]);
                bl
            }
            "pg_settings" => {
                let mut bl = Builder::new(&[("name", T), ("setting", T), ("unit", T), ("category", T)]);
                for (k, v) in super::settings::DEFAULT_SETTINGS {
                    bl.row(vec![t(k), t(v), N, t("fleetdb")]);
                }
                bl
            }
            // `adbin` holds the default's SQL text, which pg_get_expr returns as it is.
            "pg_attrdef" => {
                let mut bl = Builder::new(&[("oid", I8), ("adrelid", I8), ("adnum", I2), ("adbin", T)]);
                for r in rels() {
                    for k in 0..r.columns.len() {
                        if let Some(d) = r.default_of(k) {
                            bl.row(vec![i(r.oid + 2 + k as i64), i(r.oid), i(k as i64 + 1), t(d)]);
                        }
                    }
                }
                bl
            }
            "pg_tablespace" => {
                let mut bl = Builder::new(&[("oid", I8), ("spcname", T), ("spcowner", I8)]);
                bl.row(vec![i(1663), t("pg_default"), i(ROLE_OID)]);
                bl
            }
            // Catalogs of features fleetdb does not have: the right columns, no rows.
            "pg_description" => Builder::new(&[("objoid", I8), ("classoid", I8), ("objsubid", I4), ("description", T)]),
            "pg_shdescription" => Builder::new(&[("objoid", I8), ("classoid", I8), ("description", T)]),
            "pg_inherits" => {
                Builder::new(&[("inhrelid", I8), ("inhparent", I8), ("inhseqno", I4), ("inhdetachpending", B)])
            }
            "pg_policy" => Builder::new(&[
                ("oid", I8),
                ("polname", T),
                ("polrelid", I8),
                ("polcmd", T),
                ("polpermissive", B),
                ("polroles", T),
                ("polqual", T),
                ("polwithcheck", T),
            ]),
            "pg_statistic_ext" => Builder::new(&[
                ("oid", I8),
                ("stxrelid", I8),
                ("stxname", T),
                ("stxnamespace", I8),
                ("stxstattarget", I4),
                ("stxkind", T),
            ]),
            "pg_publication" => Builder::new(&[("oid", I8), ("pubname", T), ("puballtables", B)]),
            "pg_publication_rel" => {
                Builder::new(&[("oid", I8), ("prpubid", I8), ("prrelid", I8), ("prqual", T), ("prattrs", T)])
            }
            "pg_publication_namespace" => Builder::new(&[("oid", I8), ("pnpubid", I8), ("pnnspid", I8)]),
            "pg_trigger" => Builder::new(&[("oid", I8), ("tgrelid", I8), ("tgname", T), ("tgisinternal", B)]),
            "pg_rewrite" => Builder::new(&[("oid", I8), ("rulename", T), ("ev_class", I8)]),
            "pg_extension" => Builder::new(&[("oid", I8), ("extname", T), ("extversion", T)]),
            "pg_foreign_table" => Builder::new(&[("ftrelid", I8), ("ftserver", I8)]),
            "pg_sequence" => Builder::new(&[("seqrelid", I8)]),
            "pg_proc" => Builder::new(&[("oid", I8), ("proname", T), ("pronamespace", I8), ("prorettype", I8)]),
            _ => return Ok(None),
        }
    } else {
        match name {
            "schemata" => {
                let mut bl = Builder::new(&[("catalog_name", T), ("schema_name", T), ("schema_owner", T)]);
                for n in ["information_schema", "pg_catalog", "public"] {
                    bl.row(vec![t("fleetdb"), t(n), t("fleetdb")]);
                }
                bl
            }
            "tables" => {
                let mut bl = Builder::new(&[
                    ("table_catalog", T),
                    ("table_schema", T),
                    ("table_name", T),
                    ("table_type", T),
                    ("is_insertable_into", T),
                ]);
                for r in rels() {
                    bl.row(vec![t("fleetdb"), t("public"), t(&r.name), t("BASE TABLE"), t("YES")]);
                }
                bl
            }
            "columns" => {
                let mut bl = Builder::new(&[
                    ("table_catalog", T),
                    ("table_schema", T),
                    ("table_name", T),
                    ("column_name", T),
                    ("ordinal_position", I4),
                    ("column_default", T),
                    ("is_nullable", T),
                    ("data_type", T),
                    ("character_maximum_length", I4),
                    ("numeric_precision", I4),
                    ("numeric_scale", I4),
                    ("datetime_precision", I4),
                    ("udt_name", T),
                ]);
                for r in rels() {
                    for (k, (name, ty, not_null)) in r.columns.iter().enumerate() {
                        let nullable = !*not_null;
                        let (prec, scale) = match ty {
                            SqlType::Int2 => (i(16), i(0)),
                            SqlType::Int4 => (i(32), i(0)),
                            SqlType::Int8 => (i(64), i(0)),
                            SqlType::Float4 => (i(24), N),
                            SqlType::Float8 => (i(53), N),
                            _ => (N, N),
                        };
                        let dt_prec = if ty.is_timestamp() { i(6) } else { N };
                        bl.row(vec![
                            t("fleetdb"),
                            t("public"),
                            t(&r.name),
                            t(name),
                            i(k as i64 + 1),
                            r.default_of(k).map_or(N, t),
                            t(if nullable { "YES" } else { "NO" }),
                            t(format_type(ty.oid() as i64).unwrap_or("text")),
                            N,
                            prec,
                            scale,
                            dt_prec,
                            t(TYPES.iter().find(|x| x.0 == ty.oid() as i64).map_or("text", |x| x.1)),
                        ]);
                    }
                }
                bl
            }
            "table_constraints" => {
                let mut bl = Builder::new(&[
                    ("constraint_catalog", T),
                    ("constraint_schema", T),
                    ("constraint_name", T),
                    ("table_catalog", T),
                    ("table_schema", T),
                    ("table_name", T),
                    ("constraint_type", T),
                ]);
                for r in rels().into_iter().filter(|r| !r.key.is_empty()) {
                    let c = format!("{}_pkey", r.name);
                    bl.row(vec![
                        t("fleetdb"),
                        t("public"),
                        t(&c),
                        t("fleetdb"),
                        t("public"),
                        t(&r.name),
                        t("PRIMARY KEY"),
                    ]);
                }
                bl
            }
            "key_column_usage" => {
                let mut bl = Builder::new(&[
                    ("constraint_catalog", T),
                    ("constraint_schema", T),
                    ("constraint_name", T),
                    ("table_catalog", T),
                    ("table_schema", T),
                    ("table_name", T),
                    ("column_name", T),
                    ("ordinal_position", I4),
                ]);
                for r in rels() {
                    for (k, &col) in r.key.iter().enumerate() {
                        bl.row(vec![
                            t("fleetdb"),
                            t("public"),
                            t(&format!("{}_pkey", r.name)),
                            t("fleetdb"),
                            t("public"),
                            t(&r.name),
                            t(&r.columns[col as usize - 1].0),
                            i(k as i64 + 1),
                        ]);
                    }
                }
                bl
            }
            "views" => Builder::new(&[("table_catalog", T), ("table_schema", T), ("table_name", T)]),
            _ => return Ok(None),
        }
    };
    out.rows.shrink_to_fit();
    out.finish().map(Some)
}
