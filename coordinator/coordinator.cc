// The global transaction coordinator: two-phase commit with presumed abort.
//
// WHERE STATE LIVES
// A global transaction (GlobalTransaction) lives in the memory of the process
// that began it, owned by the application thread holding its dtx::Transaction.
// Its branches are one per resource, each bound to one pooled connection
// (SessionLease) for its whole life, xid = (kDtxFormatId, gtrid, resource
// name). The gtrid names the coordinator id and this process incarnation
// (transaction_id.h), so any prepared branch found in a database can be traced
// to the process that owns it. The only durable coordinator state is the
// decision log (decision_log.h): one set of files per incarnation, locked
// while the incarnation lives.
//
// WHAT IS WRITTEN WHEN
//   begin      nothing; the gtrid is drawn from an in-memory counter.
//   execute    first statement on a resource: borrow a session, XA START /
//              BEGIN; then the statement, on the application's thread.
//   commit, one branch: the driver's one-round-trip commit (COMMIT; MySQL
//              XA COMMIT ... ONE PHASE; MariaDB XA PREPARE + XA COMMIT sent
//              together, drivers/mysql_driver.cc). No log record: the
//              database alone decides, as for a local transaction.
//   commit, two or more branches:
//     phase 1  prepare every branch in parallel (FanOut). Any "no" vote, error
//              or timeout -> roll back every branch; nothing is logged
//              (presumed abort: no record means abort).
//     decide   force COMMIT(gtrid, [(resource, bqual)...]) to the decision log.
//              Concurrent decisions share one fdatasync (group commit). This
//              record is the commit point: once durable, the transaction WILL
//              commit, whatever dies next.
//     phase 2  commit every branch in parallel, each on the very connection
//              that prepared it (MariaDB answers 1397 to XA COMMIT from another
//              session while the preparing one lives). What the database's
//              answer means is recovery/finish_branch.h's rule, shared with
//              recovery and the operator commands. A failure is retried
//              (Phase2Options: 5 attempts by default), on a fresh connection
//              if the old one broke; if the branch still cannot be committed
//              the caller gets Errc::in_doubt and the decision stays in the
//              log for recovery.
//     end      every branch acknowledged -> append END(gtrid) lazily (no
//              fsync); compaction later drops both records.
//   rollback   roll back every branch in parallel. Nothing is logged.
//
// TIMEOUT
// The transaction's deadline (begin + TransactionOptions::timeout, default
// [coordinator] default_timeout_ms) is checked before every step, and handed
// to each branch's session (Session::set_deadline), whose driver cancels a
// statement still running at the deadline — a lock wait, typically — without
// a round trip of its own (drivers/deadline_watchdog.h). Either way the whole
// transaction is rolled back and Errc::timeout names the step, or the
// resource and the statement. Once the decision is logged the deadline no
// longer applies: phase 2 runs to the end.
//
// DECISIONS IN A DATABASE ([coordinator] decisions = "R")
// The decision is a row of R's dtx_decision instead of a log record: the
// branch on R (if any) is not prepared in phase 1; decide_in_database()
// inserts the row as its last statement and commits it in one phase — that
// commit is the decision — or, with no branch on R, commits the row in a
// local transaction of its own. A duplicate key means recovery fenced the
// transaction first (roll back); a lost answer leaves it in doubt for the
// fence to decide. The process holds its liveness lock on R for its life
// (liveness_loop). The protocol: decision-table/decision_table.cc.
//
// FAILURE OF THE DECISION LOG
// If the COMMIT record cannot be made durable we cannot know whether it
// reached the disk, so we must not roll back either: the branches stay
// prepared and the caller gets Errc::log. Recovery decides them from what the
// log really holds once this incarnation is gone.
//
// WHAT RECOVERY DOES (recovery/, see docs/recovery.md)
// Lists prepared dtx branches on every resource; a branch whose gtrid has a
// COMMIT record is committed; one without is rolled back once the
// incarnation that owns it is provably dead (its log lock can be taken).
#include <algorithm>
#include <set>
#include <thread>

#include "coordinator/coordinator_core.h"
#include "coordinator/failpoint.h"
#include "base/logging.h"
#include "metrics/metrics.h"
#include "recovery/finish_branch.h"
#include "undo-log/at_session.h"

