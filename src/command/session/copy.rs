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
                self.copying = None;
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

    /// Loads a piece of the data of a COPY FROM STDIN; returns the number of rows. A COPY of
    /// several pieces keeps the memory a piece frees for the next (giving it back and faulting
    /// it in again would cost as much as parsing), and gives it back after its last.
    pub fn copy_in(&mut self, spec: &CopyIn, data: &[u8], piece: CopyPiece) -> SqlResult<usize> {
        let limits = self.limits.clone();
        crate::query::guard::run_guarded(&limits, || {
            let run = self.copying.get_or_insert_with(CopyRun::default);
            run.pieces += 1;
            match piece {
                CopyPiece::More => crate::query::guard::release_at_end(false),
                CopyPiece::Last if run.pieces > 1 => crate::query::guard::release_at_end(true),
                CopyPiece::Last => {}
            }
            // Parsed, a piece is a string per field and then a value per field: about three
            // times its bytes and a few dozen bytes per field, charged before it is parsed.
            let lines = crate::util::bytes::count_byte(data, b'\n') + 1;
            crate::query::guard::charge(data.len().saturating_mul(3).saturating_add(lines * spec.width.max(1) * 64))?;
            let loaded = self.copy_in_piece(spec, data, piece);
            if loaded.is_err() || piece == CopyPiece::Last {
                // The COPY ends here: rows gathered and not written are dropped with it.
                self.copying = None;
            }
            if loaded.is_err() {
                crate::query::guard::release_at_end(true);
            }
            loaded
        })
    }

    /// Ends a COPY FROM STDIN the client gave up (CopyFail): what was gathered is dropped.
    pub fn copy_abort(&mut self) {
        self.copying = None;
    }

    fn copy_in_piece(&mut self, spec: &CopyIn, data: &[u8], piece: CopyPiece) -> SqlResult<usize> {
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
        // Into a datastore, the time and the columns it has already typed are parsed as they
        // are read (on the parser's threads); the others stay text, typed as INSERT types them.
        use crate::query::copy::CopyKind;
        let mut kinds = vec![CopyKind::Text; spec.width];
        // Whether every column is one the datastore has typed (then a COPY of several pieces
        // goes straight to files, see below).
        let mut all_known = false;
        let ds = self.engine.datastore(&spec.target).ok();
        if let Some(ds) = &ds
            && spec.columns.len() == spec.width
        {
            let existing = ds.schema();
            all_known = true;
            for (k, c) in kinds.iter_mut().zip(&spec.columns) {
                let stored = existing.iter().find(|f| f.name == *c).map(|f| f.data_type);
                all_known &= stored.is_some();
                *k = match (c.as_str(), stored) {
                    ("time", _) | (_, Some(crate::batch::DataType::Timestamp)) => CopyKind::Timestamp,
                    (_, Some(crate::batch::DataType::Float64)) => CopyKind::Float8,
                    (_, Some(crate::batch::DataType::Int64)) => CopyKind::Int8,
                    _ => CopyKind::Text,
                };
            }
        }
        let columns = crate::query::copy::parse_typed(&spec.format, data, &kinds)?;
        let fields = columns.iter().enumerate().map(|(c, col)| Field::new(&format!("c{c}"), col.data_type())).collect();
        let schema: Vec<OutCol> = kinds
            .iter()
            .enumerate()
            .map(|(c, k)| OutCol {
                name: format!("c{c}"),
                ty: if *k == CopyKind::Text { SqlType::Unknown } else { k.sql_type() },
            })
            .collect();
        let batch = Batch { fields, columns };
        let bulk = self.copying.as_ref().is_some_and(|r| r.bulk.is_some());
        match ds {
            // A COPY of more than one piece into a datastore whose columns are all known is a
            // bulk load: its rows go to files without the log (see `Bulk`). A COPY of one piece
            // (or one that brings new columns) is appended and logged as INSERT is.
            Some(ds) if all_known && (piece == CopyPiece::More || bulk) => {
                let batch = super::write::datastore_batch(&ds.schema(), &spec.columns, &schema, batch, true)?;
                ds.check_rows(&batch)?;
                let n = batch.num_rows();
                let threshold = ds.options().memtable_rows.max(1);
                let (engine, pool) = (self.engine.clone(), self.services.pool.clone());
                let run = self.copying.get_or_insert_with(CopyRun::default);
                let b = run.bulk.get_or_insert_with(|| Bulk::new(&engine, &spec.target, &pool));
                b.push(batch, threshold)?;
                if piece == CopyPiece::Last {
                    b.finish()?;
                }
                Ok(n)
            }
            _ => self.insert_rows(&spec.target.clone(), &spec.columns, &schema, batch, false, true),
        }
    }
}

