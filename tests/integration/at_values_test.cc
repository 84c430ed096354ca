// AT mode's exactness on every type of issue 9 item 3, against the real
// MariaDB and PostgreSQL of scripts/db.sh.
//
// How exactness is proven. Each test fills a table with awkward values of
// every type (extreme and subnormal doubles, PostgreSQL -0 and NaN, 2^64-1,
// zero dates, NUL bytes, 4-byte UTF-8, latin1, JSON whose bytes differ from
// its meaning, arrays with bounds, ...), runs statements of every supported
// shape in an AT branch, phase 1 (prepare), then phase 2. Before the branch
// the table is copied inside the database (CREATE TABLE ... AS SELECT, no
// value leaves the server); after rollback the table is joined with the copy
// on its primary key and every column is compared with a proof written here
// per type, independent of the code under test (undo-log/table_meta's image
// expressions): bytes for strings, blobs, JSON, ENUM and SET; float8send /
// float4send bits on PostgreSQL and `<=>` plus the sign of zero (ATAN2) on
// MariaDB for doubles; UNIX_TIMESTAMP (the instant) for MariaDB TIMESTAMP;
// canonical text for numeric scale, jsonb, arrays and their bounds. A row
// missing or extra counts too. ComparisonSeesTheSmallestChange shows the
// proofs fail on one ULP, one microsecond, one byte, a case change, -0.
// After commit the table must equal a copy taken right after phase 1, with
// no undo record and no global lock left. Each statement must also report
// the affected rows the plain driver reports for it (the API does not change
// with the mode). MariaDB stores a DOUBLE -0 as +0, so -0 is PostgreSQL's.
//
// Time zones: the AT sessions run in a zone other than the copies' (MariaDB
// '+05:30' against '+00:00', PostgreSQL Europe/Paris against UTC), and one
// rollback is made by another session in a third zone. PostgreSQL has the tz
// database, so timestamptz values include the two instants of Paris's
// ambiguous 2024-10-27 02:30 and its nonexistent 2024-03-31 02:30. The
// MariaDB test server has no time zone tables (mysql.time_zone_name is
// empty), so only fixed offsets can be set there; its TIMESTAMP values
// include the UTC instant of that ambiguous hour.
//
// Every table of this file starts with ht_.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/test_env.h"
#include "support/text.h"
#include "undo-log/at_session.h"

