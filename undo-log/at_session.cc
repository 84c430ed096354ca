// AT mode: how a branch commits locally in phase 1 and is forgotten or
// undone in phase 2.
//
// THE BRANCH IS A LOCAL TRANSACTION
// An AtSession wraps one driver session. begin() opens a plain local
// transaction on it (Session::begin_local). Every statement of the branch is
// recognized first (sql/recognizer.h, cached per resource): a plain SELECT
// runs untouched, anything AT mode cannot undo is refused before it runs
// (the branch stays usable), and a change runs as
//
//   UPDATE   SELECT <images> FROM t WHERE <its WHERE> [ORDER BY] [LIMIT] FOR UPDATE
//            UPDATE t SET <its SET> WHERE <primary key> IN (<the keys read>)
//              PostgreSQL: ... RETURNING <images>   (the after image, same round trip)
//              MariaDB:    SELECT <images> ... FOR UPDATE by key (no UPDATE ... RETURNING)
//   DELETE   the same before image, then DELETE ... WHERE <primary key> IN (<keys>)
//   INSERT   the statement itself with RETURNING <images> appended: the rows
//            inserted, with keys from AUTO_INCREMENT, sequences, defaults
//   upsert   the rows it can meet are read first (by the primary key and the
//            unique keys, from the VALUES), then the statement with RETURNING;
//            a row it changed that was not read is refused (the branch fails)
//            rather than recorded as inserted, which is how Seata's rollback
//            of ON CONFLICT DO UPDATE deletes a row it only updated.
//
// Rewriting UPDATE and DELETE to the keys read makes the rows changed exactly
// the rows imaged, whatever the WHERE, ORDER BY and LIMIT say and whatever
// another transaction inserts meanwhile (PostgreSQL's READ COMMITTED has
// phantoms). The rows are row-locked by the FOR UPDATE, so they still match.
//
// Images are the exact texts of table_meta.h. The branch keeps, per row (by
// table and primary key), the image before its first change and after its
// last: undo_record.h's net record. Nothing is written for them until phase 1.
//
// GLOBAL ROW LOCKS
// A row changed by a global transaction that has not finished must not be
// changed by another (no lost update, no dirty write between global
// transactions). Design chosen: lock rows in a table of the branch's own
// database, dtx_global_lock, primary key (table, row key), inserted in the
// same local transaction as the change. So a lock exists exactly when the
// change is committed (no lock without the change, no change without the
// lock), is shared by every process on every machine that uses the database,
// survives any coordinator crash, and is deleted only by phase 2 or recovery
// (with the undo record, in one local transaction). The alternative, a lock
// service in a coordinator server, needs a server every writer reaches, a
// round trip to it per statement and per release, and a second durable store
// that must agree with the database after any crash (else a lock without its
// change, or a change without its lock). Measured (BENCHMARKS.md, AT
// section, 8 clients): the lock row costs one statement in a transaction that
// is open anyway — on MariaDB it shares a round trip with the after-image
// read, on PostgreSQL it is one round trip — and, with its delete in the
// batched forget, two of the four extra row writes that make AT's database
// CPU 1.04 ms per transaction against XA's 0.47 ms. A service would save
// those writes and add at least as many round trips, which on this machine
// cost about as much (the client's extra CPU is almost all in send/recv).
//
// Taking locks: after the change, the keys this branch does not hold yet are
// inserted with INSERT IGNORE (MariaDB) / ON CONFLICT DO NOTHING (PostgreSQL);
// fewer rows inserted than keys means another global transaction holds one.
// Who waits, and how, is chosen so the waiter never blocks the holder's
// release:
//   - A branch that has changed or locked nothing before this statement rolls
//     its local transaction back (releasing its row locks, and on MariaDB the
//     shared lock InnoDB puts on a duplicate key), waits until the holder's
//     lock rows are gone, starts again and reruns the statement.
//   - A branch already holding changes cannot start again. On MariaDB it asks
//     first, from a separate autocommit connection (a fresh, non-locking
//     read), whether another transaction holds any of the keys, and waits
//     before inserting; on PostgreSQL ON CONFLICT DO NOTHING takes no lock on
//     the holder's row, so it inserts, and waits for the keys it missed. It
//     keeps its own row locks meanwhile, so a holder that rolls back waits
//     for it: that wait ends when the waiter gives up.
// Waiting polls the lock table (every 1 ms, doubling to 50 ms): the holder is
// another process's transaction, so there is nothing to block on without
// holding a lock that would stop its release. The wait ends at the
// resource's lock_wait_timeout_ms or the transaction's deadline, whichever
// is first, with Errc::lock_conflict naming the table, the key and the
// global id holding it.
// SELECT ... FOR UPDATE in an AT branch runs, then checks the keys it read
// the same way, and waits for their global locks too.
//
// PHASE 1 (prepare): the undo record is inserted into dtx_undo_log (primary
// key gtrid, branch) and the local transaction commits. If a rollback
// reached this branch first (its phase 1 was delayed), that rollback left a
// marker row under the same key, so the insert fails and the late phase 1
// rolls back instead of committing changes nobody will undo.
//
// PHASE 2 commit deletes the record and the locks (the coordinator batches
// these off the caller's path, forget_branches()). Phase 2 rollback, in one
// local transaction on any session: lock the record (FOR UPDATE), compare
// every row with its after image inside the database (table_meta.h's
// `equals`: null-safe, no value converted), and only if all match (or are
// already back at their before image) write the before images back in
// reverse order of first change, delete the record and the locks, commit. A
// row that matches neither image is a dirty write: nothing is changed, the
// locks stay, and the answer (FinishOutcome::conflicting_changes) carries
// the before, after and current rows for the operator (docs/at-mode.md).
#include "undo-log/at_session.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <variant>

#include "base/logging.h"
#include "drivers/sql_words.h"
#include "sql/recognizer.h"
#include "undo-log/at_schema.h"
#include "undo-log/table_meta.h"
#include "undo-log/undo_record.h"

namespace dtx::undo {

namespace {

using Clock = std::chrono::steady_clock;

sql::Dialect dialect_of(const ResourceConfig& config) {
  return config.type == ResourceType::mysql ? sql::Dialect::mysql : sql::Dialect::postgres;
}

Param param_of(const std::optional<std::string>& v) { return v ? Param(*v) : Param(nullptr); }

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// The statement without what may follow its last token: whitespace,
// comments and ';' (so that RETURNING can be appended). Quoted strings and
// identifiers, and PostgreSQL's dollar quotes, are skipped whole.
std::string_view trimmed(std::string_view sql, sql::Dialect dialect) {
  const SqlDialect d = dialect == sql::Dialect::mysql ? SqlDialect::mysql : SqlDialect::postgres;
  std::size_t i = 0, end = 0;
  while (i < sql.size()) {
    const std::size_t after = sql_comment_end(sql, i, d);
    if (after != i) {
      i = after;
      continue;
    }
    const char c = sql[i];
    if (c == '\'' || c == '"' || (c == '`' && dialect == sql::Dialect::mysql)) {
      std::size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == '\\' && dialect == sql::Dialect::mysql && c != '`') {
          j += 2;
        } else if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) j += 2;  // a doubled quote
          else break;
        } else {
          ++j;
        }
      }
      i = end = std::min(j + 1, sql.size());
      continue;
    }
    if (c == '$' && dialect == sql::Dialect::postgres) {
      std::size_t j = i + 1;
      while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) ++j;
      if (j < sql.size() && sql[j] == '$') {
        const std::string_view tag = sql.substr(i, j - i + 1);
        const std::size_t close = sql.find(tag, j + 1);
        i = end = close == std::string_view::npos ? sql.size() : close + tag.size();
        continue;
      }
    }
    if (!is_sql_space(c) && c != ';') end = i + 1;
    ++i;
  }
  return sql.substr(0, end);
}

// ---- what every AT session of a resource shares ----

struct AtShared {
  AtShared(ResourceConfig c, ResourceManager::Connector d)
      : config(std::move(c)), dialect(dialect_of(config)), driver(std::move(d)), meta(dialect) {}

  ResourceConfig config;
  sql::Dialect dialect;
  ResourceManager::Connector driver;
  TableMetaCache meta;
  std::atomic<bool> schema_ok{false};

  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<const sql::Recognized>> recognized;
  std::vector<std::unique_ptr<Session>> probes;  // idle autocommit sessions for lock probes
  std::map<std::string, std::vector<std::vector<std::size_t>>> unique_keys;  // by table display name
  // Bumped, and `released` notified, whenever a session of this resource in
  // this process has deleted global locks (phase 2): lock waiters look again.
  std::uint64_t releases = 0;
  std::condition_variable released;

  void locks_released() {
    {
      std::lock_guard lock(mu);
      ++releases;
    }
    released.notify_all();
  }

  std::shared_ptr<const sql::Recognized> recognize(std::string_view sql) {
    {
      std::lock_guard lock(mu);
      if (auto it = recognized.find(std::string(sql)); it != recognized.end()) return it->second;
    }
    auto r = std::make_shared<const sql::Recognized>(sql::recognize(sql, dialect));
    std::lock_guard lock(mu);
    if (recognized.size() >= 4096) recognized.clear();  // a bound, not an LRU: statements repeat
    recognized.emplace(std::string(sql), r);
    return r;
  }

  std::unique_ptr<Session> take_probe() {
    {
      std::lock_guard lock(mu);
      if (!probes.empty()) {
        auto s = std::move(probes.back());
        probes.pop_back();
        return s;
      }
    }
    return driver();
  }
  void give_probe(std::unique_ptr<Session> s) {
    if (!s || s->broken() || s->state() != BranchState::none) return;
    std::lock_guard lock(mu);
    if (probes.size() < 4) probes.push_back(std::move(s));
  }
};

