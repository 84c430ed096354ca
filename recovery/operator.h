// An operator settles one global transaction by hand (dtx commit / dtx rollback).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "decision-log/decision_log.h"
#include "recovery/recovery.h"

namespace dtx {

struct SettleRequest {
  std::string gtrid;
  bool commit = false;  // false = roll back
  // Allow going against a logged COMMIT decision, or settling another
  // coordinator id's transaction; either is recorded as heuristic. Never
  // allows acting while the owning process is alive.
  bool force = false;
  // AT mode's answer to a dirty write (docs/at-mode.md): keep the rows as
  // they are now, delete the AT branches' undo records and release their
  // global locks. Only AT branches; recorded as heuristic. `commit` is ignored.
  bool accept_current = false;
};

struct SettleResult {
  LoggedDecision decision = LoggedDecision::none;  // what the logs said before
  std::optional<bool> owner_alive;                 // unknown for foreign gtrids
  std::vector<InDoubtBranch> branches;             // with the action taken
  std::vector<HeuristicOutcome> heuristics;
  std::vector<std::string> errors;
  bool decided_here = false;  // a commit with no logged decision: this call logged its COMMIT
  bool finished() const;  // every branch committed/rolled back/already finished, no error
};

// Finds every prepared branch of `request.gtrid` on every resource (a foreign
// id is matched by its raw gtrid / gid) and commits or rolls back all of them;
// what each database answer means is recovery/finish_branch.h's rule.
//   commit with no logged decision: a COMMIT record naming the branches found
//     is forced to `own_log` first (file mode), or inserted into the decisions
//     resource's dtx_decision (an incarnation that decides there), so a crash
//     half-way is finished by recovery;
//   rollback of an incarnation that decides in a table: its ABORT row (the
//     fence) first; a COMMIT row found there is a decision like a logged one;
//   rollback against a logged COMMIT: needs force; recorded as heuristic;
//   another coordinator id's transaction: needs force (its log is not read
//     here); recorded as heuristic;
//   owner alive: refused, even with force (acting beside it could split the
//     transaction): stop the owner first.
// Throws dtx::Error(Errc::usage) for a refusal or when nothing is prepared
// under that id.
// `own_log`: this process's file log; may be null with [coordinator] decisions.
SettleResult settle_transaction(const Config& config, const ResourceLookup& resources,
                                DecisionLog* own_log, const SettleRequest& request);

// What `decided_here` means, for the operator who asked for the commit: the
// command made the decision, and only branches that were prepared could be
// committed; a write on a resource where the transaction never got prepared
// was rolled back by that database.
std::string undecided_commit_notice(std::string_view gtrid, const SettleResult& result);

}  // namespace dtx
