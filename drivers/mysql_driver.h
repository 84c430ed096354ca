// MySQL / MariaDB resource-manager driver (Connector/C++ 1.1). See docs/drivers.md.
#pragma once

#include <memory>

#include "drivers/resource_manager.h"

namespace dtx {

// Opens one session on `config`. Throws Errc::unavailable (server message
// filled in) when the server cannot be reached, Errc::misconfigured when it
// would roll back prepared branches at disconnect. Any thread may call it and
// use the session afterwards: the Connector/C++ per-thread setup is done here.
std::unique_ptr<Session> connect_mysql(const ResourceConfig& config);

}  // namespace dtx