namespace dtx {

void PrintTo(FinishOutcome o, std::ostream* os) { *os << to_string(o); }

namespace {

using test::contains;
using test::join;
using test::replace_all;

using Params = std::vector<Param>;

// All 256 byte values, as hex digits.
std::string all_bytes_hex() {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (int b = 0; b < 256; ++b) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// One column: its DDL type and the proof that copies {a} and {b} of it are
// identical (written per type, see the top).
struct Col {
  std::string name;
  std::string type;
  std::string proof;
  bool generated = false;  // computed by the database: left out of INSERT column lists
};

// A table: columns, primary key (in key order), rows as SQL tuples in the
// order of the non-generated columns.
struct Spec {
  std::vector<Col> cols;
  std::vector<std::string> pk;
  std::vector<std::string> rows;
  std::string table_options;  // after the column list (PRIMARY KEY clause, ...)
};

struct Db {
  const char* name;
  bool mysql;
};
void PrintTo(const Db& db, std::ostream* os) { *os << db.name; }

class AtValuesTest : public ::testing::TestWithParam<Db> {
 protected:
  void SetUp() override {
    std::random_device rd;
    id_ = std::to_string(rd() % 1000000);
    rc_ = my() ? test::mysql_resource("htmy") : test::postgres_resource("htpg");
    rc_.mode = BranchMode::at;
    rc_.lock_wait_timeout = std::chrono::milliseconds(300);
    plain_ = make_resource_manager(rc_);
    d_ = plain_->acquire();
    run(my() ? "SET time_zone = '+00:00'" : "SET TimeZone = 'UTC'");
    rm_ = undo::make_at_resource_manager(rc_);
  }

  void TearDown() override {
    for (const auto& t : created_) run("DROP TABLE IF EXISTS " + t);
    for (const auto& sql : cleanup_) run(sql);
    // What a failed test left behind (a rollback that failed keeps them).
    run("DELETE FROM dtx_global_lock WHERE gtrid LIKE ?", {"ht" + id_ + ".%"});
    run("DELETE FROM dtx_undo_log WHERE gtrid LIKE ?", {"ht" + id_ + ".%"});
  }

  bool my() const { return GetParam().mysql; }
  std::string q(const std::string& name) const {
    return my() ? "`" + replace_all(name, "`", "``") + "`" : "\"" + replace_all(name, "\"", "\"\"") + "\"";
  }

  Result run(const std::string& sql, Params params = {}) { return d_->execute(sql, params); }
  std::string text(const std::string& sql, Params params = {}) {
    Result r = run(sql, std::move(params));
    return r.empty() || !r[0].cell(0) ? "NULL" : *r[0].cell(0);
  }
  std::int64_t scalar(const std::string& sql, Params params = {}) { return run(sql, std::move(params))[0].as_int64(0); }

  // An AT session in the zone the branches run in.
  SessionLease at_session() {
    SessionLease s = rm_->acquire();
    s->execute(my() ? "SET time_zone = '+05:30'" : "SET TimeZone = 'Europe/Paris'", {});
    return s;
  }

  Xid xid(const std::string& tag) { return Xid::make("ht" + id_ + "." + tag, rc_.name); }
  std::int64_t records(const Xid& x) {
    return scalar("SELECT COUNT(*) FROM dtx_undo_log WHERE gtrid = ? AND branch = ?", {x.gtrid, x.bqual});
  }
  std::int64_t locks(const Xid& x) {
    return scalar("SELECT COUNT(*) FROM dtx_global_lock WHERE gtrid = ?", {x.gtrid});
  }

  // Creates table `name` from `spec` and fills it.
  void create(const std::string& name, const Spec& spec) {
    run("DROP TABLE IF EXISTS " + name);
    created_.push_back(name);
    std::vector<std::string> defs, cols;
    for (const auto& c : spec.cols) {
      defs.push_back(q(c.name) + " " + c.type);
      if (!c.generated) cols.push_back(q(c.name));
    }
    run("CREATE TABLE " + name + " (" + join(defs, ", ") + spec.table_options + ")");
    for (const auto& row : spec.rows)
      run("INSERT INTO " + name + " (" + join(cols, ", ") + ")" + (my() ? "" : " OVERRIDING SYSTEM VALUE") +
          " VALUES " + row);
    specs_[name] = spec;
  }

  // A copy of `table`, made inside the database, named by table and suffix.
  std::string snapshot(const std::string& table, const std::string& suffix) {
    const std::string copy = "ht_k" + std::to_string(std::hash<std::string>{}(table) % 1000000000) + suffix;
    run("DROP TABLE IF EXISTS " + copy);
    created_.push_back(copy);
    run("CREATE TABLE " + copy + " AS SELECT * FROM " + table);
    return copy;
  }

  // How `table` differs from `copy`: one line per row missing, extra, or
  // with columns that are not identical (naming them). Empty = identical.
  std::vector<std::string> differences(const std::string& table, const std::string& copy) {
    const Spec& spec = specs_.at(table);
    std::vector<std::string> on, key_a, key_b, failing;
    for (const auto& k : spec.pk) {
      on.push_back("a." + q(k) + " = b." + q(k));
      key_a.push_back("a." + q(k));
      key_b.push_back("b." + q(k));
    }
    for (const auto& c : spec.cols) {
      const std::string proof =
          replace_all(replace_all(c.proof, "{a}", "a." + q(c.name)), "{b}", "b." + q(c.name));
      failing.push_back("CASE WHEN " + proof + " THEN NULL ELSE '" + c.name + "' END");
    }
    const std::string join_on = join(on, " AND ");
    const std::string sql =
        "SELECT k, w FROM (SELECT CONCAT_WS('/', " + join(key_a, ", ") + ") AS k, CASE WHEN b." + q(spec.pk[0]) +
        " IS NULL THEN 'missing' ELSE CONCAT_WS(', ', " + join(failing, ", ") + ") END AS w FROM " + copy +
        " a LEFT JOIN " + table + " b ON " + join_on + ") x WHERE w <> '' UNION ALL SELECT CONCAT_WS('/', " +
        join(key_b, ", ") + "), 'extra' FROM " + table + " b LEFT JOIN " + copy + " a ON " + join_on +
        " WHERE a." + q(spec.pk[0]) + " IS NULL ORDER BY 1";
    std::vector<std::string> out;
    for (const auto& row : run(sql)) out.push_back("row " + row.text(0) + ": " + row.text(1));
    return out;
  }

  struct Stmt {
    std::string sql;
    Params params;
    std::optional<std::uint64_t> affected;  // expected affected_rows, when given
  };

  // The affected rows the plain driver reports for `stmts`, run in a local
  // transaction that is rolled back: what the same statements give outside
  // AT mode (the API must not change with the mode).
  std::vector<std::uint64_t> plain_affected(const std::vector<Stmt>& stmts) {
    SessionLease s = plain_->acquire();
    s->execute(my() ? "SET time_zone = '+05:30'" : "SET TimeZone = 'Europe/Paris'", {});
    s->begin_local(xid("plain"));
    std::vector<std::uint64_t> out;
    for (const auto& st : stmts) out.push_back(s->execute(st.sql, st.params).affected_rows());
    s->rollback();
    return out;
  }

  // Runs `stmts` in an AT branch of `table`'s resource, phase 1, then
  // rollback: the table must be identical to its state before, with no
  // record and no lock left. Then the same again with commit: the table
  // must be identical to its state after phase 1.
  void round_trip(const std::string& table, const std::vector<Stmt>& stmts) {
    for (const bool commit : {false, true}) {
      SCOPED_TRACE(commit ? "then commit" : "then rollback");
      const std::string before = snapshot(table, "_s0");
      std::vector<std::uint64_t> plain;
      ASSERT_NO_THROW(plain = plain_affected(stmts));
      SessionLease s = at_session();
      const Xid x = xid(commit ? "c" : "r");
      s->begin(x);
      for (std::size_t i = 0; i < stmts.size(); ++i) {
        const Stmt& st = stmts[i];
        SCOPED_TRACE(st.sql);
        Result r;
        ASSERT_NO_THROW(r = s->execute(st.sql, st.params));
        if (st.affected) {
          EXPECT_EQ(r.affected_rows(), *st.affected);
        }
        // MariaDB's upserts count 2 per updated row: pinned once, in
        // UpsertCountsAffectedRowsAsThePlainDriverDoes, not in every round trip.
        if (!contains(st.sql, "ON DUPLICATE KEY UPDATE")) {
          EXPECT_EQ(r.affected_rows(), plain[i]) << "affected rows differ from the plain driver's";
        }
      }
      s->prepare();
      EXPECT_NE(differences(table, before), std::vector<std::string>{}) << "the statements changed nothing";
      EXPECT_EQ(records(x), 1);
      EXPECT_GT(locks(x), 0);
      const std::string phase1 = snapshot(table, "_s1");
      if (commit) {
        EXPECT_EQ(s->commit().outcome, FinishOutcome::done);
        EXPECT_EQ(differences(table, phase1), std::vector<std::string>{});
      } else {
        ASSERT_NO_THROW(s->rollback());
        EXPECT_EQ(differences(table, before), std::vector<std::string>{});
      }
      EXPECT_EQ(s->state(), BranchState::none);
      EXPECT_EQ(records(x), 0);
      EXPECT_EQ(locks(x), 0);
    }
  }

  // A new AT session that has run `stmts` in branch `tag` and phase 1.
  std::pair<SessionLease, Xid> phase1(const std::string& tag, const std::vector<std::string>& stmts) {
    SessionLease s = at_session();
    const Xid x = xid(tag);
    s->begin(x);
    for (const auto& sql : stmts) s->execute(sql, {});
    s->prepare();
    return {std::move(s), x};
  }

  // `sql` is refused in branch `s` before it runs: Errc::usage, saying
  // `what` and that mode = "xa" runs it.
  void expect_refused(Session& s, const std::string& sql, const std::string& what) {
    SCOPED_TRACE(sql);
    try {
      s.execute(sql, {});
      ADD_FAILURE() << "ran in an AT branch";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage) << e.what();
      EXPECT_TRUE(contains(e.what(), what)) << e.what();
      EXPECT_TRUE(contains(std::string(e.what()) + e.hint(), "mode = \"xa\"")) << e.what() << " / " << e.hint();
    }
  }

  // ---- the table of every type ----

  std::string types_table() {
    const std::string name = "ht_v" + id_;
    create(name, my() ? mysql_types() : postgres_types());
    if (!my()) run("ALTER TABLE " + name + " ALTER COLUMN id RESTART WITH 1000");
    return name;
  }

  static Spec mysql_types() {
    const std::string same = "{a} <=> {b} AND CAST({a} AS CHAR) <=> CAST({b} AS CHAR)";
    const std::string bytes = "CAST({a} AS BINARY) <=> CAST({b} AS BINARY)";
    const std::string dbl = "{a} <=> {b} AND ATAN2({a}, -1) <=> ATAN2({b}, -1)";
    const std::string instant = "UNIX_TIMESTAMP({a}) <=> UNIX_TIMESTAMP({b}) AND " + same;
    Spec s;
    s.pk = {"id"};
    s.cols = {
        {"id", "INT AUTO_INCREMENT PRIMARY KEY", same},
        {"uk", "VARCHAR(16) CHARACTER SET utf8mb4 NULL UNIQUE", bytes},
        {"n", "INT NOT NULL DEFAULT 0", same},
        {"dt", "DATETIME(6) NULL", same},
        {"ts", "TIMESTAMP(6) NULL", instant},
        {"d", "DATE NULL", same},
        {"tm", "TIME(6) NULL", same},
        {"num", "DECIMAL(65,30) NULL", same},
        {"dbl", "DOUBLE NULL", dbl},
        {"flt", "FLOAT NULL", dbl},
        {"ubig", "BIGINT UNSIGNED NULL", same},
        {"bits", "BIT(13) NULL", "{a} + 0 <=> {b} + 0"},
        {"bl", "BLOB NULL", bytes},
        {"u8", "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL", bytes},
        {"l1", "VARCHAR(32) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL", bytes},
        {"js", "JSON NULL", bytes},
        {"en", "ENUM('a','B','c') NULL", bytes},
        {"st", "SET('x','y','z') NULL", bytes},
        {"up", "TIMESTAMP(6) NOT NULL DEFAULT '2001-01-01 00:00:00' ON UPDATE CURRENT_TIMESTAMP(6)", instant},
        {"gv", "BIGINT AS (n * 2 + 1) VIRTUAL", same, true},
        {"gs", "VARCHAR(80) AS (CONCAT(n, '-', COALESCE(uk, '?'), '-', COALESCE(LENGTH(bl), '?'))) STORED",
         bytes, true},
    };
    s.rows = {
        "(1, 'k1', 10, '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '9999-12-31', "
        "'838:59:59.000000', '99999999999999999999999999999999999.999999999999999999999999999999', "
        "1.7976931348623157e308, 3.4028234663852886e38, 18446744073709551615, b'1111111111111', X'00FF0000', "
        "'😀𝄞 Grüße', CONVERT('Café ÿ' USING latin1), '{\"a\": [1, 2.50, \"😀\"],  \"b\": null}', 'B', 'x,z', "
        "'2001-01-01 00:00:00.000001')",
        "(2, 'k2', 20, '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '1000-01-01', "
        "'-838:59:59.000000', '-0.000000000000000000000000000001', 4.9e-324, 1.401298464324817e-45, 0, b'0', "
        "X'', '', ' ', '[]', 'a', '', '2001-01-01 00:00:00.000002')",
        // 01:30 UTC is 02:30 in Paris on the night the clocks go back: the ambiguous hour.
        "(3, 'k3', 30, '2024-10-27 02:30:00.000001', '2024-10-27 01:30:00.000001', '2024-02-29', "
        "'00:00:00.000001', '0.100000000000000000000000000000', 0.1e0 + 0.2e0, 0.1e0, 9223372036854775808, "
        "b'1010101010101', X'" + all_bytes_hex() + "', CONCAT('a', CHAR(0 USING utf8mb4), 'b  '), "
        "CONVERT('ÿ' USING latin1), '\"\\\\u0000 \\\\\"q\\\\\"\"', 'c', 'x,y,z', '2001-01-01 00:00:00.000003')",
        "(4, 'k4', 40, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "'2001-01-01 00:00:00.000004')",
        "(5, NULL, 50, '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000000', '0000-00-00', "
        "'-00:00:00.000001', '-99999999999999999999999999999999999.999999999999999999999999999999', -1e-300, "
        "-3.4028234663852886e38, 1, b'1', X'FF', 'A', NULL, 'null', NULL, 'y', '2001-01-01 00:00:00.000005')",
    };
    return s;
  }

