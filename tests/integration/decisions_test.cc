// Commit decisions kept in a resource's own database ([coordinator]
// decisions = "R", decision-table/decision_table.cc), in process, against the
// real MariaDB and PostgreSQL servers started by scripts/db.sh: the commit
// paths, the fence, the liveness lock, recovery and the operator commands.
// Killed processes and killed servers are decisions_crash_test's.
//
// Every test runs under its own coordinator id with its own table, checks the
// data on both databases and ends with nothing of its id left prepared.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "base/transaction_id.h"
#include "coordinator/coordinator_core.h"
#include "decision-table/decision_table.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "recovery/operator.h"
#include "recovery/recovery.h"
#include "support/direct.h"
#include "support/test_env.h"

namespace dtx {
namespace {

using namespace std::chrono_literals;
using test::Direct;

constexpr std::int64_t kInitialBalance = 100;

// Polls `condition` until it holds or `patience` passes.
template <typename F>
bool eventually(F condition, std::chrono::milliseconds patience = 10s) {
  const auto until = std::chrono::steady_clock::now() + patience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);  // polling interval of a bounded wait
  }
  return true;
}

// R is the MariaDB resource ("my") or the PostgreSQL one ("pg").
class DecisionsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::random_device rd;
    id_ = "dc" + std::to_string(100000 + rd() % 900000);
    table_ = "dc_acct_" + id_;
    config_.coordinator.id = id_;  // no log_dir: no local disk at all
    config_.coordinator.decisions = GetParam();
    config_.coordinator.recovery_interval_s = 0;
    config_.resources["my"] = test::mysql_resource("my");
    config_.resources["pg"] = test::postgres_resource("pg");
    for (Direct* d : {&my_, &pg_}) {
      d->run("DROP TABLE IF EXISTS " + table_);
      d->run("CREATE TABLE " + table_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" +
             (d->is_mysql() ? " ENGINE=InnoDB" : ""));
      for (int id = 1; id <= 5; ++id)
        d->run("INSERT INTO " + table_ + " VALUES (" + std::to_string(id) + ", " + std::to_string(kInitialBalance) +
               ")");
    }
  }

  void TearDown() override {
    for (Direct* d : {&my_, &pg_}) {
      for (const auto& p : d->prepared())
        if (p.is_dtx && p.xid.gtrid.starts_with(id_ + ".")) {
          ADD_FAILURE() << "left prepared: " << p.raw;
          (void)d->rm().acquire()->rollback_prepared(p.xid);
        }
      d->run("DROP TABLE IF EXISTS " + table_);
    }
    try {
      r().run("DELETE FROM dtx_decision WHERE gtrid LIKE '" + id_ + ".%'");
    } catch (const std::exception&) {
    }
  }

  Direct& r() { return GetParam() == "my" ? my_ : pg_; }
  DecisionTable table() const { return DecisionTable(config_.resources.at(GetParam())); }
  std::int64_t balance(Direct& d, int id) {
    return d.scalar("SELECT balance FROM " + table_ + " WHERE id = " + std::to_string(id));
  }
  std::string move_sql(int id, int delta) {
    return "UPDATE " + table_ + " SET balance = balance + " + std::to_string(delta) + " WHERE id = " +
           std::to_string(id);
  }
  std::int64_t rows_of(const std::string& gtrid) {
    return r().scalar("SELECT count(*) FROM dtx_decision WHERE gtrid = '" + gtrid + "'");
  }
  std::shared_ptr<detail::CoordinatorCore> core() { return std::make_shared<detail::CoordinatorCore>(config_); }

  // Branches of `gtrid` prepared by hand on my and pg, as a crashed owner
  // leaves them (each takes 10 from account `id`).
  void prepare_by_hand(const std::string& gtrid, int id) {
    for (Direct* d : {&my_, &pg_}) {
      SessionLease s = d->rm().acquire();
      s->begin(Xid::make(gtrid, d == &my_ ? "my" : "pg"));
      s->execute(move_sql(id, -10), {});
      s->prepare();
      s.discard();  // the connection closes; the branch stays prepared
    }
  }
  // A gtrid of an incarnation of this id that decides in the table and that
  // no process holds (its owner is gone).
  std::string gone_gtrid() { return id_ + "." + new_incarnation(DecisionStore::database) + ".1"; }

  RecoveryReport recover(const Config& config, bool dry_run = false) {
    std::map<std::string, std::unique_ptr<ResourceManager>, std::less<>> rms;
    for (const auto& [name, rc] : config.resources) rms.emplace(name, make_resource_manager(rc));
    RecoveryScanner scanner(config, [&](std::string_view n) -> ResourceManager& { return *rms.find(n)->second; });
    return scanner.run({.dry_run = dry_run});
  }
  const InDoubtBranch* find(const RecoveryReport& report, const std::string& gtrid, const std::string& resource) {
    for (const auto& b : report.branches)
      if (b.gtrid == gtrid && b.resource == resource) return &b;
    return nullptr;
  }

  std::string id_, table_;
  Config config_;
  Direct my_{test::mysql_resource("my")};
  Direct pg_{test::postgres_resource("pg")};
};

