//! Compatibility: data directories written by earlier versions (committed under
//! tests/fixtures/: `v1`, the first format; `v2`, datastore files with block statistics;
//! `v3`, datastore blocks of differing lengths, ending where a series does)
//! still open and read back exactly, and answer queries alike. When a format version
//! changes, the new code must keep passing this test; add the new version's fixtures beside
//! the others.
//!
//! To write the newest fixture after a deliberate, documented format change (never
//! otherwise): `FLEETDB_WRITE_FIXTURES=1 cargo test --test compat` (it writes the last of
//! [`FIXTURES`]; older ones are never rewritten).

use std::path::{Path, PathBuf};

use fleetdb::batch::{Batch, Bitmap, Column, DataType, Field, StrVec, Values};
use fleetdb::channel::{ChannelOptions, Messages};
use fleetdb::command::Services;
use fleetdb::command::session::{Outcome, Session};
use fleetdb::datastore::DatastoreOptions;
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::query::scalar::Scalar;

const T0: i64 = 1_767_225_600_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        maintenance_interval: None,
        // Plain segments keep the committed fixtures small (zero tails are tested in `wal`).
        wal: fleetdb::wal::WalOptions { preallocate: false, ..Default::default() },
        channel: ChannelOptions { seal_messages: 8, block_messages: 4, ..Default::default() },
        datastore: DatastoreOptions { block_rows: 8, ..Default::default() },
        ..Default::default()
    }
}

fn messages() -> Messages {
    let mut m = Messages::default();
    for i in 0..12 {
        m.push(
            T0 + i * 1_000_000,
            &format!("msg-{i}"),
            "iot/factory/line1",
            format!("{{\"machine_id\":\"M-{}\",\"temperature\":{}.5}}", i % 3, 60 + i).as_bytes(),
        );
    }
    m
}

fn rows() -> Batch {
    let n = 20;
    let mut valid = Bitmap::new_set(n);
    valid.set(3, false);
    Batch::try_new(
        vec![
            Field::new("time", DataType::Timestamp),
            Field::new("machine_id", DataType::Text),
            Field::new("temperature", DataType::Float64),
            Field::new("rpm", DataType::Int64),
            Field::new("running", DataType::Bool),
        ],
        vec![
            Column::new(Values::Timestamp((0..n as i64).map(|i| T0 + i * 10_000_000).collect())),
            Column::new(Values::Text((0..n).map(|i| ["M-1", "M-2"][i % 2]).collect::<StrVec>())),
            Column::with_validity(Values::Float64((0..n).map(|i| 60.0 + i as f64 / 4.0).collect()), Some(valid)),
            Column::new(Values::Int64((0..n as i64).map(|i| 1500 + i).collect())),
            Column::new(Values::Bool((0..n).map(|i| i % 5 != 0).collect())),
        ],
    )
    .unwrap()
}

/// Fixture directories, oldest first.
const FIXTURES: [&str; 3] = ["v1", "v2", "v3"];

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn write_fixtures(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let (e, _) = Engine::open(dir, config()).unwrap();
    e.create_channel("factory_sensor_channel", Some(90)).unwrap();
    e.create_datastore("factory_processed_datastore", Some(365), Some("machine_id")).unwrap();
    e.append_messages("factory_sensor_channel", messages()).unwrap();
    e.append_rows("factory_processed_datastore", rows(), Some(("factory_sensor_channel".into(), 12))).unwrap();
    e.checkpoint().unwrap();
    // Left in the WAL on purpose, so that replay of a version-1 WAL is covered too.
    let mut tail = Messages::default();
    tail.push(T0 + 60_000_000, "msg-tail", "iot/factory/line1", b"{\"late\":true}");
    e.append_messages("factory_sensor_channel", tail).unwrap();
}

#[test]
fn earlier_data_directories_read_back() {
    if std::env::var_os("FLEETDB_WRITE_FIXTURES").is_some() {
        write_fixtures(&fixture_dir(FIXTURES[FIXTURES.len() - 1]));
    }
    for name in FIXTURES {
        reads_back(name);
    }
}

