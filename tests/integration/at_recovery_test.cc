// Recovery of AT-mode branches, with real processes and the real MariaDB and
// PostgreSQL servers started by scripts/db.sh.
//
// An AT branch's phase 1 is a local commit that leaves an undo record in
// dtx_undo_log and global row locks in dtx_global_lock (undo-log/at_session.cc).
// After a crash that record is what recovery lists as the "prepared" AT
// branch: with a COMMIT decision recovery deletes it and the locks, without
// one it undoes the rows from it. These tests crash real `dtx exec` children
// (DTX_FAILPOINT kills them with SIGKILL, or makes them hang until killed)
// in global transactions whose branches are all AT or mix AT and XA, run
// `dtx recover --json`, and check the data on both databases exactly: all or
// nothing, no undo record, rollback marker or global lock of the test's
// coordinator id left, nothing prepared.
//
// What is covered, by section:
//   1. kill -9 at every failpoint (after-prepare, after-decision,
//      after-first-commit) with both resources AT, MariaDB AT + PostgreSQL
//      XA, and the reverse; `dtx in-doubt` lists each branch with its mode;
//      a branch of many changes undone row for row; a damaged undo record.
//   2. a live owner (a child hung at its failpoint): its AT branches are
//      left, their rows readable, other global writers wait for the global
//      locks and fail naming the holder; once it is killed, finished.
//   3. dirty writes (a row changed or deleted outside dtx after phase 1):
//      left with the rows shown, nothing overwritten, locks kept, heuristic
//      recorded; `dtx rollback --force` writes the before image. A row held
//      by a session outside dtx must not hold a recovery pass forever.
//   4. `dtx commit` / `dtx rollback` by hand.
//   5. an AT and an XA resource on one MariaDB server.
//   6. thirty crashed transactions settled by two concurrent passes, or by
//      passes killed at random moments.
//   7. passes beside live AT and mixed transfers.
//
// Each test has its own coordinator id ("hc" + random digits), tables
// (hc_acct_<tag>, hc_xfer_<tag>), config file and log_dir. Its config gives
// each resource a mode; one resource per database server (except in 5), so
// that a server's XA branches are listed through one resource only. Sections
// 6 and 7 add a third resource in AT mode on the PostgreSQL server without
// prepared transactions (port 15433), which AT mode does not need.
//
// Waits are bounded polls (test::eventually) of the databases or of child
// exit; the only sleep is the deliberate random kill time in 6.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/transaction_id.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/process.h"
#include "support/recovery_runs.h"
#include "support/test_env.h"
#include "undo-log/at_session.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kAccounts = 40;
constexpr std::int64_t kInitialBalance = 100;

std::string sql_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

const char* mode_name(BranchMode m) { return m == BranchMode::at ? "at" : "xa"; }

// One database, reached outside any global transaction. `at_` lists what
// recovery lists there: the XA branches prepared on the server and the AT
// undo records in the database (AtSession::recover).
class Direct {
 public:
  explicit Direct(ResourceConfig rc) : rc_(std::move(rc)), plain_(make_resource_manager(rc_)) {
    ResourceConfig at = rc_;
    at.mode = BranchMode::at;
    at_ = undo::make_at_resource_manager(at);
  }
  const ResourceConfig& config() const { return rc_; }
  bool is_mysql() const { return rc_.type == ResourceType::mysql; }
  Result run(const std::string& sql, std::vector<Param> params = {}) {
    return plain_->acquire()->execute(sql, params);
  }
  std::int64_t scalar(const std::string& sql, std::vector<Param> params = {}) {
    return run(sql, std::move(params))[0].as_int64(0);
  }
  // Creates dtx_undo_log and dtx_global_lock when missing (as any AT use would).
  std::vector<PreparedXid> listed() { return at_->acquire()->recover(); }

 private:
  ResourceConfig rc_;
  std::unique_ptr<ResourceManager> plain_, at_;
};

using test::ChildRun;
using test::Pass;
using test::to_pass;

// A resource of the test's config file.
struct Res {
  std::string name;
  Direct* db;
  BranchMode mode;
};

class AtRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    tag_ = std::to_string(100000 + rd() % 900000);
    id_ = "hc" + tag_;
    dir_ = test::fresh_dir("atrec");
    log_dir_ = dir_ / "log";
    acct_ = "hc_acct_" + tag_;
    xfer_ = "hc_xfer_" + tag_;
    config_file_ = dir_ / "dtx.toml";
    for (Direct* d : {&my_, &pg_}) make_tables(*d);
  }

  void make_tables(Direct& d) {
    (void)d.listed();  // the AT tables exist from here on
    d.run("DROP TABLE IF EXISTS " + acct_);
    d.run("DROP TABLE IF EXISTS " + xfer_);
    const std::string engine = d.is_mysql() ? " ENGINE=InnoDB" : "";
    d.run("CREATE TABLE " + acct_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL)" + engine);
    d.run("CREATE TABLE " + xfer_ + " (tid VARCHAR(64) PRIMARY KEY)" + engine);
    std::string values;
    for (int i = 1; i <= kAccounts; ++i)
      values += (i > 1 ? ", (" : "(") + std::to_string(i) + ", " + std::to_string(kInitialBalance) + ")";
    d.run("INSERT INTO " + acct_ + " VALUES " + values);
    cleanup_.push_back(&d);
  }

  void TearDown() override {
    // Whatever of this coordinator id is left gets reported, then settled
    // directly (test data) so the tables can be dropped. log_dir is kept if
    // something could not be settled.
    bool keep = false;
    for (Direct* d : cleanup_) {
      try {
        const std::string left = leftovers(*d);
        if (!left.empty()) ADD_FAILURE() << "left on " << d->config().name << " (port " << d->config().port << "):" << left;
        for (const auto& p : d->listed()) {
          if (!is_ours(p)) continue;
          bool settled = test::eventually([&] {
            try {
              FinishResult r = p.mode == BranchMode::at
                                   ? at_session(*d)->rollback_prepared_overwriting(p.xid)
                                   : make_resource_manager(d->config())->acquire()->rollback_prepared(p.xid);
              return r.outcome != FinishOutcome::not_found;  // not_found (1397): its session is still ending
            } catch (const Error&) {
              return true;
            }
          }, 10s);
          keep = keep || !settled;
        }
        d->run("DELETE FROM dtx_undo_log WHERE gtrid LIKE ?", {id_ + ".%"});
        d->run("DELETE FROM dtx_global_lock WHERE gtrid LIKE ?", {id_ + ".%"});
        if (keep) continue;  // DROP TABLE would wait for a prepared branch's locks
        auto rm = make_resource_manager(d->config());
        auto s = rm->acquire();
        s->execute(d->is_mysql() ? "SET SESSION lock_wait_timeout = 10" : "SET lock_timeout = '10s'", {});
        s->execute("DROP TABLE IF EXISTS " + acct_, {});
        s->execute("DROP TABLE IF EXISTS " + xfer_, {});
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleaning up " << d->config().name << ": " << e.what();
        keep = true;
      }
    }
    std::error_code ec;
    if (keep)
      std::cout << "kept " << dir_ << " (config and decision logs of " << id_ << ")\n";
    else
      fs::remove_all(dir_, ec);
  }

  std::unique_ptr<ResourceManager> at_manager(Direct& d) {
    ResourceConfig rc = d.config();
    rc.mode = BranchMode::at;
    return undo::make_at_resource_manager(rc);
  }
  SessionLease at_session(Direct& d) {
    at_managers_.push_back(at_manager(d));
    return at_managers_.back()->acquire();
  }

  // ---- the config file ----

  void write_config(const std::vector<Res>& resources) {
    resources_ = resources;
    std::ofstream out(config_file_);
    out << "[coordinator]\nid = \"" << id_ << "\"\nlog_dir = \"" << log_dir_.string() << "\"\n\n";
    for (const Res& r : resources) {
      const ResourceConfig& rc = r.db->config();
      out << "[resources." << r.name << "]\ntype = \"" << (rc.type == ResourceType::mysql ? "mysql" : "postgres")
          << "\"\nhost = \"" << rc.host << "\"\nport = " << rc.port << "\nuser = \"" << rc.user
          << "\"\npassword = \"" << rc.password << "\"\ndatabase = \"" << rc.database << "\"\nmode = \""
          << mode_name(r.mode) << "\"\nlock_wait_timeout_ms = 5000\n\n";
    }
  }
  // "my" (MariaDB) and "pg" (PostgreSQL) in these modes.
  void write_config(BranchMode my, BranchMode pg) { write_config({{"my", &my_, my}, {"pg", &pg_, pg}}); }
  const Res& resource(const std::string& name) const {
    for (const auto& r : resources_)
      if (r.name == name) return r;
    throw std::logic_error("no resource " + name);
  }

  // ---- what the databases hold ----

  bool is_ours(const PreparedXid& p) const { return p.is_dtx && p.xid.gtrid.starts_with(id_ + "."); }

  // Our branches in doubt on `d` as recovery lists them: gtrid -> mode.
  std::map<std::string, BranchMode> in_doubt(Direct& d) {
    std::map<std::string, BranchMode> out;
    for (const auto& p : d.listed())
      if (is_ours(p)) out[p.xid.gtrid + " " + p.xid.bqual] = p.mode;
    return out;
  }
  std::set<std::string> in_doubt_gtrids(Direct& d) {
    std::set<std::string> out;
    for (const auto& [key, mode] : in_doubt(d)) out.insert(key.substr(0, key.find(' ')));
    return out;
  }
  // dtx_undo_log rows of ours (records and rollback markers) as "gtrid branch kind".
  std::vector<std::string> undo_rows(Direct& d) {
    std::vector<std::string> out;
    for (const Row& r : d.run("SELECT gtrid, branch, kind FROM dtx_undo_log WHERE gtrid LIKE ? ORDER BY 1, 2",
                              {id_ + ".%"}))
      out.push_back(r.text(0) + " " + r.text(1) + " kind " + r.text(2));
    return out;
  }
  std::int64_t locks(Direct& d, const std::string& gtrid = "") {
    return gtrid.empty() ? d.scalar("SELECT COUNT(*) FROM dtx_global_lock WHERE gtrid LIKE ?", {id_ + ".%"})
                         : d.scalar("SELECT COUNT(*) FROM dtx_global_lock WHERE gtrid = ?", {gtrid});
  }
  // Everything of this coordinator id on `d`: prepared XA branches, undo
  // records and markers, global locks. Empty when nothing is left.
  std::string leftovers(Direct& d) {
    std::string out;
    for (const auto& p : d.listed())
      if (is_ours(p) && p.mode == BranchMode::xa) out += "\n  prepared XA branch " + p.raw;
    for (const auto& r : undo_rows(d)) out += "\n  dtx_undo_log " + r;
    if (auto n = locks(d)) out += "\n  " + std::to_string(n) + " global lock(s)";
    return out;
  }
  ::testing::AssertionResult nothing_left() {
    std::string all;
    for (Direct* d : cleanup_)
      if (std::string l = leftovers(*d); !l.empty()) all += "\n" + d->config().name + " port " + std::to_string(d->config().port) + ":" + l;
    if (all.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "left after recovery:" << all;
  }

  std::int64_t balance(Direct& d, int id = 1) {
    return d.scalar("SELECT balance FROM " + acct_ + " WHERE id = " + std::to_string(id));
  }
  std::set<std::string> markers(Direct& d) {
    std::set<std::string> out;
    for (const Row& row : d.run("SELECT tid FROM " + xfer_)) out.insert(row.text(0));
    return out;
  }
  std::vector<std::string> log_files() { return test::decision_log_files(log_dir_); }
  std::vector<json> heuristics() {
    std::vector<json> out;
    std::ifstream in(log_dir_ / "heuristics.log");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line, nullptr, false));
    return out;
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
  // A `dtx exec` that should die at its failpoint. The databases are shared
  // with other test runs, so a phase 1 may fail with a deadlock (MariaDB
  // 1213) beside their AT traffic: the process then rolls back and exits 1
  // ("rolled back", nothing left). Such a run is retried, at most twice.
  ChildRun run_to_failpoint(const std::vector<std::string>& args, const std::string& failpoint) {
    ChildRun r;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      r = run_dtx(args, {{"DTX_FAILPOINT", failpoint}});
      if (!rolled_back_cleanly(r)) break;
      std::cout << "note: attempt " << attempt << " rolled back before its failpoint, retried: " << r.err << "\n";
    }
    return r;
  }
  static bool rolled_back_cleanly(const ChildRun& r) {
    return r.status.code == 1 && r.err.find("\nrolled back ") != std::string::npos;
  }
  std::string next_tag() { return "child" + std::to_string(children_++); }
  std::string config() const { return config_file_.string(); }

  // `dtx exec` arguments: `amount` from account `account` on `from` to the
  // same account on `to` (`from` first), each side recording `marker`.
  std::vector<std::string> transfer_args(int account, const std::string& marker, int amount = 10,
                                         const std::string& from = "my", const std::string& to = "pg") {
    const std::string where = " WHERE id = " + std::to_string(account);
    const std::string insert = "INSERT INTO " + xfer_ + " VALUES (" + sql_quote(marker) + ")";
    return {"exec", "--config", config(),
            from + "=UPDATE " + acct_ + " SET balance = balance - " + std::to_string(amount) + where,
            from + "=" + insert,
            to + "=UPDATE " + acct_ + " SET balance = balance + " + std::to_string(amount) + where,
            to + "=" + insert};
  }

  Pass recover_pass(const std::string& command = "recover") {
    return to_pass(run_dtx({command, "--config", config(), "--json"}));
  }

  // This coordinator's branches in a report: "resource gtrid" -> action.
  std::map<std::string, std::string> our_actions(const json& report) const { return test::actions_of(report, id_); }
  // The report's entry for one branch (null if absent).
  static json branch_of(const json& report, const std::string& resource, const std::string& gtrid) {
    for (const auto& b : report.value("branches", json::array()))
      if (b["resource"] == resource && b["gtrid"] == gtrid) return b;
    return nullptr;
  }

  // Recovery passes right after a crash (test::recover_until_not_busy).
  Pass recover_after_crash(std::map<std::string, std::string>* actions) {
    return test::recover_until_not_busy([this] { return recover_pass(); }, id_, actions);
  }

  std::string tag_, id_, acct_, xfer_;
  fs::path dir_, log_dir_, config_file_;
  Direct my_{test::mysql_resource("my")};
  Direct pg_{test::postgres_resource("pg")};
  std::unique_ptr<Direct> pgat_;  // PostgreSQL without prepared transactions, when a test uses it
  std::vector<Direct*> cleanup_;
  std::vector<Res> resources_;
  std::vector<std::unique_ptr<ResourceManager>> at_managers_;
  int children_ = 0;
};

std::string key(const std::string& resource, const std::string& gtrid) { return resource + " " + gtrid; }

