// The recovery scanner: finds prepared branches on every configured resource
// and finishes dtx's own according to the decision logs. See the design note
// at the top of recovery.cc and docs/recovery.md.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decision-log/decision_log.h"
#include "decision-log/incarnation_lock.h"
#include "drivers/resource_manager.h"
#include "dtx/config.h"

namespace dtx {

// What the scanner did, or (dry run) would do, with one prepared branch.
enum class BranchAction {
  committed,             // had a COMMIT decision; committed now
  rolled_back,           // no decision and its owner is gone; rolled back now (presumed abort)
  already_finished,      // someone else finished it between our scans
  would_commit,          // dry run
  would_roll_back,       // dry run
  left_owner_alive,      // no decision yet and the owning process lives: it may still decide
  left_session_busy,     // a live session owns it (MariaDB 1397 while listed, PostgreSQL "is busy")
  left_seen_once,        // appeared between the two scans: judged next pass
  left_log_damaged,      // the owner's log is corrupt before its end: decide by hand
  left_foreign,          // not in dtx's format: never touched unless an operator names it
  left_other_coordinator,  // another coordinator id's branch: its own recovery finishes it
  left_dirty_write,      // AT rollback met rows changed outside the branch since phase 1:
                         // nothing undone, locks kept; an operator decides (docs/at-mode.md)
  left_record_damaged,   // AT: the undo record cannot be read; decide by hand
  left_decisions_unreachable,  // its decision is in a resource's dtx_decision that this pass
                               // cannot read ([coordinator] decisions unset, or down)
  failed,                // the commit/rollback failed (see detail); retried next pass
};

const char* to_string(BranchAction action) noexcept;
// True when one of this coordinator's branches is still prepared after the
// pass (every left_* and failed, except foreign and other coordinators').
bool is_left_in_doubt(BranchAction action) noexcept;

enum class LoggedDecision { none, commit };

const char* to_string(LoggedDecision decision) noexcept;  // "none" / "commit"

struct InDoubtBranch {
  std::string resource;
  PreparedXid prepared;
  std::string gtrid;             // prepared.xid.gtrid, or the raw gid for foreign ones
  std::string coordinator_id;    // from the gtrid; empty if not a dtx gtrid
  std::string incarnation;       // from the gtrid
  std::optional<bool> owner_alive;  // unknown for foreign branches
  LoggedDecision decision = LoggedDecision::none;
  BranchAction action = BranchAction::failed;
  std::string detail;            // the error, or why it was left
};

// A transaction finished against its logged decision, by a database or an
// operator with --force. Recorded in <log_dir>/heuristics.log and reported.
struct HeuristicOutcome {
  std::string gtrid;
  std::string resource;
  std::string decision;  // what the log said: "commit" or "none"
  std::string outcome;   // what happened to the branch: "rolled_back" / "committed"
  std::string by;        // "database", "operator"
  std::string detail;
};

struct RecoveryReport {
  std::vector<InDoubtBranch> branches;
  std::vector<std::string> errors;            // resources that could not be scanned, log problems
  std::vector<HeuristicOutcome> heuristics;   // found or caused in this pass
  std::size_t decisions_dropped = 0;          // COMMIT records of dead incarnations now settled
  std::chrono::microseconds elapsed{0};

