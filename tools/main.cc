// dtx — command-line tool for dtx global transactions.
#include <iostream>

#include <CLI/CLI.hpp>

#include "coordinator/failpoint.h"
#include "dtx/error.h"
#include "dtx/version.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"dtx: two-phase commit across MySQL/MariaDB and PostgreSQL"};
  app.set_version_flag("--version", dtx::kVersion);
  app.require_subcommand(1);
  app.footer("Exit status: 0 ok, 1 failed (rolled back), 2 usage or config error, 3 in doubt;\n"
             "dtx exec interrupted by a signal: 128 + the signal number.\n"
             "Run `dtx <command> --help` for a command's options.");
  auto run_exec = dtx::cli::add_exec_command(app);
  auto run_recovery = dtx::cli::add_recovery_commands(app);
  auto run_bench = dtx::cli::add_bench_command(app);
  auto run_serve = dtx::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "dtx: " << e.what() << "\n" << "Run `dtx --help` for usage.\n";
    return dtx::cli::kExitUsage;
  }
  // Failpoints are armed by the dtx tool only (recovery drills, crash
  // tests): an application linking libdtx is never killed by DTX_FAILPOINT.
  try {
    dtx::arm_failpoint_from_environment();
  } catch (const dtx::Error& e) {
    std::cerr << "dtx: " << e.what() << "\n";
    return dtx::cli::kExitUsage;
  }
  if (app.got_subcommand("exec")) return run_exec();
  if (app.got_subcommand("bench")) return run_bench();
  if (app.got_subcommand("serve")) return run_serve();
  return run_recovery();
}
