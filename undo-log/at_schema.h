// AT mode's tables in a resource's own database, and how they come to exist.
//
//   dtx_undo_log     (gtrid, branch) -> kind, created, record: one row per AT
//                    branch; kind 0 = the undo record its phase 1 wrote in the
//                    same local transaction as its changes; kind 1 = a
//                    rollback marker (a rollback reached the branch before its
//                    phase 1, whose INSERT of a record then hits the key and
//                    fails the late phase 1), record NULL.
//   dtx_global_lock  (table_name, row_key) -> gtrid, branch, created: the
//                    global row locks (row_key = lock_key() of undo_record.h,
//                    table_name = "schema.table"); index on (gtrid, branch).
//   dtx_at_schema    one row (id 1) holding the schema version.
//
// The DDL is shipped as sql/at-mode.mysql.sql and sql/at-mode.postgres.sql
// and compiled from those very files (CMake reads them into the build), so
// what dtx runs and what a DBA runs cannot drift. Column types and the
// versioning rule: docs/undo-record.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "drivers/resource_manager.h"
#include "sql/recognizer.h"

namespace dtx::undo {

// The version of the tables this dtx reads and writes. It changes whenever
// any of the three tables changes; dtx refuses tables of another version.
inline constexpr int kAtSchemaVersion = 1;

inline constexpr std::string_view kUndoLogTable = "dtx_undo_log";
inline constexpr std::string_view kGlobalLockTable = "dtx_global_lock";
inline constexpr std::string_view kAtSchemaTable = "dtx_at_schema";

// The values of dtx_undo_log.kind.
enum class UndoLogKind : int {
  undo_record = 0,      // written by phase 1; record holds the JSON
  rollback_marker = 1,  // a rollback came first; record is NULL
};

// The shipped file, as a path relative to the source tree
// ("sql/at-mode.mysql.sql"), and its whole text.
std::string_view at_schema_file(sql::Dialect dialect);
std::string_view at_schema_script(sql::Dialect dialect);

// The script's statements in order, each without its final ';' (comments
// inside kept), ready for Session::execute one at a time.
std::vector<std::string> at_schema_statements(sql::Dialect dialect);

// Makes sure the AT tables exist, at kAtSchemaVersion, where `session` finds
// unqualified table names: the resource's configured database (MariaDB), the
// first schema of the user's search_path (PostgreSQL). `session` must have
// no branch (Errc::usage); it runs in autocommit. Missing tables are created
// (the script's idempotent statements, under a named lock: GET_LOCK on
// MariaDB, an advisory lock on PostgreSQL, so two processes may do it at
// once). Throws dtx::Error naming `resource`:
//   Errc::misconfigured  the tables have another version (the found and the
//                        expected version, and what to do); the user may not
//                        create (or read) them (how a DBA creates them with
//                        sql/at-mode.<db>.sql, naming the database); no
//                        database / no existing schema in the search_path;
//   anything Session::execute throws otherwise.
void ensure_at_schema(Session& session, sql::Dialect dialect, const std::string& resource);

}  // namespace dtx::undo