  std::size_t left_in_doubt() const;
  // Nothing left prepared and no error.
  bool settled() const { return left_in_doubt() == 0 && errors.empty(); }
};

struct RecoveryOptions {
  bool dry_run = false;
  // In a live coordinator: branches of its own incarnation that it handed to
  // recovery (gtrid -> decision). External passes leave live owners alone.
  std::string own_incarnation;
  std::map<std::string, LoggedDecision, std::less<>> own_orphans;
};

using ResourceLookup = std::function<ResourceManager&(std::string_view name)>;

// resource -> the prepared branches it listed; absent if it could not be listed.
using PreparedByResource = std::map<std::string, std::vector<PreparedXid>, std::less<>>;

// Lists the prepared branches of every configured resource, in parallel. A
// resource that cannot be listed is left out, and "cannot list prepared
// branches on <resource><when>: <error>" is appended to `errors`.
inline constexpr std::string_view kCannotListPrefix = "cannot list prepared branches on ";
PreparedByResource list_prepared(const Config& config, const ResourceLookup& resources,
                                 const std::string& when, std::vector<std::string>& errors);

// Sets the prepared-branch gauges of every resource in `listed` (metrics:
// dtx_prepared_branches, dtx_prepared_oldest_age_seconds) to what is still
// prepared there: its listed branches but those `acted` says were ended
// since (committed, rolled back, already finished). list_prepared() sets them
// from each listing; a pass or an operator command calls this once it acted.
void publish_prepared(const PreparedByResource& listed, std::span<const InDoubtBranch> acted);

class RecoveryScanner {
 public:
  using ResourceLookup = dtx::ResourceLookup;

  // `resources` gives the manager of every configured resource.
  RecoveryScanner(const Config& config, ResourceLookup resources);

  // One pass: scan, read the logs of dead incarnations, scan again, act on
  // branches seen both times, drop settled decisions. Never throws for a
  // database or log problem: those are reported in the RecoveryReport.
  RecoveryReport run(const RecoveryOptions& options = {});

 private:
  const Config& config_;
  ResourceLookup resources_;
};

// What the decision logs of one coordinator id say. Incarnations nobody holds
// are adopted (their lock taken for the life of the LogState) before their
// segments are read, so their logs cannot change or vanish meanwhile. The
// logs of live incarnations are read too, best effort, for what they show
// (a live owner's decisions); they may roll over or vanish at any time.
struct LogState {
  LogState() = default;
  LogState(LogState&&) = default;
  LogState& operator=(LogState&&) = default;
  LogState(const LogState&) = delete;  // `commits` points into `incarnations`

  struct Incarnation {
    LogIncarnation files;
    IncarnationLock lock;  // held: the owner is gone and this pass owns it
    // Not held and the log_dir exists: a live owner, or another pass holds it.
    bool alive() const noexcept { return !lock.held() && !log_dir_missing; }
    bool log_dir_missing = false;  // nobody can tell: left for an operator
    // Damage a crash cannot cause (find_log_damage), or a missing log_dir:
    // undecided branches are left for an operator, never presumed aborted.
    bool damaged = false;
    std::vector<DecisionRecord> decisions;  // open COMMIT decisions
  };
  std::map<std::string, Incarnation> incarnations;  // by incarnation id
  std::vector<std::string> problems;                // damaged logs, for reports
  // log_dir does not exist although branches of this coordinator id are
  // prepared: whether their owners live and what they decided is unknown.
  bool log_dir_missing = false;
  // gtrid -> its COMMIT decision, from every incarnation's log.
  const DecisionRecord* decision(std::string_view gtrid) const;
  bool alive(std::string_view incarnation) const;  // false only if adopted here
  std::map<std::string, const DecisionRecord*, std::less<>> commits;
};

// Reads the logs of `coordinator_id` in log_dir, adopting every incarnation
// nobody holds, plus those in `referenced` that have no files at all.
// `referenced`: the incarnations that own prepared branches; for them a
// missing or cut log is damage (docs/recovery.md, "A damaged log").
// Throws dtx::Error(Errc::log) if log_dir cannot be read.
LogState read_log_state(const std::filesystem::path& log_dir, const std::string& coordinator_id,
                        const std::set<std::string>& referenced = {});

// Appends one heuristic outcome to <log_dir>/heuristics.log (JSON lines,
// fsync'ed). Throws dtx::Error(Errc::log) if it cannot.
void record_heuristic(const std::filesystem::path& log_dir, const HeuristicOutcome& outcome);

}  // namespace dtx
