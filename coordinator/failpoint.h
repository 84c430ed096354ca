// Failpoints: crash the process at a chosen step of the commit protocol, to
// prove by killing processes that recovery keeps every transaction
// all-or-nothing.
//
//   DTX_FAILPOINT=<name>[:hang]
//
//   after-prepare       every branch prepared, no decision written
//   after-decision      commit decision durable, no branch committed yet
//   after-first-commit  exactly one branch committed
//
// Default action: SIGKILL the process itself (no destructors, no rollbacks;
// the OS drops the connections), as `kill -9` would. With ":hang": block that
// thread forever, keeping every connection open. Only the dtx tool arms them
// (arm_failpoint_from_environment at start); the library itself never reads
// the variable. Costs one relaxed atomic load per step when unset. See docs/failpoints.md.
#pragma once

#include <atomic>

namespace dtx {

enum class Failpoint : int { none = 0, after_prepare, after_decision, after_first_commit };

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

}  // namespace dtx
