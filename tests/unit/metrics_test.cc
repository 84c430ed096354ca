// The process's metrics: each recording call of metrics/metrics.h moves
// exactly its series, read back through dtx::metrics_text() as a scrape
// would; the layers' calls (coordinator, decision log, resource manager) move
// them too. The registry is process-wide: every check compares two scrapes.
#include <gtest/gtest.h>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "coordinator/coordinator_core.h"
#include "drivers/null_driver.h"
#include "dtx/dtx.h"
#include "metrics/metrics.h"
#include "recovery/recovery.h"
#include "support/metrics_scrape.h"
#include "support/test_env.h"

namespace dtx {
namespace {

using namespace std::chrono_literals;
using test::MetricsScrape;

// A labelled family shows once it has a series (prometheus-cpp leaves empty
// families out of a scrape), so one of each is recorded first.
TEST(Metrics, EveryMetricHasHelpAndTypeOnceItHasASeries) {
  metrics::prepared_branches("mt_described", 0, 0);
  metrics::recovery_branch("committed");
  metrics::heuristic_outcome("recovery");
  metrics::admin_command("select", "ok");
  metrics::connection_error("mt_described");
  const std::pair<const char*, const char*> metrics[] = {
      {"dtx_prepared_branches", "gauge"},
      {"dtx_prepared_oldest_age_seconds", "gauge"},
      {"dtx_decisions_logged_total", "counter"},
      {"dtx_decision_log_flush_seconds", "histogram"},
      {"dtx_transactions_total", "counter"},
      {"dtx_transactions_in_doubt", "gauge"},
      {"dtx_recovery_passes_total", "counter"},
      {"dtx_recovery_pass_seconds", "histogram"},
      {"dtx_recovery_branches_total", "counter"},
      {"dtx_heuristic_outcomes_total", "counter"},
      {"dtx_admin_sessions", "gauge"},
      {"dtx_admin_sessions_total", "counter"},
      {"dtx_admin_auth_failures_total", "counter"},
      {"dtx_admin_commands_total", "counter"},
      {"dtx_resource_connection_errors_total", "counter"},
  };
  const std::string text = metrics_text();
  for (const auto& [name, type] : metrics) {
    EXPECT_NE(text.find(std::string("# HELP ") + name + " "), std::string::npos) << name;
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " " + type + "\n"), std::string::npos) << name;
  }
}

TEST(Metrics, UnlabelledAndFixedLabelSeriesExistBeforeFirstUse) {
  // Zeros a dashboard can show (and rate() can start from) before anything happened.
  const MetricsScrape s = MetricsScrape::take();
  for (const char* series :
       {"dtx_decisions_logged_total", "dtx_decision_log_flush_seconds_count", "dtx_transactions_in_doubt",
        "dtx_transactions_total{outcome=\"committed\"}", "dtx_transactions_total{outcome=\"rolled_back\"}",
        "dtx_transactions_total{outcome=\"in_doubt\"}", "dtx_recovery_passes_total{outcome=\"settled\"}",
        "dtx_recovery_passes_total{outcome=\"left_in_doubt\"}", "dtx_recovery_passes_total{outcome=\"error\"}",
        "dtx_admin_sessions", "dtx_admin_sessions_total", "dtx_admin_auth_failures_total"})
    EXPECT_TRUE(s.has(series)) << series;
}

TEST(Metrics, FlushCountsItsDecisionsAndItsLatencyOnce) {
  const MetricsScrape before = MetricsScrape::take();
  metrics::decisions_flushed(3, 300us);
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.since(before, "dtx_decisions_logged_total"), 3);
  EXPECT_EQ(after.since(before, "dtx_decision_log_flush_seconds_count"), 1);
  EXPECT_NEAR(after.since(before, "dtx_decision_log_flush_seconds_sum"), 300e-6, 1e-9);
  const char* h = "dtx_decision_log_flush_seconds";
  EXPECT_EQ(after.bucket(h, 250e-6) - before.bucket(h, 250e-6), 0);  // 300 µs is above 250 µs
  EXPECT_EQ(after.bucket(h, 500e-6) - before.bucket(h, 500e-6), 1);
  EXPECT_EQ(after.bucket(h, 50e-6), before.bucket(h, 50e-6));   // the smallest bucket is 50 µs
  EXPECT_EQ(after.bucket(h, 1.0) - before.bucket(h, 1.0), 1);   // the largest is 1 s
}

