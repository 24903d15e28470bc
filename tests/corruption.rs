//! Damage to every file kind is detected: a flipped bit anywhere, or a truncation, makes the
//! reader refuse the file (or, for the WAL's last segment, cut the tail), never return data.

use std::fs;
use std::path::{Path, PathBuf};

use fleetdb::batch::{Batch, Column, DataType, Field, StrVec, Values};
use fleetdb::channel::{ChSegment, ChannelOptions, Messages};
use fleetdb::datastore::{DatastoreOptions, DsFile};
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::error::Error;
use fleetdb::objects;
use fleetdb::wal::{SegmentScan, scan_segment};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        maintenance_interval: None,
        // Small preallocated segments, so every byte of one can be flipped in a test.
        wal: fleetdb::wal::WalOptions { segment_bytes: 16 << 10, ..Default::default() },
        channel: ChannelOptions { seal_messages: 60, block_messages: 16, ..Default::default() },
        datastore: DatastoreOptions { block_rows: 64, ..Default::default() },
        ..Default::default()
    }
}

fn rows(n: usize, start: i64) -> Batch {
    let ids: StrVec = (0..n).map(|i| ["M-1", "M-2", "M-3", "M-4"][i % 4]).collect();
    let mut temp = Column::new(Values::Float64((0..n).map(|i| 20.0 + (i % 17) as f64 * 0.25).collect()));
    temp.extend_nulls(0);
    Batch::try_new(
        vec![
            Field::new("time", DataType::Timestamp),
            Field::new("machine_id", DataType::Text),
            Field::new("temperature", DataType::Float64),
            Field::new("count", DataType::Int64),
            Field::new("ok", DataType::Bool),
        ],
        vec![
            Column::new(Values::Timestamp((0..n as i64).map(|i| start + i * 7_000_000).collect())),
            Column::new(Values::Text(ids)),
            temp,
            Column::new(Values::Int64((0..n as i64).map(|i| i * 3 - 50).collect())),
            Column::new(Values::Bool((0..n).map(|i| i % 3 == 0).collect())),
        ],
    )
    .unwrap()
}

fn messages(n: usize, t: i64) -> Messages {
    let mut m = Messages::default();
    for i in 0..n {
        m.push(t + i as i64, &format!("m{i}"), "iot/factory/a", format!("{{\"v\":{i}}}").as_bytes());
    }
    m
}

/// A data directory with sealed segments, datastore files, WAL records and options files.
fn build(dir: &Path) {
    let (e, _) = Engine::open(dir, config()).unwrap();
    e.create_channel("c", Some(30)).unwrap();
    e.create_datastore("d", None, Some("machine_id")).unwrap();
    e.append_messages("c", messages(150, T0)).unwrap();
    e.append_rows("d", rows(300, T0), None).unwrap();
    e.append_rows("d", rows(200, T0 + DAY), None).unwrap();
    e.checkpoint().unwrap();
    e.append_messages("c", messages(10, T0 + 1000)).unwrap();
    e.append_rows("d", rows(10, T0), None).unwrap();
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().and_then(|x| x.to_str()) == Some(ext)
            || p.file_name().and_then(|x| x.to_str()) == Some(ext)
        {
            out.push(p);
        }
    }
}

fn find(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    files(dir, ext, &mut v);
    v.sort();
    assert!(!v.is_empty(), "no {ext} files");
    v
}

/// Every single-bit flip and every truncation of `bytes` is refused by `open_and_verify`.
fn assert_all_damage_detected(what: &str, bytes: &[u8], open_and_verify: impl Fn(Vec<u8>) -> Result<(), Error>) {
    open_and_verify(bytes.to_vec()).unwrap_or_else(|e| panic!("{what}: undamaged file refused: {e}"));
    for i in 0..bytes.len() {
        for bit in [0u8, 5] {
            let mut bad = bytes.to_vec();
            bad[i] ^= 1 << bit;
            assert!(
                open_and_verify(bad).is_err(),
                "{what}: flipping bit {bit} of byte {i} of {} went unnoticed",
                bytes.len()
            );
        }
    }
    for cut in (0..bytes.len()).step_by(3) {
        assert!(open_and_verify(bytes[..cut].to_vec()).is_err(), "{what}: truncation to {cut} bytes went unnoticed");
    }
}

