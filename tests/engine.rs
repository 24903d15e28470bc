//! Behaviour of channels and datastores through the engine: offsets, time-range reads,
//! duplicate message ids, retention, reopen, drop/recreate, schema evolution, tag indexes.

use fleetdb::batch::{Batch, Column, DataType, Field, StrVec, Values};
use fleetdb::channel::{ChannelOptions, Messages};
use fleetdb::datastore::DatastoreOptions;
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::error::Error;

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        maintenance_interval: None,
        wal: fleetdb::wal::WalOptions { segment_bytes: 1 << 20, ..Default::default() },
        channel: ChannelOptions { seal_messages: 25, block_messages: 8, ..Default::default() },
        datastore: DatastoreOptions { block_rows: 32, ..Default::default() },
        ..Default::default()
    }
}

fn msgs(ids: &[&str], t: i64) -> Messages {
    let mut m = Messages::default();
    for (i, id) in ids.iter().enumerate() {
        m.push(t + i as i64 * 1_000_000, id, "iot/factory/m1", format!("{{\"n\":{i}}}").as_bytes());
    }
    m
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn duplicate_message_ids_in_a_batch_are_refused_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_channel("c", None).unwrap();
    let r = e.append_messages("c", msgs(&["a", "b", "a", "c", "b"], T0)).unwrap();
    assert_eq!(r.accepted, 3);
    assert_eq!(r.rejected.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 4]);
    assert!(r.rejected[0].1.contains("duplicate messageId \"a\""));
    let got = e.channel("c").unwrap().read_from(0, 100).unwrap();
    assert_eq!(got.ids.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(matches!(
        e.append_messages("nope", msgs(&["x"], T0)),
        Err(Error::NotFound { kind: fleetdb::error::Object::Channel, .. })
    ));
}

#[test]
fn channel_reads_by_offset_and_time_across_segments_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_channel("c", None).unwrap();
    let names = ids(100, "m");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    e.append_messages("c", msgs(&refs[..60], T0)).unwrap();
    e.append_messages("c", msgs(&refs[60..], T0 + 60_000_000)).unwrap();
    let ch = e.channel("c").unwrap();
    let st = ch.stats();
    assert_eq!((st.messages, st.next_offset), (100, 100));
    assert!(st.segments >= 2, "sealing at 25 messages should have written segments");
    let part = ch.read_from(37, 30).unwrap();
    assert_eq!(part.first_offset, 37);
    assert_eq!(part.ids.iter().collect::<Vec<_>>(), refs[37..67]);
    let tail = ch.read_from(95, 1000).unwrap();
    assert_eq!(tail.len(), 5);
    // messages are one second apart: [T0+10s, T0+20s) is offsets 10..20
    let by_time = ch.read_time_range(T0 + 10_000_000, T0 + 20_000_000).unwrap();
    assert_eq!(by_time.first_offset, 10);
    assert_eq!(by_time.ids.iter().collect::<Vec<_>>(), refs[10..20]);
    assert_eq!(st.first_received, Some(T0));
    assert_eq!(st.last_received, Some(T0 + 99_000_000));
}

#[test]
fn arrival_time_never_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_channel("c", None).unwrap();
    e.append_messages("c", msgs(&["a"], T0 + 50)).unwrap();
    e.append_messages("c", msgs(&["b"], T0)).unwrap();
    let got = e.channel("c").unwrap().read_from(0, 10).unwrap();
    assert_eq!(got.received_at, vec![T0 + 50, T0 + 50]);
}

#[test]
fn channel_retention_drops_old_days_and_keeps_the_offset_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_channel("c", Some(2)).unwrap();
    let names = ids(30, "old");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    e.append_messages("c", msgs(&refs, T0)).unwrap();
    e.checkpoint().unwrap();
    assert_eq!(e.enforce_retention(T0 + 10 * DAY).unwrap(), 1);
    let ch = e.channel("c").unwrap();
    assert_eq!(ch.stats().messages, 0);
    drop(ch);
    drop(e);
    // Reopen: nothing comes back, and new messages continue at offset 30.
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    let ch = e.channel("c").unwrap();
    assert_eq!(ch.stats().messages, 0);
    let r = e.append_messages("c", msgs(&["new"], T0 + 10 * DAY)).unwrap();
    assert_eq!(r.first_offset, 30);
    assert_eq!(ch.read_from(0, 10).unwrap().ids.iter().collect::<Vec<_>>(), ["new"]);
}

#[test]
fn clean_shutdown_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_channel("c", None).unwrap();
    e.append_messages("c", msgs(&["a", "b"], T0)).unwrap();
    e.shutdown().unwrap();
    drop(e);
    let (e, report) = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(report.records, 0, "{report:?}");
    assert_eq!(e.channel("c").unwrap().stats().messages, 2);
}

