// Micro-benchmarks of the coordinator's hot pieces: transaction ids, xid
// spelling, the branch fan-out, and a whole global transaction against
// null resource managers (decision log without fdatasync, so this is the CPU
// cost per transaction; `dtx bench --null-rm` measures it with fdatasync).
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "coordinator/coordinator_core.h"
#include "coordinator/fan_out.h"
#include "base/transaction_id.h"
#include "drivers/null_driver.h"
#include "base/xid.h"

namespace dtx {
namespace {

void BM_GtridNext(benchmark::State& state) {
  TransactionIdGenerator ids("node1", new_incarnation());
  for (auto _ : state) benchmark::DoNotOptimize(ids.next());
}
BENCHMARK(BM_GtridNext);

void BM_ParseGtrid(benchmark::State& state) {
  TransactionIdGenerator ids("node1", new_incarnation());
  std::string g = ids.next();
  for (auto _ : state) benchmark::DoNotOptimize(parse_gtrid(g));
}
BENCHMARK(BM_ParseGtrid);

void BM_XidMysqlLiteral(benchmark::State& state) {
  Xid x = Xid::make("node1.6b026dfc3f97ff72.1f", "bank1");
  for (auto _ : state) benchmark::DoNotOptimize(x.mysql_literal());
}
BENCHMARK(BM_XidMysqlLiteral);

void BM_XidPostgresGid(benchmark::State& state) {
  Xid x = Xid::make("node1.6b026dfc3f97ff72.1f", "bank2");
  for (auto _ : state) benchmark::DoNotOptimize(x.postgres_gid());
}
BENCHMARK(BM_XidPostgresGid);

// Two branch steps of `work_us` each, in parallel through the pool or one
// after another on the caller: the trade-off behind CommitSlot.
void BM_FanOut(benchmark::State& state) {
  static FanOut fan_out(16);
  const bool parallel = state.range(0) != 0;
  const auto work = std::chrono::microseconds(state.range(1));
  std::function<void(std::size_t)> step = [&](std::size_t) {
    if (work.count()) std::this_thread::sleep_for(work);  // stands for a database round trip
  };
  for (auto _ : state) fan_out.run(2, step, parallel);
}
BENCHMARK(BM_FanOut)->ArgNames({"parallel", "work_us"})->ArgsProduct({{0, 1}, {0, 100}})->UseRealTime();

// A whole two-branch global transaction against null resource managers.
void BM_NullRmTransaction(benchmark::State& state) {
  static std::shared_ptr<detail::CoordinatorCore> core = [] {
    Config config;
    config.coordinator.id = "bench";
    config.coordinator.log_dir = std::filesystem::temp_directory_path() / "dtx-coordinator-bench";
    config.coordinator.recovery_interval_s = 0;
    for (const char* name : {"a", "b"}) config.resources[name] = ResourceConfig{.name = name};
    return std::make_shared<detail::CoordinatorCore>(config, make_null_resource_manager,
                                                     DecisionLogOptions{.sync = false});
  }();
  Coordinator coord = detail::CoordinatorAccess::wrap(core);
  const Param row[] = {1};
  for (auto _ : state) {
    Transaction tx = coord.begin();
    tx.execute("a", "UPDATE t SET v = v + 1 WHERE id = ?", row);
    tx.execute("b", "UPDATE t SET v = v + 1 WHERE id = ?", row);
    tx.commit();
  }
}
BENCHMARK(BM_NullRmTransaction)->Threads(1)->Threads(8)->UseRealTime();

}  // namespace
}  // namespace dtx
