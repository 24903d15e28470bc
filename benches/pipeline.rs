//! Criterion benchmarks of the pipeline stage alone: decoding factory messages into a column
//! batch, the seed pipeline (filter, math, enrich, remove attributes) over it, and that
//! pipeline with deduplication and outlier removal added (six activities), without storage. End to end figures (HTTP NDJSON through channel and pipeline to the datastore,
//! durable) come from `tools/bench-pipeline.sh`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetdb::channel::Messages;
use fleetdb::command::parse::{Statement, parse};
use fleetdb::command::session::Session;
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::pipeline::decode::decode;
use fleetdb::pipeline::exec::run_pipeline;
use fleetdb::pipeline::state::PipelineState;
use fleetdb::sim::{Fleet, FleetConfig};

const MESSAGES: usize = 16_384;

fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let mut fleet = Fleet::new(FleetConfig { machines: 1000, ..Default::default() });
    let mut msgs = Messages::default();
    while msgs.len() < MESSAGES {
        for r in fleet.next_readings() {
            let mut json = fleet.to_json(&r);
            json.insert_str(json.len() - 1, ",\"debug_flags\":0");
            msgs.push(r.time, "", "", json.as_bytes());
        }
    }
    let m = fleet.machines();
    let text = |c: usize, i: usize| match &m.columns[c].values {
        fleetdb::batch::Values::Text(v) => v.get(i).to_string(),
        _ => String::new(),
    };
    let rows: Vec<String> =
        (0..m.num_rows()).map(|i| format!("('{}', '{}', '{}')", text(0, i), text(1, i), text(2, i))).collect();
    let setup = format!(
        "CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT); \
         INSERT INTO machines VALUES {}",
        rows.join(", ")
    );
    let mut session = Session::new(fleetdb::command::Services::of(&engine).unwrap());
    for s in parse(&setup).unwrap() {
        session.run(&s, &[]).unwrap();
    }
    let sql = "CREATE PIPELINE p FROM CHANNEL c FILTER vibration > 0 MATH temperature_f = (temperature * 9 / 5) + 32 \
               ENRICH FROM machines ON machine_id REMOVE ATTRIBUTES (debug_flags) INTO DATASTORE d \
               WITH (timestamp = 'timestamp')";
    let Some(Statement::CreatePipeline { spec, .. }) = parse(sql).unwrap().pop() else { panic!() };
    let def = spec.into_def(1, 0).unwrap();
    // The six: filter, math, enrich, remove attributes, dedup, outliers.
    let sql6 = "CREATE PIPELINE p FROM CHANNEL c FILTER vibration > 0 MATH temperature_f = (temperature * 9 / 5) + 32 \
               ENRICH FROM machines ON machine_id REMOVE ATTRIBUTES (debug_flags) \
               DEDUPLICATE ON (machine_id, timestamp) WITHIN '10 minutes' \
               REMOVE OUTLIERS ON vibration BY machine_id ZSCORE 4 OVER 100 INTO DATASTORE d \
               WITH (timestamp = 'timestamp')";
    let Some(Statement::CreatePipeline { spec, .. }) = parse(sql6).unwrap().pop() else { panic!() };
    let def6 = spec.into_def(1, 0).unwrap();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&msgs), &[])));
    g.bench_function("seed-4-activities", |b| {
        b.iter(|| run_pipeline(&engine, &def, &mut PipelineState::new(&def.activities), black_box(&msgs)));
    });
    // As a running pipeline does: the state (and the plans its activities were bound to)
    // kept from batch to batch.
    let mut kept = PipelineState::new(&def.activities);
    g.bench_function("seed-4-activities-state-kept", |b| {
        b.iter(|| run_pipeline(&engine, &def, &mut kept, black_box(&msgs)));
    });
    // Fresh state each time, so DEDUPLICATE sees the same messages as new ones.
    g.bench_function("6-activities", |b| {
        b.iter(|| run_pipeline(&engine, &def6, &mut PipelineState::new(&def6.activities), black_box(&msgs)));
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
