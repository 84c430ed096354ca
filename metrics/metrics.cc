// The process's metrics: one prometheus-cpp registry behind the narrow calls
// of metrics.h, published by dtx/metrics.h.
//
// WHERE STATE LIVES
// One Metrics object per process, built on first use (a function-local
// static: thread-safe construction) and never destroyed, so a thread that
// still records during static destruction (a Coordinator held in a static,
// its recovery thread) never touches a dead registry. It owns the registry
// and every metric family, registered once, in the constructor.
//
// COST
// prometheus-cpp's Family::Add(labels) hashes the labels and takes the
// family's mutex. The commit path never calls it: the series it touches
// (decisions logged, the flush histogram, transactions by outcome) are
// resolved in the constructor and kept as references; recording is then an
// atomic add on a Counter (the Histogram takes its own short lock, once per
// group-commit flush, not per transaction). The calls with a free-form label
// (resource, action, command) look their series up per call; they are made
// off the commit path. bench/metrics_bench.cc measures both.
//
// FAILURE
// Nothing here may fail a caller: every call is noexcept, and what could
// throw (an allocation in a label lookup) is caught and dropped, counted in
// nothing — losing one increment beats losing a transaction.
//
// WHO CALLS WHAT (docs/metrics.md has the metrics and their meaning)
//   decision-log/decision_log.cc  decisions_flushed        after each durable flush
//   coordinator/coordinator.cc    transaction_finished     each end state of a global transaction
//   recovery/recovery.cc          recovery_pass, recovery_branch, prepared_branches (every
//                                 listing, and the state after a pass), heuristic_outcome
//                                 (record_heuristic: coordinator, recovery and operators)
//   drivers/resource_manager.cc   connection_error         a new connection that failed
//   the admin console (dtx serve) admin_*
#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "dtx/metrics.h"

namespace dtx {
namespace metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Registry;

// 50 µs (a batched write to a fast disk's cache) to 1 s (a stalled disk).
const Histogram::BucketBoundaries kFlushBuckets{50e-6, 100e-6, 250e-6, 500e-6, 1e-3,  2.5e-3, 5e-3,
                                                10e-3, 25e-3,  50e-3,  100e-3, 250e-3, 500e-3, 1.0};
// A pass is two listings per resource plus the branches it finishes.
const Histogram::BucketBoundaries kPassBuckets{1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
                                               500e-3, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};

template <typename T>
Family<T>& family(prometheus::detail::Builder<T> builder, Registry& registry, const char* name,
                  const char* help) {
  return builder.Name(name).Help(help).Register(registry);
}

struct Metrics {
  std::shared_ptr<Registry> registry = std::make_shared<Registry>();

