// The crash matrix of commit decisions kept in a resource's own table
// ([coordinator] decisions = "R"; the protocol is at the top of
// decision-table/decision_table.cc). A transfer touches MariaDB ("my") and
// PostgreSQL ("pg"), one of which is R; a real `dtx exec` process stops at a
// failpoint around R's commit (docs/failpoints.md):
//
//   before-decision-commit  the other branch prepared, R's commit not sent
//   decision-commit-sent    R's commit sent, the answer never used
//   after-decision-commit   R committed, the other branch still prepared
//
// and, for each, with R on PostgreSQL and with R on MariaDB:
//   (a) the coordinator is killed there (SIGKILL);
//   (b) it hangs there, alive: recovery leaves its branch; killed, recovered;
//   (c) it hangs there while R's server is killed and restarted; killed,
//       recovered.
// Recovery is always `dtx recover` run by another process whose config has no
// log_dir: nothing but the databases is needed. Then, on the real rows: both
// branches committed or both rolled back (before-decision-commit: rolled back;
// after-decision-commit: committed; decision-commit-sent: either), as R's
// dtx_decision says, and nothing of the transaction left prepared.
// Also: recovery from a second "machine" (no log_dir, an empty log_dir), two
// recovery passes at once, and recovery racing a decision commit that a lock
// on dtx_decision keeps in flight.
//
// These tests kill database servers (scripts/db.sh kill): ctest runs them
// alone (RUN_SERIAL). By hand, run them against a private set of servers
// (DTX_TEST_MYSQL_PORT, DTX_TEST_PG_PORT, DTX_DB_DIR: the variables
// scripts/db.sh reads, inherited by its runs here). Every test leaves both
// servers up. scripts/db.sh is found through DTX_SOURCE_DIR if set, else in
// the source tree this test was built from.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decision-table/decision_table.h"
#include "drivers/resource_manager.h"
#include "support/db_servers.h"
#include "support/process.h"
#include "support/recovery_runs.h"
#include "support/test_env.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using test::Child;
using test::eventually;
using test::fresh_sql;
using test::kServerStartLimit;
using test::Pass;
using test::reachable;
using test::source_dir;

constexpr std::int64_t kInitialBalance = 1000;
constexpr std::int64_t kAmount = 100;
constexpr int kRows = 4;  // one account row per concurrent transfer
constexpr auto kReachLimit = std::chrono::seconds(30);   // a child reaching its failpoint
constexpr auto kSettleLimit = std::chrono::seconds(30);  // recovery passes until nothing is left

const std::string kBefore = "before-decision-commit";
const std::string kSent = "decision-commit-sent";
const std::string kAfter = "after-decision-commit";

enum class Outcome { committed, rolled_back, split };

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::committed: return "committed";
    case Outcome::rolled_back: return "rolled back";
    case Outcome::split: break;
  }
  return "SPLIT";
}

// What recovery must reach after a crash at `failpoint`; nullopt: either.
std::optional<Outcome> expected_after(const std::string& failpoint) {
  if (failpoint == kBefore) return Outcome::rolled_back;
  if (failpoint == kAfter) return Outcome::committed;
  return std::nullopt;
}

class DecisionsCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::is_regular_file(source_dir() / "scripts" / "db.sh"))
        << "no scripts/db.sh under " << source_dir() << ": set DTX_SOURCE_DIR to the source tree";
    std::random_device rd;
    id_ = "dc" + std::to_string(rd() % 100000000);
    dir_ = test::fresh_dir("decisions-crash");
    servers_.emplace(dir_, my_, pg_);
    table_ = "acct_" + id_;
    // A server left down by an earlier run would fail everything below.
    if (!reachable(my_) || !reachable(pg_)) servers_->start_all();
    for (const auto* rc : {&my_, &pg_}) {
      fresh_sql(*rc, "DROP TABLE IF EXISTS " + table_);
      fresh_sql(*rc, "CREATE TABLE " + table_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" +
                   (rc == &my_ ? " ENGINE=InnoDB" : ""));
      for (int row = 1; row <= kRows; ++row)
        fresh_sql(*rc, "INSERT INTO " + table_ + " VALUES (" + std::to_string(row) + ", " +
                     std::to_string(kInitialBalance) + ")");
    }
  }

  void TearDown() override {
    holder_.reset();  // a lock a test held on dtx_decision
    holder_rm_.reset();
    for (auto& child : children_) child.reset();  // kills what still runs (a hung coordinator)
    if (servers_ && servers_->touched()) servers_->start_all();
    std::vector<std::string> left;
    auto none_left = [&] {
      left.clear();
      for (const auto* rc : {&my_, &pg_})
        for (const auto& p : ours_prepared(*rc)) left.push_back(rc->name + ": " + p.raw);
      return left.empty();
    };
    try {
      // A test that stopped half-way may leave a transaction prepared.
      for (int pass = 0; pass < 5 && !config_.empty() && !none_left(); ++pass) recover(config_);
      if (!none_left()) {
        ADD_FAILURE() << "left prepared: " << left.front() << " (" << left.size() << " branches); kept " << dir_
                      << " for `dtx recover --config " << config_.string() << "`";
        return;
      }
      for (const auto* rc : {&my_, &pg_}) {
        fresh_sql(*rc, "DROP TABLE IF EXISTS " + table_);
        try {
          fresh_sql(*rc, "DELETE FROM dtx_decision WHERE gtrid >= '" + id_ + ".' AND gtrid < '" + id_ + "/'");
        } catch (const Error&) {  // no dtx_decision on this server: nothing of ours there
        }
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup: " << e.what() << "; kept " << dir_;
      return;
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const ResourceConfig& rc(const std::string& resource) const { return resource == "my" ? my_ : pg_; }
  static std::string other(const std::string& resource) { return resource == "my" ? "pg" : "my"; }
  static std::string server_of(const std::string& resource) { return resource == "my" ? "mariadb" : "postgres"; }

  // A coordinator's config on some "machine": decisions kept by `decider`,
  // and a log_dir only if one is given. TearDown recovers with the first
  // one without.
  fs::path write_config(const std::string& name, const std::string& decider, const fs::path& log_dir = {}) {
    const fs::path path = dir_ / (name + ".toml");
    std::ofstream out(path);
    out << "[coordinator]\nid = \"" << id_ << "\"\ndecisions = \"" << decider << "\"\n";
    if (!log_dir.empty()) out << "log_dir = \"" << log_dir.string() << "\"\n";
    for (const auto* r : {&my_, &pg_})
      out << "\n[resources." << r->name << "]\ntype = \"" << (r->type == ResourceType::mysql ? "mysql" : "postgres")
          << "\"\nhost = \"" << r->host << "\"\nport = " << r->port << "\nuser = \"" << r->user
          << "\"\npassword = \"" << r->password << "\"\ndatabase = \"" << r->database << "\"\n";
    if (config_.empty() && log_dir.empty()) config_ = path;
    return path;
  }

  std::vector<PreparedXid> ours_prepared(const ResourceConfig& r) const {
    return test::prepared_of_coordinator(r, id_);
  }
  std::size_t prepared_of(const std::string& gtrid) const {
    std::size_t n = 0;
    for (const auto* r : {&my_, &pg_})
      for (const auto& p : ours_prepared(*r)) n += p.xid.gtrid == gtrid;
    return n;
  }
  std::int64_t balance(const ResourceConfig& r, int row) const {
    return fresh_sql(r, "SELECT balance FROM " + table_ + " WHERE id = " + std::to_string(row))[0].as_int64(0);
  }
  // What R's dtx_decision says of `gtrid` (a plain read: for checking, after
  // everything that could insert the row has ended).
  TableOutcome decision_row(const std::string& decider, const std::string& gtrid) const {
    Result r = fresh_sql(rc(decider), "SELECT outcome FROM dtx_decision WHERE gtrid = '" + gtrid + "'");
    if (r.empty()) return TableOutcome::none;
    const std::int64_t outcome = r[0].as_int64(0);
    EXPECT_TRUE(outcome == 1 || outcome == 2) << "dtx_decision row of " << gtrid << " says " << outcome;
    return outcome == 1 ? TableOutcome::commit : outcome == 2 ? TableOutcome::abort : TableOutcome::none;
  }
  // Row `row` on both databases: MariaDB pays PostgreSQL.
  Outcome outcome(int row) const {
    const std::int64_t my = balance(my_, row), pg = balance(pg_, row);
    if (my == kInitialBalance - kAmount && pg == kInitialBalance + kAmount) return Outcome::committed;
    if (my == kInitialBalance && pg == kInitialBalance) return Outcome::rolled_back;
    ADD_FAILURE() << "row " << row << " split: my " << my << ", pg " << pg;
    return Outcome::split;
  }
  bool r_committed(const std::string& decider, int row) const {
    return balance(rc(decider), row) != kInitialBalance;
  }

  std::string tag(const std::string& what) { return what + std::to_string(++runs_); }
  Child& start_child(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    std::fflush(nullptr);  // else the child's freopen() writes our buffered output a second time
    children_.push_back(std::make_unique<Child>(test::dtx_binary(), args, env, dir_, tag("dtx")));
    return *children_.back();
  }
  // The transfer of row `row` as a `dtx exec` process stopped by `failpoint`.
  Child& start_transfer(const fs::path& config, int row, const std::string& failpoint) {
    const std::string where = " WHERE id = " + std::to_string(row);
    return start_child({"exec", "--config", config.string(),
                        "my=UPDATE " + table_ + " SET balance = balance - " + std::to_string(kAmount) + where,
                        "pg=UPDATE " + table_ + " SET balance = balance + " + std::to_string(kAmount) + where},
                       {{"DTX_FAILPOINT", failpoint}});
  }
  static Pass finish(Child& child) { return test::to_pass({child.wait(), child.out(), child.err()}); }
  Pass recover(const fs::path& config) {
    return test::to_pass(test::run_dtx_child(dir_, tag("recover"), {"recover", "--json", "--config", config.string()}));
  }



  // The one transaction of ours prepared on `resource`; "" (and a failure) if not exactly one.
  std::string only_prepared(const std::string& resource) {
    auto list = ours_prepared(rc(resource));
    EXPECT_EQ(list.size(), 1u) << "prepared on " << resource;
    return list.size() == 1 ? list[0].xid.gtrid : "";
  }

  // Waits until `child`, armed with <failpoint>:hang, stands at it, and
  // returns its gtrid: a branch not in `known` is prepared on the other
  // resource, and past R's commit R's dtx_decision holds its COMMIT row too.
  // Before R's commit there is no I/O between that prepare and the failpoint.
  std::string await_hang(Child& child, const std::string& decider, const std::string& failpoint,
                         const std::set<std::string>& known = {}) {
    std::string gtrid;
    const bool there = eventually([&] {
      gtrid.clear();
      for (const auto& p : ours_prepared(rc(other(decider))))
        if (!known.count(p.xid.gtrid)) gtrid = p.xid.gtrid;
      return !gtrid.empty() && (failpoint == kBefore || decision_row(decider, gtrid) == TableOutcome::commit);
    }, kReachLimit);
    EXPECT_TRUE(there) << "the coordinator never reached " << failpoint << ": " << child.err();
    EXPECT_FALSE(child.exited()) << "the hung coordinator must be alive: " << child.err();
    return there ? gtrid : "";
  }

  // One crashed transfer: its row, where its coordinator stopped, its gtrid,
  // and whether R had committed it before recovery (nullopt: R's branch
  // itself is in doubt, listed prepared on R).
  struct Crashed {
    int row = 1;
    std::string failpoint;
    std::string gtrid;
    std::optional<bool> r_committed;
  };

  // After the crash, before recovery: R's commit and the COMMIT row are one
  // local commit, so R's rows changed exactly when the row is there (and no
  // fence ran yet). Sets c.r_committed, unless R lists the branch prepared.
  void expect_decision_is_r_commit(const std::string& decider, Crashed& c) {
    for (const auto& p : ours_prepared(rc(decider)))
      if (p.xid.gtrid == c.gtrid) {
        std::cout << "note: R's own branch of " << c.gtrid << " (" << c.failpoint << ") is listed prepared on "
                  << decider << " after its server's crash\n";
        return;
      }
    c.r_committed = r_committed(decider, c.row);
    EXPECT_EQ(decision_row(decider, c.gtrid), *c.r_committed ? TableOutcome::commit : TableOutcome::none)
        << "R = " << decider << ", R's rows " << (*c.r_committed ? "" : "not ") << "committed, gtrid " << c.gtrid;
  }

  struct Settled {
    std::vector<Pass> passes;
    std::map<std::string, std::vector<std::string>> actions;  // "resource gtrid" -> actions, pass by pass
    std::string last_output() const {
      return passes.empty() ? "no pass" : passes.back().out + passes.back().err;
    }
  };
  void add_pass(Settled& s, Pass pass) {
    for (const auto& [key, action] : test::actions_of(pass.report, id_)) s.actions[key].push_back(action);
    s.passes.push_back(std::move(pass));
  }
  // `dtx recover` passes with `config` until none of our branches is
  // prepared (bounded). Right after a kill the dead process's sessions are
  // still ending for a moment: its liveness lock still reads as held
  // (left_owner_alive), MariaDB answers 1397 for its branch
  // (left_session_busy); a later pass settles those.
  Settled recover_until_settled(const fs::path& config, Settled s = {}) {
    const bool settled = eventually([&] {
      add_pass(s, recover(config));
      return s.passes.back().code == 0 && ours_prepared(my_).empty() && ours_prepared(pg_).empty();
    }, kSettleLimit);
    EXPECT_TRUE(settled) << "still prepared after " << s.passes.size() << " passes; last:\n" << s.last_output();
    if (s.passes.size() > 1) std::cout << "note: " << s.passes.size() << " recovery passes to settle\n";
    return s;
  }

  // The branch of `gtrid` on `resource` was finished exactly once over all
  // the passes, as `outcome` says; every other answer is one that leaves it
  // for a later pass or finds it finished by someone else.
  // `fence_may_fail`: a pass may also have failed it (its fence timed out on
  // a commit in flight) and left it for the next.
  void expect_finished_once(const Settled& s, const std::string& resource, const std::string& gtrid,
                            Outcome outcome, bool fence_may_fail = false) {
    auto it = s.actions.find(resource + " " + gtrid);
    ASSERT_NE(it, s.actions.end()) << "no pass listed the branch on " << resource << " of " << gtrid << "\n"
                                   << s.last_output();
    int finished = 0;
    std::string seen;
    for (const std::string& action : it->second) {
      seen += action + " ";
      if (action == "committed" || action == "rolled_back") {
        ++finished;
        EXPECT_EQ(action, outcome == Outcome::committed ? "committed" : "rolled_back") << gtrid;
      } else {
        EXPECT_TRUE(action == "left_owner_alive" || action == "left_session_busy" || action == "already_finished" ||
                    action == "left_seen_once" || (fence_may_fail && action == "failed"))
            << "branch on " << resource << " of " << gtrid << ": " << action;
      }
    }
    EXPECT_EQ(finished, 1) << "branch on " << resource << " of " << gtrid << ", actions: " << seen;
  }

  // What recovery left for `gtrid` (row `row`): both branches committed or
  // both rolled back, as expected (nullopt: either); nothing of it prepared;
  // R's dtx_decision agreeing (a rolled-back transaction keeps the fence's
  // ABORT row; a committed one has its COMMIT row or, dropped, none).
  Outcome expect_all_or_nothing(const std::string& decider, const std::string& gtrid, int row,
                                std::optional<Outcome> expected) {
    const Outcome got = outcome(row);
    if (expected) {
      EXPECT_STREQ(to_string(got), to_string(*expected)) << gtrid;
    }
    EXPECT_EQ(prepared_of(gtrid), 0u) << gtrid << " is still prepared";
    const std::string row_says = to_string(decision_row(decider, gtrid));
    if (got == Outcome::rolled_back) {
      EXPECT_EQ(row_says, "abort") << gtrid;
    } else if (got == Outcome::committed) {
      EXPECT_NE(row_says, "abort") << gtrid;
    }
    return got;
  }

  // Waits until `config`'s recovery reads the owners of all `n` prepared
  // branches of ours as gone (their liveness locks free: the servers have
  // ended the killed processes' sessions). `dtx in-doubt` only looks.
  void await_owners_gone(const fs::path& config, std::size_t n) {
    std::string last;
    const bool gone = eventually([&] {
      Pass p = test::to_pass(
          test::run_dtx_child(dir_, tag("in-doubt"), {"in-doubt", "--json", "--config", config.string()}));
      last = p.out + p.err;
      std::size_t dead = 0;
      for (const auto& b : p.report.value("branches", json::array()))
        if (b.value("coordinator_id", json()) == id_ && b.value("owner_alive", json()) == false) ++dead;
      return dead == n;
    }, kSettleLimit);
    ASSERT_TRUE(gone) << "the killed coordinators still read as alive:\n" << last;
  }

  // The first recovery pass after R's server came back from its crash,
  // bounded. MariaDB's crash recovery can bring R's branch back as a prepared
  // XA branch although its one-phase commit was acknowledged (the binary log
  // has the commit; InnoDB's commit record had not reached the redo log, and
  // a branch with an XA id is not committed from the binary log): that
  // branch holds G's COMMIT row, so the fence waits on it, every pass, until
  // its lock wait ends. Recovery must finish it (commit: it carries the
  // decision). A pass still running after kPassBound is a failure; the test
  // then commits R's prepared branches itself, as an operator would, so the
  // rest is still checked.
  Settled first_pass_after_restart(const fs::path& config, const std::string& decider) {
    constexpr auto kPassBound = std::chrono::seconds(15);  // the fence waits 30 s for a row
    Settled s;
    Child& pass = start_child({"recover", "--json", "--config", config.string()});
    if (!eventually([&] { return pass.exited(); }, kPassBound)) {
      std::string held;
      auto rm = make_resource_manager(rc(decider));
      SessionLease session = rm->acquire();
      for (const auto& p : ours_prepared(rc(decider))) {
        const FinishResult done = session->commit_prepared(p.xid);
        held += " " + p.xid.gtrid + (done.error ? " (" + std::string(done.error->what()) + ")" : "");
      }
      ADD_FAILURE() << "the recovery pass still runs " << kPassBound.count() << " s after R's server restarted; "
                    << (held.empty() ? "nothing of ours is prepared on " + decider
                                     : "R's own branch is listed prepared on " + decider + ":" + held +
                                           " — its one-phase commit came back prepared from the server's crash "
                                           "recovery, and recovery must commit it (it holds the COMMIT row the "
                                           "fence waits for); committed by the test to check the rest");
      if (!eventually([&] { return pass.exited(); }, kSettleLimit)) {
        ADD_FAILURE() << "the recovery pass still runs after R's prepared branches were committed";
        pass.kill(SIGKILL);
      }
    }
    add_pass(s, finish(pass));
    return s;
  }

  // What recovery left of each crashed transfer, and the matrix line of each.
  void expect_settled(const std::string& decider, const std::vector<Crashed>& crashed, const Settled& s,
                      const char* mode) {
    for (const Crashed& c : crashed) {
      const Outcome got = expect_all_or_nothing(decider, c.gtrid, c.row, expected_after(c.failpoint));
      if (got != Outcome::split) expect_finished_once(s, other(decider), c.gtrid, got);
      if (c.r_committed) {
        EXPECT_EQ(got == Outcome::committed, *c.r_committed) << "recovery must follow R's commit";
      }
      std::cout << "matrix: R=" << decider << " " << c.failpoint << " " << mode << ": " << to_string(got) << " ("
                << s.passes.size() << " recovery passes)\n";
    }
  }

  // The whole of one matrix cell once the coordinator is gone: recovery by
  // another process, then all-or-nothing.
  void recover_and_check(const fs::path& config, const std::string& decider, Crashed c, const char* mode) {
    expect_decision_is_r_commit(decider, c);
    expect_settled(decider, {c}, recover_until_settled(config), mode);
  }

  fs::path dir_, config_;
  std::string id_, table_;
  ResourceConfig my_ = test::mysql_resource("my"), pg_ = test::postgres_resource("pg");
  std::vector<std::unique_ptr<Child>> children_;
  std::unique_ptr<ResourceManager> holder_rm_;
  std::optional<SessionLease> holder_;
  std::optional<test::DbServers> servers_;
  int runs_ = 0;
};

// ---- The matrix: {R on PostgreSQL, R on MariaDB} x the three failpoints.

struct Cell {
  std::string decider;    // "pg" or "my": R, the resource that keeps the decisions
  std::string failpoint;  // where the coordinator stops
};

// How gtest (and so ctest's test names) shows a cell.
void PrintTo(const Cell& cell, std::ostream* os) { *os << "R=" << cell.decider << " " << cell.failpoint; }

std::vector<Cell> all_cells() {
  std::vector<Cell> cells;
  for (const char* decider : {"pg", "my"})
    for (const std::string& failpoint : {kBefore, kSent, kAfter}) cells.push_back({decider, failpoint});
  return cells;
}

std::string cell_name(const ::testing::TestParamInfo<Cell>& info) {
  std::string name = std::string(info.param.decider == "pg" ? "RonPostgres_" : "RonMariadb_") + info.param.failpoint;
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

class CoordinatorCrash : public DecisionsCrashTest, public ::testing::WithParamInterface<Cell> {};

// (a) The failpoint kills the coordinator; `dtx recover` from another
// process, with no log_dir, finishes the transaction as R decided.
TEST_P(CoordinatorCrash, KilledCoordinatorIsRecoveredAllOrNothing) {
  const Cell& cell = GetParam();
  const fs::path config = write_config("coordinator", cell.decider);
  Child& child = start_transfer(config, 1, cell.failpoint);
  const test::ExitStatus st = child.wait();
  ASSERT_TRUE(st.killed_by(SIGKILL)) << "exit " << st.code << " signal " << st.signal << "\n" << child.err();
  const std::string gtrid = only_prepared(other(cell.decider));
  ASSERT_FALSE(gtrid.empty());
  recover_and_check(config, cell.decider, {1, cell.failpoint, gtrid, {}}, "coordinator killed");
}

// (b) The coordinator hangs at the failpoint, alive: recovery leaves its
// branch (left_owner_alive, exit 3) and R's table untouched; once it is
// killed, recovery finishes the transaction.
TEST_P(CoordinatorCrash, HungCoordinatorIsLeftAloneThenRecoveredOnceKilled) {
  const Cell& cell = GetParam();
  const fs::path config = write_config("coordinator", cell.decider);
  Child& child = start_transfer(config, 1, cell.failpoint + ":hang");
  const std::string gtrid = await_hang(child, cell.decider, cell.failpoint);
  ASSERT_FALSE(gtrid.empty());
  const TableOutcome row_before = decision_row(cell.decider, gtrid);

  Pass alive = recover(config);
  EXPECT_EQ(alive.code, 3) << alive.out << alive.err;
  const auto actions = test::actions_of(alive.report, id_);
  EXPECT_EQ(actions.size(), 1u) << alive.out;
  EXPECT_EQ(actions.count(other(cell.decider) + " " + gtrid) ? actions.at(other(cell.decider) + " " + gtrid) : "",
            "left_owner_alive")
      << alive.out;
  EXPECT_EQ(prepared_of(gtrid), 1u) << "recovery must not touch a live owner's branch";
  EXPECT_EQ(to_string(decision_row(cell.decider, gtrid)), std::string(to_string(row_before)))
      << "recovery must not fence a live owner's transaction";

  child.kill(SIGKILL);
  EXPECT_TRUE(child.wait().killed_by(SIGKILL));
  recover_and_check(config, cell.decider, {1, cell.failpoint, gtrid, {}}, "coordinator hung, then killed");
}

INSTANTIATE_TEST_SUITE_P(Matrix, CoordinatorCrash, ::testing::ValuesIn(all_cells()), cell_name);

// ---- Recovery from elsewhere, concurrently, and racing R's commit.

class DecisionsIn : public DecisionsCrashTest, public ::testing::WithParamInterface<std::string> {};

std::string decider_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param == "pg" ? "Postgres" : "Mariadb";
}

// Machine 1 (with a log_dir of its own) crashes with transactions on both
// sides of R's commit, and its disk is lost; machine 2 (no log_dir), then
// machine 3 (an empty, fresh log_dir) settle everything from the databases.
TEST_P(DecisionsIn, SecondMachineWithoutTheFirstOnesDiskSettlesEverything) {
  const std::string decider = GetParam();
  const fs::path first_log = dir_ / "machine1-log";
  const fs::path first = write_config("machine1", decider, first_log);
  const fs::path second = write_config("machine2", decider);
  const fs::path third_log = dir_ / "machine3-log";
  fs::create_directories(third_log);
  const fs::path third = write_config("machine3", decider, third_log);

  int row = 0;
  for (const fs::path& recovering : {second, third}) {
    // Rows row+1 (R committed) and row+2 (R never asked) crash on machine 1.
    std::map<int, std::string> gtrids;
    for (const std::string& failpoint : {kAfter, kBefore}) {
      ++row;
      std::set<std::string> before;
      for (const auto& p : ours_prepared(rc(other(decider)))) before.insert(p.xid.gtrid);
      Child& child = start_transfer(first, row, failpoint);
      ASSERT_TRUE(child.wait().killed_by(SIGKILL)) << child.err();
      for (const auto& p : ours_prepared(rc(other(decider))))
        if (!before.count(p.xid.gtrid)) gtrids[row] = p.xid.gtrid;
      ASSERT_TRUE(gtrids.count(row)) << "row " << row << " left nothing prepared on " << other(decider);
    }
    fs::remove_all(first_log);  // machine 1 and its disk are gone

    Settled s = recover_until_settled(recovering);
    for (const auto& [r, gtrid] : gtrids) {
      const Outcome want = r % 2 ? Outcome::committed : Outcome::rolled_back;
      expect_all_or_nothing(decider, gtrid, r, want);
      expect_finished_once(s, other(decider), gtrid, want);
    }
    EXPECT_FALSE(fs::exists(first_log)) << "recovery from elsewhere must not need machine 1's log_dir";
    std::cout << "second machine (" << recovering.filename() << "): settled rows " << row - 1 << " and " << row
              << " in " << s.passes.size() << " passes\n";
  }
  EXPECT_TRUE(fs::is_empty(third_log)) << "recovery wrote into machine 3's fresh log_dir";
}

// Several crashed transactions; two `dtx recover` passes started at once:
// each incarnation is taken by one of them, so every branch is finished
// exactly once, and each transaction is all-or-nothing.
TEST_P(DecisionsIn, TwoRecoveryPassesAtOnceSettleEachTransactionOnce) {
  const std::string decider = GetParam();
  const fs::path config = write_config("coordinator", decider);
  const std::vector<std::string> failpoints = {kAfter, kBefore, kSent, kAfter};
  std::map<int, std::string> gtrids;
  for (int row = 1; row <= kRows; ++row) {
    std::set<std::string> before;
    for (const auto& p : ours_prepared(rc(other(decider)))) before.insert(p.xid.gtrid);
    Child& child = start_transfer(config, row, failpoints[row - 1]);
    ASSERT_TRUE(child.wait().killed_by(SIGKILL)) << child.err();
    for (const auto& p : ours_prepared(rc(other(decider))))
      if (!before.count(p.xid.gtrid)) gtrids[row] = p.xid.gtrid;
    ASSERT_TRUE(gtrids.count(row)) << "row " << row << " left nothing prepared on " << other(decider);
  }
  // Else both passes could just find the owners alive and prove nothing.
  ASSERT_NO_FATAL_FAILURE(await_owners_gone(config, kRows));

  Child& a = start_child({"recover", "--json", "--config", config.string()});
  Child& b = start_child({"recover", "--json", "--config", config.string()});
  ASSERT_TRUE(eventually([&] { return a.exited() && b.exited(); }, kSettleLimit)) << "the two passes did not end";
  Settled s;
  add_pass(s, finish(a));
  add_pass(s, finish(b));
  for (const Pass& p : s.passes) EXPECT_NE(p.code, 1) << p.out << p.err;
  std::cout << "two passes at once: exit " << s.passes[0].code << " and " << s.passes[1].code << "\n";
  s = recover_until_settled(config, std::move(s));  // what a session still ending left (MariaDB's 1397)

  for (const auto& [row, gtrid] : gtrids) {
    const Outcome got = expect_all_or_nothing(decider, gtrid, row, expected_after(failpoints[row - 1]));
    if (got != Outcome::split) expect_finished_once(s, other(decider), gtrid, got);
  }
}

// R's commit is slow: a session holds a lock that the COMMIT row's insert
// waits for (PostgreSQL: LOCK TABLE dtx_decision IN EXCLUSIVE MODE; MariaDB:
// FOR UPDATE over the id's range of dtx_decision, whose gap locks block the
// insert). The coordinator dies while its commit waits; recovery, started
// then, waits at its fence too. Once the lock is released, the outcome is
// all-or-nothing and agrees with dtx_decision.
TEST_P(DecisionsIn, RecoveryRacingASlowDecisionCommitNeverSplits) {
  const std::string decider = GetParam();
  const bool mysql = decider == "my";
  const fs::path config = write_config("coordinator", decider);
  holder_rm_ = make_resource_manager(rc(decider));
  holder_.emplace(holder_rm_->acquire());
  DecisionTable(rc(decider)).ensure_schema(**holder_);
  (*holder_)->begin_local(Xid::make("holder" + id_, "x"));
  (*holder_)->execute(mysql ? "SELECT gtrid FROM dtx_decision WHERE gtrid >= '" + id_ + ".' AND gtrid < '" + id_ +
                                  "/' FOR UPDATE"
                            : std::string("LOCK TABLE dtx_decision IN EXCLUSIVE MODE"),
                      {});
  // How many inserts into dtx_decision wait for a lock: the coordinator's
  // COMMIT row names its branches, the fence's ABORT row does not. On
  // MariaDB, a running insert (processlist; information_schema.innodb_trx is
  // a cache that polling keeps from refreshing) can only be waiting: the
  // holder's gap lock covers its key.
  auto waiting = [&](const std::string& columns) -> std::int64_t {
    const std::string like = "'%dtx_decision (" + columns + ") VALUES%'";
    return fresh_sql(rc(decider), mysql ? "SELECT COUNT(*) FROM information_schema.processlist WHERE command IN "
                                    "('Query', 'Execute') AND id <> CONNECTION_ID() AND info LIKE " + like
                                  : "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                                    "pid <> pg_backend_pid() AND query LIKE " + like)[0]
        .as_int64(0);
  };
  // For failure messages: what R's sessions are doing.
  auto sessions = [&] {
    std::string out;
    for (const Row& row : fresh_sql(rc(decider), mysql ? "SELECT CONCAT_WS(' | ', id, command, state, info) FROM "
                                                   "information_schema.processlist WHERE db = 'dtx_test'"
                                                 : "SELECT concat_ws(' | ', pid, state, wait_event_type, query) FROM "
                                                   "pg_stat_activity WHERE datname = current_database()"))
      out += row.cell(0).value_or("NULL") + "\n";
    return out;
  };

  Child& child = start_transfer(config, 1, kSent);
  ASSERT_TRUE(eventually([&] { return waiting("gtrid, outcome, branches") == 1; }, kReachLimit))
      << "R's commit never waited for the lock: " << child.err() << "\nR's sessions:\n" << sessions();
  ASSERT_TRUE(eventually([&] { return child.exited(); }, kReachLimit)) << "decision-commit-sent did not kill";
  EXPECT_TRUE(child.wait().killed_by(SIGKILL)) << child.err();
  EXPECT_EQ(waiting("gtrid, outcome, branches"), 1) << "the dead coordinator's commit must still be in flight";
  const std::string gtrid = only_prepared(other(decider));
  ASSERT_FALSE(gtrid.empty());
  EXPECT_EQ(to_string(decision_row(decider, gtrid)), std::string("none")) << "a plain read sees no row yet";
  ASSERT_NO_FATAL_FAILURE(await_owners_gone(config, 1));

  Child& pass = start_child({"recover", "--json", "--config", config.string()});
  ASSERT_TRUE(eventually([&] { return waiting("gtrid, outcome") == 1 || pass.exited(); }, kReachLimit))
      << "recovery's fence never reached the lock; R's sessions:\n" << sessions();
  EXPECT_FALSE(pass.exited()) << "recovery must wait for the commit in flight, not decide: " << pass.out()
                              << pass.err();
  (*holder_)->rollback();

  ASSERT_TRUE(eventually([&] { return pass.exited(); }, kSettleLimit)) << "recovery still waits after the release";
  Settled s;
  add_pass(s, finish(pass));
  s = recover_until_settled(config, std::move(s));
  const Outcome got = expect_all_or_nothing(decider, gtrid, 1, std::nullopt);
  if (got != Outcome::split) expect_finished_once(s, other(decider), gtrid, got, /*fence_may_fail=*/true);
  std::cout << "race with a slow decision commit, R=" << decider << ": " << to_string(got) << " (first pass exit "
            << s.passes.front().code << ")\n";
}

// (c) For each failpoint, a coordinator hangs there, alive, while R's
// database server is killed (SIGKILL) and restarted under it; then the
// coordinators are killed too, and recovery finishes each transaction as R's
// restarted database decided. The three cells share one server crash (one
// coordinator per failpoint, each on its own row): a crash and restart costs
// seconds, and the suite has minutes.
TEST_P(DecisionsIn, DecidersServerKilledUnderHungCoordinators) {
  const std::string decider = GetParam();
  const fs::path config = write_config("coordinator", decider);
  std::vector<Crashed> crashed;
  std::vector<Child*> hung;
  std::set<std::string> known;
  for (const std::string& failpoint : {kBefore, kSent, kAfter}) {
    const int row = static_cast<int>(crashed.size()) + 1;
    Child& child = start_transfer(config, row, failpoint + ":hang");
    const std::string gtrid = await_hang(child, decider, failpoint, known);
    ASSERT_FALSE(gtrid.empty());
    known.insert(gtrid);
    crashed.push_back({row, failpoint, gtrid, {}});
    hung.push_back(&child);
  }

  ASSERT_NO_FATAL_FAILURE(servers_->kill(server_of(decider)));
  ASSERT_NO_FATAL_FAILURE(servers_->start(server_of(decider)));
  std::set<std::string> still;
  for (const auto& p : ours_prepared(rc(other(decider)))) still.insert(p.xid.gtrid);
  for (const Crashed& c : crashed)
    EXPECT_TRUE(still.count(c.gtrid)) << "the other branch must stay prepared: " << c.failpoint;
  for (Child* child : hung) {
    EXPECT_FALSE(child->exited()) << "the coordinator must have hung through the server's crash: " << child->err();
    child->kill(SIGKILL);
    EXPECT_TRUE(child->wait().killed_by(SIGKILL));
  }
  for (Crashed& c : crashed) expect_decision_is_r_commit(decider, c);

  Settled s = recover_until_settled(config, first_pass_after_restart(config, decider));
  expect_settled(decider, crashed, s, "R's server killed under the hung coordinator");
}

INSTANTIATE_TEST_SUITE_P(Deciders, DecisionsIn, ::testing::Values("pg", "my"), decider_name);

}  // namespace
}  // namespace dtx
