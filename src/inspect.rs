//! Dumps and verifies any fleetdb data file, recognised by its magic: WAL segments, channel
//! segments, datastore files, options files, request id files (and the empty lock file). Used by `fleetdb inspect`.

use std::fmt::Write as _;
use std::path::Path;

use crate::channel::{ChSegment, segment};
use crate::datastore::{DsFile, file};
use crate::engine::records;
use crate::error::{Error, IoContext, Result};
use crate::objects;
use crate::util::time::{day_name, format_timestamp};
use crate::wal::{self, SegmentScan};

/// What `inspect` prints; `verify` also decodes every block.
pub fn inspect(path: &Path, verify: bool) -> Result<String> {
    let bytes = std::fs::read(path).at(path)?;
    let mut out = String::new();
    let magic: &[u8] = bytes.get(..8).unwrap_or(&[]);
    if magic == wal::format::MAGIC {
        inspect_wal(path, &bytes, &mut out)?;
    } else if magic == segment::MAGIC {
        let seg = ChSegment::open(path)?;
        let m = &seg.meta;
        let _ = writeln!(out, "channel segment {} (format version {})", path.display(), segment::VERSION);
        let _ = writeln!(
            out,
            "partition {}  offsets {}..{}  messages {}  payload bytes {}  file bytes {}  max LSN {}",
            day_name(m.day),
            m.first_offset,
            m.end_offset(),
            m.count,
            m.payload_bytes,
            m.file_len,
            m.max_lsn
        );
        if m.count > 0 {
            let _ = writeln!(out, "received {} .. {}", format_timestamp(m.min_time), format_timestamp(m.max_time));
        }
        for (i, b) in m.blocks.iter().enumerate() {
            let _ = writeln!(
                out,
                "  block {i}: offsets {}..{}  bytes {} (raw {})  crc {:08x}",
                b.first_offset,
                b.first_offset + b.count as u64,
                b.stored_len,
                if b.raw_len == 0 { b.stored_len } else { b.raw_len },
                b.crc
            );
        }
        if verify {
            seg.verify()?;
            let _ = writeln!(out, "verified: every block checksum and decoding is sound");
        }
    } else if magic == file::MAGIC {
        let f = DsFile::open(path)?;
        let m = &f.meta;
        let _ = writeln!(out, "datastore file {} (format version {})", path.display(), file::VERSION);
        let _ = writeln!(
            out,
            "partition {}  seq {}  rows {}  blocks {} (at most {} rows each)  bytes {}  max LSN {}  sort key {:?}",
            day_name(m.spec.day),
            m.spec.seq,
            m.rows,
            m.num_blocks(),
            m.block_rows,
            m.file_len,
            m.spec.max_lsn,
            m.spec.sort_key
        );
        let _ = writeln!(out, "time {} .. {}", format_timestamp(m.min_time), format_timestamp(m.max_time));
        if !m.spec.replaces.is_empty() {
            let _ = writeln!(out, "replaces files {:?}", m.spec.replaces);
        }
        for (s, o) in &m.spec.sources {
            let _ = writeln!(out, "source {s} consumed through offset {o}");
        }
        for c in &m.columns {
            let bytes: u64 = c.blocks.iter(f.bytes()).map(|b| b.stored_len as u64).sum::<u64>() + c.dict.1 as u64;
            let mut encs: Vec<&str> = c.blocks.iter(f.bytes()).map(|b| b.encoding.name()).collect();
            encs.dedup();
            let _ = writeln!(
                out,
                "  column {:<16} {:<16} nulls {:<8} bytes {:<10} ({:.3} B/value) {}{}",
                c.name,
                c.data_type.sql_name(),
                c.null_count,
                bytes,
                bytes as f64 / m.rows.max(1) as f64,
                encs.join(","),
                if c.dict.1 > 0 { " +dictionary/tag index" } else { "" }
            );
        }
        if verify {
            f.verify()?;
            let _ = writeln!(out, "verified: every block and tag index checksum and decoding is sound");
        }
    } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("next-segment.")) {
        let zero = bytes.iter().all(|&b| b == 0);
        let _ = writeln!(
            out,
            "preallocated WAL segment {} ({} bytes, not in use yet): {}",
            path.display(),
            bytes.len(),
            if zero { "all zero, as expected" } else { "NOT all zero (it is rewritten before use)" }
        );
    } else if magic == b"FLEETDIR" {
        let v = crate::util::bytes::u32_at(&bytes, 8).unwrap_or(0);
        let _ = writeln!(out, "data directory marker {} (layout version {v}, {} bytes)", path.display(), bytes.len());
    } else if magic == b"FLEETFLR" {
        let ok = bytes.len() == 20
            && crate::util::bytes::crc32(&bytes[..16]) == crate::util::bytes::u32_at(&bytes, 16).unwrap_or(0);
        if !ok {
            return Err(Error::corrupt(path, "retention floor file"));
        }
        let day = crate::util::bytes::u32_at(&bytes, 12).unwrap_or(0) as i32;
        let _ = writeln!(out, "retention floor {}: partitions before {} were dropped", path.display(), day_name(day));
    } else if let Some(kind) = record_file_kind(magic) {
        // Small files written whole (util::recfile).
        let v = crate::util::recfile::verify(&bytes).ok_or_else(|| Error::corrupt(path, kind))?;
        let _ = writeln!(out, "{kind} {} (format version {v}, {} bytes, checksum sound)", path.display(), bytes.len());
    } else if magic == b"FLEETREQ" {
        out.push_str(&crate::ingest::requests::describe(path, &bytes)?);
    } else if bytes.is_empty() && path.file_name().is_some_and(|n| n == "LOCK") {
        let _ = writeln!(out, "data directory lock {} (empty; a running server holds it with flock)", path.display());
    } else if magic == objects::MAGIC {
        let dir = path.parent().unwrap_or(Path::new("."));
        let o = objects::read(dir)?;
        let _ = writeln!(out, "options file {}: {o:?}", path.display());
    } else if path.extension().is_some_and(|e| e == "stdout" || e == "stderr")
        && path.parent().and_then(|d| d.parent()).is_some_and(|d| d.ends_with("datasets"))
    {
        // What a program dataset's run printed (plain text, kept with its version).
        let _ = writeln!(out, "program output {} ({} bytes of text)", path.display(), bytes.len());
    } else {
        return Err(Error::Invalid(format!("{}: not a fleetdb data file (unknown magic)", path.display())));
    }
    Ok(out)
}

