// Prepared statements through the PostgreSQL JDBC driver, each run 12 times: past the driver's
// prepareThreshold (5) it switches to a named server-side statement and asks for binary
// results of the types it knows, so every result format path is crossed. Prints one line per
// run; tests/jdbc.rs runs this same program against PostgreSQL and against fleetdb and
// compares the lines. Args: port, "fleetdb" | "postgres" (how the readings table is made),
// user.
import java.sql.*;
import java.time.Instant;

public class JdbcPrepared {
    static final int RUNS = 12;

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/" + args[2];
        try (Connection c = DriverManager.getConnection(url, args[2], "")) {
            try (Statement s = c.createStatement()) {
                if (args[1].equals("fleetdb")) {
                    s.execute("CREATE DATASTORE readings (machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT, ok BOOLEAN)");
                } else {
                    s.execute("CREATE TABLE readings (time TIMESTAMPTZ, machine_id TEXT, temperature DOUBLE PRECISION, status BIGINT, ok BOOLEAN)");
                }
            }
            Instant t0 = Instant.parse("2026-01-01T00:00:00Z");
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO readings (time, machine_id, temperature, status, ok) VALUES (?, ?, ?, ?, ?)")) {
                for (int i = 0; i < 1000; i++) {
                    p.setTimestamp(1, Timestamp.from(t0.plusSeconds(60L * i)));
                    p.setString(2, "M-" + (i % 7));
                    p.setDouble(3, 20.0 + (i % 50) * 0.25);
                    p.setInt(4, i % 3);
                    p.setBoolean(5, i % 5 != 0);
                    p.addBatch();
                }
                p.executeBatch();
            }
            Timestamp before = Timestamp.from(t0.minusSeconds(1));
            // An untyped parameter compared with time; a count cast to int.
            for (int run = 1; run <= RUNS; run++) {
                try (PreparedStatement p = c.prepareStatement(
                        "SELECT count(*)::int AS n, max(temperature) AS t FROM readings WHERE time > ?")) {
                    p.setObject(1, before.toInstant().toString(), Types.OTHER);
                    try (ResultSet r = p.executeQuery()) {
                        r.next();
                        System.out.println("q1 run " + run + " " + r.getInt(1) + " " + r.getDouble(2));
                    }
                }
            }
            // Three typed parameters, timestamps out.
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT count(*), min(time), max(time) FROM readings WHERE time >= ? AND time < ? AND machine_id = ?")) {
                for (int run = 1; run <= RUNS; run++) {
                    p.setTimestamp(1, Timestamp.from(t0.plusSeconds(3600L * run)));
                    p.setTimestamp(2, Timestamp.from(t0.plusSeconds(3600L * run + 36000)));
                    p.setString(3, "M-" + (run % 7));
                    try (ResultSet r = p.executeQuery()) {
                        r.next();
                        System.out.println("q2 run " + run + " " + r.getLong(1) + " " + r.getTimestamp(2).toInstant()
                                + " " + r.getTimestamp(3).toInstant());
                    }
                }
            }
            // Every column type the driver reads in binary, with NULLs among them.
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT machine_id, status, temperature, ok, time, status::bigint * 1000000000 AS big,"
                    + " CASE WHEN status = 0 THEN NULL ELSE temperature END AS maybe"
                    + " FROM readings WHERE status = ? AND time < ? ORDER BY time LIMIT 3")) {
                for (int run = 1; run <= RUNS; run++) {
                    p.setInt(1, run % 3);
                    p.setTimestamp(2, Timestamp.from(t0.plusSeconds(600L * run)));
                    try (ResultSet r = p.executeQuery()) {
                        StringBuilder line = new StringBuilder("q3 run " + run);
                        while (r.next()) {
                            double maybe = r.getDouble(7);
                            line.append(" [").append(r.getString(1)).append(' ').append(r.getInt(2)).append(' ')
                                .append(r.getDouble(3)).append(' ').append(r.getBoolean(4)).append(' ')
                                .append(r.getTimestamp(5).toInstant()).append(' ').append(r.getLong(6)).append(' ')
                                .append(r.wasNull() ? "null" : Double.toString(maybe)).append(']');
                        }
                        System.out.println(line);
                    }
                }
            }
            // executeUpdate of an INSERT with parameters, past prepareThreshold: Describe of a
            // statement that returns no rows must say NoData (an empty row description made
            // the fifth run fail with "A result was returned when none was expected").
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE notes (id INT, v DOUBLE PRECISION, note TEXT, at TIMESTAMPTZ)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO notes (id, v, note, at) VALUES (?, ?, ?, ?)")) {
                for (int run = 1; run <= RUNS; run++) {
                    p.setInt(1, run);
                    p.setDouble(2, run * 1.5);
                    p.setString(3, "n" + run);
                    p.setTimestamp(4, Timestamp.from(t0.plusSeconds(run)));
                    System.out.println("q7 run " + run + " " + p.executeUpdate());
                }
            }
            // A statement prepared on the server, then the table gains a column: the driver is
            // told to prepare it again (routine RevalidateCachedQuery) and sees the new column.
            try (PreparedStatement p = c.prepareStatement("SELECT * FROM notes WHERE id = ?")) {
                for (int run = 1; run <= RUNS; run++) {
                    if (run == 8) {
                        try (Statement s = c.createStatement()) {
                            s.execute("ALTER TABLE notes ADD COLUMN extra TEXT");
                        }
                    }
                    p.setInt(1, run);
                    try (ResultSet r = p.executeQuery()) {
                        r.next();
                        System.out.println("q8 run " + run + " columns " + r.getMetaData().getColumnCount() + " " + r.getString(3));
                    }
                }
            }
            // A BigDecimal parameter (pgjdbc sends it as binary numeric).
            try (PreparedStatement p = c.prepareStatement("SELECT count(*) FROM readings WHERE temperature > ?")) {
                for (int run = 1; run <= RUNS; run++) {
                    p.setBigDecimal(1, new java.math.BigDecimal("20.25").add(java.math.BigDecimal.valueOf(run, 1)));
                    try (ResultSet r = p.executeQuery()) {
                        r.next();
                        System.out.println("q6 run " + run + " " + r.getLong(1));
                    }
                }
            }
            // The parameter's declared type (int8 from setLong) decides the result's type.
            for (String q : new String[] {"SELECT coalesce(?, 7) AS v", "SELECT coalesce(?, 7) + 0 AS v", "SELECT ? AS v"}) {
                try (PreparedStatement p = c.prepareStatement(q)) {
                    for (int run = 1; run <= RUNS; run++) {
                        p.setLong(1, 5000000000L + run);
                        try (ResultSet r = p.executeQuery()) {
                            r.next();
                            System.out.println("q5 " + q + " run " + run + " " + r.getLong(1) + " "
                                + r.getMetaData().getColumnTypeName(1));
                        }
                    }
                }
            }
            // A parameter only in the select list, and a group by with a parameter.
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT machine_id, count(*) AS n, avg(temperature) + ? AS shifted FROM readings"
                    + " WHERE status <> ? GROUP BY machine_id ORDER BY machine_id")) {
                for (int run = 1; run <= RUNS; run++) {
                    p.setDouble(1, run * 0.5);
                    p.setInt(2, run % 3);
                    try (ResultSet r = p.executeQuery()) {
                        StringBuilder line = new StringBuilder("q4 run " + run);
                        while (r.next()) {
                            line.append(' ').append(r.getString(1)).append('=').append(r.getLong(2)).append('/')
                                .append(String.format("%.6f", r.getDouble(3)));
                        }
                        System.out.println(line);
                    }
                }
            }
        }
    }
}