  static Spec postgres_types() {
    const std::string same = "{a} IS NOT DISTINCT FROM {b}";
    const std::string text = "{a}::text IS NOT DISTINCT FROM {b}::text";
    const std::string utf8 = "convert_to({a}, 'UTF8') IS NOT DISTINCT FROM convert_to({b}, 'UTF8')";
    Spec s;
    s.pk = {"id"};
    s.cols = {
        {"id", "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", same},
        {"uk", "text UNIQUE", utf8},
        {"n", "int NOT NULL DEFAULT 0", same},
        {"ts", "timestamp(6)", same + " AND " + text},
        {"tz", "timestamptz", same},
        {"d", "date", same + " AND " + text},
        {"tm", "time(6)", same},
        {"num", "numeric", text},
        {"num2", "numeric(65,30)", text},
        {"dbl", "double precision", "float8send({a}) IS NOT DISTINCT FROM float8send({b})"},
        {"r", "real", "float4send({a}) IS NOT DISTINCT FROM float4send({b})"},
        {"by", "bytea", same},
        {"tx", "text", utf8},
        {"js", "json", text},
        {"jb", "jsonb", text},
        {"ia", "int[]", text},
        {"ta", "text[]", text},
        {"fa", "float8[]", text},
        {"u", "uuid", same},
        {"gs", "text GENERATED ALWAYS AS (n::text || '-' || coalesce(uk, '?')) STORED", utf8, true},
    };
    s.rows = {
        "(1, 'k1', 10, 'infinity', '2024-10-27 02:30:00+02', 'infinity', '24:00:00', 'NaN', "
        "'99999999999999999999999999999999999.999999999999999999999999999999', 'Infinity', 'NaN', "
        "'\\x00ff0000', '😀𝄞 Grüße', '{\"a\":1,  \"a\":2}', '{\"b\":1.50,\"a\":[true,null,\"😀\"]}', "
        "'[0:1]={1,2}', '{\"a,b\",\"\\\"q\\\"\",NULL,\"\",\"😀\"}', '{-0,1e-300,NaN,Infinity}', "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')",
        "(2, 'k2', 20, '-infinity', '2024-10-27 02:30:00+01', '4713-01-01 BC', '00:00:00', '1.500', "
        "'-0.000000000000000000000000000001', '-Infinity', '-0', '\\x', '', '  [1, 2.50]  ', 'null', '{}', "
        "'{}', '{}', '00000000-0000-0000-0000-000000000000')",
        // Nonexistent in Paris (clocks went forward): PostgreSQL reads it as 03:30.
        "(3, 'k3', 30, '2024-10-27 02:30:00.000001', '2024-03-31 02:30:00 Europe/Paris', '5874897-12-31', "
        "'23:59:59.999999', '1e-300', '0.100000000000000000000000000000', '-0', '1.4e-45', '\\x" +
            all_bytes_hex() +
            "', E'a\\tb\\nc\\\\d''e\"  ', '\"😀\"', '[1, 1.0, 1.00]', '{{1,2},{3,4}}', '{NULL}', "
            "'{4.9e-324,-1.7976931348623157e308}', 'ffffffff-ffff-ffff-ffff-ffffffffffff')",
        "(4, 'k4', 40, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "NULL)",
        "(5, NULL, 50, '294276-12-31 23:59:59.999999', '4713-01-01 00:00:00+00 BC', '2000-01-01', "
        "'00:00:00.000001', '123.4500', '-123.450000000000000000000000000000', 1e-300, 3.4028235e38, "
        "'\\x5c00', '\\', '[]', '{}', '{-2147483648}', '{\"NULL\"}', '{}', "
        "'12345678-1234-1234-1234-123456789abc')",
    };
    return s;
  }

  // ---- a table whose composite primary key runs in another order than its columns ----

  std::string composite_table() {
    const std::string name = "ht_c" + id_;
    Spec s;
    s.pk = {"c", "b", "a"};
    if (my()) {
      const std::string same = "{a} <=> {b} AND CAST({a} AS CHAR) <=> CAST({b} AS CHAR)";
      s.cols = {{"payload", "DOUBLE NULL", "{a} <=> {b}"},
                {"a", "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "CAST({a} AS BINARY) = CAST({b} AS BINARY)"},
                {"b", "INT", same},
                {"c", "DATETIME(6)", same},
                {"v", "JSON NULL", "CAST({a} AS BINARY) <=> CAST({b} AS BINARY)"}};
      s.table_options = ", PRIMARY KEY (c, b, a)";
      s.rows = {"(0.5, 'x😀', 1, '2024-10-27 02:30:00.000001', '{\"k\": 1}')",
                "(1e-300, 'x😀', 2, '2024-10-27 02:30:00.000001', NULL)",
                "(NULL, 'y', 1, '2024-10-27 02:30:00.000001', '[]')",
                "(-1.5, 'x😀', 1, '2024-10-27 02:30:00.000002', '{}')"};
    } else {
      const std::string same = "{a} IS NOT DISTINCT FROM {b}";
      s.cols = {{"payload", "double precision", "float8send({a}) IS NOT DISTINCT FROM float8send({b})"},
                {"a", "text", "convert_to({a}, 'UTF8') = convert_to({b}, 'UTF8')"},
                {"b", "int", same},
                {"c", "timestamptz", same},
                {"v", "jsonb", "{a}::text IS NOT DISTINCT FROM {b}::text"}};
      s.table_options = ", PRIMARY KEY (c, b, a)";
      s.rows = {"(0.5, 'x😀', 1, '2024-10-27 02:30:00+02', '{\"k\": 1}')",
                "('-0', 'x😀', 2, '2024-10-27 02:30:00+02', NULL)",
                "(NULL, 'y', 1, '2024-10-27 02:30:00+02', '[]')",
                "('NaN', 'x😀', 1, '2024-10-27 02:30:00+01', '{}')"};
    }
    create(name, s);
    return name;
  }

  std::string id_;
  ResourceConfig rc_;
  std::unique_ptr<ResourceManager> plain_;
  SessionLease d_;  // plain driver session, UTC: setup, copies and comparisons
  std::unique_ptr<ResourceManager> rm_;
  std::vector<std::string> created_;
  std::vector<std::string> cleanup_;  // statements TearDown runs after dropping the tables
  std::map<std::string, Spec> specs_;
};

INSTANTIATE_TEST_SUITE_P(Both, AtValuesTest, ::testing::Values(Db{"MariaDB", true}, Db{"PostgreSQL", false}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// ---------------------------------------------------------------- the comparison itself

// The proofs see the smallest change of each kind; otherwise every "identical
// after rollback" below would prove nothing.
TEST_P(AtValuesTest, ComparisonSeesTheSmallestChange) {
  const std::string t = types_table();
  struct Change {
    std::string column, set, where;
  };
  std::vector<Change> changes =
      my() ? std::vector<Change>{
                 {"dbl", "dbl = 0.3e0", "id = 3"},  // 0.30000000000000004 -> 0.3: one ULP
                 {"flt", "flt = CAST(? AS DOUBLE)", "id = 3"},
                 {"ts", "ts = ts + INTERVAL 1 MICROSECOND", "id = 3"},
                 {"dt", "dt = dt - INTERVAL 1 MICROSECOND", "id = 1"},
                 {"tm", "tm = '00:00:00.000002'", "id = 3"},
                 {"num", "num = num - 0.000000000000000000000000000001", "id = 1"},
                 {"ubig", "ubig = 18446744073709551614", "id = 1"},
                 {"bits", "bits = b'1111111111110'", "id = 1"},
                 {"bl", "bl = X'00FF0001'", "id = 1"},
                 {"u8", "u8 = '😀𝄞 grüße'", "id = 1"},  // case only, equal under utf8mb4_unicode_ci
                 {"u8", "u8 = 'A '", "id = 5"},          // trailing space, equal under PAD SPACE
                 {"l1", "l1 = CONVERT('CAFÉ ÿ' USING latin1)", "id = 1"},
                 {"js", "js = '{\"a\": [1, 2.50, \"😀\"], \"b\": null}'", "id = 1"},  // the same document
                 {"en", "en = 'c'", "id = 1"},
                 {"st", "st = 'x'", "id = 1"},
                 {"up", "up = up + INTERVAL 1 MICROSECOND", "id = 2"},
                 {"uk", "uk = ''", "id = 5"},  // NULL against the empty string
             }
           : std::vector<Change>{
                 {"dbl", "dbl = 0", "id = 3"},  // -0 against 0
                 {"r", "r = 0", "id = 2"},
                 {"fa", "fa = '{0,1e-300,NaN,Infinity}'", "id = 1"},
                 {"num", "num = 1.5", "id = 2"},  // scale only
                 {"tz", "tz = tz + interval '1 microsecond'", "id = 1"},
                 {"tz", "tz = '2024-10-27 02:30:00+01'", "id = 1"},  // the other 02:30
                 {"ts", "ts = ts - interval '1 microsecond'", "id = 3"},
                 {"by", "by = '\\x00ff0001'", "id = 1"},
                 {"tx", "tx = 'a\tb\nc\\d''e\" '", "id = 3"},
                 {"js", "js = '{\"a\":1, \"a\":2}'", "id = 1"},
                 {"jb", "jb = '[1, 1, 1]'", "id = 3"},
                 {"ia", "ia = '{1,2}'", "id = 1"},  // bounds only
                 {"ta", "ta = '{NULL}'", "id = 5"},
                 {"u", "u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'", "id = 1"},
                 {"uk", "uk = ''", "id = 5"},
             };
  for (const auto& c : changes) {
    SCOPED_TRACE(c.set);
    const std::string copy = snapshot(t, "_s0");
    Params p;
    if (contains(c.set, "?")) p.emplace_back(std::string("0.10000000894069672"));  // the float after 0.1f
    EXPECT_EQ(run("UPDATE " + t + " SET " + c.set + " WHERE " + c.where, p).affected_rows(), 1u);
    const auto diff = differences(t, copy);
    ASSERT_EQ(diff.size(), 1u);
    EXPECT_TRUE(contains(diff[0], c.column)) << diff[0];
  }
  const std::string copy = snapshot(t, "_s0");
  run("DELETE FROM " + t + " WHERE id = 4");
  run(my() ? "INSERT INTO " + t + " (id) VALUES (77)" : "INSERT INTO " + t + " (id) OVERRIDING SYSTEM VALUE VALUES (77)");
  EXPECT_EQ(differences(t, copy), (std::vector<std::string>{"row 4: missing", "row 77: extra"}));
}

// ---------------------------------------------------------------- INSERT

TEST_P(AtValuesTest, InsertOneRowWithColumnListAndGeneratedKeyRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"INSERT INTO " + t + " (uk, n, dt, ts, d, tm, num, dbl, flt, ubig, bits, bl, u8, l1, js, en, st) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, b'101', ?, ?, CONVERT(? USING latin1), ?, ?, ?)",
                    {"new", 7, "2024-10-27 02:30:00.5", "2024-10-27 02:30:00.000007", "2024-10-27", "-00:00:01.5",
                     "-12345.678900000000000000000000000001", 1e-300, 0.1, std::uint64_t(18446744073709551615ull),
                     std::string("\0\xff\0", 3), "😀 \t'\"\\", "ÿ", "{\"x\": \"😀\"}", "c", "y,z"},
                    1}});
  } else {
    round_trip(t, {{"INSERT INTO " + t + " (uk, n, ts, tz, d, tm, num, num2, dbl, r, by, tx, js, jb, ia, ta, fa, u) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    {"new", 7, "2024-10-27 02:30:00.5", "2024-10-27 02:30:00.000007+01", "2024-10-27", "24:00:00",
                     "NaN", "-12345.678900000000000000000000000001", -0.0, "-0", "\\x00ff00", "😀 \t'\"\\",
                     "{\"x\":  \"😀\"}", "{\"x\": 1.50}", "[5:6]={7,8}", "{\"\",NULL}", "{-0,NaN}",
                     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
                    1}});
  }
}