  Family<Gauge>& prepared = family(prometheus::BuildGauge(), *registry, "dtx_prepared_branches",
      "Branches prepared on the resource (dtx's and others'), as its latest listing found them");
  Family<Gauge>& prepared_oldest = family(prometheus::BuildGauge(), *registry,
      "dtx_prepared_oldest_age_seconds",
      "Age of the oldest prepared branch on the resource whose preparation time is known, at its "
      "latest listing; 0 if none (MariaDB XA branches carry no time)");
  Counter& decisions = family(prometheus::BuildCounter(), *registry, "dtx_decisions_logged_total",
      "COMMIT decisions made durable in this process's decision log").Add({});
  Histogram& flush = family(prometheus::BuildHistogram(), *registry,
      "dtx_decision_log_flush_seconds",
      "Time of one decision-log group-commit flush (write and fdatasync)").Add({}, kFlushBuckets);
  Family<Counter>& transactions = family(prometheus::BuildCounter(), *registry,
      "dtx_transactions_total", "Global transactions of this process by how they ended");
  Counter& committed = transactions.Add({{"outcome", "committed"}});
  Counter& rolled_back = transactions.Add({{"outcome", "rolled_back"}});
  Counter& in_doubt = transactions.Add({{"outcome", "in_doubt"}});
  Gauge& in_doubt_now = family(prometheus::BuildGauge(), *registry, "dtx_transactions_in_doubt",
      "Global transactions of this coordinator id left in doubt by the latest recovery pass or "
      "dry run of this process").Add({});
  Family<Counter>& passes = family(prometheus::BuildCounter(), *registry, "dtx_recovery_passes_total",
      "Recovery passes of this process (dry runs excluded) by outcome");
  Counter& passes_settled = passes.Add({{"outcome", "settled"}});
  Counter& passes_left = passes.Add({{"outcome", "left_in_doubt"}});
  Counter& passes_error = passes.Add({{"outcome", "error"}});
  Histogram& pass_time = family(prometheus::BuildHistogram(), *registry, "dtx_recovery_pass_seconds",
      "Duration of a recovery pass (dry runs excluded)").Add({}, kPassBuckets);
  Family<Counter>& branches = family(prometheus::BuildCounter(), *registry,
      "dtx_recovery_branches_total",
      "Prepared branches a recovery pass handled, by what it did (committed, rolled_back, left_*, "
      "failed, ...)");
  Family<Counter>& heuristics = family(prometheus::BuildCounter(), *registry,
      "dtx_heuristic_outcomes_total",
      "Heuristic outcomes (a branch ended against or without the logged decision, or an AT "
      "rollback that met a dirty write), by who was acting");
  Gauge& admin_sessions = family(prometheus::BuildGauge(), *registry, "dtx_admin_sessions",
      "Admin console sessions open now").Add({});
  Counter& admin_sessions_total = family(prometheus::BuildCounter(), *registry,
      "dtx_admin_sessions_total", "Admin console sessions opened").Add({});
  Counter& admin_auth_failures = family(prometheus::BuildCounter(), *registry,
      "dtx_admin_auth_failures_total", "Admin console logins refused").Add({});
  Family<Counter>& admin_commands = family(prometheus::BuildCounter(), *registry,
      "dtx_admin_commands_total", "Admin console commands by kind and outcome");
  Family<Counter>& connection_errors = family(prometheus::BuildCounter(), *registry,
      "dtx_resource_connection_errors_total",
      "New connections to the resource that failed (database unreachable)");
};

Metrics& the() {
  static Metrics* const metrics = new Metrics();  // never destroyed: see the top of the file
  return *metrics;
}

// Family::Add for a label lookup off the commit path; nothing on failure.
template <typename T, typename F>
void with_series(Family<T>& f, std::initializer_list<std::pair<const char*, std::string_view>> labels,
                 F&& act) noexcept {
  try {
    prometheus::Labels l;
    for (const auto& [name, value] : labels) l.emplace(name, std::string(value));
    act(f.Add(l));
  } catch (const std::exception&) {
    // Out of memory: this increment is lost, the caller goes on.
  }
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void decisions_flushed(std::size_t decisions, std::chrono::nanoseconds took) noexcept {
  Metrics& m = the();
  m.flush.Observe(seconds(took));
  if (decisions > 0) m.decisions.Increment(static_cast<double>(decisions));
}

void transaction_finished(TransactionOutcome outcome) noexcept {
  Metrics& m = the();
  switch (outcome) {
    case TransactionOutcome::committed: m.committed.Increment(); break;
    case TransactionOutcome::rolled_back: m.rolled_back.Increment(); break;
    case TransactionOutcome::in_doubt: m.in_doubt.Increment(); break;
  }
}

void recovery_pass(const RecoveryPass& pass) noexcept {
  Metrics& m = the();
  m.in_doubt_now.Set(static_cast<double>(pass.transactions_in_doubt));
  if (pass.dry_run) return;
  switch (pass.outcome) {
    case PassOutcome::settled: m.passes_settled.Increment(); break;
    case PassOutcome::left_in_doubt: m.passes_left.Increment(); break;
    case PassOutcome::error: m.passes_error.Increment(); break;
  }
  m.pass_time.Observe(seconds(pass.took));
}

void recovery_branch(std::string_view action) noexcept {
  with_series(the().branches, {{"action", action}}, [](Counter& c) { c.Increment(); });
}

void heuristic_outcome(std::string_view by) noexcept {
  with_series(the().heuristics, {{"by", by}}, [](Counter& c) { c.Increment(); });
}

void prepared_branches(std::string_view resource, std::size_t count, double oldest_age_s) noexcept {
  Metrics& m = the();
  with_series(m.prepared, {{"resource", resource}}, [&](Gauge& g) { g.Set(static_cast<double>(count)); });
  with_series(m.prepared_oldest, {{"resource", resource}}, [&](Gauge& g) { g.Set(oldest_age_s); });
}

void connection_error(std::string_view resource) noexcept {
  with_series(the().connection_errors, {{"resource", resource}}, [](Counter& c) { c.Increment(); });
}

void admin_session_opened() noexcept {
  Metrics& m = the();
  m.admin_sessions.Increment();
  m.admin_sessions_total.Increment();
}

void admin_session_closed() noexcept { the().admin_sessions.Decrement(); }

void admin_auth_failed() noexcept { the().admin_auth_failures.Increment(); }

void admin_command(std::string_view command, std::string_view outcome) noexcept {
  with_series(the().admin_commands, {{"command", command}, {"outcome", outcome}},
              [](Counter& c) { c.Increment(); });
}

}  // namespace metrics

std::shared_ptr<prometheus::Registry> metrics_registry() { return metrics::the().registry; }

std::string metrics_text() {
  return prometheus::TextSerializer().Serialize(metrics::the().registry->Collect());
}

}  // namespace dtx
