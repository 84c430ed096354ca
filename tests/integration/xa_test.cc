// Global transactions across the real MariaDB and PostgreSQL servers started
// by scripts/db.sh. Every test checks the data on both databases, and that
// nothing of its own is left prepared.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <random>
#include <thread>

#include "coordinator/coordinator_core.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/test_env.h"

namespace dtx {
namespace {

constexpr int kAccounts = 10;
constexpr std::int64_t kInitialBalance = 1000;

// Runs setup/inspection statements in autocommit, outside any global transaction.
class Direct {
 public:
  explicit Direct(const ResourceConfig& rc) : rm_(make_resource_manager(rc)) {}
  Result run(std::string_view sql, std::initializer_list<Param> params = {}) {
    auto s = rm_->acquire();
    return s->execute(sql, std::span<const Param>(params.begin(), params.size()));
  }
  std::vector<PreparedXid> prepared() { return rm_->acquire()->recover(); }
  std::int64_t scalar(std::string_view sql, std::initializer_list<Param> params = {}) {
    Result r = run(sql, params);
    return r[0].as_int64(0);
  }

 private:
  std::unique_ptr<ResourceManager> rm_;
};

class XaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    coordinator_id_ = "xa" + std::to_string(rd() % 1000000);
    config_.coordinator.id = coordinator_id_;
    config_.coordinator.log_dir = log_dir_ = test::fresh_dir("xa");
    config_.resources["my"] = test::mysql_resource("my");
    config_.resources["pg"] = test::postgres_resource("pg");
    // Each test process gets its own tables so ctest -j runs them side by side.
    table_ = "acct_" + coordinator_id_;
    my_.run("DROP TABLE IF EXISTS " + table_);
    pg_.run("DROP TABLE IF EXISTS " + table_);
    my_.run("CREATE TABLE " + table_ +
            " (id INT PRIMARY KEY, owner VARCHAR(64) NOT NULL, balance BIGINT NOT NULL "
            "CHECK (balance >= 0)) ENGINE=InnoDB");
    pg_.run("CREATE TABLE " + table_ +
            " (id INT PRIMARY KEY, owner VARCHAR(64) NOT NULL, balance BIGINT NOT NULL "
            "CHECK (balance >= 0))");
    for (int i = 1; i <= kAccounts; ++i) {
      std::string ins = "INSERT INTO " + table_ + " VALUES (?, ?, ?)";
      my_.run(ins, {i, "owner" + std::to_string(i), kInitialBalance});
      pg_.run(ins, {i, "owner" + std::to_string(i), kInitialBalance});
    }
  }

  void TearDown() override {
    for (Direct* d : {&my_, &pg_})
      for (const auto& p : d->prepared())
        EXPECT_FALSE(p.is_dtx && p.xid.gtrid.starts_with(coordinator_id_ + "."))
            << "left prepared: " << p.raw;
    my_.run("DROP TABLE IF EXISTS " + table_);
    pg_.run("DROP TABLE IF EXISTS " + table_);
    std::filesystem::remove_all(log_dir_);
  }

  // Cancels whatever statement another connection is running on this test's
  // table, on both databases: frees a test whose lock wait was not bounded
  // (so it fails instead of hanging).
  void cancel_waits_on_our_table() {
    for (const auto& row : pg_.run("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                   "AND state = 'active' AND query LIKE ?",
                                   {"%" + table_ + "%"}))
      pg_.run("SELECT pg_cancel_backend(CAST(? AS integer))", {row.as_int64(0)});
    for (const auto& row : my_.run("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> "
                                   "CONNECTION_ID() AND INFO LIKE ?",
                                   {"%" + table_ + "%"}))
      my_.run("KILL QUERY " + std::to_string(row.as_int64(0)));
  }

