// MySQL / MariaDB as an XA resource manager, over Connector/C++ 1.1.
//
// A session is one connection. Its branch runs through XA statements written
// with hex xid literals (Xid::mysql_literal), so no byte of an id reaches the
// parser unquoted:
//
//   begin             XA START x
//   prepare           XA END x; XA PREPARE x          (one round trip)
//   commit            XA COMMIT x
//   commit_one_phase  XA END x; XA COMMIT x ONE PHASE (one round trip);
//                     on MariaDB XA END x; XA PREPARE x; XA COMMIT x (see below)
//   commit_one_phase_with(s)  s; then as commit_one_phase (one round trip)
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
//   - Finishing a prepared branch (commit, commit_prepared,
//     rollback_prepared) reports the server's answer as a FinishOutcome and
//     reads nothing into it: XA_RB* (1402 after the session of a branch that
//     wrote nothing went away) is rolled_back_by_database, 1397 XAER_NOTA
//     (also "another live session owns it" on MariaDB) is not_found.
//     recovery/finish_branch.h decides what they mean.
//   - MariaDB < 10.5, MySQL < 5.7.7 and legacy_xa_rollback_at_disconnect=ON
//     roll prepared branches back when a connection drops: refused at connect.
//
// Deadlines (Session::set_deadline): execute() arms a DeadlineWatch for its
// statement (drivers/deadline_watchdog.h). If the statement is still running
// at the deadline — typically waiting for a row lock, which InnoDB would let
// it do for innodb_lock_wait_timeout (50 s) — the watchdog's thread opens a
// second connection and sends KILL QUERY <connection id> (the id is read at
// connect, with the version). The statement fails with 1317, reported as
// Errc::timeout; the branch stays alive on the server and, like after any
// failed statement, can only roll back. No round trip is added to a
// statement that ends in time. Server-side bounds were rejected: SET
// STATEMENT max_statement_time=<s> FOR <stmt> changes the statement's text
// with every remaining time, so the prepared-statement cache would miss (a
// prepare round trip per statement); innodb_lock_wait_timeout set with XA
// START is in whole seconds and bounds each statement by the time left at
// XA START, not by the time left when it runs. XA END / XA PREPARE / XA
// COMMIT ... ONE PHASE are not watched: they wait for no row lock on
// InnoDB, and a killed XA COMMIT could leave its outcome unknown.
//
// MariaDB acknowledges XA COMMIT ... ONE PHASE before its engine commit is on
// disk (with the binary log on, the binlog is the commit point, and the
// engine's commit record waits for a later log write), but its crash recovery
// does not settle user XA transactions from the binlog: after a crash of the
// server, an acknowledged one-phase commit can come back as a prepared XA
// branch, which recovery (no decision logged: presumed abort) would then roll
// back. Measured on 10.11.19: one acknowledged commit of a few hundred, in
// every crash right after a burst. So on MariaDB a branch committed alone is
// prepared and committed in the same round trip instead: XA COMMIT of a
// prepared branch is flushed before it is acknowledged. If the server dies
// between the two, the branch comes back prepared with no decision and is
// rolled back; the caller was told the outcome is unknown. It costs one more
// log flush per one-branch transaction, nothing else.
// (tests/integration/crash_test.cc AcknowledgedOneBranchCommitsOnMariadb...)
//
// The two-statement steps go as one multi-statement query (the connection is
// opened with CLIENT_MULTI_STATEMENTS): the server stops at the first error,
// so XA PREPARE never runs after a failed XA END, and the error is the failed
// statement's. Users' strings still run one statement per call: execute()
// refuses several (mysql_has_several_statements), as the server did before.
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

#include <algorithm>
#include <cstdio>
#include <list>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include "drivers/branch_session.h"
#include "base/logging.h"
#include "drivers/sql_words.h"
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
  kQueryInterrupted = 1317,  // KILL QUERY
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
          else if constexpr (std::is_same_v<T, std::uint64_t>)
            ps.setUInt64(pos, v);
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

constexpr const char* kNotaHint =
    "on MariaDB this also means another live session still owns the branch; if XA RECOVER lists "
    "it, retry once that session has ended";