// Whether a VALUES item is the keyword DEFAULT.
bool is_default(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.size() != 7) return false;
  std::string up(text);
  for (auto& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return up == "DEFAULT";
}

// Keys per statement of dtx's own (images by key, lock inserts, changes by
// key): keeps every statement well under the protocols' 65535 placeholders.
constexpr std::size_t kKeysPerStatement = 1000;

// ---- SQL pieces built from table metadata ----

std::string images_list(const TableMeta& m) {
  std::vector<std::string> parts;
  for (const auto& c : m.columns) parts.push_back(c.image);
  return join(parts, ", ");
}

std::string join_list(const std::vector<std::string>& parts) { return join(parts, ", "); }
std::string join_and(const std::vector<std::string>& parts) { return join(parts, " AND "); }

// The images with every column reference qualified by `qualifier` (for a
// statement where another relation has the same column names). The image
// expressions reference their column as quote_identifier(name).
std::string qualified_images(const TableMeta& m, const std::string& qualifier) {
  std::vector<std::string> parts;
  for (const auto& c : m.columns) {
    const std::string q = quote_identifier(c.name, m.dialect);
    std::string img = c.image;
    for (std::size_t at = img.find(q); at != std::string::npos; at = img.find(q, at + qualifier.size() + 1 + q.size()))
      img.replace(at, q.size(), qualifier + "." + q);
    parts.push_back(img);
  }
  return join(parts, ", ");
}

std::string key_images_list(const TableMeta& m) {
  std::vector<std::string> parts;
  for (std::size_t k : m.primary_key) parts.push_back(m.columns[k].image);
  return join(parts, ", ");
}

// `(<key equals>) OR (...)` for `rows` keys; the parameters are appended to `params`.
std::string key_condition(const TableMeta& m, const std::vector<Image>& keys, std::vector<Param>& params) {
  if (m.primary_key.size() == 1 && keys.size() > 1) {
    // One IN list: planned as one index lookup of many values on both
    // databases (a long OR list costs far more to plan).
    const Column& c = m.columns[m.primary_key[0]];
    std::vector<std::string> values;
    for (const Image& key : keys) {
      values.push_back(c.value);
      params.push_back(param_of(key[0]));
    }
    return quote_identifier(c.name, m.dialect) + " IN (" + join(values, ", ") + ")";
  }
  std::vector<std::string> ors;
  for (const Image& key : keys) {
    std::vector<std::string> ands;
    for (std::size_t k = 0; k < m.primary_key.size(); ++k) {
      const Column& c = m.columns[m.primary_key[k]];
      ands.push_back(quote_identifier(c.name, m.dialect) + " = " + c.value);
      params.push_back(param_of(key[k]));
    }
    ors.push_back(ands.size() == 1 ? ands[0] : "(" + join(ands, " AND ") + ")");
  }
  return ors.size() == 1 ? ors[0] : "(" + join(ors, " OR ") + ")";
}

// The parameters of `fragments`, in order.
std::vector<Param> params_of(std::span<const Param> all, std::initializer_list<const sql::Fragment*> fragments) {
  std::vector<Param> out;
  for (const sql::Fragment* f : fragments)
    for (std::size_t i : f->params) out.push_back(all[i]);
  return out;
}

std::string key_condition(const TableMeta& m, const std::vector<Image>& keys, std::vector<Param>& params);

// The full images of the rows with `keys`, locked (FOR UPDATE), by key. Under
// the table's statement_prefix: only dtx's own expressions are in it.
std::map<Image, Image> images_by_key(Session& s, const TableMeta& m, const std::vector<Image>& keys);

Image image_of(const Row& row, std::size_t from, std::size_t count) {
  Image img;
  img.reserve(count);
  for (std::size_t i = 0; i < count; ++i) img.push_back(row.cell(from + i));
  return img;
}

std::map<Image, Image> images_by_key(Session& s, const TableMeta& m, const std::vector<Image>& keys) {
  std::map<Image, Image> out;
  for (std::size_t from = 0; from < keys.size(); from += kKeysPerStatement) {
    const std::vector<Image> chunk(keys.begin() + static_cast<long>(from),
                                   keys.begin() + static_cast<long>(std::min(keys.size(), from + kKeysPerStatement)));
    std::vector<Param> p;
    std::string cond = key_condition(m, chunk, p);
    Result r = s.execute(m.statement_prefix + "SELECT " + images_list(m) + " FROM " + m.qualified + " WHERE " +
                             cond + " FOR UPDATE", p);
    for (const auto& row : r) {
      Image img = image_of(row, 0, m.columns.size());
      Image key;
      for (std::size_t k : m.primary_key) key.push_back(img[k]);
      out.emplace(std::move(key), std::move(img));
    }
  }
  return out;
}

TableImage table_image(const TableMeta& m) {
  TableImage t;
  t.schema = m.schema;
  t.name = m.name;
  for (const auto& c : m.columns) t.columns.push_back(c.name);
  t.primary_key = m.primary_key;
  return t;
}

Image key_values(const TableMeta& m, const Image& image) {
  Image key;
  for (std::size_t k : m.primary_key) key.push_back(image[k]);
  return key;
}

// A row for an operator: column=value, with hex images (MariaDB strings and
// blobs) shown as their text when it is printable.
std::string render_image(const TableMeta& m, const TableImage& t, const std::optional<Image>& img) {
  if (!img) return "(no row)";
  auto readable = [](const std::string& hex) -> std::optional<std::string> {
    if (hex.size() % 2) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      const unsigned c = static_cast<unsigned>(std::stoul(hex.substr(i, 2), nullptr, 16));
      if (c < 0x20 || c == 0x7f) return std::nullopt;
      out += static_cast<char>(c);
    }
    return out;
  };
  std::string out = "(";
  for (std::size_t i = 0; i < t.columns.size() && i < img->size(); ++i) {
    if (i) out += ", ";
    const auto& v = (*img)[i];
    std::string shown = v ? "'" + *v + "'" : "NULL";
    auto idx = m.find(t.columns[i]);
    if (v && idx && m.columns[*idx].image.starts_with("HEX(")) {
      if (auto text = readable(*v)) shown = "'" + *text + "'";
      else shown = "x'" + *v + "'";
    }
    out += t.columns[i] + "=" + shown;
  }
  return out + ")";
}

Error at_error(Errc code, const ResourceConfig& config, const std::string& gtrid, std::string what,
               std::string hint = {}) {
  return Error({.code = code, .resource = config.name, .gtrid = gtrid, .hint = std::move(hint)},
               std::move(what));
}

// ---- the table names of the AT schema (undo-log/at_schema.h) ----
constexpr const char* kUndo = "dtx_undo_log";
constexpr const char* kLock = "dtx_global_lock";

// ---- phase 2 on any session: forget, or undo from the record ----

// Opens the local transaction of a phase 2 step (forget, undo) on `s`. On
// MariaDB it runs at READ COMMITTED: its deletes then lock only the rows
// they delete, not the gaps next to them, where the inserts of concurrent
// branches' records and locks go (at REPEATABLE READ those gap locks made
// them deadlock under load). A row locked by someone outside dtx must not
// hold a phase 2 step (or a recovery pass) forever: each statement may wait
// at most lock_wait_timeout_ms, and never less than 5 s (a busy server must
// not make a rollback give up); then the branch is left for the next
// attempt. The returned function re-arms that bound for the next statement.
std::function<void()> begin_phase2(Session& s, const Xid& xid, const ResourceConfig& config) {
  if (config.type == ResourceType::mysql) s.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", {});
  s.begin_local(xid);
  const auto bound = std::max<std::chrono::milliseconds>(config.lock_wait_timeout, std::chrono::seconds(5));
  auto bound_next = [&s, bound] { s.set_deadline(std::chrono::steady_clock::now() + bound); };
  bound_next();
  return bound_next;
}

// Deletes the records and locks of `xids` in the session's current
// transaction; returns the number of records deleted.
// Deletes lock rows by primary key (table name, row key), in chunks; with
// `commit`, the last statement goes with the COMMIT (also when there is none
// to delete).
void delete_lock_rows(Session& s, const std::vector<std::pair<std::string, std::string>>& rows, bool commit) {
  if (rows.empty()) {
    if (commit) s.commit_one_phase();
    return;
  }
  // Per table: `table_name = ? AND row_key IN (...)`, one range of the key
  // (a long OR of pairs is planned slowly).
  std::map<std::string, std::vector<std::string>> by_table;
  for (const auto& [table, key] : rows) by_table[table].push_back(key);
  std::vector<std::pair<std::string, std::vector<Param>>> statements;
  for (const auto& [table, keys] : by_table)
    for (std::size_t at = 0; at < keys.size(); at += kKeysPerStatement) {
      const std::size_t n = std::min(kKeysPerStatement, keys.size() - at);
      std::vector<Param> p{Param(table)};
      std::string marks;
      for (std::size_t i = 0; i < n; ++i) {
        marks += i ? ", ?" : "?";
        p.push_back(Param(keys[at + i]));
      }
      statements.emplace_back(std::string("DELETE FROM ") + kLock + " WHERE table_name = ? AND row_key IN (" + marks + ")",
                              std::move(p));
    }
  for (std::size_t i = 0; i < statements.size(); ++i) {
    if (commit && i + 1 == statements.size())
      s.commit_one_phase_with(statements[i].first, statements[i].second);
    else
      s.execute(statements[i].first, statements[i].second);
  }
}

