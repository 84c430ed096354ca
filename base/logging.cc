#include "base/logging.h"

#include <cstdlib>
#include <memory>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace dtx {

namespace {

LogLevel from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return LogLevel::trace;
    case spdlog::level::debug: return LogLevel::debug;
    case spdlog::level::info: return LogLevel::info;
    case spdlog::level::warn: return LogLevel::warn;
    case spdlog::level::err:
    case spdlog::level::critical: return LogLevel::error;
    default: return LogLevel::off;
  }
}

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::off: break;
  }
  return spdlog::level::off;
}

// Stderr, or the application's handler. base_sink's mutex orders a handler
// swap against every line being written.
class SwitchSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SwitchSink() : stderr_(std::make_unique<spdlog::sinks::stderr_color_sink_st>()) {
    stderr_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dtx[%P]: %v");
  }

  void set_handler(LogHandler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (handler_)
      handler_(from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
    else
      stderr_->log(msg);
  }
  void flush_() override { stderr_->flush(); }
  void set_pattern_(const std::string&) override {}
  void set_formatter_(std::unique_ptr<spdlog::formatter>) override {}

 private:
  std::unique_ptr<spdlog::sinks::stderr_color_sink_st> stderr_;
  LogHandler handler_;
};

struct Instance {
  std::shared_ptr<SwitchSink> sink = std::make_shared<SwitchSink>();
  spdlog::logger logger{"dtx", sink};
  spdlog::level::level_enum default_level = spdlog::level::warn;
  Instance() { use_stderr_level(); }
  void use_stderr_level() {
    const char* level = std::getenv("DTX_LOG_LEVEL");
    logger.set_level(level ? spdlog::level::from_str(level) : default_level);
  }
};

Instance& instance() {
  static Instance* i = new Instance;  // never destroyed: threads may log during exit
  return *i;
}

}  // namespace

spdlog::logger& logger() { return instance().logger; }

void set_log_handler(LogHandler handler, LogLevel min_level) {
  Instance& i = instance();
  const bool restoring = !handler;
  i.sink->set_handler(std::move(handler));
  if (restoring) {
    i.use_stderr_level();
  } else {
    i.logger.set_level(to_spdlog(min_level));
  }
}

void set_default_log_level(LogLevel level) {
  Instance& i = instance();
  i.default_level = to_spdlog(level);
  i.use_stderr_level();
}

}  // namespace dtx
