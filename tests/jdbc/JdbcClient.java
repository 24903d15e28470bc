// A JDBC client for tests/jdbc.rs: it connects to fleetdb with the PostgreSQL JDBC driver,
// writes and reads through prepared statements, and prints what DatabaseMetaData reports, one
// fact per line, for the Rust test to check.
import java.sql.*;

public class JdbcClient {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/fleetdb";
        try (Connection c = DriverManager.getConnection(url, "fleetdb", args.length > 1 ? args[1] : "")) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE machines (machine_id TEXT PRIMARY KEY, model_type TEXT NOT NULL, capacity INT)");
                s.execute("CREATE DATASTORE readings (machine_id TEXT, vibration DOUBLE PRECISION)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO machines VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 3; i++) {
                    p.setString(1, "M-000" + i);
                    p.setString(2, i % 2 == 0 ? "PRESS" : "CNC");
                    if (i == 3) p.setNull(3, Types.INTEGER); else p.setInt(3, i * 10);
                    p.executeUpdate();
                }
            }
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO readings (time, machine_id, vibration) VALUES (?, ?, ?)")) {
                p.setTimestamp(1, Timestamp.from(java.time.Instant.parse("2026-01-01T00:00:00Z")));
                p.setString(2, "M-0001");
                p.setDouble(3, 2.5);
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT machine_id, capacity, capacity * 1.5 AS scaled FROM machines WHERE model_type = ? ORDER BY machine_id")) {
                p.setString(1, "CNC");
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) {
                        int cap = r.getInt(2);
                        String capText = r.wasNull() ? "null" : Integer.toString(cap);
                        System.out.println("row " + r.getString(1) + " " + capText + " " + r.getBigDecimal(3));
                    }
                }
            }
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT time, vibration, machine_id FROM readings")) {
                ResultSetMetaData md = r.getMetaData();
                System.out.println("types " + md.getColumnTypeName(1) + " " + md.getColumnTypeName(2) + " " + md.getColumnTypeName(3));
                while (r.next()) {
                    System.out.println("reading " + r.getTimestamp(1).toInstant() + " " + r.getDouble(2) + " " + r.getString(3));
                }
            }
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet r = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (r.next()) {
                    System.out.println("table " + r.getString("TABLE_SCHEM") + "." + r.getString("TABLE_NAME") + " " + r.getString("TABLE_TYPE"));
                }
            }
            try (ResultSet r = md.getColumns(null, "public", "machines", "%")) {
                while (r.next()) {
                    System.out.println("column " + r.getString("COLUMN_NAME") + " " + r.getString("TYPE_NAME") + " "
                            + r.getInt("DATA_TYPE") + " " + r.getString("IS_NULLABLE") + " " + r.getInt("ORDINAL_POSITION"));
                }
            }
            try (ResultSet r = md.getPrimaryKeys(null, "public", "machines")) {
                while (r.next()) {
                    System.out.println("pk " + r.getString("TABLE_NAME") + " " + r.getString("COLUMN_NAME") + " "
                            + r.getInt("KEY_SEQ") + " " + r.getString("PK_NAME"));
                }
            }
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT * FROM nowhere");
            } catch (SQLException e) {
                System.out.println("error " + e.getSQLState());
            }
        }
    }
}