// A connection to `config`'s server (Connector/C++ throws on failure).
std::unique_ptr<sql::Connection> open_connection(const ResourceConfig& config);

class MysqlSession final : public BranchSession {
 public:
  MysqlSession(const ResourceConfig& config, std::unique_ptr<sql::Connection> conn)
      : BranchSession(config.name),
        config_(config),
        conn_(std::move(conn)),
        stmt_(conn_->createStatement()) {}

  ~MysqlSession() override { library(); }  // the closing thread must be registered too

  // Refuses servers that would undo prepared branches when a connection
  // drops; reads the connection id.
  void check_server();

  Result execute(std::string_view sql, std::span<const Param> params) override;
  std::vector<Result> execute_batch(std::span<const BatchStatement> statements) override;
  void begin(const Xid& xid) override;
  void begin_local(const Xid& xid) override;
  void prepare() override;
  FinishResult commit() override;
  void commit_one_phase() override;
  void commit_one_phase_with(std::string_view statement, std::span<const Param> params) override;
  void rollback() override;
  std::vector<PreparedXid> recover() override;
  ServerInfo server_info() override;
  // KILL QUERY from a connection of its own (see the top of the file).
  void cancel_running_statement() noexcept override;

 private:
  Result run(const std::string& sql, std::span<const Param> params);
  // The failure of statement(s) `sql` run under `watch`, as execute() reports it.
  [[noreturn]] void statement_threw(const sql::SQLException& e, DeadlineWatch& watch, std::string_view sql);
  // What `e` says; marks the session broken when the connection is gone.
  ServerError said(const sql::SQLException& e) noexcept;
  // Runs a statement that returns no rows; the failure instead of an exception.
  std::optional<ServerError> attempt(const std::string& sql) noexcept;
  // Reads (and discards) the results after the first of a multi-statement
  // `sql`, so that none is left unread on the connection.
  void drain_more_results(std::string_view sql);
  FinishResult finish_prepared(const Xid& xid, const std::string& verb) override;
  // XA END (errors ignored: already ended, or rollback-only) and XA ROLLBACK.
  void abandon() noexcept override;
  std::string literal() const { return xid_->mysql_literal(); }
  // A hex literal of the bytes, in utf8mb4: nothing to escape, nothing converted.
  std::string quote_literal(const std::string& text) const override {
    static const char* const kHex = "0123456789ABCDEF";
    std::string out = "_utf8mb4 X'";
    for (unsigned char c : text) {
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    return out + "'";
  }

  const ResourceConfig config_;             // to connect for KILL QUERY
  std::unique_ptr<sql::Connection> conn_;  // declared before the statements: outlives them
  std::unique_ptr<sql::Statement> stmt_;   // for statements without parameters
  StatementCache cache_;
  std::int64_t connection_id_ = 0;  // the server's id of conn_, for KILL QUERY
  bool mariadb_ = false;            // a one-branch commit prepares first (top of the file)
  // The statements that end an XA branch committed alone, after XA END.
  std::string one_phase_commit(const std::string& x) const {
    return mariadb_ ? "XA PREPARE " + x + "; XA COMMIT " + x : "XA COMMIT " + x + " ONE PHASE";
  }
};

void MysqlSession::check_server() {
  try {
    std::unique_ptr<sql::ResultSet> rs(stmt_->executeQuery("SELECT VERSION(), CONNECTION_ID()"));
    if (!rs->next()) throw error(Errc::sql, nullptr, "SELECT VERSION() answered no row");
    const std::string version = rs->getString(1).asStdString();
    connection_id_ = rs->getInt64(2);
    int major = 0, minor = 0, patch = 0;
    std::sscanf(version.c_str(), "%d.%d.%d", &major, &minor, &patch);
    const bool mariadb = version.find("MariaDB") != std::string::npos;
    mariadb_ = mariadb;
    const bool too_old = mariadb ? (major < 10 || (major == 10 && minor < 5))
                                 : (major < 5 || (major == 5 && (minor < 7 || (minor == 7 && patch < 7))));
    if (too_old)
      throw error(Errc::misconfigured, nullptr,
                  "server version " + version + " of resource '" + resource_ +
                      "' rolls back prepared XA branches when a connection drops, which breaks "
                      "two-phase commit",
                  "use MariaDB 10.5 or later, or MySQL 5.7.7 or later");
    // Only some versions have the variable; SHOW answers no row when it is missing.
    rs.reset(stmt_->executeQuery("SHOW GLOBAL VARIABLES LIKE 'legacy_xa_rollback_at_disconnect'"));
    if (rs->next()) {
      const std::string value = rs->getString(2).asStdString();
      if (value == "ON" || value == "1")
        throw error(Errc::misconfigured, nullptr,
                    "resource '" + resource_ +
                        "' would roll back prepared XA branches when a connection drops "
                        "(legacy_xa_rollback_at_disconnect=ON), which breaks two-phase commit",
                    "set legacy_xa_rollback_at_disconnect=OFF (SET GLOBAL, and in the server's "
                    "configuration file)");
    }
  } catch (const sql::SQLException& e) {
    ServerError f = said(e);
    throw error(f.lost ? Errc::unavailable : Errc::sql, &f,
                "checking the server's XA settings failed");
  }
}

Result MysqlSession::execute(std::string_view sql, std::span<const Param> params) {
  library();
  require_statement(sql, SqlDialect::mysql);
  if (mysql_has_several_statements(sql))
    throw error(Errc::usage, nullptr,
                "several statements in one call; run one statement per execute(): " + excerpt(sql));
  DeadlineWatch watch = watch_deadline();
  try {
    return run(std::string(sql), params);
  } catch (const sql::SQLException& e) {
    statement_threw(e, watch, sql);
  }
}

void MysqlSession::statement_threw(const sql::SQLException& e, DeadlineWatch& watch, std::string_view sql) {
  const bool cancelled = watch.end();
  ServerError f = said(e);
  const Errc code = cancelled && f.code == kQueryInterrupted ? Errc::timeout : classify(f.code);
  Error err = statement_error(code, f, sql);
  statement_failed(f);
  // After a deadlock the server has rolled the whole transaction back; end
  // the branch to match.
  if (state() == BranchState::active && f.code == kDeadlock) abandon();
  throw err;
}

std::vector<Result> MysqlSession::execute_batch(std::span<const BatchStatement> statements) {
  library();
  std::string sql;
  for (const auto& s : statements) {
    if (!sql.empty()) sql += "; ";
    sql += inline_params(s.sql, s.params);
  }
  require_statement(sql, SqlDialect::mysql);
  DeadlineWatch watch = watch_deadline();
  std::vector<Result> out;
  try {
    bool rows = stmt_->execute(sql);
    for (std::size_t i = 0; i < statements.size(); ++i) {
      if (i > 0) rows = stmt_->getMoreResults();
      if (rows) {
        std::unique_ptr<sql::ResultSet> rs(stmt_->getResultSet());
        out.push_back(read_rows(*rs));
      } else {
        out.push_back(Result({}, {}, stmt_->getUpdateCount()));
      }
    }
    drain_more_results(sql);
    return out;
  } catch (const sql::SQLException& e) {
    statement_threw(e, watch, sql);
  }
}

void MysqlSession::drain_more_results(std::string_view sql) {
  // getMoreResults() moves to the next result, running that statement and
  // throwing its error; it answers true for rows (which must be fetched) and
  // false both for "no more" and for a result without rows, which
  // getUpdateCount() then tells apart (~0: no more) — in the Connector/C++
  // versions that set it there. Older ones do not, so a bounded number of
  // further steps follows: there are at most as many statements as ';' after
  // the first, and a step past the last result does nothing. (A CALL's row
  // sets come before its final status, so the first loop reads them all.)
  auto step = [&] {
    if (stmt_->getMoreResults()) {
      std::unique_ptr<sql::ResultSet> discarded(stmt_->getResultSet());
      return true;
    }
    return stmt_->getUpdateCount() != ~std::uint64_t{0};
  };
  while (step()) {
  }
  for (auto more = std::count(sql.begin(), sql.end(), ';'); more > 0; --more) step();
}

Result MysqlSession::run(const std::string& sql, std::span<const Param> params) {
  if (params.empty()) {
    if (!stmt_->execute(sql)) {
      Result r({}, {}, stmt_->getUpdateCount());
      drain_more_results(sql);
      return r;
    }
    std::unique_ptr<sql::ResultSet> rs(stmt_->getResultSet());
    Result r = read_rows(*rs);
    rs.reset();
    drain_more_results(sql);
    return r;
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
  // INSERT / DELETE ... RETURNING: the prepare announces no columns, but the
  // execution returns rows, which must be read (else the connection is out of
  // sync). Their count is the rows changed.
  if (mysql_has_returning(sql)) {
    if (!ps.execute()) {
      std::unique_ptr<sql::ResultSet> rc(stmt_->executeQuery("SELECT ROW_COUNT()"));
      return Result({}, {}, rc->next() ? static_cast<std::uint64_t>(rc->getInt64(1)) : 0);
    }
    std::unique_ptr<sql::ResultSet> rs(ps.getResultSet());
    Result r = read_rows(*rs);
    return Result(std::vector<std::string>(r.columns()), std::vector<Row>(r.begin(), r.end()), r.size());
  }
  return Result({}, {}, static_cast<std::uint64_t>(ps.executeUpdate()));
}

void MysqlSession::begin(const Xid& xid) {
  library();
  require(BranchState::none, "begin a branch");
  if (auto f = attempt("XA START " + xid.mysql_literal()))
    throw error(classify(f->code), &*f, "XA START failed", {}, &xid);
  started(xid);
}

void MysqlSession::begin_local(const Xid& xid) {
  library();
  require(BranchState::none, "begin a local transaction");
  if (auto f = attempt("START TRANSACTION"))
    throw error(classify(f->code), &*f, "START TRANSACTION failed", {}, &xid);
  started(xid, /*local=*/true);
}

void MysqlSession::prepare() {
  library();
  require(BranchState::active, "prepare");
  if (local_) throw error(Errc::usage, nullptr, "a local transaction cannot be prepared");
  refuse_if_failed("prepared");
  const std::string x = literal();
  std::optional<ServerError> f = attempt("XA END " + x + "; XA PREPARE " + x);
  if (!f) {
    mark_prepared();
    return;
  }
  if (f->lost)  // may or may not be prepared: recovery decides
    throw error(Errc::unavailable, &*f, "connection lost while preparing the branch");
  abandon_and_throw(error(classify(f->code), &*f, "XA PREPARE failed; the branch was rolled back"));
}

FinishResult MysqlSession::commit() {
  library();
  return commit_own_branch();
}

void MysqlSession::commit_one_phase() {
  library();
  require(BranchState::active, "commit in one phase");
  refuse_if_failed("committed");
  const std::string x = literal();
  std::optional<ServerError> f =
      attempt(local_ ? std::string("COMMIT") : "XA END " + x + "; " + one_phase_commit(x));
  if (!f) {
    finish();
    return;
  }
  if (f->lost)
    throw error(Errc::unavailable, &*f,
                "connection lost during the one-phase commit; its outcome is unknown");
  abandon_and_throw(error(classify(f->code), &*f,
                          std::string(local_ ? "COMMIT" : "XA COMMIT ONE PHASE") +
                              " failed; the branch was rolled back"));
}

void MysqlSession::commit_one_phase_with(std::string_view statement, std::span<const Param> params) {
  library();
  require(BranchState::active, "commit in one phase");
  refuse_if_failed("committed");
  // One multi-statement query: the server stops at the first error, so a
  // failed statement is never followed by the COMMIT.
  const std::string x = literal();
  std::optional<ServerError> f =
      attempt(inline_params(statement, params) +
              (local_ ? std::string("; COMMIT") : "; XA END " + x + "; " + one_phase_commit(x)));
  if (!f) {
    finish();
    return;
  }
  if (f->lost)
    throw error(Errc::unavailable, &*f, "connection lost during the commit; its outcome is unknown");
  abandon_and_throw(error(classify(f->code), &*f, "the last statement or the COMMIT failed; the branch was "
                                                   "rolled back: " + excerpt(statement)));
}

void MysqlSession::rollback() {
  library();
  if (state() == BranchState::none) return;
  if (state() == BranchState::active) {
    abandon();
    return;
  }
  if (broken_)
    throw error(Errc::unavailable, nullptr,
                "cannot roll back the prepared branch: the connection was lost; it stays prepared "
                "for recovery");
  std::optional<ServerError> f = attempt("XA ROLLBACK " + literal());
  if (!f || is_xa_rb(f->code) || f->code == kXaerNota) {
    finish();
    return;
  }
  throw error(classify(f->code), &*f,
              "XA ROLLBACK of the prepared branch failed; it stays prepared for recovery");
}

FinishResult MysqlSession::finish_prepared(const Xid& xid, const std::string& verb) {
  library();
  require(BranchState::none, "finish a prepared branch by xid");
  std::optional<ServerError> f = attempt("XA " + verb + " " + xid.mysql_literal());
  if (!f) return {};
  const FinishOutcome outcome = f->lost                 ? FinishOutcome::unavailable
                                : is_xa_rb(f->code)     ? FinishOutcome::rolled_back_by_database
                                : f->code == kXaerNota  ? FinishOutcome::not_found
                                                        : FinishOutcome::failed;
  return {outcome, error(classify(f->code), &*f,
                         "XA " + verb + " of prepared branch " + xid.to_string() + " failed",
                         f->code == kXaerNota ? kNotaHint : "", &xid)};
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
    ServerError f = said(e);
    throw error(classify(f.code), &f, "XA RECOVER failed",
                "MySQL 8 needs the XA_RECOVER_ADMIN privilege for XA RECOVER");
  }
  return out;
}

ServerInfo MysqlSession::server_info() {
  require(BranchState::none, "read the server's version");
  Result r = execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@log_bin, @@sync_binlog", {});
  ServerInfo info;
  if (r.empty()) return info;
  info.version = r[0].cell(0).value_or("");
  const std::string flush = r[0].cell(1).value_or("1"), log_bin = r[0].cell(2).value_or("0"),
                    sync_binlog = r[0].cell(3).value_or("1");
  if (flush != "1")
    info.durability_warnings.push_back(
        "innodb_flush_log_at_trx_commit=" + flush +
        ": InnoDB does not flush its log at each prepare and commit, so a crash can lose branches the server "
        "acknowledged as prepared or committed; set innodb_flush_log_at_trx_commit=1");
  if (log_bin == "1" && sync_binlog != "1")
    info.durability_warnings.push_back(
        "sync_binlog=" + sync_binlog +
        ": the binary log, the commit point of every transaction, is not flushed at each commit, so an "
        "operating-system crash or power failure can lose commits the server acknowledged (AT branches and "
        "decision rows commit that way); set sync_binlog=1");
  return info;
}

void MysqlSession::cancel_running_statement() noexcept {
  try {
    library();  // this is the watchdog's thread
    std::unique_ptr<sql::Connection> killer = open_connection(config_);
    std::unique_ptr<sql::Statement> kill(killer->createStatement());
    kill->execute("KILL QUERY " + std::to_string(connection_id_));
  } catch (const std::exception& e) {
    try {
      logger().warn("resource {}: could not cancel the statement of connection {} at its "
                    "deadline: {}", resource_, connection_id_, e.what());
    } catch (...) {
    }
  }
}

ServerError MysqlSession::said(const sql::SQLException& e) noexcept {
  ServerError f{e.getErrorCode(), e.getSQLState(), e.what(), false};
  // Client-library errors (2xxx) leave the connection in an unknown state.
  f.lost = is_connection_lost(f.code) || (f.code >= 2000 && f.code < 3000);
  try {
    if (conn_->isClosed()) f.lost = true;
  } catch (...) {
    f.lost = true;
  }
  if (f.lost) broken_ = true;
  return f;
}

std::optional<ServerError> MysqlSession::attempt(const std::string& sql) noexcept {
  try {
    stmt_->execute(sql);
    drain_more_results(sql);
    return std::nullopt;
  } catch (const sql::SQLException& e) {
    ServerError f = said(e);
    logger().debug("{}: {} on resource {}: {} ({})", xid_ ? xid_->to_string() : "-", sql, resource_,
                   f.message, f.code);
    return f;
  }
}

void MysqlSession::abandon() noexcept {
  if (local_) {
    if (!broken_ && attempt("ROLLBACK")) broken_ = true;  // unknown state: close it
    finish();
    return;
  }
  if (!broken_) attempt("XA END " + literal());  // fails when already ended or rolled back: fine
  if (!broken_) {
    std::optional<ServerError> f = attempt("XA ROLLBACK " + literal());
    if (f && !is_xa_rb(f->code) && f->code != kXaerNota) {
      // Unknown server-side state: closing the connection rolls the branch back.
      logger().warn("{}: could not roll back the active branch on resource {}: {}",
                    xid_->to_string(), resource_, f->message);
      broken_ = true;
    }
  }
  finish();
}

}  // namespace

