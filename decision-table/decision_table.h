// Commit decisions kept in a table of one resource's own database
// ([coordinator] decisions = "<resource>"), and the liveness of the
// coordinator processes that write them. The protocol that uses them is at
// the top of decision_table.cc; the user's description is
// docs/decisions-in-database.md.
//
//   dtx_decision (gtrid PRIMARY KEY, outcome 1 commit | 2 abort, branches, created)
//
// The DDL is shipped as sql/decisions.mysql.sql and sql/decisions.postgres.sql
// and compiled from those very files, so what dtx runs and what a DBA runs
// cannot drift.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/resource_manager.h"
#include "dtx/config.h"

namespace dtx {

inline constexpr std::string_view kDecisionTable = "dtx_decision";

// What a gtrid's row says; none = no row.
enum class TableOutcome { none = 0, commit = 1, abort = 2 };
const char* to_string(TableOutcome outcome) noexcept;  // "none" / "commit" / "abort"

struct DecisionRow {
  std::string gtrid;
  TableOutcome outcome = TableOutcome::none;
  std::string branches;  // commit rows: the resources, comma-separated
  double age_s = 0;      // by the database's clock
};

// How long an ABORT row is kept once its owner is gone: longer than any
// transaction may run (TransactionOptions::timeout is capped below it), so
// no COMMIT insert of its gtrid can still arrive when it is deleted.
inline constexpr std::chrono::hours kAbortRowRetention{25};
inline constexpr std::chrono::hours kLongestTransactionTimeout{24};

// The statements of one resource's dialect. Every method runs on a session
// without a branch (autocommit) unless it says otherwise, and throws
// dtx::Error naming the resource as Session::execute does.
class DecisionTable {
 public:
  explicit DecisionTable(const ResourceConfig& resource);

  const std::string& resource() const noexcept { return resource_; }
  ResourceType type() const noexcept { return type_; }

  // Creates dtx_decision (and PostgreSQL's view) if missing, under a named
  // lock so two processes may do it at once. Errc::misconfigured, with how a
  // DBA creates it, if the user may not.
  void ensure_schema(Session& session) const;

  // The INSERT of gtrid's COMMIT row, to run inside R's branch as its last
  // statement (Session::commit_one_phase_with): that branch's commit is then
  // the decision.
  BatchStatement commit_row(std::string_view gtrid, std::span<const std::string> resources) const;
  // The COMMIT row in a local transaction of its own (autocommit INSERT):
  // for a global transaction with no branch on R. Throws like execute; a
  // duplicate key (is_duplicate_key) means recovery fenced the gtrid first.
  void insert_commit(Session& session, std::string_view gtrid, std::span<const std::string> resources) const;
  static bool is_duplicate_key(const Error& e) noexcept;

  // Recovery's fence: inserts each gtrid's ABORT row. If a COMMIT insert is
  // in flight the database makes this wait until it ends (bounded by
  // `lock_wait` each; then an Errc::timeout error for that gtrid). Gives
  // what holds from now on: commit (a COMMIT row was there) or abort (ours,
  // or an earlier fence's) — or the error that stopped it.
  struct Fenced {
    TableOutcome outcome = TableOutcome::none;  // commit or abort, unless error
    std::optional<Error> error;
  };
  std::map<std::string, Fenced, std::less<>> fence(Session& session, std::span<const std::string> gtrids,
                                                   std::chrono::seconds lock_wait = std::chrono::seconds(30)) const;

  // The rows of one coordinator id, or of one gtrid. A plain read: it does
  // not wait for an insert in flight, so it is for showing, never deciding.
  std::map<std::string, DecisionRow, std::less<>> read(Session& session, std::string_view coordinator_id) const;
  DecisionRow read_one(Session& session, std::string_view gtrid) const;

  // Deletes the rows of `gtrids` (any outcome). Returns how many went.
  std::uint64_t erase(Session& session, std::span<const std::string> gtrids) const;
  // Liveness: a session-level named lock the incarnation holds for its life
  // (PostgreSQL advisory lock on a 64-bit hash, MariaDB GET_LOCK), released
  // by the server when the session ends. try_hold takes it without waiting.
  bool try_hold_liveness(Session& session, std::string_view coordinator_id, std::string_view incarnation) const;
  void release_liveness(Session& session, std::string_view coordinator_id, std::string_view incarnation) const;
  // Whether some session holds it, taking nothing (listings).
  bool liveness_held(Session& session, std::string_view coordinator_id, std::string_view incarnation) const;

 private:
  std::string resource_;
  ResourceType type_;
};

// The liveness locks of other incarnations that this process took — a
// recovery pass, an operator — on one session of R, held for as long as it
// works on their branches. release() (or destruction) gives them back; a
// session whose locks cannot be given back is closed rather than pooled, so
// the server drops them.
class LivenessHolds {
 public:
  LivenessHolds(const DecisionTable& table, std::string coordinator_id, SessionLease session)
      : table_(&table), id_(std::move(coordinator_id)), session_(std::move(session)) {}
  LivenessHolds(const LivenessHolds&) = delete;
  LivenessHolds& operator=(const LivenessHolds&) = delete;
  ~LivenessHolds() { release(); }

  Session& session() { return *session_; }
  // Takes `incarnation`'s lock if it is free (its owner is gone): true, and
  // held from now on.
  bool try_hold(const std::string& incarnation);
  bool holds(const std::string& incarnation) const { return held_.count(incarnation) > 0; }
  const std::set<std::string>& held() const noexcept { return held_; }
  void release() noexcept;

 private:
  const DecisionTable* table_;
  std::string id_;
  SessionLease session_;
  std::set<std::string> held_;
};

// The PostgreSQL advisory lock key of an incarnation (FNV-1a 64 of
// "dtx:<id>.<incarnation>"), and MariaDB's lock name.
std::int64_t liveness_lock_key(std::string_view coordinator_id, std::string_view incarnation);
std::string liveness_lock_name(std::string_view coordinator_id, std::string_view incarnation);

// The shipped DDL script of a dialect, and its statements in order.
std::string_view decision_schema_script(ResourceType type);
std::vector<std::string> decision_schema_statements(ResourceType type);

}  // namespace dtx
