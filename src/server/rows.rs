//! What a connection holds between messages, charged to the server's memory: [`ResultRows`],
//! a statement's result rows encoded one at a time as they are sent (the encoded result is
//! never held whole), and [`Copying`], a COPY FROM STDIN's data not loaded yet.

use pgwire::api::results::DataRowEncoder;
use pgwire::error::PgWireResult;

use super::wire::Cell;
use crate::command::session::CopyIn;
use crate::query::plan::OutCol;
use crate::query::scalar::Scalar;

/// A result's rows, encoded one at a time as they are sent: the encoded result is never held
/// whole, and each batch's bytes are given back once its rows are out.
pub(super) struct ResultRows {
    pub(super) schema: Vec<OutCol>,
    pub(super) batches: std::vec::IntoIter<crate::batch::Batch>,
    pub(super) current: Option<crate::batch::Batch>,
    pub(super) row: usize,
    pub(super) enc: DataRowEncoder,
    pub(super) held: Option<crate::util::memory::Reservation>,
}

impl Iterator for ResultRows {
    type Item = PgWireResult<pgwire::messages::data::DataRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match &self.current {
                Some(b) if self.row < b.num_rows() => {
                    for (c, col) in self.schema.iter().zip(&b.columns) {
                        let v = Scalar::from_column(col, c.ty, self.row);
                        if let Err(e) = self.enc.encode_field(&Cell { value: &v, ty: c.ty }) {
                            return Some(Err(e));
                        }
                    }
                    self.row += 1;
                    return Some(Ok(self.enc.take_row()));
                }
                _ => {
                    if let (Some(done), Some(h)) = (self.current.take(), self.held.as_mut()) {
                        h.resize(h.bytes().saturating_sub(done.approx_bytes()));
                    }
                    self.current = Some(self.batches.next()?);
                    self.row = 0;
                }
            }
        }
    }
}

/// A COPY FROM STDIN under way.
pub(super) struct Copying {
    pub(super) spec: CopyIn,
    /// Data not loaded yet: less than a chunk, or the start of a row not whole yet.
    pub(super) buf: Vec<u8>,
    /// Rows loaded so far.
    pub(super) loaded: usize,
    /// `buf`'s bytes, held from the server's memory (set up at the first data).
    pub(super) held: Option<crate::util::memory::Reservation>,
    /// The longest row taken: a query's working memory.
    pub(super) row_limit: usize,
    /// `buf`'s length when it was last looked at for whole rows and had none (a long row
    /// is looked at again only after another chunk, not at every message).
    pub(super) looked_at: usize,
}

impl Copying {
    pub(super) fn new(spec: CopyIn) -> Copying {
        Copying { spec, buf: Vec::new(), loaded: 0, held: None, row_limit: usize::MAX, looked_at: 0 }
    }
}
