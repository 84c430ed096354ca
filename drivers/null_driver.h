// A resource manager whose sessions do nothing and never fail: the other side
// of `dtx bench --null-rm`, which measures the coordinator's own costs (ids,
// state machine, fan-out, decision log with real fdatasync) without a database.
#pragma once

#include <memory>

#include "drivers/resource_manager.h"

namespace dtx {

std::unique_ptr<ResourceManager> make_null_resource_manager(const ResourceConfig& config);

}  // namespace dtx
