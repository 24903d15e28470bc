//! Criterion benchmarks of the query engine's sorts, through SQL on a session (parse, bind,
//! scan, sort, project): ORDER BY keys that fit a number (normalized keys sorted as `u128`),
//! keys with text (normalized byte strings), and a window function's partition sort. The
//! side-by-side figures against DuckDB and PostgreSQL come from `tools/bench-sql.py`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetdb::command::parse::parse;
use fleetdb::command::session::{Outcome, Session};
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::{Fleet, FleetConfig};

const MACHINES: usize = 500;
const TICKS: usize = 400;

fn rows_of(o: Outcome) -> usize {
    match o {
        Outcome::Rows { batches, .. } => batches.iter().map(|b| b.num_rows()).sum(),
        _ => 0,
    }
}

fn sorts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    engine.create_datastore("d", None, Some("machine_id")).unwrap();
    let mut fleet = Fleet::new(FleetConfig { machines: MACHINES, ..Default::default() });
    let mut n = 0u64;
    for _ in 0..TICKS / 100 {
        let rows = fleet.next_rows(100);
        n += rows.num_rows() as u64;
        engine.append_rows("d", rows, None).unwrap();
    }
    let mut session = Session::new(fleetdb::command::Services::of(&engine).unwrap());
    let mut g = c.benchmark_group("sort");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    for (name, sql) in [
        ("int-time", "SELECT rpm, time, vibration FROM d ORDER BY rpm DESC, time"),
        ("double-text", "SELECT vibration, machine_id FROM d ORDER BY vibration, machine_id DESC"),
        ("text-time", "SELECT status, time, machine_id FROM d ORDER BY status, time DESC, machine_id"),
        (
            "window-partition",
            "SELECT machine_id, time, vibration - lag(vibration) OVER (PARTITION BY machine_id ORDER BY time) FROM d",
        ),
    ] {
        let stmt = parse(sql).unwrap().pop().unwrap();
        assert_eq!(rows_of(session.run(&stmt, &[]).unwrap()), n as usize, "{name}");
        g.bench_function(name, |b| b.iter(|| rows_of(session.run(black_box(&stmt), &[]).unwrap())));
    }
    g.finish();
}

criterion_group!(benches, sorts);
criterion_main!(benches);
