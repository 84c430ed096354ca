// The admin console: SQL over dtx's state.
//
// SESSIONS
// Every ConsoleSession has its own in-memory SQLite connection (no file,
// no shared cache). The views are eponymous read-only virtual tables
// registered on it (sqlite3_create_module; no xCreate, no xUpdate): a query
// names them as tables, and SQLite does the filtering, joins, sorting and
// aggregates. Nothing is ever stored in SQLite.
//
// FRESHNESS AND SINGLE FLIGHT
// A view's rows come from a snapshot of its source (catalog.h: a dry-run
// recovery pass, the resources, the log directory, heuristics.log). When a
// statement arrives it notes the time; the first time it reads a view it
// needs a snapshot of that view's source STARTED no earlier than that. If
// one is done or running that started later, it takes / waits for it; if
// one is running that started earlier, it waits for the one queued to start
// right after it (one queued at most, shared by everyone who arrived
// meanwhile); otherwise it starts one. So 100 sessions querying in_doubt at
// once share a few scans, at most one runs at a time per source, and none
// sees a state older than its statement. Within one
// statement each source is read once (a self-join sees one snapshot).
// Scans run on a worker thread of the Console, so a waiting statement can
// still be cancelled (interrupt(), statement_timeout): the scan finishes for
// whoever else waits on it.
//
// ONE AT A TIME
// Recovery passes (timer, startup, CALL recover()), the dry-run passes
// behind in_doubt, the log look behind incarnations and the settle commands
// all hold the Console's pass mutex: they adopt dead incarnations' locks
// while they work, and one must not see the other's adoption as a live owner.
//
// SAFETY
// Read-only twice over: statements starting with a writing word are refused
// before SQLite sees them (statement.cc), and SQLite's authorizer allows only
// SELECT, reads, functions and recursive CTEs (no ATTACH, PRAGMA, CREATE,
// INSERT...). sqlite3_limit bounds lengths and depths; a progress handler
// enforces the statement timeout and CancelRequest (57014).
//
// COMMANDS
// COMMIT/ROLLBACK PREPARED|FORCE and CALL accept_current go through
// settle_transaction (recovery/operator.h) — the rules of dtx commit / dtx
// rollback — with this process's own DecisionLog incarnation (opened the
// first time a command needs one) for commits with no logged decision.
// CALL recover() is Console::recovery_pass. Every command is logged with the
// admin user, the peer and the outcome.
#include "admin/console.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "admin/catalog.h"
#include "admin/sources.h"
#include "admin/statement.h"
#include "base/logging.h"
#include "base/transaction_id.h"
#include "decision-log/decision_log.h"
#include "dtx/error.h"
#include "dtx/version.h"
#include "metrics/metrics.h"
#include "recovery/operator.h"
#include "undo-log/at_session.h"

namespace dtx::admin {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

const char* to_string(ColumnType type) noexcept {
  switch (type) {
    case ColumnType::boolean: return "boolean";
    case ColumnType::integer: return "integer";
    case ColumnType::real: return "real";
    case ColumnType::text: return "text";
  }
  return "text";
}

uint32_t postgres_type_oid(ColumnType type) noexcept {
  switch (type) {
    case ColumnType::boolean: return 16;
    case ColumnType::integer: return 20;
    case ColumnType::real: return 701;
    case ColumnType::text: return 25;
  }
  return 25;
}

std::string server_version() { return "15.0"; }

std::string version_string() { return std::string("PostgreSQL 15.0 (dtx admin console ") + kVersion + ")"; }

namespace {

// Every command, with who ran it and how it ended.
// `command` and `result` are the metric's labels (few values); `outcome` the
// words for the log.
void audit(const std::string& user, const std::string& peer, std::string_view command, std::string_view result,
           std::string_view statement, std::string_view outcome) {
  metrics::admin_command(command, result);
  logger().info("admin console: user {} from {}: {} -> {}", user, peer, statement, outcome);
}

const std::string kViewHint = "the views: " + view_list() + "; SELECT * FROM help lists their columns";
const std::string kReadOnlyHint =
    "the console only reads; it acts through COMMIT PREPARED 'gtrid', ROLLBACK PREPARED 'gtrid', COMMIT FORCE "
    "'gtrid', ROLLBACK FORCE 'gtrid', CALL recover(), CALL accept_current('gtrid') (SELECT * FROM help)";

[[noreturn]] void read_only() {
  throw StatementError("25006", "the dtx admin console is read-only", {}, kReadOnlyHint);
}

// ---- single flight -------------------------------------------------------

using SnapshotPtr = std::shared_ptr<const Snapshot>;

// One look at a source: those who wait share its result.
struct Flight {
  Flight() : result(promise.get_future().share()) {}
  SteadyClock::time_point started;  // set when it starts
  std::promise<SnapshotPtr> promise;
  std::shared_future<SnapshotPtr> result;
};

// Per source: at most one look running and one queued behind it.
struct Flights {
  std::shared_ptr<Flight> done;     // the latest finished
  std::shared_ptr<Flight> running;  // started, not finished
  std::shared_ptr<Flight> next;     // for statements that arrived after `running` started
};

}  // namespace

// ---- Console ---------------------------------------------------------------

struct Console::Impl {
  Impl(Config c, ConsoleOptions o) : config(std::move(c)), options(o) {
    for (const auto& [name, rc] : config.resources)
      managers.emplace(name, undo::make_configured_resource_manager(rc));
    lookup = [this](std::string_view name) -> ResourceManager& { return *managers.find(name)->second; };
  }
  ~Impl() {
    std::lock_guard lock(workers_mu);
    for (auto& w : workers) w.join();
  }

  Config config;
  ConsoleOptions options;
  std::map<std::string, std::unique_ptr<ResourceManager>, std::less<>> managers;
  ResourceLookup lookup;

  std::mutex pass_mu;  // passes, dry-run scans, log looks, settle commands
  std::atomic<std::size_t> scans{0};

  std::mutex log_mu;
  std::unique_ptr<DecisionLog> own_log;
  std::string own_incarnation;

  std::mutex passes_mu;
  std::deque<PassRecord> passes;

  std::mutex flights_mu;
  std::map<Source, Flights> flights;

