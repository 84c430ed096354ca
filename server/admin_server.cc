// The SQL admin console's network side: PostgreSQL protocol v3 over TCP.
//
// Threads. One io_context, run by a few threads, does all socket work; each
// connection is one C++20 coroutine (Session::run) on its own strand, so a
// session's socket, timer and state are only touched from that strand and
// need no lock. Statements block on databases (a scan reads every resource),
// so they run on a separate thread pool (`work`), and the coroutine waits for
// them without holding an io thread (run_blocking). A slow scan therefore
// never delays another session's protocol traffic.
//
// A connection's life:
//   startup   SSLRequest / GSSENCRequest are answered 'N' (no encryption) and
//             the client sends its StartupMessage in clear; a CancelRequest
//             interrupts the statement running in the session whose
//             BackendKeyData it quotes, then the connection closes. Protocol
//             3.x only. A connection beyond max_sessions, or arriving while
//             the server stops, gets a FATAL error.
//   auth      scram-sha-256: AuthenticationSASL, two SCRAM round trips
//             (pgwire/scram.h). A wrong user and a wrong password end the
//             same way (the unknown user gets a made-up exchange) with one
//             error, 28P01, compared in constant time; addresses that failed
//             recently are spaced out (auth_throttle.h). trust: only on a
//             loopback address (refused at configuration), user must match.
//             The whole startup is bounded by auth_timeout_s.
//   ready     ParameterStatus (server_version looks like PostgreSQL 15's so
//             psql does not warn; encodings UTF8 whatever the client asked,
//             the only one spoken), BackendKeyData, ReadyForQuery.
//   queries   Simple query: the string is split into statements, each run in
//             turn; the first error ends the string (ErrorResponse), then
//             ReadyForQuery with the console's transaction status. Extended
//             query: Parse/Bind/Describe/Execute/Close with named and unnamed
//             statements and portals, Flush, Sync; after an error, messages
//             are skipped until Sync, as PostgreSQL does. Parameters in text
//             format only (binary parameters are refused with 0A000); results
//             in text, or binary for the four column types when asked.
//             A portal's rows are materialized when it first executes, so
//             Execute with a row limit answers PortalSuspended and resumes.
//   end       Terminate, the client closing, idle_timeout_s without a
//             message (FATAL 57P05), a malformed message (FATAL 08P01: only
//             that session ends), or server shutdown (FATAL 57P01 once the
//             running statement has answered).
// Reads and writes are bounded by a per-session timer (arm/disarm): the
// startup by auth_timeout_s, an idle wait by idle_timeout_s, a write by
// kWriteTimeout, so a client that stops reading cannot hold a session.
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include "server/admin_server.h"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "admin/console.h"
#include "base/logging.h"
#include "dtx/error.h"
#include "metrics/metrics.h"
#include "pgwire/protocol.h"
#include "pgwire/scram.h"
#include "server/auth_throttle.h"
#include "server/listen.h"

namespace dtx::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kWriteTimeout = std::chrono::seconds(30);

// Runs `fn` on `pool`; awaiting the result resumes the calling coroutine on
// `ex` (its strand) with fn's result or exception. Not a coroutine itself,
// and callers pass a named function object: GCC 12 destroys temporaries
// captured in a co_await full-expression twice.
template <class F>
auto run_blocking(asio::thread_pool& pool, tcp::socket::executor_type ex, F fn) {
  using R = std::invoke_result_t<F>;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
      [&pool, ex](auto handler, F f) {
        // The guard keeps the io_context running until the answer is delivered,
        // even when the server is stopping.
        asio::post(pool, [handler = std::move(handler), f = std::move(f), ex,
                          guard = asio::make_work_guard(ex)]() mutable {
          std::exception_ptr error;
          R result{};
          try {
            result = f();
          } catch (...) {
            error = std::current_exception();
          }
          asio::post(ex, [handler = std::move(handler), error, result = std::move(result)]() mutable {
            handler(error, std::move(result));
          });
        });
      },
      use_awaitable, std::move(fn));
}

