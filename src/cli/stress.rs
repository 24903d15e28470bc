//! `fleetdb stress`: appends numbered messages and rows as fast as it can, printing one line
//! per acknowledged append, with storage thresholds set tiny so that sealing, flushing,
//! compaction and checkpoints happen constantly. The crash test SIGKILLs it at random moments
//! and then checks that every acknowledged record is present exactly once.
//!
//! Output lines: `ack-msg SEED BATCH COUNT` (message ids `SEED-BATCH-0..COUNT`),
//! `ack-rows SEED BATCH COUNT` (rows with `seq = SEED * 1e9 + BATCH * 1000 + 0..COUNT`), and for
//! the reference table (named [`TABLES`]`[0]` or, after a rename, `[1]`): `ack-trow SEED BATCH 1`
//! (a row keyed `SEED-BATCH`), `ack-alter SEED BATCH 1` (a column `cSEED_BATCH` added, holding
//! BATCH in every row) and `ack-rename SEED BATCH 1` (the table renamed to the other name).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use fleetdb::batch::{Batch, Column, DataType, Field, StrVec, Values};
use fleetdb::channel::{ChannelOptions, Messages};
use fleetdb::datastore::DatastoreOptions;
use fleetdb::engine::{ColumnSpec, Engine, EngineConfig};
use fleetdb::error::Error;
use fleetdb::table::TableWrite;
use fleetdb::util::time::now_micros;
use fleetdb::wal::WalOptions;

use super::args::StressArgs;

pub const CHANNEL: &str = "stress_channel";
pub const DATASTORE: &str = "stress_ds";
pub const TABLES: [&str; 2] = ["stress_table", "stress_table_renamed"];

/// Engine settings that make every background path run often.
pub fn stress_config() -> EngineConfig {
    EngineConfig {
        wal: WalOptions { segment_bytes: 256 << 10, ..Default::default() },
        channel: ChannelOptions { seal_messages: 700, block_messages: 128, ..Default::default() },
        datastore: DatastoreOptions {
            memtable_rows: 3_000,
            block_rows: 512,
            compact_min_files: 3,
            ..Default::default()
        },
        maintenance_interval: Some(Duration::from_millis(20)),
        checkpoint_segments: 2,
    }
}

pub fn run(a: &StressArgs) -> Result<(), String> {
    let dir = a.data_dir.as_str();
    let (seed, batches, per_msgs, per_rows) = (a.seed, a.batches, a.messages, a.rows);
    let (engine, _) = Engine::open(Path::new(dir), stress_config()).map_err(|e| e.to_string())?;
    for (r, f) in [
        (engine.create_channel(CHANNEL, None).map(|_| ()), "channel"),
        (engine.create_datastore(DATASTORE, None, Some("machine_id")).map(|_| ()), "datastore"),
    ] {
        match r {
            Ok(()) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(format!("creating the stress {f}: {e}")),
        }
    }
    let mut table = match TABLES.iter().find(|t| engine.table(t).is_ok()) {
        Some(t) => *t,
        None => {
            let key =
                ColumnSpec { name: "k".into(), data_type: DataType::Text, type_tag: 25, not_null: true, default: None };
            engine
                .create_table(TABLES[0], vec![key], vec![0])
                .map_err(|e| format!("creating the stress table: {e}"))?;
            TABLES[0]
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let base = 1_767_225_600_000_000i64; // 2026-01-01
    for b in 0..batches {
        let now = now_micros();
        let mut m = Messages::default();
        for j in 0..per_msgs {
            let id = format!("{seed}-{b}-{j}");
            m.push(now, &id, "stress/topic", format!("{{\"id\":\"{id}\",\"v\":{j}}}").as_bytes());
        }
        let rec = engine.append_messages(CHANNEL, m).map_err(|e| e.to_string())?;
        writeln!(out, "ack-msg {seed} {b} {}", rec.accepted).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;

        let seq0 = seed as i64 * 1_000_000_000 + b as i64 * 1000;
        // Rows spread over several days so that many partitions are written and compacted.
        let times: Vec<i64> = (0..per_rows).map(|j| base + ((seq0 + j as i64) % 400_000) * 997_000).collect();
        let ids: StrVec = (0..per_rows).map(|j| ["M-1", "M-2", "M-3"][j % 3]).collect();
        let batch = Batch::try_new(
            vec![
                Field::new("time", DataType::Timestamp),
                Field::new("machine_id", DataType::Text),
                Field::new("seq", DataType::Int64),
            ],
            vec![
                Column::new(Values::Timestamp(times)),
                Column::new(Values::Text(ids)),
                Column::new(Values::Int64((0..per_rows as i64).map(|j| seq0 + j).collect())),
            ],
        )
        .ok_or("building the stress batch")?;
        engine.append_rows(DATASTORE, batch, None).map_err(|e| e.to_string())?;
        writeln!(out, "ack-rows {seed} {b} {per_rows}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;

        if b.is_multiple_of(5) {
            let kind = table_step(&engine, &mut table, seed, b)?;
            writeln!(out, "{kind} {seed} {b} 1").map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
    }
    engine.shutdown().map_err(|e| e.to_string())
}

/// One change to the stress table: adds a row, or adds a column, or renames the table.
/// Returns the acknowledgement's kind.
fn table_step(engine: &Engine, table: &mut &'static str, seed: u64, b: u64) -> Result<&'static str, String> {
    let t = engine.table(table).map_err(|e| e.to_string())?;
    let (schema, rows) = t.snapshot();
    let n = rows.num_rows();
    let err = |e: Error| e.to_string();
    if b.is_multiple_of(35) {
        let to = if *table == TABLES[0] { TABLES[1] } else { TABLES[0] };
        engine.rename_table(table, to).map_err(err)?;
        *table = to;
        return Ok("ack-rename");
    }
    if b.is_multiple_of(15) {
        let mut schema = (*schema).clone();
        let name = format!("c{seed}_{b}");
        schema.columns.push(ColumnSpec {
            name,
            data_type: DataType::Int64,
            type_tag: 20,
            not_null: true,
            default: None,
        });
        let mut columns = rows.columns.clone();
        columns.push(Column::new(Values::Int64(vec![b as i64; n])));
        let new_rows = Batch { fields: schema.fields(), columns };
        engine.alter_table(table, schema, new_rows, &rows).map_err(err)?;
        return Ok("ack-alter");
    }
    // A new row: its key, and in every added column the batch number.
    let mut columns = vec![Column::new(Values::Text([format!("{seed}-{b}")].iter().map(String::as_str).collect()))];
    columns.extend(schema.columns[1..].iter().map(|_| Column::new(Values::Int64(vec![b as i64]))));
    let row = Batch { fields: schema.fields(), columns };
    engine.write_table(table, TableWrite::Append, row, None).map_err(err)?;
    Ok("ack-trow")
}
