#include "drivers/logging.h"

#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace dtx {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = spdlog::get("dtx");
    if (!l) l = spdlog::stderr_color_mt("dtx");
    const char* level = std::getenv("DTX_LOG_LEVEL");
    l->set_level(level ? spdlog::level::from_str(level) : spdlog::level::warn);
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dtx[%P]: %v");
    return l;
  }();
  return *instance;
}

}  // namespace dtx
