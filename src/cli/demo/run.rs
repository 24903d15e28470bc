//! The demo's run: the fleet streaming over MQTT through a pipeline, datasets, status lines and the maintenance plan.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleetdb::command::session::Session;
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::{Fleet, FleetConfig};
use fleetdb::util::time::MICROS_PER_SECOND;

use crate::cli::args::DemoArgs;

pub(super) const CHANNEL: &str = "factory_sensor_channel";
pub(super) const DATASTORE: &str = "factory_processed_datastore";
/// Days of fleet history loaded before the live readings start, and their spacing.
pub(super) const HISTORY_DAYS: i64 = 5;
pub(super) const HISTORY_STEP_SECS: i64 = 300;
/// The MQTT topic the maintenance plan is delivered to.
pub(super) const ALERTS: &str = "factory/alerts";
/// The bundled maintenance planner (written into the data directory, run with python3).
pub(super) const PLANNER: &str = include_str!("maintenance_plan.py");

/// The objects the demo creates (the machines table's rows come from the simulated fleet).
/// `machine_rul` linearises wear: vibration grows as baseline × (1 + 3·wear³), so
/// ∛((vibration / baseline − 1) / 3) is the wear, a straight line in time that reaches 1 at
/// failure; `rul_linear` fits it per machine and says when it crosses 1.
pub(super) const SETUP: &str = "
CREATE CHANNEL factory_sensor_channel WITH (retention = '7 days');
CREATE ROUTE factory_rule FROM MQTT 'iot/factory/#' INTO CHANNEL factory_sensor_channel;
CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT, baseline_vibration DOUBLE PRECISION);
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
  WITH (timestamp = 'timestamp');
CREATE DATASET factory_health_dataset AS
  SELECT machine_id, AVG(vibration) AS avg_vibration_24hr
  FROM factory_processed_datastore
  WHERE time > NOW() - INTERVAL '1' DAY
  GROUP BY machine_id
  WITH (schedule = 'rate(1 minute)', versions = 10);
CREATE DATASET machine_rul AS
  SELECT machine_id,
         extract(epoch FROM rul_linear(time, power(greatest(vibration / baseline_vibration - 1, 0) / 3, 1.0 / 3), 1)) / 3600
           AS rul_hours,
         max(time) AS last_reading
  FROM factory_processed_datastore
  WHERE time > NOW() - INTERVAL '5 days' AND status <> 'idle'
  GROUP BY machine_id
  WITH (schedule = 'rate(1 minute)', versions = 10);";

