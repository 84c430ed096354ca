// PostgreSQL as an XA resource manager, over libpqxx 6.4.
//
// A session is one connection with one pqxx::nontransaction open for its whole
// life; the driver writes the transaction control itself, because a pqxx::work
// cannot be prepared:
//
//   begin             BEGIN
//   prepare           PREPARE TRANSACTION 'gid'
//   commit            COMMIT PREPARED 'gid'   (answers as FinishOutcome, uninterpreted)
//   commit_one_phase  COMMIT
//   rollback          active: ROLLBACK          prepared: ROLLBACK PREPARED 'gid'
//   recover           pg_prepared_xacts of the current database
//
// gid is Xid::postgres_gid() ("dtx:<gtrid>:<bqual>"), quoted by the connection.
//
// The trap: PREPARE TRANSACTION (and COMMIT) raise no error in a block that
// has failed, nor outside a block: PostgreSQL rolls back (or does nothing) and
// answers with the command tag ROLLBACK, which libpqxx 6.4 does not show. In a
// block that is open and has not failed, PREPARE TRANSACTION either prepares
// or raises. So the driver keeps, without spending a round trip, the block
// begin() opened open and healthy until prepare() or commit_one_phase():
//   - Every failure of the block is seen. While a branch is active, every
//     statement goes through the extended protocol, one statement per call (a
//     string holding several is an error), so an error in the block comes back
//     as the failure of the statement that caused it. The session remembers it
//     and refuses to prepare or commit: it rolls back and throws
//     Errc::rolled_back.
//   - Nothing ends the block behind the driver's back. While a branch is
//     active, execute() refuses transaction control (COMMIT, END, ROLLBACK,
//     ABORT, PREPARE TRANSACTION, BEGIN, START TRANSACTION; ROLLBACK TO
//     SAVEPOINT is fine) with Errc::usage, leaving the branch intact; a COMMIT
//     or ROLLBACK inside DO or a procedure is an error in an explicit block,
//     which the point above catches.
//   - A lost connection is never replaced. The statement that meets the loss
//     fails and marks the session broken, after which it runs nothing; as a
//     second line, libpqxx's automatic reconnection (which would run the next
//     statement in autocommit on a new connection) is inhibited.
// An earlier version proved the block's health in prepare() instead: BEGIN
// also set a transaction-local setting to the gid, and a guard dividing by
// zero unless it still held the gid ran in the same simple query as PREPARE
// TRANSACTION. Sound, but two extra statements cost ~8-10 % of a two-resource
// transaction's throughput (BENCHMARKS.md).
// max_prepared_transactions is read at connect; when it is 0, prepare() fails
// fast with Errc::misconfigured saying what to change, instead of a bare 55000.
//
// COPY is refused inside a branch (Errc::usage, the branch unchanged): FROM
// STDIN / TO STDOUT would switch the connection to the COPY sub-protocol,
// which the driver does not speak (libpqxx 6.4 then reports nonsense and the
// connection is lost). A connection lost during a statement of an active
// branch — the server shut down, or the statement was
// pg_terminate_backend(pg_backend_pid()) — is reported as such: PostgreSQL
// rolls an open block back when its connection ends.
//
// Deadlines (Session::set_deadline): execute(), and the PREPARE TRANSACTION
// and COMMIT that end the block (deferred constraints and triggers run there
// and can wait for row locks), arm a DeadlineWatch (drivers/deadline_watchdog.h).
// If the statement is still running at the deadline — PostgreSQL lets a lock
// wait last forever unless lock_timeout is set — the watchdog's thread sends
// a cancel request (libpqxx cancel_query(), libpq's PQcancel, which is made
// to be called from another thread than the connection's), and the statement
// fails with 57014, reported as Errc::timeout. A cancel that arrives when the
// statement is over is ignored by an idle backend. Cancelling PREPARE
// TRANSACTION or COMMIT is safe: PostgreSQL either raises before the point of
// no return (the block is rolled back, and so reported) or ignores the cancel.
// No round trip is added to a statement that ends in time. The alternative,
// SET LOCAL statement_timeout sent with BEGIN in the same simple query, is
// as cheap but bounds each statement by the time left at BEGIN, not by the
// time left when it runs, so a transaction of several statements could
// overrun its timeout several times over.
#include "drivers/postgres_driver.h"

