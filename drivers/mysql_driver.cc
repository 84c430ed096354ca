// MySQL / MariaDB as an XA resource manager, over Connector/C++ 1.1.
//
// A session is one connection. Its branch runs through XA statements written
// with hex xid literals (Xid::mysql_literal), so no byte of an id reaches the
// parser unquoted:
//
//   begin             XA START x
//   prepare           XA END x; XA PREPARE x
//   commit            XA COMMIT x                     (1402 counts as done, see below)
//   commit_one_phase  XA END x; XA COMMIT x ONE PHASE
//   rollback          active: XA END x (errors ignored); XA ROLLBACK x
//                     prepared: XA ROLLBACK x
//   recover           XA RECOVER, `data` split by gtrid_length / bqual_length
//
// The server's branch and our BranchState can part ways in a few known places,
// and each is closed here rather than left to the caller:
//   - Deadlock (1213) inside a branch: the server has already rolled back the
//     whole transaction and left the branch rollback-only (XA END then says
//     1614). execute() ends and rolls it back at once, so the session is clean
//     (state none) when the caller sees Errc::retryable.
//   - Any other failed statement leaves the branch alive on the server, but
//     dtx's contract is that it can only roll back: later statements, prepare()
//     and commit_one_phase() are refused, the last two rolling it back.
//   - A prepared branch that wrote nothing can answer XA COMMIT with 1402
//     XA_RBROLLBACK after its session went away. A prepared branch with writes
//     cannot be rolled back by the server, so 1402 means there was nothing to
//     commit: it counts as committed.
//   - 1397 XAER_NOTA also means "another live session prepared it" on MariaDB;
//     it is reported as unknown_xid with a hint, never read as "finished".
//   - MariaDB < 10.5, MySQL < 5.7.7 and legacy_xa_rollback_at_disconnect=ON
//     roll prepared branches back when a connection drops: refused at connect.
//
// Connector/C++ must be initialised once per process and once per thread;
// library() does both, so neither users nor the coordinator's threads know.
#include "drivers/mysql_driver.h"

#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/parameter_metadata.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>

#include <cstdio>
#include <list>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include "drivers/logging.h"
#include "dtx/error.h"

namespace dtx {

namespace {

// The driver, taken once; the calling thread registered with it until it exits.
sql::Driver* library() {
  static std::once_flag once;
  static sql::Driver* driver = nullptr;
  std::call_once(once, [] { driver = sql::mysql::get_mysql_driver_instance(); });
  struct ThreadRegistration {
    explicit ThreadRegistration(sql::Driver* d) : driver(d) { driver->threadInit(); }
    ~ThreadRegistration() { driver->threadEnd(); }
    sql::Driver* driver;
  };
  thread_local ThreadRegistration registration(driver);
  return driver;
}

// Concurrent first connects crashed the client library; connects are rare
// (the pool keeps sessions), so they simply take turns.
std::mutex connect_mutex;

enum ServerCode : int {
  kServerShutdown = 1053,
  kLockWaitTimeout = 1205,
  kDeadlock = 1213,
  kXaerNota = 1397,
  kXaRbRollback = 1402,
  kXaRbTimeout = 1613,
  kXaRbDeadlock = 1614,
  kConnectionKilled = 1927,  // MariaDB
};

bool is_xa_rb(int code) {
  return code == kXaRbRollback || code == kXaRbTimeout || code == kXaRbDeadlock;
}

bool is_connection_lost(int code) {
  switch (code) {
    case kServerShutdown:
    case kConnectionKilled:
    case 2002:  // CR_CONNECTION_ERROR
    case 2003:  // CR_CONN_HOST_ERROR
    case 2005:  // CR_UNKNOWN_HOST
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2013:  // CR_SERVER_LOST
    case 2055:  // CR_SERVER_LOST_EXTENDED
      return true;
    default:
      return false;
  }
}

Errc classify(int code) {
  if (code == kDeadlock || code == kLockWaitTimeout) return Errc::retryable;
  if (is_xa_rb(code)) return Errc::rolled_back;
  if (code == kXaerNota) return Errc::unknown_xid;
  if (is_connection_lost(code)) return Errc::unavailable;
  return Errc::sql;
}

const char* to_string(BranchState s) {
  switch (s) {
    case BranchState::none: return "none";
    case BranchState::active: return "active";
    case BranchState::prepared: return "prepared";
  }
  return "?";
}

// What the server (or the client library) said.
struct Failure {
  int code = 0;
  std::string sqlstate;
  std::string message;
};

Failure failure_of(const sql::SQLException& e) {
  return {e.getErrorCode(), e.getSQLState(), e.what()};
}

std::string excerpt(std::string_view sql) {
  constexpr std::size_t kMax = 120;
  return sql.size() <= kMax ? std::string(sql) : std::string(sql.substr(0, kMax)) + "...";
}

// Server-side prepared statements by SQL text, least recently used evicted,
// so a statement the application repeats costs one round trip.
class StatementCache {
 public:
  sql::PreparedStatement& get(sql::Connection& conn, const std::string& sql) {
    if (auto it = index_.find(sql); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return *it->second->second;
    }
    std::unique_ptr<sql::PreparedStatement> ps(conn.prepareStatement(sql));
    lru_.emplace_front(sql, std::move(ps));
    index_.emplace(lru_.front().first, lru_.begin());
    if (lru_.size() > kCapacity) {
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return *lru_.front().second;
  }

 private:
  static constexpr std::size_t kCapacity = 64;
  using Entry = std::pair<std::string, std::unique_ptr<sql::PreparedStatement>>;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // keys point into lru_
};

void bind(sql::PreparedStatement& ps, std::span<const Param> params) {
  for (unsigned i = 0; i < params.size(); ++i) {
    const unsigned pos = i + 1;
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::monostate>)
            ps.setNull(pos, sql::DataType::SQLNULL);
          else if constexpr (std::is_same_v<T, std::int64_t>)
            ps.setInt64(pos, v);
          else if constexpr (std::is_same_v<T, double>)
            ps.setDouble(pos, v);
          else
            ps.setString(pos, sql::SQLString(v));
        },
        params[i].storage());
  }
}

