// Recovery of in-doubt transactions, with real processes and the real
// MariaDB and PostgreSQL servers started by scripts/db.sh.
//
// Every test runs under its own coordinator id ("rc" + random digits) with
// its own tables and log_dir, looks only at prepared branches whose gtrid
// starts with that id (plus the foreign ones it makes itself), checks the
// data on both databases, and ends with nothing of its id left prepared.
//
// Crashes are real: `dtx exec` children with DTX_FAILPOINT set kill
// themselves (or hang until killed). Waits are bounded polls (eventually())
// of the prepared lists, of MariaDB's process list or of child exit.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "decision-log/decision_log.h"
#include "base/transaction_id.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "recovery/recovery.h"
#include "support/direct.h"
#include "support/process.h"
#include "support/recovery_runs.h"
#include "support/test_env.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kAccounts = 20;
constexpr std::int64_t kInitialBalance = 100;

std::string hex(std::uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(n));
  return buf;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string sql_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

using test::Direct;

using test::ChildRun;
using test::Pass;
using test::to_pass;

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    tag_ = std::to_string(100000 + rd() % 900000);
    id_ = "rc" + tag_;
    dir_ = test::fresh_dir("rec");
    log_dir_ = dir_ / "log";
    acct_ = "rc_acct_" + tag_;
    xfer_ = "rc_xfer_" + tag_;
    for (Direct* d : {&my_, &pg_}) {
      d->run("DROP TABLE IF EXISTS " + acct_);
      d->run("DROP TABLE IF EXISTS " + xfer_);
      std::string engine = d->is_mysql() ? " ENGINE=InnoDB" : "";
      d->run("CREATE TABLE " + acct_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" + engine);
      d->run("CREATE TABLE " + xfer_ + " (tid VARCHAR(64) PRIMARY KEY)" + engine);
      std::string values;
      for (int i = 1; i <= kAccounts; ++i)
        values += (i > 1 ? ", (" : "(") + std::to_string(i) + ", " + std::to_string(kInitialBalance) + ")";
      d->run("INSERT INTO " + acct_ + " VALUES " + values);
    }
    config_file_ = dir_ / "dtx.toml";
    auto my = test::mysql_resource(), pg = test::postgres_resource();
    std::ofstream out(config_file_);
    out << "[coordinator]\nid = \"" << id_ << "\"\nlog_dir = \"" << log_dir_.string() << "\"\n\n";
    for (const auto* r : {&my, &pg})
      out << "[resources." << r->name << "]\ntype = \"" << (r == &my ? "mysql" : "postgres")
          << "\"\nhost = \"" << r->host << "\"\nport = " << r->port << "\nuser = \"" << r->user
          << "\"\npassword = \"" << r->password << "\"\ndatabase = \"" << r->database << "\"\n\n";
  }

  void TearDown() override {
    // Foreign branches a test made itself, in case it stopped half-way.
    for (auto& [d, xid] : foreign_cleanup_) {
      try {
        (void)d->rm().acquire()->rollback_prepared(xid);
      } catch (const std::exception&) {
      }
    }
    // Nothing of this coordinator id may be left prepared. Whatever is gets
    // reported, then rolled back (test data) so the tables can be dropped. A
    // database that cannot be reached keeps its tables, and log_dir is kept:
    // what may still be prepared there can then be settled by hand.
    bool keep_logs = false;
    for (Direct* d : {&my_, &pg_}) {
      try {
        bool left = false;
        for (const auto& p : d->prepared()) {
          if (!is_ours(p)) continue;
          ADD_FAILURE() << "left prepared on " << d->rm().name() << ": " << p.raw;
          left = left || !test::eventually([&] {
            try {
              // not_found (1397): its session is still ending
              return d->rm().acquire()->rollback_prepared(p.xid).outcome != FinishOutcome::not_found;
            } catch (const Error&) {
              return true;
            }
          }, 10s);
        }
        if (left) {
          keep_logs = true;
          continue;  // DROP TABLE would wait for the prepared branch's locks
        }
        auto s = d->rm().acquire();
        s->execute(d->is_mysql() ? "SET SESSION lock_wait_timeout = 10" : "SET lock_timeout = '10s'", {});
        s->execute("DROP TABLE IF EXISTS " + acct_, {});
        s->execute("DROP TABLE IF EXISTS " + xfer_, {});
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleaning up " << d->rm().name() << ": " << e.what();
        keep_logs = true;
      }
    }
    std::error_code ec;
    if (keep_logs)
      std::cout << "kept " << dir_ << " (config and decision logs of " << id_ << ")\n";
    else
      fs::remove_all(dir_, ec);
  }

  // ---- what the databases hold ----

  bool is_ours(const PreparedXid& p) const { return p.is_dtx && p.xid.gtrid.starts_with(id_ + "."); }

  std::vector<std::pair<Direct*, PreparedXid>> ours() {
    std::vector<std::pair<Direct*, PreparedXid>> out;
    for (Direct* d : {&my_, &pg_})
      for (auto& p : d->prepared())
        if (is_ours(p)) out.emplace_back(d, std::move(p));
    return out;
  }
  std::set<std::string> prepared_gtrids(Direct& d) {
    std::set<std::string> out;
    for (const auto& p : d.prepared())
      if (is_ours(p)) out.insert(p.xid.gtrid);
    return out;
  }
  std::int64_t balance(Direct& d, int id = 1) {
    return d.scalar("SELECT balance FROM " + acct_ + " WHERE id = " + std::to_string(id));
  }
  std::int64_t total() {
    return my_.scalar("SELECT SUM(balance) FROM " + acct_) + pg_.scalar("SELECT SUM(balance) FROM " + acct_);
  }
  std::set<std::string> markers(Direct& d) {
    std::set<std::string> out;
    for (const Row& row : d.run("SELECT tid FROM " + xfer_)) out.insert(row.text(0));
    return out;
  }
  // Decision-log files (segments and locks) left in log_dir.
  std::vector<std::string> log_files() { return test::decision_log_files(log_dir_); }

  // MariaDB detaches a prepared branch from its session when the connection
  // ends, a moment after the client closed it. Waits until none of `ids` is
  // in the server's process list any more.
  // The caller asserts the result: ASSERT_TRUE(wait_sessions_gone(...)).
  [[nodiscard]] ::testing::AssertionResult wait_sessions_gone(const std::vector<std::int64_t>& ids) {
    if (ids.empty()) return ::testing::AssertionSuccess();
    std::string list;
    for (auto id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
    if (test::eventually([&] {
          return my_.scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + list +
                            ")") == 0;
        }))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "MariaDB sessions did not end: " << list;
  }

  // Prepares one branch through the driver and detaches it from its session
  // (the connection is closed, as after a crash). Callers wrap it in
  // ASSERT_NO_FATAL_FAILURE.
  void prepare_branch(Direct& d, const Xid& xid, const std::vector<std::string>& statements) {
    SessionLease s = d.rm().acquire();
    std::int64_t cid = d.is_mysql() ? s->execute("SELECT CONNECTION_ID()", {})[0].as_int64(0) : 0;
    s->begin(xid);
    for (const auto& sql : statements) s->execute(sql, {});
    s->prepare();
    s.discard();
    if (d.is_mysql()) {
      ASSERT_TRUE(wait_sessions_gone({cid}));
    }
  }
  std::string insert_marker(const std::string& tid) {
    return "INSERT INTO " + xfer_ + " VALUES (" + sql_quote(tid) + ")";
  }

  // ---- child processes ----

  ChildRun run_dtx(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    return test::run_dtx_child(dir_, next_tag(), args, env);
  }
  std::unique_ptr<test::Child> start_dtx(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env = {}) {
    std::fflush(nullptr);
    return std::make_unique<test::Child>(test::dtx_binary(), args, env, dir_, next_tag());
  }
  std::string next_tag() { return "child" + std::to_string(children_++); }
  std::string config() const { return config_file_.string(); }

  // `dtx exec` arguments for one transfer of 10 (or `amount`) from account
  // `account` on MariaDB to the same account on PostgreSQL; MariaDB is used
  // first. With a marker, each side also records the transfer id.
  std::vector<std::string> transfer_args(int account = 1, const std::string& marker = "", int amount = 10) {
    std::string where = " WHERE id = " + std::to_string(account);
    std::vector<std::string> args{"exec", "--config", config(),
                                  "my=UPDATE " + acct_ + " SET balance = balance - " + std::to_string(amount) + where};
    if (!marker.empty()) args.push_back("my=" + insert_marker(marker));
    args.push_back("pg=UPDATE " + acct_ + " SET balance = balance + " + std::to_string(amount) + where);
    if (!marker.empty()) args.push_back("pg=" + insert_marker(marker));
    return args;
  }

  Pass recover_pass(const std::string& command = "recover") {
    return to_pass(run_dtx({command, "--config", config(), "--json"}));
  }

  // This coordinator's branches in a report: "resource gtrid" -> action.
  std::map<std::string, std::string> our_actions(const json& report) const { return test::actions_of(report, id_); }

  // Recovery passes right after a crash (test::recover_until_not_busy).
  Pass recover_after_crash(std::map<std::string, std::string>* actions, std::size_t* dropped = nullptr) {
    return test::recover_until_not_busy([this] { return recover_pass(); }, id_, actions, dropped);
  }

  // A `dtx exec` transfer (with `marker`) killed right after its COMMIT
  // decision: both branches prepared, one segment in log_dir. Returns the
  // gtrid and sets *segment; "" (after reporting why) if it went otherwise.
  std::string crash_after_decision(const std::string& marker, fs::path* segment) {
    ChildRun exec = run_dtx(transfer_args(1, marker), {{"DTX_FAILPOINT", "after-decision"}});
    const std::set<std::string> on_my = prepared_gtrids(my_);
    std::vector<fs::path> segments;
    for (const auto& e : fs::directory_iterator(log_dir_))
      if (e.path().extension() == ".log") segments.push_back(e.path());
    if (!exec.status.killed_by(SIGKILL) || on_my.size() != 1 || prepared_gtrids(pg_) != on_my ||
        segments.size() != 1) {
      ADD_FAILURE() << "not one crashed transfer with one segment: " << ::testing::PrintToString(on_my)
                    << " " << ::testing::PrintToString(segments) << "\n" << exec.err;
      return "";
    }
    *segment = segments[0];
    return *on_my.begin();
  }

  std::string tag_, id_, acct_, xfer_;
  fs::path dir_, log_dir_, config_file_;
  Direct my_{test::mysql_resource("my")};
  Direct pg_{test::postgres_resource("pg")};
  std::vector<std::pair<Direct*, Xid>> foreign_cleanup_;
  int children_ = 0;
};

