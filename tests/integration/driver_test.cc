// The resource-manager drivers against the real servers of scripts/db.sh.
//
// The shared behaviour is one typed suite run on MariaDB and on PostgreSQL;
// each database's own traps follow it. Every gtrid starts with this process's
// run prefix, and every test's tear-down fails the test for each branch of
// this run it finds still prepared on either server (then rolls it back, so
// that the next test starts clean). The drivers' SQL lexers, which need no
// server, are tested in tests/unit/sql_words_test.cc.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <ostream>
#include <random>
#include <thread>

#include "drivers/mysql_driver.h"
#include "drivers/postgres_driver.h"
#include "drivers/resource_manager.h"
#include "dtx/error.h"
#include "support/error_from.h"
#include "support/test_env.h"

namespace dtx {

// Readable gtest output for the enums this file compares.
void PrintTo(Errc code, std::ostream* os) { *os << to_string(code); }
void PrintTo(FinishOutcome o, std::ostream* os) { *os << to_string(o); }
void PrintTo(BranchState s, std::ostream* os) {
  *os << (s == BranchState::none ? "none" : s == BranchState::active ? "active" : "prepared");
}

namespace {

using namespace std::chrono_literals;
using Params = std::vector<Param>;

std::string random_hex(int digits) {
  static std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s += kHex[rng() % 16];
  return s;
}

const std::string& run_prefix() {
  static const std::string prefix = "drvtest-" + random_hex(8);
  return prefix;
}

Xid fresh_xid(const std::string& tag) {
  static std::atomic<int> counter{0};
  return Xid::make(run_prefix() + "-" + tag + "-" + std::to_string(++counter), "b1");
}

Result run(Session& s, const std::string& sql, Params params = {}) {
  return s.execute(sql, params);
}

using test::error_from;

// Finishing a prepared branch that must succeed.
void expect_done(const FinishResult& r) {
  EXPECT_EQ(r.outcome, FinishOutcome::done) << (r.error ? r.error->what() : "");
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool is_listed(Session& s, const Xid& xid) {
  for (const PreparedXid& p : s.recover())
    if (p.xid == xid) return true;
  return false;
}

// Polls an observable condition on the server (never a fixed sleep); the
// caller asserts the result: ASSERT_TRUE(wait_until(...)).
template <typename F>
[[nodiscard]] ::testing::AssertionResult wait_until(F condition, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return ::testing::AssertionFailure() << "timed out waiting until " << what;
    std::this_thread::sleep_for(2ms);  // poll interval, not synchronisation
  }
  return ::testing::AssertionSuccess();
}


struct MariaDB {
  static ResourceConfig config() { return test::mysql_resource("my"); }
  static std::int64_t backend_id(Session& s) {
    return run(s, "SELECT CONNECTION_ID()")[0].as_int64(0);
  }
  static void kill(Session& killer, std::int64_t id) {
    run(killer, "KILL " + std::to_string(id));
  }
  // The server detaches a prepared branch from its session only once it has
  // processed the disconnect, which happens after the client has closed.
  static bool is_gone(Session& s, std::int64_t id) {
    return run(s, "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = ?", {id})[0]
               .as_int64(0) == 0;
  }
  // The server rolls the whole transaction back; the driver ends the branch.
  static constexpr BranchState kAfterDeadlock = BranchState::none;
  static constexpr const char* kDuplicateKeySqlstate = "23000";
  static constexpr int kDuplicateKeyCode = 1062;
};

struct PostgreSQL {
  static ResourceConfig config() { return test::postgres_resource("pg"); }
  static std::int64_t backend_id(Session& s) {
    return run(s, "SELECT pg_backend_pid()")[0].as_int64(0);
  }
  static void kill(Session& killer, std::int64_t id) {
    ASSERT_EQ(run(killer, "SELECT pg_terminate_backend(CAST(? AS integer))", {id})[0].text(0), "t");
  }
  static bool is_gone(Session& s, std::int64_t id) {
    return run(s, "SELECT count(*) FROM pg_stat_activity WHERE pid = CAST(? AS integer)", {id})[0]
               .as_int64(0) == 0;
  }
  // The block is failed and open until rollback().
  static constexpr BranchState kAfterDeadlock = BranchState::active;
  static constexpr const char* kDuplicateKeySqlstate = "23505";
  static constexpr int kDuplicateKeyCode = 0;
};

// A resource manager and a private table per test.
template <typename Db>
class DriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rm_ = make_resource_manager(Db::config());
    table_ = "drv_" + random_hex(10);
    auto s = rm_->acquire();
    run(*s, "CREATE TABLE " + table_ +
                " (id BIGINT PRIMARY KEY, v VARCHAR(200), d DOUBLE PRECISION, n BIGINT)");
  }

  void TearDown() override {
    expect_nothing_left_prepared();
    auto s = rm_->acquire();
    run(*s, "DROP TABLE IF EXISTS " + table_);
  }

  // A test leaves nothing of this run prepared, on either server: each branch
  // found is a failure, and is rolled back (it would hold the table's locks).
  static void expect_nothing_left_prepared() {
    for (const ResourceConfig& c : {MariaDB::config(), PostgreSQL::config()}) {
      auto rm = make_resource_manager(c);
      auto s = rm->acquire();
      for (const PreparedXid& p : s->recover()) {
        if (!p.xid.gtrid.starts_with(run_prefix())) continue;
        ADD_FAILURE() << c.name << " still has a prepared branch of this test: " << p.raw;
        FinishResult r = s->rollback_prepared(p.xid);
        if (r.outcome != FinishOutcome::done && r.outcome != FinishOutcome::rolled_back_by_database)
          ADD_FAILURE() << "could not clean up " << p.raw << ": "
                        << (r.error ? r.error->what() : to_string(r.outcome));
      }
    }
  }

