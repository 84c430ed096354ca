// dtx serve — the daemon: recovery passes, the SQL admin console, metrics
// (server/serve.h; docs/admin-console.md).
#include <iostream>

#include <CLI/CLI.hpp>

#include "dtx/config.h"
#include "dtx/error.h"
#include "base/logging.h"
#include "server/serve.h"
#include "tools/commands.h"

namespace dtx::cli {

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
      // A daemon's log: every admin command and every pass that left
      // something is worth a line (DTX_LOG_LEVEL still decides when set).
      set_default_log_level(LogLevel::info);
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
