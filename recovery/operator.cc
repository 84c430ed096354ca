#include "recovery/operator.h"

#include <set>

#include "base/transaction_id.h"
#include "base/logging.h"
#include "dtx/error.h"

namespace dtx {

bool SettleResult::finished() const {
  if (!errors.empty()) return false;
  for (const auto& b : branches)
    if (is_left_in_doubt(b.action)) return false;
  return true;
}

namespace {

bool names(const PreparedXid& p, std::string_view gtrid) {
  return p.xid.gtrid == gtrid || (!p.is_dtx && p.raw == gtrid);
}

}  // namespace

SettleResult settle_transaction(const Config& config, const ResourceLookup& resources,
                                DecisionLog& own_log, const SettleRequest& request) {
  SettleResult result;
  const std::string& gtrid = request.gtrid;
  const char* verb = request.commit ? "commit" : "roll back";

  // Where is it prepared?
  for (const auto& [resource, listed] :
       list_prepared(config, resources, "", result.errors))
    for (const PreparedXid& p : listed)
      if (names(p, gtrid))
        result.branches.push_back({resource, p, gtrid, {}, {}, {}, LoggedDecision::none,
                                   BranchAction::failed, {}});
  if (result.branches.empty()) {
    if (!result.errors.empty())
      throw Error({.code = Errc::unavailable, .gtrid = gtrid,
                   .hint = "make every resource reachable and try again"},
                  "no prepared branch found, but not every resource could be scanned: " + result.errors.front());
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "see `dtx in-doubt` for what is prepared"},
                "nothing is prepared under this global id on any configured resource");
  }

  // What do the logs say, and is the owner alive?
  auto parts = parse_gtrid(gtrid);
  const bool ours = parts && parts->coordinator_id == config.coordinator.id;
  // Holding the owner's lock (adopting it) for the whole settlement keeps
  // recovery passes off these branches meanwhile.
  std::set<std::string> owner;
  if (ours) owner.insert(parts->incarnation);
  LogState logs = read_log_state(config.coordinator.log_dir, config.coordinator.id, owner);
  if (ours) {
    result.owner_alive = logs.alive(parts->incarnation);
    if (logs.decision(gtrid)) result.decision = LoggedDecision::commit;
  }
  for (auto& b : result.branches) {
    b.decision = result.decision;
    b.owner_alive = result.owner_alive;
    if (parts) {
      b.coordinator_id = parts->coordinator_id;
      b.incarnation = parts->incarnation;
    }
  }
  if (result.owner_alive.value_or(false) && !request.force)
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "stop that process first (it may still be deciding), or pass --force"},
                std::string("refusing to ") + verb + ": the owning process (incarnation " +
                    parts->incarnation + ") is alive, or a recovery pass is finishing it");
  const bool against_decision = !request.commit && result.decision == LoggedDecision::commit;
  if (against_decision && !request.force)
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "`dtx commit` finishes it as decided; --force rolls back anyway and "
                         "records a heuristic outcome"},
                "refusing to roll back: the decision log holds a COMMIT decision for it");

  // A commit the logs do not hold yet is made durable first, so that a crash
  // half-way leaves a decision for recovery instead of a split transaction.
  bool logged_here = false;
  if (request.commit && result.decision == LoggedDecision::none) {
    std::vector<BranchRef> refs;
    for (const auto& b : result.branches) refs.push_back({b.resource, b.prepared.xid.bqual});
    if (ours) {
      own_log.log_commit(gtrid, refs);
      logged_here = true;
    }
    logger().warn("{}: operator commits a transaction that had no COMMIT decision", gtrid);
  }

  for (auto& b : result.branches) {
    try {
      SessionLease session = resources(b.resource).acquire();
      if (request.commit)
        session->commit_prepared(b.prepared.xid);
      else
        session->rollback_prepared(b.prepared.xid);
      b.action = request.commit ? BranchAction::committed : BranchAction::rolled_back;
    } catch (const Error& e) {
      b.detail = e.what();
      b.action = e.code() == Errc::unknown_xid ? BranchAction::left_session_busy : BranchAction::failed;
      if (e.code() == Errc::unknown_xid)
        b.detail = "the database lists the branch but another session owns it: " + b.detail;
      continue;
    }
    if (against_decision) {
      HeuristicOutcome h{gtrid, b.resource, "commit", "rolled_back", "operator",
                         "dtx rollback --force against the logged COMMIT decision"};
      try {
        record_heuristic(config.coordinator.log_dir, h);
      } catch (const Error& e) {
        result.errors.push_back(e.what());
      }
      result.heuristics.push_back(std::move(h));
    }
  }
  if (logged_here && result.finished()) own_log.log_end(gtrid);
  return result;
}

}  // namespace dtx
