// What every driver's Session keeps the same way: the branch's state, xid and
// deadline, whether a statement of the branch failed, whether the connection
// is broken, and errors that name the resource and the gtrid. Drivers derive
// from it and write only their dialect (and how to cancel a running
// statement). Not part of the interface the coordinator sees.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "drivers/deadline_watchdog.h"
#include "drivers/resource_manager.h"
#include "drivers/sql_words.h"
#include "dtx/error.h"

namespace dtx {

const char* to_string(BranchState state) noexcept;

// What the database (or its client library) said about a failed statement.
struct ServerError {
  int code = 0;          // vendor error number (MySQL), 0 if none
  std::string sqlstate;  // empty if unknown
  std::string message;
  bool lost = false;     // the connection is gone or in an unknown state
};

class BranchSession : public Session, public Cancellable {
 public:
  void set_deadline(std::chrono::steady_clock::time_point deadline) final { deadline_ = deadline; }
  BranchState state() const noexcept final { return state_; }
  const Xid* current_xid() const noexcept final { return xid_ ? &*xid_ : nullptr; }
  bool broken() const noexcept final { return broken_; }
  FinishResult commit_prepared(const Xid& xid) final { return finish_prepared(xid, "COMMIT"); }
  FinishResult rollback_prepared(const Xid& xid) final { return finish_prepared(xid, "ROLLBACK"); }

 protected:
  explicit BranchSession(std::string resource) : resource_(std::move(resource)) {}

  // An error of this session's resource about `xid` (default: the current
  // branch), with what the server said if `said` is given.
  Error error(Errc code, const ServerError* said, std::string what, std::string hint = {},
              const Xid* xid = nullptr) const;
  // Throws unavailable if broken, usage unless the branch is in `expected`.
  void require(BranchState expected, const char* operation) const;
  // Throws unless `sql` may run now: not broken, no prepared branch, no
  // failed statement in the active one (all Errc::usage or unavailable, the
  // branch unchanged), not empty (Errc::usage, nothing sent), and not past
  // the branch's deadline (Errc::timeout; the branch can then only roll back).
  void require_statement(std::string_view sql, SqlDialect dialect);
  // Records what a failed statement means for the session.
  void statement_failed(const ServerError& said) noexcept;
  // The error for statement `sql` that failed as the server `said`, with
  // `code` as the driver classified it (Errc::timeout when the deadline's
  // watch cancelled it). It says what became of an active branch whose
  // connection was lost: the database rolled it back.
  Error statement_error(Errc code, const ServerError& said, std::string_view sql) const;

  // Whether the active branch's deadline has passed.
  bool past_deadline() const noexcept;
  // Arm right before sending a statement of the active branch that can wait
  // (for a lock): the watchdog then calls cancel_running_statement() if the
  // deadline passes before the watch ends. Unarmed without a deadline.
  DeadlineWatch watch_deadline() {
    if (!deadline_ || state_ != BranchState::active) return DeadlineWatch();
    return DeadlineWatch(*this, *deadline_);
  }

  // COMMIT or ROLLBACK (`verb`) of a prepared branch by xid, in the dialect's
  // words (XA COMMIT x / COMMIT PREPARED 'gid'); the answer, uninterpreted.
  virtual FinishResult finish_prepared(const Xid& xid, const std::string& verb) = 0;
  // commit() of the session's prepared branch: the answer of
  // finish_prepared, and the session's state to match (none unless the
  // connection was lost; then broken, the branch prepared for recovery).
  FinishResult commit_own_branch();
  // Ends the active branch with a rollback however the server left it, and
  // leaves state none; marks the session broken if that fails.
  virtual void abandon() noexcept = 0;
  [[noreturn]] void abandon_and_throw(const Error& e);
  // Before prepare / commit_one_phase: a branch in which a statement failed
  // can only roll back, so roll it back and throw Errc::rolled_back.
  void refuse_if_failed(const char* instead_of);
  // Before a step that ends the branch and can wait: past the deadline, roll
  // the branch back and throw Errc::timeout naming `step`.
  void refuse_if_past_deadline(const char* step);
  // The state transitions; the state itself changes only here.
  void started(const Xid& xid, bool local = false) noexcept;  // none -> active
  void mark_prepared() noexcept;          // active -> prepared
  void finish() noexcept;                 // -> none, no xid, no deadline

  // `sql` (dtx's own, with no '?' but placeholders) with every placeholder
  // replaced by quote_literal() of its parameter.
  std::string inline_params(std::string_view sql, std::span<const Param> params) const;
  // A string as a literal of the dialect, exactly (no charset conversion).
  virtual std::string quote_literal(const std::string& text) const = 0;

  // At most the first 120 characters of `sql`, for messages.
  static std::string excerpt(std::string_view sql);

  const std::string resource_;
  std::optional<Xid> xid_;  // set while a branch is active or prepared
  std::optional<std::chrono::steady_clock::time_point> deadline_;  // of the branch, if set
  bool failed_ = false;     // a statement of the active branch failed
  bool local_ = false;      // the active branch is a local transaction (begin_local)
  bool broken_ = false;

 private:
  BranchState state_ = BranchState::none;
};

}  // namespace dtx
