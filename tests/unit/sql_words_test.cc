// The drivers' SQL lexers, which need no server: comments and keywords
// (drivers/sql_words), PostgreSQL's placeholder numbering and
// transaction-control check, and MySQL's several-statements check.
#include <gtest/gtest.h>

#include "drivers/mysql_driver.h"
#include "drivers/postgres_driver.h"
#include "drivers/sql_words.h"

namespace dtx {
namespace {

TEST(SqlComments, EndWhereEachDialectSaysTheyEnd) {
  auto end = [](std::string_view sql, SqlDialect d) { return sql_comment_end(sql, 0, d); };
  EXPECT_EQ(end("-- x\nSELECT", SqlDialect::postgres), 5u);
  EXPECT_EQ(end("/* a /* b */ c */ SELECT", SqlDialect::postgres), 17u);  // nests
  EXPECT_EQ(end("/* a /* b */ c */ SELECT", SqlDialect::mysql), 12u);     // does not
  EXPECT_EQ(end("# x\nSELECT", SqlDialect::mysql), 4u);
  EXPECT_EQ(end("# x\nSELECT", SqlDialect::postgres), 0u);
  EXPECT_EQ(end("--x", SqlDialect::mysql), 0u);  // "--" needs a space after it
  EXPECT_EQ(end("/*! SELECT 1 */", SqlDialect::mysql), 0u);  // executable: code
  EXPECT_EQ(end("/* unterminated", SqlDialect::postgres), 15u);
  EXPECT_EQ(end("SELECT", SqlDialect::postgres), 0u);
}

TEST(SqlKeywordReader, ReadsUpperCaseWordsPastCommentsAndStopsAtAnythingElse) {
  SqlKeywords words("  begin /* c */ Not\tATOMIC 'x' END", SqlDialect::mysql);
  EXPECT_EQ(words.next(), "BEGIN");
  EXPECT_EQ(words.next(), "NOT");
  EXPECT_EQ(words.next(), "ATOMIC");
  EXPECT_EQ(words.next(), "");  // a quote
  SqlKeywords semis(";; commit", SqlDialect::postgres);
  EXPECT_EQ(semis.next(/*skip_semicolons=*/true), "COMMIT");
  EXPECT_EQ(SqlKeywords(";; commit", SqlDialect::postgres).next(), "");
  EXPECT_EQ(SqlKeywords("END2", SqlDialect::postgres).next(), "");
}

TEST(Placeholders, AreNumberedOutsideQuotesAndComments) {
  auto n = [](std::string_view sql) { return number_placeholders(sql).sql; };
  EXPECT_EQ(n("SELECT ?, ?"), "SELECT $1, $2");
  EXPECT_EQ(n("SELECT '?', ?"), "SELECT '?', $1");
  EXPECT_EQ(n("SELECT 'it''s ?', ?"), "SELECT 'it''s ?', $1");
  EXPECT_EQ(n("SELECT E'\\' ?', ?"), "SELECT E'\\' ?', $1");
  EXPECT_EQ(n("SELECT \"col?\" FROM t WHERE a = ?"), "SELECT \"col?\" FROM t WHERE a = $1");
  EXPECT_EQ(n("SELECT \"a\"\"?\" , ?"), "SELECT \"a\"\"?\" , $1");
  EXPECT_EQ(n("SELECT $$ ? $$, $tag$ '?' $$ ? $tag$, ?"), "SELECT $$ ? $$, $tag$ '?' $$ ? $tag$, $1");
  EXPECT_EQ(n("SELECT ? -- what?\n, ?"), "SELECT $1 -- what?\n, $2");
  EXPECT_EQ(n("SELECT /* a /* nested ? */ still ? */ ?"), "SELECT /* a /* nested ? */ still ? */ $1");
  EXPECT_EQ(n("SELECT a$b, ?"), "SELECT a$b, $1");
  EXPECT_EQ(n("SELECT '?"), "SELECT '?");  // unterminated: left for the server to reject
  EXPECT_EQ(number_placeholders("INSERT INTO t VALUES (?, ?, ?)").placeholders, 3u);
  EXPECT_EQ(number_placeholders("SELECT '?'").placeholders, 0u);
}

TEST(MysqlStatements, SeveralAreFoundOutsideQuotesAndComments) {
  auto several = [](std::string_view sql) { return mysql_has_several_statements(sql); };
  EXPECT_FALSE(several("SELECT 1"));
  EXPECT_FALSE(several("SELECT 1;"));
  EXPECT_FALSE(several("SELECT 1 ; -- done\n  /* c */ ;; "));
  EXPECT_FALSE(several("SELECT 'a;b', \"c;d\", `e;f` FROM t"));
  EXPECT_FALSE(several("SELECT 'it''s; fine'"));
  EXPECT_FALSE(several("SELECT 1 # why; not\n"));
  EXPECT_FALSE(several("SELECT 1 /* ; SELECT 2 */"));
  EXPECT_TRUE(several("SELECT 1; SELECT 2"));
  EXPECT_TRUE(several("UPDATE t SET a = 1;COMMIT"));
  EXPECT_TRUE(several("SELECT 1; /* c */ SELECT 2"));
  EXPECT_TRUE(several("SELECT 1 --; SELECT 2"));  // "--" without a space is no comment
  EXPECT_TRUE(several("SELECT 1 /*! ; SELECT 2 */"));  // executable comment: code
  // A string that ends differently with and without backslash escapes
  // (NO_BACKSLASH_ESCAPES) never hides a second statement.
  EXPECT_TRUE(several("SELECT 'a\\'; SELECT 2 -- '"));
  EXPECT_TRUE(several("SELECT 'a\\'';' ; SELECT 2"));
  // Compound bodies: ';' inside one statement.
  EXPECT_FALSE(several("CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END"));
  EXPECT_FALSE(several("/* setup */ create trigger t before insert on x for each row begin set @a = 1; end"));
  EXPECT_FALSE(several("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END"));
  EXPECT_TRUE(several("BEGIN; SELECT 2"));
}

TEST(TransactionControl, IsRecognisedBehindCommentsAndCase) {
  auto k = [](std::string_view sql) { return transaction_control_keyword(sql); };
  EXPECT_EQ(k("COMMIT"), "COMMIT");
  EXPECT_EQ(k("commit;"), "COMMIT");
  EXPECT_EQ(k("  End"), "END");
  EXPECT_EQ(k("abort"), "ABORT");
  EXPECT_EQ(k("begin isolation level serializable"), "BEGIN");
  EXPECT_EQ(k("start transaction"), "START TRANSACTION");
  EXPECT_EQ(k("-- why\n/* a /* nested */ b */ ;; ROLLBACK"), "ROLLBACK");
  EXPECT_EQ(k("ROLLBACK AND CHAIN"), "ROLLBACK");
  EXPECT_EQ(k("rollback prepared 'x'"), "ROLLBACK");
  EXPECT_EQ(k("COMMIT PREPARED 'x'"), "COMMIT");
  EXPECT_EQ(k("prepare transaction 'x'"), "PREPARE TRANSACTION");
  EXPECT_EQ(k("ROLLBACK TO SAVEPOINT s"), "");
  EXPECT_EQ(k("rollback to s"), "");
  EXPECT_EQ(k("ROLLBACK WORK TO SAVEPOINT s"), "");
  EXPECT_EQ(k("ROLLBACK TRANSACTION /* x */ TO s"), "");
  EXPECT_EQ(k("PREPARE q AS SELECT 1"), "");
  EXPECT_EQ(k("SELECT 'COMMIT'"), "");
  EXPECT_EQ(k("UPDATE t SET a = 1"), "");
  EXPECT_EQ(k("committed_rows()"), "");
  EXPECT_EQ(k("END2"), "");
  EXPECT_EQ(k(""), "");
  EXPECT_EQ(k("/* unterminated COMMIT"), "");
}

}  // namespace
}  // namespace dtx
