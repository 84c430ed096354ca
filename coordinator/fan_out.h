// Runs the per-branch steps of one global transaction in parallel.
//
// Branch work is blocking database I/O, so the pool is sized for waiting, not
// for CPU: threads mostly sleep in recv(). Items are claimed by whoever is
// free first: the caller works too, and takes over items no pool thread has
// started yet, so it never waits for a pool thread to wake up just to begin.
// The pool starts no thread until work waits with none idle, and never
// more than its limit: a coordinator that commits one branch at a time
// starts one or two threads, not the limit.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace dtx {

class FanOut {
 public:
  // threads = the most pool threads ever started; 0 picks a cap suited to
  // blocking I/O (max(16, 8 x cores)).
  explicit FanOut(int threads);
  ~FanOut();

  // Calls fn(i) for every i in [0, n) and returns when all calls returned;
  // in parallel if `parallel`, else one after another on the caller's thread.
  // Precondition: fn does not throw (capture errors inside it).
  void run(std::size_t n, const std::function<void(std::size_t)>& fn, bool parallel = true);

  int threads() const noexcept;      // pool threads started so far
  int max_threads() const noexcept;  // the cap

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx
