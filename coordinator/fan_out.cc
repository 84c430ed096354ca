#include "coordinator/fan_out.h"

#include <algorithm>
#include <latch>
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
}  // namespace

FanOut::FanOut(int threads) : impl_(std::make_unique<Impl>(pick_threads(threads))) {}

FanOut::~FanOut() { impl_->pool.join(); }

int FanOut::threads() const noexcept { return impl_->threads; }

void FanOut::run(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  std::latch done(static_cast<std::ptrdiff_t>(n - 1));
  for (std::size_t i = 1; i < n; ++i)
    boost::asio::post(impl_->pool, [&fn, &done, i] {
      fn(i);
      done.count_down();
    });
  fn(0);
  done.wait();
}

}  // namespace dtx
