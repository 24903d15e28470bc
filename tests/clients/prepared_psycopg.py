"""Prepared statements through psycopg 3, each run 12 times, with text and binary cursors.

tests/prepared.rs runs this against PostgreSQL and against fleetdb and compares the lines.
Args: port, "fleetdb" | "postgres" (how the readings table is made), user (also the database).
"""
import datetime
import sys

import psycopg


def show(row):
    """A row with timestamps in ISO form (the zone object psycopg picks is not the point)."""
    return tuple(v.isoformat() if isinstance(v, (datetime.datetime, datetime.date)) else v for v in row)

port, flavour, user = sys.argv[1], sys.argv[2], sys.argv[3]
UTC = datetime.timezone.utc
t0 = datetime.datetime(2026, 1, 1, tzinfo=UTC)
with psycopg.connect(host="127.0.0.1", port=port, user=user, dbname=user, autocommit=True) as conn:
    if flavour == "fleetdb":
        conn.execute("CREATE DATASTORE readings (machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT, ok BOOLEAN)")
    else:
        conn.execute("CREATE TABLE readings (time TIMESTAMPTZ, machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT, ok BOOLEAN)")
    rows = [(t0 + datetime.timedelta(minutes=i), f"M-{i % 7}", 20.0 + (i % 50) * 0.25, i % 3, i % 5 != 0) for i in range(1000)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO readings (time, machine_id, temperature, status, ok) VALUES (%s, %s, %s, %s, %s)", rows)
    for binary in (False, True):
        tag = "bin" if binary else "text"
        with conn.cursor(binary=binary) as cur:
            for run in range(1, 13):
                # A str parameter goes untyped: the server infers timestamptz.
                cur.execute("SELECT count(*)::int AS n, max(temperature) AS t FROM readings WHERE time > %s",
                            [(t0 - datetime.timedelta(seconds=1)).isoformat()], prepare=True)
                print(tag, "q1", run, show(cur.fetchone()))
            for run in range(1, 13):
                cur.execute("SELECT count(*), min(time), max(time) FROM readings WHERE time >= %s AND time < %s AND machine_id = %s",
                            [t0 + datetime.timedelta(hours=run), t0 + datetime.timedelta(hours=run + 10), f"M-{run % 7}"], prepare=True)
                print(tag, "q2", run, show(cur.fetchone()))
            for run in range(1, 13):
                cur.execute("SELECT machine_id, status, temperature, ok, time, status::bigint * 1000000000 AS big,"
                            " CASE WHEN status = 0 THEN NULL ELSE temperature END AS maybe, time::date AS day"
                            " FROM readings WHERE status = %s AND time < %s ORDER BY time LIMIT 3",
                            [run % 3, t0 + datetime.timedelta(minutes=10 * run)], prepare=True)
                print(tag, "q3", run, [show(r) for r in cur.fetchall()])
            for run in range(1, 13):
                # Parameters typed by the client (int8, float8, timestamptz) decide result types.
                cur.execute("SELECT coalesce(%s, 7), %s, coalesce(%s, 0.5), %s + interval '1 hour'",
                            [2 ** 40 + run, run, run * 1.5, t0], prepare=True)
                print(tag, "q5", run, show(cur.fetchone()))
            for run in range(1, 13):
                cur.execute("SELECT machine_id, count(*) AS n, round((avg(temperature) + %s)::numeric, 6)::float8 AS shifted"
                            " FROM readings WHERE status <> %s GROUP BY machine_id ORDER BY machine_id",
                            [run * 0.5, run % 3], prepare=True)
                print(tag, "q4", run, [show(r) for r in cur.fetchall()])
    # After DDL psycopg frees its prepared statements with DEALLOCATE ALL: a DROP after a
    # prepared query must not fail for it (it did, 0A000), and the next run prepares again.
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE scratch (a int)")
        for run in range(1, 7):
            cur.execute("SELECT count(*) FROM scratch WHERE a <> %s", [run], prepare=True)
        cur.execute("DROP TABLE scratch")
        cur.execute("SELECT count(*) FROM readings WHERE status = %s", [1], prepare=True)
        print("ddl", "after DEALLOCATE ALL", show(cur.fetchone()))
        cur.execute("DISCARD ALL")
        print("ddl", "DISCARD ALL", cur.statusmessage)

