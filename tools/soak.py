#!/usr/bin/env python3
"""Soak: a fleetdb server under sustained ingest, queries and SIGKILLs, with its memory sampled.

  tools/soak.sh [MINUTES]     (default 10; builds first; FLEETDB_BIN runs another binary)

1. Kills: KILLS times, NDJSON calls with request ids run while the server is SIGKILLed;
   after each restart every acknowledged call must be there exactly once, and the call
   that was cut off is resent with its id.
2. Steady state: the maximum NDJSON ingest rate is measured for 5 s (bodies of 20,000 lines
   made beforehand, sent one after another), then half of it is sustained for MINUTES through a pipeline into a datastore, with a query mix every second;
   RSS is sampled every second (SOAK_SAMPLE_SECS). The anonymous part (the process's own
   memory; mapped data files are page cache) rises and falls within each minute as memtables
   fill and flush and queries run. Its level, the median of each minute, must stay within 10%
   of the overall median after the first quarter (warm-up): the process does not grow. The
   envelope (each minute's highest sample: flushes and queries' working memory) is printed
   with its spread too.
   Prints the figures for BENCHMARKS.md; exits 1 if a check fails.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = os.environ.get("FLEETDB_BIN") or os.path.join(os.path.dirname(__file__), "..", "target", "release", "fleetdb")
MINUTES = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
KILLS = int(os.environ.get("SOAK_KILLS", "5"))
SAMPLE = float(os.environ.get("SOAK_SAMPLE_SECS", "1"))


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, data):
        self.data, self.pg, self.http = data, free_port(), free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data, "--pg-listen", f"127.0.0.1:{self.pg}",
             "--http-listen", f"127.0.0.1:{self.http}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if self.psql("SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("fleetdb did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()

    def psql(self, sql, check=True):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-h", "127.0.0.1", "-p", str(self.pg), "-U", "fleetdb",
                            "fleetdb", "-c", sql], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise SystemExit(f"{sql}: {r.stderr}")
        return r

    def value(self, sql):
        return self.psql(sql).stdout.strip()

    def rss_mb(self):
        """(RSS, anonymous RSS, peak RSS) in MB. Mapped data files count in RSS as the page
        cache pages a query touched; the anonymous part is the process's own memory."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            fields = dict(l.split(":", 1) for l in f)
        mb = lambda k: int(fields[k].split()[0]) / 1024
        return mb("VmRSS"), mb("RssAnon"), mb("VmHWM")


def body_of(lines, start=0):
    return "".join(json.dumps({"machine": f"M-{i % 500}", "v": i % 97, "t": 20 + i % 13}) + "\n"
                   for i in range(start, start + lines)).encode()


def ndjson(server, rid, lines, start=0):
    return post(server, rid, body_of(lines, start))


def post(server, rid, body):
    req = urllib.request.Request(f"http://127.0.0.1:{server.http}/channels/c/messages", data=body, method="POST",
                                 headers={"x-request-id": rid})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except Exception as e:  # a killed server, an HTTP error
        return 0, str(e)