namespace {

std::unique_ptr<sql::Connection> open_connection(const ResourceConfig& config) {
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
  options["CLIENT_MULTI_STATEMENTS"] = true;  // XA END; XA PREPARE in one round trip
  std::lock_guard lock(connect_mutex);
  return std::unique_ptr<sql::Connection>(driver->connect(options));
}

}  // namespace

std::unique_ptr<Session> connect_mysql(const ResourceConfig& config) {
  std::unique_ptr<sql::Connection> conn;
  try {
    conn = open_connection(config);
  } catch (const sql::SQLException& e) {
    throw Error({.code = Errc::unavailable,
                 .resource = config.name,
                 .server_code = e.getErrorCode(),
                 .sqlstate = e.getSQLState(),
                 .server_message = e.what()},
                "cannot connect");
  }
  auto session = std::make_unique<MysqlSession>(config, std::move(conn));
  session->check_server();
  return session;
}

namespace {

bool several_statements(std::string_view sql, bool backslash_escapes) {
  const std::size_t n = sql.size();
  auto comment_end = [&](std::size_t i) { return sql_comment_end(sql, i, SqlDialect::mysql); };
  std::size_t i = 0;
  while (i < n) {
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      std::size_t j = i + 1;
      while (j < n) {
        if (sql[j] == '\\' && backslash_escapes && c != '`') {
          j += 2;
        } else if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {
            j += 2;  // doubled quote
          } else {
            ++j;
            break;
          }
        } else {
          ++j;
        }
      }
      i = j;
    } else if (std::size_t end = comment_end(i); end != i) {
      i = end;  // /*! ... */ is no comment: its inside is scanned as code
    } else if (c == ';') {
      // Anything but whitespace, comments and ';' (an executable /*! comment included).
      return sql_skip_blank(sql, i + 1, SqlDialect::mysql, /*semicolons=*/true) < n;
    } else {
      ++i;
    }
  }
  return false;
}

}  // namespace

bool mysql_has_returning(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size()) {
    const std::size_t after = sql_comment_end(sql, i, SqlDialect::mysql);
    if (after != i) {
      i = after;
      continue;
    }
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      for (++i; i < sql.size() && sql[i] != c; ++i)
        if (sql[i] == '\\' && c != '`') ++i;
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_' || sql[j] == '$'))
        ++j;
      std::string word(sql.substr(i, j - i));
      for (auto& ch : word) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (word == "RETURNING") return true;
      i = j;
      continue;
    }
    ++i;
  }
  return false;
}

bool mysql_has_several_statements(std::string_view sql) {
  // A compound statement's body holds ';' inside one statement.
  SqlKeywords words(sql, SqlDialect::mysql);
  const std::string first = words.next();
  if (first == "CREATE" || first == "ALTER" || (first == "BEGIN" && words.next() == "NOT")) return false;
  // Without a backslash both readings are the same.
  if (sql.find('\\') == std::string_view::npos) return several_statements(sql, true);
  return several_statements(sql, true) || several_statements(sql, false);
}

}  // namespace dtx
