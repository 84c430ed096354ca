// A bounded randomized soak, run once per place the commit decisions are
// kept: the file log (log_dir), and [coordinator] decisions = "pg" and = "my"
// (the table dtx_decision of PostgreSQL / MariaDB, decision_table.cc). For
// its duration four workers launch `dtx exec` transfers between random
// accounts on MariaDB and PostgreSQL (MariaDB first), each with a marker row
// on both databases. Of the processes, 60% run plainly, 24% stop at a
// failpoint and 16% get SIGKILL at a random moment of their life, while
// `dtx recover` passes run every ~200 ms. The failpoints: after-prepare,
// after-decision, after-first-commit (8% each with the file log); with
// decisions in a table also before-decision-commit, decision-commit-sent and
// after-decision-commit (4% each of the six).
//
// A third of the transfers are XA on both databases, a third AT on both, a
// third mixed (AT on one database, XA on the other, each way half the time).
// Each kind has its config file with the resources in its modes, its own
// coordinator id (the test's id + x / a / m / n) and log_dir, and its own
// `dtx recover` passes. AT mode's global locks guard rows only against other
// AT branches (docs/at-mode.md): a row an XA branch changed between an AT
// branch's phase 1 and its rollback would be a dirty write. So on each
// database XA branches use accounts 1-10 and AT branches accounts 11-20.
// With decisions in a table the `dtx recover` passes run from a config with
// no log_dir at all (another machine, or a container without a disk), and
// the transfers' log_dir must stay without decision-log files.
//
// At the end, after the last recovery passes, the two databases must agree:
//   - no money created or lost (the sum over both databases is unchanged);
//   - every transfer's marker row is on both databases or on neither;
//   - the markers' amounts account for every account's balance;
//   - every outcome the process reported holds (exit 0 and a kill after the
//     decision: committed; exit 1 and a kill before it: not);
//   - nothing of the test's coordinator ids is left prepared, and no undo
//     record, rollback marker or global lock of theirs is left;
//   - with decisions in a table: no COMMIT row of theirs is left in
//     dtx_decision (every one is settled), and each ABORT row left (kept
//     kAbortRowRetention by design) is of a gtrid recovery rolled back.
// Durations: DTX_SOAK_SECONDS (default 60, as CI runs it) for the file log,
// a third of it for each table. A longer run by hand:
//   DTX_SOAK_SECONDS=600 build/tests/soak_test
// Each store's test takes about its duration + 30 s at most: a transfer
// waits at most 5 s for a lock (innodb_lock_wait_timeout / lock_timeout set
// inside its own transaction, nothing global; AT branches:
// lock_wait_timeout_ms) and a child still running 20 s after its start is
// killed (and reported).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "decision-table/decision_table.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/process.h"
#include "support/test_env.h"
#include "undo-log/at_session.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using test::Child;
using test::ExitStatus;

constexpr int kWorkers = 4;
constexpr int kAccounts = 10;  // per database and mode: XA branches 1-10, AT branches 11-20
constexpr std::int64_t kInitialBalance = 300;
constexpr std::int64_t kMaxAmount = 100;
constexpr auto kRecoveryPacing = std::chrono::milliseconds(200);
constexpr auto kChildLimit = std::chrono::seconds(20);
constexpr int kFinalPasses = 10;

// How a transfer's process is stopped, if at all.
enum class Mode {
  plain,
  after_prepare,
  after_decision,
  after_first_commit,
  before_decision_commit,  // these three with decisions in a table only
  decision_commit_sent,
  after_decision_commit,
  random_kill
};
constexpr const char* kModeNames[] = {"none",
                                      "after-prepare",
                                      "after-decision",
                                      "after-first-commit",
                                      "before-decision-commit",
                                      "decision-commit-sent",
                                      "after-decision-commit",
                                      "random-kill"};

// Where the coordinators keep their commit decisions.
enum class Store { file, postgres, mysql };
constexpr const char* kStoreNames[] = {"file", "postgres", "mysql"};
void PrintTo(Store store, std::ostream* out) { *out << kStoreNames[int(store)]; }  // gtest's test listings

