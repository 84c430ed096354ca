// The little the drivers need to know about SQL text: where comments end and
// what a statement's leading keywords are (transaction control, compound
// bodies). Not a parser. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

enum class SqlDialect {
  postgres,  // -- to end of line; /* */ nests
  mysql,     // # and "-- " to end of line; /* */ does not nest; /*! */ and /*M! */ are code
};

bool is_sql_space(char c) noexcept;

// If a comment starts at sql[i], the index just past it (past its newline, or
// the end of an unterminated one); otherwise i.
std::size_t sql_comment_end(std::string_view sql, std::size_t i, SqlDialect dialect) noexcept;

// The index of the first character at or after i that is not whitespace, a
// comment, or (if `semicolons`) a ';'; sql.size() if there is none.
std::size_t sql_skip_blank(std::string_view sql, std::size_t i, SqlDialect dialect,
                           bool semicolons) noexcept;

// True if `sql` holds no statement: only whitespace, comments and ';'.
inline bool sql_is_empty(std::string_view sql, SqlDialect dialect) noexcept {
  return sql_skip_blank(sql, 0, dialect, /*semicolons=*/true) == sql.size();
}

// The statements of one of dtx's own SQL scripts (sql/*.sql), in order, each
// without its final ';' (comments inside kept), ready for Session::execute
// one at a time. Quotes are skipped whole; the scripts hold no escapes.
std::vector<std::string> sql_script_statements(std::string_view script, SqlDialect dialect);

// Reads a statement's keywords one at a time.
class SqlKeywords {
 public:
  SqlKeywords(std::string_view sql, SqlDialect dialect) : sql_(sql), dialect_(dialect) {}

  // The next word in upper case, past whitespace and comments (and ';' if
  // `skip_semicolons`); empty at the end, or before anything that is not a
  // plain keyword (a quote, a parenthesis, a word running on into digits, $
  // or non-ASCII bytes).
  std::string next(bool skip_semicolons = false);

 private:
  std::string_view sql_;
  SqlDialect dialect_;
  std::size_t i_ = 0;
};

}  // namespace dtx
