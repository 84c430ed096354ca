// Failpoints: crash the process at a chosen step of the commit protocol, to
// prove by killing processes that recovery keeps every transaction
// all-or-nothing.
//
//   DTX_FAILPOINT=<name>[:hang]
//
//   after-prepare       every branch prepared, no decision written
//   after-decision      commit decision durable, no branch committed yet
//   after-first-commit  exactly one branch committed
// With [coordinator] decisions = "R" (decision-table/decision_table.cc):
//   before-decision-commit  the other branches prepared, R's commit not sent
//                           (after-prepare stops here too)
//   decision-commit-sent    R's commit (the decision) sent; the process dies
//                           100 ms later whether or not the answer came, and
//                           never acts on it (with :hang it blocks instead)
//   after-decision-commit   R committed, the others not yet (after-decision
//                           stops here too)
//
// Default action: SIGKILL the process itself (no destructors, no rollbacks;
// the OS drops the connections), as `kill -9` would. With ":hang": block that
// thread forever, keeping every connection open. Only the dtx tool arms them
// (arm_failpoint_from_environment at start); the library itself never reads
// the variable. Costs one relaxed atomic load per step when unset. See docs/failpoints.md.
#pragma once

#include <atomic>

namespace dtx {

enum class Failpoint : int {
  none = 0,
  after_prepare,
  after_decision,
  after_first_commit,
  before_decision_commit,
  decision_commit_sent,
  after_decision_commit,
};

namespace failpoint_detail {
extern std::atomic<int> armed;  // the Failpoint chosen by DTX_FAILPOINT
void trigger(Failpoint point);  // kills or hangs; does not return
}  // namespace failpoint_detail

// Parses DTX_FAILPOINT (once). Throws dtx::Error(Errc::config) for an unknown name.
void arm_failpoint_from_environment();

inline bool failpoint_armed(Failpoint point) noexcept {
  return failpoint_detail::armed.load(std::memory_order_relaxed) == static_cast<int>(point);
}

// Call at the protocol step `point`: does nothing unless that failpoint is armed.
inline void failpoint(Failpoint point) {
  if (failpoint_armed(point)) failpoint_detail::trigger(point);
}

// decision-commit-sent around the statement that commits the decision: if
// armed, construction starts a timer that kills the process (or, with
// :hang, does nothing) 100 ms later, and answered() — called once the
// statement returned or threw — blocks forever, so the answer is never used.
class FailpointInFlight {
 public:
  explicit FailpointInFlight(Failpoint point);
  void answered();

 private:
  bool armed_;
  Failpoint point_;
};

}  // namespace dtx