namespace dtx {
namespace detail {

namespace {

Error usage_error(const std::string& gtrid, const std::string& what) {
  return Error({.code = Errc::usage, .gtrid = gtrid}, what);
}

// The transaction ran out of time `when` ("before commit", "in a statement on
// bank2"); `cause` is the driver's error for a statement it cancelled.
Error timeout_error(const std::string& gtrid, std::chrono::milliseconds timeout,
                    const std::string& when, const Error* cause = nullptr) {
  Error::Details d = cause ? cause->details() : Error::Details{};
  d.code = Errc::timeout;
  d.gtrid = gtrid;
  d.hint = "raise TransactionOptions::timeout or [coordinator] default_timeout_ms if this is "
           "expected";
  if (cause) d.hint += "; a row lock held by another transaction is the usual cause of a wait";
  std::string what = "global transaction exceeded its timeout of " +
                     std::to_string(timeout.count()) + " ms " + when + "; rolled back";
  if (cause) what += ": " + cause->summary();
  return Error(std::move(d), what);
}

// Puts a transaction in its end state and counts it (dtx_transactions_total).
void set_end_state(TransactionState& state, TransactionState to) noexcept {
  using metrics::TransactionOutcome;
  state = to;
  metrics::transaction_finished(to == TransactionState::committed     ? TransactionOutcome::committed
                                : to == TransactionState::rolled_back ? TransactionOutcome::rolled_back
                                                                      : TransactionOutcome::in_doubt);
}

// Run `step` on every branch (in parallel if asked); collect the errors per branch.
template <typename Branches, typename Step>
std::vector<std::optional<Error>> for_each_branch(FanOut& fan_out, Branches& branches, Step step,
                                                  bool parallel = true) {
  std::vector<std::optional<Error>> errors(branches.size());
  fan_out.run(branches.size(), [&](std::size_t i) {
    try {
      step(branches[i]);
    } catch (const Error& e) {
      errors[i] = e;
    } catch (const std::exception& e) {
      errors[i] = Error({.code = Errc::sql}, e.what());
    }
  }, parallel);
  return errors;
}

}  // namespace

// ---- CoordinatorCore ----

CoordinatorCore::CoordinatorCore(Config config, ResourceFactory factory,
                                 DecisionLogOptions log_options, Phase2Options phase2)
    : config_(std::move(config)),
      phase2_(phase2),
      ids_(config_.coordinator.id, new_incarnation(config_.coordinator.decisions.empty() ? DecisionStore::file
                                                                                       : DecisionStore::database)),
      fan_out_(config_.coordinator.threads),
      parallel_below_(std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {
  if (!is_valid_coordinator_id(config_.coordinator.id))
    throw Error({.code = Errc::config, .hint = "use 1-16 characters of [A-Za-z0-9_-]"},
                "invalid coordinator id '" + config_.coordinator.id + "'");
  if (config_.resources.empty())
    throw Error({.code = Errc::config}, "no resource configured");
  if (!factory) factory = undo::make_configured_resource_manager;
  for (const auto& [name, rc] : config_.resources) resources_.emplace(name, factory(rc));
  if (config_.coordinator.decisions.empty()) {
    log_ = DecisionLog::open(config_.coordinator.log_dir, config_.coordinator.id, ids_.incarnation(),
                             log_options);
    logger().info("coordinator {} incarnation {} started, log in {}", config_.coordinator.id,
                  ids_.incarnation(), config_.coordinator.log_dir.string());
  } else {
    table_.emplace(config_.resource(config_.coordinator.decisions));
    table_rm_ = &resource(config_.coordinator.decisions);
    {
      // R down at start: the process starts anyway (its databases may come up
      // after it); the loop below takes the lock once R answers, and until
      // then a transaction that needs a decision fails at it, rolled back.
      std::lock_guard lock(liveness_mu_);
      try {
        hold_liveness();
      } catch (const Error& e) {
        if (e.code() != Errc::unavailable) throw;
        logger().warn("decisions resource {} unreachable at start (retrying every second): {}",
                      table_->resource(), e.what());
      }
    }
    liveness_thread_ = std::thread([this] { liveness_loop(); });
    logger().info("coordinator {} incarnation {} started, decisions in resource {}", config_.coordinator.id,
                  ids_.incarnation(), table_->resource());
  }
  if (config_.coordinator.recovery_interval_s > 0) recovery_thread_ = std::thread([this] { recovery_loop(); });
}

CoordinatorCore::~CoordinatorCore() {
  if (forget_thread_.joinable()) {
    {
      std::lock_guard lock(forget_mu_);
      forget_stopping_ = true;  // the loop empties the queue first
    }
    forget_cv_.notify_all();
    forget_thread_.join();
  }
  if (recovery_thread_.joinable()) {
    {
      std::lock_guard lock(recovery_mu_);
      stopping_ = true;
    }
    recovery_cv_.notify_all();
    recovery_thread_.join();
  }
  // Last: while the liveness lock is held no recovery pass adopts this
  // incarnation, so nothing it still finishes above is done twice.
  if (liveness_thread_.joinable()) {
    {
      std::lock_guard lock(liveness_mu_);
      liveness_stopping_ = true;
    }
    liveness_cv_.notify_all();
    liveness_thread_.join();
  }
}

// The incarnation's liveness lock on R (decision_table.cc, LIVENESS), on a
// session kept for that alone. If that session dies (R restarted), the lock
// is gone and recovery may fence this process's young transactions — which
// is safe, only wasteful — until the loop below takes it again.
void CoordinatorCore::hold_liveness() {
  liveness_.discard();
  SessionLease s = table_rm_->acquire();
  table_->ensure_schema(*s);
  if (!table_->try_hold_liveness(*s, config_.coordinator.id, ids_.incarnation()))
    throw Error({.code = Errc::usage, .resource = table_->resource(),
                 .hint = "every process needs its own incarnation; if none is running, a recovery pass holds it: "
                         "retry"},
                "cannot take the liveness lock of incarnation " + ids_.incarnation() + " of coordinator " +
                    config_.coordinator.id + " on resource " + table_->resource() + ": another session holds it");
  liveness_ = std::move(s);
}

void CoordinatorCore::liveness_loop() {
  std::unique_lock lock(liveness_mu_);
  while (!liveness_stopping_) {
    liveness_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return liveness_stopping_; });
    if (liveness_stopping_) break;
    try {
      if (liveness_ && !liveness_->broken()) {
        liveness_->execute("SELECT 1", {});
        continue;
      }
    } catch (const std::exception&) {
    }
    try {
      hold_liveness();
      logger().warn("liveness lock of incarnation {} taken again on {} (its session had ended)",
                    ids_.incarnation(), table_->resource());
    } catch (const std::exception& e) {
      logger().warn("cannot take the liveness lock on {} again (retrying every second): {}", table_->resource(),
                    e.what());
    }
  }
  liveness_.discard();  // the server drops the lock with the session
}

// R's rows of ended transactions are deleted together, by the forget
// thread, at most kRowDeleteDelay after the first of them ended (or once
// kRowDeleteBatch have): one DELETE commit on R for many transactions, instead
// of one more commit on R for each.
namespace {
constexpr auto kRowDeleteDelay = std::chrono::milliseconds(200);
constexpr std::size_t kRowDeleteBatch = 1000;
}  // namespace

void CoordinatorCore::decision_ended(const std::string& gtrid) {
  if (log_) {
    log_->log_end(gtrid);
    return;
  }
  {
    std::lock_guard lock(forget_mu_);
    if (ended_rows_.empty()) rows_due_ = std::chrono::steady_clock::now() + kRowDeleteDelay;
    ended_rows_.push_back(gtrid);
    if (!forget_thread_.joinable()) forget_thread_ = std::thread([this] { forget_loop(); });
  }
  forget_cv_.notify_all();
}

void CoordinatorCore::hand_to_recovery(const std::string& gtrid, LoggedDecision decision) {
  std::lock_guard lock(recovery_mu_);
  orphans_[gtrid] = decision;
}

RecoveryReport CoordinatorCore::recover_now() {
  RecoveryOptions options;
  options.own_incarnation = ids_.incarnation();
  {
    std::lock_guard lock(recovery_mu_);
    options.own_orphans = orphans_;
  }
  RecoveryScanner scanner(config_, [this](std::string_view name) -> ResourceManager& { return resource(name); });
  RecoveryReport report = scanner.run(options);
  if (!report.errors.empty()) return report;  // a resource not scanned: nothing is confirmed
  // A handed-over transaction none of whose branches is still prepared is done.
  std::set<std::string, std::less<>> open;
  for (const auto& b : report.branches)
    if (is_left_in_doubt(b.action)) open.insert(b.gtrid);
  std::lock_guard lock(recovery_mu_);
  for (const auto& [gtrid, decision] : options.own_orphans) {
    if (open.count(gtrid)) continue;
    if (decision == LoggedDecision::commit || table_) decision_ended(gtrid);
    orphans_.erase(gtrid);
  }
  return report;
}

void CoordinatorCore::forget_later(const std::string& gtrid, std::vector<AtBranch> branches, bool end) {
  {
    std::lock_guard lock(forget_mu_);
    forget_queue_.push_back({gtrid, std::move(branches), end});
    if (!forget_thread_.joinable()) forget_thread_ = std::thread([this] { forget_loop(); });
  }
  forget_cv_.notify_all();
}

void CoordinatorCore::drain_forgets() {
  std::unique_lock lock(forget_mu_);
  flush_rows_ = true;  // no waiting for kRowDeleteDelay
  forget_cv_.notify_all();
  forget_cv_.wait(lock, [this] { return forget_queue_.empty() && ended_rows_.empty() && forgets_in_flight_ == 0; });
  flush_rows_ = false;
}

void CoordinatorCore::forget_loop() {
  std::unique_lock lock(forget_mu_);
  auto rows_ready = [this] {
    return !ended_rows_.empty() && (forget_stopping_ || flush_rows_ || ended_rows_.size() >= kRowDeleteBatch ||
                                    std::chrono::steady_clock::now() >= rows_due_);
  };
  for (;;) {
    if (forget_queue_.empty() && !rows_ready()) {
      if (forget_stopping_ && ended_rows_.empty()) return;  // stopping, nothing left
      if (ended_rows_.empty())
        forget_cv_.wait(lock, [&] { return forget_stopping_ || !forget_queue_.empty() || !ended_rows_.empty(); });
      else
        forget_cv_.wait_until(lock, rows_due_, [&] { return !forget_queue_.empty() || rows_ready(); });
      continue;
    }
    std::vector<Forget> batch;
    batch.swap(forget_queue_);
    std::vector<std::string> rows;
    if (rows_ready()) rows.swap(ended_rows_);
    forgets_in_flight_ = batch.size() + rows.size();
    lock.unlock();
    // One local transaction per resource for the whole batch (group forget).
    std::map<ResourceManager*, std::vector<Xid>> by_resource;
    for (const auto& f : batch)
      for (const auto& b : f.branches) by_resource[b.rm].push_back(b.xid);
    std::set<ResourceManager*> failed;
    for (auto& [rm, xids] : by_resource) {
      try {
        SessionLease s = rm->acquire();
        undo::forget_branches(*s, xids);
      } catch (const std::exception& e) {
        logger().warn("forgetting {} committed AT branches on {} failed, left for recovery: {}", xids.size(),
                      rm->name(), e.what());
        failed.insert(rm);
      }
    }
    std::vector<std::string> ended;  // database mode: rows to delete with the next batch
    for (const auto& f : batch) {
      const bool all = std::none_of(f.branches.begin(), f.branches.end(),
                                    [&](const AtBranch& b) { return failed.count(b.rm) > 0; });
      if (!all)
        hand_to_recovery(f.gtrid, LoggedDecision::commit);
      else if (f.end && log_)
        log_->log_end(f.gtrid);
      else if (f.end)
        ended.push_back(f.gtrid);
    }
    if (!rows.empty()) {
      // If the DELETE fails the rows stay; recovery deletes them once this
      // incarnation is gone.
      try {
        SessionLease s = table_rm_->acquire();
        table_->erase(*s, rows);
      } catch (const std::exception& e) {
        logger().warn("cannot delete {} finished decisions from {}: {}", rows.size(), table_->resource(), e.what());
      }
    }
    lock.lock();
    if (!ended.empty() && ended_rows_.empty()) rows_due_ = std::chrono::steady_clock::now() + kRowDeleteDelay;
    ended_rows_.insert(ended_rows_.end(), ended.begin(), ended.end());
    forgets_in_flight_ = 0;
    forget_cv_.notify_all();
  }
}

void CoordinatorCore::recovery_loop() {
  std::unique_lock lock(recovery_mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      RecoveryReport r = recover_now();
      for (const auto& e : r.errors) logger().warn("recovery: {}", e);
    } catch (const std::exception& e) {
      logger().warn("recovery pass failed: {}", e.what());
    }
    lock.lock();
    recovery_cv_.wait_for(lock, std::chrono::seconds(config_.coordinator.recovery_interval_s),
                          [this] { return stopping_; });
  }
}

