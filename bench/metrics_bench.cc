// The metrics' cost on the commit path: what one committed two-branch
// transaction records (its decision flushed, its end state), and, for scale,
// a call with a free-form label (a recovery pass's per-branch action).
#include <benchmark/benchmark.h>

#include <chrono>

#include "metrics/metrics.h"

namespace dtx {
namespace {

void BM_MetricsCommitPath(benchmark::State& state) {
  for (auto _ : state) {
    metrics::decisions_flushed(1, std::chrono::microseconds(250));
    metrics::transaction_finished(metrics::TransactionOutcome::committed);
  }
}
BENCHMARK(BM_MetricsCommitPath)->Threads(1)->Threads(8)->UseRealTime();

void BM_MetricsTransactionFinished(benchmark::State& state) {
  for (auto _ : state) metrics::transaction_finished(metrics::TransactionOutcome::committed);
}
BENCHMARK(BM_MetricsTransactionFinished)->Threads(1)->Threads(8)->UseRealTime();

void BM_MetricsLabelledCall(benchmark::State& state) {
  for (auto _ : state) metrics::recovery_branch("committed");
}
BENCHMARK(BM_MetricsLabelledCall);

}  // namespace
}  // namespace dtx
