// The coordinator's state machine against in-memory resource managers with
// fault injection. The real databases are exercised by tests/integration.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "coordinator/coordinator_core.h"
#include "dtx/dtx.h"
#include "recovery/finish_branch.h"
#include "support/metrics_scrape.h"
#include "support/test_env.h"

namespace dtx {
namespace {

// What one fake database saw and holds, and the faults it will inject.
struct FakeDatabase {
  std::mutex mu;
  std::vector<std::string> events;  // "prepare <bqual>", "commit", ...
  std::set<std::string> prepared;   // gtrids
  std::set<std::string> committed;  // gtrids
  std::set<std::string> rolled_back;
  bool fail_execute = false;
  bool fail_prepare = false;
  int fail_commits = 0;    // fail this many commit attempts (unavailable), then succeed
  int fail_rollbacks = 0;  // fail this many rollbacks of a prepared branch, then succeed
  // What a commit answers instead of committing (done = commit normally).
  // not_found drops the branch unless keep_listed_on_not_found.
  FinishOutcome commit_answer = FinishOutcome::done;
  bool keep_listed_on_not_found = false;

  void record(const std::string& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  }
  bool has_event(const std::string& e) {
    std::lock_guard lock(mu);
    return std::find(events.begin(), events.end(), e) != events.end();
  }
};

class FakeSession : public Session {
 public:
  FakeSession(std::string resource, FakeDatabase& db) : resource_(std::move(resource)), db_(db) {}

  Result execute(std::string_view sql, std::span<const Param>) override {
    if (db_.fail_execute)
      throw Error({.code = Errc::sql, .resource = resource_, .server_code = 1146,
                   .server_message = "injected failure"},
                  "statement failed");
    db_.record("execute " + std::string(sql));
    return Result({}, {}, 1);
  }
  void begin(const Xid& xid) override {
    xid_ = xid;
    state_ = BranchState::active;
    db_.record("begin " + xid.gtrid);
  }
  void prepare() override {
    if (db_.fail_prepare) {
      state_ = BranchState::none;
      db_.record("prepare-failed " + xid_.gtrid);
      throw Error({.code = Errc::rolled_back, .resource = resource_}, "injected prepare failure");
    }
    std::lock_guard lock(db_.mu);
    db_.events.push_back("prepare " + xid_.gtrid);
    db_.prepared.insert(xid_.gtrid);
    state_ = BranchState::prepared;
  }
  FinishResult commit() override { return finish_commit(xid_); }
  void commit_one_phase() override {
    std::lock_guard lock(db_.mu);
    db_.events.push_back("commit-one-phase " + xid_.gtrid);
    db_.committed.insert(xid_.gtrid);
    state_ = BranchState::none;
  }
  void rollback() override {
    std::lock_guard lock(db_.mu);
    if (state_ == BranchState::prepared && db_.fail_rollbacks > 0) {
      --db_.fail_rollbacks;
      db_.events.push_back("rollback-failed " + xid_.gtrid);
      throw Error({.code = Errc::unavailable, .resource = resource_}, "injected rollback failure");
    }
    if (state_ != BranchState::none) {
      db_.events.push_back("rollback " + xid_.gtrid);
      db_.prepared.erase(xid_.gtrid);
      db_.rolled_back.insert(xid_.gtrid);
    }
    state_ = BranchState::none;
  }
  BranchState state() const noexcept override { return state_; }
  const Xid* current_xid() const noexcept override { return state_ == BranchState::none ? nullptr : &xid_; }
  FinishResult commit_prepared(const Xid& xid) override { return finish_commit(xid); }
  FinishResult rollback_prepared(const Xid& xid) override {
    std::lock_guard lock(db_.mu);
    if (!db_.prepared.erase(xid.gtrid))
      return {FinishOutcome::not_found, Error({.code = Errc::unknown_xid, .resource = resource_}, "no such xid")};
    db_.events.push_back("rollback-prepared " + xid.gtrid);
    db_.rolled_back.insert(xid.gtrid);
    return {};
  }
  std::vector<PreparedXid> recover() override {
    std::lock_guard lock(db_.mu);
    std::vector<PreparedXid> out;
    for (const auto& g : db_.prepared) out.push_back({Xid::make(g, resource_), true, g, {}, {}});
    return out;
  }
  bool broken() const noexcept override { return false; }

