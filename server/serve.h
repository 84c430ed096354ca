// dtx serve: the long-lived process beside applications and short-lived
// `dtx exec` clients. The mechanism is described at the top of serve.cc.
#pragma once

#include <functional>
#include <string>

#include "dtx/config.h"

namespace dtx::server {

struct ServeOptions {
  int io_threads = 2;    // protocol work (sockets, timers)
  int work_threads = 8;  // statements and recovery passes, which block on databases
  // Called once everything listens, with one line per fact (addresses bound,
  // recovery interval); `dtx serve` prints them.
  std::function<void(const std::string& line)> say = [](const std::string&) {};
};

// Serves until SIGTERM or SIGINT, then finishes what it is doing (running
// statements answer, a running recovery pass completes) and returns 0.
// Throws dtx::Error (Errc::config) when a port cannot be bound.
int serve(const Config& config, const ServeOptions& options = {});

}  // namespace dtx::server