Result read_rows(sql::ResultSet& rs) {
  sql::ResultSetMetaData* meta = rs.getMetaData();  // owned by rs
  const unsigned n = meta->getColumnCount();
  std::vector<std::string> columns;
  for (unsigned c = 1; c <= n; ++c) columns.push_back(meta->getColumnLabel(c).asStdString());
  std::vector<Row> rows;
  while (rs.next()) {
    std::vector<std::optional<std::string>> cells;
    cells.reserve(n);
    for (unsigned c = 1; c <= n; ++c) {
      if (rs.isNull(c))
        cells.emplace_back();
      else
        cells.emplace_back(rs.getString(c).asStdString());
    }
    rows.emplace_back(std::move(cells));
  }
  return Result(std::move(columns), std::move(rows), 0);
}

class MysqlSession final : public Session {
 public:
  MysqlSession(std::string resource, std::unique_ptr<sql::Connection> conn)
      : resource_(std::move(resource)), conn_(std::move(conn)), stmt_(conn_->createStatement()) {}

  ~MysqlSession() override { library(); }  // the closing thread must be registered too

  // Refuses servers that would undo prepared branches when a connection drops.
  void check_server(const ResourceConfig& config);

  Result execute(std::string_view sql, std::span<const Param> params) override;
  void begin(const Xid& xid) override;
  void prepare() override;
  void commit() override;
  void commit_one_phase() override;
  void rollback() override;
  BranchState state() const noexcept override { return state_; }
  const Xid* current_xid() const noexcept override { return xid_ ? &*xid_ : nullptr; }
  void commit_prepared(const Xid& xid) override;
  void rollback_prepared(const Xid& xid) override;
  std::vector<PreparedXid> recover() override;
  bool broken() const noexcept override { return broken_; }

 private:
  Result run(const std::string& sql, std::span<const Param> params);
  // Runs a statement that returns no rows; the failure instead of an exception.
  std::optional<Failure> attempt(const std::string& sql) noexcept;
  // Marks the session broken when `f` says the connection is gone or unknown.
  void observe(const Failure& f) noexcept;
  Error error(Errc code, const Failure* f, std::string what, std::string hint = {},
              const Xid* xid = nullptr) const;
  void require(BranchState expected, const char* operation) const;
  void require_statements_allowed() const;
  // Ends and rolls back the active branch however the server left it; state none.
  void abandon_branch() noexcept;
  void finish() noexcept;
  std::string literal() const { return xid_->mysql_literal(); }

  std::string resource_;
  std::unique_ptr<sql::Connection> conn_;  // declared first: outlives the statements
  std::unique_ptr<sql::Statement> stmt_;   // for statements without parameters
  StatementCache cache_;
  BranchState state_ = BranchState::none;
  std::optional<Xid> xid_;
  bool failed_ = false;  // a statement of the active branch failed
  bool broken_ = false;
};

