//! The simulated fleet: machines whose wear drifts toward a known failure, and the readings they send (spikes, gaps, duplicates, late arrivals).

use super::rng::Rng;
use crate::batch::{Batch, Bitmap, Column, DataType, Field, StrVec, Values};
use crate::util::time::{MICROS_PER_SECOND, format_timestamp};

/// How messy the readings are; each is a probability per reading.
#[derive(Clone, Debug)]
pub struct Mess {
    pub missing: f64,
    pub spike: f64,
    pub duplicate: f64,
    pub out_of_order: f64,
}

impl Default for Mess {
    fn default() -> Self {
        Mess { missing: 0.01, spike: 0.001, duplicate: 0.002, out_of_order: 0.01 }
    }
}

#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub machines: usize,
    /// Time of the first reading, microseconds since the epoch.
    pub start: i64,
    /// Seconds between two readings of one machine.
    pub interval_secs: u32,
    pub seed: u64,
    pub mess: Mess,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            machines: 1000,
            start: 1_767_225_600 * MICROS_PER_SECOND, // 2026-01-01T00:00:00Z
            interval_secs: 10,
            seed: 1,
            mess: Mess::default(),
        }
    }
}

pub(super) const MODELS: [&str; 4] = ["CNC-5X", "PRESS-200", "LATHE-L3", "PUMP-P9"];
pub(super) const SITES: [&str; 5] =
    ["plant-a/line-1", "plant-a/line-2", "plant-b/line-1", "plant-b/line-3", "plant-c/line-1"];

#[derive(Clone, Debug)]
pub(super) struct Machine {
    id: String,
    model: usize,
    site: usize,
    base_temp: f64,
    base_vib: f64,
    base_power: f64,
    base_rpm: f64,
    /// Clock offset of this machine's readings within the interval, milliseconds.
    phase_ms: i64,
    install: i64,
    failure: i64,
    idle_until: i64,
}

/// One reading; `None` is a missing value.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub time: i64,
    pub machine: usize,
    pub temperature: Option<f64>,
    pub vibration: Option<f64>,
    pub power: Option<f64>,
    pub rpm: Option<i64>,
    pub status: &'static str,
}

pub struct Fleet {
    cfg: FleetConfig,
    machines: Vec<Machine>,
    rng: Rng,
    tick: u64,
    held: Vec<Reading>,
}

