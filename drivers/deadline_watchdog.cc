#include "drivers/deadline_watchdog.h"

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace dtx {

// The process's one watchdog thread and the armed watches, earliest first.
class DeadlineWatchdog {
 public:
  using Clock = DeadlineWatch::Clock;

  static DeadlineWatchdog& instance() {
    static DeadlineWatchdog watchdog;
    return watchdog;
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

  DeadlineWatchdog() : thread_([this] { run(); }) {}

  ~DeadlineWatchdog() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  void run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
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
  std::condition_variable wake_;     // the thread: a watch due before wakes_at_, or stop
  std::condition_variable settled_;  // disarm(): a cancel finished
  std::set<std::pair<Clock::time_point, DeadlineWatch*>> armed_;
  Clock::time_point wakes_at_ = Clock::time_point::min();
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is built
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
