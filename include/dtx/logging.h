// Where the library's log lines go.
//
// By default dtx writes to stderr (stdout belongs to the program), at the
// level DTX_LOG_LEVEL names (trace, debug, info, warn, error, off; default
// warn). It never touches the application's own loggers or spdlog's registry.
// An application that wants the lines in its own logging calls
// set_log_handler once, before or after building Coordinators:
//
//   dtx::set_log_handler([](dtx::LogLevel level, std::string_view line) {
//     my_log(level, "dtx: {}", line);
//   }, dtx::LogLevel::info);
//
// Every line about a transaction starts with its global id. Passwords never
// reach the log. The handler is called from whichever thread logs (the
// application's, the fan-out pool's, the recovery thread) and must not call
// back into dtx.
#pragma once

#include <functional>
#include <string_view>

namespace dtx {

enum class LogLevel { trace, debug, info, warn, error, off };

using LogHandler = std::function<void(LogLevel level, std::string_view line)>;

// Sends every line at `min_level` or above to `handler` instead of stderr.
// An empty handler restores stderr. Thread-safe.
void set_log_handler(LogHandler handler, LogLevel min_level = LogLevel::info);

}  // namespace dtx
