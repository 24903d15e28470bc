-- One query per line. Each runs on PostgreSQL and on fleetdb; answers must match.
-- readings: 12 machines x 120 readings over 3 days (with NULLs, spikes, duplicates);
-- machines: reference table; nums: edge values.

-- projection, filters, NULLs
SELECT count(*) FROM readings
SELECT count(temperature), count(vibration), count(rpm) FROM readings
SELECT machine_id, temperature FROM readings WHERE temperature > 80 ORDER BY machine_id, time
SELECT count(*) FROM readings WHERE temperature IS NULL
SELECT count(*) FROM readings WHERE temperature IS NOT NULL AND vibration IS NULL
SELECT count(*) FROM readings WHERE status = 'idle'
SELECT count(*) FROM readings WHERE status <> 'running'
SELECT count(*) FROM readings WHERE temperature BETWEEN 60 AND 70
SELECT count(*) FROM readings WHERE temperature NOT BETWEEN 60 AND 70
SELECT count(*) FROM readings WHERE machine_id IN ('M-0001', 'M-0003', 'M-0005')
SELECT count(*) FROM readings WHERE machine_id NOT IN ('M-0001', 'M-0003')
SELECT count(*) FROM readings WHERE machine_id IN ('M-0001', NULL, 'M-0003')
SELECT count(*) FROM readings WHERE machine_id NOT IN ('M-0001', NULL)
SELECT count(*), count(*) FILTER (WHERE status NOT IN ('idle', 'running')) FROM readings WHERE status IN ('idle', 'warning', 'running', NULL) IS NULL
SELECT count(*) FROM readings WHERE rpm IN (0, 1500, 1600, 1700)
SELECT count(*) FROM readings WHERE rpm NOT IN (0, 1500, NULL)
SELECT count(*) FROM readings WHERE (rpm IN (0, 1500)) IS NULL
SELECT count(*) FROM readings WHERE machine_id LIKE 'M-000%'
SELECT count(*) FROM readings WHERE machine_id LIKE '%1_'
SELECT count(*) FROM readings WHERE status ILIKE 'RUN%'
SELECT count(*) FROM readings WHERE NOT (temperature > 60)
SELECT count(*) FROM readings WHERE temperature IS DISTINCT FROM vibration * 10
SELECT count(*), count(*) FILTER (WHERE status IS NOT DISTINCT FROM NULL) FROM readings WHERE rpm IS NOT DISTINCT FROM 1500 OR status IS DISTINCT FROM 'running'
SELECT machine_id, time, temperature IS DISTINCT FROM vibration, rpm IS NOT DISTINCT FROM 1500, status IS DISTINCT FROM NULL FROM readings ORDER BY machine_id, time LIMIT 40
SELECT NULL::int IS DISTINCT FROM NULL, NULL::int IS NOT DISTINCT FROM NULL, 1 IS DISTINCT FROM 1.0, 'a' IS DISTINCT FROM 'b', 2 IS NOT DISTINCT FROM NULL
SELECT count(*) FROM readings WHERE temperature > 60 OR vibration > 3
SELECT count(*) FROM readings WHERE temperature > 60 AND vibration > 3
SELECT count(*) FROM readings WHERE rpm = 0
SELECT count(*) FROM readings WHERE temperature = -999
-- aggregates
SELECT min(temperature), max(temperature), sum(rpm) FROM readings
SELECT avg(vibration) FROM readings
SELECT avg(rpm), sum(rpm), min(rpm), max(rpm) FROM readings
SELECT stddev(temperature), variance(temperature) FROM readings
SELECT stddev_pop(power), var_pop(power), stddev_samp(power), var_samp(power) FROM readings
SELECT count(DISTINCT machine_id), count(DISTINCT status) FROM readings
SELECT bool_and(temperature > 0), bool_or(temperature > 90) FROM readings
SELECT min(machine_id), max(status) FROM readings
SELECT min(time), max(time) FROM readings
SELECT count(*), sum(temperature) FROM readings WHERE temperature > 1000
SELECT count(*) FILTER (WHERE vibration > 1), count(*) FROM readings
SELECT machine_id, avg(temperature) FILTER (WHERE status = 'ok'), max(rpm) FILTER (WHERE rpm > 1000), count(DISTINCT status) FILTER (WHERE vibration IS NOT NULL) FROM readings GROUP BY 1 ORDER BY 1
SELECT sum(rpm) FILTER (WHERE status <> 'ok'), min(time) FILTER (WHERE temperature > 80) FROM readings
SELECT max(temperature) FROM readings WHERE false
SELECT machine_id, regr_slope(vibration, temperature), regr_intercept(vibration, temperature), regr_r2(vibration, temperature), corr(vibration, temperature), regr_count(vibration, temperature) FROM readings GROUP BY 1 ORDER BY 1
SELECT covar_pop(rpm, temperature), covar_samp(rpm, temperature), corr(rpm, rpm), regr_slope(rpm, vibration) FROM readings
SELECT regr_slope(temperature, 1), corr(temperature, 5), regr_r2(1, temperature), regr_count(temperature, 1) FROM readings WHERE machine_id = 'M-0001'
SELECT regr_slope(vibration, temperature), corr(vibration, temperature) FROM readings WHERE false
-- GROUP BY
SELECT machine_id, count(*) FROM readings GROUP BY machine_id ORDER BY machine_id
SELECT machine_id, avg(vibration) AS avg_vibration FROM readings GROUP BY machine_id ORDER BY avg_vibration DESC, machine_id
SELECT status, count(*) AS n FROM readings GROUP BY status ORDER BY n DESC, status
SELECT status, count(*) FROM readings GROUP BY 1 ORDER BY 1
SELECT machine_id, status, count(*) FROM readings GROUP BY machine_id, status ORDER BY 1, 2
SELECT machine_id, max(temperature) - min(temperature) AS spread FROM readings GROUP BY machine_id ORDER BY machine_id
SELECT machine_id, count(*) FROM readings GROUP BY machine_id HAVING count(*) > 120 ORDER BY machine_id
SELECT machine_id, avg(temperature) FROM readings GROUP BY machine_id HAVING avg(temperature) > 70 ORDER BY 2 DESC
SELECT __dt, count(*) FROM readings GROUP BY __dt ORDER BY __dt
SELECT date_trunc('day', time) AS day, count(*) FROM readings GROUP BY 1 ORDER BY 1
SELECT date_trunc('hour', time) AS hour, machine_id, avg(temperature) FROM readings WHERE machine_id = 'M-0002' GROUP BY 1, 2 ORDER BY 1
SELECT extract(hour from time) AS h, count(*) FROM readings GROUP BY 1 ORDER BY 1
SELECT upper(status), count(*) FROM readings GROUP BY upper(status) ORDER BY 1
SELECT rpm > 0 AS spinning, count(*) FROM readings GROUP BY 1 ORDER BY 1
SELECT CASE WHEN temperature > 75 THEN 'hot' WHEN temperature > 60 THEN 'warm' ELSE 'cool' END AS band, count(*) FROM readings GROUP BY 1 ORDER BY 1
SELECT count(*) FROM (VALUES (1), (2), (2)) AS v(x)
-- ORDER BY, LIMIT, OFFSET, DISTINCT
SELECT machine_id, time, temperature FROM readings ORDER BY time DESC, machine_id LIMIT 5
SELECT machine_id, time FROM readings ORDER BY machine_id DESC, time LIMIT 3 OFFSET 7
SELECT temperature FROM readings ORDER BY temperature NULLS FIRST, time, machine_id LIMIT 3
SELECT temperature FROM readings ORDER BY temperature DESC NULLS LAST, time, machine_id LIMIT 3
SELECT temperature FROM readings ORDER BY temperature DESC, time, machine_id LIMIT 3
SELECT DISTINCT status FROM readings ORDER BY status
SELECT DISTINCT machine_id, status FROM readings ORDER BY 1, 2 LIMIT 10
SELECT machine_id FROM machines ORDER BY machine_id LIMIT 0
SELECT machine_id FROM machines ORDER BY machine_id OFFSET 10
-- reference table
SELECT * FROM machines ORDER BY machine_id
SELECT model_type, count(*), sum(capacity), avg(capacity) FROM machines GROUP BY model_type ORDER BY model_type
SELECT location, count(*) FROM machines GROUP BY location ORDER BY location NULLS FIRST
SELECT machine_id FROM machines WHERE capacity IS NULL ORDER BY 1
SELECT machine_id, coalesce(capacity, -1) FROM machines ORDER BY 1
SELECT machine_id, nullif(capacity, 10) FROM machines ORDER BY 1
SELECT count(*) FROM machines WHERE location LIKE 'plant-a%'
-- edge values
SELECT * FROM nums ORDER BY id
SELECT id, a + 1, b - 1, x * 2 FROM nums WHERE id IN (1, 2, 4, 5) ORDER BY id
SELECT a / 3, a % 3, -a FROM nums WHERE id IN (1, 2, 4) ORDER BY id
SELECT id FROM nums WHERE x IN (1.5, -0.0, 1e10, 2) ORDER BY id
SELECT id FROM nums WHERE x NOT IN (1.5, 0, NULL) ORDER BY id
SELECT id, x IN (3.75, -0.25, 7), x NOT IN (3.75, -1e-5) FROM nums ORDER BY id
SELECT id FROM nums WHERE b IN (100, 2147483648, -9223372036854775808) ORDER BY id
SELECT 7 / 2, -7 / 2, 7 % -3, -7 % 3
SELECT 7.0 / 2, 1 / 3.0, 2 ^ 10
SELECT a + 1 FROM nums WHERE id = 6
SELECT a - 1 FROM nums WHERE id = 7
SELECT b + 1 FROM nums WHERE id = 6
SELECT a * 2 FROM nums WHERE id = 6
SELECT -a FROM nums WHERE id = 7
SELECT a / 0 FROM nums WHERE id = 1
SELECT x / 0 FROM nums WHERE id = 1
SELECT 1 / 0
SELECT 5 % 0
SELECT sum(a), sum(b) FROM nums WHERE id <> 6 AND id <> 7
SELECT avg(a), avg(x) FROM nums
SELECT count(*), count(a), count(s), count(flag) FROM nums
SELECT min(s), max(s) FROM nums
-- Case mapping of non-ASCII letters depends on the database's locale (PostgreSQL under the C
-- locale maps ASCII only; fleetdb maps like a UTF-8 locale), so id 7 ('δelta') is left out.
SELECT s, length(s), upper(s), lower(s) FROM nums WHERE id <> 7 ORDER BY id
SELECT length(s), s FROM nums WHERE id = 7
SELECT s || '!' FROM nums ORDER BY id
SELECT flag, NOT flag, flag IS TRUE, flag IS NOT FALSE FROM nums ORDER BY id
SELECT id FROM nums WHERE flag ORDER BY id
SELECT id FROM nums WHERE NOT flag ORDER BY id
SELECT id FROM nums WHERE a = b ORDER BY id
SELECT id FROM nums WHERE a > 0 AND x > 1 ORDER BY id
SELECT id, greatest(a, 0), least(a, 0) FROM nums ORDER BY id
SELECT id, CASE WHEN a IS NULL THEN 'none' WHEN a > 0 THEN 'pos' ELSE 'nonpos' END FROM nums ORDER BY id
SELECT id, CASE a WHEN 10 THEN 'ten' WHEN 0 THEN 'zero' END FROM nums ORDER BY id
-- NULL semantics
SELECT NULL = NULL, NULL <> 1, 1 + NULL, NULL IS NULL
SELECT true AND NULL, false AND NULL, true OR NULL, false OR NULL
SELECT 1 IN (1, NULL), 2 IN (1, NULL), 2 NOT IN (1, NULL)
SELECT coalesce(NULL, NULL, 3), nullif(2, 2), nullif(2, 3)
-- literals, casts, text functions
SELECT 1, 1.5, 'text', true, NULL
SELECT 2147483648, -2147483648, 9223372036854775807
SELECT '42'::int + 1, '2.5'::float8 * 2, 3.7::int, 2.5::int, (-2.5)::int
SELECT 10::text || 'x', 1.5::text
SELECT 'abc'::int
SELECT CAST('t' AS boolean), CAST(1 AS boolean)
SELECT substr('factory', 2, 3), substring('factory' from 3), substring('factory' from 2 for 2)
SELECT replace('M-0001', '-', '_'), split_part('plant-a/line-1', '/', 2), split_part('a,b', ',', 5)
SELECT trim('  x  '), ltrim('xxy', 'x'), rtrim('yxx', 'x'), btrim('--a--', '-')
SELECT strpos('machine', 'chi'), position('z' in 'abc'), length('')
SELECT concat('a', 1, NULL, true), lower('AbC'), upper('straße')
SELECT 'a' < 'b', 'B' < 'a', 'abc' = 'abc'
-- math
SELECT abs(-3), abs(-2.5), round(2.5), round(-2.5), round(3.14159, 2)
SELECT ceil(2.1), floor(-2.1), trunc(2.789, 1), sign(-4.2), sign(0)
SELECT sqrt(2.0), power(2, 0.5), exp(1.0), ln(10.0), log(100.0)
SELECT sin(0), cos(0), atan2(1, 1), tan(0)
SELECT mod(17, 5), mod(-17, 5), pi()
SELECT sqrt(-1)
SELECT ln(0)
SELECT round(temperature) FROM readings WHERE machine_id = 'M-0004' ORDER BY time LIMIT 5
SELECT machine_id, round(avg(temperature)::numeric, 2) FROM readings GROUP BY 1 ORDER BY 1
-- time
SELECT count(*) FROM readings WHERE time >= '2026-01-02'
SELECT count(*) FROM readings WHERE time < '2026-01-02 00:10:00+00'
SELECT count(*) FROM readings WHERE time > timestamptz '2026-01-01 00:05:00+00' AND time <= '2026-01-01 00:10:00+00'
SELECT count(*) FROM readings WHERE time BETWEEN '2026-01-01' AND '2026-01-02'
SELECT count(*) FROM readings WHERE __dt = '2026-01-02'
SELECT min(time) + interval '1 day', max(time) - interval '90 minutes' FROM readings
SELECT timestamptz '2026-03-18 10:05:00+00' + interval '1 month'
SELECT timestamptz '2026-01-31 00:00:00+00' + interval '1 month'
SELECT date_trunc('minute', timestamptz '2026-03-18 10:05:33.5+00'), date_trunc('month', timestamptz '2026-03-18 10:05:00+00')
SELECT date_trunc('week', timestamptz '2026-03-18 10:05:00+00'), date_trunc('year', timestamptz '2026-03-18 10:05:00+00')
SELECT extract(year from timestamptz '2026-03-18 10:05:00+00'), extract(dow from timestamptz '2026-03-18 10:05:00+00'), extract(doy from timestamptz '2026-03-18 10:05:00+00')
SELECT date_part('epoch', timestamptz '2026-01-01 00:00:00+00'), to_timestamp(1767225600)
SELECT date_bin('10 minutes', timestamptz '2026-03-18 10:07:00+00', timestamptz '2026-01-01 00:00:00+00')
SELECT date_bin('15 minutes', time, timestamptz '2026-01-01') AS bucket, count(*) FROM readings WHERE machine_id = 'M-0001' GROUP BY 1 ORDER BY 1
SELECT date '2026-01-05', date '2026-01-05' + interval '1 day'
SELECT '2026-01-01 12:00:00+02'::timestamptz
SELECT 'garbage'::timestamptz
SELECT interval '1 day 2 hours', interval '90 minutes', interval '1 year 2 months'
-- errors
SELECT nosuchcolumn FROM readings
SELECT * FROM nosuchtable
SELECT machine_id, count(*) FROM readings
SELECT sum(machine_id) FROM readings
SELECT 'a' + 1
SELECT 1 +
-- joins
SELECT m.model_type, count(*), avg(r.vibration) FROM readings r JOIN machines m ON r.machine_id = m.machine_id GROUP BY m.model_type ORDER BY 1
SELECT m.machine_id, count(r.time) FROM machines m LEFT JOIN readings r ON r.machine_id = m.machine_id GROUP BY m.machine_id ORDER BY 1
SELECT count(*) FROM readings r RIGHT JOIN machines m ON r.machine_id = m.machine_id
SELECT count(*), count(r.time), count(m.machine_id) FROM readings r FULL JOIN machines m ON r.machine_id = m.machine_id AND r.temperature > 70
SELECT a.id, b.id FROM nums a CROSS JOIN nums b WHERE a.id < 3 AND b.id < 3 ORDER BY 1, 2
SELECT a.id, b.id FROM nums a, nums b WHERE a.a = b.a AND a.id <> b.id ORDER BY 1, 2
SELECT machine_id, model_type FROM machines JOIN (SELECT DISTINCT machine_id FROM readings WHERE status = 'idle') i USING (machine_id) ORDER BY 1
SELECT * FROM machines m JOIN machines n USING (machine_id) WHERE m.capacity > 20 ORDER BY machine_id
SELECT m.location, r.status, count(*) FROM readings r JOIN machines m ON m.machine_id = r.machine_id WHERE r.temperature > 60 GROUP BY 1, 2 ORDER BY 1, 2
SELECT n1.id, n2.id FROM nums n1 JOIN nums n2 ON n1.a < n2.a AND n2.id = 1 ORDER BY 1
SELECT count(*) FROM machines m1 JOIN machines m2 ON m1.capacity = m2.capacity
SELECT n.id, m.machine_id FROM nums n LEFT JOIN machines m ON m.capacity = n.a ORDER BY 1, 2
SELECT m.*, n.id FROM machines m JOIN nums n ON n.a = m.capacity ORDER BY 1, 5
-- conditions on one side of a join applied below it (and where a join forbids it, not)
SELECT r.machine_id, m.model_type, r.time, r.temperature FROM readings r JOIN machines m ON r.machine_id = m.machine_id WHERE r.temperature > 80 AND m.capacity >= 20 ORDER BY 1, 3
SELECT m.model_type, count(*), round(avg(r.vibration)::numeric, 6) FROM readings r JOIN machines m ON r.machine_id = m.machine_id WHERE r.time > (SELECT max(time) FROM readings) - INTERVAL '1 day' GROUP BY 1 ORDER BY 1
SELECT m.machine_id, count(r.time) FROM machines m LEFT JOIN readings r ON r.machine_id = m.machine_id WHERE r.status = 'idle' GROUP BY 1 ORDER BY 1
SELECT m.machine_id, count(r.time) FROM machines m LEFT JOIN readings r ON r.machine_id = m.machine_id WHERE m.capacity IS NULL OR r.time IS NULL GROUP BY 1 ORDER BY 1
SELECT m.machine_id, r.time FROM machines m LEFT JOIN readings r ON r.machine_id = m.machine_id AND r.temperature > 85 WHERE m.capacity IS NULL ORDER BY 1, 2
SELECT count(*), count(r.time) FROM readings r RIGHT JOIN machines m ON r.machine_id = m.machine_id WHERE m.location IS NULL
SELECT count(*), count(r.time) FROM readings r RIGHT JOIN machines m ON r.machine_id = m.machine_id WHERE r.temperature > 75
SELECT count(*), count(r.time), count(m.machine_id) FROM readings r FULL JOIN machines m ON r.machine_id = m.machine_id WHERE r.temperature > 70 OR m.capacity IS NULL
SELECT count(*), count(m.machine_id) FROM readings r FULL JOIN machines m ON r.machine_id = m.machine_id WHERE m.capacity > 10
SELECT count(*) FROM readings r JOIN machines m ON r.machine_id = m.machine_id AND r.status = 'running' AND m.capacity > 10
SELECT count(*), sum(n.id) FROM readings r JOIN machines m ON r.machine_id = m.machine_id JOIN nums n ON n.a = m.capacity WHERE n.id < 5 AND r.status = 'running' AND m.location IS NOT NULL
SELECT count(*) FROM readings r, machines m WHERE r.machine_id = m.machine_id AND r.rpm > 1500 AND m.model_type LIKE '%A%'
SELECT n1.id, n2.id FROM nums n1 JOIN nums n2 ON n1.a = n2.a WHERE n1.id <> n2.id AND n1.a IS NOT NULL ORDER BY 1, 2
SELECT n1.id, n2.id FROM nums n1 LEFT JOIN nums n2 ON n1.a < n2.a AND n2.id > 3 WHERE n1.id < 4 ORDER BY 1, 2
-- CTEs, set operations, subqueries, DISTINCT ON
WITH hot AS (SELECT machine_id, max(temperature) AS t FROM readings GROUP BY machine_id) SELECT machine_id, t FROM hot WHERE t > 75 ORDER BY 1
WITH a AS (SELECT 1 AS x), b (y) AS (SELECT x + 1 FROM a) SELECT x, y FROM a, b
SELECT machine_id FROM machines WHERE location = 'plant-a/line-1' UNION SELECT machine_id FROM machines WHERE capacity = 10 ORDER BY 1
SELECT status FROM readings UNION ALL SELECT model_type FROM machines ORDER BY 1 LIMIT 8
SELECT count(*) FROM (SELECT status FROM readings UNION ALL SELECT status FROM readings) u
SELECT a FROM nums INTERSECT SELECT capacity FROM machines ORDER BY 1
SELECT a FROM nums EXCEPT SELECT capacity FROM machines ORDER BY 1 NULLS FIRST
SELECT 1 UNION SELECT 1.5 ORDER BY 1
SELECT 1 UNION ALL SELECT 1 INTERSECT ALL SELECT 1
SELECT x FROM (VALUES (1), (1), (2), (3)) v(x) EXCEPT ALL SELECT x FROM (VALUES (1), (3)) w(x) ORDER BY 1
SELECT 'a' UNION SELECT 1
SELECT machine_id FROM machines WHERE machine_id IN (SELECT machine_id FROM readings WHERE temperature > 85) ORDER BY 1
SELECT machine_id FROM machines WHERE machine_id NOT IN (SELECT machine_id FROM readings) ORDER BY 1
SELECT count(*) FROM readings WHERE temperature > (SELECT avg(temperature) FROM readings)
SELECT (SELECT max(capacity) FROM machines), (SELECT count(*) FROM nums)
SELECT EXISTS (SELECT 1 FROM machines WHERE capacity > 30), NOT EXISTS (SELECT 1 FROM nums WHERE id > 100)
SELECT (SELECT machine_id FROM machines)
SELECT DISTINCT ON (machine_id) machine_id, time, temperature FROM readings ORDER BY machine_id, time DESC
SELECT DISTINCT ON (machine_id) machine_id, time, temperature, status, __dt FROM readings ORDER BY machine_id, time DESC
SELECT DISTINCT ON (machine_id) time, machine_id FROM readings ORDER BY machine_id, time DESC LIMIT 5
SELECT DISTINCT ON (machine_id) machine_id, time FROM readings WHERE time < (SELECT max(time) FROM readings) - INTERVAL '1 day' ORDER BY machine_id, time DESC
SELECT DISTINCT ON (status) status, time FROM readings ORDER BY status, time DESC
SELECT DISTINCT ON (machine_id) machine_id, time FROM readings ORDER BY machine_id, time
SELECT count(*) FROM (SELECT DISTINCT ON (machine_id) machine_id, time FROM readings ORDER BY machine_id, time DESC) t
SELECT DISTINCT ON (status) status, machine_id FROM readings ORDER BY status, machine_id
SELECT DISTINCT ON (model_type) model_type, machine_id, capacity FROM machines ORDER BY model_type, capacity DESC NULLS LAST, machine_id
-- more coverage of supported features
SELECT machine_id, sum(CASE WHEN status = 'idle' THEN 1 ELSE 0 END) AS idle_n FROM readings GROUP BY machine_id ORDER BY idle_n DESC, machine_id LIMIT 5
SELECT status, round(avg(power)::numeric, 3), min(rpm), max(rpm) FROM readings GROUP BY status ORDER BY status
SELECT machine_id, count(*) FROM readings WHERE temperature IS NOT NULL GROUP BY machine_id HAVING min(temperature) > 50 AND max(temperature) < 100 ORDER BY 1
SELECT count(*) FROM readings WHERE status IN ('idle', 'warning') AND rpm < 100
SELECT count(*) FROM readings WHERE coalesce(temperature, 0) < 1
SELECT machine_id, max(time) - min(time) > interval '1 hour' FROM readings GROUP BY 1 ORDER BY 1
SELECT machine_id, temperature FROM readings ORDER BY abs(temperature - 65), machine_id, time LIMIT 5
SELECT machine_id FROM readings GROUP BY machine_id ORDER BY count(*) DESC, machine_id LIMIT 3
SELECT upper(substr(machine_id, 1, 1)) || lower(status), count(*) FROM readings GROUP BY 1 ORDER BY 1
SELECT length(machine_id), count(DISTINCT machine_id) FROM readings GROUP BY 1
SELECT date_trunc('hour', time) AS h, count(DISTINCT machine_id) FROM readings GROUP BY 1 ORDER BY 1 LIMIT 5
SELECT extract(day from time) AS d, extract(minute from time) AS m, count(*) FROM readings GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 10
SELECT count(*) FROM readings WHERE time >= '2026-01-02 00:00:00+00' AND time < '2026-01-03 00:00:00+00' AND machine_id = 'M-0002'
SELECT min(vibration), max(vibration) FROM readings WHERE machine_id = 'M-0005' AND time BETWEEN '2026-01-03' AND '2026-01-04'
SELECT string_agg(machine_id, ',') FROM (SELECT DISTINCT machine_id FROM readings ORDER BY 1) t
SELECT count(*) FROM (SELECT machine_id, avg(temperature) AS a FROM readings GROUP BY machine_id) t WHERE a > 65
SELECT t.status, t.n FROM (SELECT status, count(*) AS n FROM readings GROUP BY status) t WHERE t.n > 10 ORDER BY t.n DESC
WITH per AS (SELECT machine_id, avg(vibration) AS v FROM readings GROUP BY 1) SELECT m.model_type, round(max(per.v)::numeric, 4) FROM per JOIN machines m USING (machine_id) GROUP BY 1 ORDER BY 1
SELECT m.location, count(r.time) FROM machines m LEFT JOIN readings r ON r.machine_id = m.machine_id AND r.status = 'idle' GROUP BY 1 ORDER BY 1 NULLS LAST
SELECT machine_id FROM machines WHERE capacity BETWEEN 15 AND 35 ORDER BY 1
SELECT machine_id, CASE WHEN capacity >= 30 THEN 'big' WHEN capacity >= 20 THEN 'mid' WHEN capacity IS NULL THEN 'unknown' ELSE 'small' END FROM machines ORDER BY 1
SELECT model_type, string_agg(machine_id, ';') FROM (SELECT * FROM machines ORDER BY machine_id) m GROUP BY model_type ORDER BY 1
SELECT id, a * b FROM nums WHERE id IN (1, 4, 5) ORDER BY id
SELECT id, x / 2, x * x, -x FROM nums WHERE x IS NOT NULL ORDER BY id
SELECT id, round(x::numeric, 1), trunc(x), ceil(x), floor(x) FROM nums WHERE x IS NOT NULL AND abs(x) < 100 ORDER BY id
SELECT sum(x), avg(x), min(x), max(x) FROM nums
SELECT id FROM nums WHERE s LIKE '%a' ORDER BY id
SELECT id FROM nums WHERE s ILIKE 'B%' OR s IS NULL ORDER BY id
SELECT id, coalesce(s, '(none)'), coalesce(flag, false) FROM nums ORDER BY id
SELECT count(*), count(DISTINCT s), count(DISTINCT a) FROM nums
SELECT a, count(*) FROM nums GROUP BY a ORDER BY a NULLS FIRST
SELECT flag, count(*), sum(a) FROM nums GROUP BY flag ORDER BY flag NULLS LAST
SELECT id FROM nums ORDER BY s DESC NULLS LAST, id
SELECT id FROM nums ORDER BY flag, id
SELECT max(id) FROM nums WHERE a IS NULL
SELECT id, a FROM nums WHERE a IN (SELECT capacity FROM machines) ORDER BY id
SELECT id FROM nums WHERE EXISTS (SELECT 1 FROM machines WHERE capacity = 10) AND id < 3 ORDER BY id
SELECT (SELECT count(*) FROM readings) > 1000, (SELECT min(id) FROM nums)
SELECT 10 / 3 * 3, 10 % 3 + 1, (10 + 2) * 3, 2 + 3 * 4
SELECT 1.0 / 8, 5.0 / 2 * 2, 0.1 + 0.2
SELECT -5 / 2, -5 % 2, 5 / -2, abs(-5 / 2)
SELECT 2147483647::bigint + 1, -2147483648::bigint - 1
SELECT 9223372036854775807 + 1
SELECT CAST(2.5 AS integer), CAST(3.5 AS integer), CAST(-2.5 AS integer)
SELECT '  padded  ' = 'padded', trim('  padded  ') = 'padded'
SELECT 'abc' || NULL, NULL || 'abc', concat('abc', NULL)
SELECT greatest('b', 'a', 'c'), least('b', 'a', 'c')
SELECT replace('aaa', 'a', 'bb'), replace('abc', '', 'x'), split_part('a-b-c', '-', -1)
SELECT timestamptz '2026-02-28 23:00:00+00' + interval '2 hours', timestamptz '2024-02-29 00:00:00+00' + interval '1 year'
SELECT date_trunc('quarter', timestamptz '2026-08-15 10:00:00+00'), date_trunc('decade', timestamptz '2026-08-15 10:00:00+00')
SELECT extract(quarter from timestamptz '2026-08-15 10:00:00+00'), extract(week from timestamptz '2026-01-01 10:00:00+00'), extract(isodow from timestamptz '2026-01-04 10:00:00+00')
SELECT to_timestamp(0), to_timestamp(1.5)
SELECT interval '1 day' > interval '23 hours', interval '1 month' = interval '30 days'
SELECT timestamptz '2026-01-01 00:00:00+00' < timestamptz '2026-01-01 00:00:00.000001+00'
SELECT DISTINCT ON (a) a, id FROM nums ORDER BY a, id DESC
SELECT DISTINCT ON (location) location, machine_id FROM machines ORDER BY location NULLS FIRST, machine_id DESC
SELECT machine_id, status FROM readings WHERE machine_id = 'M-0001' UNION SELECT machine_id, status FROM readings WHERE machine_id = 'M-0002' ORDER BY 1, 2
SELECT status FROM readings WHERE machine_id = 'M-0001' EXCEPT SELECT status FROM readings WHERE machine_id = 'M-0002' ORDER BY 1
SELECT timestamptz '2026-01-02 02:00:00+00' - timestamptz '2026-01-01 00:00:00+00', timestamptz '2026-01-01' - timestamptz '2026-01-01 00:00:01+00'
SELECT machine_id, max(time) - min(time) FROM readings GROUP BY 1 ORDER BY 1
-- window functions
SELECT id, row_number() OVER (ORDER BY id), rank() OVER (ORDER BY a), dense_rank() OVER (ORDER BY a) FROM nums ORDER BY id
SELECT id, a, rank() OVER (ORDER BY a DESC), dense_rank() OVER (ORDER BY a DESC NULLS LAST) FROM nums ORDER BY id
SELECT id, percent_rank() OVER (ORDER BY a), cume_dist() OVER (ORDER BY a) FROM nums ORDER BY id
SELECT id, ntile(3) OVER (ORDER BY id), ntile(2) OVER (ORDER BY id DESC) FROM nums ORDER BY id
SELECT id, lag(a) OVER (ORDER BY id), lead(a) OVER (ORDER BY id), lag(a, 2, -1) OVER (ORDER BY id), lead(s, 3, 'none') OVER (ORDER BY id) FROM nums ORDER BY id
SELECT id, first_value(a) OVER (ORDER BY id), last_value(a) OVER (ORDER BY id), nth_value(a, 2) OVER (ORDER BY id) FROM nums ORDER BY id
SELECT id, last_value(id) OVER (ORDER BY flag, id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM nums ORDER BY id
SELECT id, sum(a) OVER (), count(*) OVER (), max(x) OVER () FROM nums ORDER BY id
SELECT id, sum(a) OVER (ORDER BY id), avg(a) OVER (ORDER BY id), count(a) OVER (ORDER BY id) FROM nums ORDER BY id
-- fleetdb refuses: 22003 (sums of bigint are numeric, a double: 9223372036854775807 + 100 has no double)
SELECT id, sum(b) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING), min(b) OVER (ORDER BY id ROWS 2 PRECEDING) FROM nums ORDER BY id
SELECT id, sum(a) OVER (ORDER BY a RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM nums ORDER BY id
SELECT id, count(*) OVER (ORDER BY a RANGE BETWEEN 5 PRECEDING AND 5 FOLLOWING) FROM nums ORDER BY id
SELECT id, sum(id) OVER (ORDER BY x RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM nums ORDER BY id
SELECT id, string_agg(s, ',') OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING) FROM nums ORDER BY id
SELECT id, sum(a) OVER (ORDER BY id ROWS BETWEEN 2 FOLLOWING AND 3 FOLLOWING) FROM nums ORDER BY id
SELECT id, sum(a) OVER (ORDER BY id ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING) FROM nums ORDER BY id
SELECT id, flag, row_number() OVER (PARTITION BY flag ORDER BY id DESC) FROM nums ORDER BY id
SELECT id, flag, sum(a) OVER (PARTITION BY flag), count(*) OVER (PARTITION BY flag ORDER BY a) FROM nums ORDER BY id
SELECT id, sum(a) OVER w, max(a) OVER w FROM nums WINDOW w AS (ORDER BY id ROWS 1 PRECEDING) ORDER BY id
SELECT machine_id, time, temperature - lag(temperature) OVER (PARTITION BY machine_id ORDER BY time) AS delta FROM readings WHERE machine_id IN ('M-0001', 'M-0002') AND temperature IS NOT NULL ORDER BY machine_id, time, delta LIMIT 40
SELECT machine_id, time, avg(vibration) OVER (PARTITION BY machine_id ORDER BY time ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS ma FROM readings WHERE machine_id = 'M-0003' ORDER BY time, ma
SELECT machine_id, count(*) OVER (PARTITION BY machine_id ORDER BY time RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW) AS n FROM readings WHERE machine_id = 'M-0004' ORDER BY time, n
SELECT machine_id, avg(temperature) AS t, rank() OVER (ORDER BY avg(temperature) DESC) FROM readings GROUP BY machine_id ORDER BY 3, 1
SELECT status, count(*), sum(count(*)) OVER () AS total, round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct FROM readings GROUP BY status ORDER BY status
SELECT * FROM (SELECT machine_id, time, row_number() OVER (PARTITION BY machine_id ORDER BY time DESC) AS rn FROM readings) t WHERE rn = 1 ORDER BY machine_id
SELECT model_type, machine_id, capacity, dense_rank() OVER (PARTITION BY model_type ORDER BY capacity DESC NULLS LAST) FROM machines ORDER BY model_type, machine_id
SELECT id, row_number() OVER (ORDER BY id) AS rn FROM nums ORDER BY rn DESC LIMIT 3
SELECT id, first_value(s) OVER (PARTITION BY a ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM nums ORDER BY id
SELECT row_number() OVER (ORDER BY id) FROM nums WHERE false
SELECT id FROM nums WHERE row_number() OVER (ORDER BY id) > 2
SELECT id, row_number() FROM nums
SELECT id, ntile(0) OVER (ORDER BY id) FROM nums
SELECT id, sum(a) OVER (ORDER BY id ROWS BETWEEN -1 PRECEDING AND CURRENT ROW) FROM nums
SELECT id, sum(a) OVER (ORDER BY id, a RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM nums
SELECT id, sum(a) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND 1 PRECEDING) FROM nums
-- ordered-set aggregates
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY temperature), percentile_disc(0.5) WITHIN GROUP (ORDER BY temperature) FROM readings
SELECT machine_id, percentile_cont(0.9) WITHIN GROUP (ORDER BY vibration), percentile_disc(0.1) WITHIN GROUP (ORDER BY vibration DESC) FROM readings GROUP BY machine_id ORDER BY machine_id
SELECT percentile_cont(0) WITHIN GROUP (ORDER BY a), percentile_cont(1) WITHIN GROUP (ORDER BY a), percentile_disc(0) WITHIN GROUP (ORDER BY s), percentile_disc(1) WITHIN GROUP (ORDER BY s) FROM nums
SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY b), percentile_disc(0.75) WITHIN GROUP (ORDER BY time) FROM nums, (SELECT min(time) AS time FROM readings) t
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a) FROM nums WHERE false
SELECT percentile_cont(1.5) WITHIN GROUP (ORDER BY a) FROM nums
-- JSON
SELECT id, doc -> 'machine', doc ->> 'machine', doc -> 'temp', doc ->> 'temp' FROM docs ORDER BY id
SELECT id, doc -> 'engine' -> 'rpm', (doc -> 'engine' ->> 'rpm')::int + 1, doc -> 'engine' ->> 'ok' FROM docs ORDER BY id
SELECT id, doc -> 'tags' -> 0, doc -> 'tags' ->> 1, doc -> 1, doc ->> -1, doc -> 2 -> 'three' FROM docs ORDER BY id
SELECT id, json_typeof(doc), json_typeof(doc -> 'temp'), json_typeof(doc -> 'tags') FROM docs ORDER BY id
SELECT id, doc #> '{engine,rpm}', doc #>> '{deep,x,y,1}', doc #>> '{2,three}', doc #> '{}' FROM docs ORDER BY id
SELECT id, doc ->> 'note', doc -> 'a', json_extract_path_text(doc, 'engine', 'ok') FROM docs ORDER BY id
SELECT count(*) FROM docs WHERE doc ->> 'machine' = 'M-1'
SELECT doc ->> 'machine' AS m, count(*) FROM docs GROUP BY 1 ORDER BY 1 NULLS FIRST
SELECT '{"a": [1, 2]}'::json -> 'a', '[1,2,3]'::json ->> 2, jsonb_typeof('{"a":1}'::jsonb -> 'a'), '{"a":1}'::json -> 'b'
SELECT '{"a": 1'::json
SELECT 'x' -> 'a'
SELECT 'x'::text -> 'a'
SELECT id, doc #>> '{a,b' FROM docs
-- regular expressions
SELECT count(*) FROM readings WHERE machine_id ~ '^M-000[1-3]$'
SELECT count(*) FROM readings WHERE status ~* '^RUN' AND machine_id !~ '1$'
SELECT machine_id FROM machines WHERE machine_id ~ '(0|9){2,}' ORDER BY 1
SELECT s, s ~ '^[a-z]+$', s ~* 'ALPHA|beta', s !~* 'a' FROM nums ORDER BY id
SELECT 'abc' ~ 'a(b', 'x' ~ 'x{2,1}'
SELECT id FROM nums WHERE a = ANY('{10,0}') ORDER BY id
SELECT id FROM nums WHERE s = ANY('{alpha,gamma}') AND id <> ALL('{6}') ORDER BY id
-- upserts (the statements are in the setup)
SELECT * FROM upserts ORDER BY id
-- correlated subqueries
SELECT machine_id, (SELECT count(*) FROM readings r WHERE r.machine_id = m.machine_id AND r.temperature > 80) AS hot FROM machines m ORDER BY 1
SELECT machine_id FROM machines m WHERE EXISTS (SELECT 1 FROM readings r WHERE r.machine_id = m.machine_id AND r.status = 'fault') ORDER BY 1
SELECT machine_id FROM machines m WHERE NOT EXISTS (SELECT 1 FROM readings r WHERE r.machine_id = m.machine_id) ORDER BY 1
SELECT id, a FROM nums n WHERE a IN (SELECT capacity FROM machines m WHERE m.capacity >= n.id * 5) ORDER BY id
SELECT id, a NOT IN (SELECT capacity FROM machines m WHERE m.capacity > n.a) AS x FROM nums n ORDER BY id
SELECT id, (SELECT max(b) FROM nums n2 WHERE n2.a = n1.a AND n2.id <> n1.id) FROM nums n1 ORDER BY id
SELECT id, (SELECT s FROM nums n2 WHERE n2.id = n1.id + 1) AS next_s FROM nums n1 ORDER BY id
SELECT id, (SELECT a FROM nums n2 WHERE n2.flag = n1.flag) FROM nums n1 WHERE id = 1
SELECT m.model_type, (SELECT avg(r.vibration) FROM readings r WHERE r.machine_id = m.machine_id) FROM machines m WHERE m.machine_id < 'M-0004' ORDER BY 1, 2
-- bytea
SELECT id, b FROM blobs ORDER BY id
SELECT id FROM blobs WHERE b = '\x616263' ORDER BY id
SELECT '\x0102ff'::bytea, 'abc'::bytea, 'a\\b'::bytea, '\x'::bytea
SELECT '\x0'::bytea
-- ALTER TABLE: every step's outcome or SQLSTATE, and the table in between
CREATE TABLE altered (id INT PRIMARY KEY, name TEXT, score INT)
INSERT INTO altered VALUES (1, 'a', 10), (2, 'b', NULL), (3, 'c', 30)
ALTER TABLE altered ADD COLUMN zone TEXT DEFAULT 'north'
ALTER TABLE altered ADD COLUMN level INT NOT NULL
ALTER TABLE altered ADD COLUMN level INT NOT NULL DEFAULT 1, ADD COLUMN note TEXT
SELECT * FROM altered ORDER BY id
ALTER TABLE altered ADD COLUMN zone TEXT
ALTER TABLE altered ADD COLUMN IF NOT EXISTS zone TEXT
ALTER TABLE altered ADD COLUMN bad INT DEFAULT 'x'
ALTER TABLE altered ALTER COLUMN score SET NOT NULL
UPDATE altered SET score = 0 WHERE score IS NULL
ALTER TABLE altered ALTER COLUMN score SET NOT NULL
INSERT INTO altered (id, name) VALUES (4, 'd')
ALTER TABLE altered ALTER COLUMN score SET DEFAULT 5
INSERT INTO altered (id, name) VALUES (4, 'd')
ALTER TABLE altered RENAME COLUMN name TO label
ALTER TABLE altered RENAME COLUMN nope TO x
ALTER TABLE altered RENAME COLUMN label TO zone
ALTER TABLE altered ALTER COLUMN score TYPE bigint
ALTER TABLE altered ALTER COLUMN label TYPE int
ALTER TABLE altered ALTER COLUMN zone TYPE int USING length(zone)
ALTER TABLE altered ALTER COLUMN zone DROP DEFAULT
ALTER TABLE altered ALTER COLUMN zone TYPE int USING length(zone)
ALTER TABLE altered ALTER COLUMN level TYPE text
SELECT * FROM altered ORDER BY id
SELECT sum(zone), max(level) FROM altered
ALTER TABLE altered DROP COLUMN note
ALTER TABLE altered DROP COLUMN note
ALTER TABLE altered DROP COLUMN IF EXISTS note
ALTER TABLE altered ALTER COLUMN id DROP NOT NULL
ALTER TABLE altered DROP CONSTRAINT altered_pkey
ALTER TABLE altered DROP CONSTRAINT altered_pkey
INSERT INTO altered (id, label) VALUES (4, 'dup')
ALTER TABLE altered ADD PRIMARY KEY (id)
DELETE FROM altered WHERE label = 'dup'
ALTER TABLE altered ADD PRIMARY KEY (id)
ALTER TABLE altered ADD PRIMARY KEY (id)
INSERT INTO altered (id, label) VALUES (4, 'dup')
SELECT * FROM altered ORDER BY id
ALTER TABLE altered RENAME TO altered2
SELECT * FROM altered
SELECT id, label FROM altered2 ORDER BY id
ALTER TABLE altered2 RENAME TO machines
ALTER TABLE IF EXISTS nothing_here ADD COLUMN x INT
ALTER TABLE nothing_here ADD COLUMN x INT
SELECT column_name, column_default IS NOT NULL AS has_default, is_nullable, data_type FROM information_schema.columns WHERE table_name = 'altered2' ORDER BY ordinal_position
-- more string functions
SELECT s, left(s, 2), right(s, 2), left(s, -1), right(s, -10), repeat(s, 2), reverse(s) FROM nums ORDER BY id
SELECT left('abc', 0), right('', 3), repeat('x', -1)
SELECT extract(epoch FROM interval '1 day 2 hours 3.5 seconds'), extract(hour FROM interval '26 hours 5 minutes'), extract(minute FROM interval '26 hours 5 minutes'), extract(day FROM interval '3 days 4 hours')
SELECT extract(epoch FROM interval '1 month'), extract(epoch FROM interval '2 years 3 months'), extract(month FROM interval '14 months'), extract(year FROM interval '14 months')
SELECT true::text, false::text, (1 < 2) || 'x', 'is ' || (2 < 1)
SELECT machine_id, extract(epoch FROM max(time) - min(time)) AS span FROM readings GROUP BY machine_id ORDER BY machine_id LIMIT 3
SELECT to_timestamp(1767225600)
-- timestamps past PostgreSQL's range are 22008, not clamped; rounding to many places
SELECT timestamptz '2026-01-01 00:00:00+00' + interval '300000 years'
SELECT timestamptz '2026-01-01 00:00:00+00' - interval '7000 years'
SELECT timestamptz '2026-01-01 00:00:00+00' + interval '200000 years'
SELECT timestamptz '2026-01-01 00:00:00+00' + interval '100000000 days'
SELECT round(2.5, 0), round(-2.5), round(1234.5678, -2), trunc(-2.77, 1), round(1234.5, -9), trunc(98.7, -1)
-- aggregates over typed kernels: NaN, infinities, overflow, NULL-only groups, times and integers
SELECT sum(v), avg(v) FROM (VALUES (1e308::float8), (1e308::float8)) t(v)
SELECT k, sum(v) FROM (VALUES (1, 1e308::float8), (1, 1e308::float8), (2, 1.0::float8)) t(k, v) GROUP BY k ORDER BY k
SELECT sum(v), avg(v), min(v), max(v) FROM (VALUES ('NaN'::float8), (1.0::float8), ('Infinity'::float8)) t(v)
SELECT min(v), max(v), count(v), count(*) FROM (VALUES ('NaN'::float8), (-1.0::float8), (NULL::float8)) t(v)
SELECT sum(v), avg(v), min(v), max(v) FROM (VALUES ('Infinity'::float8), (1.0::float8)) t(v)
SELECT k, min(v), max(v), sum(v), avg(v), count(v) FROM (VALUES (1, 'NaN'::float8), (1, 2.0), (2, '-Infinity'), (2, 3.0), (3, NULL)) t(k, v) GROUP BY k ORDER BY k
SELECT min(time), max(time), min(rpm), max(rpm), round(avg(rpm)::numeric, 6), sum(rpm), count(rpm) FROM readings
SELECT machine_id, min(time), max(rpm), round(avg(rpm)::numeric, 6), round(sum(temperature)::numeric, 6), min(vibration) FROM readings GROUP BY 1 ORDER BY 1
SELECT count(*), count(x), sum(x), avg(x), min(b), max(b), avg(b), sum(a), sum(b) FROM nums
SELECT min(d), max(d) FROM (VALUES (DATE '2026-01-02'), (DATE '2025-12-31')) t(d)
SELECT avg(v), sum(v) FROM (VALUES (1), (2)) t(v)
SELECT sum(x), avg(x), max(x), min(b) FROM nums WHERE id > 100
SELECT status, count(*), min(time), max(temperature) FROM readings GROUP BY status ORDER BY status
SELECT machine_id, max(time) FROM readings GROUP BY machine_id ORDER BY 1
SELECT max(time) FROM readings GROUP BY machine_id
-- aggregates pushed below a join (aggregated per key first, then joined and merged): either
-- side, no GROUP BY, duplicate keys on the other side, NULL keys, empty results, NULL-only inputs
SELECT m.model_type, count(*), count(r.rpm), min(r.temperature), max(r.time), round(sum(r.vibration)::numeric, 6), round(avg(r.power)::numeric, 6) FROM readings r JOIN machines m ON r.machine_id = m.machine_id GROUP BY m.model_type ORDER BY 1
SELECT m.location, count(*), round(avg(r.vibration)::numeric, 6), max(r.status) FROM machines m JOIN readings r ON r.machine_id = m.machine_id GROUP BY m.location ORDER BY 1 NULLS FIRST
SELECT count(*), round(avg(r.temperature)::numeric, 6), min(r.vibration) FROM readings r JOIN machines m ON r.machine_id = m.machine_id WHERE m.capacity > 10
SELECT count(*), avg(r.temperature), min(r.vibration), sum(r.power) FROM readings r JOIN machines m ON r.machine_id = m.machine_id WHERE m.model_type = 'none'
SELECT m1.capacity, count(*), round(avg(r.temperature)::numeric, 6) FROM readings r JOIN machines m1 ON r.machine_id = m1.machine_id JOIN machines m2 ON m1.capacity = m2.capacity GROUP BY 1 ORDER BY 1
SELECT n.a, count(*), avg(m.x), sum(m.x), min(m.s) FROM nums n JOIN nums m ON n.a = m.a GROUP BY n.a ORDER BY 1
SELECT n.flag, count(*), avg(m.x), max(m.b) FROM nums n JOIN nums m ON n.id = m.id GROUP BY n.flag ORDER BY 1 NULLS FIRST
SELECT m.model_type, avg(v.x), count(v.x), sum(v.x) FROM (VALUES ('M-0001', NULL::float8), ('M-0001', NULL::float8), ('M-0002', 'Infinity'::float8), ('M-0002', 1.0)) v(id, x) JOIN machines m ON m.machine_id = v.id GROUP BY 1 ORDER BY 1
-- text compared with a constant over dictionary-coded columns, files and memtable mixed
SELECT status, count(*) FROM readings WHERE status > 'idle' GROUP BY status ORDER BY 1
SELECT count(*) FROM readings WHERE machine_id <= 'M-0004' AND status <> 'running'
SELECT machine_id, count(*) FROM readings WHERE machine_id = 'M-0003' OR machine_id >= 'M-0011' GROUP BY 1 ORDER BY 1
-- whole blocks answered from their statistics (files whole, or cut by the time range; the memtable beside them)
SELECT count(*), count(temperature), round(sum(temperature)::numeric, 6), round(avg(vibration)::numeric, 6), min(power), max(power), sum(rpm), min(rpm), max(rpm), min(time), max(time) FROM readings
SELECT count(*), count(rpm), round(avg(temperature)::numeric, 6), max(vibration), min(time) FROM readings WHERE time >= (SELECT min(time) FROM readings) + INTERVAL '1 day'
SELECT count(*), sum(rpm), min(vibration), max(time) FROM readings WHERE time > (SELECT min(time) FROM readings) AND time <= (SELECT max(time) FROM readings) - INTERVAL '2 hours'
SELECT count(*), avg(rpm) FROM readings WHERE time < '2000-01-01 00:00:00+00'
SELECT status, count(*), count(status) FROM readings GROUP BY status ORDER BY 1
SELECT status, count(*) FROM readings WHERE time >= (SELECT min(time) FROM readings) + INTERVAL '30 hours' GROUP BY status ORDER BY 1
SELECT machine_id, count(*) FROM readings GROUP BY machine_id ORDER BY 1
-- percentiles of doubles by selection (NaN above every number), DISTINCT counted once per batch
SELECT machine_id, percentile_cont(0.95) WITHIN GROUP (ORDER BY vibration), percentile_disc(0.5) WITHIN GROUP (ORDER BY temperature DESC), percentile_cont(0.25) WITHIN GROUP (ORDER BY power DESC) FROM readings GROUP BY 1 ORDER BY 1
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_disc(1) WITHIN GROUP (ORDER BY v), percentile_cont(0.9) WITHIN GROUP (ORDER BY v DESC), percentile_disc(0) WITHIN GROUP (ORDER BY v) FROM (VALUES ('NaN'::float8), (1.0), (2.0), (NULL)) t(v)
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM (VALUES (NULL::float8)) t(v)
SELECT count(DISTINCT machine_id), count(DISTINCT status), count(DISTINCT rpm), count(DISTINCT time) FROM readings WHERE time > (SELECT max(time) FROM readings) - INTERVAL '1 hour'
SELECT count(DISTINCT machine_id), count(DISTINCT s), count(DISTINCT b) FROM readings, nums WHERE nums.id < 4
-- DISTINCT over integers and times kept unboxed: every aggregate over them, grouped or not, NULLs left out
SELECT machine_id, count(DISTINCT rpm), sum(DISTINCT rpm), avg(DISTINCT rpm), min(DISTINCT rpm), max(DISTINCT time), count(DISTINCT date_trunc('hour', time)) FROM readings GROUP BY 1 ORDER BY 1
SELECT count(DISTINCT rpm), sum(DISTINCT rpm), count(DISTINCT time), min(DISTINCT time), count(DISTINCT rpm / 100) FROM readings
SELECT count(DISTINCT a), sum(DISTINCT a), avg(DISTINCT a), count(DISTINCT b), max(DISTINCT b), min(DISTINCT b) FROM nums
-- fleetdb refuses: 22003 (sums of bigint are numeric, a double: 9223372036854775807 + 100 has no double)
SELECT flag, count(DISTINCT a), sum(DISTINCT b) FROM nums GROUP BY 1 ORDER BY 1
-- ORDER BY … LIMIT as top-N: ties, NULLs first and last, OFFSET past the end, several keys
SELECT machine_id, time, vibration FROM readings ORDER BY vibration DESC NULLS LAST, machine_id, time LIMIT 7
SELECT machine_id, time, temperature FROM readings ORDER BY temperature NULLS FIRST, time DESC, machine_id LIMIT 5 OFFSET 3
SELECT rpm, machine_id, time FROM readings WHERE time > (SELECT max(time) FROM readings) - INTERVAL '2 hours' ORDER BY rpm DESC, machine_id, time LIMIT 10
SELECT machine_id, time FROM readings ORDER BY time, machine_id LIMIT 3 OFFSET 100000
SELECT machine_id, max(vibration) AS m FROM readings GROUP BY machine_id ORDER BY m DESC, machine_id LIMIT 3
SELECT id, s FROM nums ORDER BY s DESC NULLS LAST, id LIMIT 4 OFFSET 1
-- a cross join is not aggregated below (an empty side has no groups)
SELECT m.model_type, count(*) FROM readings r CROSS JOIN machines m WHERE r.time < '2000-01-01 00:00:00+00' GROUP BY 1 ORDER BY 1
SELECT count(*), min(r.rpm) FROM readings r CROSS JOIN machines m WHERE r.time < '2000-01-01 00:00:00+00'
SELECT m.location, count(*) FROM nums n CROSS JOIN machines m WHERE n.id < 3 GROUP BY 1 ORDER BY 1 NULLS FIRST
-- DISTINCT of doubles: 0 and -0 are one value, and so is every NaN
SELECT count(DISTINCT v), count(v) FROM (VALUES (0.0::float8), (-0.0::float8), ('NaN'::float8), ('NaN'::float8), (1.5::float8)) t(v)
SELECT k, count(DISTINCT v) FROM (VALUES (1, 0.0::float8), (1, -0.0::float8), (2, 'NaN'::float8), (2, 'NaN'::float8)) t(k, v) GROUP BY k ORDER BY k
-- per-series blocks: aggregates per machine from block statistics, blocks cut by the time range
SELECT machine_id, count(*), count(vibration), sum(rpm), round(avg(temperature)::numeric, 6), min(vibration), max(vibration), min(time), max(time) FROM readings GROUP BY machine_id ORDER BY 1
SELECT machine_id, count(*), sum(rpm), round(avg(vibration)::numeric, 6), max(temperature), min(power) FROM readings WHERE time > (SELECT min(time) FROM readings) + INTERVAL '20 hours' AND time < (SELECT max(time) FROM readings) - INTERVAL '3 hours' GROUP BY 1 ORDER BY 1
SELECT machine_id, max(vibration) FROM readings WHERE time > (SELECT max(time) FROM readings) - INTERVAL '1 hour' GROUP BY machine_id HAVING max(vibration) > 1 ORDER BY 2 DESC, 1
SELECT machine_id, max(vibration) AS m FROM readings WHERE time > (SELECT max(time) FROM readings) - INTERVAL '1 day' GROUP BY machine_id ORDER BY m DESC, machine_id LIMIT 5
SELECT machine_id, count(*), count(rpm), sum(rpm), min(rpm), max(rpm) FROM readings WHERE time >= '2026-01-02' GROUP BY machine_id ORDER BY 1
SELECT status, count(*), sum(rpm), max(time) FROM readings WHERE time >= (SELECT min(time) FROM readings) + INTERVAL '2 hours' GROUP BY status ORDER BY 1
SELECT machine_id, time, vibration FROM readings WHERE time >= (SELECT max(time) FROM readings) - INTERVAL '40 minutes' ORDER BY machine_id, time
SELECT count(*), min(time), max(time), count(DISTINCT machine_id) FROM readings WHERE time > (SELECT min(time) FROM readings) + INTERVAL '90 minutes' AND time <= (SELECT min(time) FROM readings) + INTERVAL '150 minutes'
SELECT m.model_type, count(*), round(avg(r.vibration)::numeric, 6), max(r.temperature) FROM readings r JOIN machines m ON r.machine_id = m.machine_id WHERE r.time >= '2026-01-02' GROUP BY 1 ORDER BY 1
SELECT count(DISTINCT machine_id) FROM readings WHERE time > (SELECT max(time) FROM readings) - INTERVAL '1 hour'
SELECT count(DISTINCT machine_id) FROM readings WHERE time < (SELECT min(time) FROM readings) + INTERVAL '10 minutes'
SELECT count(DISTINCT status) FROM readings WHERE time >= (SELECT min(time) FROM readings) + INTERVAL '20 minutes' AND time < (SELECT max(time) FROM readings) - INTERVAL '30 minutes'
SELECT count(DISTINCT machine_id) FROM readings WHERE time >= (SELECT min(time) FROM readings) + INTERVAL '61 minutes' AND time < (SELECT min(time) FROM readings) + INTERVAL '62 minutes'
SELECT count(DISTINCT machine_id) FROM readings WHERE time >= '2026-01-02'
SELECT machine_id, max(vibration) FROM readings GROUP BY machine_id HAVING max(vibration) > 3 ORDER BY 2 DESC, 1
SELECT machine_id, max(vibration) AS m FROM readings WHERE time > (SELECT max(time) FROM readings) - INTERVAL '1 hour' GROUP BY 1 HAVING 2.5 < max(vibration) AND machine_id <> 'M-0003' ORDER BY 1
SELECT machine_id, min(temperature) FROM readings GROUP BY 1 HAVING min(temperature) <= 60 ORDER BY 1
SELECT max(rpm) FROM readings HAVING max(rpm) >= 1000
SELECT max(rpm) FROM readings HAVING max(rpm) > 99999999
SELECT date_trunc('hour', time) AS h, max(power) FROM readings GROUP BY 1 HAVING max(power) >= 5 OR max(power) < 1 ORDER BY 1
SELECT status, max(vibration) FROM readings GROUP BY status HAVING max(vibration) > 1 ORDER BY 1
SELECT '2026-01-01 00:00:00.0000015+00'::timestamptz, '2026-01-01 00:00:00.9999996+00'::timestamptz, '2026-01-01 00:00:00.1234564+00'::timestamptz, '2026-01-01 00:00:00.12345650+00'::timestamptz
-- long IN lists: 16 items or more are a hash set built once; 256 or more are also read apart from the parser
SELECT machine_id, count(*) FROM readings WHERE machine_id IN ('M-0001', 'M-0003', 'M-0005', 'M-0007', 'M-0009', 'M-0011', 'M-0013', 'M-0015', 'M-0017', 'M-0019', 'x-0', 'x-1', 'x-2', 'x-3', 'x-4', 'x-5', 'x-6', 'x-7', 'x-8', 'x-9') GROUP BY 1 ORDER BY 1
SELECT count(*) FROM readings WHERE machine_id NOT IN ('M-0001', 'M-0002', 'M-0003', 'M-0004', 'M-0005', 'y-0', 'y-1', 'y-2', 'y-3', 'y-4', 'y-5', 'y-6', 'y-7', 'y-8', 'y-9', 'y-10', 'y-11', 'y-12', 'y-13', 'y-14')
SELECT count(*) FROM readings WHERE machine_id NOT IN ('M-0001', 'M-0002', 'M-0003', 'z-0', 'z-1', 'z-2', 'z-3', 'z-4', 'z-5', 'z-6', 'z-7', 'z-8', 'z-9', 'z-10', 'z-11', 'z-12', 'z-13', 'z-14', NULL)
SELECT count(*) FROM readings WHERE (machine_id IN ('M-0001', 'M-0002', 'M-0003', 'M-0004', 'w-0', 'w-1', 'w-2', 'w-3', 'w-4', 'w-5', 'w-6', 'w-7', 'w-8', 'w-9', 'w-10', 'w-11', 'w-12', 'w-13', 'w-14', NULL)) IS NULL
SELECT machine_id, count(*) FROM readings WHERE machine_id IN ('M-0000', 'it''s 1', 'it''s 2', 'M-0003', 'it''s 4', 'it''s 5', 'M-0006', 'it''s 7', 'it''s 8', 'M-0009', 'it''s 10', 'it''s 11', 'M-0012', 'it''s 13', 'it''s 14', 'M-0002', 'it''s 16', 'it''s 17', 'M-0005', 'it''s 19', 'it''s 20', 'M-0008', 'it''s 22', 'it''s 23', 'M-0011', 'it''s 25', 'it''s 26', 'M-0001', 'it''s 28', 'it''s 29', 'M-0004', 'it''s 31', 'it''s 32', 'M-0007', 'it''s 34', 'it''s 35', 'M-0010', 'it''s 37', 'it''s 38', 'M-0000', 'it''s 40', 'it''s 41', 'M-0003', 'it''s 43', 'it''s 44', 'M-0006', 'it''s 46', 'it''s 47', 'M-0009', 'it''s 49', 'it''s 50', 'M-0012', 'it''s 52', 'it''s 53', 'M-0002', 'it''s 55', 'it''s 56', 'M-0005', 'it''s 58', 'it''s 59', 'M-0008', 'it''s 61', 'it''s 62', 'M-0011', 'it''s 64', 'it''s 65', 'M-0001', 'it''s 67', 'it''s 68', 'M-0004', 'it''s 70', 'it''s 71', 'M-0007', 'it''s 73', 'it''s 74', 'M-0010', 'it''s 76', 'it''s 77', 'M-0000', 'it''s 79', 'it''s 80', 'M-0003', 'it''s 82', 'it''s 83', 'M-0006', 'it''s 85', 'it''s 86', 'M-0009', 'it''s 88', 'it''s 89', 'M-0012', 'it''s 91', 'it''s 92', 'M-0002', 'it''s 94', 'it''s 95', 'M-0005', 'it''s 97', 'it''s 98', 'M-0008', 'it''s 100', 'it''s 101', 'M-0011', 'it''s 103', 'it''s 104', 'M-0001', 'it''s 106', 'it''s 107', 'M-0004', 'it''s 109', 'it''s 110', 'M-0007', 'it''s 112', 'it''s 113', 'M-0010', 'it''s 115', 'it''s 116', 'M-0000', 'it''s 118', 'it''s 119', 'M-0003', 'it''s 121', 'it''s 122', 'M-0006', 'it''s 124', 'it''s 125', 'M-0009', 'it''s 127', 'it''s 128', 'M-0012', 'it''s 130', 'it''s 131', 'M-0002', 'it''s 133', 'it''s 134', 'M-0005', 'it''s 136', 'it''s 137', 'M-0008', 'it''s 139', 'it''s 140', 'M-0011', 'it''s 142', 'it''s 143', 'M-0001', 'it''s 145', 'it''s 146', 'M-0004', 'it''s 148', 'it''s 149', 'M-0007', 'it''s 151', 'it''s 152', 'M-0010', 'it''s 154', 'it''s 155', 'M-0000', 'it''s 157', 'it''s 158', 'M-0003', 'it''s 160', 'it''s 161', 'M-0006', 'it''s 163', 'it''s 164', 'M-0009', 'it''s 166', 'it''s 167', 'M-0012', 'it''s 169', 'it''s 170', 'M-0002', 'it''s 172', 'it''s 173', 'M-0005', 'it''s 175', 'it''s 176', 'M-0008', 'it''s 178', 'it''s 179', 'M-0011', 'it''s 181', 'it''s 182', 'M-0001', 'it''s 184', 'it''s 185', 'M-0004', 'it''s 187', 'it''s 188', 'M-0007', 'it''s 190', 'it''s 191', 'M-0010', 'it''s 193', 'it''s 194', 'M-0000', 'it''s 196', 'it''s 197', 'M-0003', 'it''s 199', 'it''s 200', 'M-0006', 'it''s 202', 'it''s 203', 'M-0009', 'it''s 205', 'it''s 206', 'M-0012', 'it''s 208', 'it''s 209', 'M-0002', 'it''s 211', 'it''s 212', 'M-0005', 'it''s 214', 'it''s 215', 'M-0008', 'it''s 217', 'it''s 218', 'M-0011', 'it''s 220', 'it''s 221', 'M-0001', 'it''s 223', 'it''s 224', 'M-0004', 'it''s 226', 'it''s 227', 'M-0007', 'it''s 229', 'it''s 230', 'M-0010', 'it''s 232', 'it''s 233', 'M-0000', 'it''s 235', 'it''s 236', 'M-0003', 'it''s 238', 'it''s 239', 'M-0006', 'it''s 241', 'it''s 242', 'M-0009', 'it''s 244', 'it''s 245', 'M-0012', 'it''s 247', 'it''s 248', 'M-0002', 'it''s 250', 'it''s 251', 'M-0005', 'it''s 253', 'it''s 254', 'M-0008', 'it''s 256', 'it''s 257', 'M-0011', 'it''s 259', 'it''s 260', 'M-0001', 'it''s 262', 'it''s 263', 'M-0004', 'it''s 265', 'it''s 266', 'M-0007', 'it''s 268', 'it''s 269', 'M-0010', 'it''s 271', 'it''s 272', 'M-0000', 'it''s 274', 'it''s 275', 'M-0003', 'it''s 277', 'it''s 278', 'M-0006', 'it''s 280', 'it''s 281', 'M-0009', 'it''s 283', 'it''s 284', 'M-0012', 'it''s 286', 'it''s 287', 'M-0002', 'it''s 289', 'it''s 290', 'M-0005', 'it''s 292', 'it''s 293', 'M-0008', 'it''s 295', 'it''s 296', 'M-0011', 'it''s 298', 'it''s 299') GROUP BY 1 ORDER BY 1
SELECT count(*), sum(rpm) FROM readings WHERE rpm IN (-0, 50, 100, 150, -4, 250, 300, 350, -8, 450, 500, 550, -12, 650, 700, 750, -16, 850, 900, 950, -20, 1050, 1100, 1150, -24, 1250, 1300, 1350, -28, 1450, 1500, 1550, -32, 1650, 1700, 1750, -36, 1850, 1900, 1950, -40, 2050, 2100, 2150, -44, 2250, 2300, 2350, -48, 2450, 2500, 2550, -52, 2650, 2700, 2750, -56, 2850, 2900, 2950, -60, 3050, 3100, 3150, -64, 3250, 3300, 3350, -68, 3450, 3500, 3550, -72, 3650, 3700, 3750, -76, 3850, 3900, 3950, -80, 4050, 4100, 4150, -84, 4250, 4300, 4350, -88, 4450, 4500, 4550, -92, 4650, 4700, 4750, -96, 4850, 4900, 4950, -100, 5050, 5100, 5150, -104, 5250, 5300, 5350, -108, 5450, 5500, 5550, -112, 5650, 5700, 5750, -116, 5850, 5900, 5950, -120, 6050, 6100, 6150, -124, 6250, 6300, 6350, -128, 6450, 6500, 6550, -132, 6650, 6700, 6750, -136, 6850, 6900, 6950, -140, 7050, 7100, 7150, -144, 7250, 7300, 7350, -148, 7450, 7500, 7550, -152, 7650, 7700, 7750, -156, 7850, 7900, 7950, -160, 8050, 8100, 8150, -164, 8250, 8300, 8350, -168, 8450, 8500, 8550, -172, 8650, 8700, 8750, -176, 8850, 8900, 8950, -180, 9050, 9100, 9150, -184, 9250, 9300, 9350, -188, 9450, 9500, 9550, -192, 9650, 9700, 9750, -196, 9850, 9900, 9950, -200, 10050, 10100, 10150, -204, 10250, 10300, 10350, -208, 10450, 10500, 10550, -212, 10650, 10700, 10750, -216, 10850, 10900, 10950, -220, 11050, 11100, 11150, -224, 11250, 11300, 11350, -228, 11450, 11500, 11550, -232, 11650, 11700, 11750, -236, 11850, 11900, 11950, -240, 12050, 12100, 12150, -244, 12250, 12300, 12350, -248, 12450, 12500, 12550, -252, 12650, 12700, 12750, -256, 12850, 12900, 12950, -260, 13050, 13100, 13150, -264, 13250, 13300, 13350, -268, 13450, 13500, 13550, -272, 13650, 13700, 13750, -276, 13850, 13900, 13950, -280, 14050, 14100, 14150, -284, 14250, 14300, 14350, -288, 14450, 14500, 14550, -292, 14650, 14700, 14750, -296, 14850, 14900, 14950, -300, 15050, 15100, 15150, -304, 15250, 15300, 15350, -308, 15450, 15500, 15550, -312, 15650, 15700, 15750, -316, 15850, 15900, 15950, -320, 16050, 16100, 16150, -324, 16250, 16300, 16350, -328, 16450, 16500, 16550, -332, 16650, 16700, 16750, -336, 16850, 16900, 16950, -340, 17050, 17100, 17150, -344, 17250, 17300, 17350, -348, 17450, 17500, 17550, -352, 17650, 17700, 17750, -356, 17850, 17900, 17950, -360, 18050, 18100, 18150, -364, 18250, 18300, 18350, -368, 18450, 18500, 18550, -372, 18650, 18700, 18750, -376, 18850, 18900, 18950, -380, 19050, 19100, 19150, -384, 19250, 19300, 19350, -388, 19450, 19500, 19550, -392, 19650, 19700, 19750, -396, 19850, 19900, 19950)
SELECT count(*), sum(rpm) FROM readings WHERE rpm NOT IN (-0,50,100,150,-4,250,300,350,-8,450,500,550,-12,650,700,750,-16,850,900,950,-20,1050,1100,1150,-24,1250,1300,1350,-28,1450,1500,1550,-32,1650,1700,1750,-36,1850,1900,1950,-40,2050,2100,2150,-44,2250,2300,2350,-48,2450,2500,2550,-52,2650,2700,2750,-56,2850,2900,2950,-60,3050,3100,3150,-64,3250,3300,3350,-68,3450,3500,3550,-72,3650,3700,3750,-76,3850,3900,3950,-80,4050,4100,4150,-84,4250,4300,4350,-88,4450,4500,4550,-92,4650,4700,4750,-96,4850,4900,4950,-100,5050,5100,5150,-104,5250,5300,5350,-108,5450,5500,5550,-112,5650,5700,5750,-116,5850,5900,5950,-120,6050,6100,6150,-124,6250,6300,6350,-128,6450,6500,6550,-132,6650,6700,6750,-136,6850,6900,6950,-140,7050,7100,7150,-144,7250,7300,7350,-148,7450,7500,7550,-152,7650,7700,7750,-156,7850,7900,7950,-160,8050,8100,8150,-164,8250,8300,8350,-168,8450,8500,8550,-172,8650,8700,8750,-176,8850,8900,8950,-180,9050,9100,9150,-184,9250,9300,9350,-188,9450,9500,9550,-192,9650,9700,9750,-196,9850,9900,9950,-200,10050,10100,10150,-204,10250,10300,10350,-208,10450,10500,10550,-212,10650,10700,10750,-216,10850,10900,10950,-220,11050,11100,11150,-224,11250,11300,11350,-228,11450,11500,11550,-232,11650,11700,11750,-236,11850,11900,11950,-240,12050,12100,12150,-244,12250,12300,12350,-248,12450,12500,12550,-252,12650,12700,12750,-256,12850,12900,12950,-260,13050,13100,13150,-264,13250,13300,13350,-268,13450,13500,13550,-272,13650,13700,13750,-276,13850,13900,13950,-280,14050,14100,14150,-284,14250,14300,14350,-288,14450,14500,14550,-292,14650,14700,14750,-296,14850,14900,14950,-300,15050,15100,15150,-304,15250,15300,15350,-308,15450,15500,15550,-312,15650,15700,15750,-316,15850,15900,15950,-320,16050,16100,16150,-324,16250,16300,16350,-328,16450,16500,16550,-332,16650,16700,16750,-336,16850,16900,16950,-340,17050,17100,17150,-344,17250,17300,17350,-348,17450,17500,17550,-352,17650,17700,17750,-356,17850,17900,17950,-360,18050,18100,18150,-364,18250,18300,18350,-368,18450,18500,18550,-372,18650,18700,18750,-376,18850,18900,18950,-380,19050,19100,19150,-384,19250,19300,19350,-388,19450,19500,19550,-392,19650,19700,19750,-396,19850,19900,19950)
SELECT count(*) FROM readings WHERE rpm NOT IN (-0, 50, 100, 150, -4, 250, 300, 350, -8, 450, 500, 550, -12, 650, 700, 750, -16, 850, 900, 950, -20, 1050, 1100, 1150, -24, 1250, 1300, 1350, -28, 1450, 1500, 1550, -32, 1650, 1700, 1750, -36, 1850, 1900, 1950, -40, 2050, 2100, 2150, -44, 2250, 2300, 2350, -48, 2450, 2500, 2550, -52, 2650, 2700, 2750, -56, 2850, 2900, 2950, -60, 3050, 3100, 3150, -64, 3250, 3300, 3350, -68, 3450, 3500, 3550, -72, 3650, 3700, 3750, -76, 3850, 3900, 3950, -80, 4050, 4100, 4150, -84, 4250, 4300, 4350, -88, 4450, 4500, 4550, -92, 4650, 4700, 4750, -96, 4850, 4900, 4950, -100, 5050, 5100, 5150, -104, 5250, 5300, 5350, -108, 5450, 5500, 5550, -112, 5650, 5700, 5750, -116, 5850, 5900, 5950, -120, 6050, 6100, 6150, -124, 6250, 6300, 6350, -128, 6450, 6500, 6550, -132, 6650, 6700, 6750, -136, 6850, 6900, 6950, -140, 7050, 7100, 7150, -144, 7250, 7300, 7350, -148, 7450, 7500, 7550, -152, 7650, 7700, 7750, -156, 7850, 7900, 7950, -160, 8050, 8100, 8150, -164, 8250, 8300, 8350, -168, 8450, 8500, 8550, -172, 8650, 8700, 8750, -176, 8850, 8900, 8950, -180, 9050, 9100, 9150, -184, 9250, 9300, 9350, -188, 9450, 9500, 9550, -192, 9650, 9700, 9750, -196, 9850, 9900, 9950, -200, 10050, 10100, 10150, -204, 10250, 10300, 10350, -208, 10450, 10500, 10550, -212, 10650, 10700, 10750, -216, 10850, 10900, 10950, -220, 11050, 11100, 11150, -224, 11250, 11300, 11350, -228, 11450, 11500, 11550, -232, 11650, 11700, 11750, -236, 11850, 11900, 11950, -240, 12050, 12100, 12150, -244, 12250, 12300, 12350, -248, 12450, 12500, 12550, -252, 12650, 12700, 12750, -256, 12850, 12900, 12950, -260, 13050, 13100, 13150, -264, 13250, 13300, 13350, -268, 13450, 13500, 13550, -272, 13650, 13700, 13750, -276, 13850, 13900, 13950, -280, 14050, 14100, 14150, -284, 14250, 14300, 14350, -288, 14450, 14500, 14550, -292, 14650, 14700, 14750, -296, 14850, 14900, 14950, NULL)
SELECT id, a IN (10, -3, 2147483647, -2147483648, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115), b NOT IN (100, 0, 9223372036854775807, -20, -19, -18, -17, -16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4), x IN (0, -0.0, 1.5, 'NaN', 3.75, -1e-5, 20.5, 21.5, 22.5, 23.5, 24.5, 25.5, 26.5, 27.5, 28.5, 29.5, 30.5, 31.5, 32.5, 33.5) FROM nums ORDER BY id
SELECT id, s IN ('alpha', '', 'δelta', 's0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 's12', 's13', 's14', 's15', 's16', 's17', 's18', 's19', NULL) FROM nums ORDER BY id
SELECT count(*) FROM readings WHERE temperature::int IN (40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299)