TEST_P(AtValuesTest, InsertSeveralRowsWithoutColumnListRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    // Without a column list every column has a value; generated ones take DEFAULT.
    round_trip(t, {{"INSERT INTO " + t + " VALUES "
                    "(100, 'm1', 1, '2000-02-29 12:00:00', '2000-02-29 12:00:00', '2000-02-29', '12:00:00', 1.5, "
                    "2.2250738585072014e-308, -0.5, 18446744073709551615, b'1', X'0000', '😀', 'a', '[1]', 'a', "
                    "'x', '2010-10-10 10:10:10.101010', DEFAULT, DEFAULT), "
                    "(?, ?, ?, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
                    "NULL, DEFAULT, DEFAULT, DEFAULT)",
                    {101, "m2", 2},
                    2}});
  } else {
    round_trip(t, {{"INSERT INTO " + t + " VALUES "
                    "(DEFAULT, 'm1', 1, '2000-02-29 12:00:00', '2024-10-27 02:30:00+02', '2000-02-29', '12:00', 1.5, "
                    "1.5, 2.2250738585072014e-308, -0.5, '\\x0000', '😀', '[]', '{}', '{1}', '{a}', '{1.5}', "
                    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', DEFAULT), "
                    "(DEFAULT, ?, ?, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
                    "NULL, NULL, NULL, DEFAULT)",
                    {"m2", 2},
                    2}});
  }
}

TEST_P(AtValuesTest, InsertSeveralRowsWithGeneratedKeysRoundTrips) {
  const std::string t = types_table();
  round_trip(t, {{"INSERT INTO " + t + " (uk, n, dbl, " + (my() ? "bl" : "by") + ") VALUES ('g1', 1, 1e-300, ?), ('g2', 2, NULL, NULL), "
                  "(NULL, 3, -1.7976931348623157e308, ?)",
                  {my() ? std::string("\0", 1) : std::string("\\x00"), my() ? std::string("a\0b", 3) : std::string("\\x610062")},
                  3}});
  // The keys came from AUTO_INCREMENT / the identity: the undo deleted exactly them.
}

// Keys at the top of their type: MariaDB BIGINT UNSIGNED AUTO_INCREMENT
// reaching 2^64-2 (InnoDB hands out no more) and 2^64-1 given, PostgreSQL
// serial reaching 2^31-1.
TEST_P(AtValuesTest, GeneratedKeysAtTheTopOfTheirTypeRoundTrip) {
  const std::string t = "ht_a" + id_;
  Spec spec;
  spec.pk = {"id"};
  if (my()) {
    spec.cols = {{"id", "BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY", "{a} <=> {b}"},
                 {"v", "VARCHAR(10)", "CAST({a} AS BINARY) <=> CAST({b} AS BINARY)"}};
    spec.rows = {"(18446744073709551612, 'a')"};
  } else {
    spec.cols = {{"id", "serial PRIMARY KEY", "{a} IS NOT DISTINCT FROM {b}"},
                 {"v", "text", "{a} IS NOT DISTINCT FROM {b}"}};
    spec.rows = {"(2147483645, 'a')"};
  }
  create(t, spec);
  if (!my()) run("SELECT setval(pg_get_serial_sequence('" + t + "', 'id'), 2147483645)");
  const std::string before = snapshot(t, "_s0");
  const std::string top = my() ? "18446744073709551615" : "2147483647";
  SessionLease s = at_session();
  const Xid x = xid("top");
  s->begin(x);
  EXPECT_EQ(s->execute("INSERT INTO " + t + " (v) VALUES ('b'), ('c')", {}).affected_rows(), 2u);
  if (my()) {
    EXPECT_EQ(s->execute("INSERT INTO " + t + " VALUES (?, 'd')", Params{std::uint64_t(18446744073709551615ull)})
                  .affected_rows(),
              1u);
  }
  EXPECT_EQ(s->execute("UPDATE " + t + " SET v = 'top' WHERE id = " + top, {}).affected_rows(), 1u);
  EXPECT_EQ(s->execute("DELETE FROM " + t + " WHERE v = 'a'", {}).affected_rows(), 1u);
  s->prepare();
  EXPECT_EQ(text("SELECT v FROM " + t + " WHERE id = " + top), "top");
  EXPECT_EQ(locks(x), my() ? 4 : 3);
  s->rollback();
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// ---------------------------------------------------------------- UPDATE

// Every row and every type passes through the before image, the after-image
// check and the restore.
TEST_P(AtValuesTest, UpdateOfEveryRowRoundTrips) {
  const std::string t = types_table();
  round_trip(t, {{"UPDATE " + t + " SET n = n + 1", {}, 5}});
}

TEST_P(AtValuesTest, UpdateSettingEveryTypeRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"UPDATE " + t + " SET dt = ?, ts = ?, d = NULL, tm = '-838:59:59', num = num * -1, dbl = ?, "
                    "flt = -flt, ubig = ?, bits = bits ^ b'1', bl = ?, u8 = CONCAT(COALESCE(u8, ''), '𝄞'), "
                    "l1 = CONVERT('ÿÿ' USING latin1), js = JSON_ARRAY(1, '😀'), en = 'c', st = 'x,y' WHERE id <> 2",
                    {"2024-10-27 02:30:00.999999", "2024-10-27 00:30:00.000001", 4.9e-324,
                     std::uint64_t(18446744073709551615ull), std::string("\0\0\0", 3)},
                    4}});
  } else {
    round_trip(t, {{"UPDATE " + t + " SET ts = ?, tz = ?, d = NULL, tm = '24:00', num = -num, num2 = 0, "
                    "dbl = ?, r = -r, by = ?, tx = coalesce(tx, '') || '𝄞', js = '[ 1 ]', jb = '{\"z\": 0.10}', "
                    "ia = '[-1:-1]={9}', ta = array_append(ta, 'x'), fa = '{-0}', u = NULL WHERE id <> 2",
                    {"2024-10-27 02:30:00.999999", "2024-10-27 02:30:00.000001+01", 4.9e-324, "\\x00000000"},
                    4}});
  }
}

TEST_P(AtValuesTest, UpdateWithQualifiedQuotedAndAliasedNamesRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"UPDATE `dtx_test`.`" + t + "` AS `x` SET `x`.`n` = `x`.`n` * 2, x.u8 = CONCAT(x.u8, '😀') "
                    "WHERE x.n >= ? ORDER BY x.n DESC LIMIT 2",
                    {20},
                    2},
                   {"UPDATE dtx_test." + t + " SET dtx_test." + t + ".dbl = -dtx_test." + t + ".dbl WHERE dtx_test." +
                        t + ".id = 1",
                    {},
                    1}});
    // ORDER BY ... LIMIT picked rows 5 and 4 (n 50 and 40), not 3.
  } else {
    round_trip(t, {{"UPDATE \"public\".\"" + t + "\" AS \"X\" SET \"n\" = \"X\".n * 2, tx = \"X\".tx || '😀' "
                    "WHERE \"X\".n >= ?",
                    {40},
                    2},
                   {"UPDATE public." + t + " SET dbl = -" + t + ".dbl WHERE public." + t + ".id = 1", {}, 1}});
  }
}

TEST_P(AtValuesTest, UpdateWithOrderByAndLimitChangesTheRowsItPicks) {
  if (!my()) GTEST_SKIP() << "ORDER BY / LIMIT in UPDATE is MariaDB's";
  const std::string t = types_table();
  SessionLease s = at_session();
  const Xid x = xid("ol");
  s->begin(x);
  EXPECT_EQ(s->execute("UPDATE " + t + " SET n = n + 1 ORDER BY n DESC LIMIT 2", {}).affected_rows(), 2u);
  s->prepare();
  EXPECT_EQ(text("SELECT GROUP_CONCAT(n ORDER BY id) FROM " + t), "10,20,30,41,51");
  EXPECT_EQ(s->commit().outcome, FinishOutcome::done);
}