  std::mutex workers_mu;
  std::list<std::thread> workers;
  std::list<std::shared_ptr<std::atomic<bool>>> workers_done;

  DecisionLog& decision_log() {
    std::lock_guard lock(log_mu);
    if (!own_log) {
      std::string incarnation = new_incarnation();
      own_log = DecisionLog::open(config.coordinator.log_dir, config.coordinator.id, incarnation);
      own_incarnation = incarnation;
    }
    return *own_log;
  }
  std::string incarnation() {
    std::lock_guard lock(log_mu);
    return own_incarnation;
  }
  std::size_t own_open_decisions() {
    std::lock_guard lock(log_mu);
    return own_log ? own_log->open_decisions() : 0;
  }

  Snapshot produce(Source source) {
    switch (source) {
      case Source::scan: {
        ++scans;
        std::lock_guard pass(pass_mu);
        const auto now = SystemClock::now();
        RecoveryReport report;
        try {
          report = RecoveryScanner(config, lookup).run({.dry_run = true});
        } catch (const std::exception& e) {
          report.errors.push_back(std::string("the dry-run recovery pass failed: ") + e.what());
        }
        return scan_snapshot(config, lookup, report, now);
      }
      case Source::resources: return resources_snapshot(config, lookup);
      case Source::logs: {
        // Which incarnations own prepared branches decides what counts as damage.
        std::vector<std::string> unlisted;  // the scan behind in_doubt reports these
        std::set<std::string> referenced;
        for (const auto& [resource, list] : list_prepared(config, lookup, "", unlisted))
          for (const auto& p : list)
            if (auto parts = p.is_dtx ? parse_gtrid(p.xid.gtrid) : std::nullopt;
                parts && parts->coordinator_id == config.coordinator.id)
              referenced.insert(parts->incarnation);
        std::lock_guard pass(pass_mu);
        return logs_snapshot(config, lookup, incarnation(), own_open_decisions(), referenced);
      }
      case Source::heuristics: return heuristics_snapshot(config);
      default: return {};
    }
  }

  // A snapshot of `source` started no earlier than `arrival`: the latest
  // done or running if it qualifies; else the one queued behind the running
  // one (it starts when that ends, so after `arrival`); else a new one, on a
  // worker thread. So a steady stream of statements keeps one look running
  // at a time, each statement waiting for at most two.
  std::shared_future<SnapshotPtr> snapshot(Source source, SteadyClock::time_point arrival) {
    std::lock_guard lock(flights_mu);
    Flights& f = flights[source];
    if (f.done && f.done->started >= arrival) return f.done->result;
    if (f.running && f.running->started >= arrival) return f.running->result;
    if (f.running) {
      if (!f.next) f.next = std::make_shared<Flight>();
      return f.next->result;
    }
    f.running = std::make_shared<Flight>();
    f.running->started = SteadyClock::now();
    std::shared_ptr<Flight> first = f.running;
    start_worker([this, source, first] {
      for (std::shared_ptr<Flight> flight = first; flight;) {
        try {
          flight->promise.set_value(std::make_shared<const Snapshot>(produce(source)));
        } catch (...) {
          flight->promise.set_exception(std::current_exception());
        }
        std::lock_guard relock(flights_mu);
        Flights& g = flights[source];
        g.done = std::move(g.running);
        g.running = std::move(g.next);
        if (g.running) g.running->started = SteadyClock::now();
        flight = g.running;
      }
    });
    return f.running->result;
  }

