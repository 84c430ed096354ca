// The public API's edges that need no database: a Transaction moved from.
#include <gtest/gtest.h>

#include <filesystem>

#include "coordinator/coordinator_core.h"
#include "drivers/null_driver.h"
#include "dtx/dtx.h"
#include "support/test_env.h"

namespace dtx {
namespace {

Coordinator null_coordinator(const std::filesystem::path& dir) {
  Config config;
  config.coordinator.id = "api";
  config.coordinator.log_dir = dir;
  config.coordinator.recovery_interval_s = 0;
  config.resources["a"] = ResourceConfig{.name = "a"};
  config.resources["b"] = ResourceConfig{.name = "b"};
  return detail::CoordinatorAccess::wrap(
      std::make_shared<detail::CoordinatorCore>(config, make_null_resource_manager));
}

TEST(Transaction, MovedFromHoldsNothingAndRefusesWork) {
  auto dir = test::fresh_dir("api");
  Coordinator coord = null_coordinator(dir);
  Transaction tx = coord.begin();
  const std::string id = tx.id();
  tx.execute("a", "UPDATE t SET x = 1");
  Transaction moved = std::move(tx);

  EXPECT_EQ(moved.id(), id);
  EXPECT_TRUE(tx.id().empty());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(tx.state(), TransactionState::rolled_back);
  EXPECT_TRUE(tx.resources().empty());
  EXPECT_NO_THROW(tx.rollback());
  try {
    tx.execute("a", "UPDATE t SET x = 2");
    FAIL() << "execute on a moved-from Transaction did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::usage);
    EXPECT_NE(std::string(e.what()).find("moved from"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tx.commit(), Error);

  moved.execute("b", "UPDATE t SET x = 3");
  moved.commit();  // the transaction itself went with the move
  EXPECT_EQ(moved.state(), TransactionState::committed);
}

}  // namespace
}  // namespace dtx
