// The PostgreSQL dialect of the AT-mode recognizer (sql/postgres_recognizer.cc):
// a table of statements it recognizes, with everything it hands back, and a
// table of statements it refuses, with the construct the refusal names. Pure.
#include <gtest/gtest.h>

#include <initializer_list>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "sql/recognizer.h"

namespace {

using namespace dtx::sql;

Fragment F(std::string text, std::vector<std::size_t> params = {}) { return {std::move(text), std::move(params)}; }

std::string show(const Fragment& f) {
  std::string out = "[" + f.text + "]{";
  for (std::size_t p : f.params) out += std::to_string(p) + ",";
  return out + "}";
}

struct Recognizes {
  const char* sql;
  Statement want;
};

std::ostream& operator<<(std::ostream& os, const Recognizes& r) { return os << r.sql; }

TableRef T(std::string name, std::string alias = {}) {
  TableRef t;
  t.name = std::move(name);
  t.alias = std::move(alias);
  return t;
}

TableRef ST(std::string schema, bool schema_quoted, std::string name, bool name_quoted, std::string alias = {}) {
  return {std::move(schema), std::move(name), schema_quoted, name_quoted, std::move(alias)};
}

// Statement builders: only the fields a statement kind uses.
Statement insert(TableRef t, std::size_t params, std::vector<std::string> columns,
                 std::vector<std::vector<Fragment>> rows) {
  Statement s;
  s.kind = Kind::insert;
  s.table = std::move(t);
  s.param_count = params;
  s.columns = std::move(columns);
  s.rows = std::move(rows);
  return s;
}

Statement upsert(Statement s, Upsert u, std::vector<std::string> target, std::vector<Assignment> set = {},
                 Fragment where = {}, std::string constraint = {}) {
  s.upsert = u;
  s.conflict_target = std::move(target);
  s.assignments = std::move(set);
  s.where = std::move(where);
  s.conflict_constraint = std::move(constraint);
  return s;
}

Statement update(TableRef t, std::size_t params, std::vector<Assignment> set, Fragment where = {}) {
  Statement s;
  s.kind = Kind::update;
  s.table = std::move(t);
  s.param_count = params;
  s.assignments = std::move(set);
  s.where = std::move(where);
  return s;
}

Statement delete_(TableRef t, std::size_t params, Fragment where = {}) {
  Statement s;
  s.kind = Kind::delete_;
  s.table = std::move(t);
  s.param_count = params;
  s.where = std::move(where);
  return s;
}

Statement for_update(TableRef t, std::size_t params, Fragment where = {}) {
  Statement s;
  s.kind = Kind::select_for_update;
  s.table = std::move(t);
  s.param_count = params;
  s.where = std::move(where);
  return s;
}

Statement select(std::size_t params = 0) {
  Statement s;
  s.param_count = params;
  return s;
}

Statement returning(Statement s) {
  s.returning = true;
  return s;
}

const Recognizes kRecognized[] = {
    // INSERT
    {"INSERT INTO t (a, b) VALUES (?, ?)", insert(T("t"), 2, {"a", "b"}, {{F("?", {0}), F("?", {1})}})},
    {"INSERT INTO t VALUES (1, 'x')", insert(T("t"), 0, {}, {{F("1"), F("'x'")}})},
    {"insert into t(a,b) values(?,?),(?,?),(3,?)",
     insert(T("t"), 5, {"a", "b"},
            {{F("?", {0}), F("?", {1})}, {F("?", {2}), F("?", {3})}, {F("3"), F("?", {4})}})},
    {"INSERT INTO public.accounts (id, owner) VALUES (?, 'Zhang ?')",
     insert(ST("public", false, "accounts", false), 1, {"id", "owner"}, {{F("?", {0}), F("'Zhang ?'")}})},
    {"INSERT INTO \"Sales\".\"Order\" (\"Id\", Qty) VALUES (?, ?)",
     insert(ST("Sales", true, "Order", true), 2, {"Id", "qty"}, {{F("?", {0}), F("?", {1})}})},
    {"INSERT INTO \"we\"\"ird\" (a) VALUES (?)", insert(ST("", false, "we\"ird", true), 1, {"a"}, {{F("?", {0})}})},
    {"INSERT INTO Orders AS o (a) VALUES (?)", insert(T("Orders", "o"), 1, {"a"}, {{F("?", {0})}})},
    {"INSERT INTO t (a, b, c) VALUES (? + 1, lower(?), (2 * (? - 1)))",
     insert(T("t"), 3, {"a", "b", "c"}, {{F("? + 1", {0}), F("lower(?)", {1}), F("(2 * (? - 1))", {2})}})},
    {"INSERT INTO t (a, b) VALUES (DEFAULT, now())", insert(T("t"), 0, {"a", "b"}, {{F("DEFAULT"), F("now()")}})},
    {"INSERT INTO t (a, b) VALUES (?::int, ARRAY[?, 2])",
     insert(T("t"), 2, {"a", "b"}, {{F("?::int", {0}), F("ARRAY[?, 2]", {1})}})},
    {"INSERT INTO t (a, b) VALUES ($$it's ?$$, E'\\'?')",
     insert(T("t"), 0, {"a", "b"}, {{F("$$it's ?$$"), F("E'\\'?'")}})},
    {"INSERT INTO t (a, b) VALUES (? /* why? */ , ? /* kept? */ + 1 ) -- done?\n;",
     insert(T("t"), 2, {"a", "b"}, {{F("?", {0}), F("? /* kept? */ + 1", {1})}})},
    {"INSERT INTO t (a) VALUES (CASE WHEN ? > 0 THEN 'p' ELSE 'n' END)",
     insert(T("t"), 1, {"a"}, {{F("CASE WHEN ? > 0 THEN 'p' ELSE 'n' END", {0})}})},
    {"INSERT INTO t (a) VALUES (?) RETURNING id",
     returning(insert(T("t"), 1, {"a"}, {{F("?", {0})}}))},
    {"INSERT INTO t (id, n) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
     upsert(insert(T("t"), 2, {"id", "n"}, {{F("?", {0}), F("?", {1})}}), Upsert::on_conflict_do_nothing, {"id"})},
    {"INSERT INTO t (id) VALUES (?) ON CONFLICT DO NOTHING",
     upsert(insert(T("t"), 1, {"id"}, {{F("?", {0})}}), Upsert::on_conflict_do_nothing, {})},
    {"INSERT INTO t (a, b, n) VALUES (?, ?, 1) ON CONFLICT (a, \"B\") DO UPDATE SET n = t.n + excluded.n",
     upsert(insert(T("t"), 2, {"a", "b", "n"}, {{F("?", {0}), F("?", {1}), F("1")}}),
            Upsert::on_conflict_do_update, {"a", "B"}, {{"n", F("t.n + excluded.n")}})},
    {"INSERT INTO t AS x (id, n) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET n = ?, m = x.m || ? "
     "WHERE x.n IS DISTINCT FROM ? RETURNING *",
     returning(upsert(insert(T("t", "x"), 5, {"id", "n"}, {{F("?", {0}), F("?", {1})}}),
                      Upsert::on_conflict_do_update, {"id"}, {{"n", F("?", {2})}, {"m", F("x.m || ?", {3})}},
                      F("x.n IS DISTINCT FROM ?", {4})))},
    {"INSERT INTO t (id) VALUES (?) ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET id = excluded.id + 1000",
     upsert(insert(T("t"), 1, {"id"}, {{F("?", {0})}}), Upsert::on_conflict_do_update, {},
            {{"id", F("excluded.id + 1000")}}, {}, "t_pkey")},
    {"INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET (a, b) = (?, ? * 2)",
     upsert(insert(T("t"), 4, {"a", "b"}, {{F("?", {0}), F("?", {1})}}), Upsert::on_conflict_do_update, {"a"},
            {{"a", F("?", {2})}, {"b", F("? * 2", {3})}})},
    {"INSERT INTO t (a) OVERRIDING SYSTEM VALUE VALUES (?)", insert(T("t"), 1, {"a"}, {{F("?", {0})}})},
    {"INSERT INTO t (a, values) VALUES (?, ?)", insert(T("t"), 2, {"a", "values"}, {{F("?", {0}), F("?", {1})}})},
    {"INSERT INTO t (VALUES (?, 'v'))", insert(T("t"), 1, {}, {{F("?", {0}), F("'v'")}})},
    {"INSERT INTO U&\"d\\0061t\" (a) VALUES (?)", insert(ST("", false, "dat", true), 1, {"a"}, {{F("?", {0})}})},
    {"INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
     insert(T("t"), 12, {},
            {{F("?", {0}), F("?", {1}), F("?", {2}), F("?", {3}), F("?", {4}), F("?", {5}), F("?", {6}), F("?", {7}),
              F("?", {8}), F("?", {9}), F("?", {10}), F("?", {11})}})},
    {"INSERT INTO Abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_XYZ VALUES (1)",
     insert(T("Abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefgh"), 0, {}, {{F("1")}})},
    // UPDATE
    {"UPDATE t SET a = ? WHERE id = ?", update(T("t"), 2, {{"a", F("?", {0})}}, F("id = ?", {1}))},
    {"UPDATE t SET a = 1", update(T("t"), 0, {{"a", F("1")}})},
    {"update ACCOUNT_INFO set account_balance = account_balance - ? where account_no = ? and account_balance >= ?",
     update(T("ACCOUNT_INFO"), 3, {{"account_balance", F("account_balance - ?", {0})}},
            F("account_no = ? and account_balance >= ?", {1, 2}))},
    {"UPDATE bank2.account_info AS a SET balance=-1,\"Note\"='x' WHERE a.id=?",
     update(ST("bank2", false, "account_info", false, "a"), 1, {{"balance", F("-1")}, {"Note", F("'x'")}},
            F("a.id=?", {0}))},
    {"UPDATE t SET a = ?, b = ? WHERE (id = ? OR id = ?) AND c BETWEEN ? AND ? RETURNING a, b",
     returning(update(T("t"), 6, {{"a", F("?", {0})}, {"b", F("?", {1})}},
                      F("(id = ? OR id = ?) AND c BETWEEN ? AND ?", {2, 3, 4, 5})))},
    {"UPDATE t SET a = a IS DISTINCT FROM ?, b = DEFAULT WHERE id IN (?, ?, ?)",
     update(T("t"), 4, {{"a", F("a IS DISTINCT FROM ?", {0})}, {"b", F("DEFAULT")}}, F("id IN (?, ?, ?)", {1, 2, 3}))},
    {"UPDATE t SET (a, b) = (?, ?), c = 3 WHERE id = ?",
     update(T("t"), 3, {{"a", F("?", {0})}, {"b", F("?", {1})}, {"c", F("3")}}, F("id = ?", {2}))},
    {"UPDATE t SET (a, b) = ROW(1, ?) WHERE id = ?",
     update(T("t"), 2, {{"a", F("1")}, {"b", F("?", {0})}}, F("id = ?", {1}))},
    {"UPDATE t SET doc = doc || jsonb_build_object('k', ?) WHERE doc @> '{\"a\": 1}' AND tags && ARRAY['x?']",
     update(T("t"), 1, {{"doc", F("doc || jsonb_build_object('k', ?)", {0})}},
            F("doc @> '{\"a\": 1}' AND tags && ARRAY['x?']"))},
    {"UPDATE t SET a = ?, b = ?, c = ?, d = ?, e = ?, f = ?, g = ?, h = ?, i = ?, j = ? WHERE k = ? OR l = ?",
     update(T("t"), 12,
            {{"a", F("?", {0})}, {"b", F("?", {1})}, {"c", F("?", {2})}, {"d", F("?", {3})}, {"e", F("?", {4})},
             {"f", F("?", {5})}, {"g", F("?", {6})}, {"h", F("?", {7})}, {"i", F("?", {8})}, {"j", F("?", {9})}},
            F("k = ? OR l = ?", {10, 11}))},
    {"UPDATE t SET a=-?, b=+1 WHERE c<>-? AND d>=?",
     update(T("t"), 3, {{"a", F("-?", {0})}, {"b", F("+1")}}, F("c<>-? AND d>=?", {1, 2}))},
    {"UPDATE t SET a = ? WHERE t.where = ?  -- trailing?\n ;",
     update(T("t"), 2, {{"a", F("?", {0})}}, F("t.where = ?", {1}))},
    {"UPDATE t SET ts = now() AT TIME ZONE 'UTC', n = extract(year FROM ?::date) WHERE id = ?",
     update(T("t"), 2, {{"ts", F("now() AT TIME ZONE 'UTC'")}, {"n", F("extract(year FROM ?::date)", {0})}},
            F("id = ?", {1}))},
    // DELETE
    {"DELETE FROM t WHERE id = ?", delete_(T("t"), 1, F("id = ?", {0}))},
    {"DELETE FROM t", delete_(T("t"), 0)},
    {"DELETE FROM s.\"T\" x WHERE x.a <> ? AND x.b LIKE 'a%?' RETURNING x.id",
     returning(delete_(ST("s", false, "T", true, "x"), 1, F("x.a <> ? AND x.b LIKE 'a%?'", {0})))},
    {"/* lead */ DELETE FROM t WHERE id = ANY(?::int[]);", delete_(T("t"), 1, F("id = ANY(?::int[])", {0}))},
    // SELECT ... FOR UPDATE
    {"SELECT * FROM t WHERE id = ? FOR UPDATE", for_update(T("t"), 1, F("id = ?", {0}))},
    {"SELECT a, b FROM s.t AS x WHERE x.a > ? ORDER BY a LIMIT ? FOR UPDATE NOWAIT",
     for_update(ST("s", false, "t", false, "x"), 2, F("x.a > ?", {0}))},
    {"SELECT id FROM t FOR NO KEY UPDATE", for_update(T("t"), 0)},
    {"SELECT id FROM \"T\" WHERE id = ? FOR SHARE SKIP LOCKED",
     for_update(ST("", false, "T", true), 1, F("id = ?", {0}))},
    {"(SELECT * FROM t WHERE id = ? FOR UPDATE)", for_update(T("t"), 1, F("id = ?", {0}))},
    {"SELECT * FROM t WHERE a @@ ? AND b ~ 'x?' FOR UPDATE OF t", for_update(T("t"), 1, F("a @@ ? AND b ~ 'x?'", {0}))},
    // plain reads pass through
    {"SELECT * FROM t WHERE id = ?", select(1)},
    {"SELECT a.x, b.y FROM a JOIN b ON a.id = b.id WHERE a.z IN (SELECT z FROM c WHERE w = ?)", select(1)},
    {"WITH r AS (SELECT 1) SELECT * FROM r", select()},
    {"VALUES (1, 2)", select()},
    {"SHOW search_path", select()},
    {"EXPLAIN SELECT * FROM t", select()},
};

class PostgresRecognizes : public testing::TestWithParam<Recognizes> {};

TEST_P(PostgresRecognizes, Statement) {
  const Recognizes& c = GetParam();
  const Recognized got = recognize_postgres(c.sql);
  ASSERT_TRUE(std::holds_alternative<Statement>(got)) << std::get<Refusal>(got).what;
  const Statement& s = std::get<Statement>(got);
  const Statement& w = c.want;
  EXPECT_EQ(static_cast<int>(s.kind), static_cast<int>(w.kind));
  EXPECT_EQ(s.table.schema, w.table.schema);
  EXPECT_EQ(s.table.schema_quoted, w.table.schema_quoted);
  EXPECT_EQ(s.table.name, w.table.name);
  EXPECT_EQ(s.table.name_quoted, w.table.name_quoted);
  EXPECT_EQ(s.table.alias, w.table.alias);
  EXPECT_EQ(s.param_count, w.param_count);
  EXPECT_EQ(s.columns, w.columns);
  ASSERT_EQ(s.rows.size(), w.rows.size());
  for (std::size_t r = 0; r < s.rows.size(); ++r) {
    ASSERT_EQ(s.rows[r].size(), w.rows[r].size()) << "row " << r;
    for (std::size_t k = 0; k < s.rows[r].size(); ++k) {
      EXPECT_EQ(show(s.rows[r][k]), show(w.rows[r][k])) << "row " << r << " value " << k;
    }
  }
  EXPECT_EQ(static_cast<int>(s.upsert), static_cast<int>(w.upsert));
  EXPECT_EQ(s.conflict_target, w.conflict_target);
  EXPECT_EQ(s.conflict_constraint, w.conflict_constraint);
  EXPECT_EQ(s.returning, w.returning);
  ASSERT_EQ(s.assignments.size(), w.assignments.size());
  for (std::size_t k = 0; k < s.assignments.size(); ++k) {
    EXPECT_EQ(s.assignments[k].column, w.assignments[k].column);
    EXPECT_EQ(show(s.assignments[k].value), show(w.assignments[k].value)) << s.assignments[k].column;
  }
  EXPECT_EQ(show(s.where), show(w.where));
  EXPECT_TRUE(s.order_by.empty());
  EXPECT_TRUE(s.limit.empty());
}

INSTANTIATE_TEST_SUITE_P(Table, PostgresRecognizes, testing::ValuesIn(kRecognized));

struct Refuses {
  const char* sql;
  const char* what;  // a piece of Refusal::what
};

std::ostream& operator<<(std::ostream& os, const Refuses& r) { return os << r.sql; }

const Refuses kRefused[] = {
    {"", "an empty statement"},
    {"  -- nothing\n ; ", "an empty statement"},
    {"UPDATE t SET a = 1; UPDATE t SET a = 2", "several statements in one string"},
    {"SELECT 1; DELETE FROM t", "several statements in one string"},
    {"UPDATE t SET a = 1 FORM t", "parser rejects (syntax error at or near \"FORM\", at character 20)"},
    {"UPDATE t SET a = ? WEHRE b = ?", "parser rejects (syntax error at or near \"WEHRE\", at character 20)"},
    {"UPDATE t SET a = '\u00e9\u4e2d' WEHRE b = ?", "syntax error at or near \"WEHRE\", at character 23)"},
    {"INSERT INTO t (a) SELECT a FROM u", "INSERT ... SELECT"},
    {"INSERT INTO t (a) VALUES (1) UNION SELECT 2", "INSERT ... SELECT"},
    {"INSERT INTO t DEFAULT VALUES", "INSERT ... DEFAULT VALUES"},
    {"INSERT INTO t (a) VALUES ((SELECT max(a) FROM u))", "a subquery in INSERT"},
    {"UPDATE t SET a = (SELECT b FROM u WHERE u.id = t.id)", "a subquery in UPDATE"},
    {"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u)", "a subquery in UPDATE"},
    {"DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", "a subquery in DELETE"},
    {"UPDATE t SET a = u.a FROM u WHERE u.id = t.id", "UPDATE ... FROM"},
    {"DELETE FROM t USING u WHERE u.id = t.id", "DELETE ... USING"},
    {"WITH x AS (SELECT 1) UPDATE t SET a = 1", "WITH (a common table expression) in UPDATE"},
    {"WITH x AS (SELECT 1 AS id) DELETE FROM t WHERE id = 1", "WITH (a common table expression) in DELETE"},
    {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "a data-changing WITH"},
    {"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", "MERGE"},
    {"TRUNCATE t", "TRUNCATE"},
    {"COPY t FROM STDIN", "COPY"},
    {"CREATE TABLE t (id int primary key)", "DDL (CREATE TABLE)"},
    {"ALTER TABLE t ADD COLUMN b int", "DDL (ALTER TABLE)"},
    {"DROP TABLE t", "DDL (DROP TABLE)"},
    {"CREATE UNIQUE INDEX i ON t (a)", "DDL (CREATE INDEX)"},
    {"CALL p(1)", "CALL"},
    {"DO $$BEGIN UPDATE t SET a = 1; END$$", "DO (an anonymous code block)"},
    {"UPDATE t SET a = 1 WHERE CURRENT OF c", "WHERE CURRENT OF"},
    {"UPDATE t SET (a, b) = (SELECT 1, 2)", "a subquery in UPDATE"},
    {"UPDATE t SET a[1] = ?", "an assignment to an array element or a field"},
    {"SELECT * FROM a JOIN b ON a.id = b.id FOR UPDATE", "over a join or several tables"},
    {"SELECT * FROM a, b WHERE a.id = b.id FOR UPDATE", "over a join or several tables"},
    {"SELECT * FROM (SELECT * FROM t) s FOR UPDATE", "over something other than one table"},
    {"SELECT * FROM t WHERE id IN (SELECT id FROM u) FOR UPDATE", "a subquery in SELECT ... FOR UPDATE"},
    {"SELECT 1 FOR UPDATE", "without a table"},
    {"SELECT * INTO t2 FROM t", "SELECT ... INTO"},
    {"UPDATE ONLY t SET a = 1", "ONLY"},
    {"UPDATE d.s.t SET a = 1", "a table qualified by its database"},
    {"INSERT INTO t (id) VALUES (1) ON CONFLICT (lower(id)) DO NOTHING", "ON CONFLICT on an expression"},
    {"INSERT INTO t (id) VALUES (1) ON CONFLICT (id) WHERE id > 0 DO NOTHING", "ON CONFLICT with an index predicate"},
    {"INSERT INTO t (id) VALUES (1) ON CONFLICT DO UPDATE SET id = 2",
     "ON CONFLICT DO UPDATE without a conflict target"},
    {"INSERT INTO t (a, b) VALUES (1)", "do not match its column list"},
    {"UPDATE t SET a = $1 WHERE b = ?", "a $n parameter"},
    {"UPDATE t SET a = ? WHERE b = c?", "a ? that is not a parameter where it stands (at character 31"},
    {"BEGIN", "transaction control (BEGIN)"},
    {"UPDATE t SET a = 1 WHERE doc ? 'k' AND id = ?", "jsonb_exists()"},
    {"DELETE FROM t WHERE doc @? '$.x'", "jsonb_exists()"},
    {"WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x", "FOR UPDATE / FOR SHARE inside a subquery"},
    {"SELECT * FROM t AS x(a, b) WHERE a = 1 FOR UPDATE", "a table alias that renames columns"},
    {"SELECT * FROM t TABLESAMPLE SYSTEM (10) FOR UPDATE", "over something other than one table"},
    {"SELECT * FROM generate_series(1, 3) g FOR UPDATE", "over something other than one table"},
    {"UPDATE t SET (a) = (1)", "SET (columns) = a value that is not a row"},
    {"SELECT a, count(*) FROM t GROUP BY a FOR UPDATE", "with GROUP BY"},
    {"INSERT INTO t (a) VALUES (1) ORDER BY 1", "INSERT ... VALUES with ORDER BY"},
    {"SAVEPOINT s", "transaction control (SAVEPOINT)"},
    {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK TABLE"},
    {"SET search_path = other", "SET (a session setting)"},
    {"RESET search_path", "RESET (a session setting)"},
    {"EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN"},
    {"VACUUM t", "VACUUM"},
};

class PostgresRefuses : public testing::TestWithParam<Refuses> {};

TEST_P(PostgresRefuses, Statement) {
  const Refuses& c = GetParam();
  const Recognized got = recognize_postgres(c.sql);
  ASSERT_TRUE(std::holds_alternative<Refusal>(got)) << "recognized";
  EXPECT_NE(std::get<Refusal>(got).what.find(c.what), std::string::npos) << std::get<Refusal>(got).what;
}

INSTANTIATE_TEST_SUITE_P(Table, PostgresRefuses, testing::ValuesIn(kRefused));

TEST(PostgresRecognizer, CountsAtLeastSixtyStatements) {
  EXPECT_GE(std::size(kRecognized), 35u);
  EXPECT_GE(std::size(kRefused), 25u);
}

TEST(PostgresRecognizer, NulByteInsideTheString) {
  const std::string sql("UPDATE t SET a = 1\0; DROP TABLE t", 33);
  const Recognized got = recognize_postgres(sql);
  ASSERT_TRUE(std::holds_alternative<Refusal>(got));
  EXPECT_EQ(std::get<Refusal>(got).what, "a statement with a NUL byte");
}

TEST(PostgresRecognizer, RefusalMessageSaysXaRunsIt) {
  const Recognized got = recognize("TRUNCATE t", dtx::sql::Dialect::postgres);
  ASSERT_TRUE(std::holds_alternative<Refusal>(got));
  EXPECT_EQ(std::get<Refusal>(got).to_message(),
            "TRUNCATE is not supported in AT mode; set mode = \"xa\" on this resource to run it");
}

}  // namespace

namespace {

// A bulk INSERT: every value keeps its own ? (the offset map stays exact far
// past $9, $99, $999), and reading it stays linear.
TEST(PostgresRecognizer, BulkInsertKeepsEveryParameter) {
  std::string sql = "INSERT INTO t (a, b, c) VALUES ";
  const std::size_t rows = 3000;
  for (std::size_t r = 0; r < rows; ++r) sql += r == 0 ? "(?, ? + 1, 'x?')" : ",(?, ? + 1, 'x?')";
  const dtx::sql::Recognized got = dtx::sql::recognize_postgres(sql);
  ASSERT_TRUE(std::holds_alternative<dtx::sql::Statement>(got)) << std::get<dtx::sql::Refusal>(got).what;
  const auto& s = std::get<dtx::sql::Statement>(got);
  EXPECT_EQ(s.param_count, 2 * rows);
  ASSERT_EQ(s.rows.size(), rows);
  for (std::size_t r = 0; r < rows; ++r) {
    ASSERT_EQ(s.rows[r].size(), 3u);
    EXPECT_EQ(s.rows[r][0].text, "?");
    EXPECT_EQ(s.rows[r][0].params, std::vector<std::size_t>{2 * r});
    EXPECT_EQ(s.rows[r][1].text, "? + 1");
    EXPECT_EQ(s.rows[r][1].params, std::vector<std::size_t>{2 * r + 1});
    EXPECT_EQ(s.rows[r][2].text, "'x?'");
    EXPECT_TRUE(s.rows[r][2].params.empty());
  }
}

}  // namespace
