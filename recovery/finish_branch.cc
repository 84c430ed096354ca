// The rule and why: see finish_branch.h.
#include "recovery/finish_branch.h"

#include <algorithm>

namespace dtx {

namespace {

const char* decision_name(DecisionBasis basis) {
  switch (basis) {
    case DecisionBasis::none: return "none";
    case DecisionBasis::commit: return "commit";
    case DecisionBasis::other_coordinator: return "unknown";
    case DecisionBasis::foreign: return "none";
  }
  return "unknown";
}

// The heuristic outcome of a branch this call ended, if it is one.
std::optional<HeuristicOutcome> heuristic(const FinishRequest& r, const std::string& answer) {
  const char* outcome = r.commit ? "committed" : "rolled_back";
  std::string why;
  switch (r.basis) {
    case DecisionBasis::foreign:
      return std::nullopt;
    case DecisionBasis::other_coordinator:
      why = std::string(r.commit ? "committed" : "rolled back") +
            " a branch of another coordinator id, whose decision log was not read";
      break;
    case DecisionBasis::commit:
      if (r.commit) return std::nullopt;
      why = "rolled back against the logged COMMIT decision";
      break;
    case DecisionBasis::none:
      if (!r.commit) return std::nullopt;
      why = "committed without a logged COMMIT decision";
      break;
  }
  if (!answer.empty()) why += " (" + answer + ")";
  return HeuristicOutcome{r.gtrid, r.resource, decision_name(r.basis), outcome, r.by, why};
}

}  // namespace

FinishVerdict judge_finish(const FinishRequest& request, const FinishResult& answer, Listing listing) {
  FinishVerdict v;
  const std::string said = answer.error ? answer.error->what() : "";
  v.detail = said;
  switch (answer.outcome) {
    case FinishOutcome::done:
      v.action = request.commit ? BranchAction::committed : BranchAction::rolled_back;
      v.heuristic = heuristic(request, "");
      if (!v.heuristic && request.overwrite)  // the operator chose to overwrite: on record
        v.heuristic = HeuristicOutcome{request.gtrid, request.resource, decision_name(request.basis),
                                       "rolled_back_overwriting", request.by,
                                       "rolled back with --force: AT before images written over any rows changed "
                                       "since phase 1"};
      break;
    case FinishOutcome::rolled_back_by_database:
      // At commit: a branch that wrote nothing (see finish_branch.h).
      v.action = request.commit ? BranchAction::committed : BranchAction::rolled_back;
      if (request.commit)
        v.detail = "the database had rolled the branch back, which it does only to a branch that "
                   "wrote nothing; nothing was lost: " + said;
      v.heuristic = heuristic(request, said);
      break;
    case FinishOutcome::not_found:
      if (listing == Listing::not_taken) {
        v.needs_listing = true;
      } else if (listing == Listing::gone) {
        v.action = BranchAction::already_finished;
      } else {
        v.action = BranchAction::left_session_busy;
        v.detail = "the database lists the branch but a live session owns it: " + said;
      }
      break;
    case FinishOutcome::owned_by_live_session:
      v.action = BranchAction::left_session_busy;
      v.detail = "another session is finishing the branch right now: " + said;
      break;
    case FinishOutcome::unavailable:
    case FinishOutcome::failed:
      v.action = BranchAction::failed;
      break;
    case FinishOutcome::conflicting_changes:
      v.action = BranchAction::left_dirty_write;
      v.heuristic = HeuristicOutcome{request.gtrid, request.resource, decision_name(request.basis),
                                     "dirty_write", request.by, said};
      break;
    case FinishOutcome::damaged:
      v.action = BranchAction::left_record_damaged;
      break;
  }
  return v;
}

FinishVerdict judge_finish(Session& session, const Xid& xid, const FinishRequest& request,
                           const FinishResult& answer) {
  FinishVerdict v = judge_finish(request, answer);
  if (!v.needs_listing) return v;
  try {
    const std::vector<PreparedXid> listed = session.recover();
    const bool still = std::any_of(listed.begin(), listed.end(),
                                   [&](const PreparedXid& p) { return p.xid == xid; });
    return judge_finish(request, answer, still ? Listing::still_listed : Listing::gone);
  } catch (const std::exception& e) {
    v.needs_listing = false;
    v.action = BranchAction::failed;
    v.detail += std::string("; cannot list prepared branches to tell whether it is finished: ") + e.what();
    return v;
  }
}

FinishVerdict finish_branch(Session& session, const Xid& xid, const FinishRequest& request) {
  FinishResult answer = request.commit      ? session.commit_prepared(xid)
                        : request.overwrite ? session.rollback_prepared_overwriting(xid)
                                            : session.rollback_prepared(xid);
  return judge_finish(session, xid, request, answer);
}

}  // namespace dtx