pgwire::ErrorFields error_fields(std::string sqlstate, std::string message, std::string detail = {},
                                 std::string hint = {}, std::string severity = "ERROR") {
  return {.severity = std::move(severity), .sqlstate = std::move(sqlstate), .message = std::move(message),
          .detail = std::move(detail), .hint = std::move(hint)};
}

pgwire::ErrorFields fatal(std::string sqlstate, std::string message, std::string hint = {}) {
  return error_fields(std::move(sqlstate), std::move(message), {}, std::move(hint), "FATAL");
}

// A statement or protocol error answered with ErrorResponse; the session goes on.
struct ClientError {
  pgwire::ErrorFields fields;
};

std::uint32_t type_oid(admin::ColumnType type) { return admin::postgres_type_oid(type); }

// One value in binary format for its column type (text format is what the
// console produced). Throws ClientError if the text does not fit the type.
std::string to_binary(std::uint32_t oid, const std::string& text) {
  auto be = [](std::uint64_t v, int bytes) {
    std::string out(bytes, '\0');
    for (int i = bytes - 1; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
    return out;
  };
  try {
    switch (oid) {
      case pgwire::kBool: return std::string(1, text == "t" || text == "true" || text == "1" ? 1 : 0);
      case pgwire::kInt8: {
        std::size_t used = 0;
        long long v = std::stoll(text, &used);
        if (used != text.size()) break;
        return be(static_cast<std::uint64_t>(v), 8);
      }
      case pgwire::kFloat8: {
        std::size_t used = 0;
        double v = std::stod(text, &used);
        if (used != text.size()) break;
        std::uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        return be(bits, 8);
      }
      default: return text;
    }
  } catch (const std::exception&) {
  }
  throw ClientError{error_fields("22P02", "value \"" + text.substr(0, 40) +
                                              "\" cannot be sent in binary format for its column type",
                                 {}, "ask for text format results")};
}

// The format code of result column `i` given a Bind's result_formats.
std::int16_t result_format(const std::vector<std::int16_t>& formats, std::size_t i) {
  if (formats.empty()) return 0;
  return formats.size() == 1 ? formats[0] : (i < formats.size() ? formats[i] : 0);
}

}  // namespace