fn reads_back(name: &str) {
    let fixtures = fixture_dir(name);
    // Work on a copy: opening a directory may write (a new WAL segment).
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures, tmp.path());
    let (e, report) = Engine::open(tmp.path(), config()).unwrap();
    assert_eq!(report.records, 1, "{name}: the fixture's WAL holds one channel append");
    let ch = e.channel("factory_sensor_channel").unwrap();
    let mut expected = messages();
    expected.push(T0 + 60_000_000, "msg-tail", "iot/factory/line1", b"{\"late\":true}");
    assert_eq!(ch.read_from(0, 100).unwrap(), expected);
    assert_eq!(ch.options().retention_days, Some(90));
    let ds = e.datastore("factory_processed_datastore").unwrap();
    assert_eq!(ds.options().retention_days, Some(365));
    assert_eq!(ds.source_offset("factory_sensor_channel"), Some(12));
    let got = ds.snapshot().read_all().unwrap();
    // Files are sorted by (machine_id, time); put the expected rows in that order.
    let want = rows();
    let mut idx: Vec<u32> = (0..20).collect();
    idx.sort_by_key(|&i| (i % 2, i));
    let want = want.take(&idx);
    assert_eq!(got.fields, want.fields);
    for (g, w) in got.columns.iter().zip(&want.columns) {
        assert_eq!(g.validity, w.validity);
        for i in 0..20 {
            if w.is_valid(i) {
                assert_eq!(value(g, i), value(w, i));
            }
        }
    }
    // Aggregates over the files: from block statistics where the files have them (v2 on),
    // by decoding where they do not; the same answers.
    let mut s = Session::new(Services::of(&e).unwrap());
    let q = "SELECT count(*), count(temperature), sum(rpm), min(temperature), max(temperature), avg(rpm) FROM factory_processed_datastore";
    assert_eq!(sql(&mut s, q), [["20", "19", "30190", "60", "64.75", "1509.5"]], "{name}");
    let q = "SELECT machine_id, count(*) FROM factory_processed_datastore GROUP BY 1 ORDER BY 1";
    assert_eq!(sql(&mut s, q), [["M-1", "10"], ["M-2", "10"]], "{name}");
    // Per series: from the blocks holding one machine (v2 on), the others decoded.
    let q = "SELECT machine_id, count(temperature), sum(rpm), max(temperature) FROM factory_processed_datastore GROUP BY 1 ORDER BY 1";
    assert_eq!(sql(&mut s, q), [["M-1", "10", "15090", "64.5"], ["M-2", "9", "15100", "64.75"]], "{name}");
    // A time range inside the series: the same rows whatever the blocks.
    let q = "SELECT machine_id, count(*), min(rpm) FROM factory_processed_datastore WHERE time >= '2026-01-01 00:02:30+00' GROUP BY 1 ORDER BY 1";
    assert_eq!(sql(&mut s, q), [["M-1", "2", "1516"], ["M-2", "3", "1515"]], "{name}");
    let plan = sql(&mut s, "EXPLAIN ANALYZE SELECT count(*), sum(rpm) FROM factory_processed_datastore");
    let from_stats = plan.iter().any(|r| r[0].contains("blocks answered from statistics"));
    assert_eq!(from_stats, name != "v1", "{name}: {plan:?}");
}

/// The rows of the last statement of `q`, as text.
fn sql(s: &mut Session, q: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for r in s.execute(q) {
        if let Outcome::Rows { schema, batches } = r.unwrap_or_else(|e| panic!("{q}: {e}")) {
            out.clear();
            for b in batches {
                for i in 0..b.num_rows() {
                    out.push(
                        schema
                            .iter()
                            .zip(&b.columns)
                            .map(|(c, col)| {
                                Scalar::from_column(col, c.ty, i).to_text(c.ty).unwrap_or_else(|| "NULL".into())
                            })
                            .collect(),
                    );
                }
            }
        }
    }
    out
}

fn value(c: &Column, i: usize) -> String {
    match &c.values {
        Values::Bool(v) => v[i].to_string(),
        Values::Int64(v) | Values::Timestamp(v) => v[i].to_string(),
        Values::Float64(v) => v[i].to_string(),
        Values::Text(v) => v.get(i).to_string(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
