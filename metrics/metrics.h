// What the layers record about the process, for its Prometheus metrics.
//
// A narrow, cheap-to-include API: plain calls with plain values, no
// prometheus-cpp header. metrics.cc turns them into the dtx_* metrics of the
// process-wide registry (dtx/metrics.h publishes it; docs/metrics.md lists
// every metric). Every call is thread-safe and never throws: a metric that
// cannot be recorded (out of memory) is skipped, never a transaction failed.
//
// Cost. The calls of the commit path (decisions_flushed, transaction_finished)
// touch only metrics resolved once at start: an atomic add or two, and the
// flush histogram's short lock once per group-commit flush. The calls with a
// free-form label (a resource, an action, a command) look the labelled series
// up on every call: they are made off the commit path (a recovery pass, a
// failed connection, an admin command).
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

namespace dtx::metrics {

// ---- The decision log ----

// One group-commit flush made `decisions` COMMIT records durable; its write
// and fdatasync took `took`.
void decisions_flushed(std::size_t decisions, std::chrono::nanoseconds took) noexcept;

// ---- The coordinator ----

enum class TransactionOutcome {
  committed,    // every branch committed
  rolled_back,  // rolled back, by the application or after a failure before the decision
  in_doubt,     // left for recovery: a branch not committed after the decision, or the
                // decision not known to be durable
};
// A global transaction of this process reached its end state.
void transaction_finished(TransactionOutcome outcome) noexcept;

// ---- Recovery ----

enum class PassOutcome {
  settled,        // nothing of this coordinator left prepared, no error
  left_in_doubt,  // some branch left prepared (owner alive, damaged log, failed, ...)
  error,          // a resource could not be scanned or a log read: nothing confirmed
};

struct RecoveryPass {
  PassOutcome outcome = PassOutcome::settled;
  std::chrono::nanoseconds took{0};
  // Distinct global transactions of this coordinator still in doubt after the pass.
  std::size_t transactions_in_doubt = 0;
  // A dry run changed nothing: it sets the in-doubt gauge only, and is not
  // counted as a pass.
  bool dry_run = false;
};
void recovery_pass(const RecoveryPass& pass) noexcept;

// A recovery pass (not a dry run) ended with this action for one branch
// (recovery.h's to_string(BranchAction): "committed", "left_owner_alive", ...).
void recovery_branch(std::string_view action) noexcept;

// A heuristic outcome was found or caused (recovery.h's HeuristicOutcome);
// `by` is who was acting: "coordinator", "recovery" or "operator".
void heuristic_outcome(std::string_view by) noexcept;

// What the latest listing of `resource` found prepared: `count` branches, the
// oldest prepared `oldest_age_s` seconds ago (0 when no branch's preparation
// time is known: MariaDB's XA RECOVER does not tell it).
void prepared_branches(std::string_view resource, std::size_t count, double oldest_age_s) noexcept;

// ---- Resources ----

// A new connection to `resource` failed (the database unreachable).
void connection_error(std::string_view resource) noexcept;

// ---- The admin console (dtx serve) ----

// A session authenticated (dtx_admin_sessions up, dtx_admin_sessions_total
// counted); closed: that session ended, however. Call them in pairs.
void admin_session_opened() noexcept;
void admin_session_closed() noexcept;
// A login refused (wrong user or password, whatever was wrong).
void admin_auth_failed() noexcept;
// One command of an admin session. `command` and `outcome` are label values:
// keep each to a small fixed set (a statement's kind such as "select" or
// "commit_prepared", and "ok" / "error" / "refused"), never the statement's
// text, or the metric grows a series per query.
void admin_command(std::string_view command, std::string_view outcome) noexcept;

}  // namespace dtx::metrics
