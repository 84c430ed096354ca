#include "recovery/operator.h"

#include <algorithm>
#include <set>

#include "base/logging.h"
#include "base/transaction_id.h"
#include "decision-table/decision_table.h"
#include "dtx/error.h"
#include "recovery/finish_branch.h"

namespace dtx {

bool SettleResult::finished() const {
  if (!errors.empty()) return false;
  for (const auto& b : branches)
    if (is_left_in_doubt(b.action)) return false;
  return true;
}

std::string undecided_commit_notice(std::string_view gtrid, const SettleResult& result) {
  std::set<std::string> found;
  for (const auto& b : result.branches) found.insert(b.resource);
  std::string list;
  for (const auto& r : found) list += (list.empty() ? "" : ", ") + r;
  return "no logged decision was found for " + std::string(gtrid) +
         ": this command decided COMMIT (made durable before any branch was committed). Only prepared branches "
         "can be committed; they were found on " + (list.empty() ? std::string("no resource") : list) +
         ". A write to any other resource that never got prepared was rolled back by its database.";
}

namespace {

bool names(const PreparedXid& p, std::string_view gtrid) {
  return p.xid.gtrid == gtrid || (!p.is_dtx && p.raw == gtrid);
}

}  // namespace

SettleResult settle_transaction(const Config& config, const ResourceLookup& resources,
                                DecisionLog* own_log, const SettleRequest& request) {
  SettleResult result;
  const std::string& gtrid = request.gtrid;
  const char* verb = request.commit ? "commit" : "roll back";

  // Where is it prepared?
  const PreparedByResource listed = list_prepared(config, resources, "", result.errors);
  for (const auto& [resource, prepared] : listed)
    for (const PreparedXid& p : prepared)
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
  const bool in_table = ours && decision_store_of(parts->incarnation) == DecisionStore::database;
  std::optional<DecisionTable> table;
  // The owner's liveness lock, held for the settlement: keeps recovery
  // passes off these branches meanwhile.
  std::optional<LivenessHolds> hold;
  LogState logs;
  if (in_table) {
    if (config.coordinator.decisions.empty())
      throw Error({.code = Errc::config, .gtrid = gtrid,
                   .hint = "set [coordinator] decisions to the resource its owner used"},
                  "cannot settle " + gtrid + ": its incarnation keeps its decisions in a resource's dtx_decision "
                  "table, and this configuration names none");
    table.emplace(config.resource(config.coordinator.decisions));
    hold.emplace(*table, config.coordinator.id, resources(table->resource()).acquire());
    table->ensure_schema(hold->session());
    result.owner_alive = !hold->try_hold(parts->incarnation);
    if (table->read_one(hold->session(), gtrid).outcome == TableOutcome::commit)
      result.decision = LoggedDecision::commit;
  } else {
    if (ours) owner.insert(parts->incarnation);
    logs = read_log_state(config.coordinator.log_dir, config.coordinator.id, owner);
    if (ours) {
      result.owner_alive = logs.alive(parts->incarnation);
      if (logs.decision(gtrid)) result.decision = LoggedDecision::commit;
    }
  }
  for (auto& b : result.branches) {
    b.decision = result.decision;
    b.owner_alive = result.owner_alive;
    if (parts) {
      b.coordinator_id = parts->coordinator_id;
      b.incarnation = parts->incarnation;
    }
  }
  // A live owner may be deciding or finishing the branches this very moment:
  // acting beside it can split the transaction (a rollback here while it
  // commits there), so even --force waits for it to be gone.
  if (result.owner_alive.value_or(false) && in_table)
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "stop that process (it holds its liveness lock on " + table->resource() +
                         ": " + (table->type() == ResourceType::mysql ? "IS_USED_LOCK('" +
                         liveness_lock_name(config.coordinator.id, parts->incarnation) + "')" : "pg_locks, advisory key " +
                         std::to_string(liveness_lock_key(config.coordinator.id, parts->incarnation))) +
                         " shows its session), then retry; if it is gone, a recovery pass or another operator "
                         "is finishing it: retry in a moment. --force does not override this"},
                std::string("refusing to ") + verb + " " + gtrid + ": its owning process (incarnation " +
                    parts->incarnation + " of coordinator " + parts->coordinator_id +
                    ") is alive, or a recovery pass or operator is working on it");
  if (result.owner_alive.value_or(false))
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "stop that process (it holds the lock file " +
                         incarnation_lock_file(config.coordinator.log_dir, config.coordinator.id,
                                               parts->incarnation).string() +
                         "; `fuser -v FILE` shows its pid), then retry; if no process holds it, a "
                         "recovery pass or another operator is finishing it: retry in a moment. "
                         "--force does not override this"},
                std::string("refusing to ") + verb + " " + gtrid + ": its owning process (incarnation " +
                    parts->incarnation + " of coordinator " + parts->coordinator_id +
                    ") is alive, or a recovery pass or operator is working on it");
  if (request.accept_current) {
    for (auto& b : result.branches) {
      if (b.prepared.mode != BranchMode::at) {
        b.detail = "not an AT branch: finish it with `dtx commit` or `dtx rollback`";
        continue;
      }
      try {
        SessionLease session = resources(b.resource).acquire();
        FinishResult answer = session->commit_prepared(b.prepared.xid);
        FinishVerdict v = judge_finish(*session, b.prepared.xid,
                                       {gtrid, b.resource, true, DecisionBasis::commit, "operator"}, answer);
        b.action = v.action;
        b.detail = v.detail;
      } catch (const Error& e) {
        b.action = BranchAction::failed;
        b.detail = e.what();
      }
      if (b.action != BranchAction::committed) continue;
      b.detail = "current rows accepted; undo record deleted, global locks released";
      HeuristicOutcome h{gtrid, b.resource, to_string(result.decision),
                         "accepted_current_rows", "operator",
                         "the operator kept the rows as they were (dtx accept-current) instead of undoing the "
                         "branch from its undo record"};
      try {
        record_heuristic(config.coordinator.log_dir, h);
      } catch (const Error& e) {
        result.errors.push_back(e.what());
      }
      result.heuristics.push_back(std::move(h));
    }
    publish_prepared(listed, result.branches);
    return result;
  }
  const bool other_coordinator =
      parts && !ours && std::any_of(result.branches.begin(), result.branches.end(),
                                    [](const InDoubtBranch& b) { return b.prepared.is_dtx; });
  if (other_coordinator && !request.force)
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "settle it with coordinator " + parts->coordinator_id +
                         "'s own configuration (same id, same log_dir), or `dtx recover` there; "
                         "--force " + (request.commit ? "commits" : "rolls back") +
                         " it from here and records a heuristic outcome"},
                std::string("refusing to ") + verb + " " + gtrid + ": it belongs to coordinator " +
                    parts->coordinator_id + " (this configuration is " + config.coordinator.id +
                    "), whose decision log this configuration does not read");
  // An incarnation deciding in a table: the operator's decision is a row
  // too, inserted by the key like recovery's fence, so a commit landing late
  // cannot split the transaction.
  bool against_abort = false;
  if (in_table && !request.accept_current) {
    if (request.commit) {
      if (result.decision == LoggedDecision::none) {
        std::vector<std::string> names;
        for (const auto& b : result.branches) names.push_back(b.resource);
        try {
          table->insert_commit(hold->session(), gtrid, names);
          result.decided_here = true;
          logger().warn("{}: operator commits a transaction that had no COMMIT decision", gtrid);
        } catch (const Error& e) {
          if (!DecisionTable::is_duplicate_key(e)) throw;
          if (table->read_one(hold->session(), gtrid).outcome == TableOutcome::commit)
            result.decision = LoggedDecision::commit;
          else
            against_abort = true;
        }
      }
    } else {
      const std::string g[] = {gtrid};
      auto fenced = table->fence(hold->session(), g);
      if (fenced[gtrid].error) throw *fenced[gtrid].error;
      if (fenced[gtrid].outcome == TableOutcome::commit) result.decision = LoggedDecision::commit;
    }
    for (auto& b : result.branches) b.decision = result.decision;
  }
  if (against_abort && !request.force)
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "`dtx rollback` finishes it as decided; --force commits anyway and records a heuristic "
                         "outcome"},
                "refusing to commit: " + table->resource() + "'s dtx_decision holds an ABORT row for it (recovery "
                "or an operator aborted it; some branches may be rolled back already)");
  const bool against_decision = !request.commit && result.decision == LoggedDecision::commit;
  if (against_decision && !request.force)
    throw Error({.code = Errc::usage, .gtrid = gtrid,
                 .hint = "`dtx commit` finishes it as decided; --force rolls back anyway and "
                         "records a heuristic outcome"},
                "refusing to roll back: the decision log holds a COMMIT decision for it");

  // A commit the logs do not hold yet is made durable first, so that a crash
  // half-way leaves a decision for recovery instead of a split transaction.
  if (!in_table && request.commit && result.decision == LoggedDecision::none) {
    std::vector<BranchRef> refs;
    for (const auto& b : result.branches) refs.push_back({b.resource, b.prepared.xid.bqual});
    if (ours) {
      if (!own_log)
        throw Error({.code = Errc::config, .gtrid = gtrid,
                     .hint = "run it with the configuration (log_dir) of its owner"},
                    "cannot commit " + gtrid + ": it has no COMMIT decision, and this process has no decision "
                    "log to write one to first");
      own_log->log_commit(gtrid, refs);
      result.decided_here = true;
    }
    logger().warn("{}: operator commits a transaction that had no COMMIT decision", gtrid);
  }

  const DecisionBasis basis = other_coordinator ? DecisionBasis::other_coordinator
                              : !ours             ? DecisionBasis::foreign
                              : against_abort     ? DecisionBasis::none  // forced: heuristic
                              : request.commit || result.decision == LoggedDecision::commit
                                  ? DecisionBasis::commit  // a commit was logged above if need be
                                  : DecisionBasis::none;
  for (auto& b : result.branches) {
    FinishVerdict v;
    try {
      SessionLease session = resources(b.resource).acquire();
      v = finish_branch(*session, b.prepared.xid,
                        {gtrid, b.resource, request.commit, b.prepared.is_dtx ? basis : DecisionBasis::foreign,
                         "operator", /*overwrite=*/request.force && !request.commit});
    } catch (const Error& e) {
      v.action = BranchAction::failed;
      v.detail = e.what();
    }
    b.action = v.action;
    b.detail = v.detail;
    if (!v.heuristic) continue;
    try {
      record_heuristic(config.coordinator.log_dir, *v.heuristic);
    } catch (const Error& e) {
      result.errors.push_back(e.what());
    }
    result.heuristics.push_back(std::move(*v.heuristic));
  }
  if (result.decided_here && result.finished()) {
    if (in_table) {
      const std::string g[] = {gtrid};
      try {
        table->erase(hold->session(), g);
      } catch (const std::exception&) {
      }  // a later recovery pass deletes it
    } else {
      own_log->log_end(gtrid);
    }
  }
  publish_prepared(listed, result.branches);
  return result;
}

}  // namespace dtx