#include <pqxx/pqxx>

#include "drivers/branch_session.h"
#include "base/logging.h"
#include "drivers/sql_words.h"
#include "dtx/error.h"

namespace dtx {

namespace {

constexpr std::string_view kUndefinedObject = "42704";  // unknown gid in COMMIT/ROLLBACK PREPARED
constexpr std::string_view kInFailedTransaction = "25P02";
constexpr std::string_view kObjectInUse = "55000";
constexpr std::string_view kQueryCanceled = "57014";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// The exception being handled, as a ServerError. libpqxx 6.4 throws SQLSTATE
// class 40 as transaction_rollback subclasses without the SQLSTATE, and
// class 08 as broken_connection.
ServerError current_failure() {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return {0, "", trimmed(e.what()), true};
  } catch (const pqxx::sql_error& e) {
    // 08: connection exception; 57P0x: the server is shutting down or
    // terminated this backend.
    const std::string& state = e.sqlstate();
    return {0, state, trimmed(e.what()), state.starts_with("08") || state.starts_with("57P")};
  } catch (const pqxx::deadlock_detected& e) {
    return {0, "40P01", trimmed(e.what()), false};
  } catch (const pqxx::serialization_failure& e) {
    return {0, "40001", trimmed(e.what()), false};
  } catch (const pqxx::statement_completion_unknown& e) {
    return {0, "40003", trimmed(e.what()), true};
  } catch (const pqxx::transaction_rollback& e) {
    return {0, "40000", trimmed(e.what()), false};
  } catch (const std::exception& e) {
    return {0, "", trimmed(e.what()), true};  // libpqxx's own failures: state unknown
  }
}

bool prepared_xacts_disabled(const ServerError& f) {
  return f.sqlstate == "55000" &&
         f.message.find("prepared transactions are disabled") != std::string::npos;
}

Errc classify(const ServerError& f) {
  if (f.lost) return Errc::unavailable;
  if (f.sqlstate == "40001" || f.sqlstate == "40P01") return Errc::retryable;
  if (prepared_xacts_disabled(f)) return Errc::misconfigured;
  return Errc::sql;
}

// For COMMIT PREPARED / ROLLBACK PREPARED, where 42704 names the gid.
Errc classify_by_gid(const ServerError& f) {
  return f.sqlstate == kUndefinedObject ? Errc::unknown_xid : classify(f);
}

std::string disabled_hint(const std::string& resource) {
  return "set max_prepared_transactions > 0 (at least max_connections) in postgresql.conf on " +
         resource + " and restart the server";
}

// A libpq connection-string value, quoted.
std::string conninfo_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

Result to_result(const pqxx::result& r) {
  std::vector<std::string> columns;
  const auto ncols = r.columns();
  for (pqxx::row::size_type c = 0; c < ncols; ++c) columns.emplace_back(r.column_name(c));
  std::vector<Row> rows;
  rows.reserve(r.size());
  for (const auto& row : r) {
    std::vector<std::optional<std::string>> cells;
    cells.reserve(ncols);
    for (const auto& field : row) {
      if (field.is_null())
        cells.emplace_back();
      else
        cells.emplace_back(std::string(field.c_str(), field.size()));
    }
    rows.emplace_back(std::move(cells));
  }
  const std::uint64_t affected = ncols == 0 ? r.affected_rows() : 0;
  return Result(std::move(columns), std::move(rows), affected);
}

// Server notices ("there is no transaction in progress", ...) go to the debug
// log instead of libpq's default, stderr.
class NoticeLog final : public pqxx::errorhandler {
 public:
  NoticeLog(pqxx::connection_base& conn, std::string resource)
      : pqxx::errorhandler(conn), resource_(std::move(resource)) {}
  bool operator()(const char msg[]) noexcept override {
    try {
      logger().debug("resource {}: {}", resource_, trimmed(msg));
    } catch (...) {
    }
    return false;
  }