INSTANTIATE_TEST_SUITE_P(R, DecisionsTest, ::testing::Values("my", "pg"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param == "my" ? "MariaDB" : "PostgreSQL"; });

// A transfer with a branch on R commits on both databases with no file log
// at all; the row goes once the others are committed; the incarnation is
// marked as deciding in the table and holds its liveness lock while it lives.
TEST_P(DecisionsTest, CommitWithABranchOnTheDecisionResource) {
  std::string inc;
  {
    auto c = core();
    EXPECT_FALSE(c->has_file_log());
    inc = c->incarnation();
    EXPECT_EQ(decision_store_of(inc), DecisionStore::database);
    Coordinator coord = detail::CoordinatorAccess::wrap(c);
    Transaction tx = coord.begin();
    tx.execute("my", move_sql(1, -10));
    tx.execute("pg", move_sql(1, +10));
    const std::string gtrid = tx.id();
    tx.commit();
    EXPECT_EQ(tx.state(), TransactionState::committed);
    EXPECT_EQ(balance(my_, 1), kInitialBalance - 10);
    EXPECT_EQ(balance(pg_, 1), kInitialBalance + 10);
    c->drain_forgets();
    EXPECT_EQ(rows_of(gtrid), 0) << "the COMMIT row outlived its transaction";
    SessionLease s = r().rm().acquire();
    EXPECT_TRUE(table().liveness_held(*s, id_, inc));
  }
  SessionLease s = r().rm().acquire();
  EXPECT_TRUE(eventually([&] { return !table().liveness_held(*s, id_, inc); }))
      << "the liveness lock outlived its process";
}

// R's branch is never prepared: with R on a PostgreSQL whose prepared
// transactions are disabled, a transaction with a branch there still
// commits (any PREPARE there would fail with max_prepared_transactions = 0).
TEST_P(DecisionsTest, TheDecisionResourcesBranchIsNeverPrepared) {
  Config config = config_;
  config.resources["noprep"] = test::postgres_noprep_resource("noprep");
  config.coordinator.decisions = "noprep";
  Direct noprep(config.resources["noprep"]);
  noprep.run("DROP TABLE IF EXISTS " + table_);
  noprep.run("CREATE TABLE " + table_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)");
  noprep.run("INSERT INTO " + table_ + " VALUES (1, 100)");
  {
    Coordinator coord(config);
    Transaction tx = coord.begin();
    tx.execute("my", move_sql(1, -10));
    tx.execute("noprep", move_sql(1, +10));
    tx.commit();
  }
  EXPECT_EQ(balance(my_, 1), kInitialBalance - 10);
  EXPECT_EQ(noprep.scalar("SELECT balance FROM " + table_ + " WHERE id = 1"), kInitialBalance + 10);
  noprep.run("DROP TABLE " + table_);
}

// With no branch on R, the row is committed on R in a transaction of its own.
TEST_P(DecisionsTest, CommitWithoutABranchOnTheDecisionResource) {
  Config config = config_;
  config.resources["r"] = GetParam() == "my" ? test::mysql_resource("r") : test::postgres_resource("r");
  config.coordinator.decisions = "r";
  auto c = std::make_shared<detail::CoordinatorCore>(config);
  Coordinator coord = detail::CoordinatorAccess::wrap(c);
  Transaction tx = coord.begin();
  tx.execute("my", move_sql(2, -5));
  tx.execute("pg", move_sql(2, +5));
  EXPECT_EQ(tx.resources(), (std::vector<std::string>{"my", "pg"}));
  tx.commit();
  EXPECT_EQ(balance(my_, 2), kInitialBalance - 5);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance + 5);
  c->drain_forgets();
  EXPECT_EQ(rows_of(tx.id()), 0);
}

