#include "drivers/deadline_watchdog.h"

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace dtx {

// The process's one watchdog thread and the armed watches, earliest first.
// Both live until the process ends and are never destroyed: a thread joined
// by a static destructor would run its thread_local destructors (Connector/C++'s
// per-thread cleanup, when it has cancelled a MySQL statement) after the
// client library's own globals are gone — that crashed at exit.
class DeadlineWatchdog {
 public:
  using Clock = DeadlineWatch::Clock;

  static DeadlineWatchdog& instance() {
    static DeadlineWatchdog* const watchdog = new DeadlineWatchdog;
    return *watchdog;
  }

  void arm(DeadlineWatch& w) {
    std::lock_guard lock(mu_);
    armed_.emplace(w.due_, &w);
    w.armed_ = true;
    // Otherwise the thread looks at it when it wakes anyway.
    if (w.due_ < wakes_at_) wake_.notify_one();
  }

  void disarm(DeadlineWatch& w) noexcept {
    std::unique_lock lock(mu_);
    settled_.wait(lock, [&] { return !w.cancelling_; });  // the target must outlive the cancel
    armed_.erase({w.due_, &w});
    w.armed_ = false;
  }

 private:
  // With nothing due sooner the thread still looks this often, so that
  // arming a watch due later than that never has to wake it.
  static constexpr std::chrono::seconds kIdleLook{1};

  DeadlineWatchdog() { std::thread([this] { run(); }).detach(); }

  [[noreturn]] void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      const Clock::time_point now = Clock::now();
      if (!armed_.empty() && armed_.begin()->first < now) {
        DeadlineWatch& w = *armed_.begin()->second;
        armed_.erase(armed_.begin());
        w.cancelling_ = true;
        lock.unlock();
        w.target_->cancel_running_statement();
        lock.lock();
        w.cancelling_ = false;
        ++w.cancels_;
        // In case the cancel arrived before the statement did.
        w.due_ = Clock::now() + DeadlineWatch::kRecancelInterval;
        armed_.emplace(w.due_, &w);
        settled_.notify_all();
        continue;
      }
      wakes_at_ = now + kIdleLook;
      if (!armed_.empty() && armed_.begin()->first < wakes_at_) wakes_at_ = armed_.begin()->first;
      wake_.wait_until(lock, wakes_at_);
      wakes_at_ = Clock::time_point::min();  // looking now: arm() need not wake us
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;     // the thread: a watch due before wakes_at_
  std::condition_variable settled_;  // disarm(): a cancel finished
  std::set<std::pair<Clock::time_point, DeadlineWatch*>> armed_;
  Clock::time_point wakes_at_ = Clock::time_point::min();
};

DeadlineWatch::DeadlineWatch(Cancellable& target, Clock::time_point deadline)
    : target_(&target), due_(deadline) {
  if (Clock::now() > deadline) {
    expired_ = true;
    return;
  }
  DeadlineWatchdog::instance().arm(*this);
}

bool DeadlineWatch::end() noexcept {
  if (armed_) DeadlineWatchdog::instance().disarm(*this);
  return cancels_ > 0;  // disarmed: the watchdog no longer touches it
}

}  // namespace dtx