  void insert(Session& s, std::int64_t id, Param v = nullptr) {
    EXPECT_EQ(run(s, "INSERT INTO " + table_ + " (id, v) VALUES (?, ?)", {id, v}).affected_rows(),
              1u);
  }
  // Rows with `id`, as another session sees them.
  std::int64_t committed_rows(std::int64_t id) {
    auto observer = rm_->acquire();
    return run(*observer, "SELECT count(*) FROM " + table_ + " WHERE id = ?", {id})[0].as_int64(0);
  }

  // The branch is over: the session holds none, another session sees
  // `rows` rows with `id`, and the server lists no prepared `xid`.
  void expect_ended(Session& s, const Xid& xid, std::int64_t id, std::int64_t rows) {
    EXPECT_EQ(s.state(), BranchState::none);
    EXPECT_EQ(s.current_xid(), nullptr);
    EXPECT_EQ(committed_rows(id), rows);
    EXPECT_FALSE(is_listed(s, xid));
  }

  // A branch that wrote row 1 and then saw statements refused goes on as if
  // they had not been tried: row 2 joins it, and both commit in two phases.
  void expect_branch_goes_on(Session& s) {
    insert(s, 2);
    s.prepare();
    expect_done(s.commit());
    EXPECT_EQ(committed_rows(1), 1);
    EXPECT_EQ(committed_rows(2), 1);
    EXPECT_FALSE(s.broken());
  }

  std::unique_ptr<ResourceManager> rm_;
  std::string table_;
};

class DatabaseNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, MariaDB> ? "MariaDB" : "PostgreSQL";
  }
};

using Databases = ::testing::Types<MariaDB, PostgreSQL>;
TYPED_TEST_SUITE(DriverTest, Databases, DatabaseNames);

TYPED_TEST(DriverTest, ExecuteBindsNullIntegerDoubleAndAwkwardStrings) {
  auto s = this->rm_->acquire();
  const std::string awkward = "O'Re\\il \"ly\" ? -- /* $$";
  Result ins = run(*s, "INSERT INTO " + this->table_ + " (id, v, d, n) VALUES (?, ?, ?, ?)",
                   {7, awkward, 2.5, nullptr});
  EXPECT_EQ(ins.affected_rows(), 1u);

  Result r = run(*s, "SELECT v, d, n FROM " + this->table_ + " WHERE id = ?", {7});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r.columns(), (std::vector<std::string>{"v", "d", "n"}));
  EXPECT_EQ(r[0].text(0), awkward);
  EXPECT_DOUBLE_EQ(r[0].as_double(1), 2.5);
  EXPECT_TRUE(r[0].is_null(2));

  // A `?` inside a literal is text, not a placeholder.
  Result lit = run(*s, "SELECT '?' AS q, ? AS p FROM " + this->table_ + " WHERE v <> '?' AND id = ?",
                   {"x", 7});
  ASSERT_EQ(lit.size(), 1u);
  EXPECT_EQ(lit.columns(), (std::vector<std::string>{"q", "p"}));
  EXPECT_EQ(lit[0].text(0), "?");
  EXPECT_EQ(lit[0].text(1), "x");

  EXPECT_EQ(run(*s, "UPDATE " + this->table_ + " SET n = ? WHERE id = ?", {-42, 7}).affected_rows(),
            1u);
  EXPECT_EQ(run(*s, "SELECT n FROM " + this->table_ + " WHERE id = ?", {7})[0].as_int64(0), -42);
  EXPECT_EQ(run(*s, "SELECT count(*) FROM " + this->table_ + " WHERE n IS NULL")[0].as_int64(0), 0);
}

TYPED_TEST(DriverTest, WrongParameterCountIsAUsageError) {
  auto s = this->rm_->acquire();
  EXPECT_EQ(error_from([&] { run(*s, "SELECT ? + ?", {1}); }).code(), Errc::usage);
  EXPECT_FALSE(s->broken());
  EXPECT_EQ(run(*s, "SELECT ? AS one", {1})[0].as_int64(0), 1);
}

TYPED_TEST(DriverTest, CommitAfterPrepareIsVisibleFromAnotherSession) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("commit");
  s->begin(xid);
  EXPECT_EQ(s->state(), BranchState::active);
  ASSERT_NE(s->current_xid(), nullptr);
  EXPECT_EQ(*s->current_xid(), xid);
  this->insert(*s, 1, "one");
  EXPECT_EQ(this->committed_rows(1), 0);
  s->prepare();
  EXPECT_EQ(s->state(), BranchState::prepared);
  EXPECT_EQ(this->committed_rows(1), 0);
  expect_done(s->commit());
  this->expect_ended(*s, xid, 1, 1);
}

TYPED_TEST(DriverTest, RollbackFromActiveLeavesNothing) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("rb-active");
  s->begin(xid);
  this->insert(*s, 1);
  s->rollback();
  this->expect_ended(*s, xid, 1, 0);
  s->rollback();  // nothing to do, no error
}

TYPED_TEST(DriverTest, RollbackFromPreparedLeavesNothing) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("rb-prep");
  s->begin(xid);
  this->insert(*s, 1);
  s->prepare();
  EXPECT_TRUE(is_listed(*this->rm_->acquire(), xid));
  s->rollback();
  this->expect_ended(*s, xid, 1, 0);
}

TYPED_TEST(DriverTest, OnePhaseCommitIsVisibleAndNeverPrepared) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("1pc");
  s->begin(xid);
  this->insert(*s, 1);
  s->commit_one_phase();
  this->expect_ended(*s, xid, 1, 1);
}

TYPED_TEST(DriverTest, RecoverListsBranchAfterItsSessionClosedAndAnotherSessionCommitsIt) {
  const Xid xid = fresh_xid("recover");
  std::int64_t preparer_id = 0;
  {
    auto s = this->rm_->acquire();
    preparer_id = TypeParam::backend_id(*s);
    s->begin(xid);
    this->insert(*s, 1);
    s->prepare();
    s.discard();  // the connection closes; the branch stays prepared
  }
  auto other = this->rm_->acquire();
  ASSERT_TRUE(wait_until([&] { return TypeParam::is_gone(*other, preparer_id); }, "the server dropped the session"));
  bool found = false;
  for (const PreparedXid& p : other->recover()) {
    if (p.xid != xid) continue;
    found = true;
    EXPECT_TRUE(p.is_dtx);
    EXPECT_FALSE(p.raw.empty());
  }
  ASSERT_TRUE(found) << "recover() does not list " << xid.to_string();
  EXPECT_EQ(this->committed_rows(1), 0);
  expect_done(other->commit_prepared(xid));
  EXPECT_EQ(this->committed_rows(1), 1);
  EXPECT_FALSE(is_listed(*other, xid));
}