 private:
  std::string resource_;
};

class PostgresSession final : public BranchSession {
 public:
  PostgresSession(std::string resource, std::unique_ptr<pqxx::connection> conn)
      : BranchSession(std::move(resource)),
        conn_(std::move(conn)),
        notices_(*conn_, resource_),
        tx_(*conn_, "dtx") {}

  // Reads what prepare() needs to know about the server.
  void read_settings();

  Result execute(std::string_view sql, std::span<const Param> params) override;
  void begin(const Xid& xid) override;
  void begin_local(const Xid& xid) override;
  void prepare() override;
  FinishResult commit() override;
  void commit_one_phase() override;
  void commit_one_phase_with(std::string_view statement, std::span<const Param> params) override;
  void rollback() override;
  std::vector<PreparedXid> recover() override;
  ServerInfo server_info() override;
  void cancel_running_statement() noexcept override;

 private:
  // Runs `query` (on tx_); on failure fills *said, marks the session broken
  // on connection loss and rethrows.
  template <typename Query>
  pqxx::result guarded(Query&& query, ServerError* said);
  // Runs `sql` as one simple query, guarded.
  pqxx::result exec(const std::string& sql, ServerError* said);
  std::optional<ServerError> attempt(const std::string& sql) noexcept;
  // What a failed PREPARE TRANSACTION or COMMIT of the active block means;
  // `cancelled`: the deadline's watch cancelled it.
  Error end_block_error(const ServerError& f, const std::string& statement, bool cancelled) const;
  FinishResult finish_prepared(const Xid& xid, const std::string& verb) override;
  // ROLLBACK of the active block, whatever state it is in.
  void abandon() noexcept override;
  std::string quoted_gid(const Xid& xid) const;
  std::string quote_literal(const std::string& text) const override { return conn_->quote(text); }
  // Ends the active block with `sql` (ending in COMMIT); `what` names it in errors.
  void end_block_with(const std::string& sql, const char* what);

