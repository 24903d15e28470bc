//! Crash test: `fleetdb stress` appends numbered messages and rows and prints each
//! acknowledgement; it is SIGKILLed at a random moment (while sealing, flushing, compacting or
//! checkpointing, by design of its tiny thresholds), then the data directory is reopened and
//! every acknowledged message and row must be present exactly once, and nothing twice.
//! `FLEETDB_CRASH_CYCLES` sets the number of kill cycles (default 50).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use fleetdb::batch::Values;
use fleetdb::engine::{Engine, EngineConfig};
use fleetdb::sim::Rng;

#[derive(Default)]
struct Acked {
    msgs: HashSet<String>,
    rows: HashSet<i64>,
    /// Reference table rows (keys `SEED-BATCH`) and added columns (`cSEED_BATCH`).
    table_rows: HashSet<(u64, u64)>,
    table_columns: HashSet<(u64, u64)>,
    renames: usize,
}

fn run_and_kill(dir: &Path, seed: u64, after: Duration, acked: &mut Acked) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetdb"))
        .args(["stress", "--data-dir", dir.to_str().unwrap(), "--seed", &seed.to_string(), "--batches", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting fleetdb stress");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    std::thread::sleep(after);
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    if !still_running {
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("stress exited by itself ({status}) before the kill: {err}");
    }
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        let [kind, s, b, n] = parts[..] else { continue }; // a line cut by the kill
        let (s, b, n): (u64, u64, u64) = (s.parse().unwrap(), b.parse().unwrap(), n.parse().unwrap());
        match kind {
            "ack-msg" => (0..n).for_each(|j| {
                acked.msgs.insert(format!("{s}-{b}-{j}"));
            }),
            "ack-rows" => (0..n as i64).for_each(|j| {
                acked.rows.insert(s as i64 * 1_000_000_000 + b as i64 * 1000 + j);
            }),
            "ack-trow" => {
                acked.table_rows.insert((s, b));
            }
            "ack-alter" => {
                acked.table_columns.insert((s, b));
            }
            "ack-rename" => acked.renames += 1,
            other => panic!("unexpected stress output {other:?}"),
        }
    }
}

fn verify(dir: &Path, acked: &Acked, cycle: u64) {
    let cfg = EngineConfig { maintenance_interval: None, ..EngineConfig::default() };
    let (engine, report) = Engine::open(dir, cfg).unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
    let Ok(ch) = engine.channel("stress_channel") else {
        assert!(acked.msgs.is_empty(), "cycle {cycle}: channel missing but messages were acknowledged");
        return;
    };
    let msgs = ch.read_from(0, usize::MAX).unwrap();
    assert_eq!(msgs.first_offset, 0, "cycle {cycle}");
    assert_eq!(msgs.end_offset(), ch.next_offset(), "cycle {cycle}: offsets are not contiguous");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in msgs.ids.iter() {
        *seen.entry(id).or_default() += 1;
    }
    if let Some((id, n)) = seen.iter().find(|(_, n)| **n > 1) {
        panic!("cycle {cycle}: message {id} stored {n} times");
    }
    for id in &acked.msgs {
        assert!(seen.contains_key(id.as_str()), "cycle {cycle}: acknowledged message {id} lost ({report:?})");
    }
    let ds = engine.datastore("stress_ds").unwrap();
    let all = ds.snapshot().read_all().unwrap();
    let seqs = match all.column("seq").map(|c| &c.values) {
        Some(Values::Int64(v)) => v.clone(),
        None => Vec::new(),
        Some(other) => panic!("seq column has type {:?}", other.data_type()),
    };
    let mut rows: HashSet<i64> = HashSet::with_capacity(seqs.len());
    for s in seqs {
        assert!(rows.insert(s), "cycle {cycle}: row seq {s} stored twice");
    }
    for s in &acked.rows {
        assert!(rows.contains(s), "cycle {cycle}: acknowledged row {s} lost");
    }
    verify_table(&engine, acked, cycle);
}

