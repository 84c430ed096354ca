// dtx bench — the coordinator's throughput beside hand-written XA and
// non-atomic writes, measured in one process in alternating rounds (these
// machines are shared and noisy, so only ratios measured together mean much).
//
//   dtx bench --config F --clients N --duration S [--json]
//   dtx bench --null-rm [--config F] --clients N --duration S [--json]
//   --variants dtx,raw_xa   only these (for profiling one path; ratios need both)
//   --decisions R           keep dtx's commit decisions in resource R's
//                           dtx_decision table ([coordinator] decisions);
//                           --decisions file: in the file log; absent: as
//                           the config says
//
// Workload: each global transaction updates one random row of
// dtx_bench_accounts (10,000 rows, created by the tool) in every configured
// resource's database, resources in config order (so no cycle of lock waits).
//   non_atomic  an autocommit UPDATE on each resource
//   raw_xa      XA written by hand, as a careful program without a coordinator
//               would: its own connections (Connector/C++ and libpqxx, not
//               dtx's drivers), a prepared UPDATE, the same round trips as
//               dtx's drivers, branches one after another, no log (RawBranch)
//   dtx         the public C++ API (parallel phases, decision log, fdatasync;
//               or, with decisions in R, R's branch committed in one phase
//               with the COMMIT row, no PREPARE on R and no fdatasync)
//   at          the same API with every resource switched to AT mode
//               (mode = "at": local commit in phase 1 with undo record and
//               global locks, forgotten off the caller's path in phase 2)
// --rows N picks the row among the first N (default all 10,000): a small N
// is a hot-row workload where lock contention decides.
// --duration is per variant, split into rounds of at most 0.5 s that
// alternate between the variants; besides the ratio of the totals, the median
// of the per-round ratios (each dtx round against the raw_xa round next to
// it) is reported, which a burst of load from a neighbour moves less; so are
// the decision log's fdatasyncs per transaction.
//
// Decisions in a database. raw_xa is the same in every setting: a careful
// program's XA, which has no decision record at all. With decisions in R the
// bench also watches that R's table does not grow: the rows of its own
// incarnations are counted after every dtx and at round (the forget thread's
// backlog, `decision_rows_peak`) and once more after the forget threads are
// drained (`decision_rows_left`, which must be 0).
//
// --null-rm runs `dtx` against resource managers that do nothing (the
// coordinator's own ceiling) and, in alternating rounds, `log_ceiling`: the
// same number of clients calling log_commit + log_end on a DecisionLog of its
// own in the same log_dir, which is what bench/log_bench.cc measures. Its
// rate is the disk's group-commit ceiling in this run; dtx / log_ceiling says
// how close the coordinator comes to it, which travels between machines whose
// fdatasync latency differs where an absolute tps does not. Both are about
// the file log: with decisions in a resource (the config's or --decisions)
// --null-rm sets them aside and says so (a decision table on a resource
// manager that does nothing would measure nothing).
//
// The table. The tool drops and recreates dtx_bench_accounts, so it marks the
// table it creates (a table comment, kOwnerMark) and refuses, before touching
// any database, when a resource already has a dtx_bench_accounts without the
// mark: it never drops a table it did not create (exit 2, naming the resource).
//
// The bench writes SQL itself: the raw_xa baseline is by definition
// hand-written, and so is the DDL of its scratch table. Nothing of the
// library does this outside drivers/ (docs/drivers.md).
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/transaction_id.h"
#include "coordinator/coordinator_core.h"
#include "decision-log/decision_log.h"
#include "drivers/null_driver.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "tools/commands.h"

namespace dtx::cli {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRows = 10'000;
constexpr double kRoundSeconds = 0.5;
constexpr const char* kTable = "dtx_bench_accounts";
constexpr const char* kUpdate = "UPDATE dtx_bench_accounts SET balance = balance + 1 WHERE id = ?";
// The comment on the table the bench creates: only a table carrying it is
// ever dropped.
constexpr const char* kOwnerMark = "created by dtx bench, which drops and recreates it on every run";

struct BenchOptions {
  std::string config;
  int clients = 8;
  double duration_s = 10;
  bool json = false;
  bool null_rm = false;
  std::vector<std::string> variants{"non_atomic", "raw_xa", "dtx", "at"};
  int rows = kRows;  // rows picked from: 1..rows
  std::string decisions;  // --decisions: a resource, "file", or empty (as configured)
};

struct Stats {
  std::uint64_t count = 0, errors = 0;
  double seconds = 0;
  std::vector<double> latency_ms;
  std::vector<double> round_tps;  // one per round, in order
  std::uint64_t log_syncs = 0;    // decision-log fdatasyncs during this variant's rounds
  std::string first_error;