ResourceManager& CoordinatorCore::resource(std::string_view name) {
  auto it = resources_.find(name);
  if (it == resources_.end()) {
    config_.resource(name);  // throws the "unknown resource" error naming the configured ones
    throw Error({.code = Errc::usage, .resource = std::string(name)},
                "resource '" + std::string(name) + "' is configured but was not opened");
  }
  return *it->second;
}

std::unique_ptr<GlobalTransaction> CoordinatorCore::begin(TransactionOptions options) {
  auto timeout = options.timeout.count() > 0 ? options.timeout : config_.coordinator.default_timeout;
  if (timeout > kLongestTransactionTimeout)
    throw Error({.code = Errc::usage, .hint = "a transaction may run for 24 hours at most"},
                "transaction timeout of " + std::to_string(timeout.count()) + " ms is too long");
  return std::make_unique<GlobalTransaction>(shared_from_this(), ids_.next(),
                                             std::chrono::steady_clock::now() + timeout, timeout);
}

// ---- GlobalTransaction ----

GlobalTransaction::GlobalTransaction(std::shared_ptr<CoordinatorCore> core, std::string gtrid,
                                     std::chrono::steady_clock::time_point deadline,
                                     std::chrono::milliseconds timeout)
    : core_(std::move(core)), gtrid_(std::move(gtrid)), deadline_(deadline), timeout_(timeout) {}

