// Recovery: finishing the branches a crash left prepared.
//
// WHAT IS IN DOUBT
// A branch prepared on a database and never committed or rolled back stays
// prepared forever, holding its row locks (MariaDB and PostgreSQL never ask
// a coordinator). dtx's branches carry xid (kDtxFormatId, gtrid, resource),
// and the gtrid names the coordinator id and the process incarnation that
// owns it (base/transaction_id.h).
//
// WHO DECIDES
// Presumed abort: a COMMIT record in the owner's decision log means commit;
// no record means abort — but only once the owner can no longer write one.
// An incarnation is provably gone when the flock on its lock file can be
// taken (decision_log.h); a live one may be between phase 1 and its
// decision, so its undecided branches are left alone. Age is never used.
//
// DECISIONS IN A DATABASE ([coordinator] decisions = "R"). An incarnation
// that keeps its decisions in R's dtx_decision (its id says so) is gone when
// the pass can take its liveness lock on R (held for the pass); a branch of
// it is decided by the fence — an ABORT row inserted under the gtrid's key,
// which waits for a COMMIT in flight — never by a read (dry runs excepted).
// Steps 2-3 and 7 below then read "R's table" for "the logs". Without R
// configured, or with R down, such branches are left, never presumed
// aborted. decision-table/decision_table.cc has the protocol.
//
// ONE PASS (Citus's double scan, with liveness in the middle)
//   1. list prepared branches on every resource            (scan 1)
//   2. adopt every incarnation of our coordinator id that nobody holds: take
//      its lock (creating the lock file of one that exited cleanly) and keep
//      it for the pass. Who cannot be adopted is alive — its owner, or another
//      recovery pass or operator working on it — and is left alone.
//   3. read the logs -> gtrid -> COMMIT decision (live ones best effort, for
//      what they show)
//   4. list prepared branches again                        (scan 2)
//   5. act only on branches seen in both scans; a branch first seen in
//      scan 2 is judged next pass (its owner may have decided after step 3):
//        not dtx format / another coordinator id  -> report, never touch
//        COMMIT decision                          -> XA COMMIT / COMMIT PREPARED
//        no decision, owner dead                  -> XA ROLLBACK / ROLLBACK PREPARED
//        no decision, owner alive                 -> leave (report)
//        owner's log corrupt before its end       -> leave (report; operator decides)
//   6. what each database answer means is recovery/finish_branch.h's rule,
//      shared with phase 2 and the operator commands; "unknown xid" means
//      finished only if a third listing no longer shows the branch (MariaDB
//      says 1397 while a live session owns it).
//   7. a dead incarnation whose every decided branch is confirmed finished is
//      settled: its segments and lock file are deleted (under its lock).
// Branches are finished in parallel, several connections per resource.
//
// METRICS (docs/metrics.md)
// Every listing sets the resource's prepared-branch gauges; a pass sets them
// again from what is still prepared after it acted, sets the gauge of the
// transactions it left in doubt, and counts itself and its branches' actions
// (a dry run sets the gauges only). record_heuristic() counts every
// heuristic outcome, whoever records it.
//
// SAFETY WITH OTHERS RUNNING
// Live dtx processes: their undecided branches are never touched, their logs
// never deleted. Another recovery pass or an operator (dtx commit/rollback):
// whoever holds an incarnation's lock is the only one acting on its branches,
// so a pass never rolls back what an operator is committing, and two passes
// never work on the same incarnation. A branch finished by someone else
// between our scans answers "unknown xid", and step 6 sorts that out.
#include "recovery/recovery.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <future>
#include <thread>
#include <unordered_map>
#include <utility>

#include "decision-log/decision_log.h"
#include "decision-table/decision_table.h"
#include "base/transaction_id.h"
#include "base/logging.h"
#include "dtx/error.h"
#include "metrics/metrics.h"
#include "recovery/finish_branch.h"

