// dtx recover / in-doubt / commit / rollback — the operator's side of recovery.
// Output shapes (text and --json) are documented in docs/recovery.md.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "decision-log/decision_log.h"
#include "base/transaction_id.h"
#include "drivers/resource_manager.h"
#include "dtx/dtx.h"
#include "recovery/operator.h"
#include "recovery/recovery.h"
#include "tools/commands.h"
#include "undo-log/at_session.h"

namespace dtx::cli {

namespace {

using nlohmann::json;

struct Options {
  std::string config;
  bool json = false;
  bool dry_run = false;
  bool force = false;
  std::string gtrid;
};

// The configured resources' managers, for one command run.
class Resources {
 public:
  explicit Resources(const Config& config) {
    for (const auto& [name, rc] : config.resources) managers_.emplace(name, undo::make_configured_resource_manager(rc));
  }
  RecoveryScanner::ResourceLookup lookup() {
    return [this](std::string_view name) -> ResourceManager& { return *managers_.find(name)->second; };
  }

 private:
  std::map<std::string, std::unique_ptr<ResourceManager>, std::less<>> managers_;
};

std::optional<Config> load(const Options& o, const char* command) {
  try {
    return load_config(o.config);
  } catch (const Error& e) {
    std::cerr << "dtx " << command << ": " << e.what() << "\n";
    return std::nullopt;
  }
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buf;
}

std::optional<long> age_seconds(const InDoubtBranch& b) {
  if (!b.prepared.prepared_at) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                          *b.prepared.prepared_at)
      .count();
}

json to_json(const InDoubtBranch& b) {
  json j = {{"resource", b.resource},
            {"gtrid", b.gtrid},
            {"xid", b.prepared.raw},
            {"dtx_format", b.prepared.is_dtx},
            {"bqual", b.prepared.xid.bqual},
            {"mode", to_string(b.prepared.mode)},
            {"coordinator_id", b.coordinator_id.empty() ? json(nullptr) : json(b.coordinator_id)},
            {"incarnation", b.incarnation.empty() ? json(nullptr) : json(b.incarnation)},
            {"owner_alive", b.owner_alive ? json(*b.owner_alive) : json(nullptr)},
            {"decision", to_string(b.decision)},
            {"action", to_string(b.action)},
            {"detail", b.detail}};
  j["prepared_at"] = b.prepared.prepared_at ? json(iso_time(*b.prepared.prepared_at)) : json(nullptr);
  auto age = age_seconds(b);
  j["age_s"] = age ? json(*age) : json(nullptr);
  return j;
}

json to_json(const HeuristicOutcome& h) {
  return {{"gtrid", h.gtrid}, {"resource", h.resource}, {"decision", h.decision},
          {"outcome", h.outcome}, {"by", h.by}, {"detail", h.detail}};
}

// `errors`: the pass's; "no prepared branches" is said only if every
// resource could be listed.
void print_table(const std::vector<InDoubtBranch>& branches, bool with_action,
                 const std::vector<std::string>& errors) {
  if (branches.empty()) {
    const bool all_listed = std::none_of(errors.begin(), errors.end(), [](const std::string& e) {
      return e.starts_with(kCannotListPrefix);
    });
    std::cout << (all_listed ? "no prepared branches\n"
                             : "no prepared branches on the resources that could be listed; not every "
                               "resource could be (see the errors)\n");
    return;
  }
  std::cout << std::left << std::setw(12) << "RESOURCE" << std::setw(5) << "MODE" << std::setw(44) << "GLOBAL ID" << std::setw(8)
            << "AGE" << std::setw(18) << "OWNER" << std::setw(10) << "DECISION"
            << (with_action ? "ACTION" : "STATE") << "\n";
  for (const auto& b : branches) {
    auto age = age_seconds(b);
    std::string owner = !b.owner_alive ? "-" : (*b.owner_alive ? "alive" : "gone");
    std::cout << std::left << std::setw(12) << b.resource << std::setw(5) << to_string(b.prepared.mode) << std::setw(44) << b.gtrid << std::setw(8)
              << (age ? std::to_string(*age) + "s" : "?") << std::setw(18) << owner << std::setw(10)
              << to_string(b.decision) << to_string(b.action);
    if (!b.detail.empty() && is_left_in_doubt(b.action)) std::cout << "  (" << b.detail << ")";
    std::cout << "\n";
  }
}

int run_recover(const Options& o, bool list_only) {
  const char* name = list_only ? "in-doubt" : "recover";
  auto config = load(o, name);
  if (!config) return kExitUsage;
  Resources resources(*config);
  RecoveryScanner scanner(*config, resources.lookup());
  RecoveryReport report = scanner.run({.dry_run = list_only || o.dry_run});

  std::size_t counts[32] = {};
  for (const auto& b : report.branches) ++counts[static_cast<int>(b.action)];
  if (o.json) {
    json j;
    j["branches"] = json::array();
    for (const auto& b : report.branches) j["branches"].push_back(to_json(b));
    j["errors"] = report.errors;
    j["heuristics"] = json::array();
    for (const auto& h : report.heuristics) j["heuristics"].push_back(to_json(h));
    j["decisions_dropped"] = report.decisions_dropped;
    j["left_in_doubt"] = report.left_in_doubt();
    j["dry_run"] = list_only || o.dry_run;
    j["elapsed_ms"] = report.elapsed.count() / 1000.0;
    std::cout << j.dump(2) << "\n";
  } else {
    print_table(report.branches, !list_only, report.errors);
    for (const auto& e : report.errors) std::cout << "error: " << e << "\n";
    if (!list_only)
      std::cout << name << ": " << counts[int(BranchAction::committed)] << " committed, "
                << counts[int(BranchAction::rolled_back)] << " rolled back, "
                << counts[int(BranchAction::already_finished)] << " already finished, "
                << report.left_in_doubt() << " left in doubt, "
                << counts[int(BranchAction::left_foreign)] + counts[int(BranchAction::left_other_coordinator)]
                << " not ours; " << report.decisions_dropped << " decisions dropped; "
                << report.elapsed.count() / 1000 << " ms\n";
  }
  if (!report.errors.empty()) return kExitFailed;
  if (list_only) return kExitOk;
  return report.left_in_doubt() ? kExitInDoubt : kExitOk;
}

int run_settle(const Options& o, bool commit, bool accept_current = false) {
  const char* name = accept_current ? "accept-current" : commit ? "commit" : "rollback";
  auto config = load(o, name);
  if (!config) return kExitUsage;
  Resources resources(*config);
  try {
    std::unique_ptr<DecisionLog> log;
    if (config->coordinator.decisions.empty())
      log = DecisionLog::open(config->coordinator.log_dir, config->coordinator.id, new_incarnation());
    SettleResult r = settle_transaction(*config, resources.lookup(), log.get(),
                                        {.gtrid = o.gtrid, .commit = commit, .force = o.force,
                                         .accept_current = accept_current});
    if (o.json) {
      json j;
      j["gtrid"] = o.gtrid;
      j["decision"] = to_string(r.decision);
      j["owner_alive"] = r.owner_alive ? json(*r.owner_alive) : json(nullptr);
      j["branches"] = json::array();
      for (const auto& b : r.branches) j["branches"].push_back(to_json(b));
      j["heuristics"] = json::array();
      for (const auto& h : r.heuristics) j["heuristics"].push_back(to_json(h));
      j["errors"] = r.errors;
      j["finished"] = r.finished();
      std::cout << j.dump(2) << "\n";
    } else {
      print_table(r.branches, true, r.errors);
      for (const auto& h : r.heuristics)
        std::cout << "HEURISTIC: " << h.resource << " " << h.outcome << " (logged decision "
                  << h.decision << "): " << h.detail << " (recorded in " << (config->coordinator.log_dir / "heuristics.log").string()
                  << ")\n";
      for (const auto& e : r.errors) std::cout << "error: " << e << "\n";
      if (r.decided_here) std::cout << "note: " << undecided_commit_notice(o.gtrid, r) << "\n";
      std::cout << (r.finished() ? (accept_current ? "accepted the current rows of " : commit ? "committed " : "rolled back ")
                                 : "not finished ")
                << o.gtrid << "\n";
    }
    return r.finished() ? kExitOk : kExitInDoubt;
  } catch (const Error& e) {
    std::cerr << "dtx " << name << ": " << e.what() << "\n";
    return e.code() == Errc::usage || e.code() == Errc::config ? kExitUsage : kExitFailed;
  }
}

}  // namespace

