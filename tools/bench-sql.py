#!/usr/bin/env python3
"""Side-by-side SQL benchmark: fleetdb, DuckDB and PostgreSQL on the same generated factory data.

Loads N machines x M readings (default 1,000 x 10,000 = 10 M rows at 10 s) into each engine, runs
each query of QUERIES several times and prints the median latency per engine and the ratios
fleetdb/DuckDB and fleetdb/PostgreSQL. Results belong in BENCHMARKS.md.

Usage: tools/bench-sql.py [--machines 1000] [--readings 10000] [--runs 5]
Needs: a release build of fleetdb, psql, PostgreSQL server binaries, and the Python packages
psycopg and duckdb (pip install "psycopg[binary]" duckdb).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb
import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# FLEETDB_BIN runs another build (say, an older commit's) against the same data.
FLEETDB = os.environ.get("FLEETDB_BIN") or os.path.join(ROOT, "target", "release", "fleetdb")
START = "2026-01-01 00:00:00+00"

# (name, SQL for fleetdb and PostgreSQL, SQL for DuckDB[, SQL for PostgreSQL]). {end} is the data's
# last timestamp. None: the same SQL as fleetdb's.
QUERIES = [
    ("last point per machine",
     "SELECT DISTINCT ON (machine_id) machine_id, time, temperature FROM readings ORDER BY machine_id, time DESC", None),
    ("avg vibration per machine, last day",
     "SELECT machine_id, avg(vibration) FROM readings WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 day' GROUP BY machine_id", None),
    ("hourly buckets, one machine, a week",
     "SELECT date_trunc('hour', time) AS h, avg(temperature), max(vibration) FROM readings "
     "WHERE machine_id = 'M-0042' AND time >= TIMESTAMPTZ '{end}' - INTERVAL '7 days' GROUP BY 1 ORDER BY 1", None),
    ("machines above threshold, last hour",
     "SELECT machine_id, max(vibration) FROM readings WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 hour' "
     "GROUP BY machine_id HAVING max(vibration) > 6 ORDER BY 2 DESC", None),
    ("fleet 10-minute buckets, a day",
     "SELECT date_bin('10 minutes', time, TIMESTAMPTZ '2026-01-01') AS b, avg(temperature), count(*) FROM readings "
     "WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 day' GROUP BY 1 ORDER BY 1",
     "SELECT time_bucket(INTERVAL '10 minutes', time, TIMESTAMPTZ '2026-01-01') AS b, avg(temperature), count(*) FROM readings "
     "WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 day' GROUP BY 1 ORDER BY 1"),
    ("counts by status, all history",
     "SELECT status, count(*) FROM readings GROUP BY status ORDER BY status", None),
    ("full-scan aggregates",
     "SELECT count(*), avg(temperature), max(vibration), min(power), sum(rpm) FROM readings", None),
    ("join with machines by model",
     "SELECT m.model_type, count(*), avg(r.vibration) FROM readings r JOIN machines m ON r.machine_id = m.machine_id "
     "GROUP BY m.model_type ORDER BY 1", None),
    ("last value per machine, last()",
     "SELECT machine_id, last(vibration, time) FROM readings GROUP BY machine_id",
     "SELECT machine_id, arg_max(vibration, time) FROM readings GROUP BY machine_id",
     "SELECT DISTINCT ON (machine_id) machine_id, vibration FROM readings ORDER BY machine_id, time DESC"),
    ("p95 vibration per machine, a day",
     "SELECT machine_id, percentile_cont(0.95) WITHIN GROUP (ORDER BY vibration) FROM readings "
     "WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 day' GROUP BY machine_id", None),
    ("top 10 machines by max vibration, a day",
     "SELECT machine_id, max(vibration) AS m FROM readings WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 day' "
     "GROUP BY machine_id ORDER BY m DESC, machine_id LIMIT 10", None),
    ("distinct machines, last hour",
     "SELECT count(DISTINCT machine_id) FROM readings WHERE time > TIMESTAMPTZ '{end}' - INTERVAL '1 hour'", None),
]


def vm_hwm_mb(pid):
    """Peak resident memory (VmHWM) of a process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def vm_rss_mb(pid):
    """Resident memory now (VmRSS) of a process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not start")


def copy_csv(conn, sql, path):
    """Streams a CSV file into `COPY ... FROM STDIN` over psycopg."""
    with conn.cursor().copy(sql) as cp:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                cp.write(chunk)


def load(conn, cols, csv_path, machines_csv):
    copy_csv(conn, f"COPY readings ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)", csv_path)
    copy_csv(conn, "COPY machines FROM STDIN WITH (FORMAT csv, HEADER true)", machines_csv)


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machines", type=int, default=1000)
    ap.add_argument("--readings", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="fleetdb-bench-sql-")
    csv_path = os.path.join(work, "readings.csv")
    hours = a.readings * 10 / 3600
    print(f"generating {a.machines} machines x {a.readings} readings ...", flush=True)
    with open(csv_path, "w") as f:
        subprocess.run([FLEETDB, "generate", "--machines", str(a.machines), "--hours", str(hours)], stdout=f, check=True)
    rows = sum(1 for _ in open(csv_path)) - 1
    machines_csv = os.path.join(work, "machines.csv")
    models = ["CNC-5X", "PRESS-200", "LATHE-L3", "PUMP-P9"]
    with open(machines_csv, "w") as f:
        f.write("machine_id,model_type,location\n")
        for i in range(a.machines):
            f.write(f"M-{i + 1:04d},{models[i % 4]},plant-{i % 5}\n")
    cols = "time, machine_id, temperature, vibration, power, rpm, status"

    # fleetdb
    fport = free_port()
    fdir = os.path.join(work, "fleetdb")
    fproc = subprocess.Popen([FLEETDB, "serve", "--data-dir", fdir, "--pg-listen", f"127.0.0.1:{fport}"], stdout=subprocess.DEVNULL)
    wait_port(fport, fproc, "fleetdb")
    fconn = psycopg.connect(f"host=127.0.0.1 port={fport} user=fleetdb dbname=fleetdb", autocommit=True)
    fconn.execute("CREATE DATASTORE readings WITH (series_key = 'machine_id')")
    fconn.execute("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT)")
    t = time.perf_counter()
    load(fconn, cols, csv_path, machines_csv)
    fload = time.perf_counter() - t
    f_hwm_load = vm_hwm_mb(fproc.pid)
    end = fconn.execute("SELECT max(time) FROM readings").fetchone()[0].strftime("%Y-%m-%d %H:%M:%S+00")

    # PostgreSQL
    pgbin = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
    pgbin = f"/usr/lib/postgresql/{pgbin}/bin"
    pgdata = os.path.join(work, "pg")
    as_pg = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_pg else []
    if as_pg:
        subprocess.run(["chown", "-R", "postgres", work], check=True)
        os.chmod(work, 0o755)
    subprocess.run(run_as + [f"{pgbin}/initdb", "-D", pgdata, "-U", "postgres", "-A", "trust", "--locale=C"], check=True, stdout=subprocess.DEVNULL)
    pport = free_port()
    subprocess.run(run_as + [f"{pgbin}/pg_ctl", "-D", pgdata, "-o", f"-p {pport} -k {work} -c listen_addresses=127.0.0.1 -c shared_buffers=2GB -c max_parallel_workers_per_gather=2",
                             "-l", os.path.join(work, "pg.log"), "-w", "start"], check=True, stdout=subprocess.DEVNULL)
    pconn = psycopg.connect(f"host=127.0.0.1 port={pport} user=postgres dbname=postgres", autocommit=True)
    pconn.execute("CREATE TABLE readings (time timestamptz, machine_id text, temperature float8, vibration float8, power float8, rpm bigint, status text)")
    pconn.execute("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT, location TEXT)")
    t = time.perf_counter()
    load(pconn, cols, csv_path, machines_csv)
    pconn.execute("CREATE INDEX ON readings (machine_id, time)")
    pconn.execute("CREATE INDEX ON readings (time)")
    pconn.execute("ANALYZE")
    pload = time.perf_counter() - t

    # DuckDB
    t = time.perf_counter()
    dconn = duckdb.connect(os.path.join(work, "duck.db"))
    dconn.execute("SET TimeZone = 'UTC'")
    dconn.execute(f"CREATE TABLE readings AS SELECT * FROM read_csv('{csv_path}', header = true, "
                  "columns = {'time': 'TIMESTAMPTZ', 'machine_id': 'VARCHAR', 'temperature': 'DOUBLE', 'vibration': 'DOUBLE', "
                  "'power': 'DOUBLE', 'rpm': 'BIGINT', 'status': 'VARCHAR'})")
    dconn.execute(f"CREATE TABLE machines AS SELECT * FROM read_csv('{machines_csv}', header = true)")
    dload = time.perf_counter() - t

    # What fleetdb holds once its load is flushed (the others loaded meanwhile, ~1 minute).
    f_rss_idle = vm_rss_mb(fproc.pid)
    print(f"\n{rows} rows; load (s): fleetdb {fload:.1f}, DuckDB {dload:.1f}, PostgreSQL {pload:.1f} (incl. indexes)")
    print(f"fleetdb RSS: peak during the load {f_hwm_load:.0f} MB (VmHWM), after it {f_rss_idle:.0f} MB (VmRSS)")
    print(f"median of {a.runs} runs, milliseconds; machine: {os.cpu_count()} cores\n")
    print(f"{'query':40} {'fleetdb':>9} {'DuckDB':>9} {'Postgres':>9} {'f/DuckDB':>9} {'f/PG':>7}")
    for name, sql, duck_sql, *pg_sql in QUERIES:
        q = sql.format(end=end)
        dq = (duck_sql or sql).format(end=end)
        pq = (pg_sql[0] if pg_sql else sql).format(end=end)
        f_ms = timed(lambda: fconn.execute(q).fetchall(), a.runs)
        d_ms = timed(lambda: dconn.execute(dq).fetchall(), a.runs)
        p_ms = timed(lambda: pconn.execute(pq).fetchall(), a.runs)
        print(f"{name:40} {f_ms:9.1f} {d_ms:9.1f} {p_ms:9.1f} {f_ms / d_ms:9.2f} {f_ms / p_ms:7.3f}", flush=True)

    print(f"fleetdb RSS peak over the whole run: {vm_hwm_mb(fproc.pid):.0f} MB (VmHWM)")
    fconn.close()
    fproc.terminate()
    fproc.wait()
    pconn.close()
    subprocess.run(run_as + [f"{pgbin}/pg_ctl", "-D", pgdata, "-m", "fast", "stop"], stdout=subprocess.DEVNULL)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