namespace dtx {

namespace fs = std::filesystem;

const char* to_string(BranchAction action) noexcept {
  switch (action) {
    case BranchAction::committed: return "committed";
    case BranchAction::rolled_back: return "rolled_back";
    case BranchAction::already_finished: return "already_finished";
    case BranchAction::would_commit: return "would_commit";
    case BranchAction::would_roll_back: return "would_roll_back";
    case BranchAction::left_owner_alive: return "left_owner_alive";
    case BranchAction::left_session_busy: return "left_session_busy";
    case BranchAction::left_seen_once: return "left_seen_once";
    case BranchAction::left_log_damaged: return "left_log_damaged";
    case BranchAction::left_foreign: return "left_foreign";
    case BranchAction::left_other_coordinator: return "left_other_coordinator";
    case BranchAction::left_dirty_write: return "left_dirty_write";
    case BranchAction::left_record_damaged: return "left_record_damaged";
    case BranchAction::left_decisions_unreachable: return "left_decisions_unreachable";
    case BranchAction::failed: return "failed";
  }
  return "unknown";
}

const char* to_string(LoggedDecision decision) noexcept {
  return decision == LoggedDecision::commit ? "commit" : "none";
}

bool is_left_in_doubt(BranchAction action) noexcept {
  switch (action) {
    case BranchAction::committed:
    case BranchAction::rolled_back:
    case BranchAction::already_finished:
    case BranchAction::left_foreign:            // not ours: reported, never counted
    case BranchAction::left_other_coordinator:
      return false;
    default:
      return true;
  }
}

std::size_t RecoveryReport::left_in_doubt() const {
  return static_cast<std::size_t>(std::count_if(branches.begin(), branches.end(), [](const InDoubtBranch& b) {
    return is_left_in_doubt(b.action);
  }));
}

namespace {

constexpr std::size_t kConnectionsPerResource = 4;

std::string xid_key(const Xid& xid) {
  return std::to_string(xid.format_id) + '\0' + xid.gtrid + '\0' + xid.bqual;
}

using Scan = PreparedByResource;

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Deletes the files of an incarnation this pass holds, then lets go of it.
// Deletes a settled incarnation's files; returns what could not be deleted
// (the next pass tries again).
std::vector<std::string> delete_incarnation(LogState::Incarnation& inc) {
  std::vector<std::string> failed;
  std::vector<fs::path> files = inc.files.segments;
  if (!inc.files.lock_file.empty()) files.push_back(inc.files.lock_file);
  for (const auto& file : files) {
    std::error_code ec;
    if (!fs::remove(file, ec) && ec)
      failed.push_back("cannot delete the settled decision log file " + file.string() + ": " + ec.message() +
                       "; its decisions are finished, a later pass deletes it once log_dir is writable");
  }
  inc.lock.release();
  return failed;
}

// The prepared-branch gauges of one resource (dtx_prepared_branches,
// dtx_prepared_oldest_age_seconds), from the branches prepared there.
struct PreparedTally {
  std::size_t count = 0;
  std::optional<std::chrono::system_clock::time_point> oldest;  // of those with a known time

