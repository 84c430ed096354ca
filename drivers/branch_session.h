// What every driver's Session keeps the same way: the branch's state and xid,
// whether a statement of the branch failed, whether the connection is broken,
// and errors that name the resource and the gtrid. Drivers derive from it and
// write only their dialect. Not part of the interface the coordinator sees.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "drivers/resource_manager.h"
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

class BranchSession : public Session {
 public:
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
  // Throws unless a statement may run now: not broken, no prepared branch, no
  // failed statement in the active one.
  void require_statements_allowed() const;
  // Records what a failed statement means for the session.
  void statement_failed(const ServerError& said) noexcept;

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
  // The state transitions; the state itself changes only here.
  void started(const Xid& xid) noexcept;  // none -> active
  void mark_prepared() noexcept;          // active -> prepared
  void finish() noexcept;                 // -> none, no xid

  // At most the first 120 characters of `sql`, for messages.
  static std::string excerpt(std::string_view sql);

  const std::string resource_;
  std::optional<Xid> xid_;  // set while a branch is active or prepared
  bool failed_ = false;     // a statement of the active branch failed
  bool broken_ = false;

 private:
  BranchState state_ = BranchState::none;
};

}  // namespace dtx