  void start_worker(std::function<void()> work) {
    std::lock_guard lock(workers_mu);
    // Join the workers that are done.
    auto w = workers.begin();
    auto d = workers_done.begin();
    while (w != workers.end()) {
      if (**d) {
        w->join();
        w = workers.erase(w);
        d = workers_done.erase(d);
      } else {
        ++w;
        ++d;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_done.push_back(done);
    workers.emplace_back([work = std::move(work), done] {
      work();
      *done = true;
    });
  }

  SnapshotPtr passes_snapshot() {
    auto snap = std::make_shared<Snapshot>();
    Table& t = snap->tables["recovery_passes"];
    std::lock_guard lock(passes_mu);
    for (auto it = passes.rbegin(); it != passes.rend(); ++it) t.push_back(pass_row(*it));
    return snap;
  }

  RecoveryReport recovery_pass(bool dry_run, std::string trigger) {
    std::lock_guard pass(pass_mu);
    const auto started = SystemClock::now();
    RecoveryReport report;
    try {
      report = RecoveryScanner(config, lookup).run({.dry_run = dry_run});
    } catch (const std::exception& e) {
      report.errors.push_back(std::string("the recovery pass failed: ") + e.what());
    }
    PassRecord record = pass_record(report, started, std::move(trigger), dry_run);
    std::lock_guard lock(passes_mu);
    passes.push_back(std::move(record));
    while (passes.size() > std::max<std::size_t>(options.recent_passes, 1)) passes.pop_front();
    return report;
  }
};

Console::Console(Config config, ConsoleOptions options)
    : impl_(std::make_shared<Impl>(std::move(config), options)) {}

Console::~Console() = default;

const Config& Console::config() const noexcept { return impl_->config; }
const ConsoleOptions& Console::options() const noexcept { return impl_->options; }
std::size_t Console::scans_started() const noexcept { return impl_->scans; }

RecoveryReport Console::recovery_pass(bool dry_run, std::string trigger) {
  return impl_->recovery_pass(dry_run, std::move(trigger));
}

// ---- ConsoleSession --------------------------------------------------------

namespace {

struct ModuleAux;

// Why a statement stopped early, when SQLite only says "interrupted".
enum class Abort { none, cancelled, timeout, denied };

}  // namespace

struct ConsoleSession::Impl {
  std::shared_ptr<Console::Impl> console;
  std::string user, peer;
  sqlite3* db = nullptr;
  std::vector<std::unique_ptr<ModuleAux>> modules;
  char status = 'I';
  std::chrono::milliseconds timeout{0};
  std::map<std::string, std::string> settings;  // SET values, by lower-case name

  // The running statement.
  std::atomic<bool> interrupted{false};
  SteadyClock::time_point arrival;
  std::optional<SteadyClock::time_point> deadline;
  Abort abort = Abort::none;
  bool declaring = false;  // a view's xConnect declares its columns
  std::map<Source, SnapshotPtr> read;  // snapshots this statement read

  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }

  void begin_statement() {
    interrupted = false;
    arrival = SteadyClock::now();
    deadline.reset();
    if (timeout.count() > 0) deadline = arrival + timeout;
    abort = Abort::none;
    read.clear();
  }

  // Throws StatementError when the statement must stop.
  void check_abort() {
    if (interrupted) {
      abort = Abort::cancelled;
      throw StatementError("57014", "canceling statement due to user request");
    }
    if (deadline && SteadyClock::now() > *deadline) {
      abort = Abort::timeout;
      throw StatementError("57014", "canceling statement due to statement timeout", {},
                           "SET statement_timeout = <ms> changes it for this session (0: none)");
    }
  }

  SnapshotPtr snapshot(Source source);
  StatementResult dispatch(const ParsedStatement& p, std::string_view statement,
                           std::span<const std::optional<std::string>> params, std::span<const uint32_t> oids);
  StatementResult run_query(const std::string& sql, std::span<const std::optional<std::string>> params,
                            std::span<const uint32_t> oids);
  sqlite3_stmt* prepare(const std::string& sql);
  [[noreturn]] void sqlite_failed(int rc, bool preparing);
  StatementResult settle(const ParsedStatement& p, std::string_view statement);
  StatementResult recover(const ParsedStatement& p, std::string_view statement);
  std::optional<std::string> setting(const std::string& name) const;
  StatementResult show(const std::string& name);
};

namespace {

struct ModuleAux {
  ConsoleSession::Impl* session;
  const View* view;
};

struct VTab {
  sqlite3_vtab base{};
  ModuleAux* aux = nullptr;
};

struct Cursor {
  sqlite3_vtab_cursor base{};
  SnapshotPtr snapshot;
  const Table* rows = nullptr;
  std::size_t i = 0;
};

const char* sqlite_type(ColumnType t) {
  switch (t) {
    case ColumnType::boolean: return "BOOLEAN";
    case ColumnType::integer: return "INTEGER";
    case ColumnType::real: return "REAL";
    case ColumnType::text: return "TEXT";
  }
  return "TEXT";
}

int vtab_connect(sqlite3* db, void* aux_ptr, int, const char* const*, sqlite3_vtab** out, char** err) {
  auto* aux = static_cast<ModuleAux*>(aux_ptr);
  std::string ddl = "CREATE TABLE x(";
  bool first = true;
  for (const auto& c : aux->view->columns) {
    ddl += (first ? "" : ", ") + std::string(c.name) + " " + sqlite_type(c.type);
    first = false;
  }
  ddl += ")";
  // Declaring the view's columns is the one schema change allowed.
  aux->session->declaring = true;
  int rc = sqlite3_declare_vtab(db, ddl.c_str());
  aux->session->declaring = false;
  if (rc != SQLITE_OK) {
    *err = sqlite3_mprintf("cannot declare view %s", std::string(aux->view->name).c_str());
    return rc;
  }
  auto* v = new VTab;
  v->aux = aux;
  *out = &v->base;
  return SQLITE_OK;
}

int vtab_disconnect(sqlite3_vtab* v) {
  delete reinterpret_cast<VTab*>(v);
  return SQLITE_OK;
}

int vtab_best_index(sqlite3_vtab*, sqlite3_index_info* info) {
  info->estimatedCost = 1000;
  info->estimatedRows = 100;
  return SQLITE_OK;
}

int vtab_open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  *out = &(new Cursor)->base;
  return SQLITE_OK;
}

int vtab_close(sqlite3_vtab_cursor* c) {
  delete reinterpret_cast<Cursor*>(c);
  return SQLITE_OK;
}

int vtab_filter(sqlite3_vtab_cursor* cur, int, const char*, int, sqlite3_value**) {
  auto* c = reinterpret_cast<Cursor*>(cur);
  auto* v = reinterpret_cast<VTab*>(cur->pVtab);
  try {
    c->snapshot = v->aux->session->snapshot(v->aux->view->source);
    static const Table kEmpty;
    auto it = c->snapshot->tables.find(v->aux->view->name);
    c->rows = it == c->snapshot->tables.end() ? &kEmpty : &it->second;
    c->i = 0;
    return SQLITE_OK;
  } catch (const std::exception& e) {
    sqlite3_free(v->base.zErrMsg);
    v->base.zErrMsg = sqlite3_mprintf("%s", e.what());
    return SQLITE_ERROR;
  }
}

int vtab_next(sqlite3_vtab_cursor* cur) {
  ++reinterpret_cast<Cursor*>(cur)->i;
  return SQLITE_OK;
}

int vtab_eof(sqlite3_vtab_cursor* cur) {
  auto* c = reinterpret_cast<Cursor*>(cur);
  return c->i >= c->rows->size();
}

int vtab_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int n) {
  auto* c = reinterpret_cast<Cursor*>(cur);
  const auto& row = (*c->rows)[c->i];
  if (n < 0 || static_cast<std::size_t>(n) >= row.size()) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  std::visit(
      [ctx](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::monostate>) sqlite3_result_null(ctx);
        else if constexpr (std::is_same_v<X, std::int64_t>) sqlite3_result_int64(ctx, x);
        else if constexpr (std::is_same_v<X, double>) sqlite3_result_double(ctx, x);
        else sqlite3_result_text(ctx, x.data(), static_cast<int>(x.size()), SQLITE_TRANSIENT);
      },
      row[static_cast<std::size_t>(n)]);
  return SQLITE_OK;
}

int vtab_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) {
  *rowid = static_cast<sqlite3_int64>(reinterpret_cast<Cursor*>(cur)->i);
  return SQLITE_OK;
}

sqlite3_module make_module() {
  sqlite3_module m{};
  m.iVersion = 0;
  m.xCreate = nullptr;  // eponymous only: no CREATE VIRTUAL TABLE
  m.xConnect = vtab_connect;
  m.xBestIndex = vtab_best_index;
  m.xDisconnect = vtab_disconnect;
  m.xDestroy = vtab_disconnect;
  m.xOpen = vtab_open;
  m.xClose = vtab_close;
  m.xFilter = vtab_filter;
  m.xNext = vtab_next;
  m.xEof = vtab_eof;
  m.xColumn = vtab_column;
  m.xRowid = vtab_rowid;
  return m;  // no xUpdate: read-only
}