  // Waits for `work` up to `patience`; if it is still running then, frees it
  // (see above) and reports a failure. Returns how long `work` took.
  template <typename F>
  std::chrono::milliseconds bounded(F work, std::chrono::milliseconds patience) {
    const auto start = std::chrono::steady_clock::now();
    auto done = std::async(std::launch::async, work);
    if (done.wait_for(patience) != std::future_status::ready) {
      ADD_FAILURE() << "still waiting after " << patience.count() << " ms; cancelling it";
      while (done.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready)
        cancel_waits_on_our_table();
    }
    done.get();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  // A statement waiting for a row lock that another connection holds ends
  // when the transaction's time is up (PostgreSQL has no lock timeout of its
  // own; MariaDB's innodb_lock_wait_timeout is 50 s), as Errc::timeout naming
  // the resource, the global id and the statement, and the transaction (with
  // its branch on the other database) is rolled back.
  void expect_lock_wait_bounded(Coordinator& coord, const std::string& resource) {
    const std::string other = resource == "my" ? "pg" : "my";
    auto holder_rm = make_resource_manager(config_.resources.at(resource));
    auto holder = holder_rm->acquire();
    holder->begin(Xid::make(coordinator_id_ + ".holder", "b"));
    const Param row1[] = {1, 1};
    holder->execute(update("+"), row1);  // holds row 1

    Transaction tx = coord.begin({.timeout = std::chrono::milliseconds(500)});
    tx.execute(other, update("+"), {1, 2});
    std::optional<Error> error;
    const auto elapsed = bounded(
        [&] {
          try {
            tx.execute(resource, update("+"), {1, 1});
          } catch (const Error& e) {
            error = e;
          }
        },
        std::chrono::milliseconds(5000));
    holder->rollback();
    EXPECT_LT(elapsed.count(), 2000) << "the lock wait outlived the 500 ms timeout";
    ASSERT_TRUE(error.has_value()) << "the blocked statement should fail";
    const std::string m = error->what();
    EXPECT_EQ(error->code(), Errc::timeout) << m;
    EXPECT_EQ(error->resource(), resource) << m;
    EXPECT_EQ(error->gtrid(), tx.id()) << m;
    EXPECT_NE(m.find(update("+")), std::string::npos) << "names the statement: " << m;
    EXPECT_EQ(tx.state(), TransactionState::rolled_back);
    std::cout << "ended after " << elapsed.count() << " ms: " << m << "\n";
    Direct& here = resource == "my" ? my_ : pg_;
    Direct& there = resource == "my" ? pg_ : my_;
    EXPECT_EQ(balance(here, 1), kInitialBalance);
    EXPECT_EQ(balance(there, 2), kInitialBalance);
  }

  std::int64_t balance(Direct& d, int id) {
    return d.scalar("SELECT balance FROM " + table_ + " WHERE id = ?", {id});
  }
  std::int64_t total() {
    return my_.scalar("SELECT SUM(balance) FROM " + table_) + pg_.scalar("SELECT SUM(balance) FROM " + table_);
  }
  std::string update(const char* sign) {
    return "UPDATE " + table_ + " SET balance = balance " + sign + " ? WHERE id = ?";
  }
  // Zhang San on MariaDB pays Li Si on PostgreSQL.
  void transfer(Transaction& tx, int from, int to, std::int64_t amount) {
    tx.execute("my", update("-"), {amount, from});
    tx.execute("pg", update("+"), {amount, to});
  }

  std::string coordinator_id_;
  std::filesystem::path log_dir_;
  Config config_;
  std::string table_;
  Direct my_{test::mysql_resource()};
  Direct pg_{test::postgres_resource()};
};

TEST_F(XaTest, CommitAcrossBothDatabases) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  transfer(tx, 1, 2, 100);
  tx.commit();
  EXPECT_EQ(tx.state(), TransactionState::committed);
  EXPECT_EQ(balance(my_, 1), kInitialBalance - 100);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance + 100);
}

TEST_F(XaTest, RollbackUndoesBothDatabases) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  transfer(tx, 1, 2, 100);
  tx.rollback();
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
}

TEST_F(XaTest, DestroyedTransactionRollsBackBothDatabases) {
  Coordinator coord(config_);
  {
    Transaction tx = coord.begin();
    transfer(tx, 1, 2, 100);
  }
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
}

TEST_F(XaTest, MysqlSqlErrorRollsBackPostgres) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("pg", update("+"), {100, 2});
  try {
    tx.execute("my", "UPDATE " + table_ + " SET no_such_column = 1");
    FAIL() << "the statement should fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::sql);
    EXPECT_EQ(e.resource(), "my");
    EXPECT_EQ(e.gtrid(), tx.id());
    EXPECT_EQ(e.server_code(), 1054);  // ER_BAD_FIELD_ERROR
    EXPECT_NE(e.server_message().find("no_such_column"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tx.commit(), Error);
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
}

TEST_F(XaTest, PostgresConstraintViolationRollsBackMysql) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("my", update("-"), {100, 1});
  try {
    tx.execute("pg", update("-"), {kInitialBalance + 1, 2});  // CHECK (balance >= 0)
    FAIL() << "the CHECK constraint should fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.resource(), "pg");
    EXPECT_EQ(e.gtrid(), tx.id());
    EXPECT_EQ(e.sqlstate(), "23514");  // check_violation
  }
  tx.rollback();
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
}

TEST_F(XaTest, MysqlConstraintViolationRollsBackPostgres) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("pg", update("+"), {5000, 2});
  EXPECT_THROW(tx.execute("my", update("-"), {5000, 1}), Error);  // overdraft
  EXPECT_THROW(tx.commit(), Error);
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
}