  std::unique_ptr<pqxx::connection> conn_;  // declared first: outlives the handler and tx_
  NoticeLog notices_;
  pqxx::nontransaction tx_;
  int max_prepared_transactions_ = 0;
  // begin_local() sent nothing yet: BEGIN goes with the first statement.
  bool begin_pending_ = false;
};

void PostgresSession::read_settings() {
  ServerError f;
  try {
    pqxx::result r = exec("SHOW max_prepared_transactions", &f);
    max_prepared_transactions_ = r.at(0).at(0).as<int>();
  } catch (...) {
    if (f.message.empty()) f = current_failure();
    throw error(f.lost ? Errc::unavailable : Errc::sql, &f,
                "reading max_prepared_transactions failed");
  }
}

template <typename Query>
pqxx::result PostgresSession::guarded(Query&& query, ServerError* said) {
  try {
    return query();
  } catch (...) {
    *said = current_failure();
    if (!conn_->is_open()) said->lost = true;
    if (said->lost) broken_ = true;
    throw;
  }
}

pqxx::result PostgresSession::exec(const std::string& sql, ServerError* said) {
  return guarded([&] { return tx_.exec(sql); }, said);
}

Result PostgresSession::execute(std::string_view sql, std::span<const Param> params) {
  require_statement(sql, SqlDialect::postgres);
  const bool in_branch = state() == BranchState::active;
  if (in_branch) {
    // See the top of the file: the branch's block is the driver's to end.
    if (std::string verb = transaction_control_keyword(sql); !verb.empty())
      throw error(Errc::usage, nullptr,
                  verb + " cannot run inside a branch: dtx ends the branch's transaction block "
                         "itself (commit or roll back the transaction through dtx); the branch "
                         "is unchanged: " + excerpt(sql));
    if (SqlKeywords(sql, SqlDialect::postgres).next(/*skip_semicolons=*/true) == "COPY")
      throw error(Errc::usage, nullptr,
                  "COPY cannot run inside a branch: dtx does not speak PostgreSQL's COPY "
                  "protocol; the branch is unchanged: " + excerpt(sql),
                  "write the rows with INSERT ... VALUES (several rows per statement) or INSERT "
                  "... SELECT, or run the COPY outside the global transaction");
  }
  // A local transaction's first statement goes with its BEGIN, in one simple
  // query, the parameters as literals (untyped, as the extended protocol
  // sends them too, so the statement means the same).
  const bool with_begin = in_branch && begin_pending_;
  NumberedSql numbered;
  std::vector<std::optional<std::string>> texts;
  std::vector<const char*> values;  // nullptr is how libpqxx 6.4 spells NULL here
  if (with_begin) {
    numbered = number_placeholders(sql, [&](std::size_t k) {
      auto text = k < params.size() ? params[k].to_text() : std::nullopt;
      return text ? quote_literal(*text) : std::string("NULL");
    });
  } else if (!params.empty()) {
    numbered = number_placeholders(sql);
    texts.reserve(params.size());
    for (const Param& p : params) texts.push_back(p.to_text());
    for (const auto& t : texts) values.push_back(t ? t->c_str() : nullptr);
  } else {
    numbered.sql = sql;
  }
  if (numbered.placeholders != params.size())
    throw error(Errc::usage, nullptr,
                "statement has " + std::to_string(numbered.placeholders) + " placeholders but " +
                    std::to_string(params.size()) + " parameters were given: " + excerpt(sql));
  begin_pending_ = begin_pending_ && !with_begin;
  ServerError f;
  DeadlineWatch watch = watch_deadline();
  try {
    if (with_begin) return to_result(exec("BEGIN; " + numbered.sql, &f));
    // Outside a branch a parameterless string may hold several statements
    // (simple protocol); inside one, the extended protocol allows only one.
    if (!in_branch && params.empty()) return to_result(exec(numbered.sql, &f));
    return to_result(guarded(
        [&] { return tx_.exec_params(numbered.sql, pqxx::prepare::make_dynamic_params(values)); },
        &f));
  } catch (...) {
    const bool cancelled = watch.end();
    if (f.message.empty()) f = current_failure();
    const Errc code = cancelled && f.sqlstate == kQueryCanceled ? Errc::timeout : classify(f);
    Error err = statement_error(code, f, sql);
    statement_failed(f);
    throw err;
  }
}

void PostgresSession::begin(const Xid& xid) {
  require(BranchState::none, "begin a branch");
  if (auto f = attempt("BEGIN")) {
    Error err = error(classify(*f), &*f, "BEGIN failed", {}, &xid);
    if (!broken_ && attempt("ROLLBACK")) broken_ = true;  // the block may have opened
    throw err;
  }
  started(xid);
}

void PostgresSession::begin_local(const Xid& xid) {
  // No round trip: BEGIN goes with the first statement (execute), or with
  // the last and its COMMIT (commit_one_phase_with); a transaction that ran
  // nothing has nothing to commit or roll back.
  require(BranchState::none, "begin a local transaction");
  started(xid, /*local=*/true);
  begin_pending_ = true;
}

Error PostgresSession::end_block_error(const ServerError& f, const std::string& statement,
                                       bool cancelled) const {
  if (cancelled && f.sqlstate == kQueryCanceled)
    return error(Errc::timeout, &f,
                 statement + " was cancelled at the branch's deadline (its transaction's "
                             "timeout); the branch was rolled back");
  if (f.sqlstate == kInFailedTransaction)  // not expected: failures are refused before
    return error(Errc::rolled_back, &f,
                 "the branch's transaction block had failed, so PostgreSQL can only roll it back; "
                 "it was rolled back");
  const Errc code = classify(f);
  return error(code, &f, statement + " failed; the branch was rolled back",
               code == Errc::misconfigured ? disabled_hint(resource_) : "");
}

void PostgresSession::prepare() {
  require(BranchState::active, "prepare");
  if (local_) throw error(Errc::usage, nullptr, "a local transaction cannot be prepared");
  refuse_if_failed("prepared");
  if (max_prepared_transactions_ == 0)
    abandon_and_throw(error(Errc::misconfigured, nullptr,
                            "cannot prepare the branch: resource '" + resource_ +
                                "' has max_prepared_transactions = 0 (prepared transactions are "
                                "disabled); the branch was rolled back",
                            disabled_hint(resource_)));
  refuse_if_past_deadline("PREPARE TRANSACTION");
  ServerError f;
  DeadlineWatch watch = watch_deadline();
  try {
    // The block begin() opened is open and has not failed (see the top), and
    // in such a block PREPARE TRANSACTION either prepares or raises.
    exec("PREPARE TRANSACTION " + quoted_gid(*xid_), &f);
  } catch (...) {
    const bool cancelled = watch.end();
    if (f.message.empty()) f = current_failure();
    if (f.lost)  // may or may not be prepared: recovery decides
      throw error(Errc::unavailable, &f, "connection lost while preparing the branch");
    // PostgreSQL has rolled back already; the ROLLBACK ends any block left open.
    abandon_and_throw(end_block_error(f, "PREPARE TRANSACTION", cancelled));
  }
  mark_prepared();
}

FinishResult PostgresSession::commit() { return commit_own_branch(); }

void PostgresSession::commit_one_phase() {
  require(BranchState::active, "commit in one phase");
  if (begin_pending_) {  // nothing ran: nothing to commit
    begin_pending_ = false;
    finish();
    return;
  }
  end_block_with("COMMIT", "COMMIT");
}

void PostgresSession::commit_one_phase_with(std::string_view statement, std::span<const Param> params) {
  require(BranchState::active, "commit in one phase");
  // One simple query: PostgreSQL stops at the first error, and the block is
  // then failed, so COMMIT cannot commit anything after a failure.
  end_block_with((begin_pending_ ? "BEGIN; " : "") + inline_params(statement, params) + "; COMMIT",
                 "the last statement or COMMIT");
}

void PostgresSession::end_block_with(const std::string& sql, const char* what) {
  refuse_if_failed("committed");
  refuse_if_past_deadline("COMMIT");
  begin_pending_ = false;
  ServerError f;
  bool cancelled = false;
  DeadlineWatch watch = watch_deadline();
  try {
    exec(sql, &f);  // open and healthy (see the top): commits or raises
    watch.end();
    finish();
    return;
  } catch (...) {
    cancelled = watch.end();
    if (f.message.empty()) f = current_failure();
  }
  if (f.lost)
    throw error(Errc::unavailable, &f, "connection lost during the commit; its outcome is unknown");
  // A failed COMMIT (deferred constraint, serialization failure) rolls back.
  abandon_and_throw(end_block_error(f, what, cancelled));
}

void PostgresSession::rollback() {
  if (state() == BranchState::none) return;
  if (state() == BranchState::active) {
    abandon();
    return;
  }
  if (broken_)
    throw error(Errc::unavailable, nullptr,
                "cannot roll back the prepared branch: the connection was lost; it stays prepared "
                "for recovery");
  std::optional<ServerError> f = attempt("ROLLBACK PREPARED " + quoted_gid(*xid_));
  if (!f || f->sqlstate == kUndefinedObject) {
    finish();
    return;
  }
  throw error(classify(*f), &*f,
              "ROLLBACK PREPARED failed; the branch stays prepared for recovery");
}

FinishResult PostgresSession::finish_prepared(const Xid& xid, const std::string& verb) {
  require(BranchState::none, "finish a prepared branch by xid");
  std::optional<ServerError> f = attempt(verb + " PREPARED " + quoted_gid(xid));
  if (!f) return {};
  FinishOutcome outcome = FinishOutcome::failed;
  if (f->lost)
    outcome = FinishOutcome::unavailable;
  else if (f->sqlstate == kUndefinedObject)
    outcome = FinishOutcome::not_found;
  else if (f->sqlstate == kObjectInUse && !prepared_xacts_disabled(*f))
    outcome = FinishOutcome::owned_by_live_session;  // "... is busy": another backend is finishing it
  return {outcome, error(classify_by_gid(*f), &*f,
                         verb + " PREPARED of " + xid.to_string() + " failed", {}, &xid)};
}

std::vector<PreparedXid> PostgresSession::recover() {
  if (broken_) require(BranchState::none, "list prepared branches");
  ServerError f;
  pqxx::result r;
  try {
    r = exec(
        "SELECT gid, (extract(epoch FROM prepared) * 1000000)::bigint, owner "
        "FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared",
        &f);
  } catch (...) {
    if (f.message.empty()) f = current_failure();
    statement_failed(f);  // inside an active branch it failed the block
    throw error(classify(f), &f, "listing pg_prepared_xacts failed");
  }
  std::vector<PreparedXid> out;
  for (const auto& row : r) {
    PreparedXid p;
    p.raw = row[0].as<std::string>();
    if (std::optional<Xid> x = Xid::from_postgres_gid(p.raw)) {
      p.xid = std::move(*x);
      p.is_dtx = true;
    } else {
      p.xid = Xid{0, p.raw, ""};  // not ours: the gid, for display and for operators
    }
    p.prepared_at = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::microseconds(row[1].as<long long>())));
    p.owner = row[2].as<std::string>();
    out.push_back(std::move(p));
  }
  return out;
}

