// What the admin console recognises in a statement before SQLite sees it:
// the transaction-block words, SET/SHOW/RESET/DISCARD, and the commands that
// settle transactions (COMMIT PREPARED 'g', ROLLBACK FORCE 'g', CALL recover()).
// Everything else is a query for SQLite. Pure functions, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::admin {

enum class StatementKind {
  query,        // for SQLite
  begin,        // BEGIN / START TRANSACTION
  commit,       // COMMIT / END
  rollback,     // ROLLBACK / ABORT
  savepoint,    // SAVEPOINT x
  release,      // RELEASE [SAVEPOINT] x
  rollback_to,  // ROLLBACK TO [SAVEPOINT] x
  set,          // SET name = value
  show,         // SHOW name
  reset,        // RESET name | ALL
  discard,      // DISCARD ALL
  deallocate,   // DEALLOCATE [PREPARE] name | ALL
  settle,       // COMMIT PREPARED / ROLLBACK PREPARED / COMMIT FORCE / ROLLBACK FORCE / CALL accept_current
  recover,      // CALL recover([dry_run => bool])
  write,        // INSERT, CREATE, ATTACH, PRAGMA, ...: refused (read-only)
};

struct ParsedStatement {
  StatementKind kind = StatementKind::query;
  std::string verb;  // the leading word(s) upper-cased, for messages and tags ("COMMIT PREPARED")
  // settle
  std::string gtrid;
  bool commit = false;
  bool force = false;
  bool accept_current = false;
  // recover
  bool dry_run = false;
  // set / show / reset: the parameter name (lower case; "all" for SHOW ALL / RESET ALL)
  std::string name;
  std::string value;  // set: the value as text (quotes removed; several values joined by ", ")
  // query: the text SQLite gets (PostgreSQL spellings rewritten: `::type`
  // casts dropped, current_user -> current_user())
  std::string sql;
};

// Parses one statement (no ';' separated list); one of only comments and
// whitespace is a query with empty `sql`. `params` are the values of
// $1..$n, used where a command takes a literal (COMMIT PREPARED $1). Throws
// StatementError (42601 syntax, 42P02 missing parameter) for a malformed command.
ParsedStatement parse_statement(std::string_view statement,
                                std::span<const std::optional<std::string>> params = {});

// Splits a simple-query string at ';' outside quotes and comments (see
// ConsoleSession::split).
std::vector<std::string> split_statements(std::string_view query);

// PostgreSQL's quoting of a string literal: 'it''s'.
std::string quote_literal(std::string_view text);

}  // namespace dtx::admin