class Session;

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  Impl(asio::io_context& io_, asio::thread_pool& work_, admin::Console& console_, AdminConfig config_)
      : io(io_), work(work_), console(console_), config(std::move(config_)), acceptor(io_) {}

  asio::io_context& io;
  asio::thread_pool& work;
  admin::Console& console;
  AdminConfig config;
  tcp::acceptor acceptor;
  AuthThrottle throttle;
  std::optional<pgwire::ScramSecret> secret;  // scram-sha-256: derived once at start
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open{0};

  std::mutex mu;  // guards sessions, connections and next_pid
  std::map<std::int32_t, std::weak_ptr<Session>> sessions;  // authenticated, by BackendKeyData pid
  std::map<const Session*, std::weak_ptr<Session>> connections;  // every live connection
  std::int32_t next_pid = 1;
  std::mt19937 random{std::random_device{}()};

  awaitable<void> accept_loop();
  void cancel(const pgwire::CancelRequest& request);
  void stop_sessions();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<AdminServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)), socket_(std::move(socket)), timer_(socket_.get_executor()),
        reader_(pgwire::kDefaultMaxMessage) {
    boost::system::error_code ec;
    auto endpoint = socket_.remote_endpoint(ec);
    address_ = ec ? "unknown" : endpoint.address().to_string();
    peer_ = ec ? "unknown" : address_ + ":" + std::to_string(endpoint.port());
  }

  awaitable<void> run();
  tcp::socket::executor_type executor() { return socket_.get_executor(); }

  // From any thread: interrupts the running statement (CancelRequest).
  void interrupt(std::int32_t secret) {
    if (secret == secret_ && console_) console_->interrupt();
  }
  // From any thread: ends the session once it is not running a statement.
  void stop() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      boost::system::error_code ignored;  // the session may have closed its socket already
      if (!self->busy_) self->socket_.cancel(ignored);
    });
  }

 private:
  awaitable<bool> startup();
  awaitable<bool> authenticate(const std::string& user);
  awaitable<void> serve();
  awaitable<void> simple_query(const pgwire::Query& query);
  awaitable<void> extended(pgwire::FrontendMessage& message);
  awaitable<admin::StatementResult> execute(std::string sql, std::vector<std::optional<std::string>> params = {},
                                            std::vector<std::uint32_t> types = {});

  // Reads until a whole startup packet / message is buffered. nullopt: the
  // connection ended or the deadline passed (timed_out_).
  awaitable<std::optional<pgwire::StartupPacket>> read_startup(Clock::time_point deadline);
  awaitable<std::optional<pgwire::FrontendMessage>> read_message(std::optional<Clock::time_point> deadline);
  awaitable<bool> read_more(std::optional<Clock::time_point> deadline);
  awaitable<void> flush();
  void arm(Clock::time_point deadline);
  void disarm();

  void send_error(const pgwire::ErrorFields& fields) { out_.error_response(fields); }
  void send_result(const admin::StatementResult& result);
  void describe_columns(const std::optional<std::vector<admin::Column>>& columns,
                        const std::vector<std::int16_t>& formats);
  void send_rows(const admin::StatementResult& result, std::size_t from, std::size_t to,
                 const std::vector<std::int16_t>& formats, const std::vector<std::uint32_t>& oids);

  std::shared_ptr<AdminServer::Impl> server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::uint64_t arm_generation_ = 0;
  bool timed_out_ = false;  // the armed deadline passed (the read or write was cancelled)
  pgwire::MessageReader reader_;
  pgwire::MessageWriter out_;
  std::string peer_, address_, user_;
  std::int32_t pid_ = 0, secret_ = 0;
  std::unique_ptr<admin::ConsoleSession> console_;  // set once authenticated, before registration
  bool busy_ = false;       // a statement is running
  bool stopping_ = false;   // the server is stopping: end after the current statement
  bool counted_ = false;    // counted in open (max_sessions)
  bool metered_ = false;    // authenticated: counted in dtx_admin_sessions

  // Extended query protocol state.
  struct Statement {
    std::string sql;  // empty: an empty query
    std::vector<std::uint32_t> param_types;
    admin::Description description;
  };
  struct Portal {
    std::shared_ptr<const Statement> statement;
    std::vector<std::optional<std::string>> params;
    std::vector<std::int16_t> result_formats;
    std::optional<admin::StatementResult> result;  // materialized on first Execute
    std::size_t next_row = 0;
  };
  std::map<std::string, std::shared_ptr<const Statement>> statements_;
  std::map<std::string, Portal> portals_;
  bool skipping_ = false;  // an extended-protocol error: ignore until Sync
};

// ---- reading, writing, timers ----

void Session::arm(Clock::time_point deadline) {
  const std::uint64_t generation = ++arm_generation_;
  timer_.expires_at(deadline);
  timer_.async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->arm_generation_ != generation) return;
    self->timed_out_ = true;
    boost::system::error_code ignored;
    self->socket_.cancel(ignored);
  });
}

void Session::disarm() {
  ++arm_generation_;
  timer_.cancel();
}

awaitable<bool> Session::read_more(std::optional<Clock::time_point> deadline) {
  char buffer[16 * 1024];
  if (deadline) arm(*deadline);
  boost::system::error_code ec;
  std::size_t n = co_await socket_.async_read_some(
      asio::buffer(buffer), asio::redirect_error(use_awaitable, ec));
  if (deadline) disarm();
  if (ec) co_return false;
  reader_.feed(std::string_view(buffer, n));
  co_return true;
}

awaitable<std::optional<pgwire::StartupPacket>> Session::read_startup(Clock::time_point deadline) {
  for (;;) {
    if (auto packet = reader_.next_startup()) co_return packet;
    if (!co_await read_more(deadline)) co_return std::nullopt;
  }
}

