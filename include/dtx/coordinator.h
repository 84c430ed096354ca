// The C++ API: a Coordinator runs global transactions across the resources
// of a Config; a Transaction is an RAII handle on one of them.
//
//   dtx::Coordinator coord(dtx::load_config("dtx.toml"));
//   dtx::Transaction tx = coord.begin();
//   tx.execute("bank1", "UPDATE account_info SET account_balance = account_balance - ? "
//                       "WHERE account_name = ?", {100, "Zhang San"});
//   tx.execute("bank2", "UPDATE account_info SET account_balance = account_balance + ? "
//                       "WHERE account_name = ?", {100, "Li Si"});
//   tx.commit();   // two-phase commit; throws dtx::Error and rolls back on failure
//
// A Transaction destroyed before commit() or rollback() rolls back. A branch
// is started on a resource the first time a statement runs there. One branch
// is committed in one phase with no log record; two or more are prepared in
// parallel, the decision is forced to the decision log, then committed in
// parallel on the connections that prepared them.
//
// Thread safety: a Coordinator may be shared by any number of threads; a
// Transaction belongs to one thread at a time.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtx/config.h"
#include "dtx/error.h"
#include "dtx/value.h"

namespace dtx {

namespace detail {
class CoordinatorCore;
class GlobalTransaction;
struct CoordinatorAccess;
}  // namespace detail

struct TransactionOptions {
  // 0 = the coordinator's default_timeout. Checked before every statement and
  // before phase 1; a transaction past its deadline is rolled back.
  std::chrono::milliseconds timeout{0};
};

enum class TransactionState { active, committed, rolled_back, in_doubt };

// A moved-from Transaction holds nothing: id() is empty, state() is
// rolled_back, rollback() does nothing, execute() and commit() throw
// Errc::usage.
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // Rolls back if still active; never throws.
  ~Transaction();

  // The global transaction id (gtrid), as it appears in XA RECOVER and logs.
  const std::string& id() const noexcept;
  TransactionState state() const noexcept;

  // Runs one statement on `resource`'s branch, starting the branch if needed.
  // On an SQL error the exception is thrown and the transaction can only be
  // rolled back (commit() will throw).
  Result execute(std::string_view resource, std::string_view sql,
                 std::initializer_list<Param> params = {});
  Result execute(std::string_view resource, std::string_view sql, std::span<const Param> params);

  // Commits every branch. On failure rolls back every branch and throws. If the
  // decision to commit is already durable but a branch could not be committed
  // yet, throws Errc::in_doubt: the transaction WILL commit (recovery finishes it).
  void commit();
  // Rolls back every branch. Idempotent.
  void rollback();

  // Resources that have a branch in this transaction, in order of first use.
  std::vector<std::string> resources() const;

 private:
  friend class Coordinator;
  explicit Transaction(std::unique_ptr<detail::GlobalTransaction> impl);
  std::unique_ptr<detail::GlobalTransaction> impl_;
};

class Coordinator {
 public:
  // Validates the config, creates log_dir and opens this process's decision
  // log (one file per process incarnation, held under a lock). Connections are
  // opened on first use. Throws dtx::Error.
  explicit Coordinator(Config config);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  Transaction begin(TransactionOptions options = {});

  const Config& config() const noexcept;
  // The id of this process incarnation (hex), part of every gtrid it issues.
  const std::string& incarnation() const noexcept;

 private:
  friend struct detail::CoordinatorAccess;
  explicit Coordinator(std::shared_ptr<detail::CoordinatorCore> core);
  std::shared_ptr<detail::CoordinatorCore> core_;
};

}  // namespace dtx