ServerInfo PostgresSession::server_info() {
  require(BranchState::none, "read the server's settings");
  Result r = execute("SELECT current_setting('server_version'), "
                     "current_setting('max_prepared_transactions')::int, current_setting('fsync'), "
                     "current_setting('synchronous_commit')", {});
  ServerInfo info;
  if (r.empty()) return info;
  info.version = r[0].cell(0).value_or("");
  if (!r[0].is_null(1)) info.max_prepared_transactions = static_cast<int>(r[0].as_int64(1));
  if (r[0].cell(2).value_or("on") == "off")
    info.durability_warnings.push_back(
        "fsync=off: nothing is flushed, so an operating-system crash or power failure can lose prepared and "
        "committed transactions, or corrupt the database; set fsync=on");
  // PREPARE TRANSACTION and COMMIT PREPARED always wait for their WAL flush;
  // a plain COMMIT (AT branches, decision rows) does not when this is off.
  if (r[0].cell(3).value_or("on") == "off")
    info.durability_warnings.push_back(
        "synchronous_commit=off: a local COMMIT is acknowledged before its WAL is flushed, so a crash can lose "
        "AT branches and decision rows the server acknowledged; set synchronous_commit=on (or local)");
  return info;
}

void PostgresSession::cancel_running_statement() noexcept {
  try {
    conn_->cancel_query();
  } catch (const std::exception& e) {
    try {
      logger().warn("resource {}: could not cancel the statement of backend {} at its deadline: {}",
                    resource_, conn_->backendpid(), trimmed(e.what()));
    } catch (...) {
    }
  }
}