 private:
  FinishResult finish_commit(const Xid& xid) {
    std::lock_guard lock(db_.mu);
    if (db_.fail_commits > 0) {
      --db_.fail_commits;
      db_.events.push_back("commit-failed " + xid.gtrid);
      return {FinishOutcome::unavailable,
              Error({.code = Errc::unavailable, .resource = resource_}, "injected commit failure")};
    }
    state_ = BranchState::none;
    switch (db_.commit_answer) {
      case FinishOutcome::done:
        db_.events.push_back("commit " + xid.gtrid);
        db_.prepared.erase(xid.gtrid);
        db_.committed.insert(xid.gtrid);
        return {};
      case FinishOutcome::rolled_back_by_database:
        db_.events.push_back("rolled-back-by-database " + xid.gtrid);
        db_.prepared.erase(xid.gtrid);
        db_.rolled_back.insert(xid.gtrid);
        return {FinishOutcome::rolled_back_by_database,
                Error({.code = Errc::rolled_back, .resource = resource_, .server_code = 1402},
                      "injected XA_RBROLLBACK")};
      default:
        db_.events.push_back("commit-answered " + xid.gtrid);
        if (db_.commit_answer == FinishOutcome::not_found && !db_.keep_listed_on_not_found)
          db_.prepared.erase(xid.gtrid);
        return {db_.commit_answer, Error({.code = Errc::unknown_xid, .resource = resource_}, "injected answer")};
    }
  }

  std::string resource_;
  FakeDatabase& db_;
  Xid xid_;
  BranchState state_ = BranchState::none;
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_dir_ = test::fresh_dir("coord");
    config_.coordinator.id = "unit";
    config_.coordinator.log_dir = log_dir_;
    config_.coordinator.recovery_interval_s = 0;  // passes run when a test asks (recover_now)
    for (const char* name : {"a", "b", "c"}) {
      ResourceConfig rc;
      rc.name = name;
      config_.resources[name] = rc;
    }
  }
  void TearDown() override { std::filesystem::remove_all(log_dir_); }

  // Phase 2 tries kPhase2Attempts commits per branch, without delay between them.
  static constexpr int kPhase2Attempts = 3;

  std::shared_ptr<detail::CoordinatorCore> make_core(DecisionLogOptions log_options = {}) {
    return std::make_shared<detail::CoordinatorCore>(
        config_,
        [this](const ResourceConfig& rc) {
          FakeDatabase* db = &dbs_[rc.name];
          std::string name = rc.name;
          return std::make_unique<ResourceManager>(
              rc, [name, db] { return std::make_unique<FakeSession>(name, *db); });
        },
        std::move(log_options),
        detail::Phase2Options{.attempts = kPhase2Attempts, .backoff = std::chrono::milliseconds(0)});
  }

  // The lines of heuristics.log (none if it does not exist).
  std::vector<std::string> heuristic_lines() {
    std::vector<std::string> lines;
    std::ifstream in(log_dir_ / "heuristics.log");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::filesystem::path log_dir_;
  Config config_;
  std::map<std::string, FakeDatabase> dbs_;
};

TEST_F(CoordinatorTest, TwoBranchesPrepareLogThenCommit) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  tx.commit();
  EXPECT_EQ(tx.state(), TransactionState::committed);
  for (const char* r : {"a", "b"}) {
    EXPECT_TRUE(dbs_[r].has_event("prepare " + tx.id())) << r;
    EXPECT_EQ(dbs_[r].committed.count(tx.id()), 1u) << r;
  }
  EXPECT_EQ(core->log().open_decisions(), 0u);
}

TEST_F(CoordinatorTest, SingleBranchCommitsInOnePhaseWithoutALogRecord) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.commit();
  EXPECT_TRUE(dbs_["a"].has_event("commit-one-phase " + tx.id()));
  EXPECT_FALSE(dbs_["a"].has_event("prepare " + tx.id()));
  EXPECT_EQ(core->log().sync_count(), 0u);
}

TEST_F(CoordinatorTest, PrepareFailureRollsBackEveryBranchAndLogsNothing) {
  dbs_["b"].fail_prepare = true;
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  tx.execute("c", "UPDATE c");
  try {
    tx.commit();
    FAIL() << "commit should fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.resource(), "b");
    EXPECT_EQ(e.gtrid(), tx.id());
  }
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
  EXPECT_TRUE(dbs_["a"].prepared.empty());
  EXPECT_TRUE(dbs_["c"].prepared.empty());
  EXPECT_TRUE(dbs_["a"].committed.empty());
  EXPECT_EQ(core->log().sync_count(), 0u);
}

TEST_F(CoordinatorTest, FailedStatementForbidsCommit) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  dbs_["b"].fail_execute = true;
  EXPECT_THROW(tx.execute("b", "UPDATE b"), Error);
  EXPECT_THROW(tx.commit(), Error);
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
  EXPECT_TRUE(dbs_["a"].has_event("rollback " + tx.id()));
  EXPECT_TRUE(dbs_["a"].committed.empty());
}