void MysqlSession::check_server(const ResourceConfig& config) {
  try {
    std::unique_ptr<sql::ResultSet> rs(stmt_->executeQuery("SELECT VERSION()"));
    const std::string version = rs->next() ? rs->getString(1).asStdString() : "";
    int major = 0, minor = 0, patch = 0;
    std::sscanf(version.c_str(), "%d.%d.%d", &major, &minor, &patch);
    const bool mariadb = version.find("MariaDB") != std::string::npos;
    const bool too_old = mariadb ? (major < 10 || (major == 10 && minor < 5))
                                 : (major < 5 || (major == 5 && (minor < 7 || (minor == 7 && patch < 7))));
    if (too_old)
      throw error(Errc::misconfigured, nullptr,
                  "server version " + version + " of resource '" + config.name +
                      "' rolls back prepared XA branches when a connection drops, which breaks "
                      "two-phase commit",
                  "use MariaDB 10.5 or later, or MySQL 5.7.7 or later");
    // Only some versions have the variable; SHOW answers no row when it is missing.
    rs.reset(stmt_->executeQuery("SHOW GLOBAL VARIABLES LIKE 'legacy_xa_rollback_at_disconnect'"));
    if (rs->next()) {
      const std::string value = rs->getString(2).asStdString();
      if (value == "ON" || value == "1")
        throw error(Errc::misconfigured, nullptr,
                    "resource '" + config.name +
                        "' would roll back prepared XA branches when a connection drops "
                        "(legacy_xa_rollback_at_disconnect=ON), which breaks two-phase commit",
                    "set legacy_xa_rollback_at_disconnect=OFF (SET GLOBAL, and in the server's "
                    "configuration file)");
    }
  } catch (const sql::SQLException& e) {
    Failure f = failure_of(e);
    throw error(is_connection_lost(f.code) ? Errc::unavailable : Errc::sql, &f,
                "checking the server's XA settings failed");
  }
}

Result MysqlSession::execute(std::string_view sql, std::span<const Param> params) {
  library();
  require_statements_allowed();
  try {
    return run(std::string(sql), params);
  } catch (const sql::SQLException& e) {
    Failure f = failure_of(e);
    observe(f);
    Error err = error(classify(f.code), &f, "statement failed: " + excerpt(sql));
    if (state_ == BranchState::active) {
      failed_ = true;
      // The server rolled the whole transaction back; end the branch to match.
      if (f.code == kDeadlock) abandon_branch();
    }
    throw err;
  }
}

Result MysqlSession::run(const std::string& sql, std::span<const Param> params) {
  if (params.empty()) {
    if (!stmt_->execute(sql)) return Result({}, {}, stmt_->getUpdateCount());
    std::unique_ptr<sql::ResultSet> rs(stmt_->getResultSet());
    return read_rows(*rs);
  }
  sql::PreparedStatement& ps = cache_.get(*conn_, sql);
  const unsigned expected = ps.getParameterMetaData()->getParameterCount();
  if (expected != params.size())
    throw error(Errc::usage, nullptr,
                "statement has " + std::to_string(expected) + " placeholders but " +
                    std::to_string(params.size()) + " parameters were given: " + excerpt(sql));
  bind(ps, params);
  // A prepared statement knows its result columns from the prepare, and has
  // no getUpdateCount() in this Connector/C++.
  if (ps.getMetaData()->getColumnCount() > 0) {
    std::unique_ptr<sql::ResultSet> rs(ps.executeQuery());
    return read_rows(*rs);
  }
  return Result({}, {}, static_cast<std::uint64_t>(ps.executeUpdate()));
}

void MysqlSession::begin(const Xid& xid) {
  library();
  require(BranchState::none, "begin a branch");
  xid_ = xid;
  if (auto f = attempt("XA START " + literal())) {
    Error err = error(classify(f->code), &*f, "XA START failed");
    xid_.reset();
    throw err;
  }
  state_ = BranchState::active;
  failed_ = false;
}

void MysqlSession::prepare() {
  library();
  require(BranchState::active, "prepare");
  if (failed_) {
    Error err = error(Errc::rolled_back, nullptr,
                      "a statement of the branch failed, so it was rolled back instead of prepared");
    abandon_branch();
    throw err;
  }
  std::optional<Failure> f = attempt("XA END " + literal());
  if (!f) f = attempt("XA PREPARE " + literal());
  if (!f) {
    state_ = BranchState::prepared;
    return;
  }
  const Errc code = classify(f->code);
  if (code == Errc::unavailable)  // may or may not be prepared: recovery decides
    throw error(code, &*f, "connection lost while preparing the branch");
  Error err = error(code, &*f, "XA PREPARE failed; the branch was rolled back");
  abandon_branch();
  throw err;
}

