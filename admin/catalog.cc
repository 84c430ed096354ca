#include "admin/catalog.h"

namespace dtx::admin {

namespace {
constexpr ColumnType B = ColumnType::boolean;
constexpr ColumnType I = ColumnType::integer;
constexpr ColumnType R = ColumnType::real;
constexpr ColumnType T = ColumnType::text;
}  // namespace

const std::vector<View>& views() {
  static const std::vector<View> kViews = {
      {"in_doubt", Source::scan,
       "one row per prepared or unfinished branch on every resource, with the coordinator's decision and what a "
       "recovery pass would do with it now (a dry-run pass, fresh for each statement)",
       {{"gtrid", T, "global transaction id (for foreign branches: the database's own id)"},
        {"resource", T, "resource name in the configuration"},
        {"xid", T, "the branch id as the database shows it (XA RECOVER / pg_prepared_xacts.gid; AT: 'AT gtrid branch')"},
        {"mode", T, "xa or at"},
        {"owner_alive", B, "the process that owns the transaction is alive (NULL: unknown, e.g. a foreign branch)"},
        {"decision", T, "commit when a decision log holds a COMMIT decision, else none (presumed abort)"},
        {"age_s", I, "seconds since it was prepared (NULL when the database does not say: MariaDB XA)"},
        {"action", T, "what a recovery pass would do now: would_commit, would_roll_back, left_owner_alive, "
                      "left_seen_once, left_log_damaged, left_foreign, left_other_coordinator, ..."},
        {"detail", T, "why it is left, or what a rollback would meet (AT dirty writes)"},
        {"coordinator_id", T, "the coordinator id named in the gtrid (NULL if not a dtx gtrid)"},
        {"incarnation", T, "the owning process incarnation named in the gtrid"},
        {"prepared_at", T, "when it was prepared, UTC (NULL if unknown)"}}},
      {"transactions", Source::scan,
       "one row per in-doubt global transaction: in_doubt grouped by gtrid",
       {{"gtrid", T, "global transaction id"},
        {"branches", I, "prepared branches"},
        {"resources", T, "the resources holding them, comma separated"},
        {"decision", T, "commit or none"},
        {"owner_alive", B, "the owning process is alive (NULL: unknown)"},
        {"oldest_age_s", I, "age of its oldest branch in seconds (NULL if unknown)"},
        {"action", T, "what a recovery pass would do (several actions comma separated)"}}},
      {"at_branches", Source::scan,
       "AT-mode branches: undo records of branches past phase 1 and not finished",
       {{"gtrid", T, "global transaction id"},
        {"resource", T, "resource name"},
        {"xid", T, "'AT gtrid branch'"},
        {"owner_alive", B, "the owning process is alive"},
        {"decision", T, "commit or none"},
        {"age_s", I, "seconds since phase 1"},
        {"action", T, "what a recovery pass would do now"},
        {"detail", T, "what a rollback would meet (rows changed since phase 1: a dirty write)"},
        {"locks", I, "global row locks it holds"},
        {"prepared_at", T, "when phase 1 committed, UTC"}}},
      {"global_locks", Source::scan,
       "AT-mode global row locks (dtx_global_lock on every AT resource)",
       {{"resource", T, "resource name"},
        {"table_name", T, "schema.table"},
        {"row_key", T, "the row's primary key (JSON array)"},
        {"gtrid", T, "the global transaction holding it"},
        {"branch", T, "its branch (the resource's name)"},
        {"age_s", I, "seconds since it was taken"},
        {"created_at", T, "when it was taken, UTC"}}},
      {"resources", Source::resources,
       "every configured resource, reached now",
       {{"name", T, "resource name"},
        {"type", T, "mysql or postgres"},
        {"mode", T, "xa or at"},
        {"host", T, "host"},
        {"port", I, "port"},
        {"database", T, "database"},
        {"reachable", B, "a connection could be made and the server answered"},
        {"server_version", T, "the server's version"},
        {"max_prepared_transactions", I, "PostgreSQL's setting (0: XA impossible); NULL on MariaDB"},
        {"prepared", I, "prepared branches on it (all of them, dtx's or not; AT: undo records too)"},
        {"error", T, "why it could not be reached"},
        {"durability", T,
         "settings under which the server can lose what it acknowledged, and what to set; NULL when none"}}},
      {"incarnations", Source::logs,
       "coordinator processes known from the decision log directory, and with [coordinator] decisions from "
       "that resource's dtx_decision (its rows, the prepared branches of this id)",
       {{"coordinator_id", T, "coordinator id"},
        {"incarnation", T, "process incarnation"},
        {"alive", B, "its lock (file lock, or liveness lock on the decisions resource) is held: the process (or a "
                     "recovery pass, or an operator) is working"},
        {"open_decisions", I, "COMMIT decisions not yet ended (log records, or dtx_decision COMMIT rows)"},
        {"damaged", B, "its log is damaged in a way a crash cannot cause (NULL: not checked, another id, alive, or "
                       "decisions in a table)"},
        {"this_process", B, "the console's own incarnation (used when an operator commits without a decision)"}}},
      {"heuristics", Source::heuristics,
       "every heuristic outcome recorded in <log_dir>/heuristics.log (a damaged line is shown with its text)",
       {{"time", T, "when, UTC"},
        {"gtrid", T, "global transaction id"},
        {"resource", T, "resource name"},
        {"decision", T, "what the log said: commit or none"},
        {"outcome", T, "what happened to the branch"},
        {"by", T, "database or operator"},
        {"detail", T, "details; for a damaged line, the line"}}},
      {"recovery_passes", Source::passes,
       "the recent recovery passes of this server (timer, startup, CALL recover())",
       {{"started_at", T, "when it started, UTC"},
        {"trigger", T, "timer, startup or admin <user>"},
        {"dry_run", B, "only planned"},
        {"duration_ms", R, "how long it took"},
        {"branches", I, "prepared branches seen"},
        {"committed", I, "branches committed"},
        {"rolled_back", I, "branches rolled back"},
        {"left_in_doubt", I, "branches of this coordinator left prepared"},
        {"errors", I, "problems (resources not scanned, damaged logs)"},
        {"error_text", T, "the problems, '; ' separated"}}},
      {"problems", Source::problems,
       "what stops the console from seeing everything: resources that could not be scanned, damaged decision "
       "logs, damaged heuristics.log lines",
       {{"source", T, "resources, decision log or heuristics"}, {"message", T, "the problem and what to do"}}},
      {"help", Source::help,
       "this list: every view, column, command and function",
       {{"kind", T, "view, column, command or function"},
        {"name", T, "the view, command or function"},
        {"column_name", T, "the column (kind column)"},
        {"type", T, "the column's type"},
        {"description", T, "what it is"}}},
  };
  return kViews;
}

const View* find_view(std::string_view name) {
  for (const auto& v : views())
    if (v.name == name) return &v;
  return nullptr;
}

const std::vector<CommandHelp>& commands() {
  static const std::vector<CommandHelp> kCommands = {
      {"COMMIT PREPARED 'gtrid'",
       "commit every branch of the global transaction (refused while its owner lives); with no logged decision a "
       "COMMIT decision is logged first"},
      {"ROLLBACK PREPARED 'gtrid'",
       "roll back every branch (refused while its owner lives, and against a logged COMMIT decision)"},
      {"COMMIT FORCE 'gtrid'", "commit even another coordinator's transaction; recorded as heuristic"},
      {"ROLLBACK FORCE 'gtrid'",
       "roll back against a logged COMMIT decision (AT: overwriting rows changed since); recorded as heuristic"},
      {"CALL recover()", "run one recovery pass now; one row per branch"},
      {"CALL recover(dry_run => true)", "plan one pass without acting (also dry_run := true, or recover(true))"},
      {"CALL accept_current('gtrid')",
       "AT mode after a dirty write: keep the current rows, delete the undo records, release the locks; heuristic"},
      {"BEGIN / COMMIT / ROLLBACK", "transaction blocks, for clients that open them (views are read fresh anyway)"},
      {"SET name = value / SHOW name / SHOW ALL / RESET", "session settings (client_encoding, application_name, ...)"},
  };
  return kCommands;
}

const std::vector<CommandHelp>& functions() {
  static const std::vector<CommandHelp> kFunctions = {
      {"version()", "the console's PostgreSQL-like version string"},
      {"current_database()", "the coordinator id"},
      {"current_user", "the admin user of this session"},
      {"current_setting(name)", "a session setting, as SHOW shows it"},
      {"now()", "the current time, UTC"},
  };
  return kFunctions;
}

Table help_rows() {
  Table t;
  for (const auto& v : views()) {
    t.push_back({std::string("view"), std::string(v.name), std::monostate{}, std::monostate{},
                 std::string(v.description)});
    for (const auto& c : v.columns)
      t.push_back({std::string("column"), std::string(v.name), std::string(c.name), std::string(to_string(c.type)),
                   std::string(c.description)});
  }
  for (const auto& c : commands())
    t.push_back({std::string("command"), std::string(c.syntax), std::monostate{}, std::monostate{},
                 std::string(c.description)});
  for (const auto& f : functions())
    t.push_back({std::string("function"), std::string(f.syntax), std::monostate{}, std::monostate{},
                 std::string(f.description)});
  return t;
}

const std::vector<Column>& branch_result_columns() {
  static const std::vector<Column> kColumns = {{"gtrid", ColumnType::text},  {"resource", ColumnType::text},
                                               {"xid", ColumnType::text},    {"mode", ColumnType::text},
                                               {"action", ColumnType::text}, {"detail", ColumnType::text}};
  return kColumns;
}

std::string view_list() {
  std::string out;
  for (const auto& v : views()) out += (out.empty() ? "" : ", ") + std::string(v.name);
  return out;
}

}  // namespace dtx::admin