// MariaDB's mode and PostgreSQL's.
struct Modes {
  BranchMode my, pg;
};
const Modes kModes[] = {{BranchMode::at, BranchMode::at}, {BranchMode::at, BranchMode::xa}, {BranchMode::xa, BranchMode::at}};
std::string modes_name(const Modes& m) {
  auto n = [](BranchMode b) { return b == BranchMode::at ? std::string("At") : std::string("Xa"); };
  return "My" + n(m.my) + "Pg" + n(m.pg);
}
std::string failpoint_name(const std::string& f) {
  std::string name = f;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// ---------------------------------------------------------------------------
// 1. A process killed at each failpoint, AT-only and mixed; `dtx in-doubt`
// lists the branches with their modes; one `dtx recover` finishes them.

class AtCrashTest : public AtRecoveryTest, public ::testing::WithParamInterface<std::tuple<Modes, std::string>> {};

TEST_P(AtCrashTest, RecoverFinishesWhatTheKilledProcessLeftAllOrNothing) {
  const auto [modes, failpoint] = GetParam();
  write_config(modes.my, modes.pg);
  const bool my_at = modes.my == BranchMode::at, pg_at = modes.pg == BranchMode::at;
  ChildRun exec = run_to_failpoint(transfer_args(1, "t1"), failpoint);
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.out << exec.err;

  // What the crash left. An AT branch that reached phase 1 is committed
  // locally: its rows are visible, with its undo record and global locks.
  std::set<std::string> on_my = in_doubt_gtrids(my_), on_pg = in_doubt_gtrids(pg_);
  std::string gtrid;
  if (failpoint == "after-first-commit") {
    EXPECT_TRUE(on_my.empty()) << ::testing::PrintToString(on_my);  // my, used first, is committed
    ASSERT_EQ(on_pg.size(), 1u);
    gtrid = *on_pg.begin();
    EXPECT_EQ(balance(my_), kInitialBalance - 10);
    EXPECT_EQ(locks(my_), 0);
    EXPECT_EQ(balance(pg_), kInitialBalance + (pg_at ? 10 : 0));
  } else {
    ASSERT_EQ(on_my.size(), 1u);
    ASSERT_EQ(on_pg, on_my);
    gtrid = *on_my.begin();
    EXPECT_EQ(balance(my_), kInitialBalance - (my_at ? 10 : 0));
    EXPECT_EQ(balance(pg_), kInitialBalance + (pg_at ? 10 : 0));
    EXPECT_EQ(locks(my_, gtrid), my_at ? 2 : 0);  // the account and the marker row
  }
  EXPECT_EQ(locks(pg_, gtrid), pg_at ? 2 : 0);
  for (auto [d, at] : {std::pair{&my_, my_at}, std::pair{&pg_, pg_at}})
    for (const auto& [k, mode] : in_doubt(*d)) EXPECT_EQ(mode, at ? BranchMode::at : BranchMode::xa) << k;

  // dtx in-doubt: each branch with its mode, the owner gone, the decision.
  const bool decided = failpoint != "after-prepare";
  Pass listing = recover_pass("in-doubt");
  EXPECT_EQ(listing.code, 0) << listing.out << listing.err;
  int listed = 0;
  for (const auto& b : listing.report["branches"]) {
    if (b["gtrid"] != gtrid) continue;
    ++listed;
    const bool at = b["resource"] == "my" ? my_at : pg_at;
    EXPECT_EQ(b["mode"], at ? "at" : "xa") << b.dump();
    EXPECT_EQ(b["bqual"], b["resource"]) << b.dump();
    EXPECT_EQ(b["coordinator_id"], id_) << b.dump();
    EXPECT_EQ(b["owner_alive"], false) << b.dump();
    EXPECT_EQ(b["decision"], decided ? "commit" : "none") << b.dump();
    EXPECT_EQ(b["action"], decided ? "would_commit" : "would_roll_back") << b.dump();
  }
  EXPECT_EQ(listed, failpoint == "after-first-commit" ? 1 : 2) << listing.out;

  std::map<std::string, std::string> actions;
  Pass pass = recover_after_crash(&actions);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_TRUE(pass.report["errors"].empty()) << pass.out;
  EXPECT_TRUE(pass.report["heuristics"].empty()) << pass.out;
  std::map<std::string, std::string> expected;
  if (failpoint == "after-prepare")
    expected = {{key("my", gtrid), "rolled_back"}, {key("pg", gtrid), "rolled_back"}};
  else if (failpoint == "after-decision")
    expected = {{key("my", gtrid), "committed"}, {key("pg", gtrid), "committed"}};
  else
    expected = {{key("pg", gtrid), "committed"}};
  EXPECT_EQ(actions, expected) << pass.out;

  // All or nothing, exactly.
  for (int id = 1; id <= kAccounts; ++id) {
    EXPECT_EQ(balance(my_, id), kInitialBalance - (decided && id == 1 ? 10 : 0)) << "account " << id;
    EXPECT_EQ(balance(pg_, id), kInitialBalance + (decided && id == 1 ? 10 : 0)) << "account " << id;
  }
  const std::set<std::string> want = decided ? std::set<std::string>{"t1"} : std::set<std::string>{};
  EXPECT_EQ(markers(my_), want);
  EXPECT_EQ(markers(pg_), want);
  EXPECT_TRUE(nothing_left());
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());

  Pass again = recover_pass();
  EXPECT_EQ(again.code, 0) << again.out << again.err;
  EXPECT_TRUE(our_actions(again.report).empty()) << again.out;
}

INSTANTIATE_TEST_SUITE_P(
    Failpoints, AtCrashTest,
    ::testing::Combine(::testing::ValuesIn(kModes),
                       ::testing::Values("after-prepare", "after-decision", "after-first-commit")),
    [](const auto& param_info) {
      return modes_name(std::get<0>(param_info.param)) + "_" + failpoint_name(std::get<1>(param_info.param));
    });

// A branch that changed many rows several times (updated, updated again,
// deleted, inserted, inserted then updated) and crashed after phase 1 is
// undone exactly: both tables read back as before, row for row.
TEST_F(AtRecoveryTest, ACrashedBranchOfManyChangesIsUndoneRowForRow) {
  write_config(BranchMode::at, BranchMode::at);
  auto dump = [&](Direct& d) {
    std::vector<std::string> rows;
    for (const Row& r : d.run("SELECT id, balance FROM " + acct_ + " ORDER BY id")) rows.push_back(r.text(0) + "=" + r.text(1));
    for (const Row& r : d.run("SELECT tid FROM " + xfer_ + " ORDER BY tid")) rows.push_back(r.text(0));
    return rows;
  };
  my_.run("INSERT INTO " + xfer_ + " VALUES ('old1'), ('old2')");
  pg_.run("INSERT INTO " + xfer_ + " VALUES ('old1'), ('old2')");
  const auto my_before = dump(my_), pg_before = dump(pg_);
  std::vector<std::string> args{"exec", "--config", config()};
  for (const char* r : {"my", "pg"}) {
    const std::string p = std::string(r) + "=";
    for (const std::string& sql :
         {"UPDATE " + acct_ + " SET balance = balance * 2 WHERE id <= 30",
          "UPDATE " + acct_ + " SET balance = balance + id WHERE id BETWEEN 20 AND 40",
          "DELETE FROM " + acct_ + " WHERE id > 35",
          "INSERT INTO " + acct_ + " VALUES (100, 1), (101, 2), (102, 3)",
          "UPDATE " + acct_ + " SET balance = 0 WHERE id IN (100, 1)",
          "DELETE FROM " + acct_ + " WHERE id = 102",
          "DELETE FROM " + xfer_ + " WHERE tid = 'old1'",
          "INSERT INTO " + xfer_ + " VALUES ('new1'), ('old1')"})
      args.push_back(p + sql);
  }
  ChildRun exec = run_to_failpoint(args, "after-prepare");
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.err;
  ASSERT_NE(dump(my_), my_before);  // phase 1 committed the changes locally
  ASSERT_NE(dump(pg_), pg_before);

  std::map<std::string, std::string> actions;
  Pass pass = recover_after_crash(&actions);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  for (const auto& [branch, action] : actions) EXPECT_EQ(action, "rolled_back") << branch;
  EXPECT_EQ(actions.size(), 2u) << pass.out;
  EXPECT_EQ(dump(my_), my_before);
  EXPECT_EQ(dump(pg_), pg_before);
  EXPECT_TRUE(nothing_left());
}

