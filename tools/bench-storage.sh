#!/usr/bin/env bash
# Storage engine benchmark: prints the machine, then `fleetdb bench-storage` on 1,000 machines
# x 1 day at 10 s (8.64 M rows) with fsync durability, then the criterion micro-benchmarks.
# Arguments are passed to bench-storage (e.g. --machines 200 --hours 6 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "disk: $(df -T target 2>/dev/null | awk 'NR==2 {print $2}') on $(df target | awk 'NR==2 {print $1}')"
cargo build --release --quiet
./target/release/fleetdb bench-storage "$@"
if [ -z "${SKIP_CRITERION:-}" ]; then
  cargo bench --bench storage -- --warm-up-time 1 --measurement-time 3 2>&1 | grep -E '^(codec|file|append)|time:|thrpt:'
fi