TEST_F(CoordinatorTest, Phase2FailureIsRetriedUntilCommitted) {
  dbs_["b"].fail_commits = kPhase2Attempts - 1;
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  tx.commit();
  EXPECT_EQ(dbs_["b"].committed.count(tx.id()), 1u);
  EXPECT_TRUE(dbs_["b"].has_event("commit-failed " + tx.id()));
  EXPECT_EQ(core->log().open_decisions(), 0u);
}

TEST_F(CoordinatorTest, Phase2FailureThatPersistsIsInDoubtAndKeepsTheDecision) {
  dbs_["b"].fail_commits = 1000;
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  try {
    tx.commit();
    FAIL() << "commit should report in-doubt";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::in_doubt);
    EXPECT_NE(std::string(e.what()).find("b"), std::string::npos);
  }
  EXPECT_EQ(tx.state(), TransactionState::in_doubt);
  EXPECT_EQ(dbs_["a"].committed.count(tx.id()), 1u);
  EXPECT_EQ(dbs_["b"].prepared.count(tx.id()), 1u);
  EXPECT_EQ(core->log().open_decisions(), 1u);  // recovery will finish it
}

TEST_F(CoordinatorTest, InProcessRecoveryFinishesAnInDoubtCommit) {
  dbs_["b"].fail_commits = kPhase2Attempts;  // every phase-2 attempt fails, then the database recovers
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  EXPECT_THROW(tx.commit(), Error);
  ASSERT_EQ(tx.state(), TransactionState::in_doubt);
  ASSERT_EQ(dbs_["b"].prepared.count(tx.id()), 1u);

  RecoveryReport report = core->recover_now();
  EXPECT_TRUE(report.settled()) << (report.errors.empty() ? "" : report.errors.front());
  EXPECT_EQ(dbs_["b"].committed.count(tx.id()), 1u);
  EXPECT_TRUE(dbs_["b"].prepared.empty());
  EXPECT_EQ(core->log().open_decisions(), 0u);  // END written once every branch is done
}

TEST_F(CoordinatorTest, InDoubtCommitAndThePassThatFinishesItAreCounted) {
  dbs_["b"].fail_commits = kPhase2Attempts;
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  const test::MetricsScrape before = test::MetricsScrape::take();
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  EXPECT_THROW(tx.commit(), Error);
  const test::MetricsScrape left = test::MetricsScrape::take();
  EXPECT_EQ(left.since(before, "dtx_transactions_total{outcome=\"in_doubt\"}"), 1);
  EXPECT_EQ(left.value("dtx_transactions_total{outcome=\"committed\"}"),
            before.value("dtx_transactions_total{outcome=\"committed\"}"));
  EXPECT_EQ(left.since(before, "dtx_decisions_logged_total"), 1);

  ASSERT_TRUE(core->recover_now().settled());
  const test::MetricsScrape after = test::MetricsScrape::take();
  EXPECT_EQ(after.since(left, "dtx_recovery_passes_total{outcome=\"settled\"}"), 1);
  EXPECT_EQ(after.since(left, "dtx_recovery_pass_seconds_count"), 1);
  EXPECT_EQ(after.since(left, "dtx_recovery_branches_total{action=\"committed\"}"), 1);
  EXPECT_EQ(after.value("dtx_transactions_in_doubt"), 0);
  EXPECT_EQ(after.value("dtx_prepared_branches{resource=\"b\"}"), 0);  // after the pass, not scan 2's 1
}

TEST_F(CoordinatorTest, PassThatLeavesABranchCountsItInDoubt) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  dbs_["a"].prepared.insert(tx.id());  // prepared, decision pending, owner alive
  const test::MetricsScrape before = test::MetricsScrape::take();
  core->recover_now();
  const test::MetricsScrape after = test::MetricsScrape::take();
  EXPECT_EQ(after.since(before, "dtx_recovery_passes_total{outcome=\"left_in_doubt\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_recovery_branches_total{action=\"left_owner_alive\"}"), 1);
  EXPECT_EQ(after.value("dtx_transactions_in_doubt"), 1);
  EXPECT_EQ(after.value("dtx_prepared_branches{resource=\"a\"}"), 1);
  dbs_["a"].prepared.clear();
}

TEST_F(CoordinatorTest, InProcessRecoveryLeavesLiveTransactionsAlone) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  // Simulate "prepared, decision pending" as another thread would see it.
  dbs_["a"].prepared.insert(tx.id());
  RecoveryReport report = core->recover_now();
  ASSERT_EQ(report.branches.size(), 1u);
  EXPECT_EQ(report.branches[0].action, BranchAction::left_owner_alive);
  EXPECT_TRUE(dbs_["a"].rolled_back.empty());
  dbs_["a"].prepared.clear();
}

