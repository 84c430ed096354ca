// Where the admin console's views get their rows: one function per source
// (catalog.h's Source), each building the tables of its views from one look
// at the databases or the log directory. console.cc runs them single-flight.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/catalog.h"
#include "dtx/config.h"
#include "recovery/recovery.h"

namespace dtx::admin {

struct Problem {
  std::string source;   // "resources", "decision log", "heuristics"
  std::string message;
};

struct Snapshot {
  std::map<std::string, Table, std::less<>> tables;  // by view name
  std::vector<Problem> problems;
};

// in_doubt, transactions, at_branches, global_locks from a dry-run pass's
// report, plus the global locks of every AT resource (read here).
Snapshot scan_snapshot(const Config& config, const ResourceLookup& resources, const RecoveryReport& report,
                       std::chrono::system_clock::time_point now);

// resources: each resource reached in parallel (version, settings, prepared count).
Snapshot resources_snapshot(const Config& config, const ResourceLookup& resources);

// incarnations: the decision logs in log_dir, read as recovery reads them,
// and with [coordinator] decisions set the incarnations known from that
// resource's dtx_decision (rows, liveness lock).
// `own_incarnation`: the console's own (empty when it has none open), and
// `own_open` its decisions not yet ended, from memory (its END records may
// still wait for a flush, so its file would show them open);
// `referenced`: the incarnations of this coordinator id that own prepared
// branches (for them a cut or emptied log is damage, recovery.h; those
// deciding in a table are listed even with no row).
Snapshot logs_snapshot(const Config& config, const ResourceLookup& resources, std::string_view own_incarnation,
                       std::size_t own_open, const std::set<std::string>& referenced);

// heuristics: <log_dir>/heuristics.log; a line that is not a JSON object is
// shown with its text in `detail` and reported as a problem.
Snapshot heuristics_snapshot(const Config& config);
// The same from the file's text (for tests).
Snapshot heuristics_snapshot_from(std::string_view text, const std::string& file_name);

// One row of recovery_passes.
struct PassRecord {
  std::chrono::system_clock::time_point started;
  std::string trigger;
  bool dry_run = false;
  double duration_ms = 0;
  std::int64_t branches = 0, committed = 0, rolled_back = 0, left_in_doubt = 0, errors = 0;
  std::string error_text;
};
PassRecord pass_record(const RecoveryReport& report, std::chrono::system_clock::time_point started,
                       std::string trigger, bool dry_run);
std::vector<Value> pass_row(const PassRecord& pass);

// UTC, ISO 8601 with microseconds: 2026-12-01T19:40:32.123456Z.
std::string iso_time(std::chrono::system_clock::time_point t);

}  // namespace dtx::admin
