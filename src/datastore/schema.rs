//! Schema evolution. A datastore's schema is the union of the columns ever written. The rule
//! for a value whose type differs from its column's (documented in storage-format.md):
//!
//! 1. int into a float column: widened to float.
//! 2. float into an int column: the column becomes float; older files' ints read as floats.
//! 3. anything else (text into float, …): stored in a companion column `<name>__<type>`
//!    (`temperature__text`), so nothing is lost and the original column keeps its type.

use crate::batch::{Batch, DataType, Field};

/// Adapts `batch` to `schema` by the rules above and extends `schema` with new columns.
pub fn reconcile(schema: &mut Vec<Field>, batch: Batch) -> Batch {
    let mut out = Batch::default();
    for (f, col) in batch.fields.into_iter().zip(batch.columns) {
        let mut name = f.name;
        let mut col = col;
        loop {
            match schema.iter_mut().find(|s| s.name == name) {
                None => {
                    schema.push(Field { name: name.clone(), data_type: col.data_type() });
                    break;
                }
                Some(s) if s.data_type == col.data_type() => break,
                Some(s) if s.data_type == DataType::Float64 && col.data_type() == DataType::Int64 => {
                    col = col.widen_to_float();
                    break;
                }
                Some(s) if s.data_type == DataType::Int64 && col.data_type() == DataType::Float64 => {
                    s.data_type = DataType::Float64;
                    break;
                }
                Some(_) => name = format!("{name}__{}", col.data_type().short_name()),
            }
        }
        if out.column_index(&name).is_none() {
            out.fields.push(Field { name, data_type: col.data_type() });
            out.columns.push(col);
        }
    }
    out
}

/// Casts `batch` to `schema`'s types (int to float) and orders its columns as `schema`,
/// adding null columns for those it lacks.
pub(super) fn conform(schema: &[Field], batch: &Batch) -> Batch {
    let mut out = Batch::default();
    for f in schema {
        out.fields.push(f.clone());
        out.columns.push(conform_column(f, batch));
    }
    out
}

/// Column `f` of `batch` as the schema has it (see [`conform`]).
pub fn conform_column(f: &Field, batch: &Batch) -> crate::batch::Column {
    match batch.column(&f.name) {
        Some(c) if c.data_type() == f.data_type => c.clone(),
        Some(c) if f.data_type == DataType::Float64 && c.data_type() == DataType::Int64 => c.clone().widen_to_float(),
        _ => crate::batch::Column::nulls(f.data_type, batch.num_rows()),
    }
}

/// Columns every row a pipeline writes carries: the pipeline's id and the channel offset of
/// the message the row came from. REPROCESS finds the rows to replace by them. Queries see
/// them only by name: `SELECT *` and the catalogs leave them out.
pub const LINEAGE_PIPELINE: &str = "__pipeline_id";
pub const LINEAGE_OFFSET: &str = "__offset";

/// Whether a datastore column is a lineage column.
pub fn is_lineage(name: &str) -> bool {
    name == LINEAGE_PIPELINE || name == LINEAGE_OFFSET
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Column, Values};

    fn one(name: &str, v: Values) -> Batch {
        Batch::try_new(vec![Field::new(name, v.data_type())], vec![Column::new(v)]).unwrap()
    }

    #[test]
    fn type_conflicts_follow_the_rule() {
        let mut schema = vec![Field::new("t", DataType::Float64)];
        let b = reconcile(&mut schema, one("t", Values::Int64(vec![3])));
        assert_eq!(b.columns[0].values, Values::Float64(vec![3.0]));
        let b = reconcile(&mut schema, one("t", Values::Text(["hot"].into_iter().collect())));
        assert_eq!(b.fields[0].name, "t__text");
        assert_eq!(schema.len(), 2);
        let mut schema = vec![Field::new("n", DataType::Int64)];
        reconcile(&mut schema, one("n", Values::Float64(vec![1.5])));
        assert_eq!(schema[0].data_type, DataType::Float64);
        let c = conform(&schema, &one("n", Values::Int64(vec![2])));
        assert_eq!(c.columns[0].values, Values::Float64(vec![2.0]));
    }
}