GlobalTransaction::~GlobalTransaction() {
  if (state_ == TransactionState::active) rollback_all();
}

std::vector<std::string> GlobalTransaction::resources() const {
  std::vector<std::string> names;
  for (const auto& b : branches_) names.push_back(b.rm->name());
  return names;
}

void GlobalTransaction::check_active(const char* operation) const {
  if (state_ == TransactionState::active) return;
  const char* state = state_ == TransactionState::committed     ? "committed"
                      : state_ == TransactionState::rolled_back ? "rolled back"
                                                                : "in doubt";
  throw usage_error(gtrid_, std::string("cannot ") + operation + ": the transaction is already " + state);
}

void GlobalTransaction::check_deadline(const char* step) {
  if (std::chrono::steady_clock::now() <= deadline_) return;
  fail_and_rollback(timeout_error(gtrid_, timeout_, std::string("before ") + step));
}

void GlobalTransaction::fail_and_rollback(const Error& error) {
  rollback_all();
  throw error;
}

GlobalTransaction::Branch& GlobalTransaction::branch_for(std::string_view resource) {
  for (auto& b : branches_)
    if (b.rm->name() == resource) return b;
  ResourceManager* rm;
  try {
    rm = &core_->resource(resource);
  } catch (const Error& e) {
    throw e.with_context(gtrid_);
  }
  Branch b{rm, {}, Xid::make(gtrid_, std::string(resource)), false};
  try {
    b.session = rm->acquire();
    // R's branch on MariaDB is never prepared: a plain local transaction, so
    // that a crash of R's server settles its one-phase commit from the binary
    // log. (An XA branch committed ONE PHASE can come back from the crash
    // recovery prepared, holding the COMMIT row the fence then waits for.)
    if (rm == core_->decision_resource() && rm->config().type == ResourceType::mysql &&
        !undo::is_at_session(*b.session))
      b.session->begin_local(b.xid);
    else
      b.session->begin(b.xid);
    b.session->set_deadline(deadline_);
  } catch (const Error& e) {
    throw e.with_context(gtrid_, rm->name());
  }
  logger().debug("{}: branch started on {}", gtrid_, rm->name());
  branches_.push_back(std::move(b));
  return branches_.back();
}