const sqlite3_module kModule = make_module();

int authorize(void* arg, int action, const char* a, const char*, const char*, const char*) {
  auto* s = static_cast<ConsoleSession::Impl*>(arg);
  if (s->declaring) return SQLITE_OK;
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (a && std::string_view(a) == "load_extension") break;
      return SQLITE_OK;
    default:
      break;
  }
  s->abort = Abort::denied;
  return SQLITE_DENY;
}

int progress(void* arg) {
  auto* s = static_cast<ConsoleSession::Impl*>(arg);
  if (s->interrupted) {
    s->abort = Abort::cancelled;
    return 1;
  }
  if (s->deadline && SteadyClock::now() > *s->deadline) {
    s->abort = Abort::timeout;
    return 1;
  }
  return 0;
}

void result_text(sqlite3_context* ctx, const std::string& s) {
  sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

ConsoleSession::Impl* session_of(sqlite3_context* ctx) {
  return static_cast<ConsoleSession::Impl*>(sqlite3_user_data(ctx));
}

void register_functions(sqlite3* db, ConsoleSession::Impl* s) {
  const int flags = SQLITE_UTF8 | SQLITE_INNOCUOUS;
  sqlite3_create_function(db, "version", 0, flags | SQLITE_DETERMINISTIC, s,
                          [](sqlite3_context* ctx, int, sqlite3_value**) { result_text(ctx, version_string()); },
                          nullptr, nullptr);
  sqlite3_create_function(db, "current_database", 0, flags, s,
                          [](sqlite3_context* ctx, int, sqlite3_value**) {
                            result_text(ctx, session_of(ctx)->console->config.coordinator.id);
                          },
                          nullptr, nullptr);
  for (const char* name : {"current_user", "session_user", "current_role"})
    sqlite3_create_function(db, name, 0, flags, s,
                            [](sqlite3_context* ctx, int, sqlite3_value**) { result_text(ctx, session_of(ctx)->user); },
                            nullptr, nullptr);
  for (const char* name : {"current_schema", "current_catalog"})
    sqlite3_create_function(db, name, 0, flags, s,
                            [](sqlite3_context* ctx, int, sqlite3_value**) {
                              result_text(ctx, session_of(ctx)->console->config.coordinator.id);
                            },
                            nullptr, nullptr);
  for (int nargs : {1, 2})
    sqlite3_create_function(db, "current_setting", nargs, flags, s,
                            [](sqlite3_context* ctx, int argc, sqlite3_value** argv) {
                              const unsigned char* name = sqlite3_value_text(argv[0]);
                              std::string n = name ? reinterpret_cast<const char*>(name) : "";
                              std::transform(n.begin(), n.end(), n.begin(), ::tolower);
                              auto v = session_of(ctx)->setting(n);
                              if (v) return result_text(ctx, *v);
                              if (argc == 2 && sqlite3_value_int(argv[1])) return sqlite3_result_null(ctx);
                              std::string msg = "unrecognized configuration parameter \"" + n + "\"";
                              sqlite3_result_error(ctx, msg.c_str(), -1);
                            },
                            nullptr, nullptr);
  for (const char* name : {"now", "transaction_timestamp", "statement_timestamp", "clock_timestamp"})
    sqlite3_create_function(db, name, 0, flags, s,
                            [](sqlite3_context* ctx, int, sqlite3_value**) {
                              result_text(ctx, iso_time(SystemClock::now()));
                            },
                            nullptr, nullptr);
  sqlite3_create_function(db, "pg_backend_pid", 0, flags, s,
                          [](sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_int64(ctx, 0); }, nullptr,
                          nullptr);
}

std::string format_real(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

ColumnType column_type_of(const char* decl) {
  if (!decl) return ColumnType::text;
  std::string d(decl);
  std::transform(d.begin(), d.end(), d.begin(), ::toupper);
  if (d == "BOOLEAN") return ColumnType::boolean;
  if (d == "INTEGER") return ColumnType::integer;
  if (d == "REAL") return ColumnType::real;
  return ColumnType::text;
}

ColumnType type_of_oid(uint32_t oid) {
  switch (oid) {
    case 16: return ColumnType::boolean;
    case 20: case 21: case 23: return ColumnType::integer;
    case 700: case 701: case 1700: return ColumnType::real;
    default: return ColumnType::text;
  }
}

bool is_integer_literal(const std::string& s) {
  if (s.empty() || s.size() > 19) return false;
  std::size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// Only whitespace, comments and ';' in `rest`?
bool only_trailer(std::string_view rest) { return split_statements(rest).empty(); }

// The $n numbers of a prepared statement's parameters (SQLite numbers them by first use).
int max_param(sqlite3_stmt* st) {
  int n = 0;
  for (int i = 1; i <= sqlite3_bind_parameter_count(st); ++i) {
    const char* name = sqlite3_bind_parameter_name(st, i);
    int k = 0;
    if (!name || name[0] != '$' || std::from_chars(name + 1, name + std::strlen(name), k).ec != std::errc() || k <= 0)
      throw StatementError("42601", std::string("parameters are written $1, $2, ...: ") +
                                        (name ? name : "?") + " is not one");
    n = std::max(n, k);
  }
  return n;
}

std::vector<std::string> branch_row(const InDoubtBranch& b) {
  return {b.gtrid, b.resource, b.prepared.raw, to_string(b.prepared.mode), to_string(b.action), b.detail};
}

StatementResult branch_result(std::string tag, const std::vector<InDoubtBranch>& branches) {
  StatementResult r;
  r.tag = std::move(tag);
  r.has_rows = true;
  r.columns = branch_result_columns();
  for (const auto& b : branches) {
    Row row;
    for (auto& cell : branch_row(b)) row.emplace_back(std::move(cell));
    r.rows.push_back(std::move(row));
  }
  return r;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

// What settle_transaction's refusals mean in SQL.
StatementError settle_error(const Error& e, const ParsedStatement& p) {
  const std::string q = quote_literal(p.gtrid);
  const std::string& what = e.summary();
  if (e.code() == Errc::usage && what.find("nothing is prepared") != std::string::npos)
    return StatementError("42704", "prepared transaction with identifier \"" + p.gtrid + "\" does not exist",
                          "nothing is prepared under this global id on any configured resource",
                          "SELECT gtrid, resources, decision FROM transactions lists what is prepared");
  if (e.code() == Errc::unavailable)
    return StatementError("58000", what, {}, "make every resource reachable and retry; SELECT name, error FROM resources WHERE NOT reachable");
  if (e.code() == Errc::usage && what.find("is alive") != std::string::npos)
    return StatementError("55000", what, {},
                          replace_all(replace_all(e.hint(), "--force does not override this", "FORCE does not override this"),
                                      "--force", "FORCE"));
  if (e.code() == Errc::usage && what.find("holds a COMMIT decision") != std::string::npos)
    return StatementError("55000", what, {},
                          "COMMIT PREPARED " + q + " finishes it as decided; ROLLBACK FORCE " + q +
                              " rolls back anyway (recorded as heuristic)");
  if (e.code() == Errc::usage && what.find("belongs to coordinator") != std::string::npos)
    return StatementError("55000", what, {},
                          "settle it from that coordinator's own configuration; COMMIT FORCE " + q + " or ROLLBACK FORCE " +
                              q + " settles it from here (recorded as heuristic)");
  if (e.code() == Errc::log) return StatementError("58030", what, {}, e.hint());
  return StatementError(e.code() == Errc::usage ? "55000" : "XX000", what, {}, e.hint());
}

}  // namespace

std::optional<std::string> ConsoleSession::Impl::setting(const std::string& name) const {
  if (auto it = settings.find(name); it != settings.end()) return it->second;
  if (name == "server_version") return server_version();
  if (name == "server_version_num") return "150000";
  if (name == "client_encoding" || name == "server_encoding") return "UTF8";
  if (name == "datestyle") return "ISO, MDY";
  if (name == "timezone" || name == "log_timezone") return "UTC";
  if (name == "intervalstyle") return "postgres";
  if (name == "integer_datetimes" || name == "standard_conforming_strings") return "on";
  if (name == "application_name") return "";
  if (name == "is_superuser") return "off";
  if (name == "session_authorization") return user;
  if (name == "transaction_isolation" || name == "default_transaction_isolation") return "read committed";
  if (name == "transaction_read_only" || name == "default_transaction_read_only") return "on";
  if (name == "statement_timeout") return std::to_string(timeout.count());
  if (name == "search_path") return "\"$user\", public";
  if (name == "extra_float_digits") return "1";
  if (name == "max_identifier_length") return "63";
  if (name == "lc_messages" || name == "lc_collate" || name == "lc_ctype") return "C";
  if (name == "in_hot_standby") return "off";
  return std::nullopt;
}

StatementResult ConsoleSession::Impl::show(const std::string& name) {
  StatementResult r;
  r.tag = "SHOW";
  r.has_rows = true;
  if (name == "all") {
    r.columns = {{"name", ColumnType::text}, {"setting", ColumnType::text}, {"description", ColumnType::text}};
    std::vector<std::string> names = {"application_name", "client_encoding", "datestyle", "integer_datetimes",
                                      "intervalstyle", "is_superuser", "search_path", "server_encoding",
                                      "server_version", "server_version_num", "standard_conforming_strings",
                                      "statement_timeout", "timezone", "transaction_isolation",
                                      "transaction_read_only"};
    for (const auto& [k, v] : settings)
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) r.rows.push_back({n, setting(n), std::string("session setting")});
    return r;
  }
  auto v = setting(name);
  if (!v) throw StatementError("42704", "unrecognized configuration parameter \"" + name + "\"", {}, "SHOW ALL lists them");
  r.columns = {{name, ColumnType::text}};
  r.rows.push_back({*v});
  return r;
}

SnapshotPtr ConsoleSession::Impl::snapshot(Source source) {
  if (auto it = read.find(source); it != read.end()) return it->second;
  SnapshotPtr snap;
  switch (source) {
    case Source::help: {
      static const SnapshotPtr kHelp = [] {
        auto s = std::make_shared<Snapshot>();
        s->tables["help"] = help_rows();
        return s;
      }();
      snap = kHelp;
      break;
    }
    case Source::passes:
      snap = console->passes_snapshot();
      break;
    case Source::problems: {
      auto s = std::make_shared<Snapshot>();
      Table& t = s->tables["problems"];
      for (Source from : {Source::scan, Source::logs, Source::heuristics})
        for (const auto& p : snapshot(from)->problems) t.push_back({p.source, p.message});
      snap = s;
      break;
    }
    default: {
      std::shared_future<SnapshotPtr> f = console->snapshot(source, arrival);
      while (f.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) check_abort();
      try {
        snap = f.get();
      } catch (const std::exception& e) {
        throw StatementError("XX000", std::string("reading the dtx state failed: ") + e.what());
      }
    }
  }
  read.emplace(source, snap);
  return snap;
}

sqlite3_stmt* ConsoleSession::Impl::prepare(const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), 0, &st, &tail);
  if (rc != SQLITE_OK) sqlite_failed(rc, true);
  if (st && tail && !only_trailer(std::string_view(tail, sql.data() + sql.size() - tail))) {
    sqlite3_finalize(st);
    throw StatementError("42601", "cannot insert multiple commands into a prepared statement");
  }
  if (st && !sqlite3_stmt_readonly(st)) {
    sqlite3_finalize(st);
    read_only();
  }
  return st;
}

