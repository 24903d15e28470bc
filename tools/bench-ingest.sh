#!/usr/bin/env bash
# Ingest benchmark: starts Mosquitto and `fleetdb serve` on loopback ports, creates the
# channels and the route `fleetdb bench-ingest` writes to, runs it and stops everything.
#
#   tools/bench-ingest.sh [MESSAGES]      (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mq=$(free_port); pg=$(free_port); http=$(free_port)
printf 'user root\nlistener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000000\nmax_inflight_messages 1000\n' "$mq" > "$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
target/release/fleetdb serve --data-dir "$work/data" --pg-listen "127.0.0.1:$pg" \
  --http-listen "127.0.0.1:$http" --mqtt "mqtt://127.0.0.1:$mq" > "$work/fleetdb.log" 2>&1 &
for _ in $(seq 100); do psql -X -q -h 127.0.0.1 -p "$pg" -U fleetdb fleetdb -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql -X -q -h 127.0.0.1 -p "$pg" -U fleetdb fleetdb -c "
  CREATE CHANNEL bench_batch; CREATE CHANNEL bench_ndjson; CREATE CHANNEL bench_copy; CREATE CHANNEL bench_mqtt;
  CREATE ROUTE bench_route FROM MQTT 'bench/fleet/#' INTO CHANNEL bench_mqtt"
sleep 1 # the route's subscription
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; durability fsync"
target/release/fleetdb bench-ingest --http "127.0.0.1:$http" --pg-port "$pg" --broker "127.0.0.1:$mq" --messages "$n"
