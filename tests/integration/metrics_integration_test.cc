// The metrics against the real MariaDB and PostgreSQL: a global transaction
// committed across both moves the transaction and decision-log metrics, and
// a recovery pass that commits a crashed process's decided branches moves the
// recovery metrics. Tables mt_<coordinator id>.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "base/transaction_id.h"
#include "coordinator/coordinator_core.h"
#include "decision-log/decision_log.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "support/metrics_scrape.h"
#include "support/process.h"
#include "support/test_env.h"

namespace dtx {
namespace {

using test::MetricsScrape;

TEST(MetricsIntegration, CommittedTransactionAndRecoveryPassMoveTheirMetrics) {
  std::random_device rd;
  const std::string id = "mt" + std::to_string(rd() % 1000000);
  const std::string table = "mt_" + id;
  Config config;
  config.coordinator.id = id;
  config.coordinator.log_dir = test::fresh_dir("metrics-it");
  config.coordinator.recovery_interval_s = 0;  // the pass below is the only one
  config.resources["my"] = test::mysql_resource("my");
  config.resources["pg"] = test::postgres_resource("pg");
  std::map<std::string, std::unique_ptr<ResourceManager>> direct;
  for (const char* name : {"my", "pg"}) {
    direct[name] = make_resource_manager(config.resources.at(name));
    direct[name]->acquire()->execute("DROP TABLE IF EXISTS " + table, {});
    direct[name]->acquire()->execute("CREATE TABLE " + table + " (id INT PRIMARY KEY)", {});
  }
  auto rows = [&](const char* resource, int row) {
    const Param p[] = {row};
    return direct[resource]->acquire()->execute("SELECT COUNT(*) FROM " + table + " WHERE id = ?", p)[0].as_int64(0);
  };
  auto core = std::make_shared<detail::CoordinatorCore>(config);
  Coordinator coord = detail::CoordinatorAccess::wrap(core);

  // A transaction committed across both databases.
  MetricsScrape before = MetricsScrape::take();
  {
    Transaction tx = coord.begin();
    tx.execute("my", "INSERT INTO " + table + " VALUES (1)");
    tx.execute("pg", "INSERT INTO " + table + " VALUES (1)");
    tx.commit();
  }
  MetricsScrape after = MetricsScrape::take();
  ASSERT_EQ(rows("my", 1), 1);
  ASSERT_EQ(rows("pg", 1), 1);
  EXPECT_EQ(after.since(before, "dtx_transactions_total{outcome=\"committed\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_decisions_logged_total"), 1);
  EXPECT_EQ(after.since(before, "dtx_decision_log_flush_seconds_count"), 1);
  EXPECT_GT(after.since(before, "dtx_decision_log_flush_seconds_sum"), 0);  // a real fdatasync takes time

  // A crashed process of the same coordinator id: its COMMIT decision is
  // durable, its two branches prepared, its connections closed, its log lock free.
  const std::string inc = new_incarnation();
  const std::string gtrid = TransactionIdGenerator(id, inc).next();
  const std::vector<BranchRef> branches{{"my", "my"}, {"pg", "pg"}};
  DecisionLog::open(config.coordinator.log_dir, id, inc)->log_commit(gtrid, branches);
  std::int64_t mysql_session = 0;
  for (const char* name : {"my", "pg"}) {
    SessionLease s = direct[name]->acquire();
    if (std::string(name) == "my") mysql_session = s->execute("SELECT CONNECTION_ID()", {})[0].as_int64(0);
    s->begin(Xid::make(gtrid, name));
    s->execute("INSERT INTO " + table + " VALUES (2)", {});
    s->prepare();
    s.discard();
  }
  // MariaDB keeps a branch with its session until the session has ended.
  ASSERT_TRUE(test::eventually([&] {
    const Param p[] = {mysql_session};
    return direct["my"]->acquire()->execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                                            p)[0].as_int64(0) == 0;
  }));

  before = MetricsScrape::take();
  const RecoveryReport report = core->recover_now();
  after = MetricsScrape::take();
  ASSERT_TRUE(report.settled()) << (report.errors.empty() ? "" : report.errors.front());
  EXPECT_EQ(rows("my", 2), 1);
  EXPECT_EQ(rows("pg", 2), 1);
  EXPECT_EQ(after.since(before, "dtx_recovery_passes_total{outcome=\"settled\"}"), 1);
  EXPECT_EQ(after.since(before, "dtx_recovery_pass_seconds_count"), 1);
  EXPECT_EQ(after.since(before, "dtx_recovery_branches_total{action=\"committed\"}"), 2);
  EXPECT_EQ(after.value("dtx_transactions_in_doubt"), 0);
  EXPECT_TRUE(after.has("dtx_prepared_branches{resource=\"my\"}"));  // exact counts: other tests share the servers
  EXPECT_TRUE(after.has("dtx_prepared_oldest_age_seconds{resource=\"pg\"}"));

  for (const char* name : {"my", "pg"}) direct[name]->acquire()->execute("DROP TABLE IF EXISTS " + table, {});
  std::filesystem::remove_all(config.coordinator.log_dir);
}

}  // namespace
}  // namespace dtx
