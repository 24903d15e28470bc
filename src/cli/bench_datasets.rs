//! `fleetdb bench-datasets`: how long dataset refreshes take, in one process over a datastore
//! filled with simulator readings (1,000 machines, one reading each every 10 s by default).
//!
//! 1. The seed's dataset (`AVG(vibration)` per machine over the last 24 hours), refreshed in
//!    full, over `--hours` of history (28 hours: 10M rows).
//! 2. The same query as a delta dataset (`delta_time = 'time'`, an hourly schedule), driven
//!    by an injected clock: after its first version (all the history), each run reads the one
//!    new hour appended before it (still in the memtable, as the last hour is in a running
//!    server). Measured over the history and over a tenth of it: the ratio
//!    says whether a delta refresh costs in proportion to new data rather than to history.
//! 3. An hourly-bucket dataset (average vibration per machine and hour, the whole history):
//!    its first refresh computes everything, later ones only the day partitions that changed.
//! 4. Freshness: a dataset on a 1-second schedule with the real scheduler; the time from a
//!    reading's durable append until the latest SUCCEEDED version reflects it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::{Fleet, FleetConfig};
use fleetdb::util::time::{MICROS_PER_SECOND, now_micros};

use super::args::BenchDatasetsArgs;

const HOUR: i64 = 3600 * MICROS_PER_SECOND;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn sql(engine: &Arc<Engine>, text: &str) -> Result<(), String> {
    fleetdb::command::Session::new(fleetdb::command::Services::of(engine).map_err(|e| e.to_string())?)
        .text_rows(text)
        .map(drop)
        .map_err(|e| e.message)
}

struct Case {
    rows: usize,
    full: Vec<f64>,
    first: f64,
    delta: Vec<f64>,
    delta_rows: usize,
    /// The hourly dataset: its first (full) refresh, then incremental ones.
    hourly_full: f64,
    hourly: Vec<f64>,
}

pub fn run(a: &BenchDatasetsArgs) -> Result<(), String> {
    let (machines, hours, interval, runs) = (a.machines, a.hours, a.interval, a.runs);
    let dir = PathBuf::from(&a.dir);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("machine: {cores} cores; {machines} machines, a reading every {interval} s; medians of {runs} runs");
    let big = case(&dir.join("big"), machines, hours, interval, runs)?;
    let small = case(&dir.join("small"), machines, hours / 10.0, interval, runs)?;
    for (name, c) in [("history", &big), ("history / 10", &small)] {
        println!(
            "{name}: {} rows | full refresh of the seed's dataset {:.1} ms | delta: first version (all history) {:.1} ms, \
             then one new hour ({} rows) {:.1} ms",
            c.rows,
            median(c.full.clone()),
            c.first,
            c.delta_rows,
            median(c.delta.clone())
        );
    }
    println!(
        "x10 history: a delta refresh takes {:.2}x as long (target <= 1.2x)",
        median(big.delta.clone()) / median(small.delta.clone())
    );
    for (name, c) in [("history", &big), ("history / 10", &small)] {
        println!(
            "{name}: hourly buckets per machine: full refresh {:.1} ms, incremental after a new hour {:.1} ms",
            c.hourly_full,
            median(c.hourly.clone())
        );
    }
    let lat = freshness(&dir.join("fresh"), machines, interval, 30)?;
    println!(
        "1-second schedule, reading durable -> in the latest version: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} samples)",
        lat[lat.len() / 2],
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
        lat[lat.len() - 1],
        lat.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn fresh_engine(dir: &Path) -> Result<Arc<Engine>, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    Ok(Engine::open(dir, EngineConfig::default()).map_err(|e| e.to_string())?.0)
}

fn case(dir: &Path, machines: usize, hours: f64, interval: u32, runs: usize) -> Result<Case, String> {
    let e = |e: fleetdb::Error| e.to_string();
    let engine = fresh_engine(dir)?;
    let now = now_micros();
    let start = now - (hours * HOUR as f64) as i64;
    let mut fleet = Fleet::new(FleetConfig { machines, start, interval_secs: interval, ..Default::default() });
    sql(&engine, "CREATE DATASTORE d")?;
    let ticks = (hours * 3600.0 / interval as f64).round() as usize;
    let mut rows = 0;
    for chunk in (0..ticks).step_by(30) {
        let b = fleet.next_rows(30.min(ticks - chunk));
        rows += b.num_rows();
        engine.append_rows("d", b, None).map_err(e)?;
    }
    engine.checkpoint().map_err(e)?;
    let services = fleetdb::command::Services::of(&engine).map_err(e)?;
    let datasets = services.datasets.clone();
    sql(
        &engine,
        "CREATE DATASET seed AS SELECT machine_id, AVG(vibration) AS avg_vibration_24hr FROM d \
         WHERE time > NOW() - INTERVAL '1' DAY GROUP BY machine_id",
    )?;
    let mut full = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        datasets.refresh("seed").map_err(e)?;
        full.push(ms(t));
    }
    sql(
        &engine,
        "CREATE DATASET seed_delta AS SELECT machine_id, AVG(vibration) AS avg_vibration, count(*) AS readings FROM d \
         GROUP BY machine_id WITH (schedule = 'rate(1 hour)', delta_time = 'time', delta_offset = '-1 hour', versions = 2)",
    )?;
    sql(
        &engine,
        "CREATE DATASET hourly AS SELECT machine_id, date_trunc('hour', time) AS hour, AVG(vibration) AS avg_vibration \
         FROM d GROUP BY machine_id, hour",
    )?;
    let t = Instant::now();
    datasets.refresh("hourly").map_err(e)?;
    let hourly_full = ms(t);
    let mut hourly = Vec::new();
    let created = now_micros();
    // The clock is the benchmark's: the first firing, an hour after creation, reads everything
    // before creation; each later one reads the hour appended before it.
    let t = Instant::now();
    datasets.run_due(created + HOUR + MICROS_PER_SECOND);
    let first = ms(t);
    let (mut delta, mut delta_rows) = (Vec::new(), 0);
    for r in 1..=runs as i64 {
        let b = fleet.next_rows((3600 / interval.max(1)) as usize);
        delta_rows = b.num_rows();
        engine.append_rows("d", b, None).map_err(e)?;
        let t = Instant::now();
        datasets.run_due(created + (r + 1) * HOUR + MICROS_PER_SECOND);
        delta.push(ms(t));
        let v = datasets.versions("seed_delta").map_err(e)?;
        let last = v.last().ok_or("no version")?;
        if last.state != fleetdb::dataset::VersionState::Succeeded || last.rows != machines as u64 {
            return Err(format!("delta run {r}: {:?} with {} rows: {}", last.state, last.rows, last.reason));
        }
        let t = Instant::now();
        let v = datasets.refresh("hourly").map_err(e)?;
        hourly.push(ms(t));
        if v.refresh != fleetdb::dataset::Refresh::Incremental {
            return Err(format!("hourly run {r} was {:?}: {}", v.refresh, v.reason));
        }
    }
    drop(datasets);
    engine.shutdown().map_err(e)?;
    Ok(Case { rows, full, first, delta, delta_rows, hourly_full, hourly })
}

