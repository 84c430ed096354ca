// What every driver shares: the session pool, the branch bookkeeping of
// BranchSession, and the choice of driver by type.
//
// The pool keeps at most config.pool_size idle sessions; it never limits how
// many are live (the coordinator bounds concurrency, not the pool). A session
// comes back only in a known-good state: not broken and holding no branch.
// Anything else is closed, which makes the server roll back an active branch
// and keep a prepared one for recovery. A broken session also empties the
// idle list, since whatever broke it has most likely broken those too.
#include "drivers/resource_manager.h"

#include <exception>
#include <utility>

#include "drivers/branch_session.h"
#include "drivers/mysql_driver.h"
#include "drivers/postgres_driver.h"
#include "dtx/error.h"
#include "metrics/metrics.h"

namespace dtx {

namespace {

// The one message for "cannot connect", whatever the driver: where we tried
// and what the server or client library said. Never the password.
Error connect_failure(const ResourceConfig& c, Error::Details d) {
  d.code = Errc::unavailable;
  d.resource = c.name;
  d.hint = "check that the database is running and reachable, and the [resources." + c.name +
           "] settings";
  return Error(std::move(d), std::string("cannot connect to ") + to_string(c.type) + " resource '" +
                                 c.name + "' at " + c.host + ":" + std::to_string(c.port) +
                                 ", database '" + c.database + "'");
}

}  // namespace

const char* to_string(BranchState state) noexcept {
  switch (state) {
    case BranchState::none: return "none";
    case BranchState::active: return "active";
    case BranchState::prepared: return "prepared";
  }
  return "unknown";
}

Error BranchSession::error(Errc code, const ServerError* said, std::string what, std::string hint,
                           const Xid* xid) const {
  if (!xid) xid = current_xid();
  Error::Details d{.code = code, .resource = resource_, .gtrid = xid ? xid->gtrid : "",
                   .hint = std::move(hint)};
  if (said) {
    d.server_code = said->code;
    d.sqlstate = said->sqlstate;
    d.server_message = said->message;
  }
  if (d.hint.empty() && code == Errc::retryable)
    d.hint = "the branch is rolled back or can only roll back; retry the transaction";
  if (d.hint.empty() && code == Errc::timeout)
    d.hint = "the branch can only roll back; a lock held by another transaction is the usual "
             "cause: find it, or raise the transaction's timeout if this wait is expected";
  return Error(std::move(d), std::move(what));
}

void BranchSession::require(BranchState expected, const char* operation) const {
  if (broken_)
    throw error(Errc::unavailable, nullptr,
                std::string("cannot ") + operation + ": the connection was lost earlier",
                "take a new session");
  if (state_ != expected)
    throw error(Errc::usage, nullptr,
                std::string("cannot ") + operation + " while the session's branch is " +
                    to_string(state_) + " (expected " + to_string(expected) + ")");
}

void BranchSession::require_statement(std::string_view sql, SqlDialect dialect) {
  if (broken_ || state_ == BranchState::prepared) require(BranchState::active, "run a statement");
  if (failed_)
    throw error(Errc::usage, nullptr,
                "an earlier statement of the branch failed; the branch can only be rolled back");
  if (sql_is_empty(sql, dialect))
    throw error(Errc::usage, nullptr,
                std::string("empty statement: the SQL holds only whitespace, comments or ';', so "
                            "nothing was run") +
                    (state_ == BranchState::active ? " and the branch is unchanged" : ""));
  if (past_deadline()) {
    failed_ = true;
    throw error(Errc::timeout, nullptr,
                "statement not run: the branch's deadline (its transaction's timeout) has "
                "passed: " + excerpt(sql));
  }
}

void BranchSession::statement_failed(const ServerError& said) noexcept {
  if (said.lost) broken_ = true;
  if (state_ == BranchState::active) failed_ = true;
}

Error BranchSession::statement_error(Errc code, const ServerError& said,
                                     std::string_view sql) const {
  if (code == Errc::timeout)
    return error(code, &said,
                 "statement cancelled: it was still running at the branch's deadline (its "
                 "transaction's timeout): " + excerpt(sql));
  if (said.lost && state_ == BranchState::active)
    return error(code, &said,
                 "the connection was lost during the statement, so the branch was rolled back by "
                 "the database (an open transaction ends with its connection): " + excerpt(sql),
                 "nothing of the branch was committed; retry the transaction");
  return error(code, &said, "statement failed: " + excerpt(sql));
}

bool BranchSession::past_deadline() const noexcept {
  return deadline_ && state_ == BranchState::active &&
         std::chrono::steady_clock::now() > *deadline_;
}

void BranchSession::abandon_and_throw(const Error& e) {
  abandon();
  throw e;
}

void BranchSession::refuse_if_failed(const char* instead_of) {
  if (failed_)
    abandon_and_throw(error(Errc::rolled_back, nullptr,
                            std::string("a statement of the branch failed, so it can only roll "
                                        "back; it was rolled back instead of ") +
                                instead_of));
}

void BranchSession::refuse_if_past_deadline(const char* step) {
  if (past_deadline())
    abandon_and_throw(error(Errc::timeout, nullptr,
                            std::string("the branch's deadline (its transaction's timeout) passed "
                                        "before ") + step + "; the branch was rolled back"));
}

void BranchSession::started(const Xid& xid, bool local) noexcept {
  xid_ = xid;
  deadline_.reset();  // a new branch has none until set_deadline()
  state_ = BranchState::active;
  failed_ = false;
  local_ = local;
}

void BranchSession::mark_prepared() noexcept { state_ = BranchState::prepared; }

void BranchSession::finish() noexcept {
  state_ = BranchState::none;
  xid_.reset();
  deadline_.reset();
  failed_ = false;
}

std::string BranchSession::inline_params(std::string_view sql, std::span<const Param> params) const {
  std::string out;
  std::size_t next = 0;
  for (char c : sql) {
    if (c != '?') {
      out += c;
      continue;
    }
    if (next >= params.size())
      throw error(Errc::usage, nullptr, "more placeholders than parameters in " + excerpt(sql));
    const Param& p = params[next++];
    auto text = p.to_text();
    if (!text)
      out += "NULL";
    else if (std::holds_alternative<std::string>(p.storage()))
      out += quote_literal(*text);
    else
      out += *text;
  }
  if (next != params.size())
    throw error(Errc::usage, nullptr, "fewer placeholders than parameters in " + excerpt(sql));
  return out;
}

std::string BranchSession::excerpt(std::string_view sql) {
  constexpr std::size_t kMax = 120;
  return sql.size() <= kMax ? std::string(sql) : std::string(sql.substr(0, kMax)) + "...";
}

const char* to_string(FinishOutcome outcome) noexcept {
  switch (outcome) {
    case FinishOutcome::done: return "done";
    case FinishOutcome::rolled_back_by_database: return "rolled_back_by_database";
    case FinishOutcome::not_found: return "not_found";
    case FinishOutcome::owned_by_live_session: return "owned_by_live_session";
    case FinishOutcome::unavailable: return "unavailable";
    case FinishOutcome::failed: return "failed";
    case FinishOutcome::conflicting_changes: return "conflicting_changes";
    case FinishOutcome::damaged: return "damaged";
  }
  return "unknown";
}

FinishResult BranchSession::commit_own_branch() {
  require(BranchState::prepared, "commit");
  const Xid xid = *xid_;
  // finish_prepared wants no branch on the session: the branch is let go
  // first, and taken back if it may still be prepared.
  finish();
  FinishResult r = finish_prepared(xid, "COMMIT");
  if (r.outcome == FinishOutcome::unavailable || r.outcome == FinishOutcome::failed) {
    started(xid);
    mark_prepared();
  }
  return r;
}

SessionLease& SessionLease::operator=(SessionLease&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    session_ = std::move(other.session_);
  }
  return *this;
}