  double tps() const { return seconds > 0 ? count / seconds : 0; }
  double per_log_sync() const { return log_syncs ? static_cast<double>(count) / log_syncs : 0; }
  double percentile(double p) {
    if (latency_ms.empty()) return 0;
    std::sort(latency_ms.begin(), latency_ms.end());
    return latency_ms[std::min(latency_ms.size() - 1, static_cast<std::size_t>(p * latency_ms.size()))];
  }
};

// One client's way of running one transaction of a variant.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual void once(int row) = 0;
};

using WorkerFactory = std::function<std::unique_ptr<Worker>(int client)>;

class NonAtomicWorker : public Worker {
 public:
  explicit NonAtomicWorker(const std::vector<ResourceManager*>& rms) {
    for (auto* rm : rms) sessions_.push_back(rm->acquire());
  }
  void once(int row) override {
    const Param p[] = {row};
    for (auto& s : sessions_) s->execute(kUpdate, p);
  }

 private:
  std::vector<SessionLease> sessions_;
};

// ---- raw_xa: one branch of hand-written XA on a connection of its own ----
//
// The statements, in the round trips dtx's drivers use (mysql_driver.cc and
// postgres_driver.cc; one phase when there is one resource, as dtx does):
//                MariaDB / MySQL                        PostgreSQL
//   start        XA START 'x'                           BEGIN
//   update       the prepared UPDATE                    the prepared UPDATE
//   prepare      XA END 'x'; XA PREPARE 'x'             PREPARE TRANSACTION 'x'
//   commit       XA COMMIT 'x'                          COMMIT PREPARED 'x'
//   one phase    XA END 'x'; XA COMMIT 'x' ONE PHASE    COMMIT
//                (MariaDB: XA END 'x'; XA PREPARE 'x'; XA COMMIT 'x', since
//                it can lose an acknowledged ONE PHASE commit in a crash)
// The MariaDB groups go as one multi-statement query (CLIENT_MULTI_STATEMENTS).
class RawBranch {
 public:
  virtual ~RawBranch() = default;
  virtual void start(const std::string& id) = 0;
  virtual void update(int row) = 0;
  virtual void prepare(const std::string& id) = 0;
  virtual void commit(const std::string& id) = 0;
  virtual void commit_one_phase(const std::string& id) = 0;
  // After a failure anywhere: whatever is left of the branch, errors ignored.
  virtual void rollback(const std::string& id) noexcept = 0;
};

// Connector/C++, taken once and registered with every thread that uses it.
sql::Driver* mysql_client() {
  static sql::Driver* const driver = sql::mysql::get_mysql_driver_instance();
  struct ThreadRegistration {
    ThreadRegistration() { driver->threadInit(); }
    ~ThreadRegistration() { driver->threadEnd(); }
  };
  thread_local ThreadRegistration registration;
  return driver;
}

class RawMysqlBranch final : public RawBranch {
 public:
  explicit RawMysqlBranch(const ResourceConfig& c) {
    sql::ConnectOptionsMap options;
    options["hostName"] = sql::SQLString("tcp://" + c.host + ":" + std::to_string(c.port));
    options["userName"] = sql::SQLString(c.user);
    options["password"] = sql::SQLString(c.password);
    options["schema"] = sql::SQLString(c.database);
    options["OPT_CONNECT_TIMEOUT"] = c.connect_timeout_s;
    options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    options["CLIENT_MULTI_STATEMENTS"] = true;
    conn_.reset(mysql_client()->connect(options));
    statement_.reset(conn_->createStatement());
    update_.reset(conn_->prepareStatement(kUpdate));
    std::unique_ptr<sql::ResultSet> version(statement_->executeQuery("SELECT VERSION()"));
    mariadb_ = version->next() && version->getString(1).asStdString().find("MariaDB") != std::string::npos;
  }
  ~RawMysqlBranch() override { mysql_client(); }
  void start(const std::string& id) override { run("XA START '" + id + "'"); }
  void update(int row) override {
    mysql_client();
    update_->setInt(1, row);
    update_->executeUpdate();
  }
  void prepare(const std::string& id) override { run("XA END '" + id + "'; XA PREPARE '" + id + "'", 2); }
  void commit(const std::string& id) override { run("XA COMMIT '" + id + "'"); }
  void commit_one_phase(const std::string& id) override {
    if (mariadb_)
      run("XA END '" + id + "'; XA PREPARE '" + id + "'; XA COMMIT '" + id + "'", 3);
    else
      run("XA END '" + id + "'; XA COMMIT '" + id + "' ONE PHASE", 2);
  }
  void rollback(const std::string& id) noexcept override {
    for (const char* verb : {"XA END '", "XA ROLLBACK '"}) {
      try {
        run(verb + id + "'");
      } catch (const std::exception&) {  // already ended, prepared, or gone
      }
    }
  }