TYPED_TEST(DriverTest, UnknownXidIsReportedAsUnknown) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("nosuch");
  FinishResult commit = s->commit_prepared(xid);
  EXPECT_EQ(commit.outcome, FinishOutcome::not_found);
  ASSERT_TRUE(commit.error.has_value());
  const Error& c = *commit.error;
  EXPECT_EQ(c.code(), Errc::unknown_xid) << c.what();
  EXPECT_EQ(c.gtrid(), xid.gtrid);
  EXPECT_EQ(c.resource(), TypeParam::config().name);
  EXPECT_EQ(s->rollback_prepared(xid).outcome, FinishOutcome::not_found);
  EXPECT_FALSE(s->broken());
}

TYPED_TEST(DriverTest, DuplicateKeyIsAnSqlErrorAndTheBranchCanOnlyRollBack) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("dupkey");
  s->begin(xid);
  this->insert(*s, 1);
  Error dup = error_from([&] { this->insert(*s, 1); });
  EXPECT_EQ(dup.code(), Errc::sql) << dup.what();
  EXPECT_EQ(dup.sqlstate(), TypeParam::kDuplicateKeySqlstate);
  EXPECT_EQ(dup.server_code(), TypeParam::kDuplicateKeyCode);
  EXPECT_EQ(dup.gtrid(), xid.gtrid);
  EXPECT_FALSE(dup.server_message().empty());

  EXPECT_EQ(error_from([&] { run(*s, "SELECT 1"); }).code(), Errc::usage);
  Error vote = error_from([&] { s->prepare(); });
  EXPECT_EQ(vote.code(), Errc::rolled_back) << vote.what();
  this->expect_ended(*s, xid, 1, 0);

  // The session is clean: a new branch works on it.
  s->begin(fresh_xid("dupkey-after"));
  this->insert(*s, 2);
  s->commit_one_phase();
  EXPECT_EQ(this->committed_rows(2), 1);
}

TYPED_TEST(DriverTest, FailedStatementRefusesOnePhaseCommit) {
  auto s = this->rm_->acquire();
  s->begin(fresh_xid("fail-1pc"));
  this->insert(*s, 1);
  EXPECT_EQ(error_from([&] { run(*s, "SELECT * FROM no_such_table_here"); }).code(), Errc::sql);
  EXPECT_EQ(error_from([&] { s->commit_one_phase(); }).code(), Errc::rolled_back);
  EXPECT_EQ(s->state(), BranchState::none);
  EXPECT_EQ(this->committed_rows(1), 0);
}

TYPED_TEST(DriverTest, DeadlockIsRetryableAndTheVictimSessionIsReusable) {
  auto a = this->rm_->acquire();
  auto b = this->rm_->acquire();
  this->insert(*a, 1);
  this->insert(*a, 2);
  a->begin(fresh_xid("dl-a"));
  b->begin(fresh_xid("dl-b"));
  run(*a, "UPDATE " + this->table_ + " SET n = 1 WHERE id = 1");
  run(*b, "UPDATE " + this->table_ + " SET n = 2 WHERE id = 2");
  // Each now wants the other's row. Whichever asks second closes the cycle;
  // the server picks a victim, and the other's update then goes through.
  auto cross_update = [this](Session& s, int id) {
    return std::async(std::launch::async, [this, &s, id]() -> std::optional<Error> {
      try {
        run(s, "UPDATE " + this->table_ + " SET n = 3 WHERE id = ?", {id});
        return std::nullopt;
      } catch (const Error& e) {
        return e;
      }
    });
  };
  auto a_update = cross_update(*a, 2);
  auto b_update = cross_update(*b, 1);
  std::optional<Error> a_error = a_update.get(), b_error = b_update.get();
  ASSERT_NE(a_error.has_value(), b_error.has_value()) << "exactly one side is the deadlock victim";
  const Error& e = a_error ? *a_error : *b_error;
  EXPECT_EQ(e.code(), Errc::retryable) << e.what();
  Session& victim = a_error ? *a : *b;
  Session& winner = a_error ? *b : *a;
  EXPECT_EQ(victim.state(), TypeParam::kAfterDeadlock);

  victim.rollback();
  EXPECT_EQ(victim.state(), BranchState::none);
  EXPECT_FALSE(victim.broken());
  winner.rollback();
  EXPECT_EQ(winner.state(), BranchState::none);
  auto observer = this->rm_->acquire();
  EXPECT_EQ(run(*observer, "SELECT count(*) FROM " + this->table_ + " WHERE n IS NOT NULL")[0]
                .as_int64(0),
            0);

  victim.begin(fresh_xid("dl-after"));
  this->insert(victim, 3);
  victim.prepare();
  expect_done(victim.commit());
  EXPECT_EQ(this->committed_rows(3), 1);
}

TYPED_TEST(DriverTest, UnreachablePortIsUnavailableNamingWhereItTried) {
  ResourceConfig c = TypeParam::config();
  c.name = "nowhere";
  c.port = 1;
  c.password = "pw-never-shown-9f3";
  auto rm = make_resource_manager(c);
  Error e = error_from([&] { rm->acquire(); });
  EXPECT_EQ(e.code(), Errc::unavailable);
  const std::string m = e.what();
  EXPECT_TRUE(contains(m, "127.0.0.1:1")) << m;
  EXPECT_TRUE(contains(m, "nowhere")) << m;
  EXPECT_TRUE(contains(m, c.database)) << m;
  EXPECT_TRUE(contains(m, "[resources.nowhere]")) << m;
  EXPECT_FALSE(e.server_message().empty());
  EXPECT_FALSE(contains(m, c.password)) << m;
  EXPECT_EQ(rm->idle_count(), 0u);
}