void ConsoleSession::Impl::sqlite_failed(int rc, bool preparing) {
  std::string msg = sqlite3_errmsg(db);
  const int primary = rc & 0xff;
  if (abort == Abort::cancelled || (primary == SQLITE_INTERRUPT && interrupted))
    throw StatementError("57014", "canceling statement due to user request");
  if (abort == Abort::timeout || primary == SQLITE_INTERRUPT)
    throw StatementError("57014", "canceling statement due to statement timeout", {},
                         "SET statement_timeout = <ms> changes it for this session (0: none)");
  if (abort == Abort::denied || primary == SQLITE_AUTH) read_only();
  auto after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (msg.starts_with(prefix)) return msg.substr(prefix.size());
    return std::nullopt;
  };
  if (auto t = after("no such table: "))
    throw StatementError("42P01", "relation \"" + *t + "\" does not exist", {}, kViewHint);
  if (auto t = after("no such column: "))
    throw StatementError("42703", "column \"" + *t + "\" does not exist", {}, kViewHint);
  if (auto t = after("no such function: "))
    throw StatementError("42883", "function " + *t + " does not exist", {},
                         "SQLite's functions and version(), current_database(), current_user, current_setting(name), now()");
  if (auto t = after("ambiguous column name: "))
    throw StatementError("42702", "column reference \"" + *t + "\" is ambiguous");
  if (msg.find("syntax error") != std::string::npos || msg == "incomplete input" ||
      msg.starts_with("unrecognized token"))
    throw StatementError("42601", msg, {}, "the console speaks SQLite's SQL over its views; " + kViewHint);
  if (primary == SQLITE_TOOBIG) throw StatementError("54000", msg);
  if (primary == SQLITE_NOMEM) throw StatementError("53200", "out of memory");
  if (msg.find("may not be modified") != std::string::npos) read_only();
  throw StatementError(preparing ? "42000" : "XX000", msg, {}, kViewHint);
}