 private:
  // The statements of `sql`, each with its result read: the server stops at
  // the first that fails, whose error the read of its result throws.
  void run(const std::string& sql, int statements = 1) {
    mysql_client();
    statement_->execute(sql);
    for (int i = 1; i < statements; ++i) statement_->getMoreResults();
  }
  std::unique_ptr<sql::Connection> conn_;  // declared first: outlives the statements
  std::unique_ptr<sql::Statement> statement_;
  std::unique_ptr<sql::PreparedStatement> update_;
  bool mariadb_ = false;
};

std::string postgres_conninfo(const ResourceConfig& c) {
  auto value = [](const std::string& v) {
    std::string out = "'";
    for (char ch : v) out += ch == '\'' || ch == '\\' ? std::string{'\\', ch} : std::string{ch};
    return out + "'";
  };
  return "host=" + value(c.host) + " port=" + std::to_string(c.port) + " user=" + value(c.user) +
         " password=" + value(c.password) + " dbname=" + value(c.database) +
         " application_name=dtx_bench_raw_xa";
}

class RawPostgresBranch final : public RawBranch {
 public:
  explicit RawPostgresBranch(const ResourceConfig& c) : conn_(postgres_conninfo(c)), tx_(conn_) {
    conn_.prepare("update", "UPDATE dtx_bench_accounts SET balance = balance + 1 WHERE id = $1");
  }
  void start(const std::string&) override { tx_.exec("BEGIN"); }
  void update(int row) override { tx_.exec_prepared("update", row); }
  void prepare(const std::string& id) override { tx_.exec("PREPARE TRANSACTION " + tx_.quote(id)); }
  void commit(const std::string& id) override { tx_.exec("COMMIT PREPARED " + tx_.quote(id)); }
  void commit_one_phase(const std::string&) override { tx_.exec("COMMIT"); }
  void rollback(const std::string& id) noexcept override {
    try {
      tx_.exec("ROLLBACK");
    } catch (const std::exception&) {  // no block open
    }
    try {
      tx_.exec("ROLLBACK PREPARED " + tx_.quote(id));
    } catch (const std::exception&) {  // nothing prepared
    }
  }

 private:
  pqxx::connection conn_;  // declared first: outlives tx_
  pqxx::nontransaction tx_;
};

// One client's raw_xa connections, one per resource, kept across rounds.
struct RawClient {
  explicit RawClient(const std::vector<ResourceManager*>& rms) {
    for (auto* rm : rms) {
      if (rm->config().type == ResourceType::mysql)
        branches.push_back(std::make_unique<RawMysqlBranch>(rm->config()));
      else
        branches.push_back(std::make_unique<RawPostgresBranch>(rm->config()));
    }
  }
  std::vector<std::unique_ptr<RawBranch>> branches;
  std::uint64_t seq = 0;
};

class RawXaWorker : public Worker {
 public:
  RawXaWorker(RawClient& client, int index) : client_(client), index_(index) {}
  void once(int row) override {
    auto& branches = client_.branches;
    const std::string id = "rawxa-" + std::to_string(::getpid()) + "-" + std::to_string(index_) + "-" +
                           std::to_string(++client_.seq);
    try {
      for (auto& b : branches) {
        b->start(id);
        b->update(row);
      }
      if (branches.size() == 1) {
        branches.front()->commit_one_phase(id);
        return;
      }
      for (auto& b : branches) b->prepare(id);
      for (auto& b : branches) b->commit(id);
    } catch (...) {
      for (auto& b : branches) b->rollback(id);
      throw;
    }
  }