#[test]
fn a_recreated_channel_does_not_inherit_the_old_ones_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_channel("c", None).unwrap();
    e.append_messages("c", msgs(&["old1", "old2"], T0)).unwrap();
    e.drop_channel("c").unwrap();
    assert!(matches!(e.channel("c"), Err(Error::NotFound { kind: fleetdb::error::Object::Channel, .. })));
    e.create_channel("c", None).unwrap();
    e.append_messages("c", msgs(&["new"], T0)).unwrap();
    drop(e);
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    let got = e.channel("c").unwrap().read_from(0, 10).unwrap();
    assert_eq!(got.ids.iter().collect::<Vec<_>>(), ["new"]);
    assert!(matches!(
        e.create_channel("c", None),
        Err(Error::AlreadyExists { kind: fleetdb::error::Object::Channel, .. })
    ));
    assert!(matches!(e.create_channel("__sys", None), Err(Error::Invalid(_))));
}

fn readings(machines: &[&str], t: i64, extra: Option<(&str, Values)>) -> Batch {
    let n = machines.len();
    let mut fields = vec![Field::new("time", DataType::Timestamp), Field::new("machine_id", DataType::Text)];
    let mut cols = vec![
        Column::new(Values::Timestamp((0..n as i64).map(|i| t + i).collect())),
        Column::new(Values::Text(machines.iter().copied().collect::<StrVec>())),
    ];
    if let Some((name, v)) = extra {
        fields.push(Field::new(name, v.data_type()));
        cols.push(Column::new(v));
    }
    Batch::try_new(fields, cols).unwrap()
}

#[test]
fn schema_evolves_across_files_and_tag_index_finds_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    let ds = e.create_datastore("d", None, None).unwrap();
    let ms: Vec<&str> = (0..64).map(|i| ["M-1", "M-2", "M-3", "M-4"][i % 4]).collect();
    e.append_rows("d", readings(&ms, T0, Some(("rpm", Values::Int64((0..64).collect())))), None).unwrap();
    ds.flush().unwrap();
    // A later batch brings a new column and floats where ints were: rpm becomes float.
    e.append_rows("d", readings(&ms[..4], T0 + 100, Some(("rpm", Values::Float64(vec![1.5; 4])))), None).unwrap();
    e.append_rows("d", readings(&ms[..2], T0 + 200, Some(("vibration", Values::Float64(vec![0.5, 0.25])))), None)
        .unwrap();
    ds.flush().unwrap();
    let schema: Vec<(String, DataType)> = ds.schema().into_iter().map(|f| (f.name, f.data_type)).collect();
    assert_eq!(
        schema,
        vec![
            ("time".into(), DataType::Timestamp),
            ("machine_id".into(), DataType::Text),
            ("rpm".into(), DataType::Float64),
            ("vibration".into(), DataType::Float64)
        ]
    );
    let all = ds.snapshot().read_all().unwrap();
    assert_eq!(all.num_rows(), 70);
    assert_eq!(all.column("vibration").unwrap().null_count(), 68);
    let rpm_col = all.column("rpm").unwrap();
    let Values::Float64(rpm) = &rpm_col.values else { panic!() };
    assert_eq!(rpm.iter().enumerate().filter(|(i, v)| rpm_col.is_valid(*i) && **v == 1.5).count(), 4);
    assert_eq!(rpm_col.null_count(), 2);
    // The first file is grouped by machine_id (chosen automatically) and indexed by it.
    let first = &ds.snapshot().files[0];
    assert_eq!(first.meta.spec.sort_key, "machine_id");
    let c = first.meta.column_index("machine_id").unwrap();
    let rows = first.tag_rows(c, "M-3").unwrap().unwrap();
    assert_eq!(rows.len(), 16);
    let col = first.column(c).unwrap();
    let Values::Text(v) = &col.values else { panic!() };
    assert!(rows.iter().all(|r| v.get(r as usize) == "M-3"));
    assert_eq!(first.tag_rows(c, "M-9").unwrap().unwrap().len(), 0);
    // Sorted by (machine_id, time): the first 16 rows are M-1 in time order.
    let Values::Timestamp(t) = &first.column(0).unwrap().values else { panic!() };
    assert!(t[..16].windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn rows_need_a_time_column() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    e.create_datastore("d", None, None).unwrap();
    let b = Batch::try_new(vec![Field::new("x", DataType::Int64)], vec![Column::new(Values::Int64(vec![1]))]).unwrap();
    let err = e.append_rows("d", b, None).unwrap_err();
    assert!(err.to_string().contains("\"time\""), "{err}");
    assert_eq!(err.sqlstate(), "22023");
}

