#include "server/auth_throttle.h"

#include <algorithm>

namespace dtx::server {

std::chrono::milliseconds AuthThrottle::spacing(int failures) const {
  if (failures <= 0) return std::chrono::milliseconds(0);
  auto d = options_.first_delay;
  for (int i = 1; i < failures && d < options_.max_delay; ++i) d *= 2;
  return std::min(d, options_.max_delay);
}

AuthThrottle::Clock::time_point AuthThrottle::admit(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(address);
  if (it == entries_.end()) return now;
  Entry& e = it->second;
  if (now - e.last_failure > options_.forget_after) {
    entries_.erase(it);
    return now;
  }
  Clock::time_point slot = std::max(now, e.next_slot);
  e.next_slot = slot + spacing(e.failures);
  return slot;
}

void AuthThrottle::failed(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (entries_.size() >= options_.max_addresses && !entries_.count(address)) evict(now);
  Entry& e = entries_[address];
  if (e.failures > 0 && now - e.last_failure > options_.forget_after) e = Entry{};
  ++e.failures;
  e.last_failure = now;
  e.next_slot = std::max(e.next_slot, now + spacing(e.failures));
}

void AuthThrottle::succeeded(const std::string& address) {
  std::lock_guard lock(mu_);
  entries_.erase(address);
}

std::size_t AuthThrottle::tracked() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// Drops the entries quiet the longest (at least one), so a flood of
// addresses cannot grow the map without bound.
void AuthThrottle::evict(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();)
    it = now - it->second.last_failure > options_.forget_after ? entries_.erase(it) : std::next(it);
  if (entries_.size() < options_.max_addresses) return;
  auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.second.last_failure < b.second.last_failure;
  });
  entries_.erase(oldest);
}

}  // namespace dtx::server