 private:
  RawClient& client_;
  int index_;
};

class DtxWorker : public Worker {
 public:
  DtxWorker(Coordinator& coord, std::vector<std::string> resources)
      : coord_(coord), resources_(std::move(resources)) {}
  void once(int row) override {
    const Param p[] = {row};
    Transaction tx = coord_.begin();
    for (const auto& r : resources_) tx.execute(r, kUpdate, p);
    tx.commit();
  }

 private:
  Coordinator& coord_;
  std::vector<std::string> resources_;
};

// The decision log alone, as a two-phase transaction uses it: a forced COMMIT
// record naming every branch, then its lazy END (bench/log_bench.cc's loop).
class DecisionLogWorker : public Worker {
 public:
  // Global ids are `prefix` and the next value of `seq`, shared by the clients.
  DecisionLogWorker(DecisionLog& log, const std::vector<BranchRef>& branches, const std::string& prefix,
                    std::atomic<std::uint64_t>& seq)
      : log_(log), branches_(branches), prefix_(prefix), seq_(seq) {}
  void once(int) override {
    const std::string gtrid = prefix_ + std::to_string(++seq_);
    log_.log_commit(gtrid, branches_);
    log_.log_end(gtrid);
  }

 private:
  DecisionLog& log_;
  const std::vector<BranchRef>& branches_;
  const std::string& prefix_;
  std::atomic<std::uint64_t>& seq_;
};

// Runs `clients` threads of `factory`'s workers for `seconds`, adding to `stats`.
void run_round(const WorkerFactory& factory, int clients, double seconds, int rows, Stats& stats) {
  std::vector<std::unique_ptr<Worker>> workers;
  for (int c = 0; c < clients; ++c) workers.push_back(factory(c));
  std::vector<Stats> per(clients);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start, stop;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      std::mt19937 rng(static_cast<unsigned>(c * 7919 + stats.count));
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      Stats& s = per[c];
      while (Clock::now() < stop) {
        auto t0 = Clock::now();
        try {
          workers[c]->once(1 + static_cast<int>(rng() % static_cast<unsigned>(rows)));
          ++s.count;
          s.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        } catch (const std::exception& e) {
          if (s.errors++ == 0) s.first_error = e.what();
        }
      }
    });
  start = Clock::now();
  stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const std::uint64_t count_before = stats.count;
  stats.seconds += elapsed;
  for (auto& s : per) {
    stats.count += s.count;
    stats.errors += s.errors;
    if (stats.first_error.empty()) stats.first_error = s.first_error;
    stats.latency_ms.insert(stats.latency_ms.end(), s.latency_ms.begin(), s.latency_ms.end());
  }
  stats.round_tps.push_back(elapsed > 0 ? (stats.count - count_before) / elapsed : 0);
}

// A resource holds a dtx_bench_accounts that the bench did not create.
struct NotOurTable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws NotOurTable if `rm`'s database has a dtx_bench_accounts without
// kOwnerMark (a view or table of the user's, or one of a dtx before the mark).
void check_table_is_ours(ResourceManager& rm) {
  const bool mysql = rm.config().type == ResourceType::mysql;
  Result r = rm.acquire()->execute(
      mysql ? "SELECT TABLE_COMMENT FROM information_schema.TABLES "
              "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'dtx_bench_accounts'"
            : "SELECT coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c "
              "WHERE c.oid = to_regclass('dtx_bench_accounts')",
      {});
  if (r.empty() || (!r[0].is_null(0) && r[0].text(0) == kOwnerMark)) return;
  throw NotOurTable("resource '" + rm.name() + "' (database " + rm.config().database + ") already has a table " +
                    kTable +
                    " that dtx bench did not create; dtx bench drops and recreates that table, so it "
                    "leaves this one alone and measures nothing. Point --config at a scratch database, "
                    "or drop or rename that table yourself if it is a leftover of an older dtx bench");
}