#[test]
fn datastore_files_refuse_any_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    for path in find(dir.path(), "fds") {
        let bytes = fs::read(&path).unwrap();
        assert_all_damage_detected(&path.display().to_string(), &bytes, |b| DsFile::from_bytes(b)?.verify());
    }
}

#[test]
fn channel_segments_refuse_any_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    for path in find(dir.path(), "fch") {
        let bytes = fs::read(&path).unwrap();
        assert_all_damage_detected(&path.display().to_string(), &bytes, |b| ChSegment::from_bytes(b)?.verify());
    }
}

#[test]
fn options_files_refuse_any_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    for path in find(dir.path(), "options") {
        let bytes = fs::read(&path).unwrap();
        assert_all_damage_detected("options", &bytes, |b| {
            fs::write(scratch.path().join("options"), b).unwrap();
            objects::read(scratch.path()).map(|_| ())
        });
    }
}

#[test]
fn wal_damage_is_cut_at_the_tail_and_refused_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let segs = find(dir.path(), "wal");
    let last = segs.last().unwrap().clone();
    let bytes = fs::read(&last).unwrap();
    let SegmentScan::Records { records, tail: None, .. } = scan_segment(&bytes) else {
        panic!("undamaged segment unreadable")
    };
    assert!(records.len() >= 2, "the last WAL segment should hold the post-checkpoint appends");
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        match scan_segment(&bad) {
            SegmentScan::Records { records: r, tail, .. } => {
                assert!(tail.is_some(), "WAL byte {i} flip undetected");
                assert_eq!(r[..], records[..r.len()], "records before the damage must be intact");
            }
            SegmentScan::BadHeader(_) | SegmentScan::Version(_) => {}
        }
    }
    // Through the engine: damage in the last record (the final 10 rows) cuts it off with a
    // warning; everything before it, the 10 messages of the record before included, survives.
    // Where the last record starts (the segment may be preallocated: zeros follow it).
    let second = {
        use fleetdb::wal::format::{HEADER_LEN, RECORD_HEADER_LEN};
        let SegmentScan::Records { records, .. } = scan_segment(&bytes) else { unreachable!() };
        HEADER_LEN + records[..records.len() - 1].iter().map(|r| RECORD_HEADER_LEN + r.payload.len()).sum::<usize>()
    };
    let mut bad = bytes.clone();
    bad[second + 20] ^= 0xFF;
    fs::write(&last, &bad).unwrap();
    let (e, report) = Engine::open(dir.path(), config()).unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("cut off")), "{:?}", report.warnings);
    assert_eq!(e.channel("c").unwrap().stats().messages, 160);
    assert_eq!(e.datastore("d").unwrap().snapshot().num_rows(), 500, "the damaged record is gone, nothing else");
}

fn set_version(path: &Path, v: u32) {
    let mut b = fs::read(path).unwrap();
    b[8..12].copy_from_slice(&v.to_le_bytes());
    fs::write(path, b).unwrap();
}

#[test]
fn unknown_versions_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let ds = find(dir.path(), "fds")[0].clone();
    set_version(&ds, 4);
    let err = DsFile::open(&ds).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { found: 4, .. }), "{err}");
    assert!(err.to_string().contains("version 4 is not supported"), "{err}");
    let ch = find(dir.path(), "fch")[0].clone();
    set_version(&ch, 9);
    assert!(matches!(ChSegment::open(&ch).unwrap_err(), Error::UnsupportedVersion { found: 9, .. }));
    // The engine refuses to open a directory holding such a file rather than skip it.
    assert!(matches!(Engine::open(dir.path(), config()).err().unwrap(), Error::UnsupportedVersion { .. }));
}
