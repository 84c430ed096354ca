// The one small interface between the coordinator and a database.
//
// A ResourceManager stands for one configured resource and owns a pool of
// Sessions (connections). A Session runs at most one XA branch at a time and
// remembers that branch's state, so rollback() does the right thing from any
// point of the branch's life. Everything that knows an SQL dialect lives
// behind this interface (mysql_driver.cc, postgres_driver.cc).
//
// Errors: every method throws dtx::Error whose code() is one of the outcomes
// the coordinator reasons about (sql, retryable, rolled_back, unknown_xid,
// unavailable, misconfigured, timeout, usage), with the resource name, the
// branch's gtrid and the server's code, SQLSTATE and message filled in. The
// exception: finishing a prepared branch (commit, commit_prepared,
// rollback_prepared) returns what the database answered as a FinishResult,
// uninterpreted; what that answer means for the global transaction is decided
// in one place, recovery/finish_branch.h.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/xid.h"
#include "dtx/config.h"
#include "dtx/error.h"
#include "dtx/value.h"

namespace dtx {

// Where the session's current branch is. none = no branch (autocommit).
enum class BranchState { none, active, prepared };

// One entry of XA RECOVER / pg_prepared_xacts.
struct PreparedXid {
  Xid xid;                 // format_id != kDtxFormatId for foreign branches
  bool is_dtx = false;     // in dtx's format (PostgreSQL: gid has the dtx: prefix)
  std::string raw;         // as the database shows it (gid, or formatID,gtrid,bqual in hex)
  std::optional<std::chrono::system_clock::time_point> prepared_at;  // PostgreSQL only
  std::string owner;       // PostgreSQL role that prepared it
  BranchMode mode = BranchMode::xa;  // at: an AT branch, listed from its undo record
};

// What the database answered to COMMIT or ROLLBACK of a prepared branch, in
// the database's terms; what it means is recovery/finish_branch.h's business.
enum class FinishOutcome {
  done,                     // it did what was asked
  rolled_back_by_database,  // it says the branch was rolled back already (MariaDB XA_RB*, 1402)
  not_found,                // it does not know the xid (MariaDB 1397, PostgreSQL 42704);
                            // MariaDB also says so while a live session owns a listed branch
  owned_by_live_session,    // another live session is working on it (PostgreSQL 55000 "is busy")
  unavailable,              // the connection was lost: it may or may not have happened
  failed,                   // any other error (permissions, ...): nothing happened
  conflicting_changes,      // AT rollback: rows changed outside the branch since its phase 1
                            // (a dirty write); nothing was undone, the locks stay
  damaged,                  // AT: the branch's undo record cannot be read; nothing happened
};

const char* to_string(FinishOutcome outcome) noexcept;

// What a database says about itself, for listings (the admin console's
// resources view).
struct ServerInfo {
  std::string version;                                  // as the server reports it
  std::optional<int> max_prepared_transactions;         // PostgreSQL only
  // Settings under which the server can lose a prepare or a commit it
  // acknowledged, each with what to set instead (empty: none found).
  std::vector<std::string> durability_warnings;
};

struct [[nodiscard]] FinishResult {
  FinishOutcome outcome = FinishOutcome::done;
  std::optional<Error> error;  // what the database said, unless done
};

// A statement of dtx's own (never a user's) for Session::execute_batch.
struct BatchStatement {
  std::string sql;           // with `?` placeholders only where parameters go
  std::vector<Param> params;
};

class Session {
 public:
  virtual ~Session() = default;

  // Runs one statement with `?` placeholders bound to `params`. Inside a
  // branch when one is active, autocommit otherwise. An empty statement
  // (only whitespace, comments, ';') is Errc::usage and changes nothing.
  virtual Result execute(std::string_view sql, std::span<const Param> params) = 0;

  // Runs dtx's own statements in order, in one round trip where the driver
  // can (MariaDB: one multi-statement query, the parameters inlined as
  // literals; the server stops at the first error), else one by one. One
  // Result per statement. Statements returning rows go last: MariaDB's client
  // library reports no row counts after a result set. Fails like execute().
  virtual std::vector<Result> execute_batch(std::span<const BatchStatement> statements) {
    std::vector<Result> out;
    for (const auto& s : statements) out.push_back(execute(s.sql, s.params));
    return out;
  }

  // Bounds the active branch by `deadline` (its global transaction's): a
  // statement of the branch still running then — execute(), and the steps of
  // prepare() / commit_one_phase() that can wait for a lock — is cancelled
  // and fails with Errc::timeout, one that would start later fails at once,
  // and the branch can then only roll back. Call after begin(); the end of
  // the branch clears it. Costs no round trip (drivers/deadline_watchdog.h).
  // A session that never waits (the null driver) may ignore it.
  virtual void set_deadline(std::chrono::steady_clock::time_point deadline) {}