// The modes of a transfer's branches: MariaDB's and PostgreSQL's.
enum class Kind { xa, at, my_at_pg_xa, my_xa_pg_at };
constexpr int kKinds = 4;
constexpr const char* kKindNames[] = {"XA", "AT", "AT+XA (MariaDB AT)", "XA+AT (PostgreSQL AT)"};
constexpr const char* kKindSuffix[] = {"x", "a", "m", "n"};  // of the coordinator id
bool my_at(Kind k) { return k == Kind::at || k == Kind::my_at_pg_xa; }
bool pg_at(Kind k) { return k == Kind::at || k == Kind::my_xa_pg_at; }

struct Attempt {
  std::string tid;
  Kind kind = Kind::xa;
  Mode mode = Mode::plain;
  int kill_after_ms = 0;  // random_kill only
  ExitStatus status;
  bool overdue = false;  // killed by the watchdog
  std::string err;       // stderr, kept for unexpected outcomes
};

// What a transfer's outcome says about its marker row: must be there, must
// not, or either.
enum class Expect { committed, absent, either };

Expect expectation(const Attempt& a) {
  if (a.overdue) return Expect::either;
  if (a.status.code == 0) return Expect::committed;
  // 3: decided, a branch left to recovery — or, with decisions in a table,
  // the decision's answer lost (its outcome is the fence's).
  if (a.status.code == 3)
    return a.err.find("answer was lost") == std::string::npos ? Expect::committed : Expect::either;
  if (a.status.code == 1) return Expect::absent;
  if (a.status.killed_by(SIGKILL)) {
    switch (a.mode) {
      case Mode::after_prepare:
      case Mode::before_decision_commit: return Expect::absent;  // no decision: presumed abort / fenced
      case Mode::after_decision:
      case Mode::after_first_commit:
      case Mode::after_decision_commit: return Expect::committed;
      default: return Expect::either;  // decision-commit-sent: R's commit may or may not have landed
    }
  }
  return Expect::either;
}

// A child still running past its limit is killed. The worker waits for its
// child's exit without reaping it (WNOWAIT) before clearing its slot, so the
// pid cannot be reused while the watchdog may still signal it.
struct Slot {
  std::mutex mu;
  pid_t pid = 0;
  Clock::time_point limit;
  bool fired = false;
};

void wait_for_exit_unreaped(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR) {
  }
}

struct RecoveryTally {
  int passes = 0;
  std::map<int, int> exits;  // exit status -> passes
  std::size_t committed_branches = 0, rolled_back_branches = 0, already_finished = 0;
  std::set<std::string> committed_gtrids, rolled_back_gtrids;
  std::vector<std::string> errors;

  void add(const ExitStatus& st, const std::string& out, const std::string& err) {
    ++passes;
    ++exits[st.code];
    json j = json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      errors.push_back("unreadable recover output (exit " + std::to_string(st.code) + "): " + out + err);
      return;
    }
    for (const auto& b : j.value("branches", json::array())) {
      std::string action = b.value("action", ""), gtrid = b.value("gtrid", "");
      if (action == "committed") ++committed_branches, committed_gtrids.insert(gtrid);
      if (action == "rolled_back") ++rolled_back_branches, rolled_back_gtrids.insert(gtrid);
      if (action == "already_finished") ++already_finished;
      if (action == "left_dirty_write") errors.push_back("dirty write: " + b.dump());
    }
    for (const auto& e : j.value("errors", json::array())) errors.push_back(e.get<std::string>());
  }
};

