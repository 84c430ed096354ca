// dtx serve's Prometheus endpoint: GET /metrics answers dtx::metrics_text()
// (include/dtx/metrics.h) over HTTP/1.1, with Boost.Beast on the server's
// io_context. Nothing else is served.
#pragma once

#include <memory>

#include "dtx/config.h"

namespace boost::asio {
class io_context;
}

namespace dtx::server {

class MetricsEndpoint {
 public:
  MetricsEndpoint(boost::asio::io_context& io, MetricsConfig config);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Binds and starts serving; returns the address bound (port 0 picks one).
  // Throws dtx::Error(Errc::config) naming the address when it cannot bind.
  ListenAddress start();
  // Stops accepting and closes open connections. Thread-safe.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dtx::server
