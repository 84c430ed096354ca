// Finishing a prepared branch: the one rule for what the database's answer
// means.
//
// Three callers end prepared branches: the coordinator's phase 2 (commit, on
// the preparing session or a fresh one), recovery passes, and the operator
// commands (dtx commit / dtx rollback). Each asks the database through the
// driver (Session::commit / commit_prepared / rollback_prepared), which
// reports the answer as a FinishOutcome and reads nothing into it, and each
// hands that answer to judge_finish() with what was asked and what the
// decision log said. judge_finish() alone turns them into the BranchAction
// and, when the branch ended differently from (or without) a decision, the
// heuristic outcome to record:
//
//   answer                    asked commit            asked rollback
//   done                      committed               rolled_back
//   rolled_back_by_database   committed (see below)   rolled_back
//   not_found                 finished only when a listing taken after the
//                             answer no longer shows the branch
//                             (already_finished); still listed ->
//                             left_session_busy; no listing yet -> list first
//   owned_by_live_session     left_session_busy
//   unavailable, failed       failed (retried)
//
// rolled_back_by_database at commit: MariaDB answers XA_RBROLLBACK (1402) to
// XA COMMIT of a prepared branch that wrote nothing once the session that
// prepared it is gone; a branch that wrote stays prepared when its session is
// killed and XA COMMIT from another session commits its rows (pinned by
// MariaDBDriver.*AfterItsSessionIsKilled in tests/integration/driver_test.cc,
// docs/recovery.md). So the database rolled back nothing the transaction
// needed: the branch counts as committed, with the answer in the detail.
//
// Heuristic: a branch that this call ended (done / rolled_back_by_database)
// against the logged decision — rolled back although the log holds COMMIT,
// committed although it holds none — or whose decision could not be read (a
// dtx branch of another coordinator id, finished by an operator with
// --force). Foreign branches (not dtx's) have no decision to go against.
#pragma once

#include <optional>
#include <string>

#include "drivers/resource_manager.h"
#include "recovery/recovery.h"

namespace dtx {

// What the decision log says about the branch's transaction.
enum class DecisionBasis {
  none,               // ours, no COMMIT record (presumed abort)
  commit,             // ours, a COMMIT record
  other_coordinator,  // a dtx branch of another coordinator id: its log is not ours to read
  foreign,            // not in dtx's format: there is no decision
};

struct FinishRequest {
  std::string gtrid;
  std::string resource;
  bool commit = false;  // false = roll back
  DecisionBasis basis = DecisionBasis::none;
  std::string by;       // who acts, for the heuristic record: "coordinator", "recovery", "operator"
  bool overwrite = false;  // rollback: write AT before images over rows changed since phase 1
};

// Whether the branch was listed in a listing taken after the answer.
enum class Listing { not_taken, still_listed, gone };

struct FinishVerdict {
  BranchAction action = BranchAction::failed;
  std::string detail;          // the database's answer, or why the branch was left
  bool needs_listing = false;  // not_found and no listing yet: list, then judge again
  std::optional<HeuristicOutcome> heuristic;  // to record (record_heuristic) and report
};

// The rule above. Pure: no I/O.
FinishVerdict judge_finish(const FinishRequest& request, const FinishResult& answer,
                           Listing listing = Listing::not_taken);

// judge_finish(), listing the prepared branches on `session` when the answer
// needs it (a listing that fails leaves the branch failed).
FinishVerdict judge_finish(Session& session, const Xid& xid, const FinishRequest& request,
                           const FinishResult& answer);

// Asks `session` (holding no branch) to finish `xid` as `request` says, and
// judges the answer.
FinishVerdict finish_branch(Session& session, const Xid& xid, const FinishRequest& request);

}  // namespace dtx