Result GlobalTransaction::execute(std::string_view resource, std::string_view sql,
                                  std::span<const Param> params) {
  check_active("execute");
  if (failed_statement_)
    throw usage_error(gtrid_,
                      "a statement of this transaction already failed; it can only be rolled back");
  check_deadline("a statement");
  Branch& b = branch_for(resource);
  try {
    return b.session->execute(sql, params);
  } catch (const Error& e) {
    if (e.code() == Errc::timeout)  // cancelled at the deadline: as check_deadline would
      fail_and_rollback(timeout_error(gtrid_, timeout_, "in a statement on " + b.rm->name(),
                                      &e));
    failed_statement_ = e.with_context(gtrid_, b.rm->name());
    logger().info("{}: statement failed on {}: {}", gtrid_, b.rm->name(), e.what());
    throw *failed_statement_;
  }
}

void GlobalTransaction::rollback() {
  if (state_ == TransactionState::rolled_back) return;
  check_active("roll back");
  rollback_all();
}

void GlobalTransaction::rollback_all() noexcept {
  auto errors = for_each_branch(core_->fan_out(), branches_,
                                [](Branch& b) { if (b.session) b.session->rollback(); });
  for (std::size_t i = 0; i < errors.size(); ++i)
    if (errors[i]) {
      // The branch may stay prepared; with no COMMIT record recovery rolls it back.
      logger().warn("{}: rollback of branch on {} failed, left for recovery: {}", gtrid_,
                    branches_[i].rm->name(), errors[i]->what());
      core_->hand_to_recovery(gtrid_, LoggedDecision::none);
    }
  branches_.clear();  // leases return sessions to the pool (or close broken ones)
  set_end_state(state_, TransactionState::rolled_back);
}

