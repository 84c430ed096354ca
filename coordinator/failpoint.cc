#include "coordinator/failpoint.h"

#include <csignal>
#include <cstdlib>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

#include "base/logging.h"
#include "dtx/error.h"

namespace dtx {

namespace failpoint_detail {
std::atomic<int> armed{0};
namespace {
bool hang = false;
}

void trigger(Failpoint point) {
  logger().flush();
  if (hang) {
    for (;;) pause();  // keep every connection open until someone kills us
  }
  raise(SIGKILL);
  _exit(137);  // not reached
}
}  // namespace failpoint_detail

FailpointInFlight::FailpointInFlight(Failpoint point) : armed_(failpoint_armed(point)), point_(point) {
  if (!armed_) return;
  logger().warn("failpoint: the decision's commit is being sent; the process stops in 100 ms");
  logger().flush();
  if (failpoint_detail::hang) return;
  std::thread([point] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // fault injection, not a wait for a condition
    failpoint_detail::trigger(point);
  }).detach();
}

void FailpointInFlight::answered() {
  if (!armed_) return;
  for (;;) pause();  // the timer kills us (or, with :hang, someone else does)
}

void arm_failpoint_from_environment() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    const char* value = std::getenv("DTX_FAILPOINT");
    if (!value || !*value) return;
    std::string spec = value, name = spec;
    auto colon = spec.find(':');
    if (colon != std::string::npos) {
      name = spec.substr(0, colon);
      std::string action = spec.substr(colon + 1);
      if (action != "hang") {
        error = "DTX_FAILPOINT='" + spec + "': unknown action '" + action + "' (only :hang)";
        return;
      }
      failpoint_detail::hang = true;
    }
    Failpoint point = name == "after-prepare"            ? Failpoint::after_prepare
                      : name == "after-decision"         ? Failpoint::after_decision
                      : name == "after-first-commit"     ? Failpoint::after_first_commit
                      : name == "before-decision-commit" ? Failpoint::before_decision_commit
                      : name == "decision-commit-sent"   ? Failpoint::decision_commit_sent
                      : name == "after-decision-commit"  ? Failpoint::after_decision_commit
                                                         : Failpoint::none;
    if (point == Failpoint::none) {
      error = "DTX_FAILPOINT='" + spec +
              "': unknown failpoint (known: after-prepare, after-decision, after-first-commit, "
              "before-decision-commit, decision-commit-sent, after-decision-commit)";
      return;
    }
    failpoint_detail::armed.store(static_cast<int>(point));
    logger().warn("failpoint {} armed{}", name, failpoint_detail::hang ? " (hang)" : "");
  });
  if (!error.empty())
    throw Error({.code = Errc::config, .hint = "unset DTX_FAILPOINT or fix its value"}, error);
}

}  // namespace dtx