awaitable<std::optional<pgwire::FrontendMessage>> Session::read_message(std::optional<Clock::time_point> deadline) {
  for (;;) {
    if (auto message = reader_.next()) co_return message;
    if (stopping_) co_return std::nullopt;
    if (!co_await read_more(deadline)) co_return std::nullopt;
  }
}

awaitable<void> Session::flush() {
  if (out_.empty()) co_return;
  std::string data = out_.take();
  arm(Clock::now() + kWriteTimeout);
  boost::system::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
  disarm();
  if (ec) throw boost::system::system_error(ec);
}

// ---- the session ----

awaitable<void> Session::run() {
  auto self = shared_from_this();
  bool tell = false;  // a protocol error to answer (not inside the handler: no co_await there)
  try {
    if (co_await startup()) co_await serve();
  } catch (const pgwire::ProtocolError& e) {
    // A malformed message ends this session only.
    logger().info("admin {}: protocol error, closing the session: {}", peer_, e.what());
    out_.clear();
    out_.error_response(fatal(e.sqlstate, e.what()));
    tell = true;
  } catch (const std::exception& e) {
    logger().debug("admin {}: session ended: {}", peer_, e.what());
  }
  if (tell) {
    try {
      co_await flush();
    } catch (const std::exception&) {
    }
  }
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  timer_.cancel();
  {
    std::lock_guard lock(server_->mu);
    if (pid_) server_->sessions.erase(pid_);
    server_->connections.erase(this);
  }
  if (counted_) --server_->open;
  if (metered_) metrics::admin_session_closed();
}

awaitable<bool> Session::startup() {
  const auto deadline = Clock::now() + std::chrono::seconds(server_->config.auth_timeout_s);
  for (;;) {
    auto packet = co_await read_startup(deadline);
    if (!packet) co_return false;  // closed, or the startup took too long: just close, like PostgreSQL
    if (std::holds_alternative<pgwire::SslRequest>(*packet) ||
        std::holds_alternative<pgwire::GssEncRequest>(*packet)) {
      if (reader_.buffered() != 0)
        throw pgwire::ProtocolError("08P01", "received unencrypted data after the encryption request");
      out_.refuse_encryption();
      co_await flush();
      continue;
    }
    if (auto* cancel = std::get_if<pgwire::CancelRequest>(&*packet)) {
      server_->cancel(*cancel);
      co_return false;
    }
    auto& startup = std::get<pgwire::StartupMessage>(*packet);
    if ((startup.version >> 16) != 3) {
      out_.error_response(fatal("0A000", "unsupported frontend protocol " + std::to_string(startup.version >> 16) +
                                             "." + std::to_string(startup.version & 0xffff) +
                                             ": server supports 3.0 to 3.0"));
      co_await flush();
      co_return false;
    }
    reader_.start_normal_phase();
    const std::string* user = startup.param("user");
    if (!user || user->empty()) {
      out_.error_response(fatal("28000", "no PostgreSQL user name specified in startup packet"));
      co_await flush();
      co_return false;
    }
    if (server_->stopping) {
      out_.error_response(fatal("57P03", "the dtx admin console is shutting down"));
      co_await flush();
      co_return false;
    }
    if (server_->open.fetch_add(1) >= static_cast<std::size_t>(server_->config.max_sessions)) {
      --server_->open;
      out_.error_response(fatal("53300", "sorry, too many clients already",
                                "[admin] max_sessions is " + std::to_string(server_->config.max_sessions)));
      co_await flush();
      co_return false;
    }
    counted_ = true;
    if (!co_await authenticate(*user)) co_return false;
    user_ = *user;
    metered_ = true;
    metrics::admin_session_opened();

    console_ = server_->console.open_session(user_, peer_);
    {
      std::lock_guard lock(server_->mu);
      pid_ = server_->next_pid++;
      if (server_->next_pid <= 0) server_->next_pid = 1;
      secret_ = static_cast<std::int32_t>(server_->random());
      server_->sessions[pid_] = weak_from_this();
    }
    out_.authentication_ok();
    const std::string* application = startup.param("application_name");
    const std::pair<const char*, std::string> parameters[] = {
        {"server_version", admin::server_version()},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},
        {"IntervalStyle", "postgres"},
        {"TimeZone", "UTC"},
        {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"},
        {"is_superuser", "off"},
        {"session_authorization", user_},
        {"application_name", application ? *application : ""},
    };
    for (const auto& [name, value] : parameters) out_.parameter_status(name, value);
    out_.backend_key_data(pid_, secret_);
    out_.ready_for_query('I');
    co_await flush();
    logger().info("admin {}: user {} connected", peer_, user_);
    co_return true;
  }
}