  // Branch lifecycle on this session. State: none -begin-> active
  // -prepare-> prepared -commit-> none. rollback() from any state.
  virtual void begin(const Xid& xid) = 0;
  // A plain local transaction (START TRANSACTION / BEGIN) run like a branch:
  // state active with `xid` (for messages and the deadline), ended by
  // commit_one_phase() (COMMIT) or rollback() (ROLLBACK); prepare() is
  // refused. AT mode's branches run on these (undo-log/at_session.h).
  virtual void begin_local(const Xid& xid) {
    throw Error({.code = Errc::usage, .gtrid = xid.gtrid},
                "this resource's driver cannot run local transactions (AT mode)");
  }
  // Votes: returns normally only if the branch is durably prepared. A branch
  // the database rolled back (e.g. PostgreSQL's silent ROLLBACK on a failed
  // block) throws Errc::rolled_back and leaves state none.
  virtual void prepare() = 0;
  // prepared -> none, whatever the answer except unavailable (then the
  // session is broken and the branch stays prepared for recovery).
  virtual FinishResult commit() = 0;
  virtual void commit_one_phase() = 0;  // active -> none, no prepare
  // The active branch's (XA or local) last statement and its one-phase
  // commit, in one round trip where the driver can (`statement` is dtx's own
  // SQL with `?` placeholders, which the driver inlines as literals). Fails
  // like commit_one_phase(); a failed statement rolls the branch back. AT
  // mode's phase 1 writes its undo record so; the decisions resource's
  // branch its COMMIT row (decision-table/decision_table.cc).
  virtual void commit_one_phase_with(std::string_view statement, std::span<const Param> params) {
    execute(statement, params);
    commit_one_phase();
  }
  // Best effort from any state; throws only if a prepared branch could not be
  // rolled back (it then stays prepared for recovery).
  virtual void rollback() = 0;
  virtual BranchState state() const noexcept = 0;
  virtual const Xid* current_xid() const noexcept = 0;

  // Finish a prepared branch by xid from this session (recovery, operators,
  // phase 2 on a fresh connection). Needs a session without a branch (else
  // throws Errc::usage). not_found on MariaDB also while another live
  // session owns the branch (1397): only a listing tells.
  virtual FinishResult commit_prepared(const Xid& xid) = 0;
  virtual FinishResult rollback_prepared(const Xid& xid) = 0;
  // rollback_prepared, overwriting rows changed since phase 1 with the before
  // images instead of answering conflicting_changes (AT mode; an operator's
  // `dtx rollback --force`). The same as rollback_prepared for XA branches.
  virtual FinishResult rollback_prepared_overwriting(const Xid& xid) { return rollback_prepared(xid); }
  // What rolling back the prepared branch `xid` would meet, for listings
  // (dtx in-doubt), changing and locking nothing; empty if nothing worth
  // saying. AT mode: the rows changed outside the branch since its phase 1.
  virtual std::string describe_rollback(const Xid& xid) { return {}; }
  // Prepared branches of this database (PostgreSQL: of the configured database).
  virtual std::vector<PreparedXid> recover() = 0;
  // The server's version and settings worth showing; needs a session without
  // a branch. Throws dtx::Error like execute().
  virtual ServerInfo server_info() { return {}; }

  // True once the connection is known to be unusable (lost, or left in an
  // unknown state by an error): it is closed instead of being pooled.
  virtual bool broken() const noexcept = 0;
};

class ResourceManager;

// A session borrowed from a ResourceManager's pool; goes back on destruction
// unless broken or still holding a branch (then it is closed, which leaves a
// prepared branch prepared for recovery and rolls back an active one).
class SessionLease {
 public:
  SessionLease() = default;
  SessionLease(ResourceManager* owner, std::unique_ptr<Session> session)
      : owner_(owner), session_(std::move(session)) {}
  SessionLease(SessionLease&&) noexcept = default;
  SessionLease& operator=(SessionLease&& other) noexcept;
  ~SessionLease();

  Session* operator->() const noexcept { return session_.get(); }
  Session& operator*() const noexcept { return *session_; }
  explicit operator bool() const noexcept { return session_ != nullptr; }
  // Close the connection instead of returning it to the pool.
  void discard() noexcept { session_.reset(); }

 private:
  void release() noexcept;
  ResourceManager* owner_ = nullptr;
  std::unique_ptr<Session> session_;
};

class ResourceManager {
 public:
  using Connector = std::function<std::unique_ptr<Session>()>;

  ResourceManager(ResourceConfig config, Connector connect);
  virtual ~ResourceManager() = default;
  ResourceManager(const ResourceManager&) = delete;
  ResourceManager& operator=(const ResourceManager&) = delete;

  const ResourceConfig& config() const noexcept { return config_; }
  const std::string& name() const noexcept { return config_.name; }

  // An idle pooled session, or a new connection. Throws Errc::unavailable
  // (naming the resource, host and port) if the database cannot be reached.
  SessionLease acquire();

  std::size_t idle_count() const;

 private:
  friend class SessionLease;
  void give_back(std::unique_ptr<Session> session) noexcept;

  ResourceConfig config_;
  Connector connect_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Session>> idle_;
};

// The driver for config.type: MySQL/MariaDB via Connector/C++, PostgreSQL via
// libpqxx. Does not connect yet.
std::unique_ptr<ResourceManager> make_resource_manager(const ResourceConfig& config);
// What make_resource_manager's pool calls to open one session of the driver
// (AT mode wraps these sessions).
ResourceManager::Connector make_driver_connector(const ResourceConfig& config);

}  // namespace dtx