// An undo record that cannot be read (damaged by hand, or written by a
// newer dtx) is never guessed at: recovery leaves the branch
// (left_record_damaged, exit 3) with its rows and locks as they are, and
// rolls back the rest of the transaction. The operator then restores the
// rows by hand (the transaction has no decision: it is rolled back) and
// releases the branch with `dtx commit`, which deletes the record and the
// locks without reading the record (`dtx accept-current` does the same
// where it exists).
TEST_F(AtRecoveryTest, ADamagedUndoRecordIsLeftForTheOperator) {
  write_config(BranchMode::at, BranchMode::at);
  ChildRun exec = run_to_failpoint(transfer_args(1, "dmg"), "after-prepare");
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.err;
  const std::set<std::string> on_my = in_doubt_gtrids(my_);
  ASSERT_EQ(on_my.size(), 1u);
  const std::string gtrid = *on_my.begin();
  EXPECT_EQ(my_.run("UPDATE dtx_undo_log SET record = '{\"version\": 1, \"rows\": [' WHERE gtrid = ? AND branch = 'my'",
                    {gtrid})
                .affected_rows(),
            1u);

  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 3) << pass.out << pass.err;
  EXPECT_EQ(our_actions(pass.report), (std::map<std::string, std::string>{{key("my", gtrid), "left_record_damaged"},
                                                                          {key("pg", gtrid), "rolled_back"}}))
      << pass.out;
  const json b = branch_of(pass.report, "my", gtrid);
  ASSERT_FALSE(b.is_null()) << pass.out;
  EXPECT_NE(b["detail"].get<std::string>().find(gtrid), std::string::npos) << b.dump();
  EXPECT_EQ(balance(my_), kInitialBalance - 10);  // untouched
  EXPECT_EQ(markers(my_), std::set<std::string>{"dmg"});
  EXPECT_EQ(locks(my_, gtrid), 2);
  EXPECT_EQ(balance(pg_), kInitialBalance);
  EXPECT_EQ(leftovers(pg_), "");

  my_.run("UPDATE " + acct_ + " SET balance = balance + 10 WHERE id = 1");
  my_.run("DELETE FROM " + xfer_ + " WHERE tid = 'dmg'");
  ChildRun commit = run_dtx({"commit", "--config", config(), "--json", gtrid});
  EXPECT_EQ(commit.status.code, 0) << commit.out << commit.err;
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(nothing_left());
  Pass last = recover_pass();
  EXPECT_EQ(last.code, 0) << last.out << last.err;
  EXPECT_TRUE(our_actions(last.report).empty()) << last.out;
}

// ---------------------------------------------------------------------------
// 2. While the owner lives, recovery leaves its AT branches; their rows are
// readable (phase 1 committed them) but not writable by another global
// transaction; once the owner is killed, recovery finishes them.

class AtOwnerAliveTest : public AtRecoveryTest, public ::testing::WithParamInterface<std::tuple<Modes, std::string>> {};

TEST_P(AtOwnerAliveTest, LeftWhileTheOwnerLivesLockedAgainstOtherWritersThenFinished) {
  const auto [modes, failpoint] = GetParam();
  write_config(modes.my, modes.pg);
  const bool decided = failpoint == "after-decision";
  auto child = start_dtx(transfer_args(1, "alive"), {{"DTX_FAILPOINT", failpoint + ":hang"}});
  std::set<std::string> on_my, on_pg;
  ASSERT_TRUE(test::eventually([&] {
    on_my = in_doubt_gtrids(my_);
    on_pg = in_doubt_gtrids(pg_);
    return on_my.size() == 1 && on_pg == on_my;
  })) << "the hanging child never had both branches in doubt\n" << child->err();
  const std::string gtrid = *on_my.begin();
  if (decided) {
    // The decision is forced before the failpoint: wait until the log shows it.
    ASSERT_TRUE(test::eventually([&] {
      Pass l = recover_pass("in-doubt");
      json b = branch_of(l.report, "my", gtrid);
      return !b.is_null() && b["decision"] == "commit";
    }));
  }

  Pass listing = recover_pass("in-doubt");
  EXPECT_EQ(listing.code, 0) << listing.out << listing.err;
  for (const char* r : {"my", "pg"}) {
    json b = branch_of(listing.report, r, gtrid);
    ASSERT_FALSE(b.is_null()) << r << " not listed: " << listing.out;
    EXPECT_EQ(b["mode"], mode_name(resource(r).mode)) << b.dump();
    EXPECT_EQ(b["owner_alive"], true) << b.dump();
    EXPECT_EQ(b["action"], "left_owner_alive") << b.dump();
    EXPECT_EQ(b["decision"], decided ? "commit" : "none") << b.dump();
  }

  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 3) << pass.out << pass.err;
  EXPECT_EQ(our_actions(pass.report), (std::map<std::string, std::string>{{key("my", gtrid), "left_owner_alive"},
                                                                          {key("pg", gtrid), "left_owner_alive"}}))
      << pass.out;
  // Not even an operator's forced rollback touches it while the owner lives.
  ChildRun refused = run_dtx({"rollback", "--config", config(), "--force", gtrid});
  EXPECT_EQ(refused.status.code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("alive"), std::string::npos) << refused.err;

  // A plain read sees phase 1's data on an AT resource, nothing on an XA one.
  const bool my_at = modes.my == BranchMode::at, pg_at = modes.pg == BranchMode::at;
  EXPECT_EQ(balance(my_), kInitialBalance - (my_at ? 10 : 0));
  EXPECT_EQ(balance(pg_), kInitialBalance + (pg_at ? 10 : 0));
  EXPECT_EQ(markers(my_).count("alive"), my_at ? 1u : 0u);
  EXPECT_EQ(markers(pg_).count("alive"), pg_at ? 1u : 0u);

  // Another global transaction writing the row of an AT branch waits for
  // its global lock for lock_wait_timeout, then fails naming the holder.
  {
    Config other = load_config(config_file_);
    other.coordinator.id = id_ + "w";
    other.coordinator.log_dir = dir_ / "other-log";
    other.coordinator.recovery_interval_s = 0;
    for (auto& [name, rc] : other.resources) rc.lock_wait_timeout = 400ms;
    Coordinator coord(other);
    for (const char* r : {"my", "pg"}) {
      if (resource(r).mode != BranchMode::at) continue;
      SCOPED_TRACE(r);
      Transaction tx = coord.begin({.timeout = 20s});
      const auto started = std::chrono::steady_clock::now();
      try {
        tx.execute(r, "UPDATE " + acct_ + " SET balance = balance + 1 WHERE id = 1");
        ADD_FAILURE() << "wrote a row held by the AT branch of " << gtrid;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::lock_conflict) << e.what();
        EXPECT_NE(std::string(e.what()).find(gtrid), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(acct_), std::string::npos) << e.what();
      }
      const auto waited = std::chrono::steady_clock::now() - started;
      EXPECT_GE(waited, 400ms);
      EXPECT_LT(waited, 10s);
      tx.rollback();
    }
  }
  EXPECT_EQ(balance(my_), kInitialBalance - (my_at ? 10 : 0));
  EXPECT_EQ(balance(pg_), kInitialBalance + (pg_at ? 10 : 0));

  // The owner dies: the next pass finishes it as the log says.
  child->kill(SIGKILL);
  EXPECT_TRUE(child->wait().killed_by(SIGKILL));
  std::map<std::string, std::string> actions;
  Pass after = recover_after_crash(&actions);
  EXPECT_EQ(after.code, 0) << after.out << after.err;
  const char* outcome = decided ? "committed" : "rolled_back";
  EXPECT_EQ(actions, (std::map<std::string, std::string>{{key("my", gtrid), outcome}, {key("pg", gtrid), outcome}}))
      << after.out;
  EXPECT_EQ(balance(my_), kInitialBalance - (decided ? 10 : 0));
  EXPECT_EQ(balance(pg_), kInitialBalance + (decided ? 10 : 0));
  const std::set<std::string> want = decided ? std::set<std::string>{"alive"} : std::set<std::string>{};
  EXPECT_EQ(markers(my_), want);
  EXPECT_EQ(markers(pg_), want);
  EXPECT_TRUE(nothing_left());
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