// The statement's own text runs under the session's time zone, as it would
// outside AT mode (MariaDB images TIMESTAMP in UTC, but only its own
// expressions): WHERE, SET and VALUES read local times.
TEST_P(AtValuesTest, StatementsReadTimesInTheSessionsTimeZone) {
  const std::string t = types_table();
  const std::string col = my() ? "ts" : "tz";
  SessionLease s = at_session();  // +05:30 / Europe/Paris
  s->begin(xid("tz"));
  // Row 3 holds 2024-10-27 01:30:00.000001 UTC (MariaDB) / 2024-03-31 01:30:00 UTC (PostgreSQL).
  const std::string local3 = my() ? "'2024-10-27 07:00:00.000001'" : "'2024-03-31 03:30:00'";
  EXPECT_EQ(s->execute("UPDATE " + t + " SET n = 31, " + col + " = '2024-10-27 00:30:00.000001' WHERE " + col +
                           " = " + local3,
                       {})
                .affected_rows(),
            1u);
  EXPECT_EQ(s->execute("INSERT INTO " + t + " (uk, n, " + col + ") VALUES ('tz', 1, ?)", Params{"2024-07-01 12:00:00"})
                .affected_rows(),
            1u);
  s->prepare();
  const std::string utc = my() ? "SELECT CAST(ts AS CHAR) FROM " + t + " WHERE " : "SELECT tz::text FROM " + t + " WHERE ";
  EXPECT_EQ(text(utc + "n = 31"), my() ? "2024-10-26 19:00:00.000001" : "2024-10-26 22:30:00.000001+00");
  EXPECT_EQ(text(utc + "uk = 'tz'"), my() ? "2024-07-01 06:30:00.000000" : "2024-07-01 10:00:00+00");
  EXPECT_EQ(s->commit().outcome, FinishOutcome::done);
}

// ---------------------------------------------------------------- DELETE

TEST_P(AtValuesTest, DeleteOfEveryRowRoundTrips) {
  const std::string t = types_table();
  // PostgreSQL's id is GENERATED ALWAYS: putting the rows back needs OVERRIDING SYSTEM VALUE.
  round_trip(t, {{"DELETE FROM " + t, {}, 5}});
}

TEST_P(AtValuesTest, DeleteWithConditionsRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"DELETE FROM " + t + " WHERE n > ? ORDER BY n DESC LIMIT 2", {10}, 2},
                   {"DELETE FROM `dtx_test`.`" + t + "` WHERE `bl` = X'00FF0000'", {}, 1}});
  } else {
    round_trip(t, {{"DELETE FROM public." + t + " AS x WHERE x.uk LIKE 'k%' AND x.id <> ?", {4}, 3},
                   {"DELETE FROM \"" + t + "\" WHERE by = '\\x5c00'", {}, 1}});
  }
}

// ---------------------------------------------------------------- upserts

TEST_P(AtValuesTest, UpsertMeetingRowsThroughThePrimaryKeyRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    // Row 1 exists (updated), row 200 does not (inserted).
    round_trip(t, {{"INSERT INTO " + t + " (id, uk, n, bl) VALUES (1, 'zz', 5, X'01'), (200, 'new200', 6, X'00') "
                    "ON DUPLICATE KEY UPDATE n = n + VALUES(n), dbl = -dbl, bl = VALUES(bl)",
                    {}}});
  } else {
    round_trip(t, {{"INSERT INTO " + t + " (id, uk, n) OVERRIDING SYSTEM VALUE VALUES (1, 'zz', 5), (200, 'new200', 6) "
                    "ON CONFLICT (id) DO UPDATE SET n = " + t + ".n + excluded.n, dbl = -" + t + ".dbl",
                    {},
                    2}});
  }
}

TEST_P(AtValuesTest, UpsertMeetingARowThroughASecondaryUniqueKeyRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"INSERT INTO " + t + " (uk, n, u8) VALUES (?, 1, 'x'), ('fresh', 2, '😀') "
                    "ON DUPLICATE KEY UPDATE n = n + 100, u8 = VALUES(u8), ts = NULL",
                    {"k2"}}});
  } else {
    round_trip(t, {{"INSERT INTO " + t + " (uk, n, tx) VALUES (?, 1, 'x'), ('fresh', 2, '😀') "
                    "ON CONFLICT (uk) DO UPDATE SET n = " + t + ".n + 100, tx = excluded.tx, tz = NULL",
                    {"k2"},
                    2}});
  }
}

TEST_P(AtValuesTest, UpsertLeavingAMetRowAsItWasRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    // Row 3 is met and left as it was; row 300 is inserted.
    round_trip(t, {{"INSERT INTO " + t + " (id, n) VALUES (3, 0), (300, 0) ON DUPLICATE KEY UPDATE n = n", {}}});
  } else {
    round_trip(t, {{"INSERT INTO " + t + " (uk, n) VALUES ('k1', 0), ('fresh', 0) ON CONFLICT DO NOTHING", {}, 1},
                   {"INSERT INTO " + t + " (uk, n) VALUES ('k3', 0), ('fresh2', 0) ON CONFLICT (uk) DO NOTHING", {}, 1}});
  }
}

// What execute() returns must not depend on the mode: MariaDB counts an
// upsert's inserted row 1, its updated row 2, a row left as it was 0.
TEST_P(AtValuesTest, UpsertCountsAffectedRowsAsThePlainDriverDoes) {
  const std::string t = types_table();
  const std::vector<Stmt> stmts =
      my() ? std::vector<Stmt>{{"INSERT INTO " + t + " (id, n) VALUES (1, 0), (200, 0) ON DUPLICATE KEY UPDATE n = n + 1",
                                {}, 3},
                               {"INSERT INTO " + t + " (id, n) VALUES (2, 0), (201, 0) ON DUPLICATE KEY UPDATE n = n",
                                {}, 1}}
           : std::vector<Stmt>{{"INSERT INTO " + t + " (uk, n) VALUES ('k1', 0), ('new', 0) ON CONFLICT (uk) DO UPDATE "
                                "SET n = excluded.n", {}, 2},
                               {"INSERT INTO " + t + " (uk, n) VALUES ('k2', 0), ('new2', 0) ON CONFLICT DO NOTHING",
                                {}, 1}};
  const std::vector<std::uint64_t> plain = plain_affected(stmts);
  SessionLease s = at_session();
  s->begin(xid("count"));
  for (std::size_t i = 0; i < stmts.size(); ++i) {
    SCOPED_TRACE(stmts[i].sql);
    EXPECT_EQ(plain[i], *stmts[i].affected);
    EXPECT_EQ(s->execute(stmts[i].sql, stmts[i].params).affected_rows(), plain[i]);
  }
  s->rollback();
}

TEST_P(AtValuesTest, UpsertWithAnUpdateConditionRoundTrips) {
  if (my()) GTEST_SKIP() << "DO UPDATE ... WHERE is PostgreSQL's";
  const std::string t = types_table();
  // k1 (n = 10) is met but not updated, k2 (n = 20) is updated, k9 is inserted.
  round_trip(t, {{"INSERT INTO " + t + " AS cur (uk, n) VALUES ('k1', 1), ('k2', 1), ('k9', 1) "
                  "ON CONFLICT (uk) DO UPDATE SET n = cur.n + excluded.n, fa = '{1}' WHERE cur.n > ?",
                  {15},
                  2},
                 {"INSERT INTO " + t + " (uk, n) VALUES ('k3', 1) ON CONFLICT ON CONSTRAINT " + t +
                      "_uk_key DO UPDATE SET jb = '{}'",
                  {},
                  1}});
}

TEST_P(AtValuesTest, UpsertWithDefaultKeyWithoutColumnListRoundTrips) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"INSERT INTO " + t + " VALUES (DEFAULT, 'k1', 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
                    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT, DEFAULT, DEFAULT) "
                    "ON DUPLICATE KEY UPDATE n = n + 1",
                    {}}});
  } else {
    round_trip(t, {{"INSERT INTO " + t + " VALUES (DEFAULT, 'k1', 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
                    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT) "
                    "ON CONFLICT (uk) DO UPDATE SET n = excluded.n",
                    {},
                    1},
                   // No target given: the row may be met through any unique key, the key's DEFAULT included.
                   {"INSERT INTO " + t + " VALUES (DEFAULT, 'k2', 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
                    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT) "
                    "ON CONFLICT ON CONSTRAINT " + t + "_uk_key DO UPDATE SET n = excluded.n",
                    {},
                    1}});
  }
}

TEST_P(AtValuesTest, PostgresReturningGivesTheStatementsOwnColumns) {
  if (my()) GTEST_SKIP() << "RETURNING of the user's own is checked on PostgreSQL";
  const std::string t = types_table();
  SessionLease s = at_session();
  s->begin(xid("ret"));
  Result r = s->execute("INSERT INTO " + t + " (uk, n, r) VALUES ('ret', 3, '-0') RETURNING n, r, gs", {});
  ASSERT_EQ(r.columns().size(), 3u);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].text(0), "3");
  EXPECT_EQ(r[0].text(1), "-0");
  EXPECT_EQ(r[0].text(2), "3-ret");
  s->rollback();
}

// PostgreSQL's UPDATE and DELETE take a RETURNING list too (the recognizer
// accepts them); its rows are the statement's result, in AT mode as outside.
// UPDATE / DELETE ... RETURNING (PostgreSQL's; the MariaDB reader refuses
// them already): refused before anything runs, with the way out named, and
// the branch stays usable. (Before the refusal the user's rows were dropped:
// the result came back empty.)
TEST_P(AtValuesTest, UpdateAndDeleteReturningAreRefusedBeforeAnythingRuns) {
  const std::string t = types_table();
  const std::string before = snapshot(t, "_s0");
  SessionLease s = at_session();
  s->begin(xid("ret2"));
  for (const std::string& sql : {"UPDATE " + t + " SET n = n + 1 WHERE id = 1 RETURNING n",
                                 "DELETE FROM " + t + " WHERE id IN (2, 3) RETURNING id"}) {
    SCOPED_TRACE(sql);
    try {
      s->execute(sql, {});
      ADD_FAILURE() << "ran in an AT branch";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::usage) << e.what();
      EXPECT_TRUE(contains(e.what(), "mode = \"xa\"")) << e.what();
    }
  }
  EXPECT_EQ(s->execute("UPDATE " + t + " SET n = n + 1 WHERE id = 1", {}).affected_rows(), 1u);
  s->rollback();
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
}

