//! [`Error`]: the error type of everything below the query engine (WAL, channels, datastores,
//! tables, the engine, ingest, pipelines, datasets). It separates I/O failures, corruption,
//! unsupported on-disk versions and user mistakes, and maps each, in this file only, to what
//! each protocol says: a PostgreSQL SQLSTATE ([`Error::sqlstate`]), an AWS error code
//! ([`Error::aws_code`]) and an HTTP status ([`Error::http_status`]).

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
        "{path}: {kind} format version {found} is not supported (this build reads versions up to {supported}); use a fleetdb release that matches the data directory"
    )]
    UnsupportedVersion { path: PathBuf, kind: &'static str, found: u32, supported: u32 },
    /// An object that is not there: its kind chooses the SQLSTATE (42P01 for a table, 42704
    /// for fleetdb's other objects).
    #[error("{} does not exist", kind.subject(name))]
    NotFound { kind: Object, name: String },
    #[error("{} already exists", kind.subject(name))]
    AlreadyExists { kind: Object, name: String },
    #[error("{0}")]
    Invalid(String),
    /// A constraint violation, with its SQLSTATE (23502 not-null, 23505 unique, …).
    #[error("{message}")]
    Constraint { sqlstate: &'static str, message: String },
    /// A write computed from content that changed before it could be applied.
    #[error("{0}")]
    Conflict(String),
    /// Something outside fleetdb failed: a program a dataset or LAMBDA runs, a broker or an
    /// endpoint a delivery goes to.
    #[error("{0}")]
    External(String),
    #[error("the write-ahead log failed earlier ({0}); writes are refused until fleetdb restarts and replays it")]
    WalPoisoned(String),
    /// Writes refused for a while after a restart that replayed a failed log: until the disk
    /// has room, or while an I/O error that repeated backs off.
    #[error("{why}")]
    WritesHeld { why: String, disk_full: bool },
}

/// The kinds of object an error names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object {
    Table,
    Channel,
    Datastore,
    Route,
    Pipeline,
    Dataset,
    /// A relation of any kind (a new name that one already has).
    Relation,
    /// A column; its name is the whole phrase (`column "c" of relation "r"`).
    Column,
    /// A dataset's version or content; its name is the whole phrase (`version 3 of dataset "d"`).
    DatasetVersion,
    /// A reprocessing run; its name is its id.
    Reprocessing,
}

impl Object {
    /// How a message names the object: `channel "c"`, or the phrase the name already is.
    pub fn subject(self, name: &str) -> String {
        match self {
            Object::Column | Object::DatasetVersion => name.to_string(),
            Object::Reprocessing => format!("reprocessing {name}"),
            kind => format!("{kind} \"{name}\""),
        }
    }
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Object::Table => "table",
            Object::Channel => "channel",
            Object::Datastore => "datastore",
            Object::Route => "route",
            Object::Pipeline => "pipeline",
            Object::Dataset => "dataset",
            Object::Relation => "relation",
            Object::Column => "column",
            Object::DatasetVersion => "version",
            Object::Reprocessing => "reprocessing",
        })
    }
}

impl Error {
    pub fn invalid(why: impl Into<String>) -> Self {
        Error::Invalid(why.into())
    }
    pub fn external(why: impl Into<String>) -> Self {
        Error::External(why.into())
    }
    pub fn not_found(kind: Object, name: impl Into<String>) -> Self {
        Error::NotFound { kind, name: name.into() }
    }
    pub fn already_exists(kind: Object, name: impl Into<String>) -> Self {
        Error::AlreadyExists { kind, name: name.into() }
    }
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
            Error::NotFound { kind: Object::Table | Object::Relation, .. } => "42P01", // undefined_table
            Error::NotFound { kind: Object::Column, .. } => "42703", // undefined_column
            Error::NotFound { .. } => "42704",                  // undefined_object
            // What can be queried is a relation, as PostgreSQL's tables are.
            Error::AlreadyExists {
                kind: Object::Table | Object::Channel | Object::Datastore | Object::Dataset | Object::Relation,
                ..
            } => "42P07", // duplicate_table
            Error::AlreadyExists { kind: Object::Column, .. } => "42701", // duplicate_column
            Error::AlreadyExists { .. } => "42710",                       // duplicate_object
            Error::Invalid(_) => "22023",                                 // invalid_parameter_value
            Error::Constraint { sqlstate, .. } => sqlstate,
            Error::WalPoisoned(_) if self.is_disk_full() => "53100",
            Error::WalPoisoned(_) => "58030",
            Error::WritesHeld { disk_full: true, .. } => "53100",
            Error::WritesHeld { .. } => "58030",
            Error::Conflict(_) => "40001", // serialization_failure
            Error::External(_) => "58000", // system_error
        }
    }

    /// The AWS error code (the `x-amzn-ErrorType` of an HTTP answer) for this error.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "ResourceNotFoundException",
            Error::AlreadyExists { .. } => "ResourceAlreadyExistsException",
            Error::Invalid(_) | Error::Constraint { .. } => "InvalidRequestException",
            Error::Conflict(_) => "ConflictException",
            Error::Io { .. } | Error::WalPoisoned(_) | Error::WritesHeld { .. } if self.retry_later() => {
                "ServiceUnavailableException"
            }
            _ => "InternalFailureException",
        }
    }

    /// The HTTP status of an answer carrying this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound { .. } => 404,
            Error::External(_) => 502,
            Error::AlreadyExists { .. } | Error::Conflict(_) => 409,
            Error::Invalid(_) | Error::Constraint { .. } => 400,
            _ if self.retry_later() => 503,
            _ => 500,
        }
    }

    /// Whether the same call may succeed later with nothing changed: the disk is full, or the
    /// log is refusing writes until it is replayed (which the server does by itself).
    pub fn retry_later(&self) -> bool {
        self.is_disk_full() || matches!(self, Error::WalPoisoned(_) | Error::WritesHeld { .. })
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