awaitable<bool> Session::authenticate(const std::string& user) {
  const auto& config = server_->config;
  const auto deadline = Clock::now() + std::chrono::seconds(config.auth_timeout_s);
  if (config.auth == AdminConfig::Auth::trust) {
    if (user == config.user) co_return true;
    out_.error_response(fatal("28000", "role \"" + user + "\" is not permitted to log in",
                              "the admin user is set by [admin] user"));
    co_await flush();
    co_return false;
  }
  // Addresses that failed recently wait for their slot first.
  const auto slot = server_->throttle.admit(address_, Clock::now());
  if (slot > Clock::now()) {
    if (slot >= deadline) co_return false;
    asio::steady_timer wait(socket_.get_executor(), slot);
    co_await wait.async_wait(use_awaitable);
  }
  const std::string_view mechanisms[] = {pgwire::kScramSha256};
  out_.authentication_sasl(mechanisms);
  co_await flush();

  // The SASL messages; anything else, or nothing in time, fails the login.
  auto next_password_data = [&]() -> awaitable<std::optional<std::string>> {
    for (;;) {
      if (auto message = reader_.next()) {
        if (auto* p = std::get_if<pgwire::PasswordData>(&*message)) co_return std::move(p->bytes);
        throw pgwire::ProtocolError("08P01", "expected a SASL response during authentication");
      }
      if (!co_await read_more(deadline)) co_return std::nullopt;
    }
  };
  bool ok = false;
  pgwire::ScramServer scram(user == config.user ? &*server_->secret : nullptr, user);
  try {
    if (auto initial = co_await next_password_data()) {
      pgwire::SaslInitialResponse response = pgwire::parse_sasl_initial(*initial);
      if (response.mechanism != pgwire::kScramSha256 || !response.data)
        throw pgwire::ScramError("unsupported SASL mechanism");
      out_.authentication_sasl_continue(scram.client_first(*response.data));
      co_await flush();
      if (auto final_message = co_await next_password_data()) {
        if (auto server_final = scram.client_final(*final_message)) {
          out_.authentication_sasl_final(*server_final);
          ok = true;
        }
      } else {
        co_return false;  // gone or too slow
      }
    } else {
      co_return false;
    }
  } catch (const pgwire::ScramError&) {
    ok = false;
  } catch (const pgwire::ProtocolError&) {
    ok = false;
  }
  if (ok) {
    server_->throttle.succeeded(address_);
    co_return true;
  }
  server_->throttle.failed(address_, Clock::now());
  metrics::admin_auth_failed();
  logger().warn("admin {}: password authentication failed for user \"{}\"", peer_, user);
  out_.clear();
  out_.error_response(fatal("28P01", "password authentication failed for user \"" + user + "\""));
  co_await flush();
  co_return false;
}

awaitable<admin::StatementResult> Session::execute(std::string sql, std::vector<std::optional<std::string>> params,
                                                   std::vector<std::uint32_t> types) {
  busy_ = true;
  struct Idle {
    bool& busy;
    ~Idle() { busy = false; }
  } idle{busy_};
  admin::ConsoleSession* console = console_.get();
  auto task = [console, sql = std::move(sql), params = std::move(params), types = std::move(types)] {
    return console->execute(sql, params, types);
  };
  admin::StatementResult result = co_await run_blocking(server_->work, socket_.get_executor(), std::move(task));
  co_return result;
}

