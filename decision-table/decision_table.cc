// Commit decisions in a resource's own database: the protocol.
//
// With [coordinator] decisions = "R", the commit decision of a global
// transaction G is not forced to the coordinator's file log: it is a row of
// R's table dtx_decision, made durable by R's own commit (replicated with R,
// readable from any machine). The model is the "commit markable resource"
// and "last resource commit" of transaction managers, and Citus's
// pg_dist_transaction.
//
// COMMIT (coordinator/coordinator.cc, commit_two_phase)
//   G has a branch on R (any mode):
//     1. prepare every other branch (XA PREPARE / PREPARE TRANSACTION / AT
//        phase 1), in parallel; a "no" rolls everything back, nothing written.
//     2. in R's branch, which is never prepared, INSERT (G, commit, branches)
//        as its last statement, and commit that branch in one phase, in one
//        round trip (PostgreSQL: INSERT; COMMIT. MariaDB: R's branch is a
//        plain local transaction from its start, INSERT; COMMIT — an XA
//        branch committed ONE PHASE can come back prepared from a crash of
//        the server, holding the row the fence then waits for forever. AT:
//        its lock rows deleted, INSERT, COMMIT).
//        THAT LOCAL COMMIT IS THE DECISION: one PREPARE fewer than 2PC, and
//        no coordinator fdatasync.
//     3. commit the others; delete G's row later, in batches.
//   G has no branch on R: after 1, INSERT (G, commit) in a local transaction
//   of its own on R (autocommit: one database flush); then 3.
//   Answers of step 2: success = committed. A duplicate key = recovery fenced
//   G first: roll everything back. Any other error = the branch was rolled
//   back by its database, roll everything back — except a lost connection,
//   whose outcome is unknown: the branches stay prepared, the caller gets
//   Errc::in_doubt, and the fence below decides.
//
// RECOVERY (recovery/recovery.cc), for a prepared branch of G whose owner is
// gone (or that its own live process handed over):
//   INSERT (G, abort) — the fence — in autocommit:
//     duplicate key, the row says commit -> G committed: commit the branch;
//     duplicate key, the row says abort  -> an earlier fence: roll back;
//     success                            -> G is aborted for good (a late
//                                           COMMIT insert of G now fails on
//                                           the key): roll back.
//   A COMMIT insert still in flight (uncommitted) makes the fence wait until
//   it ends — both InnoDB and PostgreSQL wait on an uncommitted duplicate key
//   — so there is no window in which recovery reads "absent" while the
//   commit is landing. A plain SELECT would not wait: recovery never decides
//   from a read (dry runs and listings only show).
//
// LIVENESS only keeps recovery from fencing young transactions (correctness
// never depends on it: fencing a live owner only makes its decision fail,
// and it then rolls back). Each incarnation holds a session-level named lock
// on R for its life (pg_advisory_lock of a 64-bit hash / GET_LOCK), which the
// server drops when the session ends. A recovery pass, on any machine, tries
// to take the lock of each incarnation that owns a prepared branch: taken =
// the owner is gone (held for the pass, like the file log's flock); not
// taken = alive, or another pass holds it.
//
// ROW REMOVAL. COMMIT rows: by the owner once every branch committed (its
// background forget thread, in batches); by recovery for a gone incarnation
// — only rows it read before its second scan, once that scan shows no branch
// of G prepared on any resource (a row inserted later, by an owner wrongly
// taken for gone, may have branches the scan missed). ABORT rows: only once
// no COMMIT insert of G can arrive — the owner is gone and the row is older
// than kAbortRowRetention, which is longer than any transaction may run (the
// decision is never inserted past G's deadline).
//
// Incarnations record where they keep decisions in the incarnation id itself
// (base/transaction_id.h), so a pass knows for each branch whether to read a
// file log or R, and a pass without R configured never presumes abort for a
// branch whose decision is in a table.
#include "decision-table/decision_table.h"

#include <algorithm>

#include "drivers/sql_words.h"
#include "dtx/error.h"