std::string key(const std::string& resource, const std::string& gtrid) { return resource + " " + gtrid; }

// ---------------------------------------------------------------------------
// 1. A process killed at each failpoint; one `dtx recover` finishes it.

class CrashTest : public RecoveryTest, public ::testing::WithParamInterface<std::string> {};

// "after-prepare" -> after_prepare (gtest names allow no '-').
std::string failpoint_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

TEST_P(CrashTest, RecoverFinishesWhatTheKilledProcessLeft) {
  const std::string failpoint = GetParam();
  ChildRun exec = run_dtx(transfer_args(), {{"DTX_FAILPOINT", failpoint}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << " signal " << exec.status.signal
                                              << "\n" << exec.out << exec.err;

  std::set<std::string> on_my = prepared_gtrids(my_), on_pg = prepared_gtrids(pg_);
  std::string gtrid;
  if (failpoint == "after-first-commit") {
    // Exactly one branch still prepared: the first resource used (my) is committed.
    EXPECT_TRUE(on_my.empty());
    ASSERT_EQ(on_pg.size(), 1u);
    gtrid = *on_pg.begin();
    EXPECT_EQ(balance(my_), kInitialBalance - 10);
    EXPECT_EQ(balance(pg_), kInitialBalance);
  } else {
    ASSERT_EQ(on_my.size(), 1u);
    ASSERT_EQ(on_pg, on_my);
    gtrid = *on_my.begin();
    EXPECT_EQ(balance(my_), kInitialBalance);
    EXPECT_EQ(balance(pg_), kInitialBalance);
  }
  EXPECT_FALSE(log_files().empty()) << "the dead incarnation's log should still be there";

  std::map<std::string, std::string> actions;
  std::size_t dropped = 0;
  Pass pass = recover_after_crash(&actions, &dropped);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_TRUE(pass.report["errors"].empty()) << pass.out;
  EXPECT_EQ(pass.report["left_in_doubt"], 0) << pass.out;

  std::map<std::string, std::string> expected;
  if (failpoint == "after-prepare") {
    expected = {{key("my", gtrid), "rolled_back"}, {key("pg", gtrid), "rolled_back"}};
  } else if (failpoint == "after-decision") {
    expected = {{key("my", gtrid), "committed"}, {key("pg", gtrid), "committed"}};
  } else {
    expected = {{key("pg", gtrid), "committed"}};
  }
  EXPECT_EQ(actions, expected) << pass.out;
  EXPECT_EQ(dropped, failpoint == "after-prepare" ? 0u : 1u) << pass.out;

  // All or nothing.
  bool committed = failpoint != "after-prepare";
  EXPECT_EQ(balance(my_), kInitialBalance - (committed ? 10 : 0));
  EXPECT_EQ(balance(pg_), kInitialBalance + (committed ? 10 : 0));
  EXPECT_TRUE(ours().empty());
  // The dead incarnation's segments and lock are gone.
  EXPECT_TRUE(log_files().empty()) << "left in log_dir: " << ::testing::PrintToString(log_files());

  // A further pass has nothing to do.
  Pass again = recover_pass();
  EXPECT_EQ(again.code, 0) << again.out << again.err;
  EXPECT_TRUE(our_actions(again.report).empty()) << again.out;
}

INSTANTIATE_TEST_SUITE_P(Failpoints, CrashTest,
                         ::testing::Values("after-prepare", "after-decision", "after-first-commit"),
                         failpoint_test_name);

// Two resources on the same MariaDB server: XA RECOVER is server-wide, so each
// lists the other's branch too. Recovery must still finish each branch once,
// all or nothing, and count a second XA COMMIT/ROLLBACK of the same branch
// (1397, no longer listed) as done rather than as a failure.
class SameServerCrashTest : public RecoveryTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void add_second_mysql_resource() {
    auto my = test::mysql_resource();
    std::ofstream out(config_file_, std::ios::app);
    out << "[resources.my2]\ntype = \"mysql\"\nhost = \"" << my.host << "\"\nport = " << my.port
        << "\nuser = \"" << my.user << "\"\npassword = \"" << my.password << "\"\ndatabase = \""
        << my.database << "\"\n";
  }
};

TEST_P(SameServerCrashTest, EachBranchIsFinishedOnceAllOrNothing) {
  const std::string failpoint = GetParam();
  add_second_mysql_resource();
  // 10 from account 1 and 10 from account 2 on MariaDB (through my and my2),
  // 20 to account 1 on PostgreSQL.
  ChildRun exec = run_dtx({"exec", "--config", config(),
                           "my=UPDATE " + acct_ + " SET balance = balance - 10 WHERE id = 1",
                           "my2=UPDATE " + acct_ + " SET balance = balance - 10 WHERE id = 2",
                           "pg=UPDATE " + acct_ + " SET balance = balance + 20 WHERE id = 1"},
                          {{"DTX_FAILPOINT", failpoint}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.out << exec.err;
  // Both MariaDB branches are listed by the server, whichever resource asks.
  std::size_t mariadb_branches = 0;
  for (const auto& p : my_.prepared()) mariadb_branches += is_ours(p);
  EXPECT_EQ(mariadb_branches, failpoint == "after-first-commit" ? 1u : 2u);

  std::map<std::string, std::string> actions;
  Pass pass = recover_after_crash(&actions);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_TRUE(pass.report["errors"].empty()) << pass.out;
  EXPECT_EQ(pass.report["left_in_doubt"], 0) << pass.out;
  // A branch listed through both MariaDB resources is finished through one
  // and reported already_finished through the other.
  const std::string done = failpoint == "after-prepare" ? "rolled_back" : "committed";
  std::size_t finished = 0;
  for (const auto& [branch, action] : actions) {
    EXPECT_TRUE(action == done || action == "already_finished") << branch << ": " << action << "\n" << pass.out;
    finished += action == done;
  }
  EXPECT_GE(finished, 1u) << pass.out;

  const bool committed = failpoint != "after-prepare";
  EXPECT_EQ(balance(my_, 1), kInitialBalance - (committed ? 10 : 0));
  EXPECT_EQ(balance(my_, 2), kInitialBalance - (committed ? 10 : 0));
  EXPECT_EQ(balance(pg_, 1), kInitialBalance + (committed ? 20 : 0));
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
  EXPECT_TRUE(ours().empty());
  EXPECT_TRUE(log_files().empty()) << "left in log_dir: " << ::testing::PrintToString(log_files());
  Pass again = recover_pass();
  EXPECT_EQ(again.code, 0) << again.out << again.err;
  EXPECT_TRUE(our_actions(again.report).empty()) << again.out;
}

// `dtx rollback` with two resources on one MariaDB server: the branch is
// listed through both, finished through one, and the other answers "unknown
// xid" (1397). No longer listed, that is finished (the rule in
// finish_branch.h), not "session busy".
TEST_F(SameServerCrashTest, OperatorCountsAnUnknownXidThatIsNoLongerListedAsFinished) {
  add_second_mysql_resource();
  const std::string gtrid = id_ + "." + new_incarnation() + ".1";  // owner gone, no decision
  prepare_branch(my_, Xid::make(gtrid, "my"), {insert_marker(gtrid)});
  prepare_branch(pg_, Xid::make(gtrid, "pg"), {insert_marker(gtrid)});

  ChildRun rollback = run_dtx({"rollback", "--config", config(), "--json", gtrid});
  EXPECT_EQ(rollback.status.code, 0) << rollback.out << rollback.err;
  json r = json::parse(rollback.out, nullptr, false);
  EXPECT_EQ(r["finished"], true) << rollback.out;
  std::multiset<std::string> mariadb_actions;
  for (const auto& b : r["branches"]) {
    if (b["resource"] == "pg")
      EXPECT_EQ(b["action"], "rolled_back") << b.dump();
    else
      mariadb_actions.insert(b["action"].get<std::string>());
  }
  EXPECT_EQ(mariadb_actions, (std::multiset<std::string>{"already_finished", "rolled_back"})) << rollback.out;
  EXPECT_TRUE(ours().empty());
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(markers(pg_).empty());
}

INSTANTIATE_TEST_SUITE_P(Failpoints, SameServerCrashTest,
                         ::testing::Values("after-prepare", "after-decision", "after-first-commit"),
                         failpoint_test_name);

// ---------------------------------------------------------------------------
// 2. While the owning process lives, recovery leaves its branches alone.

class OwnerAliveTest : public RecoveryTest {
 protected:
  void check(const std::string& failpoint, bool decided) {
    auto child = start_dtx(transfer_args(), {{"DTX_FAILPOINT", failpoint + ":hang"}});
    std::set<std::string> on_my, on_pg;
    ASSERT_TRUE(test::eventually([&] {
      on_my = prepared_gtrids(my_);
      on_pg = prepared_gtrids(pg_);
      return on_my.size() == 1 && on_pg == on_my;
    })) << "the hanging child never had both branches prepared\n" << child->err();
    const std::string gtrid = *on_my.begin();

    // dtx in-doubt: both branches, owner alive.
    Pass listing = recover_pass("in-doubt");
    EXPECT_EQ(listing.code, 0) << listing.out << listing.err;
    int listed = 0;
    for (const auto& b : listing.report["branches"]) {
      if (b["gtrid"] != gtrid) continue;
      ++listed;
      EXPECT_EQ(b["owner_alive"], true) << b.dump();
      EXPECT_EQ(b["action"], "left_owner_alive") << b.dump();
      EXPECT_EQ(b["coordinator_id"], id_) << b.dump();
      EXPECT_EQ(b["bqual"], b["resource"]) << b.dump();
      // The owner has forced its COMMIT record (after-decision): the live
      // owner's log is read, so an operator is shown "commit", not "none".
      EXPECT_EQ(b["decision"], std::string(decided ? "commit" : "none")) << b.dump();
    }
    EXPECT_EQ(listed, 2) << listing.out;

    // An operator cannot settle it by hand while the owner lives — not even
    // with --force, which used to end split on MariaDB (the branch was
    // session-busy, PostgreSQL's rolled back, then recovery committed MariaDB's).
    const std::string incarnation = parse_gtrid(gtrid)->incarnation;
    for (bool force : {false, true}) {
      std::vector<std::string> args{"rollback", "--config", config(), gtrid};
      if (force) args.insert(args.begin() + 1, "--force");
      ChildRun refuse = run_dtx(args);
      EXPECT_EQ(refuse.status.code, 2) << refuse.out << refuse.err;
      EXPECT_NE(refuse.err.find("alive"), std::string::npos) << refuse.err;
      EXPECT_NE(refuse.err.find(gtrid), std::string::npos) << refuse.err;
      EXPECT_NE(refuse.err.find(incarnation), std::string::npos) << refuse.err;
      EXPECT_NE(refuse.err.find("stop that process"), std::string::npos) << refuse.err;
    }

    // dtx recover leaves both: exit 3, no split, no reversal.
    Pass pass = recover_pass();
    EXPECT_EQ(pass.code, 3) << pass.out << pass.err;
    EXPECT_EQ(our_actions(pass.report),
              (std::map<std::string, std::string>{{key("my", gtrid), "left_owner_alive"},
                                                  {key("pg", gtrid), "left_owner_alive"}}))
        << pass.out;
    EXPECT_EQ(balance(my_), kInitialBalance);
    EXPECT_EQ(balance(pg_), kInitialBalance);
    EXPECT_EQ(prepared_gtrids(my_), on_my);
    EXPECT_EQ(prepared_gtrids(pg_), on_pg);

    // The owner dies: the next pass finishes it as the log says.
    child->kill(SIGKILL);
    EXPECT_TRUE(child->wait().killed_by(SIGKILL));
    std::map<std::string, std::string> actions;
    Pass after = recover_after_crash(&actions);
    EXPECT_EQ(after.code, 0) << after.out << after.err;
    const char* outcome = decided ? "committed" : "rolled_back";
    EXPECT_EQ(actions, (std::map<std::string, std::string>{{key("my", gtrid), outcome},
                                                           {key("pg", gtrid), outcome}}))
        << after.out;
    EXPECT_EQ(balance(my_), kInitialBalance - (decided ? 10 : 0));
    EXPECT_EQ(balance(pg_), kInitialBalance + (decided ? 10 : 0));
    EXPECT_TRUE(ours().empty());
    EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
  }
};

TEST_F(OwnerAliveTest, AfterDecisionIsLeftWhileTheOwnerLivesThenCommitted) { check("after-decision", true); }

TEST_F(OwnerAliveTest, AfterPrepareIsLeftWhileTheOwnerLivesThenRolledBack) { check("after-prepare", false); }

// ---------------------------------------------------------------------------
// 3. Recovery passes running beside live transfers never touch them.

TEST_F(RecoveryTest, ConcurrentPassesNeverTouchLiveTransfers) {
  Coordinator coord(load_config(config_file_));
  const std::string live_prefix = id_ + "." + coord.incarnation() + ".";
  constexpr int kClients = 4, kTransfers = 400;
  std::atomic<int> committed{0}, scanner_passes{0}, cli_passes{0}, live_seen{0};
  std::atomic<bool> done{false};
  std::mutex mu;
  std::vector<std::string> violations;
  auto check_branch = [&](const std::string& gtrid, const std::string& action, const char* who) {
    if (!gtrid.starts_with(id_ + ".")) return;
    bool live = gtrid.starts_with(live_prefix);
    bool ok = live ? (action == "left_owner_alive" || action == "left_seen_once") : false;
    if (ok) ++live_seen;
    if (!ok) {
      std::lock_guard lock(mu);
      violations.push_back(std::string(who) + ": " + gtrid + " " + action);
    }
  };

  // In-process scanner passes, as a live coordinator's recovery would run.
  std::thread scanner_thread([&] {
    Config config = load_config(config_file_);
    auto my = make_resource_manager(config.resource("my"));
    auto pg = make_resource_manager(config.resource("pg"));
    RecoveryScanner scanner(config, [&](std::string_view name) -> ResourceManager& {
      return name == "my" ? *my : *pg;
    });
    while (!done) {
      RecoveryReport report = scanner.run();
      for (const auto& e : report.errors) {
        std::lock_guard lock(mu);
        violations.push_back("scanner error: " + e);
      }
      for (const auto& b : report.branches) check_branch(b.gtrid, to_string(b.action), "scanner");
      ++scanner_passes;
    }
  });
  // `dtx recover` processes at the same time.
  std::thread cli_thread([&] {
    const fs::path out = dir_ / "cli-recover.json";
    const std::string cmd = shell_quote(test::dtx_binary().string()) + " recover --json --config " +
                            shell_quote(config()) + " >" + shell_quote(out.string()) + " 2>/dev/null";
    while (!done) {
      int raw = std::system(cmd.c_str());  // posix_spawn underneath: safe beside other threads
      int code = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
      json report;
      try {
        report = json::parse(test::Child::slurp(out));
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        violations.push_back(std::string("dtx recover printed no JSON: ") + e.what());
        continue;
      }
      if (code != 0 && code != 3) {
        std::lock_guard lock(mu);
        violations.push_back("dtx recover exited " + std::to_string(code) + ": " + report.dump());
      }
      for (const auto& b : report["branches"])
        if (b["dtx_format"].get<bool>())
          check_branch(b["gtrid"].get<std::string>(), b["action"].get<std::string>(), "dtx recover");
      ++cli_passes;
    }
  });

  // Transfer n: account n % 20 on MariaDB pays account 7n % 20 on PostgreSQL.
  std::atomic<int> next_transfer{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&] {
      for (int n = next_transfer++; n < kTransfers; n = next_transfer++) {
        int from = 1 + n % kAccounts, to = 1 + (7 * n) % kAccounts;
        // One row on each side, always MariaDB first: no cycle of lock waits
        // is possible, so every transfer must commit at the first attempt.
        try {
          Transaction tx = coord.begin();
          tx.execute("my", "UPDATE " + acct_ + " SET balance = balance - 1 WHERE id = ?", {from});
          tx.execute("pg", "UPDATE " + acct_ + " SET balance = balance + 1 WHERE id = ?", {to});
          tx.commit();
          ++committed;
        } catch (const Error& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  for (auto& t : clients) t.join();
  // At least one full pass of each kind overlapped the transfers or ran after.
  test::eventually([&] { return scanner_passes > 0 && cli_passes > 0; });
  done = true;
  scanner_thread.join();
  cli_thread.join();

  EXPECT_EQ(committed.load(), kTransfers);
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
  EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations);
  EXPECT_GT(scanner_passes.load(), 0);
  EXPECT_GT(cli_passes.load(), 0);
  EXPECT_TRUE(ours().empty());
  std::cout << committed << " transfers beside " << scanner_passes
            << " scanner passes and " << cli_passes << " dtx recover runs; " << live_seen
            << " sightings of a live transfer's prepared branch, all left alone\n";
}

// ---------------------------------------------------------------------------
// 4. Two recovery passes at once over many in-doubt transactions.

TEST_F(RecoveryTest, TwoConcurrentPassesSettleManyCrashedTransactions) {
  constexpr int kTransactions = 20;
  const std::vector<std::string> kinds = {"after-prepare", "after-decision", "after-first-commit"};
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  std::vector<std::string> failpoint(kTransactions);
  for (int i = 0; i < kTransactions; ++i) failpoint[i] = kinds[i % kinds.size()];
  std::shuffle(failpoint.begin(), failpoint.end(), rng);
  SCOPED_TRACE("seed " + std::to_string(seed));

  // Transaction i moves 1 from account i+1 on MariaDB to account i+1 on
  // PostgreSQL and records "t<i>" on both; its process dies at failpoint[i].
  constexpr int kBatch = 5;
  for (int first = 0; first < kTransactions; first += kBatch) {
    std::vector<std::unique_ptr<test::Child>> batch;
    for (int i = first; i < std::min(first + kBatch, kTransactions); ++i)
      batch.push_back(start_dtx(transfer_args(i + 1, "t" + std::to_string(i), 1), {{"DTX_FAILPOINT", failpoint[i]}}));
    for (auto& c : batch) {
      test::ExitStatus st = c->wait();
      ASSERT_TRUE(st.killed_by(SIGKILL)) << "exit " << st.code << "\n" << c->err();
    }
  }
  std::size_t prepared_before = ours().size();
  EXPECT_EQ(prepared_before, static_cast<std::size_t>(
                                 std::count(failpoint.begin(), failpoint.end(), "after-prepare") * 2 +
                                 std::count(failpoint.begin(), failpoint.end(), "after-decision") * 2 +
                                 std::count(failpoint.begin(), failpoint.end(), "after-first-commit")));

  // Two passes started together.
  auto a = start_dtx({"recover", "--config", config(), "--json"});
  auto b = start_dtx({"recover", "--config", config(), "--json"});
  int busy_failures = 0;
  for (auto* c : {a.get(), b.get()}) {
    test::ExitStatus st = c->wait();
    EXPECT_TRUE(st.code == 0 || st.code == 3) << "exit " << st.code << "\n" << c->out() << c->err();
    Pass p = to_pass({st, c->out(), c->err()});
    // The two passes race for the same branches. The loser of a race on
    // MariaDB gets 1397 (already_finished once no longer listed); on
    // PostgreSQL it may get 55000 "is busy" while the winner's COMMIT/ROLLBACK
    // PREPARED runs, reported as failed and retried next pass. Nothing else
    // may fail.
    if (!p.report.contains("branches")) continue;
    for (const auto& br : p.report["branches"]) {
      if (br["action"] != "failed" || !br["gtrid"].get<std::string>().starts_with(id_ + ".")) continue;
      ++busy_failures;
      EXPECT_NE(br["detail"].get<std::string>().find("is busy"), std::string::npos) << br.dump();
    }
  }
  if (busy_failures)
    std::cout << "note: " << busy_failures << " branch(es) reported failed (PostgreSQL \"is busy\") by the losing pass\n";
  // One more pass finishes whatever the race left.
  std::map<std::string, std::string> actions;
  Pass last = recover_after_crash(&actions);
  EXPECT_EQ(last.code, 0) << last.out << last.err;
  EXPECT_TRUE(ours().empty());

  // All or nothing per transaction.
  std::set<std::string> on_my = markers(my_), on_pg = markers(pg_);
  EXPECT_EQ(on_my, on_pg);
  for (int i = 0; i < kTransactions; ++i) {
    bool committed = failpoint[i] != "after-prepare";
    SCOPED_TRACE("t" + std::to_string(i) + " " + failpoint[i]);
    EXPECT_EQ(on_my.count("t" + std::to_string(i)), committed ? 1u : 0u);
    EXPECT_EQ(balance(my_, i + 1), kInitialBalance - (committed ? 1 : 0));
    EXPECT_EQ(balance(pg_, i + 1), kInitialBalance + (committed ? 1 : 0));
  }
  EXPECT_EQ(total(), 2 * kAccounts * kInitialBalance);
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

// ---------------------------------------------------------------------------
// 5. Damaged decision logs.

// A torn tail is a record that was never acknowledged: presumed abort.
TEST_F(RecoveryTest, TornLastRecordIsPresumedAbort) {
  std::vector<fs::path> segments(1);
  const std::string gtrid = crash_after_decision("torn", &segments[0]);
  ASSERT_FALSE(gtrid.empty());
  SegmentReadResult before = read_segment(segments[0]);
  ASSERT_EQ(before.records.size(), 1u);
  ASSERT_EQ(before.records[0].gtrid, gtrid);
  const auto record_bytes = 7 + encode_record(before.records[0]).size();  // header + payload
  ASSERT_EQ(before.valid_bytes, record_bytes);
  // A crash while the record was written: its second half never reached the
  // disk, the preallocated zeros are still there. (A file that ends in the
  // middle of the record is damage: LogDamageTest.)
  const auto size = fs::file_size(segments[0]);
  {
    std::fstream f(segments[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(record_bytes / 2));
    const std::string zeros(record_bytes - record_bytes / 2, '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  ASSERT_EQ(fs::file_size(segments[0]), size);
  SegmentReadResult after = read_segment(segments[0]);
  EXPECT_TRUE(after.records.empty());
  EXPECT_TRUE(after.problem.starts_with("torn tail")) << after.problem;

  std::map<std::string, std::string> actions;
  Pass pass = recover_after_crash(&actions);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_EQ(actions, (std::map<std::string, std::string>{{key("my", gtrid), "rolled_back"},
                                                         {key("pg", gtrid), "rolled_back"}}))
      << pass.out;
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_EQ(balance(pg_), kInitialBalance);
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(markers(pg_).empty());
  EXPECT_TRUE(ours().empty());
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

// A corrupt record with good records after it is damage, not a torn tail:
// what precedes it is used, and undecided branches wait for an operator.
TEST_F(RecoveryTest, CorruptRecordInTheMiddleLeavesUndecidedBranchesToTheOperator) {
  const std::string inc = new_incarnation();
  auto gtrid = [&](int seq) { return id_ + "." + inc + "." + hex(seq); };
  const std::vector<BranchRef> refs{{"my", "my"}, {"pg", "pg"}};
  fs::path segment;
  {
    // A dead incarnation: three COMMIT decisions, never ended; destroying the
    // log keeps its files (decisions are open) and releases its lock.
    auto log = DecisionLog::open(log_dir_, id_, inc);
    for (int seq = 1; seq <= 3; ++seq) log->log_commit(gtrid(seq), refs);
    segment = log->current_segment();
  }
  // Its branches, prepared and detached: 1-3 decided, 4 undecided.
  for (int seq = 1; seq <= 4; ++seq) {
    ASSERT_NO_FATAL_FAILURE(prepare_branch(my_, Xid::make(gtrid(seq), "my"), {insert_marker(gtrid(seq))}));
    ASSERT_NO_FATAL_FAILURE(prepare_branch(pg_, Xid::make(gtrid(seq), "pg"), {insert_marker(gtrid(seq))}));
  }

  // Flip one byte inside the payload of the 2nd record.
  SegmentReadResult read = read_segment(segment);
  ASSERT_EQ(read.records.size(), 3u);
  std::vector<std::uint64_t> offsets{0};
  for (const auto& r : read.records) offsets.push_back(offsets.back() + 7 + encode_record(r).size());
  ASSERT_EQ(read.valid_bytes, offsets.back()) << "unexpected segment layout";
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(offsets[1] + 7 + 5);
    f.seekg(at);
    char c = 0;
    f.get(c);
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x20));
  }
  SegmentReadResult damaged = read_segment(segment);
  EXPECT_EQ(damaged.records.size(), 1u);
  EXPECT_FALSE(damaged.problem.starts_with("torn tail")) << damaged.problem;

  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 1) << pass.out << pass.err;
  bool named = false;
  for (const auto& e : pass.report["errors"]) {
    std::string text = e;
    if (text.find(segment.string()) != std::string::npos && text.find("damaged") != std::string::npos)
      named = true;
  }
  EXPECT_TRUE(named) << "no error names " << segment << " as damaged: " << pass.out;
  std::map<std::string, std::string> expected;
  for (const char* r : {"my", "pg"}) {
    expected[key(r, gtrid(1))] = "committed";
    for (int seq = 2; seq <= 4; ++seq) expected[key(r, gtrid(seq))] = "left_log_damaged";
  }
  EXPECT_EQ(our_actions(pass.report), expected) << pass.out;
  EXPECT_EQ(pass.report["decisions_dropped"], 0);
  // Nothing of the undecided transactions was rolled back.
  std::set<std::string> want{gtrid(2), gtrid(3), gtrid(4)};
  EXPECT_EQ(prepared_gtrids(my_), want);
  EXPECT_EQ(prepared_gtrids(pg_), want);

  // The operator settles them: 2 and 3 were decided (the damaged records
  // held their COMMIT), 4 never was.
  ChildRun rollback4 = run_dtx({"rollback", "--config", config(), gtrid(4)});
  EXPECT_EQ(rollback4.status.code, 0) << rollback4.out << rollback4.err;
  for (int seq : {2, 3}) {
    ChildRun commit = run_dtx({"commit", "--config", config(), gtrid(seq), "--json"});
    EXPECT_EQ(commit.status.code, 0) << commit.out << commit.err;
  }
  EXPECT_TRUE(ours().empty());
  std::set<std::string> committed{gtrid(1), gtrid(2), gtrid(3)};
  EXPECT_EQ(markers(my_), committed);
  EXPECT_EQ(markers(pg_), committed);
  // The damaged incarnation's files stay for the operator to inspect.
  EXPECT_TRUE(fs::exists(segment));
}

// An operator going against a logged COMMIT must say --force, and it is
// recorded as a heuristic outcome.
TEST_F(RecoveryTest, OperatorRollbackAgainstACommitDecisionNeedsForceAndIsRecorded) {
  const std::string inc = new_incarnation();
  const std::string gtrid = id_ + "." + inc + ".1";
  {
    auto log = DecisionLog::open(log_dir_, id_, inc);
    const std::vector<BranchRef> refs{{"my", "my"}, {"pg", "pg"}};
    log->log_commit(gtrid, refs);
  }
  ASSERT_NO_FATAL_FAILURE(prepare_branch(my_, Xid::make(gtrid, "my"), {insert_marker(gtrid)}));
  ASSERT_NO_FATAL_FAILURE(prepare_branch(pg_, Xid::make(gtrid, "pg"), {insert_marker(gtrid)}));

  ChildRun refused = run_dtx({"rollback", "--config", config(), gtrid});
  EXPECT_EQ(refused.status.code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("COMMIT"), std::string::npos) << refused.err;
  EXPECT_EQ(prepared_gtrids(my_).size() + prepared_gtrids(pg_).size(), 2u);

  ChildRun forced = run_dtx({"rollback", "--config", config(), "--force", "--json", gtrid});
  EXPECT_EQ(forced.status.code, 0) << forced.out << forced.err;
  json r = json::parse(forced.out, nullptr, false);
  EXPECT_EQ(r["decision"], "commit") << forced.out;
  EXPECT_EQ(r["finished"], true) << forced.out;
  EXPECT_EQ(r["heuristics"].size(), 2u) << forced.out;
  EXPECT_TRUE(ours().empty());
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(markers(pg_).empty());

  std::ifstream in(log_dir_ / "heuristics.log");
  std::set<std::string> resources;
  for (std::string line; std::getline(in, line);) {
    json h = json::parse(line, nullptr, false);
    EXPECT_EQ(h["gtrid"], gtrid) << line;
    EXPECT_EQ(h["decision"], "commit") << line;
    EXPECT_EQ(h["outcome"], "rolled_back") << line;
    EXPECT_EQ(h["by"], "operator") << line;
    resources.insert(h.value("resource", ""));
  }
  EXPECT_EQ(resources, (std::set<std::string>{"my", "pg"}));

  // Its decision has no prepared branch left: the next pass drops the log.
  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_EQ(pass.report["decisions_dropped"], 1) << pass.out;
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

// ---------------------------------------------------------------------------
// 6. Prepared transactions that are not ours.

TEST_F(RecoveryTest, ForeignAndOtherCoordinatorsBranchesAreReportedNotTouched) {
  // MariaDB: formatID 7, not dtx's.
  const std::string foreign_gtrid = "rcforeign" + tag_;
  const Xid foreign_my{7, foreign_gtrid, "b"};
  foreign_cleanup_.emplace_back(&my_, foreign_my);
  {
    SessionLease s = my_.rm().acquire();
    std::int64_t cid = s->execute("SELECT CONNECTION_ID()", {})[0].as_int64(0);
    const std::string lit = "'" + foreign_gtrid + "','b',7";
    s->execute("XA START " + lit, {});
    s->execute(insert_marker("foreign-my"), {});
    s->execute("XA END " + lit, {});
    s->execute("XA PREPARE " + lit, {});
    s.discard();
    ASSERT_TRUE(wait_sessions_gone({cid}));
  }
  // PostgreSQL: another application's gid.
  const std::string foreign_gid = "someapp_tx_" + tag_;
  foreign_cleanup_.emplace_back(&pg_, Xid{0, foreign_gid, ""});
  {
    SessionLease s = pg_.rm().acquire();
    s->execute("BEGIN", {});
    s->execute(insert_marker("foreign-pg"), {});
    s->execute("PREPARE TRANSACTION " + sql_quote(foreign_gid), {});
  }
  // dtx's format, another coordinator id, on both.
  const std::string other = "ro" + tag_ + "." + new_incarnation() + ".1";
  const Xid other_my = Xid::make(other, "my"), other_pg = Xid::make(other, "pg");
  foreign_cleanup_.emplace_back(&my_, other_my);
  foreign_cleanup_.emplace_back(&pg_, other_pg);
  ASSERT_NO_FATAL_FAILURE(prepare_branch(my_, other_my, {insert_marker("other-my")}));
  ASSERT_NO_FATAL_FAILURE(prepare_branch(pg_, other_pg, {insert_marker("other-pg")}));

  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  int seen = 0;
  for (const auto& b : pass.report["branches"]) {
    const std::string resource = b["resource"], xid = b["xid"];
    if (resource == "my" && xid == foreign_my.mysql_literal()) {
      ++seen;
      EXPECT_EQ(b["action"], "left_foreign") << b.dump();
      EXPECT_EQ(b["dtx_format"], false) << b.dump();
      EXPECT_TRUE(b["owner_alive"].is_null()) << b.dump();
    } else if (resource == "pg" && xid == foreign_gid) {
      ++seen;
      EXPECT_EQ(b["action"], "left_foreign") << b.dump();
      EXPECT_EQ(b["gtrid"], foreign_gid) << b.dump();
    } else if (b["gtrid"] == other) {
      ++seen;
      EXPECT_EQ(b["action"], "left_other_coordinator") << b.dump();
      EXPECT_EQ(b["coordinator_id"], "ro" + tag_) << b.dump();
    }
  }
  EXPECT_EQ(seen, 4) << pass.out;
  EXPECT_TRUE(our_actions(pass.report).empty()) << pass.out;

  // Untouched: still prepared, nothing of them visible.
  auto listed = [](Direct& d, const Xid& xid) {
    for (const auto& p : d.prepared())
      if (p.xid == xid) return true;
    return false;
  };
  EXPECT_TRUE(listed(my_, foreign_my));
  EXPECT_TRUE(listed(pg_, Xid{0, foreign_gid, ""}));
  EXPECT_TRUE(listed(my_, other_my));
  EXPECT_TRUE(listed(pg_, other_pg));
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(markers(pg_).empty());

  // An operator who names a foreign transaction can finish it.
  ChildRun commit = run_dtx({"commit", "--config", config(), foreign_gid, "--json"});
  EXPECT_EQ(commit.status.code, 0) << commit.out << commit.err;
  EXPECT_EQ(markers(pg_), std::set<std::string>{"foreign-pg"});
  EXPECT_FALSE(listed(pg_, Xid{0, foreign_gid, ""}));

  // Clean up the rest directly.
  my_.run("XA ROLLBACK '" + foreign_gtrid + "','b',7");
  EXPECT_EQ(my_.rm().acquire()->rollback_prepared(other_my).outcome, FinishOutcome::done);
  EXPECT_EQ(pg_.rm().acquire()->rollback_prepared(other_pg).outcome, FinishOutcome::done);
  foreign_cleanup_.clear();
  EXPECT_FALSE(listed(my_, foreign_my));
  EXPECT_FALSE(listed(my_, other_my));
  EXPECT_FALSE(listed(pg_, other_pg));
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_EQ(markers(pg_), std::set<std::string>{"foreign-pg"});
}

// ---------------------------------------------------------------------------
// 7. One pass over a thousand in-doubt transactions (a measurement, not a
// timed test: nothing is asserted about the time).
//
// PostgreSQL holds at most max_prepared_transactions prepared transactions
// at once, for the whole cluster, shared with every other test (200 on the
// test server). So only as many transactions as fit in half the free slots
// have a prepared PostgreSQL branch; in the others the PostgreSQL side is
// already settled — committed before the crash for a decided transaction
// (as after-first-commit leaves it), never prepared for an undecided one (a
// crash during phase 1) — and only the MariaDB branch is in doubt.

TEST_F(RecoveryTest, SettlesAThousandInDoubtTransactionsInOnePass) {
  constexpr int kTransactions = 1000;
  const std::int64_t max_prepared = pg_.scalar("SELECT setting::bigint FROM pg_settings WHERE name = 'max_prepared_transactions'");
  const std::int64_t in_use = pg_.scalar("SELECT COUNT(*) FROM pg_prepared_xacts");
  const int with_pg = static_cast<int>(std::clamp<std::int64_t>((max_prepared - in_use) / 2, 0, kTransactions)) & ~1;

  const std::string inc = new_incarnation();
  auto gtrid = [&](int i) { return id_ + "." + inc + "." + hex(i + 1); };
  auto decided = [](int i) { return i % 2 == 0; };
  auto has_pg_branch = [&](int i) { return i < with_pg; };
  {
    auto log = DecisionLog::open(log_dir_, id_, inc, {.sync = false});
    for (int i = 0; i < kTransactions; i += 2) {
      std::vector<BranchRef> refs{{"my", "my"}, {"pg", "pg"}};
      log->log_commit(gtrid(i), refs);
    }
  }  // dead now: files kept, lock released

  // MariaDB: a branch stays attached to its session until the connection
  // ends (and a session cannot start another branch while one is prepared),
  // so each branch gets a connection of its own, closed after XA PREPARE.
  const auto setup_started = std::chrono::steady_clock::now();
  std::vector<std::int64_t> sessions;
  std::mutex mu;
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&] {
      try {
        for (int i = next++; i < kTransactions; i = next++) {
          SessionLease s = my_.rm().acquire();
          std::int64_t cid = s->execute("SELECT CONNECTION_ID()", {})[0].as_int64(0);
          s->begin(Xid::make(gtrid(i), "my"));
          s->execute(insert_marker(gtrid(i)), {});
          s->prepare();
          s.discard();
          std::lock_guard lock(mu);
          sessions.push_back(cid);
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        next = kTransactions;
      }
    });
  // PostgreSQL: prepared transactions are detached at once; one connection.
  {
    SessionLease s = pg_.rm().acquire();
    for (int i = 0; i < kTransactions; ++i) {
      if (has_pg_branch(i)) {
        s->execute("BEGIN", {});
        s->execute(insert_marker(gtrid(i)), {});
        s->execute("PREPARE TRANSACTION " + sql_quote(Xid::make(gtrid(i), "pg").postgres_gid()), {});
      } else if (decided(i)) {
        s->execute(insert_marker(gtrid(i)), {});  // committed before the crash
      }
    }
  }
  for (auto& t : workers) t.join();
  ASSERT_TRUE(wait_sessions_gone(sessions));
  const auto setup_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - setup_started).count();
  ASSERT_EQ(prepared_gtrids(my_).size(), static_cast<std::size_t>(kTransactions));
  ASSERT_EQ(prepared_gtrids(pg_).size(), static_cast<std::size_t>(with_pg));

  Config config = load_config(config_file_);
  auto my = make_resource_manager(config.resource("my"));
  auto pg = make_resource_manager(config.resource("pg"));
  RecoveryScanner scanner(config, [&](std::string_view name) -> ResourceManager& {
    return name == "my" ? *my : *pg;
  });
  const auto started = std::chrono::steady_clock::now();
  RecoveryReport report = scanner.run();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started).count();

  EXPECT_TRUE(report.errors.empty()) << ::testing::PrintToString(report.errors);
  std::map<std::string, std::map<std::string, int>> counts;  // resource -> action -> n
  std::size_t branches = 0;
  for (const auto& b : report.branches) {
    if (!b.gtrid.starts_with(id_ + ".")) continue;
    ++branches;
    auto parts = parse_gtrid(b.gtrid);
    ASSERT_TRUE(parts);
    const int i = static_cast<int>(parts->sequence) - 1;
    EXPECT_EQ(b.action, decided(i) ? BranchAction::committed : BranchAction::rolled_back)
        << b.resource << " " << b.gtrid << ": " << to_string(b.action) << " " << b.detail;
    ++counts[b.resource][to_string(b.action)];
  }
  EXPECT_EQ(branches, static_cast<std::size_t>(kTransactions + with_pg));
  EXPECT_EQ(counts["my"]["committed"], kTransactions / 2);
  EXPECT_EQ(counts["my"]["rolled_back"], kTransactions / 2);
  EXPECT_EQ(counts["pg"]["committed"], with_pg / 2);
  EXPECT_EQ(counts["pg"]["rolled_back"], with_pg / 2);
  EXPECT_EQ(report.decisions_dropped, static_cast<std::size_t>(kTransactions / 2));
  EXPECT_TRUE(ours().empty());
  std::set<std::string> want;
  for (int i = 0; i < kTransactions; ++i)
    if (decided(i)) want.insert(gtrid(i));
  EXPECT_EQ(markers(my_), want);
  EXPECT_EQ(markers(pg_), want);
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());

  std::cout << "recovery settled " << kTransactions << " in-doubt transactions (" << branches
            << " branches) in " << ms << " ms\n"
            << "  (" << with_pg << " with a prepared PostgreSQL branch: max_prepared_transactions = "
            << max_prepared << ", " << in_use << " in use by others; setup took " << setup_ms << " ms)\n";
}

// Another pass wants to delete a settled dead incarnation's log while this
// pass is reading the logs. It cannot: a pass holds the lock of every dead
// incarnation it reads (adopts it), so logs never vanish under a reader.
// Made deterministic with a FIFO: the first segment the pass reads is a named
// pipe, so the pass waits in open() while the test, playing the other pass,
// tries to take b's lock; then the test writes that segment's record through
// the pipe. (Before the pass adopted incarnations, the other pass could delete
// b mid-read, and the whole pass ended with "cannot read the decision logs
// ... No such file or directory", exit 1.)
TEST_F(RecoveryTest, AnotherPassCannotDropALogThisPassIsReading) {
  std::string a = new_incarnation(), b = new_incarnation();
  if (b < a) std::swap(a, b);  // the pass reads incarnations in name order: a, then b
  const std::vector<BranchRef> refs{{"my", "my"}, {"pg", "pg"}};
  {
    // b: a dead incarnation with one COMMIT record whose branches are long finished.
    auto log = DecisionLog::open(log_dir_, id_, b, {.sync = false});
    log->log_commit(id_ + "." + b + ".1", refs);
  }
  std::string a_segment_bytes;
  {
    auto log = DecisionLog::open(dir_ / "seed", id_, a, {.sync = false});
    log->log_commit(id_ + "." + a + ".1", refs);
    const fs::path seed = log->current_segment();
    log.reset();
    a_segment_bytes = test::Child::slurp(seed).substr(0, read_segment(seed).valid_bytes);
  }
  const fs::path fifo = log_dir_ / (id_ + "-" + a + "-000001.log");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  std::ofstream(log_dir_ / (id_ + "-" + a + ".lock"));  // a's lock: free, so a is dead

  ::signal(SIGPIPE, SIG_IGN);  // a write to a pipe the pass has closed fails instead
  auto pass = start_dtx({"recover", "--config", config(), "--json"});
  const pid_t pid = pass->pid();
  auto exited = [pid] {  // a zombie: ended, not yet reaped
    std::string stat = test::Child::slurp("/proc/" + std::to_string(pid) + "/stat");
    auto paren = stat.rfind(')');
    return paren == std::string::npos || (paren + 2 < stat.size() && stat[paren + 2] == 'Z');
  };
  auto reading_fifo = [&] {  // the pass has the pipe open
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
      if (fs::read_symlink(e.path(), ec) == fifo) return true;
    return false;
  };
  // Waits until the pass opens a's segment for reading (it then waits for
  // data), runs `meanwhile`, feeds it the segment's bytes, and waits until
  // the pass has read them and closed the pipe. False if the pass ended
  // without opening it.
  auto feed = [&](const std::function<void()>& meanwhile) {
    int fd = -1;
    EXPECT_TRUE(test::eventually([&] {
      fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // ENXIO until a reader opens
      return fd >= 0 || exited();
    }));
    if (fd < 0) return false;
    meanwhile();
    EXPECT_EQ(::write(fd, a_segment_bytes.data(), a_segment_bytes.size()),
              static_cast<ssize_t>(a_segment_bytes.size()));
    ::close(fd);
    EXPECT_TRUE(test::eventually([&] { return !reading_fifo() || exited(); }));
    return true;
  };
  // The other pass tries to drop b, as delete_incarnation() would: it needs
  // b's lock, which the reading pass holds.
  auto try_drop_b = [&] {
    const fs::path lock = log_dir_ / (id_ + "-" + b + ".lock");
    int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0) << "b's lock was free while the pass was reading";
    EXPECT_EQ(errno, EWOULDBLOCK);
    ::close(fd);
  };

  // The pass has adopted both incarnations and is reading a's log.
  ASSERT_TRUE(feed(try_drop_b)) << "the pass never read a's segment\n" << pass->err();
  while (feed([] {})) {
  }  // however often the pass reads a's segment again

  test::ExitStatus st = pass->wait();
  Pass p = to_pass({st, pass->out(), pass->err()});
  EXPECT_EQ(st.code, 0) << p.report["errors"].dump() << "\n" << p.err;
  EXPECT_TRUE(p.report["errors"].empty()) << p.out;
  // b's decision was settled (nothing of it prepared): this pass dropped it.
  EXPECT_FALSE(fs::exists(log_dir_ / (id_ + "-" + b + "-000001.log")));
}

// ---------------------------------------------------------------------------
// 9. dtx commit / dtx rollback never act beside a live owner or behind
// another coordinator's back without saying so.

// Another coordinator id decided COMMIT and committed its MariaDB branch; its
// PostgreSQL branch is prepared. `dtx rollback` from this coordinator's
// config would split it: refused without --force, and with --force (here a
// commit) recorded as heuristic by the operator.
TEST_F(RecoveryTest, SettlingAnotherCoordinatorsTransactionNeedsForceAndIsRecorded) {
  const std::string other_id = "ro" + tag_;
  const fs::path other_log_dir = dir_ / "other-log";
  const std::string gtrid = other_id + "." + new_incarnation() + ".1";
  {
    auto log = DecisionLog::open(other_log_dir, other_id, parse_gtrid(gtrid)->incarnation);
    const std::vector<BranchRef> refs{{"my", "my"}, {"pg", "pg"}};
    log->log_commit(gtrid, refs);
  }
  const Xid on_pg = Xid::make(gtrid, "pg");
  foreign_cleanup_.emplace_back(&pg_, on_pg);
  my_.run(insert_marker(gtrid));  // its MariaDB branch is committed
  prepare_branch(pg_, on_pg, {insert_marker(gtrid)});
  auto pg_listed = [&] {
    for (const auto& p : pg_.prepared())
      if (p.xid == on_pg) return true;
    return false;
  };

  for (const char* verb : {"rollback", "commit"}) {
    ChildRun refused = run_dtx({verb, "--config", config(), gtrid});
    EXPECT_EQ(refused.status.code, 2) << verb << "\n" << refused.out << refused.err;
    EXPECT_NE(refused.err.find(other_id), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
    EXPECT_TRUE(pg_listed()) << verb << " settled another coordinator's branch without --force";
  }
  EXPECT_TRUE(markers(pg_).empty());

  ChildRun forced = run_dtx({"commit", "--config", config(), "--force", "--json", gtrid});
  EXPECT_EQ(forced.status.code, 0) << forced.out << forced.err;
  json r = json::parse(forced.out, nullptr, false);
  EXPECT_EQ(r["finished"], true) << forced.out;
  ASSERT_EQ(r["heuristics"].size(), 1u) << forced.out;
  EXPECT_FALSE(pg_listed());
  EXPECT_EQ(markers(pg_), std::set<std::string>{gtrid});  // whole: committed on both
  EXPECT_EQ(markers(my_), std::set<std::string>{gtrid});
  foreign_cleanup_.clear();

  std::ifstream in(log_dir_ / "heuristics.log");
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line, nullptr, false));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["gtrid"], gtrid);
  EXPECT_EQ(lines[0]["resource"], "pg");
  EXPECT_EQ(lines[0]["decision"], "unknown");
  EXPECT_EQ(lines[0]["outcome"], "committed");
  EXPECT_EQ(lines[0]["by"], "operator");
}

