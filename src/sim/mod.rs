//! A simulated factory fleet: machines reporting temperature, vibration, power, rpm and status,
//! with the mess real sensors make: slow drift as parts wear, spikes, missing values, duplicated
//! and out-of-order readings. Deterministic for a given seed. Each machine has a true failure
//! time (known to the simulator only) toward which its vibration and temperature climb.
//!
//! [`Fleet`] produces column batches ([`Fleet::next_rows`]) or JSON messages
//! ([`Fleet::next_json`]); [`Fleet::machines`] is the reference table (`machines`).

mod fleet;
mod rng;

pub use fleet::*;
pub use rng::Rng;