SessionLease::~SessionLease() { release(); }

void SessionLease::release() noexcept {
  if (owner_ && session_) owner_->give_back(std::move(session_));
  session_.reset();
}

ResourceManager::ResourceManager(ResourceConfig config, Connector connect)
    : config_(std::move(config)), connect_(std::move(connect)) {}

SessionLease ResourceManager::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Session> s = std::move(idle_.back());
      idle_.pop_back();
      return SessionLease(this, std::move(s));
    }
  }
  try {
    return SessionLease(this, connect_());
  } catch (const Error& e) {
    if (e.code() != Errc::unavailable) throw;
    metrics::connection_error(config_.name);
    throw connect_failure(config_, e.details());
  } catch (const std::exception& e) {
    metrics::connection_error(config_.name);
    throw connect_failure(config_, {.server_message = e.what()});
  }
}

std::size_t ResourceManager::idle_count() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

void ResourceManager::give_back(std::unique_ptr<Session> session) noexcept {
  std::vector<std::unique_ptr<Session>> closing;  // closed outside the lock: closing waits for the server
  {
    std::lock_guard lock(mu_);
    if (session->broken()) {
      // A lost connection mostly means the server restarted or the network
      // failed, and then the idle connections are dead too: drop them rather
      // than hand each one out to fail once.
      closing.swap(idle_);
    } else if (session->state() == BranchState::none &&
               idle_.size() < static_cast<std::size_t>(config_.pool_size)) {
      idle_.push_back(std::move(session));
    }
  }
}

std::unique_ptr<ResourceManager> make_resource_manager(const ResourceConfig& config) {
  return std::make_unique<ResourceManager>(config, make_driver_connector(config));
}

ResourceManager::Connector make_driver_connector(const ResourceConfig& config) {
  ResourceManager::Connector connect;
  switch (config.type) {
    case ResourceType::mysql:
      connect = [config] { return connect_mysql(config); };
      break;
    case ResourceType::postgres:
      connect = [config] { return connect_postgres(config); };
      break;
  }
  return connect;
}

}  // namespace dtx