TEST(Metrics, FlushOfEndRecordsOnlyCountsNoDecision) {
  const MetricsScrape before = MetricsScrape::take();
  metrics::decisions_flushed(0, 2ms);
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.value("dtx_decisions_logged_total"), before.value("dtx_decisions_logged_total"));
  EXPECT_EQ(after.since(before, "dtx_decision_log_flush_seconds_count"), 1);
}

TEST(Metrics, TransactionsAreCountedByOutcome) {
  const MetricsScrape before = MetricsScrape::take();
  metrics::transaction_finished(metrics::TransactionOutcome::committed);
  metrics::transaction_finished(metrics::TransactionOutcome::committed);
  metrics::transaction_finished(metrics::TransactionOutcome::rolled_back);
  metrics::transaction_finished(metrics::TransactionOutcome::in_doubt);
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"committed\"}"), 2);
  EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"rolled_back\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"in_doubt\"}"), 1);
}

TEST(Metrics, RecoveryPassesAreCountedByOutcomeAndTimed) {
  const MetricsScrape before = MetricsScrape::take();
  metrics::recovery_pass({.outcome = metrics::PassOutcome::left_in_doubt, .took = 20ms, .transactions_in_doubt = 4});
  metrics::recovery_pass({.outcome = metrics::PassOutcome::error, .took = 3s, .transactions_in_doubt = 2});
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.since(before, "dtx_recovery_passes_total{outcome=\"left_in_doubt\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_recovery_passes_total{outcome=\"error\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_recovery_passes_total{outcome=\"settled\"}"), 0);
  EXPECT_EQ(after.since(before, "dtx_recovery_pass_seconds_count"), 2);
  EXPECT_NEAR(after.since(before, "dtx_recovery_pass_seconds_sum"), 3.020, 1e-9);
  EXPECT_EQ(after.since(before, "dtx_recovery_pass_seconds_bucket{le=\"+Inf\"}"), 2);
  EXPECT_EQ(after.value("dtx_transactions_in_doubt"), 2);  // the latest pass's view, not a sum
}

TEST(Metrics, DryRunSetsTheInDoubtGaugeOnly) {
  metrics::recovery_pass({.outcome = metrics::PassOutcome::settled, .took = 1ms, .transactions_in_doubt = 0});
  const MetricsScrape before = MetricsScrape::take();
  metrics::recovery_pass(
      {.outcome = metrics::PassOutcome::left_in_doubt, .took = 1ms, .transactions_in_doubt = 7, .dry_run = true});
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.value("dtx_transactions_in_doubt"), 7);
  EXPECT_EQ(after.value("dtx_recovery_passes_total{outcome=\"left_in_doubt\"}"),
            before.value("dtx_recovery_passes_total{outcome=\"left_in_doubt\"}"));
  EXPECT_EQ(after.value("dtx_recovery_pass_seconds_count"), before.value("dtx_recovery_pass_seconds_count"));
}

TEST(Metrics, PreparedBranchesAreGaugesPerResourceSetByTheLatestListing) {
  metrics::prepared_branches("mt_bank1", 3, 12.5);
  metrics::prepared_branches("mt_bank2", 1, 0);
  MetricsScrape s = MetricsScrape::take();
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_bank1\"}"), 3);
  EXPECT_EQ(s.value("dtx_prepared_oldest_age_seconds{resource=\"mt_bank1\"}"), 12.5);
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_bank2\"}"), 1);
  metrics::prepared_branches("mt_bank1", 0, 0);
  s = MetricsScrape::take();
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_bank1\"}"), 0);
  EXPECT_EQ(s.value("dtx_prepared_oldest_age_seconds{resource=\"mt_bank1\"}"), 0);
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_bank2\"}"), 1);  // untouched
}