pub(super) fn round_to(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

impl Fleet {
    pub fn new(cfg: FleetConfig) -> Fleet {
        let mut rng = Rng::new(cfg.seed);
        let day = 86_400 * MICROS_PER_SECOND;
        let machines = (0..cfg.machines)
            .map(|i| {
                let life = day * (20 + rng.below(60) as i64);
                let install = cfg.start - (rng.unit() * life as f64 * 0.9) as i64;
                Machine {
                    id: format!("M-{:04}", i + 1),
                    model: rng.below(MODELS.len() as u64) as usize,
                    site: rng.below(SITES.len() as u64) as usize,
                    base_temp: 55.0 + rng.unit() * 20.0,
                    base_vib: 1.0 + rng.unit() * 2.0,
                    base_power: 5.0 + rng.unit() * 10.0,
                    base_rpm: 1200.0 + rng.unit() * 1800.0,
                    phase_ms: rng.below(cfg.interval_secs as u64 * 1000) as i64,
                    install,
                    failure: install + life,
                    idle_until: i64::MIN,
                }
            })
            .collect();
        Fleet { cfg, machines, rng, tick: 0, held: Vec::new() }
    }

    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Machine ids, in order.
    pub fn machine_ids(&self) -> Vec<&str> {
        self.machines.iter().map(|m| m.id.as_str()).collect()
    }

    /// True failure time of machine `i` (microseconds); the simulator's ground truth.
    pub fn failure_time(&self, i: usize) -> i64 {
        self.machines[i].failure
    }

    /// When machine `i` was installed (microseconds): its wear counts from here.
    pub fn install_time(&self, i: usize) -> i64 {
        self.machines[i].install
    }

    /// The reference table: machine_id, model_type, location, baseline_vibration (the
    /// machine's vibration when new, as commissioning measured it).
    pub fn machines(&self) -> Batch {
        let ids: StrVec = self.machines.iter().map(|m| m.id.as_str()).collect();
        let models: StrVec = self.machines.iter().map(|m| MODELS[m.model]).collect();
        let sites: StrVec = self.machines.iter().map(|m| SITES[m.site]).collect();
        Batch::try_new(
            vec![
                Field::new("machine_id", DataType::Text),
                Field::new("model_type", DataType::Text),
                Field::new("location", DataType::Text),
                Field::new("baseline_vibration", DataType::Float64),
            ],
            vec![
                Column::new(Values::Text(ids)),
                Column::new(Values::Text(models)),
                Column::new(Values::Text(sites)),
                Column::new(Values::Float64(self.machines.iter().map(|m| round_to(m.base_vib, 3)).collect())),
            ],
        )
        .expect("columns of equal length")
    }

    /// One clean reading per machine at `nominal` (no duplicates or held-back readings):
    /// history for a fleet that was running before the simulation started.
    pub fn readings_at(&mut self, nominal: i64) -> Vec<Reading> {
        (0..self.machines.len()).map(|i| self.reading(i, nominal)).collect()
    }

    /// Ticks continue from `start` (the machines, their wear and failure times stay).
    pub fn resume_at(&mut self, start: i64) {
        self.cfg.start = start;
        self.tick = 0;
    }

    fn reading(&mut self, i: usize, nominal: i64) -> Reading {
        let mess = self.cfg.mess.clone();
        let rng = &mut self.rng;
        let m = &mut self.machines[i];
        let jitter_ms = rng.below(11) as i64 - 5;
        let time = nominal + (m.phase_ms + jitter_ms) * 1000;
        let wear = ((time - m.install) as f64 / (m.failure - m.install) as f64).clamp(0.0, 1.2);
        // Wear shows late and then fast, as bearings do.
        let degradation = wear.powi(3);
        if m.idle_until < time && rng.unit() < 0.0005 {
            m.idle_until = time + (rng.below(1800) as i64 + 60) * MICROS_PER_SECOND;
        }
        let idle = time < m.idle_until;
        let mut temperature = m.base_temp + 25.0 * degradation + rng.normal() * 0.3;
        let mut vibration = m.base_vib * (1.0 + 3.0 * degradation) + rng.normal() * 0.05;
        let mut power = m.base_power * (1.0 + 0.2 * degradation) + rng.normal() * 0.2;
        let mut rpm = m.base_rpm + rng.normal() * 8.0;
        if idle {
            temperature -= 10.0;
            vibration *= 0.05;
            power *= 0.1;
            rpm = 0.0;
        }
        if rng.unit() < mess.spike {
            match rng.below(3) {
                0 => temperature = -999.0,
                1 => vibration *= 8.0,
                _ => power *= 5.0,
            }
        }
        let status = if idle {
            "idle"
        } else if wear >= 1.0 {
            "fault"
        } else if degradation > 0.5 {
            "warning"
        } else {
            "running"
        };
        let mut keep = || rng.unit() >= mess.missing;
        Reading {
            time,
            machine: i,
            temperature: keep().then(|| round_to(temperature, 2)),
            vibration: keep().then(|| round_to(vibration.max(0.0), 3)),
            power: keep().then(|| round_to(power.max(0.0), 2)),
            rpm: keep().then(|| rpm.round() as i64),
            status,
        }
    }

    /// The readings of the next tick, one per machine, with duplicates and out-of-order
    /// readings (a reading held back to the next tick) mixed in.
    pub fn next_readings(&mut self) -> Vec<Reading> {
        let nominal = self.cfg.start + self.tick as i64 * self.cfg.interval_secs as i64 * MICROS_PER_SECOND;
        self.tick += 1;
        let mut out = std::mem::take(&mut self.held);
        for i in 0..self.machines.len() {
            let r = self.reading(i, nominal);
            if self.rng.unit() < self.cfg.mess.duplicate {
                out.push(r.clone());
            }
            if self.rng.unit() < self.cfg.mess.out_of_order {
                self.held.push(r);
            } else {
                out.push(r);
            }
        }
        out
    }

    /// `ticks` ticks of readings as one column batch:
    /// time, machine_id, temperature, vibration, power, rpm, status.
    pub fn next_rows(&mut self, ticks: usize) -> Batch {
        let mut rs = Vec::with_capacity(ticks * self.machines.len());
        for _ in 0..ticks {
            rs.extend(self.next_readings());
        }
        self.to_batch(&rs)
    }

    pub fn to_batch(&self, rs: &[Reading]) -> Batch {
        fn opt_col<T: Copy + Default>(
            rs: &[Reading],
            f: impl Fn(&Reading) -> Option<T>,
            wrap: impl Fn(Vec<T>) -> Values,
        ) -> Column {
            let mut valid = Bitmap::new_set(rs.len());
            let v = rs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    f(r).unwrap_or_else(|| {
                        valid.set(i, false);
                        T::default()
                    })
                })
                .collect();
            Column::with_validity(wrap(v), Some(valid))
        }
        let ids: StrVec = rs.iter().map(|r| self.machines[r.machine].id.as_str()).collect();
        let status: StrVec = rs.iter().map(|r| r.status).collect();
        Batch::try_new(
            vec![
                Field::new("time", DataType::Timestamp),
                Field::new("machine_id", DataType::Text),
                Field::new("temperature", DataType::Float64),
                Field::new("vibration", DataType::Float64),
                Field::new("power", DataType::Float64),
                Field::new("rpm", DataType::Int64),
                Field::new("status", DataType::Text),
            ],
            vec![
                Column::new(Values::Timestamp(rs.iter().map(|r| r.time).collect())),
                Column::new(Values::Text(ids)),
                opt_col(rs, |r| r.temperature, Values::Float64),
                opt_col(rs, |r| r.vibration, Values::Float64),
                opt_col(rs, |r| r.power, Values::Float64),
                opt_col(rs, |r| r.rpm, Values::Int64),
                Column::new(Values::Text(status)),
            ],
        )
        .expect("columns of equal length")
    }

    /// A reading as the JSON a device would publish (missing values are absent keys).
    pub fn to_json(&self, r: &Reading) -> String {
        let mut s = format!(
            "{{\"machine_id\":\"{}\",\"timestamp\":\"{}\"",
            self.machines[r.machine].id,
            format_timestamp(r.time)
        );
        if let Some(v) = r.temperature {
            s += &format!(",\"temperature\":{v}");
        }
        if let Some(v) = r.vibration {
            s += &format!(",\"vibration\":{v}");
        }
        if let Some(v) = r.power {
            s += &format!(",\"power\":{v}");
        }
        if let Some(v) = r.rpm {
            s += &format!(",\"rpm\":{v}");
        }
        s += &format!(",\"status\":\"{}\"}}", r.status);
        s
    }

    /// A reading as a CSV line in the column order of [`Fleet::next_rows`].
    pub fn to_csv(&self, r: &Reading) -> String {
        fn o<T: std::fmt::Display>(v: Option<T>) -> String {
            v.map(|v| v.to_string()).unwrap_or_default()
        }
        format!(
            "{},{},{},{},{},{},{}",
            format_timestamp(r.time),
            self.machines[r.machine].id,
            o(r.temperature),
            o(r.vibration),
            o(r.power),
            o(r.rpm),
            r.status
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_messy() {
        let cfg = FleetConfig { machines: 50, ..Default::default() };
        let a = Fleet::new(cfg.clone()).next_rows(200);
        let b = Fleet::new(cfg).next_rows(200);
        assert_eq!(a, b);
        let temp = a.column("temperature").unwrap();
        assert!(temp.null_count() > 0, "some readings are missing");
        assert!(a.num_rows() != 50 * 200, "duplicates and held-back readings change the count");
        let Values::Timestamp(t) = &a.column("time").unwrap().values else { panic!() };
        assert!(t.windows(2).any(|w| w[1] < w[0]), "some readings arrive out of order");
    }
}