// The three scenarios of the bank example (examples/bank_transfer.cpp).
TEST_F(XaTest, BankTransferSucceeds) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  EXPECT_EQ(tx.execute("my", update("-"), {300, 1}).affected_rows(), 1u);
  EXPECT_EQ(tx.execute("pg", update("+"), {300, 1}).affected_rows(), 1u);
  tx.commit();
  EXPECT_EQ(balance(my_, 1), kInitialBalance - 300);
  EXPECT_EQ(balance(pg_, 1), kInitialBalance + 300);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
}

TEST_F(XaTest, BankTransferWhoseBank2PartFailsRollsBackBank1) {
  Coordinator coord(config_);
  {
    Transaction tx = coord.begin();
    EXPECT_EQ(tx.execute("my", update("-"), {300, 1}).affected_rows(), 1u);
    // The credit finds no account: the application abandons the transaction.
    EXPECT_EQ(tx.execute("pg", update("+"), {300, 999}).affected_rows(), 0u);
  }
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
}

TEST_F(XaTest, BankTransferWhoseBank1PartFailsRollsBackBank2) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("pg", update("+"), {300, 1});
  EXPECT_THROW(tx.execute("my", update("-"), {kInitialBalance * 10, 1}), Error);
  EXPECT_THROW(tx.commit(), Error);
  EXPECT_EQ(balance(pg_, 1), kInitialBalance);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
}

TEST_F(XaTest, ThirtyTwoConcurrentTransfersKeepTheTotal) {
  Coordinator coord(config_);
  constexpr int kClients = 32, kTransfersEach = 10;
  std::atomic<int> committed{0}, retried{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      std::mt19937 rng(c);
      for (int i = 0; i < kTransfersEach; ++i) {
        int from = 1 + rng() % kAccounts, to = 1 + rng() % kAccounts;
        bool to_pg = rng() % 2;
        for (;;) {
          try {
            Transaction tx = coord.begin();
            // Always MariaDB first, then PostgreSQL: no cycle of waits can
            // span the two servers, which neither could detect.
            tx.execute("my", update(to_pg ? "-" : "+"), {1, to_pg ? from : to});
            tx.execute("pg", update(to_pg ? "+" : "-"), {1, to_pg ? to : from});
            tx.commit();
            ++committed;
            break;
          } catch (const Error& e) {
            if (e.code() != Errc::retryable) {
              ADD_FAILURE() << e.what();
              return;
            }
            ++retried;  // deadlock between two transfers: the loser retries
          }
        }
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(committed.load(), kClients * kTransfersEach);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
  std::cout << "committed " << committed << " transfers, " << retried << " deadlock retries\n";
}

TEST_F(XaTest, SingleBranchCommitsInOnePhaseWithoutLogging) {
  auto core = std::make_shared<detail::CoordinatorCore>(config_);
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("pg", update("+"), {7, 3});
  tx.commit();
  EXPECT_EQ(balance(pg_, 3), kInitialBalance + 7);
  EXPECT_EQ(core->log().sync_count(), 0u);

  Transaction tx2 = coord.begin();
  tx2.execute("my", update("+"), {7, 3});
  tx2.commit();
  EXPECT_EQ(balance(my_, 3), kInitialBalance + 7);
  EXPECT_EQ(core->log().sync_count(), 0u);
}

TEST_F(XaTest, TwoBranchCommitForcesOneLogRecord) {
  auto core = std::make_shared<detail::CoordinatorCore>(config_);
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  transfer(tx, 4, 4, 10);
  tx.commit();
  EXPECT_EQ(core->log().sync_count(), 1u);
  EXPECT_EQ(core->log().open_decisions(), 0u);
}

TEST_F(XaTest, FailedPostgresBlockIsNeverPrepared) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("my", update("-"), {1, 1});
  tx.execute("pg", update("+"), {1, 1});
  EXPECT_THROW(tx.execute("pg", "SELECT 1/0"), Error);  // the PostgreSQL block is now failed
  EXPECT_THROW(tx.commit(), Error);
  Direct pg(test::postgres_resource());
  for (const auto& p : pg.prepared()) EXPECT_NE(p.xid.gtrid, tx.id()) << p.raw;
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(balance(pg_, 1), kInitialBalance);
}

TEST_F(XaTest, DisabledPreparedTransactionsGiveAClearError) {
  config_.resources["pg_noprep"] = test::postgres_noprep_resource("pg_noprep");
  Direct noprep(test::postgres_noprep_resource());
  noprep.run("DROP TABLE IF EXISTS " + table_);
  noprep.run("CREATE TABLE " + table_ + " (id INT PRIMARY KEY, balance BIGINT)");
  noprep.run("INSERT INTO " + table_ + " VALUES (1, 0)");
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("my", update("-"), {5, 1});
  tx.execute("pg_noprep", update("+"), {5, 1});
  try {
    tx.commit();
    FAIL() << "commit should fail on a server with max_prepared_transactions = 0";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.code(), Errc::misconfigured) << m;
    EXPECT_EQ(e.resource(), "pg_noprep") << m;
    EXPECT_EQ(e.gtrid(), tx.id()) << m;
    EXPECT_NE(m.find("max_prepared_transactions"), std::string::npos) << m;
    EXPECT_NE(m.find("restart"), std::string::npos) << m;
  }
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(noprep.scalar("SELECT balance FROM " + table_ + " WHERE id = 1"), 0);
  noprep.run("DROP TABLE " + table_);
}

