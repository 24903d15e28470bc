//! Criterion benchmarks of the storage engine's hot paths. The end-to-end figures with fsync
//! (append rate, bytes per value, WAL under 64 writers) come from `fleetdb bench-storage`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fleetdb::batch::Values;
use fleetdb::datastore::codec::{self, Encoding};
use fleetdb::datastore::file::{FileSpec, encode_file};
use fleetdb::datastore::{DatastoreOptions, DsFile};
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::{Fleet, FleetConfig};
use fleetdb::wal::{Durability, WalOptions};

fn fleet_rows(machines: usize, ticks: usize) -> fleetdb::batch::Batch {
    Fleet::new(FleetConfig { machines, ..Default::default() }).next_rows(ticks)
}

fn codecs(c: &mut Criterion) {
    let temps: Vec<f64> = (0..8192).map(|i| ((60.0 + (i as f64 * 0.01).sin() * 5.0) * 100.0).round() / 100.0).collect();
    let noisy: Vec<f64> = (0..8192).map(|i| 60.0 + (i as f64 * 0.37).sin() / 3.0).collect();
    let times: Vec<i64> = (0..8192).map(|i| 1_767_225_600_000_000 + i * 10_000_000 + (i % 7) * 1000).collect();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(8192));
    for (name, v) in [
        ("float-decimal", Values::Float64(temps)),
        ("float-gorilla", Values::Float64(noisy)),
        ("ts-dod", Values::Timestamp(times)),
    ] {
        let mut buf = Vec::new();
        let enc: Encoding = codec::encode(&v, None, &mut buf);
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(buf.len());
                codec::encode(black_box(&v), None, &mut out)
            });
        });
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| codec::decode(enc, black_box(&buf), 8192, None).unwrap());
        });
    }
    g.finish();
}

fn file_scan(c: &mut Criterion) {
    let rows = fleet_rows(200, 1000);
    let n = rows.num_rows() as u64;
    let bytes = encode_file(&FileSpec { sort_key: "machine_id".into(), ..Default::default() }, &rows, 8192);
    let f = DsFile::from_bytes(bytes).unwrap();
    let col = f.meta.column_index("temperature").unwrap();
    let mut g = c.benchmark_group("file");
    g.throughput(Throughput::Elements(n));
    g.bench_function("scan_sum_f64", |b| b.iter(|| f.sum_f64(black_box(col)).unwrap()));
    g.bench_function("read_all_columns", |b| b.iter(|| f.read_all().unwrap()));
    g.bench_function("encode_file", |b| b.iter(|| encode_file(&FileSpec::default(), black_box(&rows), 8192)));
    g.finish();
}

fn append(c: &mut Criterion) {
    let batch = fleet_rows(1000, 10);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(batch.num_rows() as u64));
    g.sample_size(20);
    for (name, durability) in [("wal_none", Durability::None), ("wal_fsync", Durability::Fsync)] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EngineConfig {
            wal: WalOptions { durability, ..Default::default() },
            datastore: DatastoreOptions { memtable_rows: 2_000_000, ..Default::default() },
            maintenance_interval: Some(std::time::Duration::from_millis(200)),
            ..Default::default()
        };
        let (e, _) = Engine::open(dir.path(), cfg).unwrap();
        e.create_datastore("d", None, Some("machine_id")).unwrap();
        g.bench_function(format!("10k_rows/{name}"), |b| {
            b.iter_batched(|| batch.clone(), |bt| e.append_rows("d", bt, None).unwrap(), BatchSize::LargeInput);
        });
    }
    g.finish();
}

criterion_group!(benches, codecs, file_scan, append);
criterion_main!(benches);