std::optional<ServerError> PostgresSession::attempt(const std::string& sql) noexcept {
  ServerError f;
  try {
    exec(sql, &f);
    return std::nullopt;
  } catch (...) {
    logger().debug("{}: {} on resource {}: {}", xid_ ? xid_->to_string() : "-", sql, resource_,
                   f.message);
    return f;
  }
}

void PostgresSession::abandon() noexcept {
  if (begin_pending_) {  // BEGIN was never sent
    begin_pending_ = false;
    finish();
    return;
  }
  // Outside a block (PostgreSQL already rolled back) this is only a warning.
  if (!broken_ && attempt("ROLLBACK")) broken_ = true;  // unknown state: close it
  finish();
}

std::string PostgresSession::quoted_gid(const Xid& xid) const {
  // Foreign branches (from recover()) carry their gid as the gtrid.
  return conn_->quote(xid.is_dtx() ? xid.postgres_gid() : xid.gtrid);
}

}  // namespace

std::unique_ptr<Session> connect_postgres(const ResourceConfig& config) {
  // The password lives only in this string, which no message or log repeats.
  const std::string conninfo =
      "host=" + conninfo_value(config.host) + " port=" + std::to_string(config.port) +
      " user=" + conninfo_value(config.user) + " password=" + conninfo_value(config.password) +
      " dbname=" + conninfo_value(config.database) +
      " connect_timeout=" + std::to_string(config.connect_timeout_s) + " application_name=dtx";
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(conninfo);
    // Never reconnect behind the session's back (see the top of the file).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  } catch (...) {
    ServerError f = current_failure();
    throw Error({.code = Errc::unavailable,
                 .resource = config.name,
                 .sqlstate = f.sqlstate,
                 .server_message = f.message},
                "cannot connect");
  }
  auto session = std::make_unique<PostgresSession>(config.name, std::move(conn));
  session->read_settings();
  return session;
}

