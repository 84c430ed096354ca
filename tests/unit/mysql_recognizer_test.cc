// The MySQL/MariaDB dialect of the AT-mode recognizer: statements it reads
// (with every piece it hands back) and statements it refuses (with the
// construct named). Pure: no database.
#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "sql/recognizer.h"

namespace dtx::sql {
namespace {

// A recognized statement, field by field; what is not given is expected empty.
struct Read {
  std::string sql;
  Kind kind;
  TableRef table;
  std::size_t param_count = 0;
  std::vector<std::string> columns = {};
  std::vector<std::vector<Fragment>> rows = {};
  Upsert upsert = Upsert::none;
  std::vector<Assignment> assignments = {};
  Fragment where = {};
  Fragment order_by = {};
  Fragment limit = {};
};

// Shorthands.
TableRef T(std::string name, std::string alias = {}) {
  return TableRef{{}, std::move(name), false, false, std::move(alias)};
}
Fragment F(std::string text, std::vector<std::size_t> params = {}) {
  return Fragment{std::move(text), std::move(params)};
}
Assignment A(std::string column, Fragment value) { return Assignment{std::move(column), std::move(value)}; }

const std::vector<Read>& read_cases() {
  static const std::vector<Read> cases = {
      // ---- INSERT ----
      {.sql = "INSERT INTO t (a, b) VALUES (?, ?)",
       .kind = Kind::insert, .table = T("t"), .param_count = 2,
       .columns = {"a", "b"}, .rows = {{F("?", {0}), F("?", {1})}}},
      {.sql = "insert into t values (1, 'x', NULL)",
       .kind = Kind::insert, .table = T("t"),
       .rows = {{F("1"), F("'x'"), F("NULL")}}},
      {.sql = "INSERT t (a) VALUE (?)",
       .kind = Kind::insert, .table = T("t"), .param_count = 1,
       .columns = {"a"}, .rows = {{F("?", {0})}}},
      {.sql = "INSERT INTO t (id, v) VALUES (?, ?), (?, ?), (3, 'c')",
       .kind = Kind::insert, .table = T("t"), .param_count = 4, .columns = {"id", "v"},
       .rows = {{F("?", {0}), F("?", {1})}, {F("?", {2}), F("?", {3})}, {F("3"), F("'c'")}}},
      {.sql = "INSERT INTO bank1.account_info (id, balance) VALUES (?, ?)",
       .kind = Kind::insert, .table = TableRef{"bank1", "account_info", false, false, ""}, .param_count = 2,
       .columns = {"id", "balance"}, .rows = {{F("?", {0}), F("?", {1})}}},
      {.sql = "INSERT INTO `my db`.`Order` (`key`, `the``col`) VALUES (1, 2)",
       .kind = Kind::insert, .table = TableRef{"my db", "Order", true, true, ""},
       .columns = {"key", "the`col"}, .rows = {{F("1"), F("2")}}},
      {.sql = "INSERT INTO t (a, b) VALUES (CONCAT(?, '-', ?), NOW(6))",
       .kind = Kind::insert, .table = T("t"), .param_count = 2, .columns = {"a", "b"},
       .rows = {{F("CONCAT(?, '-', ?)", {0, 1}), F("NOW(6)")}}},
      {.sql = "INSERT INTO t (a, b) VALUES (?, DEFAULT)",
       .kind = Kind::insert, .table = T("t"), .param_count = 1, .columns = {"a", "b"},
       .rows = {{F("?", {0}), F("DEFAULT")}}},
      {.sql = "INSERT INTO t (id, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + ?",
       .kind = Kind::insert, .table = T("t"), .param_count = 3, .columns = {"id", "n"},
       .rows = {{F("?", {0}), F("?", {1})}}, .upsert = Upsert::on_duplicate_key_update,
       .assignments = {A("n", F("n + ?", {2}))}},
      {.sql = "INSERT INTO t (id, a, b) VALUES (1, 2, 3) ON DUPLICATE KEY UPDATE a = VALUES(a), t.b = b + 1",
       .kind = Kind::insert, .table = T("t"), .columns = {"id", "a", "b"},
       .rows = {{F("1"), F("2"), F("3")}}, .upsert = Upsert::on_duplicate_key_update,
       .assignments = {A("a", F("VALUES(a)")), A("b", F("b + 1"))}},
      {.sql = "INSERT INTO t SET a = ?, b = 'x'",
       .kind = Kind::insert, .table = T("t"), .param_count = 1, .columns = {"a", "b"},
       .rows = {{F("?", {0}), F("'x'")}}},
      {.sql = "INSERT LOW_PRIORITY INTO t (a) VALUES ('it''s ?'), ('a\\\\b')",
       .kind = Kind::insert, .table = T("t"), .columns = {"a"},
       .rows = {{F("'it''s ?'")}, {F("'a\\\\b'")}}},
      {.sql = "  /* lead */ INSERT INTO t (a) -- note\n VALUES (?) # tail\n ;",
       .kind = Kind::insert, .table = T("t"), .param_count = 1, .columns = {"a"},
       .rows = {{F("?", {0})}}},
      {.sql = "INSERT INTO t (t.a, test.t.b) VALUES (\"dq ? str\", ?);;",
       .kind = Kind::insert, .table = T("t"), .param_count = 1, .columns = {"a", "b"},
       .rows = {{F("\"dq ? str\""), F("?", {0})}}},
      {.sql = "INSERT INTO t (a) VALUES ((1 + 2) * ?)",
       .kind = Kind::insert, .table = T("t"), .param_count = 1, .columns = {"a"},
       .rows = {{F("(1 + 2) * ?", {0})}}},

      {.sql = "INSERT INTO t VALUES (1, 'a'), (2, 'b') ON DUPLICATE KEY UPDATE b = VALUES(b)",
       .kind = Kind::insert, .table = T("t"),
       .rows = {{F("1"), F("'a'")}, {F("2"), F("'b'")}}, .upsert = Upsert::on_duplicate_key_update,
       .assignments = {A("b", F("VALUES(b)"))}},

      // ---- UPDATE ----
      {.sql = "UPDATE t SET a = ? WHERE id = ?",
       .kind = Kind::update, .table = T("t"), .param_count = 2,
       .assignments = {A("a", F("?", {0}))}, .where = F("id = ?", {1})},
      {.sql = "update account_info set account_balance = account_balance - ? "
              "where account_no = ? and account_balance >= ?",
       .kind = Kind::update, .table = T("account_info"), .param_count = 3,
       .assignments = {A("account_balance", F("account_balance - ?", {0}))},
       .where = F("account_no = ? and account_balance >= ?", {1, 2})},
      {.sql = "UPDATE t SET a = 1, b = ?, c = c + 1",
       .kind = Kind::update, .table = T("t"), .param_count = 1,
       .assignments = {A("a", F("1")), A("b", F("?", {0})), A("c", F("c + 1"))}},
      {.sql = "UPDATE db.t AS x SET x.a = ? WHERE x.id IN (1, 2, ?) ORDER BY x.id DESC LIMIT 10",
       .kind = Kind::update, .table = TableRef{"db", "t", false, false, "x"}, .param_count = 2,
       .assignments = {A("a", F("?", {0}))}, .where = F("x.id IN (1, 2, ?)", {1}),
       .order_by = F("x.id DESC"), .limit = F("10")},
      {.sql = "UPDATE t x SET a = ? LIMIT ?",
       .kind = Kind::update, .table = T("t", "x"), .param_count = 2,
       .assignments = {A("a", F("?", {0}))}, .limit = F("?", {1})},
      {.sql = "UPDATE `db`.`T` SET `v` = ? WHERE `id` = ?",
       .kind = Kind::update, .table = TableRef{"db", "T", true, true, ""}, .param_count = 2,
       .assignments = {A("v", F("?", {0}))}, .where = F("`id` = ?", {1})},
      {.sql = "UPDATE t SET a := ?, b = (a + 1) * 2 WHERE (x = 1 OR y = ?) AND z <> 'WHERE'",
       .kind = Kind::update, .table = T("t"), .param_count = 2,
       .assignments = {A("a", F("?", {0})), A("b", F("(a + 1) * 2"))},
       .where = F("(x = 1 OR y = ?) AND z <> 'WHERE'", {1})},
      {.sql = "UPDATE LOW_PRIORITY t SET a = CASE WHEN a > ? THEN a ELSE ? END ORDER BY id, b DESC",
       .kind = Kind::update, .table = T("t"), .param_count = 2,
       .assignments = {A("a", F("CASE WHEN a > ? THEN a ELSE ? END", {0, 1}))},
       .order_by = F("id, b DESC")},
      {.sql = "UPDATE t SET d = DATE_ADD(d, INTERVAL ? DAY), s = SUBSTRING(s FROM 2 FOR 3) WHERE id = 7;",
       .kind = Kind::update, .table = T("t"), .param_count = 1,
       .assignments = {A("d", F("DATE_ADD(d, INTERVAL ? DAY)", {0})), A("s", F("SUBSTRING(s FROM 2 FOR 3)"))},
       .where = F("id = 7")},
      {.sql = "UPDATE t SET j = JSON_SET(j, '$.a', ?) WHERE j->>'$.k' = ? /* c */",
       .kind = Kind::update, .table = T("t"), .param_count = 2,
       .assignments = {A("j", F("JSON_SET(j, '$.a', ?)", {0}))}, .where = F("j->>'$.k' = ?", {1})},
      {.sql = "UPDATE db.t SET db.t.a = 0",
       .kind = Kind::update, .table = TableRef{"db", "t", false, false, ""},
       .assignments = {A("a", F("0"))}},

      {.sql = "UPDATE 账户 SET 余额 = 余额 - ? WHERE 编号 = ?",
       .kind = Kind::update, .table = T("账户"), .param_count = 2,
       .assignments = {A("余额", F("余额 - ?", {0}))}, .where = F("编号 = ?", {1})},
      {.sql = "UPDATE /*+ NO_RANGE_OPTIMIZATION(t) */ t SET a = 1 WHERE b = 2 # done",
       .kind = Kind::update, .table = T("t"),
       .assignments = {A("a", F("1"))}, .where = F("b = 2")},

      // ---- DELETE ----
      {.sql = "DELETE FROM t WHERE id = ?",
       .kind = Kind::delete_, .table = T("t"), .param_count = 1, .where = F("id = ?", {0})},
      {.sql = "DELETE FROM t",
       .kind = Kind::delete_, .table = T("t")},
      {.sql = "delete from db.t where a between ? and ? order by id limit 5",
       .kind = Kind::delete_, .table = TableRef{"db", "t", false, false, ""}, .param_count = 2,
       .where = F("a between ? and ?", {0, 1}), .order_by = F("id"), .limit = F("5")},
      {.sql = "DELETE LOW_PRIORITY QUICK FROM `t` AS `x` WHERE x.id = ? LIMIT ?",
       .kind = Kind::delete_, .table = TableRef{"", "t", false, true, "x"}, .param_count = 2,
       .where = F("x.id = ?", {0}), .limit = F("?", {1})},
      {.sql = "DELETE FROM t WHERE name LIKE 'a#b' AND note = '-- no comment' AND k IS NOT NULL",
       .kind = Kind::delete_, .table = T("t"),
       .where = F("name LIKE 'a#b' AND note = '-- no comment' AND k IS NOT NULL")},
      {.sql = "DELETE FROM t WHERE returning = ? AND `order` = 'ORDER BY x LIMIT 1'",
       .kind = Kind::delete_, .table = T("t"), .param_count = 1,
       .where = F("returning = ? AND `order` = 'ORDER BY x LIMIT 1'", {0})},
      {.sql = "UPDATE `t` SET `select` = ? WHERE `where` = ?",
       .kind = Kind::update, .table = TableRef{"", "t", false, true, ""}, .param_count = 2,
       .assignments = {A("select", F("?", {0}))}, .where = F("`where` = ?", {1})},
      {.sql = "UPDATE t SET a = ? WHERE b = X'0F' AND c = _utf8mb4'x' AND d = @v AND e = N'?'",
       .kind = Kind::update, .table = T("t"), .param_count = 1,
       .assignments = {A("a", F("?", {0}))},
       .where = F("b = X'0F' AND c = _utf8mb4'x' AND d = @v AND e = N'?'")},
      {.sql = "DELETE FROM t WHERE a IS NOT NULL AND b > .5 AND c = -1.25e3 AND d = 'x' 'y' AND e = b'01' "
              "AND f < NOW() - INTERVAL ? DAY AND NOT (g <=> NULL) AND db.t.h = @@session.x "
              "AND `f`(1) = 2",
       .kind = Kind::delete_, .table = T("t"), .param_count = 1,
       .where = F("a IS NOT NULL AND b > .5 AND c = -1.25e3 AND d = 'x' 'y' AND e = b'01' "
                  "AND f < NOW() - INTERVAL ? DAY AND NOT (g <=> NULL) AND db.t.h = @@session.x "
                  "AND `f`(1) = 2",
                  {0})},
      {.sql = "DELETE FROM t WHERE id IN (?, ?, ?)",
       .kind = Kind::delete_, .table = T("t"), .param_count = 3, .where = F("id IN (?, ?, ?)", {0, 1, 2})},

      // ---- SELECT ... FOR UPDATE ----
      {.sql = "SELECT * FROM t WHERE id = ? FOR UPDATE",
       .kind = Kind::select_for_update, .table = T("t"), .param_count = 1, .where = F("id = ?", {0})},
      {.sql = "select a, b from bank1.account_info ai where ai.account_no = ? for update",
       .kind = Kind::select_for_update, .table = TableRef{"bank1", "account_info", false, false, "ai"},
       .param_count = 1, .where = F("ai.account_no = ?", {0})},
      {.sql = "SELECT id FROM t WHERE a > ? ORDER BY a LIMIT ?, 10 FOR UPDATE",
       .kind = Kind::select_for_update, .table = T("t"), .param_count = 2,
       .where = F("a > ?", {0}), .order_by = F("a"), .limit = F("?, 10", {1})},
      {.sql = "SELECT id, balance FROM `bank1`.`account_info` WHERE id IN (?, ?) ORDER BY id FOR UPDATE",
       .kind = Kind::select_for_update, .table = TableRef{"bank1", "account_info", true, true, ""},
       .param_count = 2, .where = F("id IN (?, ?)", {0, 1}), .order_by = F("id")},
      {.sql = "SELECT * FROM t AS x FORCE INDEX (PRIMARY), IGNORE KEY FOR ORDER BY (`k1`, k2) USE INDEX () "
              "WHERE x.id = ? FOR UPDATE",
       .kind = Kind::select_for_update, .table = T("t", "x"), .param_count = 1, .where = F("x.id = ?", {0})},
      {.sql = "UPDATE t USE INDEX FOR JOIN (i) SET a = ?",
       .kind = Kind::update, .table = T("t"), .param_count = 1, .assignments = {A("a", F("?", {0}))}},
      {.sql = "SELECT COUNT(*), EXTRACT(YEAR FROM d) FROM t FOR UPDATE",
       .kind = Kind::select_for_update, .table = T("t")},

      // ---- plain SELECT: passes through ----
      {.sql = "SELECT 1", .kind = Kind::select, .table = TableRef{}},
      {.sql = "SELECT a FROM t JOIN u ON t.id = u.id WHERE t.x = ?", .kind = Kind::select,
       .table = TableRef{},
       .param_count = 1},
      {.sql = "SELECT * FROM t WHERE id IN (SELECT id FROM u) LOCK IN SHARE MODE", .kind = Kind::select,
       .table = TableRef{}},
      {.sql = "SELECT * FROM t WHERE id = ? FOR SHARE", .kind = Kind::select, .table = TableRef{},
       .param_count = 1},
      {.sql = "SELECT 'FOR UPDATE', `for` FROM t UNION SELECT ?, b FROM u", .kind = Kind::select,
       .table = TableRef{}, .param_count = 1},
  };
  return cases;
}

TEST(MysqlRecognizer, ReadsTheSupportedStatements) {
  for (const Read& c : read_cases()) {
    SCOPED_TRACE(c.sql);
    const Recognized r = recognize_mysql(c.sql);
    ASSERT_TRUE(std::holds_alternative<Statement>(r)) << std::get<Refusal>(r).what;
    const Statement& s = std::get<Statement>(r);
    EXPECT_EQ(s.kind, c.kind);
    EXPECT_EQ(s.table, c.table);
    EXPECT_EQ(s.param_count, c.param_count);
    EXPECT_EQ(s.columns, c.columns);
    EXPECT_EQ(s.rows, c.rows);
    EXPECT_EQ(s.upsert, c.upsert);
    EXPECT_EQ(s.assignments, c.assignments);
    EXPECT_EQ(s.where, c.where);
    EXPECT_EQ(s.order_by, c.order_by);
    EXPECT_EQ(s.limit, c.limit);
    EXPECT_TRUE(s.conflict_target.empty());
    EXPECT_FALSE(s.returning);
  }
}

// Every fragment is the statement's own text, so a before-image query can
// reuse it with the same parameters.
TEST(MysqlRecognizer, FragmentsAreTheStatementsOwnText) {
  for (const Read& c : read_cases()) {
    SCOPED_TRACE(c.sql);
    const Recognized r = recognize_mysql(c.sql);
    ASSERT_TRUE(std::holds_alternative<Statement>(r));
    const Statement& s = std::get<Statement>(r);
    for (const Fragment* f : {&s.where, &s.order_by, &s.limit})
      EXPECT_NE(c.sql.find(f->text), std::string::npos) << f->text;
    for (const auto& row : s.rows)
      for (const Fragment& f : row) EXPECT_NE(c.sql.find(f.text), std::string::npos) << f.text;
    for (const Assignment& a : s.assignments) EXPECT_NE(c.sql.find(a.value.text), std::string::npos);
  }
}

struct Refused {
  std::string sql;
  std::string what;  // a part of the refusal's `what`
};

const std::vector<Refused>& refused_cases() {
  static const std::vector<Refused> cases = {
      {"", "an empty statement"},
      {"  -- only a comment\n ; ", "an empty statement"},
      {"INSERT INTO t SELECT * FROM u", "INSERT ... SELECT"},
      {"INSERT INTO t (a, b) SELECT a, b FROM u WHERE x = ?", "INSERT ... SELECT"},
      {"INSERT INTO t (SELECT * FROM u)", "INSERT ... SELECT"},
      {"INSERT INTO t (a) VALUES ((SELECT MAX(a) FROM u))", "a subquery in INSERT"},
      {"INSERT IGNORE INTO t (a) VALUES (1)", "INSERT IGNORE"},
      {"INSERT INTO t (a) VALUES (?) AS new ON DUPLICATE KEY UPDATE a = new.a", "a row alias"},
      {"INSERT INTO t (a) VALUES (1) RETURNING id", "INSERT ... RETURNING"},
      {"INSERT INTO t () VALUES ()", "an empty column list"},
      {"INSERT INTO t VALUES ()", "without values"},
      {"INSERT INTO t (a, b) VALUES (1)", "cannot read"},
      {"REPLACE INTO t (a) VALUES (1)", "REPLACE"},
      {"UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id", "a multi-table UPDATE"},
      {"UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = 1", "a multi-table UPDATE (JOIN)"},
      {"UPDATE t SET a = (SELECT MAX(b) FROM u)", "a subquery in UPDATE"},
      {"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u)", "a subquery in UPDATE"},
      {"UPDATE t SET a = 1 WHERE EXISTS (TABLE u)", "a subquery in UPDATE"},
      {"UPDATE t SET a = @x := @x + 1", "a variable assignment (:=)"},
      {"UPDATE IGNORE t SET a = 1", "UPDATE IGNORE"},
      {"UPDATE t SET u.a = 1", "a column of another table (u.a)"},
      {"UPDATE t FORCE INDEX (i SET a = 1", "cannot read"},
      {"UPDATE t USE INDEX FOR UPDATE (i) SET a = 1", "an index hint FOR"},
      {"UPDATE t PARTITION (p0) SET a = 1", "PARTITION selection"},
      {"UPDATE t SET a = 1 LIMIT 1, 2", "no offset"},
      {"DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", "a multi-table DELETE"},
      {"DELETE FROM t1, t2 USING t1 JOIN t2", "a multi-table DELETE"},
      {"DELETE FROM t1.* USING t1, t2 WHERE t1.id = t2.id", "a multi-table DELETE"},
      {"DELETE FROM t USING t JOIN u", "a multi-table DELETE (USING)"},
      {"DELETE FROM t WHERE id = (SELECT MIN(id) FROM u)", "a subquery in DELETE"},
      {"DELETE FROM t WHERE id = ? RETURNING id", "DELETE ... RETURNING"},
      {"DELETE FROM (SELECT 1) x", "a derived table"},
      {"TRUNCATE TABLE t", "TRUNCATE"},
      {"CREATE TABLE t (id INT PRIMARY KEY)", "DDL (CREATE)"},
      {"ALTER TABLE t ADD COLUMN c INT", "DDL (ALTER)"},
      {"DROP TABLE t", "DDL (DROP)"},
      {"RENAME TABLE t TO u", "DDL (RENAME)"},
      {"LOAD DATA INFILE '/tmp/x' INTO TABLE t", "LOAD DATA"},
      {"CALL transfer(?, ?)", "CALL"},
      {"COMMIT", "transaction control (COMMIT)"},
      {"WITH c AS (SELECT 1) UPDATE t SET a = 1", "WITH"},
      {"UPDATE t SET a = 1; DELETE FROM t", "several statements in one string"},
      {"SELECT 1; SELECT 2", "several statements in one string"},
      {"UPDATE t SET a = 1 /*!, b = 2 */", "an executable comment"},
      {"/*M! DELETE FROM t */ SELECT 1", "an executable comment"},
      {"UPDATE t SET a = 'x\\' WHERE 1 = 1; DELETE FROM u; -- '", "NO_BACKSLASH_ESCAPES"},
      {"UPDATE t SET a = 'unterminated", "an unterminated string"},
      {"UPDATE t SET a = 1 /* open", "an unterminated comment"},
      {"UPDATE \"t\" SET a = 1", "a double-quoted identifier"},
      {"UPDATE t SET a = (1 + 2 WHERE id = 1", "unbalanced parentheses"},
      {"UPDATE t WHERE id = 1", "cannot read"},
      {"UPDATE t SET a = 1 WHERE id = 1 FOR UPDATE", "unexpected FOR"},
      {"DELETE FROM t WHERE id = 1 LOCK IN SHARE MODE", "unexpected LOCK"},
      {"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2 WHERE a = 1", "unexpected WHERE"},
      {"UPDATE t SET a = 1 ORDER BY", "an empty expression"},
      {"DELETE FROM t WHERE a = 1, b = 2", "a ',' in the condition"},
      {"DELETE FROM t WHERE a = ? ?", "'?' followed by '?'"},
      {"UPDATE t SET a = (1) (2)", "')' followed by '('"},
      {"DELETE FROM t WHERE = 1", "starts with '='"},
      {"DELETE FROM t WHERE a. = 1", "a '.' that does not join two names"},
      {"UPDATE t SET a = ? WHERE id =", "ends with '='"},
      {"DELETE FROM by", "expected a table name"},
      {"UPDATE t SET key = 1", "expected a column name"},
      {"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 1 DELETE FROM t", "unexpected DELETE"},
      {"INSERT INTO t (a) VALUES ROW(1)", "VALUES ROW"},
      {"DELETE HISTORY FROM t", "DELETE HISTORY"},
      {"UPDATE t FOR PORTION OF p FROM '2020-01-01' TO '2021-01-01' SET a = 1", "FOR PORTION OF"},
      {"SELECT * FROM t WHERE id = 1 FOR UPDATE OF t", "FOR UPDATE OF"},
      {"SELECT * FROM t WHERE id = 1 FOR UPDATE WAIT 5", "FOR UPDATE WAIT"},
      {"SELECT * FROM (SELECT * FROM t) d FOR UPDATE", "a derived table"},
      {"INSERT INTO t VALUES (1), (1, 2)", "cannot read"},
      {"UPDATE t SET a = `unterminated", "an unterminated quoted identifier"},
      {"SELECT a INTO @x FROM t WHERE id = 1", "SELECT ... INTO"},
      {"SELECT * FROM t WHERE id = 1 FOR UPDATE INTO @x", "SELECT ... INTO"},
      {"SELECT * FROM t JOIN u ON t.id = u.id FOR UPDATE", "a multi-table SELECT ... FOR UPDATE (JOIN)"},
      {"SELECT * FROM t, u FOR UPDATE", "a multi-table SELECT ... FOR UPDATE"},
      {"SELECT * FROM t WHERE id IN (SELECT id FROM u) FOR UPDATE", "a subquery in SELECT ... FOR UPDATE"},
      {"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)", "FOR UPDATE inside a subquery"},
      {"SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT", "FOR UPDATE NOWAIT"},
      {"SELECT * FROM t FOR UPDATE SKIP LOCKED", "FOR UPDATE SKIP LOCKED"},
      {"SELECT a, COUNT(*) FROM t GROUP BY a FOR UPDATE", "GROUP BY"},
      {"SELECT 1 FOR UPDATE", "without a table"},
      {"SELECT a FROM t UNION SELECT a FROM u FOR UPDATE", "UNION"},
      {"(SELECT 1)", "a statement in parentheses"},
      {"SET @x = 1", "the SET statement"},
      {"42", "cannot read"},
  };
  return cases;
}

TEST(MysqlRecognizer, RefusesWhatItDoesNotSupportNamingTheConstruct) {
  for (const Refused& c : refused_cases()) {
    SCOPED_TRACE(c.sql);
    const Recognized r = recognize_mysql(c.sql);
    ASSERT_TRUE(std::holds_alternative<Refusal>(r)) << "recognized";
    const Refusal& refusal = std::get<Refusal>(r);
    EXPECT_NE(refusal.what.find(c.what), std::string::npos) << refusal.what;
    EXPECT_NE(refusal.to_message().find("mode = \"xa\""), std::string::npos);
  }
}

TEST(MysqlRecognizer, HasEnoughStatements) {
  std::size_t recognized = 0;
  for (const Read& c : read_cases()) recognized += c.kind == Kind::select ? 0 : 1;
  EXPECT_GE(recognized, 35u);
  EXPECT_GE(refused_cases().size(), 25u);
  EXPECT_GE(read_cases().size() + refused_cases().size(), 60u);
}

// Never throws, whatever it is given: every prefix of every statement above
// is either read or refused (most are refused: cut mid-string, mid-clause).
TEST(MysqlRecognizer, EveryPrefixIsReadOrRefusedWithoutThrowing) {
  std::vector<std::string> all;
  for (const Read& c : read_cases()) all.push_back(c.sql);
  for (const Refused& c : refused_cases()) all.push_back(c.sql);
  for (const std::string& sql : all)
    for (std::size_t n = 0; n <= sql.size(); ++n) {
      SCOPED_TRACE(sql.substr(0, n));
      Recognized r;
      ASSERT_NO_THROW(r = recognize_mysql(std::string_view(sql).substr(0, n)));
      if (const auto* refusal = std::get_if<Refusal>(&r)) {
        EXPECT_FALSE(refusal->what.empty());
      }
    }
}

// Nor for statements made of random pieces (a fixed seed: the same every run).
TEST(MysqlRecognizer, RandomPiecesAreReadOrRefusedWithoutThrowing) {
  static const char* const pieces[] = {
      "INSERT", "INTO", "UPDATE", "DELETE", "FROM", "SELECT", "SET", "WHERE", "VALUES", "ON", "DUPLICATE",
      "KEY", "ORDER", "BY", "LIMIT", "FOR", "AS", "t", "db", "a", "`q`", "`x``y`", "'s'", "'\\'", "\"d\"",
      "?", "1", "(", ")", ",", ".", "=", ":=", ";", "*", "+", "/* c */", "-- c\n", "#c\n", "/*!", "'", "`",
      "\\", " ", "JOIN", "USING", "IGNORE", "RETURNING", "LOCK", "IN", "SHARE", "MODE", "@", "->>"};
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int i = 0; i < 5000; ++i) {
    std::string sql;
    const std::uint32_t n = next() % 16;
    for (std::uint32_t k = 0; k < n; ++k) sql += std::string(pieces[next() % std::size(pieces)]) + " ";
    SCOPED_TRACE(sql);
    Recognized r;
    ASSERT_NO_THROW(r = recognize_mysql(sql));
    if (const auto* refusal = std::get_if<Refusal>(&r)) {
      EXPECT_FALSE(refusal->what.empty());
    }
  }
}

// Parameters are numbered across the whole statement, whichever clause holds them.
TEST(MysqlRecognizer, ParameterIndexesRunThroughTheWholeStatement) {
  const Recognized r = recognize_mysql(
      "UPDATE t SET a = ?, b = '?' WHERE c = ? /* ? */ AND `?` = ? ORDER BY FIELD(d, ?) LIMIT ?");
  ASSERT_TRUE(std::holds_alternative<Statement>(r));
  const Statement& s = std::get<Statement>(r);
  EXPECT_EQ(s.param_count, 5u);
  EXPECT_EQ(s.assignments[0].value.params, (std::vector<std::size_t>{0}));
  EXPECT_TRUE(s.assignments[1].value.params.empty());
  EXPECT_EQ(s.where, F("c = ? /* ? */ AND `?` = ?", {1, 2}));
  EXPECT_EQ(s.order_by, F("FIELD(d, ?)", {3}));
  EXPECT_EQ(s.limit, F("?", {4}));
}

TEST(MysqlRecognizer, ARefusalSaysWhatAndThatXaRunsIt) {
  const Recognized r = recognize_mysql("REPLACE INTO t VALUES (1)");
  ASSERT_TRUE(std::holds_alternative<Refusal>(r));
  EXPECT_EQ(std::get<Refusal>(r).to_message(),
            "REPLACE is not supported in AT mode; set mode = \"xa\" on this resource to run it");
}

// Through the dialect-neutral entry point too.
TEST(MysqlRecognizer, RecognizeDispatchesToTheMysqlDialect) {
  const Recognized r = recognize("DELETE FROM t WHERE id = ?", Dialect::mysql);
  ASSERT_TRUE(std::holds_alternative<Statement>(r));
  EXPECT_EQ(std::get<Statement>(r).kind, Kind::delete_);
}

}  // namespace
}  // namespace dtx::sql