pub fn run(a: &DemoArgs) -> Result<(), String> {
    let machines = a.machines as usize;
    let duration = a.duration.map(Duration::from_secs);
    let data_dir = match &a.data_dir {
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
    let broker = fleetdb::ingest::broker::start_local(broker_port).map_err(|e| e.to_string())?;
    let (engine, _) = Engine::open(&data_dir, EngineConfig::default()).map_err(|e| e.to_string())?;
    // Held for the whole run: every session of the demo shares these services.
    let _services = fleetdb::command::Services::of(&engine).map_err(|e| e.to_string())?;
    let now = fleetdb::util::time::now_micros();
    let history_start = now - HISTORY_DAYS * 86_400 * MICROS_PER_SECOND;
    let mut fleet = Fleet::new(FleetConfig { machines, start: history_start, interval_secs: 1, ..Default::default() });
    let truth = Truth {
        ids: fleet.machine_ids().iter().map(std::string::ToString::to_string).collect(),
        install: (0..machines).map(|i| fleet.install_time(i)).collect(),
        failure: (0..machines).map(|i| fleet.failure_time(i)).collect(),
    };
    setup(&engine, &fleet, &data_dir)?;
    println!(
        "fleetdb demo: loading {HISTORY_DAYS} days of history of {machines} machines (a reading every {} minutes)…",
        HISTORY_STEP_SECS / 60
    );
    let loaded = load_history(&engine, &mut fleet, history_start, now)?;
    fleet.resume_at(now);
    let serve_args = crate::cli::config::ServeArgs {
        data_dir: Some(data_dir.display().to_string()),
        pg_listen: a.pg_listen.clone(),
        http_listen: a.http_listen.clone(),
        mqtt: Some(format!("mqtt://{broker}")),
        ..Default::default()
    };
    let cfg = crate::cli::config::resolve(&serve_args, |_| None)?;
    println!(
        "fleetdb demo: {loaded} historical readings stored; now {machines} simulated machines publish one reading a second\n\
         to the in-process MQTT broker on {broker}; route factory_rule takes them into channel {CHANNEL}, pipeline\n\
         factory_pipeline cleans and enriches them into datastore {DATASTORE}. Datasets refresh every minute:\n\
         factory_health_dataset, machine_rul (rul_linear) and maintenance_plan (a Python program, delivered to MQTT\n\
         topic {ALERTS}). Data directory: {} (removed at exit unless you gave --data-dir).\n\
         Try: SELECT * FROM machine_rul ORDER BY rul_hours LIMIT 5;   SELECT * FROM maintenance_plan;",
        data_dir.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let alerts = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (stop, published) = (stop.clone(), published.clone());
        std::thread::spawn(move || publish(broker_port, fleet, &stop, &published))
    };
    {
        let (stop, alerts) = (stop.clone(), alerts.clone());
        std::thread::spawn(move || count_alerts(broker_port, &stop, &alerts));
    }
    let error = Arc::new(std::sync::Mutex::new(None));
    let status = {
        let (stop, engine, published, alerts, error) =
            (stop.clone(), engine.clone(), published.clone(), alerts.clone(), error.clone());
        std::thread::spawn(move || report(&engine, &truth, &stop, &published, &alerts, &error))
    };
    let served = crate::serve_engine(&cfg, engine, 0, duration);
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let _ = status.join();
    if let Some(e) = error.lock().map_or(None, |e| e.clone()) {
        println!("{e}");
    }
    if a.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    served
}

/// What the simulator knows and the database does not: each machine's install and failure.
pub(super) struct Truth {
    ids: Vec<String>,
    install: Vec<i64>,
    failure: Vec<i64>,
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Runs SQL statements in a session of `engine`; the rows of the last, as text.
pub(super) fn sql(engine: &Arc<Engine>, text: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let services = fleetdb::command::Services::of(engine).map_err(|e| e.to_string())?;
    Session::new(services).text_rows(text).map_err(|e| e.message)
}

/// Creates the demo's objects, fills the machines table and writes the planner program.
pub(super) fn setup(engine: &Arc<Engine>, fleet: &Fleet, data_dir: &std::path::Path) -> Result<(), String> {
    let m = fleet.machines();
    let text = |c: usize, i: usize| match &m.columns[c].values {
        fleetdb::batch::Values::Text(v) => v.get(i).replace('\'', "''"),
        fleetdb::batch::Values::Float64(v) => v[i].to_string(),
        _ => String::new(),
    };
    let rows: Vec<String> = (0..m.num_rows())
        .map(|i| format!("('{}', '{}', '{}', {})", text(0, i), text(1, i), text(2, i), text(3, i)))
        .collect();
    let planner = data_dir.join("programs").join("maintenance_plan.py");
    std::fs::create_dir_all(planner.parent().unwrap_or(data_dir)).map_err(|e| e.to_string())?;
    std::fs::write(&planner, PLANNER).map_err(|e| format!("writing {}: {e}", planner.display()))?;
    let program = format!(
        "CREATE DATASET maintenance_plan AS PROGRAM 'python3 \"{}\"' INPUT machine_rul \
           WITH (variables = (alert_days = 3), timeout = '60 seconds', memory_limit = '1 GB') \
           DELIVER TO MQTT '{ALERTS}';",
        planner.display().to_string().replace('\'', "''")
    );
    sql(engine, &format!("{SETUP}\nINSERT INTO machines VALUES {};\n{program}", rows.join(", ")))
        .map_err(|e| format!("demo setup: {e}"))?;
    Ok(())
}

/// Appends the fleet's readings from `from` to `to`, one every HISTORY_STEP_SECS, to the
/// channel, waits until the pipeline has stored them, and refreshes the datasets.
pub(super) fn load_history(engine: &Arc<Engine>, fleet: &mut Fleet, from: i64, to: i64) -> Result<u64, String> {
    let pipelines = fleetdb::command::Services::of(engine).map_err(|e| e.to_string())?.pipelines.clone();
    pipelines.start();
    let ids: Vec<String> = fleet.machine_ids().iter().map(std::string::ToString::to_string).collect();
    let mut t = from;
    let mut n = 0u64;
    while t < to {
        let mut msgs = fleetdb::channel::Messages::default();
        for _ in 0..20 {
            if t >= to {
                break;
            }
            for r in fleet.readings_at(t) {
                let topic = format!("iot/factory/{}/telemetry", ids[r.machine]);
                msgs.push(r.time, &format!("history-{n}"), &topic, fleet.to_json(&r).as_bytes());
                n += 1;
            }
            t += HISTORY_STEP_SECS * MICROS_PER_SECOND;
        }
        engine.append_messages(CHANNEL, msgs).map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while pipelines.statuses().first().is_some_and(|s| s.lag_messages > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    sql(engine, "REFRESH DATASET factory_health_dataset; REFRESH DATASET machine_rul;")?;
    Ok(n)
}

/// Publishes each tick's readings at QoS 1, one tick a second, until `stop`.
pub(super) fn publish(port: u16, mut fleet: Fleet, stop: &AtomicBool, published: &AtomicU64) {
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
    let ids: Vec<String> = fleet.machine_ids().iter().map(std::string::ToString::to_string).collect();
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

/// Counts the alerts the maintenance plan's delivery publishes, as a subscriber would.
pub(super) fn count_alerts(port: u16, stop: &AtomicBool, alerts: &AtomicU64) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut o = MqttOptions::new(format!("fleetdb-demo-alerts-{}", std::process::id()), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(o, 100);
    if client.subscribe(ALERTS, QoS::AtLeastOnce).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match connection.recv_timeout(Duration::from_millis(250)) {
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                alerts.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(_)) => std::thread::sleep(Duration::from_millis(500)),
            _ => {}
        }
    }
    let _ = client.disconnect();
}

/// The machine_rul content against the truth.
pub(super) struct RulCheck {
    /// (machine, predicted failure, true failure) of the machines predicted to fail soonest.
    at_risk: Vec<(String, i64, i64)>,
    /// The mean absolute error of the remaining life, relative to the true one, over the
    /// machines past half their life, and how many those are.
    error: Option<(f64, usize)>,
}

/// Compares the latest machine_rul content with the truth.
pub(super) fn rul_against_truth(engine: &Arc<Engine>, truth: &Truth) -> Result<RulCheck, String> {
    let rows = sql(
        engine,
        "SELECT machine_id, rul_hours, extract(epoch FROM last_reading) FROM machine_rul \
         WHERE rul_hours IS NOT NULL ORDER BY rul_hours, machine_id",
    )?;
    let hour = 3600.0 * MICROS_PER_SECOND as f64;
    let (mut at_risk, mut errors) = (Vec::new(), Vec::new());
    for r in rows {
        let (Some(id), Some(h), Some(last)) = (&r[0], &r[1], &r[2]) else { continue };
        let (Ok(h), Ok(last)) = (h.parse::<f64>(), last.parse::<f64>()) else { continue };
        let Some(i) = truth.ids.iter().position(|m| m == id) else { continue };
        let last = (last * MICROS_PER_SECOND as f64) as i64;
        let predicted = last + (h * hour) as i64;
        if at_risk.len() < 8 {
            at_risk.push((id.clone(), predicted, truth.failure[i]));
        }
        let (life, left) = (truth.failure[i] - truth.install[i], truth.failure[i] - last);
        if left > 0 && (last - truth.install[i]) * 2 >= life {
            errors.push(((predicted - last) - left).abs() as f64 / left as f64);
        }
    }
    let error = (!errors.is_empty()).then(|| (errors.iter().sum::<f64>() / errors.len() as f64, errors.len()));
    Ok(RulCheck { at_risk, error })
}

/// Prints a status line every 5 seconds and the machines at risk every 10, until `stop`;
/// leaves the latest RUL error in `error`.
pub(super) fn report(
    engine: &Arc<Engine>,
    truth: &Truth,
    stop: &AtomicBool,
    published: &AtomicU64,
    alerts: &AtomicU64,
    error: &std::sync::Mutex<Option<String>>,
) {
    let begin = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut screens = 0u64;
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
        let (lag, lag_s, errors) = fleetdb::command::Services::of(engine)
            .ok()
            .and_then(|s| s.pipelines.statuses().into_iter().next())
            .map_or((0, 0.0, 0), |s| (s.lag_messages, s.lag_seconds, s.counters.errors));
        println!(
            "[{:>4}s] published {} | in {rate:.0} msg/s, {stored} in the channel | {rows} rows stored | \
             {rejected} rejected | pipeline lag {lag} msgs ({lag_s:.2} s), {errors} errors | {} alerts on {ALERTS}",
            begin.elapsed().as_secs(),
            published.load(Ordering::Relaxed),
            alerts.load(Ordering::Relaxed)
        );
        screens += 1;
        match rul_against_truth(engine, truth) {
            Ok(RulCheck { at_risk, error: mae }) => {
                let summary = match mae {
                    Some((e, n)) => format!(
                        "RUL mean absolute error: {:.1}% of the true remaining life, over {n} machines past half their life",
                        e * 100.0
                    ),
                    None => "RUL mean absolute error: no machine past half its life yet".into(),
                };
                if screens.is_multiple_of(2) {
                    println!("  machines at risk (machine_rul)   predicted failure      true failure (simulator)");
                    let now = fleetdb::util::time::now_micros();
                    for (id, p, t) in &at_risk {
                        let failed = if *t <= now { "  (failed: status fault)" } else { "" };
                        println!("    {id:<28} {}   {}{failed}", short_time(*p), short_time(*t));
                    }
                    println!("  {summary}");
                }
                if let Ok(mut e) = error.lock() {
                    *e = Some(summary);
                }
            }
            Err(e) => println!("  machine_rul: {e}"),
        }
    }
}

/// A timestamp to the minute, `2026-11-27 10:42Z`.
pub(super) fn short_time(t: i64) -> String {
    let s = fleetdb::util::time::format_timestamp(t);
    format!("{} {}Z", &s[..10], &s[11..16])
}
