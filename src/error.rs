//! [`Error`]: the storage layer's error type (WAL, channels, datastores, engine). It separates
//! I/O failures, corruption, unsupported on-disk versions and user mistakes, and maps each to
//! a PostgreSQL SQLSTATE for the wire ([`Error::sqlstate`]).

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt {what}; the file is refused (restore it from a backup or remove it)")]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "{path}: {kind} format version {found} is not supported (this build reads version {supported}); use a fleetdb release that matches the data directory"
    )]
    UnsupportedVersion { path: PathBuf, kind: &'static str, found: u32, supported: u32 },
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    /// A constraint violation, with its SQLSTATE (23502 not-null, 23505 unique, …).
    #[error("{message}")]
    Constraint { sqlstate: &'static str, message: String },
    /// A write computed from content that changed before it could be applied.
    #[error("{0}")]
    Conflict(String),
    #[error("the write-ahead log failed earlier ({0}); writes are refused until fleetdb restarts and replays it")]
    WalPoisoned(String),
    /// Writes refused for a while after a restart that replayed a failed log: until the disk
    /// has room, or while an I/O error that repeated backs off.
    #[error("{why}")]
    WritesHeld { why: String, disk_full: bool },
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
    pub fn corrupt(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Corrupt { path: path.as_ref().to_path_buf(), what: what.into() }
    }
    /// Whether the device is full (or a quota reached): the write may be tried again once
    /// there is room, so clients get 53100 / HTTP 503 rather than an internal error.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
            }
            Error::WalPoisoned(why) => why.contains("No space left") || why.contains("quota exceeded"),
            Error::WritesHeld { disk_full, .. } => *disk_full,
            _ => false,
        }
    }

    /// The SQLSTATE a client sees for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Io { .. } if self.is_disk_full() => "53100", // disk_full
            Error::Io { .. } => "58030",                        // io_error
            Error::Corrupt { .. } => "XX001",                   // data_corrupted
            Error::UnsupportedVersion { .. } => "XX000",        // internal_error
            Error::NotFound(_) => "42P01",                      // undefined_table
            Error::AlreadyExists(_) => "42P07",                 // duplicate_table
            Error::Invalid(_) => "22023",                       // invalid_parameter_value
            Error::Constraint { sqlstate, .. } => sqlstate,
            Error::WalPoisoned(_) if self.is_disk_full() => "53100",
            Error::WalPoisoned(_) => "58030",
            Error::WritesHeld { disk_full: true, .. } => "53100",
            Error::WritesHeld { .. } => "58030",
            Error::Conflict(_) => "40001", // serialization_failure
        }
    }
}

/// Attaches a path to I/O results.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
