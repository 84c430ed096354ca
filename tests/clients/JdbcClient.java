// A JDBC client of dtx serve's admin console (run by serve_test):
//   java -cp /usr/share/java/postgresql.jar JdbcClient.java PORT PASSWORD
// pgjdbc uses the extended protocol for every statement, switches to named
// server-side statements after prepareThreshold executions, and then asks
// for binary results for the types it knows — all of which must work.
import java.sql.*;

public class JdbcClient {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/dtx";
    try (Connection c = DriverManager.getConnection(url, "dtx_admin", args[1])) {
      try (PreparedStatement ps = c.prepareStatement("SELECT name, port, reachable FROM resources WHERE type = ?")) {
        for (int i = 0; i < 7; i++) {  // past the default prepareThreshold of 5
          ps.setString(1, "postgres");
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            if (i == 6) System.out.println(rs.getString(1) + " " + (rs.getLong(2) > 0) + " " + rs.getBoolean(3));
          }
        }
      }
      try (Statement s = c.createStatement()) {
        try {
          s.executeQuery("SELECT * FROM no_such_view");
        } catch (SQLException e) {
          System.out.println(e.getSQLState());
        }
        try (ResultSet rs = s.executeQuery("SELECT count(*) FROM help WHERE kind = 'view'")) {
          rs.next();
          System.out.println(rs.getLong(1) >= 8);
        }
        s.execute("CALL recover(dry_run => true)");
        System.out.println("called");
      }
    }
  }
}
