// dtx bench — the coordinator's throughput beside hand-written XA and
// non-atomic writes, measured in one process in alternating rounds (these
// machines are shared and noisy, so only ratios measured together mean much).
//
//   dtx bench --config F --clients N --duration S [--json]
//   dtx bench --null-rm [--config F] --clients N --duration S [--json]
//   --variants dtx,raw_xa   only these (for profiling one path; ratios need both)
//
// Workload: each global transaction updates one random row of
// dtx_bench_accounts (10,000 rows, created by the tool) in every configured
// resource's database, resources in config order (so no cycle of lock waits).
//   non_atomic  an autocommit UPDATE on each resource
//   raw_xa      hand-written XA on the same drivers, branches one after
//               another, no coordinator log: the ceiling a coordinator can approach
//   dtx         the public C++ API (parallel phases, decision log, fdatasync)
// --duration is per variant, split into rounds of at most 0.5 s that
// alternate between the variants; besides the ratio of the totals, the median
// of the per-round ratios (each dtx round against the raw_xa round next to
// it) is reported, which a burst of load from a neighbour moves less; so are
// the decision log's fdatasyncs per transaction. --null-rm runs only `dtx`
// against resource managers that do nothing: the coordinator's own ceiling.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "coordinator/coordinator_core.h"
#include "drivers/null_driver.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "tools/commands.h"

namespace dtx::cli {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRows = 10'000;
constexpr double kRoundSeconds = 0.5;
constexpr const char* kUpdate = "UPDATE dtx_bench_accounts SET balance = balance + 1 WHERE id = ?";

struct BenchOptions {
  std::string config;
  int clients = 8;
  double duration_s = 10;
  bool json = false;
  bool null_rm = false;
  std::vector<std::string> variants{"non_atomic", "raw_xa", "dtx"};
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

// XA spelled by hand, one branch after another: no log, no fan-out.
class RawXaWorker : public Worker {
 public:
  RawXaWorker(const std::vector<ResourceManager*>& rms, int client) : client_(client) {
    for (auto* rm : rms) {
      sessions_.push_back(rm->acquire());
      mysql_.push_back(rm->config().type == ResourceType::mysql);
    }
  }
  void once(int row) override {
    const Param p[] = {row};
    const std::string id = "rawxa-" + std::to_string(client_) + "-" + std::to_string(++seq_);
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      run(i, mysql_[i] ? "XA START '" + id + "'" : std::string("BEGIN"));
      sessions_[i]->execute(kUpdate, p);
    }
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      if (mysql_[i]) {
        run(i, "XA END '" + id + "'");
        run(i, "XA PREPARE '" + id + "'");
      } else {
        run(i, "PREPARE TRANSACTION '" + id + "'");
      }
    }
    for (std::size_t i = 0; i < sessions_.size(); ++i)
      run(i, mysql_[i] ? "XA COMMIT '" + id + "'" : "COMMIT PREPARED '" + id + "'");
  }