awaitable<void> Session::serve() {
  const int idle_s = server_->config.idle_timeout_s;
  for (;;) {
    std::optional<Clock::time_point> deadline;
    if (idle_s > 0) deadline = Clock::now() + std::chrono::seconds(idle_s);
    auto message = co_await read_message(deadline);
    if (!message) {
      if (stopping_)
        out_.error_response(fatal("57P01", "terminating connection: the dtx admin console is shutting down"));
      else if (timed_out_)  // serve() arms only the idle deadline; a write timeout throws
        out_.error_response(fatal("57P05", "terminating connection due to idle-session timeout",
                                  "[admin] idle_timeout_s is " + std::to_string(idle_s)));
      if (!out_.empty()) {
        try {
          co_await flush();
        } catch (const std::exception&) {
        }
      }
      co_return;
    }
    if (std::holds_alternative<pgwire::Terminate>(*message)) co_return;
    if (auto* query = std::get_if<pgwire::Query>(&*message)) {
      skipping_ = false;
      co_await simple_query(*query);
    } else {
      co_await extended(*message);
    }
  }
}

void Session::describe_columns(const std::optional<std::vector<admin::Column>>& columns,
                               const std::vector<std::int16_t>& formats) {
  if (!columns) {
    out_.no_data();
    return;
  }
  std::vector<pgwire::FieldDescription> fields;
  for (std::size_t i = 0; i < columns->size(); ++i) {
    pgwire::FieldDescription f = pgwire::field((*columns)[i].name, type_oid((*columns)[i].type));
    f.format = result_format(formats, i);
    fields.push_back(std::move(f));
  }
  out_.row_description(fields);
}

void Session::send_rows(const admin::StatementResult& result, std::size_t from, std::size_t to,
                        const std::vector<std::int16_t>& formats, const std::vector<std::uint32_t>& oids) {
  for (std::size_t r = from; r < to; ++r) {
    const admin::Row& row = result.rows[r];
    bool binary = false;
    for (std::size_t i = 0; i < row.size() && !binary; ++i) binary = result_format(formats, i) == 1;
    if (!binary) {
      out_.data_row(std::span<const std::optional<std::string>>(row));
      continue;
    }
    admin::Row encoded(row.size());
    for (std::size_t i = 0; i < row.size(); ++i)
      if (row[i]) encoded[i] = result_format(formats, i) == 1 && i < oids.size() ? to_binary(oids[i], *row[i]) : *row[i];
    out_.data_row(std::span<const std::optional<std::string>>(encoded));
  }
}

void Session::send_result(const admin::StatementResult& result) {
  if (result.tag.empty()) {  // only comments: PostgreSQL's empty query
    out_.empty_query_response();
    return;
  }
  if (result.has_rows) describe_columns(result.columns, {});
  if (result.has_rows) send_rows(result, 0, result.rows.size(), {}, {});
  for (const std::string& notice : result.notices)
    out_.notice_response(error_fields("00000", notice, {}, {}, "NOTICE"));
  out_.command_complete(result.tag);
}

awaitable<void> Session::simple_query(const pgwire::Query& query) {
  const std::vector<std::string> statements = admin::ConsoleSession::split(query.sql);
  if (statements.empty()) out_.empty_query_response();
  for (const std::string& sql : statements) {
    try {
      admin::StatementResult result = co_await execute(sql);
      send_result(result);
    } catch (const admin::StatementError& e) {
      send_error(error_fields(e.sqlstate, e.what(), e.detail, e.hint));
      break;
    }
    if (stopping_) break;
  }
  out_.ready_for_query(console_->transaction_status());
  co_await flush();
}

