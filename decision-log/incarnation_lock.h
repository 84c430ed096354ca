// Who may act on an incarnation's branches and logs.
//
// Every process incarnation holds flock(LOCK_EX) on
// <log_dir>/<coordinator_id>-<incarnation>.lock for as long as it lives (the
// DecisionLog takes it when it opens). Whoever can take that lock knows the
// owner is gone, and while holding it is the only one — recovery pass or
// operator — allowed to finish that incarnation's branches or delete its
// segments. The kernel releases the lock when the owner dies, however it dies.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace dtx {

// <log_dir>/<coordinator_id>-<incarnation>.lock
std::filesystem::path incarnation_lock_file(const std::filesystem::path& log_dir,
                                            std::string_view coordinator_id,
                                            std::string_view incarnation);

// An flock held on an incarnation's lock file: whoever holds it is the only
// one who may finish that incarnation's branches or delete its logs. Closing
// releases it (and removes a lock file that only existed for it).
class IncarnationLock {
 public:
  IncarnationLock() = default;
  IncarnationLock(int fd, std::filesystem::path remove_on_release)
      : fd_(fd), remove_on_release_(std::move(remove_on_release)) {}
  IncarnationLock(IncarnationLock&& other) noexcept { *this = std::move(other); }
  IncarnationLock& operator=(IncarnationLock&& other) noexcept;
  ~IncarnationLock() { release(); }
  bool held() const noexcept { return fd_ >= 0; }
  void release() noexcept;

 private:
  int fd_ = -1;
  std::filesystem::path remove_on_release_;
};

// Takes the lock of `incarnation` if nobody holds it: its owner is then gone
// and no other recovery pass or operator is working on it. A missing lock
// file (the owner exited cleanly) is created for the time of the hold.
// Returns a lock that is not held if someone else holds it.
IncarnationLock adopt_incarnation(const std::filesystem::path& log_dir, const std::string& coordinator_id,
                                  const std::string& incarnation);

}  // namespace dtx