#[test]
fn pipeline_positions_are_kept_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    let ds = e.create_datastore("d", None, None).unwrap();
    e.append_rows("d", readings(&["M-1"], T0, None), Some(("c".into(), 10))).unwrap();
    ds.flush().unwrap();
    e.append_rows("d", readings(&["M-1"], T0 + 5, None), Some(("c".into(), 25))).unwrap();
    assert_eq!(ds.source_offset("c"), Some(25));
    drop(ds);
    drop(e);
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(e.datastore("d").unwrap().source_offset("c"), Some(25), "memtable position rebuilt from the WAL");
    e.checkpoint().unwrap();
    drop(e);
    let (e, report) = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(report.records, 0);
    assert_eq!(e.datastore("d").unwrap().source_offset("c"), Some(25), "position read from file footers");
}

#[test]
fn pipeline_positions_survive_appends_without_rows_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    let ds = e.create_datastore("d", None, None).unwrap();
    e.append_rows("d", readings(&["M-1"], T0, None), Some(("c".into(), 10))).unwrap();
    // A batch whose messages all were filtered out: no rows, but the position moves.
    e.append_rows("d", readings(&[], T0, None), Some(("c".into(), 40))).unwrap();
    assert_eq!(ds.source_offset("c"), Some(40));
    drop(ds);
    drop(e);
    let (e, _) = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(e.datastore("d").unwrap().source_offset("c"), Some(40), "position without rows replayed from the WAL");
    e.checkpoint().unwrap();
    // Retention drops the only partition with rows; the position stays.
    let dropped = e.datastore("d").unwrap().drop_partitions_before(i32::MAX).unwrap();
    assert_eq!(dropped.len(), 1);
    drop(e);
    let (e, report) = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(report.records, 0);
    let d = e.datastore("d").unwrap();
    assert_eq!(d.source_offset("c"), Some(40), "position read from the sources file");
    assert_eq!(d.snapshot().num_rows(), 0);
}

#[test]
fn memtables_and_channel_tails_are_held_to_the_memtable_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        channel: ChannelOptions { seal_messages: 1_000_000, seal_bytes: 1 << 30, ..Default::default() },
        ..config()
    };
    let (e, _) = Engine::open(dir.path(), cfg).unwrap();
    let budget = 64 << 10;
    e.set_memtable_budget(budget);
    let ds = e.create_datastore("d", None, None).unwrap();
    let ms: Vec<&str> = (0..256).map(|i| ["M-1", "M-2", "M-3", "M-4"][i % 4]).collect();
    for k in 0..40 {
        e.append_rows("d", readings(&ms, T0 + k * 1_000_000, None), None).unwrap();
        // The append after the one that takes the memtable past the budget flushes it first.
        assert!(ds.mem_bytes() <= 2 * budget, "after append {k}: {} bytes held", ds.mem_bytes());
    }
    assert_eq!(ds.snapshot().num_rows(), 40 * 256, "nothing lost to the flushes");
    assert!(!ds.snapshot().files.is_empty());
    // Channel tails count too: upkeep flushes the largest holders down to half the budget.
    e.create_channel("c", None).unwrap();
    let names = ids(2_000, "m");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    e.append_messages("c", msgs(&refs, T0)).unwrap();
    assert!(e.memtable_bytes() > budget, "{}", e.memtable_bytes());
    let rep = e.maintain(T0).unwrap();
    assert!(rep.flushed >= 1);
    assert!(e.memtable_bytes() <= budget / 2, "{}", e.memtable_bytes());
    assert_eq!(e.channel("c").unwrap().stats().messages, 2_000);
}

#[test]
fn an_idle_memtable_is_flushed_and_a_busy_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let idle = std::time::Duration::from_millis(300);
    let cfg = EngineConfig {
        datastore: DatastoreOptions { idle_flush: Some(idle), ..config().datastore.clone() },
        ..config()
    };
    let (e, _) = Engine::open(dir.path(), cfg).unwrap();
    let ds = e.create_datastore("d", None, None).unwrap();
    assert!(!ds.needs_flush(), "nothing to flush");
    e.append_rows("d", readings(&["M-1", "M-2"], T0, None), None).unwrap();
    assert!(!ds.needs_flush(), "just appended: not idle, far from full");
    std::thread::sleep(idle + std::time::Duration::from_millis(100));
    assert!(ds.needs_flush(), "idle past the threshold");
    // One round of upkeep writes it to a file: the rows are then read from there.
    e.maintain(T0).unwrap();
    assert_eq!((ds.mem_rows(), ds.snapshot().files.len(), ds.snapshot().num_rows()), (0, 1, 2));
    assert!(!ds.needs_flush());
    // Without the setting, an idle memtable stays until it is full.
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        EngineConfig { datastore: DatastoreOptions { idle_flush: None, ..config().datastore.clone() }, ..config() };
    let (e, _) = Engine::open(dir.path(), cfg).unwrap();
    let ds = e.create_datastore("d", None, None).unwrap();
    e.append_rows("d", readings(&["M-1"], T0, None), None).unwrap();
    std::thread::sleep(idle + std::time::Duration::from_millis(100));
    assert!(!ds.needs_flush());
}