// Drops the bench's own table (check_table_is_ours first) and creates it anew, marked.
void create_table(ResourceManager& rm) {
  SessionLease s = rm.acquire();
  s->execute("DROP TABLE IF EXISTS dtx_bench_accounts", {});
  if (rm.config().type == ResourceType::mysql) {
    s->execute(std::string("CREATE TABLE dtx_bench_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) "
                           "ENGINE=InnoDB COMMENT='") + kOwnerMark + "'",
               {});
  } else {
    s->execute("CREATE TABLE dtx_bench_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)", {});
    s->execute(std::string("COMMENT ON TABLE dtx_bench_accounts IS '") + kOwnerMark + "'", {});
  }
  for (int first = 1; first <= kRows; first += 1000) {
    std::string sql = "INSERT INTO dtx_bench_accounts (id, balance) VALUES ";
    for (int id = first; id < first + 1000; ++id)  // generated numbers only
      sql += (id == first ? "(" : ",(") + std::to_string(id) + ",0)";
    s->execute(sql, {});
  }
}

// The rows of dtx_decision whose gtrid belongs to `incarnation` of `coordinator_id`.
std::uint64_t count_decision_rows(ResourceManager& rm, const std::string& coordinator_id,
                                  const std::string& incarnation) {
  // "<id>.<inc>." up to "<id>.<inc>/": the incarnation's gtrids as a key range ('/' follows '.').
  const std::string low = coordinator_id + "." + incarnation + ".";
  const std::string high = coordinator_id + "." + incarnation + "/";
  const Param range[] = {low, high};
  Result r = rm.acquire()->execute("SELECT count(*) FROM dtx_decision WHERE gtrid >= ? AND gtrid < ?", range);
  return r.empty() ? 0 : std::stoull(r.begin()->cell(0).value_or("0"));
}