// `commit`: the last statement goes with the COMMIT of the local
// transaction (Session::commit_one_phase_with), in one round trip.
std::uint64_t delete_record_and_locks(Session& s, std::span<const Xid> xids, sql::Dialect dialect,
                                      bool commit = false) {
  std::uint64_t deleted = 0;
  if (dialect == sql::Dialect::postgres) {
    // Two array parameters, whatever the batch's size: one small plan (a
    // long OR list is costed high enough on a churned table to be JIT-compiled,
    // which cost more CPU than the whole delete).
    std::string gtrids = "{", branches = "{";
    for (std::size_t i = 0; i < xids.size(); ++i) {
      if (i) gtrids += ",", branches += ",";
      gtrids += "\"" + xids[i].gtrid + "\"";    // gtrids and resource names have no quote or backslash
      branches += "\"" + xids[i].bqual + "\"";
    }
    gtrids += "}", branches += "}";
    std::vector<Param> p{Param(gtrids), Param(branches)};
    deleted += s.execute(std::string("DELETE FROM ") + kUndo +
                             " u USING unnest(?::text[], ?::text[]) AS x(g, b) WHERE u.gtrid = x.g AND u.branch = x.b",
                         p)
                   .affected_rows();
    const std::string locks = std::string("DELETE FROM ") + kLock +
                              " l USING unnest(?::text[], ?::text[]) AS x(g, b) WHERE l.gtrid = x.g AND l.branch = x.b";
    if (commit)
      s.commit_one_phase_with(locks, p);
    else
      s.execute(locks, p);
    return deleted;
  }
  // Two statements for the whole batch, in chunks that keep them short.
  constexpr std::size_t kChunk = 200;
  for (std::size_t from = 0; from < xids.size(); from += kChunk) {
    const std::size_t n = std::min(kChunk, xids.size() - from);
    std::vector<Param> p;
    std::string pairs;
    for (std::size_t i = 0; i < n; ++i) {
      pairs += i ? " OR (gtrid = ? AND branch = ?)" : "(gtrid = ? AND branch = ?)";
      p.push_back(Param(xids[from + i].gtrid));
      p.push_back(Param(xids[from + i].bqual));
    }
    deleted += s.execute(std::string("DELETE FROM ") + kUndo + " WHERE " + pairs, p).affected_rows();
    // The lock rows by their primary key: a DELETE by holder may scan the
    // table (small tables are scanned), and InnoDB then waits for every row
    // another transaction is inserting. The read locks nothing.
    Result held = s.execute(std::string("SELECT table_name, row_key FROM ") + kLock + " WHERE " + pairs, p);
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& row : held) rows.emplace_back(row.cell(0).value_or(""), row.cell(1).value_or(""));
    const bool last = from + n >= xids.size();
    delete_lock_rows(s, rows, commit && last);
  }
  return deleted;
}

struct RowCheck {
  bool exists = false;
  bool is_after = false;
  bool is_before = false;
};

// Where row `r` of the record is now: exists, equal to its after image,
// equal to its before image. FOR UPDATE: the row stays so until commit.
RowCheck check_row(Session& s, const TableMeta& m, const TableImage& t, const RowUndo& r, bool lock) {
  const Image& any = r.after ? *r.after : *r.before;
  std::vector<Param> params;
  auto image_equals = [&](const std::optional<Image>& img) -> std::string {
    if (!img) return "0 = 1";
    std::vector<std::string> ands;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      auto idx = m.find(t.columns[i]);
      if (!idx) continue;  // a column dropped since: nothing to compare
      const Column& c = m.columns[*idx];
      if (c.generated) continue;
      ands.push_back(c.equals);
      params.push_back(param_of((*img)[i]));
    }
    return ands.empty() ? "1 = 1" : join(ands, " AND ");
  };
  std::string after_eq = image_equals(r.after);
  std::string before_eq = image_equals(r.before);
  const char* yes = m.dialect == sql::Dialect::mysql ? "1" : "TRUE";
  const char* no = m.dialect == sql::Dialect::mysql ? "0" : "FALSE";
  std::string sql = m.statement_prefix + "SELECT CASE WHEN " + after_eq + " THEN " + yes + " ELSE " + no + " END, CASE WHEN " +
                    before_eq + " THEN " + yes + " ELSE " + no + " END FROM " + m.qualified + " WHERE " +
                    key_condition(m, {key_of(t, any)}, params) + (lock ? " FOR UPDATE" : "");
  Result res = s.execute(sql, params);
  RowCheck out;
  if (res.empty()) return out;
  out.exists = true;
  auto truthy = [](const std::optional<std::string>& v) { return v && (*v == "1" || *v == "t" || *v == "true"); };
  out.is_after = truthy(res[0].cell(0));
  out.is_before = truthy(res[0].cell(1));
  return out;
}

std::optional<Image> current_image(Session& s, const TableMeta& m, const TableImage& t, const RowUndo& r) {
  const Image& any = r.after ? *r.after : *r.before;
  std::vector<Param> params;
  const std::string cond = key_condition(m, {key_of(t, any)}, params);
  Result res =
      s.execute(m.statement_prefix + "SELECT " + images_list(m) + " FROM " + m.qualified + " WHERE " + cond, params);
  if (res.empty()) return std::nullopt;
  // In the record's column order.
  Image now;
  for (const auto& name : t.columns) {
    auto idx = m.find(name);
    now.push_back(idx ? res[0].cell(*idx) : std::nullopt);
  }
  return now;
}

// Writes row `r`'s before image back (deletes the row if it did not exist).
void restore_row(Session& s, const TableMeta& m, const TableImage& t, const RowUndo& r, bool exists_now) {
  const Image& any = r.after ? *r.after : *r.before;
  std::vector<Param> params;
  if (!r.before) {
    if (!exists_now) return;
    const std::string cond = key_condition(m, {key_of(t, any)}, params);
    s.execute("DELETE FROM " + m.qualified + " WHERE " + cond, params);
    return;
  }
  std::vector<std::string> names, values, sets;
  std::vector<Param> vparams, sparams;
  bool overriding = false;
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    auto idx = m.find(t.columns[i]);
    if (!idx) continue;
    const Column& c = m.columns[*idx];
    if (c.generated) continue;
    overriding = overriding || c.identity_always;
    names.push_back(quote_identifier(c.name, m.dialect));
    values.push_back(c.value);
    // The key stays as the WHERE finds it (a key change is refused), and a
    // GENERATED ALWAYS identity key cannot be SET at all.
    const bool key = std::find(m.primary_key.begin(), m.primary_key.end(), *idx) != m.primary_key.end();
    vparams.push_back(param_of((*r.before)[i]));
    if (!key) {
      sets.push_back(names.back() + " = " + c.value);
      sparams.push_back(vparams.back());
    }
  }
  if (exists_now) {
    if (sets.empty()) return;  // only key columns: nothing differs
    params = sparams;
    std::string cond = key_condition(m, {key_of(t, any)}, params);
    s.execute(m.statement_prefix + "UPDATE " + m.qualified + " SET " + join(sets, ", ") + " WHERE " + cond, params);
  } else {
    s.execute(m.statement_prefix + "INSERT INTO " + m.qualified + " (" + join(names, ", ") + ")" +
                  (overriding ? " OVERRIDING SYSTEM VALUE" : "") + " VALUES (" + join(values, ", ") + ")",
              vparams);
  }
}

}  // namespace

// Undoes branch `xid` on `s` (holding no transaction) from its record, in one
// local transaction. `force`: overwrite rows that changed since phase 1.
struct UndoOptions {
  bool force = false;         // overwrite rows changed since phase 1 (dtx rollback --force)
  bool inspect = false;       // only look (no locks, no change): conflicting_changes if dirty, else done
  bool leave_marker = true;   // no record: insert the rollback marker
};
FinishResult undo_branch(Session& s, const ResourceConfig& config, TableMetaCache& cache, const Xid& xid,
                         UndoOptions options);

namespace {

// ---- the session ----

class AtSession final : public Session {
 public:
  AtSession(std::shared_ptr<AtShared> shared, std::unique_ptr<Session> inner)
      : shared_(std::move(shared)), inner_(std::move(inner)) {}

  ~AtSession() override {
    if (inner_ && state_ == BranchState::active) {
      try {
        inner_->rollback();
      } catch (...) {
      }
    }
  }

  Result execute(std::string_view sql, std::span<const Param> params) override;
  void set_deadline(Clock::time_point deadline) override {
    deadline_ = deadline;
    inner_->set_deadline(deadline);
  }
  void begin(const Xid& xid) override;
  void begin_local(const Xid& xid) override { begin(xid); }
  void prepare() override;
  FinishResult commit() override;
  void commit_one_phase() override;
  void commit_one_phase_with(std::string_view statement, std::span<const Param> params) override;
  void rollback() override;
  BranchState state() const noexcept override { return state_; }
  const Xid* current_xid() const noexcept override { return xid_ ? &*xid_ : nullptr; }
  FinishResult commit_prepared(const Xid& xid) override;
  FinishResult rollback_prepared(const Xid& xid) override;
  FinishResult rollback_prepared_overwriting(const Xid& xid) override;
  std::vector<PreparedXid> recover() override;
  ServerInfo server_info() override { return inner_->server_info(); }
  std::vector<GlobalLock> global_locks();
  std::string describe_rollback(const Xid& xid) override {
    if (inner_->state() != BranchState::none) return {};
    ensure_schema();
    FinishResult r = undo_branch(*inner_, shared_->config, shared_->meta, xid, {.inspect = true});
    if (r.outcome == FinishOutcome::done || r.outcome == FinishOutcome::not_found) return {};
    return r.error ? r.error->what() : to_string(r.outcome);
  }
  bool broken() const noexcept override { return broken_ || inner_->broken(); }

