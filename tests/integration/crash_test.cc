// A database server crashes while one of dtx's transactions is between
// prepare and commit. The coordinator runs as a real `dtx exec` process that a
// failpoint stops (docs/failpoints.md); the server is killed with SIGKILL by
// `scripts/db.sh kill` and brought back by `scripts/db.sh start`, which runs
// its crash recovery. Then `dtx recover` must finish the transaction as the
// decision log says, on both databases.
//
// These tests kill the shared test servers: ctest runs them alone (RUN_SERIAL).
// Run by hand beside other tests, they may break those tests' connections;
// every kill is short and every test leaves both servers up (TearDown restarts
// them if a test stopped half-way).
//
// scripts/db.sh is DTX_SOURCE_DIR's if set, else the source tree's this test
// was built from (tests/support/db_servers.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "decision-log/decision_log.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/db_servers.h"
#include "support/process.h"
#include "support/test_env.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::Child;
using test::ChildRun;
using test::eventually;
using test::ExitStatus;
using test::fresh_sql;
using test::reachable;

constexpr std::int64_t kInitialBalance = 1000;
constexpr std::int64_t kAmount = 100;

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::is_regular_file(test::source_dir() / "scripts" / "db.sh"))
        << "no scripts/db.sh under " << test::source_dir() << ": set DTX_SOURCE_DIR to the source tree";
    std::random_device rd;
    id_ = "crash" + std::to_string(rd() % 1000000);
    dir_ = test::fresh_dir("crash");
    servers_.emplace(dir_, my_, pg_);
    log_dir_ = dir_ / "log";
    table_ = "acct_" + id_;
    config_ = dir_ / "dtx.toml";
    write_config();
    // A server left down by an earlier run would fail everything below.
    if (!reachable(my_) || !reachable(pg_)) servers_->start_all();
    for (const auto* rc : {&my_, &pg_}) {
      fresh_sql(*rc, "DROP TABLE IF EXISTS " + table_);
      fresh_sql(*rc, "CREATE TABLE " + table_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" +
                   (rc == &my_ ? " ENGINE=InnoDB" : ""));
      fresh_sql(*rc, "INSERT INTO " + table_ + " VALUES (1, " + std::to_string(kInitialBalance) + ")");
    }
  }

  void TearDown() override {
    if (servers_ && servers_->touched()) servers_->start_all();
    std::vector<std::string> left;
    auto list_left = [&] {
      left.clear();
      for (const auto* rc : {&my_, &pg_})
        for (const auto& p : ours_prepared(*rc)) left.push_back(rc->name + ": " + p.raw);
      return left.empty();
    };
    try {
      // A test that stopped half-way may leave its transaction prepared.
      for (int pass = 0; pass < 5 && !list_left(); ++pass) recover();
      if (!list_left()) {
        // Keep the decision log, and the table (dropping it would wait for
        // the prepared branch's locks): an operator can still finish it.
        ADD_FAILURE() << "left prepared: " << left.front() << " (" << left.size() << " branches); kept "
                      << dir_ << " for `dtx recover --config " << config_ << "`";
        return;
      }
      for (const auto* rc : {&my_, &pg_}) fresh_sql(*rc, "DROP TABLE IF EXISTS " + table_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup: " << e.what() << "; kept " << dir_;
      return;
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void write_config() {
    std::ofstream out(config_);
    out << "[coordinator]\nid = \"" << id_ << "\"\nlog_dir = \"" << log_dir_.string() << "\"\n";
    for (const auto* rc : {&my_, &pg_})
      out << "\n[resources." << rc->name << "]\ntype = \""
          << (rc->type == ResourceType::mysql ? "mysql" : "postgres") << "\"\nhost = \"" << rc->host
          << "\"\nport = " << rc->port << "\nuser = \"" << rc->user << "\"\npassword = \"" << rc->password
          << "\"\ndatabase = \"" << rc->database << "\"\n";
  }

  std::vector<PreparedXid> ours_prepared(const ResourceConfig& rc) const {
    return test::prepared_of_coordinator(rc, id_);
  }
  std::int64_t balance(const ResourceConfig& rc) {
    return fresh_sql(rc, "SELECT balance FROM " + table_ + " WHERE id = 1")[0].as_int64(0);
  }

  ChildRun run(const fs::path& program, const std::vector<std::string>& args,
          const std::map<std::string, std::string>& env = {}) {
    Child child(program, args, env, dir_, "run" + std::to_string(++runs_));
    ChildRun r{child.wait(), child.out(), child.err()};
    return r;
  }


  std::string update(const char* sign) const {
    return "UPDATE " + table_ + " SET balance = balance " + sign + " " + std::to_string(kAmount) +
           " WHERE id = 1";
  }
  // MariaDB pays PostgreSQL; MariaDB is the first branch used.
  std::unique_ptr<Child> start_transfer(const std::string& failpoint) {
    return std::make_unique<Child>(
        test::dtx_binary(),
        std::vector<std::string>{"exec", "--config", config_.string(), "my=" + update("-"), "pg=" + update("+")},
        std::map<std::string, std::string>{{"DTX_FAILPOINT", failpoint}}, dir_, "exec" + std::to_string(++runs_));
  }

  struct Recovery {
    ChildRun run;
    json report;
    std::string coordinator_id;
    // The action recovery took on our branch on `resource`, or "" if none
    // listed. Other tests' branches may be listed too.
    std::string action(const std::string& resource) const {
      if (!report.contains("branches")) return "";
      for (const auto& b : report["branches"])
        if (b.value("resource", "") == resource && b.value("coordinator_id", json()) == coordinator_id)
          return b.value("action", "");
      return "";
    }
  };
  Recovery recover() {
    Recovery r{run(test::dtx_binary(), {"recover", "--json", "--config", config_.string()}), {}, id_};
    r.report = json::parse(r.run.out, nullptr, false);
    if (r.report.is_discarded()) r.report = json::object();
    return r;
  }
  std::size_t log_files() const {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(log_dir_, ec))
      if (e.path().filename() != "heuristics.log") ++n;
    return n;
  }

  // Both branches prepared and the COMMIT decision durable; the process is gone.
  std::string run_until_decision() {
    auto child = start_transfer("after-decision");
    ExitStatus st = child->wait();
    EXPECT_TRUE(st.killed_by(SIGKILL)) << "exit " << st.code << " signal " << st.signal << "\n" << child->err();
    auto my = ours_prepared(my_), pg = ours_prepared(pg_);
    EXPECT_EQ(my.size(), 1u);
    EXPECT_EQ(pg.size(), 1u);
    if (my.empty() || pg.empty()) return "";
    EXPECT_EQ(my[0].xid.gtrid, pg[0].xid.gtrid);
    EXPECT_GT(log_files(), 0u) << "the decision log of the dead process must be there";
    return my[0].xid.gtrid;
  }

  // The branch `gtrid` is still prepared on `rc` (after a server restart).
  // Callers wrap it in ASSERT_NO_FATAL_FAILURE.
  void expect_still_prepared(const ResourceConfig& rc, const std::string& gtrid) {
    auto list = ours_prepared(rc);
    ASSERT_EQ(list.size(), 1u) << "the prepared branch on " << rc.name << " must survive the crash";
    EXPECT_EQ(list[0].xid.gtrid, gtrid);
    EXPECT_EQ(list[0].xid.bqual, rc.name);
  }

  void expect_settled_and_committed() {
    EXPECT_TRUE(ours_prepared(my_).empty());
    EXPECT_TRUE(ours_prepared(pg_).empty());
    EXPECT_EQ(balance(my_), kInitialBalance - kAmount);
    EXPECT_EQ(balance(pg_), kInitialBalance + kAmount);
    EXPECT_EQ(log_files(), 0u) << "a settled decision's log files are deleted";
  }

  // The whole scenario for one server: decision durable, server crashes,
  // comes back with the branch prepared, recovery commits both branches.
  void crash_after_decision(const std::string& server) {
    std::string gtrid = run_until_decision();
    ASSERT_FALSE(gtrid.empty());
    const ResourceConfig& crashed = server == "mariadb" ? my_ : pg_;
    ASSERT_NO_FATAL_FAILURE(servers_->kill(server));
    ASSERT_NO_FATAL_FAILURE(servers_->start(server));
    ASSERT_NO_FATAL_FAILURE(expect_still_prepared(crashed, gtrid));

    Recovery r = recover();
    ASSERT_EQ(r.run.status.code, 0) << r.run.out << r.run.err;
    EXPECT_EQ(r.action("my"), "committed") << r.run.out;
    EXPECT_EQ(r.action("pg"), "committed") << r.run.out;
    EXPECT_EQ(r.report.value("decisions_dropped", -1), 1) << r.run.out;
    expect_settled_and_committed();
  }

  // COMMIT decisions still open in the log files, whoever owns them (a test
  // may read a hung process's log: it writes nothing more).
  std::size_t logged_decisions() const {
    std::size_t n = 0;
    for (const auto& inc : list_incarnations(log_dir_)) n += open_decisions(inc).size();
    return n;
  }

  // `child` hangs with its branches on `resources` prepared: recovery leaves
  // them to the live owner (exit 3); once it is killed, commits them.
  void recover_once_the_hung_owner_is_gone(Child& child, const std::vector<std::string>& resources) {
    Recovery alive = recover();
    EXPECT_EQ(alive.run.status.code, 3) << alive.run.out << alive.run.err;
    for (const auto& resource : resources)
      EXPECT_EQ(alive.action(resource), "left_owner_alive") << resource << "\n" << alive.run.out;
    EXPECT_EQ(ours_prepared(my_).size() + ours_prepared(pg_).size(), resources.size());

    child.kill(SIGKILL);
    EXPECT_TRUE(child.wait().killed_by(SIGKILL));
    Recovery r = recover();
    ASSERT_EQ(r.run.status.code, 0) << r.run.out << r.run.err;
    for (const std::string resource : {"my", "pg"}) {
      bool was_prepared = std::find(resources.begin(), resources.end(), resource) != resources.end();
      EXPECT_EQ(r.action(resource), was_prepared ? "committed" : "") << resource << "\n" << r.run.out;
    }
    EXPECT_EQ(r.report.value("decisions_dropped", -1), 1) << r.run.out;
    expect_settled_and_committed();
  }

  fs::path dir_, log_dir_, config_;
  std::string id_, table_;
  ResourceConfig my_ = test::mysql_resource("my"), pg_ = test::postgres_resource("pg");
  std::optional<test::DbServers> servers_;
  int runs_ = 0;
};

TEST_F(CrashTest, MariadbCrashAfterDecisionRecoversAndCommitsBoth) { crash_after_decision("mariadb"); }

TEST_F(CrashTest, PostgresCrashAfterDecisionRecoversAndCommitsBoth) { crash_after_decision("postgres"); }

// The coordinator hangs in phase 2 (MariaDB committed, PostgreSQL prepared)
// when PostgreSQL crashes under it. Recovery leaves the live owner alone; once
// the owner is killed it commits PostgreSQL's branch from the logged decision.
TEST_F(CrashTest, PostgresCrashWhileCoordinatorHangsInPhaseTwo) {
  auto child = start_transfer("after-first-commit:hang");
  ASSERT_TRUE(eventually(
      [&] {
        return ours_prepared(my_).empty() && ours_prepared(pg_).size() == 1 &&
               balance(my_) == kInitialBalance - kAmount;
      },
      std::chrono::seconds(30)))
      << "the child never reached phase 2: " << child->err();
  std::string gtrid = ours_prepared(pg_)[0].xid.gtrid;
  ASSERT_NE(::kill(child->pid(), 0), -1) << "the hung child must still be alive";

  ASSERT_NO_FATAL_FAILURE(servers_->kill("postgres"));
  ASSERT_NO_FATAL_FAILURE(servers_->start("postgres"));
  ASSERT_NO_FATAL_FAILURE(expect_still_prepared(pg_, gtrid));
  recover_once_the_hung_owner_is_gone(*child, {"pg"});
  EXPECT_EQ(balance(my_), kInitialBalance - kAmount);
}

// The same with MariaDB: the coordinator hangs after its decision, both
// branches prepared, and MariaDB crashes under it. After the restart no
// session owns MariaDB's branch any more (no 1397), but its owner lives.
TEST_F(CrashTest, MariadbCrashWhileCoordinatorHangsAfterDecision) {
  auto child = start_transfer("after-decision:hang");
  ASSERT_TRUE(eventually(
      [&] { return ours_prepared(my_).size() == 1 && ours_prepared(pg_).size() == 1 && logged_decisions() == 1; },
      std::chrono::seconds(30)))
      << "the child never reached its decision: " << child->err();
  std::string gtrid = ours_prepared(my_)[0].xid.gtrid;
  ASSERT_NE(::kill(child->pid(), 0), -1) << "the hung child must still be alive";

  ASSERT_NO_FATAL_FAILURE(servers_->kill("mariadb"));
  ASSERT_NO_FATAL_FAILURE(servers_->start("mariadb"));
  ASSERT_NO_FATAL_FAILURE(expect_still_prepared(my_, gtrid));
  ASSERT_NO_FATAL_FAILURE(expect_still_prepared(pg_, gtrid));
  recover_once_the_hung_owner_is_gone(*child, {"my", "pg"});
}

// A transaction with one branch commits in one round trip and logs no
// decision. MariaDB (10.11, binary log on) acknowledged XA COMMIT ... ONE
// PHASE before its engine commit was on disk, and after a crash brought such
// a transaction back as a prepared XA branch, which recovery (no decision:
// presumed abort) then rolled back: an acknowledged commit lost. Three
// threads commit one-branch transactions on MariaDB while the server is
// killed right after they stop; after the restart and a recovery pass every
// commit the API acknowledged is there, and nothing of ours is prepared.
TEST_F(CrashTest, AcknowledgedOneBranchCommitsOnMariadbSurviveAServerCrash) {
  const std::string table = "ack_" + id_;
  fresh_sql(my_, "DROP TABLE IF EXISTS " + table);
  fresh_sql(my_, "CREATE TABLE " + table + " (id INT PRIMARY KEY) ENGINE=InnoDB");
  std::mutex mu;
  std::set<std::int64_t> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  {
    Coordinator coordinator(load_config(config_));
    for (int w = 0; w < 3; ++w)
      writers.emplace_back([&, w] {
        for (std::int64_t i = 0; !stop; ++i) {
          const std::int64_t id = i * 3 + w;
          try {
            Transaction tx = coordinator.begin();
            tx.execute("my", "INSERT INTO " + table + " VALUES (?)", {id});
            tx.commit();
          } catch (const std::exception&) {
            return;
          }
          std::lock_guard lock(mu);
          acked.insert(id);
        }
      });
    const bool busy = eventually([&] {
      std::lock_guard lock(mu);
      return acked.size() >= 300;
    }, std::chrono::seconds(60));
    // The writers stop, then the server is killed at once: the last commits
    // were acknowledged a moment ago, and nothing has written the log since.
    stop = true;
    for (auto& t : writers) t.join();
    ASSERT_NO_FATAL_FAILURE(servers_->kill("mariadb"));
    ASSERT_TRUE(busy) << "the writers committed only " << acked.size() << " transactions";
  }
  ASSERT_NO_FATAL_FAILURE(servers_->start("mariadb"));
  Recovery r = recover();
  EXPECT_EQ(r.run.status.code, 0) << r.run.out << r.run.err;

  std::set<std::int64_t> present;
  for (const auto& row : fresh_sql(my_, "SELECT id FROM " + table)) present.insert(row.as_int64(0));
  std::vector<std::int64_t> lost;
  std::set_difference(acked.begin(), acked.end(), present.begin(), present.end(), std::back_inserter(lost));
  EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged commits lost of " << acked.size() << ", e.g. id "
                            << lost.front() << "; recovery said: " << r.run.out;
  EXPECT_TRUE(ours_prepared(my_).empty());
  fresh_sql(my_, "DROP TABLE IF EXISTS " + table);
}

// PostgreSQL is down while recovery runs: the pass fails naming "pg", still
// commits MariaDB's branch, and keeps the decision for the next pass.
TEST_F(CrashTest, RecoveryWithPostgresDownKeepsTheDecisionUntilItIsBack) {
  std::string gtrid = run_until_decision();
  ASSERT_FALSE(gtrid.empty());
  ASSERT_NO_FATAL_FAILURE(servers_->kill("postgres"));

  Recovery down = recover();
  EXPECT_EQ(down.run.status.code, 1) << down.run.out << down.run.err;
  ASSERT_TRUE(down.report.contains("errors")) << down.run.out << down.run.err;
  bool names_pg = false;
  for (const auto& e : down.report["errors"]) {
    std::string text = e.get<std::string>();
    if (text.find("cannot list prepared branches on pg") != std::string::npos) names_pg = true;
  }
  EXPECT_TRUE(names_pg) << down.run.out;
  EXPECT_EQ(down.action("my"), "committed") << down.run.out;
  EXPECT_EQ(down.report.value("decisions_dropped", -1), 0) << down.run.out;
  EXPECT_TRUE(ours_prepared(my_).empty());
  EXPECT_EQ(balance(my_), kInitialBalance - kAmount);
  EXPECT_GT(log_files(), 0u) << "the decision must outlive a pass that could not reach pg";

  ASSERT_NO_FATAL_FAILURE(servers_->start("postgres"));
  ASSERT_NO_FATAL_FAILURE(expect_still_prepared(pg_, gtrid));
  Recovery r = recover();
  ASSERT_EQ(r.run.status.code, 0) << r.run.out << r.run.err;
  EXPECT_EQ(r.action("pg"), "committed") << r.run.out;
  EXPECT_EQ(r.report.value("decisions_dropped", -1), 1) << r.run.out;
  expect_settled_and_committed();
}

}  // namespace
}  // namespace dtx