// What a pass or an operator command publishes once it acted: the listing
// without the branches it ended; the age from the oldest with a known time.
TEST(Metrics, PreparedGaugesLeaveOutTheBranchesEndedSinceTheListing) {
  auto prepared = [](const char* gtrid, std::optional<std::chrono::seconds> age) {
    PreparedXid p{.xid = Xid::make(gtrid, "mt_pub"), .is_dtx = true, .raw = gtrid};
    if (age) p.prepared_at = std::chrono::system_clock::now() - *age;
    return p;
  };
  const PreparedByResource listed{
      {"mt_pub", {prepared("mt.1.1", 30s), prepared("mt.1.2", 10s), prepared("mt.1.3", std::nullopt)}},
      {"mt_pub_empty", {}}};
  auto acted = [&](std::size_t i, BranchAction action) {
    const PreparedXid& p = listed.at("mt_pub")[i];
    return InDoubtBranch{.resource = "mt_pub", .prepared = p, .gtrid = p.xid.gtrid, .action = action};
  };
  publish_prepared(listed, std::vector<InDoubtBranch>{acted(0, BranchAction::left_owner_alive)});
  MetricsScrape s = MetricsScrape::take();
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_pub\"}"), 3);
  EXPECT_NEAR(s.value("dtx_prepared_oldest_age_seconds{resource=\"mt_pub\"}"), 30, 5);
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_pub_empty\"}"), 0);
  EXPECT_TRUE(s.has("dtx_prepared_oldest_age_seconds{resource=\"mt_pub_empty\"}"));

  publish_prepared(listed, std::vector<InDoubtBranch>{acted(0, BranchAction::committed),
                                                      acted(1, BranchAction::already_finished)});
  s = MetricsScrape::take();
  EXPECT_EQ(s.value("dtx_prepared_branches{resource=\"mt_pub\"}"), 1);
  EXPECT_EQ(s.value("dtx_prepared_oldest_age_seconds{resource=\"mt_pub\"}"), 0);  // the one left has no time
}

TEST(Metrics, LabelledCountersCountPerLabel) {
  const MetricsScrape before = MetricsScrape::take();
  metrics::recovery_branch("committed");
  metrics::recovery_branch("committed");
  metrics::recovery_branch("left_owner_alive");
  metrics::heuristic_outcome("operator");
  metrics::connection_error("mt_bank1");
  metrics::admin_command("commit_prepared", "refused");
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.since(before, "dtx_recovery_branches_total{action=\"committed\"}"), 2);
  EXPECT_EQ(after.since(before, "dtx_recovery_branches_total{action=\"left_owner_alive\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_heuristic_outcomes_total{by=\"operator\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_heuristic_outcomes_total{by=\"coordinator\"}"), 0);
  EXPECT_EQ(after.since(before, "dtx_resource_connection_errors_total{resource=\"mt_bank1\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_admin_commands_total{command=\"commit_prepared\",outcome=\"refused\"}"), 1);
}

TEST(Metrics, HeuristicOutcomeIsCountedEvenIfItCannotBeRecorded) {
  const std::filesystem::path dir = test::fresh_dir("metrics-heuristic");
  const HeuristicOutcome h{"mt.0000000000000001.1", "mt_bank1", "commit", "rolled_back", "operator", "test"};
  const MetricsScrape before = MetricsScrape::take();
  record_heuristic(dir, h);
  std::ofstream(dir / "file") << "not a directory";
  EXPECT_THROW(record_heuristic(dir / "file", h), std::exception);  // log_dir is a file
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.since(before, "dtx_heuristic_outcomes_total{by=\"operator\"}"), 2);
  std::filesystem::remove_all(dir);
}