// Comments are part of a statement's text; AT mode appends to and reuses
// pieces of it (FOR UPDATE, ORDER BY, LIMIT, RETURNING), which a trailing
// `-- comment` must not swallow.
TEST_P(AtValuesTest, StatementsWithCommentsChangeOnlyWhatTheySay) {
  const std::string t = types_table();
  if (my()) {
    round_trip(t, {{"UPDATE " + t + " SET n = n + 1 WHERE n > ? -- the largest n only\nORDER BY n DESC LIMIT 1",
                    {0},
                    1},
                   {"DELETE FROM " + t + " WHERE n < 35 /* two rows */ ORDER BY n -- the smallest\nLIMIT 1", {}, 1},
                   {"INSERT INTO " + t + " (uk, n) VALUES ('c1', 1) -- one row", {}, 1},
                   {"UPDATE " + t + " SET n = 0 WHERE id = 3; -- last", {}, 1}});
  } else {
    round_trip(t, {{"UPDATE " + t + " SET n = n + 1 WHERE n > ? -- all but the first\n", {10}, 4},
                   {"DELETE FROM " + t + " WHERE n < 35 /* two rows */ AND id = 2 -- the second", {}, 1},
                   {"INSERT INTO " + t + " (uk, n) VALUES ('c1', 1) -- one row", {}, 1},
                   {"INSERT INTO " + t + " (uk, n) VALUES ('k1', 1) ON CONFLICT (uk) DO UPDATE SET n = 5 -- last", {}, 1},
                   {"UPDATE " + t + " SET n = 0 WHERE id = 3; -- last", {}, 1}});
  }
}

// The recognizer accepts a trailing ';' followed by a comment; an INSERT,
// to which AT mode appends RETURNING, must run too.
TEST_P(AtValuesTest, InsertEndingWithSemicolonAndCommentRoundTrips) {
  const std::string t = types_table();
  round_trip(t, {{"INSERT INTO " + t + " (uk, n) VALUES ('c1', 1); -- done", {}, 1},
                 {"INSERT INTO " + t + " (uk, n) VALUES ('c2', 2); /* done */", {}, 1}});
}

// ---------------------------------------------------------------- several statements, one net record

TEST_P(AtValuesTest, SeveralStatementsOnTheSameRowsRoundTrip) {
  const std::string t = types_table();
  const bool m = my();
  round_trip(t, {
                    {"UPDATE " + t + " SET n = n + 1, uk = 'k1b' WHERE id = 1", {}, 1},
                    {"UPDATE " + t + " SET n = n + 1, " + (m ? "dbl = 0" : "dbl = 0, r = 0") + " WHERE id IN (1, 3)", {}, 2},
                    {"DELETE FROM " + t + " WHERE id = 2", {}, 1},
                    {"INSERT INTO " + t + " (uk, n) VALUES ('tmp', 1)", {}, 1},
                    {"UPDATE " + t + " SET n = 99 WHERE uk = 'tmp'", {}, 1},
                    {"DELETE FROM " + t + " WHERE uk = 'tmp'", {}, 1},  // inserted, then deleted: no undo needed
                    {"INSERT INTO " + t + " (uk, n) VALUES ('k2', 5)", {}, 1},  // row 2's key value, new row
                    {m ? "INSERT INTO " + t + " (id, n) VALUES (4, 0) ON DUPLICATE KEY UPDATE n = n * 3"
                       : "INSERT INTO " + t + " (id, n) OVERRIDING SYSTEM VALUE VALUES (4, 0) ON CONFLICT (id) DO "
                         "UPDATE SET n = " + t + ".n * 3",
                     {}},
                });
}

// ---------------------------------------------------------------- composite keys

TEST_P(AtValuesTest, CompositeKeyInAnotherOrderThanTheColumnsRoundTrips) {
  const std::string t = composite_table();
  const std::string c1 = my() ? "'2024-10-27 02:30:00.000001'" : "'2024-10-27 02:30:00+02'";
  round_trip(t, {
                    {"UPDATE " + t + " SET payload = ? WHERE b = 1", {-2.5}, 3},
                    {"DELETE FROM " + t + " WHERE a = ? AND b = 2", {"x😀"}, 1},
                    {"INSERT INTO " + t + " (a, b, c, v) VALUES ('z', 1, " + c1 + ", '[1]'), ('x😀', 9, " + c1 + ", NULL)",
                     {},
                     2},
                    {my() ? "INSERT INTO " + t + " (payload, a, b, c) VALUES (7, 'y', 1, " + c1 +
                                ") ON DUPLICATE KEY UPDATE payload = VALUES(payload)"
                          : "INSERT INTO " + t + " (payload, a, b, c) VALUES (7, 'y', 1, " + c1 +
                                ") ON CONFLICT (c, b, a) DO UPDATE SET payload = excluded.payload",
                     {}},
                });
}

// Global locks follow rows, not the text a session prints them as: a key
// column whose text depends on a session setting must lock the same row for
// sessions with other settings. PostgreSQL: timestamptz (TimeZone) and
// bytea (bytea_output) keys; MariaDB refuses TIMESTAMP keys, and its DATETIME
// and VARBINARY keys print the same everywhere.
TEST_P(AtValuesTest, AGlobalLockHoldsForSessionsWithOtherSettings) {
  const std::string t = composite_table();
  const std::string bin = "ht_b" + id_;
  Spec spec;
  spec.pk = {"k"};
  spec.cols = {{"k", my() ? "VARBINARY(8) PRIMARY KEY" : "bytea PRIMARY KEY", "{a} = {b}"},
               {"v", my() ? "INT" : "int", "{a} = {b}"}};
  spec.rows = {my() ? "(X'00FF', 1)" : "('\\x00ff', 1)"};
  create(bin, spec);
  auto [holder, h] = phase1("holder", {"UPDATE " + t + " SET payload = 1 WHERE b = 2", "UPDATE " + bin + " SET v = 2"});
  SessionLease other = rm_->acquire();
  other->execute(my() ? "SET time_zone = '+00:00'" : "SET TimeZone = 'UTC'", {});
  if (!my()) other->execute("SET bytea_output = 'escape'", {});
  for (const std::string& sql : {"UPDATE " + t + " SET payload = 2 WHERE b = 2", "UPDATE " + bin + " SET v = 3"}) {
    SCOPED_TRACE(sql);
    other->begin(xid("other"));
    try {
      other->execute(sql, {});
      ADD_FAILURE() << "a row locked by another global transaction was changed by a session with other settings";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::lock_conflict) << e.what();
      EXPECT_TRUE(contains(e.what(), h.gtrid)) << e.what();
    }
    other->rollback();
  }
  EXPECT_NO_THROW(holder->rollback());
  EXPECT_EQ(text(my() ? "SELECT CAST(payload AS CHAR) FROM " + t + " WHERE b = 2"
                      : "SELECT payload::text FROM " + t + " WHERE b = 2"),
            my() ? "1e-300" : "-0");
  EXPECT_EQ(scalar("SELECT v FROM " + bin), 1);
}

// Quoted names with quotes, spaces, case and non-ASCII in them, for the
// table and its columns, through every statement kind.
TEST_P(AtValuesTest, OddlyQuotedNamesRoundTrip) {
  const std::string t = q("ht_Q" + id_ + (my() ? "`x é" : "\"x é"));
  Spec spec;
  spec.pk = {my() ? "K`ey é" : "K\"ey é"};
  const std::string k = q(spec.pk[0]), v = q("Va lue");
  spec.cols = {{"Va lue", my() ? "VARCHAR(20) CHARACTER SET utf8mb4" : "text",
                my() ? "CAST({a} AS BINARY) <=> CAST({b} AS BINARY)" : "{a} IS NOT DISTINCT FROM {b}"},
               {spec.pk[0], my() ? "INT PRIMARY KEY" : "int PRIMARY KEY",
                my() ? "{a} <=> {b}" : "{a} IS NOT DISTINCT FROM {b}"}};
  spec.rows = {"('a', 1)", "('b', 2)", "(NULL, 3)"};
  create(t, spec);
  round_trip(t, {{"UPDATE " + t + " SET " + v + " = 'z' WHERE " + k + " = 1", {}, 1},
                 {"DELETE FROM " + t + " WHERE " + k + " = ?", {2}, 1},
                 {"INSERT INTO " + t + " (" + k + ", " + v + ") VALUES (4, 'd')", {}, 1},
                 {my() ? "INSERT INTO " + t + " VALUES ('x', 3) ON DUPLICATE KEY UPDATE " + v + " = 'y'"
                       : "INSERT INTO " + t + " VALUES ('x', 3) ON CONFLICT (" + k + ") DO UPDATE SET " + v + " = 'y'",
                  {}}});
}

