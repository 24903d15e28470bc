//! `fleetdb bench-storage`: measures the storage engine's headline figures in one run, on
//! generated factory data:
//! 1. durable single-writer append rate into a datastore (rows/s), and with the final flush;
//! 2. bytes per value on disk after flush and compaction (all files of the datastore);
//! 3. scan-and-sum of one float column from files (values/s, one core);
//! 4. WAL acknowledged records/s from 64 concurrent writers, fsync durability.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use fleetdb::datastore::DatastoreOptions;
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::{Fleet, FleetConfig};
use fleetdb::wal::{Durability, Wal, WalOptions};

use super::args::BenchStorageArgs;

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            total += if path.is_dir() { dir_bytes(&path) } else { e.metadata().map_or(0, |m| m.len()) };
        }
    }
    total
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(a: &BenchStorageArgs) -> Result<(), String> {
    let (machines, hours, interval, writers) = (a.machines, a.hours, a.interval, a.writers);
    let durability = match a.durability {
        super::args::Durability::Fsync => Durability::Fsync,
        super::args::Durability::None => Durability::None,
    };
    let dir = PathBuf::from(&a.dir);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    let e = |e: fleetdb::Error| e.to_string();

    let ticks = (hours * 3600.0 / interval as f64).round() as usize;
    eprintln!("generating {machines} machines x {ticks} readings ...");
    let mut fleet = Fleet::new(FleetConfig { machines, interval_secs: interval, ..Default::default() });
    let batches: Vec<_> = (0..ticks.div_ceil(10)).map(|_| fleet.next_rows(10)).collect();
    let rows: usize = batches.iter().map(fleetdb::batch::Batch::num_rows).sum();
    let values = rows as u64 * 7;

    let cfg = EngineConfig {
        wal: WalOptions { durability, ..Default::default() },
        datastore: DatastoreOptions { ..Default::default() },
        ..Default::default()
    };
    let (engine, _) = Engine::open(&dir.join("data"), cfg).map_err(e)?;
    engine.create_datastore("factory", None, Some("machine_id")).map_err(e)?;
    let t0 = Instant::now();
    for b in batches {
        engine.append_rows("factory", b, None).map_err(e)?;
    }
    let append = t0.elapsed().as_secs_f64();
    engine.checkpoint().map_err(e)?;
    let with_flush = t0.elapsed().as_secs_f64();
    let ds = engine.datastore("factory").map_err(e)?;
    ds.compact().map_err(e)?;
    let bytes = dir_bytes(&dir.join("data/datastores/factory"));

    let snap = ds.snapshot();
    let mut scan = Vec::new();
    let mut check = 0.0;
    for _ in 0..7 {
        let t = Instant::now();
        let mut n = 0u64;
        let mut sum = 0.0;
        for f in &snap.files {
            let c = f.meta.column_index("temperature").ok_or("no temperature column")?;
            let (s, k) = f.sum_f64(c).map_err(e)?;
            sum += s;
            n += k;
        }
        scan.push(n as f64 / t.elapsed().as_secs_f64());
        check = sum;
    }
    drop(snap);
    engine.shutdown().map_err(e)?;
    drop(engine);

    let wal_dir = dir.join("wal-bench");
    let (wal, _) = Wal::open(&wal_dir, WalOptions { durability, ..Default::default() }, 0, |_| Ok(())).map_err(e)?;
    let wal = Arc::new(wal);
    let per = 3000usize;
    let t = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let payload = [7u8; 100];
                for _ in 0..per {
                    wal.append(9, &payload).map(|_| ()).map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for th in threads {
        th.join().map_err(|_| "a WAL writer thread panicked".to_string())??;
    }
    let wal_rate = (writers * per) as f64 / t.elapsed().as_secs_f64();
    let (groups, grouped) = wal.group_stats();

    println!(
        "fleetdb bench-storage: {machines} machines x {ticks} readings every {interval}s = {rows} rows, {values} values, durability {durability:?}"
    );
    println!(
        "append, single writer, durable per 10k-row batch : {:>12.0} rows/s ({append:.2} s)",
        rows as f64 / append
    );
    println!(
        "append including final flush to files             : {:>12.0} rows/s ({with_flush:.2} s)",
        rows as f64 / with_flush
    );
    println!(
        "on disk after compaction                          : {bytes} bytes = {:.3} bytes/value",
        bytes as f64 / values as f64
    );
    println!("scan+sum temperature from files, 1 core (median 7): {:>12.0} values/s (sum {check:.1})", median(scan));
    println!(
        "WAL, {writers} writers x {per} records of 100 B        : {:>12.0} acknowledged records/s ({:.1} records per fsync)",
        wal_rate,
        grouped as f64 / groups.max(1) as f64
    );
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