  void forget(std::span<const Xid> xids);
  void release_prepared() noexcept {
    if (state_ != BranchState::prepared) return;
    state_ = BranchState::none;
    xid_.reset();
  }

 private:
  struct Tracked {
    std::shared_ptr<const TableMeta> meta;
    std::size_t record_table = 0;                  // index into record_.tables
    std::map<std::string, std::size_t> rows;       // lock key -> index into record_.rows
  };
  // One change's rows: key images with their before and after images.
  struct Changed {
    Image key;
    std::optional<Image> before;
    std::optional<Image> after;
  };

  void ensure_schema();
  void commit_alone(std::optional<std::string_view> last, std::span<const Param> params);
  const std::string& gtrid() const { return xid_->gtrid; }
  Error error(Errc code, std::string what, std::string hint = {}) const {
    return at_error(code, shared_->config, xid_ ? xid_->gtrid : std::string(), std::move(what),
                    std::move(hint));
  }
  std::shared_ptr<const TableMeta> table(const sql::TableRef& ref);
  Result run_change(const sql::Statement& st, std::string_view sql, std::span<const Param> params);
  Result change_once(const sql::Statement& st, const TableMeta& m, std::string_view sql,
                     std::span<const Param> params, std::vector<Changed>& changed);
  Result select_for_update(const sql::Statement& st, const TableMeta& m, std::string_view sql,
                           std::span<const Param> params, std::vector<Changed>& read);
  // Takes the global locks of `keys` (lock keys) of table `m`; false when
  // another transaction holds one and the branch had to restart.
  bool take_locks(const TableMeta& m, const std::vector<std::string>& keys, bool insert);
  // Waits until no other transaction holds any of `keys`; throws lock_conflict at the bound.
  void wait_for_locks(const TableMeta& m, const std::vector<std::string>& keys, Clock::time_point until);
  // Holders other than this transaction of `keys`, read on a fresh autocommit session.
  std::vector<std::pair<std::string, std::string>> holders(const TableMeta& m,
                                                           const std::vector<std::string>& keys);
  void restart_local();
  // Gives each changed row its after image from `after_rows` (by key); an
  // updated row not among them is an error (its key changed under it).
  void attach_after_images(const TableMeta& m, std::vector<Changed>& changed, std::vector<Image> after_rows) const;
  // The INSERT of this branch's lock rows for `keys` of `m`, ignoring keys
  // already locked (by anyone): its row count says how many it took.
  BatchStatement lock_insert(const TableMeta& m, const std::vector<std::string>& keys) const;
  // lock_insert() run in chunks; the number of locks taken.
  std::uint64_t insert_locks(const TableMeta& m, const std::vector<std::string>& keys);
  // The UNIQUE keys other than the primary key (an upsert meets existing rows
  // through any of them), read once per table.
  std::vector<std::vector<std::size_t>> unique_keys(const TableMeta& m);
  void record_rows(const std::shared_ptr<const TableMeta>& meta, std::vector<Changed>& changed);
  void reset_branch();

