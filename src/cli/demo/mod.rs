//! `fleetdb demo`: the whole path on one machine with nothing else installed. An in-process
//! MQTT broker, a simulated factory fleet publishing one reading per machine per second (after
//! five days of its history are loaded), the predictive-maintenance objects (channel, route,
//! machines table, pipeline, datastore, and three datasets: the 24-hour health, the remaining
//! useful life by `rul_linear`, and a maintenance plan made by a bundled Python program and
//! delivered over MQTT as alerts) and the server. A status screen every 10 seconds shows the
//! machines at risk with their predicted and true failure times (the simulator knows the
//! truth); with `--duration` the demo ends by itself and prints the RUL's error.

mod run;

pub use run::*;