// A transaction decided COMMIT whose MariaDB branch only read: after the
// crash MariaDB answers the recovery's XA COMMIT with 1402 XA_RBROLLBACK.
// Nothing was lost (finish_branch.h): committed, no heuristic outcome.
TEST_F(RecoveryTest, ABranchThatOnlyReadIsCommittedWithoutAHeuristicRecord) {
  ChildRun exec = run_dtx({"exec", "--config", config(),
                           "my=SELECT balance FROM " + acct_ + " WHERE id = 1 FOR UPDATE",
                           "pg=" + insert_marker("read-only-my")},
                          {{"DTX_FAILPOINT", "after-decision"}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << exec.out << exec.err;
  ASSERT_EQ(prepared_gtrids(my_).size(), 1u);
  const std::string gtrid = *prepared_gtrids(my_).begin();

  std::map<std::string, std::string> actions;
  Pass pass = recover_after_crash(&actions);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_EQ(actions, (std::map<std::string, std::string>{{key("my", gtrid), "committed"},
                                                         {key("pg", gtrid), "committed"}}))
      << pass.out;
  EXPECT_TRUE(pass.report["heuristics"].empty()) << pass.out;
  EXPECT_FALSE(fs::exists(log_dir_ / "heuristics.log"));
  for (const auto& b : pass.report["branches"]) {  // the database's answer is kept in the report
    if (b["gtrid"] == gtrid && b["resource"] == "my") {
      EXPECT_NE(b["detail"].get<std::string>().find("1402"), std::string::npos) << b.dump();
    }
  }
  EXPECT_EQ(markers(pg_), std::set<std::string>{"read-only-my"});
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_TRUE(ours().empty());
}


// ---------------------------------------------------------------------------
// 6. Issue 8: ways a transaction used to split.

class LogDirTest : public RecoveryTest {
 protected:
  // Rewrites the config with `log_dir = "<value>"`.
  void set_log_dir(const std::string& value) {
    std::string text = test::Child::slurp(config_file_);
    const std::string line = "log_dir = \"" + log_dir_.string() + "\"";
    auto at = text.find(line);
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, line.size(), "log_dir = \"" + value + "\"");
    std::ofstream(config_file_) << text;
  }
  // Runs `dtx` with `args` from the working directory `cwd`.
  ChildRun run_in(const fs::path& cwd, const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
    fs::create_directories(cwd);
    std::string script = "cd " + shell_quote(cwd.string()) + " && exec " +
                         shell_quote(test::dtx_binary().string());
    for (const auto& a : args) script += " " + shell_quote(a);
    std::fflush(nullptr);
    test::Child child("/bin/sh", {"-c", script}, env, dir_, next_tag());
    test::ExitStatus st = child.wait();
    return {st, child.out(), child.err()};
  }
};

// A relative log_dir is the config file's folder's log_dir, whatever the
// working directory: a transaction that crashed after its first commit in a
// process started from one directory is finished by `dtx recover` started
// from another, instead of being rolled back on the branch still prepared.
TEST_F(LogDirTest, RelativeLogDirIsResolvedAgainstTheConfigFile) {
  set_log_dir("log");
  ChildRun exec = run_in(dir_ / "a", transfer_args(1, "rel"), {{"DTX_FAILPOINT", "after-first-commit"}});
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << exec.out << exec.err;
  std::set<std::string> on_pg = prepared_gtrids(pg_);
  ASSERT_EQ(on_pg.size(), 1u);
  ASSERT_TRUE(prepared_gtrids(my_).empty());
  const std::string gtrid = *on_pg.begin();
  EXPECT_FALSE(log_files().empty()) << "the log is not in the config file's folder";

  // Another process, from another directory, makes a log of its own there first.
  ChildRun other = run_in(dir_ / "b", {"exec", "--config", config(), "my=SELECT 1"});
  EXPECT_EQ(other.status.code, 0) << other.out << other.err;
  ChildRun pass = run_in(dir_ / "b", {"recover", "--config", config(), "--json"});
  Pass p = to_pass(pass);
  std::map<std::string, std::string> actions = our_actions(p.report);
  EXPECT_EQ(actions, (std::map<std::string, std::string>{{key("pg", gtrid), "committed"}})) << p.out << p.err;
  EXPECT_EQ(balance(my_), kInitialBalance - 10);
  EXPECT_EQ(balance(pg_), kInitialBalance + 10);
  EXPECT_EQ(markers(my_), std::set<std::string>{"rel"});
  EXPECT_EQ(markers(pg_), std::set<std::string>{"rel"});
  EXPECT_TRUE(ours().empty());
  EXPECT_FALSE(fs::exists(dir_ / "a" / "log"));
  EXPECT_FALSE(fs::exists(dir_ / "b" / "log"));
}


// A segment is made as long as its preallocation and synced before any
// decision is written to it, and the lock file of a crashed process names it.
// So after a crash past the decision, a segment cut short in the middle of a
// record, emptied or deleted is damage, not a torn tail: `dtx recover`
// reports it (exit 1, naming the file) and leaves the branches prepared,
// where before it rolled back a decided transaction. The operator then
// finishes it with `dtx commit`.
class LogDamageTest : public RecoveryTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(LogDamageTest, DamagedLogAfterTheDecisionLeavesTheBranchesToTheOperator) {
  const std::string damage = GetParam();
  fs::path segment;
  const std::string gtrid = crash_after_decision("dmg", &segment);
  ASSERT_FALSE(gtrid.empty());
  const std::set<std::string> on_my{gtrid};
  const SegmentReadResult before = read_segment(segment);
  ASSERT_EQ(before.records.size(), 1u);
  if (damage == "truncated") {
    fs::resize_file(segment, before.valid_bytes / 2);  // the file ends in the middle of the record
  } else if (damage == "emptied") {
    fs::resize_file(segment, 0);
  } else {
    fs::remove(segment);
  }

  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 1) << pass.out << pass.err;
  bool named = false;
  for (const auto& e : pass.report["errors"])
    if (e.get<std::string>().find(segment.string()) != std::string::npos) named = true;
  EXPECT_TRUE(named) << "no error names " << segment << ": " << pass.out;
  EXPECT_EQ(our_actions(pass.report),
            (std::map<std::string, std::string>{{key("my", gtrid), "left_log_damaged"},
                                                {key("pg", gtrid), "left_log_damaged"}}))
      << pass.out;
  EXPECT_EQ(prepared_gtrids(my_), on_my);
  EXPECT_EQ(prepared_gtrids(pg_), on_my);
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_EQ(balance(pg_), kInitialBalance);

  // The operator knows it was decided, and commits it. (MariaDB may still
  // be ending the killed process's session for a moment.)
  ChildRun commit;
  EXPECT_TRUE(test::eventually([&] {
    commit = run_dtx({"commit", "--config", config(), gtrid});
    return commit.status.code == 0;
  }, 20s)) << commit.out << commit.err;
  // The damaged log could not say COMMIT: the operator is told it decided.
  EXPECT_NE(commit.out.find("note: no logged decision was found for " + gtrid), std::string::npos) << commit.out;
  EXPECT_TRUE(ours().empty());
  EXPECT_EQ(balance(my_), kInitialBalance - 10);
  EXPECT_EQ(balance(pg_), kInitialBalance + 10);
  EXPECT_EQ(markers(my_), std::set<std::string>{"dmg"});
  EXPECT_EQ(markers(pg_), std::set<std::string>{"dmg"});
}

INSTANTIATE_TEST_SUITE_P(Damage, LogDamageTest, ::testing::Values("truncated", "emptied", "deleted"));

}  // namespace
}  // namespace dtx
