// PostgreSQL resource-manager driver (libpqxx 6.4). See docs/drivers.md.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "drivers/resource_manager.h"

namespace dtx {

// Opens one session on `config`. Throws Errc::unavailable (server message
// filled in) when the server cannot be reached; ResourceManager::acquire adds
// where it tried.
std::unique_ptr<Session> connect_postgres(const ResourceConfig& config);

// `?` placeholders renumbered to $1..$n, skipping single-quoted strings
// (including E'' escapes), double-quoted identifiers, dollar-quoted strings
// and -- / nested /* */ comments. A jsonb `?` operator is rewritten too, so
// statements with parameters spell it jsonb_exists().
struct NumberedSql {
  std::string sql;
  std::size_t placeholders = 0;
};
// With `literal`, each placeholder is replaced by literal(k) (k counting from
// 0) instead of $k+1.
NumberedSql number_placeholders(std::string_view sql,
                                const std::function<std::string(std::size_t)>& literal = nullptr);

// If `sql` is a statement that ends, or pretends to open, a transaction block
// (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, PREPARE
// TRANSACTION, COMMIT/ROLLBACK PREPARED, with or without AND CHAIN), its
// leading keyword(s) in upper case, e.g. "ROLLBACK"; otherwise empty.
// ROLLBACK TO [SAVEPOINT] and PREPARE name AS ... are not transaction control.
// Leading whitespace, semicolons and comments are skipped. Pure; used by the
// driver to keep a branch's block its own (see postgres_driver.cc).
std::string transaction_control_keyword(std::string_view sql);

}  // namespace dtx