INSTANTIATE_TEST_SUITE_P(
    Failpoints, AtOwnerAliveTest,
    ::testing::Combine(::testing::ValuesIn(kModes), ::testing::Values("after-prepare", "after-decision")),
    [](const auto& param_info) {
      return modes_name(std::get<0>(param_info.param)) + "_" + failpoint_name(std::get<1>(param_info.param));
    });

// ---------------------------------------------------------------------------
// 3. A dirty write between phase 1 and recovery's rollback: the branch is
// left with its rows shown, nothing overwritten, its locks kept and a
// heuristic outcome recorded; `dtx rollback --force` writes the before image.

class AtDirtyWriteTest : public AtRecoveryTest, public ::testing::WithParamInterface<std::string> {
 protected:
  // A crashed after-prepare transfer of 10 from MariaDB's account 1 to
  // PostgreSQL's, then account 1 changed outside dtx on `dirty` by
  // `statement` (default: set to 4242).
  std::string crash_and_dirty(Direct& dirty, const std::string& statement = "") {
    write_config(BranchMode::at, BranchMode::at);
    ChildRun exec = run_to_failpoint(transfer_args(1, "dirty"), "after-prepare");
    if (!exec.status.killed_by(SIGKILL)) {
      ADD_FAILURE() << "exit " << exec.status.code << "\n" << exec.err;
      return "";
    }
    const std::set<std::string> on_my = in_doubt_gtrids(my_);
    if (on_my.size() != 1 || in_doubt_gtrids(pg_) != on_my) {
      ADD_FAILURE() << "not one crashed transfer: " << ::testing::PrintToString(on_my);
      return "";
    }
    EXPECT_EQ(dirty.run(statement.empty() ? "UPDATE " + acct_ + " SET balance = 4242 WHERE id = 1" : statement)
                  .affected_rows(),
              1u);
    return *on_my.begin();
  }
};

TEST_P(AtDirtyWriteTest, RecoverLeavesItWithTheRowsAndForceRestoresTheBeforeImage) {
  const std::string dirty_name = GetParam(), clean_name = dirty_name == "my" ? "pg" : "my";
  Direct& dirty = dirty_name == "my" ? my_ : pg_;
  Direct& clean = dirty_name == "my" ? pg_ : my_;
  const std::int64_t dirty_after = dirty_name == "my" ? kInitialBalance - 10 : kInitialBalance + 10;
  const std::string gtrid = crash_and_dirty(dirty);
  ASSERT_FALSE(gtrid.empty());
  const std::int64_t dirty_locks = locks(dirty, gtrid);
  EXPECT_EQ(dirty_locks, 2);

  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 3) << pass.out << pass.err;
  EXPECT_EQ(our_actions(pass.report), (std::map<std::string, std::string>{{key(dirty_name, gtrid), "left_dirty_write"},
                                                                          {key(clean_name, gtrid), "rolled_back"}}))
      << pass.out;
  EXPECT_EQ(pass.report["left_in_doubt"], 1) << pass.out;
  // The detail shows the row before phase 1, after it, and now, in that order.
  const json b = branch_of(pass.report, dirty_name, gtrid);
  ASSERT_FALSE(b.is_null()) << pass.out;
  EXPECT_EQ(b["mode"], "at") << b.dump();
  const std::string detail = b["detail"];
  const auto before_at = detail.find("balance='100'");
  const auto after_at = detail.find("balance='" + std::to_string(dirty_after) + "'");
  const auto now_at = detail.find("balance='4242'");
  EXPECT_NE(before_at, std::string::npos) << detail;
  EXPECT_NE(after_at, std::string::npos) << detail;
  EXPECT_NE(now_at, std::string::npos) << detail;
  EXPECT_TRUE(before_at < after_at && after_at < now_at) << detail;
  EXPECT_NE(detail.find(acct_), std::string::npos) << detail;
  EXPECT_NE(detail.find("--force"), std::string::npos) << "the detail should say what the operator can do: " << detail;

  // Nothing overwritten, nothing undone on that side, the locks kept; the
  // clean side is rolled back.
  EXPECT_EQ(balance(dirty), 4242);
  EXPECT_EQ(markers(dirty), std::set<std::string>{"dirty"});
  EXPECT_EQ(undo_rows(dirty), std::vector<std::string>{gtrid + " " + dirty_name + " kind 0"});
  EXPECT_EQ(locks(dirty, gtrid), dirty_locks);
  EXPECT_EQ(balance(clean), kInitialBalance);
  EXPECT_TRUE(markers(clean).empty());
  EXPECT_EQ(leftovers(clean), "");

  // A heuristic outcome is recorded.
  std::vector<json> h = heuristics();
  ASSERT_FALSE(h.empty()) << "no heuristics.log line";
  EXPECT_EQ(h[0]["gtrid"], gtrid);
  EXPECT_EQ(h[0]["resource"], dirty_name);
  EXPECT_EQ(h[0]["outcome"], "dirty_write");
  EXPECT_EQ(h[0]["by"], "recovery");
  EXPECT_EQ(pass.report["heuristics"].size(), 1u) << pass.out;

  // A second pass leaves it the same way.
  Pass again = recover_pass();
  EXPECT_EQ(again.code, 3) << again.out << again.err;
  EXPECT_EQ(our_actions(again.report), (std::map<std::string, std::string>{{key(dirty_name, gtrid), "left_dirty_write"}}))
      << again.out;
  EXPECT_EQ(balance(dirty), 4242);
  // So does a plain operator rollback.
  ChildRun plain = run_dtx({"rollback", "--config", config(), "--json", gtrid});
  EXPECT_EQ(plain.status.code, 3) << plain.out << plain.err;
  EXPECT_EQ(balance(dirty), 4242);
  EXPECT_EQ(locks(dirty, gtrid), dirty_locks);

  // The operator decides for the before image.
  ChildRun forced = run_dtx({"rollback", "--config", config(), "--force", "--json", gtrid});
  EXPECT_EQ(forced.status.code, 0) << forced.out << forced.err;
  json r = json::parse(forced.out, nullptr, false);
  EXPECT_EQ(r["finished"], true) << forced.out;
  std::cout << "forced rollback's heuristics: " << r["heuristics"].dump() << "\n";
  EXPECT_EQ(balance(dirty), kInitialBalance);
  EXPECT_TRUE(markers(dirty).empty());
  EXPECT_EQ(balance(clean), kInitialBalance);
  EXPECT_TRUE(nothing_left());
  bool recorded = false;
  for (const auto& line : heuristics()) recorded = recorded || line["outcome"] == "dirty_write";
  EXPECT_TRUE(recorded);

  Pass last = recover_pass();
  EXPECT_EQ(last.code, 0) << last.out << last.err;
  EXPECT_TRUE(our_actions(last.report).empty()) << last.out;
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

// The issue asks for the rows of a dirty write in `dtx in-doubt` as well as
// in `dtx recover`: an operator looking at what is in doubt sees why.
TEST_P(AtDirtyWriteTest, InDoubtShowsTheDirtyRowsToo) {
  const std::string dirty_name = GetParam();
  Direct& dirty = dirty_name == "my" ? my_ : pg_;
  const std::string gtrid = crash_and_dirty(dirty);
  ASSERT_FALSE(gtrid.empty());
  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 3) << pass.out << pass.err;
  Pass listing = recover_pass("in-doubt");
  EXPECT_EQ(listing.code, 0) << listing.out << listing.err;
  const json b = branch_of(listing.report, dirty_name, gtrid);
  ASSERT_FALSE(b.is_null()) << listing.out;
  const std::string detail = b["detail"];
  EXPECT_NE(detail.find("balance='4242'"), std::string::npos)
      << "dtx in-doubt does not show the current row of a dirty write: " << b.dump();
  EXPECT_EQ(balance(dirty), 4242);
  ChildRun forced = run_dtx({"rollback", "--config", config(), "--force", "--json", gtrid});
  EXPECT_EQ(forced.status.code, 0) << forced.out << forced.err;
  EXPECT_TRUE(nothing_left());
}

