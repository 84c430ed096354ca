// dtx serve — the daemon: recovery passes, the SQL admin console, metrics
// (server/serve.h; docs/admin-console.md).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include <CLI/CLI.hpp>

#include "dtx/config.h"
#include "dtx/error.h"
#include "dtx/logging.h"
#include "server/serve.h"
#include "tools/commands.h"

namespace dtx::cli {

namespace {

// A daemon's log: one line per event on stderr, with a UTC timestamp and the
// level; info by default (every admin command, every pass that left
// something), DTX_LOG_LEVEL to change it.
void log_to_stderr() {
  LogLevel min = LogLevel::info;
  if (const char* v = std::getenv("DTX_LOG_LEVEL")) {
    const std::string level = v;
    for (auto [name, value] : {std::pair{"trace", LogLevel::trace}, {"debug", LogLevel::debug},
                               {"info", LogLevel::info}, {"warn", LogLevel::warn}, {"warning", LogLevel::warn},
                               {"error", LogLevel::error}, {"off", LogLevel::off}})
      if (level == name) min = value;
  }
  set_log_handler(
      [](LogLevel level, std::string_view line) {
        static const char* names[] = {"trace", "debug", "info", "warn", "error", "off"};
        const auto now = std::chrono::system_clock::now();
        const std::time_t t = std::chrono::system_clock::to_time_t(now);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
        char stamp[40];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
        char msbuf[8];
        std::snprintf(msbuf, sizeof msbuf, ".%03dZ", static_cast<int>(ms));
        std::string out = std::string(stamp) + msbuf + " " + names[static_cast<int>(level)] + " " +
                          std::string(line) + "\n";
        std::fwrite(out.data(), 1, out.size(), stderr);  // one write per line: lines never interleave
      },
      min);
}

}  // namespace

std::function<int()> add_serve_command(CLI::App& app) {
  auto config_path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Run until SIGTERM/SIGINT: a recovery pass every recovery_interval_s, the SQL admin console "
      "([admin], PostgreSQL protocol: psql, libpq, JDBC...) and Prometheus metrics ([metrics])");
  cmd->add_option("--config,-c", *config_path, "TOML configuration file")->required();
  cmd->footer("Prints one line per listener and then \"dtx serve: ready\". Exit status: 0 after a clean "
              "stop, 2 for a configuration error or a port that cannot be bound.");
  return [config_path] {
    try {
      log_to_stderr();
      Config config = load_config(*config_path);
      return server::serve(config, {.say = [](const std::string& line) {
                                      std::cout << "dtx serve: " << line << std::endl;
                                    }});
    } catch (const Error& e) {
      std::cerr << "dtx serve: " << e.what() << "\n";
      return e.code() == Errc::config || e.code() == Errc::usage ? kExitUsage : kExitFailed;
    }
  };
}

}  // namespace dtx::cli