class SoakTest : public ::testing::TestWithParam<Store> {
 protected:
  void SetUp() override {
    std::random_device rd;
    id_ = "soak" + std::to_string(rd() % 1000000);
    dir_ = test::fresh_dir("soak");
    accounts_ = "acct_" + id_;
    transfers_ = "transfers_" + id_;
    for (int k = 0; k < kKinds; ++k) {
      ids_[k] = id_ + kKindSuffix[k];
      configs_[k] = dir_ / (ids_[k] + ".toml");
      log_dirs_[k] = dir_ / ("log-" + ids_[k]);
      write_config(configs_[k], Kind(k), /*with_log_dir=*/true);
      recover_configs_[k] = configs_[k];
      if (in_table()) {  // recovery from a process with no log_dir
        recover_configs_[k] = dir_ / (ids_[k] + "-recover.toml");
        write_config(recover_configs_[k], Kind(k), /*with_log_dir=*/false);
      }
    }
    for (auto* rc : {&my_cfg_, &pg_cfg_}) {  // AT mode's tables exist from here on
      ResourceConfig at = *rc;
      at.mode = BranchMode::at;
      (void)undo::make_at_resource_manager(at)->acquire()->recover();
    }
    if (ResourceManager* r = decisions_rm())  // and dtx_decision, for TearDown
      DecisionTable(r == my_.get() ? my_cfg_ : pg_cfg_).ensure_schema(*r->acquire());
    for (auto* rm : {my_.get(), pg_.get()}) {
      const char* engine = rm == my_.get() ? " ENGINE=InnoDB" : "";
      sql(*rm, "DROP TABLE IF EXISTS " + accounts_);
      sql(*rm, "DROP TABLE IF EXISTS " + transfers_);
      sql(*rm, "CREATE TABLE " + accounts_ + " (id INT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))" +
                   engine);
      sql(*rm, "CREATE TABLE " + transfers_ +
                   " (tid VARCHAR(64) PRIMARY KEY, my_account INT NOT NULL, pg_account INT NOT NULL, "
                   "amount BIGINT NOT NULL)" + engine);
      for (int i = 1; i <= 2 * kAccounts; ++i)
        sql(*rm, "INSERT INTO " + accounts_ + " VALUES (" + std::to_string(i) + ", " +
                     std::to_string(kInitialBalance) + ")");
    }
  }

