// The library's logger, internal to dtx: one spdlog logger of its own (never
// registered in spdlog's global registry, so an application's logger named
// "dtx" is left alone), whose single sink writes to stderr or forwards to the
// handler an application installed with dtx::set_log_handler (dtx/logging.h).
// Every line about a transaction starts with its gtrid. Passwords never reach it.
#pragma once

#include <spdlog/logger.h>

#include "dtx/logging.h"

namespace dtx {

spdlog::logger& logger();

// The level of the stderr log when DTX_LOG_LEVEL does not name one: warn,
// unless a program says otherwise (dtx serve, a daemon, says info).
void set_default_log_level(LogLevel level);

}  // namespace dtx