fn inspect_wal(path: &Path, bytes: &[u8], out: &mut String) -> Result<()> {
    match wal::scan_segment(bytes) {
        SegmentScan::BadHeader(why) => Err(Error::corrupt(path, format!("WAL segment header ({why})"))),
        SegmentScan::Version(found) => Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: "WAL segment",
            found,
            supported: wal::format::VERSION,
        }),
        SegmentScan::Records { first_lsn, prev_lsn, records, tail } => {
            let _ = writeln!(out, "WAL segment {} (format version {})", path.display(), wal::format::VERSION);
            let _ = writeln!(
                out,
                "first LSN {first_lsn}  follows LSN {prev_lsn}  records {}  bytes {}",
                records.len(),
                bytes.len()
            );
            for r in &records {
                let what = match records::decode(r.kind, &r.payload) {
                    Some(records::Payload::ChannelAppend { channel, messages }) => format!(
                        "channel append {channel}: {} messages at offsets {}..{}",
                        messages.len(),
                        messages.first_offset,
                        messages.end_offset()
                    ),
                    Some(records::Payload::DatastoreAppend { datastore, source, batch }) => format!(
                        "datastore append {datastore}: {} rows x {} columns{}",
                        batch.num_rows(),
                        batch.columns.len(),
                        source.map(|(s, o)| format!(", source {s} through {o}")).unwrap_or_default()
                    ),
                    Some(records::Payload::TableWrite { table, mode, batch }) => {
                        format!("table write {table} ({mode:?}): {} rows", batch.num_rows())
                    }
                    Some(records::Payload::TableAlter { table, schema, batch }) => format!(
                        "table alter {table}: columns ({}), {} rows",
                        schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
                        batch.num_rows()
                    ),
                    None => format!("kind {} ({} bytes): undecodable payload", r.kind, r.payload.len()),
                };
                let _ = writeln!(out, "  LSN {}: {what}", r.lsn);
            }
            match tail {
                None => {
                    let _ = writeln!(out, "verified: every record checksum is sound");
                }
                Some((at, why)) => {
                    let _ = writeln!(
                        out,
                        "damaged at byte {at}: {why}; replay cuts the segment here if it is the last one"
                    );
                }
            }
            Ok(())
        }
    }
}

/// What a small whole-file record (`util::recfile` framing) is, by its magic.
fn record_file_kind(magic: &[u8]) -> Option<&'static str> {
    Some(match magic {
        b"FLEETRTE" => "routes file",
        b"FLEETPIP" => "pipelines file",
        b"FLEETSRC" => "datastore sources file",
        b"FLEETPST" => "pipeline state checkpoint",
        b"FLEETDST" => "dataset definitions file",
        b"FLEETDSV" => "dataset versions file",
        b"FLEETDSD" => "dataset deliveries file",
        _ => return None,
    })
}
