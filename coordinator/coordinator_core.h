// Internal: the coordinator behind the public dtx::Coordinator / Transaction.
// See the design note at the top of coordinator.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "decision-log/decision_log.h"
#include "decision-table/decision_table.h"
#include "coordinator/fan_out.h"
#include "base/transaction_id.h"
#include "drivers/resource_manager.h"
#include "dtx/coordinator.h"
#include "recovery/recovery.h"

namespace dtx::detail {

// How phase 2 retries a branch whose commit failed before handing the
// transaction to recovery. Tests shorten the backoff.
struct Phase2Options {
  int attempts = 5;                           // commits tried per branch, the first included
  std::chrono::milliseconds backoff{10};      // before the second attempt; x3 before each next
};

class CoordinatorCore : public std::enable_shared_from_this<CoordinatorCore> {
 public:
  using ResourceFactory = std::function<std::unique_ptr<ResourceManager>(const ResourceConfig&)>;

  // `factory` builds each resource's manager; empty = the real drivers. Tests
  // and the null-RM benchmark pass in-memory resource managers here.
  explicit CoordinatorCore(Config config, ResourceFactory factory = {},
                           DecisionLogOptions log_options = {}, Phase2Options phase2 = {});
  ~CoordinatorCore();

  const Config& config() const noexcept { return config_; }
  // Throws Errc::config naming the resource if it is not configured.
  ResourceManager& resource(std::string_view name);
  // The file log; only without [coordinator] decisions.
  DecisionLog& log() noexcept { return *log_; }
  bool has_file_log() const noexcept { return log_ != nullptr; }
  // With [coordinator] decisions: R's table and manager; else null.
  const DecisionTable* decision_table() const noexcept { return table_ ? &*table_ : nullptr; }
  ResourceManager* decision_resource() const noexcept { return table_rm_; }
  // Every branch of `gtrid` is finished: its decision can go (END in the
  // file log; R's row deleted in the next batch).
  void decision_ended(const std::string& gtrid);
  FanOut& fan_out() noexcept { return fan_out_; }
  const Phase2Options& phase2_options() const noexcept { return phase2_; }

  // Counts a commit in progress for as long as it lives, and says whether its
  // branch steps should run in parallel: only while there are fewer commits
  // in progress than cores, i.e. idle cores to overlap branch I/O on. Beyond
  // that the concurrent transactions keep every core busy already and handing
  // steps to pool threads only adds context switches.
  class CommitSlot {
   public:
    explicit CommitSlot(CoordinatorCore& core)
        : core_(core), parallel_(core.committing_.fetch_add(1, std::memory_order_relaxed) < core.parallel_below_) {}
    ~CommitSlot() { core_.committing_.fetch_sub(1, std::memory_order_relaxed); }
    bool parallel() const noexcept { return parallel_; }

   private:
    CoordinatorCore& core_;
    bool parallel_;
  };
  const std::string& incarnation() const noexcept { return ids_.incarnation(); }

  std::unique_ptr<GlobalTransaction> begin(TransactionOptions options);

  // A transaction of this process whose branches it could not finish: in
  // doubt after the commit decision (commit), or a prepared branch whose
  // rollback failed (none = roll back). The next in-process pass finishes it.
  void hand_to_recovery(const std::string& gtrid, LoggedDecision decision);
  // One recovery pass now, including this process's handed-over transactions.
  RecoveryReport recover_now();

  // Phase 2 commit of a committed transaction's AT branches, off the
  // caller's path: a background thread deletes their undo records and locks,
  // batching whatever has queued up per resource in one local transaction,
  // and then, if `end` is set, appends END(gtrid). A branch it cannot forget
  // is handed to recovery (decision COMMIT), which forgets it later.
  struct AtBranch {
    ResourceManager* rm;
    Xid xid;
  };
  void forget_later(const std::string& gtrid, std::vector<AtBranch> branches, bool end);
  // Waits until everything queued by forget_later() has been handled (tests, shutdown).
  void drain_forgets();

 private:
  void recovery_loop();
  void forget_loop();
  void liveness_loop();
  void hold_liveness();  // (re)takes the incarnation's lock on R; liveness_mu_ held

  Config config_;
  Phase2Options phase2_;
  std::map<std::string, std::unique_ptr<ResourceManager>, std::less<>> resources_;
  TransactionIdGenerator ids_;
  std::unique_ptr<DecisionLog> log_;      // file mode
  std::optional<DecisionTable> table_;    // database mode
  ResourceManager* table_rm_ = nullptr;
  std::mutex liveness_mu_;
  std::condition_variable liveness_cv_;
  bool liveness_stopping_ = false;
  SessionLease liveness_;                 // holds the incarnation's lock on R
  std::thread liveness_thread_;
  FanOut fan_out_;
  std::atomic<int> committing_{0};
  int parallel_below_;

  std::mutex recovery_mu_;
  std::condition_variable recovery_cv_;
  bool stopping_ = false;
  std::map<std::string, LoggedDecision, std::less<>> orphans_;

  struct Forget {
    std::string gtrid;
    std::vector<AtBranch> branches;
    bool end;
  };
  std::mutex forget_mu_;
  std::condition_variable forget_cv_;
  std::vector<Forget> forget_queue_;
  std::vector<std::string> ended_rows_;  // database mode: decision rows to delete
  std::chrono::steady_clock::time_point rows_due_;
  bool flush_rows_ = false;              // drain_forgets: delete them now
  std::size_t forgets_in_flight_ = 0;
  bool forget_stopping_ = false;
  std::thread forget_thread_;  // started on first use
  std::thread recovery_thread_;  // last: started once everything above exists
};

// Builds a public Coordinator around a core built here (tests pass fake
// resource managers, the null-RM benchmark a null driver). Not in the public
// headers: an application builds a Coordinator from a Config.
struct CoordinatorAccess {
  static Coordinator wrap(std::shared_ptr<CoordinatorCore> core) { return Coordinator(std::move(core)); }
};

class GlobalTransaction {
 public:
  GlobalTransaction(std::shared_ptr<CoordinatorCore> core, std::string gtrid,
                    std::chrono::steady_clock::time_point deadline,
                    std::chrono::milliseconds timeout);
  ~GlobalTransaction();

  const std::string& gtrid() const noexcept { return gtrid_; }
  TransactionState state() const noexcept { return state_; }
  std::vector<std::string> resources() const;

  Result execute(std::string_view resource, std::string_view sql, std::span<const Param> params);
  void commit();
  void rollback();

 private:
  struct Branch {
    ResourceManager* rm = nullptr;
    SessionLease session;
    Xid xid;
    bool committed = false;
  };

  Branch& branch_for(std::string_view resource);
  void check_active(const char* operation) const;
  void check_deadline(const char* step);
  [[noreturn]] void fail_and_rollback(const Error& error);
  void commit_one_phase();
  void commit_two_phase();
  void decide_in_database(Branch* on_decider);
  void commit_branch(Branch& branch);
  void rollback_all() noexcept;

  std::shared_ptr<CoordinatorCore> core_;
  std::string gtrid_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::milliseconds timeout_;
  TransactionState state_ = TransactionState::active;
  std::vector<Branch> branches_;             // in order of first use
  std::optional<Error> failed_statement_;    // set once a statement failed: only rollback remains
};

}  // namespace dtx::detail
