// Subcommands of the dtx tool. Each registers itself on the CLI11 app and
// returns the process exit status from its run function.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace dtx::cli {

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the operation failed (and was undone)
inline constexpr int kExitUsage = 2;   // bad command line or configuration
inline constexpr int kExitInDoubt = 3; // decision durable, completion left to recovery

// Adds `dtx exec` to `app`; the returned function runs it once parsed.
std::function<int()> add_exec_command(CLI::App& app);
// Adds `dtx recover`, `dtx in-doubt`, `dtx commit` and `dtx rollback`.
std::function<int()> add_recovery_commands(CLI::App& app);
// Adds `dtx bench`.
std::function<int()> add_bench_command(CLI::App& app);
// Adds `dtx serve`.
std::function<int()> add_serve_command(CLI::App& app);

}  // namespace dtx::cli
