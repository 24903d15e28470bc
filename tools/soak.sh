#!/usr/bin/env bash
# Soak test (see tools/soak.py): ingest, queries and SIGKILLs for N minutes, RSS sampled.
#   tools/soak.sh [MINUTES]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
exec python3 tools/soak.py "${1:-10}"
