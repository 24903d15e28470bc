//! `fleetdb generate`: writes simulated factory readings as CSV or NDJSON to stdout.

use std::io::Write;

use fleetdb::sim::{Fleet, FleetConfig};

use super::args::{GenerateArgs, OutputFormat};

pub fn run(a: &GenerateArgs) -> Result<(), String> {
    let mut cfg = FleetConfig { machines: a.machines, interval_secs: a.interval, seed: a.seed, ..Default::default() };
    if let Some(start) = a.start {
        cfg.start = start.checked_mul(1_000_000).ok_or("--start is past the year 292277")?;
    }
    let hours = a.hours;
    let csv = a.format == OutputFormat::Csv;
    let ticks = (hours * 3600.0 / cfg.interval_secs.max(1) as f64).round() as usize;
    let mut fleet = Fleet::new(cfg);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let w =
        |out: &mut std::io::BufWriter<_>, s: String| writeln!(out, "{s}").map_err(|e| format!("writing output: {e}"));
    if csv {
        w(&mut out, "time,machine_id,temperature,vibration,power,rpm,status".into())?;
    }
    for _ in 0..ticks {
        for r in fleet.next_readings() {
            let line = if csv { fleet.to_csv(&r) } else { fleet.to_json(&r) };
            w(&mut out, line)?;
        }
    }
    out.flush().map_err(|e| format!("writing output: {e}"))
}
