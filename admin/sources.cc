// The admin console's sources (see sources.h): each turns one look at the
// databases or the log directory into the rows of its views. Nothing here
// throws for a database or log problem: it becomes a row (reachable = false,
// damaged = true) and a row of `problems`, so the console keeps answering.
#include "admin/sources.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/transaction_id.h"
#include "decision-log/decision_log.h"
#include "decision-table/decision_table.h"
#include "undo-log/at_session.h"

namespace dtx::admin {

namespace fs = std::filesystem;

namespace {

Value opt_bool(const std::optional<bool>& b) {
  if (!b) return std::monostate{};
  return std::int64_t{*b ? 1 : 0};
}

Value text_or_null(const std::string& s) {
  if (s.empty()) return std::monostate{};
  return s;
}

std::optional<std::int64_t> age_s(const std::optional<std::chrono::system_clock::time_point>& t,
                                  std::chrono::system_clock::time_point now) {
  if (!t) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(now - *t).count();
}

Value opt_int(const std::optional<std::int64_t>& v) {
  if (!v) return std::monostate{};
  return *v;
}

Value opt_time(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return std::monostate{};
  return iso_time(*t);
}

std::string join(const auto& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += separator;
    out += s;
  }
  return out;
}

}  // namespace

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  long frac = static_cast<long>(us % 1'000'000);
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06ldZ", frac);
  return buf;
}

Snapshot scan_snapshot(const Config& config, const ResourceLookup& resources, const RecoveryReport& report,
                       std::chrono::system_clock::time_point now) {
  Snapshot snap;
  for (const auto& e : report.errors)
    snap.problems.push_back({e.starts_with(kCannotListPrefix) ? "resources" : "decision log", e});

  // Global locks of every AT resource.
  struct Lock {
    std::string resource;
    undo::GlobalLock lock;
  };
  std::vector<Lock> locks;
  for (const auto& [name, rc] : config.resources) {
    if (rc.mode != BranchMode::at) continue;
    try {
      SessionLease session = resources(name).acquire();
      for (auto& l : undo::list_global_locks(*session)) locks.push_back({name, std::move(l)});
    } catch (const std::exception& e) {
      snap.problems.push_back({"resources", "cannot list the global locks of " + name + ": " + e.what()});
    }
  }

  Table& in_doubt = snap.tables["in_doubt"];
  Table& at = snap.tables["at_branches"];
  struct Group {
    std::int64_t branches = 0;
    std::set<std::string> resources, actions;
    bool commit = false;
    std::optional<bool> alive;
    std::optional<std::int64_t> oldest;
  };
  std::map<std::string, Group> groups;
  for (const InDoubtBranch& b : report.branches) {
    const auto age = age_s(b.prepared.prepared_at, now);
    in_doubt.push_back({b.gtrid, b.resource, b.prepared.raw, std::string(to_string(b.prepared.mode)),
                        opt_bool(b.owner_alive), std::string(to_string(b.decision)), opt_int(age),
                        std::string(to_string(b.action)), b.detail, text_or_null(b.coordinator_id),
                        text_or_null(b.incarnation), opt_time(b.prepared.prepared_at)});
    if (b.prepared.mode == BranchMode::at) {
      std::int64_t held = std::count_if(locks.begin(), locks.end(), [&](const Lock& l) {
        return l.resource == b.resource && l.lock.gtrid == b.gtrid && l.lock.branch == b.prepared.xid.bqual;
      });
      at.push_back({b.gtrid, b.resource, b.prepared.raw, opt_bool(b.owner_alive),
                    std::string(to_string(b.decision)), opt_int(age), std::string(to_string(b.action)),
                    b.detail, held, opt_time(b.prepared.prepared_at)});
    }
    Group& g = groups[b.gtrid];
    ++g.branches;
    g.resources.insert(b.resource);
    g.actions.insert(to_string(b.action));
    g.commit = g.commit || b.decision == LoggedDecision::commit;
    if (b.owner_alive) g.alive = g.alive.value_or(false) || *b.owner_alive;
    if (age) g.oldest = std::max(g.oldest.value_or(*age), *age);
  }
  Table& transactions = snap.tables["transactions"];
  for (const auto& [gtrid, g] : groups)
    transactions.push_back({gtrid, g.branches, join(g.resources), std::string(g.commit ? "commit" : "none"),
                            opt_bool(g.alive), opt_int(g.oldest), join(g.actions)});
  Table& global_locks = snap.tables["global_locks"];
  for (const auto& l : locks)
    global_locks.push_back({l.resource, l.lock.table_name, l.lock.row_key, l.lock.gtrid, l.lock.branch,
                            opt_int(age_s(l.lock.created, now)), opt_time(l.lock.created)});
  return snap;
}

