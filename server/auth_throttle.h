// Slows down password guessing: authentication attempts from an address that
// recently failed are spaced out, however many connections it opens at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace dtx::server {

// Each failure from an address doubles the spacing between its next attempts
// (first_delay, 2x, 4x, ... up to max_delay); a success, or quiet for
// `forget_after`, clears the address. Attempts are given consecutive slots, so
// N parallel connections from one address wait N spacings, not one.
// Thread-safe. Memory is bounded: past `max_addresses` the oldest entries go.
class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds first_delay{250};
    std::chrono::milliseconds max_delay{10'000};
    std::chrono::seconds forget_after{300};
    std::size_t max_addresses = 10'000;
  };

  AuthThrottle() : AuthThrottle(Options{}) {}
  explicit AuthThrottle(Options options) : options_(options) {}

  // When an attempt from `address` arriving at `now` may proceed (now, unless
  // the address failed recently). Reserves that slot.
  Clock::time_point admit(const std::string& address, Clock::time_point now);
  void failed(const std::string& address, Clock::time_point now);
  void succeeded(const std::string& address);

  std::size_t tracked() const;

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last_failure;
    Clock::time_point next_slot;
  };
  std::chrono::milliseconds spacing(int failures) const;
  void evict(Clock::time_point now);

  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace dtx::server
