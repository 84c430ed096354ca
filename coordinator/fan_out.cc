#include "coordinator/fan_out.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace dtx {

struct FanOut::Impl {
  explicit Impl(int n) : threads(n), pool(static_cast<std::size_t>(n)) {}
  int threads;
  boost::asio::thread_pool pool;
};

namespace {

int pick_threads(int requested) {
  if (requested > 0) return requested;
  // Blocking branch I/O: enough threads for many concurrent transactions.
  return std::max(16, static_cast<int>(std::thread::hardware_concurrency()) * 8);
}

// The items of one run(), claimed by index by whoever gets there first: the
// caller or a pool thread. Shared, because a pool task may wake up after the
// caller has already claimed and finished everything and returned.
struct Items {
  explicit Items(std::size_t n, const std::function<void(std::size_t)>* f) : count(n), fn(f), pending(n) {}
  const std::size_t count;
  const std::function<void(std::size_t)>* fn;  // valid while pending > 0
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> pending;

  // Runs unclaimed items until none is left. fn is only touched after a
  // successful claim, i.e. while the caller still waits for that item.
  void drain() {
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_acq_rel)) < count;) {
      (*fn)(i);
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) pending.notify_all();
    }
  }
};

}  // namespace

FanOut::FanOut(int threads) : impl_(std::make_unique<Impl>(pick_threads(threads))) {}

FanOut::~FanOut() { impl_->pool.join(); }

int FanOut::threads() const noexcept { return impl_->threads; }

void FanOut::run(std::size_t n, const std::function<void(std::size_t)>& fn, bool parallel) {
  if (n == 0) return;
  if (n == 1 || !parallel) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto items = std::make_shared<Items>(n, &fn);
  // One helper per item beyond the caller's own. Fast items (the caller gets
  // to them first) cost the helper a wake-up and nothing else.
  for (std::size_t i = 1; i < n; ++i) boost::asio::post(impl_->pool, [items] { items->drain(); });
  items->drain();
  for (std::size_t left; (left = items->pending.load(std::memory_order_acquire)) != 0;)
    items->pending.wait(left, std::memory_order_acquire);
}

}  // namespace dtx