std::function<int()> add_recovery_commands(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto which = std::make_shared<std::string>();
  auto add = [&](const char* name, const char* help) {
    CLI::App* cmd = app.add_subcommand(name, help);
    cmd->add_option("--config,-c", o->config, "TOML configuration file")->required();
    cmd->add_flag("--json", o->json, "machine-readable output (see docs/recovery.md)");
    cmd->callback([which, name] { *which = name; });
    return cmd;
  };
  CLI::App* recover = add("recover", "One recovery pass: finish in-doubt branches according to the decision logs");
  recover->add_flag("--dry-run", o->dry_run, "only say what would be done");
  recover->footer("Exit status: 0 nothing left in doubt, 3 some branches had to be left, 1 error.");
  add("in-doubt", "List prepared branches on every resource, with owner and logged decision");
  for (const char* name : {"commit", "rollback"}) {
    CLI::App* cmd = add(name, std::string(name) == std::string("commit")
                                  ? "Commit every branch of one global transaction"
                                  : "Roll back every branch of one global transaction");
    cmd->add_option("gtrid", o->gtrid, "global transaction id (see dtx in-doubt)")->required();
    cmd->add_flag("--force", o->force,
                  "go against the logged decision, or settle another coordinator id's transaction "
                  "(recorded as heuristic); never acts while the owner lives");
  }
  CLI::App* accept = add("accept-current",
                         "AT mode, after a dirty write: keep the current rows, delete the undo records and release "
                         "the global locks of one global transaction (recorded as heuristic)");
  accept->add_option("gtrid", o->gtrid, "global transaction id (see dtx in-doubt)")->required();
  return [o, which] {
    if (*which == "recover") return run_recover(*o, false);
    if (*which == "in-doubt") return run_recover(*o, true);
    if (*which == "accept-current") return run_settle(*o, false, true);
    return run_settle(*o, *which == "commit");
  };
}

}  // namespace dtx::cli
