//! Column batches: the unit in which rows move through fleetdb. A [`Batch`] is a list of
//! named, typed [`Column`]s of equal length; each column is one typed vector plus an optional
//! validity [`Bitmap`]. Pipelines, the WAL, the memtable and the file writer all speak batches.

mod bitmap;
mod column;
mod strvec;
mod wire;

pub use bitmap::Bitmap;
pub use column::{Batch, Column, DataType, Field, Values};
pub use strvec::{BinVec, StrVec, dictionary};