TEST_F(CoordinatorTest, DestroyedTransactionRollsBack) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  std::string id;
  {
    Transaction tx = coord.begin();
    id = tx.id();
    tx.execute("a", "UPDATE a");
    tx.execute("b", "UPDATE b");
  }
  EXPECT_TRUE(dbs_["a"].has_event("rollback " + id));
  EXPECT_TRUE(dbs_["b"].has_event("rollback " + id));
}

TEST_F(CoordinatorTest, UnknownResourceNamesItAndTheGlobalId) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  try {
    tx.execute("nope", "SELECT 1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::config);
    EXPECT_EQ(e.gtrid(), tx.id());
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("a, b, c"), std::string::npos) << e.what();
  }
}

TEST_F(CoordinatorTest, TimeoutRollsBack) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  // Long enough for both statements even under a sanitizer; then the
  // deadline is let pass before commit (a clock condition, not a synchronisation).
  const auto began = std::chrono::steady_clock::now();
  Transaction tx = coord.begin({.timeout = std::chrono::milliseconds(300)});
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  while (std::chrono::steady_clock::now() < began + std::chrono::milliseconds(350)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  try {
    tx.commit();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::timeout);
  }
  EXPECT_TRUE(dbs_["a"].committed.empty());
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
}

TEST_F(CoordinatorTest, GtridsAreUniqueAndNameTheIncarnation) {
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(coord.begin().id());
  EXPECT_EQ(ids.size(), 1000u);
  auto parts = parse_gtrid(*ids.begin());
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->coordinator_id, "unit");
  EXPECT_EQ(parts->incarnation, coord.incarnation());
}

// Group commit through the coordinator: the first decision's flush is held
// until the other threads' first decisions have queued behind it, so one
// flush must carry all of those — fewer flushes than decisions, whatever the
// scheduling.
TEST_F(CoordinatorTest, ConcurrentTransactionsShareFlushes) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::atomic<bool> held{false};
  std::atomic<bool> all_queued{false};
  std::shared_ptr<detail::CoordinatorCore> core;
  DecisionLogOptions options;
  options.before_flush = [&] {
    if (held.exchange(true)) return;  // only the first flush
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (core->log().queued_records() < kThreads - 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    all_queued = core->log().queued_records() >= kThreads - 1;
  };
  core = make_core(std::move(options));
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  std::vector<std::thread> threads;
  std::atomic<int> committed{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        Transaction tx = coord.begin();
        tx.execute("a", "UPDATE a");
        tx.execute("b", "UPDATE b");
        tx.commit();
        ++committed;
      }
    });
  for (auto& t : threads) t.join();
  constexpr int kCommits = kThreads * kPerThread;
  EXPECT_EQ(committed.load(), kCommits);
  EXPECT_EQ(dbs_["a"].committed.size(), static_cast<std::size_t>(kCommits));
  ASSERT_TRUE(all_queued) << "the other threads' decisions never queued behind the first flush";
  // The flush after the held one carried kThreads - 1 decisions: at least
  // kThreads - 2 flushes fewer than decisions.
  EXPECT_LE(core->log().sync_count(), static_cast<std::uint64_t>(kCommits - (kThreads - 2)));
}

// The rollback side of recovery: a prepared branch whose rollback failed is
// handed to recovery, which rolls it back by xid.
TEST_F(CoordinatorTest, InProcessRecoveryRollsBackAPreparedBranchWhoseRollbackFailed) {
  dbs_["b"].fail_prepare = true;  // a votes yes, b no: the transaction rolls back
  dbs_["a"].fail_rollbacks = 1;   // ... and a's prepared branch cannot be rolled back yet
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  EXPECT_THROW(tx.commit(), Error);
  ASSERT_EQ(dbs_["a"].prepared.count(tx.id()), 1u);

  RecoveryReport report = core->recover_now();
  EXPECT_TRUE(report.settled()) << (report.errors.empty() ? "" : report.errors.front());
  ASSERT_EQ(report.branches.size(), 1u);
  EXPECT_EQ(report.branches[0].action, BranchAction::rolled_back);
  EXPECT_TRUE(dbs_["a"].has_event("rollback-prepared " + tx.id()));
  EXPECT_TRUE(dbs_["a"].prepared.empty());
  EXPECT_EQ(dbs_["a"].rolled_back.count(tx.id()), 1u);
  EXPECT_TRUE(dbs_["a"].committed.empty());
}