  void TearDown() override {
    for (auto* rm : {my_.get(), pg_.get()}) {
      // Undo records and locks a failed run left (reported by the test), and
      // the decision rows (the ABORT rows a run leaves by design too).
      for (const auto& id : ids_) {
        sql(*rm, "DELETE FROM dtx_undo_log WHERE gtrid LIKE '" + id + ".%'");
        sql(*rm, "DELETE FROM dtx_global_lock WHERE gtrid LIKE '" + id + ".%'");
        if (rm == decisions_rm()) sql(*rm, "DELETE FROM dtx_decision WHERE gtrid LIKE '" + id + ".%'");
      }
      sql(*rm, "DROP TABLE IF EXISTS " + accounts_);
      sql(*rm, "DROP TABLE IF EXISTS " + transfers_);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  bool in_table() const { return GetParam() != Store::file; }
  // The resource keeping the decisions; null for the file log.
  ResourceManager* decisions_rm() const {
    return GetParam() == Store::postgres ? pg_.get() : GetParam() == Store::mysql ? my_.get() : nullptr;
  }
  // The failpoints this store's transfers stop at.
  std::vector<Mode> failpoints() const {
    std::vector<Mode> modes{Mode::after_prepare, Mode::after_decision, Mode::after_first_commit};
    if (in_table())
      modes.insert(modes.end(), {Mode::before_decision_commit, Mode::decision_commit_sent, Mode::after_decision_commit});
    return modes;
  }

  // A config of `kind`'s coordinator id: its resources in their modes, the
  // decisions in the store of the test's parameter.
  void write_config(const fs::path& file, Kind kind, bool with_log_dir) const {
    std::ofstream out(file);
    out << "[coordinator]\nid = \"" << ids_[int(kind)] << "\"\n";
    if (with_log_dir) out << "log_dir = \"" << log_dirs_[int(kind)].string() << "\"\n";
    if (const ResourceManager* r = decisions_rm()) out << "decisions = \"" << r->name() << "\"\n";
    for (const auto* rc : {&my_cfg_, &pg_cfg_}) {
      const bool at = rc == &my_cfg_ ? my_at(kind) : pg_at(kind);
      out << "\n[resources." << rc->name << "]\ntype = \""
          << (rc->type == ResourceType::mysql ? "mysql" : "postgres") << "\"\nhost = \"" << rc->host
          << "\"\nport = " << rc->port << "\nuser = \"" << rc->user << "\"\npassword = \"" << rc->password
          << "\"\ndatabase = \"" << rc->database << "\"\npool_size = 2\n"
          << (at ? "mode = \"at\"\nlock_wait_timeout_ms = 5000\n" : "");
    }
  }

  static Result sql(ResourceManager& rm, const std::string& statement) { return rm.acquire()->execute(statement, {}); }
  bool is_ours(const std::string& gtrid) const {
    for (const auto& id : ids_)
      if (gtrid.starts_with(id + ".")) return true;
    return false;
  }
  std::vector<std::string> ours_prepared(ResourceManager& rm) {
    std::vector<std::string> ours;
    for (const auto& p : rm.acquire()->recover())
      if (p.is_dtx && is_ours(p.xid.gtrid)) ours.push_back(p.raw);
    return ours;
  }
  // AT leftovers of our coordinator ids: undo records, rollback markers and
  // global locks, as "table gtrid branch [kind]".
  std::vector<std::string> at_leftovers(ResourceManager& rm) {
    std::vector<std::string> out;
    for (const Row& r : sql(rm, "SELECT gtrid, branch, kind FROM dtx_undo_log WHERE gtrid LIKE '" + id_ + "_.%'"))
      if (is_ours(r.text(0)))
        out.push_back("dtx_undo_log " + r.text(0) + " " + r.text(1) + (r.text(2) == "0" ? " record" : " marker"));
    for (const Row& r : sql(rm, "SELECT gtrid, branch, row_key FROM dtx_global_lock WHERE gtrid LIKE '" + id_ + "_.%'"))
      if (is_ours(r.text(0))) out.push_back("dtx_global_lock " + r.text(0) + " " + r.text(1) + " " + r.text(2));
    return out;
  }
  std::int64_t sum(ResourceManager& rm) {
    return sql(rm, "SELECT COALESCE(SUM(balance), 0) FROM " + accounts_)[0].as_int64(0);
  }
  std::map<int, std::int64_t> balances(ResourceManager& rm) {
    std::map<int, std::int64_t> b;
    for (const Row& r : sql(rm, "SELECT id, balance FROM " + accounts_)) b[int(r.as_int64(0))] = r.as_int64(1);
    return b;
  }
  std::set<std::string> markers(ResourceManager& rm) {
    std::set<std::string> tids;
    for (const Row& r : sql(rm, "SELECT tid FROM " + transfers_)) tids.insert(r.text(0));
    return tids;
  }

  // One transfer of `kind`: `amount` (either sign) onto MariaDB's account
  // `my_account`, taken from PostgreSQL's `pg_account`, with a marker row on
  // both. MariaDB first. A lock wait behind a killed child's prepared XA
  // branch ends after 5 s (SET in an XA branch; AT mode refuses SET, its
  // resources have lock_wait_timeout_ms = 5000 for global locks).
  std::vector<std::string> transfer_args(Kind kind, const std::string& tid, int my_account, int pg_account,
                                         std::int64_t amount) const {
    std::string marker = "INSERT INTO " + transfers_ + " VALUES ('" + tid + "', " + std::to_string(my_account) +
                         ", " + std::to_string(pg_account) + ", " + std::to_string(amount) + ")";
    auto move = [&](int account, std::int64_t delta) {
      return "UPDATE " + accounts_ + " SET balance = balance + (" + std::to_string(delta) + ") WHERE id = " +
             std::to_string(account);
    };
    std::vector<std::string> args{"exec", "--config", configs_[int(kind)].string(), "--timeout-ms", "10000"};
    if (!my_at(kind)) args.push_back("my=SET SESSION innodb_lock_wait_timeout = 5");
    args.push_back("my=" + move(my_account, amount));
    args.push_back("my=" + marker);
    if (!pg_at(kind)) args.push_back("pg=SET LOCAL lock_timeout = '5s'");
    args.push_back("pg=" + move(pg_account, -amount));
    args.push_back("pg=" + marker);
    return args;
  }

  void worker(int index, Clock::time_point deadline, Slot& slot, std::vector<Attempt>& attempts) {
    std::mt19937_64 rng(std::random_device{}() ^ (std::uint64_t(index) << 32));
    std::uniform_int_distribution<int> account(1, kAccounts), percent(0, 99);
    std::uniform_int_distribution<std::int64_t> amount(1, kMaxAmount);
    // A random kill lands anywhere in a process's life: from its start to a
    // little past how long a plain transfer has been taking (at least 30 ms).
    double plain_ms = 30;
    const std::vector<Mode> stops = failpoints();  // 24% of the transfers, evenly
    for (int n = 0; Clock::now() < deadline; ++n) {
      Attempt a;
      a.tid = id_ + "-" + std::to_string(index) + "-" + std::to_string(n);
      const int third = percent(rng) % 3;
      a.kind = third == 0 ? Kind::xa : third == 1 ? Kind::at : percent(rng) < 50 ? Kind::my_at_pg_xa : Kind::my_xa_pg_at;
      // XA branches use accounts 1-10 of their database, AT branches 11-20.
      const int my_account = account(rng) + (my_at(a.kind) ? kAccounts : 0);
      const int pg_account = account(rng) + (pg_at(a.kind) ? kAccounts : 0);
      const int p = percent(rng);
      a.mode = p < 60 ? Mode::plain : p < 84 ? stops[std::size_t(p - 60) * stops.size() / 24] : Mode::random_kill;
      std::map<std::string, std::string> env;
      if (a.mode != Mode::plain && a.mode != Mode::random_kill) env["DTX_FAILPOINT"] = kModeNames[int(a.mode)];
      std::int64_t delta = amount(rng) * (percent(rng) < 50 ? 1 : -1);
      Child child(test::dtx_binary(), transfer_args(a.kind, a.tid, my_account, pg_account, delta), env, dir_,
                  "worker" + std::to_string(index));
      {
        std::lock_guard lock(slot.mu);
        slot.pid = child.pid();
        slot.limit = Clock::now() + kChildLimit;
        slot.fired = false;
      }
      const auto launched = Clock::now();
      if (a.mode == Mode::random_kill) {
        a.kill_after_ms = std::uniform_int_distribution<int>(0, std::max(30, int(plain_ms * 1.2)))(rng);
        std::this_thread::sleep_for(std::chrono::milliseconds(a.kill_after_ms));
        child.kill(SIGKILL);
      }
      wait_for_exit_unreaped(child.pid());
      {
        std::lock_guard lock(slot.mu);
        a.overdue = slot.fired;
        slot.pid = 0;
      }
      a.status = child.wait();
      if (a.mode == Mode::plain && a.status.code == 0)
        plain_ms = 0.8 * plain_ms + 0.2 * std::chrono::duration<double, std::milli>(Clock::now() - launched).count();
      bool expected_exit = a.status.code == 0 || a.status.code == 1 || a.status.code == 3 ||
                           a.status.killed_by(SIGKILL);
      if (!expected_exit || a.status.code != 0 || a.overdue) a.err = child.err();
      attempts.push_back(std::move(a));
    }
  }

  void watchdog(std::vector<Slot>& slots, const std::atomic<bool>& done) {
    while (!done) {
      for (auto& s : slots) {
        std::lock_guard lock(s.mu);
        if (s.pid > 0 && !s.fired && Clock::now() > s.limit) {
          ::kill(s.pid, SIGKILL);
          s.fired = true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // One `dtx recover` pass per kind's config; the worst exit status.
  ExitStatus recovery_pass(std::array<RecoveryTally, kKinds>& tallies) {
    ExitStatus worst{0, 0};
    for (int k = 0; k < kKinds; ++k) {
      Child c(test::dtx_binary(), {"recover", "--json", "--config", recover_configs_[k].string()}, {}, dir_,
              "recover");
      ExitStatus st = c.wait();
      tallies[k].add(st, c.out(), c.err());
      if (st.code != 0 && worst.code == 0) worst = st;
    }
    return worst;
  }

  std::string id_, accounts_, transfers_;
  std::array<std::string, kKinds> ids_;  // coordinator ids, by kind
  std::array<fs::path, kKinds> configs_, recover_configs_, log_dirs_;
  fs::path dir_;
  ResourceConfig my_cfg_ = test::mysql_resource("my"), pg_cfg_ = test::postgres_resource("pg");
  std::unique_ptr<ResourceManager> my_ = make_resource_manager(my_cfg_), pg_ = make_resource_manager(pg_cfg_);
};

TEST_P(SoakTest, RandomTransfersFailpointsAndKillsKeepBothDatabasesConsistent) {
  const int seconds = std::stoi(test::env_or("DTX_SOAK_SECONDS", "60")) / (in_table() ? 3 : 1);
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::seconds(seconds);

  std::vector<Slot> slots(kWorkers);
  std::vector<std::vector<Attempt>> per_worker(kWorkers);
  std::atomic<bool> workers_done{false}, stop_recovery{false};
  std::array<RecoveryTally, kKinds> during;
  std::thread recovery([&] {
    while (!stop_recovery) {
      recovery_pass(during);
      std::this_thread::sleep_for(kRecoveryPacing);  // pacing between passes, not synchronisation
    }
  });
  std::thread dog([&] { watchdog(slots, workers_done); });
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w)
    workers.emplace_back([&, w] { worker(w, deadline, slots[w], per_worker[w]); });
  for (auto& t : workers) t.join();
  workers_done = true;
  dog.join();
  stop_recovery = true;
  recovery.join();
  const auto launched_for = Clock::now() - started;

  // Every process is gone: recovery must now settle everything.
  std::array<RecoveryTally, kKinds> final_passes;
  ExitStatus last;
  for (int pass = 0; pass < kFinalPasses; ++pass) {
    last = recovery_pass(final_passes);
    if (last.code == 0) break;
    std::this_thread::sleep_for(kRecoveryPacing);
  }
  EXPECT_EQ(last.code, 0) << "recovery did not settle within " << kFinalPasses << " passes";

  // Outcomes, in total and by kind.
  struct Counts {
    std::size_t attempted = 0, committed = 0, failed = 0, in_doubt = 0, overdue = 0, other = 0;
    std::size_t random_committed = 0, markers = 0;
    std::map<Mode, std::size_t> killed;
  };
  Counts all;
  std::array<Counts, kKinds> by_kind;
  std::vector<Attempt> attempts;
  for (auto& v : per_worker) attempts.insert(attempts.end(), v.begin(), v.end());
  std::map<std::string, std::size_t> failed_why;
  std::string other_failure;
  for (const auto& a : attempts) {
    for (Counts* c : {&all, &by_kind[int(a.kind)]}) {
      ++c->attempted;
      if (a.overdue) ++c->overdue;
      else if (a.status.code == 0) ++c->committed;
      else if (a.status.code == 1) ++c->failed;
      else if (a.status.code == 3) ++c->in_doubt;
      else if (a.status.killed_by(SIGKILL)) ++c->killed[a.mode];
      else ++c->other;
    }
    if (a.overdue) continue;
    if (a.status.code == 1) {
      auto has = [&](const char* what) { return a.err.find(what) != std::string::npos; };
      if (has("CONSTRAINT") || has("constraint")) ++failed_why["balance below 0"];
      else if (has("1205") || has("55P03") || has("lock")) ++failed_why["lock wait"];
      else if (has("1213") || has("40001") || has("40P01") || has("eadlock")) ++failed_why["deadlock"];
      else if (has("timeout") || has("timed out")) ++failed_why["timeout"];
      else if (++failed_why["other"] == 1) other_failure = a.err;
    } else if (a.status.code != 0 && a.status.code != 3 && !a.status.killed_by(SIGKILL)) {
      ADD_FAILURE() << a.tid << " (" << kKindNames[int(a.kind)] << "): unexpected exit " << a.status.code
                    << " signal " << a.status.signal << "\n" << a.err;
    }
  }

  // The databases.
  auto my_markers = markers(*my_), pg_markers = markers(*pg_);
  EXPECT_EQ(my_markers, pg_markers) << "a transfer is on one database only";
  for (const auto& tid : my_markers)
    if (!pg_markers.count(tid)) ADD_FAILURE() << tid << " committed on MariaDB only";
  for (const auto& tid : pg_markers)
    if (!my_markers.count(tid)) ADD_FAILURE() << tid << " committed on PostgreSQL only";
  int max_kill_ms = 0;
  for (const auto& a : attempts) {
    Expect e = expectation(a);
    bool there = my_markers.count(a.tid) > 0;
    by_kind[int(a.kind)].markers += there;
    all.markers += there;
    if (a.mode == Mode::random_kill && a.status.killed_by(SIGKILL)) {
      all.random_committed += there;
      by_kind[int(a.kind)].random_committed += there;
      max_kill_ms = std::max(max_kill_ms, a.kill_after_ms);
    }
    if (e == Expect::committed && !there)
      ADD_FAILURE() << a.tid << " (" << kKindNames[int(a.kind)] << ", " << kModeNames[int(a.mode)] << ", exit "
                    << a.status.code << ", signal " << a.status.signal << ") should be committed but is not\n"
                    << a.err;
    if (e == Expect::absent && there)
      ADD_FAILURE() << a.tid << " (" << kKindNames[int(a.kind)] << ", " << kModeNames[int(a.mode)] << ", exit "
                    << a.status.code << ", signal " << a.status.signal << ") should not be committed but is\n"
                    << a.err;
  }

  const std::int64_t total = sum(*my_) + sum(*pg_);
  EXPECT_EQ(total, 2 * 2 * kAccounts * kInitialBalance) << "money created or lost";
  std::map<int, std::int64_t> my_expected, pg_expected;
  for (int i = 1; i <= 2 * kAccounts; ++i) my_expected[i] = pg_expected[i] = kInitialBalance;
  for (const Row& r : sql(*my_, "SELECT my_account, pg_account, amount FROM " + transfers_)) {
    my_expected[int(r.as_int64(0))] += r.as_int64(2);
    pg_expected[int(r.as_int64(1))] -= r.as_int64(2);
  }
  EXPECT_EQ(balances(*my_), my_expected) << "MariaDB balances do not match the committed transfers";
  EXPECT_EQ(balances(*pg_), pg_expected) << "PostgreSQL balances do not match the committed transfers";

  auto my_left = ours_prepared(*my_), pg_left = ours_prepared(*pg_);
  EXPECT_TRUE(my_left.empty()) << my_left.size() << " left prepared on MariaDB, first " << my_left.front();
  EXPECT_TRUE(pg_left.empty()) << pg_left.size() << " left prepared on PostgreSQL, first " << pg_left.front();
  auto my_at_left = at_leftovers(*my_), pg_at_left = at_leftovers(*pg_);
  EXPECT_TRUE(my_at_left.empty()) << my_at_left.size() << " AT rows left on MariaDB: "
                                  << ::testing::PrintToString(my_at_left);
  EXPECT_TRUE(pg_at_left.empty()) << pg_at_left.size() << " AT rows left on PostgreSQL: "
                                  << ::testing::PrintToString(pg_at_left);
  RecoveryTally during_all, final_all;  // errors, passes and what was settled, over the kinds
  for (int k = 0; k < kKinds; ++k)
    for (auto [from, into] : {std::pair{&during[k], &during_all}, std::pair{&final_passes[k], &final_all}}) {
      into->passes += from->passes;
      for (const auto& [code, n] : from->exits) into->exits[code] += n;
      into->committed_branches += from->committed_branches;
      into->rolled_back_branches += from->rolled_back_branches;
      into->already_finished += from->already_finished;
      into->committed_gtrids.insert(from->committed_gtrids.begin(), from->committed_gtrids.end());
      into->rolled_back_gtrids.insert(from->rolled_back_gtrids.begin(), from->rolled_back_gtrids.end());
      into->errors.insert(into->errors.end(), from->errors.begin(), from->errors.end());
    }
  EXPECT_TRUE(during_all.errors.empty()) << during_all.errors.size() << " recovery errors, first: "
                                         << during_all.errors.front();
  EXPECT_TRUE(final_all.errors.empty()) << "final recovery: " << final_all.errors.front();
  std::size_t log_left = 0;
  std::error_code ec;
  for (const auto& log_dir : log_dirs_)
    for (const auto& entry : fs::directory_iterator(log_dir, ec))
      if (entry.path().filename() != "heuristics.log") ++log_left;
  EXPECT_EQ(log_left, 0u) << "decision-log files left after everything settled";

  // With decisions in a table: every COMMIT row is settled (gone), and the
  // ABORT rows left are recovery's fences of transactions it rolled back.
  std::size_t abort_rows = 0;
  if (ResourceManager* r = decisions_rm()) {
    std::vector<std::string> commit_rows, stray_aborts;
    for (const Row& row : sql(*r, "SELECT gtrid, outcome FROM dtx_decision WHERE gtrid LIKE '" + id_ + "_.%'")) {
      const std::string gtrid = row.text(0);
      if (!is_ours(gtrid)) continue;
      if (row.as_int64(1) == int(TableOutcome::commit)) {
        commit_rows.push_back(gtrid);
        continue;
      }
      ++abort_rows;
      const bool rolled_back = during_all.rolled_back_gtrids.count(gtrid) || final_all.rolled_back_gtrids.count(gtrid);
      const bool committed = during_all.committed_gtrids.count(gtrid) || final_all.committed_gtrids.count(gtrid);
      if (!rolled_back || committed) stray_aborts.push_back(gtrid);
    }
    EXPECT_TRUE(commit_rows.empty()) << commit_rows.size() << " COMMIT rows of settled transactions left in "
                                     << r->name() << "'s dtx_decision: " << ::testing::PrintToString(commit_rows);
    EXPECT_TRUE(stray_aborts.empty()) << stray_aborts.size() << " ABORT rows of gtrids recovery did not roll back: "
                                      << ::testing::PrintToString(stray_aborts);
  }

  if (!other_failure.empty()) std::cout << "first other failure:\n" << other_failure;
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::cout << "soak " << id_ << ", decisions in " << kStoreNames[int(GetParam())] << ": " << seconds
            << " s requested, launched for " << secs(launched_for)
            << " s, total " << secs(Clock::now() - started) << " s, " << kWorkers << " workers\n"
            << "  transfers attempted:     " << attempts.size() << "\n"
            << "  committed (exit 0):      " << all.committed << "\n"
            << "  failed cleanly (exit 1): " << all.failed;
  const char* sep = " (";
  for (const auto& [why, n] : failed_why) std::cout << std::exchange(sep, ", ") << why << ": " << n;
  std::cout << (failed_why.empty() ? "" : ")") << "\n"
            << "  in doubt (exit 3):       " << all.in_doubt << "\n"
            << "  killed by failpoint:    ";
  for (Mode m : failpoints()) std::cout << " " << kModeNames[int(m)] << " " << all.killed[m];
  std::cout << "\n"
            << "  killed at random:        " << all.killed[Mode::random_kill] << " (0-" << max_kill_ms
            << " ms after start), " << all.random_committed << " of them committed all the same\n"
            << "  overdue (watchdog):      " << all.overdue << ", other exits " << all.other << "\n"
            << "  recovery passes:         " << during_all.passes << " during the run, " << final_all.passes
            << " at the end, over " << kKinds << " configs (exit codes during:";
  for (const auto& [code, n] : during_all.exits) std::cout << " " << code << "x" << n;
  std::cout << ")\n"
            << "  settled by recovery:     "
            << during_all.committed_gtrids.size() + final_all.committed_gtrids.size() << " transactions committed ("
            << during_all.committed_branches + final_all.committed_branches << " branches), "
            << during_all.rolled_back_gtrids.size() + final_all.rolled_back_gtrids.size() << " rolled back ("
            << during_all.rolled_back_branches + final_all.rolled_back_branches << " branches), "
            << during_all.already_finished + final_all.already_finished << " already finished\n"
            << "  decision rows left:      " << (in_table() ? std::to_string(abort_rows) + " ABORT (kept by design)"
                                                          : std::string("none (file log)"))
            << "\n"
            << "  markers on both:         " << my_markers.size() << " MariaDB, " << pg_markers.size()
            << " PostgreSQL\n"
            << "  final totals:            MariaDB " << sum(*my_) << ", PostgreSQL " << sum(*pg_) << ", sum "
            << total << " (expected " << 2 * 2 * kAccounts * kInitialBalance << ")\n"
            << "  by kind (attempted / exit 0 / exit 1 / exit 3 / killed at a failpoint, at random / committed at "
               "the end / settled by recovery: committed, rolled back):\n";
  for (int k = 0; k < kKinds; ++k) {
    Counts& c = by_kind[k];
    std::size_t stopped = 0;
    for (Mode m : failpoints()) stopped += c.killed[m];
    std::cout << "    " << std::left << std::setw(22) << kKindNames[k] << std::right << c.attempted << " / "
              << c.committed << " / " << c.failed << " / " << c.in_doubt << " / " << stopped << ", "
              << c.killed[Mode::random_kill] << " / " << c.markers << " / "
              << during[k].committed_gtrids.size() + final_passes[k].committed_gtrids.size() << ", "
              << during[k].rolled_back_gtrids.size() + final_passes[k].rolled_back_gtrids.size() << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(DecisionStores, SoakTest, ::testing::Values(Store::file, Store::postgres, Store::mysql),
                         [](const ::testing::TestParamInfo<Store>& p) { return kStoreNames[int(p.param)]; });

}  // namespace
}  // namespace dtx
