// AT mode's shipped DDL as dtx runs it (undo-log/at_schema.h): the statements
// split from sql/at-mode.<db>.sql, and the version they record. Creating the
// tables on the real servers is tests/integration/at_schema_test.cc.
#include <gtest/gtest.h>

#include "undo-log/at_schema.h"

namespace dtx::undo {
namespace {

using sql::Dialect;

bool starts_with_word(const std::string& statement, const std::string& word) {
  return statement.rfind(word, 0) == 0;
}

TEST(AtSchemaDdl, SplitsTheMysqlScriptIntoItsStatementsInOrder) {
  const auto s = at_schema_statements(Dialect::mysql);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_TRUE(starts_with_word(s[0], "CREATE TABLE IF NOT EXISTS dtx_undo_log ")) << s[0];
  EXPECT_TRUE(starts_with_word(s[1], "CREATE TABLE IF NOT EXISTS dtx_global_lock ")) << s[1];
  EXPECT_TRUE(starts_with_word(s[2], "CREATE TABLE IF NOT EXISTS dtx_at_schema ")) << s[2];
  EXPECT_EQ(s[3], "INSERT INTO dtx_at_schema (id, version) VALUES (1, " +
                      std::to_string(kAtSchemaVersion) + ") ON DUPLICATE KEY UPDATE id = id");
  // The ';' in a comment ("the JSON record; NULL for a marker") ends nothing.
  EXPECT_NE(s[0].find("record; NULL"), std::string::npos) << s[0];
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s[i].ends_with(") ENGINE = InnoDB")) << s[i];
}

TEST(AtSchemaDdl, SplitsThePostgresScriptIntoItsStatementsInOrder) {
  const auto s = at_schema_statements(Dialect::postgres);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_TRUE(starts_with_word(s[0], "CREATE TABLE IF NOT EXISTS dtx_undo_log ")) << s[0];
  EXPECT_TRUE(starts_with_word(s[1], "CREATE TABLE IF NOT EXISTS dtx_global_lock ")) << s[1];
  EXPECT_EQ(s[2], "CREATE INDEX IF NOT EXISTS dtx_global_lock_holder ON dtx_global_lock (gtrid, branch)");
  EXPECT_TRUE(starts_with_word(s[3], "CREATE TABLE IF NOT EXISTS dtx_at_schema ")) << s[3];
  EXPECT_EQ(s[4], "INSERT INTO dtx_at_schema (id, version) VALUES (1, " +
                      std::to_string(kAtSchemaVersion) + ") ON CONFLICT (id) DO NOTHING");
}

TEST(AtSchemaDdl, ScriptsSayTheirVersionAndFileName) {
  for (Dialect d : {Dialect::mysql, Dialect::postgres}) {
    const std::string script(at_schema_script(d));
    EXPECT_NE(script.find("schema version " + std::to_string(kAtSchemaVersion) + " "),
              std::string::npos);
    EXPECT_NE(script.find(std::string(at_schema_file(d))), std::string::npos) << at_schema_file(d);
  }
}

// The lock key's limit and the row_key column agree.
TEST(AtSchemaDdl, RowKeyColumnHoldsTheLongestLockKey) {
  EXPECT_NE(std::string(at_schema_script(Dialect::mysql)).find("row_key    VARCHAR(768) CHARACTER SET ascii"),
            std::string::npos);
  EXPECT_NE(std::string(at_schema_script(Dialect::postgres)).find("row_key    varchar(768)"),
            std::string::npos);
}

}  // namespace
}  // namespace dtx::undo