// A row the branch updated, deleted outside dtx since: also a dirty write
// ("now (no row)"); --force inserts the before image back.
TEST_P(AtDirtyWriteTest, ARowDeletedOutsideIsLeftAndForceInsertsItBack) {
  const std::string dirty_name = GetParam();
  Direct& dirty = dirty_name == "my" ? my_ : pg_;
  const std::string gtrid = crash_and_dirty(dirty, "DELETE FROM " + acct_ + " WHERE id = 1");
  ASSERT_FALSE(gtrid.empty());
  Pass pass = recover_pass();
  EXPECT_EQ(pass.code, 3) << pass.out << pass.err;
  const json b = branch_of(pass.report, dirty_name, gtrid);
  ASSERT_FALSE(b.is_null()) << pass.out;
  EXPECT_EQ(b["action"], "left_dirty_write") << b.dump();
  EXPECT_NE(b["detail"].get<std::string>().find("no row"), std::string::npos) << b.dump();
  EXPECT_EQ(dirty.scalar("SELECT COUNT(*) FROM " + acct_ + " WHERE id = 1"), 0);  // nothing inserted back
  EXPECT_EQ(locks(dirty, gtrid), 2);

  ChildRun forced = run_dtx({"rollback", "--config", config(), "--force", "--json", gtrid});
  EXPECT_EQ(forced.status.code, 0) << forced.out << forced.err;
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_EQ(balance(pg_), kInitialBalance);
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(markers(pg_).empty());
  EXPECT_TRUE(nothing_left());
}

INSTANTIATE_TEST_SUITE_P(Side, AtDirtyWriteTest, ::testing::Values("my", "pg"),
                         [](const auto& param_info) { return std::string(param_info.param); });

// An AT rollback locks the rows it restores. A session outside dtx holding
// one of them (an application's transaction, idle after a SELECT ... FOR
// UPDATE) makes it wait; the wait must end (the resource's
// lock_wait_timeout_ms is 5 s here) with the branch left for the next pass,
// not hold the recovery pass — and every branch behind it — for as long as
// that session lives (PostgreSQL's lock_timeout is 0: forever; MariaDB's
// innodb_lock_wait_timeout 50 s).
class AtRowLockedTest : public AtRecoveryTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(AtRowLockedTest, RecoveryDoesNotWaitForeverForARowLockedOutsideDtx) {
  const std::string locked_name = GetParam();
  Direct& locked = locked_name == "my" ? my_ : pg_;
  write_config(BranchMode::at, BranchMode::at);
  ChildRun exec = run_to_failpoint(transfer_args(1, "held"), "after-prepare");
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.err;
  const std::set<std::string> on_my = in_doubt_gtrids(my_);
  ASSERT_EQ(on_my.size(), 1u);
  const std::string gtrid = *on_my.begin();

  auto holder_rm = make_resource_manager(locked.config());
  SessionLease holder = holder_rm->acquire();
  holder->begin_local(Xid::make("hcholder" + tag_, "x"));
  holder->execute("SELECT balance FROM " + acct_ + " WHERE id = 1 FOR UPDATE", {});

  auto pass = start_dtx({"recover", "--config", config(), "--json"});
  const pid_t pid = pass->pid();
  const bool ended = test::eventually([pid] {  // exited, not yet reaped
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
  }, 20s);
  EXPECT_TRUE(ended) << "dtx recover still waits after 20 s for a row of " << acct_ << " on " << locked_name
                     << " that a session outside dtx holds";
  if (ended) {
    // Left for the next pass; nothing of the locked side changed.
    EXPECT_EQ(balance(locked), locked_name == "my" ? kInitialBalance - 10 : kInitialBalance + 10);
    EXPECT_EQ(undo_rows(locked).size(), 1u);
  }
  holder->rollback();  // the application's transaction ends
  Pass first = to_pass({pass->wait(), pass->out(), pass->err()});
  if (ended) {
    EXPECT_EQ(first.code, 3) << first.out << first.err;
    const json b = branch_of(first.report, locked_name, gtrid);
    EXPECT_FALSE(b.is_null()) << first.out;
    if (!b.is_null()) {
      EXPECT_NE(b["action"], "rolled_back") << b.dump();
    }
  }

  std::map<std::string, std::string> actions;
  Pass after = recover_after_crash(&actions);
  EXPECT_EQ(after.code, 0) << after.out << after.err;
  EXPECT_EQ(balance(my_), kInitialBalance);
  EXPECT_EQ(balance(pg_), kInitialBalance);
  EXPECT_TRUE(markers(my_).empty());
  EXPECT_TRUE(markers(pg_).empty());
  EXPECT_TRUE(nothing_left());
}

INSTANTIATE_TEST_SUITE_P(Side, AtRowLockedTest, ::testing::Values("my", "pg"),
                         [](const auto& param_info) { return std::string(param_info.param); });

// ---------------------------------------------------------------------------
// 4. An operator settles a crashed AT or mixed transaction that has no
// decision: `dtx commit` commits every branch (AT: forgets its record and
// locks), `dtx rollback` undoes it.

class AtOperatorTest : public AtRecoveryTest, public ::testing::WithParamInterface<std::tuple<Modes, std::string>> {};