/// Milliseconds from each reading's durable append until a 1-second dataset shows it.
fn freshness(dir: &Path, machines: usize, interval: u32, samples: usize) -> Result<Vec<f64>, String> {
    let e = |e: fleetdb::Error| e.to_string();
    let engine = fresh_engine(dir)?;
    let mut fleet =
        Fleet::new(FleetConfig { machines, start: now_micros() - HOUR, interval_secs: interval, ..Default::default() });
    sql(&engine, "CREATE DATASTORE d")?;
    engine.append_rows("d", fleet.next_rows((3600 / interval.max(1)) as usize), None).map_err(e)?;
    sql(
        &engine,
        "CREATE DATASET latest AS SELECT max(probe) AS probe, count(*) AS readings FROM d \
         WHERE time > NOW() - INTERVAL '1' HOUR WITH (schedule = 'rate(1 second)')",
    )?;
    let services = fleetdb::command::Services::of(&engine).map_err(e)?;
    let datasets = services.datasets.clone();
    datasets.start();
    let mut out = Vec::new();
    for k in 1..=samples as i64 {
        // A reading at a random point of the schedule's second.
        std::thread::sleep(Duration::from_millis(137 * k as u64 % 1000));
        let t = Instant::now();
        sql(&engine, &format!("INSERT INTO d (time, machine_id, probe) VALUES (now(), 'probe', {k})"))?;
        loop {
            let (_, b) = datasets.content("latest", "$LATEST_SUCCEEDED").unwrap_or_default();
            let seen = match b.columns.first().map(|c| (&c.values, c.is_valid(0))) {
                Some((fleetdb::batch::Values::Float64(v), true)) => v.first().is_some_and(|&p| p >= k as f64),
                Some((fleetdb::batch::Values::Int64(v), true)) => v.first().is_some_and(|&p| p >= k),
                _ => false,
            };
            if seen {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!("reading {k} did not reach the dataset in 10 s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        out.push(ms(t));
    }
    drop(datasets);
    engine.shutdown().map_err(e)?;
    out.sort_by(f64::total_cmp);
    Ok(out)
}
