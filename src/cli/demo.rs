//! `fleetdb demo`: the whole path on one machine with nothing else installed. An in-process
//! MQTT broker, a simulated factory fleet publishing one reading per machine per second, the
//! predictive-maintenance objects (channel, route, machines table, pipeline, datastore) and
//! the server, with a status line until Ctrl-C or `--duration`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::{Fleet, FleetConfig};
use fleetdb::sql::parse::parse;
use fleetdb::sql::session::Session;

use super::args::Args;

pub const OPTIONS: [&str; 5] = ["machines", "duration", "data-dir", "pg-listen", "http-listen"];

const CHANNEL: &str = "factory_sensor_channel";
const DATASTORE: &str = "factory_processed_datastore";

/// The objects the demo creates (the machines table's rows come from the simulated fleet).
const SETUP: &str = "
CREATE CHANNEL factory_sensor_channel WITH (retention = '7 days');
CREATE ROUTE factory_rule FROM MQTT 'iot/factory/#' INTO CHANNEL factory_sensor_channel;
CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT);
CREATE DATASTORE factory_processed_datastore WITH (retention = '365 days');
CREATE PIPELINE factory_pipeline
  FROM CHANNEL factory_sensor_channel
  FILTER vibration > 0
  DEDUPLICATE ON (machine_id, timestamp) WITHIN '10 minutes'
  REMOVE OUTLIERS ON temperature RANGE -40 TO 150
  REMOVE OUTLIERS ON vibration BY machine_id ZSCORE 4 OVER 120
  MATH temperature_f = (temperature * 9 / 5) + 32
  ENRICH FROM machines ON machine_id
  INTO DATASTORE factory_processed_datastore
  WITH (timestamp = 'timestamp');";

pub fn run(a: &Args) -> Result<(), String> {
    let machines: usize = match a.get("machines") {
        Some(s) => s.parse().ok().filter(|&n| (1..=100_000).contains(&n)).ok_or("--machines takes 1 to 100000")?,
        None => 200,
    };
    let duration = match a.get("duration") {
        Some(s) => Some(Duration::from_secs(s.parse().map_err(|_| "--duration takes a number of seconds")?)),
        None => None,
    };
    let data_dir = match a.get("data-dir") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("fleetdb-demo-{}-{}", std::process::id(), now_secs())),
    };
    if std::fs::read_dir(&data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("the demo starts afresh: {} is not empty", data_dir.display()));
    }
    let broker_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a port for the broker: {e}"))?
        .port();
    let broker = fleetdb::ingest::broker::start_local(broker_port)?;
    let (engine, _) = Engine::open(&data_dir, EngineConfig::default()).map_err(|e| e.to_string())?;
    let start = fleetdb::util::time::now_micros();
    let fleet = Fleet::new(FleetConfig { machines, start, interval_secs: 1, ..Default::default() });
    setup(&engine, &fleet)?;
    let mut serve_args = vec!["--data-dir".to_string(), data_dir.display().to_string()];
    for k in ["pg-listen", "http-listen"] {
        if let Some(v) = a.get(k) {
            serve_args.extend([format!("--{k}"), v.to_string()]);
        }
    }
    serve_args.extend(["--mqtt".to_string(), format!("mqtt://{broker}")]);
    let serve_args = super::args::parse("serve", &serve_args, &super::config::SERVE_OPTIONS, &[])?;
    let cfg = super::config::resolve(&serve_args, |_| None)?;
    println!(
        "fleetdb demo: {machines} simulated machines publish one reading a second to the in-process MQTT broker on {broker};\n\
         route factory_rule takes them into channel {CHANNEL}, pipeline factory_pipeline cleans and enriches them\n\
         into datastore {DATASTORE}. Data directory: {} (removed at exit unless you gave --data-dir).\n\
         Try: SELECT machine_id, model_type, avg(temperature_f) FROM {DATASTORE} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5;",
        data_dir.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (stop, published) = (stop.clone(), published.clone());
        std::thread::spawn(move || publish(broker_port, fleet, &stop, &published))
    };
    let status = {
        let (stop, engine, published) = (stop.clone(), engine.clone(), published.clone());
        std::thread::spawn(move || report(&engine, &stop, &published))
    };
    let served = crate::serve_engine(&cfg, engine, 0, duration);
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let _ = status.join();
    if a.get("data-dir").is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    served
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Creates the demo's objects and fills the machines table.
fn setup(engine: &Arc<Engine>, fleet: &Fleet) -> Result<(), String> {
    let m = fleet.machines();
    let text = |c: usize, i: usize| match &m.columns[c].values {
        fleetdb::batch::Values::Text(v) => v.get(i).replace('\'', "''"),
        _ => String::new(),
    };
    let rows: Vec<String> =
        (0..m.num_rows()).map(|i| format!("('{}', '{}', '{}')", text(0, i), text(1, i), text(2, i))).collect();
    let sql = format!("{SETUP}\nINSERT INTO machines VALUES {};", rows.join(", "));
    let mut session = Session::new(engine.clone());
    for stmt in parse(&sql).map_err(|e| e.message)? {
        session.run(&stmt, &[]).map_err(|e| format!("demo setup: {}", e.message))?;
    }
    Ok(())
}

