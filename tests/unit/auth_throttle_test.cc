// The admin console's brake on password guessing (server/auth_throttle.h).
#include <gtest/gtest.h>

#include "server/auth_throttle.h"

namespace dtx::server {
namespace {

using namespace std::chrono_literals;
using Clock = AuthThrottle::Clock;

TEST(AuthThrottle, AnAddressThatNeverFailedIsNotDelayed) {
  AuthThrottle t;
  const auto now = Clock::now();
  EXPECT_EQ(t.admit("10.0.0.1", now), now);
  EXPECT_EQ(t.admit("10.0.0.1", now), now);
  EXPECT_EQ(t.tracked(), 0u);
}

TEST(AuthThrottle, FailuresDoubleTheSpacingUpToTheMaximum) {
  AuthThrottle t({.first_delay = 100ms, .max_delay = 800ms});
  const auto t0 = Clock::now();
  t.failed("a", t0);
  EXPECT_EQ(t.admit("a", t0), t0 + 100ms);
  t.failed("a", t0);
  t.failed("a", t0);  // three failures: 400 ms apart
  auto slot = t.admit("a", t0 + 10s);
  EXPECT_EQ(slot, t0 + 10s);  // the pending slot is long past
  EXPECT_EQ(t.admit("a", t0 + 10s), t0 + 10s + 400ms);
  for (int i = 0; i < 10; ++i) t.failed("a", t0 + 10s);
  const auto later = t0 + 20s;
  EXPECT_EQ(t.admit("a", later), later);
  EXPECT_EQ(t.admit("a", later), later + 800ms) << "capped at max_delay";
}

TEST(AuthThrottle, ParallelAttemptsFromOneAddressGetConsecutiveSlots) {
  AuthThrottle t({.first_delay = 250ms});
  const auto t0 = Clock::now();
  t.failed("a", t0);
  t.failed("a", t0);  // 500 ms apart
  const auto first = t.admit("a", t0);
  const auto second = t.admit("a", t0);
  const auto third = t.admit("a", t0);
  EXPECT_EQ(second - first, 500ms);
  EXPECT_EQ(third - second, 500ms);
  // Another address is not affected.
  EXPECT_EQ(t.admit("b", t0), t0);
}

TEST(AuthThrottle, SuccessOrQuietClearsTheAddress) {
  AuthThrottle t({.first_delay = 100ms, .forget_after = 60s});
  const auto t0 = Clock::now();
  t.failed("a", t0);
  t.succeeded("a");
  EXPECT_EQ(t.admit("a", t0), t0);
  t.failed("b", t0);
  EXPECT_EQ(t.admit("b", t0 + 61s), t0 + 61s);
  EXPECT_EQ(t.tracked(), 0u);
}

TEST(AuthThrottle, MemoryIsBounded) {
  AuthThrottle t({.max_addresses = 100});
  const auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) t.failed("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t0 + std::chrono::milliseconds(i));
  EXPECT_LE(t.tracked(), 100u);
  // The most recent address is still remembered.
  EXPECT_GT(t.admit("10.0.3.231", t0 + 1s), t0 + 1s);
}

}  // namespace
}  // namespace dtx::server
