// Decision-log micro-benchmarks: group commit under 1, 8 and 32 committing
// threads (with and without fdatasync and segment preallocation), record
// encoding, and the two CRC-32C implementations.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "decision-log/crc32c.h"
#include "decision-log/decision_log.h"

namespace dtx {
namespace {

namespace fs = std::filesystem;

fs::path bench_log_dir() {
  if (const char* dir = std::getenv("DTX_BENCH_LOG_DIR"); dir && *dir) return dir;
  return fs::temp_directory_path() / ("dtx-log-bench-" + std::to_string(::getpid()));
}

// Shared by the threads of one run; thread 0 opens and closes it outside the
// timed loop (the loop's start and end are barriers for all threads).
std::unique_ptr<DecisionLog> shared_log;
std::atomic<std::uint64_t> next_gtrid{0};

// One COMMIT (forced, group-committed) and its lazy END per iteration, as a
// two-branch transaction does. Arg 0: 1 = fdatasync, 0 = no sync. Arg 1:
// 1 = preallocated segments (the default), 0 = the file grows with each write.
// Compare with --benchmark_enable_random_interleaving=true
// --benchmark_repetitions=N: the disk and the CPUs of a shared machine drift.
void BM_LogCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    DecisionLogOptions options{.sync = state.range(0) != 0};
    if (state.range(1) == 0) options.preallocate_bytes = 0;
    shared_log = DecisionLog::open(bench_log_dir(), "bench", "00000000000000b1", options);
  }
  const BranchRef branches[] = {{"bank1", "b1"}, {"bank2", "b2"}};
  for (auto _ : state) {
    const std::string gtrid = "bench.00000000000000b1." + std::to_string(++next_gtrid);
    shared_log->log_commit(gtrid, branches);
    shared_log->log_end(gtrid);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // Every thread ran about as many iterations as thread 0.
    const double commits = double(state.iterations()) * state.threads();
    state.counters["commits_per_sync"] = commits / double(shared_log->sync_count());
    shared_log.reset();
    fs::remove_all(bench_log_dir());
  }
}
BENCHMARK(BM_LogCommit)
    ->ArgNames({"sync", "prealloc"})
    ->Args({1, 1})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime();

void BM_EncodeRecord(benchmark::State& state) {
  const DecisionRecord record{.type = RecordType::commit,
                              .gtrid = "node1.0123456789abcdef.1f3a",
                              .branches = {{"bank1", "b1"}, {"bank2", "b2"}, {"audit", "b3"}}};
  for (auto _ : state) benchmark::DoNotOptimize(encode_record(record));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRecord);

// Arg: bytes per call. 64 is a typical record, 32 KiB a full block.
void BM_Crc32cPortable(benchmark::State& state) {
  const std::string data(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(crc32c::detail::extend_portable(0, data));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32cPortable)->Arg(64)->Arg(32768);

void BM_Crc32cHardware(benchmark::State& state) {
  if (!crc32c::detail::hardware_available()) {
    state.SkipWithError("no SSE4.2 on this CPU");
    return;
  }
  const std::string data(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(crc32c::detail::extend_hardware(0, data));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32cHardware)->Arg(64)->Arg(32768);

}  // namespace
}  // namespace dtx

BENCHMARK_MAIN();