TYPED_TEST(DriverTest, PoolReusesAnIdleSessionAndClosesBrokenOnes) {
  Session* first = nullptr;
  {
    auto s = this->rm_->acquire();
    first = &*s;
  }
  EXPECT_EQ(this->rm_->idle_count(), 1u);
  {
    auto s = this->rm_->acquire();
    EXPECT_EQ(&*s, first);
    EXPECT_EQ(this->rm_->idle_count(), 0u);
    const std::int64_t id = TypeParam::backend_id(*s);
    {
      auto killer = this->rm_->acquire();
      EXPECT_NE(&*killer, first);
      ASSERT_NO_FATAL_FAILURE(TypeParam::kill(*killer, id));
    }
    Error e = error_from([&] { run(*s, "SELECT 1"); });
    EXPECT_EQ(e.code(), Errc::unavailable) << e.what();
    EXPECT_TRUE(s->broken());
    EXPECT_EQ(error_from([&] { s->begin(fresh_xid("broken")); }).code(), Errc::unavailable);
  }
  // The broken session was closed, and took the idle ones (the killer) with it.
  EXPECT_EQ(this->rm_->idle_count(), 0u);
  auto s = this->rm_->acquire();
  EXPECT_EQ(run(*s, "SELECT 1 AS one")[0].as_int64(0), 1);
}

TYPED_TEST(DriverTest, LeaseHoldingABranchIsClosedNotPooled) {
  {
    auto s = this->rm_->acquire();
    s->begin(fresh_xid("held"));
    this->insert(*s, 1);
  }
  EXPECT_EQ(this->rm_->idle_count(), 0u);
  EXPECT_EQ(this->committed_rows(1), 0);
}

TYPED_TEST(DriverTest, PoolKeepsAtMostPoolSizeIdle) {
  ResourceConfig c = TypeParam::config();
  c.pool_size = 2;
  auto rm = make_resource_manager(c);
  {
    std::vector<SessionLease> leases;
    for (int i = 0; i < 4; ++i) leases.push_back(rm->acquire());
  }
  EXPECT_EQ(rm->idle_count(), 2u);
}

TYPED_TEST(DriverTest, LifecycleCallsInTheWrongStateAreUsageErrors) {
  auto s = this->rm_->acquire();
  EXPECT_EQ(error_from([&] { s->prepare(); }).code(), Errc::usage);
  EXPECT_EQ(error_from([&] { (void)s->commit(); }).code(), Errc::usage);
  const Xid xid = fresh_xid("states");
  s->begin(xid);
  EXPECT_EQ(error_from([&] { s->begin(fresh_xid("states2")); }).code(), Errc::usage);
  EXPECT_EQ(error_from([&] { (void)s->commit_prepared(xid); }).code(), Errc::usage);
  s->prepare();
  EXPECT_EQ(error_from([&] { run(*s, "SELECT 1"); }).code(), Errc::usage);
  s->rollback();
  EXPECT_EQ(s->state(), BranchState::none);
}

// ---- MariaDB ----

class MariaDBDriver : public DriverTest<MariaDB> {};

// The trap from docs/drivers.md: while the preparing session lives, another
// session's XA COMMIT says 1397 XAER_NOTA although XA RECOVER lists the branch.
// unknown_xid from commit_prepared therefore never means "finished" by itself.
TEST_F(MariaDBDriver, PinsTheTrap1397WhileThePreparingSessionLives) {
  auto owner = rm_->acquire();
  auto other = rm_->acquire();
  const Xid xid = fresh_xid("trap1397");
  owner->begin(xid);
  insert(*owner, 1);
  owner->prepare();

  FinishResult answer = other->commit_prepared(xid);
  EXPECT_EQ(answer.outcome, FinishOutcome::not_found);
  ASSERT_TRUE(answer.error.has_value());
  const Error& e = *answer.error;
  EXPECT_EQ(e.code(), Errc::unknown_xid) << e.what();
  EXPECT_EQ(e.server_code(), 1397);
  EXPECT_TRUE(contains(e.hint(), "live session")) << e.hint();
  EXPECT_TRUE(is_listed(*other, xid));
  EXPECT_EQ(committed_rows(1), 0);

  expect_done(owner->commit());
  EXPECT_EQ(committed_rows(1), 1);
  EXPECT_FALSE(is_listed(*other, xid));
}

TEST_F(MariaDBDriver, RecoverReturnsBinaryXidBytesExactly) {
  const Xid foreign{7, run_prefix() + std::string("\0\xff\x01 '", 5), std::string("\x02\0", 2)};
  std::int64_t id = 0;
  {
    auto s = rm_->acquire();
    id = MariaDB::backend_id(*s);
    run(*s, "XA START " + foreign.mysql_literal());
    run(*s, "XA END " + foreign.mysql_literal());
    run(*s, "XA PREPARE " + foreign.mysql_literal());
    s.discard();  // the driver does not know this branch: never pool the session
  }
  auto s = rm_->acquire();
  ASSERT_TRUE(wait_until([&] { return MariaDB::is_gone(*s, id); }, "the server dropped the session"));
  bool found = false;
  for (const PreparedXid& p : s->recover()) {
    if (p.xid != foreign) continue;
    found = true;
    EXPECT_FALSE(p.is_dtx);
    EXPECT_EQ(p.raw, foreign.mysql_literal());
  }
  EXPECT_TRUE(found);
  // It wrote nothing and its session is gone: XA_RBROLLBACK, rolled back.
  EXPECT_EQ(s->rollback_prepared(foreign).outcome, FinishOutcome::rolled_back_by_database);
  EXPECT_FALSE(is_listed(*s, foreign));
}

