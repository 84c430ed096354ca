// What the recovery tests share: `dtx` children and their results, the JSON
// reports of `dtx recover / in-doubt --json`, and recovery passes repeated
// while a killed process's MariaDB session is still ending.
// Test-only: it includes nlohmann/json (the tests link it anyway).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace dtx::test {

struct ChildRun {
  ExitStatus status;
  std::string out, err;
};

// One `dtx recover --json` (or in-doubt, commit, rollback) run.
struct Pass {
  int code = -1;
  nlohmann::json report;
  std::string out, err;
};

// Runs the dtx tool to its end; output files go to `dir` under `tag`.
inline ChildRun run_dtx_child(const std::filesystem::path& dir, const std::string& tag,
                              const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env = {}) {
  std::fflush(nullptr);  // else the child's freopen() writes our buffered output a second time
  Child child(dtx_binary(), args, env, dir, tag);
  ExitStatus st = child.wait();
  return {st, child.out(), child.err()};
}

// The run's stdout parsed as JSON (a test failure if it is not).
inline Pass to_pass(const ChildRun& r) {
  Pass p{r.status.code, {}, r.out, r.err};
  try {
    p.report = nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out << "\nstderr: " << r.err;
  }
  return p;
}

// The branches of coordinator `id` in a report: "resource gtrid" -> action.
inline std::map<std::string, std::string> actions_of(const nlohmann::json& report, const std::string& id) {
  std::map<std::string, std::string> out;
  if (!report.contains("branches")) return out;
  for (const auto& b : report["branches"])
    if (b["dtx_format"].get<bool>() && b["gtrid"].get<std::string>().starts_with(id + "."))
      out[b["resource"].get<std::string>() + " " + b["gtrid"].get<std::string>()] = b["action"];
  return out;
}

// Decision-log files (segments and locks) left in log_dir.
inline std::vector<std::string> decision_log_files(const std::filesystem::path& log_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(log_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name == "heuristics.log") continue;  // kept for good
    if (name.ends_with(".log") || name.ends_with(".lock")) out.push_back(name);
  }
  return out;
}

// Recovery passes right after a crash. MariaDB ends a killed client's
// session a moment after the kill; until it has, XA COMMIT/ROLLBACK from
// another session answers 1397 although XA RECOVER lists the branch, and
// recovery reports it left_session_busy (exit 3) for the next pass. So
// `pass` is repeated, boundedly, while the only branches of coordinator `id`
// left are session-busy ones; `actions` gets each branch's first definite
// action, `dropped` (if given) the decisions dropped.
inline Pass recover_until_not_busy(const std::function<Pass()>& pass, const std::string& id,
                                   std::map<std::string, std::string>* actions, std::size_t* dropped = nullptr) {
  Pass last;
  int busy_passes = 0;
  eventually([&] {
    last = pass();
    bool busy = false;
    for (const auto& [key, action] : actions_of(last.report, id)) {
      if (action == "left_session_busy")
        busy = true;
      else
        actions->emplace(key, action);
    }
    if (dropped && last.report.contains("decisions_dropped"))
      *dropped += last.report["decisions_dropped"].get<std::size_t>();
    busy_passes += busy;
    return !busy;
  }, std::chrono::seconds(20));
  if (busy_passes)
    std::cout << "note: " << busy_passes
              << " recovery pass(es) found a branch still owned by the dead process's MariaDB session\n";
  return last;
}

}  // namespace dtx::test