void MysqlSession::commit() {
  library();
  require(BranchState::prepared, "commit");
  std::optional<Failure> f = attempt("XA COMMIT " + literal());
  if (!f || f->code == kXaRbRollback) {  // 1402: nothing was written, see the top of the file
    finish();
    return;
  }
  const Errc code = classify(f->code);
  Error err = error(code, &*f, "XA COMMIT of the prepared branch failed");
  if (code == Errc::unknown_xid || code == Errc::rolled_back) finish();  // nothing left to hold
  throw err;
}

void MysqlSession::commit_one_phase() {
  library();
  require(BranchState::active, "commit in one phase");
  if (failed_) {
    Error err = error(Errc::rolled_back, nullptr,
                      "a statement of the branch failed, so it was rolled back instead of committed");
    abandon_branch();
    throw err;
  }
  std::optional<Failure> f = attempt("XA END " + literal());
  if (!f) f = attempt("XA COMMIT " + literal() + " ONE PHASE");
  if (!f) {
    finish();
    return;
  }
  const Errc code = classify(f->code);
  if (code == Errc::unavailable)
    throw error(code, &*f, "connection lost during the one-phase commit; its outcome is unknown");
  Error err = error(is_xa_rb(f->code) ? Errc::rolled_back : code, &*f,
                    "XA COMMIT ONE PHASE failed; the branch was rolled back");
  abandon_branch();
  throw err;
}

void MysqlSession::rollback() {
  library();
  if (state_ == BranchState::none) return;
  if (state_ == BranchState::active) {
    abandon_branch();
    return;
  }
  if (broken_)
    throw error(Errc::unavailable, nullptr,
                "cannot roll back the prepared branch: the connection was lost; it stays prepared "
                "for recovery");
  std::optional<Failure> f = attempt("XA ROLLBACK " + literal());
  if (!f || is_xa_rb(f->code) || f->code == kXaerNota) {
    finish();
    return;
  }
  throw error(classify(f->code), &*f,
              "XA ROLLBACK of the prepared branch failed; it stays prepared for recovery");
}

void MysqlSession::commit_prepared(const Xid& xid) {
  library();
  require(BranchState::none, "commit a prepared branch by xid");
  std::optional<Failure> f = attempt("XA COMMIT " + xid.mysql_literal());
  if (!f || f->code == kXaRbRollback) return;
  throw error(classify(f->code), &*f, "XA COMMIT of prepared branch " + xid.to_string() + " failed",
              f->code == kXaerNota ? "on MariaDB this also means another live session still owns "
                                     "the branch; if XA RECOVER lists it, retry once that session "
                                     "has ended"
                                   : "",
              &xid);
}

void MysqlSession::rollback_prepared(const Xid& xid) {
  library();
  require(BranchState::none, "roll back a prepared branch by xid");
  std::optional<Failure> f = attempt("XA ROLLBACK " + xid.mysql_literal());
  if (!f || is_xa_rb(f->code)) return;
  throw error(classify(f->code), &*f, "XA ROLLBACK of prepared branch " + xid.to_string() + " failed",
              f->code == kXaerNota ? "on MariaDB this also means another live session still owns "
                                     "the branch; if XA RECOVER lists it, retry once that session "
                                     "has ended"
                                   : "",
              &xid);
}

std::vector<PreparedXid> MysqlSession::recover() {
  library();
  if (broken_) require(BranchState::none, "list prepared branches");
  std::vector<PreparedXid> out;
  try {
    // Plain XA RECOVER answers the same on MariaDB and MySQL 8: `data` is
    // gtrid || bqual as raw bytes, so binary ids come back exactly.
    std::unique_ptr<sql::ResultSet> rs(stmt_->executeQuery("XA RECOVER"));
    while (rs->next()) {
      const auto format_id = static_cast<std::uint32_t>(rs->getInt64(1));
      const auto gtrid_length = static_cast<std::size_t>(rs->getInt64(2));
      const auto bqual_length = static_cast<std::size_t>(rs->getInt64(3));
      const std::string data = rs->getString(4).asStdString();
      PreparedXid p;
      p.xid = Xid{format_id, data.substr(0, gtrid_length), data.substr(gtrid_length, bqual_length)};
      p.is_dtx = p.xid.is_dtx();
      p.raw = p.xid.mysql_literal();
      out.push_back(std::move(p));
    }
  } catch (const sql::SQLException& e) {
    Failure f = failure_of(e);
    observe(f);
    throw error(classify(f.code), &f, "XA RECOVER failed",
                "MySQL 8 needs the XA_RECOVER_ADMIN privilege for XA RECOVER");
  }
  return out;
}

