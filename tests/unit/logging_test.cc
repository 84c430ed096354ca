// The library's logging never reconfigures the application's loggers, and an
// application can take the lines with set_log_handler.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <string>
#include <vector>

#include "base/logging.h"
#include "dtx/logging.h"

namespace dtx {
namespace {

TEST(Logging, LeavesAnApplicationLoggerNamedDtxAlone) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto app = std::make_shared<spdlog::logger>("dtx", sink);
  app->set_level(spdlog::level::trace);
  app->set_pattern("APP %v");
  spdlog::register_logger(app);

  logger().warn("library line");

  EXPECT_EQ(app->level(), spdlog::level::trace);  // not reset to warn
  app->info("app line");
  EXPECT_EQ(out.str(), "APP app line\n");         // its pattern kept, the library's line not in it
  EXPECT_NE(&logger(), app.get());
  spdlog::drop("dtx");
}

TEST(Logging, HandlerReceivesLinesAtItsLevelAndCanBeRemoved) {
  std::vector<std::pair<LogLevel, std::string>> got;
  set_log_handler([&](LogLevel level, std::string_view line) { got.emplace_back(level, line); },
                  LogLevel::info);
  logger().debug("below the level");
  logger().info("gtrid x.1: {}", "hello");
  logger().error("bad");
  set_log_handler(nullptr);
  logger().error("to stderr again");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, LogLevel::info);
  EXPECT_EQ(got[0].second, "gtrid x.1: hello");
  EXPECT_EQ(got[1].first, LogLevel::error);
}

}  // namespace
}  // namespace dtx
