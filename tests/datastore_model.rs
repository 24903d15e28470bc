//! Property test: a datastore driven through random appends, flushes, compactions, retention
//! and crash-reopens (memtable rebuilt from the WAL) always reads back exactly what a plain
//! in-memory model holds.

use std::collections::BTreeMap;

use fleetdb::batch::{Batch, Bitmap, Column, DataType, Field, StrVec, Values};
use fleetdb::datastore::DatastoreOptions;
use fleetdb::engine::{Engine, EngineConfig};
use proptest::prelude::*;

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000;

/// (day 0..4, second of day, machine 0..3, x: missing, a float, or a text value)
type InRow = (i64, i64, usize, Option<Result<f64, String>>);

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<InRow>),
    Flush,
    Compact,
    /// Retention at "now" = day N: keep 2 days.
    Retention(i64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let x = prop_oneof![
        3 => Just(None),
        10 => (-5000i64..5000).prop_map(|v| Some(Ok(v as f64 / 100.0))),
        1 => "[a-z]{1,4}".prop_map(|s| Some(Err(s))),
    ];
    let row = (0i64..4, 0i64..86_400, 0usize..3, x);
    prop_oneof![
        6 => prop::collection::vec(row, 1..40).prop_map(Op::Append),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => (2i64..7).prop_map(Op::Retention),
        2 => Just(Op::Reopen),
    ]
}

/// What the model keeps per row, keyed by seq.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    time: i64,
    machine: String,
    x: Option<f64>,
    x_text: Option<String>,
}

fn batch(rows: &[InRow], seq0: i64, text: bool) -> Batch {
    let n = rows.len();
    let mut fields = vec![
        Field::new("time", DataType::Timestamp),
        Field::new("machine_id", DataType::Text),
        Field::new("seq", DataType::Int64),
    ];
    let ids: StrVec = rows.iter().map(|r| ["M-1", "M-2", "M-3"][r.2]).collect();
    let mut cols = vec![
        Column::new(Values::Timestamp(rows.iter().map(|r| T0 + r.0 * DAY + r.1 * 1_000_000).collect())),
        Column::new(Values::Text(ids)),
        Column::new(Values::Int64((0..n as i64).map(|i| seq0 + i).collect())),
    ];
    // x is sent as a float column, or (when the batch carries text) as a text column: the
    // datastore must route it to `x__text` by the type-conflict rule.
    let mut valid = Bitmap::new_set(n);
    if text {
        let mut v = StrVec::default();
        for (i, r) in rows.iter().enumerate() {
            match &r.3 {
                Some(Err(s)) => v.push(s),
                _ => {
                    v.push("");
                    valid.set(i, false);
                }
            }
        }
        fields.push(Field::new("x", DataType::Text));
        cols.push(Column::with_validity(Values::Text(v), Some(valid)));
    } else {
        let v = rows
            .iter()
            .enumerate()
            .map(|(i, r)| match &r.3 {
                Some(Ok(f)) => *f,
                _ => {
                    valid.set(i, false);
                    0.0
                }
            })
            .collect();
        fields.push(Field::new("x", DataType::Float64));
        cols.push(Column::with_validity(Values::Float64(v), Some(valid)));
    }
    Batch::try_new(fields, cols).unwrap()
}

fn config() -> EngineConfig {
    EngineConfig {
        maintenance_interval: None,
        wal: fleetdb::wal::WalOptions { segment_bytes: 1 << 20, ..Default::default() },
        datastore: DatastoreOptions { block_rows: 16, compact_min_files: 2, ..Default::default() },
        ..Default::default()
    }
}

fn read_back(e: &Engine) -> BTreeMap<i64, Row> {
    let all = e.datastore("d").unwrap().snapshot().read_all().unwrap();
    let mut out = BTreeMap::new();
    if all.num_rows() == 0 {
        return out;
    }
    let Values::Int64(seq) = &all.column("seq").unwrap().values else { panic!("seq type") };
    let Values::Timestamp(time) = &all.column("time").unwrap().values else { panic!("time type") };
    let Values::Text(mid) = &all.column("machine_id").unwrap().values else { panic!("machine type") };
    // By the type-conflict rule the first type written owns `x`; the other goes to `x__<type>`.
    let cols: Vec<&Column> = ["x", "x__float", "x__text"].iter().filter_map(|n| all.column(n)).collect();
    for i in 0..all.num_rows() {
        let (mut xv, mut xtv) = (None, None);
        for c in &cols {
            if !c.is_valid(i) {
                continue;
            }
            match &c.values {
                Values::Float64(v) => assert!(xv.replace(v[i]).is_none(), "two float values"),
                Values::Text(v) => assert!(xtv.replace(v.get(i).to_string()).is_none(), "two text values"),
                other => panic!("x has type {:?}", other.data_type()),
            }
        }
        let prev = out.insert(seq[i], Row { time: time[i], machine: mid.get(i).to_string(), x: xv, x_text: xtv });
        assert!(prev.is_none(), "seq {} read twice", seq[i]);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn datastore_matches_model(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut e, _) = Engine::open(dir.path(), config()).unwrap();
        e.create_datastore("d", Some(2), Some("machine_id")).unwrap();
        let mut model: BTreeMap<i64, Row> = BTreeMap::new();
        let mut seq = 0i64;
        let mut floor = i64::MIN; // rows before this time are expired on arrival
        for op in ops {
            match op {
                Op::Append(rows) => {
                    let text = rows.iter().any(|r| matches!(r.3, Some(Err(_))));
                    e.append_rows("d", batch(&rows, seq, text), None).unwrap();
                    for (i, r) in rows.iter().enumerate() {
                        let (x, x_text) = match (&r.3, text) {
                            (Some(Ok(f)), false) => (Some(*f), None),
                            (Some(Err(s)), true) => (None, Some(s.clone())),
                            _ => (None, None),
                        };
                        let time = T0 + r.0 * DAY + r.1 * 1_000_000;
                        if time < floor {
                            continue;
                        }
                        model.insert(seq + i as i64, Row { time: T0 + r.0 * DAY + r.1 * 1_000_000, machine: ["M-1", "M-2", "M-3"][r.2].into(), x, x_text });
                    }
                    seq += rows.len() as i64;
                }
                Op::Flush => e.datastore("d").unwrap().flush().unwrap(),
                Op::Compact => { e.datastore("d").unwrap().compact().unwrap(); }
                Op::Retention(day) => {
                    e.enforce_retention(T0 + day * DAY).unwrap();
                    let cutoff = T0 + (day - 2) * DAY;
                    // Retention drops only when something is older than the cutoff.
                    if model.values().any(|r| r.time < cutoff) {
                        floor = floor.max(cutoff);
                    }
                    model.retain(|_, r| r.time >= cutoff);
                }
                Op::Reopen => {
                    drop(e);
                    e = Engine::open(dir.path(), config()).unwrap().0;
                }
            }
            prop_assert_eq!(&read_back(&e), &model);
        }
    }
}