/// Publishes each tick's readings at QoS 1, one tick a second, until `stop`.
fn publish(port: u16, mut fleet: Fleet, stop: &AtomicBool, published: &AtomicU64) {
    use rumqttc::{Client, MqttOptions, QoS};
    let mut o = MqttOptions::new(format!("fleetdb-demo-fleet-{}", std::process::id()), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
    let (client, mut connection) = Client::new(o, 100_000);
    // The connection's event loop; it reconnects by itself.
    std::thread::spawn(move || {
        for event in connection.iter() {
            if event.is_err() {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    });
    let ids: Vec<String> = fleet.machine_ids().iter().map(|s| s.to_string()).collect();
    let begin = Instant::now();
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = begin + Duration::from_secs(tick);
        let now = Instant::now();
        if due > now {
            std::thread::sleep((due - now).min(Duration::from_millis(200)));
            continue;
        }
        for r in fleet.next_readings() {
            let topic = format!("iot/factory/{}/telemetry", ids[r.machine]);
            if client.publish(topic, QoS::AtLeastOnce, false, fleet.to_json(&r)).is_ok() {
                published.fetch_add(1, Ordering::Relaxed);
            }
        }
        tick += 1;
    }
    let _ = client.disconnect();
}

/// Prints a status line every 5 seconds until `stop`.
fn report(engine: &Arc<Engine>, stop: &AtomicBool, published: &AtomicU64) {
    let begin = Instant::now();
    let mut last = (Instant::now(), 0u64);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        if last.0.elapsed() < Duration::from_secs(5) {
            continue;
        }
        let stored = engine.channel(CHANNEL).map_or(0, |c| c.stats().messages);
        let rate = (stored - last.1.min(stored)) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), stored);
        let rows = engine.datastore(DATASTORE).map_or(0, |d| d.snapshot().num_rows());
        let rejected = engine.datastore(fleetdb::ingest::REJECTED).map_or(0, |d| d.snapshot().num_rows());
        let (lag, lag_s, errors) = engine
            .service(fleetdb::pipeline::Pipelines::new)
            .ok()
            .and_then(|p| p.statuses().into_iter().next())
            .map_or((0, 0.0, 0), |s| (s.lag_messages, s.lag_seconds, s.counters.errors));
        println!(
            "[{:>4}s] published {} | in {rate:.0} msg/s, {stored} in the channel | {rows} rows stored | \
             {rejected} rejected | pipeline lag {lag} msgs ({lag_s:.2} s), {errors} errors",
            begin.elapsed().as_secs(),
            published.load(Ordering::Relaxed)
        );
    }
}
