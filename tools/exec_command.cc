// dtx exec --config FILE RESOURCE=SQL [RESOURCE=SQL ...]
//
// Runs the statements, in the order given, as one global transaction; several
// may name the same resource. The resource is the text before the first '='.
//   success:            rows of any query to stdout (tab-separated), then
//                       "committed <gtrid>" on stdout; exit 0
//   a statement failed: which resource/statement and the server's error, then
//                       "rolled back <gtrid>", on stderr; exit 1
//   in doubt:           the decision is durable but a branch is not committed
//                       yet: "in doubt <gtrid>" on stderr; exit 3
//   usage/config error: message on stderr; exit 2
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dtx/dtx.h"
#include "tools/commands.h"

namespace dtx::cli {

namespace {

struct ExecOptions {
  std::string config;
  std::vector<std::string> statements;
  long timeout_ms = 0;
};

struct Statement {
  std::string resource;
  std::string sql;
};

void print_rows(const Result& result) {
  for (const Row& row : result) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) std::cout << '\t';
      std::cout << (row.is_null(i) ? "NULL" : row.text(i));
    }
    std::cout << '\n';
  }
}

int run_exec(const ExecOptions& options) {
  std::vector<Statement> statements;
  for (const auto& arg : options.statements) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "dtx exec: '" << arg << "' is not RESOURCE=SQL\n";
      return kExitUsage;
    }
    statements.push_back({arg.substr(0, eq), arg.substr(eq + 1)});
  }

  std::optional<Coordinator> coordinator;
  try {
    Config config = load_config(options.config);
    for (const auto& s : statements) config.resource(s.resource);  // unknown names fail before any work
    config.coordinator.recovery_interval_s = 0;  // short-lived: `dtx recover` does recovery
    coordinator.emplace(std::move(config));
  } catch (const Error& e) {
    std::cerr << "dtx exec: " << e.what() << "\n";
    return e.code() == Errc::config ? kExitUsage : kExitFailed;
  }

  Transaction tx = coordinator->begin({.timeout = std::chrono::milliseconds(options.timeout_ms)});
  std::size_t n = 0;
  try {
    for (n = 0; n < statements.size(); ++n) {
      Result r = tx.execute(statements[n].resource, statements[n].sql);
      if (!r.columns().empty()) print_rows(r);
    }
    tx.commit();
  } catch (const Error& e) {
    if (e.code() == Errc::in_doubt) {
      std::cerr << "dtx exec: " << e.what() << "\n" << "in doubt " << tx.id() << "\n";
      return kExitInDoubt;
    }
    if (n < statements.size())
      std::cerr << "dtx exec: statement " << n + 1 << " on " << statements[n].resource
                << " failed: " << statements[n].sql << "\n";
    std::cerr << "dtx exec: " << e.what() << "\n";
    try {
      if (tx.state() == TransactionState::active) tx.rollback();
    } catch (const Error& re) {
      std::cerr << "dtx exec: rollback: " << re.what() << "\n";
    }
    if (tx.state() == TransactionState::in_doubt) {
      std::cerr << "in doubt " << tx.id() << "\n";
      return kExitInDoubt;
    }
    std::cerr << "rolled back " << tx.id() << "\n";
    return kExitFailed;
  }
  std::cout << "committed " << tx.id() << std::endl;
  return kExitOk;
}

}  // namespace

std::function<int()> add_exec_command(CLI::App& app) {
  auto options = std::make_shared<ExecOptions>();
  CLI::App* cmd = app.add_subcommand(
      "exec", "Run RESOURCE=SQL statements as one global (XA) transaction, in the order given");
  cmd->add_option("--config,-c", options->config, "TOML configuration file")->required();
  cmd->add_option("--timeout-ms", options->timeout_ms,
                  "transaction timeout (default: [coordinator] default_timeout_ms)");
  cmd->add_option("statements", options->statements,
                  "RESOURCE=SQL; the resource is the text before the first '='")
      ->required();
  cmd->footer("Prints `committed <gtrid>` (exit 0) or, on any failure, the failing resource and\n"
              "statement and `rolled back <gtrid>` on stderr (exit 1). Config errors exit 2.");
  return [options] { return run_exec(*options); };
}

}  // namespace dtx::cli