std::optional<Failure> MysqlSession::attempt(const std::string& sql) noexcept {
  try {
    stmt_->execute(sql);
    return std::nullopt;
  } catch (const sql::SQLException& e) {
    Failure f = failure_of(e);
    observe(f);
    logger().debug("{}: {} on resource {}: {} ({})", xid_ ? xid_->to_string() : "-", sql, resource_,
                   f.message, f.code);
    return f;
  }
}

void MysqlSession::observe(const Failure& f) noexcept {
  if (is_connection_lost(f.code) || (f.code >= 2000 && f.code < 3000)) {
    broken_ = true;
    return;
  }
  try {
    if (conn_->isClosed()) broken_ = true;
  } catch (...) {
    broken_ = true;
  }
}

Error MysqlSession::error(Errc code, const Failure* f, std::string what, std::string hint,
                          const Xid* xid) const {
  if (!xid) xid = current_xid();
  Error::Details d{.code = code, .resource = resource_, .gtrid = xid ? xid->gtrid : "",
                   .hint = std::move(hint)};
  if (f) {
    d.server_code = f->code;
    d.sqlstate = f->sqlstate;
    d.server_message = f->message;
  }
  if (d.hint.empty() && code == Errc::retryable)
    d.hint = "the transaction was rolled back or can only roll back; retry it";
  return Error(std::move(d), std::move(what));
}

void MysqlSession::require(BranchState expected, const char* operation) const {
  if (broken_)
    throw error(Errc::unavailable, nullptr,
                std::string("cannot ") + operation + ": the connection was lost earlier",
                "take a new session");
  if (state_ != expected)
    throw error(Errc::usage, nullptr,
                std::string("cannot ") + operation + " while the session's branch is " +
                    to_string(state_) + " (expected " + to_string(expected) + ")");
}

void MysqlSession::require_statements_allowed() const {
  if (broken_ || state_ == BranchState::prepared) require(BranchState::active, "run a statement");
  if (failed_)
    throw error(Errc::usage, nullptr,
                "an earlier statement of the branch failed; the branch can only be rolled back");
}

void MysqlSession::abandon_branch() noexcept {
  if (!broken_) {
    attempt("XA END " + literal());  // fails when already ended or rolled back: fine
    if (!broken_) {
      std::optional<Failure> f = attempt("XA ROLLBACK " + literal());
      if (f && !is_xa_rb(f->code) && f->code != kXaerNota) {
        // Unknown server-side state: closing the connection rolls the branch back.
        logger().warn("{}: could not roll back the active branch on resource {}: {}",
                      xid_->to_string(), resource_, f->message);
        broken_ = true;
      }
    }
  }
  finish();
}

void MysqlSession::finish() noexcept {
  state_ = BranchState::none;
  xid_.reset();
  failed_ = false;
}

}  // namespace

std::unique_ptr<Session> connect_mysql(const ResourceConfig& config) {
  sql::Driver* driver = library();
  sql::ConnectOptionsMap options;
  options["hostName"] = sql::SQLString("tcp://" + config.host + ":" + std::to_string(config.port));
  options["port"] = config.port;
  options["userName"] = sql::SQLString(config.user);
  options["password"] = sql::SQLString(config.password);
  options["schema"] = sql::SQLString(config.database);
  options["OPT_CONNECT_TIMEOUT"] = config.connect_timeout_s;
  options["OPT_RECONNECT"] = false;  // a silent reconnect would lose the branch
  options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  std::unique_ptr<sql::Connection> conn;
  try {
    std::lock_guard lock(connect_mutex);
    conn.reset(driver->connect(options));
  } catch (const sql::SQLException& e) {
    throw Error({.code = Errc::unavailable,
                 .resource = config.name,
                 .server_code = e.getErrorCode(),
                 .sqlstate = e.getSQLState(),
                 .server_message = e.what()},
                "cannot connect");
  }
  auto session = std::make_unique<MysqlSession>(config.name, std::move(conn));
  session->check_server(config);
  return session;
}

}  // namespace dtx
