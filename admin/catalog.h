// The admin console's views and commands: names, typed columns and the
// descriptions `SELECT * FROM help` shows (and docs/admin-console.md
// repeats). One table, so the views SQLite sees and the help cannot drift.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "admin/console.h"

namespace dtx::admin {

// Where a view's rows come from; each source is scanned on its own (a query
// on `help` touches no database).
enum class Source {
  scan,        // a dry-run recovery pass + AT global locks: in_doubt, transactions, at_branches, global_locks
  resources,   // one connection per resource: resources
  logs,        // the decision logs in log_dir (+ which incarnations own prepared branches): incarnations
  heuristics,  // <log_dir>/heuristics.log
  passes,      // this process's memory: recovery_passes
  help,        // static
  problems,    // scan + logs + heuristics
};

struct ViewColumn {
  std::string_view name;
  ColumnType type;
  std::string_view description;
};

struct View {
  std::string_view name;
  Source source;
  std::string_view description;
  std::vector<ViewColumn> columns;
};

const std::vector<View>& views();
const View* find_view(std::string_view name);

struct CommandHelp {
  std::string_view syntax;
  std::string_view description;
};
const std::vector<CommandHelp>& commands();
// The SQL functions the console adds to SQLite's own.
const std::vector<CommandHelp>& functions();

// One cell of a view: NULL, integer (booleans 0/1), real or text.
using Value = std::variant<std::monostate, std::int64_t, double, std::string>;
using Table = std::vector<std::vector<Value>>;

// The rows of `help`.
Table help_rows();

// The columns of the rows the settle commands and CALL recover() return.
const std::vector<Column>& branch_result_columns();

// "in_doubt, transactions, ..." for messages.
std::string view_list();

}  // namespace dtx::admin