// Connector/C++ crashed when 32 threads connected at once; the driver
// initialises it once and registers each thread itself.
TEST_F(MariaDBDriver, ThirtyTwoThreadsShareThePoolWithoutCrashing) {
  constexpr int kThreads = 32, kRounds = 5;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        try {
          auto s = rm_->acquire();
          s->begin(fresh_xid("t" + std::to_string(t)));
          run(*s, "INSERT INTO " + table_ + " (id) VALUES (?)", {t * 100 + r});
          s->prepare();
          expect_done(s->commit());
          ++committed;
        } catch (const Error& e) {
          ADD_FAILURE() << "thread " << t << ": " << e.what();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(committed.load(), kThreads * kRounds);
  auto s = rm_->acquire();
  EXPECT_EQ(run(*s, "SELECT count(*) FROM " + table_)[0].as_int64(0), kThreads * kRounds);
  EXPECT_LE(rm_->idle_count(), static_cast<std::size_t>(rm_->config().pool_size));
}

// The driver sends XA END and XA PREPARE in one query; users' strings still
// run one statement per call.
TEST_F(MariaDBDriver, SeveralStatementsInOneCallAreRefused) {
  auto s = rm_->acquire();
  Error outside = error_from([&] { run(*s, "SELECT 1; SELECT 2"); });
  EXPECT_EQ(outside.code(), Errc::usage) << outside.what();
  EXPECT_TRUE(contains(outside.what(), "one statement per")) << outside.what();
  const Xid xid = fresh_xid("multi");
  s->begin(xid);
  insert(*s, 1);
  Error inside = error_from([&] { run(*s, "SELECT 1; XA END 'x'"); });
  EXPECT_EQ(inside.code(), Errc::usage);
  EXPECT_EQ(s->state(), BranchState::active);
  s->prepare();
  EXPECT_TRUE(is_listed(*s, xid));
  expect_done(s->commit());
  EXPECT_EQ(committed_rows(1), 1);
  EXPECT_EQ(run(*s, "SELECT 41 + 1")[0].as_int64(0), 42);  // nothing left unread
}

// A compound statement is one statement, ';' inside or not; every result of
// it is read, so the connection stays usable.
TEST_F(MariaDBDriver, CompoundStatementsRunAndLeaveNothingUnread) {
  auto s = rm_->acquire();
  const std::string proc = table_ + "_p";
  run(*s, "CREATE PROCEDURE " + proc + "() BEGIN INSERT INTO " + table_ + " (id) VALUES (7); SELECT 1; END");
  run(*s, "CALL " + proc + "()");
  EXPECT_EQ(run(*s, "SELECT count(*) FROM " + table_ + " WHERE id = 7")[0].as_int64(0), 1);
  run(*s, "BEGIN NOT ATOMIC INSERT INTO " + table_ + " (id) VALUES (8); INSERT INTO " + table_ +
              " (id) VALUES (9); END");
  EXPECT_EQ(run(*s, "SELECT count(*) FROM " + table_ + " WHERE id IN (8, 9)")[0].as_int64(0), 2);
  run(*s, "DROP PROCEDURE " + proc);
  EXPECT_EQ(run(*s, "SELECT 6 * 7")[0].as_int64(0), 42);
}

// What XA COMMIT from another session answers once the session that
// prepared a branch was killed (KILL CONNECTION), with and without writes.
// recovery/finish_branch.h counts XA_RBROLLBACK at commit as "nothing was
// lost" because of these two: a branch that wrote stays prepared and commits.
class MariaDBKilledPreparer : public MariaDBDriver {
 protected:
  // Prepares `xid` after `statements` on a session, kills that session from
  // another one, waits until the server has ended it, and returns a third.
  SessionLease prepare_and_kill(const Xid& xid, const std::vector<std::string>& statements) {
    auto owner = rm_->acquire();
    const std::int64_t id = MariaDB::backend_id(*owner);
    owner->begin(xid);
    for (const auto& sql : statements) run(*owner, sql);
    owner->prepare();
    auto killer = rm_->acquire();
    MariaDB::kill(*killer, id);
    EXPECT_TRUE(wait_until([&] { return MariaDB::is_gone(*killer, id); }, "the server ended the killed session"));
    owner.discard();
    auto other = rm_->acquire();
    EXPECT_TRUE(is_listed(*other, xid)) << "the killed session's branch should stay prepared";
    return other;
  }
};

TEST_F(MariaDBKilledPreparer, BranchThatWroteIsCommittedAfterItsSessionIsKilled) {
  const Xid xid = fresh_xid("killed-wrote");
  auto other = prepare_and_kill(xid, {"INSERT INTO " + table_ + " (id, v) VALUES (1, 'a')",
                                      "INSERT INTO " + table_ + " (id, v) VALUES (2, 'b')"});
  EXPECT_EQ(committed_rows(1), 0);
  FinishResult r = other->commit_prepared(xid);
  EXPECT_EQ(r.outcome, FinishOutcome::done) << (r.error ? r.error->what() : "");
  EXPECT_EQ(committed_rows(1), 1);
  EXPECT_EQ(committed_rows(2), 1);
  EXPECT_FALSE(is_listed(*other, xid));
}

TEST_F(MariaDBKilledPreparer, BranchThatWroteNothingAnswersRolledBackAfterItsSessionIsKilled) {
  for (const char* what : {"nothing", "read", "locked"}) {
    const Xid xid = fresh_xid(std::string("killed-") + what);
    std::vector<std::string> statements;
    if (std::string(what) == "read") statements = {"SELECT count(*) FROM " + table_};
    if (std::string(what) == "locked") statements = {"SELECT * FROM " + table_ + " FOR UPDATE"};
    auto other = prepare_and_kill(xid, statements);
    FinishResult r = other->commit_prepared(xid);
    EXPECT_EQ(r.outcome, FinishOutcome::rolled_back_by_database) << what;
    ASSERT_TRUE(r.error.has_value()) << what;
    EXPECT_EQ(r.error->server_code(), 1402) << what;
    EXPECT_EQ(r.error->gtrid(), xid.gtrid) << what;
    EXPECT_FALSE(is_listed(*other, xid)) << what;
  }
}

// ---- PostgreSQL ----

class PostgreSQLDriver : public DriverTest<PostgreSQL> {
 protected:
  std::int64_t listed_gids(const Xid& xid) {
    auto s = rm_->acquire();
    return run(*s, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = ?", {xid.postgres_gid()})[0]
        .as_int64(0);
  }
};

// The tear-down's check is real: a branch of this test left prepared (its
// session closed) is a failure naming it, and is rolled back.
TEST_F(PostgreSQLDriver, TearDownFailsATestThatLeavesABranchPrepared) {
  const Xid xid = fresh_xid("left-prepared");
  {
    auto s = rm_->acquire();
    s->begin(xid);
    insert(*s, 1);
    s->prepare();
  }  // a lease holding a branch is closed: the branch stays prepared
  ASSERT_EQ(listed_gids(xid), 1);
  EXPECT_NONFATAL_FAILURE(expect_nothing_left_prepared(), "still has a prepared branch of this test");
  EXPECT_EQ(listed_gids(xid), 0);
  EXPECT_EQ(committed_rows(1), 0);
}

// The trap: in a failed block PostgreSQL answers PREPARE TRANSACTION with
// ROLLBACK and no error. The vote must be no.
TEST_F(PostgreSQLDriver, FailedBlockIsNeverVotedPrepared) {
  auto s = rm_->acquire();
  const Xid xid = fresh_xid("failed-block");
  s->begin(xid);
  insert(*s, 1);
  Error bad = error_from([&] { run(*s, "SELECT 1 / 0"); });
  EXPECT_EQ(bad.code(), Errc::sql);
  EXPECT_EQ(bad.sqlstate(), "22012");
  Error vote = error_from([&] { s->prepare(); });
  EXPECT_EQ(vote.code(), Errc::rolled_back) << vote.what();
  EXPECT_EQ(vote.gtrid(), xid.gtrid);
  EXPECT_EQ(s->state(), BranchState::none);
  EXPECT_EQ(listed_gids(xid), 0);
  EXPECT_EQ(committed_rows(1), 0);
}

// Nothing may end the branch's block behind the driver's back: PREPARE
// TRANSACTION outside a block answers ROLLBACK without an error too. Transaction
// control through execute() is refused and leaves the branch as it was.
TEST_F(PostgreSQLDriver, TransactionControlInsideABranchIsRefusedAndChangesNothing) {
  auto s = rm_->acquire();
  const Xid xid = fresh_xid("control");
  s->begin(xid);
  insert(*s, 1);
  for (const char* sql : {"ROLLBACK", "commit", "  /* c */ END;", "ABORT", "rollback work",
                          "COMMIT AND CHAIN", "BEGIN", "START TRANSACTION",
                          "PREPARE TRANSACTION 'x'", "; -- x\n ROLLBACK PREPARED 'x'"}) {
    Error e = error_from([&] { run(*s, sql); });
    EXPECT_EQ(e.code(), Errc::usage) << sql << ": " << e.what();
    EXPECT_TRUE(contains(e.what(), "inside a branch")) << e.what();
    EXPECT_EQ(e.gtrid(), xid.gtrid) << e.what();
    EXPECT_EQ(s->state(), BranchState::active) << sql;
  }
  // One statement per call still allows a trailing ';', comments and DO.
  EXPECT_EQ(run(*s, "SELECT 1; -- done")[0].as_int64(0), 1);
  run(*s, "DO $$BEGIN PERFORM 1; END$$");
  // A savepoint rolled back to is not transaction control.
  run(*s, "SAVEPOINT sp");
  insert(*s, 2);
  run(*s, "ROLLBACK TO SAVEPOINT sp");
  s->prepare();
  EXPECT_EQ(listed_gids(xid), 1);
  expect_done(s->commit());
  EXPECT_EQ(committed_rows(1), 1);
  EXPECT_EQ(committed_rows(2), 0);
}

// Inside a branch one call runs one statement (extended protocol), so no
// COMMIT hides behind a harmless first statement; the attempt fails the
// branch, which then only rolls back.
TEST_F(PostgreSQLDriver, SeveralStatementsInOneCallAreRefusedInsideABranch) {
  auto s = rm_->acquire();
  const Xid xid = fresh_xid("multi");
  s->begin(xid);
  insert(*s, 1);
  Error e = error_from([&] { run(*s, "SELECT 1; COMMIT"); });
  EXPECT_EQ(e.code(), Errc::sql) << e.what();
  EXPECT_EQ(error_from([&] { s->prepare(); }).code(), Errc::rolled_back);
  EXPECT_EQ(s->state(), BranchState::none);
  EXPECT_EQ(listed_gids(xid), 0);
  EXPECT_EQ(committed_rows(1), 0);
  // Outside a branch the simple protocol still takes several statements.
  EXPECT_EQ(run(*s, "SELECT 1; SELECT 2")[0].as_int64(0), 2);
}

// A connection lost between statements fails the next statement and the
// branch; nothing of the branch runs in autocommit on a new connection.
TEST_F(PostgreSQLDriver, ALostConnectionIsNeverSilentlyReplaced) {
  auto s = rm_->acquire();
  const Xid xid = fresh_xid("reconnect");
  s->begin(xid);
  insert(*s, 1);
  const std::int64_t pid = PostgreSQL::backend_id(*s);
  {
    auto killer = rm_->acquire();
    ASSERT_NO_FATAL_FAILURE(PostgreSQL::kill(*killer, pid));
    ASSERT_TRUE(wait_until([&] { return PostgreSQL::is_gone(*killer, pid); }, "the backend is gone"));
  }
  Error e = error_from([&] { insert(*s, 2); });
  EXPECT_EQ(e.code(), Errc::unavailable) << e.what();
  EXPECT_TRUE(s->broken());
  EXPECT_EQ(error_from([&] { s->prepare(); }).code(), Errc::unavailable);
  EXPECT_EQ(listed_gids(xid), 0);
  EXPECT_EQ(committed_rows(1), 0);
  EXPECT_EQ(committed_rows(2), 0);  // not run in autocommit on a new connection
}

TEST_F(PostgreSQLDriver, DisabledPreparedTransactionsAreAMisconfiguration) {
  auto rm = make_resource_manager(test::postgres_noprep_resource("pg_noprep"));
  auto s = rm->acquire();
  const Xid xid = fresh_xid("noprep");
  s->begin(xid);
  run(*s, "SELECT 1");
  Error e = error_from([&] { s->prepare(); });
  EXPECT_EQ(e.code(), Errc::misconfigured) << e.what();
  const std::string m = e.what();
  EXPECT_TRUE(contains(m, "max_prepared_transactions")) << m;
  EXPECT_TRUE(contains(m, "pg_noprep")) << m;
  EXPECT_TRUE(contains(m, xid.gtrid)) << m;
  EXPECT_TRUE(contains(e.hint(), "restart")) << e.hint();
  EXPECT_EQ(s->state(), BranchState::none);
  EXPECT_FALSE(s->broken());
  EXPECT_EQ(run(*s, "SELECT count(*) FROM pg_prepared_xacts")[0].as_int64(0), 0);
}

TEST_F(PostgreSQLDriver, ForeignGidsAreListedAsNotOurs) {
  const std::string gid = run_prefix() + "-foreign";
  {
    auto s = rm_->acquire();
    run(*s, "BEGIN");
    run(*s, "INSERT INTO " + table_ + " (id) VALUES (1)");
    run(*s, "PREPARE TRANSACTION '" + gid + "'");
  }
  auto s = rm_->acquire();
  std::optional<PreparedXid> found;
  for (PreparedXid& p : s->recover())
    if (p.raw == gid) found = p;
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(found->is_dtx);
  EXPECT_EQ(found->xid.gtrid, gid);
  EXPECT_EQ(found->owner, "dtx");
  ASSERT_TRUE(found->prepared_at.has_value());
  EXPECT_LT(std::chrono::system_clock::now() - *found->prepared_at, 10min);
  expect_done(s->rollback_prepared(found->xid));
  EXPECT_EQ(committed_rows(1), 0);
}

}  // namespace
}  // namespace dtx