awaitable<void> Session::extended(pgwire::FrontendMessage& message) {
  if (std::holds_alternative<pgwire::Sync>(message)) {
    skipping_ = false;
    if (console_->transaction_status() == 'I') portals_.clear();  // the implicit transaction ended
    out_.ready_for_query(console_->transaction_status());
    co_await flush();
    co_return;
  }
  if (std::holds_alternative<pgwire::Flush>(message)) {
    co_await flush();
    co_return;
  }
  if (skipping_) co_return;
  try {
    if (auto* parse = std::get_if<pgwire::Parse>(&message)) {
      if (!parse->name.empty() && statements_.count(parse->name))
        throw ClientError{error_fields("42P05", "prepared statement \"" + parse->name + "\" already exists")};
      auto statement = std::make_shared<Statement>();
      std::vector<std::string> parts = admin::ConsoleSession::split(parse->sql);
      if (parts.size() > 1)
        throw ClientError{error_fields("42601", "cannot insert multiple commands into a prepared statement")};
      if (!parts.empty()) {
        statement->sql = std::move(parts.front());
        statement->param_types = parse->param_types;
        admin::ConsoleSession* console = console_.get();
        auto task = [console, sql = statement->sql, types = statement->param_types] {
          return console->describe(sql, types);
        };
        admin::Description description = co_await run_blocking(server_->work, socket_.get_executor(), std::move(task));
        statement->description = std::move(description);
      }
      statements_[parse->name] = std::move(statement);
      out_.parse_complete();
    } else if (auto* bind = std::get_if<pgwire::Bind>(&message)) {
      auto it = statements_.find(bind->statement);
      if (it == statements_.end())
        throw ClientError{error_fields("26000", "prepared statement \"" + bind->statement + "\" does not exist")};
      const Statement& statement = *it->second;
      const std::size_t wanted = statement.description.params.size();
      if (bind->params.size() != wanted)
        throw ClientError{error_fields("08P01", "bind message supplies " + std::to_string(bind->params.size()) +
                                                    " parameters, but prepared statement \"" + bind->statement +
                                                    "\" requires " + std::to_string(wanted))};
      for (std::int16_t format : bind->param_formats)
        if (format != 0)
          throw ClientError{error_fields("0A000", "binary format for parameters is not supported",
                                         {}, "send parameters in text format")};
      for (std::int16_t format : bind->result_formats)
        if (format != 0 && format != 1)
          throw ClientError{error_fields("22023", "unsupported format code: " + std::to_string(format))};
      if (!bind->portal.empty() && portals_.count(bind->portal))
        throw ClientError{error_fields("42P03", "cursor \"" + bind->portal + "\" already exists")};
      portals_[bind->portal] = Portal{.statement = it->second, .params = std::move(bind->params),
                                      .result_formats = std::move(bind->result_formats)};
      out_.bind_complete();
    } else if (auto* describe = std::get_if<pgwire::Describe>(&message)) {
      if (describe->kind == 'S') {
        auto it = statements_.find(describe->name);
        if (it == statements_.end())
          throw ClientError{error_fields("26000", "prepared statement \"" + describe->name + "\" does not exist")};
        const Statement& statement = *it->second;
        std::vector<std::uint32_t> oids;
        for (std::size_t i = 0; i < statement.description.params.size(); ++i)
          oids.push_back(i < statement.param_types.size() && statement.param_types[i] != 0
                             ? statement.param_types[i]
                             : type_oid(statement.description.params[i]));
        out_.parameter_description(oids);
        if (statement.sql.empty())
          out_.no_data();
        else
          describe_columns(statement.description.columns, {});
      } else {
        auto it = portals_.find(describe->name);
        if (it == portals_.end())
          throw ClientError{error_fields("34000", "portal \"" + describe->name + "\" does not exist")};
        const Portal& portal = it->second;
        if (portal.statement->sql.empty())
          out_.no_data();
        else
          describe_columns(portal.statement->description.columns, portal.result_formats);
      }
    } else if (auto* exec = std::get_if<pgwire::Execute>(&message)) {
      auto it = portals_.find(exec->portal);
      if (it == portals_.end())
        throw ClientError{error_fields("34000", "portal \"" + exec->portal + "\" does not exist")};
      Portal& portal = it->second;
      if (portal.statement->sql.empty()) {
        out_.empty_query_response();
        co_return;
      }
      if (!portal.result) {
        try {
          portal.result = co_await execute(portal.statement->sql, portal.params, portal.statement->param_types);
        } catch (const admin::StatementError& e) {
          throw ClientError{error_fields(e.sqlstate, e.what(), e.detail, e.hint)};
        }
        for (const std::string& notice : portal.result->notices)
          out_.notice_response(error_fields("00000", notice, {}, {}, "NOTICE"));
      }
      const admin::StatementResult& result = *portal.result;
      std::vector<std::uint32_t> oids;
      const auto& described = portal.statement->description.columns;
      for (std::size_t i = 0; i < result.columns.size(); ++i)
        oids.push_back(described && i < described->size() ? type_oid((*described)[i].type)
                                                          : type_oid(result.columns[i].type));
      const std::size_t total = result.has_rows ? result.rows.size() : 0;
      std::size_t end = total;
      if (exec->max_rows > 0) end = std::min(total, portal.next_row + static_cast<std::size_t>(exec->max_rows));
      const std::size_t from = portal.next_row;
      send_rows(result, from, end, portal.result_formats, oids);
      portal.next_row = end;
      if (result.tag.empty()) {
        out_.empty_query_response();
      } else if (end < total) {
        out_.portal_suspended();
      } else if (result.tag.starts_with("SELECT ")) {
        out_.command_complete("SELECT " + std::to_string(end - from));
      } else {
        out_.command_complete(result.tag);
      }
    } else if (auto* close = std::get_if<pgwire::Close>(&message)) {
      if (close->kind == 'S')
        statements_.erase(close->name);
      else
        portals_.erase(close->name);
      out_.close_complete();
    } else if (std::holds_alternative<pgwire::PasswordData>(message)) {
      throw pgwire::ProtocolError("08P01", "unexpected password message: the session is already authenticated");
    }
    // CopyData / CopyDone / CopyFail outside a COPY are ignored, as PostgreSQL does.
  } catch (ClientError& e) {
    send_error(e.fields);
    skipping_ = true;
  } catch (const admin::StatementError& e) {
    send_error(error_fields(e.sqlstate, e.what(), e.detail, e.hint));
    skipping_ = true;
  }
}