  void add(const PreparedXid& p) {
    ++count;
    if (p.prepared_at && (!oldest || *p.prepared_at < *oldest)) oldest = p.prepared_at;
  }
  void publish(std::string_view resource) const {
    const double age =
        oldest ? std::max(0.0, std::chrono::duration<double>(std::chrono::system_clock::now() - *oldest).count())
               : 0.0;
    metrics::prepared_branches(resource, count, age);
  }
};

// A pass's metrics: its outcome and duration, what it did with each branch,
// the global transactions it left in doubt. A dry run sets the last only.
void publish_pass(const RecoveryReport& report, bool dry_run) {
  std::set<std::string> in_doubt;
  for (const auto& b : report.branches) {
    if (is_left_in_doubt(b.action)) in_doubt.insert(b.gtrid);
    if (!dry_run) metrics::recovery_branch(to_string(b.action));
  }
  metrics::recovery_pass({.outcome = !report.errors.empty() ? metrics::PassOutcome::error
                                     : in_doubt.empty()      ? metrics::PassOutcome::settled
                                                             : metrics::PassOutcome::left_in_doubt,
                          .took = report.elapsed,
                          .transactions_in_doubt = in_doubt.size(),
                          .dry_run = dry_run});
}

// What a pass knows of the incarnations that keep their decisions in R's
// table (decision_table.cc): which are gone — their liveness lock taken by
// this pass and held until it ends — and the rows it read before scan 2.
struct DatabaseDecisions {
  const DecisionTable* table = nullptr;  // null: [coordinator] decisions not set
  std::optional<LivenessHolds> holds;    // the pass's session on R
  std::string error;                     // R unusable this pass: why
  std::map<std::string, std::vector<DecisionRow>> rows;  // by incarnation

  bool usable() const { return table && holds && error.empty(); }
  Session& session() { return holds->session(); }
  bool gone(const std::string& incarnation) const { return holds && holds->holds(incarnation); }
};

}  // namespace

void record_heuristic(const fs::path& log_dir, const HeuristicOutcome& h) {
  metrics::heuristic_outcome(h.by);  // it happened, whether or not it can be recorded
  if (log_dir.empty()) {  // decisions in a database and no log_dir: the process log only
    logger().error("{}: HEURISTIC outcome on {}: decision {}, branch {} by {}{}{} (no log_dir configured: not "
                   "recorded in a heuristics.log)",
                   h.gtrid, h.resource, h.decision, h.outcome, h.by, h.detail.empty() ? "" : ": ", h.detail);
    return;
  }
  std::error_code dir_error;
  fs::create_directories(log_dir, dir_error);
  fs::path file = log_dir / "heuristics.log";
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string line = std::string("{\"time\":\"") + when + "\",\"gtrid\":\"" + json_escape(h.gtrid) +
                     "\",\"resource\":\"" + json_escape(h.resource) + "\",\"decision\":\"" +
                     json_escape(h.decision) + "\",\"outcome\":\"" + json_escape(h.outcome) +
                     "\",\"by\":\"" + json_escape(h.by) + "\",\"detail\":\"" + json_escape(h.detail) +
                     "\"}\n";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fdatasync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok)
    throw Error({.code = Errc::log, .gtrid = h.gtrid},
                "cannot record heuristic outcome in " + file.string() + ": " + std::strerror(errno));
  logger().error("{}: HEURISTIC outcome on {}: decision {}, branch {} by {}{}{}", h.gtrid, h.resource,
                 h.decision, h.outcome, h.by, h.detail.empty() ? "" : ": ", h.detail);
}

const DecisionRecord* LogState::decision(std::string_view gtrid) const {
  auto it = commits.find(gtrid);
  return it == commits.end() ? nullptr : it->second;
}

bool LogState::alive(std::string_view incarnation) const {
  auto it = incarnations.find(std::string(incarnation));
  return it == incarnations.end() || it->second.alive();
}

