//! [`Column`], [`Values`], [`DataType`] and [`Batch`].

use super::{Bitmap, StrVec};

/// The storage types. Their numbers are written on disk and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool = 1,
    Int64 = 2,
    Float64 = 3,
    Text = 4,
    Timestamp = 5,
}

impl DataType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => DataType::Bool,
            2 => DataType::Int64,
            3 => DataType::Float64,
            4 => DataType::Text,
            5 => DataType::Timestamp,
            _ => return None,
        })
    }
    /// The SQL name users see.
    pub fn sql_name(self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int64 => "bigint",
            DataType::Float64 => "double precision",
            DataType::Text => "text",
            DataType::Timestamp => "timestamptz",
        }
    }
    /// Short name used in the suffix of conflict columns (`temperature__text`).
    pub fn short_name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int64 => "int",
            DataType::Float64 => "float",
            DataType::Text => "text",
            DataType::Timestamp => "timestamp",
        }
    }
}

/// The typed values of a column. Positions that are null hold an arbitrary value.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    Bool(Vec<bool>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Text(StrVec),
    Timestamp(Vec<i64>),
}

impl Values {
    pub fn new(t: DataType) -> Self {
        match t {
            DataType::Bool => Values::Bool(Vec::new()),
            DataType::Int64 => Values::Int64(Vec::new()),
            DataType::Float64 => Values::Float64(Vec::new()),
            DataType::Text => Values::Text(StrVec::default()),
            DataType::Timestamp => Values::Timestamp(Vec::new()),
        }
    }
    pub fn data_type(&self) -> DataType {
        match self {
            Values::Bool(_) => DataType::Bool,
            Values::Int64(_) => DataType::Int64,
            Values::Float64(_) => DataType::Float64,
            Values::Text(_) => DataType::Text,
            Values::Timestamp(_) => DataType::Timestamp,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Values::Bool(v) => v.len(),
            Values::Int64(v) | Values::Timestamp(v) => v.len(),
            Values::Float64(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends `n` default values (used under null positions).
    fn push_defaults(&mut self, n: usize) {
        match self {
            Values::Bool(v) => v.resize(v.len() + n, false),
            Values::Int64(v) | Values::Timestamp(v) => v.resize(v.len() + n, 0),
            Values::Float64(v) => v.resize(v.len() + n, 0.0),
            Values::Text(v) => (0..n).for_each(|_| v.push("")),
        }
    }
    /// Room for `n` more fixed-width values (text grows as it is appended).
    fn reserve(&mut self, n: usize) {
        match self {
            Values::Bool(v) => v.reserve(n),
            Values::Int64(v) | Values::Timestamp(v) => v.reserve(n),
            Values::Float64(v) => v.reserve(n),
            Values::Text(_) => {}
        }
    }
    /// Values at `idx`, in that order.
    fn take(&self, idx: &[u32]) -> Values {
        match self {
            Values::Bool(v) => Values::Bool(idx.iter().map(|&i| v[i as usize]).collect()),
            Values::Int64(v) => Values::Int64(idx.iter().map(|&i| v[i as usize]).collect()),
            Values::Timestamp(v) => Values::Timestamp(idx.iter().map(|&i| v[i as usize]).collect()),
            Values::Float64(v) => Values::Float64(idx.iter().map(|&i| v[i as usize]).collect()),
            Values::Text(v) => Values::Text(v.take(idx)),
        }
    }
    /// Appends `other`, which must be of the same type (checked by the caller).
    fn extend(&mut self, other: &Values) {
        match (self, other) {
            (Values::Bool(a), Values::Bool(b)) => a.extend_from_slice(b),
            (Values::Int64(a), Values::Int64(b)) => a.extend_from_slice(b),
            (Values::Timestamp(a), Values::Timestamp(b)) => a.extend_from_slice(b),
            (Values::Float64(a), Values::Float64(b)) => a.extend_from_slice(b),
            (Values::Text(a), Values::Text(b)) => a.extend(b),
            (a, b) => unreachable!("extend {:?} with {:?}", a.data_type(), b.data_type()),
        }
    }
}

/// One column: values plus validity (`None` means every value is present).
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub values: Values,
    pub validity: Option<Bitmap>,
}

impl Column {
    pub fn new(values: Values) -> Self {
        Column { values, validity: None }
    }
    pub fn with_validity(values: Values, validity: Option<Bitmap>) -> Self {
        let validity = validity.filter(|b| b.count_unset() > 0);
        Column { values, validity }
    }
    /// A column of `n` nulls.
    pub fn nulls(t: DataType, n: usize) -> Self {
        let mut values = Values::new(t);
        values.push_defaults(n);
        Column { values, validity: Some(Bitmap::new_unset(n)) }
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn data_type(&self) -> DataType {
        self.values.data_type()
    }
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.validity.as_ref().is_none_or(|b| b.get(i))
    }
    pub fn null_count(&self) -> usize {
        self.validity.as_ref().map_or(0, |b| b.count_unset())
    }
    pub fn take(&self, idx: &[u32]) -> Column {
        // A column of NULLs only (such as a column the query does not read) stays one.
        if self.validity.as_ref().is_some_and(|b| b.count_unset() == self.len()) && !self.is_empty() {
            return Column::nulls(self.data_type(), idx.len());
        }
        let validity = self.validity.as_ref().map(|b| {
            let mut out = Bitmap::new_unset(idx.len());
            for (o, &i) in idx.iter().enumerate() {
                out.set(o, b.get(i as usize));
            }
            out
        });
        Column::with_validity(self.values.take(idx), validity)
    }
    /// Keeps only rows `from..to` (in place, without an index of them).
    pub fn keep_range(&mut self, from: usize, to: usize) {
        if from == 0 && to == self.len() {
            return;
        }
        if let Some(b) = &self.validity {
            if b.count_unset() == self.len() {
                *self = Column::nulls(self.data_type(), to - from);
                return;
            }
            self.validity = Some(b.range(from, to));
        }
        match &mut self.values {
            Values::Bool(v) => {
                v.truncate(to);
                v.drain(..from);
            }
            Values::Int64(v) | Values::Timestamp(v) => {
                v.truncate(to);
                v.drain(..from);
            }
            Values::Float64(v) => {
                v.truncate(to);
                v.drain(..from);
            }
            Values::Text(v) => v.keep_range(from, to),
        }
    }
    /// Appends `other` (same type).
    pub fn extend(&mut self, other: &Column) {
        let before = self.len();
        // A column of NULLs (or of none) takes the other's type: it holds no value to convert.
        if self.data_type() != other.data_type() {
            if other.null_count() == other.len() {
                return self.extend_nulls(other.len());
            }
            if self.null_count() == before {
                let mut typed = Column::nulls(other.data_type(), before);
                typed.extend(other);
                *self = typed;
                return;
            }
        }
        if self.validity.is_some() || other.validity.is_some() {
            let mut v = self.validity.take().unwrap_or_else(|| Bitmap::new_set(before));
            match &other.validity {
                Some(o) => v.append(o),
                None => v.push_n(other.len(), true),
            }
            self.validity = Some(v);
        }
        self.values.extend(&other.values);
    }
    /// Appends `n` nulls.
    pub fn extend_nulls(&mut self, n: usize) {
        let before = self.len();
        let mut v = self.validity.take().unwrap_or_else(|| Bitmap::new_set(before));
        v.push_n(n, false);
        self.values.push_defaults(n);
        self.validity = Some(v);
    }
    /// Widens an `Int64` column to `Float64`; other types are returned unchanged.
    pub fn widen_to_float(self) -> Column {
        match self.values {
            Values::Int64(v) => {
                Column { values: Values::Float64(v.into_iter().map(|x| x as f64).collect()), validity: self.validity }
            }
            _ => self,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub data_type: DataType,
}

impl Field {
    pub fn new(name: &str, data_type: DataType) -> Self {
        Field { name: name.to_string(), data_type }
    }
}

/// Named columns of equal length.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Batch {
    pub fields: Vec<Field>,
    pub columns: Vec<Column>,
}

impl Batch {
    /// Builds a batch; `None` if lengths or types disagree or a name repeats.
    pub fn try_new(fields: Vec<Field>, columns: Vec<Column>) -> Option<Self> {
        if fields.len() != columns.len() {
            return None;
        }
        let n = columns.first().map_or(0, |c| c.len());
        for (f, c) in fields.iter().zip(&columns) {
            if c.len() != n || c.data_type() != f.data_type {
                return None;
            }
            if let Some(v) = &c.validity
                && v.len() != n
            {
                return None;
            }
        }
        for (i, f) in fields.iter().enumerate() {
            if fields[..i].iter().any(|g| g.name == f.name) {
                return None;
            }
        }
        Some(Batch { fields, columns })
    }
    pub fn num_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.len())
    }
    /// Approximate bytes of the values in memory (validity bitmaps included).
    pub fn approx_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(|c| {
                let v = match &c.values {
                    Values::Bool(v) => v.len(),
                    Values::Int64(v) | Values::Timestamp(v) => v.len() * 8,
                    Values::Float64(v) => v.len() * 8,
                    Values::Text(v) => v.heap_bytes(),
                };
                v + c.len() / 8
            })
            .sum()
    }
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.column_index(name).map(|i| &self.columns[i])
    }
    pub fn take(&self, idx: &[u32]) -> Batch {
        Batch { fields: self.fields.clone(), columns: self.columns.iter().map(|c| c.take(idx)).collect() }
    }
    /// Concatenates batches by column name into the union of their schemas; a column missing
    /// from a batch is null for its rows. All batches must agree on each name's type.
    pub fn concat(batches: &[&Batch]) -> Batch {
        let mut out = Batch::default();
        let mut rows = 0;
        for b in batches {
            for (f, c) in b.fields.iter().zip(&b.columns) {
                match out.column_index(&f.name) {
                    Some(i) => out.columns[i].extend(c),
                    None => {
                        let mut col = Column::nulls(f.data_type, rows);
                        col.validity = (rows > 0).then(|| Bitmap::new_unset(rows));
                        // Room for every batch's rows at once, not grown (and copied) batch by batch.
                        col.values.reserve(batches.iter().map(|b| b.num_rows()).sum::<usize>() - rows);
                        col.extend(c);
                        out.fields.push(f.clone());
                        out.columns.push(col);
                    }
                }
            }
            let n = b.num_rows();
            for (f, c) in out.fields.iter().zip(out.columns.iter_mut()) {
                if b.column_index(&f.name).is_none() {
                    c.extend_nulls(n);
                }
            }
            rows += n;
        }
        for c in &mut out.columns {
            if c.validity.as_ref().is_some_and(|v| v.count_unset() == 0) {
                c.validity = None;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_of_nulls_takes_the_type_it_is_extended_with() {
        let mut c = Column::nulls(DataType::Bool, 2);
        c.extend(&Column::new(Values::Int64(vec![7])));
        assert_eq!(c.data_type(), DataType::Int64);
        assert_eq!((c.len(), c.null_count(), c.is_valid(2)), (3, 2, true));
        let mut c = Column::new(Values::Float64(vec![1.5]));
        c.extend(&Column::nulls(DataType::Bool, 2));
        assert_eq!((c.data_type(), c.len(), c.null_count()), (DataType::Float64, 3, 2));
    }

    #[test]
    fn concat_fills_missing_columns_with_nulls() {
        let a = Batch::try_new(vec![Field::new("x", DataType::Int64)], vec![Column::new(Values::Int64(vec![1, 2]))])
            .unwrap();
        let b = Batch::try_new(
            vec![Field::new("y", DataType::Text)],
            vec![Column::new(Values::Text(["p"].into_iter().collect()))],
        )
        .unwrap();
        let c = Batch::concat(&[&a, &b]);
        assert_eq!(c.num_rows(), 3);
        let x = c.column("x").unwrap();
        assert!(x.is_valid(1) && !x.is_valid(2));
        let y = c.column("y").unwrap();
        assert!(!y.is_valid(0) && y.is_valid(2));
        assert_eq!(c.take(&[2, 0]).column("x").unwrap().null_count(), 1);
    }
}