 private:
  void run(std::size_t i, const std::string& sql) { sessions_[i]->execute(sql, {}); }
  int client_;
  std::uint64_t seq_ = 0;
  std::vector<SessionLease> sessions_;
  std::vector<bool> mysql_;
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

// Runs `clients` threads of `factory`'s workers for `seconds`, adding to `stats`.
void run_round(const WorkerFactory& factory, int clients, double seconds, Stats& stats) {
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
          workers[c]->once(1 + static_cast<int>(rng() % kRows));
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

void create_table(ResourceManager& rm) {
  SessionLease s = rm.acquire();
  s->execute("DROP TABLE IF EXISTS dtx_bench_accounts", {});
  s->execute(rm.config().type == ResourceType::mysql
                 ? "CREATE TABLE dtx_bench_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB"
                 : "CREATE TABLE dtx_bench_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
             {});
  for (int first = 1; first <= kRows; first += 1000) {
    std::string sql = "INSERT INTO dtx_bench_accounts (id, balance) VALUES ";
    for (int id = first; id < first + 1000; ++id)  // generated numbers only
      sql += (id == first ? "(" : ",(") + std::to_string(id) + ",0)";
    s->execute(sql, {});
  }
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
  config.coordinator.recovery_interval_s = 0;  // no background passes inside the measurement
  std::vector<std::string> names;
  for (const auto& [name, _] : config.resources) names.push_back(name);

  std::map<std::string, Stats> results;
  try {
    detail::CoordinatorCore::ResourceFactory resource_factory;
    if (o.null_rm) resource_factory = make_null_resource_manager;
    auto core = std::make_shared<detail::CoordinatorCore>(config, resource_factory);
    Coordinator coord = detail::CoordinatorAccess::wrap(core);
    std::vector<ResourceManager*> rms;
    for (const auto& n : names) rms.push_back(&core->resource(n));
    if (!o.null_rm)
      for (auto* rm : rms) create_table(*rm);

    auto wanted = [&](const char* name) {
      return std::find(o.variants.begin(), o.variants.end(), name) != o.variants.end();
    };
    std::vector<std::pair<std::string, WorkerFactory>> variants;
    if (!o.null_rm && wanted("non_atomic"))
      variants.emplace_back("non_atomic", [&](int) { return std::make_unique<NonAtomicWorker>(rms); });
    if (!o.null_rm && wanted("raw_xa"))
      variants.emplace_back("raw_xa", [&](int c) { return std::make_unique<RawXaWorker>(rms, c); });
    if (o.null_rm || wanted("dtx"))
      variants.emplace_back("dtx", [&](int) { return std::make_unique<DtxWorker>(coord, names); });

    const double round_s = std::min(kRoundSeconds, o.duration_s);
    for (double done = 0; done < o.duration_s - 1e-9; done += round_s)
      for (auto& [name, factory] : variants) {
        const std::uint64_t syncs_before = core->log().sync_count();
        run_round(factory, o.clients, std::min(round_s, o.duration_s - done), results[name]);
        results[name].log_syncs += core->log().sync_count() - syncs_before;
      }
  } catch (const Error& e) {
    std::cerr << "dtx bench: " << e.what() << "\n";
    if (temp_dir) std::filesystem::remove_all(*temp_dir);
    return kExitFailed;
  }
  if (temp_dir) std::filesystem::remove_all(*temp_dir);

  auto ratio = [&](const char* a, const char* b) {
    return results.count(a) && results.count(b) && results[b].tps() > 0 ? results[a].tps() / results[b].tps() : 0.0;
  };
  // Median over rounds of a's round against b's round of the same index.
  auto round_ratio = [&](const char* a, const char* b) {
    if (!results.count(a) || !results.count(b)) return 0.0;
    const auto &ra = results[a].round_tps, &rb = results[b].round_tps;
    std::vector<double> r;
    for (std::size_t i = 0; i < std::min(ra.size(), rb.size()); ++i)
      if (rb[i] > 0) r.push_back(ra[i] / rb[i]);
    if (r.empty()) return 0.0;
    std::sort(r.begin(), r.end());
    return r.size() % 2 ? r[r.size() / 2] : (r[r.size() / 2 - 1] + r[r.size() / 2]) / 2;
  };
  if (o.json) {
    nlohmann::json j = {{"clients", o.clients}, {"duration_s", o.duration_s}, {"null_rm", o.null_rm},
                        {"resources", names}};
    for (auto& [name, s] : results) {
      j[name + "_tps"] = s.tps();
      j[name + "_p50_ms"] = s.percentile(0.50);
      j[name + "_p99_ms"] = s.percentile(0.99);
      j[name + "_errors"] = s.errors;
    }
    if (results.count("dtx")) {
      const Stats& d = results["dtx"];
      j["dtx_log_syncs"] = d.log_syncs;
      j["dtx_per_log_sync"] = d.per_log_sync();
    }
    if (results.count("raw_xa") && results.count("dtx")) {
      j["dtx_vs_raw_xa"] = ratio("dtx", "raw_xa");
      j["dtx_vs_raw_xa_round_median"] = round_ratio("dtx", "raw_xa");
      j["rounds"] = results["dtx"].round_tps.size();
    }
    if (results.count("non_atomic") && results.count("dtx"))
      j["dtx_vs_non_atomic"] = ratio("dtx", "non_atomic");
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "dtx bench: " << o.clients << " clients, " << o.duration_s << " s per variant"
              << (o.null_rm ? ", null resource managers" : "") << ", resources:";
    for (const auto& n : names) std::cout << ' ' << n;
    std::cout << "\n" << std::left << std::setw(12) << "variant" << std::right << std::setw(10) << "tps"
              << std::setw(10) << "p50 ms" << std::setw(10) << "p99 ms" << std::setw(8) << "errors" << "\n";
    for (const char* name : {"non_atomic", "raw_xa", "dtx"}) {
      if (!results.count(name)) continue;
      Stats& s = results[name];
      std::cout << std::left << std::setw(12) << name << std::right << std::fixed << std::setprecision(1)
                << std::setw(10) << s.tps() << std::setprecision(3) << std::setw(10) << s.percentile(0.5)
                << std::setw(10) << s.percentile(0.99) << std::setw(8) << s.errors << "\n";
    }
    if (results.count("dtx") && results["dtx"].log_syncs)
      std::cout << std::setprecision(2) << "decision log: " << results["dtx"].log_syncs
                << " fdatasyncs, " << results["dtx"].per_log_sync()
                << " transactions per fdatasync\n";
    if (results.count("dtx") && results.count("raw_xa"))
      std::cout << std::setprecision(3) << "dtx / raw_xa = " << ratio("dtx", "raw_xa")
                << "   (median of " << results["dtx"].round_tps.size()
                << " per-round ratios: " << round_ratio("dtx", "raw_xa") << ")\n";
    if (results.count("dtx") && results.count("non_atomic"))
      std::cout << std::setprecision(3) << "dtx / non_atomic = " << ratio("dtx", "non_atomic") << "\n";
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
  cmd->add_flag("--null-rm", o->null_rm, "only the coordinator path, against resource managers that do nothing");
  cmd->add_option("--variants", o->variants,
                  "comma-separated subset of non_atomic,raw_xa,dtx to run (default all; for profiling one)")
      ->delimiter(',')
      ->check(CLI::IsMember({"non_atomic", "raw_xa", "dtx"}));
  return [o] { return run_bench(*o); };
}

}  // namespace dtx::cli