LogState read_log_state(const fs::path& log_dir, const std::string& coordinator_id,
                        const std::set<std::string>& referenced) {
  LogState state;
  if (!fs::exists(log_dir)) {
    if (referenced.empty()) return state;
    // Branches of this coordinator id are prepared, and there is no log at
    // all: a wrong log_dir or a deleted one. Nobody can tell whether their
    // owners live or what they decided.
    state.log_dir_missing = true;
    std::string ids;
    for (const std::string& id : referenced) {
      ids += (ids.empty() ? "" : ", ") + id;
      LogState::Incarnation& inc = state.incarnations[id];
      inc.log_dir_missing = inc.damaged = true;
    }
    state.problems.push_back("decision log directory " + log_dir.string() +
                             " does not exist, but branches of coordinator " + coordinator_id +
                             " (incarnation " + ids +
                             ") are prepared: their owners' state and decisions cannot be known; check "
                             "log_dir in the config (every process of a coordinator id must use the same "
                             "one), or settle them with dtx commit / dtx rollback");
    return state;
  }
  std::set<std::string> ids = referenced;
  for (const LogIncarnation& files : list_incarnations(log_dir))
    if (files.coordinator_id == coordinator_id) ids.insert(files.incarnation);
  for (const std::string& id : ids) {
    LogState::Incarnation inc;
    inc.lock = adopt_incarnation(log_dir, coordinator_id, id);
    state.incarnations.emplace(id, std::move(inc));
  }
  // With the dead ones held, their segments stay put: list and read them.
  for (LogIncarnation& files : list_incarnations(log_dir)) {
    auto it = state.incarnations.find(files.incarnation);
    if (files.coordinator_id != coordinator_id || it == state.incarnations.end()) continue;
    LogState::Incarnation& inc = it->second;
    inc.files = std::move(files);
    std::vector<std::string> problems;
    try {
      if (!inc.alive()) problems = find_log_damage(inc.files, referenced.count(inc.files.incarnation) > 0);
      inc.decisions = open_decisions(inc.files);
    } catch (const Error&) {
      if (!inc.alive()) throw;  // we hold it: its files cannot have changed
      inc.decisions.clear();    // a live log rolled over or closed under us: shows nothing
      continue;
    }
    if (inc.alive()) continue;  // a live log's tail may be mid-write: not damage
    inc.damaged = !problems.empty();
    state.problems.insert(state.problems.end(), problems.begin(), problems.end());
  }
  for (auto& [id, inc] : state.incarnations)
    for (const auto& d : inc.decisions) state.commits.emplace(d.gtrid, &d);
  return state;
}

void publish_prepared(const PreparedByResource& listed, std::span<const InDoubtBranch> acted) {
  std::set<std::string> ended;  // resource \0 xid
  for (const auto& b : acted)
    if (b.action == BranchAction::committed || b.action == BranchAction::rolled_back ||
        b.action == BranchAction::already_finished)
      ended.insert(b.resource + '\0' + xid_key(b.prepared.xid));
  for (const auto& [resource, list] : listed) {
    PreparedTally tally;
    for (const PreparedXid& p : list)
      if (!ended.count(resource + '\0' + xid_key(p.xid))) tally.add(p);
    tally.publish(resource);
  }
}

PreparedByResource list_prepared(const Config& config, const ResourceLookup& resources,
                                 const std::string& when, std::vector<std::string>& errors) {
  std::vector<std::pair<std::string, std::future<std::vector<PreparedXid>>>> jobs;
  for (const auto& [name, _] : config.resources)
    jobs.emplace_back(name, std::async(std::launch::async, [&resources, name = name] {
                        return resources(name).acquire()->recover();
                      }));
  PreparedByResource result;
  for (auto& [name, job] : jobs) {
    try {
      std::vector<PreparedXid> listed = job.get();
      PreparedTally tally;
      for (const PreparedXid& p : listed) tally.add(p);
      tally.publish(name);
      result.emplace(name, std::move(listed));
    } catch (const std::exception& e) {
      errors.push_back(std::string(kCannotListPrefix) + name + when + ": " + e.what());
    }
  }
  return result;
}

RecoveryScanner::RecoveryScanner(const Config& config, ResourceLookup resources)
    : config_(config), resources_(std::move(resources)) {}