TEST_F(XaTest, UnreachableDatabaseNamesResourceAndAddress) {
  ResourceConfig dead = test::postgres_resource("dead");
  dead.port = 1;  // nothing listens there
  dead.password = "never-show-this-secret";
  dead.connect_timeout_s = 2;
  config_.resources["dead"] = dead;
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("my", update("-"), {1, 1});
  try {
    tx.execute("dead", "SELECT 1");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.code(), Errc::unavailable) << m;
    EXPECT_EQ(e.resource(), "dead") << m;
    EXPECT_EQ(e.gtrid(), tx.id()) << m;
    EXPECT_NE(m.find("127.0.0.1:1"), std::string::npos) << m;
    EXPECT_EQ(m.find(dead.password), std::string::npos) << "password leaked: " << m;
  }
  tx.rollback();
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
}

TEST_F(XaTest, SeveralStatementsOnOneBranchRunInOrder) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("my", update("-"), {10, 5});
  tx.execute("my", update("-"), {10, 5});
  tx.execute("pg", update("+"), {20, 5});
  Result r = tx.execute("my", "SELECT balance FROM " + table_ + " WHERE id = ?", {5});
  EXPECT_EQ(r[0].as_int64(0), kInitialBalance - 20);  // the branch sees its own writes
  tx.commit();
  EXPECT_EQ(balance(my_, 5), kInitialBalance - 20);
  EXPECT_EQ(balance(pg_, 5), kInitialBalance + 20);
}

// ---- lock waits end at the transaction's timeout ----

TEST_F(XaTest, PostgresRowLockWaitEndsAtTheTransactionTimeout) {
  Coordinator coord(config_);
  expect_lock_wait_bounded(coord, "pg");
}

TEST_F(XaTest, MariaDBRowLockWaitEndsAtTheTransactionTimeout) {
  Coordinator coord(config_);
  expect_lock_wait_bounded(coord, "my");
}

// Two transactions lock rows in opposite order across the two databases: a
// cycle of waits neither database can see. Both end within their 1000 ms
// timeout plus a margin, and the money is all there.
TEST_F(XaTest, CrossDatabaseDeadlockEndsWithinTheTimeout) {
  Coordinator coord(config_);
  const auto timeout = std::chrono::milliseconds(1000);
  Transaction a = coord.begin({.timeout = timeout});
  Transaction b = coord.begin({.timeout = timeout});
  a.execute("my", update("-"), {10, 1});  // a holds my row 1
  b.execute("pg", update("-"), {10, 2});  // b holds pg row 2
  auto second_half = [this](Transaction& tx, const char* resource, int row) {
    return [this, &tx, resource, row] {
      try {
        tx.execute(resource, update("+"), {10, row});
        tx.commit();
      } catch (const Error& e) {
        EXPECT_TRUE(e.code() == Errc::timeout || e.code() == Errc::retryable) << e.what();
      }
    };
  };
  std::chrono::milliseconds a_took{}, b_took{};
  std::thread other(
      [&] { b_took = bounded(second_half(b, "my", 1), std::chrono::milliseconds(6000)); });
  a_took = bounded(second_half(a, "pg", 2), std::chrono::milliseconds(6000));
  other.join();
  std::cout << "ended after " << a_took.count() << " and " << b_took.count() << " ms\n";
  EXPECT_LT(a_took.count(), 2500);
  EXPECT_LT(b_took.count(), 2500);
  EXPECT_NE(a.state(), TransactionState::active);
  EXPECT_NE(b.state(), TransactionState::active);
  EXPECT_NE(a.state(), TransactionState::in_doubt);
  EXPECT_NE(b.state(), TransactionState::in_doubt);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
}

}  // namespace
}  // namespace dtx