// ---- statements the drivers refuse or explain ----

namespace dtx {
namespace {

// An empty statement (nothing but whitespace, comments and ';') is the same
// usage error on both databases, before anything is sent, and the branch
// goes on as if it had not been tried.
TYPED_TEST(DriverTest, EmptyStatementIsAUsageErrorThatLeavesTheBranchIntact) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("empty");
  s->begin(xid);
  this->insert(*s, 1);
  for (const char* sql : {"", "   ", ";", " ;\n; ", "-- nothing\n", "/* nothing */ ;"}) {
    Error e = error_from([&] { run(*s, sql); });
    EXPECT_EQ(e.code(), Errc::usage) << "'" << sql << "': " << e.what();
    EXPECT_TRUE(contains(e.what(), "empty statement")) << e.what();
    EXPECT_EQ(e.resource(), TypeParam::config().name) << e.what();
    EXPECT_EQ(e.gtrid(), xid.gtrid) << e.what();
    EXPECT_EQ(s->state(), BranchState::active);
  }
  this->expect_branch_goes_on(*s);
  EXPECT_EQ(error_from([&] { run(*s, " "); }).code(), Errc::usage);  // outside a branch too
}

// COPY ... FROM STDIN / TO STDOUT would leave the connection in the COPY
// sub-protocol, which dtx does not speak: refused inside a branch, saying
// what to use instead, and the branch is unharmed.
TEST_F(PostgreSQLDriver, CopyInsideABranchIsRefusedSayingWhatToDo) {
  auto s = rm_->acquire();
  const Xid xid = fresh_xid("copy");
  s->begin(xid);
  insert(*s, 1);
  for (const std::string& sql : std::vector<std::string>{
           "COPY " + table_ + " FROM STDIN", "copy (SELECT 1) TO stdout",
           "/* x */ Copy " + table_ + " (id) from stdin with (format csv)"}) {
    Error e = error_from([&] { run(*s, sql); });
    EXPECT_EQ(e.code(), Errc::usage) << sql << ": " << e.what();
    EXPECT_TRUE(contains(e.what(), "COPY")) << e.what();
    EXPECT_TRUE(contains(e.what(), "INSERT")) << "says what to do: " << e.what();
    EXPECT_EQ(e.gtrid(), xid.gtrid);
    EXPECT_EQ(s->state(), BranchState::active);
  }
  expect_branch_goes_on(*s);
}

// A branch whose statement ends its own backend loses the connection; the
// message says so, and that PostgreSQL rolled the branch back.
TEST_F(PostgreSQLDriver, TerminatingItsOwnBackendSaysTheBranchWasRolledBack) {
  auto s = rm_->acquire();
  const Xid xid = fresh_xid("selfkill");
  s->begin(xid);
  insert(*s, 1);
  Error e = error_from([&] { run(*s, "SELECT pg_terminate_backend(pg_backend_pid())"); });
  const std::string m = e.what();
  EXPECT_EQ(e.code(), Errc::unavailable) << m;
  EXPECT_TRUE(contains(m, "connection")) << m;
  EXPECT_TRUE(contains(m, "rolled back by the database")) << m;
  EXPECT_EQ(e.resource(), "pg") << m;
  EXPECT_EQ(e.gtrid(), xid.gtrid) << m;
  EXPECT_TRUE(s->broken());
  EXPECT_EQ(listed_gids(xid), 0);
  EXPECT_EQ(committed_rows(1), 0);
}

// ---- deadlines ----

// A statement still waiting for a row lock at the branch's deadline is
// cancelled: Errc::timeout naming the resource, the gtrid and the statement,
// soon after the deadline; the branch can then only roll back, and the
// session serves the next branch with no deadline left over.
TYPED_TEST(DriverTest, StatementWaitingForALockEndsAtTheDeadline) {
  auto holder = this->rm_->acquire();
  auto waiter = this->rm_->acquire();
  this->insert(*holder, 1);
  holder->begin(fresh_xid("holder"));
  const std::string update = "UPDATE " + this->table_ + " SET n = ? WHERE id = 1";
  run(*holder, update, {1});
  const Xid xid = fresh_xid("waiter");
  waiter->begin(xid);
  const auto start = std::chrono::steady_clock::now();
  waiter->set_deadline(start + 300ms);
  auto waited = std::async(std::launch::async,
                           [&] { return error_from([&] { run(*waiter, update, {2}); }); });
  if (waited.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "the statement outlived its deadline by 10 s";
    holder->rollback();  // frees it
  }
  const Error e = waited.get();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 1500ms);
  EXPECT_GE(took, 300ms);
  const std::string m = e.what();
  EXPECT_EQ(e.code(), Errc::timeout) << m;
  EXPECT_EQ(e.resource(), TypeParam::config().name) << m;
  EXPECT_EQ(e.gtrid(), xid.gtrid) << m;
  EXPECT_TRUE(contains(m, update)) << m;
  EXPECT_FALSE(waiter->broken());
  EXPECT_EQ(error_from([&] { waiter->prepare(); }).code(), Errc::rolled_back);
  EXPECT_EQ(waiter->state(), BranchState::none);
  holder->prepare();
  expect_done(holder->commit());
  auto observer = this->rm_->acquire();
  EXPECT_EQ(run(*observer, "SELECT n FROM " + this->table_ + " WHERE id = 1")[0].as_int64(0), 1);

