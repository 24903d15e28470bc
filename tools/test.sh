#!/usr/bin/env bash
# The one command that checks fleetdb: installs what the tests need, then runs formatting,
# lints, the build of benches/ and fuzz/, and every test (release mode: the crash, corruption
# and property tests do a lot of I/O and decoding). CI runs exactly this (.ci/run).
#
#   tools/test.sh            everything
#   FLEETDB_CRASH_CYCLES=N   kill cycles in the crash test (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -E '^(rustfmt|clippy)' || true

step "test dependencies"
# PostgreSQL (server for the differential suite, psql as a client), the PostgreSQL JDBC driver
# with a JDK to run the Java client, and psycopg 3. Installed only when missing, so a machine
# that has them does not need the network.
apt_needed=()
command -v psql >/dev/null 2>&1 || apt_needed+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_needed+=(postgresql)
command -v runuser >/dev/null 2>&1 || apt_needed+=(util-linux)
[ -f /usr/share/java/postgresql.jar ] || apt_needed+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || apt_needed+=(default-jdk-headless)
[ -x /usr/sbin/mosquitto ] || apt_needed+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || apt_needed+=(mosquitto-clients)
command -v curl >/dev/null 2>&1 || apt_needed+=(curl)
if [ ${#apt_needed[@]} -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${apt_needed[@]}"
fi
python3 -c 'import psycopg' 2>/dev/null || python3 -m pip install --quiet 'psycopg[binary]'
python3 -c 'import paho.mqtt' 2>/dev/null || python3 -m pip install --quiet 'paho-mqtt>=2'
# boto3's iotanalytics client, for the AWS API shape test. botocore dropped that model in 1.42,
# so an older release goes into its own folder (tests put it first on PYTHONPATH).
PYTHONPATH=target/py-boto3 python3 -c 'import botocore.session as s; s.get_session().get_service_model("iotanalytics")' 2>/dev/null \
  || python3 -m pip install --quiet --upgrade --target target/py-boto3 'boto3<1.42' 'botocore<1.42'
# node-postgres for the prepared-statement tests, in its own folder (tests set NODE_PATH).
command -v node >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; }
[ -d target/node/node_modules/pg ] || (mkdir -p target/node && cd target/node && npm install --silent --no-audit --no-fund pg@8)
psql --version
node --version
java -version 2>&1 | head -1
python3 -c 'import psycopg; print("psycopg", psycopg.__version__)'

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --release -- -D warnings

step "benches build"
cargo build --release --benches

step "fuzz targets build"
(cd fuzz && cargo build --release)

step "tests"
# Mosquitto is installed above, so its tests must run (they skip only where it is absent).
export FLEETDB_REQUIRE_MOSQUITTO=1
cargo test --release 2>&1 | tee target/test-output.txt
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
