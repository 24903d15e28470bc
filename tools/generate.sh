#!/usr/bin/env bash
# Simulated factory fleet readings (CSV or NDJSON on stdout), deterministic by seed.
# A wrapper over `fleetdb generate`; the simulator lives in src/sim so the demo can reuse it.
#   tools/generate.sh --machines 1000 --hours 24 --interval 10 --seed 1 --format csv > readings.csv
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec ./target/release/fleetdb generate "$@"
