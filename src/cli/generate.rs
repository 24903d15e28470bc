//! `fleetdb generate`: writes simulated factory readings as CSV or NDJSON to stdout.

use std::io::Write;

use fleetdb::sim::{Fleet, FleetConfig};

use super::args::Args;

pub const OPTIONS: [&str; 6] = ["machines", "hours", "interval", "seed", "format", "start"];

pub fn run(a: &Args) -> Result<(), String> {
    let mut cfg = FleetConfig {
        machines: a.num("machines", 100)?,
        interval_secs: a.num("interval", 10)?,
        seed: a.num("seed", 1)?,
        ..Default::default()
    };
    if a.get("start").is_some() {
        cfg.start = a.num::<i64>("start", 0)? * 1_000_000;
    }
    let hours: f64 = a.num("hours", 1.0)?;
    let format = a.get("format").unwrap_or("csv");
    if format != "csv" && format != "ndjson" {
        return Err(format!("option '--format' wants csv or ndjson, not '{format}'"));
    }
    let ticks = (hours * 3600.0 / cfg.interval_secs.max(1) as f64).round() as usize;
    let mut fleet = Fleet::new(cfg);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let w =
        |out: &mut std::io::BufWriter<_>, s: String| writeln!(out, "{s}").map_err(|e| format!("writing output: {e}"));
    if format == "csv" {
        w(&mut out, "time,machine_id,temperature,vibration,power,rpm,status".into())?;
    }
    for _ in 0..ticks {
        for r in fleet.next_readings() {
            let line = if format == "csv" { fleet.to_csv(&r) } else { fleet.to_json(&r) };
            w(&mut out, line)?;
        }
    }
    out.flush().map_err(|e| format!("writing output: {e}"))
}
