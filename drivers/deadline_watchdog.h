// Bounding a statement by a deadline without spending a round trip on it.
//
// A statement that waits for a row lock waits as long as the database lets
// it (PostgreSQL: forever by default; MariaDB: innodb_lock_wait_timeout, 50 s).
// Server-side timeouts cost a statement of their own per statement (or break
// MariaDB's prepared-statement cache when written into the statement text),
// and one set when the branch begins bounds each statement by the time left
// at BEGIN, not by the time left now. Instead, one watchdog thread per
// process cancels, from the outside, any statement still running when its
// deadline passes: the caller arms a DeadlineWatch just before sending the
// statement and ends it once the answer is in (a mutex and a set insertion,
// no system call in the common case). Cancelling is the driver's business
// (Cancellable): PQcancel on PostgreSQL, KILL QUERY from a second connection
// on MariaDB.
//
// A cancel can reach the server before the statement it targets (the
// statement was armed but not yet sent), where it does nothing; so the
// watchdog cancels again every kRecancelInterval until the watch ends.
// The thread starts with the first armed watch, sleeps while nothing is due
// (looking once a second), is woken only when a watch is due before it would
// look again, and lives until the process ends (it is never joined).
#pragma once

#include <chrono>

namespace dtx {

// Something whose running statement can be cancelled from another thread.
class Cancellable {
 public:
  // Asks the server to cancel the statement now running, if any. Called on
  // the watchdog's thread while the statement's own thread waits for the
  // answer; must not throw (failures are logged) and may take a while
  // (opening a connection), during which the watch cannot end.
  virtual void cancel_running_statement() noexcept = 0;

 protected:
  ~Cancellable() = default;
};

// The watchdog's hold on one statement. Not movable: the watchdog keeps its
// address while it is armed.
class DeadlineWatch {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kRecancelInterval{100};

  // Unarmed: no deadline.
  DeadlineWatch() = default;
  // Arms the watch for a statement of `target` that must end by `deadline`,
  // unless the deadline has already passed (then expired() is true and
  // nothing is armed: do not send the statement). `target` must outlive it.
  DeadlineWatch(Cancellable& target, Clock::time_point deadline);
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;
  ~DeadlineWatch() { end(); }

  bool expired() const noexcept { return expired_; }
  // Disarms, waiting for a cancel in flight to finish. True if the statement
  // was cancelled (at least once) because its deadline passed. Idempotent.
  bool end() noexcept;

 private:
  friend class DeadlineWatchdog;
  Cancellable* target_ = nullptr;
  Clock::time_point due_{};  // next cancel; guarded by the watchdog's mutex while armed
  bool armed_ = false;
  bool expired_ = false;
  bool cancelling_ = false;  // guarded by the watchdog's mutex
  int cancels_ = 0;          // guarded by the watchdog's mutex
};

}  // namespace dtx
