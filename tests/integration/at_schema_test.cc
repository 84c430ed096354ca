// ensure_at_schema() (undo-log/at_schema.h) against the real servers of
// scripts/db.sh: creating AT mode's tables where they are missing, doing
// nothing the second time, two processes creating at once, refusing another
// schema version, and a user who may not create tables.
//
// Each test works in a scratch place of its own, dropped at the end: on
// MariaDB a database hr_at_<pid>_<n> (the resource's configured database); on
// PostgreSQL a schema hr_at_<pid>_<n> of dtx_test, made the first schema of
// the session's search_path, as a user whose search_path names it would have.
#include <gtest/gtest.h>

#include <unistd.h>

#include <latch>
#include <thread>

#include "drivers/resource_manager.h"
#include "dtx/error.h"
#include "support/error_from.h"
#include "support/test_env.h"
#include "undo-log/at_schema.h"

namespace dtx::undo {
namespace {

using sql::Dialect;
using test::error_from;

// A name no other test process uses at the same time: this process's id and a counter.
std::string unique_name(const std::string& prefix) {
  static int counter = 0;
  return prefix + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

Result run(Session& s, const std::string& sql) { return s.execute(sql, {}); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class AtSchemaTest : public ::testing::TestWithParam<Dialect> {
 protected:
  bool mysql() const { return GetParam() == Dialect::mysql; }

  void SetUp() override {
    place_ = unique_name("hr_at_");
    admin_rm_ = make_resource_manager(mysql() ? test::mysql_resource("hr_admin")
                                              : test::postgres_resource("hr_admin"));
    auto admin = admin_rm_->acquire();
    run(*admin, (mysql() ? "CREATE DATABASE " : "CREATE SCHEMA ") + place_);
    rm_ = make_resource_manager(config("hr_at_res"));
  }

  void TearDown() override {
    rm_.reset();
    user_rm_.reset();
    auto admin = admin_rm_->acquire();
    run(*admin, (mysql() ? "DROP DATABASE IF EXISTS " : "DROP SCHEMA IF EXISTS ") + place_ +
                    (mysql() ? "" : " CASCADE"));
    if (!user_.empty()) {
      if (mysql()) {
        run(*admin, "DROP USER IF EXISTS '" + user_ + "'@'%'");
      } else {
        run(*admin, "DROP OWNED BY " + user_);
        run(*admin, "DROP ROLE IF EXISTS " + user_);
      }
    }
  }

  // The resource: the scratch database on MariaDB, dtx_test on PostgreSQL.
  ResourceConfig config(const std::string& name) const {
    return mysql() ? test::mysql_resource(name, place_) : test::postgres_resource(name);
  }

  // A session of `rm` whose unqualified names resolve to the scratch place.
  SessionLease session(ResourceManager& rm) const {
    SessionLease s = rm.acquire();
    if (!mysql()) run(*s, "SET search_path TO " + place_);
    return s;
  }
  SessionLease session() const { return session(*rm_); }

  void ensure(Session& s) const { ensure_at_schema(s, GetParam(), "hr_at_res"); }

  // The AT tables in the scratch place, sorted.
  std::vector<std::string> tables() const {
    auto admin = admin_rm_->acquire();
    const Result r = run(
        *admin, mysql() ? "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '" +
                              place_ + "' ORDER BY TABLE_NAME"
                        : "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = '" +
                              place_ + "' ORDER BY tablename");
    std::vector<std::string> names;
    for (const Row& row : r) names.push_back(row.text(0));
    return names;
  }

  // The rows of dtx_at_schema, as "id:version".
  std::vector<std::string> version_rows() const {
    auto s = session();
    std::vector<std::string> rows;
    for (const Row& row : run(*s, "SELECT id, version FROM dtx_at_schema ORDER BY id"))
      rows.push_back(row.text(0) + ":" + row.text(1));
    return rows;
  }

  const std::vector<std::string> kAll{"dtx_at_schema", "dtx_global_lock", "dtx_undo_log"};

  std::string place_;
  std::unique_ptr<ResourceManager> admin_rm_;
  std::unique_ptr<ResourceManager> rm_;
  std::string user_;  // an unprivileged user, if the test made one
  std::unique_ptr<ResourceManager> user_rm_;
};

TEST_P(AtSchemaTest, CreatesTheTablesWhereUnqualifiedNamesGoWhenMissing) {
  ASSERT_TRUE(tables().empty());
  {
    auto s = session();
    ensure(*s);
  }
  EXPECT_EQ(tables(), kAll);
  EXPECT_EQ(version_rows(), std::vector<std::string>{"1:1"});

  // They work as AT mode uses them: a branch's record, then a second row for
  // the same branch (a late phase 1 after a rollback marker) fails on the key.
  auto s = session();
  run(*s, "INSERT INTO dtx_undo_log (gtrid, branch, kind, record) "
          "VALUES ('node1.1', 'bank1', 1, NULL)");
  const Error dup = error_from([&] {
    run(*s, "INSERT INTO dtx_undo_log (gtrid, branch, kind, record) "
            "VALUES ('node1.1', 'bank1', 0, '{}')");
  });
  EXPECT_EQ(dup.sqlstate(), mysql() ? "23000" : "23505") << dup.what();
  EXPECT_NE(error_from([&] {
              run(*s, "INSERT INTO dtx_undo_log (gtrid, branch, kind) VALUES ('g', 'b', 2)");
            }).sqlstate(), "") << "kind 2 must be refused";
  // One lock per (table, row key), whoever asks.
  run(*s, "INSERT INTO dtx_global_lock (table_name, row_key, gtrid, branch) "
          "VALUES ('bank1.account_info', '[\"2\"]', 'node1.1', 'bank1')");
  const Error held = error_from([&] {
    run(*s, "INSERT INTO dtx_global_lock (table_name, row_key, gtrid, branch) "
            "VALUES ('bank1.account_info', '[\"2\"]', 'node1.2', 'bank1')");
  });
  EXPECT_EQ(held.sqlstate(), mysql() ? "23000" : "23505") << held.what();
  // created is filled in, to the microsecond.
  const Result created = run(*s, "SELECT created FROM dtx_global_lock");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_FALSE(created[0].is_null(0));
}

TEST_P(AtSchemaTest, ASecondCallChangesNothing) {
  auto s = session();
  ensure(*s);
  run(*s, "INSERT INTO dtx_undo_log (gtrid, branch, kind, record) VALUES ('node1.7', 'b', 0, '{}')");
  ensure(*s);
  ensure(*session());
  EXPECT_EQ(tables(), kAll);
  EXPECT_EQ(version_rows(), std::vector<std::string>{"1:1"});
  EXPECT_EQ(run(*s, "SELECT gtrid FROM dtx_undo_log")[0].text(0), "node1.7");
}

TEST_P(AtSchemaTest, RecreatesATableThatIsMissing) {
  auto s = session();
  ensure(*s);
  run(*s, "DROP TABLE dtx_global_lock");
  run(*s, "DELETE FROM dtx_at_schema");
  ensure(*s);
  EXPECT_EQ(tables(), kAll);
  EXPECT_EQ(version_rows(), std::vector<std::string>{"1:1"});
}

// Processes starting at once each find the tables missing and create them.
TEST_P(AtSchemaTest, ConcurrentCallsAllSucceed) {
  constexpr int kSessions = 4;
  for (int round = 0; round < 5; ++round) {
    std::vector<SessionLease> sessions;
    for (int i = 0; i < kSessions; ++i) sessions.push_back(session());
    std::latch start(kSessions);
    std::vector<std::string> failures(kSessions);
    std::vector<std::thread> threads;
    for (int i = 0; i < kSessions; ++i)
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          ensure(*sessions[i]);
        } catch (const std::exception& e) {
          failures[i] = e.what();
        }
      });
    for (auto& t : threads) t.join();
    for (int i = 0; i < kSessions; ++i)
      EXPECT_EQ(failures[i], "") << "round " << round << ", session " << i;
    EXPECT_EQ(tables(), kAll);
    EXPECT_EQ(version_rows(), std::vector<std::string>{"1:1"});
    for (const char* t : {"dtx_undo_log", "dtx_global_lock", "dtx_at_schema"})
      run(*sessions[0], std::string("DROP TABLE ") + t);
  }
}

TEST_P(AtSchemaTest, AnotherVersionIsRefused) {
  auto s = session();
  ensure(*s);
  run(*s, "UPDATE dtx_at_schema SET version = 2");
  Error e = error_from([&] { ensure(*s); });
  EXPECT_EQ(e.code(), Errc::misconfigured) << e.what();
  EXPECT_EQ(e.resource(), "hr_at_res");
  EXPECT_TRUE(contains(e.what(), "have schema version 2, this dtx uses version 1")) << e.what();
  EXPECT_TRUE(contains(e.what(), place_)) << e.what();
  EXPECT_TRUE(contains(e.hint(), "a newer dtx created them")) << e.hint();

  run(*s, "UPDATE dtx_at_schema SET version = 0");
  e = error_from([&] { ensure(*s); });
  EXPECT_EQ(e.code(), Errc::misconfigured) << e.what();
  EXPECT_TRUE(contains(e.what(), "have schema version 0")) << e.what();
  EXPECT_TRUE(contains(e.hint(), "an older dtx created them")) << e.hint();
  // Refusing changed nothing.
  EXPECT_EQ(version_rows(), std::vector<std::string>{"1:0"});
}

TEST_P(AtSchemaTest, RefusedOnASessionWithABranch) {
  auto s = session();
  s->begin(Xid::make(unique_name("hr-at-"), "b1"));
  EXPECT_EQ(error_from([&] { ensure(*s); }).code(), Errc::usage);
  s->rollback();
  EXPECT_TRUE(tables().empty());
}

// A user without the privilege to create tables gets what a DBA must run;
// once the DBA has, the same user passes.
TEST_P(AtSchemaTest, AUserWhoMayNotCreateIsToldHowADbaCreatesThem) {
  user_ = unique_name("hr_at_u");
  {
    auto admin = admin_rm_->acquire();
    if (mysql()) {  // an application's user: may change rows, not create tables
      run(*admin, "CREATE USER '" + user_ + "'@'%' IDENTIFIED BY 'hr'");
      run(*admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON " + place_ + ".* TO '" + user_ + "'@'%'");
    } else {
      run(*admin, "CREATE ROLE " + user_ + " LOGIN PASSWORD 'hr'");
      run(*admin, "GRANT USAGE ON SCHEMA " + place_ + " TO " + user_);
    }
  }
  ResourceConfig c = config("hr_at_res");
  c.user = user_;
  c.password = "hr";
  user_rm_ = make_resource_manager(c);
  const std::string file = mysql() ? "sql/at-mode.mysql.sql" : "sql/at-mode.postgres.sql";
  {
    auto s = session(*user_rm_);
    const Error e = error_from([&] { ensure(*s); });
    EXPECT_EQ(e.code(), Errc::misconfigured) << e.what();
    EXPECT_EQ(e.resource(), "hr_at_res");
    EXPECT_TRUE(contains(e.what(), "may not create them")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "have a DBA create the tables by running " + file)) << e.hint();
    EXPECT_TRUE(contains(e.hint(), "database " + (mysql() ? place_ : std::string("dtx_test"))))
        << e.hint();
    if (!mysql()) {
      EXPECT_TRUE(contains(e.hint(), "schema " + place_)) << e.hint();
    }
    EXPECT_TRUE(contains(e.hint(), user_)) << e.hint();
    if (mysql()) {
      EXPECT_FALSE(e.server_message().empty()) << "the server's refusal is kept";
    }
  }
  EXPECT_TRUE(tables().empty());

  // The DBA runs the script (as dtx does) but grants nothing yet.
  {
    auto dba_rm = make_resource_manager(config("hr_dba"));
    auto admin = session(*dba_rm);
    for (const std::string& statement : at_schema_statements(GetParam())) run(*admin, statement);
  }
  EXPECT_EQ(tables(), kAll);
  if (!mysql()) {  // the tables are there, but the user has no privileges on them yet
    auto s = session(*user_rm_);
    const Error e = error_from([&] { ensure(*s); });
    EXPECT_EQ(e.code(), Errc::misconfigured) << e.what();
    EXPECT_TRUE(contains(e.what(), "may not use AT mode's tables")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "grant " + user_ + " SELECT, INSERT, UPDATE, DELETE")) << e.hint();
    auto admin = admin_rm_->acquire();
    for (const char* t : {"dtx_undo_log", "dtx_global_lock", "dtx_at_schema"})
      run(*admin, std::string("GRANT SELECT, INSERT, UPDATE, DELETE ON ") + place_ + "." + t +
                      " TO " + user_);
  }
  auto s = session(*user_rm_);
  ensure(*s);
  run(*s, "INSERT INTO dtx_undo_log (gtrid, branch, kind, record) VALUES ('node1.9', 'b', 0, '{}')");
  EXPECT_EQ(run(*s, "SELECT count(*) FROM dtx_undo_log")[0].as_int64(0), 1);
}

INSTANTIATE_TEST_SUITE_P(Databases, AtSchemaTest,
                         ::testing::Values(Dialect::mysql, Dialect::postgres),
                         [](const auto& test_info) {
                           return test_info.param == Dialect::mysql ? "MariaDB" : "PostgreSQL";
                         });

}  // namespace
}  // namespace dtx::undo
