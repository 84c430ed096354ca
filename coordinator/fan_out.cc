#include "coordinator/fan_out.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace dtx {

namespace {

int pick_limit(int requested) {
  if (requested > 0) return requested;
  // Blocking branch I/O: room for many concurrent transactions. Only a cap:
  // threads are started when work is waiting and no thread is idle.
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

// A pool that grows to the work: a task posted while no thread is idle starts
// a new thread, up to `limit`; beyond that tasks queue. Threads live until the
// FanOut is destroyed, so the pool's size is the peak number of branch steps
// that ran at once (never more than the limit), not a fixed guess.
struct FanOut::Impl {
  explicit Impl(int max_threads) : limit(max_threads) {}

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    for (auto& t : workers) t.join();
  }

  void post(std::shared_ptr<Items> items) {
    std::unique_lock lock(mu);
    queue.push_back(std::move(items));
    if (idle == 0 && static_cast<int>(workers.size()) < limit) {
      workers.emplace_back([this] { work(); });
      started.store(static_cast<int>(workers.size()), std::memory_order_relaxed);
      return;
    }
    lock.unlock();
    cv.notify_one();
  }

  void work() {
    std::unique_lock lock(mu);
    for (;;) {
      ++idle;
      cv.wait(lock, [this] { return stopping || !queue.empty(); });
      --idle;
      if (queue.empty()) return;  // stopping, nothing left
      std::shared_ptr<Items> items = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      items->drain();
      lock.lock();
    }
  }

  const int limit;
  std::atomic<int> started{0};
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Items>> queue;
  int idle = 0;
  bool stopping = false;
  std::vector<std::thread> workers;
};

FanOut::FanOut(int threads) : impl_(std::make_unique<Impl>(pick_limit(threads))) {}

FanOut::~FanOut() = default;

int FanOut::threads() const noexcept { return impl_->started.load(std::memory_order_relaxed); }
int FanOut::max_threads() const noexcept { return impl_->limit; }

void FanOut::run(std::size_t n, const std::function<void(std::size_t)>& fn, bool parallel) {
  if (n == 0) return;
  if (n == 1 || !parallel) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto items = std::make_shared<Items>(n, &fn);
  // One helper per item beyond the caller's own. Fast items (the caller gets
  // to them first) cost the helper a wake-up and nothing else.
  for (std::size_t i = 1; i < n; ++i) impl_->post(items);
  items->drain();
  for (std::size_t left; (left = items->pending.load(std::memory_order_acquire)) != 0;)
    items->pending.wait(left, std::memory_order_acquire);
}

}  // namespace dtx
