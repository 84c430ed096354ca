// AT mode against the real MariaDB and PostgreSQL servers: phase 1 local
// commit with an undo record and global locks, phase 2 forget or exact undo,
// the dirty-write check, the late-phase-1 marker, lock waits, concurrency,
// and global transactions mixing AT and XA branches.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "coordinator/coordinator_core.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/test_env.h"
#include "undo-log/at_session.h"

namespace dtx {
namespace {

class Direct {
 public:
  explicit Direct(const ResourceConfig& rc) : rm_(make_resource_manager(rc)) {}
  Result run(std::string_view sql, std::initializer_list<Param> params = {}) {
    auto s = rm_->acquire();
    return s->execute(sql, std::span<const Param>(params.begin(), params.size()));
  }
  std::int64_t scalar(std::string_view sql, std::initializer_list<Param> params = {}) {
    return run(sql, params)[0].as_int64(0);
  }
  // Every row of `table` as text, ordered by the first column: for exact comparisons.
  std::vector<std::vector<std::optional<std::string>>> dump(const std::string& table, const std::string& cols) {
    Result r = run("SELECT " + cols + " FROM " + table + " ORDER BY 1");
    std::vector<std::vector<std::optional<std::string>>> out;
    for (const auto& row : r) {
      std::vector<std::optional<std::string>> cells;
      for (std::size_t i = 0; i < row.size(); ++i) cells.push_back(row.cell(i));
      out.push_back(std::move(cells));
    }
    return out;
  }

 private:
  std::unique_ptr<ResourceManager> rm_;
};

struct Db {
  const char* name;
  bool mysql;
};

class AtSessionTest : public ::testing::TestWithParam<Db> {
 protected:
  void SetUp() override {
    std::random_device rd;
    id_ = "at" + std::to_string(rd() % 1000000);
    rc_ = GetParam().mysql ? test::mysql_resource("my") : test::postgres_resource("pg");
    rc_.mode = BranchMode::at;
    rc_.lock_wait_timeout = std::chrono::milliseconds(300);
    direct_ = std::make_unique<Direct>(rc_);
    table_ = "at_" + id_;
    direct_->run("DROP TABLE IF EXISTS " + table_);
    direct_->run("CREATE TABLE " + table_ + " (id INT PRIMARY KEY, name VARCHAR(32), n BIGINT NOT NULL)");
    for (int i = 1; i <= 5; ++i)
      direct_->run("INSERT INTO " + table_ + " VALUES (?, ?, ?)", {i, "row" + std::to_string(i), i * 100});
    rm_ = undo::make_at_resource_manager(rc_);
  }
  void TearDown() override { direct_->run("DROP TABLE IF EXISTS " + table_); }

  Xid xid(const std::string& tag) { return Xid::make(id_ + "." + tag, rc_.name); }
  auto dump() { return direct_->dump(table_, "id, name, n"); }
  std::int64_t records(const Xid& x) {
    return direct_->scalar("SELECT COUNT(*) FROM dtx_undo_log WHERE gtrid = ? AND branch = ?", {x.gtrid, x.bqual});
  }
  std::int64_t locks(const Xid& x) {
    return direct_->scalar("SELECT COUNT(*) FROM dtx_global_lock WHERE gtrid = ?", {x.gtrid});
  }