  std::shared_ptr<AtShared> shared_;
  std::unique_ptr<Session> inner_;
  BranchState state_ = BranchState::none;
  std::optional<Xid> xid_;
  std::optional<Clock::time_point> deadline_;
  bool broken_ = false;
  bool holds_rows_ = false;    // changed or FOR UPDATE-locked something: cannot restart
  bool after_pending_ = false; // MariaDB UPDATE: after images to read with the lock insert
  bool failed_ = false;        // a change failed half-way: only rollback remains
  UndoRecord record_;
  std::vector<Tracked> tables_;
  std::set<std::pair<std::string, std::string>> held_;  // (table display name, lock key) this branch holds
};

void AtSession::ensure_schema() {
  if (shared_->schema_ok.load(std::memory_order_acquire)) return;
  ensure_at_schema(*inner_, shared_->dialect, shared_->config.name);
  shared_->schema_ok.store(true, std::memory_order_release);
}

void AtSession::reset_branch() {
  record_ = UndoRecord{};
  tables_.clear();
  held_.clear();
  holds_rows_ = false;
  failed_ = false;
}

void AtSession::begin(const Xid& xid) {
  if (state_ != BranchState::none)
    throw at_error(Errc::usage, shared_->config, xid.gtrid, "the session already runs a branch");
  ensure_schema();
  inner_->begin_local(xid);
  xid_ = xid;
  state_ = BranchState::active;
  reset_branch();
  record_.gtrid = xid.gtrid;
  record_.branch = xid.bqual;
}

std::shared_ptr<const TableMeta> AtSession::table(const sql::TableRef& ref) {
  std::shared_ptr<const TableMeta> m = shared_->meta.get(*inner_, ref);
  if (!m->statement_prefix.empty())
    for (std::size_t k : m->primary_key)
      if (m->columns[k].type.starts_with("timestamp"))
        throw error(Errc::usage,
                    "table " + m->display_name() + " has a TIMESTAMP column in its primary key, which AT mode "
                    "cannot image independently of the session's time zone on MariaDB",
                    "set mode = \"xa\" for resource '" + shared_->config.name + "' to use this table");
  return m;
}

Result AtSession::execute(std::string_view sql, std::span<const Param> params) {
  if (state_ == BranchState::none) return inner_->execute(sql, params);
  if (state_ == BranchState::prepared)
    throw error(Errc::usage, "the branch is prepared (committed locally in phase 1); no statement can run in it");
  if (failed_)
    throw error(Errc::usage, "a statement of this AT branch failed; it can only be rolled back");
  auto recognized = shared_->recognize(sql);
  if (const auto* refusal = std::get_if<sql::Refusal>(recognized.get()))
    throw error(Errc::usage, refusal->to_message() + ": " + std::string(sql.substr(0, 120)),
                "set mode = \"xa\" for resource '" + shared_->config.name + "' to run it");
  const auto& st = std::get<sql::Statement>(*recognized);
  if (st.kind == sql::Kind::select) return inner_->execute(sql, params);
  if (st.param_count != params.size())
    throw error(Errc::usage, "statement has " + std::to_string(st.param_count) + " placeholders but " +
                                 std::to_string(params.size()) + " parameters were given");
  // What needs the table's metadata is refused before anything runs too
  // (no primary key, a type without an exact image, a key changed); the
  // branch stays usable.
  std::shared_ptr<const TableMeta> meta;
  try {
    meta = table(st.table);
  } catch (const Error& e) {
    if (e.code() != Errc::usage && e.code() != Errc::sql) failed_ = true;
    throw e.with_context(gtrid(), shared_->config.name);
  }
  if (st.returning && (st.kind == sql::Kind::update || st.kind == sql::Kind::delete_))
    throw error(Errc::usage,
                "UPDATE / DELETE ... RETURNING is not supported in AT mode (the statement is rewritten by primary "
                "key to take its row images): " + std::string(sql.substr(0, 120)),
                "run a SELECT ... FOR UPDATE for the values, or set mode = \"xa\" for resource '" +
                    shared_->config.name + "'");
  for (const auto& a : st.assignments) {
    auto idx = meta->find(a.column);
    if (idx && std::find(meta->primary_key.begin(), meta->primary_key.end(), *idx) != meta->primary_key.end())
      throw error(Errc::usage,
                  "a statement that changes a primary key column (" + a.column + " of " + meta->display_name() +
                      ") is not supported in AT mode: the undo record and the global lock follow rows by key",
                  "set mode = \"xa\" for resource '" + shared_->config.name + "' to run it");
  }
  try {
    return run_change(st, sql, params);
  } catch (const Error& e) {
    // The driver session refuses everything after a failed statement; keep
    // the branch's own view in step.
    failed_ = true;
    if (e.code() == Errc::sql) shared_->meta.invalidate(st.table);  // the table may have changed shape
    throw;
  }
}

std::vector<std::vector<std::size_t>> AtSession::unique_keys(const TableMeta& m) {
  {
    std::lock_guard lock(shared_->mu);
    if (auto it = shared_->unique_keys.find(m.display_name()); it != shared_->unique_keys.end()) return it->second;
  }
  const bool my = m.dialect == sql::Dialect::mysql;
  const std::string q =
      my ? "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND "
           "TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' ORDER BY INDEX_NAME, SEQ_IN_INDEX"
         : "SELECT i.indexrelid::text, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
           "JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY "
           "AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
           "WHERE n.nspname = ? AND c.relname = ? AND i.indisunique AND NOT i.indisprimary "
           "AND i.indpred IS NULL ORDER BY 1, k.ord";
  Result r = inner_->execute(q, std::vector<Param>{Param(m.schema), Param(m.name)});
  std::vector<std::vector<std::size_t>> keys;
  std::string current;
  for (const auto& row : r) {
    const std::string index = row.cell(0).value_or("");
    if (keys.empty() || index != current) keys.emplace_back();
    current = index;
    auto idx = m.find(row.cell(1).value_or(""));
    if (idx) keys.back().push_back(*idx);
  }
  std::lock_guard lock(shared_->mu);
  shared_->unique_keys[m.display_name()] = keys;
  return keys;
}

void AtSession::attach_after_images(const TableMeta& m, std::vector<Changed>& changed,
                                    std::vector<Image> after_rows) const {
  std::map<Image, std::size_t> by_key;
  for (std::size_t i = 0; i < changed.size(); ++i) by_key.emplace(changed[i].key, i);
  for (auto& a : after_rows)
    if (auto it = by_key.find(key_values(m, a)); it != by_key.end()) changed[it->second].after = std::move(a);
  for (const auto& c : changed)
    if (!c.after)
      throw error(Errc::sql, "a row of " + m.display_name() + " updated by this branch could not be read back",
                  "a primary key changed by the statement or a trigger is not supported in AT mode");
}

void AtSession::restart_local() {
  const Xid xid = *xid_;
  inner_->rollback();
  inner_->begin_local(xid);
  if (deadline_) inner_->set_deadline(*deadline_);
}

Result AtSession::run_change(const sql::Statement& st, std::string_view sql, std::span<const Param> params) {
  for (;;) {
    std::shared_ptr<const TableMeta> meta = table(st.table);
    const TableMeta& m = *meta;
    std::vector<Changed> changed;
    const bool locking_read = st.kind == sql::Kind::select_for_update;
    Result result = locking_read ? select_for_update(st, m, sql, params, changed)
                                 : change_once(st, m, sql, params, changed);
    std::vector<std::string> keys;
    const std::string table_name = m.display_name();
    for (const auto& c : changed) {
      std::string k = lock_key(c.key, table_name);
      if (!held_.count({table_name, k})) keys.push_back(std::move(k));
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    if (after_pending_) {
      // MariaDB UPDATE, nothing held before it: the lock insert and the
      // after images in one round trip. A missing lock restarts as in
      // take_locks(); the after images are then not needed.
      after_pending_ = false;
      std::vector<BatchStatement> batch;
      if (!keys.empty()) batch.push_back(lock_insert(m, keys));
      std::vector<Image> row_keys;
      for (const auto& c : changed) row_keys.push_back(c.key);
      BatchStatement after;
      const std::string cond = key_condition(m, row_keys, after.params);
      after.sql = m.statement_prefix + "SELECT " + images_list(m) + " FROM " + m.qualified + " WHERE " + cond +
                  " FOR UPDATE";
      batch.push_back(std::move(after));
      std::vector<Result> results = inner_->execute_batch(batch);
      if (!keys.empty() && results.front().affected_rows() != keys.size()) {
        const Clock::time_point bound = std::min(Clock::now() + shared_->config.lock_wait_timeout,
                                                 deadline_.value_or(Clock::time_point::max()));
        restart_local();
        wait_for_locks(m, keys, bound);
        continue;
      }
      for (const auto& k : keys) held_.insert({table_name, k});
      std::vector<Image> after_rows;
      for (const auto& row : results.back()) after_rows.push_back(image_of(row, 0, m.columns.size()));
      attach_after_images(m, changed, std::move(after_rows));
      record_rows(meta, changed);
      holds_rows_ = holds_rows_ || !changed.empty();
      return result;
    }
    if (!take_locks(m, keys, !locking_read)) continue;  // restarted: run the statement again
    if (!locking_read) record_rows(meta, changed);
    holds_rows_ = holds_rows_ || !changed.empty();
    return result;
  }
}

BatchStatement AtSession::lock_insert(const TableMeta& m, const std::vector<std::string>& keys) const {
  BatchStatement s;
  std::vector<std::string> rows;
  const std::string table_name = m.display_name();
  for (const auto& k : keys) {
    rows.push_back("(?, ?, ?, ?)");
    s.params.insert(s.params.end(), {Param(table_name), Param(k), Param(xid_->gtrid), Param(xid_->bqual)});
  }
  const bool my = shared_->dialect == sql::Dialect::mysql;
  s.sql = std::string(my ? "INSERT IGNORE INTO " : "INSERT INTO ") + kLock +
          " (table_name, row_key, gtrid, branch) VALUES " + join(rows, ", ") + (my ? "" : " ON CONFLICT DO NOTHING");
  return s;
}

std::uint64_t AtSession::insert_locks(const TableMeta& m, const std::vector<std::string>& keys) {
  std::uint64_t taken = 0;
  for (std::size_t at = 0; at < keys.size(); at += kKeysPerStatement) {
    const std::vector<std::string> chunk(keys.begin() + static_cast<long>(at),
                                         keys.begin() + static_cast<long>(std::min(keys.size(), at + kKeysPerStatement)));
    BatchStatement ins = lock_insert(m, chunk);
    taken += inner_->execute(ins.sql, ins.params).affected_rows();
  }
  return taken;
}

bool AtSession::take_locks(const TableMeta& m, const std::vector<std::string>& keys, bool insert) {
  if (keys.empty()) return true;
  const Clock::time_point bound =
      std::min(Clock::now() + shared_->config.lock_wait_timeout, deadline_.value_or(Clock::time_point::max()));
  const std::string table_name = m.display_name();
  if (!holds_rows_) {
    // Nothing to keep: on a conflict, give everything back and wait without it.
    bool free = true;
    if (insert) {
      free = insert_locks(m, keys) == keys.size();
    } else {
      free = holders(m, keys).empty();
    }
    if (free) {
      if (insert)
        for (const auto& k : keys) held_.insert({table_name, k});
      return true;
    }
    restart_local();
    wait_for_locks(m, keys, bound);
    return false;
  }
  // Holding changes: wait first (a fresh read that locks nothing), then insert.
  wait_for_locks(m, keys, bound);
  if (!insert) return true;
  if (insert_locks(m, keys) != keys.size()) {
    auto h = holders(m, keys);
    throw error(Errc::lock_conflict,
                "row " + (h.empty() ? keys.front() : h.front().first) + " of table " + table_name +
                    " was locked by global transaction " + (h.empty() ? "(gone)" : h.front().second) +
                    " while this branch waited for it",
                "retry the transaction");
  }
  for (const auto& k : keys) held_.insert({table_name, k});
  return true;
}

std::vector<std::pair<std::string, std::string>> AtSession::holders(const TableMeta& m,
                                                                    const std::vector<std::string>& keys) {
  std::unique_ptr<Session> probe = shared_->take_probe();
  std::vector<Param> p{Param(m.display_name()), Param(gtrid())};
  std::vector<std::string> marks;
  for (const auto& k : keys) {
    marks.push_back("?");
    p.push_back(Param(k));
  }
  Result r = probe->execute(std::string("SELECT row_key, gtrid FROM ") + kLock +
                                " WHERE table_name = ? AND gtrid <> ? AND row_key IN (" + join(marks, ", ") + ")",
                            p);
  shared_->give_probe(std::move(probe));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : r) out.emplace_back(row.cell(0).value_or(""), row.cell(1).value_or(""));
  return out;
}

void AtSession::wait_for_locks(const TableMeta& m, const std::vector<std::string>& keys, Clock::time_point until) {
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    auto h = holders(m, keys);
    if (h.empty()) return;
    if (Clock::now() >= until) {
      const bool deadline = deadline_ && until >= *deadline_;
      throw error(deadline ? Errc::timeout : Errc::lock_conflict,
                  "row " + h.front().first + " of table " + m.display_name() +
                      " is locked by global transaction " + h.front().second + "; waited " +
                      (deadline ? "until the transaction's deadline" :
                                  std::to_string(shared_->config.lock_wait_timeout.count()) + " ms"),
                  "the holder is a global transaction in AT mode that has not finished; retry, or "
                  "see `dtx in-doubt` if it stays (raise lock_wait_timeout_ms of resource '" +
                      shared_->config.name + "' if waits this long are expected)");
    }
    // Wait for this process to release locks of this resource (the holder is
    // often here), else poll: the holder may be another process's (see the top).
    {
      std::unique_lock lock(shared_->mu);
      const std::uint64_t seen = shared_->releases;
      shared_->released.wait_for(lock, std::min<Clock::duration>(pause, until - Clock::now()),
                                 [&] { return shared_->releases != seen; });
    }
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Result AtSession::select_for_update(const sql::Statement& st, const TableMeta& m, std::string_view sql,
                                    std::span<const Param> params, std::vector<Changed>& read) {
  Result result = inner_->execute(sql, params);
  std::vector<std::string> key_images;
  for (std::size_t k : m.primary_key) key_images.push_back(m.columns[k].image);
  std::string from = m.qualified;
  if (!st.table.alias.empty()) from += " AS " + quote_identifier(st.table.alias, m.dialect);
  std::string q = "SELECT " + join(key_images, ", ") + " FROM " + from;
  if (!st.where.empty()) q += " WHERE " + st.where.text;
  Result keys = inner_->execute(q, params_of(params, {&st.where}));
  for (const auto& row : keys) read.push_back({image_of(row, 0, m.primary_key.size()), std::nullopt, std::nullopt});
  return result;
}

Result AtSession::change_once(const sql::Statement& st, const TableMeta& m, std::string_view sql,
                              std::span<const Param> params, std::vector<Changed>& changed) {
  const std::size_t ncols = m.columns.size();
  const bool pg = m.dialect == sql::Dialect::postgres;
  std::string from = m.qualified;
  if (!st.table.alias.empty()) from += " AS " + quote_identifier(st.table.alias, m.dialect);

  // Tables whose images need a session setting (statement_prefix) are read
  // in two steps: the statement's own text (WHERE, VALUES) must run under the
  // user's settings, so it selects only the keys, and the images follow by key.
  const bool two_step = !m.statement_prefix.empty();
  auto full_images = [&](std::vector<Image> keys) {
    std::map<Image, Image> by_key = images_by_key(*inner_, m, keys);
    std::vector<Image> out;
    for (const auto& k : keys)
      if (auto it = by_key.find(k); it != by_key.end()) out.push_back(it->second);
    return out;
  };
  if (pg && (st.kind == sql::Kind::update || st.kind == sql::Kind::delete_)) {
    // One statement: the rows chosen and locked by a sub-select with the
    // statement's WHERE (their before images), changed by key, and RETURNING
    // the before images from the sub-select and the after images from the
    // table. The sub-select's FOR UPDATE makes the rows it read the rows changed.
    const std::string target = st.table.alias.empty() ? quote_identifier(m.name, m.dialect)
                                                       : quote_identifier(st.table.alias, m.dialect);
    std::vector<std::string> before_cols, join;
    for (std::size_t i = 0; i < ncols; ++i) before_cols.push_back(m.columns[i].image + " AS dtx_b" + std::to_string(i));
    for (std::size_t k : m.primary_key) {
      // The key itself (typed) for the join; its image is among the dtx_b*.
      before_cols.push_back(quote_identifier(m.columns[k].name, m.dialect) + " AS dtx_k" + std::to_string(k));
      join.push_back(target + "." + quote_identifier(m.columns[k].name, m.dialect) + " = dtx_b.dtx_k" +
                     std::to_string(k));
    }
    std::string sub = "(SELECT " + join_list(before_cols) + " FROM " + from +
                      (st.where.empty() ? "" : " WHERE " + st.where.text) + " FOR UPDATE) AS dtx_b";
    std::vector<std::string> b_refs, a_refs;
    for (std::size_t i = 0; i < ncols; ++i) b_refs.push_back("dtx_b.dtx_b" + std::to_string(i));
    for (const auto& c : m.columns) {
      // The after image from the target row (its alias or name qualifies it).
      a_refs.push_back(c.image);
    }
    std::vector<Param> p;
    std::string q;
    if (st.kind == sql::Kind::delete_) {
      q = "DELETE FROM " + from + " USING " + sub + " WHERE " + join_and(join) + " RETURNING " + join_list(b_refs);
      p = params_of(params, {&st.where});
    } else {
      std::vector<std::string> sets;
      for (const auto& a : st.assignments) {
        sets.push_back(quote_identifier(a.column, m.dialect) + " = " + a.value.text);
        for (std::size_t i : a.value.params) p.push_back(params[i]);
      }
      for (std::size_t i : st.where.params) p.push_back(params[i]);
      q = "UPDATE " + from + " SET " + join_list(sets) + " FROM " + sub + " WHERE " + join_and(join) +
          " RETURNING " + join_list(b_refs) + ", " + qualified_images(m, target);
    }
    Result r = inner_->execute(q, p);
    for (const auto& row : r) {
      Image before = image_of(row, 0, ncols);
      std::optional<Image> after;
      if (st.kind == sql::Kind::update) after = image_of(row, ncols, ncols);
      changed.push_back({key_values(m, before), std::move(before), std::move(after)});
    }
    return Result({}, {}, r.size());
  }
  if (st.kind == sql::Kind::update || st.kind == sql::Kind::delete_) {
    std::string q = "SELECT " + (two_step ? key_images_list(m) : images_list(m)) + " FROM " + from;
    if (!st.where.empty()) q += " WHERE " + st.where.text;
    if (!st.order_by.empty()) q += " ORDER BY " + st.order_by.text;
    if (!st.limit.empty()) q += " LIMIT " + st.limit.text;
    q += " FOR UPDATE";
    Result before = inner_->execute(q, params_of(params, {&st.where, &st.order_by, &st.limit}));
    if (before.empty()) return Result({}, {}, 0);
    std::vector<Image> keys;
    if (two_step) {
      for (const auto& row : before) keys.push_back(image_of(row, 0, m.primary_key.size()));
      for (auto& img : full_images(keys)) changed.push_back({key_values(m, img), std::move(img), std::nullopt});
    } else {
      for (const auto& row : before) {
        Image img = image_of(row, 0, ncols);
        keys.push_back(key_values(m, img));
        changed.push_back({keys.back(), std::move(img), std::nullopt});
      }
    }
    // By key, in chunks (each statement's placeholders bounded).
    auto chunks = [&](auto&& run) {
      for (std::size_t at = 0; at < keys.size(); at += kKeysPerStatement)
        run(std::vector<Image>(keys.begin() + static_cast<long>(at),
                               keys.begin() + static_cast<long>(std::min(keys.size(), at + kKeysPerStatement))));
    };
    if (st.kind == sql::Kind::delete_) {
      std::uint64_t deleted = 0;
      chunks([&](const std::vector<Image>& chunk) {
        std::vector<Param> p;
        std::string cond = key_condition(m, chunk, p);
        deleted += inner_->execute("DELETE FROM " + m.qualified + " WHERE " + cond, p).affected_rows();
      });
      return Result({}, {}, deleted);
    }
    std::vector<std::string> sets;
    std::vector<Param> set_params;
    for (const auto& a : st.assignments) {
      sets.push_back(quote_identifier(a.column, m.dialect) + " = " + a.value.text);
      for (std::size_t i : a.value.params) set_params.push_back(params[i]);
    }
    std::vector<Image> after_rows;
    std::uint64_t affected = 0;
    {
      chunks([&](const std::vector<Image>& chunk) {
        std::vector<Param> p = set_params;
        std::string cond = key_condition(m, chunk, p);
        affected += inner_->execute("UPDATE " + from + " SET " + join(sets, ", ") + " WHERE " + cond, p).affected_rows();
      });
      if (!holds_rows_ && keys.size() <= kKeysPerStatement) {
        // The after images go with the lock insert, in one round trip (run_change).
        after_pending_ = true;
        return Result({}, {}, affected);
      }
      after_rows = full_images(keys);
    }
    attach_after_images(m, changed, std::move(after_rows));
    return Result({}, {}, affected);
  }

  // INSERT, and upserts.
  std::map<Image, Image> before_rows;  // key -> image, rows the upsert may meet
  if (st.upsert == sql::Upsert::on_duplicate_key_update || st.upsert == sql::Upsert::on_conflict_do_update) {
    // Columns of each VALUES row, by table column index.
    std::vector<std::size_t> col_index;
    if (st.columns.empty()) {
      for (std::size_t i = 0; i < ncols; ++i) col_index.push_back(i);
    } else {
      for (const auto& name : st.columns) {
        auto idx = m.find(name);
        if (!idx) throw error(Errc::sql, "column " + name + " is not in table " + m.display_name());
        col_index.push_back(*idx);
      }
    }
    const bool my = m.dialect == sql::Dialect::mysql;
    std::vector<std::vector<std::size_t>> unique_sets;
    if (st.upsert == sql::Upsert::on_conflict_do_update && !st.conflict_target.empty()) {
      std::vector<std::size_t> target;
      for (const auto& name : st.conflict_target) {
        auto idx = m.find(name);
        if (!idx) throw error(Errc::sql, "conflict column " + name + " is not in table " + m.display_name());
        target.push_back(*idx);
      }
      unique_sets.push_back(target);
    } else {
      unique_sets.push_back(m.primary_key);
      for (const auto& u : unique_keys(m)) unique_sets.push_back(u);
    }
    std::vector<std::string> ors;
    std::vector<Param> p;
    for (const auto& values : st.rows) {
      for (const auto& key : unique_sets) {
        std::vector<std::string> ands;
        bool complete = true;
        for (std::size_t k : key) {
          auto pos = std::find(col_index.begin(), col_index.end(), k) - col_index.begin();
          if (static_cast<std::size_t>(pos) >= values.size() || is_default(values[pos].text)) {
            // A key column not given (or DEFAULT): an AUTO_INCREMENT / serial /
            // identity value is new, so this key cannot meet a row. Another
            // default can: MariaDB reads it with DEFAULT(col) (NULL meets
            // nothing); on PostgreSQL the key is left out and the check after
            // the statement refuses a row updated without a before image.
            if (m.columns[k].auto_increment || !my) {
              complete = false;
              break;
            }
            const std::string col = quote_identifier(m.columns[k].name, m.dialect);
            ands.push_back(col + " = DEFAULT(" + col + ")");
            continue;
          }
          ands.push_back(quote_identifier(m.columns[k].name, m.dialect) + " = " + values[pos].text);
          for (std::size_t i : values[pos].params) p.push_back(params[i]);
        }
        if (complete) ors.push_back("(" + join(ands, " AND ") + ")");
      }
    }
    if (!ors.empty()) {
      Result before = inner_->execute("SELECT " + (two_step ? key_images_list(m) : images_list(m)) + " FROM " +
                                          m.qualified + " WHERE " + join(ors, " OR ") + " FOR UPDATE", p);
      if (two_step) {
        std::vector<Image> keys;
        for (const auto& row : before) keys.push_back(image_of(row, 0, m.primary_key.size()));
        for (auto& img : full_images(keys)) before_rows.emplace(key_values(m, img), std::move(img));
      } else {
        for (const auto& row : before) {
          Image img = image_of(row, 0, ncols);
          before_rows.emplace(key_values(m, img), img);
        }
      }
    }
  }
  std::string stmt = std::string(trimmed(sql, m.dialect));
  const std::size_t nimg = two_step ? m.primary_key.size() : ncols;
  stmt += st.returning ? ",\n" : "\nRETURNING ";
  stmt += two_step ? key_images_list(m) : images_list(m);
  const bool flag = pg && st.upsert == sql::Upsert::on_conflict_do_update;
  if (flag) stmt += ", (xmax = 0)";
  Result r = inner_->execute(stmt, params);
  const std::size_t extra = nimg + (flag ? 1 : 0);
  const std::size_t user_cols = r.columns().size() >= extra ? r.columns().size() - extra : 0;
  std::map<Image, Image> returned;  // two-step: the images, read by key after the statement
  if (two_step) {
    std::vector<Image> keys;
    for (const auto& row : r) keys.push_back(image_of(row, user_cols, nimg));
    returned = images_by_key(*inner_, m, keys);
  }
  std::vector<Row> user_rows;
  for (const auto& row : r) {
    Image after = two_step ? returned[image_of(row, user_cols, nimg)] : image_of(row, user_cols, ncols);
    Image key = key_values(m, after);
    std::optional<Image> before;
    if (auto it = before_rows.find(key); it != before_rows.end()) before = it->second;
    if (!before && pg && st.upsert == sql::Upsert::on_conflict_do_update) {
      const auto& inserted = row.cell(user_cols + nimg);
      if (!(inserted && (*inserted == "t" || *inserted == "true" || *inserted == "1")))
        throw error(Errc::sql, "the upsert updated a row of " + m.display_name() +
                                   " that was not read before it (a row inserted meanwhile); nothing of it can be "
                                   "undone exactly, so the statement failed",
                    "retry the transaction");
    }
    changed.push_back({key, std::move(before), std::move(after)});
    if (st.returning) {
      std::vector<std::optional<std::string>> cells;
      for (std::size_t i = 0; i < user_cols; ++i) cells.push_back(row.cell(i));
      user_rows.emplace_back(std::move(cells));
    }
  }
  if (st.returning) {
    std::vector<std::string> names(r.columns().begin(), r.columns().begin() + static_cast<long>(user_cols));
    return Result(std::move(names), std::move(user_rows), r.size());
  }
  if (st.upsert == sql::Upsert::on_duplicate_key_update) {
    // MariaDB's count for ON DUPLICATE KEY UPDATE: 1 per row inserted, 2 per
    // row updated, 0 per row met and left as it was.
    std::uint64_t affected = 0;
    for (const auto& c : changed) affected += !c.before ? 1 : (c.before != c.after ? 2 : 0);
    return Result({}, {}, affected);
  }
  return Result({}, {}, r.size());
}

void AtSession::record_rows(const std::shared_ptr<const TableMeta>& meta, std::vector<Changed>& changed) {
  if (changed.empty()) return;
  Tracked* t = nullptr;
  for (auto& x : tables_)
    if (x.meta->display_name() == meta->display_name()) t = &x;
  if (!t) {
    record_.tables.push_back(table_image(*meta));
    tables_.push_back({meta, record_.tables.size() - 1, {}});
    t = &tables_.back();
  }
  const std::string table_name = meta->display_name();
  for (auto& c : changed) {
    std::string k = lock_key(c.key, table_name);
    auto it = t->rows.find(k);
    if (it == t->rows.end()) {
      record_.rows.push_back({t->record_table, std::move(c.before), std::move(c.after)});
      t->rows.emplace(std::move(k), record_.rows.size() - 1);
    } else {
      record_.rows[it->second].after = std::move(c.after);  // the first before image stays
    }
  }
}

void AtSession::prepare() {
  if (state_ != BranchState::active)
    throw error(Errc::usage, "cannot prepare: no active AT branch");
  if (failed_) {
    rollback();
    throw error(Errc::rolled_back, "a statement of the AT branch failed; the branch was rolled back");
  }
  // Rows whose before and after images are both absent (inserted, then
  // deleted) need no undo.
  std::erase_if(record_.rows, [](const RowUndo& r) { return !r.before && !r.after; });
  try {
    if (!record_.rows.empty() || !held_.empty()) {
      // The record and the COMMIT in one round trip.
      std::vector<Param> p{Param(gtrid()), Param(xid_->bqual), Param(encode(record_))};
      inner_->commit_one_phase_with(std::string("INSERT INTO ") + kUndo + " (gtrid, branch, kind, record) VALUES (?, ?, 0, ?)",
                                p);
    } else {
      inner_->commit_one_phase();
    }
  } catch (const Error& e) {
    if (e.code() == Errc::unavailable) {
      broken_ = true;
      throw;  // the commit may or may not have happened: recovery decides from the record
    }
    try {
      if (inner_->state() != BranchState::none) inner_->rollback();
    } catch (...) {
    }
    state_ = BranchState::none;
    xid_.reset();
    if (e.sqlstate() == "23000" || e.sqlstate() == "23505")
      throw at_error(Errc::rolled_back, shared_->config, e.gtrid(),
                     "phase 1 of the AT branch came after a rollback of its global transaction "
                     "(a marker is in dtx_undo_log); the branch was rolled back");
    throw;
  }
  state_ = BranchState::prepared;
}

FinishResult AtSession::commit() {
  if (state_ != BranchState::prepared)
    throw error(Errc::usage, "cannot commit: the AT branch is not prepared");
  const Xid xid = *xid_;
  FinishResult r = commit_prepared(xid);
  if (r.outcome == FinishOutcome::done || r.outcome == FinishOutcome::not_found) {
    state_ = BranchState::none;
    xid_.reset();
  }
  return r;
}

void AtSession::commit_one_phase() { commit_alone(std::nullopt, {}); }

// The branch's own statement must not pass through execute(), which would
// take row images of it: it goes to the inner session with the COMMIT.
void AtSession::commit_one_phase_with(std::string_view statement, std::span<const Param> params) {
  commit_alone(statement, params);
}

// Alone in its global transaction (or carrying its decision, `last`), the
// branch is a local transaction: its locks go with the commit and no record
// is needed. The last lock DELETE, or `last`, goes with the COMMIT.
void AtSession::commit_alone(std::optional<std::string_view> last, std::span<const Param> params) {
  if (state_ != BranchState::active)
    throw error(Errc::usage, "cannot commit in one phase: no active AT branch");
  if (failed_) {
    rollback();
    throw error(Errc::rolled_back, "a statement of the AT branch failed; the branch was rolled back");
  }
  try {
    delete_lock_rows(*inner_, std::vector<std::pair<std::string, std::string>>(held_.begin(), held_.end()),
                     /*commit=*/!last);
    if (last) inner_->commit_one_phase_with(*last, params);
  } catch (...) {
    if (inner_->state() == BranchState::none || inner_->broken()) {
      state_ = BranchState::none;
      xid_.reset();
    }
    throw;
  }
  state_ = BranchState::none;
  xid_.reset();
}

void AtSession::rollback() {
  if (state_ == BranchState::none) return;
  if (state_ == BranchState::active) {
    try {
      inner_->rollback();
    } catch (...) {
    }
    state_ = BranchState::none;
    xid_.reset();
    return;
  }
  const Xid xid = *xid_;
  FinishResult r = rollback_prepared(xid);
  if (r.outcome == FinishOutcome::done || r.outcome == FinishOutcome::not_found) {
    state_ = BranchState::none;
    xid_.reset();
    return;
  }
  throw r.error ? *r.error
                : at_error(Errc::sql, shared_->config, xid.gtrid, "rollback of the AT branch failed");
}

FinishResult AtSession::commit_prepared(const Xid& xid) {
  if (inner_->state() != BranchState::none)
    throw error(Errc::usage, "finish a branch by xid needs a session without a branch");
  try {
    ensure_schema();
    begin_phase2(*inner_, xid, shared_->config);
    std::uint64_t n =
        delete_record_and_locks(*inner_, std::span<const Xid>(&xid, 1), shared_->dialect, /*commit=*/true);
    shared_->locks_released();
    if (n > 0) return {};
  } catch (const Error& e) {
    if (inner_->state() != BranchState::none) {
      try {
        inner_->rollback();
      } catch (...) {
      }
    }
    return {e.code() == Errc::unavailable ? FinishOutcome::unavailable : FinishOutcome::failed,
            e.with_context(xid.gtrid, shared_->config.name)};
  }
  // Not an AT branch here: perhaps an XA branch of this database.
  return inner_->commit_prepared(xid);
}

FinishResult AtSession::rollback_prepared(const Xid& xid) {
  if (inner_->state() != BranchState::none)
    throw error(Errc::usage, "finish a branch by xid needs a session without a branch");
  ensure_schema();
  FinishResult r = undo_branch(*inner_, shared_->config, shared_->meta, xid, {.leave_marker = false});
  if (r.outcome == FinishOutcome::done) shared_->locks_released();
  if (r.outcome != FinishOutcome::not_found) return r;
  // Not an AT branch here: perhaps an XA branch of this database.
  FinishResult xa = inner_->rollback_prepared(xid);
  if (xa.outcome != FinishOutcome::not_found) return xa;
  // A branch of another resource (MariaDB lists every XA branch of the
  // server) never has a phase 1 here: no marker for it.
  if (xid.bqual != shared_->config.name) return r;
  // Neither: leave the marker that makes a late phase 1 fail (undo_branch
  // looks for the record again under its lock, so one that committed in
  // between is undone instead).
  r = undo_branch(*inner_, shared_->config, shared_->meta, xid, {});
  if (r.outcome == FinishOutcome::done) shared_->locks_released();
  return r;
}

FinishResult AtSession::rollback_prepared_overwriting(const Xid& xid) {
  if (inner_->state() != BranchState::none)
    throw error(Errc::usage, "finish a branch by xid needs a session without a branch");
  ensure_schema();
  FinishResult r = undo_branch(*inner_, shared_->config, shared_->meta, xid, {.force = true});
  if (r.outcome == FinishOutcome::done) shared_->locks_released();
  return r;
}

std::vector<PreparedXid> AtSession::recover() {
  std::vector<PreparedXid> out = inner_->recover();
  ensure_schema();
  // `created` as microseconds since the epoch (MariaDB's is UTC, PostgreSQL's a timestamptz).
  const char* created = shared_->dialect == sql::Dialect::mysql
                            ? "CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', created) AS CHAR)"
                            : "(extract(epoch FROM created) * 1000000)::bigint::text";
  Result r = inner_->execute(std::string("SELECT gtrid, branch, ") + created + " FROM " + kUndo +
                                 " WHERE kind = 0 ORDER BY created",
                             {});
  for (const auto& row : r) {
    PreparedXid p;
    p.xid = Xid::make(row.cell(0).value_or(""), row.cell(1).value_or(""));
    if (row.cell(2))
      p.prepared_at = std::chrono::system_clock::time_point(std::chrono::microseconds(std::stoll(*row.cell(2))));
    p.is_dtx = true;
    p.raw = "AT " + p.xid.gtrid + " " + p.xid.bqual;
    p.mode = BranchMode::at;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<GlobalLock> AtSession::global_locks() {
  if (inner_->state() != BranchState::none)
    throw error(Errc::usage, "listing global locks needs a session without a branch");
  ensure_schema();
  const char* created = shared_->dialect == sql::Dialect::mysql
                            ? "CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', created) AS CHAR)"
                            : "(extract(epoch FROM created) * 1000000)::bigint::text";
  Result r = inner_->execute(std::string("SELECT table_name, row_key, gtrid, branch, ") + created + " FROM " +
                                 kLock + " ORDER BY created, table_name, row_key",
                             {});
  std::vector<GlobalLock> out;
  for (const auto& row : r) {
    GlobalLock l{row.cell(0).value_or(""), row.cell(1).value_or(""), row.cell(2).value_or(""),
                 row.cell(3).value_or(""), std::nullopt};
    if (row.cell(4))
      l.created = std::chrono::system_clock::time_point(std::chrono::microseconds(std::stoll(*row.cell(4))));
    out.push_back(std::move(l));
  }
  return out;
}

void AtSession::forget(std::span<const Xid> xids) {
  if (inner_->state() != BranchState::none)
    throw error(Errc::usage, "forgetting branches needs a session without a branch");
  ensure_schema();
  begin_phase2(*inner_, xids.front(), shared_->config);
  try {
    delete_record_and_locks(*inner_, xids, shared_->dialect, /*commit=*/true);
    shared_->locks_released();
  } catch (...) {
    if (inner_->state() != BranchState::none) inner_->rollback();
    throw;
  }
}

}  // namespace

FinishResult undo_branch(Session& s, const ResourceConfig& config, TableMetaCache& cache, const Xid& xid,
                         UndoOptions options) {
  const bool force = options.force;
  auto fail = [&](const Error& e) -> FinishResult {
    if (s.state() != BranchState::none) {
      try {
        s.rollback();
      } catch (...) {
      }
    }
    return {e.code() == Errc::unavailable ? FinishOutcome::unavailable
            : e.code() == Errc::damaged   ? FinishOutcome::damaged
                                          : FinishOutcome::failed,
            e.with_context(xid.gtrid, config.name)};
  };
  try {
    const std::function<void()> bound_next = begin_phase2(s, xid, config);
    std::vector<Param> key{Param(xid.gtrid), Param(xid.bqual)};
    Result rec = s.execute(std::string("SELECT kind, record FROM ") + kUndo + " WHERE gtrid = ? AND branch = ?" +
                               (options.inspect ? "" : " FOR UPDATE"),
                           key);
    if (rec.empty() && (options.inspect || !options.leave_marker)) {
      s.rollback();
      return {FinishOutcome::not_found,
              at_error(Errc::unknown_xid, config, xid.gtrid, "no AT undo record of branch " + xid.to_string())};
    }
    if (rec.empty()) {
      // Before its phase 1 (or never here): leave the marker that makes a
      // late phase 1 fail.
      s.execute(std::string("INSERT INTO ") + kUndo + " (gtrid, branch, kind, record) VALUES (?, ?, 1, NULL)", key);
      s.commit_one_phase();
      return {FinishOutcome::not_found,
              at_error(Errc::unknown_xid, config, xid.gtrid,
                       "no AT undo record of branch " + xid.to_string() + "; a marker now stops a late phase 1")};
    }
    if (rec[0].cell(0).value_or("0") != "0") {  // a marker: rolled back before
      if (options.inspect) {
        s.rollback();
        return {};
      }
      s.commit_one_phase();
      return {};
    }
    UndoRecord record = decode(rec[0].cell(1).value_or(""), xid.gtrid, xid.bqual);
    std::vector<std::shared_ptr<const TableMeta>> metas;
    for (const auto& t : record.tables) {
      sql::TableRef ref;
      ref.schema = t.schema;
      ref.name = t.name;
      ref.schema_quoted = ref.name_quoted = true;
      bound_next();
      metas.push_back(cache.get(s, ref));
    }
    // Check every row first; change nothing unless all are clean.
    std::vector<RowCheck> checks;
    std::string dirty;
    for (const auto& r : record.rows) {
      const TableImage& t = record.tables[r.table];
      bound_next();
      RowCheck c = check_row(s, *metas[r.table], t, r, /*lock=*/!options.inspect);
      const bool at_after = r.after ? (c.exists && c.is_after) : !c.exists;
      const bool at_before = r.before ? (c.exists && c.is_before) : !c.exists;
      if (!at_after && !at_before && !force) {
        const TableMeta& m = *metas[r.table];
        dirty += "\n  table " + t.schema + "." + t.name + ": before " + render_image(m, t, r.before) + ", after " +
                 render_image(m, t, r.after) + ", now " + render_image(m, t, current_image(s, m, t, r));
      }
      checks.push_back(c);
    }
    if (options.inspect) {
      s.rollback();
      if (dirty.empty()) return {};
    }
    if (!dirty.empty()) {
      if (s.state() != BranchState::none) s.rollback();
      return {FinishOutcome::conflicting_changes,
              Error({.code = Errc::sql,
                     .resource = config.name,
                     .gtrid = xid.gtrid,
                     .hint = "decide by hand: `dtx rollback " + xid.gtrid +
                             " --force` writes the before images over the current rows; `dtx accept-current " +
                             xid.gtrid + "` keeps the current rows and releases the locks"},
                    "rows changed by branch " + xid.to_string() +
                        " were changed again outside it since its phase 1 (a dirty write); nothing was undone "
                        "and its global locks stay:" + dirty)};
    }
    std::vector<std::size_t> restored;
    for (std::size_t i = record.rows.size(); i-- > 0;) {
      const RowUndo& r = record.rows[i];
      const RowCheck& c = checks[i];
      const bool at_before = r.before ? (c.exists && c.is_before) : !c.exists;
      if (at_before) continue;  // nothing to do
      bound_next();
      restore_row(s, *metas[r.table], record.tables[r.table], r, c.exists);
      restored.push_back(i);
    }
    // What was written back must read back as the before image: a trigger
    // that stamps rows on UPDATE (or a default the database fills in) would
    // otherwise leave a change behind that nobody sees. Then nothing is
    // committed and the operator decides, as for a dirty write.
    std::string off;
    for (std::size_t i : restored) {
      const RowUndo& r = record.rows[i];
      const TableImage& t = record.tables[r.table];
      const TableMeta& m = *metas[r.table];
      bound_next();
      RowCheck c = check_row(s, m, t, r, /*lock=*/false);
      const bool at_before = r.before ? (c.exists && c.is_before) : !c.exists;
      if (!at_before && !force)
        off += "\n  table " + t.schema + "." + t.name + ": before " + render_image(m, t, r.before) +
               ", written back as " + render_image(m, t, current_image(s, m, t, r));
    }
    if (!off.empty()) {
      s.rollback();
      return {FinishOutcome::conflicting_changes,
              Error({.code = Errc::sql,
                     .resource = config.name,
                     .gtrid = xid.gtrid,
                     .hint = "a trigger on the table changes rows as they are written (AT mode cannot turn it "
                             "off); decide by hand: `dtx rollback " + xid.gtrid +
                             " --force` writes the before images as well as the database lets it; `dtx "
                             "accept-current " + xid.gtrid + "` keeps the rows as they are"},
                    "the before images of branch " + xid.to_string() +
                        " did not read back as written, so the rollback was not committed; nothing was "
                        "undone and its global locks stay:" + off)};
    }
    bound_next();
    delete_record_and_locks(s, std::span<const Xid>(&xid, 1), dialect_of(config));
    s.commit_one_phase();
    return {};
  } catch (const Error& e) {
    return fail(e);
  }
}

std::unique_ptr<ResourceManager> make_at_resource_manager(const ResourceConfig& config,
                                                          ResourceManager::Connector driver) {
  if (!driver) driver = make_driver_connector(config);
  auto shared = std::make_shared<AtShared>(config, driver);
  return std::make_unique<ResourceManager>(config, [shared] {
    return std::unique_ptr<Session>(new AtSession(shared, shared->driver()));
  });
}

void forget_branches(Session& session, std::span<const Xid> branches) {
  if (branches.empty()) return;
  auto* at = dynamic_cast<AtSession*>(&session);
  if (!at) throw Error({.code = Errc::usage}, "forget_branches needs a session of an AT resource");
  at->forget(branches);
}

std::vector<GlobalLock> list_global_locks(Session& session) {
  auto* at = dynamic_cast<AtSession*>(&session);
  if (!at) throw Error({.code = Errc::usage}, "global locks are listed on an AT resource's session only");
  return at->global_locks();
}

bool is_at_session(const Session& session) noexcept { return dynamic_cast<const AtSession*>(&session) != nullptr; }

void release_prepared(Session& session) noexcept {
  if (auto* at = dynamic_cast<AtSession*>(&session)) at->release_prepared();
}

std::unique_ptr<ResourceManager> make_configured_resource_manager(const ResourceConfig& config) {
  return config.mode == BranchMode::at ? make_at_resource_manager(config) : make_resource_manager(config);
}

}  // namespace dtx::undo