StatementResult ConsoleSession::Impl::run_query(const std::string& sql, std::span<const std::optional<std::string>> params,
                                                std::span<const uint32_t> oids) {
  sqlite3_stmt* st = prepare(sql);
  if (!st) return {};  // only comments: EmptyQueryResponse
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
  const int nparams = max_param(st);
  if (static_cast<std::size_t>(nparams) > params.size())
    throw StatementError("08P01", "the statement needs " + std::to_string(nparams) + " parameters, " +
                                      std::to_string(params.size()) + " given");
  for (int k = 1; k <= nparams; ++k) {
    const int idx = sqlite3_bind_parameter_index(st, ("$" + std::to_string(k)).c_str());
    if (idx == 0) continue;
    const auto& v = params[static_cast<std::size_t>(k - 1)];
    const uint32_t oid = static_cast<std::size_t>(k - 1) < oids.size() ? oids[static_cast<std::size_t>(k - 1)] : 0;
    if (!v) {
      sqlite3_bind_null(st, idx);
      continue;
    }
    const ColumnType t = type_of_oid(oid);
    if ((t == ColumnType::integer || (oid == 0 && is_integer_literal(*v))) && is_integer_literal(*v)) {
      sqlite3_bind_int64(st, idx, std::stoll(*v));
    } else if (t == ColumnType::integer) {
      throw StatementError("22P02", "invalid input syntax for type bigint: \"" + *v + "\"");
    } else if (t == ColumnType::boolean) {
      std::string b = *v;
      std::transform(b.begin(), b.end(), b.begin(), ::tolower);
      sqlite3_bind_int(st, idx, b == "t" || b == "true" || b == "1" || b == "on" || b == "yes");
    } else if (t == ColumnType::real) {
      char* end = nullptr;
      double d = std::strtod(v->c_str(), &end);
      if (end == v->c_str() || *end) throw StatementError("22P02", "invalid input syntax for type double precision: \"" + *v + "\"");
      sqlite3_bind_double(st, idx, d);
    } else {
      sqlite3_bind_text(st, idx, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT);
    }
  }
  StatementResult r;
  r.has_rows = true;
  const int ncols = sqlite3_column_count(st);
  std::vector<bool> declared(static_cast<std::size_t>(ncols));
  for (int c = 0; c < ncols; ++c) {
    const char* decl = sqlite3_column_decltype(st, c);
    declared[static_cast<std::size_t>(c)] = decl != nullptr;
    r.columns.push_back({sqlite3_column_name(st, c), column_type_of(decl)});
  }
  std::vector<bool> typed = declared;
  std::size_t bytes = 0;
  const std::size_t max_bytes = console->options.max_result_bytes;
  for (;;) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) sqlite_failed(rc, false);
    Row row;
    for (int c = 0; c < ncols; ++c) {
      const auto uc = static_cast<std::size_t>(c);
      const int t = sqlite3_column_type(st, c);
      if (!typed[uc] && t != SQLITE_NULL) {  // an expression: typed by its first value
        r.columns[uc].type = t == SQLITE_INTEGER ? ColumnType::integer : t == SQLITE_FLOAT ? ColumnType::real : ColumnType::text;
        typed[uc] = true;
      }
      switch (t) {
        case SQLITE_NULL: row.emplace_back(std::nullopt); break;
        case SQLITE_INTEGER: {
          const sqlite3_int64 n = sqlite3_column_int64(st, c);
          row.emplace_back(r.columns[uc].type == ColumnType::boolean ? std::string(n ? "t" : "f") : std::to_string(n));
          break;
        }
        case SQLITE_FLOAT: row.emplace_back(format_real(sqlite3_column_double(st, c))); break;
        case SQLITE_BLOB: {
          const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(st, c));
          const int n = sqlite3_column_bytes(st, c);
          static const char* kHex = "0123456789abcdef";
          std::string s = "\\x";
          for (int i = 0; i < n; ++i) {
            s += kHex[p[i] >> 4];
            s += kHex[p[i] & 15];
          }
          row.emplace_back(std::move(s));
          break;
        }
        default: {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
          row.emplace_back(std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
        }
      }
    }
    for (const auto& cell : row) bytes += 16 + (cell ? cell->size() : 0);
    if (bytes > max_bytes)
      throw StatementError("54000", "the result is larger than the console returns (" +
                                        std::to_string(max_bytes >> 20) + " MiB)",
                           {}, "add a LIMIT or aggregate");
    r.rows.push_back(std::move(row));
  }
  r.tag = "SELECT " + std::to_string(r.rows.size());
  return r;
}