RecoveryReport RecoveryScanner::run(const RecoveryOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  RecoveryReport report;
  const std::string& my_id = config_.coordinator.id;

  auto scan = [&](const char* which) {
    return list_prepared(config_, resources_, std::string(" (") + which + ")", report.errors);
  };

  // 1. Scan 1.
  Scan first = scan("scan 1");

  // 2. Liveness (adopting the incarnations nobody holds), then 3. their logs.
  std::set<std::string> referenced, in_table;  // incarnations owning branches, by where they decide
  for (const auto& [resource, list] : first)
    for (const auto& p : list)
      if (auto parts = p.is_dtx ? parse_gtrid(p.xid.gtrid) : std::nullopt; parts && parts->coordinator_id == my_id)
        (decision_store_of(parts->incarnation) == DecisionStore::database ? in_table : referenced)
            .insert(parts->incarnation);
  // Incarnations deciding in R's table: gone if this pass can take their
  // liveness lock (kept for the pass, like a file log's flock).
  std::optional<DecisionTable> table;
  DatabaseDecisions db;
  if (!config_.coordinator.decisions.empty()) {
    table.emplace(config_.resource(config_.coordinator.decisions));
    db.table = &*table;
    try {
      db.holds.emplace(*table, my_id, resources_(table->resource()).acquire());
      table->ensure_schema(db.session());
      // The rows step 7 may delete: read before scan 2, so every branch of
      // their gtrids that is still prepared shows in scan 2 (a decision
      // follows every prepare). Incarnations with rows but no prepared
      // branch (each finished after a crash, or by an operator) are adopted
      // too: nothing else would delete their rows.
      std::set<std::string> adopt = in_table;
      for (auto& [gtrid, row] : table->read(db.session(), my_id))
        if (auto parts = parse_gtrid(gtrid); parts && decision_store_of(parts->incarnation) == DecisionStore::database) {
          adopt.insert(parts->incarnation);
          db.rows[parts->incarnation].push_back(std::move(row));
        }
      for (const std::string& inc : adopt)
        if (inc != options.own_incarnation) db.holds->try_hold(inc);
    } catch (const std::exception& e) {
      db.error = std::string("cannot read the decisions on ") + table->resource() + ": " + e.what();
      if (!in_table.empty()) report.errors.push_back(db.error);
    }
  }
  LogState logs;
  try {
    logs = read_log_state(config_.coordinator.log_dir, my_id, referenced);
    report.errors.insert(report.errors.end(), logs.problems.begin(), logs.problems.end());
  } catch (const std::exception& e) {
    report.errors.push_back(std::string("cannot read the decision logs in ") +
                            config_.coordinator.log_dir.string() + ": " + e.what());
    // Without the logs nothing can be decided safely: report only.
    Scan second = scan("scan 2");
    for (auto& [resource, list] : second)
      for (auto& p : list)
        report.branches.push_back({resource, p, p.xid.gtrid, {}, {}, {}, LoggedDecision::none,
                                   BranchAction::left_log_damaged, "decision logs unreadable"});
    report.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    publish_pass(report, options.dry_run);
    return report;
  }
  auto& incarnations = logs.incarnations;

  // 4. Scan 2.
  Scan second = scan("scan 2");

  // 5. Classify.
  std::set<std::string> seen_first;
  for (const auto& [resource, list] : first)
    for (const auto& p : list) seen_first.insert(resource + '\0' + xid_key(p.xid));

  struct Work {
    std::size_t index;  // into report.branches
    bool commit;
  };
  std::map<std::string, std::vector<Work>, std::less<>> work;  // by resource
  std::vector<std::size_t> to_fence;  // branches decided by R's table, to fence (or read, dry run)

  for (auto& [resource, list] : second) {
    for (auto& p : list) {
      InDoubtBranch b{resource, p, p.is_dtx ? p.xid.gtrid : p.raw, {}, {}, {}, LoggedDecision::none,
                      BranchAction::failed, {}};
      auto parts = p.is_dtx ? parse_gtrid(p.xid.gtrid) : std::nullopt;
      if (!p.is_dtx || !parts) {
        b.action = BranchAction::left_foreign;
        b.detail = "not in dtx's format";
      } else {
        b.coordinator_id = parts->coordinator_id;
        b.incarnation = parts->incarnation;
        auto own = b.incarnation == options.own_incarnation ? options.own_orphans.find(b.gtrid)
                                                            : options.own_orphans.end();
        if (b.coordinator_id == my_id && decision_store_of(b.incarnation) == DecisionStore::database) {
          if (db.usable()) b.owner_alive = b.incarnation == options.own_incarnation || !db.gone(b.incarnation);
          if (!seen_first.count(resource + '\0' + xid_key(p.xid))) {
            b.action = BranchAction::left_seen_once;
            b.detail = "prepared during this pass; judged next pass";
          } else if (!db.usable()) {
            b.action = BranchAction::left_decisions_unreachable;
            b.detail = db.table ? db.error
                                : "its incarnation keeps its decisions in a resource's dtx_decision table; run "
                                  "recovery with the same [coordinator] decisions setting as its owner";
          } else if (b.owner_alive.value_or(false) && own == options.own_orphans.end()) {
            b.action = BranchAction::left_owner_alive;
            b.detail = "incarnation " + b.incarnation +
                       " is alive (holds its liveness lock on " + table->resource() +
                       ") and may still decide, or another recovery pass holds it";
          } else {
            to_fence.push_back(report.branches.size());
          }
          report.branches.push_back(std::move(b));
          continue;
        }
        auto inc = incarnations.find(b.incarnation);
        if (logs.decision(b.gtrid)) b.decision = LoggedDecision::commit;
        if (own != options.own_orphans.end()) b.decision = own->second;
        if (b.coordinator_id == my_id && !(logs.log_dir_missing && b.incarnation != options.own_incarnation))
          b.owner_alive = b.incarnation == options.own_incarnation || logs.alive(b.incarnation);

        if (b.coordinator_id != my_id) {
          b.action = BranchAction::left_other_coordinator;
          b.detail = "belongs to coordinator " + b.coordinator_id;
        } else if (!seen_first.count(resource + '\0' + xid_key(p.xid))) {
          b.action = BranchAction::left_seen_once;
          b.detail = "prepared during this pass; judged next pass";
        } else if (b.owner_alive.value_or(false) && own == options.own_orphans.end()) {
          b.action = BranchAction::left_owner_alive;
          b.detail = "incarnation " + b.incarnation +
                     " is alive and may still decide (or another recovery pass or operator holds it)";
        } else if (b.decision == LoggedDecision::none && inc != incarnations.end() && inc->second.damaged) {
          b.action = BranchAction::left_log_damaged;
          b.detail = logs.log_dir_missing
                         ? "decision log directory " + config_.coordinator.log_dir.string() +
                               " does not exist; decide with dtx commit/rollback"
                         : "the owner's decision log is damaged; decide with dtx commit/rollback";
        } else {
          bool commit = b.decision == LoggedDecision::commit;
          if (options.dry_run) {
            b.action = commit ? BranchAction::would_commit : BranchAction::would_roll_back;
            if (!commit && p.mode == BranchMode::at) {
              try {  // what the rollback would meet: a dirty write is shown before anyone acts
                b.detail = resources_(resource).acquire()->describe_rollback(p.xid);
              } catch (const std::exception& e) {
                b.detail = std::string("cannot look at the rows: ") + e.what();
              }
            }
          } else {
            work[resource].push_back({report.branches.size(), commit});
          }
        }
      }
      report.branches.push_back(std::move(b));
    }
  }

  // Branches decided in R's table: the fence decides (a dry run only reads,
  // which cannot see a commit in flight: it says what would be done now).
  if (!to_fence.empty()) {
    std::vector<std::string> gtrids;
    for (std::size_t k : to_fence) gtrids.push_back(report.branches[k].gtrid);
    std::sort(gtrids.begin(), gtrids.end());
    gtrids.erase(std::unique(gtrids.begin(), gtrids.end()), gtrids.end());
    std::map<std::string, DecisionTable::Fenced, std::less<>> decided;
    try {
      if (options.dry_run) {
        for (const std::string& g : gtrids) {
          const TableOutcome o = table->read_one(db.session(), g).outcome;
          decided[g].outcome = o == TableOutcome::commit ? o : TableOutcome::abort;
        }
      } else {
        decided = table->fence(db.session(), gtrids);
      }
    } catch (const Error& e) {
      for (const std::string& g : gtrids)
        if (!decided.count(g)) decided[g].error = e;
    }
    for (std::size_t k : to_fence) {
      InDoubtBranch& b = report.branches[k];
      const DecisionTable::Fenced& f = decided[b.gtrid];
      if (f.error) {
        b.action = BranchAction::failed;
        b.detail = std::string("cannot fence the transaction on ") + table->resource() + ": " + f.error->what();
        continue;
      }
      const bool commit = f.outcome == TableOutcome::commit;
      b.decision = commit ? LoggedDecision::commit : LoggedDecision::none;
      if (options.dry_run) {
        b.action = commit ? BranchAction::would_commit : BranchAction::would_roll_back;
        if (!commit && b.prepared.mode == BranchMode::at) {
          try {
            b.detail = resources_(b.resource).acquire()->describe_rollback(b.prepared.xid);
          } catch (const std::exception& e) {
            b.detail = std::string("cannot look at the rows: ") + e.what();
          }
        }
      } else {
        work[b.resource].push_back({k, commit});
      }
    }
  }

  // Act, in parallel: several connections per resource. What each answer
  // means is finish_branch.h's rule; "unknown xid" waits for step 6.
  struct Acted {
    FinishRequest request;
    FinishResult answer;
    FinishVerdict verdict;
  };
  std::vector<std::optional<Acted>> acted(report.branches.size());  // by index; one writer each
  std::vector<std::thread> workers;
  for (auto& [resource, items] : work) {
    std::size_t n = std::min(kConnectionsPerResource, items.size());
    for (std::size_t w = 0; w < n; ++w)
      workers.emplace_back([&, w, n, resource = resource] {
        std::optional<SessionLease> session;
        for (std::size_t i = w; i < items.size(); i += n) {
          const std::size_t k = items[i].index;
          const InDoubtBranch& b = report.branches[k];
          FinishResult answer;
          try {
            if (!session || (*session)->broken()) session = resources_(resource).acquire();
            answer = items[i].commit ? (*session)->commit_prepared(b.prepared.xid)
                                     : (*session)->rollback_prepared(b.prepared.xid);
          } catch (const Error& e) {
            answer = {FinishOutcome::failed, e};
          } catch (const std::exception& e) {
            answer = {FinishOutcome::failed, Error({.resource = resource, .gtrid = b.gtrid}, e.what())};
          }
          FinishRequest request{b.gtrid, b.resource, items[i].commit,
                                items[i].commit ? DecisionBasis::commit : DecisionBasis::none,
                                "recovery"};
          FinishVerdict verdict = judge_finish(request, answer);
          acted[k] = Acted{std::move(request), std::move(answer), std::move(verdict)};
        }
      });
  }
  for (auto& t : workers) t.join();

  // 6. "Unknown xid" is "finished" only if a listing taken after the answer
  // no longer shows the branch: one listing per resource that needs it.
  std::map<std::string, std::optional<std::set<std::string>>, std::less<>> relisted;
  for (std::size_t k = 0; k < acted.size(); ++k)
    if (acted[k] && acted[k]->verdict.needs_listing) relisted[report.branches[k].resource];
  for (auto& [resource, still] : relisted) {
    try {
      still.emplace();
      for (const auto& p : resources_(resource).acquire()->recover()) still->insert(xid_key(p.xid));
    } catch (const std::exception& e) {
      still.reset();
      report.errors.push_back("cannot re-list " + resource + ": " + e.what());
    }
  }
  for (std::size_t k = 0; k < acted.size(); ++k) {
    if (!acted[k]) continue;
    InDoubtBranch& b = report.branches[k];
    FinishVerdict v = std::move(acted[k]->verdict);
    if (v.needs_listing) {
      const auto& still = relisted[b.resource];
      if (still)
        v = judge_finish(acted[k]->request, acted[k]->answer,
                         still->count(xid_key(b.prepared.xid)) ? Listing::still_listed : Listing::gone);
      else
        v.action = BranchAction::failed;  // not confirmed either way: next pass
    }
    b.action = v.action;
    b.detail = v.detail;
    if (v.heuristic) report.heuristics.push_back(std::move(*v.heuristic));
  }
  for (const auto& h : report.heuristics) {
    try {
      record_heuristic(config_.coordinator.log_dir, h);
    } catch (const Error& e) {
      report.errors.push_back(e.what());
    }
  }

  // 7. Drop settled decisions: a dead incarnation whose every decided branch
  // is confirmed finished (its resource scanned, the branch not left).
  if (!options.dry_run) {
    std::set<std::string> still_prepared;  // resource \0 xid
    for (const auto& b : report.branches)
      if (is_left_in_doubt(b.action)) still_prepared.insert(b.resource + '\0' + xid_key(b.prepared.xid));
    for (auto& [id, inc] : incarnations) {
      if (inc.alive() || inc.damaged) continue;
      bool settled = true;
      for (const auto& d : inc.decisions)
        for (const auto& br : d.branches) {
          Xid xid{Xid::kDtxFormatId, d.gtrid, br.bqual};
          if (!second.count(br.resource) || still_prepared.count(br.resource + '\0' + xid_key(xid)))
            settled = false;
        }
      // Undecided branches of this incarnation that are still prepared keep it too.
      for (const auto& b : report.branches)
        if (b.incarnation == id && is_left_in_doubt(b.action)) settled = false;
      if (settled) {
        std::vector<std::string> failed = delete_incarnation(inc);
        if (failed.empty()) report.decisions_dropped += inc.decisions.size();
        report.errors.insert(report.errors.end(), failed.begin(), failed.end());
      }
    }
  }

  // ... and the rows of gone incarnations in R's table whose branches are
  // all finished (ABORT rows only once old enough, decision_table.cc), if
  // every resource was listed. Only rows read before scan 2: a row inserted
  // since (by an owner taken for gone, its liveness session lost) may have
  // branches scan 2 did not see.
  if (!options.dry_run && db.usable() && second.size() == config_.resources.size()) {
    std::set<std::string, std::less<>> keep;
    for (const auto& b : report.branches)
      if (is_left_in_doubt(b.action)) keep.insert(b.gtrid);
    std::vector<std::string> settled;
    for (const std::string& inc : db.holds->held())
      for (const DecisionRow& row : db.rows[inc])
        if (!keep.count(row.gtrid) &&
            (row.outcome == TableOutcome::commit ||
             row.age_s > std::chrono::duration<double>(kAbortRowRetention).count()))
          settled.push_back(row.gtrid);
    try {
      report.decisions_dropped += table->erase(db.session(), settled);
    } catch (const std::exception& e) {
      report.errors.push_back(std::string("cannot delete settled decisions from ") + table->resource() + ": " +
                              e.what());
    }
  }
  if (db.holds) db.holds->release();

  for (const auto& b : report.branches)
    if (b.action == BranchAction::failed)
      logger().warn("{}: recovery could not finish the branch on {}: {}", b.gtrid, b.resource, b.detail);
    else if (!is_left_in_doubt(b.action))
      logger().info("{}: recovery: branch on {} {}", b.gtrid, b.resource, to_string(b.action));
  publish_prepared(second, report.branches);  // what is still prepared now
  report.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  publish_pass(report, options.dry_run);
  return report;
}

}  // namespace dtx