void GlobalTransaction::commit() {
  check_active("commit");
  if (failed_statement_) {
    Error::Details d = failed_statement_->details();  // the server's own words
    d.hint.clear();
    fail_and_rollback(Error(std::move(d), "cannot commit: a statement failed on " +
                                              failed_statement_->resource() +
                                              "; the transaction was rolled back"));
  }
  check_deadline("commit");
  if (branches_.size() <= 1)
    commit_one_phase();
  else
    commit_two_phase();
}

void GlobalTransaction::commit_one_phase() {
  if (!branches_.empty()) {
    Branch& b = branches_.front();
    try {
      b.session->commit_one_phase();
    } catch (const Error& e) {
      fail_and_rollback(e.with_context(gtrid_, b.rm->name()));
    }
  }
  branches_.clear();
  set_end_state(state_, TransactionState::committed);
}

void GlobalTransaction::commit_two_phase() {
  CoordinatorCore::CommitSlot slot(*core_);
  // With decisions in a database, the branch on that resource (if any) is
  // never prepared: its one-phase commit carries the decision.
  ResourceManager* const decision_rm = core_->decision_resource();
  Branch* on_decider = nullptr;
  for (auto& b : branches_)
    if (decision_rm && b.rm == decision_rm) on_decider = &b;

  // Phase 1.
  // Only the branches with work go to the fan-out: a single one runs on
  // this thread, with no hand-off.
  std::vector<Branch*> to_prepare;
  for (auto& b : branches_)
    if (&b != on_decider) to_prepare.push_back(&b);
  auto votes = for_each_branch(core_->fan_out(), to_prepare, [](Branch* b) { b->session->prepare(); },
                               slot.parallel());
  for (std::size_t i = 0; i < votes.size(); ++i)
    if (votes[i]) {
      logger().info("{}: prepare failed on {}, rolling back: {}", gtrid_, to_prepare[i]->rm->name(),
                    votes[i]->what());
      fail_and_rollback(votes[i]->with_context(gtrid_, to_prepare[i]->rm->name()));
    }
  if (std::chrono::steady_clock::now() > deadline_) check_deadline("the commit decision");
  failpoint(Failpoint::after_prepare);

  // The commit point.
  if (decision_rm) {
    decide_in_database(on_decider);
  } else {
    std::vector<BranchRef> refs;
    refs.reserve(branches_.size());
    for (const auto& b : branches_) refs.push_back({b.rm->name(), b.xid.bqual});
    try {
      core_->log().log_commit(gtrid_, refs);
    } catch (const Error& e) {
      // Unknown whether the record reached the disk: neither commit nor roll back.
      set_end_state(state_, TransactionState::in_doubt);
      branches_.clear();  // closing the connections leaves the branches prepared
      logger().error("{}: commit decision could not be made durable; branches left prepared for "
                     "recovery: {}", gtrid_, e.what());
      throw Error({.code = Errc::log,
                   .gtrid = gtrid_,
                   .hint = "fix the log directory, then run `dtx recover`; the branches stay "
                           "prepared until recovery decides them from the log"},
                  std::string("commit decision could not be made durable: ") + e.what());
    }
  }

  failpoint(Failpoint::after_decision);

  // Phase 2. AT branches are finished already as far as the caller is
  // concerned (their changes are committed locally); their undo records and
  // locks are deleted off the caller's path, and END waits for that.
  std::vector<CoordinatorCore::AtBranch> at_branches;
  if (!failpoint_armed(Failpoint::after_first_commit))
    for (auto& b : branches_)
      if (b.session && undo::is_at_session(*b.session)) {
        undo::release_prepared(*b.session);
        at_branches.push_back({b.rm, b.xid});
        b.committed = true;
      }
  if (failpoint_armed(Failpoint::after_first_commit)) {
    for (auto& b : branches_)
      if (!b.committed) {
        commit_branch(b);
        break;
      }
    failpoint(Failpoint::after_first_commit);
  }
  std::vector<Branch*> to_commit;
  for (auto& b : branches_)
    if (!b.committed) to_commit.push_back(&b);
  auto acks = for_each_branch(core_->fan_out(), to_commit, [this](Branch* b) { commit_branch(*b); },
                              slot.parallel());
  std::string pending;
  const Error* first = nullptr;
  for (std::size_t i = 0; i < acks.size(); ++i)
    if (acks[i]) {
      pending += (pending.empty() ? "" : ", ") + to_commit[i]->rm->name();
      if (!first) first = &*acks[i];
    }
  if (!first) {
    if (at_branches.empty())
      core_->decision_ended(gtrid_);
    else
      core_->forget_later(gtrid_, std::move(at_branches), /*end=*/true);
    branches_.clear();
    set_end_state(state_, TransactionState::committed);
    return;
  }
  if (!at_branches.empty()) core_->forget_later(gtrid_, std::move(at_branches), /*end=*/false);
  set_end_state(state_, TransactionState::in_doubt);
  core_->hand_to_recovery(gtrid_, LoggedDecision::commit);
  Error::Details d = first->details();
  d.code = Errc::in_doubt;
  d.gtrid = gtrid_;
  d.hint = "the commit decision is durable: run `dtx recover` (or let the coordinator's recovery "
           "run) to finish the branch";
  Error error(std::move(d), "committed, but the branch on " + pending +
                                " could not be committed yet; it will be committed by recovery");
  branches_.clear();
  throw error;
}