/// The reference table exists under exactly one of its names; every acknowledged row and
/// column is there, and each added column holds its batch number in the rows older than it
/// and the row's own batch number in the rows written after it.
fn verify_table(engine: &Engine, acked: &Acked, cycle: u64) {
    let names: Vec<&str> =
        ["stress_table", "stress_table_renamed"].into_iter().filter(|n| engine.table(n).is_ok()).collect();
    let [name] = names[..] else { panic!("cycle {cycle}: the stress table exists as {names:?}") };
    let (schema, rows) = engine.table(name).unwrap().snapshot();
    let parse = |s: &str, sep: char| -> (u64, u64) {
        let (a, b) = s.split_once(sep).unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let Values::Text(keys) = &rows.columns[0].values else { panic!("key column is text") };
    let keys: Vec<(u64, u64)> = keys.iter().map(|k| parse(k, '-')).collect();
    let present: HashSet<(u64, u64)> = keys.iter().copied().collect();
    assert_eq!(present.len(), keys.len(), "cycle {cycle}: a table key stored twice");
    for k in &acked.table_rows {
        assert!(present.contains(k), "cycle {cycle}: acknowledged table row {k:?} lost");
    }
    let columns: HashSet<(u64, u64)> = schema.columns[1..].iter().map(|c| parse(&c.name[1..], '_')).collect();
    for c in &acked.table_columns {
        assert!(columns.contains(c), "cycle {cycle}: acknowledged column c{}_{} lost", c.0, c.1);
    }
    for (spec, col) in schema.columns[1..].iter().zip(&rows.columns[1..]) {
        let added = parse(&spec.name[1..], '_');
        let Values::Int64(v) = &col.values else { panic!("added columns are bigint") };
        for (r, key) in keys.iter().enumerate() {
            let want = if *key < added { added.1 } else { key.1 };
            assert!(col.is_valid(r) && v[r] == want as i64, "cycle {cycle}: {} of row {key:?} is wrong", spec.name);
        }
    }
}

#[test]
fn sigkill_loses_and_duplicates_nothing_acknowledged() {
    let cycles: u64 = std::env::var("FLEETDB_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0xC0FFEE);
    let mut acked = Acked::default();
    for cycle in 0..cycles {
        let after = Duration::from_millis(40 + rng.below(360));
        run_and_kill(dir.path(), cycle + 1, after, &mut acked);
        verify(dir.path(), &acked, cycle);
    }
    assert!(
        acked.msgs.len() > 100 && acked.rows.len() > 100,
        "the stress writer acknowledged too little to prove anything"
    );
    assert!(acked.table_columns.len() > 3 && acked.renames > 1, "too few table schema changes to prove anything");
    eprintln!(
        "{cycles} kill cycles: {} messages, {} rows, {} table rows, {} added columns and {} renames acknowledged, all present once",
        acked.msgs.len(),
        acked.rows.len(),
        acked.table_rows.len(),
        acked.table_columns.len(),
        acked.renames
    );
}

/// A large COPY into a datastore is a bulk load: its rows go straight to files, without the
/// log. SIGKILLed while COPYs run (psql sends; the server parses, gathers and writes), a
/// restarted server has every row of every acknowledged COPY, and no row twice: a COPY cut
/// short by the kill may have left some of its rows (as one that fails halfway does), never
/// one more than once.
#[test]
fn sigkill_during_bulk_copies_keeps_every_acknowledged_row_once() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0xB01C);
    // 1.2M rows a COPY: more than a memtable's worth (1M), so one file is written on the
    // writer thread while the rest are parsed, and the rest at the end.
    const ROWS: u64 = 1_200_000;
    let (mut acked, mut cut_short) = (Vec::new(), 0);
    let mut next = 0u64;
    for cycle in 0..4 {
        let db = common::Fleetdb::start(dir.path());
        if cycle == 0 {
            common::ok(db.psql("CREATE DATASTORE bulk (id BIGINT, k TEXT, x DOUBLE PRECISION)"), "create");
        }
        let kill_at = std::time::Instant::now() + Duration::from_millis(1_000 + rng.below(3_000));
        let mut unfinished = None;
        while unfinished.is_none() && std::time::Instant::now() < kill_at {
            let first = next;
            next += ROWS;
            let mut child = Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &db.port.to_string()])
                .args(["-U", "fleetdb", "fleetdb", "-c", "COPY bulk (time, id, k, x) FROM STDIN WITH (FORMAT csv)"])
                .stdin(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            // Sent from a thread, so that the kill can come while rows are still arriving.
            let sender = std::thread::spawn(move || {
                let mut w = std::io::BufWriter::new(stdin);
                for id in first..first + ROWS {
                    // Two days, so that each write makes a file for each.
                    let day = 1 + id % 2;
                    if writeln!(w, "2026-01-0{day} 00:00:{:02}+00,{id},m{},{}.5", id % 60, id % 97, id % 1000).is_err()
                    {
                        return;
                    }
                }
                let _ = w.flush();
            });
            // Acknowledged only if psql saw the COPY complete before the kill.
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "COPY from {first} failed");
                    acked.push(first);
                    let _ = sender.join();
                    break;
                }
                if std::time::Instant::now() >= kill_at {
                    unfinished = Some((child, sender));
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        db.kill();
        if let Some((mut child, sender)) = unfinished {
            cut_short += 1;
            let _ = child.wait();
            let _ = sender.join();
        }
    }
    let db = common::Fleetdb::start(dir.path());
    // Every COPY's ids: no row twice (as many distinct ids as rows), and those of every
    // acknowledged COPY all there, with the values sent.
    let mut start = 0;
    while start < next {
        let q = format!(
            "SELECT count(*), count(DISTINCT id), sum(x), count(DISTINCT k) FROM bulk WHERE id >= {start} AND id < {}",
            start + ROWS
        );
        let got = common::ok(db.psql(&q), &q).lines().last().unwrap_or_default().to_string();
        let f: Vec<&str> = got.split('|').collect();
        assert_eq!(f[0], f[1], "a row of the COPY of ids from {start} is stored twice: {got}");
        if acked.contains(&start) {
            let sum: f64 = (start..start + ROWS).map(|id| (id % 1000) as f64 + 0.5).sum();
            assert_eq!(got, format!("{ROWS}|{ROWS}|{sum}|97"), "COPY of ids from {start}");
        }
        start += ROWS;
    }
    assert!(acked.len() >= 2, "too few COPYs completed to prove anything ({cut_short} cut short)");
    eprintln!("4 kill cycles: {} bulk COPYs of {ROWS} rows acknowledged and whole, {cut_short} cut short", acked.len());
}
