//! COPY TO and FROM: the rows of a query or a table in COPY's text or CSV format, and rows from them.

use super::*;
use crate::batch::{Batch, Field};
use crate::query::ast;
use crate::query::copy::CopyFormat;
use crate::query::error::{SqlError, SqlResult};
use crate::query::exec::run;
use crate::query::parse::parse_query;
use crate::query::plan::OutCol;
use crate::query::scalar::{Param, Scalar};
use crate::query::types::SqlType;
use crate::util::time::now_micros;

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &mut self,
        source: &ast::CopySource,
        to: bool,
        target: &ast::CopyTarget,
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
        params: &[Param],
    ) -> SqlResult<Outcome> {
        let mut csv = false;
        let mut header = false;
        let mut delimiter = None;
        let mut null = None;
        let mut quote = '"';
        for o in options {
            match o {
                ast::CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                    "csv" => csv = true,
                    "text" => csv = false,
                    other => return Err(SqlError::unsupported(format!("COPY format {other}"))),
                },
                ast::CopyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => header = *h,
                ast::CopyOption::Quote(c) => quote = *c,
                other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
            }
        }
        for o in legacy {
            match o {
                ast::CopyLegacyOption::Csv(inner) => {
                    csv = true;
                    for i in inner {
                        match i {
                            ast::CopyLegacyCsvOption::Header => header = true,
                            ast::CopyLegacyCsvOption::Quote(c) => quote = *c,
                            other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
                        }
                    }
                }
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyLegacyOption::Header => header = true,
                other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
            }
        }
        let format = if csv {
            CopyFormat::Csv { delimiter: delimiter.unwrap_or(','), null: null.unwrap_or_default(), header, quote }
        } else {
            CopyFormat::Text { delimiter: delimiter.unwrap_or('\t'), null: null.unwrap_or_else(|| "\\N".into()) }
        };
        match (to, target) {
            (false, ast::CopyTarget::Stdin) => {
                let ast::CopySource::Table { table_name, columns } = source else {
                    return Err(SqlError::syntax("COPY FROM needs a table"));
                };
                let target = table_name.to_string().to_ascii_lowercase();
                let columns: Vec<String> = columns.iter().map(|c| c.value.to_ascii_lowercase()).collect();
                if self.engine.channel(&target).is_ok() {
                    if !(columns.is_empty() || columns == ["payload"]) || csv {
                        return Err(SqlError::syntax(format!(
                            "COPY into channel {target} takes NDJSON payloads: COPY {target} FROM STDIN"
                        )));
                    }
                    return Ok(Outcome::CopyIn(CopyIn { target, columns, format, width: 1, into_channel: true }));
                }
                let width = if !columns.is_empty() {
                    columns.len()
                } else if let Ok(t) = self.engine.table(&target) {
                    t.schema().columns.len()
                } else if self.engine.datastore(&target).is_ok() {
                    return Err(SqlError::syntax(format!(
                        "COPY into datastore {target} needs a column list, e.g. COPY {target} (time, machine_id, x) FROM STDIN"
                    )));
                } else {
                    return Err(SqlError::undefined_relation(&target));
                };
                Ok(Outcome::CopyIn(CopyIn { target, columns, format, width, into_channel: false }))
            }
            (true, ast::CopyTarget::Stdout) => {
                let sql = match source {
                    ast::CopySource::Table { table_name, columns } if columns.is_empty() => {
                        format!("SELECT * FROM {table_name}")
                    }
                    ast::CopySource::Table { table_name, columns } => {
                        format!(
                            "SELECT {} FROM {table_name}",
                            columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                        )
                    }
                    ast::CopySource::Query(q) => q.to_string(),
                };
                let (plan, schema) = self.binder(params).bind_query(&*parse_query(&sql)?)?;
                let batches = run(&plan)?;
                let mut lines = Vec::new();
                if let CopyFormat::Csv { header: true, .. } = &format {
                    let names: Vec<Option<String>> = schema.iter().map(|c| Some(c.name.clone())).collect();
                    let mut line = String::new();
                    crate::query::copy::format_row(&format, &names, &mut line);
                    lines.push(line);
                }
                // The lines are charged as they are made (in steps, not per line).
                let mut uncharged = 0usize;
                for bt in &batches {
                    for i in 0..bt.num_rows() {
                        if uncharged >= 1 << 20 {
                            crate::query::guard::charge(std::mem::take(&mut uncharged))?;
                        }
                        let fields: Vec<Option<String>> = schema
                            .iter()
                            .zip(&bt.columns)
                            .map(|(c, col)| Scalar::from_column(col, c.ty, i).to_text(c.ty))
                            .collect();
                        let mut line = String::new();
                        crate::query::copy::format_row(&format, &fields, &mut line);
                        uncharged += line.capacity() + 48;
                        lines.push(line);
                    }
                }
                Ok(Outcome::CopyOut { columns: schema.len(), lines })
            }
            _ => Err(SqlError::unsupported("COPY to or from a file on the server; use STDIN / STDOUT")),
        }
    }

    /// Loads the data of a COPY FROM STDIN; returns the number of rows.
    pub fn copy_in(&mut self, spec: &CopyIn, data: &[u8]) -> SqlResult<usize> {
        let limits = self.limits.clone();
        crate::query::guard::run_guarded(&limits, || {
            // Parsed, a piece is a string per field and then a value per field: about three
            // times its bytes and a few dozen bytes per field, charged before it is parsed.
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            crate::query::guard::charge(data.len().saturating_mul(3).saturating_add(lines * spec.width.max(1) * 64))?;
            self.copy_in_piece(spec, data)
        })
    }

    fn copy_in_piece(&mut self, spec: &CopyIn, data: &[u8]) -> SqlResult<usize> {
        if spec.into_channel {
            let start = now_micros();
            let msgs: Vec<crate::ingest::Incoming<'_>> = data
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace) && *l != b"\\.")
                .enumerate()
                .map(|(i, l)| crate::ingest::Incoming {
                    id: format!("{start:x}-{}", i + 1).into(),
                    topic: "".into(),
                    payload: l.into(),
                })
                .collect();
            return self.put_messages(&spec.target.clone(), &msgs);
        }
        let columns = crate::query::copy::parse_columns(&spec.format, data, spec.width)?;
        let fields = (0..spec.width).map(|c| Field::new(&format!("c{c}"), crate::batch::DataType::Text)).collect();
        let schema: Vec<OutCol> =
            (0..spec.width).map(|c| OutCol { name: format!("c{c}"), ty: SqlType::Unknown }).collect();
        let batch = Batch { fields, columns };
        self.insert_rows(&spec.target.clone(), &spec.columns, &schema, &batch, false, true)
    }
}