namespace dtx {

namespace {

#include "decision_schema_ddl.inc"  // kMysqlScript, kPostgresScript (generated from sql/)

constexpr int kCommit = static_cast<int>(TableOutcome::commit);
constexpr int kAbort = static_cast<int>(TableOutcome::abort);

std::string join(std::span<const std::string> names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

TableOutcome outcome_of(const std::optional<std::string>& cell) {
  if (!cell) return TableOutcome::none;
  if (*cell == "1") return TableOutcome::commit;
  if (*cell == "2") return TableOutcome::abort;
  return TableOutcome::none;
}

// "<id>." .. "<id>/": every gtrid of one coordinator id (or one incarnation,
// with "<id>.<inc>."), as a range of the primary key ('/' follows '.').
std::pair<std::string, std::string> prefix_range(std::string prefix) {
  std::string upper = prefix;
  upper.back() = '/';
  return {std::move(prefix), std::move(upper)};
}

}  // namespace

const char* to_string(TableOutcome outcome) noexcept {
  switch (outcome) {
    case TableOutcome::commit: return "commit";
    case TableOutcome::abort: return "abort";
    case TableOutcome::none: break;
  }
  return "none";
}

std::string_view decision_schema_script(ResourceType type) {
  return type == ResourceType::mysql ? kMysqlScript : kPostgresScript;
}

std::vector<std::string> decision_schema_statements(ResourceType type) {
  return sql_script_statements(decision_schema_script(type),
                               type == ResourceType::mysql ? SqlDialect::mysql : SqlDialect::postgres);
}

bool LivenessHolds::try_hold(const std::string& incarnation) {
  if (!table_->try_hold_liveness(*session_, id_, incarnation)) return false;
  held_.insert(incarnation);
  return true;
}

void LivenessHolds::release() noexcept {
  if (!session_) return;
  try {
    for (const std::string& inc : held_) table_->release_liveness(*session_, id_, inc);
  } catch (...) {
    session_.discard();
  }
  held_.clear();
  if (session_ && session_->broken()) session_.discard();
  session_ = SessionLease();
}

std::int64_t liveness_lock_key(std::string_view coordinator_id, std::string_view incarnation) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix("dtx:");
  mix(coordinator_id);
  mix(".");
  mix(incarnation);
  return static_cast<std::int64_t>(h);
}

std::string liveness_lock_name(std::string_view coordinator_id, std::string_view incarnation) {
  return "dtx:" + std::string(coordinator_id) + "." + std::string(incarnation);
}

DecisionTable::DecisionTable(const ResourceConfig& resource) : resource_(resource.name), type_(resource.type) {}

bool DecisionTable::is_duplicate_key(const Error& e) noexcept {
  return e.sqlstate() == "23505" || e.server_code() == 1062;
}

void DecisionTable::ensure_schema(Session& session) const {
  const bool mysql = type_ == ResourceType::mysql;
  try {
    session.execute("SELECT gtrid FROM dtx_decision WHERE 1 = 0", {});
    return;
  } catch (const Error& e) {
    const bool missing = e.sqlstate() == "42P01" || e.server_code() == 1146;
    if (!missing) throw;
  }
  const std::string lock = mysql ? "SELECT GET_LOCK('dtx_decision_schema', 30)"
                                 : "SELECT pg_advisory_lock(" + std::to_string(liveness_lock_key("schema", "dtx_decision")) + ")";
  const std::string unlock = mysql ? "SELECT RELEASE_LOCK('dtx_decision_schema')"
                                   : "SELECT pg_advisory_unlock(" +
                                         std::to_string(liveness_lock_key("schema", "dtx_decision")) + ")";
  session.execute(lock, {});
  try {
    for (const std::string& statement : decision_schema_statements(type_)) session.execute(statement, {});
  } catch (const Error& e) {
    try {
      session.execute(unlock, {});
    } catch (...) {
    }
    const bool denied = e.sqlstate() == "42501" || e.server_code() == 1142 || e.server_code() == 1044;
    if (!denied) throw;
    Error::Details d = e.details();
    d.code = Errc::misconfigured;
    d.resource = resource_;
    d.hint = std::string("have a DBA run sql/decisions.") + (mysql ? "mysql" : "postgres") +
             ".sql in the resource's database and grant its user SELECT, INSERT, DELETE on dtx_decision";
    throw Error(std::move(d), "resource '" + resource_ + "' holds the commit decisions ([coordinator] "
                              "decisions), but its user may not create the table dtx_decision");
  }
  session.execute(unlock, {});
}

BatchStatement DecisionTable::commit_row(std::string_view gtrid, std::span<const std::string> resources) const {
  return {"INSERT INTO dtx_decision (gtrid, outcome, branches) VALUES (?, " + std::to_string(kCommit) + ", ?)",
          {Param(gtrid), Param(join(resources))}};
}

void DecisionTable::insert_commit(Session& session, std::string_view gtrid,
                                  std::span<const std::string> resources) const {
  BatchStatement s = commit_row(gtrid, resources);
  session.execute(s.sql, s.params);
}

std::map<std::string, DecisionTable::Fenced, std::less<>> DecisionTable::fence(
    Session& session, std::span<const std::string> gtrids, std::chrono::seconds lock_wait) const {
  std::map<std::string, Fenced, std::less<>> out;
  if (gtrids.empty()) return out;
  const bool mysql = type_ == ResourceType::mysql;
  const std::string wait = std::to_string(std::max<long long>(1, lock_wait.count()));
  session.execute(mysql ? "SET SESSION innodb_lock_wait_timeout = " + wait : "SET lock_timeout = '" + wait + "s'", {});
  for (const std::string& gtrid : gtrids) {
    Fenced& result = out[gtrid];
    // Twice at most: a COMMIT row found by the key may be deleted (its
    // branches all finished) before it is read; the second insert then
    // fences nothing that is still prepared.
    for (int attempt = 0; attempt < 2 && result.outcome == TableOutcome::none && !result.error; ++attempt) {
      try {
        session.execute("INSERT INTO dtx_decision (gtrid, outcome) VALUES (?, " + std::to_string(kAbort) + ")",
                        std::vector<Param>{Param(gtrid)});
        result.outcome = TableOutcome::abort;
        break;
      } catch (const Error& e) {
        if (e.sqlstate() == "55P03" || e.server_code() == 1205) {
          Error::Details d = e.details();
          d.code = Errc::timeout;
          d.resource = resource_;
          d.gtrid = gtrid;
          d.hint = "a transaction on " + resource_ + " holds the decision row of this gtrid (a commit in flight, "
                   "or a DBA's lock); the next recovery pass tries again";
          result.error = Error(std::move(d), "the recovery fence waited " + wait + " s for the decision row");
        } else if (!is_duplicate_key(e)) {
          result.error = e;
        }
      }
      if (result.error || session.broken()) break;
      result.outcome = read_one(session, gtrid).outcome;
    }
    if (!result.error && result.outcome == TableOutcome::none) result.outcome = TableOutcome::abort;
    if (session.broken()) break;
  }
  if (!session.broken()) {
    try {
      session.execute(mysql ? "SET SESSION innodb_lock_wait_timeout = DEFAULT" : "SET lock_timeout = DEFAULT", {});
    } catch (...) {
    }
  }
  for (const std::string& gtrid : gtrids)  // those not reached: the connection broke
    if (auto& r = out[gtrid]; r.outcome == TableOutcome::none && !r.error)
      r.error = Error({.code = Errc::unavailable, .resource = resource_, .gtrid = gtrid},
                      "the connection to " + resource_ + " broke during the recovery fence");
  return out;
}

DecisionRow DecisionTable::read_one(Session& session, std::string_view gtrid) const {
  const bool mysql = type_ == ResourceType::mysql;
  Result r = session.execute(
      mysql ? "SELECT outcome, branches, TIMESTAMPDIFF(MICROSECOND, created, CURRENT_TIMESTAMP(6)) / 1e6 FROM "
              "dtx_decision WHERE gtrid = ?"
            : "SELECT outcome, branches, extract(epoch FROM now() - created) FROM dtx_decision WHERE gtrid = ?",
      std::vector<Param>{Param(gtrid)});
  DecisionRow row;
  row.gtrid = std::string(gtrid);
  if (r.empty()) return row;
  const Row& first = *r.begin();
  row.outcome = outcome_of(first.cell(0));
  row.branches = first.cell(1).value_or("");
  if (!first.is_null(2)) row.age_s = first.as_double(2);
  return row;
}

std::map<std::string, DecisionRow, std::less<>> DecisionTable::read(Session& session,
                                                                    std::string_view coordinator_id) const {
  const bool mysql = type_ == ResourceType::mysql;
  auto [low, high] = prefix_range(std::string(coordinator_id) + ".");
  Result r = session.execute(
      mysql ? "SELECT gtrid, outcome, branches, TIMESTAMPDIFF(MICROSECOND, created, CURRENT_TIMESTAMP(6)) / 1e6 "
              "FROM dtx_decision WHERE gtrid >= ? AND gtrid < ?"
            : "SELECT gtrid, outcome, branches, extract(epoch FROM now() - created) FROM dtx_decision "
              "WHERE gtrid >= ? AND gtrid < ?",
      std::vector<Param>{Param(low), Param(high)});
  std::map<std::string, DecisionRow, std::less<>> rows;
  for (const Row& row : r) {
    DecisionRow d;
    d.gtrid = row.cell(0).value_or("");
    d.outcome = outcome_of(row.cell(1));
    d.branches = row.cell(2).value_or("");
    if (!row.is_null(3)) d.age_s = row.as_double(3);
    rows.emplace(d.gtrid, std::move(d));
  }
  return rows;
}

std::uint64_t DecisionTable::erase(Session& session, std::span<const std::string> gtrids) const {
  constexpr std::size_t kChunk = 500;
  std::uint64_t deleted = 0;
  for (std::size_t from = 0; from < gtrids.size(); from += kChunk) {
    const std::size_t n = std::min(kChunk, gtrids.size() - from);
    std::string sql = "DELETE FROM dtx_decision WHERE gtrid IN (";
    std::vector<Param> params;
    for (std::size_t i = 0; i < n; ++i) {
      sql += i ? ", ?" : "?";
      params.emplace_back(gtrids[from + i]);
    }
    sql += ")";
    deleted += session.execute(sql, params).affected_rows();
  }
  return deleted;
}

bool DecisionTable::try_hold_liveness(Session& session, std::string_view coordinator_id,
                                      std::string_view incarnation) const {
  Result r = type_ == ResourceType::mysql
                 ? session.execute("SELECT GET_LOCK(?, 0)",
                                   std::vector<Param>{Param(liveness_lock_name(coordinator_id, incarnation))})
                 : session.execute("SELECT pg_try_advisory_lock(?::bigint)::int",
                                   std::vector<Param>{Param(liveness_lock_key(coordinator_id, incarnation))});
  return !r.empty() && r.begin()->cell(0).value_or("0") == "1";
}

void DecisionTable::release_liveness(Session& session, std::string_view coordinator_id,
                                     std::string_view incarnation) const {
  if (type_ == ResourceType::mysql)
    session.execute("SELECT RELEASE_LOCK(?)", std::vector<Param>{Param(liveness_lock_name(coordinator_id, incarnation))});
  else
    session.execute("SELECT pg_advisory_unlock(?::bigint)",
                    std::vector<Param>{Param(liveness_lock_key(coordinator_id, incarnation))});
}

bool DecisionTable::liveness_held(Session& session, std::string_view coordinator_id,
                                  std::string_view incarnation) const {
  if (type_ == ResourceType::mysql) {
    Result r = session.execute("SELECT IS_USED_LOCK(?) IS NOT NULL",
                               std::vector<Param>{Param(liveness_lock_name(coordinator_id, incarnation))});
    return !r.empty() && r.begin()->cell(0).value_or("0") == "1";
  }
  // A bigint advisory key shows as classid (high 32 bits) and objid (low 32).
  const auto key = static_cast<std::uint64_t>(liveness_lock_key(coordinator_id, incarnation));
  Result r = session.execute(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
      "(SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = ?::bigint::oid AND "
      "objid = ?::bigint::oid AND objsubid = 1",
      std::vector<Param>{Param(key >> 32), Param(key & 0xffffffffu)});
  return !r.empty() && r.begin()->cell(0).value_or("0") != "0";
}

}  // namespace dtx