  std::string id_;
  ResourceConfig rc_;
  std::unique_ptr<Direct> direct_;
  std::string table_;
  std::unique_ptr<ResourceManager> rm_;
};

INSTANTIATE_TEST_SUITE_P(Both, AtSessionTest, ::testing::Values(Db{"MariaDB", true}, Db{"PostgreSQL", false}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_P(AtSessionTest, Phase1CommitsLocallyWithARecordAndLocksAndPhase2CommitForgetsThem) {
  auto s = rm_->acquire();
  const Xid x = xid("c");
  s->begin(x);
  EXPECT_EQ(s->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id IN (1, 2)", {}).affected_rows(), 2u);
  s->execute("INSERT INTO " + table_ + " VALUES (10, 'new', 1000)", {});
  s->execute("DELETE FROM " + table_ + " WHERE id = 5", {});
  s->prepare();
  // Committed locally: visible to everyone, with its record and its locks.
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 1"), 101);
  EXPECT_EQ(records(x), 1);
  EXPECT_EQ(locks(x), 4);  // rows 1, 2, 10, 5
  EXPECT_EQ(s->commit().outcome, FinishOutcome::done);
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
  EXPECT_EQ(direct_->scalar("SELECT COUNT(*) FROM " + table_), 5);
}

TEST_P(AtSessionTest, RollbackAfterPhase1RestoresEveryRowExactly) {
  const auto before = dump();
  auto s = rm_->acquire();
  const Xid x = xid("r");
  s->begin(x);
  s->execute("UPDATE " + table_ + " SET n = n * 2, name = NULL WHERE id <= 2", {});
  s->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id = 1", {});  // the same row again
  s->execute("INSERT INTO " + table_ + " VALUES (?, ?, ?), (?, ?, ?)", std::vector<Param>{20, "a", 1, 21, "b", 2});
  s->execute("DELETE FROM " + table_ + " WHERE id = 21", {});          // inserted, then deleted
  s->execute("DELETE FROM " + table_ + " WHERE id IN (4, 5)", {});
  s->prepare();
  EXPECT_NE(dump(), before);
  s->rollback();
  EXPECT_EQ(dump(), before);
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
  EXPECT_EQ(s->state(), BranchState::none);
}

TEST_P(AtSessionTest, UpsertThatOnlyUpdatedIsRestoredNotDeleted) {
  const auto before = dump();
  auto s = rm_->acquire();
  s->begin(xid("u"));
  const std::string upsert =
      GetParam().mysql ? "INSERT INTO " + table_ + " VALUES (?, ?, ?), (?, ?, ?) ON DUPLICATE KEY UPDATE n = n + 7"
                       : "INSERT INTO " + table_ + " VALUES (?, ?, ?), (?, ?, ?) ON CONFLICT (id) DO UPDATE SET n = " +
                             table_ + ".n + 7";
  s->execute(upsert, std::vector<Param>{3, "x", 0, 30, "y", 0});  // row 3 exists (updated), row 30 does not (inserted)
  s->prepare();
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 3"), 307);
  EXPECT_EQ(direct_->scalar("SELECT COUNT(*) FROM " + table_ + " WHERE id = 30"), 1);
  s->rollback();
  EXPECT_EQ(dump(), before);  // row 3 back to 300, row 30 gone
}

TEST_P(AtSessionTest, DirtyWriteIsDetectedChangesNothingAndKeepsTheLocks) {
  auto s = rm_->acquire();
  const Xid x = xid("d");
  s->begin(x);
  s->execute("UPDATE " + table_ + " SET n = 1 WHERE id = 1", {});
  s->execute("UPDATE " + table_ + " SET n = 2 WHERE id = 2", {});
  s->prepare();
  direct_->run("UPDATE " + table_ + " SET n = 999 WHERE id = 2");  // outside any global transaction
  EXPECT_THROW(s->rollback(), Error);
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 1"), 1);    // nothing undone
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 2"), 999);  // nothing overwritten
  EXPECT_EQ(records(x), 1);
  EXPECT_EQ(locks(x), 2);
  auto other = rm_->acquire();
  FinishResult r = other->rollback_prepared(x);
  EXPECT_EQ(r.outcome, FinishOutcome::conflicting_changes);
  ASSERT_TRUE(r.error);
  EXPECT_NE(std::string(r.error->what()).find("999"), std::string::npos) << r.error->what();  // the current row
  EXPECT_NE(std::string(r.error->what()).find(x.gtrid), std::string::npos);
  // The operator overwrites with the before images.
  EXPECT_EQ(other->rollback_prepared_overwriting(x).outcome, FinishOutcome::done);
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 1"), 100);
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 2"), 200);
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

TEST_P(AtSessionTest, ALatePhase1AfterARollbackFailsAndChangesNothing) {
  auto s = rm_->acquire();
  const Xid x = xid("late");
  s->begin(x);
  s->execute("UPDATE " + table_ + " SET n = 0 WHERE id = 3", {});
  // The global transaction is rolled back elsewhere while this branch's phase
  // 1 is delayed: no record yet, so the rollback leaves a marker.
  auto other = rm_->acquire();
  EXPECT_EQ(other->rollback_prepared(x).outcome, FinishOutcome::not_found);
  try {
    s->prepare();
    FAIL() << "a late phase 1 committed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::rolled_back) << e.what();
  }
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 3"), 300);
  EXPECT_EQ(locks(x), 0);
}

TEST_P(AtSessionTest, ARowLockedByAnotherGlobalTransactionWaitsThenFailsNamingIt) {
  auto holder = rm_->acquire();
  const Xid h = xid("holder");
  holder->begin(h);
  holder->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id = 4", {});
  holder->prepare();
  auto waiter = rm_->acquire();
  waiter->begin(xid("waiter"));
  const auto start = std::chrono::steady_clock::now();
  try {
    waiter->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id = 4", {});
    FAIL() << "wrote a row locked by another global transaction";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::lock_conflict) << e.what();
    EXPECT_NE(std::string(e.what()).find(h.gtrid), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(table_), std::string::npos) << e.what();
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_LT(waited, std::chrono::seconds(3));
  waiter->rollback();
  // A plain read is not blocked, and sees phase 1's data.
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 4"), 401);
  // Once the holder finishes, the row is free.
  EXPECT_EQ(holder->commit().outcome, FinishOutcome::done);
  waiter->begin(xid("waiter2"));
  waiter->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id = 4", {});
  waiter->commit_one_phase();
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 4"), 402);
}

TEST_P(AtSessionTest, SelectForUpdateWaitsForGlobalLocks) {
  auto holder = rm_->acquire();
  const Xid h = xid("h");
  holder->begin(h);
  holder->execute("UPDATE " + table_ + " SET n = 0 WHERE id = 2", {});
  holder->prepare();
  auto reader = rm_->acquire();
  reader->begin(xid("r"));
  // Rows 1 and 3 are free.
  EXPECT_EQ(reader->execute("SELECT n FROM " + table_ + " WHERE id IN (1, 3) FOR UPDATE", {}).size(), 2u);
  try {
    reader->execute("SELECT n FROM " + table_ + " WHERE id <= 3 FOR UPDATE", {});
    FAIL() << "FOR UPDATE read a row locked by another global transaction";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::lock_conflict) << e.what();
    EXPECT_NE(std::string(e.what()).find(h.gtrid), std::string::npos) << e.what();
  }
  reader->rollback();
  holder->rollback();
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 2"), 200);
}

TEST_P(AtSessionTest, ARefusedStatementLeavesTheBranchUsable) {
  auto s = rm_->acquire();
  s->begin(xid("refuse"));
  try {
    s->execute("INSERT INTO " + table_ + " SELECT * FROM " + table_, {});
    FAIL() << "INSERT ... SELECT ran in an AT branch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("mode = \"xa\""), std::string::npos) << e.what();
  }
  s->execute("UPDATE " + table_ + " SET n = 7 WHERE id = 1", {});
  s->commit_one_phase();
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 1"), 7);
}

TEST_P(AtSessionTest, AOnePhaseBranchLeavesNoRecordAndNoLock) {
  auto s = rm_->acquire();
  const Xid x = xid("one");
  s->begin(x);
  s->execute("UPDATE " + table_ + " SET n = 5 WHERE id = 5", {});
  s->commit_one_phase();
  EXPECT_EQ(direct_->scalar("SELECT n FROM " + table_ + " WHERE id = 5"), 5);
  EXPECT_EQ(records(x), 0);
  EXPECT_EQ(locks(x), 0);
}

// Global transactions through the coordinator, AT on MariaDB and AT or XA on
// PostgreSQL.
class AtCoordinatorTest : public ::testing::TestWithParam<BranchMode> {
 protected:
  void SetUp() override {
    std::random_device rd;
    id_ = "atc" + std::to_string(rd() % 1000000);
    config_.coordinator.id = id_;
    config_.coordinator.log_dir = log_dir_ = test::fresh_dir("at");
    config_.coordinator.recovery_interval_s = 0;
    config_.coordinator.default_timeout = std::chrono::seconds(20);
    config_.resources["my"] = test::mysql_resource("my");
    config_.resources["my"].mode = BranchMode::at;
    config_.resources["pg"] = test::postgres_resource("pg");
    config_.resources["pg"].mode = GetParam();
    table_ = "atc_" + id_;
    for (Direct* d : {&my_, &pg_}) {
      d->run("DROP TABLE IF EXISTS " + table_);
      d->run("CREATE TABLE " + table_ + " (id INT PRIMARY KEY, n BIGINT NOT NULL CHECK (n >= 0), ref INT)");
      for (int i = 1; i <= 3; ++i) d->run("INSERT INTO " + table_ + " VALUES (?, 0, NULL)", {i});
    }
    // On PostgreSQL `ref` must name a parent row, checked only when the branch
    // ends (phase 1): a way to make phase 1 fail after the other branch's.
    pg_.run("DROP TABLE IF EXISTS " + table_ + "_parent");
    pg_.run("CREATE TABLE " + table_ + "_parent (id INT PRIMARY KEY)");
    pg_.run("ALTER TABLE " + table_ + " ADD FOREIGN KEY (ref) REFERENCES " + table_ +
            "_parent (id) DEFERRABLE INITIALLY DEFERRED");
  }
  void TearDown() override {
    for (Direct* d : {&my_, &pg_}) d->run("DROP TABLE IF EXISTS " + table_);
    pg_.run("DROP TABLE IF EXISTS " + table_ + "_parent");
    std::filesystem::remove_all(log_dir_);
  }
  std::int64_t total(Direct& d) { return d.scalar("SELECT SUM(n) FROM " + table_); }
  std::int64_t leftovers(Direct& d) {
    return d.scalar("SELECT COUNT(*) FROM dtx_undo_log WHERE gtrid LIKE ?", {id_ + ".%"}) +
           d.scalar("SELECT COUNT(*) FROM dtx_global_lock WHERE gtrid LIKE ?", {id_ + ".%"});
  }

  std::string id_;
  Config config_;
  std::filesystem::path log_dir_;
  std::string table_;
  Direct my_{test::mysql_resource("my")};
  Direct pg_{test::postgres_resource("pg")};
};

INSTANTIATE_TEST_SUITE_P(Modes, AtCoordinatorTest, ::testing::Values(BranchMode::at, BranchMode::xa),
                         [](const auto& param_info) { return std::string(param_info.param == BranchMode::at ? "AtAndAt" : "AtAndXa"); });

TEST_P(AtCoordinatorTest, CommitAndRollbackAreAllOrNothing) {
  auto core = std::make_shared<detail::CoordinatorCore>(config_);
  Coordinator c = detail::CoordinatorAccess::wrap(core);
  {
    Transaction tx = c.begin();
    tx.execute("my", "UPDATE " + table_ + " SET n = n + 5 WHERE id = 1");
    tx.execute("pg", "UPDATE " + table_ + " SET n = n + 5 WHERE id = 1");
    tx.commit();
  }
  {
    Transaction tx = c.begin();
    tx.execute("my", "UPDATE " + table_ + " SET n = n + 1 WHERE id = 2");
    // The overdraft fails on PostgreSQL: everything is rolled back, including
    // MariaDB's branch (before its phase 1 here).
    EXPECT_THROW(tx.execute("pg", "UPDATE " + table_ + " SET n = n - 100 WHERE id = 2"), Error);
    tx.rollback();
  }
  core->drain_forgets();
  EXPECT_EQ(total(my_), 5);
  EXPECT_EQ(total(pg_), 5);
  EXPECT_EQ(leftovers(my_), 0);
  EXPECT_EQ(leftovers(pg_), 0);
}

// 20 threads increment the same three rows on both databases; a third of the
// transactions are rolled back by the application after both branches
// changed their rows, another third fail in PostgreSQL's phase 1 (a deferred
// foreign key), so MariaDB's branch may be undone after its phase 1. Lost updates or
// dirty writes between global transactions would make the sums differ from
// the count of commits.
TEST_P(AtCoordinatorTest, ConcurrentIncrementsOfHotRowsLoseNothing) {
  config_.resources["my"].lock_wait_timeout = std::chrono::seconds(15);
  config_.resources["pg"].lock_wait_timeout = std::chrono::seconds(15);
  auto core = std::make_shared<detail::CoordinatorCore>(config_);
  Coordinator c = detail::CoordinatorAccess::wrap(core);
  constexpr int kThreads = 20, kEach = 8;
  std::atomic<int> committed{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kEach; ++i) {
        const int row = 1 + static_cast<int>(rng() % 3);
        try {
          Transaction tx = c.begin();
          tx.execute("my", "UPDATE " + table_ + " SET n = n + 1 WHERE id = ?", {row});
          const unsigned fate = rng() % 3;
          tx.execute("pg", fate == 1 ? "UPDATE " + table_ + " SET n = n + 1, ref = 999 WHERE id = ?"
                                     : "UPDATE " + table_ + " SET n = n + 1 WHERE id = ?",
                     {row});
          if (fate == 0) {
            tx.rollback();
            continue;
          }
          tx.commit();
          EXPECT_NE(fate, 1u) << "committed although PostgreSQL's phase 1 must fail";
          ++committed;
        } catch (const Error& e) {
          ++failed;  // lock wait or deadlock: rolled back, counted as not committed
        }
      }
    });
  for (auto& th : threads) th.join();
  core->drain_forgets();
  EXPECT_GT(committed.load(), kThreads * kEach / 3);
  EXPECT_EQ(total(my_), committed.load());
  EXPECT_EQ(total(pg_), committed.load());
  EXPECT_EQ(leftovers(my_), 0);
  EXPECT_EQ(leftovers(pg_), 0);
}

}  // namespace
}  // namespace dtx