int run_bench(const BenchOptions& o) {
  if (o.clients < 1 || o.duration_s <= 0) {
    std::cerr << "dtx bench: --clients and --duration must be positive\n";
    return kExitUsage;
  }
  if (!o.null_rm && o.config.empty()) {
    std::cerr << "dtx bench: --config is required (or --null-rm)\n";
    return kExitUsage;
  }
  Config config;
  std::optional<std::filesystem::path> temp_dir;
  try {
    if (!o.config.empty()) {
      config = load_config(o.config);
    } else {
      temp_dir = std::filesystem::temp_directory_path() / ("dtx-bench-" + std::to_string(::getpid()));
      config.coordinator.id = "bench";
      config.coordinator.log_dir = *temp_dir;
      for (const char* name : {"null1", "null2"}) config.resources[name] = ResourceConfig{.name = name};
    }
  } catch (const Error& e) {
    std::cerr << "dtx bench: " << e.what() << "\n";
    return kExitUsage;
  }
  if (o.decisions == "file") {
    config.coordinator.decisions.clear();
  } else if (!o.decisions.empty()) {
    if (!config.resources.count(o.decisions)) {
      std::cerr << "dtx bench: --decisions " << o.decisions << ": no such resource in " << o.config
                << " (give one of its resources, or `file` for the decision log)\n";
      return kExitUsage;
    }
    config.coordinator.decisions = o.decisions;
  }
  // The null-RM mode measures the file log (see the top): decisions in a
  // resource are set aside, in a temporary log_dir if the config has none.
  std::string decisions_set_aside;
  if (o.null_rm && !config.coordinator.decisions.empty()) {
    decisions_set_aside = config.coordinator.decisions;
    config.coordinator.decisions.clear();
    std::cerr << "dtx bench: --null-rm measures the file log only: decisions in resource " << decisions_set_aside
              << " set aside for this run\n";
  }
  if (config.coordinator.decisions.empty() && config.coordinator.log_dir.empty()) {
    if (!o.null_rm) {
      std::cerr << "dtx bench: the decisions go to the file log, but " << o.config
                << " sets no [coordinator] log_dir: set one, or give --decisions RESOURCE\n";
      return kExitUsage;
    }
    temp_dir = std::filesystem::temp_directory_path() / ("dtx-bench-" + std::to_string(::getpid()));
    config.coordinator.log_dir = *temp_dir;
  }
  // Where dtx's decisions go in this run: "file", or the resource and its type.
  const std::string decisions = config.coordinator.decisions.empty() ? "file" : config.coordinator.decisions;
  const std::string decisions_type =
      decisions == "file" ? "file"
                          : (config.resource(decisions).type == ResourceType::mysql ? "mysql" : "postgres");
  config.coordinator.recovery_interval_s = 0;  // no background passes inside the measurement
  std::vector<std::string> names;
  std::vector<BranchRef> log_branches;  // what the log_ceiling variant's records name
  for (const auto& [name, _] : config.resources) {
    names.push_back(name);
    log_branches.push_back({name, "b" + std::to_string(log_branches.size() + 1)});
  }

  std::map<std::string, Stats> results;
  std::uint64_t decision_rows_peak = 0, decision_rows_left = 0;
  try {
    detail::CoordinatorCore::ResourceFactory resource_factory;
    if (o.null_rm) resource_factory = make_null_resource_manager;
    auto core = std::make_shared<detail::CoordinatorCore>(config, resource_factory);
    Coordinator coord = detail::CoordinatorAccess::wrap(core);
    std::vector<ResourceManager*> rms;
    for (const auto& n : names) rms.push_back(&core->resource(n));
    if (!o.null_rm) {
      for (auto* rm : rms) check_table_is_ours(*rm);  // all before any is dropped
      for (auto* rm : rms) create_table(*rm);
    }

    auto wanted = [&](const char* name) {
      return std::find(o.variants.begin(), o.variants.end(), name) != o.variants.end();
    };
    struct Variant {
      std::string name;
      WorkerFactory factory;
      std::function<std::uint64_t()> syncs;  // its decision log's fdatasyncs so far, if it has one
    };
    std::vector<Variant> variants;
    std::vector<std::unique_ptr<RawClient>> raw_clients;
    std::unique_ptr<DecisionLog> ceiling_log;
    std::string ceiling_prefix;
    std::atomic<std::uint64_t> ceiling_seq{0};
    if (!o.null_rm && wanted("non_atomic"))
      variants.push_back({"non_atomic", [&](int) { return std::make_unique<NonAtomicWorker>(rms); }, {}});
    if (!o.null_rm && wanted("raw_xa")) {
      for (int c = 0; c < o.clients; ++c) raw_clients.push_back(std::make_unique<RawClient>(rms));
      variants.push_back(
          {"raw_xa", [&](int c) { return std::make_unique<RawXaWorker>(*raw_clients[c], c); }, {}});
    }
    // A decision log's fdatasyncs: only with the file log (core->log() is
    // not there when decisions are in a resource).
    auto syncs_of = [](const std::shared_ptr<detail::CoordinatorCore>& c) -> std::function<std::uint64_t()> {
      if (!c->has_file_log()) return {};
      return [c] { return c->log().sync_count(); };
    };
    if (o.null_rm || wanted("dtx"))
      variants.push_back({"dtx", [&](int) { return std::make_unique<DtxWorker>(coord, names); }, syncs_of(core)});
    // The same resources in AT mode, through a coordinator of their own.
    const bool run_at = !o.null_rm && wanted("at");
    Config at_config = config;
    for (auto& [name, rc] : at_config.resources) rc.mode = BranchMode::at;
    std::shared_ptr<detail::CoordinatorCore> at_core =
        run_at ? std::make_shared<detail::CoordinatorCore>(at_config) : core;
    Coordinator at_coord = detail::CoordinatorAccess::wrap(at_core);
    if (run_at)
      variants.push_back({"at", [&](int) { return std::make_unique<DtxWorker>(at_coord, names); },
                          syncs_of(at_core)});
    // With decisions in R: this run's rows in R's table (its incarnations').
    std::vector<std::shared_ptr<detail::CoordinatorCore>> cores{core};
    if (run_at) cores.push_back(at_core);
    auto decision_rows = [&] {
      std::uint64_t n = 0;
      for (const auto& c : cores)
        if (c->decision_resource())
          n += count_decision_rows(*c->decision_resource(), config.coordinator.id, c->incarnation());
      return n;
    };
    if (o.null_rm) {
      // A log of its own (another incarnation) in the coordinator's log_dir.
      const std::string incarnation = new_incarnation();
      ceiling_log = DecisionLog::open(config.coordinator.log_dir, config.coordinator.id, incarnation);
      ceiling_prefix = config.coordinator.id + "." + incarnation + ".";
      variants.push_back({"log_ceiling",
                          [&](int) {
                            return std::make_unique<DecisionLogWorker>(*ceiling_log, log_branches,
                                                                       ceiling_prefix, ceiling_seq);
                          },
                          [&] { return ceiling_log->sync_count(); }});
    }

    const double round_s = std::min(kRoundSeconds, o.duration_s);
    for (double done = 0; done < o.duration_s - 1e-9; done += round_s)
      for (auto& v : variants) {
        const std::uint64_t syncs_before = v.syncs ? v.syncs() : 0;
        run_round(v.factory, o.clients, std::min(round_s, o.duration_s - done), o.rows, results[v.name]);
        if (v.syncs) results[v.name].log_syncs += v.syncs() - syncs_before;
        if (core->decision_resource() && (v.name == "dtx" || v.name == "at"))
          decision_rows_peak = std::max(decision_rows_peak, decision_rows());
      }
    for (const auto& c : cores) c->drain_forgets();
    if (core->decision_resource()) decision_rows_left = decision_rows();
  } catch (const NotOurTable& e) {
    std::cerr << "dtx bench: " << e.what() << "\n";
    return kExitUsage;
  } catch (const Error& e) {
    std::cerr << "dtx bench: " << e.what() << "\n";
    if (temp_dir) std::filesystem::remove_all(*temp_dir);
    return kExitFailed;
  } catch (const std::exception& e) {  // a raw_xa connection that could not be opened
    std::cerr << "dtx bench: raw_xa: " << e.what() << "\n";
    if (temp_dir) std::filesystem::remove_all(*temp_dir);
    return kExitFailed;
  }
  if (temp_dir) std::filesystem::remove_all(*temp_dir);

  auto has = [&](const char* name) { return results.count(name) != 0; };
  auto ratio = [&](const char* a, const char* b) {
    return has(a) && has(b) && results[b].tps() > 0 ? results[a].tps() / results[b].tps() : 0.0;
  };
  // Median over rounds of a's round against b's round of the same index.
  auto round_ratio = [&](const char* a, const char* b) {
    if (!has(a) || !has(b)) return 0.0;
    const auto &ra = results[a].round_tps, &rb = results[b].round_tps;
    std::vector<double> r;
    for (std::size_t i = 0; i < std::min(ra.size(), rb.size()); ++i)
      if (rb[i] > 0) r.push_back(ra[i] / rb[i]);
    if (r.empty()) return 0.0;
    std::sort(r.begin(), r.end());
    return r.size() % 2 ? r[r.size() / 2] : (r[r.size() / 2 - 1] + r[r.size() / 2]) / 2;
  };
  // dtx against the variant it is compared with in this mode.
  const char* baseline = o.null_rm ? "log_ceiling" : "raw_xa";
  if (o.json) {
    nlohmann::json j = {{"clients", o.clients},   {"duration_s", o.duration_s},
                        {"null_rm", o.null_rm},   {"resources", names},
                        {"decisions", decisions}, {"decisions_type", decisions_type}};
    if (!decisions_set_aside.empty()) j["decisions_set_aside"] = decisions_set_aside;
    if (decisions != "file") {
      j["decision_rows_peak"] = decision_rows_peak;
      j["decision_rows_left"] = decision_rows_left;
    }
    for (auto& [name, s] : results) {
      j[name + "_tps"] = s.tps();
      j[name + "_p50_ms"] = s.percentile(0.50);
      j[name + "_p99_ms"] = s.percentile(0.99);
      j[name + "_errors"] = s.errors;
      if (name == "log_ceiling" || ((name == "dtx" || name == "at") && decisions == "file")) {
        j[name + "_log_syncs"] = s.log_syncs;
        j[name + "_per_log_sync"] = s.per_log_sync();
      }
    }
    if (has("dtx") && has(baseline)) {
      j[std::string("dtx_vs_") + baseline] = ratio("dtx", baseline);
      j[std::string("dtx_vs_") + baseline + "_round_median"] = round_ratio("dtx", baseline);
      j["rounds"] = results["dtx"].round_tps.size();
    }
    if (has("non_atomic") && has("dtx")) j["dtx_vs_non_atomic"] = ratio("dtx", "non_atomic");
    if (has("at") && has("raw_xa")) {
      j["at_vs_raw_xa"] = ratio("at", "raw_xa");
      j["at_vs_raw_xa_round_median"] = round_ratio("at", "raw_xa");
    }
    j["rows"] = o.rows;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "dtx bench: " << o.clients << " clients, " << o.duration_s << " s per variant"
              << (o.null_rm ? ", null resource managers" : "") << ", resources:";
    for (const auto& n : names) std::cout << ' ' << n;
    std::cout << "\ndecisions: "
              << (decisions == "file" ? "file log in " + config.coordinator.log_dir.string()
                                      : "dtx_decision on resource " + decisions + " (" + decisions_type + ")");
    if (!decisions_set_aside.empty())
      std::cout << " (decisions in resource " << decisions_set_aside << " set aside: --null-rm measures the file log)";
    std::cout << "\n" << std::left << std::setw(14) << "variant" << std::right << std::setw(10) << "tps"
              << std::setw(10) << "p50 ms" << std::setw(10) << "p99 ms" << std::setw(8) << "errors" << "\n";
    for (const char* name : {"non_atomic", "raw_xa", "dtx", "at", "log_ceiling"}) {
      if (!has(name)) continue;
      Stats& s = results[name];
      std::cout << std::left << std::setw(14) << name << std::right << std::fixed << std::setprecision(1)
                << std::setw(10) << s.tps() << std::setprecision(3) << std::setw(10) << s.percentile(0.5)
                << std::setw(10) << s.percentile(0.99) << std::setw(8) << s.errors << "\n";
    }
    for (const char* name : {"dtx", "log_ceiling"})
      if (has(name) && results[name].log_syncs)
        std::cout << std::setprecision(2) << name << ": " << results[name].log_syncs
                  << " decision-log fdatasyncs, " << results[name].per_log_sync()
                  << " transactions per fdatasync\n";
    if (has("dtx") && has(baseline))
      std::cout << std::setprecision(3) << "dtx / " << baseline << " = " << ratio("dtx", baseline)
                << "   (median of " << results["dtx"].round_tps.size()
                << " per-round ratios: " << round_ratio("dtx", baseline) << ")\n";
    if (has("log_ceiling"))
      std::cout << "log_ceiling: as many clients committing to a decision log of their own in the same "
                   "log_dir, the disk's group-commit ceiling\n";
    if (has("dtx") && has("non_atomic"))
      std::cout << std::setprecision(3) << "dtx / non_atomic = " << ratio("dtx", "non_atomic") << "\n";
    if (has("at") && has("raw_xa"))
      std::cout << std::setprecision(3) << "at / raw_xa = " << ratio("at", "raw_xa") << "   (median of per-round ratios: "
                << round_ratio("at", "raw_xa") << ")\n";
    if (decisions != "file")
      std::cout << "dtx_decision rows of this run on " << decisions << ": at most " << decision_rows_peak
                << " after a round, " << decision_rows_left << " left once the forget threads drained\n";
  }
  for (auto& [name, s] : results)
    if (s.errors) std::cerr << "dtx bench: " << name << ": " << s.errors << " errors, first: " << s.first_error << "\n";
  return kExitOk;
}

}  // namespace