StatementResult ConsoleSession::Impl::settle(const ParsedStatement& p, std::string_view statement) {
  const std::string command = p.accept_current ? "CALL accept_current" : p.verb;
  SettleResult result;
  try {
    std::lock_guard pass(console->pass_mu);
    DecisionLog* log = console->config.coordinator.decisions.empty() ? &console->decision_log() : nullptr;
    result = settle_transaction(console->config, console->lookup, log,
                                {.gtrid = p.gtrid, .commit = p.commit, .force = p.force,
                                 .accept_current = p.accept_current});
  } catch (const Error& e) {
    StatementError err = settle_error(e, p);
    audit(user, peer, command, "refused", statement, "refused (" + err.sqlstate + "): " + err.what());
    throw err;
  }
  std::string detail;
  for (const auto& b : result.branches)
    detail += (detail.empty() ? "" : "\n") + b.resource + " (" + b.prepared.raw + "): " + to_string(b.action) +
              (b.detail.empty() ? "" : " — " + b.detail);
  for (const auto& e : result.errors) detail += (detail.empty() ? "" : "\n") + e;
  std::vector<std::string> notices;
  for (const auto& h : result.heuristics)
    notices.push_back("HEURISTIC outcome on " + h.resource + ": branch " + h.outcome + " (logged decision " +
                      h.decision + "), recorded in " +
                      (console->config.coordinator.log_dir / "heuristics.log").string());
  if (result.decided_here) notices.push_back(undecided_commit_notice(p.gtrid, result));
  if (!result.finished()) {
    const std::string q = quote_literal(p.gtrid);
    const bool dirty = std::any_of(result.branches.begin(), result.branches.end(), [](const InDoubtBranch& b) {
      return b.action == BranchAction::left_dirty_write;
    });
    std::string hint = dirty ? "rows were changed outside the transaction since its phase 1: CALL accept_current(" + q +
                                   ") keeps them, ROLLBACK FORCE " + q + " overwrites them (both recorded as heuristic)"
                             : "retry " + p.verb + " " + q +
                                   " once the failing resource is reachable (SELECT * FROM resources); SELECT * FROM "
                                   "in_doubt WHERE gtrid = " + q + " shows what is left";
    StatementError err("58000", p.verb + " " + q + " did not finish every branch", detail, hint);
    audit(user, peer, command, "not_finished", statement, "not finished: " + replace_all(detail, "\n", "; "));
    throw err;
  }
  audit(user, peer, command, "done", statement, "done: " + replace_all(detail, "\n", "; "));
  StatementResult r = branch_result(p.verb, result.branches);
  r.notices = std::move(notices);
  return r;
}

StatementResult ConsoleSession::Impl::recover(const ParsedStatement& p, std::string_view statement) {
  RecoveryReport report = console->recovery_pass(p.dry_run, "admin " + user);
  std::size_t committed = 0, rolled_back = 0;
  for (const auto& b : report.branches) {
    committed += b.action == BranchAction::committed || b.action == BranchAction::would_commit;
    rolled_back += b.action == BranchAction::rolled_back || b.action == BranchAction::would_roll_back;
  }
  const std::string summary =
      std::string(p.dry_run ? "recover (dry run): would commit " : "recover: committed ") + std::to_string(committed) +
      (p.dry_run ? ", would roll back " : ", rolled back ") + std::to_string(rolled_back) + ", " +
      std::to_string(report.left_in_doubt()) + " left in doubt, " + std::to_string(report.errors.size()) + " errors";
  // One row per branch of this coordinator id the pass acted on or had to
  // leave; other coordinators' and foreign branches are never touched, and a
  // NOTICE counts them.
  std::vector<InDoubtBranch> ours;
  std::size_t not_ours = 0;
  for (const auto& b : report.branches) {
    if (b.action == BranchAction::left_foreign || b.action == BranchAction::left_other_coordinator)
      ++not_ours;
    else
      ours.push_back(b);
  }
  StatementResult r = branch_result("CALL", ours);
  r.notices.push_back(summary);
  if (not_ours)
    r.notices.push_back(std::to_string(not_ours) +
                        " prepared branch(es) of other coordinators or outside dtx left alone (SELECT * FROM in_doubt)");
  for (const auto& e : report.errors) r.notices.push_back("error: " + e);
  for (const auto& h : report.heuristics)
    r.notices.push_back("HEURISTIC outcome of " + h.gtrid + " on " + h.resource + ": " + h.outcome);
  audit(user, peer, p.dry_run ? "CALL recover(dry_run)" : "CALL recover", report.errors.empty() ? "done" : "errors",
        statement, summary);
  return r;
}

StatementResult ConsoleSession::Impl::dispatch(const ParsedStatement& p, std::string_view statement,
                                               std::span<const std::optional<std::string>> params,
                                               std::span<const uint32_t> oids) {
  StatementResult r;
  auto no_block = [&](const char* what) {
    if (status == 'I') throw StatementError("25P01", std::string(what) + " can only be used in transaction blocks");
  };
  switch (p.kind) {
    case StatementKind::begin:
      if (status != 'I') r.notices.push_back("there is already a transaction in progress");
      status = 'T';
      r.tag = "BEGIN";
      return r;
    case StatementKind::commit:
      if (status == 'I') r.notices.push_back("there is no transaction in progress");
      r.tag = status == 'E' ? "ROLLBACK" : "COMMIT";
      status = 'I';
      return r;
    case StatementKind::rollback:
      if (status == 'I') r.notices.push_back("there is no transaction in progress");
      status = 'I';
      r.tag = "ROLLBACK";
      return r;
    case StatementKind::savepoint:
      no_block("SAVEPOINT");
      r.tag = "SAVEPOINT";
      return r;
    case StatementKind::release:
      no_block("RELEASE SAVEPOINT");
      r.tag = "RELEASE";
      return r;
    case StatementKind::rollback_to:
      no_block("ROLLBACK TO SAVEPOINT");
      status = 'T';
      r.tag = "ROLLBACK";
      return r;
    case StatementKind::set: {
      if (p.name == "client_encoding" || p.name == "names") {
        std::string v = p.value;
        std::transform(v.begin(), v.end(), v.begin(), ::toupper);
        v.erase(std::remove(v.begin(), v.end(), '-'), v.end());
        if (v != "UTF8" && v != "UNICODE" && v != "DEFAULT")
          throw StatementError("22023", "the console speaks UTF8 only", {}, "SET client_encoding = 'UTF8'");
      } else if (p.name == "statement_timeout") {
        std::string v = p.value;
        long ms = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
        std::string unit(end, static_cast<std::size_t>(v.data() + v.size() - end));
        unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
        if (ec != std::errc() || ms < 0 || !(unit.empty() || unit == "ms" || unit == "s" || unit == "min"))
          throw StatementError("22023", "invalid value for parameter \"statement_timeout\": \"" + v + "\"");
        if (unit == "s") ms *= 1000;
        if (unit == "min") ms *= 60'000;
        timeout = std::chrono::milliseconds(ms);
        r.tag = "SET";
        return r;
      }
      if (p.name != "transaction") settings[p.name] = p.value;
      r.tag = "SET";
      return r;
    }
    case StatementKind::show:
      return show(p.name);
    case StatementKind::reset:
      if (p.name == "all") {
        settings.clear();
        timeout = console->options.statement_timeout;
      } else {
        settings.erase(p.name);
        if (p.name == "statement_timeout") timeout = console->options.statement_timeout;
      }
      r.tag = "RESET";
      return r;
    case StatementKind::discard:
      settings.clear();
      timeout = console->options.statement_timeout;
      r.tag = p.verb;
      return r;
    case StatementKind::deallocate:
      r.tag = "DEALLOCATE";
      return r;
    case StatementKind::write:
      read_only();
    case StatementKind::settle:
    case StatementKind::recover:
      if (status != 'I')
        throw StatementError("25001", (p.kind == StatementKind::recover ? std::string("CALL recover()") : p.verb) +
                                          " cannot run inside a transaction block",
                             {}, "use autocommit (end the block with COMMIT or ROLLBACK first)");
      return p.kind == StatementKind::settle ? settle(p, statement) : recover(p, statement);
    case StatementKind::query:
      return run_query(p.sql, params, oids);
  }
  return r;
}