NumberedSql number_placeholders(std::string_view sql, const std::function<std::string(std::size_t)>& literal) {
  NumberedSql out;
  out.sql.reserve(sql.size() + 8);
  auto is_ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
  };
  const std::size_t n = sql.size();
  std::size_t i = 0;
  // Copies sql[i, end) and moves i there.
  auto copy_to = [&](std::size_t end) {
    end = std::min(end, n);
    out.sql.append(sql.substr(i, end - i));
    i = end;
  };
  while (i < n) {
    const char c = sql[i];
    const bool after_ident = i > 0 && is_ident(sql[i - 1]);
    if (c == '?') {
      out.sql += literal ? literal(out.placeholders) : "$" + std::to_string(out.placeholders + 1);
      ++out.placeholders;
      ++i;
    } else if (c == '\'') {
      // E'...' allows backslash escapes; '' is a quote in both kinds.
      const bool escapes =
          i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && !(i > 1 && is_ident(sql[i - 2]));
      std::size_t j = i + 1;
      while (j < n) {
        if (escapes && sql[j] == '\\') {
          j += 2;
        } else if (sql[j] == '\'') {
          if (j + 1 < n && sql[j + 1] == '\'') {
            j += 2;
          } else {
            ++j;
            break;
          }
        } else {
          ++j;
        }
      }
      copy_to(j);
    } else if (c == '"') {
      std::size_t j = i + 1;
      while (j < n) {
        if (sql[j] == '"') {
          if (j + 1 < n && sql[j + 1] == '"') {
            j += 2;
            continue;
          }
          ++j;
          break;
        }
        ++j;
      }
      copy_to(j);
    } else if (std::size_t end = sql_comment_end(sql, i, SqlDialect::postgres); end != i) {
      copy_to(end);
    } else if (c == '$' && !after_ident) {
      // $tag$...$tag$; $1 is a positional parameter, not a quote.
      std::size_t j = i + 1;
      while (j < n && is_ident(sql[j]) && !(j == i + 1 && sql[j] >= '0' && sql[j] <= '9')) ++j;
      if (j < n && sql[j] == '$') {
        const std::string_view tag = sql.substr(i, j - i + 1);
        const std::size_t close = sql.find(tag, j + 1);
        copy_to(close == std::string_view::npos ? n : close + tag.size());
      } else {
        copy_to(i + 1);
      }
    } else {
      copy_to(i + 1);
    }
  }
  return out;
}

std::string transaction_control_keyword(std::string_view sql) {
  SqlKeywords words(sql, SqlDialect::postgres);
  std::string first = words.next(/*skip_semicolons=*/true);
  if (first == "BEGIN" || first == "COMMIT" || first == "END" || first == "ABORT") return first;
  if (first == "START") return words.next() == "TRANSACTION" ? "START TRANSACTION" : "";
  if (first == "PREPARE") return words.next() == "TRANSACTION" ? "PREPARE TRANSACTION" : "";
  if (first == "ROLLBACK") {
    std::string second = words.next();
    if (second == "WORK" || second == "TRANSACTION") second = words.next();
    return second == "TO" ? "" : first;  // ROLLBACK TO SAVEPOINT keeps the block
  }
  return {};
}

}  // namespace dtx