TEST(Metrics, AdminSessionsGaugeFollowsOpenAndClose) {
  const MetricsScrape before = MetricsScrape::take();
  metrics::admin_session_opened();
  metrics::admin_session_opened();
  metrics::admin_auth_failed();
  const MetricsScrape during = MetricsScrape::take();
  metrics::admin_session_closed();
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(during.since(before, "dtx_admin_sessions"), 2);
  EXPECT_EQ(after.since(before, "dtx_admin_sessions"), 1);
  EXPECT_EQ(after.since(before, "dtx_admin_sessions_total"), 2);
  EXPECT_EQ(after.since(before, "dtx_admin_auth_failures_total"), 1);
  metrics::admin_session_closed();
}

TEST(Metrics, ResourceManagerCountsConnectionsThatFailUnreachable) {
  ResourceConfig rc;
  rc.name = "mt_unreachable";
  ResourceManager down(rc, []() -> std::unique_ptr<Session> {
    throw Error({.code = Errc::unavailable}, "connection refused");
  });
  ResourceManager broken_library(rc, []() -> std::unique_ptr<Session> { throw std::runtime_error("driver"); });
  ResourceManager misconfigured(rc, []() -> std::unique_ptr<Session> {
    throw Error({.code = Errc::misconfigured}, "max_prepared_transactions is 0");
  });
  const std::string series = "dtx_resource_connection_errors_total{resource=\"mt_unreachable\"}";
  const MetricsScrape before = MetricsScrape::take();
  EXPECT_THROW(down.acquire(), Error);
  EXPECT_THROW(broken_library.acquire(), Error);
  EXPECT_THROW(misconfigured.acquire(), Error);  // reached, but unusable: not a connection error
  const MetricsScrape after = MetricsScrape::take();
  EXPECT_EQ(after.value(series) - before.value(series), 2);
}

TEST(Metrics, CoordinatorCountsItsTransactionsAndDecisions) {
  const std::filesystem::path log_dir = test::fresh_dir("metrics");
  {
    Config config;
    config.coordinator.id = "mt";
    config.coordinator.log_dir = log_dir;
    config.coordinator.recovery_interval_s = 0;
    for (const char* name : {"a", "b"}) config.resources[name] = ResourceConfig{.name = name};
    Coordinator coord = detail::CoordinatorAccess::wrap(std::make_shared<detail::CoordinatorCore>(
        config, make_null_resource_manager, DecisionLogOptions{.sync = false}));
    const MetricsScrape before = MetricsScrape::take();
    {
      Transaction two = coord.begin();  // two branches: a logged decision
      two.execute("a", "UPDATE t SET v = 1");
      two.execute("b", "UPDATE t SET v = 1");
      two.commit();
      Transaction one = coord.begin();  // one branch: one phase, nothing logged
      one.execute("a", "UPDATE t SET v = 1");
      one.commit();
      Transaction undone = coord.begin();
      undone.execute("a", "UPDATE t SET v = 1");
      undone.execute("b", "UPDATE t SET v = 1");
      undone.rollback();
      Transaction dropped = coord.begin();  // destroyed while active: rolled back
      dropped.execute("b", "UPDATE t SET v = 1");
    }
    const MetricsScrape after = MetricsScrape::take();
    EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"committed\"}"), 2);
    EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"rolled_back\"}"), 2);
    EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"in_doubt\"}"), 0);
    EXPECT_EQ(after.since(before, "dtx_decisions_logged_total"), 1);
    EXPECT_EQ(after.since(before, "dtx_decision_log_flush_seconds_count"), 1);
  }
  std::filesystem::remove_all(log_dir);
}

TEST(Metrics, ApplicationSharesTheRegistry) {
  std::shared_ptr<prometheus::Registry> registry = metrics_registry();
  ASSERT_TRUE(registry);
  EXPECT_EQ(registry, metrics_registry());
  prometheus::BuildCounter().Name("mt_app_requests_total").Help("the application's own").Register(*registry)
      .Add({})
      .Increment(5);
  const MetricsScrape s = MetricsScrape::take();
  EXPECT_EQ(s.value("mt_app_requests_total"), 5);
  EXPECT_TRUE(s.has("dtx_decisions_logged_total"));
}

}  // namespace
}  // namespace dtx