ConsoleSession::ConsoleSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConsoleSession::~ConsoleSession() = default;

std::unique_ptr<ConsoleSession> Console::open_session(std::string user, std::string peer) {
  auto s = std::make_unique<ConsoleSession::Impl>();
  s->console = impl_;
  s->user = std::move(user);
  s->peer = std::move(peer);
  s->timeout = impl_->options.statement_timeout;
  int rc = sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY |
                                                   SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                           nullptr);
  if (rc != SQLITE_OK) throw Error({.code = Errc::unavailable}, "cannot open the admin console's SQLite connection");
  sqlite3* db = s->db;
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, nullptr);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 16 << 20);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1 << 20);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 200);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 200);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 100);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000);
  sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 1000);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 0);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 32);
  for (const View& v : views()) {
    s->modules.push_back(std::make_unique<ModuleAux>(ModuleAux{s.get(), &v}));
    sqlite3_create_module_v2(db, std::string(v.name).c_str(), &kModule, s->modules.back().get(), nullptr);
  }
  register_functions(db, s.get());
  sqlite3_set_authorizer(db, authorize, s.get());
  sqlite3_progress_handler(db, 1000, progress, s.get());
  return std::make_unique<ConsoleSession>(std::move(s));
}

std::vector<std::string> ConsoleSession::split(std::string_view query) { return split_statements(query); }

char ConsoleSession::transaction_status() const noexcept { return impl_->status; }

void ConsoleSession::interrupt() noexcept { impl_->interrupted = true; }

const std::string& ConsoleSession::user() const noexcept { return impl_->user; }
const std::string& ConsoleSession::peer() const noexcept { return impl_->peer; }

StatementResult ConsoleSession::execute(std::string_view statement, std::span<const std::optional<std::string>> params,
                                        std::span<const uint32_t> param_type_oids) {
  Impl& s = *impl_;
  s.begin_statement();
  try {
    ParsedStatement p = parse_statement(statement, params);
    if (s.status == 'E' && p.kind != StatementKind::commit && p.kind != StatementKind::rollback &&
        p.kind != StatementKind::rollback_to)
      throw StatementError("25P02", "current transaction is aborted, commands ignored until end of transaction block",
                           {}, "ROLLBACK (or COMMIT) ends the block");
    return s.dispatch(p, statement, params, param_type_oids);
  } catch (const StatementError&) {
    if (s.status == 'T') s.status = 'E';
    throw;
  } catch (const std::exception& e) {
    if (s.status == 'T') s.status = 'E';
    throw StatementError("XX000", e.what());
  }
}

Description ConsoleSession::describe(std::string_view statement, std::span<const uint32_t> param_type_oids) {
  Impl& s = *impl_;
  s.begin_statement();
  try {
    // Placeholders stand in for the values a command takes ($1 as the gtrid).
    std::vector<std::optional<std::string>> placeholders(32, std::string("?"));
    ParsedStatement p = parse_statement(statement, placeholders);
    Description d;
    auto param_types = [&](int n) {
      for (int k = 0; k < n; ++k)
        d.params.push_back(static_cast<std::size_t>(k) < param_type_oids.size() && param_type_oids[static_cast<std::size_t>(k)]
                               ? type_of_oid(param_type_oids[static_cast<std::size_t>(k)])
                               : ColumnType::text);
    };
    switch (p.kind) {
      case StatementKind::query: {
        sqlite3_stmt* st = s.prepare(p.sql);
        if (!st) return d;
        std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
        param_types(max_param(st));
        std::vector<Column> cols;
        for (int c = 0; c < sqlite3_column_count(st); ++c)
          cols.push_back({sqlite3_column_name(st, c), column_type_of(sqlite3_column_decltype(st, c))});
        d.columns = std::move(cols);
        return d;
      }
      case StatementKind::settle:
      case StatementKind::recover:
        param_types(statement.find("$1") != std::string_view::npos ? 1 : 0);
        d.columns = branch_result_columns();
        return d;
      case StatementKind::show:
        if (p.name == "all")
          d.columns = std::vector<Column>{{"name", ColumnType::text}, {"setting", ColumnType::text}, {"description", ColumnType::text}};
        else
          d.columns = std::vector<Column>{{p.name, ColumnType::text}};
        return d;
      case StatementKind::write:
        read_only();
      default:
        return d;
    }
  } catch (const StatementError&) {
    if (s.status == 'T') s.status = 'E';
    throw;
  }
}

}  // namespace dtx::admin
