// FanOut: every item runs once, items really overlap, and the pool grows with
// the work instead of starting its cap up front. Run under ThreadSanitizer by
// scripts/test.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "coordinator/fan_out.h"

namespace dtx {
namespace {

// Counts arrivals; wait_all() returns true once `expected` have arrived, false
// if that did not happen within the bound (then the items did not overlap).
class Rendezvous {
 public:
  explicit Rendezvous(int expected) : expected_(expected) {}
  bool arrive_and_wait() {
    std::unique_lock lock(mu_);
    if (++arrived_ == expected_) cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return arrived_ >= expected_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  const int expected_;
};

TEST(FanOut, StartsNoThreadUntilWorkWaits) {
  FanOut pool(0);
  EXPECT_EQ(pool.threads(), 0);
  EXPECT_GE(pool.max_threads(), 16);
  std::atomic<int> calls{0};
  pool.run(5, [&](std::size_t) { calls.fetch_add(1); }, /*parallel=*/false);
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(pool.threads(), 0);  // sequential runs stay on the caller's thread
}

TEST(FanOut, RunsEveryItemOnceAndInParallel) {
  FanOut pool(0);
  constexpr int kItems = 4;
  Rendezvous all(kItems);  // every item waits for all others: passes only if they overlap
  std::vector<std::atomic<int>> runs(kItems);
  std::atomic<int> overlapped{0};
  pool.run(kItems, [&](std::size_t i) {
    runs[i].fetch_add(1);
    if (all.arrive_and_wait()) overlapped.fetch_add(1);
  });
  for (int i = 0; i < kItems; ++i) EXPECT_EQ(runs[i].load(), 1) << "item " << i;
  EXPECT_EQ(overlapped.load(), kItems);
  // The caller ran one item; the pool started at most one thread per other item.
  EXPECT_GE(pool.threads(), kItems - 1);
  EXPECT_LE(pool.threads(), kItems - 1);
}

TEST(FanOut, ReusesIdleThreadsInsteadOfStartingMore) {
  FanOut pool(0);
  for (int round = 0; round < 50; ++round) {
    Rendezvous both(2);
    pool.run(2, [&](std::size_t) { EXPECT_TRUE(both.arrive_and_wait()); });
  }
  // 50 runs of two overlapping items need one pool thread, reused; a thread
  // may still be finishing its previous item when the next run posts, so
  // allow a second — never one per run.
  EXPECT_LE(pool.threads(), 2);
}

TEST(FanOut, NeverExceedsItsCap) {
  FanOut pool(2);
  std::atomic<int> calls{0};
  for (int round = 0; round < 20; ++round) pool.run(8, [&](std::size_t) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 160);
  EXPECT_LE(pool.threads(), 2);
  EXPECT_EQ(pool.max_threads(), 2);
}

}  // namespace
}  // namespace dtx