std::function<int()> add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure dtx against hand-written XA and non-atomic writes");
  cmd->add_option("--config,-c", o->config, "TOML configuration file (the resources to measure)");
  cmd->add_option("--clients", o->clients, "concurrent clients (default 8)");
  cmd->add_option("--duration", o->duration_s, "seconds per variant (default 10)");
  cmd->add_flag("--json", o->json, "one JSON object instead of a table");
  cmd->add_flag("--null-rm", o->null_rm,
                "only the coordinator path, against resource managers that do nothing, beside the "
                "decision log's own group-commit ceiling");
  cmd->add_option("--variants", o->variants,
                  "comma-separated subset of non_atomic,raw_xa,dtx,at to run (default all; for profiling one)")
      ->delimiter(',')
      ->check(CLI::IsMember({"non_atomic", "raw_xa", "dtx", "at"}));
  cmd->add_option("--rows", o->rows, "pick the row of each transaction among the first N (default 10000; "
                                     "e.g. 10 for a hot-row workload)")
      ->check(CLI::Range(1, kRows));
  cmd->add_option("--decisions", o->decisions,
                  "where dtx keeps its commit decisions: a resource of the config (its dtx_decision table), or "
                  "`file` for the decision log in log_dir (default: as the config says)");
  return [o] { return run_bench(*o); };
}

}  // namespace dtx::cli