// A PostgreSQL session whose output settings would print a value
// inexactly (fewer float digits, another date style) gets an error naming
// the setting instead of an inexact image, and nothing changes.
TEST_P(AtValuesTest, PostgresSessionSettingsThatWouldRoundAreRefused) {
  if (my()) GTEST_SKIP() << "MariaDB images do not follow session settings (TIMESTAMP is read in UTC)";
  const std::string t = types_table();
  const std::string before = snapshot(t, "_s0");
  for (const std::string& setting : std::vector<std::string>{"SET extra_float_digits = 0", "SET DateStyle = 'SQL, DMY'"}) {
    SCOPED_TRACE(setting);
    SessionLease s = at_session();
    s->execute(setting, {});
    s->begin(xid("set"));
    try {
      s->execute("UPDATE " + t + " SET n = n + 1 WHERE id = 1", {});
      s->prepare();
      ADD_FAILURE() << "imaged under " << setting;
      s->rollback();
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), setting.substr(4, setting.find(' ', 4) - 4))) << e.what();
      s->rollback();
    }
    s->execute("RESET ALL", {});
  }
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
}

// One statement over many rows: 20000 keys are more than the 65535
// parameters one statement may carry at four per lock row. Bounded by a
// deadline of 60 s. PostgreSQL runs with jit = off here: AT mode's
// statements by key are chains of 20000 ORs, which PostgreSQL 15's JIT
// spends about 8 minutes compiling, deaf to the deadline's cancel (with jit
// off the same UPDATE takes about a second).
TEST_P(AtValuesTest, AStatementOverManyRowsRoundTrips) {
  const std::string t = "ht_m" + id_;
  Spec spec;
  spec.pk = {"id"};
  spec.cols = {{"id", my() ? "INT PRIMARY KEY" : "int PRIMARY KEY", "{a} = {b}"},
               {"v", my() ? "INT" : "int", "{a} = {b}"}};
  create(t, spec);
  run(my() ? "INSERT INTO " + t + " SELECT seq, seq FROM seq_1_to_20000"
           : "INSERT INTO " + t + " SELECT g, g FROM generate_series(1, 20000) g");
  const std::string before = snapshot(t, "_s0");
  SessionLease s = at_session();
  if (!my()) s->execute("SET jit = off", {});
  const Xid x = xid("many");
  s->begin(x);
  s->set_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(60));
  const auto start = std::chrono::steady_clock::now();
  try {
    EXPECT_EQ(s->execute("UPDATE " + t + " SET v = v + 1", {}).affected_rows(), 20000u);
    EXPECT_EQ(s->execute("DELETE FROM " + t + " WHERE id = 7", {}).affected_rows(), 1u);
    s->prepare();
  } catch (const Error& e) {
    ADD_FAILURE() << "after " << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count()
                  << " s: " << std::string(e.what()).substr(0, 400);
    s->rollback();
    return;
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM " + t + " WHERE v = id + 1"), 19999);
  EXPECT_EQ(locks(x), 20000);
  s->rollback();
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// A 1 MiB blob holding every byte value travels through the record (as
// 2 MiB of hex in its JSON) and back.
TEST_P(AtValuesTest, ALargeBlobRoundTrips) {
  const std::string t = types_table();
  const std::string col = my() ? "big" : "by";
  if (my()) {
    run("ALTER TABLE " + t + " ADD COLUMN big MEDIUMBLOB");
    specs_[t].cols.push_back({"big", "MEDIUMBLOB", "CAST({a} AS BINARY) <=> CAST({b} AS BINARY)"});
  }
  run(my() ? "UPDATE " + t + " SET big = REPEAT(UNHEX('" + all_bytes_hex() + "'), 4096) WHERE id IN (1, 2)"
           : "UPDATE " + t + " SET by = decode(repeat('" + all_bytes_hex() + "', 4096), 'hex') WHERE id IN (1, 2)");
  EXPECT_EQ(scalar("SELECT LENGTH(" + col + ") FROM " + t + " WHERE id = 1"), 1 << 20);
  round_trip(t, {{"UPDATE " + t + " SET n = n + 1 WHERE id = 1", {}, 1},
                 {"DELETE FROM " + t + " WHERE id = 2", {}, 1}});
}

// ---------------------------------------------------------------- rollback elsewhere

// Phase 2 made by another session, in another time zone, restores the same
// instants and bytes.
TEST_P(AtValuesTest, RollbackByAnotherSessionInAnotherTimeZoneIsExact) {
  const std::string t = types_table();
  const std::string before = snapshot(t, "_s0");
  auto [s, x] = phase1("zone", {"DELETE FROM " + t + " WHERE id IN (1, 2)", "UPDATE " + t + " SET n = -n"});
  undo::release_prepared(*s);
  SessionLease other = rm_->acquire();
  other->execute(my() ? "SET time_zone = '-09:00'" : "SET TimeZone = 'America/New_York'", {});
  FinishResult r = other->rollback_prepared(x);
  EXPECT_EQ(r.outcome, FinishOutcome::done) << (r.error ? r.error->what() : "");
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// ---------------------------------------------------------------- dirty write

// A row changed outside the global transaction between phase 1 and
// rollback: the rollback changes nothing and reports the rows.
TEST_P(AtValuesTest, DirtyWriteOnTheTypedTableIsReportedAndNothingChanges) {
  const std::string t = types_table();
  const std::string before = snapshot(t, "_s0");
  auto [s, x] = phase1("dirty", {"UPDATE " + t + " SET n = n + 1 WHERE id IN (1, 3)", "DELETE FROM " + t + " WHERE id = 2"});
  // One byte of row 3's blob changes outside any global transaction.
  run(my() ? "UPDATE " + t + " SET bl = CONCAT(bl, X'00') WHERE id = 3"
           : "UPDATE " + t + " SET by = by || '\\x00'::bytea WHERE id = 3");
  const std::string dirty = snapshot(t, "_s1");
  undo::release_prepared(*s);
  SessionLease other = rm_->acquire();
  FinishResult r = other->rollback_prepared(x);
  EXPECT_EQ(r.outcome, FinishOutcome::conflicting_changes);
  ASSERT_TRUE(r.error);
  EXPECT_TRUE(contains(r.error->what(), x.gtrid)) << r.error->what();
  EXPECT_TRUE(contains(r.error->what(), t)) << r.error->what();
  EXPECT_EQ(differences(t, dirty), std::vector<std::string>{});  // nothing undone, nothing overwritten
  EXPECT_EQ(records(x), 1);
  EXPECT_EQ(locks(x), 3);
  // The operator's overwrite brings back the before images, exactly.
  EXPECT_EQ(other->rollback_prepared_overwriting(x).outcome, FinishOutcome::done);
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// The dirty-write check sees the smallest changes too: a rollback after
// any of them reports the conflict and leaves the changed row as it is.
TEST_P(AtValuesTest, DirtyWritesOfTheSmallestKindAreSeen) {
  const std::string t = types_table();
  const std::vector<std::string> changes =
      my() ? std::vector<std::string>{"dbl = 0.3e0 WHERE id = 3",  // one ULP
                                      "ts = ts - INTERVAL 1 MICROSECOND WHERE id = 1",
                                      "u8 = '😀𝄞 grüße' WHERE id = 1",  // case only
                                      "js = '{\"a\": [1, 2.50, \"😀\"], \"b\": null}' WHERE id = 1",
                                      "up = up + INTERVAL 1 MICROSECOND WHERE id = 2",
                                      "st = 'x,y' WHERE id = 3"}
           : std::vector<std::string>{"dbl = 0 WHERE id = 3",  // -0 to 0
                                      "num = 1.5 WHERE id = 2",  // scale only
                                      "tz = tz + interval '1 microsecond' WHERE id = 1",
                                      "jb = '[1, 1, 1]' WHERE id = 3",
                                      "ia = '{1,2}' WHERE id = 1",
                                      "fa = '{0,1e-300,NaN,Infinity}' WHERE id = 1"};
  for (const auto& change : changes) {
    SCOPED_TRACE(change);
    const std::string before = snapshot(t, "_s0");
    auto [s, x] = phase1("small", {"UPDATE " + t + " SET n = n + 1 WHERE id IN (1, 2, 3)"});
    run("UPDATE " + t + " SET " + change);
    const std::string dirty = snapshot(t, "_s1");
    FinishResult r = s->rollback_prepared(x);
    undo::release_prepared(*s);
    EXPECT_EQ(r.outcome, FinishOutcome::conflicting_changes) << (r.error ? r.error->what() : "");
    EXPECT_EQ(differences(t, dirty), std::vector<std::string>{});
    EXPECT_EQ(s->rollback_prepared_overwriting(x).outcome, FinishOutcome::done);
    EXPECT_EQ(differences(t, before), std::vector<std::string>{});
    EXPECT_EQ(locks(x), 0);
  }
}

// A row the branch changed deleted outside it, or a row it deleted put
// back with other values: both dirty. Put back exactly as it was before:
// clean, and the rollback completes.
TEST_P(AtValuesTest, DirtyWritesThatDeleteOrInsertRowsAreSeen) {
  const std::string t = types_table();
  const std::string copy_of_2 = my() ? "INSERT INTO " + t + " (id, uk, n, dt, ts, d, tm, num, dbl, flt, ubig, bits, bl, "
                                       "u8, l1, js, en, st, up) SELECT id, uk, n, dt, ts, d, tm, num, dbl, flt, ubig, "
                                       "bits, bl, u8, l1, js, en, st, up FROM "
                                     : "INSERT INTO " + t + " (id, uk, n, ts, tz, d, tm, num, num2, dbl, r, by, tx, js, "
                                       "jb, ia, ta, fa, u) OVERRIDING SYSTEM VALUE SELECT id, uk, n, ts, tz, d, tm, "
                                       "num, num2, dbl, r, by, tx, js, jb, ia, ta, fa, u FROM ";
  struct Case {
    std::string outside;
    bool dirty;
  };
  for (const Case& c : {Case{"DELETE FROM " + t + " WHERE id = 1", true},
                        Case{copy_of_2 + "%s WHERE id = 2", false},
                        Case{replace_all(copy_of_2, "SELECT id, uk, n,", "SELECT id, uk, n + 1,") + "%s WHERE id = 2",
                             true}}) {
    SCOPED_TRACE(c.outside);
    const std::string before = snapshot(t, "_s0");
    auto [s, x] = phase1("rows", {"UPDATE " + t + " SET n = n + 1 WHERE id = 1", "DELETE FROM " + t + " WHERE id = 2"});
    run(replace_all(c.outside, "%s", before));
    const std::string now = snapshot(t, "_s1");
    FinishResult r = s->rollback_prepared(x);
    undo::release_prepared(*s);
    if (c.dirty) {
      EXPECT_EQ(r.outcome, FinishOutcome::conflicting_changes) << (r.error ? r.error->what() : "");
      EXPECT_EQ(differences(t, now), std::vector<std::string>{});
      EXPECT_EQ(s->rollback_prepared_overwriting(x).outcome, FinishOutcome::done);
    } else {
      EXPECT_EQ(r.outcome, FinishOutcome::done) << (r.error ? r.error->what() : "");
    }
    EXPECT_EQ(differences(t, before), std::vector<std::string>{});
    EXPECT_EQ(locks(x), 0);
  }
}

// ---------------------------------------------------------------- columns the database sets

// MariaDB: `up` is ON UPDATE CURRENT_TIMESTAMP(6) and gv / gs are generated
// (VIRTUAL, STORED); PostgreSQL: gs is a STORED generated column. The
// rollback comes once the server clock has moved past phase 1's timestamp:
// it is clean, puts `up` back to its exact value, and never writes a
// generated column (the database would refuse it).
TEST_P(AtValuesTest, ColumnsTheDatabaseSetsDoNotMakeARollbackDirty) {
  const std::string t = types_table();
  const std::string before = snapshot(t, "_s0");
  auto [s, x] = phase1("auto", {"UPDATE " + t + " SET n = n + 5, uk = CONCAT(uk, '+') WHERE id IN (1, 2)",
                                 "DELETE FROM " + t + " WHERE id = 3"});
  if (my()) {
    const std::string up = text("SELECT CAST(up AS CHAR) FROM " + t + " WHERE id = 1");
    EXPECT_NE(up, "2001-01-01 00:00:00.000001");  // the database set it in phase 1
    EXPECT_EQ(text("SELECT CONCAT(gv, ' ', gs) FROM " + t + " WHERE id = 1"), "31 15-k1+-4");
    // Some time later: the clock is past the phase-1 value.
    while (scalar("SELECT NOW(6) > up FROM " + t + " WHERE id = 1") == 0) {
    }
  } else {
    EXPECT_EQ(text("SELECT gs FROM " + t + " WHERE id = 1"), "15-k1+");
  }
  s->rollback();
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// The other way a database changes columns by itself: a BEFORE UPDATE
// trigger stamping the row (PostgreSQL's usual updated_at, MariaDB's
// alternative to ON UPDATE). The rollback's own restore must not leave the
// trigger's stamp behind.
TEST_P(AtValuesTest, ARowStampingTriggerStopsTheRollbackInsteadOfOutlivingIt) {
  const std::string t = "ht_t" + id_;
  Spec spec;
  spec.pk = {"id"};
  spec.cols = {{"id", "INT PRIMARY KEY", "{a} = {b}"},
               {"n", "INT", "{a} = {b}"},
               {"stamp", my() ? "DATETIME(6)" : "timestamp(6)", "{a} = {b}"}};
  spec.rows = {"(1, 1, '2001-01-01 00:00:00.000001')", "(2, 2, '2001-01-01 00:00:00.000002')"};
  create(t, spec);
  if (my()) {
    run("CREATE TRIGGER " + t + "_stamp BEFORE UPDATE ON " + t + " FOR EACH ROW SET NEW.stamp = NOW(6)");
  } else {
    cleanup_.push_back("DROP FUNCTION IF EXISTS " + t + "_stamp()");
    run("CREATE FUNCTION " + t + "_stamp() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.stamp := clock_timestamp(); RETURN NEW; END $$");
    run("CREATE TRIGGER " + t + "_stamp BEFORE UPDATE ON " + t + " FOR EACH ROW EXECUTE FUNCTION " + t + "_stamp()");
  }
  auto [s, x] = phase1("trigger", {"UPDATE " + t + " SET n = n + 1 WHERE id = 1"});
  const std::string after_phase1 = snapshot(t, "_s1");
  EXPECT_NE(text("SELECT CAST(stamp AS CHAR) FROM " + t + " WHERE id = 1"), "2001-01-01 00:00:00.000001");
  // Writing the before image back fires the trigger, which stamps the row
  // again: the rollback cannot be exact, so it commits nothing and says so
  // (it used to commit the row with a new stamp, silently).
  EXPECT_THROW(s->rollback(), Error);
  EXPECT_EQ(differences(t, after_phase1), std::vector<std::string>{});
  EXPECT_EQ(records(x), 1);
  EXPECT_EQ(locks(x), 1);
  SessionLease other = rm_->acquire();
  FinishResult r = other->rollback_prepared(x);
  EXPECT_EQ(r.outcome, FinishOutcome::conflicting_changes);
  ASSERT_TRUE(r.error);
  EXPECT_TRUE(contains(r.error->what(), "did not read back")) << r.error->what();
  // The operator keeps the rows as they are (dtx accept-current).
  EXPECT_EQ(other->commit_prepared(x).outcome, FinishOutcome::done);
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// ---------------------------------------------------------------- refusals

TEST_P(AtValuesTest, ChangingAPrimaryKeyIsRefusedBeforeAnythingRuns) {
  const std::string t = types_table();
  const std::string c = composite_table();
  const std::string before = snapshot(t, "_s0");
  const std::string before_c = snapshot(c, "_s0");
  SessionLease s = at_session();
  const Xid x = xid("pk");
  s->begin(x);
  const std::vector<std::string> refused = {
      "UPDATE " + t + " SET id = id + 100 WHERE id = 1",
      "UPDATE " + t + " AS x SET n = 0, " + (my() ? "x.id" : "id") + " = 1000 WHERE n = 20",
      "UPDATE " + c + " SET payload = 0, b = b + 10 WHERE b = 1",  // one column of a composite key
      my() ? "INSERT INTO " + t + " (id, n) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = id + 1000"
           : "INSERT INTO " + t + " (uk, n) VALUES ('k1', 0) ON CONFLICT (uk) DO UPDATE SET id = 1000",
  };
  for (const auto& sql : refused) expect_refused(*s, sql, "primary key");
  // Nothing ran, and the branch goes on.
  EXPECT_NO_THROW(s->execute("UPDATE " + t + " SET n = 1 WHERE id = 1", {}));
  s->prepare();
  s->rollback();
  EXPECT_EQ(differences(t, before), std::vector<std::string>{});
  EXPECT_EQ(differences(c, before_c), std::vector<std::string>{});
}

TEST_P(AtValuesTest, ATableWithoutPrimaryKeyIsRefusedBeforeAnythingRuns) {
  const std::string t = types_table();
  const std::string nopk = "ht_n" + id_;
  run("DROP TABLE IF EXISTS " + nopk);
  created_.push_back(nopk);
  run("CREATE TABLE " + nopk + " (a INT, b " + (my() ? "DOUBLE" : "double precision") + ", UNIQUE (a))");
  run("INSERT INTO " + nopk + " VALUES (1, 0.5), (2, NULL)");
  SessionLease s = at_session();
  const Xid x = xid("nopk");
  s->begin(x);
  for (const std::string& sql : {"UPDATE " + nopk + " SET b = 1 WHERE a = 1", "DELETE FROM " + nopk,
                                 "INSERT INTO " + nopk + " VALUES (3, 3)"})
    expect_refused(*s, sql, "primary key");
  EXPECT_EQ(text(my() ? "SELECT GROUP_CONCAT(CONCAT(a, ':', COALESCE(b, 'N')) ORDER BY a) FROM " + nopk
                      : "SELECT string_agg(a || ':' || coalesce(b::text, 'N'), ',' ORDER BY a) FROM " + nopk),
            "1:0.5,2:N");
  // The branch goes on.
  EXPECT_NO_THROW(s->execute("UPDATE " + t + " SET n = 1 WHERE id = 1", {}));
  EXPECT_NO_THROW(s->prepare());
  EXPECT_EQ(s->commit().outcome, FinishOutcome::done);
  EXPECT_EQ(scalar("SELECT n FROM " + t + " WHERE id = 1"), 1);
  EXPECT_EQ(records(x), 0);
}

}  // namespace
}  // namespace dtx