Snapshot resources_snapshot(const Config& config, const ResourceLookup& resources) {
  struct Seen {
    std::optional<ServerInfo> info;
    std::int64_t prepared = 0;
    std::string error;
  };
  std::vector<std::pair<const ResourceConfig*, std::future<Seen>>> jobs;
  for (const auto& [name, rc] : config.resources)
    jobs.emplace_back(&rc, std::async(std::launch::async, [&resources, name = name] {
                        Seen seen;
                        try {
                          SessionLease session = resources(name).acquire();
                          seen.info = session->server_info();
                          seen.prepared = static_cast<std::int64_t>(session->recover().size());
                        } catch (const std::exception& e) {
                          seen.error = e.what();
                        }
                        return seen;
                      }));
  Snapshot snap;
  Table& t = snap.tables["resources"];
  for (auto& [rc, job] : jobs) {
    Seen seen = job.get();
    Value max_prepared = std::monostate{};
    if (seen.info && seen.info->max_prepared_transactions) max_prepared = std::int64_t{*seen.info->max_prepared_transactions};
    t.push_back({rc->name, std::string(to_string(rc->type)), std::string(to_string(rc->mode)), rc->host,
                 std::int64_t{rc->port}, rc->database, std::int64_t{seen.info.has_value() ? 1 : 0},
                 seen.info ? text_or_null(seen.info->version) : Value{},
                 max_prepared, seen.info && seen.error.empty() ? Value{seen.prepared} : Value{},
                 text_or_null(seen.error),
                 seen.info ? text_or_null(join(seen.info->durability_warnings, "; ")) : Value{}});
  }
  return snap;
}

namespace {

// The incarnations of this coordinator id that keep their decisions in R's
// dtx_decision: those with rows there and those owning prepared branches.
// Liveness is looked at, never taken (a console must not hold an owner's
// lock); open_decisions counts the COMMIT rows; damaged is NULL (no log).
void table_incarnations(const Config& config, const ResourceLookup& resources, std::string_view own_incarnation,
                        const std::set<std::string>& referenced, Snapshot& snap) {
  const std::string& my_id = config.coordinator.id;
  const DecisionTable table(config.resource(config.coordinator.decisions));
  try {
    SessionLease session = resources(table.resource()).acquire();
    std::map<std::string, std::int64_t> commits;  // by incarnation
    for (const std::string& inc : referenced)
      if (decision_store_of(inc) == DecisionStore::database) commits[inc];
    for (const auto& [gtrid, row] : table.read(*session, my_id))
      if (auto parts = parse_gtrid(gtrid); parts && parts->coordinator_id == my_id)
        commits[parts->incarnation] += row.outcome == TableOutcome::commit ? 1 : 0;
    Table& t = snap.tables["incarnations"];
    for (const auto& [inc, open] : commits)
      t.push_back({my_id, inc, std::int64_t{table.liveness_held(*session, my_id, inc) ? 1 : 0}, open,
                   std::monostate{}, std::int64_t{inc == own_incarnation ? 1 : 0}});
  } catch (const std::exception& e) {
    snap.problems.push_back({"decision log", "cannot read the decisions of coordinator " + my_id + " in " +
                                                 table.resource() + "'s dtx_decision: " + e.what()});
  }
}

}  // namespace