/// Which piece of a COPY's data [`Session::copy_in`] is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyPiece {
    /// More follow.
    More,
    /// The last (CopyDone came).
    Last,
}

/// A COPY FROM STDIN under way.
#[derive(Default)]
pub(super) struct CopyRun {
    pieces: usize,
    bulk: Option<Bulk>,
}

/// A bulk load: a large COPY's rows written straight to a datastore's files
/// ([`Engine::load_rows`]), skipping the log and the memtable that an INSERT's rows go
/// through. Rows are gathered up to a memtable's worth, then sorted, encoded and written on a
/// thread of their own while the next are parsed; the COPY completes when the last file is
/// durable. Rows are visible as their file is published (a COPY's rows appear piece by piece,
/// as appended ones do).
struct Bulk {
    engine: Arc<Engine>,
    target: String,
    pool: Arc<crate::util::memory::MemoryPool>,
    gathered: Vec<Batch>,
    rows: usize,
    /// The memory of the gathered rows.
    held: crate::util::memory::Reservation,
    /// The write of the rows gathered before (it holds their memory until done).
    writing: Option<std::thread::JoinHandle<crate::error::Result<usize>>>,
}

impl Bulk {
    fn new(engine: &Arc<Engine>, target: &str, pool: &Arc<crate::util::memory::MemoryPool>) -> Bulk {
        Bulk {
            engine: engine.clone(),
            target: target.to_string(),
            pool: pool.clone(),
            gathered: Vec::new(),
            rows: 0,
            held: crate::util::memory::Reservation::new(pool),
            writing: None,
        }
    }

    /// Gathers `batch`; at `threshold` rows, starts writing what was gathered. When the
    /// server's memory cannot hold more, writes what it has first.
    fn push(&mut self, batch: Batch, threshold: usize) -> SqlResult<()> {
        let want = self.held.bytes() + batch.approx_bytes();
        self.rows += batch.num_rows();
        self.gathered.push(batch);
        if !self.held.resize(want) {
            // No room to gather more: wait for the write under way, write these now.
            self.wait()?;
            let rows = self.take();
            self.engine.load_rows(&self.target, rows.0).map_err(SqlError::from)?;
            return Ok(());
        }
        if self.rows >= threshold {
            self.wait()?;
            let (rows, held) = self.take();
            let (engine, target) = (self.engine.clone(), self.target.clone());
            let spawned = std::thread::Builder::new().name("fleetdb-copy-write".into()).spawn(move || {
                let r = engine.load_rows(&target, rows);
                drop(held);
                r
            });
            match spawned {
                Ok(h) => self.writing = Some(h),
                Err(e) => return Err(SqlError::new("53000", format!("could not start a COPY writer thread: {e}"))),
            }
        }
        Ok(())
    }

    /// The rows gathered, as one batch, and their memory.
    fn take(&mut self) -> (Batch, crate::util::memory::Reservation) {
        let parts = std::mem::take(&mut self.gathered);
        self.rows = 0;
        let rows = if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            Batch::concat(&parts.iter().collect::<Vec<_>>())
        };
        (rows, std::mem::replace(&mut self.held, crate::util::memory::Reservation::new(&self.pool)))
    }

    /// Waits for the write under way; its error is the COPY's.
    fn wait(&mut self) -> SqlResult<()> {
        if let Some(h) = self.writing.take() {
            h.join().map_err(|_| SqlError::new("XX000", "a COPY writer thread failed"))?.map_err(SqlError::from)?;
        }
        Ok(())
    }

    /// Writes what is left; every row is durable when it returns.
    fn finish(&mut self) -> SqlResult<()> {
        self.wait()?;
        if self.rows > 0 {
            let (rows, _held) = self.take();
            self.engine.load_rows(&self.target, rows).map_err(SqlError::from)?;
        }
        Ok(())
    }
}
