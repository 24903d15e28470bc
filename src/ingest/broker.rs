//! An MQTT broker inside the process (rumqttd), for `fleetdb demo` and for tests on machines
//! without a broker. Production deployments use their own broker (Mosquitto, EMQX, …).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Starts a broker listening on `127.0.0.1:port` in a thread of its own, which lives as long
/// as the process, and returns once it accepts connections.
pub fn start_local(port: u16) -> crate::Result<SocketAddr> {
    start_local_text(port).map_err(crate::Error::External)
}

/// [`start_local`], its error a reason as text.
fn start_local_text(port: u16) -> std::result::Result<SocketAddr, String> {
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = ServerSettings {
        name: "v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 500,
            max_segment_size: 64 << 20,
            max_segment_count: 16,
            ..Default::default()
        },
        v4: Some([("v4".to_string(), server)].into_iter().collect()),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("fleetdb-broker".into())
        .spawn(move || {
            let _ = rumqttd::Broker::new(config).start();
        })
        .map_err(|e| format!("starting the broker thread: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        if Instant::now() > deadline {
            return Err(format!("the in-process MQTT broker did not listen on {listen}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(listen)
}
