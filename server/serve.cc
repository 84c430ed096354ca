// dtx serve.
//
// One io_context run by `io_threads` threads carries every socket: the SQL
// admin console (admin_server.h) when [admin] is configured, the Prometheus
// endpoint (metrics_endpoint.h) when [metrics] is. Work that blocks on a
// database — admin statements, recovery passes — runs on a separate pool of
// `work_threads`, so a slow or unreachable database never stalls the
// protocol side.
//
// Recovery: a pass when the server starts ("startup"), then one every
// [coordinator] recovery_interval_s after the previous one ended ("timer";
// 0 = only on demand, CALL recover()). Passes go through the admin console's
// admin::Console, which never runs two at once and keeps the recent ones for
// the recovery_passes view, whoever asked for them.
//
// Shutdown: SIGTERM or SIGINT stops the listeners and the timer; idle admin
// sessions are told (57P01) and closed; a running statement or pass is
// finished first (each holds a work guard on the io_context, so its answer
// is still delivered). serve() returns when nothing is left.
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include "server/serve.h"

#include <csignal>
#include <optional>
#include <thread>

#include <boost/asio.hpp>

#include "admin/console.h"
#include "base/logging.h"
#include "server/admin_server.h"
#include "server/metrics_endpoint.h"

namespace dtx::server {

namespace asio = boost::asio;

namespace {

// The recovery timer: one pass at a time, the next one an interval after the
// previous ended.
class RecoveryTimer {
 public:
  RecoveryTimer(asio::io_context& io, asio::thread_pool& work, admin::Console& console, int interval_s)
      : io_(io), work_(work), console_(console), timer_(asio::make_strand(io)), interval_s_(interval_s) {}

  void start() { run("startup"); }
  void stop() {
    asio::post(timer_.get_executor(), [this] {
      stopped_ = true;
      timer_.cancel();
    });
  }

 private:
  void run(const char* trigger) {
    asio::post(work_, [this, trigger, guard = asio::make_work_guard(io_)] {
      try {
        RecoveryReport report = console_.recovery_pass(false, trigger);
        if (!report.settled())
          logger().info("recovery pass ({}): {} branch(es) left in doubt, {} error(s)", trigger,
                        report.left_in_doubt(), report.errors.size());
      } catch (const std::exception& e) {
        // A pass reports database and log problems in its report; anything
        // else must not stop the timer (the next pass may well succeed).
        logger().error("recovery pass ({}) failed: {}", trigger, e.what());
      }
      asio::post(timer_.get_executor(), [this] { schedule(); });
    });
  }
  void schedule() {
    if (stopped_ || interval_s_ <= 0) return;
    timer_.expires_after(std::chrono::seconds(interval_s_));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !stopped_) run("timer");
    });
  }

  asio::io_context& io_;
  asio::thread_pool& work_;
  admin::Console& console_;
  asio::steady_timer timer_;
  int interval_s_;
  bool stopped_ = false;  // touched on the timer's executor only
};

}  // namespace

int serve(const Config& config, const ServeOptions& options) {
  asio::io_context io;
  asio::thread_pool work(static_cast<std::size_t>(std::max(1, options.work_threads)));
  admin::ConsoleOptions console_options;
  if (config.admin) console_options.statement_timeout = config.admin->statement_timeout;
  admin::Console console(config, console_options);

  std::optional<AdminServer> admin;
  std::optional<MetricsEndpoint> metrics;
  if (config.admin) {
    admin.emplace(io, work, console, *config.admin);
    ListenAddress bound = admin->start();
    options.say("admin console on " + bound.to_string() + " (" +
                (config.admin->auth == AdminConfig::Auth::trust ? "trust" : "scram-sha-256") + ", user " +
                config.admin->user + ")");
  }
  if (config.metrics) {
    metrics.emplace(io, *config.metrics);
    ListenAddress bound = metrics->start();
    options.say("metrics on http://" + bound.to_string() + "/metrics");
  }
  RecoveryTimer recovery(io, work, console, config.coordinator.recovery_interval_s);
  recovery.start();
  options.say(config.coordinator.recovery_interval_s > 0
                  ? "recovery pass every " + std::to_string(config.coordinator.recovery_interval_s) + " s"
                  : "recovery passes on demand only (recovery_interval_s = 0)");

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    logger().info("dtx serve: {} received, stopping", signal == SIGINT ? "SIGINT" : "SIGTERM");
    recovery.stop();
    if (admin) admin->stop();
    if (metrics) metrics->stop();
  });
  options.say("ready");

  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, options.io_threads); ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  work.join();
  return 0;
}

}  // namespace dtx::server