// The decision as a row of R's dtx_decision, committed by R's own commit
// (decision-table/decision_table.cc has the protocol). Returns once G is
// committed on R; otherwise rolls back and throws, or — the answer lost —
// leaves the others prepared for the fence to decide and throws in_doubt.
void GlobalTransaction::decide_in_database(Branch* on_decider) {
  const DecisionTable& table = *core_->decision_table();
  std::vector<std::string> names;
  for (const auto& b : branches_) names.push_back(b.rm->name());
  failpoint(Failpoint::before_decision_commit);
  const BatchStatement row = table.commit_row(gtrid_, names);
  const auto started = std::chrono::steady_clock::now();
  // Without a branch on R: a local transaction of its own there, bounded by
  // G's deadline. Nothing is decided yet if it cannot even begin.
  SessionLease own;
  Session* decider = on_decider ? &*on_decider->session : nullptr;
  if (!decider) {
    try {
      own = core_->decision_resource()->acquire();
      own->begin_local(Xid::make(gtrid_, table.resource()));
      own->set_deadline(deadline_);
      decider = &*own;
    } catch (const Error& e) {
      fail_and_rollback(e.with_context(gtrid_, table.resource()));
    }
  }
  try {
    FailpointInFlight in_flight(Failpoint::decision_commit_sent);
    try {
      decider->commit_one_phase_with(row.sql, row.params);
      if (on_decider) on_decider->committed = true;
    } catch (...) {
      in_flight.answered();
      throw;
    }
    in_flight.answered();
  } catch (const Error& e) {
    if (e.code() == Errc::unavailable) {
      // Sent, answer lost: R may have committed. Neither commit nor roll back.
      set_end_state(state_, TransactionState::in_doubt);
      branches_.clear();  // closing the connections leaves the others prepared
      core_->hand_to_recovery(gtrid_, LoggedDecision::none);
      logger().error("{}: the commit decision's outcome on {} is unknown; branches left prepared for "
                     "recovery: {}", gtrid_, table.resource(), e.what());
      Error::Details d = e.details();
      d.code = Errc::in_doubt;
      d.gtrid = gtrid_;
      d.hint = "recovery decides from " + table.resource() + "'s dtx_decision (run `dtx recover`, or let the "
               "coordinator's recovery run)";
      throw Error(std::move(d), "the commit decision was sent to " + table.resource() +
                                    " but its answer was lost; the transaction is in doubt: " + e.summary());
    }
    if (DecisionTable::is_duplicate_key(e)) {
      logger().warn("{}: recovery fenced the transaction before its decision; rolling back", gtrid_);
      fail_and_rollback(Error({.code = Errc::rolled_back, .resource = table.resource(), .gtrid = gtrid_,
                               .hint = "a recovery pass took this process for gone (its liveness lock on " +
                                       table.resource() + " was free); retry the transaction"},
                              "rolled back: recovery had aborted the transaction (an abort row in " +
                                  table.resource() + "'s dtx_decision) before its commit decision"));
    }
    if (e.code() == Errc::timeout)
      fail_and_rollback(timeout_error(gtrid_, timeout_, "in the commit decision on " + table.resource(), &e));
    fail_and_rollback(e.with_context(gtrid_, table.resource()));
  }
  metrics::decisions_flushed(1, std::chrono::steady_clock::now() - started);
  failpoint(Failpoint::after_decision_commit);
}