// ---- the server ----

awaitable<void> AdminServer::Impl::accept_loop() {
  auto self = shared_from_this();
  while (!stopping) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::make_strand(io), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      logger().warn("admin console: accept failed: {}", ec.message());
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<Session>(self, std::move(socket));
    {
      std::lock_guard lock(mu);
      connections[session.get()] = session;
    }
    asio::co_spawn(
        session->executor(), [session]() -> awaitable<void> { co_await session->run(); }, asio::detached);
  }
}

void AdminServer::Impl::cancel(const pgwire::CancelRequest& request) {
  std::shared_ptr<Session> target;
  {
    std::lock_guard lock(mu);
    auto it = sessions.find(request.pid);
    if (it != sessions.end()) target = it->second.lock();
  }
  // Like PostgreSQL, a request that matches nothing is ignored silently.
  if (target) target->interrupt(request.secret);
}

void AdminServer::Impl::stop_sessions() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu);
    for (auto& [ptr, weak] : connections)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->stop();
}

AdminServer::AdminServer(asio::io_context& io, asio::thread_pool& work, admin::Console& console, AdminConfig config)
    : impl_(std::make_shared<Impl>(io, work, console, std::move(config))) {}

AdminServer::~AdminServer() { stop(); }

ListenAddress AdminServer::start() {
  Impl& s = *impl_;
  if (s.config.auth == AdminConfig::Auth::scram_sha_256) s.secret = pgwire::make_scram_secret(s.config.password);
  ListenAddress bound = listen_on(s.acceptor, s.config.listen, "the admin console",
                                  "is another dtx serve (or a PostgreSQL) listening there? change [admin] listen");
  asio::co_spawn(s.acceptor.get_executor(), s.accept_loop(), asio::detached);
  return bound;
}

void AdminServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(impl_->acceptor.get_executor(), [impl = impl_] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  impl_->stop_sessions();
}

}  // namespace dtx::server
