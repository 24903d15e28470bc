#!/usr/bin/env bash
# End-to-end pipeline benchmark: starts `fleetdb serve` on loopback ports, creates the seed's
# machines table, channel, datastore and pipeline (filter, math, enrich, remove attributes),
# then measures with Python (psycopg and the standard library's HTTP client):
#   1. throughput: MESSAGES factory messages as NDJSON over 8 streams until every row that
#      passes the filter is queryable in the datastore (durable at every step);
#   2. latency: one message at a time through BatchPutMessage, from the send until a SELECT on
#      the datastore sees its row (200 samples; p50 and p99).
#
#   tools/bench-pipeline.sh [MESSAGES]      (default 500000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500000}
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg=$(free_port); http=$(free_port)
target/release/fleetdb serve --data-dir "$work/data" --pg-listen "127.0.0.1:$pg" \
  --http-listen "127.0.0.1:$http" > "$work/fleetdb.log" 2>&1 &
for _ in $(seq 100); do psql -X -q -h 127.0.0.1 -p "$pg" -U fleetdb fleetdb -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
# (generate stops with a broken pipe once head has its lines)
{ target/release/fleetdb generate --machines 1000 --hours 1 --interval 1 --format ndjson 2>/dev/null || true; } \
  | head -n "$n" > "$work/messages.ndjson"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; durability fsync"
PG=$pg HTTP=$http MESSAGES="$work/messages.ndjson" python3 - <<'PY'
import http.client, json, os, statistics, threading, time
import psycopg

pg, port = int(os.environ["PG"]), int(os.environ["HTTP"])
db = psycopg.connect(host="127.0.0.1", port=pg, user="fleetdb", dbname="fleetdb", autocommit=True)
ids = sorted({json.loads(l)["machine_id"] for l in open(os.environ["MESSAGES"])})
db.execute("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT)")
db.execute("INSERT INTO machines VALUES " + ", ".join(f"('{m}', 'model-{i % 4}', 'site-{i % 5}')" for i, m in enumerate(ids)))
db.execute("CREATE CHANNEL bench; CREATE DATASTORE bench_ds (probe DOUBLE PRECISION)")
db.execute("""CREATE PIPELINE bench_p FROM CHANNEL bench FILTER vibration > 0
  MATH temperature_f = (temperature * 9 / 5) + 32 ENRICH FROM machines ON machine_id
  REMOVE ATTRIBUTES (status) INTO DATASTORE bench_ds WITH (timestamp = 'timestamp')""")
lines = open(os.environ["MESSAGES"], "rb").read().splitlines(keepends=True)
passing = sum(1 for l in lines if (json.loads(l).get("vibration") or 0) > 0)

def stream(part):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/channels/bench/messages", body=b"".join(part))
    r = c.getresponse(); r.read(); assert r.status == 200, r.status

t0 = time.perf_counter()
parts = [lines[i::8] for i in range(8)]
threads = [threading.Thread(target=stream, args=(p,)) for p in parts]
for t in threads: t.start()
for t in threads: t.join()
t_ingested = time.perf_counter()
while db.execute("SELECT count(*) FROM bench_ds").fetchone()[0] < passing:
    time.sleep(0.005)
t1 = time.perf_counter()
print(f"end to end          {len(lines) / (t1 - t0):9.0f} messages/s  ({len(lines)} messages, {passing} rows; "
      f"channel ingest alone {len(lines) / (t_ingested - t0):.0f} messages/s)")

c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
lat = []
for k in range(200):
    body = json.dumps({"channelName": "bench", "messages": [{"messageId": str(k), "payload": {
        "machine_id": ids[0], "temperature": 20.0, "vibration": 1.0, "probe": k, "timestamp": "2026-11-26T12:00:00Z"}}]})
    t = time.perf_counter()
    c.request("POST", "/messages/batch", body=body)
    r = c.getresponse(); r.read(); assert r.status == 200
    while db.execute("SELECT count(*) FROM bench_ds WHERE probe = %s", (k,)).fetchone()[0] == 0:
        pass
    lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
lat.sort()
print(f"publish to queryable p50 {statistics.median(lat):.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms (200 single messages)")
PY
