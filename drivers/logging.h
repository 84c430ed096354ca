// The library's logger: named "dtx", writes to stderr (stdout belongs to the
// program), level from DTX_LOG_LEVEL (trace, debug, info, warn, error, off;
// default warn). Every line about a transaction starts with its gtrid.
// Passwords never reach it.
#pragma once

#include <spdlog/logger.h>

namespace dtx {

spdlog::logger& logger();

}  // namespace dtx
