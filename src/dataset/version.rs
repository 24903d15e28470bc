//! A dataset's versions: their states and metadata, and the versions file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::query::plan::OutCol;
use crate::query::types::SqlType;
use crate::util::bytes::{ByteReader, PutBytes};
use crate::util::recfile;
use crate::util::time::now_micros;

const VERSIONS_MAGIC: [u8; 8] = *b"FLEETDSV";
/// Version 2 of the versions file adds each version's delta window and row counts.
const VERSIONS_VERSION: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionState {
    Creating,
    Succeeded,
    Failed,
}

impl VersionState {
    pub fn name(self) -> &'static str {
        match self {
            VersionState::Creating => "CREATING",
            VersionState::Succeeded => "SUCCEEDED",
            VersionState::Failed => "FAILED",
        }
    }
}

/// One version of a dataset's content.
#[derive(Clone, Debug)]
pub struct Version {
    pub id: u64,
    pub schedule_time: i64,
    pub created: i64,
    pub completed: Option<i64>,
    pub state: VersionState,
    pub reason: String,
    pub rows: u64,
    /// The content's columns and their SQL types.
    pub columns: Vec<OutCol>,
    /// The delta window `[from, to)` the run read (`from` is `i64::MIN` for the first).
    pub window: Option<(i64, i64)>,
    /// Rows in the window when it was materialized, plus late rows already reported.
    pub input_rows: u64,
    /// Rows that arrived into the window after it was materialized (reported as late_data).
    pub late_rows: u64,
    pub refresh: Refresh,
}

/// How a version's content was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// The whole query (or the whole program run).
    Full,
    /// The query over the run's delta window.
    Delta,
    /// Only the time buckets of changed partitions; the rest kept from the previous version.
    Incremental,
}

impl Refresh {
    pub fn name(self) -> &'static str {
        match self {
            Refresh::Full => "full",
            Refresh::Delta => "delta",
            Refresh::Incremental => "incremental",
        }
    }
}

impl Version {
    pub(super) fn new(id: u64, schedule_time: i64) -> Version {
        Version {
            id,
            schedule_time,
            created: now_micros(),
            completed: None,
            state: VersionState::Creating,
            reason: String::new(),
            rows: 0,
            columns: Vec::new(),
            window: None,
            input_rows: 0,
            late_rows: 0,
            refresh: Refresh::Full,
        }
    }
}

pub(super) fn dataset_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("datasets").join(name)
}

pub(super) fn save_versions(dir: &Path, versions: &[Version]) -> Result<()> {
    let mut b = Vec::new();
    b.put_u32(versions.len() as u32);
    for v in versions {
        b.put_u64(v.id);
        b.put_i64(v.schedule_time);
        b.put_i64(v.created);
        b.put_i64(v.completed.unwrap_or(i64::MIN));
        b.put_u8(v.state as u8);
        b.put_u64(v.rows);
        b.put_bytes32(v.reason.as_bytes());
        b.put_u32(v.columns.len() as u32);
        for c in &v.columns {
            b.put_str16(&c.name);
            b.put_str16(c.ty.pg_name());
        }
        let (from, to) = v.window.unwrap_or((i64::MIN, i64::MIN));
        b.put_u8(v.window.is_some() as u8);
        b.put_i64(from);
        b.put_i64(to);
        b.put_u64(v.input_rows);
        b.put_u64(v.late_rows);
        b.put_u8(v.refresh as u8);
    }
    recfile::write(&dir.join("versions"), &VERSIONS_MAGIC, VERSIONS_VERSION, &b)
}

pub(super) fn load_versions(dir: &Path) -> Result<Vec<Version>> {
    let path = dir.join("versions");
    // Version 1 files (no windows) are read as they are; the next write makes them version 2.
    let (format, body) = match recfile::read(&path, &VERSIONS_MAGIC, VERSIONS_VERSION, "dataset versions") {
        Ok(None) => return Ok(Vec::new()),
        Ok(Some(body)) => (VERSIONS_VERSION, body),
        Err(Error::UnsupportedVersion { found: 1, .. }) => {
            (1, recfile::read(&path, &VERSIONS_MAGIC, 1, "dataset versions")?.unwrap_or_default())
        }
        Err(e) => return Err(e),
    };
    let bad = || Error::corrupt(&path, "dataset versions");
    let mut r = ByteReader::new(&body);
    let text = |r: &mut ByteReader<'_>| r.bytes32().and_then(|b| String::from_utf8(b.to_vec()).ok());
    let mut out = Vec::new();
    for _ in 0..r.u32().ok_or_else(bad)? {
        let (id, schedule_time, created, completed) =
            (r.u64().ok_or_else(bad)?, r.i64().ok_or_else(bad)?, r.i64().ok_or_else(bad)?, r.i64().ok_or_else(bad)?);
        let state = match r.u8().ok_or_else(bad)? {
            0 => VersionState::Creating,
            1 => VersionState::Succeeded,
            2 => VersionState::Failed,
            _ => return Err(bad()),
        };
        let rows = r.u64().ok_or_else(bad)?;
        let reason = text(&mut r).ok_or_else(bad)?;
        let mut columns = Vec::new();
        for _ in 0..r.u32().ok_or_else(bad)? {
            let name = r.str16().ok_or_else(bad)?.to_string();
            let ty = SqlType::from_name(r.str16().ok_or_else(bad)?).ok_or_else(bad)?;
            columns.push(OutCol { name, ty });
        }
        let completed = (completed != i64::MIN).then_some(completed);
        let mut v =
            Version { id, schedule_time, created, completed, state, reason, rows, columns, ..Version::new(0, 0) };
        if format >= 2 {
            let has_window = r.u8().ok_or_else(bad)? == 1;
            let (from, to) = (r.i64().ok_or_else(bad)?, r.i64().ok_or_else(bad)?);
            v.window = has_window.then_some((from, to));
            (v.input_rows, v.late_rows) = (r.u64().ok_or_else(bad)?, r.u64().ok_or_else(bad)?);
            v.refresh = match r.u8().ok_or_else(bad)? {
                0 => Refresh::Full,
                1 => Refresh::Delta,
                2 => Refresh::Incremental,
                _ => return Err(bad()),
            };
        }
        out.push(v);
    }
    Ok(out)
}