TEST_P(AtOperatorTest, CommitOrRollbackByHandFinishesEveryBranch) {
  const auto [modes, verb] = GetParam();
  write_config(modes.my, modes.pg);
  ChildRun exec = run_to_failpoint(transfer_args(1, "op"), "after-prepare");
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.err;
  const std::set<std::string> on_my = in_doubt_gtrids(my_);
  ASSERT_EQ(on_my.size(), 1u);
  ASSERT_EQ(in_doubt_gtrids(pg_), on_my);
  const std::string gtrid = *on_my.begin();

  // The text listing has a MODE column.
  ChildRun text = run_dtx({"in-doubt", "--config", config()});
  EXPECT_EQ(text.status.code, 0) << text.out << text.err;
  int lines = 0;
  for (std::size_t at = 0; at < text.out.size();) {
    const std::size_t end = std::min(text.out.find('\n', at), text.out.size());
    std::istringstream line(text.out.substr(at, end - at));
    at = end + 1;
    std::string res, mode, id;
    line >> res >> mode >> id;
    if (id != gtrid) continue;
    ++lines;
    EXPECT_EQ(mode, mode_name(resource(res).mode)) << text.out;
  }
  EXPECT_EQ(lines, 2) << text.out;

  ChildRun r = run_dtx({verb, "--config", config(), "--json", gtrid});
  EXPECT_EQ(r.status.code, 0) << r.out << r.err;
  const json j = json::parse(r.out, nullptr, false);
  EXPECT_EQ(j["finished"], true) << r.out;
  EXPECT_TRUE(j["heuristics"].empty()) << r.out;
  const bool commit = verb == "commit";
  for (const char* res : {"my", "pg"}) {
    const json b = branch_of(j, res, gtrid);
    ASSERT_FALSE(b.is_null()) << res << ": " << r.out;
    EXPECT_EQ(b["action"], commit ? "committed" : "rolled_back") << b.dump();
    EXPECT_EQ(b["mode"], mode_name(resource(res).mode)) << b.dump();
  }
  EXPECT_EQ(balance(my_), kInitialBalance - (commit ? 10 : 0));
  EXPECT_EQ(balance(pg_), kInitialBalance + (commit ? 10 : 0));
  const std::set<std::string> want = commit ? std::set<std::string>{"op"} : std::set<std::string>{};
  EXPECT_EQ(markers(my_), want);
  EXPECT_EQ(markers(pg_), want);
  EXPECT_TRUE(nothing_left());

  Pass last = recover_pass();
  EXPECT_EQ(last.code, 0) << last.out << last.err;
  EXPECT_TRUE(our_actions(last.report).empty()) << last.out;
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

INSTANTIATE_TEST_SUITE_P(Verbs, AtOperatorTest,
                         ::testing::Combine(::testing::ValuesIn(kModes), ::testing::Values("commit", "rollback")),
                         [](const auto& param_info) {
                           return modes_name(std::get<0>(param_info.param)) + "_" + std::get<1>(param_info.param);
                         });

// ---------------------------------------------------------------------------
// 5. Two resources on one MariaDB server, one AT and one XA (two databases
// of a server, or one database reached in both modes). XA RECOVER is
// server-wide, so the AT resource lists the XA resource's branches too and
// recovery may finish them through it. Every branch must be finished once,
// all or nothing, and nothing may be left in dtx_undo_log: a rollback
// through the AT resource of a branch that has no undo record must not
// leave a rollback marker behind (nothing would ever delete it).

class AtSameServerTest : public AtRecoveryTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(AtSameServerTest, AnAtAndAnXaResourceOnOneServerFinishEachBranchOnce) {
  const std::string failpoint = GetParam();
  write_config({{"my", &my_, BranchMode::at}, {"myx", &my_, BranchMode::xa}, {"pg", &pg_, BranchMode::xa}});
  // 10 from MariaDB's account 1 (AT) and 10 from its account 2 (XA) to
  // PostgreSQL's account 1 (XA).
  ChildRun exec = run_to_failpoint({"exec", "--config", config(),
                                    "my=UPDATE " + acct_ + " SET balance = balance - 10 WHERE id = 1",
                                    "myx=UPDATE " + acct_ + " SET balance = balance - 10 WHERE id = 2",
                                    "pg=UPDATE " + acct_ + " SET balance = balance + 20 WHERE id = 1"},
                                   failpoint);
  ASSERT_TRUE(exec.status.killed_by(SIGKILL)) << "exit " << exec.status.code << "\n" << exec.err;

  std::map<std::string, std::string> actions;
  Pass pass = recover_after_crash(&actions);
  EXPECT_EQ(pass.code, 0) << pass.out << pass.err;
  EXPECT_TRUE(pass.report["errors"].empty()) << pass.out;
  const std::string done = failpoint == "after-prepare" ? "rolled_back" : "committed";
  std::map<std::string, int> finished;  // bqual -> times finished
  for (const auto& b : pass.report["branches"]) {
    if (!b["gtrid"].get<std::string>().starts_with(id_ + ".")) continue;
    EXPECT_TRUE(b["action"] == done || b["action"] == "already_finished") << b.dump();
    finished[b["bqual"]] += b["action"] == done;
  }
  for (const auto& [bqual, n] : finished) EXPECT_LE(n, 1) << bqual << " finished " << n << " times\n" << pass.out;

  const bool committed = failpoint != "after-prepare";
  EXPECT_EQ(balance(my_, 1), kInitialBalance - (committed ? 10 : 0));
  EXPECT_EQ(balance(my_, 2), kInitialBalance - (committed ? 10 : 0));
  EXPECT_EQ(balance(pg_, 1), kInitialBalance + (committed ? 20 : 0));
  EXPECT_TRUE(undo_rows(my_).empty()) << "left in dtx_undo_log: " << ::testing::PrintToString(undo_rows(my_));
  EXPECT_TRUE(nothing_left());
  EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
}

INSTANTIATE_TEST_SUITE_P(Failpoints, AtSameServerTest,
                         ::testing::Values("after-prepare", "after-decision", "after-first-commit"),
                         [](const auto& param_info) { return failpoint_name(param_info.param); });

// ---------------------------------------------------------------------------
// 6. Many crashed AT-only and mixed transactions, settled by two recovery
// passes at once, or by passes killed at random moments.
//
// Resources: my (MariaDB, AT), pg (PostgreSQL, XA) and pgat (AT, on the
// PostgreSQL server without prepared transactions). Transaction i moves 1
// from MariaDB's account i+1 to account i+1 on PostgreSQL: through pgat
// (AT-only) for even i, through pg (AT + XA) for odd i; its process dies at
// failpoint_[i] (the three failpoints equally often, shuffled).

class ManyTransactionsTest : public AtRecoveryTest {
 protected:
  static constexpr int kTransactions = 30;

  void SetUp() override {
    AtRecoveryTest::SetUp();
    pgat_ = std::make_unique<Direct>(test::postgres_noprep_resource("pgat"));
    make_tables(*pgat_);
    write_config({{"my", &my_, BranchMode::at}, {"pg", &pg_, BranchMode::xa}, {"pgat", pgat_.get(), BranchMode::at}});
    const std::vector<std::string> kinds = {"after-prepare", "after-decision", "after-first-commit"};
    seed_ = std::random_device{}();
    rng_.seed(seed_);
    failpoint_.resize(kTransactions);
    for (int i = 0; i < kTransactions; ++i) failpoint_[i] = kinds[(i / 2) % kinds.size()];
    std::shuffle(failpoint_.begin(), failpoint_.end(), rng_);
  }
  static std::string target(int i) { return i % 2 == 0 ? "pgat" : "pg"; }

  // Runs the transactions, five at a time. Each is killed at its failpoint
  // or (a deadlock beside other test runs' AT traffic, see
  // run_to_failpoint) rolled back before it: then it must be absent at the
  // end like an after-prepare one. Callers wrap it in ASSERT_NO_FATAL_FAILURE.
  void crash_all() {
    crashed_.assign(kTransactions, true);
    constexpr int kBatch = 5;
    for (int first = 0; first < kTransactions; first += kBatch) {
      std::vector<std::unique_ptr<test::Child>> batch;
      for (int i = first; i < std::min(first + kBatch, kTransactions); ++i)
        batch.push_back(start_dtx(transfer_args(i + 1, "t" + std::to_string(i), 1, "my", target(i)),
                                  {{"DTX_FAILPOINT", failpoint_[i]}}));
      for (int i = first; i < std::min(first + kBatch, kTransactions); ++i) {
        test::Child& c = *batch[i - first];
        ChildRun r{c.wait(), c.out(), c.err()};
        if (rolled_back_cleanly(r)) {
          crashed_[i] = false;
          std::cout << "note: t" << i << " rolled back before its failpoint: " << r.err << "\n";
          continue;
        }
        ASSERT_TRUE(r.status.killed_by(SIGKILL)) << "exit " << r.status.code << "\n" << r.err;
      }
    }
    ASSERT_GE(std::count(crashed_.begin(), crashed_.end(), true), kTransactions - 3) << "too few crashed";
    std::size_t expected_in_doubt = 0;
    for (int i = 0; i < kTransactions; ++i)
      if (crashed_[i]) expected_in_doubt += failpoint_[i] == "after-first-commit" ? 1 : 2;
    EXPECT_EQ(in_doubt(my_).size() + in_doubt(pg_).size() + in_doubt(*pgat_).size(), expected_in_doubt);
  }

  // After the last pass: each transaction all or nothing, as its failpoint says.
  void check_all_or_nothing() {
    const std::set<std::string> on_my = markers(my_), on_pg = markers(pg_), on_pgat = markers(*pgat_);
    for (int i = 0; i < kTransactions; ++i) {
      const bool committed = crashed_[i] && failpoint_[i] != "after-prepare";
      const bool to_pgat = i % 2 == 0;
      SCOPED_TRACE("t" + std::to_string(i) + " " + failpoint_[i] + " to " + target(i));
      const std::string tid = "t" + std::to_string(i);
      EXPECT_EQ(on_my.count(tid), committed ? 1u : 0u);
      EXPECT_EQ((to_pgat ? on_pgat : on_pg).count(tid), committed ? 1u : 0u);
      EXPECT_EQ((to_pgat ? on_pg : on_pgat).count(tid), 0u);
      EXPECT_EQ(balance(my_, i + 1), kInitialBalance - (committed ? 1 : 0));
      EXPECT_EQ(balance(to_pgat ? *pgat_ : pg_, i + 1), kInitialBalance + (committed ? 1 : 0));
      EXPECT_EQ(balance(to_pgat ? pg_ : *pgat_, i + 1), kInitialBalance);
    }
    EXPECT_TRUE(nothing_left());
    EXPECT_TRUE(log_files().empty()) << ::testing::PrintToString(log_files());
  }

  unsigned seed_ = 0;
  std::mt19937 rng_;
  std::vector<std::string> failpoint_;
  std::vector<bool> crashed_;
};

TEST_F(ManyTransactionsTest, TwoConcurrentPassesSettleEachBranchOnceAllOrNothing) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  ASSERT_NO_FATAL_FAILURE(crash_all());

  // Two passes started together; every branch acted on at most once in total.
  auto a = start_dtx({"recover", "--config", config(), "--json"});
  auto b = start_dtx({"recover", "--config", config(), "--json"});
  std::map<std::string, std::vector<std::string>> finished_by;  // branch -> finishing actions
  std::vector<std::size_t> per_pass;
  for (auto* c : {a.get(), b.get()}) {
    per_pass.push_back(finished_by.size());
    test::ExitStatus st = c->wait();
    EXPECT_TRUE(st.code == 0 || st.code == 3) << "exit " << st.code << "\n" << c->out() << c->err();
    Pass p = to_pass({st, c->out(), c->err()});
    for (const auto& [branch, action] : our_actions(p.report)) {
      if (action == "committed" || action == "rolled_back") finished_by[branch].push_back(action);
      // The loser of a race on PostgreSQL's XA branch may see "is busy"; nothing else may fail.
      if (action == "failed") {
        json br = branch_of(p.report, branch.substr(0, branch.find(' ')), branch.substr(branch.find(' ') + 1));
        EXPECT_NE(br["detail"].get<std::string>().find("is busy"), std::string::npos) << br.dump();
      }
      EXPECT_NE(action, "left_dirty_write") << branch;
    }
  }
  std::cout << "the two passes finished " << per_pass[1] - per_pass[0] << " and " << finished_by.size() - per_pass[1]
            << " branches\n";
  std::map<std::string, std::string> actions;
  Pass last = recover_after_crash(&actions);
  EXPECT_EQ(last.code, 0) << last.out << last.err;
  for (const auto& [branch, action] : actions)
    if (action == "committed" || action == "rolled_back") finished_by[branch].push_back(action);
  for (const auto& [branch, done] : finished_by)
    EXPECT_EQ(done.size(), 1u) << branch << " finished more than once: " << ::testing::PrintToString(done);
  check_all_or_nothing();
}

