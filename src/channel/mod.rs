//! Channels: the raw message archive. Messages get consecutive offsets, are buffered in memory
//! (and in the WAL), and are sealed into immutable, lz4-compressed, day-partitioned segment
//! files. [`Channel`] is the handle; [`Messages`] the columnar batch of messages; [`segment`]
//! the file format.

mod archive;
mod messages;
pub mod segment;

pub use archive::{Channel, ChannelOptions, ChannelStats};
pub use messages::Messages;
pub use segment::ChSegment;
