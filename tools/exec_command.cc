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
//   SIGINT / SIGTERM:   what the interruption leaves, on stderr; exit 128 + the
//                       signal number (130, 143)
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
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

// What an interruption leaves, for the phase the transaction is in: set by
// run_exec before each phase, written by the signal handler, which then ends
// the process (its connections close: the databases roll back every branch
// that is not prepared; a prepared one waits for `dtx recover`).
std::atomic<const char*> interrupt_message{nullptr};
static_assert(std::atomic<const char*>::is_always_lock_free);

extern "C" void on_interrupt(int sig) {
  if (const char* message = interrupt_message.load()) {
    std::size_t left = std::strlen(message);
    while (left > 0) {
      const ssize_t n = ::write(STDERR_FILENO, message, left);
      if (n <= 0) break;
      message += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  ::_exit(128 + sig);
}

// Sets the handler of SIGINT and SIGTERM to on_interrupt.
void handle_interrupts() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  sigaddset(&action.sa_mask, SIGINT);  // one message, whichever comes second
  sigaddset(&action.sa_mask, SIGTERM);
  for (int sig : {SIGINT, SIGTERM}) ::sigaction(sig, &action, nullptr);
}

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
  const std::string running =
      "dtx exec: interrupted before the commit; nothing was prepared: the databases roll the branches "
      "back as the connections close\nrolled back " + tx.id() + "\n";
  const std::string committing =
      "dtx exec: interrupted during the commit of " + tx.id() +
      ": branches may be prepared, or committed on some resources; run `dtx recover --config " +
      options.config + "` to finish it\nin doubt " + tx.id() + "\n";
  const std::string committed = "dtx exec: interrupted after " + tx.id() + " was committed\n";
  struct Silence {  // the messages die with this function
    ~Silence() { interrupt_message = nullptr; }
  } silence;
  interrupt_message = running.c_str();
  handle_interrupts();
  std::size_t n = 0;
  try {
    for (n = 0; n < statements.size(); ++n) {
      Result r = tx.execute(statements[n].resource, statements[n].sql);
      if (!r.columns().empty()) print_rows(r);
    }
    interrupt_message = committing.c_str();  // from here on until the end
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
  interrupt_message = committed.c_str();
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
              "statement and `rolled back <gtrid>` on stderr (exit 1). Config errors exit 2.\n"
              "Interrupted (SIGINT, SIGTERM): says what is left, exit 128 + the signal number.");
  return [options] { return run_exec(*options); };
}

}  // namespace dtx::cli