// XA_RBROLLBACK at commit comes only from a branch that wrote nothing
// (MariaDBDriver.*AfterItsSessionIsKilled): the transaction is committed and
// no heuristic outcome is recorded.
TEST_F(CoordinatorTest, RolledBackByTheDatabaseAtCommitCountsAsCommittedWithoutHeuristic) {
  dbs_["b"].commit_answer = FinishOutcome::rolled_back_by_database;
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "SELECT 1");
  tx.commit();
  EXPECT_EQ(tx.state(), TransactionState::committed);
  EXPECT_EQ(dbs_["a"].committed.count(tx.id()), 1u);
  EXPECT_TRUE(dbs_["b"].has_event("rolled-back-by-database " + tx.id()));
  EXPECT_EQ(core->log().open_decisions(), 0u);
  EXPECT_TRUE(heuristic_lines().empty());
}

// "Unknown xid" is finished only when the database no longer lists the branch.
TEST_F(CoordinatorTest, UnknownXidAtCommitIsFinishedOnlyWhenNoLongerListed) {
  dbs_["b"].commit_answer = FinishOutcome::not_found;
  dbs_["b"].keep_listed_on_not_found = true;
  auto core = make_core();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  Transaction tx = coord.begin();
  tx.execute("a", "UPDATE a");
  tx.execute("b", "UPDATE b");
  try {
    tx.commit();
    FAIL() << "a branch still listed after 'unknown xid' is not finished";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::in_doubt) << e.what();
  }
  EXPECT_EQ(dbs_["b"].prepared.count(tx.id()), 1u);
  EXPECT_EQ(core->log().open_decisions(), 1u);

  dbs_["b"].keep_listed_on_not_found = false;  // now the database really lost it
  Transaction tx2 = coord.begin();
  tx2.execute("a", "UPDATE a");
  tx2.execute("b", "UPDATE b");
  tx2.commit();
  EXPECT_EQ(tx2.state(), TransactionState::committed);
}

FinishResult answered(FinishOutcome outcome) {
  return {outcome, Error({.code = Errc::sql, .resource = "r"}, "the database said so")};
}

TEST(FinishBranchRule, RollbackAgainstALoggedCommitIsHeuristic) {
  FinishVerdict v = judge_finish({"g", "r", false, DecisionBasis::commit, "operator"}, FinishResult{});
  EXPECT_EQ(v.action, BranchAction::rolled_back);
  ASSERT_TRUE(v.heuristic.has_value());
  EXPECT_EQ(v.heuristic->decision, "commit");
  EXPECT_EQ(v.heuristic->outcome, "rolled_back");
  EXPECT_EQ(v.heuristic->by, "operator");
}

TEST(FinishBranchRule, AnotherCoordinatorsBranchIsHeuristicWhicheverWayItEnds) {
  for (bool commit : {true, false}) {
    FinishVerdict v =
        judge_finish({"g", "r", commit, DecisionBasis::other_coordinator, "operator"}, FinishResult{});
    ASSERT_TRUE(v.heuristic.has_value()) << commit;
    EXPECT_EQ(v.heuristic->decision, "unknown");
    EXPECT_EQ(v.heuristic->outcome, commit ? "committed" : "rolled_back");
  }
  EXPECT_FALSE(judge_finish({"g", "r", false, DecisionBasis::foreign, "operator"}, FinishResult{}).heuristic);
  EXPECT_FALSE(judge_finish({"g", "r", false, DecisionBasis::none, "recovery"}, FinishResult{}).heuristic);
  EXPECT_FALSE(judge_finish({"g", "r", true, DecisionBasis::commit, "recovery"}, FinishResult{}).heuristic);
}

TEST(FinishBranchRule, UnknownXidNeedsAListingAndBusyIsLeft) {
  const FinishRequest commit{"g", "r", true, DecisionBasis::commit, "recovery"};
  const FinishResult nota = answered(FinishOutcome::not_found);
  EXPECT_TRUE(judge_finish(commit, nota).needs_listing);
  EXPECT_EQ(judge_finish(commit, nota, Listing::still_listed).action, BranchAction::left_session_busy);
  EXPECT_EQ(judge_finish(commit, nota, Listing::gone).action, BranchAction::already_finished);
  EXPECT_EQ(judge_finish(commit, answered(FinishOutcome::owned_by_live_session)).action,
            BranchAction::left_session_busy);
  EXPECT_EQ(judge_finish(commit, answered(FinishOutcome::unavailable)).action, BranchAction::failed);
  EXPECT_EQ(judge_finish(commit, answered(FinishOutcome::failed)).action, BranchAction::failed);
}

}  // namespace
}  // namespace dtx
