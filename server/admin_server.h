// The SQL admin console's network side: PostgreSQL protocol v3 sessions on
// a TCP port, each served by an admin::ConsoleSession. The mechanism is
// described at the top of admin_server.cc; docs/admin-console.md is the
// user's guide.
#pragma once

#include <memory>

#include "dtx/config.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace dtx::admin {
class Console;
}

namespace dtx::server {

class AdminServer {
 public:
  // `io` runs the sessions' protocol work, `work` the statements (which block
  // on databases). Both, and `console`, must outlive the server.
  AdminServer(boost::asio::io_context& io, boost::asio::thread_pool& work, admin::Console& console,
              AdminConfig config);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and starts accepting; returns the address bound (port 0 in the
  // configuration picks a free port). Throws dtx::Error(Errc::config) naming
  // the address when it cannot bind.
  ListenAddress start();

  // Stops accepting. Idle sessions are told the server is shutting down
  // (57P01) and closed; a session running a statement finishes it, sends its
  // result, and is then closed the same way. Thread-safe; returns at once
  // (the io_context runs out of work once every session has ended).
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dtx::server