// A recovery pass killed (SIGKILL) at a random moment leaves nothing half
// done: an AT branch is undone or forgotten in one local transaction, which
// the database rolls back when the killed pass's connection drops. Passes
// are killed until one has run to its end, then a last pass settles the rest.
TEST_F(ManyTransactionsTest, RecoveryPassesKilledAtRandomLeaveNothingHalfDone) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  ASSERT_NO_FATAL_FAILURE(crash_all());
  int killed = 0, finished = 0, killed_midway = 0;
  // Kill times are drawn from [0, limit_ms]: the limit grows while passes
  // are killed and shrinks to a pass's length when one ends first, so the
  // kills spread over a whole pass.
  int limit_ms = 200;
  auto left = [&] { return in_doubt(my_).size() + in_doubt(pg_).size() + in_doubt(*pgat_).size(); };
  std::size_t before = left();
  for (int round = 0; round < 16 && finished < 2; ++round) {
    auto pass = start_dtx({"recover", "--config", config(), "--json"});
    const auto started = std::chrono::steady_clock::now();
    // Deliberate kill timing (what is tested), not a wait for a condition.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, limit_ms)(rng_)));
    pass->kill(SIGKILL);
    test::ExitStatus st = pass->wait();
    if (st.killed_by(SIGKILL)) {
      ++killed;
      limit_ms = limit_ms * 3 / 2;
      const std::size_t now = left();
      killed_midway += now < before && now > 0;  // it had finished some branches, not all
      before = now;
    } else {
      ++finished;  // it ended before the kill: the next ones get less time
      before = left();
      EXPECT_TRUE(st.code == 0 || st.code == 3) << "exit " << st.code << "\n" << pass->out() << pass->err();
      limit_ms = std::max(50, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::steady_clock::now() - started).count()));
    }
  }
  std::cout << killed << " recovery passes killed (" << killed_midway << " after finishing some of the branches), "
            << finished << " ran to their end\n";
  EXPECT_GT(killed, 0);
  std::map<std::string, std::string> actions;
  Pass last = recover_after_crash(&actions);
  EXPECT_EQ(last.code, 0) << last.out << last.err;
  EXPECT_TRUE(last.report["errors"].empty()) << last.out;
  check_all_or_nothing();
}

// ---------------------------------------------------------------------------
// 7. `dtx recover` passes running beside live AT and mixed transfers never
// touch them: a live transfer's undo records (phase 1 done, phase 2 not yet,
// or its records not yet forgotten) are left alone, and every transfer
// commits.

TEST_F(ManyTransactionsTest, RecoveryPassesNeverTouchLiveAtTransfers) {
  Config config = load_config(config_file_);
  config.coordinator.recovery_interval_s = 0;
  std::atomic<bool> done{false};
  std::atomic<int> passes{0}, live_seen{0};
  std::mutex mu;
  std::vector<std::string> violations;
  std::thread recoverer([&] {
    while (!done) {
      Pass p = recover_pass();
      if (p.code != 0 && p.code != 3) {
        std::lock_guard lock(mu);
        violations.push_back("dtx recover exited " + std::to_string(p.code) + ": " + p.out + p.err);
      }
      for (const auto& [branch, action] : our_actions(p.report)) {
        if (action == "left_owner_alive" || action == "left_seen_once") {
          ++live_seen;
        } else {
          std::lock_guard lock(mu);
          violations.push_back(branch + " " + action);
        }
      }
      ++passes;
    }
  });

  constexpr int kClients = 4, kTransfers = 240;
  std::atomic<int> committed{0}, next{0};
  std::vector<std::string> failures;
  {
    Coordinator coord(config);
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c)
      clients.emplace_back([&] {
        for (int n = next++; n < kTransfers; n = next++) {
          // Always MariaDB first: no cycle of waits, every transfer commits.
          const int from = 1 + n % 20, to = 1 + (7 * n) % 20;
          try {
            Transaction tx = coord.begin();
            tx.execute("my", "UPDATE " + acct_ + " SET balance = balance - 1 WHERE id = ?", {from});
            tx.execute(target(n), "UPDATE " + acct_ + " SET balance = balance + 1 WHERE id = ?", {to});
            tx.commit();
            ++committed;
          } catch (const Error& e) {
            std::lock_guard lock(mu);
            failures.push_back(e.what());
          }
        }
      });
    for (auto& t : clients) t.join();
    // At least one full pass overlapped the transfers or ran after them.
    const int seen = passes;
    EXPECT_TRUE(test::eventually([&] { return passes > seen; }));
  }  // the coordinator has forgotten every AT branch
  done = true;
  recoverer.join();

  EXPECT_EQ(committed.load(), kTransfers) << ::testing::PrintToString(failures);
  EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations);
  auto sum = [&](Direct& d) { return d.scalar("SELECT SUM(balance) FROM " + acct_); };
  EXPECT_EQ(sum(my_), kAccounts * kInitialBalance - kTransfers);
  EXPECT_EQ(sum(pg_) + sum(*pgat_), 2 * kAccounts * kInitialBalance + kTransfers);
  EXPECT_EQ(sum(pg_), kAccounts * kInitialBalance + kTransfers / 2);
  EXPECT_TRUE(nothing_left());
  std::cout << committed << " transfers beside " << passes << " dtx recover runs; " << live_seen
            << " sightings of a live transfer's branch, all left alone\n";
}

}  // namespace
}  // namespace dtx
