// Named prepared statements through node-postgres (pg), each run 12 times (Parse once, then
// Bind/Describe portal/Execute each time), in text as node-postgres reads results (its
// `binary: true` mode misreads int4 and timestamptz from PostgreSQL itself). tests/prepared.rs runs this against PostgreSQL and against fleetdb and
// compares the lines. Args: port, "fleetdb" | "postgres", user (also the database).
const { Client } = require('pg');

async function main() {
  const [port, flavour, user] = process.argv.slice(2);
  const c = new Client({ host: '127.0.0.1', port: Number(port), user, database: user });
  await c.connect();
  if (flavour === 'fleetdb') {
    await c.query('CREATE DATASTORE readings (machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT, ok BOOLEAN)');
  } else {
    await c.query('CREATE TABLE readings (time TIMESTAMPTZ, machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT, ok BOOLEAN)');
  }
  const t0 = Date.UTC(2026, 0, 1);
  for (let i = 0; i < 1000; i++) {
    await c.query({
      name: 'ins',
      text: 'INSERT INTO readings (time, machine_id, temperature, status, ok) VALUES ($1, $2, $3, $4, $5)',
      values: [new Date(t0 + 60000 * i), 'M-' + (i % 7), 20.0 + (i % 50) * 0.25, i % 3, i % 5 !== 0],
    });
  }
  const show = (rows) => JSON.stringify(rows.map((r) => r.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))));
  for (const binary of [false]) {
    const tag = binary ? 'bin' : 'text';
    for (let run = 1; run <= 12; run++) {
      const r = await c.query({ name: 'q1' + tag, rowMode: 'array', binary,
        text: 'SELECT count(*)::int AS n, max(temperature) AS t FROM readings WHERE time > $1',
        values: [new Date(t0 - 1000).toISOString()] });
      console.log(tag, 'q1', run, show(r.rows));
    }
    for (let run = 1; run <= 12; run++) {
      const r = await c.query({ name: 'q2' + tag, rowMode: 'array', binary,
        text: 'SELECT count(*), min(time), max(time) FROM readings WHERE time >= $1 AND time < $2 AND machine_id = $3',
        values: [new Date(t0 + 3600000 * run), new Date(t0 + 3600000 * (run + 10)), 'M-' + (run % 7)] });
      console.log(tag, 'q2', run, show(r.rows));
    }
    for (let run = 1; run <= 12; run++) {
      const r = await c.query({ name: 'q3' + tag, rowMode: 'array', binary,
        text: 'SELECT machine_id, status, temperature, ok, time, status::bigint * 1000000000 AS big,'
          + ' CASE WHEN status = 0 THEN NULL ELSE temperature END AS maybe'
          + ' FROM readings WHERE status = $1 AND time < $2 ORDER BY time LIMIT 3',
        values: [run % 3, new Date(t0 + 600000 * run)] });
      console.log(tag, 'q3', run, show(r.rows));
    }
  }
  await c.end();
}

main().catch((e) => { console.error(e); process.exit(1); });
