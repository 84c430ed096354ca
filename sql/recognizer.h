// The SQL recognizer: what an AT-mode branch needs to know about a statement
// before it runs it (AT mode, undo-log/). Not an executor and not a general
// parser: it recognizes the data-changing statements AT mode can undo, with
// the pieces needed to take their row images, and refuses everything else
// that writes, saying why and that `mode = "xa"` handles it.
//
// Two dialects, one model:
//   postgres  PostgreSQL's own parser (libpg_query, Debian libpg-query-dev)
//             reads the statement; the recognizer walks its parse tree.
//   mysql     a hand-written tokenizer and recursive-descent reader for the
//             supported statements (no MySQL/MariaDB parser is packaged in
//             Debian); anything it cannot read fully is refused, never guessed.
//
// Parameters are dtx's `?` placeholders (as everywhere in dtx), or literals.
// Every piece of text the recognizer hands back (a WHERE condition, SET
// expressions, ORDER BY, LIMIT) is the statement's own text, byte for byte,
// with the indexes of the `?` parameters it contains, so that a before-image
// query can reuse it with the same parameter values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace dtx::sql {

enum class Dialect { mysql, postgres };

// A fragment of the statement's text and the statement parameters (0-based
// indexes into the statement's `?` list, in order) that occur inside it.
struct Fragment {
  std::string text;                // exactly as written; empty if absent
  std::vector<std::size_t> params;
  bool empty() const noexcept { return text.empty(); }
  friend bool operator==(const Fragment&, const Fragment&) = default;
};

// A table as written: unquoted names, and whether each part was quoted (a
// quoted name keeps its case; an unquoted one folds as the database folds it).
struct TableRef {
  std::string schema;  // database (MySQL) or schema (PostgreSQL); empty if not written
  std::string name;
  bool schema_quoted = false;
  bool name_quoted = false;
  std::string alias;   // empty if none
  friend bool operator==(const TableRef&, const TableRef&) = default;
};

enum class Kind {
  insert,             // INSERT ... VALUES (one or more rows), possibly an upsert
  update,             // UPDATE ... SET ... [WHERE] (MySQL: [ORDER BY] [LIMIT])
  delete_,            // DELETE FROM ... [WHERE] (MySQL: [ORDER BY] [LIMIT])
  select_for_update,  // SELECT ... FOR UPDATE (global-lock aware in AT mode)
  select,             // any other read-only SELECT: passes through untouched
};

enum class Upsert {
  none,
  on_duplicate_key_update,  // MySQL INSERT ... ON DUPLICATE KEY UPDATE
  on_conflict_do_nothing,   // PostgreSQL INSERT ... ON CONFLICT [target] DO NOTHING
  on_conflict_do_update,    // PostgreSQL INSERT ... ON CONFLICT target DO UPDATE SET ...
};

struct Assignment {
  std::string column;  // unquoted; a qualified `t.col` keeps only `col`
  Fragment value;      // the expression's text
  friend bool operator==(const Assignment&, const Assignment&) = default;
};

struct Statement {
  Kind kind = Kind::select;
  TableRef table;                   // the one table changed (or locked); empty name for a plain select
  std::size_t param_count = 0;      // `?` placeholders in the whole statement

  // INSERT
  // Column names (columns, conflict_target, Assignment::column) are unquoted;
  // PostgreSQL's are as the database names them (an unquoted name folded to
  // lower case, a quoted one kept), since they carry no quoted flag.
  std::vector<std::string> columns;           // as listed; empty = every column in table order
  std::vector<std::vector<Fragment>> rows;    // VALUES rows, one Fragment per value
  Upsert upsert = Upsert::none;
  std::vector<std::string> conflict_target;   // PostgreSQL ON CONFLICT (cols); empty if not given
  std::string conflict_constraint;            // PostgreSQL ON CONFLICT ON CONSTRAINT name; empty if not given
  bool returning = false;                     // PostgreSQL: the statement has its own RETURNING

  // UPDATE (and DO UPDATE / ON DUPLICATE KEY UPDATE): the SET list
  std::vector<Assignment> assignments;

  // UPDATE / DELETE / SELECT ... FOR UPDATE (and PostgreSQL's ON CONFLICT
  // DO UPDATE ... WHERE, the condition of the upsert's update)
  Fragment where;                   // the condition without the WHERE keyword
  Fragment order_by;                // MySQL UPDATE/DELETE: without the ORDER BY keywords
  Fragment limit;                   // MySQL UPDATE/DELETE: without the LIMIT keyword
};

// Why a statement is not run in an AT branch. `what` names the construct
// ("INSERT ... SELECT", "a subquery in UPDATE", "several statements in one
// string", ...); to_message() makes the whole sentence, saying that the
// resource's `mode = "xa"` runs it.
struct Refusal {
  std::string what;
  std::string to_message() const;
  friend bool operator==(const Refusal&, const Refusal&) = default;
};

using Recognized = std::variant<Statement, Refusal>;

// Recognizes one statement string (which must hold exactly one statement; a
// trailing ';' and comments are fine). Never throws for bad SQL: text the
// database would reject, or that cannot be read fully, is a Refusal.
Recognized recognize(std::string_view sql, Dialect dialect);

// Each dialect's reader (recognize() dispatches to them).
Recognized recognize_mysql(std::string_view sql);
Recognized recognize_postgres(std::string_view sql);

}  // namespace dtx::sql