// Recovery fenced the transaction before its decision (an ABORT row): the
// commit fails on the key, and the whole transaction rolls back.
TEST_P(DecisionsTest, AFencedTransactionRollsBackAtItsDecision) {
  Coordinator coord(config_);
  Transaction tx = coord.begin();
  tx.execute("my", move_sql(1, -10));
  tx.execute("pg", move_sql(1, +10));
  {
    SessionLease s = r().rm().acquire();
    const std::string g[] = {tx.id()};
    EXPECT_EQ(table().fence(*s, g).at(tx.id()).outcome, TableOutcome::abort);
  }
  try {
    tx.commit();
    FAIL() << "committed over an ABORT row";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::rolled_back) << e.what();
    EXPECT_EQ(e.gtrid(), tx.id());
    EXPECT_NE(std::string(e.what()).find("dtx_decision"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
  EXPECT_EQ(balance(my_, 1), kInitialBalance);
  EXPECT_EQ(balance(pg_, 1), kInitialBalance);
}

// The fence waits for a COMMIT insert in flight and then sees it; if that
// transaction rolls back instead, the fence's own ABORT row decides.
TEST_P(DecisionsTest, TheFenceWaitsForACommitInFlight) {
  for (bool lands : {true, false}) {
    SCOPED_TRACE(lands ? "the commit lands" : "the commit rolls back");
    const std::string gtrid = gone_gtrid();
    const DecisionTable t = table();
    SessionLease writer = r().rm().acquire();
    t.ensure_schema(*writer);
    writer->begin_local(Xid::make(gtrid, "r"));
    const std::string resources[] = {"my", "pg"};
    BatchStatement row = t.commit_row(gtrid, resources);
    writer->execute(row.sql, row.params);  // uncommitted
    auto fenced = std::async(std::launch::async, [&] {
      SessionLease s = r().rm().acquire();
      const std::string g[] = {gtrid};
      return t.fence(*s, g).at(gtrid);
    });
    // The fence is waiting for the writer's row lock.
    const std::string waiting =
        GetParam() == "my"
            ? "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO dtx_decision%" +
                  gtrid + "%' AND STATE = 'Update'"
            : "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO dtx_decision%' AND "
              "wait_event_type = 'Lock'";
    if (!eventually([&] { return r().scalar(waiting) > 0; })) {
      std::string seen;
      for (const auto& line : r().run(GetParam() == "my" ? "SELECT concat(ID, ' ', STATE), INFO FROM information_schema.PROCESSLIST"
                                                        : "SELECT state, query FROM pg_stat_activity"))
        seen += line.cell(0).value_or("-") + " | " + line.cell(1).value_or("-") + "\n";
      ADD_FAILURE() << "the fence did not wait for the row in flight; the server shows:\n" << seen;
    }
    EXPECT_EQ(fenced.wait_for(0ms), std::future_status::timeout);
    if (lands)
      writer->commit_one_phase();
    else
      writer->rollback();
    DecisionTable::Fenced f = fenced.get();
    ASSERT_FALSE(f.error) << f.error->what();
    EXPECT_EQ(f.outcome, lands ? TableOutcome::commit : TableOutcome::abort);
    EXPECT_EQ(r().scalar("SELECT outcome FROM dtx_decision WHERE gtrid = '" + gtrid + "'"), lands ? 1 : 2);
  }
}

// Recovery of branches whose owner is gone: a COMMIT row commits them (and
// the row goes), none rolls them back behind an ABORT row; a live owner's are
// left; a pass without the decisions resource configured never presumes.
TEST_P(DecisionsTest, RecoveryDecidesFromTheTable) {
  const std::string committed = gone_gtrid(), aborted = gone_gtrid(), alive = gone_gtrid();
  prepare_by_hand(committed, 3);
  prepare_by_hand(aborted, 4);
  prepare_by_hand(alive, 5);
  {
    SessionLease s = r().rm().acquire();
    table().ensure_schema(*s);
    const std::string resources[] = {"my", "pg"};
    table().insert_commit(*s, committed, resources);
  }
  // alive's owner: a session holding its liveness lock.
  SessionLease owner = r().rm().acquire();
  ASSERT_TRUE(table().try_hold_liveness(*owner, id_, parse_gtrid(alive)->incarnation));

  Config without = config_;
  without.coordinator.decisions.clear();
  RecoveryReport blind = recover(without);
  ASSERT_NE(find(blind, committed, "my"), nullptr);
  EXPECT_EQ(find(blind, committed, "my")->action, BranchAction::left_decisions_unreachable);
  EXPECT_EQ(find(blind, aborted, "pg")->action, BranchAction::left_decisions_unreachable);

  RecoveryReport dry = recover(config_, /*dry_run=*/true);
  EXPECT_EQ(find(dry, committed, "pg")->action, BranchAction::would_commit);
  EXPECT_EQ(find(dry, aborted, "pg")->action, BranchAction::would_roll_back);
  EXPECT_EQ(find(dry, alive, "pg")->action, BranchAction::left_owner_alive);
  EXPECT_EQ(rows_of(aborted), 0) << "a dry run fenced";

  RecoveryReport pass = recover(config_);
  for (const char* rm : {"my", "pg"}) {
    EXPECT_EQ(find(pass, committed, rm)->action, BranchAction::committed) << rm;
    EXPECT_EQ(find(pass, aborted, rm)->action, BranchAction::rolled_back) << rm;
    EXPECT_EQ(find(pass, alive, rm)->action, BranchAction::left_owner_alive) << rm;
    EXPECT_EQ(find(pass, alive, rm)->owner_alive, std::optional<bool>(true));
  }
  for (Direct* d : {&my_, &pg_}) {
    EXPECT_EQ(balance(*d, 3), kInitialBalance - 10);
    EXPECT_EQ(balance(*d, 4), kInitialBalance);
  }
  EXPECT_EQ(rows_of(committed), 0) << "the settled COMMIT row was kept";
  EXPECT_EQ(r().scalar("SELECT outcome FROM dtx_decision WHERE gtrid = '" + aborted + "'"), 2)
      << "the ABORT row must stay (a late commit must keep failing on it)";

  owner.discard();  // the owner dies: its branches are rolled back now
  RecoveryReport after = recover(config_);
  EXPECT_EQ(find(after, alive, "my")->action, BranchAction::rolled_back);
  EXPECT_EQ(find(after, alive, "pg")->action, BranchAction::rolled_back);
  EXPECT_EQ(balance(my_, 5), kInitialBalance);
  EXPECT_EQ(balance(pg_, 5), kInitialBalance);
}

// Rows of a gone incarnation with nothing prepared any more are deleted by
// the next pass: its COMMIT rows at once, its ABORT rows only once older
// than the retention (a late commit must keep failing on them till then).
TEST_P(DecisionsTest, RecoveryDeletesTheRowsOfGoneIncarnations) {
  const std::string inc = new_incarnation(DecisionStore::database);
  const std::string commit = id_ + "." + inc + ".1", young_abort = id_ + "." + inc + ".2",
                    old_abort = id_ + "." + inc + ".3";
  {
    SessionLease s = r().rm().acquire();
    table().ensure_schema(*s);
    const std::string resources[] = {"my", "pg"};
    table().insert_commit(*s, commit, resources);
    const std::string g[] = {young_abort, old_abort};
    table().fence(*s, g);
  }
  r().run(std::string("UPDATE dtx_decision SET created = created - ") +
          (GetParam() == "my" ? "INTERVAL 26 HOUR" : "interval '26 hours'") + " WHERE gtrid = '" + old_abort + "'");
  RecoveryReport pass = recover(config_);
  EXPECT_TRUE(pass.errors.empty()) << pass.errors.front();
  EXPECT_EQ(rows_of(commit), 0);
  EXPECT_EQ(rows_of(old_abort), 0);
  EXPECT_EQ(rows_of(young_abort), 1) << "an ABORT row younger than the retention was deleted";
}

// dtx rollback / dtx commit by an operator: the rollback fences first (and a
// COMMIT row found makes it a refusal without --force), a commit with no row
// writes one first, and a live owner is refused.
TEST_P(DecisionsTest, OperatorSettlesThroughTheTable) {
  std::map<std::string, std::unique_ptr<ResourceManager>, std::less<>> rms;
  for (const auto& [name, rc] : config_.resources) rms.emplace(name, make_resource_manager(rc));
  ResourceLookup lookup = [&](std::string_view n) -> ResourceManager& { return *rms.find(n)->second; };

  const std::string decided = gone_gtrid(), undecided = gone_gtrid(), owned = gone_gtrid();
  prepare_by_hand(decided, 3);
  prepare_by_hand(undecided, 4);
  prepare_by_hand(owned, 5);
  {
    SessionLease s = r().rm().acquire();
    table().ensure_schema(*s);
    const std::string resources[] = {"my", "pg"};
    table().insert_commit(*s, decided, resources);
  }
  try {
    settle_transaction(config_, lookup, nullptr, {.gtrid = decided, .commit = false});
    FAIL() << "rolled back against a COMMIT row";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("COMMIT"), std::string::npos) << e.what();
  }
  SettleResult c = settle_transaction(config_, lookup, nullptr, {.gtrid = decided, .commit = true});
  EXPECT_TRUE(c.finished());
  EXPECT_EQ(c.decision, LoggedDecision::commit);

  SettleResult u = settle_transaction(config_, lookup, nullptr, {.gtrid = undecided, .commit = true});
  EXPECT_TRUE(u.finished());
  EXPECT_EQ(rows_of(undecided), 0) << "the operator's COMMIT row outlived the settlement";
  for (Direct* d : {&my_, &pg_}) {
    EXPECT_EQ(balance(*d, 3), kInitialBalance - 10);
    EXPECT_EQ(balance(*d, 4), kInitialBalance - 10);
  }

  SessionLease owner = r().rm().acquire();
  ASSERT_TRUE(table().try_hold_liveness(*owner, id_, parse_gtrid(owned)->incarnation));
  try {
    settle_transaction(config_, lookup, nullptr, {.gtrid = owned, .commit = false, .force = true});
    FAIL() << "settled beside a live owner";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("alive"), std::string::npos) << e.what();
  }
  owner.discard();
  SessionLease probe = r().rm().acquire();
  ASSERT_TRUE(eventually([&] { return !table().liveness_held(*probe, id_, parse_gtrid(owned)->incarnation); }));
  SettleResult rb = settle_transaction(config_, lookup, nullptr, {.gtrid = owned, .commit = false});
  EXPECT_TRUE(rb.finished());
  EXPECT_EQ(r().scalar("SELECT outcome FROM dtx_decision WHERE gtrid = '" + owned + "'"), 2);
  EXPECT_EQ(balance(my_, 5), kInitialBalance);
  EXPECT_EQ(balance(pg_, 5), kInitialBalance);
}