  waiter->begin(fresh_xid("waiter-after"));
  run(*waiter, update, {3});  // no deadline carried over from the last branch
  waiter->commit_one_phase();
  EXPECT_EQ(run(*observer, "SELECT n FROM " + this->table_ + " WHERE id = 1")[0].as_int64(0), 3);
}

// Past the deadline a statement is not sent at all; the branch can only roll back.
TYPED_TEST(DriverTest, StatementAfterTheDeadlineIsNotRun) {
  auto s = this->rm_->acquire();
  const Xid xid = fresh_xid("late");
  s->begin(xid);
  s->set_deadline(std::chrono::steady_clock::now() - 1ms);
  Error e = error_from([&] { this->insert(*s, 1); });
  EXPECT_EQ(e.code(), Errc::timeout) << e.what();
  EXPECT_TRUE(contains(e.what(), "not run")) << e.what();
  EXPECT_EQ(e.gtrid(), xid.gtrid);
  EXPECT_EQ(error_from([&] { s->commit_one_phase(); }).code(), Errc::rolled_back);
  EXPECT_EQ(this->committed_rows(1), 0);
}

// Deferred constraints are checked at PREPARE TRANSACTION, where the check can
// wait for a row lock: that wait ends at the deadline too, and the branch is
// rolled back, never prepared.
TEST_F(PostgreSQLDriver, PrepareWaitingOnADeferredConstraintEndsAtTheDeadline) {
  const std::string child = table_ + "_c";
  auto holder = rm_->acquire();
  auto s = rm_->acquire();
  insert(*holder, 1);
  run(*holder, "CREATE TABLE " + child + " (id BIGINT PRIMARY KEY, parent BIGINT REFERENCES " +
                   table_ + " (id) DEFERRABLE INITIALLY DEFERRED)");
  holder->begin(fresh_xid("parent-holder"));
  run(*holder, "UPDATE " + table_ + " SET id = 2 WHERE id = 1");  // locks the parent row
  const Xid xid = fresh_xid("deferred");
  s->begin(xid);
  run(*s, "INSERT INTO " + child + " VALUES (1, 1)");  // checked at the end of the block
  const auto start = std::chrono::steady_clock::now();
  s->set_deadline(start + 300ms);
  auto voted = std::async(std::launch::async, [&] { return error_from([&] { s->prepare(); }); });
  if (voted.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "PREPARE TRANSACTION outlived its deadline by 10 s";
    holder->rollback();
  }
  const Error e = voted.get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(e.code(), Errc::timeout) << e.what();
  EXPECT_TRUE(contains(e.what(), "PREPARE TRANSACTION")) << e.what();
  EXPECT_EQ(e.gtrid(), xid.gtrid);
  EXPECT_EQ(s->state(), BranchState::none);
  EXPECT_FALSE(s->broken());
  EXPECT_EQ(listed_gids(xid), 0);
  holder->rollback();
  EXPECT_EQ(run(*s, "SELECT count(*) FROM " + child)[0].as_int64(0), 0);
  run(*s, "DROP TABLE " + child);
}