def main():
    work = tempfile.mkdtemp(prefix="fleetdb-soak-")
    s = Server(os.path.join(work, "data"))
    s.psql("CREATE CHANNEL c")
    s.psql("CREATE DATASTORE d (machine TEXT, v DOUBLE PRECISION, t DOUBLE PRECISION)")
    s.psql("CREATE PIPELINE p FROM CHANNEL c FILTER v >= 0 INTO DATASTORE d")
    failures = []

    # 1. Kills.
    acked, call = [], 0
    for k in range(KILLS):
        stop = threading.Event()

        def load():
            nonlocal call
            while not stop.is_set():
                rid = f"kill-{call}"
                status, body = ndjson(s, rid, 20_000)
                if status == 200:
                    acked.append(rid)
                    call += 1
                else:
                    return
        t = threading.Thread(target=load)
        t.start()
        time.sleep(1.5)
        s.kill()
        stop.set()
        t.join()
        s.start()
        cut = f"kill-{call}"
        status, body = ndjson(s, cut, 20_000)  # the cut-off call, resent
        if status != 200:
            failures.append(f"resending {cut}: {status} {body}")
        acked.append(cut)
        call += 1
        per_call = s.value("SELECT __topic, count(*), count(DISTINCT __message_id) FROM c GROUP BY 1").splitlines()
        counts = {l.split("|")[0]: (int(l.split("|")[1]), int(l.split("|")[2])) for l in per_call}
        for rid in acked:
            got = counts.get(f"x-request-id:{rid}")
            if got != (20_000, 20_000):
                failures.append(f"after kill {k + 1}: call {rid} has {got} messages, expected 20000 once each")
    print(f"kills: {KILLS}, acknowledged calls {len(acked)} ({len(acked) * 20_000} messages), "
          f"{'all present exactly once' if not failures else 'FAILED'}")

    # 2. Maximum rate, then half of it. The bodies are made beforehand (the rows take their
    # arrival time): making each with json.dumps bounds a Python client at a fraction of what
    # the server takes.
    bodies = [body_of(20_000, k * 20_000) for k in range(8)]
    t0, n, i = time.time(), 0, 0
    while time.time() - t0 < 5:
        status, body = post(s, f"max-{i}", bodies[i % len(bodies)])
        n += body["accepted"] if status == 200 else 0
        i += 1
    max_rate = n / (time.time() - t0)
    rate = max_rate / 2
    print(f"maximum NDJSON ingest: {max_rate:,.0f} msg/s; sustaining {rate:,.0f} msg/s for {MINUTES:g} min")
    stop = threading.Event()
    sent = [0]

    def steady():
        j, began = 0, time.time()
        while not stop.is_set():
            due = (time.time() - began) * rate
            if sent[0] < due:
                status, body = post(s, f"steady-{j}", bodies[j % len(bodies)])
                j += 1
                if status == 200:
                    sent[0] += body["accepted"]
            else:
                time.sleep(0.05)

    def queries():
        qs = ["SELECT count(*) FROM d",
              "SELECT machine, avg(v), max(t) FROM d WHERE time > now() - interval '1 minute' GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
              "SELECT count(*) FROM c WHERE __received_at > now() - interval '10 seconds'",
              "SELECT machine, v, row_number() OVER (PARTITION BY machine ORDER BY time DESC) FROM d WHERE time > now() - interval '5 seconds' LIMIT 10"]
        k = 0
        while not stop.is_set():
            s.psql(qs[k % len(qs)], check=False)
            k += 1
            time.sleep(1)

    threads = [threading.Thread(target=steady), threading.Thread(target=queries)]
    for t in threads:
        t.start()
    samples, began, shown = [], time.time(), 0
    while time.time() - began < MINUTES * 60:
        time.sleep(SAMPLE)
        rss, anon, hwm = s.rss_mb()
        samples.append((time.time() - began, anon))
        if samples[-1][0] >= shown + 10:
            shown = samples[-1][0]
            print(f"  {shown:6.0f} s  RSS {rss:7.1f} MB, anonymous {anon:7.1f} MB  (peak RSS {hwm:.1f} MB)  "
                  f"ingested {sent[0]:,}", flush=True)
    stop.set()
    for t in threads:
        t.join()
    warm = MINUTES * 60 / 4
    after = [r for (at, r) in samples if at >= warm]
    minutes = {}
    for at, r in samples:
        if at >= warm:
            minutes.setdefault(int((at - warm) // 60), []).append(r)
    whole = [v for k, v in sorted(minutes.items()) if len(v) * SAMPLE >= 50]
    print("minute after warm-up | anonymous RSS median | max (the envelope)")
    for k, v in enumerate(whole):
        print(f"  {k + 1:2d} | {statistics.median(v):7.1f} MB | {max(v):7.1f} MB")
    tops = [max(v) for v in whole]
    env = statistics.median(tops)
    levels = [statistics.median(v) for v in whole]
    level = statistics.median(after)
    flat = all(level * 0.90 <= m <= level * 1.10 for m in levels)
    print(f"steady state after warm-up: anonymous RSS samples median {level:.1f} MB, "
          f"min {min(after):.1f}, max {max(after):.1f}; per-minute medians {min(levels):.1f}..{max(levels):.1f} "
          f"({(max(levels) / level - 1) * 100:+.1f}% / {(min(levels) / level - 1) * 100:+.1f}%); "
          f"per-minute envelope median {env:.1f} MB, "
          f"range {min(tops):.1f}..{max(tops):.1f} ({(max(tops) / env - 1) * 100:+.1f}% / "
          f"{(min(tops) / env - 1) * 100:+.1f}%); {sent[0] / (MINUTES * 60):,.0f} msg/s sustained")
    if not flat:
        failures.append(f"anonymous RSS not flat within 10%: median {level:.1f}, per-minute medians {min(levels):.1f}..{max(levels):.1f}")
    s.stop()
    for f in failures:
        print("FAILED:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