// R unreachable: the coordinator still starts, and a transaction that needs
// a decision is rolled back at it (nothing was sent to R: not in doubt).
TEST_P(DecisionsTest, AnUnreachableDecisionResourceRollsBackAtTheDecision) {
  Config config = config_;
  config.resources["r"] = GetParam() == "my" ? test::mysql_resource("r") : test::postgres_resource("r");
  config.resources["r"].port = 1;  // nothing listens there
  config.resources["r"].connect_timeout_s = 1;
  config.coordinator.decisions = "r";
  Coordinator coord(config);
  Transaction tx = coord.begin();
  tx.execute("my", move_sql(2, -5));
  tx.execute("pg", move_sql(2, +5));
  try {
    tx.commit();
    FAIL() << "committed without its decision";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::unavailable) << e.what();
    EXPECT_EQ(e.resource(), "r") << e.what();
    EXPECT_EQ(e.gtrid(), tx.id()) << e.what();
  }
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
  EXPECT_EQ(balance(my_, 2), kInitialBalance);
  EXPECT_EQ(balance(pg_, 2), kInitialBalance);
}

// AT mode: an AT branch on R carries the decision in its own local commit
// (no undo record, no prepare, no extra flush), beside an XA branch or an
// AT one on the other database.
TEST_P(DecisionsTest, AnAtBranchOnTheDecisionResourceCarriesTheDecision) {
  for (bool other_at : {false, true}) {
    SCOPED_TRACE(other_at ? "all AT" : "AT on R, XA on the other");
    Config config = config_;
    config.resources[GetParam()].mode = BranchMode::at;
    const std::string other = GetParam() == "my" ? "pg" : "my";
    if (other_at) config.resources[other].mode = BranchMode::at;
    std::string gtrid;
    {
      auto c = std::make_shared<detail::CoordinatorCore>(config);
      Coordinator coord = detail::CoordinatorAccess::wrap(c);
      Transaction tx = coord.begin();
      tx.execute(GetParam(), move_sql(2, -1));
      tx.execute(other, move_sql(2, +1));
      gtrid = tx.id();
      tx.commit();
      c->drain_forgets();
    }
    const int sign = other_at ? 2 : 1;  // the second round moves again
    EXPECT_EQ(balance(r(), 2), kInitialBalance - sign);
    EXPECT_EQ(balance(GetParam() == "my" ? pg_ : my_, 2), kInitialBalance + sign);
    EXPECT_EQ(rows_of(gtrid), 0);
    EXPECT_EQ(r().scalar("SELECT count(*) FROM dtx_undo_log WHERE gtrid = '" + gtrid + "'"), 0)
        << "R's AT branch left an undo record behind";
    EXPECT_EQ(r().scalar("SELECT count(*) FROM dtx_global_lock WHERE gtrid = '" + gtrid + "'"), 0);
  }
}

// A transaction may not outlive the ABORT rows' retention.
TEST_P(DecisionsTest, TransactionTimeoutsAreCapped) {
  Coordinator coord(config_);
  try {
    coord.begin({.timeout = std::chrono::hours(25)});
    FAIL() << "a 25-hour transaction began";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
  }
}

}  // namespace
}  // namespace dtx