Snapshot logs_snapshot(const Config& config, const ResourceLookup& resources, std::string_view own_incarnation,
                       std::size_t own_open, const std::set<std::string>& referenced) {
  Snapshot snap;
  Table& t = snap.tables["incarnations"];
  const fs::path& dir = config.coordinator.log_dir;
  const std::string& my_id = config.coordinator.id;
  if (!config.coordinator.decisions.empty())
    table_incarnations(config, resources, own_incarnation, referenced, snap);
  if (dir.empty()) return snap;  // decisions in a database and no log_dir: nothing more to read
  try {
    // This coordinator id's logs, read as recovery reads them (the dead ones
    // adopted for the look, so their damage can be told). Incarnations that
    // keep their decisions in a table have no log to miss.
    std::set<std::string> in_logs;
    for (const std::string& inc : referenced)
      if (decision_store_of(inc) == DecisionStore::file) in_logs.insert(inc);
    LogState state = read_log_state(dir, my_id, in_logs);
    for (const auto& p : state.problems) snap.problems.push_back({"decision log", p});
    for (const auto& [id, inc] : state.incarnations)
      t.push_back({my_id, id, std::int64_t{inc.alive() ? 1 : 0},
                   static_cast<std::int64_t>(id == own_incarnation ? own_open : inc.decisions.size()),
                   inc.alive() ? Value{} : Value{std::int64_t{inc.damaged ? 1 : 0}},
                   std::int64_t{id == own_incarnation ? 1 : 0}});
    // Other coordinator ids sharing the directory: shown, not adopted.
    if (fs::exists(dir))
      for (const LogIncarnation& files : list_incarnations(dir)) {
        if (files.coordinator_id == my_id) continue;
        std::optional<bool> alive;
        Value open = std::monostate{};
        try {
          alive = incarnation_alive(files);
          open = static_cast<std::int64_t>(open_decisions(files).size());
        } catch (const std::exception& e) {
          snap.problems.push_back({"decision log", "cannot read the log of coordinator " + files.coordinator_id +
                                                       " incarnation " + files.incarnation + ": " + e.what()});
        }
        t.push_back({files.coordinator_id, files.incarnation, opt_bool(alive), open, std::monostate{},
                     std::int64_t{0}});
      }
  } catch (const std::exception& e) {
    snap.problems.push_back({"decision log", std::string("cannot read the decision logs in ") + dir.string() +
                                                 ": " + e.what()});
  }
  return snap;
}

Snapshot heuristics_snapshot_from(std::string_view text, const std::string& file_name) {
  Snapshot snap;
  Table& t = snap.tables["heuristics"];
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t e = text.find('\n', pos);
    std::string_view line = text.substr(pos, e == std::string_view::npos ? std::string_view::npos : e - pos);
    pos = e == std::string_view::npos ? text.size() : e + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      std::string msg = file_name + " line " + std::to_string(line_no) +
                        " is damaged (not a JSON object); the outcome it recorded is unknown: read the file";
      snap.problems.push_back({"heuristics", msg});
      t.push_back({Value{}, Value{}, Value{}, Value{}, std::string("damaged_line"), Value{},
                   "line " + std::to_string(line_no) + ": " + std::string(line.substr(0, 400))});
      continue;
    }
    auto field = [&](const char* k) -> Value {
      auto it = j.find(k);
      if (it == j.end() || !it->is_string()) return std::monostate{};
      return it->get<std::string>();
    };
    t.push_back({field("time"), field("gtrid"), field("resource"), field("decision"), field("outcome"),
                 field("by"), field("detail")});
  }
  return snap;
}

Snapshot heuristics_snapshot(const Config& config) {
  const fs::path file = config.coordinator.log_dir / "heuristics.log";
  std::error_code ec;
  if (config.coordinator.log_dir.empty() || !fs::exists(file, ec)) {
    Snapshot snap;
    snap.tables["heuristics"];
    return snap;
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) {
    Snapshot snap;
    snap.tables["heuristics"];
    snap.problems.push_back({"heuristics", "cannot read " + file.string() + ": " + std::strerror(errno)});
    return snap;
  }
  return heuristics_snapshot_from(text.str(), file.string());
}

PassRecord pass_record(const RecoveryReport& report, std::chrono::system_clock::time_point started,
                       std::string trigger, bool dry_run) {
  PassRecord p{started, std::move(trigger), dry_run,
               static_cast<double>(report.elapsed.count()) / 1000.0};
  p.branches = static_cast<std::int64_t>(report.branches.size());
  for (const auto& b : report.branches) {
    if (b.action == BranchAction::committed) ++p.committed;
    if (b.action == BranchAction::rolled_back) ++p.rolled_back;
  }
  p.left_in_doubt = static_cast<std::int64_t>(report.left_in_doubt());
  p.errors = static_cast<std::int64_t>(report.errors.size());
  for (const auto& e : report.errors) p.error_text += (p.error_text.empty() ? "" : "; ") + e;
  return p;
}

std::vector<Value> pass_row(const PassRecord& p) {
  return {iso_time(p.started), p.trigger, std::int64_t{p.dry_run ? 1 : 0}, p.duration_ms, p.branches,
          p.committed, p.rolled_back, p.left_in_doubt, p.errors, text_or_null(p.error_text)};
}

}  // namespace dtx::admin
