#include <gtest/gtest.h>

#include "base/transaction_id.h"
#include "base/xid.h"
#include "dtx/error.h"

namespace dtx {
namespace {

TEST(Xid, MysqlLiteralIsHex) {
  Xid x = Xid::make("node1.00ab.1", "bank1");
  EXPECT_EQ(x.mysql_literal(), "X'6e6f6465312e303061622e31',X'62616e6b31',1146378289");
}

TEST(Xid, PostgresGidRoundTrips) {
  Xid x = Xid::make("node-1.0123456789abcdef.2a", "bank_2");
  EXPECT_EQ(x.postgres_gid(), "dtx:node-1.0123456789abcdef.2a:bank_2");
  auto back = Xid::from_postgres_gid(x.postgres_gid());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, x);
  EXPECT_LT(x.postgres_gid().size(), 200u);
}

TEST(Xid, ForeignGidsAreNotOurs) {
  EXPECT_FALSE(Xid::from_postgres_gid("some_app_tx_1"));
  EXPECT_FALSE(Xid::from_postgres_gid("dtx:no-bqual"));
  EXPECT_FALSE(Xid::from_postgres_gid("dtx::b"));
  EXPECT_FALSE(Xid::from_postgres_gid("dtx:a:b c"));
}

TEST(Xid, LongestPartsStillFitPostgres) {
  Xid x = Xid::make(std::string(64, 'g'), std::string(64, 'b'));
  EXPECT_LT(x.postgres_gid().size(), 200u);
  EXPECT_EQ(*Xid::from_postgres_gid(x.postgres_gid()), x);
}

TEST(Xid, OverlongGtridIsAClearError) {
  try {
    Xid::make(std::string(65, 'g'), "b");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("65 bytes"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at most 64"), std::string::npos) << e.what();
  }
}

TEST(Xid, OverlongBqualAndBadBytesAreRejected) {
  EXPECT_THROW(Xid::make("g", std::string(65, 'b')), Error);
  EXPECT_THROW(Xid::make("g", ""), Error);
  EXPECT_THROW(Xid::make("g'; DROP TABLE x; --", "b"), Error);
}

TEST(Xid, ForeignXidPrintsAsHex) {
  Xid x{7, std::string("a\0b", 3), "q"};
  EXPECT_EQ(x.to_string(), "7:610062:71");
  EXPECT_THROW(x.postgres_gid(), Error);
}

}  // namespace
}  // namespace dtx

namespace dtx {
namespace {

// An incarnation id carries where its process keeps its decisions, so a
// recovery pass knows for each branch whether to read a file log or a table.
TEST(Incarnation, IsMarkedWithItsDecisionStore) {
  for (int i = 0; i < 200; ++i) {
    const std::string file = new_incarnation(DecisionStore::file);
    const std::string table = new_incarnation(DecisionStore::database);
    ASSERT_EQ(file.size(), 16u);
    ASSERT_EQ(table.size(), 16u);
    EXPECT_EQ(decision_store_of(file), DecisionStore::file) << file;
    EXPECT_EQ(decision_store_of(table), DecisionStore::database) << table;
    EXPECT_TRUE(parse_gtrid("n." + table + ".1").has_value());
  }
  EXPECT_EQ(decision_store_of(new_incarnation()), DecisionStore::file);
  EXPECT_EQ(decision_store_of("6b0f4daf8774e611"), DecisionStore::database);
  EXPECT_EQ(decision_store_of("6b0f4daf7774e611"), DecisionStore::file);
  EXPECT_EQ(decision_store_of("not-an-id"), DecisionStore::file);
}

}  // namespace
}  // namespace dtx
