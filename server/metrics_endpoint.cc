// dtx serve's Prometheus endpoint.
//
// One coroutine per connection on its own strand of the server's io_context:
// read a request (headers at most 8 KiB, no body accepted, 10 s to arrive),
// answer, and keep the connection for the next scrape (Prometheus keeps it
// alive) until it has been idle for 60 s. GET or HEAD /metrics answers the
// text exposition format 0.0.4 built by dtx::metrics_text(); / says where the
// metrics are; anything else is 404 or 405. The text is rendered per request
// from the process-wide registry, so a scrape sees the counters of that
// instant and costs nothing between scrapes.
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include "server/metrics_endpoint.h"

#include <map>
#include <mutex>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/logging.h"
#include "dtx/error.h"
#include "dtx/metrics.h"
#include "dtx/version.h"
#include "server/listen.h"

namespace dtx::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr auto kKeepAlive = std::chrono::seconds(60);

http::response<http::string_body> answer(const http::request<http::empty_body>& request) {
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.set(http::field::server, std::string("dtx/") + kVersion);
  const bool get = request.method() == http::verb::get || request.method() == http::verb::head;
  const std::string_view target(request.target().data(), request.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics" && get) {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.body() = metrics_text();
  } else if (path == "/" && get) {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "dtx serve: Prometheus metrics at /metrics\n";
  } else if (path == "/metrics" || path == "/") {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET, HEAD");
    response.body() = "only GET and HEAD\n";
  } else {
    response.result(http::status::not_found);
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "not found: dtx serves /metrics\n";
  }
  response.prepare_payload();
  if (request.method() == http::verb::head) {
    const auto length = response.body().size();
    response.body().clear();
    response.content_length(length);
  }
  return response;
}

}  // namespace

struct MetricsEndpoint::Impl : std::enable_shared_from_this<MetricsEndpoint::Impl> {
  Impl(asio::io_context& io_, MetricsConfig config_) : io(io_), config(std::move(config_)), acceptor(io_) {}

  asio::io_context& io;
  MetricsConfig config;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::map<beast::tcp_stream*, std::weak_ptr<beast::tcp_stream>> connections;

  awaitable<void> accept_loop();
  awaitable<void> serve(std::shared_ptr<beast::tcp_stream> stream);
};

awaitable<void> MetricsEndpoint::Impl::serve(std::shared_ptr<beast::tcp_stream> stream) {
  auto self = shared_from_this();
  beast::flat_buffer buffer;
  try {
    for (bool first = true;; first = false) {
      stream->expires_after(first ? kRequestTimeout : kKeepAlive);
      http::request_parser<http::empty_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(0);
      co_await http::async_read(*stream, buffer, parser, use_awaitable);
      stream->expires_after(kRequestTimeout);
      auto response = answer(parser.get());
      co_await http::async_write(*stream, response, use_awaitable);
      if (!response.keep_alive() || stopping) break;
    }
  } catch (const std::exception& e) {
    // The peer closed, a timeout, or a malformed request: this connection ends.
    logger().debug("metrics endpoint: connection ended: {}", e.what());
  }
  boost::system::error_code ignored;
  stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream->socket().close(ignored);
  std::lock_guard lock(mu);
  connections.erase(stream.get());
}

awaitable<void> MetricsEndpoint::Impl::accept_loop() {
  auto self = shared_from_this();
  while (!stopping) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::make_strand(io), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      logger().warn("metrics endpoint: accept failed: {}", ec.message());
      continue;
    }
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    {
      std::lock_guard lock(mu);
      connections[stream.get()] = stream;
    }
    asio::co_spawn(stream->get_executor(), serve(stream), asio::detached);
  }
}

MetricsEndpoint::MetricsEndpoint(asio::io_context& io, MetricsConfig config)
    : impl_(std::make_shared<Impl>(io, std::move(config))) {}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

ListenAddress MetricsEndpoint::start() {
  Impl& s = *impl_;
  ListenAddress bound = listen_on(s.acceptor, s.config.listen, "metrics",
                                  "is another process listening there? change [metrics] listen");
  asio::co_spawn(s.acceptor.get_executor(), s.accept_loop(), asio::detached);
  return bound;
}

void MetricsEndpoint::stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(impl_->acceptor.get_executor(), [impl = impl_] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<beast::tcp_stream>> live;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [ptr, weak] : impl_->connections)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& stream : live)
    asio::post(stream->get_executor(), [stream] {
      boost::system::error_code ignored;
      stream->socket().cancel(ignored);
    });
}

}  // namespace dtx::server