// Commits one prepared branch; retries, on a fresh connection if needed.
// Returns once the branch is known finished; throws after the last attempt.
// What each answer of the database means is recovery/finish_branch.h's rule,
// the same for recovery and the operator commands.
void GlobalTransaction::commit_branch(Branch& b) {
  const Phase2Options& options = core_->phase2_options();
  std::chrono::milliseconds backoff = options.backoff;
  const FinishRequest request{gtrid_, b.rm->name(), true, DecisionBasis::commit, "coordinator"};
  for (int attempt = 1;; ++attempt) {
    FinishVerdict verdict;
    std::optional<Error> said;
    try {
      // On the preparing session while it holds the branch, else by xid on a fresh one.
      const bool own = b.session && !b.session->broken() && b.session->state() == BranchState::prepared;
      SessionLease fresh;
      if (!own) {
        b.session.discard();
        fresh = b.rm->acquire();
      }
      Session& session = own ? *b.session : *fresh;
      FinishResult answer = own ? session.commit() : session.commit_prepared(b.xid);
      said = answer.error;
      verdict = judge_finish(session, b.xid, request, answer);
    } catch (const Error& e) {
      said = e;
      verdict.detail = e.what();
    }
    if (verdict.heuristic) {
      try {
        record_heuristic(core_->config().coordinator.log_dir, *verdict.heuristic);
      } catch (const Error& re) {
        logger().error("{}: {}", gtrid_, re.what());
      }
    }
    if (verdict.action == BranchAction::committed || verdict.action == BranchAction::already_finished) {
      if (said) logger().warn("{}: branch on {} {}: {}", gtrid_, b.rm->name(), to_string(verdict.action),
                              verdict.detail);
      b.committed = true;
      return;
    }
    logger().warn("{}: commit of branch on {} failed (attempt {} of {}): {}", gtrid_, b.rm->name(),
                  attempt, options.attempts, verdict.detail);
    if (attempt >= options.attempts) {
      if (said) throw said->with_context(gtrid_, b.rm->name());
      throw Error({.code = Errc::unavailable, .resource = b.rm->name(), .gtrid = gtrid_},
                  verdict.detail);
    }
    std::this_thread::sleep_for(backoff);  // a retry delay, not a synchronisation
    backoff *= 3;
  }
}

}  // namespace detail

// ---- Public API ----

Transaction::Transaction(std::unique_ptr<detail::GlobalTransaction> impl) : impl_(std::move(impl)) {}
Transaction::Transaction(Transaction&&) noexcept = default;
Transaction& Transaction::operator=(Transaction&&) noexcept = default;
Transaction::~Transaction() = default;

namespace {

const detail::GlobalTransaction& live(const std::unique_ptr<detail::GlobalTransaction>& impl) {
  if (!impl)
    throw Error({.code = Errc::usage, .hint = "use the Transaction it was moved to"},
                "this dtx::Transaction was moved from and holds no transaction");
  return *impl;
}

}  // namespace

const std::string& Transaction::id() const noexcept {
  static const std::string none;
  return impl_ ? impl_->gtrid() : none;
}
TransactionState Transaction::state() const noexcept {
  return impl_ ? impl_->state() : TransactionState::rolled_back;
}
std::vector<std::string> Transaction::resources() const { return impl_ ? impl_->resources() : std::vector<std::string>{}; }

Result Transaction::execute(std::string_view resource, std::string_view sql,
                            std::initializer_list<Param> params) {
  return execute(resource, sql, std::span<const Param>(params.begin(), params.size()));
}

Result Transaction::execute(std::string_view resource, std::string_view sql,
                            std::span<const Param> params) {
  live(impl_);
  return impl_->execute(resource, sql, params);
}

void Transaction::commit() {
  live(impl_);
  impl_->commit();
}
void Transaction::rollback() {
  if (impl_) impl_->rollback();
}

Coordinator::Coordinator(Config config)
    : core_(std::make_shared<detail::CoordinatorCore>(std::move(config))) {}
Coordinator::Coordinator(std::shared_ptr<detail::CoordinatorCore> core) : core_(std::move(core)) {}
Coordinator::~Coordinator() = default;

Transaction Coordinator::begin(TransactionOptions options) { return Transaction(core_->begin(options)); }
const Config& Coordinator::config() const noexcept { return core_->config(); }
const std::string& Coordinator::incarnation() const noexcept { return core_->incarnation(); }

}  // namespace dtx