// The watchdog's thread is never joined at exit: once it has cancelled a
// MariaDB statement it is registered with Connector/C++, whose per-thread
// cleanup crashed when it ran after the library's globals were destroyed —
// which they were first when the watchdog had started before the process
// first used MariaDB (dtx exec pg=... my=...).
TEST(DeadlineWatchdog, ProcessExitsCleanlyAfterCancellingAMariaDBStatement) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child runs threads
  EXPECT_EXIT(
      {
        auto pg = make_resource_manager(PostgreSQL::config());
        auto first = pg->acquire();
        first->begin(fresh_xid("exit-first"));
        first->set_deadline(std::chrono::steady_clock::now() + 10s);
        run(*first, "SELECT 1");  // the watchdog starts here
        first->rollback();
        auto rm = make_resource_manager(MariaDB::config());
        auto holder = rm->acquire();
        auto waiter = rm->acquire();
        const std::string table = "drv_exit_" + random_hex(10);
        run(*holder, "CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, n BIGINT)");
        run(*holder, "INSERT INTO " + table + " VALUES (1, 0)");
        holder->begin(fresh_xid("exit-holder"));
        run(*holder, "UPDATE " + table + " SET n = 1 WHERE id = 1");
        waiter->begin(fresh_xid("exit-waiter"));
        waiter->set_deadline(std::chrono::steady_clock::now() + 200ms);
        const std::string update = "UPDATE " + table + " SET n = 2 WHERE id = 1";
        const Errc code = error_from([&] { run(*waiter, update); }).code();
        waiter->rollback();
        holder->rollback();
        run(*holder, "DROP TABLE " + table);
        std::exit(code == Errc::timeout ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace dtx
